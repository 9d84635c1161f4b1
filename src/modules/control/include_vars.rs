//! `include_vars`: loads variables from YAML/JSON files on the controller. Owns its arguments,
//! their load-time check, where a relative `file`/`dir` is looked up, which files of a `dir` are
//! read, and the variables and files it returns; the executor hands in the role's and the task
//! file's directories and stores the variables on the host.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::diag::Diagnostic;
use crate::modules::runtime::{Args, ArgsExt, ModuleError};
use crate::modules::spec::{ArgKind, ArgSpec, ArgsRef};
use crate::modules::typed::ArgValue;

/// A list of names where one string is split on whitespace, as Ansible's `include_vars` reads
/// `ignore_files` (`ignore_files: "a.yml b.yml"`); absent, the documented default split on
/// commas.
#[derive(Debug, Clone, Default)]
struct Words(Vec<String>);

impl ArgValue for Words {
    const KIND: ArgKind = ArgKind::List;
    fn read(args: &Args, spec: &ArgSpec) -> Result<Self, ModuleError> {
        let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
        match (args.get(spec.name), spec.default) {
            (None | Some(Value::Null), Some(d)) => {
                Ok(Words(d.split(',').map(|w| w.trim().to_string()).collect()))
            }
            (None | Some(Value::Null), None) => Ok(Words(Vec::new())),
            (Some(Value::Array(items)), _) => Ok(Words(items.iter().map(text).collect())),
            (Some(Value::String(s)), _) => {
                Ok(Words(s.split_whitespace().map(str::to_string).collect()))
            }
            (Some(other), _) => Err(ModuleError::Args(format!(
                "{} must be a list, found {other}",
                spec.name
            ))),
        }
    }
}

crate::module_args! {
    /// Loads variables from a YAML or JSON file (free-form or `file`) or from the files of a
    /// directory (`dir`, recursively, in name order) on the controller, as host variables for
    /// the rest of the run. A relative `file` is looked up in the role's `vars/` first, then
    /// beside the task's file; a relative `dir` in the role's `vars/`, else beside the task's
    /// file.
    #[module(
        name = "include_vars",
        free_form = true,
        check_args = include_vars_source,
        backup = "Runs on the controller and changes nothing on the hosts: nothing to back up.",
        returns = &[("ansible_facts", "the loaded variables"), ("ansible_included_var_files", "the files read")],
        examples = "- include_vars: \"vars/{{ ansible_facts.os_family }}.yml\"\n- include_vars:\n    file: secrets.yml\n    name: secrets\n- include_vars:\n    dir: vars/env.d\n    files_matching: '^[0-9]+-.*'\n    ignore_files: [README.yml]\n    depth: 1"
    )]
    pub struct IncludeVarsArgs {
        /// The vars file (looked up in the role's `vars/` first).
        #[arg(kind = Path)]
        file: Option<String>,
        /// A directory whose files are all loaded, in name order.
        #[arg(kind = Path)]
        dir: Option<String>,
        /// Put the loaded variables under this one name.
        name: Option<String>,
        /// `merge`: a loaded dict is merged (recursively) into the variable of that name the
        /// task sees; `replace` (the default) replaces it.
        #[arg(choices = &["replace", "merge"])]
        hash_behaviour: Option<String>,
        /// With `dir`, how deep to descend (0 = no limit).
        #[arg(default = "0")]
        depth: i64,
        /// With `dir`, load only file names matching this regex.
        files_matching: Option<String>,
        /// With `dir`, file names to skip (a list, or names separated by spaces).
        ignore_files: Words,
        /// With `dir`, extensions to load (`''` for files without one).
        #[arg(default = "yaml, yml, json")]
        extensions: Words,
        /// With `dir`, skip files with other extensions instead of failing.
        #[arg(default = "no")]
        ignore_unknown_extensions: bool,
    }
}

/// The arguments that only go with `dir` (Ansible's `VALID_DIR_ARGUMENTS`).
const DIR_ONLY: &[&str] = &[
    "dir",
    "depth",
    "files_matching",
    "ignore_files",
    "extensions",
    "ignore_unknown_extensions",
];

/// Ansible's message for file and dir arguments given together.
const MIXING: &str = "You are mixing file only and dir only arguments, these are incompatible";

/// Where relative paths are looked up.
pub struct Origin<'a> {
    /// The role the task belongs to, if any (its directory).
    pub role_dir: Option<&'a Path>,
    /// The directory of the file the task is written in.
    pub task_dir: &'a Path,
}

/// What `include_vars` loaded: the result (`ansible_facts`, the variables to set, and
/// `ansible_included_var_files`).
pub fn load(
    args: &Args,
    at: &Origin<'_>,
    current: &dyn Fn(&str) -> Option<Value>,
) -> Result<Map<String, Value>, ModuleError> {
    let a = IncludeVarsArgs::parse(args)?;
    let raw = args.str_arg(crate::modules::system::common::FREE_FORM);
    let file_given = a.file.is_some() || raw.is_some();
    if file_given && DIR_ONLY.iter().any(|k| args.contains_key(*k)) {
        return Err(ModuleError::Args(MIXING.into()));
    }
    let files = match (&a.dir, a.file.or(raw)) {
        (Some(dir), _) => {
            let how = crate::playbook::load::VarsDir {
                depth: usize::try_from(a.depth).unwrap_or(0),
                files_matching: a.files_matching,
                ignore_files: a.ignore_files.0,
                extensions: a.extensions.0,
                ignore_unknown_extensions: a.ignore_unknown_extensions,
            };
            dir_files(dir, &how, at).map_err(ModuleError::Args)?
        }
        (None, Some(file)) => vec![file_path(file.trim_end_matches('\n'), at)],
        (None, None) => {
            return Err(ModuleError::Args(
                "include_vars needs a file (free-form or 'file') or a 'dir'".into(),
            ));
        }
    };
    let mut vars = Map::new();
    for path in &files {
        vars.extend(vars_of_file(path).map_err(ModuleError::Args)?);
    }
    let vars = match a.name {
        Some(name) => {
            let mut m = Map::new();
            m.insert(name, Value::Object(vars));
            m
        }
        None => vars,
    };
    // `hash_behaviour: merge`: each loaded dict is merged into what the task sees by that name.
    let vars: Map<String, Value> = if a.hash_behaviour.as_deref() == Some("merge") {
        vars.into_iter()
            .map(|(k, v)| {
                let v = match (current(&k), v) {
                    (Some(Value::Object(mut lo)), Value::Object(hi)) => {
                        crate::template::filters::merge_maps(&mut lo, hi, true, "replace");
                        Value::Object(lo)
                    }
                    (_, v) => v,
                };
                (k, v)
            })
            .collect()
    } else {
        vars
    };
    let mut r = Map::new();
    r.insert("ansible_facts".into(), Value::Object(vars));
    r.insert(
        "ansible_included_var_files".into(),
        Value::Array(
            files
                .iter()
                .map(|p| Value::from(p.display().to_string()))
                .collect(),
        ),
    );
    Ok(r)
}

/// A `file` as Ansible finds it: a relative one in the role's `vars/` when it is there, else
/// beside the task's file.
fn file_path(file: &str, at: &Origin<'_>) -> PathBuf {
    let path = Path::new(file);
    if !path.is_relative() {
        return path.to_path_buf();
    }
    at.role_dir
        .map(|r| r.join("vars"))
        .filter(|d| d.join(path).exists())
        .unwrap_or_else(|| at.task_dir.to_path_buf())
        .join(path)
}

/// The files `dir:` loads, found as Ansible finds the directory: under the role's `vars/` (or
/// the role, for a name starting with `vars`), else beside the task's file.
fn dir_files(
    dir: &str,
    how: &crate::playbook::load::VarsDir,
    at: &Origin<'_>,
) -> Result<Vec<PathBuf>, String> {
    let mut path = Path::new(dir).to_path_buf();
    if path.is_relative() {
        path = match at.role_dir {
            Some(r) if dir.split('/').next() == Some("vars") => r.join(dir),
            Some(r) => r.join("vars").join(dir),
            None => at.task_dir.join(dir),
        };
    }
    if !path.exists() {
        return Err(format!("{} directory does not exist", path.display()));
    }
    if !path.is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    let skip = at.role_dir.map(|r| r.join("vars/main.yml"));
    crate::playbook::load::vars_dir_files(&path, how, skip.as_deref())
}

/// A vars file's top-level mapping.
fn vars_of_file(path: &Path) -> Result<Map<String, Value>, String> {
    let docs = crate::yaml::load_file(path, crate::yaml::Limits::default()).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    match docs.into_iter().next().map(|n| n.to_json()) {
        Some(Value::Object(m)) => Ok(m),
        None | Some(Value::Null) => Ok(Map::new()),
        Some(_) => Err(format!(
            "{}: expected a mapping of variables",
            path.display()
        )),
    }
}

/// One source: free-form text, `file` or `dir`; and no `dir`-only argument beside a file.
fn include_vars_source(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let n =
        usize::from(a.free_form.is_some()) + usize::from(a.has("file")) + usize::from(a.has("dir"));
    let msg = match n {
        0 => "module 'include_vars' needs a file (free-form or 'file') or a 'dir'",
        1 if !a.has("dir") && DIR_ONLY.iter().any(|k| a.has(k)) => MIXING,
        1 => return Vec::new(),
        _ => "module 'include_vars' takes only one of free-form text, 'file' and 'dir'",
    };
    vec![Diagnostic::at(a.module_loc, msg)]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(v: Value) -> Args {
        match v {
            Value::Object(m) => m,
            _ => Args::new(),
        }
    }

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn include_vars_dir_reads_the_files_its_arguments_pick_under_name() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "vars/d/10-a.yml", "a: 1\n");
        write(t.path(), "vars/d/20-b.yaml", "b: 2\n");
        write(t.path(), "vars/d/30.json", "{\"j\": 4}\n");
        write(t.path(), "vars/d/skip.yml", "c: 3\n");
        write(t.path(), "vars/d/sub/x.yml", "deep: 1\n");
        let at = Origin {
            role_dir: None,
            task_dir: t.path(),
        };
        let a = args(json!({
            "dir": "vars/d", "files_matching": "^[0-9]", "ignore_files": "skip.yml",
            "name": "bundle", "depth": "1", "extensions": ["yml", "yaml", "json"],
        }));
        let r = load(&a, &at, &|_| None).unwrap();
        assert_eq!(
            r["ansible_facts"],
            json!({"bundle": {"a": 1, "b": 2, "j": 4}})
        );
        let names: Vec<&str> = r["ansible_included_var_files"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p.as_str()?.rsplit('/').next())
            .collect();
        assert_eq!(names, ["10-a.yml", "20-b.yaml", "30.json"]);
    }

    #[test]
    fn include_vars_file_merges_with_hash_behaviour_and_refuses_dir_only_arguments() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "one.yml", "m: {x: 1}\n");
        let at = Origin {
            role_dir: None,
            task_dir: t.path(),
        };
        let current = |k: &str| (k == "m").then(|| json!({"y": 2}));
        let r = load(
            &args(json!({"_raw_params": "one.yml", "hash_behaviour": "merge"})),
            &at,
            &current,
        )
        .unwrap();
        assert_eq!(r["ansible_facts"], json!({"m": {"y": 2, "x": 1}}));
        let e = load(&args(json!({"file": "one.yml", "depth": 1})), &at, &|_| {
            None
        })
        .unwrap_err();
        assert_eq!(e.to_string(), MIXING);
        let e = load(&args(json!({"dir": "nope"})), &at, &|_| None).unwrap_err();
        assert!(
            e.to_string().ends_with("nope directory does not exist"),
            "{e}"
        );
    }
}
