//! `package`, `apt` and `dnf`: whether packages are installed, absent or at the latest version.
//!
//! Owns the three modules' typed arguments ([`AptArgs`], [`DnfArgs`], [`PackageArgs`]), reading
//! package state (one round trip: a batch with one query per package, plus the apt cache age
//! when a refresh is asked; `package` detects the manager inside the same queries), choosing
//! what to install/upgrade/remove, and doing it in one round trip (`apt-get update && apt-get
//! install ...`). Names are validated (no leading `-`) and passed as quoted arguments. It must
//! not format shell lines.
//!
//! `update_cache` does not make a task change by itself when packages are given: the cache is
//! refreshed before an install that is needed anyway (so `state: latest` compares against the
//! cache as it was). With no `name`, `update_cache` is a change unless the cache is younger
//! than `cache_valid_time` (as Ansible's apt reports it, also under `--check`); `package` then
//! finds the manager with a query of its own.

use serde_json::Value;

use super::common::{command_result, failed, plain_name, result};
use super::ospkg::{self, Os};
use crate::diag::Diagnostic;
use crate::modules::runtime::{
    Args, ArgsExt, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource,
    Verdict,
};
use crate::modules::spec::ArgsRef;
use crate::transport::{AnyTransport, Cmd};

/// `package`: apt or dnf (or another system's manager), whichever the host has.
pub struct Package;
/// `apt`: Debian and Ubuntu.
pub struct Apt;
/// `dnf`: Fedora, RHEL and derivatives.
pub struct Dnf;

/// What the three modules back up and how rollback restores it.
const APT_BACKUP: &str = "Each named package's installed version (or its absence) is recorded; rollback reinstalls that version with `apt-get install --allow-downgrades NAME=VERSION`, or removes a package the step installed. The apt cache is not restored, nor configuration files removed by `purge`; `upgrade`, `autoremove` and `deb` change packages the task does not name and are not reversible.";

crate::module_args! {
    /// Manages packages with apt on Debian and Ubuntu hosts, through `apt-get` and `dpkg-query`
    /// (rdeploy uses neither aptitude nor python3-apt, so `upgrade: full` and `safe` are
    /// apt-get's `dist-upgrade` and `upgrade --with-new-pkgs`, as Ansible's apt does when
    /// aptitude is missing). With `name`, `update_cache` refreshes the cache only before an
    /// install that is needed anyway (Ansible's refreshes it every time without reporting a
    /// change either).
    #[module(
        name = "apt",
        backup = APT_BACKUP,
        returns = &[("cache_updated", "whether the cache was updated"), ("versions", "each named package's version before the step (null when absent)"), ("installed", "packages installed"), ("upgraded", "packages upgraded"), ("removed", "packages removed"), ("stdout", "apt-get's output"), ("stderr", "apt-get's errors"), ("rc", "apt-get's exit status")],
        examples = "- apt:\n    name: [nginx, curl]\n    state: present\n    update_cache: true\n    cache_valid_time: 3600\n- apt:\n    name: nginx\n    state: latest\n    default_release: bookworm-backports\n    install_recommends: false\n    policy_rc_d: 101\n- apt:\n    name: telnet\n    state: absent\n    purge: true\n    autoremove: true\n- apt:\n    upgrade: dist\n    dpkg_options: force-confold,force-confdef",
        check_args = apt_check
    )]
    pub struct AptArgs {
        /// Package name(s), optionally with a version (`nginx=1.24*`, the version a glob). `*`
        /// with `state: latest` upgrades every installed package, as Ansible's does; name
        /// globs (`nginx*`) and `>=` versions are not supported by rdeploy.
        #[arg(kind = List, aliases = &["package", "pkg"])]
        name: Value,
        /// Whether the packages are installed, removed or at the latest version.
        #[arg(default = "present", choices = &["present", "absent", "latest"])]
        state: String,
        /// Run `apt-get update` first.
        #[arg(default = "no", aliases = &["update-cache"])]
        update_cache: bool,
        /// Refresh the cache only when it is older than this many seconds; above 0 it asks
        /// for the refresh by itself (as `update_cache` does), as in Ansible.
        #[arg(default = "0")]
        cache_valid_time: i64,
        /// Install and upgrade from this release (`apt-get -t RELEASE`, e.g.
        /// `bookworm-backports`); the candidate for `state: latest` is read for it too.
        #[arg(aliases = &["default-release"])]
        default_release: Option<String>,
        /// `yes`/`no`: install recommended packages too, or not; unset follows the host's apt
        /// configuration.
        #[arg(aliases = &["install-recommends"])]
        install_recommends: Option<bool>,
        /// Allow installing an older version than the installed one (`--allow-downgrades`).
        #[arg(default = "no", aliases = &["allow-downgrade", "allow_downgrades", "allow-downgrades"])]
        allow_downgrade: bool,
        /// apt-get's `--force-yes` on every apt-get command (it also lets unauthenticated
        /// packages and downgrades through). Almost never what you want.
        #[arg(default = "no")]
        force: bool,
        /// Options for dpkg, comma-separated: each `OPT` becomes `-o Dpkg::Options::=--OPT`.
        #[arg(default = "force-confdef,force-confold")]
        dpkg_options: String,
        /// With `state: absent` (or `autoremove`): also remove configuration files (`apt-get
        /// remove --purge`); a removed package whose configuration files remain is purged.
        #[arg(default = "no")]
        purge: bool,
        /// While apt-get runs, `/usr/sbin/policy-rc.d` exits with this code (101: installed
        /// services are not started); an existing one is put back afterwards.
        policy_rc_d: Option<i64>,
        /// Seconds apt-get waits for the dpkg lock (`-o DPkg::Lock::Timeout=N`), as Ansible's
        /// apt passes it to every apt-get command.
        #[arg(default = "60")]
        lock_timeout: i64,
        /// Install packages that cannot be authenticated (`--allow-unauthenticated`, on
        /// installs and upgrades).
        #[arg(default = "no", aliases = &["allow-unauthenticated"])]
        allow_unauthenticated: bool,
        /// Let installs and removals change held packages (`--allow-change-held-packages`).
        #[arg(default = "no")]
        allow_change_held_packages: bool,
        /// Fail rather than remove packages to satisfy an install or upgrade (`--no-remove`).
        #[arg(default = "no")]
        fail_on_autoremove: bool,
        /// Accepted for Ansible's sake: rdeploy always uses apt-get (never aptitude).
        #[arg(default = "no")]
        force_apt_get: bool,
        /// Only upgrade the named packages that are installed; install none.
        #[arg(default = "no")]
        only_upgrade: bool,
        /// Upgrade the whole system: `yes`/`safe` is `apt-get upgrade --with-new-pkgs`,
        /// `full`/`dist` is `apt-get dist-upgrade`. A change when the simulation (`apt-get -s`)
        /// would install or remove something. Not reversible.
        #[arg(default = "no", choices = &["no", "yes", "safe", "full", "dist"])]
        upgrade: String,
        /// Remove packages installed as dependencies that nothing needs any more: alone, `apt-get
        /// autoremove` (a change when it would remove something); with `name` or `upgrade`,
        /// apt-get's `--auto-remove` on the command that runs; with `deb`, nothing (as
        /// Ansible's apt does in each case). Not reversible.
        #[arg(default = "no")]
        autoremove: bool,
        /// Path on the host of a `.deb` to install (with its dependencies, `apt-get install
        /// FILE`) unless that version of its package is installed; a URL is not supported
        /// (download it with `get_url`). Only with `state: present`. Not reversible.
        #[arg(kind = Path)]
        deb: Option<String>,
    }
}

crate::module_args! {
    /// Manages packages with dnf on Fedora, RHEL and derivatives, through the `dnf` and `rpm`
    /// commands. Also called `yum`, as ansible-core 2.19 redirects it. `update_cache` with no
    /// `name` is reported as a change (Ansible's dnf refreshes and reports none).
    #[module(
        name = "dnf",
        backup = "Each named package's installed version (or its absence) is recorded; rollback installs that version again with `dnf install NAME-VERSION`, or removes a package the step installed.",
        returns = &[("cache_updated", "whether the metadata was refreshed"), ("versions", "each named package's version before the step (null when absent)"), ("installed", "packages installed"), ("upgraded", "packages upgraded"), ("removed", "packages removed"), ("stdout", "dnf's output"), ("stderr", "dnf's errors"), ("rc", "dnf's exit status")],
        examples = "- dnf:\n    name: [nginx, git]\n    state: latest\n    enablerepo: epel\n    exclude: [kernel*]\n- dnf:\n    name: openssl\n    state: latest\n    security: true\n- dnf:\n    name: custom-tool\n    disable_gpg_check: true\n    disablerepo: [updates]",
        check_args = name_or_update_cache
    )]
    pub struct DnfArgs {
        /// Package name(s) or specs.
        #[arg(kind = List, aliases = &["pkg"])]
        name: Value,
        /// Whether the packages are installed, removed or at the latest version.
        #[arg(default = "present", choices = &["present", "absent", "latest", "installed", "removed"])]
        state: String,
        /// Refresh the metadata first (`dnf makecache`).
        #[arg(default = "no", aliases = &["expire-cache"])]
        update_cache: bool,
        /// Repositories to enable for this task (`--enablerepo`, also when reading whether an
        /// upgrade is available).
        #[arg(kind = List)]
        enablerepo: Value,
        /// Repositories to disable for this task (`--disablerepo`).
        #[arg(kind = List)]
        disablerepo: Value,
        /// Packages to leave out of installs and upgrades (`--exclude`).
        #[arg(kind = List)]
        exclude: Value,
        /// Let dnf remove installed packages to resolve conflicts (`--allowerasing`).
        #[arg(default = "no")]
        allowerasing: bool,
        /// Do not check packages' GPG signatures (`--nogpgcheck`).
        #[arg(default = "no")]
        disable_gpg_check: bool,
        /// With `state: latest`: only updates marked as security updates (`--security`).
        #[arg(default = "no")]
        security: bool,
    }
}

crate::module_args! {
    /// Manages packages with the host's package manager, as Ansible's `package` does: `use`
    /// names it, else it is detected on the host (apt or dnf; on a host with pacman, zypper,
    /// FreeBSD's pkg or OpenBSD's pkg_add instead, `name`, `state` and `update_cache` go to that
    /// manager as the `pacman`, `zypper`, `pkgng` or `openbsd_pkg` module runs them). The other
    /// arguments are passed on to the manager it picks, which refuses what it does not take
    /// (`enablerepo` on an apt host fails the task, as Ansible's apt refuses it); see `rdeploy
    /// doc apt` and `rdeploy doc dnf`. `update_cache` alone refreshes the manager's cache.
    /// rdeploy does not read `ansible_package_use`; the detection is its own, not the
    /// `pkg_mgr` fact.
    #[module(
        name = "package",
        backup = "As the manager it picks (`apt` or `dnf`): each named package's installed version is recorded and rollback puts it back. On a pacman, zypper, pkg or OpenBSD host the version is recorded (rpm) or not, but rollback cannot put it back (its restore uses apt or dnf and reports the package as not restored).",
        returns = &[("cache_updated", "whether the cache was updated"), ("versions", "each named package's version before the step (apt, dnf)"), ("installed", "packages installed"), ("upgraded", "packages upgraded"), ("removed", "packages removed"), ("stdout", "the manager's output"), ("stderr", "the manager's errors")],
        examples = "- package:\n    name: git\n    state: present\n- package:\n    name: htop\n    use: apt\n    update_cache: true\n    cache_valid_time: 3600",
        check_args = name_or_update_cache
    )]
    pub struct PackageArgs {
        /// Package name(s).
        #[arg(kind = List, aliases = &["pkg"])]
        name: Value,
        /// Whether the packages are installed, removed or at the latest version.
        #[arg(default = "present", choices = &["present", "absent", "latest"])]
        state: String,
        /// The manager module to run: `auto` (detect it on the host), `apt`, `dnf` (`yum`),
        /// `pacman`, `zypper`, `pkgng` or `openbsd_pkg`; another manager is not supported by
        /// rdeploy.
        #[arg(rename = "use", default = "auto")]
        use_: String,
        /// Refresh the cache first (`apt-get update`, `dnf makecache`, `pacman -Sy`...).
        #[arg(default = "no", aliases = &["update-cache"])]
        update_cache: bool,
        /// Passed on to apt: refresh only a cache older than this many seconds.
        cache_valid_time: Option<i64>,
        /// Passed on to apt (`--allow-downgrades`).
        allow_downgrade: Option<bool>,
        /// Passed on to apt (`-t RELEASE`).
        default_release: Option<String>,
        /// Passed on to apt.
        install_recommends: Option<bool>,
        /// Passed on to apt (`Dpkg::Options`).
        dpkg_options: Option<String>,
        /// Passed on to apt (`/usr/sbin/policy-rc.d` exit code while apt-get runs).
        policy_rc_d: Option<i64>,
        /// Passed on to apt (`--purge`).
        purge: Option<bool>,
        /// Passed on to apt (`--force-yes`).
        force: Option<bool>,
        /// Passed on to apt: only upgrade installed packages.
        only_upgrade: Option<bool>,
        /// Passed on to apt (`DPkg::Lock::Timeout`, 60 by default).
        lock_timeout: Option<i64>,
        /// Passed on to apt (`--allow-unauthenticated`).
        allow_unauthenticated: Option<bool>,
        /// Passed on to apt (`--allow-change-held-packages`).
        allow_change_held_packages: Option<bool>,
        /// Passed on to apt (`--no-remove`).
        fail_on_autoremove: Option<bool>,
        /// Passed on to dnf (`--enablerepo`).
        #[arg(kind = List)]
        enablerepo: Value,
        /// Passed on to dnf (`--disablerepo`).
        #[arg(kind = List)]
        disablerepo: Value,
        /// Passed on to dnf (`--exclude`).
        #[arg(kind = List)]
        exclude: Value,
        /// Passed on to dnf (`--allowerasing`).
        allowerasing: Option<bool>,
        /// Passed on to dnf (`--nogpgcheck`).
        disable_gpg_check: Option<bool>,
        /// Passed on to dnf (`--security` on upgrades).
        security: Option<bool>,
    }
}

/// The module's own check at load: something to do.
fn name_or_update_cache(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let apt_alone = a.module == "apt" && ["upgrade", "autoremove", "deb"].iter().any(|k| a.has(k));
    if !a.has("name") && !a.has("update_cache") && !apt_alone {
        vec![Diagnostic::at(
            a.module_loc,
            format!("module '{}' needs 'name' or 'update_cache'", a.module),
        )]
    } else {
        Vec::new()
    }
}

/// apt's check at load: something to do, and at most one of `deb`, `name`, `upgrade` (Ansible's
/// `mutually_exclusive`).
fn apt_check(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let mut d = name_or_update_cache(a);
    let given: Vec<&str> = ["deb", "name", "upgrade"]
        .into_iter()
        .filter(|k| a.has(k))
        .collect();
    if given.len() > 1 {
        d.push(Diagnostic::at(
            a.module_loc,
            format!(
                "arguments {} of module 'apt' are mutually exclusive",
                given
                    .iter()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    d
}

/// A list argument as Ansible reads it (a string is split on commas).
fn list_of(v: &Value) -> Vec<String> {
    let mut m = Args::new();
    m.insert("v".into(), v.clone());
    m.list_arg("v", true)
}

/// Repository or exclude names for dnf options: plain words.
fn plain_list(what: &str, v: &Value) -> Result<Vec<String>, ModuleError> {
    let items = list_of(v);
    for r in &items {
        plain_name(what, r)?;
    }
    Ok(items)
}

/// The package manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Mgr {
    #[default]
    Apt,
    Dnf,
}

/// Reads one package. `$1`: `auto`, `apt` or `dnf`; `$2`: the name; `$3`: `latest` to also
/// ask whether an upgrade is available; `$4`: apt's release (`-t`); the rest: dnf's options
/// for `check-update`. Prints `manager M`, then `installed VERSION` or `absent` (apt: then
/// `config-files` when only its configuration files remain), then (with `latest`)
/// `upgradable yes|no`.
const QUERY: &str = crate::host::PACKAGE_QUERY;

/// Which manager the host has, for `package` with no package to query: prints `manager M`.
const DETECT: &str = crate::host::PACKAGE_DETECT;

/// Seconds since the apt lists were last updated (a large number when unknown).
const APT_CACHE_AGE: &str = crate::host::APT_CACHE_AGE;

/// Puts `/usr/sbin/policy-rc.d` exiting with `$1` in place, keeping an existing one aside
/// (Ansible's `policy_rc_d`). Runs before the apt-get commands, in the same shell.
const POLICY_RC_D_ON: &str = crate::host::POLICY_RC_D_ON;

/// Puts the previous `/usr/sbin/policy-rc.d` back (or removes ours), keeping the apt-get
/// commands' exit status.
const POLICY_RC_D_OFF: &str = crate::host::POLICY_RC_D_OFF;

/// One package as the host has it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pkg {
    manager: Option<Mgr>,
    /// Another system's manager (`pacman`, `zypper`, `pkgng`, `openbsd_pkg`): the task goes
    /// to [`super::ospkg`].
    other: Option<Os>,
    /// The manager the module names (`dnf`, `apt`) is not on the host.
    missing: Option<String>,
    version: Option<String>,
    /// apt: removed, but its configuration files remain (`purge` removes them).
    config_files: bool,
    upgradable: bool,
}

fn parse_query(text: &str) -> Result<Pkg, String> {
    let mut p = Pkg {
        manager: None,
        other: None,
        missing: None,
        version: None,
        config_files: false,
        upgradable: false,
    };
    let mut seen_manager = false;
    for line in text.lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        match k {
            "manager" => {
                seen_manager = true;
                p.other = other_os(v);
                p.missing = v.strip_prefix("missing-").map(str::to_string);
                p.manager = match v {
                    "apt" => Some(Mgr::Apt),
                    "dnf" => Some(Mgr::Dnf),
                    _ => None,
                };
            }
            "installed" => p.version = Some(v.to_string()),
            "absent" => p.version = None,
            "config-files" => p.config_files = true,
            "upgradable" => p.upgradable = v == "yes",
            _ => return Err(format!("unexpected line {line:?}")),
        }
    }
    if !seen_manager {
        return Err("no manager line".into());
    }
    Ok(p)
}

/// Another system's manager by its module's name.
fn other_os(name: &str) -> Option<Os> {
    match name {
        "pacman" => Some(Os::Pacman),
        "zypper" => Some(Os::Zypper),
        "pkgng" => Some(Os::Pkgng),
        "openbsd_pkg" => Some(Os::OpenBsd),
        _ => None,
    }
}

/// `name=VERSION` (apt) split into name and version pattern.
fn split_spec(mgr_hint: Option<Mgr>, spec: &str) -> (&str, Option<&str>) {
    match (mgr_hint, spec.split_once('=')) {
        (Some(Mgr::Dnf), _) | (_, None) => (spec, None),
        (_, Some((n, v))) => (n, Some(v)),
    }
}

/// `*` and `?` glob match, as apt does for `pkg=1.2*`.
fn glob_match(pat: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// What `apply` does.
#[derive(Debug, Default)]
struct Plan {
    mgr: Mgr,
    update: bool,
    install: Vec<String>,
    upgrade: Vec<String>,
    remove: Vec<String>,
    /// apt's options on every apt-get command: `Dpkg::Options` and `--force-yes`.
    apt_common: Vec<String>,
    /// The options of `apt-get install`, of the whole-system upgrade verb, of `apt-get remove`
    /// and of a lone `apt-get autoremove`, as Ansible's apt passes them to each.
    apt_install: Vec<String>,
    apt_upgrade: Vec<String>,
    apt_remove: Vec<String>,
    apt_autoremove: Vec<String>,
    /// apt's `policy_rc_d`.
    policy_rc_d: Option<i64>,
    /// dnf's options for every dnf command (repositories, excludes, gpg, erasing).
    dnf_opts: Vec<String>,
    /// dnf's `security`: `--security` on upgrades.
    security: bool,
    /// apt's `deb`: a package file on the host to install.
    deb: Option<String>,
    /// apt's `upgrade`: `upgrade` (safe) or `dist-upgrade`.
    full_upgrade: Option<&'static str>,
    /// apt's `autoremove` alone: `apt-get autoremove`.
    autoremove: bool,
}

/// What the task asks, whichever module it came from.
#[derive(Debug, Default)]
struct Want {
    names: Vec<String>,
    state: &'static str,
    update: bool,
    cache_valid: u64,
    /// apt's `default_release` (`-t`): installs and upgrades come from it.
    release: Option<String>,
    /// apt's `install_recommends`; unset follows the host's apt configuration.
    recommends: Option<bool>,
    /// apt's `allow_downgrade`.
    downgrade: bool,
    /// apt's `force`.
    force: bool,
    /// apt's `dpkg_options`, split.
    dpkg_options: Vec<String>,
    /// apt's `purge`.
    purge: bool,
    /// apt's `policy_rc_d`.
    policy_rc_d: Option<i64>,
    /// apt's `lock_timeout` (seconds).
    lock_timeout: i64,
    /// apt's `allow_unauthenticated`, `allow_change_held_packages` and `fail_on_autoremove`.
    unauthenticated: bool,
    change_held: bool,
    no_remove: bool,
    /// dnf's `enablerepo`, `disablerepo` and `exclude`.
    enable: Vec<String>,
    disable: Vec<String>,
    exclude: Vec<String>,
    /// dnf's `allowerasing`.
    erasing: bool,
    /// dnf's `disable_gpg_check`.
    nogpgcheck: bool,
    /// dnf's `security`.
    security: bool,
    /// apt's `only_upgrade`: named packages that are not installed are left alone.
    only_upgrade: bool,
    /// apt's `upgrade`, as the apt-get verb: `upgrade` or `dist-upgrade`.
    full_upgrade: Option<&'static str>,
    /// apt's `autoremove`.
    autoremove: bool,
    /// apt's `deb`.
    deb: Option<String>,
}

/// Package names, each a plain name.
fn names_of(v: &Value) -> Result<Vec<String>, ModuleError> {
    let names = list_of(v);
    for n in &names {
        plain_name("package", n)?;
    }
    Ok(names)
}

fn state_of(s: &str) -> &'static str {
    match s {
        "absent" | "removed" => "absent",
        "latest" => "latest",
        _ => "present",
    }
}

fn nothing_to_do(w: &Want) -> Result<(), ModuleError> {
    if w.names.is_empty()
        && !w.update
        && w.full_upgrade.is_none()
        && !w.autoremove
        && w.deb.is_none()
    {
        return Err(ModuleError::Args("give 'name' or 'update_cache'".into()));
    }
    Ok(())
}

fn release_of(r: Option<String>) -> Result<Option<String>, ModuleError> {
    let r = r.filter(|r| !r.is_empty());
    if let Some(r) = &r {
        plain_name("apt", r)?;
    }
    Ok(r)
}

fn dpkg_options_of(text: &str) -> Result<Vec<String>, ModuleError> {
    text.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            if o.contains(char::is_whitespace) || o.starts_with('-') {
                Err(ModuleError::Args(format!(
                    "dpkg_options: '{o}' is not a dpkg option name (give them as force-confold,force-confdef)"
                )))
            } else {
                Ok(o.to_string())
            }
        })
        .collect()
}

impl AptArgs {
    fn want(self) -> Result<Want, ModuleError> {
        let mut names = names_of(&self.name)?;
        let state = state_of(&self.state);
        let star = names.iter().any(|n| n == "*");
        names.retain(|n| n != "*");
        let mut full_upgrade = match self.upgrade.as_str() {
            "no" => None,
            "yes" | "safe" => Some("upgrade"),
            _ => Some("dist-upgrade"),
        };
        if star && state == "latest" {
            if !names.is_empty() {
                return Err(failed(
                    "unable to install additional packages when upgrading all installed packages",
                    Args::new(),
                ));
            }
            full_upgrade = Some("upgrade");
        }
        let deb = self.deb.filter(|d| !d.is_empty());
        if let Some(d) = &deb {
            if d.contains("://") {
                return Err(ModuleError::Args(format!(
                    "deb {d}: a URL is not supported by rdeploy; download it with get_url and give its path on the host"
                )));
            }
            if state != "present" {
                return Err(failed("deb only supports state=present", Args::new()));
            }
        }
        let cache_valid = u64::try_from(self.cache_valid_time).unwrap_or(0);
        if self.force_apt_get {
            tracing::debug!("apt: force_apt_get changes nothing, rdeploy always runs apt-get");
        }
        let w = Want {
            names,
            state,
            update: self.update_cache || cache_valid > 0,
            cache_valid,
            release: release_of(self.default_release)?,
            recommends: self.install_recommends,
            downgrade: self.allow_downgrade,
            force: self.force,
            dpkg_options: dpkg_options_of(&self.dpkg_options)?,
            purge: self.purge,
            policy_rc_d: self.policy_rc_d,
            lock_timeout: self.lock_timeout,
            unauthenticated: self.allow_unauthenticated,
            change_held: self.allow_change_held_packages,
            no_remove: self.fail_on_autoremove,
            only_upgrade: self.only_upgrade,
            full_upgrade,
            autoremove: self.autoremove,
            deb,
            ..Want::default()
        };
        nothing_to_do(&w)?;
        Ok(w)
    }
}

impl DnfArgs {
    fn want(self) -> Result<Want, ModuleError> {
        let w = Want {
            names: names_of(&self.name)?,
            state: state_of(&self.state),
            update: self.update_cache,
            enable: plain_list("dnf repository", &self.enablerepo)?,
            disable: plain_list("dnf repository", &self.disablerepo)?,
            exclude: plain_list("excluded package", &self.exclude)?,
            erasing: self.allowerasing,
            nogpgcheck: self.disable_gpg_check,
            security: self.security,
            ..Want::default()
        };
        nothing_to_do(&w)?;
        Ok(w)
    }
}

/// The manager `package` runs, by `use`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    /// Detected on the host.
    Auto,
    Mgr(Mgr),
    Other(Os),
}

impl PackageArgs {
    fn want(self) -> Result<(Want, Use), ModuleError> {
        let manager = match super::super::canonical_name(&self.use_) {
            "auto" => Use::Auto,
            "apt" => Use::Mgr(Mgr::Apt),
            "dnf" => Use::Mgr(Mgr::Dnf),
            other => other_os(other).map(Use::Other).ok_or_else(|| {
                ModuleError::Args(format!(
                    "use: package manager '{}' is not supported by rdeploy (it runs apt, dnf, yum, pacman, zypper, pkgng and openbsd_pkg)",
                    self.use_
                ))
            })?,
        };
        let cache_valid = self
            .cache_valid_time
            .map_or(0, |n| u64::try_from(n).unwrap_or(0));
        let w = Want {
            names: names_of(&self.name)?,
            state: state_of(&self.state),
            update: self.update_cache || cache_valid > 0,
            cache_valid,
            release: release_of(self.default_release)?,
            recommends: self.install_recommends,
            downgrade: self.allow_downgrade.unwrap_or(false),
            dpkg_options: dpkg_options_of(
                self.dpkg_options
                    .as_deref()
                    .unwrap_or("force-confdef,force-confold"),
            )?,
            policy_rc_d: self.policy_rc_d,
            purge: self.purge.unwrap_or(false),
            force: self.force.unwrap_or(false),
            only_upgrade: self.only_upgrade.unwrap_or(false),
            lock_timeout: self.lock_timeout.unwrap_or(60),
            unauthenticated: self.allow_unauthenticated.unwrap_or(false),
            change_held: self.allow_change_held_packages.unwrap_or(false),
            no_remove: self.fail_on_autoremove.unwrap_or(false),
            security: self.security.unwrap_or(false),
            enable: plain_list("dnf repository", &self.enablerepo)?,
            disable: plain_list("dnf repository", &self.disablerepo)?,
            exclude: plain_list("excluded package", &self.exclude)?,
            erasing: self.allowerasing.unwrap_or(false),
            nogpgcheck: self.disable_gpg_check.unwrap_or(false),
            ..Want::default()
        };
        nothing_to_do(&w)?;
        Ok((w, manager))
    }
}

/// The arguments `package` itself reads; the others go to the manager it picks.
const PACKAGE_OWN: &[&str] = &["name", "state", "update_cache", "use"];

/// `package`: refuses what the picked manager's module would not take, as Ansible's manager
/// module refuses it (`Unsupported parameters`), or says rdeploy's does not carry it.
fn refuse_for(
    module: &str,
    own: &[crate::modules::spec::ArgSpec],
    args: &Args,
) -> Result<(), ModuleError> {
    let given: Vec<&str> = args
        .iter()
        .filter(|(k, v)| !v.is_null() && !k.starts_with('_'))
        .map(|(k, _)| k.as_str())
        .filter(|k| *k != "use" && !own.iter().any(|a| a.is_named(k)))
        .collect();
    if given.is_empty() {
        return Ok(());
    }
    let ansible_takes = |k: &str| {
        crate::modules::ansible::builtin_args(module).is_some_and(|mut a| a.any(|a| a == k))
    };
    if let Some(k) = given.iter().find(|k| ansible_takes(k)) {
        return Err(failed(
            format!("argument '{k}' of module '{module}' is not supported by rdeploy"),
            Args::new(),
        ));
    }
    Err(failed(
        format!(
            "Unsupported parameters for ({module}) module: {}",
            given.join(", ")
        ),
        Args::new(),
    ))
}

/// Reads a `.deb` on the host (`$1`): prints `deb NAME VERSION`, then `installed VERSION` or
/// `absent` for that package; `missing` when the file is not there.
const DEB_QUERY: &str = crate::host::PACKAGE_DEB_QUERY;

/// What the simulation (`apt-get -s VERB`) would do: its `Inst`/`Remv` lines' packages.
fn simulated(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("Inst ").or_else(|| l.strip_prefix("Remv ")))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// `a, b, c` of at most ten names, then `and N more`.
fn few(names: &[String]) -> String {
    let mut shown = names
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 10 {
        shown.push_str(&format!(" and {} more", names.len() - 10));
    }
    shown
}

/// `apt-get -s VERB` with the options that change what it would do.
fn simulate_cmd(verb: &'static str, opts: &[String]) -> Cmd {
    Cmd::raw("LC_ALL=C apt-get -s -q")
        .op(verb)
        .args(opts.iter().cloned())
        .env("DEBIAN_FRONTEND", "noninteractive")
}

fn query_cmd(
    which: Option<Mgr>,
    name: &str,
    latest: bool,
    release: Option<&str>,
    dnf_opts: &[String],
) -> Cmd {
    let m = match which {
        None => "auto",
        Some(Mgr::Apt) => "apt",
        Some(Mgr::Dnf) => "dnf",
    };
    Cmd::raw("set --")
        .arg(m)
        .arg(name)
        .arg(if latest { "latest" } else { "" })
        .arg(release.unwrap_or_default())
        .args(dnf_opts.iter().cloned())
        .op(QUERY)
}

/// The options Ansible's apt gives apt-get `verb` (`install`, `upgrade`, `dist-upgrade`,
/// `remove`, `autoremove`), besides the common ones; `auto_remove` is whether `--auto-remove`
/// rides on an install or removal.
fn apt_verb_opts(verb: &str, w: &Want, auto_remove: bool) -> Vec<String> {
    let flag = |on: bool, f: &str| on.then(|| f.to_string());
    let release = || {
        w.release
            .iter()
            .flat_map(|r| ["-t".to_string(), r.clone()])
            .collect::<Vec<_>>()
    };
    match verb {
        "install" => release()
            .into_iter()
            .chain(w.recommends.map(|on| {
                if on {
                    "--install-recommends".to_string()
                } else {
                    "--no-install-recommends".to_string()
                }
            }))
            .chain(flag(w.downgrade, "--allow-downgrades"))
            .chain(flag(w.unauthenticated, "--allow-unauthenticated"))
            .chain(flag(w.change_held, "--allow-change-held-packages"))
            .chain(flag(w.no_remove, "--no-remove"))
            .chain(flag(auto_remove, "--auto-remove"))
            .collect(),
        "upgrade" | "dist-upgrade" => flag(verb == "upgrade", "--with-new-pkgs")
            .into_iter()
            .chain(flag(w.autoremove, "--auto-remove"))
            .chain(flag(w.downgrade, "--allow-downgrades"))
            .chain(flag(w.unauthenticated, "--allow-unauthenticated"))
            .chain(flag(w.no_remove, "--no-remove"))
            .chain(release())
            .collect(),
        "remove" => flag(w.purge, "--purge")
            .into_iter()
            .chain(flag(auto_remove, "--auto-remove"))
            .chain(flag(w.change_held, "--allow-change-held-packages"))
            .collect(),
        _ => flag(w.purge, "--purge").into_iter().collect(),
    }
}

async fn check_module(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    module: &str,
) -> Result<Verdict, ModuleError> {
    match module {
        "apt" => check_packages(tr, ctx, AptArgs::parse(args)?.want()?, Some(Mgr::Apt), None).await,
        "dnf" => check_packages(tr, ctx, DnfArgs::parse(args)?.want()?, Some(Mgr::Dnf), None).await,
        _ => {
            let (w, manager) = PackageArgs::parse(args)?.want()?;
            match manager {
                Use::Auto => check_packages(tr, ctx, w, None, Some(args)).await,
                Use::Mgr(m) => {
                    refuse_for(mgr_name(m), mgr_spec(m), args)?;
                    check_packages(tr, ctx, w, Some(m), None).await
                }
                Use::Other(os) => delegate(tr, ctx, args, os, &w).await,
            }
        }
    }
}

fn mgr_name(m: Mgr) -> &'static str {
    match m {
        Mgr::Apt => "apt",
        Mgr::Dnf => "dnf",
    }
}

fn mgr_spec(m: Mgr) -> &'static [crate::modules::spec::ArgSpec] {
    match m {
        Mgr::Apt => AptArgs::ARGS,
        Mgr::Dnf => DnfArgs::ARGS,
    }
}

/// Checks the packages of `w` with manager `which` (`None`: `package` detects it; then
/// `detected` holds `package`'s arguments, refused as the detected manager would refuse them).
async fn check_packages(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    w: Want,
    which: Option<Mgr>,
    detected: Option<&Args>,
) -> Result<Verdict, ModuleError> {
    let latest = w.state == "latest";
    let dnf_query_opts: Vec<String> = dnf_repo_opts(&w)
        .into_iter()
        .chain(w.security.then(|| "--security".to_string()))
        .collect();
    let mut cmds: Vec<Cmd> = w
        .names
        .iter()
        .map(|n| {
            query_cmd(
                which,
                split_spec(which, n).0,
                latest,
                w.release.as_deref(),
                &dnf_query_opts,
            )
        })
        .collect();
    // `package: update_cache: true` alone: the manager is found by a query of its own.
    let detect = which.is_none() && w.names.is_empty();
    if detect {
        cmds.push(Cmd::raw(DETECT));
    }
    // `package` hands `cache_valid_time` to apt, as Ansible's does (the host decides).
    let want_age = w.update && which != Some(Mgr::Dnf) && w.cache_valid > 0;
    if want_age {
        cmds.push(Cmd::raw(APT_CACHE_AGE));
    }
    // apt's whole-system steps, after the queries above: the deb's state, the simulations.
    let extra_at = cmds.len();
    if let Some(d) = &w.deb {
        cmds.push(Cmd::raw("set --").arg(d.clone()).op(DEB_QUERY));
    }
    if let Some(verb) = w.full_upgrade {
        cmds.push(simulate_cmd(verb, &apt_verb_opts(verb, &w, false)));
    }
    // `autoremove` is a step of its own only when nothing else runs (else it is apt-get's
    // `--auto-remove` on that command, as in Ansible).
    let lone_autoremove =
        w.autoremove && w.names.is_empty() && w.full_upgrade.is_none() && w.deb.is_none();
    if lone_autoremove {
        cmds.push(simulate_cmd("autoremove", &[]));
    }
    let outs = if cmds.is_empty() {
        Vec::new()
    } else {
        let batch = Cmd::batch(&cmds).map_err(|e| ModuleError::Args(e.to_string()))?;
        ctx.query_batch(tr, &batch)
            .await?
            .map_err(|e| failed(format!("cannot read package state: {e}"), Args::new()))?
    };
    let mut mgr = which;
    let mut changes = Vec::new();
    // Ansible's apt installs a `deb` without `--auto-remove`.
    let auto_remove = w.autoremove && !lone_autoremove && w.deb.is_none();
    let mut plan = Plan {
        mgr: which.unwrap_or(Mgr::Apt),
        apt_common: w
            .dpkg_options
            .iter()
            .flat_map(|o| ["-o".to_string(), format!("Dpkg::Options::=--{o}")])
            .chain([
                "-o".to_string(),
                format!("DPkg::Lock::Timeout={}", w.lock_timeout),
            ])
            .chain(w.force.then(|| "--force-yes".to_string()))
            .collect(),
        apt_install: apt_verb_opts("install", &w, auto_remove),
        apt_upgrade: w
            .full_upgrade
            .map(|verb| apt_verb_opts(verb, &w, false))
            .unwrap_or_default(),
        apt_remove: apt_verb_opts("remove", &w, auto_remove),
        apt_autoremove: apt_verb_opts("autoremove", &w, false),
        policy_rc_d: w.policy_rc_d,
        dnf_opts: dnf_repo_opts(&w)
            .into_iter()
            .chain(w.nogpgcheck.then(|| "--nogpgcheck".to_string()))
            .chain(w.erasing.then(|| "--allowerasing".to_string()))
            .collect(),
        security: w.security,
        ..Plan::default()
    };
    let mut versions = serde_json::Map::new();
    for (spec, out) in w.names.iter().zip(&outs) {
        let p = parse_query(&out.stdout_lossy())
            .map_err(|e| failed(format!("cannot read the state of {spec}: {e}"), Args::new()))?;
        if let Some(os) = p.other {
            return delegate(tr, ctx, detected.unwrap_or(&Args::new()), os, &w).await;
        }
        let Some(m) = p.manager else {
            // What Ansible's `dnf`/`apt` say on a host without that manager.
            return Err(failed(
                match p.missing.as_deref() {
                    Some("dnf") => {
                        "Could not detect which major revision of dnf is in use, which is required to determine module backend."
                    }
                    Some("apt") => {
                        "apt-get and dpkg-query are not on this host: the apt module needs a Debian-family host"
                    }
                    _ => "no supported package manager (apt or dnf) found on the host",
                },
                Args::new(),
            ));
        };
        mgr = Some(m);
        let (name, ver) = split_spec(Some(m), spec);
        versions.insert(
            name.to_string(),
            p.version.clone().map(Value::from).unwrap_or(Value::Null),
        );
        let before = p.version.clone().unwrap_or_else(|| "absent".into());
        let attr = |after: &str| Change::Attr {
            subject: name.to_string(),
            what: "version".into(),
            before: before.clone(),
            after: after.into(),
        };
        match (w.state, &p.version) {
            ("absent", Some(_)) => {
                plan.remove.push(name.to_string());
                changes.push(attr("absent"));
            }
            ("absent", None) if w.purge && p.config_files => {
                plan.remove.push(name.to_string());
                changes.push(Change::Attr {
                    subject: name.to_string(),
                    what: "configuration files".into(),
                    before: "present".into(),
                    after: "purged".into(),
                });
            }
            ("present" | "latest", None) if !w.only_upgrade => {
                plan.install.push(spec.clone());
                changes.push(attr(ver.unwrap_or(if latest {
                    "latest"
                } else {
                    "present"
                })));
            }
            ("present", Some(v)) if ver.is_some_and(|want| !glob_match(want, v)) => {
                plan.install.push(spec.clone());
                changes.push(attr(ver.unwrap_or_default()));
            }
            ("latest", Some(_)) if p.upgradable => {
                plan.upgrade.push(spec.clone());
                changes.push(attr("latest"));
            }
            _ => {}
        }
    }
    if detect {
        let found = outs
            .first()
            .map(|o| parse_query(&o.stdout_lossy()))
            .transpose()
            .map_err(|e| failed(format!("cannot find the package manager: {e}"), Args::new()))?;
        if let Some(os) = found.as_ref().and_then(|p| p.other) {
            return delegate(tr, ctx, detected.unwrap_or(&Args::new()), os, &w).await;
        }
        mgr = found.and_then(|p| p.manager);
        if mgr.is_none() {
            return Err(failed(
                "no supported package manager (apt or dnf) found on the host",
                Args::new(),
            ));
        }
    }
    if let Some(m) = mgr {
        plan.mgr = m;
    }
    // Ansible's `package` passes every argument on to the manager it picks, which refuses
    // what it does not take.
    if let Some(args) = detected {
        refuse_for(mgr_name(plan.mgr), mgr_spec(plan.mgr), args)?;
    }
    let mut extra = outs.iter().skip(extra_at);
    let mut next_extra = |what: &str| {
        extra
            .next()
            .filter(|o| o.success())
            .map(|o| o.stdout_lossy().into_owned())
            .ok_or_else(|| failed(format!("cannot read {what} on the host"), Args::new()))
    };
    if let Some(d) = &w.deb {
        let text = next_extra("the .deb")?;
        let mut lines = text.lines();
        let head = lines.next().unwrap_or_default();
        let Some(("deb", nv)) = head.split_once(' ') else {
            return Err(failed(format!("deb file {d} does not exist"), Args::new()));
        };
        let (name, version) = nv.split_once(' ').unwrap_or((nv, ""));
        let installed = lines.next().and_then(|l| l.strip_prefix("installed "));
        if installed != Some(version) {
            changes.push(Change::Attr {
                subject: name.to_string(),
                what: "version".into(),
                before: installed.unwrap_or("absent").to_string(),
                after: version.to_string(),
            });
            plan.deb = Some(d.clone());
        }
    }
    if let Some(verb) = w.full_upgrade {
        let would = simulated(&next_extra("what an upgrade would do")?);
        if !would.is_empty() {
            changes.push(Change::Run {
                command: format!("apt-get {verb} ({})", few(&would)),
            });
            plan.full_upgrade = Some(verb);
        }
    }
    if lone_autoremove {
        let would = simulated(&next_extra("what autoremove would remove")?);
        if !would.is_empty() {
            changes.push(Change::Run {
                command: format!("apt-get autoremove ({})", few(&would)),
            });
            plan.autoremove = true;
        }
    }
    let pkg_drift = !changes.is_empty();
    let stale = match outs.get(w.names.len() + usize::from(detect)) {
        Some(o) if want_age => o
            .stdout_lossy()
            .trim()
            .parse::<u64>()
            .map_or(true, |age| age >= w.cache_valid),
        _ => true,
    };
    plan.update = w.update && stale && (pkg_drift || w.names.is_empty());
    if plan.update {
        changes.insert(
            0,
            Change::Run {
                command: update_cmd(plan.mgr).display(),
            },
        );
    }
    let mut r = result([("versions", Value::Object(versions))]);
    if changes.is_empty() {
        r.insert("cache_updated".into(), Value::from(false));
        return Ok(Verdict::InSync { result: r });
    }
    Ok(Verdict::Drift(Drift::new(changes, plan)))
}

/// dnf's `--enablerepo=`, `--disablerepo=` and `--exclude=` (also for `check-update`).
fn dnf_repo_opts(w: &Want) -> Vec<String> {
    w.enable
        .iter()
        .map(|r| format!("--enablerepo={r}"))
        .chain(w.disable.iter().map(|r| format!("--disablerepo={r}")))
        .chain(w.exclude.iter().map(|p| format!("--exclude={p}")))
        .collect()
}

fn update_cmd(mgr: Mgr) -> Cmd {
    match mgr {
        Mgr::Apt => Cmd::raw("apt-get update -q").env("DEBIAN_FRONTEND", "noninteractive"),
        Mgr::Dnf => Cmd::raw("dnf makecache -q"),
    }
}

/// `dnf VERB -y -q` with the task's options, then `pkgs`.
fn dnf(verb: &'static str, opts: &[String], pkgs: &[String]) -> Cmd {
    Cmd::raw("dnf")
        .op(verb)
        .op("-y -q")
        .args(opts.iter().cloned())
        .args(pkgs.iter().cloned())
}

/// `apt-get VERB -y -q` with the task's dpkg options and `--force-yes` (`common`), then the
/// verb's own options and `pkgs`.
fn apt_get(verb: &'static str, common: &[String], opts: &[String], pkgs: &[String]) -> Cmd {
    Cmd::raw("apt-get")
        .op(verb)
        .op("-y -q")
        .args(common.iter().cloned())
        .args(opts.iter().cloned())
        .args(pkgs.iter().cloned())
        .env("DEBIAN_FRONTEND", "noninteractive")
}

fn plan_cmd(p: &Plan) -> Option<Cmd> {
    let mut steps = Vec::new();
    if p.update {
        steps.push(update_cmd(p.mgr));
    }
    let mut apt_steps = Vec::new();
    match p.mgr {
        Mgr::Apt => {
            // `apt-get install` installs missing packages and upgrades installed ones to the
            // candidate version.
            let mut install = p.install.clone();
            install.extend(p.upgrade.iter().cloned());
            if let Some(d) = &p.deb {
                // apt-get takes a file for a path with a `/`.
                install.push(if d.contains('/') {
                    d.clone()
                } else {
                    format!("./{d}")
                });
            }
            if !install.is_empty() {
                apt_steps.push(apt_get("install", &p.apt_common, &p.apt_install, &install));
            }
            if let Some(verb) = p.full_upgrade {
                apt_steps.push(apt_get(verb, &p.apt_common, &p.apt_upgrade, &[]));
            }
            if !p.remove.is_empty() {
                apt_steps.push(apt_get("remove", &p.apt_common, &p.apt_remove, &p.remove));
            }
            if p.autoremove {
                apt_steps.push(apt_get("autoremove", &p.apt_common, &p.apt_autoremove, &[]));
            }
        }
        Mgr::Dnf => {
            if !p.install.is_empty() {
                steps.push(dnf("install", &p.dnf_opts, &p.install));
            }
            if !p.upgrade.is_empty() {
                let mut opts = p.dnf_opts.clone();
                if p.security {
                    opts.push("--security".into());
                }
                steps.push(dnf("upgrade", &opts, &p.upgrade));
            }
            if !p.remove.is_empty() {
                steps.push(dnf("remove", &p.dnf_opts, &p.remove));
            }
        }
    }
    let apt_part = apt_steps.into_iter().reduce(Cmd::and);
    let apt_part = match (apt_part, p.policy_rc_d) {
        (Some(c), Some(code)) => Some(
            Cmd::raw("set --")
                .arg(code.to_string())
                .op(POLICY_RC_D_ON)
                .and(c)
                .then(Cmd::raw(POLICY_RC_D_OFF)),
        ),
        (c, _) => c,
    };
    steps.extend(apt_part);
    steps.into_iter().reduce(Cmd::and)
}

/// `package` on a host whose manager is another system's: what Ansible's `package` hands to
/// `pacman`, `zypper`, `pkgng` or `openbsd_pkg`, checked by [`ospkg`].
struct OtherPlan {
    os: Os,
    plan: ospkg::Plan,
}

fn os_name(os: Os) -> &'static str {
    match os {
        Os::Pacman => "pacman",
        Os::Zypper => "zypper",
        Os::Pkgng => "pkgng",
        Os::OpenBsd => "openbsd_pkg",
    }
}

/// `package` on another system's manager: `name`, `state` and `update_cache` go to it; the
/// apt and dnf arguments are refused, as that manager's module refuses them under Ansible.
async fn delegate(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    args: &Args,
    os: Os,
    w: &Want,
) -> Result<Verdict, ModuleError> {
    let given: Vec<&str> = args
        .iter()
        .filter(|(k, v)| !v.is_null() && !k.starts_with('_') && !PACKAGE_OWN.contains(&k.as_str()))
        .map(|(k, _)| k.as_str())
        .collect();
    if !given.is_empty() {
        return Err(failed(
            format!(
                "Unsupported parameters for ({}) module: {}",
                os_name(os),
                given.join(", ")
            ),
            Args::new(),
        ));
    }
    let refresh = match os {
        Os::Pacman => Some(super::pacman::refresh_cmd()),
        Os::Zypper => Some(super::zypper::refresh_cmd()),
        Os::Pkgng => Some(Cmd::raw("pkg update")),
        Os::OpenBsd => None,
    };
    let want = ospkg::Want {
        names: w.names.clone(),
        state: w.state,
        refresh: w.update,
    };
    match ospkg::check(tr, ctx, os, &want, refresh).await? {
        Verdict::Drift(d) => {
            let plan = d
                .plan
                .downcast::<ospkg::Plan>()
                .map_err(|_| ModuleError::Args("package: unexpected plan".into()))?;
            Ok(Verdict::Drift(Drift::new(
                d.changes,
                OtherPlan { os, plan: *plan },
            )))
        }
        v => Ok(v),
    }
}

async fn apply_other(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    o: &OtherPlan,
) -> Result<Args, ModuleError> {
    let cmds = match o.os {
        Os::Pacman => super::pacman::commands(&o.plan),
        Os::Zypper => super::zypper::commands(&o.plan),
        Os::Pkgng => super::pkgng::commands(&o.plan, false),
        Os::OpenBsd => super::openbsd_pkg::commands(&o.plan),
    };
    let (shown, so, se, failed_out) = ospkg::run_all(tr, ctx, cmds).await?;
    let mut r = result([
        ("cache_updated", Value::from(o.plan.refresh)),
        ("installed", Value::from(o.plan.install.clone())),
        ("upgraded", Value::from(o.plan.upgrade.clone())),
        ("removed", Value::from(o.plan.remove.clone())),
        ("cmd", Value::from(shown.join(" && "))),
        ("stdout", Value::from(so)),
        ("stderr", Value::from(se.clone())),
    ]);
    if let Some(out) = failed_out {
        r.insert("rc".into(), Value::from(out.status));
        return Err(failed(
            format!("{} failed: {}", os_name(o.os), se.trim()),
            r,
        ));
    }
    Ok(r)
}

async fn apply_packages(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    if let Some(o) = drift.plan::<OtherPlan>() {
        return apply_other(tr, ctx, o).await;
    }
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("package: apply without a plan from check".into()))?;
    let mut r = result([
        ("cache_updated", Value::from(p.update)),
        ("installed", Value::from(p.install.clone())),
        ("upgraded", Value::from(p.upgrade.clone())),
        ("removed", Value::from(p.remove.clone())),
    ]);
    let Some(cmd) = plan_cmd(p) else {
        return Ok(r);
    };
    let out = ctx.run(tr, cmd).await?;
    r.extend(command_result(&out, true));
    if out.status != 0 {
        let msg = format!(
            "package manager failed (rc {}): {}",
            out.status,
            out.stderr_lossy().trim()
        );
        return Err(failed(msg, r));
    }
    Ok(r)
}

/// The packages the task names (what the executor backs up), read through the module's own
/// arguments; nothing when they do not parse (the check fails on them then).
fn named_packages(names: Result<Value, ModuleError>, which: Option<Mgr>) -> Vec<Resource> {
    names
        .map(|v| list_of(&v))
        .unwrap_or_default()
        .iter()
        .filter(|n| *n != "*")
        .map(|n| Resource::Package(split_spec(which, n).0.to_string()))
        .collect()
}

macro_rules! package_module {
    ($ty:ident, $name:literal, $which:expr, $args:ident) => {
        impl Module for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn check<'a>(
                &'a self,
                tr: &'a mut HostView<'_>,
                args: &'a Args,
                ctx: &'a ModuleCtx<'a>,
            ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
                Box::pin(check_module(tr, args, ctx, $name))
            }

            fn apply<'a>(
                &'a self,
                tr: &'a mut AnyTransport,
                _args: &'a Args,
                ctx: &'a ModuleCtx<'a>,
                drift: &'a Drift,
            ) -> BoxFut<'a, Result<Args, ModuleError>> {
                Box::pin(apply_packages(tr, ctx, drift))
            }

            /// apt's whole-system steps change packages the task does not name: they are not
            /// backed up.
            fn not_reversible(&self, given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
                ["upgrade", "autoremove", "deb"].iter().any(|k| given(k)).then_some(
                    "upgrade, autoremove and deb change packages the task does not name (their versions are not recorded); rollback restores only the named packages",
                )
            }

            fn resources(&self, args: &Args) -> Vec<Resource> {
                named_packages($args::parse(args).map(|a| a.name), $which)
            }
        }
    };
}

package_module!(Package, "package", None, PackageArgs);
package_module!(Apt, "apt", Some(Mgr::Apt), AptArgs);
package_module!(Dnf, "dnf", Some(Mgr::Dnf), DnfArgs);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;

    #[test]
    fn parse_and_match() {
        let p = parse_query("manager apt\ninstalled 9.1-1\nupgradable no\n").unwrap();
        assert_eq!(p.manager, Some(Mgr::Apt));
        assert_eq!(p.version.as_deref(), Some("9.1-1"));
        assert!(parse_query("manager none\n").unwrap().manager.is_none());
        assert!(parse_query("installed 1\n").is_err());
        assert!(glob_match("1.24*", "1.24.0-1"));
        assert!(!glob_match("1.24*", "1.25.0"));
        assert!(glob_match("1.?", "1.2"));
        assert_eq!(split_spec(None, "nginx=1.2*"), ("nginx", Some("1.2*")));
        assert_eq!(split_spec(Some(Mgr::Dnf), "a=b"), ("a=b", None));
        let apt_want = |v| AptArgs::parse(&args(v)).and_then(AptArgs::want);
        assert!(apt_want(json!({"name": "-o"})).is_err());
        assert!(apt_want(json!({})).is_err());
        assert_eq!(
            Apt.resources(&args(json!({"name": ["nginx=1.2", "curl"]}))),
            vec![
                Resource::Package("nginx".into()),
                Resource::Package("curl".into())
            ]
        );
    }

    #[test]
    fn commands_for_a_plan() {
        let p = Plan {
            mgr: Mgr::Apt,
            update: true,
            install: vec!["nginx".into()],
            upgrade: vec!["curl".into()],
            remove: vec!["telnet".into()],
            apt_common: vec![
                "-o".into(),
                "Dpkg::Options::=--force-confdef".into(),
                "-o".into(),
                "Dpkg::Options::=--force-confold".into(),
            ],
            ..Plan::default()
        };
        let shown = plan_cmd(&p).map(|c| c.display()).unwrap_or_default();
        assert!(
            shown.starts_with("export DEBIAN_FRONTEND='noninteractive'\napt-get update -q && ("),
            "{shown}"
        );
        assert!(shown.contains("apt-get install -y -q '-o' 'Dpkg::Options::=--force-confdef' '-o' 'Dpkg::Options::=--force-confold' 'nginx' 'curl'"), "{shown}");
        assert!(shown.contains("apt-get remove -y -q"), "{shown}");
        let p = Plan {
            mgr: Mgr::Dnf,
            update: false,
            install: vec!["a".into()],
            upgrade: vec![],
            remove: vec![],
            apt_common: vec![
                "-o".into(),
                "Dpkg::Options::=--force-confdef".into(),
                "-o".into(),
                "Dpkg::Options::=--force-confold".into(),
            ],
            ..Plan::default()
        };
        assert_eq!(
            plan_cmd(&p).map(|c| c.display()).unwrap_or_default(),
            "dnf install -y -q 'a'"
        );
    }

    #[tokio::test]
    async fn real_dpkg_query_sees_coreutils_installed() {
        // The project's machines are Debian: dpkg-query is part of every one.
        assert!(
            Path::new("/usr/bin/dpkg-query").exists(),
            "dpkg-query is missing"
        );
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        for m in [&Package as &dyn Module, &Apt] {
            let a = args(json!({"name": ["coreutils"], "state": "present"}));
            let r = check_only(m, &mut tr, &a, &c).await.unwrap();
            let r = r.expect("coreutils is installed");
            assert!(r["versions"]["coreutils"].is_string(), "{r:?}");
        }
        assert_eq!(recorded(&tr).len(), 2, "one round trip per check");
        let a = args(json!({"name": "rdeploy-no-such-package", "state": "absent"}));
        assert!(check_only(&Apt, &mut tr, &a, &c).await.unwrap().is_some());
        let a = args(json!({"name": "coreutils", "state": "absent"}));
        assert!(check_only(&Apt, &mut tr, &a, &c).await.unwrap().is_none());
    }

    /// Fake dpkg tools: `$FAKE/pkgs/NAME` holds the installed version, `$FAKE/candidate/NAME`
    /// the candidate; every apt-get call is logged to `$FAKE/log`.
    const FAKE_DPKG_QUERY: &str = r#"
eval p=\${$#}
if [ -e "$FAKE/pkgs/$p" ]; then printf 'install ok installed|%s\n' "$(cat "$FAKE/pkgs/$p")"
elif [ -e "$FAKE/conf/$p" ]; then printf 'deinstall ok config-files|%s\n' "$(cat "$FAKE/conf/$p")"
else echo "dpkg-query: no packages found matching $p" >&2; exit 1; fi"#;
    const FAKE_APT_CACHE: &str = r#"
eval p=\${$#}
echo "apt-cache $*" >> "$FAKE/cache-log"
echo "$p:"; echo "  Installed: x"; echo "  Candidate: $(cat "$FAKE/candidate/$p" 2>/dev/null || echo '(none)')""#;
    const FAKE_APT_GET: &str = r#"
echo "apt-get $* DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >> "$FAKE/log"
verb=$1 skip=
for a in "$@"; do if [ -n "$skip" ]; then skip=; continue; fi; case $a in -t) skip=1 ;; -*|Dpkg*|install|remove|update) ;; *)
  n=${a%%=*}
  if [ "$verb" = install ]; then cat "$FAKE/candidate/$n" > "$FAKE/pkgs/$n" 2>/dev/null || echo 1.0 > "$FAKE/pkgs/$n"; else rm -f "$FAKE/pkgs/$n"; fi
  case " $* " in *" --purge "*) rm -f "$FAKE/conf/$n" ;; esac ;;
esac; done"#;

    /// A temporary host with the fake dpkg-query, apt-cache and apt-get first on `PATH`:
    /// (its folder, the fakes' state folder with `pkgs/` and `candidate/`).
    fn fake_apt_host() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let st = dir.path().join("state");
        for d in [
            &bin,
            &st.join("pkgs"),
            &st.join("candidate"),
            &st.join("conf"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        fake_tool(&bin, "dpkg-query", FAKE_DPKG_QUERY);
        fake_tool(&bin, "apt-cache", FAKE_APT_CACHE);
        fake_tool(&bin, "apt-get", FAKE_APT_GET);
        (dir, st)
    }

    #[tokio::test]
    async fn apt_end_to_end_with_fake_tools() {
        let (dir, st) = fake_apt_host();
        std::fs::write(st.join("pkgs/curl"), "7.0").unwrap();
        std::fs::write(st.join("candidate/curl"), "8.0").unwrap();
        std::fs::write(st.join("candidate/nginx"), "1.24.0").unwrap();
        let c = ctx(dir.path(), None, fake_env(&dir.path().join("bin"), &st));
        let mut tr = transport();

        let a = args(json!({"name": ["nginx", "curl"], "state": "present", "update_cache": true}));
        let Ran::Applied(changes, Ok(r)) = check_apply(&Apt, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(changes.len(), 2, "{changes:?}"); // update + nginx; curl is present
        assert_eq!(r["installed"], json!(["nginx"]));
        assert_eq!(r["cache_updated"], json!(true));
        assert_eq!(recorded(&tr).len(), 2);
        let log = std::fs::read_to_string(st.join("log")).unwrap();
        assert!(
            log.starts_with(
                "apt-get update -q DEBIAN_FRONTEND=noninteractive\napt-get install -y -q"
            ),
            "{log}"
        );
        // Present now: in sync, and no cache update.
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // latest upgrades curl 7.0 → 8.0, then is in sync.
        let a = args(json!({"name": "curl,nginx", "state": "latest"}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Package, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["upgraded"], json!(["curl"]));
        assert_eq!(
            std::fs::read_to_string(st.join("pkgs/curl"))
                .unwrap()
                .trim(),
            "8.0"
        );
        assert!(matches!(
            check_apply(&Package, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // Version pins.
        let a = args(json!({"name": "nginx=1.24*"}));
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // absent
        let a = args(json!({"name": ["nginx"], "state": "absent"}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Apt, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["removed"], json!(["nginx"]));
        assert!(!st.join("pkgs/nginx").exists());
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // update_cache alone is a change (cache_valid_time 0).
        let a = args(json!({"update_cache": true}));
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
    }

    /// `package: update_cache: true` with no `name` (and no `state`) was refused; Ansible's
    /// `package` hands it to apt or dnf, which refresh the cache and report a change.
    #[tokio::test]
    async fn package_update_cache_without_name_refreshes_the_detected_managers_cache() {
        let (dir, st) = fake_apt_host();
        let c = ctx(dir.path(), None, fake_env(&dir.path().join("bin"), &st));
        let mut tr = transport();
        let a = args(json!({"update_cache": true}));
        // Check alone (what --check runs) predicts the change and runs no apt-get.
        assert!(
            check_only(&Package, &mut tr, &a, &c)
                .await
                .unwrap()
                .is_none()
        );
        assert!(!st.join("log").exists(), "check ran apt-get");
        let Ran::Applied(changes, Ok(r)) = check_apply(&Package, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(r["cache_updated"], json!(true));
        let log = std::fs::read_to_string(st.join("log")).unwrap();
        assert_eq!(log, "apt-get update -q DEBIAN_FRONTEND=noninteractive\n");
        // The task as written in a playbook passes validation.
        let spec = crate::modules::lookup("package").unwrap();
        assert!(
            spec.args.iter().all(|a| !a.required),
            "package: no required argument"
        );
    }

    /// `package: update_cache: yes, cache_valid_time: N` (geerlingguy.security) was refused
    /// as an unknown argument; Ansible's `package` hands it to apt, which refreshes only a
    /// cache older than N seconds.
    #[tokio::test]
    async fn package_passes_cache_valid_time_on_to_apt() {
        let (dir, st) = fake_apt_host();
        let c = ctx(dir.path(), None, fake_env(&dir.path().join("bin"), &st));
        let mut tr = transport();
        // This machine's apt cache is younger than a century: nothing to refresh.
        let a = args(json!({"update_cache": true, "cache_valid_time": 3_153_600_000u64}));
        let Ran::InSync(r) = check_apply(&Package, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["cache_updated"], json!(false));
        assert!(!st.join("log").exists(), "apt-get ran");
        // A cache older than 0 seconds is refreshed.
        let a = args(json!({"update_cache": true, "cache_valid_time": 0}));
        assert!(matches!(
            check_apply(&Package, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(
            crate::modules::lookup("package")
                .unwrap()
                .arg("cache_valid_time")
                .is_some()
        );
    }

    /// geerlingguy.nginx installs from backports with `apt: default_release:`, and many roles
    /// set `install_recommends: no`; both were refused.
    #[tokio::test]
    async fn apt_default_release_and_install_recommends_reach_apt_get() {
        let (dir, st) = fake_apt_host();
        std::fs::write(st.join("candidate/nginx"), "1.26.0").unwrap();
        let c = ctx(dir.path(), None, fake_env(&dir.path().join("bin"), &st));
        let mut tr = transport();
        let a = args(json!({
            "name": "nginx", "state": "latest",
            "default_release": "bookworm-backports", "install_recommends": false
        }));
        let Ran::Applied(_, Ok(r)) = check_apply(&Apt, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["installed"], json!(["nginx"]));
        let log = std::fs::read_to_string(st.join("log")).unwrap();
        assert!(
            log.contains("-t bookworm-backports --no-install-recommends nginx"),
            "{log}"
        );
        // The candidate is read for that release too.
        let a = args(
            json!({"name": "nginx", "state": "latest", "default_release": "bookworm-backports"}),
        );
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let cache = std::fs::read_to_string(st.join("cache-log")).unwrap();
        assert!(
            cache.contains("apt-cache -t bookworm-backports policy nginx"),
            "{cache}"
        );
        // A release that is not a plain name is refused.
        let a = args(json!({"name": "nginx", "default_release": "-o Foo=bar"}));
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::CheckFailed(..)
        ));
    }

    /// geerlingguy.docker's `package: allow_downgrade: true` and geerlingguy.git's
    /// `dnf: allowerasing:` was refused (geerlingguy.supervisor's converge playbook uses it).
    #[test]
    fn dnf_allowerasing_is_read() {
        let dnf_want = |v| DnfArgs::parse(&args(v)).and_then(DnfArgs::want);
        let w = dnf_want(json!({"name": "curl", "allowerasing": true})).unwrap();
        assert!(w.erasing);
        assert!(!dnf_want(json!({"name": "curl"})).unwrap().erasing);
    }

    /// `dnf` on a host without dnf (a Debian host: geerlingguy.repo-epel in the compat suite)
    /// predicted a change; Ansible's dnf fails the task, saying it found no dnf.
    #[tokio::test]
    async fn dnf_on_a_host_without_dnf_fails_as_ansible() {
        let (dir, st) = fake_apt_host();
        let c = ctx(dir.path(), None, fake_env(&dir.path().join("bin"), &st));
        let mut tr = transport();
        let a = args(json!({"name": "epel-release"}));
        let ran = check_apply(&Dnf, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m.starts_with("Could not detect which major revision of dnf is in use")),
            "{ran:?}"
        );
    }

    /// `package: enablerepo:` were refused; Ansible's `package` passes them on.
    #[tokio::test]
    async fn package_passes_allow_downgrade_to_apt_and_refuses_dnfs_repos_there_as_ansible() {
        let (dir, st) = fake_apt_host();
        let c = ctx(dir.path(), None, fake_env(&dir.path().join("bin"), &st));
        let mut tr = transport();
        let a = args(json!({"name": "docker-ce", "allow_downgrade": true}));
        let Ran::Applied(_, Ok(_)) = check_apply(&Package, &mut tr, &a, &c).await else {
            panic!()
        };
        let log = std::fs::read_to_string(st.join("log")).unwrap();
        assert!(log.contains("--allow-downgrades docker-ce"), "{log}");
        let a = args(json!({"name": "git", "enablerepo": "epel"}));
        let ran = check_apply(&Package, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m == "Unsupported parameters for (apt) module: enablerepo"),
            "{ran:?}"
        );
    }

    #[test]
    fn dnf_repositories_reach_every_dnf_command() {
        let p = Plan {
            mgr: Mgr::Dnf,
            update: false,
            install: vec!["git".into()],
            upgrade: vec!["curl".into()],
            remove: Vec::new(),
            dnf_opts: vec!["--enablerepo=epel".into(), "--disablerepo=updates".into()],
            ..Plan::default()
        };
        let shown = plan_cmd(&p).unwrap().display();
        assert!(
            shown.contains("dnf install -y -q '--enablerepo=epel' '--disablerepo=updates' 'git'"),
            "{shown}"
        );
        assert!(
            shown.contains("dnf upgrade -y -q '--enablerepo=epel'"),
            "{shown}"
        );
    }

    /// `package` on an Arch host (pacman, no apt or dnf) was refused ("no supported package
    /// manager"); Ansible's `package` hands it to pacman.
    #[tokio::test]
    async fn package_on_a_pacman_host_goes_to_pacman() {
        let (dir, bin, st) = fake_dirs();
        // The machine's tools, except the apt and dnf ones, plus a fake pacman.
        for e in std::fs::read_dir("/usr/bin").unwrap().flatten() {
            let name = e.file_name();
            let n = name.to_string_lossy();
            if !n.starts_with("apt") && !n.starts_with("dpkg") && n != "dnf" && n != "rpm" {
                let _ = std::os::unix::fs::symlink(e.path(), bin.join(&name));
            }
        }
        fake_tool(
            &bin,
            "pacman",
            r#"echo "pacman $*" >> "$FAKE/log"
case $1 in -Q) [ -e "$FAKE/$2" ] && echo "$2 1.0-1" ;; -Qu) exit 1 ;;
*) for p in "$@"; do case $p in -*) ;; *) touch "$FAKE/$p" ;; esac; done ;; esac"#,
        );
        let env = vec![
            ("PATH".to_string(), bin.display().to_string()),
            ("FAKE".to_string(), st.display().to_string()),
        ];
        let c = ctx(dir.path(), None, env);
        let mut tr = transport();
        let a = args(json!({"name": ["nginx"], "update_cache": true}));
        let Ran::Applied(changes, Ok(r)) = check_apply(&Package, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(r["installed"], json!(["nginx"]));
        let log = std::fs::read_to_string(st.join("log")).unwrap();
        assert!(log.contains("pacman --sync --refresh\n"), "{log}");
        assert!(
            log.contains("pacman --noconfirm --noprogressbar --needed --sync nginx\n"),
            "{log}"
        );
        assert!(matches!(
            check_apply(&Package, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let a = args(json!({"name": "nginx", "cache_valid_time": 600}));
        let ran = check_apply(&Package, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m == "Unsupported parameters for (pacman) module: cache_valid_time"),
            "{ran:?}"
        );
    }

    use std::path::Path;

    /// A fake apt host for the whole-system steps: `dpkg-query` answers from `$FAKE/pkgs/NAME`,
    /// `apt-get -s VERB` prints `$FAKE/sim-VERB`, a real `apt-get` logs and installs a `.deb`
    /// (recorded as its package) or empties the simulations it carried out.
    const FAKE_APT_WHOLE: &str = r#"echo "$*" >> "$FAKE/log"
if [ "$1" = -s ]; then cat "$FAKE/sim-$3" 2>/dev/null; exit 0; fi
for a in "$@"; do case $a in
  */*.deb) n=$(dpkg-deb -f "$a" Package); dpkg-deb -f "$a" Version > "$FAKE/pkgs/$n" ;;
  upgrade|dist-upgrade|autoremove) : > "$FAKE/sim-$a" ;;
esac; done"#;

    const FAKE_DPKG_QUERY_WHOLE: &str = r#"for p; do :; done; [ -f "$FAKE/pkgs/$p" ] || exit 1
printf 'install ok installed|%s\n' "$(cat "$FAKE/pkgs/$p")""#;

    /// Builds a real `.deb` of package `name` at `version` with `dpkg-deb --build`.
    fn build_deb(dir: &std::path::Path, name: &str, version: &str) -> std::path::PathBuf {
        let root = dir.join(format!("{name}-{version}"));
        std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
        std::fs::write(
            root.join("DEBIAN/control"),
            format!("Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@example.com>\nDescription: test\n"),
        )
        .unwrap();
        let deb = dir.join(format!("{name}_{version}_all.deb"));
        let out = std::process::Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group"])
            .arg(&root)
            .arg(&deb)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        deb
    }

    #[tokio::test]
    async fn apt_deb_upgrade_autoremove_and_only_upgrade() {
        let (dir, bin, st) = fake_dirs();
        std::fs::create_dir_all(st.join("pkgs")).unwrap();
        fake_tool(&bin, "apt-get", FAKE_APT_WHOLE);
        fake_tool(&bin, "dpkg-query", FAKE_DPKG_QUERY_WHOLE);
        let c = ctx(dir.path(), None, fake_env(&bin, &st));
        let mut tr = transport();
        // deb: installed unless that version is.
        let deb = build_deb(dir.path(), "rdeploy-hello", "1.0-1");
        let a = args(json!({"deb": deb}));
        let Ran::Applied(ch, Ok(_)) = check_apply(&Apt, &mut tr, &a, &c).await else {
            panic!()
        };
        assert!(
            matches!(&ch[..], [Change::Attr { subject, after, .. }] if subject == "rdeploy-hello" && after == "1.0-1"),
            "{ch:?}"
        );
        assert_eq!(
            std::fs::read_to_string(st.join("pkgs/rdeploy-hello"))
                .unwrap()
                .trim(),
            "1.0-1"
        );
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let newer = build_deb(dir.path(), "rdeploy-hello", "1.1-1");
        let a = args(json!({"deb": newer}));
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        let missing = args(json!({"deb": "/nonexistent/x.deb"}));
        assert!(
            matches!(check_apply(&Apt, &mut tr, &missing, &c).await, Ran::CheckFailed(m, _) if m.contains("does not exist"))
        );
        let url = args(json!({"deb": "https://x/y.deb"}));
        assert!(
            matches!(check_apply(&Apt, &mut tr, &url, &c).await, Ran::CheckFailed(m, _) if m.contains("a URL is not supported"))
        );
        // upgrade: a change when the simulation would install something.
        std::fs::write(
            st.join("sim-dist-upgrade"),
            "Inst libfoo [1.0] (1.1 Debian:12)\nConf libfoo (1.1 Debian:12)\n",
        )
        .unwrap();
        let a = args(json!({"upgrade": "dist"}));
        let Ran::Applied(ch, Ok(_)) = check_apply(&Apt, &mut tr, &a, &c).await else {
            panic!()
        };
        assert!(
            matches!(&ch[..], [Change::Run { command }] if command == "apt-get dist-upgrade (libfoo)"),
            "{ch:?}"
        );
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // autoremove likewise.
        std::fs::write(st.join("sim-autoremove"), "Remv oldlib [0.9]\n").unwrap();
        let a = args(json!({"autoremove": true}));
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // only_upgrade: a package that is not installed is left alone.
        let a = args(json!({"name": "not-installed", "only_upgrade": true}));
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let log = std::fs::read_to_string(st.join("log")).unwrap();
        assert!(log.contains(&format!("install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=60 {}", deb.display())), "{log}");
        assert!(
            log.contains("-s -q upgrade --with-new-pkgs") || log.contains("-s -q dist-upgrade"),
            "{log}"
        );
        assert!(log.contains("dist-upgrade -y -q"), "{log}");
        assert!(log.contains("autoremove -y -q"), "{log}");
        let many: Vec<String> = (0..12).map(|i| format!("p{i}")).collect();
        assert_eq!(
            few(&many),
            "p0, p1, p2, p3, p4, p5, p6, p7, p8, p9 and 2 more"
        );
        assert!(Apt.not_reversible(&|k| k == "deb").is_some());
        assert!(Apt.not_reversible(&|k| k == "name").is_none());
    }

    /// The `apt-get` lines the fake tools logged.
    fn apt_log(st: &std::path::Path) -> String {
        std::fs::read_to_string(st.join("log")).unwrap_or_default()
    }

    /// `apt: name: X, cache_valid_time: N` without `update_cache` never refreshed the cache;
    /// Ansible's apt (since 2.4) refreshes a cache older than N seconds when it is set.
    #[tokio::test]
    async fn apt_cache_valid_time_alone_refreshes_a_stale_cache_as_ansible() {
        let (dir, st) = fake_apt_host();
        let c = ctx(dir.path(), None, fake_env(&dir.path().join("bin"), &st));
        let mut tr = transport();
        // This machine's apt lists are older than a second.
        let a = args(json!({"name": "nginx", "cache_valid_time": 1}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Apt, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["cache_updated"], json!(true));
        assert!(
            apt_log(&st).starts_with("apt-get update -q"),
            "{}",
            apt_log(&st)
        );
        // A century-old bound: no refresh, and nothing else to do.
        let a = args(json!({"name": "nginx", "cache_valid_time": 3_153_600_000u64}));
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
    }

    /// `apt: name: X, autoremove: yes` with X installed removed the host's unneeded packages
    /// and reported a change; Ansible's apt passes `--auto-remove` to the install or removal
    /// it runs, and runs nothing when X is installed.
    #[tokio::test]
    async fn apt_autoremove_with_names_rides_on_the_command_that_runs_as_ansible() {
        let (dir, bin, st) = fake_dirs();
        std::fs::create_dir_all(st.join("pkgs")).unwrap();
        fake_tool(&bin, "apt-get", FAKE_APT_WHOLE);
        fake_tool(&bin, "dpkg-query", FAKE_DPKG_QUERY_WHOLE);
        std::fs::write(st.join("pkgs/curl"), "7.0").unwrap();
        std::fs::write(st.join("sim-autoremove"), "Remv oldlib [0.9]\n").unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &st));
        let mut tr = transport();
        let a = args(json!({"name": "curl", "autoremove": true}));
        let ran = check_apply(&Apt, &mut tr, &a, &c).await;
        assert!(matches!(ran, Ran::InSync(_)), "{ran:?}");
        let a = args(json!({"name": "nginx", "autoremove": true}));
        let Ran::Applied(ch, Ok(_)) = check_apply(&Apt, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(ch.len(), 1, "{ch:?}");
        let log = apt_log(&st);
        assert!(
            log.contains("install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=60 --auto-remove nginx"),
            "{log}"
        );
        assert!(!log.contains("autoremove"), "{log}");
        let a = args(json!({"name": "curl", "state": "absent", "autoremove": true}));
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(
            apt_log(&st).contains("remove -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=60 --auto-remove curl"),
            "{}",
            apt_log(&st)
        );
    }

    /// `purge` removes with `--purge`, and a removed package whose configuration files remain
    /// is purged (Ansible's `has_files and purge`); without `purge` it is absent already.
    #[tokio::test]
    async fn apt_purge_removes_configuration_files_too() {
        let (dir, st) = fake_apt_host();
        std::fs::write(st.join("pkgs/telnet"), "0.17").unwrap();
        std::fs::write(st.join("conf/oldpkg"), "1.0").unwrap();
        let c = ctx(dir.path(), None, fake_env(&dir.path().join("bin"), &st));
        let mut tr = transport();
        let a = args(json!({"name": "telnet", "state": "absent", "purge": true}));
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(
            apt_log(&st).contains("apt-get remove -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=60 --purge telnet"),
            "{}",
            apt_log(&st)
        );
        let a = args(json!({"name": "oldpkg", "state": "absent"}));
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let a = args(json!({"name": "oldpkg", "state": "absent", "purge": true}));
        let Ran::Applied(ch, Ok(_)) = check_apply(&Apt, &mut tr, &a, &c).await else {
            panic!()
        };
        assert!(
            matches!(&ch[..], [Change::Attr { subject, what, after, .. }] if subject == "oldpkg" && what == "configuration files" && after == "purged"),
            "{ch:?}"
        );
        assert!(!st.join("conf/oldpkg").exists());
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
    }

    /// `force` is apt-get's `--force-yes`, `dpkg_options` replaces the default `Dpkg::Options`
    /// and `lock_timeout` is `DPkg::Lock::Timeout`, on every apt-get command; the
    /// `allow_*`/`fail_on_autoremove` flags go where Ansible's apt puts them.
    #[tokio::test]
    async fn apt_force_and_dpkg_options_reach_apt_get() {
        let (dir, st) = fake_apt_host();
        let c = ctx(dir.path(), None, fake_env(&dir.path().join("bin"), &st));
        let mut tr = transport();
        let a = args(json!({"name": "nginx", "force": true, "dpkg_options": "force-confnew"}));
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(
            apt_log(&st).contains(
                "apt-get install -y -q -o Dpkg::Options::=--force-confnew -o DPkg::Lock::Timeout=60 --force-yes nginx"
            ),
            "{}",
            apt_log(&st)
        );
        let a = args(json!({
            "name": "curl", "allow_unauthenticated": true, "allow_change_held_packages": true,
            "fail_on_autoremove": true, "lock_timeout": 5, "force_apt_get": true
        }));
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(
            apt_log(&st).contains("apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=5 --allow-unauthenticated --allow-change-held-packages --no-remove curl"),
            "{}",
            apt_log(&st)
        );
        let a =
            args(json!({"name": "curl", "state": "absent", "allow_change_held_packages": true}));
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(
            apt_log(&st).contains("Lock::Timeout=60 --allow-change-held-packages curl"),
            "{}",
            apt_log(&st)
        );
        let a = args(json!({"name": "curl", "dpkg_options": "--force-all"}));
        let ran = check_apply(&Apt, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m.contains("is not a dpkg option name")),
            "{ran:?}"
        );
    }

    /// `name: "*"` with `state: latest` upgrades every installed package (Ansible's example
    /// "Update all packages to their latest version"); `*` beside other names fails as there.
    /// `deb` with another state fails as Ansible's does.
    #[tokio::test]
    async fn apt_star_latest_upgrades_everything_and_deb_needs_present() {
        let (dir, bin, st) = fake_dirs();
        std::fs::create_dir_all(st.join("pkgs")).unwrap();
        fake_tool(&bin, "apt-get", FAKE_APT_WHOLE);
        fake_tool(&bin, "dpkg-query", FAKE_DPKG_QUERY_WHOLE);
        std::fs::write(
            st.join("sim-upgrade"),
            "Inst libfoo [1.0] (1.1 Debian:12)\n",
        )
        .unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &st));
        let mut tr = transport();
        let a = args(json!({"name": "*", "state": "latest"}));
        let Ran::Applied(ch, Ok(_)) = check_apply(&Apt, &mut tr, &a, &c).await else {
            panic!()
        };
        assert!(
            matches!(&ch[..], [Change::Run { command }] if command == "apt-get upgrade (libfoo)"),
            "{ch:?}"
        );
        assert!(matches!(
            check_apply(&Apt, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        assert!(Apt.resources(&a).is_empty());
        let log = apt_log(&st);
        assert!(log.contains("-s -q upgrade --with-new-pkgs"), "{log}");
        assert!(
            log.contains("upgrade -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=60 --with-new-pkgs"),
            "{log}"
        );
        let a = args(json!({"name": ["*", "curl"], "state": "latest"}));
        let ran = check_apply(&Apt, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m == "unable to install additional packages when upgrading all installed packages"),
            "{ran:?}"
        );
        let a = args(json!({"deb": "/tmp/x.deb", "state": "absent"}));
        let ran = check_apply(&Apt, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m == "deb only supports state=present"),
            "{ran:?}"
        );
    }

    /// `policy_rc_d`: the apt-get commands run between a `/usr/sbin/policy-rc.d` exiting with
    /// the code and the old one put back, keeping apt-get's exit status. The scripts are run
    /// here on a scratch path instead of `/usr/sbin/policy-rc.d`.
    #[test]
    fn policy_rc_d_is_in_place_while_apt_get_runs_and_put_back_after() {
        let p = Plan {
            install: vec!["nginx".into()],
            policy_rc_d: Some(101),
            ..Plan::default()
        };
        let shown = plan_cmd(&p).unwrap().display();
        assert!(shown.starts_with("set -- '101'"), "{shown}");
        assert!(shown.contains("apt-get install"), "{shown}");
        assert!(shown.contains("exit $r_"), "{shown}");
        // The real line, with a fake apt-get that reads the file and exits with `code`.
        let (_dir, bin, st) = fake_dirs();
        let target = st.join("policy-rc.d");
        let seen = st.join("seen");
        let line = plan_cmd(&p)
            .unwrap()
            .to_shell()
            .unwrap()
            .replace("/usr/sbin/policy-rc.d", &target.display().to_string());
        let run = |code: &str| {
            fake_tool(
                &bin,
                "apt-get",
                &format!(
                    "cat \"$FAKE/policy-rc.d\" > \"$FAKE/seen\"; \"$FAKE/policy-rc.d\"; echo $? >> \"$FAKE/seen\"; exit {code}"
                ),
            );
            std::process::Command::new("sh")
                .arg("-c")
                .arg(&line)
                .envs(fake_env(&bin, &st))
                .status()
                .unwrap()
                .code()
        };
        // An existing policy-rc.d is kept aside and put back.
        std::fs::write(&target, "#!/bin/sh\nexit 0\n").unwrap();
        assert_eq!(run("3"), Some(3), "apt-get's status is kept");
        assert_eq!(
            std::fs::read_to_string(&seen).unwrap(),
            "#!/bin/sh\nexit 101\n101\n"
        );
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "#!/bin/sh\nexit 0\n"
        );
        // None before: none after.
        std::fs::remove_file(&target).unwrap();
        assert_eq!(run("0"), Some(0));
        assert!(!target.exists());
    }

    /// Fake rpm and dnf: `$FAKE/pkgs/NAME` holds the installed version; `check-update` exits
    /// 100 when `$FAKE/upd/NAME` exists; every dnf call is logged to `$FAKE/log`.
    const FAKE_RPM: &str =
        r#"for p; do :; done; [ -f "$FAKE/pkgs/$p" ] || exit 1; cat "$FAKE/pkgs/$p""#;
    const FAKE_DNF: &str = r#"echo "dnf $*" >> "$FAKE/log"
for p; do :; done
case $1 in
  -q) [ -e "$FAKE/upd/$p" ] && exit 100; exit 0 ;;
  install|upgrade) for a in "$@"; do case $a in -*|install|upgrade) ;; *) echo 2.0-1 > "$FAKE/pkgs/$a"; rm -f "$FAKE/upd/$a" ;; esac; done ;;
  remove) rm -f "$FAKE/pkgs/$p" ;;
esac"#;

    fn fake_dnf_host() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let (dir, bin, st) = fake_dirs();
        for d in ["pkgs", "upd"] {
            std::fs::create_dir_all(st.join(d)).unwrap();
        }
        fake_tool(&bin, "rpm", FAKE_RPM);
        fake_tool(&bin, "dnf", FAKE_DNF);
        (dir, bin, st)
    }

    /// `exclude`, `security` and `disable_gpg_check` were refused; they reach dnf as Ansible's
    /// dnf applies them (`--exclude`, `--security` for upgrades, `--nogpgcheck`), and the
    /// repository options and excludes also reach the `check-update` that decides `latest`.
    #[tokio::test]
    async fn dnf_exclude_security_and_gpg_options_reach_dnf() {
        let (dir, bin, st) = fake_dnf_host();
        std::fs::write(st.join("pkgs/openssl"), "1.0-1").unwrap();
        std::fs::write(st.join("upd/openssl"), "").unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &st));
        let mut tr = transport();
        let a = args(json!({
            "name": "openssl", "state": "latest", "security": true, "exclude": "kernel*",
            "enablerepo": "epel", "disable_gpg_check": true
        }));
        let Ran::Applied(_, Ok(r)) = check_apply(&Dnf, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["upgraded"], json!(["openssl"]));
        let log = apt_log(&st);
        assert!(
            log.contains(
                "dnf -q check-update --enablerepo=epel --exclude=kernel* --security openssl"
            ),
            "{log}"
        );
        assert!(
            log.contains("dnf upgrade -y -q --enablerepo=epel --exclude=kernel* --nogpgcheck --security openssl"),
            "{log}"
        );
        assert!(matches!(
            check_apply(&Dnf, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let a = args(json!({"name": "git", "disable_gpg_check": true, "allowerasing": true}));
        assert!(matches!(
            check_apply(&Dnf, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(
            apt_log(&st).contains("dnf install -y -q --nogpgcheck --allowerasing git"),
            "{}",
            apt_log(&st)
        );
    }

    /// `package: use:` was refused; Ansible's `package` runs the manager it names, with the
    /// other arguments, and that manager refuses what it does not take.
    #[tokio::test]
    async fn package_use_forces_the_manager() {
        let (dir, st) = fake_apt_host();
        let bin = dir.path().join("bin");
        fake_tool(
            &bin,
            "pacman",
            r#"echo "pacman $*" >> "$FAKE/log"
case $1 in -Q) [ -e "$FAKE/$2" ] && echo "$2 1.0-1" ;; -Qu) exit 1 ;;
*) for p in "$@"; do case $p in -*) ;; *) touch "$FAKE/$p" ;; esac; done ;; esac"#,
        );
        let c = ctx(dir.path(), None, fake_env(&bin, &st));
        let mut tr = transport();
        let a = args(
            json!({"name": "nginx", "use": "apt", "install_recommends": false, "lock_timeout": 9}),
        );
        assert!(matches!(
            check_apply(&Package, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(
            apt_log(&st).contains("-o DPkg::Lock::Timeout=9 --no-install-recommends nginx"),
            "{}",
            apt_log(&st)
        );
        let a = args(json!({"name": "nginx", "state": "absent", "purge": true, "force": true}));
        assert!(matches!(
            check_apply(&Package, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(
            apt_log(&st).contains("--force-yes --purge nginx"),
            "{}",
            apt_log(&st)
        );
        // This host has apt, but `use` sends the task to pacman.
        let a = args(json!({"name": "htop", "use": "community.general.pacman"}));
        assert!(matches!(
            check_apply(&Package, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(
            apt_log(&st).contains("pacman --noconfirm --noprogressbar --needed --sync htop"),
            "{}",
            apt_log(&st)
        );
        let a = args(json!({"name": "htop", "use": "pacman", "exclude": "x"}));
        let ran = check_apply(&Package, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m == "Unsupported parameters for (pacman) module: exclude"),
            "{ran:?}"
        );
        // `yum` is dnf, which this host does not have.
        let a = args(json!({"name": "git", "use": "yum"}));
        let ran = check_apply(&Package, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m.starts_with("Could not detect which major revision of dnf")),
            "{ran:?}"
        );
        let a = args(json!({"name": "git", "use": "apk"}));
        let ran = check_apply(&Package, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m.contains("package manager 'apk' is not supported by rdeploy")),
            "{ran:?}"
        );
        // dnf's own arguments on the apt host it detects fail as Ansible's apt fails them.
        let a = args(json!({"name": "git", "exclude": "kernel"}));
        let ran = check_apply(&Package, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m == "Unsupported parameters for (apt) module: exclude"),
            "{ran:?}"
        );
    }

    /// On a dnf host, `package` hands dnf's arguments on; apt's `allow_downgrade` (which
    /// Ansible's dnf also takes) is not carried for dnf by rdeploy.
    #[tokio::test]
    async fn package_use_dnf_passes_dnfs_arguments_and_refuses_the_rest() {
        let (dir, bin, st) = fake_dnf_host();
        let c = ctx(dir.path(), None, fake_env(&bin, &st));
        let mut tr = transport();
        let a = args(json!({"name": "git", "use": "dnf", "enablerepo": ["epel"], "exclude": "x*"}));
        assert!(matches!(
            check_apply(&Package, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(
            apt_log(&st).contains("dnf install -y -q --enablerepo=epel --exclude=x* git"),
            "{}",
            apt_log(&st)
        );
        let a = args(json!({"name": "git", "use": "dnf", "state": "latest", "security": true}));
        std::fs::write(st.join("upd/git"), "").unwrap();
        assert!(matches!(
            check_apply(&Package, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(
            apt_log(&st).contains("dnf upgrade -y -q --security git"),
            "{}",
            apt_log(&st)
        );
        let a = args(json!({"name": "git", "use": "dnf", "purge": true}));
        let ran = check_apply(&Package, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m == "Unsupported parameters for (dnf) module: purge"),
            "{ran:?}"
        );
        let a = args(json!({"name": "git", "use": "dnf", "allow_downgrade": true}));
        let ran = check_apply(&Package, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m == "argument 'allow_downgrade' of module 'dnf' is not supported by rdeploy"),
            "{ran:?}"
        );
        let a = args(json!({"name": "git", "use": "dnf", "cache_valid_time": 60}));
        let ran = check_apply(&Package, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m == "Unsupported parameters for (dnf) module: cache_valid_time"),
            "{ran:?}"
        );
    }
}
