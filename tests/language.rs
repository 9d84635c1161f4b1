//! End to end: Ansible's playbook language as existing playbooks use it (issue 12), on the
//! local connection through the `rdeploy` binary. Each test is named after what went wrong
//! before: a templated include that ran nothing, guards refused as undefined, inventory
//! values that were never rendered, and so on.

mod support;

use std::path::Path;

use support::recap_line;

fn run(dir: &Path, files: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    support::run_local(dir, files, args, &[])
}
#[test]
fn a_templated_include_runs_the_tasks_of_the_file_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: yes
  vars:
    flavour: Debian
  tasks:
    - file: { path: "{{ playbook_dir }}/out", state: directory }
    - include_tasks: "tasks/setup-{{ 'Debian' }}.yml"
    - include_tasks: "tasks/setup-{{ flavour }}.yml"
    - include_tasks: "tasks/setup-{{ item }}.yml"
      loop: [Debian, Other]
    - include_tasks:
        file: "tasks/setup-{{ ansible_system }}.yml"
"#,
            ),
            (
                "tasks/setup-Debian.yml",
                "- copy: { dest: \"{{ playbook_dir }}/out/debian-{{ item | default('plain') }}\", content: x }\n",
            ),
            (
                "tasks/setup-Other.yml",
                "- copy: { dest: \"{{ playbook_dir }}/out/other\", content: x }\n",
            ),
            (
                "tasks/setup-Linux.yml",
                "- copy: { dest: \"{{ playbook_dir }}/out/linux\", content: x }\n",
            ),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let mut made: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert_eq!(made, ["debian-Debian", "debian-plain", "linux", "other"]);
}

#[test]
fn a_templated_include_that_names_no_file_fails_the_host_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - include_tasks: \"setup-{{ 'Nope' }}.yml\"\n    - debug: msg=after\n",
        )],
        &[],
    );
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("setup-Nope.yml' not found"), "{out}");
    assert!(!out.contains("after"), "{out}");
    assert!(recap_line(&out).contains("failed=1"), "{out}");
}

#[test]
fn an_unsupported_module_in_a_conditional_include_fails_only_when_reached() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: yes
  tasks:
    - include_tasks: setup-FreeBSD.yml
      when: ansible_system == 'FreeBSD'
    - block:
        - include_tasks: setup-FreeBSD.yml
      when: ansible_system == 'FreeBSD'
    - copy: { dest: "{{ playbook_dir }}/ran", content: x }
"#,
        ),
        ("setup-FreeBSD.yml", "- snap: { name: nginx }\n"),
    ];
    let (code, out, err) = run(dir.path(), &files, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(dir.path().join("ran").exists());

    // Reached, the same file fails the host with the file's own position.
    let dir = tempfile::tempdir().unwrap();
    let reached = files[0].1.replace("== 'FreeBSD'", "!= 'FreeBSD'");
    let (code, out, err) = run(dir.path(), &[("pb.yaml", &reached), files[1]], &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("setup-FreeBSD.yml:1:3"), "{out}");
    assert!(!dir.path().join("ran").exists());

    // An include that certainly runs is still checked before anything runs.
    let dir = tempfile::tempdir().unwrap();
    let certain = files[0].1.replace(
        "      when: ansible_system == 'FreeBSD'\n    - block",
        "    - block",
    );
    let (code, _out, err) = run(dir.path(), &[("pb.yaml", &certain), files[1]], &[]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("setup-FreeBSD.yml:1:3"), "{err}");
    assert!(!dir.path().join("ran").exists());
}

/// geerlingguy.security's `fail2ban.yml` (included when fail2ban is wanted) holds a `package:
/// enablerepo: epel` task guarded by `when: ansible_os_family == 'RedHat'`: on a Debian host
/// Ansible skips it, and so does rdeploy now; the host used to fail at the include.
#[test]
fn a_refused_task_in_a_conditional_include_fails_only_a_host_that_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: yes
  vars: { want_it: true }
  tasks:
    - include_tasks: extra.yml
      when: want_it
    - copy: { dest: "{{ playbook_dir }}/after", content: x }
"#,
        ),
        (
            "extra.yml",
            r#"
- copy: { dest: "{{ playbook_dir }}/first", content: x }
- snap: { name: nginx }
  when: ansible_system == 'FreeBSD'
- copy: { dest: "{{ playbook_dir }}/second", content: x }
"#,
        ),
    ];
    let (code, out, err) = run(dir.path(), &files, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    for f in ["first", "second", "after"] {
        assert!(dir.path().join(f).exists(), "{f}\n{out}");
    }
    assert!(out.contains("skipping: [localhost]"), "{out}");

    // Reached on this host, the task fails there, after the ones before it ran.
    let dir = tempfile::tempdir().unwrap();
    let runs = files[1]
        .1
        .replace("  when: ansible_system == 'FreeBSD'\n", "");
    let (code, out, err) = run(dir.path(), &[files[0], ("extra.yml", &runs)], &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.contains("extra.yml:3:3: error: module 'snap' is not supported by rdeploy"),
        "{out}"
    );
    assert!(dir.path().join("first").exists());
    assert!(!dir.path().join("second").exists());

    // `rdeploy plan` still lists the mistake under the include.
    let out = support::rdeploy_in_repo()
        .current_dir(dir.path())
        .args(["plan", "pb.yaml", "-i", "inv.yaml"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("module 'snap' is not supported by rdeploy"),
        "{text}"
    );
}

#[test]
fn guarded_expressions_are_not_refused_as_undefined() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: no
  vars:
    defined_one: 5
  tasks:
    - debug: { msg: "a={{ foo.bar | default('x') }}" }
    - debug: { msg: "b={{ foo.bar.baz | d('y') }}" }
    - debug: { msg: "c={{ x if x is defined else 'z' }}" }
    - debug: { msg: "d={{ nothing | default(omit) }}" }
    - debug: { msg: never }
      when: x is defined and x
    - debug: { msg: "e={{ defined_one | default(1) }}" }
"#,
        )],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    for want in ["a=x", "b=y", "c=z", "e=5"] {
        assert!(out.contains(want), "{want} in {out}");
    }
    assert!(!out.contains("never"), "{out}");
    assert!(recap_line(&out).contains("skipped=1"), "{out}");
}

#[test]
fn an_unguarded_undefined_attribute_is_still_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: { msg: \"{{ foo.bar }}\" }\n    - debug: { msg: \"{{ foo.bar | default('x') }} {{ baz.qux }}\" }\n",
        )],
        &[],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        err.contains("pb.yaml:4:") && err.contains("'foo' is undefined"),
        "{err}"
    );
    assert!(
        err.contains("pb.yaml:5:") && err.contains("'baz' is undefined"),
        "{err}"
    );
}

#[test]
fn loop_variables_inside_hostvars_are_not_undefined() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: yes
  tasks:
    - debug:
        msg: "names={% for b in groups['local'] %}{{ hostvars[b]['ansible_hostname'] | length > 0 }}{% endfor %}"
    - debug:
        msg: "sys={{ hostvars[inventory_hostname]['ansible_facts']['system'] }}"
"#,
        )],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("names=True") || out.contains("names=true"),
        "{out}"
    );
    assert!(out.contains("sys=Linux"), "{out}");
}

#[test]
fn a_templated_include_vars_sets_the_variables_of_the_file_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: yes
  tasks:
    - include_vars: "vars/{{ ansible_facts.system }}.yml"
    - debug: { msg: "os_var={{ os_var }}" }
    - include_vars:
        file: "vars/{{ 'Other' }}.yml"
    - debug: var=other_var
"#,
            ),
            ("vars/Linux.yml", "os_var: linux-value\n"),
            ("vars/FreeBSD.yml", "os_var: bsd-value\n"),
            ("vars/Other.yml", "other_var: 7\n"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("os_var=linux-value"), "{out}");
    assert!(out.contains("\"other_var\":7"), "{out}");
}

#[test]
fn names_set_at_run_time_under_names_known_only_then_are_not_refused_after_that_task() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: yes
  tasks:
    - command: echo svc_user
      register: r
      changed_when: false
    - set_fact:
        "{{ r.stdout }}": nobody
    - debug: { msg: "user={{ svc_user }}" }
    - include_vars:
        file: "{{ item }}"
        name: os_vars
      with_first_found:
        - files: ["{{ ansible_facts.system }}.yml"]
    - set_fact:
        "{{ item.key }}": "{{ item.value }}"
      with_dict: "{{ os_vars }}"
    - debug: { msg: "os={{ os_name }}" }
- hosts: localhost
  gather_facts: no
  tasks:
    - debug: { msg: "again={{ svc_user }}" }
"#,
            ),
            ("vars/Linux.yml", "os_name: linux\n"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    for want in ["user=nobody", "os=linux", "again=nobody"] {
        assert!(out.contains(want), "{want} in {out}");
    }
}

#[test]
fn before_a_task_that_sets_unknown_names_and_for_filters_after_it_the_check_still_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - command: echo svc_user
      register: r
    - debug: { msg: "{{ early }}" }
    - set_fact:
        "{{ r.stdout }}": nobody
    - debug: { msg: "{{ svc_user | to_jsn }}" }
"#,
        )],
        &[],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        err.contains("pb.yaml:7:21: error: 'early' is undefined"),
        "{err}"
    );
    assert!(
        err.contains("pb.yaml:10:21: error: unknown filter 'to_jsn', did you mean 'to_json'?"),
        "{err}"
    );
    assert!(!err.contains("svc_user' is undefined"), "{err}");
}

#[test]
fn facts_an_earlier_play_gathered_are_read_through_hostvars_by_a_later_play() {
    // ansible-examples lamp_haproxy rolling_update.yml: gather on the monitoring hosts, then
    // template their addresses into the web servers' config.
    let dir = tempfile::tempdir().unwrap();
    let inv = "monitoring:\n  hosts:\n    mon1:\n      ansible_connection: local\nweb:\n  hosts:\n    web1:\n      ansible_connection: local\n";
    let pb = |expr: &str| {
        format!(
            "- hosts: monitoring\n  tasks: []\n- hosts: web\n  gather_facts: no\n  tasks:\n    - debug:\n        msg: \"sys={{% for h in groups.monitoring %}}{{{{ hostvars[h].{expr} }}}}{{% endfor %}}\"\n"
        )
    };
    let (code, out, err) = run(
        dir.path(),
        &[("inv.yaml", inv), ("pb.yaml", &pb("ansible_system"))],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("sys=Linux"), "{out}");
    let (code, out, err) = run(
        dir.path(),
        &[("inv.yaml", inv), ("pb.yaml", &pb("ansible_sytem"))],
        &[],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(err.contains("pb.yaml:7:14: error: "), "{err}");
    assert!(err.contains("ansible_sytem"), "{err}");
}

#[test]
fn inventory_values_are_templates_rendered_when_used() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("custom-state");
    let inv = format!(
        "local:\n  hosts:\n    localhost:\n      ansible_connection: local\n      root_dir: {}\n      rdeploy_state_dir: \"{{{{ root_dir }}}}/custom-state\"\n      literal: !unsafe \"{{{{ not_rendered }}}}\"\n",
        dir.path().display()
    );
    let (code, out, err) = run(
        dir.path(),
        &[
            ("inv.yaml", &inv),
            (
                "group_vars/all.yml",
                "base_dir: \"{{ playbook_dir }}/srv\"\napp_dir: \"{{ base_dir }}/app\"\n",
            ),
            (
                "pb.yaml",
                r#"
- hosts: all
  gather_facts: no
  tasks:
    - file: { path: "{{ app_dir }}", state: directory }
    - copy: { dest: "{{ app_dir }}/literal", content: "{{ literal }}" }
"#,
            ),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let app = dir.path().join("srv/app");
    assert!(app.is_dir(), "{out}");
    assert_eq!(
        std::fs::read_to_string(app.join("literal")).unwrap(),
        "{{ not_rendered }}"
    );
    // The templated state directory is where the backups went.
    assert!(
        state.join("backups").is_dir() || state.join("runs").is_dir(),
        "{out}"
    );
}

#[test]
fn an_inventory_variable_that_refers_to_itself_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            ("group_vars/all.yml", "a: \"{{ b }}\"\nb: \"{{ a }}\"\n"),
            (
                "pb.yaml",
                "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug: { msg: \"{{ a }}\" }\n",
            ),
        ],
        &[],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(err.contains("pb.yaml:4:"), "{err}");
    assert!(
        err.contains("recurs") || err.contains("cycle") || err.contains("itself"),
        "{err}"
    );
}

#[test]
fn real_ansible_modules_and_arguments_are_not_supported_not_unknown() {
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
    - sefcontext: { target: '/srv(/.*)?', setype: httpd_sys_content_t }
    - yumm: { name: nginx }
    - lineinfle: { path: /tmp/x, line: y }
    - snap:
        name: left-pad
    - file: { path: /tmp/x, attributes: i }
    - file: { path: /tmp/x, stat: touch }
    - my_module: { a: 1 }
"#,
            ),
            ("library/my_module.py", "# a custom Ansible module\n"),
        ],
        &[],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    for want in [
        "pb.yaml:5:7: error: module 'sefcontext' is not supported by rdeploy",
        "pb.yaml:6:7: error: unknown module 'yumm'",
        "pb.yaml:7:7: error: unknown module 'lineinfle', did you mean 'lineinfile'?",
        "pb.yaml:8:7: error: module 'snap' is not supported by rdeploy",
        "error: argument 'attributes' of module 'file' is not supported by rdeploy",
        "error: unknown argument 'stat' for module 'file', did you mean 'state'?",
        "module 'my_module' is a Python plugin",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    assert!(!err.contains("yumm' is not supported"), "{err}");
}

#[test]
fn set_fact_with_a_templated_key_sets_the_name_it_renders_to() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: no
  vars:
    pairs: {alpha: one, beta: two}
  tasks:
    - set_fact: "{{ item }}=moo"
      with_items: [foo, bar]
    - set_fact:
        "{{ item.key }}_v": "{{ item.value }}"
      loop: "{{ pairs | dict2items }}"
    - set_fact: "{{ item.key }}={{ item.value | upper }}"
      with_dict: {gamma: three}
    - set_fact:
        "{{ 'bad name' }}": x
      ignore_errors: true
    - debug:
        msg: "got {{ foo }} {{ bar }} {{ alpha_v }} {{ beta_v }} {{ gamma }}"
"#,
        )],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("got moo moo one two THREE"), "{out}");
    assert!(
        out.contains("Invalid variable name 'bad name' (from '{{ 'bad name' }}')"),
        "{out}"
    );
    assert!(recap_line(&out).contains("ignored=1"), "{out}");
}

#[test]
fn rescue_sees_ansible_failed_task_and_ansible_failed_result() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - block:
        - name: EXPECTED FAILURE
          fail: msg=boom
      rescue:
        - assert:
            that:
              - ansible_failed_task is defined
              - ansible_failed_result is defined
        - debug:
            msg: "caught {{ ansible_failed_task.name }} / {{ ansible_failed_task.action }} / {{ ansible_failed_result.msg }} / {{ ansible_failed_result.failed }}"
"#,
        )],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("caught EXPECTED FAILURE / fail / boom / True"),
        "{out}"
    );
    assert!(recap_line(&out).contains("rescued=1"), "{out}");
}

#[test]
fn ansible_managed_in_a_template_is_ansibles_default_text() {
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
    - template: { src: conf.j2, dest: "{{ playbook_dir }}/default.conf" }
    - template: { src: conf.j2, dest: "{{ playbook_dir }}/own.conf" }
      vars:
        ansible_managed: managed by ops
"#,
            ),
            (
                "templates/conf.j2",
                "# {{ ansible_managed }}\n# from {{ template_path }} to {{ template_destpath | basename }}\n",
            ),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    assert_eq!(
        read("default.conf"),
        "# Ansible managed\n# from conf.j2 to default.conf\n"
    );
    assert!(read("own.conf").starts_with("# managed by ops\n"));
}

#[test]
fn a_templated_loop_var_names_the_loop_variable() {
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
    - include_tasks: inc.yml
      loop: [value]
      loop_control:
        loop_var: "{{ loop_var_name }}"
      vars:
        loop_var_name: templated_name
    - copy:
        content: "direct {{ other }}"
        dest: "{{ playbook_dir }}/out-{{ other }}"
      loop: [one]
      loop_control:
        loop_var: "{{ 'other' }}"
"#,
            ),
            (
                "inc.yml",
                "- assert:\n    that:\n      - templated_name == 'value'\n",
            ),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out-one")).unwrap(),
        "direct one"
    );
    assert!(recap_line(&out).contains("failed=0"), "{out}");
}

#[test]
fn a_relative_dest_is_resolved_in_the_modules_working_directory() {
    // On the local connection that is the directory rdeploy runs in (over SSH, the login
    // user's home), as Ansible's modules resolve it.
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - copy: { content: "x\n", dest: ./rel.txt }
    - file: { path: rel-dir, state: directory }
    - lineinfile: { path: rel-dir/../rel.txt, line: y }
"#,
        )],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("rel.txt")).unwrap(),
        "x\ny\n"
    );
    assert!(dir.path().join("rel-dir").is_dir());
}

#[test]
fn a_loop_over_an_undefined_variable_is_skipped_when_the_task_is() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - name: Undefined var, skipped
      debug:
      with_items:
        - '{{ baz }}'
      when: false
"#,
        )],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(recap_line(&out).contains("skipped=1"), "{out}");
}

#[test]
fn include_vars_dir_loads_the_files_ansible_picks() {
    // `dir:` was accepted before the run and then failed with "`dir:` is not yet";
    // `ignore_unknown_extensions` was refused.
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
    - include_vars: {dir: vars/all, depth: 1}
    - assert: {that: ["a == 2", "b == 1", "c is not defined"]}
    - include_vars: {dir: vars/all}
    - assert: {that: ["c == 'deep'"]}
    - include_vars:
        dir: vars/web
        ignore_unknown_extensions: true
        extensions: ['', yml]
      register: r
    - assert: {that: ["d == 1", "e == 1", "f is not defined", "r.ansible_included_var_files | length == 2"]}
    - include_vars: {dir: vars/web}
      ignore_errors: true
"#,
            ),
            ("vars/all/10.yml", "a: 1\n"),
            ("vars/all/20.yaml", "a: 2\nb: 1\n"),
            ("vars/all/sub/x.yml", "c: deep\n"),
            ("vars/web/app.yml", "d: 1\n"),
            ("vars/web/noext", "e: 1\n"),
            ("vars/web/readme.txt", "f: 1\n"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("vars/web/noext does not have a valid extension: yaml, yml, json"),
        "{out}"
    );
    assert!(recap_line(&out).contains("failed=0"), "{out}");
    assert!(recap_line(&out).contains("ignored=1"), "{out}");
}

#[test]
fn every_include_vars_argument_and_set_fact_cacheable_work_as_in_ansible() {
    // Issue 14: `include_vars: dir` once passed validation and failed on the host. Each
    // documented argument, in a role and beside the playbook; the assertions hold under
    // ansible-playbook 2.19 too.
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: no
  vars: {m: {y: 2}}
  tasks:
    - include_vars:
        dir: vars/d
        files_matching: '^[0-9]'
        ignore_files: [skip.yml]
        name: bundle
        depth: 2
      register: r
    - assert:
        that:
          - "bundle == {'a': 1, 'm': {'x': 1}, 'b': 2, 'j': 4}"
          - r.ansible_included_var_files | map('basename') | list == ['10-a.yml', '20-b.yaml', '30.json']
    - include_vars:
        dir: vars/d
        ignore_files: skip.yml 30.json
        extensions: [yml]
        ignore_unknown_extensions: true
        hash_behaviour: merge
      register: r
    - assert:
        that:
          - "m == {'y': 2, 'x': 1}"
          - r.ansible_included_var_files | map('basename') | list == ['10-a.yml', 'x.yml', 'y.yml']
          - c is not defined
    - include_vars: dir=vars/d files_matching=^sk
    - set_fact: {plain: 1}
    - set_fact: {cached: 1, cacheable: true}
    - assert:
        that: ["c == 3", "ansible_facts.cached == 1", "ansible_facts.plain is not defined"]
    - include_role: {name: r}
"#,
            ),
            ("vars/d/10-a.yml", "a: 1\nm: {x: 1}\n"),
            ("vars/d/20-b.yaml", "b: 2\n"),
            ("vars/d/30.json", "{\"j\": 4}\n"),
            ("vars/d/skip.yml", "c: 3\n"),
            ("vars/d/sub/x.yml", "deep: 1\n"),
            ("vars/d/sub/deeper/y.yml", "deeper: 1\n"),
            ("roles/r/vars/f.yml", "role_file: 1\n"),
            ("roles/r/vars/extra/a.yml", "role_dir: 1\n"),
            (
                "roles/r/tasks/main.yml",
                r#"- include_vars: f.yml
- include_vars: {dir: extra}
- assert: {that: ["role_file == 1", "role_dir == 1"]}
"#,
            ),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.matches("All assertions passed").count(), 4, "{out}");
    assert!(recap_line(&out).contains("failed=0"), "{out}");
}

#[test]
fn include_vars_with_a_file_and_a_dir_only_argument_is_refused_before_the_run() {
    // ansible-playbook fails the task with the same words when it reaches it.
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - include_vars: {file: one.yml, depth: 1}\n",
            ),
            ("one.yml", "z: 1\n"),
        ],
        &[],
    );
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("You are mixing file only and dir only arguments, these are incompatible"),
        "{out}\n{err}"
    );
    assert!(!out.contains("TASK ["), "{out}");
}

#[test]
fn a_meta_action_rendered_to_an_unknown_name_fails_instead_of_doing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: no
  vars: { what: end_world }
  tasks:
    - meta: "{{ what }}"
"#,
        )],
        &[],
    );
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("invalid meta action requested: end_world"),
        "{out}\n{err}"
    );
}

#[test]
fn gather_facts_as_a_task_was_refused_and_gathers_as_setup() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - gather_facts:
        gather_subset: [min]
        filter: [ansible_hostname]
      register: g
    - ansible.builtin.gather_facts:
    - assert:
        that:
          - ansible_hostname == g.ansible_facts.ansible_hostname
          - g.ansible_facts.hostname is not defined
          - ansible_facts.distribution is defined
"#,
        )],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("All assertions passed"), "{out}");
}

const TWO_LOCAL_HOSTS: &str = "all:\n  hosts:\n    h1: { ansible_connection: local }\n    h2: { ansible_connection: local }\n";

#[test]
fn a_run_once_set_fact_reaches_every_host_of_the_batch_also_through_an_include_apply() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            ("inv.yaml", TWO_LOCAL_HOSTS),
            (
                "pb.yaml",
                r#"
- hosts: all
  gather_facts: no
  vars: { lola: untouched }
  tasks:
    - set_fact: { direct: set }
      run_once: true
    - include_tasks:
        file: inc.yml
        apply: { run_once: true }
      run_once: true
    - assert:
        that: [direct == 'set', lola == 'wiseman']
"#,
            ),
            ("inc.yml", "- set_fact: { lola: wiseman }\n"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.matches("All assertions passed").count(), 2, "{out}");
}

#[test]
fn apply_keywords_of_an_include_reach_every_included_task() {
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
    - include_tasks:
        file: inc.yml
        apply:
          ignore_errors: true
          vars: { greeting: from-apply }
    - debug: msg=after
"#,
            ),
            (
                "inc.yml",
                "- command: /bin/false\n- debug: msg=\"{{ greeting }}\"\n",
            ),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("FAILED! (ignored)"), "{out}");
    assert!(out.contains("from-apply"), "{out}");
    assert!(out.contains("after"), "{out}");
    assert!(recap_line(&out).contains("ignored=1"), "{out}");
}

#[test]
fn an_unknown_keyword_under_apply_is_an_error_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: { dest: \"{{ playbook_dir }}/touched\", content: x }\n    - include_tasks:\n        file: inc.yml\n        apply: { ignore_erors: true }\n",
            ),
            ("inc.yml", "- debug: msg=hi\n"),
        ],
        &[],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(err.contains("pb.yaml:7:18"), "{err}");
    assert!(
        err.contains("ignore_errors"),
        "did-you-mean expected: {err}"
    );
    assert!(!dir.path().join("touched").exists());
}

#[test]
fn a_task_environment_adds_to_the_play_and_block_environment_instead_of_replacing_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: no
  environment: { A: play, C: play }
  tasks:
    - block:
        - shell: echo "$A $B $C $D"
          environment: [{ C: task }, { D: listed }]
          register: r
        - debug: var=r.stdout
      environment: { B: block }
"#,
        )],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(r#""r.stdout":"play block task listed""#),
        "{out}"
    );
}

#[test]
fn a_templated_no_log_ignore_errors_or_check_mode_that_is_not_a_boolean_fails_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: no
  vars: { x: maybe, secret: hunter2 }
  tasks:
    - debug: msg="{{ secret }}"
      no_log: "{{ x }}"
      ignore_errors: true
    - debug: msg=skipped
      no_log: "{{ x }}"
      when: false
    - copy: { dest: "{{ playbook_dir }}/written", content: x }
      check_mode: "{{ x }}"
      ignore_errors: true
    - debug: msg=last
      ignore_errors: "{{ x }}"
    - debug: msg=never
"#,
        )],
        &[],
    );
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(!out.contains("hunter2"), "{out}");
    assert!(
        out.contains("check_mode (pb.yaml:13:19): 'maybe' is not a boolean"),
        "{out}"
    );
    assert!(
        out.contains("ignore_errors (pb.yaml:16:22): 'maybe' is not a boolean"),
        "{out}"
    );
    assert!(!dir.path().join("written").exists());
    assert!(!out.contains("never"), "{out}");
    assert!(recap_line(&out).contains("failed=1"), "{out}");
    assert!(recap_line(&out).contains("skipped=1"), "{out}");
    assert!(recap_line(&out).contains("ignored=2"), "{out}");
}

#[test]
fn first_of_a_registered_list_is_not_called_undefined_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - command: printf 'hi\nthere\n'
      register: result
    - set_fact:
        found: "{{ query('first_found', files=['missing', 'pb.yaml'], paths=[playbook_dir], errors='ignore') }}"
    - assert:
        that:
          - result.stdout_lines | first == 'hi'
          - result.stdout_lines[1] == 'there'
          - (found | first) is search('pb.yaml')
    - debug: msg="{{ result.stdout_lines | last }} {{ result.stdout_lines | flatten | length }}"
"#,
        )],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(r#"{"msg":"there 2"}"#), "{out}");
}

#[test]
fn include_vars_hash_behaviour_merge_merges_into_the_variable_the_task_sees() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                r#"
- hosts: localhost
  gather_facts: no
  vars:
    conf: { a: 1, nested: { x: 1, y: 1 }, l: [1, 2] }
  tasks:
    - include_vars: { file: more.yml, hash_behaviour: merge }
    - debug: msg="{{ conf | to_json }}"
    - include_vars: { file: more.yml, hash_behaviour: replace }
    - debug: msg="{{ conf | to_json }}"
"#,
            ),
            ("more.yml", "conf: { b: 2, nested: { y: 2 }, l: [3] }\n"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let msgs: Vec<&str> = out.lines().filter(|l| l.contains("\"msg\"")).collect();
    assert_eq!(
        msgs,
        [
            r#"ok: [localhost] => {"msg":"{\"a\": 1, \"nested\": {\"x\": 1, \"y\": 2}, \"l\": [3], \"b\": 2}"}"#,
            r#"ok: [localhost] => {"msg":"{\"b\": 2, \"nested\": {\"y\": 2}, \"l\": [3]}"}"#,
        ],
        "{out}"
    );
}

#[test]
fn role_alias_index_var_search_path_and_dates_work_as_in_ansible() {
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
    - include_role: { role: r }
    - include_tasks: idx.yml
      loop: [a, b]
      loop_control: { index_var: my_idx }
    - debug: msg="{{ '%Y-%m-%d' | strftime(86400 * 365, utc=true) }} {{ now(fmt='%Y') | length }} {{ ('2026-12-05 10:20:30' | to_datetime).day }}"
"#,
            ),
            (
                "roles/r/tasks/main.yml",
                "- debug: msg=\"{{ ansible_search_path | map('basename') | join(',') }}\"\n",
            ),
            ("idx.yml", "- debug: msg=\"{{ item }}={{ my_idx }}\"\n"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let base = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        out.contains(&format!(r#"{{"msg":"r,tasks,{base}"}}"#)),
        "{out}"
    );
    assert!(out.contains(r#"{"msg":"a=0"}"#), "{out}");
    assert!(out.contains(r#"{"msg":"b=1"}"#), "{out}");
    assert!(out.contains(r#"{"msg":"1971-01-01 4 5"}"#), "{out}");
}

#[test]
fn yum_is_dnf_as_ansible_core_redirects_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - yum: { name: nginx, state: present }\n    - ansible.builtin.yum: { name: nginx, bugfix: true }\n",
        )],
        &["--syntax-check"],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        err.contains(
            "pb.yaml:5:43: error: argument 'bugfix' of module 'dnf' is not supported by rdeploy"
        ),
        "{err}"
    );
    assert_eq!(
        err.matches("error:").count(),
        1,
        "the first yum task is dnf's: {err}"
    );
}

#[test]
fn ansible_version_says_the_ansible_language_level_rdeploy_follows() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: msg=\"{{ ansible_version.full }} {{ ansible_version.major }} {{ ansible_version.full is version_compare('2.12', '<') }}\"\n",
        )],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(r#"{"msg":"2.19.0 2 False"}"#), "{out}");
}

/// Issue 14: `command`, `shell`, `raw`, `service`, `systemd` and `wait_for` are typed modules.
/// What they implement loads (`force`, `no_block`, `daemon_reexec` and `use: sysvinit` were
/// refused before; `shell` reads `stdin_add_newline`), and what they do not is refused before
/// the run, by name.
#[test]
fn command_and_service_arguments_load_or_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - systemd_service: { name: app, state: started, force: true, no_block: yes, daemon-reexec: true }
    - service: { name: app, state: restarted, sleep: 1, use: sysvinit }
    - shell: cat
      args: { stdin: x, stdin_add_newline: false, strip_empty_ends: no }
    - command: echo hi chdir=/tmp
    - raw: echo hi
    - wait_for: { path: /tmp, state: present, timeout: 1 }
"#,
        )],
        &["--syntax-check"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            r#"
- hosts: localhost
  gather_facts: no
  tasks:
    - service: { name: app, state: started, use: openrc }
    - service: { name: app, state: started, pattern: app }
    - wait_for: { port: 80, state: drained }
    - wait_for: { port: 80, path: /x }
    - command: { cmd: ls, executable: /bin/bash }
    - raw: { executable: /bin/sh }
    - systemd: { enabled: true }
"#,
        )],
        &["--syntax-check"],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    for want in [
        "pb.yaml:5:50: error: service: use: openrc is not supported by rdeploy (auto, service, systemd or sysvinit)",
        "pb.yaml:6:45: error: argument 'pattern' of module 'service' is not supported by rdeploy",
        "pb.yaml:7:36: error: state 'drained' of module 'wait_for' is not supported by rdeploy",
        "pb.yaml:8:7: error: arguments 'port' and 'path' of module 'wait_for' are mutually exclusive",
        "pb.yaml:9:27: error: unknown argument 'executable' for module 'command'",
        "pb.yaml:10:7: error: module 'raw' needs free-form text",
        "pb.yaml:11:7: error: module 'systemd' needs 'name' with 'state', 'enabled', 'masked'",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
}

#[test]
fn task_names_show_rendered_with_the_first_hosts_variables_and_never_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                "- hosts: all\n  gather_facts: false\n  vars: {svc: nginx}\n  tasks:\n    - name: \"Configure {{ svc }} on {{ inventory_hostname }}\"\n      debug: msg=x\n    - set_fact: {r: 5}\n    - name: \"registered {{ r }}, undefined {{ nope }}\"\n      debug: msg=y\n    - name: \"broken {{ a \"\n      debug: msg=z\n    - name: Loop over users\n      include_tasks: user.yaml\n      loop: [alice, bob]\n      loop_control: {loop_var: user}\n",
            ),
            (
                "user.yaml",
                "- name: \"Manage user {{ user }}\"\n  debug: msg=\"{{ user }}\"\n",
            ),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    let tasks: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("TASK ["))
        .filter_map(|l| l.split_once(']').map(|(n, _)| n))
        .collect();
    // As ansible-playbook: rendered with the host's variables, registered ones and an
    // include's loop variable; a name that does not render is shown as written (Ansible
    // 2.19 puts an `<< error ... >>` note there), and neither is refused before the run.
    assert_eq!(
        tasks,
        [
            "Configure nginx on localhost",
            "set_fact",
            "registered 5, undefined {{ nope }}",
            "broken {{ a ",
            "Loop over users",
            "Manage user alice",
            "Manage user bob"
        ],
        "{out}"
    );
}

#[test]
fn a_looping_include_counts_in_the_recap_once_per_item_it_included() {
    // The recaps are ansible-playbook 2.19's for the same playbooks.
    for (tasks, recap) in [
        (
            "    - include_tasks: inc.yaml\n      loop: [1, 2]\n    - include_tasks: inc.yaml\n    - include_role: {name: r}\n      loop: [1, 2]\n",
            "localhost : ok=10 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0",
        ),
        (
            "    - include_tasks: inc.yaml\n      loop: [1, 2, 3]\n      when: item != 2\n",
            "localhost : ok=4 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0",
        ),
        (
            "    - include_tasks: inc.yaml\n      loop: [1, 2]\n      when: false\n",
            "localhost : ok=0 changed=0 unreachable=0 failed=0 skipped=1 rescued=0 ignored=0",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let pb = format!("- hosts: all\n  gather_facts: false\n  tasks:\n{tasks}");
        let (code, out, err) = run(
            dir.path(),
            &[
                ("pb.yaml", &pb),
                ("inc.yaml", "- debug: msg=hi\n"),
                ("roles/r/tasks/main.yaml", "- debug: msg=role\n"),
            ],
            &[],
        );
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(recap_line(&out), recap, "{tasks}\n{out}");
    }
}

#[test]
fn a_dict_indexed_by_a_key_known_at_run_time_is_not_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[(
            "pb.yaml",
            "- hosts: all\n  gather_facts: false\n  vars:\n    pkgs: {Debian: python3 sudo, RedHat: python3}\n  tasks:\n    - command: echo Debian\n      register: r\n      changed_when: false\n    - set_fact: {distro: Debian}\n    - debug: {msg: \"{{ pkgs[distro] }}\"}\n    - debug: {msg: \"{{ pkgs[r.stdout] }}\"}\n",
        )],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches(r#"{"msg":"python3 sudo"}"#).count(), 2, "{out}");
    // A missing key still fails the host when the run reaches it, as in Ansible.
    let (code, out, _) = run(
        dir.path(),
        &[(
            "pb.yaml",
            "- hosts: all\n  gather_facts: false\n  vars:\n    pkgs: {Debian: python3}\n  tasks:\n    - set_fact: {distro: Suse}\n    - debug: {msg: \"{{ pkgs[distro] }}\"}\n",
        )],
        &[],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("fatal: [localhost]"), "{out}");
}

#[test]
fn file_touch_under_check_is_a_predicted_change_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("touched");
    let pb = format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - file: {{path: '{}', state: touch, mode: '0640'}}\n",
        target.display()
    );
    let (code, out, err) = run(dir.path(), &[("pb.yaml", &pb)], &["--check"]);
    assert_eq!(code, 0, "{out}{err}");
    // ansible-playbook 2.19 reports the same: `file` supports check mode.
    assert_eq!(
        recap_line(&out),
        "localhost : ok=1 changed=1 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0",
        "{out}"
    );
    assert!(!target.exists());
}

#[test]
fn a_set_fact_of_run_time_names_under_an_undecidable_when_still_opens_the_check() {
    // dev-sec's pattern: set each OS default unless the user set it already.
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &[
            (
                "pb.yaml",
                "- hosts: all\n  gather_facts: false\n  vars:\n    ssh_owner: admin\n  tasks:\n    - include_vars: {file: os.yml, name: os_vars}\n    - set_fact:\n        \"{{ item.key }}\": \"{{ item.value }}\"\n      when: not lookup('varnames', '^' + item.key + '$')\n      with_dict: \"{{ os_vars }}\"\n    - debug: {msg: \"{{ ssh_owner }} {{ ssh_group }}\"}\n",
            ),
            ("os.yml", "ssh_owner: root\nssh_group: wheel\n"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(r#"{"msg":"admin wheel"}"#), "{out}");
}
