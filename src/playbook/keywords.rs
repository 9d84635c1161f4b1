//! Keyword lists: which keys are allowed on plays, blocks, tasks, handlers and role entries,
//! and which real Ansible keywords rdeploy refuses because it does not implement them yet.
//!
//! Owns the lists and the "unknown keyword" / "not supported by rdeploy" messages. It must not parse
//! values. Ansible's own lists come from `lib/ansible/playbook/{base,play,block,task,role}`;
//! a real Ansible keyword that we do not implement is an error rather than silently ignored.

use crate::diag::did_you_mean;

/// Keywords shared by plays, blocks, tasks and role entries (Ansible's `Base`, `Become`,
/// `Taggable`, `CollectionSearch`) that rdeploy implements.
pub const COMMON: &[&str] = &[
    "name",
    "vars",
    "environment",
    "no_log",
    "ignore_errors",
    "ignore_unreachable",
    "check_mode",
    "diff",
    "any_errors_fatal",
    "become",
    "become_user",
    "become_method",
    "connection",
    "remote_user",
    "port",
    "tags",
    "collections",
    "timeout",
];

/// Keywords of blocks, tasks and role entries, but not plays (`Conditional`, `Delegatable`).
pub const SCOPED: &[&str] = &[
    "when",
    "delegate_to",
    "delegate_facts",
    "run_once",
    "throttle",
];

/// Play-only keywords, including rdeploy's own (`health` ... `release_label`).
pub const PLAY_ONLY: &[&str] = &[
    "hosts",
    "vars_files",
    "vars_prompt",
    "gather_facts",
    "gather_subset",
    "gather_timeout",
    "serial",
    "canary",
    "max_fail_percentage",
    "order",
    "pre_tasks",
    "roles",
    "tasks",
    "post_tasks",
    "handlers",
    "force_handlers",
    "strategy",
    "health",
    "probe",
    "soak",
    "on_failure",
    "rollback_scope",
    "rollback",
    "release_label",
    "approve",
    "analysis",
    "windows",
    "max_failed",
    "max_unavailable",
];

/// Task-only keywords.
pub const TASK_ONLY: &[&str] = &[
    "args",
    "action",
    "local_action",
    "loop",
    "with_items",
    "with_list",
    "loop_control",
    "register",
    "notify",
    "changed_when",
    "failed_when",
    "until",
    "retries",
    "delay",
    "async",
    "poll",
];

/// Block-only keywords (`notify` is inherited by the block's tasks).
pub const BLOCK_ONLY: &[&str] = &["block", "rescue", "always", "notify"];

/// Keys of a `roles:` entry or a `meta/main.yml` dependency besides [`COMMON`] and [`SCOPED`].
pub const ROLE_ONLY: &[&str] = &["role"];

/// Keys of a top-level `import_playbook` entry.
pub const IMPORT_PLAYBOOK: &[&str] = &["import_playbook", "name", "vars", "tags"];

/// Keys of `loop_control`.
pub const LOOP_CONTROL: &[&str] = &["loop_var", "index_var", "label", "pause", "extended"];

/// Real Ansible keywords that rdeploy refuses everywhere (the value would change behaviour,
/// so ignoring it would be wrong).
pub const UNSUPPORTED: &[&str] = &[
    "debugger",
    "module_defaults",
    "become_exe",
    "become_flags",
    "fact_path",
    "extended_allitems",
    "break_when",
];

/// Where a mapping sits, for keyword sets and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// A play.
    Play,
    /// A task.
    Task,
    /// A handler (a task that may also `listen`).
    Handler,
    /// A block.
    Block,
    /// A `roles:` entry or a role dependency.
    Role,
    /// An `import_playbook` entry.
    ImportPlaybook,
    /// `loop_control`.
    LoopControl,
}

impl Level {
    /// The word in "unknown ... keyword".
    pub fn word(self) -> &'static str {
        match self {
            Level::Play => "play",
            Level::Task | Level::Handler => "task",
            Level::Block => "block",
            Level::Role => "role",
            Level::ImportPlaybook => "import_playbook",
            Level::LoopControl => "loop_control",
        }
    }

    /// Every key allowed at this level (modules aside).
    pub fn allowed(self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = Vec::new();
        match self {
            Level::Play => {
                v.extend(COMMON);
                v.extend(PLAY_ONLY);
            }
            Level::Task | Level::Handler => {
                v.extend(COMMON);
                v.extend(SCOPED);
                v.extend(TASK_ONLY);
                if self == Level::Handler {
                    v.push("listen");
                }
            }
            Level::Block => {
                v.extend(COMMON);
                v.extend(SCOPED);
                v.extend(BLOCK_ONLY);
            }
            Level::Role => {
                v.extend(COMMON);
                v.extend(SCOPED);
                v.extend(ROLE_ONLY);
            }
            Level::ImportPlaybook => v.extend(IMPORT_PLAYBOOK),
            Level::LoopControl => v.extend(LOOP_CONTROL),
        }
        v
    }
}

/// Whether `key` is a real Ansible keyword that rdeploy refuses at `level`.
pub fn is_unsupported(key: &str, level: Level) -> bool {
    if UNSUPPORTED.contains(&key) {
        return true;
    }
    match level {
        Level::Task | Level::Handler => key
            .strip_prefix("with_")
            .is_some_and(|name| !crate::template::lookups::is_with_lookup(name)),
        Level::Play => ["run_once", "throttle"].contains(&key),
        Level::ImportPlaybook => key == "when",
        _ => false,
    }
}

/// "'debugger' is an Ansible keyword not supported by rdeploy"; for `with_NAME`, which lookup
/// loops rdeploy has.
pub fn unsupported_message(key: &str) -> String {
    if let Some(name) = key.strip_prefix("with_") {
        let have: Vec<String> = crate::template::lookups::SUPPORTED
            .iter()
            .map(|s| format!("with_{s}"))
            .collect();
        return format!(
            "'{key}' (a loop over the '{name}' lookup plugin) is not supported by rdeploy; it has {}",
            have.join(", ")
        );
    }
    format!("'{key}' is an Ansible keyword not supported by rdeploy")
}

/// "unknown play keyword 'serail', did you mean 'serial'?".
pub fn unknown_message(key: &str, level: Level) -> String {
    let allowed = level.allowed();
    match did_you_mean(key, allowed.iter().copied()) {
        Some(s) => format!(
            "unknown {} keyword '{key}', did you mean '{s}'?",
            level.word()
        ),
        None => format!("unknown {} keyword '{key}'", level.word()),
    }
}

/// Whether `s` is a valid variable name (Python identifier, ASCII).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Edit distance (optimal string alignment), to choose between "unknown keyword" and
/// "unknown module" when a task key could be a typo of either.
pub fn distance(a: &str, b: &str) -> usize {
    crate::diag::edit_distance(&a.to_ascii_lowercase(), &b.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_sets_do_not_overlap_the_unsupported_list() {
        for level in [Level::Play, Level::Task, Level::Block, Level::Role] {
            for k in level.allowed() {
                assert!(!is_unsupported(k, level), "{k}");
            }
        }
        assert!(is_unsupported("with_hashi_vault", Level::Task));
        assert!(!is_unsupported("with_dict", Level::Task));
        assert!(!is_unsupported("with_items", Level::Task));
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("app_root"));
        assert!(is_identifier("_x1"));
        assert!(!is_identifier("1x"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier(""));
    }
}
