//! `service` and `systemd`: a unit's running state, whether it starts at boot, masking,
//! `daemon-reload` and `daemon-reexec`.
//!
//! Owns both modules' typed arguments and load-time checks, reading a service's state (one
//! round trip: manager detection, active, enabled, load state), deciding the steps
//! (`daemon-reload`, `daemon-reexec`, mask/unmask, enable/disable, start/stop/restart/reload)
//! and running them chained with `&&` in one round trip, each `systemctl` with the task's
//! scope, `--no-block` and `--force`. `service` uses systemd when `systemctl` is on the PATH
//! and `/run/systemd/system` exists (booted with systemd), else the SysV `service NAME ACTION`
//! tool with `update-rc.d`/`chkconfig` for boot links (`use:` forces either); `systemd` always
//! uses `systemctl`. A restart, a reload or a daemon reload acts on every run, so such a task
//! does not converge. It must not format shell lines: unit names are quoted arguments after
//! `--`.

use serde_json::Value;

use super::common::{failed, plain_name, result};
use crate::diag::Diagnostic;
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Unpredicted,
    Verdict,
};
use crate::modules::spec::ArgsRef;
use crate::transport::{AnyTransport, Cmd};

/// `service`: systemd when the host runs it, else SysV init scripts.
pub struct Service;
/// `systemd`: always `systemctl`.
pub struct Systemd;

/// Which tool manages services on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Manager {
    Systemd,
    Sysv,
}

/// Reads the state of `$1`; `$2` is the systemctl scope flag, `$3` `systemd` or `sysv` to skip
/// detection (`auto` detects).
/// Prints `manager systemd|sysv|none`, then `load STATE`, `active STATE`,
/// `enabled RC STATE` (systemd) or `running RC`, `enabled yes|no` (SysV).
const READ_STATE: &str = crate::host::SERVICE_READ_STATE;

/// Which tool manages services, for a `daemon_reload` with no unit to read: prints
/// `manager systemd|sysv|none` as [`READ_STATE`] does.
const DETECT: &str = crate::host::SERVICE_DETECT;

/// Sets SysV boot links for `$1`: `$2` is `on` or `off`.
const SYSV_ENABLE: &str = crate::host::SERVICE_SYSV_ENABLE;

/// The state `check` read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    manager: Manager,
    /// systemd's `LoadState` (`loaded`, `not-found`, `masked`...); SysV: init script or not.
    load: String,
    /// `active`, `inactive`, `failed`... (SysV: `active`/`inactive` from `status`'s exit code).
    active: String,
    enabled: bool,
    /// systemd's `is-enabled` word (`enabled`, `disabled`, `static`, `masked`...).
    enabled_word: String,
}

impl Seen {
    fn running(&self) -> bool {
        matches!(
            self.active.as_str(),
            "active" | "activating" | "reloading" | "refreshing"
        )
    }

    fn masked(&self) -> bool {
        self.enabled_word.starts_with("masked") || self.load == "masked"
    }
}

fn parse_seen(text: &str) -> Result<Option<Seen>, String> {
    let mut seen = Seen {
        manager: Manager::Sysv,
        load: String::new(),
        active: "unknown".into(),
        enabled: false,
        enabled_word: String::new(),
    };
    let mut manager = None;
    for line in text.lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        match k {
            "manager" => {
                manager = Some(match v {
                    "systemd" => Manager::Systemd,
                    "sysv" => Manager::Sysv,
                    "none" => return Ok(None),
                    other => return Err(format!("unknown manager {other:?}")),
                })
            }
            "load" => seen.load = v.to_string(),
            "active" => seen.active = v.to_string(),
            "running" => {
                seen.active = if v == "0" { "active" } else { "inactive" }.into();
            }
            "enabled" => {
                let (rc, word) = v.split_once(' ').unwrap_or((v, ""));
                seen.enabled = rc == "0" || rc == "yes";
                seen.enabled_word = if word.is_empty() {
                    if seen.enabled { "enabled" } else { "disabled" }.into()
                } else {
                    word.to_string()
                };
            }
            _ => return Err(format!("unexpected line {line:?}")),
        }
    }
    seen.manager = manager.ok_or("no manager line")?;
    Ok(Some(seen))
}

/// One step of `apply`, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    DaemonReload,
    DaemonReexec,
    Unmask,
    Mask,
    Enable,
    Disable,
    /// `start`, `stop`, `restart` or `reload`.
    Action(&'static str),
}

/// What `check` decided.
struct Plan {
    manager: Manager,
    name: String,
    flags: Flags,
    steps: Vec<Step>,
    result: Args,
    /// `service: sleep`: a restart is a stop, this many seconds, then a start.
    sleep: Option<u64>,
}

impl Plan {
    /// The plan that runs `steps` on unit `name` with `w`'s options.
    fn new(w: &Want, manager: Manager, name: String, steps: Vec<Step>, result: Args) -> Plan {
        Plan {
            manager,
            name,
            flags: w.flags,
            steps,
            result,
            sleep: w.sleep.filter(|s| *s > 0),
        }
    }
}

/// The options every `systemctl` call that changes something gets, as Ansible's `systemd`
/// adds them: the scope (`--system`, `--user`, `--global`), `--no-block`, `--force`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flags {
    scope: &'static str,
    no_block: bool,
    force: bool,
}

impl Flags {
    const SYSTEM: Flags = Flags {
        scope: "--system",
        no_block: false,
        force: false,
    };

    /// `systemctl` with these options.
    fn systemctl(self) -> Cmd {
        let mut cmd = Cmd::raw("systemctl").op(self.scope);
        if self.no_block {
            cmd = cmd.op("--no-block");
        }
        if self.force {
            cmd = cmd.op("--force");
        }
        cmd
    }
}

/// The text of the `backup` doc of both modules.
const UNIT_BACKUP: &str = "The unit's active and enabled state is recorded; rollback starts or stops it and enables or disables it as it was. A `daemon_reload` (or `daemon_reexec`) is not undone.";

/// The result keys of both modules.
const UNIT_RETURNS: &[(&str, &str)] = &[
    ("name", "the unit"),
    ("state", "started or stopped"),
    ("enabled", "whether it starts at boot"),
    ("status", "systemd's properties"),
];

/// The values of `state`.
const STATES: &[&str] = &["started", "stopped", "restarted", "reloaded"];

crate::module_args! {
    /// Starts, stops, restarts or reloads a service and sets whether it starts at boot. The
    /// manager is systemd when the host runs it, else SysV init scripts through the `service`
    /// tool (`update-rc.d`/`chkconfig` for boot links); `use` forces one. On a systemd host,
    /// `daemon_reload` (with or without `name`) runs `systemctl daemon-reload` first, as
    /// Ansible's `service` does through `systemd`. `sleep` applies on systemd hosts too (a
    /// restart is then a stop, the pause and a start), where Ansible ignores it.
    #[module(
        name = "service",
        check_args = service_check,
        backup = "The service's active and enabled state is recorded; rollback starts or stops it and enables or disables it as it was.",
        returns = UNIT_RETURNS,
        examples = "- service:\n    name: nginx\n    state: restarted\n    enabled: true\n- service:\n    name: app\n    state: restarted\n    sleep: 2\n    use: sysvinit"
    )]
    pub struct ServiceArgs {
        /// The service (required unless only `daemon_reload` is given).
        name: Option<String>,
        /// What to do; `restarted`/`reloaded` always act.
        #[arg(choices = STATES)]
        state: Option<String>,
        /// Whether it starts at boot.
        enabled: Option<bool>,
        /// Whether the unit is masked (systemd hosts only: Ansible's `service` hands it to
        /// `systemd`; on a SysV host the task fails).
        masked: Option<bool>,
        /// Run `systemctl daemon-reload` first (systemd hosts only; a change, where Ansible
        /// reports `ok` when nothing else changed).
        #[arg(aliases = &["daemon-reload"], default = "no")]
        daemon_reload: bool,
        /// With `state: restarted`, stop, wait this many seconds, then start.
        sleep: Option<i64>,
        /// The service manager: `auto` or `service` (detect: systemd when the host booted
        /// with it, else SysV), `systemd`, or `sysvinit` (SysV init scripts through the
        /// `service` tool); others (`openrc`, `upstart`...) are not supported by rdeploy.
        #[arg(rename = "use", default = "auto")]
        use_: String,
    }
}

crate::module_args! {
    /// Controls a systemd unit: state, enabled at boot, masked, and `daemon_reload` /
    /// `daemon_reexec` after unit files or systemd itself changed. Also called
    /// `systemd_service`; with only `name` it changes nothing and returns the unit's
    /// properties in `status`.
    #[module(
        name = "systemd",
        check_args = systemd_check,
        backup = UNIT_BACKUP,
        returns = UNIT_RETURNS,
        examples = "- systemd:\n    name: app.service\n    state: restarted\n    daemon_reload: true\n- systemd_service:\n    name: app-sync.timer\n    enabled: true\n    force: true\n    no_block: true"
    )]
    pub struct SystemdArgs {
        /// The unit (`.service` may be left out).
        #[arg(aliases = &["service", "unit"])]
        name: Option<String>,
        /// What to do; `restarted`/`reloaded` always act.
        #[arg(choices = STATES)]
        state: Option<String>,
        /// Whether it starts at boot.
        enabled: Option<bool>,
        /// Pass `--force` to `systemctl` (enable or mask over conflicting symlinks).
        #[arg(default = "no")]
        force: bool,
        /// Whether the unit is masked.
        masked: Option<bool>,
        /// Run `systemctl daemon-reload` first (a change, where Ansible reports `ok` when
        /// nothing else changed).
        #[arg(aliases = &["daemon-reload"], default = "no")]
        daemon_reload: bool,
        /// Run `systemctl daemon-reexec` first, after `daemon_reload` (a change, as
        /// `daemon_reload` is).
        #[arg(aliases = &["daemon-reexec"], default = "no")]
        daemon_reexec: bool,
        /// Which systemd manager to talk to.
        #[arg(default = "system", choices = &["system", "user", "global"])]
        scope: String,
        /// Pass `--no-block` to `systemctl`: queue the start/stop job and do not wait for it.
        #[arg(default = "no")]
        no_block: bool,
    }
}

/// What `use:` may name: detection (`auto`, `service`), or the manager it forces.
const USES: &[(&str, Option<Manager>)] = &[
    ("auto", None),
    ("service", None),
    ("systemd", Some(Manager::Systemd)),
    ("sysvinit", Some(Manager::Sysv)),
];

/// The manager `use` names (`None`: detect), or why rdeploy refuses it.
fn use_manager(word: &str) -> Result<Option<Manager>, String> {
    let word = word.to_ascii_lowercase();
    USES.iter()
        .find(|(w, _)| *w == word)
        .map(|(_, m)| *m)
        .ok_or_else(|| {
            format!(
                "service: use: {word} is not supported by rdeploy (auto, service, systemd or sysvinit)"
            )
        })
}

/// `systemd` with only `name` is Ansible's status query (the unit's properties in `status`).
fn systemd_check(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    if a.has("name") {
        return Vec::new();
    }
    unit_action(
        a,
        "systemd",
        &["state", "enabled", "masked"],
        &["daemon_reload", "daemon_reexec"],
    )
}

/// `service` hands `daemon_reload` to systemd as Ansible's does, so `name` may be left out
/// then; `use` names a manager rdeploy drives.
fn service_check(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let mut out = unit_action(
        a,
        "service",
        &["state", "enabled", "masked"],
        &["daemon_reload"],
    );
    if let (Some(word), Some(n)) = (a.literal("use"), a.get("use"))
        && let Err(m) = use_manager(&word)
    {
        out.push(Diagnostic::at(&n.loc, m));
    }
    out
}

/// A unit module acts on `name` through one of `acts`, or only runs one of `reloads`.
fn unit_action(a: &ArgsRef<'_>, module: &str, acts: &[&str], reloads: &[&str]) -> Vec<Diagnostic> {
    let quoted = |ks: &[&str]| {
        ks.iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let acting = acts.iter().any(|k| a.has(k));
    if acting && !a.has("name") {
        return a.error(format!(
            "module '{module}' needs 'name' with {}",
            quoted(acts)
        ));
    }
    if !acting && !reloads.iter().any(|k| a.has(k)) {
        return a.error(format!(
            "module '{module}' needs {} or {}",
            quoted(acts),
            quoted(reloads)
        ));
    }
    Vec::new()
}

/// The arguments both modules share, validated.
struct Want {
    name: Option<String>,
    state: Option<&'static str>,
    enabled: Option<bool>,
    masked: Option<bool>,
    daemon_reload: bool,
    daemon_reexec: bool,
    flags: Flags,
    /// `service: sleep` (seconds between stop and start when restarting).
    sleep: Option<u64>,
    /// The manager `service: use` forces, or systemd for `systemd`; `None`: detect.
    manager: Option<Manager>,
}

/// `state` as one of [`STATES`].
fn static_state(state: Option<String>) -> Result<Option<&'static str>, ModuleError> {
    state
        .map(|s| {
            STATES.iter().copied().find(|c| *c == s).ok_or_else(|| {
                ModuleError::Args(format!(
                    "value '{s}' for argument 'state' is not one of: {}",
                    STATES.join(", ")
                ))
            })
        })
        .transpose()
}

fn want_systemd(a: SystemdArgs) -> Result<Want, ModuleError> {
    Ok(Want {
        name: a.name,
        state: static_state(a.state)?,
        enabled: a.enabled,
        masked: a.masked,
        daemon_reload: a.daemon_reload,
        daemon_reexec: a.daemon_reexec,
        flags: Flags {
            scope: match a.scope.as_str() {
                "user" => "--user",
                "global" => "--global",
                _ => "--system",
            },
            no_block: a.no_block,
            force: a.force,
        },
        sleep: None,
        manager: Some(Manager::Systemd),
    })
}

fn want_service(a: ServiceArgs) -> Result<Want, ModuleError> {
    Ok(Want {
        name: a.name,
        state: static_state(a.state)?,
        enabled: a.enabled,
        masked: a.masked,
        daemon_reload: a.daemon_reload,
        daemon_reexec: false,
        flags: Flags::SYSTEM,
        sleep: a
            .sleep
            .map(|s| {
                u64::try_from(s).map_err(|_| {
                    ModuleError::Args(format!(
                        "argument 'sleep' expects a non-negative integer, found {s}"
                    ))
                })
            })
            .transpose()?,
        manager: use_manager(&a.use_).map_err(ModuleError::Args)?,
    })
}

impl Want {
    /// Whether part of the task runs whatever the unit's state (a restart, a reload, a
    /// `daemon-reload` or `daemon-reexec`).
    fn acts_every_run(&self) -> bool {
        self.daemon_reload
            || self.daemon_reexec
            || matches!(self.state, Some("restarted" | "reloaded"))
    }
}

fn want(args: &Args, systemd: bool) -> Result<Want, ModuleError> {
    let w = if systemd {
        want_systemd(SystemdArgs::parse(args)?)?
    } else {
        want_service(ServiceArgs::parse(args)?)?
    };
    if let Some(n) = &w.name {
        plain_name("service", n)?;
    }
    let acts = w.state.is_some() || w.enabled.is_some() || w.masked.is_some();
    if acts && w.name.is_none() {
        return Err(ModuleError::Args("'name' is required".into()));
    }
    // `systemd: name=X` alone is a status query (see `query_unit`).
    if !(acts || w.daemon_reload || w.daemon_reexec || systemd && w.name.is_some()) {
        return Err(ModuleError::Args(
            "nothing to do: give 'state', 'enabled', 'masked', 'daemon_reload' or 'daemon_reexec'"
                .into(),
        ));
    }
    Ok(w)
}

/// The steps that bring `seen` to `w`, with the changes to report.
fn decide(w: &Want, seen: &Seen) -> (Vec<Step>, Vec<Change>) {
    let subject = w.name.clone().unwrap_or_default();
    let attr = |what: &str, before: &str, after: &str| Change::Attr {
        subject: subject.clone(),
        what: what.into(),
        before: before.into(),
        after: after.into(),
    };
    let mut steps = Vec::new();
    let mut changes = Vec::new();
    if w.daemon_reload {
        steps.push(Step::DaemonReload);
        changes.push(Change::Run {
            command: "systemctl daemon-reload".into(),
        });
    }
    if w.daemon_reexec {
        steps.push(Step::DaemonReexec);
        changes.push(Change::Run {
            command: "systemctl daemon-reexec".into(),
        });
    }
    match w.masked {
        Some(true) if !seen.masked() => {
            steps.push(Step::Mask);
            changes.push(attr("masked", "no", "yes"));
        }
        Some(false) if seen.masked() => {
            steps.push(Step::Unmask);
            changes.push(attr("masked", "yes", "no"));
        }
        _ => {}
    }
    match w.enabled {
        Some(true) if !seen.enabled => {
            steps.push(Step::Enable);
            changes.push(attr("enabled", &seen.enabled_word, "enabled"));
        }
        Some(false) if seen.enabled => {
            steps.push(Step::Disable);
            changes.push(attr("enabled", &seen.enabled_word, "disabled"));
        }
        _ => {}
    }
    let running = seen.running();
    // Like Ansible: restarted/reloaded start a stopped service.
    let action = match w.state {
        Some("started") if !running => Some("start"),
        Some("stopped") if running => Some("stop"),
        Some("restarted") => Some(if running { "restart" } else { "start" }),
        Some("reloaded") => Some(if running { "reload" } else { "start" }),
        _ => None,
    };
    if let Some(a) = action {
        steps.push(Step::Action(a));
        let after = match a {
            "stop" => "stopped",
            "restart" => "restarted",
            "reload" => "reloaded",
            _ => "started",
        };
        changes.push(attr("state", &seen.active, after));
    }
    (steps, changes)
}

fn step_cmd(manager: Manager, flags: Flags, name: &str, step: Step) -> Cmd {
    match manager {
        Manager::Systemd => {
            let verb = match step {
                Step::DaemonReload => return flags.systemctl().op("daemon-reload"),
                Step::DaemonReexec => return flags.systemctl().op("daemon-reexec"),
                Step::Unmask => "unmask",
                Step::Mask => "mask",
                Step::Enable => "enable",
                Step::Disable => "disable",
                Step::Action(a) => a,
            };
            flags.systemctl().op(verb).op("--").arg(name)
        }
        Manager::Sysv => match step {
            Step::Enable | Step::Disable => Cmd::raw("set --")
                .arg(name)
                .arg(if step == Step::Enable { "on" } else { "off" })
                .op(SYSV_ENABLE),
            Step::Action(a) => Cmd::raw("service").arg(name).op(a),
            // Refused in check for SysV.
            Step::DaemonReload | Step::DaemonReexec | Step::Mask | Step::Unmask => Cmd::raw("true"),
        },
    }
}

async fn read_state(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    name: &str,
    scope: &'static str,
    forced: Option<Manager>,
) -> Result<Option<Seen>, ModuleError> {
    let cmd = Cmd::raw("set --")
        .arg(name)
        .arg(scope)
        .arg(match forced {
            Some(Manager::Systemd) => "systemd",
            Some(Manager::Sysv) => "sysv",
            None => "auto",
        })
        .op(READ_STATE);
    let out = ctx.query_ok(tr, cmd).await?;
    parse_seen(&out.stdout_lossy()).map_err(|e| {
        failed(
            format!("cannot read the state of service {name}: {e}"),
            Args::new(),
        )
    })
}

fn status_result(name: &str, seen: Option<&Seen>, w: &Want) -> Args {
    let mut r = result([("name", Value::from(name))]);
    if let Some(s) = seen {
        r.insert(
            "state".into(),
            Value::from(if s.running() { "started" } else { "stopped" }),
        );
        r.insert("enabled".into(), Value::from(s.enabled));
        r.insert(
            "status".into(),
            serde_json::json!({
                "ActiveState": s.active,
                "LoadState": s.load,
                "UnitFileState": s.enabled_word,
            }),
        );
    }
    if let Some(st) = w.state {
        r.insert("state".into(), Value::from(st));
    }
    if let Some(e) = w.enabled {
        r.insert("enabled".into(), Value::from(e));
    }
    r
}

async fn check_service(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    systemd: bool,
) -> Result<Verdict, ModuleError> {
    let w = want(args, systemd)?;
    let acts = w.state.is_some()
        || w.enabled.is_some()
        || w.masked.is_some()
        || w.daemon_reload
        || w.daemon_reexec;
    if systemd
        && !acts
        && let Some(name) = &w.name
    {
        return query_unit(tr, ctx, name, w.flags.scope).await;
    }
    let Some(name) = w.name.clone() else {
        // daemon_reload alone. Ansible's `service` hands it to `systemd` on a systemd host;
        // elsewhere its own module fails on the missing name.
        if !systemd {
            let manager = match w.manager {
                Some(m) => Some(m),
                None => {
                    let out = ctx.query_ok(tr, Cmd::raw(DETECT)).await?;
                    parse_seen(&out.stdout_lossy())
                        .map_err(|e| {
                            failed(format!("cannot find the service manager: {e}"), Args::new())
                        })?
                        .map(|s| s.manager)
                }
            };
            if manager != Some(Manager::Systemd) {
                return Err(failed(
                    "missing required arguments: name ('daemon_reload' alone needs a host that runs systemd)",
                    Args::new(),
                ));
            }
        }
        let (steps, changes) = decide(&w, &dummy_seen());
        return Ok(Verdict::Drift(Drift::new(
            changes,
            Plan::new(&w, Manager::Systemd, String::new(), steps, Args::new()),
        )));
    };
    let seen = read_state(tr, ctx, &name, w.flags.scope, w.manager)
        .await?
        .ok_or_else(|| {
            failed(
                "neither systemd nor the service tool was found on the host",
                result([("name", Value::from(name.clone()))]),
            )
        })?;
    if seen.manager == Manager::Sysv && (w.masked.is_some() || w.daemon_reload) {
        return Err(ModuleError::Args(
            "'masked' and 'daemon_reload' need systemd; the host's services are SysV init scripts"
                .into(),
        ));
    }
    if seen.load == "not-found" && (w.state.is_some() || w.enabled.is_some()) {
        return Err(failed(
            format!("Could not find the requested service {name}"),
            status_result(&name, Some(&seen), &w),
        ));
    }
    let (steps, changes) = decide(&w, &seen);
    let mut r = status_result(&name, Some(&seen), &w);
    if steps.is_empty() {
        return Ok(Verdict::InSync { result: r });
    }
    r.insert("changed".into(), Value::from(true));
    Ok(Verdict::Drift(Drift::new(
        changes,
        Plan::new(&w, seen.manager, name, steps, r),
    )))
}

/// `systemd: name=X` and nothing else: Ansible's status query. Every property `systemctl show`
/// gives lands in `status` (`FragmentPath`, `ActiveState`, `ExecStart`...); nothing changes.
async fn query_unit(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    name: &str,
    scope: &'static str,
) -> Result<Verdict, ModuleError> {
    let cmd = Cmd::raw("systemctl").op(scope).op("show --").arg(name);
    let out = ctx.query_ok(tr, cmd).await?;
    let status: Args = parse_show(&out.stdout_lossy());
    if status.get("LoadState").and_then(Value::as_str) == Some("not-found") {
        return Err(failed(
            format!("Could not find the requested service {name}"),
            result([
                ("name", Value::from(name)),
                ("status", Value::Object(status)),
            ]),
        ));
    }
    let mut r = result([("name", Value::from(name))]);
    r.insert("status".into(), Value::Object(status));
    Ok(Verdict::InSync { result: r })
}

/// `systemctl show` output: one `Key=value` a line.
fn parse_show(text: &str) -> Args {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect()
}

fn dummy_seen() -> Seen {
    Seen {
        manager: Manager::Systemd,
        load: String::new(),
        active: String::new(),
        enabled: false,
        enabled_word: String::new(),
    }
}

/// The steps of `plan` as one command chained with `&&` (`None`: nothing to run).
fn plan_cmd(plan: &Plan) -> Option<Cmd> {
    let mut cmd: Option<Cmd> = None;
    for step in &plan.steps {
        let c = match (*step, plan.sleep) {
            // `sleep`: stop, wait, start, as Ansible's service module restarts then.
            (Step::Action("restart"), Some(s)) => {
                step_cmd(plan.manager, plan.flags, &plan.name, Step::Action("stop"))
                    .and(Cmd::raw("sleep").arg(s.to_string()))
                    .and(step_cmd(
                        plan.manager,
                        plan.flags,
                        &plan.name,
                        Step::Action("start"),
                    ))
            }
            _ => step_cmd(plan.manager, plan.flags, &plan.name, *step),
        };
        cmd = Some(match cmd {
            None => c,
            Some(prev) => prev.and(c),
        });
    }
    cmd
}

async fn apply_service(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let plan = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("service: apply without a plan from check".into()))?;
    let mut r = plan.result.clone();
    r.remove("changed");
    let Some(cmd) = plan_cmd(plan) else {
        return Ok(r);
    };
    let out = ctx.run(tr, cmd).await?;
    if out.status != 0 {
        let mut fr = super::common::command_result(&out, true);
        fr.extend(r);
        return Err(failed(
            format!(
                "Unable to change service {}: {}",
                plan.name,
                out.stderr_lossy().trim()
            ),
            fr,
        ));
    }
    Ok(r)
}

macro_rules! service_module {
    ($ty:ident, $name:literal, $systemd:literal) => {
        impl Module for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn check<'a>(
                &'a self,
                tr: &'a mut HostView<'_>,
                args: &'a Args,
                ctx: &'a ModuleCtx<'a>,
            ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
                Box::pin(check_service(tr, args, ctx, $systemd))
            }

            fn apply<'a>(
                &'a self,
                tr: &'a mut AnyTransport,
                _args: &'a Args,
                ctx: &'a ModuleCtx<'a>,
                drift: &'a Drift,
            ) -> BoxFut<'a, Result<Args, ModuleError>> {
                Box::pin(apply_service(tr, ctx, drift))
            }

            /// `restarted`/`reloaded` and `daemon_reload`/`daemon_reexec` act on every run:
            /// the executor must not expect `check` to find nothing left after them.
            fn converges(&self, args: &Args) -> bool {
                want(args, $systemd).map_or(true, |w| !w.acts_every_run())
            }

            /// `--check` predicts the change, as Ansible's modules report it.
            fn unpredicted(&self, _args: &Args, drift: &Drift) -> Unpredicted {
                Unpredicted {
                    skip: false,
                    result: drift
                        .plan::<Plan>()
                        .map(|p| p.result.clone())
                        .unwrap_or_default(),
                }
            }

            fn resources(&self, args: &Args) -> Vec<Resource> {
                want(args, $systemd)
                    .ok()
                    .and_then(|w| w.name)
                    .map(Resource::Service)
                    .into_iter()
                    .collect()
            }
        }
    };
}

service_module!(Service, "service", false);
service_module!(Systemd, "systemd", true);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;

    fn want_of(a: Value, systemd: bool) -> Want {
        want(&args(a), systemd).unwrap()
    }

    #[test]
    fn service_hands_masked_to_systemd_as_ansibles_does() {
        let w = want_of(json!({"name": "nginx", "masked": true}), false);
        assert_eq!(w.masked, Some(true));
        let (steps, _) = decide(&w, &seen("active", true, "enabled"));
        assert!(!steps.is_empty(), "masking an unmasked unit is a change");
        let w = want_of(json!({"name": "nginx", "masked": false}), false);
        let (steps, _) = decide(&w, &seen("active", true, "enabled"));
        assert!(steps.is_empty(), "an unmasked unit stays as it is");
    }

    fn seen(active: &str, enabled: bool, word: &str) -> Seen {
        Seen {
            manager: Manager::Systemd,
            load: "loaded".into(),
            active: active.into(),
            enabled,
            enabled_word: word.into(),
        }
    }

    #[test]
    fn decide_table() {
        use Step::*;
        let t: &[(Value, Seen, &[Step])] = &[
            (
                json!({"name": "a", "state": "started"}),
                seen("active", true, "enabled"),
                &[],
            ),
            (
                json!({"name": "a", "state": "started"}),
                seen("inactive", true, "enabled"),
                &[Action("start")],
            ),
            (
                json!({"name": "a", "state": "started"}),
                seen("activating", true, "enabled"),
                &[],
            ),
            (
                json!({"name": "a", "state": "stopped"}),
                seen("active", true, "enabled"),
                &[Action("stop")],
            ),
            (
                json!({"name": "a", "state": "stopped"}),
                seen("failed", true, "enabled"),
                &[],
            ),
            (
                json!({"name": "a", "state": "restarted"}),
                seen("active", true, "enabled"),
                &[Action("restart")],
            ),
            (
                json!({"name": "a", "state": "restarted"}),
                seen("inactive", true, "enabled"),
                &[Action("start")],
            ),
            (
                json!({"name": "a", "state": "reloaded"}),
                seen("active", true, "enabled"),
                &[Action("reload")],
            ),
            (
                json!({"name": "a", "enabled": true}),
                seen("active", false, "disabled"),
                &[Enable],
            ),
            (
                json!({"name": "a", "enabled": "no"}),
                seen("active", true, "enabled"),
                &[Disable],
            ),
            (
                json!({"name": "a", "enabled": true}),
                seen("active", true, "static"),
                &[],
            ),
            (
                json!({"name": "a", "masked": true}),
                seen("inactive", false, "disabled"),
                &[Mask],
            ),
            (
                json!({"name": "a", "masked": false}),
                seen("inactive", false, "masked"),
                &[Unmask],
            ),
            (
                json!({"name": "a", "daemon_reload": true, "state": "started", "enabled": true}),
                seen("inactive", false, "disabled"),
                &[DaemonReload, Enable, Action("start")],
            ),
        ];
        for (a, s, want_steps) in t {
            let (steps, changes) = decide(&want_of(a.clone(), true), s);
            assert_eq!(steps, *want_steps, "{a} {s:?}");
            assert_eq!(changes.len(), steps.len());
        }
    }

    #[test]
    fn step_commands_quote_the_name() {
        let sd = |s| step_cmd(Manager::Systemd, Flags::SYSTEM, "my app", s).display();
        assert_eq!(
            sd(Step::Action("start")),
            "systemctl --system start -- 'my app'"
        );
        assert_eq!(sd(Step::Enable), "systemctl --system enable -- 'my app'");
        assert_eq!(sd(Step::DaemonReload), "systemctl --system daemon-reload");
        let w = want_of(
            json!({"name": "u", "state": "started", "scope": "user"}),
            true,
        );
        assert_eq!(
            step_cmd(Manager::Systemd, w.flags, "u", Step::Action("start")).display(),
            "systemctl --user start -- 'u'"
        );
        let sv = |s| step_cmd(Manager::Sysv, Flags::SYSTEM, "nginx", s).display();
        assert_eq!(sv(Step::Action("reload")), "service 'nginx' reload");
        assert!(sv(Step::Enable).starts_with("set -- 'nginx' 'on'"));
        assert!(want(&args(json!({"name": "-x", "state": "started"})), true).is_err());
        assert!(want(&args(json!({"state": "started"})), true).is_err());
        assert!(want(&args(json!({"name": "a"})), false).is_err());
    }

    /// The command `apply` runs for `a` (systemd or service module) on a unit in state `s`.
    fn commands(a: Value, systemd: bool, s: &Seen) -> Option<String> {
        let w = want_of(a, systemd);
        let (steps, _) = decide(&w, s);
        let name = w.name.clone().unwrap_or_default();
        // Chained steps display as `a && ( b\n)`: compare the words.
        plan_cmd(&Plan::new(&w, s.manager, name, steps, Args::new()))
            .map(|c| c.display().replace("( ", "").replace("\n)", ""))
    }

    /// Issue 14: every documented argument of `systemd` and `service` shows in the commands
    /// (`force`, `no_block`, `daemon_reexec`, `scope`, `sleep`), or in the verdict.
    #[test]
    fn each_argument_changes_the_commands_run() {
        let off = seen("inactive", false, "disabled");
        let on = seen("active", true, "enabled");
        let sysv = Seen {
            manager: Manager::Sysv,
            ..on.clone()
        };
        let t: &[(Value, bool, &Seen, Option<&str>)] = &[
            (
                json!({"name": "a", "state": "started"}),
                true,
                &off,
                Some("systemctl --system start -- 'a'"),
            ),
            (
                json!({"name": "a", "state": "started", "no_block": true}),
                true,
                &off,
                Some("systemctl --system --no-block start -- 'a'"),
            ),
            (
                json!({"name": "a", "enabled": true, "force": "yes"}),
                true,
                &off,
                Some("systemctl --system --force enable -- 'a'"),
            ),
            (
                json!({"name": "a", "masked": true, "force": true, "no_block": true}),
                true,
                &off,
                Some("systemctl --system --no-block --force mask -- 'a'"),
            ),
            (
                json!({"name": "a", "state": "stopped", "scope": "user"}),
                true,
                &on,
                Some("systemctl --user stop -- 'a'"),
            ),
            (
                json!({"name": "a", "state": "started", "scope": "global"}),
                true,
                &on,
                None,
            ),
            (
                json!({"name": "a", "daemon_reload": true, "daemon_reexec": true, "state": "started"}),
                true,
                &on,
                Some("systemctl --system daemon-reload && systemctl --system daemon-reexec"),
            ),
            (
                json!({"daemon_reexec": true}),
                true,
                &dummy_seen(),
                Some("systemctl --system daemon-reexec"),
            ),
            (
                json!({"name": "a", "state": "restarted", "sleep": 2}),
                false,
                &on,
                Some(
                    "systemctl --system stop -- 'a' && sleep '2' && systemctl --system start -- 'a'",
                ),
            ),
            (
                json!({"name": "a", "state": "restarted", "sleep": 0}),
                false,
                &on,
                Some("systemctl --system restart -- 'a'"),
            ),
            (
                json!({"name": "a", "state": "restarted", "sleep": 1, "use": "sysvinit"}),
                false,
                &sysv,
                Some("service 'a' stop && sleep '1' && service 'a' start"),
            ),
            (
                json!({"name": "a", "enabled": false}),
                false,
                &on,
                Some("systemctl --system disable -- 'a'"),
            ),
        ];
        for (a, systemd, s, want_cmd) in t {
            assert_eq!(
                commands(a.clone(), *systemd, s).as_deref(),
                *want_cmd,
                "{a} on {s:?}"
            );
        }
    }

    /// `use:` picks the manager `check` reads the state with; what rdeploy cannot drive is
    /// refused by name, as are arguments of Ansible's that rdeploy does not implement.
    #[test]
    fn use_forces_a_manager_or_is_refused() {
        let m =
            |u: &str| want_of(json!({"name": "a", "state": "started", "use": u}), false).manager;
        assert_eq!(m("auto"), None);
        assert_eq!(m("service"), None);
        assert_eq!(m("SystemD"), Some(Manager::Systemd));
        assert_eq!(m("sysvinit"), Some(Manager::Sysv));
        assert_eq!(
            want_of(json!({"name": "a"}), true).manager,
            Some(Manager::Systemd)
        );
        let e = want(
            &args(json!({"name": "a", "state": "started", "use": "openrc"})),
            false,
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "service: use: openrc is not supported by rdeploy (auto, service, systemd or sysvinit)"
            )
        );
        for (a, systemd, word) in [
            (
                json!({"name": "a", "state": "started", "pattern": "x"}),
                false,
                "pattern",
            ),
            (
                json!({"name": "a", "state": "started", "sleep": 1}),
                true,
                "sleep",
            ),
        ] {
            let e = want(&args(a), systemd).err().map(|e| e.to_string());
            assert!(
                e.as_deref()
                    .is_some_and(|e| e.contains(&format!("argument '{word}'"))
                        && e.ends_with("is not supported by rdeploy")),
                "{e:?}"
            );
        }
    }

    /// What acts on every run is not expected to converge (the executor's verify would fail
    /// it); what reaches a state is.
    #[test]
    fn restarts_and_reloads_act_every_run() {
        for (a, converges) in [
            (json!({"name": "a", "state": "restarted"}), false),
            (json!({"name": "a", "state": "reloaded"}), false),
            (json!({"daemon_reload": true}), false),
            (json!({"daemon_reexec": "yes"}), false),
            (
                json!({"name": "a", "state": "started", "enabled": true}),
                true,
            ),
            (json!({"name": "a", "masked": false}), true),
        ] {
            assert_eq!(Systemd.converges(&args(a.clone())), converges, "{a}");
        }
        assert!(!Service.converges(&args(json!({"name": "a", "state": "restarted"}))));
        assert!(Service.converges(&args(json!({"name": "a", "state": "stopped"}))));
    }

    #[test]
    fn parse_state_lines() {
        let s = parse_seen("manager systemd\nload loaded\nactive inactive\nenabled 1 disabled\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            s,
            Seen {
                manager: Manager::Systemd,
                ..seen("inactive", false, "disabled")
            }
        );
        let s = parse_seen("manager sysv\nload loaded\nrunning 0\nenabled yes\n")
            .unwrap()
            .unwrap();
        assert!(s.running() && s.enabled && s.manager == Manager::Sysv);
        assert!(parse_seen("manager none\n").unwrap().is_none());
        assert!(parse_seen("garbage\n").is_err());
    }

    /// A fake `systemctl` keeping unit state in `$FAKE/<unit>.{active,enabled}` and logging
    /// every call to `$FAKE/log`.
    const FAKE_SYSTEMCTL: &str = r#"
echo "systemctl $*" >> "$FAKE/log"
while :; do case $1 in --system|--no-block|--force) shift ;; *) break ;; esac; done
verb=$1; shift; [ "$1" = -- ] && shift
case $verb in
  show) eval u=\${$#}; if [ -e "$FAKE/$u.active" ]; then echo loaded; else echo not-found; fi ;;
  is-active) s=$(cat "$FAKE/$1.active" 2>/dev/null || echo inactive); echo "$s"; [ "$s" = active ] ;;
  is-enabled) s=$(cat "$FAKE/$1.enabled" 2>/dev/null || echo disabled); echo "$s"; [ "$s" = enabled ] ;;
  start|restart) echo active > "$FAKE/$1.active" ;;
  stop) echo inactive > "$FAKE/$1.active" ;;
  enable) echo enabled > "$FAKE/$1.enabled" ;;
  disable) echo disabled > "$FAKE/$1.enabled" ;;
  daemon-reload|daemon-reexec) ;;
  *) exit 9 ;;
esac"#;

    #[tokio::test]
    async fn systemd_end_to_end_with_a_fake_systemctl() {
        let (dir, bin, state) = fake_dirs();
        fake_tool(&bin, "systemctl", FAKE_SYSTEMCTL);
        std::fs::write(state.join("web.active"), "inactive\n").unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        let a = args(json!({"name": "web", "state": "started", "enabled": true}));
        let Ran::Applied(changes, Ok(r)) = check_apply(&Systemd, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(changes.len(), 2);
        assert_eq!(r["state"], json!("started"));
        assert_eq!(r["enabled"], json!(true));
        // One round trip to read, one to act.
        assert_eq!(recorded(&tr).len(), 2, "{:?}", recorded(&tr));
        let log = std::fs::read_to_string(state.join("log")).unwrap();
        assert!(
            log.contains("systemctl --system enable -- web\nsystemctl --system start -- web"),
            "{log}"
        );
        // Idempotent.
        let Ran::InSync(r) = check_apply(&Systemd, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["status"]["ActiveState"], json!("active"));
        // restarted always acts.
        let a = args(json!({"name": "web", "state": "restarted"}));
        assert!(matches!(
            check_apply(&Systemd, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        // An unknown unit fails in check.
        let a = args(json!({"name": "nope", "state": "started"}));
        assert!(
            matches!(check_apply(&Systemd, &mut tr, &a, &c).await, Ran::CheckFailed(m, r) if m.contains("Could not find") && r["name"] == json!("nope"))
        );
        assert_eq!(
            Systemd.resources(&a),
            vec![Resource::Service("nope".into())]
        );
    }

    /// `service: sleep` and `use: systemd` (issue 14's list) were refused; a restart with
    /// `sleep` is a stop, the pause, then a start, as Ansible's service module does it.
    #[tokio::test]
    async fn service_sleep_restarts_by_stop_wait_start_and_use_systemd_forces_systemd() {
        let (dir, bin, state) = fake_dirs();
        fake_tool(&bin, "systemctl", FAKE_SYSTEMCTL);
        std::fs::write(state.join("web.active"), "active\n").unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        let a = args(json!({"name": "web", "state": "restarted", "sleep": 1, "use": "systemd"}));
        let Ran::Applied(_, Ok(_)) = check_apply(&Service, &mut tr, &a, &c).await else {
            panic!()
        };
        let log = std::fs::read_to_string(state.join("log")).unwrap();
        assert!(
            log.contains("systemctl --system stop -- web\nsystemctl --system start -- web"),
            "{log}"
        );
        let a = args(json!({"name": "web", "state": "restarted", "use": "openrc"}));
        let ran = check_apply(&Service, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m.contains("use: openrc is not supported by rdeploy")),
            "{ran:?}"
        );
    }

    /// `force`, `no_block` and `daemon_reexec` were refused before the run; they now reach
    /// `systemctl`, and a second run with the unit in place is in sync.
    #[tokio::test]
    async fn systemd_force_no_block_and_daemon_reexec_reach_systemctl() {
        let (dir, bin, state) = fake_dirs();
        fake_tool(&bin, "systemctl", FAKE_SYSTEMCTL);
        std::fs::write(state.join("web.active"), "inactive\n").unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        let a = args(
            json!({"name": "web", "state": "started", "enabled": true, "force": true,
                            "no_block": true, "daemon_reexec": true}),
        );
        let Ran::Applied(changes, Ok(_)) = check_apply(&Systemd, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(changes.len(), 3, "{changes:?}");
        let log = std::fs::read_to_string(state.join("log")).unwrap();
        assert!(
            log.ends_with(
                "systemctl --system --no-block --force daemon-reexec\n\
                 systemctl --system --no-block --force enable -- web\n\
                 systemctl --system --no-block --force start -- web\n"
            ),
            "{log}"
        );
        let a = args(json!({"name": "web", "state": "started", "enabled": true, "force": true}));
        assert!(matches!(
            check_apply(&Systemd, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
    }

    /// `use: sysvinit` reads the state through the `service` tool even where systemctl exists.
    #[tokio::test]
    async fn service_use_sysvinit_never_asks_systemctl() {
        let (dir, bin, state) = fake_dirs();
        fake_tool(&bin, "systemctl", FAKE_SYSTEMCTL);
        fake_tool(&bin, "service", FAKE_SERVICE);
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        let a = args(json!({"name": "rdeploy-none", "state": "started", "use": "sysvinit"}));
        let ran = check_apply(&Service, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, r) if m.contains("Could not find") && r["status"]["LoadState"] == json!("not-found")),
            "{ran:?}"
        );
        let log = std::fs::read_to_string(state.join("log")).unwrap_or_default();
        assert_eq!(log, "service rdeploy-none status\n");
    }

    /// `systemd_service: name: docker` alone (geerlingguy.docker reads `status.FragmentPath`)
    /// was refused as "needs 'state'"; Ansible returns the unit's properties and changes nothing.
    #[tokio::test]
    async fn systemd_with_only_a_name_returns_the_units_properties() {
        let (dir, bin, state) = fake_dirs();
        fake_tool(
            &bin,
            "systemctl",
            r#"echo "systemctl $*" >> "$FAKE/log"
case "$*" in
  "--system show -- docker") printf 'Id=docker.service\nLoadState=loaded\nFragmentPath=/lib/systemd/system/docker.service\nExecStart={ path=/usr/bin/dockerd ; argv[]=/usr/bin/dockerd -H fd:// }\n' ;;
  *) printf 'Id=%s\nLoadState=not-found\n' "$4" ;;
esac"#,
        );
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        let a = args(json!({"name": "docker"}));
        let ran = check_apply(&Systemd, &mut tr, &a, &c).await;
        let Ran::InSync(r) = ran else {
            panic!("{ran:?}")
        };
        assert_eq!(
            r["status"]["FragmentPath"],
            json!("/lib/systemd/system/docker.service")
        );
        assert_eq!(
            r["status"]["ExecStart"],
            json!("{ path=/usr/bin/dockerd ; argv[]=/usr/bin/dockerd -H fd:// }")
        );
        let a = args(json!({"name": "nope"}));
        assert!(
            matches!(check_apply(&Systemd, &mut tr, &a, &c).await, Ran::CheckFailed(m, _) if m.contains("Could not find the requested service nope"))
        );
        let log = std::fs::read_to_string(state.join("log")).unwrap();
        assert_eq!(log.lines().count(), 2, "{log}");
    }

    /// `service: daemon_reload: true` without `name` was refused ("nothing to do"); Ansible's
    /// `service` hands it to `systemd`, which runs `systemctl daemon-reload`. Where the host
    /// does not run systemd, Ansible's own `service` fails on the missing name, and so does this.
    #[tokio::test]
    async fn service_daemon_reload_without_name_reloads_systemd() {
        let (dir, bin, state) = fake_dirs();
        fake_tool(&bin, "systemctl", FAKE_SYSTEMCTL);
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        let a = args(json!({"daemon_reload": true}));
        // The `systemd` module: check predicts the reload and runs nothing; apply runs it.
        assert!(
            check_only(&Systemd, &mut tr, &a, &c)
                .await
                .unwrap()
                .is_none()
        );
        assert!(!state.join("log").exists(), "check ran systemctl");
        let Ran::Applied(changes, Ok(_)) = check_apply(&Systemd, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(changes.len(), 1, "{changes:?}");
        let log = std::fs::read_to_string(state.join("log")).unwrap();
        assert_eq!(log, "systemctl --system daemon-reload\n");
        std::fs::remove_file(state.join("log")).unwrap();
        // `service` decides by what the host runs.
        let ran = check_apply(&Service, &mut tr, &a, &c).await;
        if Path::new("/run/systemd/system").exists() {
            assert!(matches!(ran, Ran::Applied(_, Ok(_))), "{ran:?}");
            let log = std::fs::read_to_string(state.join("log")).unwrap();
            assert_eq!(log, "systemctl --system daemon-reload\n");
        } else {
            assert!(
                matches!(&ran, Ran::CheckFailed(m, _) if m.starts_with("missing required arguments: name")),
                "{ran:?}"
            );
            assert!(!state.join("log").exists(), "nothing ran");
        }
    }

    /// A fake SysV `service`: `$FAKE/<name>.running` exists while running.
    const FAKE_SERVICE: &str = r#"
echo "service $*" >> "$FAKE/log"
case $2 in
  status) [ -e "$FAKE/$1.running" ] ;;
  start) touch "$FAKE/$1.running" ;;
  stop) rm -f "$FAKE/$1.running" ;;
  *) exit 9 ;;
esac"#;

    #[tokio::test]
    async fn service_falls_back_to_sysv_without_booted_systemd() {
        if Path::new("/run/systemd/system").exists() {
            return; // This host runs systemd: detection would (rightly) pick it.
        }
        let (dir, bin, state) = fake_dirs();
        fake_tool(&bin, "service", FAKE_SERVICE);
        // A real systemctl on PATH must not matter: /run/systemd/system is absent.
        fake_tool(&bin, "systemctl", "exit 42");
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        // `cron` has no init script here: not-found fails only when the init script is missing.
        let name = if Path::new("/etc/init.d/procps").exists() {
            "procps"
        } else {
            "rdeploy-none"
        };
        let a = args(json!({"name": name, "state": "started"}));
        let ran = check_apply(&Service, &mut tr, &a, &c).await;
        if name == "rdeploy-none" {
            assert!(matches!(ran, Ran::CheckFailed(..)), "{ran:?}");
            return;
        }
        assert!(matches!(ran, Ran::Applied(_, Ok(_))), "{ran:?}");
        assert!(matches!(
            check_apply(&Service, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let a = args(json!({"name": name, "state": "stopped"}));
        assert!(matches!(
            check_apply(&Service, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        let log = std::fs::read_to_string(state.join("log")).unwrap();
        assert!(log.contains(&format!("service {name} start\n")), "{log}");
        assert!(log.contains(&format!("service {name} stop\n")), "{log}");
    }

    use std::path::Path;
}
