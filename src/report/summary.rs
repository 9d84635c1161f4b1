//! The final run report (`--report FILE`, and the body of `--notify` webhooks): per host its
//! state, last completed task, batch, changes and error; for the run its id, outcome, exit
//! code and timing.
//!
//! Owns [`Tracker`], which watches the run's events (whatever the output mode) and keeps
//! what the report needs, and writing the report file (temp file + rename, so a reader never
//! sees half of it). A `no_log` task's result never reaches it: its error is replaced by a
//! fixed text. It must not decide outcomes: the run's outcome and exit code are given.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{Value, json};

use crate::backup::journal;
use crate::exec::Timing;
use crate::exec::outcome::{Recap, Status};
use crate::report::events::Event;

/// What the report says about one host.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HostReport {
    /// `ok`, `changed`, `failed`, `unreachable`, `rolled_back`, or `not_started` for a host
    /// that no batch reached (the run stopped before its batch: a failed earlier batch, a
    /// host-key refusal, the deadline, a signal).
    pub state: &'static str,
    /// The last task that finished on the host (ok, changed or skipped).
    pub last_task: Option<String>,
    /// 1-based index of the play of the host's last batch.
    pub play: Option<usize>,
    /// 1-based index of the host's last batch in its play.
    pub batch: Option<usize>,
    /// Tasks that changed something (or would, in check mode).
    pub changed: u32,
    /// Why the host failed, when it did.
    pub error: Option<String>,
    #[serde(skip)]
    recap: Recap,
    #[serde(skip)]
    unhealthy: bool,
    #[serde(skip)]
    rolled_back: bool,
    #[serde(skip)]
    rollback_failed: bool,
    #[serde(skip)]
    started: bool,
    /// A probe failed on the host (the recap counts that once in `failed`).
    #[serde(skip)]
    gate_failed: bool,
}

impl HostReport {
    fn state(&self) -> &'static str {
        if !self.started && self.recap == Recap::default() {
            "not_started"
        } else if self.recap.unreachable > 0 {
            "unreachable"
        } else if self.recap.failed > u32::from(self.gate_failed)
            || self.unhealthy
            || self.rollback_failed
        {
            "failed"
        } else if self.rolled_back {
            "rolled_back"
        } else if self.recap.changed > 0 {
            "changed"
        } else {
            "ok"
        }
    }
}

/// Watches a run's events and keeps, per host, what the report needs.
#[derive(Debug, Default)]
pub struct Tracker {
    hosts: IndexMap<String, HostReport>,
    play: usize,
    task: Option<String>,
}

const NO_LOG_ERROR: &str = "hidden: the task has no_log";

impl Tracker {
    /// Takes one event into account.
    pub fn observe(&mut self, e: &Event<'_>) {
        match e {
            Event::PlayStart { .. } => self.play += 1,
            Event::BatchStart { index, hosts, .. } => {
                for h in hosts.iter() {
                    let r = self.hosts.entry(h.clone()).or_default();
                    r.play = Some(self.play);
                    r.batch = Some(*index);
                    r.started = true;
                }
            }
            Event::TaskStart { label, .. } => self.task = Some(label.to_string()),
            Event::Host(o) => {
                let task = self.task.clone().unwrap_or_default();
                let r = self.hosts.entry(o.host.clone()).or_default();
                r.started = true;
                match o.status {
                    Status::Ok | Status::Changed | Status::Skipped => r.last_task = Some(task),
                    Status::Failed if o.ignored => r.last_task = Some(task),
                    Status::Failed | Status::Unreachable => {
                        let why = if o.no_log {
                            NO_LOG_ERROR.to_string()
                        } else {
                            o.msg
                                .clone()
                                .or_else(|| {
                                    o.result
                                        .get("msg")
                                        .and_then(Value::as_str)
                                        .map(String::from)
                                })
                                .or_else(|| o.reach.map(|r| r.describe().to_string()))
                                .unwrap_or_else(|| "failed".into())
                        };
                        r.error = Some(format!("task '{task}': {why}"));
                    }
                }
            }
            Event::Probe {
                host,
                probe,
                passed: false,
                observed,
                ..
            } => {
                let r = self.hosts.entry(host.to_string()).or_default();
                r.started = true;
                r.unhealthy = true;
                r.gate_failed = true;
                r.error = Some(format!("health probe '{probe}' failed: {observed}"));
            }
            Event::Rollback(rb) => {
                let r = self.hosts.entry(rb.host.clone()).or_default();
                r.started = true;
                if rb.clean() {
                    r.rolled_back = true;
                    r.unhealthy = false;
                } else {
                    r.rollback_failed = true;
                    r.error = Some(format!("rollback incomplete: {}", rb.errors_line()));
                }
            }
            Event::Recap { rows } => {
                for (h, recap) in rows.iter() {
                    self.hosts.entry(h.clone()).or_default().recap = *recap;
                }
            }
            _ => {}
        }
    }

    /// Every host seen, with its final state.
    pub fn hosts(&self) -> IndexMap<String, HostReport> {
        self.hosts
            .iter()
            .map(|(h, r)| {
                let mut r = r.clone();
                r.state = r.state();
                r.changed = r.recap.changed;
                if matches!(r.state, "ok" | "changed" | "rolled_back") && !r.rolled_back {
                    // A failure that was rescued or ignored is not the host's error.
                    r.error = None;
                }
                (h.clone(), r)
            })
            .collect()
    }
}

/// The run as a whole, for the report.
#[derive(Clone, Debug, Default)]
pub struct RunFacts {
    /// Its id; `None` in check mode (nothing is recorded).
    pub run_id: Option<String>,
    /// The playbook as given.
    pub playbook: String,
    /// The inventory sources as given.
    pub inventory: Vec<String>,
    /// `--check`.
    pub check: bool,
    /// `success`, `failed`, `rolled_back`, `deadline`, `locked`, ...
    pub outcome: &'static str,
    /// The process exit code.
    pub exit_code: i32,
    /// Unix seconds.
    pub started: u64,
    /// Unix seconds.
    pub ended: u64,
    /// Where the time went (none when the run did not start).
    pub timing: Option<Timing>,
    /// Why the run did not start, when it did not.
    pub error: Option<String>,
    /// The process ended before the run could (a second signal, steps that outlived
    /// `--stop-grace` or the deadline's grace): the per-host detail is missing.
    pub forced: bool,
}

/// The report document.
pub fn document(facts: &RunFacts, hosts: &IndexMap<String, HostReport>) -> Value {
    let mut doc = json!({
        "run_id": facts.run_id,
        "playbook": facts.playbook,
        "inventory": facts.inventory,
        "check": facts.check,
        "outcome": facts.outcome,
        "exit_code": facts.exit_code,
        "started": journal::rfc3339(facts.started),
        "ended": journal::rfc3339(facts.ended),
        "duration_s": facts.ended.saturating_sub(facts.started),
        "timing": facts.timing,
        "error": facts.error,
        "hosts": hosts,
    });
    if facts.forced {
        doc["forced"] = Value::Bool(true);
    }
    doc
}

/// Writes `doc` to `path` through a temp file in the same directory and a rename.
pub fn write(path: &Path, doc: &Value) -> io::Result<()> {
    let text = serde_json::to_string_pretty(doc)?;
    write_text(path, &(text + "\n"))
}

/// Writes `text` to `path` (mode 0600) through a temp file in the same directory, fsync and a
/// rename; registered secrets are masked.
pub fn write_text(path: &Path, text: &str) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    // 0600: a report names hosts, tasks and errors; nobody else needs to read it.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    // Registered secrets (vault values, `secret_vars`) never reach the report.
    write!(f, "{}", crate::vault::redact::redact(text))?;
    f.sync_data()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
