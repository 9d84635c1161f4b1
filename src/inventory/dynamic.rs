//! Changes to the inventory while a run goes on: `add_host` and `group_by`, as Ansible's
//! `InventoryManager.add_dynamic_host`/`add_dynamic_group` make them.
//!
//! Owns adding a host or a group membership and keeping [`Host::groups`] and
//! [`Host::group_vars`] consistent with it. The only files it reads are the `group_vars/NAME`
//! of a group made at run time (as Ansible's `host_group_vars` plugin finds them, in
//! [`Inventory::vars_bases`]); it templates nothing: the variables `add_host` gives were
//! rendered by the task.

use serde_json::{Map, Value};

use super::{Group, Host, Inventory};

impl Inventory {
    /// `add_host`: adds `name` (when new) to the inventory, merges `vars` into its host
    /// variables and adds it to `groups` (made when missing, under `all`). True when anything
    /// changed (Ansible's `changed`).
    pub fn add_dynamic_host(
        &mut self,
        name: &str,
        groups: &[String],
        vars: &Map<String, Value>,
    ) -> bool {
        let mut changed = false;
        if self.hosts.get(name).is_none_or(|h| h.implicit) {
            let group_vars = self
                .groups
                .get("all")
                .map(|g| g.vars.clone())
                .unwrap_or_default();
            let host_vars = self
                .hosts
                .get(name)
                .map(|h| h.host_vars.clone())
                .unwrap_or_default();
            self.hosts.insert(
                name.to_string(),
                Host {
                    name: name.to_string(),
                    groups: Vec::new(),
                    group_vars,
                    host_vars,
                    loc: None,
                    implicit: false,
                },
            );
            self.ensure_group("all", &[]);
            if let Some(all) = self.groups.get_mut("all")
                && !all.hosts.iter().any(|h| h == name)
            {
                all.hosts.push(name.to_string());
            }
            changed = true;
        }
        if let Some(h) = self.hosts.get_mut(name) {
            for (k, v) in vars {
                if h.host_vars.get(k) != Some(v) {
                    h.host_vars.insert(k.clone(), v.clone());
                    changed = true;
                }
            }
        }
        for g in groups {
            changed |= self.ensure_group(g, &[]);
            changed |= self.join(name, g);
        }
        let grouped = self.hosts.get(name).is_some_and(|h| !h.groups.is_empty());
        if !grouped {
            self.ensure_group("ungrouped", &[]);
            self.join(name, "ungrouped");
        }
        changed
    }

    /// `group_by`: puts `host` in `group` (made when missing), itself a child of each of
    /// `parents` (made when missing). True when anything changed.
    pub fn add_dynamic_group(&mut self, host: &str, group: &str, parents: &[String]) -> bool {
        let mut changed = false;
        self.ensure_group(group, parents);
        for p in parents {
            changed |= self.ensure_group(p, &[]);
            if let Some(pg) = self.groups.get_mut(p)
                && !pg.children.iter().any(|c| c == group)
                && p != group
            {
                pg.children.push(group.to_string());
                changed = true;
            }
            if let Some(g) = self.groups.get_mut(group)
                && !g.parents.iter().any(|x| x == p)
            {
                g.parents.push(p.clone());
            }
        }
        changed |= self.join(host, group);
        changed
    }

    /// Makes `name` when missing, as a child of `parents` (`all` when none); true when made.
    fn ensure_group(&mut self, name: &str, parents: &[String]) -> bool {
        if self.groups.contains_key(name) {
            return false;
        }
        let parents: Vec<String> = if name == "all" {
            Vec::new()
        } else if parents.is_empty() {
            vec!["all".to_string()]
        } else {
            parents.to_vec()
        };
        if parents.iter().any(|p| p == "all")
            && let Some(all) = self.groups.get_mut("all")
        {
            all.children.push(name.to_string());
        }
        // Its `group_vars/` files, the playbook directory's last (they win).
        let mut vars = Map::new();
        let mut diags = crate::diag::Diagnostics::new();
        for base in &self.vars_bases {
            let dir = super::vars_dirs::read(base, [name], [], &mut diags);
            if let Some(v) = dir.groups.get(name) {
                vars.extend(v.clone());
            }
            self.data_texts.extend(dir.data_texts);
        }
        self.dynamic_errors.extend(diags.0);
        self.groups.insert(
            name.to_string(),
            Group {
                name: name.to_string(),
                hosts: Vec::new(),
                children: Vec::new(),
                parents,
                vars,
                priority: 1,
                loc: None,
            },
        );
        true
    }

    /// Adds `host` to `group` directly; its group names and group variables take in the group
    /// and its ancestors it was not in (their variables over the ones it had). True when added.
    fn join(&mut self, host: &str, group: &str) -> bool {
        let Some(g) = self.groups.get_mut(group) else {
            return false;
        };
        if g.hosts.iter().any(|h| h == host) {
            return false;
        }
        g.hosts.push(host.to_string());
        // Ansible's reconcile: a host in a group is no longer `ungrouped`.
        if group != "ungrouped"
            && group != "all"
            && let Some(u) = self.groups.get_mut("ungrouped")
        {
            u.hosts.retain(|h| h != host);
        }
        let mut ancestors = vec![group.to_string()];
        let mut i = 0;
        while let Some(name) = ancestors.get(i).cloned() {
            i += 1;
            for p in self
                .groups
                .get(&name)
                .map(|g| g.parents.clone())
                .unwrap_or_default()
            {
                if !ancestors.contains(&p) {
                    ancestors.push(p);
                }
            }
        }
        // Outermost first, so that a child's variables win over its parent's.
        ancestors.reverse();
        let added: Vec<(String, Map<String, Value>)> = ancestors
            .into_iter()
            .filter(|a| a != "all")
            .filter_map(|a| self.groups.get(&a).map(|g| (a, g.vars.clone())))
            .collect();
        if let Some(h) = self.hosts.get_mut(host) {
            h.groups
                .retain(|x| x != "ungrouped" || group == "ungrouped");
            for (name, vars) in added {
                if !h.groups.contains(&name) {
                    h.groups.push(name);
                    h.group_vars.extend(vars);
                }
            }
            h.groups.sort();
        }
        true
    }
}
