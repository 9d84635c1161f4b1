//! `git`: a checkout of a repository at `dest`, at the commit `version` names on the remote.
//!
//! Owns the read-only look (`check`): whether `dest` holds a repository, its current commit
//! (`git rev-parse`), its local modifications (`git status --porcelain`, untracked files do
//! not count, as in Ansible), its remote's URL, its submodules' state, and what `version`
//! resolves to on the remote (`git ls-remote`: the remote's HEAD, a branch, a tag
//! (dereferenced), or else a commit id, resolved in the checkout when it is there); and the
//! change (`apply`): clone, or reset/set-url/fetch, then checkout, then submodules, as
//! Ansible's module runs them. Every git command is argv (`executable` or `git`), run in
//! `dest` with `LC_ALL=C` and `GIT_TERMINAL_PROMPT=0`; `key_file`, `ssh_opts` and the host-key
//! options become `GIT_SSH_COMMAND`. The executor backs up `dest` whole
//! ([`Resource::Tree`]) before `apply`, so a rollback puts the previous checkout back (or
//! removes a fresh clone). It must not format shell lines.

use serde_json::Value;

use super::common::{failed, result};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
    output_result,
};
use crate::transport::cmd::{mkdir_p, quote};
use crate::transport::{AnyTransport, Cmd, Output};

/// The `git` module.
pub struct Git;

crate::module_args! {
    /// Checks out a git repository at `dest` at the commit `version` names on the remote
    /// (a branch, a tag, a commit id, or the remote's `HEAD`): clones it when `dest` has none,
    /// else fetches and checks out; local modifications fail the task unless `force`. Unlike
    /// Ansible, `clone: false` with no repository at `dest` reports ok (nothing is done) rather
    /// than changed, and `dest` is required.
    #[module(
        name = "git",
        backup = "The whole of `dest` is copied before a change (`cp -a`, `.git` included); `rdeploy rollback` puts that checkout back as it was, or removes `dest` when the run cloned it.",
        returns = &[("before", "the commit checked out before (null when cloned)"), ("after", "the commit checked out now"), ("remote_url_changed", "whether the remote's URL was changed to `repo`"), ("submodules_changed", "whether submodules were updated"), ("msg", "when local modifications were reset (force)")],
        examples = "- git:\n    repo: https://github.com/example/app.git\n    dest: /srv/app\n    version: v2.1.0\n  register: checkout\n- debug:\n    msg: \"{{ checkout.before }} -> {{ checkout.after }}\""
    )]
    pub struct GitArgs {
        /// The repository's URL or path (a path is used as `file://PATH`, as in Ansible).
        #[arg(required, aliases = &["name"])]
        repo: String,
        /// Where the checkout is.
        #[arg(required, kind = Path)]
        dest: String,
        /// What to check out: a branch, a tag, a commit id, or `HEAD` (the remote's default
        /// branch).
        #[arg(default = "HEAD")]
        version: String,
        /// Discard local modifications of tracked files (`git reset --hard`); without it they
        /// fail the task.
        #[arg(default = "no")]
        force: bool,
        /// A shallow clone of this many commits.
        depth: Option<i64>,
        /// Clone when `dest` holds no repository; false leaves it absent.
        #[arg(default = "yes")]
        clone: bool,
        /// Fetch and check out `version` when `dest` holds a repository; false leaves it as
        /// it is.
        #[arg(default = "yes")]
        update: bool,
        /// The remote's name.
        #[arg(default = "origin")]
        remote: String,
        /// A bare repository (no working tree) at `dest`.
        #[arg(default = "no")]
        bare: bool,
        /// Clone only the history of `version`'s branch (`--single-branch`).
        #[arg(default = "no")]
        single_branch: bool,
        /// Initialise and update submodules, recursively.
        #[arg(default = "yes")]
        recursive: bool,
        /// Accept an unknown host key of an ssh remote (`StrictHostKeyChecking=no`).
        #[arg(default = "no")]
        accept_hostkey: bool,
        /// Accept a new (never a changed) host key of an ssh remote
        /// (`StrictHostKeyChecking=accept-new`).
        #[arg(default = "no")]
        accept_newhostkey: bool,
        /// The private key for an ssh remote, on the host.
        #[arg(kind = Path)]
        key_file: Option<String>,
        /// More options for ssh, as text (`-o ConnectTimeout=5`).
        ssh_opts: Option<String>,
        /// The git program on the host.
        #[arg(kind = Path)]
        executable: Option<String>,
    }
}

/// What `version` is on the remote.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// The remote's HEAD, which is this branch.
    Head(String),
    /// A branch.
    Branch,
    /// A tag.
    Tag,
    /// Anything else: a commit id.
    Commit,
}

/// What `check` found, for `apply`.
#[derive(Debug)]
struct Plan {
    clone: bool,
    kind: Kind,
    before: Option<String>,
    target: String,
    reset: bool,
    set_url: bool,
}

/// The parsed arguments and what every git command shares.
struct GitRun {
    a: GitArgs,
    /// `repo`, with a path written as `file://PATH`.
    url: String,
    ssh: Option<String>,
}

impl GitRun {
    fn new(args: &Args) -> Result<GitRun, ModuleError> {
        let a = GitArgs::parse(args)?;
        if a.accept_hostkey && a.accept_newhostkey {
            return Err(ModuleError::Args(
                "parameters are mutually exclusive: accept_hostkey|accept_newhostkey".into(),
            ));
        }
        let url = if a.repo.starts_with('/') {
            format!("file://{}", a.repo)
        } else {
            a.repo.clone()
        };
        let ssh = ssh_command(&a)?;
        Ok(GitRun { a, url, ssh })
    }

    /// `git ARGS`, with git's environment.
    fn cmd<I: IntoIterator<Item = S>, S: Into<String>>(&self, words: I) -> Cmd {
        let exe = self.a.executable.clone().unwrap_or_else(|| "git".into());
        let mut c = Cmd::argv([exe])
            .args(words)
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0");
        if let Some(s) = &self.ssh {
            c = c.env("GIT_SSH_COMMAND", s.clone());
        }
        c
    }

    /// `git ARGS` in `dest`.
    fn in_dest<I: IntoIterator<Item = S>, S: Into<String>>(&self, words: I) -> Cmd {
        self.cmd(words).chdir(self.a.dest.clone())
    }
}

/// `GIT_SSH_COMMAND` for `key_file`, `ssh_opts` and the host-key options, as Ansible builds
/// its ssh wrapper; `None` when none is given.
fn ssh_command(a: &GitArgs) -> Result<Option<String>, ModuleError> {
    let mut opts = a.ssh_opts.clone();
    let strict = if a.accept_hostkey {
        Some("-o StrictHostKeyChecking=no")
    } else if a.accept_newhostkey {
        Some("-o StrictHostKeyChecking=accept-new")
    } else {
        None
    };
    if let Some(s) = strict {
        opts = Some(match opts {
            Some(o)
                if o.contains("-o StrictHostKeyChecking=no")
                    || o.contains("-o StrictHostKeyChecking=accept-new") =>
            {
                o
            }
            Some(o) => format!("{o} {s}"),
            None => s.to_string(),
        });
    }
    if a.key_file.is_none() && opts.is_none() {
        return Ok(None);
    }
    let mut line = String::from("ssh");
    if let Some(k) = &a.key_file {
        let k = quote(k).map_err(|e| ModuleError::Args(e.to_string()))?;
        line.push_str(&format!(" -i {k} -o IdentitiesOnly=yes"));
    }
    if let Some(o) = opts {
        // ssh_opts is ssh's own command-line text, as in Ansible.
        line.push(' ');
        line.push_str(&o);
    }
    Ok(Some(line))
}

/// Fails with git's own words unless `out` is a success.
fn ok_or_fail(out: Output, what: &str) -> Result<Output, ModuleError> {
    if out.status == 0 {
        return Ok(out);
    }
    let msg = format!("{what}: {}", out.stderr_lossy().trim());
    Err(failed(msg, output_result(&out)))
}

/// The first word of the first line (a commit id).
fn first_word(text: &str) -> Option<String> {
    text.split_whitespace().next().map(str::to_string)
}

/// What `version` is and its commit, from `git ls-remote REPO HEAD` (with `--symref`) or
/// `git ls-remote REPO refs/heads/V refs/tags/V refs/tags/V^{}`. `Commit` has no commit here.
fn classify(version: &str, listing: &str) -> Option<(Kind, Option<String>)> {
    let refs: Vec<(&str, &str)> = listing.lines().filter_map(|l| l.split_once('\t')).collect();
    if version == "HEAD" {
        let branch = refs
            .iter()
            .find_map(|(a, r)| (*r == "HEAD").then(|| a.strip_prefix("ref: refs/heads/"))?)
            .unwrap_or_default()
            .to_string();
        let sha = refs
            .iter()
            .find(|(a, r)| *r == "HEAD" && !a.starts_with("ref: "))
            .map(|(a, _)| a.to_string())?;
        return Some((Kind::Head(branch), Some(sha)));
    }
    let find = |name: &str| {
        refs.iter()
            .find(|(_, r)| *r == name)
            .map(|(a, _)| a.to_string())
    };
    if let Some(sha) = find(&format!("refs/heads/{version}")) {
        return Some((Kind::Branch, Some(sha)));
    }
    if let Some(sha) =
        find(&format!("refs/tags/{version}^{{}}")).or_else(|| find(&format!("refs/tags/{version}")))
    {
        return Some((Kind::Tag, Some(sha)));
    }
    Some((Kind::Commit, None))
}

/// Non-`??` lines of `git status --porcelain`: modified tracked files.
fn has_local_mods(porcelain: &str) -> bool {
    porcelain
        .lines()
        .any(|l| !l.starts_with("??") && !l.is_empty())
}

/// Whether two remote URLs name the same repository (trailing slashes aside).
fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

async fn check_git(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let g = GitRun::new(args)?;
    let a = &g.a;
    let config = if a.bare {
        format!("{}/config", a.dest)
    } else {
        format!("{}/.git/config", a.dest)
    };
    let present = ctx.query(tr, Cmd::raw("test -f").arg(config)).await?.status == 0;

    if present && !a.update {
        let out = ctx.query(tr, g.in_dest(["rev-parse", "HEAD"])).await?;
        let before = first_word(&out.stdout_lossy());
        return Ok(Verdict::InSync {
            result: result([
                ("before", Value::from(before.clone())),
                ("after", Value::from(before)),
                ("changed", Value::from(false)),
            ]),
        });
    }

    // What the task asks for, on the remote.
    let listing = if a.version == "HEAD" {
        g.cmd(["ls-remote", "--symref", g.url.as_str(), "HEAD"])
    } else {
        let v = &a.version;
        g.cmd([
            "ls-remote".to_string(),
            g.url.clone(),
            format!("refs/heads/{v}"),
            format!("refs/tags/{v}"),
            format!("refs/tags/{v}^{{}}"),
        ])
    };
    let listing = ok_or_fail(
        ctx.query(tr, listing).await?,
        &format!("Failed to list the remote's references ({})", g.url),
    )?;
    let (kind, sha) = classify(&a.version, &listing.stdout_lossy()).ok_or_else(|| {
        failed(
            format!("Could not determine remote revision for {}", a.version),
            Args::new(),
        )
    })?;

    if !present {
        let target = sha.unwrap_or_else(|| a.version.clone());
        if !a.clone {
            return Ok(Verdict::InSync {
                result: result([
                    ("before", Value::Null),
                    ("after", Value::from(target)),
                    ("changed", Value::from(false)),
                ]),
            });
        }
        let change = Change::Attr {
            subject: a.dest.clone(),
            what: "version".into(),
            before: "absent".into(),
            after: target.clone(),
        };
        return Ok(Verdict::Drift(Drift::new(
            vec![change],
            Plan {
                clone: true,
                kind,
                before: None,
                target,
                reset: false,
                set_url: false,
            },
        )));
    }

    // The checkout as it is.
    let current_ref = match (&kind, a.bare) {
        (_, false) | (Kind::Head(_), true) => "HEAD".to_string(),
        (Kind::Branch, true) => format!("refs/heads/{}", a.version),
        (_, true) => format!("{}^{{commit}}", a.version),
    };
    let mut reads = vec![
        g.in_dest(["rev-parse", "--verify", "-q", current_ref.as_str()]),
        g.in_dest(["ls-remote", "--get-url", a.remote.as_str()]),
    ];
    if !a.bare {
        reads.push(g.in_dest(["status", "--porcelain"]));
        if a.recursive {
            reads.push(g.in_dest(["submodule", "status"]));
        }
    }
    if kind == Kind::Commit {
        reads.push(g.in_dest([
            "rev-parse".to_string(),
            "--verify".into(),
            "-q".into(),
            format!("{}^{{commit}}", a.version),
        ]));
    }
    let outs = match ctx.read(tr, &reads, 4 << 20).await? {
        Ok(o) => o,
        Err(e) => return Err(failed(e.to_string(), Args::new())),
    };
    let text = |i: usize| outs.get(i).map(|o| o.stdout_lossy()).unwrap_or_default();
    let before = first_word(&text(0));
    let head = if a.bare {
        ctx.query(tr, g.in_dest(["rev-parse", "HEAD"]))
            .await
            .ok()
            .and_then(|o| first_word(&o.stdout_lossy()))
    } else {
        before.clone()
    };
    let url = text(1).trim().to_string();
    let set_url = !url.is_empty() && !same_url(&url, &g.url) && !same_url(&url, &a.repo);
    let mut i = 2;
    let (mods, submodules) = if a.bare {
        (false, false)
    } else {
        let mods = has_local_mods(&text(i));
        i += 1;
        let subs = a.recursive && {
            i += 1;
            text(i - 1).lines().any(|l| !l.starts_with(' '))
        };
        (mods, subs)
    };
    let target = match sha {
        Some(s) => s,
        None => first_word(&text(i)).unwrap_or_else(|| a.version.clone()),
    };
    let mut r = result([
        ("before", Value::from(head.clone())),
        ("changed", Value::from(false)),
    ]);
    if mods && !a.force {
        return Err(failed(
            format!(
                "Local modifications exist in the destination: {} (force=no).",
                a.dest
            ),
            r,
        ));
    }
    if before.as_deref() == Some(target.as_str()) && !set_url && !mods && !submodules {
        r.insert("after".into(), Value::from(head));
        r.insert("remote_url_changed".into(), Value::from(false));
        return Ok(Verdict::InSync { result: r });
    }
    let mut changes = Vec::new();
    if before.as_deref() != Some(target.as_str()) {
        changes.push(Change::Attr {
            subject: a.dest.clone(),
            what: "version".into(),
            before: before.clone().unwrap_or_else(|| "none".into()),
            after: target.clone(),
        });
    }
    if set_url {
        changes.push(Change::Attr {
            subject: a.dest.clone(),
            what: format!("remote {}", a.remote),
            before: url,
            after: g.url.clone(),
        });
    }
    if mods {
        changes.push(Change::Attr {
            subject: a.dest.clone(),
            what: "local modifications".into(),
            before: "present".into(),
            after: "reset".into(),
        });
    }
    if submodules {
        changes.push(Change::Attr {
            subject: a.dest.clone(),
            what: "submodules".into(),
            before: "out of date".into(),
            after: "updated".into(),
        });
    }
    Ok(Verdict::Drift(Drift::new(
        changes,
        Plan {
            clone: false,
            kind,
            before: head,
            target,
            reset: mods,
            set_url,
        },
    )))
}

/// Runs `cmd`; fails with `what` and git's words unless it succeeds.
async fn must(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    cmd: Cmd,
    what: &str,
) -> Result<Output, ModuleError> {
    ok_or_fail(ctx.run(tr, cmd).await?, what)
}

async fn apply_git(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("git: apply without a plan from check".into()))?;
    let g = GitRun::new(args)?;
    let a = &g.a;
    let v = a.version.as_str();
    // A commit id cannot be fetched shallowly: Ansible ignores `depth` for it too.
    let depth = a
        .depth
        .filter(|d| *d > 0 && p.kind != Kind::Commit)
        .map(|d| d.to_string());
    let named = matches!(p.kind, Kind::Branch | Kind::Tag);
    let mut r = result([("before", Value::from(p.before.clone()))]);
    if p.clone {
        if let Some(parent) = std::path::Path::new(&a.dest).parent()
            && !parent.as_os_str().is_empty()
        {
            ctx.run_ok(tr, mkdir_p(&parent.to_string_lossy())).await?;
        }
        let mut words: Vec<String> = vec!["clone".into()];
        if a.bare {
            words.push("--bare".into());
        } else {
            words.extend(["--origin".into(), a.remote.clone()]);
        }
        let mut branch = false;
        if let Some(d) = &depth {
            words.extend(["--depth".into(), d.clone()]);
            if named {
                words.extend(["--branch".into(), v.to_string()]);
                branch = true;
            }
        }
        if a.single_branch {
            words.push("--single-branch".into());
            if named && !branch {
                words.extend(["--branch".into(), v.to_string()]);
            }
        }
        words.extend(["--".into(), g.url.clone(), a.dest.clone()]);
        must(tr, ctx, g.cmd(words), "Failed to clone").await?;
        if a.bare && a.remote != "origin" {
            must(
                tr,
                ctx,
                g.in_dest(["remote", "add", a.remote.as_str(), g.url.as_str()]),
                "Failed to add the remote",
            )
            .await?;
        }
    } else {
        if p.reset {
            must(
                tr,
                ctx,
                g.in_dest(["reset", "--hard", "HEAD"]),
                "Failed to reset",
            )
            .await?;
            r.insert(
                "msg".into(),
                Value::from(format!(
                    "Local modifications exist in the destination: {}",
                    a.dest
                )),
            );
        }
        if p.set_url {
            must(
                tr,
                ctx,
                g.in_dest(["remote", "set-url", a.remote.as_str(), g.url.as_str()]),
                &format!("Failed to set a new url {} for {}", g.url, a.remote),
            )
            .await?;
        }
        let mut words: Vec<String> = vec!["fetch".into()];
        let refspecs: Vec<String> = match (&depth, &p.kind, a.bare) {
            (_, _, true) => vec![
                "+refs/heads/*:refs/heads/*".into(),
                "+refs/tags/*:refs/tags/*".into(),
            ],
            (Some(d), Kind::Branch, false) => {
                words.extend(["--depth".into(), d.clone()]);
                vec![format!("+refs/heads/{v}:refs/remotes/{}/{v}", a.remote)]
            }
            (Some(d), Kind::Tag, false) => {
                words.extend(["--depth".into(), d.clone()]);
                vec![format!("+refs/tags/{v}:refs/tags/{v}")]
            }
            (Some(d), Kind::Head(_), false) => {
                words.extend(["--depth".into(), d.clone()]);
                Vec::new()
            }
            _ => {
                words.push("--tags".into());
                Vec::new()
            }
        };
        if a.force {
            words.push("--force".into());
        }
        words.push(a.remote.clone());
        words.extend(refspecs);
        must(
            tr,
            ctx,
            g.in_dest(words),
            "Failed to download remote objects and refs",
        )
        .await?;
    }
    if !a.bare {
        let checkout: Vec<String> = match &p.kind {
            Kind::Head(b) if !b.is_empty() => vec![
                "checkout".into(),
                "--force".into(),
                "-B".into(),
                b.clone(),
                format!("{}/{b}", a.remote),
            ],
            Kind::Head(_) => vec!["checkout".into(), "--force".into(), p.target.clone()],
            Kind::Branch => vec![
                "checkout".into(),
                "--force".into(),
                "-B".into(),
                v.to_string(),
                format!("{}/{v}", a.remote),
            ],
            Kind::Tag | Kind::Commit => vec!["checkout".into(), "--force".into(), v.to_string()],
        };
        must(
            tr,
            ctx,
            g.in_dest(checkout),
            &format!("Failed to checkout {v}"),
        )
        .await?;
        if a.recursive {
            must(
                tr,
                ctx,
                g.in_dest(["submodule", "sync", "--recursive"]),
                "Failed to sync submodules",
            )
            .await?;
            let mut words = vec!["submodule", "update", "--init", "--recursive"];
            if a.force {
                words.push("--force");
            }
            must(
                tr,
                ctx,
                g.in_dest(words),
                "Failed to init/update submodules",
            )
            .await?;
        }
    }
    let out = must(
        tr,
        ctx,
        g.in_dest(["rev-parse", "HEAD"]),
        "Failed to read the checkout's commit",
    )
    .await?;
    let after = first_word(&out.stdout_lossy());
    let changed = p.clone || after != p.before || p.reset || p.set_url;
    r.insert("after".into(), Value::from(after));
    r.insert("changed".into(), Value::from(changed));
    if !p.clone {
        r.insert("remote_url_changed".into(), Value::from(p.set_url));
    }
    Ok(r)
}

impl Module for Git {
    fn name(&self) -> &'static str {
        "git"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_git(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_git(tr, args, ctx, drift))
    }

    fn not_reversible(&self, given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        (given("accept_hostkey") || given("accept_newhostkey")).then_some(
            "a host key ssh accepts for the remote stays in the user's known_hosts after a rollback",
        )
    }

    /// The whole checkout (or its absence).
    fn resources(&self, args: &Args) -> Vec<Resource> {
        match args.get("dest") {
            Some(Value::String(d)) => vec![Resource::Tree(d.clone())],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;
    use std::path::Path;
    use std::process::Command;

    /// Runs git in `dir`; its trimmed output.
    fn git(dir: &Path, words: &[&str]) -> String {
        let out = Command::new("git")
            .args(words)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .output()
            .expect("git");
        assert!(out.status.success(), "git {words:?}: {:?}", out);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A bare repository `origin.git` with one commit on `main` (file `app.txt`), pushed from
    /// the work tree `work`; returns (bare path, work path).
    fn origin(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let bare = dir.join("origin.git");
        let work = dir.join("work");
        std::fs::create_dir_all(&bare).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        git(&bare, &["init", "-q", "--bare", "-b", "main"]);
        git(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("app.txt"), "v1\n").unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-q", "-m", "one"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        git(&work, &["push", "-q", "origin", "main"]);
        (bare, work)
    }

    fn commit(work: &Path, text: &str) -> String {
        std::fs::write(work.join("app.txt"), text).unwrap();
        git(work, &["commit", "-q", "-am", text]);
        git(work, &["push", "-q", "origin", "HEAD"]);
        git(work, &["rev-parse", "HEAD"])
    }

    #[tokio::test]
    async fn clone_in_sync_update_local_mods_and_versions() {
        let dir = tempfile::tempdir().unwrap();
        let (bare, work) = origin(dir.path());
        let dest = dir.path().join("deep/checkout");
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let a = args(json!({"repo": bare, "dest": dest}));
        let first = git(&work, &["rev-parse", "HEAD"]);

        // Absent: cloned, before null, after the remote's HEAD.
        let Ran::Applied(ch, Ok(r)) = check_apply(&Git, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(
            ch,
            [Change::Attr {
                subject: dest.display().to_string(),
                what: "version".into(),
                before: "absent".into(),
                after: first.clone()
            }]
        );
        assert_eq!(
            (r["before"].clone(), r["after"].clone()),
            (Value::Null, json!(first))
        );
        assert_eq!(git(&dest, &["rev-parse", "--abbrev-ref", "HEAD"]), "main");
        assert_eq!(
            git(&dest, &["remote", "get-url", "origin"]),
            format!("file://{}", bare.display())
        );

        // Again: in sync.
        let Ran::InSync(r) = check_apply(&Git, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["after"], json!(first));
        assert_eq!(r["remote_url_changed"], json!(false));

        // A new commit on the remote: changed, before/after.
        let second = commit(&work, "v2\n");
        let Ran::Applied(_, Ok(r)) = check_apply(&Git, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(
            (r["before"].clone(), r["after"].clone()),
            (json!(first), json!(second))
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("app.txt")).unwrap(),
            "v2\n"
        );

        // A tag and a commit id as version; an untracked file is no modification.
        git(&work, &["tag", "-a", "-m", "t", "v1.0", &first]);
        git(&work, &["push", "-q", "origin", "v1.0"]);
        std::fs::write(dest.join("untracked"), "x").unwrap();
        let tag = args(json!({"repo": bare, "dest": dest, "version": "v1.0"}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Git, &mut tr, &tag, &c).await else {
            panic!()
        };
        assert_eq!(r["after"], json!(first));
        assert!(matches!(
            check_apply(&Git, &mut tr, &tag, &c).await,
            Ran::InSync(_)
        ));
        let short = args(json!({"repo": bare, "dest": dest, "version": &second[..10]}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Git, &mut tr, &short, &c).await else {
            panic!()
        };
        assert_eq!(r["after"], json!(second));
        assert!(matches!(
            check_apply(&Git, &mut tr, &short, &c).await,
            Ran::InSync(_)
        ));

        // A modified tracked file fails as in Ansible, unless force.
        std::fs::write(dest.join("app.txt"), "local\n").unwrap();
        let Ran::CheckFailed(msg, r) = check_apply(&Git, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(
            msg,
            format!(
                "Local modifications exist in the destination: {} (force=no).",
                dest.display()
            )
        );
        assert_eq!(r["before"], json!(second));
        let forced = args(json!({"repo": bare, "dest": dest, "force": true}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Git, &mut tr, &forced, &c).await else {
            panic!()
        };
        assert_eq!(r["changed"], json!(true));
        assert_eq!(
            std::fs::read_to_string(dest.join("app.txt")).unwrap(),
            "v2\n"
        );

        // update: no leaves it; clone: no leaves an absent dest absent.
        commit(&work, "v3\n");
        let frozen = args(json!({"repo": bare, "dest": dest, "update": false}));
        let Ran::InSync(r) = check_apply(&Git, &mut tr, &frozen, &c).await else {
            panic!()
        };
        assert_eq!(r["after"], json!(second));
        let other = dir.path().join("other");
        let no = args(json!({"repo": bare, "dest": other, "clone": false}));
        assert!(matches!(
            check_apply(&Git, &mut tr, &no, &c).await,
            Ran::InSync(_)
        ));
        assert!(!other.exists());

        // Another URL for the same remote: remote_url_changed.
        let moved = dir.path().join("moved.git");
        std::fs::rename(&bare, &moved).unwrap();
        let m = args(json!({"repo": format!("file://{}", moved.display()), "dest": dest}));
        let Ran::Applied(ch, Ok(r)) = check_apply(&Git, &mut tr, &m, &c).await else {
            panic!()
        };
        assert!(
            ch.iter()
                .any(|c| matches!(c, Change::Attr { what, .. } if what == "remote origin"))
        );
        assert_eq!(r["remote_url_changed"], json!(true));
        assert_eq!(
            std::fs::read_to_string(dest.join("app.txt")).unwrap(),
            "v3\n"
        );

        assert_eq!(
            Git.resources(&a),
            [Resource::Tree(dest.display().to_string())]
        );
        assert!(Git.not_reversible(&|_| false).is_none());
        assert!(Git.not_reversible(&|k| k == "accept_newhostkey").is_some());
    }

    #[tokio::test]
    async fn a_branch_a_bare_clone_and_a_missing_version() {
        let dir = tempfile::tempdir().unwrap();
        let (bare, work) = origin(dir.path());
        git(&work, &["checkout", "-q", "-b", "feature"]);
        let feat = commit(&work, "feature\n");
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let dest = dir.path().join("co");
        let a = args(
            json!({"repo": bare, "dest": dest, "version": "feature", "depth": 1, "single_branch": true}),
        );
        let Ran::Applied(_, Ok(r)) = check_apply(&Git, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["after"], json!(feat));
        assert_eq!(
            git(&dest, &["rev-parse", "--abbrev-ref", "HEAD"]),
            "feature"
        );
        assert_eq!(git(&dest, &["rev-list", "--count", "HEAD"]), "1");
        assert!(matches!(
            check_apply(&Git, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));

        let mirror = dir.path().join("mirror.git");
        let b = args(json!({"repo": bare, "dest": mirror, "bare": true}));
        assert!(matches!(
            check_apply(&Git, &mut tr, &b, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(mirror.join("config").exists() && !mirror.join(".git").exists());
        assert!(matches!(
            check_apply(&Git, &mut tr, &b, &c).await,
            Ran::InSync(_)
        ));

        let empty = dir.path().join("empty.git");
        std::fs::create_dir_all(&empty).unwrap();
        git(&empty, &["init", "-q", "--bare"]);
        let e = args(json!({"repo": empty, "dest": dir.path().join("x")}));
        let Ran::CheckFailed(msg, _) = check_apply(&Git, &mut tr, &e, &c).await else {
            panic!()
        };
        assert_eq!(msg, "Could not determine remote revision for HEAD");
        let both = args(
            json!({"repo": bare, "dest": dest, "accept_hostkey": true, "accept_newhostkey": true}),
        );
        assert!(
            matches!(check_apply(&Git, &mut tr, &both, &c).await, Ran::CheckFailed(m, _) if m.contains("mutually exclusive"))
        );
    }

    #[tokio::test]
    async fn submodules_are_checked_out_and_updated_recursively() {
        let dir = tempfile::tempdir().unwrap();
        let (lib, lib_work) = origin(dir.path());
        let app = dir.path().join("app.git");
        let app_work = dir.path().join("app-work");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::create_dir_all(&app_work).unwrap();
        git(&app, &["init", "-q", "--bare", "-b", "main"]);
        git(&app_work, &["init", "-q", "-b", "main"]);
        let allow = ["-c", "protocol.file.allow=always"];
        let lib_url = lib.to_str().unwrap();
        git(
            &app_work,
            &[&allow[..], &["submodule", "add", "-q", lib_url, "lib"]].concat(),
        );
        git(&app_work, &["commit", "-q", "-m", "with lib"]);
        git(
            &app_work,
            &["remote", "add", "origin", app.to_str().unwrap()],
        );
        git(&app_work, &["push", "-q", "origin", "main"]);
        // git refuses file:// submodules unless told (as it would for Ansible's module).
        let env = vec![
            ("GIT_CONFIG_COUNT".to_string(), "1".to_string()),
            ("GIT_CONFIG_KEY_0".into(), "protocol.file.allow".into()),
            ("GIT_CONFIG_VALUE_0".into(), "always".into()),
        ];
        let c = ctx(dir.path(), None, env);
        let mut tr = transport();
        let dest = dir.path().join("co");
        let a = args(json!({"repo": app, "dest": dest}));
        assert!(matches!(
            check_apply(&Git, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert_eq!(
            std::fs::read_to_string(dest.join("lib/app.txt")).unwrap(),
            "v1\n"
        );
        assert!(matches!(
            check_apply(&Git, &mut tr, &a, &c).await,
            Ran::InSync(_)
        ));

        // The superproject moves its submodule on: both are updated.
        commit(&lib_work, "v2\n");
        git(&app_work.join("lib"), &["pull", "-q", "origin", "main"]);
        git(&app_work, &["commit", "-q", "-am", "lib v2"]);
        git(&app_work, &["push", "-q", "origin", "main"]);
        assert!(matches!(
            check_apply(&Git, &mut tr, &a, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert_eq!(
            std::fs::read_to_string(dest.join("lib/app.txt")).unwrap(),
            "v2\n"
        );
        // A submodule moved by hand is a local modification (`git status` says so), as for
        // Ansible's module; with force it is put back.
        git(&dest.join("lib"), &["checkout", "-q", "HEAD~1"]);
        let ran = check_apply(&Git, &mut tr, &a, &c).await;
        assert!(
            matches!(&ran, Ran::CheckFailed(m, _) if m.starts_with("Local modifications")),
            "{ran:?}"
        );
        let forced = args(json!({"repo": app, "dest": dest, "force": true}));
        let ran = check_apply(&Git, &mut tr, &forced, &c).await;
        let Ran::Applied(ch, Ok(_)) = ran else {
            panic!("{ran:?}")
        };
        assert!(
            ch.iter()
                .any(|c| matches!(c, Change::Attr { what, .. } if what == "submodules"))
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("lib/app.txt")).unwrap(),
            "v2\n"
        );
    }

    #[test]
    fn ssh_command_as_ansible_builds_it() {
        let parse = |v: Value| GitArgs::parse(&args(v)).unwrap();
        let base = json!({"repo": "git@example.org:a/b.git", "dest": "/srv/b"});
        assert_eq!(ssh_command(&parse(base.clone())).unwrap(), None);
        let mut v = base.clone();
        v["key_file"] = json!("/home/d/my key");
        v["accept_newhostkey"] = json!(true);
        assert_eq!(
            ssh_command(&parse(v)).unwrap().as_deref(),
            Some(
                "ssh -i '/home/d/my key' -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"
            )
        );
        let mut v = base;
        v["ssh_opts"] = json!("-o StrictHostKeyChecking=no -p 2222");
        v["accept_hostkey"] = json!(true);
        assert_eq!(
            ssh_command(&parse(v)).unwrap().as_deref(),
            Some("ssh -o StrictHostKeyChecking=no -p 2222")
        );
    }

    #[test]
    fn versions_are_classified_from_ls_remote() {
        let head = "ref: refs/heads/main\tHEAD\nabc\tHEAD\n";
        assert_eq!(
            classify("HEAD", head),
            Some((Kind::Head("main".into()), Some("abc".into())))
        );
        assert_eq!(classify("HEAD", ""), None);
        let refs = "t1\trefs/tags/v1\nc1\trefs/tags/v1^{}\nb1\trefs/heads/v1x\n";
        assert_eq!(classify("v1", refs), Some((Kind::Tag, Some("c1".into()))));
        assert_eq!(
            classify("v1x", refs),
            Some((Kind::Branch, Some("b1".into())))
        );
        assert_eq!(classify("deadbeef", refs), Some((Kind::Commit, None)));
        assert!(has_local_mods(" M app.txt\n?? new\n"));
        assert!(!has_local_mods("?? new\n"));
    }
}
