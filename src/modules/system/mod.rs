//! Command and system modules: command, shell, script, raw, service/systemd,
//! package/apt/dnf, wait_for, fetch, unarchive, get_url, ping, getent, git, known_hosts, the
//! language package managers (pip, npm, gem) and other systems' package managers (pacman,
//! zypper, pkgng, openbsd_pkg, zypper_repository).
//!
//! Owns their `check`/`apply`. Must not format shell lines (use `transport::cmd`), and must
//! not read the run mode. Free-form text (`command: ls -l`, `shell: |`) reaches these modules
//! under the argument [`common::FREE_FORM`] (`_raw_params`), or as `cmd`.

pub mod accounts;
pub mod apt_key;
pub mod apt_repository;
pub mod authorized_key;
pub mod command;
pub mod common;
pub mod cron;
pub mod deb822_repository;
pub mod debconf;
pub mod fetch;
pub mod firewalld;
pub mod gem;
pub mod get_url;
pub mod getent;
pub mod git;
pub mod group;
pub mod haproxy;
pub mod hostname;
pub mod known_hosts;
pub mod modprobe;
pub mod mount;
pub mod npm;
pub mod openbsd_pkg;
pub mod ospkg;
pub mod package;
pub mod package_facts;
pub mod pacman;
pub mod pip;
pub mod pkgng;
pub mod repofile;
pub mod rpm_key;
pub mod seboolean;
pub mod selinux;
pub mod service;
pub mod service_facts;
pub mod sysctl;
pub mod timezone;
pub mod ufw;
pub mod unarchive;
pub mod user;
pub mod wait_for;
pub mod yum_repository;
pub mod zypper;
pub mod zypper_repository;

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests {
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
            "pip",
            "npm",
            "gem",
            "pacman",
            "zypper",
            "pkgng",
            "openbsd_pkg",
            "zypper_repository",
            "yum_repository",
            "apt_repository",
            "deb822_repository",
            "apt_key",
            "rpm_key",
            "user",
            "group",
            "hostname",
            "timezone",
            "getent",
            "git",
        ];
        for n in names {
            let m = crate::modules::implementation(n).map(|m| m.name());
            assert_eq!(m, Some(n));
            assert!(crate::modules::lookup(n).is_some(), "{n} has no spec");
            let full = format!("ansible.builtin.{n}");
            assert!(crate::modules::implementation(&full).is_some(), "{full}");
        }
    }
}
