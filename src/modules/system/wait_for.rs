//! `wait_for` (waits on the host for a port, a file or a delay) and `ping` (proves the host runs
//! commands).
//!
//! Both change nothing: `check` does the work and always returns in sync, or fails. `wait_for`
//! runs one bounded loop ON THE HOST (one round trip) so that "127.0.0.1" means the host's
//! loopback. The port probe is portable POSIX: `nc -z -w T` when `nc` exists, else bash's
//! `/dev/tcp` (only inside `bash -c`, under `timeout` when present), else `python3`'s
//! `socket.create_connection`; with none of them it fails with a message saying so. Files use
//! `test -e` and, with `search_regex`, `grep -E` (POSIX ERE, line by line — Ansible uses Python
//! regexes over the whole file). It must not format shell lines.

use std::time::Duration;

use serde_json::Value;

use super::common::{failed, python_str, result};
use crate::diag::Diagnostic;
use crate::modules::runtime::{
    Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::modules::spec::ArgsRef;
use crate::transport::{AnyTransport, Cmd};

/// `wait_for`.
pub struct WaitFor;
/// `ping`.
pub struct Ping;

/// The loop. `$1` kind (`port`, `path`, `sleep`), `$2` `up` (wait until present/open) or
/// `down`, `$3` host, `$4` port, `$5` path, `$6` regex, `$7` timeout, `$8` delay, `$9` sleep,
/// `${10}` connect timeout. Prints `elapsed N` and exits 0 when the condition holds, 1 on
/// timeout, 2 when no port probe tool exists.
const WAIT: &str = crate::host::WAIT_FOR;

crate::module_args! {
    /// Waits until a port accepts connections (or is closed), or a file exists or contains a
    /// regex, or a delay has passed. The loop runs on the host, so `127.0.0.1` is the host's
    /// own loopback. `state: drained` (waiting for a port's connections to end) is not
    /// supported by rdeploy; `search_regex` reads files line by line with `grep -E` (POSIX
    /// extended regexes), not a port's banner.
    #[module(
        name = "wait_for",
        check_args = wait_for_check,
        backup = "Changes nothing on the host: nothing to back up.",
        returns = &[("elapsed", "seconds waited"), ("state", "what was waited for"), ("port", "the port"), ("path", "the path"), ("search_regex", "the regex")],
        examples = "- wait_for:\n    port: 8080\n    host: 127.0.0.1\n    timeout: 60\n- wait_for:\n    path: /var/log/app/app.log\n    search_regex: started\n    timeout: 30"
    )]
    pub struct WaitForArgs {
        /// Address to check, as seen from the host.
        #[arg(default = "127.0.0.1")]
        host: String,
        /// TCP port to check.
        port: Option<i64>,
        /// File to check instead of a port.
        #[arg(kind = Path)]
        path: Option<String>,
        /// Regex the file must match (a line of it).
        search_regex: Option<String>,
        /// The condition to wait for (`drained` is not supported by rdeploy).
        #[arg(default = "started", choices = &["started", "stopped", "present", "absent", "drained"])]
        state: String,
        /// Give up after this many seconds.
        #[arg(default = "300")]
        timeout: i64,
        /// Seconds to wait before the first check.
        #[arg(default = "0")]
        delay: i64,
        /// Seconds between checks.
        #[arg(default = "1")]
        sleep: i64,
        /// Seconds allowed for each connection attempt.
        #[arg(default = "5")]
        connect_timeout: i64,
        /// Message on timeout.
        msg: Option<String>,
    }
}

crate::module_args! {
    /// Checks that the host is reachable and can run commands; returns `data` (a list or
    /// mapping as Python's `str()` of it, as Ansible does).
    #[module(
        name = "ping",
        backup = "Changes nothing on the host: nothing to back up.",
        returns = &[("ping", "pong (or `data`)")],
        examples = "- ping:"
    )]
    pub struct PingArgs {
        /// Value returned as `ping`.
        #[arg(default = "pong")]
        data: Value,
    }
}

/// `wait_for`: `port` and `path` exclude each other; `state: drained` is refused before the
/// run (it needs the host's connection table, which rdeploy does not read).
fn wait_for_check(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if a.has("port") && a.has("path") {
        out.push(Diagnostic::at(
            a.module_loc,
            "arguments 'port' and 'path' of module 'wait_for' are mutually exclusive",
        ));
    }
    if a.literal("state").as_deref() == Some("drained")
        && let Some(n) = a.get("state")
    {
        out.push(Diagnostic::at(
            &n.loc,
            "state 'drained' of module 'wait_for' is not supported by rdeploy",
        ));
    }
    out
}

/// A count of seconds (or a port) that must not be negative.
fn non_negative(name: &str, n: i64) -> Result<u64, ModuleError> {
    u64::try_from(n).map_err(|_| {
        ModuleError::Args(format!(
            "argument '{name}' expects a non-negative integer, found {n}"
        ))
    })
}

async fn wait(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = WaitForArgs::parse(args)?;
    let state = a.state.as_str();
    if state == "drained" {
        return Err(ModuleError::Args(
            "wait_for: state=drained is not supported by rdeploy".into(),
        ));
    }
    let host = a.host;
    let port = match a.port {
        None => None,
        Some(p) => Some(
            u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| ModuleError::Args("wait_for: port must be 1-65535".into()))?,
        ),
    };
    let path = a.path;
    let regex = a.search_regex;
    if port.is_some() && path.is_some() {
        return Err(ModuleError::Args("'port' and 'path' are exclusive".into()));
    }
    if port.is_some() && regex.is_some() {
        return Err(ModuleError::Args(
            "wait_for: search_regex on a port's banner is not supported; use it with 'path'".into(),
        ));
    }
    let timeout = non_negative("timeout", a.timeout)?;
    let delay = non_negative("delay", a.delay)?;
    let sleep = non_negative("sleep", a.sleep)?.max(1);
    let connect = non_negative("connect_timeout", a.connect_timeout)?.max(1);
    let (kind, what) = match (&port, &path) {
        (Some(p), _) => ("port", format!("{host}:{p}")),
        (_, Some(f)) => match &regex {
            Some(r) if matches!(state, "started" | "present") => {
                ("path", format!("search string {r} in {f}"))
            }
            _ => ("path", format!("file {f}")),
        },
        _ => ("sleep", String::new()),
    };
    let up = matches!(state, "started" | "present");
    let cmd = Cmd::raw("set --")
        .arg(kind)
        .arg(if up { "up" } else { "down" })
        .arg(host.clone())
        .arg(port.map(|p| p.to_string()).unwrap_or_default())
        .arg(path.clone().unwrap_or_default())
        .arg(regex.clone().unwrap_or_default())
        .arg(timeout.to_string())
        .arg(delay.to_string())
        .arg(sleep.to_string())
        .arg(connect.to_string())
        .op(WAIT)
        // Our own bound, so a task without a timeout cannot hang here; the task's wins.
        .timeout(Duration::from_secs(timeout + delay + connect + sleep + 30));
    let started = std::time::Instant::now();
    let out = ctx.query(tr, cmd).await?;
    let on_host: u64 = out
        .stdout_lossy()
        .lines()
        .find_map(|l| l.strip_prefix("elapsed ")?.trim().parse().ok())
        .unwrap_or(0);
    // Whole seconds waited, as Ansible's `elapsed` (a timedelta's seconds): the host counts
    // in whole seconds of its clock (`date +%s`), so a condition that held at once could read
    // 1 across a second's boundary; the controller's clock times a wait that ended well. A
    // timeout keeps the host's count, which is at least the timeout.
    let elapsed = if out.status == 0 {
        started.elapsed().as_secs()
    } else {
        on_host
    };
    let mut r = result([
        ("elapsed", Value::from(elapsed)),
        ("state", Value::from(state)),
    ]);
    if let Some(p) = port {
        r.insert("port".into(), Value::from(p));
    }
    if let Some(f) = &path {
        r.insert("path".into(), Value::from(f.clone()));
    }
    if let Some(re) = &regex {
        r.insert("search_regex".into(), Value::from(re.clone()));
    }
    match out.status {
        0 => Ok(Verdict::InSync { result: r }),
        1 => {
            let msg = a
                .msg
                .unwrap_or_else(|| format!("Timeout when waiting for {what}"));
            Err(failed(msg, r))
        }
        rc => Err(failed(
            format!(
                "wait_for could not run (rc {rc}): {}",
                out.stderr_lossy().trim()
            ),
            r,
        )),
    }
}

impl Module for WaitFor {
    fn name(&self) -> &'static str {
        "wait_for"
    }

    fn check_mode_skip(&self, _args: &Args, _ctx: &ModuleCtx<'_>) -> Option<&'static str> {
        Some("remote module (wait_for) does not support check mode")
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(wait(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        _tr: &'a mut AnyTransport,
        _args: &'a Args,
        _ctx: &'a ModuleCtx<'a>,
        _drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(async { Ok(Args::new()) })
    }

    fn resources(&self, _args: &Args) -> Vec<Resource> {
        Vec::new()
    }
}

impl Module for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            // A list or mapping becomes text as Ansible's `str` arguments do (Python's `str()`).
            let data = match PingArgs::parse(args)?.data {
                Value::Null => "pong".to_string(),
                v => python_str(&v),
            };
            // Ansible's test hook: `data: crash` makes the module fail.
            if data == "crash" {
                return Err(failed("boom", Args::new()));
            }
            ctx.query_ok(tr, Cmd::raw("true")).await?;
            Ok(Verdict::InSync {
                result: result([("ping", Value::from(data))]),
            })
        })
    }

    fn apply<'a>(
        &'a self,
        _tr: &'a mut AnyTransport,
        _args: &'a Args,
        _ctx: &'a ModuleCtx<'a>,
        _drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(async { Ok(Args::new()) })
    }

    fn resources(&self, _args: &Args) -> Vec<Resource> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;
    use std::path::Path;

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1)
    }

    /// A PATH holding only the tools the loop needs plus `extra` (to force one probe).
    fn only_tools(dir: &Path, extra: &[&str]) -> Vec<(String, String)> {
        let bin = dir.join("only");
        std::fs::create_dir_all(&bin).unwrap();
        for t in ["sh", "date", "sleep", "grep", "cat"].iter().chain(extra) {
            for base in ["/usr/bin", "/bin"] {
                let src = Path::new(base).join(t);
                if src.exists() {
                    let _ = std::os::unix::fs::symlink(&src, bin.join(t));
                    break;
                }
            }
        }
        vec![("PATH".into(), bin.display().to_string())]
    }

    #[tokio::test]
    async fn port_open_closed_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = free_port();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let a = args(json!({"port": open, "timeout": 5}));
        let r = check_only(&WaitFor, &mut tr, &a, &c)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r["elapsed"], json!(0));
        assert_eq!(r["port"], json!(open));
        assert_eq!(recorded(&tr).len(), 1);
        let a = args(json!({"port": closed, "state": "stopped", "timeout": 5}));
        assert!(
            check_only(&WaitFor, &mut tr, &a, &c)
                .await
                .unwrap()
                .is_some()
        );
        let a = args(json!({"port": closed, "timeout": 1, "host": "127.0.0.1"}));
        let Err(ModuleError::Failed { msg, result }) =
            WaitFor.check(&mut HostView::of(&mut tr), &a, &c).await
        else {
            panic!()
        };
        assert_eq!(msg, format!("Timeout when waiting for 127.0.0.1:{closed}"));
        assert!(result["elapsed"].as_u64().unwrap_or(0) >= 1);
        drop(listener);
    }

    #[tokio::test]
    async fn each_port_probe_works() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = free_port();
        for (probe, tools) in [("bash", vec!["bash", "timeout"]), ("python3", vec![])] {
            let dir = tempfile::tempdir().unwrap();
            let mut env = only_tools(dir.path(), &tools);
            if probe == "python3" {
                let Ok(py) = which("python3") else { continue };
                let _ = std::os::unix::fs::symlink(py, dir.path().join("only/python3"));
            }
            env.push(("HOME".into(), "/nonexistent".into()));
            let c = ctx(dir.path(), None, env);
            let mut tr = transport();
            let a = args(json!({"port": open, "timeout": 3}));
            let r = check_only(&WaitFor, &mut tr, &a, &c).await;
            assert!(matches!(r, Ok(Some(_))), "{probe}: {r:?}");
            let a = args(json!({"port": closed, "timeout": 3, "state": "absent"}));
            let r = check_only(&WaitFor, &mut tr, &a, &c).await;
            assert!(matches!(r, Ok(Some(_))), "{probe}: {r:?}");
        }
        // No probe tool at all: a clear failure, not a silent timeout.
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, only_tools(dir.path(), &[]));
        let mut tr = transport();
        let a = args(json!({"port": open, "timeout": 3}));
        let Err(ModuleError::Failed { msg, .. }) =
            WaitFor.check(&mut HostView::of(&mut tr), &a, &c).await
        else {
            panic!()
        };
        assert!(msg.contains("needs nc, bash or python3"), "{msg}");
        drop(listener);
    }

    fn which(tool: &str) -> Result<std::path::PathBuf, ()> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("command -v python3 && python3 -c 'import sys; print(sys.executable)'")
            .output()
            .map_err(|_| ())?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .last()
            .filter(|l| l.contains(tool))
            .map(std::path::PathBuf::from)
            .ok_or(())
    }

    #[tokio::test]
    async fn path_states_regex_and_sleep() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ready");
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let a = args(json!({"path": f, "timeout": 1}));
        assert!(matches!(
            WaitFor.check(&mut HostView::of(&mut tr), &a, &c).await,
            Err(ModuleError::Failed { .. })
        ));
        let a = args(json!({"path": f, "state": "absent", "timeout": 1}));
        assert!(
            check_only(&WaitFor, &mut tr, &a, &c)
                .await
                .unwrap()
                .is_some()
        );
        std::fs::write(&f, "booting\nstatus: READY $(id)\n").unwrap();
        let a = args(json!({"path": f, "search_regex": "READY \\$\\(id\\)", "timeout": 2}));
        assert!(
            check_only(&WaitFor, &mut tr, &a, &c)
                .await
                .unwrap()
                .is_some()
        );
        let a = args(json!({"path": f, "search_regex": "^DONE", "timeout": 1, "msg": "never"}));
        let Err(ModuleError::Failed { msg, .. }) =
            WaitFor.check(&mut HostView::of(&mut tr), &a, &c).await
        else {
            panic!()
        };
        assert_eq!(msg, "never");
        let a = args(json!({"timeout": 1}));
        let r = check_only(&WaitFor, &mut tr, &a, &c)
            .await
            .unwrap()
            .unwrap();
        // A plain delay waits at least its timeout (more on a loaded machine).
        assert!(r["elapsed"].as_u64().is_some_and(|e| e >= 1), "{r:?}");
        let a = args(json!({"port": 80, "state": "drained"}));
        assert!(matches!(
            WaitFor.check(&mut HostView::of(&mut tr), &a, &c).await,
            Err(ModuleError::Args(_))
        ));
    }

    /// The typed arguments: integers given as text are read, what is out of range or not
    /// rdeploy's is refused before anything runs on the host.
    #[tokio::test]
    async fn arguments_out_of_range_or_unsupported_are_refused_before_running() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let a = args(json!({"path": dir.path(), "timeout": "2", "sleep": "1"}));
        assert!(
            check_only(&WaitFor, &mut tr, &a, &c)
                .await
                .unwrap()
                .is_some()
        );
        for (a, want) in [
            (json!({"port": 70000}), "wait_for: port must be 1-65535"),
            (json!({"port": 0}), "wait_for: port must be 1-65535"),
            (
                json!({"path": "/x", "timeout": -1}),
                "argument 'timeout' expects a non-negative integer, found -1",
            ),
            (
                json!({"path": "/x", "exclude_hosts": ["a"]}),
                "argument 'exclude_hosts' of module 'wait_for' is not supported by rdeploy",
            ),
            (
                json!({"port": 22, "search_regex": "SSH"}),
                "wait_for: search_regex on a port's banner is not supported; use it with 'path'",
            ),
        ] {
            let r = WaitFor
                .check(&mut HostView::of(&mut tr), &args(a.clone()), &c)
                .await;
            assert!(
                matches!(&r, Err(ModuleError::Args(m)) if m == want),
                "{a}: {:?}",
                r.err()
            );
        }
        assert_eq!(recorded(&tr).len(), 1);
    }

    #[tokio::test]
    async fn ping_returns_data() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let r = check_only(&Ping, &mut tr, &args(json!({})), &c)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r["ping"], json!("pong"));
        let r = check_only(&Ping, &mut tr, &args(json!({"data": "hi"})), &c)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r["ping"], json!("hi"));
        assert_eq!(recorded(&tr), ["true", "true"]);
        assert!(
            Ping.check(
                &mut HostView::of(&mut tr),
                &args(json!({"data": "crash"})),
                &c
            )
            .await
            .is_err()
        );
    }
}
