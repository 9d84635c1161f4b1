//! Command and system modules: command, shell, script, raw, service/systemd,
//! package/apt/dnf, wait_for, fetch, unarchive, get_url, ping.
//!
//! Owns their `check`/`apply`. Must not format shell lines (use `transport::cmd`), and must
//! not read the run mode.

use super::runtime::Module;

/// The system module registered under `name`, if it is one of these.
pub fn lookup(name: &str) -> Option<&'static dyn Module> {
    let _ = name;
    None
}
