//! The command line exactly as the user typed it (clap derive, no interpretation).
//!
//! Owns flag names, help texts and environment fallbacks. It must not validate or combine
//! values: `settings.rs` turns these into a checked `Settings`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// rdeploy: agentless, push-based deployments with backups, health gates and rollback.
#[derive(Debug, Parser)]
#[command(name = "rdeploy", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Run a playbook (or, with --syntax-check/--list-*, only check or list it).
    Run(RunArgs),
    /// Print each play's batches and tasks without connecting to any host.
    Plan(PlanArgs),
    /// Show the inventory as rdeploy reads it.
    Inventory(InventoryArgs),
    /// Print a module's documentation and arguments.
    Doc(DocArgs),
    /// Restore every host an earlier run changed to what it was before that run.
    Rollback(RollbackArgs),
    /// Undo only the switches of an earlier run (its `haproxy` tasks, and tasks tagged
    /// `switch`): each server's state and weight, or the switched link, as before it; what
    /// the run deployed stays.
    SwitchBack(RollbackArgs),
    /// List earlier runs: id, playbook, start, end, outcome, hosts changed, release.
    History(HistoryArgs),
    /// Print one run, per host and step.
    Show(ShowArgs),
    /// Per host: the release label it runs, the run that last changed it and how that run
    /// ended (finished, rolled back, in flight, or left mid-flight: needs attention).
    Status(StatusArgs),
    /// Go on with an interrupted run from the first batch it did not finish.
    Resume(ResumeArgs),
    /// Approve a run awaiting approval: it goes on from the batch its gate stopped
    /// (as `resume`).
    Approve(ResumeArgs),
    /// Reject a run awaiting approval: what it did is rolled back (as `rollback`).
    Reject(RollbackArgs),
    /// Encrypt, decrypt or view a file in Ansible Vault format.
    #[command(subcommand)]
    Vault(VaultCommand),
}

/// Where vault passwords come from (never a prompt).
#[derive(Debug, Args, Clone, Default)]
pub struct VaultArgs {
    /// File holding a vault password (its content, whitespace stripped at both ends); an
    /// executable file is run and its output (CR/LF stripped at both ends) is the password.
    /// Repeatable.
    #[arg(
        long = "vault-password-file",
        visible_alias = "vault-pass-file",
        value_name = "FILE",
        env = "RDEPLOY_VAULT_PASSWORD_FILE"
    )]
    pub vault_password_file: Vec<PathBuf>,
    /// A password under a vault id, `LABEL@FILE` (or `FILE`); tried first for `1.2` vault texts
    /// with that label. Repeatable.
    #[arg(long = "vault-id", value_name = "LABEL@FILE")]
    pub vault_id: Vec<String>,
}

/// `rdeploy vault`.
#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Encrypt a file in place (or into --output).
    Encrypt(VaultFileArgs),
    /// Decrypt a file in place (or into --output).
    Decrypt(VaultFileArgs),
    /// Print a vault file's plaintext.
    View(VaultFileArgs),
}

/// A vault subcommand's file and passwords.
#[derive(Debug, Args)]
pub struct VaultFileArgs {
    /// The file.
    pub file: PathBuf,
    #[command(flatten)]
    pub vault: VaultArgs,
    /// Write here instead of rewriting FILE (`-` for stdout).
    #[arg(long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// With `encrypt` and several passwords: the vault id to encrypt with [default: the first].
    #[arg(long = "encrypt-vault-id", value_name = "LABEL")]
    pub encrypt_vault_id: Option<String>,
}

/// Flags shared by every command that reads an inventory and a playbook.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Inventory file, directory or executable script; repeatable.
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "PATH",
        env = "RDEPLOY_INVENTORY",
        value_delimiter = ','
    )]
    pub inventory: Vec<PathBuf>,
    /// Further limit the hosts to this pattern (`web:&prod`, `~db\d+`, `@file`).
    #[arg(short = 'l', long = "limit", value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Extra variables: `k=v k2=v2`, JSON/YAML (`'{"k": 1}'`) or `@file`; repeatable; highest precedence.
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
    /// Only run tasks and plays tagged with these tags (comma-separated, repeatable).
    #[arg(short = 't', long = "tags", value_name = "TAGS", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks and plays tagged with these tags.
    #[arg(long = "skip-tags", value_name = "TAGS", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// Extra directories to look for roles in (after `roles/` next to the playbook).
    #[arg(
        long = "roles-path",
        value_name = "DIR",
        env = "RDEPLOY_ROLES_PATH",
        value_delimiter = ':'
    )]
    pub roles_path: Vec<PathBuf>,
    /// A Python with ansible-core: Ansible's own modules that rdeploy does not carry run
    /// through it [default: `python3` on PATH, when it can import ansible].
    #[arg(
        long = "ansible-python",
        value_name = "PATH",
        env = "RDEPLOY_ANSIBLE_PYTHON"
    )]
    pub ansible_python: Option<PathBuf>,
    /// Seed for `order: shuffle`, so that a shuffled plan can be reproduced.
    #[arg(long = "shuffle-seed", value_name = "N")]
    pub shuffle_seed: Option<u64>,
    /// Output format.
    #[arg(long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// More output (-v, -vv, -vvv).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(flatten)]
    pub vault: VaultArgs,
}

/// `rdeploy run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The playbook to run.
    pub playbook: PathBuf,
    #[command(flatten)]
    pub common: Common,
    /// Run only if this plan (`rdeploy plan --out FILE`) still holds: the same input files,
    /// extra variables, --limit and plan; otherwise exit 4 naming what drifted.
    #[arg(long = "plan", value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Check the playbook, its roles and templates; connect to nothing.
    #[arg(long = "syntax-check")]
    pub syntax_check: bool,
    /// List the hosts each play would run on; connect to nothing.
    #[arg(long = "list-hosts")]
    pub list_hosts: bool,
    /// List the tasks each play would run; connect to nothing.
    #[arg(long = "list-tasks")]
    pub list_tasks: bool,
    /// List every tag in the playbook; connect to nothing.
    #[arg(long = "list-tags")]
    pub list_tags: bool,
    /// Report what would change, change nothing.
    #[arg(short = 'C', long = "check")]
    pub check: bool,
    /// Show the changes (text diffs, before/after of mode, owner, link target, state).
    #[arg(short = 'D', long = "diff")]
    pub diff: bool,
    /// How many hosts run at once [default: `forks` in ansible.cfg, else 50].
    #[arg(short = 'f', long = "forks", value_name = "N")]
    pub forks: Option<usize>,
    /// Start at the task with this name (`NAME` or `role : NAME`), skipping those before it.
    #[arg(long = "start-at-task", value_name = "NAME")]
    pub start_at_task: Option<String>,
    /// Default time limit for each command a task runs (`30s`, `5m`); a task's `timeout:` wins.
    #[arg(long = "task-timeout", value_name = "DURATION")]
    pub task_timeout: Option<String>,
    /// Run notified handlers even on hosts that failed.
    #[arg(long = "force-handlers")]
    pub force_handlers: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub become_: BecomeArgs,
    /// Where run journals are kept [default: $XDG_STATE_HOME/rdeploy].
    #[arg(long = "state-dir", value_name = "DIR", env = "RDEPLOY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Go on with an interrupted run: batches it finished are skipped (`rdeploy resume`).
    #[arg(long = "resume", value_name = "RUN_ID")]
    pub resume: Option<String>,
    /// With `--resume`: the approval gate the run stopped at is passed (`rdeploy approve`).
    #[arg(long = "approved", hide = true, requires = "resume")]
    pub approved: bool,
    /// Start although run RUN_ID was left unfinished on these hosts (killed mid-step);
    /// without it such a run is refused (exit 4). Repeat for several runs.
    #[arg(long = "force-over", value_name = "RUN_ID")]
    pub force_over: Vec<String>,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub unattended: UnattendedArgs,
    /// Progress bars below the results: `auto` draws them when stdout is a terminal, unless
    /// -q, --output json, CI, or TERM unset or dumb; `always` also with -q or CI; `never`.
    #[arg(
        long = "progress",
        value_enum,
        value_name = "WHEN",
        env = "RDEPLOY_PROGRESS",
        default_value_t = ProgressWhen::Auto
    )]
    pub progress: ProgressWhen,
}

/// `become` and passwords from the command line (Ansible's flags). The flags are the lowest
/// precedence: a play's or task's `become:` keyword wins, an `ansible_become*` variable wins
/// over both.
#[derive(Debug, Args, Clone, Default)]
pub struct BecomeArgs {
    /// Run tasks as another user (sudo) where the playbook does not say `become:`.
    #[arg(short = 'b', long = "become")]
    pub r#become: bool,
    /// The user to become [default: root].
    #[arg(long = "become-user", value_name = "USER")]
    pub become_user: Option<String>,
    /// How to become it: `sudo` (the default) or `su`.
    #[arg(long = "become-method", value_name = "METHOD")]
    pub become_method: Option<String>,
    /// Ask for the become password on the terminal (hidden); without a terminal it is an error.
    #[arg(
        short = 'K',
        long = "ask-become-pass",
        visible_alias = "ask-become-password"
    )]
    pub ask_become_pass: bool,
    /// Ask for the vault password on the terminal (hidden); without a terminal it is an error.
    #[arg(
        short = 'J',
        long = "ask-vault-pass",
        visible_alias = "ask-vault-password"
    )]
    pub ask_vault_pass: bool,
}

/// The run lock (`run`, `resume`, `rollback`).
#[derive(Debug, Args, Clone, Default)]
pub struct LockArgs {
    /// When another run of the same inventory and playbook holds the lock, wait up to this
    /// long for it (`30s`, `10m`) instead of exiting 75 at once.
    #[arg(long = "lock-wait", value_name = "DURATION")]
    pub lock_wait: Option<String>,
    /// Take no lock (another run of the same inventory and playbook may run meanwhile).
    #[arg(long = "no-lock", conflicts_with = "lock_wait")]
    pub no_lock: bool,
}

/// What an unattended run (cron, CI) needs: bounded time, little output, a report, a log,
/// webhooks.
#[derive(Debug, Args, Clone, Default)]
pub struct UnattendedArgs {
    /// Only failures, warnings, gate failures, rollbacks and the recap.
    #[arg(short = 'q', long = "quiet", conflicts_with = "verbose")]
    pub quiet: bool,
    /// Stop at the next step boundary once this much time has passed since rdeploy started
    /// (`30m`, `2h`), lock waiting included; exit 124.
    #[arg(long = "deadline", value_name = "DURATION")]
    pub deadline: Option<String>,
    /// After SIGTERM or SIGINT, how long the steps in flight may take to finish (default
    /// 30s); then they are killed on their hosts, recorded as interrupted, and rdeploy exits
    /// 143 (130) at most 5 s later.
    #[arg(long = "stop-grace", value_name = "DURATION")]
    pub stop_grace: Option<String>,
    /// Write a final JSON report here (per host state, last task, batch, changes, error; run
    /// id, outcome, exit code, timing), whatever the output mode.
    #[arg(long = "report", value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Append every event of the run to this file as JSON lines, whatever the output mode.
    #[arg(long = "log-file", value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// With --check: exit 10 when something would change, 0 when nothing would.
    #[arg(long = "detailed-exitcode", requires = "check")]
    pub detailed_exitcode: bool,
    /// The release this run deploys (recorded in the journal, shown by `history` and
    /// `status`, sent in notifications); without it, the play's `release_label`.
    #[arg(long = "label", value_name = "TEXT")]
    pub label: Option<String>,
    /// When the change this run deploys was made (its commit or merge): a UTC date or time
    /// (`2026-12-01T08:00:00Z`, `2026-12-01`) or unix seconds; without it, the extra variable
    /// `release_time`. Recorded for `history --stats`' lead time.
    #[arg(long = "change-time", value_name = "WHEN")]
    pub change_time: Option<String>,
    /// POST a JSON summary to this URL when the run ends and when a rollback starts
    /// (5 s timeout; a failure is a warning); repeatable.
    #[arg(
        long = "notify",
        value_name = "URL",
        env = "RDEPLOY_NOTIFY",
        value_delimiter = ' '
    )]
    pub notify: Vec<String>,
}

/// `rdeploy resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The interrupted run.
    pub run_id: String,
    /// Where run journals are kept [default: $XDG_STATE_HOME/rdeploy].
    #[arg(long = "state-dir", value_name = "DIR", env = "RDEPLOY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Further `rdeploy run` flags (`-e` the run's extra vars again, `-f`, `--output`...).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "RUN FLAGS"
    )]
    pub rest: Vec<String>,
}

/// How to reach hosts over SSH (`run` and `rollback`).
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// ssh config file to read instead of ~/.ssh/config.
    #[arg(long = "ssh-config", value_name = "FILE", env = "RDEPLOY_SSH_CONFIG")]
    pub ssh_config: Option<PathBuf>,
    /// Unknown host keys: `strict` refuses them (the default), `accept-new` records them in
    /// known_hosts. A changed key is always refused.
    #[arg(long = "host-key-checking", value_enum, value_name = "POLICY")]
    pub host_key_checking: Option<HostKeyChecking>,
    /// Time limit for connecting to a host (TCP, key exchange, authentication), e.g. `10s`.
    #[arg(long = "connect-timeout", value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// Login user for hosts that set no `ansible_user` [default: `remote_user` in ansible.cfg].
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Private key file for hosts that set no `ansible_ssh_private_key_file` [default:
    /// `private_key_file` in ansible.cfg].
    #[arg(long = "private-key", visible_alias = "key-file", value_name = "FILE")]
    pub private_key: Option<PathBuf>,
    /// File whose first line is the passphrase of encrypted private keys.
    #[arg(long = "key-passphrase-file", value_name = "FILE")]
    pub key_passphrase_file: Option<PathBuf>,
}

/// `rdeploy rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The run to undo (`rdeploy history` lists them).
    pub run_id: String,
    /// Inventory [default: the run's own, from its journal; needed on another controller].
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "PATH",
        value_delimiter = ','
    )]
    pub inventory: Vec<PathBuf>,
    /// Only these hosts.
    #[arg(short = 'l', long = "limit", value_name = "PATTERN")]
    pub limit: Option<String>,
    /// How many hosts are restored at once.
    #[arg(short = 'f', long = "forks", value_name = "N")]
    pub forks: Option<usize>,
    /// Output format.
    #[arg(long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Where run journals are kept [default: $XDG_STATE_HOME/rdeploy].
    #[arg(long = "state-dir", value_name = "DIR", env = "RDEPLOY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub vault: VaultArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Roll back although later runs changed some of the same paths on the same hosts
    /// (their changes to those paths are undone too).
    #[arg(long = "force")]
    pub force: bool,
}

/// Where journals are and how to print them (`history`, `show`).
#[derive(Debug, Args)]
pub struct JournalArgs {
    /// Output format.
    #[arg(long = "output", value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// Where run journals are kept [default: $XDG_STATE_HOME/rdeploy].
    #[arg(long = "state-dir", value_name = "DIR", env = "RDEPLOY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

/// `rdeploy history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub journals: JournalArgs,
    /// Only runs started since then: a duration back from now (`7d`, `12h`, `2w`) or a date
    /// (`2026-11-01`, `2026-11-01T08:00:00Z`, UTC).
    #[arg(long = "since", value_name = "DURATION|DATE")]
    pub since: Option<String>,
    /// Per playbook: runs per day, change failure rate, mean time to restore, median
    /// duration.
    #[arg(long = "stats")]
    pub stats: bool,
    /// Only runs of this playbook (as given to `run`, or its file name).
    #[arg(long = "playbook", value_name = "PLAYBOOK")]
    pub playbook: Option<String>,
    /// Only runs on this environment: an inventory path as given to `run` (or the same
    /// file or folder by another relative path).
    #[arg(short = 'i', long = "inventory", value_name = "PATH")]
    pub inventory: Option<String>,
    /// Only runs with this release label.
    #[arg(long = "label", value_name = "TEXT")]
    pub label: Option<String>,
}

/// `rdeploy status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub journals: JournalArgs,
    /// Only runs on this environment (an inventory path); its hosts are listed even when no
    /// run changed them.
    #[arg(short = 'i', long = "inventory", value_name = "PATH")]
    pub inventory: Option<PathBuf>,
    /// Only hosts matching this pattern (with -i: any host pattern; without: names and globs).
    #[arg(short = 'l', long = "limit", value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Same as --output json.
    #[arg(long = "json")]
    pub json: bool,
    /// Ask the hosts of the inventory (-i, required) instead of this controller's journals:
    /// their manifests say which run last changed them, who ran it and whether it was rolled
    /// back, so this works from any controller.
    #[arg(long = "from-hosts")]
    pub from_hosts: bool,
    /// How many hosts are asked at once (--from-hosts).
    #[arg(short = 'f', long = "forks", value_name = "N")]
    pub forks: Option<usize>,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub vault: VaultArgs,
}

/// `rdeploy show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run to show.
    pub run_id: String,
    #[command(flatten)]
    pub journals: JournalArgs,
    /// Also write one self-contained HTML page picturing the run (timeline of batches and
    /// hosts, gate failures, rollbacks, analysis charts) to FILE.
    #[arg(long = "html", value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `--host-key-checking` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HostKeyChecking {
    /// Refuse hosts whose key is not in known_hosts.
    Strict,
    /// Record unknown keys; still refuse changed ones.
    AcceptNew,
}

/// `rdeploy plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The playbook to plan.
    pub playbook: PathBuf,
    #[command(flatten)]
    pub common: Common,
    /// Also write the plan pinned to its inputs (every file's sha256) to FILE, for
    /// `rdeploy run --plan FILE`: JSON, or Markdown for review when FILE ends in `.md`.
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also run the playbook in check mode on its hosts (changes nothing) and say what each
    /// host would change; with --out, the pin holds it and `run --plan` checks the hosts again.
    #[arg(long = "check")]
    pub check: bool,
    /// How many hosts check mode works on at once (--check).
    #[arg(short = 'f', long = "forks", value_name = "N")]
    pub forks: Option<usize>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `rdeploy inventory`.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Inventory file, directory or executable script; repeatable.
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "PATH",
        env = "RDEPLOY_INVENTORY",
        value_delimiter = ','
    )]
    pub inventory: Vec<PathBuf>,
    /// Print every group, host and variable as JSON (ansible-inventory --list shape).
    #[arg(long = "list", conflicts_with_all = ["graph", "host"])]
    pub list: bool,
    /// Print the group tree (ansible-inventory --graph), optionally from GROUP down.
    #[arg(long = "graph", value_name = "GROUP", num_args = 0..=1, default_missing_value = "all")]
    pub graph: Option<String>,
    /// Print one host's variables as JSON.
    #[arg(long = "host", value_name = "HOST")]
    pub host: Option<String>,
    /// Only hosts matching this pattern.
    #[arg(short = 'l', long = "limit", value_name = "PATTERN")]
    pub limit: Option<String>,
    #[command(flatten)]
    pub vault: VaultArgs,
}

/// `rdeploy doc`.
#[derive(Debug, Args)]
pub struct DocArgs {
    /// A module name (`copy`, `ansible.builtin.template`); none lists every module.
    pub module: Option<String>,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people: aligned text.
    Human,
    /// For machines: JSON.
    Json,
}

/// `--progress`: when progress bars are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressWhen {
    /// On a terminal, for human output, unless -q, CI, or TERM unset or dumb.
    Auto,
    /// Also with -q or CI.
    Always,
    /// Never.
    Never,
}
