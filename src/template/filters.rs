//! Ansible's filters on top of minijinja's built-ins.
//!
//! This file owns filters whose Ansible behaviour differs from (or is missing in) minijinja:
//! `bool` (YAML 1.1 words; the built-in reads `'no'` as true), `int`/`float` (0 on failure, as
//! Jinja), `to_json` (no HTML escaping, Python's separators), YAML and JSON conversions,
//! regexes with Python replacement syntax, path helpers, set operations, `combine`, hashes,
//! shell quoting and friends. Built-ins that already behave as Ansible users expect (`default`,
//! `selectattr`, `map`, `sort`, `unique`, `join`, `length`, ...) are left alone.
//!
//! It must not touch files, hosts or the network (lookups are in [`super::lookups`]).

use std::sync::Arc;

use base64::Engine as _;
use indexmap::IndexMap;
use minijinja::value::{Kwargs, Rest, Tuple, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};
use regex::Regex;

use super::{json_to_value, value_to_json};

/// The detail `mandatory` fails with when no message is given; the error conversion replaces
/// it with "mandatory variable 'NAME' is not defined" using the failing expression's text.
pub const MANDATORY_MARK: &str = "mandatory variable is not defined";

/// Adds every filter of this file (and the `dict` function) to `env`.
pub fn register(env: &mut Environment<'static>) {
    add_filter(env, "bool", bool_filter);
    add_filter(env, "int", int);
    add_filter(env, "float", float);
    add_filter(env, "to_json", to_json);
    add_filter(env, "to_nice_json", to_nice_json);
    add_filter(env, "tojson", to_json);
    add_filter(env, "from_json", from_json);
    add_filter(env, "to_yaml", to_yaml);
    add_filter(env, "to_nice_yaml", to_nice_yaml);
    add_filter(env, "from_yaml", from_yaml);
    add_filter(env, "from_yaml_all", from_yaml_all);
    add_filter(env, "b64encode", b64encode);
    add_filter(env, "b64decode", b64decode);
    add_filter(env, "hash", hash);
    add_filter(env, "checksum", checksum);
    add_filter(env, "combine", combine);
    add_filter(env, "dict2items", dict2items);
    add_filter(env, "items2dict", items2dict);
    add_filter(env, "ternary", ternary);
    add_filter(env, "mandatory", mandatory);
    add_filter(env, "quote", quote);
    add_filter(env, "flatten", flatten);
    add_filter(env, "product", product);
    add_filter(env, "dict", dict_filter);
    add_filter(env, "difference", difference);
    add_filter(env, "intersect", intersect);
    add_filter(env, "union", union);
    add_filter(env, "symmetric_difference", symmetric_difference);
    add_filter(env, "regex_replace", regex_replace);
    add_filter(env, "regex_search", regex_search);
    add_filter(env, "regex_findall", regex_findall);
    add_filter(env, "regex_escape", regex_escape);
    add_filter(env, "basename", basename);
    add_filter(env, "dirname", dirname);
    add_filter(env, "splitext", splitext);
    env.add_function("dict", dict_function);
    register_builtin_aliases(env);
}

/// ansible-core 2.19's builtin filters (plugins/filter/*.py): each is also registered as
/// `ansible.builtin.NAME`, as Ansible resolves it.
pub const ANSIBLE_FILTERS: &[&str] = &[
    "b64decode",
    "b64encode",
    "to_uuid",
    "to_json",
    "to_nice_json",
    "from_json",
    "to_yaml",
    "to_nice_yaml",
    "from_yaml",
    "from_yaml_all",
    "basename",
    "dirname",
    "expanduser",
    "expandvars",
    "path_join",
    "realpath",
    "relpath",
    "splitext",
    "win_basename",
    "win_dirname",
    "win_splitdrive",
    "commonpath",
    "normpath",
    "fileglob",
    "bool",
    "to_datetime",
    "strftime",
    "quote",
    "md5",
    "sha1",
    "checksum",
    "password_hash",
    "hash",
    "regex_replace",
    "regex_escape",
    "regex_search",
    "regex_findall",
    "ternary",
    "random",
    "shuffle",
    "mandatory",
    "comment",
    "type_debug",
    "combine",
    "extract",
    "flatten",
    "dict2items",
    "items2dict",
    "subelements",
    "split",
    "groupby",
    "d",
    "default",
    "map",
    "select",
    "selectattr",
    "reject",
    "rejectattr",
    "vault",
    "unvault",
    "log",
    "pow",
    "root",
    "unique",
    "intersect",
    "difference",
    "symmetric_difference",
    "union",
    "product",
    "permutations",
    "combinations",
    "human_readable",
    "human_to_bytes",
    "rekey_on_member",
    "zip",
    "zip_longest",
    "urldecode",
    "urlsplit",
];

/// ansible-core 2.19's builtin tests (plugins/test/*.py), also registered as
/// `ansible.builtin.NAME`.
pub const ANSIBLE_TESTS: &[&str] = &[
    "failed",
    "failure",
    "succeeded",
    "success",
    "successful",
    "reachable",
    "unreachable",
    "timedout",
    "changed",
    "change",
    "skipped",
    "skip",
    "finished",
    "started",
    "match",
    "search",
    "regex",
    "version_compare",
    "version",
    "any",
    "all",
    "truthy",
    "falsy",
    "vault_encrypted",
    "vaulted_file",
    "defined",
    "undefined",
    "directory",
    "is_dir",
    "file",
    "is_file",
    "link",
    "is_link",
    "exists",
    "link_exists",
    "abs",
    "is_abs",
    "same_file",
    "is_same_file",
    "mount",
    "is_mount",
    "subset",
    "issubset",
    "superset",
    "issuperset",
    "contains",
    "nan",
    "isnan",
    "uri",
    "url",
    "urn",
];

/// Registers filter `name`, and `ansible.builtin.NAME` when Ansible has it built in.
pub fn add_filter<F, Rv, Args>(env: &mut Environment<'static>, name: &'static str, f: F)
where
    F: minijinja::functions::Function<Rv, Args> + Clone,
    Rv: minijinja::value::FunctionResult,
    Args: for<'a> minijinja::value::FunctionArgs<'a>,
{
    if ANSIBLE_FILTERS.contains(&name) {
        env.add_filter(format!("ansible.builtin.{name}"), f.clone());
    }
    env.add_filter(name, f);
}

/// Registers test `name`, and `ansible.builtin.NAME` when Ansible has it built in.
pub fn add_test<F, Rv, Args>(env: &mut Environment<'static>, name: &'static str, f: F)
where
    F: minijinja::functions::Function<Rv, Args> + Clone,
    Rv: minijinja::value::FunctionResult,
    Args: for<'a> minijinja::value::FunctionArgs<'a>,
{
    if ANSIBLE_TESTS.contains(&name) {
        env.add_test(format!("ansible.builtin.{name}"), f.clone());
    }
    env.add_test(name, f);
}

/// `ansible.builtin.` names for the filters and tests Ansible takes from Jinja2 and rdeploy
/// from minijinja as they are.
fn register_builtin_aliases(env: &mut Environment<'static>) {
    use minijinja::{filters as f, tests as t};
    env.add_filter("ansible.builtin.split", f::split);
    env.add_filter("ansible.builtin.groupby", f::groupby);
    env.add_filter("ansible.builtin.d", f::default);
    env.add_filter("ansible.builtin.default", f::default);
    env.add_filter("ansible.builtin.map", f::map);
    env.add_filter("ansible.builtin.select", f::select);
    env.add_filter("ansible.builtin.selectattr", f::selectattr);
    env.add_filter("ansible.builtin.reject", f::reject);
    env.add_filter("ansible.builtin.rejectattr", f::rejectattr);
    env.add_filter("ansible.builtin.unique", f::unique);
    env.add_filter("ansible.builtin.zip", f::zip);
    env.add_test("ansible.builtin.defined", t::is_defined);
    env.add_test("ansible.builtin.undefined", t::is_undefined);
}

fn op_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn undefined_err(what: &str) -> Error {
    Error::new(
        ErrorKind::UndefinedError,
        format!("{what} got an undefined value"),
    )
}

/// The items of a list-like value (a string is not a list here).
fn items(v: &Value, what: &str) -> Result<Vec<Value>, Error> {
    match v.kind() {
        ValueKind::Undefined => Err(undefined_err(what)),
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => Ok(v.try_iter()?.collect()),
        ValueKind::None => Ok(Vec::new()),
        k => Err(op_err(format!("{what} expects a list, got {k}"))),
    }
}

fn str_arg<'a>(v: &'a Value, what: &str) -> Result<&'a str, Error> {
    match v.kind() {
        ValueKind::Undefined => Err(undefined_err(what)),
        _ => v
            .as_str()
            .ok_or_else(|| op_err(format!("{what} expects a string, got {}", v.kind()))),
    }
}

/// The value as text the way `{{ v }}` would print it (strings unquoted).
fn text_of(v: &Value, what: &str) -> Result<String, Error> {
    match v.kind() {
        ValueKind::Undefined => Err(undefined_err(what)),
        ValueKind::None => Ok(String::new()),
        _ => Ok(v
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())),
    }
}

// ---------------------------------------------------------------- conversions

/// Ansible's boolean reading of a value: `yes`/`on`/`1`/`true`/`y`/`t` (any case) are true,
/// `no`/`off`/`0`/`false`/`n`/`f`/`''` false; numbers are true unless zero; none is false.
/// Any other string is an error rather than a silent false.
pub fn to_bool(v: &Value) -> Result<bool, Error> {
    match v.kind() {
        ValueKind::Bool => Ok(v.is_true()),
        ValueKind::None => Ok(false),
        ValueKind::Undefined => Err(undefined_err("bool")),
        ValueKind::Number => Ok(f64::try_from(v.clone()).map(|f| f != 0.0).unwrap_or(true)),
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default().trim().to_ascii_lowercase();
            match s.as_str() {
                "yes" | "on" | "1" | "true" | "y" | "t" => Ok(true),
                "no" | "off" | "0" | "false" | "n" | "f" | "" => Ok(false),
                _ => Err(op_err(format!(
                    "cannot read '{}' as a boolean (expected yes/no, true/false, on/off, 1/0)",
                    v.as_str().unwrap_or_default()
                ))),
            }
        }
        k => Err(op_err(format!("cannot read a {k} as a boolean"))),
    }
}

fn bool_filter(v: &Value) -> Result<bool, Error> {
    to_bool(v)
}

/// Python's `int(s, base)` on a trimmed string: optional sign, optional `0x`/`0o`/`0b` prefix
/// matching the base, underscores between digits.
fn parse_int(s: &str, base: u32) -> Option<i128> {
    let s = s.trim();
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let prefix = match base {
        16 => Some("0x"),
        8 => Some("0o"),
        2 => Some("0b"),
        _ => None,
    };
    let digits = match prefix {
        Some(p) => match (rest.get(..2), rest.get(2..)) {
            (Some(head), Some(tail)) if head.eq_ignore_ascii_case(p) => tail,
            _ => rest,
        },
        None => rest,
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let n = i128::from_str_radix(&clean, base).ok()?;
    Some(if neg { -n } else { n })
}

fn int(
    v: &Value,
    default: Option<Value>,
    base: Option<u32>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let default = match default {
        Some(d) => d,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0)),
    };
    let base = match base {
        Some(b) => b,
        None => kwargs.get::<Option<u32>>("base")?.unwrap_or(10),
    };
    kwargs.assert_all_used()?;
    if !(2..=36).contains(&base) {
        return Err(op_err(format!(
            "int() base must be between 2 and 36, not {base}"
        )));
    }
    Ok(match v.kind() {
        ValueKind::Undefined => return Err(undefined_err("int")),
        ValueKind::Bool => Value::from(i64::from(v.is_true())),
        ValueKind::Number if v.is_integer() => v.clone(),
        ValueKind::Number => match f64::try_from(v.clone()) {
            Ok(f) if f.is_finite() => Value::from(f.trunc() as i128),
            _ => default,
        },
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default();
            if let Some(i) = parse_int(s, base) {
                Value::from(i)
            } else {
                match s.trim().parse::<f64>() {
                    Ok(f) if base == 10 && f.is_finite() => Value::from(f.trunc() as i128),
                    _ => default,
                }
            }
        }
        _ => default,
    })
}

fn float(v: &Value, default: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let default = match default {
        Some(d) => d,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0.0)),
    };
    kwargs.assert_all_used()?;
    Ok(match v.kind() {
        ValueKind::Undefined => return Err(undefined_err("float")),
        ValueKind::Bool => Value::from(if v.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => f64::try_from(v.clone()).map(Value::from).unwrap_or(default),
        ValueKind::String => v
            .as_str()
            .unwrap_or_default()
            .trim()
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or(default),
        _ => default,
    })
}

// ---------------------------------------------------------------- JSON

/// How Python's `json.dumps` lays out its output.
struct JsonStyle {
    indent: Option<usize>,
    sort_keys: bool,
    ensure_ascii: bool,
    item_sep: &'static str,
}

fn write_json_str(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && !(' '..='~').contains(&c)) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_json(out: &mut String, v: &serde_json::Value, style: &JsonStyle, level: usize) {
    use serde_json::Value as J;
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = style.indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => out.push_str(&n.to_string()),
        J::String(s) => write_json_str(out, s, style.ensure_ascii),
        J::Array(a) if a.is_empty() => out.push_str("[]"),
        J::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(style.item_sep);
                }
                newline(out, level + 1);
                write_json(out, item, style, level + 1);
            }
            newline(out, level);
            out.push(']');
        }
        J::Object(m) if m.is_empty() => out.push_str("{}"),
        J::Object(m) => {
            let mut entries: Vec<(&String, &J)> = m.iter().collect();
            if style.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(style.item_sep);
                }
                newline(out, level + 1);
                write_json_str(out, k, style.ensure_ascii);
                out.push_str(": ");
                write_json(out, item, style, level + 1);
            }
            newline(out, level);
            out.push('}');
        }
    }
}

/// `json.dumps` as Ansible's `to_json` calls it: `", "` / `": "` separators, no HTML
/// escaping, non-ASCII escaped unless `ensure_ascii=false`; `indent` and `sort_keys` honoured.
fn to_json(v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?;
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let ensure_ascii = kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    dump_json(v, indent, sort_keys, ensure_ascii)
}

/// Ansible's `to_nice_json`: `indent=4`, `sort_keys=True`, `(',', ': ')` separators.
fn to_nice_json(v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?.unwrap_or(4);
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(true);
    let ensure_ascii = kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    dump_json(v, Some(indent), sort_keys, ensure_ascii)
}

fn dump_json(
    v: &Value,
    indent: Option<usize>,
    sort_keys: bool,
    ensure_ascii: bool,
) -> Result<String, Error> {
    let j = value_to_json(v)?;
    let style = JsonStyle {
        indent,
        sort_keys,
        ensure_ascii,
        // Python uses "," when indenting (the newline separates) and ", " otherwise.
        item_sep: if indent.is_some() { "," } else { ", " },
    };
    let mut out = String::new();
    write_json(&mut out, &j, &style, 0);
    Ok(out)
}

fn from_json(v: &Value) -> Result<Value, Error> {
    let s = str_arg(v, "from_json")?;
    serde_json::from_str::<serde_json::Value>(s)
        .map(|j| json_to_value(&j))
        .map_err(|e| op_err(format!("from_json: invalid JSON: {e}")))
}

// ---------------------------------------------------------------- YAML

fn load_yaml_docs(s: &str) -> Result<Vec<serde_json::Value>, Error> {
    let file: Arc<str> = Arc::from("<from_yaml>");
    crate::yaml::load_str(&file, s, crate::yaml::Limits::default())
        .map(|docs| docs.iter().map(crate::yaml::Node::to_json).collect())
        .map_err(|errs| {
            let msg = errs
                .first()
                .map(|d| d.message.clone())
                .unwrap_or_else(|| "invalid YAML".to_string());
            op_err(format!("from_yaml: {msg}"))
        })
}

/// One YAML document to a value (YAML 1.1 as Ansible reads it); an empty string is none.
fn from_yaml(v: &Value) -> Result<Value, Error> {
    let s = str_arg(v, "from_yaml")?;
    let docs = load_yaml_docs(s)?;
    match docs.len() {
        0 => Ok(Value::from(())),
        1 => Ok(json_to_value(&docs[0])),
        n => Err(op_err(format!(
            "from_yaml: expected one YAML document, found {n} (use from_yaml_all)"
        ))),
    }
}

fn from_yaml_all(v: &Value) -> Result<Value, Error> {
    let s = str_arg(v, "from_yaml_all")?;
    let docs = load_yaml_docs(s)?;
    Ok(Value::from_iter(docs.iter().map(json_to_value)))
}

/// Whether PyYAML could write `s` as a plain scalar that reads back as the same string.
fn yaml_plain_ok(s: &str) -> bool {
    if s.is_empty() || s.trim() != s || s.contains('\n') {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        // `-`, `?`, `:` may start a plain scalar when followed by a non-space.
        let second = s.chars().nth(1);
        if !(matches!(first, '-' | '?' | ':') && second.is_some_and(|c| c != ' ')) {
            return false;
        }
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    if s.chars().any(|c| c.is_control()) {
        return false;
    }
    matches!(crate::yaml::resolve_plain(s), crate::yaml::Kind::Str { .. })
}

fn yaml_scalar(out: &mut String, v: &serde_json::Value) {
    use serde_json::Value as J;
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Number(n) => out.push_str(&n.to_string()),
        J::String(s) if yaml_plain_ok(s) => out.push_str(s),
        J::String(s) if !s.chars().any(|c| c.is_control()) => {
            out.push('\'');
            out.push_str(&s.replace('\'', "''"));
            out.push('\'');
        }
        J::String(s) => write_json_str(out, s, false),
        J::Array(_) | J::Object(_) => {}
    }
}

fn is_collection(v: &serde_json::Value) -> bool {
    matches!(
        v,
        serde_json::Value::Array(_) | serde_json::Value::Object(_)
    )
}

fn is_leaf_collection(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Array(a) => !a.iter().any(is_collection),
        serde_json::Value::Object(m) => !m.values().any(is_collection),
        _ => false,
    }
}

fn sorted_entries(
    m: &serde_json::Map<String, serde_json::Value>,
    sort: bool,
) -> Vec<(&String, &serde_json::Value)> {
    let mut e: Vec<_> = m.iter().collect();
    if sort {
        e.sort_by(|a, b| a.0.cmp(b.0));
    }
    e
}

fn yaml_flow(out: &mut String, v: &serde_json::Value, sort: bool) {
    use serde_json::Value as J;
    match v {
        J::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                yaml_flow(out, item, sort);
            }
            out.push(']');
        }
        J::Object(m) => {
            out.push('{');
            for (i, (k, item)) in sorted_entries(m, sort).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                yaml_scalar(out, &J::String(k.clone()));
                out.push_str(": ");
                yaml_flow(out, item, sort);
            }
            out.push('}');
        }
        scalar => yaml_scalar(out, scalar),
    }
}

struct YamlStyle {
    indent: usize,
    /// PyYAML's `default_flow_style=None`: collections of scalars only are written inline.
    flow_leaves: bool,
    sort: bool,
}

/// Writes a block collection whose first line continues the current line (after `- ` or at
/// the start), every further line indented by `col`.
fn yaml_block(out: &mut String, v: &serde_json::Value, style: &YamlStyle, col: usize) {
    use serde_json::Value as J;
    let pad = " ".repeat(col);
    match v {
        J::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(&pad);
                }
                out.push('-');
                out.push_str(&" ".repeat(style.indent.saturating_sub(1).max(1)));
                yaml_value(out, item, style, col + style.indent.max(2));
            }
        }
        J::Object(m) => {
            for (i, (k, item)) in sorted_entries(m, style.sort).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(&pad);
                }
                yaml_scalar(out, &J::String(k.clone()));
                out.push(':');
                let inline = style.flow_leaves && is_leaf_collection(item);
                match item {
                    J::Array(a) if !a.is_empty() && !inline => {
                        // PyYAML does not indent a list under a mapping key.
                        out.push('\n');
                        out.push_str(&pad);
                        yaml_block(out, item, style, col);
                    }
                    J::Object(o) if !o.is_empty() && !inline => {
                        out.push('\n');
                        out.push_str(&" ".repeat(col + style.indent));
                        yaml_block(out, item, style, col + style.indent);
                    }
                    _ => {
                        out.push(' ');
                        yaml_value(out, item, style, col + style.indent);
                    }
                }
            }
        }
        scalar => {
            yaml_scalar(out, scalar);
            out.push('\n');
        }
    }
}

fn yaml_value(out: &mut String, v: &serde_json::Value, style: &YamlStyle, col: usize) {
    let empty = match v {
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(m) => m.is_empty(),
        _ => false,
    };
    if !is_collection(v) || empty || (style.flow_leaves && is_leaf_collection(v)) {
        yaml_flow(out, v, style.sort);
        out.push('\n');
    } else {
        yaml_block(out, v, style, col);
    }
}

fn dump_yaml(v: &Value, style: &YamlStyle) -> Result<String, Error> {
    let j = value_to_json(v)?;
    let mut out = String::new();
    yaml_value(&mut out, &j, style, 0);
    if !is_collection(&j) {
        // PyYAML ends a lone scalar document with an explicit end marker.
        out.push_str("...\n");
    }
    Ok(out)
}

/// Ansible's `to_yaml`: PyYAML `default_flow_style=None` (collections of scalars inline),
/// keys sorted unless `sort_keys=false`, `indent` (default 2).
fn to_yaml(v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?.unwrap_or(2).max(2);
    let sort = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(true);
    let flow = kwargs.get::<Option<bool>>("default_flow_style")?;
    kwargs.assert_all_used()?;
    if flow == Some(true) {
        let j = value_to_json(v)?;
        let mut out = String::new();
        yaml_flow(&mut out, &j, sort);
        out.push('\n');
        return Ok(out);
    }
    dump_yaml(
        v,
        &YamlStyle {
            indent,
            flow_leaves: flow.is_none(),
            sort,
        },
    )
}

/// Ansible's `to_nice_yaml`: block style everywhere, `indent=4`, keys sorted unless
/// `sort_keys=false`.
fn to_nice_yaml(v: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?.unwrap_or(4).max(2);
    let sort = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    dump_yaml(
        v,
        &YamlStyle {
            indent,
            flow_leaves: false,
            sort,
        },
    )
}

// ---------------------------------------------------------------- encodings and hashes

/// The `encoding` and `urlsafe` arguments of `b64encode`/`b64decode`, by position or name.
fn b64_args(
    what: &str,
    encoding: Option<String>,
    urlsafe: Option<bool>,
    kwargs: &Kwargs,
) -> Result<(String, bool), Error> {
    let encoding = match encoding {
        Some(e) => e,
        None => kwargs
            .get::<Option<String>>("encoding")?
            .unwrap_or_else(|| "utf-8".to_string()),
    };
    let urlsafe = match urlsafe {
        Some(u) => u,
        None => kwargs.get::<Option<bool>>("urlsafe")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    let norm = encoding.to_ascii_lowercase().replace('_', "-");
    let known = [
        "utf-8",
        "utf8",
        "utf-16",
        "utf-16-le",
        "utf-16le",
        "utf-16-be",
        "utf-16be",
        "ascii",
        "latin-1",
        "latin1",
        "iso-8859-1",
    ];
    if !known.contains(&norm.as_str()) {
        return Err(op_err(format!(
            "{what}: encoding '{encoding}' is not supported by rdeploy (utf-8, utf-16, utf-16-le, utf-16-be, ascii, latin-1)"
        )));
    }
    Ok((norm, urlsafe))
}

fn b64_engine(urlsafe: bool) -> &'static base64::engine::GeneralPurpose {
    if urlsafe {
        &base64::engine::general_purpose::URL_SAFE
    } else {
        &base64::engine::general_purpose::STANDARD
    }
}

/// `b64encode(encoding='utf-8', urlsafe=False)`: the text in `encoding`, base64-encoded
/// (`utf-16-le` for PowerShell's `-EncodedCommand`).
fn b64encode(
    v: &Value,
    encoding: Option<String>,
    urlsafe: Option<bool>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let (encoding, urlsafe) = b64_args("b64encode", encoding, urlsafe, &kwargs)?;
    let s = text_of(v, "b64encode")?;
    let bytes: Vec<u8> = match encoding.as_str() {
        "utf-16" => [0xff, 0xfe]
            .into_iter()
            .chain(s.encode_utf16().flat_map(u16::to_le_bytes))
            .collect(),
        "utf-16-le" | "utf-16le" => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        "utf-16-be" | "utf-16be" => s.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        "ascii" | "latin-1" | "latin1" | "iso-8859-1" => {
            let max = if encoding == "ascii" { 0x7f } else { 0xff };
            s.chars()
                .map(|c| {
                    u8::try_from(u32::from(c))
                        .ok()
                        .filter(|b| u32::from(*b) <= max)
                        .ok_or_else(|| {
                            op_err(format!("b64encode: '{c}' cannot be encoded as {encoding}"))
                        })
                })
                .collect::<Result<_, _>>()?
        }
        _ => s.into_bytes(),
    };
    Ok(b64_engine(urlsafe).encode(bytes))
}

/// `b64decode(encoding='utf-8', urlsafe=False)`: base64 to text read as `encoding`.
fn b64decode(
    v: &Value,
    encoding: Option<String>,
    urlsafe: Option<bool>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let (encoding, urlsafe) = b64_args("b64decode", encoding, urlsafe, &kwargs)?;
    let s = str_arg(v, "b64decode")?;
    let bytes = b64_engine(urlsafe)
        .decode(s.trim().as_bytes())
        .map_err(|e| op_err(format!("b64decode: invalid base64: {e}")))?;
    let utf16 = |bytes: &[u8], le: bool| -> Result<String, Error> {
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|c| {
                let pair = [c[0], c.get(1).copied().unwrap_or(0)];
                if le {
                    u16::from_le_bytes(pair)
                } else {
                    u16::from_be_bytes(pair)
                }
            })
            .collect();
        String::from_utf16(&units)
            .map_err(|_| op_err("b64decode: decoded bytes are not UTF-16 text"))
    };
    match encoding.as_str() {
        "utf-16" => match bytes.as_slice() {
            [0xfe, 0xff, rest @ ..] => utf16(rest, false),
            [0xff, 0xfe, rest @ ..] => utf16(rest, true),
            rest => utf16(rest, true),
        },
        "utf-16-le" | "utf-16le" => utf16(&bytes, true),
        "utf-16-be" | "utf-16be" => utf16(&bytes, false),
        "latin-1" | "latin1" | "iso-8859-1" => Ok(bytes.iter().map(|b| char::from(*b)).collect()),
        "ascii" if !bytes.is_ascii() => Err(op_err("b64decode: decoded bytes are not ASCII text")),
        _ => String::from_utf8(bytes)
            .map_err(|_| op_err("b64decode: decoded bytes are not UTF-8 text")),
    }
}

fn hash_hex(kind: &str, data: &[u8]) -> Result<String, Error> {
    use sha1::Digest as _;
    Ok(match kind {
        "md5" => format!("{:x}", md5::compute(data)),
        "sha1" => hex::encode(sha1::Sha1::digest(data)),
        "sha224" => hex::encode(sha2::Sha224::digest(data)),
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        other => {
            return Err(op_err(format!(
                "hash type '{other}' is not supported (md5, sha1, sha224, sha256, sha384, sha512)"
            )));
        }
    })
}

fn hash(v: &Value, kind: Option<&str>) -> Result<String, Error> {
    hash_hex(kind.unwrap_or("sha1"), text_of(v, "hash")?.as_bytes())
}

fn checksum(v: &Value) -> Result<String, Error> {
    hash_hex("sha1", text_of(v, "checksum")?.as_bytes())
}

// ---------------------------------------------------------------- dicts

fn merge_lists(
    low: Vec<serde_json::Value>,
    high: Vec<serde_json::Value>,
    how: &str,
) -> Vec<serde_json::Value> {
    match how {
        "keep" => low,
        "append" => low.into_iter().chain(high).collect(),
        "prepend" => high.into_iter().chain(low).collect(),
        "append_rp" => {
            let mut rest: Vec<_> = low.into_iter().filter(|x| !high.contains(x)).collect();
            rest.extend(high);
            rest
        }
        "prepend_rp" => {
            let rest: Vec<_> = low.into_iter().filter(|x| !high.contains(x)).collect();
            high.into_iter().chain(rest).collect()
        }
        _ => high,
    }
}

/// Merges `high` into `low` as Ansible's `merge_hash` (and `combine`) do: `recursive` merges
/// nested dicts; lists follow `list_merge` (`replace`, `keep`, `append`, ...).
pub fn merge_maps(
    low: &mut serde_json::Map<String, serde_json::Value>,
    high: serde_json::Map<String, serde_json::Value>,
    recursive: bool,
    list_merge: &str,
) {
    use serde_json::Value as J;
    for (k, hv) in high {
        // Taking in place keeps the key where it was, as Python's dict.update does.
        let merged = match (low.get_mut(&k).map(std::mem::take), hv) {
            (Some(J::Object(mut lo)), J::Object(hi)) if recursive => {
                merge_maps(&mut lo, hi, recursive, list_merge);
                J::Object(lo)
            }
            (Some(J::Array(lo)), J::Array(hi)) => J::Array(merge_lists(lo, hi, list_merge)),
            (_, hv) => hv,
        };
        low.insert(k, merged);
    }
}

/// Ansible's `combine`: later dicts win; `recursive=true` merges nested dicts; `list_merge`
/// is `replace` (default), `keep`, `append`, `prepend`, `append_rp` or `prepend_rp`. Lists of
/// dicts (as input or argument) are flattened one level first.
fn combine(v: &Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let recursive = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let list_merge = kwargs
        .get::<Option<String>>("list_merge")?
        .unwrap_or_else(|| "replace".to_string());
    kwargs.assert_all_used()?;
    if !matches!(
        list_merge.as_str(),
        "replace" | "keep" | "append" | "prepend" | "append_rp" | "prepend_rp"
    ) {
        return Err(op_err(format!(
            "combine: unknown list_merge '{list_merge}'"
        )));
    }
    let mut dicts = Vec::new();
    for term in std::iter::once(v).chain(others.iter()) {
        match value_to_json(term)? {
            serde_json::Value::Array(a) => dicts.extend(a),
            j => dicts.push(j),
        }
    }
    let mut out = serde_json::Map::new();
    for d in dicts {
        match d {
            serde_json::Value::Object(m) => merge_maps(&mut out, m, recursive, &list_merge),
            other => {
                return Err(op_err(format!(
                    "combine expects dicts, got {}",
                    json_type_name(&other)
                )));
            }
        }
    }
    Ok(json_to_value(&serde_json::Value::Object(out)))
}

fn json_type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "none",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "list",
        serde_json::Value::Object(_) => "dict",
    }
}

fn key_names(kwargs: &Kwargs) -> Result<(String, String), Error> {
    let k = kwargs
        .get::<Option<String>>("key_name")?
        .unwrap_or_else(|| "key".to_string());
    let v = kwargs
        .get::<Option<String>>("value_name")?
        .unwrap_or_else(|| "value".to_string());
    kwargs.assert_all_used()?;
    Ok((k, v))
}

fn dict2items(v: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let (kn, vn) = key_names(&kwargs)?;
    if v.kind() != ValueKind::Map {
        return Err(op_err(format!(
            "dict2items expects a dict, got {}",
            v.kind()
        )));
    }
    let mut out = Vec::new();
    for key in v.try_iter()? {
        let val = v.get_item(&key)?;
        let mut m: IndexMap<Value, Value> = IndexMap::new();
        m.insert(Value::from(kn.as_str()), key);
        m.insert(Value::from(vn.as_str()), val);
        out.push(Value::from_pairs(m));
    }
    Ok(Value::from(out))
}

fn items2dict(v: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let (kn, vn) = key_names(&kwargs)?;
    let mut m: IndexMap<Value, Value> = IndexMap::new();
    for item in items(v, "items2dict")? {
        let key = item.get_attr(&kn)?;
        let val = item.get_attr(&vn)?;
        if key.is_undefined() || val.is_undefined() {
            return Err(op_err(format!(
                "items2dict: every item needs '{kn}' and '{vn}' keys"
            )));
        }
        m.insert(key, val);
    }
    Ok(Value::from_pairs(m))
}

/// A list of `[key, value]` pairs (or a dict) to a dict.
fn pairs_to_map(v: &Value) -> Result<IndexMap<Value, Value>, Error> {
    let mut m = IndexMap::new();
    if v.kind() == ValueKind::Map {
        for key in v.try_iter()? {
            let val = v.get_item(&key)?;
            m.insert(key, val);
        }
        return Ok(m);
    }
    for pair in items(v, "dict")? {
        let parts: Vec<Value> = items(&pair, "dict")?;
        match parts.as_slice() {
            [k, val] => {
                m.insert(k.clone(), val.clone());
            }
            _ => return Err(op_err("dict expects a list of [key, value] pairs")),
        }
    }
    Ok(m)
}

fn dict_filter(v: &Value) -> Result<Value, Error> {
    Ok(Value::from_pairs(pairs_to_map(v)?))
}

/// Python's `dict()`: from a dict or a list of pairs, updated with keyword arguments.
fn dict_function(v: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let mut m = match v {
        Some(v) if !v.is_undefined() && !v.is_none() => pairs_to_map(&v)?,
        _ => IndexMap::new(),
    };
    for key in kwargs.args() {
        let val: Value = kwargs.get(key)?;
        m.insert(Value::from(key), val);
    }
    Ok(Value::from_pairs(m))
}

// ---------------------------------------------------------------- logic

/// `cond | ternary(a, b, none_val)`: `none_val` when the value is none and one was given,
/// else `a` when the value is truthy (Python truthiness), else `b`.
fn ternary(
    v: &Value,
    true_val: Value,
    false_val: Value,
    none_val: Option<Value>,
) -> Result<Value, Error> {
    if v.is_undefined() {
        return Err(undefined_err("ternary"));
    }
    if v.is_none()
        && let Some(n) = none_val
    {
        return Ok(n);
    }
    Ok(if v.is_true() { true_val } else { false_val })
}

/// Fails when the value is undefined: with `msg`, or "mandatory variable 'NAME' is not
/// defined" (the error conversion recognises the failing filter and words it so).
fn mandatory(v: &Value, msg: Option<String>) -> Result<Value, Error> {
    if v.is_undefined() {
        return Err(match msg {
            Some(m) => Error::new(ErrorKind::UndefinedError, m),
            // An operation on the undefined value yields minijinja's error that remembers
            // which variable it was; the engine turns that into "`NAME` is undefined".
            None => match v.get_item(&Value::from(0)) {
                Err(e) => e,
                Ok(_) => Error::new(ErrorKind::UndefinedError, MANDATORY_MARK),
            },
        });
    }
    Ok(v.clone())
}

/// Python's `shlex.quote`, as Ansible's `quote` filter: none is `''`.
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".to_string();
    }
    let safe = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

fn quote(v: &Value) -> Result<String, Error> {
    Ok(shell_quote(&text_of(v, "quote")?))
}

// ---------------------------------------------------------------- lists

fn flatten_into(out: &mut Vec<Value>, list: Vec<Value>, levels: Option<i64>, skip_nulls: bool) {
    for el in list {
        let is_null = el.is_none() || matches!(el.as_str(), Some("None" | "null"));
        if skip_nulls && is_null {
            continue;
        }
        let is_seq = matches!(el.kind(), ValueKind::Seq | ValueKind::Iterable);
        match levels {
            _ if !is_seq => out.push(el),
            None => {
                let inner: Vec<Value> = el.try_iter().map(|i| i.collect()).unwrap_or_default();
                flatten_into(out, inner, None, skip_nulls);
            }
            Some(n) if n >= 1 => {
                let inner: Vec<Value> = el.try_iter().map(|i| i.collect()).unwrap_or_default();
                flatten_into(out, inner, Some(n - 1), skip_nulls);
            }
            Some(_) => out.push(el),
        }
    }
}

/// Ansible's `flatten(levels=None, skip_nulls=True)`.
fn flatten(v: &Value, levels: Option<i64>, kwargs: Kwargs) -> Result<Value, Error> {
    let levels = match levels {
        Some(l) => Some(l),
        None => kwargs.get::<Option<i64>>("levels")?,
    };
    let skip_nulls = kwargs.get::<Option<bool>>("skip_nulls")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    let mut out = Vec::new();
    flatten_into(&mut out, items(v, "flatten")?, levels, skip_nulls);
    Ok(Value::from(out))
}

/// `itertools.product`: every combination, as lists.
fn product(v: &Value, others: Rest<Value>) -> Result<Value, Error> {
    let mut result: Vec<Vec<Value>> = vec![Vec::new()];
    for list in std::iter::once(v).chain(others.iter()) {
        let pool = items(list, "product")?;
        let mut next = Vec::with_capacity(result.len() * pool.len());
        for prefix in &result {
            for item in &pool {
                let mut p = prefix.clone();
                p.push(item.clone());
                next.push(p);
            }
        }
        result = next;
    }
    Ok(Value::from_iter(
        result
            .into_iter()
            .map(|p| Value::from_object(Tuple::new(p))),
    ))
}

fn unique_push(out: &mut Vec<Value>, v: Value) {
    if !out.contains(&v) {
        out.push(v);
    }
}

fn union(a: &Value, b: &Value) -> Result<Value, Error> {
    let mut out = Vec::new();
    for v in items(a, "union")?.into_iter().chain(items(b, "union")?) {
        unique_push(&mut out, v);
    }
    Ok(Value::from(out))
}

fn intersect(a: &Value, b: &Value) -> Result<Value, Error> {
    let other = items(b, "intersect")?;
    let mut out = Vec::new();
    for v in items(a, "intersect")? {
        if other.contains(&v) {
            unique_push(&mut out, v);
        }
    }
    Ok(Value::from(out))
}

fn difference(a: &Value, b: &Value) -> Result<Value, Error> {
    let other = items(b, "difference")?;
    let mut out = Vec::new();
    for v in items(a, "difference")? {
        if !other.contains(&v) {
            unique_push(&mut out, v);
        }
    }
    Ok(Value::from(out))
}

fn symmetric_difference(a: &Value, b: &Value) -> Result<Value, Error> {
    let la = items(a, "symmetric_difference")?;
    let lb = items(b, "symmetric_difference")?;
    let mut out = Vec::new();
    for v in la.iter().chain(lb.iter()) {
        if la.contains(v) != lb.contains(v) {
            unique_push(&mut out, v.clone());
        }
    }
    Ok(Value::from(out))
}

// ---------------------------------------------------------------- regex

/// Compiles a Python-style pattern with `ignorecase` / `multiline` flags, translated as the
/// modules' regex arguments are (`\Z`, ...; see `modules::files::pyre`).
pub fn compile_regex(pattern: &str, ignorecase: bool, multiline: bool) -> Result<Regex, Error> {
    regex::RegexBuilder::new(&crate::modules::files::pyre::translate(pattern))
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|e| op_err(format!("invalid regular expression '{pattern}': {e}")))
}

fn regex_flags(kwargs: &Kwargs) -> Result<(bool, bool), Error> {
    let i = kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let m = kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false);
    Ok((i, m))
}

/// Translates a Python `re.sub` replacement (`\1`, `\g<1>`, `\g<name>`, `\n`, `\\`) into the
/// `regex` crate's syntax (`${1}`, `${name}`, `$$` for a literal `$`).
pub fn python_replacement(repl: &str) -> Result<String, Error> {
    let mut out = String::with_capacity(repl.len());
    let chars: Vec<char> = repl.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '$' {
            out.push_str("$$");
            i += 1;
            continue;
        }
        if c != '\\' || i + 1 >= chars.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let n = chars[i + 1];
        match n {
            '0'..='9' => {
                let mut j = i + 1;
                let mut num = String::new();
                while j < chars.len() && j < i + 3 && chars[j].is_ascii_digit() {
                    num.push(chars[j]);
                    j += 1;
                }
                out.push_str(&format!("${{{num}}}"));
                i = j;
            }
            'g' => {
                let rest: String = chars[i + 2..].iter().collect();
                let name = rest
                    .strip_prefix('<')
                    .and_then(|r| r.split_once('>'))
                    .map(|(name, _)| name.to_string())
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| op_err(format!("bad group reference in '{repl}'")))?;
                out.push_str(&format!("${{{name}}}"));
                i += 2 + name.chars().count() + 2;
            }
            'n' => {
                out.push('\n');
                i += 2;
            }
            't' => {
                out.push('\t');
                i += 2;
            }
            'r' => {
                out.push('\r');
                i += 2;
            }
            '\\' => {
                out.push('\\');
                i += 2;
            }
            other => {
                out.push('\\');
                out.push(other);
                i += 2;
            }
        }
    }
    Ok(out)
}

/// `regex_replace(pattern, replacement='', ignorecase=False, multiline=False, count=0)`.
fn regex_replace(
    v: &Value,
    pattern: Option<String>,
    replacement: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let (i, m) = regex_flags(&kwargs)?;
    let count = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
    let mandatory_count = kwargs.get::<Option<usize>>("mandatory_count")?.unwrap_or(0);
    kwargs.assert_all_used()?;
    let s = text_of(v, "regex_replace")?;
    let pattern = pattern.unwrap_or_default();
    let re = compile_regex(&pattern, i, m)?;
    let repl = python_replacement(replacement.as_deref().unwrap_or(""))?;
    if mandatory_count != 0 {
        let subs = re.find_iter(&s).count();
        let subs = if count == 0 { subs } else { subs.min(count) };
        if subs != mandatory_count {
            // Ansible's message prints `count` (the argument) where it means the matches.
            return Err(op_err(format!(
                "'{pattern}' should match {mandatory_count} times, but matches {count} times in '{s}'"
            )));
        }
    }
    Ok(re.replacen(&s, count, repl.as_str()).into_owned())
}

/// `regex_search(pattern, '\\1', '\\g<name>', ...)`: the match (or none); with group
/// arguments, the list of those groups.
fn regex_search(
    v: &Value,
    pattern: String,
    groups: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let (i, m) = regex_flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let s = text_of(v, "regex_search")?;
    let re = compile_regex(&pattern, i, m)?;
    let Some(caps) = re.captures(&s) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(caps.get(0).map(|x| x.as_str()).unwrap_or("")));
    }
    let mut out = Vec::new();
    for g in groups.iter() {
        let got = if let Some(name) = g.strip_prefix("\\g<").and_then(|r| r.strip_suffix('>')) {
            match name.parse::<usize>() {
                Ok(n) => caps.get(n),
                Err(_) => caps.name(name),
            }
        } else if let Some(num) = g.strip_prefix('\\') {
            let n: usize = num
                .parse()
                .map_err(|_| op_err(format!("regex_search: unknown argument '{g}'")))?;
            caps.get(n)
        } else {
            return Err(op_err(format!("regex_search: unknown argument '{g}'")));
        };
        out.push(
            got.map(|x| Value::from(x.as_str()))
                .unwrap_or(Value::from(())),
        );
    }
    Ok(Value::from(out))
}

/// Python's `re.findall`: the matches; with one group, that group; with several, lists.
fn regex_findall(v: &Value, pattern: String, kwargs: Kwargs) -> Result<Value, Error> {
    let (i, m) = regex_flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let s = text_of(v, "regex_findall")?;
    let re = compile_regex(&pattern, i, m)?;
    let groups = re.captures_len() - 1;
    let mut out = Vec::new();
    for caps in re.captures_iter(&s) {
        let g = |n: usize| Value::from(caps.get(n).map(|x| x.as_str()).unwrap_or(""));
        out.push(match groups {
            0 => g(0),
            1 => g(1),
            n => Value::from_object(Tuple::new((1..=n).map(g).collect())),
        });
    }
    Ok(Value::from(out))
}

/// Python's `re.escape` (3.7+: only regex metacharacters and whitespace), or
/// `re_type='posix_basic'`.
fn regex_escape(v: &Value, re_type: Option<String>) -> Result<String, Error> {
    let s = text_of(v, "regex_escape")?;
    let special: &str = match re_type.as_deref().unwrap_or("python") {
        "python" => "()[]{}?*+-|^$\\.&~# \t\n\r\u{b}\u{c}",
        "posix_basic" => "[].^$*\\",
        other => {
            return Err(op_err(format!(
                "regex_escape: re_type '{other}' is not supported (python, posix_basic)"
            )));
        }
    };
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if special.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

// ---------------------------------------------------------------- paths (posixpath)

fn basename(v: &Value) -> Result<String, Error> {
    let p = text_of(v, "basename")?;
    Ok(p.rsplit('/').next().unwrap_or("").to_string())
}

fn dirname(v: &Value) -> Result<String, Error> {
    let p = text_of(v, "dirname")?;
    let head = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    if !head.is_empty() && head.chars().any(|c| c != '/') {
        Ok(head.trim_end_matches('/').to_string())
    } else {
        Ok(head.to_string())
    }
}

fn splitext(v: &Value) -> Result<Value, Error> {
    let p = text_of(v, "splitext")?;
    let name_start = p.rfind('/').map(|i| i + 1).unwrap_or(0);
    if let Some(dot) = p.rfind('.')
        && dot > name_start
        && p[name_start..dot].chars().any(|c| c != '.')
    {
        return Ok(Value::from_object(Tuple::new(vec![
            Value::from(&p[..dot]),
            Value::from(&p[dot..]),
        ])));
    }
    Ok(Value::from_object(Tuple::new(vec![
        Value::from(p),
        Value::from(""),
    ])))
}

// ---------------------------------------------------------------- lookup

/// `lookup('env', 'NAME', ...)`: the controller's environment variables joined with `,`
/// (unset is `''`, or `default=`). Other lookup plugins are not supported.
#[cfg(test)]
mod unit_tests {
    use crate::diag::Loc;
    use crate::template::{environment, render_str};

    use serde_json::json;

    fn r(src: &str) -> String {
        r_ctx(src, json!({}))
    }

    fn r_ctx(src: &str, ctx: serde_json::Value) -> String {
        let env = environment();
        match render_str(
            &env,
            src,
            &crate::template::json_to_value(&ctx),
            &Loc::file_start("t"),
        ) {
            Ok(s) => s,
            Err(e) => panic!("{src}: {e}"),
        }
    }

    fn err(src: &str) -> String {
        let env = environment();
        match render_str(
            &env,
            src,
            &crate::template::json_to_value(&json!({})),
            &Loc::file_start("t"),
        ) {
            Ok(s) => panic!("{src}: expected an error, got {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn table(cases: &[(&str, &str)]) {
        for (src, want) in cases {
            assert_eq!(&r(src), want, "template: {src}");
        }
    }

    #[test]
    fn bool_reads_yaml_words() {
        table(&[
            ("{{ 'yes' | bool }}", "True"),
            ("{{ 'On' | bool }}", "True"),
            ("{{ '1' | bool }}", "True"),
            ("{{ 'TRUE' | bool }}", "True"),
            ("{{ 'y' | bool }}", "True"),
            ("{{ 'no' | bool }}", "False"),
            ("{{ 'off' | bool }}", "False"),
            ("{{ '0' | bool }}", "False"),
            ("{{ 'False' | bool }}", "False"),
            ("{{ 'n' | bool }}", "False"),
            ("{{ '' | bool }}", "False"),
            ("{{ none | bool }}", "False"),
            ("{{ 1 | bool }}", "True"),
            ("{{ 0 | bool }}", "False"),
            ("{{ true | bool }}", "True"),
        ]);
        assert!(err("{{ 'maybe' | bool }}").contains("cannot read 'maybe' as a boolean"));
    }

    #[test]
    fn int_and_float_default_to_zero() {
        table(&[
            ("{{ '42' | int }}", "42"),
            ("{{ ' 7 ' | int }}", "7"),
            ("{{ '3.9' | int }}", "3"),
            ("{{ 'abc' | int }}", "0"),
            ("{{ 'abc' | int(5) }}", "5"),
            ("{{ 'abc' | int(default=9) }}", "9"),
            ("{{ 'ff' | int(base=16) }}", "255"),
            ("{{ '0x1A' | int(base=16) }}", "26"),
            ("{{ '0x1A' | int(0, 16) }}", "26"),
            ("{{ '0é1' | int(base=16) }}", "0"),
            ("{{ '0x' | int(base=16) }}", "0"),
            ("{{ '755' | int(base=8) }}", "493"),
            ("{{ true | int }}", "1"),
            ("{{ 2.7 | int }}", "2"),
            ("{{ none | int }}", "0"),
            ("{{ '1.5' | float }}", "1.5"),
            ("{{ 'x' | float }}", "0.0"),
            ("{{ 3 | float }}", "3.0"),
            ("{{ 'x' | float(default=2.5) }}", "2.5"),
        ]);
    }

    #[test]
    fn default_and_omit() {
        table(&[
            ("{{ missing | default('d') }}", "d"),
            ("{{ missing | d('d') }}", "d"),
            ("{{ '' | default('d') }}", ""),
            ("{{ '' | default('d', true) }}", "d"),
            ("{{ 0 | default('d', true) }}", "d"),
            ("{{ none | default('d') }}", ""),
            ("{{ none }}|{{ [none] }}", "|[None]"),
        ]);
        assert_eq!(r("{{ missing | default(omit) }}"), crate::template::OMIT);
        assert_eq!(r("{{ omit }}"), crate::template::OMIT);
    }

    #[test]
    fn string_builtins() {
        table(&[
            ("{{ 42 | string }}", "42"),
            ("{{ 'AbC' | lower }}", "abc"),
            ("{{ 'AbC' | upper }}", "ABC"),
            ("{{ '  x  ' | trim }}", "x"),
            ("{{ 'a-b-c' | replace('-', '+') }}", "a+b+c"),
            ("{{ 'a,b,c' | split(',') | join('|') }}", "a|b|c"),
            ("{{ 'a b  c' | split | length }}", "3"),
            ("{{ [1, 2, 3] | join(', ') }}", "1, 2, 3"),
            ("{{ 'a b&c' | urlencode }}", "a%20b%26c"),
        ]);
    }

    #[test]
    fn regex_filters() {
        table(&[
            (
                "{{ 'ansible' | regex_replace('^a.*i(.*)$', 'a\\\\1') }}",
                "able",
            ),
            (
                "{{ 'foobar' | regex_replace('^f.*o(.*)$', '\\\\1') }}",
                "bar",
            ),
            (
                "{{ 'localhost:80' | regex_replace('^(?P<host>.+):(?P<port>\\\\d+)$', '\\\\g<host>, \\\\g<port>') }}",
                "localhost, 80",
            ),
            ("{{ 'a.b.c' | regex_replace('\\\\.', '$') }}", "a$b$c"),
            ("{{ 'aaa' | regex_replace('a', 'b', count=2) }}", "bba"),
            (
                "{{ 'ABC' | regex_replace('b', 'x', ignorecase=true) }}",
                "AxC",
            ),
            (
                "{{ 'server1/database42' | regex_search('database[0-9]+') }}",
                "database42",
            ),
            ("{{ 'foo' | regex_search('bar') is none }}", "True"),
            (
                "{{ 'server1/database42' | regex_search('server([0-9]+)/database([0-9]+)', '\\\\1', '\\\\2') }}",
                "['1', '42']",
            ),
            (
                "{{ 'ab12' | regex_search('(?P<l>[a-z]+)(?P<d>\\\\d+)', '\\\\g<d>') }}",
                "['12']",
            ),
            (
                "{{ 'a1b22c333' | regex_findall('\\\\d+') }}",
                "['1', '22', '333']",
            ),
            (
                "{{ 'k=v, x=y' | regex_findall('(\\\\w)=(\\\\w)') }}",
                "[('k', 'v'), ('x', 'y')]",
            ),
            (
                "{{ '^f.*o(.*)$' | regex_escape }}",
                "\\^f\\.\\*o\\(\\.\\*\\)\\$",
            ),
            ("{{ 'a_b-c' | regex_escape }}", "a_b\\-c"),
            ("{{ '^f.*o' | regex_escape('posix_basic') }}", "\\^f\\.\\*o"),
        ]);
        assert!(err("{{ 'x' | regex_replace('(') }}").contains("invalid regular expression"));
    }

    #[test]
    fn python_replacement_translation() {
        use super::python_replacement;
        assert_eq!(
            python_replacement("\\1-\\g<2>-\\g<n>").unwrap(),
            "${1}-${2}-${n}"
        );
        assert_eq!(python_replacement("cost $5\\n").unwrap(), "cost $$5\n");
        assert_eq!(python_replacement("a\\\\b").unwrap(), "a\\b");
        assert!(python_replacement("\\g<").is_err());
    }

    #[test]
    fn paths() {
        table(&[
            ("{{ '/etc/asdf/foo.txt' | basename }}", "foo.txt"),
            ("{{ '/etc/asdf/' | basename }}", ""),
            ("{{ 'foo' | basename }}", "foo"),
            ("{{ '/etc/asdf/foo.txt' | dirname }}", "/etc/asdf"),
            ("{{ '/etc/asdf/' | dirname }}", "/etc/asdf"),
            ("{{ '/foo' | dirname }}", "/"),
            ("{{ 'foo' | dirname }}", ""),
            ("{{ '/a/b.tar.gz' | splitext }}", "('/a/b.tar', '.gz')"),
            ("{{ '.bashrc' | splitext }}", "('.bashrc', '')"),
            ("{{ 'a/.x.y' | splitext | last }}", ".y"),
            ("{{ 'noext' | splitext | last }}", ""),
        ]);
    }

    #[test]
    fn json_filters_match_python() {
        let ctx = json!({"d": {"b": "<a href='x'>&</a>", "a": [1, 2.5, null, true]}, "u": "é"});
        assert_eq!(
            r_ctx("{{ d | to_json }}", ctx.clone()),
            "{\"b\": \"<a href='x'>&</a>\", \"a\": [1, 2.5, null, true]}"
        );
        assert_eq!(
            r_ctx("{{ d | to_nice_json }}", ctx.clone()),
            "{\n    \"a\": [\n        1,\n        2.5,\n        null,\n        true\n    ],\n    \"b\": \"<a href='x'>&</a>\"\n}"
        );
        assert_eq!(r_ctx("{{ u | to_json }}", ctx.clone()), "\"\\u00e9\"");
        assert_eq!(
            r_ctx("{{ u | to_json(ensure_ascii=false) }}", ctx.clone()),
            "\"é\""
        );
        assert_eq!(r_ctx("{{ {} | to_nice_json }}", ctx.clone()), "{}");
        assert_eq!(r("{{ ('{\"a\": [1, 2]}' | from_json).a[1] }}"), "2");
        assert!(err("{{ '{' | from_json }}").contains("from_json"));
    }

    #[test]
    fn yaml_filters() {
        let ctx = json!({"d": {"b": [1, 2], "a": {"x": "yes", "y": "plain text"}, "c": "a: b"}});
        assert_eq!(
            r_ctx("{{ d | to_yaml }}", ctx.clone()),
            "a: {x: 'yes', y: plain text}\nb: [1, 2]\nc: 'a: b'\n"
        );
        assert_eq!(
            r_ctx("{{ d | to_nice_yaml }}", ctx.clone()),
            "a:\n    x: 'yes'\n    y: plain text\nb:\n-   1\n-   2\nc: 'a: b'\n"
        );
        assert_eq!(
            r_ctx(
                "{{ d | to_nice_yaml(indent=2, sort_keys=false) }}",
                ctx.clone()
            ),
            "b:\n- 1\n- 2\na:\n  x: 'yes'\n  y: plain text\nc: 'a: b'\n"
        );
        assert_eq!(
            r("{{ [{'a': 1, 'b': [2]}] | to_nice_yaml }}"),
            "-   a: 1\n    b:\n    -   2\n"
        );
        assert_eq!(r("{{ 'x' | to_yaml }}"), "x\n...\n");
        assert_eq!(r("{{ ('a: yes\\nb: [1, 2]' | from_yaml).a }}"), "True");
        assert_eq!(r("{{ ('a: 0644' | from_yaml).a }}"), "420");
        assert_eq!(
            r("{{ ('---\\na: 1\\n---\\nb: 2\\n' | from_yaml_all) | length }}"),
            "2"
        );
        // Round trip.
        assert_eq!(
            r_ctx("{{ (d | to_nice_yaml | from_yaml) == d }}", ctx.clone()),
            "True"
        );
        assert_eq!(r_ctx("{{ (d | to_yaml | from_yaml) == d }}", ctx), "True");
    }

    #[test]
    fn encodings_and_hashes() {
        table(&[
            ("{{ 'hello' | b64encode }}", "aGVsbG8="),
            ("{{ 'aGVsbG8=' | b64decode }}", "hello"),
            (
                "{{ 'test' | hash('sha1') }}",
                "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
            ),
            (
                "{{ 'test' | hash }}",
                "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
            ),
            (
                "{{ 'test' | hash('sha256') }}",
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            ),
            (
                "{{ 'test' | checksum }}",
                "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
            ),
        ]);
        assert!(err("{{ 'x' | hash('nope') }}").contains("not supported"));
        assert!(err("{{ '!!' | b64decode }}").contains("invalid base64"));
    }

    #[test]
    fn combine_dicts() {
        table(&[
            (
                "{{ {'a': 1, 'b': 2} | combine({'b': 3, 'c': 4}) }}",
                "{'a': 1, 'b': 3, 'c': 4}",
            ),
            (
                "{{ {'a': 1} | combine({'b': 2}, {'a': 9}) }}",
                "{'a': 9, 'b': 2}",
            ),
            ("{{ [{'a': 1}, {'a': 2}] | combine }}", "{'a': 2}"),
            (
                "{{ {'a': {'x': 1, 'y': 2}} | combine({'a': {'y': 3}}) }}",
                "{'a': {'y': 3}}",
            ),
            (
                "{{ {'a': {'x': 1, 'y': 2}} | combine({'a': {'y': 3}}, recursive=true) }}",
                "{'a': {'x': 1, 'y': 3}}",
            ),
            ("{{ {'l': [1, 2]} | combine({'l': [3]}) }}", "{'l': [3]}"),
            (
                "{{ {'l': [1, 2]} | combine({'l': [2, 3]}, list_merge='append') }}",
                "{'l': [1, 2, 2, 3]}",
            ),
            (
                "{{ {'l': [1, 2]} | combine({'l': [2, 3]}, list_merge='append_rp') }}",
                "{'l': [1, 2, 3]}",
            ),
            (
                "{{ {'l': [1, 2]} | combine({'l': [3]}, list_merge='prepend') }}",
                "{'l': [3, 1, 2]}",
            ),
            (
                "{{ {'l': [1, 2]} | combine({'l': [3]}, list_merge='keep') }}",
                "{'l': [1, 2]}",
            ),
        ]);
        assert!(err("{{ {'a': 1} | combine(5) }}").contains("combine expects dicts"));
    }

    #[test]
    fn dict_items_conversions() {
        table(&[
            (
                "{{ {'a': 1, 'b': 2} | dict2items }}",
                "[{'key': 'a', 'value': 1}, {'key': 'b', 'value': 2}]",
            ),
            (
                "{{ {'a': 1} | dict2items(key_name='k', value_name='v') }}",
                "[{'k': 'a', 'v': 1}]",
            ),
            ("{{ [{'key': 'a', 'value': 1}] | items2dict }}", "{'a': 1}"),
            (
                "{{ [{'n': 'a', 'v': 1}] | items2dict(key_name='n', value_name='v') }}",
                "{'a': 1}",
            ),
            ("{{ [['a', 1], ['b', 2]] | dict }}", "{'a': 1, 'b': 2}"),
            ("{{ dict(['a', 'b'] | zip([1, 2])) }}", "{'a': 1, 'b': 2}"),
            ("{{ dict(x=1) }}", "{'x': 1}"),
            ("{{ {'a': 1} | items | list }}", "[('a', 1)]"),
        ]);
    }

    #[test]
    fn list_filters() {
        let ctx = json!({"users": [
            {"name": "bob", "uid": 3, "admin": true},
            {"name": "al", "uid": 1, "admin": false},
            {"name": "cy", "uid": 2}
        ]});
        let cases = [
            (
                "{{ users | selectattr('admin', 'defined') | map(attribute='name') | join(',') }}",
                "bob,al",
            ),
            (
                "{{ users | selectattr('name', 'equalto', 'al') | map(attribute='uid') | first }}",
                "1",
            ),
            (
                "{{ users | rejectattr('name', 'match', 'b') | map(attribute='name') | list }}",
                "['al', 'cy']",
            ),
            (
                "{{ users | selectattr('name', 'search', 'y') | map(attribute='name') | list }}",
                "['cy']",
            ),
            (
                "{{ users | sort(attribute='uid') | map(attribute='name') | join(',') }}",
                "al,cy,bob",
            ),
            (
                "{{ users | sort(attribute='uid', reverse=true) | map(attribute='name') | first }}",
                "bob",
            ),
            (
                "{{ users | map(attribute='name') | map('upper') | list }}",
                "['BOB', 'AL', 'CY']",
            ),
            ("{{ users | length }}", "3"),
            ("{{ users | count }}", "3"),
        ];
        for (src, want) in cases {
            assert_eq!(r_ctx(src, ctx.clone()), want, "{src}");
        }
        table(&[
            ("{{ [3, 1, 3, 2] | unique | list }}", "[3, 1, 2]"),
            ("{{ [3, 1, 2] | sort }}", "[1, 2, 3]"),
            ("{{ [3, 1, 2] | first }}", "3"),
            ("{{ [3, 1, 2] | last }}", "2"),
            ("{{ [3, 1, 2] | min }}", "1"),
            ("{{ [3, 1, 2] | max }}", "3"),
            ("{{ [1, [2, [3, [4]]]] | flatten }}", "[1, 2, 3, 4]"),
            (
                "{{ [1, [2, [3, [4]]]] | flatten(levels=1) }}",
                "[1, 2, [3, [4]]]",
            ),
            ("{{ [1, none, [2, 'null']] | flatten }}", "[1, 2]"),
            ("{{ [1, none] | flatten(skip_nulls=false) }}", "[1, None]"),
            (
                "{{ [1, 2] | zip(['a', 'b']) | list }}",
                "[(1, 'a'), (2, 'b')]",
            ),
            (
                "{{ [1, 2] | product(['a', 'b']) | list }}",
                "[(1, 'a'), (1, 'b'), (2, 'a'), (2, 'b')]",
            ),
            ("{{ 'ab' | list }}", "['a', 'b']"),
            ("{{ [1, 2, 3, 2] | difference([2]) }}", "[1, 3]"),
            ("{{ [1, 2, 3, 2] | intersect([2, 3, 4]) }}", "[2, 3]"),
            ("{{ [1, 2] | union([2, 3]) }}", "[1, 2, 3]"),
            ("{{ [1, 2] | symmetric_difference([2, 3]) }}", "[1, 3]"),
            ("{{ [1, 2, 3] | sum }}", "6"),
            ("{{ -3 | abs }}", "3"),
            ("{{ 2.567 | round(1) }}", "2.6"),
            ("{{ range(3) | list }}", "[0, 1, 2]"),
            ("{{ range(1, 10, 4) | join(',') }}", "1,5,9"),
        ]);
    }

    #[test]
    fn ternary_and_mandatory() {
        table(&[
            ("{{ true | ternary('y', 'n') }}", "y"),
            ("{{ false | ternary('y', 'n') }}", "n"),
            ("{{ none | ternary('y', 'n') }}", "n"),
            ("{{ none | ternary('y', 'n', 'null') }}", "null"),
            ("{{ 'x' | mandatory }}", "x"),
        ]);
        let e = err("{{ missing_var | mandatory }}");
        assert!(
            e.contains("mandatory variable 'missing_var' is not defined"),
            "{e}"
        );
        let e = err("{{ missing_var | mandatory('set missing_var in group_vars') }}");
        assert!(e.contains("set missing_var in group_vars"), "{e}");
    }

    #[test]
    fn quote_is_shlex_quote() {
        use super::shell_quote;
        let cases = [
            ("", "''"),
            ("abc", "abc"),
            ("/usr/bin/x-y_z.conf", "/usr/bin/x-y_z.conf"),
            ("a b", "'a b'"),
            ("it's", "'it'\"'\"'s'"),
            ("$(rm -rf ~)", "'$(rm -rf ~)'"),
            ("a;b", "'a;b'"),
            ("é", "'é'"),
        ];
        for (input, want) in cases {
            assert_eq!(shell_quote(input), want, "{input}");
        }
        assert_eq!(r("{{ 'a b' | quote }}"), "'a b'");
        assert_eq!(r("{{ none | quote }}"), "''");
    }

    #[test]
    fn pycompat_methods() {
        let ctx = json!({"s": "a,b,c", "d": {"k": 1, "j": 2}, "l": [1, 2, 1]});
        let cases = [
            ("{{ s.split(',') }}", "['a', 'b', 'c']"),
            ("{{ s.startswith('a,') }}", "True"),
            ("{{ s.endswith('x') }}", "False"),
            ("{{ s.upper() }}", "A,B,C"),
            ("{{ s.replace(',', ';') }}", "a;b;c"),
            ("{{ '  x '.strip() }}", "x"),
            ("{{ d.keys() | list }}", "['k', 'j']"),
            ("{{ d.values() | list }}", "[1, 2]"),
            ("{{ d.get('k') }}", "1"),
            ("{{ d.get('zz', 'dflt') }}", "dflt"),
            (
                "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
                "k=1;j=2;",
            ),
            ("{{ l.count(1) }}", "2"),
        ];
        for (src, want) in cases {
            assert_eq!(r_ctx(src, ctx.clone()), want, "{src}");
        }
    }
}
