//! End to end: role argument specs (`meta/argument_specs.yml`, or `argument_specs:` in
//! `meta/main.yml`), on the local connection through the `rdeploy` binary, each scenario run
//! beside ansible-playbook 2.19 (`RDEPLOY_ANSIBLE_PLAYBOOK`) on the same files: the role starts
//! with Ansible's validation task, named as Ansible names it; invalid role variables fail the
//! host before the role's first task with Ansible's messages and the same recap; a
//! `tasks_from` entry point is checked against its own spec; a malformed spec is an error at
//! its position before anything runs.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::recap_line;

/// The oracle `ansible-playbook`.
fn ansible_playbook() -> PathBuf {
    let Some(pb) = std::env::var_os("RDEPLOY_ANSIBLE_PLAYBOOK") else {
        panic!(
            "RDEPLOY_ANSIBLE_PLAYBOOK is not set: this test compares rdeploy with \
             ansible-playbook 2.19; run it through ./scripts/test.sh, or set the variable \
             (scripts/ansible-venv.sh prints its path)"
        );
    };
    PathBuf::from(pb)
}

/// One local host; Ansible's modules run with the venv's Python.
fn inventory() -> String {
    let python = ansible_playbook().with_file_name("python");
    format!(
        "local:\n  hosts:\n    localhost:\n      ansible_connection: local\n      ansible_python_interpreter: {}\n",
        python.display()
    )
}

/// What one run printed: exit code, stdout, stderr.
struct Run {
    code: i32,
    out: String,
    err: String,
}

fn rdeploy(dir: &Path, files: &[(&str, &str)]) -> Run {
    let inv = inventory();
    let mut all: Vec<(&str, &str)> = vec![("inv.yaml", &inv)];
    all.extend_from_slice(files);
    let (code, out, err) = support::run_local(dir, &all, &[], &[]);
    Run { code, out, err }
}

fn ansible(dir: &Path) -> Run {
    let out = Command::new(ansible_playbook())
        .current_dir(dir)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .args(["-i", "inv.yaml", "pb.yaml"])
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The task banners (`TASK [app : first]`), without the trailing stars. Ansible's
/// `TASK [include_role : app]` is rdeploy's `TASK [include_role]` (not this test's subject).
fn banners(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("TASK ["))
        .map(|l| l.trim_end_matches(['*', ' ']))
        .map(|l| match l.strip_prefix("TASK [include_role : ") {
            Some(_) => "TASK [include_role]".to_string(),
            None => l.to_string(),
        })
        .collect()
}

/// The `argument_errors` of the first `FAILED! => {...}` result. Ansible lists the valid
/// booleans in hash order (it varies between runs): that list is cut off.
fn argument_errors(out: &str) -> Value {
    let errors = argument_errors_as_printed(out);
    match errors {
        Value::Array(items) => items
            .iter()
            .map(|m| {
                let m = m.as_str().unwrap_or_default();
                Value::from(m.split(" Valid booleans include:").next().unwrap_or(m))
            })
            .collect(),
        other => other,
    }
}

fn argument_errors_as_printed(out: &str) -> Value {
    out.lines()
        .filter(|l| l.contains("FAILED!"))
        .find_map(|l| l.split_once("=> ").map(|(_, j)| j))
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
        .and_then(|r| r.get("argument_errors").cloned())
        .unwrap_or(Value::Null)
}

/// Runs rdeploy and ansible-playbook on `files` and checks they agree on the exit status, the
/// tasks shown, the recap and the validation errors; returns rdeploy's run.
fn both(files: &[(&str, &str)]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let r = rdeploy(dir.path(), files);
    let a = ansible(dir.path());
    let ctx = format!(
        "rdeploy:\n{}\n{}\nansible:\n{}\n{}",
        r.out, r.err, a.out, a.err
    );
    assert_eq!(r.code == 0, a.code == 0, "{ctx}");
    assert_eq!(banners(&r.out), banners(&a.out), "{ctx}");
    assert_eq!(recap_line(&r.out), recap_line(&a.out), "{ctx}");
    assert_eq!(argument_errors(&r.out), argument_errors(&a.out), "{ctx}");
    r
}

const SPECS: &str = r#"argument_specs:
  main:
    short_description: The app role
    options:
      app_port:
        type: int
        required: true
      app_mode:
        type: str
        choices: [fast, safe]
        default: safe
      app_tags:
        type: list
        elements: int
      app_conf:
        type: dict
        options:
          user: {type: str, required: true}
          level: {type: int, choices: [1, 2]}
  other:
    options:
      other_flag:
        type: bool
        required: true
"#;

const MAIN: &str = "- name: first\n  debug: msg=\"main {{ app_port }}\"\n";
const OTHER: &str = "- name: first other\n  debug: msg=\"other {{ other_flag }}\"\n";

fn role_files(pb: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("pb.yaml", pb),
        ("roles/app/meta/argument_specs.yml", SPECS),
        ("roles/app/tasks/main.yml", MAIN),
        ("roles/app/tasks/other.yml", OTHER),
    ]
}

#[test]
fn valid_role_arguments_pass_and_the_validation_task_has_ansibles_name() {
    let r = both(&role_files(
        r#"
- hosts: all
  gather_facts: false
  roles:
    - role: app
      app_port: "8080"
      app_tags: "1,2"
      app_conf: {user: bob, level: 2}
"#,
    ));
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert_eq!(
        banners(&r.out),
        [
            "TASK [app : Validating arguments against arg spec 'main' - The app role]",
            "TASK [app : first]"
        ],
        "{}",
        r.out
    );
    assert_eq!(
        recap_line(&r.out),
        "localhost : ok=2 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"
    );
}

#[test]
fn a_missing_required_variable_fails_the_host_before_the_roles_first_task() {
    // `app_port` is used by the role's first task: the validation fails the host first, so
    // it is not reported undefined before the run.
    let r = both(&role_files(
        r#"
- hosts: all
  gather_facts: false
  roles:
    - role: app
"#,
    ));
    assert_ne!(r.code, 0);
    assert!(
        r.out.contains(
            r#""msg":"Validation of arguments failed:\nmissing required arguments: app_port""#
        ),
        "{}",
        r.out
    );
    assert!(!r.out.contains("TASK [app : first]"), "{}", r.out);
    assert_eq!(
        recap_line(&r.out),
        "localhost : ok=0 changed=0 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0"
    );
}

#[test]
fn wrong_types_bad_choices_and_unknown_parameters_fail_with_ansibles_messages() {
    let r = both(&role_files(
        r#"
- hosts: all
  gather_facts: false
  vars:
    app_mode: slow
  roles:
    - role: app
      app_port: abc
      app_tags: [1, x]
      app_conf: {level: 3, user: u}
      stray: 1
"#,
    ));
    assert_eq!(
        argument_errors(&r.out),
        serde_json::json!([
            "argument 'app_port' is of type str and we were unable to convert to int: \"'abc'\" cannot be converted to an int",
            "Elements value for option 'app_tags' is of type str and we were unable to convert to int: \"'x'\" cannot be converted to an int",
            "value of app_mode must be one of: fast, safe, got: slow",
            "value of level must be one of: 1, 2, got: 3 found in app_conf",
            "stray. Supported parameters include: app_conf, app_mode, app_port, app_tags."
        ]),
        "{}",
        r.out
    );
    assert!(!r.out.contains("TASK [app : first]"), "{}", r.out);
}

#[test]
fn a_tasks_from_entry_point_is_checked_against_its_own_spec() {
    // `include_role` and `import_role` with `tasks_from: other`: `app_port` (required by
    // `main`) is not needed; `other_flag` is, and is a boolean.
    let r = both(&role_files(
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - import_role: {name: app, tasks_from: other}
      vars: {other_flag: "yes"}
    - include_role: {name: app, tasks_from: other}
      vars: {other_flag: "sometimes"}
"#,
    ));
    assert_eq!(
        banners(&r.out)
            .iter()
            .filter(|b| b.as_str() == "TASK [app : Validating arguments against arg spec 'other']")
            .count(),
        2,
        "{}",
        r.out
    );
    let errors = argument_errors(&r.out);
    let first = errors[0].as_str().unwrap_or_default();
    assert!(
        first.starts_with(
            "argument 'other_flag' is of type str and we were unable to convert to bool: The value 'sometimes' is not a valid boolean."
        ),
        "{}",
        r.out
    );
    assert_eq!(
        recap_line(&r.out),
        "localhost : ok=3 changed=0 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0"
    );
}

#[test]
fn argument_specs_in_meta_main_are_used_without_an_argument_specs_file() {
    let r = both(&[
        (
            "pb.yaml",
            "- hosts: all\n  gather_facts: false\n  roles:\n    - {role: web, web_port: 0}\n",
        ),
        (
            "roles/web/meta/main.yml",
            "argument_specs:\n  main:\n    options:\n      web_port: {type: int, choices: [80, 443]}\n",
        ),
        ("roles/web/tasks/main.yml", "- debug: msg=web\n"),
    ]);
    assert_eq!(
        argument_errors(&r.out),
        serde_json::json!(["value of web_port must be one of: 80, 443, got: 0"]),
        "{}",
        r.out
    );
}

#[test]
fn validate_argument_spec_runs_as_a_task() {
    let r = both(&[(
        "pb.yaml",
        r#"
- hosts: all
  gather_facts: false
  vars:
    app_port: "80"
  tasks:
    - validate_argument_spec:
        argument_spec:
          app_port: {type: int, required: true}
          name: {type: str, required: true}
      ignore_errors: true
    - validate_argument_spec:
        argument_spec:
          app_port: {type: int, required: true}
        provided_arguments:
          app_port: "{{ app_port }}"
"#,
    )]);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert_eq!(
        recap_line(&r.out),
        "localhost : ok=2 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=1"
    );
}

#[test]
fn a_malformed_argument_spec_is_an_error_at_its_position_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = support::run_local(
        dir.path(),
        &[
            (
                "pb.yaml",
                "- hosts: all\n  gather_facts: false\n  roles:\n    - app\n",
            ),
            (
                "roles/app/meta/argument_specs.yml",
                "argument_specs:\n  main:\n    options:\n      port:\n        type: integer\n      mode:\n        choices: fast\n",
            ),
            ("roles/app/tasks/main.yml", "- debug: msg=hi\n"),
        ],
        &[],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("roles/app/meta/argument_specs.yml:5:15: error: 'type' of option 'port' must be one of str, list, dict, bool, int, float, path, raw, jsonarg, json, bytes, bits, found 'integer'"),
        "{err}"
    );
    assert!(
        err.contains("roles/app/meta/argument_specs.yml:7:18: error: 'choices' of option 'mode' must be a list, found a string"),
        "{err}"
    );
    assert!(!out.contains("TASK ["), "{out}");
}

#[test]
fn rolespec_validate_false_leaves_out_the_validation_task() {
    // `import_role` and a templated `include_role` with `rolespec_validate: false` run the
    // role without validating; the last include validates and fails.
    let r = both(&role_files(
        r#"
- hosts: all
  gather_facts: false
  vars:
    r: app
  tasks:
    - import_role: {name: app, rolespec_validate: false}
      vars: {app_port: x}
    - include_role: {name: "{{ r }}", rolespec_validate: no}
      vars: {app_port: y}
    - include_role: {name: "{{ r }}"}
      vars: {app_port: z}
"#,
    ));
    assert_eq!(
        banners(&r.out)
            .iter()
            .filter(|b| b.contains("Validating arguments"))
            .count(),
        1,
        "{}",
        r.out
    );
    assert_eq!(
        recap_line(&r.out),
        "localhost : ok=4 changed=0 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0"
    );
}
