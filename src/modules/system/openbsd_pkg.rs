//! `openbsd_pkg` (community.general): OpenBSD's `pkg_add`/`pkg_delete`, the common subset
//! (names, present/absent/latest).
//!
//! Owns its arguments, its commands (`pkg_add -I`, `pkg_add -u -I`, `pkg_delete -I`) and its
//! result keys; reading (`pkg_info -Iq inst:NAME`, `pkg_add -u -n`) and comparing is
//! [`super::ospkg`]. It must not format shell lines.

use serde_json::Value;

use super::common::{failed, result};
use super::ospkg::{self, Os, Want};
use crate::modules::runtime::{
    Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// `openbsd_pkg`.
pub struct OpenbsdPkg;

crate::module_args! {
    /// Installs, upgrades or removes packages with OpenBSD's pkg_add and pkg_delete. rdeploy
    /// carries the common subset: `name` and `state`.
    #[module(
        name = "openbsd_pkg",
        backup = "Not reversible: rdeploy's package backup records dpkg/rpm versions and restores them with apt or dnf only.",
        returns = &[("rc", "the exit status"), ("stdout", "the tools' output"), ("stderr", "their errors")],
        examples = "- openbsd_pkg:\n    name: [nginx, git]\n    state: present"
    )]
    pub struct OpenbsdPkgArgs {
        /// Packages to install, upgrade or remove.
        #[arg(required)]
        name: Vec<String>,
        /// `present`/`installed`, `latest`, or `absent`/`removed`.
        #[arg(default = "present", choices = &["absent", "installed", "latest", "present", "removed"])]
        state: String,
    }
}

fn want(args: &Args) -> Result<Want, ModuleError> {
    let a = OpenbsdPkgArgs::parse(args)?;
    Ok(Want {
        names: a
            .name
            .iter()
            .flat_map(|n| n.split(','))
            .map(|n| n.trim().to_string())
            .collect(),
        state: ospkg::norm_state(&a.state)?,
        refresh: false,
    })
}

pub(super) fn commands(p: &ospkg::Plan) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    if !p.install.is_empty() {
        cmds.push(Cmd::raw("pkg_add -I").args(p.install.iter().cloned()));
    }
    if !p.upgrade.is_empty() {
        cmds.push(Cmd::raw("pkg_add -u -I").args(p.upgrade.iter().cloned()));
    }
    if !p.remove.is_empty() {
        cmds.push(Cmd::raw("pkg_delete -I").args(p.remove.iter().cloned()));
    }
    cmds
}

async fn apply(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = ospkg::plan_of(drift, "openbsd_pkg")?;
    let (_, so, se, failed_out) = ospkg::run_all(tr, ctx, commands(p)).await?;
    let mut r = result([
        (
            "rc",
            Value::from(failed_out.as_ref().map_or(0, |o| o.status)),
        ),
        ("stdout", Value::from(so)),
        ("stderr", Value::from(se.clone())),
    ]);
    if failed_out.is_some() {
        return Err(failed(
            format!("pkg_add/pkg_delete failed: {}", se.trim()),
            r,
        ));
    }
    r.insert("changed".into(), Value::from(true));
    Ok(r)
}

impl Module for OpenbsdPkg {
    fn name(&self) -> &'static str {
        "openbsd_pkg"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let w = want(args)?;
            ospkg::check(tr, ctx, Os::OpenBsd, &w, None).await
        })
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply(tr, ctx, drift))
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
    use crate::modules::system::testutil::*;
    use serde_json::json;

    /// Fake pkg_info/pkg_add/pkg_delete: `$FAKE/pkgs/NAME` holds the installed stem,
    /// `$FAKE/repo/NAME` the newest; calls go to `$FAKE/log`.
    const FAKE_INFO: &str =
        r#"n=${2#inst:}; [ -e "$FAKE/pkgs/$n" ] && cat "$FAKE/pkgs/$n"; exit 0"#;
    const FAKE_ADD: &str = r#"
echo "pkg_add $*" >> "$FAKE/log"
case " $* " in *" -n "*) eval n=\${$#}; [ "$(cat "$FAKE/repo/$n")" != "$(cat "$FAKE/pkgs/$n")" ] && echo "$n-old->new"; exit 0 ;; esac
for a in "$@"; do case $a in -*) ;; *) cp "$FAKE/repo/$a" "$FAKE/pkgs/$a" ;; esac; done"#;
    const FAKE_DELETE: &str = r#"echo "pkg_delete $*" >> "$FAKE/log"; for a in "$@"; do case $a in -*) ;; *) rm "$FAKE/pkgs/$a" ;; esac; done"#;

    #[tokio::test]
    async fn fake_openbsd_present_latest_absent() {
        let (dir, bin, st) = fake_dirs();
        fake_tool(&bin, "pkg_info", FAKE_INFO);
        fake_tool(&bin, "pkg_add", FAKE_ADD);
        fake_tool(&bin, "pkg_delete", FAKE_DELETE);
        for d in ["pkgs", "repo"] {
            std::fs::create_dir_all(st.join(d)).unwrap();
        }
        std::fs::write(st.join("repo/nginx"), "nginx-1.26.0").unwrap();
        std::fs::write(st.join("repo/git"), "git-2.45.0").unwrap();
        std::fs::write(st.join("pkgs/git"), "git-2.44.0").unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &st));
        let mut tr = transport();

        let a = args(json!({"name": ["nginx", "git"]}));
        let Ran::Applied(changes, Ok(_)) = check_apply(&OpenbsdPkg, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(matches!(
            check_apply(&OpenbsdPkg, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let a = args(json!({"name": ["nginx", "git"], "state": "latest"}));
        assert!(matches!(
            check_apply(&OpenbsdPkg, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(matches!(
            check_apply(&OpenbsdPkg, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let a = args(json!({"name": "nginx", "state": "absent"}));
        assert!(matches!(
            check_apply(&OpenbsdPkg, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(matches!(
            check_apply(&OpenbsdPkg, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let log = std::fs::read_to_string(st.join("log")).unwrap();
        for line in [
            "pkg_add -I nginx\n",
            "pkg_add -u -I git\n",
            "pkg_delete -I nginx\n",
        ] {
            assert!(log.contains(line), "{line}{log}");
        }
    }
}
