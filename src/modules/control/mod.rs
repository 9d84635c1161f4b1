//! Controller-side modules: actions that run in rdeploy itself, not on the host (`add_host`,
//! `assert`, `debug`, `fail`, `group_by`, `include_vars`, `meta`, `pause`, `set_fact`, `setup`,
//! `uri`, `validate_argument_spec`, `wait_for_connection`, and the specs of `include_*`/`import_*`).
//!
//! Owns each one's typed arguments (`module_args!`) and what it computes from them. Must not
//! reach the executor's state: the executor hands in what a module needs (the run's `-v`
//! level, an expression evaluator, the task's directories, the gathered facts) and turns the
//! result into a step (setting variables, changing the inventory, the run's flow).

pub mod add_host;
pub mod assert;
pub mod debug;
pub mod fail;
pub mod group_by;
pub mod include;
pub mod include_vars;
pub mod meta;
pub mod pause;
pub mod set_fact;
pub mod setup;
pub mod uri;
pub mod validate_argument_spec;
pub mod wait_for_connection;
