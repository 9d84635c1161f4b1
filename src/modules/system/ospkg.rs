//! The shared engine of the other systems' package managers rdeploy carries natively:
//! `pacman`, `zypper`, `pkgng` and `openbsd_pkg` (their common subset: a list of names,
//! `state` present/absent/latest, and a cache refresh where they have one).
//!
//! Owns the per-manager read-only query (one round trip for every name: the installed
//! version, and with `latest` whether an upgrade is available), choosing what to install,
//! upgrade and remove, and the commands that do it, each with the manager's own
//! non-interactive flags. The modules' files own their arguments and result keys. Names are
//! validated (no leading `-`) and passed as quoted arguments. It must not format shell lines.
//!
//! rdeploy's package backup records dpkg and rpm versions and puts them back with apt or dnf
//! only, so these modules name no resources and say why they are not reversible.

use serde_json::Value;

use super::common::{failed, plain_name};
use crate::modules::runtime::{Args, Change, Drift, HostView, ModuleCtx, ModuleError, Verdict};
use crate::transport::{AnyTransport, Cmd, Output};

/// Which manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Os {
    Pacman,
    Zypper,
    Pkgng,
    OpenBsd,
}

/// Reads one package: `$1` the name, `$2` `latest` to ask for an upgrade. Prints
/// `installed VERSION` or `absent`, then (with `latest`) `upgradable yes|no`.
const PACMAN_QUERY: &str = crate::host::OSPKG_PACMAN_QUERY;

const ZYPPER_QUERY: &str = crate::host::OSPKG_ZYPPER_QUERY;

const PKGNG_QUERY: &str = crate::host::OSPKG_PKGNG_QUERY;

const OPENBSD_QUERY: &str = crate::host::OSPKG_OPENBSD_QUERY;

/// One package as the host has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Found {
    pub version: Option<String>,
    pub upgradable: bool,
}

pub(super) fn parse_query(text: &str) -> Result<Found, String> {
    let mut f = Found {
        version: None,
        upgradable: false,
    };
    let mut seen = false;
    for line in text.lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        match k {
            "installed" => {
                seen = true;
                f.version = Some(v.to_string());
            }
            "absent" => seen = true,
            "upgradable" => f.upgradable = v == "yes",
            _ => return Err(format!("unexpected line {line:?}")),
        }
    }
    if !seen {
        return Err("no state line".into());
    }
    Ok(f)
}

pub(super) fn query_cmd(os: Os, name: &str, latest: bool) -> Cmd {
    let script = match os {
        Os::Pacman => PACMAN_QUERY,
        Os::Zypper => ZYPPER_QUERY,
        Os::Pkgng => PKGNG_QUERY,
        Os::OpenBsd => OPENBSD_QUERY,
    };
    Cmd::raw("set --")
        .arg(name)
        .arg(if latest { "latest" } else { "" })
        .op(script)
}

/// The task, in the managers' common terms.
pub(super) struct Want {
    pub names: Vec<String>,
    /// `present`, `absent` or `latest` (`installed`/`removed` already mapped).
    pub state: &'static str,
    /// Refresh the package lists first (pacman `-Sy`, zypper `refresh`, pkg `update`).
    pub refresh: bool,
}

/// `state` with the managers' spellings mapped to present/absent/latest.
pub(super) fn norm_state(state: &str) -> Result<&'static str, ModuleError> {
    match state {
        "present" | "installed" => Ok("present"),
        "absent" | "removed" => Ok("absent"),
        "latest" => Ok("latest"),
        other => Err(ModuleError::Args(format!(
            "state '{other}' is not supported by rdeploy"
        ))),
    }
}

/// What `apply` does, found by [`check`].
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Plan {
    pub refresh: bool,
    pub install: Vec<String>,
    pub upgrade: Vec<String>,
    pub remove: Vec<String>,
}

/// Reads every name in one round trip and compares. `refresh_alone`: a refresh with no name
/// is a change (pacman, zypper).
pub(super) async fn check(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    os: Os,
    w: &Want,
    refresh_cmd: Option<Cmd>,
) -> Result<Verdict, ModuleError> {
    for n in &w.names {
        plain_name("package", n)?;
    }
    let latest = w.state == "latest";
    let cmds: Vec<Cmd> = w.names.iter().map(|n| query_cmd(os, n, latest)).collect();
    let outs: Vec<Output> = if cmds.is_empty() {
        Vec::new()
    } else {
        let batch = Cmd::batch(&cmds).map_err(|e| ModuleError::Args(e.to_string()))?;
        ctx.query_batch(tr, &batch)
            .await?
            .map_err(|e| failed(format!("cannot read package state: {e}"), Args::new()))?
    };
    let mut plan = Plan::default();
    let mut changes = Vec::new();
    let mut versions = serde_json::Map::new();
    for (name, out) in w.names.iter().zip(&outs) {
        let f = parse_query(&out.stdout_lossy())
            .map_err(|e| failed(format!("cannot read the state of {name}: {e}"), Args::new()))?;
        versions.insert(
            name.clone(),
            f.version.clone().map(Value::from).unwrap_or(Value::Null),
        );
        let before = f.version.clone().unwrap_or_else(|| "absent".into());
        let (list, after) = match (w.state, &f.version) {
            ("absent", Some(_)) => (&mut plan.remove, "absent"),
            ("present" | "latest", None) => (&mut plan.install, w.state),
            ("latest", Some(_)) if f.upgradable => (&mut plan.upgrade, "latest"),
            _ => continue,
        };
        list.push(name.clone());
        changes.push(Change::Attr {
            subject: name.clone(),
            what: "version".into(),
            before,
            after: after.into(),
        });
    }
    let installing = !plan.install.is_empty() || !plan.upgrade.is_empty();
    if let Some(r) = refresh_cmd
        && w.refresh
        && (installing || w.names.is_empty())
    {
        plan.refresh = true;
        changes.insert(
            0,
            Change::Run {
                command: r.display(),
            },
        );
    }
    if changes.is_empty() {
        let mut r = Args::new();
        r.insert("changed".into(), Value::from(false));
        r.insert("versions".into(), Value::Object(versions));
        return Ok(Verdict::InSync { result: r });
    }
    Ok(Verdict::Drift(Drift::new(changes, plan)))
}

/// Runs `cmds` in order, stopping at the first failure: (commands shown, stdout, stderr,
/// the failed one's output).
pub(super) async fn run_all(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    cmds: Vec<Cmd>,
) -> Result<(Vec<String>, String, String, Option<Output>), ModuleError> {
    let (mut shown, mut so, mut se) = (Vec::new(), String::new(), String::new());
    for c in cmds {
        shown.push(c.display());
        let out = ctx.run(tr, c).await?;
        so.push_str(&out.stdout_lossy());
        se.push_str(&out.stderr_lossy());
        if out.status != 0 {
            return Ok((shown, so, se, Some(out)));
        }
    }
    Ok((shown, so, se, None))
}

/// The plan from a drift.
pub(super) fn plan_of<'a>(drift: &'a Drift, module: &str) -> Result<&'a Plan, ModuleError> {
    drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args(format!("{module}: apply without a plan from check")))
}

/// The reason these modules give for [`crate::modules::runtime::Module::not_reversible`].
pub(super) const NOT_REVERSIBLE: &str = "rdeploy's package backup records dpkg/rpm versions and restores them with apt or dnf only; this manager's changes are not rolled back";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_lines() {
        assert_eq!(
            parse_query("installed 1.2-3\nupgradable yes\n").unwrap(),
            Found {
                version: Some("1.2-3".into()),
                upgradable: true
            }
        );
        assert_eq!(parse_query("absent\n").unwrap().version, None);
        assert!(parse_query("").is_err());
        assert!(parse_query("weird\n").is_err());
        assert_eq!(norm_state("installed").unwrap(), "present");
        assert_eq!(norm_state("removed").unwrap(), "absent");
        assert!(norm_state("dist-upgrade").is_err());
        let shown = query_cmd(Os::Pacman, "vim", true).display();
        assert!(shown.starts_with("set -- 'vim' 'latest'"), "{shown}");
    }
}
