//! The module contract the executor drives: `check` (read-only) → `apply` (only the drift).
//!
//! Owns the types every module implementation shares: rendered [`Args`], the [`ModuleCtx`]
//! a task gives its module, the [`HostView`] `check` gets (it can look, not act: by type),
//! [`Verdict`]/[`Drift`]/[`Change`], the [`Resource`]s a module may
//! touch (the executor backs them up before `apply`) and [`ModuleError`]. Modules never see
//! check or diff mode: the executor stops after `check` in check mode and renders the drift it
//! already has for `--diff`. Modules build [`Cmd`]s and run them through the transport; they
//! never format a shell line themselves.

use std::any::Any;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::transport::cmd::{Batch, BatchError};
use crate::transport::{AnyTransport, Become, Cmd, Output, ReadSet, Transport, TransportError};

/// A module's arguments after rendering: canonical names, `omit` already removed.
pub type Args = Map<String, Value>;

/// A boxed future, so modules can sit behind `dyn Module`.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Renders a template file's text with the task's variables (the `template` module's source).
pub type RenderFn<'a> = &'a (dyn Fn(&str) -> Result<String, String> + Send + Sync);

/// The host as a module's `check` sees it: it can look (commands that read, in one round trip or
/// read ahead, through [`ModuleCtx::read`] and the `query` methods) but has no way to act: file
/// transfers, queued backups and the `run` methods take the transport itself, which only
/// `apply` receives. The executor hands `check` a view; `apply` looks again through one made
/// with [`HostView::of`]. (What a queried program does is still its command's: the check-mode
/// tests prove that `--check` changes nothing.)
pub struct HostView<'t> {
    tr: &'t mut AnyTransport,
}

impl<'t> HostView<'t> {
    /// A view of `tr` (the executor's for `check`; `apply`'s own to look again).
    pub fn of(tr: &'t mut AnyTransport) -> HostView<'t> {
        HostView { tr }
    }

    /// The host's name, for messages.
    pub fn name(&self) -> &str {
        self.tr.name()
    }

    /// Reads the file at `path` (following symlinks) from the host; too large past `max_bytes`.
    pub async fn get(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>, TransportError> {
        self.tr.get(path, max_bytes).await
    }

    /// The transport itself, for Ansible's own modules only: their `check` runs the module on
    /// the host with `_ansible_check_mode` set (it is sent to a temporary directory first), and
    /// Ansible's check-mode contract is what keeps that from changing anything.
    pub(in crate::modules) fn for_ansible_check_mode(&mut self) -> &mut AnyTransport {
        self.tr
    }
}

/// What a task gives its module besides the arguments.
pub struct ModuleCtx<'a> {
    /// The controller-side file a `src:` names, already resolved against the role's
    /// `files/`/`templates/` and the playbook's directory.
    pub local_src: Option<&'a Path>,
    /// Renders template text with the task's variables.
    pub render: RenderFn<'a>,
    /// `become`, applied to every command the module runs.
    pub become_: Option<Become>,
    /// `environment:` for every command the module runs.
    pub environment: Vec<(String, String)>,
    /// Per-command timeout (`timeout:` / `--task-timeout`).
    pub timeout: Option<Duration>,
    /// Where the module may keep controller-side scratch data (fetch's `dest` base).
    pub controller_dir: &'a Path,
    /// The task's `no_log` (Ansible's own modules are told, so they log nothing on the host).
    pub no_log: bool,
    /// `ansible_python_interpreter` (not `auto...`): the host's Python for Ansible's own
    /// modules; `None` finds one.
    pub python: Option<&'a str>,
}

impl ModuleCtx<'_> {
    /// `cmd` with this task's become, environment and timeout applied.
    pub fn prepare(&self, mut cmd: Cmd) -> Cmd {
        for (k, v) in &self.environment {
            cmd = cmd.env(k.clone(), v.clone());
        }
        if let Some(b) = &self.become_ {
            cmd = cmd.with_become(b.clone());
        }
        if let Some(t) = self.timeout {
            cmd = cmd.timeout(t);
        }
        cmd
    }

    /// Runs `cmd` (prepared) on the host.
    pub async fn run(&self, tr: &mut AnyTransport, cmd: Cmd) -> Result<Output, ModuleError> {
        let cmd = self.prepare(cmd);
        tr.exec(&cmd).await.map_err(ModuleError::Transport)
    }

    /// Runs `cmd` (prepared) with `input` on its stdin, borrowed (a large input shared by many
    /// hosts is not copied for each) or streamed from its file; see
    /// [`AnyTransport::exec_input`].
    pub async fn run_input(
        &self,
        tr: &mut AnyTransport,
        cmd: Cmd,
        input: crate::transport::Payload<'_>,
    ) -> Result<Output, ModuleError> {
        let cmd = self.prepare(cmd);
        tr.exec_input(&cmd, input)
            .await
            .map_err(ModuleError::Transport)
    }

    /// Runs `batch` (prepared) and splits its output; see [`AnyTransport::batch`]. It runs as
    /// any command: what was read ahead on the host is forgotten first.
    pub async fn run_batch(
        &self,
        tr: &mut AnyTransport,
        batch: &Batch,
    ) -> Result<Result<Vec<Output>, BatchError>, ModuleError> {
        tr.batch(batch, &|c| self.prepare(c), false)
            .await
            .map_err(ModuleError::Transport)
    }

    /// Runs read-only `cmds` (prepared; a check's look at the host) in one round trip and
    /// returns one output per command, each stream cut to `keep` bytes at each end. The host
    /// may have read them ahead ([`crate::transport::reads`]): then no round trip at all.
    pub async fn read(
        &self,
        host: &mut HostView<'_>,
        cmds: &[Cmd],
        keep: u64,
    ) -> Result<Result<Vec<Output>, BatchError>, ModuleError> {
        // A command that cannot be built (a NUL byte in a path) is the arguments' fault.
        let args_fault = |e: TransportError| match e {
            TransportError::InvalidCommand(e) => ModuleError::Args(e.to_string()),
            e => ModuleError::Transport(e),
        };
        let prepared: Vec<Cmd> = cmds.iter().map(|c| self.prepare(c.clone())).collect();
        let tr = &mut *host.tr;
        match ReadSet::new(&prepared, keep) {
            Some(set) => tr.read(&set).await.map_err(args_fault),
            // Commands that cannot be read as one set (su): a batch of their own.
            None => {
                let batch = Cmd::batch_keeping(cmds, keep)
                    .map_err(|e| args_fault(TransportError::InvalidCommand(e)))?;
                self.run_batch(tr, &batch).await
            }
        }
    }

    /// Runs `cmd`, a command that only looks (`check`'s way of asking what [`ModuleCtx::read`]
    /// cannot: a program that decides from what it reads, a long listing).
    pub async fn query(&self, host: &mut HostView<'_>, cmd: Cmd) -> Result<Output, ModuleError> {
        self.run(host.tr, cmd).await
    }

    /// [`ModuleCtx::query`] that fails with the command's stderr unless it exits 0.
    pub async fn query_ok(&self, host: &mut HostView<'_>, cmd: Cmd) -> Result<Output, ModuleError> {
        self.run_ok(host.tr, cmd).await
    }

    /// [`ModuleCtx::run_input`] for a command that only looks but needs the controller's data
    /// to compare with (an archive listed against the host's files).
    pub async fn query_input(
        &self,
        host: &mut HostView<'_>,
        cmd: Cmd,
        input: crate::transport::Payload<'_>,
    ) -> Result<Output, ModuleError> {
        self.run_input(host.tr, cmd, input).await
    }

    /// [`ModuleCtx::run_batch`] for commands that only look.
    pub async fn query_batch(
        &self,
        host: &mut HostView<'_>,
        batch: &Batch,
    ) -> Result<Result<Vec<Output>, BatchError>, ModuleError> {
        self.run_batch(host.tr, batch).await
    }

    /// Runs `cmd` and fails with its stderr unless it exits 0.
    pub async fn run_ok(&self, tr: &mut AnyTransport, cmd: Cmd) -> Result<Output, ModuleError> {
        let shown = cmd.display();
        let out = self.run(tr, cmd).await?;
        if out.status != 0 {
            return Err(ModuleError::Failed {
                msg: format!(
                    "`{shown}` exited {}: {}",
                    out.status,
                    out.stderr_lossy().trim()
                ),
                result: output_result(&out),
            });
        }
        Ok(out)
    }
}

/// What `check` found.
pub enum Verdict {
    /// The host already matches; `result` is what `register:` sees (e.g. `stat`'s facts).
    InSync {
        /// Result keys for `register:`.
        result: Args,
    },
    /// The host differs; `apply` will act on exactly this.
    Drift(Drift),
}

/// The difference between the host and the task, found by `check` and acted on by `apply`.
pub struct Drift {
    /// What would change, for the report, `--check` and `--diff`.
    pub changes: Vec<Change>,
    /// Module-private data carried from `check` to `apply` (rendered content, stat results),
    /// so `apply` does not look again.
    pub plan: Box<dyn Any + Send + Sync>,
}

impl Drift {
    /// A drift with these changes and a module-private plan.
    pub fn new<T: Any + Send + Sync>(changes: Vec<Change>, plan: T) -> Drift {
        Drift {
            changes,
            plan: Box::new(plan),
        }
    }

    /// The module-private plan, if it is a `T`.
    pub fn plan<T: Any>(&self) -> Option<&T> {
        self.plan.downcast_ref::<T>()
    }
}

/// One thing that would change.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A file's content. `before` is `None` when the file does not exist (or is not text).
    Content {
        /// The path on the host.
        path: String,
        /// The current text, if any.
        before: Option<String>,
        /// The new text (for binary content, a one-line description).
        after: String,
    },
    /// An attribute: `state`, `mode`, `owner`, `group`, `target` (link), `enabled`, `version`.
    Attr {
        /// The path, unit or package.
        subject: String,
        /// Which attribute.
        what: String,
        /// Its current value (`absent` when missing).
        before: String,
        /// Its value after apply.
        after: String,
    },
    /// A command that would run.
    Run {
        /// The command, secrets masked.
        command: String,
    },
}

/// Something a module may touch, which the executor backs up before `apply`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    /// A path (a file's content, a symlink, attributes, or its existence). A directory's
    /// contents are not copied: use [`Resource::Tree`] when they may change.
    Path(String),
    /// A directory tree whose contents may change (copied whole before the change).
    Tree(String),
    /// A path of which only the mode, owner and group may change: a regular file's content is
    /// not copied (a `chmod` of a large file costs no copy of it).
    Attrs(String),
    /// A service's active/enabled state.
    Service(String),
    /// A package's installed version.
    Package(String),
    /// A kernel parameter's live value (`net.ipv4.ip_forward`), as `/proc/sys` shows it.
    Sysctl(String),
    /// What is mounted at a path (source, type, options), or that nothing is, or that the
    /// mount point does not exist.
    Mount(String),
    /// A load balancer server's forced state (ready, drain, maintenance) and weight in HAProxy,
    /// as `BACKEND/SERVER@SOCKET` (`*` as BACKEND: every backend holding the server).
    Haproxy(String),
}

/// A module could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The arguments make no sense together (caught at run time because they were templates).
    #[error("{0}")]
    Args(String),
    /// The work failed on the host; `result` is what `register:` sees.
    #[error("{msg}")]
    Failed {
        /// Why.
        msg: String,
        /// Result keys (`rc`, `stdout`, `stderr`, ...).
        result: Args,
    },
    /// The host could not be reached or did not answer.
    #[error(transparent)]
    Transport(TransportError),
}

/// A module: read-only `check`, then `apply` of exactly the drift.
pub trait Module: Send + Sync {
    /// The canonical name (`copy`).
    fn name(&self) -> &'static str;

    /// Looks at the host and says whether it matches the arguments. It gets a [`HostView`], which
    /// cannot change anything.
    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>>;

    /// Changes exactly what `drift` says; returns the result keys for `register:`. A module
    /// that does not converge ([`Module::converges`]) may return `changed: false` when it
    /// found nothing to do after all (Ansible's own modules through the bridge): the step is
    /// then `ok`, not `changed`.
    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>>;

    /// What `apply` may touch, for backups. Empty for modules that change nothing backed up.
    fn resources(&self, args: &Args) -> Vec<Resource>;

    /// Why rollback cannot undo what this module does (`rdeploy plan` prints it), when its
    /// resources' backups do not restore it; `given(NAME)` says whether the task writes
    /// argument NAME (the arguments are not rendered yet when the plan is made).
    fn not_reversible(&self, _given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        None
    }

    /// Host paths this module defaults from its other arguments, as `(argument, path under
    /// ~)`: the executor writes them into the arguments (under a `_` name no task can write)
    /// and expands their `~USER` as it expands a written `path: ~/...`, so the module and the
    /// backups of its [`Module::resources`] see the same absolute path (`authorized_key`
    /// without `path` names `~USER/.ssh/authorized_keys`).
    fn implied_paths(&self, _args: &Args) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// The facts the module returns under `ansible_facts`, for the template check to know
    /// their names before the run: `getent_<database>` is `getent_passwd` when the task gives
    /// `database: passwd` literally.
    fn facts(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether the executor may run `check` ahead of its turn ([`Ahead`]).
    fn ahead(&self) -> Ahead {
        Ahead::No
    }

    /// False for modules whose every run is a change (`command`, `shell`, `script`, `raw`):
    /// the executor does not verify them after `apply`, skips them in check mode, and
    /// reports them as not reversible.
    fn converges(&self, _args: &Args) -> bool {
        true
    }

    /// `Some(message)` when ansible-playbook does not run this module at all under `--check`
    /// and reports it `skipping` with that message (`wait_for` would wait for what check mode
    /// did not start); the executor then neither checks nor applies it.
    fn check_mode_skip(&self, _args: &Args, _ctx: &ModuleCtx<'_>) -> Option<&'static str> {
        None
    }

    /// What `--check` reports for a module that does not converge (its effect cannot be
    /// predicted, so it is not run), as ansible-playbook reports it: skipped with Ansible's
    /// message, unless the module's own guards (`creates`/`removes`) let it predict a change.
    /// Only asked after `check` found drift.
    fn unpredicted(&self, _args: &Args, _drift: &Drift) -> Unpredicted {
        Unpredicted::skip(Some("Check mode is not supported for this task."))
    }
}

/// A non-converging module's report under `--check` ([`Module::unpredicted`]).
#[derive(Debug)]
pub struct Unpredicted {
    /// Reported `skipping` (no change is predicted, no handler is notified); false: a change
    /// is predicted (`changed`, handlers notified).
    pub skip: bool,
    /// The result keys (`msg`, and for commands Ansible's empty `rc`/`stdout`/...).
    pub result: Args,
}

impl Unpredicted {
    /// Skipped, with Ansible's message if it has one.
    pub fn skip(msg: Option<&str>) -> Unpredicted {
        let mut result = Map::new();
        if let Some(m) = msg {
            result.insert("msg".into(), Value::from(m));
        }
        Unpredicted { skip: true, result }
    }
}

/// What the executor may do with a module's `check` before the task's turn: run it on a
/// recording transport to learn which reads it will ask for, and announce them to the host
/// ([`crate::transport::reads`]) so they ride in a round trip it makes anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ahead {
    /// `check` runs in its turn only (it may cost the controller much, or not only read).
    No,
    /// `check` looks at the host only through [`ModuleCtx::read`] and has no other effect.
    Reads,
    /// As [`Ahead::Reads`], and the module never changes the host (`stat`, `find`).
    ReadsOnly,
}

/// `rc`/`stdout`/`stderr`/`stdout_lines`/`stderr_lines` of a command's output.
pub fn output_result(out: &Output) -> Args {
    let stdout = out.stdout_lossy().trim_end_matches('\n').to_string();
    let stderr = out.stderr_lossy().trim_end_matches('\n').to_string();
    let mut m = Map::new();
    m.insert("rc".into(), Value::from(out.status));
    m.insert(
        "stdout_lines".into(),
        Value::from(stdout.lines().map(str::to_string).collect::<Vec<_>>()),
    );
    m.insert(
        "stderr_lines".into(),
        Value::from(stderr.lines().map(str::to_string).collect::<Vec<_>>()),
    );
    m.insert("stdout".into(), Value::from(stdout));
    m.insert("stderr".into(), Value::from(stderr));
    m
}

/// Typed access to rendered arguments, with errors that name the argument.
pub trait ArgsExt {
    /// A string argument (numbers and booleans are written as text).
    fn str_arg(&self, name: &str) -> Option<String>;
    /// A required string argument.
    fn req_str(&self, name: &str) -> Result<String, ModuleError>;
    /// A boolean argument with Ansible's spellings (`yes`, `no`, `true`, `1`...).
    fn bool_arg(&self, name: &str, default: bool) -> Result<bool, ModuleError>;
    /// A list of strings (a single string counts as a one-item list; `a,b` is split on commas
    /// when `split_commas`).
    fn list_arg(&self, name: &str, split_commas: bool) -> Vec<String>;
}

impl ArgsExt for Args {
    fn str_arg(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(if *b { "True".into() } else { "False".into() }),
            Value::Number(n) => Some(n.to_string()),
            other => Some(other.to_string()),
        }
    }

    fn req_str(&self, name: &str) -> Result<String, ModuleError> {
        self.str_arg(name)
            .ok_or_else(|| ModuleError::Args(format!("missing required argument '{name}'")))
    }

    fn bool_arg(&self, name: &str, default: bool) -> Result<bool, ModuleError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Number(n)) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "yes" | "y" | "true" | "t" | "on" | "1" => Ok(true),
                "no" | "n" | "false" | "f" | "off" | "0" | "" => Ok(false),
                _ => Err(ModuleError::Args(format!(
                    "argument '{name}' expects a boolean, found '{s}'"
                ))),
            },
            Some(other) => Err(ModuleError::Args(format!(
                "argument '{name}' expects a boolean, found {other}"
            ))),
        }
    }

    fn list_arg(&self, name: &str, split_commas: bool) -> Vec<String> {
        match self.get(name) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
            Some(Value::String(s)) if split_commas => s
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(other) => vec![other.to_string()],
        }
    }
}

/// A file mode from Ansible's spellings: an int from YAML (`0644` is already 420), an octal
/// string (`'0644'`, `'644'`), or symbolic (`u=rw,g=r,o=r`, `u+x`) applied to `current`.
pub fn parse_mode(v: &Value, current: Option<u32>, is_dir: bool) -> Result<u32, ModuleError> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|m| u32::try_from(m).ok())
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| ModuleError::Args(format!("mode {n} is out of range"))),
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.chars().all(|c| c.is_digit(8)) {
                return u32::from_str_radix(s, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| ModuleError::Args(format!("mode '{s}' is out of range")));
            }
            symbolic_mode(s, current.unwrap_or(0), is_dir)
        }
        other => Err(ModuleError::Args(format!(
            "mode must be octal or symbolic, found {other}"
        ))),
    }
}

/// Applies a chmod-style symbolic mode (`u=rwx,g=rx,o=`, `a+x`, `go-w`, `u+X`) to `current`.
fn symbolic_mode(spec: &str, current: u32, is_dir: bool) -> Result<u32, ModuleError> {
    let bad = || {
        ModuleError::Args(format!(
            "mode '{spec}' is neither octal nor symbolic (u=rw,g=r,o=r)"
        ))
    };
    let mut mode = current & 0o7777;
    for clause in spec.split(',') {
        let op_at = clause.find(['=', '+', '-']).ok_or_else(bad)?;
        let (who, rest) = clause.split_at(op_at);
        let mut who_mask = 0u32;
        for c in who.chars() {
            who_mask |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return Err(bad()),
            };
        }
        if who.is_empty() {
            who_mask = 0o7777;
        }
        let mut chars = rest.chars();
        let op = chars.next().ok_or_else(bad)?;
        let mut bits = 0u32;
        for c in chars {
            bits |= match c {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                'X' if is_dir || mode & 0o111 != 0 => 0o111,
                'X' => 0,
                's' => 0o6000,
                't' => 0o1000,
                _ => return Err(bad()),
            };
        }
        let bits = bits & who_mask;
        match op {
            '=' => mode = (mode & !(who_mask & 0o777) & !(who_mask & 0o7000)) | bits,
            '+' => mode |= bits,
            '-' => mode &= !bits,
            _ => return Err(bad()),
        }
    }
    Ok(mode)
}

/// The controller-side path a module reads from, or an error naming the argument.
pub fn need_local_src<'a>(ctx: &'a ModuleCtx<'a>) -> Result<&'a Path, ModuleError> {
    ctx.local_src
        .ok_or_else(|| ModuleError::Args("'src' was not found on the controller".into()))
}

/// Where `fetch` and similar modules put controller-side files.
pub fn controller_path(ctx: &ModuleCtx<'_>, rel: &str) -> PathBuf {
    ctx.controller_dir.join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modes_in_every_spelling() {
        assert_eq!(parse_mode(&json!(420), None, false).unwrap(), 0o644);
        assert_eq!(parse_mode(&json!("0644"), None, false).unwrap(), 0o644);
        assert_eq!(parse_mode(&json!("755"), None, false).unwrap(), 0o755);
        assert_eq!(
            parse_mode(&json!("u=rw,g=r,o=r"), Some(0o777), false).unwrap(),
            0o644
        );
        assert_eq!(
            parse_mode(&json!("u+x"), Some(0o644), false).unwrap(),
            0o744
        );
        assert_eq!(
            parse_mode(&json!("go-w"), Some(0o666), false).unwrap(),
            0o644
        );
        assert_eq!(parse_mode(&json!("a+X"), Some(0o644), true).unwrap(), 0o755);
        assert_eq!(
            parse_mode(&json!("a+X"), Some(0o644), false).unwrap(),
            0o644
        );
        assert!(parse_mode(&json!("rwxr-xr-x"), None, false).is_err());
        assert!(parse_mode(&json!(99999), None, false).is_err());
    }

    #[test]
    fn args_accessors() {
        let a: Args = json!({"s": "x", "b": "yes", "n": 3, "l": "a, b", "arr": ["p", 1]})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(a.str_arg("n").as_deref(), Some("3"));
        assert!(a.bool_arg("b", false).unwrap());
        assert!(!a.bool_arg("missing", false).unwrap());
        assert_eq!(a.list_arg("l", true), ["a", "b"]);
        assert_eq!(a.list_arg("arr", false), ["p", "1"]);
        assert!(a.req_str("missing").is_err());
    }
}
