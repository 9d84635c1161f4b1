//! File-shaped modules: copy, template, file, lineinfile, blockinfile, replace, stat, find, slurp.
//!
//! Owns their `check`/`apply` (one file per module; shared helpers in `common`, Python regex
//! semantics in `pyre`). Must not format shell lines (use `transport::cmd`), and must not read
//! the run mode.

pub(crate) mod blockinfile;
pub(crate) mod common;
pub(crate) mod copy;
pub(crate) mod file;
pub(crate) mod find;
pub(crate) mod ini_file;
pub(crate) mod lineinfile;
pub mod pyre;
pub(crate) mod replace;
pub(crate) mod slurp;
pub(crate) mod stat;

#[cfg(test)]
mod scripted_tests;
#[cfg(test)]
mod tests;
