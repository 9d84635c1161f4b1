//! `debug`: prints a message or the value of an expression in the run report. Owns its
//! arguments and what it reports; must not touch the host.

use serde_json::{Map, Value};

use crate::modules::runtime::{Args, ModuleError};

crate::module_args! {
    /// Prints a message (`msg`) or the value of a variable expression (`var`, bare Jinja) in
    /// the run report.
    #[module(
        name = "debug",
        check_args = msg_xor_var,
        backup = "Runs on the controller and changes nothing on the hosts: nothing to back up.",
        returns = &[("msg", "the message printed")],
        examples = "- debug:\n    msg: \"deploying {{ app_version }} to {{ inventory_hostname }}\"\n- debug:\n    var: result.stdout_lines"
    )]
    pub struct DebugArgs {
        /// The message to print.
        #[arg(default = "Hello world!")]
        msg: Value,
        /// A variable expression to print (bare Jinja, no `{{ }}`).
        var: Option<String>,
        /// Print only at this `-v` level or above.
        #[arg(default = "0")]
        verbosity: i64,
    }
}

/// What `debug` reports.
pub enum Report {
    /// Skipped: the run's `-v` level is below `verbosity` (Ansible's reason).
    Skipped(&'static str),
    /// Printed: the result (`msg`, or the expression under its own text).
    Shown(Map<String, Value>),
}

/// What a `debug` task reports at `-v` level `verbosity`; `eval` evaluates `var` (None when
/// undefined or failing, printed as Ansible's "VARIABLE IS NOT DEFINED!").
pub fn run(
    args: &Args,
    verbosity: u8,
    eval: impl FnOnce(&str) -> Option<Value>,
) -> Result<Report, ModuleError> {
    let a = DebugArgs::parse(args)?;
    if a.verbosity > i64::from(verbosity) {
        return Ok(Report::Skipped("Verbosity threshold not met."));
    }
    let mut r = Map::new();
    match a.var {
        Some(var) => {
            let v = eval(&var).unwrap_or_else(|| Value::from("VARIABLE IS NOT DEFINED!"));
            r.insert(var, v);
        }
        None => {
            r.insert("msg".into(), a.msg);
        }
    }
    Ok(Report::Shown(r))
}

/// `msg` and `var` exclude each other.
fn msg_xor_var(a: &crate::modules::ArgsRef<'_>) -> Vec<crate::diag::Diagnostic> {
    a.exclusive("msg", "var")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn shown(args: Value) -> Value {
        let Value::Object(a) = args else {
            return Value::Null;
        };
        match run(&a, 0, |_| None) {
            Ok(Report::Shown(r)) => Value::Object(r),
            _ => Value::Null,
        }
    }

    #[test]
    fn debug_msg_null_prints_null_as_ansible_and_absent_prints_hello_world() {
        assert_eq!(shown(json!({"msg": null})), json!({"msg": null}));
        assert_eq!(shown(json!({})), json!({"msg": "Hello world!"}));
        assert_eq!(
            shown(json!({"var": "nope"})),
            json!({"nope": "VARIABLE IS NOT DEFINED!"})
        );
    }

    #[test]
    fn debug_verbosity_above_the_run_level_skips() {
        let Value::Object(a) = json!({"msg": "x", "verbosity": "2"}) else {
            return;
        };
        assert!(matches!(run(&a, 1, |_| None), Ok(Report::Skipped(_))));
        assert!(matches!(run(&a, 2, |_| None), Ok(Report::Shown(_))));
    }
}
