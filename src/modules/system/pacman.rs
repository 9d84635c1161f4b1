//! `pacman` (community.general): packages on Arch Linux and its derivatives, the common
//! subset (names, present/absent/latest, `update_cache`).
//!
//! Owns its arguments, its commands (`pacman --noconfirm --noprogressbar --needed --sync`,
//! `--remove`, `--sync --refresh`) and its result keys; reading and comparing is
//! [`super::ospkg`]. It must not format shell lines.

use serde_json::Value;

use super::common::{failed, result};
use super::ospkg::{self, Os, Want};
use crate::modules::runtime::{
    Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// `pacman`.
pub struct Pacman;

crate::module_args! {
    /// Installs, upgrades or removes packages with pacman (Arch Linux). rdeploy carries the
    /// common subset: `name`, `state` and `update_cache` (`pacman -Sy`, run before an install
    /// that is needed, or alone when no name is given).
    #[module(
        name = "pacman",
        backup = "Not reversible: rdeploy's package backup records dpkg/rpm versions and restores them with apt or dnf only.",
        returns = &[("packages", "the packages changed"), ("cache_updated", "whether the package lists were refreshed"), ("stdout", "pacman's output"), ("stderr", "pacman's errors")],
        examples = "- pacman:\n    name: [nginx, git]\n    state: present\n    update_cache: true"
    )]
    pub struct PacmanArgs {
        /// Packages to install, upgrade or remove.
        #[arg(aliases = &["package", "pkg"])]
        name: Vec<String>,
        /// `present`/`installed`, `latest`, or `absent`/`removed`.
        #[arg(default = "present", choices = &["absent", "installed", "latest", "present", "removed"])]
        state: String,
        /// Refresh the package lists (`pacman --sync --refresh`).
        #[arg(aliases = &["update-cache"], default = "no")]
        update_cache: bool,
    }
}

fn want(args: &Args) -> Result<Want, ModuleError> {
    let a = PacmanArgs::parse(args)?;
    if a.name.is_empty() && !a.update_cache {
        return Err(ModuleError::Args(
            "one of the following is required: name, update_cache".into(),
        ));
    }
    Ok(Want {
        names: a
            .name
            .iter()
            .flat_map(|n| n.split(','))
            .map(|n| n.trim().to_string())
            .collect(),
        state: ospkg::norm_state(&a.state)?,
        refresh: a.update_cache,
    })
}

pub(super) fn refresh_cmd() -> Cmd {
    Cmd::raw("pacman --sync --refresh").env("LC_ALL", "C")
}

pub(super) fn commands(p: &ospkg::Plan) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    if p.refresh {
        cmds.push(refresh_cmd());
    }
    let install: Vec<String> = p.install.iter().chain(&p.upgrade).cloned().collect();
    if !install.is_empty() {
        cmds.push(
            Cmd::raw("pacman --noconfirm --noprogressbar --needed --sync")
                .args(install)
                .env("LC_ALL", "C"),
        );
    }
    if !p.remove.is_empty() {
        cmds.push(
            Cmd::raw("pacman --noconfirm --noprogressbar --remove")
                .args(p.remove.iter().cloned())
                .env("LC_ALL", "C"),
        );
    }
    cmds
}

async fn apply(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = ospkg::plan_of(drift, "pacman")?;
    let (_, so, se, failed_out) = ospkg::run_all(tr, ctx, commands(p)).await?;
    let packages: Vec<String> = p
        .install
        .iter()
        .chain(&p.upgrade)
        .chain(&p.remove)
        .cloned()
        .collect();
    let mut r = result([
        ("packages", Value::from(packages)),
        ("cache_updated", Value::from(p.refresh)),
        ("stdout", Value::from(so)),
        ("stderr", Value::from(se.clone())),
    ]);
    if let Some(o) = failed_out {
        r.insert("rc".into(), Value::from(o.status));
        return Err(failed(format!("pacman failed: {}", se.trim()), r));
    }
    r.insert("changed".into(), Value::from(true));
    Ok(r)
}

impl Module for Pacman {
    fn name(&self) -> &'static str {
        "pacman"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let w = want(args)?;
            ospkg::check(tr, ctx, Os::Pacman, &w, Some(refresh_cmd())).await
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

    /// A fake pacman: `$FAKE/pkgs/NAME` holds the installed version, `$FAKE/repo/NAME` the
    /// repository's; calls go to `$FAKE/log`.
    const FAKE_PACMAN: &str = r#"
echo "pacman $*" >> "$FAKE/log"
case $1 in
-Q) [ -e "$FAKE/pkgs/$2" ] && echo "$2 $(cat "$FAKE/pkgs/$2")" ;;
-Qu) [ -e "$FAKE/repo/$2" ] && [ "$(cat "$FAKE/repo/$2")" != "$(cat "$FAKE/pkgs/$2")" ] ;;
--noconfirm) v=; for p in "$@"; do case $p in --sync|--remove) v=$p ;; -*) ;; *)
  if [ "$v" = --sync ]; then cp "$FAKE/repo/$p" "$FAKE/pkgs/$p"; else rm "$FAKE/pkgs/$p"; fi ;; esac; done ;;
esac"#;

    #[tokio::test]
    async fn fake_pacman_present_latest_absent_and_refresh() {
        let (dir, bin, st) = fake_dirs();
        fake_tool(&bin, "pacman", FAKE_PACMAN);
        for d in ["pkgs", "repo"] {
            std::fs::create_dir_all(st.join(d)).unwrap();
        }
        std::fs::write(st.join("repo/nginx"), "1.26-1").unwrap();
        std::fs::write(st.join("repo/git"), "2.45-1").unwrap();
        std::fs::write(st.join("pkgs/git"), "2.44-1").unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &st));
        let mut tr = transport();

        let a = args(json!({"name": ["nginx", "git"], "update_cache": true}));
        let Ran::Applied(changes, Ok(r)) = check_apply(&Pacman, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(changes.len(), 2, "{changes:?}"); // refresh + nginx
        assert_eq!(r["packages"], json!(["nginx"]));
        assert_eq!(r["cache_updated"], json!(true));
        assert!(matches!(
            check_apply(&Pacman, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let a = args(json!({"name": "git", "state": "latest"}));
        assert!(matches!(
            check_apply(&Pacman, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert_eq!(
            std::fs::read_to_string(st.join("pkgs/git")).unwrap(),
            "2.45-1"
        );
        assert!(matches!(
            check_apply(&Pacman, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let a = args(json!({"name": ["nginx"], "state": "removed"}));
        assert!(matches!(
            check_apply(&Pacman, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(!st.join("pkgs/nginx").exists());
        assert!(matches!(
            check_apply(&Pacman, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let log = std::fs::read_to_string(st.join("log")).unwrap();
        assert!(log.contains("pacman --sync --refresh\n"), "{log}");
        assert!(
            log.contains("pacman --noconfirm --noprogressbar --needed --sync nginx\n"),
            "{log}"
        );
        assert!(
            log.contains("pacman --noconfirm --noprogressbar --remove nginx\n"),
            "{log}"
        );
        // update_cache alone is a change; nothing at all is refused.
        let a = args(json!({"update_cache": true}));
        assert!(matches!(
            check_apply(&Pacman, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(matches!(
            check_apply(&Pacman, &mut tr, &args(json!({})), &c).await,
            Ran::CheckFailed(..)
        ));
        assert!(Pacman.not_reversible(&|_| true).is_some());
    }
}
