//! The inventory while sources are being read, and how it becomes an [`Inventory`].
//!
//! Owns the mutable [`Builder`] that every format parser (YAML, INI, script, `-i a,b,`) fills
//! with groups, hosts, memberships and inline variables, in the order seen, plus the
//! reconciliation Ansible does afterwards: top-level groups become children of `all`, hosts in
//! no group go to `ungrouped`, parent links and depths are computed, and group cycles are
//! refused. It must not read files or merge `group_vars`/`host_vars` (see `vars_dirs.rs` and
//! `mod.rs`).

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::diag::{Diagnostic, Diagnostics, Loc};

/// A group as parsed, before reconciliation.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawGroup {
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub vars: Map<String, Value>,
    pub priority: i64,
    pub loc: Option<Loc>,
}

/// A host as parsed: its inline variables and where it was first seen.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawHost {
    pub vars: Map<String, Value>,
    pub loc: Option<Loc>,
}

/// The inventory being read: every parser adds to it, in source order.
pub(crate) struct Builder {
    pub hosts: IndexMap<String, RawHost>,
    pub groups: IndexMap<String, RawGroup>,
    pub diags: Diagnostics,
    /// Texts that stay data although inventory values are templates (see
    /// [`Inventory::data_texts`](super::Inventory::data_texts)).
    pub data_texts: std::collections::HashSet<String>,
}

impl Builder {
    /// An inventory with only the built-in groups `all` and `ungrouped`.
    pub fn new() -> Builder {
        let mut b = Builder {
            hosts: IndexMap::new(),
            groups: IndexMap::new(),
            diags: Diagnostics::new(),
            data_texts: Default::default(),
        };
        b.add_group("all", None);
        b.add_group("ungrouped", None);
        b.add_child("all", "ungrouped", None);
        b
    }

    /// Declares a group (again); the first declaration's position is kept.
    pub fn add_group(&mut self, name: &str, loc: Option<&Loc>) {
        let g = self
            .groups
            .entry(name.to_string())
            .or_insert_with(|| RawGroup {
                priority: 1,
                ..RawGroup::default()
            });
        if g.loc.is_none() {
            g.loc = loc.cloned();
        }
    }

    /// Adds `host` (declaring it if new) as a direct member of `group` (declaring it if new).
    pub fn add_host(&mut self, group: &str, host: &str, loc: Option<&Loc>) {
        let h = self.hosts.entry(host.to_string()).or_default();
        if h.loc.is_none() {
            h.loc = loc.cloned();
        }
        self.add_group(group, None);
        if let Some(g) = self.groups.get_mut(group)
            && !g.hosts.iter().any(|h| h == host)
        {
            g.hosts.push(host.to_string());
        }
    }

    /// Refuses a connection variable whose written value can never work (see `connvars`).
    pub fn check_var(&mut self, key: &str, value: &Value, loc: Option<&Loc>) {
        if let Some(msg) = super::connvars::error(key, value) {
            self.error(loc, msg);
        }
    }

    /// Sets an inline host variable; a later source overrides an earlier one.
    pub fn set_host_var(&mut self, host: &str, key: &str, value: Value) {
        self.hosts
            .entry(host.to_string())
            .or_default()
            .vars
            .insert(key.to_string(), value);
    }

    /// Sets an inline group variable. `ansible_group_priority` sets the group's priority
    /// instead (it must be an integer, or a string holding one) and is not kept as a variable.
    pub fn set_group_var(&mut self, group: &str, key: &str, value: Value, loc: Option<&Loc>) {
        self.add_group(group, None);
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if key == "ansible_group_priority" {
            let p = match &value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match p {
                Some(p) => g.priority = p,
                None => self.error(
                    loc,
                    format!("ansible_group_priority of group '{group}' must be an integer, found {value}"),
                ),
            }
            return;
        }
        if let Some(msg) = super::connvars::error(key, &value) {
            self.error(loc, msg);
        }
        if let Some(g) = self.groups.get_mut(group) {
            g.vars.insert(key.to_string(), value);
        }
    }

    /// Makes `child` a child group of `parent`, refusing `all` as a child and cycles.
    pub fn add_child(&mut self, parent: &str, child: &str, loc: Option<&Loc>) {
        if child == "all" {
            self.error(
                loc,
                format!("group 'all' cannot be a child of group '{parent}'"),
            );
            return;
        }
        if parent == child || self.is_descendant(child, parent) {
            self.error(
                loc,
                format!(
                    "making '{child}' a child of '{parent}' creates a cycle: '{parent}' is already inside '{child}'"
                ),
            );
            return;
        }
        self.add_group(parent, None);
        self.add_group(child, None);
        if let Some(g) = self.groups.get_mut(parent)
            && !g.children.iter().any(|c| c == child)
        {
            g.children.push(child.to_string());
        }
    }

    /// True when `needle` is `group` or below it.
    fn is_descendant(&self, group: &str, needle: &str) -> bool {
        let mut stack = vec![group.to_string()];
        let mut seen = std::collections::HashSet::new();
        while let Some(g) = stack.pop() {
            if g == needle {
                return true;
            }
            if !seen.insert(g.clone()) {
                continue;
            }
            if let Some(raw) = self.groups.get(&g) {
                stack.extend(raw.children.iter().cloned());
            }
        }
        false
    }

    /// Records a mistake; without a position it is reported like a command-line mistake.
    pub fn error(&mut self, loc: Option<&Loc>, message: impl Into<String>) {
        self.diags.push(match loc {
            Some(loc) => Diagnostic::at(loc, message),
            None => Diagnostic::options(message),
        });
    }

    /// Ansible's `reconcile_inventory`: groups without a parent hang under `all`; hosts that
    /// are in no group other than `all` are also in `ungrouped`, and no other host is.
    pub fn reconcile(&mut self) {
        let orphans: Vec<String> = self
            .groups
            .keys()
            .filter(|g| g.as_str() != "all")
            .filter(|g| !self.groups.values().any(|p| p.children.contains(g)))
            .cloned()
            .collect();
        for g in orphans {
            self.add_child("all", &g, None);
        }
        let mut in_some_group = std::collections::HashSet::new();
        for (name, g) in &self.groups {
            if name != "all" && name != "ungrouped" {
                in_some_group.extend(g.hosts.iter().cloned());
            }
        }
        let hosts: Vec<String> = self.hosts.keys().cloned().collect();
        if let Some(ungrouped) = self.groups.get_mut("ungrouped") {
            ungrouped.hosts.retain(|h| !in_some_group.contains(h));
            for h in hosts {
                if !in_some_group.contains(&h) && !ungrouped.hosts.contains(&h) {
                    ungrouped.hosts.push(h);
                }
            }
        }
    }

    /// Parents of each group, in group order.
    pub fn parents(&self) -> IndexMap<String, Vec<String>> {
        let mut parents: IndexMap<String, Vec<String>> = self
            .groups
            .keys()
            .map(|g| (g.clone(), Vec::new()))
            .collect();
        for (name, g) in &self.groups {
            for c in &g.children {
                if let Some(p) = parents.get_mut(c) {
                    p.push(name.clone());
                }
            }
        }
        parents
    }

    /// Ansible's group depth: the longest path from `all` (which is 0).
    pub fn depths(&self, parents: &IndexMap<String, Vec<String>>) -> IndexMap<String, usize> {
        fn depth(
            g: &str,
            parents: &IndexMap<String, Vec<String>>,
            memo: &mut IndexMap<String, usize>,
            guard: usize,
        ) -> usize {
            if let Some(d) = memo.get(g) {
                return *d;
            }
            // Cycles are refused when children are added; the guard only bounds the recursion.
            let d = if guard > 10_000 {
                0
            } else {
                parents
                    .get(g)
                    .map(|ps| {
                        ps.iter()
                            .map(|p| depth(p, parents, memo, guard + 1) + 1)
                            .max()
                            .unwrap_or(0)
                    })
                    .unwrap_or(0)
            };
            memo.insert(g.to_string(), d);
            d
        }
        let mut memo = IndexMap::new();
        for g in self.groups.keys() {
            depth(g, parents, &mut memo, 0);
        }
        memo
    }
}
