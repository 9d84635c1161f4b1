//! `ufw`: the Uncomplicated Firewall's state, default policies, logging and rules.
//!
//! Owns community.general's rules, ported into the pure [`ufw_plan`]: `check` reads `ufw status
//! verbose` and the `### tuple` lines of ufw's user rules files, and decides as Ansible's check
//! mode decides (a rule is asked of `ufw --dry-run`, whose rules are compared with the
//! files'); `apply` runs the same `ufw` commands without `--dry-run`, in Ansible's order
//! (state, default, rule, logging). It must not format shell lines and must not read the run
//! mode.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::common::{bin_path, failed, result};
use crate::modules::runtime::{
    Args, BoxFut, Change, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::{AnyTransport, Cmd, Output};

/// The `ufw` module.
pub struct Ufw;

/// Where ufw keeps its rules, as Ansible greps them.
const RULE_FILES: &str = "grep -h '^### tuple' /lib/ufw/user.rules /lib/ufw/user6.rules /etc/ufw/user.rules /etc/ufw/user6.rules /var/lib/ufw/user.rules /var/lib/ufw/user6.rules";

/// The files rollback restores: ufw's rules and its enabled/logging/default settings.
const BACKED_UP: &[&str] = &[
    "/etc/ufw/user.rules",
    "/etc/ufw/user6.rules",
    "/etc/ufw/ufw.conf",
    "/etc/default/ufw",
];

crate::module_args! {
    /// Manages the firewall with `ufw`: enables, disables, reloads or resets it, sets default
    /// policies and logging, adds, inserts or deletes rules. Decides as Ansible's check mode
    /// does (a rule is compared through `ufw --dry-run`), then runs the `ufw` commands.
    /// Rollback puts ufw's files back and makes ufw load them.
    #[module(
        name = "ufw",
        backup = "ufw's files are backed up: /etc/ufw/user.rules and user6.rules (the rules), /etc/ufw/ufw.conf (enabled, logging) and /etc/default/ufw (default policies). Rollback puts them back (removes those the step created) and, once the files are restored, the firewall loads them at its next reload or boot: rdeploy does not run `ufw reload` itself, so run one in a `rollback:` task if the live rules must follow at once. A `reset` also moves ufw's other files aside, which rollback does not put back.",
        returns = &[
            ("commands", "the ufw commands run"),
            ("msg", "`ufw status verbose` after the change"),
        ],
        examples = "- ufw:\n    rule: allow\n    port: \"22\"\n    proto: tcp\n- ufw:\n    state: enabled\n    policy: deny"
    )]
    pub struct UfwArgs {
        /// `enabled`, `disabled`, `reloaded` (always a change) or `reset` (always a change).
        #[arg(choices = &["disabled", "enabled", "reloaded", "reset"])]
        state: Option<String>,
        /// The default policy for `direction` (incoming when not given).
        #[arg(aliases = &["policy"], choices = &["allow", "deny", "reject"])]
        default: Option<String>,
        /// Logging: `on`, `off`, or a level.
        #[arg(choices = &["full", "high", "low", "medium", "off", "on"])]
        logging: Option<String>,
        /// The direction of a rule (`in`, `out`) or of a default policy (`incoming`,
        /// `outgoing`, `routed`).
        #[arg(choices = &["in", "incoming", "out", "outgoing", "routed"])]
        direction: Option<String>,
        /// Delete the rule.
        #[arg(default = "no")]
        delete: bool,
        /// A routed (forwarding) rule.
        #[arg(default = "no")]
        route: bool,
        /// Insert the rule at this position (relative to `insert_relative_to`).
        insert: Option<i64>,
        /// What `insert` counts from.
        #[arg(default = "zero", choices = &["first-ipv4", "first-ipv6", "last-ipv4", "last-ipv6", "zero"])]
        insert_relative_to: String,
        /// The rule: `allow`, `deny`, `limit` or `reject`.
        #[arg(choices = &["allow", "deny", "limit", "reject"])]
        rule: Option<String>,
        /// The interface of the rule (needs `direction`).
        #[arg(aliases = &["if"])]
        interface: Option<String>,
        /// The incoming interface of a rule.
        #[arg(aliases = &["if_in"])]
        interface_in: Option<String>,
        /// The outgoing interface of a rule.
        #[arg(aliases = &["if_out"])]
        interface_out: Option<String>,
        /// Log new connections matching the rule.
        #[arg(default = "no")]
        log: bool,
        /// The source address.
        #[arg(default = "any", aliases = &["from", "src"])]
        from_ip: String,
        /// The source port.
        from_port: Option<String>,
        /// The destination address.
        #[arg(default = "any", aliases = &["dest", "to"])]
        to_ip: String,
        /// The destination port.
        #[arg(aliases = &["port"])]
        to_port: Option<String>,
        /// The protocol.
        #[arg(aliases = &["protocol"], choices = &["ah", "any", "esp", "ipv6", "tcp", "udp", "gre", "igmp", "vrrp"])]
        proto: Option<String>,
        /// An application profile (`OpenSSH`).
        #[arg(aliases = &["app"])]
        name: Option<String>,
        /// A comment on the rule (ufw 0.35 and later).
        comment: Option<String>,
    }
}

/// Ansible's IPv4 address pattern.
const IPV4_PAT: &str =
    r"((25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])";

/// Ansible's IPv6 address pattern.
const IPV6_PAT: &str = concat!(
    r"(([0-9a-fA-F]{1,4}:){7,7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:",
    r"|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}",
    r"(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4})",
    r"{1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]",
    r"{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:((:[0-9a-fA-F]",
    r"{1,4}){1,6})|:((:[0-9a-fA-F]{1,4}){1,7}|:)|fe80:(:[0-9a-fA-F]{0,4})",
    r"{0,4}%[0-9a-zA-Z]{1,}|::(ffff(:0{1,4}){0,1}:){0,1}((25[0-5]|(2[0-4]",
    r"|1{0,1}[0-9]){0,1}[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}",
    r"[0-9])|([0-9a-fA-F]{1,4}:){1,4}:((25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}",
    r"[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9]))"
);

/// `pattern` anywhere (Python's `re.search`) and at the start (`re.match`).
fn search_and_match(pattern: &str) -> (Regex, Regex) {
    (
        Regex::new(pattern).expect("address pattern"),
        Regex::new(&format!("^(?:{pattern})")).expect("address pattern"),
    )
}

static IPV4: LazyLock<(Regex, Regex)> = LazyLock::new(|| search_and_match(IPV4_PAT));
static IPV6: LazyLock<(Regex, Regex)> = LazyLock::new(|| search_and_match(IPV6_PAT));

static LOGGING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"Logging: (on|off)(?: \(([a-z]+)\))?").expect("logging pattern"));

static DEFAULTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Default: (deny|allow|reject) \(incoming\), (deny|allow|reject) \(outgoing\), (deny|allow|reject|disabled) \(routed\)").expect("default pattern")
});

/// The lines of `content` (with their endings) that `keep` accepts, joined.
fn lines_where(content: &str, keep: impl Fn(&str) -> bool) -> String {
    content.split_inclusive('\n').filter(|l| keep(l)).collect()
}

/// Whether the `logging` value asked for differs from `ufw status verbose`'s.
pub fn logging_changes(value: &str, status: &str) -> bool {
    let Some(c) = LOGGING.captures(status) else {
        return true;
    };
    let on_off = c.get(1).map_or("", |m| m.as_str());
    let level = c.get(2).map(|m| m.as_str());
    if value != "off" {
        on_off == "off" || (value != "on" && Some(value) != level)
    } else {
        on_off != "off"
    }
}

/// Whether the default policy asked for differs from `ufw status verbose`'s.
pub fn default_changes(value: &str, direction: Option<&str>, status: &str) -> bool {
    let Some(c) = DEFAULTS.captures(status) else {
        return true;
    };
    let i = match direction {
        Some("outgoing") => 2,
        Some("routed") => 3,
        _ => 1,
    };
    let v = c.get(i).map_or("", |m| m.as_str());
    v != value && v != "disabled"
}

/// Whether `ufw --dry-run RULE`'s output changes the rules the files hold (`pre_rules`, the
/// `### tuple` lines), as Ansible compares them: only the IPv4 (or IPv6) lines when an address
/// given is one.
pub fn rule_changes(dry: &str, pre_rules: &str, from_ip: &str, to_ip: &str) -> bool {
    let total = dry.split_inclusive('\n').count();
    let skipping = dry
        .split_inclusive('\n')
        .filter(|l| l.contains("Skipping"))
        .count();
    if skipping > 0 && skipping == total {
        return false;
    }
    let dry = lines_where(dry, |l| l.starts_with("### tuple"));
    for (search, start) in [&*IPV4, &*IPV6] {
        if start.is_match(from_ip) || start.is_match(to_ip) {
            let f = |c: &str| lines_where(c, |l| search.is_match(l));
            return f(pre_rules) != f(&dry);
        }
    }
    pre_rules != dry
}

/// The position `insert` becomes given `ufw status numbered` (Ansible's reckoning); `None`
/// when it is past the last rule (the rule is then added, not inserted).
pub fn insert_position(insert: i64, relative_to: &str, numbered: &str) -> Option<i64> {
    if relative_to == "zero" {
        return Some(insert);
    }
    let lines: Vec<(i64, bool)> = numbered
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('[')?;
            let (n, _) = rest.split_once("] ")?;
            let n: i64 = n.trim_start().parse().ok()?;
            Some((n, l.contains("(v6)")))
        })
        .collect();
    let last = lines.iter().map(|(n, _)| *n).max().unwrap_or(0);
    let last_v4 = lines.iter().filter(|(_, v6)| !v6).map(|(n, _)| *n).max();
    let has_v6 = lines.iter().any(|(_, v6)| *v6);
    let relative = match relative_to {
        "first-ipv4" => 1,
        "last-ipv4" => last_v4.unwrap_or(1),
        "first-ipv6" => last_v4.map_or(1, |n| n + 1),
        _ => {
            if has_v6 {
                last
            } else {
                last + 1
            }
        }
    };
    let at = insert + relative;
    (at <= last).then_some(at)
}

/// What `apply` runs, in order, and what the report says.
struct Plan {
    cmds: Vec<Cmd>,
    ufw: String,
}

fn fail_out(out: &Output, cmds: &[String]) -> ModuleError {
    let err = out.stderr_lossy().to_string();
    let msg = if err.is_empty() {
        out.stdout_lossy().to_string()
    } else {
        err
    };
    failed(msg, result([("commands", Value::from(cmds.to_vec()))]))
}

/// Ansible's argument constraints (mutually exclusive, required one of, required by).
fn constraints(a: &UfwArgs) -> Result<(), ModuleError> {
    let given: Vec<&str> = [
        ("name", a.name.is_some()),
        ("proto", a.proto.is_some()),
        ("logging", a.logging.is_some()),
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
    for (other, set) in [
        ("interface_in", a.interface_in.is_some()),
        ("interface_out", a.interface_out.is_some()),
    ] {
        if a.direction.is_some() && set {
            return Err(ModuleError::Args(format!(
                "parameters are mutually exclusive: direction|{other}"
            )));
        }
    }
    if a.state.is_none() && a.default.is_none() && a.rule.is_none() && a.logging.is_none() {
        return Err(ModuleError::Args(
            "one of the following is required: state, default, rule, logging".into(),
        ));
    }
    if a.interface.is_some() && a.direction.is_none() {
        return Err(ModuleError::Args(
            "missing parameter(s) required by 'interface': direction".into(),
        ));
    }
    Ok(())
}

/// The rule command Ansible builds (`dry` adds `--dry-run`).
fn rule_cmd(
    ufw: &str,
    a: &UfwArgs,
    rule: &str,
    insert: Option<i64>,
    comment: bool,
    dry: bool,
) -> Cmd {
    let mut c = Cmd::argv([ufw.to_string()]);
    if dry {
        c = c.op("--dry-run");
    }
    if a.route {
        c = c.op("route");
    }
    if a.delete {
        c = c.op("delete");
    }
    if let Some(n) = insert {
        c = c.op("insert").arg(n.to_string());
    }
    c = c.arg(rule.to_string());
    if let Some(d) = &a.direction {
        c = c.arg(d.clone());
    }
    if let Some(i) = &a.interface {
        c = c.op("on").arg(i.clone());
    }
    if let Some(i) = &a.interface_in {
        c = c.op("in on").arg(i.clone());
    }
    if let Some(i) = &a.interface_out {
        c = c.op("out on").arg(i.clone());
    }
    if a.log {
        c = c.op("log");
    }
    for (word, v) in [
        ("from", Some(&a.from_ip)),
        ("port", a.from_port.as_ref()),
        ("to", Some(&a.to_ip)),
        ("port", a.to_port.as_ref()),
        ("proto", a.proto.as_ref()),
        ("app", a.name.as_ref()),
    ] {
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            continue;
        };
        c = match word {
            "from" => c.op("from"),
            "to" => c.op("to"),
            "port" => c.op("port"),
            "proto" => c.op("proto"),
            _ => c.op("app"),
        }
        .arg(v.clone());
    }
    if comment && let Some(text) = &a.comment {
        c = c.op("comment").arg(text.clone());
    }
    c
}

/// Ansible's `ufw_version()`: (major, minor) from `ufw --version`'s first line, by its own
/// pattern (greedy: `ufw 0.36.2` reads as 6.2, which still counts as 0.35 or later).
pub fn ufw_version(out: &str) -> Option<(u64, u64)> {
    static VERSION: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^ufw.+(\d+)\.(\d+)(?:\.(\d+))?.*$").expect("version pattern")
    });
    let first = out.split('\n').find(|l| !l.trim().is_empty())?;
    let c = VERSION.captures(first)?;
    Some((
        c.get(1)?.as_str().parse().ok()?,
        c.get(2)?.as_str().parse().ok()?,
    ))
}

async fn run_read(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    cmd: Cmd,
    shown: &mut Vec<String>,
) -> Result<Output, ModuleError> {
    shown.push(cmd.display());
    let cmd = cmd.env("LANG", "C");
    ctx.query(tr, cmd).await
}

async fn check_ufw(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = UfwArgs::parse(args)?;
    constraints(&a)?;
    let ufw = bin_path(tr, ctx, "ufw").await?;
    let mut shown = Vec::new();
    let out = run_read(
        tr,
        ctx,
        Cmd::argv([ufw.clone()]).op("status verbose"),
        &mut shown,
    )
    .await?;
    if out.status != 0 {
        return Err(fail_out(&out, &shown));
    }
    let pre_state = out.stdout_lossy().to_string();
    let pre_rules = ctx
        .query(tr, Cmd::raw(RULE_FILES))
        .await?
        .stdout_lossy()
        .to_string();
    let mut cmds = Vec::new();
    let mut changes = Vec::new();
    let ufw_cmd = || Cmd::argv([ufw.clone()]);
    if let Some(state) = &a.state {
        let enabled = pre_state.contains(" active");
        let change = match state.as_str() {
            "reloaded" | "reset" => true,
            "enabled" => !enabled,
            _ => enabled,
        };
        if change {
            let verb = match state.as_str() {
                "enabled" => "enable",
                "disabled" => "disable",
                "reloaded" => "reload",
                _ => "reset",
            };
            cmds.push(ufw_cmd().op("-f").arg(verb));
            changes.push(Change::Attr {
                subject: "ufw".into(),
                what: "state".into(),
                before: if enabled { "enabled" } else { "disabled" }.into(),
                after: state.clone(),
            });
        }
    }
    if let Some(value) = &a.default {
        let dir = a.direction.as_deref();
        if !matches!(dir, None | Some("outgoing" | "incoming" | "routed")) {
            return Err(failed(
                "For default, direction must be one of \"outgoing\", \"incoming\" and \"routed\", or direction must not be specified.",
                Args::new(),
            ));
        }
        if default_changes(value, dir, &pre_state) {
            let mut c = ufw_cmd().op("default").arg(value.clone());
            if let Some(d) = dir {
                c = c.arg(d);
            }
            cmds.push(c);
            changes.push(Change::Attr {
                subject: "ufw".into(),
                what: format!("default {}", dir.unwrap_or("incoming")),
                before: "other".into(),
                after: value.clone(),
            });
        }
    }
    if let Some(rule) = &a.rule {
        if !matches!(a.direction.as_deref(), None | Some("in" | "out")) {
            return Err(failed(
                "For rules, direction must be one of \"in\" and \"out\", or direction must not be specified.",
                Args::new(),
            ));
        }
        if !a.route && a.interface_in.is_some() && a.interface_out.is_some() {
            return Err(failed(
                "Only route rules can combine interface_in and interface_out",
                Args::new(),
            ));
        }
        let insert = match a.insert {
            Some(n) if !a.delete => {
                if a.insert_relative_to == "zero" {
                    Some(n)
                } else {
                    let out = ctx
                        .query(tr, ufw_cmd().op("status numbered").env("LANG", "C"))
                        .await?;
                    insert_position(n, &a.insert_relative_to, &out.stdout_lossy())
                }
            }
            _ => None,
        };
        // Ansible asks the version for every rule; only a comment depends on it.
        let comment = if a.comment.is_some() {
            let out = run_read(tr, ctx, ufw_cmd().op("--version"), &mut shown).await?;
            if out.status != 0 {
                return Err(fail_out(&out, &shown));
            }
            let Some((major, minor)) = ufw_version(&out.stdout_lossy()) else {
                return Err(failed("Failed to get ufw version.", Args::new()));
            };
            major > 0 || minor >= 35
        } else {
            false
        };
        let dry = run_read(
            tr,
            ctx,
            rule_cmd(&ufw, &a, rule, insert, comment, true),
            &mut shown,
        )
        .await?;
        if dry.status != 0 {
            return Err(fail_out(&dry, &shown));
        }
        if rule_changes(&dry.stdout_lossy(), &pre_rules, &a.from_ip, &a.to_ip) {
            let real = rule_cmd(&ufw, &a, rule, insert, comment, false);
            changes.push(Change::Run {
                command: real.display(),
            });
            cmds.push(real);
        }
    }
    if let Some(value) = &a.logging
        && logging_changes(value, &pre_state)
    {
        cmds.push(ufw_cmd().op("logging").arg(value.clone()));
        changes.push(Change::Attr {
            subject: "ufw".into(),
            what: "logging".into(),
            before: LOGGING
                .captures(&pre_state)
                .and_then(|c| c.get(0))
                .map_or("unknown".into(), |m| {
                    m.as_str().trim_start_matches("Logging: ").to_string()
                }),
            after: value.clone(),
        });
    }
    if cmds.is_empty() {
        return Ok(Verdict::InSync {
            result: result([
                ("commands", Value::from(shown)),
                ("msg", Value::from(pre_state.trim_end())),
            ]),
        });
    }
    Ok(Verdict::Drift(Drift::new(changes, Plan { cmds, ufw })))
}

async fn apply_ufw(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &Drift,
) -> Result<Args, ModuleError> {
    let p = drift
        .plan::<Plan>()
        .ok_or_else(|| ModuleError::Args("ufw: apply without a plan from check".into()))?;
    let mut shown = Vec::new();
    for c in &p.cmds {
        let out = run_read(&mut HostView::of(tr), ctx, c.clone(), &mut shown).await?;
        if out.status != 0 {
            return Err(fail_out(&out, &shown));
        }
    }
    let out = run_read(
        &mut HostView::of(tr),
        ctx,
        Cmd::argv([p.ufw.clone()]).op("status verbose"),
        &mut shown,
    )
    .await?;
    if out.status != 0 {
        return Err(fail_out(&out, &shown));
    }
    Ok(result([
        ("changed", Value::from(true)),
        ("commands", Value::from(shown)),
        ("msg", Value::from(out.stdout_lossy().trim_end())),
    ]))
}

impl Module for Ufw {
    fn name(&self) -> &'static str {
        "ufw"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_ufw(tr, args, ctx))
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(apply_ufw(tr, ctx, drift))
    }

    fn resources(&self, _args: &Args) -> Vec<Resource> {
        BACKED_UP
            .iter()
            .map(|p| Resource::Path((*p).to_string()))
            .collect()
    }

    fn not_reversible(&self, _given: &dyn Fn(&str) -> bool) -> Option<&'static str> {
        Some(
            "rollback restores ufw's files (rules, ufw.conf, /etc/default/ufw) but does not run `ufw reload`: the live firewall keeps the run's rules until ufw reloads or the host boots",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::system::testutil::*;
    use serde_json::json;

    const STATUS: &str = "Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), disabled (routed)\nNew profiles: skip\n";

    #[test]
    fn status_is_read_as_ansible_reads_it() {
        for (value, want) in [("on", false), ("low", false), ("high", true), ("off", true)] {
            assert_eq!(logging_changes(value, STATUS), want, "{value}");
        }
        assert!(!logging_changes("off", "Logging: off\n"));
        assert!(logging_changes("on", "Logging: off\n"));
        assert!(
            logging_changes("on", "Status: inactive\n"),
            "no logging line"
        );
        assert!(!default_changes("deny", None, STATUS));
        assert!(default_changes("allow", Some("incoming"), STATUS));
        assert!(!default_changes("allow", Some("outgoing"), STATUS));
        assert!(
            !default_changes("deny", Some("routed"), STATUS),
            "disabled counts as any"
        );
        assert!(default_changes("deny", None, "Status: inactive\n"));
        assert_eq!(
            ufw_version("ufw 0.36.2\nCopyright 2008-2023 Canonical Ltd.\n"),
            Some((6, 2))
        );
        assert_eq!(ufw_version("ufw 0.34\n"), Some((0, 34)));
        assert_eq!(ufw_version("\n"), None);
    }

    #[test]
    fn a_dry_run_changes_the_rules_as_ansible_compares_them() {
        let pre = "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n### tuple ### allow tcp 22 ::/0 any ::/0 in\n";
        let skip = "Skipping adding existing rule\nSkipping adding existing rule (v6)\n";
        assert!(!rule_changes(skip, pre, "any", "any"));
        let dry_same = format!("*filter\n{pre}COMMIT\n");
        assert!(!rule_changes(&dry_same, pre, "any", "any"));
        let added = format!("{pre}### tuple ### allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in\n");
        assert!(rule_changes(&added, pre, "any", "any"));
        // An IPv4 source: only IPv4 lines are compared (ufw's dry run shows one family).
        let v4_only = "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n";
        assert!(!rule_changes(v4_only, pre, "10.0.0.1", "any"));
        assert!(rule_changes(v4_only, pre, "any", "any"));
        let v6_only = "### tuple ### allow tcp 22 ::/0 any ::/0 in\n";
        assert!(!rule_changes(v6_only, pre, "any", "2001:db8::1"));
    }

    #[test]
    fn insert_positions_count_as_ansible_counts() {
        let numbered = "Status: active\n\n     To                         Action      From\n     --                         ------      ----\n[ 1] 22/tcp                     ALLOW IN    Anywhere\n[ 2] 80/tcp                     ALLOW IN    Anywhere\n[ 3] 22/tcp (v6)                ALLOW IN    Anywhere (v6)\n[ 4] 80/tcp (v6)                ALLOW IN    Anywhere (v6)\n";
        assert_eq!(insert_position(1, "zero", numbered), Some(1));
        assert_eq!(insert_position(0, "first-ipv4", numbered), Some(1));
        assert_eq!(insert_position(0, "last-ipv4", numbered), Some(2));
        assert_eq!(insert_position(0, "first-ipv6", numbered), Some(3));
        assert_eq!(insert_position(0, "last-ipv6", numbered), Some(4));
        assert_eq!(
            insert_position(1, "last-ipv6", numbered),
            None,
            "past the last rule"
        );
        assert_eq!(insert_position(0, "first-ipv4", ""), None);
    }

    /// A fake `ufw` keeping its state in `$FAKE` (`active`, `logging`, `in`, `rules`), and a
    /// fake `grep` that answers the rules files' `### tuple` lines from `$FAKE/rules`. A rule's
    /// tuple line is `### tuple ### ARGS`.
    fn fake_ufw(bin: &std::path::Path) {
        fake_tool(
            bin,
            "grep",
            r#"[ "$1" = -h ] && { cat "$FAKE/rules" 2>/dev/null; exit 0; }
exec /usr/bin/grep "$@""#,
        );
        fake_tool(
            bin,
            "ufw",
            r####"echo "ufw $*" >> "$FAKE/log"
[ "$LANG" = C ] || { echo "LANG is not C" >&2; exit 9; }
case "$1" in
status)
  if [ -e "$FAKE/active" ]; then echo "Status: active"; else echo "Status: inactive"; fi
  echo "Logging: $(cat "$FAKE/logging" 2>/dev/null || echo 'on (low)')"
  echo "Default: $(cat "$FAKE/in" 2>/dev/null || echo deny) (incoming), allow (outgoing), disabled (routed)" ;;
--version) echo "ufw 0.36.2"; echo "Copyright 2008-2023 Canonical Ltd." ;;
-f) case "$2" in enable) touch "$FAKE/active" ;; disable) rm -f "$FAKE/active" ;; esac ;;
default) [ "${3:-incoming}" = incoming ] && echo "$2" > "$FAKE/in" ;;
logging) case "$2" in on) echo 'on (low)' ;; off) echo off ;; *) echo "on ($2)" ;; esac > "$FAKE/logging" ;;
--dry-run)
  shift
  if [ "$1" = delete ]; then shift; /usr/bin/grep -vxF "### tuple ### $*" "$FAKE/rules" 2>/dev/null; exit 0; fi
  if /usr/bin/grep -qxF "### tuple ### $*" "$FAKE/rules" 2>/dev/null; then
    echo "Skipping adding existing rule"; echo "Skipping adding existing rule (v6)"
  else cat "$FAKE/rules" 2>/dev/null; echo "### tuple ### $*"; fi ;;
delete) shift; /usr/bin/grep -vxF "### tuple ### $*" "$FAKE/rules" > "$FAKE/rules.new"; mv "$FAKE/rules.new" "$FAKE/rules" ;;
*) echo "### tuple ### $*" >> "$FAKE/rules"; echo "Rule added" ;;
esac"####,
        );
    }

    /// The ufw commands that changed something, in order.
    fn changes_run(state: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(state.join("log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with("ufw status") && !l.starts_with("ufw --"))
            .map(str::to_string)
            .collect()
    }

    #[tokio::test]
    async fn state_policy_logging_and_rules_change_once_and_check_runs_nothing() {
        let (dir, bin, state) = fake_dirs();
        fake_ufw(&bin);
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        // Each row: arguments → the ufw commands the first run makes (the second makes none).
        let rows: &[(serde_json::Value, &[&str])] = &[
            (json!({"state": "enabled"}), &["ufw -f enable"]),
            (json!({"default": "allow"}), &["ufw default allow"]),
            (
                json!({"default": "deny", "direction": "incoming"}),
                &["ufw default deny incoming"],
            ),
            (json!({"logging": "high"}), &["ufw logging high"]),
            (json!({"logging": "off"}), &["ufw logging off"]),
            (
                json!({"rule": "allow", "to_port": "22", "proto": "tcp"}),
                &["ufw allow from any to any port 22 proto tcp"],
            ),
            (
                json!({"rule": "deny", "from_ip": "10.0.0.0/8", "direction": "in", "interface": "eth0", "log": true, "comment": "no lan"}),
                &["ufw deny in on eth0 log from 10.0.0.0/8 to any comment no lan"],
            ),
            (
                json!({"rule": "allow", "route": true, "interface_in": "eth0", "interface_out": "eth1", "name": "OpenSSH"}),
                &["ufw route allow in on eth0 out on eth1 from any to any app OpenSSH"],
            ),
            (
                json!({"rule": "limit", "to_port": "2222", "insert": 1}),
                &["ufw insert 1 limit from any to any port 2222"],
            ),
            (
                json!({"rule": "allow", "to_port": "22", "proto": "tcp", "delete": true}),
                &["ufw delete allow from any to any port 22 proto tcp"],
            ),
            (json!({"state": "disabled"}), &["ufw -f disable"]),
        ];
        for (i, (a, want)) in rows.iter().enumerate() {
            let a = args(a.clone());
            let before = changes_run(&state).len();
            // --check: drift reported, nothing changed.
            assert_eq!(
                check_only(&Ufw, &mut tr, &a, &c).await.unwrap(),
                None,
                "row {i}"
            );
            assert_eq!(
                changes_run(&state).len(),
                before,
                "row {i}: check ran a change"
            );
            let Ran::Applied(ch, Ok(r)) = check_apply(&Ufw, &mut tr, &a, &c).await else {
                panic!("row {i}")
            };
            assert!(!ch.is_empty());
            assert!(
                r["msg"].as_str().unwrap().starts_with("Status: "),
                "row {i}"
            );
            assert_eq!(&changes_run(&state)[before..], *want, "row {i}");
            assert!(
                matches!(check_apply(&Ufw, &mut tr, &a, &c).await, Ran::InSync(_)),
                "row {i}: not idempotent"
            );
            assert_eq!(changes_run(&state).len(), before + want.len(), "row {i}");
        }
        // reloaded and reset are always a change.
        let reload = args(json!({"state": "reloaded"}));
        for _ in 0..2 {
            assert!(matches!(
                check_apply(&Ufw, &mut tr, &reload, &c).await,
                Ran::Applied(_, Ok(_))
            ));
        }
        assert_eq!(changes_run(&state).last().unwrap(), "ufw -f reload");
    }

    #[tokio::test]
    async fn bad_combinations_and_a_host_without_ufw_fail_as_ansible_says() {
        let (dir, bin, state) = fake_dirs();
        fake_ufw(&bin);
        let c = ctx(dir.path(), None, fake_env(&bin, &state));
        let mut tr = transport();
        for (a, want) in [
            (
                json!({"direction": "in"}),
                "one of the following is required: state, default, rule, logging",
            ),
            (
                json!({"rule": "allow", "proto": "tcp", "name": "OpenSSH"}),
                "parameters are mutually exclusive: name|proto",
            ),
            (
                json!({"rule": "allow", "interface": "eth0"}),
                "missing parameter(s) required by 'interface': direction",
            ),
            (
                json!({"rule": "allow", "direction": "in", "interface_in": "eth0"}),
                "parameters are mutually exclusive: direction|interface_in",
            ),
            (
                json!({"rule": "allow", "direction": "incoming"}),
                "For rules, direction must be one of \"in\" and \"out\", or direction must not be specified.",
            ),
            (
                json!({"default": "deny", "direction": "in"}),
                "For default, direction must be one of \"outgoing\", \"incoming\" and \"routed\", or direction must not be specified.",
            ),
            (
                json!({"rule": "allow", "interface_in": "eth0", "interface_out": "eth1"}),
                "Only route rules can combine interface_in and interface_out",
            ),
        ] {
            let Ran::CheckFailed(m, _) = check_apply(&Ufw, &mut tr, &args(a.clone()), &c).await
            else {
                panic!("{a}")
            };
            assert_eq!(m, want, "{a}");
        }
        assert!(changes_run(&state).is_empty());
        // A host without the tool (unless this machine has it where PATH cannot hide it).
        if !sbin_has("ufw") {
            let (dir2, bin2, _state2) = fake_dirs();
            // PATH is only the empty fake folder (the machine may have the tool on its PATH).
            let c2 = ctx(
                dir2.path(),
                None,
                vec![("PATH".into(), bin2.display().to_string())],
            );
            let Ran::CheckFailed(m, _) =
                check_apply(&Ufw, &mut tr, &args(json!({"state": "enabled"})), &c2).await
            else {
                panic!()
            };
            assert!(
                m.starts_with("Failed to find required executable \"ufw\" in paths: ")
                    && m.contains("/usr/sbin"),
                "{m}"
            );
        }
        let a = args(json!({"state": "enabled"}));
        assert!(
            Ufw.resources(&a)
                .contains(&Resource::Path("/etc/ufw/user.rules".into()))
        );
        assert!(Ufw.not_reversible(&|_| true).is_some());
    }
}
