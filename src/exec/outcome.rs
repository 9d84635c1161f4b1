//! What a task did on a host: its [`Status`], the registered result, the changes for
//! `--diff`, and the per-host [`Recap`] counters.
//!
//! Owns the vocabulary shared by the executor and the reporters. It must not print or run
//! anything.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::modules::runtime::Change;
use crate::transport::Reach;

/// The result of one task on one host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to change.
    Ok,
    /// Changed (or, in check mode, would change).
    Changed,
    /// `when:` was false, or the step was skipped in check mode.
    Skipped,
    /// The task failed on the host.
    Failed,
    /// The host could not be reached (or stopped answering).
    Unreachable,
}

impl Status {
    /// The word Ansible prints for it.
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Skipped => "skipping",
            Status::Failed => "fatal",
            Status::Unreachable => "unreachable",
        }
    }
}

/// One loop item's outcome, for the per-item report lines.
#[derive(Clone, Debug, Serialize)]
pub struct ItemOutcome {
    /// `loop_control.label`, or the item itself.
    pub label: String,
    /// Its status.
    pub status: Status,
    /// Its message, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
}

/// The result of one task on one host, as the reporters see it.
#[derive(Clone, Debug, Serialize)]
pub struct HostOutcome {
    /// The host.
    pub host: String,
    /// What happened.
    pub status: Status,
    /// A failure that `ignore_errors` turned into "keep going".
    pub ignored: bool,
    /// The short reason (failure message, skip reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    /// The registered result (hidden when `no_log`).
    pub result: Map<String, Value>,
    /// What changed or would change, for `--diff` (empty under `no_log`/`diff: false`).
    #[serde(skip)]
    pub changes: Vec<Change>,
    /// Per-item outcomes for loops.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemOutcome>,
    /// The task ran with `no_log`.
    pub no_log: bool,
    /// Where it ran when delegated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegated_to: Option<String>,
    /// Wall time on this host.
    #[serde(serialize_with = "as_secs")]
    pub duration: Duration,
    /// Commands run on the host for this task.
    pub commands: usize,
    /// Always show the result after `=>` (`debug` output).
    #[serde(skip)]
    pub show: bool,
    /// Why the host could not be used, when the status is `unreachable`.
    #[serde(rename = "unreachable_reason", skip_serializing_if = "Option::is_none")]
    pub reach: Option<Reach>,
}

impl HostOutcome {
    /// An outcome with nothing but its host and status (no result, no time, no commands).
    pub fn of(host: &str, status: Status) -> HostOutcome {
        HostOutcome {
            host: host.to_string(),
            status,
            ignored: false,
            msg: None,
            result: Map::new(),
            changes: Vec::new(),
            items: Vec::new(),
            no_log: false,
            delegated_to: None,
            duration: Duration::ZERO,
            commands: 0,
            show: false,
            reach: None,
        }
    }
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// PLAY RECAP counters for one host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Recap {
    /// Tasks ok (including changed ones, as Ansible counts).
    pub ok: u32,
    /// Tasks changed.
    pub changed: u32,
    /// 1 when the host became unreachable.
    pub unreachable: u32,
    /// Tasks failed (not ignored, not rescued).
    pub failed: u32,
    /// Tasks skipped.
    pub skipped: u32,
    /// Blocks rescued.
    pub rescued: u32,
    /// Failures ignored.
    pub ignored: u32,
    /// Why the host became unreachable.
    #[serde(rename = "unreachable_reason", skip_serializing_if = "Option::is_none")]
    pub reach: Option<Reach>,
}

impl Recap {
    /// Counts one outcome.
    pub fn count(&mut self, o: &HostOutcome) {
        match o.status {
            Status::Ok => self.ok += 1,
            Status::Changed => {
                self.ok += 1;
                self.changed += 1;
            }
            Status::Skipped => self.skipped += 1,
            Status::Failed if o.ignored => {
                self.ok += 1;
                self.ignored += 1;
            }
            Status::Failed => self.failed += 1,
            Status::Unreachable => {
                self.unreachable = 1;
                self.reach = o.reach.or(Some(Reach::Unreachable));
            }
        }
    }

    /// True when the host neither failed nor became unreachable.
    pub fn clean(&self) -> bool {
        self.failed == 0 && self.unreachable == 0
    }

    /// True when the host's identity was refused.
    pub fn host_key_refused(&self) -> bool {
        self.reach == Some(Reach::HostKeyRefused)
    }

    /// True when the controller ran out of open files or memory reaching the host.
    pub fn controller_exhausted(&self) -> bool {
        self.reach == Some(Reach::ControllerExhausted)
    }
}
