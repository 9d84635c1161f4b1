//! Table tests for the file modules: arguments + host state in a temp dir → verdict (and its
//! changes), the commands issued (check costs one round trip and changes nothing: the tree is
//! fingerprinted before and after), the files after `apply`, and a second `check` in sync.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::modules::implementation as lookup;
use crate::modules::runtime::{Args, Change, HostView, ModuleCtx, ModuleError, Verdict};
use crate::transport::{AnyTransport, LocalTransport};

fn render(s: &str) -> Result<String, String> {
    Ok(s.replace("{{ name }}", "world"))
}

fn ctx<'a>(local_src: Option<&'a Path>, controller: &'a Path) -> ModuleCtx<'a> {
    ModuleCtx {
        local_src,
        render: &render,
        become_: None,
        environment: Vec::new(),
        timeout: None,
        controller_dir: controller,
        no_log: false,
        python: None,
    }
}

fn recorded(tr: &AnyTransport) -> Vec<String> {
    tr.recorded().to_vec()
}

fn to_args(v: Value) -> Args {
    v.as_object().cloned().unwrap_or_default()
}

/// Everything under `dir`: kind, mode, content or link target, per relative path.
fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, (char, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            let mode = m.mode() & 0o7777;
            if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, ('l', 0, t.to_string_lossy().as_bytes().to_vec()));
            } else if m.is_dir() {
                out.insert(rel, ('d', mode, Vec::new()));
                todo.push(p);
            } else {
                out.insert(rel, ('f', mode, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// What one check → apply → check cycle did.
struct Run {
    /// The first check's changes (empty when in sync).
    changes: Vec<Change>,
    /// Commands the first check ran.
    check_cmds: Vec<String>,
    /// Commands apply ran (puts are not commands).
    apply_cmds: Vec<String>,
    /// The in-sync result, or apply's result.
    result: Args,
}

async fn check_only(
    module: &str,
    a: Value,
    host: &Path,
    local_src: Option<&Path>,
) -> Result<(Verdict, Vec<String>), ModuleError> {
    let m = lookup(module).unwrap();
    let args = to_args(a);
    let controller = tempfile::tempdir().unwrap();
    let ctx = ctx(local_src, controller.path());
    let mut tr = AnyTransport::Local(LocalTransport::new("t").with_recording());
    let before = fingerprint(host);
    let v = m.check(&mut HostView::of(&mut tr), &args, &ctx).await;
    assert_eq!(fingerprint(host), before, "check changed the host");
    v.map(|v| (v, recorded(&tr)))
}

/// check (one round trip, read-only) → apply → check again, which must be in sync.
async fn converge(module: &str, a: Value, host: &Path, local_src: Option<&Path>) -> Run {
    converge_n(module, a, host, local_src, 1).await
}

async fn converge_n(
    module: &str,
    a: Value,
    host: &Path,
    local_src: Option<&Path>,
    trips: usize,
) -> Run {
    let m = lookup(module).unwrap();
    let args = to_args(a);
    let controller = tempfile::tempdir().unwrap();
    let ctx = ctx(local_src, controller.path());
    // The shell plane: these tests count the commands it sends (the std::fs plane sends none).
    let mut tr = AnyTransport::Local(LocalTransport::new("t").with_recording().with_shell_files());
    let before = fingerprint(host);
    let v = m
        .check(&mut HostView::of(&mut tr), &args, &ctx)
        .await
        .unwrap();
    assert_eq!(fingerprint(host), before, "check changed the host");
    let check_cmds = recorded(&tr);
    assert_eq!(
        check_cmds.len(),
        trips,
        "check round trips: {check_cmds:#?}"
    );
    match v {
        Verdict::InSync { result } => Run {
            changes: Vec::new(),
            check_cmds,
            apply_cmds: Vec::new(),
            result,
        },
        Verdict::Drift(d) => {
            let result = m.apply(&mut tr, &args, &ctx, &d).await.unwrap();
            let apply_cmds = recorded(&tr)[check_cmds.len()..].to_vec();
            if m.converges(&args) {
                let again = m
                    .check(&mut HostView::of(&mut tr), &args, &ctx)
                    .await
                    .unwrap();
                if let Verdict::Drift(d2) = again {
                    panic!("not converged: {:?}", d2.changes);
                }
            }
            Run {
                changes: d.changes.clone(),
                check_cmds,
                apply_cmds,
                result,
            }
        }
    }
}

fn p(dir: &Path, rel: &str) -> String {
    dir.join(rel).to_string_lossy().into_owned()
}

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap()
}

fn mode(dir: &Path, rel: &str) -> u32 {
    std::fs::symlink_metadata(dir.join(rel)).unwrap().mode() & 0o7777
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

fn chmod(dir: &Path, rel: &str, m: u32) {
    std::fs::set_permissions(dir.join(rel), std::fs::Permissions::from_mode(m)).unwrap();
}

fn content_change(path: &str, before: Option<&str>, after: &str) -> Change {
    Change::Content {
        path: path.into(),
        before: before.map(str::to_string),
        after: after.into(),
    }
}

fn attr(subject: &str, what: &str, before: &str, after: &str) -> Change {
    Change::Attr {
        subject: subject.into(),
        what: what.into(),
        before: before.into(),
        after: after.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// copy / template
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn copy_content_creates_then_is_in_sync() {
    let h = tempfile::tempdir().unwrap();
    let dest = p(h.path(), "app.conf");
    let r = converge(
        "copy",
        json!({"content": "hello\n", "dest": dest, "mode": "0640"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(r.changes, vec![content_change(&dest, None, "hello\n")]);
    assert!(
        r.check_cmds[0].contains("RDEPLOY-BATCH"),
        "{:?}",
        r.check_cmds
    );
    assert!(r.apply_cmds.is_empty(), "{:?}", r.apply_cmds);
    assert_eq!(read(h.path(), "app.conf"), "hello\n");
    assert_eq!(mode(h.path(), "app.conf"), 0o640);
    assert_eq!(
        r.result["checksum"],
        "f572d396fae9206628714fb2ce00f72e94f2258f"
    );
    assert_eq!(r.result["mode"], "0640");
    // Same again: in sync, one round trip, nothing written.
    let r = converge(
        "copy",
        json!({"content": "hello\n", "dest": dest, "mode": "0640"}),
        h.path(),
        None,
    )
    .await;
    assert!(r.changes.is_empty());
}

#[tokio::test]
async fn copy_shows_old_text_and_keeps_mode() {
    let h = tempfile::tempdir().unwrap();
    write(h.path(), "f", "old\n");
    chmod(h.path(), "f", 0o600);
    let dest = p(h.path(), "f");
    let r = converge(
        "copy",
        json!({"content": "new\n", "dest": dest}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(
        r.changes,
        vec![content_change(&dest, Some("old\n"), "new\n")]
    );
    assert_eq!(read(h.path(), "f"), "new\n");
    assert_eq!(mode(h.path(), "f"), 0o600);
}

#[tokio::test]
async fn copy_onto_symlink_replaces_the_link_not_its_target() {
    let h = tempfile::tempdir().unwrap();
    write(h.path(), "target", "precious\n");
    symlink(h.path().join("target"), h.path().join("link")).unwrap();
    let dest = p(h.path(), "link");
    let r = converge(
        "copy",
        json!({"content": "new\n", "dest": dest}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(
        r.changes[0],
        attr(
            &dest,
            "state",
            &format!("link to {}", p(h.path(), "target")),
            "file"
        )
    );
    assert!(
        !std::fs::symlink_metadata(h.path().join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(read(h.path(), "link"), "new\n");
    assert_eq!(read(h.path(), "target"), "precious\n");
}

#[tokio::test]
async fn copy_force_no_only_creates() {
    let h = tempfile::tempdir().unwrap();
    write(h.path(), "f", "mine\n");
    let r = converge(
        "copy",
        json!({"content": "theirs\n", "dest": p(h.path(), "f"), "force": false}),
        h.path(),
        None,
    )
    .await;
    assert!(r.changes.is_empty());
    assert_eq!(read(h.path(), "f"), "mine\n");
    let r = converge(
        "copy",
        json!({"content": "theirs\n", "dest": p(h.path(), "g"), "force": "no"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(r.changes.len(), 1);
    assert_eq!(read(h.path(), "g"), "theirs\n");
}

#[tokio::test]
async fn copy_file_into_directory_dest() {
    let h = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    write(c.path(), "files/motd", "hi\n");
    std::fs::create_dir(h.path().join("etc")).unwrap();
    let src = c.path().join("files/motd");
    converge(
        "copy",
        json!({"src": "motd", "dest": p(h.path(), "etc")}),
        h.path(),
        Some(&src),
    )
    .await;
    assert_eq!(read(h.path(), "etc/motd"), "hi\n");
    // A trailing slash on a missing dest creates the directory.
    converge(
        "copy",
        json!({"src": "motd", "dest": format!("{}/", p(h.path(), "new"))}),
        h.path(),
        Some(&src),
    )
    .await;
    assert_eq!(read(h.path(), "new/motd"), "hi\n");
}

#[tokio::test]
async fn copy_directory_recursively() {
    let h = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    write(c.path(), "site/index.html", "<h1>\n");
    write(c.path(), "site/css/a.css", "a{}\n");
    let src = c.path().join("site");
    // No trailing slash: the directory itself goes under dest.
    let r = converge(
        "copy",
        json!({"src": "site", "dest": p(h.path(), "www"), "mode": "0600"}),
        h.path(),
        Some(&src),
    )
    .await;
    assert_eq!(r.check_cmds.len(), 1);
    assert_eq!(read(h.path(), "www/site/index.html"), "<h1>\n");
    assert_eq!(read(h.path(), "www/site/css/a.css"), "a{}\n");
    assert_eq!(mode(h.path(), "www/site/css/a.css"), 0o600);
    assert!(r.changes.contains(&attr(
        &p(h.path(), "www/site/css"),
        "state",
        "absent",
        "directory"
    )));
    // Trailing slash: only the contents; one changed file is rewritten.
    write(h.path(), "flat/index.html", "stale\n");
    let r = converge(
        "copy",
        json!({"src": "site/", "dest": p(h.path(), "flat")}),
        h.path(),
        Some(&src),
    )
    .await;
    assert_eq!(read(h.path(), "flat/index.html"), "<h1>\n");
    assert_eq!(read(h.path(), "flat/css/a.css"), "a{}\n");
    assert!(r.changes.contains(&Change::Content {
        path: p(h.path(), "flat/index.html"),
        before: None,
        after: "<h1>\n".into()
    }));
    let resources = lookup("copy").unwrap().resources(&to_args(json!({
        "src": src.to_string_lossy(), "dest": p(h.path(), "www")
    })));
    assert!(
        resources.contains(&crate::modules::runtime::Resource::Path(p(
            h.path(),
            "www/site/css/a.css"
        )))
    );
}

#[tokio::test]
async fn copy_validate_passes_and_fails_cleanly() {
    let h = tempfile::tempdir().unwrap();
    write(h.path(), "sudoers", "old\n");
    let dest = p(h.path(), "sudoers");
    let r = converge(
        "copy",
        json!({"content": "good\n", "dest": dest, "validate": "grep -q good %s"}),
        h.path(),
        None,
    )
    .await;
    assert!(
        r.apply_cmds.iter().any(|c| c.contains("grep -q good")),
        "{:?}",
        r.apply_cmds
    );
    assert_eq!(read(h.path(), "sudoers"), "good\n");

    let m = lookup("copy").unwrap();
    let args = to_args(json!({"content": "bad\n", "dest": dest, "validate": "grep -q good %s"}));
    let controller = tempfile::tempdir().unwrap();
    let ctx = ctx(None, controller.path());
    let mut tr = AnyTransport::Local(LocalTransport::new("t"));
    let Verdict::Drift(d) = m
        .check(&mut HostView::of(&mut tr), &args, &ctx)
        .await
        .unwrap()
    else {
        panic!("expected drift");
    };
    let err = m.apply(&mut tr, &args, &ctx, &d).await.unwrap_err();
    assert!(err.to_string().contains("failed to validate"), "{err}");
    assert_eq!(read(h.path(), "sudoers"), "good\n");
    assert_eq!(fingerprint(h.path()).len(), 1, "temporary file left behind");
    let no_s = to_args(json!({"content": "x", "dest": dest, "validate": "true"}));
    assert!(matches!(
        m.check(&mut HostView::of(&mut tr), &no_s, &ctx).await,
        Err(ModuleError::Args(_))
    ));
}

#[tokio::test]
async fn copy_backup_keeps_the_old_file() {
    let h = tempfile::tempdir().unwrap();
    write(h.path(), "f", "v1\n");
    let r = converge(
        "copy",
        json!({"content": "v2\n", "dest": p(h.path(), "f"), "backup": true}),
        h.path(),
        None,
    )
    .await;
    let backup = r.result["backup_file"].as_str().unwrap().to_string();
    assert!(
        backup.starts_with(&p(h.path(), "f.")) && backup.ends_with('~'),
        "{backup}"
    );
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), "v1\n");
    assert_eq!(read(h.path(), "f"), "v2\n");
}

#[tokio::test]
async fn copy_remote_src() {
    let h = tempfile::tempdir().unwrap();
    write(h.path(), "a", "remote\n");
    chmod(h.path(), "a", 0o640);
    let r = converge(
        "copy",
        json!({"src": p(h.path(), "a"), "remote_src": true, "dest": p(h.path(), "b")}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(r.changes.len(), 1);
    assert_eq!(read(h.path(), "b"), "remote\n");
    assert_eq!(mode(h.path(), "b"), 0o640);
}

#[tokio::test]
async fn template_renders_and_diffs() {
    let h = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    write(c.path(), "hello.j2", "Hello {{ name }}\n");
    write(h.path(), "hello", "Hello old\n");
    let dest = p(h.path(), "hello");
    let src = c.path().join("hello.j2");
    let r = converge(
        "template",
        json!({"src": "hello.j2", "dest": dest, "mode": "u=rw,g=r,o="}),
        h.path(),
        Some(&src),
    )
    .await;
    assert_eq!(
        r.changes[0],
        content_change(&dest, Some("Hello old\n"), "Hello world\n")
    );
    assert_eq!(read(h.path(), "hello"), "Hello world\n");
    assert_eq!(mode(h.path(), "hello"), 0o640);
}

// ---------------------------------------------------------------------------------------------
// file
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn file_modes_octal_and_symbolic() {
    let h = tempfile::tempdir().unwrap();
    write(h.path(), "f", "x");
    chmod(h.path(), "f", 0o644);
    let path = p(h.path(), "f");
    let r = converge(
        "file",
        json!({"path": path, "mode": "u+x,g-r"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(r.changes, vec![attr(&path, "mode", "0644", "0704")]);
    assert_eq!(mode(h.path(), "f"), 0o704);
    let r = converge("file", json!({"path": path, "mode": 0o600}), h.path(), None).await;
    assert_eq!(r.changes, vec![attr(&path, "mode", "0704", "0600")]);
    assert_eq!(mode(h.path(), "f"), 0o600);
    assert_eq!(r.result["mode"], "0600");
    let r = converge(
        "file",
        json!({"path": path, "mode": "0600", "state": "file"}),
        h.path(),
        None,
    )
    .await;
    assert!(r.changes.is_empty());
    let err = check_only("file", json!({"path": p(h.path(), "nope")}), h.path(), None)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("is absent"), "{err}");
}

#[tokio::test]
async fn file_directory_and_recurse() {
    let h = tempfile::tempdir().unwrap();
    let d = p(h.path(), "a/b");
    let r = converge(
        "file",
        json!({"path": d, "state": "directory", "mode": "0750"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(r.changes, vec![attr(&d, "state", "absent", "directory")]);
    assert_eq!(mode(h.path(), "a/b"), 0o750);
    write(h.path(), "a/b/c/f", "x");
    chmod(h.path(), "a/b/c/f", 0o644);
    let r = converge(
        "file",
        json!({"path": d, "state": "directory", "recurse": true, "mode": "u=rwX,g=rX,o="}),
        h.path(),
        None,
    )
    .await;
    assert!(!r.changes.is_empty());
    assert_eq!(mode(h.path(), "a/b/c/f"), 0o640);
    assert_eq!(mode(h.path(), "a/b/c"), 0o750);
}

#[tokio::test]
async fn file_link_create_and_swap() {
    let h = tempfile::tempdir().unwrap();
    std::fs::create_dir(h.path().join("rel1")).unwrap();
    std::fs::create_dir(h.path().join("rel2")).unwrap();
    let cur = p(h.path(), "current");
    let r = converge(
        "file",
        json!({"path": cur, "src": "rel1", "state": "link"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(r.changes, vec![attr(&cur, "target", "absent", "rel1")]);
    assert_eq!(std::fs::read_link(&cur).unwrap(), Path::new("rel1"));
    let r = converge(
        "file",
        json!({"path": cur, "src": "rel2", "state": "link"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(r.changes, vec![attr(&cur, "target", "rel1", "rel2")]);
    assert!(r.apply_cmds[0].contains("mv -f -T"), "{:?}", r.apply_cmds);
    assert_eq!(std::fs::read_link(&cur).unwrap(), Path::new("rel2"));
    assert!(h.path().join("rel1").is_dir());
    // A missing source needs force; a file at the path needs force.
    let err = check_only(
        "file",
        json!({"path": p(h.path(), "l2"), "src": "nope", "state": "link"}),
        h.path(),
        None,
    )
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("src file does not exist"), "{err}");
    write(h.path(), "plain", "x");
    assert!(
        check_only(
            "file",
            json!({"path": p(h.path(), "plain"), "src": "rel1", "state": "link"}),
            h.path(),
            None
        )
        .await
        .is_err()
    );
    converge(
        "file",
        json!({"path": p(h.path(), "plain"), "src": "rel1", "state": "link", "force": true}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(
        std::fs::read_link(h.path().join("plain")).unwrap(),
        Path::new("rel1")
    );
}

#[tokio::test]
async fn file_hard_absent_touch() {
    let h = tempfile::tempdir().unwrap();
    write(h.path(), "orig", "data");
    converge(
        "file",
        json!({"path": p(h.path(), "hl"), "src": p(h.path(), "orig"), "state": "hard"}),
        h.path(),
        None,
    )
    .await;
    let a = std::fs::metadata(h.path().join("orig")).unwrap();
    let b = std::fs::metadata(h.path().join("hl")).unwrap();
    assert_eq!(a.ino(), b.ino());
    write(h.path(), "tree/x/y", "z");
    let t = p(h.path(), "tree");
    let r = converge(
        "file",
        json!({"path": t, "state": "absent"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(r.changes, vec![attr(&t, "state", "directory", "absent")]);
    assert!(!h.path().join("tree").exists());
    let r = converge(
        "file",
        json!({"path": p(h.path(), "t"), "state": "touch", "mode": "0600"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(r.changes.len(), 1);
    assert_eq!(mode(h.path(), "t"), 0o600);
    assert!(
        !lookup("file")
            .unwrap()
            .converges(&to_args(json!({"path": "/x", "state": "touch"})))
    );
}

#[tokio::test]
async fn file_times_fixed_now_and_preserve_as_ansible() {
    let h = tempfile::tempdir().unwrap();
    write(h.path(), "f", "x");
    let f = p(h.path(), "f");
    let mtime = |rel: &str| std::fs::metadata(h.path().join(rel)).unwrap().mtime();
    let atime = |rel: &str| std::fs::metadata(h.path().join(rel)).unwrap().atime();
    // A fixed time in the default format (the host's local time): a change, then in sync
    // (the second check's look at the times is a second round trip).
    let a = json!({"path": f, "modification_time": "202401020304.05"});
    let r = converge_n("file", a.clone(), h.path(), None, 2).await;
    assert_eq!(r.changes.len(), 1, "{:?}", r.changes);
    let want = chrono::NaiveDate::from_ymd_opt(2024, 1, 2)
        .and_then(|d| d.and_hms_opt(3, 4, 5))
        .and_then(|t| t.and_local_timezone(chrono::Local).single())
        .map(|t| t.timestamp())
        .unwrap();
    assert_eq!(mtime("f"), want);
    let r = converge_n("file", a, h.path(), None, 2).await;
    assert!(r.changes.is_empty(), "{:?}", r.changes);
    // Its own format, both times.
    let a = json!({"path": f, "state": "touch", "access_time": "2020-05-06 07:08", "access_time_format": "%Y-%m-%d %H:%M", "modification_time": "2020-05-06 07:08", "modification_time_format": "%Y-%m-%d %H:%M"});
    let r = converge_n("file", a.clone(), h.path(), None, 2).await;
    assert_eq!(r.changes.len(), 2, "{:?}", r.changes);
    assert_eq!(atime("f"), mtime("f"));
    assert!(lookup("file").unwrap().converges(&to_args(a)));
    // `now` is always a change; `preserve` (the default) never.
    let r = converge_n(
        "file",
        json!({"path": f, "modification_time": "now", "access_time": "preserve"}),
        h.path(),
        None,
        2,
    )
    .await;
    assert_eq!(r.changes.len(), 1);
    assert!(mtime("f") > want);
    // A time that does not match the format fails before the host is asked.
    let e = check_only(
        "file",
        json!({"path": f, "modification_time": "yesterday"}),
        h.path(),
        None,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(
        e.to_string(),
        "Error while obtaining timestamp for time yesterday using format %Y%m%d%H%M.%S: time data 'yesterday' does not match format '%Y%m%d%H%M.%S'"
    );
    // Rollback cannot put times back: plan says so.
    let given = |k: &str| k == "modification_time";
    assert!(lookup("file").unwrap().not_reversible(&given).is_some());
}

#[tokio::test]
async fn file_follow_false_acts_on_the_link_itself() {
    let h = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(h.path().join("real")).unwrap();
    symlink(h.path().join("real"), h.path().join("ln")).unwrap();
    let ln = p(h.path(), "ln");
    // Followed (the default), the link stands for the directory.
    let r = converge(
        "file",
        json!({"path": ln, "state": "directory"}),
        h.path(),
        None,
    )
    .await;
    assert!(r.changes.is_empty(), "{:?}", r.changes);
    // Not followed: the path is a link, not a directory, as Ansible says.
    let e = check_only(
        "file",
        json!({"path": ln, "state": "directory", "follow": false}),
        h.path(),
        None,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(e.to_string(), format!("{ln} already exists as a link"));
    let e = check_only(
        "file",
        json!({"path": ln, "state": "file", "follow": "no"}),
        h.path(),
        None,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(
        e.to_string(),
        format!("file ({ln}) is link, cannot continue")
    );
}

// ---------------------------------------------------------------------------------------------
// lineinfile
// ---------------------------------------------------------------------------------------------

async fn lif(text: &str, a: Value) -> (String, Run) {
    let h = tempfile::tempdir().unwrap();
    write(h.path(), "f", text);
    let mut a = a;
    a["path"] = Value::from(p(h.path(), "f"));
    let r = converge("lineinfile", a, h.path(), None).await;
    (read(h.path(), "f"), r)
}

#[tokio::test]
async fn lineinfile_positions() {
    let base = "a=1\n# marker\nb=2\n";
    let table: Vec<(Value, &str)> = vec![
        (
            json!({"regexp": "^a=", "line": "a=9"}),
            "a=9\n# marker\nb=2\n",
        ),
        (json!({"line": "c=3"}), "a=1\n# marker\nb=2\nc=3\n"),
        (
            json!({"line": "c=3", "insertafter": "^# marker"}),
            "a=1\n# marker\nc=3\nb=2\n",
        ),
        (
            json!({"line": "c=3", "insertbefore": "^# marker"}),
            "a=1\nc=3\n# marker\nb=2\n",
        ),
        (
            json!({"line": "c=3", "insertbefore": "BOF"}),
            "c=3\na=1\n# marker\nb=2\n",
        ),
        (
            json!({"line": "c=3", "insertafter": "EOF"}),
            "a=1\n# marker\nb=2\nc=3\n",
        ),
        (
            json!({"line": "c=3", "insertafter": "^nomatch"}),
            "a=1\n# marker\nb=2\nc=3\n",
        ),
        (json!({"line": "b=2"}), base),
        (
            json!({"regexp": "^(a)=(\\d)", "line": "\\1=\\g<2>0", "backrefs": true}),
            "a=10\n# marker\nb=2\n",
        ),
        (
            json!({"regexp": "^zzz(.*)", "line": "\\1", "backrefs": true}),
            base,
        ),
        (
            json!({"regexp": "^b=", "state": "absent"}),
            "a=1\n# marker\n",
        ),
        (json!({"line": "a=1", "state": "absent"}), "# marker\nb=2\n"),
        (
            json!({"regexp": "=", "line": "x=0", "firstmatch": true}),
            "x=0\n# marker\nb=2\n",
        ),
        (
            json!({"regexp": "=", "line": "x=0"}),
            "a=1\n# marker\nx=0\n",
        ),
    ];
    for (a, want) in table {
        let (got, r) = lif(base, a.clone()).await;
        assert_eq!(got, want, "{a}");
        if got != base {
            assert!(
                matches!(&r.changes[0], Change::Content { before: Some(b), after, .. } if b == base && after == want),
                "{a}: {:?}",
                r.changes
            );
        } else {
            assert!(r.changes.is_empty(), "{a}");
        }
    }
    let (got, _) = lif("no newline", json!({"line": "x"})).await;
    assert_eq!(got, "no newline\nx\n");
}

#[tokio::test]
async fn lineinfile_create_absent_file_and_follow_link() {
    let h = tempfile::tempdir().unwrap();
    let f = p(h.path(), "sub/new.conf");
    let err = check_only(
        "lineinfile",
        json!({"path": f, "line": "x"}),
        h.path(),
        None,
    )
    .await
    .err()
    .unwrap();
    assert!(err.to_string().contains("does not exist"), "{err}");
    let r = converge(
        "lineinfile",
        json!({"path": f, "line": "x", "create": true, "mode": "0600"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(r.result["msg"], "line added");
    assert_eq!(read(h.path(), "sub/new.conf"), "x\n");
    assert_eq!(mode(h.path(), "sub/new.conf"), 0o600);
    // A link at path: the real file is edited, the link stays.
    write(h.path(), "real", "a\n");
    symlink("real", h.path().join("ln")).unwrap();
    converge(
        "lineinfile",
        json!({"path": p(h.path(), "ln"), "line": "b"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(read(h.path(), "real"), "a\nb\n");
    assert!(
        std::fs::symlink_metadata(h.path().join("ln"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let r = converge(
        "lineinfile",
        json!({"path": p(h.path(), "gone"), "line": "b", "state": "absent"}),
        h.path(),
        None,
    )
    .await;
    assert!(r.changes.is_empty());
}

// ---------------------------------------------------------------------------------------------
// blockinfile / replace
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn blockinfile_insert_replace_remove() {
    let h = tempfile::tempdir().unwrap();
    write(h.path(), "f", "top\n# anchor\nbottom\n");
    let f = p(h.path(), "f");
    converge(
        "blockinfile",
        json!({"path": f, "block": "one\ntwo"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(
        read(h.path(), "f"),
        "top\n# anchor\nbottom\n# BEGIN ANSIBLE MANAGED BLOCK\none\ntwo\n# END ANSIBLE MANAGED BLOCK\n"
    );
    let r = converge(
        "blockinfile",
        json!({"path": f, "block": "three\n"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(r.result["msg"], "Block inserted");
    assert!(
        matches!(&r.changes[0], Change::Content { before: Some(b), .. } if b.contains("one\ntwo"))
    );
    assert_eq!(
        read(h.path(), "f"),
        "top\n# anchor\nbottom\n# BEGIN ANSIBLE MANAGED BLOCK\nthree\n# END ANSIBLE MANAGED BLOCK\n"
    );
    converge(
        "blockinfile",
        json!({"path": f, "state": "absent"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(read(h.path(), "f"), "top\n# anchor\nbottom\n");
    converge(
        "blockinfile",
        json!({"path": f, "block": "x", "insertafter": "^# anchor", "marker": "<!-- {mark} -->", "marker_begin": "B", "marker_end": "E"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(
        read(h.path(), "f"),
        "top\n# anchor\n<!-- B -->\nx\n<!-- E -->\nbottom\n"
    );
    converge(
        "blockinfile",
        json!({"path": p(h.path(), "g"), "block": "y", "insertbefore": "BOF", "create": true}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(
        read(h.path(), "g"),
        "# BEGIN ANSIBLE MANAGED BLOCK\ny\n# END ANSIBLE MANAGED BLOCK\n"
    );
}

#[tokio::test]
async fn replace_with_backrefs_and_sections() {
    let h = tempfile::tempdir().unwrap();
    write(
        h.path(),
        "f",
        "host=a port=1\nhost=b port=2\n[x]\nhost=c port=3\n",
    );
    let f = p(h.path(), "f");
    let r = converge(
        "replace",
        json!({"path": f, "regexp": "^host=(\\w+) port=(?P<port>\\d+)$", "replace": "\\g<port>:\\1"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(r.result["msg"], "3 replacements made");
    assert_eq!(read(h.path(), "f"), "1:a\n2:b\n[x]\n3:c\n");
    converge(
        "replace",
        json!({"path": f, "regexp": "^(\\d):", "replace": "\\1=", "after": "\\[x\\]"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(read(h.path(), "f"), "1:a\n2:b\n[x]\n3=c\n");
    let r = converge(
        "replace",
        json!({"path": f, "regexp": "zzz", "before": "nomatch"}),
        h.path(),
        None,
    )
    .await;
    assert!(r.changes.is_empty());
    assert!(r.result["msg"].as_str().unwrap().contains("did not match"));
}

// ---------------------------------------------------------------------------------------------
// stat / find
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn stat_reports_like_ansible() {
    let h = tempfile::tempdir().unwrap();
    write(h.path(), "f", "hello\n");
    chmod(h.path(), "f", 0o640);
    symlink("f", h.path().join("l")).unwrap();
    let r = converge("stat", json!({"path": p(h.path(), "f")}), h.path(), None).await;
    let s = &r.result["stat"];
    assert_eq!(s["exists"], true);
    assert_eq!(s["isreg"], true);
    assert_eq!(s["mode"], "0640");
    assert_eq!(s["size"], 6);
    assert_eq!(s["checksum"], "f572d396fae9206628714fb2ce00f72e94f2258f");
    assert_eq!(s["pw_name"], "root");
    let r = converge(
        "stat",
        json!({"path": p(h.path(), "l"), "checksum_algorithm": "sha256"}),
        h.path(),
        None,
    )
    .await;
    let s = &r.result["stat"];
    assert_eq!(s["islnk"], true);
    assert_eq!(s["lnk_target"], "f");
    assert_eq!(s["lnk_source"], Value::from(p(h.path(), "f")));
    assert!(s.get("checksum").is_none());
    let r = converge(
        "stat",
        json!({"path": p(h.path(), "l"), "follow": true, "checksum_algorithm": "sha256"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(r.result["stat"]["isreg"], true);
    assert_eq!(
        r.result["stat"]["checksum"],
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    );
    let r = converge("stat", json!({"path": p(h.path(), "none")}), h.path(), None).await;
    assert_eq!(r.result["stat"], json!({"exists": false}));
}

#[tokio::test]
async fn find_patterns_types_and_filters() {
    let h = tempfile::tempdir().unwrap();
    write(h.path(), "a.log", "x");
    write(h.path(), "b.txt", "y");
    write(h.path(), ".hidden.log", "z");
    write(h.path(), "sub/c.log", "big content here");
    let root = p(h.path(), "");
    let names = |r: &Run| -> Vec<String> {
        r.result["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                f["path"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let r = converge(
        "find",
        json!({"paths": root, "patterns": "*.log"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(names(&r), ["a.log"]);
    assert_eq!(r.result["matched"], 1);
    let r = converge(
        "find",
        json!({"paths": root, "patterns": ["*.log"], "recurse": true, "hidden": true}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(names(&r), [".hidden.log", "a.log", "c.log"]);
    let r = converge(
        "find",
        json!({"paths": [root], "patterns": "^[ab]\\.", "use_regex": true}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(names(&r), ["a.log", "b.txt"]);
    let r = converge(
        "find",
        json!({"paths": root, "file_type": "directory"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(names(&r), ["sub"]);
    let r = converge(
        "find",
        json!({"paths": root, "recurse": true, "size": "10"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(names(&r), ["c.log"]);
    let r = converge(
        "find",
        json!({"paths": root, "recurse": true, "excludes": "c.*", "age": "-1d"}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(names(&r), ["a.log", "b.txt"]);
    let r = converge_n(
        "find",
        json!({"paths": root, "recurse": true, "contains": "big"}),
        h.path(),
        None,
        2,
    )
    .await;
    assert_eq!(names(&r), ["c.log"]);
    let r = converge(
        "find",
        json!({"paths": [p(h.path(), "missing")]}),
        h.path(),
        None,
    )
    .await;
    assert_eq!(r.result["matched"], 0);
    assert!(r.result["skipped_paths"].as_object().unwrap().len() == 1);
}

#[tokio::test]
async fn every_module_is_registered() {
    for m in [
        "copy",
        "template",
        "file",
        "lineinfile",
        "blockinfile",
        "replace",
        "stat",
        "find",
    ] {
        assert_eq!(lookup(m).map(|m| m.name()), Some(m));
    }
}
