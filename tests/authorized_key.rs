//! `authorized_key` end to end on fleet hosts: the login user's own keys (no become) are
//! added (the `.ssh` folder 0700 and the file 0600 created), stay `ok` on a second run, are
//! left alone by `--check`, replaced by `exclusive`, removed by `state: absent`, and
//! `rdeploy rollback RUN` puts the file back byte for byte (and removes what the first run
//! created). The same playbooks run by ansible-playbook (the oracle, `RDEPLOY_ANSIBLE_PLAYBOOK`)
//! on a second host give the same statuses, the same file bytes and the same result values.
//! With sudo and hosts with their own /etc and /home, another user's keys are written with
//! become, owned by that user.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use serde_json::{Map, Value, json};
use support::Sandbox;
use support::fleet::{Fleet, Host, enable_sudo};
use support::oracle::{ansible_statuses, rollback_id, run_statuses, trusted_host_vars};

const KEY1: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGr1dQvSx0Y1rU3sS2c5pR6rQ0m8mXvR3q3X0e2YbN1d alice@laptop";
const KEY2: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP4k9w0Xq8lYwY5oJ2m7m0bq5kQ2sR3t4u5v6w7x8y9z";
const KEY3: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7kC3ucQ3dJ8h3vZr0H1xQ bob@desk";

/// A sandbox whose `inv.yaml` lists `host` only; `state_dir` for rdeploy's backups.
fn sandbox(fleet: &Fleet, host: &Host, state_dir: Option<&str>) -> Sandbox {
    let sb = Sandbox::new();
    let mut v = trusted_host_vars(fleet, host);
    // The hosts share this machine's Python (the venv's is root's only).
    v.insert(
        "ansible_python_interpreter".into(),
        json!("/usr/bin/python3"),
    );
    if let Some(d) = state_dir {
        v.insert("rdeploy_state_dir".into(), json!(d));
    }
    let mut hosts = Map::new();
    hosts.insert(host.name().to_string(), Value::Object(v));
    sb.write(
        "inv.yaml",
        serde_saphyr::to_string(&json!({"all": {"hosts": hosts}})).unwrap(),
    );
    sb
}

/// A registered result without the keys that are the executor's, not the module's.
fn module_keys(r: &Value) -> Map<String, Value> {
    r.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "invocation" | "failed" | "warnings" | "deprecations" | "diff"
            ) && !k.starts_with('_')
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// What the host says `cmd` printed (trimmed).
fn on_host(fleet: &Fleet, h: &Host, cmd: &str) -> String {
    let out = fleet.ssh(h, cmd).output().unwrap();
    assert!(out.status.success(), "{cmd}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn read(p: PathBuf) -> Option<Vec<u8>> {
    std::fs::read(p).ok()
}

fn mode(p: PathBuf) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A play with one task (`module`, `args` as YAML lines) whose result is kept in
/// /srv/result.json.
fn play(become_: bool, module: &str, args: &str) -> String {
    let args: String = args.lines().map(|l| format!("        {l}\n")).collect();
    format!(
        "- hosts: all\n  gather_facts: no\n  become: {become_}\n  tasks:\n    - {module}:\n{args}      register: r\n    - copy:\n        content: \"{{{{ r | to_json }}}}\"\n        dest: /srv/result.json\n"
    )
}

fn result(h: &Host) -> Map<String, Value> {
    let text = std::fs::read_to_string(h.path("/srv/result.json")).unwrap();
    module_keys(&serde_json::from_str(&text).unwrap())
}

#[test]
fn authorized_key_adds_replaces_removes_and_rolls_back_like_ansible() {
    let fleet = Fleet::start(2);
    let (h, oracle) = (fleet.host(0), fleet.host(1));
    let home = on_host(&fleet, h, "printf %s \"$HOME\"");
    let ssh_dir = format!("{home}/.ssh");
    let file = format!("{ssh_dir}/authorized_keys");
    let sb = sandbox(&fleet, h, None);
    let osb = sandbox(&fleet, oracle, None);
    assert!(!h.path(&ssh_dir).exists(), "the fleet's home has no .ssh");

    // Add, by the collection's full name: .ssh and the file are created.
    let add = play(
        false,
        "ansible.posix.authorized_key",
        &format!("user: rdeploy-test\nkey: \"{KEY1}\""),
    );
    // --check predicts the change and creates nothing.
    let (_, st) = run_statuses(&sb, &add, &["--check"]);
    assert_eq!(st[0], "changed");
    assert!(!h.path(&ssh_dir).exists(), "--check created .ssh");
    let (add_id, st) = run_statuses(&sb, &add, &[]);
    assert_eq!(st, ["changed", "changed"]);
    assert_eq!(
        ansible_statuses(&osb, &add, &[]),
        st,
        "ansible-playbook's statuses"
    );
    let after_add = read(h.path(&file)).unwrap();
    assert_eq!(after_add, format!("{KEY1}\n").as_bytes());
    assert_eq!(read(oracle.path(&file)).unwrap(), after_add);
    assert_eq!(mode(h.path(&file)), 0o600);
    assert_eq!(mode(h.path(&ssh_dir)), 0o700);
    assert_eq!(mode(oracle.path(&ssh_dir)), 0o700);
    let uid = std::fs::metadata(h.path(&home)).unwrap().uid();
    assert_eq!(std::fs::metadata(h.path(&file)).unwrap().uid(), uid);
    let (ours, theirs) = (result(h), result(oracle));
    assert_eq!(ours, theirs, "rdeploy's result vs ansible's");
    assert_eq!(ours["keyfile"], json!(file));
    assert_eq!(ours["changed"], json!(true));

    // Second run: ok, for both.
    let (_, st) = run_statuses(&sb, &add, &[]);
    assert_eq!(st[0], "ok");
    assert_eq!(ansible_statuses(&osb, &add, &[])[0], "ok");
    assert_eq!(result(h), result(oracle));

    // Exclusive, two keys without the first (the short name): --check changes nothing.
    let exclusive = play(
        false,
        "authorized_key",
        &format!("user: rdeploy-test\nkey: \"{KEY2}\\n{KEY3}\\n\"\nexclusive: true"),
    );
    let (_, st) = run_statuses(&sb, &exclusive, &["--check"]);
    assert_eq!(st[0], "changed");
    assert_eq!(read(h.path(&file)).unwrap(), after_add);
    let (excl_id, st) = run_statuses(&sb, &exclusive, &[]);
    assert_eq!(st, ["changed", "changed"]);
    assert_eq!(ansible_statuses(&osb, &exclusive, &[]), st);
    let after_excl = read(h.path(&file)).unwrap();
    // A key without a comment is written with a trailing space, as Ansible writes it.
    assert_eq!(after_excl, format!("{KEY2} \n{KEY3}\n").as_bytes());
    assert_eq!(read(oracle.path(&file)).unwrap(), after_excl);
    assert_eq!(result(h), result(oracle));

    // Absent, with options that do not matter for a removal.
    let absent = play(
        false,
        "authorized_key",
        &format!("user: rdeploy-test\nkey: \"{KEY3}\"\nstate: absent\nkey_options: no-pty"),
    );
    let (absent_id, st) = run_statuses(&sb, &absent, &[]);
    assert_eq!(st, ["changed", "changed"]);
    assert_eq!(ansible_statuses(&osb, &absent, &[]), st);
    assert_eq!(
        read(h.path(&file)).unwrap(),
        format!("{KEY2} \n").as_bytes()
    );
    assert_eq!(read(oracle.path(&file)), read(h.path(&file)));
    assert_eq!(result(h), result(oracle));
    let (_, st) = run_statuses(&sb, &absent, &[]);
    assert_eq!(st[0], "ok");

    // Rollback, latest run first: each puts the file back as it was, byte for byte; the
    // first removes the file and the .ssh folder it created.
    // (--force: later runs rewrote /srv/result.json, not the keys.)
    rollback_id(&sb, &absent_id, &["--force"]);
    assert_eq!(read(h.path(&file)).unwrap(), after_excl);
    rollback_id(&sb, &excl_id, &["--force"]);
    assert_eq!(read(h.path(&file)).unwrap(), after_add);
    assert_eq!(mode(h.path(&file)), 0o600);
    rollback_id(&sb, &add_id, &["--force"]);
    assert!(!h.path(&file).exists());
    assert!(!h.path(&ssh_dir).exists(), "the created .ssh is removed");
}

/// Makes `h`'s /etc/rdeploy-state root's, with the host lock file the login user's (see
/// tests/accounts.rs).
fn root_state_dir(fleet: &Fleet, h: &Host) {
    on_host(
        fleet,
        h,
        "sudo -n mkdir -p /etc/rdeploy-state && sudo -n touch /etc/rdeploy-state/host.lock \
         && sudo -n chown rdeploy-test /etc/rdeploy-state/host.lock",
    );
}

#[test]
fn authorized_key_with_become_writes_another_users_file_owned_by_that_user() {
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let fleet = Fleet::builder().hosts(2).own_etc().start();
    let (h, oracle) = (fleet.host(0), fleet.host(1));
    for host in [h, oracle] {
        root_state_dir(&fleet, host);
        on_host(
            &fleet,
            host,
            "sudo -n useradd --create-home --uid 4720 --user-group --shell /bin/sh rdt-keys",
        );
    }
    let sb = sandbox(&fleet, h, Some("/etc/rdeploy-state"));
    let osb = sandbox(&fleet, oracle, Some("/etc/rdeploy-state"));
    let file = "/home/rdt-keys/.ssh/authorized_keys";
    let pb = play(
        true,
        "authorized_key",
        &format!(
            "user: rdt-keys\nkey: \"{KEY1}\"\nkey_options: 'no-port-forwarding,from=\"10.0.1.1\"'"
        ),
    );
    let (id, st) = run_statuses(&sb, &pb, &[]);
    assert_eq!(st, ["changed", "changed"]);
    assert_eq!(ansible_statuses(&osb, &pb, &[]), st);
    let bytes = read(h.path(file)).unwrap();
    assert_eq!(
        bytes,
        format!("no-port-forwarding,from=\"10.0.1.1\" {KEY1}\n").as_bytes()
    );
    assert_eq!(read(oracle.path(file)).unwrap(), bytes);
    for p in [file, "/home/rdt-keys/.ssh"] {
        let m = std::fs::metadata(h.path(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (4720, 4720), "{p}");
    }
    assert_eq!(result(h), result(oracle));
    let (_, st) = run_statuses(&sb, &pb, &[]);
    assert_eq!(st[0], "ok");
    // --force: the second run rewrote /srv/result.json (not the keys).
    rollback_id(&sb, &id, &["--force"]);
    assert!(!h.path("/home/rdt-keys/.ssh").exists());
}
