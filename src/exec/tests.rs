//! Unit tests of the executor on scripted hosts ([`crate::transport::scripted`]): a playbook
//! snippet is loaded and checked as `rdeploy run` does, then run against fake hosts that
//! answer from canned replies and keep their files in memory. Each test asserts what a user
//! would check (each task's outcome, the recap, the journal) and what was sent to the host, in
//! order. Nothing here starts a process or opens a socket: each test takes milliseconds.

use std::sync::Arc;

use serde_json::Value as Json;

use crate::backup::journal::{Journal, journal_path};
use crate::cli::args::OutputFormat;
use crate::cli::settings::Settings;
use crate::exec::backups::RunCtx;
use crate::exec::host::Connect;
use crate::exec::{RunOptions, Summary};
use crate::report::run::{Format, Reporter};
use crate::transport::TransportError;
use crate::transport::scripted::{Fleet, Host, Node, Request, exit, ok};

/// The state folder every scripted host is given (`rdeploy_state_dir`): its backups go there.
const STATE_DIR: &str = "/var/lib/rdeploy";

/// The run id of every test run.
const RUN_ID: &str = "20261206T080000Z-000abc";

/// What a run did, as a user sees it.
struct Ran {
    summary: Summary,
    /// Each task's result on each host, in order: `(task, host, status, msg)`.
    results: Vec<(String, String, String, String)>,
    /// The controller journal's records (none in check mode).
    journal: Vec<Json>,
}

impl Ran {
    /// The status of `task` on `host`.
    fn status(&self, task: &str, host: &str) -> &str {
        self.find(task, host)
            .map_or("(no result)", |r| r.2.as_str())
    }

    /// Fails the test unless `task` ended `status` on `host`, showing its message and what
    /// was sent to `h`.
    fn expect(&self, task: &str, host: &str, status: &str, h: &Host) {
        assert_eq!(
            self.status(task, host),
            status,
            "{task} on {host}: {}\nsent:\n{}",
            self.msg(task, host),
            shown(h)
        );
    }

    /// The message of `task` on `host`.
    fn msg(&self, task: &str, host: &str) -> &str {
        self.find(task, host)
            .map_or("(no result)", |r| r.3.as_str())
    }

    fn find(&self, task: &str, host: &str) -> Option<&(String, String, String, String)> {
        self.results.iter().find(|r| r.0 == task && r.1 == host)
    }

    /// The journal's records of kind `event` (`intent`, `backup`, `result`...).
    fn journal_of(&self, event: &str) -> Vec<&Json> {
        self.journal
            .iter()
            .filter(|r| r["event"] == event)
            .collect()
    }
}

/// Runs `playbook` (YAML text: plays targeting `all`, without fact gathering unless they
/// ask) on `hosts`, as `rdeploy run` would (`--check` when `check`), and returns what it did.
async fn run(playbook: &str, hosts: &[&Host], check: bool) -> Ran {
    let dir = tempfile::tempdir().expect("temp dir");
    let book = dir.path().join("site.yml");
    std::fs::write(&book, playbook).expect("write playbook");
    let mut inv = String::from("all:\n  hosts:\n");
    for h in hosts {
        inv.push_str(&format!(
            "    {}:\n      rdeploy_state_dir: {STATE_DIR}\n",
            h.name()
        ));
    }
    let inventory = dir.path().join("hosts.yml");
    std::fs::write(&inventory, inv).expect("write inventory");
    let settings = Settings {
        playbook: book,
        inventory: vec![inventory],
        limit: None,
        extra_vars: Default::default(),
        extra_data_texts: Default::default(),
        tags: Vec::new(),
        skip_tags: Vec::new(),
        roles_path: Vec::new(),
        collections_path: Vec::new(),
        ansible_python: None,
        shuffle_seed: 0,
        output: OutputFormat::Json,
        verbose: 0,
        config: None,
    };
    let checked = match crate::cli::check(settings, false) {
        Ok(c) => c,
        Err(d) => panic!("the test's playbook does not check: {d:?}"),
    };
    let state = dir.path().join("state");
    let run = (!check).then(|| {
        Arc::new(RunCtx {
            run_id: RUN_ID.into(),
            journal: Journal::create(&state, RUN_ID).expect("journal"),
            local_state_dir: state.join("local").display().to_string(),
            holder: format!("{RUN_ID} from test"),
            who: serde_json::Value::Null,
            release: std::sync::Mutex::new(None),
        })
    });
    let opts = RunOptions {
        check,
        forks: 5,
        run,
        connect: Connect::Scripted(Fleet::of(hosts.iter().map(|h| (*h).clone()))),
        ..RunOptions::default()
    };
    let out = crate::report::run::Captured::default();
    let mut reporter = Reporter::new(Box::new(out.clone()), Format::Json, false, 0, false);
    let stop = Arc::new(std::sync::atomic::AtomicI32::new(0));
    let summary = crate::exec::run(&checked, opts, &mut reporter, stop).await;
    drop(reporter);
    let text = out.text();
    let mut results = Vec::new();
    let mut task = String::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Json>(line) else {
            continue;
        };
        match v["event"].as_str() {
            Some("task") => task = v["name"].as_str().unwrap_or_default().to_string(),
            Some("result") => {
                let r = &v["result"];
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                results.push((task.clone(), s("host"), s("status"), s("msg")));
            }
            _ => {}
        }
    }
    // The journal is complete once the run dropped its last handle on it.
    let journal = std::fs::read_to_string(journal_path(&state, RUN_ID))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Ran {
        summary,
        results,
        journal,
    }
}

/// The reply of a backup that saved `path` (a regular file) as step `step`'s only entry: the
/// manifest line the host's backup program prints.
fn backed_up(step: u32, path: &str) -> crate::transport::Output {
    let entry = serde_json::json!({
        "step": step, "index": 0, "task": "t", "path": path, "kind": "file",
        "mode": "644", "uid": 0, "gid": 0, "sha256": "",
    });
    ok(format!("{entry}\n"))
}

/// A host with `/etc/app.conf` holding `text`, whose backups succeed.
fn app_host(name: &str, text: &str) -> Host {
    Host::new(name)
        .dir("/etc", 0o755)
        .file("/etc/app.conf", text, 0o644)
        .on(STATE_DIR, backed_up(1, "/etc/app.conf"))
}

const COPY_V2: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: app config
      copy:
        content: "v2\n"
        dest: /etc/app.conf
"#;

/// What was sent, one line per request, for assertion messages.
fn shown(h: &Host) -> String {
    h.requests()
        .iter()
        .map(|r| match r {
            Request::Exec { cmd, .. } => format!("exec {}", first_line(cmd)),
            Request::Batch(cmds) => format!(
                "batch [{}]",
                cmds.iter()
                    .map(|c| first_line(c))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
            Request::Put { path, .. } => format!("put {path}"),
            Request::Get { path } => format!("get {path}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// The requests that could change the host: file writes, and commands sent on their own,
/// except the state folder's probe (`backup::preparable`, which only looks). A module's
/// checks travel as reads (`Request::Batch`).
fn changing(h: &Host) -> Vec<Request> {
    let probe = format!("set -- '{STATE_DIR}' ;");
    h.requests()
        .into_iter()
        .filter(|r| match r {
            Request::Put { .. } => true,
            Request::Exec { cmd, .. } => !cmd.starts_with(&probe),
            Request::Batch(_) | Request::Get { .. } => false,
        })
        .collect()
}

#[tokio::test]
async fn a_task_in_sync_is_ok_and_backs_nothing_up() {
    let h = app_host("web1", "v2\n");
    let ran = run(COPY_V2, &[&h], false).await;
    ran.expect("app config", "web1", "ok", &h);
    assert_eq!(changing(&h), [], "only reads were sent:\n{}", shown(&h));
    assert!(ran.journal_of("intent").is_empty());
    assert!(ran.journal_of("backup").is_empty());
    assert_eq!(ran.summary.recap[0].1.ok, 1);
}

#[tokio::test]
async fn drift_is_backed_up_then_applied_then_verified() {
    let h = app_host("web1", "v1\n");
    let ran = run(COPY_V2, &[&h], false).await;
    ran.expect("app config", "web1", "changed", &h);
    let reqs = h.requests();
    let backup = reqs
        .iter()
        .position(|r| matches!(r, Request::Exec { cmd, .. } if cmd.contains(STATE_DIR)))
        .unwrap_or_else(|| panic!("no backup sent:\n{}", shown(&h)));
    let put = reqs
        .iter()
        .position(|r| matches!(r, Request::Put { path, data, .. } if path == "/etc/app.conf" && data == b"v2\n"))
        .unwrap_or_else(|| panic!("no write sent:\n{}", shown(&h)));
    assert!(
        backup < put,
        "the backup runs before the change:\n{}",
        shown(&h)
    );
    // The check before, and the check after the change (it converged).
    let reads: Vec<usize> = reqs
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Request::Batch(c) if c.iter().any(|c| c.contains("'/etc/app.conf'"))))
        .map(|(i, _)| i)
        .collect();
    assert!(
        reads.first().is_some_and(|&i| i < backup) && reads.last().is_some_and(|&i| i > put),
        "checked before and verified after:\n{}",
        shown(&h)
    );
    assert_eq!(
        h.node("/etc/app.conf"),
        Some(Node::File {
            data: b"v2\n".to_vec(),
            mode: 0o644
        })
    );
    // The journal has the intent, then the backup, before the step's result.
    let intent = ran.journal_of("intent");
    assert_eq!(intent.len(), 1);
    assert_eq!(intent[0]["paths"], serde_json::json!(["/etc/app.conf"]));
    assert_eq!(ran.journal_of("backup").len(), 1);
    let results = ran.journal_of("result");
    assert_eq!(results.len(), 1, "{:#?}", ran.journal);
    assert_eq!(results[0]["status"], "changed");
}

#[tokio::test]
async fn a_failed_apply_fails_the_step_after_its_backup() {
    let h = app_host("web1", "v1\n").fails(
        "put /etc/app.conf",
        TransportError::Io("write /etc/app.conf: No space left on device".into()),
    );
    let ran = run(COPY_V2, &[&h], false).await;
    ran.expect("app config", "web1", "failed", &h);
    assert!(
        ran.msg("app config", "web1")
            .contains("No space left on device"),
        "{}",
        ran.msg("app config", "web1")
    );
    assert_eq!(ran.summary.recap[0].1.failed, 1);
    // The backup was taken and journaled: a rollback can restore what was there.
    assert_eq!(ran.journal_of("backup").len(), 1);
    // The journal's word for a failed step is Ansible's.
    assert_eq!(ran.journal_of("result")[0]["status"], "fatal");
    assert_eq!(
        h.node("/etc/app.conf"),
        Some(Node::File {
            data: b"v1\n".to_vec(),
            mode: 0o644
        })
    );
}

#[tokio::test]
async fn a_failed_backup_stops_the_change() {
    let h = Host::new("web1")
        .dir("/etc", 0o755)
        .file("/etc/app.conf", "v1\n", 0o644)
        .on(STATE_DIR, exit(1, "cp: No space left on device"));
    let ran = run(COPY_V2, &[&h], false).await;
    ran.expect("app config", "web1", "failed", &h);
    let msg = ran.msg("app config", "web1");
    assert!(
        msg.contains("backup") && msg.contains("No space left"),
        "{msg}"
    );
    assert!(
        !h.requests()
            .iter()
            .any(|r| matches!(r, Request::Put { .. })),
        "nothing was written:\n{}",
        shown(&h)
    );
    assert_eq!(ran.journal_of("intent").len(), 1);
    assert!(ran.journal_of("backup").is_empty());
}

#[tokio::test]
async fn check_mode_predicts_the_change_and_sends_nothing_that_changes() {
    let h = app_host("web1", "v1\n");
    let ran = run(COPY_V2, &[&h], true).await;
    ran.expect("app config", "web1", "changed", &h);
    assert!(!h.requests().is_empty(), "the check looked at the host");
    assert_eq!(changing(&h), [], "only reads were sent:\n{}", shown(&h));
    assert_eq!(
        h.node("/etc/app.conf"),
        Some(Node::File {
            data: b"v1\n".to_vec(),
            mode: 0o644
        })
    );
    assert!(ran.journal.is_empty(), "a check run keeps no journal");
}

#[tokio::test]
async fn an_unreachable_host_is_reported_and_the_others_go_on() {
    let down = Host::new("web1").refusing(TransportError::Unreachable(
        "connect to 10.0.0.1:22: Connection refused".into(),
    ));
    let up = app_host("web2", "v1\n");
    let ran = run(COPY_V2, &[&down, &up], false).await;
    assert_eq!(ran.status("app config", "web1"), "unreachable");
    assert!(ran.msg("app config", "web1").contains("Connection refused"));
    ran.expect("app config", "web2", "changed", &up);
    assert!(down.requests().is_empty());
    let recap: std::collections::HashMap<_, _> = ran.summary.recap.iter().cloned().collect();
    assert_eq!(recap["web1"].unreachable, 1);
    assert_eq!(recap["web2"].changed, 1);
    assert!(!ran.summary.clean());
}

#[tokio::test]
async fn a_host_lost_mid_run_is_unreachable_and_runs_nothing_more() {
    let h = Host::new("web1").lost_at(
        "/srv/app/migrate",
        TransportError::Unresponsive("keepalives unanswered".into()),
    );
    let book = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: migrate
      command: /srv/app/migrate
    - name: restart
      command: /srv/app/restart
"#;
    let ran = run(book, &[&h], false).await;
    ran.expect("migrate", "web1", "unreachable", &h);
    assert_eq!(ran.status("restart", "web1"), "(no result)");
    assert!(!h.commands().iter().any(|c| c.contains("/srv/app/restart")));
}

#[tokio::test]
async fn when_false_sends_nothing() {
    let h = Host::new("web1");
    let book = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: restart
      command: /srv/app/restart
      when: false
"#;
    let ran = run(book, &[&h], false).await;
    assert_eq!(ran.status("restart", "web1"), "skipped");
    assert!(h.requests().is_empty(), "{}", shown(&h));
    assert_eq!(h.connects(), 0, "no connection was even opened");
}

#[tokio::test]
async fn failed_when_and_changed_when_judge_the_result() {
    let h = Host::new("web1")
        .on("/srv/app/status", ok("degraded\n"))
        .on("/srv/app/version", ok("1.2.0\n"));
    let book = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: version
      command: /srv/app/version
      changed_when: false
    - name: status
      command: /srv/app/status
      register: st
      failed_when: "'degraded' in st.stdout"
    - name: after
      command: /srv/app/version
"#;
    let ran = run(book, &[&h], false).await;
    ran.expect("version", "web1", "ok", &h);
    assert_eq!(ran.status("status", "web1"), "failed");
    // A failed host runs no more tasks.
    assert_eq!(ran.status("after", "web1"), "(no result)");
    let r = ran.summary.recap[0].1;
    assert_eq!((r.ok, r.changed, r.failed), (1, 0, 1));
}

#[tokio::test]
async fn a_handler_notified_twice_runs_once_after_the_tasks() {
    let h = Host::new("web1")
        .on("/srv/app/restart", ok(""))
        .on("/srv/app/deploy", ok(""))
        .on("/srv/app/migrate", ok(""));
    let book = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: deploy
      command: /srv/app/deploy
      notify: restart app
    - name: migrate
      command: /srv/app/migrate
      notify: restart app
  handlers:
    - name: restart app
      command: /srv/app/restart
"#;
    let ran = run(book, &[&h], false).await;
    ran.expect("restart app", "web1", "changed", &h);
    let cmds = h.commands();
    let restarts = cmds
        .iter()
        .filter(|c| c.contains("/srv/app/restart"))
        .count();
    assert_eq!(restarts, 1, "{}", shown(&h));
    let last = cmds.iter().rposition(|c| c.contains("/srv/app/restart"));
    let migrate = cmds.iter().rposition(|c| c.contains("/srv/app/migrate"));
    assert!(
        last > migrate,
        "the handler runs after the tasks:\n{}",
        shown(&h)
    );
}

#[tokio::test]
async fn a_handler_not_notified_does_not_run() {
    let h = app_host("web1", "v2\n").on("/srv/app/restart", ok(""));
    let book = format!(
        "{}      notify: restart app\n  handlers:\n    - name: restart app\n      command: /srv/app/restart\n",
        COPY_V2.trim_end().to_string() + "\n"
    );
    let ran = run(&book, &[&h], false).await;
    ran.expect("app config", "web1", "ok", &h);
    assert_eq!(ran.status("restart app", "web1"), "(no result)");
    assert!(!h.commands().iter().any(|c| c.contains("/srv/app/restart")));
}

#[tokio::test]
async fn a_loop_runs_each_item_in_order() {
    let h = Host::new("web1").on("/srv/app/ctl", ok(""));
    let book = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: ctl
      command: "/srv/app/ctl {{ item }}"
      loop: [stop, migrate, start]
"#;
    let ran = run(book, &[&h], false).await;
    ran.expect("ctl", "web1", "changed", &h);
    let items = ["stop", "migrate", "start"];
    let sent: Vec<&str> = h
        .commands()
        .iter()
        .filter(|c| c.contains("/srv/app/ctl"))
        .filter_map(|c| items.into_iter().find(|i| c.contains(&format!("'{i}'"))))
        .collect();
    assert_eq!(sent, ["stop", "migrate", "start"], "{}", shown(&h));
}

#[tokio::test]
async fn the_next_tasks_checks_are_read_ahead_with_the_first() {
    let h = Host::new("web1")
        .dir("/etc", 0o755)
        .file("/etc/a.conf", "a\n", 0o644)
        .file("/etc/b.conf", "b\n", 0o644);
    let book = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: a
      copy: { content: "a\n", dest: /etc/a.conf }
    - name: b
      copy: { content: "b\n", dest: /etc/b.conf }
"#;
    let ran = run(book, &[&h], false).await;
    ran.expect("a", "web1", "ok", &h);
    ran.expect("b", "web1", "ok", &h);
    // One round trip for both checks: b's reads rode with a's.
    let reqs = h.requests();
    assert_eq!(reqs.len(), 1, "{}", shown(&h));
    let cmds = reqs[0].commands();
    assert!(cmds.iter().any(|c| c.contains("'/etc/a.conf'")));
    assert!(cmds.iter().any(|c| c.contains("'/etc/b.conf'")));
    // Turned off, each check reads for itself.
    let h2 = Host::new("web2")
        .dir("/etc", 0o755)
        .file("/etc/a.conf", "a\n", 0o644)
        .file("/etc/b.conf", "b\n", 0o644);
    let off = book.replace(
        "gather_facts: false\n",
        "gather_facts: false\n  vars: { rdeploy_read_ahead: false }\n",
    );
    let ran = run(&off, &[&h2], false).await;
    ran.expect("b", "web2", "ok", &h2);
    assert_eq!(h2.requests().len(), 2, "{}", shown(&h2));
}
