//! `group_by`: puts the host in a group for the rest of the run. Owns its arguments and the
//! group and parent names (spaces become `-`, as Ansible's); the executor changes the inventory.

use serde_json::{Map, Value};

use crate::modules::runtime::{Args, ModuleError};

crate::module_args! {
    /// Puts each host in a group named by `key` (usually a template such as
    /// `os_{{ ansible_distribution }}`) for the rest of the run; later plays can target the
    /// group.
    #[module(
        name = "group_by",
        backup = "Runs on the controller and changes nothing on the hosts: nothing to back up. The groups last for this run only.",
        returns = &[("add_group", "the group made"), ("parent_groups", "its parents")],
        examples = "- group_by:\n    key: \"os_{{ ansible_facts.os_family }}\"\n    parents: [linux]"
    )]
    pub struct GroupByArgs {
        /// The group's name (spaces become `-`).
        #[arg(required)]
        key: String,
        /// The group's parent groups.
        #[arg(default = "all")]
        parents: Vec<String>,
    }
}

/// The result key naming the group (Ansible's).
pub const ADD_GROUP: &str = "add_group";

/// The result: `add_group` and `parent_groups`; the executor adds the host to them.
pub fn result(args: &Args) -> Result<Map<String, Value>, ModuleError> {
    let a = GroupByArgs::parse(args)?;
    let parents = if a.parents.is_empty() {
        vec!["all".to_string()]
    } else {
        a.parents
    };
    let mut r = Map::new();
    r.insert("changed".into(), Value::Bool(false));
    r.insert(ADD_GROUP.into(), Value::from(a.key.replace(' ', "-")));
    r.insert(
        "parent_groups".into(),
        Value::from(
            parents
                .iter()
                .map(|p| p.replace(' ', "-"))
                .collect::<Vec<_>>(),
        ),
    );
    Ok(r)
}
