//! Controller-side modules: actions that run in rdeploy itself, not on the host (`assert`,
//! `debug`, `fail`, `group_by`, `pause`, `uri`, `validate_argument_spec`; the others are still
//! in `exec::actions` until they are converted).
//!
//! Owns each one's typed arguments (`module_args!`) and what it computes from them. Must not
//! reach the executor's state: the executor hands in what a module needs (the run's `-v`
//! level, an expression evaluator) and turns the result into a step.

pub mod assert;
pub mod debug;
pub mod fail;
pub mod group_by;
pub mod pause;
pub mod uri;
pub mod validate_argument_spec;
