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
        name: "command",
        doc: "Runs a command on the host without a shell: no pipes, redirects or variable expansion. Give it free-form (`command: ls -l`), as `cmd`, or as an `argv` list. Not reversible unless the task has `creates`/`removes` or a `rollback:`.",
        free_form: true,
        open_args: false,
        args: &[
            A::new(
                "cmd",
                "The command line, split like a shell would split it.",
            ),
            A::new("argv", "The command as a list of arguments (no splitting).").kind(List),
            A::new("creates", "Skip the command if this path exists.").kind(Path),
            A::new("removes", "Run the command only if this path exists.").kind(Path),
            A::new("chdir", "Change into this directory first.").kind(Path),
            A::new("stdin", "Text written to the command's standard input."),
            A::new("stdin_add_newline", "Append a newline to `stdin`.")
                .kind(Bool)
                .default("yes"),
            A::new(
                "strip_empty_ends",
                "Strip empty lines from the ends of stdout/stderr.",
            )
            .kind(Bool)
            .default("yes"),
        ],
        check_args: Some(one_command),
        backup: "Nothing: a command's effect is unknown. With `creates:` the named path is backed up (rollback removes what the command created); with `removes:` that path is backed up. Otherwise not reversible: add a `rollback:` task.",
        returns: &[("rc", "exit status"), ("stdout", "output"), ("stderr", "errors"), ("stdout_lines", "output as lines"), ("cmd", "the command run"), ("start", "start time"), ("end", "end time"), ("delta", "run time")],
        examples: "- command: /opt/app/bin/migrate --to latest\n  args:\n    creates: /opt/app/.migrated",
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
    ModuleSpec {
        name: "ping",
        doc: "Checks that the host is reachable and can run commands; returns `data` (a list or mapping as Python's `str()` of it, as Ansible does).",
        free_form: false,
        open_args: false,
        args: &[A::new("data", "Value returned as `ping`.")
            .kind(Raw)
            .default("pong")],
        check_args: None,
        backup: "Changes nothing on the host: nothing to back up.",
        returns: &[("ping", "pong (or `data`)")],
        examples: "- ping:",
    },
    ModuleSpec {
        name: "raw",
        doc: "Sends a command line through the connection with no processing at all (free-form). Use it only where `command`/`shell` cannot run.",
        free_form: true,
        open_args: false,
        args: &[A::new("executable", "Shell used to run the line.").kind(Path)],
        check_args: Some(needs_free_form),
        backup: "Nothing: not reversible. Add a `rollback:` task.",
        returns: &[("rc", "exit status"), ("stdout", "output"), ("stderr", "errors")],
        examples: "- raw: test -e /usr/bin/python3 || (apt-get update && apt-get install -y python3)",
    },
    ModuleSpec {
        name: "script",
        doc: "Copies a script from the controller (role `files/` first) to the host and runs it; free-form `path args` or `cmd`.",
        free_form: true,
        open_args: false,
        args: &[
            A::new("cmd", "The script path and its arguments."),
            A::new(
                "creates",
                "Skip the script if this path exists on the host.",
            )
            .kind(Path),
            A::new(
                "removes",
                "Run the script only if this path exists on the host.",
            )
            .kind(Path),
            A::new("chdir", "Change into this directory on the host first.").kind(Path),
            A::new("executable", "Interpreter to run the script with.").kind(Path),
        ],
        check_args: Some(free_form_or_cmd),
        backup: "Nothing: a script's effect is unknown. With `creates:`/`removes:` the named path is backed up; otherwise not reversible: add a `rollback:` task.",
        returns: &[("rc", "exit status"), ("stdout", "output"), ("stderr", "errors")],
        examples: "- script: scripts/prepare.sh --fast\n  args:\n    creates: /srv/app/.prepared",
    },
    ModuleSpec {
        name: "service",
        doc: "Starts, stops, restarts or reloads a service and sets whether it starts at boot. On a host that runs systemd, `daemon_reload` (with or without `name`) runs `systemctl daemon-reload` first, as Ansible's `service` does through `systemd`.",
        free_form: false,
        open_args: false,
        args: &[
            A::new(
                "name",
                "The service (required unless only `daemon_reload` is given).",
            ),
            A::new("state", "What to do; `restarted`/`reloaded` always act.").choices(&[
                "started",
                "stopped",
                "restarted",
                "reloaded",
            ]),
            A::new("enabled", "Whether it starts at boot.").kind(Bool),
            A::new(
                "daemon_reload",
                "Run `systemctl daemon-reload` first (systemd hosts only).",
            )
            .aliases(&["daemon-reload"])
            .kind(Bool)
            .default("no"),
            A::new(
                "sleep",
                "With `state: restarted`, stop, wait this many seconds, then start.",
            )
            .kind(Int),
            A::new(
                "use",
                "The service manager: `auto` (detect) or `systemd`; others are not supported by rdeploy.",
            )
            .default("auto"),
        ],
        check_args: Some(service_check),
        backup: "The service's active and enabled state is recorded; rollback starts or stops it and enables or disables it as it was.",
        returns: &[("name", "the service"), ("state", "started or stopped"), ("enabled", "whether it starts at boot"), ("status", "systemd's properties")],
        examples: "- service:\n    name: nginx\n    state: restarted\n    enabled: true",
    },
    ModuleSpec {
        name: "shell",
        doc: "Runs a command line through `/bin/sh` on the host (pipes, redirects, variables). Give it free-form or as `cmd`. Not reversible unless the task has `creates`/`removes` or a `rollback:`.",
        free_form: true,
        open_args: false,
        args: &[
            A::new("cmd", "The command line."),
            A::new("creates", "Skip the command if this path exists.").kind(Path),
            A::new("removes", "Run the command only if this path exists.").kind(Path),
            A::new("chdir", "Change into this directory first.").kind(Path),
            A::new("stdin", "Text written to the command's standard input."),
            A::new("executable", "Shell to use instead of `/bin/sh`.").kind(Path),
        ],
        check_args: Some(free_form_or_cmd),
        backup: "Nothing: a command's effect is unknown. With `creates:`/`removes:` the named path is backed up; otherwise not reversible: add a `rollback:` task.",
        returns: &[("rc", "exit status"), ("stdout", "output"), ("stderr", "errors"), ("stdout_lines", "output as lines"), ("cmd", "the command run")],
        examples: "- shell: set -o pipefail && ls /srv/app/releases | sort -V | tail -n 1\n  args:\n    executable: /bin/bash\n  register: latest\n  changed_when: false",
    },
    ModuleSpec {
        name: "systemd",
        doc: "Controls a systemd unit: state, enabled at boot, masked, and `daemon_reload` after unit files changed. Also called `systemd_service`; with only `name` it changes nothing and returns the unit's properties in `status`.",
        free_form: false,
        open_args: false,
        args: &[
            A::new("name", "The unit (`.service` may be left out).").aliases(&["service", "unit"]),
            A::new("state", "What to do; `restarted`/`reloaded` always act.").choices(&[
                "started",
                "stopped",
                "restarted",
                "reloaded",
            ]),
            A::new("enabled", "Whether it starts at boot.").kind(Bool),
            A::new("masked", "Whether the unit is masked.").kind(Bool),
            A::new("daemon_reload", "Run `systemctl daemon-reload` first.")
                .aliases(&["daemon-reload"])
                .kind(Bool)
                .default("no"),
            A::new("scope", "Which systemd manager to talk to.")
                .default("system")
                .choices(&["system", "user", "global"]),
        ],
        check_args: Some(systemd_check),
        backup: "The unit's active and enabled state is recorded; rollback starts or stops it and enables or disables it as it was. A `daemon_reload` is not undone.",
        returns: &[("name", "the unit"), ("state", "started or stopped"), ("enabled", "whether it starts at boot"), ("status", "systemd's properties")],
        examples: "- systemd:\n    name: app.service\n    state: restarted\n    daemon_reload: true",
    },
    ModuleSpec {
        name: "wait_for",
        doc: "Waits until a port accepts connections (or is closed / drained), or a file exists or contains a regex, or a delay has passed.",
        free_form: false,
        open_args: false,
        args: &[
            A::new("host", "Address to check, as seen from the host.").default("127.0.0.1"),
            A::new("port", "TCP port to check.").kind(Int),
            A::new("path", "File to check instead of a port.").kind(Path),
            A::new(
                "search_regex",
                "Regex the file or the port's banner must match.",
            ),
            A::new("state", "The condition to wait for.")
                .default("started")
                .choices(&["started", "stopped", "present", "absent", "drained"]),
            A::new("timeout", "Give up after this many seconds.")
                .kind(Int)
                .default("300"),
            A::new("delay", "Seconds to wait before the first check.")
                .kind(Int)
                .default("0"),
            A::new("sleep", "Seconds between checks.")
                .kind(Int)
                .default("1"),
            A::new(
                "connect_timeout",
                "Seconds allowed for each connection attempt.",
            )
            .kind(Int)
            .default("5"),
            A::new("msg", "Message on timeout."),
        ],
        check_args: Some(port_xor_path),
        backup: "Changes nothing on the host: nothing to back up.",
        returns: &[("elapsed", "seconds waited"), ("state", "what was waited for"), ("port", "the port"), ("path", "the path")],
        examples: "- wait_for:\n    port: 8080\n    host: 127.0.0.1\n    timeout: 60",
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

fn one_command(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let n =
        usize::from(a.free_form.is_some()) + usize::from(a.has("cmd")) + usize::from(a.has("argv"));
    match n {
        0 => err(
            a,
            "module 'command' needs a command: free-form text, 'cmd' or 'argv'".into(),
        ),
        1 => Vec::new(),
        _ => err(
            a,
            "module 'command' takes only one of free-form text, 'cmd' and 'argv'".into(),
        ),
    }
}

fn free_form_or_cmd(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    match (a.free_form.is_some(), a.has("cmd")) {
        (false, false) => err(
            a,
            format!(
                "module '{}' needs a command: free-form text or 'cmd'",
                a.module
            ),
        ),
        (true, true) => err(
            a,
            format!(
                "module '{}' takes free-form text or 'cmd', not both",
                a.module
            ),
        ),
        _ => Vec::new(),
    }
}

fn needs_free_form(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    if a.free_form.is_none() {
        err(a, format!("module '{}' needs free-form text", a.module))
    } else {
        Vec::new()
    }
}

/// `msg` and `var` exclude each other (`debug`).
pub(crate) fn msg_xor_var(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    exclusive(a, "msg", "var")
}

fn port_xor_path(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    exclusive(a, "port", "path")
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

/// `systemd` with only `name` is Ansible's status query (the unit's properties in `status`).
fn systemd_check(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    if a.has("name") {
        return Vec::new();
    }
    unit_action(a, "systemd", &["state", "enabled", "masked"])
}

/// `service` hands `daemon_reload` to systemd as Ansible's does, so `name` may be left out then.
fn service_check(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    unit_action(a, "service", &["state", "enabled"])
}

/// A unit module acts on `name` through one of `acts`, or only reloads systemd.
fn unit_action(a: &ArgsRef<'_>, module: &str, acts: &[&str]) -> Vec<Diagnostic> {
    let words = acts
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let acting = acts.iter().any(|k| a.has(k));
    if acting && !a.has("name") {
        return err(a, format!("module '{module}' needs 'name' with {words}"));
    }
    if !acting && !a.has("daemon_reload") {
        return err(
            a,
            format!("module '{module}' needs {words} or 'daemon_reload'"),
        );
    }
    Vec::new()
}
