//! `package_facts` and `service_facts` end to end on a fleet host, against ansible-playbook
//! (the oracle, `RDEPLOY_ANSIBLE_PLAYBOOK`) on the same host: the same package names, and for
//! each package the same version, architecture, origin and source (and every field for a few
//! packages); the same services; both `ok`, also under `--check`, and the host unchanged.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value, json};
use support::Sandbox;
use support::fleet::Fleet;

fn ansible_playbook() -> PathBuf {
    std::env::var_os("RDEPLOY_ANSIBLE_PLAYBOOK")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::repo().join("target/ansible-venv/bin/ansible-playbook"))
}

const PB: &str = r#"- hosts: all
  gather_facts: no
  tasks:
    - package_facts:
        manager: auto
    - ansible.builtin.service_facts:
    - copy:
        content: "{{ {'p': ansible_facts.packages, 's': ansible_facts.services} | to_json }}"
        dest: /srv/facts.json
"#;

fn statuses(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "result")
        .map(|e| match e["result"]["status"].as_str().unwrap_or("") {
            "failed" | "unreachable" => format!("failed: {}", e["result"]["msg"]),
            s => s.to_string(),
        })
        .collect()
}

fn facts(fleet: &Fleet) -> Value {
    let text = std::fs::read_to_string(fleet.host(0).path("/srv/facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn package_and_service_facts_are_ansibles() {
    let fleet = Fleet::start(1);
    let sb = Sandbox::new();
    let mut v = fleet.host_vars(fleet.host(0));
    v.insert(
        "ansible_ssh_extra_args".into(),
        json!(format!(
            "-o UserKnownHostsFile={}",
            fleet.known_hosts().display()
        )),
    );
    // The hosts share this machine's Python, with python3-apt for Ansible's apt.
    v.insert(
        "ansible_python_interpreter".into(),
        json!("/usr/bin/python3"),
    );
    let mut hosts = Map::new();
    hosts.insert(fleet.host(0).name().to_string(), Value::Object(v));
    sb.write(
        "inv.yaml",
        serde_saphyr::to_string(&json!({"all": {"hosts": hosts}})).unwrap(),
    );
    sb.write("pb.yaml", PB);

    let run = |extra: &[&str]| {
        let mut args = vec!["run", "pb.yaml", "-i", "inv.yaml", "--output", "json"];
        args.extend_from_slice(extra);
        let out = sb
            .rdeploy(&args)
            .env_remove("SSH_AUTH_SOCK")
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        statuses(&stdout)
    };
    // --check: read-only, so both run; nothing is written.
    assert_eq!(run(&["--check"]), ["ok", "ok", "changed"]);
    assert!(!fleet.host(0).path("/srv/facts.json").exists());
    assert_eq!(run(&[]), ["ok", "ok", "changed"]);
    let ours = facts(&fleet);

    let home = sb.path().join("ansible-home");
    std::fs::create_dir_all(&home).unwrap();
    let out = std::process::Command::new(ansible_playbook())
        .current_dir(sb.path())
        .args(["pb.yaml", "-i", "inv.yaml"])
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("ANSIBLE_CONFIG")
        .env("HOME", &home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env(
            "ANSIBLE_CALLBACK_PLUGINS",
            support::repo().join("tests/compat/callback"),
        )
        .env("ANSIBLE_STDOUT_CALLBACK", "compat_results")
        .env("ANSIBLE_PIPELINING", "true")
        .env(
            "ANSIBLE_SSH_ARGS",
            "-o ControlMaster=no -o ControlPersist=no",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = statuses(&stdout);
    assert_eq!(&st[..2], ["ok", "ok"], "ansible-playbook's statuses");
    let theirs = facts(&fleet);

    // Packages: the same names; per package the same fields but apt's `category` (dpkg's
    // section, where python-apt reports the archive's; see the module's doc).
    let (p, q) = (
        ours["p"].as_object().unwrap(),
        theirs["p"].as_object().unwrap(),
    );
    assert!(p.len() > 50, "{} packages", p.len());
    let names =
        |m: &Map<String, Value>| m.keys().cloned().collect::<std::collections::BTreeSet<_>>();
    assert_eq!(names(p), names(q));
    let without_category = |v: &Value| {
        let mut v = v.clone();
        for e in v.as_array_mut().into_iter().flatten() {
            if let Some(o) = e.as_object_mut() {
                o.remove("category");
            }
        }
        v
    };
    for (name, mine) in p {
        assert_eq!(without_category(mine), without_category(&q[name]), "{name}");
    }
    for name in [
        "bash",
        "dpkg",
        "libc6",
        "openssh-server",
        "sudo",
        "coreutils",
    ] {
        assert_eq!(p[name], q[name], "{name}");
        assert_eq!(p[name][0]["source"], "apt");
    }
    // Services: identical.
    assert_eq!(ours["s"], theirs["s"]);
    assert_eq!(ours["s"]["ssh"]["source"], "sysv");
}
