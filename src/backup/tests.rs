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
            set_pending(&mut tr, &s.state_dir, id, true, None)
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
