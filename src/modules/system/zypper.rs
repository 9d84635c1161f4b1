//! `zypper` (community.general): packages on openSUSE and SLES, the common subset (names,
//! present/absent/latest, `update_cache`).
//!
//! Owns its arguments, its commands (`zypper --quiet --non-interactive install|update|remove
//! --type package`, `refresh`) and its result keys; reading (rpm, `zypper list-updates`) and
//! comparing is [`super::ospkg`]. It must not format shell lines.

use serde_json::Value;

use super::common::{failed, result};
use super::ospkg::{self, Os, Want};
use crate::modules::runtime::{
    Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// `zypper`.
pub struct Zypper;

crate::module_args! {
    /// Installs, upgrades or removes packages with zypper (openSUSE, SLES). rdeploy carries
    /// the common subset: `name`, `state` and `update_cache` (`zypper refresh`, run before
    /// an install that is needed).
    #[module(
        name = "zypper",
        backup = "Not reversible: rdeploy's package backup records rpm versions but restores them with apt or dnf only.",
        returns = &[("name", "the packages given"), ("state", "the state asked"), ("update_cache", "whether the repositories were refreshed"), ("cmd", "the commands run"), ("rc", "zypper's exit status"), ("stdout", "zypper's output"), ("stderr", "zypper's errors")],
        examples = "- zypper:\n    name: [nginx, git]\n    state: latest\n    update_cache: true"
    )]
    pub struct ZypperArgs {
        /// Packages to install, upgrade or remove.
        #[arg(required, aliases = &["pkg"])]
        name: Vec<String>,
        /// `present`/`installed`, `latest`, or `absent`/`removed`.
        #[arg(default = "present", choices = &["absent", "installed", "latest", "present", "removed"])]
        state: String,
        /// Refresh the repositories first (`zypper refresh`).
        #[arg(aliases = &["refresh"], default = "no")]
        update_cache: bool,
    }
}

fn want(args: &Args) -> Result<(ZypperArgs, Want), ModuleError> {
    let a = ZypperArgs::parse(args)?;
    let w = Want {
        names: a
            .name
            .iter()
            .flat_map(|n| n.split(','))
            .map(|n| n.trim().to_string())
            .collect(),
        state: ospkg::norm_state(&a.state)?,
        refresh: a.update_cache,
    };
    Ok((a, w))
}

pub(super) fn refresh_cmd() -> Cmd {
    Cmd::raw("zypper --quiet --non-interactive refresh")
}

pub(super) fn commands(p: &ospkg::Plan) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    if p.refresh {
        cmds.push(refresh_cmd());
    }
    let verb = |v: &'static str, names: &[String]| {
        Cmd::raw("zypper --quiet --non-interactive")
            .op(v)
            .args(names.iter().cloned())
    };
    if !p.install.is_empty() {
        cmds.push(verb(
            "install --type package --auto-agree-with-licenses",
            &p.install,
        ));
    }
    if !p.upgrade.is_empty() {
        cmds.push(verb(
            "update --type package --auto-agree-with-licenses",
            &p.upgrade,
        ));
    }
    if !p.remove.is_empty() {
        cmds.push(verb("remove --type package", &p.remove));
    }
    cmds
}

async fn apply(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = ospkg::plan_of(drift, "zypper")?;
    let (a, _) = want(args)?;
    let (shown, so, se, failed_out) = ospkg::run_all(tr, ctx, commands(p)).await?;
    let mut r = result([
        ("name", Value::from(a.name.clone())),
        ("state", Value::from(a.state.clone())),
        ("update_cache", Value::from(a.update_cache)),
        ("cmd", Value::from(shown.join(" && "))),
        ("stdout", Value::from(so)),
        ("stderr", Value::from(se.clone())),
    ]);
    r.insert(
        "rc".into(),
        Value::from(failed_out.as_ref().map_or(0, |o| o.status)),
    );
    if failed_out.is_some() {
        return Err(failed(
            format!("Zypper run command failed: {}", se.trim()),
            r,
        ));
    }
    r.insert("changed".into(), Value::from(true));
    Ok(r)
}

impl Module for Zypper {
    fn name(&self) -> &'static str {
        "zypper"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let (_, w) = want(args)?;
            ospkg::check(tr, ctx, Os::Zypper, &w, Some(refresh_cmd())).await
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
    use crate::modules::system::testutil::*;
    use serde_json::json;

    /// Fake rpm and zypper: `$FAKE/pkgs/NAME` holds the installed version, `$FAKE/repo/NAME`
    /// the repository's; zypper calls go to `$FAKE/log`.
    const FAKE_RPM: &str = r#"
eval p=\${$#}
[ -e "$FAKE/pkgs/$p" ] || { echo "package $p is not installed"; exit 1; }
cat "$FAKE/pkgs/$p""#;
    const FAKE_ZYPPER: &str = r#"
echo "zypper $*" >> "$FAKE/log"
case $3 in
list-updates) echo 'S | Repository | Name | Current Version | Available Version | Arch'
  for f in "$FAKE"/repo/*; do n=${f##*/}; [ -e "$FAKE/pkgs/$n" ] && [ "$(cat "$f")" != "$(cat "$FAKE/pkgs/$n")" ] && echo "v | repo | $n | x | y | noarch"; done ;;
install|update) for p in "$@"; do case $p in -*|install|update|package) ;; *) cp "$FAKE/repo/$p" "$FAKE/pkgs/$p" ;; esac; done ;;
remove) for p in "$@"; do case $p in -*|remove|package) ;; *) rm "$FAKE/pkgs/$p" ;; esac; done ;;
esac"#;

    #[tokio::test]
    async fn fake_zypper_present_latest_absent() {
        let (dir, bin, st) = fake_dirs();
        fake_tool(&bin, "rpm", FAKE_RPM);
        fake_tool(&bin, "zypper", FAKE_ZYPPER);
        for d in ["pkgs", "repo"] {
            std::fs::create_dir_all(st.join(d)).unwrap();
        }
        std::fs::write(st.join("repo/nginx"), "1.26-1").unwrap();
        std::fs::write(st.join("repo/git"), "2.45-1").unwrap();
        std::fs::write(st.join("pkgs/git"), "2.44-1").unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &st));
        let mut tr = transport();

        let a = args(json!({"name": "nginx,git", "update_cache": true}));
        let Ran::Applied(changes, Ok(r)) = check_apply(&Zypper, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(r["rc"], json!(0));
        assert!(matches!(
            check_apply(&Zypper, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let a = args(json!({"name": ["git", "nginx"], "state": "latest"}));
        let Ran::Applied(changes, Ok(_)) = check_apply(&Zypper, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(matches!(
            check_apply(&Zypper, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let a = args(json!({"name": ["nginx"], "state": "absent"}));
        assert!(matches!(
            check_apply(&Zypper, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(matches!(
            check_apply(&Zypper, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let log = std::fs::read_to_string(st.join("log")).unwrap();
        for line in [
            "zypper --quiet --non-interactive refresh\n",
            "zypper --quiet --non-interactive install --type package --auto-agree-with-licenses nginx\n",
            "zypper --quiet --non-interactive update --type package --auto-agree-with-licenses git\n",
            "zypper --quiet --non-interactive remove --type package nginx\n",
        ] {
            assert!(log.contains(line), "{line}{log}");
        }
    }
}
