//! Approval gates end to end on the test fleet's real sshd hosts: a play with `serial: 1` and
//! `approve: {before_batch: 2}` run without a terminal (stdin from /dev/null, as under cron)
//! stops before batch 2 with exit code 11, records the run as `awaiting-approval`, keeps the
//! lock (a second run is refused with 75), and `rdeploy approve RUN` deploys hosts 2 and 3;
//! `rdeploy reject RUN` of another such run restores host 1.

mod support;

use std::process::Stdio;

use serde_json::{Value, json};
use support::Sandbox;
use support::fleet::Fleet;

const PLAYBOOK: &str = "- hosts: all\n  gather_facts: false\n  serial: 1\n  approve:\n    before_batch: 2\n    message: canary ok?\n    timeout: 5s\n  tasks:\n    - copy:\n        dest: /srv/VERSION\n        content: \"{{ v }}\\n\"\n";

struct Out {
    code: i32,
    text: String,
}

fn rdeploy(sb: &Sandbox, args: &[&str]) -> Out {
    let out = sb
        .rdeploy_process(args)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("run rdeploy");
    Out {
        code: out.status.code().unwrap_or(-1),
        text: format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn run_id(o: &Out) -> String {
    o.text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "run_end")
        .and_then(|e| e["run_id"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("a run_end event in:\n{}", o.text))
}

fn setup() -> (Fleet, Sandbox) {
    let fleet = Fleet::start(3);
    let sb = Sandbox::new();
    let mut hosts = serde_json::Map::new();
    for h in fleet.hosts() {
        let mut v = fleet.host_vars(h);
        v.insert(
            "ansible_ssh_extra_args".into(),
            json!(format!(
                "-o UserKnownHostsFile={}",
                fleet.known_hosts().display()
            )),
        );
        hosts.insert(h.name().to_string(), Value::Object(v));
    }
    let inv = json!({ "all": { "hosts": hosts } });
    sb.write("inv.yaml", serde_saphyr::to_string(&inv).unwrap());
    sb.write("site.yaml", PLAYBOOK);
    (fleet, sb)
}

fn versions(fleet: &Fleet) -> Vec<String> {
    fleet
        .hosts()
        .iter()
        .map(|h| std::fs::read_to_string(h.path("/srv/VERSION")).unwrap_or_default())
        .collect()
}

fn deploy(sb: &Sandbox, v: &str) -> Out {
    let vars = json!({ "v": v }).to_string();
    rdeploy(
        sb,
        &[
            "run",
            "site.yaml",
            "-i",
            "inv.yaml",
            "--output",
            "json",
            "-e",
            &vars,
        ],
    )
}

#[test]
fn without_a_terminal_the_gate_stops_the_run_holds_the_lock_and_approve_goes_on() {
    let (fleet, sb) = setup();
    let plan = rdeploy(&sb, &["plan", "site.yaml", "-i", "inv.yaml", "-e", "v=2"]);
    assert_eq!(plan.code, 0, "{}", plan.text);
    assert!(
        plan.text
            .contains("    approval gate: canary ok? (y/N; rdeploy approve RUN)\n    batch 2 (1)"),
        "{}",
        plan.text
    );

    let first = deploy(&sb, "2");
    assert_eq!(first.code, 11, "{}", first.text);
    let id = run_id(&first);
    assert_eq!(versions(&fleet), ["2\n", "", ""], "{}", first.text);
    assert!(
        first
            .text
            .contains(&format!("`rdeploy approve {id}` goes on")),
        "{}",
        first.text
    );
    let shown = rdeploy(&sb, &["history", "--output", "json"]);
    assert!(shown.text.contains("awaiting-approval"), "{}", shown.text);

    // The lock is held: another run of the same inventory and playbook is refused.
    let second = deploy(&sb, "3");
    assert_eq!(second.code, 75, "{}", second.text);
    assert!(
        second.text.contains(&format!("run {id} awaits approval")),
        "{}",
        second.text
    );
    assert_eq!(versions(&fleet), ["2\n", "", ""]);

    let vars = json!({ "v": "2" }).to_string();
    let approved = rdeploy(&sb, &["approve", &id, "--output", "json", "-e", &vars]);
    assert_eq!(approved.code, 0, "{}", approved.text);
    assert_eq!(versions(&fleet), ["2\n", "2\n", "2\n"], "{}", approved.text);

    // Approved and finished: the lock is free again (the next run stops at its own gate).
    let next = deploy(&sb, "3");
    assert_eq!(next.code, 11, "{}", next.text);
    assert_eq!(versions(&fleet), ["3\n", "2\n", "2\n"]);
    let id = run_id(&next);
    let again = rdeploy(&sb, &["approve", "no-such-run"]);
    assert_eq!(again.code, 4, "{}", again.text);

    // Rejected: what the run did is rolled back, and the lock is free.
    let rejected = rdeploy(&sb, &["reject", &id]);
    assert_eq!(rejected.code, 0, "{}", rejected.text);
    assert_eq!(versions(&fleet), ["2\n", "2\n", "2\n"], "{}", rejected.text);
    let twice = rdeploy(&sb, &["approve", &id]);
    assert_eq!(twice.code, 4, "{}", twice.text);
    let free = deploy(&sb, "4");
    assert_eq!(free.code, 11, "{}", free.text);
}
