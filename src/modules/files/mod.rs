//! File-shaped modules: copy, template, file, lineinfile, blockinfile, replace, stat, find.
//!
//! Owns their `check`/`apply`. Must not format shell lines (use `transport::cmd`), and must
//! not read the run mode.

use super::runtime::Module;

/// The file module registered under `name`, if it is one of these.
pub fn lookup(name: &str) -> Option<&'static dyn Module> {
    let _ = name;
    None
}
