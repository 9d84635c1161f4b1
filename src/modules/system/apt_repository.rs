//! `apt_repository`: one-line APT sources (`deb ...`/`deb-src ...`) in `/etc/apt/sources.list`
//! and `/etc/apt/sources.list.d/*.list`.
//!
//! Owns Ansible's line model (`SourcesList._parse`: a leading `#` disables a line, a later `#`
//! starts its comment, words are joined by one space), its file-name derivation from the repo
//! line (`_suggest_filename`), enabling a disabled copy of the line wherever it is, removing
//! every enabled copy, writing a changed file as Ansible dumps it (a file left empty is
//! removed) and `apt-get update` afterwards with Ansible's retries; when the update keeps
//! failing, the files are put back as they were. PPAs (`ppa:`) need Launchpad's API and a
//! keyserver and are refused. It must not format shell lines.

use std::time::Duration;

use serde_json::Value;

use super::common::{failed, result};
use super::repofile::{self, FileEdit};
use crate::modules::files::common::{TextFile, WantAttrs, join};
use crate::modules::runtime::{
    Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// `apt_repository`.
pub struct AptRepository;

/// APT's main sources file (`Dir::Etc::sourcelist`).
pub const SOURCES_LIST: &str = "/etc/apt/sources.list";
/// APT's sources directory (`Dir::Etc::sourceparts`).
pub const SOURCES_DIR: &str = "/etc/apt/sources.list.d";

crate::module_args! {
    /// Adds or removes an APT source line. `present` enables a disabled copy of the line
    /// wherever it is, or appends it to `/etc/apt/sources.list.d/FILENAME.list` (the name
    /// derived from the line as Ansible derives it); `absent` removes every enabled copy, and a
    /// file left empty. A changed file is written as Ansible writes it (one space between
    /// words, `# ` before a disabled line); unlike Ansible, files that did not change are not
    /// rewritten, and a `filename` with a `/` (a path) is read before it is written, so the
    /// task converges there too. `ppa:` repositories are not supported (they need Launchpad's
    /// API and a keyserver): give the PPA's `deb` line and its key (`apt_key` with a keyring,
    /// or `deb822_repository`). rdeploy does not need python3-apt.
    #[module(
        name = "apt_repository",
        backup = "The list file the line goes to, /etc/apt/sources.list and the /etc/apt/sources.list.d folder (content, mode, or absence); rollback puts them back. The apt cache refreshed by update_cache is not restored (the next apt-get update refreshes it).",
        returns = &[("repo", "the repo line"), ("state", "present or absent"), ("sources_added", "list files created"), ("sources_removed", "list files removed")],
        examples = "- apt_repository:\n    repo: deb [signed-by=/etc/apt/keyrings/example.gpg] https://apt.example.com/debian bookworm main\n    filename: example\n    state: present"
    )]
    pub struct AptRepositoryArgs {
        /// The source line (`deb URI SUITE COMPONENT...` or `deb-src ...`).
        #[arg(required)]
        repo: String,
        /// Whether the line is there.
        #[arg(default = "present", choices = &["present", "absent"])]
        state: String,
        /// Mode of a list file the line is appended to (new files get `0644` otherwise).
        mode: Value,
        /// Run `apt-get update` after a change.
        #[arg(default = "yes", aliases = &["update-cache"])]
        update_cache: bool,
        /// How many times `apt-get update` is tried.
        #[arg(default = "5")]
        update_cache_retries: i64,
        /// The longest wait in seconds between two tries (the wait doubles from 1 s).
        #[arg(default = "12")]
        update_cache_retry_max_delay: i64,
        /// The list file's name without `.list` (default: derived from the repo line); with a
        /// `/` it is the file's path (`.list` is added).
        filename: Option<String>,
        /// Accepted for compatibility: rdeploy does not use python3-apt, so nothing is installed.
        #[arg(default = "yes")]
        install_python_apt: bool,
        /// Only used by Ansible to ask Launchpad about a PPA, which rdeploy refuses.
        #[arg(default = "yes")]
        validate_certs: bool,
        /// Only used by Ansible to expand a PPA, which rdeploy refuses.
        codename: Option<String>,
    }
}

/// One line of a sources file as Ansible's `_parse` reads it.
#[derive(Clone, Debug, PartialEq)]
struct Line {
    valid: bool,
    enabled: bool,
    source: String,
    comment: String,
}

fn parse_line(line: &str) -> Line {
    let mut line = line.trim();
    let mut enabled = true;
    if let Some(rest) = line.strip_prefix('#') {
        enabled = false;
        line = rest;
    }
    let mut comment = String::new();
    if let Some(i) = line.find('#')
        && i > 0
    {
        comment = line[i + 1..].trim().to_string();
        line = &line[..i];
    }
    let mut source = line.trim().to_string();
    let mut valid = false;
    let chunks: Vec<&str> = source.split_whitespace().collect();
    if let Some(first) = chunks.first()
        && (*first == "deb" || *first == "deb-src")
    {
        valid = true;
        source = chunks.join(" ");
    }
    Line {
        valid,
        enabled,
        source,
        comment,
    }
}

/// A file's lines (Python's line iteration: the last line may lack its newline).
fn parse_file(text: &str) -> Vec<Line> {
    text.split_inclusive('\n').map(parse_line).collect()
}

/// Ansible's `dump` of one file; `None` when it has no lines (Ansible removes it).
fn dump(lines: &[Line]) -> Option<String> {
    if lines.is_empty() {
        return None;
    }
    let mut out = String::new();
    for l in lines {
        if !l.enabled {
            out.push_str("# ");
        }
        out.push_str(&l.source);
        if !l.comment.is_empty() {
            out.push_str(" # ");
            out.push_str(&l.comment);
        }
        out.push('\n');
    }
    Some(out)
}

/// The repo line as a source, or Ansible's "Invalid repository string" error.
fn source_of(repo: &str) -> Result<String, ModuleError> {
    let l = parse_line(repo);
    if !l.valid || !l.enabled {
        // Ansible's message names the line as `_parse` left it (comment cut off).
        let mut shown = repo.trim();
        shown = shown.strip_prefix('#').unwrap_or(shown);
        if let Some(i) = shown.find('#')
            && i > 0
        {
            shown = &shown[..i];
        }
        return Err(ModuleError::Args(format!(
            "Invalid repository string: {shown}"
        )));
    }
    Ok(l.source)
}

/// Ansible's `_suggest_filename` for `source`, and `_expand_path` of it.
fn list_path(source: &str, filename: Option<&str>, dir: &str) -> Result<String, ModuleError> {
    let name = match filename {
        Some(f) => f.to_string(),
        None => {
            let opts =
                regex::Regex::new(r"\[[^\]]+\]").map_err(|e| failed(e.to_string(), Args::new()))?;
            let scheme =
                regex::Regex::new(r"\w+://").map_err(|e| failed(e.to_string(), Args::new()))?;
            let line = opts.replace_all(source, "");
            let line = scheme.replace_all(&line, "");
            let first = line
                .split_whitespace()
                .find(|p| *p != "deb" && *p != "deb-src")
                .ok_or_else(|| ModuleError::Args(format!("Invalid repository string: {source}")))?;
            let host = first.split_once('@').map_or(first, |(_, h)| h);
            let cleaned: String = host
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
                .collect();
            cleaned.split_whitespace().collect::<Vec<_>>().join("_")
        }
    };
    let file = format!("{name}.list");
    if !file.contains('/') {
        return Ok(join(dir, &file));
    }
    if !file.starts_with('/') {
        return Err(ModuleError::Args(format!(
            "filename {name:?} is a relative path: give a plain name (a file in {SOURCES_DIR}) or an absolute path"
        )));
    }
    Ok(file)
}

/// One sources file as read, and as the task leaves it.
struct Sources {
    path: String,
    tf: TextFile,
    before: Vec<Line>,
    after: Vec<Line>,
}

/// The task's arguments, checked.
struct Want {
    source: String,
    present: bool,
    target: String,
    attrs: WantAttrs,
    update: Option<(i64, i64)>,
}

fn want(a: AptRepositoryArgs, at: &Apt) -> Result<Want, ModuleError> {
    // validate_certs, codename and install_python_apt only matter to what rdeploy refuses
    // (PPAs) or does not need (python3-apt).
    let _ = (a.validate_certs, a.codename, a.install_python_apt);
    if a.repo.is_empty() {
        return Err(ModuleError::Args(
            "Please set argument 'repo' to a non-empty value".into(),
        ));
    }
    if a.repo.starts_with("ppa:") {
        return Err(ModuleError::Args(format!(
            "{}: ppa: repositories are not supported by rdeploy (they need Launchpad's API and a keyserver); give the PPA's deb line and its signing key (apt_key with a keyring, or deb822_repository)",
            a.repo
        )));
    }
    let source = source_of(&a.repo)?;
    let target = list_path(&source, a.filename.as_deref(), &at.dir)?;
    let mut attrs_args = Args::new();
    attrs_args.insert("mode".into(), a.mode);
    Ok(Want {
        source,
        present: a.state == "present",
        target,
        attrs: WantAttrs::from_args(&attrs_args),
        update: a
            .update_cache
            .then_some((a.update_cache_retries, a.update_cache_retry_max_delay)),
    })
}

/// Lists `/etc/apt/sources.list.d/*.list` (regular files or links to them).
const LIST_PARTS: &str =
    r#"for f_ in "$1"/*.list; do [ -f "$f_" ] && printf '%s\n' "$f_"; done; :"#;

/// The paths Ansible loads (sources.list when it is a file, the parts), plus the target.
async fn sources_paths(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    at: &Apt,
    target: &str,
) -> Result<Vec<String>, ModuleError> {
    let out = ctx
        .query_ok(
            tr,
            Cmd::raw("set --")
                .arg(at.dir.clone())
                .op(";")
                .op(LIST_PARTS),
        )
        .await?;
    let mut paths = vec![at.list.clone()];
    paths.extend(out.stdout_lossy().lines().map(str::to_string));
    if !paths.iter().any(|p| p == target) {
        paths.push(target.to_string());
    }
    Ok(paths)
}

/// What `apply` does: the file edits, each with the file's text before (to put it back
/// when the cache update fails), and the update.
struct Plan {
    edits: Vec<(FileEdit, Option<Vec<u8>>)>,
    update: Option<(i64, i64)>,
    result: Args,
}

/// Where APT's sources are (the host's `/etc/apt`; a temporary folder in unit tests).
struct Apt {
    list: String,
    dir: String,
}

impl Apt {
    fn host() -> Apt {
        Apt {
            list: SOURCES_LIST.into(),
            dir: SOURCES_DIR.into(),
        }
    }
}

async fn check_repo(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    at: &Apt,
) -> Result<Verdict, ModuleError> {
    let w = want(AptRepositoryArgs::parse(args)?, at)?;
    let mut files = Vec::new();
    for path in sources_paths(tr, ctx, at, &w.target).await? {
        let tf = repofile::read(tr, ctx, &path).await?;
        let before = parse_file(&repofile::text_of(&tf).unwrap_or_default());
        files.push(Sources {
            path,
            after: before.clone(),
            before,
            tf,
        });
    }
    if w.present {
        let mut found = false;
        for f in &mut files {
            for l in &mut f.after {
                if l.valid && l.source == w.source {
                    l.enabled = true;
                    found = true;
                }
            }
        }
        if !found {
            let line = Line {
                valid: true,
                enabled: true,
                source: w.source.clone(),
                comment: String::new(),
            };
            if let Some(f) = files.iter_mut().find(|f| f.path == w.target) {
                f.after.push(line);
            }
        }
    } else {
        for f in &mut files {
            f.after
                .retain(|l| !(l.valid && l.enabled && l.source == w.source));
        }
    }
    let mut changes = Vec::new();
    let mut edits = Vec::new();
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for f in &files {
        let (before, after) = (dump(&f.before), dump(&f.after));
        if before == after {
            continue;
        }
        let planned = match &after {
            None => {
                removed.push(Value::from(f.path.clone()));
                repofile::plan_remove(&f.path, &f.tf)
            }
            Some(text) => {
                if before.is_none() {
                    added.push(Value::from(f.path.clone()));
                }
                // Ansible sets `mode` on the file a line was appended to.
                let appended = f.after.len() > f.before.len();
                let attrs = if appended {
                    w.attrs.clone()
                } else {
                    WantAttrs::default()
                };
                repofile::plan_write(&f.path, &f.tf, text.clone().into_bytes(), &attrs)?
            }
        };
        if let Some((ch, edit)) = planned {
            changes.extend(ch);
            edits.push((edit, f.tf.bytes.clone()));
        }
    }
    let r = result([
        ("repo", args.get("repo").cloned().unwrap_or(Value::Null)),
        (
            "state",
            Value::from(if w.present { "present" } else { "absent" }),
        ),
        ("sources_added", Value::from(added)),
        ("sources_removed", Value::from(removed)),
    ]);
    if edits.is_empty() {
        let mut r = r;
        r.insert("changed".into(), Value::from(false));
        return Ok(Verdict::InSync { result: r });
    }
    if w.update.is_some() {
        changes.push(crate::modules::runtime::Change::Run {
            command: update_cmd().display(),
        });
    }
    Ok(Verdict::Drift(Drift::new(
        changes,
        Plan {
            edits,
            update: w.update,
            result: r,
        },
    )))
}

fn update_cmd() -> Cmd {
    Cmd::raw("apt-get update -q").env("DEBIAN_FRONTEND", "noninteractive")
}

/// Puts the files back as `check` found them (Ansible's `revert_sources_list`).
async fn revert(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    edits: &[(FileEdit, Option<Vec<u8>>)],
) -> Result<(), ModuleError> {
    for (edit, before) in edits {
        let tf = repofile::read(&mut HostView::of(tr), ctx, &edit.path).await?;
        let undo = match before {
            None => repofile::plan_remove(&edit.path, &tf),
            Some(b) => repofile::plan_write(&edit.path, &tf, b.clone(), &WantAttrs::default())?,
        };
        if let Some((_, e)) = undo {
            repofile::apply(tr, ctx, &e).await?;
        }
    }
    Ok(())
}

async fn apply_repo(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("apt_repository: apply without a plan".into()))?;
    for (edit, _) in &p.edits {
        repofile::apply(tr, ctx, edit).await?;
    }
    let Some((retries, max_delay)) = p.update else {
        return Ok(p.result.clone());
    };
    let mut err = String::from("unknown reason");
    for attempt in 0..retries.max(0) {
        let out = ctx.run(tr, update_cmd()).await?;
        if out.success() {
            return Ok(p.result.clone());
        }
        err = out.stderr_lossy().trim().to_string();
        if attempt + 1 < retries {
            let delay = 2u64.saturating_pow(attempt.clamp(0, 32) as u32);
            let delay = delay.min(max_delay.max(0) as u64);
            tokio::time::sleep(Duration::from_secs(delay)).await;
        }
    }
    revert(tr, ctx, &p.edits).await?;
    Err(failed(
        format!("Failed to update apt cache after {retries} retries: {err}"),
        p.result.clone(),
    ))
}

impl Module for AptRepository {
    fn name(&self) -> &'static str {
        "apt_repository"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move { check_repo(tr, args, ctx, &Apt::host()).await })
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_repo(tr, ctx, drift))
    }

    /// sources.list, the sources.list.d folder (a disabled copy of the line may be enabled,
    /// or every copy removed, in any of its files) and the target file when it is elsewhere.
    fn resources(&self, args: &Args) -> Vec<Resource> {
        let mut r = vec![
            Resource::Path(SOURCES_LIST.into()),
            Resource::Tree(SOURCES_DIR.into()),
        ];
        if let Ok(w) = AptRepositoryArgs::parse(args).and_then(|a| want(a, &Apt::host()))
            && crate::modules::files::common::parent_of(&w.target) != SOURCES_DIR
        {
            r.push(Resource::Path(w.target));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansibles_file_names_for_repo_lines() {
        let cases = [
            (
                "deb http://archive.canonical.com/ubuntu hardy partner",
                "archive_canonical_com_ubuntu",
            ),
            (
                "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/ubuntu jammy stable",
                "download_docker_com_linux_ubuntu",
            ),
            (
                "deb https://user:pass@repo.example.com:8443/apt/ stable main",
                "repo_example_com_8443_apt",
            ),
            ("deb-src file:///srv/repo ./", "srv_repo"),
        ];
        for (line, want) in cases {
            let src = source_of(line).unwrap();
            assert_eq!(
                list_path(&src, None, SOURCES_DIR).unwrap(),
                format!("{SOURCES_DIR}/{want}.list"),
                "{line}"
            );
        }
        assert_eq!(
            list_path("deb x y", Some("mine"), SOURCES_DIR).unwrap(),
            "/etc/apt/sources.list.d/mine.list"
        );
        assert_eq!(
            list_path("deb x y", Some("/etc/rdeploy-test/x"), SOURCES_DIR).unwrap(),
            "/etc/rdeploy-test/x.list"
        );
        assert!(list_path("deb x y", Some("a/b"), SOURCES_DIR).is_err());
    }

    #[test]
    fn ansibles_line_model() {
        assert_eq!(
            source_of("deb   http://x   y  main").unwrap(),
            "deb http://x y main"
        );
        for bad in ["# deb http://x y", "foo bar", "http://x y"] {
            let e = source_of(bad).unwrap_err().to_string();
            assert!(e.starts_with("Invalid repository string:"), "{e}");
        }
        let text = "deb  http://a  s main # the main one\n#deb http://b s main\n\n# a note\ndeb http://c s main";
        assert_eq!(
            dump(&parse_file(text)).unwrap(),
            "deb http://a s main # the main one\n# deb http://b s main\n\n# a note\ndeb http://c s main\n"
        );
        assert_eq!(dump(&[]), None);
    }

    use crate::modules::system::testutil::*;
    use serde_json::json;

    /// `check` then `apply` against sources under `root` (not the machine's /etc/apt).
    async fn run(
        a: &Args,
        root: &std::path::Path,
        c: &ModuleCtx<'_>,
    ) -> Result<Option<(Vec<crate::modules::runtime::Change>, Result<Args, String>)>, String> {
        let at = Apt {
            list: root.join("sources.list").display().to_string(),
            dir: root.join("sources.list.d").display().to_string(),
        };
        let mut tr = transport();
        match check_repo(&mut HostView::of(&mut tr), a, c, &at)
            .await
            .map_err(|e| e.to_string())?
        {
            Verdict::InSync { .. } => Ok(None),
            Verdict::Drift(d) => {
                let r = apply_repo(&mut tr, c, &d).await.map_err(|e| e.to_string());
                Ok(Some((d.changes.clone(), r)))
            }
        }
    }

    fn read(p: std::path::PathBuf) -> String {
        std::fs::read_to_string(p).unwrap_or_else(|_| "(absent)".into())
    }

    #[tokio::test]
    async fn present_appends_to_the_derived_file_and_updates_the_cache_once() {
        let (dir, bin, state) = fake_dirs();
        fake_tool(&bin, "apt-get", r#"echo "$@" >> "$FAKE/apt-get.log""#);
        let root = dir.path().join("apt");
        std::fs::create_dir_all(root.join("sources.list.d")).unwrap();
        std::fs::write(
            root.join("sources.list"),
            "deb http://deb.debian.org/debian bookworm main\n",
        )
        .unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let a = args(
            json!({"repo": "deb [signed-by=/k.gpg]  https://apt.example.com/debian bookworm main", "mode": "0600"}),
        );
        let (changes, r) = run(&a, &root, &c).await.unwrap().unwrap();
        let file = root.join("sources.list.d/apt_example_com_debian.list");
        assert_eq!(
            read(file.clone()),
            "deb [signed-by=/k.gpg] https://apt.example.com/debian bookworm main\n"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&file).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let r = r.unwrap();
        assert_eq!(r["sources_added"], json!([file.display().to_string()]));
        assert!(changes.iter().any(|c| matches!(c, crate::modules::runtime::Change::Run { command } if command.contains("apt-get update"))));
        assert_eq!(read(state.join("apt-get.log")), "update -q\n");
        assert!(
            run(&a, &root, &c).await.unwrap().is_none(),
            "second run is in sync"
        );
        assert_eq!(
            read(state.join("apt-get.log")),
            "update -q\n",
            "no update when nothing changed"
        );
        assert_eq!(
            read(root.join("sources.list")),
            "deb http://deb.debian.org/debian bookworm main\n"
        );
    }

    #[tokio::test]
    async fn present_enables_a_disabled_copy_where_it_is_and_absent_removes_every_copy() {
        let (dir, bin, state) = fake_dirs();
        fake_tool(&bin, "apt-get", "exit 0");
        let root = dir.path().join("apt");
        std::fs::create_dir_all(root.join("sources.list.d")).unwrap();
        std::fs::write(
            root.join("sources.list"),
            "deb http://a s main\n#deb  http://x s main # mine\n",
        )
        .unwrap();
        std::fs::write(
            root.join("sources.list.d/other.list"),
            "deb http://x s main\n",
        )
        .unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let a = args(json!({"repo": "deb http://x s main", "update_cache": false}));
        assert!(run(&a, &root, &c).await.unwrap().is_some());
        assert_eq!(
            read(root.join("sources.list")),
            "deb http://a s main\ndeb http://x s main # mine\n"
        );
        assert_eq!(read(root.join("sources.list.d/x.list")), "(absent)");
        let gone =
            args(json!({"repo": "deb http://x s main", "state": "absent", "update_cache": false}));
        let (_, r) = run(&gone, &root, &c).await.unwrap().unwrap();
        assert_eq!(
            r.unwrap()["sources_removed"],
            json!([root.join("sources.list.d/other.list").display().to_string()])
        );
        assert_eq!(read(root.join("sources.list")), "deb http://a s main\n");
        assert!(!root.join("sources.list.d/other.list").exists());
        assert!(run(&gone, &root, &c).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_failing_cache_update_puts_the_files_back() {
        let (dir, bin, state) = fake_dirs();
        fake_tool(
            &bin,
            "apt-get",
            r#"echo x >> "$FAKE/tries"; echo 'E: Some index files failed to download' >&2; exit 100"#,
        );
        let root = dir.path().join("apt");
        std::fs::create_dir_all(&root).unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let a = args(
            json!({"repo": "deb http://x s main", "filename": "x", "update_cache_retries": 2, "update_cache_retry_max_delay": 0}),
        );
        let (_, r) = run(&a, &root, &c).await.unwrap().unwrap();
        let e = r.unwrap_err();
        assert!(
            e.starts_with(
                "Failed to update apt cache after 2 retries: E: Some index files failed to download"
            ),
            "{e}"
        );
        assert_eq!(read(state.join("tries")), "x\nx\n");
        assert!(!root.join("sources.list.d/x.list").exists(), "reverted");
    }

    #[tokio::test]
    async fn ppas_and_empty_repos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let e = run(&args(json!({"repo": "ppa:deadsnakes/ppa"})), dir.path(), &c)
            .await
            .unwrap_err();
        assert!(
            e.contains("ppa: repositories are not supported by rdeploy"),
            "{e}"
        );
        let e = run(&args(json!({"repo": ""})), dir.path(), &c)
            .await
            .unwrap_err();
        assert_eq!(e, "Please set argument 'repo' to a non-empty value");
        let res = AptRepository.resources(&args(
            json!({"repo": "deb http://x s main", "filename": "/etc/rdeploy-test/x"}),
        ));
        assert_eq!(
            res,
            vec![
                Resource::Path(SOURCES_LIST.into()),
                Resource::Tree(SOURCES_DIR.into()),
                Resource::Path("/etc/rdeploy-test/x.list".into())
            ]
        );
    }
}
