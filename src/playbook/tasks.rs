//! Tasks, blocks and handlers: finding the module among a task's keys, its arguments
//! (mapping, `key=value` text, free form, `args:`, `action:`/`local_action:`), loops, and the
//! static includes (`import_tasks`, literal `include_tasks`, `import_role`/`include_role`,
//! `include_vars`).
//!
//! Owns the task-level keyword dispatch and the "which key is the module" decision. It must
//! not render templates: a templated include name is kept for the executor.

use std::path::{Path, PathBuf};

use super::args::split_kv;
use super::keywords::{
    self, Level, distance, is_unsupported, unknown_message, unsupported_message,
};
use super::load::{Ctx, Loader, parent_dir};
use super::model::{
    Action, Block, Handler, ImportTasks, IncludeSite, Included, Keywords, Loop, LoopControl,
    LoopKind, RoleRef, Task, TaskItem,
};
use super::roles::RoleFiles;
use super::values;
use crate::diag::{Diagnostic, Loc, did_you_mean};
use crate::modules::spec::{is_template, shown};
use crate::modules::{self, ModuleSpec, canonical_name};
use crate::yaml::{Kind, Node};

/// The lookup plugin a `with_NAME` task key names, if rdeploy has it (`with_items` and
/// `with_list` are handled as their own loop kinds).
fn with_lookup(key: &str) -> Option<&'static str> {
    let name = crate::template::lookups::canonical(key.strip_prefix("with_")?);
    crate::template::lookups::SUPPORTED
        .iter()
        .find(|s| **s == name && !matches!(name, "items" | "list"))
        .copied()
}

/// Task-only keys that make no sense on `import_tasks` / `import_role` (they are not tasks).
const NOT_ON_IMPORT: &[&str] = &[
    "loop",
    "with_items",
    "with_list",
    "loop_control",
    "register",
    "notify",
    "changed_when",
    "failed_when",
    "until",
    "retries",
    "delay",
];

fn str_node(s: &str, at: &Node) -> Node {
    Node {
        kind: Kind::Str {
            value: s.to_string(),
            quoted: true,
        },
        loc: at.loc.clone(),
        tag: at.tag.clone(),
    }
}

impl Loader<'_> {
    /// One entry of a task list: a task, a block, or an import.
    pub(super) fn task_item(&mut self, node: &Node, ctx: &Ctx, level: Level) -> Option<TaskItem> {
        if node.as_map().is_none() {
            self.err(
                &node.loc,
                format!("a task must be a mapping, found {}", node.type_name()),
            );
            return None;
        }
        if node.get("block").is_some() {
            return self
                .block(node, ctx, level)
                .map(|b| TaskItem::Block(Box::new(b)));
        }
        let mut ok = true;
        for (k, _) in node.as_map().unwrap_or_default() {
            if let Some(key @ ("rescue" | "always")) = k.as_str() {
                self.err(
                    &k.loc,
                    format!("'{key}' is only allowed in a block, next to 'block'"),
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let mark = self.errors.len();
        let task = self.task(node, ctx, level);
        if task.is_some() || !ctx.conditional || level != Level::Task || self.errors.len() == mark {
            return task;
        }
        // In a file loaded under a condition, a task rdeploy cannot run fails only on a host
        // that runs it: its own `when:` false skips it, as Ansible never looks at it then.
        let own = self.errors.split_off(mark);
        match self.stand_in(node, ctx, level) {
            Some(mut stub) => {
                stub.deferred = own;
                Some(TaskItem::Task(Box::new(stub)))
            }
            None => {
                self.errors.extend(own);
                None
            }
        }
    }

    /// A task with `node`'s keywords (`name`, `when`, `tags`, `loop`...) and nothing to run:
    /// what stands for a task whose module or arguments rdeploy refuses, in a file loaded
    /// under a condition. `None` when its keywords are wrong too.
    fn stand_in(&mut self, node: &Node, ctx: &Ctx, level: Level) -> Option<Task> {
        let allowed = level.allowed();
        let entries = node.as_map()?;
        let mut kept: Vec<(Node, Node)> = entries
            .iter()
            .filter(|(k, _)| {
                k.as_str().is_some_and(|k| {
                    allowed.contains(&k) && !matches!(k, "args" | "action" | "local_action")
                })
            })
            .cloned()
            .collect();
        let at = node.loc.clone();
        let text = |s: &str| Node {
            kind: crate::yaml::Kind::Str {
                value: s.to_string(),
                quoted: false,
            },
            loc: at.clone(),
            tag: None,
        };
        kept.push((
            text("fail"),
            Node {
                kind: crate::yaml::Kind::Map(vec![(text("msg"), text("not supported by rdeploy"))]),
                loc: at.clone(),
                tag: None,
            },
        ));
        let stub = Node {
            kind: crate::yaml::Kind::Map(kept),
            loc: at.clone(),
            tag: node.tag.clone(),
        };
        let mark = self.errors.len();
        match self.task(&stub, ctx, level) {
            Some(TaskItem::Task(t)) if self.errors.len() == mark => Some(*t),
            _ => {
                self.errors.truncate(mark);
                None
            }
        }
    }

    fn block(&mut self, node: &Node, ctx: &Ctx, level: Level) -> Option<Block> {
        let before = self.errors.len();
        let mut b = Block {
            loc: node.loc.clone(),
            name: None,
            block: Vec::new(),
            rescue: Vec::new(),
            always: Vec::new(),
            keywords: Keywords::default(),
            notify: Vec::new(),
            role: ctx.role.as_ref().map(|r| r.name.clone()),
        };
        let allowed = Level::Block.allowed();
        let inner = Ctx {
            conditional: ctx.conditional || node.get("when").is_some(),
            collections: self
                .collections_of(node)
                .unwrap_or_else(|| ctx.collections.clone()),
            ..ctx.clone()
        };
        for (k, v) in node.as_map().unwrap_or_default() {
            let Some(key) = self.key_str(k) else { continue };
            match key {
                "block" => b.block = self.task_list(v, &inner, key, level),
                "rescue" => b.rescue = self.task_list(v, &inner, key, level),
                "always" => b.always = self.task_list(v, &inner, key, level),
                "name" => b.name = values::text(&mut self.errors, key, v),
                "notify" => b.notify = values::names(&mut self.errors, key, v),
                _ if allowed.contains(&key) => self.keyword(&mut b.keywords, key, v),
                _ if modules::lookup(key).is_some() => self.err(
                    &k.loc,
                    format!("a block cannot have a module ('{key}'); move the task into 'block:'"),
                ),
                _ => self.bad_key(k, key, Level::Block),
            }
        }
        (self.errors.len() == before).then_some(b)
    }

    /// A task mapping (not a block).
    fn task(&mut self, node: &Node, ctx: &Ctx, level: Level) -> Option<TaskItem> {
        let before = self.errors.len();
        let allowed = level.allowed();
        let mut kw = Keywords::default();
        let mut name = None;
        let mut loop_over: Option<Loop> = None;
        let mut loop_control = None;
        let mut register = None;
        let mut notify = Vec::new();
        let mut listen = Vec::new();
        let (mut changed_when, mut failed_when, mut until) = (Vec::new(), Vec::new(), Vec::new());
        let (mut retries, mut delay) = (None, None);
        let (mut async_secs, mut poll) = (None, None);
        let mut args_kw: Option<&Node> = None;
        // (key node, written name, value, from action:/local_action:)
        let mut actions: Vec<(&Node, String, &Node, Option<bool>)> = Vec::new();
        let mut unknown: Vec<(&Node, &Node)> = Vec::new();
        let mut task_only_keys: Vec<&Node> = Vec::new();

        for (k, v) in node.as_map().unwrap_or_default() {
            let Some(key) = self.key_str(k) else { continue };
            if allowed.contains(&key) {
                if NOT_ON_IMPORT.contains(&key) {
                    task_only_keys.push(k);
                }
                let e = &mut self.errors;
                match key {
                    "name" => name = values::text(e, key, v),
                    "args" => args_kw = Some(v),
                    "action" | "local_action" => {
                        actions.push((k, key.to_string(), v, Some(key == "local_action")));
                    }
                    "loop" | "with_items" | "with_list" => {
                        let kind = match key {
                            "loop" => LoopKind::Loop,
                            "with_items" => LoopKind::WithItems,
                            _ => LoopKind::WithList,
                        };
                        self.set_loop(&mut loop_over, k, key, kind, v);
                    }
                    "loop_control" => loop_control = self.loop_control(v),
                    "register" => register = values::var_name(e, key, v),
                    "notify" => notify = values::names(e, key, v),
                    "listen" => listen = values::names(e, key, v),
                    "changed_when" => changed_when = values::conditions(e, key, v),
                    "failed_when" => failed_when = values::conditions(e, key, v),
                    "until" => until = values::conditions(e, key, v),
                    "retries" => retries = values::integer(e, key, v, 0),
                    "delay" => delay = values::integer(e, key, v, 0),
                    "async" => async_secs = values::integer(e, key, v, 0),
                    "poll" => {
                        poll = values::integer(e, key, v, 0);
                        if let Some(crate::playbook::Val::Lit { value: 0, loc }) = &poll {
                            e.push(crate::diag::Diagnostic::at(
                                loc,
                                "'poll: 0' (start the task in the background, then ask async_status) is not supported by rdeploy; rdeploy waits for an async task: give poll a number of seconds, or leave poll and async out".to_string(),
                            ));
                        }
                    }
                    _ => self.keyword(&mut kw, key, v),
                }
            } else if matches!(level, Level::Task | Level::Handler)
                && let Some(plugin) = with_lookup(key)
            {
                task_only_keys.push(k);
                self.set_loop(&mut loop_over, k, key, LoopKind::Lookup(plugin), v);
            } else if modules::lookup(key).is_some() {
                actions.push((k, key.to_string(), v, None));
            } else if canonical_name(key) == "import_playbook" {
                self.err(
                    &k.loc,
                    "import_playbook is only allowed at the top level of a playbook, not in a task list",
                );
            } else if canonical_name(key) == "include" {
                self.err(
                    &k.loc,
                    "'include' was removed from Ansible; use include_tasks or import_tasks",
                );
            } else if is_unsupported(key, level) {
                self.err(&k.loc, unsupported_message(key));
            } else {
                unknown.push((k, v));
            }
        }

        // A module name without a collection is also looked for in the `collections` list.
        let search = self
            .collections_of(node)
            .unwrap_or_else(|| ctx.collections.clone());
        let mut unresolved = Vec::new();
        for (k, v) in unknown {
            match in_collections(k.as_str().unwrap_or_default(), &search) {
                Some(full) => actions.push((k, full, v, None)),
                None => unresolved.push(k),
            }
        }

        // Unknown keys: a mistyped keyword or a mistyped (or missing) module?
        let has_action = !actions.is_empty();
        let mut reported_module = false;
        for k in unresolved {
            let key = k.as_str().unwrap_or_default();
            if let Some(d) = self.unsupported_module(key, k, ctx) {
                reported_module = true;
                self.errors.push(d);
                continue;
            }
            let kw_s = did_you_mean(key, allowed.iter().copied());
            let mod_s = did_you_mean(key, modules::names());
            let kw_d = kw_s.map(|s| distance(key, s));
            let mod_d = mod_s.map(|s| distance(key, s));
            let as_keyword = match (kw_d, mod_d) {
                (Some(a), Some(b)) => a < b || (a == b && has_action),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => has_action || reported_module,
            };
            if as_keyword {
                self.err(&k.loc, unknown_message(key, level));
            } else {
                reported_module = true;
                let msg = match mod_s {
                    Some(s) => format!("unknown module '{key}', did you mean '{s}'?"),
                    None => format!("unknown module '{key}'"),
                };
                let mut d = crate::diag::Diagnostic::at(&k.loc, msg);
                if key.contains('.') {
                    d = d.note("rdeploy runs only its ansible.builtin modules (see `rdeploy doc`)");
                }
                self.errors.push(d);
            }
        }
        if actions.len() > 1 {
            let names: Vec<&str> = actions.iter().map(|a| a.1.as_str()).collect();
            let loc = actions[1].0.loc.clone();
            self.err(
                &loc,
                format!("conflicting action statements: {}", names.join(", ")),
            );
            return None;
        }
        let Some((akey, written, avalue, from_action)) = actions.pop() else {
            if !reported_module {
                self.err(&node.loc, "no module or action found in task");
            }
            return None;
        };

        // The module, and the value holding its arguments.
        let (spec, module_loc, value): (&'static ModuleSpec, Loc, Option<Node>) = match from_action
        {
            None => (
                modules::lookup(&written)?,
                akey.loc.clone(),
                Some(avalue.clone()),
            ),
            Some(local) => {
                if local {
                    if kw.delegate_to.is_some() {
                        self.err(
                            &akey.loc,
                            "'local_action' and 'delegate_to' cannot be used together",
                        );
                    }
                    kw.delegate_to = Some(str_node("localhost", akey));
                }
                let (mut mname, rest) = self.action_value(&written, avalue)?;
                if modules::lookup(&mname).is_none()
                    && let Some(full) = in_collections(&mname, &search)
                {
                    mname = full;
                }
                match modules::lookup(&mname) {
                    Some(s) => (s, avalue.loc.clone(), rest),
                    None => {
                        let msg = match did_you_mean(&mname, modules::names()) {
                            Some(s) => format!("unknown module '{mname}', did you mean '{s}'?"),
                            None => format!("unknown module '{mname}'"),
                        };
                        self.err(&avalue.loc, msg);
                        return None;
                    }
                }
            }
        };
        let mut action = self.action(spec, module_loc, value.as_ref(), args_kw);
        action.local_src = self.local_src(&action, ctx);

        let mut task = Task {
            loc: node.loc.clone(),
            name,
            action,
            keywords: kw,
            loop_over,
            loop_control,
            register,
            notify,
            changed_when,
            failed_when,
            until,
            retries,
            delay,
            async_secs,
            poll,
            role: ctx.role.as_ref().map(|r| r.name.clone()),
            included: None,
            deferred: Vec::new(),
            when_reached: false,
            apply: None,
        };
        if !listen.is_empty() {
            self.listen.insert(task.loc.clone(), listen);
        }

        if matches!(spec.name, "import_role" | "include_role") {
            // `role:` is Ansible's other spelling of `name:`.
            if task.action.arg("name").is_none()
                && let Some(k) = task.action.args.iter_mut().find(|(k, _)| k == "role")
            {
                k.0 = "name".to_string();
            }
            for k in ["allow_duplicates", "public"] {
                if let Some(n) = task.action.arg(k).filter(|n| is_template(n)) {
                    self.err(
                        &n.loc,
                        format!(
                            "'{k}' of {} as a template is not supported by rdeploy; write yes or no",
                            spec.name
                        ),
                    );
                }
            }
        }
        match spec.name {
            "import_tasks" | "import_role" => {
                for k in &task_only_keys {
                    let key = k.as_str().unwrap_or_default();
                    self.err(
                        &k.loc,
                        format!(
                            "'{key}' cannot be used with {} (use {} instead)",
                            spec.name,
                            spec.name.replace("import_", "include_")
                        ),
                    );
                }
                if self.errors.len() != before {
                    return None;
                }
                if spec.name == "import_tasks" {
                    return self.import_tasks(task, ctx, level);
                }
                return self.import_role(task, ctx);
            }
            "include_tasks" | "include_role" => {
                task.apply = self.apply_keywords(&task);
                // A conditional include may load what this fleet never runs (a role's
                // `setup-FreeBSD.yml`): its mistakes wait until it is reached for a host.
                let defer = ctx.conditional || !task.keywords.when.is_empty();
                let sub = Ctx {
                    conditional: defer,
                    ..ctx.clone()
                };
                let mark = self.errors.len();
                let name = if spec.name == "include_tasks" {
                    self.include_file_node(&task)
                } else {
                    task.action.arg("name").cloned()
                };
                task.when_reached = defer || name.as_ref().is_some_and(is_template);
                if name.as_ref().is_some_and(is_template) {
                    task.included =
                        Some(Included::Dynamic(Box::new(self.include_site(ctx, level))));
                } else if spec.name == "include_tasks" {
                    if let Some(file) = name {
                        task.included = self.include_tasks(&file, &sub, level);
                    }
                } else if let Some(r) = self.role_from_task(&task, &sub, Keywords::default()) {
                    task.included = Some(Included::Role(Box::new(r)));
                }
                if defer {
                    task.deferred = self.errors.split_off(mark);
                }
            }
            "include_vars" => task.included = self.include_vars(&task, ctx),
            _ => {}
        }
        (self.errors.len() == before).then(|| TaskItem::Task(Box::new(task)))
    }

    /// `action: copy src=a dest=b` or `action: {module: copy, src: a}`: the module name and
    /// what holds its arguments.
    fn action_value(&mut self, key: &str, v: &Node) -> Option<(String, Option<Node>)> {
        match &v.kind {
            Kind::Map(entries) => {
                let Some(m) = v.get("module").and_then(Node::as_str) else {
                    self.err(&v.loc, format!("'{key}' as a mapping needs a 'module' key"));
                    return None;
                };
                let rest: Vec<(Node, Node)> = entries
                    .iter()
                    .filter(|(k, _)| k.as_str() != Some("module"))
                    .cloned()
                    .collect();
                Some((
                    m.to_string(),
                    Some(Node {
                        kind: Kind::Map(rest),
                        loc: v.loc.clone(),
                        tag: None,
                    }),
                ))
            }
            Kind::Str { value, .. } => {
                let t = value.trim_start();
                let (m, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
                if m.is_empty() {
                    self.err(&v.loc, format!("'{key}' needs a module name"));
                    return None;
                }
                let rest = (!rest.trim().is_empty()).then(|| str_node(rest.trim(), v));
                Some((m.to_string(), rest))
            }
            _ => {
                self.err(
                    &v.loc,
                    format!(
                        "'{key}' must be a module with its arguments, found {}",
                        shown(v)
                    ),
                );
                None
            }
        }
    }

    /// Arguments from the module's value and `args:`, checked against the spec.
    fn action(
        &mut self,
        spec: &'static ModuleSpec,
        module_loc: Loc,
        value: Option<&Node>,
        args_kw: Option<&Node>,
    ) -> Action {
        let mut raw: Vec<(Node, Node)> = Vec::new();
        let mut free: Option<Node> = None;
        if let Some(v) = value {
            match &v.kind {
                Kind::Null => {}
                Kind::Map(entries) => raw = entries.clone(),
                Kind::Str { value: text, .. } => {
                    if matches!(spec.name, "meta" | "include_tasks" | "import_tasks") {
                        free = Some(v.clone());
                    } else if spec.free_form {
                        let take = |k: &str| {
                            spec.arg(k)
                                .is_some_and(|a| a.name != "cmd" && a.name != "argv")
                        };
                        let s = split_kv(text, v, &take, true);
                        if s.args.is_empty() {
                            free = Some(v.clone());
                        } else {
                            raw = s.args;
                            free = s.rest.map(|r| str_node(&r, v));
                        }
                    } else {
                        let s = split_kv(text, v, &|_| true, false);
                        if let Some(w) = s.stray.first() {
                            // The arguments could not be read: checking them would only add
                            // confusing "missing argument" errors.
                            self.err(
                                &v.loc,
                                format!(
                                    "module '{}' takes key=value arguments or a mapping; '{w}' is not key=value",
                                    spec.name
                                ),
                            );
                            return Action {
                                module: spec.name.to_string(),
                                module_loc,
                                args: Vec::new(),
                                free_form: None,
                                local_src: None,
                            };
                        }
                        raw = s.args;
                    }
                }
                Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) if spec.free_form => {
                    free = Some(v.clone());
                }
                _ => self.err(
                    &v.loc,
                    format!(
                        "arguments of module '{}' must be a mapping or key=value text, found {}",
                        spec.name,
                        v.type_name()
                    ),
                ),
            }
        }
        if let Some(a) = args_kw {
            match &a.kind {
                Kind::Null => {}
                Kind::Map(entries) => {
                    for (k, v) in entries {
                        let dup = raw
                            .iter()
                            .any(|(rk, _)| rk.as_str().is_some() && rk.as_str() == k.as_str());
                        if !dup {
                            raw.push((k.clone(), v.clone()));
                        }
                    }
                }
                _ => self.err(
                    &a.loc,
                    format!("'args' must be a mapping, found {}", shown(a)),
                ),
            }
        }
        if spec.name == "unarchive" {
            self.unarchive_copy(&mut raw);
        }
        let args = spec.validate(&module_loc, raw, free.as_ref(), &mut self.errors);
        Action {
            module: spec.name.to_string(),
            module_loc,
            args,
            free_form: free,
            local_src: None,
        }
    }

    /// `unarchive: copy:` is Ansible's older spelling of `remote_src` turned round (`copy:
    /// no` is `remote_src: yes`); the two together are an error, as in Ansible. A literal
    /// `copy` becomes `remote_src`; a templated one is left to the module.
    fn unarchive_copy(&mut self, raw: &mut Vec<(Node, Node)>) {
        let has = |k: &str| raw.iter().any(|(n, _)| n.as_str() == Some(k));
        let Some(i) = raw.iter().position(|(n, _)| n.as_str() == Some("copy")) else {
            return;
        };
        let (key, value) = &raw[i];
        if has("remote_src") {
            self.err(
                &key.loc,
                "unarchive: 'copy' and 'remote_src' are mutually exclusive (copy is the older spelling of remote_src, turned round)",
            );
            raw.remove(i);
            return;
        }
        // A templated `copy` stays: the module reads it once rendered.
        let Some(copy) = crate::modules::spec::ansible_bool(value) else {
            return;
        };
        let loc = key.loc.clone();
        raw[i] = (
            Node {
                kind: Kind::Str {
                    value: "remote_src".into(),
                    quoted: false,
                },
                loc: loc.clone(),
                tag: None,
            },
            Node {
                kind: Kind::Bool(!copy),
                loc: value.loc.clone(),
                tag: None,
            },
        );
    }

    /// Finds the controller file a `copy`/`template`/`unarchive`/`script` task reads, when
    /// it is named literally; a missing one is an error at the name.
    fn local_src(&mut self, action: &Action, ctx: &Ctx) -> Option<PathBuf> {
        let remote = action
            .arg("remote_src")
            .is_some_and(|n| crate::modules::spec::ansible_bool(n) != Some(false))
            // `unarchive`'s deprecated `copy: no` is `remote_src: yes`.
            || (action.module == "unarchive"
                && action
                    .arg("copy")
                    .is_some_and(|n| crate::modules::spec::ansible_bool(n) != Some(true)));
        let (node, name, sub) = match action.module.as_str() {
            "copy" | "unarchive" if !remote => {
                let n = action.arg("src")?;
                (n, n.scalar_string()?, "files")
            }
            "template" => {
                let n = action.arg("src")?;
                (n, n.scalar_string()?, "templates")
            }
            "script" => {
                let n = action.free_form.as_ref().or_else(|| action.arg("cmd"))?;
                let first = n.scalar_string()?.split_whitespace().next()?.to_string();
                (n, first, "files")
            }
            _ => return None,
        };
        if is_template(node) || name.contains("://") || name.is_empty() {
            return None;
        }
        let expanded = crate::modules::source::expand_home(&name);
        let p = expanded.as_path();
        let mut cands: Vec<PathBuf> = Vec::new();
        if p.is_absolute() {
            cands.push(p.to_path_buf());
        } else {
            if let Some(r) = &ctx.role {
                cands.push(r.path.join(sub).join(p));
                cands.push(r.path.join(p));
            }
            for d in [&ctx.dir, &ctx.play_dir] {
                cands.push(d.join(sub).join(p));
                cands.push(d.join(p));
            }
            let mut seen: Vec<PathBuf> = Vec::new();
            cands.retain(|c| {
                let new = !seen.contains(c);
                seen.push(c.clone());
                new
            });
        }
        if let Some(found) = cands.iter().find(|c| c.exists()) {
            return Some(found.clone());
        }
        let looked: Vec<String> = cands.iter().map(|c| c.display().to_string()).collect();
        self.errors.push(
            crate::diag::Diagnostic::at(
                &node.loc,
                format!(
                    "{} source '{name}' not found on the controller",
                    action.module
                ),
            )
            .note(format!("looked in: {}", looked.join(", "))),
        );
        None
    }

    /// Records a task's loop keyword `key` (`loop`, `with_items`, `with_list`, `with_NAME`).
    fn set_loop(
        &mut self,
        loop_over: &mut Option<Loop>,
        k: &Node,
        key: &str,
        kind: LoopKind,
        v: &Node,
    ) {
        if let Some(prev) = loop_over.as_ref() {
            self.err(
                &k.loc,
                format!(
                    "a task can have only one loop keyword ('loop' or one 'with_*'); it already has '{}'",
                    prev.kind.keyword()
                ),
            );
            return;
        }
        if let LoopKind::Lookup(plugin @ ("nested" | "together")) = kind
            && self.text_terms(v, plugin)
        {
            return;
        }
        let ok = match kind {
            // `with_NAME: value` hands the value to the lookup as its terms, whatever it is.
            LoopKind::Lookup(_) => true,
            _ => matches!(v.kind, Kind::Seq(_)) || is_template(v),
        };
        if ok {
            *loop_over = Some(Loop {
                kind,
                items: v.clone(),
            });
            return;
        }
        if kind == LoopKind::WithItems
            && let Some(name) = v.as_str().filter(|s| keywords::is_identifier(s))
        {
            self.errors.push(
                Diagnostic::at(
                    &v.loc,
                    format!(
                        "'with_items: {name}' loops over the text '{name}' itself (one item), not over the variable {name}: Ansible stopped reading bare variable names here, so rdeploy refuses it rather than guess"
                    ),
                )
                .note(format!("write `with_items: \"{{{{ {name} }}}}\"`")),
            );
            return;
        }
        self.err(
            &v.loc,
            format!(
                "'{key}' must be a list or a template that gives one, found {}",
                shown(v)
            ),
        );
    }

    /// `with_nested`/`with_together` take lists: a term written as plain text
    /// (`with_nested: [listvar1, [1, 2]]`) is refused, true when one was. Ansible 2.19 loops
    /// over its characters (`l`, `i`, `s`, ...), never over the variable of that name, which
    /// only Ansible 1 read; rdeploy refuses it rather than guess, as for `with_items: name`.
    fn text_terms(&mut self, v: &Node, plugin: &str) -> bool {
        let terms: Vec<&Node> = match &v.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![v],
        };
        let mut found = false;
        for t in terms {
            let Some(text) = t.as_str().filter(|_| !is_template(t)) else {
                continue;
            };
            found = true;
            let d = if keywords::is_identifier(text) {
                Diagnostic::at(
                    &t.loc,
                    format!(
                        "'with_{plugin}' term '{text}' is the text '{text}' itself, not the variable {text}: Ansible loops over its characters ('{}', ...), as it stopped reading bare variable names here; rdeploy refuses it rather than guess",
                        text.chars().next().unwrap_or_default()
                    ),
                )
                .note(format!("write `- \"{{{{ {text} }}}}\"`"))
            } else {
                Diagnostic::at(
                    &t.loc,
                    format!(
                        "'with_{plugin}' term '{text}' is text, not a list: Ansible loops over its characters, which is not supported by rdeploy"
                    ),
                )
                .note("write the term as a list, or a template that gives one")
            };
            self.errors.push(d);
        }
        found
    }

    fn loop_control(&mut self, v: &Node) -> Option<LoopControl> {
        let Some(entries) = v.as_map() else {
            self.err(
                &v.loc,
                format!("'loop_control' must be a mapping, found {}", shown(v)),
            );
            return None;
        };
        let mut lc = LoopControl::default();
        for (k, val) in entries {
            let Some(key) = self.key_str(k) else { continue };
            let e = &mut self.errors;
            match key {
                // A templated name is rendered per host when the loop runs (as in Ansible).
                "loop_var" if is_template(val) => {
                    lc.loop_var = val.as_str().map(|s| crate::playbook::model::Named {
                        name: s.to_string(),
                        loc: val.loc.clone(),
                    })
                }
                "loop_var" => lc.loop_var = values::var_name(e, key, val),
                "index_var" => lc.index_var = values::var_name(e, key, val),
                "label" => lc.label = Some(val.clone()),
                "pause" => lc.pause = values::duration(e, key, val),
                "extended" => lc.extended = values::boolean(e, key, val),
                _ => self.bad_key(k, key, Level::LoopControl),
            }
        }
        Some(lc)
    }

    /// `apply:` of an include: a mapping of block keywords (`tags`, `become`, `run_once`...)
    /// every included task inherits, as Ansible applies them through a block.
    fn apply_keywords(&mut self, task: &Task) -> Option<Keywords> {
        let node = task.action.arg("apply")?;
        let Some(map) = node.as_map() else {
            self.err(
                &node.loc,
                format!(
                    "'apply' must be a mapping of keywords (tags, become, run_once...), found {}",
                    crate::modules::spec::shown(node)
                ),
            );
            return None;
        };
        let allowed = Level::Block.allowed();
        let mut kw = Keywords::default();
        for (k, v) in map {
            let Some(key) = self.key_str(k) else { continue };
            if allowed.contains(&key) {
                self.keyword(&mut kw, key, v);
            } else {
                self.bad_key(k, key, Level::Block);
            }
        }
        Some(kw)
    }

    /// The file name node of an `include_tasks`/`import_tasks`.
    fn include_file_node(&self, t: &Task) -> Option<Node> {
        t.action
            .free_form
            .clone()
            .or_else(|| t.action.arg("file").cloned())
    }

    /// Resolves a literal task file name and loads it; `None` for a template.
    fn task_file_for(
        &mut self,
        file: &Node,
        ctx: &Ctx,
        level: Level,
    ) -> Option<(PathBuf, Vec<TaskItem>)> {
        if is_template(file) {
            return None;
        }
        let name = file.scalar_string().unwrap_or_default();
        let cands = Loader::candidates(ctx, name.trim(), "tasks");
        let Some(path) = Loader::first_file(&cands) else {
            let shown_path = cands
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or(name);
            self.err(&file.loc, format!("task file '{shown_path}' not found"));
            return None;
        };
        let tasks = self.task_file(&path, &file.loc, ctx, level)?;
        Some((path, tasks))
    }

    /// Loads a task file (a list of tasks) in the context of `ctx`'s role and play.
    pub(super) fn task_file(
        &mut self,
        path: &Path,
        at: &Loc,
        ctx: &Ctx,
        level: Level,
    ) -> Option<Vec<TaskItem>> {
        if !self.enter(path, at, "include") {
            return None;
        }
        let out = self.read_yaml(path).map(|doc| {
            let sub = Ctx {
                dir: parent_dir(path),
                play_dir: ctx.play_dir.clone(),
                role: ctx.role.clone(),
                conditional: ctx.conditional,
                collections: ctx.collections.clone(),
            };
            match &doc.kind {
                Kind::Null => Vec::new(),
                Kind::Seq(_) => self.task_list(&doc, &sub, "tasks", level),
                _ => {
                    self.err(
                        &doc.loc,
                        format!(
                            "a task file must be a list of tasks, found {}",
                            doc.type_name()
                        ),
                    );
                    Vec::new()
                }
            }
        });
        self.leave();
        out
    }

    fn import_tasks(&mut self, task: Task, ctx: &Ctx, level: Level) -> Option<TaskItem> {
        let file = self.include_file_node(&task)?;
        if is_template(&file) {
            self.err(
                &file.loc,
                "import_tasks needs a literal file name; use include_tasks for a templated one",
            );
            return None;
        }
        let (path, tasks) = self.task_file_for(&file, ctx, level)?;
        Some(TaskItem::ImportTasks(Box::new(ImportTasks {
            loc: task.loc,
            name: task.name,
            path,
            keywords: task.keywords,
            tasks,
            role: task.role,
        })))
    }

    /// A real Ansible module rdeploy does not carry (`yum`, `community.general.nmcli`), or a
    /// Python module from a `library/` folder: "not supported by rdeploy", never a typo.
    fn unsupported_module(
        &self,
        key: &str,
        k: &Node,
        ctx: &Ctx,
    ) -> Option<crate::diag::Diagnostic> {
        let short = key.rsplit('.').next().unwrap_or(key);
        let mut libraries = vec![ctx.play_dir.join("library")];
        if let Some(r) = &ctx.role {
            libraries.insert(0, r.path.join("library"));
        }
        if let Some(lib) = libraries
            .iter()
            .map(|d| d.join(format!("{short}.py")))
            .find(|p| p.is_file())
        {
            return Some(crate::diag::Diagnostic::at(
                &k.loc,
                format!(
                    "module '{key}' is a Python plugin ({}): not supported by rdeploy",
                    lib.display()
                ),
            ));
        }
        modules::ansible::is_ansible_module(key).then(|| {
            crate::diag::Diagnostic::at(
                &k.loc,
                format!("module '{key}' is not supported by rdeploy"),
            )
            .note(format!(
                "`rdeploy doc` lists the modules rdeploy runs; {}",
                modules::bridge::why_not(key)
            ))
        })
    }

    /// Where an include sits, for loading what it names when it is reached.
    fn include_site(&self, ctx: &Ctx, level: Level) -> IncludeSite {
        IncludeSite {
            dir: ctx.dir.clone(),
            play_dir: ctx.play_dir.clone(),
            role: ctx.role.as_ref().map(|r| (r.name.clone(), r.path.clone())),
            roles_path: self.opts.roles_path.clone(),
            collections_path: self.opts.collections_path.clone(),
            in_handlers: level == Level::Handler,
            collections: ctx.collections.clone(),
        }
    }

    fn include_tasks(&mut self, file: &Node, ctx: &Ctx, level: Level) -> Option<Included> {
        let (path, tasks) = self.task_file_for(file, ctx, level)?;
        Some(Included::Tasks { path, tasks })
    }

    fn import_role(&mut self, task: Task, ctx: &Ctx) -> Option<TaskItem> {
        if task.action.arg("name").is_some_and(is_template) {
            let loc = task.action.module_loc.clone();
            self.err(
                &loc,
                "import_role needs a literal role name; use include_role for a templated one",
            );
            return None;
        }
        let kw = task.keywords.clone();
        self.role_from_task(&task, ctx, kw)
            .map(|r| TaskItem::ImportRole(Box::new(r)))
    }

    /// The role named by an `import_role`/`include_role` task, loaded (literal names only).
    fn role_from_task(&mut self, task: &Task, ctx: &Ctx, keywords: Keywords) -> Option<RoleRef> {
        let name_node = task.action.arg("name")?;
        if is_template(name_node) {
            return None;
        }
        let name = name_node.scalar_string().unwrap_or_default();
        let lit = |k: &str| {
            task.action
                .arg(k)
                .filter(|n| !is_template(n))
                .and_then(Node::scalar_string)
        };
        let files = RoleFiles {
            tasks_from: lit("tasks_from"),
            vars_from: lit("vars_from"),
            defaults_from: lit("defaults_from"),
            handlers_from: lit("handlers_from"),
            params: Vec::new(),
            no_validate: task
                .action
                .arg("rolespec_validate")
                .and_then(crate::modules::spec::ansible_bool)
                == Some(false),
        };
        let role = self.load_role(&name, name_node, ctx, &files)?;
        let (origin, allow_duplicates) = include_identity(task);
        let public = task
            .action
            .arg("public")
            .map_or(canonical_name(&task.action.module) == "import_role", |n| {
                crate::modules::spec::ansible_bool(n) == Some(true)
            });
        Some(RoleRef {
            loc: task.loc.clone(),
            name,
            keywords,
            params: Vec::new(),
            role,
            origin,
            allow_duplicates,
            public,
        })
    }

    fn include_vars(&mut self, task: &Task, ctx: &Ctx) -> Option<Included> {
        if let Some(n) = task.action.arg("name") {
            return n
                .as_str()
                .filter(|_| !is_template(n))
                .map(|s| Included::Vars {
                    path: None,
                    names: vec![s.to_string()],
                });
        }
        if let Some(dir) = task.action.arg("dir") {
            return Some(Included::Vars {
                path: None,
                names: Self::names_in_vars_dir(task, dir, ctx),
            });
        }
        let file = task
            .action
            .free_form
            .clone()
            .or_else(|| task.action.arg("file").cloned())?;
        let name = file.scalar_string().unwrap_or_default();
        if is_template(&file) {
            return Some(Included::Vars {
                path: None,
                names: self.names_in_matching_files(ctx, name.trim()),
            });
        }
        let cands = Loader::candidates(ctx, name.trim(), "vars");
        let Some(path) = Loader::first_file(&cands) else {
            let shown_path = cands
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or(name);
            self.err(&file.loc, format!("vars file '{shown_path}' not found"));
            return None;
        };
        let vars = self.vars_file(&path, "include_vars").unwrap_or_default();
        Some(Included::Vars {
            path: Some(path),
            names: vars.into_iter().map(|(k, _)| k).collect(),
        })
    }

    /// The names `include_vars: dir:` sets, when its arguments are literal (else none: the run
    /// reports what it finds). Files that do not parse as a mapping are passed over.
    fn names_in_vars_dir(task: &Task, dir: &Node, ctx: &Ctx) -> Vec<String> {
        let lit = |k: &str| {
            task.action
                .arg(k)
                .filter(|n| !is_template(n))
                .map(|n| n.to_json())
        };
        if task.action.args.iter().any(|(_, n)| is_template(n)) {
            return Vec::new();
        }
        let Some(d) = dir.as_str() else {
            return Vec::new();
        };
        let mut path = PathBuf::from(d);
        if path.is_relative() {
            path = match &ctx.role {
                Some(r) if d.split('/').next() == Some("vars") => r.path.join(d),
                Some(r) => r.path.join("vars").join(d),
                None => ctx.dir.join(d),
            };
        }
        let list = |k: &str| -> Option<Vec<String>> {
            Some(match lit(k)? {
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect(),
                serde_json::Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
                _ => Vec::new(),
            })
        };
        let how = super::load::VarsDir {
            depth: lit("depth")
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
                .unwrap_or(0) as usize,
            files_matching: lit("files_matching").and_then(|v| v.as_str().map(str::to_string)),
            ignore_files: list("ignore_files").unwrap_or_default(),
            extensions: list("extensions")
                .unwrap_or_else(|| vec!["yaml".into(), "yml".into(), "json".into()]),
            ignore_unknown_extensions: true,
        };
        let skip = ctx.role.as_ref().map(|r| r.path.join("vars/main.yml"));
        let Ok(files) = super::load::vars_dir_files(&path, &how, skip.as_deref()) else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for f in files {
            let Ok(docs) = crate::yaml::load_file(&f, crate::yaml::Limits::default()) else {
                continue;
            };
            if let Some(serde_json::Value::Object(m)) = docs.into_iter().next().map(|n| n.to_json())
            {
                names.extend(m.keys().cloned());
            }
        }
        names
    }

    /// The names set by any vars file a templated `include_vars` name can stand for
    /// (`"{{ ansible_os_family }}.yml"` reads every `*.yml` beside it), so the plan-time check
    /// knows them. Only the file name part may be templated; files that do not parse as a
    /// mapping are passed over silently (the run reports the one actually included).
    fn names_in_matching_files(&mut self, ctx: &Ctx, name: &str) -> Vec<String> {
        let Some(file_re) = template_pattern(name.rsplit('/').next().unwrap_or(name)) else {
            return Vec::new();
        };
        let dir_part = name.rsplit_once('/').map_or("", |(d, _)| d);
        if is_template_text(dir_part) {
            return Vec::new();
        }
        let mut names = Vec::new();
        let mut seen_dirs = Vec::new();
        let probe = if dir_part.is_empty() {
            "x".to_string()
        } else {
            format!("{dir_part}/x")
        };
        for cand in Loader::candidates(ctx, &probe, "vars") {
            let Some(dir) = cand.parent().map(|d| {
                if d.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    d.to_path_buf()
                }
            }) else {
                continue;
            };
            if seen_dirs.contains(&dir) {
                continue;
            }
            seen_dirs.push(dir.clone());
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| file_re.is_match(n))
                        && matches!(
                            p.extension().and_then(|e| e.to_str()),
                            Some("yml" | "yaml" | "json")
                        )
                })
                .collect();
            files.sort();
            for f in files.into_iter().take(200) {
                let mark = self.errors.len();
                if let Some(vars) = self.vars_file(&f, "include_vars") {
                    names.extend(vars.into_iter().map(|(k, _)| k));
                }
                self.errors.truncate(mark);
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// A `handlers:` list (or a role's handlers file): tasks that may `listen`; `import_tasks`
    /// is expanded, each imported handler inheriting the import's keywords.
    pub(super) fn handler_list(&mut self, v: &Node, ctx: &Ctx) -> Vec<Handler> {
        let items = self.task_list(v, ctx, "handlers", Level::Handler);
        let mut out = Vec::new();
        self.handlers_from(items, None, &mut out);
        out
    }

    fn handlers_from(
        &mut self,
        items: Vec<TaskItem>,
        parent: Option<&Keywords>,
        out: &mut Vec<Handler>,
    ) {
        for it in items {
            match it {
                TaskItem::Task(t) => {
                    let mut task = *t;
                    if let Some(p) = parent {
                        task.keywords.inherit(p);
                    }
                    let listen = self.listen.remove(&task.loc).unwrap_or_default();
                    out.push(Handler { task, listen });
                }
                TaskItem::ImportTasks(i) => {
                    let mut kw = i.keywords.clone();
                    if let Some(p) = parent {
                        kw.inherit(p);
                    }
                    self.handlers_from(i.tasks, Some(&kw), out);
                }
                TaskItem::Block(b) => {
                    self.err(&b.loc, "blocks in handlers are not supported by rdeploy")
                }
                TaskItem::ImportRole(r) => self.err(
                    &r.loc,
                    "import_role in handlers is not supported by rdeploy",
                ),
            }
        }
    }
}

/// The role identity an `import_role`/`include_role` task gives ([`RoleRef::origin`]: its
/// `*_from` files) and whether it runs again where the same instance already ran (its
/// `allow_duplicates`, default yes).
pub fn include_identity(task: &Task) -> (String, bool) {
    let allow = task
        .action
        .arg("allow_duplicates")
        .is_none_or(|n| crate::modules::spec::ansible_bool(n) != Some(false));
    let from: Vec<String> = ["tasks_from", "vars_from", "defaults_from", "handlers_from"]
        .iter()
        .map(|k| {
            task.action
                .arg(k)
                .and_then(Node::scalar_string)
                .unwrap_or_default()
        })
        .collect();
    (format!("include:{}", from.join(":")), allow)
}

/// What a dynamic include loaded when it was reached for a host.
#[derive(Debug)]
pub enum Loaded {
    /// `include_tasks`: the file and its tasks.
    Tasks(PathBuf, Vec<TaskItem>),
    /// `include_role`: the role.
    Role(Box<RoleRef>),
}

/// The role files an `include_role` asks for instead of `main` (rendered for the host).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FromFiles {
    /// `tasks_from`.
    pub tasks_from: Option<String>,
    /// `vars_from`.
    pub vars_from: Option<String>,
    /// `defaults_from`.
    pub defaults_from: Option<String>,
    /// `handlers_from`.
    pub handlers_from: Option<String>,
    /// `rolespec_validate: false`.
    pub no_validate: bool,
}

/// Loads what a dynamic include names, at run time, exactly as the loader loads a literal one
/// before the run: the file (`include_tasks`) or role (`include_role`, with `from`) is found
/// from where the include was written, parsed and checked. `name` is the rendered name; `at`
/// the include's position. Every mistake comes back, each at its `PATH:LINE:COL`.
pub fn load_dynamic(
    site: &IncludeSite,
    module: &str,
    name: &str,
    from: &FromFiles,
    at: &Loc,
) -> Result<Loaded, crate::diag::Diagnostics> {
    let opts = super::LoadOptions {
        roles_path: site.roles_path.clone(),
        collections_path: site.collections_path.clone(),
        ..Default::default()
    };
    let mut l = Loader::new(&opts);
    let ctx = Ctx {
        dir: site.dir.clone(),
        play_dir: site.play_dir.clone(),
        role: site.role.as_ref().map(|(name, path)| super::load::RoleCtx {
            name: name.clone(),
            path: path.clone(),
        }),
        conditional: false,
        collections: site.collections.clone(),
    };
    let level = if site.in_handlers {
        Level::Handler
    } else {
        Level::Task
    };
    let node = Node {
        kind: Kind::Str {
            value: name.to_string(),
            quoted: true,
        },
        loc: at.clone(),
        tag: None,
    };
    let loaded = if module == "include_role" {
        let files = RoleFiles {
            tasks_from: from.tasks_from.clone(),
            vars_from: from.vars_from.clone(),
            defaults_from: from.defaults_from.clone(),
            handlers_from: from.handlers_from.clone(),
            params: Vec::new(),
            no_validate: from.no_validate,
        };
        l.load_role(name.trim(), &node, &ctx, &files).map(|role| {
            Loaded::Role(Box::new(RoleRef {
                loc: at.clone(),
                name: name.trim().to_string(),
                keywords: Keywords::default(),
                params: Vec::new(),
                role,
                // The executor sets these from the include task (see `include_identity`).
                origin: String::new(),
                allow_duplicates: true,
                public: false,
            }))
        })
    } else {
        l.task_file_for(&node, &ctx, level)
            .map(|(path, tasks)| Loaded::Tasks(path, tasks))
    };
    match loaded {
        Some(x) if l.errors.is_empty() => Ok(x),
        _ => Err(crate::diag::Diagnostics(l.errors).sorted()),
    }
}

fn is_template_text(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// A regex matching every text a file name with `{{ }}`/`{% %}` parts can render to: each
/// templated part matches anything.
fn template_pattern(name: &str) -> Option<regex::Regex> {
    let mut re = String::from("^");
    let mut rest = name;
    while let Some(start) = rest.find("{{").or_else(|| rest.find("{%")) {
        let close = if rest[start..].starts_with("{{") {
            "}}"
        } else {
            "%}"
        };
        re.push_str(&regex::escape(&rest[..start]));
        re.push_str(".*");
        match rest[start..].find(close) {
            Some(end) => rest = &rest[start + end + 2..],
            None => return None,
        }
    }
    re.push_str(&regex::escape(rest));
    re.push('$');
    regex::Regex::new(&re).ok()
}

/// `name` (a module name without a collection) as found in the first collection of `search`
/// that has it, spelled in full (`community.general.ini_file`); `None` when no collection has
/// it, or `name` already names one.
pub(super) fn in_collections(name: &str, search: &[String]) -> Option<String> {
    if name.is_empty() || name.contains('.') {
        return None;
    }
    search
        .iter()
        .map(|c| format!("{c}.{name}"))
        .find(|full| modules::lookup(full).is_some())
}
