//! `fail`: fails the host with a message. Owns its arguments and the message; must not touch
//! the host.

use crate::modules::runtime::{Args, ModuleError};

crate::module_args! {
    /// Fails the host with a message; usually guarded by `when`.
    #[module(name = "fail")]
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
