//! End to end: roles and handlers as Ansible 2.19 runs them (issue 12), on the local
//! connection through the `rdeploy` binary. Each role instance keeps its own parameters,
//! same-named handlers resolve to the last one loaded, a role or block skipped by `when:`
//! reports each task `skipping`, a block's `notify:` reaches its tasks, and the handlers of a
//! dynamically included role can be notified once it ran. Each expectation was read off
//! ansible-playbook 2.19 on the same playbook.

mod support;

use std::path::Path;

use support::recap_line;

fn run(dir: &Path, files: &[(&str, &str)]) -> (i32, String, String) {
    support::run_local(dir, files, &[], &[])
}

/// The lines of the run's output that contain `needle`, in order.
fn lines_with<'a>(out: &'a str, needle: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.contains(needle)).collect()
}

const ROLE_R_TASKS: &str = r#"
- debug: msg="role {{ x }}"
  changed_when: true
  notify: rh
- debug: msg=second
"#;

const ROLE_R_HANDLERS: &str = r#"
- name: rh
  debug: msg="handler {{ x }}"
"#;

#[test]
fn role_parameters_do_not_leak_between_instances_of_the_same_role() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: false
  roles:
    - {role: r, x: 1}
    - {role: r, x: 2}
    - {role: r, x: 3, when: false}
"#,
            ),
            ("roles/r/tasks/main.yml", ROLE_R_TASKS),
            ("roles/r/handlers/main.yml", ROLE_R_HANDLERS),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("\"msg\":\"role 1\""), "{out}");
    assert!(out.contains("\"msg\":\"role 2\""), "{out}");
    assert!(!out.contains("role 3"), "{out}");
    // The third instance's two tasks print `skipping` (its entry's `when:` is false).
    assert_eq!(lines_with(&out, "skipping: [localhost]").len(), 3, "{out}");
    // One handler: the last loaded `rh` wins, and it carries the third instance's `when`.
    assert_eq!(
        lines_with(&out, "RUNNING HANDLER [r : rh]").len(),
        1,
        "{out}"
    );
    assert!(!out.contains("handler "), "{out}");
    assert_eq!(
        recap_line(&out),
        "localhost : ok=4 changed=2 unreachable=0 failed=0 skipped=3 rescued=0 ignored=0",
        "{out}"
    );
}

#[test]
fn the_handler_of_a_role_listed_twice_runs_once_with_the_last_instances_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: false
  roles:
    - {role: r, x: 1}
    - {role: r, x: 2}
"#,
            ),
            ("roles/r/tasks/main.yml", ROLE_R_TASKS),
            ("roles/r/handlers/main.yml", ROLE_R_HANDLERS),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(lines_with(&out, "RUNNING HANDLER").len(), 1, "{out}");
    assert!(out.contains("\"msg\":\"handler 2\""), "{out}");
}

#[test]
fn a_role_listed_twice_with_the_same_parameters_runs_once_unless_it_allows_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: false
  roles:
    - r
    - r
    - {role: r, x: 5}
    - dup
    - dup
"#,
            ),
            (
                "roles/r/tasks/main.yml",
                "- debug: msg=\"r {{ x | default('none') }}\"\n",
            ),
            ("roles/r/meta/main.yml", "dependencies:\n  - d\n"),
            ("roles/d/tasks/main.yml", "- debug: msg=dep\n"),
            ("roles/dup/tasks/main.yml", "- debug: msg=dup\n"),
            ("roles/dup/meta/main.yml", "allow_duplicates: true\n"),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    // `r` and its dependency `d` run once for the two identical entries; `r` with other
    // parameters runs again (its dependency, named the same way, does not).
    assert_eq!(lines_with(&out, "\"msg\":\"dep\"").len(), 1, "{out}");
    assert_eq!(lines_with(&out, "\"msg\":\"r none\"").len(), 1, "{out}");
    assert_eq!(lines_with(&out, "\"msg\":\"r 5\"").len(), 1, "{out}");
    assert_eq!(lines_with(&out, "\"msg\":\"dup\"").len(), 2, "{out}");
    assert!(recap_line(&out).contains("ok=5 "), "{out}");
}

#[test]
fn import_role_and_include_role_with_allow_duplicates_false_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - import_role: {name: q}
    - import_role: {name: q}
    - import_role: {name: q, allow_duplicates: false}
    - import_role: {name: q, allow_duplicates: false}
    - include_role: {name: q, allow_duplicates: false}
    - include_role: {name: q}
"#,
            ),
            ("roles/q/tasks/main.yml", "- debug: msg=in-q\n"),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    // As ansible-playbook 2.19: imports and includes share one identity; those that say
    // `allow_duplicates: false` do not run where it already ran, the others always run.
    assert_eq!(lines_with(&out, "\"msg\":\"in-q\"").len(), 3, "{out}");
}

#[test]
fn include_role_and_import_role_vars_reach_the_roles_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - include_role:
        name: r
      vars:
        x: included
- hosts: localhost
  gather_facts: false
  tasks:
    - import_role:
        name: r
      vars:
        x: imported
"#,
            ),
            ("roles/r/tasks/main.yml", ROLE_R_TASKS),
            ("roles/r/handlers/main.yml", ROLE_R_HANDLERS),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("\"msg\":\"role included\""), "{out}");
    assert!(out.contains("\"msg\":\"handler included\""), "{out}");
    assert!(out.contains("\"msg\":\"role imported\""), "{out}");
    assert!(out.contains("\"msg\":\"handler imported\""), "{out}");
}

#[test]
fn a_block_skipped_by_when_reports_each_of_its_tasks_skipping() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - block:
        - debug: msg=one
        - debug: msg=two
      when: false
    - import_tasks: more.yml
      when: false
"#,
            ),
            ("more.yml", "- debug: msg=three\n"),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(lines_with(&out, "skipping: [localhost]").len(), 3, "{out}");
    assert!(recap_line(&out).contains("ok=0 changed=0"), "{out}");
    assert!(recap_line(&out).contains("skipped=3"), "{out}");
}

#[test]
fn notify_on_a_block_is_inherited_by_its_block_rescue_and_always_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - name: blk
      notify: from block
      block:
        - debug: msg=b1
          changed_when: true
        - debug: msg=b2
          changed_when: true
          notify: own
        - command: /bin/false
      rescue:
        - debug: msg=r1
          changed_when: true
      always:
        - block:
            - debug: msg=a1
              changed_when: true
          notify: inner
  handlers:
    - name: from block
      debug: msg="block handler"
    - name: own
      debug: msg="own handler"
    - name: inner
      debug: msg="inner handler"
"#,
        )],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    for h in ["from block", "own", "inner"] {
        assert_eq!(
            lines_with(&out, &format!("RUNNING HANDLER [{h}]")).len(),
            1,
            "{out}"
        );
    }
    assert_eq!(
        recap_line(&out),
        "localhost : ok=7 changed=4 unreachable=0 failed=0 skipped=0 rescued=1 ignored=0",
        "{out}"
    );
}

#[test]
fn a_block_notify_naming_no_handler_is_an_error_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            "- hosts: localhost\n  tasks:\n    - block:\n        - ping:\n      notify: restart ap\n  handlers:\n    - name: restart app\n      ping:\n",
        )],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        err.contains("pb.yaml:5:15") && err.contains("no handler named 'restart ap'"),
        "{err}"
    );
}

#[test]
fn handlers_of_a_dynamically_included_role_can_be_notified_after_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: false
  vars:
    rname: r
  tasks:
    - include_role:
        name: "{{ rname }}"
      vars:
        x: inc
    - include_role:
        name: s
      when: rname == 'r'
    - debug: msg=later
      changed_when: true
      notify: [rh, sh, topic]
"#,
            ),
            ("roles/r/tasks/main.yml", ROLE_R_TASKS),
            (
                "roles/r/handlers/main.yml",
                "- name: rh\n  debug: msg=\"handler {{ x }}\"\n- name: lis\n  debug: msg=\"listener r\"\n  listen: topic\n",
            ),
            ("roles/s/tasks/main.yml", "- debug: msg=\"in s\"\n"),
            (
                "roles/s/handlers/main.yml",
                "- name: sh\n  debug: msg=\"handler s\"\n- name: lis\n  debug: msg=\"listener s\"\n  listen: topic\n",
            ),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("\"msg\":\"handler inc\""), "{out}");
    assert!(out.contains("\"msg\":\"handler s\""), "{out}");
    // Two handlers named `lis` listen to `topic`: the last loaded one answers.
    assert!(out.contains("\"msg\":\"listener s\""), "{out}");
    assert!(!out.contains("listener r"), "{out}");
    assert_eq!(lines_with(&out, "RUNNING HANDLER").len(), 3, "{out}");
}

#[test]
fn notifying_a_handler_no_loaded_role_defines_fails_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: false
  vars:
    rname: r
  tasks:
    - debug: msg=early
      changed_when: true
      notify: rh
    - include_role:
        name: "{{ rname }}"
    - debug: msg=after
"#,
            ),
            ("roles/r/tasks/main.yml", "- debug: msg=\"in r\"\n"),
            ("roles/r/handlers/main.yml", ROLE_R_HANDLERS),
        ],
    );
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("handler 'rh' was not found"), "{out}");
    assert!(!out.contains("after"), "{out}");
}

#[test]
fn role_parameters_are_not_visible_after_the_role_and_play_keywords_reach_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: false
  environment:
    FOO: from-play
  roles:
    - {role: q, x: 1}
  tasks:
    - debug: msg="x is {{ x | default('undefined') }}, y is {{ y }}"
    - command: "true"
      notify: h
  handlers:
    - name: h
      shell: echo "$FOO"
      register: hout
  post_tasks:
    - debug: msg="handler saw {{ hout.stdout }}"
"#,
            ),
            ("roles/q/tasks/main.yml", "- debug: msg=\"q {{ x }}\"\n"),
            ("roles/q/defaults/main.yml", "y: from-defaults\n"),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("\"msg\":\"q 1\""), "{out}");
    // Role defaults are the play's to read; the entry's parameters are not (Ansible).
    assert!(
        out.contains("\"msg\":\"x is undefined, y is from-defaults\""),
        "{out}"
    );
    // The play's `environment` applies to its handlers too.
    assert!(out.contains("\"msg\":\"handler saw from-play\""), "{out}");
}

#[test]
fn import_role_exports_its_defaults_to_the_play_and_include_role_only_when_public() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - debug: msg="before {{ dv | default('U') }} {{ vv | default('U') }}"
    - import_role: {name: pv}
- hosts: localhost
  gather_facts: false
  tasks:
    - include_role: {name: pv}
    - debug: msg="private {{ dv | default('U') }} {{ vv | default('U') }}"
    - include_role: {name: pv, public: true}
    - debug: msg="public {{ dv }} {{ vv }}"
"#,
            ),
            ("roles/pv/tasks/main.yml", "- debug: msg=pv\n"),
            ("roles/pv/defaults/main.yml", "dv: d-val\n"),
            ("roles/pv/vars/main.yml", "vv: v-val\n"),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    // As in Ansible: an imported role's defaults and vars are the play's from its start.
    assert!(out.contains("\"msg\":\"before d-val v-val\""), "{out}");
    assert!(out.contains("\"msg\":\"private U U\""), "{out}");
    assert!(out.contains("\"msg\":\"public d-val v-val\""), "{out}");
}

#[test]
fn a_templated_public_or_allow_duplicates_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                "- hosts: localhost\n  tasks:\n    - include_role:\n        name: q\n        public: \"{{ flag }}\"\n",
            ),
            ("roles/q/tasks/main.yml", "- debug: msg=q\n"),
        ],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        err.contains("pb.yaml:5:17")
            && err.contains("'public' of include_role as a template is not supported by rdeploy"),
        "{err}"
    );
}

#[test]
fn a_templated_handler_name_is_rendered_with_the_play_and_role_variables() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: false
  vars:
    what: thing
  roles:
    - tn
  tasks:
    - command: "true"
      notify: "reload thing"
  handlers:
    - name: "reload {{ what }}"
      debug: msg=reloaded
"#,
            ),
            ("roles/tn/defaults/main.yml", "svc: web\n"),
            (
                "roles/tn/tasks/main.yml",
                "- command: \"true\"\n  notify: restart web\n",
            ),
            (
                "roles/tn/handlers/main.yml",
                "- name: \"restart {{ svc }}\"\n  debug: msg=restarted\n",
            ),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("RUNNING HANDLER [tn : restart web]"), "{out}");
    assert!(out.contains("RUNNING HANDLER [reload thing]"), "{out}");
    assert!(recap_line(&out).contains("ok=4 changed=2"), "{out}");
}

#[test]
fn a_handler_notified_by_a_later_handler_runs_at_the_next_flush() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - command: "true"
      notify: b
  post_tasks:
    - debug: msg=post
  handlers:
    - name: a
      debug: msg=ha
    - name: b
      command: "true"
      notify: a
"#,
        )],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    // As ansible-playbook 2.19: `a` comes before `b` in the list, so it waits for the flush
    // after post_tasks (it used to be dropped).
    let b = out.find("RUNNING HANDLER [b]").expect("b runs");
    let post = out.find("\"msg\":\"post\"").expect("post_tasks run");
    let a = out.find("RUNNING HANDLER [a]").expect("a runs");
    assert!(b < post && post < a, "{out}");
}

#[test]
fn an_import_role_with_public_false_keeps_its_variables_to_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - debug: msg="before {{ x | default('hidden') }} {{ y | default('hidden') }}"
    - import_role: { name: r1, public: false }
    - import_role: { name: r2 }
    - debug: msg="after {{ x | default('hidden') }} {{ y | default('hidden') }}"
"#,
            ),
            ("roles/r1/defaults/main.yml", "x: from-r1\n"),
            ("roles/r1/tasks/main.yml", "- debug: msg=\"{{ x }}\"\n"),
            ("roles/r2/defaults/main.yml", "y: from-r2\n"),
            ("roles/r2/tasks/main.yml", "- debug: msg=\"{{ y }}\"\n"),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        lines_with(&out, "\"msg\""),
        [
            r#"ok: [localhost] => {"msg":"before hidden from-r2"}"#,
            r#"ok: [localhost] => {"msg":"from-r1"}"#,
            r#"ok: [localhost] => {"msg":"from-r2"}"#,
            r#"ok: [localhost] => {"msg":"after hidden from-r2"}"#,
        ]
    );
}

#[test]
fn a_roles_include_vars_of_a_first_found_file_reads_it_from_a_relative_playbook() {
    // dev-sec's and geerlingguy's idiom; `rdeploy run pb.yaml` from the project's folder.
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                "- hosts: all\n  gather_facts: false\n  tasks:\n    - include_role: {name: r}\n",
            ),
            (
                "roles/r/tasks/main.yml",
                "- include_vars: \"{{ item }}\"\n  with_first_found:\n    - \"{{ 'Nope' }}.yml\"\n    - default.yml\n- debug: msg=\"{{ svc_user }}\"\n",
            ),
            ("roles/r/vars/default.yml", "svc_user: nobody\n"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(r#"{"msg":"nobody"}"#), "{out}");
    // The path found is absolute, as Ansible's.
    let abs = dir
        .path()
        .canonicalize()
        .unwrap()
        .join("roles/r/vars/default.yml");
    assert!(
        out.contains(&format!("(item={})", abs.display()))
            || out.contains(&format!(
                "(item={})",
                dir.path().join("roles/r/vars/default.yml").display()
            )),
        "{out}"
    );
}

#[test]
fn role_name_and_ansible_role_name_are_the_roles_name_as_in_ansible() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                "- hosts: all\n  gather_facts: false\n  roles: [rn]\n",
            ),
            (
                "roles/rn/tasks/main.yml",
                "- debug: msg=\"{{ role_name }} {{ ansible_role_name }}\"\n",
            ),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(r#"{"msg":"rn rn"}"#), "{out}");
}
