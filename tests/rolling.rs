//! Transactional rolling updates end to end, on the test fleet's real sshd hosts with the demo
//! app (`playbooks/rolling-update.yaml`: python3's http.server per host) answering the health
//! probes: a clean rollout, a canary that fails its health gate and is rolled back alone, a
//! failure in the second batch rolled back on every host with `rollback_scope: all`, the
//! failure budget's boundary, `rdeploy rollback` of a finished run, and `rdeploy rollback`
//! after rdeploy was killed mid-batch.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Sandbox;
use support::fleet::{Fleet, Host, free_port};

/// A fleet of `n` hosts, each with its own `app_port`, and a sandbox whose `inv.yaml` lists
/// them.
struct Rollout {
    fleet: Fleet,
    sb: Sandbox,
    ports: Vec<u16>,
    playbook: PathBuf,
}

struct Run {
    code: i32,
    events: Vec<Value>,
    out: String,
}

impl Run {
    fn explain(&self) -> String {
        self.out.clone()
    }

    fn run_id(&self) -> String {
        self.events
            .iter()
            .find(|e| e["event"] == "run_end")
            .and_then(|e| e["run_id"].as_str())
            .expect("a run_end event")
            .to_string()
    }
}

impl Rollout {
    fn new(n: usize) -> Rollout {
        let fleet = Fleet::start(n);
        let sb = Sandbox::new();
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut hosts = serde_json::Map::new();
        for (h, port) in fleet.hosts().iter().zip(&ports) {
            let mut v = support::oracle::trusted_host_vars(&fleet, h);
            v.insert("app_port".into(), json!(port));
            hosts.insert(h.name().to_string(), Value::Object(v));
        }
        let inv = json!({ "all": { "hosts": hosts } });
        sb.write("inv.yaml", serde_saphyr::to_string(&inv).unwrap());
        let playbook = support::repo().join("playbooks/rolling-update.yaml");
        Rollout {
            fleet,
            sb,
            ports,
            playbook,
        }
    }

    fn host(&self, i: usize) -> &Host {
        self.fleet.host(i)
    }

    fn rdeploy(&self, args: &[&str]) -> Run {
        let out = self
            .sb
            .rdeploy(args)
            .env_remove("SSH_AUTH_SOCK")
            .timeout(Duration::from_secs(240))
            .output()
            .expect("run rdeploy");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Run {
            code: out.status.code().unwrap_or(-1),
            events: stdout
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
            out: format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
        }
    }

    /// `rdeploy run` of `playbook` with version `v` and `extra` (`-e` JSON).
    fn deploy_with(&self, playbook: &Path, v: &str, extra: Value) -> Run {
        let mut vars = json!({ "app_version": v });
        if let (Some(m), Some(e)) = (vars.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        let vars = vars.to_string();
        let pb = playbook.display().to_string();
        self.rdeploy(&[
            "run", &pb, "-i", "inv.yaml", "--output", "json", "-e", &vars,
        ])
    }

    fn deploy(&self, v: &str, extra: Value) -> Run {
        self.deploy_with(&self.playbook, v, extra)
    }

    /// What host `i`'s app answers on /health.
    fn health(&self, i: usize) -> String {
        http_get(self.ports[i], "/health")
    }

    /// The host's `/srv/app` tree (kind, bytes or link target, mode) without the app's
    /// pid file and log.
    fn snapshot(&self, i: usize) -> BTreeMap<PathBuf, (String, Vec<u8>, u32)> {
        let root = self.host(i).path("/srv/app");
        let mut out = BTreeMap::new();
        walk(&root, &root, &mut out);
        out.retain(|p, _| p != Path::new("app.pid") && p != Path::new("app.log"));
        out
    }

    fn current(&self, i: usize) -> PathBuf {
        std::fs::read_link(self.host(i).path("/srv/app/current")).unwrap_or_default()
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (String, Vec<u8>, u32)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let t = std::fs::read_link(&p).unwrap();
            out.insert(
                rel,
                ("link".into(), t.display().to_string().into_bytes(), 0),
            );
        } else if meta.is_dir() {
            out.insert(rel, ("dir".into(), Vec::new(), mode));
            walk(root, &p, out);
        } else {
            out.insert(rel, ("file".into(), std::fs::read(&p).unwrap(), mode));
        }
    }
}

/// One quick `GET /health`: true when it answers `ok`.
fn probe_once(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if write!(s, "GET /health HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.contains("\r\n\r\nok")
}

/// The body of `GET path` on 127.0.0.1:port, or the error.
fn http_get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or(text))
        })();
        match attempt {
            Ok(body) => return body,
            Err(e) if Instant::now() > deadline => return format!("error: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

impl Rollout {
    /// Starts a v2 rollout of a slowed-down copy of the playbook and kills rdeploy (SIGKILL)
    /// once the second batch has started changing its hosts.
    fn kill_mid_batch_two(&self) {
        self.sb.write(
            "slow.yaml",
            std::fs::read_to_string(&self.playbook).unwrap().replace(
                "    - name: Switch to the new release\n",
                "    - name: Take a while\n      command: sleep 3\n      when: inventory_hostname != groups['all'][0]\n\n    - name: Switch to the new release\n",
            ),
        );
        let slow = self.sb.path().join("slow.yaml").display().to_string();
        let mut child = self
            .sb
            .rdeploy_process(&["run", &slow, "-i", "inv.yaml", "--output", "json"])
            .args(["-e", "app_version=2.0.0"])
            .env_remove("SSH_AUTH_SOCK")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn rdeploy");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self
            .host(1)
            .path("/srv/app/releases/2.0.0/app.conf")
            .exists()
        {
            assert!(Instant::now() < deadline, "the second batch never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

// ------------------------------------------------------------------ rollouts

#[test]
fn six_hosts_roll_forward_batch_by_batch_and_a_broken_canary_is_rolled_back_alone() {
    let r = Rollout::new(6);
    let v1 = r.deploy("1.0.0", Value::Null);
    assert_eq!(v1.code, 0, "{}", v1.explain());
    // While v2 rolls out, watch every host's /health: never more hosts are down at once
    // than the largest batch (3).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, ports) = (std::sync::Arc::clone(&stop), r.ports.clone());
        std::thread::spawn(move || {
            let mut worst = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let down = ports.iter().filter(|p| !probe_once(**p)).count();
                worst = worst.max(down);
                std::thread::sleep(Duration::from_millis(20));
            }
            worst
        })
    };
    let v2 = r.deploy("2.0.0", Value::Null);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let worst = watcher.join().unwrap();
    assert!(worst <= 3, "{worst} hosts were down at once");
    assert_eq!(v2.code, 0, "{}", v2.explain());
    let batches: Vec<usize> = v2
        .events
        .iter()
        .filter(|e| e["event"] == "batch")
        .map(|e| e["hosts"].as_array().map(Vec::len).unwrap_or(0))
        .collect();
    assert_eq!(batches, [1, 2, 3], "serial [1, 2, \"100%\"]");
    let probes = v2.events.iter().filter(|e| e["event"] == "probe").count();
    assert_eq!(probes, 6, "every host passed its health probe once");
    for i in 0..6 {
        assert_eq!(r.health(i), "ok 2.0.0\n", "host {i}");
        assert_eq!(r.current(i), Path::new("/srv/app/releases/2.0.0"));
    }
    let before: Vec<_> = (0..6).map(|i| r.snapshot(i)).collect();

    // v3 fails its health check on the canary (the first batch): only the canary changed,
    // and it is put back exactly as it was.
    let canary = r.host(0).name().to_string();
    let v3 = r.deploy("3.0.0", json!({ "app_broken_on": [canary] }));
    assert_eq!(v3.code, 3, "{}", v3.explain());
    assert!(
        v3.events
            .iter()
            .any(|e| e["event"] == "gate_failed" && e["batch"] == 1),
        "{}",
        v3.explain()
    );
    let restored: Vec<&Value> = v3
        .events
        .iter()
        .filter(|e| e["event"] == "rollback")
        .collect();
    assert_eq!(restored.len(), 1, "{}", v3.explain());
    assert_eq!(restored[0]["rollback"]["host"], canary.as_str());
    for (i, snap) in before.iter().enumerate() {
        assert_eq!(&r.snapshot(i), snap, "host {i} is as it was before v3");
    }
    assert!(!r.host(0).path("/srv/app/releases/3.0.0").exists());
    assert_eq!(
        r.health(0),
        "ok 2.0.0\n",
        "the restored release was restarted"
    );
}

#[test]
fn a_failure_in_batch_two_with_rollback_scope_all_restores_every_updated_host() {
    let r = Rollout::new(4);
    assert_eq!(r.deploy("2.0.0", Value::Null).code, 0);
    let before: Vec<_> = (0..4).map(|i| r.snapshot(i)).collect();
    let text = std::fs::read_to_string(&r.playbook).unwrap();
    assert!(text.contains("rollback_scope: batch"));
    r.sb.write(
        "all.yaml",
        text.replace("rollback_scope: batch", "rollback_scope: all"),
    );
    let all = r.sb.path().join("all.yaml");
    // Batch 2 is hosts 1 and 2; host 2 breaks. Host 0 (batch 1) passed and is rolled back
    // too; host 3 (batch 3) was never touched.
    let broken = r.host(2).name().to_string();
    let v3 = r.deploy_with(&all, "3.0.0", json!({ "app_broken_on": [broken] }));
    assert_eq!(v3.code, 3, "{}", v3.explain());
    let rolled: Vec<String> = v3
        .events
        .iter()
        .filter(|e| e["event"] == "rollback")
        .filter_map(|e| e["rollback"]["host"].as_str().map(str::to_string))
        .collect();
    assert_eq!(rolled.len(), 3, "{rolled:?}");
    for (i, snap) in before.iter().enumerate() {
        assert_eq!(&r.snapshot(i), snap, "host {i} is byte-identical to v2");
        assert_eq!(r.health(i), "ok 2.0.0\n", "host {i}");
    }

    // The history has the run as rolled back.
    let h = r.rdeploy(&["history", "--output", "json"]);
    assert_eq!(h.code, 0, "{}", h.explain());
    let last = h.events.last().cloned().unwrap_or_default();
    assert_eq!(last["outcome"], "rolled_back", "{}", h.explain());
    assert_eq!(last["release"], "app 3.0.0");
}

/// A drain → change → undrain play over 6 hosts, 2 at a time, whose last batch fails its
/// health gate with `rollback_scope: all`.
const DRAINED_ROLLOUT: &str = r#"- hosts: all
  gather_facts: no
  serial: 2
  rollback_scope: all
  tasks:
    - file: { path: /srv/rot, state: directory }
    - name: Out of rotation
      file: { path: /srv/rot/in, state: absent }
    - name: The app
      copy: { dest: /srv/app.conf, content: "{{ 'down' if inventory_hostname == broken else v }}\n" }
    - name: Back in rotation
      copy: { dest: /srv/rot/in, content: "in\n" }
  health:
    - command: grep -qvx down /srv/app.conf
  probe: { retries: 0 }
  rollback:
    - name: Record when the host's rollback ran
      shell: "date +%s%N >> /srv/rollback.log; sleep 0.4; date +%s%N >> /srv/rollback.log"
"#;

#[test]
fn rollback_scope_all_rolls_back_batch_by_batch_newest_first_and_never_drains_more_than_a_batch() {
    let r = Rollout::new(6);
    r.sb.write("drain.yaml", DRAINED_ROLLOUT);
    let play = r.sb.path().join("drain.yaml");
    let v1 = r.deploy_with(&play, "1", json!({ "v": "1", "broken": "none" }));
    assert_eq!(v1.code, 0, "{}", v1.explain());
    let names: Vec<String> = (0..6).map(|i| r.host(i).name().to_string()).collect();
    // Sample every host's "in rotation" marker during v2: never more than a batch (2) out at
    // once, rollback included.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let markers: Vec<PathBuf> = (0..6).map(|i| r.host(i).path("/srv/rot/in")).collect();
    let watcher = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut worst = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let out = markers.iter().filter(|m| !m.exists()).count();
                worst = worst.max(out);
                std::thread::sleep(Duration::from_micros(300));
            }
            worst
        })
    };
    // The third batch (hosts 4 and 5) fails its gate on host 5.
    let v2 = r.deploy_with(&play, "2", json!({ "v": "2", "broken": names[5] }));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let worst = watcher.join().unwrap();
    assert_eq!(v2.code, 3, "{}", v2.explain());
    assert!(worst <= 2, "{worst} hosts were out of rotation at once");
    // Rolled back in the batches they were deployed in, newest first.
    let groups: Vec<Vec<String>> = v2
        .events
        .iter()
        .filter(|e| e["event"] == "rollback_start")
        .map(|e| serde_json::from_value(e["hosts"].clone()).unwrap())
        .collect();
    assert_eq!(
        groups,
        [
            [names[4].clone(), names[5].clone()],
            [names[2].clone(), names[3].clone()],
            [names[0].clone(), names[1].clone()]
        ],
        "{}",
        v2.explain()
    );
    // What the hosts recorded: each host's rollback window, sampled on the host. Windows
    // overlap only within a batch, and a batch ends before the older one starts.
    let window = |i: usize| -> (u128, u128) {
        let log = std::fs::read_to_string(r.host(i).path("/srv/rollback.log")).unwrap();
        let t: Vec<u128> = log.lines().map(|l| l.trim().parse().unwrap()).collect();
        assert_eq!(t.len(), 2, "host {i} rolled back once: {log}");
        (t[0], t[1])
    };
    let windows: Vec<(u128, u128)> = (0..6).map(window).collect();
    for &(start, _) in &windows {
        let at_once = windows
            .iter()
            .filter(|(s, e)| *s <= start && start < *e)
            .count();
        assert!(
            at_once <= 2,
            "{at_once} hosts rolled back at once: {windows:?}"
        );
    }
    for (newer, older) in [(4, 2), (2, 0)] {
        let newer_end = windows[newer].1.max(windows[newer + 1].1);
        let older_start = windows[older].0.min(windows[older + 1].0);
        assert!(newer_end <= older_start, "batch order: {windows:?}");
    }
    for i in 0..6 {
        let conf = std::fs::read_to_string(r.host(i).path("/srv/app.conf")).unwrap();
        assert_eq!(conf, "1\n", "host {i}");
        assert!(
            r.host(i).path("/srv/rot/in").exists(),
            "host {i} in rotation"
        );
    }
}

#[test]
fn a_rollback_batch_that_stays_unhealthy_stops_the_rollback_and_names_the_hosts_left() {
    let r = Rollout::new(4);
    // host3 fails its gate whatever it runs: the failed batch's rollback does not come back
    // healthy either, and the batch before it keeps this run's (healthy) version.
    r.sb.write(
        "drain.yaml",
        DRAINED_ROLLOUT.replace(
            "grep -qvx down /srv/app.conf",
            "test {{ inventory_hostname }} != {{ sick }}",
        ),
    );
    let play = r.sb.path().join("drain.yaml");
    let v1 = r.deploy_with(
        &play,
        "1",
        json!({ "v": "1", "broken": "none", "sick": "none" }),
    );
    assert_eq!(v1.code, 0, "{}", v1.explain());
    let sick = r.host(3).name().to_string();
    let v2 = r.deploy_with(
        &play,
        "2",
        json!({ "v": "2", "broken": "none", "sick": sick }),
    );
    assert_eq!(v2.code, 5, "{}", v2.explain());
    let starts = v2
        .events
        .iter()
        .filter(|e| e["event"] == "rollback_start")
        .count();
    assert_eq!(starts, 1, "{}", v2.explain());
    let warning = v2
        .events
        .iter()
        .filter(|e| e["event"] == "warning")
        .filter_map(|e| e["msg"].as_str())
        .find(|m| m.starts_with("the rollback stopped"))
        .unwrap_or_default()
        .to_string();
    let (h0, h1) = (r.host(0).name(), r.host(1).name());
    assert!(
        warning.contains(&format!("--limit {h0},{h1}")),
        "{}",
        v2.explain()
    );
    for (i, v) in [(0, "2\n"), (1, "2\n"), (2, "1\n"), (3, "1\n")] {
        let conf = std::fs::read_to_string(r.host(i).path("/srv/app.conf")).unwrap();
        assert_eq!(conf, v, "host {i}");
    }
}

#[test]
fn rdeploy_rollback_restores_batch_by_batch_newest_first() {
    let r = Rollout::new(6);
    r.sb.write("drain.yaml", DRAINED_ROLLOUT);
    let play = r.sb.path().join("drain.yaml");
    let v1 = r.deploy_with(&play, "1", json!({ "v": "1", "broken": "none" }));
    assert_eq!(v1.code, 0, "{}", v1.explain());
    let v2 = r.deploy_with(&play, "2", json!({ "v": "2", "broken": "none" }));
    assert_eq!(v2.code, 0, "{}", v2.explain());
    let back = r.rdeploy(&["rollback", &v2.run_id(), "--output", "json"]);
    assert_eq!(back.code, 0, "{}", back.explain());
    let names: Vec<String> = (0..6).map(|i| r.host(i).name().to_string()).collect();
    let groups: Vec<Vec<String>> = back
        .events
        .iter()
        .filter(|e| e["event"] == "rollback_start")
        .map(|e| serde_json::from_value(e["hosts"].clone()).unwrap())
        .collect();
    assert_eq!(
        groups,
        [
            [names[4].clone(), names[5].clone()],
            [names[2].clone(), names[3].clone()],
            [names[0].clone(), names[1].clone()]
        ],
        "{}",
        back.explain()
    );
    for i in 0..6 {
        let conf = std::fs::read_to_string(r.host(i).path("/srv/app.conf")).unwrap();
        assert_eq!(conf, "1\n", "host {i}");
        assert!(
            r.host(i).path("/srv/rot/in").exists(),
            "host {i} in rotation"
        );
    }
}

#[test]
fn the_failure_budget_must_be_strictly_exceeded() {
    let r = Rollout::new(4);
    r.sb.write(
        "budget.yaml",
        "- hosts: all\n  gather_facts: no\n  serial: 2\n  max_fail_percentage: 50\n  tasks:\n    - copy: { dest: /srv/touched, content: \"x\\n\" }\n    - fail: { msg: planned }\n      when: inventory_hostname in failing\n",
    );
    let run = |failing: Vec<&str>| {
        let vars = json!({ "failing": failing }).to_string();
        r.rdeploy(&[
            "run",
            "budget.yaml",
            "-i",
            "inv.yaml",
            "--output",
            "json",
            "-e",
            &vars,
        ])
    };
    // One of two hosts (50%) failing is at the threshold: the second batch runs.
    let at = run(vec![r.host(0).name()]);
    assert_eq!(at.code, 2, "{}", at.explain());
    assert!(r.host(3).path("/srv/touched").exists(), "{}", at.explain());
    for i in 0..4 {
        let _ = std::fs::remove_file(r.host(i).path("/srv/touched"));
    }
    // Both hosts of the first batch failing is over it: nothing after it is touched, and with
    // no health gate and no rollback tasks the play stops as Ansible's does (exit 2).
    let over = run(vec![r.host(0).name(), r.host(1).name()]);
    assert_eq!(over.code, 2, "{}", over.explain());
    assert!(over.events.iter().any(|e| e["event"] == "gate_failed"));
    assert!(!r.host(2).path("/srv/touched").exists());
    assert!(!r.host(3).path("/srv/touched").exists());
}

#[test]
fn rdeploy_rollback_undoes_a_finished_run_and_a_killed_one() {
    let r = Rollout::new(3);
    assert_eq!(r.deploy("1.0.0", Value::Null).code, 0);
    let v1: Vec<_> = (0..3).map(|i| r.snapshot(i)).collect();
    let v2 = r.deploy("2.0.0", Value::Null);
    assert_eq!(v2.code, 0, "{}", v2.explain());
    let back = r.rdeploy(&["rollback", &v2.run_id(), "--output", "json"]);
    assert_eq!(back.code, 0, "{}", back.explain());
    for (i, snap) in v1.iter().enumerate() {
        assert_eq!(&r.snapshot(i), snap, "host {i} is back on 1.0.0");
    }

    // Kill rdeploy while the second batch is changing things, then roll that run back: every
    // host ends in its recorded state, none half-changed.
    r.kill_mid_batch_two();
    let hist = r.rdeploy(&["history", "--output", "json"]);
    let killed = hist.events.last().cloned().unwrap_or_default();
    assert_eq!(killed["outcome"], "unfinished", "{}", hist.explain());
    let id = killed["run_id"].as_str().unwrap().to_string();
    let back = r.rdeploy(&["rollback", &id, "--output", "json"]);
    assert_eq!(back.code, 0, "{}", back.explain());
    for (i, snap) in v1.iter().enumerate() {
        assert_eq!(&r.snapshot(i), snap, "host {i} is back on 1.0.0");
    }
}

#[test]
fn rdeploy_resume_finishes_a_killed_run_without_redoing_finished_batches() {
    let r = Rollout::new(4);
    assert_eq!(r.deploy("1.0.0", Value::Null).code, 0);
    r.kill_mid_batch_two();
    let hist = r.rdeploy(&["history", "--output", "json"]);
    let killed = hist.events.last().cloned().unwrap_or_default();
    assert_eq!(killed["outcome"], "unfinished", "{}", hist.explain());
    let id = killed["run_id"].as_str().unwrap().to_string();
    let resumed = r.rdeploy(&["resume", &id, "--output", "json", "-e", "app_version=2.0.0"]);
    assert_eq!(resumed.code, 0, "{}", resumed.explain());
    assert!(
        resumed
            .events
            .iter()
            .any(|e| e["event"] == "warning"
                && e["msg"].as_str().unwrap_or("").contains("batch 1/3")),
        "the canary's batch is not run again: {}",
        resumed.explain()
    );
    for i in 0..4 {
        assert_eq!(
            r.current(i),
            Path::new("/srv/app/releases/2.0.0"),
            "host {i}"
        );
        assert_eq!(r.health(i), "ok 2.0.0\n", "host {i}");
    }
    // A finished run cannot be resumed.
    let again = r.rdeploy(&["resume", &resumed.run_id()]);
    assert_eq!(again.code, 4, "{}", again.explain());
}

// ------------------------------------------------------------ runs that meet each other

/// A playbook that writes `/srv/first` on every host, then spends `secs` seconds in a step
/// that is reversible (`creates:`), so a kill lands mid-step.
fn slow_playbook(secs: u32) -> String {
    format!(
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: /srv/first, content: x }}\n    - name: slow step\n      shell: sleep {secs} && touch /srv/slept\n      args: {{ creates: /srv/slept }}\n"
    )
}

const SECOND: &str =
    "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: { dest: /srv/second, content: y }\n";

impl Rollout {
    fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.sb
            .rdeploy_process(args)
            .env_remove("SSH_AUTH_SOCK")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn rdeploy")
    }

    /// Waits until `/srv/first` exists on every host (the slow run holds them all).
    fn wait_first(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(0..n).all(|i| self.host(i).path("/srv/first").exists()) {
            assert!(Instant::now() < deadline, "the slow run never started");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The id of the newest run in the default state directory.
    fn newest_run(&self) -> String {
        let hist = self.rdeploy(&["history", "--output", "json"]);
        let last = hist.events.last().cloned().unwrap_or_default();
        last["run_id"].as_str().unwrap_or_default().to_string()
    }
}

#[test]
fn a_second_run_on_hosts_another_run_holds_is_refused_per_host_and_sends_nothing() {
    let r = Rollout::new(2);
    r.sb.write("slow.yaml", slow_playbook(4));
    r.sb.write("second.yaml", SECOND);
    let mut first = r.spawn(&["run", "slow.yaml", "-i", "inv.yaml"]);
    r.wait_first(2);
    let holder = r.newest_run();

    // Another playbook, another state directory (as another controller would be): refused on
    // each host, naming the holder; its copy never reaches a host.
    let second = r.rdeploy(&[
        "run",
        "second.yaml",
        "-i",
        "inv.yaml",
        "--state-dir",
        "other-state",
    ]);
    assert_eq!(second.code, 2, "{}", second.explain());
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for i in 0..2 {
        let want = format!(
            "{}: locked by {holder} from {} since ",
            r.host(i).name(),
            host_name.trim()
        );
        assert!(
            second.out.contains(&want),
            "{want:?} in {}",
            second.explain()
        );
        assert!(!r.host(i).path("/srv/second").exists(), "host {i}");
    }
    assert_eq!(first.wait().unwrap().code(), Some(0));
    // Released with the holder's connection: the same run now goes through. What the lock
    // costs per host (one channel, one round trip) is printed for the record.
    let again =
        r.sb.rdeploy(&[
            "run",
            "second.yaml",
            "-i",
            "inv.yaml",
            "--state-dir",
            "other-state",
        ])
        .env_remove("SSH_AUTH_SOCK")
        .env("RDEPLOY_LOG", "rdeploy::exec::host=debug")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&again.stderr).into_owned();
    assert_eq!(again.status.code(), Some(0), "{log}");
    assert!(r.host(0).path("/srv/second").exists());
    for l in log.lines().filter(|l| l.contains("host lock")) {
        eprintln!("{l}");
    }
}

#[test]
fn a_run_killed_mid_step_frees_its_hosts_but_a_new_run_over_it_is_refused() {
    let r = Rollout::new(2);
    r.sb.write("slow.yaml", slow_playbook(20));
    r.sb.write("second.yaml", SECOND);
    let mut killed = r.spawn(&["run", "slow.yaml", "-i", "inv.yaml"]);
    r.wait_first(2);
    std::thread::sleep(Duration::from_millis(500)); // into the slow step
    killed.kill().unwrap(); // SIGKILL
    killed.wait().unwrap();
    let id = r.newest_run();

    // The host lock died with the killed controller's connections: a run elsewhere goes on.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let other = r.rdeploy(&[
            "run",
            "second.yaml",
            "-i",
            "inv.yaml",
            "--state-dir",
            "other-state",
        ]);
        if other.code == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline && other.out.contains("locked by"),
            "{}",
            other.explain()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The same controller knows the run was killed mid-step: refused, nothing touched.
    let before = r.host(0).path("/srv/slept").exists();
    let over = r.rdeploy(&["run", "slow.yaml", "-i", "inv.yaml"]);
    assert_eq!(over.code, 4, "{}", over.explain());
    for i in 0..2 {
        let want = format!("{} (step 2 'slow step' left mid-flight)", r.host(i).name());
        assert!(over.out.contains(&want), "{want:?} in {}", over.explain());
    }
    assert!(over.out.contains(&format!(
        "`rdeploy resume {id}` or undo it with `rdeploy rollback {id}`"
    )));
    assert_eq!(r.host(0).path("/srv/slept").exists(), before);
    let hist = r.rdeploy(&["history"]);
    let line = hist
        .out
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_default();
    assert!(line.contains(" changed=2"), "{}", hist.explain());
}

/// A run's journal emptied after the run (a full disk, a truncated file): `rdeploy rollback`
/// with the inventory restores every host from the manifests kept on the hosts (it used to
/// exit 7, "changed no host").
#[test]
fn rdeploy_rollback_of_a_run_whose_journal_was_emptied_restores_every_host_from_its_manifest() {
    let r = Rollout::new(2);
    let state = r.sb.path().join("journals").display().to_string();
    let pb = r.playbook.display().to_string();
    let deploy = |v: &str| {
        let vars = json!({ "app_version": v }).to_string();
        r.rdeploy(&[
            "run",
            &pb,
            "-i",
            "inv.yaml",
            "--output",
            "json",
            "--state-dir",
            &state,
            "-e",
            &vars,
        ])
    };
    let v1 = deploy("1.0.0");
    assert_eq!(v1.code, 0, "{}", v1.explain());
    let before: Vec<_> = (0..2).map(|i| r.snapshot(i)).collect();
    let v2 = deploy("2.0.0");
    assert_eq!(v2.code, 0, "{}", v2.explain());
    let id = v2.run_id();
    let journal = Path::new(&state).join(format!("runs/{id}/journal.jsonl"));
    std::fs::write(&journal, "").unwrap();

    let back = r.rdeploy(&[
        "rollback",
        &id,
        "-i",
        "inv.yaml",
        "--state-dir",
        &state,
        "--output",
        "json",
    ]);
    assert_eq!(back.code, 0, "{}", back.explain());
    let restored = back
        .events
        .iter()
        .filter(|e| e["event"] == "rollback" && e["rollback"]["restored"].as_u64() > Some(0))
        .count();
    assert_eq!(restored, 2, "{}", back.explain());
    for (i, snap) in before.iter().enumerate() {
        assert_eq!(&r.snapshot(i), snap, "host {i} is back on 1.0.0");
    }
}

#[test]
fn a_canary_plan_deploys_cumulative_shares_and_a_failing_step_stops_the_run() {
    let r = Rollout::new(5);
    r.sb.write(
        "canary.yaml",
        "- hosts: all\n  gather_facts: no\n  canary: [\"20%\", \"60%\", \"100%\"]\n  max_fail_percentage: 0\n  tasks:\n    - copy: { dest: /srv/touched, content: \"x\\n\" }\n    - fail: { msg: planned }\n      when: inventory_hostname in failing\n",
    );
    let run = |failing: Vec<&str>| {
        let vars = json!({ "failing": failing }).to_string();
        r.rdeploy(&[
            "run",
            "canary.yaml",
            "-i",
            "inv.yaml",
            "--output",
            "json",
            "-e",
            &vars,
        ])
    };
    let batches = |run: &Run| -> Vec<Vec<String>> {
        run.events
            .iter()
            .filter(|e| e["event"] == "batch")
            .map(|e| {
                e["hosts"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|h| h.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect()
    };
    let names: Vec<String> = (0..5).map(|i| r.host(i).name().to_string()).collect();
    // 20% of 5 is 1 host, 60% is 3 in all (2 more), 100% the last 2: in inventory order.
    let ok = run(vec![]);
    assert_eq!(ok.code, 0, "{}", ok.explain());
    assert_eq!(
        batches(&ok),
        [
            names[0..1].to_vec(),
            names[1..3].to_vec(),
            names[3..5].to_vec()
        ],
        "{}",
        ok.explain()
    );
    for i in 0..5 {
        assert!(r.host(i).path("/srv/touched").exists(), "host {i}");
        std::fs::remove_file(r.host(i).path("/srv/touched")).unwrap();
    }
    // A host of step 2 fails (over the budget of 0%): the run stops after step 2, as a failing batch does; step 3's
    // hosts are never touched.
    let failed = run(vec![names[2].as_str()]);
    assert_eq!(failed.code, 2, "{}", failed.explain());
    assert_eq!(batches(&failed).len(), 2, "{}", failed.explain());
    assert!(
        failed
            .events
            .iter()
            .any(|e| e["event"] == "gate_failed" && e["batch"] == 2),
        "{}",
        failed.explain()
    );
    for i in 0..3 {
        assert!(r.host(i).path("/srv/touched").exists(), "host {i}");
    }
    for i in 3..5 {
        assert!(!r.host(i).path("/srv/touched").exists(), "host {i}");
    }
}
