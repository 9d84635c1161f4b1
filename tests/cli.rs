//! End-to-end tests of the pre-flight CLI, run as a user would run the binary: `rdeploy plan`
//! of the example playbooks against the example inventories (batches, JSON output, `--limit`
//! in all its forms and the exit codes 4 and 7 when it selects nothing), `rdeploy run
//! --syntax-check/--list-hosts/--list-tasks/--list-tags` in ansible-playbook's layout (the
//! expected texts were produced by ansible-core 2.19 on the same files), `--tags`/
//! `--skip-tags`, `rdeploy inventory --list/--graph/--host`, `rdeploy doc`, the `-e` forms
//! reaching templates as data, and that `plan` never opens a connection to a host.

mod support;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::Duration;

use predicates::prelude::*;
use serde_json::Value;
use support::{Sandbox, rdeploy_in_repo, stderr, stdout};

/// `rdeploy ARGS` from the repository root; asserts the exit code and returns stdout.
fn ok(args: &[&str]) -> String {
    let out = rdeploy_in_repo().args(args).output().expect("run rdeploy");
    assert_eq!(
        out.status.code(),
        Some(0),
        "rdeploy {args:?}\nstderr:\n{}",
        stderr(&out)
    );
    stdout(&out)
}

/// `rdeploy plan ... --output json` from the repository root, parsed.
fn plan_json(args: &[&str]) -> Value {
    let mut all = vec!["plan"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--output", "json"]);
    serde_json::from_str(&ok(&all)).expect("plan --output json prints one JSON document")
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a JSON list")
        .iter()
        .map(|h| h.as_str().expect("a host name").to_string())
        .collect()
}

/// The batch sizes of play `i`, after checking that every host is in exactly one batch and
/// that the batches, in order, are the play's hosts.
fn batch_sizes(plan: &Value, i: usize) -> Vec<usize> {
    let play = &plan["plays"][i];
    let hosts = names(&play["hosts"]);
    let batches: Vec<Vec<String>> = play["batches"]
        .as_array()
        .expect("batches is a list")
        .iter()
        .map(names)
        .collect();
    let flat: Vec<String> = batches.iter().flatten().cloned().collect();
    assert_eq!(flat, hosts, "the batches, in order, are the play's hosts");
    let unique: BTreeSet<&String> = flat.iter().collect();
    assert_eq!(
        unique.len(),
        flat.len(),
        "a host is in two batches: {flat:?}"
    );
    batches.iter().map(Vec::len).collect()
}

fn web_prod(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range
        .map(|i| format!("web{i:02}.prod.example.com"))
        .collect()
}

// ---------------------------------------------------------------- plan of the examples

#[test]
fn plan_site_on_local_inventory() {
    let out = ok(&["plan", "playbooks/site.yaml", "-i", "inventory/local.yaml"]);
    assert!(out.starts_with("playbook: playbooks/site.yaml\n"), "{out}");
    assert!(
        out.contains("play #1 (local): Deploy the demo app locally\n  hosts (1), 1 batch:\n    batch 1 (1): localhost\n  tasks (10):\n"),
        "{out}"
    );
    assert!(
        out.contains("    app : Write the app configuration  [template]\n"),
        "{out}"
    );
    assert!(
        out.contains("    app : restart app  [command]  (not reversible: add creates:, removes: or a rollback: task)\n"),
        "{out}"
    );
}

#[test]
fn plan_rolling_web_on_prod_ramps_1_5_14() {
    let out = ok(&["plan", "playbooks/rolling-web.yaml", "-i", "inventory/prod"]);
    assert!(out.contains("  hosts (20), 3 batches:\n"), "{out}");
    assert!(
        out.contains("    batch 1 (1): web01.prod.example.com\n"),
        "{out}"
    );
    assert!(
        out.contains("    batch 2 (5): web02.prod.example.com, web03.prod.example.com, web04.prod.example.com, web05.prod.example.com, web06.prod.example.com\n"),
        "{out}"
    );
    assert!(
        out.contains("    batch 3 (14): web07.prod.example.com, "),
        "{out}"
    );

    let plan = plan_json(&["playbooks/rolling-web.yaml", "-i", "inventory/prod"]);
    assert_eq!(batch_sizes(&plan, 0), [1, 5, 14]);
    assert_eq!(names(&plan["plays"][0]["hosts"]), web_prod(1..=20));
}

#[test]
fn plan_rolling_web_on_staging_web_hosts() {
    // 3 hosts: the canary, then 25% of 3 rounded down but at least 1, then the rest.
    let plan = plan_json(&["playbooks/rolling-web.yaml", "-i", "inventory/staging.yaml"]);
    assert_eq!(batch_sizes(&plan, 0), [1, 1, 1]);
    assert_eq!(
        names(&plan["plays"][0]["hosts"]),
        ["web01.staging", "web02.staging", "web03.staging"]
    );
}

#[test]
fn plan_rolling_web_on_dev_ini() {
    let plan = plan_json(&["playbooks/rolling-web.yaml", "-i", "inventory/dev.ini"]);
    assert_eq!(batch_sizes(&plan, 0), [1, 1]);
    assert_eq!(
        names(&plan["plays"][0]["hosts"]),
        ["web01.dev", "web02.dev"]
    );
}

#[test]
fn plan_of_a_playbook_whose_hosts_are_not_in_the_inventory_is_invalid_input() {
    for (pb, inv, first) in [
        (
            "playbooks/site.yaml",
            "inventory/dev.ini",
            "playbooks/site.yaml:5:10: error: hosts 'local': no host or group matches 'local'",
        ),
        (
            "playbooks/site.yaml",
            "inventory/prod",
            "playbooks/site.yaml:5:10: error: hosts 'local': no host or group matches 'local'",
        ),
        (
            "playbooks/rolling-web.yaml",
            "inventory/local.yaml",
            "playbooks/rolling-web.yaml:6:10: error: hosts 'web': no host or group matches 'web'",
        ),
    ] {
        let out = rdeploy_in_repo()
            .args(["plan", pb, "-i", inv])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4), "{pb} on {inv}");
        assert_eq!(stderr(&out).lines().next(), Some(first), "{pb} on {inv}");
    }
}

#[test]
fn plan_json_shape_for_every_example_pair() {
    for (pb, inv) in [
        ("playbooks/site.yaml", "inventory/local.yaml"),
        ("playbooks/rolling-web.yaml", "inventory/dev.ini"),
        ("playbooks/rolling-web.yaml", "inventory/staging.yaml"),
        ("playbooks/rolling-web.yaml", "inventory/prod"),
    ] {
        let plan = plan_json(&[pb, "-i", inv]);
        let plays = plan["plays"].as_array().expect("plays is a list");
        assert_eq!(plays.len(), 1, "{pb} on {inv}");
        let play = &plays[0];
        assert!(play["name"].is_string(), "{pb} on {inv}: {play}");
        assert!(!names(&play["hosts"]).is_empty(), "{pb} on {inv}");
        batch_sizes(&plan, 0);
        let tasks = play["tasks"].as_array().expect("tasks is a list");
        assert!(!tasks.is_empty(), "{pb} on {inv}");
        for t in tasks {
            assert!(t["name"].is_string() && t["module"].is_string(), "{t}");
        }
    }
    let site = plan_json(&["playbooks/site.yaml", "-i", "inventory/local.yaml"]);
    let modules: Vec<&str> = site["plays"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["module"].as_str().unwrap())
        .collect();
    assert_eq!(
        modules,
        [
            "debug", "file", "template", "copy", "copy", "file", "file", "stat", "assert", "debug"
        ]
    );
}

// ---------------------------------------------------------------- --limit

fn prod_limited(limit: &str) -> Value {
    plan_json(&[
        "playbooks/rolling-web.yaml",
        "-i",
        "inventory/prod",
        "--limit",
        limit,
    ])
}

#[test]
fn limit_by_host_name() {
    let plan = prod_limited("web07.prod.example.com");
    assert_eq!(
        names(&plan["plays"][0]["hosts"]),
        ["web07.prod.example.com"]
    );
    assert_eq!(batch_sizes(&plan, 0), [1]);
}

#[test]
fn limit_by_group_keeps_the_whole_play() {
    let plan = prod_limited("prod");
    assert_eq!(names(&plan["plays"][0]["hosts"]), web_prod(1..=20));
    assert_eq!(batch_sizes(&plan, 0), [1, 5, 14]);
}

#[test]
fn limit_exclusion_and_percentages_after_the_limit() {
    // 19 hosts left: 25% of 19 is 4.75, rounded down to 4.
    let plan = prod_limited("web:!web01*");
    assert_eq!(names(&plan["plays"][0]["hosts"]), web_prod(2..=20));
    assert_eq!(batch_sizes(&plan, 0), [1, 4, 14]);
}

#[test]
fn limit_slice_then_serial() {
    // 8 hosts: 1, then 25% of 8 = 2, then the rest.
    let plan = prod_limited("web[0:7]");
    assert_eq!(names(&plan["plays"][0]["hosts"]), web_prod(1..=8));
    assert_eq!(batch_sizes(&plan, 0), [1, 2, 5]);
}

#[test]
fn limit_union_with_commas_keeps_inventory_order_per_term() {
    let plan = prod_limited("web05.prod.example.com,web02.prod.example.com,lb01.prod.example.com");
    // lb01 is not in the play; the play's hosts keep the inventory order.
    assert_eq!(
        names(&plan["plays"][0]["hosts"]),
        ["web02.prod.example.com", "web05.prod.example.com"]
    );
    assert_eq!(batch_sizes(&plan, 0), [1, 1]);
}

#[test]
fn limit_from_file() {
    let sb = Sandbox::new();
    sb.write(
        "retry",
        "web03.prod.example.com\n\nweb11.prod.example.com\nweb12.prod.example.com\n",
    );
    let file = format!("@{}", sb.path().join("retry").display());
    let plan = prod_limited(&file);
    assert_eq!(
        names(&plan["plays"][0]["hosts"]),
        [
            "web03.prod.example.com",
            "web11.prod.example.com",
            "web12.prod.example.com"
        ]
    );
    assert_eq!(batch_sizes(&plan, 0), [1, 1, 1]);
}

#[test]
fn limit_naming_nothing_is_invalid_input() {
    rdeploy_in_repo()
        .args(["plan", "playbooks/rolling-web.yaml", "-i", "inventory/prod"])
        .args(["--limit", "web99.prod.example.com"])
        .assert()
        .code(4)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "rdeploy: error: --limit 'web99.prod.example.com': no host or group matches 'web99.prod.example.com'",
        ))
        .stderr(predicate::str::ends_with(
            "rdeploy: 1 error found; nothing was run\n",
        ));
}

#[test]
fn limit_with_an_empty_intersection_is_no_hosts_matched() {
    for limit in ["web:&db", "db", "lb01.prod.example.com"] {
        rdeploy_in_repo()
            .args(["plan", "playbooks/rolling-web.yaml", "-i", "inventory/prod"])
            .args(["--limit", limit])
            .assert()
            .code(7)
            .stderr(predicate::str::contains("no hosts matched"));
    }
}

// ---------------------------------------------------------------- run --syntax-check / --list-*

const SITE_TASKS: &str = "
playbook: playbooks/site.yaml

  play #1 (local): Deploy the demo app locally\tTAGS: []
    tasks:
      Say what is about to happen\tTAGS: [always]
      app : Create the release directory\tTAGS: [app]
      app : Write the app configuration\tTAGS: [app]
      app : Install the start script\tTAGS: [app]
      app : Record the version\tTAGS: [app]
      app : Point current at this release\tTAGS: [app]
      app : Mark the release ready\tTAGS: [app]
      Check the current release\tTAGS: []
      The release is in place\tTAGS: []
      Done\tTAGS: []
";

fn site(extra: &[&str]) -> String {
    let mut args = vec!["run", "playbooks/site.yaml", "-i", "inventory/local.yaml"];
    args.extend_from_slice(extra);
    ok(&args)
}

#[test]
fn syntax_check_of_the_examples_passes() {
    assert_eq!(
        site(&["--syntax-check"]),
        "\nplaybook: playbooks/site.yaml\n"
    );
    for inv in [
        "inventory/dev.ini",
        "inventory/staging.yaml",
        "inventory/prod",
    ] {
        assert_eq!(
            ok(&[
                "run",
                "playbooks/rolling-web.yaml",
                "-i",
                inv,
                "--syntax-check"
            ]),
            "\nplaybook: playbooks/rolling-web.yaml\n"
        );
    }
}

#[test]
fn list_hosts_layout() {
    assert_eq!(
        site(&["--list-hosts"]),
        "
playbook: playbooks/site.yaml

  play #1 (local): Deploy the demo app locally\tTAGS: []
    pattern: ['local']
    hosts (1):
      localhost
"
    );
    assert_eq!(
        ok(&[
            "run",
            "playbooks/rolling-web.yaml",
            "-i",
            "inventory/staging.yaml",
            "--list-hosts"
        ]),
        "
playbook: playbooks/rolling-web.yaml

  play #1 (web): Roll out the app to the web tier\tTAGS: []
    pattern: ['web']
    hosts (3):
      web01.staging
      web02.staging
      web03.staging
"
    );
}

#[test]
fn list_tasks_layout() {
    assert_eq!(site(&["--list-tasks"]), SITE_TASKS);
}

#[test]
fn list_tags_layout() {
    assert_eq!(
        site(&["--list-tags"]),
        "
playbook: playbooks/site.yaml

  play #1 (local): Deploy the demo app locally\tTAGS: []
      TASK TAGS: [always, app]
"
    );
}

/// ansible-playbook prints one section per play with the hosts, the tasks and the tags in it,
/// not one whole listing per flag.
#[test]
fn list_hosts_tasks_and_tags_together_make_one_listing() {
    let expected = SITE_TASKS.replace(
        "\tTAGS: []\n    tasks:\n",
        "\tTAGS: []\n    pattern: ['local']\n    hosts (1):\n      localhost\n    tasks:\n",
    ) + "      TASK TAGS: [always, app]\n";
    assert_eq!(
        site(&["--list-hosts", "--list-tasks", "--list-tags"]),
        expected
    );
}

#[test]
fn tags_select_tasks_and_always_stays() {
    let only_app = site(&["--list-tasks", "--tags", "app"]);
    let expected: String = SITE_TASKS
        .lines()
        .filter(|l| !l.contains("TAGS: []") || l.starts_with("  play"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(only_app, expected);
    assert!(only_app.contains("Say what is about to happen\tTAGS: [always]"));
}

#[test]
fn skip_tags_drop_tasks() {
    let skipped = site(&["--list-tasks", "--skip-tags", "app"]);
    assert!(!skipped.contains("app : "), "{skipped}");
    assert!(skipped.contains("      Say what is about to happen\tTAGS: [always]\n"));
    assert!(skipped.ends_with("      The release is in place\tTAGS: []\n      Done\tTAGS: []\n"));
    // Skipping `always` explicitly drops it too, as in Ansible.
    let no_always = site(&["--list-tasks", "--skip-tags", "always,app"]);
    assert!(!no_always.contains("Say what"), "{no_always}");
    assert!(no_always.contains("      Check the current release\tTAGS: []\n"));
}

#[test]
fn tags_also_filter_plan() {
    let plan = plan_json(&[
        "playbooks/site.yaml",
        "-i",
        "inventory/local.yaml",
        "--skip-tags",
        "app",
    ]);
    assert_eq!(plan["plays"][0]["tasks"].as_array().unwrap().len(), 4);
}

// ---------------------------------------------------------------- inventory

#[test]
fn inventory_graph_of_a_group() {
    assert_eq!(
        ok(&[
            "inventory",
            "-i",
            "inventory/staging.yaml",
            "--graph",
            "web"
        ]),
        "@web:\n  |--web01.staging\n  |--web02.staging\n  |--web03.staging\n"
    );
}

#[test]
fn inventory_graph_of_everything() {
    let out = ok(&["inventory", "-i", "inventory/dev.ini", "--graph"]);
    assert!(out.starts_with("@all:\n"), "{out}");
    for line in [
        "  |--@dev:",
        "  |  |--@web:",
        "  |  |  |--web01.dev",
        "  |  |  |--web02.dev",
        "  |  |--@db:",
        "  |  |  |--db01.dev",
        "  |--@ungrouped:",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
}

#[test]
fn inventory_list_json_shape() {
    let v: Value =
        serde_json::from_str(&ok(&["inventory", "-i", "inventory/dev.ini", "--list"])).unwrap();
    let hostvars = v["_meta"]["hostvars"].as_object().expect("_meta.hostvars");
    let hosts: BTreeSet<&str> = hostvars.keys().map(String::as_str).collect();
    assert_eq!(
        hosts,
        BTreeSet::from(["db01.dev", "lb01.dev", "web01.dev", "web02.dev"])
    );
    assert_eq!(hostvars["web01.dev"]["ansible_host"], "127.0.0.11");
    assert_eq!(hostvars["web01.dev"]["env"], "dev");
    // [group:vars] values are strings, as in Ansible.
    assert_eq!(hostvars["web01.dev"]["app_port"], "8080");
    let children: BTreeSet<String> = names(&v["all"]["children"]).into_iter().collect();
    assert_eq!(
        children,
        BTreeSet::from(["dev".to_string(), "ungrouped".to_string()])
    );
    assert_eq!(names(&v["web"]["hosts"]), ["web01.dev", "web02.dev"]);
}

#[test]
fn inventory_host_merges_group_and_host_vars() {
    let v: Value = serde_json::from_str(&ok(&[
        "inventory",
        "-i",
        "inventory/prod",
        "--host",
        "web01.prod.example.com",
    ]))
    .unwrap();
    assert_eq!(v["env"], "prod");
    assert_eq!(v["app_port"], 8080);
    assert_eq!(v["app_version"], "1.4.2");
    assert_eq!(v["canary"], true);
    let other: Value = serde_json::from_str(&ok(&[
        "inventory",
        "-i",
        "inventory/prod",
        "--host",
        "web02.prod.example.com",
    ]))
    .unwrap();
    assert!(other.get("canary").is_none(), "{other}");
    let db: Value = serde_json::from_str(&ok(&[
        "inventory",
        "-i",
        "inventory/prod",
        "--host",
        "db02.prod.example.com",
    ]))
    .unwrap();
    assert_eq!(db["db_role"], "replica");
    assert!(db.get("app_port").is_none(), "{db}");
}

// ---------------------------------------------------------------- doc

#[test]
fn doc_copy_lists_dest() {
    let out = ok(&["doc", "copy"]);
    assert!(out.starts_with("copy\n"), "{out}");
    assert!(out.contains("  dest — a path, required\n"), "{out}");
}

#[test]
fn doc_without_module_lists_modules() {
    let out = ok(&["doc"]);
    for m in ["copy", "template", "file", "command"] {
        assert!(out.lines().any(|l| l == m), "{m} missing from\n{out}");
    }
}

#[test]
fn doc_of_a_typo_suggests_the_module() {
    rdeploy_in_repo()
        .args(["doc", "cpoy"])
        .assert()
        .code(4)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "rdeploy: error: unknown module 'cpoy'\n",
        ))
        .stderr(predicate::str::contains("did you mean 'copy'?"));
}

// ---------------------------------------------------------------- -e

const RELEASE_PB: &str = "- name: deploy {{ release }}
  hosts: all
  gather_facts: no
  tasks:
    - name: show the release
      debug:
        msg: \"release {{ release }}\"
";

fn release_sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.write("inv.yaml", "all:\n  hosts:\n    h1:\n    h2:\n")
        .write("pb.yaml", RELEASE_PB);
    sb
}

#[test]
fn undefined_variable_without_extra_vars_is_invalid_input() {
    let sb = release_sandbox();
    sb.rdeploy(&["plan", "pb.yaml", "-i", "inv.yaml"])
        .assert()
        .code(4)
        .stdout("")
        .stderr(predicate::str::starts_with(
            // The play's name is not checked: ansible-playbook shows a name that does not
            // render, and never fails on it.
            "pb.yaml:7:14: error: 'release' is undefined\n  note: in template: release {{ release }}\n\
             rdeploy: 1 error found; nothing was run\n",
        ));
}

#[test]
fn extra_vars_forms_reach_templates() {
    let sb = release_sandbox();
    sb.write("extra.yaml", "release: v4\n")
        .write("extra.json", "{\"release\": \"v5\"}");
    for e in [
        "release=v2",
        "{\"release\": \"v3\"}",
        "{release: v3}",
        "@extra.yaml",
        "@extra.json",
    ] {
        sb.rdeploy(&["plan", "pb.yaml", "-i", "inv.yaml", "-e", e])
            .assert()
            .code(0)
            .stdout(predicate::str::contains("batch 1 (2): h1, h2"));
    }
}

/// ansible-playbook renders the play name with the extra vars in its listings.
#[test]
fn extra_vars_render_the_play_name_in_list_hosts() {
    let sb = release_sandbox();
    sb.rdeploy(&[
        "run",
        "pb.yaml",
        "-i",
        "inv.yaml",
        "-e",
        "release=v2",
        "--list-hosts",
    ])
    .assert()
    .code(0)
    .stdout(predicate::str::contains(
        "  play #1 (all): deploy v2\tTAGS: []\n",
    ));
}

/// As in Ansible, extra vars are templates: `-e` values render against the other variables
/// (issue 12: they reached hosts as literal `{{ ... }}` text before).
#[test]
fn extra_vars_are_templates_json_file_and_key_value() {
    let sb = release_sandbox();
    sb.write("extra.yaml", "release: \"{{ base }}-file\"\n");
    for (e, want) in [
        ("{\"release\": \"{{ base }}-json\"}", "deploy v3-json"),
        ("@extra.yaml", "deploy v3-file"),
        ("release={{ base }}-kv", "deploy v3-kv"),
    ] {
        sb.rdeploy(&[
            "run",
            "pb.yaml",
            "-i",
            "inv.yaml",
            "-e",
            "base=v3",
            "-e",
            e,
            "--list-hosts",
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(want));
    }
    // Still strict: an undefined name inside an extra var is refused before the run.
    sb.rdeploy(&[
        "plan",
        "pb.yaml",
        "-i",
        "inv.yaml",
        "-e",
        "release={{ undefined_var }}",
    ])
    .assert()
    .code(4)
    .stderr(predicate::str::contains("'undefined_var' is undefined"));
}

/// A value written `!unsafe` in an extra-vars file stays data, as in Ansible.
#[test]
fn extra_vars_written_unsafe_in_a_file_stay_data() {
    let sb = release_sandbox();
    sb.write("extra.yaml", "release: !unsafe \"{{ undefined_var }}\"\n");
    sb.rdeploy(&["plan", "pb.yaml", "-i", "inv.yaml", "-e", "@extra.yaml"])
        .assert()
        .code(0);
}

#[test]
fn later_extra_vars_win() {
    let sb = release_sandbox();
    sb.write(
        "pb.yaml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - debug:\n        msg: \"{{ a }} {{ b }}\"\n",
    );
    // `b` only in the second -e: both must be kept, not the last -e alone.
    sb.rdeploy(&[
        "plan", "pb.yaml", "-i", "inv.yaml", "-e", "a=1", "-e", "b=2",
    ])
    .assert()
    .code(0);
}

// ---------------------------------------------------------------- plan never connects

#[test]
fn plan_and_listings_never_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    listener.set_nonblocking(true).expect("non-blocking");
    let port = listener.local_addr().unwrap().port();
    let sb = Sandbox::new();
    sb.write(
        "inv.yaml",
        format!(
            "all:\n  vars:\n    ansible_host: 127.0.0.1\n    ansible_port: {port}\n  hosts:\n    h1:\n    h2:\n"
        ),
    )
    .write(
        "pb.yaml",
        "- hosts: all\n  health:\n    - tcp: \"{{ ansible_host }}:{{ ansible_port }}\"\n  tasks:\n    - command: /bin/true\n",
    );
    // The listener is really reachable: a connection would be seen.
    let before = sb.snapshot();
    for args in [
        &["plan", "pb.yaml", "-i", "inv.yaml"][..],
        &["plan", "pb.yaml", "-i", "inv.yaml", "--output", "json"],
        &["run", "pb.yaml", "-i", "inv.yaml", "--syntax-check"],
        &[
            "run",
            "pb.yaml",
            "-i",
            "inv.yaml",
            "--list-hosts",
            "--list-tasks",
        ],
        &["inventory", "-i", "inv.yaml", "--list"],
    ] {
        sb.rdeploy(args).assert().code(0);
    }
    // Give a late connect a moment to land in the backlog, then poll it.
    std::thread::sleep(Duration::from_millis(200));
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("rdeploy connected to the host's port from {peer}"),
        Err(e) => panic!("accept failed: {e}"),
    }
    assert_eq!(sb.snapshot(), before, "pre-flight commands wrote files");
    // The check itself can fail: a real connection is seen.
    let probe = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    std::thread::sleep(Duration::from_millis(50));
    assert!(listener.accept().is_ok(), "the listener sees connections");
    drop(probe);
}

// ---------------------------------------------------------------- scale and pipes

/// Pre-flight must stay linear in the number of hosts: planning 2,000 hosts with one task
/// fits easily in 2 GB of address space (a linear plan needs tens of MB). Regression: every
/// host's variable stack held its own copy of `groups` and the play's host lists, so memory
/// grew with hosts² (4.8 GB at 2,000 hosts, 16 GB at 4,000).
#[cfg(target_os = "linux")]
#[test]
fn plan_memory_is_not_quadratic_in_hosts() {
    let sb = Sandbox::new();
    sb.write("inv.ini", "[web]\nweb[0001:2000].example.com\n[prod:children]\nweb\n")
        .write(
            "pb.yaml",
            "- hosts: web\n  serial: [1, \"10%\", \"100%\"]\n  tasks:\n    - debug:\n        msg: \"{{ inventory_hostname }} of {{ groups['web'] | length }}\"\n",
        );
    let bin = assert_cmd::cargo::cargo_bin("rdeploy");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2000000 && exec \"$0\" plan pb.yaml -i inv.ini --output json")
        .arg(&bin)
        .current_dir(sb.path())
        .output()
        .expect("run sh");
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "plan of 2,000 hosts under a 2 GB limit\nstderr:\n{}",
        &err[..err.len().min(2000)]
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(batch_sizes(&plan, 0), [1, 200, 1799]);
}

/// `rdeploy plan ... | head` must not turn a closed pipe into an internal error (exit 1 is
/// "a bug in rdeploy") with a backtrace.
#[test]
fn closed_stdout_is_not_an_internal_error() {
    let sb = Sandbox::new();
    let mut pb = String::from("- hosts: all\n  tasks:\n");
    for i in 0..3000 {
        pb.push_str(&format!(
            "    - name: step {i} of a long deployment with a long name\n      debug:\n        msg: hi\n"
        ));
    }
    sb.write("inv.yaml", "all:\n  hosts:\n    h1:\n")
        .write("pb.yaml", pb);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rdeploy"))
        .args(["plan", "pb.yaml", "-i", "inv.yaml"])
        .current_dir(sb.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn rdeploy");
    // Close the reading end at once, like `head` that has seen enough: the plan is far larger
    // than a pipe buffer, so rdeploy's writes fail with EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for rdeploy");
    let err = stderr(&out);
    assert!(
        !err.contains("internal error") && out.status.code() != Some(1),
        "exit {:?}\nstderr:\n{err}",
        out.status.code()
    );
}

/// Includes whose file is checked only when reached were not listed by `--syntax-check` or
/// `rdeploy plan`: a templated name (resolved per host), a literal file under `when:` (its
/// mistakes shown as what a host would report if it reached it), one under a block's `when:`,
/// and a templated `include_role`. An unconditional literal include is checked before the
/// run and not listed.
#[test]
fn syntax_check_and_plan_list_includes_checked_when_reached() {
    let sb = Sandbox::new();
    sb.write(
        "inv.yml",
        "all:\n  hosts:\n    h1: {ansible_connection: local}\n",
    )
    .write(
        "play.yml",
        "- hosts: all
  gather_facts: false
  vars: {role_name_var: web}
  tasks:
    - include_tasks: \"setup-{{ ansible_os_family }}.yml\"
    - include_tasks: freebsd.yml
      when: ansible_os_family == 'FreeBSD'
    - block:
        - include_tasks:
            file: later.yml
      when: false
    - include_role:
        name: \"{{ role_name_var }}\"
    - include_tasks: always.yml
",
    )
    .write("setup-Debian.yml", "- debug: msg=deb\n")
    .write(
        "freebsd.yml",
        "- debug: msg=bsd\n- file: { path: /x, attributes: i }\n",
    )
    .write("later.yml", "- debug: msg=later\n")
    .write("always.yml", "- debug: msg=always\n");
    let run = |args: &[&str]| {
        let out = sb.rdeploy(args).output().expect("run rdeploy");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    let listed = "\
checked when reached (4):
  play.yml:5:7  include_tasks setup-{{ ansible_os_family }}.yml
  play.yml:6:7  include_tasks freebsd.yml
    if reached: freebsd.yml:2:21: argument 'attributes' of module 'file' is not supported by rdeploy
  play.yml:9:11  include_tasks later.yml
  play.yml:12:7  include_role {{ role_name_var }}
";
    assert_eq!(
        run(&["run", "play.yml", "-i", "inv.yml", "--syntax-check"]),
        format!("\nplaybook: play.yml\n{listed}")
    );
    let plan = run(&["plan", "play.yml", "-i", "inv.yml"]);
    let indented: String = listed.lines().map(|l| format!("  {l}\n")).collect();
    assert!(plan.ends_with(&indented), "{plan}");
    let json: Value = serde_json::from_str(&run(&[
        "plan", "play.yml", "-i", "inv.yml", "--output", "json",
    ]))
    .expect("JSON");
    let first = &json["plays"][0]["checked_when_reached"][0];
    assert_eq!(first["location"], "play.yml:5:7");
    assert_eq!(first["module"], "include_tasks");
    assert_eq!(first["name"], "setup-{{ ansible_os_family }}.yml");
}

/// Every native module's `rdeploy doc` says what is backed up and shows an example, and every
/// example is a task rdeploy accepts (its arguments validated like any playbook's).
#[test]
fn every_module_documents_its_backup_and_its_examples_validate() {
    let sb = Sandbox::new();
    for (file, body) in [
        ("app.conf", ""),
        ("nginx.conf.j2", ""),
        ("app-2.1.tar.gz", ""),
        ("setup.yml", "[]\n"),
        ("secrets.yml", "{}\n"),
        ("scripts/prepare.sh", ""),
        ("roles/nginx/tasks/main.yml", "[]\n"),
        ("roles/app/tasks/upgrade.yml", "[]\n"),
        ("inv", "localhost ansible_connection=local\n"),
    ] {
        sb.write(file, body);
    }
    let mut pb = String::from(
        "- hosts: all\n  gather_facts: false\n  vars:\n    new_ip: 10.0.0.9\n    app_port: 8080\n    \
         app_env: staging\n    app_version: '2.1'\n    result: {stdout_lines: []}\n  tasks:\n",
    );
    for e in rdeploy::modules::registry::MODULES {
        let spec = e.spec;
        assert!(
            !spec.backup.is_empty(),
            "{} says nothing of backups",
            e.name
        );
        assert!(!spec.examples.is_empty(), "{} has no example", e.name);
        let first = spec.examples.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("- {}:", e.name)),
            "{}'s example starts with another module: {first}",
            e.name
        );
        for line in spec.examples.lines() {
            pb.push_str(&format!("    {line}\n"));
        }
        let doc = stdout(
            &sb.rdeploy(&["doc", e.name])
                .output()
                .expect("run rdeploy doc"),
        );
        assert!(
            doc.contains("Backup and rollback:") && doc.contains("Examples:"),
            "{doc}"
        );
    }
    sb.write("pb.yaml", &pb);
    let out = sb
        .rdeploy(&["plan", "pb.yaml", "-i", "inv"])
        .output()
        .expect("run rdeploy plan");
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
}

#[test]
fn plan_shows_each_canary_step_its_cumulative_share_and_merges() {
    let sb = Sandbox::new();
    sb.write(
        "inv.yaml",
        "all:\n  hosts:\n    h1:\n    h2:\n    h3:\n    h4:\n",
    );
    sb.write(
        "pb.yaml",
        "- hosts: all\n  canary: [\"5%\", \"25%\", \"50%\"]\n  tasks:\n    - ping:\n",
    );
    let out = sb
        .rdeploy(&["plan", "pb.yaml", "-i", "inv.yaml"])
        .output()
        .expect("run rdeploy");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let want = "  hosts (4), 3 batches:
    batch 1 (1), canary step 5%: 1 of 4 hosts (25%): h1
    batch 2 (1), canary step 50%: 2 of 4 hosts (50%): h2
      25% merged in: it adds no host on 4 hosts
    batch 3 (2), canary step 100%: 4 of 4 hosts (100%): h3, h4
      added: the plan does not end at 100%
";
    assert!(text.contains(want), "{text}");
    let json = sb
        .rdeploy(&["plan", "pb.yaml", "-i", "inv.yaml", "--output", "json"])
        .output()
        .expect("run rdeploy");
    let v: Value = serde_json::from_str(stdout(&json).trim()).expect("one JSON document");
    let play = &v["plays"][0];
    let cum: Vec<u64> = play["canary"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["cumulative"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(cum, [1, 2, 4], "{v}");
    assert_eq!(play["canary"][1]["merged"][0], "25%");
    assert_eq!(play["batches"][2], serde_json::json!(["h3", "h4"]));
}
