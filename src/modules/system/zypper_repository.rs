//! `zypper_repository` (community.general): a zypper repository present (with its settings)
//! or absent.
//!
//! Owns reading the repositories (`zypper --xmlout repos`, one command), matching by alias or
//! URL and comparing the settings as community.general does, and `zypper removerepo` /
//! `addrepo` / `refresh`. Every value is a quoted argument. It must not format shell lines.

use serde_json::Value;

use super::common::{failed, result};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Unpredicted,
    Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// `zypper_repository`.
pub struct ZypperRepository;

crate::module_args! {
    /// Adds, changes or removes a zypper repository (openSUSE, SLES), matched by alias
    /// (`name`) or URL; a repository whose settings differ is removed and added again, as
    /// community.general does. rdeploy does not read `.repo` files given as `repo`, nor
    /// `list`, `overwrite_multiple` or `auto_import_keys`. With `runrefresh` the task runs
    /// on every run (the refresh is reported `ok` when the repository did not change).
    #[module(
        name = "zypper_repository",
        backup = "`/etc/zypp/repos.d/NAME.repo` is backed up before the change and rollback puts it back (or removes it when the run created it); zypper reads its repositories from those files.",
        returns = &[("repodata", "the repository's settings as asked"), ("state", "the state asked")],
        examples = "- zypper_repository:\n    name: nginx\n    repo: https://nginx.org/packages/sles/15\n    priority: 90"
    )]
    pub struct ZypperRepositoryArgs {
        /// The repository's alias.
        #[arg(required)]
        name: String,
        /// The repository's URL (required for `present`).
        repo: Option<String>,
        /// `present` or `absent`.
        #[arg(default = "present", choices = &["absent", "present"])]
        state: String,
        /// The repository's name (zypper's `--name`).
        description: Option<String>,
        /// Do not check packages' GPG signatures (`--no-gpgcheck`).
        #[arg(default = "no")]
        disable_gpg_check: bool,
        /// Refresh the repository automatically (`--refresh`).
        #[arg(aliases = &["refresh"], default = "yes")]
        autorefresh: bool,
        /// The repository's priority (`--priority`).
        priority: Option<i64>,
        /// Whether the repository is enabled (else `--disable`).
        #[arg(default = "yes")]
        enabled: bool,
        /// Refresh the repository's metadata (`zypper refresh --force -r NAME`).
        #[arg(default = "no")]
        runrefresh: bool,
    }
}

/// A repository as `zypper --xmlout repos` lists it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Repo {
    alias: String,
    name: String,
    priority: String,
    enabled: String,
    autorefresh: String,
    gpgcheck: String,
    url: String,
}

/// The value of attribute `key` in an XML start tag's text.
fn attr(tag: &str, key: &str) -> String {
    let pat = format!(" {key}=\"");
    tag.find(&pat)
        .and_then(|i| {
            let rest = &tag[i + pat.len()..];
            rest.find('"').map(|j| unescape(&rest[..j]))
        })
        .unwrap_or_default()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn parse_repos(xml: &str) -> Vec<Repo> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<repo ") {
        rest = &rest[i..];
        let Some(end) = rest.find('>') else { break };
        let tag = &rest[..end];
        let body_end = rest.find("</repo>").unwrap_or(rest.len());
        let body = &rest[end..body_end];
        let url = body
            .find("<url>")
            .and_then(|a| {
                body[a + 5..]
                    .find("</url>")
                    .map(|b| unescape(&body[a + 5..a + 5 + b]))
            })
            .unwrap_or_default();
        out.push(Repo {
            alias: attr(tag, "alias"),
            name: attr(tag, "name"),
            priority: attr(tag, "priority"),
            enabled: attr(tag, "enabled"),
            autorefresh: attr(tag, "autorefresh"),
            gpgcheck: attr(tag, "gpgcheck"),
            url,
        });
        rest = &rest[body_end.max(1)..];
    }
    out
}

/// The repository as the task asks for it (zypper's `0`/`1` spellings).
fn wanted(a: &ZypperRepositoryArgs) -> Repo {
    let b = |v: bool| if v { "1" } else { "0" }.to_string();
    Repo {
        alias: a.name.clone(),
        name: a.description.clone().unwrap_or_default(),
        priority: a.priority.map(|p| p.to_string()).unwrap_or_default(),
        enabled: b(a.enabled),
        autorefresh: b(a.autorefresh),
        gpgcheck: b(!a.disable_gpg_check),
        url: a.repo.clone().unwrap_or_default(),
    }
}

/// community.general's `_repo_changes`: every setting the task gives must match (URLs
/// compared without a trailing `/`).
fn differs(have: &Repo, want: &Repo) -> Vec<(&'static str, String, String)> {
    let pairs = [
        ("url", &have.url, &want.url),
        ("name", &have.name, &want.name),
        ("priority", &have.priority, &want.priority),
        ("enabled", &have.enabled, &want.enabled),
        ("autorefresh", &have.autorefresh, &want.autorefresh),
        ("gpgcheck", &have.gpgcheck, &want.gpgcheck),
    ];
    pairs
        .into_iter()
        .filter(|(k, h, w)| {
            !w.is_empty()
                && if *k == "url" {
                    h.trim_end_matches('/') != w.trim_end_matches('/')
                } else {
                    h != w
                }
        })
        .map(|(k, h, w)| (k, h.clone(), w.clone()))
        .collect()
}

/// The `repodata` result key.
fn repodata(w: &Repo) -> Value {
    serde_json::json!({
        "alias": w.alias, "url": w.url, "name": w.name, "priority": w.priority,
        "enabled": w.enabled, "autorefresh": w.autorefresh, "gpgcheck": w.gpgcheck,
    })
}

fn zypper() -> Cmd {
    Cmd::raw("zypper --quiet --non-interactive")
}

fn addrepo(w: &Repo) -> Cmd {
    let mut c = zypper().op("addrepo --check");
    if !w.name.is_empty() {
        c = c.op("--name").arg(w.name.clone());
    }
    if !w.priority.is_empty() {
        c = c.op("--priority").arg(w.priority.clone());
    }
    if w.enabled == "0" {
        c = c.op("--disable");
    }
    c = c.op(if w.gpgcheck == "1" {
        "--gpgcheck"
    } else {
        "--no-gpgcheck"
    });
    if w.autorefresh == "1" {
        c = c.op("--refresh");
    }
    c.arg(w.url.clone()).arg(w.alias.clone())
}

/// What `apply` runs, and whether it changes the repository (a refresh alone does not).
struct Plan {
    cmds: Vec<Cmd>,
    changes: bool,
}

fn validate(a: &ZypperRepositoryArgs) -> Result<(), ModuleError> {
    if a.state == "present" && a.repo.is_none() {
        return Err(ModuleError::Args(
            "Module option state=present requires repo".into(),
        ));
    }
    if a.repo.as_deref().is_some_and(|r| r.ends_with(".repo")) {
        return Err(ModuleError::Args(
            "a .repo file as 'repo' is not supported by rdeploy: give the repository's URL and 'name'".into(),
        ));
    }
    if a.name == "*" || a.repo.as_deref() == Some("*") {
        return Err(ModuleError::Args(
            "repo=* (refresh every repository) is not supported by rdeploy".into(),
        ));
    }
    if a.name.is_empty() || a.name.starts_with('-') || a.name.contains(['/', '\n', '\0']) {
        return Err(ModuleError::Args(format!(
            "invalid repository name '{}'",
            a.name
        )));
    }
    Ok(())
}

async fn check(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = ZypperRepositoryArgs::parse(args)?;
    validate(&a)?;
    let want = wanted(&a);
    let out = ctx.query(tr, zypper().op("--xmlout repos")).await?;
    let repos = match out.status {
        0 => parse_repos(&out.stdout_lossy()),
        6 => Vec::new(),
        rc => {
            return Err(failed(
                format!(
                    "Failed to execute \"zypper --quiet --non-interactive --xmlout repos\" (rc {rc}): {}",
                    out.stderr_lossy().trim()
                ),
                Args::new(),
            ));
        }
    };
    let matched: Vec<&Repo> = repos
        .iter()
        .filter(|r| r.alias == want.alias || (!want.url.is_empty() && r.url == want.url))
        .collect();
    if matched.len() > 1 {
        return Err(failed(
            format!(
                "More than one repo matched \"{}\": {}",
                want.alias,
                matched
                    .iter()
                    .map(|r| r.alias.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Args::new(),
        ));
    }
    let existing = matched.first().copied();
    let mut changes = Vec::new();
    let mut cmds = Vec::new();
    match (a.state.as_str(), existing) {
        ("absent", Some(r)) => {
            changes.push(Change::Attr {
                subject: want.alias.clone(),
                what: "state".into(),
                before: "present".into(),
                after: "absent".into(),
            });
            cmds.push(zypper().op("removerepo").arg(r.alias.clone()));
        }
        ("present", None) => {
            changes.push(Change::Attr {
                subject: want.alias.clone(),
                what: "state".into(),
                before: "absent".into(),
                after: "present".into(),
            });
            cmds.push(addrepo(&want));
        }
        ("present", Some(r)) => {
            for (k, h, w) in differs(r, &want) {
                changes.push(Change::Attr {
                    subject: want.alias.clone(),
                    what: k.into(),
                    before: h,
                    after: w,
                });
            }
            if !changes.is_empty() {
                cmds.push(zypper().op("removerepo").arg(r.url.clone()));
                cmds.push(addrepo(&want));
            }
        }
        _ => {}
    }
    let repodata = repodata(&want);
    let changed = !changes.is_empty();
    if a.runrefresh && a.state == "present" {
        cmds.push(zypper().op("refresh --force -r").arg(want.alias.clone()));
        if !changed {
            changes.push(Change::Run {
                command: zypper()
                    .op("refresh --force -r")
                    .arg(want.alias.clone())
                    .display(),
            });
        }
    }
    if cmds.is_empty() {
        return Ok(Verdict::InSync {
            result: result([
                ("changed", Value::from(false)),
                ("repodata", repodata),
                ("state", Value::from(a.state)),
            ]),
        });
    }
    Ok(Verdict::Drift(Drift::new(
        changes,
        Plan {
            cmds,
            changes: changed,
        },
    )))
}

async fn apply(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = drift.plan::<Plan>().ok_or_else(|| {
        ModuleError::Args("zypper_repository: apply without a plan from check".into())
    })?;
    let a = ZypperRepositoryArgs::parse(args)?;
    let mut r = result([
        ("repodata", repodata(&wanted(&a))),
        ("state", Value::from(a.state.clone())),
    ]);
    for c in &p.cmds {
        let out = ctx.run(tr, c.clone()).await?;
        if out.status != 0 {
            r.insert("rc".into(), Value::from(out.status));
            r.insert(
                "stdout".into(),
                Value::from(out.stdout_lossy().into_owned()),
            );
            r.insert(
                "stderr".into(),
                Value::from(out.stderr_lossy().into_owned()),
            );
            return Err(failed(format!("Zypper failed with rc {}", out.status), r));
        }
    }
    r.insert("changed".into(), Value::from(p.changes));
    Ok(r)
}

impl Module for ZypperRepository {
    fn name(&self) -> &'static str {
        "zypper_repository"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check(tr, args, ctx))
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

    fn resources(&self, args: &Args) -> Vec<Resource> {
        match ZypperRepositoryArgs::parse(args) {
            Ok(a) if validate(&a).is_ok() => {
                vec![Resource::Path(format!("/etc/zypp/repos.d/{}.repo", a.name))]
            }
            _ => Vec::new(),
        }
    }

    /// `runrefresh` refreshes on every run; the task reports `changed` only when the
    /// repository changed, as community.general's does.
    fn converges(&self, args: &Args) -> bool {
        ZypperRepositoryArgs::parse(args).map_or(true, |a| !a.runrefresh)
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

    const XML: &str = r#"<?xml version='1.0'?>
<stream><repo-list>
<repo alias="oss" name="Main Repository" type="rpm-md" priority="99" enabled="1" autorefresh="1" gpgcheck="1" repo_gpgcheck="1" pkg_gpgcheck="0"><url>http://download.opensuse.org/distribution/leap/15.5/repo/oss/</url></repo>
<repo alias="nginx" name="nginx &amp; co" type="rpm-md" priority="90" enabled="0" autorefresh="0" gpgcheck="1"><url>https://nginx.org/packages/sles/15</url></repo>
</repo-list></stream>"#;

    #[test]
    fn repos_are_read_and_compared_as_community_general() {
        let repos = parse_repos(XML);
        assert_eq!(repos.len(), 2);
        assert_eq!(repos[1].name, "nginx & co");
        assert_eq!(repos[1].url, "https://nginx.org/packages/sles/15");
        let a = ZypperRepositoryArgs::parse(&args(json!({
            "name": "nginx", "repo": "https://nginx.org/packages/sles/15/", "priority": 90,
            "enabled": false, "autorefresh": false
        })))
        .unwrap();
        assert!(differs(&repos[1], &wanted(&a)).is_empty());
        let a = ZypperRepositoryArgs::parse(&args(
            json!({"name": "nginx", "repo": "https://nginx.org/packages/sles/15"}),
        ))
        .unwrap();
        let d: Vec<&str> = differs(&repos[1], &wanted(&a))
            .iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(d, ["enabled", "autorefresh"]);
        let w = wanted(
            &ZypperRepositoryArgs::parse(&args(json!({
                "name": "x", "repo": "http://r/", "description": "X", "priority": 5,
                "enabled": false, "disable_gpg_check": true
            })))
            .unwrap(),
        );
        assert_eq!(
            addrepo(&w).display(),
            "zypper --quiet --non-interactive addrepo --check --name 'X' --priority '5' --disable --no-gpgcheck --refresh 'http://r/' 'x'"
        );
        for bad in [
            json!({"name": "x"}),
            json!({"name": "x", "repo": "http://r/x.repo"}),
            json!({"name": "*", "repo": "*", "runrefresh": true}),
        ] {
            assert!(
                validate(&ZypperRepositoryArgs::parse(&args(bad.clone())).unwrap()).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            ZypperRepository.resources(&args(json!({"name": "nginx", "state": "absent"}))),
            vec![Resource::Path("/etc/zypp/repos.d/nginx.repo".into())]
        );
        assert!(!ZypperRepository.converges(&args(
            json!({"name": "x", "repo": "http://r", "runrefresh": true})
        )));
    }

    /// A fake zypper: `$FAKE/repos.xml` is what `--xmlout repos` prints; calls go to `$FAKE/log`.
    const FAKE: &str = r#"echo "zypper $*" >> "$FAKE/log"
case $3 in --xmlout) cat "$FAKE/repos.xml" ;; removerepo) : > "$FAKE/repos.xml" ;;
addrepo) eval a=\${$#}; printf '<repo alias="%s" name="" priority="99" enabled="1" autorefresh="1" gpgcheck="1"><url>http://r</url></repo>' "$a" > "$FAKE/repos.xml" ;; esac"#;

    #[tokio::test]
    async fn fake_zypper_adds_changes_and_removes_a_repository() {
        let (dir, bin, st) = fake_dirs();
        fake_tool(&bin, "zypper", FAKE);
        std::fs::write(st.join("repos.xml"), "").unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &st));
        let mut tr = transport();
        let a = args(json!({"name": "x", "repo": "http://r"}));
        assert!(matches!(
            check_apply(&ZypperRepository, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(matches!(
            check_apply(&ZypperRepository, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        // A setting that differs: removed and added again.
        let a = args(json!({"name": "x", "repo": "http://r", "priority": 10}));
        let Ran::Applied(changes, Ok(_)) = check_apply(&ZypperRepository, &mut tr, &a, &c).await
        else {
            panic!()
        };
        assert!(
            matches!(&changes[0], Change::Attr { what, .. } if what == "priority"),
            "{changes:?}"
        );
        let a = args(json!({"name": "x", "state": "absent"}));
        assert!(matches!(
            check_apply(&ZypperRepository, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(matches!(
            check_apply(&ZypperRepository, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));
        let log = std::fs::read_to_string(st.join("log")).unwrap();
        assert!(
            log.contains("zypper --quiet --non-interactive removerepo http://r\n"),
            "{log}"
        );
        assert!(
            log.contains("zypper --quiet --non-interactive removerepo x\n"),
            "{log}"
        );
    }
}
