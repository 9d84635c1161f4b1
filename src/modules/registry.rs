//! The registry: the one list of the modules rdeploy carries natively, and the only place they
//! are named.
//!
//! Owns [`MODULES`] (name, spec, implementation), the module-name aliases ansible-core
//! redirects ([`MODULE_ALIASES`]) and the README's module table ([`readme_table`]). Lookup by
//! name, dispatch to a host module, `rdeploy doc`, playbook validation and the bridge fallback
//! (a name not here is Ansible's own module, run through ansible-core) all go through it.
//!
//! Adding a module is its file (a `module_args!` struct and a [`Module`] impl, or a controller
//! action) plus one entry here; its spec is its typed struct's `SPEC`. It must not run modules.

use super::runtime::Module;
use super::spec::ModuleSpec;
use super::{control, files, system};

/// Where a module runs.
#[derive(Clone, Copy)]
pub enum Runs {
    /// On the host, through its `check`/`apply`.
    Host(&'static dyn Module),
    /// On the controller, as an action of the executor (`debug`, `set_fact`, `include_*`...).
    Controller,
}

/// One native module.
#[derive(Clone, Copy)]
pub struct Entry {
    /// Its canonical short name.
    pub name: &'static str,
    /// Its spec: its typed argument struct's `SPEC` (see [`super::typed`]).
    pub spec: &'static ModuleSpec,
    /// Its implementation.
    pub runs: Runs,
}

/// Other names of native modules, as ansible-core redirects them: `systemd_service` is
/// `systemd`; `yum` is `dnf` (ansible-core 2.19).
pub static MODULE_ALIASES: &[(&str, &str)] = &[("systemd_service", "systemd"), ("yum", "dnf")];

/// Modules of collections that rdeploy carries natively, by their full name: the name after
/// the collection's prefix is the native module (`community.general.npm` is `npm`).
pub static COLLECTION_NATIVE: &[&str] = &[
    "ansible.posix.authorized_key",
    "ansible.posix.firewalld",
    "ansible.posix.mount",
    "ansible.posix.seboolean",
    "ansible.posix.selinux",
    "ansible.posix.sysctl",
    "community.general.gem",
    "community.general.haproxy",
    "community.general.modprobe",
    "community.general.ini_file",
    "community.general.npm",
    "community.general.openbsd_pkg",
    "community.general.pacman",
    "community.general.pkgng",
    "community.general.timezone",
    "community.general.ufw",
    "community.general.zypper",
    "community.general.zypper_repository",
];

/// Every native module, sorted by name.
pub static MODULES: &[Entry] = &[
    Entry {
        name: "add_host",
        spec: &control::add_host::AddHostArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "apt",
        spec: &system::package::AptArgs::SPEC,
        runs: Runs::Host(&system::package::Apt),
    },
    Entry {
        name: "apt_key",
        spec: &system::apt_key::AptKeyArgs::SPEC,
        runs: Runs::Host(&system::apt_key::AptKey),
    },
    Entry {
        name: "apt_repository",
        spec: &system::apt_repository::AptRepositoryArgs::SPEC,
        runs: Runs::Host(&system::apt_repository::AptRepository),
    },
    Entry {
        name: "assert",
        spec: &control::assert::AssertArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "authorized_key",
        spec: &system::authorized_key::AuthorizedKeyArgs::SPEC,
        runs: Runs::Host(&system::authorized_key::AuthorizedKey),
    },
    Entry {
        name: "blockinfile",
        spec: &files::blockinfile::BlockInFileArgs::SPEC,
        runs: Runs::Host(&files::blockinfile::BlockInFile),
    },
    Entry {
        name: "command",
        spec: &system::command::CommandArgs::SPEC,
        runs: Runs::Host(&system::command::Command),
    },
    Entry {
        name: "copy",
        spec: &files::copy::CopyArgs::SPEC,
        runs: Runs::Host(&files::copy::Copy),
    },
    Entry {
        name: "cron",
        spec: &system::cron::CronArgs::SPEC,
        runs: Runs::Host(&system::cron::Cron),
    },
    Entry {
        name: "deb822_repository",
        spec: &system::deb822_repository::Deb822RepositoryArgs::SPEC,
        runs: Runs::Host(&system::deb822_repository::Deb822Repository),
    },
    Entry {
        name: "debconf",
        spec: &system::debconf::DebconfArgs::SPEC,
        runs: Runs::Host(&system::debconf::Debconf),
    },
    Entry {
        name: "debug",
        spec: &control::debug::DebugArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "dnf",
        spec: &system::package::DnfArgs::SPEC,
        runs: Runs::Host(&system::package::Dnf),
    },
    Entry {
        name: "fail",
        spec: &control::fail::FailArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "fetch",
        spec: &system::fetch::FetchArgs::SPEC,
        runs: Runs::Host(&system::fetch::Fetch),
    },
    Entry {
        name: "file",
        spec: &files::file::FileArgs::SPEC,
        runs: Runs::Host(&files::file::File),
    },
    Entry {
        name: "find",
        spec: &files::find::FindArgs::SPEC,
        runs: Runs::Host(&files::find::Find),
    },
    Entry {
        name: "firewalld",
        spec: &system::firewalld::FirewalldArgs::SPEC,
        runs: Runs::Host(&system::firewalld::Firewalld),
    },
    Entry {
        name: "gather_facts",
        spec: &control::setup::GATHER_FACTS,
        runs: Runs::Controller,
    },
    Entry {
        name: "gem",
        spec: &system::gem::GemArgs::SPEC,
        runs: Runs::Host(&system::gem::Gem),
    },
    Entry {
        name: "get_url",
        spec: &system::get_url::GetUrlArgs::SPEC,
        runs: Runs::Host(&system::get_url::GetUrl),
    },
    Entry {
        name: "getent",
        spec: &system::getent::GetentArgs::SPEC,
        runs: Runs::Host(&system::getent::Getent),
    },
    Entry {
        name: "git",
        spec: &system::git::GitArgs::SPEC,
        runs: Runs::Host(&system::git::Git),
    },
    Entry {
        name: "group",
        spec: &system::group::GroupArgs::SPEC,
        runs: Runs::Host(&system::group::Group),
    },
    Entry {
        name: "group_by",
        spec: &control::group_by::GroupByArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "haproxy",
        spec: &system::haproxy::HaproxyArgs::SPEC,
        runs: Runs::Host(&system::haproxy::Haproxy),
    },
    Entry {
        name: "hostname",
        spec: &system::hostname::HostnameArgs::SPEC,
        runs: Runs::Host(&system::hostname::Hostname),
    },
    Entry {
        name: "import_role",
        spec: &control::include::ImportRoleArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "import_tasks",
        spec: &control::include::ImportTasksArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "include_role",
        spec: &control::include::IncludeRoleArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "include_tasks",
        spec: &control::include::IncludeTasksArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "include_vars",
        spec: &control::include_vars::IncludeVarsArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "ini_file",
        spec: &files::ini_file::IniFileArgs::SPEC,
        runs: Runs::Host(&files::ini_file::IniFile),
    },
    Entry {
        name: "known_hosts",
        spec: &system::known_hosts::KnownHostsArgs::SPEC,
        runs: Runs::Host(&system::known_hosts::KnownHosts),
    },
    Entry {
        name: "lineinfile",
        spec: &files::lineinfile::LineInFileArgs::SPEC,
        runs: Runs::Host(&files::lineinfile::LineInFile),
    },
    Entry {
        name: "meta",
        spec: &control::meta::MetaArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "modprobe",
        spec: &system::modprobe::ModprobeArgs::SPEC,
        runs: Runs::Host(&system::modprobe::Modprobe),
    },
    Entry {
        name: "mount",
        spec: &system::mount::MountArgs::SPEC,
        runs: Runs::Host(&system::mount::Mount),
    },
    Entry {
        name: "npm",
        spec: &system::npm::NpmArgs::SPEC,
        runs: Runs::Host(&system::npm::Npm),
    },
    Entry {
        name: "openbsd_pkg",
        spec: &system::openbsd_pkg::OpenbsdPkgArgs::SPEC,
        runs: Runs::Host(&system::openbsd_pkg::OpenbsdPkg),
    },
    Entry {
        name: "package",
        spec: &system::package::PackageArgs::SPEC,
        runs: Runs::Host(&system::package::Package),
    },
    Entry {
        name: "package_facts",
        spec: &system::package_facts::PackageFactsArgs::SPEC,
        runs: Runs::Host(&system::package_facts::PackageFacts),
    },
    Entry {
        name: "pacman",
        spec: &system::pacman::PacmanArgs::SPEC,
        runs: Runs::Host(&system::pacman::Pacman),
    },
    Entry {
        name: "pause",
        spec: &control::pause::PauseArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "ping",
        spec: &system::wait_for::PingArgs::SPEC,
        runs: Runs::Host(&system::wait_for::Ping),
    },
    Entry {
        name: "pip",
        spec: &system::pip::PipArgs::SPEC,
        runs: Runs::Host(&system::pip::Pip),
    },
    Entry {
        name: "pkgng",
        spec: &system::pkgng::PkgngArgs::SPEC,
        runs: Runs::Host(&system::pkgng::Pkgng),
    },
    Entry {
        name: "raw",
        spec: &system::command::RawArgs::SPEC,
        runs: Runs::Host(&system::command::Raw),
    },
    Entry {
        name: "replace",
        spec: &files::replace::ReplaceArgs::SPEC,
        runs: Runs::Host(&files::replace::Replace),
    },
    Entry {
        name: "rpm_key",
        spec: &system::rpm_key::RpmKeyArgs::SPEC,
        runs: Runs::Host(&system::rpm_key::RpmKey),
    },
    Entry {
        name: "script",
        spec: &system::command::ScriptArgs::SPEC,
        runs: Runs::Host(&system::command::Script),
    },
    Entry {
        name: "seboolean",
        spec: &system::seboolean::SeBooleanArgs::SPEC,
        runs: Runs::Host(&system::seboolean::SeBoolean),
    },
    Entry {
        name: "selinux",
        spec: &system::selinux::SelinuxArgs::SPEC,
        runs: Runs::Host(&system::selinux::Selinux),
    },
    Entry {
        name: "service",
        spec: &system::service::ServiceArgs::SPEC,
        runs: Runs::Host(&system::service::Service),
    },
    Entry {
        name: "service_facts",
        spec: &system::service_facts::ServiceFactsArgs::SPEC,
        runs: Runs::Host(&system::service_facts::ServiceFacts),
    },
    Entry {
        name: "set_fact",
        spec: &control::set_fact::SetFactArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "setup",
        spec: &control::setup::SetupArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "shell",
        spec: &system::command::ShellArgs::SPEC,
        runs: Runs::Host(&system::command::Shell),
    },
    Entry {
        name: "slurp",
        spec: &files::slurp::SlurpArgs::SPEC,
        runs: Runs::Host(&files::slurp::Slurp),
    },
    Entry {
        name: "stat",
        spec: &files::stat::StatArgs::SPEC,
        runs: Runs::Host(&files::stat::Stat),
    },
    Entry {
        name: "sysctl",
        spec: &system::sysctl::SysctlArgs::SPEC,
        runs: Runs::Host(&system::sysctl::Sysctl),
    },
    Entry {
        name: "systemd",
        spec: &system::service::SystemdArgs::SPEC,
        runs: Runs::Host(&system::service::Systemd),
    },
    Entry {
        name: "template",
        spec: &files::copy::TemplateArgs::SPEC,
        runs: Runs::Host(&files::copy::Template),
    },
    Entry {
        name: "timezone",
        spec: &system::timezone::TimezoneArgs::SPEC,
        runs: Runs::Host(&system::timezone::Timezone),
    },
    Entry {
        name: "ufw",
        spec: &system::ufw::UfwArgs::SPEC,
        runs: Runs::Host(&system::ufw::Ufw),
    },
    Entry {
        name: "unarchive",
        spec: &system::unarchive::UnarchiveArgs::SPEC,
        runs: Runs::Host(&system::unarchive::Unarchive),
    },
    Entry {
        name: "uri",
        spec: &control::uri::UriArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "user",
        spec: &system::user::UserArgs::SPEC,
        runs: Runs::Host(&system::user::User),
    },
    Entry {
        name: "validate_argument_spec",
        spec: &control::validate_argument_spec::ValidateArgumentSpecArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "wait_for",
        spec: &system::wait_for::WaitForArgs::SPEC,
        runs: Runs::Host(&system::wait_for::WaitFor),
    },
    Entry {
        name: "wait_for_connection",
        spec: &control::wait_for_connection::WaitForConnectionArgs::SPEC,
        runs: Runs::Controller,
    },
    Entry {
        name: "yum_repository",
        spec: &system::yum_repository::YumRepositoryArgs::SPEC,
        runs: Runs::Host(&system::yum_repository::YumRepository),
    },
    Entry {
        name: "zypper",
        spec: &system::zypper::ZypperArgs::SPEC,
        runs: Runs::Host(&system::zypper::Zypper),
    },
    Entry {
        name: "zypper_repository",
        spec: &system::zypper_repository::ZypperRepositoryArgs::SPEC,
        runs: Runs::Host(&system::zypper_repository::ZypperRepository),
    },
];

/// The native module named `name` (canonical short name).
pub fn entry(name: &str) -> Option<&'static Entry> {
    MODULES.iter().find(|e| e.name == name)
}

/// The README's module table (the rows under "## Modules", header included): one row per
/// native module with its doc paragraph and its arguments.
pub fn readme_table() -> String {
    let mut out = String::from("| module | what it does | arguments |\n|---|---|---|\n");
    for e in MODULES {
        let s = e.spec;
        let args: Vec<String> = s.args.iter().map(|a| format!("`{}`", a.name)).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            e.name,
            s.doc,
            args.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module is listed once, sorted, under its spec's name.
    #[test]
    fn registry_is_the_one_list_of_modules() {
        let names: Vec<&str> = MODULES.iter().map(|e| e.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for e in MODULES {
            assert_eq!(e.spec.name, e.name);
            if let Runs::Host(m) = e.runs {
                assert_eq!(m.name(), e.name);
            }
        }
        for full in COLLECTION_NATIVE {
            let short = full.rsplit('.').next().unwrap_or_default();
            assert!(entry(short).is_some(), "{full}");
            assert_eq!(crate::modules::canonical_name(full), short);
        }
        for (alias, name) in MODULE_ALIASES {
            assert!(entry(alias).is_none() && entry(name).is_some(), "{alias}");
        }
    }

    /// The README's module table is what the registry renders; when it differs the test prints
    /// the expected table, to be pasted under "## Modules".
    #[test]
    fn readme_module_table_matches_the_registry() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("| module | what it does | arguments |")
            .expect("README has the module table");
        let len = readme[start..]
            .find("\n\n")
            .map_or(readme.len() - start, |i| i + 1);
        let expected = readme_table();
        assert!(
            readme[start..start + len] == expected,
            "README.md's module table differs from the registry; replace it with:\n\n{expected}"
        );
    }
}
