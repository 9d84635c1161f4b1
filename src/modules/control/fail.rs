//! `fail`: fails the host with a message. Owns its arguments and the message; must not touch
//! the host.

use crate::modules::runtime::{Args, ModuleError};

crate::module_args! {
    /// Fails the host with a message; usually guarded by `when`.
    #[module(
        name = "fail",
        backup = "Runs on the controller and changes nothing on the hosts: nothing to back up.",
        returns = &[("msg", "the message")],
        examples = "- fail:\n    msg: \"app_version is required\"\n  when: app_version is not defined"
    )]
    pub struct FailArgs {
        /// The failure message.
        #[arg(default = "Failed as requested from task")]
        msg: String,
    }
}

/// The message the host fails with.
pub fn message(args: &Args) -> Result<String, ModuleError> {
    Ok(FailArgs::parse(args)?.msg)
}
