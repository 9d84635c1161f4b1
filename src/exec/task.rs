//! The per-host task pipeline: render → `when` → check → [check mode stops] → apply → verify
//! → record, with loops, `until` retries, `changed_when`/`failed_when`, `register`,
//! `ignore_errors` and `notify` around it.
//!
//! Owns what one task does on one host. Each step is a small function. It must not print
//! (it returns a [`HostOutcome`]) and must not see other hosts' state.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use minijinja::Value;
use serde_json::{Map, Value as Json};

use crate::exec::actions;
use crate::exec::backups::StepBackup;
use crate::exec::host::HostState;
use crate::exec::outcome::{HostOutcome, ItemOutcome, Status};
use crate::exec::{Flow, Scope, Shared};
use crate::modules::runtime::{Ahead, Args, Change, HostView, ModuleCtx, ModuleError, Verdict};
use crate::playbook::model::{Keywords, LoopKind, Task, Val, loop_vars};
use crate::template::{self, LazyVars, VarValue};
use crate::transport::{AnyTransport, Become, LocalTransport, Reach, ReadSet, TransportError};
use crate::vars::Tier;
use crate::yaml::{Kind, Node};

/// Everything one task needs on every host, shared by the hosts' futures.
pub struct TaskCtx {
    /// Run-wide data.
    pub shared: Arc<Shared>,
    /// The task.
    pub task: Task,
    /// Block/role/include scope around it.
    pub scope: Scope,
    /// `hostvars` as of the start of this task.
    pub hostvars: Value,
    /// The label shown for the task.
    pub label: String,
    /// The tasks that follow it whose checks may run ahead (empty for handlers).
    pub ahead: Vec<AheadTask>,
}

/// What one attempt of a task's action produced.
pub struct Step {
    /// Ok, changed, skipped, failed or unreachable.
    pub status: Status,
    /// Result keys for `register:`.
    pub result: Map<String, Json>,
    /// What changed (for `--diff`).
    pub changes: Vec<Change>,
    /// Failure or skip reason.
    pub msg: Option<String>,
    /// What the walker must do next (includes, meta).
    pub flow: Flow,
    /// Always show the result (debug).
    pub show: bool,
    /// A check-mode prediction (the action did not run): `failed_when` and templated
    /// `changed_when` cannot be judged and are left alone.
    pub predicted: bool,
    /// Why the host could not be used, when the status is `Unreachable`.
    pub reach: Option<Reach>,
}

impl Step {
    /// A finished step.
    pub fn new(status: Status, result: Map<String, Json>) -> Step {
        Step {
            status,
            result,
            changes: Vec::new(),
            msg: None,
            flow: Flow::Continue,
            show: false,
            predicted: false,
            reach: None,
        }
    }

    /// A failure with a message.
    pub fn failed(msg: impl Into<String>) -> Step {
        let msg = msg.into();
        let mut result = Map::new();
        result.insert("msg".into(), Json::from(msg.clone()));
        let mut s = Step::new(Status::Failed, result);
        s.msg = Some(msg);
        s
    }
}

/// Runs one task on one host. The host's state goes in and comes back.
pub async fn run_on_host(ctx: Arc<TaskCtx>, mut st: HostState) -> (HostState, HostOutcome, Flow) {
    let started = Instant::now();
    let before = st.commands_run();
    let kw = effective_keywords(&ctx);
    let vars = task_vars(&ctx, &mut st);
    // `no_log`, `ignore_errors` and `diff` as templates: a value that is not a boolean fails
    // the task naming the keyword, as in Ansible (a failed `no_log` still hides the output).
    let no_log = strict_bool_kw("no_log", &kw.no_log, &vars, &ctx);
    let ignore = strict_bool_kw("ignore_errors", &kw.ignore_errors, &vars, &ctx);
    let diff_on = strict_bool_kw("diff", &kw.diff, &vars, &ctx);
    let flags = [&no_log, &ignore, &diff_on]
        .into_iter()
        .find_map(|r| r.as_ref().err().cloned())
        .map_or(Ok(()), Err);
    let no_log = no_log.map_or(true, |b| b.unwrap_or(false));
    let ignore = ignore.is_ok_and(|b| b.unwrap_or(false));
    let diff_on = diff_on.is_ok_and(|b| b.unwrap_or(true));
    // Conditions of enclosing blocks, imports and role entries come first, once for the
    // task (a loop over something only they guard is never evaluated).
    let (step, items) = if let Some(s) = scope_when_fails(&ctx, &vars) {
        (s, Vec::new())
    } else if let Err(m) = flags {
        // Ansible reads these after `when:`: a task it skips does not fail for them.
        match when_true(&ctx, &ctx.task.keywords.when, &vars) {
            Ok(false) if ctx.task.loop_over.is_none() => (skipped(), Vec::new()),
            _ => (Step::failed(m), Vec::new()),
        }
    } else if ctx.task.loop_over.is_some() {
        run_loop(&ctx, &kw, &mut st, &vars).await
    } else {
        match when_true(&ctx, &ctx.task.keywords.when, &vars) {
            Ok(true) => (attempts(&ctx, &kw, &mut st, &vars).await, Vec::new()),
            Ok(false) => (skipped(), Vec::new()),
            Err(msg) => (Step::failed(msg), Vec::new()),
        }
    };
    let ignored = step.status == Status::Failed && ignore;
    record(&ctx, &mut st, &step, &vars);
    match step.status {
        Status::Failed if !ignored => {
            st.failed = true;
            st.last_failure = Some(failure_record(&ctx.task, &step));
        }
        Status::Unreachable => st.unreachable = true,
        _ => {}
    }
    let outcome = HostOutcome {
        host: st.name.clone(),
        status: step.status,
        ignored,
        msg: step.msg.clone(),
        result: step.result.clone(),
        changes: if no_log || !diff_on {
            Vec::new()
        } else {
            step.changes.clone()
        },
        items,
        no_log,
        delegated_to: delegate_name(&ctx, &vars),
        duration: started.elapsed(),
        commands: st.commands_run().saturating_sub(before),
        show: step.show,
        reach: step.reach,
    };
    // As Ansible: a `meta:` that ran is not a task result of the recap, and a looping
    // include counts once per item it included (its skipped items are not counted).
    let module = ctx.task.action.module.as_str();
    if matches!(module, "include_tasks" | "include_role")
        && outcome.status == Status::Ok
        && !outcome.items.is_empty()
    {
        let included = outcome
            .items
            .iter()
            .filter(|i| i.status != Status::Skipped)
            .count();
        st.recap.ok += u32::try_from(included.max(1)).unwrap_or(u32::MAX);
    } else if !(module == "meta" && outcome.status == Status::Ok) {
        st.recap.count(&outcome);
    }
    (st, outcome, step.flow)
}

/// The task's keywords with the scope's (block, role, play) filled in where the task is silent.
pub(crate) fn effective_keywords(ctx: &TaskCtx) -> Keywords {
    let mut k = ctx.task.keywords.clone();
    let mut parent = ctx.scope.keywords.clone();
    parent.when.clear();
    parent.vars.clear();
    parent.tags.clear();
    k.inherit(&parent);
    k
}

/// The variables this task sees on this host.
fn task_vars(ctx: &TaskCtx, st: &mut HostState) -> LazyVars {
    vars_at(
        &ctx.shared,
        &ctx.scope,
        &ctx.hostvars,
        st,
        &ctx.task.keywords.vars,
    )
    .with_values([("ansible_search_path".to_string(), search_path(ctx))])
}

/// `ansible_search_path`, as Ansible's `get_search_path`: the role's folder, the folder of the
/// task's file, then the playbook's folder, each once.
fn search_path(ctx: &TaskCtx) -> Value {
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: &Path| {
        let p = if p.is_relative() {
            std::env::current_dir().map_or_else(|_| p.to_path_buf(), |d| d.join(p))
        } else {
            p.to_path_buf()
        };
        let s = p.display().to_string();
        if !out.contains(&s) {
            out.push(s);
        }
    };
    if let Some(r) = &ctx.scope.role {
        add(&r.path);
    }
    if let Some(dir) = Path::new(ctx.task.loc.file.as_ref()).parent() {
        add(dir);
    }
    add(&ctx.shared.playbook_dir);
    Value::from(out)
}

/// The variables at a point of the play on this host: its layers, then role-scoped and
/// block/import vars from `scope`, then `extra_vars` of the task itself, then `hostvars`,
/// `role_path` and enclosing include loop variables.
pub fn vars_at(
    shared: &Shared,
    scope: &Scope,
    hostvars: &Value,
    st: &mut HostState,
    own_vars: &[(String, Node)],
) -> LazyVars {
    let base = st.layers();
    let needs_copy = !scope.vars.is_empty() || !scope.role_vars.is_empty() || !own_vars.is_empty();
    let layers = if needs_copy {
        let mut layers: Vec<template::Layer> = (*base).clone();
        layers.resize_with(Tier::ALL.len().max(layers.len()), template::Layer::new);
        for (tier, k, v) in &scope.role_vars {
            layers[*tier as usize].insert(k.clone(), VarValue::Template(v.clone()));
        }
        let task_tier = &mut layers[Tier::Task as usize];
        for (k, v) in &scope.vars {
            task_tier.insert(k.clone(), VarValue::Template(v.clone()));
        }
        for (k, n) in own_vars {
            task_tier.insert(k.clone(), VarValue::of_node(n));
        }
        Arc::new(layers)
    } else {
        base
    };
    let mut extra: Vec<(String, Value)> = vec![("hostvars".into(), hostvars.clone())];
    extra.extend(st.magic.iter().cloned());
    if let Some(r) = &scope.role {
        extra.push((
            "role_path".into(),
            Value::from(r.path.display().to_string()),
        ));
        extra.push(("role_name".into(), Value::from(r.name.clone())));
        extra.push(("ansible_role_name".into(), Value::from(r.name.clone())));
    }
    for frame in &st.scoped {
        for (k, v) in frame {
            extra.push((k.clone(), template::json_to_value(v)));
        }
    }
    LazyVars::from_shared(layers, Arc::clone(&shared.env)).with_values(extra)
}

/// A node as variable data.
fn skipped() -> Step {
    let mut r = Map::new();
    r.insert("skipped".into(), Json::Bool(true));
    r.insert(
        "skip_reason".into(),
        Json::from("Conditional result was False"),
    );
    r.insert("changed".into(), Json::Bool(false));
    let mut s = Step::new(Status::Skipped, r);
    s.msg = Some("Conditional result was False".into());
    s
}

/// A skipped (or failed) step when the conditions inherited from enclosing blocks, imports
/// and role entries do not all hold; `None` when they do.
fn scope_when_fails(ctx: &TaskCtx, vars: &LazyVars) -> Option<Step> {
    match when_true(ctx, &ctx.scope.when, vars) {
        Ok(true) => None,
        Ok(false) => Some(skipped()),
        Err(msg) => Some(Step::failed(msg)),
    }
}

/// All `when:` conditions (ANDed).
fn when_true(ctx: &TaskCtx, when: &[Node], vars: &LazyVars) -> Result<bool, String> {
    when_holds(&ctx.shared.env, when, vars)
}

/// All `when:` conditions (ANDed) with these variables.
pub fn when_holds(
    env: &minijinja::Environment<'static>,
    when: &[Node],
    vars: &LazyVars,
) -> Result<bool, String> {
    let v = vars.to_value();
    for w in when {
        match &w.kind {
            Kind::Bool(b) => {
                if !b {
                    return Ok(false);
                }
            }
            Kind::Str { value, .. } => {
                let ok = template::eval_bool(env, value, &v, &w.loc).map_err(|d| d.to_string())?;
                if !ok {
                    return Ok(false);
                }
            }
            Kind::Null => {}
            _ => return Err(format!("{}: when: expects a condition", w.loc)),
        }
    }
    Ok(true)
}

pub(crate) fn delegate_name(ctx: &TaskCtx, vars: &LazyVars) -> Option<String> {
    let n = ctx
        .task
        .keywords
        .delegate_to
        .as_ref()
        .or(ctx.scope.keywords.delegate_to.as_ref())?;
    render_string(ctx, n, vars).ok()
}

fn render_string(ctx: &TaskCtx, n: &Node, vars: &LazyVars) -> Result<String, String> {
    match &n.kind {
        Kind::Str { value, .. } if n.tag.as_deref() != Some("unsafe") => {
            template::render_str(&ctx.shared.env, value, &vars.to_value(), &n.loc)
                .map_err(|d| d.to_string())
        }
        _ => Ok(n.scalar_string().unwrap_or_default()),
    }
}

/// The items a task's loop runs over: `loop`/`with_list` as rendered, `with_items` flattened
/// one level, `with_NAME` as `query(NAME, *terms)` with Ansible's item shapes.
fn loop_items(
    ctx: &TaskCtx,
    lp: &crate::playbook::model::Loop,
    vars: &LazyVars,
) -> Result<Vec<Json>, String> {
    let rendered = render_node(ctx, &lp.items, vars)?;
    if let LoopKind::Lookup(plugin) = lp.kind {
        return lookup_loop(ctx, plugin, rendered, vars);
    }
    let items = match rendered {
        Json::Array(a) => a,
        Json::Null => Vec::new(),
        Json::String(s) if lp.kind == LoopKind::WithItems => vec![Json::String(s)],
        other => return Err(format!("loop expects a list, got {}", json_type(&other))),
    };
    Ok(if lp.kind == LoopKind::WithItems {
        items
            .into_iter()
            .flat_map(|i| match i {
                Json::Array(inner) => inner,
                other => vec![other],
            })
            .collect()
    } else {
        items
    })
}

/// `with_NAME: terms`: the terms (a list, or one value made a list, as Ansible does) handed
/// to the lookup plugin. `with_first_found` searches the directory Ansible picks from the
/// task's action (`templates/` for template, `vars/` for include_vars, else `files/`).
fn lookup_loop(
    ctx: &TaskCtx,
    plugin: &str,
    terms: Json,
    vars: &LazyVars,
) -> Result<Vec<Json>, String> {
    let terms: Vec<minijinja::Value> = match terms {
        Json::Array(a) => a.iter().map(template::json_to_value).collect(),
        other => vec![template::json_to_value(&other)],
    };
    let action = ctx.task.action.module.as_str();
    let subdir = ["template", "var", "file"]
        .into_iter()
        .find(|s| action.contains(s))
        .map_or("files", |s| match s {
            "template" => "templates",
            "var" => "vars",
            _ => "files",
        });
    let var = |n: &str| match vars.get(n) {
        Some(Ok(v)) => Some(v),
        _ => None,
    };
    let caller = template::lookups::Caller {
        var: &var,
        env: &ctx.shared.env,
        context: vars.to_value(),
        with_subdir: Some(subdir),
        check: ctx.shared.opts.check,
    };
    let items = template::lookups::run(&caller, plugin, &terms, &Default::default())
        .map_err(|e| format!("with_{plugin}: {}", e.detail().unwrap_or("lookup failed")))?;
    items
        .iter()
        .map(|v| template::value_to_json(v).map_err(|e| format!("with_{plugin}: {e}")))
        .collect()
}

/// Loops: render the list, run each item, aggregate like Ansible (`results`, changed if any
/// changed, failed if any failed, skipped if all skipped).
async fn run_loop(
    ctx: &TaskCtx,
    kw: &Keywords,
    st: &mut HostState,
    vars: &LazyVars,
) -> (Step, Vec<ItemOutcome>) {
    let Some(lp) = &ctx.task.loop_over else {
        return (Step::failed("internal: no loop"), Vec::new());
    };
    let items = match loop_items(ctx, lp, vars) {
        Ok(items) => items,
        // As Ansible: a loop that cannot be rendered is an error only if the task's `when:`
        // (evaluated without an item) does not skip it.
        Err(m) => {
            return match when_true(ctx, &ctx.task.keywords.when, vars) {
                Ok(false) => (skipped(), Vec::new()),
                _ => (Step::failed(m), Vec::new()),
            };
        }
    };
    let names = loop_vars(&ctx.task);
    let mut loop_var = names.first().cloned().unwrap_or_else(|| "item".into());
    if template::has_template(&loop_var) {
        loop_var = match template::render_str(
            &ctx.shared.env,
            &loop_var,
            &vars.to_value(),
            &ctx.task.loc,
        ) {
            Ok(n) if crate::playbook::keywords::is_identifier(&n) => n,
            Ok(n) => {
                return (
                    Step::failed(format!(
                        "loop_control.loop_var '{loop_var}' gives '{n}', which is not a variable name"
                    )),
                    Vec::new(),
                );
            }
            Err(d) => return (Step::failed(d.to_string()), Vec::new()),
        };
    }
    let lc = ctx.task.loop_control.as_ref();
    let index_var = lc
        .and_then(|c| c.index_var.as_ref())
        .map(|n| n.name.clone());
    let pause = lc.and_then(|c| c.pause);
    let mut results = Vec::new();
    let mut outcomes = Vec::new();
    let (mut any_changed, mut any_failed, mut all_skipped) = (false, false, true);
    let mut reach: Option<Reach> = None;
    let mut changes = Vec::new();
    let mut flow = Flow::Continue;
    let n = items.len();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0
            && let Some(p) = pause
        {
            tokio::time::sleep(p).await;
        }
        let mut extra: Vec<(String, Value)> = vec![
            (loop_var.clone(), template::json_to_value(&item)),
            ("ansible_loop_var".into(), Value::from(loop_var.clone())),
        ];
        if let Some(iv) = &index_var {
            extra.push((iv.clone(), Value::from(i)));
            extra.push(("ansible_index_var".into(), Value::from(iv.clone())));
        }
        extra.push((
            "ansible_loop".into(),
            template::json_to_value(&serde_json::json!({
                "index": i + 1, "index0": i, "first": i == 0, "last": i + 1 == n, "length": n,
                "revindex": n - i, "revindex0": n - i - 1,
            })),
        ));
        // Rebuilt per item: a `set_fact` in the previous iteration is visible (Ansible's
        // accumulate-in-a-loop idiom).
        let iv = if i == 0 {
            vars.clone()
        } else {
            task_vars(ctx, st)
        }
        .with_values(extra);
        let label = lc
            .and_then(|c| c.label.as_ref())
            .and_then(|l| render_string(ctx, l, &iv).ok())
            .unwrap_or_else(|| json_label(&item));
        let mut step = match when_true(ctx, &ctx.task.keywords.when, &iv) {
            Ok(true) => attempts(ctx, kw, st, &iv).await,
            Ok(false) => skipped(),
            Err(m) => Step::failed(m),
        };
        step.result.insert(loop_var.clone(), item.clone());
        step.result
            .insert("ansible_loop_var".into(), Json::from(loop_var.clone()));
        if let Some(iv) = &index_var {
            step.result.insert(iv.clone(), Json::from(i));
            step.result
                .insert("ansible_index_var".into(), Json::from(iv.clone()));
        }
        any_changed |= step.status == Status::Changed;
        any_failed |= step.status == Status::Failed;
        if step.status == Status::Unreachable {
            reach = step.reach.or(Some(Reach::Unreachable));
        }
        all_skipped &= step.status == Status::Skipped;
        changes.extend(step.changes);
        if !matches!(step.flow, Flow::Continue) {
            flow = step.flow;
        }
        outcomes.push(ItemOutcome {
            label,
            status: step.status,
            msg: step.msg.clone(),
        });
        results.push(Json::Object(step.result));
        if step.status == Status::Unreachable {
            break;
        }
    }
    // The loop's result as ansible-core shapes it (`msg`, `skipped`, `skipped_reason`).
    let mut r = Map::new();
    r.insert("results".into(), Json::Array(results));
    r.insert("changed".into(), Json::Bool(any_changed));
    r.insert("skipped".into(), Json::Bool(all_skipped));
    if n == 0 {
        r.insert("skipped_reason".into(), Json::from("No items in the list"));
    } else if all_skipped {
        r.insert("msg".into(), Json::from("All items skipped"));
    } else if !any_failed {
        r.insert("msg".into(), Json::from("All items completed"));
    }
    let status = if reach.is_some() {
        r.insert("unreachable".into(), Json::Bool(true));
        Status::Unreachable
    } else if any_failed {
        r.insert("failed".into(), Json::Bool(true));
        r.insert("msg".into(), Json::from("One or more items failed"));
        Status::Failed
    } else if all_skipped {
        // Every item skipped, or no item at all (Ansible reports both `skipping`).
        Status::Skipped
    } else if any_changed {
        Status::Changed
    } else {
        Status::Ok
    };
    let mut step = Step::new(status, r);
    if reach.is_some() {
        step.reach = reach;
        step.msg = outcomes.iter().rev().find_map(|o| o.msg.clone());
    } else if any_failed {
        step.msg = Some("One or more items failed".into());
    }
    step.changes = changes;
    step.flow = flow;
    (step, outcomes)
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a mapping",
    }
}

fn json_label(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs the action, retrying while `until:` is false (`retries`, default 3; `delay`, default
/// 5 s), then applies `changed_when`/`failed_when`. As ansible-core 2.19: `retries` without
/// `until` retries while the task fails; `retries: 0` runs it once and never looks at `until`;
/// when the retries run out, `attempts` says one less than the runs made (Ansible's count).
async fn attempts(ctx: &TaskCtx, kw: &Keywords, st: &mut HostState, vars: &LazyVars) -> Step {
    let until = &ctx.task.until;
    let retries = match (int_kw(&ctx.task.retries, vars, ctx), until.is_empty()) {
        (Some(r), _) => r.max(0) as u64,
        (None, false) => 3,
        (None, true) => 0,
    };
    let delay = int_kw(&ctx.task.delay, vars, ctx).unwrap_or(5).max(0) as u64;
    let mut attempt = 0u64;
    loop {
        attempt += 1;
        let mut step = action(ctx, kw, st, vars).await;
        conditions(ctx, &mut step, vars);
        if retries == 0 || matches!(step.status, Status::Unreachable | Status::Skipped) {
            return step;
        }
        step.result.insert("attempts".into(), Json::from(attempt));
        let done = if until.is_empty() {
            step.status != Status::Failed
        } else {
            let rv = bind_result(ctx, vars, &step.result);
            until.iter().all(|c| {
                c.as_str().is_some_and(|s| {
                    template::eval_bool(&ctx.shared.env, s, &rv.to_value(), &c.loc).unwrap_or(false)
                })
            })
        };
        if done {
            if step.status == Status::Failed && ctx.task.failed_when.is_empty() {
                step.status = if truthy(step.result.get("changed")) {
                    Status::Changed
                } else {
                    Status::Ok
                };
                step.msg = None;
                step.result.insert("failed".into(), Json::Bool(false));
            }
            return step;
        }
        if attempt > retries {
            step.status = Status::Failed;
            step.msg = Some(format!(
                "retries exhausted: `until` still false after {attempt} attempts"
            ));
            step.result.insert("failed".into(), Json::Bool(true));
            step.result
                .insert("attempts".into(), Json::from(attempt - 1));
            return step;
        }
        tokio::time::sleep(Duration::from_secs(delay)).await;
    }
}

/// A templated keyword that must not be guessed (`become`, `timeout`): its literal value, or
/// its rendered value read by `read`, or why it has none (a failed render, a value `read`
/// refuses), naming the keyword and its position.
fn strict_kw<T: Copy>(
    key: &str,
    v: &Option<Val<T>>,
    vars: &LazyVars,
    ctx: &TaskCtx,
    read: impl Fn(&Json, &Node) -> Result<T, String>,
) -> Result<Option<T>, String> {
    let Some(v) = v.as_ref() else {
        return Ok(None);
    };
    let n = match v {
        Val::Lit { value, .. } => return Ok(Some(*value)),
        Val::Template(n) => n,
    };
    let r = render_node(ctx, n, vars).map_err(|e| format!("{key}: {e}"))?;
    read(&r, n).map(Some)
}

/// [`strict_kw`] for a boolean keyword (`become`).
fn strict_bool_kw(
    key: &str,
    v: &Option<Val<bool>>,
    vars: &LazyVars,
    ctx: &TaskCtx,
) -> Result<Option<bool>, String> {
    strict_kw(key, v, vars, ctx, |r, n| match r {
        Json::Bool(b) => Ok(*b),
        Json::String(s) => crate::template::filters::to_bool(&Value::from(s.as_str()))
            .map_err(|_| format!("{key} ({}): '{s}' is not a boolean", n.loc)),
        Json::Number(x) if x.as_f64() == Some(0.0) || x.as_f64() == Some(1.0) => {
            Ok(x.as_f64() == Some(1.0))
        }
        other => Err(format!("{key} ({}): {other} is not a boolean", n.loc)),
    })
}

/// [`strict_kw`] for a whole number of seconds (`timeout`).
fn strict_int_kw(
    key: &str,
    v: &Option<Val<i64>>,
    vars: &LazyVars,
    ctx: &TaskCtx,
) -> Result<Option<i64>, String> {
    strict_kw(key, v, vars, ctx, |r, n| {
        let i = match &r {
            Json::Number(x) => x.as_i64(),
            Json::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match i {
            Some(i) if i >= 0 => Ok(i),
            _ => Err(format!(
                "{key} ({}): expected a number of seconds, found {r}",
                n.loc
            )),
        }
    })
}

fn int_kw(v: &Option<Val<i64>>, vars: &LazyVars, ctx: &TaskCtx) -> Option<i64> {
    match v.as_ref()? {
        Val::Lit { value, .. } => Some(*value),
        Val::Template(n) => match render_node(ctx, n, vars).ok()? {
            Json::Number(n) => n.as_i64(),
            Json::String(s) => s.trim().parse().ok(),
            _ => None,
        },
    }
}

fn truthy(v: Option<&Json>) -> bool {
    matches!(v, Some(Json::Bool(true)))
}

/// The vars with this task's result visible under its `register:` name (for
/// `changed_when`/`failed_when`/`until`, as Ansible does).
fn bind_result(ctx: &TaskCtx, vars: &LazyVars, result: &Map<String, Json>) -> LazyVars {
    let mut extra = Vec::new();
    if let Some(r) = &ctx.task.register {
        extra.push((
            r.name.clone(),
            template::json_to_value(&Json::Object(result.clone())),
        ));
    }
    vars.clone().with_values(extra)
}

/// `changed_when` and `failed_when`.
fn conditions(ctx: &TaskCtx, step: &mut Step, vars: &LazyVars) {
    if matches!(step.status, Status::Unreachable | Status::Skipped) {
        return;
    }
    let t = &ctx.task;
    if t.changed_when.is_empty() && t.failed_when.is_empty() {
        return;
    }
    if step.predicted {
        // Only a literal `changed_when: false` can be judged without running the command.
        if t.changed_when
            .iter()
            .any(|c| matches!(c.kind, Kind::Bool(false)))
        {
            step.status = Status::Ok;
            step.changes.clear();
        }
        return;
    }
    let rv = bind_result(ctx, vars, &step.result).to_value();
    let eval = |c: &Node| -> Result<bool, String> {
        match &c.kind {
            Kind::Bool(b) => Ok(*b),
            Kind::Str { value, .. } => {
                template::eval_bool(&ctx.shared.env, value, &rv, &c.loc).map_err(|d| d.to_string())
            }
            _ => Ok(false),
        }
    };
    if !t.changed_when.is_empty() && step.status != Status::Failed {
        match t
            .changed_when
            .iter()
            .map(eval)
            .collect::<Result<Vec<bool>, String>>()
        {
            Ok(v) => {
                let changed = v.iter().all(|b| *b);
                step.status = if changed { Status::Changed } else { Status::Ok };
                step.result.insert("changed".into(), Json::Bool(changed));
                if !changed {
                    step.changes.clear();
                }
            }
            Err(m) => *step = Step::failed(m),
        }
    }
    if !t.failed_when.is_empty() {
        match t
            .failed_when
            .iter()
            .map(eval)
            .collect::<Result<Vec<bool>, String>>()
        {
            Ok(v) => {
                let failed = v.iter().all(|b| *b);
                step.result.insert("failed".into(), Json::Bool(failed));
                if failed {
                    step.status = Status::Failed;
                    step.msg = Some("failed_when condition was true".into());
                    step.result
                        .insert("failed_when_result".into(), Json::Bool(true));
                } else if step.status == Status::Failed {
                    step.status = if truthy(step.result.get("changed")) {
                        Status::Changed
                    } else {
                        Status::Ok
                    };
                    step.msg = None;
                }
            }
            Err(m) => *step = Step::failed(m),
        }
    }
}

/// `register:` and `notify:`.
/// The failed task (its name, action and arguments as written) and its result, as a
/// `rescue:` sees them in `ansible_failed_task` and `ansible_failed_result`.
fn failure_record(task: &Task, step: &Step) -> (Json, Json) {
    let name = task
        .name
        .as_ref()
        .and_then(crate::yaml::Node::scalar_string)
        .unwrap_or_default();
    let mut args = Map::new();
    for (k, v) in &task.action.args {
        args.insert(k.clone(), v.to_json());
    }
    if let Some(ff) = &task.action.free_form {
        args.insert("_raw_params".into(), ff.to_json());
    }
    let t = serde_json::json!({
        "name": name,
        "action": task.action.module,
        "args": args,
    });
    let mut r = step.result.clone();
    r.insert("failed".into(), Json::Bool(true));
    r.entry("changed").or_insert(Json::Bool(false));
    (t, Json::Object(r))
}

fn record(ctx: &TaskCtx, st: &mut HostState, step: &Step, vars: &LazyVars) {
    // Facts a host module returns (`getent`; Ansible's `service_facts`... through the bridge)
    // are the host's facts from now on, as in Ansible.
    if let Some(Json::Object(f)) = step.result.get("ansible_facts")
        && crate::modules::implementation(&ctx.task.action.module).is_some()
    {
        crate::exec::facts::store_module_facts(st, f);
    }
    if let Some(r) = &ctx.task.register {
        let mut result = step.result.clone();
        result.insert("changed".into(), Json::Bool(step.status == Status::Changed));
        result.insert("failed".into(), Json::Bool(step.status == Status::Failed));
        if step.status == Status::Skipped {
            result.insert("skipped".into(), Json::Bool(true));
        }
        if step.status == Status::Unreachable {
            result.insert("unreachable".into(), Json::Bool(true));
        }
        st.set_runtime(r.name.clone(), Json::Object(result));
    }
    if step.status == Status::Changed {
        // A task without `notify` of its own notifies what its enclosing block names.
        let notify = match (&ctx.task.notify[..], &ctx.scope.notify) {
            ([], Some(block)) => &block[..],
            (own, _) => own,
        };
        for n in notify {
            let name = if template::has_template(&n.name) {
                template::render_str(&ctx.shared.env, &n.name, &vars.to_value(), &n.loc)
                    .unwrap_or_else(|_| n.name.clone())
            } else {
                n.name.clone()
            };
            st.notified.insert(name);
        }
    }
}

/// Renders a node as data with native types (`"{{ [1, 2] }}"` is a list).
pub fn render_node(ctx: &TaskCtx, n: &Node, vars: &LazyVars) -> Result<Json, String> {
    if n.tag.as_deref() == Some("unsafe") {
        return Ok(n.to_json());
    }
    template::render_value(&ctx.shared.env, &n.to_json(), &vars.to_value(), &n.loc)
        .map_err(|d| d.to_string())
}

/// A `set_fact` key written as a template, rendered for this host: it must give a variable
/// name, as in Ansible.
fn fact_name(ctx: &TaskCtx, key: &str, at: &Node, vars: &LazyVars) -> Result<String, String> {
    let name = template::render_str(&ctx.shared.env, key, &vars.to_value(), &at.loc)
        .map_err(|d| d.to_string())?;
    if !crate::playbook::keywords::is_identifier(&name) {
        return Err(format!(
            "Invalid variable name '{name}' (from '{key}'). Variable names must be strings \
             starting with a letter or underscore character, and contain only letters, numbers \
             and underscores."
        ));
    }
    Ok(name)
}

/// The task's arguments rendered; `omit` dropped; free-form text under `_raw_params`.
pub fn render_args(ctx: &TaskCtx, vars: &LazyVars) -> Result<Args, String> {
    let mut args = Map::new();
    for (k, n) in &ctx.task.action.args {
        let v = render_node(ctx, n, vars)?;
        if v.as_str() == Some(template::OMIT) {
            continue;
        }
        let k = if ctx.task.action.module == "set_fact" && template::has_template(k) {
            fact_name(ctx, k, n, vars)?
        } else {
            k.clone()
        };
        args.insert(k, v);
    }
    if let Some(ff) = &ctx.task.action.free_form {
        args.insert(
            "_raw_params".into(),
            Json::from(render_string(ctx, ff, vars)?),
        );
    }
    Ok(args)
}

/// One attempt of the task's action on the host (or on the controller for controller
/// actions).
async fn action(ctx: &TaskCtx, kw: &Keywords, st: &mut HostState, vars: &LazyVars) -> Step {
    let module = ctx.task.action.module.as_str();
    // A task of a conditionally loaded file that rdeploy cannot run, reached on this host.
    if !ctx.task.deferred.is_empty() && !matches!(module, "include_tasks" | "include_role") {
        let msgs: Vec<String> = ctx.task.deferred.iter().map(|d| d.to_string()).collect();
        return Step::failed(msgs.join("\n"));
    }
    let mut args = match render_args(ctx, vars) {
        Ok(a) => a,
        Err(m) => return Step::failed(m),
    };
    let check_mode = match effective_check_mode(ctx, kw, vars) {
        Ok(c) => c,
        Err(m) => return Step::failed(m),
    };
    if check_mode && module == "wait_for_connection" {
        // As Ansible's: skipped under check mode, without a message.
        let mut r = Map::new();
        r.insert("skipped".into(), Json::Bool(true));
        r.insert("changed".into(), Json::Bool(false));
        return Step::new(Status::Skipped, r);
    }
    if check_mode && actions::without_check_mode(module) {
        // As Ansible: an action that cannot predict its effect is not run under `--check`.
        return not_run_in_check_mode(&format!(
            "This action ({module}) does not support check mode."
        ));
    }
    if let Some(step) = actions::controller(ctx, st, vars, module, &args).await {
        return step;
    }
    let Some(imp) = crate::modules::implementation(module) else {
        return Step::failed(format!("module '{module}' is not implemented yet"));
    };
    let parts = match Parts::new(ctx, kw, vars, &args) {
        Ok(p) => p,
        Err(m) => return Step::failed(m),
    };
    let mctx = parts.mctx(ctx);
    let delegate = delegate_name(ctx, vars);
    let opts = &ctx.shared.opts;
    let host_name = st.name.clone();
    let ahead_vars: Vec<LazyVars> = ctx.ahead.iter().map(|a| task_vars(&a.ctx, st)).collect();
    let conn = match connection_of(ctx, vars, &st.connection) {
        Ok(c) => c,
        Err(m) => return Step::failed(m),
    };
    let local = conn == crate::exec::host::Connection::Local;
    let own_connection = conn == st.connection;
    let mut backups = std::mem::take(&mut st.backups);
    let opened = match delegate.as_deref() {
        Some(d) if d != st.name => match actions::delegate_target(ctx, d) {
            Ok((conn, dvars)) => {
                st.delegate(d, &conn, opts, &|k: &str| dvars.get(k).cloned())
                    .await
            }
            Err(e) => Err(e),
        },
        _ => {
            st.transport_via(&conn, opts, &|k: &str| {
                vars.get_json(k).and_then(Result::ok)
            })
            .await
        }
    };
    // Reads run ahead on the host's own connection only, unless `rdeploy_read_ahead: false`.
    let on = own_connection
        && delegate.as_deref().is_none_or(|d| d == host_name)
        && vars
            .get_json("rdeploy_read_ahead")
            .and_then(Result::ok)
            .is_none_or(|v| truthy(Some(&v)));
    let look = Lookahead {
        on,
        tasks: if on { &ctx.ahead } else { &[] },
        vars: ahead_vars,
        host: &host_name,
    };
    let tr: &mut AnyTransport = match opened {
        Ok(t) => t,
        Err(e) => {
            st.backups = backups;
            return unreachable(e);
        }
    };
    // Every wait of this task's transport (transfers and the backups included) is bounded by
    // the task's timeout, not only the module's own commands.
    tr.set_timeout(parts.timeout);
    if let Err(m) = absolute_paths(tr, module, &mut args, local).await {
        st.backups = backups;
        return Step::failed(m);
    }
    let implied = imp.implied_paths(&args);
    for (k, p) in &implied {
        args.insert((*k).to_string(), Json::from(p.clone()));
    }
    let implied: Vec<&str> = implied.iter().map(|(k, _)| *k).collect();
    if let Err(m) = home_paths(tr, module, &mut args, mctx.become_.as_ref(), &implied).await {
        st.backups = backups;
        return Step::failed(m);
    }
    // Backups go to the host's own state folder; a delegated step's target keeps none.
    let mut guard = match (&ctx.shared.opts.run, &delegate) {
        (Some(run), d) if d.as_deref().is_none_or(|d| d == host_name) => Some(StepBackup {
            run,
            host: &mut backups,
            name: &host_name,
            vars,
            task: &ctx.label,
            local,
            switch: ctx.scope.tags.iter().any(|t| t == "switch")
                || ctx.task.keywords.tags.iter().any(|t| t.name == "switch"),
        }),
        _ => None,
    };
    let mut step = pipeline(imp, tr, &args, &mctx, check_mode, guard.as_mut(), &look).await;
    if ctx.task.async_secs.is_some() && !step.predicted {
        // What an async task's final status reports in Ansible.
        for k in ["finished", "started"] {
            step.result.entry(k).or_insert(Json::Bool(true));
        }
    }
    let own_host = delegate.as_deref().is_none_or(|d| d == host_name);
    if step.predicted && step.status == Status::Changed && own_host && !local {
        let resources = imp.resources(&args);
        if !resources.is_empty()
            && let Err(m) = check_preparable(tr, &mut backups, vars, mctx.become_.as_ref()).await
        {
            let changes = std::mem::take(&mut step.changes);
            step = Step::failed(format!(
                "the real run would fail before this change: the state directory for backups cannot be prepared: {m}"
            ));
            step.changes = changes;
        }
    }
    // What runs outside a task (gathering, a rollback's restores) keeps its own limits.
    tr.set_timeout(None);
    st.backups = backups;
    step
}

/// Path arguments a module resolves against its working directory when they are relative.
const PATH_ARGS: &[(&str, &str)] = &[
    ("copy", "dest"),
    ("template", "dest"),
    ("file", "path"),
    ("lineinfile", "path"),
    ("blockinfile", "path"),
    ("replace", "path"),
    ("stat", "path"),
    ("unarchive", "dest"),
    ("get_url", "dest"),
    ("assemble", "dest"),
    ("ini_file", "path"),
    ("slurp", "src"),
    ("fetch", "src"),
    ("git", "dest"),
];

/// A relative path argument (`dest: ./app.conf`) made absolute where Ansible's module would
/// find it: its working directory, which is the login user's home over SSH and the
/// controller's current directory on the local connection.
async fn absolute_paths(
    tr: &mut AnyTransport,
    module: &str,
    args: &mut Args,
    local: bool,
) -> Result<(), String> {
    let relative: Vec<&str> = PATH_ARGS
        .iter()
        .filter(|(m, k)| {
            *m == module
                && args
                    .get(*k)
                    .and_then(Json::as_str)
                    .is_some_and(|p| !p.is_empty() && !p.starts_with('/') && !p.starts_with('~'))
        })
        .map(|(_, k)| *k)
        .collect();
    if relative.is_empty() {
        return Ok(());
    }
    let base = if local {
        std::env::current_dir()
            .map_err(|e| format!("the current directory, for a relative path: {e}"))?
            .display()
            .to_string()
    } else {
        crate::backup::whoami(tr, None)
            .await
            .map_err(|e| format!("the login user's home, for a relative path: {e}"))?
            .1
    };
    for k in relative {
        if let Some(Json::String(p)) = args.get_mut(k) {
            let rel = p.strip_prefix("./").unwrap_or(p);
            *p = format!("{}/{rel}", base.trim_end_matches('/'));
        }
    }
    Ok(())
}

/// Whether `src` names a file on the host: `remote_src: yes`, or `unarchive`'s deprecated
/// `copy: no`.
fn src_on_host(module: &str, args: &Args) -> bool {
    use crate::modules::runtime::ArgsExt;
    args.bool_arg("remote_src", false).unwrap_or(false)
        || (module == "unarchive" && !args.bool_arg("copy", true).unwrap_or(true))
}

/// Path arguments that name a file on the controller, not on the host: `~` in them is not the
/// host's (with `remote_src`, `copy`'s and `unarchive`'s `src` are on the host).
const CONTROLLER_PATHS: &[(&str, &str)] = &[
    ("copy", "src"),
    ("template", "src"),
    ("unarchive", "src"),
    ("fetch", "dest"),
];

/// `~` and `~USER` at the start of a host-side path argument (`path: ~/.ssh/config`), expanded
/// as Ansible's module does on the host (`os.path.expanduser`, as the user the module runs as,
/// so after `become`): the module, its backups and `--diff` then all see the absolute path.
/// `implied` names the paths the module itself defaulted ([`crate::modules::runtime::Module::implied_paths`]).
async fn home_paths(
    tr: &mut AnyTransport,
    module: &str,
    args: &mut Args,
    become_: Option<&Become>,
    implied: &[&str],
) -> Result<(), String> {
    let Some(spec) = crate::modules::registry::entry(module).map(|e| e.spec) else {
        return Ok(());
    };
    let remote_src = src_on_host(module, args);
    // A documented default under `~` (`known_hosts`' `~/.ssh/known_hosts`) is the host's too:
    // written out, so the module and its backups see the same absolute path.
    for a in spec.args {
        if a.kind == crate::modules::spec::ArgKind::Path
            && !args.contains_key(a.name)
            && let Some(d) = a.default.filter(|d| d.starts_with('~'))
        {
            args.insert(a.name.to_string(), Json::from(d));
        }
    }
    let keys: Vec<&str> = spec
        .args
        .iter()
        .filter(|a| a.kind == crate::modules::spec::ArgKind::Path)
        .filter(|a| remote_src || !CONTROLLER_PATHS.contains(&(module, a.name)))
        .filter(|a| {
            args.get(a.name)
                .and_then(Json::as_str)
                .is_some_and(|p| p.starts_with('~'))
        })
        .map(|a| a.name)
        .chain(implied.iter().copied())
        .collect();
    let mut homes: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for k in keys {
        let Some(Json::String(p)) = args.get(k) else {
            continue;
        };
        let (user, rest) = match p[1..].find('/') {
            Some(i) => (p[1..1 + i].to_string(), p[1 + i..].to_string()),
            None => (p[1..].to_string(), String::new()),
        };
        let home = match homes.get(&user) {
            Some(h) => h.clone(),
            None => {
                let h = home_of(tr, become_, &user).await?;
                homes.insert(user.clone(), h.clone());
                h
            }
        };
        // An unknown `~USER` stays as written, as Python's expanduser leaves it.
        let Some(home) = (!home.is_empty()).then_some(home) else {
            continue;
        };
        let expanded = format!("{}{rest}", home.trim_end_matches('/'));
        args.insert(
            k.to_string(),
            Json::from(if expanded.is_empty() {
                "/".into()
            } else {
                expanded
            }),
        );
    }
    Ok(())
}

/// The home directory of `user` on the host (`""`: the user commands run as); empty when
/// there is no such user.
async fn home_of(
    tr: &mut AnyTransport,
    become_: Option<&Become>,
    user: &str,
) -> Result<String, String> {
    if user.is_empty() {
        return crate::backup::whoami(tr, become_)
            .await
            .map(|(_, home)| home)
            .map_err(|e| format!("the user's home, for a path starting with ~: {e}"));
    }
    use crate::transport::Transport;
    let cmd = crate::transport::Cmd::raw("set --")
        .arg(user)
        .op(r#"; getent passwd "$1" | cut -d: -f6"#);
    let out = tr
        .exec(&cmd)
        .await
        .map_err(|e| format!("the home of {user}, for a path starting with ~{user}: {e}"))?;
    Ok(out.stdout_lossy().trim().to_string())
}

/// `--check`, before the host's first predicted change that the real run would back up:
/// whether its state directory can be prepared (read-only; once per host).
async fn check_preparable(
    tr: &mut AnyTransport,
    backups: &mut crate::exec::backups::HostBackups,
    vars: &LazyVars,
    become_: Option<&Become>,
) -> Result<(), String> {
    if let Some(r) = &backups.preparable {
        return r.clone();
    }
    let r = match crate::exec::backups::resolve_state_dir(tr, vars, become_, None).await {
        Ok(dir) => {
            backups.dir = Some(dir.clone());
            crate::backup::preparable(tr, &dir, become_)
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e),
    };
    backups.preparable = Some(r.clone());
    r
}

/// check → [check mode stops] → backup → apply → verify.
///
/// Reads run ahead ([`crate::transport::reads`]): when nothing is read ahead on the host, the
/// reads of the next tasks' checks are announced and ride with this task's first round trip;
/// before a change, this check's reads (to verify) and those of the next tasks up to one that
/// may change the host are announced and ride with the change.
async fn pipeline(
    imp: &'static dyn crate::modules::runtime::Module,
    tr: &mut AnyTransport,
    args: &Args,
    mctx: &ModuleCtx<'_>,
    check_mode: bool,
    backup: Option<&mut StepBackup<'_>>,
    look: &Lookahead<'_>,
) -> Step {
    let converges = imp.converges(args);
    if check_mode && let Some(msg) = imp.check_mode_skip(args, mctx) {
        return not_run_in_check_mode(msg);
    }
    if tr.reads().idle() {
        let window = look.reads(usize::MAX).await;
        tr.reads().announce(window);
    }
    tr.reads().take_seen();
    let drift = match imp.check(&mut HostView::of(tr), args, mctx).await {
        Ok(Verdict::InSync { result }) => return Step::new(Status::Ok, result),
        Ok(Verdict::Drift(d)) => d,
        Err(e) => return module_error(e),
    };
    if check_mode {
        return predicted(imp, args, drift, converges);
    }
    // Riding with the change: this check's reads (to verify) and the next tasks' up to one
    // that may change the host.
    let mut sets = if converges && look.on {
        tr.reads().take_seen()
    } else {
        Vec::new()
    };
    let next = look.tasks.iter().position(|a| a.kind != Ahead::ReadsOnly);
    sets.extend(look.reads(next.map_or(usize::MAX, |i| i + 1)).await);
    tr.reads().announce(sets);
    // The backup is queued on the transport: it runs on the host right before apply's first
    // command, in the same round trip, and that command runs only if the backup succeeded.
    let mut queued = None;
    if let Some(b) = backup {
        match b
            .queue(
                tr,
                &imp.resources(args),
                mctx.become_.as_ref(),
                &mctx.environment,
            )
            .await
        {
            Ok(q) => queued = q.map(|q| (b, q)),
            Err(msg) => {
                let mut s = Step::failed(msg);
                s.changes = drift.changes;
                return s;
            }
        }
    }
    let applied = imp.apply(tr, args, mctx, &drift).await;
    if let Some((b, q)) = queued
        && let Err(msg) = b.settle(tr, q)
    {
        // A host that stopped answering (or a timeout) is the step's outcome, as reported by
        // the module; a failed backup is reported as such (the change was not made).
        let mut s = match applied {
            Err(ModuleError::Transport(e)) if !matches!(e, TransportError::NotRun) => {
                module_error(ModuleError::Transport(e))
            }
            _ => Step::failed(msg),
        };
        s.changes = drift.changes;
        return s;
    }
    let result = match applied {
        Ok(r) => r,
        Err(e) => {
            let mut s = module_error(e);
            s.changes = drift.changes;
            return s;
        }
    };
    if converges {
        match imp.check(&mut HostView::of(tr), args, mctx).await {
            Ok(Verdict::InSync { .. }) => {}
            Ok(Verdict::Drift(d)) => {
                let what: Vec<String> = d.changes.iter().map(describe_change).collect();
                let mut s = Step::failed(format!(
                    "module '{}' did not converge: after applying, it still differs ({})",
                    imp.name(),
                    what.join("; ")
                ));
                s.changes = drift.changes;
                return s;
            }
            Err(e) => return module_error(e),
        }
    }
    // A module that reports its own outcome (Ansible's, through the bridge) may find nothing
    // to do after all.
    let status = if !converges && result.get("changed") == Some(&Json::Bool(false)) {
        Status::Ok
    } else {
        Status::Changed
    };
    let mut s = Step::new(status, result);
    if status == Status::Changed {
        s.changes = drift.changes;
    }
    s
}

/// `skipping` under `--check`, with Ansible's message, for what Ansible does not run there.
fn not_run_in_check_mode(msg: &str) -> Step {
    let mut s = Step::new(Status::Skipped, Map::new());
    s.result.insert("msg".into(), Json::from(msg));
    s.msg = Some(msg.to_string());
    s
}

/// `--check` stops after `check`: a converging module's drift is the predicted change; a
/// module whose effect cannot be predicted (a command) is reported as Ansible reports it:
/// `skipping`, unless its `creates`/`removes` predicted that it runs.
fn predicted(
    imp: &'static dyn crate::modules::runtime::Module,
    args: &Args,
    drift: crate::modules::runtime::Drift,
    converges: bool,
) -> Step {
    let mut s = if converges {
        Step::new(Status::Changed, Map::new())
    } else {
        let u = imp.unpredicted(args, &drift);
        let status = if u.skip {
            Status::Skipped
        } else {
            Status::Changed
        };
        let mut s = Step::new(status, u.result);
        s.msg = s
            .result
            .get("msg")
            .and_then(Json::as_str)
            .map(str::to_string);
        if u.skip {
            return s;
        }
        s
    };
    s.changes = drift.changes;
    s.predicted = true;
    s
}

/// What a module is given on a host besides its arguments: `become`, `environment:`, the
/// timeout, its controller-side source and the task's template renderer.
struct Parts {
    become_: Option<Become>,
    environment: Vec<(String, String)>,
    timeout: Option<Duration>,
    local_src: Option<PathBuf>,
    render: Renderer,
    no_log: bool,
    python: Option<String>,
}

/// The variables Ansible's `template` adds for its source: `template_host` (the
/// controller), `template_path`, `template_fullpath`, `template_destpath`, `template_uid`, and
/// `ansible_managed` with Ansible's default text unless the play sets it.
fn template_vars(vars: &LazyVars, args: &Args, src: Option<&Path>) -> Vec<(String, Value)> {
    let text = |k: &str| {
        args.get(k)
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let full = src.map(|p| p.display().to_string()).unwrap_or_default();
    let uid = src
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m).to_string())
        .unwrap_or_default();
    let mut out = vec![
        ("template_host".to_string(), Value::from(host)),
        ("template_path".to_string(), Value::from(text("src"))),
        ("template_fullpath".to_string(), Value::from(full)),
        ("template_destpath".to_string(), Value::from(text("dest"))),
        ("template_uid".to_string(), Value::from(uid)),
    ];
    if vars.get("ansible_managed").is_none() {
        out.push((
            "ansible_managed".to_string(),
            Value::from(template::ANSIBLE_MANAGED),
        ));
    }
    out
}

/// Renders template text with one task's variables on one host.
type Renderer = Box<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

impl Parts {
    fn new(ctx: &TaskCtx, kw: &Keywords, vars: &LazyVars, args: &Args) -> Result<Parts, String> {
        let become_ = become_of(ctx, kw, vars)?;
        let environment = environment_of(ctx, kw, vars)?;
        let timeout = strict_int_kw("timeout", &kw.timeout, vars, ctx)?
            .map(|s| Duration::from_secs(s.max(0) as u64))
            .or(ctx.shared.opts.task_timeout);
        // `async: N` (rdeploy waits for the task, as `poll: N` does): at most N seconds.
        let timeout = match strict_int_kw("async", &ctx.task.async_secs, vars, ctx)? {
            Some(n) if n > 0 => {
                let limit = Duration::from_secs(n as u64);
                Some(timeout.map_or(limit, |t| t.min(limit)))
            }
            _ => timeout,
        };
        let local_src = local_src(ctx, args);
        let env = Arc::clone(&ctx.shared.env);
        let render_ctx = if ctx.task.action.module == "template" {
            vars.clone()
                .with_values(template_vars(vars, args, local_src.as_deref()))
                .to_value()
        } else {
            vars.to_value()
        };
        let src_file: Arc<str> = local_src.as_ref().map_or_else(
            || Arc::from("<template>"),
            |p| Arc::from(p.display().to_string()),
        );
        let render = move |text: &str| -> Result<String, String> {
            template::render_file(&env, text, &render_ctx, &src_file).map_err(|d| d.to_string())
        };
        Ok(Parts {
            become_,
            environment,
            timeout,
            local_src,
            render: Box::new(render),
            no_log: strict_bool_kw("no_log", &kw.no_log, vars, ctx)
                .map_or(true, |b| b.unwrap_or(false)),
            python: var_text(vars, "ansible_python_interpreter")?
                .filter(|p| !p.starts_with("auto")),
        })
    }

    fn mctx<'a>(&'a self, ctx: &'a TaskCtx) -> ModuleCtx<'a> {
        ModuleCtx {
            local_src: self.local_src.as_deref(),
            render: &*self.render,
            become_: self.become_.clone(),
            environment: self.environment.clone(),
            timeout: self.timeout,
            controller_dir: &ctx.shared.playbook_dir,
            no_log: self.no_log,
            python: self.python.as_deref(),
        }
    }
}

/// A task that follows the current one and whose check may run ahead ([`Ahead`]).
pub struct AheadTask {
    /// The task, as it will run.
    pub ctx: Arc<TaskCtx>,
    /// What its module allows.
    pub kind: Ahead,
}

/// The tasks after this one on this host, for reads run ahead.
struct Lookahead<'a> {
    /// Reads run ahead on this host for this task (`rdeploy_read_ahead`, not delegated).
    on: bool,
    tasks: &'a [AheadTask],
    vars: Vec<LazyVars>,
    host: &'a str,
}

impl Lookahead<'_> {
    /// The reads the checks of the first `n` next tasks will ask for on this host (a task that
    /// will be skipped, or whose arguments cannot be rendered yet, asks for nothing). Each
    /// check runs on a recording transport: nothing reaches the host.
    async fn reads(&self, n: usize) -> Vec<ReadSet> {
        let mut sets = Vec::new();
        for (a, vars) in self.tasks.iter().zip(&self.vars).take(n) {
            let actx = &*a.ctx;
            if !matches!(when_true(actx, &actx.scope.when, vars), Ok(true))
                || !matches!(when_true(actx, &actx.task.keywords.when, vars), Ok(true))
            {
                continue;
            }
            let Some(imp) = crate::modules::implementation(actx.task.action.module.as_str()) else {
                continue;
            };
            let kw = effective_keywords(actx);
            let Ok(args) = render_args(actx, vars) else {
                continue;
            };
            let Ok(parts) = Parts::new(actx, &kw, vars, &args) else {
                continue;
            };
            let mctx = parts.mctx(actx);
            let mut rec = AnyTransport::Local(LocalTransport::new(self.host));
            rec.reads().start_recording();
            let r = imp.check(&mut HostView::of(&mut rec), &args, &mctx).await;
            let got = rec.reads().stop_recording();
            tracing::trace!(task = %actx.label, sets = got.len(), ok = r.is_ok(), "reads of a next task");
            sets.extend(got);
        }
        sets
    }
}

fn describe_change(c: &Change) -> String {
    match c {
        Change::Content { path, .. } => format!("content of {path}"),
        Change::Attr { subject, what, .. } => format!("{what} of {subject}"),
        Change::Run { command } => format!("run {command}"),
    }
}

/// The host could not be used: the step is `unreachable`, with the reason's kind in the result
/// (`unreachable_reason`: unreachable, auth_failed, host_key_refused, timed_out).
pub fn unreachable(e: TransportError) -> Step {
    let reach = e.reach().unwrap_or(Reach::Unreachable);
    let mut s = Step::failed(e.to_string());
    s.status = Status::Unreachable;
    s.result.insert("unreachable".into(), Json::Bool(true));
    s.result.insert(
        "unreachable_reason".into(),
        serde_json::to_value(reach).unwrap_or_default(),
    );
    s.reach = Some(reach);
    s
}

fn module_error(e: ModuleError) -> Step {
    match e {
        ModuleError::Failed { msg, mut result } => {
            result.insert("msg".into(), Json::from(msg.clone()));
            result.insert("failed".into(), Json::Bool(true));
            let mut s = Step::new(Status::Failed, result);
            s.msg = Some(msg);
            s
        }
        ModuleError::Args(m) => Step::failed(m),
        ModuleError::Transport(TransportError::TimedOut {
            after,
            what,
            script,
        }) => {
            let mut s = Step::failed(match what {
                Some(w) => format!("timed out after {}s: {w}", after.as_secs()),
                None => format!(
                    "timed out after {}s in one of rdeploy's own steps (-vvv shows its script)",
                    after.as_secs()
                ),
            });
            s.result.insert("script".into(), Json::from(script));
            s
        }
        ModuleError::Transport(e @ TransportError::Interrupted) => Step::failed(e.to_string()),
        ModuleError::Transport(e) => unreachable(e),
    }
}

/// How the task reaches its host, as in Ansible: an `ansible_connection` variable, else the
/// `connection:` keyword of the task, its blocks, role or play, else the host's own.
pub fn connection_of(
    ctx: &TaskCtx,
    vars: &LazyVars,
    host: &crate::exec::host::Connection,
) -> Result<crate::exec::host::Connection, String> {
    use crate::exec::host::Connection;
    let name = match var_text(vars, "ansible_connection")? {
        Some(n) => n,
        None => match &effective_keywords(ctx).connection {
            Some(n) => render_string(ctx, n, vars)?,
            None => return Ok(host.clone()),
        },
    };
    Connection::parse(&name)
        .ok_or_else(|| format!("connection '{name}' is not supported by rdeploy (local or ssh)"))
}

/// `--check`, unless the task says `check_mode: false` (always run) or `true` (always check).
/// A value that is not a boolean fails the task (never a real run the task meant to check).
fn effective_check_mode(ctx: &TaskCtx, kw: &Keywords, vars: &LazyVars) -> Result<bool, String> {
    Ok(strict_bool_kw("check_mode", &kw.check_mode, vars, ctx)?.unwrap_or(ctx.shared.opts.check))
}

/// The task's `become`, with Ansible's precedence (checked with ansible-playbook 2.19): the
/// variables `ansible_become`, `ansible_become_user`, `ansible_become_method` (from the
/// inventory, vars files, play/task `vars:`, `-e`) win over the play/block/task keywords,
/// which win over the command line's `-b`, `--become-user`, `--become-method`. The password is
/// `ansible_become_password` (or `ansible_become_pass`), else `-K`'s.
pub(crate) fn become_of(
    ctx: &TaskCtx,
    kw: &Keywords,
    vars: &LazyVars,
) -> Result<Option<Become>, String> {
    let cli = &ctx.shared.opts.become_cli;
    let on = match var_text(vars, "ansible_become")? {
        Some(v) => crate::template::filters::to_bool(&Value::from(v.as_str()))
            .map_err(|_| format!("ansible_become: expected a boolean, got '{v}'"))?,
        None => strict_bool_kw("become", &kw.r#become, vars, ctx)?
            .or(cli.r#become)
            .unwrap_or(false),
    };
    if !on {
        return Ok(None);
    }
    let keyword = |n: &Option<Node>| -> Result<Option<String>, String> {
        n.as_ref().map(|n| render_string(ctx, n, vars)).transpose()
    };
    let user = match var_text(vars, "ansible_become_user")? {
        Some(u) => u,
        None => keyword(&kw.become_user)?
            .or_else(|| cli.user.clone())
            .unwrap_or_else(|| "root".into()),
    };
    let method = match var_text(vars, "ansible_become_method")? {
        Some(m) => m,
        None => keyword(&kw.become_method)?
            .or_else(|| cli.method.clone())
            .unwrap_or_else(|| "sudo".into()),
    };
    let password = match var_text(vars, "ansible_become_password")? {
        Some(p) => Some(p),
        None => var_text(vars, "ansible_become_pass")?,
    }
    .or_else(|| cli.password.clone());
    if let Some(p) = &password {
        // Masked wherever it could be printed (an error echoing stdin, a debug of the var).
        crate::vault::redact::register(p);
    }
    match method.as_str() {
        "sudo" => Ok(Some(Become::sudo(user).with_password(password))),
        "su" => Ok(Some(Become::su(user, password))),
        other => Err(format!(
            "become_method '{other}' is not supported by rdeploy (sudo or su)"
        )),
    }
}

/// A connection variable's value as text (`None` when nothing defines it).
fn var_text(vars: &LazyVars, name: &str) -> Result<Option<String>, String> {
    match vars.get_json(name) {
        None | Some(Ok(Json::Null)) => Ok(None),
        Some(Ok(Json::String(s))) => Ok(Some(s)),
        Some(Ok(other)) => Ok(Some(other.to_string())),
        Some(Err(e)) => Err(format!("{name}: {e}")),
    }
}

pub(crate) fn environment_of(
    ctx: &TaskCtx,
    kw: &Keywords,
    vars: &LazyVars,
) -> Result<Vec<(String, String)>, String> {
    // Each level's `environment:` (play, block, role, task; a list merges in order) adds to
    // the outer ones, a key set again overriding the outer value, as in Ansible.
    let mut merged: indexmap::IndexMap<String, String> = indexmap::IndexMap::new();
    fn add(merged: &mut indexmap::IndexMap<String, String>, v: Json) -> Result<(), String> {
        match v {
            Json::Object(m) => {
                for (k, v) in m {
                    let v = match v {
                        Json::String(s) => s,
                        other => other.to_string(),
                    };
                    merged.insert(k, v);
                }
                Ok(())
            }
            Json::Array(items) => items.into_iter().try_for_each(|i| add(merged, i)),
            Json::Null => Ok(()),
            other => Err(format!(
                "environment: expects a mapping, got {}",
                json_type(&other)
            )),
        }
    }
    // Gathering facts comes before the facts a play's `environment:` often uses
    // (`PATH: "/usr/local/bin:{{ ansible_env.PATH }}"`): ansible-playbook gathers anyway, so a
    // level that cannot be rendered yet is left out for `setup`/`gather_facts` only.
    let gathering = matches!(ctx.task.action.module.as_str(), "setup" | "gather_facts");
    for n in &kw.environment {
        match render_node(ctx, n, vars) {
            Ok(v) => add(&mut merged, v)?,
            Err(_) if gathering => {}
            Err(e) => return Err(e),
        }
    }
    Ok(merged.into_iter().collect())
}

/// The controller-side file a `src:` names: the loader's resolution when the name was
/// literal, else searched like Ansible (role `files/`/`templates/`, then the playbook's).
fn local_src(ctx: &TaskCtx, args: &Args) -> Option<PathBuf> {
    if let Some(p) = &ctx.task.action.local_src {
        return Some(p.clone());
    }
    let src = args.get("src")?.as_str()?;
    if src_on_host(&ctx.task.action.module, args) {
        return None;
    }
    let expanded = crate::modules::source::expand_home(src);
    let p = expanded.as_path();
    if p.is_absolute() {
        return Some(p.to_path_buf());
    }
    let sub = if ctx.task.action.module == "template" {
        "templates"
    } else {
        "files"
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(r) = ctx
        .task
        .role
        .as_ref()
        .and_then(|r| ctx.shared.role_paths.get(r))
    {
        dirs.push(r.join(sub));
        dirs.push(r.clone());
    }
    dirs.push(ctx.shared.playbook_dir.join(sub));
    dirs.push(ctx.shared.playbook_dir.clone());
    dirs.into_iter().map(|d| d.join(p)).find(|c| c.exists())
}
