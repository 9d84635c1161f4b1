//! `package`, `apt` and `dnf`: whether packages are installed, absent or at the latest version.
//!
//! Owns reading package state (one round trip: a batch with one query per package, plus the
//! apt cache age when `update_cache` is asked; `package` detects the manager inside the same
//! queries), choosing what to install/upgrade/remove, and doing it in one round trip
//! (`apt-get update && apt-get install ...`). Names are validated (no leading `-`) and passed
//! as quoted arguments. It must not format shell lines.
//!
//! `update_cache` does not make a task change by itself when packages are given: the cache is
//! refreshed before an install that is needed anyway (so `state: latest` compares against the
//! cache as it was). With no `name`, `update_cache` is a change unless the cache is younger
//! than `cache_valid_time` (as Ansible's apt reports it, also under `--check`); `package` then
//! finds the manager with a query of its own.

use serde_json::Value;

use super::common::{choice_arg, command_result, failed, int_arg, plain_name, result};
use super::ospkg::{self, Os};
use crate::modules::runtime::{
    Args, ArgsExt, BoxFut, Change, Drift, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// `package`: apt or dnf, whichever the host has.
pub struct Package;
/// `apt`: Debian and Ubuntu.
pub struct Apt;
/// `dnf`: Fedora, RHEL and derivatives.
pub struct Dnf;

/// The package manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mgr {
    Apt,
    Dnf,
}

/// Reads one package. `$1`: `auto`, `apt` or `dnf`; `$2`: the name; `$3`: `latest` to also
/// ask whether an upgrade is available. Prints `manager M`, then `installed VERSION` or
/// `absent`, then (with `latest`) `upgradable yes|no`.
const QUERY: &str = r#"
m_=$1 p_=$2
if [ "$m_" = auto ]; then
  if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then m_=apt
  elif command -v dnf >/dev/null 2>&1 && command -v rpm >/dev/null 2>&1; then m_=dnf
  elif command -v pacman >/dev/null 2>&1; then printf 'manager pacman\n'; exit 0
  elif command -v zypper >/dev/null 2>&1; then printf 'manager zypper\n'; exit 0
  elif command -v pkg >/dev/null 2>&1 && ! command -v pkg_add >/dev/null 2>&1; then printf 'manager pkgng\n'; exit 0
  elif command -v pkg_add >/dev/null 2>&1 && command -v pkg_info >/dev/null 2>&1; then printf 'manager openbsd_pkg\n'; exit 0
  else printf 'manager none\n'; exit 0; fi
elif [ "$m_" = dnf ] && ! { command -v dnf >/dev/null 2>&1 && command -v rpm >/dev/null 2>&1; }; then
  printf 'manager missing-dnf\n'; exit 0
elif [ "$m_" = apt ] && ! { command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; }; then
  printf 'manager missing-apt\n'; exit 0
fi
printf 'manager %s\n' "$m_"
v_=
if [ "$m_" = apt ]; then
  o_=$(dpkg-query -W -f='${Status}|${Version}\n' "$p_" 2>/dev/null | head -n 1)
  case $o_ in
    *" ok installed|"*) v_=${o_#*|}; printf 'installed %s\n' "$v_" ;;
    *) printf 'absent\n' ;;
  esac
  if [ "$3" = latest ]; then
    c_=$(LC_ALL=C apt-cache ${4:+-t "$4"} policy "$p_" 2>/dev/null | sed -n 's/^ *Candidate: *//p' | head -n 1)
    if [ -n "$c_" ] && [ "$c_" != "(none)" ] && [ "$c_" != "$v_" ]; then printf 'upgradable yes\n'; else printf 'upgradable no\n'; fi
  fi
else
  if v_=$(rpm -q --qf '%{VERSION}-%{RELEASE}\n' "$p_" 2>/dev/null); then
    printf 'installed %s\n' "$(printf '%s\n' "$v_" | head -n 1)"
  else
    printf 'absent\n'
  fi
  if [ "$3" = latest ]; then
    dnf -q check-update "$p_" >/dev/null 2>&1
    if [ $? -eq 100 ]; then printf 'upgradable yes\n'; else printf 'upgradable no\n'; fi
  fi
fi"#;

/// Which manager the host has, for `package` with no package to query: prints `manager M`.
const DETECT: &str = r#"
if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then printf 'manager apt\n'
elif command -v dnf >/dev/null 2>&1 && command -v rpm >/dev/null 2>&1; then printf 'manager dnf\n'
elif command -v pacman >/dev/null 2>&1; then printf 'manager pacman\n'
elif command -v zypper >/dev/null 2>&1; then printf 'manager zypper\n'
elif command -v pkg >/dev/null 2>&1 && ! command -v pkg_add >/dev/null 2>&1; then printf 'manager pkgng\n'
elif command -v pkg_add >/dev/null 2>&1 && command -v pkg_info >/dev/null 2>&1; then printf 'manager openbsd_pkg\n'
else printf 'manager none\n'; fi"#;

/// Seconds since the apt lists were last updated (a large number when unknown).
const APT_CACHE_AGE: &str = r#"
s_=$(stat -c %Y /var/lib/apt/periodic/update-success-stamp 2>/dev/null || stat -c %Y /var/lib/apt/lists 2>/dev/null || echo 0)
printf '%s\n' "$(( $(date +%s) - s_ ))""#;

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
    upgradable: bool,
}

fn parse_query(text: &str) -> Result<Pkg, String> {
    let mut p = Pkg {
        manager: None,
        other: None,
        missing: None,
        version: None,
        upgradable: false,
    };
    let mut seen_manager = false;
    for line in text.lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        match k {
            "manager" => {
                seen_manager = true;
                p.other = match v {
                    "pacman" => Some(Os::Pacman),
                    "zypper" => Some(Os::Zypper),
                    "pkgng" => Some(Os::Pkgng),
                    "openbsd_pkg" => Some(Os::OpenBsd),
                    _ => None,
                };
                p.missing = v.strip_prefix("missing-").map(str::to_string);
                p.manager = match v {
                    "apt" => Some(Mgr::Apt),
                    "dnf" => Some(Mgr::Dnf),
                    _ => None,
                };
            }
            "installed" => p.version = Some(v.to_string()),
            "absent" => p.version = None,
            "upgradable" => p.upgradable = v == "yes",
            _ => return Err(format!("unexpected line {line:?}")),
        }
    }
    if !seen_manager {
        return Err("no manager line".into());
    }
    Ok(p)
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
struct Plan {
    mgr: Mgr,
    update: bool,
    install: Vec<String>,
    upgrade: Vec<String>,
    remove: Vec<String>,
    /// apt's `-t RELEASE`, `--[no-]install-recommends` and `--allow-downgrades` for installs.
    apt_opts: Vec<String>,
    /// dnf's `--enablerepo=`/`--disablerepo=` for every dnf command.
    dnf_opts: Vec<String>,
    /// apt's `deb`: a package file on the host to install.
    deb: Option<String>,
    /// apt's `upgrade`: `upgrade` (safe) or `dist-upgrade`.
    full_upgrade: Option<&'static str>,
    /// apt's `autoremove`.
    autoremove: bool,
}

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
    /// dnf's `enablerepo` and `disablerepo`.
    enable: Vec<String>,
    disable: Vec<String>,
    /// dnf's `allowerasing`.
    erasing: bool,
    /// apt's `only_upgrade`: named packages that are not installed are left alone.
    only_upgrade: bool,
    /// apt's `upgrade`, as the apt-get verb: `upgrade` or `dist-upgrade`.
    full_upgrade: Option<&'static str>,
    /// apt's `autoremove`.
    autoremove: bool,
    /// apt's `deb`.
    deb: Option<String>,
}

fn want(args: &Args) -> Result<Want, ModuleError> {
    let names = args.list_arg("name", true);
    for n in &names {
        plain_name("package", n)?;
    }
    let state = match choice_arg(
        args,
        "state",
        &["present", "absent", "latest", "installed", "removed"],
        "present",
    )? {
        "installed" => "present",
        "removed" => "absent",
        s => s,
    };
    let update = args.bool_arg("update_cache", false)?;
    let full_upgrade = match choice_arg(
        args,
        "upgrade",
        &["no", "yes", "safe", "full", "dist"],
        "no",
    )? {
        "no" => None,
        "yes" | "safe" => Some("upgrade"),
        _ => Some("dist-upgrade"),
    };
    let autoremove = args.bool_arg("autoremove", false)?;
    let deb = args.str_arg("deb").filter(|d| !d.is_empty());
    if let Some(d) = &deb
        && d.contains("://")
    {
        return Err(ModuleError::Args(format!(
            "deb {d}: a URL is not supported by rdeploy; download it with get_url and give its path on the host"
        )));
    }
    if names.is_empty() && !update && full_upgrade.is_none() && !autoremove && deb.is_none() {
        return Err(ModuleError::Args("give 'name' or 'update_cache'".into()));
    }
    let release = args.str_arg("default_release").filter(|r| !r.is_empty());
    if let Some(r) = &release {
        plain_name("apt", r)?;
    }
    let recommends = match args.get("install_recommends") {
        None | Some(Value::Null) => None,
        Some(_) => Some(args.bool_arg("install_recommends", true)?),
    };
    let repos = |k: &str| -> Result<Vec<String>, ModuleError> {
        let v = args.list_arg(k, true);
        for r in &v {
            plain_name("dnf", r)?;
        }
        Ok(v)
    };
    Ok(Want {
        names,
        state,
        update,
        cache_valid: int_arg(args, "cache_valid_time", 0)?,
        release,
        recommends,
        downgrade: args.bool_arg("allow_downgrade", false)?,
        enable: repos("enablerepo")?,
        disable: repos("disablerepo")?,
        erasing: args.bool_arg("allowerasing", false)?,
        only_upgrade: args.bool_arg("only_upgrade", false)?,
        full_upgrade,
        autoremove,
        deb,
    })
}

/// Reads a `.deb` on the host (`$1`): prints `deb NAME VERSION`, then `installed VERSION` or
/// `absent` for that package; `missing` when the file is not there.
const DEB_QUERY: &str = r#"
[ -f "$1" ] || { printf 'missing\n'; exit 0; }
n_=$(dpkg-deb -f "$1" Package) && v_=$(dpkg-deb -f "$1" Version) || exit 1
printf 'deb %s %s\n' "$n_" "$v_"
o_=$(dpkg-query -W -f='${Status}|${Version}\n' "$n_" 2>/dev/null | head -n 1)
case $o_ in
  *" ok installed|"*) printf 'installed %s\n' "${o_#*|}" ;;
  *) printf 'absent\n' ;;
esac"#;

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

fn simulate_cmd(verb: &'static str) -> Cmd {
    Cmd::raw("LC_ALL=C apt-get -s -q")
        .op(verb)
        .op(if verb == "upgrade" {
            "--with-new-pkgs"
        } else {
            ""
        })
        .env("DEBIAN_FRONTEND", "noninteractive")
}

fn query_cmd(which: Option<Mgr>, name: &str, latest: bool, release: Option<&str>) -> Cmd {
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
        .op(QUERY)
}

async fn check_packages(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    which: Option<Mgr>,
) -> Result<Verdict, ModuleError> {
    let w = want(args)?;
    let latest = w.state == "latest";
    let mut cmds: Vec<Cmd> = w
        .names
        .iter()
        .map(|n| query_cmd(which, split_spec(which, n).0, latest, w.release.as_deref()))
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
        cmds.push(simulate_cmd(verb));
    }
    if w.autoremove {
        cmds.push(simulate_cmd("autoremove"));
    }
    let outs = if cmds.is_empty() {
        Vec::new()
    } else {
        let batch = Cmd::batch(&cmds).map_err(|e| ModuleError::Args(e.to_string()))?;
        ctx.run_batch(tr, &batch)
            .await?
            .map_err(|e| failed(format!("cannot read package state: {e}"), Args::new()))?
    };
    let mut mgr = which;
    let mut changes = Vec::new();
    let mut plan = Plan {
        mgr: which.unwrap_or(Mgr::Apt),
        update: false,
        install: Vec::new(),
        upgrade: Vec::new(),
        remove: Vec::new(),
        apt_opts: w
            .release
            .iter()
            .flat_map(|r| ["-t".to_string(), r.clone()])
            .chain(w.recommends.map(|on| {
                if on {
                    "--install-recommends".to_string()
                } else {
                    "--no-install-recommends".to_string()
                }
            }))
            .chain(w.downgrade.then(|| "--allow-downgrades".to_string()))
            .collect(),
        dnf_opts: w
            .enable
            .iter()
            .map(|r| format!("--enablerepo={r}"))
            .chain(w.disable.iter().map(|r| format!("--disablerepo={r}")))
            .chain(w.erasing.then(|| "--allowerasing".to_string()))
            .collect(),
        deb: None,
        full_upgrade: None,
        autoremove: false,
    };
    let mut versions = serde_json::Map::new();
    for (spec, out) in w.names.iter().zip(&outs) {
        let p = parse_query(&out.stdout_lossy())
            .map_err(|e| failed(format!("cannot read the state of {spec}: {e}"), Args::new()))?;
        if let Some(os) = p.other {
            return delegate(tr, ctx, args, os, &w).await;
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
            return delegate(tr, ctx, args, os, &w).await;
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
    // the other manager's.
    if which.is_none() {
        if plan.mgr == Mgr::Dnf && w.downgrade {
            return Err(failed(
                "allow_downgrade with dnf is not supported by rdeploy",
                Args::new(),
            ));
        }
        let (other, theirs): (&str, &[&str]) = match plan.mgr {
            Mgr::Dnf => ("dnf", &["cache_valid_time"]),
            Mgr::Apt => ("apt", &["enablerepo", "disablerepo"]),
        };
        let given: Vec<&str> = theirs
            .iter()
            .copied()
            .filter(|k| args.get(*k).is_some_and(|v| !v.is_null()))
            .collect();
        if !given.is_empty() {
            return Err(failed(
                format!(
                    "Unsupported parameters for ({other}) module: {}",
                    given.join(", ")
                ),
                Args::new(),
            ));
        }
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
    if w.autoremove {
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

fn update_cmd(mgr: Mgr) -> Cmd {
    match mgr {
        Mgr::Apt => Cmd::raw("apt-get update -q").env("DEBIAN_FRONTEND", "noninteractive"),
        Mgr::Dnf => Cmd::raw("dnf makecache -q"),
    }
}

/// `dnf VERB -y -q` with the task's repository options, then `pkgs`.
fn dnf(verb: &'static str, opts: &[String], pkgs: &[String]) -> Cmd {
    Cmd::raw("dnf")
        .op(verb)
        .op("-y -q")
        .args(opts.iter().cloned())
        .args(pkgs.iter().cloned())
}

fn apt_get(verb: &'static str, opts: &[String], pkgs: &[String]) -> Cmd {
    Cmd::raw("apt-get")
        .op(verb)
        .op("-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold")
        .args(opts.iter().cloned())
        .args(pkgs.iter().cloned())
        .env("DEBIAN_FRONTEND", "noninteractive")
}

fn plan_cmd(p: &Plan) -> Option<Cmd> {
    let mut steps = Vec::new();
    if p.update {
        steps.push(update_cmd(p.mgr));
    }
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
                steps.push(apt_get("install", &p.apt_opts, &install));
            }
            if let Some(verb) = p.full_upgrade {
                let with_new = if verb == "upgrade" {
                    vec!["--with-new-pkgs".to_string()]
                } else {
                    Vec::new()
                };
                steps.push(apt_get(verb, &with_new, &[]));
            }
            if !p.remove.is_empty() {
                steps.push(apt_get("remove", &[], &p.remove));
            }
            if p.autoremove {
                steps.push(apt_get("autoremove", &[], &[]));
            }
        }
        Mgr::Dnf => {
            if !p.install.is_empty() {
                steps.push(dnf("install", &p.dnf_opts, &p.install));
            }
            if !p.upgrade.is_empty() {
                steps.push(dnf("upgrade", &p.dnf_opts, &p.upgrade));
            }
            if !p.remove.is_empty() {
                steps.push(dnf("remove", &p.dnf_opts, &p.remove));
            }
        }
    }
    steps.into_iter().reduce(Cmd::and)
}

/// `package` on a host whose manager is another system's: what Ansible's `package` hands to
/// `pacman`, `zypper`, `pkgng` or `openbsd_pkg`, checked by [`ospkg`].
struct OtherPlan {
    os: Os,
    plan: ospkg::Plan,
}

/// The arguments only apt or dnf take: the other managers refuse them, as under Ansible.
const APT_DNF_ONLY: &[&str] = &[
    "cache_valid_time",
    "allow_downgrade",
    "enablerepo",
    "disablerepo",
    "default_release",
    "install_recommends",
];

fn os_name(os: Os) -> &'static str {
    match os {
        Os::Pacman => "pacman",
        Os::Zypper => "zypper",
        Os::Pkgng => "pkgng",
        Os::OpenBsd => "openbsd_pkg",
    }
}

async fn delegate(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    args: &Args,
    os: Os,
    w: &Want,
) -> Result<Verdict, ModuleError> {
    let given: Vec<&str> = APT_DNF_ONLY
        .iter()
        .copied()
        .filter(|k| args.get(*k).is_some_and(|v| !v.is_null()))
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

macro_rules! package_module {
    ($ty:ident, $name:literal, $which:expr) => {
        impl Module for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn check<'a>(
                &'a self,
                tr: &'a mut AnyTransport,
                args: &'a Args,
                ctx: &'a ModuleCtx<'a>,
            ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
                Box::pin(check_packages(tr, args, ctx, $which))
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
                args.list_arg("name", true)
                    .iter()
                    .map(|n| Resource::Package(split_spec($which, n).0.to_string()))
                    .collect()
            }
        }
    };
}

package_module!(Package, "package", None);
package_module!(Apt, "apt", Some(Mgr::Apt));
package_module!(Dnf, "dnf", Some(Mgr::Dnf));

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
        assert!(want(&args(json!({"name": "-o"}))).is_err());
        assert!(want(&args(json!({}))).is_err());
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
            apt_opts: Vec::new(),
            dnf_opts: Vec::new(),
            deb: None,
            full_upgrade: None,
            autoremove: false,
        };
        let shown = plan_cmd(&p).map(|c| c.display()).unwrap_or_default();
        assert!(
            shown.starts_with("export DEBIAN_FRONTEND='noninteractive'\napt-get update -q && ("),
            "{shown}"
        );
        assert!(shown.contains("apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold 'nginx' 'curl'"), "{shown}");
        assert!(shown.contains("apt-get remove -y -q"), "{shown}");
        let p = Plan {
            mgr: Mgr::Dnf,
            update: false,
            install: vec!["a".into()],
            upgrade: vec![],
            remove: vec![],
            apt_opts: Vec::new(),
            dnf_opts: Vec::new(),
            deb: None,
            full_upgrade: None,
            autoremove: false,
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
if [ -e "$FAKE/pkgs/$p" ]; then printf 'install ok installed|%s\n' "$(cat "$FAKE/pkgs/$p")"; else echo "dpkg-query: no packages found matching $p" >&2; exit 1; fi"#;
    const FAKE_APT_CACHE: &str = r#"
eval p=\${$#}
echo "apt-cache $*" >> "$FAKE/cache-log"
echo "$p:"; echo "  Installed: x"; echo "  Candidate: $(cat "$FAKE/candidate/$p" 2>/dev/null || echo '(none)')""#;
    const FAKE_APT_GET: &str = r#"
echo "apt-get $* DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >> "$FAKE/log"
verb=$1 skip=
for a in "$@"; do if [ -n "$skip" ]; then skip=; continue; fi; case $a in -t) skip=1 ;; -*|Dpkg*|install|remove|update) ;; *)
  n=${a%%=*}
  if [ "$verb" = install ]; then cat "$FAKE/candidate/$n" > "$FAKE/pkgs/$n" 2>/dev/null || echo 1.0 > "$FAKE/pkgs/$n"; else rm -f "$FAKE/pkgs/$n"; fi ;;
esac; done"#;

    /// A temporary host with the fake dpkg-query, apt-cache and apt-get first on `PATH`:
    /// (its folder, the fakes' state folder with `pkgs/` and `candidate/`).
    fn fake_apt_host() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let st = dir.path().join("state");
        for d in [&bin, &st.join("pkgs"), &st.join("candidate")] {
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
        let w = want(&args(json!({"name": "curl", "allowerasing": true}))).unwrap();
        assert!(w.erasing);
        assert!(!want(&args(json!({"name": "curl"}))).unwrap().erasing);
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
            apt_opts: Vec::new(),
            dnf_opts: vec!["--enablerepo=epel".into(), "--disablerepo=updates".into()],
            deb: None,
            full_upgrade: None,
            autoremove: false,
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
        assert!(log.contains(&format!("install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold {}", deb.display())), "{log}");
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
}
