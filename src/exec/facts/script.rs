//! The read-only POSIX shell that collects facts: one fixed script per fact group, joined
//! into one command, so gathering is one round trip whatever `gather_subset` asks for. The
//! scripts are host programs, `src/host/sh/facts_*.sh` (see [`crate::host`]).
//!
//! Owns what is read on the host and how it is printed: `@@NAME` lines open sections of raw
//! file or command output, which [`super::parse`] reads. Trusted text written here: no value
//! from a playbook or a host ever becomes part of it. It must not change the host, and every
//! read is allowed to fail (a missing file or tool gives an empty section).

/// Prologue of every gathering: errors of missing tools are not facts, and `s NAME` opens a
/// section.
pub const PROLOGUE: &str = crate::host::FACTS_PROLOGUE;

/// The `min` group: platform, distribution, user, date and time, DNS, environment, LSB,
/// SELinux, package and service manager, Python.
pub const MIN: &str = crate::host::FACTS_MIN;

/// The `network` group: default routes, every interface under `/sys/class/net` with its
/// addresses (`ip addr`, primary and secondary as Ansible asks for them). Like Ansible, no
/// network facts at all on a host without `ip`.
pub const NETWORK: &str = crate::host::FACTS_NETWORK;

/// The `hardware` group: memory, processors, mounts (with their sizes; reading one mount's
/// size may take `gather_timeout` seconds, 10 by default, as in Ansible, so a hung network
/// mount does not hang the gathering).
pub const HARDWARE: &str = crate::host::FACTS_HARDWARE;

/// The `virtual` group: the signs Ansible's Linux virtualization check reads.
pub const VIRTUAL: &str = crate::host::FACTS_VIRTUAL;
