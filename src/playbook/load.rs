//! Loading a playbook: files, `import_playbook`, plays, `vars_files`, and the checks that need
//! the whole play (hosts present, notify targets exist).
//!
//! Owns [`load`], the [`Loader`] that carries the error list and the include chain (for cycle
//! detection) through tasks (`tasks.rs`), roles (`roles.rs`) and probes (`probe.rs`), and the
//! play-level keyword dispatch. Every problem is collected; nothing stops at the first error.
//! It must not render templates, resolve inventory patterns or look at hosts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::keywords::{self, Level, is_unsupported, unknown_message, unsupported_message};
use super::model::{
    Keywords, Named, OnFailure, Order, Play, Playbook, RollbackScope, TaskItem, Val, VarPrompt,
    VarsFile,
};
use super::probe;
use super::values::{self, Errors};
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::modules::spec::{is_template, shown};
use crate::yaml::{self, Kind, Node};

/// Where to look for things the playbook does not contain itself.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Directories searched for roles after `<playbook dir>/roles` (Ansible's `roles_path`).
    pub roles_path: Vec<PathBuf>,
    /// Collection roots (each holding `ansible_collections/NS/NAME`), searched for roles of
    /// collections after `<playbook dir>/collections`.
    pub collections_path: Vec<PathBuf>,
    /// Values given with `-e`: role names in `roles:` may use them, as in Ansible.
    pub extra_vars: serde_json::Map<String, serde_json::Value>,
    /// Names given with `-e` (a `vars_prompt` they answer is not asked).
    pub extra_var_names: Vec<String>,
}

/// Loads, expands and validates the playbook at `path`. Every mistake in the playbook and the
/// files it pulls in statically (imports, roles, literal `include_tasks`, vars files) is
/// reported, sorted by position.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Playbook, Diagnostics> {
    let mut l = Loader::new(opts);
    let plays = l.playbook_file(path, None);
    let errors = Diagnostics(l.errors).sorted();
    errors.into_result(Playbook {
        path: path.to_path_buf(),
        dir: absolute_dir(path),
        plays,
    })
}

/// The playbook's directory as an absolute path (Ansible's `playbook_dir`): a relative
/// `playbook_dir` would point commands on the host at the wrong place.
fn absolute_dir(path: &Path) -> PathBuf {
    let dir = parent_dir(path);
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    std::path::absolute(&dir).unwrap_or(dir)
}

/// Play keywords Ansible renders once per play, with the play's variables (play `vars`,
/// `vars_files`, `vars_prompt`, role defaults and vars, `-e`, `groups`), before any task runs.
pub const PLAY_RENDERED: &[&str] = &[
    "hosts",
    "serial",
    "max_fail_percentage",
    "health",
    "probe",
    "soak",
    "rollback_scope",
];

/// True when play keyword `key` holds a template that must be rendered before the play is
/// planned. In `health`, only the typed fields count (`status`, `max_latency`, ...): a URL or
/// command stays a template rendered per host when the probe runs.
pub fn play_rendered(key: &str, v: &Node) -> bool {
    if key == "health" {
        return v.as_seq().is_some_and(|items| {
            items.iter().any(|it| {
                it.as_map().is_some_and(|m| {
                    m.iter().any(|(k, val)| {
                        k.as_str().is_some_and(|k| probe::PLAY_LEVEL.contains(&k))
                            && has_template_leaf(val)
                    })
                })
            })
        });
    }
    has_template_leaf(v)
}

/// True when a string anywhere in `n` holds template syntax (an `!unsafe` string never does).
pub fn has_template_leaf(n: &Node) -> bool {
    match &n.kind {
        Kind::Str { .. } => is_template(n),
        Kind::Seq(items) => items.iter().any(has_template_leaf),
        Kind::Map(entries) => entries.iter().any(|(_, v)| has_template_leaf(v)),
        _ => false,
    }
}

/// Parses `rendered`, the value of play keyword `key` rendered by `resolve`, into `play` as if
/// it had been written so; the mistakes found, at the positions `rendered` carries.
pub fn apply_rendered(play: &mut Play, key: &str, rendered: &Node) -> Vec<Diagnostic> {
    let opts = LoadOptions::default();
    let mut l = Loader::new(&opts);
    l.play_value(play, key, rendered);
    l.errors
}

/// Reads a variables file named at run time or by a rendered `vars_files` entry (a vault
/// file is decrypted): its variables, or every mistake in it.
pub fn read_vars_file(path: &Path) -> Result<Vec<(String, Node)>, Vec<Diagnostic>> {
    let opts = LoadOptions::default();
    let mut l = Loader::new(&opts);
    let vars = l.vars_file(path, "vars_files");
    match vars {
        Some(v) if l.errors.is_empty() => Ok(v),
        _ => Err(l.errors),
    }
}

/// The directory of a file, `""` for a bare file name.
pub(super) fn parent_dir(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The role whose files are being read.
#[derive(Clone, Debug)]
pub(super) struct RoleCtx {
    pub name: String,
    pub path: PathBuf,
}

/// Where the node being parsed comes from.
#[derive(Clone, Debug)]
pub(super) struct Ctx {
    /// Directory of the file being parsed.
    pub dir: PathBuf,
    /// Directory of the playbook file holding the play.
    pub play_dir: PathBuf,
    /// The role being read, if any.
    pub role: Option<RoleCtx>,
    /// True under a `when:` (a block's, a role's, a conditional include's): what an include
    /// loads here is checked when it is reached, not before the run.
    pub conditional: bool,
    /// The `collections` search list in force (the innermost play, role or block's): where a
    /// module name without a collection is also looked for.
    pub collections: Vec<String>,
}

/// Loader state shared by the play, task, role and probe parsers.
pub(super) struct Loader<'o> {
    pub opts: &'o LoadOptions,
    pub errors: Errors,
    /// Files being read, outermost first (canonical path, path as shown).
    pub chain: Vec<(PathBuf, String)>,
    /// Roles being read, outermost first (canonical path, name).
    pub role_chain: Vec<(PathBuf, String)>,
    /// `listen` of handlers, by task position, until the handler list is assembled.
    pub listen: HashMap<Loc, Vec<Named>>,
    /// The `vars:` of the play being read, as written (for templated role names).
    pub play_vars: serde_json::Map<String, serde_json::Value>,
}

impl<'o> Loader<'o> {
    /// A loader for `opts` (also for files reached at run time: dynamic includes).
    pub(super) fn new(opts: &'o LoadOptions) -> Loader<'o> {
        Loader {
            opts,
            errors: Vec::new(),
            chain: Vec::new(),
            role_chain: Vec::new(),
            listen: HashMap::new(),
            play_vars: serde_json::Map::new(),
        }
    }

    /// Records an error at `loc`.
    pub fn err(&mut self, loc: &Loc, msg: impl Into<String>) {
        self.errors.push(Diagnostic::at(loc, msg));
    }

    /// Starts reading `path`; `false` (and an error at `at`) if that closes a cycle.
    pub fn enter(&mut self, path: &Path, at: &Loc, what: &str) -> bool {
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(i) = self.chain.iter().position(|(c, _)| *c == canon) {
            let mut names: Vec<String> = self.chain[i..].iter().map(|(_, s)| s.clone()).collect();
            names.push(path.display().to_string());
            self.err(at, format!("{what} cycle: {}", names.join(" -> ")));
            return false;
        }
        self.chain.push((canon, path.display().to_string()));
        true
    }

    /// Ends reading the innermost file.
    pub fn leave(&mut self) {
        self.chain.pop();
    }

    /// Parses a YAML file (the first document; `Null` for an empty file).
    pub fn read_yaml(&mut self, path: &Path) -> Option<Node> {
        match yaml::load_file(path, yaml::Limits::default()) {
            Ok(mut docs) => {
                if docs.len() > 1 {
                    let loc = docs[1].loc.clone();
                    self.err(&loc, "expected one YAML document, found several");
                }
                Some(if docs.is_empty() {
                    Node {
                        kind: Kind::Null,
                        loc: Loc::file_start(Arc::from(path.display().to_string())),
                        tag: None,
                    }
                } else {
                    docs.swap_remove(0)
                })
            }
            Err(ds) => {
                self.errors.extend(ds);
                None
            }
        }
    }

    /// The first of `candidates` that is a file.
    pub fn first_file(candidates: &[PathBuf]) -> Option<PathBuf> {
        candidates.iter().find(|p| p.is_file()).cloned()
    }

    /// Where a relative file name used in `ctx` may be: the role's `subdir` first (for role
    /// files), then next to the including file, then next to the playbook.
    pub fn candidates(ctx: &Ctx, name: &str, subdir: &str) -> Vec<PathBuf> {
        let p = Path::new(name);
        if p.is_absolute() {
            return vec![p.to_path_buf()];
        }
        let mut out = Vec::new();
        if let Some(r) = &ctx.role {
            out.push(r.path.join(subdir).join(name));
            out.push(r.path.join(name));
        }
        out.push(ctx.dir.join(name));
        out.push(ctx.play_dir.join(name));
        let mut seen = Vec::new();
        out.retain(|c| {
            if seen.contains(c) {
                false
            } else {
                seen.push(c.clone());
                true
            }
        });
        out
    }

    /// A key that is not allowed at `level`: unsupported Ansible keyword or unknown.
    pub fn bad_key(&mut self, k: &Node, key: &str, level: Level) {
        if is_unsupported(key, level) {
            self.err(&k.loc, unsupported_message(key));
        } else {
            self.err(&k.loc, unknown_message(key, level));
        }
    }

    /// A mapping key as text, or an error.
    pub fn key_str<'n>(&mut self, k: &'n Node) -> Option<&'n str> {
        let s = k.as_str();
        if s.is_none() {
            self.err(
                &k.loc,
                format!("keys here must be strings, found {}", shown(k)),
            );
        }
        s
    }

    /// Parses a keyword shared by several levels into `kw`. The caller checked it is allowed.
    pub fn keyword(&mut self, kw: &mut Keywords, key: &str, v: &Node) {
        let e = &mut self.errors;
        match key {
            "when" => kw.when = values::conditions(e, key, v),
            "tags" => kw.tags = values::tags(e, v),
            "vars" => kw.vars = values::vars(e, key, v),
            "environment" => kw.environment = values::environment(e, v).into_iter().collect(),
            "become" => kw.r#become = values::boolean(e, key, v),
            "become_user" => kw.become_user = values::text(e, key, v),
            "become_method" => kw.become_method = values::text(e, key, v),
            "connection" => {
                kw.connection = values::text(e, key, v);
                if let Some(c) = v.as_str().filter(|c| !crate::template::has_template(c))
                    && crate::exec::host::Connection::parse(c).is_none()
                {
                    let msg =
                        format!("connection '{c}' is not supported by rdeploy (local or ssh)");
                    self.err(&v.loc, msg);
                }
            }
            "remote_user" => kw.remote_user = values::text(e, key, v),
            "port" => kw.port = values::integer(e, key, v, 1),
            "no_log" => kw.no_log = values::boolean(e, key, v),
            "ignore_errors" => kw.ignore_errors = values::boolean(e, key, v),
            "ignore_unreachable" => kw.ignore_unreachable = values::boolean(e, key, v),
            "check_mode" => kw.check_mode = values::boolean(e, key, v),
            "diff" => kw.diff = values::boolean(e, key, v),
            "any_errors_fatal" => kw.any_errors_fatal = values::boolean(e, key, v),
            "delegate_to" => kw.delegate_to = values::text(e, key, v),
            "delegate_facts" => kw.delegate_facts = values::boolean(e, key, v),
            "run_once" => kw.run_once = values::boolean(e, key, v),
            "throttle" => kw.throttle = values::integer(e, key, v, 0),
            "timeout" => kw.timeout = values::integer(e, key, v, 0),
            // Read (and checked) by `collections_of` before the play, block or task's keys.
            "collections" => {}
            // `name` and level-specific keys are handled by the caller.
            _ => {}
        }
    }

    /// `collections`: a list of collection names (`namespace.name`), the search list for
    /// module names written without a collection.
    pub(super) fn collections(&mut self, v: &Node) -> Vec<String> {
        let items: Vec<&Node> = match &v.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for it in items {
            match it.as_str() {
                Some(s) if is_collection_name(s) => out.push(s.to_string()),
                _ => self.err(
                    &it.loc,
                    format!(
                        "'collections' must be a list of collection names (namespace.name), found {}",
                        shown(it)
                    ),
                ),
            }
        }
        out
    }

    /// The `collections` of `node` (a play, block or task mapping), if it has the key.
    pub(super) fn collections_of(&mut self, node: &Node) -> Option<Vec<String>> {
        node.get("collections").map(|v| self.collections(v))
    }

    /// A playbook file: a list of plays and `import_playbook`s.
    fn playbook_file(&mut self, path: &Path, at: Option<&Loc>) -> Vec<Play> {
        let start = Loc::file_start(Arc::from(path.display().to_string()));
        let at_loc = at.cloned().unwrap_or_else(|| start.clone());
        if at.is_some() && !path.is_file() {
            self.err(&at_loc, format!("playbook '{}' not found", path.display()));
            return Vec::new();
        }
        if !self.enter(path, &at_loc, "import") {
            return Vec::new();
        }
        let plays = self.playbook_doc(path);
        self.leave();
        plays
    }

    fn playbook_doc(&mut self, path: &Path) -> Vec<Play> {
        let Some(doc) = self.read_yaml(path) else {
            return Vec::new();
        };
        let dir = parent_dir(path);
        crate::template::register_plugin_dir(&dir);
        let items = match &doc.kind {
            Kind::Seq(items) => items,
            Kind::Null => {
                self.err(&doc.loc, "the playbook is empty: expected a list of plays");
                return Vec::new();
            }
            _ => {
                self.err(
                    &doc.loc,
                    format!(
                        "a playbook must be a list of plays, found {}",
                        doc.type_name()
                    ),
                );
                return Vec::new();
            }
        };
        let ctx = Ctx {
            dir: dir.clone(),
            play_dir: dir,
            role: None,
            conditional: false,
            collections: Vec::new(),
        };
        let mut plays = Vec::new();
        for item in items {
            if item.as_map().is_none() {
                self.err(
                    &item.loc,
                    format!("a play must be a mapping, found {}", item.type_name()),
                );
                continue;
            }
            let import = ["import_playbook", "ansible.builtin.import_playbook"]
                .iter()
                .any(|k| item.get(k).is_some());
            if import {
                plays.extend(self.import_playbook(item, &ctx));
            } else if let Some(p) = self.play(item, &ctx) {
                plays.push(p);
            }
        }
        plays
    }

    fn import_playbook(&mut self, item: &Node, ctx: &Ctx) -> Vec<Play> {
        let mut file: Option<&Node> = None;
        let mut vars = Vec::new();
        let mut tags = Vec::new();
        for (k, v) in item.as_map().unwrap_or_default() {
            let Some(key) = self.key_str(k) else { continue };
            match key {
                "import_playbook" | "ansible.builtin.import_playbook" => file = Some(v),
                "name" => {}
                "vars" => vars = values::vars(&mut self.errors, key, v),
                "tags" => tags = values::tags(&mut self.errors, v),
                _ => self.bad_key(k, key, Level::ImportPlaybook),
            }
        }
        let Some(file) = file else { return Vec::new() };
        let Some(name) = file.as_str().filter(|_| !is_template(file)) else {
            self.err(
                &file.loc,
                format!(
                    "import_playbook needs a literal file name, found {}",
                    shown(file)
                ),
            );
            return Vec::new();
        };
        let path = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            ctx.dir.join(name)
        };
        let mut plays = self.playbook_file(&path, Some(&file.loc));
        for p in &mut plays {
            let mut t = tags.clone();
            t.append(&mut p.keywords.tags);
            p.keywords.tags = t;
            p.keywords.vars.extend(vars.iter().cloned());
        }
        plays
    }

    fn play(&mut self, node: &Node, ctx: &Ctx) -> Option<Play> {
        let mut play = Play {
            loc: node.loc.clone(),
            dir: ctx.dir.clone(),
            name: None,
            hosts: Node {
                kind: Kind::Null,
                loc: node.loc.clone(),
                tag: None,
            },
            vars_files: Vec::new(),
            gather_facts: None,
            gather_subset: None,
            gather_timeout: None,
            serial: None,
            canary: None,
            max_fail_percentage: None,
            order: Order::default(),
            force_handlers: None,
            keywords: Keywords::default(),
            pre_tasks: Vec::new(),
            roles: Vec::new(),
            tasks: Vec::new(),
            post_tasks: Vec::new(),
            handlers: Vec::new(),
            health: Vec::new(),
            probe: Default::default(),
            soak: None,
            on_failure: None,
            rollback_scope: RollbackScope::default(),
            rollback: Vec::new(),
            release_label: None,
            approve: None,
            analysis: None,
            windows: None,
            max_failed_total: None,
            max_unavailable: None,
            vars_prompt: Vec::new(),
            deferred: Vec::new(),
        };
        let before = self.errors.len();
        let mut hosts_seen = false;
        let mut canary_key = None;
        let mut serial_key = None;
        let mut max_failed_per_batch = None;
        let mut max_fail_key = None;
        let mut prompts: Option<&Node> = None;
        let allowed = Level::Play.allowed();
        let ctx = &Ctx {
            collections: self.collections_of(node).unwrap_or_default(),
            ..ctx.clone()
        };
        self.play_vars = node
            .get("vars")
            .and_then(Node::as_map)
            .unwrap_or_default()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.to_json())))
            .collect();
        for (k, v) in node.as_map().unwrap_or_default() {
            let Some(key) = self.key_str(k) else { continue };
            if !allowed.contains(&key) {
                self.bad_key(k, key, Level::Play);
                continue;
            }
            let e = &mut self.errors;
            match key {
                "name" => play.name = values::text(e, key, v),
                _ if PLAY_RENDERED.contains(&key) => {
                    if key == "serial" {
                        serial_key = Some(k.loc.clone());
                    }
                    if key == "max_fail_percentage" {
                        max_fail_key = Some(k.loc.clone());
                    }
                    if key == "hosts" {
                        hosts_seen = true;
                        play.hosts = v.clone();
                    }
                    if play_rendered(key, v) {
                        play.deferred.push((key.to_string(), v.clone()));
                    } else {
                        self.play_value(&mut play, key, v);
                    }
                }
                "vars_files" => play.vars_files = self.vars_files(v, ctx),
                "gather_facts" => play.gather_facts = values::boolean(e, key, v),
                "gather_subset" => {
                    let subset = crate::exec::facts::literal_subset(v);
                    if let Some(Err(m)) = subset.map(|s| crate::exec::facts::groups(&s)) {
                        self.err(&v.loc, m);
                    }
                    play.gather_subset = Some(v.clone());
                }
                "gather_timeout" => play.gather_timeout = Some(v.clone()),
                "order" => {
                    play.order = match values::choice(e, key, v, Order::NAMES) {
                        Some(1) => Order::ReverseInventory,
                        Some(2) => Order::Sorted,
                        Some(3) => Order::ReverseSorted,
                        Some(4) => Order::Shuffle,
                        _ => Order::Inventory,
                    }
                }
                "force_handlers" => play.force_handlers = values::boolean(e, key, v),
                "canary" => {
                    play.canary = values::canary(e, v);
                    canary_key = Some(k.loc.clone());
                }
                "strategy" => {
                    if v.as_str() != Some("linear") {
                        self.err(
                            &v.loc,
                            format!(
                                "strategy {} is not supported by rdeploy: it runs plays like Ansible's linear strategy",
                                shown(v)
                            ),
                        );
                    }
                }
                "pre_tasks" => play.pre_tasks = self.task_list(v, ctx, key, Level::Task),
                "tasks" => play.tasks = self.task_list(v, ctx, key, Level::Task),
                "post_tasks" => play.post_tasks = self.task_list(v, ctx, key, Level::Task),
                "rollback" => play.rollback = self.task_list(v, ctx, key, Level::Task),
                "roles" => play.roles = self.roles_list(v, ctx),
                "handlers" => play.handlers = self.handler_list(v, ctx),
                "on_failure" => {
                    play.on_failure = match values::choice(e, key, v, &["rollback", "halt"]) {
                        Some(1) => Some(OnFailure::Halt),
                        _ => Some(OnFailure::Rollback),
                    }
                }
                "release_label" => play.release_label = values::text(e, key, v),
                "approve" => play.approve = approval(e, v),
                "analysis" => play.analysis = probe::analysis(e, v),
                "windows" => play.windows = values::windows(e, v, &ctx.dir),
                "max_unavailable" => play.max_unavailable = values::max_unavailable(e, v),
                "max_failed" => {
                    if let Some(m) = values::max_failed(e, v) {
                        play.max_failed_total = m.total;
                        if let Some(p) = m.per_batch {
                            max_failed_per_batch = Some((p, k.loc.clone()));
                        }
                    }
                }
                "vars_prompt" => prompts = Some(v),
                _ => self.keyword(&mut play.keywords, key, v),
            }
        }
        if let Some(v) = prompts {
            play.vars_prompt = self.vars_prompt(v);
        }
        if let (Some(c), Some(m)) = (&canary_key, &play.max_unavailable) {
            self.err(
                &m.loc,
                format!(
                    "'max_unavailable' with 'canary' (at {c}) is not supported by rdeploy: canary steps are the batches; use 'serial' with 'max_unavailable'"
                ),
            );
        }
        if let (Some(c), Some(s)) = (&canary_key, &serial_key) {
            self.err(
                c,
                format!(
                    "'canary' and 'serial' cannot be used together (serial at {s}): canary steps are cumulative shares of the hosts, serial steps are batch sizes; keep one"
                ),
            );
        }
        match (max_failed_per_batch, &max_fail_key) {
            (Some((_, at)), Some(other)) => self.err(
                &at,
                format!(
                    "'max_failed: per_batch' and 'max_fail_percentage' (at {other}) are the same budget: keep one"
                ),
            ),
            (Some((p, _)), None) => play.max_fail_percentage = Some(p),
            (None, _) => {}
        }
        if !hosts_seen {
            self.err(&node.loc, "play has no 'hosts'");
        }
        if self.errors.len() == before {
            self.check_notify(&play);
        }
        (self.errors.len() == before).then_some(play)
    }

    /// `vars_prompt` entries, checked. Asking (or taking `-e` or the `default`) happens before
    /// planning, in `resolve`.
    fn vars_prompt(&mut self, v: &Node) -> Vec<VarPrompt> {
        let Some(items) = v.as_seq() else {
            self.err(
                &v.loc,
                format!(
                    "'vars_prompt' must be a list of prompts, found {}",
                    shown(v)
                ),
            );
            return Vec::new();
        };
        const KEYS: &[&str] = &[
            "name",
            "prompt",
            "default",
            "private",
            "confirm",
            "encrypt",
            "salt",
            "salt_size",
            "unsafe",
        ];
        let mut out = Vec::new();
        for it in items {
            let Some(map) = it.as_map() else {
                self.err(
                    &it.loc,
                    format!("a vars_prompt entry must be a mapping, found {}", shown(it)),
                );
                continue;
            };
            let mut entry = VarPrompt {
                loc: it.loc.clone(),
                name: String::new(),
                prompt: None,
                default: None,
                private: true,
                confirm: false,
                unsafe_: false,
            };
            for (k, val) in map {
                let key = k.as_str().unwrap_or_default();
                let flag = |errors: &mut Errors| {
                    values::boolean(errors, key, val).and_then(|b| match b {
                        Val::Lit { value, .. } => Some(value),
                        Val::Template(_) => {
                            errors.push(Diagnostic::at(
                                &val.loc,
                                format!(
                                    "vars_prompt '{key}' must be a literal boolean, found {}",
                                    shown(val)
                                ),
                            ));
                            None
                        }
                    })
                };
                match key {
                    "name" => entry.name = val.as_str().unwrap_or_default().to_string(),
                    "prompt" => entry.prompt = values::text(&mut self.errors, key, val),
                    "default" => entry.default = Some(val.clone()),
                    "private" => entry.private = flag(&mut self.errors).unwrap_or(true),
                    "confirm" => entry.confirm = flag(&mut self.errors).unwrap_or(false),
                    "unsafe" => entry.unsafe_ = flag(&mut self.errors).unwrap_or(false),
                    "encrypt" | "salt" | "salt_size" => self.err(
                        &k.loc,
                        format!("vars_prompt '{key}' is not supported by rdeploy: it cannot hash passwords"),
                    ),
                    _ => self.err(
                        &k.loc,
                        format!("unknown vars_prompt key '{key}' (it takes {})", KEYS.join(", ")),
                    ),
                }
            }
            if !keywords::is_identifier(&entry.name) {
                self.err(
                    &it.loc,
                    "a vars_prompt entry needs 'name:' (a variable name)",
                );
                continue;
            }
            out.push(entry);
        }
        out
    }

    /// A play keyword Ansible renders with the play's variables, written literally (or
    /// rendered by `resolve`): parsed into `play`.
    fn play_value(&mut self, play: &mut Play, key: &str, v: &Node) {
        let e = &mut self.errors;
        match key {
            "hosts" => {
                self.hosts(v);
                play.hosts = v.clone();
            }
            "serial" => play.serial = values::serial(e, v),
            "max_fail_percentage" => play.max_fail_percentage = values::percentage(e, key, v),
            "health" => play.health = probe::health(e, v),
            "probe" => play.probe = probe::settings(e, v),
            "soak" => play.soak = values::duration(e, key, v),
            "rollback_scope" => {
                play.rollback_scope = match values::choice(e, key, v, &["batch", "all"]) {
                    Some(1) => RollbackScope::All,
                    _ => RollbackScope::Batch,
                }
            }
            _ => {}
        }
    }

    fn hosts(&mut self, v: &Node) {
        let empty = |n: &Node| n.as_str().is_some_and(|s| s.trim().is_empty());
        match &v.kind {
            Kind::Null => self.err(&v.loc, "'hosts' is empty"),
            Kind::Str { .. } if empty(v) => self.err(&v.loc, "'hosts' is empty"),
            Kind::Str { .. } => {}
            Kind::Seq(items) if items.is_empty() => self.err(&v.loc, "'hosts' is empty"),
            Kind::Seq(items) => {
                for it in items {
                    if it.as_str().is_none() || empty(it) {
                        self.err(
                            &it.loc,
                            format!("'hosts' entries must be host patterns, found {}", shown(it)),
                        );
                    }
                }
            }
            _ => self.err(
                &v.loc,
                format!(
                    "'hosts' must be a pattern or a list of patterns, found {}",
                    shown(v)
                ),
            ),
        }
    }

    /// A `vars_files` entry that is a list of literal names: the first file of it that exists.
    fn first_vars_file(&mut self, it: &Node, choices: &[Node], ctx: &Ctx) -> Option<VarsFile> {
        let mut tried = Vec::new();
        for c in choices {
            let Some(name) = c.as_str() else {
                self.err(
                    &c.loc,
                    format!(
                        "'vars_files' entries must be file names, found {}",
                        shown(c)
                    ),
                );
                return None;
            };
            let path = if Path::new(name).is_absolute() {
                PathBuf::from(name)
            } else {
                ctx.dir.join(name)
            };
            if path.is_file() {
                let vars = self.vars_file(&path, "vars_files");
                return Some(VarsFile {
                    node: c.clone(),
                    path: Some(path),
                    vars,
                });
            }
            tried.push(path.display().to_string());
        }
        self.err(
            &it.loc,
            format!(
                "none of the vars files in this list exists (looked for {})",
                tried.join(", ")
            ),
        );
        None
    }

    fn vars_files(&mut self, v: &Node, ctx: &Ctx) -> Vec<VarsFile> {
        let items: Vec<&Node> = match &v.kind {
            Kind::Seq(items) => items.iter().collect(),
            Kind::Null => Vec::new(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for it in items {
            if let Kind::Seq(choices) = &it.kind {
                if choices.iter().any(is_template) {
                    // Rendered with the play's variables before planning (`resolve`).
                    out.push(VarsFile {
                        node: it.clone(),
                        path: None,
                        vars: None,
                    });
                    continue;
                }
                // Ansible: a list entry loads the first of its files that exists.
                if let Some(f) = self.first_vars_file(it, choices, ctx) {
                    out.push(f);
                }
                continue;
            }
            let Some(name) = it.as_str() else {
                self.err(
                    &it.loc,
                    format!(
                        "'vars_files' entries must be file names, found {}",
                        shown(it)
                    ),
                );
                continue;
            };
            if is_template(it) {
                out.push(VarsFile {
                    node: it.clone(),
                    path: None,
                    vars: None,
                });
                continue;
            }
            let path = if Path::new(name).is_absolute() {
                PathBuf::from(name)
            } else {
                ctx.dir.join(name)
            };
            if !path.is_file() {
                self.err(&it.loc, format!("vars file '{}' not found", path.display()));
                continue;
            }
            let vars = self.vars_file(&path, "vars_files");
            out.push(VarsFile {
                node: it.clone(),
                path: Some(path),
                vars,
            });
        }
        out
    }

    /// Reads a variables file (a vault file is decrypted by `yaml::read_text`); `None` when it
    /// cannot be read or parsed (the error is recorded).
    pub fn vars_file(&mut self, path: &Path, what: &str) -> Option<Vec<(String, Node)>> {
        let doc = self.read_yaml(path)?;
        if !matches!(doc.kind, Kind::Map(_) | Kind::Null) {
            // The file's content is what is wrong, not the keyword that names it.
            let file = match what {
                "vars_files" => "a vars file",
                "include_vars" => "an include_vars file",
                "defaults" => "a role defaults file",
                _ => "a role vars file",
            };
            self.err(
                &doc.loc,
                format!("{file} must be a mapping, found {}", doc.type_name()),
            );
            return Some(Vec::new());
        }
        Some(values::vars(&mut self.errors, what, &doc))
    }

    /// A task list keyword (`tasks`, `block`, ...): null or a list.
    pub fn task_list(&mut self, v: &Node, ctx: &Ctx, key: &str, level: Level) -> Vec<TaskItem> {
        match &v.kind {
            Kind::Null => Vec::new(),
            Kind::Seq(items) => items
                .iter()
                .filter_map(|it| self.task_item(it, ctx, level))
                .collect(),
            _ => {
                self.err(
                    &v.loc,
                    format!("'{key}' must be a list of tasks, found {}", v.type_name()),
                );
                Vec::new()
            }
        }
    }

    /// Every literal `notify` must name a handler or a `listen` topic of the play. A play
    /// with a dynamic include (templated name) may load handlers only at run time: there, a
    /// name that no loaded handler answers fails the host when it is notified.
    fn check_notify(&mut self, play: &Play) {
        let mut dynamic = false;
        play.for_each_task(&mut |t| {
            dynamic |= matches!(t.included, Some(super::model::Included::Dynamic(_)));
        });
        if dynamic {
            return;
        }
        let mut known: Vec<String> = Vec::new();
        for h in play.all_handlers() {
            match h.task.name.as_ref() {
                Some(n) if is_template(n) => return,
                Some(n) => {
                    let name = n.scalar_string().unwrap_or_default();
                    if let Some(r) = &h.task.role {
                        known.push(format!("{r} : {name}"));
                    }
                    known.push(name);
                }
                None => {}
            }
            known.extend(h.listen.iter().map(|l| l.name.clone()));
        }
        let mut bad: Vec<(Loc, String)> = Vec::new();
        let mut notified: Vec<super::model::Named> = Vec::new();
        play.for_each_task(&mut |t| notified.extend(t.notify.iter().cloned()));
        play.for_each_block(&mut |b| notified.extend(b.notify.iter().cloned()));
        for n in &notified {
            if !n.name.contains("{{") && !known.contains(&n.name) {
                let msg = match crate::diag::did_you_mean(&n.name, known.iter().map(String::as_str))
                {
                    Some(s) => format!("no handler named '{}', did you mean '{s}'?", n.name),
                    None => format!("no handler named '{}' in this play", n.name),
                };
                bad.push((n.loc.clone(), msg));
            }
        }
        for (loc, msg) in bad {
            self.err(&loc, msg);
        }
    }
}

/// How `include_vars: dir:` picks its files (Ansible's `depth`, `files_matching`,
/// `ignore_files`, `extensions`, `ignore_unknown_extensions`).
#[derive(Clone, Debug, Default)]
pub struct VarsDir {
    /// Levels to descend, the directory itself being 1; 0 means no limit.
    pub depth: usize,
    /// Load only file names this regex finds something in.
    pub files_matching: Option<String>,
    /// File names ending with a match of one of these regexes are skipped.
    pub ignore_files: Vec<String>,
    /// Extensions to load (`""` for a file without one); Ansible's default is yaml, yml, json.
    pub extensions: Vec<String>,
    /// Skip a file with another extension instead of failing.
    pub ignore_unknown_extensions: bool,
}

/// The files `include_vars: dir:` loads from `dir`, in Ansible's order (directories by path,
/// files by name within each); `skip` is a role's `vars/main.yml`, never loaded this way.
pub fn vars_dir_files(
    dir: &Path,
    how: &VarsDir,
    skip: Option<&Path>,
) -> Result<Vec<PathBuf>, String> {
    let re = |p: &str| regex::Regex::new(p).map_err(|_| format!("Invalid regular expression: {p}"));
    let matcher = how.files_matching.as_deref().map(re).transpose()?;
    let ignore = how
        .ignore_files
        .iter()
        .map(|p| re(&format!("{p}$")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut dirs = vec![(dir.to_path_buf(), 1usize)];
    let mut i = 0;
    while i < dirs.len() {
        let (d, level) = dirs[i].clone();
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    dirs.push((e.path(), level + 1));
                }
            }
        }
        i += 1;
    }
    dirs.sort();
    let mut out = Vec::new();
    for (d, level) in dirs {
        if how.depth != 0 && level > how.depth {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .flatten()
            .filter(|e| !e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let path = d.join(&name);
            if skip == Some(path.as_path())
                || matcher.as_ref().is_some_and(|m| !m.is_match(&name))
                || ignore.iter().any(|r| r.is_match(&name))
            {
                continue;
            }
            let ext = Path::new(&name)
                .extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !how.extensions.contains(&ext) {
                if how.ignore_unknown_extensions {
                    continue;
                }
                return Err(format!(
                    "{} does not have a valid extension: {}",
                    path.display(),
                    how.extensions.join(", ")
                ));
            }
            out.push(path);
        }
    }
    Ok(out)
}

/// `approve: {before_batch: N, message: TEXT, timeout: DURATION}`.
fn approval(errors: &mut Errors, v: &Node) -> Option<crate::playbook::model::Approval> {
    let Some(entries) = v.as_map() else {
        errors.push(Diagnostic::at(
            &v.loc,
            format!(
                "'approve' must be a mapping (before_batch, message, timeout), found {}",
                v.type_name()
            ),
        ));
        return None;
    };
    let mut before = None;
    let mut message = "Approve the next batch?".to_string();
    let mut timeout = None;
    for (k, val) in entries {
        let key = k.scalar_string().unwrap_or_default();
        match key.as_str() {
            "before_batch" => match values::count(errors, "before_batch", val) {
                Some(n) if n >= 2 => before = usize::try_from(n).ok(),
                Some(_) => errors.push(Diagnostic::at(
                    &val.loc,
                    "'before_batch' must be at least 2: the gate stops the rollout between batches",
                )),
                None => {}
            },
            "message" => match val.scalar_string() {
                Some(m) => message = m,
                None => errors.push(Diagnostic::at(&val.loc, "'message' must be text")),
            },
            "timeout" => timeout = values::duration(errors, "timeout", val),
            other => errors.push(Diagnostic::at(
                &k.loc,
                format!("unknown 'approve' key '{other}': expected before_batch, message, timeout"),
            )),
        }
    }
    match before {
        Some(before_batch) => Some(crate::playbook::model::Approval {
            before_batch,
            message,
            timeout,
        }),
        None => {
            errors.push(Diagnostic::at(&v.loc, "'approve' needs 'before_batch'"));
            None
        }
    }
}

/// Whether `s` is a collection name: `namespace.name`, each part letters, digits and `_`.
fn is_collection_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}
