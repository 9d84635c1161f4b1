//! Approval gates end to end on the test fleet's real sshd hosts: a play with `serial: 1` and
//! `approve: {before_batch: 2}` run without a terminal (stdin from /dev/null, as under cron)
//! stops before batch 2 with exit code 11, records the run as `awaiting-approval`, keeps the
//! lock (a second run is refused with 75), and `rdeploy approve RUN` deploys hosts 2 and 3;
//! `rdeploy reject RUN` of another such run restores host 1.
//!
//! Canary analysis on the same fleet, against a stand-in Prometheus HTTP API (a thread of this
//! test answering `/api/v1/query` per host from a script of values): a metric that goes bad at
//! its third measurement rolls the canary back then, not at the end of the analysis, and no
//! later step starts; a metric that is neither good nor bad stops the run awaiting approval
//! (exit 11) with the canary kept, `rdeploy show` lists the measurements, and `rdeploy approve`
//! deploys the rest; a soak watches its probes and fails the step when one fails mid-soak.

mod support;

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Sandbox;
use support::fleet::Fleet;

const PLAYBOOK: &str = "- hosts: all\n  gather_facts: false\n  serial: 1\n  approve:\n    before_batch: 2\n    message: canary ok?\n    timeout: 5s\n  tasks:\n    - copy:\n        dest: /srv/VERSION\n        content: \"{{ v }}\\n\"\n";

type Out = support::Finished;

fn rdeploy(sb: &Sandbox, args: &[&str]) -> Out {
    sb.finish(args)
}

fn run_id(o: &Out) -> String {
    o.run_id()
}

fn setup() -> (Fleet, Sandbox) {
    setup_with(3, |_| serde_json::Map::new())
}

/// `n` fleet hosts, each with the extra variables `extra(i)`.
fn setup_with(
    n: usize,
    extra: impl Fn(usize) -> serde_json::Map<String, Value>,
) -> (Fleet, Sandbox) {
    let fleet = Fleet::start(n);
    let sb = Sandbox::new();
    let mut hosts = serde_json::Map::new();
    for (i, h) in fleet.hosts().iter().enumerate() {
        let mut v = support::oracle::trusted_host_vars(&fleet, h);
        v.extend(extra(i));
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

/// A stand-in for Prometheus' HTTP API: `/api/v1/query?query=Q` answers the next value
/// scripted for `Q` (the last one repeats), or no data when none is; values are per host
/// because the playbook's queries name the host.
struct Prometheus {
    port: u16,
    script: Arc<Mutex<HashMap<String, VecDeque<String>>>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Prometheus {
    fn start() -> Prometheus {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let script: Arc<Mutex<HashMap<String, VecDeque<String>>>> = Arc::default();
        let asked: Arc<Mutex<Vec<String>>> = Arc::default();
        let (s, a) = (Arc::clone(&script), Arc::clone(&asked));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut line = String::new();
                let mut reader = BufReader::new(&conn);
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // Headers up to the blank line.
                let mut h = String::new();
                while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                    h.clear();
                }
                let target = line.split_whitespace().nth(1).unwrap_or("");
                let query = target
                    .split_once("query=")
                    .map(|(_, q)| decode(q))
                    .unwrap_or_default();
                a.lock().unwrap().push(query.clone());
                let value = {
                    let mut script = s.lock().unwrap();
                    script.get_mut(&query).and_then(|q| {
                        if q.len() > 1 {
                            q.pop_front()
                        } else {
                            q.front().cloned()
                        }
                    })
                };
                let result = match value {
                    Some(v) => json!([{ "metric": {}, "value": [0, v] }]),
                    None => json!([]),
                };
                let body = json!({"status": "success",
                    "data": {"resultType": "vector", "result": result}})
                .to_string();
                let mut conn = &conn;
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Prometheus {
            port,
            script,
            asked,
        }
    }

    /// What `query` answers, one value per request.
    fn script(&self, query: &str, values: &[&str]) {
        self.script.lock().unwrap().insert(
            query.to_string(),
            values.iter().map(|v| v.to_string()).collect(),
        );
    }

    fn asked(&self, query: &str) -> usize {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|q| *q == query)
            .count()
    }
}

/// `%XX` and `+` decoding of a query string value.
fn decode(q: &str) -> String {
    let q = q.split('&').next().unwrap_or("").replace('+', " ");
    let bytes = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = q
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A canary of one host, then the rest, with an analysis after the first step: every second
/// for 20 s, the host's error rate must stay below 1% and fails above 5%.
fn analysed_playbook(prom: u16) -> String {
    format!(
        "- hosts: all\n  gather_facts: false\n  canary:\n    - step: 1\n      analysis:\n        interval: 1s\n        duration: 20s\n        metrics:\n          - name: error rate\n            prometheus: http://127.0.0.1:{prom}\n            query: 'errors{{host=\"{{{{ inventory_hostname }}}}\"}}'\n            success_condition: result < 0.01\n            failure_condition: result > 0.05\n    - 100%\n  tasks:\n    - copy:\n        dest: /srv/VERSION\n        content: \"{{{{ v }}}}\\n\"\n"
    )
}

fn events(o: &Out, kind: &str) -> Vec<Value> {
    o.text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == kind)
        .collect()
}

fn deploy_file(sb: &Sandbox, file: &str, v: &str) -> Out {
    let vars = json!({ "v": v }).to_string();
    rdeploy(
        sb,
        &[
            "run", file, "-i", "inv.yaml", "--output", "json", "-e", &vars,
        ],
    )
}

#[test]
fn a_metric_that_goes_bad_rolls_the_canary_back_at_once_and_no_later_step_starts() {
    let (fleet, sb) = setup();
    let prom = Prometheus::start();
    sb.write("analysed.yaml", analysed_playbook(prom.port));
    let canary = fleet.hosts()[0].name().to_string();
    let query = format!("errors{{host=\"{canary}\"}}");
    prom.script(&query, &["0.001", "0.002", "0.5"]);

    let plan = rdeploy(
        &sb,
        &["plan", "analysed.yaml", "-i", "inv.yaml", "-e", "v=2"],
    );
    assert_eq!(plan.code, 0, "{}", plan.text);
    assert!(
        plan.text
            .contains("      then analysis for 20s, every 1s: error rate\n    batch 2 (2)"),
        "{}",
        plan.text
    );

    let started = Instant::now();
    let run = deploy_file(&sb, "analysed.yaml", "2");
    let took = started.elapsed();
    // 3: a batch failed and was rolled back.
    assert_eq!(run.code, 3, "{}", run.text);
    let measured = events(&run, "measurement");
    let verdicts: Vec<&str> = measured
        .iter()
        .map(|m| m["verdict"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(verdicts, ["success", "success", "failure"], "{}", run.text);
    assert_eq!(measured[2]["value"], json!(0.5));
    assert_eq!(prom.asked(&query), 3, "measuring stopped at the failure");
    // Rolled back at the failure (about 2 s in), not after the 20 s the analysis would last.
    assert!(
        took < Duration::from_secs(15),
        "took {took:?}:\n{}",
        run.text
    );
    let failed = events(&run, "gate_failed");
    assert!(
        failed[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("analysis failed: error rate")),
        "{}",
        run.text
    );
    assert_eq!(versions(&fleet), ["", "", ""], "{}", run.text);
}

#[test]
fn an_inconclusive_analysis_waits_for_a_person_and_approve_goes_on() {
    let (fleet, sb) = setup();
    let prom = Prometheus::start();
    sb.write("analysed.yaml", analysed_playbook(prom.port));
    let canary = fleet.hosts()[0].name().to_string();
    // 3% is neither below 1% nor above 5%: rdeploy does not guess.
    prom.script(&format!("errors{{host=\"{canary}\"}}"), &["0.001", "0.03"]);

    let run = deploy_file(&sb, "analysed.yaml", "2");
    assert_eq!(run.code, 11, "{}", run.text);
    assert_eq!(versions(&fleet), ["2\n", "", ""], "{}", run.text);
    let verdicts: Vec<Value> = events(&run, "measurement")
        .iter()
        .map(|m| m["verdict"].clone())
        .collect();
    assert_eq!(verdicts, [json!("success"), json!("inconclusive")]);
    let id = run_id(&run);
    let shown = rdeploy(&sb, &["show", &id]);
    assert!(
        shown.text.contains(&format!(
            ": error rate #2 inconclusive [{canary}]: value 0.03: not result < 0.01"
        )),
        "{}",
        shown.text
    );

    let vars = json!({ "v": "2" }).to_string();
    let approved = rdeploy(&sb, &["approve", &id, "--output", "json", "-e", &vars]);
    assert_eq!(approved.code, 0, "{}", approved.text);
    assert_eq!(versions(&fleet), ["2\n", "2\n", "2\n"], "{}", approved.text);
    // The canary's batch was finished: approving does not deploy or measure it again.
    assert!(
        events(&approved, "measurement").is_empty(),
        "{}",
        approved.text
    );
}

#[test]
fn a_soak_watches_its_probes_and_fails_the_step_when_one_fails_midway() {
    let (fleet, sb) = setup();
    sb.write(
        "soaked.yaml",
        "- hosts: all\n  gather_facts: false\n  canary:\n    - step: 1\n      pause: 30s\n    - 100%\n  health:\n    - name: not broken\n      command: \"! grep -q bad /srv/VERSION\"\n      retries: 0\n  tasks:\n    - copy:\n        dest: /srv/VERSION\n        content: \"{{ v }}\\n\"\n",
    );
    // Two seconds after the canary was deployed, during its soak, it goes bad (the rollback
    // restores it).
    let canary = fleet.hosts()[0].path("/srv/VERSION");
    let breaker = std::thread::spawn(move || {
        for _ in 0..600 {
            if std::fs::read_to_string(&canary).is_ok_and(|v| v == "2\n") {
                std::thread::sleep(Duration::from_secs(2));
                std::fs::write(&canary, "bad\n").expect("break the canary");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the canary was never deployed");
    });
    let started = Instant::now();
    let run = deploy_file(&sb, "soaked.yaml", "2");
    let took = started.elapsed();
    breaker.join().expect("breaker");
    assert_eq!(run.code, 3, "{}", run.text);
    let failed = events(&run, "gate_failed");
    assert!(
        failed[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("during the soak") && r.contains("not broken")),
        "{}",
        run.text
    );
    assert!(
        took < Duration::from_secs(20),
        "took {took:?}:\n{}",
        run.text
    );
    assert_eq!(versions(&fleet), ["", "", ""], "{}", run.text);
}

/// A play of one host per batch whose batches may start only when `windows` allows, with a
/// short pause closing each batch.
fn windowed_playbook(windows: &str) -> String {
    format!(
        "- hosts: all\n  gather_facts: false\n  serial: 1\n  windows:\n{windows}  tasks:\n    - copy:\n        dest: /srv/VERSION\n        content: \"{{{{ v }}}}\\n\"\n    - pause: {{ seconds: 2 }}\n"
    )
}

#[test]
fn outside_its_change_window_a_run_touches_nothing_and_exits_12() {
    let (fleet, sb) = setup();
    // A window that opens two hours from now and closes an hour later, every day.
    let now = chrono::Utc::now();
    let hm = |t: chrono::DateTime<chrono::Utc>| t.format("%H:%M").to_string();
    let window = format!(
        "{}-{} UTC",
        hm(now + chrono::Duration::hours(2)),
        hm(now + chrono::Duration::hours(3))
    );
    sb.write(
        "windowed.yaml",
        windowed_playbook(&format!("    allow: [\"{window}\"]\n")),
    );
    let plan = rdeploy(
        &sb,
        &["plan", "windowed.yaml", "-i", "inv.yaml", "-e", "v=2"],
    );
    assert!(
        plan.text.contains(&format!(
            "  change windows (each batch starts only then): allow {window}\n"
        )),
        "{}",
        plan.text
    );
    let run = deploy_file(&sb, "windowed.yaml", "2");
    assert_eq!(run.code, 12, "{}", run.text);
    assert!(
        run.text.contains("batch 1/3 not started:")
            && run.text.contains("is outside the change windows"),
        "{}",
        run.text
    );
    assert_eq!(versions(&fleet), ["", "", ""]);
    // A dry run is not held by the window.
    let vars = json!({ "v": "2" }).to_string();
    let check = rdeploy(
        &sb,
        &[
            "run",
            "windowed.yaml",
            "-i",
            "inv.yaml",
            "--check",
            "-e",
            &vars,
        ],
    );
    assert_eq!(check.code, 0, "{}", check.text);
}

#[test]
fn a_freeze_file_stops_the_run_at_the_next_batch_and_resume_goes_on_once_it_is_gone() {
    let (fleet, sb) = setup();
    let freeze = sb.path().join("FREEZE");
    sb.write(
        "windowed.yaml",
        windowed_playbook("    allow: [\"00:00-24:00 UTC\"]\n    deny_files: [FREEZE]\n"),
    );
    // The freeze is declared while the first batch runs.
    let first = fleet.hosts()[0].path("/srv/VERSION");
    let f = freeze.clone();
    let freezer = std::thread::spawn(move || {
        for _ in 0..1200 {
            if first.exists() {
                std::fs::write(&f, "change freeze\n").expect("freeze");
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the first batch never ran");
    });
    let run = deploy_file(&sb, "windowed.yaml", "2");
    freezer.join().expect("freezer");
    assert_eq!(run.code, 12, "{}", run.text);
    assert_eq!(versions(&fleet), ["2\n", "", ""], "{}", run.text);
    assert!(
        run.text.contains(&format!(
            "batch 2/3 not started: the freeze file {} exists",
            freeze.display()
        )),
        "{}",
        run.text
    );
    let id = run_id(&run);
    let history = rdeploy(&sb, &["history", "--output", "json"]);
    assert!(history.text.contains("outside-window"), "{}", history.text);

    // Still frozen: resuming stops again, before any batch.
    let vars = json!({ "v": "2" }).to_string();
    let again = rdeploy(&sb, &["resume", &id, "--output", "json", "-e", &vars]);
    assert_eq!(again.code, 12, "{}", again.text);
    std::fs::remove_file(&freeze).expect("thaw");
    let resumed = rdeploy(&sb, &["resume", &id, "--output", "json", "-e", &vars]);
    assert_eq!(resumed.code, 0, "{}", resumed.text);
    assert_eq!(versions(&fleet), ["2\n", "2\n", "2\n"], "{}", resumed.text);
}

#[test]
fn a_run_wide_failure_budget_stops_the_rollout_when_it_is_exceeded() {
    let (fleet, sb) = setup();
    // Every batch may lose its one host (per_batch 100%), but the run may lose only one.
    sb.write(
        "budget.yaml",
        format!(
            "- hosts: all\n  gather_facts: false\n  serial: 1\n  max_failed: {{ per_batch: 100%, total: 1 }}\n  on_failure: rollback\n  tasks:\n    - copy:\n        dest: /srv/VERSION\n        content: \"{{{{ v }}}}\\n\"\n    - fail: {{ msg: broken }}\n      when: inventory_hostname != \"{}\"\n",
            fleet.hosts()[2].name()
        ),
    );
    let plan = rdeploy(&sb, &["plan", "budget.yaml", "-i", "inv.yaml", "-e", "v=2"]);
    assert!(
        plan.text
            .contains("  failure budget: at most 1 failed host(s) in the run\n"),
        "{}",
        plan.text
    );
    let run = deploy_file(&sb, "budget.yaml", "2");
    // Batch 1 fails (one host: within the run's budget), batch 2 fails (two: over it) and is
    // rolled back; batch 3 never starts.
    assert_eq!(run.code, 3, "{}", run.text);
    let failed = events(&run, "gate_failed");
    assert_eq!(failed.len(), 1, "{}", run.text);
    assert!(
        failed[0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("2 hosts failed in this run (")
                && r.ends_with("over the failure budget (max_failed total 1)")),
        "{}",
        run.text
    );
    assert_eq!(versions(&fleet), ["2\n", "", ""], "{}", run.text);
}

#[test]
fn batches_and_their_rollback_are_packed_under_the_disruption_budgets() {
    // Six hosts on three racks (two each); host 5 fails, so with rollback_scope: all every
    // batch is rolled back, newest first.
    let (fleet, sb) = setup_with(6, |i| {
        let mut m = serde_json::Map::new();
        m.insert("rack".into(), json!(format!("r{}", i / 2)));
        m
    });
    let racks: std::collections::HashMap<String, String> = fleet
        .hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| (h.name().to_string(), format!("r{}", i / 2)))
        .collect();
    let last = fleet.hosts()[5].name().to_string();
    sb.write(
        "budget.yaml",
        format!(
            "- hosts: all\n  gather_facts: false\n  max_unavailable: {{ fleet: 50%, per: {{ rack: 1 }} }}\n  max_fail_percentage: 0\n  on_failure: rollback\n  rollback_scope: all\n  tasks:\n    - copy:\n        dest: /srv/VERSION\n        content: \"{{{{ v }}}}\\n\"\n    - fail: {{ msg: broken }}\n      when: inventory_hostname == \"{last}\"\n"
        ),
    );
    let plan = rdeploy(&sb, &["plan", "budget.yaml", "-i", "inv.yaml", "-e", "v=2"]);
    assert!(
        plan.text.contains(
            "  disruption budget: at most 50% of the hosts (3 of 6), 1 per rack out at once"
        ),
        "{}",
        plan.text
    );
    let run = deploy_file(&sb, "budget.yaml", "2");
    assert_eq!(run.code, 3, "{}", run.text);
    let one_per_rack = |hosts: &[Value]| {
        let mut seen: Vec<&String> = hosts
            .iter()
            .filter_map(|h| racks.get(h.as_str().unwrap_or("")))
            .collect();
        let n = seen.len();
        seen.sort();
        seen.dedup();
        n <= 3 && seen.len() == n
    };
    let batches: Vec<Vec<Value>> = events(&run, "batch")
        .iter()
        .map(|b| b["hosts"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(batches.len(), 2, "{}", run.text);
    assert!(batches.iter().all(|b| one_per_rack(b)), "{batches:?}");
    let rollbacks: Vec<Vec<Value>> = events(&run, "rollback_start")
        .iter()
        .map(|b| b["hosts"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(rollbacks.len(), 2, "{}", run.text);
    assert!(rollbacks.iter().all(|b| one_per_rack(b)), "{rollbacks:?}");
    assert_eq!(versions(&fleet), ["", "", "", "", "", ""], "{}", run.text);
}

#[test]
fn a_command_metric_is_measured_on_each_host_over_its_connection() {
    let (fleet, sb) = setup();
    // Each host's error count is a file on it; the second host of the second step reports 7.
    for (i, h) in fleet.hosts().iter().enumerate() {
        let errors = if i == 2 { "7\n" } else { "0\n" };
        std::fs::write(h.path("/srv/ERRORS"), errors).expect("errors file");
    }
    sb.write(
        "measured.yaml",
        "- hosts: all\n  gather_facts: false\n  max_fail_percentage: 0\n  canary: [1, \"100%\"]\n  analysis:\n    interval: 1s\n    duration: 2s\n    metrics:\n      - name: errors\n        command: cat /srv/ERRORS\n        success_condition: result < 5\n  tasks:\n    - copy:\n        dest: /srv/VERSION\n        content: \"{{ v }}\\n\"\n",
    );
    let run = deploy_file(&sb, "measured.yaml", "2");
    assert_eq!(run.code, 3, "{}", run.text);
    let measured = events(&run, "measurement");
    // Batch 1 (host 0): two successes; batch 2: host 1 ok, host 2 fails at once and stops
    // the measuring everywhere.
    let of = |host: &str| -> Vec<String> {
        measured
            .iter()
            .filter(|m| m["hosts"] == json!([host]))
            .map(|m| format!("{} {}", m["verdict"].as_str().unwrap_or(""), m["value"]))
            .collect()
    };
    let names: Vec<String> = fleet.hosts().iter().map(|h| h.name().to_string()).collect();
    assert_eq!(
        of(&names[0]),
        ["success 0.0", "success 0.0"],
        "{}",
        run.text
    );
    assert_eq!(of(&names[2]), ["failure 7.0"], "{}", run.text);
    assert!(of(&names[1]).len() <= 2, "{}", run.text);
    // The second batch is rolled back; the canary's first batch stays deployed.
    assert_eq!(versions(&fleet), ["2\n", "", ""], "{}", run.text);
}

/// Headless Chromium (Debian's package) on `args`, bounded; its stdout.
fn chromium(sb: &Sandbox, args: &[&str]) -> String {
    let profile = sb.path().join("chromium-profile");
    let out = std::process::Command::new("timeout")
        .arg("60")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn show_html_pictures_the_run_and_a_browser_renders_its_charts() {
    let (fleet, sb) = setup();
    let prom = Prometheus::start();
    sb.write("analysed.yaml", analysed_playbook(prom.port));
    let canary = fleet.hosts()[0].name().to_string();
    prom.script(
        &format!("errors{{host=\"{canary}\"}}"),
        &["0.001", "0.002", "0.5"],
    );
    let run = deploy_file(&sb, "analysed.yaml", "2");
    assert_eq!(run.code, 3, "{}", run.text);
    let id = run_id(&run);
    let shown = rdeploy(&sb, &["show", &id, "--html", "run.html"]);
    assert_eq!(shown.code, 0, "{}", shown.text);
    let page = sb.path().join("run.html");
    let url = format!("file://{}", page.display());

    // The DOM the browser built: the timeline with the canary rolled back, one chart with the
    // three measurements (two successes, the failure) and both thresholds.
    let dom = chromium(&sb, &["--dump-dom", &url]);
    assert!(dom.contains("<table id=\"timeline\">"), "{dom}");
    assert!(
        dom.contains(&format!(
            "<span class=\"host rolled_back\" title=\"rolled_back\">{canary}</span>"
        )),
        "{dom}"
    );
    assert!(
        dom.contains("gate failed: analysis failed: error rate"),
        "{dom}"
    );
    assert_eq!(dom.matches("<circle class=\"success\"").count(), 2, "{dom}");
    assert_eq!(dom.matches("<circle class=\"failure\"").count(), 1, "{dom}");
    assert_eq!(dom.matches("class=\"threshold\"").count(), 2, "{dom}");

    // And a screenshot of it: a real PNG of the window's size.
    let shot = sb.path().join("run.png");
    chromium(
        &sb,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=900,700",
            &url,
        ],
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (w, h) = (
        u32::from_be_bytes([png[16], png[17], png[18], png[19]]),
        u32::from_be_bytes([png[20], png[21], png[22], png[23]]),
    );
    assert_eq!((w, h), (900, 700));
    assert!(
        png.len() > 5_000,
        "a blank page compresses to almost nothing: {} bytes",
        png.len()
    );
}
