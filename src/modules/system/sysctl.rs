//! `sysctl`: a kernel parameter in a sysctl file, and its live value.
//!
//! Owns ansible.posix's rules, ported into the pure [`sysctl_plan`]: the file's lines are
//! stripped, the parameter's first line rewritten as `name=value` (later duplicates and, with
//! `absent`, the line itself dropped; other `k = v` lines normalized to `k=v`) and written only
//! when the file's value differs; `yes`/`no` values are `1`/`0`; the live value (`sysctl -e
//! -n`, compared word by word) is set with `sysctl -w` under `sysctl_set`, and the file is
//! applied with `sysctl -p FILE` after any change under `reload`. It must not format shell
//! lines and must not read the run mode.

use serde_json::Value;

use super::common::failed;
use crate::modules::files::common::{EditPlan, edit_apply, edit_verdict, read_text_file};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd};

/// The `sysctl` module.
pub struct Sysctl;

crate::module_args! {
    /// Ensures a kernel parameter's line in a sysctl file, and its live value (`reload`
    /// applies the file, `sysctl_set` sets the value itself).
    #[module(
        name = "sysctl",
        backup = "The sysctl file is backed up (rollback puts it back, or removes it if the step created it), and so is the parameter's live value as /proc/sys shows it: rollback writes it back into /proc/sys in place. Other parameters that `reload` (`sysctl -p FILE`) applies from the file are not recorded.",
        returns = &[],
        examples = "- sysctl:\n    name: net.ipv4.ip_forward\n    value: \"1\"\n    sysctl_set: true"
    )]
    pub struct SysctlArgs {
        /// The parameter (`net.ipv4.ip_forward`).
        #[arg(required, aliases = &["key"])]
        name: String,
        /// Its value (`yes`/`no` are `1`/`0`); required with `present`.
        #[arg(aliases = &["val"])]
        value: Option<String>,
        /// `present` or `absent` (from the file).
        #[arg(default = "present", choices = &["absent", "present"])]
        state: String,
        /// Apply the file with `sysctl -p` after a change.
        #[arg(default = "yes")]
        reload: bool,
        /// Set the live value with `sysctl -w` when it differs.
        #[arg(default = "no")]
        sysctl_set: bool,
        /// Ignore unknown parameters (`sysctl -e`).
        #[arg(default = "no")]
        ignoreerrors: bool,
        /// The file.
        #[arg(default = "/etc/sysctl.conf", kind = Path)]
        sysctl_file: String,
    }
}

/// Ansible's `_parse_value`: booleans as `1`/`0`, else trimmed.
pub fn parse_value(v: &str) -> String {
    match v.to_ascii_lowercase().as_str() {
        "y" | "yes" | "on" | "1" | "true" | "t" | "1.0" => "1".into(),
        "n" | "no" | "off" | "0" | "false" | "f" | "0.0" => "0".into(),
        _ => v.trim().to_string(),
    }
}

/// `_values_is_equal`: the same words in the same order.
fn same_words(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// What [`sysctl_plan`] decided.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SysctlOutcome {
    /// Ansible reports a change.
    pub changed: bool,
    /// The file's new text when it is written.
    pub text: Option<String>,
    /// Set the live value (`sysctl -w`).
    pub set_live: bool,
    /// Apply the file (`sysctl -p`).
    pub reload: bool,
}

/// ansible.posix's `process()` given the live value `proc_value` (`None`: unknown) and the
/// file's text (`None`: no file). `value` is already parsed.
pub fn sysctl_plan(
    name: &str,
    value: &str,
    present: bool,
    reload: bool,
    sysctl_set: bool,
    proc_value: Option<&str>,
    file: Option<&str>,
) -> SysctlOutcome {
    let lines: Vec<&str> = file
        .map(|t| t.lines().map(str::trim).collect())
        .unwrap_or_default();
    let split = |l: &str| -> Option<(String, String)> {
        if l.is_empty() || l.starts_with(['#', ';']) {
            return None;
        }
        let (k, v) = l.split_once('=')?;
        Some((k.trim().to_string(), v.trim().to_string()))
    };
    let file_value = lines
        .iter()
        .filter_map(|l| split(l))
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v)
        .next_back();
    let mut fixed = Vec::new();
    let mut checked: Vec<String> = Vec::new();
    for l in &lines {
        let Some((k, v)) = split(l) else {
            fixed.push(l.to_string());
            continue;
        };
        if checked.contains(&k) {
            continue;
        }
        checked.push(k.clone());
        if k == name {
            if present {
                fixed.push(format!("{k}={value}"));
            }
        } else {
            fixed.push(format!("{k}={v}"));
        }
    }
    if present && !checked.iter().any(|k| k == name) {
        fixed.push(format!("{name}={value}"));
    }
    let mut o = SysctlOutcome::default();
    let mut write = false;
    match (&file_value, present) {
        (None, true) => {
            o.changed = true;
            write = true;
        }
        (None, false) => {}
        (Some(v), false) if !v.is_empty() => {
            o.changed = true;
            write = true;
        }
        (Some(v), _) if v != value => {
            o.changed = true;
            write = true;
        }
        _ if reload && proc_value.is_none_or(|p| !same_words(p, value)) => o.changed = true,
        _ => {}
    }
    if sysctl_set && present {
        match proc_value {
            None => o.changed = true,
            Some(p) if !same_words(p, value) => {
                o.changed = true;
                o.set_live = true;
            }
            _ => {}
        }
    }
    if write {
        o.text = Some(fixed.iter().map(|l| format!("{}\n", l.trim())).collect());
    }
    o.reload = o.changed && reload;
    o
}

/// What `apply` does after the file is written.
struct Plan {
    file: Option<Drift>,
    set: Option<Cmd>,
    reload: Option<Cmd>,
}

/// `sysctl: setting key "...": Invalid argument` on stderr is a failure even with exit 0.
fn stderr_failed(err: &str) -> bool {
    err.lines().any(|l| {
        l.starts_with("sysctl: setting key \"")
            && (l.ends_with("\": Invalid argument") || l.ends_with("\": Read-only file system"))
    })
}

async fn check_sysctl(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = SysctlArgs::parse(args)?;
    let name = a.name.trim().to_string();
    if name.is_empty() {
        return Err(ModuleError::Args("name cannot be blank".into()));
    }
    let present = a.state == "present";
    let value = match &a.value {
        None if present => return Err(ModuleError::Args("value cannot be None".into())),
        Some(v) if present && v.is_empty() => {
            return Err(ModuleError::Args("value cannot be blank".into()));
        }
        v => parse_value(v.as_deref().unwrap_or_default()),
    };
    let out = ctx
        .query(
            tr,
            Cmd::raw("sysctl -e -n")
                .arg(name.clone())
                .env("LC_ALL", "C"),
        )
        .await?;
    let live = (out.status == 0).then(|| out.stdout_lossy().to_string());
    let tf = read_text_file(tr, ctx, &a.sysctl_file).await?;
    let text = tf
        .bytes
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned());
    let o = sysctl_plan(
        &name,
        &value,
        present,
        a.reload,
        a.sysctl_set,
        live.as_deref(),
        text.as_deref(),
    );
    if !o.changed {
        return Ok(Verdict::InSync {
            result: Args::new(),
        });
    }
    let mut changes = Vec::new();
    let mut file = None;
    if let Some(new) = &o.text {
        let v = edit_verdict(
            &a.sysctl_file,
            &tf,
            Some(new.clone().into_bytes()),
            &Args::new(),
            String::new(),
            Args::new(),
        )?;
        if let Verdict::Drift(d) = v {
            changes.extend(d.changes.iter().cloned());
            let p = d
                .plan::<(EditPlan, Args)>()
                .cloned()
                .ok_or_else(|| ModuleError::Args("internal: sysctl plan".into()))?;
            file = Some(Drift::new(Vec::new(), p));
        }
    }
    let e = if a.ignoreerrors { "-e " } else { "" };
    let set = o.set_live.then(|| {
        let c = if e.is_empty() {
            Cmd::raw("sysctl -w")
        } else {
            Cmd::raw("sysctl -e -w")
        };
        c.arg(format!("{name}={value}"))
    });
    let reload = o.reload.then(|| {
        let c = if e.is_empty() {
            Cmd::raw("sysctl -p")
        } else {
            Cmd::raw("sysctl -e -p")
        };
        c.arg(a.sysctl_file.clone())
    });
    if o.set_live || o.reload {
        changes.push(Change::Attr {
            subject: name.clone(),
            what: "value".into(),
            before: live
                .as_deref()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|| "absent".into()),
            after: value.clone(),
        });
    }
    if changes.is_empty() {
        changes.push(Change::Attr {
            subject: name,
            what: "value".into(),
            before: "unknown".into(),
            after: value,
        });
    }
    Ok(Verdict::Drift(Drift::new(
        changes,
        Plan { file, set, reload },
    )))
}

async fn apply_sysctl(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("sysctl: apply without a plan from check".into()))?;
    if let Some(d) = &p.file {
        edit_apply(tr, ctx, d, "backup_file").await?;
    }
    for (cmd, what) in [(&p.set, "setting"), (&p.reload, "reloading")] {
        let Some(cmd) = cmd else { continue };
        let out = ctx.run(tr, cmd.clone().env("LC_ALL", "C")).await?;
        let err = out.stderr_lossy().to_string();
        if out.status != 0 || stderr_failed(&err) {
            let msg = match what {
                "setting" => format!("setting failed: {}{err}", out.stdout_lossy()),
                _ => format!("Failed to reload sysctl: {}{err}", out.stdout_lossy()),
            };
            let mut r = Args::new();
            r.insert("rc".into(), Value::from(out.status));
            return Err(failed(msg, r));
        }
    }
    Ok(Args::new())
}

impl Module for Sysctl {
    fn name(&self) -> &'static str {
        "sysctl"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_sysctl(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_sysctl(tr, ctx, drift))
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        match SysctlArgs::parse(args) {
            Ok(a) => vec![
                Resource::Path(a.sysctl_file),
                Resource::Sysctl(a.name.trim().to_string()),
            ],
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_parsed_as_ansible_parses_them() {
        for (given, want) in [
            ("yes", "1"),
            ("False", "0"),
            (" 4096 ", "4096"),
            ("on", "1"),
        ] {
            assert_eq!(parse_value(given), want, "{given}");
        }
    }

    /// (file before, name, value, present, reload, sysctl_set, live) → (changed, file after,
    /// set, reload), as ansible.posix's sysctl decides.
    #[test]
    fn the_file_and_the_live_value_change_as_ansible_changes_them() {
        type Row<'a> = (
            Option<&'a str>,
            &'a str,
            bool,
            bool,
            bool,
            Option<&'a str>,
            (bool, Option<&'a str>, bool, bool),
        );
        let k = "net.ipv4.ip_forward";
        let table: &[Row] = &[
            // A new line, reloaded.
            (
                None,
                "1",
                true,
                true,
                false,
                Some("0"),
                (true, Some("net.ipv4.ip_forward=1\n"), false, true),
            ),
            // Already there and live: nothing.
            (
                Some("net.ipv4.ip_forward=1\n"),
                "1",
                true,
                true,
                false,
                Some("1\n"),
                (false, None, false, false),
            ),
            // In the file but not live: reload only.
            (
                Some("net.ipv4.ip_forward = 1\n"),
                "1",
                true,
                true,
                false,
                Some("0\n"),
                (true, None, false, true),
            ),
            // Not live, no reload, no sysctl_set: nothing (Ansible only looks at the file).
            (
                Some("net.ipv4.ip_forward=1\n"),
                "1",
                true,
                false,
                false,
                Some("0\n"),
                (false, None, false, false),
            ),
            // sysctl_set sets it.
            (
                Some("net.ipv4.ip_forward=1\n"),
                "1",
                true,
                false,
                true,
                Some("0\n"),
                (true, None, true, false),
            ),
            // Changed in place; other lines normalized, comments kept, duplicates dropped.
            (
                Some(
                    "# forwarding\n  vm.swappiness = 10\nnet.ipv4.ip_forward = 0\nnet.ipv4.ip_forward=0\n",
                ),
                "1",
                true,
                true,
                false,
                Some("0"),
                (
                    true,
                    Some("# forwarding\nvm.swappiness=10\nnet.ipv4.ip_forward=1\n"),
                    false,
                    true,
                ),
            ),
            // Absent removes the line.
            (
                Some("vm.swappiness=10\nnet.ipv4.ip_forward=1\n"),
                "",
                false,
                true,
                false,
                Some("1"),
                (true, Some("vm.swappiness=10\n"), false, true),
            ),
            // Absent and not in the file: nothing.
            (
                Some("vm.swappiness=10\n"),
                "",
                false,
                true,
                false,
                Some("1"),
                (false, None, false, false),
            ),
            // Multi-word values compare word by word.
            (
                Some("net.ipv4.tcp_rmem=4096 87380 6291456\n"),
                "4096 87380 6291456",
                true,
                true,
                true,
                Some("4096\t87380\t6291456\n"),
                (false, None, false, false),
            ),
        ];
        for (i, (file, value, present, reload, set, live, want)) in table.iter().enumerate() {
            let name = if value.contains(' ') {
                "net.ipv4.tcp_rmem"
            } else {
                k
            };
            let o = sysctl_plan(name, value, *present, *reload, *set, *live, *file);
            let got = (o.changed, o.text.as_deref(), o.set_live, o.reload);
            assert_eq!(got, *want, "row {i}");
        }
    }

    #[test]
    fn resources_are_the_file_and_the_live_value() {
        let mut a = Args::new();
        a.insert("name".into(), Value::from("net.ipv4.ip_forward"));
        a.insert("value".into(), Value::from("1"));
        assert_eq!(
            Sysctl.resources(&a),
            vec![
                Resource::Path("/etc/sysctl.conf".into()),
                Resource::Sysctl("net.ipv4.ip_forward".into())
            ]
        );
        assert!(stderr_failed(
            "sysctl: setting key \"net.x\": Invalid argument\n"
        ));
        assert!(!stderr_failed("net.ipv4.ip_forward = 1\n"));
    }
}
