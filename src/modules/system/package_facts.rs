//! `package_facts`: the host's installed packages as the fact `packages`, in Ansible's shape
//! (each name maps to a list of dicts, one per installed version); never changes anything.
//!
//! Owns the choice of package managers (Ansible's list, aliases and `auto` order, `strategy`
//! first or all), one read-only round trip that lists every candidate manager's packages, and
//! the parsing of their output: `dpkg-query` (with `apt-cache policy` for each package's
//! origin, as python-apt reports it), `rpm -qa`, `apk info -v` and `pkg_info -a`. It must not
//! format shell lines and must not change the host.

use serde_json::{Map, Value};

use super::common::result;
use crate::modules::files::common::{failed, run_batch};
use crate::modules::runtime::{Args, HostView, ModuleCtx, ModuleError, Verdict};
use crate::transport::{Cmd, Output};

/// The `package_facts` module.
pub struct PackageFacts;

crate::module_args! {
    /// Sets the fact `packages`: each installed package's name maps to a list with one entry
    /// per installed version (`name`, `version`, `source`, and per manager `arch`, `category`,
    /// `origin` for apt; `release`, `epoch`, `arch` for rpm; `release` for apk), as Ansible's
    /// module returns it. Never changes anything, so it also runs under `--check`. rdeploy
    /// reads apt hosts with `dpkg-query` and `apt-cache policy` (python3-apt is not needed;
    /// Ansible needs it; apt's `category` is then the section dpkg recorded, which for a few
    /// packages differs from the archive's section that python-apt reports), rpm hosts with `rpm -qa` (no Python rpm bindings), Alpine with
    /// `apk` and OpenBSD with `pkg_info`; `pacman`, FreeBSD's `pkg` and `portage` are not
    /// supported by rdeploy (found with `auto`, they are named in the failure).
    #[module(
        name = "package_facts",
        backup = "Changes nothing on the host: nothing to back up.",
        returns = &[("ansible_facts.packages", "each package name: a list of {name, version, source, ...}, one per installed version")],
        examples = "- package_facts:\n- debug:\n    msg: \"nginx {{ ansible_facts.packages['nginx'][0].version }}\"\n  when: \"'nginx' in ansible_facts.packages\""
    )]
    pub struct PackageFactsArgs {
        /// The package manager(s) to ask, in order: `auto` (every one Ansible knows, in its
        /// order), `apt`, `rpm` (also `dnf`, `dnf5`, `yum`, `zypper`), `apk`, `pkg_info` (also
        /// `openbsd_pkg`).
        #[arg(default = "auto")]
        manager: Vec<String>,
        /// `first`: the first manager that lists packages; `all`: every one, merged.
        #[arg(default = "first", choices = &["first", "all"])]
        strategy: String,
    }
}

/// Ansible's package managers, sorted (its `PKG_MANAGER_NAMES`).
const MANAGERS: &[&str] = &["apk", "apt", "pacman", "pkg", "pkg_info", "portage", "rpm"];

/// Ansible's aliases, in its order: (manager, its other names).
const ALIASES: &[(&str, &[&str])] = &[
    ("rpm", &["dnf", "dnf5", "yum", "zypper"]),
    ("pkg", &["pkg5", "pkgng"]),
    ("pkg_info", &["openbsd_pkg"]),
];

/// Managers rdeploy does not read, with the program that shows one is there.
const UNSUPPORTED: &[(&str, &str)] = &[("pacman", "pacman"), ("pkg", "pkg"), ("portage", "qlist")];

/// Ansible's names with the aliases after them.
fn known_names() -> Vec<&'static str> {
    let mut v = MANAGERS.to_vec();
    v.extend(ALIASES.iter().flat_map(|(_, a)| a.iter().copied()));
    v
}

/// The manager an alias stands for.
fn unalias(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(_, a)| a.contains(&name))
        .map_or(name, |(m, _)| m)
}

/// Python's `repr` of a list of strings.
fn py_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The requested managers as Ansible orders them (`auto` expanded in place of nothing, at the
/// end), or its failure message.
fn requested(manager: &[String]) -> Result<Vec<String>, String> {
    let mut managers: Vec<String> = manager.iter().map(|m| m.to_lowercase()).collect();
    let auto = managers.iter().any(|m| m == "auto");
    if auto {
        managers.extend(known_names().iter().map(|s| s.to_string()));
        if let Some(i) = managers.iter().position(|m| m == "auto") {
            managers.remove(i);
        }
    }
    let known = known_names();
    let unsupported: Vec<&str> = managers
        .iter()
        .filter(|m| !known.contains(&m.as_str()))
        .map(String::as_str)
        .collect();
    if !unsupported.is_empty() {
        return Err(if manager.iter().any(|m| m == "auto") {
            "Could not auto detect a usable package manager, check warnings for details.".into()
        } else {
            format!(
                "Unsupported package managers requested: {}",
                unsupported.join(", ")
            )
        });
    }
    Ok(managers)
}

const APT_LIST: &str = crate::host::PACKAGE_FACTS_APT_LIST;

const APT_ARCH: &str = "command -v dpkg >/dev/null 2>&1 || exit 127; dpkg --print-architecture";

/// Every package file apt knows and its `o=` (Origin) field.
const APT_SOURCES: &str = crate::host::PACKAGE_FACTS_APT_SOURCES;

/// Each installed package's first package file for its installed version (`NAME\tFILE`).
const APT_POLICY: &str = crate::host::PACKAGE_FACTS_APT_POLICY;

const RPM_LIST: &str = crate::host::PACKAGE_FACTS_RPM_LIST;

const APK_LIST: &str = "command -v apk >/dev/null 2>&1 || exit 127; apk info -v";

const PKG_INFO_LIST: &str = "command -v pkg_info >/dev/null 2>&1 || exit 127; pkg_info -a";

/// Bytes kept from each end of a listing (a host with many thousand packages fits).
const KEEP: u64 = 1024 * 1024;

/// One package entry.
fn entry(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Adds `pkg` under its name.
fn add(out: &mut Map<String, Value>, pkg: Map<String, Value>) {
    let name = pkg
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match out.get_mut(&name) {
        Some(Value::Array(list)) => list.push(Value::Object(pkg)),
        _ => {
            out.insert(name, Value::Array(vec![Value::Object(pkg)]));
        }
    }
}

/// apt's packages as python-apt names them: `NAME` for the native architecture and `all`,
/// `NAME:ARCH` for another; `origin` is the Origin of the first package file that has the
/// installed version (empty for dpkg's status file).
fn parse_apt(list: &str, native: &str, sources: &str, policy: &str) -> Map<String, Value> {
    let origins: std::collections::HashMap<&str, &str> =
        sources.lines().filter_map(|l| l.split_once('\t')).collect();
    let first_file: std::collections::HashMap<&str, &str> =
        policy.lines().filter_map(|l| l.split_once('\t')).collect();
    let mut out = Map::new();
    for line in list.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [status, name, arch, version, section] = f.as_slice() else {
            continue;
        };
        // Installed in apt's sense: any state but not-installed and config-files.
        if matches!(status.chars().nth(1), Some('n' | 'c') | None) {
            continue;
        }
        let key = if *arch == native || *arch == "all" {
            name.to_string()
        } else {
            format!("{name}:{arch}")
        };
        let origin = first_file
            .get(key.as_str())
            .and_then(|file| origins.get(file))
            .copied()
            .unwrap_or_default();
        add(
            &mut out,
            entry(&[
                ("name", Value::from(key.clone())),
                ("version", Value::from(*version)),
                ("arch", Value::from(*arch)),
                ("category", Value::from(*section)),
                ("origin", Value::from(origin)),
                ("source", Value::from("apt")),
            ]),
        );
    }
    out
}

/// rpm's packages; a tag rpm prints as `(none)` is Python's `None` written as text, as
/// Ansible's `to_text` of the binding's value gives it.
fn parse_rpm(list: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for line in list.lines() {
        let f: Vec<&str> = line
            .split('\t')
            .map(|x| if x == "(none)" { "None" } else { x })
            .collect();
        let [name, version, release, epoch, arch] = f.as_slice() else {
            continue;
        };
        add(
            &mut out,
            entry(&[
                ("name", Value::from(*name)),
                ("version", Value::from(*version)),
                ("release", Value::from(*release)),
                ("epoch", Value::from(*epoch)),
                ("arch", Value::from(*arch)),
                ("source", Value::from("rpm")),
            ]),
        );
    }
    out
}

/// `apk info -v`: `NAME-VERSION-RELEASE` split from the right.
fn parse_apk(list: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for line in list.lines() {
        let nvr: Vec<&str> = line.rsplitn(3, '-').collect();
        let pkg = match nvr.as_slice() {
            [release, version, name] => entry(&[
                ("name", Value::from(*name)),
                ("version", Value::from(*version)),
                ("release", Value::from(*release)),
            ]),
            _ => entry(&[
                ("name", Value::from(line)),
                ("version", Value::from("")),
                ("release", Value::from("")),
            ]),
        };
        let mut pkg = pkg;
        pkg.insert("source".into(), Value::from("apk"));
        add(&mut out, pkg);
    }
    out
}

/// `pkg_info -a`: the first word, `NAME-VERSION` split at its last `-`.
fn parse_pkg_info(list: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for line in list.lines() {
        let word = line.split_whitespace().next().unwrap_or_default();
        let mut pkg = match word.rsplit_once('-') {
            Some((n, v)) => entry(&[("name", Value::from(n)), ("version", Value::from(v))]),
            None => entry(&[("name", Value::from(line)), ("version", Value::from(""))]),
        };
        pkg.insert("source".into(), Value::from("pkg_info"));
        add(&mut out, pkg);
    }
    out
}

/// The commands of one round trip: apt's four, rpm, apk, pkg_info, then one `command -v` per
/// unsupported manager.
fn commands() -> Vec<Cmd> {
    let mut cmds = vec![
        Cmd::raw(APT_LIST),
        Cmd::raw(APT_ARCH),
        Cmd::raw(APT_SOURCES),
        Cmd::raw(APT_POLICY),
        Cmd::raw(RPM_LIST),
        Cmd::raw(APK_LIST),
        Cmd::raw(PKG_INFO_LIST),
    ];
    for (_, prog) in UNSUPPORTED {
        cmds.push(Cmd::raw("command -v").arg(*prog));
    }
    cmds
}

/// A listing's text, or why it cannot be used (`None`: the manager is not there).
fn listing(out: &Output, what: &str) -> Result<Option<String>, String> {
    if out.status == 127 {
        return Ok(None);
    }
    if out.truncated.stdout > 0 {
        return Err(format!(
            "{what}: the listing is too long to read (more than {} bytes)",
            2 * KEEP
        ));
    }
    if out.status != 0 {
        return Err(format!(
            "Unable to list packages rc={} : {}",
            out.status,
            out.stderr_lossy().trim()
        ));
    }
    Ok(Some(out.stdout_lossy().into_owned()))
}

/// Ansible's loop over the managers with the host's outputs (in [`commands`]' order).
fn gather(
    managers: &[String],
    strategy: &str,
    explicit: &[String],
    outs: &[Output],
) -> Result<(Map<String, Value>, Vec<String>), String> {
    let mut packages = Map::new();
    let mut warnings = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut found = 0;
    let out = |i: usize| {
        outs.get(i)
            .ok_or("the host returned fewer outputs than asked")
    };
    for m in managers {
        if strategy == "first" && found > 0 {
            break;
        }
        let m = unalias(m);
        if seen.contains(&m) {
            continue;
        }
        seen.push(m);
        let got = match m {
            "apt" => match listing(out(0)?, "dpkg-query") {
                Ok(Some(list)) => {
                    let native = out(1)?.stdout_lossy().trim().to_string();
                    let sources = out(2)?.stdout_lossy().into_owned();
                    let policy = out(3)?.stdout_lossy().into_owned();
                    Ok(Some(parse_apt(&list, &native, &sources, &policy)))
                }
                other => other.map(|_| None),
            },
            "rpm" => listing(out(4)?, "rpm").map(|l| l.map(|t| parse_rpm(&t))),
            "apk" => listing(out(5)?, "apk").map(|l| l.map(|t| parse_apk(&t))),
            "pkg_info" => listing(out(6)?, "pkg_info").map(|l| l.map(|t| parse_pkg_info(&t))),
            other => {
                let i = UNSUPPORTED.iter().position(|(n, _)| *n == other);
                if i.is_some_and(|i| outs.get(7 + i).is_some_and(Output::success)) {
                    return Err(format!(
                        "package manager '{other}' is on the host but not supported by rdeploy's package_facts (apt, rpm, apk and pkg_info are)"
                    ));
                }
                Ok(None)
            }
        };
        let list = match got {
            Ok(Some(l)) => l,
            Ok(None) => {
                if explicit.iter().any(|e| e == m) {
                    warnings.push(format!(
                        "Requested package manager {m} was not usable by this module: its program is not on the host"
                    ));
                }
                continue;
            }
            Err(e) => {
                warnings.push(format!("Failed to retrieve packages with {m}: {e}"));
                Map::new()
            }
        };
        if list.is_empty() {
            warnings.push(format!("Found \"{m}\" but no associated packages"));
            continue;
        }
        found += 1;
        for (k, v) in list {
            match (packages.get_mut(&k), v) {
                (Some(Value::Array(have)), Value::Array(more)) => have.extend(more),
                (_, v) => {
                    packages.insert(k, v);
                }
            }
        }
    }
    if found == 0 {
        return Err(format!(
            "Could not detect a supported package manager from the following list: {}, or the required Python library is not installed. Check warnings for details.",
            py_list(managers)
        ));
    }
    Ok((packages, warnings))
}

async fn check(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = PackageFactsArgs::parse(args)?;
    let managers = requested(&a.manager).map_err(failed)?;
    let outs = run_batch(tr, ctx, &commands(), KEEP).await?;
    let explicit: Vec<String> = a.manager.iter().map(|m| m.to_lowercase()).collect();
    let (packages, warnings) = gather(&managers, &a.strategy, &explicit, &outs).map_err(failed)?;
    let mut facts = Map::new();
    facts.insert("packages".into(), Value::Object(packages));
    let mut r = result([
        ("ansible_facts", Value::Object(facts)),
        ("changed", Value::from(false)),
    ]);
    if !warnings.is_empty() {
        r.insert("warnings".into(), Value::from(warnings));
    }
    Ok(Verdict::InSync { result: r })
}

crate::read_only_facts_module!(PackageFacts, "package_facts", &["packages"], check);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn out(status: i32, stdout: &str) -> Output {
        Output {
            status,
            stdout: stdout.as_bytes().to_vec(),
            ..Output::default()
        }
    }

    const DPKG: &str = "ii \tbash\tamd64\t5.2.15-2+b8\tshells\nii \tlibc6\tamd64\t2.36-9\tlibs\nii \tlibc6\ti386\t2.36-9\tlibs\nrc \tgone\tamd64\t1.0\tmisc\nii \ttzdata\tall\t2025b-0\tlocalization\n";
    const SOURCES: &str = "/var/lib/dpkg/status\t\nhttp://deb.debian.org/debian bookworm/main amd64 Packages\tDebian\n";
    const POLICY: &str = "bash\t/var/lib/dpkg/status\nlibc6\thttp://deb.debian.org/debian bookworm/main amd64 Packages\nlibc6:i386\t/var/lib/dpkg/status\ntzdata\t/var/lib/dpkg/status\n";

    #[test]
    fn apt_packages_are_named_and_shaped_as_python_apt_gives_them() {
        let p = parse_apt(DPKG, "amd64", SOURCES, POLICY);
        assert_eq!(
            Value::Object(p),
            json!({
                "bash": [{"name": "bash", "version": "5.2.15-2+b8", "arch": "amd64", "category": "shells", "origin": "", "source": "apt"}],
                "libc6": [{"name": "libc6", "version": "2.36-9", "arch": "amd64", "category": "libs", "origin": "Debian", "source": "apt"}],
                "libc6:i386": [{"name": "libc6:i386", "version": "2.36-9", "arch": "i386", "category": "libs", "origin": "", "source": "apt"}],
                "tzdata": [{"name": "tzdata", "version": "2025b-0", "arch": "all", "category": "localization", "origin": "", "source": "apt"}],
            })
        );
    }

    #[test]
    fn rpm_apk_and_pkg_info_listings_are_split_as_ansible_splits_them() {
        let rpm = parse_rpm(
            "kernel\t3.10.0\t514.el7\t(none)\tx86_64\nkernel\t3.10.0\t693.el7\t(none)\tx86_64\nbind\t9.11\t4\t32\tx86_64\n",
        );
        assert_eq!(rpm["kernel"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            rpm["bind"],
            json!([{"name": "bind", "version": "9.11", "release": "4", "epoch": "32", "arch": "x86_64", "source": "rpm"}])
        );
        assert_eq!(rpm["kernel"][0]["epoch"], json!("None"));
        let apk = parse_apk("musl-1.2.4-r2\nca-certificates-bundle-20230506-r0\nodd\n");
        assert_eq!(
            apk["ca-certificates-bundle"],
            json!([{"name": "ca-certificates-bundle", "version": "20230506", "release": "r0", "source": "apk"}])
        );
        assert_eq!(
            apk["odd"],
            json!([{"name": "odd", "version": "", "release": "", "source": "apk"}])
        );
        let pi = parse_pkg_info("curl-7.79.0       transfer files with FTP, HTTP\n");
        assert_eq!(
            pi["curl"],
            json!([{"name": "curl", "version": "7.79.0", "source": "pkg_info"}])
        );
    }

    /// Outputs in [`commands`]' order: apt's four, rpm, apk, pkg_info, pacman, pkg, qlist.
    fn host(apt: bool, rpm: bool, pacman: bool) -> Vec<Output> {
        let missing = || out(127, "");
        vec![
            if apt { out(0, DPKG) } else { missing() },
            out(0, "amd64\n"),
            out(0, SOURCES),
            out(0, POLICY),
            if rpm {
                out(0, "bash\t5.1\t1\t(none)\tx86_64\n")
            } else {
                missing()
            },
            missing(),
            missing(),
            out(if pacman { 0 } else { 1 }, ""),
            out(1, ""),
            out(1, ""),
        ]
    }

    #[test]
    fn managers_are_tried_in_ansibles_order_with_its_messages() {
        let auto = requested(&["auto".into()]).unwrap();
        assert_eq!(&auto[..3], ["apk", "apt", "pacman"]);
        assert_eq!(auto.last().map(String::as_str), Some("openbsd_pkg"));
        assert_eq!(
            requested(&["apt".into(), "foo".into()]).unwrap_err(),
            "Unsupported package managers requested: foo"
        );
        // first: apt alone, though rpm is there too; all: both, merged.
        let (p, w) = gather(&auto, "first", &["auto".into()], &host(true, true, false)).unwrap();
        assert_eq!(p["bash"].as_array().map(Vec::len), Some(1));
        assert!(w.is_empty(), "{w:?}");
        let (p, _) = gather(&auto, "all", &["auto".into()], &host(true, true, false)).unwrap();
        assert_eq!(p["bash"][1]["source"], json!("rpm"));
        // yum is rpm.
        let yum = requested(&["yum".into()]).unwrap();
        let (p, _) = gather(&yum, "first", &yum, &host(false, true, false)).unwrap();
        assert_eq!(p["bash"][0]["source"], json!("rpm"));
        // Nothing there: Ansible's message with the list as Python prints it.
        let e = gather(&yum, "first", &yum, &host(true, false, false)).unwrap_err();
        assert_eq!(
            e,
            "Could not detect a supported package manager from the following list: ['yum'], or the required Python library is not installed. Check warnings for details."
        );
        // A manager rdeploy does not read, found first: said plainly.
        let e = gather(&auto, "first", &["auto".into()], &host(false, false, true)).unwrap_err();
        assert!(
            e.contains("'pacman' is on the host but not supported"),
            "{e}"
        );
    }
}
