//! Controller-side actions: the "modules" that never run on a host (`debug`, `assert`,
//! `fail`, `set_fact`, `include_vars`, `pause`, `meta`, `include_tasks`, `include_role`,
//! `setup`), and delegation targets.
//!
//! Owns their behaviour. They return a [`Step`] like host modules do, so the pipeline
//! around them (loops, `register`, `changed_when`, `ignore_errors`) is the same.

use std::path::Path;

use serde_json::{Map, Value as Json};

use std::sync::Arc;

use crate::exec::facts;
use crate::exec::host::{Connection, HostState};
use crate::exec::outcome::Status;
use crate::exec::task::{Step, TaskCtx};
use crate::exec::{Flow, IncludeKey};
use crate::modules::runtime::{Args, ArgsExt};
use crate::playbook::model::{IncludeSite, Included};
use crate::playbook::tasks::{FromFiles, load_dynamic};
use crate::template::{self, LazyVars};
use crate::transport::TransportError;
use crate::yaml;

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
        "pause" => pause(args).await,
        "meta" => {
            let what = args.str_arg("_raw_params").unwrap_or_default();
            let mut s = Step::new(Status::Ok, Map::new());
            s.flow = Flow::Meta(what.trim().to_string());
            s
        }
        "include_tasks" | "include_role" => include(ctx, module, args),
        "import_tasks" | "import_role" => {
            let mut s = Step::new(Status::Ok, Map::new());
            s.flow = Flow::Include;
            s
        }
        "add_host" => add_host(args),
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
        _ => return None,
    })
}

/// `add_host`, as Ansible's action: the new host's name (a `:port` becomes `ansible_port`),
/// its groups (a list, or a string split on `,`) and every other argument as a host variable.
/// The result carries them under `add_host`; the executor changes the inventory and decides
/// `changed`, as Ansible's strategy does.
fn add_host(args: &Args) -> Step {
    let mut args = args.clone();
    if let Some(Json::Object(raw)) = args.remove("_raw_params") {
        for (k, v) in raw {
            args.entry(k).or_insert(v);
        }
    }
    let Some(given) = ["name", "hostname", "host"]
        .iter()
        .find_map(|k| args.get(*k).filter(|v| !v.is_null()))
        .map(|v| match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        })
    else {
        return Step::failed("name, host or hostname needs to be provided");
    };
    let (name, port) = crate::inventory::address::parse_address(&given)
        .filter(|(n, _)| !n.contains('['))
        .unwrap_or((given.clone(), None));
    let groups: Vec<String> = match ["groupname", "groups", "group"]
        .iter()
        .find_map(|k| args.get(*k))
    {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::String(s)) => s.split(',').map(|g| g.trim().to_string()).collect(),
        Some(Json::Array(items)) => items
            .iter()
            .map(|g| match g {
                Json::String(s) => s.trim().to_string(),
                other => other.to_string(),
            })
            .collect(),
        Some(_) => return Step::failed("Groups must be specified as a list."),
    };
    let mut unique: Vec<String> = Vec::new();
    for g in groups.into_iter().filter(|g| !g.is_empty()) {
        if !unique.contains(&g) {
            unique.push(g);
        }
    }
    // As Ansible: `host` and `group` are not among the names it removes, so they stay as
    // variables too.
    let mut host_vars: Map<String, Json> = args
        .iter()
        .filter(|(k, _)| !["name", "hostname", "groupname", "groups"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(p) = port {
        // As Ansible; the executor also sets `ansible_port`, which rdeploy's connection reads.
        host_vars.insert("ansible_ssh_port".into(), Json::from(p));
    }
    let mut r = Map::new();
    r.insert("changed".into(), Json::Bool(false));
    r.insert(
        ADD_HOST.into(),
        serde_json::json!({ "host_name": name, "groups": unique, "host_vars": host_vars }),
    );
    Step::new(Status::Ok, r)
}

/// The result key of `add_host` (Ansible's).
pub const ADD_HOST: &str = "add_host";
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
    let name = if module == "include_role" {
        args.str_arg("name")
    } else {
        args.str_arg("_raw_params").or_else(|| args.str_arg("file"))
    }
    .unwrap_or_default();
    let mut r = Map::new();
    r.insert("include".into(), Json::from(name.clone()));
    let from = FromFiles {
        tasks_from: args.str_arg("tasks_from"),
        vars_from: args.str_arg("vars_from"),
        defaults_from: args.str_arg("defaults_from"),
        handlers_from: args.str_arg("handlers_from"),
        no_validate: matches!(args.bool_arg("rolespec_validate", true), Ok(false)),
    };
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
    let subset = args.list_arg("gather_subset", true);
    let groups = match facts::groups(&subset) {
        Ok(g) => g,
        Err(m) => return Step::failed(m),
    };
    let delegate = crate::exec::task::delegate_name(ctx, vars).filter(|d| *d != st.name);
    let how = match gathering(ctx, vars, args, delegate.as_deref()) {
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
    let mut f = match facts::gather(tr, &groups, &how).await {
        Ok(f) => f,
        Err(m) => return Step::failed(m),
    };
    let filter = args.list_arg("filter", false);
    if filter.iter().all(|p| p.is_empty() || p == "*") {
        let asked = if subset.is_empty() {
            vec![Json::from("all")]
        } else {
            subset.iter().map(|s| Json::from(s.as_str())).collect()
        };
        f.insert("gather_subset".into(), Json::Array(asked));
        f.insert("module_setup".into(), Json::Bool(true));
    }
    let f = match facts::filter(f, &filter) {
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
    r.insert("ansible_facts".into(), Json::Object(f));
    Step::new(Status::Ok, r)
}

/// How the gathering command runs: the task's `become` and `environment`, the host's
/// `ansible_python_interpreter` (the interpreter Ansible would report as `ansible_python`),
/// `gather_timeout`.
fn gathering(
    ctx: &TaskCtx,
    vars: &LazyVars,
    args: &Args,
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
        timeout: args
            .str_arg("gather_timeout")
            .and_then(|t| t.trim().parse::<u64>().ok()),
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

fn set_fact(st: &mut HostState, args: &Args) -> Step {
    let mut facts = Map::new();
    for (k, v) in args {
        if k == "cacheable" {
            continue;
        }
        st.set_runtime(k.clone(), v.clone());
        facts.insert(k.clone(), v.clone());
    }
    let mut r = Map::new();
    r.insert("ansible_facts".into(), Json::Object(facts));
    Step::new(Status::Ok, r)
}

/// `include_vars`: a file's variables (or those of every file `dir:` picks, later files
/// overriding earlier ones) become run-time data (not rendered again).
fn include_vars(ctx: &TaskCtx, st: &mut HostState, task_vars: &LazyVars, args: &Args) -> Step {
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
    let files = if let Some(dir) = args.str_arg("dir") {
        match vars_dir(args, &dir, role_dir, &task_dir) {
            Ok(f) => f,
            Err(m) => return Step::failed(m),
        }
    } else {
        let Some(file) = args.str_arg("file").or_else(|| args.str_arg("_raw_params")) else {
            return Step::failed("include_vars needs a file (free-form or 'file') or a 'dir'");
        };
        let mut path = Path::new(&file).to_path_buf();
        if path.is_relative() {
            let base = role_dir
                .map(|r| r.join("vars"))
                .filter(|d| d.join(&path).exists())
                .unwrap_or_else(|| task_dir.clone());
            path = base.join(&path);
        }
        vec![path]
    };
    let mut vars = Map::new();
    for path in &files {
        match vars_of_file(path) {
            Ok(m) => vars.extend(m),
            Err(m) => return Step::failed(m),
        }
    }
    let vars = match args.str_arg("name") {
        Some(name) => {
            let mut m = Map::new();
            m.insert(name, Json::Object(vars));
            m
        }
        None => vars,
    };
    // `hash_behaviour: merge`: each loaded dict is merged into what the task sees by that name.
    let vars = if args.str_arg("hash_behaviour").as_deref() == Some("merge") {
        vars.into_iter()
            .map(|(k, v)| {
                let existing = task_vars
                    .get(&k)
                    .and_then(Result::ok)
                    .and_then(|x| crate::template::value_to_json(&x).ok());
                let v = match (existing, v) {
                    (Some(Json::Object(mut lo)), Json::Object(hi)) => {
                        crate::template::filters::merge_maps(&mut lo, hi, true, "replace");
                        Json::Object(lo)
                    }
                    (_, v) => v,
                };
                (k, v)
            })
            .collect()
    } else {
        vars
    };
    for (k, v) in &vars {
        st.set_runtime(k.clone(), v.clone());
    }
    let mut r = Map::new();
    r.insert("ansible_facts".into(), Json::Object(vars));
    r.insert(
        "ansible_included_var_files".into(),
        Json::Array(
            files
                .iter()
                .map(|p| Json::from(p.display().to_string()))
                .collect(),
        ),
    );
    Step::new(Status::Ok, r)
}

/// The files `include_vars: dir:` loads, found as Ansible finds the directory: under the
/// role's `vars/` (or the role, for a name starting with `vars`), else beside the task's file.
fn vars_dir(
    args: &Args,
    dir: &str,
    role_dir: Option<&std::path::PathBuf>,
    task_dir: &Path,
) -> Result<Vec<std::path::PathBuf>, String> {
    let mut path = Path::new(dir).to_path_buf();
    if path.is_relative() {
        path = match role_dir {
            Some(r) if dir.split('/').next() == Some("vars") => r.join(dir),
            Some(r) => r.join("vars").join(dir),
            None => task_dir.join(dir),
        };
    }
    if !path.exists() {
        return Err(format!("{} directory does not exist", path.display()));
    }
    if !path.is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    let list = |k: &str| -> Vec<String> {
        match args.get(k) {
            Some(Json::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect(),
            Some(Json::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            _ => Vec::new(),
        }
    };
    let mut extensions = list("extensions");
    if args.get("extensions").is_none() {
        extensions = vec!["yaml".into(), "yml".into(), "json".into()];
    }
    let how = crate::playbook::load::VarsDir {
        depth: args
            .get("depth")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
            .unwrap_or(0) as usize,
        files_matching: args.str_arg("files_matching"),
        ignore_files: list("ignore_files"),
        extensions,
        ignore_unknown_extensions: args
            .bool_arg("ignore_unknown_extensions", false)
            .unwrap_or(false),
    };
    let skip = role_dir.map(|r| r.join("vars/main.yml"));
    crate::playbook::load::vars_dir_files(&path, &how, skip.as_deref())
}

/// A vars file's top-level mapping.
fn vars_of_file(path: &Path) -> Result<Map<String, Json>, String> {
    let docs = yaml::load_file(path, yaml::Limits::default()).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    match docs.into_iter().next().map(|n| n.to_json()) {
        Some(Json::Object(m)) => Ok(m),
        None | Some(Json::Null) => Ok(Map::new()),
        Some(_) => Err(format!(
            "{}: expected a mapping of variables",
            path.display()
        )),
    }
}

/// `pause`: waits `seconds`/`minutes`, its prompt shown as the step's message.
async fn pause(args: &Args) -> Step {
    let p = match crate::modules::control::pause::plan(args) {
        Ok(p) => p,
        Err(e) => return Step::failed(e.to_string()),
    };
    let start = chrono::Local::now();
    let began = std::time::Instant::now();
    tokio::time::sleep(p.wait).await;
    let stop = chrono::Local::now();
    let r = p.result(
        start.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        stop.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        began.elapsed().as_secs_f64(),
    );
    let mut s = Step::new(Status::Ok, r);
    // Shown with the result (as its `msg`, not registered).
    s.show = p.prompt.is_some();
    s.msg = p.prompt;
    s
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
