//! End to end on the sshd fleet: the native read-only modules `slurp` and `getent`. Each never
//! changes the host (ok, also under `--check`), fails as Ansible does, and returns what
//! ansible-playbook returns on the same host and playbook (the oracle is
//! `$RDEPLOY_ANSIBLE_PLAYBOOK`); getent's facts are known to later tasks.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Sandbox;
use support::fleet::Fleet;
use support::oracle::{ansible_plain, fleet_sandbox_with};

/// `rdeploy run pb.yaml [extra] --output json`: the result events' `result`s of `host`.
fn rdeploy(sb: &Sandbox, extra: &[&str], code: i32, host: &str) -> Vec<Value> {
    let args = [
        &["run", "pb.yaml", "-i", "inv.yaml", "--output", "json"],
        extra,
    ]
    .concat();
    let out = sb
        .rdeploy(&args)
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run rdeploy");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "result" && e["result"]["host"] == host)
        .map(|e| e["result"].clone())
        .collect()
}

/// ansible-playbook on the same sandbox: each `ok:`/`fatal:` result of `host` printed as JSON
/// (what `debug` shows, a failure's result), in order.
fn ansible(sb: &Sandbox, host: &str) -> Vec<Value> {
    let out = ansible_plain(sb, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut found = Vec::new();
    let mut lines = stdout.lines();
    while let Some(l) = lines.next() {
        let Some((_, rest)) = l.split_once(&format!("[{host}]")) else {
            continue;
        };
        let Some((_, first)) = rest.split_once("=> ") else {
            continue;
        };
        let mut text = first.to_string();
        if first == "{" {
            for l in lines.by_ref() {
                text.push_str(l);
                if l == "}" {
                    break;
                }
            }
        }
        found.push(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")));
    }
    found
}

const GETENT: &str = r#"
- hosts: all
  gather_facts: no
  tasks:
    - getent: database=passwd key=root
    - debug: var=getent_passwd.root
    - debug: msg="{{ ansible_facts.getent_passwd.root[4] }}"
    - getent: { database: group, key: no-such-group-here, fail_key: false }
      register: g
    - debug: var=g.ansible_facts
    - getent: { database: passwd, key: no-such-user-here }
"#;

#[test]
fn getent_sets_facts_later_tasks_use_and_fails_as_ansible_does() {
    let fleet = Fleet::start(1);
    let host = fleet.host(0).name().to_string();
    let sb = fleet_sandbox_with(&fleet, GETENT);
    let ours = rdeploy(&sb, &[], 2, &host);
    let statuses: Vec<&str> = ours.iter().filter_map(|r| r["status"].as_str()).collect();
    assert_eq!(
        statuses,
        ["ok", "ok", "ok", "ok", "ok", "failed"],
        "{ours:#?}"
    );
    let root = json!(["x", "0", "0", "root", "/root"]);
    let fields = ours[1]["result"]["getent_passwd.root"]
        .as_array()
        .expect("the root entry");
    assert_eq!(json!(fields[..5]), root, "{ours:#?}");
    assert_eq!(ours[2]["result"]["msg"], "/root");
    assert_eq!(
        ours[4]["result"]["g.ansible_facts"],
        json!({"getent_group": {"no-such-group-here": null}})
    );
    assert_eq!(
        ours[5]["result"]["msg"],
        "One or more supplied key could not be found in the database."
    );

    // The same playbook through ansible-playbook prints the same values.
    let theirs = ansible(&sb, &host);
    assert_eq!(theirs.len(), 4, "{theirs:#?}");
    assert_eq!(theirs[0], ours[1]["result"]);
    assert_eq!(theirs[1]["msg"], ours[2]["result"]["msg"]);
    assert_eq!(theirs[2], ours[4]["result"]);
    assert_eq!(theirs[3]["msg"], ours[5]["result"]["msg"]);

    // --check runs it too (it only reads).
    let ours = rdeploy(&sb, &["--check"], 2, &host);
    assert_eq!(ours[2]["result"]["msg"], "/root", "{ours:#?}");
}

const SLURP: &str = r#"
- hosts: all
  gather_facts: no
  tasks:
    - slurp: { src: /srv/reads/blob }
      register: s
    - debug: var=s
    - debug: msg="{{ s.content | b64decode }}"
    - slurp: { path: /srv/reads/secret }
      register: hidden
      no_log: true
    - slurp: { src: /srv/reads }
      ignore_errors: true
    - slurp: { src: /srv/reads/missing }
"#;

#[test]
fn slurp_returns_base64_changes_nothing_and_fails_as_ansible_does() {
    let fleet = Fleet::start(1);
    let host = fleet.host(0).name().to_string();
    let dir = fleet.host(0).path("/srv/reads");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("blob"), "line one\n{{ not a template }}\n").expect("write");
    std::fs::write(dir.join("secret"), "hunter2-canary\n").expect("write");
    let sb = fleet_sandbox_with(&fleet, SLURP);
    let before = std::fs::read(dir.join("blob")).expect("read");

    for extra in [&[][..], &["--check"][..]] {
        let ours = rdeploy(&sb, extra, 2, &host);
        let statuses: Vec<&str> = ours.iter().filter_map(|r| r["status"].as_str()).collect();
        assert_eq!(
            statuses,
            ["ok", "ok", "ok", "ok", "failed", "failed"],
            "{extra:?} {ours:#?}"
        );
        let s = &ours[1]["result"]["s"];
        assert_eq!(s["content"], "bGluZSBvbmUKe3sgbm90IGEgdGVtcGxhdGUgfX0K");
        assert_eq!(s["encoding"], "base64");
        assert_eq!(s["source"], "/srv/reads/blob");
        assert_eq!(ours[2]["result"]["msg"], "line one\n{{ not a template }}\n");
        let hidden = serde_json::to_string(&ours[3]).expect("json");
        assert!(!hidden.contains("aHVudGVyMi1jYW5hcnkK"), "{hidden}");
        assert_eq!(
            ours[4]["result"]["msg"],
            "Source is a directory and must be a file: /srv/reads"
        );
        assert_eq!(
            ours[5]["result"]["msg"],
            "File not found: /srv/reads/missing"
        );
    }
    assert_eq!(std::fs::read(dir.join("blob")).expect("read"), before);

    let theirs = ansible(&sb, &host);
    assert_eq!(theirs.len(), 4, "{theirs:#?}");
    let ours = rdeploy(&sb, &[], 2, &host);
    for k in ["content", "encoding", "source", "changed", "failed"] {
        assert_eq!(theirs[0]["s"][k], ours[1]["result"]["s"][k], "{k}");
    }
    assert_eq!(theirs[1]["msg"], ours[2]["result"]["msg"]);
    assert_eq!(theirs[2]["msg"], ours[4]["result"]["msg"]);
    assert_eq!(theirs[3]["msg"], ours[5]["result"]["msg"]);
}
