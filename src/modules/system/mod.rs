//! Command and system modules: command, shell, script, raw, service/systemd,
//! package/apt/dnf, wait_for, fetch, unarchive, get_url, ping.
//!
//! Owns their `check`/`apply`. Must not format shell lines (use `transport::cmd`), and must
//! not read the run mode. Free-form text (`command: ls -l`, `shell: |`) reaches these modules
//! under the argument [`common::FREE_FORM`] (`_raw_params`), or as `cmd`.

pub mod command;
pub mod common;
pub mod fetch;
pub mod get_url;
pub mod package;
pub mod service;
pub mod unarchive;
pub mod wait_for;

#[cfg(test)]
mod testutil;

use super::runtime::Module;

/// The system module registered under `name`, if it is one of these.
pub fn lookup(name: &str) -> Option<&'static dyn Module> {
    Some(match name {
        "command" => &command::Command,
        "shell" => &command::Shell,
        "raw" => &command::Raw,
        "script" => &command::Script,
        "service" => &service::Service,
        "systemd" => &service::Systemd,
        "package" => &package::Package,
        "apt" => &package::Apt,
        "dnf" => &package::Dnf,
        "wait_for" => &wait_for::WaitFor,
        "ping" => &wait_for::Ping,
        "fetch" => &fetch::Fetch,
        "get_url" => &get_url::GetUrl,
        "unarchive" => &unarchive::Unarchive,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_is_registered_under_its_spec_name() {
        let names = [
            "command",
            "shell",
            "raw",
            "script",
            "service",
            "systemd",
            "package",
            "apt",
            "dnf",
            "wait_for",
            "ping",
            "fetch",
            "get_url",
            "unarchive",
        ];
        for n in names {
            let m = lookup(n).map(|m| m.name());
            assert_eq!(m, Some(n));
            assert!(crate::modules::lookup(n).is_some(), "{n} has no spec");
            let full = format!("ansible.builtin.{n}");
            assert!(crate::modules::implementation(&full).is_some(), "{full}");
        }
        assert!(lookup("copy").is_none());
    }
}
