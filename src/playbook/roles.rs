//! Roles: `roles:` entries, finding a role directory, loading its `tasks`, `handlers`,
//! `defaults`, `vars` and `meta` files, and its dependencies (with cycle detection).
//!
//! Search order for a role named `NAME`: a collection's `roles/ROLE` for `NS.COLL.ROLE`, or
//! for each collection of the `collections` list (under `<playbook dir>/collections`, then
//! each `collections_path` root); then a path if the name contains `/`; else
//! `<playbook dir>/roles/NAME`, each `roles_path` entry, then (for dependencies) a sibling of
//! the depending role, then `<playbook dir>/NAME`. It records what identifies a role instance
//! and whether it allows duplicates ([`RoleRef::origin`], [`RoleRef::allow_duplicates`]), but
//! must not decide run order or de-duplication: the executor walks [`RoleRef`]s as given.

use std::path::{Path, PathBuf};

use super::keywords::{Level, is_unsupported, unsupported_message};
use super::load::{Ctx, Loader, RoleCtx};
use super::model::{Keywords, Role, RoleRef};
use crate::diag::{Diagnostic, did_you_mean};
use crate::modules::spec::{is_template, shown};
use crate::yaml::{Kind, Node};

/// What a role's `meta/main.yml` gives: dependencies, `allow_duplicates`, `argument_specs`,
/// `collections`.
type RoleMeta = (Vec<RoleRef>, bool, Option<Node>, Option<Vec<String>>);

/// Which files of a role to load instead of `main` (from `import_role`/`include_role`).
#[derive(Clone, Debug, Default)]
pub(super) struct RoleFiles {
    pub tasks_from: Option<String>,
    pub vars_from: Option<String>,
    pub defaults_from: Option<String>,
    pub handlers_from: Option<String>,
    /// The role parameters of a `roles:` entry (checked against the role's argument spec).
    pub params: Vec<(String, Node)>,
    /// `rolespec_validate: false`: no argument spec validation task.
    pub no_validate: bool,
}

/// Keys of `meta/main.yml`.
const META_KEYS: &[&str] = &[
    "galaxy_info",
    "dependencies",
    "allow_duplicates",
    "collections",
    "argument_specs",
];

impl Loader<'_> {
    /// A `roles:` list.
    pub(super) fn roles_list(&mut self, v: &Node, ctx: &Ctx) -> Vec<RoleRef> {
        match &v.kind {
            Kind::Null => Vec::new(),
            Kind::Seq(items) => items
                .iter()
                .filter_map(|it| self.role_entry(it, ctx))
                .collect(),
            _ => {
                self.err(
                    &v.loc,
                    format!("'roles' must be a list of roles, found {}", v.type_name()),
                );
                Vec::new()
            }
        }
    }

    /// One role entry: `app`, or `{role: app, when: ..., tags: ..., vars: ..., param: value}`.
    fn role_entry(&mut self, node: &Node, ctx: &Ctx) -> Option<RoleRef> {
        let before = self.errors.len();
        let mut keywords = Keywords::default();
        let mut params = Vec::new();
        let mut role_key: Option<&Node> = None;
        let mut name_key: Option<&Node> = None;
        match &node.kind {
            Kind::Str { .. } => role_key = Some(node),
            Kind::Map(entries) => {
                let allowed = Level::Role.allowed();
                for (k, v) in entries {
                    let Some(key) = self.key_str(k) else { continue };
                    match key {
                        "role" => role_key = Some(v),
                        "name" => name_key = Some(v),
                        _ if allowed.contains(&key) => self.keyword(&mut keywords, key, v),
                        _ if is_unsupported(key, Level::Role) => {
                            self.err(&k.loc, unsupported_message(key))
                        }
                        _ => {
                            // Other keys are role parameters, unless they look like a typo of
                            // a keyword.
                            if let Some(s) = did_you_mean(key, allowed.iter().copied()) {
                                self.errors.push(
                                    Diagnostic::at(
                                        &k.loc,
                                        format!("unknown role keyword '{key}', did you mean '{s}'?"),
                                    )
                                    .note("role parameters must not look like keywords; put them under 'vars:'"),
                                );
                            } else if !super::keywords::is_identifier(key) {
                                self.err(&k.loc, format!("'{key}' is not a valid variable name"));
                            } else {
                                params.push((key.to_string(), v.clone()));
                            }
                        }
                    }
                }
            }
            _ => {
                self.err(
                    &node.loc,
                    format!(
                        "a role entry must be a name or a mapping, found {}",
                        node.type_name()
                    ),
                );
                return None;
            }
        }
        let Some(name_node) = role_key.or(name_key) else {
            self.err(&node.loc, "role entry has no 'role'");
            return None;
        };
        let Some(name) = name_node.as_str().filter(|s| !s.trim().is_empty()) else {
            self.err(
                &name_node.loc,
                format!("role name must be a string, found {}", shown(name_node)),
            );
            return None;
        };
        let rendered;
        let name = if is_template(name_node) {
            match self.role_name(name) {
                Ok(n) => {
                    rendered = n;
                    rendered.as_str()
                }
                Err(why) => {
                    self.err(
                        &name_node.loc,
                        format!(
                            "a role name in 'roles:' rendered from variables other than \
                             the play's vars, playbook_dir and -e is not supported by rdeploy: \
                             {why}"
                        ),
                    );
                    return None;
                }
            }
        } else {
            name
        };
        let sub = Ctx {
            conditional: ctx.conditional || node.get("when").is_some(),
            ..ctx.clone()
        };
        let files = RoleFiles {
            params: params.clone(),
            ..RoleFiles::default()
        };
        let role = self.load_role(name, name_node, &sub, &files)?;
        (self.errors.len() == before).then(|| RoleRef {
            loc: node.loc.clone(),
            name: name.to_string(),
            keywords,
            params,
            origin: String::new(),
            allow_duplicates: role.allow_duplicates,
            public: true,
            role,
        })
    }

    /// A templated role name in `roles:` rendered as the playbook is read, with what Ansible's
    /// has then that rdeploy has too: the play's `vars:` (a templated one rendered once),
    /// `playbook_dir` and `-e` values.
    fn role_name(&self, name: &str) -> Result<String, String> {
        let env = crate::template::shared_environment();
        let mut vars = self.play_vars.clone();
        vars.extend(self.opts.extra_vars.clone());
        if let Some((_, shown)) = self.chain.first() {
            let dir = super::load::parent_dir(Path::new(shown));
            let dir = if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            };
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            vars.insert(
                "playbook_dir".into(),
                serde_json::Value::from(dir.display().to_string()),
            );
        }
        let ctx = crate::template::json_to_value(&serde_json::Value::Object(vars.clone()));
        for v in vars.values_mut() {
            if let serde_json::Value::String(s) = v
                && crate::template::has_template(s)
                && let Ok(r) = env.render_str(s, ctx.clone())
            {
                *s = r;
            }
        }
        let ctx = crate::template::json_to_value(&serde_json::Value::Object(vars));
        env.render_str(name, ctx)
            .map(|s| s.trim().to_string())
            .map_err(|e| e.to_string())
    }

    /// Where role `name` lives, or an error at `at`.
    fn find_role(&mut self, name: &str, at: &Node, ctx: &Ctx) -> Option<PathBuf> {
        let mut cands: Vec<PathBuf> = Vec::new();
        // A collection's role: `NS.COLLECTION.ROLE`, or a plain name in a collection of the
        // `collections` search list (looked for first, as Ansible does).
        let roots: Vec<PathBuf> = std::iter::once(ctx.play_dir.join("collections"))
            .chain(self.opts.collections_path.iter().cloned())
            .collect();
        let in_collection = |coll: &str, role: &str| -> Vec<PathBuf> {
            let Some((ns, c)) = coll.split_once('.') else {
                return Vec::new();
            };
            roots
                .iter()
                .map(|r| {
                    r.join("ansible_collections")
                        .join(ns)
                        .join(c)
                        .join("roles")
                        .join(role)
                })
                .collect()
        };
        if let Some((coll, role)) = collection_role(name) {
            cands.extend(in_collection(coll, role));
        } else if !name.contains('/') {
            for coll in &ctx.collections {
                cands.extend(in_collection(coll, name));
            }
        }
        if name.contains('/') || Path::new(name).is_absolute() {
            cands.push(ctx.play_dir.join(name));
        } else {
            cands.push(ctx.play_dir.join("roles").join(name));
            cands.extend(self.opts.roles_path.iter().map(|p| p.join(name)));
            if let Some(r) = &ctx.role
                && let Some(parent) = r.path.parent()
            {
                cands.push(parent.join(name));
            }
            cands.push(ctx.play_dir.join(name));
        }
        if let Some(found) = cands.iter().find(|p| p.is_dir()) {
            return Some(found.clone());
        }
        let looked: Vec<String> = cands.iter().map(|p| p.display().to_string()).collect();
        self.errors.push(
            Diagnostic::at(&at.loc, format!("role '{name}' not found"))
                .note(format!("looked in: {}", looked.join(", "))),
        );
        None
    }

    /// Finds and loads a role with its dependencies.
    pub(super) fn load_role(
        &mut self,
        name: &str,
        at: &Node,
        ctx: &Ctx,
        files: &RoleFiles,
    ) -> Option<Role> {
        let path = self.find_role(name, at, ctx)?;
        let canon = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if let Some(i) = self.role_chain.iter().position(|(c, _)| *c == canon) {
            let mut names: Vec<String> = self.role_chain[i..]
                .iter()
                .map(|(_, n)| n.clone())
                .collect();
            names.push(name.to_string());
            self.err(
                &at.loc,
                format!("role dependency cycle: {}", names.join(" -> ")),
            );
            return None;
        }
        self.role_chain.push((canon, name.to_string()));
        let role = self.read_role(name, &path, at, ctx, files);
        self.role_chain.pop();
        Some(role)
    }

    fn read_role(
        &mut self,
        name: &str,
        path: &Path,
        at: &Node,
        ctx: &Ctx,
        files: &RoleFiles,
    ) -> Role {
        crate::template::register_plugin_dir(path);
        let mut rctx = Ctx {
            dir: path.join("tasks"),
            play_dir: ctx.play_dir.clone(),
            role: Some(RoleCtx {
                name: name.to_string(),
                path: path.to_path_buf(),
            }),
            conditional: ctx.conditional,
            collections: ctx.collections.clone(),
        };
        let (dependencies, allow_duplicates, meta_specs, collections) =
            match self.role_file(path, "meta", None, name, at) {
                Some(p) => self.role_meta(&p, &rctx),
                None => (Vec::new(), false, None, None),
            };
        // A role's own `collections` (meta/main.yml) is the search list for its tasks; a
        // collection's role looks in its own collection first.
        if let Some(c) = collections {
            rctx.collections = c;
        }
        if let Some(own) = own_collection(path)
            && !rctx.collections.contains(&own)
        {
            rctx.collections.insert(0, own);
        }
        let specs = self.argument_specs(path, meta_specs);
        let mut tasks = match self.role_file(path, "tasks", files.tasks_from.as_deref(), name, at) {
            Some(p) => {
                let sub = Ctx {
                    dir: super::load::parent_dir(&p),
                    ..rctx.clone()
                };
                self.task_file(&p, &at.loc, &sub, Level::Task)
                    .unwrap_or_default()
            }
            None => Vec::new(),
        };
        let entry = files.tasks_from.as_deref().unwrap_or("main");
        if let Some(node) = specs
            .filter(|_| !files.no_validate)
            .and_then(|s| validation_task(&s, entry, name, path, files))
            && let Some(task) = self.task_item(&node, &rctx, Level::Task)
        {
            tasks.insert(0, task);
        }
        let handlers =
            match self.role_file(path, "handlers", files.handlers_from.as_deref(), name, at) {
                Some(p) => self.role_handlers(&p, &at.loc, &rctx),
                None => Vec::new(),
            };
        let defaults =
            match self.role_file(path, "defaults", files.defaults_from.as_deref(), name, at) {
                Some(p) => self.vars_file(&p, "defaults").unwrap_or_default(),
                None => Vec::new(),
            };
        let vars = match self.role_file(path, "vars", files.vars_from.as_deref(), name, at) {
            Some(p) => self.vars_file(&p, "vars").unwrap_or_default(),
            None => Vec::new(),
        };
        let dir_if = |d: &str| Some(path.join(d)).filter(|p| p.is_dir());
        Role {
            name: name.to_string(),
            path: path.to_path_buf(),
            tasks,
            handlers,
            defaults,
            vars,
            dependencies,
            templates_dir: dir_if("templates"),
            files_dir: dir_if("files"),
            allow_duplicates,
        }
    }

    /// `ROLE/SUB/FROM(.yml|.yaml)`; a missing `main` is fine, a missing `*_from` is an error.
    fn role_file(
        &mut self,
        path: &Path,
        sub: &str,
        from: Option<&str>,
        name: &str,
        at: &Node,
    ) -> Option<PathBuf> {
        let base = from.unwrap_or("main");
        let dir = path.join(sub);
        let cands = [
            dir.join(format!("{base}.yml")),
            dir.join(format!("{base}.yaml")),
            dir.join(base),
        ];
        let found = Loader::first_file(&cands);
        if found.is_none() && from.is_some() {
            self.err(
                &at.loc,
                format!(
                    "role '{name}' has no {sub} file '{base}' (looked for {})",
                    cands[0].display()
                ),
            );
        }
        found
    }

    fn role_handlers(
        &mut self,
        p: &Path,
        at: &crate::diag::Loc,
        rctx: &Ctx,
    ) -> Vec<super::model::Handler> {
        if !self.enter(p, at, "include") {
            return Vec::new();
        }
        let sub = Ctx {
            dir: super::load::parent_dir(p),
            ..rctx.clone()
        };
        let out = match self.read_yaml(p) {
            Some(doc) => self.handler_list(&doc, &sub),
            None => Vec::new(),
        };
        self.leave();
        out
    }

    /// `meta/main.yml`: the dependencies, `allow_duplicates` and `argument_specs`.
    fn role_meta(&mut self, p: &Path, rctx: &Ctx) -> RoleMeta {
        let Some(doc) = self.read_yaml(p) else {
            return (Vec::new(), false, None, None);
        };
        let mut deps = Vec::new();
        let mut allow_duplicates = false;
        let mut specs = None;
        let mut collections = None;
        match &doc.kind {
            Kind::Null => {}
            Kind::Map(entries) => {
                for (k, v) in entries {
                    let Some(key) = self.key_str(k) else { continue };
                    match key {
                        "dependencies" => deps = self.roles_list(v, rctx),
                        "allow_duplicates" => match crate::modules::spec::ansible_bool(v) {
                            Some(b) => allow_duplicates = b,
                            None => self.err(
                                &v.loc,
                                format!("'allow_duplicates' must be a boolean, found {}", shown(v)),
                            ),
                        },
                        "collections" => collections = Some(self.collections(v)),
                        "argument_specs" => specs = Some(v.clone()),
                        _ if META_KEYS.contains(&key) => {}
                        _ => {
                            let msg = match did_you_mean(key, META_KEYS.iter().copied()) {
                                Some(s) => {
                                    format!("unknown role meta key '{key}', did you mean '{s}'?")
                                }
                                None => format!("unknown role meta key '{key}'"),
                            };
                            self.err(&k.loc, msg);
                        }
                    }
                }
            }
            _ => self.err(
                &doc.loc,
                format!("role meta must be a mapping, found {}", doc.type_name()),
            ),
        }
        (deps, allow_duplicates, specs, collections)
    }

    /// The role's argument specs, checked: `meta/argument_specs.yml` (its `argument_specs`
    /// key) when it exists, else `argument_specs` of `meta/main.yml` (`from_meta`), as
    /// Ansible reads them (not merged).
    fn argument_specs(&mut self, path: &Path, from_meta: Option<Node>) -> Option<Node> {
        let meta = path.join("meta");
        let file = Loader::first_file(&[
            meta.join("argument_specs.yml"),
            meta.join("argument_specs.yaml"),
        ]);
        let specs = match file {
            Some(p) => {
                let doc = self.read_yaml(&p)?;
                match &doc.kind {
                    Kind::Null => return None,
                    Kind::Map(_) => doc.get("argument_specs").cloned()?,
                    _ => {
                        self.err(
                            &doc.loc,
                            format!(
                                "an argument spec file must be a mapping with 'argument_specs', found {}",
                                doc.type_name()
                            ),
                        );
                        return None;
                    }
                }
            }
            None => from_meta?,
        };
        let before = self.errors.len();
        match &specs.kind {
            Kind::Null => return None,
            Kind::Map(entries) => {
                for (k, v) in entries {
                    let entry = k.scalar_string().unwrap_or_default();
                    match &v.kind {
                        Kind::Null => {}
                        Kind::Map(_) => {
                            if let Some(o) = v.get("options") {
                                self.check_options(o, &format!("entry point '{entry}'"));
                            }
                        }
                        _ => self.err(
                            &v.loc,
                            format!(
                                "argument spec entry point '{entry}' must be a mapping, found {}",
                                v.type_name()
                            ),
                        ),
                    }
                }
            }
            _ => self.err(
                &specs.loc,
                format!(
                    "'argument_specs' must be a mapping of entry points, found {}",
                    specs.type_name()
                ),
            ),
        }
        (self.errors.len() == before).then_some(specs)
    }

    /// An argument spec's `options` (and nested `options`): each a mapping with a known
    /// `type`/`elements`, a boolean `required`, a list of `choices`/`aliases`.
    fn check_options(&mut self, options: &Node, what: &str) {
        use crate::modules::control::validate_argument_spec::TYPES;
        let entries = match &options.kind {
            Kind::Null => return,
            Kind::Map(entries) => entries,
            _ => {
                self.err(
                    &options.loc,
                    format!(
                        "'options' of {what} must be a mapping of option names, found {}",
                        options.type_name()
                    ),
                );
                return;
            }
        };
        for (k, v) in entries {
            let opt = k.scalar_string().unwrap_or_default();
            if !matches!(v.kind, Kind::Map(_)) {
                self.err(
                    &v.loc,
                    format!(
                        "option '{opt}' of {what} must be a mapping, found {}",
                        v.type_name()
                    ),
                );
                continue;
            }
            for key in ["type", "elements"] {
                let Some(t) = v.get(key).filter(|t| !t.is_null()) else {
                    continue;
                };
                match t.as_str() {
                    Some(name) if TYPES.contains(&name) => {}
                    _ => self.err(
                        &t.loc,
                        format!(
                            "'{key}' of option '{opt}' must be one of {}, found {}",
                            TYPES.join(", "),
                            shown(t)
                        ),
                    ),
                }
            }
            if let Some(r) = v.get("required").filter(|r| !r.is_null()) {
                match crate::modules::spec::ansible_bool(r) {
                    None => self.err(
                        &r.loc,
                        format!(
                            "'required' of option '{opt}' must be a boolean, found {}",
                            shown(r)
                        ),
                    ),
                    Some(true) if v.get("default").is_some_and(|d| !d.is_null()) => self.err(
                        &r.loc,
                        format!(
                            "option '{opt}' is required and has a default: Ansible refuses both"
                        ),
                    ),
                    Some(_) => {}
                }
            }
            for key in [
                "choices",
                "aliases",
                "mutually_exclusive",
                "required_together",
                "required_one_of",
                "required_if",
            ] {
                if let Some(c) = v.get(key).filter(|c| !c.is_null() && c.as_seq().is_none()) {
                    self.err(
                        &c.loc,
                        format!(
                            "'{key}' of option '{opt}' must be a list, found {}",
                            c.type_name()
                        ),
                    );
                }
            }
            if let Some(c) = v
                .get("required_by")
                .filter(|c| !c.is_null() && c.as_map().is_none())
            {
                self.err(
                    &c.loc,
                    format!(
                        "'required_by' of option '{opt}' must be a mapping, found {}",
                        c.type_name()
                    ),
                );
            }
            if let Some(sub) = v.get("options") {
                self.check_options(sub, &format!("option '{opt}'"));
            }
        }
    }
}

/// A string node at `loc`.
fn text(s: &str, loc: &crate::diag::Loc) -> Node {
    Node {
        kind: Kind::Str {
            value: s.to_string(),
            quoted: true,
        },
        loc: loc.clone(),
        tag: None,
    }
}

/// The task Ansible prepends to a role whose entry point has an argument spec:
/// `validate_argument_spec` of the entry point's `options` against the role parameters,
/// tagged `always`, named as Ansible names it. `None` when the entry point has no spec.
fn validation_task(
    specs: &Node,
    entry: &str,
    role: &str,
    path: &Path,
    files: &RoleFiles,
) -> Option<Node> {
    let spec = specs
        .get(entry)
        .filter(|s| s.as_map().is_some_and(|m| !m.is_empty()))?;
    let loc = &spec.loc;
    let mut name = format!("Validating arguments against arg spec '{entry}'");
    if let Some(d) = spec.get("short_description") {
        name.push_str(" - ");
        name.push_str(&d.scalar_string().unwrap_or_else(|| shown(d)));
    }
    let options = spec
        .get("options")
        .filter(|o| !o.is_null())
        .cloned()
        .unwrap_or_else(|| Node {
            kind: Kind::Map(Vec::new()),
            loc: loc.clone(),
            tag: None,
        });
    let map = |entries: Vec<(Node, Node)>| Node {
        kind: Kind::Map(entries),
        loc: loc.clone(),
        tag: None,
    };
    let params = files
        .params
        .iter()
        .map(|(k, v)| (text(k, &v.loc), v.clone()))
        .collect();
    let context = map(vec![
        (text("type", loc), text("role", loc)),
        (text("name", loc), text(role, loc)),
        (text("argument_spec_name", loc), text(entry, loc)),
        (
            text("path", loc),
            text(
                &std::fs::canonicalize(path)
                    .unwrap_or_else(|_| path.to_path_buf())
                    .display()
                    .to_string(),
                loc,
            ),
        ),
    ]);
    let args = map(vec![
        (text("argument_spec", loc), options),
        (text("provided_arguments", loc), map(params)),
        (text("validate_args_context", loc), context),
    ]);
    Some(map(vec![
        (text("name", loc), text(&name, loc)),
        (text("ansible.builtin.validate_argument_spec", loc), args),
        (
            text("tags", loc),
            Node {
                kind: Kind::Seq(vec![text("always", loc)]),
                loc: loc.clone(),
                tag: None,
            },
        ),
    ]))
}

/// `NS.COLLECTION.ROLE` split into the collection (`NS.COLLECTION`) and the role; `None` for
/// any other name.
fn collection_role(name: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = name.split('.').collect();
    let ident =
        |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if parts.len() != 3 || !parts.iter().all(ident) {
        return None;
    }
    let at = parts[0].len() + 1 + parts[1].len();
    Some((&name[..at], parts[2]))
}

/// The collection (`NS.COLLECTION`) a role directory belongs to, when it is
/// `.../ansible_collections/NS/COLLECTION/roles/ROLE`.
fn own_collection(path: &Path) -> Option<String> {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect();
    let n = parts.len();
    (n >= 5 && parts[n - 5] == "ansible_collections" && parts[n - 2] == "roles")
        .then(|| format!("{}.{}", parts[n - 4], parts[n - 3]))
}
