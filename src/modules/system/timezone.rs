//! `timezone`: sets the system time zone, as community.general's `timezone` on Linux:
//! `timedatectl set-timezone` when timedatectl answers, else the /etc/localtime symlink into
//! /usr/share/zoneinfo and, on Debian (when /etc/timezone exists), /etc/timezone.
//!
//! Owns reading the current zone in one round trip and planning the commands
//! ([`plan_timezone`], pure, table-tested). The hardware clock (`hwclock`) is not an argument:
//! rdeploy refuses it. It must not format shell lines.

use serde_json::Value;

use super::common::failed;
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// `timezone`.
pub struct Timezone;

crate::module_args! {
    /// Sets the system time zone: `timedatectl set-timezone` when timedatectl answers, else the
    /// /etc/localtime link and /etc/timezone (when it exists). Unlike community.general's
    /// module, `hwclock` is refused (rdeploy does not change the hardware clock).
    #[module(
        name = "timezone",
        backup = "Backs up /etc/localtime and /etc/timezone; rollback puts the link and the file back as they were before the step.",
        returns = &[("name", "the zone set"), ("diff", "before and after zone names")],
        examples = "- timezone:\n    name: Europe/Paris\n  become: true"
    )]
    pub struct TimezoneArgs {
        /// The zone, as under /usr/share/zoneinfo (`Europe/Paris`, `Etc/UTC`).
        #[arg(required)]
        name: String,
    }
}

/// What `check` read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Zone {
    /// The zone /etc/localtime points at (`Etc/UTC`), empty when it is not such a link.
    pub link: String,
    /// /etc/timezone's first line, when the file exists.
    pub file: Option<String>,
    /// `timedatectl show -p Timezone --value`, when timedatectl answers.
    pub systemd: Option<String>,
    /// Whether /usr/share/zoneinfo/NAME exists.
    pub known: bool,
}

/// Links /etc/localtime to `$1`.
const LINK: &str = "; ln -sfn \"$1\" /etc/localtime";
/// Writes `$1` as /etc/timezone.
const WRITE_FILE: &str = "; printf '%s\\n' \"$1\" > /etc/timezone";

/// The current zone as the module reports it.
fn current(z: &Zone) -> String {
    z.systemd.clone().unwrap_or_else(|| z.link.clone())
}

/// The commands that set zone `name`, empty when it is set already.
pub fn plan_timezone(name: &str, z: &Zone) -> Result<Vec<Cmd>, ModuleError> {
    let mut cmds = Vec::new();
    if z.systemd.is_some() {
        if z.systemd.as_deref() != Some(name) {
            cmds.push(Cmd::raw("timedatectl set-timezone").arg(name));
        }
    } else if z.link != name {
        cmds.push(
            Cmd::raw("set --")
                .arg(format!("/usr/share/zoneinfo/{name}"))
                .op(LINK),
        );
    }
    if let Some(f) = &z.file
        && f != name
    {
        cmds.push(Cmd::raw("set --").arg(name).op(WRITE_FILE));
    }
    if !cmds.is_empty() && !z.known {
        return Err(failed(
            format!("given timezone \"{name}\" is not available (no /usr/share/zoneinfo/{name})"),
            Args::new(),
        ));
    }
    Ok(cmds)
}

/// Prints the zone /etc/localtime links to (relative to a zoneinfo folder), or nothing.
const READ_LINK: &str = r#"l_=$(readlink /etc/localtime 2>/dev/null) || exit 0
case $l_ in */zoneinfo/*) printf '%s\n' "${l_#*/zoneinfo/}" ;; esac"#;

async fn check_timezone(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = TimezoneArgs::parse(args)?;
    if a.name.is_empty() || a.name.contains("..") || a.name.starts_with(['/', '-']) {
        return Err(ModuleError::Args(format!("invalid time zone '{}'", a.name)));
    }
    let cmds = [
        Cmd::raw(READ_LINK),
        Cmd::raw("head -n 1 /etc/timezone"),
        Cmd::raw("timedatectl show -p Timezone --value"),
        Cmd::raw("test -f").arg(format!("/usr/share/zoneinfo/{}", a.name)),
    ];
    let outs = ctx
        .read(tr, &cmds, 1 << 16)
        .await?
        .map_err(|e| failed(format!("reading the time zone failed: {e}"), Args::new()))?;
    let [link, file, sd, known] = <[_; 4]>::try_from(outs).map_err(|_| {
        failed(
            "reading the time zone returned too few outputs",
            Args::new(),
        )
    })?;
    let line = |o: &crate::transport::Output| o.stdout_lossy().trim().to_string();
    let z = Zone {
        link: line(&link),
        file: (file.status == 0).then(|| line(&file)),
        systemd: (sd.status == 0 && !line(&sd).is_empty()).then(|| line(&sd)),
        known: known.status == 0,
    };
    let cmds = plan_timezone(&a.name, &z)?;
    let before = current(&z);
    if cmds.is_empty() {
        return Ok(Verdict::InSync {
            result: result_of(&a.name, &before),
        });
    }
    let change = Change::Attr {
        subject: "timezone".into(),
        what: "name".into(),
        before,
        after: a.name.clone(),
    };
    Ok(Verdict::Drift(Drift::new(
        vec![change],
        (cmds, current(&z)),
    )))
}

fn result_of(name: &str, before: &str) -> Args {
    let mut r = Args::new();
    r.insert("name".into(), Value::from(name));
    r.insert(
        "diff".into(),
        serde_json::json!({"before": {"name": before}, "after": {"name": name}}),
    );
    r
}

async fn apply_timezone(
    tr: &mut AnyTransport,
    args: &Args,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let a = TimezoneArgs::parse(args)?;
    let (cmds, before) = drift
        .plan::<(Vec<Cmd>, String)>()
        .ok_or_else(|| ModuleError::Args("timezone: apply without a plan from check".into()))?;
    for c in cmds {
        ctx.run_ok(tr, c.clone()).await?;
    }
    Ok(result_of(&a.name, before))
}

impl Module for Timezone {
    fn name(&self) -> &'static str {
        "timezone"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_timezone(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_timezone(tr, args, ctx, drift))
    }

    /// The link and the Debian file (timedatectl changes the link too).
    fn resources(&self, _args: &Args) -> Vec<Resource> {
        vec![
            Resource::Path("/etc/localtime".into()),
            Resource::Path("/etc/timezone".into()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(link: &str, file: Option<&str>, systemd: Option<&str>) -> Zone {
        Zone {
            link: link.into(),
            file: file.map(str::to_string),
            systemd: systemd.map(str::to_string),
            known: true,
        }
    }

    #[test]
    fn commands_for_each_host_state() {
        let p = "Europe/Paris";
        let cases: Vec<(Zone, Vec<&str>)> = vec![
            (zone(p, Some(p), None), vec![]),
            (zone(p, None, None), vec![]),
            (
                zone("Etc/UTC", Some("Etc/UTC"), None),
                vec![
                    "set -- '/usr/share/zoneinfo/Europe/Paris' ; ln -sfn \"$1\" /etc/localtime",
                    "set -- 'Europe/Paris' ; printf '%s\\n' \"$1\" > /etc/timezone",
                ],
            ),
            (
                zone("Etc/UTC", None, Some("Etc/UTC")),
                vec!["timedatectl set-timezone 'Europe/Paris'"],
            ),
            (zone("x", None, Some(p)), vec![]),
        ];
        for (z, want) in cases {
            let got: Vec<String> = plan_timezone(p, &z)
                .unwrap()
                .iter()
                .map(Cmd::display)
                .collect();
            assert_eq!(got, want, "{z:?}");
        }
        let mut unknown = zone("Etc/UTC", None, None);
        unknown.known = false;
        let e = plan_timezone("Mars/Olympus", &unknown).unwrap_err();
        assert!(e.to_string().contains("not available"), "{e}");
    }
}
