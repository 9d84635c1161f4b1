//! The template environment: the one minijinja [`Environment`] every playbook string is
//! rendered with, Ansible's filters and tests on top of it, and the lazy variable object
//! ([`LazyVars`]) templates are rendered against.
//!
//! This module owns *how* a string or expression becomes a value: strict undefined, no
//! auto-escaping, trailing newlines kept, Python string/dict/list methods, Ansible's
//! whole-template native-type rule ([`render_value`]), Ansible truthiness for conditionals
//! ([`eval_bool`]) and the static "which variables does this read" analysis
//! ([`referenced_vars`]). Every failure comes back as a [`Diagnostic`] at the caller's [`Loc`].
//!
//! It must not decide *which* variables exist or in what order they win (that is `vars.rs`,
//! which hands us layers), must not read files or run commands itself (the lookup plugins in
//! [`lookups`] do, on the controller, only from operator-written text), and must never render
//! a value that is data rather than playbook text: see [`lazy`] for why.

mod crypt;
pub mod filters;
pub mod lazy;
pub mod lookups;
pub mod more_filters;
pub mod more_tests;
mod names;
mod pyrandom;
pub mod tests;
pub mod time;
mod unknown;
pub use unknown::register_plugin_dir;

use std::collections::BTreeSet;
use std::sync::Arc;

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};

use crate::diag::{Diagnostic, Loc};

pub use lazy::{HostVars, Layer, LazyVars, VarValue};

/// The sentinel string that `omit` (and so `default(omit)`) yields. A module argument equal to
/// it is dropped by the caller, as if the task had not written it.
pub const OMIT: &str = "__omit_place_holder__rdeploy__";

/// The one minijinja Environment every template is rendered with.
///
/// `UndefinedBehavior::Strict`; trailing newlines kept and `trim_blocks` on (both as Ansible's
/// templar); no auto-escaping; a printed none is `''` (Ansible's finalize); Python string/dict/list methods through
/// `minijinja_contrib::pycompat::unknown_method_callback`; Ansible's filters ([`filters`]),
/// tests ([`tests`]), the `omit` global and the lookup plugins ([`lookups`]) as they run
/// outside `--check`.
pub fn environment() -> Environment<'static> {
    environment_with(lookups::Mode::Run { check: false })
}

/// [`environment`] for a run: under `--check` (`check`) the `password` lookup creates no file.
pub fn run_environment(check: bool) -> Environment<'static> {
    environment_with(lookups::Mode::Run { check })
}

/// [`environment`] for the plan-time template check: lookups are checked (plugin name,
/// options) and give `stand_in` without reading a file, running a command or writing one.
pub fn plan_environment(stand_in: Value) -> Environment<'static> {
    environment_with(lookups::Mode::Plan(stand_in))
}

fn environment_with(mode: lookups::Mode) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    let syntax = env
        .syntax()
        .to_builder()
        .keep_trailing_newline(true)
        .trim_blocks(true)
        .build();
    // The builder only fails on conflicting delimiters, which we do not change.
    if let Ok(syntax) = syntax {
        env.set_syntax(syntax);
    }
    // Ansible's templar finalizes a printed none as '' (`{{ maybe_null }}` in a config file
    // prints nothing, not "None"); strict undefined is checked by minijinja before this runs.
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            Ok(())
        } else {
            minijinja::escape_formatter(out, state, &printed(value))
        }
    });
    env.set_unknown_method_callback(python_methods);
    env.add_global("omit", Value::from(OMIT));
    filters::register(&mut env);
    more_filters::register(&mut env);
    time::register(&mut env);
    tests::register(&mut env);
    more_tests::register(&mut env);
    lookups::register(&mut env, mode);
    env
}

/// Python methods templates call on values: minijinja-contrib's `pycompat` set, and the ones
/// playbooks use that it lacks (`list.index`, `str.index`/`rindex`, `zfill`, `ljust`,
/// `rjust`, `center`, `rsplit`, `partition`, `rpartition`, `swapcase`, `dict.copy`).
fn python_methods(
    state: &mut minijinja::State<'_, '_>,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    use minijinja::value::ValueKind;
    let missing = || {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("{value} is not in list"),
        )
    };
    let int_arg = |i: usize| -> Result<usize, Error> {
        args.get(i)
            .and_then(|v| usize::try_from(v.clone()).ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{method}() needs a width"),
                )
            })
    };
    let str_arg = |i: usize, default: &str| -> String {
        args.get(i)
            .and_then(Value::as_str)
            .map_or_else(|| default.to_string(), str::to_string)
    };
    match (value.kind(), method) {
        (ValueKind::Seq, "index") => {
            let what = args.first().ok_or_else(missing)?;
            let pos = value.try_iter()?.position(|x| &x == what).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{what} is not in list"),
                )
            })?;
            Ok(Value::from(pos))
        }
        (ValueKind::Map, "copy") => Ok(value.clone()),
        (ValueKind::String, _) if value.as_str().is_some() => {
            let s = value.as_str().unwrap_or_default();
            let chars: Vec<char> = s.chars().collect();
            let pad = |width: usize, fill: &str, left: usize| -> String {
                let fill = fill.chars().next().unwrap_or(' ');
                let n = width.saturating_sub(chars.len());
                let (l, r) = match left {
                    0 => (0, n),
                    1 => (n, 0),
                    _ => (n / 2 + (n & width & 1), n - (n / 2 + (n & width & 1))),
                };
                let f = |k: usize| std::iter::repeat_n(fill, k).collect::<String>();
                format!("{}{s}{}", f(l), f(r))
            };
            let found = |pos: Option<usize>| {
                pos.map(|b| Value::from(s[..b].chars().count()))
                    .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "substring not found"))
            };
            match method {
                "index" => found(s.find(&str_arg(0, ""))),
                "rindex" => found(s.rfind(&str_arg(0, ""))),
                "zfill" => {
                    let width = int_arg(0)?;
                    let (sign, digits) = match s.strip_prefix(['-', '+']) {
                        Some(rest) => (&s[..1], rest),
                        None => ("", s),
                    };
                    let n = width.saturating_sub(chars.len());
                    Ok(Value::from(format!("{sign}{}{digits}", "0".repeat(n))))
                }
                "ljust" => Ok(Value::from(pad(int_arg(0)?, &str_arg(1, " "), 0))),
                "rjust" => Ok(Value::from(pad(int_arg(0)?, &str_arg(1, " "), 1))),
                "center" => Ok(Value::from(pad(int_arg(0)?, &str_arg(1, " "), 2))),
                "swapcase" => Ok(Value::from(
                    s.chars()
                        .map(|c| {
                            if c.is_uppercase() {
                                c.to_lowercase().collect::<String>()
                            } else {
                                c.to_uppercase().collect::<String>()
                            }
                        })
                        .collect::<String>(),
                )),
                "partition" | "rpartition" => {
                    let sep = str_arg(0, "");
                    if sep.is_empty() {
                        return Err(Error::new(ErrorKind::InvalidOperation, "empty separator"));
                    }
                    let at = if method == "partition" {
                        s.find(&sep)
                    } else {
                        s.rfind(&sep)
                    };
                    let parts = match at {
                        Some(i) => [&s[..i], sep.as_str(), &s[i + sep.len()..]],
                        None if method == "partition" => [s, "", ""],
                        None => ["", "", s],
                    };
                    Ok(Value::from(
                        parts.iter().map(|p| Value::from(*p)).collect::<Vec<_>>(),
                    ))
                }
                "rsplit" => {
                    let sep = args.first().and_then(Value::as_str).map(str::to_string);
                    let max = args
                        .get(1)
                        .and_then(|v| i64::try_from(v.clone()).ok())
                        .unwrap_or(-1);
                    let mut parts: Vec<String> = match &sep {
                        Some(sep) if max >= 0 => s
                            .rsplitn(usize::try_from(max).unwrap_or(0) + 1, sep.as_str())
                            .map(str::to_string)
                            .collect(),
                        Some(sep) => s.rsplit(sep.as_str()).map(str::to_string).collect(),
                        None => s.split_whitespace().rev().map(str::to_string).collect(),
                    };
                    parts.reverse();
                    Ok(Value::from(parts))
                }
                _ => {
                    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
                }
            }
        }
        _ => minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args),
    }
}

/// Renders one template string against `ctx`. Errors become a [`Diagnostic`] at `loc`; an error
/// on line N of a multi-line template is reported N-1 lines below `loc`.
pub fn render_str(
    env: &Environment<'static>,
    source: &str,
    ctx: &Value,
    loc: &Loc,
) -> Result<String, Diagnostic> {
    render_guarded(env, source, ctx).map_err(|e| to_diagnostic_in(env, &e, source, ctx, loc))
}

/// A name (a task's, shown in its banner) rendered for display: each `{{ ... }}` on its own,
/// one that fails kept as written, so a name never fails. A name with `{% ... %}` is rendered
/// whole, or kept as written when that fails.
pub fn render_name(env: &Environment<'static>, name: &str, ctx: &Value, loc: &Loc) -> String {
    if name.contains("{%") {
        return render_str(env, name, ctx, loc).unwrap_or_else(|_| name.to_string());
    }
    let mut out = String::new();
    let mut rest = name;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            rest = &rest[start..];
            break;
        };
        let expr = &rest[start..start + len + 2];
        match render_str(env, expr, ctx, loc) {
            Ok(v) => out.push_str(&v),
            Err(_) => out.push_str(expr),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// [`render_str`] for a whole template file (a `template:` source): an error is reported at
/// its exact line and column in `file`.
pub fn render_file(
    env: &Environment<'static>,
    source: &str,
    ctx: &Value,
    file: &Arc<str>,
) -> Result<String, Diagnostic> {
    render_guarded(env, source, ctx).map_err(|e| file_diagnostic(env, &e, source, ctx, file))
}

/// True if `source` guards against undefined values the way Ansible templates do:
/// `default(...)`/`d(...)`, or an `is defined`/`is undefined` test.
fn is_guarded(source: &str) -> bool {
    static GUARD: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    GUARD
        .get_or_init(|| {
            regex::Regex::new(r"\|\s*(default|d)\s*(\(|\||\}|$)|\bis\s+(not\s+)?(un)?defined\b")
                .ok()
        })
        .as_ref()
        .is_some_and(|re| re.is_match(source))
}

/// The environment guarded templates are tried again with: the same filters and tests, with
/// Ansible's undefined semantics for attribute chains (`foo.bar` of an undefined `foo` is
/// undefined, so `foo.bar | default('x')` works), while printing an undefined value is still an
/// error.
fn chainable(env: &Environment<'static>) -> Environment<'static> {
    let mut twin = env.clone();
    twin.set_undefined_behavior(UndefinedBehavior::Chainable);
    twin.set_formatter(|out, state, value| {
        if value.is_undefined() {
            Err(Error::from(ErrorKind::UndefinedError))
        } else if value.is_none() {
            Ok(())
        } else {
            minijinja::escape_formatter(out, state, &printed(value))
        }
    });
    twin
}

/// What `{{ value }}` prints: ansible-core 2.19 prints a tuple (`splitext`, `zip`) as a list,
/// `['c.tar', '.gz']`, not `('c.tar', '.gz')`; tuples inside lists and dicts too.
fn printed(value: &Value) -> Value {
    fn has_tuple(v: &Value) -> bool {
        match v.kind() {
            minijinja::value::ValueKind::Seq => {
                v.downcast_object_ref::<minijinja::value::Tuple>().is_some()
                    || v.try_iter().is_ok_and(|mut it| it.any(|x| has_tuple(&x)))
            }
            minijinja::value::ValueKind::Map => v
                .try_iter()
                .is_ok_and(|mut it| it.any(|k| v.get_item(&k).is_ok_and(|x| has_tuple(&x)))),
            _ => false,
        }
    }
    fn lists(v: &Value) -> Value {
        match v.kind() {
            minijinja::value::ValueKind::Seq => match v.try_iter() {
                Ok(it) => Value::from(it.map(|x| lists(&x)).collect::<Vec<_>>()),
                Err(_) => v.clone(),
            },
            minijinja::value::ValueKind::Map => match v.try_iter() {
                Ok(it) => Value::from_iter(it.map(|k| {
                    let x = v.get_item(&k).unwrap_or_default();
                    (k, lists(&x))
                })),
                Err(_) => v.clone(),
            },
            _ => v.clone(),
        }
    }
    if has_tuple(value) {
        lists(value)
    } else {
        value.clone()
    }
}

/// Runs `f` with strict undefined; if that fails on an undefined value and `source` is
/// guarded ([`is_guarded`]), runs it again in the [`chainable`] twin of `env`. Ansible's
/// `{{ foo.bar | default('x') }}` is then `x` when `foo` is undefined, and every template
/// without a guard keeps strict undefined.
fn guarded<T>(
    env: &Environment<'static>,
    source: &str,
    f: impl Fn(&Environment<'static>) -> Result<T, Error>,
) -> Result<T, Error> {
    match f(env) {
        Err(e) if e.kind() == ErrorKind::UndefinedError && is_guarded(source) => {
            // Still undefined without the guard's help: that error names what is missing.
            f(&chainable(env)).map_err(|e2| {
                if e2.kind() == ErrorKind::UndefinedError {
                    e2
                } else {
                    e
                }
            })
        }
        other => other,
    }
}

/// `env.render_str` through [`guarded`].
fn render_guarded(env: &Environment<'static>, source: &str, ctx: &Value) -> Result<String, Error> {
    guarded(env, source, |env| env.render_str(source, ctx.clone()))
}

/// Compiles and evaluates a bare expression through [`guarded`]; an undefined result is an
/// error.
fn eval_guarded(env: &Environment<'static>, expr: &str, ctx: &Value) -> Result<Value, Error> {
    guarded(env, expr, |env| {
        let v = env
            .compile_expression_owned(expr.to_string())?
            .eval(ctx.clone())?;
        if v.is_undefined() {
            return Err(Error::from(ErrorKind::UndefinedError));
        }
        Ok(v)
    })
}

/// Evaluates a bare expression (Ansible `when:`, `changed_when:`, `failed_when:`, `until:`,
/// `that:`). An expression written as one `{{ expr }}` is accepted and unwrapped; a result that
/// is undefined is an error naming the variable.
pub fn eval_expr(
    env: &Environment<'static>,
    expr: &str,
    ctx: &Value,
    loc: &Loc,
) -> Result<Value, Diagnostic> {
    let inner = bare_expression(env, expr, loc)?;
    eval_guarded(env, inner, ctx).map_err(|e| to_diagnostic_in(env, &e, inner, ctx, loc))
}

/// Renders `source` only to see whether it can be rendered, keeping minijinja's error kind so
/// the plan-time check can tell an undefined variable from an artefact of its stand-ins.
pub fn check_render(
    env: &Environment<'static>,
    source: &str,
    ctx: &Value,
    loc: &Loc,
) -> Result<(), (ErrorKind, Diagnostic)> {
    render_guarded(env, source, ctx)
        .map(|_| ())
        .map_err(|e| (check_kind(&e), to_diagnostic_in(env, &e, source, ctx, loc)))
}

/// The kind of a check render's error, as the check weighs it: an undefined value reached
/// by a computed subscript, last (`pkgs[ansible_os_family]`, `pkgs[r.stdout]`: minijinja names
/// it `pkgs[...]`), depends on a key only the run knows, so it is left to the run (as an
/// operator on a stand-in is), not reported as an undefined variable. A name read after one
/// (`hostvars[h].ansible_sytem`) is still reported.
fn check_kind(e: &Error) -> ErrorKind {
    match e.kind() {
        ErrorKind::UndefinedError
            if e.detail().is_some_and(|d| {
                d.strip_prefix('`')
                    .and_then(|d| d.split_once("` is undefined"))
                    .is_some_and(|(name, _)| name.ends_with("[...]"))
            }) =>
        {
            ErrorKind::InvalidOperation
        }
        k => k,
    }
}

/// [`check_render`] for a whole template file, reported as [`render_file`] reports.
pub fn check_render_file(
    env: &Environment<'static>,
    source: &str,
    ctx: &Value,
    file: &Arc<str>,
) -> Result<(), (ErrorKind, Diagnostic)> {
    render_guarded(env, source, ctx)
        .map(|_| ())
        .map_err(|e| (check_kind(&e), file_diagnostic(env, &e, source, ctx, file)))
}

/// [`eval_expr`] keeping minijinja's error kind (see [`check_render`]).
pub fn check_expr(
    env: &Environment<'static>,
    expr: &str,
    ctx: &Value,
    loc: &Loc,
) -> Result<Value, (ErrorKind, Diagnostic)> {
    let inner = bare_expression(env, expr, loc).map_err(|d| (ErrorKind::SyntaxError, d))?;
    eval_guarded(env, inner, ctx)
        .map_err(|e| (check_kind(&e), to_diagnostic_in(env, &e, inner, ctx, loc)))
}

/// After a check render stopped on an error of the stand-ins (an operator on a run-time
/// value, see [`names`]), the filters, tests and lookups `source` names, checked by name and
/// reported as the render would report them at `loc`. `in_expr`: `source` is a bare
/// expression (`when:`), written alone or as one `{{ expr }}`.
pub fn check_names(
    env: &Environment<'static>,
    source: &str,
    in_expr: bool,
    loc: &Loc,
) -> Vec<Diagnostic> {
    let source = if in_expr {
        match bare_expression(env, source, loc) {
            Ok(inner) => inner,
            Err(_) => return Vec::new(),
        }
    } else {
        source
    };
    names::refused(env, source, in_expr)
        .into_iter()
        .map(|r| {
            let mut at = loc.clone();
            if r.line > 1 {
                // As [`to_diagnostic_in`]: later lines of a YAML value lost their indentation.
                at.line = at
                    .line
                    .saturating_add(u32::try_from(r.line - 1).unwrap_or(u32::MAX));
                at.col = 1;
            }
            let msg = describe_error(env, &r.error, source, &Value::UNDEFINED);
            with_notes(Diagnostic::at(&at, msg), &r.error, source, r.line)
        })
        .collect()
}

/// [`check_names`] for a whole template file, each at its name's line and column in `file`.
pub fn check_names_file(
    env: &Environment<'static>,
    source: &str,
    file: &Arc<str>,
) -> Vec<Diagnostic> {
    names::refused(env, source, false)
        .into_iter()
        .map(|r| {
            let at = Loc::new(
                file,
                u32::try_from(r.line).unwrap_or(u32::MAX),
                u32::try_from(r.col).unwrap_or(u32::MAX),
            );
            let msg = describe_error(env, &r.error, source, &Value::UNDEFINED);
            with_notes(Diagnostic::at(&at, msg), &r.error, source, r.line)
        })
        .collect()
}

/// Evaluates a conditional to a bool with Ansible truthiness: a bool is itself; none, `0`, `""`
/// and empty lists/maps are false; anything else is true. One deliberate exception: a string
/// result that Ansible's `bool` filter reads as false (`'false'`, `'no'`, `'off'`, `'n'`, `'0'`)
/// is an error, because Jinja would call it true and a deploy should not guess.
pub fn eval_bool(
    env: &Environment<'static>,
    expr: &str,
    ctx: &Value,
    loc: &Loc,
) -> Result<bool, Diagnostic> {
    let v = eval_expr(env, expr, ctx, loc)?;
    if let Some(s) = v.as_str() {
        let t = s.trim().to_ascii_lowercase();
        if matches!(t.as_str(), "false" | "no" | "off" | "n" | "0" | "f") {
            return Err(Diagnostic::at(
                loc,
                format!(
                    "conditional '{}' is the string '{s}', which Jinja treats as true",
                    expr.trim()
                ),
            )
            .note("write `... | bool` to read it as a boolean"));
        }
    }
    Ok(v.is_true())
}

/// Renders a value that may hold templates. A string that is exactly one `{{ expr }}` yields the
/// expression's native value (list, map, number, bool, none); any other string renders to a
/// string; lists and maps are rendered leaf by leaf (map keys render to strings); other scalars
/// are returned as they are.
pub fn render_value(
    env: &Environment<'static>,
    v: &serde_json::Value,
    ctx: &Value,
    loc: &Loc,
) -> Result<serde_json::Value, Diagnostic> {
    render_json(env, v, ctx).map_err(|(e, source)| to_diagnostic_in(env, &e, &source, ctx, loc))
}

/// [`render_value`] with minijinja's error and the template text it came from.
pub(crate) fn render_json(
    env: &Environment<'static>,
    v: &serde_json::Value,
    ctx: &Value,
) -> Result<serde_json::Value, (Error, String)> {
    use serde_json::Value as J;
    match v {
        J::String(s) => render_string_value(env, s, ctx),
        J::Array(items) => items
            .iter()
            .map(|i| render_json(env, i, ctx))
            .collect::<Result<Vec<_>, _>>()
            .map(J::Array),
        J::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (k, val) in map {
                let key = if has_template(k) {
                    env.render_str(k, ctx.clone()).map_err(|e| (e, k.clone()))?
                } else {
                    k.clone()
                };
                out.insert(key, render_json(env, val, ctx)?);
            }
            Ok(J::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// The names of top-level variables `source` reads and does not set itself (`{% set %}`, loop
/// variables and macro arguments are not listed; neither are globals such as `omit`, `range` or
/// `lookup`). A syntax error comes back as a [`Diagnostic`].
pub fn referenced_vars(
    env: &Environment<'static>,
    source: &str,
    loc: &Loc,
) -> Result<BTreeSet<String>, Diagnostic> {
    let mut tmp = Environment::empty();
    tmp.set_syntax(env.syntax().clone());
    let t = tmp
        .template_from_str(source)
        .map_err(|e| to_diagnostic_in(env, &e, source, &Value::UNDEFINED, loc))?;
    Ok(without_globals(env, t.undeclared_variables(false)))
}

/// Like [`referenced_vars`] for a bare expression (a `when:` condition); a single `{{ expr }}`
/// is unwrapped as [`eval_expr`] does.
pub fn expr_referenced_vars(
    env: &Environment<'static>,
    expr: &str,
    loc: &Loc,
) -> Result<BTreeSet<String>, Diagnostic> {
    let inner = bare_expression(env, expr, loc)?;
    let e = env
        .compile_expression_owned(inner.to_string())
        .map_err(|e| to_diagnostic_in(env, &e, inner, &Value::UNDEFINED, loc))?;
    Ok(without_globals(env, e.undeclared_variables(false)))
}

/// `ansible_managed` in a `template:` source when the play does not set it: Ansible's
/// default (`DEFAULT_MANAGED_STR`).
pub const ANSIBLE_MANAGED: &str = "Ansible managed";

/// True if `s` contains anything minijinja would treat as template syntax.
pub fn has_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

fn without_globals(
    env: &Environment<'static>,
    names: std::collections::HashSet<String>,
) -> BTreeSet<String> {
    let globals: BTreeSet<&str> = env.globals().map(|(n, _)| n).collect();
    names
        .into_iter()
        .filter(|n| !globals.contains(n.as_str()))
        .collect()
}

/// If `s` is exactly one `{{ expr }}` (no text around it, no second block), the expression.
pub(crate) fn single_expression<'a>(env: &Environment<'static>, s: &'a str) -> Option<&'a str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    if inner.trim().is_empty() {
        return None;
    }
    // `{{ a }} and {{ b }}` strips to `a }} and {{ b`, which is not an expression.
    env.compile_expression_owned(inner.to_string()).ok()?;
    Some(inner)
}

/// The expression a conditional means: the text itself, or what is inside a single `{{ }}`.
fn bare_expression<'a>(
    env: &Environment<'static>,
    expr: &'a str,
    loc: &Loc,
) -> Result<&'a str, Diagnostic> {
    let t = expr.trim();
    if let Some(inner) = single_expression(env, t) {
        return Ok(inner);
    }
    if has_template(t) {
        return Err(Diagnostic::at(
            loc,
            format!("conditional '{t}' mixes an expression with {{{{ }}}} or {{% %}} blocks"),
        )
        .note("conditionals are already expressions: write `x == 1`, not `{{ x }} == 1`"));
    }
    if t.is_empty() {
        return Err(Diagnostic::at(loc, "empty expression"));
    }
    Ok(t)
}

fn render_string_value(
    env: &Environment<'static>,
    s: &str,
    ctx: &Value,
) -> Result<serde_json::Value, (Error, String)> {
    if !has_template(s) {
        return Ok(serde_json::Value::String(s.to_string()));
    }
    if let Some(inner) = single_expression(env, s) {
        let v = eval_guarded(env, inner, ctx).map_err(|e| (e, inner.to_string()))?;
        return value_to_json(&v).map_err(|e| (e, s.to_string()));
    }
    render_guarded(env, s, ctx)
        .map(serde_json::Value::String)
        .map_err(|e| (e, s.to_string()))
}

/// Converts a template value into JSON data. Undefined and invalid values are errors (strict
/// undefined must not turn into `null` on the way out); map keys become strings.
pub fn value_to_json(v: &Value) -> Result<serde_json::Value, Error> {
    use serde_json::Value as J;
    Ok(match v.kind() {
        ValueKind::Undefined => {
            return Err(Error::new(ErrorKind::UndefinedError, "value is undefined"));
        }
        ValueKind::Invalid => {
            // minijinja keeps the carried error private; its display text is what we have.
            let text = v.to_string();
            let text = text
                .strip_prefix("<invalid value: ")
                .and_then(|t| t.strip_suffix('>'))
                .unwrap_or(&text);
            return Err(Error::new(ErrorKind::InvalidOperation, text.to_string()));
        }
        ValueKind::None => J::Null,
        ValueKind::Bool => J::Bool(v.is_true()),
        ValueKind::Number => {
            // A float stays a float (`2.0`, as Python prints it), even when it is whole.
            if !v.is_integer() {
                f64::try_from(v.clone())
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(J::Number)
                    .unwrap_or_else(|| J::String(v.to_string()))
            } else if let Ok(i) = i64::try_from(v.clone()) {
                J::from(i)
            } else if let Ok(u) = u64::try_from(v.clone()) {
                J::from(u)
            } else if let Ok(f) = f64::try_from(v.clone()) {
                serde_json::Number::from_f64(f)
                    .map(J::Number)
                    .unwrap_or_else(|| J::String(v.to_string()))
            } else {
                J::String(v.to_string())
            }
        }
        ValueKind::String => J::String(v.as_str().unwrap_or_default().to_string()),
        ValueKind::Bytes => {
            J::String(String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into())
        }
        ValueKind::Map => {
            let mut out = serde_json::Map::new();
            for key in v.try_iter()? {
                let val = v.get_item(&key)?;
                let k = match key.as_str() {
                    Some(s) => s.to_string(),
                    None => key.to_string(),
                };
                out.insert(k, value_to_json(&val)?);
            }
            J::Object(out)
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let mut out = Vec::new();
            for item in v.try_iter()? {
                out.push(value_to_json(&item)?);
            }
            J::Array(out)
        }
        _ => J::String(v.to_string()),
    })
}

/// Converts JSON data into a template value (key order kept).
pub fn json_to_value(v: &serde_json::Value) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// Turns a minijinja error into a Diagnostic at `loc`, moved down by the template's own line.
fn to_diagnostic_in(
    env: &Environment<'static>,
    e: &Error,
    source: &str,
    ctx: &Value,
    loc: &Loc,
) -> Diagnostic {
    let mut at = loc.clone();
    let line = e.line().unwrap_or(1).max(1);
    if line > 1 {
        // A value inside YAML: its later lines lost their indentation, so only the line.
        at.line = at
            .line
            .saturating_add(u32::try_from(line - 1).unwrap_or(u32::MAX));
        at.col = 1;
    }
    with_notes(
        Diagnostic::at(&at, describe_error(env, e, source, ctx)),
        e,
        source,
        line,
    )
}

/// Turns a minijinja error in a whole template file into a Diagnostic at its exact line and
/// column in `file`.
fn file_diagnostic(
    env: &Environment<'static>,
    e: &Error,
    source: &str,
    ctx: &Value,
    file: &Arc<str>,
) -> Diagnostic {
    let (line, col) = error_position(e, source);
    let at = Loc::new(
        file,
        u32::try_from(line).unwrap_or(u32::MAX),
        col.map_or(1, |c| u32::try_from(c).unwrap_or(u32::MAX)),
    );
    with_notes(
        Diagnostic::at(&at, describe_error(env, e, source, ctx)),
        e,
        source,
        line,
    )
}

/// The template's line and the error's causes, as notes.
fn with_notes(mut d: Diagnostic, e: &Error, source: &str, line: usize) -> Diagnostic {
    if let Some(text) = source_line(source, line) {
        d = d.note(format!("in template: {text}"));
    }
    let mut cause = std::error::Error::source(e);
    while let Some(inner) = cause {
        d = d.note(format!("caused by: {inner}"));
        cause = inner.source();
    }
    d
}

/// Where in `source` minijinja blames `e`: the 1-based line, and the 1-based column (in
/// characters) of the start of the blamed span when minijinja gives one.
pub(crate) fn error_position(e: &Error, source: &str) -> (usize, Option<usize>) {
    let line = e.line().unwrap_or(1).max(1);
    let Some(start) = e.range().map(|r| r.start).filter(|s| *s <= source.len()) else {
        return (line, None);
    };
    let Some(before) = source.get(..start) else {
        return (line, None);
    };
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let span_line = before.matches('\n').count() + 1;
    if span_line != line {
        return (line, None);
    }
    (line, Some(before[line_start..].chars().count() + 1))
}

/// Line `line` (1-based) of a template, trimmed and shortened for a note.
fn source_line(source: &str, line: usize) -> Option<String> {
    let text = source.lines().nth(line.saturating_sub(1))?.trim();
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(120) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    })
}

/// The part of `source` minijinja blames, if it says.
fn snippet<'a>(e: &Error, source: &'a str) -> Option<&'a str> {
    e.range()
        .and_then(|r| source.get(r))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// One sentence for a minijinja error: for an undefined value, which variable; for a
/// variable whose own template failed, that variable and why.
pub(crate) fn describe_error(
    env: &Environment<'static>,
    e: &Error,
    source: &str,
    ctx: &Value,
) -> String {
    match e.kind() {
        ErrorKind::UndefinedError => undefined_message(env, e, snippet(e, source), source, ctx),
        ErrorKind::SyntaxError => format!(
            "template syntax error: {}",
            e.detail().unwrap_or("invalid syntax")
        ),
        kind => match e.detail() {
            Some(d) if let Some(msg) = unknown::message(kind, d) => msg,
            Some(d) if kind == ErrorKind::InvalidOperation => d.to_string(),
            Some(d) if kind == ErrorKind::UnknownFunction && d.starts_with("lookup") => {
                d.to_string()
            }
            Some(d) => format!("{kind}: {d}"),
            None => kind.to_string(),
        },
    }
}

/// "'x' is undefined" naming the variable (minijinja's own detail when it has one, else the
/// first variable the failing text reads that `ctx` lacks); for a variable that is defined but
/// whose template read something undefined, why that template failed.
fn undefined_message(
    env: &Environment<'static>,
    e: &Error,
    snippet: Option<&str>,
    source: &str,
    ctx: &Value,
) -> String {
    let detail = e.detail();
    let from_detail = detail
        .and_then(|d| d.strip_prefix('`'))
        .and_then(|d| d.split_once("` is undefined"))
        .map(|(n, _)| n.to_string());
    let name = match (from_detail, detail) {
        (Some(n), _) => Some(n),
        (None, None) => first_undefined(env, snippet, source, ctx),
        (None, Some(_)) => None,
    };
    let Some(name) = name else {
        if let Some(msg) = computed_fact(env, snippet, source, ctx) {
            return msg;
        }
        return detail.unwrap_or("undefined value").to_string();
    };
    if snippet.is_some_and(|s| s.starts_with("mandatory")) {
        return format!("mandatory variable '{name}' is not defined");
    }
    let head = name.split(['.', '[']).next().unwrap_or(&name);
    if let Some(lazy) = ctx.downcast_object_ref::<LazyVars>()
        && let Some(Err(inner)) = lazy.get(head)
    {
        return inner.detail().unwrap_or("undefined value").to_string();
    }
    if let Some(msg) = crate::exec::facts::not_gathered_path(&name)
        .or_else(|| computed_fact(env, snippet, source, ctx))
    {
        return msg;
    }
    format!("'{name}' is undefined")
}

/// "fact 'X' is not gathered by rdeploy" for `ansible_facts[EXPR]` in the failing text whose
/// `EXPR` evaluates to such a fact's name (a key computed at run time).
fn computed_fact(
    env: &Environment<'static>,
    snippet: Option<&str>,
    source: &str,
    ctx: &Value,
) -> Option<String> {
    const HEAD: &str = "ansible_facts[";
    [snippet, Some(source)]
        .into_iter()
        .flatten()
        .find_map(|text| {
            let start = text.find(HEAD)? + HEAD.len();
            let mut depth = 0usize;
            let end = text[start..].char_indices().find_map(|(i, c)| match c {
                '[' => {
                    depth += 1;
                    None
                }
                ']' if depth == 0 => Some(i),
                ']' => {
                    depth -= 1;
                    None
                }
                _ => None,
            })?;
            let key = env
                .compile_expression(&text[start..start + end])
                .ok()?
                .eval(ctx)
                .ok()?;
            crate::exec::facts::not_gathered(key.as_str()?)
        })
}

/// The first variable (or dotted path prefix) that the failing text reads and `ctx` lacks.
fn first_undefined(
    env: &Environment<'static>,
    snippet: Option<&str>,
    source: &str,
    ctx: &Value,
) -> Option<String> {
    let mut names = Vec::new();
    for text in [snippet, Some(source)].into_iter().flatten() {
        let mut tmp = Environment::empty();
        tmp.set_syntax(env.syntax().clone());
        let found = tmp
            .compile_expression_owned(text.to_string())
            .map(|x| x.undeclared_variables(true))
            .or_else(|_| {
                tmp.template_from_str(text)
                    .map(|t| t.undeclared_variables(true))
            })
            .unwrap_or_default();
        let mut found: Vec<String> = found
            .into_iter()
            .filter(|n| {
                let head = n.split('.').next().unwrap_or(n);
                env.globals().all(|(g, _)| g != head)
            })
            .collect();
        found.sort();
        names.extend(found);
    }
    for n in &names {
        if path_defined(ctx, n) {
            continue;
        }
        // `a.b.c`: name the first part that is missing.
        let mut prefix = String::new();
        for part in n.split('.') {
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(part);
            if !path_defined(ctx, &prefix) {
                break;
            }
        }
        return Some(prefix);
    }
    None
}

/// Whether a dotted path such as `a.b.c` resolves in `ctx`.
fn path_defined(ctx: &Value, path: &str) -> bool {
    let mut cur = ctx.clone();
    for part in path.split('.') {
        match cur.get_attr(part) {
            Ok(v) if !v.is_undefined() => cur = v,
            _ => return false,
        }
    }
    true
}

/// Shared handle to the environment, as [`LazyVars`] needs it.
pub fn shared_environment() -> Arc<Environment<'static>> {
    Arc::new(environment())
}

#[cfg(test)]
mod unit_tests;

#[cfg(test)]
mod ansible_tables;
