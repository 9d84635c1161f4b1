//! `find`: lists paths under `paths` that match `patterns` (shell globs, or Python regexes
//! matched at the start of the basename with `use_regex`), not `excludes`, of `file_type`,
//! with `age`/`size` limits; always in sync, with `files`, `matched`, `examined` and
//! `skipped_paths` for `register:`.
//!
//! Owns one `find -printf` per search path, all in ONE batch with the host's clock; the
//! filters run on the controller over that listing (exact Ansible/fnmatch semantics instead of
//! `find -name`). `contains` costs a second round trip (`grep -P`, each line matched at its
//! start like Python's `re.match`). It must not format shell lines and must not change the
//! host. Not supported: `depth`, `follow`, `age_stamp`, `read_whole_file` (not in the spec).

use std::collections::BTreeMap;

use globset::{Glob, GlobMatcher};
use serde_json::{Map, Value};

use super::common::{failed, run_batch, take};
use super::pyre::compile;
use crate::modules::runtime::{
    Ahead, Args, ArgsExt, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource,
    Verdict,
};
use crate::modules::spec::{ArgKind, ArgSpec};
use crate::modules::typed::ArgValue;
use crate::transport::AnyTransport;
use crate::transport::cmd::Cmd;

/// The `find` module.
pub struct Find;

/// A list argument where one string is split on commas, as Ansible's `type='list'` does
/// (`paths: /a,/b`).
#[derive(Debug, Clone, Default)]
struct CommaList(Vec<String>);

impl ArgValue for CommaList {
    const KIND: ArgKind = ArgKind::List;
    fn read(args: &Args, spec: &ArgSpec) -> Result<Self, ModuleError> {
        let items = args.list_arg(spec.name, true);
        if items.is_empty() && spec.required {
            return Err(ModuleError::Args(format!("{} is required", spec.name)));
        }
        Ok(CommaList(items))
    }
}

crate::module_args! {
    /// Lists files on the host matching patterns, age, size and type; register the result.
    #[module(
        name = "find",
        backup = "Changes nothing on the host: nothing to back up.",
        returns = &[("files", "each match's stat"), ("matched", "how many matched"), ("examined", "how many were looked at"), ("skipped_paths", "paths that could not be searched, with why"), ("msg", "whether all paths were examined")],
        examples = "- find:\n    paths: /srv/app/releases\n    file_type: directory\n    age: 30d\n  register: old"
    )]
    pub struct FindArgs {
        /// Directories to search.
        #[arg(required, aliases = &["name", "path"])]
        paths: CommaList,
        /// Shell globs (or regexes with `use_regex`) the basename must match.
        #[arg(aliases = &["pattern"])]
        patterns: CommaList,
        /// Patterns to leave out.
        #[arg(aliases = &["exclude"])]
        excludes: CommaList,
        /// A regex the file content must match.
        contains: Option<String>,
        /// Treat patterns as Python-style regexes.
        #[arg(default = "no")]
        use_regex: bool,
        /// Type of entries to return.
        #[arg(default = "file", choices = &["file", "directory", "link", "any"])]
        file_type: String,
        /// Descend into subdirectories.
        #[arg(default = "no")]
        recurse: bool,
        /// Select by age: `2d`, `-1h` (younger than).
        age: Option<String>,
        /// Select by size: `10m`, `-1k` (smaller than).
        size: Option<String>,
        /// Include hidden files.
        #[arg(default = "no")]
        hidden: bool,
    }
}

/// One `find` over `path` printing `type mode uid gid owner group size mtime atime ctime inode
/// dev nlink path` tab-separated, NUL-terminated (GNU find).
fn find_cmd(path: &str, recurse: bool) -> Cmd {
    let c = Cmd::raw("find -P").arg(path).op("-mindepth 1");
    let c = if recurse { c } else { c.op("-maxdepth 1") };
    c.op(r"-printf '%y\t%m\t%U\t%G\t%u\t%g\t%s\t%T@\t%A@\t%C@\t%i\t%D\t%n\t%p\0'")
}

enum Matcher {
    Glob(GlobMatcher),
    Re(regex::Regex),
}

impl Matcher {
    fn is_match(&self, name: &str) -> bool {
        match self {
            Matcher::Glob(g) => g.is_match(name),
            Matcher::Re(r) => r.is_match(name),
        }
    }
}

fn matchers(pats: &[String], use_regex: bool, what: &str) -> Result<Vec<Matcher>, ModuleError> {
    pats.iter()
        .map(|p| {
            if use_regex {
                compile(&format!(r"\A(?:{p})"), what, false, false).map(Matcher::Re)
            } else {
                Glob::new(p)
                    .map(|g| Matcher::Glob(g.compile_matcher()))
                    .map_err(|e| ModuleError::Args(format!("{what}: bad glob {p:?}: {e}")))
            }
        })
        .collect()
}

/// `2d`, `-1h`, `30` (seconds) → signed seconds.
fn parse_age(s: &str) -> Result<i64, ModuleError> {
    parse_unit(
        s,
        &[
            ('s', 1),
            ('m', 60),
            ('h', 3600),
            ('d', 86_400),
            ('w', 604_800),
        ],
        "age",
    )
}

/// `10m`, `-1k`, `100` (bytes) → signed bytes.
fn parse_size(s: &str) -> Result<i64, ModuleError> {
    parse_unit(
        s,
        &[
            ('b', 1),
            ('k', 1 << 10),
            ('m', 1 << 20),
            ('g', 1 << 30),
            ('t', 1 << 40),
        ],
        "size",
    )
}

fn parse_unit(s: &str, units: &[(char, i64)], what: &str) -> Result<i64, ModuleError> {
    let s = s.trim().to_ascii_lowercase();
    let bad = || ModuleError::Args(format!("{what} {s:?} must be like 10{}", units[1].0));
    let (num, mult) = match s.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let m = units.iter().find(|(u, _)| *u == c).ok_or_else(bad)?.1;
            (&s[..s.len() - 1], m)
        }
        _ => (s.as_str(), 1),
    };
    num.parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(bad)
}

impl Module for Find {
    fn ahead(&self) -> Ahead {
        Ahead::ReadsOnly
    }

    fn name(&self) -> &'static str {
        "find"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        _tr: &'a mut AnyTransport,
        _args: &'a Args,
        _ctx: &'a ModuleCtx<'a>,
        _drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(async { Err(ModuleError::Args("find never changes anything".into())) })
    }

    fn resources(&self, _args: &Args) -> Vec<Resource> {
        Vec::new()
    }
}

async fn check(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let FindArgs {
        paths: CommaList(paths),
        patterns,
        excludes,
        contains,
        use_regex,
        file_type,
        recurse,
        age,
        size,
        hidden,
    } = FindArgs::parse(args)?;
    let patterns = matchers(&patterns.0, use_regex, "patterns")?;
    let excludes = matchers(&excludes.0, use_regex, "excludes")?;
    let age = age.map(|a| parse_age(&a)).transpose()?;
    let size = size.map(|s| parse_size(&s)).transpose()?;

    let mut cmds = vec![Cmd::raw("date +%s")];
    cmds.extend(paths.iter().map(|p| find_cmd(p, recurse)));
    let mut outs = run_batch(tr, ctx, &cmds, 1 << 20).await?.into_iter();
    let now: f64 = take(&mut outs)?
        .stdout_lossy()
        .trim()
        .parse()
        .map_err(|_| failed("cannot read the host's clock"))?;

    let mut files: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut examined = 0usize;
    let mut skipped = Map::new();
    for p in &paths {
        let out = take(&mut outs)?;
        if out.truncated.stdout > 0 {
            return Err(failed(format!("{p}: listing too large")));
        }
        if out.status != 0 && out.stdout.is_empty() {
            let why = out.stderr_lossy().trim().to_string();
            skipped.insert(p.clone(), Value::from(why));
            continue;
        }
        for rec in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            examined += 1;
            let rec = String::from_utf8_lossy(rec);
            let f: Vec<&str> = rec.splitn(14, '\t').collect();
            let [
                ty,
                mode,
                uid,
                gid,
                owner,
                group,
                fsize,
                mtime,
                atime,
                ctime,
                inode,
                dev,
                nlink,
                path,
            ] = f[..]
            else {
                return Err(failed(format!("unexpected find output {rec:?}")));
            };
            let name = path.rsplit('/').next().unwrap_or(path);
            if !hidden && name.starts_with('.') {
                continue;
            }
            let type_ok = match file_type.as_str() {
                "file" => ty == "f",
                "directory" => ty == "d",
                "link" => ty == "l",
                _ => true,
            };
            if !type_ok {
                continue;
            }
            let included = patterns.is_empty() || patterns.iter().any(|m| m.is_match(name));
            if !included || excludes.iter().any(|m| m.is_match(name)) {
                continue;
            }
            let fnum = |v: &str| v.parse::<f64>().unwrap_or(0.0);
            let mtime_f = fnum(mtime);
            let size_n: i64 = fsize.parse().unwrap_or(0);
            if let Some(a) = age {
                let delta = now - mtime_f;
                let ok = if a >= 0 {
                    delta >= a as f64
                } else {
                    delta <= a.unsigned_abs() as f64
                };
                if !ok {
                    continue;
                }
            }
            if let Some(s) = size {
                let ok = if s >= 0 {
                    size_n >= s
                } else {
                    size_n <= s.abs()
                };
                if !ok {
                    continue;
                }
            }
            let m = u32::from_str_radix(mode, 8).unwrap_or(0);
            let int = |v: &str| v.parse::<u64>().map(Value::from).unwrap_or(Value::Null);
            let mut e = Map::new();
            e.insert("path".into(), Value::from(path));
            e.insert("mode".into(), Value::from(format!("{m:04o}")));
            e.insert("isdir".into(), Value::from(ty == "d"));
            e.insert("isreg".into(), Value::from(ty == "f"));
            e.insert("islnk".into(), Value::from(ty == "l"));
            e.insert("ischr".into(), Value::from(ty == "c"));
            e.insert("isblk".into(), Value::from(ty == "b"));
            e.insert("isfifo".into(), Value::from(ty == "p"));
            e.insert("issock".into(), Value::from(ty == "s"));
            e.insert("uid".into(), int(uid));
            e.insert("gid".into(), int(gid));
            e.insert("pw_name".into(), Value::from(owner));
            e.insert("gr_name".into(), Value::from(group));
            e.insert("size".into(), Value::from(size_n));
            e.insert("mtime".into(), Value::from(mtime_f));
            e.insert("atime".into(), Value::from(fnum(atime)));
            e.insert("ctime".into(), Value::from(fnum(ctime)));
            e.insert("inode".into(), int(inode));
            e.insert("dev".into(), int(dev));
            e.insert("nlink".into(), int(nlink));
            for (k, bit) in [
                ("rusr", 0o400),
                ("wusr", 0o200),
                ("xusr", 0o100),
                ("rgrp", 0o40),
                ("wgrp", 0o20),
                ("xgrp", 0o10),
                ("roth", 0o4),
                ("woth", 0o2),
                ("xoth", 0o1),
                ("isuid", 0o4000),
                ("isgid", 0o2000),
            ] {
                e.insert(k.into(), Value::from(m & bit != 0));
            }
            files.insert(path.to_string(), e);
        }
    }
    if let Some(pat) = contains {
        let regular: Vec<String> = files
            .iter()
            .filter(|(_, e)| e.get("isreg") == Some(&Value::Bool(true)))
            .map(|(p, _)| p.clone())
            .collect();
        let hits = grep_files(tr, ctx, &pat, &regular).await?;
        files.retain(|p, _| hits.contains(p));
    }
    let matched = files.len();
    let mut result = Args::new();
    result.insert(
        "files".into(),
        Value::Array(files.into_values().map(Value::Object).collect()),
    );
    result.insert("matched".into(), Value::from(matched));
    result.insert("examined".into(), Value::from(examined));
    result.insert("skipped_paths".into(), Value::Object(skipped));
    result.insert(
        "msg".into(),
        Value::from(if skipped_any(&result) {
            "Not all paths examined, check warnings for details"
        } else {
            "All paths examined"
        }),
    );
    Ok(Verdict::InSync { result })
}

fn skipped_any(result: &Args) -> bool {
    result
        .get("skipped_paths")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
}

/// The files among `paths` with a line that `pattern` matches at its start (`grep -P`; the
/// list goes on stdin, NUL-separated).
async fn grep_files(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    pattern: &str,
    paths: &[String],
) -> Result<std::collections::HashSet<String>, ModuleError> {
    if paths.is_empty() {
        return Ok(Default::default());
    }
    let mut list = Vec::new();
    for p in paths {
        list.extend_from_slice(p.as_bytes());
        list.push(0);
    }
    let c = Cmd::raw("set --")
        .arg(format!("^(?:{pattern})"))
        .op(r#"; xargs -0 -r grep -l -Z -P -e "$1" --"#)
        .stdin(list);
    let out = ctx.query(tr, c).await?;
    if out.status >= 124 || out.truncated.stdout > 0 {
        return Err(failed(format!(
            "searching file contents failed (exit {}): {}",
            out.status,
            out.stderr_lossy().trim()
        )));
    }
    Ok(out
        .stdout
        .split(|b| *b == 0)
        .filter(|r| !r.is_empty())
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(v: Value) -> Args {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn find_args_split_comma_lists_as_ansible() {
        let a =
            FindArgs::parse(&args(json!({"paths": "/a, /b", "patterns": "*.log,*.gz"}))).unwrap();
        assert_eq!(a.paths.0, ["/a", "/b"]);
        assert_eq!(a.patterns.0, ["*.log", "*.gz"]);
        assert!(a.excludes.0.is_empty());
        assert_eq!(a.file_type, "file");
        assert!(!a.recurse && !a.hidden && !a.use_regex);
        assert_eq!(a.contains.or(a.age).or(a.size), None);
        let e = FindArgs::parse(&args(json!({"patterns": "*"}))).unwrap_err();
        assert_eq!(e.to_string(), "paths is required");
        let e = FindArgs::parse(&args(json!({"paths": "/a", "depth": 2}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "argument 'depth' of module 'find' is not supported by rdeploy"
        );
    }
}
