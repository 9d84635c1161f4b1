//! Inventory sources: which parser reads each `-i` argument.
//!
//! Owns the dispatch Ansible's plugin chain does: a directory is read file by file in name
//! order (recursing into subdirectories, skipping hidden entries, `group_vars`, `host_vars`,
//! `vars_plugins` and Ansible's ignored extensions); an executable file that is not
//! `.yml`/`.yaml`/`.json`/`.ini` is a dynamic inventory script; `.yml`/`.yaml`/`.json` are YAML;
//! `.ini` is INI; any other file is YAML if it parses as a YAML mapping, else INI (Ansible tries
//! its `yaml` plugin before `ini` the same way). A path that does not exist but contains a comma
//! is a host list (`-i web1,web2,`). It must not merge variables.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::Diagnostic;
use crate::yaml;

use super::build::Builder;
use super::{address, ini, script};

/// File name endings Ansible skips in an inventory directory (`INVENTORY_IGNORE_EXTS`).
const IGNORED_ENDINGS: [&str; 12] = [
    "~", ".orig", ".bak", ".cfg", ".retry", ".pyc", ".pyo", ".swp", ".rpm", ".md", ".txt", ".rst",
];
/// Entries Ansible never reads as inventory inside an inventory directory.
const IGNORED_NAMES: [&str; 3] = ["group_vars", "host_vars", "vars_plugins"];

/// Reads one `-i` source into `b` and returns the directory whose `group_vars`/`host_vars`
/// belong to it (none for a host list).
pub(crate) fn read_source(b: &mut Builder, src: &Path) -> Option<PathBuf> {
    if !src.exists() {
        let s = src.to_string_lossy();
        if s.contains(',') {
            read_host_list(b, &s);
        } else {
            b.diags.push(Diagnostic::options(format!(
                "inventory source '{}' does not exist",
                src.display()
            )));
        }
        return None;
    }
    if src.is_dir() {
        read_dir(b, src, 0);
        return Some(src.to_path_buf());
    }
    read_file(b, src);
    Some(match src.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    })
}

/// `-i 'web1,web2:2222,'`: hosts (with optional ports) in `ungrouped`; no ranges, as Ansible's
/// `host_list` plugin.
fn read_host_list(b: &mut Builder, list: &str) {
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, port) = address::parse_address(entry).unwrap_or((entry.to_string(), None));
        b.add_host("ungrouped", &host, None);
        if let Some(p) = port {
            b.set_host_var(&host, "ansible_port", p.into());
        }
    }
}

fn is_ignored(name: &str) -> bool {
    name.starts_with('.')
        || IGNORED_NAMES.contains(&name)
        || IGNORED_ENDINGS.iter().any(|e| name.ends_with(e))
}

fn read_dir(b: &mut Builder, dir: &Path, depth: usize) {
    if depth > 16 {
        b.diags.push(Diagnostic::options(format!(
            "inventory directory '{}' is nested more than 16 levels deep",
            dir.display()
        )));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            b.diags.push(Diagnostic::options(format!(
                "cannot read inventory directory '{}': {e}",
                dir.display()
            )));
            return;
        }
    };
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        if is_ignored(&name.to_string_lossy()) {
            continue;
        }
        let path = dir.join(&name);
        if path.is_dir() {
            read_dir(b, &path, depth + 1);
        } else {
            read_file(b, &path);
        }
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_path: &Path) -> bool {
    false
}

/// Reads one inventory file, choosing its format.
pub(crate) fn read_file(b: &mut Builder, path: &Path) {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let is_yaml_ext = matches!(ext.as_str(), "yml" | "yaml" | "json");
    if !is_yaml_ext && ext != "ini" && is_executable(path) {
        script::read(b, path);
        return;
    }
    let file: Arc<str> = Arc::from(path.display().to_string());
    let limits = yaml::Limits::default();
    let text = match yaml::read_text(path, &file, limits.max_bytes) {
        Ok(t) => t,
        Err(d) => {
            b.diags.push(d);
            return;
        }
    };
    if ext == "ini" {
        ini::read(b, &file, &text);
        return;
    }
    let parsed = yaml::load_str(&file, &text, limits);
    if !is_yaml_ext {
        // Not named as YAML: YAML only if it is clearly a YAML mapping, else INI.
        match &parsed {
            Ok(docs) if docs.len() == 1 && docs[0].as_map().is_some() => {}
            _ => {
                ini::read(b, &file, &text);
                return;
            }
        }
    }
    match parsed {
        Ok(docs) => {
            if let Some(second) = docs.get(1) {
                b.diags.push(Diagnostic::at(
                    &second.loc,
                    "an inventory file must hold one YAML document, found a second one",
                ));
            }
            if let Some(doc) = docs.first() {
                super::yaml::read_doc(b, doc);
            }
        }
        Err(errs) => b.diags.0.extend(errs),
    }
}
