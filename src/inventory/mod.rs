//! The inventory: which hosts exist, which groups they are in, and their inventory variables.
//!
//! Owns [`Inventory::load`] (every `-i` source, in order: YAML/JSON, INI, directories, dynamic
//! inventory scripts, `a,b,` host lists; then `group_vars/`/`host_vars/` next to each source
//! and next to the playbook), host patterns ([`Inventory::select`]), and the inventory tiers of
//! variable precedence ([`Inventory::vars_of`]), all as Ansible does them. Every mistake in every
//! file is collected as a [`Diagnostic`](crate::diag::Diagnostic) with `PATH:LINE:COL`. It must
//! not template anything (values are rendered later, when a play reads them; it only records
//! which texts must stay data: [`Inventory::data_texts`]), touch hosts, or know about plays
//! beyond the playbook directory.
//!
//! Variable precedence inside the inventory, lowest first (Ansible's `VARIABLE_PRECEDENCE` for
//! these tiers; "groups" are the host's groups except `all`, sorted by depth, then
//! `ansible_group_priority`, then name; each step replaces top-level keys):
//! 1. `all`'s inline vars, then each group's inline vars;
//! 2. `group_vars/all` of each inventory source, then of the playbook directory;
//! 3. `group_vars/<group>` of each inventory source (all groups of one source, then the next
//!    source), then of the playbook directory;
//! 4. the host's inline vars, then `host_vars/<host>` of each source, then of the playbook
//!    directory.
//!
//! Steps 1–3 are [`Host::group_vars`], step 4 is [`Host::host_vars`].

pub(crate) mod address;
mod build;
pub(crate) mod connvars;
mod dynamic;
mod ini;
mod literal;
mod output;
mod pattern;
mod range;
mod script;
mod source;
mod vars_dirs;
mod yaml;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::diag::{Diagnostic, Diagnostics, Loc};

pub use pattern::split_host_pattern;
use range::RangeError;

/// Names that reach the implicit localhost when no inventory host has them (Ansible's
/// `C.LOCALHOST`).
pub const LOCALHOST_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Every host and group, after all sources and vars directories are merged.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Hosts in the order first seen; the implicit localhost, if any, comes last.
    pub hosts: IndexMap<String, Host>,
    /// Groups in the order first seen, starting with `all` and `ungrouped`.
    pub groups: IndexMap<String, Group>,
    /// Texts that stay data although inventory values are templates: values written
    /// `!unsafe` or decrypted from an inline `!vault` (their tags do not survive into
    /// [`Host::group_vars`]), and everything a dynamic inventory script printed (it comes
    /// from outside: a cloud API, a CMDB). A variable whose value holds one is never rendered.
    pub data_texts: std::collections::HashSet<String>,
    /// The directories whose `group_vars/` apply (each source's, then the playbook's): a
    /// group `add_host`/`group_by` makes at run time reads its `group_vars/NAME` there.
    pub vars_bases: Vec<PathBuf>,
    /// Mistakes in the `group_vars/` files of groups made at run time, not yet reported.
    pub dynamic_errors: Vec<Diagnostic>,
}

/// One group.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// The group's name.
    pub name: String,
    /// Direct members, in the order added.
    pub hosts: Vec<String>,
    /// Direct child groups, in the order added.
    pub children: Vec<String>,
    /// Direct parent groups (`all` for a top-level group; none for `all`).
    pub parents: Vec<String>,
    /// The group's own variables: inline (inventory file) vars, then its `group_vars/` files
    /// (inventory sources, then the playbook directory) on top.
    pub vars: Map<String, Value>,
    /// `ansible_group_priority` (default 1): among groups of the same depth, higher merges later.
    pub priority: i64,
    /// Where the group was first declared (`None` for `all`, `ungrouped`, and script groups).
    pub loc: Option<Loc>,
}

/// One host.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    /// The inventory hostname.
    pub name: String,
    /// Every group the host is in, including ancestors, excluding `all`, sorted by name:
    /// Ansible's `group_names`.
    pub groups: Vec<String>,
    /// Group variables merged in Ansible's order (see the module docs, steps 1–3).
    pub group_vars: Map<String, Value>,
    /// Inline host variables, then `host_vars/` files on top (step 4).
    pub host_vars: Map<String, Value>,
    /// Where the host was first seen (`None` for the implicit localhost and script hosts).
    pub loc: Option<Loc>,
    /// True for the implicit localhost: in no group, matched only when named.
    pub implicit: bool,
}

impl Inventory {
    /// Reads every source (each `-i` path: file or directory) in order, then the
    /// `group_vars/`/`host_vars/` next to each source and, winning over those, next to the
    /// playbook (`playbook_dir`). All mistakes of all files come back together.
    ///
    /// With no sources the inventory holds only the implicit localhost.
    pub fn load(
        sources: &[PathBuf],
        playbook_dir: Option<&Path>,
    ) -> Result<Inventory, Diagnostics> {
        let mut b = build::Builder::new();
        let mut basedirs = Vec::new();
        for src in sources {
            if let Some(dir) = source::read_source(&mut b, src) {
                basedirs.push(dir);
            }
        }
        b.reconcile();
        let parents = b.parents();
        let depths = b.depths(&parents);
        let implicit = !b.hosts.contains_key("localhost");

        let mut diags = std::mem::take(&mut b.diags);
        let host_names: Vec<&str> = b
            .hosts
            .keys()
            .map(String::as_str)
            .chain(implicit.then_some("localhost"))
            .collect();
        let group_names: Vec<&str> = b.groups.keys().map(String::as_str).collect();
        let inv_dirs: Vec<vars_dirs::VarsDir> = basedirs
            .iter()
            .map(|d| vars_dirs::read(d, group_names.clone(), host_names.clone(), &mut diags))
            .collect();
        // The playbook's folder is often the inventory's too: its files' mistakes are
        // reported once.
        let canon = |d: &Path| {
            let d = if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            };
            std::fs::canonicalize(d).ok()
        };
        let same = |d: &Path| {
            let c = canon(d);
            c.is_some() && basedirs.iter().any(|b| canon(b) == c)
        };
        let play_dir = playbook_dir.map(|d| {
            let mut seen = Diagnostics::new();
            let dir = vars_dirs::read(d, group_names.clone(), host_names.clone(), &mut seen);
            if !same(d) {
                diags.extend(seen);
            }
            dir
        });
        // Inventory sources first, the playbook directory last (it wins).
        let all_dirs: Vec<&vars_dirs::VarsDir> = inv_dirs.iter().chain(play_dir.as_ref()).collect();

        let mut groups = IndexMap::new();
        for (name, raw) in &b.groups {
            let mut vars = raw.vars.clone();
            for d in &all_dirs {
                if let Some(v) = d.groups.get(name) {
                    vars.extend(v.clone());
                }
            }
            groups.insert(
                name.clone(),
                Group {
                    name: name.clone(),
                    hosts: raw.hosts.clone(),
                    children: raw.children.clone(),
                    parents: parents.get(name).cloned().unwrap_or_default(),
                    vars,
                    priority: raw.priority,
                    loc: raw.loc.clone(),
                },
            );
        }

        let direct = direct_groups(&b.groups);
        let mut hosts = IndexMap::new();
        let entries = b
            .hosts
            .iter()
            .map(|(n, raw)| (n.as_str(), raw.vars.clone(), raw.loc.clone(), false))
            .chain(implicit.then(|| ("localhost", implicit_vars(), None, true)));
        for (name, inline, loc, is_implicit) in entries {
            let member_of = direct.get(name).cloned().unwrap_or_default();
            let mut ancestors = ancestors(&member_of, &parents);
            ancestors.retain(|g| g != "all");
            let mut sorted = ancestors.clone();
            sorted.sort_by(|a, c| {
                let key = |g: &String| {
                    (
                        depths.get(g).copied().unwrap_or(0),
                        b.groups.get(g).map_or(1, |r| r.priority),
                    )
                };
                key(a).cmp(&key(c)).then_with(|| a.cmp(c))
            });
            ancestors.sort();

            let mut gv = Map::new();
            let inline_of = |g: &str| b.groups.get(g).map(|r| r.vars.clone()).unwrap_or_default();
            gv.extend(inline_of("all"));
            for g in &sorted {
                gv.extend(inline_of(g));
            }
            for d in &all_dirs {
                if let Some(v) = d.groups.get("all") {
                    gv.extend(v.clone());
                }
            }
            for d in &all_dirs {
                for g in &sorted {
                    if let Some(v) = d.groups.get(g) {
                        gv.extend(v.clone());
                    }
                }
            }
            let mut hv = inline;
            for d in &all_dirs {
                if let Some(v) = d.hosts.get(name) {
                    hv.extend(v.clone());
                }
            }
            hosts.insert(
                name.to_string(),
                Host {
                    name: name.to_string(),
                    groups: ancestors,
                    group_vars: gv,
                    host_vars: hv,
                    loc,
                    implicit: is_implicit,
                },
            );
        }
        let mut data_texts = std::mem::take(&mut b.data_texts);
        for d in &all_dirs {
            data_texts.extend(d.data_texts.iter().cloned());
        }
        let vars_bases = basedirs
            .iter()
            .cloned()
            .chain(playbook_dir.map(Path::to_path_buf))
            .collect();
        diags.sorted().into_result(Inventory {
            hosts,
            groups,
            data_texts,
            vars_bases,
            dynamic_errors: Vec::new(),
        })
    }

    /// Hosts matching an Ansible host pattern (`web`, `all`, `*`, `web*`, `~re`, `g[0]`,
    /// `a:b`, `a,b`, `a:&b`, `a:!b`): union terms in the order written, each term's hosts in
    /// inventory order; then every `&`; then every `!`. `Err` names a bad pattern or a term that
    /// matches no host or group (with a suggestion when one is close). An existing but empty
    /// group matches nothing without error.
    pub fn select(&self, pattern: &str) -> Result<Vec<&Host>, String> {
        pattern::select(self, pattern)
    }

    /// `rdeploy inventory --list`: the JSON `ansible-inventory --list` prints (`_meta.hostvars`
    /// with [`Inventory::vars_of`] per host; each non-empty group with sorted `hosts` and
    /// `children`, and `vars` when the group has its own), keys sorted.
    pub fn list_json(&self) -> Value {
        output::list_json(self)
    }

    /// `rdeploy inventory --graph`: the tree `ansible-inventory --graph` prints (`@all:`,
    /// `  |--@web:`, `  |  |--web01`; children and hosts sorted by name), with a final newline.
    pub fn graph(&self) -> String {
        output::graph(self, "all")
    }

    /// `--graph GROUP`: the tree from one group down.
    pub fn graph_from(&self, group: &str) -> String {
        output::graph(self, group)
    }

    /// Host variables as a play sees them at the inventory tiers: [`Host::group_vars`] with
    /// [`Host::host_vars`] on top (no magic variables such as `inventory_hostname`).
    pub fn vars_of(&self, host: &Host) -> Map<String, Value> {
        let mut vars = host.group_vars.clone();
        vars.extend(host.host_vars.clone());
        vars
    }
}

/// The implicit localhost's own variables.
fn implicit_vars() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ansible_connection".into(), "local".into());
    m.insert("ansible_host".into(), "127.0.0.1".into());
    m
}

/// For each host, the groups it is directly in.
fn direct_groups(groups: &IndexMap<String, build::RawGroup>) -> HashMap<&str, Vec<String>> {
    let mut out: HashMap<&str, Vec<String>> = HashMap::new();
    for (name, g) in groups {
        for h in &g.hosts {
            out.entry(h.as_str()).or_default().push(name.clone());
        }
    }
    out
}

/// The groups and all their ancestors.
fn ancestors(groups: &[String], parents: &IndexMap<String, Vec<String>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut stack: Vec<String> = groups.to_vec();
    while let Some(g) = stack.pop() {
        if out.contains(&g) {
            continue;
        }
        if let Some(ps) = parents.get(&g) {
            stack.extend(ps.iter().cloned());
        }
        out.push(g);
    }
    out
}

/// Splits a host entry (`web[01:03]:2222`, `[fe80::1]:22`) into its expanded names and port,
/// as Ansible's `_expand_hostpattern`. Error offsets are into `entry`.
pub(crate) fn expand_host_entry(entry: &str) -> Result<(Vec<String>, Option<u64>), RangeError> {
    let (pattern, port) = address::parse_address(entry).unwrap_or((entry.to_string(), None));
    if port.is_none() && entry.trim_end().ends_with(':') {
        return Err(RangeError {
            offset: entry.trim_end().len() - 1,
            message: format!("host '{entry}' ends with ':', which is reserved for a port number"),
        });
    }
    let shift = entry.find(pattern.as_str()).unwrap_or(0);
    range::expand(&pattern)
        .map(|names| (names, port))
        .map_err(|mut e| {
            e.offset += shift;
            e
        })
}
