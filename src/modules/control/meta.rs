//! `meta`: controls the run itself (`flush_handlers`, `end_play`...). Owns the actions rdeploy
//! knows, their load-time check and the action a task names; the executor carries it out.

use crate::diag::{Diagnostic, did_you_mean};
use crate::modules::runtime::{Args, ArgsExt, ModuleError};
use crate::modules::spec::ArgsRef;

crate::module_args! {
    /// Controls the run itself: `flush_handlers`, `end_play`, `end_host`, `noop`,
    /// `clear_facts`, `refresh_inventory` or `reset_connection` (free-form).
    #[module(
        name = "meta",
        free_form = true,
        check_args = meta_action,
        backup = "Runs on the controller and changes nothing on the hosts: nothing to back up.",
        examples = "- meta: flush_handlers"
    )]
    pub struct MetaArgs {}
}

/// The actions `meta` accepts.
pub const META_ACTIONS: &[&str] = &[
    "flush_handlers",
    "end_play",
    "end_host",
    "noop",
    "clear_facts",
    "refresh_inventory",
    "reset_connection",
];

/// The action a `meta` task names (its free-form text, rendered); one rdeploy does not know
/// is an error, with Ansible's message.
pub fn action(args: &Args) -> Result<String, ModuleError> {
    MetaArgs::parse(args)?;
    let what = args
        .str_arg(crate::modules::system::common::FREE_FORM)
        .unwrap_or_default();
    let what = what.trim();
    if META_ACTIONS.contains(&what) {
        Ok(what.to_string())
    } else {
        Err(ModuleError::Args(format!(
            "invalid meta action requested: {what}"
        )))
    }
}

/// The free-form text names a known action (a template is checked when it is rendered).
fn meta_action(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let Some(ff) = a.free_form else {
        return vec![Diagnostic::at(
            a.module_loc,
            format!(
                "module 'meta' needs an action: one of {}",
                META_ACTIONS.join(", ")
            ),
        )];
    };
    if crate::modules::spec::is_template(ff) {
        return Vec::new();
    }
    let text = ff.scalar_string().unwrap_or_default();
    let text = text.trim();
    if META_ACTIONS.contains(&text) {
        return Vec::new();
    }
    let msg = match did_you_mean(text, META_ACTIONS.iter().copied()) {
        Some(s) => format!("unknown meta action '{text}', did you mean '{s}'?"),
        None => format!(
            "unknown meta action '{text}', expected one of: {}",
            META_ACTIONS.join(", ")
        ),
    };
    vec![Diagnostic::at(&ff.loc, msg)]
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn args(v: Value) -> Args {
        match v {
            Value::Object(m) => m,
            _ => Args::new(),
        }
    }

    #[test]
    fn meta_names_its_action_and_refuses_one_rendered_to_nothing_known() {
        assert_eq!(
            action(&args(json!({"_raw_params": " end_host\n"}))).unwrap(),
            "end_host"
        );
        let e = action(&args(json!({"_raw_params": "end_world"}))).unwrap_err();
        assert_eq!(e.to_string(), "invalid meta action requested: end_world");
        let e = action(&args(json!({"_raw_params": "noop", "x": 1}))).unwrap_err();
        assert!(e.to_string().contains("not supported by rdeploy"), "{e}");
    }
}
