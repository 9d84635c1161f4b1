//! The rest of ansible-core 2.19's builtin tests (test/core.py, files.py, mathstuff.py,
//! uri.py) that [`super::tests`] does not carry: `reachable`/`unreachable`, `timedout`,
//! `started`/`finished`, `any`/`all`, the file tests (`file`, `directory`, `link`, `exists`,
//! `link_exists`, `abs`, `same_file`, `mount` and their `is_` names), `nan`, `uri`/`url`/`urn`,
//! `vaulted_file`, and `vault_encrypted` (refused: see [`vault_encrypted`]).
//!
//! The file tests read the controller's file system, as Ansible's do (they run where the
//! template is rendered). It must not render anything it is given.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use minijinja::value::ValueKind;
use minijinja::{Environment, Error, ErrorKind, Value};

use super::filters::add_test;

/// Adds every test of this file (short and `ansible.builtin.` names) to `env`.
pub fn register(env: &mut Environment<'static>) {
    add_test(env, "reachable", reachable);
    add_test(env, "unreachable", unreachable);
    add_test(env, "timedout", timedout);
    add_test(env, "started", started);
    add_test(env, "finished", finished);
    add_test(env, "any", any);
    add_test(env, "all", all);
    add_test(env, "vault_encrypted", vault_encrypted);
    add_test(env, "vaulted_file", vaulted_file);
    add_test(env, "directory", is_dir);
    add_test(env, "is_dir", is_dir);
    add_test(env, "file", is_file);
    add_test(env, "is_file", is_file);
    add_test(env, "link", is_link);
    add_test(env, "is_link", is_link);
    add_test(env, "exists", exists);
    add_test(env, "link_exists", link_exists);
    add_test(env, "abs", is_abs);
    add_test(env, "is_abs", is_abs);
    add_test(env, "same_file", same_file);
    add_test(env, "is_same_file", same_file);
    add_test(env, "mount", is_mount);
    add_test(env, "is_mount", is_mount);
    add_test(env, "nan", is_nan);
    add_test(env, "isnan", is_nan);
    add_test(env, "uri", is_uri);
    add_test(env, "url", is_url);
    add_test(env, "urn", is_urn);
}

fn op_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// The result dict a task-result test reads, or Ansible's "expects a dictionary" error.
fn result<'a>(v: &'a Value, test: &str) -> Result<&'a Value, Error> {
    match v.kind() {
        ValueKind::Map => Ok(v),
        ValueKind::Undefined => Err(Error::new(
            ErrorKind::UndefinedError,
            format!("the '{test}' test got an undefined value"),
        )),
        _ => Err(op_err(format!("The '{test}' test expects a dictionary"))),
    }
}

fn key(v: &Value, k: &str) -> Result<Option<Value>, Error> {
    let x = v.get_attr(k)?;
    Ok((!x.is_undefined()).then_some(x))
}

fn unreachable(v: &Value) -> Result<bool, Error> {
    let r = result(v, "unreachable")?;
    Ok(key(r, "unreachable")?.is_some_and(|x| x.is_true()))
}

fn reachable(v: &Value) -> Result<bool, Error> {
    result(v, "reachable")?;
    Ok(!unreachable(v)?)
}

/// `timedout`: the result's `timedout` is set and has a truthy `period`.
fn timedout(v: &Value) -> Result<bool, Error> {
    let r = result(v, "timedout")?;
    match key(r, "timedout")? {
        Some(t) if t.is_true() => Ok(t.get_attr("period")?.is_true()),
        _ => Ok(false),
    }
}

/// `started`/`finished`: the async result's key; a result without it counts as true (Ansible
/// warns that the task was not async).
fn async_flag(v: &Value, test: &str) -> Result<bool, Error> {
    let r = result(v, test)?;
    Ok(key(r, test)?.is_none_or(|x| x.is_true()))
}

fn started(v: &Value) -> Result<bool, Error> {
    async_flag(v, "started")
}

fn finished(v: &Value) -> Result<bool, Error> {
    async_flag(v, "finished")
}

fn items(v: &Value, test: &str) -> Result<Vec<Value>, Error> {
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => Ok(v.try_iter()?.collect()),
        ValueKind::String => Ok(v
            .as_str()
            .unwrap_or_default()
            .chars()
            .map(|c| Value::from(c.to_string()))
            .collect()),
        k => Err(op_err(format!("the '{test}' test expects a list, got {k}"))),
    }
}

/// Python's `any(value)`.
fn any(v: &Value) -> Result<bool, Error> {
    Ok(items(v, "any")?.iter().any(Value::is_true))
}

/// Python's `all(value)`.
fn all(v: &Value) -> Result<bool, Error> {
    Ok(items(v, "all")?.iter().all(Value::is_true))
}

/// Refused: Ansible answers from the `!vault` tag a value was loaded with, and rdeploy
/// decrypts inline `!vault` values when it loads them, so the tag is gone and any answer
/// could be wrong.
fn vault_encrypted(v: &Value) -> Result<bool, Error> {
    let _ = v;
    Err(op_err(
        "the 'vault_encrypted' test is not supported by rdeploy (inline !vault values are decrypted when loaded, so whether a value was vaulted is not known)",
    ))
}

/// `vaulted_file`: whether the controller file starts with a vault header.
fn vaulted_file(v: &Value) -> Result<bool, Error> {
    let p = path(v, "vaulted_file")?;
    let text = std::fs::read(&p).map_err(|e| {
        // Python's OSError text: `[Errno 2] No such file or directory: b'PATH'`.
        let msg = e.to_string();
        let why = msg.split(" (os error").next().unwrap_or(&msg);
        let detail = match e.raw_os_error() {
            Some(n) => format!("[Errno {n}] {why}: b'{p}'"),
            None => why.to_string(),
        };
        op_err(format!(
            "Cannot test if the file '{p}' is a vault: {detail}"
        ))
    })?;
    Ok(crate::vault::is_vault(&String::from_utf8_lossy(&text)))
}

fn path(v: &Value, test: &str) -> Result<String, Error> {
    match v.kind() {
        ValueKind::Undefined => Err(Error::new(
            ErrorKind::UndefinedError,
            format!("the '{test}' test got an undefined value"),
        )),
        _ => v.as_str().map(str::to_string).ok_or_else(|| {
            op_err(format!(
                "the '{test}' test expects a path, got {}",
                v.kind()
            ))
        }),
    }
}

fn is_dir(v: &Value) -> Result<bool, Error> {
    Ok(Path::new(&path(v, "directory")?).is_dir())
}

fn is_file(v: &Value) -> Result<bool, Error> {
    Ok(Path::new(&path(v, "file")?).is_file())
}

fn is_link(v: &Value) -> Result<bool, Error> {
    Ok(Path::new(&path(v, "link")?).is_symlink())
}

fn exists(v: &Value) -> Result<bool, Error> {
    Ok(Path::new(&path(v, "exists")?).exists())
}

fn link_exists(v: &Value) -> Result<bool, Error> {
    Ok(std::fs::symlink_metadata(path(v, "link_exists")?).is_ok())
}

fn is_abs(v: &Value) -> Result<bool, Error> {
    Ok(path(v, "abs")?.starts_with('/'))
}

/// `same_file(other)`: `os.path.samefile` (a missing file is an error, as in Python).
fn same_file(v: &Value, other: &Value) -> Result<bool, Error> {
    let a = path(v, "same_file")?;
    let b = path(other, "same_file")?;
    let ma = std::fs::metadata(&a).map_err(|e| op_err(format!("same_file: {a}: {e}")))?;
    let mb = std::fs::metadata(&b).map_err(|e| op_err(format!("same_file: {b}: {e}")))?;
    Ok(ma.dev() == mb.dev() && ma.ino() == mb.ino())
}

/// `os.path.ismount`: a different device than the parent, or the same inode as it.
fn is_mount(v: &Value) -> Result<bool, Error> {
    let p = path(v, "mount")?;
    let Ok(m) = std::fs::symlink_metadata(&p) else {
        return Ok(false);
    };
    if m.file_type().is_symlink() {
        return Ok(false);
    }
    let parent = format!("{}/..", p.trim_end_matches('/'));
    let Ok(pm) = std::fs::symlink_metadata(if p.trim_end_matches('/').is_empty() {
        "/.."
    } else {
        &parent
    }) else {
        return Ok(false);
    };
    Ok(m.dev() != pm.dev() || m.ino() == pm.ino())
}

/// `nan`: `math.isnan`; a value that is not a number is not NaN.
fn is_nan(v: &Value) -> Result<bool, Error> {
    Ok(v.kind() == ValueKind::Number && f64::try_from(v.clone()).is_ok_and(f64::is_nan))
}

/// The scheme and netloc of `urllib.parse.urlparse(value)`.
fn scheme_netloc(s: &str) -> (String, bool) {
    let mut rest = s.trim_start_matches(|c: char| c <= ' ');
    let mut scheme = String::new();
    if let Some(i) = rest.find(':') {
        let cand = &rest[..i];
        if cand.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && cand
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            scheme = cand.to_ascii_lowercase();
            rest = &rest[i + 1..];
        }
    }
    let netloc = rest
        .strip_prefix("//")
        .map(|r| &r[..r.find(['/', '?', '#']).unwrap_or(r.len())])
        .unwrap_or("");
    (scheme, !netloc.is_empty())
}

fn schemes_ok(scheme: &str, schemes: Option<&Value>) -> Result<bool, Error> {
    match schemes {
        None => Ok(true),
        Some(l) if !l.is_true() => Ok(true),
        Some(l) => Ok(l.try_iter()?.any(|s| s.as_str() == Some(scheme))),
    }
}

/// `uri(schemes=None)`: any string parses as a URI; with `schemes`, its scheme must be one.
fn is_uri(v: &Value, schemes: Option<Value>) -> Result<bool, Error> {
    let Some(s) = v.as_str() else {
        return Ok(false);
    };
    schemes_ok(&scheme_netloc(s).0, schemes.as_ref())
}

/// `url(schemes=None)`: a URI with a network location (or a `file` URI).
fn is_url(v: &Value, schemes: Option<Value>) -> Result<bool, Error> {
    let Some(s) = v.as_str() else {
        return Ok(false);
    };
    let (scheme, netloc) = scheme_netloc(s);
    Ok(schemes_ok(&scheme, schemes.as_ref())? && (netloc || scheme == "file"))
}

fn is_urn(v: &Value) -> Result<bool, Error> {
    let Some(s) = v.as_str() else {
        return Ok(false);
    };
    Ok(scheme_netloc(s).0 == "urn")
}
