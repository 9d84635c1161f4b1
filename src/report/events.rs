//! Events: everything the user sees during a run is one of these. The engine emits them; a
//! reporter (human text or JSON lines) renders them.

use crate::exec::outcome::{HostOutcome, Recap};

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
    },
    /// A task's result on one host.
    Host(&'a HostOutcome),
    /// A warning for the user.
    Warning(&'a str),
    /// The end of the run: per-host counters.
    Recap {
        /// Host name and its counters, in first-seen order.
        rows: &'a [(String, Recap)],
    },
}
