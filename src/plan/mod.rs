//! The plan: which hosts each play runs on, in which batches, with which tasks.
//!
//! `Plan::build` is pure: inventory + playbook + settings in, plan out, no I/O, no host
//! contacted. `rdeploy plan`, `--list-hosts` and `--list-tasks` print it; the executor walks it.
//! It must not render templates or read files.

pub mod budget;
pub mod build;
pub mod canary;
pub mod serial;

use serde::Serialize;

pub use build::{PlanOptions, build};
pub use serial::{BatchSize, batch_sizes};

/// Every play of a playbook, in order.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// The plays.
    pub plays: Vec<PlannedPlay>,
}

/// One play: its hosts (after `--limit` and `order`) cut into batches, and its tasks.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedPlay {
    /// The play's name, or its host pattern when it has none.
    pub name: String,
    /// The host pattern as written.
    pub pattern: String,
    /// The hosts, in run order.
    pub hosts: Vec<String>,
    /// The hosts cut by `serial`.
    pub batches: Vec<Vec<String>>,
    /// With `canary`: one step per batch (cumulative hosts, merged steps); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub canary: Vec<canary::Step>,
    /// The pattern names what only `add_host`/`group_by` of an earlier play can make: its
    /// hosts are known when the play starts.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deferred: bool,
    /// The tasks in run order (pre_tasks, roles, tasks, post_tasks), after `--tags`/`--skip-tags`.
    pub tasks: Vec<PlannedTask>,
    /// Handlers, in the order they would run when notified.
    pub handlers: Vec<PlannedTask>,
    /// The play's `rollback:` tasks (run on a failed batch after its backups are restored).
    pub rollback: Vec<PlannedTask>,
    /// Tags set on the play itself.
    pub tags: Vec<String>,
    /// Includes whose file or role is checked when it is reached for a host, not before the
    /// run: a templated name (resolved per host), or a literal one under `when:`.
    pub checked_when_reached: Vec<WhenReached>,
    /// The play's `approve:` gate: the batch (1-based) it stops before, and its message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve: Option<(usize, String)>,
    /// What runs after each batch's health gate, in order (a watched soak, an analysis, an
    /// approval before the next step), one list per batch.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Vec<String>>,
    /// The play's change windows and freeze files, as written, checked before each batch.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<String>,
    /// `max_failed: total`: hosts that may fail across the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_failed_total: Option<u32>,
    /// `max_unavailable`, in words: the budgets the batches were packed under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
}

/// An include whose file or role is checked when it is reached.
#[derive(Clone, Debug, Serialize)]
pub struct WhenReached {
    /// `PATH:LINE:COL` of the include task.
    pub location: String,
    /// `include_tasks` or `include_role`.
    pub module: String,
    /// The file or role as written (a pattern when it is a template).
    pub name: String,
    /// Mistakes found in what it loads, reported for a host only if the include is reached
    /// for it (`PATH:LINE:COL: message`).
    pub problems: Vec<String>,
}

/// One task as the plan shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedTask {
    /// The task's name, or `module` when it has none (Ansible shows the action).
    pub name: String,
    /// The module it runs.
    pub module: String,
    /// Its tags, including those inherited from the play, role, block or import.
    pub tags: Vec<String>,
    /// The role it comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `PATH:LINE:COL` of the task.
    pub location: String,
    /// False for steps rollback cannot undo (`command`/`shell`/`script`/`raw` without
    /// `creates:`/`removes:`); `rdeploy plan` flags them.
    pub reversible: bool,
    /// Why not, when not reversible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_reversible: Option<String>,
}

impl Plan {
    /// True when no play has any host.
    pub fn no_hosts(&self) -> bool {
        self.plays.iter().all(|p| p.hosts.is_empty() && !p.deferred)
    }
}
