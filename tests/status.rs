//! `rdeploy status` and what the journal records about who ran what, end to end on the test
//! fleet: two labelled runs on three hosts where the second fails on one host and is rolled
//! back there, `history`'s filters, the webhooks' `run_start` and context, and a run killed
//! (SIGKILL) mid-step whose hosts need attention.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Sandbox;
use support::fleet::Fleet;

/// Serial 1, every batch must pass; host `broken` fails after writing its release.
const DEPLOY: &str = "- hosts: all
  gather_facts: no
  serial: 1
  max_fail_percentage: 0
  on_failure: rollback
  tasks:
    - copy: { dest: /srv/release, content: '{{ rel }}' }
    - command: 'false'
      when: inventory_hostname == (broken | default(''))
";

/// Every host at once; a slow reversible step after the release is written.
const SLOW: &str = "- hosts: all
  gather_facts: no
  tasks:
    - copy: { dest: /srv/release, content: '{{ rel }}' }
    - name: slow step
      shell: sleep 30 && touch /srv/slept
      args: { creates: /srv/slept }
";

struct Env {
    fleet: Fleet,
    sb: Sandbox,
}

impl Env {
    fn new(n: usize) -> Env {
        let fleet = Fleet::start(n);
        let sb = Sandbox::new();
        let extra = format!("-o UserKnownHostsFile={}", fleet.known_hosts().display());
        sb.write(
            "inv.yaml",
            fleet.inventory_yaml(json!({ "ansible_ssh_extra_args": extra })),
        );
        sb.write("deploy.yaml", DEPLOY);
        sb.write("slow.yaml", SLOW);
        Env { fleet, sb }
    }

    fn rdeploy(&self, args: &[&str]) -> (i32, String) {
        let out = self
            .sb
            .rdeploy(args)
            .env_remove("SSH_AUTH_SOCK")
            .timeout(Duration::from_secs(240))
            .output()
            .expect("run rdeploy");
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    fn status(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["status", "--json"];
        all.extend(args);
        let (code, out) = self.rdeploy(&all);
        assert_eq!(code, 0, "{out}");
        let start = out.find('{').unwrap_or(0);
        let v: Value = serde_json::from_str(out[start..].trim()).expect(&out);
        v["hosts"].as_array().cloned().unwrap_or_default()
    }

    /// The ids of the runs in `history --output json`, oldest first, with the filters `f`.
    fn history(&self, f: &[&str]) -> Vec<Value> {
        let mut all = vec!["history", "--output", "json"];
        all.extend(f);
        let (code, out) = self.rdeploy(&all);
        assert_eq!(code, 0, "{out}");
        out.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// A webhook receiver: every body POSTed to it, as JSON.
fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&got);
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let Ok(n) = s.read(&mut chunk) else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(body.to_string());
                    }
                }
            };
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
            if let Some(v) = body.and_then(|b| serde_json::from_str(&b).ok()) {
                keep.lock().unwrap().push(v);
            }
        }
    });
    (url, got)
}

fn by_host(rows: &[Value]) -> std::collections::BTreeMap<String, Value> {
    rows.iter()
        .map(|r| {
            (
                r["host"].as_str().unwrap_or_default().to_string(),
                r.clone(),
            )
        })
        .collect()
}

#[test]
fn status_names_each_hosts_release_after_a_partial_rollback_and_history_filters_by_label() {
    let e = Env::new(3);
    let names: Vec<String> = e
        .fleet
        .hosts()
        .iter()
        .map(|h| h.name().to_string())
        .collect();
    let (url, hooks) = webhook();
    let (code, out) = e.rdeploy(&[
        "run",
        "deploy.yaml",
        "-i",
        "inv.yaml",
        "--label",
        "v1",
        "-e",
        "rel=1",
        "--notify",
        &url,
    ]);
    assert_eq!(code, 0, "{out}");
    let broken = format!("broken={}", names[2]);
    let (code, out) = e.rdeploy(&[
        "run",
        "deploy.yaml",
        "-i",
        "inv.yaml",
        "--label",
        "v2",
        "-e",
        "rel=2",
        "-e",
        &broken,
    ]);
    assert_eq!(code, 3, "the last batch failed and was rolled back: {out}");
    assert_eq!(
        std::fs::read_to_string(e.fleet.host(2).path("/srv/release")).unwrap(),
        "1"
    );
    let runs = e.history(&[]);
    assert_eq!(runs.len(), 2);
    let (r1, r2) = (runs[0]["run_id"].clone(), runs[1]["run_id"].clone());
    let user = runs[0]["user"].as_str().unwrap_or_default().to_string();
    assert!(
        !user.is_empty() && runs[0]["controller"].is_string(),
        "{runs:?}"
    );

    let st = by_host(&e.status(&[]));
    assert_eq!(st.len(), 3, "{st:?}");
    for h in &names[..2] {
        assert_eq!(st[h]["label"], "v2", "{h}: {st:?}");
        assert_eq!(st[h]["run_id"], r2);
        assert_eq!(st[h]["state"], "finished");
    }
    let last = &st[&names[2]];
    assert_eq!(last["label"], "v1", "{st:?}");
    assert_eq!(last["run_id"], r1);
    assert_eq!(last["state"], "finished");
    assert_eq!(
        last["rolled_back"],
        json!([format!("{} (partially)", r2.as_str().unwrap())])
    );
    // --limit and -i narrow it; the table is readable.
    let only = e.status(&["--limit", &names[0], "-i", "inv.yaml"]);
    assert_eq!(only.len(), 1);
    assert!(e.status(&["-i", "other.yaml"]).is_empty());
    let (code, table) = e.rdeploy(&["status"]);
    assert_eq!(code, 0);
    let line = table
        .lines()
        .find(|l| l.starts_with(&names[2]))
        .unwrap_or_default();
    assert!(
        line.contains(" v1 ") && line.contains("rolled back: "),
        "{table}"
    );

    // The hosts' own account, as another controller (no journal there) reads it.
    let elsewhere = ["--from-hosts", "-i", "inv.yaml", "--state-dir", "elsewhere"];
    let st = by_host(&e.status(&elsewhere));
    assert_eq!(st.len(), 3, "{st:?}");
    for h in &names[..2] {
        assert_eq!(st[h]["label"], "v2", "{h}: {st:?}");
        assert_eq!(st[h]["run_id"], r2);
        assert_eq!(st[h]["state"], "standing");
        assert_eq!(st[h]["user"], user.as_str());
        assert_eq!(st[h]["controller"], runs[1]["controller"]);
    }
    let last = &st[&names[2]];
    assert_eq!(
        (&last["label"], &last["run_id"]),
        (&json!("v1"), &r1),
        "{st:?}"
    );
    assert_eq!(
        last["rolled_back"],
        json!([format!("{} (restored)", r2.as_str().unwrap())]),
        "the run's own rollback left its mark on the host"
    );
    let (code, table) = e.rdeploy(&["status", "--from-hosts", "-i", "inv.yaml"]);
    assert_eq!(code, 0, "{table}");
    assert!(
        table.contains(" v2 ") && table.contains("standing"),
        "{table}"
    );

    // History's filters: label, playbook, environment.
    assert_eq!(e.history(&["--label", "v1"]).len(), 1);
    assert_eq!(e.history(&["--label", "v1"])[0]["run_id"], r1);
    assert_eq!(e.history(&["--label", "v3"]).len(), 0);
    assert_eq!(e.history(&["--playbook", "deploy.yaml"]).len(), 2);
    assert_eq!(e.history(&["--playbook", "slow.yaml"]).len(), 0);
    assert_eq!(e.history(&["-i", "inv.yaml"]).len(), 2);
    assert_eq!(e.history(&["-i", "./inv.yaml"]).len(), 2, "the same file");
    assert_eq!(e.history(&["-i", "prod.yaml"]).len(), 0);
    let (_, text) = e.rdeploy(&["history"]);
    assert!(text.contains(" release=v1 by="), "{text}");

    // The webhooks: run_start then run_end, each with the label, who and the environment.
    let got = hooks.lock().unwrap().clone();
    let events: Vec<&str> = got.iter().filter_map(|v| v["event"].as_str()).collect();
    assert_eq!(events, ["run_start", "run_end"], "{got:?}");
    for v in &got {
        assert_eq!(v["label"], "v1");
        assert_eq!(v["user"], user.as_str());
        assert_eq!(v["environment"], json!(["inv.yaml"]));
        assert_eq!(v["run_id"], r1);
    }

    // After `rdeploy rollback` of the second run, the hosts say the first run stands again.
    let (code, out) = e.rdeploy(&["rollback", r2.as_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let st = by_host(&e.status(&elsewhere));
    for h in &names {
        assert_eq!(st[h]["run_id"], r1, "{h}: {st:?}");
        assert_eq!(st[h]["label"], "v1");
        assert_eq!(
            st[h]["rolled_back"],
            json!([format!("{} (restored)", r2.as_str().unwrap())])
        );
    }
}

#[test]
fn a_run_killed_mid_step_leaves_its_hosts_needing_attention() {
    let e = Env::new(2);
    let mut child =
        e.sb.rdeploy_process(&[
            "run",
            "slow.yaml",
            "-i",
            "inv.yaml",
            "--label",
            "v9",
            "-e",
            "rel=9",
        ])
        .env_remove("SSH_AUTH_SOCK")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn rdeploy");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(0..2).all(|i| e.fleet.host(i).path("/srv/release").exists()) {
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(800)); // into the slow step
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let st = e.status(&[]);
    assert_eq!(st.len(), 2, "{st:?}");
    for h in &st {
        assert_eq!(h["label"], "v9");
        assert_eq!(h["state"], "needs_attention", "{st:?}");
        assert_eq!(h["mid_flight"], json!(["step 2 'slow step'"]), "{st:?}");
    }
    let (_, table) = e.rdeploy(&["status"]);
    assert!(
        table.contains("needs_attention") && table.contains("left mid-flight"),
        "{table}"
    );
}
