//! `service` and `systemd`: a unit's running state, whether it starts at boot, masking and
//! `daemon-reload`.
//!
//! Owns reading a service's state (one round trip: manager detection, active, enabled, load
//! state), deciding the steps (`daemon-reload`, mask/unmask, enable/disable, start/stop/
//! restart/reload) and running them chained with `&&` in one round trip. `service` uses
//! systemd when `systemctl` is on the PATH and `/run/systemd/system` exists (booted with
//! systemd), else the SysV `service NAME ACTION` tool with `update-rc.d`/`chkconfig` for boot
//! links; `systemd` always uses `systemctl`. It must not format shell lines: unit names are
//! quoted arguments after `--`.

use serde_json::Value;

use super::common::{choice_arg, failed, plain_name, result};
use crate::modules::runtime::{
    Args, ArgsExt, BoxFut, Change, Drift, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
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

/// Reads the state of `$1`; `$2` is the systemctl scope flag, `$3` `systemd` to skip detection.
/// Prints `manager systemd|sysv|none`, then `load STATE`, `active STATE`,
/// `enabled RC STATE` (systemd) or `running RC`, `enabled yes|no` (SysV).
const READ_STATE: &str = r#"
n_=$1 f_=$2
if [ "$3" = systemd ] || { command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; }; then
  printf 'manager systemd\n'
  l_=$(systemctl "$f_" show -p LoadState --value -- "$n_" 2>/dev/null)
  printf 'load %s\n' "${l_:-unknown}"
  a_=$(systemctl "$f_" is-active -- "$n_" 2>/dev/null)
  printf 'active %s\n' "${a_:-unknown}"
  e_=$(systemctl "$f_" is-enabled -- "$n_" 2>/dev/null)
  printf 'enabled %s %s\n' "$?" "${e_:-unknown}"
  exit 0
fi
if ! command -v service >/dev/null 2>&1; then printf 'manager none\n'; exit 0; fi
printf 'manager sysv\n'
if [ -x "/etc/init.d/$n_" ]; then printf 'load loaded\n'; else printf 'load not-found\n'; fi
service "$n_" status >/dev/null 2>&1
printf 'running %s\n' "$?"
e_=no
for l_ in /etc/rc[2345].d/S[0-9][0-9]"$n_"; do [ -e "$l_" ] && e_=yes; done
printf 'enabled %s\n' "$e_"
"#;

/// Which tool manages services, for a `daemon_reload` with no unit to read: prints
/// `manager systemd|sysv|none` as [`READ_STATE`] does.
const DETECT: &str = r#"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then printf 'manager systemd\n'
elif command -v service >/dev/null 2>&1; then printf 'manager sysv\n'
else printf 'manager none\n'; fi"#;

/// Sets SysV boot links for `$1`: `$2` is `on` or `off`.
const SYSV_ENABLE: &str = r#"
if command -v update-rc.d >/dev/null 2>&1; then
  if [ "$2" = on ]; then update-rc.d "$1" defaults && update-rc.d "$1" enable; else update-rc.d "$1" disable; fi
elif command -v chkconfig >/dev/null 2>&1; then
  chkconfig "$1" "$2"
else
  printf 'rdeploy: neither update-rc.d nor chkconfig found to change boot links\n' >&2; exit 1
fi"#;

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
    scope: &'static str,
    steps: Vec<Step>,
    result: Args,
    /// `service: sleep`: a restart is a stop, this many seconds, then a start.
    sleep: Option<u64>,
}

/// The arguments both modules share, validated.
struct Want {
    name: Option<String>,
    state: Option<&'static str>,
    enabled: Option<bool>,
    masked: Option<bool>,
    daemon_reload: bool,
    scope: &'static str,
    /// `service: sleep` (seconds between stop and start when restarting).
    sleep: Option<u64>,
    /// `service: use: systemd` forces systemd, as Ansible's `use` picks the module.
    force_systemd: bool,
}

fn want(args: &Args, systemd: bool) -> Result<Want, ModuleError> {
    let name = args.str_arg("name");
    if let Some(n) = &name {
        plain_name("service", n)?;
    }
    let state = match args.str_arg("state") {
        None => None,
        Some(_) => Some(choice_arg(
            args,
            "state",
            &["started", "stopped", "restarted", "reloaded"],
            "started",
        )?),
    };
    let opt_bool = |k: &str| -> Result<Option<bool>, ModuleError> {
        match args.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => args.bool_arg(k, false).map(Some),
        }
    };
    let w = Want {
        name,
        state,
        enabled: opt_bool("enabled")?,
        masked: if systemd { opt_bool("masked")? } else { None },
        daemon_reload: args.bool_arg("daemon_reload", false)?,
        scope: if systemd {
            match choice_arg(args, "scope", &["system", "user", "global"], "system")? {
                "user" => "--user",
                "global" => "--global",
                _ => "--system",
            }
        } else {
            "--system"
        },
        sleep: match args.get("sleep") {
            None | Some(Value::Null) => None,
            Some(_) => Some(super::common::int_arg(args, "sleep", 0)?),
        },
        force_systemd: !systemd
            && match args.str_arg("use").as_deref() {
                None | Some("auto") => false,
                Some("systemd") => true,
                Some(other) => {
                    return Err(ModuleError::Args(format!(
                        "service: use: {other} is not supported by rdeploy (auto or systemd)"
                    )));
                }
            },
    };
    let acts = w.state.is_some() || w.enabled.is_some() || w.masked.is_some();
    if acts && w.name.is_none() {
        return Err(ModuleError::Args("'name' is required".into()));
    }
    // `systemd: name=X` alone is a status query (see `query_unit`).
    if !(acts || w.daemon_reload || systemd && w.name.is_some()) {
        return Err(ModuleError::Args(
            "nothing to do: give 'state', 'enabled', 'masked' or 'daemon_reload'".into(),
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

fn step_cmd(manager: Manager, scope: &'static str, name: &str, step: Step) -> Cmd {
    match manager {
        Manager::Systemd => {
            let verb = match step {
                Step::DaemonReload => return Cmd::raw("systemctl").op(scope).op("daemon-reload"),
                Step::Unmask => "unmask",
                Step::Mask => "mask",
                Step::Enable => "enable",
                Step::Disable => "disable",
                Step::Action(a) => a,
            };
            Cmd::raw("systemctl").op(scope).op(verb).op("--").arg(name)
        }
        Manager::Sysv => match step {
            Step::Enable | Step::Disable => Cmd::raw("set --")
                .arg(name)
                .arg(if step == Step::Enable { "on" } else { "off" })
                .op(SYSV_ENABLE),
            Step::Action(a) => Cmd::raw("service").arg(name).op(a),
            // Refused in check for SysV.
            Step::DaemonReload | Step::Mask | Step::Unmask => Cmd::raw("true"),
        },
    }
}

async fn read_state(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    name: &str,
    scope: &'static str,
    force_systemd: bool,
) -> Result<Option<Seen>, ModuleError> {
    let cmd = Cmd::raw("set --")
        .arg(name)
        .arg(scope)
        .arg(if force_systemd { "systemd" } else { "auto" })
        .op(READ_STATE);
    let out = ctx.run_ok(tr, cmd).await?;
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
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    systemd: bool,
) -> Result<Verdict, ModuleError> {
    let w = want(args, systemd)?;
    let acts = w.state.is_some() || w.enabled.is_some() || w.masked.is_some() || w.daemon_reload;
    if systemd
        && !acts
        && let Some(name) = &w.name
    {
        return query_unit(tr, ctx, name, w.scope).await;
    }
    let Some(name) = w.name.clone() else {
        // daemon_reload alone. Ansible's `service` hands it to `systemd` on a systemd host;
        // elsewhere its own module fails on the missing name.
        if !systemd {
            let out = ctx.run_ok(tr, Cmd::raw(DETECT)).await?;
            let manager = parse_seen(&out.stdout_lossy())
                .map_err(|e| failed(format!("cannot find the service manager: {e}"), Args::new()))?
                .map(|s| s.manager);
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
            Plan {
                manager: Manager::Systemd,
                name: String::new(),
                scope: w.scope,
                steps,
                result: Args::new(),
                sleep: None,
            },
        )));
    };
    let seen = read_state(tr, ctx, &name, w.scope, systemd || w.force_systemd)
        .await?
        .ok_or_else(|| {
            failed(
                "neither systemd nor the service tool was found on the host",
                result([("name", Value::from(name.clone()))]),
            )
        })?;
    if seen.manager == Manager::Sysv && (w.masked.is_some() || w.daemon_reload) {
        return Err(ModuleError::Args(
            "'masked' and 'daemon_reload' need systemd".into(),
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
        Plan {
            manager: seen.manager,
            name,
            scope: w.scope,
            steps,
            result: r,
            sleep: w.sleep.filter(|s| *s > 0),
        },
    )))
}

/// `systemd: name=X` and nothing else: Ansible's status query. Every property `systemctl show`
/// gives lands in `status` (`FragmentPath`, `ActiveState`, `ExecStart`...); nothing changes.
async fn query_unit(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    name: &str,
    scope: &'static str,
) -> Result<Verdict, ModuleError> {
    let cmd = Cmd::raw("systemctl").op(scope).op("show --").arg(name);
    let out = ctx.run_ok(tr, cmd).await?;
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

async fn apply_service(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let plan = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("service: apply without a plan from check".into()))?;
    let mut cmd: Option<Cmd> = None;
    for step in &plan.steps {
        let c = match (*step, plan.sleep) {
            // `sleep`: stop, wait, start, as Ansible's service module restarts then.
            (Step::Action("restart"), Some(s)) => {
                step_cmd(plan.manager, plan.scope, &plan.name, Step::Action("stop"))
                    .and(Cmd::raw("sleep").arg(s.to_string()))
                    .and(step_cmd(
                        plan.manager,
                        plan.scope,
                        &plan.name,
                        Step::Action("start"),
                    ))
            }
            _ => step_cmd(plan.manager, plan.scope, &plan.name, *step),
        };
        cmd = Some(match cmd {
            None => c,
            Some(prev) => prev.and(c),
        });
    }
    let mut r = plan.result.clone();
    r.remove("changed");
    let Some(cmd) = cmd else {
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
                tr: &'a mut AnyTransport,
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

            fn resources(&self, args: &Args) -> Vec<Resource> {
                args.str_arg("name")
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
        let sd = |s| step_cmd(Manager::Systemd, "--system", "my app", s).display();
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
            step_cmd(Manager::Systemd, w.scope, "u", Step::Action("start")).display(),
            "systemctl --user start -- 'u'"
        );
        let sv = |s| step_cmd(Manager::Sysv, "--system", "nginx", s).display();
        assert_eq!(sv(Step::Action("reload")), "service 'nginx' reload");
        assert!(sv(Step::Enable).starts_with("set -- 'nginx' 'on'"));
        assert!(want(&args(json!({"name": "-x", "state": "started"})), true).is_err());
        assert!(want(&args(json!({"state": "started"})), true).is_err());
        assert!(want(&args(json!({"name": "a"})), false).is_err());
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
[ "$1" = --system ] && shift
verb=$1; shift; [ "$1" = -- ] && shift
case $verb in
  show) eval u=\${$#}; if [ -e "$FAKE/$u.active" ]; then echo loaded; else echo not-found; fi ;;
  is-active) s=$(cat "$FAKE/$1.active" 2>/dev/null || echo inactive); echo "$s"; [ "$s" = active ] ;;
  is-enabled) s=$(cat "$FAKE/$1.enabled" 2>/dev/null || echo disabled); echo "$s"; [ "$s" = enabled ] ;;
  start|restart) echo active > "$FAKE/$1.active" ;;
  stop) echo inactive > "$FAKE/$1.active" ;;
  enable) echo enabled > "$FAKE/$1.enabled" ;;
  disable) echo disabled > "$FAKE/$1.enabled" ;;
  daemon-reload) ;;
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
