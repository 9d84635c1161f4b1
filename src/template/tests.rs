//! Ansible's Jinja tests (`x is ...`) on top of minijinja's built-ins.
//!
//! This file owns the tests Ansible adds or changes: regex tests (`match` anchored at the
//! start, `search`, `regex`), the task-result tests (`succeeded`, `failed`, `changed`,
//! `skipped` and their short names) that read a registered result's keys, `truthy`/`falsy`,
//! `contains`, `subset`/`superset` and `version` comparisons. Built-ins (`defined`,
//! `undefined`, `none`, `string`, `number`, `mapping`, `iterable`, `sequence`, `in`, ...) are
//! kept. It must not render or evaluate anything it is given.

use std::cmp::Ordering;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};

use super::filters::{add_test, compile_regex, to_bool};

/// Adds every test of this file to `env`.
pub fn register(env: &mut Environment<'static>) {
    add_test(env, "match", is_match);
    add_test(env, "search", is_search);
    add_test(env, "regex", is_regex);
    add_test(env, "succeeded", is_succeeded);
    add_test(env, "success", is_succeeded);
    add_test(env, "successful", is_succeeded);
    add_test(env, "failed", is_failed);
    add_test(env, "failure", is_failed);
    add_test(env, "changed", is_changed);
    add_test(env, "change", is_changed);
    add_test(env, "skipped", is_skipped);
    add_test(env, "skip", is_skipped);
    add_test(env, "truthy", is_truthy);
    add_test(env, "falsy", is_falsy);
    add_test(env, "contains", contains);
    add_test(env, "subset", is_subset);
    add_test(env, "superset", is_superset);
    add_test(env, "issubset", is_subset);
    add_test(env, "issuperset", is_superset);
    add_test(env, "version", version);
    add_test(env, "version_compare", version);
}

fn op_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn regex_test(
    v: &Value,
    pattern: &str,
    kwargs: &Kwargs,
    default_type: &str,
) -> Result<bool, Error> {
    let ignorecase = kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let multiline = kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false);
    let match_type = kwargs
        .get::<Option<String>>("match_type")?
        .unwrap_or_else(|| default_type.to_string());
    kwargs.assert_all_used()?;
    if v.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "regex test got an undefined value",
        ));
    }
    let text = match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    };
    let re = compile_regex(pattern, ignorecase, multiline)?;
    Ok(match match_type.as_str() {
        "match" => {
            re.find(&text).is_some_and(|m| m.start() == 0) || {
                // `find` returns the leftmost match; an anchored match may be a later, different
                // alternative, so ask again with the pattern anchored.
                compile_regex(&format!("^(?:{pattern})"), ignorecase, false)?.is_match(&text)
            }
        }
        "search" => re.is_match(&text),
        "fullmatch" => {
            compile_regex(&format!("^(?:{pattern})$"), ignorecase, false)?.is_match(&text)
        }
        other => return Err(op_err(format!("regex test: unknown match_type '{other}'"))),
    })
}

/// `x is match(pattern)`: Python's `re.match`, anchored at the start only.
fn is_match(v: &Value, pattern: &str, kwargs: Kwargs) -> Result<bool, Error> {
    regex_test(v, pattern, &kwargs, "match")
}

/// `x is search(pattern)`: Python's `re.search`, anywhere in the string.
fn is_search(v: &Value, pattern: &str, kwargs: Kwargs) -> Result<bool, Error> {
    regex_test(v, pattern, &kwargs, "search")
}

/// `x is regex(pattern, match_type='search')`.
fn is_regex(v: &Value, pattern: &str, kwargs: Kwargs) -> Result<bool, Error> {
    regex_test(v, pattern, &kwargs, "search")
}

fn result_map(v: &Value, test: &str) -> Result<(), Error> {
    match v.kind() {
        ValueKind::Map => Ok(()),
        ValueKind::Undefined => Err(Error::new(
            ErrorKind::UndefinedError,
            format!("the '{test}' test got an undefined value"),
        )),
        k => Err(op_err(format!(
            "the '{test}' test expects a registered task result (a dict), got {k}"
        ))),
    }
}

fn flag(v: &Value, key: &str) -> Result<Option<bool>, Error> {
    let x = v.get_attr(key)?;
    if x.is_undefined() || x.is_none() {
        return Ok(None);
    }
    Ok(Some(match x.kind() {
        ValueKind::String => to_bool(&x)?,
        _ => x.is_true(),
    }))
}

/// A registered result failed: its `failed` key, or (when that is missing) a non-zero `rc`.
fn is_failed(v: &Value) -> Result<bool, Error> {
    result_map(v, "failed")?;
    if let Some(f) = flag(v, "failed")? {
        return Ok(f);
    }
    let rc = v.get_attr("rc")?;
    Ok(match rc.as_i64() {
        Some(rc) => rc != 0,
        None => false,
    })
}

fn is_succeeded(v: &Value) -> Result<bool, Error> {
    result_map(v, "succeeded")?;
    Ok(!is_failed(v)?)
}

/// A registered result changed: its `changed` key; for a looped task without one, whether any
/// item in `results` changed.
fn is_changed(v: &Value) -> Result<bool, Error> {
    result_map(v, "changed")?;
    if let Some(c) = flag(v, "changed")? {
        return Ok(c);
    }
    let results = v.get_attr("results")?;
    if results.kind() == ValueKind::Seq {
        for r in results.try_iter()? {
            if r.kind() == ValueKind::Map && flag(&r, "changed")?.unwrap_or(false) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn is_skipped(v: &Value) -> Result<bool, Error> {
    result_map(v, "skipped")?;
    Ok(flag(v, "skipped")?.unwrap_or(false))
}

/// Python truthiness; with `convert_bool=true`, boolean words are read first.
fn is_truthy(v: &Value, kwargs: Kwargs) -> Result<bool, Error> {
    let convert = kwargs.get::<Option<bool>>("convert_bool")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    if v.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "truthy test got an undefined value",
        ));
    }
    if convert && let Ok(b) = to_bool(v) {
        return Ok(b);
    }
    Ok(v.is_true())
}

fn is_falsy(v: &Value, kwargs: Kwargs) -> Result<bool, Error> {
    Ok(!is_truthy(v, kwargs)?)
}

fn list_of(v: &Value, test: &str) -> Result<Vec<Value>, Error> {
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => Ok(v.try_iter()?.collect()),
        k => Err(op_err(format!("the '{test}' test expects a list, got {k}"))),
    }
}

/// `list is contains(x)`: the reverse of `in`, usable with `select`.
fn contains(v: &Value, item: Value) -> Result<bool, Error> {
    if let Some(s) = v.as_str() {
        return Ok(item.as_str().is_some_and(|i| s.contains(i)));
    }
    Ok(list_of(v, "contains")?.contains(&item))
}

fn is_subset(v: &Value, other: &Value) -> Result<bool, Error> {
    let big = list_of(other, "subset")?;
    Ok(list_of(v, "subset")?.iter().all(|x| big.contains(x)))
}

fn is_superset(v: &Value, other: &Value) -> Result<bool, Error> {
    is_subset(other, v)
}

/// One part of a version: a number or a run of letters (distutils' LooseVersion).
#[derive(Debug, PartialEq, Eq)]
enum Part {
    Num(u64),
    Alpha(String),
}

impl PartialOrd for Part {
    fn partial_cmp(&self, other: &Part) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Part {
    /// Python 3's LooseVersion raises on a number against letters; we rank the number higher,
    /// so a release (`1.0.1`) sorts above a pre-release tag at the same place (`1.0a`).
    fn cmp(&self, other: &Part) -> Ordering {
        match (self, other) {
            (Part::Num(a), Part::Num(b)) => a.cmp(b),
            (Part::Alpha(a), Part::Alpha(b)) => a.cmp(b),
            (Part::Num(_), Part::Alpha(_)) => Ordering::Greater,
            (Part::Alpha(_), Part::Num(_)) => Ordering::Less,
        }
    }
}

fn loose_parts(v: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut cur_num = false;
    let flush = |cur: &mut String, cur_num: bool, parts: &mut Vec<Part>| {
        if cur.is_empty() {
            return;
        }
        parts.push(if cur_num {
            Part::Num(cur.parse().unwrap_or(u64::MAX))
        } else {
            Part::Alpha(cur.clone())
        });
        cur.clear();
    };
    for c in v.trim().trim_start_matches(['v', 'V']).chars() {
        if c.is_ascii_digit() {
            if !cur_num {
                flush(&mut cur, cur_num, &mut parts);
            }
            cur_num = true;
            cur.push(c);
        } else if c.is_alphabetic() {
            if cur_num {
                flush(&mut cur, cur_num, &mut parts);
            }
            cur_num = false;
            cur.push(c);
        } else {
            flush(&mut cur, cur_num, &mut parts);
        }
    }
    flush(&mut cur, cur_num, &mut parts);
    parts
}

/// Compares two version strings the way LooseVersion does: numeric parts as numbers.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    loose_parts(a).cmp(&loose_parts(b))
}

/// `x is version('1.2', '>=')` (also `version_compare`): operators `==`/`=`/`eq`, `!=`/`<>`/
/// `ne`, `<`/`lt`, `<=`/`le`, `>`/`gt`, `>=`/`ge` (default `eq`). With `strict=true` both
/// sides must look like `N.N[.N]`.
fn version(v: &Value, other: &Value, op: Option<&str>, kwargs: Kwargs) -> Result<bool, Error> {
    let op = match op {
        Some(op) => op.to_string(),
        None => kwargs
            .get::<Option<String>>("operator")?
            .unwrap_or_else(|| "eq".to_string()),
    };
    let strict = kwargs.get::<Option<bool>>("strict")?.unwrap_or(false);
    let _ = kwargs.get::<Option<String>>("version_type")?;
    kwargs.assert_all_used()?;
    if v.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "version test got an undefined value",
        ));
    }
    let text = |x: &Value| {
        x.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| x.to_string())
    };
    let (a, b) = (text(v), text(other));
    if strict {
        let ok = |s: &str| {
            let parts: Vec<&str> = s.split('.').collect();
            (2..=3).contains(&parts.len())
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        };
        if !ok(&a) || !ok(&b) {
            return Err(op_err(format!(
                "version comparison: '{a}' or '{b}' is not a strict version"
            )));
        }
    }
    let ord = compare_versions(&a, &b);
    Ok(match op.as_str() {
        "==" | "=" | "eq" => ord == Ordering::Equal,
        "!=" | "<>" | "ne" => ord != Ordering::Equal,
        "<" | "lt" => ord == Ordering::Less,
        "<=" | "le" => ord != Ordering::Greater,
        ">" | "gt" => ord == Ordering::Greater,
        ">=" | "ge" => ord != Ordering::Less,
        other => {
            return Err(op_err(format!(
                "version comparison: unknown operator '{other}'"
            )));
        }
    })
}

#[cfg(test)]
mod unit_tests {
    use crate::diag::Loc;
    use crate::template::{environment, render_str};

    use serde_json::json;

    fn r_ctx(src: &str, ctx: &serde_json::Value) -> Result<String, String> {
        let env = environment();
        render_str(
            &env,
            src,
            &crate::template::json_to_value(ctx),
            &Loc::file_start("t"),
        )
        .map_err(|e| e.to_string())
    }

    fn table(ctx: serde_json::Value, cases: &[(&str, &str)]) {
        for (src, want) in cases {
            assert_eq!(r_ctx(src, &ctx).as_deref(), Ok(*want), "template: {src}");
        }
    }

    #[test]
    fn type_tests() {
        table(
            json!({"s": "x", "n": 1, "f": 1.5, "m": {"a": 1}, "l": [1], "z": null}),
            &[
                ("{{ s is defined }}", "True"),
                ("{{ nope is defined }}", "False"),
                ("{{ nope is undefined }}", "True"),
                ("{{ z is none }}", "True"),
                ("{{ s is none }}", "False"),
                ("{{ s is string }}", "True"),
                ("{{ n is string }}", "False"),
                ("{{ n is number }}", "True"),
                ("{{ f is number }}", "True"),
                ("{{ m is mapping }}", "True"),
                ("{{ l is mapping }}", "False"),
                ("{{ l is iterable }}", "True"),
                ("{{ l is sequence }}", "True"),
                ("{{ m.a is defined }}", "True"),
                ("{{ m.b is defined }}", "False"),
            ],
        );
    }

    #[test]
    fn regex_tests() {
        table(
            json!({"url": "https://example.com/users/foo/resources/bar"}),
            &[
                (
                    "{{ url is match('https://example.com/users/.*/resources') }}",
                    "True",
                ),
                ("{{ url is match('example') }}", "False"),
                ("{{ url is search('users/.*/resources/.*') }}", "True"),
                ("{{ url is search('USERS', ignorecase=true) }}", "True"),
                ("{{ url is regex('example\\\\.com/\\\\w+/foo') }}", "True"),
                (
                    "{{ url is regex('^example', match_type='match') }}",
                    "False",
                ),
                ("{{ 'ab' is match('b|a') }}", "True"),
                ("{{ 'xa' is match('x|xa$') }}", "True"),
                (
                    "{{ 'abc' is regex('abc', match_type='fullmatch') }}",
                    "True",
                ),
            ],
        );
    }

    #[test]
    fn result_tests_read_registered_keys() {
        let ctx = json!({
            "ok": {"changed": false, "rc": 0},
            "chg": {"changed": true, "failed": false},
            "bad": {"failed": true, "rc": 2},
            "rc_only": {"rc": 1},
            "skip": {"skipped": true, "changed": false},
            "loop": {"results": [{"changed": false}, {"changed": true}]},
            "str_flags": {"failed": "no", "changed": "yes"}
        });
        table(
            ctx.clone(),
            &[
                ("{{ ok is succeeded }}", "True"),
                ("{{ ok is success }}", "True"),
                ("{{ ok is failed }}", "False"),
                ("{{ ok is changed }}", "False"),
                ("{{ chg is changed }}", "True"),
                ("{{ chg is change }}", "True"),
                ("{{ bad is failed }}", "True"),
                ("{{ bad is failure }}", "True"),
                ("{{ bad is succeeded }}", "False"),
                ("{{ rc_only is failed }}", "True"),
                ("{{ skip is skipped }}", "True"),
                ("{{ skip is skip }}", "True"),
                ("{{ ok is skipped }}", "False"),
                ("{{ loop is changed }}", "True"),
                ("{{ str_flags is failed }}", "False"),
                ("{{ str_flags is changed }}", "True"),
            ],
        );
        let e = r_ctx("{{ 'x' is failed }}", &ctx).unwrap_err();
        assert!(e.contains("expects a registered task result"), "{e}");
    }

    #[test]
    fn truthiness_and_membership() {
        table(
            json!({"l": [1, 2, 3], "s": "hello"}),
            &[
                ("{{ 'x' is truthy }}", "True"),
                ("{{ '' is truthy }}", "False"),
                ("{{ 'no' is truthy }}", "True"),
                ("{{ 'no' is truthy(convert_bool=true) }}", "False"),
                ("{{ 0 is falsy }}", "True"),
                ("{{ [] is falsy }}", "True"),
                ("{{ l is contains(2) }}", "True"),
                ("{{ l is contains(9) }}", "False"),
                ("{{ s is contains('ell') }}", "True"),
                ("{{ 2 is in(l) }}", "True"),
                ("{{ 2 in l }}", "True"),
                ("{{ [1, 2] is subset(l) }}", "True"),
                ("{{ [1, 9] is subset(l) }}", "False"),
                ("{{ l is superset([3, 1]) }}", "True"),
                (
                    "{{ [[1], [2, 9]] | select('contains', 9) | list }}",
                    "[[2, 9]]",
                ),
            ],
        );
    }

    #[test]
    fn version_tests() {
        table(
            json!({"v": "1.10.2"}),
            &[
                ("{{ v is version('1.9', '>=') }}", "True"),
                ("{{ v is version('1.10.2', '==') }}", "True"),
                ("{{ v is version('1.10.2') }}", "True"),
                ("{{ v is version('1.10.3', 'lt') }}", "True"),
                ("{{ v is version('2.0', 'ge') }}", "False"),
                ("{{ v is version('1.10', '>') }}", "True"),
                ("{{ v is version_compare('1.10.2', 'eq') }}", "True"),
                ("{{ '12.04' is version('8.04', '>') }}", "True"),
                ("{{ 'v2.1' is version('2.0', operator='gt') }}", "True"),
                ("{{ '1.0' is version('1.0a', '<') }}", "True"),
                ("{{ '1.0.1' is version('1.0a', '>') }}", "True"),
            ],
        );
        assert!(r_ctx("{{ '1' is version('2', '~') }}", &json!({})).is_err());
        assert!(
            r_ctx(
                "{{ '1.a' is version('2.0', '<', strict=true) }}",
                &json!({})
            )
            .is_err()
        );
    }
}
