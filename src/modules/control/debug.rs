//! `debug`: prints a message or the value of an expression in the run report. Owns its
//! arguments and what it reports; must not touch the host.

use serde_json::{Map, Value};

use crate::modules::runtime::{Args, ModuleError};

crate::module_args! {
    /// Prints a message (`msg`) or the value of a variable expression (`var`, bare Jinja) in
    /// the run report.
    #[module(name = "debug", check_args = crate::modules::builtin::msg_xor_var)]
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
