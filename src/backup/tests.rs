//! Backups and restores for real, on the local transport in a temporary directory: every kind
//! of path is restored byte-, mode- and link-identical, created paths are removed, old runs
//! are pruned but never a pending one.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use super::*;
use crate::transport::LocalTransport;

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
        restore(tr, &s.state_dir, &s.run_id, &e).await.unwrap();
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

    rollback(&mut tr, &s).await;
    assert_eq!(fs::read(&file).unwrap(), b"port=1\n\0binary\xff");
    assert_eq!(mode(&file), 0o640);
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
    backup(&mut tr, &s, 1, "mode", &[t(&d, false)], None)
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
    backup(&mut tr, &s, 1, "x", &[t(&p, false)], None)
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
    let e = backup(&mut tr, &s, 1, "x", &[t(&p, false)], None)
        .await
        .unwrap();
    fs::write(
        format!("{}/data", e[0].dir(&s.state_dir, &s.run_id)),
        "evil",
    )
    .unwrap();
    let err = restore(&mut tr, &s.state_dir, &s.run_id, &e[0])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
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
        backup(&mut tr, &s, 1, "x", &[t(&p, false)], None)
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
    let e = backup(&mut tr, &s, 1, "task \"quoted\"", &[t(&p, false)], None)
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
fn targets_merge_paths_and_skip_services() {
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
                deep: true
            },
            Target {
                path: "/b".into(),
                deep: false
            }
        ]
    );
}
