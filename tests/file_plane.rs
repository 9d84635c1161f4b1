//! The file plane over SSH (issue 16), question by question: on a real sshd host, every stat
//! helper, `test -d`, `readlink -f` and file read that the SFTP plane answers gives what the
//! shell program itself prints there (the same transport runs the program with `exec`), for
//! files, folders, links, dangling links, absent paths, a path under a file, a folder that
//! cannot be searched, setuid modes and names with spaces.

mod support;

use rdeploy::transport::cmd::{Cmd, parse_stat_content};
use rdeploy::transport::files::every_question;
use rdeploy::transport::{AnyTransport, ReadSet, SshTransport, Transport, ssh_config};
use support::fleet::Fleet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sftp_plane_answers_as_the_shell_programs_do() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let root = h.path("/srv/plane");
    std::fs::create_dir_all(root.join("sub dir")).unwrap();
    std::fs::write(root.join("f"), "old\ntext\n").unwrap();
    std::fs::write(root.join("big"), vec![b'x'; 300 * 1024]).unwrap();
    std::os::unix::fs::symlink("f", root.join("ln")).unwrap();
    std::os::unix::fs::symlink("sub dir", root.join("ln-dir")).unwrap();
    std::os::unix::fs::symlink("nowhere", root.join("dangling")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("f"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    // The fleet's login user owns what the test made (it runs as root).
    let chown = std::process::Command::new("chown")
        .args(["-R", support::fleet::USER])
        .arg(&root)
        .status()
        .unwrap();
    assert!(chown.success());
    std::fs::create_dir_all(root.join("closed/inner")).unwrap();
    std::fs::set_permissions(root.join("closed"), std::fs::Permissions::from_mode(0o700)).unwrap();

    let mut tr = connect(&fleet, h).await;
    assert_eq!(tr.take_plane_note().as_deref(), Some("sftp subsystem"));

    let mut answered = 0;
    for p in [
        "f",
        "big",
        "sub dir",
        "ln",
        "ln-dir",
        "dangling",
        "absent",
        "f/below",
        "nodir/x",
        "closed/inner/x",
    ] {
        let path = format!("/srv/plane/{p}");
        let cmds: Vec<Cmd> = every_question(&path);
        for cmd in cmds {
            let shell = tr.exec(&cmd).await.unwrap();
            let set = ReadSet::new(std::slice::from_ref(&cmd), 1 << 20).unwrap();
            let before = tr.commands_run();
            let got = tr.read(&set).await.unwrap().unwrap().remove(0);
            if tr.commands_run() == before {
                answered += 1;
            }
            let q = format!("{p}: {}", cmd.display());
            match (parse_stat_content(&got), parse_stat_content(&shell)) {
                (Ok(a), Ok(b)) if cmd.display().contains("set -- ") && got.status == 0 => {
                    assert_eq!(a, b, "{q}")
                }
                _ => {
                    assert_eq!(got.status, shell.status, "{q}\n{shell:?}\n{got:?}");
                    if got.status == 0 {
                        assert_eq!(got.stdout, shell.stdout, "{q}");
                    }
                }
            }
        }
    }
    // Most questions cost no program at all (the rest are left to the shell on purpose: a
    // file too large to hash here, a path under a file, a dangling link to resolve).
    assert!(
        answered >= 50,
        "{answered} of 80 answered without a program"
    );
}

/// Connects to `h` as the fleet's login user.
async fn connect(fleet: &Fleet, h: &support::fleet::Host) -> AnyTransport {
    let vars = fleet.host_vars(h);
    let var = |k: &str| vars.get(k).cloned();
    let config = ssh_config::load_config(Some(fleet.ssh_config())).unwrap();
    let settings =
        ssh_config::resolve(h.name(), &var, &ssh_config::SshOptions::default(), &config).unwrap();
    let ssh = SshTransport::connect(&settings, &ssh_config::SshOptions::default())
        .await
        .unwrap();
    AnyTransport::Ssh(ssh)
}

/// The files below `dir` (relative name → bytes and mode), links as `-> target`.
fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, (Vec<u8>, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if m.is_dir() {
                out.insert(format!("{rel}/"), (Vec::new(), m.mode() & 0o7777));
                stack.push(p);
            } else if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.insert(rel, (format!("-> {}", t.display()).into_bytes(), 0));
            } else {
                out.insert(rel, (std::fs::read(&p).unwrap(), m.mode() & 0o7777));
            }
        }
    }
    out
}

/// A backup of plain paths taken on the SFTP plane (before a file operation) writes what the
/// backup program writes for the same paths: the same manifest entries, the same kept data,
/// link targets and modes; it prepares the state folder and prunes old runs as the program
/// does, removes stale temporary files, and starts no program on the host. The rollback of
/// either restores the same files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_on_the_sftp_plane_are_the_backup_programs() {
    use rdeploy::backup::{self, Store, Target, TargetKind};
    use std::os::unix::fs::PermissionsExt;
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let root = h.path("/srv/bk");
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::write(root.join("f"), "kept\nbytes\n").unwrap();
    std::fs::set_permissions(root.join("f"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(root.join("g"), "attrs only\n").unwrap();
    std::os::unix::fs::symlink("f", root.join("ln")).unwrap();
    // Old runs in the state folder: one to prune, one whose rollback is pending.
    for old in ["20200101T000000Z-aaaa", "20200102T000000Z-bbbb"] {
        std::fs::create_dir_all(root.join(format!("state/backups/{old}/0001/0"))).unwrap();
        std::fs::write(root.join(format!("state/backups/{old}/0001/0/data")), "x").unwrap();
        std::fs::create_dir_all(root.join("state/runs")).unwrap();
        std::fs::write(root.join(format!("state/runs/{old}.json")), "{}\n").unwrap();
    }
    std::fs::write(root.join("state/runs/20200102T000000Z-bbbb.pending"), "").unwrap();
    let chown = std::process::Command::new("chown")
        .args(["-R", &format!("{0}:{0}", support::fleet::USER)])
        .arg(&root)
        .status()
        .unwrap();
    assert!(chown.success());
    let stale = || {
        let p = root.join(".f.rdeploy-tmp.dead");
        std::fs::write(&p, "left by a killed transfer").unwrap();
        let touched = std::process::Command::new("touch")
            .args(["-h", "-d", "2001-01-01"])
            .arg(&p)
            .status()
            .unwrap();
        assert!(touched.success());
        p
    };

    let run = "20261206T120000Z-test".to_string();
    let store = Store {
        state_dir: "/srv/bk/state".into(),
        run_id: run.clone(),
        keep_runs: 1,
    };
    let path = |k: TargetKind, p: &str| Target {
        path: format!("/srv/bk/{p}"),
        deep: false,
        kind: k,
    };
    let targets = vec![
        path(TargetKind::Path, "f"),
        path(TargetKind::Path, "ln"),
        path(TargetKind::Path, "d"),
        path(TargetKind::Path, "new/deeper/x"),
        path(TargetKind::Attrs, "g"),
    ];
    let mut tr = connect(&fleet, h).await;
    assert_eq!(tr.take_plane_note().as_deref(), Some("sftp subsystem"));

    // Step 1: the program (prepared by its own command first, as the executor would).
    let stale_file = stale();
    let out = tr
        .exec(&backup::prepare_cmd(&Store {
            keep_runs: 5,
            ..store.clone()
        }))
        .await
        .unwrap();
    assert_eq!(out.status, 0, "{out:?}");
    let out = tr
        .exec(&backup::backup_cmd(&store, 1, "t", &targets, None, None))
        .await
        .unwrap();
    assert_eq!(out.status, 0, "{out:?}");
    let by_program = backup::parse_backup(&out, &targets).unwrap();
    assert!(
        !stale_file.exists(),
        "the program removes stale temporary files"
    );

    // Step 2: the same paths on the plane, queued before a file operation; it prepares the
    // state folder (keeping 1 run) too.
    let stale_file = stale();
    let plan = backup::backup_plan(&store, 2, "t", &targets, None, None, Some(1)).unwrap();
    let cmd = backup::backup_cmd(&store, 2, "t", &targets, None, None);
    let before = tr.commands_run();
    tr.run_before_next(cmd, Some(plan));
    tr.put(
        rdeploy::transport::Payload::Bytes(b"new\n"),
        "/srv/bk/f",
        &rdeploy::transport::FileAttrs::default(),
    )
    .await
    .unwrap();
    let out = match tr.take_queued() {
        Some(rdeploy::transport::QueuedOutcome::Ran(out)) => out,
        other => panic!("the backup did not run: {other:?}"),
    };
    assert_eq!(tr.commands_run(), before, "no program ran on the host");
    let on_plane = backup::parse_backup(&out, &targets).unwrap();
    assert!(
        !stale_file.exists(),
        "the plane removes stale temporary files"
    );
    for (a, b) in by_program.iter().zip(&on_plane) {
        assert_eq!((a.step, b.step), (1, 2));
        assert_eq!(
            backup::Entry {
                step: 0,
                ..a.clone()
            },
            backup::Entry {
                step: 0,
                ..b.clone()
            }
        );
    }
    assert_eq!(on_plane[0].kind, "file");
    assert_eq!(on_plane[1].kind, "link");
    assert_eq!(on_plane[2].kind, "directory");
    assert_eq!(
        (on_plane[3].kind.as_str(), on_plane[3].parents),
        ("absent", 2)
    );
    assert_eq!(on_plane[4].kind, "attrs");
    // The manifest on the host holds both steps' lines, as printed.
    let manifest = std::fs::read_to_string(root.join(format!("state/runs/{run}.json"))).unwrap();
    assert_eq!(
        backup::parse_manifest(&manifest).0,
        [by_program.clone(), on_plane.clone()].concat()
    );
    // The kept data: the same files, bytes and modes.
    let steps = root.join(format!("state/backups/{run}"));
    assert_eq!(tree(&steps.join("0001")), tree(&steps.join("0002")));
    assert_eq!(
        std::fs::read(steps.join("0002/0/data")).unwrap(),
        b"kept\nbytes\n"
    );
    // Pruned as the program prunes: the oldest run gone, the pending one kept.
    assert!(!root.join("state/backups/20200101T000000Z-aaaa").exists());
    assert!(!root.join("state/runs/20200101T000000Z-aaaa.json").exists());
    assert!(root.join("state/backups/20200102T000000Z-bbbb").exists());
    for d in [
        "state/runs",
        "state/backups",
        &format!("state/backups/{run}"),
    ] {
        let mode = std::fs::metadata(root.join(d))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700, "{d}");
    }

    // The rollback of the plane's entries puts the file back as it was.
    for e in backup::restore_order(on_plane) {
        backup::restore(&mut tr, "/srv/bk/state", &run, &e, None)
            .await
            .unwrap();
    }
    assert_eq!(std::fs::read(root.join("f")).unwrap(), b"kept\nbytes\n");
    let mode = std::fs::metadata(root.join("f"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o640);
    tr.close().await;
}

/// A backup the plane cannot take the program's way (a file too large to hash on the
/// controller) is left to the program: the same entry, one command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_large_file_is_left_to_the_program() {
    use rdeploy::backup::{self, Store, Target, TargetKind};
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let root = h.path("/srv/bk");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("big"), vec![b'y'; 400 * 1024]).unwrap();
    let chown = std::process::Command::new("chown")
        .args(["-R", &format!("{0}:{0}", support::fleet::USER)])
        .arg(&root)
        .status()
        .unwrap();
    assert!(chown.success());
    let store = Store {
        state_dir: "/srv/bk/state".into(),
        run_id: "20261206T120000Z-big".into(),
        keep_runs: 5,
    };
    let targets = vec![Target {
        path: "/srv/bk/big".into(),
        deep: false,
        kind: TargetKind::Path,
    }];
    let mut tr = connect(&fleet, h).await;
    let plan = backup::backup_plan(&store, 1, "t", &targets, None, None, Some(5)).unwrap();
    let cmd = Cmd::raw(":")
        .and(backup::prepare_cmd(&store))
        .and(backup::backup_cmd(&store, 1, "t", &targets, None, None));
    let before = tr.commands_run();
    tr.run_before_next(cmd, Some(plan));
    tr.put(
        rdeploy::transport::Payload::Bytes(b"small now\n"),
        "/srv/bk/big",
        &rdeploy::transport::FileAttrs::default(),
    )
    .await
    .unwrap();
    let Some(rdeploy::transport::QueuedOutcome::Ran(out)) = tr.take_queued() else {
        panic!("the backup did not run");
    };
    assert_eq!(tr.commands_run(), before + 1, "the program took it");
    let e = backup::parse_backup(&out, &targets).unwrap().remove(0);
    assert_eq!((e.kind.as_str(), e.sha256.len()), ("file", 64));
    let kept = root.join("state/backups/20261206T120000Z-big/0001/0/data");
    assert_eq!(std::fs::read(kept).unwrap().len(), 400 * 1024);
    tr.close().await;
}
