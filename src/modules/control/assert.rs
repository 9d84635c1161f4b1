//! `assert`: fails the host unless every expression in `that` is true. Owns its arguments, the
//! order of evaluation and the messages; the executor hands in the expression evaluator.

use serde_json::{Map, Value};

use crate::modules::runtime::{Args, ModuleError};

crate::module_args! {
    /// Fails the host unless every expression in `that` is true. The expressions are bare
    /// Jinja, as in `when`.
    #[module(
        name = "assert",
        backup = "Runs on the controller and changes nothing on the hosts: nothing to back up.",
        returns = &[
            ("msg", "success_msg, or fail_msg when an expression is false"),
            ("assertion", "the first false expression"),
            ("evaluated_to", "false, beside assertion"),
        ],
        examples = "- assert:\n    that:\n      - app_port | int > 1024\n      - app_env in ['staging', 'production']\n    fail_msg: \"bad app settings\"\n    quiet: true"
    )]
    pub struct AssertArgs {
        /// An expression or a list of expressions that must all be true.
        #[arg(required, kind = List)]
        that: Value,
        /// Message when an expression is false.
        #[arg(aliases = &["msg"], default = "Assertion failed")]
        fail_msg: String,
        /// Message when all expressions are true.
        #[arg(default = "All assertions passed")]
        success_msg: String,
        /// Do not print the success message.
        #[arg(default = "no")]
        quiet: bool,
    }
}

/// What the assertion concluded.
pub enum Verdict {
    /// All true: the result, and whether to show it.
    Passed(Map<String, Value>, bool),
    /// One was false: the message and the result.
    Failed(String, Map<String, Value>),
}

/// Evaluates `that` in order with `eval` (an expression's text → its truth, or why it could not
/// be evaluated); the first false one fails.
pub fn judge(
    args: &Args,
    eval: &dyn Fn(&str) -> Result<bool, String>,
) -> Result<Verdict, ModuleError> {
    let a = AssertArgs::parse(args)?;
    let that = match a.that {
        Value::Array(items) => items,
        other => vec![other],
    };
    for cond in that {
        let ok = match &cond {
            Value::Bool(b) => *b,
            Value::String(s) => eval(s).map_err(ModuleError::Args)?,
            other => {
                return Err(ModuleError::Args(format!(
                    "assert: cannot evaluate {other}"
                )));
            }
        };
        if !ok {
            let mut r = Map::new();
            r.insert("msg".into(), Value::from(a.fail_msg.clone()));
            r.insert("assertion".into(), cond);
            r.insert("evaluated_to".into(), Value::Bool(false));
            return Ok(Verdict::Failed(a.fail_msg, r));
        }
    }
    let mut r = Map::new();
    r.insert("msg".into(), Value::from(a.success_msg));
    Ok(Verdict::Passed(r, !a.quiet))
}
