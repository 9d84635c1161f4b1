//! End to end, through the `rdeploy` binary on the local connection: what an unattended run
//! (cron, CI) relies on. The run lock (exit 75 naming the holder, `--lock-wait`, `--no-lock`,
//! check mode without it, `rollback` and `resume` taking it, a killed holder releasing it),
//! `--deadline` (exit 124 at a step boundary, and a hanging step abandoned), `--quiet`,
//! `--report` and `--log-file` whatever the output mode, `--check --detailed-exitcode`,
//! `--notify` webhooks against a recording HTTP server on 127.0.0.1, `history --since
//! --stats`, and the README's exit codes that the local connection can produce (0, 2, 3, 4,
//! 5, 7, 10, 75, 124; 130/143 are in `executor.rs`, 6 in `ssh.rs`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const ONE: &str = "local:\n  hosts:\n    localhost:\n      ansible_connection: local\n";
const TWO: &str = "local:\n  hosts:\n    h1:\n      ansible_connection: local\n    h2:\n      ansible_connection: local\n";

/// A temp dir with `inv.yaml` and `pb.yaml`; runs are started in it with their state there.
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new(inventory: &str, playbook: &str) -> Dir {
        let d = Dir {
            tmp: tempfile::tempdir().unwrap(),
        };
        d.write("inv.yaml", inventory);
        d.write("pb.yaml", playbook);
        d
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn write(&self, rel: &str, body: &str) {
        std::fs::write(self.p(rel), body).unwrap();
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("rdeploy"));
        c.current_dir(self.path())
            .env("NO_COLOR", "1")
            .env("RDEPLOY_STATE_DIR", self.p("state"))
            .env_remove("RDEPLOY_INVENTORY")
            .args(args);
        c
    }

    /// `rdeploy run pb.yaml -i inv.yaml ARGS`.
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run", "pb.yaml", "-i", "inv.yaml"];
        all.extend_from_slice(args);
        self.rdeploy(&all)
    }

    fn rdeploy(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn spawn_run(&self, args: &[&str]) -> Child {
        let mut all = vec!["run", "pb.yaml", "-i", "inv.yaml"];
        all.extend_from_slice(args);
        self.cmd(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits for `rel` to exist (a step of a spawned run reached it).
    fn wait_for(&self, rel: &str) {
        let until = Instant::now() + Duration::from_secs(30);
        while !self.p(rel).exists() {
            assert!(Instant::now() < until, "{rel} never appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn journal_of(&self, run_id: &str) -> String {
        std::fs::read_to_string(self.p(&format!("state/runs/{run_id}/journal.jsonl"))).unwrap()
    }

    fn run_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.p("state/runs"))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A playbook whose run touches `started`, then waits for `release` to exist (at most 20 s;
/// not with `-e quick=true`), so a test decides how long it holds the lock.
fn holding_playbook(d: &Dir) -> String {
    let dir = d.path().display();
    format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: '{dir}/started', content: 'x' }}\n    - shell: 'for i in $(seq 200); do test -e {dir}/release && break; sleep 0.1; done'\n      when: not (quick | default(false) | bool)\n"
    )
}

// ---------------------------------------------------------------- the run lock

#[test]
fn a_second_run_of_the_same_inventory_and_playbook_exits_75_naming_the_holder() {
    let d = Dir::new(ONE, "");
    d.write("pb.yaml", &holding_playbook(&d));
    // Cron sets neither USER nor LOGNAME: the holder is still named by its uid's name.
    let first = d
        .cmd(&["run", "pb.yaml", "-i", "inv.yaml"])
        .env_remove("USER")
        .env_remove("LOGNAME")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    d.wait_for("started");
    let holder_id = d.run_ids().pop().unwrap();

    let second = d.run(&["--report", "locked.json"]);
    assert_eq!(code(&second), 75, "{}", text(&second));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(d.p("locked.json")).unwrap()).unwrap();
    assert_eq!(report["outcome"], "locked");
    assert_eq!(report["exit_code"], 75);
    let err = stderr(&second);
    assert!(
        err.contains(&format!("pid {}", first.id())),
        "the holder's pid: {err}"
    );
    assert!(
        err.contains("since ") && err.contains("user ") && err.contains("host "),
        "{err}"
    );
    assert!(
        err.contains(&format!(": run {holder_id} (pid")),
        "the holder's run id: {err}"
    );
    assert!(!err.contains("user ?"), "{err}");

    // The same pair through an absolute path is the same lock.
    let abs = d.p("pb.yaml").display().to_string();
    let again = d.rdeploy(&["run", &abs, "-i", "inv.yaml"]);
    assert_eq!(code(&again), 75, "{}", text(&again));
    // Check mode changes nothing: it takes no lock.
    let check = d.run(&["--check", "-e", "quick=true"]);
    assert_eq!(code(&check), 0, "{}", text(&check));
    // --no-lock runs anyway.
    let unlocked = d.run(&["--no-lock", "-e", "quick=true"]);
    assert_eq!(code(&unlocked), 0, "{}", text(&unlocked));
    // Another playbook on the same inventory has its own lock.
    d.write(
        "other.yaml",
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: { msg: hi }\n",
    );
    let other = d.rdeploy(&["run", "other.yaml", "-i", "inv.yaml"]);
    assert_eq!(code(&other), 0, "{}", text(&other));

    // --lock-wait waits for the holder to finish, then runs.
    let waiter = d.spawn_run(&["--lock-wait", "20s"]);
    std::thread::sleep(Duration::from_millis(500));
    d.write("release", "");
    let first = first.wait_with_output().unwrap();
    assert_eq!(code(&first), 0, "{}", text(&first));
    let waited = waiter.wait_with_output().unwrap();
    assert_eq!(code(&waited), 0, "{}", text(&waited));
}

#[test]
fn lock_wait_gives_up_after_its_duration() {
    let d = Dir::new(ONE, "");
    d.write("pb.yaml", &holding_playbook(&d));
    let mut first = d.spawn_run(&[]);
    d.wait_for("started");
    let t = Instant::now();
    let second = d.run(&["--lock-wait", "1s"]);
    assert_eq!(code(&second), 75, "{}", text(&second));
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(
        stderr(&second).contains("not released in time"),
        "{}",
        text(&second)
    );
    d.write("release", "");
    assert_eq!(first.wait().unwrap().code(), Some(0));
}

#[test]
fn a_killed_holder_releases_the_lock_at_once() {
    let d = Dir::new(ONE, "");
    d.write("pb.yaml", &holding_playbook(&d));
    let mut first = d.spawn_run(&[]);
    d.wait_for("started");
    first.kill().unwrap();
    first.wait().unwrap();
    d.write("release", "");
    // The killed run changed the host: starting over it must be said out loud.
    let killed = d.run_ids().pop().unwrap();
    let next = d.run(&["--force-over", &killed]);
    assert_eq!(code(&next), 0, "{}", text(&next));
}

// ------------------------------------------------------------ runs that meet each other

/// A playbook whose first step writes `done1`, and whose second (reversible through
/// `creates:`) touches `started2`, then sleeps up to 20 s before writing `made` (not with
/// `-e quick=true`).
fn two_step_playbook(d: &Dir) -> String {
    let dir = d.path().display();
    format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - name: first\n      copy: {{ dest: '{dir}/done1', content: 'x' }}\n    - name: slow second\n      shell: 'touch {dir}/started2; sleep 20; touch {dir}/made'\n      args: {{ creates: '{dir}/made' }}\n      when: not (quick | default(false) | bool)\n"
    )
}

#[test]
fn a_new_run_over_a_killed_run_is_refused_naming_the_steps_left_mid_flight() {
    let d = Dir::new(ONE, "");
    d.write("pb.yaml", &two_step_playbook(&d));
    let mut first = d.spawn_run(&[]);
    d.wait_for("started2");
    first.kill().unwrap(); // SIGKILL, mid-step
    first.wait().unwrap();
    let killed = d.run_ids().pop().unwrap();

    let next = d.run(&["-e", "quick=true"]);
    assert_eq!(code(&next), 4, "{}", text(&next));
    let err = stderr(&next);
    for want in [
        format!("run {killed} (pb.yaml) did not finish"),
        "localhost (step 2 'slow second' left mid-flight)".to_string(),
        format!("`rdeploy resume {killed}`"),
        format!("`rdeploy rollback {killed}`"),
        format!("--force-over {killed}"),
    ] {
        assert!(err.contains(&want), "{want:?} in {}", text(&next));
    }
    assert_eq!(
        d.run_ids(),
        std::slice::from_ref(&killed),
        "the refused run recorded nothing"
    );

    // history counts the killed run's hosts from its intents, not `changed=0`.
    let hist = stdout(&d.rdeploy(&["history"]));
    let line = hist.lines().find(|l| l.starts_with(&killed)).unwrap();
    assert!(
        line.contains("unfinished") && line.contains(" changed=1"),
        "{hist}"
    );

    // A playbook on other hosts is not concerned.
    d.write(
        "inv2.yaml",
        "other:\n  hosts:\n    elsewhere:\n      ansible_connection: local\n",
    );
    d.write(
        "other.yaml",
        "- hosts: elsewhere\n  gather_facts: no\n  tasks:\n    - debug: { msg: hi }\n",
    );
    let other = d.rdeploy(&["run", "other.yaml", "-i", "inv2.yaml"]);
    assert_eq!(code(&other), 0, "{}", text(&other));

    // --force-over says so; after it the killed run no longer blocks.
    let forced = d.run(&["-e", "quick=true", "--force-over", &killed]);
    assert_eq!(code(&forced), 0, "{}", text(&forced));
    let again = d.run(&["-e", "quick=true"]);
    assert_eq!(code(&again), 0, "{}", text(&again));
}

#[test]
fn a_killed_run_rolled_back_or_resumed_no_longer_blocks_a_new_run() {
    let d = Dir::new(ONE, "");
    d.write("pb.yaml", &two_step_playbook(&d));
    for settle in ["rollback", "resume"] {
        let _ = std::fs::remove_file(d.p("started2"));
        let mut first = d.spawn_run(&[]);
        d.wait_for("started2");
        first.kill().unwrap();
        first.wait().unwrap();
        let killed = d.run_ids().pop().unwrap();
        assert_eq!(code(&d.run(&["-e", "quick=true"])), 4);
        let args = match settle {
            "rollback" => vec!["rollback", killed.as_str()],
            _ => vec!["resume", killed.as_str(), "-e", "quick=true"],
        };
        let settled = d.rdeploy(&args);
        assert_eq!(code(&settled), 0, "{settle}: {}", text(&settled));
        let next = d.run(&["-e", "quick=true"]);
        assert_eq!(code(&next), 0, "after {settle}: {}", text(&next));
    }
}

#[test]
fn rollback_of_an_older_run_names_the_later_runs_that_changed_the_same_paths() {
    let d = Dir::new(ONE, "");
    let conf = d.p("app.conf").display().to_string();
    d.write(
        "pb.yaml",
        &format!(
            "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: '{conf}', content: '{{{{ v }}}}' }}\n"
        ),
    );
    for v in ["1", "2", "3"] {
        let o = d.run(&["-e", &format!("v={v}")]);
        assert_eq!(code(&o), 0, "{}", text(&o));
    }
    let ids = d.run_ids();
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);

    let refused = d.rdeploy(&["rollback", a]);
    assert_eq!(code(&refused), 4, "{}", text(&refused));
    let err = stderr(&refused);
    assert!(
        err.contains(&format!("{b} (localhost:{conf})"))
            && err.contains(&format!("{c} (localhost:{conf})"))
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "3",
        "nothing restored"
    );

    // The newest first: then only the run in between is named.
    let back = d.rdeploy(&["rollback", c]);
    assert_eq!(code(&back), 0, "{}", text(&back));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "2");
    let refused = d.rdeploy(&["rollback", a]);
    assert_eq!(code(&refused), 4, "{}", text(&refused));
    let err = stderr(&refused);
    assert!(
        err.contains(b.as_str()) && !err.contains(c.as_str()),
        "{err}"
    );

    // --force undoes the older run whatever came after: it created the file.
    let forced = d.rdeploy(&["rollback", a, "--force"]);
    assert_eq!(code(&forced), 0, "{}", text(&forced));
    assert!(!Path::new(&conf).exists());
}

#[test]
fn rollback_and_resume_take_the_lock_of_the_runs_inventory_and_playbook() {
    let d = Dir::new(ONE, "");
    d.write("pb.yaml", &holding_playbook(&d));
    // An earlier run stopped by its deadline: it can be resumed and rolled back.
    let stopped = d.spawn_run(&["--deadline", "1s"]);
    d.wait_for("started");
    std::thread::sleep(Duration::from_millis(1200));
    d.write("release", "");
    let stopped = stopped.wait_with_output().unwrap();
    assert_eq!(code(&stopped), 124, "{}", text(&stopped));
    let earlier = d.run_ids().pop().unwrap();
    std::fs::remove_file(d.p("release")).unwrap();
    std::fs::remove_file(d.p("started")).unwrap();

    let mut holder = d.spawn_run(&[]);
    d.wait_for("started");
    let rollback = d.rdeploy(&["rollback", &earlier]);
    assert_eq!(code(&rollback), 75, "{}", text(&rollback));
    let resume = d.rdeploy(&["resume", &earlier]);
    assert_eq!(code(&resume), 75, "{}", text(&resume));
    d.write("release", "");
    assert_eq!(holder.wait().unwrap().code(), Some(0));
    let resume = d.rdeploy(&["resume", &earlier]);
    assert_eq!(code(&resume), 0, "{}", text(&resume));
    // The holder's run rewrote `started` since: undoing the earlier run over it is said out loud.
    let rollback = d.rdeploy(&["rollback", &earlier, "--no-lock", "--force"]);
    assert_eq!(code(&rollback), 0, "{}", text(&rollback));
}

// ---------------------------------------------------------------- the deadline

#[test]
fn the_deadline_stops_the_run_at_the_next_step_boundary_and_exits_124() {
    let d = Dir::new(ONE, "");
    let dir = d.path().display().to_string();
    d.write(
        "pb.yaml",
        &format!(
            "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: '{dir}/one', content: '1' }}\n    - shell: 'sleep 1.5; echo done > {dir}/slow'\n    - copy: {{ dest: '{dir}/two', content: '2' }}\n"
        ),
    );
    let out = d.run(&["--deadline", "1s", "--report", "report.json"]);
    assert_eq!(code(&out), 124, "{}", text(&out));
    assert!(d.p("slow").exists(), "the step in flight finished");
    assert!(!d.p("two").exists(), "no step started after the deadline");
    assert!(
        stdout(&out).contains("the deadline (1s) passed"),
        "{}",
        text(&out)
    );
    let id = d.run_ids().pop().unwrap();
    let journal = d.journal_of(&id);
    assert!(journal.contains("\"outcome\":\"deadline\""), "{journal}");
    assert!(journal.contains("\"exit_code\":124"), "{journal}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(d.p("report.json")).unwrap()).unwrap();
    assert_eq!(report["outcome"], "deadline");
    assert_eq!(report["exit_code"], 124);
}

#[test]
fn a_step_that_outlives_the_deadline_is_abandoned_and_nothing_hangs() {
    let d = Dir::new(
        ONE,
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - shell: 'echo $$ > pid; sleep 120'\n",
    );
    let t = Instant::now();
    let out = d.run(&["--deadline", "1s", "--report", "report.json"]);
    assert_eq!(code(&out), 124, "{}", text(&out));
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(stderr(&out).contains("abandoned"), "{}", text(&out));
    // The abandoned step is killed, not left running (issue 13, item 5), and recorded.
    let pid = std::fs::read_to_string(d.p("pid")).unwrap();
    assert!(
        !alive(&pid),
        "the abandoned step's process {pid} still runs"
    );
    let id = d.run_ids().pop().unwrap();
    assert!(d.journal_of(&id).contains("\"outcome\":\"deadline\""));
    assert!(d.journal_of(&id).contains("\"status\":\"interrupted\""));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(d.p("report.json")).unwrap()).unwrap();
    assert_eq!(report["exit_code"], 124);
}

// ---------------------------------------------------------------- output for cron

const MIXED: &str = r#"
- hosts: local
  gather_facts: no
  tasks:
    - name: the ok task
      debug: { msg: "chatty" }
    - name: write a file
      copy: { dest: "{{ playbook_dir }}/{{ inventory_hostname }}.txt", content: "x" }
    - name: the failing task
      fail: { msg: "token=s3cr3t" }
      no_log: true
      when: inventory_hostname == 'h1'
    - name: the last task
      debug: { msg: "after" }
"#;

#[test]
fn quiet_shows_only_failures_and_the_recap() {
    let d = Dir::new(TWO, MIXED);
    let out = d.run(&["-q"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let s = stdout(&out);
    assert!(s.contains("TASK [the failing task]"), "{s}");
    assert!(s.contains("fatal: [h1]: FAILED!"), "{s}");
    assert!(s.contains("PLAY RECAP"), "{s}");
    for hidden in [
        "chatty",
        "the ok task",
        "ok: [",
        "changed: [",
        "PLAY [",
        "skipping",
    ] {
        assert!(!s.contains(hidden), "{hidden:?} in quiet output:\n{s}");
    }
    assert!(!s.contains("s3cr3t"), "{s}");

    // A clean quiet run prints the recap and nothing else.
    let d = Dir::new(
        ONE,
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: { msg: chatty }\n",
    );
    let out = d.run(&["--quiet"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let s = stdout(&out);
    assert!(s.trim_start().starts_with("PLAY RECAP"), "{s}");
    assert_eq!(s.lines().filter(|l| !l.trim().is_empty()).count(), 2, "{s}");
}

#[test]
fn report_and_log_file_are_written_whatever_the_output_mode() {
    let d = Dir::new(TWO, MIXED);
    let out = d.run(&["-q", "--report", "last.json", "--log-file", "runs.jsonl"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let report_text = std::fs::read_to_string(d.p("last.json")).unwrap();
    assert!(!report_text.contains("s3cr3t"), "{report_text}");
    let r: Value = serde_json::from_str(&report_text).unwrap();
    let id = d.run_ids().pop().unwrap();
    assert_eq!(r["run_id"], id.as_str());
    assert_eq!(r["outcome"], "failed");
    assert_eq!(r["exit_code"], 2);
    assert_eq!(r["check"], false);
    assert!(r["timing"]["total_s"].as_f64().is_some(), "{r:#}");
    assert!(r["started"].as_str().unwrap().ends_with('Z'));
    let h1 = &r["hosts"]["h1"];
    assert_eq!(h1["state"], "failed", "{r:#}");
    assert_eq!(h1["last_task"], "write a file");
    assert_eq!(h1["batch"], 1);
    assert_eq!(h1["changed"], 1);
    let err = h1["error"].as_str().unwrap();
    assert!(
        err.contains("the failing task") && err.contains("no_log"),
        "{err}"
    );
    let h2 = &r["hosts"]["h2"];
    assert_eq!(h2["state"], "changed", "{r:#}");
    assert_eq!(h2["last_task"], "the last task");
    assert_eq!(h2["error"], Value::Null);

    // The log has every event (quiet or not), each with the run id, and is appended to.
    let log = std::fs::read_to_string(d.p("runs.jsonl")).unwrap();
    assert!(!log.contains("s3cr3t"));
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events
            .iter()
            .all(|e| e["run_id"] == id.as_str() && e["t"].is_u64())
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "task" && e["name"] == "the ok task")
    );
    assert!(events.iter().any(|e| e["event"] == "recap"));
    let first_len = events.len();
    let out = d.run(&[
        "--output",
        "json",
        "--log-file",
        "runs.jsonl",
        "--report",
        "last.json",
        "--check",
    ]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let log = std::fs::read_to_string(d.p("runs.jsonl")).unwrap();
    assert!(log.lines().count() > first_len, "appended");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(d.p("last.json")).unwrap()).unwrap();
    assert_eq!(r["check"], true);
    assert_eq!(r["run_id"], Value::Null, "check mode records no run");
}

#[test]
fn report_shows_hosts_that_never_started_as_not_started_not_ok() {
    // serial: 1 and h1 fails: the run stops before h2's and h3's batches.
    let three = format!("{TWO}    h3:\n      ansible_connection: local\n");
    let d = Dir::new(
        &three,
        "- hosts: all\n  gather_facts: no\n  serial: 1\n  tasks:\n    - command: \"false\"\n      when: inventory_hostname == 'h1'\n    - debug: { msg: hi }\n",
    );
    let out = d.run(&["--report", "last.json"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(d.p("last.json")).unwrap()).unwrap();
    assert_eq!(r["hosts"]["h1"]["state"], "failed", "{r:#}");
    for h in ["h2", "h3"] {
        let host = &r["hosts"][h];
        assert_eq!(host["state"], "not_started", "{r:#}");
        assert_eq!(host["batch"], Value::Null, "{r:#}");
        assert_eq!(host["last_task"], Value::Null, "{r:#}");
    }

    // A host whose batch ran and changed nothing is still `ok`.
    let d = Dir::new(
        TWO,
        "- hosts: all\n  gather_facts: no\n  serial: 1\n  tasks:\n    - debug: { msg: hi }\n",
    );
    let out = d.run(&["--report", "last.json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(d.p("last.json")).unwrap()).unwrap();
    assert_eq!(r["hosts"]["h1"]["state"], "ok", "{r:#}");
    assert_eq!(r["hosts"]["h2"]["state"], "ok", "{r:#}");
}

#[test]
fn check_with_detailed_exitcode_exits_10_when_changes_are_pending() {
    let d = Dir::new(
        ONE,
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: { dest: '{{ playbook_dir }}/f', content: 'x' }\n",
    );
    let pending = d.run(&["--check", "--detailed-exitcode"]);
    assert_eq!(code(&pending), 10, "{}", text(&pending));
    assert!(!d.p("f").exists());
    assert_eq!(code(&d.run(&["--check"])), 0, "without the flag: 0");
    assert_eq!(code(&d.run(&[])), 0);
    let none = d.run(&["--check", "--detailed-exitcode"]);
    assert_eq!(code(&none), 0, "{}", text(&none));
    let without_check = d.run(&["--detailed-exitcode"]);
    assert_eq!(code(&without_check), 4, "{}", text(&without_check));
}

/// Several inventory hosts on the local connection change files at once: each keeps its own
/// backups (they all number their steps from 1), and `rdeploy rollback` restores every one,
/// also without the run's journal (as from another controller's copy of the state).
#[test]
fn several_local_hosts_keep_their_own_backups_and_all_roll_back() {
    let inv = "local:\n  hosts:\n    h1:\n      ansible_connection: local\n    h2:\n      ansible_connection: local\n    h3:\n      ansible_connection: local\n";
    let d = Dir::new(
        inv,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: { dest: '{{ playbook_dir }}/f-{{ inventory_hostname }}', content: 'v2' }\n    - copy: { dest: '{{ playbook_dir }}/g-{{ inventory_hostname }}', content: 'v2' }\n",
    );
    // Each host's file says whose it is: a backup mixed up with another host's shows.
    for h in ["h1", "h2", "h3"] {
        d.write(&format!("f-{h}"), &format!("v1 of {h}"));
    }
    let out = d.run(&["--output", "json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    for h in ["h1", "h2", "h3"] {
        assert_eq!(
            std::fs::read_to_string(d.p(&format!("f-{h}"))).unwrap(),
            "v2"
        );
    }
    let id = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "run_end")
        .and_then(|e| e["run_id"].as_str().map(String::from))
        .expect("run id");
    // Without the journal: every host of the inventory is asked for its manifest.
    std::fs::remove_dir_all(d.p("state/runs")).expect("remove the journals");
    let rb = d.rdeploy(&["rollback", &id, "-i", "inv.yaml"]);
    assert_eq!(code(&rb), 0, "{}", text(&rb));
    for h in ["h1", "h2", "h3"] {
        assert_eq!(
            std::fs::read_to_string(d.p(&format!("f-{h}"))).unwrap(),
            format!("v1 of {h}"),
            "{}",
            text(&rb)
        );
        assert!(!d.p(&format!("g-{h}")).exists(), "{}", text(&rb));
    }
}

/// `rdeploy plan --out` pins the plan to its inputs; `rdeploy run --plan` runs it while it
/// holds and refuses, naming what drifted, once it does not.
#[test]
fn a_pinned_plan_runs_while_it_holds_and_is_refused_once_an_input_changed() {
    // The playbook in a folder of its own (its inputs), writing outside it.
    let d = Dir::new(TWO, "");
    std::fs::create_dir(d.p("site")).unwrap();
    d.write(
        "site/pb.yaml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: { dest: '{{ playbook_dir }}/../out-{{ inventory_hostname }}', content: \"{{ v | default('1') }}\" }\n",
    );
    let run = |args: &[&str]| {
        let mut all = vec!["run", "site/pb.yaml", "-i", "inv.yaml"];
        all.extend_from_slice(args);
        d.rdeploy(&all)
    };
    for file in ["pin.json", "pin.md"] {
        let plan = d.rdeploy(&["plan", "site/pb.yaml", "-i", "inv.yaml", "--out", file]);
        assert_eq!(code(&plan), 0, "{}", text(&plan));
    }
    let md = std::fs::read_to_string(d.p("pin.md")).unwrap();
    assert!(md.starts_with("# rdeploy plan: site/pb.yaml\n"), "{md}");
    assert!(
        md.contains("| `inv.yaml` |") && md.contains("```json\n"),
        "{md}"
    );
    // The Markdown form pins a run as well as the JSON one.
    let ok = run(&["--plan", "pin.md"]);
    assert_eq!(code(&ok), 0, "{}", text(&ok));
    assert_eq!(std::fs::read_to_string(d.p("out-h1")).unwrap(), "1");

    // Other extra variables, another --limit: refused, nothing runs.
    let vars = run(&["--plan", "pin.json", "-e", "v=2"]);
    assert_eq!(code(&vars), 4, "{}", text(&vars));
    assert!(
        stderr(&vars).contains("the extra variables (-e) differ"),
        "{}",
        text(&vars)
    );
    let limited = run(&["--plan", "pin.json", "--limit", "h1"]);
    assert_eq!(code(&limited), 4, "{}", text(&limited));
    assert!(
        stderr(&limited).contains("--limit is h1 (the plan's: none)"),
        "{}",
        text(&limited)
    );

    // The playbook changed after the review: refused, naming the file.
    d.write(
        "site/pb.yaml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: { dest: '{{ playbook_dir }}/../out-{{ inventory_hostname }}', content: 'other' }\n",
    );
    let stale = run(&["--plan", "pin.json"]);
    assert_eq!(code(&stale), 4, "{}", text(&stale));
    assert!(
        stderr(&stale)
            .contains("the plan pin.json no longer holds, nothing was run: changed: site/pb.yaml"),
        "{}",
        text(&stale)
    );
    assert_eq!(std::fs::read_to_string(d.p("out-h1")).unwrap(), "1");
}

/// `rdeploy plan --check --out` also pins what check mode finds on each host; a host changed by
/// hand after the review refuses `run --plan`, naming that host only, and the run goes once it
/// is as planned again. Making the plan changes nothing.
#[test]
fn a_plan_made_with_check_mode_pins_each_hosts_observed_state() {
    // The playbook in a folder of its own (its inputs), writing outside it.
    let d = Dir::new(TWO, "");
    std::fs::create_dir(d.p("site")).unwrap();
    d.write(
        "site/pb.yaml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - name: release file\n      copy: { dest: '{{ playbook_dir }}/../out-{{ inventory_hostname }}', content: '1' }\n",
    );
    let plan = d.rdeploy(&[
        "plan",
        "site/pb.yaml",
        "-i",
        "inv.yaml",
        "--check",
        "--out",
        "pin.md",
    ]);
    assert_eq!(code(&plan), 0, "{}", text(&plan));
    for h in ["h1", "h2"] {
        assert!(
            stdout(&plan).contains(&format!("  {h}: would change: release file\n")),
            "{}",
            text(&plan)
        );
        assert!(
            !d.p(&format!("out-{h}")).exists(),
            "plan --check wrote out-{h}"
        );
    }
    let md = std::fs::read_to_string(d.p("pin.md")).unwrap();
    assert!(
        md.contains("## What check mode found on each host")
            && md.contains("| `h1` | release file |"),
        "{md}"
    );
    // Someone writes h2's file by hand after the review: the plan no longer holds for h2.
    d.write("out-h2", "by hand");
    let drifted = d.rdeploy(&["run", "site/pb.yaml", "-i", "inv.yaml", "--plan", "pin.md"]);
    assert_eq!(code(&drifted), 4, "{}", text(&drifted));
    let err = stderr(&drifted);
    assert!(
        err.contains("host h2 is not as planned: check mode now finds release file to change")
            && !err.contains("host h1"),
        "{}",
        text(&drifted)
    );
    assert!(!d.p("out-h1").exists(), "nothing ran");
    std::fs::remove_file(d.p("out-h2")).unwrap();
    let ok = d.rdeploy(&["run", "site/pb.yaml", "-i", "inv.yaml", "--plan", "pin.md"]);
    assert_eq!(code(&ok), 0, "{}", text(&ok));
    assert_eq!(std::fs::read_to_string(d.p("out-h2")).unwrap(), "1");
}

/// Blue-green between two folders: the `current` link is switched by a task tagged `switch`;
/// `rdeploy switch-back` points it at the old colour again and leaves the new colour's folder,
/// which `rdeploy rollback` then removes.
#[test]
fn switch_back_restores_a_switch_tagged_link_and_keeps_the_new_colour() {
    let d = Dir::new(
        "local:\n  hosts:\n    h1:\n      ansible_connection: local\n",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - file: { path: '{{ playbook_dir }}/{{ colour }}', state: directory }\n    - copy: { dest: '{{ playbook_dir }}/{{ colour }}/VERSION', content: '{{ v }}' }\n    - name: switch the current colour\n      file: { src: '{{ playbook_dir }}/{{ colour }}', dest: '{{ playbook_dir }}/current', state: link }\n      tags: [switch]\n",
    );
    let run = |colour: &str, v: &str| {
        let (c, v) = (format!("colour={colour}"), format!("v={v}"));
        let out = d.run(&["--output", "json", "-e", &c, "-e", &v]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        stdout(&out)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["event"] == "run_end")
            .and_then(|e| e["run_id"].as_str().map(String::from))
            .expect("run id")
    };
    let version = || std::fs::read_to_string(d.p("current/VERSION")).unwrap_or_default();
    run("blue", "1");
    let second = run("green", "2");
    assert_eq!(version(), "2");
    let back = d.rdeploy(&["switch-back", &second]);
    assert_eq!(code(&back), 0, "{}", text(&back));
    assert!(
        stdout(&back).contains("SWITCH BACK [h1]"),
        "{}",
        text(&back)
    );
    assert_eq!(version(), "1", "current points at blue again");
    assert_eq!(
        std::fs::read_to_string(d.p("green/VERSION")).unwrap(),
        "2",
        "the new colour stays"
    );
    let rb = d.rdeploy(&["rollback", &second]);
    assert_eq!(code(&rb), 0, "{}", text(&rb));
    assert!(
        !d.p("green").exists(),
        "rollback removes what the run created"
    );
    assert_eq!(version(), "1");
}

/// A canary step's `pause` without health probes is a plain wait between the steps (and
/// `rdeploy plan` says so), never skipped.
#[test]
fn a_pause_without_probes_waits_between_canary_steps() {
    let d = Dir::new(
        TWO,
        "- hosts: all\n  gather_facts: no\n  canary:\n    - step: 1\n      pause: 2s\n    - 100%\n  tasks:\n    - debug: { msg: hi }\n",
    );
    let plan = d.rdeploy(&["plan", "pb.yaml", "-i", "inv.yaml"]);
    assert!(
        stdout(&plan).contains("      then pause 2s (no health probes to watch)\n"),
        "{}",
        text(&plan)
    );
    let started = std::time::Instant::now();
    let out = d.run(&[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the pause was skipped"
    );
}

// ---------------------------------------------------------------- webhooks

/// An HTTP server on 127.0.0.1 that answers 200 to every request and records the bodies.
fn recording_server() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            if let Ok(v) = serde_json::from_slice(&body) {
                seen.lock().unwrap().push(v);
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, bodies)
}

#[test]
fn notify_posts_the_summary_on_run_end_and_rollback_start() {
    let (port, bodies) = recording_server();
    let url = format!("http://127.0.0.1:{port}/hook/s3cr3t");
    let d = Dir::new(ONE, "");
    let dir = d.path().display().to_string();
    d.write("f", "v1");
    d.write(
        "pb.yaml",
        &format!(
            "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: '{dir}/f', content: 'v2' }}\n  health:\n    - command: \"grep -q v1 {dir}/f\"\n  probe: {{ retries: 0, timeout: 2s }}\n"
        ),
    );
    let out = d.run(&["--notify", &url, "-q"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let got = bodies.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(got[0]["event"], "run_start");
    assert_eq!(got[0]["playbook"], "pb.yaml");
    let got = &got[1..];
    assert_eq!(got[0]["event"], "rollback_start");
    assert_eq!(got[0]["hosts"], serde_json::json!(["localhost"]));
    assert_eq!(got[1]["event"], "run_end");
    assert_eq!(got[1]["outcome"], "rolled_back");
    assert_eq!(got[1]["exit_code"], 3);
    assert_eq!(
        got[1]["hosts"]["localhost"]["state"], "rolled_back",
        "{got:#?}"
    );
    assert_eq!(got[0]["run_id"], got[1]["run_id"]);
}

/// `RDEPLOY_NOTIFY` (space-separated URLs) stands in for `--notify` on every run, e.g. from
/// the crontab's environment.
#[test]
fn notify_urls_can_come_from_the_environment() {
    let (port, bodies) = recording_server();
    let d = Dir::new(
        ONE,
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: { msg: hi }\n",
    );
    let urls = format!("http://127.0.0.1:{port}/a http://127.0.0.1:{port}/b");
    let out = d
        .cmd(&["run", "pb.yaml", "-i", "inv.yaml"])
        .env("RDEPLOY_NOTIFY", &urls)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let got = bodies.lock().unwrap().clone();
    // Each URL gets the run's start and its end.
    assert_eq!(got.len(), 4, "two POSTs per URL: {got:#?}");
    for event in ["run_start", "run_end"] {
        let n = got.iter().filter(|b| b["event"] == event).count();
        assert_eq!(n, 2, "{event}: {got:#?}");
    }
}

/// `slack+URL` and `teams+URL` get the same news as a chat message.
#[test]
fn chat_webhooks_get_a_slack_message_and_a_teams_card() {
    let (port, bodies) = recording_server();
    let d = Dir::new(
        ONE,
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: { msg: hi }\n",
    );
    let slack = format!("slack+http://127.0.0.1:{port}/services/T/B/s3cr3t");
    let teams = format!("teams+http://127.0.0.1:{port}/workflows/s3cr3t");
    let out = d.run(&["--notify", &slack, "--notify", &teams, "--label", "app 2.0"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let got = bodies.lock().unwrap().clone();
    assert_eq!(got.len(), 4, "start and end to each: {got:#?}");
    let texts: Vec<String> = got
        .iter()
        .filter_map(|b| {
            b["text"]
                .as_str()
                .or(b["attachments"][0]["content"]["body"][0]["text"].as_str())
                .map(String::from)
        })
        .collect();
    assert_eq!(texts.len(), 4, "{got:#?}");
    let ends: Vec<&String> = texts.iter().filter(|t| t.contains(" ended ")).collect();
    assert_eq!(ends.len(), 2, "{texts:#?}");
    for t in ends {
        assert!(
            t.starts_with("rdeploy: pb.yaml (app 2.0) on inv.yaml ended success (exit 0) by "),
            "{t}"
        );
    }
    let cards = got.iter().filter(|b| b["type"] == "message").count();
    assert_eq!(cards, 2, "{got:#?}");
}

#[test]
fn an_unreachable_webhook_is_a_warning_and_does_not_change_the_exit_code() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hook/s3cr3t");
    let d = Dir::new(
        ONE,
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - debug: { msg: hi }\n",
    );
    let out = d.run(&["--notify", &url]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let s = stdout(&out);
    assert!(
        s.contains(&format!("[WARNING]: webhook http://127.0.0.1:{port}/…")),
        "{s}"
    );
    assert!(!s.contains("s3cr3t"), "the URL's path is not shown: {s}");
    let bad = d.run(&["--notify", "ftp://example.com/"]);
    assert_eq!(code(&bad), 4, "{}", text(&bad));
}

// ---------------------------------------------------------------- history

#[test]
fn history_since_and_stats() {
    let d = Dir::new(
        ONE,
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - fail: { msg: no }\n      when: broken | default(false) | bool\n",
    );
    // Journals count in seconds: a second apart, the order of the runs is certain.
    let pause = || std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(code(&d.run(&[])), 0);
    pause();
    assert_eq!(code(&d.run(&["-e", "broken=true"])), 2);
    pause();
    // The last run deploys a change made an hour before it (the extra variable stands in for
    // --change-time, as a CI pipeline passes it).
    let an_hour_ago = chrono::Utc::now().timestamp() - 3600;
    assert_eq!(
        code(&d.run(&["-e", &format!("release_time={an_hour_ago}")])),
        0
    );
    let bad_time = d.run(&["--change-time", "last tuesday"]);
    assert_eq!(code(&bad_time), 4, "{}", text(&bad_time));
    let out = d.rdeploy(&["history", "--stats", "--output", "json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pb = &v["playbooks"][0];
    assert_eq!(pb["playbook"], "pb.yaml", "{v:#}");
    assert_eq!(pb["runs"], 3);
    assert_eq!(pb["failed"], 1);
    assert_eq!(pb["judged"], 3);
    let cfr = pb["change_failure_rate"].as_f64().unwrap();
    assert!((cfr - 1.0 / 3.0).abs() < 1e-9, "{cfr}");
    assert_eq!(pb["restores"], 1);
    assert!(pb["mean_time_to_restore_s"].as_f64().unwrap() >= 0.0);
    assert!(pb["median_duration_s"].as_f64().is_some());
    assert!(pb["runs_per_day"].as_f64().unwrap() >= 3.0 - 1e-9);
    assert_eq!(pb["environment"], "inv.yaml", "{v:#}");
    assert_eq!(pb["lead_times"], 1, "{v:#}");
    let lead = pb["median_lead_time_s"].as_f64().unwrap();
    assert!((3600.0..3700.0).contains(&lead), "{lead}");
    let human = stdout(&d.rdeploy(&["history", "--stats"]));
    assert!(
        human.contains("change failure rate") && human.contains("33% (1/3)"),
        "{human}"
    );

    let all = stdout(&d.rdeploy(&["history", "--since", "1h"]));
    assert_eq!(all.lines().count(), 3, "{all}");
    let none = stdout(&d.rdeploy(&["history", "--since", "2999-01-01", "--output", "json"]));
    assert_eq!(none, "");
    let bad = d.rdeploy(&["history", "--since", "last tuesday"]);
    assert_eq!(code(&bad), 4, "{}", text(&bad));
}

// ---------------------------------------------------------------- exit codes

#[test]
fn exit_codes_of_the_readme_table_on_the_local_connection() {
    // 7: no hosts matched, for `run` as for `plan`.
    let d = Dir::new(
        "all:\n  children:\n    web:\n      hosts: {}\n  hosts:\n    localhost:\n      ansible_connection: local\n",
        "- hosts: web\n  gather_facts: no\n  tasks:\n    - debug: { msg: hi }\n",
    );
    let out = d.run(&[]);
    assert_eq!(code(&out), 7, "{}", text(&out));
    assert!(stderr(&out).contains("no hosts matched"));

    // 3: the health gate failed and the batch was rolled back cleanly; 5: the rollback's
    // own tasks failed.
    let d = Dir::new(ONE, "");
    let dir = d.path().display().to_string();
    d.write(
        "pb.yaml",
        &format!(
            "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: '{dir}/f', content: 'v2' }}\n  health:\n    - command: \"grep -q v1 {dir}/f\"\n  probe: {{ retries: 0, timeout: 2s }}\n  rollback:\n    - command: \"{{{{ rb | default('true') }}}}\"\n"
        ),
    );
    d.write("f", "v1");
    let out = d.run(&[]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert_eq!(std::fs::read_to_string(d.p("f")).unwrap(), "v1");
    let out = d.run(&["-e", "rb=false"]);
    assert_eq!(code(&out), 5, "{}", text(&out));

    // 4: invalid options.
    for bad in [
        &["--deadline", "soon"][..],
        &["--lock-wait", "x"],
        &["--report", "/nonexistent/r.json"],
    ] {
        let out = d.run(bad);
        assert_eq!(code(&out), 4, "{bad:?}: {}", text(&out));
    }
}

// ---------------------------------------------------------------- signals

fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

/// True while process `pid` exists (a zombie counts as gone).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

const SLEEPER: &str = "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - shell: 'echo $$ > pid; sleep 40; touch slept'\n    - copy: { dest: '{{ playbook_dir }}/after', content: 'x' }\n";

/// Issue 13 item 5: SIGTERM used to wait for the steps in flight however long they took (38 s
/// for a 40 s step). With `--stop-grace 2s` the step gets 2 s, is then killed and recorded as
/// interrupted mid-step, and rdeploy exits 143 within the grace + 5 s.
#[test]
fn sigterm_kills_a_step_that_outlives_the_stop_grace_and_exits_143() {
    let d = Dir::new(ONE, SLEEPER);
    let child = d.spawn_run(&["--stop-grace", "2s", "--report", "report.json"]);
    d.wait_for("pid");
    let t = Instant::now();
    signal(&child, rustix::process::Signal::TERM);
    let out = child.wait_with_output().unwrap();
    let took = t.elapsed();
    assert_eq!(code(&out), 143, "{}", text(&out));
    assert!(
        took >= Duration::from_secs(2),
        "the grace was given: {took:?}"
    );
    assert!(took < Duration::from_secs(7), "grace + 5 s: {took:?}");
    let pid = std::fs::read_to_string(d.p("pid")).unwrap();
    assert!(!alive(&pid), "the step's process {pid} was killed");
    assert!(!d.p("slept").exists() && !d.p("after").exists());
    assert!(text(&out).contains("--stop-grace"), "{}", text(&out));
    let id = d.run_ids().pop().unwrap();
    let journal = d.journal_of(&id);
    assert!(journal.contains("\"status\":\"interrupted\""), "{journal}");
    assert!(journal.contains("\"outcome\":\"interrupted\""), "{journal}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(d.p("report.json")).unwrap()).unwrap();
    assert_eq!(report["outcome"], "interrupted", "{report}");
    assert_eq!(report["exit_code"], 143, "{report}");
}

/// SIGTERM during an analysis stops the measuring at once (exit 143); the batch is not
/// recorded as finished, so `rdeploy resume` deploys and analyses it again.
#[test]
fn sigterm_during_an_analysis_stops_it_and_resume_analyses_the_batch_again() {
    let d = Dir::new(
        ONE,
        "- hosts: localhost\n  gather_facts: no\n  analysis:\n    interval: 1s\n    duration: 60s\n    metrics:\n      - name: marker\n        command: \"touch '{{ playbook_dir }}/measured'; echo 0\"\n        success_condition: result == 0\n  tasks:\n    - copy: { dest: '{{ playbook_dir }}/f', content: 'x' }\n",
    );
    let child = d.spawn_run(&["--output", "json"]);
    d.wait_for("measured");
    let t = Instant::now();
    signal(&child, rustix::process::Signal::TERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 143, "{}", text(&out));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let id = d.run_ids().pop().unwrap();
    let journal = d.journal_of(&id);
    assert!(!journal.contains("\"batch_end\""), "{journal}");
    std::fs::remove_file(d.p("measured")).unwrap();
    let again = d.spawn_run(&["--resume", &id, "--output", "json"]);
    d.wait_for("measured");
    signal(&again, rustix::process::Signal::TERM);
    let out = again.wait_with_output().unwrap();
    assert_eq!(
        code(&out),
        143,
        "the batch was analysed again: {}",
        text(&out)
    );
}

/// A step that ends within the grace is waited for, as before: SIGTERM does not cut it short.
#[test]
fn sigterm_lets_a_step_end_within_the_stop_grace() {
    let d = Dir::new(
        ONE,
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - shell: 'touch started; sleep 1; touch slept'\n    - copy: { dest: '{{ playbook_dir }}/after', content: 'x' }\n",
    );
    let child = d.spawn_run(&["--stop-grace", "10s"]);
    d.wait_for("started");
    signal(&child, rustix::process::Signal::TERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 143, "{}", text(&out));
    assert!(d.p("slept").exists(), "the step finished");
    assert!(!d.p("after").exists(), "no step started after the signal");
    assert!(
        !d.journal_of(&d.run_ids().pop().unwrap())
            .contains("\"status\":\"interrupted\"")
    );
}

/// Issue 13 item 6: a second Ctrl-C ended the process without writing `--report` or the
/// journal's `run_end`, so `history` said "unfinished". Both are written, marked forced.
#[test]
fn a_second_sigint_still_writes_the_report_and_the_run_end() {
    let d = Dir::new(ONE, SLEEPER);
    let child = d.spawn_run(&["--report", "report.json"]);
    d.wait_for("pid");
    signal(&child, rustix::process::Signal::INT);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    signal(&child, rustix::process::Signal::INT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 130, "{}", text(&out));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(d.p("report.json")).unwrap()).unwrap();
    assert_eq!(report["outcome"], "interrupted", "{report}");
    assert_eq!(report["exit_code"], 130, "{report}");
    assert_eq!(report["forced"], true, "{report}");
    let id = d.run_ids().pop().unwrap();
    let journal = d.journal_of(&id);
    let end = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["event"] == "run_end")
        .unwrap_or_else(|| panic!("no run_end: {journal}"));
    assert_eq!(end["outcome"], "interrupted", "{end}");
    assert_eq!(end["forced"], true, "{end}");
    let history = d.rdeploy(&["history"]);
    let h = stdout(&history);
    assert!(
        h.contains("interrupted") && !h.contains("unfinished"),
        "{h}"
    );
    // The step's process is not waited for, but it does not outlive the run's host either:
    // a forced exit leaves it to finish; kill it so the test leaves nothing behind.
    let pid = std::fs::read_to_string(d.p("pid")).unwrap();
    if alive(&pid) {
        let pid = rustix::process::Pid::from_raw(pid.trim().parse().unwrap()).unwrap();
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

#[test]
fn a_bad_stop_grace_is_invalid_input() {
    let d = Dir::new(ONE, SLEEPER);
    let out = d.run(&["--stop-grace", "soon"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(text(&out).contains("--stop-grace 'soon'"), "{}", text(&out));
}

// ---------------------------------------------------------------- damaged journals, typed restores

/// A playbook that changes `app.conf` (there before the run, `old`) and creates `new.conf`.
fn two_files_playbook(d: &Dir) -> String {
    let dir = d.path().display();
    format!(
        "- hosts: localhost\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: '{dir}/app.conf', content: 'new' }}\n    - copy: {{ dest: '{dir}/new.conf', content: 'made' }}\n"
    )
}

/// A finished run of [`two_files_playbook`]: its id.
fn changed_both_files(d: &Dir) -> String {
    d.write("app.conf", "old");
    let _ = std::fs::remove_file(d.p("new.conf"));
    d.write("pb.yaml", &two_files_playbook(d));
    let run = d.run(&[]);
    assert_eq!(code(&run), 0, "{}", text(&run));
    assert_eq!(std::fs::read_to_string(d.p("app.conf")).unwrap(), "new");
    d.run_ids().pop().unwrap()
}

#[test]
fn rollback_of_a_run_whose_journal_is_empty_or_lost_its_start_restores_from_the_hosts_manifests() {
    let d = Dir::new(ONE, "");
    for damage in ["empty", "no start record"] {
        let id = changed_both_files(&d);
        let journal = d.p(&format!("state/runs/{id}/journal.jsonl"));
        let kept = match damage {
            "empty" => String::new(),
            _ => d
                .journal_of(&id)
                .lines()
                .skip(1)
                .map(|l| format!("{l}\n"))
                .collect(),
        };
        std::fs::write(&journal, kept).unwrap();

        let show = d.rdeploy(&["show", &id]);
        assert!(
            stderr(&show).contains(&format!(
                "has no start record (it is empty or damaged); `rdeploy rollback {id} -i INVENTORY`"
            )),
            "{damage}: {}",
            text(&show)
        );
        // The journal names no inventory: the user is told to give one, nothing is touched.
        let without = d.rdeploy(&["rollback", &id]);
        assert_eq!(code(&without), 4, "{damage}: {}", text(&without));
        assert!(
            stderr(&without).contains(
                "has no start record (it is empty or damaged): give the inventory with -i"
            ),
            "{damage}: {}",
            text(&without)
        );
        assert_eq!(std::fs::read_to_string(d.p("app.conf")).unwrap(), "new");

        let back = d.rdeploy(&["rollback", &id, "-i", "inv.yaml"]);
        assert_eq!(code(&back), 0, "{damage}: {}", text(&back));
        assert!(
            stdout(&back).contains("restored: [localhost] => 2 of 2 backups restored"),
            "{damage}: {}",
            text(&back)
        );
        assert_eq!(std::fs::read_to_string(d.p("app.conf")).unwrap(), "old");
        assert!(
            !d.p("new.conf").exists(),
            "{damage}: the created file is removed"
        );
    }
}

#[test]
fn damaged_journal_lines_are_named_by_number_in_show_resume_and_rollback() {
    let d = Dir::new(ONE, "");
    let id = changed_both_files(&d);
    let journal = d.p(&format!("state/runs/{id}/journal.jsonl"));
    let mut lines: Vec<String> = d.journal_of(&id).lines().map(str::to_string).collect();
    // Line 5 torn in the middle of the file, line 7 no record at all.
    lines[4].truncate(20);
    lines[6] = "garbage".into();
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();

    let show = d.rdeploy(&["show", &id]);
    assert_eq!(code(&show), 0, "{}", text(&show));
    let err = stderr(&show);
    for n in [5, 7] {
        assert_eq!(
            err.matches(&format!("journal line {n} ignored: ")).count(),
            1,
            "{}",
            text(&show)
        );
    }
    assert!(err.contains("journal line 5 ignored: cut short"), "{err}");
    assert!(err.contains("journal line 7 ignored: not JSON"), "{err}");
    assert!(
        stdout(&show).contains(&format!("run {id} (pb.yaml): success")),
        "the lines around them are read: {}",
        text(&show)
    );

    // resume reads the journal twice (its arguments, then the run's batches): said once.
    let resume = d.rdeploy(&["resume", &id]);
    assert_eq!(code(&resume), 4, "a finished run: {}", text(&resume));
    assert_eq!(
        stderr(&resume).matches("journal line 5 ignored: ").count(),
        1,
        "{}",
        text(&resume)
    );

    // rollback says so and, not trusting a damaged journal for the host list, asks the
    // inventory's hosts too.
    let back = d.rdeploy(&["rollback", &id]);
    assert_eq!(code(&back), 0, "{}", text(&back));
    assert_eq!(stderr(&back).matches("journal line 7 ignored: ").count(), 1);
    assert_eq!(std::fs::read_to_string(d.p("app.conf")).unwrap(), "old");
    assert!(!d.p("new.conf").exists());
}

/// A folder of fake programs first in PATH: `sudo` records that it was called and refuses;
/// `su` records its arguments and runs the real one.
fn fake_become(d: &Dir) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = d.p("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let scripts = [
        (
            "sudo",
            format!(
                "#!/bin/sh\necho \"sudo $1 $2 $3 $4\" >> {}\necho 'sudo: refused by the test' >&2\nexit 1\n",
                d.p("sudo.log").display()
            ),
        ),
        (
            "su",
            format!(
                "#!/bin/sh\necho \"su $1 $2 $3\" >> {}\nexec /usr/bin/su \"$@\"\n",
                d.p("su.log").display()
            ),
        ),
    ];
    for (name, body) in scripts {
        let p = bin.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn a_become_method_su_step_is_rolled_back_through_su_not_sudo() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the test switches to root with su, which root may do without a password"
    );
    let d = Dir::new(ONE, "");
    let path = fake_become(&d);
    let conf = d.p("app.conf").display().to_string();
    d.write("app.conf", "old");
    d.write(
        "pb.yaml",
        &format!(
            "- hosts: localhost\n  gather_facts: no\n  become: yes\n  become_method: su\n  tasks:\n    - copy: {{ dest: '{conf}', content: '{{{{ v }}}}' }}\n    - command: /bin/false\n      when: fail | default(false) | bool\n  health:\n    - command: 'true'\n"
        ),
    );
    let run = d
        .cmd(&["run", "pb.yaml", "-i", "inv.yaml", "-e", "v=new"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(code(&run), 0, "{}", text(&run));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "new");
    let id = d.run_ids().pop().unwrap();
    assert!(
        d.journal_of(&id)
            .contains(r#""become_user":"root","become_method":"su""#),
        "the journal's backup entry keeps the method: {}",
        d.journal_of(&id)
    );
    std::fs::write(d.p("su.log"), "").unwrap();

    let back = d
        .cmd(&["rollback", &id])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(code(&back), 0, "{}", text(&back));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "old");
    let su = std::fs::read_to_string(d.p("su.log")).unwrap();
    assert!(
        su.contains("su -s /bin/sh root"),
        "restored through su: {su:?}"
    );

    // The executor's own rollback of a failed batch too.
    let failed = d
        .cmd(&[
            "run",
            "pb.yaml",
            "-i",
            "inv.yaml",
            "-e",
            "v=newer",
            "-e",
            "fail=true",
        ])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(code(&failed), 3, "rolled back cleanly: {}", text(&failed));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "old");
    assert!(
        !d.p("sudo.log").exists(),
        "sudo was never called: {}",
        std::fs::read_to_string(d.p("sudo.log")).unwrap_or_default()
    );
}

#[test]
fn a_tampered_backup_is_reported_as_a_checksum_mismatch_by_rollback() {
    let d = Dir::new(ONE, "");
    let id = changed_both_files(&d);
    // The backup of app.conf (step 1) is changed on the host after the run.
    let data = d.p(&format!("state/local/backups/{id}/0001/0/data"));
    assert_eq!(std::fs::read_to_string(&data).unwrap(), "old");
    std::fs::write(&data, "evil").unwrap();

    let back = d.rdeploy(&["rollback", &id]);
    assert_eq!(code(&back), 5, "{}", text(&back));
    let out = stdout(&back);
    let conf = d.p("app.conf").display().to_string();
    assert!(
        out.contains("fatal: [localhost]: ROLLBACK INCOMPLETE! 1 of 2 backups restored\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  - checksum mismatch: {conf} (step 1, copy) differs from its backup after the restore"
        )),
        "{out}"
    );
    // For machines: the kind and the path.
    let json = d.rdeploy(&["rollback", &id, "--output", "json"]);
    let events: Vec<Value> = stdout(&json)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let rb = events
        .iter()
        .find(|e| e["event"] == "rollback")
        .unwrap_or_else(|| panic!("{}", text(&json)));
    assert_eq!(
        rb["rollback"]["errors"][0]["kind"], "checksum_mismatch",
        "{rb}"
    );
    assert_eq!(rb["rollback"]["errors"][0]["path"], conf.as_str());
}
