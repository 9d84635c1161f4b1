//! The bad-input matrix at the CLI level: malformed inventories (YAML and INI, group_vars,
//! host_vars), playbooks, roles, task files, templates, vars files and option combinations.
//! Each case writes its files into a fresh sandbox, runs `rdeploy` there with relative paths,
//! and asserts exit code 4, the exact first stderr line `PATH:LINE:COL: error: MESSAGE` (or
//! `rdeploy: error: MESSAGE` for a mistake in an option), the closing
//! `rdeploy: N errors found; nothing was run`, an empty stdout, and that no file was created
//! or changed in the sandbox or its HOME. The last tests check that several mistakes are all
//! reported in one run, across the inventory and the playbook.

mod support;

use support::{Sandbox, stderr, stdout};

/// Two loose hosts and a `web` group of two.
const INV: &str = "all:
  hosts:
    h1:
    h2:
  children:
    web:
      hosts:
        web01:
        web02:
";

/// A playbook with nothing wrong in it.
const OK_PB: &str = "- hosts: all
  tasks:
    - ping:
";

const PLAN: &[&str] = &["plan", "pb.yaml", "-i", "inv.yaml"];

/// Writes `files`, runs `rdeploy ARGS`, and checks exit code 4, the first stderr line, the
/// error-count line, an empty stdout and an unchanged sandbox. Returns stderr.
fn check(files: &[(&str, &[u8])], args: &[&str], first: &str) -> String {
    let sb = Sandbox::new();
    for (path, body) in files {
        sb.write(path, body);
    }
    let before = sb.snapshot();
    let out = sb.rdeploy(args).output().expect("run rdeploy");
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(4),
        "rdeploy {args:?}: expected exit 4\nstderr:\n{err}\nstdout:\n{}",
        stdout(&out)
    );
    assert_eq!(
        err.lines().next().unwrap_or(""),
        first,
        "rdeploy {args:?}: first stderr line\nfull stderr:\n{err}"
    );
    // Mistakes clap rejects while parsing the command line have clap's own layout.
    if !first.starts_with("error: ") {
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.starts_with("rdeploy: ")
                && (last.ends_with(" error found; nothing was run")
                    || last.ends_with(" errors found; nothing was run")),
            "rdeploy {args:?}: last stderr line {last:?}\nfull stderr:\n{err}"
        );
    }
    assert_eq!(stdout(&out), "", "rdeploy {args:?}: nothing on stdout");
    assert_eq!(sb.snapshot(), before, "rdeploy {args:?} wrote files");
    err
}

/// `rdeploy plan pb.yaml -i inv.yaml` with a bad playbook and the good inventory.
fn bad_playbook(pb: &str, first: &str) -> String {
    check(
        &[("inv.yaml", INV.as_bytes()), ("pb.yaml", pb.as_bytes())],
        PLAN,
        first,
    )
}

/// `rdeploy plan pb.yaml -i INV` with a good playbook and the inventory file `inv_name`.
fn bad_inventory(inv_name: &str, inv: &str, first: &str) -> String {
    check(
        &[(inv_name, inv.as_bytes()), ("pb.yaml", OK_PB.as_bytes())],
        &["plan", "pb.yaml", "-i", inv_name],
        first,
    )
}

/// `rdeploy plan pb.yaml -i inv.yaml EXTRA...` with good files.
fn bad_option(extra: &[&str], first: &str) -> String {
    let mut args = PLAN.to_vec();
    args.extend_from_slice(extra);
    check(
        &[("inv.yaml", INV.as_bytes()), ("pb.yaml", OK_PB.as_bytes())],
        &args,
        first,
    )
}

// ---------------------------------------------------------------- YAML inventories

#[test]
fn yaml_inventory_bad_indentation() {
    bad_inventory(
        "inv.yaml",
        "all:\n  hosts:\n    h1:\n   h2:\n",
        "inv.yaml:4:4: error: invalid YAML: while parsing a block mapping, did not find expected key",
    );
}

#[test]
fn yaml_inventory_duplicate_key() {
    let err = bad_inventory(
        "inv.yaml",
        "all:\n  hosts:\n    h1:\n  hosts:\n    h3:\n",
        "inv.yaml:4:3: error: duplicate key 'hosts'",
    );
    assert!(err.contains("note: first defined at inv.yaml:2:3"), "{err}");
}

#[test]
fn yaml_inventory_unknown_group_key() {
    let err = bad_inventory(
        "inv.yaml",
        "all:\n  hostz:\n    h1:\n",
        "inv.yaml:2:3: error: unknown key 'hostz' in group 'all': expected 'hosts', 'children' or 'vars'",
    );
    assert!(err.contains("did you mean 'hosts'?"), "{err}");
}

#[test]
fn yaml_inventory_hosts_as_a_list() {
    bad_inventory(
        "inv.yaml",
        "all:\n  children:\n    web:\n      hosts: [a, b]\n",
        "inv.yaml:4:14: error: 'hosts' of group 'web' must be a mapping of host names, found a list",
    );
}

#[test]
fn yaml_inventory_vars_as_a_list() {
    bad_inventory(
        "inv.yaml",
        "all:\n  vars: [1]\n",
        "inv.yaml:2:9: error: 'vars' of group 'all' must be a mapping, found a list",
    );
}

#[test]
fn yaml_inventory_unclosed_flow_sequence() {
    bad_inventory(
        "inv.yaml",
        "all:\n  hosts:\n    h1:\n      ansible_port: [1\n",
        "inv.yaml:4:21: error: invalid YAML: unclosed bracket '['",
    );
}

#[test]
fn yaml_inventory_range_without_end() {
    bad_inventory(
        "inv.yaml",
        "all:\n  hosts:\n    web[01:]:\n",
        "inv.yaml:3:8: error: host range '[01:]' has no end value",
    );
}

#[test]
fn yaml_inventory_backwards_range() {
    bad_inventory(
        "inv.yaml",
        "all:\n  hosts:\n    web[05:01]:\n",
        "inv.yaml:3:8: error: host range '[05:01]' is backwards: 05 is greater than 01",
    );
}

#[test]
fn yaml_inventory_tab_indentation() {
    bad_inventory(
        "inv.yaml",
        "all:\n  hosts:\n\th1:\n",
        "inv.yaml:3:1: error: invalid YAML: tabs disallowed within this context (block indentation)",
    );
}

/// The cycle is closed by line 7 (`a` put inside `b`), so that is where it should be
/// reported, the way the INI reader does (see `ini_inventory_group_cycle`).
#[test]
fn yaml_inventory_group_cycle_is_reported_where_it_closes() {
    bad_inventory(
        "inv.yaml",
        "all:\n  children:\n    a:\n      children:\n        b:\n          children:\n            a:\n",
        "inv.yaml:7:13: error: making 'a' a child of 'b' creates a cycle: 'b' is already inside 'a'",
    );
}

#[test]
fn inventory_source_missing() {
    check(
        &[("pb.yaml", OK_PB.as_bytes())],
        &["plan", "pb.yaml", "-i", "nosuch.yaml"],
        "rdeploy: error: inventory source 'nosuch.yaml' does not exist",
    );
}

#[test]
fn group_vars_file_with_broken_yaml() {
    check(
        &[
            ("inventory/hosts.yaml", b"all:\n  hosts:\n    h1:\n"),
            ("inventory/group_vars/all.yaml", b"x: [1\n"),
            ("pb.yaml", OK_PB.as_bytes()),
        ],
        &["plan", "pb.yaml", "-i", "inventory"],
        "inventory/group_vars/all.yaml:1:4: error: invalid YAML: unclosed bracket '['",
    );
}

#[test]
fn host_vars_file_with_duplicate_key() {
    check(
        &[
            ("inventory/hosts.yaml", b"all:\n  hosts:\n    h1:\n"),
            ("inventory/host_vars/h1.yaml", b"a: 1\na: 2\n"),
            ("pb.yaml", OK_PB.as_bytes()),
        ],
        &["plan", "pb.yaml", "-i", "inventory"],
        "inventory/host_vars/h1.yaml:2:1: error: duplicate key 'a'",
    );
}

// ---------------------------------------------------------------- INI inventories

#[test]
fn ini_inventory_unclosed_section_header() {
    bad_inventory(
        "inv.ini",
        "[web\nh1\n",
        "inv.ini:1:1: error: invalid section header '[web': expected [group], [group:children] or [group:vars] with no spaces",
    );
}

#[test]
fn ini_inventory_host_variable_without_value() {
    bad_inventory(
        "inv.ini",
        "[web]\nh1 ansible_port\n",
        "inv.ini:2:4: error: expected a 'key=value' host variable, found 'ansible_port'",
    );
}

#[test]
fn ini_inventory_children_names_undefined_group() {
    bad_inventory(
        "inv.ini",
        "[web:children]\nnosuch\n",
        "inv.ini:2:1: error: [web:children] includes undefined group 'nosuch': declare it with a [nosuch] section",
    );
}

#[test]
fn ini_inventory_vars_for_undeclared_group() {
    bad_inventory(
        "inv.ini",
        "[web:vars]\nport=1\n",
        "inv.ini:1:2: error: section [web:vars] is for group 'web', which is not declared by a [web] or [web:children] section",
    );
}

#[test]
fn ini_inventory_group_vars_line_without_value() {
    bad_inventory(
        "inv.ini",
        "[web]\nh1\n[web:vars]\nnovalue\n",
        "inv.ini:4:1: error: expected 'key=value' in [web:vars], found 'novalue'",
    );
}

#[test]
fn ini_inventory_unknown_section_type() {
    bad_inventory(
        "inv.ini",
        "[web:bogus]\nh1\n",
        "inv.ini:1:6: error: section [web:bogus] has unknown type 'bogus': expected 'children' or 'vars'",
    );
}

#[test]
fn ini_inventory_group_cycle() {
    bad_inventory(
        "inv.ini",
        "[a:children]\nb\n[b:children]\na\n",
        "inv.ini:4:1: error: making 'a' a child of 'b' creates a cycle: 'b' is already inside 'a'",
    );
}

// ---------------------------------------------------------------- playbooks

#[test]
fn playbook_missing() {
    check(
        &[("inv.yaml", INV.as_bytes())],
        PLAN,
        "pb.yaml:1:1: error: playbook not found (expected a YAML file)",
    );
}

#[test]
fn playbook_is_a_mapping() {
    bad_playbook(
        "hosts: all\ntasks:\n  - ping:\n",
        "pb.yaml:1:1: error: a playbook must be a list of plays, found a mapping",
    );
}

#[test]
fn play_without_hosts() {
    bad_playbook(
        "- tasks:\n    - ping:\n",
        "pb.yaml:1:3: error: play has no 'hosts'",
    );
}

#[test]
fn play_hosts_matching_nothing() {
    bad_playbook(
        "- hosts: nosuch\n  tasks:\n    - ping:\n",
        "pb.yaml:1:10: error: hosts 'nosuch': no host or group matches 'nosuch'",
    );
}

#[test]
fn play_keyword_typo_serail() {
    bad_playbook(
        "- hosts: all\n  serail: 2\n  tasks:\n    - ping:\n",
        "pb.yaml:2:3: error: unknown play keyword 'serail', did you mean 'serial'?",
    );
}

#[test]
fn serial_percentage_not_a_number() {
    bad_playbook(
        "- hosts: all\n  serial: \"x%\"\n  tasks:\n    - ping:\n",
        "pb.yaml:2:11: error: invalid serial value 'x%': expected a number of hosts or a percentage like \"25%\"",
    );
}

#[test]
fn serial_percentage_above_100() {
    bad_playbook(
        "- hosts: all\n  serial: \"150%\"\n  tasks:\n    - ping:\n",
        "pb.yaml:2:11: error: invalid serial value '150%': a percentage must be between 0% and 100%",
    );
}

#[test]
fn canary_errors_are_positioned_and_say_what_was_expected() {
    let cases: &[(&str, &str)] = &[
        (
            "  canary: []\n",
            "pb.yaml:2:11: error: 'canary' must not be an empty list: expected steps like [\"5%\", \"25%\", \"100%\"]",
        ),
        (
            "  canary: \"5%\"\n",
            "pb.yaml:2:11: error: 'canary' must be a list of steps like [\"5%\", \"25%\", \"100%\"], found '5%'",
        ),
        (
            "  canary: [\"5%\", \"x%\"]\n",
            "pb.yaml:2:18: error: invalid canary step 'x%': expected a number of hosts or a percentage like \"25%\", above 0",
        ),
        (
            "  canary: [\"50%\", \"25%\"]\n",
            "pb.yaml:2:19: error: invalid canary step '25%': steps are cumulative and must not decrease, expected at least 50%",
        ),
        (
            "  canary: [3, 1]\n",
            "pb.yaml:2:15: error: invalid canary step '1': steps are cumulative and must not decrease, expected at least 3",
        ),
        (
            "  canary: [\"25%\", \"150%\"]\n",
            "pb.yaml:2:19: error: invalid canary step '150%': expected a percentage above 0% and at most 100%, or a number of hosts",
        ),
        (
            "  canary: [0, \"100%\"]\n",
            "pb.yaml:2:12: error: invalid canary step '0': expected a number of hosts or a percentage like \"25%\", above 0",
        ),
        (
            "  serial: 1\n  canary: [\"50%\"]\n",
            "pb.yaml:3:3: error: 'canary' and 'serial' cannot be used together (serial at pb.yaml:2:3): canary steps are cumulative shares of the hosts, serial steps are batch sizes; keep one",
        ),
    ];
    for (line, first) in cases {
        bad_playbook(
            &format!("- hosts: all\n{line}  tasks:\n    - ping:\n"),
            first,
        );
    }
}

#[test]
fn canary_step_gates_and_analyses_are_checked_before_the_run() {
    let cases: &[(&str, &str)] = &[
        (
            "  canary:\n    - step: 1\n      pasue: 5m\n",
            "pb.yaml:4:7: error: unknown canary step key 'pasue', did you mean 'pause'?",
        ),
        (
            "  canary:\n    - pause: 5m\n",
            "pb.yaml:3:7: error: a canary step written as a mapping needs 'step' (a number of hosts or a percentage like \"25%\")",
        ),
        (
            "  canary:\n    - step: 1\n    - step: 100%\n      approve: go?\n",
            "pb.yaml:5:16: error: 'approve' on the last canary step (100%) has no next step to hold: put it on an earlier step",
        ),
        (
            "  canary:\n    - step: 1\n      pause: soon\n",
            "pb.yaml:4:14: error: invalid duration 'soon' for 'pause': expected a number and a unit (ms, s, m, h), e.g. 500ms or 30s",
        ),
        (
            "  analysis:\n    duration: 1m\n",
            "pb.yaml:3:5: error: 'analysis' needs 'metrics': a list of checks (http, tcp, command, prometheus) with their conditions",
        ),
        (
            "  analysis:\n    metrics:\n      - prometheus: http://p:9090\n        query: up\n",
            "pb.yaml:4:9: error: a prometheus metric needs 'success_condition', 'failure_condition', 'max' or 'min'",
        ),
        (
            "  analysis:\n    metrics:\n      - http: http://a/\n        sucess_condition: status == 200\n",
            "pb.yaml:5:9: error: unknown http probe option 'sucess_condition', did you mean 'success_condition'?",
        ),
        (
            "  analysis:\n    metrics:\n      - command: cat /x\n        success_condition: result <\n",
            "pb.yaml:5:28: error: 'success_condition': syntax error: unexpected end of input, expected expression",
        ),
        (
            "  analysis:\n    metrics:\n      - tcp: a:1\n        baseline: up\n",
            "pb.yaml:5:19: error: 'baseline' is a second PromQL query: only a prometheus metric has one",
        ),
        (
            "  analysis:\n    intervall: 5s\n    metrics:\n      - tcp: a:1\n",
            "pb.yaml:3:5: error: unknown 'analysis' key 'intervall', did you mean 'interval'?",
        ),
        (
            "  windows:\n    allow: [\"Mon-Fry 09:00-16:00 UTC\"]\n",
            "pb.yaml:3:13: error: invalid window 'Mon-Fry 09:00-16:00 UTC': unknown day 'Fry': expected Mon, Tue, Wed, Thu, Fri, Sat or Sun",
        ),
        (
            "  windows:\n    allow: [\"09:00-16:00 Europe/Berln\"]\n",
            "pb.yaml:3:13: error: invalid window '09:00-16:00 Europe/Berln': unknown time zone 'Europe/Berln': expected an IANA name like Europe/Berlin or UTC",
        ),
        (
            "  windows:\n    alow: []\n",
            "pb.yaml:3:5: error: unknown 'windows' key 'alow', did you mean 'allow'?",
        ),
        (
            "  max_fail_percentage: 10\n  max_failed: {per_batch: 20%}\n",
            "pb.yaml:3:3: error: 'max_failed: per_batch' and 'max_fail_percentage' (at pb.yaml:2:3) are the same budget: keep one",
        ),
        (
            "  max_unavailable: 0\n",
            "pb.yaml:2:20: error: 'max_unavailable' fleet budget must be a number of hosts above 0 or a percentage like \"25%\", found '0'",
        ),
        (
            "  canary: [1, \"100%\"]\n  max_unavailable: {per: {rack: 1}}\n",
            "pb.yaml:3:20: error: 'max_unavailable' with 'canary' (at pb.yaml:2:3) is not supported by rdeploy: canary steps are the batches; use 'serial' with 'max_unavailable'",
        ),
        (
            "  max_unavailable: {per: {rack: 0}}\n",
            "pb.yaml:2:33: error: 'per.rack' must be at least 1",
        ),
        (
            "  max_failed: {totl: 2}\n",
            "pb.yaml:2:16: error: unknown 'max_failed' key 'totl', did you mean 'total'?",
        ),
        (
            "  health:\n    - tcp: a:1\n      retries: many\n",
            "pb.yaml:4:16: error: 'retries' must be a non-negative integer, found 'many'",
        ),
    ];
    for (line, first) in cases {
        bad_playbook(
            &format!("- hosts: all\n{line}  tasks:\n    - ping:\n"),
            first,
        );
    }
}

#[test]
fn max_fail_percentage_above_100() {
    bad_playbook(
        "- hosts: all\n  max_fail_percentage: 150\n  tasks:\n    - ping:\n",
        "pb.yaml:2:24: error: 'max_fail_percentage' must be a percentage between 0 and 100, found '150'",
    );
}

#[test]
fn order_unknown() {
    bad_playbook(
        "- hosts: all\n  order: random\n  tasks:\n    - ping:\n",
        "pb.yaml:2:10: error: invalid order 'random', expected one of: inventory, reverse_inventory, sorted, reverse_sorted, shuffle",
    );
}

#[test]
fn become_not_a_boolean() {
    bad_playbook(
        "- hosts: all\n  become: maybe\n  tasks:\n    - ping:\n",
        "pb.yaml:2:11: error: 'become' must be a boolean, found 'maybe'",
    );
}

#[test]
fn soak_duration_without_unit_syntax() {
    bad_playbook(
        "- hosts: all\n  soak: 5 minutes\n  tasks:\n    - ping:\n",
        "pb.yaml:2:9: error: invalid duration '5 minutes' for 'soak': expected a number and a unit (ms, s, m, h), e.g. 500ms or 30s",
    );
}

#[test]
fn unsupported_strategy() {
    bad_playbook(
        "- hosts: all\n  strategy: free\n  tasks:\n    - ping:\n",
        "pb.yaml:2:13: error: strategy 'free' is not supported by rdeploy: it runs plays like Ansible's linear strategy",
    );
}

#[test]
fn unsupported_task_keyword_debugger() {
    bad_playbook(
        "- hosts: all\n  tasks:\n    - command: /bin/true\n      debugger: on_failed\n",
        "pb.yaml:4:7: error: 'debugger' is an Ansible keyword not supported by rdeploy",
    );
}

#[test]
fn unknown_module() {
    bad_playbook(
        "- hosts: all\n  tasks:\n    - frobnicate:\n        x: 1\n",
        "pb.yaml:3:7: error: unknown module 'frobnicate'",
    );
}

#[test]
fn module_typo_with_did_you_mean() {
    bad_playbook(
        "- hosts: all\n  tasks:\n    - cpoy:\n        dest: /x\n        content: y\n",
        "pb.yaml:3:7: error: unknown module 'cpoy', did you mean 'copy'?",
    );
}

#[test]
fn task_keyword_typo() {
    bad_playbook(
        "- hosts: all\n  tasks:\n    - command: /bin/true\n      wehn: yes\n",
        "pb.yaml:4:7: error: unknown task keyword 'wehn', did you mean 'when'?",
    );
}

#[test]
fn task_without_module() {
    bad_playbook(
        "- hosts: all\n  tasks:\n    - name: nothing to do\n",
        "pb.yaml:3:7: error: no module or action found in task",
    );
}

#[test]
fn task_with_two_modules() {
    bad_playbook(
        "- hosts: all\n  tasks:\n    - ping:\n      copy:\n        dest: /x\n        content: y\n",
        "pb.yaml:4:7: error: conflicting action statements: ping, copy",
    );
}

#[test]
fn module_missing_required_argument() {
    bad_playbook(
        "- hosts: all\n  tasks:\n    - copy:\n        content: y\n",
        "pb.yaml:3:7: error: missing required argument 'dest' for module 'copy'",
    );
}

#[test]
fn task_duplicate_key() {
    let err = bad_playbook(
        "- hosts: all\n  tasks:\n    - name: one\n      ping:\n      name: two\n",
        "pb.yaml:5:7: error: duplicate key 'name'",
    );
    assert!(err.contains("note: first defined at pb.yaml:3:7"), "{err}");
}

#[test]
fn notify_unknown_handler() {
    bad_playbook(
        "- hosts: all\n  tasks:\n    - ping:\n      notify: restart nothing\n",
        "pb.yaml:4:15: error: no handler named 'restart nothing' in this play",
    );
}

#[test]
fn playbook_not_utf8() {
    check(
        &[
            ("inv.yaml", INV.as_bytes()),
            (
                "pb.yaml",
                b"- hosts: all\n  name: caf\xe9\n  tasks:\n    - ping:\n",
            ),
        ],
        PLAN,
        "pb.yaml:2:12: error: file is not valid UTF-8",
    );
}

#[test]
fn alias_bomb() {
    let mut pb =
        String::from("- hosts: all\n  vars:\n    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let p = i - 1;
        pb.push_str(&format!(
            "    a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    pb.push_str("  tasks:\n    - ping:\n");
    bad_playbook(
        &pb,
        "pb.yaml:7:49: error: aliases expand to more than 100000 nodes (an alias bomb?)",
    );
}

#[test]
fn playbook_unterminated_quote_is_reported_at_the_opening_quote() {
    bad_playbook(
        "- hosts: all\n  tasks:\n    - debug:\n        msg: \"hello\n    - ping:\n",
        "pb.yaml:4:14: error: invalid YAML: unterminated quoted string: no closing quote before line 5, which is not indented as its continuation",
    );
}

#[test]
fn playbook_tab_after_spaces_in_indentation_is_reported_at_the_tab() {
    bad_playbook(
        "- hosts: all\n  vars:\n    a:\n  \t  - 1\n  tasks:\n    - ping:\n",
        "pb.yaml:4:3: error: invalid YAML: tabs disallowed within this context (block indentation)",
    );
}

#[test]
fn playbook_tab_indenting_the_line_after_a_plain_value_is_reported_at_the_tab() {
    bad_playbook(
        "- hosts: all\n  vars:\n    a: 1\n\t  b: 2\n  tasks:\n    - ping:\n",
        "pb.yaml:4:1: error: invalid YAML: while scanning a plain scalar, found a tab",
    );
}

#[test]
fn nesting_too_deep() {
    let pb = format!(
        "- hosts: all\n  vars:\n    x: {}{}\n  tasks:\n    - ping:\n",
        "[".repeat(300),
        "]".repeat(300)
    );
    bad_playbook(
        &pb,
        "pb.yaml:3:263: error: invalid YAML: recursion limit exceeded",
    );
}

// ---------------------------------------------------------------- templates and variables

#[test]
fn undefined_variable_in_task() {
    let err = bad_playbook(
        "- hosts: all\n  tasks:\n    - debug:\n        msg: \"release {{ release }}\"\n",
        "pb.yaml:4:14: error: 'release' is undefined",
    );
    assert!(
        err.contains("note: in template: release {{ release }}"),
        "{err}"
    );
}

#[test]
fn filters_and_lookups_after_an_operator_on_a_run_time_value_are_still_checked() {
    // `'^' + item` stops the check's render (the loop item is a stand-in); what follows it is
    // still checked by name, before the run.
    let err = bad_playbook(
        "- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ ('^' + item) | to_jsn }}\"\n      loop: [a]\n",
        "pb.yaml:4:14: error: unknown filter 'to_jsn', did you mean 'to_json'?",
    );
    assert!(
        err.contains("note: in template: {{ ('^' + item) | to_jsn }}"),
        "{err}"
    );
    bad_playbook(
        "- hosts: all\n  tasks:\n    - command: echo hi\n      register: r\n    - debug:\n        msg: \"{{ (r.stdout + 'x') | json_query('a') }}\"\n",
        "pb.yaml:6:14: error: filter 'json_query' (community.general) is not supported by rdeploy",
    );
    bad_playbook(
        "- hosts: all\n  tasks:\n    - command: echo hi\n      register: r\n    - debug:\n        msg: \"{{ r.rc % 2 }}\"\n      when: (r.stdout + 'x') is sucess\n",
        "pb.yaml:7:13: error: unknown test 'sucess', did you mean 'success'?",
    );
    bad_playbook(
        "- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ lookup('hashi_vault', 'secret/' + item) }}\"\n      loop: [a]\n",
        "pb.yaml:4:14: error: lookup plugin 'hashi_vault' is not supported by rdeploy (rdeploy has: file, template, env, pipe, fileglob, first_found, lines, password, vars, varnames, flattened, items, list, dict, subelements, sequence, indexed_items, together, nested)",
    );
    bad_playbook(
        "- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ lookup('file', 'x' + item, lstrip=true, colour='red') }}\"\n      loop: [a]\n",
        "pb.yaml:4:14: error: lookup('file') has no option 'colour' (it takes lstrip, rstrip)",
    );
}

#[test]
fn an_operator_on_a_run_time_value_with_known_names_passes_the_check() {
    let sb = Sandbox::new();
    sb.write("inv.yaml", INV);
    sb.write(
        "pb.yaml",
        "- hosts: all\n  tasks:\n    - command: echo hi\n      register: r\n    - debug:\n        msg: \"{{ ('^' + item) | to_json }} {{ (r.stdout + 'x') | regex_replace('x', 'y') }} {{ lookup('env', 'HOME' + item, default='') }}\"\n      loop: [a]\n      when: (r.stdout + 'x') is not failed\n",
    );
    let out = sb.rdeploy(PLAN).output().expect("run rdeploy");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_fact_rdeploy_does_not_gather_is_named_so_not_called_undefined() {
    bad_playbook(
        "- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ ansible_bios_date }}\"\n",
        "pb.yaml:4:14: error: fact 'bios_date' is not gathered by rdeploy",
    );
    bad_playbook(
        "- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ ansible_facts.product_uuid }}\"\n",
        "pb.yaml:4:14: error: fact 'product_uuid' is not gathered by rdeploy",
    );
}

#[test]
fn a_misspelt_fact_is_still_undefined_before_the_run() {
    bad_playbook(
        "- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ ansible_facts.os_famly }}\"\n",
        "pb.yaml:4:14: error: 'ansible_facts.os_famly' is undefined",
    );
    bad_playbook(
        "- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ ansible_hostnme }}\"\n",
        "pb.yaml:4:14: error: 'ansible_hostnme' is undefined",
    );
}

#[test]
fn gathered_and_interface_facts_pass_the_plan_time_check() {
    let sb = Sandbox::new();
    sb.write("inv.yaml", INV);
    sb.write(
        "pb.yaml",
        "- hosts: all\n  gather_subset: [\"!all\", network]\n  tasks:\n    - debug:\n        msg: >-\n          {{ ansible_eth0.ipv4.address }} {{ ansible_default_ipv4.gateway }}\n          {{ ansible_facts.mounts | map(attribute='mount') | list }}\n          {{ ansible_facts['date_time'].epoch }} {{ ansible_lsb.codename | default('') }}\n          {{ ansible_facts.bios_date | default('none') }} {{ ansible_python.executable }}\n",
    );
    let out = sb.rdeploy(PLAN).output().expect("run rdeploy");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn an_unknown_gather_subset_is_refused_before_the_run() {
    bad_playbook(
        "- hosts: all\n  gather_subset: [min, netwrk]\n  tasks:\n    - ping:\n",
        "pb.yaml:2:18: error: unknown gather_subset 'netwrk' (all, min, network, hardware, virtual, each may be negated with '!'), did you mean 'network'?",
    );
    bad_playbook(
        "- hosts: all\n  tasks:\n    - setup:\n        gather_subset: facter\n",
        "pb.yaml:4:24: error: gather_subset 'facter' is not supported by rdeploy (it gathers all, min, network, hardware, virtual)",
    );
}

#[test]
fn template_syntax_error_in_task() {
    bad_playbook(
        "- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ foo \"\n",
        "pb.yaml:4:14: error: template syntax error: unexpected end of input, expected end of variable block",
    );
}

#[test]
fn when_syntax_error() {
    bad_playbook(
        "- hosts: all\n  tasks:\n    - ping:\n      when: \"x ==\"\n",
        "pb.yaml:4:13: error: template syntax error: unexpected end of input, expected expression",
    );
}

#[test]
fn play_vars_syntax_error() {
    bad_playbook(
        "- hosts: all\n  vars:\n    greeting: \"{% if %}\"\n  tasks:\n    - ping:\n",
        "pb.yaml:3:15: error: template syntax error: unexpected end of block",
    );
}

#[test]
fn vars_files_entry_missing() {
    bad_playbook(
        "- hosts: all\n  vars_files:\n    - missing.yaml\n  tasks:\n    - ping:\n",
        "pb.yaml:3:7: error: vars file 'missing.yaml' not found",
    );
}

const VARS_FILES_PB: &str = "- hosts: all
  vars_files:
    - vars/main.yaml
  tasks:
    - debug:
        msg: \"{{ greeting }}\"
";

#[test]
fn vars_file_undefined_variable_is_reported_where_used() {
    check(
        &[
            ("inv.yaml", INV.as_bytes()),
            ("pb.yaml", VARS_FILES_PB.as_bytes()),
            ("vars/main.yaml", b"greeting: \"{{ nobody }}\"\n"),
        ],
        PLAN,
        "pb.yaml:6:14: error: variable 'greeting': 'nobody' is undefined",
    );
}

/// Play `vars:`, role defaults and role vars are all syntax-checked; a vars file must be too.
#[test]
fn vars_file_template_syntax_error() {
    check(
        &[
            ("inv.yaml", INV.as_bytes()),
            ("pb.yaml", VARS_FILES_PB.as_bytes()),
            ("vars/main.yaml", b"greeting: \"{% if %}\"\n"),
        ],
        PLAN,
        "vars/main.yaml:1:11: error: template syntax error: unexpected end of block",
    );
}

/// The file's content is what must be a mapping; `vars_files` itself is rightly a list.
#[test]
fn vars_file_not_a_mapping_names_the_file_not_the_keyword() {
    check(
        &[
            ("inv.yaml", INV.as_bytes()),
            ("pb.yaml", VARS_FILES_PB.as_bytes()),
            ("vars/main.yaml", b"- not\n- a mapping\n"),
        ],
        PLAN,
        "vars/main.yaml:1:1: error: a vars file must be a mapping, found a list",
    );
}

// ---------------------------------------------------------------- roles

const ROLE_PB: &str = "- hosts: all\n  roles:\n    - app\n";
const ROLE_TASKS: &[u8] =
    b"- name: render\n  template:\n    src: app.conf.j2\n    dest: /etc/app.conf\n";

/// The role `app` with a template task, plus `extra` files.
fn bad_role(extra: &[(&str, &[u8])], first: &str) -> String {
    let mut files: Vec<(&str, &[u8])> = vec![
        ("inv.yaml", INV.as_bytes()),
        ("pb.yaml", ROLE_PB.as_bytes()),
        ("roles/app/tasks/main.yml", ROLE_TASKS),
        ("roles/app/templates/app.conf.j2", b"port = 80\n"),
        ("roles/app/defaults/main.yml", b"app_port: 80\n"),
    ];
    for (p, b) in extra {
        match files.iter_mut().find(|(q, _)| q == p) {
            Some(slot) => slot.1 = b,
            None => files.push((p, b)),
        }
    }
    check(&files, PLAN, first)
}

#[test]
fn role_missing() {
    let err = bad_playbook(
        "- hosts: all\n  roles:\n    - nosuchrole\n",
        "pb.yaml:3:7: error: role 'nosuchrole' not found",
    );
    assert!(err.contains("note: looked in: roles/nosuchrole"), "{err}");
}

#[test]
fn role_meta_dependency_missing() {
    bad_role(
        &[(
            "roles/app/meta/main.yml",
            b"dependencies:\n  - missingdep\n",
        )],
        "roles/app/meta/main.yml:2:5: error: role 'missingdep' not found",
    );
}

#[test]
fn role_task_module_typo() {
    bad_role(
        &[(
            "roles/app/tasks/main.yml",
            b"- name: render\n  tempalte:\n    src: app.conf.j2\n    dest: /etc/app.conf\n",
        )],
        "roles/app/tasks/main.yml:2:3: error: unknown module 'tempalte', did you mean 'template'?",
    );
}

#[test]
fn role_template_source_missing() {
    bad_role(
        &[(
            "roles/app/tasks/main.yml",
            b"- name: render\n  template:\n    src: nosuch.j2\n    dest: /etc/app.conf\n",
        )],
        "roles/app/tasks/main.yml:3:10: error: template source 'nosuch.j2' not found on the controller",
    );
}

#[test]
fn role_template_file_syntax_error_is_reported_at_its_line_and_column() {
    bad_role(
        &[(
            "roles/app/templates/app.conf.j2",
            b"port = {{ app_port }}\nname = {{ app_name\n",
        )],
        "roles/app/templates/app.conf.j2:2:11: error: template syntax error: unexpected end of input, expected end of variable block",
    );
}

#[test]
fn role_template_file_undefined_variable_is_reported_at_its_line_and_column() {
    bad_role(
        &[(
            "roles/app/templates/app.conf.j2",
            b"# config\nlisten = 0.0.0.0\nport = {{ nope }}\n",
        )],
        "roles/app/templates/app.conf.j2:3:11: error: 'nope' is undefined",
    );
}

#[test]
fn role_defaults_broken_yaml() {
    bad_role(
        &[("roles/app/defaults/main.yml", b"app_port: [8080\n")],
        "roles/app/defaults/main.yml:1:11: error: invalid YAML: unclosed bracket '['",
    );
}

#[test]
fn role_vars_template_syntax_error() {
    bad_role(
        &[("roles/app/vars/main.yml", b"app_port: \"{% if %}\"\n")],
        "roles/app/vars/main.yml:1:11: error: template syntax error: unexpected end of block",
    );
}

// ---------------------------------------------------------------- task files

#[test]
fn include_tasks_file_missing() {
    bad_playbook(
        "- hosts: all\n  tasks:\n    - include_tasks: nosuch.yaml\n",
        "pb.yaml:3:22: error: task file 'nosuch.yaml' not found",
    );
}

#[test]
fn include_cycle() {
    check(
        &[
            ("inv.yaml", INV.as_bytes()),
            (
                "pb.yaml",
                b"- hosts: all\n  tasks:\n    - include_tasks: a.yaml\n",
            ),
            ("a.yaml", b"- import_tasks: b.yaml\n"),
            ("b.yaml", b"- import_tasks: a.yaml\n"),
        ],
        PLAN,
        "b.yaml:1:17: error: include cycle: a.yaml -> b.yaml -> a.yaml",
    );
}

#[test]
fn imported_task_file_keyword_typo() {
    check(
        &[
            ("inv.yaml", INV.as_bytes()),
            (
                "pb.yaml",
                b"- hosts: all\n  tasks:\n    - import_tasks: tasks/inc.yaml\n",
            ),
            (
                "tasks/inc.yaml",
                b"- name: bad\n  command: echo hi\n  becom: yes\n",
            ),
        ],
        PLAN,
        "tasks/inc.yaml:3:3: error: unknown task keyword 'becom', did you mean 'become'?",
    );
}

#[test]
fn task_file_is_a_mapping() {
    check(
        &[
            ("inv.yaml", INV.as_bytes()),
            (
                "pb.yaml",
                b"- hosts: all\n  tasks:\n    - import_tasks: tasks/inc.yaml\n",
            ),
            ("tasks/inc.yaml", b"name: not a list\n"),
        ],
        PLAN,
        "tasks/inc.yaml:1:1: error: a task file must be a list of tasks, found a mapping",
    );
}

// ---------------------------------------------------------------- options

#[test]
fn extra_vars_without_value() {
    bad_option(
        &["-e", "novalue"],
        "rdeploy: error: -e 'novalue': expected key=value, found 'novalue'",
    );
}

#[test]
fn extra_vars_key_not_an_identifier() {
    bad_option(
        &["-e", "1x=2"],
        "rdeploy: error: -e '1x=2': expected key=value, found '1x=2'",
    );
}

#[test]
fn extra_vars_unterminated_quote() {
    bad_option(
        &["-e", "a='open"],
        "rdeploy: error: -e 'a='open': unterminated quote",
    );
}

#[test]
fn extra_vars_json_list() {
    bad_option(
        &["-e", "[1, 2]"],
        "<extra vars>:1:1: error: extra vars from <extra vars> must be a mapping, found a list",
    );
}

#[test]
fn extra_vars_broken_json() {
    bad_option(
        &["-e", "{\"release\":"],
        "<extra vars>:1:1: error: invalid YAML: unclosed bracket '{'",
    );
}

#[test]
fn extra_vars_file_missing() {
    bad_option(
        &["-e", "@missing.yaml"],
        "missing.yaml:1:1: error: cannot read file: No such file or directory (os error 2)",
    );
}

#[test]
fn limit_intersection_without_pattern() {
    bad_option(
        &["--limit", "web:&"],
        "rdeploy: error: --limit 'web:&': '&' must be followed by a host pattern",
    );
}

#[test]
fn limit_file_missing() {
    bad_option(
        &["--limit", "@missing-file"],
        "missing-file:1:1: error: cannot read file: No such file or directory (os error 2)",
    );
}

#[test]
fn limit_file_empty() {
    check(
        &[
            ("inv.yaml", INV.as_bytes()),
            ("pb.yaml", OK_PB.as_bytes()),
            ("retry", b"\n\n"),
        ],
        &["plan", "pb.yaml", "-i", "inv.yaml", "--limit", "@retry"],
        "retry:1:1: error: limit file names no hosts",
    );
}

#[test]
fn limit_empty_pattern() {
    bad_option(
        &["--limit", ""],
        "rdeploy: error: --limit '': the host pattern is empty",
    );
}

#[test]
fn limit_unknown_name_with_did_you_mean() {
    bad_option(
        &["--limit", "webb"],
        "rdeploy: error: --limit 'webb': no host or group matches 'webb' (did you mean 'web'?)",
    );
}

#[test]
fn limit_invalid_regex() {
    bad_option(
        &["--limit", "~(web"],
        "rdeploy: error: --limit '~(web': invalid regular expression in host pattern '~(web': regex parse error:",
    );
}

#[test]
fn limit_subscript_out_of_range() {
    bad_option(
        &["--limit", "web[5]"],
        "rdeploy: error: --limit 'web[5]': no hosts matched the subscripted pattern 'web[5]': it selects 2 host(s)",
    );
}

#[test]
fn output_format_unknown() {
    bad_option(
        &["--output", "xml"],
        "error: invalid value 'xml' for '--output <OUTPUT>'",
    );
}

#[test]
fn inventory_host_unknown() {
    check(
        &[("inv.yaml", INV.as_bytes())],
        &["inventory", "-i", "inv.yaml", "--host", "nosuch"],
        "rdeploy: error: host 'nosuch' is not in the inventory",
    );
}

#[test]
fn inventory_graph_unknown_group() {
    check(
        &[("inv.yaml", INV.as_bytes())],
        &["inventory", "-i", "inv.yaml", "--graph", "nosuchgroup"],
        "rdeploy: error: group 'nosuchgroup' is not in the inventory",
    );
}

#[test]
fn syntax_check_reports_undefined_variable() {
    check(
        &[
            ("inv.yaml", INV.as_bytes()),
            (
                "pb.yaml",
                b"- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ nope }}\"\n",
            ),
        ],
        &["run", "pb.yaml", "-i", "inv.yaml", "--syntax-check"],
        "pb.yaml:4:14: error: 'nope' is undefined",
    );
}

// ---------------------------------------------------------------- several mistakes at once

const THREE_MISTAKES: &str = "- hosts: all
  serail: 2
  tasks:
    - name: copy the config
      cpoy:
        dest: /etc/app.conf
        content: x
    - name: run it
      command: /usr/bin/app --check
      wehn: app_enabled
";

#[test]
fn one_file_with_three_mistakes_reports_all_three() {
    let err = bad_playbook(
        THREE_MISTAKES,
        "pb.yaml:2:3: error: unknown play keyword 'serail', did you mean 'serial'?",
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "pb.yaml:2:3: error: unknown play keyword 'serail', did you mean 'serial'?",
            "pb.yaml:5:7: error: unknown module 'cpoy', did you mean 'copy'?",
            "pb.yaml:10:7: error: unknown task keyword 'wehn', did you mean 'when'?",
            "rdeploy: 3 errors found; nothing was run",
        ],
        "{err}"
    );
}

#[test]
fn inventory_and_playbook_mistakes_are_reported_together() {
    let err = check(
        &[
            ("inv.yaml", b"all:\n  hostz:\n    h1:\n"),
            ("pb.yaml", THREE_MISTAKES.as_bytes()),
        ],
        PLAN,
        "inv.yaml:2:3: error: unknown key 'hostz' in group 'all': expected 'hosts', 'children' or 'vars'",
    );
    let errors: Vec<&str> = err.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(
        errors,
        [
            "inv.yaml:2:3: error: unknown key 'hostz' in group 'all': expected 'hosts', 'children' or 'vars'",
            "pb.yaml:2:3: error: unknown play keyword 'serail', did you mean 'serial'?",
            "pb.yaml:5:7: error: unknown module 'cpoy', did you mean 'copy'?",
            "pb.yaml:10:7: error: unknown task keyword 'wehn', did you mean 'when'?",
        ],
        "{err}"
    );
    assert_eq!(
        err.lines().last(),
        Some("rdeploy: 4 errors found; nothing was run")
    );
}

#[test]
fn every_bad_serial_form_in_one_list_is_reported() {
    let err = bad_playbook(
        "- hosts: all\n  serial: [1, \"x%\", -2, \"150%\"]\n  tasks:\n    - ping:\n",
        "pb.yaml:2:15: error: invalid serial value 'x%': expected a number of hosts or a percentage like \"25%\"",
    );
    assert!(
        err.contains("pb.yaml:2:21: error: invalid serial value -2: must not be negative"),
        "{err}"
    );
    assert!(
        err.contains("pb.yaml:2:25: error: invalid serial value '150%'"),
        "{err}"
    );
    assert!(
        err.ends_with("rdeploy: 3 errors found; nothing was run\n"),
        "{err}"
    );
}

/// ansible.cfg in the current directory is read as Ansible reads it; a value of the wrong
/// type is an error at its position and nothing runs.
#[test]
fn ansible_cfg_bad_forks() {
    check(
        &[
            ("inv.yaml", INV.as_bytes()),
            ("pb.yaml", OK_PB.as_bytes()),
            (
                "ansible.cfg",
                b"[defaults]\ninventory = inv.yaml\nforks = many\n",
            ),
        ],
        &["plan", "pb.yaml"],
        "ansible.cfg:3:9: error: 'forks' must be a positive whole number, found 'many'",
    );
}

/// Connection variables whose written value can never work are refused where they are
/// written, before the first connection (they used to fail at run time, after earlier
/// batches were deployed, and `ansible_connection=telnet` silently ran over SSH).
#[test]
fn connection_variables_that_cannot_work_are_refused_before_any_connection() {
    let err = check(
        &[
            (
                "inv.ini",
                b"[web]\nw1 ansible_host=127.0.0.1 ansible_port=twenty-two\nw2 ansible_connection=telnet\n[web:vars]\nansible_ssh_host_key_checking=maybe\n",
            ),
            ("group_vars/web.yml", b"ansible_port: 70000\n"),
            ("pb.yaml", b"- hosts: web\n  tasks:\n    - ping:\n"),
        ],
        &["run", "pb.yaml", "-i", "inv.ini"],
        "./group_vars/web.yml:1:15: error: ansible_port must be a port number from 1 to 65535, found '70000'",
    );
    for line in [
        "inv.ini:2:40: error: ansible_port must be a port number from 1 to 65535, found 'twenty-two'",
        "inv.ini:3:23: error: ansible_connection 'telnet' is not supported by rdeploy (expected local or ssh)",
        "inv.ini:5:31: error: ansible_ssh_host_key_checking must be a boolean, strict or accept-new, found 'maybe'",
    ] {
        assert!(err.contains(line), "{line}\n{err}");
    }
    bad_option(
        &["-e", "ansible_ssh_timeout=soon"],
        "rdeploy: error: -e ansible_ssh_timeout must be a whole number of seconds, found 'soon'",
    );
}

/// A literal `delegate_to` that names no host of the inventory (nor `localhost`) is refused
/// before the run (it used to fail at run time), with what to do.
#[test]
fn delegate_to_a_host_the_inventory_does_not_have() {
    let err = bad_playbook(
        "- hosts: all\n  tasks:\n    - ping:\n      delegate_to: nosuchhost\n    - ping:\n      delegate_to: 127.0.0.1\n    - ping:\n      delegate_to: \"{{ groups['web'][0] }}\"\n",
        "pb.yaml:4:20: error: delegate_to 'nosuchhost': no host of the inventory is called that",
    );
    assert!(err.contains("1 error found"), "{err}");
}

#[test]
fn a_filter_or_test_of_the_playbooks_or_a_roles_python_plugins_is_named_as_such() {
    let plugin = b"class FilterModule(object):\n    def filters(self):\n        return {'shout': lambda s: s.upper()}\n";
    let tests = b"class TestModule(object):\n    def tests(self):\n        return {\"loud\": lambda s: s.isupper()}\n";
    let err = check(
        &[
            ("inv.yaml", INV.as_bytes()),
            (
                "pb.yaml",
                b"- hosts: all\n  roles: [r]\n  tasks:\n    - debug: msg=\"{{ 'hi' | shout }}\"\n",
            ),
            ("filter_plugins/shout.py", plugin),
            (
                "roles/r/tasks/main.yml",
                b"- debug: msg=\"{{ 'HI' is loud }}\"\n",
            ),
            ("roles/r/test_plugins/loud.py", tests),
        ],
        PLAN,
        "pb.yaml:4:14: error: filter 'shout' is a Python plugin (filter_plugins/shout.py): not supported by rdeploy",
    );
    assert!(
        err.contains("test 'loud' is a Python plugin (")
            && err.contains("loud.py): not supported by rdeploy"),
        "{err}"
    );
}
