//! `gem` (community.general): Ruby gems installed, absent or at the latest version.
//!
//! Owns reading the installed versions (`gem list --norc ^NAME$`, and for `state: latest`
//! `gem list --norc --remote ^NAME$` in the same round trip), and the one `gem install` or
//! `gem uninstall` with community.general's flags in its order (RubyGems 2.5.2 or later:
//! `--norc`, `--ignore-dependencies`, `--no-document`). `install_dir` is `GEM_HOME` for every
//! call, as there. Every value is a quoted argument. It must not format shell lines.

use serde_json::Value;

use super::common::{command_result, failed, result};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// `gem`.
pub struct Gem;

crate::module_args! {
    /// Installs, upgrades or removes a Ruby gem with RubyGems (2.5.2 or later). A user
    /// install (the default) passes `--user-install`, where recent community.general
    /// releases ask `gem environment` for the user directory and pass it as `--install-dir`:
    /// the gem lands in the same place.
    #[module(
        name = "gem",
        backup = "With `install_dir`, that directory is copied whole before the change and rollback puts it back (or removes it when the run created it). Otherwise not reversible: rdeploy does not copy a Ruby installation's or a user's gem directory.",
        returns = &[("name", "the gem"), ("state", "the state asked"), ("version", "the version asked, when given (the latest's for state=latest)")],
        examples = "- gem:\n    name: bundler\n    version: 2.5.6\n    user_install: false"
    )]
    pub struct GemArgs {
        /// The gem.
        #[arg(required)]
        name: String,
        /// `present`, `absent` or `latest`.
        #[arg(default = "present", choices = &["present", "absent", "latest"])]
        state: String,
        /// A local `.gem` file to install from.
        #[arg(kind = Path)]
        gem_source: Option<String>,
        /// Install the gem's dependencies too (else `--ignore-dependencies`).
        #[arg(default = "yes")]
        include_dependencies: bool,
        /// The repository to install from (`--source`).
        #[arg(aliases = &["source"])]
        repository: Option<String>,
        /// Install into the user's gem directory (`--user-install`), else for all users.
        #[arg(default = "yes")]
        user_install: bool,
        /// The gem to run, words separated by spaces.
        #[arg(kind = Path)]
        executable: Option<String>,
        /// Install into this directory (`GEM_HOME`, `--install-dir`); needs `user_install: false`.
        #[arg(kind = Path)]
        install_dir: Option<String>,
        /// Where executables go (`--bindir`).
        #[arg(kind = Path)]
        bindir: Option<String>,
        /// Do not load `.gemrc` (`--norc`).
        #[arg(default = "yes")]
        norc: bool,
        /// Rewrite scripts' shebang to `/usr/bin/env` (`--env-shebang`).
        #[arg(default = "no")]
        env_shebang: bool,
        /// The version to install or remove.
        version: Option<String>,
        /// Allow pre-releases (`--pre`).
        #[arg(default = "no")]
        pre_release: bool,
        /// Install documentation (else `--no-document`).
        #[arg(default = "no")]
        include_doc: bool,
        /// Build flags for native extensions (after `--`).
        build_flags: Option<String>,
        /// `--force`.
        #[arg(default = "no")]
        force: bool,
    }
}

fn want(a: GemArgs) -> Result<GemArgs, ModuleError> {
    if a.gem_source.is_some() && a.repository.is_some() {
        return Err(ModuleError::Args(
            "parameters are mutually exclusive: gem_source|repository".into(),
        ));
    }
    if a.gem_source.is_some() && a.version.is_some() {
        return Err(ModuleError::Args(
            "parameters are mutually exclusive: gem_source|version".into(),
        ));
    }
    if a.version.is_some() && a.state == "latest" {
        return Err(ModuleError::Args(
            "Cannot specify version when state=latest".into(),
        ));
    }
    if a.gem_source.is_some() && a.state == "latest" {
        return Err(ModuleError::Args(
            "Cannot maintain state=latest when installing from local source".into(),
        ));
    }
    if a.user_install && a.install_dir.is_some() {
        return Err(ModuleError::Args(
            "install_dir requires user_install=false".into(),
        ));
    }
    for v in [&Some(a.name.clone()), &a.version, &a.repository]
        .into_iter()
        .flatten()
    {
        if v.is_empty() || v.starts_with('-') || v.contains(['\n', '\0']) {
            return Err(ModuleError::Args(format!("invalid gem argument '{v}'")));
        }
    }
    Ok(a)
}

fn exe(a: &GemArgs) -> Vec<String> {
    match &a.executable {
        Some(e) => e.split_whitespace().map(String::from).collect(),
        None => vec!["gem".into()],
    }
}

/// `gem list --norc [--remote --source R] ^NAME$`.
fn list_argv(a: &GemArgs, remote: bool) -> Vec<String> {
    let mut c = exe(a);
    c.push("list".into());
    if a.norc {
        c.push("--norc".into());
    }
    if remote {
        c.push("--remote".into());
        if let Some(r) = &a.repository {
            c.extend(["--source".to_string(), r.clone()]);
        }
    }
    c.push(format!("^{}$", a.name));
    c
}

/// `gem install` in community.general's order, at `version`.
fn install_argv(a: &GemArgs, version: Option<&str>) -> Vec<String> {
    let mut c = exe(a);
    c.push("install".into());
    if a.norc {
        c.push("--norc".into());
    }
    if let Some(v) = version {
        c.extend(["--version".to_string(), v.to_string()]);
    }
    if let Some(r) = &a.repository {
        c.extend(["--source".to_string(), r.clone()]);
    }
    if !a.include_dependencies {
        c.push("--ignore-dependencies".into());
    }
    c.push(if a.user_install {
        "--user-install".into()
    } else {
        "--no-user-install".into()
    });
    if let Some(d) = &a.install_dir {
        c.extend(["--install-dir".to_string(), d.clone()]);
    }
    if let Some(b) = &a.bindir {
        c.extend(["--bindir".to_string(), b.clone()]);
    }
    if a.pre_release {
        c.push("--pre".into());
    }
    if !a.include_doc {
        c.push("--no-document".into());
    }
    if a.env_shebang {
        c.push("--env-shebang".into());
    }
    c.push(a.gem_source.clone().unwrap_or_else(|| a.name.clone()));
    if let Some(f) = &a.build_flags {
        c.extend(["--".to_string(), f.clone()]);
    }
    if a.force {
        c.push("--force".into());
    }
    c
}

/// `gem uninstall` in community.general's order (`--all` without a version).
fn uninstall_argv(a: &GemArgs) -> Vec<String> {
    let mut c = exe(a);
    c.push("uninstall".into());
    if a.norc {
        c.push("--norc".into());
    }
    if let Some(d) = &a.install_dir {
        c.extend(["--install-dir".to_string(), d.clone()]);
    }
    if let Some(b) = &a.bindir {
        c.extend(["--bindir".to_string(), b.clone()]);
    }
    match &a.version {
        Some(v) => c.extend(["--version".to_string(), v.clone()]),
        None => c.push("--all".into()),
    }
    c.push("--executable".into());
    if a.force {
        c.push("--force".into());
    }
    c.push(a.name.clone());
    c
}

/// The versions of `gem list` lines `name (1.2.0, 1.1.0)` / `name (default: 1.0)`.
fn parse_versions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((head, rest)) = line.split_once(" (") else {
            continue;
        };
        if head.trim().is_empty() || head.contains(char::is_whitespace) {
            continue;
        }
        let Some(inner) = rest.trim_end().strip_suffix(')') else {
            continue;
        };
        let inner = inner.strip_prefix("default: ").unwrap_or(inner);
        for v in inner.split(", ") {
            if let Some(first) = v.split_whitespace().next() {
                out.push(first.to_string());
            }
        }
    }
    out
}

/// A command from an argv with `GEM_HOME` for `install_dir`.
fn gem_cmd(a: &GemArgs, argv: Vec<String>) -> Cmd {
    let c = Cmd::argv(argv);
    match &a.install_dir {
        Some(d) => c.env("GEM_HOME", d.clone()),
        None => c,
    }
}

/// What `apply` runs.
struct Plan {
    argv: Vec<String>,
    version: Option<String>,
}

fn result_keys(a: &GemArgs, version: Option<&str>) -> Args {
    let mut r = result([
        ("name", Value::from(a.name.clone())),
        ("state", Value::from(a.state.clone())),
    ]);
    if let Some(v) = version {
        r.insert("version".into(), Value::from(v));
    }
    r
}

async fn check_gem(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = want(GemArgs::parse(args)?)?;
    let latest = a.state == "latest";
    let mut cmds = vec![gem_cmd(&a, list_argv(&a, false))];
    if latest {
        cmds.push(gem_cmd(&a, list_argv(&a, true)));
    }
    let batch = Cmd::batch(&cmds).map_err(|e| ModuleError::Args(e.to_string()))?;
    let outs = ctx
        .query_batch(tr, &batch)
        .await?
        .map_err(|e| failed(format!("cannot read the installed gems: {e}"), Args::new()))?;
    for (o, c) in outs.iter().zip(&cmds) {
        if o.status != 0 {
            let mut r = command_result(o, true);
            r.insert("cmd".into(), Value::from(c.display()));
            return Err(failed(
                format!("`{}` failed: {}", c.display(), o.stderr_lossy().trim()),
                r,
            ));
        }
    }
    let installed = outs
        .first()
        .map(|o| parse_versions(&o.stdout_lossy()))
        .unwrap_or_default();
    let mut version = a.version.clone();
    if latest
        && let Some(v) = outs
            .get(1)
            .and_then(|o| parse_versions(&o.stdout_lossy()).into_iter().next())
    {
        version = Some(v);
    }
    let exists = match &version {
        Some(v) => installed.contains(v),
        None => !installed.is_empty(),
    };
    let before = if installed.is_empty() {
        "absent".to_string()
    } else {
        installed.join(", ")
    };
    let (argv, after) = match (a.state.as_str(), exists) {
        ("absent", true) => (uninstall_argv(&a), "absent".to_string()),
        ("present" | "latest", false) => (
            install_argv(&a, version.as_deref()),
            version.clone().unwrap_or_else(|| "present".into()),
        ),
        _ => {
            return Ok(Verdict::InSync {
                result: result_keys(&a, version.as_deref()),
            });
        }
    };
    Ok(Verdict::Drift(Drift::new(
        vec![Change::Attr {
            subject: a.name.clone(),
            what: "version".into(),
            before,
            after,
        }],
        Plan { argv, version },
    )))
}

async fn apply_gem(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("gem: apply without a plan from check".into()))?;
    let a = want(GemArgs::parse(args)?)?;
    let out = ctx.run(tr, gem_cmd(&a, p.argv.clone())).await?;
    let mut r = result_keys(&a, p.version.as_deref());
    r.extend(command_result(&out, true));
    r.insert(
        "cmd".into(),
        Value::from(Cmd::argv(p.argv.clone()).display()),
    );
    if out.status != 0 {
        return Err(failed(
            format!(
                "gem failed (rc {}): {}",
                out.status,
                out.stderr_lossy().trim()
            ),
            r,
        ));
    }
    r.insert("changed".into(), Value::from(true));
    Ok(r)
}

impl Module for Gem {
    fn name(&self) -> &'static str {
        "gem"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_gem(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_gem(tr, args, ctx, drift))
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        match GemArgs::parse(args) {
            Ok(GemArgs {
                install_dir: Some(d),
                ..
            }) => vec![Resource::Tree(d)],
            _ => Vec::new(),
        }
    }

    fn not_reversible(&self, given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        (!given("install_dir")).then_some(
            "gem without 'install_dir' changes a Ruby installation's or the user's gem directory, which rdeploy does not back up (give 'install_dir' to have it backed up and restored)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;

    fn g(v: Value) -> Result<GemArgs, ModuleError> {
        want(GemArgs::parse(&args(v))?)
    }

    #[test]
    fn arguments_and_commands_as_community_general() {
        let e = |v: Value| g(v).unwrap_err().to_string();
        assert_eq!(
            e(json!({"name": "rake", "version": "1", "state": "latest"})),
            "Cannot specify version when state=latest"
        );
        assert_eq!(
            e(json!({"name": "rake", "gem_source": "/r.gem", "state": "latest"})),
            "Cannot maintain state=latest when installing from local source"
        );
        assert_eq!(
            e(json!({"name": "rake", "install_dir": "/g"})),
            "install_dir requires user_install=false"
        );
        assert!(
            e(json!({"name": "rake", "gem_source": "/r.gem", "repository": "x"}))
                .contains("mutually")
        );
        assert_eq!(e(json!({})), "missing required argument 'name'");
        let a = g(json!({
            "name": "nokogiri", "version": "1.16.0", "repository": "https://gems.example",
            "include_dependencies": false, "user_install": false, "install_dir": "/srv/gems",
            "bindir": "/srv/bin", "pre_release": true, "include_doc": true, "env_shebang": true,
            "build_flags": "--use-system-libraries", "force": true, "executable": "/opt/ruby/bin/gem"
        }))
        .unwrap();
        assert_eq!(
            install_argv(&a, a.version.as_deref()).join(" "),
            "/opt/ruby/bin/gem install --norc --version 1.16.0 --source https://gems.example --ignore-dependencies --no-user-install --install-dir /srv/gems --bindir /srv/bin --pre --env-shebang nokogiri -- --use-system-libraries --force"
        );
        assert_eq!(
            uninstall_argv(&a).join(" "),
            "/opt/ruby/bin/gem uninstall --norc --install-dir /srv/gems --bindir /srv/bin --version 1.16.0 --executable --force nokogiri"
        );
        let d = g(json!({"name": "rake", "norc": false})).unwrap();
        assert_eq!(
            install_argv(&d, None).join(" "),
            "gem install --user-install --no-document rake"
        );
        assert_eq!(
            uninstall_argv(&d).join(" "),
            "gem uninstall --all --executable rake"
        );
        assert_eq!(
            list_argv(&a, true).join(" "),
            "/opt/ruby/bin/gem list --norc --remote --source https://gems.example ^nokogiri$"
        );
        assert_eq!(
            Gem.resources(&args(
                json!({"name": "x", "user_install": false, "install_dir": "/srv/gems"})
            )),
            vec![Resource::Tree("/srv/gems".into())]
        );
        assert!(Gem.not_reversible(&|n| n == "name").is_some());
    }

    #[test]
    fn gem_list_lines() {
        assert_eq!(
            parse_versions(
                "*** LOCAL GEMS ***\n\nrake (13.1.0, 13.0.6)\njson (default: 2.7.1)\nx86 (1.0 x86_64-linux)\n"
            ),
            ["13.1.0", "13.0.6", "2.7.1", "1.0"]
        );
        assert!(parse_versions("").is_empty());
    }

    /// A fake gem: `$GEM_HOME/NAME` (or `$FAKE/gems/NAME`) holds the installed versions,
    /// `$FAKE/remote/NAME` the newest; calls go to `$FAKE/log`.
    const FAKE_GEM: &str = r#"
echo "gem $* GEM_HOME=$GEM_HOME" >> "$FAKE/log"
d=${GEM_HOME:-$FAKE/gems}; mkdir -p "$d"
eval n=\${$#}
case $1 in
list) n=${n#^}; n=${n%$}
  case " $* " in *" --remote "*) [ -e "$FAKE/remote/$n" ] && echo "$n ($(cat "$FAKE/remote/$n"))" ;;
  *) [ -e "$d/$n" ] && echo "$n ($(cat "$d/$n"))" ;; esac; exit 0 ;;
install) v=1.0.0; p=; for a in "$@"; do [ "$p" = --version ] && v=$a; p=$a; done
  n=; for a in "$@"; do case $a in install|--*) ;; *) n=$a ;; esac; done
  echo "$v" > "$d/$n" ;;
uninstall) rm -f "$d/$n" ;;
esac"#;

    #[tokio::test]
    async fn fake_gem_present_latest_absent() {
        let (dir, bin, st) = fake_dirs();
        fake_tool(&bin, "gem", FAKE_GEM);
        std::fs::create_dir_all(st.join("remote")).unwrap();
        std::fs::write(st.join("remote/rake"), "13.2.0").unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &st));
        let mut tr = transport();

        let a = args(json!({"name": "rake", "version": "13.0.6"}));
        let Ran::Applied(changes, Ok(r)) = check_apply(&Gem, &mut tr, &a, &c).await else {
            panic!()
        };
        assert!(
            matches!(&changes[0], Change::Attr { before, after, .. } if before == "absent" && after == "13.0.6"),
            "{changes:?}"
        );
        assert_eq!(r["version"], json!("13.0.6"));
        assert!(matches!(
            check_apply(&Gem, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // Any version is present.
        let a = args(json!({"name": "rake"}));
        assert!(matches!(
            check_apply(&Gem, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // latest installs the remote's newest, then is in sync.
        let a = args(json!({"name": "rake", "state": "latest"}));
        assert!(matches!(
            check_apply(&Gem, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert_eq!(
            std::fs::read_to_string(st.join("gems/rake"))
                .unwrap()
                .trim(),
            "13.2.0"
        );
        let Ran::InSync(r) = check_apply(&Gem, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["version"], json!("13.2.0"));
        // absent
        let a = args(json!({"name": "rake", "state": "absent"}));
        assert!(matches!(
            check_apply(&Gem, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(matches!(
            check_apply(&Gem, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // install_dir is GEM_HOME for every call.
        let home = dir.path().join("gems").display().to_string();
        let a = args(json!({"name": "rake", "user_install": false, "install_dir": home}));
        assert!(matches!(
            check_apply(&Gem, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(dir.path().join("gems/rake").is_file());
        let log = std::fs::read_to_string(st.join("log")).unwrap();
        assert!(
            log.contains(&format!("gem list --norc ^rake$ GEM_HOME={home}")),
            "{log}"
        );
    }
}
