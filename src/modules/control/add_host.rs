//! `add_host`: adds a host (and its groups) to the inventory for the rest of the run. Owns its
//! arguments and, as Ansible's action, the new host's name, port, groups and variables; the
//! executor changes the inventory and decides `changed`.

use serde_json::{Map, Value};

use crate::modules::runtime::{Args, ModuleError};

crate::module_args! {
    /// Adds a host (and its groups) to the inventory for the rest of the run, once per task
    /// (not per host; once per item in a loop). Every other argument becomes a host variable
    /// (`ansible_host`, `ansible_port`, `ansible_user`, `ansible_connection`...); a later
    /// play's `hosts:` reaches the host, which gets its own connection then.
    #[module(
        name = "add_host",
        open_args = true,
        backup = "Runs on the controller and changes nothing on the hosts: nothing to back up. The added host lasts for this run only.",
        returns = &[("add_host", "the host's name, groups and variables")],
        examples = "- add_host:\n    name: \"{{ new_ip }}\"\n    groups: [web]\n    ansible_user: deploy"
    )]
    pub struct AddHostArgs {
        /// The host's name, optionally `NAME:PORT`.
        #[arg(aliases = &["hostname", "host"], required)]
        name: Option<String>,
        /// Groups to put the host in (a list, or names separated by `,`).
        #[arg(aliases = &["group", "groupname"], kind = List)]
        groups: Value,
    }
}

/// The result key of `add_host` (Ansible's).
pub const ADD_HOST: &str = "add_host";

/// The names Ansible does not pass on as host variables (`host` and `group` are not among
/// them, so given under those names they stay variables too).
const SPECIAL: &[&str] = &["name", "hostname", "groupname", "groups"];

/// `add_host`, as Ansible's action: the new host's name (a `:port` becomes `ansible_ssh_port`),
/// its groups (a list, or a string split on `,`) and every other argument as a host variable,
/// under [`ADD_HOST`] (`host_name`, `groups`, `host_vars`).
pub fn result(args: &Args) -> Result<Map<String, Value>, ModuleError> {
    let mut args = args.clone();
    if let Some(Value::Object(raw)) = args.remove(crate::modules::system::common::FREE_FORM) {
        for (k, v) in raw {
            args.entry(k).or_insert(v);
        }
    }
    // Ansible reads the first of each argument's spellings that is given.
    let mut named = args.clone();
    for (canonical, spellings) in [
        ("name", ["name", "hostname", "host"]),
        ("groups", ["groupname", "groups", "group"]),
    ] {
        if let Some(v) = spellings
            .iter()
            .find_map(|k| args.get(*k).filter(|v| !v.is_null()))
        {
            named.insert(canonical.into(), v.clone());
        }
    }
    let a = AddHostArgs::parse(&named)?;
    let Some(given) = a.name else {
        return Err(ModuleError::Args(
            "name, host or hostname needs to be provided".into(),
        ));
    };
    let (name, port) = crate::inventory::address::parse_address(&given)
        .filter(|(n, _)| !n.contains('['))
        .unwrap_or((given.clone(), None));
    let groups: Vec<String> = match a.groups {
        Value::Null => Vec::new(),
        Value::String(s) => s.split(',').map(|g| g.trim().to_string()).collect(),
        Value::Array(items) => items
            .iter()
            .map(|g| match g {
                Value::String(s) => s.trim().to_string(),
                other => other.to_string(),
            })
            .collect(),
        _ => {
            return Err(ModuleError::Args(
                "Groups must be specified as a list.".into(),
            ));
        }
    };
    let mut unique: Vec<String> = Vec::new();
    for g in groups.into_iter().filter(|g| !g.is_empty()) {
        if !unique.contains(&g) {
            unique.push(g);
        }
    }
    let mut host_vars: Map<String, Value> = args
        .into_iter()
        .filter(|(k, _)| !SPECIAL.contains(&k.as_str()))
        .collect();
    if let Some(p) = port {
        // As Ansible; the executor also sets `ansible_port`, which rdeploy's connection reads.
        host_vars.insert("ansible_ssh_port".into(), Value::from(p));
    }
    let mut r = Map::new();
    r.insert("changed".into(), Value::Bool(false));
    r.insert(
        ADD_HOST.into(),
        serde_json::json!({ "host_name": name, "groups": unique, "host_vars": host_vars }),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn added(v: Value) -> Result<Value, String> {
        let Value::Object(a) = v else {
            return Err("not a mapping".into());
        };
        result(&a)
            .map(|mut r| r.remove(ADD_HOST).unwrap_or(Value::Null))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn add_host_splits_the_port_groups_and_variables_as_ansible() {
        assert_eq!(
            added(json!({"name": "db1:2222", "groups": "a, b,a", "ansible_user": "u"})),
            Ok(json!({
                "host_name": "db1",
                "groups": ["a", "b"],
                "host_vars": {"ansible_user": "u", "ansible_ssh_port": 2222}
            }))
        );
        assert_eq!(
            added(json!({"host": "h", "group": ["g"]})),
            Ok(
                json!({"host_name": "h", "groups": ["g"], "host_vars": {"host": "h", "group": ["g"]}})
            )
        );
    }

    #[test]
    fn add_host_without_a_name_or_with_bad_groups_fails_with_ansibles_message() {
        assert_eq!(
            added(json!({"groups": ["g"]})),
            Err("name, host or hostname needs to be provided".into())
        );
        assert_eq!(
            added(json!({"name": "h", "groups": {"g": 1}})),
            Err("Groups must be specified as a list.".into())
        );
    }
}
