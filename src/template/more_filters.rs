//! The rest of ansible-core 2.19's builtin filters (core.py, mathstuff.py, urls.py,
//! urlsplit.py, encryption.py) that [`super::filters`] does not carry: path helpers that read
//! the controller (`realpath`, `fileglob`, `expanduser`, `expandvars`), math (`log`, `pow`,
//! `root`), sizes (`human_readable`, `human_to_bytes`), URLs, `to_uuid`, seeded `random` and
//! `shuffle` (Python's generator, [`super::pyrandom`]), `comment`, `type_debug`, `extract`,
//! `subelements`, itertools (`zip_longest`, `permutations`, `combinations`),
//! `rekey_on_member`, `password_hash` ([`super::crypt`]) and `vault`/`unvault` (rdeploy's
//! vault, [`crate::vault`]).
//!
//! Each behaves as Ansible's Python does for the same input: same defaults, same output text,
//! same error wording where Ansible has its own. It must not touch hosts or the network; the
//! path filters read the controller's file system, as Ansible's do.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use minijinja::value::{Kwargs, Rest, Tuple, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};

use super::crypt;
use super::filters::add_filter;
use super::pyrandom::{PyRandom, Seed};

/// Adds every filter of this file (short and `ansible.builtin.` names) to `env`.
pub fn register(env: &mut Environment<'static>) {
    add_filter(env, "path_join", path_join);
    add_filter(env, "expanduser", expanduser);
    add_filter(env, "expandvars", expandvars);
    add_filter(env, "realpath", realpath);
    add_filter(env, "relpath", relpath);
    add_filter(env, "normpath", normpath_filter);
    add_filter(env, "commonpath", commonpath);
    add_filter(env, "fileglob", fileglob);
    add_filter(env, "win_basename", win_basename);
    add_filter(env, "win_dirname", win_dirname);
    add_filter(env, "win_splitdrive", win_splitdrive);
    add_filter(env, "log", log);
    add_filter(env, "pow", pow);
    add_filter(env, "root", root);
    add_filter(env, "md5", md5_filter);
    add_filter(env, "sha1", sha1_filter);
    add_filter(env, "human_readable", human_readable);
    add_filter(env, "human_to_bytes", human_to_bytes);
    add_filter(env, "urldecode", urldecode);
    add_filter(env, "urlsplit", urlsplit);
    add_filter(env, "to_uuid", to_uuid);
    add_filter(env, "random", random);
    add_filter(env, "shuffle", shuffle);
    add_filter(env, "comment", comment);
    add_filter(env, "type_debug", type_debug);
    add_filter(env, "extract", extract);
    add_filter(env, "subelements", subelements);
    add_filter(env, "zip_longest", zip_longest);
    add_filter(env, "permutations", permutations);
    add_filter(env, "combinations", combinations);
    add_filter(env, "rekey_on_member", rekey_on_member);
    add_filter(env, "password_hash", password_hash);
    add_filter(env, "vault", vault);
    add_filter(env, "unvault", unvault);
}

fn op_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn defined<'a>(v: &'a Value, what: &str) -> Result<&'a Value, Error> {
    if v.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            format!("{what} got an undefined value"),
        ));
    }
    Ok(v)
}

/// A string argument (Python would raise a TypeError on anything else).
fn string(v: &Value, what: &str) -> Result<String, Error> {
    defined(v, what)?;
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| op_err(format!("{what} expects a string, got {}", v.kind())))
}

/// Python's `str(v)`, as `to_bytes`/`to_text` do on a non-string.
fn py_str(v: &Value) -> String {
    match v.as_str() {
        Some(s) => s.to_string(),
        None => py_repr(v),
    }
}

/// Python's `repr(v)` for the plain data templates carry.
pub fn py_repr(v: &Value) -> String {
    match v.kind() {
        ValueKind::None | ValueKind::Undefined => "None".into(),
        ValueKind::Bool => if v.is_true() { "True" } else { "False" }.into(),
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default();
            let q = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::from(q);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == q => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(q);
            out
        }
        ValueKind::Map => {
            let parts: Vec<String> = v
                .try_iter()
                .map(|it| {
                    it.map(|k| {
                        let val = v.get_item(&k).unwrap_or_default();
                        format!("{}: {}", py_repr(&k), py_repr(&val))
                    })
                    .collect()
                })
                .unwrap_or_default();
            format!("{{{}}}", parts.join(", "))
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let parts: Vec<String> = v
                .try_iter()
                .map(|it| it.map(|x| py_repr(&x)).collect())
                .unwrap_or_default();
            format!("[{}]", parts.join(", "))
        }
        _ => v.to_string(),
    }
}

fn list_items(v: &Value, what: &str) -> Result<Vec<Value>, Error> {
    defined(v, what)?;
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => Ok(v.try_iter()?.collect()),
        ValueKind::String => Ok(v
            .as_str()
            .unwrap_or_default()
            .chars()
            .map(|c| Value::from(c.to_string()))
            .collect()),
        k => Err(op_err(format!("{what} expects a list, got {k}"))),
    }
}

/// Python-style parameters: each one by position or by name, `None` meaning "not given".
struct Params<'a> {
    what: &'static str,
    pos: &'a [Value],
    kw: &'a Kwargs,
}

impl<'a> Params<'a> {
    fn new(
        what: &'static str,
        pos: &'a [Value],
        kw: &'a Kwargs,
        names: &[&str],
    ) -> Result<Params<'a>, Error> {
        if pos.len() > names.len() {
            return Err(Error::new(
                ErrorKind::TooManyArguments,
                format!(
                    "{what}() takes at most {} arguments ({}) after the value, got {}",
                    names.len(),
                    names.join(", "),
                    pos.len()
                ),
            ));
        }
        Ok(Params { what, pos, kw })
    }

    fn get(&self, i: usize, name: &str) -> Result<Option<Value>, Error> {
        let k = self.kw.get::<Option<Value>>(name)?;
        let v = match (self.pos.get(i), k) {
            (Some(_), Some(_)) => {
                return Err(op_err(format!(
                    "{}() got multiple values for argument '{name}'",
                    self.what
                )));
            }
            (Some(p), None) => Some(p.clone()),
            (None, k) => k,
        };
        Ok(v.filter(|v| !v.is_none() && !v.is_undefined()))
    }

    fn string(&self, i: usize, name: &str) -> Result<Option<String>, Error> {
        self.get(i, name)?
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    op_err(format!(
                        "{}(): '{name}' must be a string, got {}",
                        self.what,
                        v.kind()
                    ))
                })
            })
            .transpose()
    }

    /// Python truthiness, as `if isbits:` reads it.
    fn truthy(&self, i: usize, name: &str) -> Result<bool, Error> {
        Ok(self.get(i, name)?.is_some_and(|v| v.is_true()))
    }

    fn done(&self) -> Result<(), Error> {
        self.kw.assert_all_used()
    }
}

/// A Python tuple (a sequence `type_debug` calls `tuple`).
fn tuple(items: Vec<Value>) -> Value {
    Value::from_object(Tuple::new(items))
}

// ---------------------------------------------------------------- paths

/// `os.path.join(*parts)`.
fn join_posix(parts: &[String]) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if p.starts_with('/') || i == 0 {
            out = p.clone();
        } else if out.is_empty() || out.ends_with('/') {
            out.push_str(p);
        } else {
            out.push('/');
            out.push_str(p);
        }
    }
    out
}

/// `path_join`: a string as is, or `os.path.join` of a list's items.
fn path_join(v: &Value) -> Result<String, Error> {
    defined(v, "path_join")?;
    if let Some(s) = v.as_str() {
        return Ok(s.to_string());
    }
    if !matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable) {
        return Err(op_err(format!(
            "|path_join expects string or sequence, got {} instead.",
            v.kind()
        )));
    }
    let parts = v
        .try_iter()?
        .map(|p| string(&p, "path_join"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(join_posix(&parts))
}

/// `os.path.normpath` (POSIX).
pub fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let initial = if p.starts_with("//") && !p.starts_with("///") {
        "//"
    } else if p.starts_with('/') {
        "/"
    } else {
        ""
    };
    let mut comps: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if !comps.is_empty() && comps.last() != Some(&"..") {
                    comps.pop();
                } else if initial.is_empty() {
                    comps.push("..");
                }
            }
            c => comps.push(c),
        }
    }
    let out = format!("{initial}{}", comps.join("/"));
    if out.is_empty() { ".".into() } else { out }
}

fn normpath_filter(v: &Value) -> Result<String, Error> {
    Ok(normpath(&string(v, "normpath")?))
}

fn home_of(user: &str) -> Option<String> {
    if user.is_empty() {
        if let Ok(h) = std::env::var("HOME") {
            return Some(h);
        }
        let uid = rustix::process::getuid().as_raw().to_string();
        return passwd_field(|f| f.get(2) == Some(&uid.as_str()));
    }
    passwd_field(|f| f.first() == Some(&user))
}

fn passwd_field(pick: impl Fn(&[&str]) -> bool) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && pick(&f)).then(|| f[5].to_string())
    })
}

/// `os.path.expanduser`: `~` and `~user` at the start, from `$HOME` or the password file.
fn expanduser(v: &Value) -> Result<String, Error> {
    let p = string(v, "expanduser")?;
    let Some(rest) = p.strip_prefix('~') else {
        return Ok(p);
    };
    let (user, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let Some(home) = home_of(user) else {
        return Ok(p);
    };
    let home = home.trim_end_matches('/');
    let out = format!("{home}{tail}");
    Ok(if out.is_empty() { "/".into() } else { out })
}

/// `os.path.expandvars`: `$NAME` and `${NAME}` of the controller's environment; unknown
/// variables are left as written.
fn expandvars(v: &Value) -> Result<String, Error> {
    let p = string(v, "expandvars")?;
    let re = regex::Regex::new(r"\$(\w+|\{[^}]*\})").map_err(|e| op_err(e.to_string()))?;
    Ok(re
        .replace_all(&p, |c: &regex::Captures<'_>| {
            let name = &c[1];
            let name = name
                .strip_prefix('{')
                .and_then(|n| n.strip_suffix('}'))
                .unwrap_or(name);
            std::env::var(name).unwrap_or_else(|_| c[0].to_string())
        })
        .into_owned())
}

fn abspath(p: &str) -> String {
    if p.starts_with('/') {
        return normpath(p);
    }
    let cwd = std::env::current_dir()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/".into());
    normpath(&join_posix(&[cwd, p.to_string()]))
}

/// `os.path.realpath` (not strict): symbolic links resolved as far as the path exists.
fn realpath(v: &Value) -> Result<String, Error> {
    let p = abspath(&string(v, "realpath")?);
    let mut done = PathBuf::from("/");
    let comps: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
    for (i, c) in comps.iter().enumerate() {
        let next = done.join(c);
        match std::fs::canonicalize(&next) {
            Ok(real) => done = real,
            Err(_) => {
                let mut rest = next;
                for c in &comps[i + 1..] {
                    rest.push(c);
                }
                return Ok(normpath(&rest.to_string_lossy()));
            }
        }
    }
    Ok(done.to_string_lossy().into_owned())
}

/// `os.path.relpath(path, start='.')`.
fn relpath(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<String, Error> {
    let a = Params::new("relpath", &pos, &kw, &["start"])?;
    let start = a.string(0, "start")?;
    a.done()?;
    let p = string(v, "relpath")?;
    if p.is_empty() {
        return Err(op_err("no path specified"));
    }
    let start = abspath(start.as_deref().unwrap_or("."));
    let path = abspath(&p);
    let s: Vec<&str> = start.split('/').filter(|c| !c.is_empty()).collect();
    let t: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let common = s.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; s.len() - common];
    parts.extend(&t[common..]);
    Ok(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

/// `os.path.commonpath(paths)`.
fn commonpath(v: &Value) -> Result<String, Error> {
    defined(v, "commonpath")?;
    if !matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable) {
        return Err(op_err(format!(
            "|commonpath expects sequence, got {} instead.",
            v.kind()
        )));
    }
    let paths = v
        .try_iter()?
        .map(|p| string(&p, "commonpath"))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first) = paths.first() else {
        return Err(op_err("commonpath() arg is an empty sequence"));
    };
    let abs = first.starts_with('/');
    if paths.iter().any(|p| p.starts_with('/') != abs) {
        return Err(op_err("Can't mix absolute and relative paths"));
    }
    let split: Vec<Vec<&str>> = paths
        .iter()
        .map(|p| {
            p.split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect()
        })
        .collect();
    let mut common: Vec<&str> = split[0].clone();
    for s in &split[1..] {
        let n = common.iter().zip(s).take_while(|(a, b)| a == b).count();
        common.truncate(n);
    }
    Ok(format!(
        "{}{}",
        if abs { "/" } else { "" },
        common.join("/")
    ))
}

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Names in `dir` matching `pattern`, in directory order (Python's `glob._glob1`): hidden
/// names only for a pattern that starts with a dot.
fn glob1(dir: &str, pattern: &str) -> Vec<String> {
    let Ok(pat) = glob::Pattern::new(pattern) else {
        return Vec::new();
    };
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let Ok(entries) = std::fs::read_dir(if dir.is_empty() { "." } else { dir }) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| (!n.starts_with('.') || pattern.starts_with('.')) && pat.matches_with(n, opts))
        .collect()
}

/// Python's `glob.glob(pattern)` (not recursive), in directory order.
fn pyglob(pattern: &str) -> Vec<String> {
    if !has_magic(pattern) {
        return if std::fs::symlink_metadata(pattern).is_ok() {
            vec![pattern.to_string()]
        } else {
            Vec::new()
        };
    }
    let (dir, base) = match pattern.rfind('/') {
        Some(i) => {
            let head = pattern[..i + 1].trim_end_matches('/');
            (
                if head.is_empty() { &pattern[..1] } else { head },
                &pattern[i + 1..],
            )
        }
        None => ("", pattern),
    };
    if dir.is_empty() {
        return glob1("", base);
    }
    let dirs = if dir != pattern && has_magic(dir) {
        pyglob(dir)
    } else {
        vec![dir.to_string()]
    };
    let mut out = Vec::new();
    for d in dirs {
        let names = if has_magic(base) {
            glob1(&d, base)
        } else if std::fs::symlink_metadata(join_posix(&[d.clone(), base.to_string()])).is_ok() {
            vec![base.to_string()]
        } else {
            Vec::new()
        };
        out.extend(names.into_iter().map(|n| join_posix(&[d.clone(), n])));
    }
    out
}

/// `fileglob`: the controller's regular files matching a glob pattern, in the order
/// Python's `glob.glob` lists them (directory order).
fn fileglob(v: &Value) -> Result<Value, Error> {
    let pattern = string(v, "fileglob")?;
    Ok(Value::from_iter(
        pyglob(&pattern)
            .into_iter()
            .filter(|p| Path::new(p).is_file())
            .map(Value::from),
    ))
}

/// `ntpath.splitdrive` (Python 3.11): `C:` or a UNC `\\server\share`.
fn nt_splitdrive(p: &str) -> (String, String) {
    let norm: String = p.replace('/', "\\");
    if norm.starts_with("\\\\") && !norm[2..].starts_with('\\') {
        let rest = &norm[2..];
        let Some(i) = rest.find('\\') else {
            return (String::new(), p.to_string());
        };
        let after = &rest[i + 1..];
        if after.starts_with('\\') {
            return (String::new(), p.to_string());
        }
        let j = after.find('\\').map_or(norm.len(), |j| 2 + i + 1 + j);
        return (p[..j].to_string(), p[j..].to_string());
    }
    let b = p.as_bytes();
    if b.len() >= 2 && b[1] == b':' {
        return (p[..2].to_string(), p[2..].to_string());
    }
    (String::new(), p.to_string())
}

fn nt_split(p: &str) -> (String, String) {
    let (d, rest) = nt_splitdrive(p);
    let i = rest.rfind(['/', '\\']).map_or(0, |i| i + 1);
    let (head, tail) = rest.split_at(i);
    let stripped = head.trim_end_matches(['/', '\\']);
    let head = if stripped.is_empty() { head } else { stripped };
    (format!("{d}{head}"), tail.to_string())
}

fn win_basename(v: &Value) -> Result<String, Error> {
    Ok(nt_split(&string(v, "win_basename")?).1)
}

fn win_dirname(v: &Value) -> Result<String, Error> {
    Ok(nt_split(&string(v, "win_dirname")?).0)
}

fn win_splitdrive(v: &Value) -> Result<Value, Error> {
    let (d, p) = nt_splitdrive(&string(v, "win_splitdrive")?);
    Ok(tuple(vec![Value::from(d), Value::from(p)]))
}

// ---------------------------------------------------------------- math

fn number(v: &Value, what: &str) -> Result<f64, Error> {
    defined(v, what)?;
    match v.kind() {
        ValueKind::Number | ValueKind::Bool => {
            f64::try_from(v.clone()).or_else(|_| Ok(if v.is_true() { 1.0 } else { 0.0 }))
        }
        _ => Err(op_err(format!(
            "{what}() can only be used on numbers: must be real number, not {}",
            type_debug(v)?
        ))),
    }
}

fn domain(x: f64) -> Result<Value, Error> {
    if x.is_nan() {
        Err(op_err("math domain error"))
    } else if x.is_infinite() {
        Err(op_err("math range error"))
    } else {
        Ok(Value::from(x))
    }
}

/// `log(x, base=e)`: `math.log10` for base 10, else `math.log(x, base)`.
fn log(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = Params::new("log", &pos, &kw, &["base"])?;
    let base = a.get(0, "base")?;
    a.done()?;
    let x = number(v, "log")?;
    if x <= 0.0 {
        return Err(op_err("math domain error"));
    }
    match base {
        None => domain(x.ln()),
        Some(b) => {
            let b = number(&b, "log")?;
            if b == 10.0 {
                return domain(x.log10());
            }
            if b <= 0.0 {
                return Err(op_err("math domain error"));
            }
            if b == 1.0 {
                return Err(op_err("float division by zero"));
            }
            domain(x.ln() / b.ln())
        }
    }
}

/// `pow(x, y)`: `math.pow`, always a float.
fn pow(v: &Value, y: &Value) -> Result<Value, Error> {
    let x = number(v, "pow")?;
    let y = number(y, "pow")?;
    domain(x.powf(y))
}

/// `root(x, base=2)`: `math.sqrt` or `x ** (1 / base)`.
fn root(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = Params::new("root", &pos, &kw, &["base"])?;
    let base = a.get(0, "base")?;
    a.done()?;
    let x = number(v, "root")?;
    let b = match base {
        Some(b) => number(&b, "root")?,
        None => 2.0,
    };
    if b == 2.0 {
        if x < 0.0 {
            return Err(op_err("root() can only be used on numbers"));
        }
        return domain(x.sqrt());
    }
    if b == 0.0 {
        return Err(op_err("float division by zero"));
    }
    if x < 0.0 {
        return Err(op_err("math domain error"));
    }
    domain(x.powf(1.0 / b))
}

// ---------------------------------------------------------------- hashes

fn md5_filter(v: &Value) -> Result<String, Error> {
    let s = py_str(defined(v, "md5")?);
    Ok(format!("{:x}", md5::compute(s.as_bytes())))
}

fn sha1_filter(v: &Value) -> Result<String, Error> {
    use sha1::Digest as _;
    let s = py_str(defined(v, "sha1")?);
    Ok(hex::encode(sha1::Sha1::digest(s.as_bytes())))
}

// ---------------------------------------------------------------- sizes

const SIZE_RANGES: [(char, u128); 9] = [
    ('Y', 1 << 80),
    ('Z', 1 << 70),
    ('E', 1 << 60),
    ('P', 1 << 50),
    ('T', 1 << 40),
    ('G', 1 << 30),
    ('M', 1 << 20),
    ('K', 1 << 10),
    ('B', 1),
];

/// `human_readable(isbits=False, unit=None)`: `'%.2f %s'` of the size in the largest unit
/// it reaches (or `unit`).
fn human_readable(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<String, Error> {
    let a = Params::new("human_readable", &pos, &kw, &["isbits", "unit"])?;
    let isbits = a.truthy(0, "isbits")?;
    let unit = a.string(1, "unit")?;
    a.done()?;
    defined(v, "human_readable")?;
    let size = match v.kind() {
        ValueKind::Number | ValueKind::Bool => number(v, "human_readable")?,
        _ => return Err(op_err("human_readable() failed on bad input")),
    };
    let base = if isbits { "bits" } else { "Bytes" };
    let mut chosen = ('B', 1u128);
    for (suffix, limit) in SIZE_RANGES {
        chosen = (suffix, limit);
        let hit = match &unit {
            None => size >= limit as f64,
            Some(u) => u.to_uppercase() == suffix.to_string(),
        };
        if hit {
            break;
        }
    }
    let (suffix, limit) = chosen;
    let suffix = if limit != 1 {
        format!("{suffix}{}", &base[..1])
    } else {
        base.to_string()
    };
    Ok(format!("{:.2} {suffix}", size / limit as f64))
}

/// `human_to_bytes(default_unit=None, isbits=False)`: `'1.5 KB'` to 1536.
fn human_to_bytes(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = Params::new("human_to_bytes", &pos, &kw, &["default_unit", "isbits"])?;
    let default_unit = a.string(0, "default_unit")?;
    let isbits = a.truthy(1, "isbits")?;
    a.done()?;
    defined(v, "human_to_bytes")?;
    let text = py_str(v);
    let bad = |detail: String| {
        op_err(format!(
            "human_to_bytes() can't interpret the input: {detail}"
        ))
    };
    let re = regex::Regex::new(r"^([0-9]*\.?[0-9]+)(?:\s*([A-Za-z]+))?\s*$")
        .map_err(|e| op_err(e.to_string()))?;
    let Some(c) = re.captures(&text) else {
        return Err(bad(format!(
            "human_to_bytes() can't interpret following string: {text}"
        )));
    };
    let num: f64 = c[1]
        .parse()
        .map_err(|_| bad(format!("can't interpret following number: {}", &c[1])))?;
    let unit = c.get(2).map(|m| m.as_str().to_string()).or(default_unit);
    let Some(unit) = unit else {
        return Ok(Value::from(num.round_ties_even() as i128));
    };
    let range_key = unit.chars().next().unwrap_or('B').to_ascii_uppercase();
    let Some(&(_, limit)) = SIZE_RANGES.iter().find(|(k, _)| *k == range_key) else {
        return Err(bad(format!(
            "human_to_bytes() failed to convert {text} (unit = {unit}). The suffix must be one of Y, Z, E, P, T, G, M, K, B"
        )));
    };
    if unit.chars().count() > 1 {
        let (class, class_name) = if isbits { ('b', "bit") } else { ('B', "byte") };
        let names = [
            ('B', "byte", "bit"),
            ('K', "kilobyte", "kilobit"),
            ('M', "megabyte", "megabit"),
            ('G', "gigabyte", "gigabit"),
            ('T', "terabyte", "terabit"),
            ('P', "petabyte", "petabit"),
            ('E', "exabyte", "exabit"),
            ('Z', "zetabyte", "zetabit"),
            ('Y', "yottabyte", "yottabit"),
        ];
        let (_, byte_name, bit_name) = names
            .iter()
            .find(|(k, _, _)| *k == range_key)
            .copied()
            .unwrap_or(('B', "byte", "bit"));
        let long = if isbits { bit_name } else { byte_name };
        let short = if range_key == 'B' {
            class.to_string()
        } else {
            format!("{range_key}{class}")
        };
        if unit.to_lowercase() != long && unit != short {
            let expect = if range_key == 'B' {
                format!("expect {class} or {class_name}")
            } else {
                format!("expect {range_key}{class} or {range_key}")
            };
            return Err(bad(format!(
                "human_to_bytes() failed to convert {text}. Value is not a valid string ({expect})"
            )));
        }
    }
    Ok(Value::from((num * limit as f64).round_ties_even() as i128))
}

// ---------------------------------------------------------------- URLs

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `urllib.parse.unquote_plus`: `+` is a space, `%XX` a byte; invalid UTF-8 is replaced.
fn urldecode(v: &Value) -> Result<String, Error> {
    let s = string(v, "urldecode")?.replace('+', " ");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The parts of `urllib.parse.urlsplit(url)`.
struct UrlParts {
    scheme: String,
    netloc: String,
    path: String,
    query: String,
    fragment: String,
}

fn split_url(url: &str) -> UrlParts {
    let url: String = url
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let mut rest = url.as_str();
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
    let mut netloc = String::new();
    if let Some(r) = rest.strip_prefix("//") {
        let end = r.find(['/', '?', '#']).unwrap_or(r.len());
        netloc = r[..end].to_string();
        rest = &r[end..];
    }
    let (rest, fragment) = match rest.split_once('#') {
        Some((a, f)) => (a, f.to_string()),
        None => (rest, String::new()),
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (rest.to_string(), String::new()),
    };
    UrlParts {
        scheme,
        netloc,
        path,
        query,
        fragment,
    }
}

fn opt(s: Option<&str>) -> Value {
    s.map_or(Value::from(()), Value::from)
}

/// `urlsplit(query='')`: the dict of `urllib.parse.urlsplit`'s attributes (fragment,
/// hostname, netloc, password, path, port, query, scheme, username), or one of them.
fn urlsplit(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = Params::new("urlsplit", &pos, &kw, &["query"])?;
    let query = a.string(0, "query")?;
    a.done()?;
    let url = string(v, "urlsplit")?;
    let p = split_url(&url);
    let (userinfo, hostport) = match p.netloc.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, p.netloc.as_str()),
    };
    let (username, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((a, b)) => (Some(a), Some(b)),
            None => (Some(u), None),
        },
        None => (None, None),
    };
    let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
        match r.split_once(']') {
            Some((h, after)) => (h, after.split_once(':').map(|(_, p)| p)),
            None => (r, None),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let hostname = (!host.is_empty()).then(|| host.to_lowercase());
    let port = match port {
        Some(p) if !p.is_empty() => {
            let n: i64 = p.parse().map_err(|_| {
                op_err(format!(
                    "Port could not be cast to integer value as {}",
                    py_repr(&Value::from(p))
                ))
            })?;
            if !(0..=65535).contains(&n) {
                return Err(op_err("Port out of range 0-65535"));
            }
            Value::from(n)
        }
        _ => Value::from(()),
    };
    let mut m: IndexMap<&str, Value> = IndexMap::new();
    m.insert("fragment", Value::from(p.fragment));
    m.insert("hostname", opt(hostname.as_deref()));
    m.insert("netloc", Value::from(p.netloc.clone()));
    m.insert("password", opt(password));
    m.insert("path", Value::from(p.path));
    m.insert("port", port);
    m.insert("query", Value::from(p.query));
    m.insert("scheme", Value::from(p.scheme));
    m.insert("username", opt(username));
    match query.filter(|q| !q.is_empty()) {
        None => Ok(Value::from_pairs(m)),
        Some(q) => m
            .get(q.as_str())
            .cloned()
            .ok_or_else(|| op_err(format!("urlsplit: unknown URL component: {q}"))),
    }
}

// ---------------------------------------------------------------- uuid

/// Ansible's namespace for `to_uuid`.
const UUID_NAMESPACE_ANSIBLE: &str = "361E6D51-FAEC-444A-9079-341386DA8E2E";

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let s = s.trim_start_matches("urn:").trim_start_matches("uuid:");
    let s = s.trim_matches(|c| c == '{' || c == '}');
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let bytes = hex::decode(&hex).ok()?;
    bytes.try_into().ok()
}

/// `to_uuid(namespace=...)`: `uuid.uuid5(namespace, value)`.
fn to_uuid(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<String, Error> {
    let a = Params::new("to_uuid", &pos, &kw, &["namespace"])?;
    let namespace = a.string(0, "namespace")?;
    a.done()?;
    use sha1::Digest as _;
    let name = py_str(defined(v, "to_uuid")?);
    let ns_text = namespace.unwrap_or_else(|| UUID_NAMESPACE_ANSIBLE.to_string());
    let ns = parse_uuid(&ns_text).ok_or_else(|| {
        op_err(format!(
            "Invalid value '{ns_text}' for 'namespace': badly formed hexadecimal UUID string"
        ))
    })?;
    let d = sha1::Sha1::new()
        .chain_update(ns)
        .chain_update(name.as_bytes())
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

// ---------------------------------------------------------------- random

/// A draw below `n`: Python's seeded generator, or the OS's (`SystemRandom`).
enum Draw {
    Seeded(Box<PyRandom>),
    System,
}

impl Draw {
    fn new(seed: Option<&Value>) -> Result<Draw, Error> {
        let Some(seed) = seed.filter(|s| !s.is_none() && !s.is_undefined()) else {
            return Ok(Draw::System);
        };
        let r = match seed.kind() {
            ValueKind::String => PyRandom::new(Seed::Str(seed.as_str().unwrap_or_default())),
            ValueKind::Bool => PyRandom::new(Seed::Int(i128::from(seed.is_true()))),
            ValueKind::Number if seed.is_integer() => {
                let n = i128::try_from(seed.clone())
                    .map_err(|_| op_err("random: the seed is out of range"))?;
                PyRandom::new(Seed::Int(n))
            }
            k => {
                return Err(op_err(format!(
                    "random seed must be a string or an integer in rdeploy, got {k}"
                )));
            }
        };
        Ok(Draw::Seeded(Box::new(r)))
    }

    fn below(&mut self, n: u128) -> Result<u128, Error> {
        match self {
            Draw::Seeded(r) => Ok(r.below(n)),
            Draw::System => {
                let k = 128 - n.leading_zeros();
                loop {
                    let mut buf = [0u8; 16];
                    getrandom::fill(&mut buf)
                        .map_err(|e| op_err(format!("random: no OS randomness: {e}")))?;
                    let r = u128::from_le_bytes(buf) >> (128 - k);
                    if r < n {
                        return Ok(r);
                    }
                }
            }
        }
    }
}

/// `random(start=None, step=None, seed=None)`: `randrange(start, end, step)` on an integer,
/// `choice` on a list or string; `seed` makes it Python's `Random(seed)` exactly.
fn random(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = Params::new("random", &pos, &kw, &["start", "step", "seed"])?;
    let start = a.get(0, "start")?;
    let step = a.get(1, "step")?;
    let seed = a.get(2, "seed")?;
    a.done()?;
    defined(v, "random")?;
    let mut draw = Draw::new(seed.as_ref())?;
    let int_of = |x: &Option<Value>| -> Result<i128, Error> {
        match x {
            Some(x) if x.is_true() => i128::try_from(x.clone())
                .map_err(|_| op_err("random: start and step must be integers")),
            _ => Ok(0),
        }
    };
    if v.kind() == ValueKind::Number && v.is_integer() {
        let end = i128::try_from(v.clone()).map_err(|_| op_err("random: end out of range"))?;
        let start = int_of(&start)?;
        let step = match int_of(&step)? {
            0 => 1,
            s => s,
        };
        let width = end - start;
        if step == 1 {
            if width <= 0 {
                return Err(op_err(format!(
                    "empty range for randrange() ({start}, {end}, {width})"
                )));
            }
            return Ok(Value::from(start + draw.below(width as u128)? as i128));
        }
        let n = if step > 0 {
            (width + step - 1).div_euclid(step)
        } else {
            (width + step + 1).div_euclid(step)
        };
        if n <= 0 {
            return Err(op_err("empty range for randrange()"));
        }
        return Ok(Value::from(start + step * draw.below(n as u128)? as i128));
    }
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable | ValueKind::String => {
            if start.as_ref().is_some_and(Value::is_true)
                || step.as_ref().is_some_and(Value::is_true)
            {
                return Err(op_err(
                    "start and step can only be used with integer values",
                ));
            }
            let items = list_items(v, "random")?;
            if items.is_empty() {
                return Err(op_err("Cannot choose from an empty sequence"));
            }
            let i = draw.below(items.len() as u128)? as usize;
            Ok(items[i].clone())
        }
        _ => Err(op_err("random can only be used on sequences and integers")),
    }
}

/// `shuffle(seed=None)`: the items in a random order (`Random(seed).shuffle` when `seed` is
/// truthy); a value that is not a sequence comes back unchanged, as in Ansible.
fn shuffle(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = Params::new("shuffle", &pos, &kw, &["seed"])?;
    let seed = a.get(0, "seed")?;
    a.done()?;
    defined(v, "shuffle")?;
    let Ok(mut items) = list_items(v, "shuffle") else {
        return Ok(v.clone());
    };
    let seed = seed.filter(Value::is_true);
    let mut draw = Draw::new(seed.as_ref())?;
    match &mut draw {
        Draw::Seeded(r) => r.shuffle(&mut items),
        Draw::System => {
            for i in (1..items.len()).rev() {
                let j = draw_below_system(i + 1)?;
                items.swap(i, j);
            }
        }
    }
    Ok(Value::from(items))
}

fn draw_below_system(n: usize) -> Result<usize, Error> {
    Ok(Draw::System.below(n as u128)? as usize)
}

// ---------------------------------------------------------------- comment

/// `comment(style='plain', **kw)`: the text as a comment block, Ansible's styles and
/// parameters (`decoration`, `beginning`, `prefix`, `prefix_count`, `postfix`,
/// `postfix_count`, `end`, `newline`).
fn comment(v: &Value, pos: Rest<Value>, kwargs: Kwargs) -> Result<String, Error> {
    let a = Params::new("comment", &pos, &kwargs, &["style"])?;
    let style = a.string(0, "style")?.unwrap_or_else(|| "plain".into());
    let text = string(v, "comment")?;
    let (deco, beginning, end) = match style.as_str() {
        "plain" => ("# ", "", ""),
        "erlang" => ("% ", "", ""),
        "c" => ("// ", "", ""),
        "cblock" => (" * ", "/*", " */"),
        "xml" => (" - ", "<!--", "-->"),
        other => {
            return Err(op_err(format!(
                "Invalid style '{other}'. Available styles: plain, erlang, c, cblock, xml"
            )));
        }
    };
    let kw_str = |k: &str| -> Result<Option<String>, Error> {
        Ok(kwargs.get::<Option<Value>>(k)?.map(|v| py_str(&v)))
    };
    let kw_int = |k: &str| -> Result<usize, Error> {
        match kwargs.get::<Option<Value>>(k)? {
            None => Ok(1),
            Some(v) => usize::try_from(v.clone())
                .ok()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| op_err(format!("comment: {k} must be an integer"))),
        }
    };
    // Every style has a decoration; `decoration=` replaces it and the prefix/postfix lines
    // derived from it.
    let decoration = kw_str("decoration")?.unwrap_or_else(|| deco.to_string());
    let prepostfix = decoration.clone();
    let newline = kw_str("newline")?.unwrap_or_else(|| "\n".into());
    let beginning = kw_str("beginning")?.unwrap_or_else(|| beginning.to_string());
    let prefix = kw_str("prefix")?.unwrap_or_else(|| prepostfix.trim_end().to_string());
    let postfix = kw_str("postfix")?.unwrap_or_else(|| prepostfix.trim_end().to_string());
    let end = kw_str("end")?.unwrap_or_else(|| end.to_string());
    let prefix_count = kw_int("prefix_count")?;
    let postfix_count = kw_int("postfix_count")?;
    // Other keyword arguments are accepted and unused, as in Ansible.
    for k in kwargs.args() {
        let _ = kwargs.get::<Value>(k);
    }
    let mut out = String::new();
    if !beginning.is_empty() {
        out.push_str(&beginning);
        out.push_str(&newline);
    }
    if !prefix.is_empty() {
        if prefix != newline {
            out.push_str(&format!("{prefix}{newline}").repeat(prefix_count));
        } else {
            out.push_str(&newline.repeat(prefix_count));
        }
    }
    let body = format!(
        "{decoration}{}",
        text.replace(&newline, &format!("{newline}{decoration}"))
    );
    out.push_str(&body.replace(
        &format!("{decoration}{newline}"),
        &format!("{}{newline}", decoration.trim_end()),
    ));
    for _ in 0..postfix_count {
        out.push_str(&newline);
        out.push_str(&postfix);
    }
    if !end.is_empty() {
        out.push_str(&newline);
        out.push_str(&end);
    }
    Ok(out)
}

// ---------------------------------------------------------------- types and structures

/// `type_debug`: the Python type name of the value.
fn type_debug(v: &Value) -> Result<String, Error> {
    Ok(match defined(v, "type_debug")?.kind() {
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Map => "dict",
        ValueKind::Seq if v.downcast_object_ref::<Tuple>().is_some() => "tuple",
        ValueKind::Seq | ValueKind::Iterable => "list",
        _ => "object",
    }
    .to_string())
}

/// `extract(container, morekeys=None)`: `container[item]`, then each of `morekeys`.
fn extract(item: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = Params::new("extract", &pos, &kw, &["container", "morekeys"])?;
    let container = a
        .get(0, "container")?
        .ok_or_else(|| op_err("extract() missing required argument 'container'"))?;
    let morekeys = a.get(1, "morekeys")?;
    a.done()?;
    let mut keys = vec![item.clone()];
    match morekeys {
        None => {}
        Some(m) if m.kind() == ValueKind::Seq => keys.extend(m.try_iter()?),
        Some(m) => keys.push(m),
    }
    let mut value = container.clone();
    for k in keys {
        value = value.get_item(&k)?;
    }
    Ok(value)
}

/// `subelements(path, skip_missing=False)`: `(item, sub)` pairs for every element of the
/// list at `path` (dotted, or a list of keys) in each item.
fn subelements(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = Params::new("subelements", &pos, &kw, &["subelements", "skip_missing"])?;
    let path = a
        .get(0, "subelements")?
        .ok_or_else(|| op_err("subelements() missing required argument 'subelements'"))?;
    let skip_missing = a.truthy(1, "skip_missing")?;
    a.done()?;
    let elements: Vec<Value> = match defined(v, "subelements")?.kind() {
        ValueKind::Map => v
            .try_iter()?
            .map(|k| v.get_item(&k))
            .collect::<Result<_, _>>()?,
        ValueKind::Seq => v.try_iter()?.collect(),
        _ => return Err(op_err("obj must be a list of dicts or a nested dict")),
    };
    let keys: Vec<Value> = match path.kind() {
        ValueKind::Seq => path.try_iter()?.collect(),
        ValueKind::String => path
            .as_str()
            .unwrap_or_default()
            .split('.')
            .map(Value::from)
            .collect(),
        _ => return Err(op_err("subelements must be a list or a string")),
    };
    let mut out = Vec::new();
    for element in elements {
        let mut values = element.clone();
        let mut last = Value::from("");
        let mut missing = false;
        for key in &keys {
            last = key.clone();
            match values.kind() {
                ValueKind::Map => {
                    let next = values.get_item(key)?;
                    if next.is_undefined() {
                        if skip_missing {
                            missing = true;
                            break;
                        }
                        return Err(op_err(format!(
                            "could not find {} key in iterated item {}",
                            py_repr(key),
                            py_repr(&values)
                        )));
                    }
                    values = next;
                }
                _ => {
                    return Err(op_err(format!(
                        "the key {} should point to a dictionary, got '{}'",
                        py_str(key),
                        py_str(&values)
                    )));
                }
            }
        }
        if missing {
            continue;
        }
        if values.kind() != ValueKind::Seq {
            return Err(op_err(format!(
                "the key {} should point to a list, got {}",
                py_repr(&last),
                py_repr(&values)
            )));
        }
        for value in values.try_iter()? {
            out.push(tuple(vec![element.clone(), value]));
        }
    }
    Ok(Value::from(out))
}

/// `zip_longest(*others, fillvalue=None)`: `itertools.zip_longest`.
fn zip_longest(v: &Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let fill = kwargs
        .get::<Option<Value>>("fillvalue")?
        .unwrap_or(Value::from(()));
    kwargs.assert_all_used()?;
    let lists = std::iter::once(v)
        .chain(others.iter())
        .map(|l| list_items(l, "zip_longest"))
        .collect::<Result<Vec<_>, _>>()?;
    let n = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok(Value::from_iter((0..n).map(|i| {
        tuple(
            lists
                .iter()
                .map(|l| l.get(i).cloned().unwrap_or_else(|| fill.clone()))
                .collect(),
        )
    })))
}

fn r_arg(r: Option<Value>, what: &str) -> Result<Option<usize>, Error> {
    match r {
        None => Ok(None),
        Some(x) if x.is_none() => Ok(None),
        Some(x) => i64::try_from(x.clone())
            .ok()
            .map(|n| {
                usize::try_from(n).map_err(|_| op_err(format!("{what}: r must be non-negative")))
            })
            .unwrap_or_else(|| Err(op_err(format!("{what}: r must be an integer"))))
            .map(Some),
    }
}

/// Index tuples of `itertools.permutations(range(n), r)`, in its order.
fn permutation_indices(n: usize, r: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    if r > n {
        return out;
    }
    let mut used = vec![false; n];
    let mut cur = Vec::with_capacity(r);
    fn go(n: usize, r: usize, used: &mut [bool], cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if cur.len() == r {
            out.push(cur.clone());
            return;
        }
        for i in 0..n {
            if !used[i] {
                used[i] = true;
                cur.push(i);
                go(n, r, used, cur, out);
                cur.pop();
                used[i] = false;
            }
        }
    }
    go(n, r, &mut used, &mut cur, &mut out);
    out
}

/// `permutations(r=None)`: `itertools.permutations`.
fn permutations(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = Params::new("permutations", &pos, &kw, &["r"])?;
    let r = a.get(0, "r")?;
    a.done()?;
    let items = list_items(v, "permutations")?;
    let r = r_arg(r, "permutations")?.unwrap_or(items.len());
    Ok(Value::from_iter(
        permutation_indices(items.len(), r)
            .into_iter()
            .map(|ix| tuple(ix.into_iter().map(|i| items[i].clone()).collect())),
    ))
}

/// `combinations(r)`: `itertools.combinations`.
fn combinations(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = Params::new("combinations", &pos, &kw, &["r"])?;
    let r = a.get(0, "r")?;
    a.done()?;
    let items = list_items(v, "combinations")?;
    let Some(r) = r_arg(r, "combinations")? else {
        return Err(op_err("combinations() missing required argument 'r'"));
    };
    let n = items.len();
    let mut out = Vec::new();
    if r <= n {
        let mut ix: Vec<usize> = (0..r).collect();
        loop {
            out.push(tuple(ix.iter().map(|&i| items[i].clone()).collect()));
            let Some(i) = (0..r).rev().find(|&i| ix[i] != i + n - r) else {
                break;
            };
            ix[i] += 1;
            for j in i + 1..r {
                ix[j] = ix[j - 1] + 1;
            }
        }
    }
    Ok(Value::from(out))
}

/// `rekey_on_member(key, duplicates='error')`: a dict of the items keyed by their `key`.
fn rekey_on_member(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let a = Params::new("rekey_on_member", &pos, &kw, &["key", "duplicates"])?;
    let key = a
        .get(0, "key")?
        .ok_or_else(|| op_err("rekey_on_member() missing required argument 'key'"))?;
    let key = &key;
    let duplicates = a.string(1, "duplicates")?.unwrap_or_else(|| "error".into());
    a.done()?;
    if duplicates != "error" && duplicates != "overwrite" {
        return Err(op_err(format!(
            "duplicates parameter to rekey_on_member has unknown value {}",
            py_repr(&Value::from(duplicates))
        )));
    }
    let items: Vec<Value> = match defined(v, "rekey_on_member")?.kind() {
        ValueKind::Map => v
            .try_iter()?
            .map(|k| v.get_item(&k))
            .collect::<Result<_, _>>()?,
        ValueKind::Seq | ValueKind::Iterable => v.try_iter()?.collect(),
        _ => return Err(op_err("Type is not a valid list, set, or dict")),
    };
    let mut out: IndexMap<Value, Value> = IndexMap::new();
    for item in items {
        if item.kind() != ValueKind::Map {
            return Err(op_err("List item is not a valid dict"));
        }
        let k = item.get_item(key)?;
        if k.is_undefined() {
            return Err(op_err(format!("Key {} was not found.", py_repr(key))));
        }
        if out.contains_key(&k) && duplicates == "error" {
            return Err(op_err(format!(
                "Key {} is not unique, cannot convert to dict.",
                py_repr(&k)
            )));
        }
        out.insert(k, item);
    }
    Ok(Value::from_pairs(out))
}

// ---------------------------------------------------------------- password_hash

/// `password_hash(hashtype='sha512', salt=None, salt_size=None, rounds=None, ident=None)`:
/// crypt(3) text as passlib writes it (ansible-core 2.19 hashes with passlib): `sha512`
/// (default 656000 rounds), `sha256` (535000), `md5`, `blowfish` (bcrypt, cost 12, ident
/// `2b`); a random salt when none is given; passlib's wording for a bad salt or rounds.
fn password_hash(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<String, Error> {
    let a = Params::new(
        "password_hash",
        &pos,
        &kw,
        &["hashtype", "salt", "salt_size", "rounds", "ident"],
    )?;
    let hashtype = a.string(0, "hashtype")?;
    let salt = a.get(1, "salt")?;
    let int = |i: usize, name: &str| -> Result<Option<u32>, Error> {
        a.get(i, name)?
            .map(|v| {
                u32::try_from(v.clone()).map_err(|_| {
                    op_err(format!(
                        "password_hash(): '{name}' must be an integer, got {v}"
                    ))
                })
            })
            .transpose()
    };
    let salt_size = int(2, "salt_size")?.map(|n| n as usize);
    let rounds = int(3, "rounds")?;
    let ident = a.string(4, "ident")?;
    a.done()?;
    let pw = py_str(defined(v, "password_hash")?);
    let algo = match hashtype.as_deref().unwrap_or("sha512") {
        "sha512" | "sha512_crypt" => "sha512_crypt",
        "sha256" | "sha256_crypt" => "sha256_crypt",
        "md5" | "md5_crypt" => "md5_crypt",
        "blowfish" | "bcrypt" => "bcrypt",
        other => {
            return Err(op_err(format!(
                "{other} is not in the list of supported passlib algorithms: md5, blowfish, sha256, sha512"
            )));
        }
    };
    let fail = |why: String| op_err(format!("Could not hash the secret: {why}"));
    let (alphabet, max_salt, exact) = match algo {
        "md5_crypt" => (crypt::CRYPT64, 8, false),
        "bcrypt" => (crypt::BCRYPT64, 22, true),
        _ => (crypt::CRYPT64, 16, false),
    };
    let salt = match salt.filter(Value::is_true) {
        Some(s) => py_str(&s),
        None => {
            let n = salt_size.unwrap_or(max_salt);
            let mut out = String::with_capacity(n);
            for _ in 0..n {
                out.push(alphabet[draw_below_system(alphabet.len())?] as char);
            }
            out
        }
    };
    if salt
        .chars()
        .any(|c| !c.is_ascii() || !alphabet.contains(&(c as u8)))
    {
        return Err(fail(format!("invalid characters in {algo} salt")));
    }
    if exact && salt.len() != max_salt {
        let size = if salt.len() > max_salt {
            "large"
        } else {
            "small"
        };
        return Err(fail(format!(
            "salt too {size} ({algo} requires exactly {max_salt} chars)"
        )));
    }
    if salt.len() > max_salt {
        return Err(fail(format!(
            "salt too large ({algo} requires <= {max_salt} chars)"
        )));
    }
    let (min, max, default) = match algo {
        "sha512_crypt" => (1000, 999_999_999, 656_000),
        "sha256_crypt" => (1000, 999_999_999, 535_000),
        "bcrypt" => (4, 31, 12),
        _ => (0, 0, 0),
    };
    let rounds = rounds.filter(|r| *r != 0).unwrap_or(default);
    if algo != "md5_crypt" {
        if rounds < min {
            return Err(fail(format!(
                "{algo}: min_desired_rounds ({rounds}) is too low, must be at least {min}"
            )));
        }
        if rounds > max {
            return Err(fail(format!(
                "{algo}: max_desired_rounds ({rounds}) is too high, must be at most {max}"
            )));
        }
    }
    Ok(match algo {
        "md5_crypt" => crypt::md5_crypt(pw.as_bytes(), &salt),
        "sha512_crypt" => crypt::sha512_crypt(pw.as_bytes(), &salt, rounds),
        "sha256_crypt" => crypt::sha256_crypt(pw.as_bytes(), &salt, rounds),
        _ => {
            // passlib takes `ident` for bcrypt only (2a, 2b, 2y; the same hash below 72 bytes).
            let ident = ident
                .filter(|i| !i.is_empty())
                .unwrap_or_else(|| "2b".into());
            if !matches!(ident.as_str(), "2a" | "2b" | "2y") {
                return Err(fail(format!(
                    "invalid ident: {}",
                    py_repr(&Value::from(ident))
                )));
            }
            let salt = crypt::bcrypt_repair_salt(&salt)
                .ok_or_else(|| fail(format!("invalid characters in {algo} salt")))?;
            crypt::bcrypt(pw.as_bytes(), &salt, rounds, &ident)
                .ok_or_else(|| fail(format!("invalid characters in {algo} salt")))?
        }
    })
}

// ---------------------------------------------------------------- vault

/// `vault(secret, salt=None, vault_id='filter_default', wrap_object=False)`: the string
/// encrypted with rdeploy's vault, as ansible-vault would (a 1.2 envelope naming the id).
fn vault(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<String, Error> {
    let a = Params::new(
        "vault",
        &pos,
        &kw,
        &["secret", "salt", "vault_id", "wrap_object"],
    )?;
    let secret = a.get(0, "secret")?.unwrap_or_default();
    let secret = &secret;
    let salt = a.string(1, "salt")?;
    let vault_id = a
        .string(2, "vault_id")?
        .unwrap_or_else(|| "filter_default".into());
    let wrap = a.truthy(3, "wrap_object")?;
    a.done()?;
    if wrap {
        return Err(op_err(
            "vault: wrap_object=true is not supported by rdeploy (the filter returns the vault text)",
        ));
    }
    let Some(secret) = secret.as_str() else {
        return Err(op_err(format!(
            "Secret passed is required to be a string, instead we got {}.",
            secret.kind()
        )));
    };
    let Some(data) = v.as_str() else {
        return Err(op_err(format!(
            "Can only vault strings, instead we got {}.",
            v.kind()
        )));
    };
    let salt = match salt {
        None => None,
        Some(s) => Some(<[u8; 32]>::try_from(s.as_bytes()).map_err(|_| {
            op_err(format!(
                "vault: rdeploy takes a salt of exactly 32 bytes, got {}",
                s.len()
            ))
        })?),
    };
    let text = crate::vault::encrypt(
        data.as_bytes(),
        &crate::vault::secrets::VaultSecret::new(vault_id, secret.as_bytes()),
        salt,
    );
    Ok(text)
}

/// `unvault(secret, vault_id='filter_default')`: the plaintext of a vault string (text that
/// is not vaulted comes back as is). The plaintext is registered for redaction.
fn unvault(v: &Value, pos: Rest<Value>, kw: Kwargs) -> Result<String, Error> {
    let a = Params::new("unvault", &pos, &kw, &["secret", "vault_id"])?;
    let secret = a.get(0, "secret")?.unwrap_or_default();
    let secret = &secret;
    let vault_id = a
        .string(1, "vault_id")?
        .unwrap_or_else(|| "filter_default".into());
    a.done()?;
    let Some(secret) = secret.as_str() else {
        return Err(op_err(format!(
            "Secret passed is required to be as string, instead we got {}.",
            secret.kind()
        )));
    };
    let Some(text) = v.as_str() else {
        return Err(op_err(format!(
            "Vault should be in the form of a string, instead we got {}.",
            v.kind()
        )));
    };
    if !crate::vault::is_vault(text) {
        return Ok(text.to_string());
    }
    let plain = crate::vault::decrypt(
        text,
        &[crate::vault::secrets::VaultSecret::new(
            vault_id,
            secret.as_bytes(),
        )],
    )
    .map_err(|e| op_err(format!("Unable to decrypt: {e}")))?;
    let plain = String::from_utf8_lossy(&plain).into_owned();
    crate::vault::redact::register(&plain);
    Ok(plain)
}

#[cfg(test)]
mod unit_tests {
    use crate::template::{environment, value_to_json};

    fn eval(expr: &str, ctx: serde_json::Value) -> serde_json::Value {
        let env = environment();
        let e = env
            .compile_expression(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        let v = e
            .eval(crate::template::json_to_value(&ctx))
            .unwrap_or_else(|e| panic!("{expr}: {e:#}"));
        value_to_json(&v).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    /// Without a seed, Ansible draws from the OS (`SystemRandom`): any value in range, and a
    /// shuffle is a permutation; a salt is random but of passlib's size.
    #[test]
    fn unseeded_random_shuffle_and_salt_stay_in_range() {
        for _ in 0..50 {
            let n = eval("100 | random(start=10, step=5)", serde_json::json!({}));
            let n = n.as_i64().unwrap_or(-1);
            assert!((10..100).contains(&n) && n % 5 == 0, "{n}");
        }
        let mut l = eval("[1,2,3,4,5] | shuffle", serde_json::json!({}));
        let mut sorted = l.as_array_mut().cloned().unwrap_or_default();
        sorted.sort_by_key(|v| v.as_i64());
        assert_eq!(
            serde_json::Value::Array(sorted),
            serde_json::json!([1, 2, 3, 4, 5])
        );
        let h = eval("'pw' | password_hash('md5')", serde_json::json!({}));
        let h = h.as_str().unwrap_or_default();
        assert!(h.starts_with("$1$") && h.len() == 34, "{h}");
        let a = eval(
            "'pw' | password_hash('sha512', rounds=5000)",
            serde_json::json!({}),
        );
        let b = eval(
            "'pw' | password_hash('sha512', rounds=5000)",
            serde_json::json!({}),
        );
        assert_ne!(a, b, "two unsalted hashes must differ");
    }

    /// `fileglob` lists regular files only, and `path_join`/`relpath` work on what it finds.
    #[test]
    fn fileglob_lists_regular_files_of_the_controller() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = dir.path().to_string_lossy().into_owned();
        std::fs::write(dir.path().join("a.conf"), "x").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join(".hidden.conf"), "x").unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.path().join("sub.conf")).unwrap_or_else(|e| panic!("{e}"));
        let got = eval(
            "[d, '*.conf'] | path_join | fileglob",
            serde_json::json!({ "d": d }),
        );
        assert_eq!(got, serde_json::json!([format!("{d}/a.conf")]));
        let got = eval(
            "[d, '.*.conf'] | path_join | fileglob | map('relpath', d) | list",
            serde_json::json!({ "d": d }),
        );
        assert_eq!(got, serde_json::json!([".hidden.conf"]));
    }

    /// `vault` then `unvault` round-trips with rdeploy's vault; a wrong secret fails.
    #[test]
    fn vault_round_trips_and_refuses_a_wrong_secret() {
        let got = eval(
            "'s3cret' | vault('pw', vault_id='prod') | unvault('pw', vault_id='prod')",
            serde_json::json!({}),
        );
        assert_eq!(got, serde_json::json!("s3cret"));
        let env = environment();
        let e = env
            .compile_expression("'s3cret' | vault('pw') | unvault('other')")
            .and_then(|e| e.eval(()))
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(e.contains("Unable to decrypt"), "{e}");
        let e = env
            .compile_expression("'x' | vault('pw', salt='short')")
            .and_then(|e| e.eval(()))
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(e.contains("salt of exactly 32 bytes"), "{e}");
    }
}
