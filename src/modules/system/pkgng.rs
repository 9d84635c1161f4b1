//! `pkgng` (community.general): FreeBSD's `pkg`, the common subset (names,
//! present/absent/latest, `cached`).
//!
//! Owns its arguments, its commands (`pkg update`, `pkg install -y`, `pkg upgrade -y`,
//! `pkg delete -y`, `-U` when `cached`) and its result keys; reading (`pkg query`,
//! `pkg upgrade -n`) and comparing is [`super::ospkg`]. It must not format shell lines.

use serde_json::Value;

use super::common::{failed, result};
use super::ospkg::{self, Os, Want};
use crate::modules::runtime::{
    Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// `pkgng`.
pub struct Pkgng;

crate::module_args! {
    /// Installs, upgrades or removes packages with FreeBSD's pkg. rdeploy carries the common
    /// subset: `name`, `state` and `cached` (without it, `pkg update` refreshes the
    /// catalogue before an install, as community.general does).
    #[module(
        name = "pkgng",
        backup = "Not reversible: rdeploy's package backup records dpkg/rpm versions and restores them with apt or dnf only.",
        returns = &[("msg", "what was done"), ("stdout", "pkg's output"), ("stderr", "pkg's errors")],
        examples = "- pkgng:\n    name: [nginx, git]\n    state: present"
    )]
    pub struct PkgngArgs {
        /// Packages to install, upgrade or remove.
        #[arg(required, aliases = &["pkg"])]
        name: Vec<String>,
        /// `present`/`installed`, `latest`, or `absent`/`removed`.
        #[arg(default = "present", choices = &["absent", "installed", "latest", "present", "removed"])]
        state: String,
        /// Use the local package catalogue (`-U`); no `pkg update` first.
        #[arg(default = "no")]
        cached: bool,
    }
}

fn want(args: &Args) -> Result<(PkgngArgs, Want), ModuleError> {
    let a = PkgngArgs::parse(args)?;
    let w = Want {
        names: a
            .name
            .iter()
            .flat_map(|n| n.split(','))
            .map(|n| n.trim().to_string())
            .collect(),
        state: ospkg::norm_state(&a.state)?,
        refresh: !a.cached,
    };
    Ok((a, w))
}

pub(super) fn commands(p: &ospkg::Plan, cached: bool) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    if p.refresh {
        cmds.push(Cmd::raw("pkg update"));
    }
    let verb = |v: &'static str, names: &[String]| {
        let c = Cmd::raw("pkg").op(v).op("-y");
        let c = if cached { c.op("-U") } else { c };
        c.args(names.iter().cloned())
    };
    if !p.install.is_empty() {
        cmds.push(verb("install", &p.install));
    }
    if !p.upgrade.is_empty() {
        cmds.push(verb("upgrade", &p.upgrade));
    }
    if !p.remove.is_empty() {
        cmds.push(Cmd::raw("pkg delete -y").args(p.remove.iter().cloned()));
    }
    cmds
}

async fn apply(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = ospkg::plan_of(drift, "pkgng")?;
    let (a, _) = want(args)?;
    let (_, so, se, failed_out) = ospkg::run_all(tr, ctx, commands(p, a.cached)).await?;
    let mut msgs = Vec::new();
    for (n, what) in [
        (p.install.len(), "added"),
        (p.upgrade.len(), "upgraded"),
        (p.remove.len(), "removed"),
    ] {
        if n > 0 {
            msgs.push(format!("{what} {n} package(s)"));
        }
    }
    let mut r = result([
        ("msg", Value::from(msgs.join("; "))),
        ("stdout", Value::from(so)),
        ("stderr", Value::from(se.clone())),
    ]);
    if let Some(o) = failed_out {
        r.insert("rc".into(), Value::from(o.status));
        return Err(failed(format!("pkg failed: {}", se.trim()), r));
    }
    r.insert("changed".into(), Value::from(true));
    Ok(r)
}

impl Module for Pkgng {
    fn name(&self) -> &'static str {
        "pkgng"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let (_, w) = want(args)?;
            ospkg::check(tr, ctx, Os::Pkgng, &w, Some(Cmd::raw("pkg update"))).await
        })
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply(tr, args, ctx, drift))
    }

    fn resources(&self, _args: &Args) -> Vec<Resource> {
        Vec::new()
    }

    fn not_reversible(&self, _given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        Some(ospkg::NOT_REVERSIBLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_with_and_without_cached() {
        let p = ospkg::Plan {
            refresh: true,
            install: vec!["nginx".into()],
            upgrade: vec!["git".into()],
            remove: vec!["vim".into()],
        };
        let shown: Vec<String> = commands(&p, false).iter().map(Cmd::display).collect();
        assert_eq!(
            shown,
            [
                "pkg update",
                "pkg install -y 'nginx'",
                "pkg upgrade -y 'git'",
                "pkg delete -y 'vim'"
            ]
        );
        let p = ospkg::Plan {
            install: vec!["nginx".into()],
            ..ospkg::Plan::default()
        };
        let shown: Vec<String> = commands(&p, true).iter().map(Cmd::display).collect();
        assert_eq!(shown, ["pkg install -y -U 'nginx'"]);
        let (_, w) = want(&crate::modules::system::testutil::args(
            serde_json::json!({"name": "a,b", "cached": true}),
        ))
        .unwrap();
        assert_eq!(w.names, ["a", "b"]);
        assert!(!w.refresh);
    }
}
