//! End to end: lookups and `with_*` loops through the `rdeploy` binary on the local
//! connection, with the results ansible-playbook 2.19 prints for the same playbook (the
//! expected lines below were taken from it; fileglob's order is sorted in rdeploy).

mod support;

use std::path::Path;

fn run(dir: &Path, playbook: &str, args: &[&str]) -> (i32, String, String) {
    support::run_local(
        dir,
        &[("pb.yaml", playbook)],
        args,
        &[("RDEPLOY_LOOKUP_TEST", "from-env")],
    )
}

const PLAYBOOK: &str = r#"
- hosts: localhost
  gather_facts: no
  vars:
    port: 8080
    users:
      - name: alice
        keys: [k1, k2]
      - name: bob
        keys: [k3]
    d: {b: 2, a: 1}
    greeting: "{{ lookup('file', 'greeting.txt') }}"
  tasks:
    - debug: {msg: "{{ greeting }}|"}
    - debug: {msg: "{{ lookup('template', 't.j2') }}"}
    - debug: {msg: "{{ lookup('env', 'RDEPLOY_LOOKUP_TEST') }} {{ lookup('env', 'RDEPLOY_UNSET_X', default='dflt') }}"}
    - debug: {msg: "{{ lookup('pipe', 'echo piped; echo') }}"}
    - debug: {msg: "{{ query('fileglob', '*.conf') | map('basename') | list }}"}
    - debug: {msg: "{{ lookup('first_found', ['vars/RedHat.yml', 'vars/Debian.yml']) | basename }}"}
    - debug: {msg: "{{ lookup('lines', 'printf \"a\\nb\\n\"') }}"}
    - debug: {msg: "{{ lookup('password', 'creds/db length=12 chars=digits') | length }}"}
    - debug: {msg: "{{ lookup('vars', 'port') }}"}
    - debug: {msg: "{{ lookup('items', [1]) }} {{ lookup('items', ['x', 'y']) }}"}
    - debug: {msg: "{{ lookup('file', 'nope', errors='ignore') }}"}
    - debug: {msg: "{{ item.key }}={{ item.value }}"}
      with_dict: "{{ d }}"
    - debug: {msg: "{{ item.0.name }}={{ item.1 }}"}
      with_subelements:
        - "{{ users }}"
        - keys
    - debug: {msg: "{{ item }}"}
      with_nested:
        - [a, b]
        - [1, 2]
    - debug: {msg: "{{ item }}"}
      with_together:
        - [1, 2]
        - [a]
    - debug: {msg: "{{ item }}"}
      with_sequence: start=1 end=3 format=h%02d
    - debug: {msg: "{{ item }}"}
      with_indexed_items: [a, b]
    - debug: {msg: "{{ item | basename }}"}
      with_fileglob: "*.conf"
    - debug: {msg: "{{ item | basename }}"}
      with_first_found:
        - files: [nope.yml, Debian.yml]
          paths: [vars]
    - debug: {msg: "{{ item }}"}
      with_lines: printf 'l1\nl2\n'
"#;

fn fixture(dir: &Path) {
    for d in ["files", "templates", "vars"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("files/greeting.txt"), "hello file\n\n").unwrap();
    std::fs::write(dir.join("files/a.conf"), "a\n").unwrap();
    std::fs::write(dir.join("files/b.conf"), "b\n").unwrap();
    std::fs::write(dir.join("templates/t.j2"), "port={{ port }}\n").unwrap();
    std::fs::write(dir.join("vars/Debian.yml"), "x: 1\n").unwrap();
}

#[test]
fn lookups_and_with_loops_give_ansibles_results() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let (code, out, err) = run(dir.path(), PLAYBOOK, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let d = std::fs::canonicalize(dir.path()).unwrap();
    let d = d.display();
    for want in [
        r#"{"msg":"hello file|"}"#.to_string(),
        r#"{"msg":"port=8080\n"}"#.into(),
        r#"{"msg":"from-env dflt"}"#.into(),
        r#"{"msg":"piped"}"#.into(),
        r#"{"msg":["a.conf","b.conf"]}"#.into(),
        r#"{"msg":"Debian.yml"}"#.into(),
        r#"{"msg":"a,b"}"#.into(),
        r#"{"msg":12}"#.into(),
        r#"{"msg":8080}"#.into(),
        r#"{"msg":"1 x,y"}"#.into(),
        r#"{"msg":null}"#.into(),
        r#"(item={"key":"b","value":2})"#.into(),
        r#"(item={"key":"a","value":1})"#.into(),
        r#"(item=[{"name":"alice"},"k2"])"#.into(),
        r#"(item=[{"name":"bob"},"k3"])"#.into(),
        r#"(item=["b",2])"#.into(),
        r#"(item=[2,null])"#.into(),
        "(item=h03)".into(),
        r#"(item=[1,"b"])"#.into(),
        format!("(item={d}/files/b.conf)"),
        format!("(item={d}/vars/Debian.yml)"),
        "(item=l2)".into(),
    ] {
        assert!(out.contains(&want), "missing {want} in\n{out}");
    }
    // The password file was created once and is read back on the next run.
    let pw = std::fs::read_to_string(dir.path().join("creds/db")).unwrap();
    assert_eq!(pw.trim().len(), 12);
    let (code, out2, err) = run(
        dir.path(),
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: {msg: \"{{ lookup('password', 'creds/db') }}\"}\n",
        &[],
    );
    assert_eq!(code, 0, "{out2}{err}");
    // The password is a secret: it is registered for redaction, so the report hides it.
    assert!(!out2.contains(pw.trim()), "{out2}");
}

#[test]
fn check_mode_creates_no_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: {msg: \"{{ lookup('password', 'creds/new') | length }}\"}\n",
        &["--check"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(r#"{"msg":20}"#), "{out}");
    assert!(!dir.path().join("creds").exists());
}

#[test]
fn a_lookup_in_a_registered_result_is_data_and_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    // A file on the host holds template text; the task that reads it is plain.
    std::fs::write(
        dir.path().join("hostile.txt"),
        format!("{{{{ lookup('pipe', 'touch {}') }}}}", marker.display()),
    )
    .unwrap();
    let pb = "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - command: cat hostile.txt\n      args: {chdir: .}\n      register: out\n      changed_when: false\n    - debug: {msg: \"{{ out.stdout }}\"}\n    - set_fact: {copied: \"{{ out.stdout }}\"}\n    - debug: {msg: \"{{ copied }}\"}\n";
    let (code, out, err) = run(dir.path(), pb, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("{{ lookup('pipe', 'touch"), "{out}");
    assert!(
        !marker.exists(),
        "a lookup in host output ran on the controller"
    );
}

#[test]
fn unknown_lookup_and_with_loop_fail_before_any_host() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let pb = format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - command: touch {}\n    - debug: {{msg: \"{{{{ lookup('hashi_vault', 'x') }}}}\"}}\n",
        marker.display()
    );
    let (code, out, err) = run(dir.path(), &pb, &[]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains("pb.yaml:5:")
            && err.contains("lookup plugin 'hashi_vault' is not supported by rdeploy"),
        "{err}"
    );
    assert!(!marker.exists());
    let (code, out, err) = run(
        dir.path(),
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: {msg: x}\n      with_cartesian: [[1], [2]]\n",
        &[],
    );
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains("pb.yaml:5:7: error: 'with_cartesian' (a loop over the 'cartesian' lookup plugin) is not supported by rdeploy"),
        "{err}"
    );
}

#[test]
fn with_items_over_a_bare_name_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        "- hosts: localhost\n  gather_facts: no\n  vars:\n    pkgs: [a, b]\n  tasks:\n    - debug: {msg: \"{{ item }}\"}\n      with_items: pkgs\n",
        &[],
    );
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains("pb.yaml:7:19: error: 'with_items: pkgs' loops over the text 'pkgs' itself"),
        "{err}"
    );
    assert!(err.contains(r#"write `with_items: "{{ pkgs }}"`"#), "{err}");
}

#[test]
fn with_nested_over_a_bare_name_is_refused_with_the_fix() {
    // Ansible 2.19 loops over the characters of `listvar1` (items ['l', 1], ['l', 2], ...).
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        "- hosts: localhost\n  gather_facts: no\n  vars:\n    listvar1: [a, b]\n  tasks:\n    - debug: {msg: \"{{ item[0] }}-{{ item[1] }}\"}\n      with_nested:\n        - listvar1\n        - [1, 2]\n",
        &[],
    );
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains("pb.yaml:8:11: error: 'with_nested' term 'listvar1' is the text 'listvar1' itself, not the variable listvar1"),
        "{err}"
    );
    assert!(err.contains(r#"write `- "{{ listvar1 }}"`"#), "{err}");
    assert!(!out.contains("TASK"), "nothing ran: {out}");
}

#[test]
fn with_together_over_text_is_refused_and_templated_terms_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: {msg: \"{{ item }}\"}\n      with_together:\n        - [1, 2]\n        - a b\n",
        &[],
    );
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains("pb.yaml:7:11: error: 'with_together' term 'a b' is text, not a list: Ansible loops over its characters, which is not supported by rdeploy"),
        "{err}"
    );
    let (code, out, err) = run(
        dir.path(),
        "- hosts: localhost\n  gather_facts: no\n  vars:\n    listvar1: [a, b]\n  tasks:\n    - debug: {msg: \"{{ item[0] }}-{{ item[1] }}\"}\n      with_nested:\n        - \"{{ listvar1 }}\"\n        - [1, 2]\n",
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        r#"(item=["a",1])"#,
        r#"(item=["a",2])"#,
        r#"(item=["b",1])"#,
        r#"(item=["b",2])"#,
    ] {
        assert!(out.contains(want), "{want} in {out}");
    }
}

#[test]
fn vars_prompt_takes_its_default_or_the_extra_var_and_never_waits() {
    let dir = tempfile::tempdir().unwrap();
    let pb = "- hosts: localhost\n  gather_facts: no\n  vars_prompt:\n    - name: release\n      prompt: Which release?\n      default: v1\n    - name: token\n      prompt: Token\n      private: yes\n  tasks:\n    - debug: {msg: \"{{ release }}\"}\n";
    let (code, out, err) = run(dir.path(), pb, &["-e", "token=abc"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(r#"{"msg":"v1"}"#), "{out}");
    assert!(
        !out.contains("Which release?") && !out.contains("Token"),
        "{out}"
    );
    let (code, out, _) = run(dir.path(), pb, &["-e", "token=abc", "-e", "release=v2"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(r#"{"msg":"v2"}"#), "{out}");
    // No -e for the prompt without a default: refused before any host, naming the fix.
    let (code, out, err) = run(dir.path(), pb, &[]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains("pb.yaml:7:7: error: vars_prompt 'token' has no default and no -e value")
            && err.contains("`-e token=...`"),
        "{err}"
    );
}

#[test]
fn vars_files_take_a_first_found_list() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("vars")).unwrap();
    std::fs::write(dir.path().join("vars/Debian.yml"), "from_list: debian\n").unwrap();
    std::fs::write(
        dir.path().join("vars/default.yml"),
        "from_lookup: default\n",
    )
    .unwrap();
    let pb = r#"
- hosts: localhost
  gather_facts: no
  vars:
    family: RedHat
  vars_files:
    - [vars/RedHat.yml, vars/Debian.yml]
  tasks:
    - debug: {msg: "{{ from_list }}"}
"#;
    let (code, out, err) = run(dir.path(), pb, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(r#"{"msg":"debian"}"#), "{out}");
    let bad = pb.replace("vars/Debian.yml]", "vars/Suse.yml]");
    let (code, out, err) = run(dir.path(), &bad, &[]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains("pb.yaml:7:7: error: none of the vars files in this list exists"),
        "{err}"
    );
}

#[test]
fn varnames_lists_the_matching_variable_names_as_ansible_does() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        "- hosts: localhost\n  gather_facts: no\n  vars: {app_port: 1, app_name: x, other: 2}\n  tasks:\n    - debug: {msg: \"{{ lookup('varnames', '^app_') }}\"}\n    - debug: {msg: \"{{ query('varnames', '^app_', '^oth') }}\"}\n    - debug: {msg: \"{{ lookup('varnames', '^nomatch$') | length }}\"}\n",
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    // ansible-playbook 2.19's messages for the same playbook.
    for want in [
        r#"{"msg":"app_port,app_name"}"#,
        r#"{"msg":["app_port","app_name","other"]}"#,
        r#"{"msg":0}"#,
    ] {
        assert!(out.contains(want), "{want}\n{out}");
    }
}

#[test]
fn community_general_flattened_flattens_every_list_as_the_collections_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        "- hosts: localhost\n  gather_facts: no\n  vars:\n    a: [/usr/bin, [/bin, [/sbin]]]\n    b: [[/opt]]\n  tasks:\n    - debug: {msg: \"{{ item }}\"}\n      with_community.general.flattened:\n        - \"{{ a }}\"\n        - \"{{ b }}\"\n        - plain\n    - debug: {msg: \"{{ lookup('community.general.flattened', [1, [2, [3]]], [[4]]) }}\"}\n    - debug: {msg: \"{{ item }}\"}\n      with_flattened: [[x, [y]], z]\n",
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    // The items and the value ansible-playbook 2.19 (community.general) gives.
    let items: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("ok: [localhost] => (item="))
        .filter_map(|l| l.split_once(')').map(|(i, _)| i))
        .collect();
    assert_eq!(
        items,
        ["/usr/bin", "/bin", "/sbin", "/opt", "plain", "x", "y", "z"],
        "{out}"
    );
    assert!(out.contains(r#"{"msg":[1,2,3,4]}"#), "{out}");
}
