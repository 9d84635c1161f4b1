//! What `rdeploy inventory --list` and `--graph` print, in `ansible-inventory`'s shapes.
//!
//! Owns turning an [`Inventory`] into the `--list` JSON (`_meta.hostvars`, one entry per
//! non-empty group with sorted `hosts`/`children`, plus the group's own `vars` when it has
//! some, keys sorted like `json.dumps(sort_keys=True)`) and the `--graph` tree. It must not
//! print or change the inventory.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::Inventory;

/// `ansible-inventory --list`.
pub(crate) fn list_json(inv: &Inventory) -> Value {
    let mut results = Map::new();
    let mut seen = HashSet::new();
    format_group(inv, "all", &mut results, &mut seen);
    let mut hostvars = Map::new();
    for h in inv.hosts.values().filter(|h| !h.implicit) {
        let vars = inv.vars_of(h);
        if !vars.is_empty() {
            hostvars.insert(h.name.clone(), Value::Object(vars));
        }
    }
    let mut meta = Map::new();
    meta.insert("hostvars".into(), Value::Object(hostvars));
    results.insert("_meta".into(), Value::Object(meta));
    sort_keys(Value::Object(results))
}

fn format_group<'a>(
    inv: &'a Inventory,
    name: &'a str,
    results: &mut Map<String, Value>,
    seen: &mut HashSet<&'a str>,
) {
    let Some(g) = inv.groups.get(name) else {
        return;
    };
    let mut entry = Map::new();
    if name != "all" {
        let mut hosts: Vec<&str> = g.hosts.iter().map(String::as_str).collect();
        hosts.sort_unstable();
        if !hosts.is_empty() {
            entry.insert("hosts".into(), hosts.into());
        }
    }
    let mut children: Vec<&str> = g.children.iter().map(String::as_str).collect();
    children.sort_unstable();
    for c in &children {
        if seen.insert(c) {
            format_group(inv, c, results, seen);
        }
    }
    if !children.is_empty() {
        entry.insert("children".into(), children.into());
    }
    if !g.vars.is_empty() {
        entry.insert("vars".into(), Value::Object(g.vars.clone()));
    }
    if !entry.is_empty() {
        results.insert(name.to_string(), Value::Object(entry));
    }
}

fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// `ansible-inventory --graph`, one line per group and host, ending with a newline.
pub(crate) fn graph(inv: &Inventory, root: &str) -> String {
    let mut lines = Vec::new();
    graph_group(inv, root, 0, &mut lines);
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn graph_name(name: &str, depth: usize) -> String {
    if depth == 0 {
        name.to_string()
    } else {
        format!("{}--{name}", "  |".repeat(depth))
    }
}

fn graph_group(inv: &Inventory, name: &str, depth: usize, lines: &mut Vec<String>) {
    lines.push(graph_name(&format!("@{name}:"), depth));
    // Depth is bounded: cycles are refused when the inventory is built.
    if depth > 256 {
        return;
    }
    let Some(g) = inv.groups.get(name) else {
        return;
    };
    let mut children: Vec<&str> = g.children.iter().map(String::as_str).collect();
    children.sort_unstable();
    for c in children {
        graph_group(inv, c, depth + 1, lines);
    }
    if name != "all" {
        let mut hosts: Vec<&str> = g.hosts.iter().map(String::as_str).collect();
        hosts.sort_unstable();
        for h in hosts {
            lines.push(graph_name(h, depth + 1));
        }
    }
}
