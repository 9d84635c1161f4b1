//! The command line: the only place that knows the order of the stages.
//!
//! `args` is what the user typed, `settings` is it checked; `run` sequences
//! settings → inventory → playbook → plan → template check → lock → execute, and maps
//! outcomes to exit codes. Invalid input of any kind stops before a host is contacted.

pub mod args;
pub mod config;
pub mod lock;
pub mod pinned;
pub mod prompt;
pub mod runs;
pub mod settings;
pub mod stats;
pub mod status;
pub mod unattended;
pub mod vault;

use std::io::{self, Write};
use std::path::Path;

use crate::backup::journal;
use crate::diag::{Diagnostic, Diagnostics};
use crate::exec::{self, RunOptions};
use crate::inventory::Inventory;
use crate::plan::{self, Plan, PlanOptions};
use crate::playbook::{self, Playbook};
use crate::report;
use crate::report::progress;
use crate::report::run::{Format, Reporter};
use crate::report::summary::RunFacts;
use crate::transport::known_hosts::HostKeyPolicy;
use crate::transport::ssh_config::{self, Secret, SshOptions};
use crate::validate;
use crate::vars;
use args::{Cli, Command, OutputFormat};
use config::AnsibleCfg;
use settings::Settings;

/// Process exit codes (the README's table). No code means two things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every targeted host ok or changed.
    Success = 0,
    /// A bug in rdeploy.
    Internal = 1,
    /// One or more hosts failed or were unreachable; nothing was rolled back.
    HostsFailed = 2,
    /// A batch failed its health gate or failure budget and was rolled back cleanly.
    RolledBack = 3,
    /// Invalid input (playbook, inventory, options): nothing was run.
    Invalid = 4,
    /// Rollback incomplete: manual action needed.
    RollbackIncomplete = 5,
    /// Host identity refused (wins over every other code).
    HostKeyRefused = 6,
    /// No hosts matched.
    NoHosts = 7,
    /// The controller ran out of open files or memory (sysexits' `EX_OSERR`).
    ControllerExhausted = 71,
    /// `--check --detailed-exitcode`: something would change.
    ChangesPending = 10,
    /// Another run holds the lock.
    Locked = 75,
    /// `--deadline` passed: the run stopped at a step boundary (GNU `timeout`'s code).
    Deadline = 124,
    /// An approval gate stopped the run; it holds the lock until `rdeploy approve` or
    /// `rdeploy reject`.
    AwaitingApproval = 11,
    /// A batch was due outside the play's change windows, or a freeze file exists.
    OutsideWindow = 12,
    /// Interrupted by SIGINT.
    Interrupted = 130,
    /// Interrupted by SIGTERM.
    Terminated = 143,
}

/// Runs one command line to completion.
pub fn run(cli: Cli) -> color_eyre::Result<Exit> {
    // Not locked for the whole command: the progress bars' ticker thread draws on stdout too.
    let mut out = io::stdout();
    let result = match cli.command {
        Command::Run(a) => cmd_run(&mut out, a),
        Command::Plan(a) => cmd_plan(&mut out, a),
        Command::Inventory(a) => cmd_inventory(&mut out, a),
        Command::Doc(a) => cmd_doc(&mut out, a),
        Command::Rollback(a) => runs::cmd_rollback(a),
        Command::SwitchBack(a) => runs::cmd_switch_back(a),
        Command::History(a) => runs::cmd_history(&mut out, a),
        Command::Show(a) => runs::cmd_show(&mut out, a),
        Command::Status(a) => status::cmd_status(&mut out, a),
        Command::Resume(a) => runs::resume_args(a).and_then(|r| cmd_run(&mut out, r)),
        Command::Approve(a) => runs::approve_args(a).and_then(|r| cmd_run(&mut out, r)),
        Command::Reject(a) => runs::cmd_reject(a),
        Command::Vault(a) => vault::cmd_vault(&mut out, a),
    };
    // A reader that stopped reading (`rdeploy plan | head`), or a terminal that hung up
    // (EIO: the session closed, the hangup signal ignored), is not an error of ours.
    if let Err(e) = out.flush()
        && e.kind() != io::ErrorKind::BrokenPipe
        && e.raw_os_error() != Some(rustix::io::Errno::IO.raw_os_error())
    {
        return Err(e.into());
    }
    match result {
        Ok(exit) => Ok(exit),
        Err(Failed::Invalid(d)) => {
            report::diagnostics(&mut io::stderr().lock(), &d.sorted())?;
            Ok(Exit::Invalid)
        }
        Err(Failed::NoHosts(msg)) => {
            report::text(&mut io::stderr().lock(), &format!("rdeploy: {msg}"))?;
            Ok(Exit::NoHosts)
        }
        Err(Failed::Locked(msg)) => {
            report::text(&mut io::stderr().lock(), &format!("rdeploy: {msg}"))?;
            Ok(Exit::Locked)
        }
        Err(Failed::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Exit::Success),
        Err(Failed::Io(e)) => Err(e.into()),
    }
}

/// Why a command stopped before doing its work.
pub(crate) enum Failed {
    Invalid(Diagnostics),
    NoHosts(String),
    /// Another run holds the lock (the message names the holder).
    Locked(String),
    Io(io::Error),
}

impl From<Diagnostics> for Failed {
    fn from(d: Diagnostics) -> Failed {
        Failed::Invalid(d)
    }
}

impl From<io::Error> for Failed {
    fn from(e: io::Error) -> Failed {
        Failed::Io(e)
    }
}

/// Everything that is known before the first connection.
pub struct Checked {
    /// Validated options.
    pub settings: Settings,
    /// The inventory.
    pub inventory: Inventory,
    /// The playbook with its roles and imports.
    pub playbook: Playbook,
    /// Plays → batches → hosts, and tasks.
    pub plan: Plan,
}

/// Loads and checks everything: options, inventory, playbook, play-level values (prompts,
/// templated `vars_files` and play keywords), plan, templates. All mistakes from every stage
/// that could run are returned together. `ask`: a `vars_prompt` may be asked on the terminal
/// (a real run; never `rdeploy plan`, `--syntax-check` or a listing, as in Ansible).
pub fn check(settings: Settings, ask: bool) -> Result<Checked, Diagnostics> {
    let mut errors = Diagnostics::new();
    let playbook_dir = settings.playbook.parent().map(Path::to_path_buf);
    let inventory = Inventory::load(&settings.inventory, playbook_dir.as_deref());
    let opts = playbook::LoadOptions {
        roles_path: settings.roles_path.clone(),
        collections_path: settings.collections_path.clone(),
        extra_vars: settings
            .extra_vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        extra_var_names: settings.extra_vars.keys().cloned().collect(),
    };
    crate::modules::bridge::configure(settings.ansible_python.clone());
    let playbook = playbook::load(&settings.playbook, &opts);
    let (inventory, playbook) = match (inventory, playbook) {
        (Ok(i), Ok(p)) => (i, p),
        (i, p) => {
            if let Err(d) = i {
                errors.extend(d);
            }
            if let Err(d) = p {
                errors.extend(d);
            }
            return Err(errors);
        }
    };
    let mut playbook = playbook;
    let mut terminal = if ask { prompt::Terminal::open() } else { None };
    crate::resolve::plays(
        &inventory,
        &mut playbook,
        &settings,
        terminal
            .as_mut()
            .map(|t| t as &mut dyn crate::resolve::Asker),
    )?;
    let plan_opts = PlanOptions {
        limit: settings.limit.clone(),
        tags: settings.tags.clone(),
        skip_tags: settings.skip_tags.clone(),
        shuffle_seed: settings.shuffle_seed,
    };
    let mut plan = plan::build(&inventory, &playbook, &plan_opts)?;
    for (play, planned) in playbook.plays.iter().zip(plan.plays.iter_mut()) {
        let shared = vars::play_stack(
            &inventory,
            &playbook,
            play,
            &planned.hosts,
            &settings,
            false,
        );
        vars::register_secret_vars(&shared);
        planned.name = vars::play_name(play, &shared);
    }
    validate::templates(&inventory, &playbook, &plan, &settings)?;
    Ok(Checked {
        settings,
        inventory,
        playbook,
        plan,
    })
}

/// Reads the vault passwords and hands them to the YAML loader, before anything is loaded
/// (`-e @file` included); see [`vault_sources`].
pub(crate) fn install_vault(v: &args::VaultArgs) -> Result<(), Failed> {
    install_vault_with(v, None)
}

/// [`install_vault`] with a password typed at `--ask-vault-pass` (tried first, as Ansible's
/// default vault id).
fn install_vault_with(v: &args::VaultArgs, typed: Option<String>) -> Result<(), Failed> {
    let v = vault_sources(v);
    let mut secrets = settings::vault_secrets(&v)?;
    if let Some(t) = typed {
        secrets.insert(0, crate::vault::secrets::VaultSecret::new("default", t));
    }
    crate::vault::secrets::install(secrets);
    Ok(())
}

/// `-b`, `--become-user`, `--become-method`, and the passwords `-K` and `--ask-vault-pass` ask
/// for on the terminal (before anything else happens: without a terminal, an error before any
/// host is touched). Returns the become settings and the typed vault password.
fn become_and_passwords(a: &args::RunArgs) -> Result<(exec::BecomeCli, Option<String>), Failed> {
    prompt::no_password_in_argv(&a.common.extra_vars)?;
    let b = &a.become_;
    if let Some(m) = b.become_method.as_deref()
        && !matches!(m, "sudo" | "su")
    {
        return Err(Diagnostics::from(Diagnostic::options(format!(
            "--become-method {m}: not supported by rdeploy (sudo or su)"
        )))
        .into());
    }
    let password = if b.ask_become_pass {
        Some(prompt::password(
            "BECOME password: ",
            "-K/--ask-become-pass",
            "set ansible_become_password in a vault-encrypted variable or in a file given with -e @FILE",
        )?)
    } else {
        None
    };
    let vault = if b.ask_vault_pass {
        Some(prompt::password(
            "Vault password: ",
            "--ask-vault-pass",
            "give --vault-password-file FILE instead",
        )?)
    } else {
        None
    };
    let cli = exec::BecomeCli {
        r#become: b.r#become.then_some(true),
        user: b.become_user.clone(),
        method: b.become_method.clone(),
        password,
    };
    Ok((cli, vault))
}

/// Where vault passwords come from, as Ansible looks for them: the command line's, then
/// `ANSIBLE_VAULT_PASSWORD_FILE` and `ANSIBLE_VAULT_IDENTITY_LIST`, then `ansible.cfg`'s
/// `vault_password_file` and `vault_identity_list` (an error in that file is reported where
/// the settings are read).
pub(crate) fn vault_sources(v: &args::VaultArgs) -> args::VaultArgs {
    let mut v = v.clone();
    if let Some(f) = std::env::var_os("ANSIBLE_VAULT_PASSWORD_FILE").filter(|f| !f.is_empty()) {
        v.vault_password_file.push(f.into());
    }
    if let Ok(ids) = std::env::var("ANSIBLE_VAULT_IDENTITY_LIST") {
        v.vault_id.extend(
            ids.split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_string),
        );
    }
    if let Ok(Some(cfg)) = config::AnsibleCfg::discover() {
        v.vault_password_file.extend(cfg.vault_password_file);
        v.vault_id.extend(cfg.vault_identity_list);
    }
    v
}

fn cmd_plan(out: &mut dyn Write, a: args::PlanArgs) -> Result<Exit, Failed> {
    install_vault(&a.common.vault)?;
    let settings = Settings::from_common(&a.playbook, &a.common)?;
    let c = check(settings, false)?;
    config_note(c.settings.config.as_ref())?;
    match c.settings.output {
        OutputFormat::Json => report::plan_json(out, &c.plan)?,
        OutputFormat::Human => report::plan_human(out, &a.playbook.display().to_string(), &c.plan)?,
    }
    no_hosts(&c.plan)?;
    let predicted = if a.check {
        let p = pinned::predictions(&check_mode_events(&c, &a.connect, a.forks)?);
        match c.settings.output {
            OutputFormat::Json => report::json_line(out, &serde_json::json!({"hosts": p}))?,
            OutputFormat::Human => {
                report::text(out, "check mode on the hosts:")?;
                for (h, pr) in &p {
                    let mut line = match pr.changes.as_slice() {
                        [] => format!("  {h}: nothing to change"),
                        c => format!("  {h}: would change: {}", c.join("; ")),
                    };
                    if !pr.failed.is_empty() {
                        line.push_str(&format!(" (failed: {})", pr.failed.join("; ")));
                    }
                    report::text(out, &line)?;
                }
            }
        }
        p
    } else {
        Default::default()
    };
    if let Some(file) = &a.out {
        let mut pin =
            pinned::pin(&c.settings, &c.plan, std::slice::from_ref(file)).map_err(|e| {
                Failed::Invalid(Diagnostics::from(Diagnostic::options(format!(
                    "--out: {e}"
                ))))
            })?;
        pin.hosts = predicted;
        let mut human = Vec::new();
        report::plan_human(&mut human, &a.playbook.display().to_string(), &c.plan)?;
        let markdown = file.extension().is_some_and(|e| e == "md");
        let text = pinned::render(&pin, &String::from_utf8_lossy(&human), markdown);
        crate::report::summary::write_text(file, &text).map_err(|e| {
            Failed::Invalid(Diagnostics::from(Diagnostic::options(format!(
                "--out {}: {e}",
                file.display()
            ))))
        })?;
    }
    Ok(Exit::Success)
}

fn cmd_run(out: &mut dyn Write, a: args::RunArgs) -> Result<Exit, Failed> {
    let (become_cli, typed_vault) = become_and_passwords(&a)?;
    install_vault_with(&a.common.vault, typed_vault)?;
    // The deadline counts from here, lock waiting included.
    let began = (std::time::Instant::now(), journal::now());
    let mut settings = Settings::from_common(&a.playbook, &a.common)?;
    let pinned = match &a.plan {
        Some(file) => {
            let pin = pinned::read(file).map_err(|e| {
                Failed::Invalid(Diagnostics::from(Diagnostic::options(format!(
                    "--plan: {e}"
                ))))
            })?;
            // The pinned plan's shuffle, unless one is given.
            if a.common.shuffle_seed.is_none() {
                settings.shuffle_seed = pin.shuffle_seed;
            }
            Some((file.clone(), pin))
        }
        None => None,
    };
    let listing = a.syntax_check || a.list_hosts || a.list_tasks || a.list_tags;
    let c = check(settings, !listing)?;
    if let Some((file, pin)) = &pinned {
        let mut skip = vec![file.clone()];
        skip.extend(a.state_dir.clone());
        let now = pinned::pin(&c.settings, &c.plan, &skip).map_err(|e| {
            Failed::Invalid(Diagnostics::from(Diagnostic::options(format!(
                "--plan: {e}"
            ))))
        })?;
        // A plan made with --check: the hosts are checked again (check mode) once the inputs
        // hold.
        let mut drift = pinned::drift(pin, &now);
        if drift.is_empty() && !pin.hosts.is_empty() {
            let found = pinned::predictions(&check_mode_events(&c, &a.connect, a.forks)?);
            drift = pinned::host_drift(pin, &found);
        }
        if !drift.is_empty() {
            return Err(Failed::Invalid(Diagnostics::from(Diagnostic::options(
                format!(
                    "the plan {} no longer holds, nothing was run: {}; make a new one with `rdeploy plan --out`",
                    file.display(),
                    drift.join("; ")
                ),
            ))));
        }
    }
    let name = a.playbook.display().to_string();
    if a.syntax_check {
        report::syntax_ok(out, &name, &c.plan)?;
        return Ok(Exit::Success);
    }
    if a.list_hosts || a.list_tasks || a.list_tags {
        let what = report::Listing {
            hosts: a.list_hosts,
            tasks: a.list_tasks,
            tags: a.list_tags,
        };
        report::listing(out, &name, &c.plan, what)?;
        return Ok(Exit::Success);
    }
    no_hosts(&c.plan)?;
    let task_timeout = match a.task_timeout.as_deref() {
        None => None,
        Some(t) => Some(crate::playbook::values::parse_duration(t).ok_or_else(|| {
            Diagnostics::from(Diagnostic::options(format!(
                "--task-timeout '{t}': expected a number and a unit (ms, s, m, h), e.g. 30s"
            )))
        })?),
    };
    let cfg = c.settings.config.as_ref();
    if c.settings.verbose > 0 {
        config_note(cfg)?;
    }
    let forks = a.forks.or(cfg.and_then(|f| f.forks)).unwrap_or(50);
    if forks == 0 {
        return Err(Diagnostics::from(Diagnostic::options("--forks must be at least 1")).into());
    }
    let (ssh, ssh_config) = ssh_options(&a.connect, cfg)?;
    let done = match &a.resume {
        Some(id) => runs::finished_batches(a.state_dir.as_deref(), id)?,
        None => Default::default(),
    };
    let un = unattended::check(&a.unattended, &a.lock)?;
    let mut facts = RunFacts {
        playbook: c.settings.playbook.display().to_string(),
        inventory: c
            .settings
            .inventory
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        check: a.check,
        started: began.1,
        ..RunFacts::default()
    };
    let mut reporter = reporter_for(&c.settings, &a, &un);
    reporter.set_notify_context(notify_context(&a, &facts));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let run_id = runs::fresh_run_id(a.state_dir.as_deref());
    let run_lock = match lock_for_run(&a, &c, &un, began.0, &run_id) {
        Err(Failed::Locked(msg)) => {
            facts.error = Some(msg.clone());
            finish(&runtime, &mut reporter, &mut facts, Exit::Locked, None, &un)?;
            return Err(Failed::Locked(msg));
        }
        other => other?,
    };
    let run = if a.check {
        None
    } else {
        runs::refuse_over_unfinished(&a, &c, run_lock.is_some())?;
        Some(std::sync::Arc::new(runs::start(&a, &c, run_id)?))
    };
    if let Some(run) = &run {
        reporter.set_run_id(&run.run_id);
        facts.run_id = Some(run.run_id.clone());
    }
    {
        // Webhooks are posted on the runtime.
        let _inside = runtime.enter();
        reporter.notify_start(a.check);
    }
    let opts = RunOptions {
        verbosity: c.settings.verbose,
        check: a.check,
        diff: a.diff,
        forks,
        start_at_task: a.start_at_task.clone(),
        task_timeout,
        force_handlers: a.force_handlers,
        ssh,
        ssh_config: std::sync::Arc::new(ssh_config),
        run: run.clone(),
        done,
        approved: a.approved,
        become_cli,
        connect: exec::host::Connect::Hosts,
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
    let summary = runtime.block_on(async {
        unattended::watch_signals(
            std::sync::Arc::clone(&stop),
            un.stop_grace,
            unattended::Abandon {
                run: run.clone(),
                report: un.report.clone().map(|p| (p, facts.clone())),
            },
        );
        let watcher = un
            .deadline
            .map(|d| start_deadline(began.0 + d, d, &stop, run.clone(), &facts, &un));
        let summary = exec::run(&c, opts, &mut reporter, stop).await;
        // The run ended by itself: the webhooks and the report that follow are not cut short.
        if let Some(w) = watcher {
            w.abort();
        }
        summary
    });
    let mut exit = exit_of(&summary);
    if exit == Exit::Success && un.detailed_exitcode && !summary.changed_hosts.is_empty() {
        exit = Exit::ChangesPending;
    }
    if let Some(msg) = stopped_note(
        summary.outcome,
        run.as_deref(),
        a.unattended.deadline.as_deref(),
    ) {
        reporter.emit(&crate::report::events::Event::Warning(&msg));
    }
    if let (Some(run), Some(l)) = (&run, &run_lock) {
        if exit == Exit::AwaitingApproval {
            lock::hold(l.path(), &run.run_id);
        } else if let Some(id) = &a.resume {
            lock::release_hold(l.path(), id);
        }
    }
    if let Some(run) = &run {
        runs::end(run, &summary, exit);
        reporter.emit(&crate::report::events::Event::RunEnd {
            run_id: &run.run_id,
            journal: &run.journal.path().display().to_string(),
            timing: &summary.timing,
        });
    }
    finish(
        &runtime,
        &mut reporter,
        &mut facts,
        exit,
        Some(summary.timing),
        &un,
    )?;
    Ok(exit)
}

/// The JSON events (`--diff`) of the checked playbook run in check mode on its hosts: nothing
/// is changed, nothing is journaled, no lock is taken (as `run --check`).
fn check_mode_events(
    c: &Checked,
    connect: &args::ConnectArgs,
    forks: Option<usize>,
) -> Result<String, Failed> {
    let cfg = c.settings.config.as_ref();
    let (ssh, ssh_config) = ssh_options(connect, cfg)?;
    let opts = RunOptions {
        verbosity: 0,
        check: true,
        diff: true,
        forks: forks.or(cfg.and_then(|f| f.forks)).unwrap_or(50).max(1),
        ssh,
        ssh_config: std::sync::Arc::new(ssh_config),
        connect: exec::host::Connect::Hosts,
        ..RunOptions::default()
    };
    let captured = crate::report::run::Captured::default();
    let mut reporter = Reporter::new(Box::new(captured.clone()), Format::Json, false, 0, true);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
    runtime.block_on(exec::run(c, opts, &mut reporter, stop));
    Ok(captured.text())
}

/// The run lock of the playbook and inventory, waiting at most `--lock-wait` (and never past
/// the deadline). Check mode changes nothing and records nothing: it takes no lock, so that a
/// drift check from cron never fails because a deployment is running.
fn lock_for_run(
    a: &args::RunArgs,
    c: &Checked,
    un: &unattended::Unattended,
    began: std::time::Instant,
    run_id: &str,
) -> Result<Option<lock::RunLock>, Failed> {
    if a.check || un.no_lock {
        return Ok(None);
    }
    let state = journal::state_dir(a.state_dir.as_deref());
    let wait = match un.deadline {
        Some(d) => un.lock_wait.min(d.saturating_sub(began.elapsed())),
        None => un.lock_wait,
    };
    let (inv, pb) = (&c.settings.inventory, &c.settings.playbook);
    let l = unattended::take_lock(&state, inv, pb, wait, "run", Some(run_id))?;
    lock::refuse_held(l.path(), a.resume.as_deref())?;
    Ok(Some(l))
}

/// Starts the deadline's watcher (inside the runtime): it stops the run at `at`, and gives
/// up on steps still running a grace period later.
fn start_deadline(
    at: std::time::Instant,
    deadline: std::time::Duration,
    stop: &std::sync::Arc<std::sync::atomic::AtomicI32>,
    run: Option<std::sync::Arc<exec::backups::RunCtx>>,
    facts: &RunFacts,
    un: &unattended::Unattended,
) -> tokio::task::JoinHandle<()> {
    let mut abandoned = facts.clone();
    abandoned.outcome = runs::outcome_word(Exit::Deadline);
    abandoned.exit_code = Exit::Deadline as i32;
    let abandon = unattended::Abandon {
        run,
        report: un.report.clone().map(|p| (p, abandoned)),
    };
    let grace = unattended::grace(deadline);
    unattended::watch_deadline(at, grace, std::sync::Arc::clone(stop), abandon)
}

/// What every webhook payload of the run carries: its release label (`--label`), who started
/// it (the OS user and the controller's host name, as the journal records them), and its
/// environment (the inventory sources as given) and playbook.
fn notify_context(
    a: &args::RunArgs,
    facts: &RunFacts,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("label".into(), serde_json::json!(a.unattended.label));
    m.insert("user".into(), serde_json::json!(lock::account_name()));
    m.insert("controller".into(), serde_json::json!(lock::host_name()));
    m.insert("environment".into(), serde_json::json!(facts.inventory));
    m.insert("playbook".into(), serde_json::json!(facts.playbook));
    m
}

/// The reporter of a run: output format, verbosity, `--quiet`, `--progress`, and the
/// `--log-file` and `--notify` sinks.
fn reporter_for(s: &Settings, a: &args::RunArgs, un: &unattended::Unattended) -> Reporter {
    let format = match s.output {
        OutputFormat::Human => Format::Human,
        OutputFormat::Json => Format::Json,
    };
    let when = match a.progress {
        args::ProgressWhen::Auto => progress::When::Auto,
        args::ProgressWhen::Always => progress::When::Always,
        args::ProgressWhen::Never => progress::When::Never,
    };
    let bars = progress::wanted(
        when,
        format == Format::Human,
        un.quiet,
        progress::Terminal::stdout(),
    );
    let mut r = Reporter::stdout(format, s.verbose, a.diff)
        .quiet(un.quiet)
        .progress(bars);
    if let Some(log) = un.log.as_ref().and_then(|f| f.try_clone().ok()) {
        r = r.log_to(Box::new(log));
    }
    if !un.notify.is_empty() {
        r = r.notify(crate::report::notify::Notifier::new(un.notify.clone()));
    }
    r
}

/// The end of a run (or of one that could not start): the webhooks are told, and the report
/// written. A report that cannot be written is a warning: the run's outcome stands.
fn finish(
    runtime: &tokio::runtime::Runtime,
    reporter: &mut Reporter,
    facts: &mut RunFacts,
    exit: Exit,
    timing: Option<exec::Timing>,
    un: &unattended::Unattended,
) -> io::Result<()> {
    facts.outcome = runs::outcome_word(exit);
    facts.exit_code = exit as i32;
    facts.ended = journal::now();
    facts.timing = timing;
    let doc = runtime.block_on(reporter.finish(facts));
    if let Some(path) = &un.report
        && let Err(e) = crate::report::summary::write(path, &doc)
    {
        let msg = format!("--report {}: {e}", path.display());
        reporter.emit(&crate::report::events::Event::Warning(&msg));
    }
    Ok(())
}

/// What to tell the user when a signal or the deadline stopped the run.
fn stopped_note(
    outcome: exec::Outcome,
    run: Option<&exec::backups::RunCtx>,
    deadline: Option<&str>,
) -> Option<String> {
    let what = match outcome {
        exec::Outcome::Interrupted(15) => "interrupted by SIGTERM".to_string(),
        exec::Outcome::Interrupted(_) => "interrupted by SIGINT".to_string(),
        exec::Outcome::Deadline => format!("the deadline ({}) passed", deadline.unwrap_or("?")),
        exec::Outcome::OutsideWindow => {
            return run.map(|run| {
                format!(
                    "stopped at a batch boundary outside the change window: \
                     `rdeploy resume {id}` goes on (inside a window), `rdeploy rollback {id}` \
                     undoes the run",
                    id = run.run_id
                )
            });
        }
        exec::Outcome::AwaitingApproval => {
            return run.map(|run| {
                format!(
                    "the run awaits approval and keeps the lock of this inventory and playbook: \
                     `rdeploy approve {id}` goes on, `rdeploy reject {id}` rolls it back",
                    id = run.run_id
                )
            });
        }
        _ => return None,
    };
    let steps = if crate::transport::abandoned() {
        "the steps still running after the grace period were killed and recorded as interrupted"
    } else {
        "the steps in flight finished and were recorded"
    };
    Some(match run {
        Some(run) => format!(
            "{what}: {steps}; \
             `rdeploy resume {id}` goes on, `rdeploy rollback {id}` undoes the run",
            id = run.run_id
        ),
        None => format!("{what}: the steps in flight finished; nothing was changed (check mode)"),
    })
}

/// The exit code of a finished run. A refused host identity wins over everything else that
/// happened (a failed gate, a rollback, other failed hosts, a signal): the fleet may be under
/// attack, and that must not read as an ordinary failure.
fn exit_of(summary: &exec::Summary) -> Exit {
    if summary.host_key_refused() {
        return Exit::HostKeyRefused;
    }
    match summary.outcome {
        exec::Outcome::Interrupted(15) => Exit::Terminated,
        exec::Outcome::Interrupted(_) => Exit::Interrupted,
        exec::Outcome::RollbackIncomplete => Exit::RollbackIncomplete,
        exec::Outcome::RolledBack => Exit::RolledBack,
        _ if summary.controller_exhausted() => Exit::ControllerExhausted,
        exec::Outcome::Halted => Exit::HostsFailed,
        exec::Outcome::Deadline => Exit::Deadline,
        exec::Outcome::AwaitingApproval => Exit::AwaitingApproval,
        exec::Outcome::OutsideWindow => Exit::OutsideWindow,
        _ if summary.clean() => Exit::Success,
        _ => Exit::HostsFailed,
    }
}

/// Says which `ansible.cfg` settings rdeploy does not use (on stderr, one line).
fn config_note(cfg: Option<&AnsibleCfg>) -> io::Result<()> {
    match cfg.and_then(AnsibleCfg::ignored_note) {
        Some(note) => report::text(&mut io::stderr().lock(), &note),
        None => Ok(()),
    }
}

/// The SSH flags checked (ansible.cfg's defaults under them), the passphrase file read, the
/// ssh config file parsed.
fn ssh_options(
    a: &args::ConnectArgs,
    cfg: Option<&AnsibleCfg>,
) -> Result<(SshOptions, ssh2_config::SshConfig), Failed> {
    let mut errors = Diagnostics::new();
    let connect_timeout = match a.connect_timeout.as_deref() {
        None => cfg
            .and_then(|c| c.timeout)
            .map(std::time::Duration::from_secs),
        Some(t) => match crate::playbook::values::parse_duration(t) {
            Some(d) if !d.is_zero() => Some(d),
            _ => {
                errors.push(Diagnostic::options(format!(
                    "--connect-timeout '{t}': expected a number and a unit (ms, s, m, h), e.g. 10s"
                )));
                None
            }
        },
    };
    let key_passphrase = match &a.key_passphrase_file {
        None => None,
        Some(f) => match std::fs::read_to_string(f) {
            Ok(text) => Some(Secret::new(text.lines().next().unwrap_or_default())),
            Err(e) => {
                errors.push(Diagnostic::options(format!(
                    "--key-passphrase-file {}: {e}",
                    f.display()
                )));
                None
            }
        },
    };
    let config = match ssh_config::load_config(a.ssh_config.as_deref()) {
        Ok(c) => c,
        Err(m) => {
            errors.push(Diagnostic::options(m));
            ssh2_config::SshConfig::default()
        }
    };
    let opts = SshOptions {
        config_file: a.ssh_config.clone(),
        host_key_checking: a
            .host_key_checking
            .map(|h| match h {
                args::HostKeyChecking::Strict => HostKeyPolicy::Strict,
                args::HostKeyChecking::AcceptNew => HostKeyPolicy::AcceptNew,
            })
            .or_else(|| {
                // `host_key_checking = False` learns new keys; a changed key is still refused.
                cfg.and_then(|c| c.host_key_checking).map(|strict| {
                    if strict {
                        HostKeyPolicy::Strict
                    } else {
                        HostKeyPolicy::AcceptNew
                    }
                })
            }),
        user: a
            .user
            .clone()
            .or_else(|| cfg.and_then(|c| c.remote_user.clone())),
        identity_file: a
            .private_key
            .clone()
            .or_else(|| cfg.and_then(|c| c.private_key_file.clone())),
        connect_timeout,
        key_passphrase,
    };
    Ok(errors.into_result((opts, config))?)
}

fn no_hosts(plan: &Plan) -> Result<(), Failed> {
    if plan.no_hosts() {
        return Err(Failed::NoHosts(
            "no hosts matched: no play has any host to run on".into(),
        ));
    }
    Ok(())
}

fn cmd_inventory(out: &mut dyn Write, a: args::InventoryArgs) -> Result<Exit, Failed> {
    install_vault(&a.vault)?;
    let from_cfg;
    let sources = if a.inventory.is_empty() {
        let cfg = AnsibleCfg::discover()?;
        config_note(cfg.as_ref())?;
        from_cfg = cfg.map(|c| c.inventory).unwrap_or_default();
        &from_cfg
    } else {
        &a.inventory
    };
    let inv = Inventory::load(sources, None)?;
    if let Some(host) = a.host.as_deref() {
        let Some(h) = inv.hosts.get(host) else {
            return Err(Diagnostics::from(Diagnostic::options(format!(
                "host '{host}' is not in the inventory"
            )))
            .into());
        };
        report::json_pretty(out, &serde_json::Value::Object(inv.vars_of(h)))?;
        return Ok(Exit::Success);
    }
    if let Some(group) = a.graph.as_deref() {
        if !inv.groups.contains_key(group) {
            return Err(Diagnostics::from(Diagnostic::options(format!(
                "group '{group}' is not in the inventory"
            )))
            .into());
        }
        report::text(out, &inv.graph_from(group))?;
        return Ok(Exit::Success);
    }
    let mut v = inv.list_json();
    if let Some(limit) = a.limit.as_deref() {
        let limit = settings::read_limit(limit).map_err(Diagnostics::from)?;
        let keep: Vec<String> = inv
            .select(&limit)
            .map_err(|m| Diagnostics::from(Diagnostic::options(format!("--limit '{limit}': {m}"))))?
            .into_iter()
            .map(|h| h.name.clone())
            .collect();
        retain_hosts(&mut v, &keep);
    }
    report::json_pretty(out, &v)?;
    Ok(Exit::Success)
}

/// Drops hosts not in `keep` from an `--list` JSON document.
fn retain_hosts(v: &mut serde_json::Value, keep: &[String]) {
    let Some(obj) = v.as_object_mut() else { return };
    for (name, group) in obj.iter_mut() {
        if name == "_meta" {
            if let Some(hv) = group.get_mut("hostvars").and_then(|h| h.as_object_mut()) {
                hv.retain(|h, _| keep.contains(h));
            }
        } else if let Some(hosts) = group.get_mut("hosts").and_then(|h| h.as_array_mut()) {
            hosts.retain(|h| h.as_str().is_some_and(|h| keep.iter().any(|k| k == h)));
        }
    }
}

fn cmd_doc(out: &mut dyn Write, a: args::DocArgs) -> Result<Exit, Failed> {
    let Some(name) = a.module.as_deref() else {
        for n in crate::modules::names() {
            report::text(out, n)?;
        }
        return Ok(Exit::Success);
    };
    match crate::modules::lookup(name) {
        Some(spec) => {
            report::text(out, &crate::modules::render_doc(spec))?;
            Ok(Exit::Success)
        }
        None => {
            let mut d = Diagnostic::options(format!("unknown module '{name}'"));
            if let Some(s) = crate::diag::did_you_mean(name, crate::modules::names()) {
                d = d.note(format!("did you mean '{s}'?"));
            }
            Err(Diagnostics::from(d).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Exit, exit_of};
    use crate::exec::outcome::Recap;
    use crate::exec::{Outcome, Summary};
    use crate::transport::Reach;

    fn summary(outcome: Outcome, refused: bool) -> Summary {
        let refused = Recap {
            unreachable: 1,
            reach: Some(if refused {
                Reach::HostKeyRefused
            } else {
                Reach::Unreachable
            }),
            ..Recap::default()
        };
        let failed = Recap {
            failed: 1,
            ..Recap::default()
        };
        Summary {
            recap: vec![("h1".into(), refused), ("h2".into(), failed)],
            outcome,
            ..Summary::default()
        }
    }

    #[test]
    fn a_refused_host_key_wins_the_exit_code_over_everything_else() {
        for outcome in [
            Outcome::Completed,
            Outcome::Deadline,
            Outcome::Halted,
            Outcome::RolledBack,
            Outcome::RollbackIncomplete,
            Outcome::Interrupted(2),
            Outcome::Interrupted(15),
        ] {
            assert_eq!(
                exit_of(&summary(outcome, true)),
                Exit::HostKeyRefused,
                "{outcome:?}"
            );
        }
        assert_eq!(
            exit_of(&summary(Outcome::RolledBack, false)),
            Exit::RolledBack
        );
        assert_eq!(
            exit_of(&summary(Outcome::Completed, false)),
            Exit::HostsFailed
        );
    }
}
