//! Ansible's own module names and documented arguments, so that a real Ansible module or
//! argument rdeploy does not carry is named "not supported by rdeploy", while a typo keeps its
//! did-you-mean.
//!
//! Owns two lists made from ansible-core 2.19 (`ansible-doc -j` of every `ansible.builtin`
//! module, with aliases; `yum` is ansible-core's redirect to `dnf`) and from the `ansible` 12
//! bundle (the short names of the modules of the most used collections). It must not decide
//! what rdeploy runs: that is the registry in `registry.rs`.

const BUILTIN_ARGS: &str = include_str!("ansible/builtin_args.txt");
const COLLECTION_MODULES: &str = include_str!("ansible/collection_modules.txt");

/// True if `name` is a module of Ansible's: an `ansible.builtin` module (any spelling), a
/// collection module written with its collection (`community.general.ufw`), or the short
/// name of a module of a widely used collection (`ufw`, `mysql_user`, `docker_container`).
pub fn is_ansible_module(name: &str) -> bool {
    let short = super::canonical_name(name);
    if short.split('.').count() >= 3 && short.split('.').all(is_name) {
        return true;
    }
    builtin_args(short).is_some() || COLLECTION_MODULES.lines().any(|l| l == short)
}

/// The arguments (and aliases) Ansible documents for builtin module `module`.
pub fn builtin_args(module: &str) -> Option<impl Iterator<Item = &'static str>> {
    let module = super::canonical_name(module);
    BUILTIN_ARGS.lines().find_map(|l| {
        let (name, args) = l.split_once(':')?;
        (name == module).then(|| args.split_whitespace())
    })
}

/// The package manager module that documents argument `arg` when `module` is `package`, which
/// hands every argument it does not know to the manager it picks (`apt`, `dnf`).
pub fn package_manager_arg(module: &str, arg: &str) -> Option<&'static str> {
    if super::canonical_name(module) != "package" {
        return None;
    }
    ["apt", "dnf"]
        .into_iter()
        .find(|m| builtin_args(m).is_some_and(|mut a| a.any(|a| a == arg)))
}

fn is_name(part: &str) -> bool {
    !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_modules_are_known_and_typos_are_not() {
        for m in [
            "yum",
            "rpm_key",
            "apt_repository",
            "git",
            "pkgng",
            "npm",
            "ufw",
            "user",
        ] {
            assert!(is_ansible_module(m), "{m}");
        }
        assert!(is_ansible_module("community.general.ufw"));
        assert!(
            is_ansible_module("ansible.builtin.mount") || is_ansible_module("ansible.posix.mount")
        );
        for typo in ["yumm", "lineinfle", "cpoy"] {
            assert!(!is_ansible_module(typo), "{typo}");
        }
    }

    #[test]
    fn ansible_documents_file_setype_and_not_a_typo() {
        let args: Vec<&str> = builtin_args("file").unwrap().collect();
        assert!(args.contains(&"setype") && args.contains(&"access_time"));
        assert!(!args.contains(&"stat"));
    }
}
