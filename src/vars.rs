//! The one variable precedence list.
//!
//! Owns the order in which variable sources override each other, and which sources are
//! templates (written by the operator: inventory, playbook and role files, `-e`; rendered when
//! read) and which are data (registered results, facts, magic variables, and values marked
//! `!unsafe`: never rendered), and filling those tiers
//! for a play's hosts (shared by the plan-time check and the executor). It must not render
//! anything itself: [`VarStack::layers`] hands the ordered layers to `template::LazyVars`.

use indexmap::IndexMap;
use serde_json::Value;

use crate::cli::settings::Settings;
use crate::inventory::{Host, Inventory};
use crate::playbook::model::{Play, Playbook, RoleRef};
use crate::template::{self, VarValue};

/// Where a variable comes from, lowest precedence first. A later tier overrides an earlier
/// one; inside a tier, later definitions override earlier ones.
///
/// | # | tier | source | rendered? |
/// |---|------|--------|-----------|
/// | 1 | `RoleDefaults` | `roles/*/defaults/main.yml` | template |
/// | 2 | `InventoryGroup` | inventory group vars, `group_vars/` (all → parent → child) | template |
/// | 3 | `InventoryHost` | inventory host vars, `host_vars/` | template |
/// | 4 | `Play` | play `vars:`, `vars_files:` | template |
/// | 5 | `RoleVars` | `roles/*/vars/main.yml`, role params | template |
/// | 6 | `Task` | block `vars:`, then task `vars:` | template |
/// | 7 | `Runtime` | `register:`, `set_fact`, `include_vars`, facts | data |
/// | 8 | `Extra` | `-e` extra vars | template |
/// | 9 | `Magic` | `inventory_hostname`, `groups`, `hostvars`, `omit`, … | data |
///
/// Magic variables sit on top so a playbook cannot redefine `inventory_hostname`; the one
/// magic default that inventories do override, `ansible_host`, lives at the bottom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Defaults that only apply when nothing else sets the name (`ansible_host`).
    MagicDefaults,
    /// Role defaults.
    RoleDefaults,
    /// Inventory group vars.
    InventoryGroup,
    /// Inventory host vars.
    InventoryHost,
    /// Play vars and vars_files.
    Play,
    /// Role vars and role params.
    RoleVars,
    /// Block and task vars.
    Task,
    /// Registered results, set_fact, include_vars, facts.
    Runtime,
    /// `-e`.
    Extra,
    /// Magic variables.
    Magic,
}

impl Tier {
    /// Every tier, lowest precedence first.
    pub const ALL: [Tier; 10] = [
        Tier::MagicDefaults,
        Tier::RoleDefaults,
        Tier::InventoryGroup,
        Tier::InventoryHost,
        Tier::Play,
        Tier::RoleVars,
        Tier::Task,
        Tier::Runtime,
        Tier::Extra,
        Tier::Magic,
    ];

    /// True for tiers the operator wrote (inventory files, `group_vars/`, `host_vars/`,
    /// playbook and role files, `-e`), which are rendered when read, as in Ansible. What
    /// comes from hosts and the magic variables are data.
    pub fn is_template(self) -> bool {
        matches!(
            self,
            Tier::RoleDefaults
                | Tier::InventoryGroup
                | Tier::InventoryHost
                | Tier::Play
                | Tier::RoleVars
                | Tier::Task
                | Tier::Extra
        )
    }
}

/// The variables of one host at one point of a play, tier by tier.
///
/// A value from a template tier that was tagged `!unsafe` (or decrypted from `!vault`) is kept
/// as data: it is never rendered, whatever it contains.
#[derive(Clone, Debug, Default)]
pub struct VarStack {
    layers: [IndexMap<String, Value>; 10],
    data: [std::collections::HashSet<String>; 10],
}

impl VarStack {
    /// An empty stack.
    pub fn new() -> VarStack {
        VarStack::default()
    }

    /// Sets `name` in `tier` (a later set in the same tier wins).
    pub fn set(&mut self, tier: Tier, name: impl Into<String>, value: Value) {
        let name = name.into();
        let data = &mut self.data[tier as usize];
        if !data.is_empty() {
            data.remove(&name);
        }
        self.layers[tier as usize].insert(name, value);
    }

    /// Sets `name` in `tier` from a YAML node: a node tagged `unsafe` (written `!unsafe`, or
    /// a decrypted `!vault`) is data even in a template tier.
    pub fn set_node(&mut self, tier: Tier, name: impl Into<String>, node: &crate::yaml::Node) {
        let name = name.into();
        self.set(tier, name.clone(), node.to_json());
        if node.tag.as_deref() == Some("unsafe") {
            self.data[tier as usize].insert(name);
        }
    }

    /// Sets every entry of `vars` in `tier`.
    pub fn extend<I, K>(&mut self, tier: Tier, vars: I)
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        let layer = &mut self.layers[tier as usize];
        for (k, v) in vars {
            layer.insert(k.into(), v);
        }
    }

    /// The value `name` resolves to before rendering, and its tier.
    pub fn lookup(&self, name: &str) -> Option<(Tier, &Value)> {
        Tier::ALL
            .iter()
            .rev()
            .find_map(|&t| self.layers[t as usize].get(name).map(|v| (t, v)))
    }

    /// Keeps as data every variable of `tier` whose value holds one of `texts` (values written
    /// `!unsafe` in an inventory or extra-vars file, or printed by an inventory script).
    pub fn keep_as_data(&mut self, tier: Tier, texts: &std::collections::HashSet<String>) {
        if texts.is_empty() {
            return;
        }
        for (k, v) in &self.layers[tier as usize] {
            if template::lazy::holds_text(v, texts) {
                self.data[tier as usize].insert(k.clone());
            }
        }
    }

    /// Every name defined in any tier.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.layers
            .iter()
            .flat_map(|l| l.keys().map(String::as_str))
    }

    /// The tiers as layers for `template::LazyVars`, lowest first, each value marked as
    /// template or data by its tier.
    pub fn layers(&self) -> Vec<IndexMap<String, VarValue>> {
        Tier::ALL
            .iter()
            .map(|&t| {
                self.layers[t as usize]
                    .iter()
                    .map(|(k, v)| {
                        let v = if t.is_template() && !self.data[t as usize].contains(k) {
                            VarValue::Template(v.clone())
                        } else {
                            VarValue::Data(v.clone())
                        };
                        (k.clone(), v)
                    })
                    .collect()
            })
            .collect()
    }
}

/// The variables every host of a play shares, at the tiers known before the run: role
/// defaults and vars of the play's `roles:` and `import_role`s (not their parameters), play
/// vars and vars_files, extra vars, and the small play-wide magic variables. The large ones
/// (host lists) are in [`play_magic`], shared by every host rather than copied into each
/// host's stack.
pub fn play_stack(
    inv: &Inventory,
    pb: &Playbook,
    play: &Play,
    hosts: &[String],
    settings: &Settings,
    check_mode: bool,
) -> VarStack {
    let _ = (inv, hosts);
    let mut shared = VarStack::new();
    // An `import_role` with `public: false` keeps its variables to its own tasks.
    for r in play
        .roles
        .iter()
        .chain(play.imported_roles())
        .filter(|r| r.public)
    {
        role_exports(r, &mut shared);
    }
    for (k, n) in &play.keywords.vars {
        shared.set_node(Tier::Play, k.clone(), n);
    }
    for vf in &play.vars_files {
        for (k, n) in vf.vars.iter().flatten() {
            shared.set_node(Tier::Play, k.clone(), n);
        }
    }
    shared.extend(
        Tier::Extra,
        settings
            .extra_vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    shared.keep_as_data(Tier::Extra, &settings.extra_data_texts);
    let magic_play = [
        ("ansible_check_mode", serde_json::Value::Bool(check_mode)),
        ("ansible_diff_mode", serde_json::Value::Bool(false)),
        (
            "playbook_dir",
            serde_json::Value::from(pb.dir.display().to_string()),
        ),
        (
            "ansible_play_name",
            serde_json::Value::from(play.display_name()),
        ),
        ("omit", serde_json::Value::from(template::OMIT)),
        // The Ansible language level rdeploy follows (checked against ansible-core 2.19).
        (
            "ansible_version",
            serde_json::json!({
                "string": "2.19.0", "full": "2.19.0", "major": 2, "minor": 19, "revision": 0
            }),
        ),
        (
            "ansible_run_tags",
            serde_json::Value::from(run_tags(settings)),
        ),
        (
            "ansible_skip_tags",
            serde_json::Value::from(settings.skip_tags.clone()),
        ),
    ];
    for (k, v) in magic_play {
        shared.set(Tier::Magic, k, v);
    }
    shared
}

/// The play's name as ansible-playbook shows it: rendered with the play's variables (play
/// vars, vars_files, role vars, extra vars and the play-level magic variables). A name that
/// needs more than that (a host's variables) is shown as written.
pub fn play_name(play: &Play, shared: &VarStack) -> String {
    let raw = play.display_name();
    if !template::has_template(&raw) {
        return raw;
    }
    let env = template::shared_environment();
    let ctx = template::LazyVars::new(shared.layers(), std::sync::Arc::clone(&env));
    env.render_str(&raw, ctx.to_value()).unwrap_or(raw)
}

/// A play-level template (`release_label`) rendered with the play's shared variables; the
/// text as written when it cannot be rendered.
pub fn render_with(n: &crate::yaml::Node, shared: &VarStack) -> String {
    let raw = n.scalar_string().unwrap_or_default();
    if !template::has_template(&raw) {
        return raw;
    }
    let env = template::shared_environment();
    let ctx = template::LazyVars::new(shared.layers(), std::sync::Arc::clone(&env));
    env.render_str(&raw, ctx.to_value()).unwrap_or(raw)
}

/// Variables whose values are always secrets, `secret_vars` or not: become passwords.
const ALWAYS_SECRET: [&str; 2] = ["ansible_become_password", "ansible_become_pass"];

/// `secret_vars: [name, ...]` (a play, role or inventory variable): registers the value of
/// each named variable, rendered with `stack`, for redaction, and of [`ALWAYS_SECRET`]. A name
/// that cannot be rendered yet (it needs facts or registered results) is skipped; its use
/// fails later anyway.
pub fn register_secret_vars(stack: &VarStack) {
    let always = ALWAYS_SECRET.iter().any(|n| stack.lookup(n).is_some());
    if stack.lookup("secret_vars").is_none() && !always {
        return;
    }
    let env = template::shared_environment();
    let ctx = template::LazyVars::new(stack.layers(), std::sync::Arc::clone(&env));
    let mut names = match ctx.get_json("secret_vars") {
        Some(Ok(Value::Array(names))) => names,
        Some(Ok(Value::String(name))) => vec![Value::String(name)],
        _ => Vec::new(),
    };
    names.extend(ALWAYS_SECRET.iter().map(|n| Value::from(*n)));
    for name in names.iter().filter_map(Value::as_str) {
        if let Some(Ok(v)) = ctx.get_json(name) {
            crate::vault::redact::register_json(&v);
        }
    }
}

/// Magic variables that list hosts (`groups`, `ansible_play_hosts`, `ansible_play_batch`...),
/// built once per play (and batch) as shared template values: copying them into every host's
/// stack made planning 2,000 hosts quadratic in memory.
pub fn play_magic(
    inv: &Inventory,
    hosts: &[String],
    batch: &[String],
) -> Vec<(String, minijinja::Value)> {
    let list = |h: &[String]| template::json_to_value(&serde_json::Value::from(h.to_vec()));
    let play_hosts = list(hosts);
    vec![
        ("groups".into(), template::json_to_value(&groups_value(inv))),
        ("ansible_play_hosts".into(), play_hosts.clone()),
        ("ansible_play_hosts_all".into(), play_hosts.clone()),
        ("play_hosts".into(), play_hosts),
        ("ansible_play_batch".into(), list(batch)),
    ]
}

/// Each host's full stack: the play's shared stack with its inventory vars and host magic.
pub fn host_stacks(
    inv: &Inventory,
    shared: &VarStack,
    hosts: &[String],
) -> IndexMap<String, VarStack> {
    hosts
        .iter()
        .filter_map(|h| inv.hosts.get(h))
        .map(|host| (host.name.clone(), host_stack(shared, host, &inv.data_texts)))
        .collect()
}

/// `ansible_run_tags`: the `--tags` given, or `all`.
pub fn run_tags(settings: &Settings) -> Vec<String> {
    if settings.tags.is_empty() {
        vec!["all".into()]
    } else {
        settings.tags.clone()
    }
}

/// What a role exports to the whole play, as Ansible's public roles do: its defaults
/// (tier 1) and its `vars/` (tier 5), dependencies first. Never its parameters: those belong
/// to one role instance ([`role_vars`]).
pub fn role_exports(r: &RoleRef, stack: &mut VarStack) {
    for d in &r.role.dependencies {
        role_exports(d, stack);
    }
    for (k, n) in &r.role.defaults {
        stack.set_node(Tier::RoleDefaults, k.clone(), n);
    }
    for (k, n) in &r.role.vars {
        stack.set_node(Tier::RoleVars, k.clone(), n);
    }
}

/// The variables of one role instance, for its own tasks and handlers: what its dependencies
/// export, then its defaults (tier 1), `vars/` and parameters (tier 5). A second instance of
/// the same role with other parameters sees only its own.
pub fn role_vars(r: &RoleRef, stack: &mut VarStack) {
    for d in &r.role.dependencies {
        role_exports(d, stack);
    }
    for (k, n) in &r.role.defaults {
        stack.set_node(Tier::RoleDefaults, k.clone(), n);
    }
    for (k, n) in r.role.vars.iter().chain(&r.params) {
        stack.set_node(Tier::RoleVars, k.clone(), n);
    }
}

pub fn host_stack(
    shared: &VarStack,
    host: &Host,
    data_texts: &std::collections::HashSet<String>,
) -> VarStack {
    let mut s = shared.clone();
    s.set(
        Tier::MagicDefaults,
        "ansible_host",
        serde_json::Value::from(host.name.clone()),
    );
    s.extend(
        Tier::InventoryGroup,
        host.group_vars.iter().map(|(k, v)| (k.clone(), v.clone())),
    );
    s.extend(
        Tier::InventoryHost,
        host.host_vars.iter().map(|(k, v)| (k.clone(), v.clone())),
    );
    s.keep_as_data(Tier::InventoryGroup, data_texts);
    s.keep_as_data(Tier::InventoryHost, data_texts);
    let short = host
        .name
        .split('.')
        .next()
        .unwrap_or(&host.name)
        .to_string();
    s.set(
        Tier::Magic,
        "inventory_hostname",
        serde_json::Value::from(host.name.clone()),
    );
    s.set(
        Tier::Magic,
        "inventory_hostname_short",
        serde_json::Value::from(short),
    );
    s.set(
        Tier::Magic,
        "group_names",
        serde_json::Value::from(host.groups.clone()),
    );
    // `inventory_file`/`inventory_dir`: the inventory source that first named the host, as an
    // absolute path (none for the implicit localhost or a host added at run time).
    if let Some(loc) = &host.loc {
        let file = std::path::absolute(&*loc.file).unwrap_or_else(|_| loc.file.as_ref().into());
        if let Some(dir) = file.parent() {
            s.set(
                Tier::Magic,
                "inventory_dir",
                serde_json::Value::from(dir.display().to_string()),
            );
        }
        s.set(
            Tier::Magic,
            "inventory_file",
            serde_json::Value::from(file.display().to_string()),
        );
    }
    s
}

/// `groups`: every group's hosts (with `all` and `ungrouped`), as Ansible exposes it.
pub fn groups_value(inv: &Inventory) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (name, _) in &inv.groups {
        let hosts: Vec<String> = inv
            .select(name)
            .map(|hs| hs.into_iter().map(|h| h.name.clone()).collect())
            .unwrap_or_default();
        m.insert(name.clone(), serde_json::Value::from(hosts));
    }
    serde_json::Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn precedence_is_the_documented_list() {
        let mut s = VarStack::new();
        // Set the same name in every tier, lowest first, and peel them off from the top.
        for (i, t) in Tier::ALL.iter().enumerate() {
            s.set(*t, "x", json!(i));
        }
        for (i, t) in Tier::ALL.iter().enumerate().rev() {
            assert_eq!(s.lookup("x"), Some((*t, &json!(i))));
            s.layers[*t as usize].shift_remove("x");
        }
        assert_eq!(s.lookup("x"), None);
    }

    #[test]
    fn issue_order_role_defaults_lose_to_inventory_and_extra_vars_win() {
        let mut s = VarStack::new();
        s.set(Tier::RoleDefaults, "port", json!(80));
        s.set(Tier::InventoryGroup, "port", json!(8080));
        assert_eq!(s.lookup("port").unwrap().1, &json!(8080));
        s.set(Tier::InventoryHost, "port", json!(8081));
        s.set(Tier::Play, "port", json!(8082));
        s.set(Tier::RoleVars, "port", json!(8083));
        s.set(Tier::Task, "port", json!(8084));
        s.set(Tier::Runtime, "port", json!(8085));
        assert_eq!(s.lookup("port").unwrap().1, &json!(8085));
        s.set(Tier::Extra, "port", json!(9000));
        assert_eq!(s.lookup("port").unwrap(), (Tier::Extra, &json!(9000)));
    }

    #[test]
    fn unsafe_and_vault_values_stay_data_in_template_tiers() {
        let f: std::sync::Arc<str> = std::sync::Arc::from("t.yaml");
        let docs = crate::yaml::load_str(
            &f,
            "a: !unsafe '{{ b }}'\nc: '{{ b }}'\n",
            crate::yaml::Limits::default(),
        )
        .unwrap();
        let mut s = VarStack::new();
        for (k, n) in docs[0].as_map().unwrap() {
            s.set_node(Tier::Play, k.as_str().unwrap(), n);
        }
        let layers = s.layers();
        assert!(matches!(
            layers[Tier::Play as usize]["a"],
            VarValue::Data(_)
        ));
        assert!(matches!(
            layers[Tier::Play as usize]["c"],
            VarValue::Template(_)
        ));
        s.set(Tier::Play, "a", json!("{{ b }}"));
        assert!(matches!(
            s.layers()[Tier::Play as usize]["a"],
            VarValue::Template(_)
        ));
    }

    #[test]
    fn operator_written_tiers_are_templates_and_host_data_is_not() {
        let mut s = VarStack::new();
        for t in [
            Tier::InventoryGroup,
            Tier::InventoryHost,
            Tier::Play,
            Tier::Extra,
        ] {
            s.set(t, format!("t{}", t as usize), json!("{{ b }}"));
        }
        s.set(Tier::Runtime, "registered", json!("{{ b }}"));
        s.set(Tier::InventoryHost, "marked", json!("{{ not_me }}"));
        s.keep_as_data(
            Tier::InventoryHost,
            &["{{ not_me }}".to_string()].into_iter().collect(),
        );
        let layers = s.layers();
        for t in [
            Tier::InventoryGroup,
            Tier::InventoryHost,
            Tier::Play,
            Tier::Extra,
        ] {
            assert!(
                matches!(
                    layers[t as usize][&format!("t{}", t as usize)],
                    VarValue::Template(_)
                ),
                "{t:?}"
            );
        }
        assert!(matches!(
            layers[Tier::Runtime as usize]["registered"],
            VarValue::Data(_)
        ));
        assert!(matches!(
            layers[Tier::InventoryHost as usize]["marked"],
            VarValue::Data(_)
        ));
    }
}
