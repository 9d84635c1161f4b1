//! Controller-side actions: running the "modules" that never run on a host (`debug`, `assert`,
//! `fail`, `set_fact`, `include_vars`, `pause`, `meta`, `include_tasks`, `include_role`,
//! `setup`...), and delegation targets.
//!
//! Each module's arguments and what it computes are its own, in `modules::control`; this file
//! owns the plumbing around them: what it hands in (evaluators, directories, connections), the
//! host state it changes (variables, facts, loaded includes) and the [`Step`] it returns like
//! host modules do, so the pipeline around them (loops, `register`, `changed_when`,
//! `ignore_errors`) is the same.

use serde_json::{Map, Value as Json};

use std::sync::Arc;

use crate::exec::facts;
use crate::exec::host::{Connection, HostState};
use crate::exec::outcome::Status;
use crate::exec::task::{Step, TaskCtx};
use crate::exec::{Flow, IncludeKey};
use crate::modules::runtime::Args;
use crate::playbook::model::{IncludeSite, Included};
use crate::playbook::tasks::load_dynamic;
use crate::template::{self, LazyVars};
use crate::transport::TransportError;

/// Whether `module` is a controller action that ansible-playbook does not run under
/// `--check` (it reports it `skipping`): its effect cannot be predicted (`uri` may POST).
pub fn without_check_mode(module: &str) -> bool {
    module == "uri"
}

/// Runs `module` if it is a controller action; `None` for host modules.
pub async fn controller(
    ctx: &TaskCtx,
    st: &mut HostState,
    vars: &LazyVars,
    module: &str,
    args: &Args,
) -> Option<Step> {
    Some(match module {
        "debug" => debug(ctx, vars, args),
        "assert" => assert(ctx, vars, args),
        "fail" => Step::failed(
            crate::modules::control::fail::message(args).unwrap_or_else(|e| e.to_string()),
        ),
        "set_fact" => set_fact(st, args),
        "include_vars" => include_vars(ctx, st, vars, args),
        "pause" => pause(ctx, args).await,
        "meta" => match crate::modules::control::meta::action(args) {
            Ok(what) => {
                let mut s = Step::new(Status::Ok, Map::new());
                s.flow = Flow::Meta(what);
                s
            }
            Err(e) => Step::failed(e.to_string()),
        },
        "include_tasks" | "include_role" => include(ctx, module, args),
        "import_tasks" | "import_role" => {
            let mut s = Step::new(Status::Ok, Map::new());
            s.flow = Flow::Include;
            s
        }
        "add_host" => match crate::modules::control::add_host::result(args) {
            Ok(r) => Step::new(Status::Ok, r),
            Err(e) => Step::failed(e.to_string()),
        },
        "group_by" => match crate::modules::control::group_by::result(args) {
            Ok(r) => Step::new(Status::Ok, r),
            Err(e) => Step::failed(e.to_string()),
        },
        "uri" => {
            let a = crate::modules::control::uri::request(args).await;
            let status = if a.failed.is_some() {
                Status::Failed
            } else {
                Status::Ok
            };
            let mut s = Step::new(status, a.result);
            s.msg = a.failed;
            s
        }
        "setup" | "gather_facts" => setup(ctx, st, vars, args).await,
        "validate_argument_spec" => validate_argument_spec(vars, args),
        "wait_for_connection" => wait_for_connection(ctx, st, vars, args).await,
        _ => return None,
    })
}

/// The result key of `add_host` (Ansible's).
pub const ADD_HOST: &str = crate::modules::control::add_host::ADD_HOST;
/// The result key of `group_by` (Ansible's).
pub const ADD_GROUP: &str = crate::modules::control::group_by::ADD_GROUP;

/// `include_tasks`/`include_role` reached for one host (one item of a loop): a conditional
/// include's deferred mistakes fail the host here; a dynamic one's name (rendered for this
/// host) is found, loaded and checked (once per name, shared by the hosts), and a mistake in
/// it fails this host only. The result names what was included (`include`, as Ansible's).
fn include(ctx: &TaskCtx, module: &str, args: &Args) -> Step {
    let task = &ctx.task;
    if !task.deferred.is_empty() {
        let msgs: Vec<String> = task.deferred.iter().map(|d| d.to_string()).collect();
        return Step::failed(msgs.join("\n"));
    }
    let req = match crate::modules::control::include::request(module, args) {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Step::failed(e.to_string()),
        None => return Step::failed(format!("'{module}' is not an include")),
    };
    let name = req.target;
    let from = req.from;
    let mut r = Map::new();
    r.insert("include".into(), Json::from(name.clone()));
    if module == "include_role" {
        let mut a = Map::new();
        for (k, v) in [
            ("tasks_from", &from.tasks_from),
            ("vars_from", &from.vars_from),
            ("defaults_from", &from.defaults_from),
            ("handlers_from", &from.handlers_from),
        ] {
            if let Some(v) = v {
                a.insert(k.into(), Json::from(v.clone()));
            }
        }
        if from.no_validate {
            a.insert("rolespec_validate".into(), Json::Bool(false));
        }
        r.insert("include_args".into(), Json::Object(a));
    }
    if let Some(Included::Dynamic(site)) = &task.included {
        let key = (
            task.loc.clone(),
            module.to_string(),
            name.clone(),
            from.clone(),
        );
        if let Err(msg) = load_include(ctx, site, key) {
            let mut s = Step::failed(msg);
            s.result.extend(r);
            return s;
        }
    }
    let mut s = Step::new(Status::Ok, r);
    s.flow = Flow::Include;
    s
}

/// Loads (once) what a dynamic include named for a host.
fn load_include(ctx: &TaskCtx, site: &IncludeSite, key: IncludeKey) -> Result<(), String> {
    let cache = &ctx.shared.includes;
    if let Some(done) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return done.map(|_| ());
    }
    let (loc, module, name, from) = &key;
    let loaded = load_dynamic(site, module, name, from, loc)
        .map(Arc::new)
        .map_err(|ds| ds.to_string());
    let out = loaded.as_ref().map(|_| ()).map_err(Clone::clone);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, loaded);
    }
    out
}

/// `setup`/`gather_facts`: gathers the asked groups on the host (or on `delegate_to`), keeps
/// what `filter` matches and stores it on the host, or on the delegate with
/// `delegate_facts: true` (the executor stores those, see [`facts::DELEGATED`]).
async fn setup(ctx: &TaskCtx, st: &mut HostState, vars: &LazyVars, args: &Args) -> Step {
    let plan = match crate::modules::control::setup::plan(args) {
        Ok(p) => p,
        Err(e) => return Step::failed(e.to_string()),
    };
    let delegate = crate::exec::task::delegate_name(ctx, vars).filter(|d| *d != st.name);
    let how = match gathering(ctx, vars, plan.timeout, delegate.as_deref()) {
        Ok(h) => h,
        Err(m) => return Step::failed(m),
    };
    let opts = &ctx.shared.opts;
    let opened = match delegate.as_deref() {
        Some(d) => match delegate_target(ctx, d) {
            Ok((conn, dvars)) => {
                st.delegate(d, &conn, opts, &|k: &str| dvars.get(k).cloned())
                    .await
            }
            Err(e) => Err(e),
        },
        None => match crate::exec::task::connection_of(ctx, vars, &st.connection) {
            Err(m) => return Step::failed(m),
            Ok(conn) => {
                st.transport_via(&conn, opts, &|k: &str| {
                    vars.get_json(k).and_then(Result::ok)
                })
                .await
            }
        },
    };
    let tr = match opened {
        Ok(tr) => tr,
        Err(e) => return crate::exec::task::unreachable(e),
    };
    let f = match facts::gather(tr, &plan.groups, &how).await {
        Ok(f) => f,
        Err(m) => return Step::failed(m),
    };
    let f = match plan.kept(f) {
        Ok(f) => f,
        Err(m) => return Step::failed(m),
    };
    let to_delegate = delegate.filter(|_| {
        matches!(
            ctx.task.keywords.delegate_facts.as_ref().or(ctx
                .scope
                .keywords
                .delegate_facts
                .as_ref()),
            Some(crate::playbook::model::Val::Lit { value: true, .. })
        )
    });
    let mut r = Map::new();
    match to_delegate {
        Some(d) => {
            r.insert(facts::DELEGATED.into(), Json::from(d));
        }
        None => facts::store(st, &f),
    }
    r.insert("ansible_facts".into(), Json::Object(facts::as_returned(f)));
    Step::new(Status::Ok, r)
}

/// How the gathering command runs: the task's `become` and `environment`, the host's
/// `ansible_python_interpreter` (the interpreter Ansible would report as `ansible_python`),
/// `gather_timeout`.
fn gathering(
    ctx: &TaskCtx,
    vars: &LazyVars,
    timeout: Option<u64>,
    delegate: Option<&str>,
) -> Result<facts::How, String> {
    use crate::exec::task::{become_of, effective_keywords, environment_of};
    let kw = effective_keywords(ctx);
    let python = match delegate {
        Some(d) => delegate_target(ctx, d)
            .ok()
            .and_then(|(_, v)| v.get("ansible_python_interpreter").cloned()),
        None => vars
            .get_json("ansible_python_interpreter")
            .and_then(Result::ok),
    };
    Ok(facts::How {
        become_: become_of(ctx, &kw, vars)?,
        environment: environment_of(ctx, &kw, vars)?,
        python: python.and_then(|p| p.as_str().map(str::to_string)),
        timeout,
    })
}

fn debug(ctx: &TaskCtx, vars: &LazyVars, args: &Args) -> Step {
    use crate::modules::control::debug::{self, Report};
    let eval = |var: &str| {
        let v = template::eval_expr(
            &ctx.shared.env,
            var,
            &vars.to_value(),
            &ctx.task.action.module_loc,
        )
        .ok()?;
        Some(template::value_to_json(&v).unwrap_or(Json::Null))
    };
    match debug::run(args, ctx.shared.opts.verbosity, eval) {
        Ok(Report::Skipped(why)) => {
            let mut r = Map::new();
            r.insert("skipped".into(), Json::Bool(true));
            r.insert("skipped_reason".into(), Json::from(why));
            let mut s = Step::new(Status::Skipped, r);
            s.msg = Some(why.into());
            s
        }
        Ok(Report::Shown(r)) => {
            let mut s = Step::new(Status::Ok, r);
            s.show = true;
            s
        }
        Err(e) => Step::failed(e.to_string()),
    }
}

fn assert(ctx: &TaskCtx, vars: &LazyVars, args: &Args) -> Step {
    use crate::modules::control::assert::{Verdict, judge};
    let v = vars.to_value();
    let eval = |cond: &str| {
        template::eval_bool(&ctx.shared.env, cond, &v, &ctx.task.action.module_loc)
            .map_err(|d| d.message)
    };
    match judge(args, &eval) {
        Ok(Verdict::Passed(r, show)) => {
            let mut s = Step::new(Status::Ok, r);
            s.show = show;
            s
        }
        Ok(Verdict::Failed(msg, r)) => {
            let mut s = Step::new(Status::Failed, r);
            s.msg = Some(msg);
            s
        }
        Err(e) => Step::failed(e.to_string()),
    }
}

/// `validate_argument_spec`: the spec's options found in the task variables (rendered) and
/// `provided_arguments`, checked with Ansible's validator.
fn validate_argument_spec(vars: &LazyVars, args: &Args) -> Step {
    use crate::modules::control::validate_argument_spec::run;
    let var = |name: &str| {
        vars.get_json(name)
            .map(|r| r.map_err(|e| format!("'{name}': {e}")))
    };
    match run(args, &var) {
        Ok(out) => {
            let failed = out.failed.is_some();
            let mut s = Step::new(if failed { Status::Failed } else { Status::Ok }, out.result);
            s.msg = out.failed;
            s
        }
        Err(e) => Step::failed(e.to_string()),
    }
}

/// `set_fact`: the variables become the host's (and, `cacheable`, its facts too).
fn set_fact(st: &mut HostState, args: &Args) -> Step {
    let set = match crate::modules::control::set_fact::facts(args) {
        Ok(f) => f,
        Err(e) => return Step::failed(e.to_string()),
    };
    for (k, v) in &set.facts {
        st.set_runtime(k.clone(), v.clone());
    }
    if set.cacheable {
        facts::store_module_facts(st, &set.facts);
    }
    let mut r = Map::new();
    r.insert("ansible_facts".into(), Json::Object(set.facts));
    Step::new(Status::Ok, r)
}

/// `include_vars`: the variables of the files it names (found from the task's role and file)
/// become run-time data (not rendered again).
fn include_vars(ctx: &TaskCtx, st: &mut HostState, vars: &LazyVars, args: &Args) -> Step {
    use crate::modules::control::include_vars::{Origin, load};
    let role_dir = ctx
        .task
        .role
        .as_ref()
        .and_then(|r| ctx.shared.role_paths.get(r));
    let task_dir: std::path::PathBuf = ctx
        .task
        .loc
        .file
        .as_ref()
        .rsplit_once('/')
        .map(|(d, _)| d.into())
        .unwrap_or_else(|| ".".into());
    let at = Origin {
        role_dir: role_dir.map(|p| p.as_path()),
        task_dir: &task_dir,
    };
    let current = |k: &str| {
        vars.get(k)
            .and_then(Result::ok)
            .and_then(|x| template::value_to_json(&x).ok())
    };
    let r = match load(args, &at, &current) {
        Ok(r) => r,
        Err(e) => return Step::failed(e.to_string()),
    };
    if let Some(Json::Object(loaded)) = r.get("ansible_facts") {
        for (k, v) in loaded {
            st.set_runtime(k.clone(), v.clone());
        }
    }
    Step::new(Status::Ok, r)
}

/// `pause`: waits `seconds`/`minutes`, its prompt shown as the step's message; without a time,
/// asks on the terminal and waits for Enter (or Ctrl-C, which stops the run), or warns and goes
/// on when there is no terminal, as Ansible's pause. The executor runs it once per batch.
async fn pause(ctx: &TaskCtx, args: &Args) -> Step {
    let p = match crate::modules::control::pause::plan(args) {
        Ok(p) => p,
        Err(e) => return Step::failed(e.to_string()),
    };
    let start = chrono::Local::now();
    let began = std::time::Instant::now();
    let mut user_input = String::new();
    let mut warning = None;
    let stop = ctx.shared.stop.clone();
    let stopping = move || stop.load(std::sync::atomic::Ordering::SeqCst) != 0;
    const STOPPED: &str = "pause interrupted: the run is stopping";
    match p.wait {
        // Ctrl-C (or the deadline) ends a timed pause at once: nothing is in flight on a host.
        Some(wait) => {
            if until_stopped(tokio::time::sleep(wait), &stopping)
                .await
                .is_none()
            {
                return Step::failed(STOPPED);
            }
        }
        None => match crate::cli::prompt::Terminal::open() {
            None => warning = Some(crate::modules::control::pause::NOT_INTERACTIVE),
            Some(mut term) => {
                let question = p.question(&ctx.label);
                let echo = p.echo;
                let _lifted = crate::report::progress::lifted();
                // A thread of its own, not `spawn_blocking`: a run stopped by a signal while the
                // operator has not answered must not wait for the read to end before exiting.
                let (tx, rx) = tokio::sync::oneshot::channel();
                std::thread::spawn(move || {
                    use crate::resolve::Asker;
                    term.say("");
                    let _ = tx.send(term.ask(&question, echo));
                });
                match until_stopped(rx, &stopping).await {
                    None => return Step::failed(STOPPED),
                    Some(Ok(Ok(line))) => user_input = line,
                    Some(Ok(Err(e))) => {
                        // Ctrl-C interrupts the read before the signal's watcher marks the
                        // run as stopping: give it that moment.
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        if stopping() {
                            return Step::failed(STOPPED);
                        }
                        return Step::failed(format!("pause: could not read the terminal: {e}"));
                    }
                    Some(Err(_)) => {
                        return Step::failed("pause: the terminal reader ended without a reply");
                    }
                }
            }
        },
    }
    let stop = chrono::Local::now();
    let mut r = p.result(
        start.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        stop.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        began.elapsed().as_secs_f64(),
        user_input,
    );
    if let Some(w) = warning {
        r.insert("warnings".into(), Json::from(vec![w]));
    }
    let mut s = Step::new(Status::Ok, r);
    // Shown with the result (as its `msg`, not registered).
    s.show = p.prompt.is_some() && p.wait.is_some();
    s.msg = p.prompt.filter(|_| p.wait.is_some());
    s
}

/// Waits for `fut`, or returns `None` as soon as `stopping()` (a signal or the deadline asked
/// the run to stop).
/// `wait_for_connection`: after `delay`, drops the host's connection and opens a new one
/// until one opens (each attempt bounded by `connect_timeout`, `sleep` apart) or `timeout`
/// has passed. Ctrl-C (or the deadline) ends the wait at once.
async fn wait_for_connection(
    ctx: &TaskCtx,
    st: &mut HostState,
    vars: &LazyVars,
    args: &Args,
) -> Step {
    use crate::modules::control::wait_for_connection as w;
    let plan = match w::plan(args) {
        Ok(p) => p,
        Err(e) => return Step::failed(e.to_string()),
    };
    let conn = match crate::exec::task::connection_of(ctx, vars, &st.connection) {
        Ok(c) => c,
        Err(m) => return Step::failed(m),
    };
    let opts = &ctx.shared.opts;
    let stop = ctx.shared.stop.clone();
    let stopping = move || stop.load(std::sync::atomic::Ordering::SeqCst) != 0;
    const STOPPED: &str = "wait_for_connection interrupted: the run is stopping";
    let began = std::time::Instant::now();
    if until_stopped(tokio::time::sleep(plan.delay), &stopping)
        .await
        .is_none()
    {
        return Step::failed(STOPPED);
    }
    let deadline = std::time::Instant::now() + plan.timeout;
    let var = |k: &str| vars.get_json(k).and_then(Result::ok);
    loop {
        // A fresh connection each time, as Ansible resets it: the old one may be to the host
        // as it was before a reboot.
        st.reset_connection(&conn).await;
        let attempt =
            tokio::time::timeout(plan.connect_timeout, st.transport_via(&conn, opts, &var));
        let last = match until_stopped(attempt, &stopping).await {
            None => return Step::failed(STOPPED),
            Some(Ok(Ok(_))) => return Step::new(Status::Ok, w::result(began.elapsed())),
            Some(Ok(Err(e))) => e.to_string(),
            Some(Err(_)) => format!(
                "no connection within connect_timeout ({} s)",
                plan.connect_timeout.as_secs()
            ),
        };
        // As Ansible: sleep after each failed attempt, then try again while time is left.
        if until_stopped(tokio::time::sleep(plan.sleep), &stopping)
            .await
            .is_none()
        {
            return Step::failed(STOPPED);
        }
        if std::time::Instant::now() >= deadline {
            let mut s = Step::new(Status::Failed, w::result(began.elapsed()));
            s.msg = Some(w::timed_out(&last));
            return s;
        }
    }
}

async fn until_stopped<T>(
    fut: impl std::future::Future<Output = T>,
    stopping: &impl Fn() -> bool,
) -> Option<T> {
    tokio::pin!(fut);
    loop {
        if stopping() {
            return None;
        }
        tokio::select! {
            r = &mut fut => return Some(r),
            () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
        }
    }
}

/// How to reach `delegate_to: NAME`: its inventory variables and connection; localhost
/// (implicit or `ansible_connection: local`) runs on the controller.
pub fn delegate_target(
    ctx: &TaskCtx,
    name: &str,
) -> Result<(Connection, serde_json::Map<String, Json>), TransportError> {
    let inv = ctx.shared.inventory();
    match inv.hosts.get(name) {
        Some(h) => {
            let vars = inv.vars_of(h);
            let conn = Connection::from_vars(&vars).map_err(TransportError::Unreachable)?;
            Ok((conn, vars))
        }
        None if crate::inventory::LOCALHOST_NAMES.contains(&name) => {
            Ok((Connection::Local, serde_json::Map::new()))
        }
        None => Err(TransportError::Unreachable(format!(
            "delegate_to: host '{name}' is not in the inventory"
        ))),
    }
}
