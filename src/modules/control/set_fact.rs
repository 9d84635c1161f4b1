//! `set_fact`: sets host variables for the rest of the run. Owns its arguments (any variable
//! name, plus `cacheable`), the load-time check of the names and the facts it returns; the
//! executor stores them on the host.

use serde_json::{Map, Value};

use crate::diag::Diagnostic;
use crate::modules::runtime::{Args, ModuleError};
use crate::modules::spec::ArgsRef;

crate::module_args! {
    /// Sets host variables (any keys) for the rest of the run; values are templates. With
    /// `cacheable: true` they are also host facts (`ansible_facts.NAME`), as in Ansible (which
    /// also writes them to its fact cache; rdeploy keeps none between runs).
    #[module(
        name = "set_fact",
        open_args = true,
        check_args = set_fact_keys,
        backup = "Runs on the controller and changes nothing on the hosts: nothing to back up.",
        returns = &[("ansible_facts", "the facts set")],
        examples = "- set_fact:\n    release_dir: \"/srv/app/releases/{{ app_version }}\"\n    cacheable: true"
    )]
    pub struct SetFactArgs {
        /// Also make them host facts (`ansible_facts.NAME`).
        #[arg(default = "no")]
        cacheable: bool,
    }
}

/// What a `set_fact` task sets.
pub struct Facts {
    /// The variables, by name.
    pub facts: Map<String, Value>,
    /// Whether they are also host facts (`ansible_facts.NAME`).
    pub cacheable: bool,
}

/// The variables a `set_fact` task sets (every argument but `cacheable`); none is an error, as
/// in Ansible.
pub fn facts(args: &Args) -> Result<Facts, ModuleError> {
    let a = SetFactArgs::parse(args)?;
    let facts: Map<String, Value> = args
        .iter()
        .filter(|(k, _)| k.as_str() != "cacheable")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if facts.is_empty() {
        return Err(ModuleError::Args(
            "No key/value pairs provided, at least one is required for this action to succeed"
                .into(),
        ));
    }
    Ok(Facts {
        facts,
        cacheable: a.cacheable,
    })
}

/// Every key is a valid variable name (a templated one is checked when it is rendered), and
/// there is at least one.
fn set_fact_keys(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut any = false;
    for (k, v) in a.args {
        if k == "cacheable" {
            continue;
        }
        any = true;
        // A templated key is rendered, and checked, per host when the task runs.
        if !crate::playbook::keywords::is_identifier(k) && !crate::template::has_template(k) {
            out.push(Diagnostic::at(
                &v.loc,
                format!("'{k}' is not a valid variable name for set_fact"),
            ));
        }
    }
    if !any {
        out.push(Diagnostic::at(
            a.module_loc,
            "module 'set_fact' needs at least one variable to set",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(v: Value) -> Args {
        match v {
            Value::Object(m) => m,
            _ => Args::new(),
        }
    }

    #[test]
    fn set_fact_sets_every_key_but_cacheable() {
        let f = facts(&args(json!({"a": 1, "b": [2], "cacheable": "yes"}))).unwrap();
        assert_eq!(Value::Object(f.facts), json!({"a": 1, "b": [2]}));
        assert!(f.cacheable);
        let f = facts(&args(json!({"a": 1}))).unwrap();
        assert!(!f.cacheable);
    }

    #[test]
    fn set_fact_without_a_variable_fails_as_ansible() {
        let e = facts(&args(json!({"cacheable": true}))).err().unwrap();
        assert_eq!(
            e.to_string(),
            "No key/value pairs provided, at least one is required for this action to succeed"
        );
        let e = facts(&args(json!({"a": 1, "cacheable": "maybe"})))
            .err()
            .unwrap();
        assert!(e.to_string().contains("'cacheable'"), "{e}");
    }
}
