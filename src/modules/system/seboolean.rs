//! `seboolean`: an SELinux boolean's value, live and (with `persistent`) in the policy store.
//!
//! Owns ansible.posix's rules, done through the host's own tools instead of the Python
//! bindings: `getsebool NAME` reads the live value (and says when SELinux is disabled),
//! `semanage boolean -l -n` the persistent one, `setsebool [-P] NAME on|off` sets it. With
//! `persistent` the persistent value is what is compared, as Ansible compares it (the live
//! value when the host has no `semanage`). Nothing is backed up: rollback cannot undo a
//! change ([`Module::not_reversible`]). It must not format shell lines and must not read the
//! run mode.

use serde_json::Value;

use super::common::{bin_path, failed, result};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
    output_result,
};
use crate::transport::{AnyTransport, Cmd};

/// The `seboolean` module.
pub struct SeBoolean;

crate::module_args! {
    /// Sets an SELinux boolean (`setsebool`, with `-P` when `persistent`). Not reversible:
    /// rdeploy does not record the boolean's value before the change, so rollback leaves it
    /// as the run set it (`rdeploy plan` says so).
    #[module(
        name = "seboolean",
        backup = "Nothing: the boolean's live and persistent values are not recorded, so rollback does not undo a setsebool.",
        returns = &[
            ("name", "the boolean"),
            ("persistent", "whether the value was made to survive a reboot"),
            ("state", "the value asked for"),
        ],
        examples = "- seboolean:\n    name: httpd_can_network_connect\n    state: true\n    persistent: true"
    )]
    pub struct SeBooleanArgs {
        /// The boolean.
        #[arg(required)]
        name: String,
        /// Make the value survive a reboot (`setsebool -P`); the persistent value is then
        /// what is compared.
        #[arg(default = "no")]
        persistent: bool,
        /// The value the boolean must have.
        #[arg(required)]
        state: bool,
        /// Do not fail when SELinux is disabled (a chroot): the live value is then left
        /// alone, a persistent one is still set.
        #[arg(default = "no")]
        ignore_selinux_state: bool,
    }
}

/// `semanage boolean -l -n`, found as `get_bin_path` finds a tool (PATH, then the sbin
/// folders); exits 127 when the host has no semanage.
const SEMANAGE_LIST: &str = "PATH=$PATH:/sbin:/usr/sbin:/usr/local/sbin; export PATH; command -v semanage >/dev/null 2>&1 || exit 127; semanage boolean -l -n";

/// What `getsebool NAME` said.
#[derive(Debug, PartialEq)]
pub enum Live {
    /// The boolean's live value.
    Value(bool),
    /// SELinux is disabled on the host.
    Disabled,
    /// The boolean is unknown (or could not be read).
    Unknown,
}

/// Reads `getsebool NAME`'s output: `NAME --> on` (a pending value may follow).
pub fn parse_getsebool(status: i32, stdout: &str, stderr: &str) -> Live {
    if stdout.contains("SELinux is disabled") || stderr.contains("SELinux is disabled") {
        return Live::Disabled;
    }
    if status != 0 {
        return Live::Unknown;
    }
    match stdout
        .split_once("-->")
        .and_then(|(_, v)| v.split_whitespace().next())
    {
        Some("on") => Live::Value(true),
        Some("off") => Live::Value(false),
        _ => Live::Unknown,
    }
}

/// The persistent value of `name` in `semanage boolean -l -n`'s listing (`name (on , off)
/// description`: the live value, then the persistent one).
pub fn parse_semanage(listing: &str, name: &str) -> Option<bool> {
    listing.lines().find_map(|l| {
        let (n, rest) = l.trim_start().split_once(char::is_whitespace)?;
        if n != name {
            return None;
        }
        let inner = rest.trim_start().strip_prefix('(')?.split(')').next()?;
        match inner.split(',').nth(1)?.trim() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        }
    })
}

/// What `apply` runs.
struct Plan {
    cmd: Cmd,
    failure: String,
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Python's `str()` of a bool, as Ansible's messages print it.
fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

async fn check_bool(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = SeBooleanArgs::parse(args)?;
    let getsebool = bin_path(tr, ctx, "getsebool").await?;
    let out = ctx
        .query(tr, Cmd::argv([getsebool]).arg(a.name.clone()))
        .await?;
    let live = parse_getsebool(out.status, &out.stdout_lossy(), &out.stderr_lossy());
    if live == Live::Disabled && !a.ignore_selinux_state {
        return Err(failed("SELinux is disabled on this host.", Args::new()));
    }
    let done = result([
        ("name", Value::from(a.name.clone())),
        ("persistent", Value::from(a.persistent)),
        ("state", Value::from(a.state)),
    ]);
    let current = if a.persistent {
        // The persistent value, as Ansible reads it through libsemanage; without semanage the
        // live value stands for it.
        let semanage = ctx.query(tr, Cmd::raw(SEMANAGE_LIST)).await?;
        match (semanage.status, &live) {
            (0, _) => match parse_semanage(&semanage.stdout_lossy(), &a.name) {
                Some(v) => v,
                None => {
                    return Err(failed(
                        format!(
                            "SELinux boolean {} is not defined in persistent policy",
                            a.name
                        ),
                        output_result(&semanage),
                    ));
                }
            },
            (127, Live::Value(v)) => *v,
            (127, Live::Disabled) => {
                return Err(failed(
                    format!(
                        "Failed to manage policy for boolean {}: SELinux is disabled and the host has no semanage to read the persistent policy",
                        a.name
                    ),
                    Args::new(),
                ));
            }
            (127, _) => {
                return Err(failed(
                    format!("Failed to determine current state for boolean {}", a.name),
                    output_result(&out),
                ));
            }
            _ => {
                return Err(failed(
                    format!(
                        "Failed to manage policy for boolean {}: {}",
                        a.name,
                        semanage.stderr_lossy().trim()
                    ),
                    output_result(&semanage),
                ));
            }
        }
    } else {
        match live {
            Live::Value(v) => v,
            // ignore_selinux_state on a disabled host: Ansible leaves the live value alone.
            Live::Disabled => return Ok(Verdict::InSync { result: done }),
            Live::Unknown => {
                return Err(failed(
                    format!("Failed to determine current state for boolean {}", a.name),
                    output_result(&out),
                ));
            }
        }
    };
    if current == a.state {
        return Ok(Verdict::InSync { result: done });
    }
    let setsebool = bin_path(tr, ctx, "setsebool").await?;
    let (cmd, failure) = if a.persistent {
        (
            Cmd::argv([setsebool]).op("-P"),
            format!("Failed to manage policy for boolean {}", a.name),
        )
    } else {
        (
            Cmd::argv([setsebool]),
            format!("Failed to set boolean {} to {}", a.name, py_bool(a.state)),
        )
    };
    let cmd = cmd.arg(a.name.clone()).arg(on_off(a.state));
    let change = Change::Attr {
        subject: format!("SELinux boolean {}", a.name),
        what: if a.persistent {
            "persistent value".into()
        } else {
            "value".into()
        },
        before: on_off(current).into(),
        after: on_off(a.state).into(),
    };
    Ok(Verdict::Drift(Drift::new(
        vec![change],
        (Plan { cmd, failure }, done),
    )))
}

async fn apply_bool(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let (plan, done) = drift
        .plan::<(Plan, Args)>()
        .ok_or_else(|| ModuleError::Args("seboolean: apply without a plan from check".into()))?;
    let out = ctx.run(tr, plan.cmd.clone()).await?;
    if out.status != 0 {
        let err = out.stderr_lossy().trim().to_string();
        let msg = if err.is_empty() {
            plan.failure.clone()
        } else {
            format!("{}: {err}", plan.failure)
        };
        return Err(failed(msg, output_result(&out)));
    }
    let mut r = done.clone();
    r.insert("changed".into(), Value::from(true));
    Ok(r)
}

impl Module for SeBoolean {
    fn name(&self) -> &'static str {
        "seboolean"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_bool(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_bool(tr, ctx, drift))
    }

    /// Nothing: the boolean's value is not recorded.
    fn resources(&self, _args: &Args) -> Vec<Resource> {
        Vec::new()
    }

    fn not_reversible(&self, _given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        Some(
            "setsebool changes an SELinux boolean's live (and with persistent, its policy-store) value, which rdeploy does not record; rollback leaves the boolean as the run set it",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;

    #[test]
    fn tool_outputs_are_read_as_selinux_prints_them() {
        assert_eq!(
            parse_getsebool(0, "httpd_can_network_connect --> on\n", ""),
            Live::Value(true)
        );
        assert_eq!(
            parse_getsebool(0, "httpd_can_network_connect --> off pending: on\n", ""),
            Live::Value(false)
        );
        assert_eq!(
            parse_getsebool(1, "", "getsebool:  SELinux is disabled\n"),
            Live::Disabled
        );
        assert_eq!(
            parse_getsebool(1, "", "Error getting active value for nope\n"),
            Live::Unknown
        );
        let listing = "abrt_anon_write                (off  ,  off)  Allow abrt to anon write\nhttpd_can_network_connect      (off  ,   on)  Allow httpd to can network connect\n";
        assert_eq!(
            parse_semanage(listing, "httpd_can_network_connect"),
            Some(true)
        );
        assert_eq!(parse_semanage(listing, "abrt_anon_write"), Some(false));
        assert_eq!(parse_semanage(listing, "abrt_anon"), None);
    }

    /// Fake `getsebool`/`setsebool`/`semanage`: the live value in `$FAKE/live_NAME`, the
    /// persistent one in `$FAKE/perm_NAME` (`$FAKE/disabled` turns SELinux off, `$FAKE/nosemanage`
    /// hides semanage).
    fn fake_selinux(bin: &std::path::Path) {
        fake_tool(
            bin,
            "getsebool",
            r#"[ -e "$FAKE/disabled" ] && { echo 'getsebool:  SELinux is disabled' >&2; exit 1; }
[ -e "$FAKE/live_$1" ] || { echo "Error getting active value for $1" >&2; exit 1; }
echo "$1 --> $(cat "$FAKE/live_$1")""#,
        );
        fake_tool(
            bin,
            "setsebool",
            r#"echo "setsebool $*" >> "$FAKE/log"
if [ "$1" = -P ]; then shift; echo "$2" > "$FAKE/perm_$1"; fi
echo "$2" > "$FAKE/live_$1""#,
        );
        fake_tool(
            bin,
            "semanage",
            r#"[ -e "$FAKE/nosemanage" ] && exit 127
echo "semanage $*" >> "$FAKE/log"
for f in "$FAKE"/perm_*; do [ -e "$f" ] || continue; n=${f##*/perm_}
printf '%-30s (%-4s, %4s)  Allow %s\n' "$n" "$(cat "$FAKE/live_$n")" "$(cat "$f")" "$n"; done"#,
        );
    }

    fn log(state: &std::path::Path) -> String {
        std::fs::read_to_string(state.join("log")).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_boolean_is_set_once_live_or_persistent_and_check_only_reports() {
        let (dir, bin, state) = fake_dirs();
        fake_selinux(&bin);
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        std::fs::write(state.join("live_httpd_can_network_connect"), "off\n").unwrap();
        std::fs::write(state.join("perm_httpd_can_network_connect"), "off\n").unwrap();
        let live = args(json!({"name": "httpd_can_network_connect", "state": true}));
        // Check only: drift, nothing run.
        assert_eq!(
            check_only(&SeBoolean, &mut tr, &live, &c).await.unwrap(),
            None
        );
        assert_eq!(log(&state), "");
        let Ran::Applied(ch, Ok(r)) = check_apply(&SeBoolean, &mut tr, &live, &c).await else {
            panic!()
        };
        assert_eq!(
            ch,
            vec![Change::Attr {
                subject: "SELinux boolean httpd_can_network_connect".into(),
                what: "value".into(),
                before: "off".into(),
                after: "on".into(),
            }]
        );
        assert_eq!(r["changed"], json!(true));
        assert_eq!(log(&state), "setsebool httpd_can_network_connect on\n");
        // In sync: nothing runs.
        let Ran::InSync(r) = check_apply(&SeBoolean, &mut tr, &live, &c).await else {
            panic!()
        };
        assert_eq!(r["state"], json!(true));
        assert_eq!(log(&state).lines().count(), 1);
        // Persistent compares the persistent value (still off) and sets it with -P.
        let perm =
            args(json!({"name": "httpd_can_network_connect", "state": "yes", "persistent": true}));
        assert!(matches!(
            check_apply(&SeBoolean, &mut tr, &perm, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(log(&state).ends_with("setsebool -P httpd_can_network_connect on\n"));
        assert!(matches!(
            check_apply(&SeBoolean, &mut tr, &perm, &c).await,
            Ran::InSync(_)
        ));
        // Without semanage the live value stands for the persistent one.
        std::fs::write(state.join("nosemanage"), "").unwrap();
        let off =
            args(json!({"name": "httpd_can_network_connect", "state": false, "persistent": true}));
        assert!(matches!(
            check_apply(&SeBoolean, &mut tr, &off, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert!(log(&state).ends_with("setsebool -P httpd_can_network_connect off\n"));
        assert!(matches!(
            check_apply(&SeBoolean, &mut tr, &off, &c).await,
            Ran::InSync(_)
        ));
    }

    #[tokio::test]
    async fn unknown_booleans_disabled_selinux_and_missing_tools_fail_as_ansible_says() {
        let (dir, bin, state) = fake_dirs();
        fake_selinux(&bin);
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        let nope = args(json!({"name": "nope", "state": true}));
        assert!(
            matches!(check_apply(&SeBoolean, &mut tr, &nope, &c).await, Ran::CheckFailed(m, _) if m == "Failed to determine current state for boolean nope")
        );
        let perm = args(json!({"name": "nope", "state": true, "persistent": true}));
        assert!(
            matches!(check_apply(&SeBoolean, &mut tr, &perm, &c).await, Ran::CheckFailed(m, _) if m == "SELinux boolean nope is not defined in persistent policy")
        );
        std::fs::write(state.join("disabled"), "").unwrap();
        assert!(
            matches!(check_apply(&SeBoolean, &mut tr, &nope, &c).await, Ran::CheckFailed(m, _) if m == "SELinux is disabled on this host.")
        );
        let ignored = args(json!({"name": "nope", "state": true, "ignore_selinux_state": true}));
        assert!(matches!(
            check_apply(&SeBoolean, &mut tr, &ignored, &c).await,
            Ran::InSync(_)
        ));
        // A host without the tool (unless this machine has it where PATH cannot hide it).
        if !sbin_has("getsebool") {
            let (dir2, bin2, _state2) = fake_dirs();
            // PATH is only the empty fake folder (the machine may have the tool on its PATH).
            let c2 = ctx(
                dir2.path(),
                None,
                vec![("PATH".into(), bin2.display().to_string())],
            );
            let Ran::CheckFailed(m, _) = check_apply(&SeBoolean, &mut tr, &nope, &c2).await else {
                panic!()
            };
            assert!(
                m.starts_with("Failed to find required executable \"getsebool\" in paths: "),
                "{m}"
            );
            assert!(
                m.ends_with(":/sbin:/usr/sbin:/usr/local/sbin") || m.contains("/usr/sbin"),
                "{m}"
            );
        }
        assert!(SeBoolean.resources(&nope).is_empty());
        assert!(SeBoolean.not_reversible(&|_| true).is_some());
    }
}
