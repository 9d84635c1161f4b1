//! Backups and restores for real, on the local transport in a temporary directory: every kind
//! of path is restored byte-, mode- and link-identical, created paths are removed, old runs
//! are pruned but never a pending one.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use super::*;
use crate::transport::LocalTransport;

/// Backs up `targets` as the executor does (one command, then its printed entries).
async fn backup(
    tr: &mut AnyTransport,
    store: &Store,
    step: u32,
    task: &str,
    targets: &[Target],
    become_: Option<&Become>,
    path_env: Option<&str>,
) -> Result<Vec<Entry>, BackupError> {
    let cmd = backup_cmd(store, step, task, targets, become_, path_env);
    let out = run_ok(tr, cmd, become_, "backup").await?;
    parse_backup(&out, targets)
}

fn tr() -> AnyTransport {
    AnyTransport::Local(LocalTransport::new("t"))
}

fn store(dir: &Path, run: &str) -> Store {
    Store {
        state_dir: dir.join("state").display().to_string(),
        run_id: run.into(),
        keep_runs: 3,
        stamp: None,
        switch: false,
    }
}

fn t(p: &Path, deep: bool) -> Target {
    Target {
        path: p.display().to_string(),
        deep,
        kind: TargetKind::Path,
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Restores every entry of `run` from the host's manifest, last step first.
async fn rollback(tr: &mut AnyTransport, s: &Store) {
    let entries = read_manifest(tr, &s.state_dir, &s.run_id, None)
        .await
        .unwrap()
        .expect("a manifest");
    for e in restore_order(entries) {
        restore(tr, &s.state_dir, &s.run_id, &e, None)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn every_kind_of_path_comes_back_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("srv");
    fs::create_dir_all(root.join("releases/v1")).unwrap();
    fs::create_dir_all(root.join("tree/sub")).unwrap();
    let file = root.join("app.conf");
    fs::write(&file, b"port=1\n\0binary\xff").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    let link = root.join("current");
    symlink("releases/v1", &link).unwrap();
    fs::write(root.join("tree/sub/a"), "a").unwrap();
    let created = root.join("releases/v2");
    // As root (the test fleet's machines and CI), the file belongs to someone else first.
    let root_user = rustix::process::geteuid().is_root();
    if root_user {
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
    }
    let s = store(dir.path(), "20261201T000000Z-000001");
    let mut tr = tr();
    prepare(&mut tr, &s, None).await.unwrap();
    let e1 = backup(
        &mut tr,
        &s,
        1,
        "step one",
        &[t(&file, false), t(&link, false), t(&created, false)],
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(e1.len(), 3);
    assert_eq!(e1[0].kind, "file");
    assert_eq!(e1[0].mode, "640");
    assert_eq!(e1[1].kind, "link");
    assert_eq!(e1[2].kind, "absent");
    let e2 = backup(
        &mut tr,
        &s,
        2,
        "step two",
        &[t(&root.join("tree"), true)],
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!((e2[0].kind.as_str(), e2[0].deep), ("directory", true));

    // The run changes everything.
    fs::write(&file, "port=2\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir_all(created.join("deep")).unwrap();
    fs::remove_file(&link).unwrap();
    symlink("releases/v2", &link).unwrap();
    fs::remove_dir_all(root.join("tree")).unwrap();

    if root_user {
        std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();
    }

    rollback(&mut tr, &s).await;
    assert_eq!(fs::read(&file).unwrap(), b"port=1\n\0binary\xff");
    assert_eq!(mode(&file), 0o640);
    if root_user {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(&file).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (65534, 65534),
            "the owner is restored too"
        );
    }
    assert_eq!(
        fs::read_link(&link).unwrap(),
        std::path::PathBuf::from("releases/v1")
    );
    assert!(!created.exists(), "a path the run created is removed");
    assert_eq!(fs::read_to_string(root.join("tree/sub/a")).unwrap(), "a");
}

#[tokio::test]
async fn a_directory_is_restored_in_attributes_only_unless_deep() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("app");
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o750)).unwrap();
    let s = store(dir.path(), "20261201T000000Z-000002");
    let mut tr = tr();
    prepare(&mut tr, &s, None).await.unwrap();
    backup(&mut tr, &s, 1, "mode", &[t(&d, false)], None, None)
        .await
        .unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(d.join("new"), "kept").unwrap();
    rollback(&mut tr, &s).await;
    assert_eq!(mode(&d), 0o750);
    assert!(
        d.join("new").exists(),
        "contents are not the step's to undo"
    );
}

#[tokio::test]
async fn a_path_replaced_by_another_kind_is_put_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("conf");
    fs::write(&p, "file").unwrap();
    let s = store(dir.path(), "20261201T000000Z-000003");
    let mut tr = tr();
    prepare(&mut tr, &s, None).await.unwrap();
    backup(&mut tr, &s, 1, "x", &[t(&p, false)], None, None)
        .await
        .unwrap();
    fs::remove_file(&p).unwrap();
    fs::create_dir_all(p.join("inside")).unwrap();
    rollback(&mut tr, &s).await;
    assert_eq!(fs::read_to_string(&p).unwrap(), "file");
}

#[tokio::test]
async fn a_tampered_backup_is_reported_not_restored_silently() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    fs::write(&p, "v1").unwrap();
    let s = store(dir.path(), "20261201T000000Z-000004");
    let mut tr = tr();
    prepare(&mut tr, &s, None).await.unwrap();
    let e = backup(&mut tr, &s, 1, "x", &[t(&p, false)], None, None)
        .await
        .unwrap();
    fs::write(&p, "v2").unwrap();
    fs::write(
        format!("{}/data", e[0].dir(&s.state_dir, &s.run_id)),
        "evil",
    )
    .unwrap();
    let err = restore(&mut tr, &s.state_dir, &s.run_id, &e[0], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RestoreError::ChecksumMismatch { step: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("checksum mismatch: "), "{err}");
}

/// A path the step never changed (it failed first, say on a read-only filesystem) is
/// restored by doing nothing: no copy, no chmod, no chown, so the restore cannot fail there.
#[tokio::test]
async fn an_unchanged_path_is_restored_by_doing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    let l = dir.path().join("l");
    let d = dir.path().join("d");
    fs::write(&p, "v1").unwrap();
    std::os::unix::fs::symlink("f", &l).unwrap();
    fs::create_dir(&d).unwrap();
    let s = store(dir.path(), "20261201T000000Z-000009");
    let mut tr = tr();
    prepare(&mut tr, &s, None).await.unwrap();
    let gone = dir.path().join("never-made");
    let e = backup(
        &mut tr,
        &s,
        1,
        "x",
        &[t(&p, false), t(&l, false), t(&d, false), t(&gone, false)],
        None,
        None,
    )
    .await
    .unwrap();
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::symlink_metadata(p).unwrap());
    let before = [inode(&p), inode(&l), inode(&d)];
    let mtime = fs::metadata(&p).unwrap().modified().unwrap();
    for entry in &e {
        restore(&mut tr, &s.state_dir, &s.run_id, entry, None)
            .await
            .unwrap();
    }
    assert_eq!(
        before,
        [inode(&p), inode(&l), inode(&d)],
        "nothing was replaced"
    );
    assert_eq!(fs::metadata(&p).unwrap().modified().unwrap(), mtime);
    assert!(!gone.exists());
}

#[tokio::test]
async fn old_runs_are_pruned_except_pending_ones() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    fs::write(&p, "x").unwrap();
    let mut tr = tr();
    let ids: Vec<String> = (1..=5)
        .map(|i| format!("20261201T00000{i}Z-000000"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let s = store(dir.path(), id);
        prepare(&mut tr, &s, None).await.unwrap();
        backup(&mut tr, &s, 1, "x", &[t(&p, false)], None, None)
            .await
            .unwrap();
        if i == 0 {
            set_pending(&mut tr, &s.state_dir, id, Mark::Pending, None)
                .await
                .unwrap();
        }
    }
    let state = dir.path().join("state");
    let mut left: Vec<String> = fs::read_dir(state.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    // keep_runs 3: the newest three, plus the first one whose rollback is pending.
    assert_eq!(
        left,
        [
            ids[0].clone(),
            ids[2].clone(),
            ids[3].clone(),
            ids[4].clone()
        ]
    );
    assert!(!state.join(format!("runs/{}.json", ids[1])).exists());
    assert!(state.join(format!("runs/{}.json", ids[0])).exists());
}

#[tokio::test]
async fn hostile_paths_are_data() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a \"b\" $(touch pwned) `x`;\n'c'");
    fs::write(&p, "v1").unwrap();
    let s = store(dir.path(), "20261201T000000Z-000005");
    let mut tr = tr();
    prepare(&mut tr, &s, None).await.unwrap();
    let e = backup(
        &mut tr,
        &s,
        1,
        "task \"quoted\"",
        &[t(&p, false)],
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(e[0].path, p.display().to_string());
    assert_eq!(e[0].task, "task \"quoted\"");
    fs::write(&p, "v2").unwrap();
    rollback(&mut tr, &s).await;
    assert_eq!(fs::read_to_string(&p).unwrap(), "v1");
    assert!(!Path::new("pwned").exists());
    assert!(!dir.path().join("pwned").exists());
}

#[test]
fn targets_merge_paths_and_keep_services() {
    let r = vec![
        Resource::Path("/a".into()),
        Resource::Service("nginx".into()),
        Resource::Tree("/a".into()),
        Resource::Path("/b".into()),
    ];
    let got = targets(&r);
    assert_eq!(
        got,
        [
            Target {
                path: "/a".into(),
                deep: true,
                kind: TargetKind::Path,
            },
            Target {
                path: "nginx".into(),
                deep: false,
                kind: TargetKind::Service,
            },
            Target {
                path: "/b".into(),
                deep: false,
                kind: TargetKind::Path,
            }
        ]
    );
}

/// Writes an executable `sh` script.
fn tool(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A service's active/enabled state and a package's version are recorded before the change
/// and put back by the restore, through the same tools (stand-ins for systemctl, dpkg-query
/// and apt-get first on the task's PATH: this machine runs no systemd and tests install no
/// packages).
#[tokio::test]
async fn service_and_package_states_are_recorded_and_put_back() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let st = dir.path().join("fake");
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(&st).unwrap();
    let f = st.display();
    tool(
        &bin,
        "systemctl",
        &format!(
            r#"[ "$2" = -- ] && n="$3" || n="$2"
case $1 in
is-active) cat "{f}/$n.active" ;;
is-enabled) cat "{f}/$n.enabled" ;;
start) echo active > "{f}/$n.active" ;;
stop) echo inactive > "{f}/$n.active" ;;
enable) echo enabled > "{f}/$n.enabled" ;;
disable) echo disabled > "{f}/$n.enabled" ;;
esac"#
        ),
    );
    tool(
        &bin,
        "dpkg-query",
        &format!(
            r#"eval n=\${{$#}}
[ -f "{f}/$n.version" ] || exit 1
printf 'install ok installed %s' "$(cat "{f}/$n.version")""#
        ),
    );
    tool(
        &bin,
        "apt-get",
        &format!(
            r#"echo "$*" >> "{f}/apt.log"
for a; do case $a in *=*) echo "${{a#*=}}" > "{f}/${{a%%=*}}.version" ;; esac; done
case "$*" in *remove*) eval n=\${{$#}}; rm -f "{f}/$n.version" ;; esac"#
        ),
    );
    fs::write(st.join("app.active"), "inactive\n").unwrap();
    fs::write(st.join("app.enabled"), "disabled\n").unwrap();
    fs::write(st.join("nginx.version"), "1.22.1-9\n").unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let s = store(dir.path(), "20261201T000000Z-000006");
    let mut tr = tr();
    prepare(&mut tr, &s, None).await.unwrap();
    let subject = |name: &str, kind| Target {
        path: name.into(),
        deep: false,
        kind,
    };
    let e = backup(
        &mut tr,
        &s,
        1,
        "service and packages",
        &[
            subject("app", TargetKind::Service),
            subject("nginx", TargetKind::Package),
            subject("curl", TargetKind::Package),
        ],
        None,
        Some(&path),
    )
    .await
    .unwrap();
    assert_eq!(
        (e[0].kind.as_str(), e[0].state.as_str()),
        ("service", "inactive disabled")
    );
    assert_eq!(
        (e[1].kind.as_str(), e[1].state.as_str()),
        ("package", "1.22.1-9")
    );
    assert_eq!((e[2].kind.as_str(), e[2].state.as_str()), ("package", ""));

    // The run starts and enables the service, upgrades nginx and installs curl.
    fs::write(st.join("app.active"), "active\n").unwrap();
    fs::write(st.join("app.enabled"), "enabled\n").unwrap();
    fs::write(st.join("nginx.version"), "1.24.0-1\n").unwrap();
    fs::write(st.join("curl.version"), "7.88.1\n").unwrap();

    rollback(&mut tr, &s).await;
    let read = |n: &str| fs::read_to_string(st.join(n)).unwrap_or_default();
    assert_eq!(read("app.active"), "inactive\n");
    assert_eq!(read("app.enabled"), "disabled\n");
    assert_eq!(read("nginx.version"), "1.22.1-9\n");
    assert!(
        !st.join("curl.version").exists(),
        "a package the run installed is removed"
    );
    assert!(
        read("apt.log").contains("nginx=1.22.1-9"),
        "{}",
        read("apt.log")
    );
}

#[tokio::test]
async fn an_attribute_change_keeps_the_mode_and_owner_but_copies_no_content() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big.bin");
    fs::write(&f, vec![1u8; 4096]).unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    let s = store(dir.path(), "20261201T000000Z-000009");
    let mut tr = tr();
    prepare(&mut tr, &s, None).await.unwrap();
    let target = Target {
        path: f.display().to_string(),
        deep: false,
        kind: TargetKind::Attrs,
    };
    let entries = backup(&mut tr, &s, 1, "mode", &[target], None, None)
        .await
        .unwrap();
    assert_eq!(entries[0].kind, "attrs");
    assert_eq!(entries[0].mode, "644");
    assert!(
        !Path::new(&entries[0].dir(&s.state_dir, &s.run_id)).exists(),
        "no copy of the content"
    );
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    rollback(&mut tr, &s).await;
    assert_eq!(mode(&f), 0o644);
    assert_eq!(fs::read(&f).unwrap(), vec![1u8; 4096]);
    // Replaced by something else meanwhile: the restore says so instead of guessing.
    fs::remove_file(&f).unwrap();
    symlink("elsewhere", &f).unwrap();
    let entries = read_manifest(&mut tr, &s.state_dir, &s.run_id, None)
        .await
        .unwrap()
        .unwrap();
    let err = restore(&mut tr, &s.state_dir, &s.run_id, &entries[0], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RestoreError::CannotRestore { cause, .. } if cause.contains("no longer a regular file")),
        "{err:?}"
    );
}

#[test]
fn a_path_named_for_its_attributes_and_its_content_is_backed_up_whole() {
    for r in [
        vec![Resource::Attrs("/a".into()), Resource::Path("/a".into())],
        vec![Resource::Path("/a".into()), Resource::Attrs("/a".into())],
    ] {
        assert_eq!(
            targets(&r),
            [Target {
                path: "/a".into(),
                deep: false,
                kind: TargetKind::Path,
            }]
        );
    }
}

/// A run that drains a host (removes its "in rotation" marker), changes the app and puts the
/// marker back: its rollback restores each path straight to its state before the run, so the
/// marker, which the run left as it found it, is never removed (the host never leaves
/// rotation), and the app comes back.
#[tokio::test]
async fn a_rollback_never_passes_through_the_runs_intermediate_states() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("in-rotation");
    let app = dir.path().join("app.conf");
    fs::write(&marker, "in\n").unwrap();
    fs::write(&app, "v1\n").unwrap();
    let s = store(dir.path(), "20261201T000000Z-000011");
    let mut tr = tr();
    prepare(&mut tr, &s, None).await.unwrap();
    backup(&mut tr, &s, 1, "drain", &[t(&marker, false)], None, None)
        .await
        .unwrap();
    fs::remove_file(&marker).unwrap();
    backup(&mut tr, &s, 2, "app", &[t(&app, false)], None, None)
        .await
        .unwrap();
    fs::write(&app, "v2\n").unwrap();
    let e3 = backup(&mut tr, &s, 3, "undrain", &[t(&marker, false)], None, None)
        .await
        .unwrap();
    assert_eq!(e3[0].kind, "absent");
    fs::write(&marker, "in\n").unwrap();
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::symlink_metadata(p).unwrap());
    let before = inode(&marker);
    let entries = read_manifest(&mut tr, &s.state_dir, &s.run_id, None)
        .await
        .unwrap()
        .unwrap();
    let order: Vec<(u32, String)> = restore_order(entries)
        .iter()
        .map(|e| (e.step, e.task.clone()))
        .collect();
    assert_eq!(order, [(2, "app".into()), (1, "drain".into())]);
    rollback(&mut tr, &s).await;
    assert_eq!(inode(&marker), before, "the marker was never removed");
    assert_eq!(fs::read_to_string(&app).unwrap(), "v1\n");
}

/// A path whose first change touched only its mode, then its content: both come back (the
/// oldest entry kept only the attributes, the next one holds the content before the run).
#[tokio::test]
async fn a_mode_change_then_a_content_change_both_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("app.conf");
    fs::write(&f, "v1\n").unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    let s = store(dir.path(), "20261201T000000Z-000012");
    let mut tr = tr();
    prepare(&mut tr, &s, None).await.unwrap();
    let attrs = Target {
        path: f.display().to_string(),
        deep: false,
        kind: TargetKind::Attrs,
    };
    backup(
        &mut tr,
        &s,
        1,
        "mode",
        std::slice::from_ref(&attrs),
        None,
        None,
    )
    .await
    .unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    backup(&mut tr, &s, 2, "mode again", &[attrs], None, None)
        .await
        .unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
    backup(&mut tr, &s, 3, "content", &[t(&f, false)], None, None)
        .await
        .unwrap();
    fs::write(&f, "v2\n").unwrap();
    backup(&mut tr, &s, 4, "content again", &[t(&f, false)], None, None)
        .await
        .unwrap();
    fs::write(&f, "v3\n").unwrap();
    let entries = read_manifest(&mut tr, &s.state_dir, &s.run_id, None)
        .await
        .unwrap()
        .unwrap();
    let steps: Vec<u32> = restore_order(entries).iter().map(|e| e.step).collect();
    assert_eq!(steps, [3, 1]);
    rollback(&mut tr, &s).await;
    assert_eq!(fs::read_to_string(&f).unwrap(), "v1\n");
    assert_eq!(mode(&f), 0o644);
}

/// A step that wrote `a/b/c.txt` where `a` was missing made `a` and `a/b` too: the rollback
/// takes them away, but never a folder that holds something else by then.
#[tokio::test]
async fn a_rollback_removes_the_folders_a_step_created_when_they_are_empty() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("srv");
    fs::create_dir(&top).unwrap();
    let s = store(dir.path(), "20261201T000000Z-000007");
    let mut tr = tr();
    prepare(&mut tr, &s, None).await.unwrap();
    let file = top.join("a/b/c.txt");
    // The copy module names the folder it copies into (with its slash) and the file.
    let folder = Target {
        path: format!("{}/a/b/", top.display()),
        deep: false,
        kind: TargetKind::Path,
    };
    let e = backup(
        &mut tr,
        &s,
        1,
        "copy",
        &[folder, t(&file, false)],
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!((e[0].kind.as_str(), e[0].parents), ("absent", 1));
    assert_eq!((e[1].kind.as_str(), e[1].parents), ("absent", 2));
    fs::create_dir_all(top.join("a/b")).unwrap();
    fs::write(&file, "new").unwrap();
    rollback(&mut tr, &s).await;
    assert!(!top.join("a").exists(), "a/ is left behind");
    assert!(top.is_dir(), "the folder that was there stays");

    // Again, but something else was put in `a` meanwhile: `a` stays with it, `a/b` goes.
    let s = store(dir.path(), "20261201T000000Z-000008");
    prepare(&mut tr, &s, None).await.unwrap();
    backup(&mut tr, &s, 1, "copy", &[t(&file, false)], None, None)
        .await
        .unwrap();
    fs::create_dir_all(top.join("a/b")).unwrap();
    fs::write(&file, "new").unwrap();
    fs::write(top.join("a/notes"), "mine").unwrap();
    rollback(&mut tr, &s).await;
    assert!(!top.join("a/b").exists());
    assert_eq!(fs::read_to_string(top.join("a/notes")).unwrap(), "mine");
}

/// Manifests and journals written before `parents` existed still load (as 0).
#[test]
fn manifest_lines_without_parents_still_load() {
    let line = r#"{"step":1,"index":0,"task":"copy","path":"/srv/a","become_user":null,"path_env":null,"kind":"absent","mode":"","uid":null,"gid":null,"sha256":"","deep":false}"#;
    let (entries, torn) = parse_manifest(line);
    assert!(!torn);
    assert_eq!(entries[0].parents, 0);
    let json = serde_json::to_string(&entries[0]).unwrap();
    assert!(!json.contains("parents"), "{json}");
}

/// CVE-2024-9902 class: a folder on the way replaced by a link that another user owns is
/// refused, naming it, before anything is backed up or written; links owned by root or by
/// the user the step runs as are followed as before.
#[tokio::test]
async fn a_path_under_a_symlinked_folder_another_user_owns_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("srv/app");
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir_all(&app).unwrap();
    fs::create_dir_all(&elsewhere).unwrap();
    let conf = app.join("conf");
    symlink(&elsewhere, &conf).unwrap();
    let s = store(dir.path(), "20261201T000000Z-000009");
    let mut tr = tr();
    prepare(&mut tr, &s, None).await.unwrap();
    let file = conf.join("app.ini");
    // Our own link: allowed.
    let e = backup(&mut tr, &s, 1, "copy", &[t(&file, false)], None, None)
        .await
        .unwrap();
    assert_eq!(e[0].kind, "absent");
    if !rustix::process::geteuid().is_root() {
        return; // only root can give a link to another user
    }
    std::os::unix::fs::lchown(&conf, Some(65534), None).unwrap();
    let err = backup(&mut tr, &s, 2, "copy", &[t(&file, false)], None, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "refusing to write {}: parent {} is a symlink owned by uid 65534 (neither root nor the user the task runs as)",
            file.display(),
            conf.display()
        )),
        "{err}"
    );
    assert!(err.contains("(exit 6)"), "{err}");
    let manifest = fs::read_to_string(manifest_path(&s.state_dir, &s.run_id)).unwrap();
    assert_eq!(
        manifest.lines().count(),
        1,
        "step 2 recorded nothing: {manifest}"
    );
    // Every target is looked at before any is backed up.
    let first = dir.path().join("first.txt");
    fs::write(&first, "v1").unwrap();
    backup(
        &mut tr,
        &s,
        3,
        "copy",
        &[t(&first, false), t(&file, false)],
        None,
        None,
    )
    .await
    .unwrap_err();
    let manifest = fs::read_to_string(manifest_path(&s.state_dir, &s.run_id)).unwrap();
    assert_eq!(manifest.lines().count(), 1, "{manifest}");
    // The same link owned by root is followed.
    std::os::unix::fs::lchown(&conf, Some(0), None).unwrap();
    backup(&mut tr, &s, 4, "copy", &[t(&file, false)], None, None)
        .await
        .unwrap();
}

/// A transfer killed outright leaves `.NAME.rdeploy-tmp.*` next to its destination: the next
/// run's backup before a write in that folder removes it (and the other rdeploy temporary
/// files from before the run started), and nothing else.
#[tokio::test]
async fn stale_temp_files_in_a_folder_about_to_be_written_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    fs::create_dir(&www).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let stale = [
        ".index.html.rdeploy-tmp.4242.1a2b",
        ".other.css.rdeploy-tmp.c0ffee",
        ".index.html.rdeploy-validate.1.2",
        ".current.rdeploy-ln.abc",
    ];
    for name in stale {
        let f = fs::File::create(www.join(name)).unwrap();
        f.set_modified(old).unwrap();
    }
    let kept = ["notes.rdeploy-tmp.txt", "index.html.bak"];
    for name in kept {
        let f = fs::File::create(www.join(name)).unwrap();
        f.set_modified(old).unwrap();
    }
    let s = store(dir.path(), &journal::new_run_id());
    // Written after the run started: it may belong to a write in progress.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fs::write(www.join(".app.js.rdeploy-tmp.live"), "x").unwrap();
    let mut tr = tr();
    prepare(&mut tr, &s, None).await.unwrap();
    backup(
        &mut tr,
        &s,
        1,
        "copy",
        &[t(&www.join("index.html"), false)],
        None,
        None,
    )
    .await
    .unwrap();
    let mut left: Vec<String> = fs::read_dir(&www)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            ".app.js.rdeploy-tmp.live",
            "index.html.bak",
            "notes.rdeploy-tmp.txt"
        ]
    );
}

/// The kinds of restore failure read differently, each saying its kind first, and keep their
/// fields for `--output json`.
#[test]
fn restore_errors_say_their_kind() {
    let mismatch = RestoreError::ChecksumMismatch {
        step: 2,
        task: "copy app.ini".into(),
        path: "/srv/app.ini".into(),
    };
    let cannot = RestoreError::CannotRestore {
        step: 1,
        task: "copy".into(),
        path: "/srv/fifo".into(),
        cause: "/srv/fifo was a special file: it cannot be restored (exit 5)".into(),
    };
    let gone = RestoreError::Unreachable {
        cause: "connection refused".into(),
    };
    assert_eq!(
        mismatch.to_string(),
        "checksum mismatch: /srv/app.ini (step 2, copy app.ini) differs from its backup after the restore"
    );
    assert_eq!(
        cannot.to_string(),
        "cannot restore /srv/fifo (step 1, copy): /srv/fifo was a special file: it cannot be restored (exit 5)"
    );
    assert_eq!(gone.to_string(), "unreachable: connection refused");
    assert_eq!(
        RestoreError::host("reading the manifest: exit 1").to_string(),
        "reading the manifest: exit 1"
    );
    let json = serde_json::to_value(&mismatch).unwrap();
    assert_eq!(json["kind"], "checksum_mismatch");
    assert_eq!(json["path"], "/srv/app.ini");
    assert_eq!(serde_json::to_value(&gone).unwrap()["kind"], "unreachable");
}

/// A restore command's exit status becomes its kind: 4 a checksum mismatch, others an entry
/// that could not be restored with what it said; a lost connection is the host unreachable.
#[test]
fn restore_outcomes_are_typed_by_exit_status() {
    let e = Entry {
        step: 3,
        index: 0,
        task: "t".into(),
        path: "/p".into(),
        become_user: None,
        become_method: None,
        kind: "file".into(),
        mode: "644".into(),
        uid: Some(0),
        gid: Some(0),
        sha256: String::new(),
        deep: false,
        path_env: None,
        state: String::new(),
        parents: 0,
        run: None,
        switch: false,
    };
    let out = |status: i32, stderr: &str| Output {
        status,
        stdout: Vec::new(),
        stderr: stderr.as_bytes().to_vec(),
        truncated: Default::default(),
    };
    assert_eq!(restore_outcome(&out(0, ""), &e), Ok(()));
    assert!(matches!(
        restore_outcome(&out(4, "checksum of /p differs after restore"), &e),
        Err(RestoreError::ChecksumMismatch { step: 3, .. })
    ));
    assert_eq!(
        restore_outcome(&out(3, "cp: Read-only file system\n"), &e),
        Err(RestoreError::CannotRestore {
            step: 3,
            task: "t".into(),
            path: "/p".into(),
            cause: "cp: Read-only file system (exit 3)".into(),
        })
    );
    let lost = RestoreError::from_transport(
        &TransportError::Unresponsive("no keepalive reply".into()),
        "restoring",
    );
    assert!(matches!(lost, RestoreError::Unreachable { .. }), "{lost:?}");
}

/// The manifest keeps how the step became its user (never the password), and the restore
/// switches user the same way; manifests without the field restore through sudo.
#[tokio::test]
async fn the_manifest_keeps_the_become_method_and_the_restore_switches_user_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    fs::write(&p, "v1").unwrap();
    let s = store(dir.path(), "20261201T000000Z-000011");
    let mut tr = tr();
    prepare(&mut tr, &s, None).await.unwrap();
    let su = Become::su("root", Some("hunter22".into()));
    let cmd = backup_cmd(&s, 1, "x", &[t(&p, false)], Some(&su), None);
    let text = cmd.display();
    assert!(text.contains(r#""become_method":"su""#), "{text}");
    assert!(!text.contains("hunter22"));
    // Run without switching user here (the end-to-end tests switch for real).
    let out = run_ok(&mut tr, cmd, None, "backup").await.unwrap();
    let e = parse_backup(&out, &[t(&p, false)]).unwrap();
    assert_eq!(e[0].become_method, Some(BecomeMethod::Su));
    let manifest = fs::read_to_string(manifest_path(&s.state_dir, &s.run_id)).unwrap();
    assert!(manifest.contains(r#""become_method":"su""#) && !manifest.contains("hunter22"));
    assert_eq!(
        restore_become(&e[0], Some("pw")),
        Some(Become::su("root", Some("pw".into())))
    );
    let old: Entry = serde_json::from_str(
        r#"{"step":1,"index":0,"task":"x","path":"/p","become_user":"root","kind":"absent"}"#,
    )
    .unwrap();
    assert_eq!(restore_become(&old, None), Some(Become::sudo("root")));
}
