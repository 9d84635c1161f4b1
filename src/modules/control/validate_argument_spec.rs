//! `validate_argument_spec`: checks values against an argument spec (a role's
//! `meta/argument_specs.yml` entry point `options`, or one written in the task) with Ansible's
//! `ArgumentSpecValidator` rules and messages. Owns the validator and its messages; the
//! executor hands in the values of the task variables named in the spec. Must not set
//! variables: conversions and defaults are used for the checks only, as in Ansible.

use serde_json::{Map, Value};

use crate::modules::runtime::{Args, ModuleError};

crate::module_args! {
    /// Fails the host unless `provided_arguments` and the task variables named in the spec
    /// satisfy `argument_spec` (a role argument spec's `options`: `type`, `required`,
    /// `default`, `choices`, `elements`, `options`, `aliases` and the `required_*` /
    /// `mutually_exclusive` rules of sub-options), with Ansible's messages. Run as the first
    /// task of a role whose entry point has an argument spec. Sets no variable. Unlike
    /// Ansible, `no_log`, `fallback` and deprecations are ignored, and with several
    /// unsupported names the supported list shown is the last name's in sorted order.
    #[module(
        name = "validate_argument_spec",
        backup = "Runs on the controller and changes nothing on the hosts: nothing to back up.",
        returns = &[
            ("msg", "'The arg spec validation passed', or 'Validation of arguments failed:' and the errors"),
            ("argument_errors", "the error messages, on failure"),
            ("argument_spec_data", "the spec, on failure"),
            ("validate_args_context", "validate_args_context as given"),
        ],
        examples = "- validate_argument_spec:\n    argument_spec:\n      port: {type: int, required: true}\n      mode: {choices: [fast, safe], default: safe}\n    provided_arguments:\n      port: \"{{ app_port }}\""
    )]
    pub struct ValidateArgumentSpecArgs {
        /// The spec: option name → `type`, `required`, `default`, `choices`, `elements`,
        /// `options`, `aliases`... as in a role's argument spec `options`.
        #[arg(required, kind = Dict)]
        argument_spec: Value,
        /// Values to check; task variables named in the spec are checked too, these override
        /// them.
        #[arg(kind = Dict)]
        provided_arguments: Value,
        /// Where the spec comes from (a role, its entry point), returned as given.
        #[arg(kind = Dict)]
        validate_args_context: Value,
    }
}

/// The validation's outcome.
pub struct Outcome {
    /// The result returned to the play (`msg`, `argument_errors`, ...).
    pub result: Map<String, Value>,
    /// The failure message, when validation failed.
    pub failed: Option<String>,
}

/// Validates `args` (the rendered task arguments); `var` gives the rendered value of a task
/// variable, or `None` when it is undefined.
pub fn run(
    args: &Args,
    var: &dyn Fn(&str) -> Option<Result<Value, String>>,
) -> Result<Outcome, ModuleError> {
    let a = ValidateArgumentSpecArgs::parse(args)?;
    let Value::Object(spec) = &a.argument_spec else {
        return Err(ModuleError::Args(format!(
            "Incorrect type for argument_spec, expected dict and got {}",
            py_type(&a.argument_spec)
        )));
    };
    let provided = match &a.provided_arguments {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        other => {
            return Err(ModuleError::Args(format!(
                "Incorrect type for provided_arguments, expected dict and got {}",
                py_type(other)
            )));
        }
    };
    let mut params = Map::new();
    for name in spec.keys() {
        if let Some(v) = var(name) {
            params.insert(name.clone(), v.map_err(ModuleError::Args)?);
        }
    }
    params.extend(provided);
    let errors = validate(spec, params);
    let mut result = Map::new();
    let context = match a.validate_args_context {
        Value::Null => Value::Object(Map::new()),
        v => v,
    };
    result.insert("validate_args_context".into(), context);
    if errors.is_empty() {
        result.insert("changed".into(), Value::Bool(false));
        result.insert("msg".into(), "The arg spec validation passed".into());
        return Ok(Outcome {
            result,
            failed: None,
        });
    }
    let msg = format!("Validation of arguments failed:\n{}", errors.join("\n"));
    result.insert("msg".into(), Value::from(msg.clone()));
    result.insert("argument_spec_data".into(), a.argument_spec.clone());
    result.insert(
        "argument_errors".into(),
        Value::Array(errors.into_iter().map(Value::from).collect()),
    );
    Ok(Outcome {
        result,
        failed: Some(msg),
    })
}

/// Ansible's `ArgumentSpecValidator(spec).validate(params)` error messages, in its order.
pub fn validate(spec: &Map<String, Value>, mut params: Map<String, Value>) -> Vec<String> {
    let mut v = Validator::default();
    let aliases = v.aliases(spec, &mut params);
    if let Err(e) = no_log_walk(spec, &params) {
        v.errors.push(e);
    }
    v.unsupported(spec, &params, &aliases, &[]);
    set_defaults(spec, &mut params, false);
    v.required(spec, &params, &[]);
    v.types(spec, &mut params, &[]);
    v.values(spec, &mut params, &[]);
    set_defaults(spec, &mut params, true);
    v.sub_specs(spec, &mut params, &mut Vec::new());
    if !v.unsupported.is_empty() {
        let mut names: Vec<String> = v.unsupported.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        names.dedup();
        let last = names.last().cloned().unwrap_or_default();
        let supported = v
            .unsupported
            .iter()
            .find(|(n, _)| *n == last)
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        v.errors.push(format!(
            "{}. Supported parameters include: {supported}.",
            names.join(", ")
        ));
    }
    v.errors
}

/// Ansible's `_list_no_log_values` walk, for the one error it raises: a sub-options value
/// that is not a mapping (a string is parsed as `type: dict` would).
fn no_log_walk(spec: &Map<String, Value>, params: &Map<String, Value>) -> Result<(), String> {
    for (name, s) in spec {
        let Some(Value::Object(sub)) = opt(s, "options") else {
            continue;
        };
        let wanted = opt(s, "type").map(py_str).unwrap_or_default();
        let elements = opt(s, "elements").map(py_str).unwrap_or_default();
        let Some(value) = params.get(name).filter(|v| !v.is_null()) else {
            continue;
        };
        if !(wanted == "dict" || wanted == "list" && elements == "dict") {
            continue;
        }
        let items = match value {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        for item in items {
            let item = match item {
                Value::String(t) => dict_from_str(&t)?,
                other => other,
            };
            let Value::Object(m) = &item else {
                return Err(format!(
                    "Value '{}' in the sub parameter field '{name}' must be a {wanted}, not '{}'",
                    py_str(&item),
                    py_type(&item)
                ));
            };
            no_log_walk(sub, m)?;
        }
    }
    Ok(())
}

#[derive(Default)]
struct Validator {
    errors: Vec<String>,
    /// Unsupported names (dotted in sub-options) and their "supported parameters" text.
    unsupported: Vec<(String, String)>,
}

/// " found in a -> b" for messages inside sub-options.
fn found_in(ctx: &[String]) -> String {
    if ctx.is_empty() {
        String::new()
    } else {
        format!(" found in {}", ctx.join(" -> "))
    }
}

fn opt<'a>(spec: &'a Value, key: &str) -> Option<&'a Value> {
    spec.get(key).filter(|v| !v.is_null())
}

fn is_required(spec: &Value) -> bool {
    opt(spec, "required").is_some_and(truthy)
}

/// Python truthiness.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The names in a term (`[a, b]`, or one name).
fn term_names(t: &Value) -> Vec<String> {
    match t {
        Value::Array(items) => items.iter().map(py_str).collect(),
        other => vec![py_str(other)],
    }
}

fn count_terms(terms: &[String], params: &Map<String, Value>) -> usize {
    let mut seen: Vec<&String> = terms.iter().filter(|t| params.contains_key(*t)).collect();
    seen.sort();
    seen.dedup();
    seen.len()
}

fn set_defaults(spec: &Map<String, Value>, params: &mut Map<String, Value>, all: bool) {
    for (name, s) in spec {
        let default = opt(s, "default");
        if !params.contains_key(name) && (default.is_some() || all) {
            params.insert(name.clone(), default.cloned().unwrap_or(Value::Null));
        }
    }
}

impl Validator {
    /// Copies aliased values to their option; the alias → option map.
    fn aliases(
        &mut self,
        spec: &Map<String, Value>,
        params: &mut Map<String, Value>,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, s) in spec {
            if opt(s, "default").is_some() && is_required(s) {
                self.errors.push(format!(
                    "internal error: required and default are mutually exclusive for {name}"
                ));
                return Vec::new();
            }
            let Some(aliases) = opt(s, "aliases") else {
                continue;
            };
            let Value::Array(aliases) = aliases else {
                self.errors
                    .push("internal error: aliases must be a list or tuple".into());
                return Vec::new();
            };
            for alias in aliases {
                let alias = py_str(alias);
                if let Some(v) = params.get(&alias).cloned() {
                    params.insert(name.clone(), v);
                }
                out.push((alias, name.clone()));
            }
        }
        out
    }

    fn unsupported(
        &mut self,
        spec: &Map<String, Value>,
        params: &Map<String, Value>,
        aliases: &[(String, String)],
        ctx: &[String],
    ) {
        let legal = |k: &str| spec.contains_key(k) || aliases.iter().any(|(a, _)| a == k);
        for k in params.keys().filter(|k| !legal(k)) {
            let mut supported: Vec<&String> = spec.keys().collect();
            supported.sort();
            let mut text = supported
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let mut alias_names: Vec<&String> = aliases.iter().map(|(a, _)| a).collect();
            alias_names.sort();
            if !alias_names.is_empty() {
                let shown: Vec<&str> = alias_names.iter().map(|s| s.as_str()).collect();
                text.push_str(&format!(" ({})", shown.join(", ")));
            }
            let mut path = ctx.to_vec();
            path.push(k.clone());
            self.unsupported.push((path.join("."), text));
        }
    }

    fn required(&mut self, spec: &Map<String, Value>, params: &Map<String, Value>, ctx: &[String]) {
        let mut missing: Vec<&String> = spec
            .iter()
            .filter(|(n, s)| is_required(s) && !params.contains_key(*n))
            .map(|(n, _)| n)
            .collect();
        if missing.is_empty() {
            return;
        }
        missing.sort();
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        self.errors.push(format!(
            "missing required arguments: {}{}",
            names.join(", "),
            found_in(ctx)
        ));
    }

    fn types(
        &mut self,
        spec: &Map<String, Value>,
        params: &mut Map<String, Value>,
        ctx: &[String],
    ) {
        for (name, s) in spec {
            let Some(value) = params.get(name).cloned() else {
                continue;
            };
            if value.is_null() && !is_required(s) && opt(s, "default").is_none() {
                continue;
            }
            let wanted = opt(s, "type").map_or("str".to_string(), py_str);
            let context = if ctx.is_empty() {
                String::new()
            } else {
                format!(" found in '{}'.", ctx.join(" -> "))
            };
            let converted = match convert(&wanted, &value) {
                Ok(c) => c,
                Err(e) => {
                    self.errors.push(format!(
                        "argument '{name}' is of type {}{context} and we were unable to convert to {wanted}: {e}",
                        py_type(&value)
                    ));
                    continue;
                }
            };
            params.insert(name.clone(), converted.clone());
            let Some(elements) = opt(s, "elements").map(py_str) else {
                continue;
            };
            let items: Vec<Value> = match &converted {
                Value::Array(items) => items.clone(),
                other => {
                    self.errors.push(format!(
                        "Invalid type {wanted} for option '{}'{context}, elements value check is supported only with 'list' type",
                        py_str(other)
                    ));
                    match other {
                        Value::String(t) => t.chars().map(|c| Value::from(c.to_string())).collect(),
                        Value::Object(m) => m.keys().map(|k| Value::from(k.clone())).collect(),
                        v => {
                            self.errors.push(format!(
                                "argument '{name}' is of type {}{context} and we were unable to convert to {wanted}: '{}' object is not iterable",
                                py_type(&value),
                                py_type(v)
                            ));
                            continue;
                        }
                    }
                }
            };
            let mut out = Vec::new();
            for item in items {
                match convert(&elements, &item) {
                    Ok(c) => out.push(c),
                    Err(e) => {
                        let where_ = if ctx.is_empty() {
                            String::new()
                        } else {
                            format!(" found in '{}'", ctx.join(" -> "))
                        };
                        self.errors.push(format!(
                            "Elements value for option '{name}'{where_} is of type {} and we were unable to convert to {elements}: {e}",
                            py_type(&item)
                        ));
                    }
                }
            }
            params.insert(name.clone(), Value::Array(out));
        }
    }

    fn values(
        &mut self,
        spec: &Map<String, Value>,
        params: &mut Map<String, Value>,
        ctx: &[String],
    ) {
        for (name, s) in spec {
            let Some(choices) = opt(s, "choices") else {
                continue;
            };
            let Value::Array(choices) = choices else {
                self.errors.push(format!(
                    "internal error: choices for argument {name} are not iterable: {}{}",
                    py_str(choices),
                    found_in(ctx)
                ));
                continue;
            };
            let Some(value) = params.get(name).cloned() else {
                continue;
            };
            let shown = || choices.iter().map(py_str).collect::<Vec<_>>().join(", ");
            let within = |v: &Value| choices.iter().any(|c| py_eq(c, v));
            if let Value::Array(items) = &value {
                let bad: Vec<String> = items.iter().filter(|i| !within(i)).map(py_str).collect();
                if !bad.is_empty() {
                    self.errors.push(format!(
                        "value of {name} must be one or more of: {}. Got no match for: {}{}",
                        shown(),
                        bad.join(", "),
                        found_in(ctx)
                    ));
                }
                continue;
            }
            if within(&value) {
                continue;
            }
            let mut value = value;
            for (text, set) in [("False", BOOLEANS_FALSE), ("True", BOOLEANS_TRUE)] {
                if value.as_str() == Some(text) {
                    let overlap: Vec<&Value> = choices
                        .iter()
                        .filter(|c| set.iter().any(|b| py_eq(&b(), c)))
                        .collect();
                    if let [only] = overlap.as_slice() {
                        value = (*only).clone();
                        params.insert(name.clone(), value.clone());
                    }
                }
            }
            if !within(&value) {
                self.errors.push(format!(
                    "value of {name} must be one of: {}, got: {}{}",
                    shown(),
                    py_str(&value),
                    found_in(ctx)
                ));
            }
        }
    }

    /// `mutually_exclusive` of an option with sub-options, checked in its values.
    fn exclusive(&mut self, s: &Value, params: &Map<String, Value>, ctx: &[String]) {
        let exclusive: Vec<String> = list_of(s, "mutually_exclusive")
            .iter()
            .map(term_names)
            .filter(|t| count_terms(t, params) > 1)
            .map(|t| t.join("|"))
            .collect();
        if !exclusive.is_empty() {
            self.errors.push(format!(
                "parameters are mutually exclusive: {}{}",
                exclusive.join(", "),
                found_in(ctx)
            ));
        }
    }

    /// `required_together`, `required_one_of`, `required_if` and `required_by` of an option
    /// with sub-options, checked in its values.
    fn relations(&mut self, s: &Value, params: &Map<String, Value>, ctx: &[String]) {
        let list = |k: &str| list_of(s, k);
        if let Some(t) = list("required_together").iter().map(term_names).find(|t| {
            let counts: Vec<usize> = t
                .iter()
                .map(|f| usize::from(params.contains_key(f)))
                .collect();
            counts.contains(&1) && counts.contains(&0)
        }) {
            self.errors.push(format!(
                "parameters are required together: {}{}",
                t.join(", "),
                found_in(ctx)
            ));
        }
        if let Some(t) = list("required_one_of")
            .iter()
            .map(term_names)
            .find(|t| count_terms(t, params) == 0)
        {
            self.errors.push(format!(
                "one of the following is required: {}{}",
                t.join(", "),
                found_in(ctx)
            ));
        }
        for req in list("required_if") {
            let Value::Array(parts) = &req else { continue };
            let (Some(key), Some(val), Some(reqs)) = (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            let key = py_str(key);
            let any = parts.get(3).is_some_and(truthy);
            let reqs = term_names(reqs);
            let missing: Vec<&String> = if params.get(&key).is_some_and(|v| py_eq(v, val)) {
                reqs.iter().filter(|r| !params.contains_key(*r)).collect()
            } else {
                Vec::new()
            };
            let max = if any { reqs.len() } else { 0 };
            if !missing.is_empty() && missing.len() >= max {
                let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                self.errors.push(format!(
                    "{key} is {} but {} of the following are missing: {}{}",
                    py_str(val),
                    if any { "any" } else { "all" },
                    names.join(", "),
                    found_in(ctx)
                ));
                break;
            }
        }
        if let Some(Value::Object(by)) = opt(s, "required_by") {
            for (key, needed) in by {
                if params.get(key).is_none_or(Value::is_null) {
                    continue;
                }
                let needed = term_names(needed);
                let missing: Vec<&str> = needed
                    .iter()
                    .filter(|r| params.get(*r).is_none_or(Value::is_null))
                    .map(|s| s.as_str())
                    .collect();
                if !missing.is_empty() {
                    self.errors.push(format!(
                        "missing parameter(s) required by '{key}': {}{}",
                        missing.join(", "),
                        found_in(ctx)
                    ));
                    break;
                }
            }
        }
    }

    /// Options with `options:` (a dict, or a list of dicts), recursively.
    fn sub_specs(
        &mut self,
        spec: &Map<String, Value>,
        params: &mut Map<String, Value>,
        ctx: &mut Vec<String>,
    ) {
        for (name, s) in spec {
            let wanted = opt(s, "type").map(py_str);
            let elements = opt(s, "elements").map(py_str);
            let is_list = wanted.as_deref() == Some("list");
            if !(wanted.as_deref() == Some("dict")
                || is_list && elements.as_deref() == Some("dict"))
            {
                continue;
            }
            let sub = match opt(s, "options") {
                Some(Value::Object(m)) => Some(m),
                _ => None,
            };
            if opt(s, "apply_defaults").is_some_and(truthy) {
                let Some(_) = sub else { continue };
                if params.get(name).is_none_or(Value::is_null) {
                    params.insert(name.clone(), Value::Object(Map::new()));
                }
            } else if sub.is_none() || params.get(name).is_none_or(Value::is_null) {
                continue;
            }
            let Some(sub) = sub else { continue };
            ctx.push(name.clone());
            let value = params.get(name).cloned().unwrap_or(Value::Null);
            let (mut items, was_list) = match value {
                Value::Array(items) => (items, true),
                other => (vec![other], false),
            };
            for item in items.iter_mut() {
                let Value::Object(sub_params) = item else {
                    self.errors.push(format!(
                        "value of '{name}' must be of type dict or list of dicts"
                    ));
                    continue;
                };
                let aliases = self.aliases(sub, sub_params);
                self.unsupported(sub, sub_params, &aliases, ctx);
                self.exclusive(s, sub_params, ctx);
                set_defaults(sub, sub_params, false);
                self.required(sub, sub_params, ctx);
                self.types(sub, sub_params, ctx);
                self.values(sub, sub_params, ctx);
                self.relations(s, sub_params, ctx);
                set_defaults(sub, sub_params, true);
                self.sub_specs(sub, sub_params, ctx);
            }
            let back = if was_list {
                Value::Array(items)
            } else {
                items.pop().unwrap_or(Value::Null)
            };
            params.insert(name.clone(), back);
            ctx.pop();
        }
    }
}

/// The list under `key` of an option's spec, or none.
fn list_of(s: &Value, key: &str) -> Vec<Value> {
    match opt(s, key) {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

type Lit = fn() -> Value;
const BOOLEANS_TRUE: &[Lit] = &[
    || Value::from("y"),
    || Value::from("yes"),
    || Value::from("on"),
    || Value::from("1"),
    || Value::from("true"),
    || Value::from("t"),
    || Value::from(1),
    || Value::Bool(true),
];
const BOOLEANS_FALSE: &[Lit] = &[
    || Value::from("n"),
    || Value::from("no"),
    || Value::from("off"),
    || Value::from("0"),
    || Value::from("false"),
    || Value::from("f"),
    || Value::from(0),
    || Value::Bool(false),
];

/// Python's name of a value's type.
pub fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// A number as Python holds it (`True` is 1), for `==`.
fn py_num(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Python's `==` (`1 == 1.0 == True`).
fn py_eq(a: &Value, b: &Value) -> bool {
    match (py_num(a), py_num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn py_float(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf".into() } else { "-inf".into() }
    } else if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        let s = format!("{f}");
        if s.len() > 17 {
            format!("{f:e}").replace('e', "e+").replace("e+-", "e-")
        } else {
            s
        }
    }
}

/// Python's `str()` of a value.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a value.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match n
            .as_i64()
            .map(|i| i.to_string())
            .or_else(|| n.as_u64().map(|u| u.to_string()))
        {
            Some(i) => i,
            None => py_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => {
            if s.contains('\'') && !s.contains('"') {
                format!("\"{s}\"")
            } else {
                format!(
                    "'{}'",
                    s.replace('\\', "\\\\")
                        .replace('\'', "\\'")
                        .replace('\n', "\\n")
                )
            }
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_repr(&Value::from(k.clone())), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The type names Ansible's validator knows.
pub const TYPES: &[&str] = &[
    "str", "list", "dict", "bool", "int", "float", "path", "raw", "jsonarg", "json", "bytes",
    "bits",
];

/// Ansible's type checker `wanted` applied to `v`: the converted value, or its message.
fn convert(wanted: &str, v: &Value) -> Result<Value, String> {
    let class = || format!("<class '{}'>", py_type(v));
    match wanted {
        "str" | "path" => Ok(match v {
            Value::Null => Value::from(""),
            other => Value::from(py_str(other)),
        }),
        "raw" => Ok(v.clone()),
        "list" => match v {
            Value::Array(_) => Ok(v.clone()),
            Value::String(s) => Ok(Value::Array(s.split(',').map(Value::from).collect())),
            Value::Number(_) | Value::Bool(_) => Ok(Value::Array(vec![Value::from(py_str(v))])),
            _ => Err(format!("{} cannot be converted to a list", class())),
        },
        "dict" => match v {
            Value::Object(_) => Ok(v.clone()),
            Value::String(s) => dict_from_str(s),
            _ => Err(format!("{} cannot be converted to a dict", class())),
        },
        "bool" => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::String(_) | Value::Number(_) => {
                let norm = match v {
                    Value::String(s) => Value::from(s.trim().to_lowercase()),
                    other => other.clone(),
                };
                if BOOLEANS_TRUE.iter().any(|b| py_eq(&b(), &norm)) {
                    Ok(Value::Bool(true))
                } else if BOOLEANS_FALSE.iter().any(|b| py_eq(&b(), &norm)) {
                    Ok(Value::Bool(false))
                } else {
                    Err(format!(
                        "The value '{}' is not a valid boolean. Valid booleans include: 't', 1, 'no', 0, 'off', 'n', '0', 'true', 'false', 'yes', '1', 'on', 'f', 'y'",
                        py_str(v)
                    ))
                }
            }
            _ => Err(format!("{} cannot be converted to a bool", class())),
        },
        "int" => {
            let bad = || format!("\"{}\" cannot be converted to an int", py_repr(v));
            match v {
                Value::Bool(_) => Ok(v.clone()),
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
                Value::Number(n) => match n.as_f64() {
                    Some(f) if f.is_finite() && f.fract() == 0.0 => Ok(Value::from(f as i64)),
                    _ => Err(bad()),
                },
                Value::String(s) => decimal_int(s.trim()).map(Value::from).ok_or_else(bad),
                _ => Err(bad()),
            }
        }
        "float" => match v {
            Value::Number(n) => Ok(Value::from(n.as_f64().unwrap_or(f64::NAN))),
            Value::Bool(b) => Ok(Value::from(f64::from(u8::from(*b)))),
            Value::String(s) => parse_py_float(s.trim())
                .map(Value::from)
                .ok_or_else(|| format!("{} cannot be converted to a float", class())),
            _ => Err(format!("{} cannot be converted to a float", class())),
        },
        "jsonarg" | "json" => match v {
            Value::String(s) => Ok(Value::from(s.trim())),
            Value::Array(_) | Value::Object(_) => Ok(Value::from(v.to_string())),
            _ => Err(format!("{} cannot be converted to a json string", class())),
        },
        "bytes" | "bits" => human_to_bytes(&py_str(v), wanted == "bits")
            .map(Value::from)
            .ok_or_else(|| {
                format!(
                    "{} cannot be converted to a {} value",
                    class(),
                    if wanted == "bits" { "Bit" } else { "Byte" }
                )
            }),
        _ => Err("'NoneType' object is not callable".into()),
    }
}

/// `int(Decimal(s))` when it has no significant decimal part.
fn decimal_int(s: &str) -> Option<i64> {
    let t = s.replace('_', "");
    if let Ok(i) = t.parse::<i64>() {
        return Some(i);
    }
    let f = parse_py_float(&t)?;
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64)
}

fn parse_py_float(s: &str) -> Option<f64> {
    let lower = s.to_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" | "nan" => return lower.parse::<f64>().ok(),
        _ => {}
    }
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.eE_".contains(c))
    {
        return None;
    }
    s.replace('_', "").parse::<f64>().ok()
}

/// Ansible's `human_to_bytes` (`10M`, `1 KB`, `2Mb` for bits), roughly.
fn human_to_bytes(s: &str, bits: bool) -> Option<i64> {
    let t = s.trim_end();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().ok()?;
    let unit = unit.trim_start();
    if unit.is_empty() {
        return Some(num.round() as i64);
    }
    if !unit.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let ranges = "BKMGTPEZY";
    let first = unit.chars().next()?.to_ascii_uppercase();
    let power = ranges.find(first)?;
    let class = if bits { 'b' } else { 'B' };
    if unit.len() > 1 && !(first != 'B' && unit.len() == 2 && unit.ends_with(class)) {
        return None;
    }
    Some((num * 1024f64.powi(power as i32)).round() as i64)
}

/// `check_type_dict` for a string: JSON when it starts with `{`, else `k=v` pairs.
fn dict_from_str(s: &str) -> Result<Value, String> {
    if s.starts_with('{') {
        return serde_json::from_str::<Value>(s)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| "unable to evaluate string as dictionary".into());
    }
    if !s.contains('=') {
        return Err("dictionary requested, could not parse JSON or key=value".into());
    }
    let mut fields = Vec::new();
    let mut buf = String::new();
    let mut quote: Option<char> = None;
    let mut escape = false;
    for c in s.trim().chars() {
        if escape {
            buf.push(c);
            escape = false;
        } else if c == '\\' {
            escape = true;
        } else if quote.is_none() && (c == '\'' || c == '"') {
            quote = Some(c);
        } else if quote == Some(c) {
            quote = None;
        } else if quote.is_none() && (c == ',' || c == ' ') {
            if !buf.is_empty() {
                fields.push(std::mem::take(&mut buf));
            }
        } else {
            buf.push(c);
        }
    }
    if !buf.is_empty() {
        fields.push(buf);
    }
    let mut out = Map::new();
    for f in fields {
        let Some((k, v)) = f.split_once('=') else {
            return Err(
                "unable to evaluate string in the \"key=value\" format as dictionary".into(),
            );
        };
        out.insert(k.into(), Value::from(v));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[spec, parameters, messages]`, one per line: the messages are what ansible-core 2.19's
    /// `ArgumentSpecValidator(spec).validate(parameters).error_messages` gives (generated with
    /// the venv's Python, pasted as is).
    const ANSIBLE_CASES: &str = r#"[{"a": {"type": "int", "required": true}}, {}, ["missing required arguments: a"]]
[{"a": {"type": "int", "required": true}, "b": {"required": true}}, {}, ["missing required arguments: a, b"]]
[{"a": {"type": "int"}}, {"a": "abc"}, ["argument 'a' is of type str and we were unable to convert to int: \"'abc'\" cannot be converted to an int"]]
[{"a": {"type": "int"}}, {"a": "42"}, []]
[{"a": {"type": "int"}}, {"a": 4.5}, ["argument 'a' is of type float and we were unable to convert to int: \"4.5\" cannot be converted to an int"]]
[{"a": {"type": "int"}}, {"a": [1]}, ["argument 'a' is of type list and we were unable to convert to int: \"[1]\" cannot be converted to an int"]]
[{"a": {"type": "float"}}, {"a": "x"}, ["argument 'a' is of type str and we were unable to convert to float: <class 'str'> cannot be converted to a float"]]
[{"a": {"type": "bool"}}, {"a": [1]}, ["argument 'a' is of type list and we were unable to convert to bool: <class 'list'> cannot be converted to a bool"]]
[{"a": {"type": "list"}}, {"a": {"k": 1}}, ["argument 'a' is of type dict and we were unable to convert to list: <class 'dict'> cannot be converted to a list"]]
[{"a": {"type": "dict"}}, {"a": "nope"}, ["argument 'a' is of type str and we were unable to convert to dict: dictionary requested, could not parse JSON or key=value"]]
[{"a": {"type": "dict"}}, {"a": "{bad"}, ["argument 'a' is of type str and we were unable to convert to dict: unable to evaluate string as dictionary"]]
[{"a": {"type": "dict"}}, {"a": [1]}, ["argument 'a' is of type list and we were unable to convert to dict: <class 'list'> cannot be converted to a dict"]]
[{"a": {"type": "json"}}, {"a": 3}, ["argument 'a' is of type int and we were unable to convert to json: <class 'int'> cannot be converted to a json string"]]
[{"a": {"type": "bytes"}}, {"a": "12Q"}, ["argument 'a' is of type str and we were unable to convert to bytes: <class 'str'> cannot be converted to a Byte value"]]
[{"a": {"choices": ["x", "y"]}}, {"a": "z"}, ["value of a must be one of: x, y, got: z"]]
[{"a": {"choices": ["x", "y"], "type": "list"}}, {"a": ["x", "z", "w"]}, ["value of a must be one or more of: x, y. Got no match for: z, w"]]
[{"a": {"choices": ["yes", "no"]}}, {"a": "True"}, []]
[{"a": {"type": "str", "choices": [1, 2]}}, {"a": 1}, ["value of a must be one of: 1, 2, got: 1"]]
[{"a": {"type": "list", "elements": "int"}}, {"a": "1,x"}, ["Elements value for option 'a' is of type str and we were unable to convert to int: \"'x'\" cannot be converted to an int"]]
[{"a": {"type": "str", "elements": "int"}}, {"a": "12"}, ["Invalid type str for option '12', elements value check is supported only with 'list' type"]]
[{"a": {"type": "str", "aliases": ["b"]}}, {"b": 1, "c": 2}, ["c. Supported parameters include: a (b)."]]
[{"a": {"type": "dict", "options": {"x": {"required": true}, "y": {"type": "int"}}}}, {"a": {"y": "q", "z": 1}}, ["missing required arguments: x found in a", "argument 'y' is of type str found in 'a'. and we were unable to convert to int: \"'q'\" cannot be converted to an int", "a.z. Supported parameters include: x, y."]]
[{"a": {"type": "list", "elements": "dict", "options": {"x": {"required": true}}}}, {"a": [{"x": 1}, {}, "s"]}, ["dictionary requested, could not parse JSON or key=value", "Elements value for option 'a' is of type str and we were unable to convert to dict: dictionary requested, could not parse JSON or key=value", "missing required arguments: x found in a"]]
[{"a": {"type": "dict", "options": {"x": {}, "y": {}}, "required_together": [["x", "y"]]}}, {"a": {"x": 1}}, ["parameters are required together: x, y found in a"]]
[{"a": {"type": "dict", "options": {"x": {}, "y": {}}, "required_one_of": [["x", "y"]]}}, {"a": {}}, ["one of the following is required: x, y found in a"]]
[{"a": {"type": "dict", "options": {"s": {}, "p": {}, "q": {}}, "required_if": [["s", "on", ["p", "q"]]]}}, {"a": {"s": "on", "p": 1}}, ["s is on but all of the following are missing: q found in a"]]
[{"a": {"type": "dict", "options": {"s": {}, "p": {}, "q": {}}, "required_if": [["s", "on", ["p", "q"], true]]}}, {"a": {"s": "on"}}, ["s is on but any of the following are missing: p, q found in a"]]
[{"a": {"type": "dict", "options": {"s": {}, "p": {}}, "required_by": {"s": ["p"]}}}, {"a": {"s": 1}}, ["missing parameter(s) required by 's': p found in a"]]
[{"a": {"type": "dict", "options": {"x": {}, "y": {}}, "mutually_exclusive": [["x", "y"]]}}, {"a": {"x": 1, "y": 2}}, ["parameters are mutually exclusive: x|y found in a"]]
[{"a": {"type": "dict", "options": {"b": {"type": "dict", "options": {"c": {"type": "int", "choices": [1]}}}}}}, {"a": {"b": {"c": "2"}}}, ["value of c must be one of: 1, got: 2 found in a -> b"]]
[{"a": {"type": "dict", "apply_defaults": true, "options": {"x": {"required": true}}}}, {}, ["missing required arguments: x found in a"]]
[{"a": {"default": 5, "type": "str", "choices": ["5"]}}, {}, []]
[{"a": {"required": true, "default": 1}}, {"a": 1}, ["internal error: required and default are mutually exclusive for a"]]
[{"a": {"type": "str"}}, {"a": null}, []]
[{"a": {"type": "int", "required": true}}, {"a": null}, ["argument 'a' is of type NoneType and we were unable to convert to int: \"None\" cannot be converted to an int"]]
[{"a": {"type": "bool"}}, {"a": "yes"}, []]
[{"a": {"type": "list", "elements": "str"}}, {"a": 5}, []]
[{"a": {"type": "float"}}, {"a": "1e3"}, []]
[{"a": {"type": "int", "choices": [1, 2]}}, {"a": "2"}, []]
[{"a": {"type": "int"}}, {"a": "4.0"}, []]
[{"a": {"type": "bool", "choices": [true]}}, {"a": "no"}, ["value of a must be one of: True, got: False"]]
[{"a": {"type": "bits"}}, {"a": "1Mb"}, []]
[{"a": {"type": "bytes"}}, {"a": "1Mb"}, ["argument 'a' is of type str and we were unable to convert to bytes: <class 'str'> cannot be converted to a Byte value"]]
[{"a": {"type": "bytes"}}, {"a": "10 KB"}, []]
[{"a": {"type": "nope"}}, {"a": 1}, ["argument 'a' is of type int and we were unable to convert to nope: 'NoneType' object is not callable"]]
[{"a": {"type": "dict", "options": {"k": {"type": "int"}}}}, {"a": "k=1 x=y"}, ["a.x. Supported parameters include: k."]]
[{"a": {"type": "list", "elements": "dict", "options": {"x": {}}}}, {"a": [5]}, ["Value '5' in the sub parameter field 'a' must be a list, not 'int'", "Elements value for option 'a' is of type int and we were unable to convert to dict: <class 'int'> cannot be converted to a dict"]]
[{"a": {"type": "str"}}, {"a": [1, "b"]}, []]
[{"a": {"type": "str", "choices": ["x"]}}, {"a": {"k": "v"}}, ["value of a must be one of: x, got: {'k': 'v'}"]]
[{"a": {"type": "raw", "choices": [1.5, "b"]}}, {"a": 2.5}, ["value of a must be one of: 1.5, b, got: 2.5"]]
[{"a": {"type": "path"}, "b": {"type": "jsonarg"}}, {"a": 1, "b": [1]}, []]
"#;

    #[test]
    fn messages_match_ansible_validator() {
        let mut failures = Vec::new();
        let lines: Vec<&str> = ANSIBLE_CASES
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 51);
        for line in lines {
            let case: Value = serde_json::from_str(line).expect("case is JSON");
            let (Some(Value::Object(spec)), Some(Value::Object(params)), Some(want)) =
                (case.get(0), case.get(1), case.get(2))
            else {
                panic!("bad case {line}");
            };
            let got = Value::from(validate(spec, params.clone()));
            if &got != want {
                failures.push(format!("{line}\n   got {got}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn bad_boolean_lists_the_valid_ones() {
        // Ansible prints its set of booleans in hash order; the words are the same.
        let spec = serde_json::json!({"a": {"type": "bool"}});
        let errs = validate(
            spec.as_object().expect("map"),
            serde_json::json!({"a": "maybe"})
                .as_object()
                .expect("map")
                .clone(),
        );
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with(
                "argument 'a' is of type str and we were unable to convert to bool: The value 'maybe' is not a valid boolean. Valid booleans include: "
            ),
            "{}",
            errs[0]
        );
    }

    fn args(v: Value) -> Args {
        v.as_object().expect("map").clone()
    }

    #[test]
    fn task_variables_are_checked_and_provided_arguments_override_them() {
        let a = args(serde_json::json!({
            "argument_spec": {"port": {"type": "int", "required": true}, "mode": {"choices": ["a"]}},
            "provided_arguments": {"mode": "a"},
            "validate_args_context": {"type": "role", "name": "app"},
        }));
        let vars = |n: &str| match n {
            "port" => Some(Ok(Value::from("80"))),
            "mode" => Some(Ok(Value::from("zzz"))),
            _ => None,
        };
        let out = run(&a, &vars).expect("runs");
        assert!(out.failed.is_none());
        assert_eq!(out.result["msg"], "The arg spec validation passed");
        assert_eq!(out.result["validate_args_context"]["name"], "app");
    }

    #[test]
    fn failure_has_ansible_message_and_result_keys() {
        let a = args(serde_json::json!({
            "argument_spec": {"port": {"type": "int", "required": true}},
        }));
        let out = run(&a, &|_| None).expect("runs");
        assert_eq!(
            out.failed.as_deref(),
            Some("Validation of arguments failed:\nmissing required arguments: port")
        );
        assert_eq!(
            out.result["argument_errors"],
            serde_json::json!(["missing required arguments: port"])
        );
        assert_eq!(out.result["argument_spec_data"]["port"]["type"], "int");
        assert_eq!(out.result["validate_args_context"], serde_json::json!({}));
    }

    #[test]
    fn argument_spec_must_be_given() {
        assert!(run(&args(serde_json::json!({})), &|_| None).is_err());
    }
}
