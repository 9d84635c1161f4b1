//! The YAML (and JSON) inventory format: top-level groups with `hosts:`, `children:`, `vars:`.
//!
//! Owns walking a parsed [`Node`] tree into the [`Builder`], as Ansible's `yaml` inventory
//! plugin does: `hosts:` maps host patterns (ranges, `:port`) to null or a mapping of variables,
//! `children:` maps group names to nested group definitions, `vars:` maps names to values.
//! Where Ansible only warns (an unknown key in a group, a section that is not a mapping) we
//! report an error with the node's position. It must not read files or parse YAML text itself
//! (that is `crate::yaml`).

use crate::diag::{Loc, did_you_mean};
use crate::yaml::{Kind, Node};

use super::build::Builder;
use super::expand_host_entry;

/// The keys a group definition may have.
const GROUP_KEYS: [&str; 3] = ["hosts", "children", "vars"];

/// Adds the groups and hosts of one YAML inventory document to `b`.
pub(crate) fn read_doc(b: &mut Builder, doc: &Node) {
    doc.unsafe_texts(&mut b.data_texts);
    let Some(entries) = doc.as_map() else {
        if !doc.is_null() {
            b.error(
                Some(&doc.loc),
                format!(
                    "a YAML inventory must be a mapping of group names, found {}",
                    doc.type_name()
                ),
            );
        }
        return;
    };
    if let Some((k, _)) = entries.iter().find(|(k, _)| k.as_str() == Some("plugin")) {
        b.error(
            Some(&k.loc),
            "inventory plugin configuration files ('plugin:') are not supported; list hosts and groups, or use an executable inventory script",
        );
        return;
    }
    for (key, value) in entries {
        if let Some(name) = group_name(b, key) {
            read_group(b, &name, &key.loc, value, 0);
        }
    }
}

/// A group or host name from a mapping key: any scalar, as Ansible would stringify it.
fn group_name(b: &mut Builder, key: &Node) -> Option<String> {
    match key.scalar_string() {
        Some(s) if !s.is_empty() => Some(s),
        _ => {
            b.error(
                Some(&key.loc),
                format!("expected a group name, found {}", key.type_name()),
            );
            None
        }
    }
}

fn read_group(b: &mut Builder, name: &str, loc: &Loc, value: &Node, depth: usize) {
    b.add_group(name, Some(loc));
    if depth > 64 {
        b.error(Some(loc), "groups are nested more than 64 levels deep");
        return;
    }
    let entries = match &value.kind {
        Kind::Null => return,
        Kind::Map(entries) => entries,
        _ => {
            b.error(
                Some(&value.loc),
                format!(
                    "group '{name}' must be a mapping with 'hosts', 'children' or 'vars', found {}",
                    value.type_name()
                ),
            );
            return;
        }
    };
    for (key, section) in entries {
        match key.as_str() {
            Some("hosts") => read_hosts(b, name, section),
            Some("children") => read_children(b, name, section, depth),
            Some("vars") => read_vars(b, name, section),
            _ => {
                let word = key.scalar_string().unwrap_or_default();
                let mut d = crate::diag::Diagnostic::at(
                    &key.loc,
                    format!(
                        "unknown key '{word}' in group '{name}': expected 'hosts', 'children' or 'vars'"
                    ),
                );
                if let Some(s) = did_you_mean(&word, GROUP_KEYS) {
                    d = d.note(format!("did you mean '{s}'?"));
                }
                b.diags.push(d);
            }
        }
    }
}

fn read_hosts(b: &mut Builder, group: &str, section: &Node) {
    match &section.kind {
        Kind::Null => {}
        // Ansible accepts `hosts: name` as a single host without variables.
        Kind::Str { .. } | Kind::Int(_) => add_host_entry(b, group, section, None),
        Kind::Map(entries) => {
            for (key, vars) in entries {
                add_host_entry(b, group, key, Some(vars));
            }
        }
        _ => {
            let mut d = crate::diag::Diagnostic::at(
                &section.loc,
                format!(
                    "'hosts' of group '{group}' must be a mapping of host names, found {}",
                    section.type_name()
                ),
            );
            if matches!(section.kind, Kind::Seq(_)) {
                d = d.note("write each host as a key: `hosts:` then `  web01:` on its own line");
            }
            b.diags.push(d);
        }
    }
}

fn add_host_entry(b: &mut Builder, group: &str, key: &Node, vars: Option<&Node>) {
    let Some(entry) = key.scalar_string().filter(|s| !s.is_empty()) else {
        b.error(
            Some(&key.loc),
            format!("expected a host name, found {}", key.type_name()),
        );
        return;
    };
    let quoted = matches!(key.kind, Kind::Str { quoted: true, .. });
    let (names, port) = match expand_host_entry(&entry) {
        Ok(x) => x,
        Err(e) => {
            let col = key.loc.col
                + u32::from(quoted)
                + u32::try_from(entry.get(..e.offset).map_or(0, |s| s.chars().count()))
                    .unwrap_or(0);
            b.error(Some(&Loc::new(&key.loc.file, key.loc.line, col)), e.message);
            return;
        }
    };
    let var_entries = match vars.map(|v| &v.kind) {
        None | Some(Kind::Null) => &[][..],
        Some(Kind::Map(entries)) => &entries[..],
        Some(_) => {
            let v = vars.unwrap_or(key);
            b.error(
                Some(&v.loc),
                format!(
                    "variables of host '{entry}' must be a mapping, found {}",
                    v.type_name()
                ),
            );
            return;
        }
    };
    for name in &names {
        b.add_host(group, name, Some(&key.loc));
        if let Some(p) = port {
            b.set_host_var(name, "ansible_port", p.into());
        }
        for (k, v) in var_entries {
            match k.scalar_string() {
                Some(k) => {
                    let value = v.to_json();
                    if Some(name) == names.first() {
                        b.check_var(&k, &value, Some(&v.loc));
                    }
                    b.set_host_var(name, &k, value);
                }
                None => b.error(Some(&k.loc), "expected a variable name"),
            }
        }
    }
}

fn read_children(b: &mut Builder, group: &str, section: &Node, depth: usize) {
    match &section.kind {
        Kind::Null => {}
        Kind::Str { value, .. } => {
            b.add_group(value, Some(&section.loc));
            b.add_child(group, value, Some(&section.loc));
        }
        Kind::Map(entries) => {
            for (key, value) in entries {
                if let Some(child) = group_name(b, key) {
                    // The edge first, then the child's body: a cycle is reported where it
                    // closes, as the INI reader does.
                    b.add_group(&child, Some(&key.loc));
                    b.add_child(group, &child, Some(&key.loc));
                    read_group(b, &child, &key.loc, value, depth + 1);
                }
            }
        }
        _ => b.error(
            Some(&section.loc),
            format!(
                "'children' of group '{group}' must be a mapping of group names, found {}",
                section.type_name()
            ),
        ),
    }
}

fn read_vars(b: &mut Builder, group: &str, section: &Node) {
    match &section.kind {
        Kind::Null => {}
        Kind::Map(entries) => {
            for (k, v) in entries {
                match k.scalar_string() {
                    Some(key) => b.set_group_var(group, &key, v.to_json(), Some(&v.loc)),
                    None => b.error(Some(&k.loc), "expected a variable name"),
                }
            }
        }
        _ => b.error(
            Some(&section.loc),
            format!(
                "'vars' of group '{group}' must be a mapping, found {}",
                section.type_name()
            ),
        ),
    }
}
