//! `copy` and `template`: put content (literal `content`, a controller file or directory tree,
//! a file already on the host with `remote_src`, or a rendered template) at `dest`, then set
//! mode and ownership.
//!
//! Owns the destination rules (a `dest` ending in `/` or naming a directory, or a symlink to
//! one, receives `dest/basename(src)`; a source directory is copied recursively, its contents
//! only when `src` ends in `/`), the one-round-trip check (stats, sha256 and, for `--diff`, the
//! old text) and the writes. A symlink AT `dest` is replaced by the new file, never written
//! through (Ansible's default `follow: no`). It must not format shell lines, must not truncate
//! a file in place (every write is `tr.put` + rename) and must not read the run mode.
//!
//! Not supported (refused clearly): `remote_src` with a directory source; `mode: preserve` with
//! `content`. Directories created for a recursive copy get the host's default mode (Ansible's
//! `directory_mode` is not in the spec); `mode` applies to the copied files, `owner`/`group` to
//! both.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::common::{
    AttrFix, DIFF_MAX, WantAttrs, WriteSpec, attr, basename, diff_text, failed, join, mode_text,
    run_batch, shown_content, stat_content_of, stat_of, take, temp_next_to, validate_and_move,
    validate_text, write_file,
};
use crate::diag::Diagnostic;
use crate::modules::runtime::{
    Ahead, Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource,
    Verdict, need_local_src,
};
use crate::modules::source::{self, Content};
use crate::modules::spec::ArgsRef;
use crate::transport::AnyTransport;
use crate::transport::cmd::{self, Cmd, PathKind, PathState, stat_cmd, stat_content_cmd};

/// The `copy` module.
pub struct Copy;

/// The `template` module: `copy` of `ctx.render(text of src)`.
pub struct Template;

crate::module_args! {
    /// Copies a file from the controller (`src`, looked up in the role's `files/`) or literal
    /// `content` to `dest` on the host, then sets mode and ownership. A symlink at `dest` is
    /// replaced, never written through.
    #[module(
        name = "copy",
        backup = "`dest` (and, for a directory source, every path it names below `dest`) is copied before it changes; rollback puts the old content, mode and owner back, or removes what the step created.",
        returns = &[("dest", "the destination path"), ("checksum", "SHA-1 of the file"), ("size", "its size"), ("mode", "its mode"), ("owner", "its owner"), ("group", "its group")],
        examples = "- copy:\n    src: app.conf\n    dest: /etc/app/app.conf\n    mode: \"0640\"\n    owner: root\n    group: app",
        check_args = src_xor_content
    )]
    pub struct CopyArgs {
        /// Local file to copy (or a path on the host with `remote_src`).
        #[arg(kind = Path)]
        src: Option<String>,
        /// Literal content to write instead of `src`.
        content: Value,
        /// Destination path on the host.
        #[arg(required, kind = Path)]
        dest: String,
        /// Permissions of the file (`0644`, `u=rw,g=r`, `preserve`).
        mode: Value,
        /// Owner of the file.
        owner: Option<String>,
        /// Group of the file.
        group: Option<String>,
        /// Replace `dest` when its content differs; with `no`, only create it.
        #[arg(default = "yes")]
        force: bool,
        /// Command run on the new file before it is moved in; `%s` is the temp file.
        validate: Option<String>,
        /// Keep a timestamped copy of the original file on the host.
        #[arg(default = "no")]
        backup: bool,
        /// `src` is a path on the host rather than the controller.
        #[arg(default = "no")]
        remote_src: bool,
    }
}

crate::module_args! {
    /// Renders a Jinja template from the controller (role `templates/` first) with the host's
    /// variables and writes it to `dest`, then sets mode and ownership. A symlink at `dest` is
    /// replaced, never written through.
    #[module(
        name = "template",
        backup = "`dest` is copied (content, mode, owner) before it is replaced; rollback puts the old file back, or removes it if the step created it.",
        returns = &[("dest", "the destination path"), ("checksum", "SHA-1 of the rendered file"), ("size", "its size"), ("mode", "its mode")],
        examples = "- template:\n    src: nginx.conf.j2\n    dest: /etc/nginx/nginx.conf\n    validate: nginx -t -c %s\n  notify: reload nginx"
    )]
    pub struct TemplateArgs {
        /// The template file on the controller.
        #[arg(required, kind = Path)]
        src: String,
        /// Destination path on the host.
        #[arg(required, kind = Path)]
        dest: String,
        /// Permissions of the file.
        mode: Value,
        /// Owner of the file.
        owner: Option<String>,
        /// Group of the file.
        group: Option<String>,
        /// Replace `dest` when its content differs; with `no`, only create it.
        #[arg(default = "yes")]
        force: bool,
        /// Command run on the new file before it is moved in; `%s` is the temp file.
        validate: Option<String>,
        /// Keep a timestamped copy of the original file on the host.
        #[arg(default = "no")]
        backup: bool,
    }
}

/// `copy` needs exactly one of `src` and `content` (checked when the playbook is loaded).
fn src_xor_content(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    match (a.has("src"), a.has("content")) {
        (false, false) => vec![Diagnostic::at(
            a.module_loc,
            "module 'copy' needs 'src' or 'content'",
        )],
        (true, true) => vec![Diagnostic::at(
            a.module_loc,
            "arguments 'src' and 'content' of module 'copy' are mutually exclusive",
        )],
        _ => Vec::new(),
    }
}

/// Where and how the content is put, the same for `copy` and `template`.
struct Put {
    dest: String,
    force: bool,
    want: WantAttrs,
    validate: Option<String>,
    backup: bool,
}

impl Put {
    fn of_copy(a: &CopyArgs) -> Result<Put, ModuleError> {
        Ok(Put {
            dest: a.dest.clone(),
            force: a.force,
            want: want_attrs(&a.mode, &a.owner, &a.group),
            validate: validate_text(a.validate.clone())?,
            backup: a.backup,
        })
    }

    fn of_template(a: &TemplateArgs) -> Result<Put, ModuleError> {
        Ok(Put {
            dest: a.dest.clone(),
            force: a.force,
            want: want_attrs(&a.mode, &a.owner, &a.group),
            validate: validate_text(a.validate.clone())?,
            backup: a.backup,
        })
    }
}

fn want_attrs(mode: &Value, owner: &Option<String>, group: &Option<String>) -> WantAttrs {
    WantAttrs {
        mode: (!mode.is_null()).then(|| mode.clone()),
        owner: owner.clone(),
        group: group.clone(),
    }
}

/// Where the content comes from.
enum Source {
    /// Bytes known on the controller (content, a local file, a rendered template), with the
    /// mode of the local file for `mode: preserve`.
    Bytes(Content, Option<u32>),
    /// A file on the host (`remote_src`).
    Remote(String),
    /// A directory on the controller, copied recursively to this root on the host.
    LocalDir(PathBuf, String),
}

/// What a single-file copy carries from check to apply.
struct FilePlan {
    dest: String,
    data: Option<Content>,
    remote_src: Option<String>,
    /// The remote source's mode, for a new `dest` without `mode` (Ansible's `copystat`).
    remote_mode: Option<u32>,
    mkdir: Option<String>,
    write: WriteSpec,
    fix: AttrFix,
    result: Args,
}

/// What a tree copy carries from check to apply.
struct TreePlan {
    mkdirs: Vec<String>,
    files: Vec<(String, Content, crate::transport::FileAttrs)>,
    fixes: Vec<(String, AttrFix)>,
    result: Args,
}

impl Module for Copy {
    fn ahead(&self) -> Ahead {
        Ahead::Reads
    }

    fn name(&self) -> &'static str {
        "copy"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let a = CopyArgs::parse(args)?;
            let put = Put::of_copy(&a)?;
            let (source, src_name, vaulted) = copy_source(&a, ctx).await?;
            match source {
                Source::LocalDir(dir, root) => {
                    check_tree(tr, &put, a.src.as_deref(), ctx, &dir, &root).await
                }
                other => check_file(tr, &put, ctx, other, src_name.as_deref(), vaulted).await,
            }
        })
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_any(tr, ctx, drift))
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        let Ok(CopyArgs {
            dest,
            src,
            remote_src: remote,
            ..
        }) = CopyArgs::parse(args)
        else {
            return Vec::new();
        };
        let mut out = vec![Resource::Path(dest.clone())];
        let Some(src) = src else {
            return out;
        };
        let local = Path::new(&src);
        if !remote && local.is_dir() {
            // The whole destination tree: the root and every path the source tree names.
            let root = tree_root(&src, &dest);
            out = vec![Resource::Path(root.clone())];
            if let Ok(entries) = walk_local(local) {
                out.extend(
                    entries
                        .iter()
                        .filter(|e| !e.rel.is_empty())
                        .map(|e| Resource::Path(join(&root, &e.rel))),
                );
            }
        } else {
            out.push(Resource::Path(join(&dest, basename(&src))));
        }
        out
    }
}

impl Module for Template {
    fn ahead(&self) -> Ahead {
        Ahead::Reads
    }

    fn name(&self) -> &'static str {
        "template"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let a = TemplateArgs::parse(args)?;
            let put = Put::of_template(&a)?;
            let local = need_local_src(ctx)?;
            let (raw, vaulted) = source::read(local)?;
            let text = std::str::from_utf8(&raw).map_err(|_| {
                ModuleError::Args(format!("template {} is not UTF-8 text", local.display()))
            })?;
            let rendered = (ctx.render)(text)
                .map_err(|e| ModuleError::Args(format!("{}: {e}", local.display())))?;
            let name = basename(&a.src).to_string();
            let source = Source::Bytes(
                Content::Mem(Arc::from(rendered.into_bytes())),
                local_mode(local),
            );
            check_file(tr, &put, ctx, source, Some(&name), vaulted).await
        })
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_any(tr, ctx, drift))
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        let Ok(TemplateArgs { dest, src, .. }) = TemplateArgs::parse(args) else {
            return Vec::new();
        };
        let inner = join(&dest, basename(&src));
        vec![Resource::Path(dest), Resource::Path(inner)]
    }
}

fn local_mode(p: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

/// The source of a `copy` task, the name a directory `dest` receives, and whether the source
/// was decrypted from Ansible Vault.
async fn copy_source(
    args: &CopyArgs,
    ctx: &ModuleCtx<'_>,
) -> Result<(Source, Option<String>, bool), ModuleError> {
    if let Some(content) = Some(&args.content).filter(|v| !v.is_null()) {
        let text = match content {
            Value::String(s) => s.clone(),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        return Ok((
            Source::Bytes(Content::Mem(Arc::from(text.into_bytes())), None),
            None,
            false,
        ));
    }
    let src = args
        .src
        .clone()
        .ok_or_else(|| ModuleError::Args("missing required argument 'src'".into()))?;
    let name = basename(&src).to_string();
    if args.remote_src {
        return Ok((Source::Remote(src), Some(name), false));
    }
    let local = need_local_src(ctx)?;
    if local.is_dir() {
        let root = tree_root(&src, &args.dest);
        return Ok((Source::LocalDir(local.to_path_buf(), root), None, false));
    }
    let (data, vaulted) = source::open(local).await?;
    Ok((Source::Bytes(data, local_mode(local)), Some(name), vaulted))
}

/// The host directory a source directory is copied to: `dest` itself for `src/` (contents
/// only), `dest/basename(src)` otherwise.
fn tree_root(src: &str, dest: &str) -> String {
    if src.ends_with('/') {
        dest.trim_end_matches('/').to_string()
    } else {
        join(dest, basename(src))
    }
}

/// Checks a single-file copy in ONE round trip: `[stat src]` (remote_src), then for `dest`
/// and (when a source name is known) `dest/NAME`: stat, diff read; plus `test -d dest` to
/// follow a symlink to a directory like Ansible does.
async fn check_file(
    tr: &mut HostView<'_>,
    put: &Put,
    ctx: &ModuleCtx<'_>,
    source: Source,
    src_name: Option<&str>,
    vaulted: bool,
) -> Result<Verdict, ModuleError> {
    let dest = put.dest.clone();
    let force = put.force;
    let want = put.want.clone();
    let inner = src_name.map(|n| join(&dest, n));
    // The destination's current text (for the diff) comes back only when it differs.
    let bytes_sha = match &source {
        Source::Bytes(data, _) => Some(data.sha256()),
        _ => None,
    };
    let mut cmds = Vec::new();
    if let Source::Remote(src) = &source {
        cmds.push(stat_cmd(src));
    }
    cmds.push(stat_content_cmd(&dest, bytes_sha.as_deref(), DIFF_MAX + 1));
    cmds.push(cmd::test_d(&dest));
    if let Some(inner) = &inner {
        cmds.push(stat_content_cmd(inner, bytes_sha.as_deref(), DIFF_MAX + 1));
    }
    let mut outs = run_batch(tr, ctx, &cmds, DIFF_MAX + 1).await?.into_iter();
    let src_state = match &source {
        Source::Remote(src) => Some(stat_of(&take(&mut outs)?, src)?),
        _ => None,
    };
    let (dest_state, dest_read) = stat_content_of(&take(&mut outs)?, &dest)?;
    let dest_is_dir = take(&mut outs)?.success();
    let into_dir = dest.ends_with('/') || dest_is_dir;
    let (target, cur, read, mkdir) = if into_dir {
        let Some(inner) = inner else {
            return Err(ModuleError::Args(format!(
                "can not use content with a dir as dest ({dest})"
            )));
        };
        let (st, read) = stat_content_of(&take(&mut outs)?, &inner)?;
        let mkdir = (!dest_state.exists()).then(|| dest.clone());
        (inner, st, read, mkdir)
    } else {
        (dest.clone(), dest_state, dest_read, None)
    };

    let (want_sha, data, remote_src, preserve_mode) = match source {
        Source::Bytes(data, mode) => (
            bytes_sha.unwrap_or_else(|| data.sha256()),
            Some(data),
            None,
            mode,
        ),
        Source::Remote(src) => {
            let st = src_state
                .clone()
                .ok_or_else(|| failed("internal: no source state"))?;
            match (&st.kind, &st.sha256) {
                (PathKind::File, Some(sha)) => (sha.clone(), None, Some(src), Some(st.mode)),
                (PathKind::Absent, _) => {
                    return Err(failed(format!("Source {src} not found")));
                }
                (PathKind::Directory, _) => {
                    return Err(ModuleError::Args(format!(
                        "remote_src with a directory source ({src}) is not supported"
                    )));
                }
                _ => {
                    return Err(failed(format!(
                        "Source {src} is not a readable regular file"
                    )));
                }
            }
        }
        Source::LocalDir(..) => return Err(failed("internal: directory source")),
    };
    let want = resolve_preserve(want, preserve_mode)?;
    let src_mode = src_state.as_ref().map(|s| s.mode & 0o7777);

    let mut result = Args::new();
    result.insert("dest".into(), Value::from(target.clone()));
    if let Some(src) = &remote_src {
        result.insert("src".into(), Value::from(src.clone()));
    }
    if let Some(d) = &data {
        result.insert("checksum".into(), Value::from(d.sha1()));
        result.insert("size".into(), Value::from(d.len()));
    }
    result.insert("sha256".into(), Value::from(want_sha.clone()));
    result.insert("state".into(), Value::from("file"));

    if !force && cur.exists() {
        result.insert("msg".into(), Value::from("dest exists and force is no"));
        return Ok(Verdict::InSync { result });
    }
    match cur.kind {
        PathKind::Directory => {
            return Err(failed(format!(
                "{target} is a directory, cannot copy a file over it"
            )));
        }
        PathKind::Other => {
            return Err(failed(format!("{target} is not a regular file")));
        }
        _ => {}
    }
    let same = cur.kind == PathKind::File && cur.sha256.as_deref() == Some(want_sha.as_str());
    let mut changes = Vec::new();
    let mut fix = AttrFix::default();
    let attrs = want.put_attrs(&cur)?;
    if same {
        fix = want.diff(&target, &cur)?;
        changes.extend(fix.changes.iter().cloned());
        result.insert(
            "mode".into(),
            Value::from(mode_text(fix.mode.unwrap_or(cur.mode))),
        );
        result.insert(
            "owner".into(),
            Value::from(fix.owner.clone().unwrap_or(cur.owner.clone())),
        );
        result.insert(
            "group".into(),
            Value::from(fix.group.clone().unwrap_or(cur.group.clone())),
        );
    } else {
        if let PathKind::Link { target: old } = &cur.kind {
            changes.push(attr(&target, "state", format!("link to {old}"), "file"));
        }
        let after = match &data {
            Some(d) if vaulted => format!("<{} bytes decrypted from Ansible Vault>", d.len()),
            Some(d) => shown_content(d),
            None => format!(
                "<content of {} on the host, sha256 {want_sha}>",
                remote_src.as_deref().unwrap_or_default()
            ),
        };
        changes.push(Change::Content {
            path: target.clone(),
            before: if cur.kind == PathKind::File && !vaulted {
                read.as_deref().and_then(diff_text)
            } else {
                None
            },
            after,
        });
        if cur.kind == PathKind::File {
            changes.extend(want.diff(&target, &cur)?.changes);
        }
        result.insert(
            "mode".into(),
            Value::from(mode_text(attrs.mode.or(src_mode).unwrap_or(0o644))),
        );
        if let Some(o) = &attrs.owner {
            result.insert("owner".into(), Value::from(o.clone()));
        }
        if let Some(g) = &attrs.group {
            result.insert("group".into(), Value::from(g.clone()));
        }
    }
    if changes.is_empty() {
        return Ok(Verdict::InSync { result });
    }
    let plan = FilePlan {
        write: WriteSpec {
            dest: target.clone(),
            attrs,
            validate: put.validate.clone(),
            backup: put.backup && cur.kind == PathKind::File && !same,
        },
        dest: target,
        data: if same { None } else { data },
        remote_src: if same { None } else { remote_src },
        remote_mode: src_mode,
        mkdir,
        fix,
        result,
    };
    Ok(Verdict::Drift(Drift::new(changes, plan)))
}

/// `mode: preserve` → the source's mode (refused for literal content).
fn resolve_preserve(
    mut want: WantAttrs,
    source_mode: Option<u32>,
) -> Result<WantAttrs, ModuleError> {
    if want.mode.as_ref().and_then(Value::as_str) == Some("preserve") {
        let m = source_mode.ok_or_else(|| {
            ModuleError::Args("mode 'preserve' needs a source file (not 'content')".into())
        })?;
        want.mode = Some(Value::from(m));
    }
    Ok(want)
}

async fn apply_any(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    if let Some(plan) = drift.plan::<FilePlan>() {
        return apply_file(tr, ctx, plan).await;
    }
    if let Some(plan) = drift.plan::<TreePlan>() {
        return apply_tree(tr, ctx, plan).await;
    }
    Err(ModuleError::Args("internal: foreign drift plan".into()))
}

async fn apply_file(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    plan: &FilePlan,
) -> Result<Args, ModuleError> {
    let mut result = plan.result.clone();
    if let Some(dir) = &plan.mkdir {
        ctx.run_ok(tr, cmd::mkdir_p(dir)).await?;
    }
    if let Some(data) = &plan.data {
        write_file(tr, ctx, data.payload(), &plan.write)
            .await?
            .record(&mut result, "backup_file");
    } else if let Some(src) = &plan.remote_src {
        if plan.write.backup {
            let out = ctx
                .run_ok(tr, super::common::backup_cmd(&plan.dest))
                .await?;
            result.insert(
                "backup_file".into(),
                Value::from(out.stdout_lossy().into_owned()),
            );
        }
        // cp to a temporary file next to dest, set attributes, validate, rename over dest.
        let tmp = temp_next_to(&plan.dest);
        ctx.run_ok(tr, Cmd::raw("cp --").arg(src.clone()).arg(tmp.clone()))
            .await?;
        let a = &plan.write.attrs;
        let fix = AttrFix {
            mode: Some(a.mode.or(plan.remote_mode).unwrap_or(0o644)),
            owner: a.owner.clone().filter(|_| !a.keep),
            group: a.group.clone().filter(|_| !a.keep),
            changes: Vec::new(),
        };
        let moved = async {
            if a.keep {
                // The replaced file's owner and group, as far as the login user may set them.
                let out = ctx
                    .run_ok(
                        tr,
                        cmd::keep_owner(&tmp, a.owner.as_deref(), a.group.as_deref()),
                    )
                    .await?;
                if let Some(now) = out
                    .stdout_lossy()
                    .lines()
                    .find_map(|l| l.strip_prefix(cmd::NOT_KEPT))
                {
                    let note = super::common::not_kept_note(&plan.dest, now);
                    result.insert("msg".into(), Value::from(note));
                }
            }
            fix.apply(tr, ctx, &tmp).await?;
            match &plan.write.validate {
                Some(v) => validate_and_move(tr, ctx, v, &tmp, &plan.dest).await,
                None => ctx
                    .run_ok(tr, cmd::mv_f(&tmp, &plan.dest))
                    .await
                    .map(|_| ()),
            }
        }
        .await;
        if let Err(e) = moved {
            let _ = ctx.run(tr, cmd::rm_rf(&tmp)).await;
            return Err(e);
        }
    } else {
        plan.fix.apply(tr, ctx, &plan.dest).await?;
    }
    Ok(result)
}

// ---------------------------------------------------------------------------------------------
// Recursive copy of a controller directory
// ---------------------------------------------------------------------------------------------

/// One entry of a controller directory tree; `rel` is empty for the root.
struct LocalEntry {
    rel: String,
    path: PathBuf,
    is_dir: bool,
}

/// The tree under `root` (symlinks followed, like Ansible's `local_follow: yes`), parents
/// before children, sorted. Names with a newline or tab are refused (the host listing is
/// line-based).
fn walk_local(root: &Path) -> Result<Vec<LocalEntry>, ModuleError> {
    let mut out = vec![LocalEntry {
        rel: String::new(),
        path: root.to_path_buf(),
        is_dir: true,
    }];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir {
            if out.len() > 100_000 || out[i].rel.matches('/').count() > 64 {
                return Err(ModuleError::Args(format!(
                    "{}: source tree too large or too deep (a symlink loop?)",
                    root.display()
                )));
            }
            let dir = out[i].path.clone();
            let base = out[i].rel.clone();
            let mut children = Vec::new();
            let rd = std::fs::read_dir(&dir)
                .map_err(|e| ModuleError::Args(format!("cannot list {}: {e}", dir.display())))?;
            for entry in rd {
                let entry = entry.map_err(|e| {
                    ModuleError::Args(format!("cannot list {}: {e}", dir.display()))
                })?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.contains(['\n', '\t']) {
                    return Err(ModuleError::Args(format!(
                        "{}: names with newlines or tabs cannot be copied",
                        entry.path().display()
                    )));
                }
                let meta = std::fs::metadata(entry.path()).map_err(|e| {
                    ModuleError::Args(format!("cannot read {}: {e}", entry.path().display()))
                })?;
                let rel = if base.is_empty() {
                    name
                } else {
                    format!("{base}/{name}")
                };
                children.push(LocalEntry {
                    rel,
                    path: entry.path(),
                    is_dir: meta.is_dir(),
                });
            }
            children.sort_by(|a, b| a.rel.cmp(&b.rel));
            out.extend(children);
        }
        i += 1;
    }
    Ok(out)
}

/// Lists each relative path read from stdin under `$1` as `kind\tmode\tuid\tgid\towner\tgroup\t
/// sha256\tpath` (lstat; sha256 `-` unless a regular file); missing paths print nothing. Exit 4
/// when `$1` exists but is not a directory.
const TREE_STAT: &str = crate::host::TREE_STAT;

fn parse_tree(out: &crate::transport::Output) -> Result<HashMap<String, PathState>, ModuleError> {
    if out.status != 0 || out.truncated.stdout > 0 {
        return Err(failed(format!(
            "listing the destination failed (exit {}): {}",
            out.status,
            out.stderr_lossy().trim_end()
        )));
    }
    let mut map = HashMap::new();
    for line in out.stdout_lossy().lines() {
        let f: Vec<&str> = line.splitn(8, '\t').collect();
        let [kind, mode, uid, gid, owner, group, sha, rel] = f[..] else {
            return Err(failed(format!("unexpected listing line {line:?}")));
        };
        let bad = || failed(format!("unexpected listing line {line:?}"));
        let st = PathState {
            kind: match kind {
                "file" => PathKind::File,
                "directory" => PathKind::Directory,
                "link" => PathKind::Link {
                    target: String::new(),
                },
                _ => PathKind::Other,
            },
            mode: u32::from_str_radix(mode, 8).map_err(|_| bad())?,
            uid: uid.parse().map_err(|_| bad())?,
            gid: gid.parse().map_err(|_| bad())?,
            owner: owner.to_string(),
            group: group.to_string(),
            size: 0,
            sha256: (sha != "-").then(|| sha.to_string()),
        };
        let rel = rel.strip_prefix("./").unwrap_or(rel);
        let rel = if rel == "." { "" } else { rel };
        map.insert(rel.to_string(), st);
    }
    Ok(map)
}

/// Checks a recursive copy in ONE command: the relative paths go on stdin, the host lists the
/// state of each under the destination root.
async fn check_tree(
    tr: &mut HostView<'_>,
    put: &Put,
    src_arg: Option<&str>,
    ctx: &ModuleCtx<'_>,
    src: &Path,
    root: &str,
) -> Result<Verdict, ModuleError> {
    let force = put.force;
    let want = put.want.clone();
    if put.validate.is_some() || put.backup {
        return Err(ModuleError::Args(
            "validate and backup are not supported when copying a directory".into(),
        ));
    }
    let entries = walk_local(src)?;
    let mut list = String::from(".\n");
    for e in entries.iter().filter(|e| !e.rel.is_empty()) {
        list.push_str(&e.rel);
        list.push('\n');
    }
    let c = Cmd::raw("set --")
        .arg(root)
        .op(TREE_STAT)
        .stdin(list.into_bytes());
    let out = ctx.query(tr, c).await?;
    let states = parse_tree(&out)?;

    let mut changes = Vec::new();
    let mut plan = TreePlan {
        mkdirs: Vec::new(),
        files: Vec::new(),
        fixes: Vec::new(),
        result: Args::new(),
    };
    let dir_want = WantAttrs {
        mode: None,
        ..want.clone()
    };
    for e in &entries {
        let path = if e.rel.is_empty() {
            root.to_string()
        } else {
            join(root, &e.rel)
        };
        let cur = states.get(&e.rel);
        if e.is_dir {
            match cur.map(|c| &c.kind) {
                None => {
                    changes.push(attr(&path, "state", "absent", "directory"));
                    plan.mkdirs.push(path.clone());
                    if want.owner.is_some() || want.group.is_some() {
                        plan.fixes.push((
                            path,
                            AttrFix {
                                owner: want.owner.clone(),
                                group: want.group.clone(),
                                ..AttrFix::default()
                            },
                        ));
                    }
                }
                Some(PathKind::Directory) => {
                    let fix = dir_want.diff(&path, cur.ok_or_else(|| failed("internal"))?)?;
                    if !fix.is_empty() {
                        changes.extend(fix.changes.iter().cloned());
                        plan.fixes.push((path, fix));
                    }
                }
                Some(_) => {
                    return Err(failed(format!("{path} exists and is not a directory")));
                }
            }
            continue;
        }
        let (data, _) = source::open(&e.path).await?;
        let file_want = resolve_preserve(want.clone(), local_mode(&e.path))?;
        let absent = PathState::absent();
        let cur = cur.unwrap_or(&absent);
        if !force && cur.exists() {
            continue;
        }
        match &cur.kind {
            PathKind::Directory | PathKind::Other => {
                return Err(failed(format!("{path} exists and is not a regular file")));
            }
            PathKind::File if cur.sha256.as_deref() == Some(data.sha256().as_str()) => {
                let fix = file_want.diff(&path, cur)?;
                if !fix.is_empty() {
                    changes.extend(fix.changes.iter().cloned());
                    plan.fixes.push((path, fix));
                }
            }
            kind => {
                if matches!(kind, PathKind::Link { .. }) {
                    changes.push(attr(&path, "state", "link", "file"));
                }
                changes.push(Change::Content {
                    path: path.clone(),
                    before: None,
                    after: shown_content(&data),
                });
                if *kind == PathKind::File {
                    changes.extend(file_want.diff(&path, cur)?.changes);
                }
                let attrs = file_want.put_attrs(cur)?;
                plan.files.push((path, data, attrs));
            }
        }
    }
    plan.result
        .insert("dest".into(), Value::from(root.to_string()));
    if let Some(src) = src_arg {
        plan.result.insert("src".into(), Value::from(src));
    }
    plan.result.insert("state".into(), Value::from("directory"));
    if changes.is_empty() {
        return Ok(Verdict::InSync {
            result: plan.result,
        });
    }
    Ok(Verdict::Drift(Drift::new(changes, plan)))
}

async fn apply_tree(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    plan: &TreePlan,
) -> Result<Args, ModuleError> {
    for chunk in plan.mkdirs.chunks(256) {
        ctx.run_ok(tr, cmd::mkdir_p_all(chunk.iter().cloned()))
            .await?;
    }
    for (path, data, attrs) in &plan.files {
        let spec = WriteSpec {
            dest: path.clone(),
            attrs: attrs.clone(),
            validate: None,
            backup: false,
        };
        write_file(tr, ctx, data.payload(), &spec).await?;
    }
    for (path, fix) in &plan.fixes {
        fix.apply(tr, ctx, path).await?;
    }
    Ok(plan.result.clone())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(v: Value) -> Args {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn copy_and_template_args_apply_ansible_defaults() {
        let a = CopyArgs::parse(&args(json!({"content": "x", "dest": "/d"}))).unwrap();
        let put = Put::of_copy(&a).unwrap();
        assert!(put.force && !put.backup && !a.remote_src);
        assert_eq!(put.want.mode, None);
        let a = CopyArgs::parse(&args(
            json!({"src": "f", "dest": "/d", "mode": "0640", "force": "no"}),
        ))
        .unwrap();
        let put = Put::of_copy(&a).unwrap();
        assert!(!put.force);
        assert_eq!(put.want.mode, Some(json!("0640")));
        let bad =
            CopyArgs::parse(&args(json!({"src": "f", "dest": "/d", "validate": "true"}))).unwrap();
        assert!(Put::of_copy(&bad).is_err());
        let t = TemplateArgs::parse(&args(json!({"src": "a.j2", "dest": "/d/"}))).unwrap();
        assert_eq!(
            Template.resources(&args(json!({"src": "a.j2", "dest": "/d/"}))),
            vec![
                Resource::Path("/d/".into()),
                Resource::Path("/d/a.j2".into())
            ]
        );
        assert!(Put::of_template(&t).unwrap().force);
        let e = TemplateArgs::parse(&args(
            json!({"src": "a", "dest": "/d", "trim_blocks": false}),
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "argument 'trim_blocks' of module 'template' is not supported by rdeploy"
        );
    }
}
