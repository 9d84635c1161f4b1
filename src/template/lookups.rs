//! Ansible's lookup plugins: `lookup(NAME, ...)`, `query(NAME, ...)` / `q(...)` in templates,
//! and the `with_NAME:` task loops, which are `query(NAME, ...)` over the loop's terms.
//!
//! This file owns the plugins rdeploy has ([`SUPPORTED`]), Ansible's result shaping
//! (`wantlist`, `errors=`), the controller search path for relative names (role `files/` or
//! `templates/`, the role, the playbook directory) and the plan-time stand-in: while the
//! template check runs ([`Mode::Plan`]) no plugin reads a file, runs a command or writes a
//! password file; each returns the stand-in, so only the plugin's name and options are
//! checked before the run.
//!
//! It must not decide which text is a template. The plugins that read controller files or
//! run controller commands (`file`, `template`, `pipe`, `lines`, `password`, `fileglob`,
//! `first_found`, `env`) are only ever reached from text the operator wrote, because data
//! (facts, registered results, file contents) is never rendered (see [`super::lazy`]); what
//! they return is data in turn and is not rendered again. A vault-encrypted file read with
//! `file` is decrypted, as Ansible does, and its plaintext registered for redaction.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, ErrorKind, State, Value};

use super::{json_to_value, value_to_json};

/// The lookup plugins rdeploy has, as `lookup(NAME)` and as `with_NAME`.
pub const SUPPORTED: &[&str] = &[
    "file",
    "template",
    "env",
    "pipe",
    "fileglob",
    "first_found",
    "lines",
    "password",
    "vars",
    "varnames",
    "flattened",
    "items",
    "list",
    "dict",
    "subelements",
    "sequence",
    "indexed_items",
    "together",
    "nested",
];

/// Whether `with_NAME` is a loop rdeploy has.
pub fn is_with_lookup(name: &str) -> bool {
    SUPPORTED.contains(&name)
}

/// When lookups run.
#[derive(Clone, Debug)]
pub enum Mode {
    /// During a run: plugins do their work. `check`: under `--check` the `password` plugin
    /// does not create its file (it returns a fresh password, not stored).
    Run {
        /// `--check`.
        check: bool,
    },
    /// The plan-time template check: plugins are validated (name, options) and return this
    /// stand-in instead of touching the controller.
    Plan(Value),
}

/// Adds `lookup`, `query` and `q` to `env`.
pub fn register(env: &mut Environment<'static>, mode: Mode) {
    let mode = Arc::new(mode);
    let m = Arc::clone(&mode);
    env.add_function(
        "lookup",
        move |state: &State, name: String, terms: Rest<Value>, kwargs: Kwargs| {
            call(&m, state, &name, terms.0, kwargs, false)
        },
    );
    for alias in ["query", "q"] {
        let m = Arc::clone(&mode);
        env.add_function(
            alias,
            move |state: &State, name: String, terms: Rest<Value>, kwargs: Kwargs| {
                call(&m, state, &name, terms.0, kwargs, true)
            },
        );
    }
}

/// How a plugin sees the task: its variables and where relative names are looked up.
pub struct Caller<'a, 'e> {
    /// Variable lookup by name (the task's variables).
    pub var: &'a dyn Fn(&str) -> Option<Value>,
    /// The environment templates are rendered with (for `template`).
    pub env: &'a Environment<'e>,
    /// The whole variable context (for `template`).
    pub context: Value,
    /// `with_first_found`: the subdirectory Ansible picks from the task's action
    /// (`templates`, `vars` or `files`); `None` for `lookup()`/`query()`.
    pub with_subdir: Option<&'static str>,
    /// `--check`.
    pub check: bool,
}

fn call(
    mode: &Mode,
    state: &State,
    name: &str,
    terms: Vec<Value>,
    kwargs: Kwargs,
    query: bool,
) -> Result<Value, Error> {
    // `lookup('ansible.builtin.env', ...)`: the same plugins under their full names.
    let name = canonical(name);
    if !SUPPORTED.contains(&name) {
        return Err(unsupported(name));
    }
    let mut opts: IndexMap<String, Value> = IndexMap::new();
    for k in kwargs.args().map(str::to_string).collect::<Vec<_>>() {
        let v: Value = kwargs.get(&k)?;
        opts.insert(k, v);
    }
    let wantlist = query || opts.shift_remove("wantlist").is_some_and(|v| v.is_true());
    let errors = match opts.shift_remove("errors") {
        None => Errors::Strict,
        Some(v) => match v.as_str() {
            Some("strict") => Errors::Strict,
            Some("warn") => Errors::Warn,
            Some("ignore") => Errors::Ignore,
            _ => {
                return Err(op_err(format!(
                    "lookup('{name}'): errors= must be 'strict', 'warn' or 'ignore', got {v}"
                )));
            }
        },
    };
    check_options(name, &opts)?;
    let check = match mode {
        Mode::Plan(stand_in) => return Ok(stand_in.clone()),
        Mode::Run { check } => *check,
    };
    // The task's variables (`vars` is the whole lazy context in a run); a plain context (tests,
    // `rdeploy` internals) is rebuilt from the names it knows.
    let context = state
        .lookup("vars")
        .filter(|v| !v.is_undefined())
        .unwrap_or_else(|| {
            Value::from_iter(
                state
                    .known_variables()
                    .into_iter()
                    .filter_map(|n| state.lookup(&n).map(|v| (n.to_string(), v))),
            )
        });
    let var = |n: &str| state.lookup(n).filter(|v| !v.is_undefined());
    let caller = Caller {
        var: &var,
        env: state.env(),
        context,
        with_subdir: None,
        check,
    };
    match run(&caller, name, &terms, &opts) {
        Ok(items) => Ok(shape(items, wantlist)),
        Err(e) => match errors {
            Errors::Strict => Err(e),
            Errors::Warn | Errors::Ignore => {
                if matches!(errors, Errors::Warn) {
                    tracing::warn!(plugin = name, "lookup failed, errors=warn: {e}");
                }
                Ok(if wantlist {
                    Value::from(Vec::<Value>::new())
                } else {
                    Value::from(())
                })
            }
        },
    }
}

enum Errors {
    Strict,
    Warn,
    Ignore,
}

/// Ansible's shaping of a lookup's list when `wantlist` is false: empty stays an empty list,
/// one element is that element, several strings are joined with commas, anything else is the
/// list.
fn shape(items: Vec<Value>, wantlist: bool) -> Value {
    if wantlist || items.is_empty() {
        return Value::from(items);
    }
    if items.len() == 1 {
        return items.into_iter().next().unwrap_or_default();
    }
    if items.iter().all(|v| v.as_str().is_some()) {
        let parts: Vec<&str> = items.iter().filter_map(|v| v.as_str()).collect();
        return Value::from(parts.join(","));
    }
    Value::from(items)
}

/// `varnames`: the names of the task's variables matching each term (a Python regular
/// expression, searched anywhere in the name), term after term, in the order the variables
/// are known (as Ansible lists them).
fn varnames(c: &Caller<'_, '_>, terms: &[Value]) -> Result<Vec<Value>, Error> {
    let mut names: Vec<String> = Vec::new();
    if let Ok(keys) = c.context.try_iter() {
        for k in keys {
            if let Some(k) = k.as_str()
                && !names.iter().any(|n| n == k)
            {
                names.push(k.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for t in terms {
        let term = term_str("varnames", t)?;
        let re = regex::Regex::new(&term).map_err(|e| {
            op_err(format!(
                "Unable to use \"{term}\" as a search parameter: {e}"
            ))
        })?;
        out.extend(
            names
                .iter()
                .filter(|n| re.is_match(n))
                .map(|n| Value::from(n.clone())),
        );
    }
    Ok(out)
}

/// A lookup's name as rdeploy carries it: `ansible.builtin.NAME` and `ansible.legacy.NAME`
/// are `NAME`, and so is `community.general.flattened` (the one collection lookup rdeploy
/// carries, which ansible-core also routes `flattened` to).
pub fn canonical(name: &str) -> &str {
    ["ansible.builtin.", "ansible.legacy.", "community.general."]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .filter(|short| !name.starts_with("community.general.") || *short == "flattened")
        .unwrap_or(name)
}

/// `community.general.flattened`: the terms with every list in them flattened, however deep
/// (a list of one list is that list); a `None` or `null` text term ends the list, as in the
/// collection's plugin.
fn flattened(terms: &[Value]) -> Vec<Value> {
    fn one_list(mut v: Value) -> Value {
        while v.kind() == minijinja::value::ValueKind::Seq && v.len() == Some(1) {
            match v.get_item_by_index(0) {
                Ok(inner) if inner.kind() == minijinja::value::ValueKind::Seq => v = inner,
                Ok(inner) => return inner,
                Err(_) => break,
            }
        }
        v
    }
    let mut out = Vec::new();
    for t in terms {
        let t = one_list(t.clone());
        if matches!(t.as_str(), Some("None" | "null")) {
            break;
        }
        if t.kind() == minijinja::value::ValueKind::Seq {
            let items: Vec<Value> = t.try_iter().map(Iterator::collect).unwrap_or_default();
            out.extend(flattened(&items));
        } else {
            out.push(t);
        }
    }
    out
}

/// The options each plugin takes (besides `wantlist` and `errors`).
fn options(name: &str) -> &'static [&'static str] {
    match name {
        "file" => &["lstrip", "rstrip"],
        "env" | "vars" => &["default"],
        "template" => &[
            "template_vars",
            "convert_data",
            "variable_start_string",
            "variable_end_string",
            "comment_start_string",
            "comment_end_string",
            "jinja2_native",
        ],
        "first_found" => &["files", "paths", "skip"],
        "password" => &["length", "chars", "encrypt", "ident", "seed"],
        "sequence" => &["start", "end", "count", "stride", "format"],
        _ => &[],
    }
}

/// Options Ansible has that rdeploy refuses, with the reason.
fn refused_option(name: &str, opt: &str) -> Option<&'static str> {
    match (name, opt) {
        ("template", "variable_start_string" | "variable_end_string")
        | ("template", "comment_start_string" | "comment_end_string") => {
            Some("rdeploy renders every template with Jinja's default delimiters")
        }
        ("template", "jinja2_native") => Some("templates always render to text"),
        ("password", "encrypt" | "ident") => {
            Some("rdeploy cannot hash passwords; use the plain password (or hash it on the host)")
        }
        ("password", "seed") => {
            Some("a seeded password cannot be reproduced outside Python's random module")
        }
        _ => None,
    }
}

fn check_options(name: &str, opts: &IndexMap<String, Value>) -> Result<(), Error> {
    let allowed = options(name);
    for k in opts.keys() {
        if let Some(why) = refused_option(name, k) {
            return Err(refused(format!(
                "lookup('{name}') option '{k}' is not supported by rdeploy: {why}"
            )));
        }
        if !allowed.contains(&k.as_str()) {
            let known = if allowed.is_empty() {
                "it takes none besides wantlist and errors".to_string()
            } else {
                format!("it takes {}", allowed.join(", "))
            };
            return Err(refused(format!(
                "lookup('{name}') has no option '{k}' ({known})"
            )));
        }
    }
    Ok(())
}

fn unsupported(name: &str) -> Error {
    let hint = crate::diag::did_you_mean(name, SUPPORTED.iter().copied())
        .map(|s| format!("; did you mean '{s}'?"))
        .unwrap_or_else(|| format!(" (rdeploy has: {})", SUPPORTED.join(", ")));
    refused(format!(
        "lookup plugin '{name}' is not supported by rdeploy{hint}"
    ))
}

/// A lookup the run would certainly refuse (an unknown plugin or option): the plan-time check
/// reports this kind.
fn refused(msg: String) -> Error {
    Error::new(ErrorKind::UnknownFunction, msg)
}

fn op_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Runs plugin `name` on `terms` with `opts`: the plugin's list, before shaping. Used by
/// `lookup()`/`query()` and by the `with_NAME` loops.
pub fn run(
    c: &Caller<'_, '_>,
    name: &str,
    terms: &[Value],
    opts: &IndexMap<String, Value>,
) -> Result<Vec<Value>, Error> {
    check_options(name, opts)?;
    let opt = |k: &str| opts.get(k).filter(|v| !v.is_none());
    match name {
        "file" => terms
            .iter()
            .map(|t| file(c, &term_str(name, t)?, opt("lstrip"), opt("rstrip")))
            .collect(),
        "template" => terms
            .iter()
            .map(|t| template(c, &term_str(name, t)?, opt("template_vars")))
            .collect(),
        "env" => terms
            .iter()
            .map(|t| env_var(&term_str(name, t)?, opt("default")))
            .collect(),
        "pipe" => terms
            .iter()
            .map(|t| pipe(c, &term_str(name, t)?).map(Value::from))
            .collect(),
        "lines" => {
            let mut out = Vec::new();
            for t in terms {
                let text = pipe_raw(c, name, &term_str(name, t)?)?;
                out.extend(text.lines().map(Value::from));
            }
            Ok(out)
        }
        "fileglob" => {
            let mut out = Vec::new();
            for t in terms {
                out.extend(fileglob(c, &term_str(name, t)?)?);
            }
            Ok(out)
        }
        "first_found" => first_found(c, terms, opts),
        "password" => terms.iter().map(|t| password(c, t, opts)).collect(),
        "vars" => terms
            .iter()
            .map(|t| vars_lookup(c, t, opt("default")))
            .collect(),
        "varnames" => varnames(c, terms),
        "flattened" => Ok(flattened(terms)),
        "items" => Ok(flatten(terms)),
        "list" => Ok(terms.to_vec()),
        "indexed_items" => Ok(flatten(terms)
            .into_iter()
            .enumerate()
            .map(|(i, x)| Value::from(vec![Value::from(i), x]))
            .collect()),
        "dict" => dict(terms),
        "together" => together(terms),
        "nested" => nested(terms),
        "subelements" => subelements(terms),
        "sequence" => sequence(terms, opts),
        other => Err(unsupported(other)),
    }
}

fn term_str(plugin: &str, t: &Value) -> Result<String, Error> {
    match t.as_str() {
        Some(s) => Ok(s.to_string()),
        None if t.is_undefined() => Err(Error::new(
            ErrorKind::UndefinedError,
            format!("lookup('{plugin}') got an undefined term"),
        )),
        None if t.is_number() => Ok(t.to_string()),
        None => Err(op_err(format!(
            "lookup('{plugin}') expects text terms, got {} ({t})",
            t.kind()
        ))),
    }
}

/// Ansible's `_flatten`: list terms are spliced in, anything else is kept.
fn flatten(terms: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for t in terms {
        if is_list(t) {
            out.extend(t.try_iter().into_iter().flatten());
        } else {
            out.push(t.clone());
        }
    }
    out
}

fn is_list(v: &Value) -> bool {
    matches!(
        v.kind(),
        minijinja::value::ValueKind::Seq | minijinja::value::ValueKind::Iterable
    )
}

fn list_items(plugin: &str, v: &Value) -> Result<Vec<Value>, Error> {
    if is_list(v) {
        return Ok(v.try_iter()?.collect());
    }
    Err(op_err(format!(
        "lookup('{plugin}') expects lists, got {} ({v})",
        v.kind()
    )))
}

// ---- controller files ----

/// The directories a relative name is searched in, as Ansible's `path_dwim_relative_stack`:
/// inside a role its `SUB/` dir, the role, the role's `tasks/` (and its `SUB/`), then the
/// playbook directory's `SUB/` and itself.
fn search_dirs(c: &Caller<'_, '_>, sub: Option<&str>) -> Vec<PathBuf> {
    let mut bases: Vec<PathBuf> = Vec::new();
    if let Some(r) = (c.var)("role_path").and_then(|v| v.as_str().map(PathBuf::from)) {
        bases.push(r.clone());
        bases.push(r.join("tasks"));
    }
    bases.push(playbook_dir(c));
    let mut dirs = Vec::new();
    for b in bases {
        if let Some(s) = sub {
            dirs.push(b.join(s));
        }
        dirs.push(b);
    }
    dirs
}

fn playbook_dir(c: &Caller<'_, '_>) -> PathBuf {
    (c.var)("playbook_dir")
        .and_then(|v| v.as_str().map(PathBuf::from))
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The first existing path for `name` (absolute names as they are; `~` is the controller's
/// home), or every candidate tried.
fn find(c: &Caller<'_, '_>, sub: Option<&str>, name: &str) -> Result<PathBuf, Vec<PathBuf>> {
    let expanded = expand_home(name);
    if expanded.is_absolute() {
        return if expanded.exists() {
            Ok(expanded)
        } else {
            Err(vec![expanded])
        };
    }
    let first = name.split('/').next();
    let mut tried = Vec::new();
    for d in search_dirs(c, sub) {
        // Ansible does not add `files/` again when the name already starts with it.
        if sub.is_some() && first == sub && d.ends_with(sub.unwrap_or_default()) {
            continue;
        }
        let p = d.join(name);
        if p.exists() {
            return Ok(p);
        }
        tried.push(p);
    }
    Err(tried)
}

fn expand_home(name: &str) -> PathBuf {
    if let Some(rest) = name.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return Path::new(&home).join(rest);
    }
    PathBuf::from(name)
}

fn not_found(plugin: &str, name: &str, tried: &[PathBuf]) -> Error {
    let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    op_err(format!(
        "lookup('{plugin}'): could not find '{name}' (looked for {})",
        list.join(", ")
    ))
}

/// Reads a controller file as text; a vault-encrypted file is decrypted with the run's vault
/// passwords and its plaintext registered for redaction.
fn read_text(plugin: &str, path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        op_err(format!(
            "lookup('{plugin}'): cannot read {}: {e}",
            path.display()
        ))
    })?;
    if !crate::vault::is_vault(&text) {
        return Ok(text);
    }
    let plain = crate::vault::secrets::with(|s| crate::vault::decrypt(&text, s)).map_err(|e| {
        op_err(format!(
            "lookup('{plugin}'): {} is vault-encrypted and cannot be opened: {e}",
            path.display()
        ))
    })?;
    let plain = String::from_utf8(plain).map_err(|_| {
        op_err(format!(
            "lookup('{plugin}'): {} decrypts to bytes that are not UTF-8",
            path.display()
        ))
    })?;
    for line in plain.lines().filter(|l| !l.trim().is_empty()) {
        crate::vault::redact::register(line.trim());
    }
    Ok(plain)
}

fn file(
    c: &Caller<'_, '_>,
    name: &str,
    lstrip: Option<&Value>,
    rstrip: Option<&Value>,
) -> Result<Value, Error> {
    let path = find(c, Some("files"), name).map_err(|tried| not_found("file", name, &tried))?;
    let mut text = read_text("file", &path)?;
    if lstrip.is_some_and(Value::is_true) {
        text = text.trim_start().to_string();
    }
    if rstrip.is_none_or(Value::is_true) {
        text.truncate(text.trim_end().len());
    }
    Ok(Value::from(text))
}

fn template(c: &Caller<'_, '_>, name: &str, template_vars: Option<&Value>) -> Result<Value, Error> {
    let path =
        find(c, Some("templates"), name).map_err(|tried| not_found("template", name, &tried))?;
    let text = read_text("template", &path)?;
    let ctx = match template_vars {
        None => c.context.clone(),
        Some(extra) => minijinja::context! { ..extra.clone(), ..c.context.clone() },
    };
    let shown = path.display().to_string();
    c.env
        .render_named_str(&shown, &text, ctx)
        .map(Value::from)
        .map_err(|e| {
            let inner = e
                .detail()
                .map_or_else(|| e.kind().to_string(), str::to_string);
            let at = match super::error_position(&e, &text) {
                (line, Some(col)) => format!("{line}:{col}"),
                (line, None) => line.to_string(),
            };
            Error::new(
                e.kind(),
                format!("lookup('template'): {shown}:{at}: {inner}"),
            )
        })
}

fn env_var(term: &str, default: Option<&Value>) -> Result<Value, Error> {
    let name = term.split_whitespace().next().unwrap_or_default();
    match std::env::var(name) {
        Ok(v) => Ok(Value::from(v)),
        Err(_) => match default {
            Some(d) => Ok(d.clone()),
            // Ansible: an unset variable without a default is ''.
            None => Ok(Value::from("")),
        },
    }
}

/// Runs `term` with `sh -c` in the playbook directory on the controller; stdout as text.
fn pipe_raw(c: &Caller<'_, '_>, plugin: &str, term: &str) -> Result<String, Error> {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(term)
        .current_dir(playbook_dir(c))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| op_err(format!("lookup('{plugin}'): cannot run /bin/sh: {e}")))?;
    if !out.status.success() {
        let code = out
            .status
            .code()
            .map_or_else(|| "a signal".to_string(), |c| c.to_string());
        return Err(op_err(format!(
            "lookup_plugin.{plugin}({term}) returned {code}"
        )));
    }
    String::from_utf8(out.stdout)
        .map_err(|_| op_err(format!("lookup('{plugin}'): the output is not UTF-8")))
}

fn pipe(c: &Caller<'_, '_>, term: &str) -> Result<String, Error> {
    let mut s = pipe_raw(c, "pipe", term)?;
    s.truncate(s.trim_end().len());
    Ok(s)
}

fn fileglob(c: &Caller<'_, '_>, term: &str) -> Result<Vec<Value>, Error> {
    let (dir, pattern) = match term.rsplit_once('/') {
        Some((d, p)) => (Some(if d.is_empty() { "/" } else { d }), p),
        None => (None, term),
    };
    let dirs: Vec<PathBuf> = match dir {
        Some(d) => match find(c, Some("files"), d) {
            Ok(p) => vec![p],
            Err(_) => Vec::new(),
        },
        None => search_dirs(c, Some("files")),
    };
    let glob = globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| op_err(format!("lookup('fileglob'): bad pattern '{term}': {e}")))?
        .compile_matcher();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut found: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                // Python's glob skips hidden files unless the pattern starts with a dot.
                (pattern.starts_with('.') || !name.starts_with('.')) && glob.is_match(&*name)
            })
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if !found.is_empty() {
            found.sort();
            return Ok(found.into_iter().map(Value::from).collect());
        }
    }
    Ok(Vec::new())
}

fn first_found(
    c: &Caller<'_, '_>,
    terms: &[Value],
    opts: &IndexMap<String, Value>,
) -> Result<Vec<Value>, Error> {
    let mut skip = opts.get("skip").is_some_and(Value::is_true);
    let global_paths = opts.get("paths").cloned();
    let mut candidates: Vec<String> = Vec::new();
    let terms: Vec<Value> = if terms.is_empty() {
        match opts.get("files") {
            Some(f) => vec![Value::from_iter([("files", f.clone())])],
            None => Vec::new(),
        }
    } else {
        terms.to_vec()
    };
    collect_first_found(&terms, global_paths.as_ref(), &mut skip, &mut candidates)?;
    let sub = c.with_subdir;
    for name in &candidates {
        if let Ok(p) = find(c, sub, name) {
            // An absolute path, as Ansible's: a task of a role resolves a relative one
            // against its own folder.
            let p = std::path::absolute(&p).unwrap_or(p);
            return Ok(vec![Value::from(p.display().to_string())]);
        }
    }
    if skip {
        return Ok(Vec::new());
    }
    Err(op_err(format!(
        "lookup('first_found'): no file was found (looked for {})",
        candidates.join(", ")
    )))
}

fn collect_first_found(
    terms: &[Value],
    global_paths: Option<&Value>,
    skip: &mut bool,
    out: &mut Vec<String>,
) -> Result<(), Error> {
    for t in terms {
        if let Some(s) = t.as_str() {
            let files = split_on(s, &[',', ';']);
            match global_paths {
                Some(p) => join_paths(&files, &paths_of(p)?, out),
                None => out.extend(files),
            }
        } else if t.kind() == minijinja::value::ValueKind::Map {
            let get = |k: &str| t.get_attr(k).ok().filter(|v| !v.is_undefined());
            for k in t.try_iter()? {
                let k = k.as_str().unwrap_or_default().to_string();
                if !["files", "paths", "skip"].contains(&k.as_str()) {
                    return Err(op_err(format!(
                        "lookup('first_found'): unknown key '{k}' (it takes files, paths, skip)"
                    )));
                }
            }
            if let Some(s) = get("skip") {
                *skip = s.is_true();
            }
            let mut files = Vec::new();
            if let Some(f) = get("files") {
                for item in string_list(&f)? {
                    files.extend(split_on(&item, &[',', ';']));
                }
            }
            match get("paths").or_else(|| global_paths.cloned()) {
                Some(p) => join_paths(&files, &paths_of(&p)?, out),
                None => out.extend(files),
            }
        } else if is_list(t) {
            let inner: Vec<Value> = t.try_iter()?.collect();
            collect_first_found(&inner, global_paths, skip, out)?;
        } else if !t.is_undefined() && !t.is_none() {
            return Err(op_err(format!(
                "lookup('first_found'): a term must be text, a mapping or a list, got {}",
                t.kind()
            )));
        }
    }
    Ok(())
}

fn string_list(v: &Value) -> Result<Vec<String>, Error> {
    if let Some(s) = v.as_str() {
        return Ok(vec![s.to_string()]);
    }
    Ok(v.try_iter()?
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect())
}

fn paths_of(v: &Value) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for p in string_list(v)? {
        out.extend(split_on(&p, &[',', ':', ';']));
    }
    Ok(out)
}

fn join_paths(files: &[String], paths: &[String], out: &mut Vec<String>) {
    if paths.is_empty() {
        out.extend(files.iter().cloned());
        return;
    }
    for p in paths {
        for f in files {
            out.push(Path::new(p).join(f).display().to_string());
        }
    }
}

fn split_on(s: &str, seps: &[char]) -> Vec<String> {
    s.split(|c| seps.contains(&c))
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

// ---- password ----

const ASCII_LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const ASCII_UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// Python's `string` constant `name`, if it is one.
fn char_class(name: &str) -> Option<String> {
    Some(match name {
        "ascii_letters" | "letters" => format!("{ASCII_LOWER}{ASCII_UPPER}"),
        "ascii_lowercase" | "lowercase" => ASCII_LOWER.into(),
        "ascii_uppercase" | "uppercase" => ASCII_UPPER.into(),
        "digits" => DIGITS.into(),
        "hexdigits" => "0123456789abcdefABCDEF".into(),
        "octdigits" => "01234567".into(),
        "punctuation" => PUNCTUATION.into(),
        "whitespace" => " \t\n\r\x0b\x0c".into(),
        "printable" => format!("{DIGITS}{ASCII_LOWER}{ASCII_UPPER}{PUNCTUATION} \t\n\r\x0b\x0c"),
        _ => return None,
    })
}

/// The candidate characters for `chars=` (Ansible: a comma-separated list of `string`
/// constant names or literal characters, `,,` for a comma).
fn candidate_chars(spec: Option<&Value>) -> Result<Vec<char>, Error> {
    let parts: Vec<String> = match spec {
        None => vec!["ascii_letters".into(), "digits".into(), ".,:-_".into()],
        Some(v) if v.as_str().is_some() => {
            let s = v.as_str().unwrap_or_default();
            let mut parts = Vec::new();
            if s.contains(",,") {
                parts.push(",".to_string());
            }
            parts.extend(
                s.replace(",,", ",")
                    .split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string),
            );
            parts
        }
        Some(v) => string_list(v)?,
    };
    let mut chars: Vec<char> = Vec::new();
    for p in parts {
        chars.extend(char_class(&p).unwrap_or(p).chars());
    }
    if chars.is_empty() {
        return Err(op_err("lookup('password'): chars= gives no characters"));
    }
    Ok(chars)
}

fn random_password(length: usize, chars: &[char]) -> Result<String, Error> {
    let mut out = String::with_capacity(length);
    let n = u32::try_from(chars.len()).unwrap_or(u32::MAX);
    // Rejection sampling: no modulo bias.
    let zone = u32::MAX - (u32::MAX % n);
    while out.chars().count() < length {
        let mut buf = [0u8; 4];
        getrandom::fill(&mut buf)
            .map_err(|e| op_err(format!("lookup('password'): no randomness: {e}")))?;
        let r = u32::from_le_bytes(buf);
        if r < zone {
            let i = usize::try_from(r % n).unwrap_or(0);
            out.push(chars[i]);
        }
    }
    Ok(out)
}

/// `password`: `PATH [length=N] [chars=...]`. An existing file gives its password (the text
/// before ` salt=`); a missing one gets a new random password, written 0600 in a 0700
/// directory (not under `--check`). `/dev/null` is never written.
fn password(
    c: &Caller<'_, '_>,
    term: &Value,
    opts: &IndexMap<String, Value>,
) -> Result<Value, Error> {
    let term = term_str("password", term)?;
    let (path, inline) = match term.trim().split_once(char::is_whitespace) {
        Some((p, rest)) => (p.to_string(), parse_kv(rest)),
        None => (term.trim().to_string(), Vec::new()),
    };
    let mut params: IndexMap<String, Value> = opts.clone();
    for (k, v) in inline {
        params.insert(k, Value::from(v));
    }
    check_options("password", &params)?;
    let length = match params.get("length") {
        None => 20,
        Some(v) => v
            .as_str()
            .map(|s| s.trim().parse::<usize>().ok())
            .unwrap_or_else(|| usize::try_from(v.clone()).ok())
            .ok_or_else(|| op_err(format!("lookup('password'): length={v} is not a number")))?,
    };
    let chars = candidate_chars(params.get("chars"))?;
    let path = if Path::new(&path).is_absolute() || path.starts_with('~') {
        expand_home(&path)
    } else {
        playbook_dir(c).join(&path)
    };
    if path == Path::new("/dev/null") {
        return random_password(length, &chars).map(Value::from);
    }
    if path.exists() {
        let content = read_text("password", &path)?;
        let content = content.trim_end();
        let pw = match content.rfind(" salt=") {
            Some(i) => &content[..i],
            None => content,
        };
        crate::vault::redact::register(pw);
        return Ok(Value::from(pw));
    }
    let pw = random_password(length, &chars)?;
    crate::vault::redact::register(&pw);
    if c.check {
        tracing::info!(
            path = %path.display(),
            "check mode: the password file is not created; the run will create it"
        );
        return Ok(Value::from(pw));
    }
    write_password_file(&path, &pw)?;
    Ok(Value::from(pw))
}

fn write_password_file(path: &Path, pw: &str) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let fail = |e: std::io::Error| {
        op_err(format!(
            "lookup('password'): cannot write {}: {e}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.write_all(format!("{pw}\n").as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)
}

/// `k=v k2="v 2"` (Ansible's `parse_kv`, without free-form text).
fn parse_kv(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut words = Vec::new();
    for ch in s.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => quote = Some(ch),
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    for w in words {
        match w.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), v.to_string())),
            None => out.push((w, String::new())),
        }
    }
    out
}

// ---- variables and lists ----

fn vars_lookup(c: &Caller<'_, '_>, term: &Value, default: Option<&Value>) -> Result<Value, Error> {
    let Some(name) = term.as_str() else {
        return Err(op_err(format!(
            "lookup('vars'): a variable name must be text, not {}",
            term.kind()
        )));
    };
    match (c.var)(name) {
        Some(v) => Ok(v),
        None => match default {
            Some(d) => Ok(d.clone()),
            None => Err(Error::new(
                ErrorKind::UndefinedError,
                format!("No variable named '{name}' was found."),
            )),
        },
    }
}

fn dict(terms: &[Value]) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for t in terms {
        if t.kind() != minijinja::value::ValueKind::Map {
            return Err(op_err(format!(
                "the 'dict' lookup plugin expects a dictionary, got '{t}' of type {}",
                t.kind()
            )));
        }
        for k in t.try_iter()? {
            let v = t.get_item(&k)?;
            out.push(minijinja::context! { key => k, value => v });
        }
    }
    Ok(out)
}

fn together(terms: &[Value]) -> Result<Vec<Value>, Error> {
    if terms.is_empty() {
        return Err(op_err(
            "with_together requires at least one element in each list",
        ));
    }
    let lists: Vec<Vec<Value>> = terms
        .iter()
        .map(|t| list_items("together", t))
        .collect::<Result<_, _>>()?;
    let n = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok((0..n)
        .map(|i| {
            let row: Vec<Value> = lists
                .iter()
                .map(|l| l.get(i).cloned().unwrap_or(Value::from(())))
                .collect();
            Value::from(flatten(&row))
        })
        .collect())
}

fn nested(terms: &[Value]) -> Result<Vec<Value>, Error> {
    let Some((first, rest)) = terms.split_first() else {
        return Err(op_err(
            "with_nested requires at least one element in the nested list",
        ));
    };
    let mut result: Vec<Value> = list_items("nested", first)?;
    for next in rest {
        let b = list_items("nested", next)?;
        let mut combined = Vec::with_capacity(result.len() * b.len());
        for x in &result {
            for y in &b {
                combined.push(Value::from(flatten(&[x.clone(), y.clone()])));
            }
        }
        result = combined;
    }
    Ok(result
        .into_iter()
        .map(|x| Value::from(flatten(&[x])))
        .collect())
}

fn subelements(terms: &[Value]) -> Result<Vec<Value>, Error> {
    let bad = |msg: &str| {
        op_err(format!(
            "subelements lookup expects a list of two or three items{msg}"
        ))
    };
    if !(2..=3).contains(&terms.len()) {
        return Err(bad(""));
    }
    let data = value_to_json(&terms[0])?;
    let Some(key) = terms[1].as_str() else {
        return Err(bad(
            ", first a dict or a list, second a string pointing to the subkey",
        ));
    };
    let skip_missing = match terms.get(2) {
        None => false,
        Some(f) if f.kind() == minijinja::value::ValueKind::Map => {
            for k in f.try_iter()? {
                if k.as_str() != Some("skip_missing") {
                    return Err(bad(
                        ", the optional third item must be a dict with flags ['skip_missing']",
                    ));
                }
            }
            f.get_attr("skip_missing")
                .ok()
                .and_then(|v| super::filters::to_bool(&v).ok())
                .unwrap_or(false)
        }
        Some(_) => {
            return Err(bad(
                ", the optional third item must be a dict with flags ['skip_missing']",
            ));
        }
    };
    use serde_json::Value as J;
    let elements: Vec<J> = match data {
        J::Array(a) => a,
        J::Object(m) => {
            if m.get("skipped").is_some_and(|v| v != &J::Bool(false)) {
                return Ok(Vec::new());
            }
            m.into_iter().map(|(_, v)| v).collect()
        }
        _ => {
            return Err(bad(
                ", first a dict or a list, second a string pointing to the subkey",
            ));
        }
    };
    let path: Vec<&str> = key.split('.').collect();
    let mut out = Vec::new();
    for item0 in elements {
        let J::Object(obj) = &item0 else {
            return Err(op_err(format!(
                "subelements lookup expects a dictionary, got '{item0}'"
            )));
        };
        if obj.get("skipped").is_some_and(|v| v != &J::Bool(false)) {
            continue;
        }
        let mut cur: &serde_json::Map<String, J> = obj;
        let mut sublist: Vec<J> = Vec::new();
        let mut missing = false;
        for (i, k) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            let Some(v) = cur.get(*k) else {
                if skip_missing {
                    missing = true;
                    break;
                }
                return Err(op_err(format!(
                    "could not find '{k}' key in iterated item '{}'",
                    J::Object(cur.clone())
                )));
            };
            match (last, v) {
                (false, J::Object(m)) => cur = m,
                (false, other) => {
                    if skip_missing {
                        missing = true;
                        break;
                    }
                    return Err(op_err(format!(
                        "the key {k} should point to a dictionary, got '{other}'"
                    )));
                }
                (true, J::Array(a)) => sublist = a.clone(),
                (true, other) => {
                    return Err(op_err(format!(
                        "the key {k} should point to a list, got '{other}'"
                    )));
                }
            }
        }
        if missing {
            continue;
        }
        // Ansible pops the list out of the parent it yields.
        let parent = without_path(&item0, &path);
        for child in sublist {
            out.push(Value::from(vec![
                json_to_value(&parent),
                json_to_value(&child),
            ]));
        }
    }
    Ok(out)
}

fn without_path(v: &serde_json::Value, path: &[&str]) -> serde_json::Value {
    let mut v = v.clone();
    let mut cur = &mut v;
    for (i, k) in path.iter().enumerate() {
        let serde_json::Value::Object(m) = cur else {
            break;
        };
        if i + 1 == path.len() {
            m.shift_remove(*k);
            break;
        }
        match m.get_mut(*k) {
            Some(next) => cur = next,
            None => break,
        }
    }
    v
}

fn sequence(terms: &[Value], opts: &IndexMap<String, Value>) -> Result<Vec<Value>, Error> {
    let terms: Vec<Value> = if terms.is_empty() && !opts.is_empty() {
        vec![Value::from("")]
    } else {
        terms.to_vec()
    };
    let mut out = Vec::new();
    for t in &terms {
        let mut s = Seq::default();
        for (k, v) in opts {
            s.set(k, &v.to_string())?;
        }
        let text = term_str("sequence", t)?;
        if !s.parse_shortcut(&text)? {
            for (k, v) in parse_kv(&text) {
                s.set(&k, &v).map_err(|_| {
                    op_err(format!("unrecognized arguments to with_sequence: ['{k}']"))
                })?;
            }
        }
        out.extend(s.generate()?.into_iter().map(Value::from));
    }
    Ok(out)
}

#[derive(Default)]
struct Seq {
    start: Option<i64>,
    end: Option<i64>,
    count: Option<i64>,
    stride: Option<i64>,
    format: Option<String>,
}

fn parse_int(s: &str) -> Result<i64, Error> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(h, 16)
    } else if let Some(o) = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")) {
        i64::from_str_radix(o, 8)
    } else if t.len() > 1 && t.starts_with('0') {
        i64::from_str_radix(&t[1..], 8)
    } else {
        t.parse::<i64>()
    }
    .map_err(|_| op_err(format!("can't parse '{s}' as an integer in with_sequence")))?;
    Ok(if neg { -v } else { v })
}

impl Seq {
    fn set(&mut self, k: &str, v: &str) -> Result<(), Error> {
        match k {
            "start" => self.start = Some(parse_int(v)?),
            "end" => self.end = Some(parse_int(v)?),
            "count" => self.count = Some(parse_int(v)?),
            "stride" => self.stride = Some(parse_int(v)?),
            "format" => self.format = Some(v.to_string()),
            other => {
                return Err(op_err(format!(
                    "unrecognized arguments to with_sequence: ['{other}']"
                )));
            }
        }
        Ok(())
    }

    /// `[start-]end[/stride][:format]`.
    fn parse_shortcut(&mut self, term: &str) -> Result<bool, Error> {
        let re = regex::Regex::new(
            r"^(?:(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)-)?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)(?:/(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*))?(?::(.+))?$",
        )
        .map_err(|e| op_err(e.to_string()))?;
        let Some(m) = re.captures(term.trim()) else {
            return Ok(false);
        };
        if let Some(s) = m.get(1) {
            self.start = Some(parse_int(s.as_str())?);
        }
        if let Some(e) = m.get(2) {
            self.end = Some(parse_int(e.as_str())?);
        }
        if let Some(s) = m.get(3) {
            self.stride = Some(parse_int(s.as_str())?);
        }
        if let Some(f) = m.get(4) {
            self.format = Some(f.as_str().to_string());
        }
        Ok(true)
    }

    fn generate(&self) -> Result<Vec<String>, Error> {
        let start = self.start.unwrap_or(1);
        let stride = self.stride.unwrap_or(1);
        let format = self.format.as_deref().unwrap_or("%d");
        let end = match (self.count, self.end) {
            (None, None) => return Err(op_err("must specify count or end in with_sequence")),
            (Some(_), Some(_)) => {
                return Err(op_err("can't specify both count and end in with_sequence"));
            }
            (Some(0), None) => return Ok(Vec::new()),
            (Some(n), None) => start + n * stride - 1,
            (None, Some(e)) => e,
        };
        if stride > 0 && end < start {
            return Err(op_err("to count backwards make stride negative"));
        }
        if stride < 0 && end > start {
            return Err(op_err("to count forward don't make stride negative"));
        }
        if stride == 0 {
            return Ok(Vec::new());
        }
        if format.matches('%').count() != 1 {
            return Err(op_err(format!("bad formatting string: {format}")));
        }
        let mut out = Vec::new();
        let mut i = start;
        while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
            out.push(printf_int(format, i)?);
            i += stride;
        }
        Ok(out)
    }
}

/// Python's `format % i` for the one `%` conversion a sequence format has
/// (`%d`, `%i`, `%x`, `%X`, `%o`, `%s` with flags `0`, `-`, `+`, space and a width).
fn printf_int(format: &str, i: i64) -> Result<String, Error> {
    let bad = || op_err(format!("problem formatting {i} with '{format}'"));
    let at = format.find('%').ok_or_else(bad)?;
    let (head, spec) = format.split_at(at);
    let spec = &spec[1..];
    let flags_end = spec.find(|c: char| !"0-+ #".contains(c)).ok_or_else(bad)?;
    let flags = &spec[..flags_end];
    let rest = &spec[flags_end..];
    let width_end = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let width: usize = rest[..width_end].parse().unwrap_or(0);
    let conv = rest[width_end..].chars().next().ok_or_else(bad)?;
    let tail = &rest[width_end + conv.len_utf8()..];
    let digits = match conv {
        'd' | 'i' | 'u' | 's' => i.unsigned_abs().to_string(),
        'x' => format!("{:x}", i.unsigned_abs()),
        'X' => format!("{:X}", i.unsigned_abs()),
        'o' => format!("{:o}", i.unsigned_abs()),
        _ => return Err(bad()),
    };
    let sign = if i < 0 {
        "-"
    } else if flags.contains('+') {
        "+"
    } else if flags.contains(' ') {
        " "
    } else {
        ""
    };
    let body = format!("{sign}{digits}");
    let padded = if body.len() >= width {
        body
    } else if flags.contains('-') {
        format!("{body:<width$}")
    } else if flags.contains('0') && conv != 's' {
        format!("{sign}{digits:0>w$}", w = width - sign.len())
    } else {
        format!("{body:>width$}")
    };
    Ok(format!("{head}{padded}{tail}"))
}

#[cfg(test)]
mod tests;
