//! The evaluated playbook: typed plays, tasks, blocks, roles and rdeploy's rollout keywords.
//!
//! Owns the types the loader produces and the read-only walks over them that other layers
//! need: [`Play::tasks_flat`] (listing in execution order with inherited tags),
//! [`Play::visit_templates`] (every Jinja site with its context) and
//! [`Playbook::runtime_names`] (variables that only exist once the run is under way).
//! It must not read files, render templates or touch hosts: every value that Jinja will
//! render stays a [`Node`] so its position survives until the renderer reports on it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::diag::Loc;
use crate::modules::spec::is_template;
use crate::yaml::{Kind, Node};

/// A loaded and validated playbook, `import_playbook`s already expanded.
#[derive(Clone, Debug)]
pub struct Playbook {
    /// The file the user named.
    pub path: PathBuf,
    /// Its directory (the base for relative paths of the top-level plays).
    pub dir: PathBuf,
    /// Every play in execution order.
    pub plays: Vec<Play>,
}

/// A value that is either written literally or computed by a template at run time.
#[derive(Clone, Debug, PartialEq)]
pub enum Val<T> {
    /// A literal, already checked.
    Lit {
        /// The value.
        value: T,
        /// Where it was written.
        loc: Loc,
    },
    /// A `{{ ... }}` string to render, then convert and check.
    Template(Node),
}

impl<T: Copy> Val<T> {
    /// The literal value, if it is not a template.
    pub fn literal(&self) -> Option<T> {
        match self {
            Val::Lit { value, .. } => Some(*value),
            Val::Template(_) => None,
        }
    }

    /// Where it was written.
    pub fn loc(&self) -> &Loc {
        match self {
            Val::Lit { loc, .. } => loc,
            Val::Template(n) => &n.loc,
        }
    }
}

/// A name with its position (a tag, a handler name, a registered variable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    /// The text.
    pub name: String,
    /// Where it was written.
    pub loc: Loc,
}

/// Keywords shared by plays, blocks, tasks and role entries. Which of them a level accepts is
/// decided by `keywords.rs`; unset means "inherit".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Keywords {
    /// Conditions (bare Jinja expressions), all of which must hold.
    pub when: Vec<Node>,
    /// Own tags (inherited ones are added by [`Play::tasks_flat`]).
    pub tags: Vec<Named>,
    /// Variables, in source order; values are templates.
    pub vars: Vec<(String, Node)>,
    /// Environment for commands: each a mapping, a template, or a list of those; inherited
    /// ones first (play, block, ..., task), later keys overriding earlier ones as in Ansible.
    pub environment: Vec<Node>,
    /// Privilege escalation.
    pub r#become: Option<Val<bool>>,
    /// User to become.
    pub become_user: Option<Node>,
    /// Escalation method (`sudo`, `su`).
    pub become_method: Option<Node>,
    /// How to reach the host (`local` or `ssh`); an `ansible_connection` variable wins.
    pub connection: Option<Node>,
    /// Login user.
    pub remote_user: Option<Node>,
    /// SSH port.
    pub port: Option<Val<i64>>,
    /// Hide results and arguments from the report.
    pub no_log: Option<Val<bool>>,
    /// A failure does not fail the host.
    pub ignore_errors: Option<Val<bool>>,
    /// An unreachable host does not fail the host.
    pub ignore_unreachable: Option<Val<bool>>,
    /// Force check mode on (or off) for these tasks.
    pub check_mode: Option<Val<bool>>,
    /// Force diff output on (or off).
    pub diff: Option<Val<bool>>,
    /// Any failure ends the play for every host.
    pub any_errors_fatal: Option<Val<bool>>,
    /// Run on this host instead.
    pub delegate_to: Option<Node>,
    /// With `delegate_to`, store facts on the delegated host.
    pub delegate_facts: Option<Val<bool>>,
    /// Run on the first host of the batch only.
    pub run_once: Option<Val<bool>>,
    /// Most hosts running this at once.
    pub throttle: Option<Val<i64>>,
    /// Seconds before the task is killed.
    pub timeout: Option<Val<i64>>,
}

/// `serial`: the batch sizes, the last one repeating.
#[derive(Clone, Debug, PartialEq)]
pub struct Serial {
    /// At least one step.
    pub steps: Vec<SerialStep>,
    /// Where `serial` was written.
    pub loc: Loc,
}

/// `canary`: cumulative shares of the play's hosts, one batch per step (see
/// `plan::canary`). Checked: every step is above zero, none is below an earlier one of its
/// kind, percentages at most 100%.
#[derive(Clone, Debug, PartialEq)]
pub struct Canary {
    /// At least one step; a count is of hosts in all, not added.
    pub steps: Vec<SerialStep>,
    /// What each written step does once its hosts are deployed (same length as `steps`).
    pub gates: Vec<StepGates>,
    /// Where `canary` was written.
    pub loc: Loc,
}

/// What a canary step does after its batch passed its health gate, in this order: a watched
/// `pause`, an `analysis`, then an approval before the next step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepGates {
    /// `pause: 5m`: a soak for this step (the health probes watched), instead of the play's.
    pub pause: Option<Duration>,
    /// `analysis:` for this step, instead of the play's.
    pub analysis: Option<Analysis>,
    /// `approve:` (a message, or `{message, timeout}`): asked before the next step.
    pub approve: Option<Approval>,
}

/// `analysis:`: metrics measured every `interval` for `duration` after a batch passed its
/// health gate (rdeploy's own keyword). Any metric that fails rolls the batch back at once; an
/// inconclusive one stops for a person, as an approval gate does.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// Where `analysis` was written.
    pub loc: Loc,
    /// Time between two measurements of a metric, unless the metric sets its own.
    pub interval: Duration,
    /// How long the analysis lasts (at least one measurement of each metric).
    pub duration: Duration,
    /// The metrics.
    pub metrics: Vec<Metric>,
}

/// One metric of an analysis: a probe's check measured over time, judged by conditions.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// What is measured (an `http`, `tcp`, `command` or `prometheus` check; a prometheus check
    /// may have no bounds when conditions judge it).
    pub probe: Probe,
    /// `baseline:` a second PromQL query (e.g. the old version's error rate), as `baseline`.
    pub baseline: Option<Node>,
    /// `success_condition`: an expression that must hold (e.g. `result < 0.01`).
    pub success: Option<Node>,
    /// `failure_condition`: an expression that must not hold.
    pub failure: Option<Node>,
    /// Failed measurements tolerated before the metric fails (default 0).
    pub failure_limit: u32,
    /// Inconclusive measurements tolerated before the metric is inconclusive (default 0).
    pub inconclusive_limit: u32,
    /// Successes in a row that must end the analysis (default 1).
    pub consecutive_successes: u32,
    /// This metric's own interval.
    pub interval: Option<Duration>,
}

/// One batch size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SerialStep {
    /// A number of hosts; `0` means all remaining hosts, as in Ansible.
    Count(u64),
    /// A percentage of the play's hosts, `0..=100` (rounded down, at least one host).
    Percent(f64),
}

/// `order`: how the play's hosts are sorted before batching.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// As listed in the inventory.
    #[default]
    Inventory,
    /// Inventory order reversed.
    ReverseInventory,
    /// By name.
    Sorted,
    /// By name, descending.
    ReverseSorted,
    /// Random.
    Shuffle,
}

impl Order {
    /// The spellings, in the order of the variants.
    pub const NAMES: &'static [&'static str] = &[
        "inventory",
        "reverse_inventory",
        "sorted",
        "reverse_sorted",
        "shuffle",
    ];
}

/// `on_failure`: what a failed batch (health gate or failure budget) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Restore backups and run `rollback:` on the failed batch (the default for plays with
    /// `health` or `rollback`).
    Rollback,
    /// Stop scheduling batches; change nothing back.
    Halt,
}

/// `rollback_scope`: which hosts a rollback covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RollbackScope {
    /// Only the failed batch (the default).
    #[default]
    Batch,
    /// Every host this run updated, in the batches it was deployed in, newest first.
    All,
}

/// A `vars_files` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct VarsFile {
    /// The entry as written.
    pub node: Node,
    /// The file: found when loading for a literal name, by `resolve` (before planning) for a
    /// templated one.
    pub path: Option<PathBuf>,
    /// Its variables once read (a vault file is decrypted); `None` until `resolve` has read a
    /// templated one.
    pub vars: Option<Vec<(String, Node)>>,
}

/// `approve: {before_batch: N, message: TEXT, timeout: DURATION}`: the rollout stops before
/// batch N until a person approves (rdeploy's own play keyword).
#[derive(Clone, Debug, PartialEq)]
pub struct Approval {
    /// The batch (1-based, at least 2) that waits for the approval.
    pub before_batch: usize,
    /// What the operator is asked.
    pub message: String,
    /// How long a terminal waits for the answer; `None`: an hour.
    pub timeout: Option<std::time::Duration>,
}

/// `windows:`: when the play's batches may start (rdeploy's own keyword).
#[derive(Clone, Debug, PartialEq)]
pub struct Windows {
    /// Where `windows` was written.
    pub loc: Loc,
    /// `allow`: a batch starts only inside one of these (none written: any time).
    pub allow: Vec<crate::window::Window>,
    /// `deny_files`: a batch does not start while one of these exists on the controller
    /// (relative paths from the playbook's folder).
    pub deny_files: Vec<PathBuf>,
}

/// `max_unavailable: {fleet: 25%, per: {rack: 1, lb_pool: 1}}`: disruption budgets (rdeploy's
/// own keyword): batches are packed so that no more hosts than these are out at once.
#[derive(Clone, Debug, PartialEq)]
pub struct MaxUnavailable {
    /// Where it was written.
    pub loc: Loc,
    /// Of the play's hosts (a count, or a percentage rounded down, at least one).
    pub fleet: Option<SerialStep>,
    /// Per group (hosts of that group) or per host variable (hosts sharing its value).
    pub per: Vec<(String, u32)>,
}

/// `max_failed: {per_batch: 20%, total: 5}`: failure budgets (rdeploy's own keyword).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MaxFailed {
    /// Per batch, as `max_fail_percentage`.
    pub per_batch: Option<f64>,
    /// Hosts failed across the run (every play so far): more than this fails the batch.
    pub total: Option<u32>,
}

/// One play.
#[derive(Clone, Debug, PartialEq)]
pub struct Play {
    /// Where the play starts.
    pub loc: Loc,
    /// Directory of the file that holds the play (base for its relative paths).
    pub dir: PathBuf,
    /// `name`.
    pub name: Option<Node>,
    /// `hosts`: a pattern string or a list of them (may be templates).
    pub hosts: Node,
    /// `vars_files`.
    pub vars_files: Vec<VarsFile>,
    /// `gather_facts` (Ansible's default is yes).
    pub gather_facts: Option<Val<bool>>,
    /// `gather_subset` for the implicit fact gathering (a list or comma-separated text).
    pub gather_subset: Option<Node>,
    /// `gather_timeout` for the implicit fact gathering.
    pub gather_timeout: Option<Node>,
    /// `serial`.
    pub serial: Option<Serial>,
    /// `canary` (never together with `serial`).
    pub canary: Option<Canary>,
    /// `max_fail_percentage`, `0..=100`.
    pub max_fail_percentage: Option<f64>,
    /// `order`.
    pub order: Order,
    /// `force_handlers`.
    pub force_handlers: Option<Val<bool>>,
    /// Keywords shared with blocks and tasks (`vars`, `become`, `tags`, `environment`...).
    pub keywords: Keywords,
    /// `pre_tasks`.
    pub pre_tasks: Vec<TaskItem>,
    /// `roles`.
    pub roles: Vec<RoleRef>,
    /// `tasks`.
    pub tasks: Vec<TaskItem>,
    /// `post_tasks`.
    pub post_tasks: Vec<TaskItem>,
    /// `handlers` of the play itself (role handlers stay with their roles; see
    /// [`Play::all_handlers`]).
    pub handlers: Vec<Handler>,
    /// `health`: probes run on each batch after its tasks.
    pub health: Vec<Probe>,
    /// `probe`: retry and timing settings for the health probes.
    pub probe: ProbeSettings,
    /// `soak`: wait, then probe again, before the next batch.
    pub soak: Option<Duration>,
    /// `on_failure` as written; see [`Play::failure_action`].
    pub on_failure: Option<OnFailure>,
    /// `rollback_scope`.
    pub rollback_scope: RollbackScope,
    /// `rollback`: tasks run on a failed batch after its backups are restored.
    pub rollback: Vec<TaskItem>,
    /// `release_label`: a template naming the release in history (e.g. the version).
    pub release_label: Option<Node>,
    /// `approve`: rdeploy's approval gate before a batch.
    pub approve: Option<Approval>,
    /// `analysis`: rdeploy's analysis after every batch (a canary step's own replaces it).
    pub analysis: Option<Analysis>,
    /// `windows`: when batches may start.
    pub windows: Option<Windows>,
    /// `max_failed`: the run-wide failure budget (`per_batch` sets `max_fail_percentage`).
    pub max_failed_total: Option<u32>,
    /// `max_unavailable`: disruption budgets the batches are packed under.
    pub max_unavailable: Option<MaxUnavailable>,
    /// `vars_prompt` entries, asked (or answered by `-e` or their `default`) before planning.
    pub vars_prompt: Vec<VarPrompt>,
    /// Play keywords written as templates (`hosts`, `serial`, `max_fail_percentage`, `soak`,
    /// `probe`, `rollback_scope`, typed `health` fields), as written. Ansible renders them once
    /// per play with the play's variables; `resolve` does so before planning and parses the
    /// result as if it had been written literally, then empties this list.
    pub deferred: Vec<(String, Node)>,
}

/// One `vars_prompt` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct VarPrompt {
    /// Where the entry starts.
    pub loc: Loc,
    /// The variable it sets.
    pub name: String,
    /// `prompt`: the question (may be a template); the name when absent.
    pub prompt: Option<Node>,
    /// `default`: the answer to an empty reply, or without a terminal (may be a template).
    pub default: Option<Node>,
    /// `private` (Ansible's default: true): the reply is not echoed.
    pub private: bool,
    /// `confirm`: asked twice, until both replies match.
    pub confirm: bool,
    /// `unsafe`: the reply is data, never rendered as a template.
    pub unsafe_: bool,
}

/// An entry of a task list.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskItem {
    /// A task.
    Task(Box<Task>),
    /// `block` / `rescue` / `always`.
    Block(Box<Block>),
    /// `import_tasks`: the file's tasks, inlined, each under the import's keywords.
    ImportTasks(Box<ImportTasks>),
    /// `import_role`: the role, run here exactly like a `roles:` entry.
    ImportRole(Box<RoleRef>),
}

/// A block.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Where the block starts.
    pub loc: Loc,
    /// `name`.
    pub name: Option<Node>,
    /// `block`.
    pub block: Vec<TaskItem>,
    /// `rescue`: run when a task of `block` fails.
    pub rescue: Vec<TaskItem>,
    /// `always`: run after `block` (and `rescue`) either way.
    pub always: Vec<TaskItem>,
    /// Keywords applied to every task inside.
    pub keywords: Keywords,
    /// `notify`: handler names or `listen` topics for every task inside (in `block`, `rescue`
    /// and `always`, nested blocks and includes) that has no `notify` of its own.
    pub notify: Vec<Named>,
    /// The role the block belongs to.
    pub role: Option<String>,
}

/// A static `import_tasks`.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportTasks {
    /// Where the import task starts.
    pub loc: Loc,
    /// `name`.
    pub name: Option<Node>,
    /// The imported file.
    pub path: PathBuf,
    /// Keywords applied to every imported task.
    pub keywords: Keywords,
    /// The imported tasks.
    pub tasks: Vec<TaskItem>,
    /// The role the import belongs to.
    pub role: Option<String>,
}

/// The module call of a task.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    /// Canonical short module name (`copy`, never `ansible.builtin.copy`).
    pub module: String,
    /// Where the module (or `action:`/`local_action:`) key was written.
    pub module_loc: Loc,
    /// Arguments under their canonical names (aliases resolved), inline ones before `args:`.
    pub args: Vec<(String, Node)>,
    /// Free-form text (`command: ls -l`, `include_tasks: x.yml`, `meta: flush_handlers`),
    /// with any `key=value` options the module declares moved into `args`.
    pub free_form: Option<Node>,
    /// For `copy`, `template`, `unarchive` (without `remote_src`) and `script` with a literal
    /// source: the controller file (or directory) it names, found the way Ansible looks:
    /// the role's `files/` or `templates/`, the role, then the including file's and the
    /// playbook's directories (each with that subdirectory first).
    pub local_src: Option<PathBuf>,
}

impl Action {
    /// The value of argument `name` (canonical).
    pub fn arg(&self, name: &str) -> Option<&Node> {
        self.args.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// Which loop keyword a task used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopKind {
    /// `loop`: the list as is.
    Loop,
    /// `with_items`: the list flattened one level.
    WithItems,
    /// `with_list`: the list as is.
    WithList,
    /// `with_NAME` for a lookup plugin NAME: `query(NAME, *terms)`, the value being the terms.
    Lookup(&'static str),
}

impl LoopKind {
    /// The keyword as written (`loop`, `with_items`, `with_dict`, ...).
    pub fn keyword(self) -> String {
        match self {
            LoopKind::Loop => "loop".into(),
            LoopKind::WithItems => "with_items".into(),
            LoopKind::WithList => "with_list".into(),
            LoopKind::Lookup(name) => format!("with_{name}"),
        }
    }
}

/// A task's loop.
#[derive(Clone, Debug, PartialEq)]
pub struct Loop {
    /// Which keyword.
    pub kind: LoopKind,
    /// A list, or a template that gives one.
    pub items: Node,
}

/// `loop_control`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoopControl {
    /// Variable holding the current item (default `item`).
    pub loop_var: Option<Named>,
    /// Variable holding the 0-based index.
    pub index_var: Option<Named>,
    /// What the report shows for each item.
    pub label: Option<Node>,
    /// Wait between items.
    pub pause: Option<Duration>,
    /// Set `ansible_loop`.
    pub extended: Option<Val<bool>>,
}

/// What a task loaded statically beyond itself.
#[derive(Clone, Debug, PartialEq)]
pub enum Included {
    /// `include_tasks` with a literal file name: the file, loaded and checked. The executor
    /// still runs it as an include (per host, per item, when the task is reached).
    Tasks {
        /// The file.
        path: PathBuf,
        /// Its tasks.
        tasks: Vec<TaskItem>,
    },
    /// `include_role` with a literal role name.
    Role(Box<RoleRef>),
    /// `include_tasks`/`include_role` whose name is a template: the file or role is found,
    /// loaded and checked per host when the include is reached, from where it was written.
    Dynamic(Box<IncludeSite>),
    /// `include_vars` of a literal file: the names it sets.
    Vars {
        /// The file (`None` for `dir:` or when `name:` decides the one name set).
        path: Option<PathBuf>,
        /// Top-level names it defines.
        names: Vec<String>,
    },
}

/// Where a dynamic include was written: what loading its file or role needs at run time.
#[derive(Clone, Debug, PartialEq)]
pub struct IncludeSite {
    /// Directory of the file holding the include.
    pub dir: PathBuf,
    /// Directory of the playbook file holding the play.
    pub play_dir: PathBuf,
    /// The role the include belongs to (name, directory).
    pub role: Option<(String, PathBuf)>,
    /// Role directories after `<playbook dir>/roles` (`--roles-path`).
    pub roles_path: Vec<PathBuf>,
    /// Collection roots (`collections_path`).
    pub collections_path: Vec<PathBuf>,
    /// True when the include sits in a handler list.
    pub in_handlers: bool,
    /// The `collections` search list at the include.
    pub collections: Vec<String>,
}

/// A task.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// Where the task starts.
    pub loc: Loc,
    /// `name`.
    pub name: Option<Node>,
    /// The module and its arguments.
    pub action: Action,
    /// Shared keywords (`when`, `become`, `tags`, `delegate_to`...).
    pub keywords: Keywords,
    /// `loop` / `with_items` / `with_list`.
    pub loop_over: Option<Loop>,
    /// `loop_control`.
    pub loop_control: Option<LoopControl>,
    /// `register`.
    pub register: Option<Named>,
    /// `notify`: handler names or `listen` topics.
    pub notify: Vec<Named>,
    /// `changed_when` conditions (bare expressions).
    pub changed_when: Vec<Node>,
    /// `failed_when` conditions (bare expressions).
    pub failed_when: Vec<Node>,
    /// `until` conditions (bare expressions).
    pub until: Vec<Node>,
    /// `retries` (with `until`; Ansible's default is 3).
    pub retries: Option<Val<i64>>,
    /// `delay` between retries, in seconds (Ansible's default is 5).
    pub delay: Option<Val<i64>>,
    /// `async`: the most seconds the task may run (rdeploy waits for it: `poll` must not be 0).
    pub async_secs: Option<Val<i64>>,
    /// `poll`: seconds between Ansible's status checks; rdeploy waits for the task itself, so
    /// only `poll: 0` (fire and forget) matters, and it is refused.
    pub poll: Option<Val<i64>>,
    /// The role the task belongs to.
    pub role: Option<String>,
    /// What `include_tasks`, `include_role` or `include_vars` loaded statically.
    pub included: Option<Included>,
    /// Mistakes in what a conditional include loads (a `setup-FreeBSD.yml` on a Debian
    /// fleet): reported for a host only when the include is reached for it.
    pub deferred: Vec<crate::diag::Diagnostic>,
    /// True for an `include_tasks`/`include_role` whose file or role is checked when it is
    /// reached, not before the run: a templated name, or a literal one under a `when:`
    /// (its own, a block's, a role's or an enclosing include's). `--syntax-check` and
    /// `rdeploy plan` list these.
    pub when_reached: bool,
    /// `apply:` of an `include_tasks`/`include_role`: keywords applied to every task it
    /// includes, as if a block wrapped them (Ansible's semantics).
    pub apply: Option<Keywords>,
}

/// A handler: a task that runs once at the end of a section when notified.
#[derive(Clone, Debug, PartialEq)]
pub struct Handler {
    /// The task.
    pub task: Task,
    /// `listen`: topics that also notify it.
    pub listen: Vec<Named>,
}

/// A role as used by a play (`roles:` entry, dependency, `import_role`, `include_role`).
#[derive(Clone, Debug, PartialEq)]
pub struct RoleRef {
    /// Where the entry starts.
    pub loc: Loc,
    /// The role name as written.
    pub name: String,
    /// Keywords of the entry (`when`, `tags`, `vars`, `become`...), applied to its tasks.
    pub keywords: Keywords,
    /// Role parameters: other keys of a `roles:` entry (`- {role: app, app_port: 80}`).
    pub params: Vec<(String, Node)>,
    /// The loaded role.
    pub role: Role,
    /// What identifies the instance besides its role, parameters, `when`, `tags` and `vars`
    /// (as Ansible's role cache): empty for `roles:` entries and dependencies, the `*_from`
    /// files for `import_role`/`include_role` (which share one identity).
    pub origin: String,
    /// Run it again on a host where the same instance already ran a task in this play:
    /// `allow_duplicates` of the role's meta for `roles:` entries and dependencies (default
    /// no), of the task for `import_role`/`include_role` (default yes).
    pub allow_duplicates: bool,
    /// Its defaults and `vars/` are the whole play's: `roles:` entries and dependencies,
    /// `import_role` unless `public: false` (Ansible 2.17+). An `include_role` exports them
    /// once it ran, with `public: true` (see the executor).
    pub public: bool,
}

/// A role directory, loaded.
#[derive(Clone, Debug, PartialEq)]
pub struct Role {
    /// Its name.
    pub name: String,
    /// Its directory.
    pub path: PathBuf,
    /// `tasks/main.yml` (or `tasks_from`).
    pub tasks: Vec<TaskItem>,
    /// `handlers/main.yml`.
    pub handlers: Vec<Handler>,
    /// `defaults/main.yml`: lowest-precedence variables.
    pub defaults: Vec<(String, Node)>,
    /// `vars/main.yml`.
    pub vars: Vec<(String, Node)>,
    /// `meta/main.yml` `dependencies`, run before the role.
    pub dependencies: Vec<RoleRef>,
    /// `templates/`, when present.
    pub templates_dir: Option<PathBuf>,
    /// `files/`, when present.
    pub files_dir: Option<PathBuf>,
    /// `allow_duplicates` of `meta/main.yml`: run it again when a `roles:` entry or a
    /// dependency names it a second time with the same parameters (Ansible's default: no).
    pub allow_duplicates: bool,
}

/// A health probe.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// Where the probe entry starts.
    pub loc: Loc,
    /// `name`, for the report.
    pub name: Option<Node>,
    /// What it checks.
    pub check: ProbeCheck,
    /// This probe's own `retries`, `interval`, `timeout`, `initial_delay`,
    /// `success_threshold`, over the play's `probe:` settings.
    pub settings: ProbeOverrides,
}

/// A probe's own timing, each over the play's `probe:` setting of that name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProbeOverrides {
    /// `initial_delay`.
    pub initial_delay: Option<Duration>,
    /// `retries`.
    pub retries: Option<u32>,
    /// `interval`.
    pub interval: Option<Duration>,
    /// `timeout`.
    pub timeout: Option<Duration>,
    /// `success_threshold`.
    pub success_threshold: Option<u32>,
}

impl ProbeOverrides {
    /// The play's settings with this probe's own over them.
    pub fn over(&self, play: &ProbeSettings) -> ProbeSettings {
        ProbeSettings {
            initial_delay: self.initial_delay.unwrap_or(play.initial_delay),
            retries: self.retries.unwrap_or(play.retries),
            interval: self.interval.unwrap_or(play.interval),
            timeout: self.timeout.unwrap_or(play.timeout),
            success_threshold: self.success_threshold.unwrap_or(play.success_threshold),
            deadline: play.deadline,
        }
    }
}

/// Where a network probe connects from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProbeFrom {
    /// The machine running rdeploy (the default).
    #[default]
    Controller,
    /// The host itself, over its connection.
    Host,
}

/// What a probe checks.
#[derive(Clone, Debug, PartialEq)]
pub enum ProbeCheck {
    /// An HTTP(S) request.
    Http {
        /// URL (template).
        url: Node,
        /// Accepted status codes (default `[200]`).
        status: Vec<u16>,
        /// A substring, or `/regex/`, the body must contain.
        body: Option<Node>,
        /// Slowest acceptable response.
        max_latency: Option<Duration>,
        /// Request headers.
        headers: Vec<(String, Node)>,
        /// CA bundle for TLS.
        ca_file: Option<Node>,
        /// Skip TLS verification.
        insecure: bool,
        /// Where the request is made from.
        from: ProbeFrom,
    },
    /// A TCP connect to `host:port`.
    Tcp {
        /// `host:port` (template).
        address: Node,
        /// Where the connection is made from.
        from: ProbeFrom,
    },
    /// A command on the host that must exit 0.
    Command {
        /// The command line (template), run through `sh -c`.
        command: Node,
        /// A substring, or `/regex/`, its stdout must contain.
        stdout: Option<Node>,
    },
    /// A Prometheus instant query whose value must stay within bounds.
    Prometheus {
        /// Prometheus base URL.
        url: Node,
        /// PromQL expression (template).
        query: Node,
        /// Highest acceptable value.
        max: Option<f64>,
        /// Lowest acceptable value.
        min: Option<f64>,
    },
}

/// `probe:` timing for the health probes.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeSettings {
    /// Wait before the first attempt (default 0).
    pub initial_delay: Duration,
    /// Attempts after the first failure (default 3).
    pub retries: u32,
    /// Wait between attempts (default 1s).
    pub interval: Duration,
    /// Time allowed for one attempt (default 5s).
    pub timeout: Duration,
    /// Consecutive successes needed (default 1).
    pub success_threshold: u32,
    /// Longest a batch's whole health gate (every host's probes, the soak, the probes after
    /// it) may take before it counts as failed (default: no limit beyond the attempts').
    pub deadline: Option<Duration>,
}

impl Default for ProbeSettings {
    fn default() -> ProbeSettings {
        ProbeSettings {
            initial_delay: Duration::ZERO,
            retries: 3,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            success_threshold: 1,
            deadline: None,
        }
    }
}

/// The part of a play a listed task comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// `pre_tasks`.
    PreTasks,
    /// `roles` (dependencies first).
    Roles,
    /// `tasks`.
    Tasks,
    /// `post_tasks`.
    PostTasks,
    /// Handlers (roles' first, then the play's).
    Handlers,
    /// `rollback` (rdeploy's).
    Rollback,
}

/// One task as listed by `rdeploy plan --list-tasks`.
#[derive(Clone, Debug, PartialEq)]
pub struct FlatTask {
    /// The name as written, or the module name.
    pub name: String,
    /// Canonical module name.
    pub module: String,
    /// Where the task starts.
    pub loc: Loc,
    /// Own and inherited tags (play, role, block, import), first occurrence order.
    pub tags: Vec<String>,
    /// The role it belongs to.
    pub role: Option<String>,
    /// The section.
    pub section: Section,
    /// False for steps rollback cannot undo: `command`, `shell`, `script` and `raw` without
    /// `creates:` or `removes:`, and what a module says it cannot undo.
    pub reversible: bool,
    /// Why not, in a few words, when not reversible.
    pub not_reversible: Option<String>,
}

/// How a template site is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiteKind {
    /// Text with `{{ }}` / `{% %}` inside.
    Template,
    /// A bare Jinja expression (`when`, `changed_when`, `failed_when`, `until`,
    /// `assert`'s `that`, `debug`'s `var`).
    Expression,
}

/// One place Jinja will evaluate, with what is in scope there.
#[derive(Clone, Debug)]
pub struct TemplateSite<'a> {
    /// The text (a string node).
    pub node: &'a Node,
    /// Template or bare expression.
    pub kind: SiteKind,
    /// What it is, for messages: `when`, `args.dest`, `free_form`, `vars.app_root`, `hosts`...
    pub field: String,
    /// The task it belongs to, if any.
    pub task: Option<&'a Task>,
    /// Loop variables defined there (`item` or `loop_var`, `index_var`, `ansible_loop`...),
    /// including those of enclosing `include_tasks` loops.
    pub loop_vars: Vec<String>,
}

impl Keywords {
    /// Fills every unset field from `parent`, and puts the parent's conditions and tags
    /// first (used when a task list is flattened, e.g. `import_tasks` in a handlers section).
    pub fn inherit(&mut self, parent: &Keywords) {
        let mut when = parent.when.clone();
        when.append(&mut self.when);
        self.when = when;
        let mut tags = parent.tags.clone();
        tags.append(&mut self.tags);
        self.tags = tags;
        let mut vars = parent.vars.clone();
        vars.append(&mut self.vars);
        self.vars = vars;
        let mut environment = parent.environment.clone();
        environment.append(&mut self.environment);
        self.environment = environment;
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = parent.$f.clone(); } )* };
        }
        fill!(
            r#become,
            become_user,
            become_method,
            connection,
            remote_user,
            port,
            no_log,
            ignore_errors,
            ignore_unreachable,
            check_mode,
            diff,
            any_errors_fatal,
            delegate_to,
            delegate_facts,
            run_once,
            throttle,
            timeout
        );
    }
}

impl Role {
    /// Handlers of this role's dependencies (first) and of the role itself.
    pub fn all_handlers(&self) -> Vec<&Handler> {
        let mut out = Vec::new();
        for d in &self.dependencies {
            out.extend(d.role.all_handlers());
        }
        out.extend(self.handlers.iter());
        out
    }
}

impl Analysis {
    /// The metrics' names as written (`metric N` for one without a name).
    pub fn metric_names(&self) -> Vec<String> {
        self.metrics
            .iter()
            .enumerate()
            .map(|(i, m)| match &m.probe.name {
                Some(n) => n.scalar_string().unwrap_or_default(),
                None => format!("metric {}", i + 1),
            })
            .collect()
    }
}

impl Probe {
    /// The templates of what it checks (rendered per host when it runs).
    pub fn templates(&self) -> Vec<&Node> {
        match &self.check {
            ProbeCheck::Http {
                url,
                body,
                headers,
                ca_file,
                ..
            } => {
                let mut v = vec![url];
                v.extend(body.iter());
                v.extend(ca_file.iter());
                v.extend(headers.iter().map(|(_, n)| n));
                v
            }
            ProbeCheck::Tcp { address, .. } => vec![address],
            ProbeCheck::Command { command, stdout } => {
                let mut v = vec![command];
                v.extend(stdout.iter());
                v
            }
            ProbeCheck::Prometheus { url, query, .. } => vec![url, query],
        }
    }
}

impl Play {
    /// Every analysis of the play: its own, then its canary steps'.
    pub fn analyses(&self) -> impl Iterator<Item = &Analysis> {
        let steps = self
            .canary
            .iter()
            .flat_map(|c| c.gates.iter().filter_map(|g| g.analysis.as_ref()));
        self.analysis.iter().chain(steps)
    }

    /// The analyses after a batch whose canary steps have `gates`: the steps' own, else the
    /// play's.
    pub fn analyses_after<'p>(&'p self, gates: &[&'p StepGates]) -> Vec<&'p Analysis> {
        let mut out: Vec<&Analysis> = gates.iter().filter_map(|g| g.analysis.as_ref()).collect();
        if out.is_empty() {
            out.extend(self.analysis.as_ref());
        }
        out
    }

    /// The templates of the play's health probes and analysis metrics (with baselines).
    pub fn probe_templates(&self) -> Vec<&Node> {
        let mut out: Vec<&Node> = self.health.iter().flat_map(Probe::templates).collect();
        for m in self.analyses().flat_map(|a| &a.metrics) {
            out.extend(m.probe.templates());
            out.extend(m.baseline.iter());
        }
        out
    }

    /// What a failed batch does: `on_failure` when written; otherwise a rollback for plays
    /// with `health` probes, an `analysis` or `rollback:` tasks, and Ansible's plain stop for
    /// the others.
    pub fn failure_action(&self) -> OnFailure {
        match self.on_failure {
            Some(a) => a,
            None if !self.health.is_empty()
                || !self.rollback.is_empty()
                || self.analyses().next().is_some() =>
            {
                OnFailure::Rollback
            }
            None => OnFailure::Halt,
        }
    }

    /// The play's name, or its `hosts` text.
    pub fn display_name(&self) -> String {
        if let Some(n) = self.name.as_ref().and_then(Node::scalar_string) {
            return n;
        }
        match &self.hosts.kind {
            Kind::Seq(items) => items
                .iter()
                .filter_map(Node::scalar_string)
                .collect::<Vec<_>>()
                .join(","),
            _ => self.hosts.scalar_string().unwrap_or_default(),
        }
    }

    /// Every handler the play can notify: those of its roles (and their dependencies, and
    /// of statically loaded `import_role`/`include_role`s) first, then the play's own.
    pub fn all_handlers(&self) -> Vec<&Handler> {
        let mut out = Vec::new();
        for r in &self.roles {
            out.extend(r.role.all_handlers());
        }
        for list in [&self.pre_tasks, &self.tasks, &self.post_tasks] {
            collect_role_handlers(list, &mut out);
        }
        out.extend(self.handlers.iter());
        out
    }

    /// Every task in Ansible's execution order (pre_tasks; roles, dependencies first; tasks;
    /// post_tasks), then handlers and `rollback`. Blocks list `block`, `rescue`, `always`;
    /// `import_tasks`/`import_role` are expanded; `include_*` tasks are listed themselves.
    pub fn tasks_flat(&self) -> Vec<FlatTask> {
        let mut out = Vec::new();
        let base: Vec<String> = self.keywords.tags.iter().map(|t| t.name.clone()).collect();
        flatten(&self.pre_tasks, &base, Section::PreTasks, &mut out);
        for r in &self.roles {
            flatten_role(r, &base, Section::Roles, &mut out);
        }
        flatten(&self.tasks, &base, Section::Tasks, &mut out);
        flatten(&self.post_tasks, &base, Section::PostTasks, &mut out);
        for r in &self.roles {
            flatten_role_handlers(r, &base, &mut out);
        }
        for h in &self.handlers {
            push_task(&h.task, &base, Section::Handlers, &mut out);
        }
        flatten(&self.rollback, &base, Section::Rollback, &mut out);
        out
    }

    /// Calls `f` for every place Jinja will evaluate in this play: templates (strings with
    /// `{{`, `{%` or `{#`, not tagged `!unsafe`) and bare expressions, with the task and loop
    /// variables in scope. Includes play and role variables, role defaults, vars files read,
    /// probes, and statically loaded include files.
    pub fn visit_templates(&self, f: &mut dyn FnMut(TemplateSite<'_>)) {
        let mut v = Visitor { f };
        v.node(self.name.as_ref(), "name", None, &[]);
        v.node(Some(&self.hosts), "hosts", None, &[]);
        v.keywords(&self.keywords, None, &[]);
        for vf in &self.vars_files {
            v.node(Some(&vf.node), "vars_files", None, &[]);
            for (k, n) in vf.vars.iter().flatten() {
                v.node(Some(n), &format!("vars.{k}"), None, &[]);
            }
        }
        v.node(self.release_label.as_ref(), "release_label", None, &[]);
        for p in &self.health {
            v.probe(p);
        }
        for a in self.analyses() {
            for m in &a.metrics {
                v.probe(&m.probe);
                v.node(m.baseline.as_ref(), "analysis.baseline", None, &[]);
            }
        }
        v.items(&self.pre_tasks, &[]);
        for r in &self.roles {
            v.role(r, &[]);
        }
        v.items(&self.tasks, &[]);
        v.items(&self.post_tasks, &[]);
        for h in &self.handlers {
            v.task(&h.task, &[]);
        }
        v.items(&self.rollback, &[]);
    }

    /// Calls `f` for every task of the play, in execution order, including tasks of roles
    /// (dependencies first), imports, statically loaded includes, handlers and `rollback`.
    pub fn for_each_task<'a>(&'a self, f: &mut dyn FnMut(&'a Task)) {
        walk_tasks(&self.pre_tasks, f);
        for r in &self.roles {
            walk_role(r, f);
        }
        walk_tasks(&self.tasks, f);
        walk_tasks(&self.post_tasks, f);
        for h in &self.handlers {
            f(&h.task);
        }
        walk_tasks(&self.rollback, f);
    }

    /// The roles `import_role` brings into the play (in its sections, blocks, imported task
    /// files and the tasks of its roles), in load order: as in Ansible, their defaults and
    /// `vars/` are the play's from its start (`include_role` exports only with `public`).
    pub fn imported_roles(&self) -> Vec<&RoleRef> {
        fn items<'a>(list: &'a [TaskItem], out: &mut Vec<&'a RoleRef>) {
            for it in list {
                match it {
                    TaskItem::Task(_) => {}
                    TaskItem::Block(b) => {
                        items(&b.block, out);
                        items(&b.rescue, out);
                        items(&b.always, out);
                    }
                    TaskItem::ImportTasks(i) => items(&i.tasks, out),
                    TaskItem::ImportRole(r) => {
                        out.push(r);
                        role(r, out);
                    }
                }
            }
        }
        fn role<'a>(r: &'a RoleRef, out: &mut Vec<&'a RoleRef>) {
            for d in &r.role.dependencies {
                role(d, out);
            }
            items(&r.role.tasks, out);
        }
        let mut out = Vec::new();
        for r in &self.roles {
            role(r, &mut out);
        }
        for list in [&self.pre_tasks, &self.tasks, &self.post_tasks] {
            items(list, &mut out);
        }
        out
    }

    /// Calls `f` for every block of the play (nested ones, those of roles, imports and
    /// statically loaded includes), in execution order.
    pub fn for_each_block(&self, f: &mut dyn FnMut(&Block)) {
        fn items(list: &[TaskItem], f: &mut dyn FnMut(&Block)) {
            for it in list {
                match it {
                    TaskItem::Task(t) => match &t.included {
                        Some(Included::Tasks { tasks, .. }) => items(tasks, f),
                        Some(Included::Role(r)) => role(r, f),
                        _ => {}
                    },
                    TaskItem::Block(b) => {
                        f(b);
                        items(&b.block, f);
                        items(&b.rescue, f);
                        items(&b.always, f);
                    }
                    TaskItem::ImportTasks(i) => items(&i.tasks, f),
                    TaskItem::ImportRole(r) => role(r, f),
                }
            }
        }
        fn role(r: &RoleRef, f: &mut dyn FnMut(&Block)) {
            for d in &r.role.dependencies {
                role(d, f);
            }
            items(&r.role.tasks, f);
        }
        items(&self.pre_tasks, f);
        for r in &self.roles {
            role(r, f);
        }
        items(&self.tasks, f);
        items(&self.post_tasks, f);
        items(&self.rollback, f);
    }

    /// The play's includes whose file or role is checked when reached ([`Task::when_reached`]),
    /// in execution order, each once.
    pub fn when_reached(&self) -> Vec<&Task> {
        let mut out: Vec<&Task> = Vec::new();
        let mut seen = BTreeSet::new();
        self.for_each_task(&mut |t| {
            if t.when_reached && seen.insert(t.loc.to_string()) {
                out.push(t);
            }
        });
        out
    }

    /// Names this play sets at run time (see [`Playbook::runtime_names`]).
    pub fn runtime_names(&self, out: &mut BTreeSet<String>) {
        self.for_each_task(&mut |t| task_runtime_names(t, out));
        let mut rescue = false;
        for list in [&self.pre_tasks, &self.tasks, &self.post_tasks] {
            rescue |= has_rescue(list);
        }
        for r in &self.roles {
            rescue |= role_has_rescue(r);
        }
        if rescue {
            out.insert("ansible_failed_task".into());
            out.insert("ansible_failed_result".into());
        }
    }
}

impl Playbook {
    /// Every variable name that only exists once the run is under way: `register:` names,
    /// `set_fact` keys, names set by `include_vars` where the file is known, loop variables
    /// (`item`, `loop_control.loop_var`, `index_var`, `ansible_loop`...). The renderer's
    /// strict-undefined check must not report these before the run.
    pub fn runtime_names(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for p in &self.plays {
            p.runtime_names(&mut out);
        }
        out
    }
}

/// True when a block in `items` (or in what they import or include) has a `rescue:`, which
/// sets `ansible_failed_task` and `ansible_failed_result`.
fn has_rescue(items: &[TaskItem]) -> bool {
    items.iter().any(|it| match it {
        TaskItem::Task(t) => match &t.included {
            Some(Included::Tasks { tasks, .. }) => has_rescue(tasks),
            Some(Included::Role(r)) => role_has_rescue(r),
            _ => false,
        },
        TaskItem::Block(b) => {
            !b.rescue.is_empty()
                || has_rescue(&b.block)
                || has_rescue(&b.rescue)
                || has_rescue(&b.always)
        }
        TaskItem::ImportTasks(i) => has_rescue(&i.tasks),
        TaskItem::ImportRole(r) => role_has_rescue(r),
    })
}

fn role_has_rescue(r: &RoleRef) -> bool {
    has_rescue(&r.role.tasks) || r.role.dependencies.iter().any(role_has_rescue)
}

fn collect_role_handlers<'a>(items: &'a [TaskItem], out: &mut Vec<&'a Handler>) {
    for it in items {
        match it {
            TaskItem::Task(t) => {
                if let Some(Included::Role(r)) = &t.included {
                    out.extend(r.role.all_handlers());
                }
                if let Some(Included::Tasks { tasks, .. }) = &t.included {
                    collect_role_handlers(tasks, out);
                }
            }
            TaskItem::Block(b) => {
                collect_role_handlers(&b.block, out);
                collect_role_handlers(&b.rescue, out);
                collect_role_handlers(&b.always, out);
            }
            TaskItem::ImportTasks(i) => collect_role_handlers(&i.tasks, out),
            TaskItem::ImportRole(r) => out.extend(r.role.all_handlers()),
        }
    }
}

fn with_tags(base: &[String], own: &[Named]) -> Vec<String> {
    let mut tags = base.to_vec();
    for t in own {
        if !tags.contains(&t.name) {
            tags.push(t.name.clone());
        }
    }
    tags
}

fn push_task(t: &Task, base: &[String], section: Section, out: &mut Vec<FlatTask>) {
    let name = t
        .name
        .as_ref()
        .and_then(Node::scalar_string)
        .unwrap_or_else(|| t.action.module.clone());
    out.push(FlatTask {
        name,
        module: t.action.module.clone(),
        loc: t.loc.clone(),
        tags: with_tags(base, &t.keywords.tags),
        role: t.role.clone(),
        section,
        reversible: t.not_reversible().is_none(),
        not_reversible: t.not_reversible(),
    });
}

fn flatten(items: &[TaskItem], base: &[String], section: Section, out: &mut Vec<FlatTask>) {
    for it in items {
        match it {
            TaskItem::Task(t) => push_task(t, base, section, out),
            TaskItem::Block(b) => {
                let tags = with_tags(base, &b.keywords.tags);
                flatten(&b.block, &tags, section, out);
                flatten(&b.rescue, &tags, section, out);
                flatten(&b.always, &tags, section, out);
            }
            TaskItem::ImportTasks(i) => {
                flatten(&i.tasks, &with_tags(base, &i.keywords.tags), section, out);
            }
            TaskItem::ImportRole(r) => flatten_role(r, base, section, out),
        }
    }
}

fn flatten_role(r: &RoleRef, base: &[String], section: Section, out: &mut Vec<FlatTask>) {
    let tags = with_tags(base, &r.keywords.tags);
    for d in &r.role.dependencies {
        flatten_role(d, &tags, section, out);
    }
    flatten(&r.role.tasks, &tags, section, out);
}

fn flatten_role_handlers(r: &RoleRef, base: &[String], out: &mut Vec<FlatTask>) {
    let tags = with_tags(base, &r.keywords.tags);
    for d in &r.role.dependencies {
        flatten_role_handlers(d, &tags, out);
    }
    for h in &r.role.handlers {
        push_task(&h.task, &tags, Section::Handlers, out);
    }
}

fn walk_tasks<'a>(items: &'a [TaskItem], f: &mut dyn FnMut(&'a Task)) {
    for it in items {
        match it {
            TaskItem::Task(t) => {
                f(t);
                match &t.included {
                    Some(Included::Tasks { tasks, .. }) => walk_tasks(tasks, f),
                    Some(Included::Role(r)) => walk_role(r, f),
                    _ => {}
                }
            }
            TaskItem::Block(b) => {
                walk_tasks(&b.block, f);
                walk_tasks(&b.rescue, f);
                walk_tasks(&b.always, f);
            }
            TaskItem::ImportTasks(i) => walk_tasks(&i.tasks, f),
            TaskItem::ImportRole(r) => walk_role(r, f),
        }
    }
}

fn walk_role<'a>(r: &'a RoleRef, f: &mut dyn FnMut(&'a Task)) {
    for d in &r.role.dependencies {
        walk_role(d, f);
    }
    walk_tasks(&r.role.tasks, f);
    for h in &r.role.handlers {
        f(&h.task);
    }
}

impl Task {
    /// The mistakes a host reaching this include would meet: its own (the file's), and those
    /// of the tasks in it that fail only when they run (their own `when:` may skip them).
    pub fn deferred_within(&self) -> Vec<&crate::diag::Diagnostic> {
        let mut out: Vec<&crate::diag::Diagnostic> = self.deferred.iter().collect();
        if let Some(Included::Tasks { tasks, .. }) = &self.included {
            walk_tasks(tasks, &mut |t| {
                if !matches!(t.action.module.as_str(), "include_tasks" | "include_role") {
                    out.extend(t.deferred.iter());
                }
            });
        }
        if let Some(Included::Role(r)) = &self.included {
            walk_role(r, &mut |t| {
                if !matches!(t.action.module.as_str(), "include_tasks" | "include_role") {
                    out.extend(t.deferred.iter());
                }
            });
        }
        out
    }

    /// Whether rollback can undo this step: file-shaped modules are restored from their
    /// backups; `command`/`shell`/`script`/`raw` only when `creates:`/`removes:` make them
    /// idempotent (a play's `rollback:` tasks cover the rest); one of Ansible's own modules
    /// run through the bridge only when it names the file it changes (`path`, `dest`), which
    /// is backed up first.
    pub fn reversible(&self) -> bool {
        self.not_reversible().is_none()
    }

    /// Why rollback cannot undo this step (see [`Task::reversible`]); `None` when it can.
    pub fn not_reversible(&self) -> Option<String> {
        const COMMANDS: &str = "add creates:, removes: or a rollback: task";
        let given = |k: &str| self.action.arg(k).is_some();
        match self.action.module.as_str() {
            "command" | "shell" | "script" if given("creates") || given("removes") => None,
            "command" | "shell" | "script" | "raw" => Some(COMMANDS.into()),
            m if !crate::modules::is_native(m) => (!["path", "dest"].iter().any(|k| given(k)))
                .then(|| {
                    "Ansible's module: not reversible unless it names its file as path: or dest:; add a rollback: task".into()
                }),
            m => match crate::modules::registry::entry(m).map(|e| e.runs) {
                Some(crate::modules::registry::Runs::Host(module)) => {
                    module.not_reversible(&given).map(str::to_string)
                }
                _ => None,
            },
        }
    }
}

/// The loop variables a task defines for its own sites.
pub fn loop_vars(t: &Task) -> Vec<String> {
    if t.loop_over.is_none() {
        return Vec::new();
    }
    let lc = t.loop_control.as_ref();
    let mut v = vec![
        lc.and_then(|c| c.loop_var.as_ref())
            .map_or_else(|| "item".to_string(), |n| n.name.clone()),
        "ansible_loop_var".to_string(),
    ];
    if let Some(i) = lc.and_then(|c| c.index_var.as_ref()) {
        v.push(i.name.clone());
        v.push("ansible_index_var".to_string());
    }
    if lc
        .and_then(|c| c.extended.as_ref())
        .is_some_and(|e| e.literal() != Some(false))
    {
        v.push("ansible_loop".to_string());
    }
    v
}

fn task_runtime_names(t: &Task, out: &mut BTreeSet<String>) {
    if let Some(r) = &t.register {
        out.insert(r.name.clone());
    }
    out.extend(loop_vars(t));
    // Facts a module returns (`getent_passwd`), native or one of Ansible's own.
    out.extend(crate::modules::fact_names(&t.action.module, |arg| {
        t.action.arg(arg).and_then(Node::scalar_string)
    }));
    match t.action.module.as_str() {
        "set_fact" => {
            let names: Vec<&String> = t
                .action
                .args
                .iter()
                .map(|(k, _)| k)
                .filter(|k| *k != "cacheable")
                .collect();
            // `cacheable` ones are host facts too (`ansible_facts.NAME`).
            if t.action
                .arg("cacheable")
                .is_some_and(|n| crate::modules::spec::ansible_bool(n) != Some(false))
            {
                let facts: Vec<String> = names
                    .iter()
                    .map(|k| k.strip_prefix("ansible_").unwrap_or(k).to_string())
                    .collect();
                crate::modules::bridge::note_facts(&facts);
            }
            out.extend(names.into_iter().cloned());
        }
        "include_vars" => {
            if let Some(Included::Vars { names, .. }) = &t.included {
                out.extend(names.iter().cloned());
            }
        }
        // A public include_role's defaults and vars exist once it ran.
        "include_role"
            if t.action
                .arg("public")
                .is_some_and(|n| crate::modules::spec::ansible_bool(n) == Some(true)) =>
        {
            if let Some(Included::Role(r)) = &t.included {
                fn names(r: &RoleRef, out: &mut BTreeSet<String>) {
                    for d in &r.role.dependencies {
                        names(d, out);
                    }
                    let all = r.role.defaults.iter().chain(&r.role.vars);
                    out.extend(all.map(|(k, _)| k.clone()));
                }
                names(r, out);
            }
        }
        _ => {}
    }
}

struct Visitor<'f, 'g> {
    f: &'f mut dyn FnMut(TemplateSite<'g>),
}

impl<'f, 'g> Visitor<'f, 'g> {
    /// Every templated string inside `node`.
    fn node(&mut self, node: Option<&'g Node>, field: &str, task: Option<&'g Task>, lv: &[String]) {
        let Some(node) = node else { return };
        match &node.kind {
            Kind::Str { .. } if is_template(node) && node.tag.as_deref() != Some("unsafe") => {
                (self.f)(TemplateSite {
                    node,
                    kind: SiteKind::Template,
                    field: field.to_string(),
                    task,
                    loop_vars: lv.to_vec(),
                });
            }
            Kind::Seq(items) => {
                for i in items {
                    self.node(Some(i), field, task, lv);
                }
            }
            Kind::Map(entries) => {
                for (k, v) in entries {
                    self.node(Some(k), field, task, lv);
                    let sub = format!("{field}.{}", k.scalar_string().unwrap_or_default());
                    self.node(Some(v), &sub, task, lv);
                }
            }
            _ => {}
        }
    }

    /// Bare expressions (strings only: a literal boolean needs no evaluation).
    fn exprs(&mut self, nodes: &'g [Node], field: &str, task: Option<&'g Task>, lv: &[String]) {
        for n in nodes {
            if n.as_str().is_some() {
                (self.f)(TemplateSite {
                    node: n,
                    kind: SiteKind::Expression,
                    field: field.to_string(),
                    task,
                    loop_vars: lv.to_vec(),
                });
            }
        }
    }

    fn val<T>(
        &mut self,
        v: Option<&'g Val<T>>,
        field: &str,
        task: Option<&'g Task>,
        lv: &[String],
    ) {
        if let Some(Val::Template(n)) = v {
            self.node(Some(n), field, task, lv);
        }
    }

    fn keywords(&mut self, k: &'g Keywords, task: Option<&'g Task>, lv: &[String]) {
        self.exprs(&k.when, "when", task, lv);
        for (name, n) in &k.vars {
            self.node(Some(n), &format!("vars.{name}"), task, lv);
        }
        for n in &k.environment {
            self.node(Some(n), "environment", task, lv);
        }
        self.node(k.become_user.as_ref(), "become_user", task, lv);
        self.node(k.become_method.as_ref(), "become_method", task, lv);
        self.node(k.connection.as_ref(), "connection", task, lv);
        self.node(k.remote_user.as_ref(), "remote_user", task, lv);
        self.node(k.delegate_to.as_ref(), "delegate_to", task, lv);
        self.val(k.r#become.as_ref(), "become", task, lv);
        self.val(k.port.as_ref(), "port", task, lv);
        self.val(k.no_log.as_ref(), "no_log", task, lv);
        self.val(k.ignore_errors.as_ref(), "ignore_errors", task, lv);
        self.val(
            k.ignore_unreachable.as_ref(),
            "ignore_unreachable",
            task,
            lv,
        );
        self.val(k.check_mode.as_ref(), "check_mode", task, lv);
        self.val(k.diff.as_ref(), "diff", task, lv);
        self.val(k.any_errors_fatal.as_ref(), "any_errors_fatal", task, lv);
        self.val(k.delegate_facts.as_ref(), "delegate_facts", task, lv);
        self.val(k.run_once.as_ref(), "run_once", task, lv);
        self.val(k.throttle.as_ref(), "throttle", task, lv);
        self.val(k.timeout.as_ref(), "timeout", task, lv);
    }

    fn items(&mut self, items: &'g [TaskItem], lv: &[String]) {
        for it in items {
            match it {
                TaskItem::Task(t) => self.task(t, lv),
                TaskItem::Block(b) => {
                    self.node(b.name.as_ref(), "name", None, lv);
                    self.keywords(&b.keywords, None, lv);
                    self.items(&b.block, lv);
                    self.items(&b.rescue, lv);
                    self.items(&b.always, lv);
                }
                TaskItem::ImportTasks(i) => {
                    self.node(i.name.as_ref(), "name", None, lv);
                    self.keywords(&i.keywords, None, lv);
                    self.items(&i.tasks, lv);
                }
                TaskItem::ImportRole(r) => self.role(r, lv),
            }
        }
    }

    fn role(&mut self, r: &'g RoleRef, lv: &[String]) {
        self.keywords(&r.keywords, None, lv);
        for (k, n) in &r.params {
            self.node(Some(n), &format!("vars.{k}"), None, lv);
        }
        for (k, n) in r.role.defaults.iter().chain(r.role.vars.iter()) {
            self.node(Some(n), &format!("vars.{k}"), None, lv);
        }
        for d in &r.role.dependencies {
            self.role(d, lv);
        }
        self.items(&r.role.tasks, lv);
        for h in &r.role.handlers {
            self.task(&h.task, lv);
        }
    }

    fn task(&mut self, t: &'g Task, outer: &[String]) {
        let task = Some(t);
        // The loop expression itself is evaluated before any item exists.
        if let Some(l) = &t.loop_over {
            self.node(Some(&l.items), "loop", task, outer);
        }
        let mut lv = outer.to_vec();
        for v in loop_vars(t) {
            if !lv.contains(&v) {
                lv.push(v);
            }
        }
        self.node(t.name.as_ref(), "name", task, &lv);
        self.keywords(&t.keywords, task, &lv);
        self.node(t.action.free_form.as_ref(), "free_form", task, &lv);
        for (k, n) in &t.action.args {
            let field = format!("args.{k}");
            match (t.action.module.as_str(), k.as_str()) {
                ("assert", "that") => match &n.kind {
                    Kind::Seq(items) => self.exprs(items, &field, task, &lv),
                    _ => self.exprs(std::slice::from_ref(n), &field, task, &lv),
                },
                ("debug", "var") => self.exprs(std::slice::from_ref(n), &field, task, &lv),
                _ => self.node(Some(n), &field, task, &lv),
            }
        }
        if let Some(lc) = &t.loop_control {
            self.node(lc.label.as_ref(), "loop_control.label", task, &lv);
        }
        self.exprs(&t.changed_when, "changed_when", task, &lv);
        self.exprs(&t.failed_when, "failed_when", task, &lv);
        self.exprs(&t.until, "until", task, &lv);
        self.val(t.retries.as_ref(), "retries", task, &lv);
        self.val(t.delay.as_ref(), "delay", task, &lv);
        self.val(t.async_secs.as_ref(), "async", task, &lv);
        self.val(t.poll.as_ref(), "poll", task, &lv);
        match &t.included {
            Some(Included::Tasks { tasks, .. }) => self.items(tasks, &lv),
            Some(Included::Role(r)) => self.role(r, &lv),
            _ => {}
        }
    }

    fn probe(&mut self, p: &'g Probe) {
        self.node(p.name.as_ref(), "health.name", None, &[]);
        match &p.check {
            ProbeCheck::Http {
                url,
                body,
                headers,
                ca_file,
                ..
            } => {
                self.node(Some(url), "health.http", None, &[]);
                self.node(body.as_ref(), "health.body", None, &[]);
                for (k, n) in headers {
                    self.node(Some(n), &format!("health.headers.{k}"), None, &[]);
                }
                self.node(ca_file.as_ref(), "health.ca_file", None, &[]);
            }
            ProbeCheck::Tcp { address, .. } => self.node(Some(address), "health.tcp", None, &[]),
            ProbeCheck::Command { command, stdout } => {
                self.node(Some(command), "health.command", None, &[]);
                self.node(stdout.as_ref(), "health.stdout", None, &[]);
            }
            ProbeCheck::Prometheus { url, query, .. } => {
                self.node(Some(url), "health.prometheus", None, &[]);
                self.node(Some(query), "health.query", None, &[]);
            }
        }
    }
}
