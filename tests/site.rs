//! The README's first command, end to end on the local connection: `playbooks/site.yaml`
//! with `inventory/local.yaml` deploys the demo app (releases/ + `current` symlink, rendered
//! config, version file, a handler that "restarts" it). `--check` changes nothing and
//! predicts exactly the tasks the real run changes (but the handler's command, which it skips
//! as Ansible does); a second run changes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs site.yaml with `app_root` under `root` (journals and the run lock in `state/` next
/// to it, so that tests running at once hold different locks); returns (exit, JSON events).
fn site(root: &Path, extra: &[&str]) -> (i32, Vec<serde_json::Value>) {
    let state = root.parent().expect("root has a parent").join(STATE);
    let out = Command::cargo_bin("rdeploy")
        .unwrap()
        .current_dir(repo())
        .env("RDEPLOY_STATE_DIR", state)
        .args([
            "run",
            "playbooks/site.yaml",
            "-i",
            "inventory/local.yaml",
            "--output",
            "json",
        ])
        .args(["-e", &format!("app_root={}", root.display())])
        .args(extra)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let events = text
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{e}: {l}\n{}", String::from_utf8_lossy(&out.stderr)))
        })
        .collect();
    (out.status.code().unwrap_or(-1), events)
}

/// Task names whose result on localhost was `changed`, in order.
fn changed_tasks(events: &[serde_json::Value]) -> Vec<String> {
    let mut current = String::new();
    let mut out = Vec::new();
    for e in events {
        match e["event"].as_str() {
            Some("task") => current = e["name"].as_str().unwrap_or_default().to_string(),
            Some("result") if e["result"]["status"] == "changed" => out.push(current.clone()),
            _ => {}
        }
    }
    out
}

fn recap(events: &[serde_json::Value]) -> serde_json::Value {
    events
        .iter()
        .rev()
        .find(|e| e["event"] == "recap")
        .expect("a recap")["hosts"]["localhost"]
        .clone()
}

/// The controller state folder, next to `app_root`.
const STATE: &str = "state";

/// Every path under `root` with its type, mode and content (or link target), but the
/// controller's state folder.
fn tree(root: &Path) -> BTreeMap<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let key = p.strip_prefix(root).unwrap().display().to_string();
        if key == STATE {
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        let val = if meta.file_type().is_symlink() {
            format!("link -> {}", std::fs::read_link(&p).unwrap().display())
        } else if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
            format!("dir {mode:o}")
        } else {
            format!("file {mode:o} {:?}", std::fs::read(&p).unwrap())
        };
        out.insert(key, val);
    }
    out
}

#[test]
fn check_predicts_the_real_run_then_a_second_run_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("demo");
    let before = tree(tmp.path());

    let (code, check) = site(&root, &["--check", "--diff"]);
    assert_eq!(code, 0, "{check:#?}");
    assert_eq!(
        tree(tmp.path()),
        before,
        "--check must not change the target"
    );
    let predicted = changed_tasks(&check);
    assert!(
        predicted.len() >= 5,
        "a fresh target needs changes: {predicted:?}"
    );
    assert!(
        check.iter().any(|e| e["result"]["diff"]
            .as_array()
            .is_some_and(|d| !d.is_empty())),
        "--diff shows the drift"
    );

    let (code, real) = site(&root, &[]);
    assert_eq!(code, 0, "{real:#?}");
    // The handler is a command: as in Ansible, `--check` does not run it and reports it
    // `skipping`; every other change was predicted exactly.
    let mut expected = predicted.clone();
    expected.push("app : restart app".to_string());
    assert_eq!(
        changed_tasks(&real),
        expected,
        "--check predicted exactly what changed"
    );

    let rel = root.join("releases/1.0.0");
    assert_eq!(std::fs::read_link(root.join("current")).unwrap(), rel);
    assert_eq!(
        std::fs::read_to_string(rel.join("VERSION")).unwrap(),
        "1.0.0\n"
    );
    let conf = std::fs::read_to_string(rel.join("app.conf")).unwrap();
    assert!(
        conf.contains("version = \"1.0.0\"") && conf.contains("port = 8080"),
        "{conf}"
    );
    assert!(rel.join("STARTED").exists(), "the restart handler ran");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(rel.join("start.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o755);
    }

    let after_first = tree(tmp.path());
    let (code, again) = site(&root, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        recap(&again)["changed"],
        0,
        "second run: {:?}",
        changed_tasks(&again)
    );
    assert_eq!(
        tree(tmp.path()),
        after_first,
        "a second run leaves the tree as it was"
    );
}

#[test]
fn a_new_version_swaps_current_and_keeps_the_old_release() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("demo");
    assert_eq!(site(&root, &[]).0, 0);
    let (code, ev) = site(&root, &["-e", "app_version=1.1.0"]);
    assert_eq!(code, 0, "{ev:#?}");
    assert_eq!(
        std::fs::read_link(root.join("current")).unwrap(),
        root.join("releases/1.1.0")
    );
    assert!(
        root.join("releases/1.0.0/VERSION").exists(),
        "the previous release stays for rollback"
    );
    assert!(
        changed_tasks(&ev).iter().any(|t| t.contains("restart app")),
        "the swap notified the handler"
    );
}
