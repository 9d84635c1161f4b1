//! The executor: runs a checked plan play by play, batch by batch, task by task (Ansible's
//! linear strategy), each task on all of a batch's hosts at once.
//!
//! Owns the walk over a play's task tree (blocks with rescue/always, imports, includes,
//! roles, handlers, `meta`) and the concurrency: a host's state is moved into its future for
//! one task (a `JoinSet`, bounded by a `Semaphore` of `--forks`) and handed back. Only
//! immutable data is shared (`Arc<Shared>`). The per-host pipeline lives in `task.rs`. Events
//! go to the reporter; nothing here prints.

pub mod actions;
mod analysis;
pub mod backups;
pub mod facts;
mod gate;
pub mod host;
pub mod outcome;
pub mod task;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use minijinja::Environment;
use serde_json::Value as Json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::backup::journal::Record;
use crate::cli::Checked;
use crate::exec::host::{Connection, HostState};
use crate::exec::outcome::{HostOutcome, Recap, Status};
use crate::exec::task::{AheadTask, TaskCtx, run_on_host};
use crate::inventory::Inventory;
use crate::modules::runtime::Ahead;
use crate::plan::build::tags_selected;
use crate::playbook::model::{
    Approval, Handler, Included, Keywords, Play, RoleRef, Task, TaskItem, Val,
};
use crate::playbook::tasks::{FromFiles, Loaded};
use crate::report::events::Event;
use crate::report::run::Reporter;
use crate::template::{self, HostVars, Layer};
use crate::vars::{Tier, VarStack, host_stacks, play_magic, play_stack, role_vars};

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `-v` count: `debug: verbosity: N` prints only from N on.
    pub verbosity: u8,
    /// `--check`: report what would change, change nothing.
    pub check: bool,
    /// `--diff`.
    pub diff: bool,
    /// Hosts in flight at once.
    pub forks: usize,
    /// `--start-at-task NAME`.
    pub start_at_task: Option<String>,
    /// `--task-timeout`: default per-command limit.
    pub task_timeout: Option<Duration>,
    /// `--force-handlers`.
    pub force_handlers: bool,
    /// SSH options from the command line.
    pub ssh: crate::transport::ssh_config::SshOptions,
    /// The ssh config file, read once.
    pub ssh_config: Arc<ssh2_config::SshConfig>,
    /// The run's id and journal; `None` in check mode (nothing changes, nothing is recorded).
    pub run: Option<Arc<backups::RunCtx>>,
    /// Resuming: per play index, the hosts whose batch an interrupted run finished. A batch
    /// whose every host is listed is skipped.
    pub done: HashMap<usize, std::collections::HashSet<String>>,
    /// `rdeploy approve RUN`: the approval gate the resumed run stopped at is passed.
    pub approved: bool,
    /// `-b`, `--become-user`, `--become-method`, `-K`: below keywords and variables.
    pub become_cli: BecomeCli,
    /// What connections reach (the hosts, or a test's scripted hosts).
    pub connect: host::Connect,
}

/// `become` from the command line: the lowest precedence, as in Ansible (a play's or task's
/// keyword wins, an `ansible_become*` variable wins over both).
#[derive(Clone, Default)]
pub struct BecomeCli {
    /// `-b/--become` (`None`: not given).
    pub r#become: Option<bool>,
    /// `--become-user`.
    pub user: Option<String>,
    /// `--become-method`.
    pub method: Option<String>,
    /// `-K/--ask-become-pass`: what was typed.
    pub password: Option<String>,
}

impl std::fmt::Debug for BecomeCli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BecomeCli")
            .field("become", &self.r#become)
            .field("user", &self.user)
            .field("method", &self.method)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .finish()
    }
}

/// Data every host's future may read.
pub struct Shared {
    /// The template environment.
    pub env: Arc<Environment<'static>>,
    /// The inventory as `add_host`/`group_by` left it so far: the runner replaces the
    /// snapshot between tasks; a host's future reads one ([`Shared::inventory`]) and holds no
    /// lock.
    pub inventory: std::sync::RwLock<Arc<Inventory>>,
    /// Run options.
    pub opts: RunOptions,
    /// The playbook's directory (relative `src:` and `fetch` destinations).
    pub playbook_dir: PathBuf,
    /// Role name → role directory, for `src:` lookups of templated names.
    pub role_paths: HashMap<String, PathBuf>,
    /// What asked the run to stop (SIGINT 2, SIGTERM 15, [`STOP_DEADLINE`]), 0 while nothing
    /// did: the steps in flight finish and are recorded, no new one starts.
    pub stop: Arc<AtomicI32>,
    /// What dynamic includes loaded so far, by where the include is and what it named for a
    /// host: loaded and checked once, shared by every host that names the same thing.
    pub includes: std::sync::Mutex<HashMap<IncludeKey, Result<Arc<Loaded>, String>>>,
}

impl Shared {
    /// The inventory as it is now.
    pub fn inventory(&self) -> Arc<Inventory> {
        match self.inventory.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// A dynamic include as reached for a host: the include task's position, the module, the
/// rendered name and `*_from` files.
pub type IncludeKey = (crate::diag::Loc, String, String, FromFiles);

/// How long a terminal waits for an approval whose gate gives no `timeout`.
const APPROVAL_TIMEOUT: Duration = Duration::from_secs(3600);

/// The value of [`Shared::stop`] when `--deadline` passed (signals use their numbers).
pub const STOP_DEADLINE: i32 = -1;

/// What surrounds a task: block/import/include variables and keywords, the role it runs in.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Block, import and include `vars:` (tier 6), outermost first.
    pub vars: Vec<(String, Json)>,
    /// Variables of roles entered through `include_role`/`import_role`.
    pub role_vars: Vec<(Tier, String, Json)>,
    /// The role whose tasks these are.
    pub role: Option<RoleInfo>,
    /// Keywords inherited from blocks, roles and the play (`become`, `ignore_errors`, ...).
    pub keywords: Keywords,
    /// Tags inherited from the play, roles, blocks and imports.
    pub tags: Vec<String>,
    /// Conditions of enclosing blocks, imports and role entries, outermost first: each task
    /// inside evaluates them before its own (a false one reports the task `skipping`, as
    /// Ansible does).
    pub when: Vec<crate::yaml::Node>,
    /// `notify` of the innermost enclosing block that has one: for tasks without their own.
    pub notify: Option<Vec<crate::playbook::model::Named>>,
    /// Inside `always:` (runs on failed hosts too).
    pub in_always: bool,
}

impl Scope {
    /// The scope inside a block, import or role with keywords `k`: its vars and tags are
    /// added, its settings (`become`, `ignore_errors`...) override the outer ones.
    pub fn enter(&self, k: &Keywords) -> Scope {
        let mut inner = self.clone();
        inner
            .vars
            .extend(k.vars.iter().map(|(n, v)| (n.clone(), v.to_json())));
        inner.tags.extend(k.tags.iter().map(|t| t.name.clone()));
        inner.when.extend(k.when.iter().cloned());
        inherit(&mut inner.keywords, k);
        inner
    }

    /// The scope inside block `b`: its keywords, and its `notify` for tasks without one.
    pub fn enter_block(&self, b: &crate::playbook::model::Block) -> Scope {
        let mut inner = self.enter(&b.keywords);
        if !b.notify.is_empty() {
            inner.notify = Some(b.notify.clone());
        }
        inner
    }
}

/// A role's name and directory.
#[derive(Clone, Debug)]
pub struct RoleInfo {
    /// The role's name.
    pub name: String,
    /// Its directory.
    pub path: PathBuf,
    /// The instance's identity ([`RoleRef::origin`], path, parameters, `when`, `tags`,
    /// `vars`): a host where a task of it ran does not run it again unless it allows
    /// duplicates.
    pub key: String,
}

/// What the walker does after a task.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Flow {
    /// Next task.
    #[default]
    Continue,
    /// The task was an include: run what it included on this host.
    Include,
    /// `meta: ...`.
    Meta(String),
}

/// Why the play's next batch may not start now: a freeze file of its `windows` exists, or the
/// time is outside every `allow` window. `None` when it may (or the play has no windows).
fn window_closed(play: &Play) -> Option<String> {
    let w = play.windows.as_ref()?;
    if let Some(f) = w.deny_files.iter().find(|f| f.exists()) {
        return Some(format!("the freeze file {} exists", f.display()));
    }
    let now = jiff::Timestamp::now();
    if w.allow.is_empty() || w.allow.iter().any(|a| a.open_at(now)) {
        return None;
    }
    let texts: Vec<&str> = w.allow.iter().map(|a| a.text.as_str()).collect();
    Some(format!(
        "{now} is outside the change windows ({})",
        texts.join("; ")
    ))
}

/// How a run ended, beyond each host's counters (worst wins).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Every batch passed its gate.
    #[default]
    Completed,
    /// An `approve:` gate was not approved (no terminal, no answer in time, or not `y`):
    /// the run stopped before the gate's batch, to go on with `rdeploy approve RUN`.
    AwaitingApproval,
    /// `--deadline` passed: the run stopped after the steps in flight. Anything that ended
    /// the run by itself (a halt, a rollback) ranks above it.
    Deadline,
    /// A batch was due outside the play's change `windows` (or a freeze file exists): the
    /// run stopped before it, to go on with `rdeploy resume RUN`.
    OutsideWindow,
    /// A batch failed and `on_failure: halt` stopped the run.
    Halted,
    /// A batch failed and was rolled back cleanly.
    RolledBack,
    /// A rollback could not restore everything, or its tasks or health gate failed.
    RollbackIncomplete,
    /// SIGINT (2) or SIGTERM (15) stopped the run after the steps in flight.
    Interrupted(i32),
}

/// The whole run's outcome.
#[derive(Debug, Default)]
pub struct Summary {
    /// Per-host counters, in first-seen order.
    pub recap: Vec<(String, Recap)>,
    /// How the run ended.
    pub outcome: Outcome,
    /// Hosts with at least one change.
    pub changed_hosts: Vec<String>,
    /// Where the time went.
    pub timing: Timing,
}

/// Where a run's time went (wall-clock seconds).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Timing {
    /// The whole run.
    pub total_s: f64,
    /// Running tasks and handlers on hosts (backups included).
    pub tasks_s: f64,
    /// Health gates (probes and soak).
    pub probes_s: f64,
    /// Rollbacks.
    pub rollback_s: f64,
    /// Host-seconds spent preparing backups (the state folder when it needs a `become` of its
    /// own) and journaling intents, summed over hosts. The backups themselves run in the same
    /// round trip as each step's first change, so their time is in `tasks_s`.
    pub backup_host_s: f64,
}

impl Summary {
    /// True when every host finished without a failure or an unreachable state.
    pub fn clean(&self) -> bool {
        self.recap.iter().all(|(_, r)| r.clean())
    }

    /// True when some host's identity was refused (exit code 6).
    pub fn host_key_refused(&self) -> bool {
        self.recap.iter().any(|(_, r)| r.host_key_refused())
    }

    /// True when the controller ran out of open files or memory (exit code 71).
    pub fn controller_exhausted(&self) -> bool {
        self.recap.iter().any(|(_, r)| r.controller_exhausted())
    }
}

/// Runs every play of a checked playbook.
pub async fn run<'r>(
    c: &'r Checked,
    opts: RunOptions,
    reporter: &'r mut Reporter,
    stop: Arc<AtomicI32>,
) -> Summary {
    let shared = Arc::new(Shared {
        env: Arc::new(template::run_environment(opts.check)),
        inventory: std::sync::RwLock::new(Arc::new(c.inventory.clone())),
        opts,
        playbook_dir: c.playbook.dir.clone(),
        role_paths: role_paths(&c.playbook.plays),
        stop,
        includes: std::sync::Mutex::new(HashMap::new()),
    });
    let start_at = shared.opts.start_at_task.clone();
    let sem = Arc::new(Semaphore::new(shared.opts.forks.max(1)));
    let mut runner = Runner {
        shared,
        reporter,
        states: IndexMap::new(),
        started: start_at.is_none(),
        start_at,
        end_play: false,
        tags: (c.settings.tags.clone(), c.settings.skip_tags.clone()),
        sem,
        play: None,
        halted: false,
        outcome: Outcome::Completed,
        started_batches: Vec::new(),
        timing: Timing::default(),
        handlers: Vec::new(),
        play_layers: Arc::new(Vec::new()),
        inventory: Arc::new(c.inventory.clone()),
        inventory_changed: false,
        groups_stale: false,
        play_vars: None,
        batch: Vec::new(),
        approved: false,
    };
    runner.approved = runner.shared.opts.approved;
    let started = Instant::now();
    for (i, (play, planned)) in c.playbook.plays.iter().zip(&c.plan.plays).enumerate() {
        if runner.halted {
            break;
        }
        let batches = if runner.inventory_changed || planned.deferred {
            // `add_host`/`group_by` changed the inventory: the play's hosts are found now.
            match crate::plan::build::hosts_now(
                &runner.inventory,
                play,
                c.settings.limit.as_deref(),
                c.settings.shuffle_seed,
            ) {
                Ok((_, b)) => b,
                Err(m) => {
                    runner.reporter.emit(&Event::Warning(&m));
                    Vec::new()
                }
            }
        } else {
            planned.batches.clone()
        };
        if batches.iter().all(Vec::is_empty) {
            if planned.deferred || runner.inventory_changed {
                // Ansible's words, then the play is skipped.
                let msg = format!(
                    "Could not match supplied host pattern, ignoring: {} (play '{}' skipped: no hosts matched)",
                    planned.pattern, planned.name
                );
                runner.reporter.emit(&Event::Warning(&msg));
            }
            continue;
        }
        runner.play(c, i, play, &batches).await;
    }
    for st in runner.states.values_mut() {
        st.close().await;
    }
    let recap: Vec<(String, Recap)> = runner
        .states
        .iter()
        .map(|(h, s)| (h.clone(), s.recap))
        .collect();
    runner.reporter.emit(&Event::Recap { rows: &recap });
    let changed_hosts = recap
        .iter()
        .filter(|(_, r)| r.changed > 0)
        .map(|(h, _)| h.clone())
        .collect();
    let mut timing = runner.timing;
    timing.total_s = started.elapsed().as_secs_f64();
    timing.backup_host_s = runner
        .states
        .values()
        .map(|s| s.backups.spent.as_secs_f64())
        .sum();
    let outcome = match runner.shared.stop.load(Ordering::SeqCst) {
        0 => runner.outcome,
        STOP_DEADLINE => runner.outcome.max(Outcome::Deadline),
        sig => runner.outcome.max(Outcome::Interrupted(sig)),
    };
    Summary {
        recap,
        outcome,
        changed_hosts,
        timing,
    }
}

/// A step's status in the journal: its outcome's word, or `interrupted` for a step the
/// controller abandoned while stopping (`--stop-grace` ran out).
fn journal_status(o: &HostOutcome) -> &'static str {
    let interrupted = crate::transport::TransportError::Interrupted.to_string();
    if o.status == Status::Failed && o.msg.as_deref() == Some(interrupted.as_str()) {
        "interrupted"
    } else {
        o.status.word()
    }
}

fn role_paths(plays: &[Play]) -> HashMap<String, PathBuf> {
    fn add(r: &RoleRef, out: &mut HashMap<String, PathBuf>) {
        out.entry(r.name.clone())
            .or_insert_with(|| r.role.path.clone());
        for d in &r.role.dependencies {
            add(d, out);
        }
    }
    let mut out = HashMap::new();
    for p in plays {
        for r in &p.roles {
            add(r, &mut out);
        }
        p.for_each_task(&mut |t| {
            if let Some(Included::Role(r)) = &t.included {
                add(r, &mut out);
            }
        });
    }
    out
}

struct Runner<'r> {
    shared: Arc<Shared>,
    reporter: &'r mut Reporter,
    /// The play being run (for `meta: flush_handlers`).
    play: Option<&'r Play>,
    /// Every host seen so far, in first-seen order (state persists across plays).
    states: IndexMap<String, HostState>,
    started: bool,
    start_at: Option<String>,
    end_play: bool,
    tags: (Vec<String>, Vec<String>),
    sem: Arc<Semaphore>,
    /// A host's identity was refused or a batch failed: no new batch (or play) starts.
    halted: bool,
    /// How the run is ending.
    outcome: Outcome,
    /// Every batch started so far in the run (all plays), oldest first: `rollback_scope: all`
    /// rolls back in these groups, newest first.
    started_batches: Vec<Vec<String>>,
    /// Where the time went.
    timing: Timing,
    /// The play's handlers in load order, each with the scope it runs in (its role
    /// instance's variables and keywords): roles' (dependencies first), the play's own,
    /// `import_role`s', then those of `include_role`s as they run.
    handlers: Vec<(crate::playbook::model::Handler, Scope)>,
    /// The play's variables every host shares (role exports, play vars, extra vars): what a
    /// templated handler name is rendered with, as Ansible does (no host's variables).
    play_layers: Arc<Vec<Layer>>,
    /// The inventory with what `add_host`/`group_by` added so far.
    inventory: Arc<Inventory>,
    /// `add_host`/`group_by` changed the inventory: later plays find their hosts again.
    inventory_changed: bool,
    /// The inventory changed during the task running now: `groups` must be refreshed.
    groups_stale: bool,
    /// The current play's variables without a host's: `hostvars` of a host `add_host` added
    /// before any play targeted it is built on them.
    play_vars: Option<VarStack>,
    /// The hosts of the batch being run: a `run_once` task's result reaches each.
    batch: Vec<String>,
    /// `rdeploy approve`: the first approval gate reached is passed without asking.
    approved: bool,
}

impl<'r> Runner<'r> {
    async fn play(&mut self, c: &Checked, index: usize, play: &'r Play, batches: &[Vec<String>]) {
        self.play = Some(play);
        let all: Vec<String> = batches.iter().flatten().cloned().collect();
        let inv = Arc::clone(&self.inventory);
        let shared_stack = play_stack(
            &inv,
            &c.playbook,
            play,
            &all,
            &c.settings,
            self.shared.opts.check,
        );
        self.play_layers = Arc::new(shared_stack.layers());
        let stacks = host_stacks(&inv, &shared_stack, &all);
        self.play_vars = Some(shared_stack.clone());
        crate::vars::register_secret_vars(&shared_stack);
        stacks.values().for_each(crate::vars::register_secret_vars);
        let name = crate::vars::play_name(play, &shared_stack);
        self.reporter.emit(&Event::PlayStart {
            name: &name,
            hosts: all.len(),
            batches: batches.len(),
        });
        if let Some(run) = &self.shared.opts.run {
            let release = play
                .release_label
                .as_ref()
                .map(|n| crate::vars::render_with(n, &shared_stack));
            *run.release.lock().unwrap_or_else(|e| e.into_inner()) = release.clone();
            run.journal.note(&Record::Play {
                index,
                name: name.clone(),
                release,
            });
        }
        self.end_play = false;
        for h in &all {
            if !self.states.contains_key(h) {
                let conn = match inv.hosts.get(h) {
                    Some(host) => {
                        Connection::from_vars(&inv.vars_of(host)).unwrap_or(Connection::Ssh)
                    }
                    None => Connection::Ssh,
                };
                self.states
                    .insert(h.clone(), HostState::new(h.clone(), conn));
            }
            if let Some(st) = self.states.get_mut(h) {
                st.roles_ran.clear();
                st.clear_exported();
                st.notified.clear();
                st.due.clear();
            }
        }
        let play_scope = Scope {
            keywords: {
                let mut k = play.keywords.clone();
                k.when.clear();
                k.vars.clear();
                k
            },
            tags: play.keywords.tags.iter().map(|t| t.name.clone()).collect(),
            ..Scope::default()
        };
        let step_gates = crate::plan::build::step_gates(play, all.len());
        for (i, batch) in batches.iter().enumerate() {
            if self.end_play || self.halted || self.stopping() {
                break;
            }
            if self
                .shared
                .opts
                .done
                .get(&index)
                .is_some_and(|done| batch.iter().all(|h| done.contains(h)))
            {
                let msg = format!(
                    "batch {}/{} ({}) was finished by the interrupted run: skipped",
                    i + 1,
                    batches.len(),
                    batch.join(", ")
                );
                self.reporter.emit(&Event::Warning(&msg));
                continue;
            }
            if let Some(why) = window_closed(play) {
                let msg = format!("batch {}/{} not started: {why}", i + 1, batches.len());
                if self.shared.opts.check {
                    let msg = format!("{msg} (check mode goes on)");
                    self.reporter.emit(&Event::Warning(&msg));
                } else {
                    self.reporter.emit(&Event::Warning(&msg));
                    self.outcome = self.outcome.max(Outcome::OutsideWindow);
                    self.halted = true;
                    break;
                }
            }
            // `rdeploy approve` passes the gates before the first batch the resumed run runs
            // (the one it stopped at, or the one after an inconclusive analysis).
            let given = std::mem::take(&mut self.approved);
            let mut before: Vec<&Approval> = play
                .approve
                .iter()
                .filter(|g| g.before_batch == i + 1)
                .collect();
            if i > 0
                && let Some(gs) = step_gates.get(i - 1)
            {
                before.extend(gs.iter().filter_map(|g| g.approve.as_ref()));
            }
            if given && before.is_empty() {
                let msg = format!(
                    "approval given (rdeploy approve): going on with batch {}/{}",
                    i + 1,
                    batches.len()
                );
                self.reporter.emit(&Event::Warning(&msg));
            }
            let mut approved = true;
            for g in before {
                if !self.approval(g, i + 1, batches.len(), given).await {
                    approved = false;
                    break;
                }
            }
            if !approved {
                self.outcome = self.outcome.max(Outcome::AwaitingApproval);
                self.halted = true;
                break;
            }
            self.reporter.emit(&Event::BatchStart {
                index: i + 1,
                total: batches.len(),
                hosts: batch,
            });
            if let Some(run) = &self.shared.opts.run {
                run.journal.note(&Record::Batch {
                    play: index,
                    index: i + 1,
                    hosts: batch.clone(),
                });
            }
            self.started_batches.push(batch.clone());
            self.release_all_but(batch).await;
            let magic = Arc::new(play_magic(&self.inventory, &all, batch));
            self.batch = batch.clone();
            for h in batch {
                if let (Some(stack), Some(st)) = (stacks.get(h), self.states.get_mut(h)) {
                    st.set_base(Arc::new(stack.layers()));
                    st.magic = Arc::clone(&magic);
                    st.ended = false;
                }
            }
            let hosts: Vec<String> = batch
                .iter()
                .filter(|h| self.states.get(*h).is_some_and(|s| s.active(false)))
                .cloned()
                .collect();
            // The handler list is rebuilt per batch: indexes into an earlier one mean nothing.
            self.handlers = static_handlers(play, &play_scope);
            self.render_handler_names(0);
            for st in self.states.values_mut() {
                st.due.clear();
            }
            if play_gathers_facts(play) {
                self.gather(play, &play_scope, &hosts).await;
            }
            self.section(&play.pre_tasks, &play_scope, &hosts, play)
                .await;
            for r in &play.roles {
                self.role(r, &play_scope, &hosts).await;
            }
            self.items(&play.tasks, &play_scope, &hosts).await;
            self.flush_handlers(play, &hosts).await;
            self.section(&play.post_tasks, &play_scope, &hosts, play)
                .await;
            // Reads run ahead serve the next tasks only, never across a gate or a soak.
            for h in batch {
                if let Some(st) = self.states.get_mut(h) {
                    st.forget_reads();
                }
            }
            self.halt_on_refused_identity(batch);
            if self.stopping() {
                break;
            }
            let gate_started = Instant::now();
            let gates = step_gates.get(i).map(Vec::as_slice).unwrap_or_default();
            // A canary step's own pause replaces the play's soak (the longest, when merged
            // steps have several).
            let soak = gates.iter().filter_map(|g| g.pause).max().or(play.soak);
            let mut verdict = self.gate(play, (i + 1, batches.len()), batch, soak).await;
            let mut awaiting = None;
            if verdict.is_none() {
                match self
                    .analyses(play, gates, (index, i + 1, batches.len()), batch)
                    .await
                {
                    analysis::Concluded::Passed => {}
                    analysis::Concluded::Failed(why) => verdict = Some(why),
                    analysis::Concluded::Inconclusive(why) => awaiting = Some(why),
                }
            }
            self.timing.probes_s += gate_started.elapsed().as_secs_f64();
            if verdict.is_none() && awaiting.is_none() && self.stopping() {
                // A signal or the deadline cut the gates short: the batch is not recorded as
                // finished, so `rdeploy resume` runs it again (its changes are in place, its
                // gates are not passed yet).
                break;
            }
            if let Some(why) = awaiting {
                // Not rolled back, not let through: a person decides. The batch is finished
                // (its tasks ran, its health gate passed), so `rdeploy approve` goes on after it.
                let msg = format!(
                    "batch {}/{}: {why}: neither rolled back nor let through, a person decides",
                    i + 1,
                    batches.len()
                );
                self.reporter.emit(&Event::Warning(&msg));
                let g = Approval {
                    before_batch: i + 2,
                    message: format!("{why}\nGo on?"),
                    timeout: None,
                };
                if !self.approval(&g, i + 2, batches.len(), false).await {
                    if let Some(run) = &self.shared.opts.run {
                        run.journal.note(&Record::BatchEnd {
                            play: index,
                            index: i + 1,
                            hosts: batch.clone(),
                        });
                    }
                    self.outcome = self.outcome.max(Outcome::AwaitingApproval);
                    self.halted = true;
                    break;
                }
            }
            if i + 1 == batches.len() && gates.iter().any(|g| g.approve.is_some()) {
                let msg = "the last canary step's approval has no next step to hold: not asked";
                self.reporter.emit(&Event::Warning(msg));
            }
            if let Some(reason) = verdict {
                let pos = gate::BatchPos {
                    play: index,
                    index: i + 1,
                    total: batches.len(),
                };
                let rollback_started = Instant::now();
                self.fail_batch(play, &play_scope, pos, batch, &reason)
                    .await;
                self.timing.rollback_s += rollback_started.elapsed().as_secs_f64();
                break;
            }
            if let Some(run) = &self.shared.opts.run {
                run.journal.note(&Record::BatchEnd {
                    play: index,
                    index: i + 1,
                    hosts: batch.clone(),
                });
            }
        }
    }

    /// More hosts than `--forks` take part in a step: each host closes its connections when
    /// its part is done, so that no more than `--forks` hosts (those in flight) hold any.
    fn crowded(&self, hosts: usize) -> bool {
        hosts > self.shared.opts.forks.max(1)
    }

    /// Closes the connections of every host but `keep` (a new batch starts: the hosts of
    /// earlier batches are out of flight; a rollback reopens what it needs).
    async fn release_all_but(&mut self, keep: &[String]) {
        for (h, st) in self.states.iter_mut() {
            if st.connected() && !keep.contains(h) {
                st.release().await;
            }
        }
    }

    /// The play's approval gate before batch `index` of `total`: whether to go on. Passed
    /// by `rdeploy approve` (the first gate a resumed run reaches) and in check mode; on a
    /// terminal the operator answers `y` within the gate's timeout; otherwise (no terminal,
    /// another answer, no answer in time) the run stops awaiting approval.
    async fn approval(&mut self, g: &Approval, index: usize, total: usize, given: bool) -> bool {
        // An inconclusive analysis of the last batch holds the end of the run, not a batch.
        let place = if index > total {
            format!("after batch {total}/{total}")
        } else {
            format!("before batch {index}/{total}")
        };
        if given {
            let msg = format!("approval {place} given (rdeploy approve)");
            self.reporter.emit(&Event::Warning(&msg));
            return true;
        }
        if self.shared.opts.check {
            let msg = format!(
                "approval gate {place} ({}): not asked in check mode",
                g.message
            );
            self.reporter.emit(&Event::Warning(&msg));
            return true;
        }
        let Some(mut term) = crate::cli::prompt::Terminal::open() else {
            return false;
        };
        let question = format!("[approval {place}]\n{} (y/N)", g.message.trim());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _lifted = crate::report::progress::lifted();
        // A thread of its own, not the runtime's: a read the timeout gave up on must not keep
        // the process from ending.
        std::thread::spawn(move || {
            use crate::resolve::Asker;
            term.say("");
            let _ = tx.send(term.ask(&question, true));
        });
        let wait = g.timeout.unwrap_or(APPROVAL_TIMEOUT);
        let stop = self.shared.stop.clone();
        let answer = tokio::select! {
            r = rx => r.ok().and_then(Result::ok),
            () = tokio::time::sleep(wait) => None,
            () = async {
                while stop.load(Ordering::SeqCst) == 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            } => None,
        };
        matches!(
            answer.as_deref().map(|a| a.trim().to_ascii_lowercase()),
            Some(a) if a == "y" || a == "yes"
        )
    }

    /// A signal or the deadline asked the run to stop.
    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst) != 0
    }

    /// A host key refusal in this batch stops new batches: the fleet may be under attack or
    /// misconfigured, and going on would spread a deployment over hosts we cannot vouch for.
    fn halt_on_refused_identity(&mut self, batch: &[String]) {
        let refused: Vec<&str> = batch
            .iter()
            .filter(|h| {
                self.states
                    .get(*h)
                    .is_some_and(|s| s.recap.host_key_refused())
            })
            .map(String::as_str)
            .collect();
        let exhausted = batch.iter().any(|h| {
            self.states
                .get(h)
                .is_some_and(|s| s.recap.controller_exhausted())
        });
        if exhausted {
            // Every later host would fail the same way, for a reason that is not theirs.
            self.halted = true;
            let msg = format!(
                "the controller ran out of open files or memory (open-files limit {}): no new batch is started",
                crate::limits::open_files_limit()
                    .map_or("unlimited".to_string(), |n| n.to_string())
            );
            self.reporter.emit(&Event::Warning(&msg));
        }
        if refused.is_empty() {
            return;
        }
        self.halted = true;
        let msg = format!(
            "host key refused for {}: no new batch is started",
            refused.join(", ")
        );
        self.reporter.emit(&Event::Warning(&msg));
    }

    async fn section(&mut self, items: &[TaskItem], scope: &Scope, hosts: &[String], play: &Play) {
        self.items(items, scope, hosts).await;
        self.flush_handlers(play, hosts).await;
    }

    /// The implicit fact gathering, under the play's keywords (`become`, `environment`).
    async fn gather(&mut self, play: &Play, scope: &Scope, hosts: &[String]) {
        let t = gather_task(play);
        self.run_task(&t, scope, hosts, false, "Gathering Facts", &[])
            .await;
    }

    /// Runs a role instance: its dependencies, then its tasks, with its own variables in
    /// scope. Unless it allows duplicates ([`RoleRef::allow_duplicates`]: by default
    /// `roles:` entries and dependencies do not), it is skipped silently, as in Ansible, on a
    /// host where the same instance already ran a task in this play.
    async fn role(&mut self, r: &RoleRef, outer: &Scope, hosts: &[String]) {
        let scope = role_scope(r, outer);
        let hosts: Vec<String> = match scope.role.as_ref().map(|i| &i.key) {
            Some(key) if !r.allow_duplicates => hosts
                .iter()
                .filter(|h| {
                    self.states
                        .get(*h)
                        .is_some_and(|s| !s.roles_ran.contains(key))
                })
                .cloned()
                .collect(),
            _ => hosts.to_vec(),
        };
        if hosts.is_empty() {
            return;
        }
        for d in &r.role.dependencies {
            Box::pin(self.role(d, &scope, &hosts)).await;
        }
        Box::pin(self.items(&r.role.tasks, &scope, &hosts)).await;
    }

    async fn items(&mut self, items: &[TaskItem], scope: &Scope, hosts: &[String]) {
        for (i, it) in items.iter().enumerate() {
            if self.end_play || self.stopping() {
                return;
            }
            let active: Vec<String> = hosts
                .iter()
                .filter(|h| {
                    self.states
                        .get(*h)
                        .is_some_and(|s| s.active(scope.in_always))
                })
                .cloned()
                .collect();
            if active.is_empty() {
                return;
            }
            match it {
                TaskItem::Task(t) => self.task(t, scope, &active, &items[i + 1..]).await,
                TaskItem::Block(b) => {
                    // The block's `when:` is evaluated by each task inside (see `Scope::when`).
                    let inner = scope.enter_block(b);
                    let entered = active;
                    Box::pin(self.items(&b.block, &inner, &entered)).await;
                    let failed: Vec<String> = entered
                        .iter()
                        .filter(|h| {
                            self.states
                                .get(*h)
                                .is_some_and(|s| s.failed && !s.unreachable)
                        })
                        .cloned()
                        .collect();
                    if !b.rescue.is_empty() && !failed.is_empty() {
                        for h in &failed {
                            if let Some(s) = self.states.get_mut(h) {
                                s.failed = false;
                                s.recap.failed = s.recap.failed.saturating_sub(1);
                                s.recap.rescued += 1;
                                if let Some((task, result)) = s.last_failure.take() {
                                    s.set_runtime("ansible_failed_task", task);
                                    s.set_runtime("ansible_failed_result", result);
                                }
                            }
                        }
                        Box::pin(self.items(&b.rescue, &inner, &failed)).await;
                    }
                    if !b.always.is_empty() {
                        let mut always = inner.clone();
                        always.in_always = true;
                        Box::pin(self.items(&b.always, &always, &entered)).await;
                    }
                }
                TaskItem::ImportTasks(i) => {
                    let inner = scope.enter(&i.keywords);
                    Box::pin(self.items(&i.tasks, &inner, &active)).await;
                }
                TaskItem::ImportRole(r) => Box::pin(self.role(r, scope, &active)).await,
            }
        }
    }

    /// Runs task `t`; `rest` are the items after it (their checks may run ahead).
    async fn task(&mut self, t: &Task, scope: &Scope, hosts: &[String], rest: &[TaskItem]) {
        let label = task_label(t, scope);
        if !self.started {
            let name = t
                .name
                .as_ref()
                .and_then(crate::yaml::Node::scalar_string)
                .unwrap_or_default();
            if self
                .start_at
                .as_deref()
                .is_some_and(|s| s == name || s == label)
            {
                self.started = true;
            } else {
                return;
            }
        }
        let mut tags = scope.tags.clone();
        tags.extend(t.keywords.tags.iter().map(|x| x.name.clone()));
        let is_meta_or_include = matches!(t.action.module.as_str(), "meta");
        if !is_meta_or_include && !tags_selected(&tags, &self.tags.0, &self.tags.1) {
            return;
        }
        let results = self.run_task(t, scope, hosts, false, &label, rest).await;
        self.after(t, scope, results).await;
    }

    /// Includes and `meta:` after a task ran.
    async fn after(&mut self, t: &Task, scope: &Scope, results: Vec<(String, HostOutcome, Flow)>) {
        let include_hosts: Vec<String> = results
            .iter()
            .filter(|(_, o, f)| *f == Flow::Include && o.status != Status::Skipped)
            .map(|(h, _, _)| h.clone())
            .collect();
        for (h, _, f) in &results {
            if let Flow::Meta(m) = f {
                match m.as_str() {
                    "end_host" => {
                        if let Some(s) = self.states.get_mut(h) {
                            s.ended = true;
                        }
                    }
                    "end_play" => self.end_play = true,
                    "clear_facts" => {
                        if let Some(s) = self.states.get_mut(h) {
                            s.clear_runtime(|k| !k.starts_with("ansible_"));
                        }
                    }
                    _ => {}
                }
            }
        }
        if results
            .iter()
            .any(|(_, _, f)| *f == Flow::Meta("flush_handlers".into()))
        {
            let hosts: Vec<String> = results.iter().map(|(h, _, _)| h.clone()).collect();
            if let Some(play) = self.play {
                Box::pin(self.flush_handlers(play, &hosts)).await;
            }
        }
        if include_hosts.is_empty() {
            return;
        }
        // An include's own vars apply to what it includes; its other keywords do not.
        let mut inner = scope.clone();
        inner.vars.extend(
            t.keywords
                .vars
                .iter()
                .map(|(k, n)| (k.clone(), n.to_json())),
        );
        if let Some(apply) = &t.apply {
            inner = inner.enter(apply);
        }
        if t.loop_over.is_some() {
            // A looping include runs what it includes once per item, with the item in scope.
            let per_host: Vec<(String, Vec<Json>)> = results
                .iter()
                .filter(|(h, _, _)| include_hosts.contains(h))
                .map(|(h, o, _)| {
                    let items = o
                        .result
                        .get("results")
                        .and_then(Json::as_array)
                        .cloned()
                        .unwrap_or_default();
                    (h.clone(), items)
                })
                .collect();
            let rounds = per_host.iter().map(|(_, i)| i.len()).max().unwrap_or(0);
            for round in 0..rounds {
                let mut hosts = Vec::new();
                for (h, items) in &per_host {
                    let Some(Json::Object(r)) = items.get(round) else {
                        continue;
                    };
                    if r.get("skipped") == Some(&Json::Bool(true))
                        || r.get("failed") == Some(&Json::Bool(true))
                    {
                        continue;
                    }
                    let var = r
                        .get("ansible_loop_var")
                        .and_then(Json::as_str)
                        .unwrap_or("item")
                        .to_string();
                    let mut frame = IndexMap::new();
                    frame.insert(var.clone(), r.get(&var).cloned().unwrap_or(Json::Null));
                    // `loop_control: index_var` reaches the included tasks too.
                    if let Some(iv) = r.get("ansible_index_var").and_then(Json::as_str) {
                        frame.insert(iv.to_string(), r.get(iv).cloned().unwrap_or(Json::Null));
                    }
                    if let Some(st) = self.states.get_mut(h) {
                        st.scoped.push(frame);
                        hosts.push((h.clone(), r.clone()));
                    }
                }
                self.run_included(t, &inner, &hosts).await;
                for (h, _) in &hosts {
                    if let Some(st) = self.states.get_mut(h) {
                        st.scoped.pop();
                    }
                }
            }
        } else {
            let hosts: Vec<(String, serde_json::Map<String, Json>)> = results
                .iter()
                .filter(|(h, _, _)| include_hosts.contains(h))
                .map(|(h, o, _)| (h.clone(), o.result.clone()))
                .collect();
            self.run_included(t, &inner, &hosts).await;
        }
    }

    /// Runs what include `t` included on each host; `hosts` pairs each host with its result
    /// (the item's, in a loop), which names what a dynamic include loaded for it. Hosts that
    /// named the same file or role run it together.
    async fn run_included(
        &mut self,
        t: &Task,
        inner: &Scope,
        hosts: &[(String, serde_json::Map<String, Json>)],
    ) {
        let names: Vec<String> = hosts.iter().map(|(h, _)| h.clone()).collect();
        if names.is_empty() {
            return;
        }
        match &t.included {
            Some(Included::Tasks { tasks, .. }) => {
                let from = self.handlers.len();
                import_role_handlers(tasks, inner, &mut self.handlers);
                self.render_handler_names(from);
                Box::pin(self.items(tasks, inner, &names)).await;
            }
            Some(Included::Role(r)) => {
                let from = self.handlers.len();
                role_handlers(r, inner, &mut self.handlers);
                self.render_handler_names(from);
                Box::pin(self.role(r, inner, &names)).await;
                self.export_if_public(t, r, &names);
            }
            Some(Included::Dynamic(_)) => {
                let mut groups: Vec<(Arc<Loaded>, Vec<String>)> = Vec::new();
                for (h, r) in hosts {
                    let Some(loaded) = self.dynamic_loaded(t, r) else {
                        continue;
                    };
                    match groups.iter_mut().find(|(l, _)| Arc::ptr_eq(l, &loaded)) {
                        Some((_, hs)) => hs.push(h.clone()),
                        None => groups.push((loaded, vec![h.clone()])),
                    }
                }
                for (loaded, hs) in groups {
                    match &*loaded {
                        Loaded::Tasks(_, tasks) => {
                            let from = self.handlers.len();
                            import_role_handlers(tasks, inner, &mut self.handlers);
                            self.render_handler_names(from);
                            Box::pin(self.items(tasks, inner, &hs)).await;
                        }
                        Loaded::Role(r) => {
                            let mut r = (**r).clone();
                            (r.origin, r.allow_duplicates) =
                                crate::playbook::tasks::include_identity(t);
                            // Its handlers can be notified from now on, as in Ansible.
                            let from = self.handlers.len();
                            role_handlers(&r, inner, &mut self.handlers);
                            self.render_handler_names(from);
                            Box::pin(self.role(&r, inner, &hs)).await;
                            self.export_if_public(t, &r, &hs);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Renders the templated names of the handlers from index `from` on, once, with the
    /// play's variables and the handler's role instance's, as Ansible does: notifications
    /// then match the rendered name. A name that needs more (a host's variables) is kept as
    /// written and matches only that text.
    fn render_handler_names(&mut self, from: usize) {
        let env = Arc::clone(&self.shared.env);
        for (h, scope) in self.handlers.iter_mut().skip(from) {
            let Some(node) = h.task.name.as_mut() else {
                continue;
            };
            let Some(text) = node.as_str().filter(|t| template::has_template(t)) else {
                continue;
            };
            let text = text.to_string();
            let mut layers: Vec<Layer> = (*self.play_layers).clone();
            layers.resize_with(Tier::ALL.len().max(layers.len()), Layer::new);
            for (tier, k, v) in &scope.role_vars {
                layers[*tier as usize].insert(k.clone(), template::VarValue::Template(v.clone()));
            }
            for (k, v) in &scope.vars {
                layers[Tier::Task as usize]
                    .insert(k.clone(), template::VarValue::Template(v.clone()));
            }
            let vars = template::LazyVars::new(layers, Arc::clone(&env));
            if let Ok(name) = template::render_str(&env, &text, &vars.to_value(), &node.loc) {
                node.kind = crate::yaml::Kind::Str {
                    value: name,
                    quoted: true,
                };
            }
        }
    }

    /// `include_role` with `public: true`: the role's defaults and `vars/` (its
    /// dependencies' first) are the play's from now on, on the hosts that ran it.
    fn export_if_public(&mut self, t: &Task, r: &RoleRef, hosts: &[String]) {
        let public = t
            .action
            .arg("public")
            .is_some_and(|n| crate::modules::spec::ansible_bool(n) == Some(true));
        if !public {
            return;
        }
        let mut s = VarStack::new();
        crate::vars::role_exports(r, &mut s);
        let mut vars = Vec::new();
        for (tier, layer) in Tier::ALL.iter().zip(s.layers()) {
            for (k, v) in layer {
                let (template::VarValue::Template(j) | template::VarValue::Data(j)) = v;
                vars.push((*tier, k, j));
            }
        }
        for h in hosts {
            if let Some(st) = self.states.get_mut(h) {
                st.export(vars.clone());
            }
        }
    }

    /// What a dynamic include loaded for the host whose include result is `r`.
    fn dynamic_loaded(&self, t: &Task, r: &serde_json::Map<String, Json>) -> Option<Arc<Loaded>> {
        let name = r.get("include")?.as_str()?.to_string();
        let args = r.get("include_args").and_then(Json::as_object);
        let arg = |k: &str| {
            args.and_then(|a| a.get(k))
                .and_then(Json::as_str)
                .map(str::to_string)
        };
        let from = FromFiles {
            tasks_from: arg("tasks_from"),
            vars_from: arg("vars_from"),
            defaults_from: arg("defaults_from"),
            handlers_from: arg("handlers_from"),
            no_validate: args
                .and_then(|a| a.get("rolespec_validate"))
                .is_some_and(|v| v == &Json::Bool(false)),
        };
        let key = (t.loc.clone(), t.action.module.clone(), name, from);
        let cache = self.shared.includes.lock().ok()?;
        cache.get(&key)?.as_ref().ok().cloned()
    }

    /// Runs the notified handlers on `hosts`, in the order of the play's handler list, each
    /// at most once per host. A handler notified by another handler runs in the same flush
    /// when it comes later in the list, at the next flush otherwise (as in Ansible).
    async fn flush_handlers(&mut self, play: &Play, hosts: &[String]) {
        let force = self.shared.opts.force_handlers
            || play
                .force_handlers
                .as_ref()
                .and_then(Val::literal)
                .unwrap_or(false);
        self.resolve_notifications(hosts);
        let mut i = 0;
        while i < self.handlers.len() {
            let mut targets: Vec<String> = Vec::new();
            for host in hosts {
                if let Some(s) = self.states.get_mut(host)
                    && (s.active(false) || (force && !s.unreachable))
                    && s.due.remove(&i)
                {
                    targets.push(host.clone());
                }
            }
            if !targets.is_empty() {
                let (h, scope) = self.handlers[i].clone();
                let label = task_label(&h.task, &scope);
                self.run_task(&h.task, &scope, &targets, true, &label, &[])
                    .await;
                self.resolve_notifications(hosts);
            }
            i += 1;
        }
    }

    /// Turns each host's notified names into the handlers they select (see [`notified_by`]).
    fn resolve_notifications(&mut self, hosts: &[String]) {
        for host in hosts {
            if let Some(st) = self.states.get_mut(host) {
                for name in std::mem::take(&mut st.notified) {
                    st.due.extend(notified_by(&self.handlers, &name));
                }
            }
        }
    }

    /// A notified name that no loaded handler answers (a templated `notify`, or a handler of
    /// an `include_role` that has not run) fails the host, as Ansible's missing-handler error.
    fn check_notified(&mut self, st: &mut HostState) {
        let missing: Vec<String> = st
            .notified
            .iter()
            .filter(|n| notified_by(&self.handlers, n).is_empty())
            .cloned()
            .collect();
        if missing.is_empty() {
            return;
        }
        for n in &missing {
            st.notified.remove(n);
        }
        st.failed = true;
        st.recap.failed += 1;
        let msg = format!(
            "{}: the notified handler '{}' was not found: no handler loaded in this play has \
             that name or listens to it",
            st.name,
            missing.join("', '")
        );
        self.reporter.emit(&Event::Warning(&msg));
    }

    /// Runs a task on `hosts` (in parallel, at most `forks` at once), reports each result.
    async fn run_task(
        &mut self,
        t: &Task,
        scope: &Scope,
        hosts: &[String],
        handler: bool,
        label: &str,
        rest: &[TaskItem],
    ) -> Vec<(String, HostOutcome, Flow)> {
        // `add_host` and `pause` bypass the host loop as in Ansible: they run once, on the
        // first host (a pause asks once per batch); a pause's result stays that host's, as in
        // Ansible (`register:` reaches the other hosts only with an explicit `run_once`).
        let explicit_once = matches!(
            t.keywords
                .run_once
                .as_ref()
                .or(scope.keywords.run_once.as_ref()),
            Some(Val::Lit { value: true, .. })
        );
        let module = crate::modules::canonical_name(&t.action.module);
        let run_once = explicit_once || matches!(module, "add_host" | "pause");
        let targets: Vec<String> = if run_once {
            hosts.iter().take(1).cloned().collect()
        } else {
            hosts.to_vec()
        };
        let shown = self.shown_label(t, scope, &targets, label);
        let label = shown.as_str();
        self.reporter.emit(&Event::TaskStart {
            label,
            handler,
            check: self.shared.opts.check,
            hosts: &targets,
        });
        let results = self.run_hosts(t, scope, &targets, label, rest).await;
        self.store_delegated_facts(&results);
        if run_once
            && (explicit_once || module != "pause")
            && let Some((_, first, _)) = results.first()
        {
            self.once_for_all(t, first, hosts);
        }
        let fatal = matches!(
            t.keywords
                .any_errors_fatal
                .as_ref()
                .or(scope.keywords.any_errors_fatal.as_ref()),
            Some(Val::Lit { value: true, .. })
        );
        if fatal
            && results
                .iter()
                .any(|(_, o, _)| o.status == Status::Failed && !o.ignored)
        {
            for h in hosts {
                if let Some(s) = self.states.get_mut(h) {
                    s.ended = true;
                }
            }
            self.end_play = true;
        }
        results
    }

    /// A `run_once` task's result applies to every host of the batch, as in Ansible: its
    /// `register:` and the facts it sets (`set_fact`, `include_vars`, gathered facts) reach
    /// every reachable host of the batch, also those an include did not run on; its failure
    /// stops the task's other hosts too (and a `rescue:` runs on each). As ansible-playbook
    /// 2.19 does, only the host that ran it prints a result and counts it in the recap.
    fn once_for_all(&mut self, t: &Task, first: &HostOutcome, hosts: &[String]) {
        let failed = first.status == Status::Failed && !first.ignored;
        let v = Json::Object(first.result.clone());
        let module = crate::modules::canonical_name(&t.action.module);
        let runtime_facts = matches!(module, "set_fact" | "include_vars");
        let items = first.result.get("results").and_then(Json::as_array);
        let facts: Vec<&serde_json::Map<String, Json>> = std::iter::once(&first.result)
            .chain(items.into_iter().flatten().filter_map(Json::as_object))
            .filter_map(|r| r.get("ansible_facts").and_then(Json::as_object))
            .collect();
        let ran = hosts.first();
        let reached: Vec<String> = self
            .batch
            .iter()
            .chain(hosts)
            .filter(|h| Some(*h) != ran)
            .cloned()
            .collect::<indexmap::IndexSet<String>>()
            .into_iter()
            .collect();
        for h in &reached {
            let Some(s) = self.states.get_mut(h) else {
                continue;
            };
            if s.unreachable {
                continue;
            }
            if let Some(reg) = &t.register {
                s.set_runtime(reg.name.clone(), v.clone());
            }
            if module != "debug" {
                for f in &facts {
                    if runtime_facts {
                        for (k, v) in *f {
                            s.set_runtime(k.clone(), v.clone());
                        }
                    } else {
                        facts::store(s, f);
                    }
                }
            }
            if hosts.contains(h) {
                s.failed |= failed;
            }
        }
    }

    /// `delegate_facts: true`: facts a host gathered for its delegate go to the delegate
    /// (also from each item of a loop over delegates).
    fn store_delegated_facts(&mut self, results: &[(String, HostOutcome, Flow)]) {
        for (_, o, _) in results {
            let items = o.result.get("results").and_then(Json::as_array);
            let each = std::iter::once(&o.result)
                .chain(items.into_iter().flatten().filter_map(Json::as_object));
            for r in each {
                let (Some(Json::String(target)), Some(Json::Object(f))) =
                    (r.get(facts::DELEGATED), r.get("ansible_facts"))
                else {
                    continue;
                };
                if let Some(s) = self.states.get_mut(target) {
                    facts::store(s, f);
                }
            }
        }
    }

    /// The per-host futures of one task; results are reported as they finish.
    async fn run_hosts(
        &mut self,
        t: &Task,
        scope: &Scope,
        hosts: &[String],
        label: &str,
        rest: &[TaskItem],
    ) -> Vec<(String, HostOutcome, Flow)> {
        let hostvars = self.hostvars();
        let ahead = self.ahead_of(rest, scope, &hostvars);
        let ctx = Arc::new(TaskCtx {
            shared: Arc::clone(&self.shared),
            task: t.clone(),
            scope: scope.clone(),
            hostvars,
            label: label.to_string(),
            ahead,
        });
        // `throttle: N` caps this task's hosts in flight below `--forks`.
        let throttle = match t
            .keywords
            .throttle
            .as_ref()
            .or(scope.keywords.throttle.as_ref())
        {
            Some(Val::Lit { value, .. }) if *value > 0 => Some(Arc::new(Semaphore::new(
                usize::try_from(*value).unwrap_or(1),
            ))),
            _ => None,
        };
        let task_started = Instant::now();
        let mut set = JoinSet::new();
        // Each host says when it gets its slot (for the progress bars' hosts in flight).
        let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel::<String>();
        let crowded = self.crowded(hosts.len());
        for h in hosts {
            let Some(st) = self.states.shift_remove(h) else {
                continue;
            };
            let ctx = Arc::clone(&ctx);
            let sem = Arc::clone(&self.sem);
            let throttle = throttle.clone();
            let started_tx = started_tx.clone();
            set.spawn(async move {
                let _throttled = match throttle {
                    Some(t) => t.acquire_owned().await.ok(),
                    None => None,
                };
                let _permit = sem.acquire_owned().await;
                let _ = started_tx.send(st.name.clone());
                let (mut st, outcome, flow) = run_on_host(ctx, st).await;
                if crowded {
                    // Out of flight until the next task: its slot's descriptors go to the next host.
                    st.release().await;
                }
                (st, outcome, flow)
            });
        }
        drop(started_tx);
        let mut done: HashMap<String, (HostState, HostOutcome, Flow)> = HashMap::new();
        loop {
            // Starts first: a host's start is always reported before its result.
            let joined = tokio::select! {
                biased;
                Some(host) = started.recv() => {
                    self.reporter.emit(&Event::HostStart { host: &host });
                    continue;
                }
                joined = set.join_next() => joined,
            };
            let Some(joined) = joined else {
                break;
            };
            match joined {
                Ok((mut st, mut outcome, flow)) => {
                    self.apply_inventory_changes(t, &mut st, &mut outcome);
                    // A module's warnings come first, as ansible-playbook prints them.
                    if let Some(Json::Array(ws)) = outcome.result.get("warnings") {
                        for w in ws.iter().filter_map(Json::as_str) {
                            self.reporter.emit(&Event::Warning(w));
                        }
                    }
                    self.reporter.emit(&Event::Host(&outcome));
                    if let Some(run) = &self.shared.opts.run {
                        run.journal.note(&Record::Result {
                            host: st.name.clone(),
                            task: label.to_string(),
                            status: journal_status(&outcome).to_string(),
                            step: (outcome.status == Status::Changed && st.backups.step > 0)
                                .then_some(st.backups.step),
                        });
                    }
                    done.insert(st.name.clone(), (st, outcome, flow));
                }
                Err(e) => {
                    let msg =
                        format!("internal error: a host's task panicked or was cancelled: {e}");
                    self.reporter.emit(&Event::Warning(&msg));
                }
            }
        }
        self.timing.tasks_s += task_started.elapsed().as_secs_f64();
        if t.keywords.delegate_to.is_some() || scope.keywords.delegate_to.is_some() {
            // A delegated step may have changed another host behind its connection's back.
            for st in self.states.values_mut() {
                st.forget_reads();
            }
        }
        let mut out = Vec::new();
        let role_key = scope.role.as_ref().map(|r| r.key.clone());
        for h in hosts {
            if let Some((mut st, o, f)) = done.remove(h) {
                if let Some(key) = &role_key
                    && !matches!(o.status, Status::Skipped | Status::Unreachable)
                {
                    st.roles_ran.insert(key.clone());
                }
                self.check_notified(&mut st);
                if let Some(plane) = st
                    .transport
                    .as_mut()
                    .and_then(crate::transport::AnyTransport::take_plane_note)
                {
                    self.reporter.emit(&Event::FilePlane {
                        host: h,
                        plane: &plane,
                    });
                }
                if let (Some(dir), false) = (&st.backups.dir, st.backups.shown) {
                    self.reporter.emit(&Event::StateDir { host: h, dir });
                    st.backups.shown = true;
                }
                self.states.insert(h.clone(), st);
                out.push((h.clone(), o, f));
            }
        }
        if std::mem::take(&mut self.groups_stale) {
            self.refresh_groups();
        }
        out
    }

    /// The tasks at the start of `rest` whose checks may run ahead of their turn: plain tasks
    /// of a module that allows it ([`Ahead`]), without loop, delegation, `run_once` or include,
    /// selected by the tags; the first other item ends the list.
    fn ahead_of(
        &self,
        rest: &[TaskItem],
        scope: &Scope,
        hostvars: &minijinja::Value,
    ) -> Vec<AheadTask> {
        const MAX_AHEAD: usize = 8;
        let mut out = Vec::new();
        for it in rest.iter().take(MAX_AHEAD) {
            let TaskItem::Task(t) = it else { break };
            let kind = crate::modules::implementation(t.action.module.as_str())
                .map_or(Ahead::No, |m| m.ahead());
            let k = &t.keywords;
            if kind == Ahead::No
                || t.loop_over.is_some()
                || t.included.is_some()
                || k.delegate_to.is_some()
                || k.run_once.is_some()
                || scope.keywords.run_once.is_some()
                || scope.keywords.delegate_to.is_some()
            {
                break;
            }
            let mut tags = scope.tags.clone();
            tags.extend(k.tags.iter().map(|x| x.name.clone()));
            if !tags_selected(&tags, &self.tags.0, &self.tags.1) {
                continue;
            }
            out.push(AheadTask {
                ctx: Arc::new(TaskCtx {
                    shared: Arc::clone(&self.shared),
                    task: (**t).clone(),
                    scope: scope.clone(),
                    hostvars: hostvars.clone(),
                    label: task_label(t, scope),
                    ahead: Vec::new(),
                }),
                kind,
            });
        }
        out
    }

    /// `add_host`/`group_by` results (the task's, or each item's) change the inventory, in the
    /// order they come back, as Ansible's strategy applies them; a result is `changed` when the
    /// inventory changed (unless the task has `changed_when`). Later tasks see the new
    /// `groups`, later plays the new hosts.
    fn apply_inventory_changes(&mut self, t: &Task, st: &mut HostState, o: &mut HostOutcome) {
        let module = crate::modules::canonical_name(&t.action.module);
        if !matches!(module, "add_host" | "group_by") {
            return;
        }
        let host = o.host.clone();
        let judge = t.changed_when.is_empty();
        let inv = Arc::make_mut(&mut self.inventory);
        let mut any = false;
        let mut added = Vec::new();
        let mut apply = |r: &mut serde_json::Map<String, Json>| -> bool {
            if r.get("failed") == Some(&Json::Bool(true))
                || r.get("skipped") == Some(&Json::Bool(true))
            {
                return false;
            }
            let changed = if let Some(Json::Object(add)) = r.get(actions::ADD_HOST) {
                let name = add
                    .get("host_name")
                    .and_then(Json::as_str)
                    .unwrap_or_default();
                let groups: Vec<String> = add
                    .get("groups")
                    .and_then(Json::as_array)
                    .map(|g| {
                        g.iter()
                            .filter_map(Json::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                let mut vars = add
                    .get("host_vars")
                    .and_then(Json::as_object)
                    .cloned()
                    .unwrap_or_default();
                // Ansible sets `ansible_ssh_port` from `NAME:PORT`; rdeploy reads `ansible_port`.
                if let Some(p) = vars.get("ansible_ssh_port").cloned() {
                    vars.entry("ansible_port".to_string()).or_insert(p);
                }
                let changed = !name.is_empty() && inv.add_dynamic_host(name, &groups, &vars);
                if changed {
                    added.push((name.to_string(), groups, vars));
                }
                changed
            } else if let Some(Json::String(group)) = r.get(actions::ADD_GROUP) {
                let parents: Vec<String> = r
                    .get("parent_groups")
                    .and_then(Json::as_array)
                    .map(|g| {
                        g.iter()
                            .filter_map(Json::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                inv.add_dynamic_group(&host, group, &parents)
            } else {
                false
            };
            any |= changed;
            if changed && judge {
                r.insert("changed".into(), Json::Bool(true));
            }
            changed
        };
        let mut changed = false;
        if let Some(Json::Array(items)) = o.result.get_mut("results") {
            for (i, item) in items.iter_mut().enumerate() {
                if let Json::Object(r) = item
                    && apply(r)
                {
                    changed = true;
                    if judge && let Some(io) = o.items.get_mut(i) {
                        io.status = Status::Changed;
                    }
                }
            }
        } else {
            changed = apply(&mut o.result);
        }
        // A broken `group_vars/NAME` of a group made just now fails the task naming it.
        let errors = std::mem::take(&mut Arc::make_mut(&mut self.inventory).dynamic_errors);
        if !errors.is_empty() {
            let msg = crate::diag::Diagnostics(errors).to_string();
            if matches!(o.status, Status::Ok | Status::Changed) {
                st.recap.ok = st.recap.ok.saturating_sub(1);
            }
            if o.status == Status::Changed {
                st.recap.changed = st.recap.changed.saturating_sub(1);
            }
            o.status = Status::Failed;
            o.msg = Some(msg.clone());
            o.result.insert("changed".into(), Json::Bool(false));
            o.result.insert("failed".into(), Json::Bool(true));
            o.result.insert("msg".into(), Json::from(msg));
            st.failed = true;
            st.recap.failed += 1;
        }
        if let Some(run) = &self.shared.opts.run {
            // So that `rdeploy rollback` can reach the host again.
            for (host, groups, vars) in added {
                let vars = vars
                    .into_iter()
                    .filter(|(k, _)| {
                        (k.starts_with("ansible_") || k == "rdeploy_state_dir")
                            && !k.contains("pass")
                    })
                    .collect();
                run.journal.note(&Record::AddedHost { host, groups, vars });
            }
        }
        if any {
            self.inventory_changed = true;
            if let Ok(mut g) = self.shared.inventory.write() {
                *g = Arc::clone(&self.inventory);
            }
            // The task's hosts are out of `states` until it ends: refreshed then.
            self.groups_stale = true;
        }
        if changed && judge && o.status == Status::Ok {
            o.status = Status::Changed;
            o.result.insert("changed".into(), Json::Bool(true));
            st.recap.changed += 1;
            if let Some(reg) = &t.register {
                let mut r = o.result.clone();
                r.insert("failed".into(), Json::Bool(false));
                st.set_runtime(reg.name.clone(), Json::Object(r));
            }
        }
    }

    /// `groups` (and each host's `group_names`) after the inventory changed mid-play.
    fn refresh_groups(&mut self) {
        let groups = template::json_to_value(&crate::vars::groups_value(&self.inventory));
        for st in self.states.values_mut() {
            let mut magic: Vec<(String, minijinja::Value)> = st.magic.as_ref().clone();
            for (k, v) in magic.iter_mut() {
                if k == "groups" {
                    *v = groups.clone();
                }
            }
            st.magic = Arc::new(magic);
            if let Some(h) = self.inventory.hosts.get(&st.name) {
                st.set_runtime("group_names".to_string(), Json::from(h.groups.clone()));
            }
        }
    }

    /// A task's label with its templated name rendered, as Ansible shows it: with the
    /// variables of the first host the task runs on (the play's, the host's, registered ones,
    /// an include's loop variable). An expression that does not render (a loop's `item`, an
    /// undefined variable) is shown as written; Ansible 2.19 shows an `<< error ... >>` note in
    /// its place.
    fn shown_label(&mut self, t: &Task, scope: &Scope, hosts: &[String], label: &str) -> String {
        if !template::has_template(label) {
            return label.to_string();
        }
        let Some(first) = hosts.first() else {
            return label.to_string();
        };
        let hostvars = self.hostvars();
        let Some(st) = self.states.get_mut(first) else {
            return label.to_string();
        };
        let vars = task::vars_at(&self.shared, scope, &hostvars, st, &t.keywords.vars);
        template::render_name(&self.shared.env, label, &vars.to_value(), &t.loc)
    }

    /// `hostvars` for the next task: every host's current variables.
    fn hostvars(&mut self) -> minijinja::Value {
        let mut layers: IndexMap<String, Arc<Vec<Layer>>> = self
            .states
            .iter_mut()
            .map(|(h, s)| (h.clone(), s.layers()))
            .collect();
        // Hosts `add_host` added that no play has targeted yet: their inventory variables.
        if self.inventory_changed
            && let Some(shared) = &self.play_vars
        {
            for (name, host) in &self.inventory.hosts {
                if !layers.contains_key(name) && host.loc.is_none() && !host.implicit {
                    let stack = crate::vars::host_stack(shared, host, &self.inventory.data_texts);
                    layers.insert(name.clone(), Arc::new(stack.layers()));
                }
            }
        }
        HostVars::new(layers, Arc::clone(&self.shared.env)).to_value()
    }
}

/// The scope's keywords after entering a block/role/import with keywords `child`: the
/// child's own settings win, the scope's fill the rest. Conditions, vars and tags are
/// handled separately by the walker.
fn inherit(scope: &mut Keywords, child: &Keywords) {
    let mut k = child.clone();
    k.inherit(scope);
    k.when.clear();
    k.vars.clear();
    k.tags.clear();
    *scope = k;
}

/// The scope inside role instance `r` entered from `outer`: the entry's keywords (its
/// `when` included), the role's name and directory, and the instance's variables (what its
/// dependencies export, its defaults, `vars/` and parameters), and the instance's identity.
fn role_scope(r: &RoleRef, outer: &Scope) -> Scope {
    let mut scope = outer.enter(&r.keywords);
    let key = {
        let json = |v: &[(String, crate::yaml::Node)]| -> Vec<(String, Json)> {
            v.iter().map(|(k, n)| (k.clone(), n.to_json())).collect()
        };
        let when: Vec<Json> = r.keywords.when.iter().map(|n| n.to_json()).collect();
        let tags: Vec<&str> = r.keywords.tags.iter().map(|t| t.name.as_str()).collect();
        serde_json::json!([
            r.origin,
            r.role.path.display().to_string(),
            json(&r.params),
            when,
            tags,
            json(&r.keywords.vars),
        ])
        .to_string()
    };
    scope.role = Some(RoleInfo {
        name: r.name.clone(),
        path: r.role.path.clone(),
        key,
    });
    let mut s = VarStack::new();
    role_vars(r, &mut s);
    for (tier, layer) in Tier::ALL.iter().zip(s.layers()) {
        for (k, v) in layer {
            let (template::VarValue::Template(j) | template::VarValue::Data(j)) = v;
            scope.role_vars.push((*tier, k, j));
        }
    }
    scope
}

/// The handlers of role instance `r` (dependencies first, then its own, then those of roles
/// its tasks import), each with the instance's scope.
fn role_handlers(r: &RoleRef, outer: &Scope, out: &mut Vec<(Handler, Scope)>) {
    let scope = role_scope(r, outer);
    for d in &r.role.dependencies {
        role_handlers(d, &scope, out);
    }
    out.extend(r.role.handlers.iter().map(|h| (h.clone(), scope.clone())));
    import_role_handlers(&r.role.tasks, &scope, out);
}

/// The handlers of the roles `import_role` brings into `items` (blocks and imports
/// included), each with the scope at its import.
fn import_role_handlers(items: &[TaskItem], scope: &Scope, out: &mut Vec<(Handler, Scope)>) {
    for it in items {
        match it {
            TaskItem::Task(_) => {}
            TaskItem::Block(b) => {
                let inner = scope.enter_block(b);
                for list in [&b.block, &b.rescue, &b.always] {
                    import_role_handlers(list, &inner, out);
                }
            }
            TaskItem::ImportTasks(i) => {
                import_role_handlers(&i.tasks, &scope.enter(&i.keywords), out)
            }
            TaskItem::ImportRole(r) => role_handlers(r, scope, out),
        }
    }
}

/// The play's handler list before any `include_role` runs, in Ansible's load order: the
/// handlers of the play's roles, the play's own, then those of imported roles.
fn static_handlers(play: &Play, play_scope: &Scope) -> Vec<(Handler, Scope)> {
    let mut out = Vec::new();
    for r in &play.roles {
        role_handlers(r, play_scope, &mut out);
    }
    out.extend(
        play.handlers
            .iter()
            .map(|h| (h.clone(), play_scope.clone())),
    );
    for list in [&play.pre_tasks, &play.tasks, &play.post_tasks] {
        import_role_handlers(list, play_scope, &mut out);
    }
    out
}

/// The handlers (indexes into `handlers`) a notification of `name` selects, as Ansible 2.19
/// does: by name (`NAME` or `ROLE : NAME`), only the last loaded handler of that name (a
/// role listed twice with other parameters runs its handler once, in its last instance's
/// scope); by `listen` topic, every handler listening to it, the last loaded of each name.
fn notified_by(handlers: &[(Handler, Scope)], name: &str) -> Vec<usize> {
    let handler_name = |(h, _): &(Handler, Scope)| {
        h.task
            .name
            .as_ref()
            .and_then(crate::yaml::Node::scalar_string)
    };
    let mut out = Vec::new();
    let by_name = handlers.iter().rposition(|entry| {
        let Some(n) = handler_name(entry) else {
            return false;
        };
        let role = entry
            .0
            .task
            .role
            .as_ref()
            .or(entry.1.role.as_ref().map(|r| &r.name));
        n == name || role.is_some_and(|r| format!("{r} : {n}") == name)
    });
    out.extend(by_name);
    let mut seen = std::collections::HashSet::new();
    for (i, entry) in handlers.iter().enumerate().rev() {
        if !entry.0.listen.iter().any(|l| l.name == name) {
            continue;
        }
        if let Some(n) = handler_name(entry)
            && !seen.insert(n)
        {
            continue;
        }
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// `role : name` as Ansible labels tasks.
fn task_label(t: &Task, scope: &Scope) -> String {
    let name = t
        .name
        .as_ref()
        .and_then(crate::yaml::Node::scalar_string)
        .unwrap_or_else(|| t.action.module.clone());
    match t.role.as_ref().or(scope.role.as_ref().map(|r| &r.name)) {
        Some(r) => format!("{r} : {name}"),
        None => name,
    }
}

/// `gather_facts`, default true as in Ansible.
fn play_gathers_facts(play: &Play) -> bool {
    match &play.gather_facts {
        Some(Val::Lit { value, .. }) => *value,
        _ => true,
    }
}

/// The implicit "Gathering Facts" task, with the play's `gather_subset` and `gather_timeout`.
fn gather_task(play: &Play) -> Task {
    use crate::diag::Loc;
    use crate::playbook::model::Action;
    let loc = Loc::file_start("<facts>");
    Task {
        loc: loc.clone(),
        name: None,
        action: Action {
            module: "setup".into(),
            module_loc: loc,
            args: [
                ("gather_subset", &play.gather_subset),
                ("gather_timeout", &play.gather_timeout),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.clone()?)))
            .collect(),
            free_form: None,
            local_src: None,
        },
        keywords: Keywords::default(),
        loop_over: None,
        loop_control: None,
        register: None,
        notify: Vec::new(),
        changed_when: Vec::new(),
        failed_when: Vec::new(),
        until: Vec::new(),
        retries: None,
        delay: None,
        async_secs: None,
        poll: None,
        role: None,
        included: None,
        deferred: Vec::new(),
        when_reached: false,
        apply: None,
    }
}
