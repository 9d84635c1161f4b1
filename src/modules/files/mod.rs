//! File-shaped modules: copy, template, file, lineinfile, blockinfile, replace, stat, find.
//!
//! Owns their `check`/`apply` (one file per module; shared helpers in `common`, Python regex
//! semantics in `pyre`). Must not format shell lines (use `transport::cmd`), and must not read
//! the run mode.

mod blockinfile;
pub(crate) mod common;
mod copy;
mod file;
mod find;
mod lineinfile;
pub mod pyre;
mod replace;
mod stat;

#[cfg(test)]
mod tests;

use super::runtime::Module;

/// The file module registered under `name`, if it is one of these.
pub fn lookup(name: &str) -> Option<&'static dyn Module> {
    Some(match name {
        "copy" => &copy::Copy,
        "template" => &copy::Template,
        "file" => &file::File,
        "lineinfile" => &lineinfile::LineInFile,
        "blockinfile" => &blockinfile::BlockInFile,
        "replace" => &replace::Replace,
        "stat" => &stat::Stat,
        "find" => &find::Find,
        _ => return None,
    })
}
