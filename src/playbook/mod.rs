//! Playbooks: Ansible's language (plus rdeploy's rollout keywords) read into a typed model.
//!
//! Owns reading playbook, task, role and vars files ([`load`]), validating every keyword and
//! module argument with positioned errors (all of them, never just the first), and the typed
//! model ([`model`]) that later stages consume. The YAML tree is the raw form; the model is
//! the evaluated form; only the model leaves this module. Play keywords written as templates
//! are kept in [`Play::deferred`] for `resolve` to render. It must not render templates,
//! consult the inventory or touch hosts.
//!
//! Decisions worth knowing:
//! - `action:` and `local_action:` are accepted (`local_action` = `delegate_to: localhost`).
//! - `with_items` and `with_list` are loops; every other `with_*` is refused.
//! - Real Ansible keywords rdeploy does not implement (`async`, `poll`, `connection`,
//!   `module_defaults`, `strategy` other than `linear`...) are errors, never
//!   silently ignored. `collections` is the search list for module names without a
//!   collection (after rdeploy's own modules).
//! - Role entries' extra keys are role parameters, unless they are one typo away from a
//!   keyword (then they are reported as unknown role keywords).

pub mod args;
pub mod keywords;
pub mod load;
pub mod model;
pub mod probe;
pub mod roles;
pub mod tasks;
pub mod values;

pub use load::{LoadOptions, load};
pub use model::*;

#[cfg(test)]
mod tests;
