//! The table of built-in module specifications (the `ansible.builtin` subset rdeploy runs).
//!
//! Owns each module's argument list, its one-paragraph doc and its own argument check. It must
//! not implement the modules: `check`/`apply` live in one file per module elsewhere.

use super::spec::{ArgKind::*, ArgSpec as A, ArgsRef, ModuleSpec};
use crate::diag::{Diagnostic, did_you_mean};

/// Every module rdeploy knows, in alphabetical order.
pub static MODULES: &[ModuleSpec] = &[
    ModuleSpec {
        name: "add_host",
        doc: "Adds a host (and its groups) to the inventory for the rest of the run, once per task (not per host; once per item in a loop). Every other argument becomes a host variable (`ansible_host`, `ansible_port`, `ansible_user`, `ansible_connection`...); a later play's `hosts:` reaches the host, which gets its own connection then.",
        free_form: false,
        open_args: true,
        args: &[
            A::new("name", "The host's name, optionally `NAME:PORT`.")
                .aliases(&["hostname", "host"])
                .req(),
            A::new(
                "groups",
                "Groups to put the host in (a list, or names separated by `,`).",
            )
            .aliases(&["group", "groupname"])
            .kind(List),
        ],
        check_args: None,
        backup: "Runs on the controller and changes nothing on the hosts: nothing to back up. The added host lasts for this run only.",
        returns: &[("add_host", "the host's name, groups and variables")],
        examples: "- add_host:\n    name: \"{{ new_ip }}\"\n    groups: [web]\n    ansible_user: deploy",
    },
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
        name: "copy",
        doc: "Copies a file from the controller (`src`, looked up in the role's `files/`) or literal `content` to `dest` on the host, then sets mode and ownership. A symlink at `dest` is replaced, never written through.",
        free_form: false,
        open_args: false,
        args: &[
            A::new(
                "src",
                "Local file to copy (or a path on the host with `remote_src`).",
            )
            .kind(Path),
            A::new("content", "Literal content to write instead of `src`.").kind(Raw),
            A::new("dest", "Destination path on the host.")
                .req()
                .kind(Path),
            A::new(
                "mode",
                "Permissions of the file (`0644`, `u=rw,g=r`, `preserve`).",
            )
            .kind(Raw),
            A::new("owner", "Owner of the file."),
            A::new("group", "Group of the file."),
            A::new(
                "force",
                "Replace `dest` when its content differs; with `no`, only create it.",
            )
            .kind(Bool)
            .default("yes"),
            A::new(
                "validate",
                "Command run on the new file before it is moved in; `%s` is the temp file.",
            ),
            A::new(
                "backup",
                "Keep a timestamped copy of the original file on the host.",
            )
            .kind(Bool)
            .default("no"),
            A::new(
                "remote_src",
                "`src` is a path on the host rather than the controller.",
            )
            .kind(Bool)
            .default("no"),
        ],
        check_args: Some(src_xor_content),
        backup: "`dest` (and, for a directory source, every path it names below `dest`) is copied before it changes; rollback puts the old content, mode and owner back, or removes what the step created.",
        returns: &[("dest", "the destination path"), ("checksum", "SHA-1 of the file"), ("size", "its size"), ("mode", "its mode"), ("owner", "its owner"), ("group", "its group")],
        examples: "- copy:\n    src: app.conf\n    dest: /etc/app/app.conf\n    mode: \"0640\"\n    owner: root\n    group: app",
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
        name: "file",
        doc: "Sets the state of a path on the host: a file's attributes, a directory, a symlink or hard link, an absent path, or a touched file.",
        free_form: false,
        open_args: false,
        args: &[
            A::new("path", "The path to manage.")
                .req()
                .aliases(&["dest", "name"])
                .kind(Path),
            A::new(
                "state",
                "What the path should be; `file` only changes attributes of an existing file.",
            )
            .default("file")
            .choices(&["file", "directory", "link", "hard", "absent", "touch"]),
            A::new("mode", "Permissions (`0755`, `u=rwx,g=rx`).").kind(Raw),
            A::new("owner", "Owner."),
            A::new("group", "Group."),
            A::new(
                "recurse",
                "With `state: directory`, apply attributes to the whole tree.",
            )
            .kind(Bool)
            .default("no"),
            A::new("src", "Target of the link for `state: link` or `hard`.").kind(Path),
            A::new(
                "force",
                "Replace an existing file or link at `path` for `state: link`.",
            )
            .kind(Bool)
            .default("no"),
            A::new(
                "follow",
                "For `state: file`, `directory` and `touch`, a symlink at `path` stands for what it points to; false acts on the link itself (`state: file` and `directory` then fail on a link, as in Ansible).",
            )
            .kind(Bool)
            .default("yes"),
            A::new(
                "modification_time",
                "The modification time to set: `now`, `preserve` (the default, except `now` for `state: touch`) or a time in `modification_time_format`, the host's local time.",
            ),
            A::new(
                "modification_time_format",
                "The format of `modification_time` (Python's `strptime`).",
            )
            .default("%Y%m%d%H%M.%S"),
            A::new(
                "access_time",
                "The access time to set: `now`, `preserve` (the default, except `now` for `state: touch`) or a time in `access_time_format`, the host's local time.",
            ),
            A::new(
                "access_time_format",
                "The format of `access_time` (Python's `strptime`).",
            )
            .default("%Y%m%d%H%M.%S"),
        ],
        check_args: Some(file_link_needs_src),
        backup: "The path is backed up before it changes: its mode and owner (and a link's target) for attribute changes; the whole tree for `state: absent`; rollback restores them, or removes a path the step created.",
        returns: &[("path", "the path"), ("state", "what it is now"), ("mode", "its mode"), ("owner", "its owner"), ("group", "its group"), ("diff", "before/after with --diff")],
        examples: "- file:\n    path: /srv/app/releases\n    state: directory\n    mode: \"0755\"\n- file:\n    src: /srv/app/releases/2.1\n    dest: /srv/app/current\n    state: link",
    },
    ModuleSpec {
        name: "find",
        doc: "Lists files on the host matching patterns, age, size and type; register the result.",
        free_form: false,
        open_args: false,
        args: &[
            A::new("paths", "Directories to search.")
                .req()
                .aliases(&["name", "path"])
                .kind(List),
            A::new(
                "patterns",
                "Shell globs (or regexes with `use_regex`) the basename must match.",
            )
            .aliases(&["pattern"])
            .kind(List),
            A::new("excludes", "Patterns to leave out.")
                .aliases(&["exclude"])
                .kind(List),
            A::new("contains", "A regex the file content must match."),
            A::new("use_regex", "Treat patterns as Python-style regexes.")
                .kind(Bool)
                .default("no"),
            A::new("file_type", "Type of entries to return.")
                .default("file")
                .choices(&["file", "directory", "link", "any"]),
            A::new("recurse", "Descend into subdirectories.")
                .kind(Bool)
                .default("no"),
            A::new("age", "Select by age: `2d`, `-1h` (younger than)."),
            A::new("size", "Select by size: `10m`, `-1k` (smaller than)."),
            A::new("hidden", "Include hidden files.")
                .kind(Bool)
                .default("no"),
        ],
        check_args: None,
        backup: "Changes nothing on the host: nothing to back up.",
        returns: &[("files", "each match's stat"), ("matched", "how many matched"), ("examined", "how many were looked at")],
        examples: "- find:\n    paths: /srv/app/releases\n    file_type: directory\n    age: 30d\n  register: old",
    },
    ModuleSpec {
        name: "import_role",
        doc: "Inlines a role's tasks here when the playbook is loaded (static): its tasks get this task's keywords, its handlers join the play.",
        free_form: false,
        open_args: false,
        args: ROLE_ARGS,
        check_args: None,
        backup: "A static import: its tasks are backed up one by one as they run.",
        returns: &[],
        examples: "- import_role:\n    name: nginx\n  vars:\n    nginx_port: 8080",
    },
    ModuleSpec {
        name: "import_tasks",
        doc: "Inlines a task file here when the playbook is loaded (static). The file name cannot use loop or host variables.",
        free_form: true,
        open_args: false,
        args: &[A::new("file", "The task file, relative to the including file.").kind(Path)],
        check_args: Some(file_or_free_form),
        backup: "A static import: its tasks are backed up one by one as they run.",
        returns: &[],
        examples: "- import_tasks: setup.yml",
    },
    ModuleSpec {
        name: "include_role",
        doc: "Runs a role's tasks at this point of the run (dynamic): the task's `when` and loop apply to the include itself.",
        free_form: false,
        open_args: false,
        args: INCLUDE_ROLE_ARGS,
        check_args: None,
        backup: "A dynamic include: its tasks are backed up one by one as they run.",
        returns: &[],
        examples: "- include_role:\n    name: app\n    tasks_from: upgrade",
    },
    ModuleSpec {
        name: "include_tasks",
        doc: "Runs the tasks of a file at this point of the run (dynamic); the file name may be a template and the task may loop.",
        free_form: true,
        open_args: false,
        args: &[
            A::new("file", "The task file, relative to the including file.").kind(Path),
            A::new("apply", "Keywords applied to every included task.").kind(Dict),
        ],
        check_args: Some(file_or_free_form),
        backup: "A dynamic include: its tasks are backed up one by one as they run.",
        returns: &[],
        examples: "- include_tasks: \"setup-{{ ansible_facts.os_family }}.yml\"",
    },
    ModuleSpec {
        name: "include_vars",
        doc: "Loads variables from a YAML file (free-form or `file`) or every file of a directory (`dir`) on the controller, as host facts for the rest of the play.",
        free_form: true,
        open_args: false,
        args: &[
            A::new(
                "file",
                "The vars file (looked up in the role's `vars/` first).",
            )
            .kind(Path),
            A::new(
                "dir",
                "A directory whose files are all loaded, in name order.",
            )
            .kind(Path),
            A::new("name", "Put the loaded variables under this one name."),
            A::new(
                "hash_behaviour",
                "`merge`: a loaded dict is merged (recursively) into the variable of that name the task sees; `replace` (the default) replaces it.",
            )
            .choices(&["replace", "merge"]),
            A::new("depth", "With `dir`, how deep to descend (0 = no limit).")
                .kind(Int)
                .default("0"),
            A::new(
                "files_matching",
                "With `dir`, load only file names matching this regex.",
            ),
            A::new("ignore_files", "With `dir`, file names to skip.").kind(List),
            A::new("extensions", "With `dir`, extensions to load.")
                .kind(List)
                .default("yaml, yml, json"),
            A::new(
                "ignore_unknown_extensions",
                "With `dir`, skip files with other extensions instead of failing.",
            )
            .kind(Bool)
            .default("no"),
        ],
        check_args: Some(include_vars_source),
        backup: "Runs on the controller and changes nothing on the hosts: nothing to back up.",
        returns: &[("ansible_facts", "the loaded variables"), ("ansible_included_var_files", "the files read")],
        examples: "- include_vars: \"vars/{{ ansible_facts.os_family }}.yml\"\n- include_vars:\n    file: secrets.yml\n    name: secrets",
    },
    ModuleSpec {
        name: "meta",
        doc: "Controls the run itself: `flush_handlers`, `end_play`, `end_host`, `noop`, `clear_facts`, `refresh_inventory` or `reset_connection` (free-form).",
        free_form: true,
        open_args: false,
        args: &[],
        check_args: Some(meta_action),
        backup: "Runs on the controller and changes nothing on the hosts: nothing to back up.",
        returns: &[],
        examples: "- meta: flush_handlers",
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
        name: "set_fact",
        doc: "Sets host variables (any keys) for the rest of the run; values are templates.",
        free_form: false,
        open_args: true,
        args: &[
            A::new("cacheable", "Also store the facts in the fact cache.")
                .kind(Bool)
                .default("no"),
        ],
        check_args: Some(set_fact_keys),
        backup: "Runs on the controller and changes nothing on the hosts: nothing to back up.",
        returns: &[("ansible_facts", "the facts set")],
        examples: "- set_fact:\n    release_dir: \"/srv/app/releases/{{ app_version }}\"\n    cacheable: true",
    },
    ModuleSpec {
        name: "setup",
        doc: "Gathers facts about the host (`ansible_facts`); run implicitly by `gather_facts`.",
        free_form: false,
        open_args: false,
        args: &[
            A::new(
                "gather_subset",
                "Fact groups to gather (`all`, `min`, `network`, `!hardware`...).",
            )
            .kind(List)
            .default("all"),
            A::new("filter", "Globs of fact names to keep.").kind(List),
            A::new(
                "gather_timeout",
                "Seconds allowed for reading one mount's size (a hung network mount).",
            )
            .kind(Int)
            .default("10"),
        ],
        check_args: Some(gather_subset_known),
        backup: "Changes nothing on the host: nothing to back up.",
        returns: &[("ansible_facts", "the facts gathered")],
        examples: "- setup:\n    gather_subset: [min, network]",
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
        name: "template",
        doc: "Renders a Jinja template from the controller (role `templates/` first) with the host's variables and writes it to `dest`, then sets mode and ownership. A symlink at `dest` is replaced, never written through.",
        free_form: false,
        open_args: false,
        args: &[
            A::new("src", "The template file on the controller.")
                .req()
                .kind(Path),
            A::new("dest", "Destination path on the host.")
                .req()
                .kind(Path),
            A::new("mode", "Permissions of the file.").kind(Raw),
            A::new("owner", "Owner of the file."),
            A::new("group", "Group of the file."),
            A::new(
                "force",
                "Replace `dest` when its content differs; with `no`, only create it.",
            )
            .kind(Bool)
            .default("yes"),
            A::new(
                "validate",
                "Command run on the new file before it is moved in; `%s` is the temp file.",
            ),
            A::new(
                "backup",
                "Keep a timestamped copy of the original file on the host.",
            )
            .kind(Bool)
            .default("no"),
        ],
        check_args: None,
        backup: "`dest` is copied (content, mode, owner) before it is replaced; rollback puts the old file back, or removes it if the step created it.",
        returns: &[("dest", "the destination path"), ("checksum", "SHA-1 of the rendered file"), ("size", "its size"), ("mode", "its mode")],
        examples: "- template:\n    src: nginx.conf.j2\n    dest: /etc/nginx/nginx.conf\n    validate: nginx -t -c %s\n  notify: reload nginx",
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

/// The arguments of `import_role` and `include_role` (`$extra` after them).
macro_rules! role_args {
    ($($extra:expr),*) => {
        &[
    A::new("name", "The role.").req().aliases(&["role"]),
    A::new(
        "tasks_from",
        "Task file of the role's `tasks/` to run instead of `main`.",
    )
    .default("main"),
    A::new(
        "vars_from",
        "File of the role's `vars/` to load instead of `main`.",
    )
    .default("main"),
    A::new(
        "defaults_from",
        "File of the role's `defaults/` to load instead of `main`.",
    )
    .default("main"),
    A::new(
        "handlers_from",
        "File of the role's `handlers/` to load instead of `main`.",
    )
    .default("main"),
    A::new(
        "allow_duplicates",
        "Run the role again even when it already ran with the same parameters.",
    )
    .kind(Bool)
    .default("yes"),
    A::new(
        "public",
        "Expose the role's vars and defaults to the rest of the play.",
    )
    .kind(Bool)
    .default("no"),
    A::new(
        "rolespec_validate",
        "Start the role with the validation of its argument spec (`meta/argument_specs.yml`) for the entry point.",
    )
    .kind(Bool)
    .default("yes"),
            $($extra,)*
        ]
    };
}

static ROLE_ARGS: &[A] = role_args!();

static INCLUDE_ROLE_ARGS: &[A] = role_args!(
    A::new(
        "apply",
        "Keywords applied to every task of the role (`tags`, `become`...)."
    )
    .kind(Dict)
);

/// The actions `meta` accepts.
pub const META_ACTIONS: &[&str] = &[
    "flush_handlers",
    "end_play",
    "end_host",
    "noop",
    "clear_facts",
    "refresh_inventory",
    "reset_connection",
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

fn file_or_free_form(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    match (a.free_form.is_some(), a.has("file")) {
        (false, false) => err(a, format!("module '{}' needs a file name", a.module)),
        (true, true) => err(
            a,
            format!(
                "module '{}' takes free-form text or 'file', not both",
                a.module
            ),
        ),
        _ => Vec::new(),
    }
}

fn include_vars_source(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let n =
        usize::from(a.free_form.is_some()) + usize::from(a.has("file")) + usize::from(a.has("dir"));
    match n {
        0 => err(
            a,
            "module 'include_vars' needs a file (free-form or 'file') or a 'dir'".into(),
        ),
        1 => Vec::new(),
        _ => err(
            a,
            "module 'include_vars' takes only one of free-form text, 'file' and 'dir'".into(),
        ),
    }
}

fn src_xor_content(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    match (a.has("src"), a.has("content")) {
        (false, false) => err(a, "module 'copy' needs 'src' or 'content'".into()),
        (true, true) => exclusive(a, "src", "content"),
        _ => Vec::new(),
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

fn file_link_needs_src(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    match a.literal("state").as_deref() {
        Some(s @ ("link" | "hard")) if !a.has("src") => {
            err(a, format!("module 'file' needs 'src' when state is {s}"))
        }
        _ => Vec::new(),
    }
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

/// `gather_subset` names only subsets rdeploy gathers (or excludes any).
fn gather_subset_known(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let Some(n) = a.get("gather_subset") else {
        return Vec::new();
    };
    match crate::exec::facts::literal_subset(n).map(|s| crate::exec::facts::groups(&s)) {
        Some(Err(m)) => vec![Diagnostic::at(&n.loc, m)],
        _ => Vec::new(),
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

fn set_fact_keys(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut any = false;
    for (k, v) in a.args {
        if k == "cacheable" {
            continue;
        }
        any = true;
        // A templated key is rendered, and checked, per host when the task runs.
        if !crate::playbook::keywords::is_identifier(k) && !crate::template::has_template(k) {
            out.push(Diagnostic::at(
                &v.loc,
                format!("'{k}' is not a valid variable name for set_fact"),
            ));
        }
    }
    if !any {
        out.extend(err(
            a,
            "module 'set_fact' needs at least one variable to set".into(),
        ));
    }
    out
}

fn meta_action(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let Some(ff) = a.free_form else {
        return err(
            a,
            format!(
                "module 'meta' needs an action: one of {}",
                META_ACTIONS.join(", ")
            ),
        );
    };
    if super::spec::is_template(ff) {
        return Vec::new();
    }
    let text = ff.scalar_string().unwrap_or_default();
    let text = text.trim();
    if META_ACTIONS.contains(&text) {
        return Vec::new();
    }
    let msg = match did_you_mean(text, META_ACTIONS.iter().copied()) {
        Some(s) => format!("unknown meta action '{text}', did you mean '{s}'?"),
        None => format!(
            "unknown meta action '{text}', expected one of: {}",
            META_ACTIONS.join(", ")
        ),
    };
    vec![Diagnostic::at(&ff.loc, msg)]
}
