//! `selinux`: the SELinux mode and policy, live and in `/etc/selinux/config`.
//!
//! Owns ansible.posix's rules, ported into the pure [`selinux_plan`] and done through the
//! host's own tools instead of the Python bindings: `getenforce` reads the live mode,
//! `setenforce 0|1` changes it (only between enforcing and permissive: enabling or disabling
//! SELinux needs a reboot, reported as `reboot_required`), the config file's `SELINUX=` and
//! `SELINUXTYPE=` lines are rewritten as Ansible rewrites them, and with `update_kernel_param`
//! `grubby` adds or removes `selinux=0` on every kernel. It must not format shell lines and
//! must not read the run mode.

use serde_json::Value;

use super::common::{bin_path, failed, result};
use crate::modules::files::common::{EditPlan, edit_apply, edit_verdict, read_text_file};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
    output_result,
};
use crate::transport::{AnyTransport, Cmd};

/// The `selinux` module.
pub struct Selinux;

/// Where libselinux reads the loaded policy's type from (whatever `configfile` says).
const SYSTEM_CONFIG: &str = "/etc/selinux/config";

crate::module_args! {
    /// Sets the SELinux mode and policy: `SELINUX=` and `SELINUXTYPE=` in the config file,
    /// and the live mode with `setenforce` when SELinux is enabled (enabling or disabling it
    /// takes a reboot, which rdeploy does not do: the result says `reboot_required`).
    #[module(
        name = "selinux",
        backup = "The config file is backed up: rollback puts it back (the mode and policy the host boots with). The live mode `setenforce` changed is not put back, nor are kernel arguments `grubby` changed (`update_kernel_param`).",
        returns = &[
            ("msg", "what changed, comma-separated"),
            ("configfile", "the config file"),
            ("policy", "the policy"),
            ("state", "the mode asked for"),
            ("reboot_required", "whether the mode asked for takes a reboot"),
        ],
        examples = "- selinux:\n    policy: targeted\n    state: enforcing"
    )]
    pub struct SelinuxArgs {
        /// The policy (`targeted`); required unless `state` is `disabled`.
        policy: Option<String>,
        /// The mode.
        #[arg(required, choices = &["disabled", "enforcing", "permissive"])]
        state: String,
        /// Also add or remove `selinux=0` on every kernel's command line with `grubby`.
        #[arg(default = "no")]
        update_kernel_param: bool,
        /// The config file.
        #[arg(default = "/etc/selinux/config", kind = Path, aliases = &["conf", "file"])]
        configfile: String,
    }
}

/// The host as `check` found it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    /// `getenforce`, lower-cased: `enforcing`, `permissive` or `disabled`.
    pub runtime_state: String,
    /// The loaded policy type as libselinux names it (`SELINUXTYPE` of /etc/selinux/config,
    /// `targeted` when it has none).
    pub runtime_policy: String,
    /// The config file's text.
    pub config: String,
    /// Whether `/etc/selinux/POLICY/policy` exists for the policy asked for.
    pub policy_exists: bool,
    /// With `update_kernel_param`: every kernel enabled (`Some(true)`), every one disabled
    /// (`Some(false)`), or a mix (`None`).
    pub kernel_enabled: Option<bool>,
}

/// What [`selinux_plan`] decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Ansible reports a change.
    pub changed: bool,
    /// The config file's new text, when it changes.
    pub config: Option<String>,
    /// `setenforce` 1 or 0.
    pub setenforce: Option<u8>,
    /// `grubby`: remove `selinux=0` (true) or add it (false).
    pub kernel: Option<bool>,
    /// Ansible's `msg` parts.
    pub msgs: Vec<String>,
    /// Ansible's warnings.
    pub warnings: Vec<String>,
    /// `reboot_required`.
    pub reboot_required: bool,
    /// The policy reported (given, or the config file's).
    pub policy: Option<String>,
}

/// `^KEY=.*$`'s first match in `text`: the part between the first and second `=`, stripped
/// (Ansible's `line.split('=')[1].strip()`).
pub fn config_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix('=')?;
        Some(
            rest.split('=')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
        )
    })
}

/// Ansible's `set_config_state`/`set_config_policy`: every `KEY=` line becomes `KEY=value`,
/// or one is appended; each line is written with a newline.
pub fn set_config(text: &str, key: &str, value: &str) -> String {
    let mut out = String::new();
    let mut found = false;
    for l in text.lines() {
        if l.strip_prefix(key).is_some_and(|r| r.starts_with('=')) {
            found = true;
            out.push_str(&format!("{key}={value}\n"));
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    if !found {
        out.push_str(&format!("{key}={value}\n"));
    }
    out
}

/// ansible.posix's `main()` after the host was read; `Err` is Ansible's failure message.
pub fn selinux_plan(
    policy: Option<&str>,
    state: &str,
    update_kernel_param: bool,
    configfile: &str,
    f: &Found,
) -> Result<Outcome, String> {
    let mut o = Outcome::default();
    let config_policy = config_value(&f.config, "SELINUXTYPE");
    let config_state = config_value(&f.config, "SELINUX");
    let policy = match policy.filter(|p| !p.is_empty()) {
        Some(p) => Some(p.to_string()),
        None if state != "disabled" => {
            return Err("Policy is required if state is not 'disabled'".into());
        }
        None => config_policy.clone(),
    };
    let shown = |p: &Option<String>| p.clone().unwrap_or_else(|| "None".into());
    let mut text = f.config.clone();
    let mut write = false;
    if policy.as_deref() != Some(f.runtime_policy.as_str()) {
        o.msgs.push(format!(
            "Running SELinux policy changed from '{}' to '{}'",
            f.runtime_policy,
            shown(&policy)
        ));
        o.changed = true;
    }
    if policy != config_policy {
        if !f.policy_exists {
            return Err(format!(
                "Policy {} does not exist in /etc/selinux/",
                shown(&policy)
            ));
        }
        text = set_config(&text, "SELINUXTYPE", &shown(&policy));
        write = true;
        o.msgs.push(format!(
            "SELinux policy configuration in '{configfile}' changed from '{}' to '{}'",
            shown(&config_policy),
            shown(&policy)
        ));
        o.changed = true;
    }
    let runtime = f.runtime_state.as_str();
    if state != runtime {
        if runtime != "disabled" {
            if state == "disabled" {
                if runtime != "permissive" {
                    o.setenforce = Some(0);
                    o.warnings.push(format!("SELinux state temporarily changed from '{runtime}' to 'permissive'. State change will take effect next reboot."));
                    o.changed = true;
                } else {
                    o.warnings
                        .push("SELinux state change will take effect next reboot".into());
                }
                o.reboot_required = true;
            } else {
                o.setenforce = Some(u8::from(state == "enforcing"));
                o.msgs.push(format!(
                    "SELinux state changed from '{runtime}' to '{state}'"
                ));
                o.changed = true;
            }
        } else {
            o.warnings.push(format!(
                "Reboot is required to set SELinux state to '{state}'"
            ));
            o.reboot_required = true;
        }
    }
    if Some(state) != config_state.as_deref() {
        text = set_config(&text, "SELINUX", state);
        write = true;
        o.msgs.push(format!(
            "Config SELinux state changed from '{}' to '{state}'",
            shown(&config_state)
        ));
        o.changed = true;
    }
    let requested = state == "enforcing" || state == "permissive";
    if update_kernel_param && f.kernel_enabled != Some(requested) {
        o.kernel = Some(requested);
        let (from, to) = if requested {
            ("disabled", "enabled")
        } else {
            ("enabled", "disabled")
        };
        let from = if f.kernel_enabled.is_none() {
            "<inconsistent>"
        } else {
            from
        };
        o.msgs.push(format!(
            "Kernel SELinux state changed from '{from}' to '{to}'"
        ));
        o.changed = true;
    }
    if write {
        o.config = Some(text);
    }
    o.policy = policy;
    Ok(o)
}

/// `grubby --info=ALL`: `Some(true)` when no kernel has `selinux=0`, `Some(false)` when
/// all have it, `None` for a mix (or no kernel).
pub fn kernel_enabled(info: &str) -> Option<bool> {
    let (mut all_enabled, mut all_disabled) = (true, true);
    for l in info.lines() {
        let Some(args) = l.strip_prefix("args=\"").and_then(|r| r.strip_suffix('"')) else {
            continue;
        };
        if args.split(' ').any(|a| a == "selinux=0") {
            all_enabled = false;
        } else {
            all_disabled = false;
        }
    }
    (all_enabled != all_disabled).then_some(all_enabled)
}

/// What `apply` does.
struct Plan {
    file: Option<Drift>,
    setenforce: Option<Cmd>,
    grubby: Option<(Cmd, bool)>,
    result: Args,
}

async fn check_selinux(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = SelinuxArgs::parse(args)?;
    let getenforce = bin_path(tr, ctx, "getenforce").await?;
    let out = ctx.query(tr, Cmd::argv([getenforce])).await?;
    if out.status != 0 {
        return Err(failed(
            format!("getenforce failed: {}", out.stderr_lossy().trim()),
            output_result(&out),
        ));
    }
    let runtime_state = out.stdout_lossy().trim().to_lowercase();
    let tf = read_text_file(tr, ctx, &a.configfile).await?;
    let Some(bytes) = tf.bytes.as_ref() else {
        return Err(failed(
            format!("Unable to find file {}", a.configfile),
            result([(
                "details",
                Value::from(
                    "Please install SELinux-policy package, if this package is not installed previously.",
                ),
            )]),
        ));
    };
    let config = String::from_utf8_lossy(bytes).into_owned();
    let system = if a.configfile == SYSTEM_CONFIG {
        Some(config.clone())
    } else {
        let s = read_text_file(tr, ctx, SYSTEM_CONFIG).await?;
        s.bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let runtime_policy = system
        .as_deref()
        .and_then(|t| config_value(t, "SELINUXTYPE"))
        .unwrap_or_else(|| "targeted".into());
    let policy_exists = match a.policy.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => ctx
            .query(
                tr,
                Cmd::raw("test -e").arg(format!("/etc/selinux/{p}/policy")),
            )
            .await?
            .success(),
        None => true,
    };
    let mut grubby = None;
    let mut kernel = None;
    if a.update_kernel_param {
        let path = bin_path(tr, ctx, "grubby").await.map_err(|_| {
            failed(
                "'grubby' command not found on host",
                result([(
                    "details",
                    Value::from(
                        "In order to update the kernel command lineenabled/disabled setting, the grubby packageneeds to be present on the system.",
                    ),
                )]),
            )
        })?;
        let out = ctx
            .query(tr, Cmd::argv([path.clone()]).op("--info=ALL"))
            .await?;
        if out.status != 0 {
            return Err(failed("unable to run grubby", output_result(&out)));
        }
        kernel = kernel_enabled(&out.stdout_lossy());
        grubby = Some(path);
    }
    let found = Found {
        runtime_state,
        runtime_policy,
        config,
        policy_exists,
        kernel_enabled: kernel,
    };
    let o = selinux_plan(
        a.policy.as_deref(),
        &a.state,
        a.update_kernel_param,
        &a.configfile,
        &found,
    )
    .map_err(|m| failed(m, Args::new()))?;
    let mut res = result([
        ("msg", Value::from(o.msgs.join(", "))),
        ("configfile", Value::from(a.configfile.clone())),
        ("policy", o.policy.clone().map_or(Value::Null, Value::from)),
        ("state", Value::from(a.state.clone())),
        ("reboot_required", Value::from(o.reboot_required)),
    ]);
    if !o.warnings.is_empty() {
        res.insert("warnings".into(), Value::from(o.warnings.clone()));
    }
    if !o.changed {
        return Ok(Verdict::InSync { result: res });
    }
    let mut changes = Vec::new();
    let mut file = None;
    if let Some(new) = &o.config
        && let Verdict::Drift(d) = edit_verdict(
            &a.configfile,
            &tf,
            Some(new.clone().into_bytes()),
            &Args::new(),
            String::new(),
            Args::new(),
        )?
    {
        changes.extend(d.changes.iter().cloned());
        let p = d
            .plan::<(EditPlan, Args)>()
            .cloned()
            .ok_or_else(|| ModuleError::Args("internal: selinux plan".into()))?;
        file = Some(Drift::new(Vec::new(), p));
    }
    let setenforce = match o.setenforce {
        Some(v) => {
            let path = bin_path(tr, ctx, "setenforce").await?;
            changes.push(Change::Attr {
                subject: "SELinux".into(),
                what: "mode".into(),
                before: found.runtime_state.clone(),
                after: if v == 1 { "enforcing" } else { "permissive" }.into(),
            });
            Some(Cmd::argv([path]).op(if v == 1 { "1" } else { "0" }))
        }
        None => None,
    };
    let grubby = match (o.kernel, grubby) {
        (Some(enable), Some(path)) => {
            changes.push(Change::Attr {
                subject: "kernel command line".into(),
                what: "selinux=0".into(),
                before: match found.kernel_enabled {
                    Some(true) => "absent",
                    Some(false) => "present",
                    None => "inconsistent",
                }
                .into(),
                after: if enable { "absent" } else { "present" }.into(),
            });
            let c = Cmd::argv([path]).op("--update-kernel=ALL");
            let c = if enable {
                c.op("--remove-args")
            } else {
                c.op("--args")
            };
            Some((c.op("selinux=0"), enable))
        }
        _ => None,
    };
    if changes.is_empty() {
        // Only the running policy differs, which cannot change without a reboot.
        changes.push(Change::Attr {
            subject: "SELinux".into(),
            what: "running policy".into(),
            before: found.runtime_policy.clone(),
            after: o.policy.clone().unwrap_or_else(|| "None".into()),
        });
    }
    res.insert("changed".into(), Value::from(true));
    Ok(Verdict::Drift(Drift::new(
        changes,
        Plan {
            file,
            setenforce,
            grubby,
            result: res,
        },
    )))
}

async fn apply_selinux(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("selinux: apply without a plan from check".into()))?;
    // The live mode, then the file (Ansible writes the policy line before setenforce and the
    // state line after it; here both are one write), then the kernel arguments.
    if let Some(c) = &p.setenforce {
        let out = ctx.run(tr, c.clone()).await?;
        if out.status != 0 {
            return Err(failed(
                format!("setenforce failed: {}", out.stderr_lossy().trim()),
                output_result(&out),
            ));
        }
    }
    if let Some(d) = &p.file {
        edit_apply(tr, ctx, d, "backup_file").await?;
    }
    if let Some((c, enable)) = &p.grubby {
        let out = ctx.run(tr, c.clone()).await?;
        if out.status != 0 {
            let msg = if *enable {
                "unable to remove selinux=0 from kernel config"
            } else {
                "unable to add selinux=0 to kernel config"
            };
            return Err(failed(msg, output_result(&out)));
        }
    }
    Ok(p.result.clone())
}

impl Module for Selinux {
    fn name(&self) -> &'static str {
        "selinux"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_selinux(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_selinux(tr, ctx, drift))
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        match SelinuxArgs::parse(args) {
            Ok(a) => vec![Resource::Path(a.configfile)],
            Err(_) => Vec::new(),
        }
    }

    fn not_reversible(&self, given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        Some(if given("update_kernel_param") {
            "rollback restores the SELinux config file only: the live mode setenforce set and the kernel arguments grubby changed stay as the run left them"
        } else {
            "rollback restores the SELinux config file only: the live mode setenforce set stays as the run left it until the next boot"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;

    const CONFIG: &str = "# This file controls the state of SELinux\nSELINUX=enforcing\n# SELINUXTYPE= can take one of these values\nSELINUXTYPE=targeted\n";

    fn found(runtime: &str, config: &str) -> Found {
        Found {
            runtime_state: runtime.into(),
            runtime_policy: "targeted".into(),
            config: config.into(),
            policy_exists: true,
            kernel_enabled: Some(true),
        }
    }

    /// (policy, state, live mode, config) → (changed, new config, setenforce, reboot, msg), as
    /// ansible.posix's selinux decides.
    #[test]
    fn mode_and_policy_change_as_ansible_changes_them() {
        type Row<'a> = (
            Option<&'a str>,
            &'a str,
            &'a str,
            &'a str,
            (bool, Option<&'a str>, Option<u8>, bool, &'a str),
        );
        let table: &[Row] = &[
            // In sync: nothing.
            (
                Some("targeted"),
                "enforcing",
                "enforcing",
                CONFIG,
                (false, None, None, false, ""),
            ),
            // Enforcing → permissive: live and config.
            (
                Some("targeted"),
                "permissive",
                "enforcing",
                CONFIG,
                (
                    true,
                    Some(
                        "# This file controls the state of SELinux\nSELINUX=permissive\n# SELINUXTYPE= can take one of these values\nSELINUXTYPE=targeted\n",
                    ),
                    Some(0),
                    false,
                    "SELinux state changed from 'enforcing' to 'permissive', Config SELinux state changed from 'enforcing' to 'permissive'",
                ),
            ),
            // Live already permissive, config behind: the file only.
            (
                Some("targeted"),
                "permissive",
                "permissive",
                CONFIG,
                (
                    true,
                    Some(
                        "# This file controls the state of SELinux\nSELINUX=permissive\n# SELINUXTYPE= can take one of these values\nSELINUXTYPE=targeted\n",
                    ),
                    None,
                    false,
                    "Config SELinux state changed from 'enforcing' to 'permissive'",
                ),
            ),
            // Disabling an enforcing host: permissive now, disabled after a reboot.
            (
                None,
                "disabled",
                "enforcing",
                CONFIG,
                (
                    true,
                    Some(
                        "# This file controls the state of SELinux\nSELINUX=disabled\n# SELINUXTYPE= can take one of these values\nSELINUXTYPE=targeted\n",
                    ),
                    Some(0),
                    true,
                    "Config SELinux state changed from 'enforcing' to 'disabled'",
                ),
            ),
            // Enabling a disabled host: the file, and a reboot.
            (
                Some("targeted"),
                "enforcing",
                "disabled",
                "SELINUX=disabled\nSELINUXTYPE=targeted",
                (
                    true,
                    Some("SELINUX=enforcing\nSELINUXTYPE=targeted\n"),
                    None,
                    true,
                    "Config SELinux state changed from 'disabled' to 'enforcing'",
                ),
            ),
            // Disabled and asked disabled, file says so: a reboot is still pending? No: in sync.
            (
                None,
                "disabled",
                "disabled",
                "SELINUX=disabled\nSELINUXTYPE=targeted\n",
                (false, None, None, false, ""),
            ),
            // Lines missing are appended.
            (
                Some("targeted"),
                "enforcing",
                "enforcing",
                "# empty\n",
                (
                    true,
                    Some("# empty\nSELINUXTYPE=targeted\nSELINUX=enforcing\n"),
                    None,
                    false,
                    "SELinux policy configuration in '/etc/selinux/config' changed from 'None' to 'targeted', Config SELinux state changed from 'None' to 'enforcing'",
                ),
            ),
        ];
        for (i, (policy, state, live, config, want)) in table.iter().enumerate() {
            let o = selinux_plan(
                *policy,
                state,
                false,
                "/etc/selinux/config",
                &found(live, config),
            )
            .unwrap();
            let got = (
                o.changed,
                o.config.as_deref(),
                o.setenforce,
                o.reboot_required,
                o.msgs.join(", "),
            );
            assert_eq!(
                (got.0, got.1, got.2, got.3, got.4.as_str()),
                *want,
                "row {i}"
            );
        }
        // A new policy must exist; one is required unless disabling; another running policy
        // is a change that only a reboot makes.
        let mut f = found("enforcing", CONFIG);
        f.policy_exists = false;
        assert_eq!(
            selinux_plan(Some("mls"), "enforcing", false, "/etc/selinux/config", &f),
            Err("Policy mls does not exist in /etc/selinux/".into())
        );
        assert_eq!(
            selinux_plan(None, "enforcing", false, "/etc/selinux/config", &f),
            Err("Policy is required if state is not 'disabled'".into())
        );
        f.policy_exists = true;
        let o = selinux_plan(Some("mls"), "enforcing", false, "/etc/selinux/config", &f).unwrap();
        assert_eq!(
            o.msgs[0],
            "Running SELinux policy changed from 'targeted' to 'mls'"
        );
        assert!(o.config.unwrap().contains("\nSELINUXTYPE=mls\n"));
        // The kernel parameter: only when every kernel agrees, and it differs.
        let mut f = found("enforcing", CONFIG);
        let o = selinux_plan(Some("targeted"), "enforcing", true, "x", &f).unwrap();
        assert_eq!(o.kernel, None);
        f.kernel_enabled = None;
        let o = selinux_plan(Some("targeted"), "enforcing", true, "x", &f).unwrap();
        assert_eq!(o.kernel, Some(true));
        assert_eq!(
            o.msgs,
            vec!["Kernel SELinux state changed from '<inconsistent>' to 'enabled'"]
        );
    }

    #[test]
    fn grubby_info_is_read_per_kernel() {
        let both = "index=0\nkernel=\"/boot/vmlinuz-1\"\nargs=\"ro quiet\"\nindex=1\nargs=\"ro selinux=0\"\n";
        assert_eq!(kernel_enabled(both), None);
        assert_eq!(
            kernel_enabled("args=\"ro selinux=0\"\nargs=\"selinux=0\"\n"),
            Some(false)
        );
        assert_eq!(kernel_enabled("args=\"ro quiet\"\n"), Some(true));
        assert_eq!(
            config_value("SELINUX=enforcing # x=y\n", "SELINUX"),
            Some("enforcing # x".into())
        );
        assert_eq!(config_value("SELINUXTYPE=targeted\n", "SELINUX"), None);
    }

    /// Fake `getenforce`/`setenforce` keeping the mode in `$FAKE/mode`.
    fn fake_selinux(bin: &std::path::Path) {
        fake_tool(bin, "getenforce", r#"cat "$FAKE/mode""#);
        fake_tool(
            bin,
            "setenforce",
            r#"echo "setenforce $*" >> "$FAKE/log"
case "$1" in 1) echo Enforcing ;; 0) echo Permissive ;; esac > "$FAKE/mode""#,
        );
    }

    #[tokio::test]
    async fn the_mode_is_set_live_and_in_the_file_once() {
        let (dir, bin, state) = fake_dirs();
        fake_selinux(&bin);
        std::fs::write(state.join("mode"), "Enforcing\n").unwrap();
        let conf = dir.path().join("config");
        std::fs::write(&conf, CONFIG).unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        let a = args(json!({"policy": "targeted", "state": "permissive", "configfile": conf}));
        // Check only: drift, nothing run, file untouched.
        assert_eq!(check_only(&Selinux, &mut tr, &a, &c).await.unwrap(), None);
        assert!(!state.join("log").exists());
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), CONFIG);
        assert_eq!(
            Selinux.resources(&a),
            vec![Resource::Path(conf.display().to_string())]
        );
        let Ran::Applied(ch, Ok(r)) = check_apply(&Selinux, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(ch.len(), 2, "{ch:?}");
        assert_eq!(
            r["msg"],
            json!(
                "SELinux state changed from 'enforcing' to 'permissive', Config SELinux state changed from 'enforcing' to 'permissive'"
            )
        );
        assert_eq!(r["reboot_required"], json!(false));
        assert_eq!(
            std::fs::read_to_string(state.join("log")).unwrap(),
            "setenforce 0\n"
        );
        assert!(
            std::fs::read_to_string(&conf)
                .unwrap()
                .contains("\nSELINUX=permissive\n")
        );
        let Ran::InSync(r) = check_apply(&Selinux, &mut tr, &a, &c).await else {
            panic!()
        };
        assert_eq!(r["msg"], json!(""));
        assert_eq!(r["policy"], json!("targeted"));
        // Errors: a missing file, a missing tool.
        let gone = args(
            json!({"policy": "targeted", "state": "enforcing", "configfile": dir.path().join("nope")}),
        );
        assert!(
            matches!(check_apply(&Selinux, &mut tr, &gone, &c).await, Ran::CheckFailed(m, _) if m.starts_with("Unable to find file "))
        );
        // A host without the tool (unless this machine has it where PATH cannot hide it).
        if !sbin_has("getenforce") {
            let (dir2, bin2, _state2) = fake_dirs();
            // PATH is only the empty fake folder (the machine may have the tool on its PATH).
            let c2 = ctx(
                dir2.path(),
                None,
                vec![("PATH".into(), bin2.display().to_string())],
            );
            let Ran::CheckFailed(m, _) = check_apply(&Selinux, &mut tr, &a, &c2).await else {
                panic!()
            };
            assert!(
                m.starts_with("Failed to find required executable \"getenforce\" in paths: "),
                "{m}"
            );
        }
        assert!(Selinux.not_reversible(&|_| false).is_some());
    }
}
