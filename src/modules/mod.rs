//! The module library: which modules exist, what arguments they take, and their code.
//!
//! Owns name lookup (`copy`, `ansible.builtin.copy` and `ansible.legacy.copy` are the same
//! module), going through [`registry`], the one list that names modules. Every module declares
//! its arguments once as a typed struct ([`typed`], `module_args!`) that is its spec, its parser
//! and its `rdeploy doc` text.
//! This file must not run modules or touch hosts.

pub mod ansible;
pub mod bridge;
pub mod control;
pub mod files;
#[cfg(test)]
pub mod fixture;
pub mod registry;
pub mod runtime;
pub mod source;
pub mod spec;
pub mod system;
pub mod typed;

pub use spec::{ArgKind, ArgSpec, ArgsRef, CheckFn, ModuleSpec};

/// The implementation of a host module (one that runs `check`/`apply` on a host), by canonical
/// name. Controller-side actions (`debug`, `set_fact`, `assert`, `include_*`, `meta`...) are
/// the executor's and are not here.
pub fn implementation(name: &str) -> Option<&'static dyn runtime::Module> {
    let name = canonical_name(name);
    match registry::entry(name) {
        Some(registry::Entry {
            runs: registry::Runs::Host(m),
            ..
        }) => Some(*m),
        Some(_) => None,
        None => bridge::implementation(name),
    }
}

/// The facts a task of module `name` sets (`getent_passwd` for `getent` with
/// `database: passwd`), as far as its literal arguments tell: a native module's
/// [`runtime::Module::facts`], or what Ansible's documentation of a bridged one says. The names
/// are remembered for `ansible_facts.NAME` ([`bridge::sets_fact`]).
pub fn fact_names(name: &str, literal_arg: impl Fn(&str) -> Option<String>) -> Vec<String> {
    match registry::entry(canonical_name(name)) {
        Some(registry::Entry {
            runs: registry::Runs::Host(m),
            ..
        }) => {
            let names: Vec<String> = m
                .facts()
                .iter()
                .filter_map(|f| expand_fact(f, &literal_arg))
                .collect();
            bridge::note_facts(&names);
            names
        }
        Some(_) => Vec::new(),
        None => bridge::fact_names(name, literal_arg),
    }
}

/// A documented fact name with its `<ARG>` replaced by the task's literal argument ARG;
/// `None` when that argument is not literal text.
fn expand_fact(pattern: &str, literal_arg: &impl Fn(&str) -> Option<String>) -> Option<String> {
    match (pattern.find('<'), pattern.find('>')) {
        (Some(a), Some(b)) if a < b => {
            let v = literal_arg(&pattern[a + 1..b])?;
            Some(format!("{}{v}{}", &pattern[..a], &pattern[b + 1..]))
        }
        _ => Some(pattern.to_string()),
    }
}

/// Collection prefixes that name the built-in modules.
pub const BUILTIN_PREFIXES: &[&str] = &["ansible.builtin.", "ansible.legacy."];

/// The canonical short name for `name`: strips `ansible.builtin.` / `ansible.legacy.`, and
/// names a module by the name rdeploy carries it under when ansible-core has two
/// (`systemd_service` is `systemd`; `yum` is `dnf`, as ansible-core 2.19 redirects it). A
/// collection module rdeploy carries natively is named by its short name
/// ([`registry::COLLECTION_NATIVE`]: `community.general.npm` is `npm`).
pub fn canonical_name(name: &str) -> &str {
    if registry::COLLECTION_NATIVE.contains(&name) {
        return name.rsplit('.').next().unwrap_or(name);
    }
    let short = BUILTIN_PREFIXES
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name);
    registry::MODULE_ALIASES
        .iter()
        .find(|(alias, _)| *alias == short)
        .map_or(short, |(_, name)| name)
}

/// The spec of module `name` (short or `ansible.builtin.`/`ansible.legacy.` spelling).
pub fn lookup(name: &str) -> Option<&'static ModuleSpec> {
    let short = canonical_name(name);
    match registry::entry(short) {
        Some(e) => Some(e.spec),
        None => bridge::spec(short),
    }
}

/// Every native module name, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    registry::MODULES.iter().map(|e| e.name)
}

/// Whether rdeploy carries module `name` (canonical short name) itself, rather than running
/// Ansible's own through the bridge.
pub fn is_native(name: &str) -> bool {
    registry::entry(name).is_some()
}

/// The text `rdeploy doc MODULE` prints: the module's paragraph, then one line per argument
/// (name, aliases, required/default, choices, what it does).
pub fn render_doc(spec: &ModuleSpec) -> String {
    let mut out = format!("{}\n\n{}\n", spec.name, spec.doc);
    if spec.free_form {
        out.push_str("\nTakes free-form text: `");
        out.push_str(spec.name);
        out.push_str(": TEXT`.\n");
    }
    if spec.open_args {
        out.push_str("\nAccepts any argument names.\n");
    }
    if !spec.args.is_empty() {
        out.push_str("\nArguments:\n");
    }
    for a in spec.args {
        let mut head = format!("  {}", a.name);
        if !a.aliases.is_empty() {
            head.push_str(&format!(" (also: {})", a.aliases.join(", ")));
        }
        head.push_str(&format!(" — {}", a.kind.describe()));
        if a.required {
            head.push_str(", required");
        }
        if let Some(d) = a.default {
            head.push_str(&format!(", default {d}"));
        }
        if !a.choices.is_empty() {
            head.push_str(&format!(", one of: {}", a.choices.join(", ")));
        }
        out.push_str(&format!("{head}\n      {}\n", a.doc));
    }
    if !spec.returns.is_empty() {
        out.push_str("\nReturns (register:):\n");
        for (key, what) in spec.returns {
            out.push_str(&format!("  {key} — {what}\n"));
        }
    }
    if !spec.backup.is_empty() {
        out.push_str(&format!("\nBackup and rollback:\n  {}\n", spec.backup));
    }
    if !spec.examples.is_empty() {
        out.push_str("\nExamples:\n");
        for line in spec.examples.trim_matches('\n').lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_strips_builtin_prefixes() {
        assert_eq!(lookup("ansible.builtin.copy").map(|m| m.name), Some("copy"));
        assert_eq!(
            lookup("ansible.legacy.shell").map(|m| m.name),
            Some("shell")
        );
        assert!(lookup("community.general.copy").is_none());
        assert_eq!(lookup("community.general.npm").map(|m| m.name), Some("npm"));
        assert_eq!(
            implementation("community.general.pacman").map(|m| m.name()),
            Some("pacman")
        );
        for (full, short) in [
            ("ansible.posix.mount", "mount"),
            ("ansible.posix.sysctl", "sysctl"),
            ("community.general.ini_file", "ini_file"),
            ("community.general.timezone", "timezone"),
        ] {
            assert_eq!(lookup(full).map(|m| m.name), Some(short));
        }
        assert!(lookup("cpoy").is_none());
    }

    #[test]
    fn table_is_sorted_unique_and_documented() {
        let all: Vec<&str> = names().collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(all, sorted);
        for m in registry::MODULES.iter().map(|e| e.spec) {
            assert!(!m.doc.is_empty(), "{}", m.name);
            for a in m.args {
                assert!(!a.doc.is_empty(), "{}.{}", m.name, a.name);
                if let Some(d) = a.default
                    && !a.choices.is_empty()
                {
                    assert!(a.choices.contains(&d), "{}.{}", m.name, a.name);
                }
            }
        }
    }
}
