//! `group`: manages a local group with `groupadd`/`groupmod`/`groupdel`, as Ansible's `group`
//! module on Linux.
//!
//! Owns reading the group (`getent group`), planning the one command Ansible would run
//! ([`plan_group`], pure, table-tested) and the result keys. It must not format shell lines.

use serde_json::Value;

use super::accounts::{GroupEnt, account_files, parse_groups};
use super::common::{failed, plain_name};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// `group`.
pub struct Group;

crate::module_args! {
    /// Manages a local group (groupadd/groupmod/groupdel), as Ansible's `group` on Linux.
    #[module(
        name = "group",
        backup = "Backs up /etc/passwd, /etc/shadow, /etc/group, /etc/gshadow, /etc/subuid and /etc/subgid; rollback restores /etc/passwd, /etc/shadow, /etc/group and /etc/gshadow as they were before the step (changes made by others in between are undone too).",
        returns = &[("name", "the group"), ("state", "present or absent"), ("gid", "its gid (present)"), ("system", "the `system` argument (present)")],
        examples = "- group:\n    name: docker\n    gid: 1750\n  become: true"
    )]
    pub struct GroupArgs {
        /// The group's name.
        #[arg(required)]
        name: String,
        /// Whether the group should exist.
        #[arg(default = "present", choices = &["absent", "present"])]
        state: String,
        /// The group id.
        gid: Option<i64>,
        /// Create a system group (`groupadd -r`); only on creation.
        #[arg(default = "no")]
        system: bool,
        /// Allow a gid that is not unique (`-o`, requires `gid`).
        #[arg(default = "no")]
        non_unique: bool,
        /// With `state: absent`: `groupdel -f` (delete even a user's primary group).
        #[arg(default = "no")]
        force: bool,
    }
}

/// The one command that brings the group to `a` (and the change shown), or `None` in sync.
pub fn plan_group(
    a: &GroupArgs,
    groups: &[GroupEnt],
) -> Result<Option<(Cmd, Change)>, ModuleError> {
    if a.non_unique && a.gid.is_none() {
        return Err(ModuleError::Args(
            "non_unique is True but all of the following are missing: gid".into(),
        ));
    }
    let n = a.name.as_str();
    let cur = groups.iter().find(|g| g.name == n);
    let change = |what: &str, before: String, after: String| Change::Attr {
        subject: n.to_string(),
        what: what.to_string(),
        before,
        after,
    };
    Ok(match (a.state.as_str(), cur) {
        ("absent", None) => None,
        ("absent", Some(_)) => {
            let mut c = Cmd::raw("groupdel");
            if a.force {
                c = c.op("-f");
            }
            Some((
                c.op("--").arg(n),
                change("state", "present".into(), "absent".into()),
            ))
        }
        (_, None) => {
            let mut c = Cmd::raw("groupadd");
            if let Some(g) = a.gid {
                c = c.op("-g").arg(g.to_string());
                if a.non_unique {
                    c = c.op("-o");
                }
            }
            if a.system {
                c = c.op("-r");
            }
            Some((
                c.op("--").arg(n),
                change("state", "absent".into(), "present".into()),
            ))
        }
        (_, Some(g)) => match a.gid.filter(|w| *w != g.gid) {
            None => None,
            Some(w) => {
                let mut c = Cmd::raw("groupmod").op("-g").arg(w.to_string());
                if a.non_unique {
                    c = c.op("-o");
                }
                Some((
                    c.op("--").arg(n),
                    change("gid", g.gid.to_string(), w.to_string()),
                ))
            }
        },
    })
}

async fn read_groups(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
) -> Result<Vec<GroupEnt>, ModuleError> {
    let out = ctx
        .read(tr, &[Cmd::raw("getent group")], 1 << 20)
        .await?
        .map_err(|e| failed(format!("reading the groups failed: {e}"), Args::new()))?;
    let out = out
        .into_iter()
        .next()
        .ok_or_else(|| failed("reading the groups returned no output", Args::new()))?;
    if out.status != 0 {
        return Err(failed(
            format!(
                "`getent group` exited {}: {}",
                out.status,
                out.stderr_lossy().trim()
            ),
            Args::new(),
        ));
    }
    Ok(parse_groups(&out.stdout_lossy()))
}

fn result_of(a: &GroupArgs, groups: &[GroupEnt]) -> Args {
    let mut r = Args::new();
    r.insert("name".into(), Value::from(a.name.clone()));
    r.insert("state".into(), Value::from(a.state.clone()));
    if let Some(g) = groups.iter().find(|g| g.name == a.name) {
        r.insert("system".into(), Value::from(a.system));
        r.insert("gid".into(), Value::from(g.gid));
    }
    r
}

async fn check_group(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = GroupArgs::parse(args)?;
    plain_name("group", &a.name)?;
    let groups = read_groups(tr, ctx).await?;
    Ok(match plan_group(&a, &groups)? {
        None => Verdict::InSync {
            result: result_of(&a, &groups),
        },
        Some((cmd, change)) => Verdict::Drift(Drift::new(vec![change], cmd)),
    })
}

async fn apply_group(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let a = GroupArgs::parse(args)?;
    let cmd = drift
        .plan::<Cmd>()
        .ok_or_else(|| ModuleError::Args("group: apply without a plan from check".into()))?;
    let out = ctx.run(tr, cmd.clone()).await?;
    if out.status != 0 {
        let mut r = Args::new();
        r.insert("name".into(), Value::from(a.name.clone()));
        let err = out.stderr_lossy().trim().to_string();
        return Err(failed(
            if err.is_empty() {
                format!("`{}` exited {}", cmd.display(), out.status)
            } else {
                err
            },
            r,
        ));
    }
    let groups = read_groups(&mut HostView::of(tr), ctx).await?;
    let mut r = result_of(&a, &groups);
    for (k, v) in [
        ("stdout", out.stdout_lossy()),
        ("stderr", out.stderr_lossy()),
    ] {
        if !v.is_empty() {
            r.insert(k.into(), Value::from(v.into_owned()));
        }
    }
    Ok(r)
}

impl Module for Group {
    fn name(&self) -> &'static str {
        "group"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_group(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_group(tr, args, ctx, drift))
    }

    /// The account files (groupmod -g also rewrites users' primary gid in /etc/passwd).
    fn resources(&self, _args: &Args) -> Vec<Resource> {
        account_files()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_for_each_host_state() {
        let groups = parse_groups("root:x:0:\ndocker:x:999:alice\n");
        let cases: Vec<(serde_json::Value, Result<Option<&str>, &str>)> = vec![
            (json!({"name": "docker"}), Ok(None)),
            (json!({"name": "docker", "gid": 999}), Ok(None)),
            (
                json!({"name": "docker", "gid": 1750}),
                Ok(Some("groupmod -g '1750' -- 'docker'")),
            ),
            (
                json!({"name": "app", "gid": 0, "non_unique": true}),
                Ok(Some("groupadd -g '0' -o -- 'app'")),
            ),
            (
                json!({"name": "app", "system": true}),
                Ok(Some("groupadd -r -- 'app'")),
            ),
            (
                json!({"name": "app", "non_unique": true}),
                Err("missing: gid"),
            ),
            (
                json!({"name": "docker", "state": "absent", "force": true}),
                Ok(Some("groupdel -f -- 'docker'")),
            ),
            (json!({"name": "app", "state": "absent"}), Ok(None)),
        ];
        for (args, want) in cases {
            let a = GroupArgs::parse(args.as_object().unwrap()).unwrap();
            let got = plan_group(&a, &groups).map(|p| p.map(|(c, _)| c.display()));
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g.as_deref(), w, "{args}"),
                (Err(g), Err(w)) => assert!(g.to_string().contains(w), "{args}: {g}"),
                (g, w) => panic!("{args}: {g:?} vs {w:?}"),
            }
        }
        let a = GroupArgs::parse(json!({"name": "docker"}).as_object().unwrap()).unwrap();
        let r = result_of(&a, &groups);
        assert_eq!(r["gid"], json!(999));
        assert_eq!(r["system"], json!(false));
    }
}
