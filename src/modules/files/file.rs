//! `file`: the state of a path — a file's attributes, a directory (optionally its whole tree),
//! a symlink, a hard link, an absent path, a touched file.
//!
//! Owns Ansible's state rules and the one-round-trip check (lstat, stat of what a link points
//! to, realpath, and per state: the link source's existence, inodes for hard links, a listing
//! of the tree for `recurse`). Symlink swaps are atomic (`ln_sf_atomic`: temp link + rename).
//! `state: file|directory|touch` on a symlink act on what it points to (Ansible's default
//! `follow: yes`; `follow: no` acts on the link itself); `state: link|hard|absent` act on the
//! path itself. `access_time`/`modification_time` (`now`, `preserve`, or a time in their
//! `_format`, parsed here and read by the host's `date -d` in its own time zone, as Ansible's
//! `mktime`) are compared with `stat` in a second round trip and set with `touch -c`. Times
//! are not backed up, so rollback does not restore them (`not_reversible` says so). It must
//! not format shell lines and must not read the run mode.
//!
//! SELinux (`seuser`/`serole`/`setype`/`selevel`): one more command in the same batch asks
//! `selinuxenabled`; where it is missing or says disabled the arguments are ignored, as
//! Ansible's are; else the current context (`stat -c %C`, with `_default` the policy's from
//! `matchpathcon -n`) is compared and `chcon -h` (`-R` for a tree with `recurse`) sets the
//! asked parts. Contexts are not backed up (`not_reversible` says so).
//!
//! Deviations: `mode` is not applied to a symlink (Linux has no link modes; Ansible's follow
//! would chmod the target); a directory is never replaced by a link, even with `force`;
//! `mkdir -p` applies `mode`/`owner`/`group` to the last directory only; `touch` is always a
//! change and so reports `converges() == false` for that state; with `recurse`, `_default`
//! is the policy's context of the top directory, applied to the whole tree; `attributes`
//! (`chattr`) is not supported.

use serde_json::Value;

use super::common::{
    AttrFix, WantAttrs, attr, failed, join, kind_word, mode_text, parent_of, realpath_cmd,
    run_batch, stat_of, take,
};
use crate::diag::Diagnostic;
use crate::modules::runtime::{
    Ahead, Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::modules::spec::ArgsRef;
use crate::transport::cmd::{self, Cmd, PathKind, PathState, ln_sf_atomic, rm_rf, stat_attrs_cmd};
use crate::transport::{AnyTransport, Output};

/// The `file` module.
pub struct File;

crate::module_args! {
    /// Sets the state of a path on the host: a file's attributes, a directory, a symlink or hard
    /// link, an absent path, or a touched file. The SELinux context parts (`seuser`, `serole`,
    /// `setype`, `selevel`) are set with `chcon` where SELinux is enabled and ignored elsewhere,
    /// as in Ansible.
    #[module(
        name = "file",
        backup = "The path is backed up before it changes: its mode and owner (and a link's target) for attribute changes; the whole tree for `state: absent`; rollback restores them, or removes a path the step created. Access and modification times and SELinux contexts are not backed up: rollback leaves the ones the run set.",
        returns = &[("path", "the path"), ("state", "what it is now"), ("mode", "its mode"), ("owner", "its owner"), ("group", "its group"), ("secontext", "its SELinux context, where SELinux is enabled"), ("diff", "before/after with --diff")],
        examples = "- file:\n    path: /srv/app/releases\n    state: directory\n    mode: \"0755\"\n- file:\n    src: /srv/app/releases/2.1\n    dest: /srv/app/current\n    state: link\n- file:\n    path: /srv/www\n    state: directory\n    setype: httpd_sys_content_t",
        check_args = link_needs_src
    )]
    pub struct FileArgs {
        /// The path to manage.
        #[arg(required, kind = Path, aliases = &["dest", "name"])]
        path: String,
        /// What the path should be; `file` only changes attributes of an existing file. Without
        /// it: `directory` for an existing directory (or a missing one with `recurse`), else
        /// `file`.
        #[arg(choices = &["file", "directory", "link", "hard", "absent", "touch"])]
        state: Option<String>,
        /// Permissions (`0755`, `u=rwx,g=rx`).
        mode: Value,
        /// Owner.
        owner: Option<String>,
        /// Group.
        group: Option<String>,
        /// With `state: directory`, apply attributes to the whole tree.
        #[arg(default = "no")]
        recurse: bool,
        /// Target of the link for `state: link` or `hard`.
        #[arg(kind = Path)]
        src: Option<String>,
        /// Replace an existing file or link at `path` for `state: link`.
        #[arg(default = "no")]
        force: bool,
        /// For `state: file`, `directory` and `touch`, a symlink at `path` stands for what it
        /// points to; false acts on the link itself (`state: file` and `directory` then fail on
        /// a link, as in Ansible).
        #[arg(default = "yes")]
        follow: bool,
        /// The modification time to set: `now`, `preserve` (the default, except `now` for
        /// `state: touch`) or a time in `modification_time_format`, the host's local time.
        modification_time: Option<String>,
        /// The format of `modification_time` (Python's `strptime`).
        #[arg(default = "%Y%m%d%H%M.%S")]
        modification_time_format: String,
        /// The access time to set: `now`, `preserve` (the default, except `now` for `state:
        /// touch`) or a time in `access_time_format`, the host's local time.
        access_time: Option<String>,
        /// The format of `access_time` (Python's `strptime`).
        #[arg(default = "%Y%m%d%H%M.%S")]
        access_time_format: String,
        /// The user part of the path's SELinux context (`_default`: the policy's); ignored on a
        /// host without SELinux enabled, as in Ansible.
        seuser: Option<String>,
        /// The role part of the SELinux context (`_default`: the policy's); ignored without
        /// SELinux.
        serole: Option<String>,
        /// The type part of the SELinux context (`_default`: the policy's); ignored without
        /// SELinux.
        setype: Option<String>,
        /// The level (MLS range) part of the SELinux context (`_default`: the policy's); ignored
        /// without SELinux or MLS.
        selevel: Option<String>,
        /// Accepted and ignored: `file` writes no content, so it never needs Ansible's unsafe
        /// fallback (as in Ansible).
        #[arg(default = "no")]
        unsafe_writes: bool,
    }
}

/// `state: link` and `state: hard` need `src` (checked when the playbook is loaded).
fn link_needs_src(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    match a.literal("state").as_deref() {
        Some(s @ ("link" | "hard")) if !a.has("src") => vec![Diagnostic::at(
            a.module_loc,
            format!("module 'file' needs 'src' when state is {s}"),
        )],
        _ => Vec::new(),
    }
}

/// What `apply` does, in order.
#[derive(Clone, Debug)]
enum Step {
    /// `mkdir -p`.
    Mkdir(String),
    /// `rm -rf`.
    Remove(String),
    /// Atomic symlink (target, link).
    Symlink(String, String),
    /// Atomic hard link (source, path).
    Hardlink(String, String),
    /// `touch` (creates a missing file, updates times); true: of a symlink itself (`-h`).
    Touch(String, bool),
    /// Sets access and modification times (`touch -c`); true: of a symlink itself (`-h`).
    Times {
        path: String,
        nofollow: bool,
        atime: Option<TimeSpec>,
        mtime: Option<TimeSpec>,
    },
    /// chown/chmod on one path.
    Fix(String, AttrFix),
    /// `chcon -h` (with `recurse`, `-R`) setting the given parts of the SELinux context.
    Chcon {
        path: String,
        recurse: bool,
        parts: SeParts,
    },
    /// `chown -R -h` then `chmod -R` on a tree.
    FixTree {
        path: String,
        owner: Option<String>,
        group: Option<String>,
        mode: Option<String>,
    },
}

struct Plan {
    steps: Vec<Step>,
    result: Args,
}

/// A time `access_time`/`modification_time` asks for (`preserve` is `None`).
#[derive(Clone, Debug, PartialEq)]
enum TimeSpec {
    /// The time of the change.
    Now,
    /// This local time on the host, as `YYYY-MM-DD HH:MM:SS` (what `touch -d` and `date -d`
    /// read).
    At(String),
}

/// `access_time` or `modification_time` (`value`) with its `format`: Ansible's default
/// (`now` for `state: touch`, else `preserve`), `now`, or a time parsed with the format
/// (Python's `strptime` directives).
fn time_arg(
    value: Option<&str>,
    format: &str,
    state: &str,
) -> Result<Option<TimeSpec>, ModuleError> {
    let default = if state == "touch" { "now" } else { "preserve" };
    let value = value.unwrap_or(default);
    match value {
        "preserve" => Ok(None),
        "now" => Ok(Some(TimeSpec::Now)),
        v => chrono::NaiveDateTime::parse_from_str(v, format)
            .map(|t| Some(TimeSpec::At(t.format("%Y-%m-%d %H:%M:%S").to_string())))
            .map_err(|_| {
                failed(format!(
                    "Error while obtaining timestamp for time {v} using format {format}: time data '{v}' does not match format '{format}'"
                ))
            }),
    }
}

/// `touch -c` of `path` setting the access (`-a`) or modification (`-m`) time to `spec`.
fn touch_time(path: &str, nofollow: bool, flag: &'static str, spec: &TimeSpec) -> Cmd {
    let c = if nofollow {
        Cmd::raw("touch -c -h")
    } else {
        Cmd::raw("touch -c")
    };
    let c = c.op(flag);
    match spec {
        TimeSpec::Now => c.op("--").arg(path),
        TimeSpec::At(t) => c.op("-d").arg(t.clone()).op("--").arg(path),
    }
}

/// Lists a tree (root included) as `type\tmode\tuid\tgid\towner\tgroup\tpath\0` (GNU find).
fn tree_listing(path: &str) -> Cmd {
    Cmd::raw("find -P")
        .arg(path)
        .op(r"-printf '%y\t%m\t%U\t%G\t%u\t%g\t%p\0'")
}

/// `stat -c %d:%i` of each path (device and inode, one line each; lstat).
fn inode_cmd(a: &str, b: &str) -> Cmd {
    Cmd::raw("stat -c '%d:%i' --").arg(a).arg(b)
}

impl Module for File {
    fn ahead(&self) -> Ahead {
        Ahead::Reads
    }

    fn name(&self) -> &'static str {
        "file"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(async move {
            let plan = drift
                .plan::<Plan>()
                .ok_or_else(|| ModuleError::Args("internal: foreign drift plan".into()))?;
            // Every step as one command line joined by `&&`: one round trip, and the first
            // failure stops the rest, as running them one by one would.
            let joined = plan
                .steps
                .iter()
                .filter_map(step_cmd)
                .reduce(|all, c| all.and(c));
            if let Some(c) = joined {
                ctx.run_ok(tr, c).await?;
            }
            Ok(plan.result.clone())
        })
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        let Ok(FileArgs { path, state, .. }) = FileArgs::parse(args) else {
            return Vec::new();
        };
        vec![match state.as_deref() {
            Some("absent") => Resource::Tree(path),
            // `state: file` never writes content: a file's mode and owner are enough.
            Some("file") | None => Resource::Attrs(path),
            _ => Resource::Path(path),
        }]
    }

    /// A time set to `now` is always a change, and so is `touch` (whose times default to
    /// `now`) unless both times are fixed.
    fn converges(&self, args: &Args) -> bool {
        let Ok(a) = FileArgs::parse(args) else {
            return true;
        };
        let touch = a.state.as_deref() == Some("touch");
        [&a.access_time, &a.modification_time]
            .iter()
            .all(|t| match t {
                Some(v) => v != "now",
                None => !touch,
            })
    }

    /// Under `--check`, a `touch` (or a time set to `now`) is a change, as Ansible's `file`
    /// reports it: it supports check mode.
    fn unpredicted(
        &self,
        _args: &Args,
        _drift: &crate::modules::runtime::Drift,
    ) -> crate::modules::runtime::Unpredicted {
        crate::modules::runtime::Unpredicted {
            skip: false,
            result: Args::new(),
        }
    }

    fn not_reversible(&self, given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        let times = given("access_time") || given("modification_time");
        let se = ["seuser", "serole", "setype", "selevel"]
            .iter()
            .any(|k| given(k));
        match (times, se) {
            (false, false) => None,
            (true, false) => Some(
                "access and modification times are not backed up: rollback leaves the times this run set",
            ),
            (false, true) => {
                Some("SELinux contexts are not backed up: rollback leaves the context this run set")
            }
            (true, true) => Some(
                "access and modification times and SELinux contexts are not backed up: rollback leaves the ones this run set",
            ),
        }
    }
}

/// The command for one step; `None` when the step has nothing to do.
fn step_cmd(step: &Step) -> Option<Cmd> {
    Some(match step {
        Step::Mkdir(p) => cmd::mkdir_p(p),
        Step::Remove(p) => rm_rf(p),
        Step::Symlink(t, l) => ln_sf_atomic(t, l),
        Step::Hardlink(s, p) => cmd::ln_atomic(s, p),
        Step::Touch(p, false) => Cmd::raw("touch --").arg(p.clone()),
        Step::Touch(p, true) => Cmd::raw("touch -h --").arg(p.clone()),
        Step::Times {
            path,
            nofollow,
            atime,
            mtime,
        } => {
            let a = atime.as_ref().map(|t| touch_time(path, *nofollow, "-a", t));
            let m = mtime.as_ref().map(|t| touch_time(path, *nofollow, "-m", t));
            return match (a, m) {
                (Some(a), Some(m)) => Some(a.and(m)),
                (a, m) => a.or(m),
            };
        }
        Step::Fix(p, fix) => return fix.cmd(p),
        Step::Chcon {
            path,
            recurse,
            parts,
        } => chcon_cmd(path, *recurse, parts)?,
        Step::FixTree {
            path,
            owner,
            group,
            mode,
        } => {
            let chown = (owner.is_some() || group.is_some()).then(|| {
                let spec = match (owner, group) {
                    (Some(o), Some(g)) => format!("{o}:{g}"),
                    (Some(o), None) => o.clone(),
                    (None, Some(g)) => format!(":{g}"),
                    (None, None) => String::new(),
                };
                Cmd::raw("chown -R -h --").arg(spec).arg(path.clone())
            });
            let chmod = mode
                .as_ref()
                .map(|m| Cmd::raw("chmod -R --").arg(m.clone()).arg(path.clone()));
            return match (chown, chmod) {
                (Some(a), Some(b)) => Some(a.and(b)),
                (a, b) => a.or(b),
            };
        }
    })
}

/// A symbolic mode for `chmod -R` that means what `parse_mode` means: a clause without `who`
/// gets `a` (chmod would otherwise mask it with the umask).
fn chmod_spec(mode: &Value) -> Result<String, ModuleError> {
    match mode {
        Value::Number(_) => Ok(mode_text(crate::modules::runtime::parse_mode(
            mode, None, false,
        )?)),
        Value::String(s) if s.trim().chars().all(|c| c.is_digit(8)) => Ok(mode_text(
            crate::modules::runtime::parse_mode(mode, None, false)?,
        )),
        Value::String(s) => Ok(s
            .split(',')
            .map(|c| {
                if c.starts_with(['=', '+', '-']) {
                    format!("a{c}")
                } else {
                    c.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(",")),
        other => Err(ModuleError::Args(format!(
            "mode must be octal or symbolic, found {other}"
        ))),
    }
}

async fn check(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let FileArgs {
        path,
        state: state_arg,
        mode,
        owner,
        group,
        recurse,
        src,
        force,
        follow: follow_links,
        modification_time,
        modification_time_format,
        access_time,
        access_time_format,
        seuser,
        serole,
        setype,
        selevel,
        unsafe_writes,
    } = FileArgs::parse(args)?;
    // Ansible's `file` never writes content, so its unsafe-writes fallback never applies.
    let _ = unsafe_writes;
    let se = SeParts([seuser, serole, setype, selevel]);
    let path = if path.len() > 1 {
        path.trim_end_matches('/').to_string()
    } else {
        path
    };
    let want = WantAttrs {
        mode: (!mode.is_null()).then_some(mode),
        owner,
        group,
    };
    let src_on_host = src.as_ref().map(|s| {
        if s.starts_with('/') {
            s.clone()
        } else {
            join(parent_of(&path), s)
        }
    });

    // Attributes only (no hashing); where a link at `path` is followed (`follow`: states file,
    // touch, directory), its real path and the resolved stat, made only for a link.
    let follows = follow_links && !matches!(state_arg.as_deref(), Some("link" | "hard" | "absent"));
    let mut cmds = vec![stat_attrs_cmd(&path)];
    if follows {
        cmds.push(cmd::stat_resolved_if_link_attrs_cmd(&path));
        cmds.push(realpath_cmd(&path));
    }
    match state_arg.as_deref() {
        Some("link") | Some("hard") => {
            let s = src_on_host
                .clone()
                .ok_or_else(|| ModuleError::Args("src is required for state=link/hard".into()))?;
            cmds.push(cmd::test_e(&s));
            if state_arg.as_deref() == Some("hard") {
                cmds.push(inode_cmd(&s, &path));
            }
        }
        _ => {}
    }
    let listing = recurse && matches!(state_arg.as_deref(), None | Some("directory"));
    if listing {
        cmds.push(tree_listing(&path));
    }
    // The SELinux question, last in the batch; not for `absent`.
    let se_asked = se.any() && state_arg.as_deref() != Some("absent");
    if se_asked {
        cmds.push(se_query(&path, follows, se.wants_default(), listing));
    }
    let mut all = run_batch(tr, ctx, &cmds, 1 << 20).await?;
    let se_out = if se_asked { all.pop() } else { None };
    let mut outs = all.into_iter();
    let cur = stat_of(&take(&mut outs)?, &path)?;
    let resolved = if follows {
        let resolved_out = take(&mut outs)?;
        let real_out = take(&mut outs)?;
        let real = real_out.stdout_lossy().trim_end_matches('\n').to_string();
        if matches!(cur.kind, PathKind::Link { .. }) && resolved_out.success() && !real.is_empty() {
            Some((real, stat_of(&resolved_out, &path)?))
        } else {
            None
        }
    } else {
        None
    };
    let state = match state_arg.as_deref() {
        Some(s) => s.to_string(),
        None => match cur.kind {
            PathKind::Directory => "directory".into(),
            PathKind::Absent if recurse => "directory".into(),
            _ => "file".into(),
        },
    };
    let (atime, mtime) = if state == "absent" {
        (None, None)
    } else {
        (
            time_arg(access_time.as_deref(), &access_time_format, &state)?,
            time_arg(
                modification_time.as_deref(),
                &modification_time_format,
                &state,
            )?,
        )
    };
    let plain_touch =
        state == "touch" && atime == Some(TimeSpec::Now) && mtime == Some(TimeSpec::Now);
    let mut result = Args::new();
    result.insert("path".into(), Value::from(path.clone()));
    result.insert("state".into(), Value::from(state.clone()));
    let mut changes = Vec::new();
    let mut steps = Vec::new();

    match state.as_str() {
        "absent" => {
            if cur.exists() {
                changes.push(attr(&path, "state", kind_word(&cur.kind), "absent"));
                steps.push(Step::Remove(path.clone()));
            }
        }
        "file" => {
            let (target, st) = follow(&path, &cur, resolved.as_ref());
            match st.kind {
                PathKind::Absent => {
                    return Err(failed(format!("file ({path}) is absent, cannot continue")));
                }
                PathKind::File => {}
                ref k if state_arg.is_some() => {
                    return Err(failed(format!(
                        "file ({path}) is {}, cannot continue",
                        kind_word(k)
                    )));
                }
                _ => {}
            }
            attrs_on(
                &want,
                &target,
                st,
                &path,
                &mut changes,
                &mut steps,
                &mut result,
            )?;
        }
        "touch" => {
            let (target, st) = follow(&path, &cur, resolved.as_ref());
            // Touched now (a directory only gets its times), unless fixed times were asked
            // for: then a missing file is created and the times are compared below.
            if plain_touch || !st.exists() {
                changes.push(attr(
                    &path,
                    "state",
                    kind_word(&st.kind),
                    if st.exists() { "touched" } else { "file" },
                ));
                let nofollow = !follow_links && matches!(st.kind, PathKind::Link { .. });
                steps.push(Step::Touch(target.clone(), nofollow));
            }
            if st.exists() {
                attrs_on(
                    &want,
                    &target,
                    st,
                    &path,
                    &mut changes,
                    &mut steps,
                    &mut result,
                )?;
            } else {
                let fix = AttrFix {
                    mode: want.mode_for(0o644, false)?,
                    owner: want.owner.clone(),
                    group: want.group.clone(),
                    changes: Vec::new(),
                };
                steps.push(Step::Fix(target, fix));
            }
        }
        "directory" => {
            let (target, st) = follow(&path, &cur, resolved.as_ref());
            match st.kind {
                PathKind::Absent => {
                    changes.push(attr(&path, "state", "absent", "directory"));
                    steps.push(Step::Mkdir(path.clone()));
                    let fix = AttrFix {
                        mode: want.mode_for(0o755, true)?,
                        owner: want.owner.clone(),
                        group: want.group.clone(),
                        changes: Vec::new(),
                    };
                    if !fix.is_empty() {
                        steps.push(Step::Fix(path.clone(), fix));
                    }
                }
                PathKind::Directory => {
                    if listing {
                        let out = take(&mut outs)?;
                        tree_drift(&want, &out, &target, &mut changes, &mut steps)?;
                    } else {
                        attrs_on(
                            &want,
                            &target,
                            st,
                            &path,
                            &mut changes,
                            &mut steps,
                            &mut result,
                        )?;
                    }
                }
                ref k => {
                    return Err(failed(format!(
                        "{path} already exists as a {}",
                        kind_word(k)
                    )));
                }
            }
        }
        "link" => {
            let src = src.unwrap_or_default();
            let src_exists = take(&mut outs)?.success();
            result.insert("dest".into(), Value::from(path.clone()));
            result.insert("src".into(), Value::from(src.clone()));
            match &cur.kind {
                PathKind::Link { target } if *target == src => {
                    let fix = WantAttrs {
                        mode: None,
                        ..want.clone()
                    }
                    .diff(&path, &cur)?;
                    changes.extend(fix.changes.iter().cloned());
                    if !fix.is_empty() {
                        steps.push(Step::Fix(path.clone(), fix));
                    }
                }
                PathKind::Directory => {
                    return Err(failed(format!(
                        "refusing to replace directory {path} with a symlink"
                    )));
                }
                PathKind::File | PathKind::Other if !force => {
                    return Err(failed(format!(
                        "refusing to convert from {} to symlink for {path}",
                        kind_word(&cur.kind)
                    )));
                }
                kind => {
                    if !src_exists && !force {
                        return Err(failed(format!(
                            "src file does not exist, use \"force=yes\" if you really want to create the link: {}",
                            src_on_host.unwrap_or_default()
                        )));
                    }
                    let before = match kind {
                        PathKind::Link { target } => target.clone(),
                        other => kind_word(other).to_string(),
                    };
                    changes.push(attr(&path, "target", before, src.clone()));
                    steps.push(Step::Symlink(src.clone(), path.clone()));
                    if want.owner.is_some() || want.group.is_some() {
                        steps.push(Step::Fix(
                            path.clone(),
                            AttrFix {
                                owner: want.owner.clone(),
                                group: want.group.clone(),
                                ..AttrFix::default()
                            },
                        ));
                    }
                }
            }
        }
        "hard" => {
            let src = src.unwrap_or_default();
            let src_on_host = src_on_host.unwrap_or_default();
            if !take(&mut outs)?.success() {
                return Err(failed(format!("src file does not exist: {src_on_host}")));
            }
            let inodes = take(&mut outs)?;
            let lines: Vec<String> = inodes.stdout_lossy().lines().map(str::to_string).collect();
            let same = inodes.success() && lines.len() == 2 && lines[0] == lines[1];
            result.insert("dest".into(), Value::from(path.clone()));
            result.insert("src".into(), Value::from(src.clone()));
            if same {
                attrs_on(
                    &want,
                    &path,
                    &cur,
                    &path,
                    &mut changes,
                    &mut steps,
                    &mut result,
                )?;
            } else {
                match &cur.kind {
                    PathKind::Absent => {}
                    PathKind::Directory => {
                        return Err(failed(format!(
                            "refusing to replace directory {path} with a hard link"
                        )));
                    }
                    k if !force => {
                        return Err(failed(format!(
                            "Cannot link, {} exists at destination {path}",
                            kind_word(k)
                        )));
                    }
                    _ => {}
                }
                changes.push(attr(&path, "state", kind_word(&cur.kind), "hard"));
                steps.push(Step::Hardlink(src_on_host, path.clone()));
                let fix = AttrFix {
                    mode: want
                        .mode
                        .as_ref()
                        .map(|m| crate::modules::runtime::parse_mode(m, None, false))
                        .transpose()?,
                    owner: want.owner.clone(),
                    group: want.group.clone(),
                    changes: Vec::new(),
                };
                if !fix.is_empty() {
                    steps.push(Step::Fix(path.clone(), fix));
                }
            }
        }
        other => {
            return Err(ModuleError::Args(format!("unknown state '{other}'")));
        }
    }
    if let Some(out) = &se_out {
        let (target, _) = follow(&path, &cur, resolved.as_ref());
        let tree = listing && cur_is_dir(&cur, resolved.as_ref());
        se_drift(
            &se,
            out,
            SeAt {
                shown: &path,
                target: &target,
                tree,
            },
            &mut changes,
            &mut steps,
            &mut result,
        )?;
    }
    if !plain_touch && (atime.is_some() || mtime.is_some()) {
        let (target, st) = follow(&path, &cur, resolved.as_ref());
        let nofollow = !follow_links && matches!(st.kind, PathKind::Link { .. });
        times_drift(
            tr,
            ctx,
            Times {
                shown: &path,
                target: &target,
                exists: st.exists(),
                nofollow,
                atime,
                mtime,
            },
            &mut changes,
            &mut steps,
        )
        .await?;
    }
    if changes.is_empty() {
        return Ok(Verdict::InSync { result });
    }
    Ok(Verdict::Drift(Drift::new(changes, Plan { steps, result })))
}

/// Whether the path (or what a followed link at it points to) is a directory now.
fn cur_is_dir(cur: &PathState, resolved: Option<&(String, PathState)>) -> bool {
    let (_, st) = follow("", cur, resolved);
    st.kind == PathKind::Directory
}

/// The parts of an SELinux context (user, role, type, level) a task asks for; `None` leaves
/// the path's own part, `_default` stands for the policy's default (`matchpathcon`).
#[derive(Clone, Debug, Default, PartialEq)]
struct SeParts([Option<String>; 4]);

impl SeParts {
    fn any(&self) -> bool {
        self.0.iter().any(Option::is_some)
    }

    fn wants_default(&self) -> bool {
        self.0.iter().any(|p| p.as_deref() == Some("_default"))
    }

    /// `_default` replaced by the part of the policy's `default` context (without one: the
    /// path's own part, as Ansible does); the level dropped without MLS.
    fn resolve(&self, default: Option<&str>, mls: bool) -> SeParts {
        let d: Vec<&str> = default
            .map(|d| d.splitn(4, ':').collect())
            .unwrap_or_default();
        let mut out = self.clone();
        for (i, p) in out.0.iter_mut().enumerate() {
            if p.as_deref() == Some("_default") {
                *p = d.get(i).filter(|s| !s.is_empty()).map(|s| (*s).to_string());
            }
        }
        if !mls {
            out.0[3] = None;
        }
        out
    }

    /// The context `cur` (`user:role:type[:level]`) with the asked parts put in.
    fn applied_to(&self, cur: &str) -> String {
        let mut parts: Vec<String> = cur.splitn(4, ':').map(str::to_string).collect();
        for (i, p) in self.0.iter().enumerate() {
            if let Some(p) = p
                && i < parts.len()
            {
                parts[i] = p.clone();
            }
        }
        parts.join(":")
    }

    /// The asked parts, `*` for the others (a path that does not exist yet).
    fn shown(&self) -> String {
        let mut parts: Vec<&str> = self.0.iter().map(|p| p.as_deref().unwrap_or("*")).collect();
        if self.0[3].is_none() {
            parts.pop();
        }
        parts.join(":")
    }
}

/// Asks the host about SELinux for `path` (what a link at it points to when `follows`): exits
/// 3 when SELinux is not enabled (no `selinuxenabled`, or it says disabled); else prints,
/// each NUL-terminated, the MLS flag, the current context (empty when the path is missing),
/// with `default` the policy's default context (`matchpathcon -n`, empty when unknown), and
/// with `tree` `CONTEXT\tPATH` of everything below the directory.
fn se_query(path: &str, follows: bool, default: bool, tree: bool) -> Cmd {
    let mut c = Cmd::raw("set --").arg(path).op(
        r#"; { command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled; } || exit 3; p_=$1"#,
    );
    if follows {
        c = c.op(r#"; if [ -L "$1" ]; then p_=$(realpath -e -- "$1" 2>/dev/null) || p_=$1; fi"#);
    }
    c = c.op(
        r#"; m_=$(cat /sys/fs/selinux/mls 2>/dev/null) || m_=0; c_=$(stat -c %C -- "$p_" 2>/dev/null) || c_=; printf '%s\0%s\0' "$m_" "$c_""#,
    );
    if default {
        c = c.op(r#"; d_=$(matchpathcon -n -- "$p_" 2>/dev/null) || d_=; printf '%s\0' "$d_""#);
    }
    if tree {
        c = c.op(r#"; if [ -d "$p_" ]; then find -P "$p_" -mindepth 1 -printf '%Z\t%p\0'; fi"#);
    }
    c.op("; exit 0")
}

/// `chcon -h` (`-R` for a tree) setting the asked parts; `None` when none is asked.
fn chcon_cmd(path: &str, recurse: bool, parts: &SeParts) -> Option<Cmd> {
    if !parts.any() {
        return None;
    }
    let mut c = if recurse {
        Cmd::raw("chcon -R -h")
    } else {
        Cmd::raw("chcon -h")
    };
    for (flag, p) in ["-u", "-r", "-t", "-l"].iter().zip(&parts.0) {
        if let Some(p) = p {
            c = c.op(flag).arg(p.clone());
        }
    }
    Some(c.op("--").arg(path))
}

/// Where the SELinux context is compared: the path as reported, the path acted on (a followed
/// link's real path) and whether its tree is included (`recurse`).
struct SeAt<'a> {
    shown: &'a str,
    target: &'a str,
    tree: bool,
}

/// SELinux drift from [`se_query`]'s output: nothing when SELinux is not enabled (Ansible
/// ignores the se* arguments then); else the asked parts compared with the current context (a
/// path that does not exist yet gets them after it is created) and one `chcon` step. Reports
/// `secontext` in the result, as Ansible does on an SELinux host.
fn se_drift(
    want: &SeParts,
    out: &Output,
    at: SeAt<'_>,
    changes: &mut Vec<Change>,
    steps: &mut Vec<Step>,
    result: &mut Args,
) -> Result<(), ModuleError> {
    if out.status == 3 {
        return Ok(());
    }
    if !out.success() || out.truncated.stdout > 0 {
        return Err(failed(format!(
            "cannot read the SELinux context of {}: {}",
            at.shown,
            out.stderr_lossy().trim()
        )));
    }
    let text = out.stdout_lossy();
    let mut recs = text.split('\0');
    let mls_flag = recs.next().unwrap_or_default();
    let cur = recs.next().unwrap_or_default().trim_end();
    let default = if want.wants_default() {
        recs.next().map(str::trim_end).filter(|d| !d.is_empty())
    } else {
        None
    };
    let mls = mls_flag.trim() == "1" || cur.split(':').count() >= 4;
    let parts = want.resolve(default, mls);
    if !cur.is_empty() {
        result.insert("secontext".into(), Value::from(cur));
    }
    if !parts.any() {
        return Ok(());
    }
    let mut differs = false;
    if cur.is_empty() {
        changes.push(attr(at.shown, "secontext", "absent", parts.shown()));
        differs = true;
    } else {
        let new = parts.applied_to(cur);
        if new != cur {
            changes.push(attr(at.shown, "secontext", cur, new.clone()));
            differs = true;
        }
        result.insert("secontext".into(), Value::from(new));
    }
    let mut tree_differs = false;
    if at.tree {
        for rec in recs.filter(|r| !r.is_empty()) {
            let Some((ctx, p)) = rec.split_once('\t') else {
                return Err(failed(format!("unexpected find output {rec:?}")));
            };
            let new = parts.applied_to(ctx);
            if !ctx.is_empty() && new != ctx {
                changes.push(attr(p, "secontext", ctx, new));
                tree_differs = true;
            }
        }
    }
    if differs || tree_differs {
        steps.push(Step::Chcon {
            path: at.target.to_string(),
            recurse: tree_differs,
            parts,
        });
    }
    Ok(())
}

/// The times a task asks for, of one path.
struct Times<'a> {
    shown: &'a str,
    target: &'a str,
    exists: bool,
    nofollow: bool,
    atime: Option<TimeSpec>,
    mtime: Option<TimeSpec>,
}

/// Compares the path's access and modification times with what the task asks for (one more
/// round trip: `stat` and the host's `date -d` for each fixed time, in the host's time zone as
/// Ansible's `mktime`); `now` is always a change. Adds the `Times` step after the others (a
/// path they create gets its times then).
async fn times_drift(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    t: Times<'_>,
    changes: &mut Vec<Change>,
    steps: &mut Vec<Step>,
) -> Result<(), ModuleError> {
    let wanted = [("atime", &t.atime), ("mtime", &t.mtime)];
    let mut current = ["absent".to_string(), "absent".to_string()];
    let mut differs = [t.atime.is_some(), t.mtime.is_some()];
    if t.exists {
        let stat = if t.nofollow {
            Cmd::raw("stat -c '%.9X %.9Y' --")
        } else {
            Cmd::raw("stat -L -c '%.9X %.9Y' --")
        };
        let mut cmds = vec![stat.arg(t.target)];
        for (_, w) in wanted {
            if let Some(TimeSpec::At(at)) = w {
                cmds.push(Cmd::raw("date +%s -d").arg(at.clone()));
            }
        }
        let outs = match ctx.read(tr, &cmds, 4096).await? {
            Ok(o) => o,
            Err(e) => return Err(failed(e.to_string())),
        };
        let mut outs = outs.into_iter();
        let stat = take(&mut outs)?;
        let text = stat.stdout_lossy();
        let now: Vec<&str> = text.split_whitespace().collect();
        if !stat.success() || now.len() != 2 {
            return Err(failed(format!(
                "cannot read the times of {}: {}",
                t.target,
                stat.stderr_lossy().trim()
            )));
        }
        for (i, (_, w)) in wanted.iter().enumerate() {
            current[i] = now[i].to_string();
            differs[i] = match w {
                None => false,
                Some(TimeSpec::Now) => true,
                Some(TimeSpec::At(at)) => {
                    let out = take(&mut outs)?;
                    let epoch = out.stdout_lossy().trim().to_string();
                    if !out.success() || epoch.is_empty() {
                        return Err(failed(format!(
                            "the host cannot read the time {at}: {}",
                            out.stderr_lossy().trim()
                        )));
                    }
                    now[i].parse::<f64>().ok() != epoch.parse::<f64>().ok()
                }
            };
        }
    }
    if !differs.iter().any(|d| *d) {
        return Ok(());
    }
    let mut step_times = [None, None];
    for (i, (what, w)) in wanted.iter().enumerate() {
        if differs[i]
            && let Some(w) = w
        {
            let after = match w {
                TimeSpec::Now => "now".to_string(),
                TimeSpec::At(at) => at.clone(),
            };
            changes.push(attr(t.shown, what, current[i].clone(), after));
            step_times[i] = Some(w.clone());
        }
    }
    let [atime, mtime] = step_times;
    steps.push(Step::Times {
        path: t.target.to_string(),
        nofollow: t.nofollow,
        atime,
        mtime,
    });
    Ok(())
}

/// For a symlink, the real path and what it points to; otherwise the path itself.
fn follow<'s>(
    path: &str,
    cur: &'s PathState,
    resolved: Option<&'s (String, PathState)>,
) -> (String, &'s PathState) {
    match (&cur.kind, resolved) {
        (PathKind::Link { .. }, Some((real, st))) => (real.clone(), st),
        _ => (path.to_string(), cur),
    }
}

/// Attribute drift of one existing path; fills the result's `mode`/`owner`/`group`/`uid`/
/// `gid`/`size` with the values after apply.
fn attrs_on(
    want: &WantAttrs,
    target: &str,
    st: &PathState,
    shown: &str,
    changes: &mut Vec<Change>,
    steps: &mut Vec<Step>,
    result: &mut Args,
) -> Result<(), ModuleError> {
    let fix = want.diff(shown, st)?;
    result.insert(
        "mode".into(),
        Value::from(mode_text(fix.mode.unwrap_or(st.mode & 0o7777))),
    );
    result.insert(
        "owner".into(),
        Value::from(fix.owner.clone().unwrap_or_else(|| st.owner.clone())),
    );
    result.insert(
        "group".into(),
        Value::from(fix.group.clone().unwrap_or_else(|| st.group.clone())),
    );
    if fix.owner.is_none() {
        result.insert("uid".into(), Value::from(st.uid));
    }
    if fix.group.is_none() {
        result.insert("gid".into(), Value::from(st.gid));
    }
    result.insert("size".into(), Value::from(st.size));
    if !fix.is_empty() {
        changes.extend(fix.changes.iter().cloned());
        steps.push(Step::Fix(target.to_string(), fix));
    }
    Ok(())
}

/// Drift of a whole tree (`recurse: yes`) from a [`tree_listing`]; one `FixTree` step fixes it.
fn tree_drift(
    want: &WantAttrs,
    out: &crate::transport::Output,
    root: &str,
    changes: &mut Vec<Change>,
    steps: &mut Vec<Step>,
) -> Result<(), ModuleError> {
    if out.truncated.stdout > 0 {
        return Err(failed(format!(
            "{root}: tree too large to list for recurse"
        )));
    }
    let mut need_owner = false;
    let mut need_group = false;
    let mut need_mode = false;
    for rec in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rec = String::from_utf8_lossy(rec);
        let f: Vec<&str> = rec.splitn(7, '\t').collect();
        let [ty, mode, uid, gid, owner, group, p] = f[..] else {
            return Err(failed(format!("unexpected find output {rec:?}")));
        };
        let bad = || failed(format!("unexpected find output {rec:?}"));
        let st = PathState {
            kind: match ty {
                "d" => PathKind::Directory,
                "f" => PathKind::File,
                "l" => PathKind::Link {
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
            sha256: None,
        };
        let fix = want.diff(p, &st)?;
        need_owner |= fix.owner.is_some();
        need_group |= fix.group.is_some();
        need_mode |= fix.mode.is_some();
        changes.extend(fix.changes);
    }
    if need_owner || need_group || need_mode {
        steps.push(Step::FixTree {
            path: root.to_string(),
            owner: if need_owner || need_group {
                want.owner.clone()
            } else {
                None
            },
            group: if need_owner || need_group {
                want.group.clone()
            } else {
                None
            },
            mode: if need_mode {
                want.mode.as_ref().map(chmod_spec).transpose()?
            } else {
                None
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::system::testutil::{
        Ran, args, check_apply, ctx, fake_dirs, fake_env, fake_tool, recorded, transport,
    };

    /// Fake SELinux tools: `selinuxenabled` exits `enabled` (none: not installed, as on
    /// hosts without SELinux); `stat -c %C` prints
    /// `$FAKE/context` (fails when it is missing); `chcon` logs its arguments and puts the
    /// given parts into `$FAKE/context`; `matchpathcon -n` prints `$FAKE/default`.
    fn fake_selinux(bin: &std::path::Path, enabled: Option<u8>) {
        if let Some(code) = enabled {
            fake_tool(bin, "selinuxenabled", &format!("exit {code}"));
        }
        fake_tool(
            bin,
            "stat",
            r#"if [ "$1" = -c ] && [ "$2" = %C ]; then exec cat "$FAKE/context"; fi
exec /usr/bin/stat "$@""#,
        );
        fake_tool(
            bin,
            "chcon",
            r#"echo "$@" >> "$FAKE/chcon.log"
c=$(cat "$FAKE/context" 2>/dev/null) || c=system_u:object_r:default_t:s0
u=${c%%:*}; c=${c#*:}; r=${c%%:*}; c=${c#*:}; t=${c%%:*}; l=${c#*:}
[ "$l" = "$t" ] && l=
while [ $# -gt 0 ]; do
  case $1 in -u) u=$2; shift;; -r) r=$2; shift;; -t) t=$2; shift;; -l) l=$2; shift;; esac
  shift
done
if [ -n "$l" ]; then printf '%s:%s:%s:%s' "$u" "$r" "$t" "$l"; else printf '%s:%s:%s' "$u" "$r" "$t"; fi > "$FAKE/context""#,
        );
        fake_tool(bin, "matchpathcon", r#"exec cat "$FAKE/default""#);
    }

    struct Case {
        name: &'static str,
        enabled: Option<u8>,
        context: Option<&'static str>,
        default: &'static str,
        task: serde_json::Value,
        /// The `secontext` change (before, after), or none: in sync.
        change: Option<(&'static str, &'static str)>,
        /// What `chcon` got (`PATH` stands for the path).
        chcon: &'static str,
        /// The context after the run.
        after: Option<&'static str>,
    }

    #[tokio::test]
    async fn selinux_parts_are_set_where_selinux_is_enabled_and_ignored_elsewhere() {
        let cases = [
            Case {
                name: "not installed: ignored",
                enabled: None,
                context: Some("system_u:object_r:default_t:s0"),
                default: "",
                task: json!({"setype": "httpd_sys_content_t", "selevel": "_default"}),
                change: None,
                chcon: "",
                after: Some("system_u:object_r:default_t:s0"),
            },
            Case {
                name: "disabled: ignored",
                enabled: Some(1),
                context: Some("system_u:object_r:default_t:s0"),
                default: "",
                task: json!({"setype": "httpd_sys_content_t"}),
                change: None,
                chcon: "",
                after: Some("system_u:object_r:default_t:s0"),
            },
            Case {
                name: "type differs",
                enabled: Some(0),
                context: Some("system_u:object_r:default_t:s0"),
                default: "",
                task: json!({"setype": "httpd_sys_content_t"}),
                change: Some((
                    "system_u:object_r:default_t:s0",
                    "system_u:object_r:httpd_sys_content_t:s0",
                )),
                chcon: "-h -t httpd_sys_content_t -- PATH",
                after: Some("system_u:object_r:httpd_sys_content_t:s0"),
            },
            Case {
                name: "already so",
                enabled: Some(0),
                context: Some("system_u:object_r:httpd_sys_content_t:s0"),
                default: "",
                task: json!({"setype": "httpd_sys_content_t", "seuser": "system_u"}),
                change: None,
                chcon: "",
                after: Some("system_u:object_r:httpd_sys_content_t:s0"),
            },
            Case {
                name: "_default is the policy's part",
                enabled: Some(0),
                context: Some("unconfined_u:object_r:user_tmp_t:s0"),
                default: "system_u:object_r:etc_t:s0",
                task: json!({"seuser": "_default", "setype": "_default", "selevel": "s0"}),
                change: Some((
                    "unconfined_u:object_r:user_tmp_t:s0",
                    "system_u:object_r:etc_t:s0",
                )),
                chcon: "-h -u system_u -t etc_t -l s0 -- PATH",
                after: Some("system_u:object_r:etc_t:s0"),
            },
            Case {
                name: "_default without a policy default leaves the part",
                enabled: Some(0),
                context: Some("unconfined_u:object_r:user_tmp_t:s0"),
                default: "",
                task: json!({"setype": "_default"}),
                change: None,
                chcon: "",
                after: Some("unconfined_u:object_r:user_tmp_t:s0"),
            },
            Case {
                name: "no level without MLS",
                enabled: Some(0),
                context: Some("system_u:object_r:etc_t"),
                default: "",
                task: json!({"selevel": "s0:c1"}),
                change: None,
                chcon: "",
                after: Some("system_u:object_r:etc_t"),
            },
            Case {
                name: "a new directory gets the parts after mkdir",
                enabled: Some(0),
                context: None,
                default: "",
                task: json!({"state": "directory", "setype": "httpd_sys_content_t"}),
                change: Some(("absent", "*:*:httpd_sys_content_t")),
                chcon: "-h -t httpd_sys_content_t -- PATH",
                after: Some("system_u:object_r:httpd_sys_content_t:s0"),
            },
        ];
        for c in cases {
            let (dir, bin, state) = fake_dirs();
            fake_selinux(&bin, c.enabled);
            let path = if c.context.is_some() {
                let p = dir.path().join("f");
                std::fs::write(&p, "x").unwrap();
                std::fs::write(state.join("context"), c.context.unwrap_or_default()).unwrap();
                p
            } else {
                dir.path().join("new")
            };
            let path = path.display().to_string();
            std::fs::write(state.join("default"), c.default).unwrap();
            let mut task = c.task.clone();
            task["path"] = json!(path);
            let a = args(task);
            let cx = ctx(dir.path(), None, fake_env(&bin, &state));
            let mut tr = transport();
            let ran = check_apply(&File, &mut tr, &a, &cx).await;
            let check_trips = recorded(&tr).len();
            match (&ran, c.change) {
                (Ran::InSync(_), None) => {}
                (Ran::Applied(changes, Ok(_)), Some((before, after))) => {
                    assert!(
                        changes.contains(&attr(&path, "secontext", before, after)),
                        "{}: {changes:?}",
                        c.name
                    );
                }
                other => panic!("{}: {other:?}", c.name),
            }
            assert!(check_trips >= 1, "{}", c.name);
            let log = std::fs::read_to_string(state.join("chcon.log")).unwrap_or_default();
            let want_log = if c.chcon.is_empty() {
                String::new()
            } else {
                format!("{}\n", c.chcon.replace("PATH", &path))
            };
            assert_eq!(log, want_log, "{}", c.name);
            let now = std::fs::read_to_string(state.join("context")).ok();
            assert_eq!(now.as_deref(), c.after, "{}", c.name);
            // Converged: a second check is in sync.
            let mut tr = transport();
            match check_apply(&File, &mut tr, &a, &cx).await {
                Ran::InSync(result) => {
                    if c.enabled == Some(0) {
                        assert_eq!(result.get("secontext"), c.after.map(Value::from).as_ref());
                    } else {
                        assert!(!result.contains_key("secontext"), "{}", c.name);
                    }
                }
                other => panic!("{}: second run {other:?}", c.name),
            }
        }
    }

    #[tokio::test]
    async fn selinux_recurse_sets_the_tree_with_one_chcon() {
        let (dir, bin, state) = fake_dirs();
        fake_selinux(&bin, Some(0));
        // The tree's contexts (`find -printf '%Z...'`): `sub` has the default type.
        fake_tool(
            &bin,
            "find",
            r#"case "$*" in *%Z*) printf 'system_u:object_r:default_t:s0\t%s/sub\0' "$2";; *) exec /usr/bin/find "$@";; esac"#,
        );
        let root = dir.path().join("www");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(state.join("context"), "system_u:object_r:default_t:s0").unwrap();
        std::fs::write(state.join("default"), "").unwrap();
        let root = root.display().to_string();
        let a = args(
            json!({"path": root, "state": "directory", "recurse": true, "setype": "httpd_sys_content_t"}),
        );
        let cx = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        let ran = check_apply(&File, &mut tr, &a, &cx).await;
        let Ran::Applied(changes, Ok(_)) = ran else {
            panic!("{ran:?}");
        };
        let sub = format!("{root}/sub");
        assert_eq!(
            changes,
            vec![
                attr(
                    &root,
                    "secontext",
                    "system_u:object_r:default_t:s0",
                    "system_u:object_r:httpd_sys_content_t:s0"
                ),
                attr(
                    &sub,
                    "secontext",
                    "system_u:object_r:default_t:s0",
                    "system_u:object_r:httpd_sys_content_t:s0"
                ),
            ]
        );
        let log = std::fs::read_to_string(state.join("chcon.log")).unwrap();
        assert_eq!(log, format!("-R -h -t httpd_sys_content_t -- {root}\n"));
    }

    #[test]
    fn se_parts_resolve_apply_and_show() {
        let p = SeParts([None, None, Some("_default".into()), Some("s0".into())]);
        let r = p.resolve(Some("system_u:object_r:etc_t:s0:c0.c1023"), true);
        assert_eq!(r.0[2].as_deref(), Some("etc_t"));
        assert_eq!(r.0[3].as_deref(), Some("s0"));
        assert_eq!(r.applied_to("u:r:t:s0:c1"), "u:r:etc_t:s0");
        assert_eq!(p.resolve(None, false).0, [None, None, None, None]);
        assert_eq!(r.shown(), "*:*:etc_t:s0");
        let c = chcon_cmd("/a b", true, &r).unwrap();
        assert_eq!(
            c.to_shell().unwrap(),
            "chcon -R -h -t 'etc_t' -l 's0' -- '/a b'"
        );
        assert!(chcon_cmd("/x", false, &SeParts::default()).is_none());
    }

    #[test]
    fn file_args_keep_ansible_defaults_and_refuse_attributes() {
        let a = FileArgs::parse(&args(json!({"path": "/x", "unsafe_writes": true}))).unwrap();
        // No state means "what the path is", not `file`.
        assert_eq!(a.state, None);
        assert!(a.follow && !a.force && !a.recurse);
        assert_eq!(a.access_time_format, "%Y%m%d%H%M.%S");
        let e = FileArgs::parse(&args(json!({"path": "/x", "attributes": "+i"}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "argument 'attributes' of module 'file' is not supported by rdeploy"
        );
    }

    #[test]
    fn not_reversible_names_times_and_selinux_contexts() {
        let given = |names: &'static [&'static str]| move |k: &str| names.contains(&k);
        assert_eq!(File.not_reversible(&given(&["mode"])), None);
        assert!(
            File.not_reversible(&given(&["setype"]))
                .unwrap()
                .starts_with("SELinux contexts")
        );
        assert!(
            File.not_reversible(&given(&["access_time", "selevel"]))
                .unwrap()
                .contains("times and SELinux contexts")
        );
    }
}
