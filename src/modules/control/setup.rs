//! `setup` (and `gather_facts` as a task): gathers facts about the host. Owns its arguments, their load-time check, which fact
//! groups to gather and what of the gathered facts the result keeps; the executor opens the
//! connection (the host's or the delegate's), runs the gathering and stores the facts.

use serde_json::{Map, Value};

use crate::diag::Diagnostic;
use crate::exec::facts::{self, Group};
use crate::modules::runtime::{Args, ArgsExt, ModuleError};
use crate::modules::spec::{ArgKind, ArgSpec, ArgsRef};
use crate::modules::typed::ArgValue;

/// A list where one string is split on commas, as Ansible's `type='list'` does
/// (`gather_subset: min,network`); absent, the documented default as its one item.
#[derive(Debug, Clone, Default)]
struct CommaList(Vec<String>);

impl ArgValue for CommaList {
    const KIND: ArgKind = ArgKind::List;
    fn read(args: &Args, spec: &ArgSpec) -> Result<Self, ModuleError> {
        match (args.get(spec.name).filter(|v| !v.is_null()), spec.default) {
            (None, Some(d)) => Ok(CommaList(vec![d.to_string()])),
            _ => Ok(CommaList(args.list_arg(spec.name, true))),
        }
    }
}

crate::module_args! {
    /// Gathers facts about the host (`ansible_facts`); run implicitly by `gather_facts`.
    #[module(
        name = "setup",
        check_args = gather_subset_known,
        backup = "Changes nothing on the host: nothing to back up.",
        returns = &[("ansible_facts", "the facts gathered")],
        examples = "- setup:\n    gather_subset: [min, network]"
    )]
    pub struct SetupArgs {
        /// Fact groups to gather (`all`, `min`, `network`, `!hardware`...).
        #[arg(default = "all")]
        gather_subset: CommaList,
        /// Globs of fact names to keep.
        filter: CommaList,
        /// Seconds allowed for reading one mount's size (a hung network mount).
        #[arg(default = "10")]
        gather_timeout: i64,
    }
}

/// `gather_facts` as a task: Ansible's action that runs the fact modules, here `setup` itself
/// with the same arguments (Ansible's `parallel` has no use with one fact module and is not
/// supported).
pub const GATHER_FACTS: crate::modules::spec::ModuleSpec = crate::modules::spec::ModuleSpec {
    name: "gather_facts",
    doc: "Gathers facts about the host as a task, as the play's `gather_facts` does; the same as `setup`, with its arguments.",
    examples: "- gather_facts:\n    gather_subset: [min, network]",
    ..SetupArgs::SPEC
};

/// What a `setup` task gathers, and what of it the result keeps.
pub struct Gathering {
    /// The fact groups to gather.
    pub groups: Vec<Group>,
    /// `gather_timeout`: seconds for reading one mount's size.
    pub timeout: Option<u64>,
    /// The subsets asked for, as the result reports them.
    subset: Vec<String>,
    /// Globs of fact names to keep.
    filter: Vec<String>,
}

/// Reads the arguments: the groups `gather_subset` names (an unknown one is an error).
pub fn plan(args: &Args) -> Result<Gathering, ModuleError> {
    let a = SetupArgs::parse(args)?;
    let groups = facts::groups(&a.gather_subset.0).map_err(ModuleError::Args)?;
    Ok(Gathering {
        groups,
        timeout: u64::try_from(a.gather_timeout).ok(),
        subset: a.gather_subset.0,
        filter: a.filter.0,
    })
}

impl Gathering {
    /// The facts the result keeps of those gathered: those `filter` matches; without a filter,
    /// all of them with `gather_subset` and `module_setup`, as Ansible's.
    pub fn kept(&self, mut gathered: Map<String, Value>) -> Result<Map<String, Value>, String> {
        if self.filter.iter().all(|p| p.is_empty() || p == "*") {
            let asked = if self.subset.is_empty() {
                vec![Value::from("all")]
            } else {
                self.subset
                    .iter()
                    .map(|s| Value::from(s.as_str()))
                    .collect()
            };
            gathered.insert("gather_subset".into(), Value::Array(asked));
            gathered.insert("module_setup".into(), Value::Bool(true));
        }
        facts::filter(gathered, &self.filter)
    }
}

/// `gather_subset` names only subsets rdeploy gathers (or excludes any).
fn gather_subset_known(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let Some(n) = a.get("gather_subset") else {
        return Vec::new();
    };
    match facts::literal_subset(n).map(|s| facts::groups(&s)) {
        Some(Err(m)) => vec![Diagnostic::at(&n.loc, m)],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plan_of(v: Value) -> Result<Gathering, String> {
        let Value::Object(a) = v else {
            return Err("not a mapping".into());
        };
        plan(&a).map_err(|e| e.to_string())
    }

    #[test]
    fn setup_gathers_every_group_by_default_and_a_comma_list_of_subsets() {
        let g = plan_of(json!({})).unwrap();
        assert_eq!(g.groups.len(), 4);
        assert_eq!(g.timeout, Some(10));
        let g = plan_of(json!({"gather_subset": "min,network", "gather_timeout": "3"})).unwrap();
        assert_eq!(g.groups, vec![Group::Min, Group::Network]);
        assert_eq!(g.timeout, Some(3));
        assert!(plan_of(json!({"gather_subset": ["nope"]})).is_err());
        let e = plan_of(json!({"fact_path": "/etc/ansible/facts.d"}))
            .err()
            .unwrap();
        assert!(e.contains("not supported by rdeploy"), "{e}");
    }

    #[test]
    fn setup_keeps_what_filter_matches_and_says_what_was_asked_without_one() {
        let gathered = || {
            let Value::Object(m) = json!({"hostname": "h", "fqdn": "h.example"}) else {
                return Map::new();
            };
            m
        };
        let g = plan_of(json!({"gather_subset": "min"})).unwrap();
        assert_eq!(
            Value::Object(g.kept(gathered()).unwrap()),
            json!({"hostname": "h", "fqdn": "h.example", "gather_subset": ["min"], "module_setup": true})
        );
        let g = plan_of(json!({"filter": ["host*"]})).unwrap();
        assert_eq!(
            Value::Object(g.kept(gathered()).unwrap()),
            json!({"hostname": "h"})
        );
    }
}
