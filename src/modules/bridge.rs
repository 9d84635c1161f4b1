//! The bridge to Ansible's own modules: a module rdeploy does not carry, when the controller
//! has ansible-core (and the collection that holds the module), runs as Ansible runs it.
//!
//! Owns finding a Python with ansible-core on the controller (`--ansible-python`, else
//! `RDEPLOY_ANSIBLE_PYTHON`, else `python3` on `PATH`), one helper process per run that
//! resolves module names and packs modules (`bridge.py`: ansible-core's own
//! `modify_module`, once per module per run, with a marker where the arguments go), and the
//! [`Bridged`] module that runs the packed module with the host's Python through the same
//! connection and `become` as any module: the payload, arguments included, goes on stdin
//! (never on argv); its JSON result becomes the task's result.
//!
//! A module is bridged only if ansible-core finds it, it is a Python module, and it has no
//! controller-side action plugin of its own (those do part of their work on the controller,
//! which the bridge does not run): everything else keeps its precise refusal. It must not
//! decide anything about native modules (that is `registry.rs`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Unpredicted,
    Verdict,
};
use super::spec::{ArgKind, ArgSpec, ModuleSpec};
use crate::transport::{AnyTransport, Cmd, Payload};

const HELPER: &str = include_str!("bridge.py");

/// How long the helper may take for one answer (packing a module with many module_utils
/// takes a second or two; importing ansible-core the first time a few).
const HELPER_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the helper may take to end once its stdin is closed.
const HELPER_EXIT_GRACE: Duration = Duration::from_secs(5);

/// Finds the host's Python 3 and runs the payload on stdin with it; 127 when there is none.
const RUN_ON_HOST: &str = "for p_ in /usr/bin/python3 python3 /usr/libexec/platform-python python; do if command -v \"$p_\" >/dev/null 2>&1; then exec \"$p_\" -; fi; done; echo 'rdeploy: no python3 on this host' >&2; exit 127";

/// What ansible-core found for one module name.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The module's full name (`community.general.npm`).
    pub fqcn: String,
    /// Its file on the controller.
    pub path: String,
    /// Its controller-side action plugin, if it has one.
    pub action: Option<String>,
    /// Its documented options (name, aliases, required), when its documentation could be read.
    pub options: Option<Vec<(String, Vec<String>, bool)>>,
    /// The `ansible_facts` keys it documents (`getent_<database>`: `<database>` is its argument).
    pub facts: Vec<String>,
}

/// The controller's ansible-core, when it was looked for.
struct State {
    /// The Python `--ansible-python` named (set before the playbook is read).
    python: Option<PathBuf>,
    /// The helper, once started; `Err` says why there is none.
    helper: Option<Result<Helper, String>>,
    /// Answers for module names, by name as written.
    resolved: HashMap<String, Option<Resolved>>,
    /// The spec each bridged name is validated with.
    specs: HashMap<String, &'static ModuleSpec>,
    /// The module each bridged name runs as.
    modules: HashMap<String, &'static Bridged>,
    /// Every fact name [`fact_names`] gave: `ansible_facts.NAME` is known at run time.
    facts: std::collections::HashSet<String>,
}

fn state() -> &'static Mutex<State> {
    static S: OnceLock<Mutex<State>> = OnceLock::new();
    S.get_or_init(|| {
        Mutex::new(State {
            python: None,
            helper: None,
            resolved: HashMap::new(),
            specs: HashMap::new(),
            modules: HashMap::new(),
            facts: std::collections::HashSet::new(),
        })
    })
}

/// `--ansible-python PATH`: the Python whose ansible-core runs the modules rdeploy lacks.
pub fn configure(python: Option<PathBuf>) {
    if let Ok(mut s) = state().lock() {
        s.python = python;
    }
}

/// The helper process and its answers.
struct Helper {
    child: Child,
    /// Closed (taken) when the helper is told to end.
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// ansible-core's version and the Python it runs on.
    version: String,
    python: String,
}

impl Helper {
    fn start(python: &Path) -> Result<Helper, String> {
        let mut child = Command::new(python)
            .args(["-c", HELPER])
            .env("ANSIBLE_NOCOLOR", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err("the helper has no pipes".into());
        };
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut h = Helper {
            child,
            stdin: Some(stdin),
            lines,
            version: String::new(),
            python: python.display().to_string(),
        };
        let v = h.request(&json!({"op": "version"}))?;
        h.version = v["version"].as_str().unwrap_or("?").to_string();
        if let Some(p) = v["python"].as_str() {
            h.python = p.to_string();
        }
        Ok(h)
    }

    fn request(&mut self, req: &Value) -> Result<Value, String> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err("ansible-core's helper has ended".into());
        };
        writeln!(stdin, "{req}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("ansible-core's helper stopped: {e}"))?;
        let line = match self.lines.recv_timeout(HELPER_TIMEOUT) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                return Err(format!(
                    "ansible-core's helper did not answer within {} s",
                    HELPER_TIMEOUT.as_secs()
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err("ansible-core's helper ended (is ansible-core importable?)".into());
            }
        };
        let v: Value = serde_json::from_str(&line)
            .map_err(|e| format!("ansible-core's helper answered something else: {e}"))?;
        match v.get("error").and_then(Value::as_str) {
            Some(e) => Err(e.to_string()),
            None => Ok(v),
        }
    }
}

impl Drop for Helper {
    /// Closes the helper's stdin and waits a bounded time for it to end on its own, so
    /// ansible-core removes its own temporary files before rdeploy exits; then kills it.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + HELPER_EXIT_GRACE;
        while std::time::Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ends the helper, if one was started: called once before rdeploy exits, so no helper
/// outlives the run (the state is static and is never dropped on its own).
pub fn shutdown() {
    let helper = match state().try_lock() {
        Ok(mut s) => s.helper.take(),
        Err(_) => None,
    };
    drop(helper);
}

/// The Pythons to try, in order.
fn candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    if let Some(p) = std::env::var_os("RDEPLOY_ANSIBLE_PYTHON").filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    vec![PathBuf::from("python3")]
}

/// Runs `f` with the helper, starting it the first time.
fn with_helper<T>(
    s: &mut State,
    f: impl FnOnce(&mut Helper) -> Result<T, String>,
) -> Result<T, String> {
    if s.helper.is_none() {
        let mut why = Vec::new();
        let mut started = None;
        for p in candidates(s.python.as_deref()) {
            match Helper::start(&p) {
                Ok(h) => {
                    started = Some(h);
                    break;
                }
                Err(e) => why.push(e),
            }
        }
        s.helper = Some(started.ok_or_else(|| why.join("; ")));
    }
    match s.helper.as_mut() {
        Some(Ok(h)) => f(h),
        Some(Err(e)) => Err(e.clone()),
        None => Err("no helper".into()),
    }
}

/// Whether `name` could be one of Ansible's modules at all (worth asking ansible-core).
fn worth_asking(name: &str) -> bool {
    super::ansible::is_ansible_module(name) || name.contains('.')
}

/// What ansible-core says of module `name` (asked once per name per run).
fn resolve(name: &str) -> Option<Resolved> {
    if !worth_asking(name) {
        return None;
    }
    let Ok(mut s) = state().lock() else {
        return None;
    };
    if let Some(r) = s.resolved.get(name) {
        return r.clone();
    }
    let answer = with_helper(&mut s, |h| {
        h.request(&json!({"op": "resolve", "names": [name]}))
    });
    let r = answer.ok().and_then(|v| {
        let m = v["modules"].get(name)?.as_object()?.clone();
        let options = m.get("options").and_then(Value::as_array).map(|opts| {
            opts.iter()
                .filter_map(|o| {
                    let name = o.get("name")?.as_str()?.to_string();
                    let aliases = o
                        .get("aliases")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    let required = o.get("required").and_then(Value::as_bool).unwrap_or(false);
                    Some((name, aliases, required))
                })
                .collect()
        });
        let facts = m
            .get("facts")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Some(Resolved {
            fqcn: m.get("fqcn")?.as_str()?.to_string(),
            path: m.get("path")?.as_str()?.to_string(),
            action: m.get("action").and_then(Value::as_str).map(str::to_string),
            options,
            facts,
        })
    });
    s.resolved.insert(name.to_string(), r.clone());
    r
}

/// The spec a bridged module is validated with before the run: its documented options (a
/// typo or a missing required option is an error before any host, where ansible-playbook
/// finds it on the host), any value of any kind (the module checks them, as in Ansible). Any
/// argument name when its documentation could not be read. `None` when `name` cannot be
/// bridged.
pub fn spec(name: &str) -> Option<&'static ModuleSpec> {
    let r = resolve(name)?;
    if r.action.is_some() {
        return None;
    }
    let mut s = state().lock().ok()?;
    if let Some(spec) = s.specs.get(name) {
        return Some(spec);
    }
    let leak = |t: &str| -> &'static str { Box::leak(t.to_string().into_boxed_str()) };
    let args: Vec<ArgSpec> = r
        .options
        .iter()
        .flatten()
        .map(|(n, aliases, required)| {
            let aliases: Vec<&'static str> = aliases.iter().map(|a| leak(a)).collect();
            let a = ArgSpec::new(leak(n), "See the module's own documentation (ansible-doc).")
                .aliases(Box::leak(aliases.into_boxed_slice()))
                .kind(ArgKind::Raw);
            if *required { a.req() } else { a }
        })
        .collect();
    let spec: &'static ModuleSpec = Box::leak(Box::new(ModuleSpec {
        name: leak(name),
        doc: "One of Ansible's own modules, run through the controller's ansible-core (the bridge).",
        free_form: false,
        open_args: r.options.is_none(),
        args: Box::leak(args.into_boxed_slice()),
        check_args: None,
        backup: "The file it names as `path` or `dest`, if any; nothing else (not reversible otherwise).",
        ..ModuleSpec::typed_defaults()
    }));
    s.specs.insert(name.to_string(), spec);
    Some(spec)
}

/// The module a bridged name runs as.
pub fn implementation(name: &str) -> Option<&'static dyn Module> {
    spec(name)?;
    let r = resolve(name)?;
    let mut s = state().lock().ok()?;
    if let Some(m) = s.modules.get(name) {
        return Some(*m);
    }
    let m: &'static Bridged = Box::leak(Box::new(Bridged {
        name: Box::leak(name.to_string().into_boxed_str()),
        resolved: r,
        payload: Mutex::new(None),
    }));
    s.modules.insert(name.to_string(), m);
    Some(m)
}

/// The facts a bridged task sets, as far as its documentation says (`getent_<database>` with
/// `database: passwd` is `getent_passwd`): names the template check knows only at run time.
pub fn fact_names(name: &str, literal_arg: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let Some(r) = spec(name).and_then(|_| resolve(name)) else {
        return Vec::new();
    };
    let names: Vec<String> = r
        .facts
        .iter()
        .filter_map(|f| super::expand_fact(f, &literal_arg))
        .collect();
    note_facts(&names);
    names
}

/// Remembers fact names a task of this playbook sets (a native module's too), for
/// [`sets_fact`].
pub fn note_facts(names: &[String]) {
    if let Ok(mut s) = state().lock() {
        s.facts.extend(names.iter().cloned());
    }
}

/// Whether a task of this playbook sets fact `name` (see [`fact_names`], [`note_facts`]).
pub fn sets_fact(name: &str) -> bool {
    state().lock().is_ok_and(|s| s.facts.contains(name))
}

/// Why Ansible's module `name` does not run here, for the refusal's note.
pub fn why_not(name: &str) -> String {
    if let Some(r) = resolve(name)
        && let Some(a) = r.action
    {
        return format!(
            "ansible-core has it ({}), but it needs its controller-side action plugin ({a}), which rdeploy does not run",
            r.fqcn
        );
    }
    let Ok(mut s) = state().lock() else {
        return String::new();
    };
    match with_helper(&mut s, |h| Ok((h.version.clone(), h.python.clone()))) {
        Ok((v, py)) => format!(
            "ansible-core {v} ({py}) does not find it either: install the collection that holds it (`ansible-galaxy collection install ...`) and rdeploy runs Ansible's own module"
        ),
        Err(_) => "with ansible-core importable by the controller's python3 (or `--ansible-python PATH`), rdeploy runs Ansible's own module".to_string(),
    }
}

/// A module of Ansible's, run through the bridge.
pub struct Bridged {
    name: &'static str,
    resolved: Resolved,
    /// The packed module and the marker its arguments replace, once packed.
    payload: Mutex<Option<Arc<(String, String)>>>,
}

/// What `check` learned: the check-mode result, and whether the module supports check mode.
struct Plan {
    supported: bool,
    result: Args,
}

impl Bridged {
    /// The packed module (packed once per run, on first use).
    async fn packed(&self) -> Result<Arc<(String, String)>, ModuleError> {
        if let Ok(p) = self.payload.lock()
            && let Some(p) = p.as_ref()
        {
            return Ok(Arc::clone(p));
        }
        let (fqcn, path) = (self.resolved.fqcn.clone(), self.resolved.path.clone());
        let built = tokio::task::spawn_blocking(move || {
            let mut s = state()
                .lock()
                .map_err(|_| "the bridge's state is poisoned".to_string())?;
            with_helper(&mut s, |h| {
                h.request(&json!({"op": "build", "fqcn": fqcn, "path": path}))
            })
        })
        .await
        .map_err(|e| ModuleError::Args(format!("packing {}: {e}", self.resolved.fqcn)))?
        .map_err(|e| {
            ModuleError::Args(format!(
                "ansible-core could not pack {}: {e}",
                self.resolved.fqcn
            ))
        })?;
        let payload = built["payload"].as_str().unwrap_or_default().to_string();
        let marker = built["marker"].as_str().unwrap_or_default().to_string();
        let p = Arc::new((payload, marker));
        if let Ok(mut slot) = self.payload.lock() {
            *slot = Some(Arc::clone(&p));
        }
        Ok(p)
    }

    /// Runs the module on the host with `args`; its JSON result.
    async fn run(
        &self,
        tr: &mut AnyTransport,
        args: &Args,
        ctx: &ModuleCtx<'_>,
        check_mode: bool,
    ) -> Result<Args, ModuleError> {
        let packed = self.packed().await?;
        let (payload, marker) = (&packed.0, &packed.1);
        let mut module_args = args.clone();
        for (k, v) in internal_args(self.resolved.fqcn.as_str(), check_mode, ctx.no_log) {
            module_args.insert(k.to_string(), v);
        }
        let params = json!({ "ANSIBLE_MODULE_ARGS": module_args }).to_string();
        // A JSON string is also a Python string literal.
        let literal = serde_json::to_string(&params).unwrap_or_default();
        let text = payload.replacen(marker.as_str(), &format!("params={literal},"), 1);
        // `ansible_python_interpreter`, else the first Python found.
        let cmd = match ctx.python {
            Some(p) => Cmd::argv([p, "-"]),
            None => Cmd::raw(RUN_ON_HOST),
        };
        let out = ctx
            .run_input(tr, cmd, Payload::Bytes(text.as_bytes()))
            .await?;
        if out.status == 127
            && (ctx.python.is_some() || out.stderr_lossy().contains("rdeploy: no python3"))
        {
            return Err(ModuleError::Failed {
                msg: format!(
                    "module '{}' needs Python on the host; rdeploy has no native {}",
                    self.name, self.name
                ),
                result: Args::new(),
            });
        }
        let stdout = out.stdout_lossy();
        let Some(result) = parse_result(&stdout) else {
            let mut r = super::runtime::output_result(&out);
            r.insert("module_stdout".into(), Value::from(stdout.to_string()));
            return Err(ModuleError::Failed {
                msg: format!(
                    "MODULE FAILURE: {} gave no JSON result (exit {}): {}",
                    self.resolved.fqcn,
                    out.status,
                    out.stderr_lossy().trim()
                ),
                result: r,
            });
        };
        if result.get("failed") == Some(&Value::Bool(true)) {
            let msg = result
                .get("msg")
                .and_then(Value::as_str)
                .unwrap_or("the module failed")
                .to_string();
            return Err(ModuleError::Failed {
                msg,
                result: result.clone(),
            });
        }
        Ok(result)
    }
}

/// The `_ansible_*` arguments ansible-playbook gives every module (ActionBase).
fn internal_args(fqcn: &str, check_mode: bool, no_log: bool) -> Vec<(&'static str, Value)> {
    vec![
        ("_ansible_check_mode", Value::Bool(check_mode)),
        ("_ansible_no_log", Value::Bool(no_log)),
        ("_ansible_debug", Value::Bool(false)),
        ("_ansible_diff", Value::Bool(true)),
        ("_ansible_verbosity", Value::from(0)),
        ("_ansible_version", Value::from(ansible_core_version())),
        ("_ansible_module_name", Value::from(fqcn)),
        ("_ansible_syslog_facility", Value::from("LOG_USER")),
        (
            "_ansible_selinux_special_fs",
            json!(["fuse", "nfs", "vboxsf", "ramfs", "9p", "vfat"]),
        ),
        ("_ansible_socket", Value::Null),
        ("_ansible_shell_executable", Value::from("/bin/sh")),
        ("_ansible_keep_remote_files", Value::Bool(false)),
        ("_ansible_tmpdir", Value::Null),
        ("_ansible_remote_tmp", Value::from("~/.ansible/tmp")),
        ("_ansible_ignore_unknown_opts", Value::Bool(false)),
        ("_ansible_target_log_info", Value::Null),
        ("_ansible_tracebacks_for", json!([])),
    ]
}

/// ansible-core's version as the helper reported it.
fn ansible_core_version() -> String {
    state()
        .lock()
        .ok()
        .and_then(|s| match &s.helper {
            Some(Ok(h)) => Some(h.version.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "2.19.0".into())
}

/// The module's JSON result: the last line of its output that is a JSON object (a module may
/// print other text before it).
fn parse_result(stdout: &str) -> Option<Args> {
    if let Ok(Value::Object(m)) = serde_json::from_str(stdout.trim()) {
        return Some(m);
    }
    stdout
        .lines()
        .rev()
        .filter(|l| l.trim_start().starts_with('{'))
        .find_map(|l| match serde_json::from_str(l.trim()) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        })
}

/// Drops the keys rdeploy's result does not carry over (`invocation` holds the arguments,
/// secrets included).
fn cleaned(mut r: Args) -> Args {
    r.remove("invocation");
    r.remove("_ansible_no_log");
    r
}

/// A diff as the module reported it, as rdeploy's change.
fn changes_of(name: &str, r: &Args) -> Vec<Change> {
    let diffs: Vec<&Map<String, Value>> = match r.get("diff") {
        Some(Value::Object(d)) => vec![d],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_object).collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<Change> = diffs
        .into_iter()
        .filter_map(|d| {
            let text = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
            let after = text("after")?;
            Some(Change::Content {
                path: text("after_header")
                    .or_else(|| text("before_header"))
                    .unwrap_or_else(|| name.to_string()),
                before: text("before"),
                after,
            })
        })
        .collect();
    if out.is_empty() {
        out.push(Change::Run {
            command: format!("Ansible's module {name}"),
        });
    }
    out
}

impl Module for Bridged {
    fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the module in check mode: its prediction is the drift.
    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let r = cleaned(
                self.run(tr.for_ansible_check_mode(), args, ctx, true)
                    .await?,
            );
            let unsupported = r.get("skipped") == Some(&Value::Bool(true))
                && r.get("msg")
                    .and_then(Value::as_str)
                    .is_some_and(|m| m.contains("check mode"));
            if unsupported {
                let changes = changes_of(&self.resolved.fqcn, &r);
                return Ok(Verdict::Drift(Drift::new(
                    changes,
                    Plan {
                        supported: false,
                        result: r,
                    },
                )));
            }
            if r.get("changed") == Some(&Value::Bool(true)) {
                let changes = changes_of(&self.resolved.fqcn, &r);
                return Ok(Verdict::Drift(Drift::new(
                    changes,
                    Plan {
                        supported: true,
                        result: r,
                    },
                )));
            }
            Ok(Verdict::InSync { result: r })
        })
    }

    /// Runs the module for real; its result (with its own `changed`).
    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        _drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(async move { Ok(cleaned(self.run(tr, args, ctx, false).await?)) })
    }

    /// The file it names (`path`, `dest`), backed up before it runs; nothing else is known.
    fn resources(&self, args: &Args) -> Vec<Resource> {
        ["path", "dest"]
            .iter()
            .filter_map(|k| args.get(*k).and_then(Value::as_str))
            .filter(|p| p.starts_with('/'))
            .map(|p| Resource::Path(p.to_string()))
            .collect()
    }

    /// Its prediction comes from its own check mode, not from looking again afterwards.
    fn converges(&self, _args: &Args) -> bool {
        false
    }

    fn unpredicted(&self, _args: &Args, drift: &Drift) -> Unpredicted {
        match drift.plan::<Plan>() {
            Some(p) if p.supported => Unpredicted {
                skip: false,
                result: p.result.clone(),
            },
            _ => Unpredicted::skip(Some(&format!(
                "remote module ({}) does not support check mode",
                self.resolved.fqcn
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_modules_json_result_is_found_after_other_output() {
        let r = parse_result("warming up\n{\"changed\": true, \"x\": 1}\n").unwrap();
        assert_eq!(r["x"], json!(1));
        assert!(parse_result("Traceback (most recent call last):\n").is_none());
    }

    #[test]
    fn a_diff_becomes_a_content_change() {
        let r: Args = serde_json::from_value(json!({
            "diff": {"before": "a\n", "after": "b\n", "after_header": "/etc/x"}
        }))
        .unwrap();
        assert_eq!(
            changes_of("m", &r),
            vec![Change::Content {
                path: "/etc/x".into(),
                before: Some("a\n".into()),
                after: "b\n".into()
            }]
        );
        assert!(matches!(
            &changes_of("m", &Args::new())[0],
            Change::Run { .. }
        ));
    }
}
