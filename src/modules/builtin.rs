//! The table of built-in module specifications (the `ansible.builtin` subset rdeploy runs).
//!
//! Owns each module's argument list, its one-paragraph doc and its own argument check. It must
//! not implement the modules: `check`/`apply` live in one file per module elsewhere.

use super::spec::{ArgKind::*, ArgSpec as A, ArgsRef, ModuleSpec};
use crate::diag::Diagnostic;

/// Every module rdeploy knows, in alphabetical order.
pub static MODULES: &[ModuleSpec] = &[
    ModuleSpec {
        name: "blockinfile",
        doc: "Inserts, updates or removes a block of lines between marker lines in a text file.",
        free_form: false,
        open_args: false,
        args: &[
            A::new("path", "The file to change.")
                .req()
                .aliases(&["dest", "destfile", "name"])
                .kind(Path),
            A::new("block", "The text between the markers.")
                .aliases(&["content"])
                .default(""),
            A::new(
                "marker",
                "Marker line template; `{mark}` becomes `marker_begin`/`marker_end`.",
            )
            .default("# {mark} ANSIBLE MANAGED BLOCK"),
            A::new("marker_begin", "Replaces `{mark}` in the opening marker.").default("BEGIN"),
            A::new("marker_end", "Replaces `{mark}` in the closing marker.").default("END"),
            A::new(
                "insertafter",
                "Insert after the last line matching this regex, or `EOF`.",
            )
            .default("EOF"),
            A::new(
                "insertbefore",
                "Insert before the last line matching this regex, or `BOF`.",
            ),
            A::new("state", "Whether the block is present or absent.")
                .default("present")
                .choices(&["present", "absent"]),
            A::new("create", "Create the file if it does not exist.")
                .kind(Bool)
                .default("no"),
            A::new(
                "backup",
                "Keep a timestamped copy of the original file on the host.",
            )
            .kind(Bool)
            .default("no"),
            A::new("mode", "Permissions of the file (`0644`, `u=rw,g=r`).").kind(Raw),
            A::new("owner", "Owner of the file."),
            A::new("group", "Group of the file."),
            A::new(
                "validate",
                "Command run on the new content before it is moved in; `%s` is the temp file.",
            ),
        ],
        check_args: Some(after_xor_before),
        backup: "The file is copied (content, mode, owner) before it is changed; rollback puts the copy back, or removes the file if the step created it.",
        returns: &[("msg", "Block inserted, Block removed, File created...")],
        examples: "- blockinfile:\n    path: /etc/ssh/sshd_config\n    block: |\n      Match User deploy\n        PasswordAuthentication no",
    },
    ModuleSpec {
        name: "get_url",
        doc: "Downloads a URL to a path on the host (the host makes the request), optionally checking a checksum.",
        free_form: false,
        open_args: false,
        args: &[
            A::new("url", "The URL (http, https or ftp).").req(),
            A::new("dest", "Destination file or directory on the host.")
                .req()
                .kind(Path),
            A::new(
                "checksum",
                "`ALGORITHM:HEX` the download must match (e.g. `sha256:...`).",
            ),
            A::new("mode", "Permissions of the file.").kind(Raw),
            A::new("owner", "Owner of the file."),
            A::new("group", "Group of the file."),
            A::new("timeout", "Request timeout in seconds.")
                .kind(Int)
                .default("10"),
            A::new("force", "Download even when `dest` exists.")
                .kind(Bool)
                .default("no"),
            A::new("headers", "Extra request headers.").kind(Dict),
            A::new("validate_certs", "Verify TLS certificates.")
                .kind(Bool)
                .default("yes"),
        ],
        check_args: None,
        backup: "`dest` is copied before it is replaced; rollback puts the old file back, or removes the file the step downloaded.",
        returns: &[("dest", "where the file went"), ("checksum_src", "SHA-1 of the download"), ("status_code", "the HTTP status"), ("url", "the URL"), ("msg", "what happened")],
        examples: "- get_url:\n    url: https://example.com/app-2.1.tar.gz\n    dest: /srv/app/app-2.1.tar.gz\n    checksum: sha256:4f1c...",
    },
    ModuleSpec {
        name: "lineinfile",
        doc: "Ensures one line is present (replacing the last line matching `regexp`) or absent in a text file.",
        free_form: false,
        open_args: false,
        args: &[
            A::new("path", "The file to change.")
                .req()
                .aliases(&["dest", "destfile", "name"])
                .kind(Path),
            A::new("regexp", "Regex of the line to replace or remove.").aliases(&["regex"]),
            A::new(
                "search_string",
                "Literal text of the line to replace or remove.",
            ),
            A::new("line", "The line to insert or put in place of the match.").aliases(&["value"]),
            A::new(
                "insertafter",
                "Insert after the last line matching this regex, or `EOF`.",
            )
            .default("EOF"),
            A::new(
                "insertbefore",
                "Insert before the last line matching this regex, or `BOF`.",
            ),
            A::new("state", "Whether the line is present or absent.")
                .default("present")
                .choices(&["present", "absent"]),
            A::new("create", "Create the file if it does not exist.")
                .kind(Bool)
                .default("no"),
            A::new(
                "backrefs",
                "`line` may use `\\1` groups of `regexp`; with no match, change nothing.",
            )
            .kind(Bool)
            .default("no"),
            A::new(
                "firstmatch",
                "With `insertafter`/`insertbefore`: insert at the first line matching, not the last.",
            )
            .kind(Bool)
            .default("no"),
            A::new(
                "backup",
                "Keep a timestamped copy of the original file on the host.",
            )
            .kind(Bool)
            .default("no"),
            A::new("mode", "Permissions of the file.").kind(Raw),
            A::new("owner", "Owner of the file."),
            A::new("group", "Group of the file."),
            A::new(
                "validate",
                "Command run on the new content before it is moved in; `%s` is the temp file.",
            ),
        ],
        check_args: Some(lineinfile_check),
        backup: "The file is copied (content, mode, owner) before it is changed; rollback puts the copy back, or removes the file if the step created it.",
        returns: &[("msg", "line added, line replaced, line removed...")],
        examples: "- lineinfile:\n    path: /etc/ssh/sshd_config\n    regexp: '^#?PermitRootLogin'\n    line: PermitRootLogin no",
    },
    ModuleSpec {
        name: "replace",
        doc: "Replaces every match of a regex in a text file, optionally only between `after` and `before`.",
        free_form: false,
        open_args: false,
        args: &[
            A::new("path", "The file to change.")
                .req()
                .aliases(&["dest", "destfile", "name"])
                .kind(Path),
            A::new("regexp", "Python-style regex to replace.").req(),
            A::new("replace", "Replacement text; may use `\\1` groups.").default(""),
            A::new("after", "Only replace after the first match of this regex."),
            A::new(
                "before",
                "Only replace before the first match of this regex.",
            ),
            A::new(
                "backup",
                "Keep a timestamped copy of the original file on the host.",
            )
            .kind(Bool)
            .default("no"),
            A::new("mode", "Permissions of the file.").kind(Raw),
            A::new("owner", "Owner of the file."),
            A::new("group", "Group of the file."),
            A::new(
                "validate",
                "Command run on the new content before it is moved in; `%s` is the temp file.",
            ),
        ],
        check_args: None,
        backup: "The file is copied (content, mode, owner) before it is changed; rollback puts the copy back.",
        returns: &[("msg", "N replacements made")],
        examples: "- replace:\n    path: /etc/hosts\n    regexp: '(\\s+)old\\.example\\.com(\\s+.*)?$'\n    replace: '\\1new.example.com\\2'",
    },
    ModuleSpec {
        name: "unarchive",
        doc: "Unpacks a tar or zip archive (from the controller, or the host with `remote_src`) into a directory on the host. Ansible's older `copy: no` is read as `remote_src: yes`.",
        free_form: false,
        open_args: false,
        args: &[
            A::new("src", "The archive.").req().kind(Path),
            A::new("dest", "Existing directory to unpack into.")
                .req()
                .kind(Path),
            A::new("creates", "Skip when this path exists on the host.").kind(Path),
            A::new("remote_src", "`src` is already on the host.")
                .kind(Bool)
                .default("no"),
            A::new("mode", "Permissions of the unpacked entries.").kind(Raw),
            A::new("owner", "Owner of the unpacked entries."),
            A::new("group", "Group of the unpacked entries."),
        ],
        check_args: None,
        backup: "The whole `dest` tree is copied before the archive is unpacked into it; rollback puts the tree back as it was.",
        returns: &[("dest", "where it was unpacked"), ("src", "the archive"), ("handler", "the unpacker used")],
        examples: "- unarchive:\n    src: app-2.1.tar.gz\n    dest: /srv/app/releases/2.1\n    creates: /srv/app/releases/2.1/bin",
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

fn after_xor_before(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    exclusive(a, "insertafter", "insertbefore")
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

fn lineinfile_check(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let mut out = after_xor_before(a);
    out.extend(exclusive(a, "regexp", "search_string"));
    let state = match a.get("state") {
        None => "present".to_string(),
        Some(_) => a.literal("state").unwrap_or_default(),
    };
    if state == "present" && !a.has("line") {
        out.extend(err(
            a,
            "module 'lineinfile' needs 'line' when state is present".into(),
        ));
    }
    if state == "absent" && !a.has("regexp") && !a.has("search_string") && !a.has("line") {
        out.extend(err(
            a,
            "module 'lineinfile' needs 'regexp', 'search_string' or 'line' when state is absent"
                .into(),
        ));
    }
    out
}
