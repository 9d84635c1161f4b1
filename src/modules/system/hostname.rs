//! `hostname`: sets the host's name, now and at boot, as Ansible's `hostname` module does with
//! its `systemd` strategy (`hostnamectl set-hostname`) or its file strategy (`debian`:
//! /etc/hostname, then `hostname NAME`).
//!
//! Owns reading the current and permanent names in one round trip, choosing the strategy
//! (`systemd` when `hostnamectl` answers, else the file), and planning the commands
//! ([`plan_hostname`], pure, table-tested). It must not format shell lines.

use serde_json::Value;

use super::common::{failed, plain_name};
use super::repofile::{self, FileEdit};
use crate::modules::files::common::WantAttrs;
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// `hostname`.
pub struct Hostname;

crate::module_args! {
    /// Sets the host name now and at boot: `hostnamectl set-hostname` (strategy `systemd`,
    /// chosen when hostnamectl answers), else /etc/hostname and `hostname NAME` (strategy
    /// `debian`). Unlike Ansible, `use` is not supported (the strategy is detected), and the result's `ansible_facts` carry `ansible_hostname` and
    /// `ansible_nodename` only (no DNS lookup for the fqdn).
    #[module(
        name = "hostname",
        backup = "Backs up /etc/hostname; rollback restores that file, not the running host name (it takes effect at the next boot, or with `hostname -F /etc/hostname`).",
        returns = &[("name", "the name set"), ("ansible_facts", "ansible_hostname and ansible_nodename")],
        examples = "- hostname:\n    name: web01\n  become: true"
    )]
    pub struct HostnameArgs {
        /// The host name.
        #[arg(required)]
        name: String,
    }
}

/// The file the name is kept in.
const HOSTNAME: &str = "/etc/hostname";

/// What `check` read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Names {
    /// `hostname`.
    pub current: String,
    /// /etc/hostname's first line (empty when missing).
    pub file: String,
    /// `hostnamectl --static`, when hostnamectl answers.
    pub systemd: Option<String>,
}

/// What sets the name: /etc/hostname rewritten as `NAME` (the file strategy, when it differs),
/// then these commands.
#[derive(Debug, Default, PartialEq)]
pub struct HostnamePlan {
    /// /etc/hostname is written.
    pub write_file: bool,
    /// `hostnamectl set-hostname`, or `hostname NAME`.
    pub cmds: Vec<Cmd>,
}

/// What sets `name` (with hostnamectl when it answered, else the file), with the changes
/// shown; nothing when the host already has that name.
pub fn plan_hostname(name: &str, n: &Names) -> (HostnamePlan, Vec<Change>) {
    let systemd = n.systemd.is_some();
    let permanent = if systemd {
        n.systemd.clone().unwrap_or_default()
    } else {
        n.file.clone()
    };
    let mut plan = HostnamePlan::default();
    let mut changes = Vec::new();
    if n.current != name || permanent != name {
        let before = if n.current != name {
            &n.current
        } else {
            &permanent
        };
        changes.push(Change::Attr {
            subject: "hostname".into(),
            what: "name".into(),
            before: before.clone(),
            after: name.to_string(),
        });
        if systemd {
            plan.cmds
                .push(Cmd::raw("hostnamectl set-hostname").arg(name));
        } else {
            plan.write_file = permanent != name;
            if n.current != name {
                plan.cmds.push(Cmd::raw("hostname").arg(name));
            }
        }
    }
    (plan, changes)
}

/// What `apply` does: the file's edit (read in `check`) and the commands.
struct Plan {
    edit: Option<FileEdit>,
    cmds: Vec<Cmd>,
}

fn result_of(name: &str) -> Args {
    let mut facts = Args::new();
    let short = name.split('.').next().unwrap_or(name);
    facts.insert("ansible_hostname".into(), Value::from(short));
    facts.insert("ansible_nodename".into(), Value::from(name));
    let mut r = Args::new();
    r.insert("name".into(), Value::from(name));
    r.insert("ansible_facts".into(), Value::Object(facts));
    r
}

async fn check_hostname(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = HostnameArgs::parse(args)?;
    plain_name("host", &a.name)?;
    let cmds = [
        Cmd::raw("hostname"),
        Cmd::raw("head -n 1 /etc/hostname"),
        Cmd::raw("hostnamectl --static"),
    ];
    let outs = ctx
        .read(tr, &cmds, 1 << 16)
        .await?
        .map_err(|e| failed(format!("reading the host name failed: {e}"), Args::new()))?;
    let [cur, file, sd] = <[_; 3]>::try_from(outs).map_err(|_| {
        failed(
            "reading the host name returned too few outputs",
            Args::new(),
        )
    })?;
    let line = |o: &crate::transport::Output| o.stdout_lossy().trim().to_string();
    let names = Names {
        current: line(&cur),
        file: if file.status == 0 {
            line(&file)
        } else {
            String::new()
        },
        systemd: (sd.status == 0).then(|| line(&sd)),
    };
    let (plan, changes) = plan_hostname(&a.name, &names);
    if plan == HostnamePlan::default() {
        return Ok(Verdict::InSync {
            result: result_of(&a.name),
        });
    }
    // The file as the module writes every file: temporary file and rename, through a link
    // to where it points, mode and owner kept.
    let edit = if plan.write_file {
        let tf = repofile::read(tr, ctx, HOSTNAME).await?;
        repofile::plan_write(
            HOSTNAME,
            &tf,
            format!("{}\n", a.name).into_bytes(),
            &WantAttrs::default(),
        )?
        .map(|(_, e)| e)
    } else {
        None
    };
    Ok(Verdict::Drift(Drift::new(
        changes,
        Plan {
            edit,
            cmds: plan.cmds,
        },
    )))
}

async fn apply_hostname(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let a = HostnameArgs::parse(args)?;
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("hostname: apply without a plan from check".into()))?;
    if let Some(e) = &p.edit {
        repofile::apply(tr, ctx, e).await?;
    }
    for c in &p.cmds {
        ctx.run_ok(tr, c.clone()).await?;
    }
    Ok(result_of(&a.name))
}

impl Module for Hostname {
    fn name(&self) -> &'static str {
        "hostname"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_hostname(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_hostname(tr, args, ctx, drift))
    }

    /// /etc/hostname (both strategies write it).
    fn resources(&self, _args: &Args) -> Vec<Resource> {
        vec![Resource::Path(HOSTNAME.into())]
    }

    fn not_reversible(&self, _given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        Some(
            "rollback restores /etc/hostname, not the running host name (run `hostname -F /etc/hostname` or reboot)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(current: &str, file: &str, systemd: Option<&str>) -> Names {
        Names {
            current: current.into(),
            file: file.into(),
            systemd: systemd.map(str::to_string),
        }
    }

    #[test]
    fn commands_for_each_strategy_and_state() {
        let cases: Vec<(Names, bool, Vec<&str>)> = vec![
            (names("web01", "web01", None), false, vec![]),
            (names("old", "old", None), true, vec!["hostname 'web01'"]),
            (names("old", "web01", None), false, vec!["hostname 'web01'"]),
            (names("web01", "old", None), true, vec![]),
            (
                names("old", "old", Some("old")),
                false,
                vec!["hostnamectl set-hostname 'web01'"],
            ),
            (names("web01", "x", Some("web01")), false, vec![]),
        ];
        for (n, write, want) in cases {
            let (plan, changes) = plan_hostname("web01", &n);
            let got: Vec<String> = plan.cmds.iter().map(Cmd::display).collect();
            assert_eq!(plan.write_file, write, "{n:?}");
            assert_eq!(got, want, "{n:?}");
            assert_eq!(changes.is_empty(), want.is_empty() && !write);
        }
        assert_eq!(
            result_of("web01.example.com")["ansible_facts"]["ansible_hostname"],
            "web01"
        );
    }
}
