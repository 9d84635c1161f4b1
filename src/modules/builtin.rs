//! The table of built-in module specifications (the `ansible.builtin` subset rdeploy runs).
//!
//! Owns each module's argument list, its one-paragraph doc and its own argument check. It must
//! not implement the modules: `check`/`apply` live in one file per module elsewhere.

use super::spec::{ArgKind::*, ArgSpec as A, ArgsRef, ModuleSpec};
use crate::diag::Diagnostic;

/// Every module rdeploy knows, in alphabetical order.
pub static MODULES: &[ModuleSpec] = &[
    ModuleSpec {
        name: "apt",
        doc: "Manages packages with apt on Debian and Ubuntu hosts.",
        free_form: false,
        open_args: false,
        args: &[
            A::new(
                "name",
                "Package name(s), optionally with a version (`nginx=1.24*`).",
            )
            .aliases(&["package", "pkg"])
            .kind(List),
            A::new(
                "state",
                "Whether the packages are installed, removed or at the latest version.",
            )
            .default("present")
            .choices(&["present", "absent", "latest"]),
            A::new("update_cache", "Run `apt-get update` first.")
                .aliases(&["update-cache"])
                .kind(Bool)
                .default("no"),
            A::new(
                "default_release",
                "Install and upgrade from this release (`apt-get -t RELEASE`, e.g. `bookworm-backports`).",
            )
            .aliases(&["default-release"]),
            A::new(
                "install_recommends",
                "`yes`/`no`: install recommended packages too, or not; unset follows the host's apt configuration.",
            )
            .aliases(&["install-recommends"])
            .kind(Bool),
            A::new(
                "allow_downgrade",
                "Allow installing an older version than the installed one (`--allow-downgrades`).",
            )
            .aliases(&["allow-downgrade", "allow_downgrades", "allow-downgrades"])
            .kind(Bool)
            .default("no"),
            A::new(
                "cache_valid_time",
                "Skip the cache update if it is younger than this many seconds.",
            )
            .kind(Int)
            .default("0"),
            A::new(
                "only_upgrade",
                "Only upgrade the named packages that are installed; install none.",
            )
            .kind(Bool)
            .default("no"),
            A::new(
                "upgrade",
                "Upgrade the whole system: `yes`/`safe` is `apt-get upgrade --with-new-pkgs`, `full`/`dist` is `apt-get dist-upgrade` (rdeploy does not use aptitude). A change when the simulation (`apt-get -s`) would install or remove something. Not reversible.",
            )
            .default("no")
            .choices(&["no", "yes", "safe", "full", "dist"]),
            A::new(
                "autoremove",
                "Remove packages installed as dependencies that nothing needs any more (`apt-get autoremove`), after the rest. Not reversible.",
            )
            .kind(Bool)
            .default("no"),
            A::new(
                "deb",
                "Path on the host of a `.deb` to install (with its dependencies, `apt-get install FILE`) unless that version of its package is installed; a URL is not supported (download it with `get_url`). Not reversible.",
            )
            .kind(Path),
        ],
        check_args: Some(name_or_update_cache),
        backup: "Each named package's installed version (or its absence) is recorded; rollback reinstalls that version with `apt-get install --allow-downgrades NAME=VERSION`, or removes a package the step installed. The apt cache is not restored.",
        returns: &[("cache_updated", "whether the cache was updated"), ("cache_update_time", "when the cache was last updated (unix time)"), ("stdout", "apt-get's output"), ("stderr", "apt-get's errors")],
        examples: "- apt:\n    name: [nginx, curl]\n    state: present\n    update_cache: true\n    cache_valid_time: 3600",
    },
    ModuleSpec {
        name: "dnf",
        doc: "Manages packages with dnf on Fedora, RHEL and derivatives. Also called `yum`, as ansible-core 2.19 redirects it.",
        free_form: false,
        open_args: false,
        args: &[
            A::new("name", "Package name(s) or specs.")
                .aliases(&["pkg"])
                .kind(List),
            A::new(
                "state",
                "Whether the packages are installed, removed or at the latest version.",
            )
            .default("present")
            .choices(&["present", "absent", "latest", "installed", "removed"]),
            A::new("update_cache", "Refresh the metadata first.")
                .aliases(&["expire-cache"])
                .kind(Bool)
                .default("no"),
            A::new("enablerepo", "Repositories to enable for this task (`--enablerepo`).")
                .kind(List),
            A::new("disablerepo", "Repositories to disable for this task (`--disablerepo`).")
                .kind(List),
            A::new(
                "allowerasing",
                "Let dnf remove installed packages to resolve conflicts (`--allowerasing`).",
            )
            .kind(Bool)
            .default("no"),
        ],
        check_args: Some(name_or_update_cache),
        backup: "Each named package's installed version (or its absence) is recorded; rollback installs that version again with `dnf install NAME-VERSION`, or removes a package the step installed.",
        returns: &[("results", "what dnf did"), ("rc", "dnf's exit status"), ("msg", "what happened")],
        examples: "- dnf:\n    name: [nginx, git]\n    state: latest\n    enablerepo: epel",
    },
    ModuleSpec {
        name: "package",
        doc: "Manages packages with the host's package manager (apt or dnf, detected on the host; on a host with pacman, zypper, FreeBSD's pkg or OpenBSD's pkg_add instead, the common subset `name`, `state`, `update_cache` goes to that manager as the `pacman`, `zypper`, `pkgng` or `openbsd_pkg` module runs it). `update_cache` alone refreshes the manager's cache, as Ansible's `package` does through apt or dnf. Like Ansible's, it passes the manager's own arguments on (`cache_valid_time`, `allow_downgrade` to apt; `enablerepo`, `disablerepo` to dnf); the other manager's fail the task, as Ansible's apt or dnf refuses them.",
        free_form: false,
        open_args: false,
        args: &[
            A::new("name", "Package name(s).")
                .aliases(&["pkg"])
                .kind(List),
            A::new(
                "state",
                "Whether the packages are installed, removed or at the latest version.",
            )
            .default("present")
            .choices(&["present", "absent", "latest"]),
            A::new(
                "update_cache",
                "Refresh the cache first (`apt-get update`, `dnf makecache`).",
            )
            .aliases(&["update-cache"])
            .kind(Bool)
            .default("no"),
            A::new(
                "cache_valid_time",
                "Passed on to apt, as Ansible's `package` does: with `update_cache`, refresh only a cache older than this many seconds. A dnf host fails the task, as Ansible's dnf refuses it.",
            )
            .kind(Int)
            .default("0"),
            A::new(
                "allow_downgrade",
                "Passed on to apt (`--allow-downgrades`); a dnf host fails the task (not carried for dnf by rdeploy).",
            )
            .kind(Bool)
            .default("no"),
            A::new(
                "enablerepo",
                "Passed on to dnf (`--enablerepo`); an apt host fails the task, as Ansible's apt refuses it.",
            )
            .kind(List),
            A::new(
                "disablerepo",
                "Passed on to dnf (`--disablerepo`); an apt host fails the task, as Ansible's apt refuses it.",
            )
            .kind(List),
        ],
        check_args: Some(name_or_update_cache),
        backup: "As the manager it picks (`apt` or `dnf`): each named package's installed version is recorded and rollback puts it back. On a pacman, zypper, pkg or OpenBSD host the version is recorded (rpm) or not, but rollback cannot put it back (its restore uses apt or dnf and reports the package as not restored).",
        returns: &[("results", "what the manager did"), ("msg", "what happened")],
        examples: "- package:\n    name: git\n    state: present",
    },
];

fn err(a: &ArgsRef<'_>, msg: String) -> Vec<Diagnostic> {
    vec![Diagnostic::at(a.module_loc, msg)]
}

fn exclusive(a: &ArgsRef<'_>, x: &str, y: &str) -> Vec<Diagnostic> {
    if a.has(x) && a.has(y) {
        err(
            a,
            format!(
                "arguments '{x}' and '{y}' of module '{}' are mutually exclusive",
                a.module
            ),
        )
    } else {
        Vec::new()
    }
}

/// `msg` and `var` exclude each other (`debug`).
pub(crate) fn msg_xor_var(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    exclusive(a, "msg", "var")
}

/// `pause`: `seconds` or `minutes`, not both; one of them (waiting for a keypress is not
/// supported).
pub fn pause_check(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let mut out = exclusive(a, "seconds", "minutes");
    if !a.has("seconds") && !a.has("minutes") {
        out.extend(err(
            a,
            "module 'pause' without seconds or minutes waits for a keypress, which is not supported by rdeploy; give seconds: or minutes: (or an approval gate)".into(),
        ));
    }
    out
}

fn name_or_update_cache(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let apt_alone = ["upgrade", "autoremove", "deb"].iter().any(|k| a.has(k));
    if !a.has("name") && !a.has("update_cache") && !apt_alone {
        err(
            a,
            format!("module '{}' needs 'name' or 'update_cache'", a.module),
        )
    } else {
        Vec::new()
    }
}
