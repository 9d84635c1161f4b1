//! `group_vars/` and `host_vars/` directories, read as Ansible's `host_group_vars` plugin does.
//!
//! Owns finding and loading the variables of one group or host below one base directory: the
//! first of `NAME` (a file, or a directory whose files are read recursively in name order,
//! skipping hidden files and `~` backups, accepting no extension or `.yml`/`.yaml`/`.json`),
//! `NAME.yml`, `NAME.yaml`, `NAME.json`; each file must hold one mapping (or be empty), and
//! later files override earlier ones key by key. It must not decide precedence between base
//! directories or between groups (that is `mod.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, Diagnostics};
use crate::yaml;

/// The variables found below one base directory, per group and per host name.
#[derive(Clone, Debug, Default)]
pub(crate) struct VarsDir {
    pub groups: HashMap<String, Map<String, Value>>,
    pub hosts: HashMap<String, Map<String, Value>>,
    /// Texts written `!unsafe` (or decrypted from `!vault`) in these files.
    pub data_texts: std::collections::HashSet<String>,
}

const EXTENSIONS: [&str; 3] = ["yml", "yaml", "json"];

/// Reads `base/group_vars/<group>` for every group and `base/host_vars/<host>` for every host.
pub(crate) fn read<'a>(
    base: &Path,
    groups: impl IntoIterator<Item = &'a str>,
    hosts: impl IntoIterator<Item = &'a str>,
    diags: &mut Diagnostics,
) -> VarsDir {
    let mut out = VarsDir::default();
    for (sub, names, into) in [
        (
            "group_vars",
            groups.into_iter().collect::<Vec<_>>(),
            &mut out.groups,
        ),
        (
            "host_vars",
            hosts.into_iter().collect::<Vec<_>>(),
            &mut out.hosts,
        ),
    ] {
        let dir = base.join(sub);
        if !dir.is_dir() {
            continue;
        }
        for name in names {
            if let Some(vars) = read_entity(&dir, name, diags, &mut out.data_texts) {
                into.insert(name.to_string(), vars);
            }
        }
    }
    out
}

/// The merged variables of `name` below `dir`, or `None` when it has no file there.
fn read_entity(
    dir: &Path,
    name: &str,
    diags: &mut Diagnostics,
    texts: &mut std::collections::HashSet<String>,
) -> Option<Map<String, Value>> {
    // A name that could leave the directory is never looked up.
    if name.is_empty() || name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
        return None;
    }
    let base = dir.join(name);
    let mut candidates = vec![base.clone()];
    candidates.extend(EXTENSIONS.iter().map(|e| dir.join(format!("{name}.{e}"))));
    let found = candidates.into_iter().find(|p| p.exists())?;
    let files = if found.is_dir() {
        let mut files = Vec::new();
        dir_files(&found, &mut files, 0);
        files
    } else {
        vec![found]
    };
    let mut vars = Map::new();
    for f in files {
        if let Some(v) = read_vars_file(&f, diags, texts) {
            vars.extend(v);
        }
    }
    Some(vars)
}

/// Files of a `NAME/` vars directory, recursively, in name order.
fn dir_files(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for n in names {
        let s = n.to_string_lossy();
        if s.starts_with('.') || s.ends_with('~') {
            continue;
        }
        let path = dir.join(&n);
        let ext = path.extension().map(|e| e.to_string_lossy().to_string());
        if path.is_dir() {
            if ext.is_none() {
                dir_files(&path, out, depth + 1);
            }
        } else if ext.as_deref().is_none_or(|e| EXTENSIONS.contains(&e)) {
            out.push(path);
        }
    }
}

/// One vars file: a single YAML/JSON mapping, or nothing (a vault file is decrypted by
/// `yaml::read_text`).
pub(crate) fn read_vars_file(
    path: &Path,
    diags: &mut Diagnostics,
    texts: &mut std::collections::HashSet<String>,
) -> Option<Map<String, Value>> {
    let file: Arc<str> = Arc::from(path.display().to_string());
    let limits = yaml::Limits::default();
    let text = match yaml::read_text(path, &file, limits.max_bytes) {
        Ok(t) => t,
        Err(d) => {
            diags.push(d);
            return None;
        }
    };
    let docs = match yaml::load_str(&file, &text, limits) {
        Ok(d) => d,
        Err(errs) => {
            diags.0.extend(errs);
            return None;
        }
    };
    if let Some(second) = docs.get(1) {
        diags.push(Diagnostic::at(
            &second.loc,
            "a vars file must hold one YAML document, found a second one",
        ));
        return None;
    }
    let doc = docs.first()?;
    doc.unsafe_texts(texts);
    if let yaml::Kind::Map(entries) = &doc.kind {
        for (k, v) in entries {
            let msg = k
                .scalar_string()
                .and_then(|k| super::connvars::error(&k, &v.to_json()));
            if let Some(msg) = msg {
                diags.push(Diagnostic::at(&v.loc, msg));
            }
        }
    }
    match doc.to_json() {
        Value::Object(m) => Some(m),
        Value::Null => Some(Map::new()),
        _ => {
            diags.push(Diagnostic::at(
                &doc.loc,
                format!(
                    "a vars file must be a mapping of variable names to values, found {}",
                    doc.type_name()
                ),
            ));
            None
        }
    }
}
