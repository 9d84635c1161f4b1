//! End to end: Ansible's own modules that rdeploy does not carry run through the bridge
//! (issue 14): the controller's ansible-core packs the module, the host's Python runs it over
//! the same SSH connection, its result is the task's. On the real sshd fleet: a change, the
//! same run again (nothing to do), `--check` and `--diff` from the module's own check mode,
//! `rdeploy rollback` of the file it named, a failing call, `no_log`, a module of a
//! collection on `ANSIBLE_COLLECTIONS_PATH`, and the refusal without ansible-core.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use support::Sandbox;
use support::fleet::Fleet;

/// The Python of the ansible-core virtualenv `scripts/test.sh` makes.
fn ansible_python() -> PathBuf {
    let Some(pb) = std::env::var_os("RDEPLOY_ANSIBLE_PLAYBOOK") else {
        panic!(
            "RDEPLOY_ANSIBLE_PLAYBOOK is not set: the bridge needs ansible-core; run this test \
             through ./scripts/test.sh, or set the variable to the ansible-playbook that \
             scripts/ansible-venv.sh prints"
        );
    };
    PathBuf::from(pb).with_file_name("python")
}

/// A sandbox with the fleet's inventory as `inv.yaml` and `pb.yaml`.
fn sandbox(fleet: &Fleet, playbook: &str) -> Sandbox {
    let sb = Sandbox::new();
    let known = format!("-o UserKnownHostsFile={}", fleet.known_hosts().display());
    fleet.write_inventory(
        sb.path().join("inv.yaml"),
        json!({ "ansible_ssh_extra_args": known }),
    );
    sb.write("pb.yaml", playbook);
    sb
}

/// `rdeploy ARGS` with the bridge's Python; (exit code, stdout, stderr).
fn rdeploy(sb: &Sandbox, args: &[&str], python: &PathBuf) -> (i32, String, String) {
    rdeploy_env(sb, args, python, &[])
}

/// [`rdeploy`] with more environment variables.
fn rdeploy_env(
    sb: &Sandbox,
    args: &[&str],
    python: &PathBuf,
    env: &[(&str, &std::path::Path)],
) -> (i32, String, String) {
    let out = sb
        .rdeploy(args)
        .envs(env.iter().copied())
        .env("RDEPLOY_ANSIBLE_PYTHON", python)
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(180))
        .output()
        .expect("run rdeploy");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `PLAY RECAP` line of `host`, with runs of spaces folded.
fn recap_of(out: &str, host: &str) -> String {
    out.lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .find(|l| l.starts_with(&format!("{host} :")))
        .unwrap_or_default()
}

/// The run id `rdeploy run` printed.
fn run_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("run ")?.split_whitespace().next())
        .expect("a run id")
        .to_string()
}

const KNOWN_HOSTS: &str = r#"
- hosts: all
  gather_facts: no
  tasks:
    - shell: printf %s "$HOME"
      register: home
      changed_when: false
      check_mode: false
    - known_hosts:
        path: "{{ home.stdout }}/bridge_known_hosts"
        name: example.org
        key: "example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHl0AHOpyjEX6Y1F9l2Gk62gqtmz2yvx2zqPNNBGPJyL"
    - mount_facts: { sources: [dynamic] }
    - debug: msg="{{ 'mounts known' if ansible_facts.mount_points | length > 0 else 'no mounts' }} {{ 'too' if mount_points | length > 0 else '' }}"
"#;

#[test]
fn ansibles_own_modules_run_on_the_fleet_check_change_again_and_roll_back() {
    let python = ansible_python();
    let fleet = Fleet::start(2);
    let sb = sandbox(&fleet, KNOWN_HOSTS);
    let run = ["run", "pb.yaml", "-i", "inv.yaml"];
    let exists = |h| {
        fleet
            .ssh(fleet.host(h), "test -f ~/bridge_known_hosts")
            .output()
            .expect("ssh")
            .status
            .success()
    };

    // --check --diff: the module's own check mode predicts the change; nothing is written.
    let (code, out, err) = rdeploy(&sb, &[&run[..], &["--check", "--diff"]].concat(), &python);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("+example.org ssh-ed25519"), "{out}");
    assert!(!exists(0) && !exists(1), "--check wrote the file\n{out}");

    // A real run changes both hosts; mount_facts' facts are the hosts' facts.
    let (code, out, err) = rdeploy(&sb, &run, &python);
    assert_eq!(code, 0, "{out}\n{err}");
    for h in fleet.hosts() {
        assert!(
            recap_of(&out, h.name()).contains("changed=1"),
            "{}: {out}",
            h.name()
        );
    }
    assert!(out.contains("mounts known too"), "{out}");
    assert!(exists(0) && exists(1));
    let first = run_id(&out);

    // Again: nothing to do.
    let (code, out, err) = rdeploy(&sb, &run, &python);
    assert_eq!(code, 0, "{out}\n{err}");
    for h in fleet.hosts() {
        assert!(
            recap_of(&out, h.name()).contains("changed=0"),
            "{}: {out}",
            h.name()
        );
    }

    // The file the module named was backed up first: rolling the first run back removes it.
    let (code, out, err) = rdeploy(
        &sb,
        &["rollback", &first, "-i", "inv.yaml", "--force"],
        &python,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!exists(0) && !exists(1), "{out}");
}

#[test]
fn a_failing_bridged_call_fails_the_host_with_the_modules_own_message() {
    let python = ansible_python();
    let fleet = Fleet::start(1);
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - tempfile: { path: /nonexistent-dir-here }\n    - debug: msg=never\n",
    );
    let (code, out, err) = rdeploy(&sb, &["run", "pb.yaml", "-i", "inv.yaml"], &python);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.contains("No such file or directory: '/nonexistent-dir-here/"),
        "{out}"
    );
    assert!(!out.contains("never"), "{out}");
    assert!(
        recap_of(&out, fleet.host(0).name()).contains("failed=1"),
        "{out}"
    );
}

#[test]
fn no_log_hides_what_a_bridged_module_returns_everywhere() {
    let python = ansible_python();
    let fleet = Fleet::start(1);
    let sb = sandbox(
        &fleet,
        r#"
- hosts: all
  gather_facts: no
  tasks:
    - tempfile: { path: /srv, prefix: "{{ 'aHVudGVyMi1jYW5hcnkK' | b64decode | trim }}" }
      no_log: true
      register: s
"#,
    );
    let (code, out, err) = rdeploy(&sb, &["run", "pb.yaml", "-i", "inv.yaml", "-vvv"], &python);
    assert_eq!(code, 0, "{out}\n{err}");
    // The canary is only in the rendered arguments and the module's result (`path`).
    let encoded = "hunter2-canary";
    assert!(
        !out.contains(encoded) && !err.contains(encoded),
        "{out}\n{err}"
    );
    // No helper outlives rdeploy: what it leaves in HOME is settled when rdeploy returns.
    let at_exit = sb.snapshot();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        at_exit.keys().collect::<Vec<_>>(),
        sb.snapshot().keys().collect::<Vec<_>>(),
        "files changed after rdeploy returned"
    );
    let journal: String = at_exit
        .iter()
        .filter(|(p, _)| p.to_string_lossy().ends_with("journal.jsonl"))
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(!journal.is_empty());
    assert!(!journal.contains(encoded), "{journal}");
}

const HELLO: &str = r#"#!/usr/bin/python
DOCUMENTATION = r'''
module: hello
short_description: Says hello.
description: Says hello, for rdeploy's bridge tests.
options:
  name:
    description: Who.
    type: str
    required: true
  shout:
    description: Louder.
    type: bool
    default: false
    aliases: [loud]
author: rdeploy
'''
RETURN = r'''
greeting:
  description: The greeting.
  type: str
  returned: always
'''
from ansible.module_utils.basic import AnsibleModule


def main():
    m = AnsibleModule(
        argument_spec=dict(name=dict(type='str', required=True), shout=dict(type='bool', default=False, aliases=['loud'])),
        supports_check_mode=True,
    )
    g = 'hello ' + m.params['name']
    m.exit_json(changed=False, greeting=g.upper() if m.params['shout'] else g)


if __name__ == '__main__':
    main()
"#;

#[test]
fn a_module_of_a_collection_runs_through_the_bridge_and_its_options_are_checked_first() {
    let python = ansible_python();
    let fleet = Fleet::start(1);
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - rdeploytest.demo.hello: { name: fleet, loud: yes }\n      register: h\n    - debug: msg=\"{{ h.greeting }}\"\n",
    );
    sb.write(
        "collections/ansible_collections/rdeploytest/demo/plugins/modules/hello.py",
        HELLO,
    );
    sb.write(
        "collections/ansible_collections/rdeploytest/demo/galaxy.yml",
        "namespace: rdeploytest\nname: demo\nversion: 1.0.0\nreadme: README.md\nauthors: [rdeploy]\n",
    );
    let colls = sb.path().join("collections");
    let run = |sb: &Sandbox| {
        rdeploy_env(
            sb,
            &["run", "pb.yaml", "-i", "inv.yaml"],
            &python,
            &[("ANSIBLE_COLLECTIONS_PATH", colls.as_path())],
        )
    };
    let (code, out, err) = run(&sb);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(r#"{"msg":"HELLO FLEET"}"#), "{out}");

    // A typo in an option is found in the module's documentation before any host.
    sb.write(
        "pb.yaml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - rdeploytest.demo.hello: { nmae: fleet }\n",
    );
    let (code, out, err) = run(&sb);
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        err.contains("pb.yaml:4:33: error: unknown argument 'nmae' for module 'rdeploytest.demo.hello', did you mean 'name'?"),
        "{err}"
    );
    assert!(!out.contains("PLAY"), "{out}");

    // `collections:` (the play's, and a role's own in meta/main.yml) lets the module be
    // written without its collection, as in Ansible.
    sb.write(
        "pb.yaml",
        "- hosts: all\n  gather_facts: no\n  collections: [rdeploytest.demo]\n  roles: [r]\n  tasks:\n    - hello: { name: play }\n      register: h\n    - debug: msg=\"{{ h.greeting }}\"\n",
    );
    sb.write(
        "roles/r/meta/main.yml",
        "collections:\n  - rdeploytest.demo\n",
    );
    sb.write(
        "roles/r/tasks/main.yml",
        "- hello: { name: role }\n  register: h\n- debug: msg=\"{{ h.greeting }}\"\n",
    );
    let (code, out, err) = run(&sb);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(r#"{"msg":"hello role"}"#), "{out}");
    assert!(out.contains(r#"{"msg":"hello play"}"#), "{out}");

    // Without the search list the short name is not found, before any host.
    sb.write(
        "pb.yaml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - hello: { name: play }\n",
    );
    let (code, out, err) = run(&sb);
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(err.contains("pb.yaml:4:7: error:"), "{err}");
    assert!(!out.contains("PLAY"), "{out}");
}

#[test]
fn without_ansible_core_the_refusal_says_what_would_run_the_module() {
    let sb = Sandbox::new();
    sb.write(
        "pb.yaml",
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - mount_facts: {}\n",
    );
    let out = sb
        .rdeploy(&["run", "pb.yaml", "--ansible-python", "/nonexistent/python3"])
        .output()
        .expect("run rdeploy");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("pb.yaml:4:7: error: module 'mount_facts' is not supported by rdeploy"),
        "{err}"
    );
    assert!(err.contains("--ansible-python PATH"), "{err}");
}

#[test]
fn ansible_python_interpreter_names_the_hosts_python_and_a_missing_one_is_said_plainly() {
    let python = ansible_python();
    let sb = Sandbox::new();
    sb.write(
        "pb.yaml",
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - mount_facts:\n    - debug: msg=\"{{ mount_points is mapping }}\"\n",
    );
    let (code, out, err) = rdeploy(
        &sb,
        &[
            "run",
            "pb.yaml",
            "-e",
            "ansible_python_interpreter=/usr/bin/python3",
        ],
        &python,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(r#"{"msg":true}"#), "{out}");
    let (code, out, err) = rdeploy(
        &sb,
        &[
            "run",
            "pb.yaml",
            "-e",
            "ansible_python_interpreter=/nonexistent/python3",
        ],
        &python,
    );
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.contains(
            "module 'mount_facts' needs Python on the host; rdeploy has no native mount_facts"
        ),
        "{out}"
    );
}
