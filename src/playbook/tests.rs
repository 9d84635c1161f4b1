//! Loader tests: a table of malformed playbooks with their exact first error line, and
//! positive tests over the examples and the model's walks.

use std::path::{Path, PathBuf};

use super::*;
use crate::diag::Diagnostics;

/// Writes `files` under a fresh temp dir and loads the first one.
fn load_files(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Playbook, Diagnostics>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    let res = load(&dir.path().join(files[0].0), &LoadOptions::default());
    (dir, res)
}

/// All error lines, with the temp dir prefix removed.
fn errors(files: &[(&str, &str)]) -> Vec<String> {
    let (dir, res) = load_files(files);
    let prefix = format!("{}/", dir.path().display());
    match res {
        Ok(_) => Vec::new(),
        Err(d) => {
            d.0.iter()
                .map(|e| {
                    e.to_string()
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .replace(&prefix, "")
                })
                .collect()
        }
    }
}

const OK_TASK: &str = "- hosts: all\n  tasks:\n";

/// (playbook text, extra files, expected first error line)
#[allow(clippy::type_complexity)]
fn cases() -> Vec<(
    &'static str,
    String,
    Vec<(&'static str, &'static str)>,
    &'static str,
)> {
    let t = |body: &str| format!("{OK_TASK}{body}");
    vec![
        (
            "unknown play keyword",
            "- hosts: all\n  serail: 2\n".into(),
            vec![],
            "pb.yml:2:3: error: unknown play keyword 'serail', did you mean 'serial'?",
        ),
        (
            "unknown task keyword",
            t("    - debug: {msg: hi}\n      wehn: x\n"),
            vec![],
            "pb.yml:4:7: error: unknown task keyword 'wehn', did you mean 'when'?",
        ),
        (
            "unknown block keyword",
            t("    - block:\n        - ping:\n      rescu:\n        - ping:\n"),
            vec![],
            "pb.yml:5:7: error: unknown block keyword 'rescu', did you mean 'rescue'?",
        ),
        (
            "unknown module",
            t("    - cpoy: {src: a, dest: b}\n"),
            vec![],
            "pb.yml:3:7: error: unknown module 'cpoy', did you mean 'copy'?",
        ),
        (
            "unknown collection module",
            t("    - community.general.nmcli: {conn_name: eth0}\n"),
            vec![],
            "pb.yml:3:7: error: module 'community.general.nmcli' is not supported by rdeploy",
        ),
        (
            "two modules",
            t("    - copy: {content: a, dest: /b}\n      template: {src: a, dest: /b}\n"),
            vec![],
            "pb.yml:4:7: error: conflicting action statements: copy, template",
        ),
        (
            "no module",
            t("    - name: nothing\n      when: x\n"),
            vec![],
            "pb.yml:3:7: error: no module or action found in task",
        ),
        (
            "unknown module argument",
            t("    - copy: {content: a, dest: /b, dset: /c}\n"),
            vec![],
            "pb.yml:3:36: error: unknown argument 'dset' for module 'copy', did you mean 'dest'?",
        ),
        (
            "unknown module argument with suggestion",
            t("    - file:\n        path: /x\n        stat: directory\n"),
            vec![],
            "pb.yml:5:9: error: unknown argument 'stat' for module 'file', did you mean 'state'?",
        ),
        (
            "missing required argument",
            t("    - template:\n        src: a.j2\n"),
            vec![],
            "pb.yml:3:7: error: missing required argument 'dest' for module 'template'",
        ),
        (
            "bad choice",
            t("    - service: {name: x, state: runing}\n"),
            vec![],
            "pb.yml:3:33: error: value 'runing' for argument 'state' of module 'service' is not one of: started, stopped, restarted, reloaded",
        ),
        (
            "serial list with a bad item",
            "- hosts: all\n  serial: [1, \"x%\"]\n".into(),
            vec![],
            "pb.yml:2:15: error: invalid serial value 'x%': expected a number of hosts or a percentage like \"25%\"",
        ),
        (
            "serial negative",
            "- hosts: all\n  serial: -1\n".into(),
            vec![],
            "pb.yml:2:11: error: invalid serial value -1: must not be negative",
        ),
        (
            "serial over 100%",
            "- hosts: all\n  serial: \"150%\"\n".into(),
            vec![],
            "pb.yml:2:11: error: invalid serial value '150%': a percentage must be between 0% and 100%",
        ),
        (
            "serial empty list",
            "- hosts: all\n  serial: []\n".into(),
            vec![],
            "pb.yml:2:11: error: 'serial' must not be an empty list",
        ),
        (
            "bad duration",
            "- hosts: all\n  soak: 5x\n".into(),
            vec![],
            "pb.yml:2:9: error: invalid duration '5x' for 'soak': expected a number and a unit (ms, s, m, h), e.g. 500ms or 30s",
        ),
        (
            "bad probe duration",
            "- hosts: all\n  probe: {interval: fast}\n".into(),
            vec![],
            "pb.yml:2:21: error: invalid duration 'fast' for 'interval': expected a number and a unit (ms, s, m, h), e.g. 500ms or 30s",
        ),
        (
            "bad order",
            "- hosts: all\n  order: sortd\n".into(),
            vec![],
            "pb.yml:2:10: error: invalid order 'sortd', did you mean 'sorted'?",
        ),
        (
            "bad on_failure",
            "- hosts: all\n  on_failure: explode\n".into(),
            vec![],
            "pb.yml:2:15: error: invalid on_failure 'explode', expected one of: rollback, halt",
        ),
        (
            "bad bool",
            "- hosts: all\n  become: maybe\n".into(),
            vec![],
            "pb.yml:2:11: error: 'become' must be a boolean, found 'maybe'",
        ),
        (
            "when as a mapping",
            t("    - ping:\n      when: {a: 1}\n"),
            vec![],
            "pb.yml:4:13: error: 'when' must be a condition or a list of conditions, found a mapping",
        ),
        (
            "loop as a plain string",
            t("    - debug: {var: item}\n      loop: mylist\n"),
            vec![],
            "pb.yml:4:13: error: 'loop' must be a list or a template that gives one, found 'mylist'",
        ),
        (
            "missing role",
            "- hosts: all\n  roles:\n    - nope\n".into(),
            vec![],
            "pb.yml:3:7: error: role 'nope' not found",
        ),
        (
            "missing import file",
            t("    - import_tasks: missing.yml\n"),
            vec![],
            "pb.yml:3:21: error: task file 'missing.yml' not found",
        ),
        (
            "missing vars file",
            "- hosts: all\n  vars_files: [nope.yml]\n".into(),
            vec![],
            "pb.yml:2:16: error: vars file 'nope.yml' not found",
        ),
        (
            "include cycle",
            t("    - import_tasks: a.yml\n"),
            vec![
                ("a.yml", "- include_tasks: b.yml\n"),
                ("b.yml", "- import_tasks: a.yml\n"),
            ],
            "b.yml:1:17: error: include cycle: a.yml -> b.yml -> a.yml",
        ),
        (
            "playbook import cycle",
            "- import_playbook: pb.yml\n".into(),
            vec![],
            "pb.yml:1:20: error: import cycle: pb.yml -> pb.yml",
        ),
        (
            "role dependency cycle",
            "- hosts: all\n  roles: [a]\n".into(),
            vec![
                ("roles/a/meta/main.yml", "dependencies: [b]\n"),
                ("roles/b/meta/main.yml", "dependencies:\n  - role: a\n"),
            ],
            "roles/b/meta/main.yml:2:11: error: role dependency cycle: a -> b -> a",
        ),
        (
            "unsupported keyword",
            t("    - command: sleep 10\n      async: 30\n      poll: 0\n"),
            vec![],
            "pb.yml:5:13: error: 'poll: 0' (start the task in the background, then ask async_status) is not supported by rdeploy; rdeploy waits for an async task: give poll a number of seconds, or leave poll and async out",
        ),
        (
            "unsupported loop kind",
            t("    - debug: {var: item}\n      with_cartesian: \"{{ d }}\"\n"),
            vec![],
            "pb.yml:4:7: error: 'with_cartesian' (a loop over the 'cartesian' lookup plugin) is not supported by rdeploy; it has with_file, with_template, with_env, with_pipe, with_fileglob, with_first_found, with_lines, with_password, with_vars, with_varnames, with_flattened, with_items, with_list, with_dict, with_subelements, with_sequence, with_indexed_items, with_together, with_nested",
        ),
        (
            "vars_prompt encrypt",
            "- hosts: all\n  vars_prompt:\n    - name: pw\n      encrypt: sha512_crypt\n".into(),
            vec![],
            "pb.yml:4:7: error: vars_prompt 'encrypt' is not supported by rdeploy: it cannot hash passwords",
        ),
        (
            "strategy free",
            "- hosts: all\n  strategy: free\n".into(),
            vec![],
            "pb.yml:2:13: error: strategy 'free' is not supported by rdeploy: it runs plays like Ansible's linear strategy",
        ),
        (
            "rescue without block",
            t("    - ping:\n      rescue:\n        - ping:\n"),
            vec![],
            "pb.yml:4:7: error: 'rescue' is only allowed in a block, next to 'block'",
        ),
        (
            "block with a module",
            t("    - block:\n        - ping:\n      copy: {content: a, dest: /b}\n"),
            vec![],
            "pb.yml:5:7: error: a block cannot have a module ('copy'); move the task into 'block:'",
        ),
        (
            "bad meta value",
            t("    - meta: flush_handler\n"),
            vec![],
            "pb.yml:3:13: error: unknown meta action 'flush_handler', did you mean 'flush_handlers'?",
        ),
        (
            "hosts missing",
            "- name: no hosts\n  tasks: []\n".into(),
            vec![],
            "pb.yml:1:3: error: play has no 'hosts'",
        ),
        (
            "hosts empty",
            "- hosts: []\n".into(),
            vec![],
            "pb.yml:1:10: error: 'hosts' is empty",
        ),
        (
            "top level not a list",
            "hosts: all\ntasks: []\n".into(),
            vec![],
            "pb.yml:1:1: error: a playbook must be a list of plays, found a mapping",
        ),
        (
            "play not a mapping",
            "- all\n".into(),
            vec![],
            "pb.yml:1:3: error: a play must be a mapping, found a string",
        ),
        (
            "empty playbook",
            "".into(),
            vec![],
            "pb.yml:1:1: error: the playbook is empty: expected a list of plays",
        ),
        (
            "free-form on a module without it",
            t("    - copy: /etc/hosts\n"),
            vec![],
            "pb.yml:3:13: error: module 'copy' takes key=value arguments or a mapping; '/etc/hosts' is not key=value",
        ),
        (
            "command without a command",
            t("    - command:\n        chdir: /tmp\n"),
            vec![],
            "pb.yml:3:7: error: module 'command' needs a command: free-form text, 'cmd' or 'argv'",
        ),
        (
            "notify unknown handler",
            t(
                "    - copy: {content: a, dest: /b}\n      notify: restart ap\n  handlers:\n    - name: restart app\n      command: /bin/true\n",
            ),
            vec![],
            "pb.yml:4:15: error: no handler named 'restart ap', did you mean 'restart app'?",
        ),
        (
            "bad register name",
            t("    - ping:\n      register: my-result\n"),
            vec![],
            "pb.yml:4:17: error: 'register' must be a variable name, found 'my-result'",
        ),
        (
            "loop on import_tasks",
            t("    - import_tasks: a.yml\n      loop: [1, 2]\n"),
            vec![("a.yml", "- ping:\n")],
            "pb.yml:4:7: error: 'loop' cannot be used with import_tasks (use include_tasks instead)",
        ),
        (
            "import_playbook inside tasks",
            t("    - import_playbook: other.yml\n"),
            vec![],
            "pb.yml:3:7: error: import_playbook is only allowed at the top level of a playbook, not in a task list",
        ),
        (
            "bad health probe option",
            "- hosts: all\n  health:\n    - http: http://x/\n      stauts: 200\n".into(),
            vec![],
            "pb.yml:4:7: error: unknown http probe option 'stauts', did you mean 'status'?",
        ),
        (
            "unknown role keyword",
            "- hosts: all\n  roles:\n    - role: r\n      wehn: x\n".into(),
            vec![("roles/r/tasks/main.yml", "- ping:\n")],
            "pb.yml:4:7: error: unknown role keyword 'wehn', did you mean 'when'?",
        ),
        (
            "error inside a role's tasks",
            "- hosts: all\n  roles: [r]\n".into(),
            vec![("roles/r/tasks/main.yml", "- ping:\n  becom: yes\n")],
            "roles/r/tasks/main.yml:2:3: error: unknown task keyword 'becom', did you mean 'become'?",
        ),
        (
            "missing tasks_from",
            t("    - include_role: {name: r, tasks_from: nope}\n"),
            vec![("roles/r/tasks/main.yml", "- ping:\n")],
            "pb.yml:3:28: error: role 'r' has no tasks file 'nope' (looked for roles/r/tasks/nope.yml)",
        ),
        (
            "missing template",
            t("    - template: {src: nope.j2, dest: /x}\n"),
            vec![],
            "pb.yml:3:23: error: template source 'nope.j2' not found on the controller",
        ),
        (
            "yaml syntax error",
            "- hosts: [all\n".into(),
            vec![],
            "pb.yml:1:10: error: invalid YAML: unclosed bracket '['",
        ),
    ]
}

#[test]
fn malformed_playbooks_report_exact_positions() {
    let mut failures = Vec::new();
    for (what, text, extra, want) in cases() {
        let mut files: Vec<(&str, &str)> = vec![("pb.yml", text.as_str())];
        files.extend(extra.iter().copied());
        let got = errors(&files);
        let first = got.first().cloned().unwrap_or_else(|| "<no error>".into());
        if first != want {
            failures.push(format!(
                "{what}:\n  want {want}\n  got  {first}\n  all  {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(cases().len() >= 30);
}

#[test]
fn every_error_in_a_file_is_reported() {
    let got = errors(&[(
        "pb.yml",
        "- hosts: all\n  serail: 2\n  become: maybe\n  tasks:\n    - cpoy: {src: a, dest: b}\n    - debug: {msg: x}\n      wehn: y\n- hosts: web\n  order: sortd\n",
    )]);
    assert_eq!(
        got,
        vec![
            "pb.yml:2:3: error: unknown play keyword 'serail', did you mean 'serial'?",
            "pb.yml:3:11: error: 'become' must be a boolean, found 'maybe'",
            "pb.yml:5:7: error: unknown module 'cpoy', did you mean 'copy'?",
            "pb.yml:7:7: error: unknown task keyword 'wehn', did you mean 'when'?",
            "pb.yml:9:10: error: invalid order 'sortd', did you mean 'sorted'?",
        ]
    );
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_example(name: &str) -> Playbook {
    let p = repo().join("playbooks").join(name);
    match load(&p, &LoadOptions::default()) {
        Ok(pb) => pb,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn every_example_playbook_loads() {
    let dir = repo().join("playbooks");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            if let Err(e) = load(&p, &LoadOptions::default()) {
                panic!("{}: {e}", p.display());
            }
            n += 1;
        }
    }
    assert!(n >= 2);
}

#[test]
fn rolling_web_has_the_rollout_keywords() {
    let pb = load_example("rolling-web.yaml");
    let play = &pb.plays[0];
    let serial = play.serial.as_ref().unwrap();
    assert_eq!(
        serial.steps,
        vec![
            SerialStep::Count(1),
            SerialStep::Percent(25.0),
            SerialStep::Percent(100.0)
        ]
    );
    assert_eq!(play.max_fail_percentage, Some(0.0));
    assert_eq!(play.health.len(), 3);
    assert!(matches!(
        &play.health[0].check,
        ProbeCheck::Http { status, max_latency: Some(d), from: ProbeFrom::Controller, .. }
            if status == &vec![200] && d.as_millis() == 500
    ));
    assert_eq!(play.probe.retries, 10);
    assert_eq!(play.probe.success_threshold, 2);
    assert_eq!(play.probe.timeout, std::time::Duration::from_secs(2));
    assert_eq!(play.soak, Some(std::time::Duration::from_secs(5)));
    assert_eq!(play.failure_action(), OnFailure::Rollback);
    assert_eq!(play.rollback.len(), 1);
    assert_eq!(
        play.keywords.r#become.as_ref().and_then(Val::literal),
        Some(true)
    );
}

#[test]
fn role_defaults_tasks_and_handlers_are_loaded() {
    let pb = load_example("site.yaml");
    let r = &pb.plays[0].roles[0];
    assert_eq!(r.name, "app");
    let defaults: Vec<&str> = r.role.defaults.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        defaults,
        ["app_root", "app_version", "app_port", "app_user"]
    );
    assert_eq!(r.role.defaults[0].1.as_str(), Some("/tmp/rdeploy-demo"));
    assert!(r.role.templates_dir.is_some() && r.role.files_dir.is_some());
    assert_eq!(r.role.handlers.len(), 1);
    assert_eq!(pb.plays[0].all_handlers().len(), 1);
    // `ansible.builtin.file` maps to `file`.
    let TaskItem::Task(t) = &r.role.tasks[0] else {
        panic!()
    };
    assert_eq!(t.action.module, "file");
    assert_eq!(t.role.as_deref(), Some("app"));
    let TaskItem::Task(tpl) = &r.role.tasks[1] else {
        panic!()
    };
    assert!(
        tpl.action
            .local_src
            .as_ref()
            .unwrap()
            .ends_with("roles/app/templates/app.conf.j2")
    );
}

#[test]
fn tasks_flat_orders_sections_and_inherits_tags() {
    let (_d, res) = load_files(&[
        (
            "pb.yml",
            "- hosts: all\n  tags: p\n  post_tasks:\n    - debug: {msg: post}\n  tasks:\n    - name: T\n      ping:\n      tags: t\n    - block:\n        - import_tasks: inc.yml\n          tags: i\n      tags: [b]\n  roles:\n    - {role: r, tags: rr}\n  pre_tasks:\n    - ping:\n  handlers:\n    - name: h\n      ping:\n      listen: topic\n",
        ),
        ("inc.yml", "- name: from import\n  ping:\n  tags: own\n"),
        ("roles/r/tasks/main.yml", "- name: role task\n  ping:\n"),
        (
            "roles/r/meta/main.yml",
            "dependencies:\n  - role: dep\n    tags: d\n",
        ),
        ("roles/dep/tasks/main.yml", "- name: dep task\n  ping:\n"),
    ]);
    let pb = res.unwrap();
    let flat = pb.plays[0].tasks_flat();
    let got: Vec<(String, Vec<String>, Option<String>, Section)> = flat
        .into_iter()
        .map(|f| (f.name, f.tags, f.role, f.section))
        .collect();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        got,
        vec![
            ("ping".into(), s(&["p"]), None, Section::PreTasks),
            (
                "dep task".into(),
                s(&["p", "rr", "d"]),
                Some("dep".into()),
                Section::Roles
            ),
            (
                "role task".into(),
                s(&["p", "rr"]),
                Some("r".into()),
                Section::Roles
            ),
            ("T".into(), s(&["p", "t"]), None, Section::Tasks),
            (
                "from import".into(),
                s(&["p", "b", "i", "own"]),
                None,
                Section::Tasks
            ),
            ("debug".into(), s(&["p"]), None, Section::PostTasks),
            ("h".into(), s(&["p"]), None, Section::Handlers),
        ]
    );
    assert_eq!(pb.plays[0].handlers[0].listen[0].name, "topic");
}

#[test]
fn builtin_spelling_free_form_and_kv_args() {
    let (_d, res) = load_files(&[
        (
            "pb.yml",
            "- hosts: all\n  tasks:\n    - ansible.builtin.copy: {content: x, dest: /tmp/x}\n    - command: chdir=/tmp ls -l\n    - shell: |\n        echo a\n        echo b\n    - ansible.legacy.file: path=/tmp/d state=directory\n    - action: template src=a.j2 dest=/tmp/a\n    - local_action:\n        module: debug\n        msg: hi\n    - command: ls\n      args: {creates: /x}\n",
        ),
        ("templates/a.j2", "{{ x }}\n"),
    ]);
    let pb = res.unwrap();
    let tasks: Vec<&Task> = pb.plays[0]
        .tasks
        .iter()
        .map(|t| match t {
            TaskItem::Task(t) => &**t,
            _ => panic!(),
        })
        .collect();
    assert_eq!(tasks[0].action.module, "copy");
    assert_eq!(tasks[1].action.module, "command");
    assert_eq!(
        tasks[1].action.free_form.as_ref().unwrap().as_str(),
        Some("ls -l")
    );
    assert_eq!(tasks[1].action.arg("chdir").unwrap().as_str(), Some("/tmp"));
    assert_eq!(
        tasks[2].action.free_form.as_ref().unwrap().as_str(),
        Some("echo a\necho b\n")
    );
    assert_eq!(tasks[3].action.module, "file");
    assert_eq!(
        tasks[3].action.arg("state").unwrap().as_str(),
        Some("directory")
    );
    assert_eq!(tasks[4].action.module, "template");
    assert_eq!(
        tasks[4].action.arg("dest").unwrap().as_str(),
        Some("/tmp/a")
    );
    assert_eq!(tasks[5].action.module, "debug");
    assert_eq!(
        tasks[5].keywords.delegate_to.as_ref().unwrap().as_str(),
        Some("localhost")
    );
    assert_eq!(tasks[6].action.arg("creates").unwrap().as_str(), Some("/x"));
}

#[test]
fn aliases_resolve_to_canonical_argument_names() {
    let (_d, res) = load_files(&[(
        "pb.yml",
        "- hosts: all\n  tasks:\n    - file: {dest: /x, state: absent}\n",
    )]);
    let pb = res.unwrap();
    let TaskItem::Task(t) = &pb.plays[0].tasks[0] else {
        panic!()
    };
    assert_eq!(t.action.args[0].0, "path");
}

#[test]
fn anchors_and_merge_keys_in_a_playbook() {
    let (_d, res) = load_files(&[(
        "pb.yml",
        "- hosts: all\n  vars:\n    common: &c {mode: \"0644\", owner: root}\n  tasks:\n    - copy:\n        <<: *c\n        content: x\n        dest: /tmp/x\n      become: yes\n",
    )]);
    let pb = res.unwrap();
    let TaskItem::Task(t) = &pb.plays[0].tasks[0] else {
        panic!()
    };
    let names: Vec<&str> = t.action.args.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["mode", "owner", "content", "dest"]);
}

#[test]
fn booleans_in_ansible_spellings() {
    let (_d, res) = load_files(&[(
        "pb.yml",
        "- hosts: all\n  gather_facts: \"No\"\n  become: yes\n  tasks:\n    - ping:\n      ignore_errors: \"TRUE\"\n      no_log: \"{{ hide }}\"\n",
    )]);
    let pb = res.unwrap();
    let p = &pb.plays[0];
    assert_eq!(p.gather_facts.as_ref().and_then(Val::literal), Some(false));
    let TaskItem::Task(t) = &p.tasks[0] else {
        panic!()
    };
    assert_eq!(
        t.keywords.ignore_errors.as_ref().and_then(Val::literal),
        Some(true)
    );
    assert!(matches!(t.keywords.no_log, Some(Val::Template(_))));
}

#[test]
fn serial_forms() {
    let (_d, res) = load_files(&[(
        "pb.yml",
        "- hosts: a\n  serial: 3\n- hosts: b\n  serial: \"30%\"\n- hosts: c\n  serial: [\"2\", 12.5%]\n",
    )]);
    let pb = res.unwrap();
    let steps: Vec<Vec<SerialStep>> = pb
        .plays
        .iter()
        .map(|p| p.serial.as_ref().unwrap().steps.clone())
        .collect();
    assert_eq!(
        steps,
        vec![
            vec![SerialStep::Count(3)],
            vec![SerialStep::Percent(30.0)],
            vec![SerialStep::Count(2), SerialStep::Percent(12.5)],
        ]
    );
}

#[test]
fn includes_are_loaded_and_templates_visited() {
    let (_d, res) = load_files(&[
        (
            "pb.yml",
            "- hosts: all\n  tasks:\n    - include_tasks: inc.yml\n      loop: \"{{ things }}\"\n      loop_control: {loop_var: thing, index_var: i}\n    - include_tasks: \"{{ dynamic }}.yml\"\n    - include_vars: v.yml\n    - set_fact: {computed: \"{{ 1 + 1 }}\", cacheable: yes}\n    - assert: {that: [\"computed == 2\"]}\n      register: checked\n",
        ),
        (
            "inc.yml",
            "- debug: {msg: \"{{ thing }}\"}\n  when: thing != 'x'\n",
        ),
        ("v.yml", "from_file: 1\nother: 2\n"),
    ]);
    let pb = res.unwrap();
    let TaskItem::Task(inc) = &pb.plays[0].tasks[0] else {
        panic!()
    };
    assert!(matches!(&inc.included, Some(Included::Tasks { tasks, .. }) if tasks.len() == 1));
    let TaskItem::Task(dynamic) = &pb.plays[0].tasks[1] else {
        panic!()
    };
    // A templated name is loaded when the include is reached for a host, from where it was
    // written.
    assert!(
        matches!(&dynamic.included, Some(Included::Dynamic(site)) if site.play_dir == _d.path())
    );

    let mut sites = Vec::new();
    pb.plays[0].visit_templates(&mut |s| {
        sites.push((
            s.node.as_str().unwrap_or_default().to_string(),
            s.kind,
            s.field.clone(),
            s.loop_vars.clone(),
        ))
    });
    assert!(sites.contains(&(
        "{{ things }}".into(),
        SiteKind::Template,
        "loop".into(),
        vec![]
    )));
    let inner = sites
        .iter()
        .find(|s| s.0 == "thing != 'x'")
        .expect("when inside the include");
    assert_eq!(inner.1, SiteKind::Expression);
    assert!(inner.3.contains(&"thing".to_string()) && inner.3.contains(&"i".to_string()));
    assert!(
        sites
            .iter()
            .any(|s| s.0 == "computed == 2" && s.1 == SiteKind::Expression)
    );

    let names = pb.runtime_names();
    for n in ["thing", "i", "from_file", "other", "computed", "checked"] {
        assert!(names.contains(n), "{n} in {names:?}");
    }
    assert!(!names.contains("cacheable"));
}

#[test]
fn missing_and_unknown_arguments_are_both_reported() {
    let got = errors(&[(
        "pb.yml",
        "- hosts: all\n  tasks:\n    - copy: {content: a, dset: /c}\n",
    )]);
    assert_eq!(
        got,
        vec![
            "pb.yml:3:7: error: missing required argument 'dest' for module 'copy'",
            "pb.yml:3:26: error: unknown argument 'dset' for module 'copy', did you mean 'dest'?",
        ]
    );
}

#[test]
fn example_paths_are_relative_to_the_playbook() {
    let pb = load_example("site.yaml");
    assert!(pb.dir.ends_with(Path::new("playbooks")));
    assert!(
        pb.plays[0].roles[0]
            .role
            .path
            .ends_with(Path::new("roles/app"))
    );
}

#[test]
fn bad_fixtures_report_every_mistake() {
    let dir = repo().join("tests/fixtures/bad");
    let run = |name: &str| -> Vec<String> {
        match load(&dir.join(name), &LoadOptions::default()) {
            Ok(_) => Vec::new(),
            Err(d) => {
                d.0.iter()
                    .map(|e| {
                        let line = e.to_string();
                        let first = line.lines().next().unwrap_or_default().to_string();
                        first
                            .rsplit_once("bad/")
                            .map_or(first.clone(), |(_, r)| r.to_string())
                    })
                    .collect()
            }
        }
    };
    assert_eq!(
        run("typos.yaml"),
        vec![
            "typos.yaml:4:3: error: unknown play keyword 'serail', did you mean 'serial'?",
            "typos.yaml:5:11: error: 'become' must be a boolean, found 'maybe'",
            "typos.yaml:8:7: error: unknown module 'cpoy', did you mean 'copy'?",
            "typos.yaml:13:7: error: unknown task keyword 'wehn', did you mean 'when'?",
        ]
    );
    assert_eq!(
        run("bad-serial.yaml"),
        vec![
            "bad-serial.yaml:3:15: error: invalid serial value 'x%': expected a number of hosts or a percentage like \"25%\"",
            "bad-serial.yaml:3:21: error: invalid serial value -2: must not be negative",
            "bad-serial.yaml:3:25: error: invalid serial value '150%': a percentage must be between 0% and 100%",
            "bad-serial.yaml:4:9: error: invalid duration '5 minutes' for 'soak': expected a number and a unit (ms, s, m, h), e.g. 500ms or 30s",
            "bad-serial.yaml:5:15: error: invalid on_failure 'retry', expected one of: rollback, halt",
        ]
    );
    assert_eq!(
        run("unsupported.yaml"),
        vec![
            "unsupported.yaml:3:13: error: strategy 'free' is not supported by rdeploy: it runs plays like Ansible's linear strategy",
            "unsupported.yaml:7:13: error: 'poll: 0' (start the task in the background, then ask async_status) is not supported by rdeploy; rdeploy waits for an async task: give poll a number of seconds, or leave poll and async out",
            "unsupported.yaml:9:7: error: 'with_inventory_hostnames' (a loop over the 'inventory_hostnames' lookup plugin) is not supported by rdeploy; it has with_file, with_template, with_env, with_pipe, with_fileglob, with_first_found, with_lines, with_password, with_vars, with_varnames, with_flattened, with_items, with_list, with_dict, with_subelements, with_sequence, with_indexed_items, with_together, with_nested",
        ]
    );
}

#[test]
fn site_example_templates_and_runtime_names() {
    let pb = load_example("site.yaml");
    let names = pb.runtime_names();
    assert!(names.contains("current_version"));
    let mut fields = Vec::new();
    pb.plays[0].visit_templates(&mut |s| fields.push((s.field.clone(), s.kind)));
    assert!(fields.contains(&("args.path".to_string(), SiteKind::Template)));
    assert!(fields.contains(&("vars.app_user".to_string(), SiteKind::Template)));
    assert!(fields.contains(&("args.that".to_string(), SiteKind::Expression)));
    assert!(fields.contains(&("free_form".to_string(), SiteKind::Template)));
}

#[test]
fn a_package_manager_argument_given_to_package_is_named_not_supported_not_unknown() {
    let errs = errors(&[(
        "pb.yml",
        "- hosts: all\n  tasks:\n    - package: { name: git, autoremove: true }\n    - ansible.builtin.systemd_service: { name: docker }\n",
    )]);
    let e = errs.join("\n");
    assert!(
        e.contains("argument 'autoremove' of module 'package' is not supported by rdeploy (Ansible passes it on to the host's package manager, such as 'apt')"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "systemd_service is systemd: {e}");
}

/// apt's `deb`, `name` and `upgrade` (even `upgrade: no`) were accepted together; Ansible's apt
/// refuses them ("parameters are mutually exclusive: deb|package|upgrade").
#[test]
fn apt_deb_name_and_upgrade_are_mutually_exclusive() {
    let errs = errors(&[(
        "pb.yml",
        "- hosts: all\n  tasks:\n    - apt: { name: git, upgrade: 'no' }\n    - apt: { deb: /tmp/x.deb, state: present }\n",
    )]);
    let e = errs.join("\n");
    assert!(
        e.contains("arguments 'name', 'upgrade' of module 'apt' are mutually exclusive"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn unarchive_copy_no_is_remote_src_yes_and_both_together_are_an_error() {
    let errs = errors(&[(
        "pb.yml",
        "- hosts: all\n  tasks:\n    - unarchive: { src: /tmp/a.tgz, dest: /tmp/a, copy: no }\n    - unarchive: { src: /tmp/a.tgz, dest: /tmp/a, copy: no, remote_src: yes }\n",
    )]);
    assert_eq!(
        errs,
        [
            "pb.yml:4:51: error: unarchive: 'copy' and 'remote_src' are mutually exclusive (copy is the older spelling of remote_src, turned round)"
        ],
    );
    let (_dir, pb) = load_files(&[(
        "pb.yml",
        "- hosts: all\n  tasks:\n    - unarchive: { src: /tmp/a.tgz, dest: /tmp/a, copy: no }\n",
    )]);
    let pb = pb.unwrap();
    let TaskItem::Task(t) = &pb.plays[0].tasks[0] else {
        panic!()
    };
    assert_eq!(
        t.action
            .arg("remote_src")
            .and_then(crate::modules::spec::ansible_bool),
        Some(true)
    );
    assert!(t.action.arg("copy").is_none());
}

#[test]
fn collections_at_play_role_block_and_task_are_search_lists_and_bad_names_are_errors() {
    let (_dir, pb) = load_files(&[
        (
            "pb.yml",
            "- hosts: all\n  collections: [community.general, ansible.posix]\n  roles: [r]\n  tasks:\n    - block:\n        - ini_file: {path: /tmp/x.ini, section: s, option: o, value: v}\n      collections: [community.docker]\n    - debug: msg=hi\n      collections:\n        - ansible.builtin\n",
        ),
        (
            "roles/r/meta/main.yml",
            "collections:\n  - community.general\n",
        ),
        ("roles/r/tasks/main.yml", "- timezone: {name: UTC}\n"),
    ]);
    let pb = pb.unwrap();
    assert_eq!(pb.plays[0].roles.len(), 1);
    // Native modules keep their short names whatever the search list.
    let TaskItem::Block(b) = &pb.plays[0].tasks[0] else {
        panic!("a block")
    };
    let TaskItem::Task(t) = &b.block[0] else {
        panic!("a task")
    };
    assert_eq!(t.action.module, "ini_file");
    // A module name without a collection is looked for in each listed collection in order;
    // a name that already has one is left alone.
    let search = ["community.docker".to_string(), "community.general".into()];
    assert_eq!(
        super::tasks::in_collections("ufw", &search).as_deref(),
        Some("community.general.ufw")
    );
    assert_eq!(
        super::tasks::in_collections("community.general.ufw", &search),
        None
    );
    assert_eq!(
        super::tasks::in_collections("no_such_module", &search),
        None
    );

    let errs = errors(&[(
        "pb.yml",
        "- hosts: all\n  collections: community.general\n  tasks:\n    - ping:\n      collections: [community-general, 3]\n",
    )]);
    assert_eq!(
        errs,
        [
            "pb.yml:5:21: error: 'collections' must be a list of collection names (namespace.name), found 'community-general'",
            "pb.yml:5:40: error: 'collections' must be a list of collection names (namespace.name), found '3'",
        ]
    );
}

#[test]
fn roles_of_collections_are_found_by_full_name_and_through_the_collections_list() {
    let role = "collections/ansible_collections/acme/tools/roles/hello/tasks/main.yml";
    let (dir, pb) = load_files(&[
        (
            "pb.yml",
            "- hosts: all\n  roles: [acme.tools.hello]\n  tasks:\n    - include_role: {name: acme.tools.hello}\n- hosts: all\n  collections: [acme.tools]\n  roles: [hello]\n",
        ),
        (role, "- debug: msg=hi\n"),
    ]);
    let pb = pb.unwrap();
    let expect = dir
        .path()
        .join("collections/ansible_collections/acme/tools/roles/hello");
    assert_eq!(pb.plays[0].roles[0].role.path, expect);
    assert_eq!(pb.plays[1].roles[0].role.path, expect);

    // A collection root on `collections_path` (ANSIBLE_COLLECTIONS_PATH, ansible.cfg).
    let other = tempfile::tempdir().unwrap();
    let under = other
        .path()
        .join("ansible_collections/acme/more/roles/there/tasks");
    std::fs::create_dir_all(&under).unwrap();
    std::fs::write(under.join("main.yml"), "- debug: msg=there\n").unwrap();
    let pbdir = tempfile::tempdir().unwrap();
    std::fs::write(
        pbdir.path().join("pb.yml"),
        "- hosts: all\n  roles: [acme.more.there]\n",
    )
    .unwrap();
    let opts = LoadOptions {
        collections_path: vec![other.path().to_path_buf()],
        ..Default::default()
    };
    let pb = load(&pbdir.path().join("pb.yml"), &opts).unwrap();
    assert_eq!(
        pb.plays[0].roles[0].role.path,
        other
            .path()
            .join("ansible_collections/acme/more/roles/there")
    );
    // Without it, the error names where it looked.
    let errs = errors(&[("pb.yml", "- hosts: all\n  roles: [acme.more.there]\n")]);
    assert_eq!(
        errs,
        ["pb.yml:2:11: error: role 'acme.more.there' not found"]
    );
}
