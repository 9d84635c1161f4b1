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

    let vars = fleet.host_vars(h);
    let var = |k: &str| vars.get(k).cloned();
    let config = ssh_config::load_config(Some(fleet.ssh_config())).unwrap();
    let settings =
        ssh_config::resolve(h.name(), &var, &ssh_config::SshOptions::default(), &config).unwrap();
    let ssh = SshTransport::connect(&settings, &ssh_config::SshOptions::default())
        .await
        .unwrap();
    let mut tr = AnyTransport::Ssh(ssh);
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
