//! The template check: every template and condition in the playbook is rendered for the
//! play's hosts before anything runs, so an undefined variable or a template syntax error is
//! reported as `PATH:LINE:COL` with exit 4, not discovered on host 37 at 3 a.m.
//!
//! Owns deciding what can be known before the run. Names only known at run time (registered
//! results, `set_fact`, loop variables, facts) are stood in for by [`Unknown`], a value that
//! accepts any use; a task whose `when:` is false for a host is not checked for that host, as
//! Ansible would not render it. Hosts whose variables have the same names are checked once
//! (undefinedness depends on names, not values), which keeps 2,000 hosts fast.
//! It must not touch hosts, files outside the playbook's, or change any input.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{Environment, ErrorKind, State};

use crate::cli::settings::Settings;
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::inventory::Inventory;
use crate::plan::Plan;
use crate::playbook::model::{
    Included, Keywords, Play, Playbook, RoleRef, Task, TaskItem, Val, loop_vars,
};
use crate::template::{self, HostVars, LazyVars, VarValue};
use crate::vars::{Tier, VarStack, host_stacks, play_magic, play_stack, role_vars};
use crate::yaml::{Kind, Node};

/// A stand-in for a value only known at run time: every attribute, item and method call
/// gives another `Unknown`, it iterates as one `Unknown` (to a depth of [`UNKNOWN_DEPTH`],
/// then as empty, so that a recursive filter such as `flatten` ends), is true, and renders as
/// nothing.
#[derive(Debug, Clone, Copy)]
pub struct Unknown(u8);

/// How many levels of items an [`Unknown`] has.
const UNKNOWN_DEPTH: u8 = 3;

impl fmt::Display for Unknown {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

impl Object for Unknown {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, _key: &Value) -> Option<Value> {
        Some(Value::from_object(Unknown(self.0.saturating_sub(1))))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        // One unknown item: `x | first`, `x[0]`, `x | last` and a loop's body see a stand-in,
        // not an undefined value that no run would give.
        match self.0.checked_sub(1) {
            Some(d) => Enumerator::Values(vec![Value::from_object(Unknown(d))]),
            None => Enumerator::Empty,
        }
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        _args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        Ok(Value::from_object(Unknown(self.0)))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        _method: &str,
        _args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        Ok(Value::from_object(Unknown(self.0)))
    }

    fn render(self: &Arc<Self>, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

/// `hostvars` before the run of a playbook that runs `add_host`: a host the inventory lacks
/// may be added by then, so its variables are an [`Unknown`].
#[derive(Debug)]
struct AddedHostVars(Value);

impl Object for AddedHostVars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match self.0.get_item(key) {
            Ok(v) if !v.is_undefined() => Some(v),
            _ => Some(unknown()),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.0.try_iter() {
            Ok(it) => Enumerator::Values(it.collect()),
            Err(_) => Enumerator::Empty,
        }
    }
}

/// Stand-ins for every name only known at run time: registered results, `set_fact` and
/// `include_vars` names (`runtime`). Facts are [`fact_stand_in`]'s.
fn runtime_standins(runtime: &BTreeSet<String>) -> Vec<(String, Value)> {
    runtime.iter().map(|n| (n.clone(), unknown())).collect()
}

/// `ansible_facts` before the run: a fact rdeploy gathers (or a host's interface, whose
/// names are only known on the host) is an [`Unknown`]; a fact Ansible gathers and rdeploy
/// does not is an error naming it; any other key is undefined, as in Ansible.
#[derive(Debug, Clone, Copy)]
struct FactsStandIn;

impl Object for FactsStandIn {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let Some(k) = key.as_str() else {
            // A computed key (`ansible_facts[item]`) is only known at run time.
            return Some(unknown());
        };
        // Undefined, so `default()` guards it; the message names it as not gathered.
        (crate::exec::facts::fact_names().any(|f| f == k)
            || ["gather_subset", "module_setup"].contains(&k)
            || crate::exec::facts::may_be_interface(k)
            || crate::modules::bridge::sets_fact(k))
        .then(unknown)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }
}

/// Facts before the run, for a host's own variables and for `hostvars[...]`: `ansible_facts`
/// (see [`FactsStandIn`]), each fact rdeploy gathers as `ansible_NAME`, and `ansible_<iface>`
/// (interface names are only known on the host).
fn fact_stand_in(name: &str) -> Option<Value> {
    if name == "ansible_facts" {
        return Some(Value::from_object(FactsStandIn));
    }
    let fact = name.strip_prefix("ansible_")?;
    (crate::exec::facts::fact_names().any(|f| f == fact)
        || crate::exec::facts::may_be_interface(fact))
    .then(unknown)
}

/// The value that stands in for a run-time name.
pub fn unknown() -> Value {
    Value::from_object(Unknown(UNKNOWN_DEPTH))
}

/// True for errors the check reports: syntax errors, undefined variables, unknown filters,
/// tests and functions (a lookup plugin or option rdeploy does not have). Other errors (a
/// filter refusing an [`Unknown`]) may be artefacts of the stand-ins and are left to the run.
pub fn reportable(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::SyntaxError
            | ErrorKind::UndefinedError
            | ErrorKind::UnknownFilter
            | ErrorKind::UnknownTest
            | ErrorKind::UnknownFunction
    )
}

/// Checks every template of every play for the play's hosts. All problems are returned.
pub fn templates(
    inv: &Inventory,
    pb: &Playbook,
    plan: &Plan,
    settings: &Settings,
) -> Result<(), Diagnostics> {
    // Lookups are checked, not run: nothing on the controller is read, run or written.
    let env = Arc::new(template::plan_environment(unknown()));
    let mut runtime: BTreeSet<String> = pb.runtime_names();
    let (fact_names, opening) = templated_fact_names(pb, &env);
    runtime.extend(fact_names);
    // Hosts that ran a task setting names unknown before the run, in an earlier play.
    let mut open_hosts: BTreeSet<String> = BTreeSet::new();
    let mut errors = Diagnostics::new();
    delegates(inv, pb, &mut errors);
    let dynamic = pb.plays.iter().any(crate::plan::build::changes_inventory);
    // Hosts earlier plays targeted: the run keeps them (and their facts) in `hostvars`.
    let mut earlier: indexmap::IndexSet<String> = indexmap::IndexSet::new();
    for (play, planned) in pb.plays.iter().zip(&plan.plays) {
        if planned.hosts.is_empty() {
            continue;
        }
        let shared = play_stack(inv, pb, play, &planned.hosts, settings, false);
        let stacks = host_stacks(inv, &shared, &planned.hosts);
        let layers: IndexMap<String, Arc<Vec<template::Layer>>> = stacks
            .iter()
            .map(|(h, s)| (h.clone(), Arc::new(s.layers())))
            .collect();
        let others: Vec<String> = earlier
            .iter()
            .filter(|h| !layers.contains_key(*h))
            .cloned()
            .collect();
        let mut all_layers = layers.clone();
        for (h, s) in host_stacks(inv, &shared, &others) {
            all_layers.insert(h, Arc::new(s.layers()));
        }
        earlier.extend(planned.hosts.iter().cloned());
        // Other hosts' facts and registered results are only known at run time, as this
        // host's are: `hostvars[h]['ansible_hostname']` stands in for them the same way,
        // also for the hosts of earlier plays (gathered there, read here).
        let hostvars = HostVars::with_stand_ins(
            all_layers,
            Arc::clone(&env),
            runtime_standins(&runtime),
            fact_stand_in,
        );
        let mut magic = play_magic(
            inv,
            &planned.hosts,
            planned.batches.first().map_or(&[][..], |b| b.as_slice()),
        );
        if dynamic {
            // `add_host`/`group_by` make groups at run time: `groups` is known only then.
            for (k, v) in magic.iter_mut() {
                if k == "groups" {
                    *v = unknown();
                }
            }
        }
        let mut opened = false;
        for host in representatives(inv, &planned.hosts) {
            let Some(base) = layers.get(host) else {
                continue;
            };
            let mut c = Checker {
                env: &env,
                base: Arc::clone(base),
                hostvars: if dynamic {
                    Value::from_object(AddedHostVars(hostvars.to_value()))
                } else {
                    hostvars.to_value()
                },
                magic: &magic,
                runtime: &runtime,
                errors: &mut errors,
                scope_vars: Vec::new(),
                role_stack: Vec::new(),
                spec_required: Vec::new(),
                loop_names: Vec::new(),
                opening: &opening,
                open: open_hosts.contains(host.as_str()),
            };
            c.play(play);
            opened |= c.open;
        }
        if opened {
            // The names such a task set stay with its hosts for the rest of the run.
            open_hosts.extend(planned.hosts.iter().cloned());
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.sorted())
    }
}

/// A literal `delegate_to` must name a host of the inventory or `localhost` (the run refuses
/// any other name; Ansible would try to connect to it as it stands), found before earlier
/// batches are deployed. A playbook that adds hosts at run time (`add_host`) is left to the
/// run.
fn delegates(inv: &Inventory, pb: &Playbook, errors: &mut Diagnostics) {
    let mut targets: Vec<Node> = Vec::new();
    let mut adds_hosts = false;
    for play in &pb.plays {
        play.for_each_task(&mut |t| {
            adds_hosts |= matches!(
                t.action.module.as_str(),
                "add_host" | "ansible.builtin.add_host"
            );
            if let Some(n) = &t.keywords.delegate_to {
                targets.push(n.clone());
            }
        });
    }
    if adds_hosts {
        return;
    }
    for n in &targets {
        let Kind::Str { value, .. } = &n.kind else {
            continue;
        };
        let name = value.trim();
        if name.contains("{{")
            || name.contains("{%")
            || crate::inventory::LOCALHOST_NAMES.contains(&name)
            || inv.hosts.contains_key(name)
        {
            continue;
        }
        errors.push(
            Diagnostic::at(
                &n.loc,
                format!("delegate_to '{name}': no host of the inventory is called that"),
            )
            .note("add it to the inventory, with its address in ansible_host"),
        );
    }
}

/// The names `set_fact` tasks with a templated key set (`"{{ item }}": moo` over a literal
/// list, `"{{ item.key }}={{ ... }}"` with `with_dict`), where the key and its loop can be
/// rendered before the run from literal values and the play's and task's own `vars:`. A key
/// that depends on anything else sets names only known at run time: their uses must be
/// guarded (`default`, `is defined`) to pass the check.
fn templated_fact_names(
    pb: &Playbook,
    env: &Environment<'static>,
) -> (BTreeSet<String>, BTreeSet<Loc>) {
    let mut out = BTreeSet::new();
    let mut opening = BTreeSet::new();
    for play in &pb.plays {
        play.for_each_task(&mut |t| {
            if crate::modules::canonical_name(&t.action.module) == "include_vars"
                && include_vars_unknown(t)
            {
                opening.insert(t.loc.clone());
            }
            if crate::modules::canonical_name(&t.action.module) != "set_fact" {
                return;
            }
            let keys: Vec<&(String, Node)> = t
                .action
                .args
                .iter()
                .filter(|(k, _)| template::has_template(k))
                .collect();
            if keys.is_empty() {
                return;
            }
            let mut vars = serde_json::Map::new();
            for (k, v) in play.keywords.vars.iter().chain(&t.keywords.vars) {
                vars.insert(k.clone(), v.to_json());
            }
            let items: Vec<Option<serde_json::Value>> = match &t.loop_over {
                None => vec![None],
                Some(l) => static_loop_items(env, l, &vars)
                    .into_iter()
                    .map(Some)
                    .collect(),
            };
            let loop_var = loop_vars(t).into_iter().next().unwrap_or_default();
            // No item known before the run (or none at all): the names are unknown.
            let mut known = !items.is_empty();
            for item in items {
                let mut ctx = vars.clone();
                if let Some(i) = item {
                    ctx.insert(loop_var.clone(), i);
                }
                let ctx = template::json_to_value(&serde_json::Value::Object(ctx));
                for (k, n) in &keys {
                    match template::render_str(env, k, &ctx, &n.loc) {
                        Ok(name) if crate::playbook::keywords::is_identifier(&name) => {
                            out.insert(name);
                        }
                        _ => known = false,
                    }
                }
            }
            if !known {
                opening.insert(t.loc.clone());
            }
        });
    }
    (out, opening)
}

/// True when an `include_vars` sets names only known at run time: its `name:` is a
/// template, a `dir:` with templated arguments, or a file whose directory, or whole name, is a
/// template (`"{{ item }}"` over `with_first_found`: any file anywhere). A file name with a
/// literal part (`"{{ ansible_os_family }}.yml"`) is known by the names of the files it can
/// stand for (see the loader).
fn include_vars_unknown(t: &Task) -> bool {
    let tmpl = |n: &Node| n.as_str().is_some_and(template::has_template);
    if let Some(n) = t.action.arg("name") {
        return tmpl(n);
    }
    if t.action.arg("dir").is_some() {
        return t.action.args.iter().any(|(_, n)| tmpl(n));
    }
    let Some(file) = t
        .action
        .free_form
        .as_ref()
        .or_else(|| t.action.arg("file"))
        .and_then(Node::as_str)
    else {
        return false;
    };
    if !template::has_template(file) {
        return false;
    }
    let (dir, base) = file.trim().rsplit_once('/').unwrap_or(("", file.trim()));
    template::has_template(dir) || template_literal_text(base).trim().is_empty()
}

/// `s` without its `{{ ... }}` and `{% ... %}` parts (an unclosed one ends it).
fn template_literal_text(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{").or_else(|| rest.find("{%")) {
        out.push_str(&rest[..start]);
        let close = if rest[start..].starts_with("{{") {
            "}}"
        } else {
            "%}"
        };
        match rest[start..].find(close) {
            Some(end) => rest = &rest[start + end + 2..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// A loop's items when they can be known before the run (see [`templated_fact_names`]).
fn static_loop_items(
    env: &Environment<'static>,
    l: &crate::playbook::model::Loop,
    vars: &serde_json::Map<String, serde_json::Value>,
) -> Vec<serde_json::Value> {
    use crate::playbook::model::LoopKind;
    use serde_json::Value as Json;
    let ctx = template::json_to_value(&Json::Object(vars.clone()));
    let Ok(v) = template::render_value(env, &l.items.to_json(), &ctx, &l.items.loc) else {
        return Vec::new();
    };
    match (l.kind, v) {
        (LoopKind::Loop | LoopKind::WithList, Json::Array(a)) => a,
        (LoopKind::WithItems | LoopKind::Lookup("items"), Json::Array(a)) => a
            .into_iter()
            .flat_map(|i| match i {
                Json::Array(inner) => inner,
                other => vec![other],
            })
            .collect(),
        (LoopKind::WithItems, s @ Json::String(_)) => vec![s],
        (LoopKind::Lookup("dict"), Json::Object(m)) => m
            .into_iter()
            .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
            .collect(),
        _ => Vec::new(),
    }
}

/// One host of each kind: hosts whose variables have the same names (and the same groups)
/// cannot differ in what is undefined, so one of them speaks for all.
fn representatives<'a>(inv: &Inventory, hosts: &'a [String]) -> Vec<&'a String> {
    let mut seen: BTreeMap<Vec<String>, &'a String> = BTreeMap::new();
    for h in hosts {
        let Some(host) = inv.hosts.get(h) else {
            continue;
        };
        let mut key: Vec<String> = host
            .group_vars
            .keys()
            .chain(host.host_vars.keys())
            .cloned()
            .collect();
        key.sort();
        key.push("\u{0}groups".into());
        key.extend(host.groups.iter().cloned());
        seen.entry(key).or_insert(h);
    }
    seen.into_values().collect()
}

/// Walks one play for one host, with the variables in scope at each point.
struct Checker<'a> {
    env: &'a Arc<Environment<'static>>,
    base: Arc<Vec<template::Layer>>,
    hostvars: Value,
    magic: &'a [(String, Value)],
    runtime: &'a BTreeSet<String>,
    errors: &'a mut Diagnostics,
    /// Block, import and include vars in scope (tier 6), outermost first.
    scope_vars: Vec<(String, serde_json::Value)>,
    /// Role instances entered (their defaults, vars and params), outermost first.
    role_stack: Vec<&'a RoleRef>,
    /// Loop variables of enclosing `include_tasks` loops.
    loop_names: Vec<String>,
    /// Required options of the argument specs of the roles entered: when one is undefined,
    /// the role's validation task fails the host before any of its tasks, so its tasks
    /// never see it undefined (stood in for by [`Unknown`]).
    spec_required: Vec<String>,
    /// Tasks that set variables whose names are only known at run time (a templated
    /// `set_fact` key over run-time values, `include_vars` of a file found at run time).
    opening: &'a BTreeSet<Loc>,
    /// True once such a task was passed for this host (here or in an earlier play): from
    /// then on a name nothing defines may be one of them, and is not refused as undefined.
    open: bool,
}

/// The `required` options of a role's argument spec validation task (its first task).
fn spec_required(r: &RoleRef) -> Vec<String> {
    let Some(TaskItem::Task(t)) = r.role.tasks.first() else {
        return Vec::new();
    };
    if crate::modules::canonical_name(&t.action.module) != "validate_argument_spec" {
        return Vec::new();
    }
    let Some(options) = t.action.arg("argument_spec").and_then(Node::as_map) else {
        return Vec::new();
    };
    options
        .iter()
        .filter(|(_, o)| {
            o.get("required")
                .is_some_and(|r| crate::modules::spec::ansible_bool(r) == Some(true))
        })
        .filter_map(|(k, _)| k.scalar_string())
        .collect()
}

impl<'a> Checker<'a> {
    fn play(&mut self, play: &'a Play) {
        // Names are not checked: Ansible shows a name that does not render, never fails on it.
        let ctx = self.ctx(&[], None);
        self.syntax_only(&play.keywords.vars);
        for vf in &play.vars_files {
            self.template(Some(&vf.node), &ctx);
            if let Some(vars) = &vf.vars {
                self.syntax_only(vars);
            }
        }
        self.template(play.release_label.as_ref(), &ctx);
        for n in play.probe_templates() {
            self.template(Some(n), &ctx);
        }
        self.items(&play.pre_tasks);
        for r in &play.roles {
            self.role(r);
        }
        self.items(&play.tasks);
        self.items(&play.post_tasks);
        // Role handlers are checked with their role instance's variables, in `role`.
        for h in &play.handlers {
            self.task(&h.task);
        }
        self.items(&play.rollback);
    }

    /// A role instance's tasks and handlers, with its own defaults, vars and parameters in
    /// scope (a second instance of the same role sees only its own).
    fn role(&mut self, r: &'a RoleRef) {
        self.role_stack.push(r);
        let required = spec_required(r);
        let outer = self.spec_required.len();
        self.spec_required.extend(required);
        for (_, n) in r.role.defaults.iter().chain(&r.role.vars) {
            self.syntax_one(n);
        }
        if self.enter(&r.keywords) {
            for d in &r.role.dependencies {
                self.role(d);
            }
            self.items(&r.role.tasks);
            for h in &r.role.handlers {
                self.task(&h.task);
            }
            self.leave(&r.keywords);
        }
        self.spec_required.truncate(outer);
        self.role_stack.pop();
    }

    fn items(&mut self, items: &'a [TaskItem]) {
        for it in items {
            match it {
                TaskItem::Task(t) => self.task(t),
                TaskItem::Block(b) => {
                    if self.enter(&b.keywords) {
                        self.items(&b.block);
                        self.items(&b.rescue);
                        self.items(&b.always);
                        self.leave(&b.keywords);
                    }
                }
                TaskItem::ImportTasks(i) => {
                    if self.enter(&i.keywords) {
                        self.items(&i.tasks);
                        self.leave(&i.keywords);
                    }
                }
                TaskItem::ImportRole(r) => self.role(r),
            }
        }
    }

    /// Enters a block/import/role scope: checks its keywords, pushes its vars, and says
    /// whether its `when:` can be true for this host.
    fn enter(&mut self, k: &'a Keywords) -> bool {
        self.syntax_only(&k.vars);
        self.scope_vars
            .extend(k.vars.iter().map(|(n, v)| (n.clone(), v.to_json())));
        let ctx = self.ctx(&[], None);
        self.keyword_templates(k, &ctx);
        let ok = self.conditions(&k.when, &ctx);
        if !ok {
            self.leave(k);
        }
        ok
    }

    fn leave(&mut self, k: &Keywords) {
        let n = self.scope_vars.len().saturating_sub(k.vars.len());
        self.scope_vars.truncate(n);
    }

    fn task(&mut self, t: &'a Task) {
        let mut own_loop = loop_vars(t);
        self.syntax_only(&t.keywords.vars);
        if let Some(first) = own_loop.first_mut()
            && template::has_template(first)
        {
            // A templated `loop_var`: the name it gives here, from the task's variables.
            let outer = self.ctx(&t.keywords.vars, None);
            let loc = t
                .loop_control
                .as_ref()
                .and_then(|c| c.loop_var.as_ref())
                .map_or_else(|| t.loc.clone(), |n| n.loc.clone());
            match template::render_str(self.env, first, &outer, &loc) {
                Ok(n) => *first = n,
                Err(d) => {
                    self.errors.push(d);
                    return;
                }
            }
        }
        let ctx = self.ctx(&t.keywords.vars, Some(&own_loop));
        // A task that may set names unknown before the run opens the check even when its
        // `when:` cannot be decided here (`when: not lookup('varnames', '^' + item.key)`).
        let opening = self.opening.contains(&t.loc);
        if !self.conditions(&t.keywords.when, &ctx) {
            self.open |= opening;
            return;
        }
        if let Some(l) = &t.loop_over {
            // The list itself is rendered without the loop variable it defines.
            let outer = self.ctx(&t.keywords.vars, None);
            self.template(Some(&l.items), &outer);
        }
        if let Some(lc) = &t.loop_control {
            self.template(lc.label.as_ref(), &ctx);
        }
        self.keyword_templates(&t.keywords, &ctx);
        for n in t.notify.iter() {
            let _ = n;
        }
        self.args(t, &ctx);
        for e in t.changed_when.iter().chain(&t.failed_when).chain(&t.until) {
            self.expression(e, &ctx);
        }
        if opening {
            self.open = true;
        }
        // An include's own vars and those of its `apply:` reach what it includes.
        let include_vars = t
            .keywords
            .vars
            .iter()
            .chain(t.apply.iter().flat_map(|a| &a.vars))
            .map(|(n, v)| (n.clone(), v.to_json()));
        match &t.included {
            Some(Included::Tasks { tasks, .. }) => {
                let saved = self.scope_vars.len();
                self.scope_vars.extend(include_vars);
                let before = self.loop_names.len();
                self.loop_names.extend(own_loop);
                self.items(tasks);
                self.loop_names.truncate(before);
                self.scope_vars.truncate(saved);
            }
            Some(Included::Role(r)) => {
                let saved = self.scope_vars.len();
                self.scope_vars.extend(include_vars);
                self.role(r);
                self.scope_vars.truncate(saved);
            }
            _ => {}
        }
    }

    fn args(&mut self, t: &Task, ctx: &Value) {
        let module = t.action.module.as_str();
        for (name, node) in &t.action.args {
            if module == "set_fact" && template::has_template(name) {
                let key = Node {
                    kind: Kind::Str {
                        value: name.clone(),
                        quoted: true,
                    },
                    loc: node.loc.clone(),
                    tag: None,
                };
                self.template(Some(&key), ctx);
            }
            let bare = matches!(
                (module, name.as_str()),
                ("assert", "that") | ("debug", "var")
            );
            if bare {
                match &node.kind {
                    Kind::Seq(items) => items.iter().for_each(|n| self.expression(n, ctx)),
                    _ => self.expression(node, ctx),
                }
            } else {
                self.template(Some(node), ctx);
            }
        }
        self.template(t.action.free_form.as_ref(), ctx);
        if module == "template"
            && let Some(src) = &t.action.local_src
        {
            // The names Ansible's `template` adds for its source (see exec's template_vars).
            let ctx = minijinja::context! {
                template_host => unknown(),
                template_path => unknown(),
                template_fullpath => unknown(),
                template_destpath => unknown(),
                template_uid => unknown(),
                ansible_managed => template::ANSIBLE_MANAGED,
                ..ctx.clone()
            };
            self.template_file(src, &ctx);
        }
    }

    /// The contents of a `template:` source file.
    fn template_file(&mut self, path: &Path, ctx: &Value) {
        let file: Arc<str> = Arc::from(path.display().to_string());
        match crate::yaml::read_text(path, &file, 16 * 1024 * 1024) {
            Ok(text) => {
                if self.report(template::check_render_file(self.env, &text, ctx, &file)) {
                    for d in template::check_names_file(self.env, &text, &file) {
                        self.errors.push(d);
                    }
                }
            }
            Err(d) => self.errors.push(d),
        }
    }

    fn keyword_templates(&mut self, k: &Keywords, ctx: &Value) {
        for n in [
            &k.become_user,
            &k.become_method,
            &k.connection,
            &k.remote_user,
            &k.delegate_to,
        ]
        .into_iter()
        .flatten()
        .chain(&k.environment)
        {
            self.template(Some(n), ctx);
        }
        for v in [
            &k.r#become,
            &k.no_log,
            &k.ignore_errors,
            &k.ignore_unreachable,
            &k.check_mode,
            &k.diff,
        ]
        .into_iter()
        .flatten()
        {
            if let Val::Template(n) = v {
                self.template(Some(n), ctx);
            }
        }
    }

    /// Evaluates `when:` conditions; false when one is false (the task is not rendered for
    /// this host, as in Ansible). An error is reported and also stops the walk there.
    fn conditions(&mut self, when: &[Node], ctx: &Value) -> bool {
        for w in when {
            match &w.kind {
                Kind::Bool(false) => return false,
                Kind::Str { value, .. } => match template::check_expr(self.env, value, ctx, &w.loc)
                {
                    Ok(v) => {
                        if !v.is_true() {
                            return false;
                        }
                    }
                    Err((kind, d)) => {
                        if reportable(kind) {
                            self.errors.push(d);
                        } else {
                            self.unreached_names(value, true, &w.loc);
                        }
                        return false;
                    }
                },
                _ => {}
            }
        }
        true
    }

    fn expression(&mut self, n: &Node, ctx: &Value) {
        if let Some(s) = n.as_str() {
            let r = template::check_expr(self.env, s, ctx, &n.loc).map(|_| ());
            if self.report(r) {
                self.unreached_names(s, true, &n.loc);
            }
        }
    }

    /// Every templated string inside `node`.
    fn template(&mut self, node: Option<&Node>, ctx: &Value) {
        let Some(node) = node else { return };
        match &node.kind {
            Kind::Str { value, .. }
                if template::has_template(value) && node.tag.as_deref() != Some("unsafe") =>
            {
                let r = template::check_render(self.env, value, ctx, &node.loc);
                if self.report(r) {
                    self.unreached_names(value, false, &node.loc);
                }
            }
            Kind::Seq(items) => items.iter().for_each(|n| self.template(Some(n), ctx)),
            Kind::Map(entries) => {
                for (k, v) in entries {
                    self.template(Some(k), ctx);
                    self.template(Some(v), ctx);
                }
            }
            _ => {}
        }
    }

    /// Variable definitions are rendered lazily, when used; here only their syntax is checked.
    fn syntax_only(&mut self, vars: &[(String, Node)]) {
        for (_, n) in vars {
            self.syntax_one(n);
        }
    }

    fn syntax_one(&mut self, n: &Node) {
        match &n.kind {
            Kind::Str { value, .. } if template::has_template(value) => {
                if let Err(d) = template::referenced_vars(self.env, value, &n.loc) {
                    self.errors.push(d);
                }
            }
            Kind::Seq(items) => items.iter().for_each(|i| self.syntax_one(i)),
            Kind::Map(entries) => entries.iter().for_each(|(_, v)| self.syntax_one(v)),
            _ => {}
        }
    }

    /// Reports what the check found; true when the render stopped on an error that may be
    /// an artefact of the stand-ins (left to the run), so what follows it was not checked.
    fn report(&mut self, r: Result<(), (ErrorKind, Diagnostic)>) -> bool {
        // A variable whose template reads itself (`a: "{{ b }}"`, `b: "{{ a }}"`) fails
        // whatever the stand-ins: caught here, before the run.
        match r {
            Ok(()) => false,
            Err((kind, d)) if reportable(kind) || d.message.contains("recursive loop detected") => {
                self.errors.push(d);
                false
            }
            Err(_) => true,
        }
    }

    /// After a render the stand-ins stopped (`'^' + item`), the filters, tests and lookups
    /// the rest of `source` names are still checked, by name.
    fn unreached_names(&mut self, source: &str, in_expr: bool, loc: &Loc) {
        for d in template::check_names(self.env, source, in_expr, loc) {
            self.errors.push(d);
        }
    }

    /// The context at this point: the host's base layers, then role-scoped and block/task
    /// vars, then stand-ins for run-time names and loop variables.
    fn ctx(&self, task_vars: &[(String, Node)], own_loop: Option<&Vec<String>>) -> Value {
        let own_loop: Vec<String> = self
            .loop_names
            .iter()
            .chain(own_loop.into_iter().flatten())
            .cloned()
            .collect();
        let mut layers: Vec<template::Layer> = (*self.base).clone();
        for r in &self.role_stack {
            let mut s = VarStack::new();
            role_vars(r, &mut s);
            for (i, l) in s.layers().into_iter().enumerate() {
                layers[i].extend(l);
            }
        }
        let task_tier = &mut layers[Tier::Task as usize];
        for (k, v) in &self.scope_vars {
            task_tier.insert(k.clone(), VarValue::Template(v.clone()));
        }
        for (k, n) in task_vars {
            task_tier.insert(k.clone(), VarValue::of_node(n));
        }
        let role = self
            .role_stack
            .last()
            .map(|r| (r.role.path.display().to_string(), r.name.clone()));
        let lazy = LazyVars::new(layers, Arc::clone(self.env));
        let mut extra: Vec<(String, Value)> = vec![("hostvars".into(), self.hostvars.clone())];
        extra.extend(self.magic.iter().cloned());
        if let Some((p, name)) = role {
            extra.push(("role_path".into(), Value::from(p)));
            extra.push(("role_name".into(), Value::from(name.clone())));
            extra.push(("ansible_role_name".into(), Value::from(name)));
        }
        extra.push(("ansible_search_path".into(), unknown()));
        for (name, v) in runtime_standins(self.runtime)
            .into_iter()
            .chain(own_loop.into_iter().map(|n| (n, unknown())))
            .chain(self.spec_required.iter().map(|n| (n.clone(), unknown())))
        {
            if !lazy.contains(&name) {
                extra.push((name, v));
            }
        }
        let fallback: fn(&str) -> Option<Value> = if self.open {
            |name| fact_stand_in(name).or_else(|| Some(unknown()))
        } else {
            fact_stand_in
        };
        lazy.with_values(extra).with_fallback(fallback).to_value()
    }
}
