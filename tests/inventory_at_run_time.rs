//! End to end: `add_host` and `group_by` change the inventory for the rest of the run, as in
//! Ansible (issue 12): later plays' `hosts:` reach the new hosts and groups, `groups[...]` sees
//! them, and a new host gets its own connection when a play first targets it. Before, both
//! modules were "not supported by rdeploy" and a play naming their groups was refused.

mod support;

use std::path::Path;

fn run(dir: &Path, files: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    support::run_local(dir, files, args, &[])
}

/// The `PLAY RECAP` line of `host`, with runs of spaces folded.
fn recap_of(out: &str, host: &str) -> String {
    out.lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .find(|l| l.starts_with(&format!("{host} :")))
        .unwrap_or_default()
}

#[test]
fn add_host_with_a_local_connection_is_reached_by_a_later_play_of_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - add_host:
        name: "web-new:2222"
        groups: [fresh, more]
        ansible_connection: local
        colour: blue
      register: added
    - add_host: name=web-other groups=fresh ansible_connection=local
    - add_host: { name: web-new, groups: fresh }
    - debug: { msg: "{{ groups['fresh'] | join(',') }} {{ added.add_host.host_vars.ansible_ssh_port }} {{ hostvars['web-new'].colour }}" }
- hosts: fresh
  gather_facts: no
  tasks:
    - copy:
        dest: "{{ playbook_dir }}/out-{{ inventory_hostname }}"
        content: "{{ colour | default('none') }} {{ group_names | join(',') }} {{ ansible_port | default('-') }}\n"
"#,
        )],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    // Once per task, on the first host; changed when the inventory changed (the third adds
    // nothing new), as ansible-playbook 2.19 reports them.
    let lines: Vec<&str> = out.lines().collect();
    let after = |task_line: usize| lines.get(task_line + 1).copied().unwrap_or_default();
    let tasks: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("TASK [add_host]"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(tasks.len(), 3, "{out}");
    assert_eq!(after(tasks[0]), "changed: [localhost]", "{out}");
    assert_eq!(after(tasks[1]), "changed: [localhost]", "{out}");
    assert_eq!(after(tasks[2]), "ok: [localhost]", "{out}");
    assert!(
        out.contains(r#""msg":"web-new,web-other 2222 blue""#),
        "{out}"
    );
    let read = |h: &str| std::fs::read_to_string(dir.path().join(format!("out-{h}"))).unwrap();
    assert_eq!(read("web-new"), "blue fresh,more 2222\n");
    assert_eq!(read("web-other"), "none fresh -\n");
    assert_eq!(
        recap_of(&out, "localhost"),
        "localhost : ok=4 changed=2 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"
    );
    assert_eq!(
        recap_of(&out, "web-new"),
        "web-new : ok=1 changed=1 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"
    );
    // The journal records the added hosts' steps like any other host's.
    let journal = std::fs::read_dir(dir.path().join("state/runs"))
        .unwrap()
        .map(|e| e.unwrap().path().join("journal.jsonl"))
        .next()
        .unwrap();
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("\"web-new\"") && l.contains("\"changed\"")),
        "{text}"
    );
    // ... and how to reach them, so that a rollback restores them too.
    let run_id = journal
        .parent()
        .and_then(|p| p.file_name())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let back = assert_cmd::Command::cargo_bin("rdeploy")
        .unwrap()
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("RDEPLOY_STATE_DIR", dir.path().join("state"))
        .args(["rollback", &run_id])
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&back.stdout).into_owned() + &String::from_utf8_lossy(&back.stderr);
    assert_eq!(back.status.code(), Some(0), "{said}");
    assert!(!dir.path().join("out-web-new").exists(), "{said}");
    assert!(!dir.path().join("out-web-other").exists(), "{said}");
}

#[test]
fn group_by_a_variable_makes_a_group_a_later_play_targets() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "inv.yaml",
                "all:\n  hosts:\n    h1: {ansible_connection: local, flavour: blue}\n    h2: {ansible_connection: local, flavour: red}\n    h3: {ansible_connection: local, flavour: blue}\n",
            ),
            (
                "pb.yaml",
                r#"
- hosts: all
  gather_facts: no
  tasks:
    - group_by: { key: "colour_{{ flavour }}" }
    - group_by: { key: "colour_{{ flavour }}" }
    - debug: { msg: "{{ groups['colour_blue'] }}" }
      run_once: true
- hosts: colour_blue
  gather_facts: no
  tasks:
    - copy: { dest: "{{ playbook_dir }}/blue-{{ inventory_hostname }}", content: "{{ group_names | join(',') }}\n" }
- hosts: colour_green
  gather_facts: no
  tasks:
    - debug: { msg: never }
"#,
            ),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let first = out.split("TASK [group_by]").nth(1).unwrap_or_default();
    assert!(
        first.contains("changed: [h1]") && first.contains("changed: [h2]"),
        "{out}"
    );
    let second = out.split("TASK [group_by]").nth(2).unwrap_or_default();
    let second = second.split("TASK [debug]").next().unwrap_or_default();
    assert!(!second.contains("changed:"), "{out}");
    assert!(out.contains(r#""msg":["h1","h3"]"#), "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("blue-h1")).unwrap(),
        "colour_blue\n"
    );
    assert!(dir.path().join("blue-h3").exists());
    assert!(!dir.path().join("blue-h2").exists());
    // A group nothing made: Ansible's warning, the play is skipped, the run is fine.
    assert!(
        (out.clone() + &err)
            .contains("Could not match supplied host pattern, ignoring: colour_green"),
        "{out}\n{err}"
    );
    assert!(!out.contains("never"), "{out}");
    assert_eq!(
        recap_of(&out, "h2"),
        "h2 : ok=2 changed=1 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"
    );
    // `rdeploy plan` says when such a play's hosts are known.
    let plan = assert_cmd::Command::cargo_bin("rdeploy")
        .unwrap()
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .args(["plan", "pb.yaml", "-i", "inv.yaml"])
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        plan.contains("play #2 (colour_blue): colour_blue\n  hosts: found when the play starts"),
        "{plan}"
    );
}

#[test]
fn a_pattern_naming_nothing_is_still_an_error_without_add_host_or_group_by() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: { msg: x }\n- hosts: lcoalhost\n  tasks:\n    - debug: { msg: y }\n",
        )],
        &[],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        err.contains("pb.yaml:5:10: error: hosts 'lcoalhost'"),
        "{err}"
    );
}

#[test]
fn a_group_made_at_run_time_reads_its_group_vars_files() {
    let dir = tempfile::tempdir().unwrap();
    let play = r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - group_by: { key: dyn }
    - add_host: { name: newhost, groups: [dyn], ansible_connection: local }
- hosts: dyn
  gather_facts: no
  tasks:
    - debug: msg="{{ v_pb | default('none') }} {{ v_inv | default('none') }}"
"#;
    let (code, out, err) = run(
        dir.path(),
        &[
            ("pb.yaml", play),
            ("inventory/hosts.yaml", support::LOCAL_INVENTORY),
            (
                "inventory/group_vars/dyn.yml",
                "v_inv: inv-dyn\nv_pb: inv\n",
            ),
            ("group_vars/dyn.yml", "v_pb: pb-dyn\n"),
        ],
        &["-i", "inventory/hosts.yaml"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    // As ansible-playbook 2.19: the playbook directory's files win over the inventory's.
    assert!(
        out.contains(r#"ok: [localhost] => {"msg":"pb-dyn inv-dyn"}"#),
        "{out}"
    );
    assert!(
        out.contains(r#"ok: [newhost] => {"msg":"pb-dyn inv-dyn"}"#),
        "{out}"
    );

    // A broken file fails the task that made the group, naming the file and position.
    std::fs::write(dir.path().join("group_vars/dyn.yml"), "bad: [\n").unwrap();
    let (code, out, _) = run(dir.path(), &[], &["-i", "inventory/hosts.yaml"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("group_vars/dyn.yml:1:6"), "{out}");
    assert!(
        recap_of(&out, "localhost").contains("ok=0 changed=0 unreachable=0 failed=1"),
        "{out}"
    );
}
