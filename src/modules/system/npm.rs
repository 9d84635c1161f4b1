//! `npm` (community.general): Node.js packages in a project directory or npm's global prefix.
//!
//! Owns reading what is installed (`npm ls --json --long`, plus `npm outdated --json` for
//! `state: latest`, one round trip with the directory test), deciding between `npm install`,
//! `npm update`, `npm uninstall` and `npm ci` as community.general's module does, and building
//! those commands with its flags in its order. Every value is a quoted argument. It must not
//! format shell lines.

use serde_json::Value;

use super::common::{failed, result};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Unpredicted,
    Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// `npm`.
pub struct Npm;

crate::module_args! {
    /// Installs, updates or removes Node.js packages with npm, in `path` (a project
    /// directory, created when missing) or globally. With no `name`, installs what
    /// `path/package.json` lists. A package counts as present when `npm ls` lists it
    /// (at exactly `version` when given); unlike community.general's module, a project whose
    /// `package.json` lists nothing is in sync rather than changed on every run. `ci`, and a
    /// `version` that is not an exact version (`^1.2`, `file:...`), run on every run as there,
    /// reporting a change.
    #[module(
        name = "npm",
        backup = "For a project, `path`, `path/node_modules` (whole), `path/package.json` and `path/package-lock.json` are backed up before the change and rollback puts them back (or removes what the run created). A `global` install is not reversible: rdeploy does not copy npm's global prefix.",
        returns = &[("changed", "whether npm changed something"), ("cmd", "the npm command run"), ("stdout", "npm's output"), ("stderr", "npm's errors")],
        examples = "- npm:\n    path: /srv/app\n    production: true\n- npm:\n    name: typescript\n    version: 5.4.5\n    global: true"
    )]
    pub struct NpmArgs {
        /// The package to install or remove.
        name: Option<String>,
        /// The project directory (required unless `global`).
        #[arg(kind = Path)]
        path: Option<String>,
        /// The version to install (`name@version`).
        version: Option<String>,
        /// Install into npm's global prefix (`--global`).
        #[arg(default = "no")]
        global: bool,
        /// The npm to run, words separated by spaces (`/opt/nvm/bin/npm`).
        #[arg(kind = Path)]
        executable: Option<String>,
        /// `--ignore-scripts`.
        #[arg(default = "no")]
        ignore_scripts: bool,
        /// `--unsafe-perm`.
        #[arg(default = "no")]
        unsafe_perm: bool,
        /// Install from the lock file (`npm ci`); runs on every run.
        #[arg(default = "no")]
        ci: bool,
        /// `--production`: no devDependencies.
        #[arg(default = "no")]
        production: bool,
        /// The registry to install from (`--registry`).
        registry: Option<String>,
        /// `present`, `absent` or `latest`.
        #[arg(default = "present", choices = &["present", "absent", "latest"])]
        state: String,
        /// `--no-optional`.
        #[arg(default = "no")]
        no_optional: bool,
        /// `--no-bin-links`.
        #[arg(default = "no")]
        no_bin_links: bool,
    }
}

/// Prints `dir yes` when `$1` is a directory (or empty: global), `dir no` when absent,
/// `dir file` when something else is there.
const DIR_STATE: &str = r#"; if [ -z "$1" ] || [ -d "$1" ]; then echo 'dir yes'; elif [ -e "$1" ]; then echo 'dir file'; else echo 'dir no'; fi"#;

/// The arguments after they were checked together.
#[derive(Debug)]
struct Want {
    a: NpmArgs,
    /// `name@version` (not for `absent`), or the name.
    name_version: Option<String>,
    exe: Vec<String>,
}

fn want(a: NpmArgs) -> Result<Want, ModuleError> {
    if a.path.is_none() && !a.global {
        return Err(ModuleError::Args(
            "path must be specified when not using global".into(),
        ));
    }
    if a.state == "absent" && a.name.is_none() {
        return Err(ModuleError::Args(
            "uninstalling a package is only available for named packages".into(),
        ));
    }
    for v in [&a.name, &a.version, &a.registry].into_iter().flatten() {
        if v.is_empty() || v.starts_with('-') || v.contains(['\n', '\0']) {
            return Err(ModuleError::Args(format!("invalid npm argument '{v}'")));
        }
    }
    let name_version = match (&a.name, &a.version) {
        (Some(n), Some(v)) if a.state != "absent" => Some(format!("{n}@{v}")),
        (n, _) => n.clone(),
    };
    let exe: Vec<String> = match &a.executable {
        Some(e) => e
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect(),
        None => vec!["npm".into()],
    };
    if exe.is_empty() {
        return Err(ModuleError::Args("executable is empty".into()));
    }
    Ok(Want {
        a,
        name_version,
        exe,
    })
}

/// `VERB` with the module's flags in community.general's order; `with_name` adds the package.
fn npm_argv(w: &Want, verb: &[&str], with_name: bool) -> Vec<String> {
    let a = &w.a;
    let mut c: Vec<String> = w.exe.clone();
    c.extend(verb.iter().map(|s| s.to_string()));
    if a.global {
        c.push("--global".into());
    }
    if a.production
        && verb
            .iter()
            .any(|v| matches!(*v, "install" | "update" | "ci"))
    {
        c.push("--production".into());
    }
    if a.ignore_scripts {
        c.push("--ignore-scripts".into());
    }
    if a.unsafe_perm {
        c.push("--unsafe-perm".into());
    }
    if with_name && let Some(n) = &w.name_version {
        c.push(n.clone());
    }
    if let Some(r) = &a.registry {
        c.push("--registry".into());
        c.push(r.clone());
    }
    if a.no_optional {
        c.push("--no-optional".into());
    }
    if a.no_bin_links {
        c.push("--no-bin-links".into());
    }
    c
}

/// A command from an argv, run in `path` when given.
fn in_path(w: &Want, argv: Vec<String>) -> Cmd {
    let c = Cmd::argv(argv);
    match &w.a.path {
        Some(p) => c.chdir(p.clone()),
        None => c,
    }
}

/// An exact version (`1.2.3`, `1.2.3-beta.1`): what `npm ls` can show.
fn exact_version(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Whether the module can tell from `npm ls` that the task holds (verified after apply).
fn converging(w: &Want) -> bool {
    !w.a.ci
        && w.a.version.as_deref().is_none_or(exact_version)
        && w.a.name.as_deref().is_none_or(registry_name)
}

/// A registry package name (`left-pad`, `@types/node`), not a path, URL or git spec.
fn registry_name(n: &str) -> bool {
    let bare = n.strip_prefix('@').unwrap_or(n);
    !n.starts_with(['.', '/', '~'])
        && !n.contains(':')
        && !n.ends_with(".tgz")
        && bare.split('/').count() <= 2
        && (n.starts_with('@') || !n.contains('/'))
}

/// (installed `name` and `name@version` entries, missing dependency names), as
/// community.general's `list()` reads `npm ls --json --long`.
fn parse_ls(text: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let data: Value = serde_json::from_str(t)
        .map_err(|e| format!("Failed to parse NPM output with error {e}"))?;
    let mut installed = Vec::new();
    let mut missing = Vec::new();
    if let Some(deps) = data.get("dependencies").and_then(Value::as_object) {
        for (dep, props) in deps {
            let flag = |k: &str| props.get(k).and_then(Value::as_bool).unwrap_or(false);
            if flag("missing") || flag("invalid") {
                missing.push(dep.clone());
            } else {
                installed.push(dep.clone());
                if let Some(v) = props.get("version").and_then(Value::as_str) {
                    installed.push(format!("{dep}@{v}"));
                }
            }
        }
    }
    Ok((installed, missing))
}

/// What `apply` does, in order.
struct Plan {
    steps: Vec<Vec<String>>,
    make_dir: bool,
}

async fn check_npm(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let w = want(NpmArgs::parse(args)?)?;
    let path = w.a.path.clone().unwrap_or_default();
    let dir_path = if w.a.global {
        String::new()
    } else {
        path.clone()
    };
    let mut cmds = vec![
        Cmd::raw("set --").arg(dir_path).op(DIR_STATE),
        in_path(&w, npm_argv(&w, &["ls", "--json", "--long"], false)),
    ];
    let latest = w.a.state == "latest";
    if latest {
        let mut o = npm_argv(&w, &["outdated", "--json"], false);
        if let Some(n) = &w.a.name {
            o.push(n.clone());
        }
        cmds.push(in_path(&w, o));
    }
    // `npm ls` in a directory that is not there would fail: it runs only when it is.
    let batch = Cmd::batch(&cmds).map_err(|e| ModuleError::Args(e.to_string()))?;
    let outs = ctx
        .query_batch(tr, &batch)
        .await?
        .map_err(|e| failed(format!("cannot read the npm packages: {e}"), Args::new()))?;
    let dir = outs.first().map(|o| o.stdout_lossy().trim().to_string());
    let make_dir = match dir.as_deref() {
        Some("dir yes") => false,
        Some("dir no") => true,
        _ => {
            return Err(failed(
                format!("path {path} is not a directory"),
                Args::new(),
            ));
        }
    };
    let install = npm_argv(&w, &["install"], true);
    let mut changes = Vec::new();
    let mut steps = Vec::new();
    let subject =
        w.a.name
            .clone()
            .unwrap_or_else(|| format!("{path}/package.json"));
    if w.a.ci {
        steps.push(npm_argv(&w, &["ci"], true));
    } else if make_dir {
        if w.a.state != "absent" {
            steps.push(install);
        }
    } else {
        let ls = outs
            .get(1)
            .ok_or_else(|| failed("npm ls gave no output", Args::new()))?;
        let (installed, mut missing) =
            parse_ls(&ls.stdout_lossy()).map_err(|e| failed(e, Args::new()))?;
        if let Some(nv) = &w.name_version
            && !installed.contains(nv)
            && let Some(n) = &w.a.name
        {
            missing.push(n.clone());
        }
        match w.a.state.as_str() {
            "absent" => {
                if w.a.name.as_ref().is_some_and(|n| installed.contains(n)) {
                    steps.push(npm_argv(&w, &["uninstall"], true));
                }
            }
            _ => {
                if !missing.is_empty() {
                    changes.push(Change::Attr {
                        subject: subject.clone(),
                        what: "missing".into(),
                        before: missing.join(", "),
                        after: "installed".into(),
                    });
                    steps.push(install);
                }
                if latest {
                    let o = outs
                        .get(2)
                        .map(|o| o.stdout_lossy().into_owned())
                        .unwrap_or_default();
                    let outdated: Vec<String> = serde_json::from_str::<Value>(o.trim())
                        .ok()
                        .and_then(|v| v.as_object().map(|m| m.keys().cloned().collect()))
                        .unwrap_or_default();
                    if !outdated.is_empty() {
                        changes.push(Change::Attr {
                            subject: subject.clone(),
                            what: "outdated".into(),
                            before: outdated.join(", "),
                            after: "latest".into(),
                        });
                        steps.push(npm_argv(&w, &["update"], true));
                    }
                }
            }
        }
    }
    if steps.is_empty() {
        return Ok(Verdict::InSync {
            result: result([("changed", Value::from(false))]),
        });
    }
    if w.a.state == "absent" && !w.a.ci {
        changes.push(Change::Attr {
            subject,
            what: "state".into(),
            before: "present".into(),
            after: "absent".into(),
        });
    } else if changes.is_empty() {
        changes.extend(steps.iter().map(|s| Change::Run {
            command: Cmd::argv(s.clone()).display(),
        }));
    }
    if make_dir {
        changes.insert(
            0,
            Change::Attr {
                subject: path.clone(),
                what: "state".into(),
                before: "absent".into(),
                after: "directory".into(),
            },
        );
    }
    Ok(Verdict::Drift(Drift::new(
        changes,
        Plan { steps, make_dir },
    )))
}

async fn apply_npm(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("npm: apply without a plan from check".into()))?;
    let w = want(NpmArgs::parse(args)?)?;
    if p.make_dir
        && let Some(path) = &w.a.path
    {
        ctx.run_ok(tr, Cmd::raw("mkdir -p --").arg(path.clone()))
            .await?;
    }
    let mut r = result([("changed", Value::from(true))]);
    let mut shown = Vec::new();
    let (mut so, mut se) = (String::new(), String::new());
    for step in &p.steps {
        shown.push(Cmd::argv(step.clone()).display());
        let out = ctx.run(tr, in_path(&w, step.clone())).await?;
        so.push_str(&out.stdout_lossy());
        se.push_str(&out.stderr_lossy());
        if out.status != 0 {
            r.insert("cmd".into(), Value::from(shown.join(" && ")));
            r.insert("rc".into(), Value::from(out.status));
            r.insert("stdout".into(), Value::from(so));
            r.insert("stderr".into(), Value::from(se.clone()));
            return Err(failed(
                format!("`{}` failed: {}", shown.join(" && "), se.trim()),
                r,
            ));
        }
    }
    r.insert("cmd".into(), Value::from(shown.join(" && ")));
    r.insert("stdout".into(), Value::from(so));
    r.insert("stderr".into(), Value::from(se));
    Ok(r)
}

impl Module for Npm {
    fn name(&self) -> &'static str {
        "npm"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_npm(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_npm(tr, args, ctx, drift))
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        let Ok(w) = NpmArgs::parse(args).and_then(want) else {
            return Vec::new();
        };
        match (&w.a.path, w.a.global) {
            (Some(p), false) => {
                let p = p.trim_end_matches('/');
                vec![
                    Resource::Path(p.to_string()),
                    Resource::Tree(format!("{p}/node_modules")),
                    Resource::Path(format!("{p}/package.json")),
                    Resource::Path(format!("{p}/package-lock.json")),
                ]
            }
            _ => Vec::new(),
        }
    }

    fn not_reversible(&self, given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        given("global").then_some(
            "a global npm install changes npm's global prefix, which rdeploy does not back up (a project's 'path' is backed up)",
        )
    }

    /// `ci`, and versions or names `npm ls` cannot confirm, report their own outcome.
    fn converges(&self, args: &Args) -> bool {
        NpmArgs::parse(args)
            .and_then(want)
            .map_or(true, |w| converging(&w))
    }

    fn unpredicted(&self, _args: &Args, _drift: &Drift) -> Unpredicted {
        Unpredicted {
            skip: false,
            result: Args::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;

    fn w(v: Value) -> Result<Want, ModuleError> {
        want(NpmArgs::parse(&args(v))?)
    }

    #[test]
    fn arguments_and_commands_as_community_general() {
        let e = |v: Value| w(v).unwrap_err().to_string();
        assert_eq!(
            e(json!({"name": "x"})),
            "path must be specified when not using global"
        );
        assert_eq!(
            e(json!({"path": "/a", "state": "absent"})),
            "uninstalling a package is only available for named packages"
        );
        assert!(e(json!({"path": "/a", "name": "--x"})).contains("invalid"));
        let all = w(json!({
            "name": "left-pad", "version": "1.3.0", "global": true, "production": true,
            "ignore_scripts": true, "unsafe_perm": true, "registry": "http://r.example",
            "no_optional": true, "no_bin_links": true, "executable": "/opt/nvm/npm --loglevel warn"
        }))
        .unwrap();
        assert_eq!(
            npm_argv(&all, &["install"], true).join(" "),
            "/opt/nvm/npm --loglevel warn install --global --production --ignore-scripts --unsafe-perm left-pad@1.3.0 --registry http://r.example --no-optional --no-bin-links"
        );
        assert_eq!(
            npm_argv(&all, &["uninstall"], true).join(" "),
            "/opt/nvm/npm --loglevel warn uninstall --global --ignore-scripts --unsafe-perm left-pad@1.3.0 --registry http://r.example --no-optional --no-bin-links"
        );
        let absent =
            w(json!({"name": "a", "version": "1.0.0", "path": "/p", "state": "absent"})).unwrap();
        assert_eq!(
            npm_argv(&absent, &["uninstall"], true),
            ["npm", "uninstall", "a"]
        );
        assert!(converging(
            &w(json!({"name": "a", "version": "1.2.3", "path": "/p"})).unwrap()
        ));
        for v in [
            json!({"name": "a", "version": "^1.2", "path": "/p"}),
            json!({"name": "./pkg.tgz", "path": "/p"}),
            json!({"name": "git+https://x/y.git", "path": "/p"}),
            json!({"path": "/p", "ci": true}),
        ] {
            assert!(!Npm.converges(&args(v.clone())), "{v}");
        }
        assert!(registry_name("@types/node") && registry_name("left-pad"));
        assert!(!registry_name("user/repo"));
        assert_eq!(
            Npm.resources(&args(json!({"path": "/srv/app/"}))),
            vec![
                Resource::Path("/srv/app".into()),
                Resource::Tree("/srv/app/node_modules".into()),
                Resource::Path("/srv/app/package.json".into()),
                Resource::Path("/srv/app/package-lock.json".into()),
            ]
        );
        assert!(
            Npm.resources(&args(json!({"name": "a", "global": true})))
                .is_empty()
        );
        assert!(Npm.not_reversible(&|n| n == "global").is_some());
        assert!(Npm.not_reversible(&|n| n == "path").is_none());
    }

    #[test]
    fn npm_ls_is_read_as_community_general_reads_it() {
        let ls = r#"{"name": "app", "dependencies": {
            "a": {"version": "1.0.0"}, "b": {"missing": true}, "c": {"invalid": true, "version": "2.0.0"}}}"#;
        let (installed, missing) = parse_ls(ls).unwrap();
        assert_eq!(installed, ["a", "a@1.0.0"]);
        assert_eq!(missing, ["b", "c"]);
        assert_eq!(parse_ls("").unwrap(), (vec![], vec![]));
        assert!(parse_ls("npm ERR!").is_err());
    }

    /// A fake npm: `$FAKE/nm/NAME` holds an installed version, `$FAKE/want` lists the
    /// package.json dependencies, `$FAKE/newer/NAME` a newer version; calls go to `$FAKE/log`.
    const FAKE_NPM: &str = r#"
echo "npm $* in $(pwd)" >> "$FAKE/log"
case $1 in
ls) printf '{"dependencies": {'; s_=
  for f in "$FAKE"/nm/*; do [ -e "$f" ] || continue; printf '%s"%s": {"version": "%s"}' "$s_" "${f##*/}" "$(cat "$f")"; s_=', '; done
  for n in $(cat "$FAKE/want" 2>/dev/null); do [ -e "$FAKE/nm/$n" ] || { printf '%s"%s": {"missing": true}' "$s_" "$n"; s_=', '; }; done
  printf '}}\n' ;;
outdated) printf '{'; s_=; for f in "$FAKE"/newer/*; do [ -e "$f" ] || continue; printf '%s"%s": {}' "$s_" "${f##*/}"; s_=', '; done; printf '}\n' ;;
install) shift; p=; for a in "$@"; do case $a in -*) ;; *) p=$a ;; esac; done
  if [ -n "$p" ]; then n=${p%@*}; [ "$n" = "$p" ] && v=1.0.0 || v=${p##*@}; echo "$v" > "$FAKE/nm/$n"
  else for n in $(cat "$FAKE/want" 2>/dev/null); do echo 1.0.0 > "$FAKE/nm/$n"; done; fi ;;
update) for f in "$FAKE"/newer/*; do mv "$f" "$FAKE/nm/${f##*/}"; done ;;
uninstall) rm -f "$FAKE/nm/$2" ;;
esac"#;

    #[tokio::test]
    async fn fake_npm_present_latest_absent_in_a_project() {
        let (dir, bin, st) = fake_dirs();
        fake_tool(&bin, "npm", FAKE_NPM);
        std::fs::create_dir_all(st.join("nm")).unwrap();
        std::fs::create_dir_all(st.join("newer")).unwrap();
        std::fs::write(st.join("want"), "express\n").unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &st));
        let mut tr = transport();
        let app = dir.path().join("app").display().to_string();

        // The project directory is created, then package.json's dependencies installed.
        let a = args(json!({"path": app}));
        let Ran::Applied(changes, Ok(r)) = check_apply(&Npm, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(r["changed"], json!(true));
        assert!(dir.path().join("app").is_dir());
        assert!(matches!(
            check_apply(&Npm, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));

        // A named package at a version.
        let a = args(json!({"path": app, "name": "left-pad", "version": "1.3.0"}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Npm, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["cmd"], json!("'npm' 'install' 'left-pad@1.3.0'"));
        assert!(matches!(
            check_apply(&Npm, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));

        // latest: an outdated package is updated.
        std::fs::write(st.join("newer/express"), "2.0.0").unwrap();
        let a = args(json!({"path": app, "state": "latest"}));
        let Ran::Applied(changes, Ok(_)) = check_apply(&Npm, &mut tr, &a, &c).await else {
            panic!()
        };
        assert!(
            matches!(&changes[0], Change::Attr { what, before, .. } if what == "outdated" && before == "express"),
            "{changes:?}"
        );
        assert!(matches!(
            check_apply(&Npm, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));

        // absent
        let a = args(json!({"path": app, "name": "left-pad", "state": "absent"}));
        assert!(matches!(
            check_apply(&Npm, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(!st.join("nm/left-pad").exists());
        assert!(matches!(
            check_apply(&Npm, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));

        // ci runs every time.
        let a = args(json!({"path": app, "ci": true, "production": true}));
        assert!(matches!(
            check_apply(&Npm, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        let log = std::fs::read_to_string(st.join("log")).unwrap();
        assert!(log.contains("npm ci --production in"), "{log}");
    }
}
