//! The file plane over SSH (issue 16), question by question: on a real sshd host, every stat
//! helper, `test -d`, `readlink -f` and file read that the SFTP plane answers gives what the
//! shell program itself prints there (the same transport runs the program with `exec`), for
//! files, folders, links, dangling links, absent paths, a path under a file, a folder that
//! cannot be searched, setuid modes and names with spaces.

mod support;

use rdeploy::transport::cmd::{Cmd, parse_stat_content};
use rdeploy::transport::files::every_question;
use rdeploy::transport::{
    AnyTransport, LocalTransport, ReadSet, SshTransport, Transport, ssh_config,
};
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

/// Makes everything below `root` the fleet login user's (owner and group).
fn give_to_login_user(root: &std::path::Path) {
    let chown = std::process::Command::new("chown")
        .args(["-R", &format!("{0}:{0}", support::fleet::USER)])
        .arg(root)
        .status()
        .unwrap();
    assert!(chown.success());
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

/// The files below `dir` (relative name → bytes, mode, owner, group and link count), links
/// as `-> target`.
fn tree(
    dir: &std::path::Path,
) -> std::collections::BTreeMap<String, (Vec<u8>, u32, u32, u32, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if m.is_dir() {
                out.insert(
                    format!("{rel}/"),
                    (Vec::new(), m.mode() & 0o7777, m.uid(), m.gid(), m.nlink()),
                );
                stack.push(p);
            } else if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                let t = format!("-> {}", t.display()).into_bytes();
                out.insert(rel, (t, 0, m.uid(), m.gid(), m.nlink()));
            } else {
                let data = std::fs::read(&p).unwrap();
                out.insert(rel, (data, m.mode() & 0o7777, m.uid(), m.gid(), m.nlink()));
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
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let root = h.path("/srv/bk");
    backup_files(&root);
    give_to_login_user(&root);
    let mut tr = connect(&fleet, h).await;
    assert_eq!(tr.take_plane_note().as_deref(), Some("sftp subsystem"));
    backups_compared(&mut tr, &root, "/srv/bk").await;
    tr.close().await;
}

/// The same on the local connection: the backup is taken with `std::fs`, no program.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_with_std_fs_are_the_backup_programs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bk");
    backup_files(&root);
    let mut tr = AnyTransport::Local(LocalTransport::new("localhost").with_recording());
    backups_compared(&mut tr, &root, &root.display().to_string()).await;
}

/// The files [`backups_compared`] backs up, below `root` on the controller.
fn backup_files(root: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
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
}

/// Backs up the same paths below `host_root` (the host's name for `root`) with the program,
/// then on `tr`'s file plane, and compares what each left.
async fn backups_compared(tr: &mut AnyTransport, root: &std::path::Path, host_root: &str) {
    use rdeploy::backup::{self, Store, Target, TargetKind};
    use std::os::unix::fs::PermissionsExt;
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
        state_dir: format!("{host_root}/state"),
        run_id: run.clone(),
        keep_runs: 1,
        stamp: Some(r#"{"label":"v1","user":"ops"}"#.into()),
        switch: false,
    };
    let path = |k: TargetKind, p: &str| Target {
        path: format!("{host_root}/{p}"),
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
        &format!("{host_root}/f"),
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
    assert_eq!(
        on_plane[0].run,
        Some(serde_json::json!({"label": "v1", "user": "ops"})),
        "a step's first entry keeps the run's stamp, for status --from-hosts"
    );
    assert_eq!(on_plane[1].run, None);
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
        backup::restore(tr, &format!("{host_root}/state"), &run, &e, None)
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
    give_to_login_user(&root);
    let store = Store {
        state_dir: "/srv/bk/state".into(),
        run_id: "20261206T120000Z-big".into(),
        keep_runs: 5,
        stamp: None,
        switch: false,
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

/// A change to make under a folder (`a/` or `b/`).
type Change = Box<dyn Fn(&str) -> rdeploy::transport::cmd::Cmd>;

/// File changes that the SFTP plane makes instead of programs (`mkdir -p`, `chmod`,
/// `chown -h`, the atomic symlink swap, and those joined by `&&`) leave the host as the
/// programs do, fail where they fail, and start no program. Each change is made twice on the
/// same connection: on the plane in `a/`, by the programs in `b/` (a command that is more than
/// file operations is the shell's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_changes_on_the_sftp_plane_are_the_programs() {
    use rdeploy::transport::cmd;
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let root = h.path("/srv/ops");
    twins(&root);
    give_to_login_user(&root);
    let mut tr = connect(&fleet, h).await;
    changes_compared(&mut tr, &root, "/srv/ops", support::fleet::USER).await;
    // As root through sudo (its own session): owners change, a link's own owner too.
    let root_changes: Vec<(&str, Change)> = vec![
        (
            "chown a file to root",
            Box::new(|d| cmd::chown(&format!("{d}/f"), Some("root"), Some("root"))),
        ),
        (
            "chown a link itself",
            Box::new(|d| cmd::chown(&format!("{d}/ln"), Some("root"), None)),
        ),
        (
            "a root folder",
            Box::new(|d| cmd::mkdir_p(&format!("{d}/rootdir/x"))),
        ),
    ];
    let sudo = cmd::Become::sudo("root");
    for (what, change) in &root_changes {
        let before = tr.commands_run();
        let a = tr
            .exec(&change("/srv/ops/a").with_become(sudo.clone()))
            .await
            .unwrap();
        assert_eq!(tr.commands_run(), before, "{what}: no program");
        let b = cmd::Cmd::raw(":")
            .and(change("/srv/ops/b"))
            .with_become(sudo.clone());
        let b = tr.exec(&b).await.unwrap();
        assert_eq!(
            (a.status, b.status),
            (0, 0),
            "{what}\nplane: {a:?}\nshell: {b:?}"
        );
        assert_eq!(tree(&root.join("a")), tree(&root.join("b")), "{what}");
    }
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::symlink_metadata(root.join("a/ln")).unwrap().uid(),
        0
    );
    // Back as the login user: root's folder cannot be removed, on either plane.
    let before = tr.commands_run();
    let a = tr.exec(&cmd::rm_rf("/srv/ops/a/rootdir")).await.unwrap();
    assert_eq!(tr.commands_run(), before, "no program");
    let b = tr
        .exec(&cmd::Cmd::raw(":").and(cmd::rm_rf("/srv/ops/b/rootdir")))
        .await
        .unwrap();
    assert_eq!((a.status, b.status), (1, 1), "plane: {a:?}\nshell: {b:?}");
    assert_eq!(tree(&root.join("a")), tree(&root.join("b")));
    tr.close().await;
}

/// The same on the local connection: the changes are made with `std::fs`, no program.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_changes_with_std_fs_are_the_programs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ops");
    twins(&root);
    let mut tr = AnyTransport::Local(LocalTransport::new("localhost").with_recording());
    changes_compared(&mut tr, &root, &root.display().to_string(), "daemon").await;
}

/// The same files in `root/a` and `root/b`.
fn twins(root: &std::path::Path) {
    for side in ["a", "b"] {
        let d = root.join(side);
        std::fs::create_dir_all(d.join("dir/sub")).unwrap();
        std::fs::write(d.join("f"), "x").unwrap();
        std::fs::write(d.join("file-in-way"), "x").unwrap();
        std::os::unix::fs::symlink("f", d.join("ln")).unwrap();
        std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
        std::fs::create_dir_all(d.join("tree/x/y")).unwrap();
        std::fs::write(d.join("tree/x/y/z"), "z").unwrap();
        std::fs::write(d.join("tree/top"), "t").unwrap();
        std::os::unix::fs::symlink("tree", d.join("treelink")).unwrap();
    }
}

/// The changes compared, `user` the owner some of them give.
fn changes(user: &'static str) -> Vec<(&'static str, Change)> {
    use rdeploy::transport::cmd;
    vec![
        (
            "mkdir -p below a folder",
            Box::new(|d| cmd::mkdir_p(&format!("{d}/dir/new/deeper"))),
        ),
        (
            "mkdir -p of what exists",
            Box::new(|d| cmd::mkdir_p(&format!("{d}/dir/sub"))),
        ),
        (
            "mkdir -p through a file",
            Box::new(|d| cmd::mkdir_p(&format!("{d}/file-in-way/x"))),
        ),
        (
            "mkdir -p of several",
            Box::new(|d| cmd::mkdir_p_all([format!("{d}/m1"), format!("{d}/m2/x")])),
        ),
        (
            "chmod a file",
            Box::new(|d| cmd::chmod(&format!("{d}/f"), 0o4750)),
        ),
        (
            "chmod through a link",
            Box::new(|d| cmd::chmod(&format!("{d}/ln"), 0o600)),
        ),
        (
            "chmod a dangling link",
            Box::new(|d| cmd::chmod(&format!("{d}/dangling"), 0o600)),
        ),
        (
            "chmod what is absent",
            Box::new(|d| cmd::chmod(&format!("{d}/absent"), 0o600)),
        ),
        (
            "chown a file",
            Box::new(move |d| cmd::chown(&format!("{d}/f"), Some(user), Some(user))),
        ),
        (
            "chown a link itself",
            Box::new(move |d| cmd::chown(&format!("{d}/ln"), None, Some(user))),
        ),
        (
            "chown to root",
            Box::new(|d| cmd::chown(&format!("{d}/f"), Some("root"), None)),
        ),
        (
            "a new link",
            Box::new(|d| cmd::ln_sf_atomic("dir", &format!("{d}/cur"))),
        ),
        (
            "a link swapped",
            Box::new(|d| cmd::ln_sf_atomic("dir/sub", &format!("{d}/cur"))),
        ),
        (
            "a link over a folder",
            Box::new(|d| cmd::ln_sf_atomic("f", &format!("{d}/dir"))),
        ),
        (
            "a link in a missing folder",
            Box::new(|d| cmd::ln_sf_atomic("f", &format!("{d}/none/l"))),
        ),
        (
            "joined by &&",
            Box::new(|d| {
                cmd::mkdir_p(&format!("{d}/j/k"))
                    .and(cmd::chmod(&format!("{d}/j/k"), 0o700))
                    .and(cmd::ln_sf_atomic("j/k", &format!("{d}/jl")))
            }),
        ),
        (
            "a hard link",
            Box::new(|d| cmd::ln_atomic(&format!("{d}/f"), &format!("{d}/hl"))),
        ),
        (
            "a hard link over a file",
            Box::new(|d| cmd::ln_atomic(&format!("{d}/f"), &format!("{d}/file-in-way"))),
        ),
        (
            "a hard link again",
            Box::new(|d| cmd::ln_atomic(&format!("{d}/f"), &format!("{d}/hl"))),
        ),
        (
            "a hard link to what is absent",
            Box::new(|d| cmd::ln_atomic(&format!("{d}/absent"), &format!("{d}/hl2"))),
        ),
        (
            "a hard link over a folder",
            Box::new(|d| cmd::ln_atomic(&format!("{d}/f"), &format!("{d}/tree"))),
        ),
        (
            "rm -rf a file",
            Box::new(|d| cmd::rm_rf(&format!("{d}/file-in-way"))),
        ),
        (
            "rm -rf a link to a folder",
            Box::new(|d| cmd::rm_rf(&format!("{d}/treelink"))),
        ),
        (
            "rm -rf a folder tree",
            Box::new(|d| cmd::rm_rf(&format!("{d}/tree"))),
        ),
        (
            "rm -rf what is absent",
            Box::new(|d| cmd::rm_rf(&format!("{d}/absent"))),
        ),
        (
            "rm -rf below a file",
            Box::new(|d| cmd::rm_rf(&format!("{d}/f/x"))),
        ),
        (
            "joined, failing midway",
            Box::new(|d| {
                cmd::chmod(&format!("{d}/absent"), 0o700).and(cmd::mkdir_p(&format!("{d}/never")))
            }),
        ),
    ]
}

/// Makes every change of [`changes`] on `tr`'s plane in `root/a` (`host_root/a` to the host)
/// and by the programs in `root/b`, comparing the trees after each.
async fn changes_compared(
    tr: &mut AnyTransport,
    root: &std::path::Path,
    host_root: &str,
    user: &'static str,
) {
    let changes = changes(user);
    let mut on_plane = 0;
    for (what, change) in &changes {
        let plane_cmd = change(&format!("{host_root}/a"));
        assert!(plane_cmd.file_ops().is_some(), "{what}: typed");
        let before = tr.commands_run();
        let a = tr.exec(&plane_cmd).await.unwrap();
        if tr.commands_run() == before {
            on_plane += 1;
        }
        let b = tr
            .exec(&Cmd::raw(":").and(change(&format!("{host_root}/b"))))
            .await
            .unwrap();
        assert_eq!(
            a.status == 0,
            b.status == 0,
            "{what}\nplane: {a:?}\nshell: {b:?}"
        );
        assert_eq!(tree(&root.join("a")), tree(&root.join("b")), "{what}");
    }
    assert_eq!(
        on_plane,
        changes.len(),
        "every change was made without a program"
    );
}
