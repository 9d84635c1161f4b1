//! `haproxy` (community.general.haproxy): a server's state in an HAProxy backend, through
//! HAProxy's runtime API on its UNIX socket.
//!
//! Owns the module's rules: which servers a task names ([`matching`]), what state each must
//! reach ([`Wanted`]), the command lines community.general sends ([`commands`]), and reading
//! HAProxy's `show servers state` and `show stat` answers ([`parse_servers`], [`parse_stat`]).
//! The socket is reached by the host program `haproxy.sh` (socat, else python3), so the host
//! needs no Python. The server's state before the change is backed up
//! ([`Resource::Haproxy`]): rollback and `rdeploy switch-back` put it back through the same
//! socket. It must not format shell lines beyond handing the commands to that program.

use std::time::Duration;

use serde_json::{Value, json};

use super::common::failed;
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd, Output};

/// The `haproxy` module.
pub struct Haproxy;

crate::module_args! {
    /// Enables, disables or drains a server in HAProxy backends through HAProxy's runtime API
    /// (its admin-level UNIX socket), as community.general.haproxy does: the switch of a
    /// blue-green deployment.
    #[module(
        name = "haproxy",
        backup = "The server's forced state (ready, drain or maintenance) and weight in each backend the task names are recorded from `show servers state`: rollback and `rdeploy switch-back RUN` set them back through the same socket. The health and agent checks `health`/`agent` enable or disable are not recorded.",
        returns = &[
            ("command", "the runtime API command lines sent"),
            ("output", "HAProxy's answer to each"),
            ("state_before", "status, weight and sessions (scur) of the server in each backend, before"),
            ("state_after", "the same, after"),
        ],
        examples = "- haproxy:\n    state: disabled\n    host: \"{{ inventory_hostname }}\"\n    backend: www\n    socket: /run/haproxy/admin.sock\n    drain: true\n    wait: true"
    )]
    pub struct HaproxyArgs {
        /// `enabled` (ready), `disabled` (maintenance) or `drain`.
        #[arg(required, choices = &["enabled", "disabled", "drain"])]
        state: String,
        /// The server's name in the backend.
        #[arg(required)]
        host: String,
        /// The backend; without it, every backend holding the server.
        backend: Option<String>,
        /// The server's weight with `enabled` (a number, or a percentage of its initial one).
        weight: Option<String>,
        /// HAProxy's admin socket on the host.
        #[arg(default = "/var/run/haproxy.sock", kind = Path)]
        socket: String,
        /// With `disabled`, also end the server's open sessions.
        #[arg(default = "no")]
        shutdown_sessions: bool,
        /// Fail when a backend does not hold the server.
        #[arg(default = "no")]
        fail_on_not_found: bool,
        /// Also enable or disable the server's health checks.
        #[arg(default = "no")]
        health: bool,
        /// Also enable or disable the server's agent checks.
        #[arg(default = "no")]
        agent: bool,
        /// Wait until HAProxy reports the server UP, MAINT or DRAIN.
        #[arg(default = "no")]
        wait: bool,
        /// How many times to look while waiting.
        #[arg(default = "25")]
        wait_retries: i64,
        /// Seconds between looks while waiting.
        #[arg(default = "5")]
        wait_interval: i64,
        /// With `disabled`, drain the server first (and, with `wait`, until it has no
        /// sessions).
        #[arg(default = "no")]
        drain: bool,
    }
}

/// One line of `show servers state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// The backend's name.
    pub backend: String,
    /// The server's name.
    pub server: String,
    /// `srv_admin_state`: bit 0x01 forced maintenance, 0x08 forced drain.
    pub admin: u32,
    /// `srv_uweight`: the weight now.
    pub weight: u32,
    /// `srv_iweight`: the weight the configuration gave.
    pub initial_weight: u32,
}

/// Forced maintenance (`disable server`, `set server ... state maint`).
const FMAINT: u32 = 0x01;
/// Forced drain (`set server ... state drain`).
const FDRAIN: u32 = 0x08;

/// The servers of a `show servers state` answer (format 1).
pub fn parse_servers(text: &str) -> Vec<Server> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 9 {
                return None;
            }
            Some(Server {
                backend: f[1].to_string(),
                server: f[3].to_string(),
                admin: f[6].parse().ok()?,
                weight: f[7].parse().ok()?,
                initial_weight: f[8].parse().ok()?,
            })
        })
        .collect()
}

/// One row of `show stat` (CSV): proxy, service name, status, weight, current sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// `pxname`.
    pub proxy: String,
    /// `svname` (a server's name, or `FRONTEND`/`BACKEND`).
    pub name: String,
    /// `status` (`UP`, `DOWN`, `MAINT`, `DRAIN`, `UP 1/3`, `MAINT (via x/y)`...).
    pub status: String,
    /// `weight`.
    pub weight: String,
    /// `scur`.
    pub sessions: String,
}

/// The rows of a `show stat` answer, by its header's column names.
pub fn parse_stat(text: &str) -> Vec<Stat> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let cols: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let at = |name: &str| cols.iter().position(|c| *c == name);
    let (Some(px), Some(sv), Some(st), Some(w), Some(cur)) = (
        at("pxname"),
        at("svname"),
        at("status"),
        at("weight"),
        at("scur"),
    ) else {
        return Vec::new();
    };
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or_default().to_string();
            Stat {
                proxy: get(px),
                name: get(sv),
                status: get(st),
                weight: get(w),
                sessions: get(cur),
            }
        })
        .collect()
}

/// The state a task asks of a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// Neither forced into maintenance nor drain (with a weight, that weight).
    Ready,
    /// Forced into maintenance.
    Maint,
    /// Forced into drain.
    Drain,
}

impl Wanted {
    fn of(state: &str) -> Wanted {
        match state {
            "disabled" => Wanted::Maint,
            "drain" => Wanted::Drain,
            _ => Wanted::Ready,
        }
    }

    /// The word HAProxy's `show stat` status holds once the server is there.
    fn status(self) -> &'static str {
        match self {
            Wanted::Ready => "UP",
            Wanted::Maint => "MAINT",
            Wanted::Drain => "DRAIN",
        }
    }
}

/// How a server's admin bits read: `maint`, `drain` or `ready`.
pub fn admin_word(admin: u32) -> &'static str {
    if admin & FMAINT != 0 {
        "maint"
    } else if admin & FDRAIN != 0 {
        "drain"
    } else {
        "ready"
    }
}

/// The weight `weight` asks of `s`: a number, or a percentage of its initial weight
/// (HAProxy's `set weight` rule); `None` when it is neither.
fn weight_wanted(weight: &str, s: &Server) -> Option<u32> {
    match weight.trim().strip_suffix('%') {
        Some(p) => p
            .trim()
            .parse::<u32>()
            .ok()
            .map(|p| s.initial_weight * p / 100),
        None => weight.trim().parse().ok(),
    }
}

/// Whether `s` is as the task asks.
fn in_state(s: &Server, want: Wanted, weight: Option<&str>) -> bool {
    let word = admin_word(s.admin);
    match want {
        Wanted::Maint => word == "maint",
        Wanted::Drain => word == "drain",
        Wanted::Ready => {
            word == "ready" && weight.is_none_or(|w| weight_wanted(w, s) == Some(s.weight))
        }
    }
}

/// The servers a task names: `host` in `backend`, or in every backend holding it.
pub fn matching<'s>(servers: &'s [Server], host: &str, backend: Option<&str>) -> Vec<&'s Server> {
    servers
        .iter()
        .filter(|s| s.server == host && backend.is_none_or(|b| s.backend == b))
        .collect()
}

/// The runtime API command lines community.general.haproxy sends for one server (one
/// connection each; `;` separates commands within one), in order.
pub fn commands(a: &HaproxyArgs, backend: &str) -> Vec<String> {
    let id = format!("{backend}/{}", a.host);
    let enabled = || {
        let mut c = format!("get weight {id}; enable server {id}");
        if a.agent {
            c.push_str(&format!("; enable agent {id}"));
        }
        if a.health {
            c.push_str(&format!("; enable health {id}"));
        }
        if let Some(w) = &a.weight {
            c.push_str(&format!("; set weight {id} {w}"));
        }
        c
    };
    let disabled = || {
        let mut c = format!("get weight {id}");
        if a.agent {
            c.push_str(&format!("; disable agent {id}"));
        }
        if a.health {
            c.push_str(&format!("; disable health {id}"));
        }
        c.push_str(&format!("; disable server {id}"));
        if a.shutdown_sessions {
            c.push_str(&format!("; shutdown sessions server {id}"));
        }
        c
    };
    let drain = format!("set server {id} state drain");
    match (a.state.as_str(), a.drain) {
        ("enabled", _) => vec![enabled()],
        ("disabled", true) => vec![drain, disabled()],
        ("disabled", false) => vec![disabled()],
        _ => vec![drain],
    }
}

/// The lines of an answer that say something went wrong: anything but `get weight`'s
/// `N (initial M)` and blank lines (HAProxy answers a command that worked with nothing).
fn complaints(answer: &str) -> Vec<&str> {
    answer
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next().is_some_and(|n| n.parse::<u32>().is_ok())
                && w.next().is_some_and(|i| i == "(initial")
                && w.next()
                    .is_some_and(|m| m.trim_end_matches(')').parse::<u32>().is_ok()))
        })
        .collect()
}

/// A name HAProxy accepts for a proxy or server, and one that cannot smuggle a second command
/// into a runtime API line.
fn checked_name(what: &str, name: &str) -> Result<(), ModuleError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ModuleError::Args(format!(
            "{what} '{name}' is not an HAProxy name (letters, digits, '_', '.', ':', '-')"
        )))
    }
}

/// The program sending `commands` to `socket`.
fn program(socket: &str, commands: &[String]) -> Cmd {
    let mut cmd = Cmd::raw("set --").arg(socket);
    for c in commands {
        cmd = cmd.arg(c.clone());
    }
    cmd.op(";")
        .op(crate::host::HAPROXY_CLI)
        .op(";")
        .op(crate::host::HAPROXY)
}

/// The answers of a `haproxy.sh` run that exited 0, one per command.
fn answers(out: &Output, socket: &str) -> Result<Vec<String>, ModuleError> {
    if out.status != 0 {
        let mut r = Args::new();
        r.insert("rc".into(), Value::from(out.status));
        return Err(failed(
            format!(
                "could not talk to HAProxy on {socket}: {}",
                out.stderr_lossy().trim()
            ),
            r,
        ));
    }
    let text = out.stdout_lossy();
    let mut parts: Vec<String> = text
        .split("\n@@rdeploy-haproxy@@\n")
        .map(str::to_string)
        .collect();
    parts.pop();
    Ok(parts)
}

/// What `show servers state` and `show stat` say now.
struct Seen {
    servers: Vec<Server>,
    stats: Vec<Stat>,
}

const LOOK: [&str; 2] = ["show servers state", "show stat"];

fn seen(parts: &[String]) -> Seen {
    Seen {
        servers: parse_servers(parts.first().map_or("", String::as_str)),
        stats: parse_stat(parts.get(1).map_or("", String::as_str)),
    }
}

/// community.general's `state_before`/`state_after`: status, weight and sessions of the server
/// in the backend (or every backend); `null` when none holds it.
fn state_value(stats: &[Stat], host: &str, backend: Option<&str>) -> Value {
    let rows: Vec<Value> = stats
        .iter()
        .filter(|s| s.name == host && backend.is_none_or(|b| s.proxy == b))
        .map(|s| json!({"status": s.status, "weight": s.weight, "scur": s.sessions}))
        .collect();
    if rows.is_empty() {
        Value::Null
    } else {
        Value::Array(rows)
    }
}

/// What `check` hands `apply`.
struct Plan {
    args: HaproxyArgs,
    /// The backends whose server is not as asked.
    backends: Vec<String>,
    before: Value,
}

fn parse(args: &Args) -> Result<HaproxyArgs, ModuleError> {
    let a = HaproxyArgs::parse(args)?;
    checked_name("host", &a.host)?;
    if let Some(b) = &a.backend {
        checked_name("backend", b)?;
    }
    if let Some(w) = &a.weight {
        let digits = w.trim().trim_end_matches('%');
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(ModuleError::Args(format!(
                "weight '{w}' is not a number or a percentage"
            )));
        }
    }
    Ok(a)
}

async fn check_haproxy(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = parse(args)?;
    let looks = LOOK.map(str::to_string);
    let out = ctx.query(tr, program(&a.socket, &looks)).await?;
    let now = seen(&answers(&out, &a.socket)?);
    let backends: Vec<String> = match &a.backend {
        Some(b) => vec![b.clone()],
        None => now
            .stats
            .iter()
            .filter(|s| s.name == "BACKEND")
            .map(|s| s.proxy.clone())
            .collect(),
    };
    if a.fail_on_not_found
        && let Some(b) = backends
            .iter()
            .find(|b| matching(&now.servers, &a.host, Some(b)).is_empty())
    {
        return Err(failed(
            format!("The specified backend '{b}/{}' was not found!", a.host),
            Args::new(),
        ));
    }
    let want = Wanted::of(&a.state);
    let weight = (want == Wanted::Ready)
        .then_some(a.weight.as_deref())
        .flatten();
    let before = state_value(&now.stats, &a.host, a.backend.as_deref());
    let mut changes = Vec::new();
    let mut drifted = Vec::new();
    for s in matching(&now.servers, &a.host, a.backend.as_deref()) {
        if in_state(s, want, weight) {
            continue;
        }
        let subject = format!("{}/{}", s.backend, s.server);
        let after = match want {
            Wanted::Ready => "ready",
            Wanted::Maint => "maint",
            Wanted::Drain => "drain",
        };
        if admin_word(s.admin) != after {
            changes.push(Change::Attr {
                subject: subject.clone(),
                what: "state".into(),
                before: admin_word(s.admin).into(),
                after: after.into(),
            });
        }
        if let Some(w) = weight.and_then(|w| weight_wanted(w, s))
            && w != s.weight
        {
            changes.push(Change::Attr {
                subject,
                what: "weight".into(),
                before: s.weight.to_string(),
                after: w.to_string(),
            });
        }
        drifted.push(s.backend.clone());
    }
    if drifted.is_empty() {
        let mut result = Args::new();
        result.insert("state_before".into(), before.clone());
        result.insert("state_after".into(), before);
        return Ok(Verdict::InSync { result });
    }
    Ok(Verdict::Drift(Drift::new(
        changes,
        Plan {
            args: a,
            backends: drifted,
            before,
        },
    )))
}

async fn apply_haproxy(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("haproxy: apply without a plan from check".into()))?;
    let a = &p.args;
    let mut sent: Vec<Value> = Vec::new();
    let mut outputs: Vec<Value> = Vec::new();
    for backend in &p.backends {
        let lines = commands(a, backend);
        for (i, line) in lines.iter().enumerate() {
            let out = ctx
                .run(tr, program(&a.socket, std::slice::from_ref(line)))
                .await?;
            let answer = answers(&out, &a.socket)?.pop().unwrap_or_default();
            sent.push(Value::from(line.clone()));
            outputs.push(Value::from(answer.trim().to_string()));
            let bad = complaints(&answer);
            if !bad.is_empty() {
                let mut r = Args::new();
                r.insert("command".into(), Value::Array(sent));
                r.insert("output".into(), Value::Array(outputs));
                return Err(failed(
                    format!("HAProxy refused `{line}`: {}", bad.join("; ")),
                    r,
                ));
            }
            // `disabled` with `drain`: the drain (and its wait) comes first.
            let status = if i + 1 < lines.len() {
                Wanted::Drain
            } else {
                Wanted::of(&a.state)
            };
            if a.wait {
                wait_until(tr, ctx, a, backend, status).await?;
            }
        }
    }
    let looks = LOOK.map(str::to_string);
    let out = ctx.run(tr, program(&a.socket, &looks)).await?;
    let now = seen(&answers(&out, &a.socket)?);
    let mut r = Args::new();
    r.insert("command".into(), Value::Array(sent));
    r.insert("output".into(), Value::Array(outputs));
    r.insert("state_before".into(), p.before.clone());
    r.insert(
        "state_after".into(),
        state_value(&now.stats, &a.host, a.backend.as_deref()),
    );
    Ok(r)
}

/// community.general's `wait_until_status`: up to `wait_retries - 1` looks, `wait_interval`
/// seconds apart, until the server's status holds the wanted word (and, draining with
/// `drain`, it has no sessions left).
async fn wait_until(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    a: &HaproxyArgs,
    backend: &str,
    want: Wanted,
) -> Result<(), ModuleError> {
    let looks = ["show stat".to_string()];
    for _ in 1..a.wait_retries.max(1) {
        let out = ctx.run(tr, program(&a.socket, &looks)).await?;
        let parts = answers(&out, &a.socket)?;
        let stats = parse_stat(parts.first().map_or("", String::as_str));
        let there = stats
            .iter()
            .find(|s| s.proxy == backend && s.name == a.host)
            .is_some_and(|s| s.status.contains(want.status()) && (!a.drain || s.sessions == "0"));
        if there {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(a.wait_interval.max(0) as u64)).await;
    }
    Err(failed(
        format!(
            "server {backend}/{} not status '{}' after {} retries. Aborting.",
            a.host,
            want.status(),
            a.wait_retries
        ),
        Args::new(),
    ))
}

impl Module for Haproxy {
    fn name(&self) -> &'static str {
        "haproxy"
    }

    fn check_mode_skip(&self, _args: &Args, _ctx: &ModuleCtx<'_>) -> Option<&'static str> {
        Some("remote module (community.general.haproxy) does not support check mode")
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_haproxy(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_haproxy(tr, ctx, drift))
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        match parse(args) {
            Ok(a) => vec![Resource::Haproxy(format!(
                "{}/{}@{}",
                a.backend.as_deref().unwrap_or("*"),
                a.host,
                a.socket
            ))],
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `show servers state` as HAProxy 2.6 prints it (captured), with blue in forced
    /// maintenance and green configured `disabled` but set ready since.
    const SERVERS: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n3 app 1 blue 127.0.0.1 0 1 50 1 0 8 2 0 14 0 0 0 - 18081 - 0 0 - - 0\n3 app 2 green 127.0.0.1 2 4 1 1 0 1 0 2 6 0 0 0 - 18082 - 0 0 - - 0\n4 api 1 blue 127.0.0.1 2 8 10 10 0 1 0 2 6 0 0 0 - 18083 - 0 0 - - 0\n";

    #[test]
    fn servers_and_their_forced_states_are_read_from_show_servers_state() {
        let s = parse_servers(SERVERS);
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].backend.as_str(), s[0].server.as_str()),
            ("app", "blue")
        );
        assert_eq!(
            s.iter().map(|s| admin_word(s.admin)).collect::<Vec<_>>(),
            ["maint", "ready", "drain"],
            "green's configured `disabled` bit (0x04) alone is not maintenance"
        );
        assert_eq!((s[0].weight, s[0].initial_weight), (50, 1));
        let m = matching(&s, "blue", None);
        assert_eq!(
            m.len(),
            2,
            "without a backend, every backend holding the server"
        );
        assert_eq!(matching(&s, "blue", Some("api")).len(), 1);
    }

    #[test]
    fn show_stat_rows_are_read_by_column_name() {
        let text = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\nfe,FRONTEND,,,0,0,9985,0,0,0,0,0,0,,,,,OPEN,\napp,blue,0,0,3,0,,0,0,0,,0,,0,0,0,0,DRAIN 1/3,50\n\n";
        let rows = parse_stat(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].status, "DRAIN 1/3");
        assert_eq!(rows[1].sessions, "3");
        assert_eq!(
            state_value(&rows, "blue", None),
            json!([{"status": "DRAIN 1/3", "weight": "50", "scur": "3"}])
        );
        assert_eq!(state_value(&rows, "nope", None), Value::Null);
    }

    fn args(extra: Value) -> HaproxyArgs {
        let mut v = json!({"state": "enabled", "host": "blue", "backend": "app"});
        if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
        let Value::Object(m) = v else { unreachable!() };
        parse(&m.into_iter().collect()).expect("valid arguments")
    }

    #[test]
    fn command_lines_are_community_generals() {
        assert_eq!(
            commands(&args(json!({"weight": "10", "health": true})), "app"),
            [
                "get weight app/blue; enable server app/blue; enable health app/blue; set weight app/blue 10"
            ]
        );
        assert_eq!(
            commands(
                &args(json!({"state": "disabled", "shutdown_sessions": true})),
                "app"
            ),
            ["get weight app/blue; disable server app/blue; shutdown sessions server app/blue"]
        );
        assert_eq!(
            commands(&args(json!({"state": "disabled", "drain": true})), "app"),
            [
                "set server app/blue state drain",
                "get weight app/blue; disable server app/blue"
            ]
        );
        assert_eq!(
            commands(&args(json!({"state": "drain"})), "app"),
            ["set server app/blue state drain"]
        );
    }

    #[test]
    fn a_server_in_the_asked_state_is_left_alone() {
        let s = parse_servers(SERVERS);
        assert!(
            !in_state(&s[0], Wanted::Ready, None),
            "blue is in maintenance"
        );
        assert!(in_state(&s[0], Wanted::Maint, None));
        assert!(in_state(&s[1], Wanted::Ready, None));
        assert!(!in_state(&s[1], Wanted::Ready, Some("5")));
        assert!(in_state(&s[1], Wanted::Ready, Some("100%")));
        assert!(in_state(&s[2], Wanted::Drain, None));
    }

    #[test]
    fn names_that_could_carry_another_command_are_refused() {
        for bad in ["a; shutdown frontend fe", "a b", "a/b", "", "a@b"] {
            let v = json!({"state": "enabled", "host": bad});
            let Value::Object(m) = v else { unreachable!() };
            assert!(parse(&m.into_iter().collect()).is_err(), "{bad:?}");
        }
        let v = json!({"state": "enabled", "host": "b", "weight": "1; x"});
        let Value::Object(m) = v else { unreachable!() };
        assert!(parse(&m.into_iter().collect()).is_err());
    }

    /// The host program reaches the socket with socat, and with python3 where socat is
    /// missing (a PATH holding only python3): the same answer either way.
    #[test]
    fn the_runtime_api_is_reached_with_socat_or_python3() {
        use std::io::{BufRead, BufReader, Write};
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("admin.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            let mut asked = Vec::new();
            for _ in 0..2 {
                let Ok((s, _)) = listener.accept() else { break };
                let mut line = String::new();
                let mut r = BufReader::new(&s);
                let _ = r.read_line(&mut line);
                asked.push(line);
                let _ = (&s).write_all(b"1 (initial 1)\n\n");
            }
            asked
        });
        let only_python = dir.path().join("bin");
        std::fs::create_dir(&only_python).unwrap();
        let which = |b: &str| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|d| d.join(b))
                .find(|p| p.exists())
        };
        // The system's own python3 (a version manager's shim on PATH may be a bash script).
        let python = Some(std::path::PathBuf::from("/usr/bin/python3"))
            .filter(|p| p.exists())
            .or_else(|| which("python3"))
            .expect("python3 on the test machine");
        std::os::unix::fs::symlink(python, only_python.join("python3")).unwrap();
        let script = format!(
            "{}\nhap_ \"$1\" \"get weight app/blue\"",
            crate::host::HAPROXY_CLI
        );
        let run = |path: &std::ffi::OsStr| {
            std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(&script)
                .arg("sh")
                .arg(&sock)
                .env("PATH", path)
                .output()
                .unwrap()
        };
        let with_socat = run(&std::env::var_os("PATH").unwrap_or_default());
        let with_python = run(only_python.as_os_str());
        for out in [&with_socat, &with_python] {
            assert!(out.status.success(), "{out:?}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), "1 (initial 1)\n\n");
        }
        assert_eq!(server.join().unwrap(), ["get weight app/blue\n"; 2]);
    }

    #[test]
    fn only_get_weights_answer_and_blank_lines_are_not_complaints() {
        assert!(complaints("1 (initial 1)\n\n").is_empty());
        assert_eq!(complaints("\nNo such server.\n"), ["No such server."]);
        assert_eq!(complaints("Permission denied\n"), ["Permission denied"]);
    }
}
