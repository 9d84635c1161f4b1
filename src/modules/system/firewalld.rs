//! `firewalld`: services, ports, rich rules, sources, interfaces, masquerading and zones of
//! firewalld, live and permanent.
//!
//! Owns ansible.posix's transaction rules, ported into the pure [`transaction`], done through
//! the host's own `firewall-cmd` instead of the Python bindings: each element is asked with
//! `--query-*` (with `--permanent` for the permanent configuration) and changed with
//! `--add-*`/`--remove-*` (`--change-interface` for an interface, `--new-zone`/`--delete-zone`
//! for a zone). When the daemon is not running, permanent changes go through
//! `firewall-offline-cmd`, as Ansible's offline mode edits the files. It must not format shell
//! lines and must not read the run mode.

use serde_json::Value;

use super::common::{bin_path, failed, result};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
    output_result,
};
use crate::transport::{AnyTransport, Cmd};

/// The `firewalld` module.
pub struct Firewalld;

/// Where firewalld keeps a zone's permanent configuration.
const ZONES_DIR: &str = "/etc/firewalld/zones";

crate::module_args! {
    /// Adds or removes a service, port, protocol, ICMP block, rich rule, source, interface,
    /// masquerading or forwarding in a firewalld zone (`permanent`, `immediate` or both), or
    /// creates or deletes a zone, with `firewall-cmd` (`firewall-offline-cmd` when the daemon
    /// is not running). Rollback puts the permanent zone files back; the running firewall
    /// keeps the run's changes until firewalld reloads.
    #[module(
        name = "firewalld",
        backup = "With `permanent`, the folder /etc/firewalld/zones (each zone's permanent configuration) is backed up whole: rollback puts it back as it was, removing zone files the step created. The running firewall is not reloaded by rollback: an `immediate` change stays live until firewalld reloads (`firewall-cmd --reload`, which a `rollback:` task can run) or the host boots.",
        returns = &[("msg", "what was done, comma-separated, as Ansible words it")],
        examples = "- firewalld:\n    service: https\n    permanent: true\n    immediate: true\n    state: enabled\n- firewalld:\n    port: 8081/tcp\n    zone: internal\n    state: disabled"
    )]
    pub struct FirewalldArgs {
        /// An ICMP type to block.
        icmp_block: Option<String>,
        /// A service (`https`), as firewalld names it.
        service: Option<String>,
        /// A protocol (`gre`).
        protocol: Option<String>,
        /// A port or range with its protocol: `8080/tcp`, `161-162/udp`.
        port: Option<String>,
        /// A rich rule, in firewalld's rich language.
        rich_rule: Option<String>,
        /// The zone (the default zone when not given); with `present`/`absent` alone, the zone
        /// itself is created or deleted.
        zone: Option<String>,
        /// Apply a permanent change to the running firewall as well.
        #[arg(default = "no")]
        immediate: bool,
        /// A source address or range (`192.0.2.0/24`).
        source: Option<String>,
        /// Change the permanent configuration (the running firewall only with `immediate`).
        #[arg(default = "no")]
        permanent: bool,
        /// `enabled`/`disabled` for an element; `present`/`absent` for a zone.
        #[arg(required, choices = &["absent", "disabled", "enabled", "present"])]
        state: String,
        /// Seconds a running (not permanent) addition lasts; 0: for good.
        #[arg(default = "0")]
        timeout: i64,
        /// An interface to put in (or take out of) the zone; needs `zone`.
        interface: Option<String>,
        /// Whether the zone forwards between its interfaces (firewalld 0.9 and later).
        forward: Option<bool>,
        /// Whether the zone masquerades.
        masquerade: Option<bool>,
        /// Change the permanent configuration even when firewalld is not running.
        #[arg(default = "no")]
        offline: bool,
    }
}

/// The permanent and running state an element is found in, and what the transaction does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Change the permanent configuration: enable (true) or disable (false).
    pub permanent: Option<bool>,
    /// Change the running firewall: enable (true) or disable (false).
    pub immediate: Option<bool>,
    /// Ansible's messages.
    pub msgs: Vec<String>,
}

impl Outcome {
    /// Whether anything changes.
    pub fn changed(&self) -> bool {
        self.permanent.is_some() || self.immediate.is_some()
    }
}

/// ansible.posix's `FirewallTransaction.run()`: given whether the element is enabled in the
/// permanent configuration and in the running firewall (`None`: not asked), what changes.
/// `msgs` are the enabled and disabled messages of the transaction, if it has them.
pub fn transaction(
    permanent: bool,
    immediate: bool,
    enable: bool,
    is_permanent: Option<bool>,
    is_immediate: Option<bool>,
    msgs: (Option<&str>, Option<&str>),
) -> Outcome {
    let mut o = Outcome::default();
    o.msgs.push(
        match (permanent, immediate) {
            (true, true) => "Permanent and Non-Permanent(immediate) operation",
            (true, false) => "Permanent operation",
            _ => "Non-permanent operation",
        }
        .to_string(),
    );
    if permanent && is_permanent != Some(enable) {
        o.permanent = Some(enable);
    }
    if immediate && is_immediate != Some(enable) {
        o.immediate = Some(enable);
    }
    let msg = if enable { msgs.0 } else { msgs.1 };
    if o.changed()
        && let Some(m) = msg
    {
        o.msgs.push(m.to_string());
    }
    o
}

/// One kind of zone element, as `firewall-cmd` spells its options.
#[derive(Clone, Debug)]
struct Element {
    /// `service`, `port`, ... (`--query-service=VALUE`); `masquerade`/`forward` take no value.
    option: &'static str,
    /// The value, if the option takes one.
    value: Option<String>,
    /// Whether `--timeout` applies to a running addition.
    timed: bool,
    /// Ansible's enabled and disabled messages of the transaction.
    msgs: (Option<String>, Option<String>),
    /// Ansible's `Changed X to STATE` message after a change (`None`: it has none).
    changed_msg: Option<String>,
}

/// `c` with `--query-OPTION [VALUE]`, `--add-...` or `--remove-...` (an interface is added
/// with `--change-interface`, which moves it from another zone). firewall-cmd's options take
/// their value as the next word. `offline`: `c` is firewall-offline-cmd, whose
/// `--remove-service` is the lokkit option (refused with a zone): there it is
/// `--remove-service-from-zone`.
fn element_flag(c: Cmd, verb: &'static str, e: &Element, offline: bool) -> Cmd {
    let flag = match (verb, e.option) {
        ("remove", "service") if offline => "--remove-service-from-zone",
        ("query", "service") => "--query-service",
        ("add", "service") => "--add-service",
        ("remove", "service") => "--remove-service",
        ("query", "port") => "--query-port",
        ("add", "port") => "--add-port",
        ("remove", "port") => "--remove-port",
        ("query", "protocol") => "--query-protocol",
        ("add", "protocol") => "--add-protocol",
        ("remove", "protocol") => "--remove-protocol",
        ("query", "icmp-block") => "--query-icmp-block",
        ("add", "icmp-block") => "--add-icmp-block",
        ("remove", "icmp-block") => "--remove-icmp-block",
        ("query", "rich-rule") => "--query-rich-rule",
        ("add", "rich-rule") => "--add-rich-rule",
        ("remove", "rich-rule") => "--remove-rich-rule",
        ("query", "source") => "--query-source",
        ("add", "source") => "--add-source",
        ("remove", "source") => "--remove-source",
        ("query", "interface") => "--query-interface",
        ("add", "interface") => "--change-interface",
        ("remove", "interface") => "--remove-interface",
        ("query", "masquerade") => "--query-masquerade",
        ("add", "masquerade") => "--add-masquerade",
        ("remove", "masquerade") => "--remove-masquerade",
        ("query", "forward") => "--query-forward",
        ("add", "forward") => "--add-forward",
        _ => "--remove-forward",
    };
    match &e.value {
        Some(v) => c.op(flag).arg(v.clone()),
        None => c.op(flag),
    }
}

/// The tools found on the host.
#[derive(Clone, Debug)]
struct Tools {
    /// `firewall-cmd`.
    cmd: String,
    /// `firewall-offline-cmd`, when the daemon is not running.
    offline: Option<String>,
}

impl Tools {
    /// `firewall-cmd [--permanent] --zone ZONE`, or `firewall-offline-cmd --zone ZONE` for a
    /// permanent change while the daemon is not running.
    fn zone_cmd(&self, permanent: bool, zone: &str) -> Cmd {
        let c = match (&self.offline, permanent) {
            (Some(off), true) => Cmd::argv([off.clone()]),
            (None, true) => Cmd::argv([self.cmd.clone()]).op("--permanent"),
            _ => Cmd::argv([self.cmd.clone()]),
        };
        c.op("--zone").arg(zone.to_string())
    }

    /// `firewall-cmd --permanent` (or `firewall-offline-cmd`) for zone-level commands.
    fn permanent_cmd(&self) -> Cmd {
        match &self.offline {
            Some(off) => Cmd::argv([off.clone()]),
            None => Cmd::argv([self.cmd.clone()]).op("--permanent"),
        }
    }
}

/// What `apply` runs, in order, and the result it reports.
struct Plan {
    cmds: Vec<Cmd>,
    result: Args,
}

/// Ansible's `action_handler` failure: `ERROR: Exception caught: ...`.
fn caught(out: &crate::transport::Output, hint: bool) -> ModuleError {
    let mut msg = format!(
        "ERROR: Exception caught: {}",
        out.stderr_lossy().trim().trim_start_matches("Error: ")
    );
    if hint {
        msg.push_str(" Services are defined by port/tcp relationship and named as they are in /etc/services (on most systems)");
    }
    failed(msg, output_result(out))
}

/// Runs a `--query-*` command: exit 0 is yes, 1 is no, anything else a failure.
async fn query(tr: &mut HostView<'_>, ctx: &ModuleCtx<'_>, cmd: Cmd) -> Result<bool, ModuleError> {
    let out = ctx.query(tr, cmd).await?;
    match out.status {
        0 => Ok(true),
        1 => Ok(false),
        _ => {
            let hint = out.stderr_lossy().contains("INVALID_SERVICE");
            Err(caught(&out, hint))
        }
    }
}

/// Ansible's argument checks, before the host is asked.
fn constraints(a: &FirewalldArgs) -> Result<(), ModuleError> {
    let given: Vec<&str> = [
        ("icmp_block", a.icmp_block.is_some()),
        ("service", a.service.is_some()),
        ("protocol", a.protocol.is_some()),
        ("port", a.port.is_some()),
        ("rich_rule", a.rich_rule.is_some()),
        ("interface", a.interface.is_some()),
        ("forward", a.forward.is_some()),
        ("masquerade", a.masquerade.is_some()),
        ("source", a.source.is_some()),
    ]
    .iter()
    .filter(|(_, g)| *g)
    .map(|(n, _)| *n)
    .collect();
    if given.len() > 1 {
        return Err(ModuleError::Args(format!(
            "parameters are mutually exclusive: {}",
            given.join("|")
        )));
    }
    if a.interface.is_some() && a.zone.is_none() {
        return Err(ModuleError::Args(
            "missing parameter(s) required by 'interface': zone".into(),
        ));
    }
    if a.offline && !a.permanent {
        return Err(ModuleError::Args(
            "offline cannot be enabled unless permanent changes are allowed".into(),
        ));
    }
    Ok(())
}

/// The element the task is about, or `None` for a zone-level task.
fn element(a: &FirewalldArgs, zone: &str) -> Result<Option<Element>, ModuleError> {
    let simple = |option: &'static str, v: &String, what: &str, timed: bool| Element {
        option,
        value: Some(v.clone()),
        timed,
        msgs: (None, None),
        changed_msg: Some(format!("Changed {what} {v} to {}", a.state)),
    };
    let toggle = |option: &'static str, what: &str| Element {
        option,
        value: None,
        timed: false,
        msgs: (
            Some(format!("Added {what} to zone {zone}")),
            Some(format!("Removed {what} from zone {zone}")),
        ),
        changed_msg: None,
    };
    Ok(Some(if let Some(v) = &a.icmp_block {
        simple("icmp-block", v, "icmp-block", true)
    } else if let Some(v) = &a.service {
        simple("service", v, "service", true)
    } else if let Some(v) = &a.protocol {
        simple("protocol", v, "protocol", true)
    } else if let Some(v) = &a.source {
        Element {
            option: "source",
            value: Some(v.clone()),
            timed: false,
            msgs: (
                Some(format!("Added {v} to zone {zone}")),
                Some(format!("Removed {v} from zone {zone}")),
            ),
            changed_msg: None,
        }
    } else if let Some(p) = &a.port {
        let (port, proto) = match p.trim().split_once('/') {
            Some((port, proto)) if !proto.is_empty() && !proto.contains('/') => (port, proto),
            _ => {
                return Err(failed(
                    "improper port format (missing protocol?)",
                    Args::new(),
                ));
            }
        };
        let v = format!("{port}/{proto}");
        simple("port", &v, "port", true)
    } else if let Some(v) = &a.rich_rule {
        simple("rich-rule", v, "rich_rule", true)
    } else if let Some(v) = &a.interface {
        Element {
            option: "interface",
            value: Some(v.clone()),
            timed: false,
            msgs: (
                Some(format!("Changed {v} to zone {zone}")),
                Some(format!("Removed {v} from zone {zone}")),
            ),
            changed_msg: None,
        }
    } else if a.forward.is_some() {
        toggle("forward", "forward")
    } else if a.masquerade.is_some() {
        toggle("masquerade", "masquerade")
    } else {
        return Ok(None);
    }))
}

async fn check_firewalld(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = FirewalldArgs::parse(args)?;
    constraints(&a)?;
    let fw = bin_path(tr, ctx, "firewall-cmd").await?;
    let running = ctx
        .query(tr, Cmd::argv([fw.clone()]).op("--state"))
        .await?
        .status
        == 0;
    let tools = Tools {
        offline: if running {
            None
        } else {
            Some(bin_path(tr, ctx, "firewall-offline-cmd").await?)
        },
        cmd: fw,
    };
    let permanent = a.permanent;
    let mut immediate = a.immediate;
    if a.offline && !running {
        immediate = false;
    }
    if !permanent && !immediate {
        immediate = true;
    }
    if immediate && !running {
        return Err(failed(
            "firewall is not currently running, unable to perform immediate actions without a running firewall daemon",
            Args::new(),
        ));
    }
    let zone = match &a.zone {
        Some(z) => z.clone(),
        None => {
            let c = match &tools.offline {
                Some(off) => Cmd::argv([off.clone()]),
                None => Cmd::argv([tools.cmd.clone()]),
            };
            let out = ctx.query(tr, c.op("--get-default-zone")).await?;
            if out.status != 0 {
                return Err(caught(&out, false));
            }
            out.stdout_lossy().trim().to_string()
        }
    };
    let el = element(&a, &zone)?;
    let offline = tools.offline.is_some();
    let zone_level = matches!(a.state.as_str(), "absent" | "present");
    if el.is_some() && zone_level {
        return Err(failed(
            "absent and present state can only be used in zone level operations",
            Args::new(),
        ));
    }
    let mut cmds = Vec::new();
    let mut changes = Vec::new();
    let mut msgs;
    match &el {
        Some(e) => {
            // masquerade/forward: enabled when (state == enabled) == the value asked.
            let enable = match (a.masquerade.or(a.forward), a.state.as_str()) {
                (Some(v), s) => (s == "enabled") == v,
                (None, s) => s == "enabled",
            };
            let is_perm = if permanent {
                Some(
                    query(
                        tr,
                        ctx,
                        element_flag(tools.zone_cmd(true, &zone), "query", e, offline),
                    )
                    .await?,
                )
            } else {
                None
            };
            let is_imm = if immediate {
                Some(
                    query(
                        tr,
                        ctx,
                        element_flag(tools.zone_cmd(false, &zone), "query", e, false),
                    )
                    .await?,
                )
            } else {
                None
            };
            let o = transaction(
                permanent,
                immediate,
                enable,
                is_perm,
                is_imm,
                (e.msgs.0.as_deref(), e.msgs.1.as_deref()),
            );
            msgs = o.msgs.clone();
            let verb = if enable { "add" } else { "remove" };
            if o.permanent.is_some() {
                cmds.push(element_flag(tools.zone_cmd(true, &zone), verb, e, offline));
            }
            if o.immediate.is_some() {
                let mut c = element_flag(tools.zone_cmd(false, &zone), verb, e, false);
                if enable && e.timed && a.timeout > 0 {
                    c = c.op("--timeout").arg(a.timeout.to_string());
                }
                cmds.push(c);
            }
            if o.changed() {
                if let Some(m) = &e.changed_msg {
                    msgs.push(m.clone());
                }
                let subject = match &e.value {
                    Some(v) => format!("firewalld zone {zone} {} {v}", e.option),
                    None => format!("firewalld zone {zone} {}", e.option),
                };
                for (which, is) in [
                    ("permanent", o.permanent.map(|_| is_perm)),
                    ("running", o.immediate.map(|_| is_imm)),
                ] {
                    if let Some(was) = is {
                        changes.push(Change::Attr {
                            subject: subject.clone(),
                            what: format!("{which} state"),
                            before: if was == Some(true) {
                                "enabled"
                            } else {
                                "disabled"
                            }
                            .into(),
                            after: if enable { "enabled" } else { "disabled" }.into(),
                        });
                    }
                }
            }
        }
        None if zone_level => {
            if !permanent || immediate {
                return Err(failed(
                    "Zone operations must be permanent. Make sure you didn't set the 'permanent' flag to 'false' or the 'immediate' flag to 'true'.",
                    Args::new(),
                ));
            }
            let out = ctx
                .query(tr, tools.permanent_cmd().op("--get-zones"))
                .await?;
            if out.status != 0 {
                return Err(caught(&out, false));
            }
            let exists = out.stdout_lossy().split_whitespace().any(|z| z == zone);
            let enable = a.state == "present";
            let o = transaction(
                true,
                false,
                enable,
                Some(exists),
                None,
                (
                    Some(&format!("Added zone {zone}")),
                    Some(&format!("Removed zone {zone}")),
                ),
            );
            msgs = o.msgs.clone();
            if o.changed() {
                let c = if enable {
                    tools.permanent_cmd().op("--new-zone")
                } else {
                    tools.permanent_cmd().op("--delete-zone")
                };
                cmds.push(c.arg(zone.clone()));
                msgs.push(format!("Changed zone {zone} to {}", a.state));
                changes.push(Change::Attr {
                    subject: format!("firewalld zone {zone}"),
                    what: "state".into(),
                    before: if exists { "present" } else { "absent" }.into(),
                    after: a.state.clone(),
                });
            }
        }
        // enabled/disabled with nothing to enable: Ansible does nothing.
        None => msgs = Vec::new(),
    }
    if !running {
        msgs.push("(offline operation: only on-disk configs were altered)".into());
    }
    let res = result([("msg", Value::from(msgs.join(", ")))]);
    if cmds.is_empty() {
        return Ok(Verdict::InSync { result: res });
    }
    Ok(Verdict::Drift(Drift::new(
        changes,
        Plan { cmds, result: res },
    )))
}

async fn apply_firewalld(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("firewalld: apply without a plan from check".into()))?;
    for c in &p.cmds {
        let out = ctx.run(tr, c.clone()).await?;
        if out.status != 0 {
            return Err(caught(&out, out.stderr_lossy().contains("INVALID_SERVICE")));
        }
    }
    let mut r = p.result.clone();
    r.insert("changed".into(), Value::from(true));
    Ok(r)
}

impl Module for Firewalld {
    fn name(&self) -> &'static str {
        "firewalld"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_firewalld(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_firewalld(tr, ctx, drift))
    }

    /// The zone files, when the permanent configuration may change.
    fn resources(&self, args: &Args) -> Vec<Resource> {
        match FirewalldArgs::parse(args) {
            Ok(a) if a.permanent => vec![Resource::Tree(ZONES_DIR.into())],
            _ => Vec::new(),
        }
    }

    fn not_reversible(&self, given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        Some(if given("permanent") {
            "rollback restores /etc/firewalld/zones but does not reload firewalld: a change made to the running firewall (immediate) stays live until firewalld reloads or the host boots"
        } else {
            "a change to the running firewall only (no permanent) is not recorded: rollback leaves it live until firewalld reloads or the host boots"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;

    #[test]
    fn transactions_decide_as_ansible_decides() {
        // (permanent, immediate, enable, found permanent, found running) → (set perm, set run)
        for (p, i, en, fp, fi, want) in [
            (
                true,
                true,
                true,
                Some(false),
                Some(false),
                (Some(true), Some(true)),
            ),
            (
                true,
                true,
                true,
                Some(true),
                Some(false),
                (None, Some(true)),
            ),
            (true, true, true, Some(true), Some(true), (None, None)),
            (true, false, true, Some(false), None, (Some(true), None)),
            (false, true, false, None, Some(true), (None, Some(false))),
            (false, true, false, None, Some(false), (None, None)),
        ] {
            let o = transaction(p, i, en, fp, fi, (Some("on"), Some("off")));
            assert_eq!(
                (o.permanent, o.immediate),
                want,
                "{p} {i} {en} {fp:?} {fi:?}"
            );
            assert_eq!(o.msgs.len(), if o.changed() { 2 } else { 1 });
        }
        let o = transaction(
            true,
            false,
            false,
            Some(true),
            None,
            (None, Some("Removed x")),
        );
        assert_eq!(o.msgs, vec!["Permanent operation", "Removed x"]);
    }

    /// A fake `firewall-cmd` (and `firewall-offline-cmd`): the daemon runs when
    /// `$FAKE/running` exists; each zone's elements are lines `OPTION VALUE` in
    /// `$FAKE/perm_ZONE` (permanent) and `$FAKE/run_ZONE` (running); zones are `$FAKE/zones`.
    const FAKE_FW: &str = r#"echo "${0##*/} $*" >> "$FAKE/log"
where=run
case "${0##*/}" in firewall-offline-cmd) where=perm ;; esac
case "$1" in
--state) [ -e "$FAKE/running" ] && { echo running; exit 0; }; echo "not running"; exit 252 ;;
--get-default-zone) echo public; exit 0 ;;
--permanent) where=perm; shift ;;
esac
case "$1" in
--get-zones) tr '\n' ' ' < "$FAKE/zones"; echo; exit 0 ;;
--new-zone) echo "$2" >> "$FAKE/zones"; exit 0 ;;
--delete-zone) grep -vx "$2" "$FAKE/zones" > "$FAKE/z"; mv "$FAKE/z" "$FAKE/zones"; exit 0 ;;
--zone) zone=$2; shift 2 ;;
esac
op=$1; val=$2; f="$FAKE/${where}_$zone"
[ "$val" = nope ] && { echo "Error: INVALID_SERVICE: 'nope' not among existing services" >&2; exit 101; }
case "$where.${0##*/}.$op" in
*firewall-offline-cmd.--remove-service) echo "Can't use lokkit options with other options." >&2; exit 2 ;;
esac
case "$op" in
--remove-service-from-zone) grep -vxF "service $val" "$f" > "$f.new"; mv "$f.new" "$f" ;;
--query-*) grep -qxF "${op#--query-} $val" "$f" 2>/dev/null && { echo yes; exit 0; }; echo no; exit 1 ;;
--add-*) echo "${op#--add-} $val" >> "$f" ;;
--change-*) echo "${op#--change-} $val" >> "$f" ;;
--remove-*) grep -vxF "${op#--remove-} $val" "$f" > "$f.new"; mv "$f.new" "$f" ;;
esac
echo success"#;

    fn fake_fw(bin: &std::path::Path, state: &std::path::Path) {
        fake_tool(bin, "firewall-cmd", FAKE_FW);
        fake_tool(bin, "firewall-offline-cmd", FAKE_FW);
        std::fs::write(state.join("running"), "").unwrap();
        std::fs::write(state.join("zones"), "block\npublic\ninternal\n").unwrap();
    }

    /// The commands that changed something, in order.
    fn changes_run(state: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(state.join("log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                [
                    "--add-",
                    "--remove-",
                    "--change-",
                    "--new-zone",
                    "--delete-zone",
                ]
                .iter()
                .any(|w| l.contains(w))
            })
            .map(str::to_string)
            .collect()
    }

    #[tokio::test]
    async fn each_element_changes_once_and_check_runs_nothing() {
        let (dir, bin, state) = fake_dirs();
        fake_fw(&bin, &state);
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        // Each row: arguments → the commands of the first run, and its msg; the second run
        // changes nothing.
        let rows: &[(serde_json::Value, &[&str], &str)] = &[
            (
                json!({"service": "https", "permanent": true, "immediate": true, "state": "enabled"}),
                &[
                    "firewall-cmd --permanent --zone public --add-service https",
                    "firewall-cmd --zone public --add-service https",
                ],
                "Permanent and Non-Permanent(immediate) operation, Changed service https to enabled",
            ),
            (
                json!({"port": "8080/tcp", "zone": "internal", "timeout": 60, "state": "enabled"}),
                &["firewall-cmd --zone internal --add-port 8080/tcp --timeout 60"],
                "Non-permanent operation, Changed port 8080/tcp to enabled",
            ),
            (
                json!({"rich_rule": "rule service name=\"ftp\" audit limit value=\"1/m\" accept", "permanent": true, "state": "enabled"}),
                &[
                    "firewall-cmd --permanent --zone public --add-rich-rule rule service name=\"ftp\" audit limit value=\"1/m\" accept",
                ],
                "Permanent operation, Changed rich_rule rule service name=\"ftp\" audit limit value=\"1/m\" accept to enabled",
            ),
            (
                json!({"source": "192.0.2.0/24", "zone": "internal", "permanent": true, "state": "enabled"}),
                &["firewall-cmd --permanent --zone internal --add-source 192.0.2.0/24"],
                "Permanent operation, Added 192.0.2.0/24 to zone internal",
            ),
            (
                json!({"interface": "eth2", "zone": "internal", "permanent": true, "immediate": true, "state": "enabled"}),
                &[
                    "firewall-cmd --permanent --zone internal --change-interface eth2",
                    "firewall-cmd --zone internal --change-interface eth2",
                ],
                "Permanent and Non-Permanent(immediate) operation, Changed eth2 to zone internal",
            ),
            (
                json!({"masquerade": true, "zone": "internal", "state": "enabled"}),
                &["firewall-cmd --zone internal --add-masquerade"],
                "Non-permanent operation, Added masquerade to zone internal",
            ),
            (
                json!({"masquerade": true, "zone": "internal", "state": "disabled"}),
                &["firewall-cmd --zone internal --remove-masquerade"],
                "Non-permanent operation, Removed masquerade from zone internal",
            ),
            (
                json!({"protocol": "gre", "permanent": true, "state": "enabled"}),
                &["firewall-cmd --permanent --zone public --add-protocol gre"],
                "Permanent operation, Changed protocol gre to enabled",
            ),
            (
                json!({"service": "https", "permanent": true, "state": "disabled"}),
                &["firewall-cmd --permanent --zone public --remove-service https"],
                "Permanent operation, Changed service https to disabled",
            ),
            (
                json!({"zone": "custom", "permanent": true, "state": "present"}),
                &["firewall-cmd --permanent --new-zone custom"],
                "Permanent operation, Added zone custom, Changed zone custom to present",
            ),
            (
                json!({"zone": "custom", "permanent": true, "state": "absent"}),
                &["firewall-cmd --permanent --delete-zone custom"],
                "Permanent operation, Removed zone custom, Changed zone custom to absent",
            ),
        ];
        for (i, (a, want, msg)) in rows.iter().enumerate() {
            let a = args(a.clone());
            let before = changes_run(&state).len();
            assert_eq!(
                check_only(&Firewalld, &mut tr, &a, &c).await.unwrap(),
                None,
                "row {i}"
            );
            assert_eq!(
                changes_run(&state).len(),
                before,
                "row {i}: check changed something"
            );
            let Ran::Applied(ch, Ok(r)) = check_apply(&Firewalld, &mut tr, &a, &c).await else {
                panic!("row {i}")
            };
            assert!(!ch.is_empty(), "row {i}");
            assert_eq!(&changes_run(&state)[before..], *want, "row {i}");
            assert_eq!(r["msg"], json!(msg), "row {i}");
            let Ran::InSync(r) = check_apply(&Firewalld, &mut tr, &a, &c).await else {
                panic!("row {i}: not idempotent")
            };
            assert!(!r["msg"].as_str().unwrap().contains("Changed"), "row {i}");
        }
        let perm = args(json!({"service": "https", "permanent": true, "state": "enabled"}));
        assert_eq!(
            Firewalld.resources(&perm),
            vec![Resource::Tree("/etc/firewalld/zones".into())]
        );
        assert!(
            Firewalld
                .resources(&args(json!({"service": "https", "state": "enabled"})))
                .is_empty()
        );
        assert!(Firewalld.not_reversible(&|_| true).is_some());
    }

    #[tokio::test]
    async fn a_stopped_daemon_gets_offline_changes_and_refuses_immediate_ones() {
        let (dir, bin, state) = fake_dirs();
        fake_fw(&bin, &state);
        std::fs::remove_file(state.join("running")).unwrap();
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        let now = args(json!({"service": "https", "state": "enabled"}));
        assert!(
            matches!(check_apply(&Firewalld, &mut tr, &now, &c).await, Ran::CheckFailed(m, _) if m == "firewall is not currently running, unable to perform immediate actions without a running firewall daemon")
        );
        let both = args(
            json!({"service": "https", "permanent": true, "immediate": true, "offline": true, "state": "enabled"}),
        );
        let Ran::Applied(_, Ok(r)) = check_apply(&Firewalld, &mut tr, &both, &c).await else {
            panic!()
        };
        assert_eq!(
            r["msg"],
            json!(
                "Permanent operation, Changed service https to enabled, (offline operation: only on-disk configs were altered)"
            )
        );
        assert_eq!(
            changes_run(&state),
            vec!["firewall-offline-cmd --zone public --add-service https"]
        );
        assert!(matches!(
            check_apply(&Firewalld, &mut tr, &both, &c).await,
            Ran::InSync(_)
        ));
        // firewall-offline-cmd's --remove-service is lokkit's: a zone's is -from-zone.
        let off = args(json!({"service": "https", "permanent": true, "state": "disabled"}));
        assert!(matches!(
            check_apply(&Firewalld, &mut tr, &off, &c).await,
            Ran::Applied(_, Ok(_))
        ));
        assert_eq!(
            changes_run(&state)[1..],
            ["firewall-offline-cmd --zone public --remove-service-from-zone https"]
        );
        assert!(matches!(
            check_apply(&Firewalld, &mut tr, &off, &c).await,
            Ran::InSync(_)
        ));
    }

    #[tokio::test]
    async fn bad_arguments_unknown_services_and_a_host_without_firewalld_fail_as_ansible_says() {
        let (dir, bin, state) = fake_dirs();
        fake_fw(&bin, &state);
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        for (a, want) in [
            (
                json!({"service": "https", "port": "80/tcp", "state": "enabled"}),
                "parameters are mutually exclusive: service|port",
            ),
            (
                json!({"interface": "eth0", "state": "enabled"}),
                "missing parameter(s) required by 'interface': zone",
            ),
            (
                json!({"service": "https", "offline": true, "state": "enabled"}),
                "offline cannot be enabled unless permanent changes are allowed",
            ),
            (
                json!({"port": "8080", "state": "enabled"}),
                "improper port format (missing protocol?)",
            ),
            (
                json!({"service": "https", "state": "present"}),
                "absent and present state can only be used in zone level operations",
            ),
            (
                json!({"zone": "custom", "state": "present"}),
                "Zone operations must be permanent. Make sure you didn't set the 'permanent' flag to 'false' or the 'immediate' flag to 'true'.",
            ),
            (
                json!({"service": "nope", "state": "enabled"}),
                "ERROR: Exception caught: INVALID_SERVICE: 'nope' not among existing services Services are defined by port/tcp relationship and named as they are in /etc/services (on most systems)",
            ),
        ] {
            let Ran::CheckFailed(m, _) =
                check_apply(&Firewalld, &mut tr, &args(a.clone()), &c).await
            else {
                panic!("{a}")
            };
            assert_eq!(m, want, "{a}");
        }
        assert!(changes_run(&state).is_empty());
        // A host without the tool (unless this machine has it where PATH cannot hide it).
        if !sbin_has("firewall-cmd") {
            let (dir2, bin2, _state2) = fake_dirs();
            // PATH is only the empty fake folder (the machine may have the tool on its PATH).
            let c2 = ctx(
                dir2.path(),
                None,
                vec![("PATH".into(), bin2.display().to_string())],
            );
            let Ran::CheckFailed(m, _) = check_apply(
                &Firewalld,
                &mut tr,
                &args(json!({"service": "https", "state": "enabled"})),
                &c2,
            )
            .await
            else {
                panic!()
            };
            assert!(
                m.starts_with("Failed to find required executable \"firewall-cmd\" in paths: "),
                "{m}"
            );
        }
    }
}
