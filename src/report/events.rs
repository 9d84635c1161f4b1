//! Events: everything the user sees during a run is one of these. The engine emits them; a
//! reporter (human text or JSON lines) renders them.
//!
//! Two of them ([`Event::HostStart`], [`Event::Soak`]) only move the progress bars on a
//! terminal: they are not printed, not written as JSON and not logged (see
//! [`Event::progress_only`]).

use crate::exec::outcome::{HostOutcome, Recap};
use crate::rollback::HostRollback;

/// Something that happened during a run.
#[derive(Debug)]
pub enum Event<'a> {
    /// A play begins.
    PlayStart {
        /// Its name.
        name: &'a str,
        /// How many hosts it targets.
        hosts: usize,
        /// How many batches.
        batches: usize,
    },
    /// A batch begins.
    BatchStart {
        /// 1-based index.
        index: usize,
        /// How many batches the play has.
        total: usize,
        /// Its hosts.
        hosts: &'a [String],
    },
    /// A task (or handler) begins.
    TaskStart {
        /// `role : name` as Ansible shows it.
        label: &'a str,
        /// True for handlers ("RUNNING HANDLER").
        handler: bool,
        /// True in check mode.
        check: bool,
        /// The hosts it runs on (one with `run_once`).
        hosts: &'a [String],
    },
    /// A host begins working on the current task (it got one of the `forks` slots).
    /// Progress only.
    HostStart {
        /// The host.
        host: &'a str,
    },
    /// A task's result on one host.
    Host(&'a HostOutcome),
    /// A warning for the user.
    Warning(&'a str),
    /// Where a host keeps (or, in check mode, would keep) its backups: shown with `-v`.
    StateDir {
        /// The host.
        host: &'a str,
        /// Its state directory on the host.
        dir: &'a str,
    },
    /// How a host's files are reached (`-v`): `sftp subsystem`, `sudo -u root sftp-server`,
    /// `shell programs (why)`.
    FilePlane {
        /// The host.
        host: &'a str,
        /// The plane, in words.
        plane: &'a str,
    },
    /// A batch's health gate begins (`soak` true for the probes after the soak time).
    GateStart {
        /// 1-based batch index.
        index: usize,
        /// Batches in the play.
        total: usize,
        /// The second round, after `soak`.
        soak: bool,
        /// The hosts probed.
        hosts: &'a [String],
    },
    /// The health gate waits `soak` before probing again. Progress only.
    Soak {
        /// 1-based batch index.
        index: usize,
        /// Batches in the play.
        total: usize,
        /// How long it waits.
        seconds: f64,
    },
    /// One health probe's outcome on one host.
    Probe {
        /// The host.
        host: &'a str,
        /// The probe's name.
        probe: &'a str,
        /// Passed.
        passed: bool,
        /// Attempts made.
        attempts: u32,
        /// The last observed value.
        observed: &'a str,
    },
    /// A batch's analysis begins.
    Analysis {
        /// 1-based batch index.
        index: usize,
        /// Batches in the play.
        total: usize,
        /// The metrics' names.
        metrics: &'a [String],
        /// How long it lasts.
        seconds: f64,
    },
    /// One measurement of an analysis' metric.
    Measurement {
        /// The hosts it speaks for (one for a metric measured on its host; those that rendered
        /// the same metric for one taken from the controller).
        hosts: &'a [String],
        /// The metric's name.
        metric: &'a str,
        /// 1-based number of the measurement.
        n: u32,
        /// Measurements planned.
        of: u32,
        /// `success`, `failure` or `inconclusive`.
        verdict: &'a str,
        /// The measured result, when there is one.
        value: Option<&'a serde_json::Value>,
        /// What was seen.
        observed: &'a str,
        /// Seconds since the analysis started.
        at_s: f64,
    },
    /// A batch failed its health gate or its failure budget.
    GateFailed {
        /// 1-based batch index.
        index: usize,
        /// Why.
        reason: &'a str,
        /// What happens now: `rollback` or `halt`.
        action: &'a str,
    },
    /// A rollback begins on these hosts.
    RollbackStart {
        /// The hosts.
        hosts: &'a [String],
        /// Only the load balancer switches are undone (`rdeploy switch-back`).
        switch_back: bool,
    },
    /// A host's backups were restored (or not).
    Rollback(&'a HostRollback),
    /// The run was recorded.
    RunEnd {
        /// Its id.
        run_id: &'a str,
        /// The journal's path.
        journal: &'a str,
        /// Where the time went.
        timing: &'a crate::exec::Timing,
    },
    /// The end of the run: per-host counters.
    Recap {
        /// Host name and its counters, in first-seen order.
        rows: &'a [(String, Recap)],
    },
}

impl Event<'_> {
    /// True for the events that only move the progress bars: no text line, no JSON event, no
    /// `--log-file` line.
    pub fn progress_only(&self) -> bool {
        matches!(self, Event::HostStart { .. } | Event::Soak { .. })
    }
}
