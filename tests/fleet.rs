//! The SSH test fleet (tests/support/fleet.rs) checked with the OpenSSH client, so that
//! rdeploy's SSH tests can trust it: every host answers as the test user under its own host
//! key, with files of its own; a private host behind the bastion is reachable only through
//! it; killed and frozen hosts stop answering; the options (extra host key types, password
//! logins, an encrypted client key, sudo, several hosts per sshd) work; and dropping the
//! fleet leaves none of its processes running.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::fleet::{Fleet, KeyType, PASSPHRASE, PASSWORD, USER, enable_sudo};
use support::{stderr, stdout};

/// Runs `cmd`, asserts it succeeded, returns its stdout.
fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run the OpenSSH client");
    assert!(out.status.success(), "{cmd:?} failed:\n{}", stderr(&out));
    stdout(&out)
}

/// Runs `cmd`, asserts it failed, returns the output.
fn fails(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run the OpenSSH client");
    assert!(
        !out.status.success(),
        "{cmd:?} succeeded:\n{}",
        stdout(&out)
    );
    out
}

/// `ssh -F CONFIG ARGS` fails within 5 s, saying `why`.
fn fails_fast(fleet: &Fleet, args: &[&str], why: &str) {
    let started = Instant::now();
    let out = fails(fleet.ssh_client().args(args));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(stderr(&out).contains(why), "{}", stderr(&out));
}

#[test]
fn each_host_answers_as_the_test_user_with_its_own_key_and_files() {
    let fleet = Fleet::start(2);
    let (h0, h1) = (fleet.host(0), fleet.host(1));

    // The pieces a client needs, given one by one, as rdeploy will use them.
    let mut raw = Command::new("ssh");
    raw.args(["-F", "/dev/null", "-i"])
        .arg(fleet.client_key())
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            fleet.known_hosts().display()
        ))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["-p", &h0.port().to_string()])
        .arg(format!("{USER}@{}", h0.addr()))
        .arg("id -un; echo $HOME");
    let home = format!("/home/{USER}");
    assert_eq!(ok(&mut raw), format!("{USER}\n{home}\n"));
    assert_eq!(ok(&mut fleet.ssh(h1, "id -un")), format!("{USER}\n"));

    assert_ne!(h0.host_keys(), h1.host_keys(), "each host has its own key");
    assert_eq!(h0.host_keys().len(), 1);
    assert_eq!(h0.host_keys()[0].kind, KeyType::Ed25519);

    // Each host has its own /srv, /etc/rdeploy-test, /var/lib/rdeploy and home.
    let write = "echo zero > /srv/x && echo conf > /etc/rdeploy-test/c && \
                 echo state > /var/lib/rdeploy/s && echo home > ~/h";
    ok(&mut fleet.ssh(h0, write));
    assert_eq!(fs::read_to_string(h0.path("/srv/x")).unwrap(), "zero\n");
    assert_eq!(
        fs::read_to_string(h0.path("/etc/rdeploy-test/c")).unwrap(),
        "conf\n"
    );
    assert_eq!(
        fs::read_to_string(h0.path("/var/lib/rdeploy/s")).unwrap(),
        "state\n"
    );
    assert_eq!(
        fs::read_to_string(h0.path(&format!("{home}/h"))).unwrap(),
        "home\n"
    );
    let listing = ok(&mut fleet.ssh(h1, "ls -A /srv /etc/rdeploy-test /var/lib/rdeploy ~"));
    assert_eq!(
        listing
            .lines()
            .filter(|l| !l.is_empty() && !l.ends_with(':'))
            .count(),
        0,
        "{listing}"
    );
    assert!(
        !Path::new("/srv/x").exists(),
        "the machine's own /srv is untouched"
    );

    // A test can prepare a host's files directly, too.
    fs::write(h1.path("/srv/y"), "one\n").unwrap();
    assert_eq!(ok(&mut fleet.ssh(h1, "cat /srv/y")), "one\n");

    // The host's sshd is PID 1 of the host; a session runs as the user, in the host.
    let procs = h0.processes();
    assert_eq!(procs[0].pid, h0.sshd_pid());
    assert_eq!(procs[0].ns_pid, 1);
    let on_host = ok(&mut fleet.ssh(h0, "ps -e -o pid=,comm="));
    assert!(on_host.lines().any(|l| l.trim() == "1 sshd"), "{on_host}");
}

#[test]
fn bastion_alone_reaches_the_private_hosts() {
    let fleet = Fleet::builder().hosts(2).bastion().start();
    let bastion = fleet.bastion().expect("a bastion");
    let h0 = fleet.host(0);
    assert_eq!(bastion.addr().to_string(), "127.0.0.1");
    assert_eq!(h0.addr().to_string(), "127.1.0.1");

    assert_eq!(ok(&mut fleet.ssh(bastion, "id -un")), format!("{USER}\n"));

    // Directly, the controller does not reach the private host: refused at once.
    fails_fast(
        &fleet,
        &["-o", "ProxyJump=none", "host0", "true"],
        "Connection refused",
    );

    // Through the bastion (ssh_config says ProxyJump bastion) it does, and so does -J.
    assert_eq!(ok(&mut fleet.ssh(h0, "id -un")), format!("{USER}\n"));
    let jump = format!("{USER}@{}:{}", bastion.addr(), bastion.port());
    let mut j = fleet.ssh_client();
    j.args(["-J", &jump, "-p", &h0.port().to_string()])
        .arg(format!("{USER}@{}", h0.addr()))
        .arg("echo hi > /srv/x");
    ok(&mut j);
    assert_eq!(fs::read_to_string(h0.path("/srv/x")).unwrap(), "hi\n");
    assert!(!fleet.host(1).path("/srv/x").exists());
    assert!(!bastion.path("/srv/x").exists());

    let inventory: Value = serde_saphyr::from_str(&fleet.inventory_yaml(Value::Null)).unwrap();
    assert_eq!(
        inventory["all"]["hosts"]["host1"]["ansible_ssh_common_args"],
        json!(format!("-o ProxyJump={jump}"))
    );
}

#[test]
fn killed_or_frozen_host_stops_answering_and_drop_stops_everything() {
    let fleet = Fleet::start(2);
    let (h0, h1) = (fleet.host(0), fleet.host(1));

    // A session that leaves a process behind, on each host (it may take a moment to
    // exec once the session has ended).
    for h in [h0, h1] {
        ok(&mut fleet.ssh(h, "sleep 300 </dev/null >/dev/null 2>&1 &"));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !h.user_processes().iter().any(|p| p.cmdline == "sleep 300") {
            assert!(Instant::now() < deadline, "{:?}", h.user_processes());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    h1.freeze();
    fails_fast(
        &fleet,
        &["-o", "ConnectTimeout=1", "host1", "true"],
        "timed out",
    );
    h1.thaw();
    assert_eq!(ok(&mut fleet.ssh(h1, "echo back")), "back\n");

    h0.kill();
    assert!(
        h0.processes().is_empty(),
        "killing the sshd ends the whole host"
    );
    fails_fast(&fleet, &["host0", "true"], "Connection refused");
    assert_eq!(ok(&mut fleet.ssh(h1, "echo alive")), "alive\n");

    let started = fleet.processes();
    assert!(
        started.iter().any(|p| p.cmdline == "sleep 300"),
        "{started:?}"
    );
    assert!(
        started.iter().any(|p| p.cmdline.starts_with("unshare ")),
        "{started:?}"
    );
    let dir = fleet.dir().to_path_buf();
    h1.freeze();
    drop(fleet);
    let left: Vec<_> = started.iter().filter(|p| p.is_running()).collect();
    assert!(left.is_empty(), "still running after drop: {left:?}");
    assert!(!dir.exists(), "the fleet's directory is removed");
}

/// An askpass program that answers every prompt with `answer`.
fn askpass(dir: &Path, answer: &str) -> PathBuf {
    let path = dir.join("askpass");
    fs::write(&path, format!("#!/bin/sh\necho '{answer}'\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn options_extra_key_type_password_encrypted_key_sudo_and_shared_sshd() {
    let fleet = Fleet::builder()
        .hosts(3)
        .hosts_per_sshd(2)
        .host_key(KeyType::Ecdsa)
        .password_auth()
        .encrypted_client_key()
        .start();
    let (h0, h1, h2) = (fleet.host(0), fleet.host(1), fleet.host(2));

    // Hosts 0 and 1 share an sshd (and its files); host 2 has its own.
    assert_eq!(h0.port(), h1.port());
    assert_ne!(h0.port(), h2.port());
    assert_eq!(h0.path("/srv"), h1.path("/srv"));

    // Known only under ECDSA: a client that asks for ECDSA gets in.
    let kinds: Vec<KeyType> = h2.host_keys().iter().map(|k| k.kind).collect();
    assert_eq!(kinds, [KeyType::Ed25519, KeyType::Ecdsa]);
    let tmp = tempfile::tempdir().unwrap();
    let ecdsa_only = tmp.path().join("known_hosts");
    let line = format!(
        "[{}]:{} {}\n",
        h2.addr(),
        h2.port(),
        h2.host_keys()[1].public
    );
    fs::write(&ecdsa_only, line).unwrap();
    let mut ssh = fleet.ssh_client();
    ssh.arg("-o")
        .arg(format!("UserKnownHostsFile={}", ecdsa_only.display()))
        .args([
            "-o",
            "HostKeyAlgorithms=ecdsa-sha2-nistp256",
            h2.name(),
            "true",
        ]);
    ok(&mut ssh);

    // A password login, then the encrypted key alone (no config, so not the plain key),
    // each with the right answer from an askpass program and with a wrong one.
    let login = |answer: &str, method: &str| {
        let mut c = Command::new("ssh");
        c.args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=no",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            fleet.known_hosts().display()
        ))
        .arg("-o")
        .arg(format!("PreferredAuthentications={method}"))
        .arg("-i")
        .arg(fleet.encrypted_client_key().expect("an encrypted key"))
        .args(["-p", &h2.port().to_string()])
        .arg(format!("{USER}@{}", h2.addr()))
        .arg("id -un")
        .env("SSH_ASKPASS", askpass(tmp.path(), answer))
        .env("SSH_ASKPASS_REQUIRE", "force");
        c
    };
    assert_eq!(ok(&mut login(PASSWORD, "password")), format!("{USER}\n"));
    fails(&mut login("wrong", "password"));
    assert_eq!(ok(&mut login(PASSPHRASE, "publickey")), format!("{USER}\n"));
    fails(&mut login("wrong", "publickey"));

    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    assert_eq!(ok(&mut fleet.ssh(h0, "sudo -n id -u")), "0\n");
}

#[test]
fn own_etc_hosts_change_their_accounts_and_hostname_never_the_machines() {
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let fleet = Fleet::builder().hosts(2).own_etc().start();
    let (h0, h1) = (fleet.host(0), fleet.host(1));
    let machine_passwd = fs::read_to_string("/etc/passwd").unwrap();
    ok(&mut fleet.ssh(
        h0,
        "sudo -n useradd --create-home fleet-own-etc && sudo -n hostname fleet-h0 && \
         echo '# own' | sudo -n tee -a /etc/fstab >/dev/null",
    ));
    // Host 0 sees its change; host 1 and the machine do not.
    assert!(ok(&mut fleet.ssh(h0, "getent passwd fleet-own-etc")).starts_with("fleet-own-etc:"));
    assert_eq!(ok(&mut fleet.ssh(h0, "hostname")), "fleet-h0\n");
    fails(&mut fleet.ssh(h1, "getent passwd fleet-own-etc"));
    assert_ne!(ok(&mut fleet.ssh(h1, "hostname")), "fleet-h0\n");
    assert_eq!(fs::read_to_string("/etc/passwd").unwrap(), machine_passwd);
    assert!(!Path::new("/home/fleet-own-etc").exists());
    // The test reads the host's copies through Host::path.
    assert!(
        fs::read_to_string(h0.path("/etc/passwd"))
            .unwrap()
            .contains("fleet-own-etc:")
    );
    assert!(h0.path("/home/fleet-own-etc").is_dir());
    assert!(
        fs::read_to_string(h0.path("/etc/fstab"))
            .unwrap()
            .ends_with("# own\n")
    );
    // The per-host folders are still bound inside the copies.
    fs::write(h0.path("/srv/probe"), "x").unwrap();
    assert_eq!(ok(&mut fleet.ssh(h0, "cat /srv/probe")), "x");
}
