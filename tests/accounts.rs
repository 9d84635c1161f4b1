//! The account modules end to end on fleet hosts with their own /etc and /home
//! (`Fleet::builder().own_etc()`), with sudo: `group` and `user` create, stay ok on a second
//! run, change nothing under `--check`, modify, and `rdeploy rollback RUN` puts /etc/passwd and
//! co back; `state: absent` removes. The same playbook run by ansible-playbook (the oracle,
//! `RDEPLOY_ANSIBLE_PLAYBOOK`) on an identical host gives the same changed flags and result
//! values.

mod support;

use std::path::PathBuf;

use serde_json::{Map, Value, json};
use support::Sandbox;
use support::fleet::{Fleet, Host, enable_sudo};
use support::oracle::{
    ansible_playbook, ansible_statuses, rollback_id, run_statuses, trusted_host_vars,
};

const HASH: &str = "$6$rdeploytest$w4BoYV8X7pzcvogGVXkG12D9fKG5iofdw0ai9NfysGtvWRgtsNd87flDQBAjF73tWqc5Zo3ZzQ5bPIb5s9Wqw.";

/// Creates a group and a user in it, and records both results in /srv/results.json.
fn create_pb() -> String {
    format!(
        r#"- hosts: all
  gather_facts: no
  become: yes
  tasks:
    - group:
        name: rdt-app
        gid: 4700
      register: g
    - user:
        name: rdt-alice
        uid: 4701
        group: rdt-app
        groups: [adm]
        shell: /bin/sh
        comment: Alice Test
        password: '{HASH}'
      register: u
    - copy:
        content: "{{{{ {{'g': g, 'u': u}} | to_json }}}}"
        dest: /srv/results.json
"#
    )
}

const MODIFY_PB: &str = r#"- hosts: all
  gather_facts: no
  become: yes
  tasks:
    - group:
        name: rdt-app
        gid: 4710
      register: g
    - user:
        name: rdt-alice
        uid: 4711
        shell: /bin/bash
        groups: [rdt-app, users]
        append: yes
      register: u
"#;

const ABSENT_PB: &str = r#"- hosts: all
  gather_facts: no
  become: yes
  tasks:
    - user:
        name: rdt-alice
        state: absent
        remove: yes
    - group:
        name: rdt-app
        state: absent
"#;

/// A sandbox whose `inv.yaml` lists `host` only.
fn sandbox(fleet: &Fleet, host: &Host) -> Sandbox {
    let sb = Sandbox::new();
    let mut v = trusted_host_vars(fleet, host);
    let py = ansible_playbook().with_file_name("python");
    v.insert(
        "ansible_python_interpreter".into(),
        json!(py.display().to_string()),
    );
    // Backups under a folder only root may write (see `root_state_dir`), so that the state
    // folder is prepared with become and rollback reads it with become. (Under the default
    // /var/lib/rdeploy, which the fleet's login user may write, the folder is prepared as that
    // user while the become steps' manifest is written by root, and `rdeploy rollback` cannot
    // read it.)
    v.insert("rdeploy_state_dir".into(), json!("/etc/rdeploy-state"));
    let mut hosts = Map::new();
    hosts.insert(host.name().to_string(), Value::Object(v));
    sb.write(
        "inv.yaml",
        serde_saphyr::to_string(&json!({"all": {"hosts": hosts}})).unwrap(),
    );
    sb
}

/// Makes `h`'s /etc/rdeploy-state root's, with the host lock file the login user's: the lock
/// is taken as the login user before any step (a root-owned folder without it fails the run:
/// `exec 9>>` on a folder it cannot write exits the lock's shell with 2, not 71).
fn root_state_dir(fleet: &Fleet, h: &Host) {
    let out = fleet
        .ssh(
            h,
            "sudo -n mkdir -p /etc/rdeploy-state && sudo -n touch /etc/rdeploy-state/host.lock \
             && sudo -n chown rdeploy-test /etc/rdeploy-state/host.lock",
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn read(h: &Host, p: &str) -> String {
    std::fs::read_to_string(h.path(p)).unwrap_or_default()
}

/// The account lines of `h` that mention the test's names.
fn accounts(h: &Host) -> String {
    ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"]
        .iter()
        .map(|p| {
            read(h, p)
                .lines()
                .filter(|l| l.contains("rdt-") || l.starts_with("adm:") || l.starts_with("users:"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n--\n")
}

/// A registered result without the keys that are the executor's, not the module's.
fn module_keys(r: &Value) -> Map<String, Value> {
    r.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "invocation"
                    | "failed"
                    | "warnings"
                    | "deprecations"
                    | "diff"
                    | "stdout"
                    | "stderr"
            ) && !k.starts_with('_')
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn user_and_group_create_modify_roll_back_and_remove_like_ansible() {
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let fleet = Fleet::builder().hosts(2).own_etc().start();
    let (h, oracle) = (fleet.host(0), fleet.host(1));
    root_state_dir(&fleet, h);
    let sb = sandbox(&fleet, h);
    let osb = sandbox(&fleet, oracle);
    let before = accounts(h);
    let passwd_before = read(h, "/etc/passwd");

    // --check on a fresh host: the user in a group an earlier task creates is reported as
    // created (Ansible does not look for the group of an account it would create in check
    // mode), and nothing changes.
    let (_, st) = run_statuses(&sb, &create_pb(), &["--check"]);
    assert_eq!(st, ["changed", "changed", "changed"]);
    assert_eq!(ansible_statuses(&osb, &create_pb(), &["--check"]), st);
    assert_eq!(accounts(h), before);
    // A real run of such a user whose group nobody creates fails before useradd runs, with
    // Ansible's words.
    let missing = "- hosts: all\n  gather_facts: no\n  become: yes\n  tasks:\n    - user: {name: rdt-bob, group: rdt-nope}\n      ignore_errors: true\n";
    let (_, st) = run_statuses(&sb, missing, &[]);
    assert_eq!(st, ["failed: \"Group rdt-nope does not exist\""]);
    assert_eq!(ansible_statuses(&osb, missing, &[]), st);
    assert!(!read(h, "/etc/passwd").contains("rdt-bob"));

    // Create: changed, visible in the host's own files.
    let (create_id, st) = run_statuses(&sb, &create_pb(), &[]);
    assert_eq!(st, ["changed", "changed", "changed"]);
    let passwd = read(h, "/etc/passwd");
    assert!(
        passwd.contains("rdt-alice:x:4701:4700:Alice Test:/home/rdt-alice:/bin/sh\n"),
        "{passwd}"
    );
    assert!(read(h, "/etc/group").contains("rdt-app:x:4700:\n"));
    assert!(
        read(h, "/etc/group")
            .lines()
            .any(|l| l.starts_with("adm:") && l.contains("rdt-alice"))
    );
    assert!(read(h, "/etc/shadow").contains(&format!("rdt-alice:{HASH}:")));
    assert!(h.path("/home/rdt-alice").is_dir());
    let ours: Value = serde_json::from_str(&read(h, "/srv/results.json")).unwrap();

    // ansible-playbook on an identical host: the same flags and result values.
    let ost = ansible_statuses(&osb, &create_pb(), &[]);
    assert_eq!(ost, st, "ansible-playbook's statuses");
    let theirs: Value = serde_json::from_str(&read(oracle, "/srv/results.json")).unwrap();
    for k in ["g", "u"] {
        assert_eq!(
            module_keys(&ours[k]),
            module_keys(&theirs[k]),
            "{k}: rdeploy's result vs ansible's"
        );
    }
    assert_eq!(ours["u"]["password"], "NOT_LOGGING_PASSWORD");
    assert!(!read(h, "/srv/results.json").contains(HASH));

    // Second run: ok, for both (the results file changes: a modification's keys differ).
    let (_, st) = run_statuses(&sb, &create_pb(), &[]);
    assert_eq!(st, ["ok", "ok", "changed"]);
    assert_eq!(ansible_statuses(&osb, &create_pb(), &[]), st);

    // --check: changed reported, nothing changed.
    let after_create = accounts(h);
    let (_, st) = run_statuses(&sb, MODIFY_PB, &["--check"]);
    assert_eq!(st, ["changed", "changed"]);
    assert_eq!(accounts(h), after_create);

    // Modify: gid, uid, shell, appended groups.
    let (modify_id, st) = run_statuses(&sb, MODIFY_PB, &[]);
    assert_eq!(st, ["changed", "changed"]);
    assert_eq!(ansible_statuses(&osb, MODIFY_PB, &[]), st);
    let passwd = read(h, "/etc/passwd");
    assert!(
        passwd.contains("rdt-alice:x:4711:4710:Alice Test:/home/rdt-alice:/bin/bash\n"),
        "{passwd}"
    );
    let group = read(h, "/etc/group");
    for g in ["adm:", "users:", "rdt-app:"] {
        assert!(
            group
                .lines()
                .any(|l| l.starts_with(g) && l.contains("rdt-alice")),
            "{g} {group}"
        );
    }
    assert_eq!(
        accounts(h).replace("4711", "x"),
        accounts(oracle).replace("4711", "x")
    );
    let (_, st) = run_statuses(&sb, MODIFY_PB, &[]);
    assert_eq!(st, ["ok", "ok"]);

    // Rollback of the modification, then of the creation: as before each.
    rollback_id(&sb, &modify_id, &[]);
    assert_eq!(accounts(h), after_create);
    // --force: the second run rewrote /srv/results.json (not an account file).
    rollback_id(&sb, &create_id, &["--force"]);
    assert_eq!(accounts(h), before);
    assert_eq!(read(h, "/etc/passwd"), passwd_before);
    assert!(
        !h.path("/home/rdt-alice").exists(),
        "the created home is removed"
    );

    // Absent: created again, then removed with its home.
    run_statuses(&sb, &create_pb(), &[]);
    let (_, st) = run_statuses(&sb, ABSENT_PB, &[]);
    assert_eq!(st, ["changed", "changed"]);
    assert!(!read(h, "/etc/passwd").contains("rdt-alice"));
    assert!(!read(h, "/etc/group").contains("rdt-"));
    assert!(!h.path("/home/rdt-alice").exists());
    let (_, st) = run_statuses(&sb, ABSENT_PB, &[]);
    assert_eq!(st, ["ok", "ok"]);
}

#[test]
fn hostname_is_set_in_the_file_and_live_and_rollback_restores_the_file() {
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let fleet = Fleet::builder().hosts(1).own_etc().start();
    let h = fleet.host(0);
    root_state_dir(&fleet, h);
    let sb = sandbox(&fleet, h);
    let live = || {
        let out = fleet.ssh(h, "hostname").output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let file_before = read(h, "/etc/hostname");
    let pb = |name: &str| {
        format!(
            "- hosts: all\n  gather_facts: no\n  become: yes\n  tasks:\n    - hostname:\n        name: {name}\n"
        )
    };
    let (id, st) = run_statuses(&sb, &pb("rdt-web01"), &[]);
    assert_eq!(st, ["changed"]);
    assert_eq!(read(h, "/etc/hostname"), "rdt-web01\n");
    assert_eq!(live(), "rdt-web01");
    let (_, st) = run_statuses(&sb, &pb("rdt-web01"), &[]);
    assert_eq!(st, ["ok"]);
    let (_, st) = run_statuses(&sb, &pb("rdt-web02"), &["--check"]);
    assert_eq!(st, ["changed"]);
    assert_eq!(read(h, "/etc/hostname"), "rdt-web01\n");
    assert_eq!(live(), "rdt-web01");
    rollback_id(&sb, &id, &[]);
    assert_eq!(read(h, "/etc/hostname"), file_before);
    assert_eq!(
        live(),
        "rdt-web01",
        "the running name is not rolled back (documented)"
    );
}

#[test]
fn timezone_links_localtime_and_writes_etc_timezone_and_rollback_restores_both() {
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let fleet = Fleet::builder().hosts(1).own_etc().start();
    let h = fleet.host(0);
    root_state_dir(&fleet, h);
    let sb = sandbox(&fleet, h);
    let link = || std::fs::read_link(h.path("/etc/localtime")).unwrap_or_default();
    let (link_before, file_before) = (link(), read(h, "/etc/timezone"));
    assert_ne!(file_before, "Europe/Paris\n");
    let pb = |name: &str| {
        format!(
            "- hosts: all\n  gather_facts: no\n  become: yes\n  tasks:\n    - timezone:\n        name: {name}\n"
        )
    };
    let (id, st) = run_statuses(&sb, &pb("Europe/Paris"), &[]);
    assert_eq!(st, ["changed"]);
    assert_eq!(link(), PathBuf::from("/usr/share/zoneinfo/Europe/Paris"));
    assert_eq!(read(h, "/etc/timezone"), "Europe/Paris\n");
    let (_, st) = run_statuses(&sb, &pb("Europe/Paris"), &[]);
    assert_eq!(st, ["ok"]);
    let (_, st) = run_statuses(&sb, &pb("Asia/Tokyo"), &["--check"]);
    assert_eq!(st, ["changed"]);
    assert_eq!(read(h, "/etc/timezone"), "Europe/Paris\n");
    let (_, st) = run_statuses(&sb, &pb("Mars/Olympus"), &[]);
    assert!(st[0].contains("is not available"), "{st:?}");
    rollback_id(&sb, &id, &[]);
    assert_eq!(link(), link_before);
    assert_eq!(read(h, "/etc/timezone"), file_before);
}
