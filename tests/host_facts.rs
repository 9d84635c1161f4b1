//! `package_facts` and `service_facts` end to end on a fleet host, against ansible-playbook
//! (the oracle, `RDEPLOY_ANSIBLE_PLAYBOOK`) on the same host: the same package names, and for
//! each package the same version, architecture, origin and source (and every field for a few
//! packages); the same services; both `ok`, also under `--check`, and the host unchanged.

mod support;

use serde_json::{Map, Value, json};
use support::Sandbox;
use support::fleet::Fleet;
use support::oracle::{ansible_statuses, run_statuses, trusted_host_vars, write_inventory};

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

fn facts(fleet: &Fleet) -> Value {
    let text = std::fs::read_to_string(fleet.host(0).path("/srv/facts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn package_and_service_facts_are_ansibles() {
    let fleet = Fleet::start(1);
    let sb = Sandbox::new();
    let mut v = trusted_host_vars(&fleet, fleet.host(0));
    // The hosts share this machine's Python, with python3-apt for Ansible's apt.
    v.insert(
        "ansible_python_interpreter".into(),
        json!("/usr/bin/python3"),
    );
    write_inventory(&sb, [(fleet.host(0).name().to_string(), v)]);
    sb.write("pb.yaml", PB);

    let run = |extra: &[&str]| run_statuses(&sb, PB, extra).1;
    // --check: read-only, so both run; nothing is written.
    assert_eq!(run(&["--check"]), ["ok", "ok", "changed"]);
    assert!(!fleet.host(0).path("/srv/facts.json").exists());
    assert_eq!(run(&[]), ["ok", "ok", "changed"]);
    let ours = facts(&fleet);

    let st = ansible_statuses(&sb, PB, &[]);
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
