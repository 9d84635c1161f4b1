//! Facts (`gather_facts`, `setup`): one read-only command per host gathers what playbooks
//! read, with the names, shapes and types of Ansible's setup module (`ansible_hostname`,
//! `ansible_default_ipv4.address`, `ansible_mounts`, `ansible_<iface>`, ...).
//!
//! Owns the fact names and groups (`gather_subset`), `filter`, and how facts are stored on a
//! host; [`script`] owns the shell and [`parse`] its reading. It must not change the host.

mod parse;
mod script;

use globset::{Glob, GlobMatcher};
use serde_json::{Map, Value as Json};

use crate::exec::host::HostState;
use crate::transport::{AnyTransport, Become, Cmd, Transport};

pub use parse::facts as parse_groups;

/// A group of facts, as Ansible's `gather_subset` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// Platform, distribution, user, date_time, dns, env, lsb, selinux, pkg_mgr,
    /// service_mgr, python.
    Min,
    /// Interfaces, addresses, default routes.
    Network,
    /// Memory, processors, mounts, uptime.
    Hardware,
    /// virtualization_type and _role.
    Virtual,
}

/// Every fact rdeploy gathers, by group (names without `ansible_`; interfaces add
/// `ansible_<iface>` besides these).
pub const GROUPS: &[(Group, &[&str])] = &[
    (
        Group::Min,
        &[
            "hostname",
            "nodename",
            "fqdn",
            "domain",
            "system",
            "kernel",
            "kernel_version",
            "machine",
            "architecture",
            "userspace_bits",
            "userspace_architecture",
            "machine_id",
            "distribution",
            "distribution_version",
            "distribution_major_version",
            "distribution_minor_version",
            "distribution_release",
            "os_family",
            "user_id",
            "user_uid",
            "user_gid",
            "user_gecos",
            "user_dir",
            "user_shell",
            "real_user_id",
            "effective_user_id",
            "real_group_id",
            "effective_group_id",
            "date_time",
            "dns",
            "env",
            "lsb",
            "selinux",
            "pkg_mgr",
            "service_mgr",
            "python",
            "python_version",
        ],
    ),
    (
        Group::Network,
        &[
            "interfaces",
            "default_ipv4",
            "default_ipv6",
            "all_ipv4_addresses",
            "all_ipv6_addresses",
            "locally_reachable_ips",
        ],
    ),
    (
        Group::Hardware,
        &[
            "memtotal_mb",
            "memfree_mb",
            "swaptotal_mb",
            "swapfree_mb",
            "memory_mb",
            "processor",
            "processor_count",
            "processor_cores",
            "processor_threads_per_core",
            "processor_vcpus",
            "processor_nproc",
            "uptime_seconds",
            "mounts",
        ],
    ),
    (
        Group::Virtual,
        &[
            "virtualization_type",
            "virtualization_role",
            "virtualization_tech_guest",
            "virtualization_tech_host",
        ],
    ),
];

/// Facts Ansible's setup module gathers on Linux that rdeploy does not: named as such when
/// a playbook reads one (`fact 'bios_date' is not gathered by rdeploy`), not as an undefined
/// variable.
pub const NOT_GATHERED: &[&str] = &[
    "apparmor",
    "bios_date",
    "bios_vendor",
    "bios_version",
    "board_asset_tag",
    "board_name",
    "board_serial",
    "board_vendor",
    "board_version",
    "chassis_asset_tag",
    "chassis_serial",
    "chassis_vendor",
    "chassis_version",
    "cmdline",
    "device_links",
    "devices",
    "distribution_file_parsed",
    "distribution_file_path",
    "distribution_file_variety",
    "fibre_channel_wwn",
    "fips",
    "flags",
    "form_factor",
    "hostnqn",
    "is_chroot",
    "iscsi_iqn",
    "loadavg",
    "local",
    "lvm",
    "proc_cmdline",
    "product_name",
    "product_serial",
    "product_uuid",
    "product_version",
    "selinux_python_present",
    "ssh_host_key_dsa_public",
    "ssh_host_key_ecdsa_public",
    "ssh_host_key_ecdsa_public_keytype",
    "ssh_host_key_ed25519_public",
    "ssh_host_key_ed25519_public_keytype",
    "ssh_host_key_rsa_public",
    "ssh_host_key_rsa_public_keytype",
    "system_capabilities",
    "system_capabilities_enforced",
    "system_vendor",
    "zfs_zpools",
    "zfs_datasets",
];

/// Every fact name rdeploy may set (besides `ansible_<iface>`), for the plan-time check.
pub fn fact_names() -> impl Iterator<Item = &'static str> {
    GROUPS.iter().flat_map(|(_, names)| names.iter().copied())
}

/// "fact 'X' is not gathered by rdeploy" when `name` (a variable such as `ansible_bios_date`,
/// or a key of `ansible_facts`) is a fact Ansible gathers and rdeploy does not.
pub fn not_gathered(name: &str) -> Option<String> {
    let bare = name.strip_prefix("ansible_").unwrap_or(name);
    NOT_GATHERED
        .contains(&bare)
        .then(|| format!("fact '{bare}' is not gathered by rdeploy"))
}

/// [`not_gathered`] for an undefined path as errors name it: `ansible_bios_date`,
/// `ansible_facts.bios_date`, `ansible_facts['bios_date']`.
pub fn not_gathered_path(path: &str) -> Option<String> {
    let mut parts = path
        .split(['.', '[', ']'])
        .map(|p| p.trim_matches(['\'', '"']))
        .filter(|p| !p.is_empty());
    match parts.next()? {
        "ansible_facts" => not_gathered(parts.next()?),
        head if head.starts_with("ansible_") => not_gathered(head),
        _ => None,
    }
}

/// Whether `name` could be one of a host's network interfaces (`eth0`, `ens3`, `br_lan`,
/// `docker0`...): their facts (`ansible_eth0`) exist only on hosts that have them, so the
/// plan-time check cannot call them undefined.
pub fn may_be_interface(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "lo", "eth", "en", "em", "wl", "ww", "br", "bond", "team", "vlan", "veth", "virbr", "vnet",
        "vmbr", "docker", "tun", "tap", "ib", "ppp", "wg", "dummy", "ifb", "sit", "gre", "ip6",
        "vxlan", "cali", "flannel", "cni", "cilium", "kube", "lxc", "lxd", "ovs", "macvlan",
        "ipvlan", "usb", "p",
    ];
    !name.is_empty()
        && !fact_names().any(|f| f == name)
        && !NOT_GATHERED.contains(&name)
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && PREFIXES.iter().any(|p| {
            name.strip_prefix(p).is_some_and(|rest| {
                rest.is_empty() && *p == "lo"
                    || rest.chars().next().is_some_and(|c| {
                        c.is_ascii_digit() || c == '_' || *p != "p" && c.is_ascii_alphanumeric()
                    })
            })
        })
}

/// Subsets Ansible knows but rdeploy does not gather: refused when asked for, accepted
/// when excluded.
const OTHER_SUBSETS: &[&str] = &["facter", "ohai"];

/// The groups a `gather_subset` list asks for, as Ansible's `get_collector_names` reads it
/// (`min` always, unless `!min`; `!all` keeps `min`; a name given explicitly wins over an
/// exclusion).
pub fn groups(subset: &[String]) -> Result<Vec<Group>, String> {
    use Group::*;
    let all = [Min, Network, Hardware, Virtual];
    let name = |s: &str| match s {
        "network" => Some(Network),
        "hardware" => Some(Hardware),
        "virtual" => Some(Virtual),
        _ => None,
    };
    let spec: Vec<&str> = if subset.is_empty() {
        vec!["all"]
    } else {
        subset.iter().map(|s| s.trim()).collect()
    };
    let mut add: Vec<Group> = Vec::new();
    let mut exclude: Vec<Group> = Vec::new();
    let mut explicit: Vec<Group> = Vec::new();
    for s in std::iter::once("min").chain(spec) {
        match s {
            "min" => add.push(Min),
            "all" => add.extend(all),
            "!min" => exclude.push(Min),
            "!all" => exclude.extend([Network, Hardware, Virtual]),
            neg if neg.starts_with('!') => {
                if let Some(g) = name(&neg[1..]) {
                    exclude.push(g);
                }
            }
            other => match name(other) {
                Some(g) => {
                    add.push(g);
                    explicit.push(g);
                }
                None if OTHER_SUBSETS.contains(&other) => {
                    return Err(format!(
                        "gather_subset '{other}' is not supported by rdeploy (it gathers all, min, network, hardware, virtual)"
                    ));
                }
                None => {
                    let known = ["all", "min", "network", "hardware", "virtual"];
                    let hint = crate::diag::did_you_mean(other, known)
                        .map(|m| format!(", did you mean '{m}'?"))
                        .unwrap_or_default();
                    return Err(format!(
                        "unknown gather_subset '{other}' (all, min, network, hardware, virtual, each may be negated with '!'){hint}"
                    ));
                }
            },
        }
    }
    let mut out: Vec<Group> = all
        .into_iter()
        .filter(|g| add.contains(g) && (!exclude.contains(g) || explicit.contains(g)))
        .collect();
    out.dedup();
    Ok(out)
}

/// How the gathering runs on the host.
#[derive(Debug, Default)]
pub struct How {
    /// The task's `become`.
    pub become_: Option<Become>,
    /// The task's `environment` (it shows in `ansible_env`, as in Ansible).
    pub environment: Vec<(String, String)>,
    /// `ansible_python_interpreter`, tried first for the `python` fact.
    pub python: Option<String>,
    /// `gather_timeout`: seconds for reading one mount's size.
    pub timeout: Option<u64>,
}

/// The variable that hands `ansible_python_interpreter` to the script (not an `env` fact).
pub(crate) const PYTHON_VAR: &str = "RDEPLOY_FACTS_PYTHON";

/// The variable that hands `gather_timeout` to the script.
pub(crate) const TIMEOUT_VAR: &str = "RDEPLOY_FACTS_TIMEOUT";

/// A `gather_subset` written without templates (a list, or comma-separated text), to check
/// before the run; `None` when any of it is only known at run time.
pub fn literal_subset(n: &crate::yaml::Node) -> Option<Vec<String>> {
    use crate::yaml::Kind;
    let text = |n: &crate::yaml::Node| match &n.kind {
        Kind::Str { value, .. } if !crate::template::has_template(value) => Some(value.clone()),
        _ => None,
    };
    match &n.kind {
        Kind::Seq(items) => items.iter().map(text).collect(),
        _ => Some(text(n)?.split(',').map(|s| s.trim().to_string()).collect()),
    }
}

/// The one command that gathers `groups`.
fn command(groups: &[Group], how: &How) -> Cmd {
    let mut cmd = Cmd::raw(script::PROLOGUE);
    for g in groups {
        cmd = cmd.then(Cmd::raw(match g {
            Group::Min => script::MIN,
            Group::Network => script::NETWORK,
            Group::Hardware => script::HARDWARE,
            Group::Virtual => script::VIRTUAL,
        }));
    }
    let mut cmd = cmd.then(Cmd::raw("true"));
    for (k, v) in &how.environment {
        cmd = cmd.env(k.clone(), v.clone());
    }
    if let Some(p) = &how.python {
        cmd = cmd.env(PYTHON_VAR, p.clone());
    }
    if let Some(t) = how.timeout {
        cmd = cmd.env(TIMEOUT_VAR, t.to_string());
    }
    match &how.become_ {
        Some(b) => cmd.with_become(b.clone()),
        None => cmd,
    }
}

/// Collects the facts of `groups` in one round trip (names without `ansible_`).
pub async fn gather(
    tr: &mut AnyTransport,
    groups: &[Group],
    how: &How,
) -> Result<Map<String, Json>, String> {
    let out = tr
        .exec(&command(groups, how))
        .await
        .map_err(|e| e.to_string())?;
    if out.status != 0 {
        return Err(format!(
            "gathering facts failed: {}",
            out.stderr_lossy().trim()
        ));
    }
    Ok(parse::facts(&out.stdout_lossy(), groups))
}

/// Keeps the facts whose `ansible_` name matches one of `patterns` (shell globs; a pattern
/// without the prefix also matches with it), as `setup: filter:` does. No pattern keeps all.
pub fn filter(facts: Map<String, Json>, patterns: &[String]) -> Result<Map<String, Json>, String> {
    let patterns: Vec<&String> = patterns.iter().filter(|p| !p.is_empty()).collect();
    if patterns.is_empty() || patterns.iter().any(|p| p.as_str() == "*") {
        return Ok(facts);
    }
    let mut matchers: Vec<GlobMatcher> = Vec::new();
    for p in patterns {
        let glob = |g: &str| {
            Glob::new(g)
                .map(|g| g.compile_matcher())
                .map_err(|e| format!("filter '{p}': {e}"))
        };
        matchers.push(glob(p)?);
        if !p.starts_with("ansible_") {
            matchers.push(glob(&format!("ansible_{p}"))?);
        }
    }
    Ok(facts
        .into_iter()
        .filter(|(k, _)| {
            let full = format!("ansible_{k}");
            matchers.iter().any(|m| m.is_match(&full))
        })
        .collect())
}

/// The result key naming the host whose facts these are (`delegate_facts: true`); the
/// executor stores them there.
pub const DELEGATED: &str = "_rdeploy_facts_for";

/// Stores facts as Ansible does: merged into `ansible_facts`, and each as a top-level
/// `ansible_NAME` (`-` in an interface's name becomes `_` there, as in Ansible).
pub fn store(st: &mut HostState, facts: &Map<String, Json>) {
    let mut all = match st.runtime.get("ansible_facts") {
        Some(Json::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    for (k, v) in facts {
        // Also as `setup` returns them (delegated facts come from a registered result).
        let k = k.strip_prefix("ansible_").unwrap_or(k);
        if k != "gather_subset" && k != "module_setup" {
            st.set_runtime(format!("ansible_{k}"), v.clone());
        }
        all.insert(k.to_string(), v.clone());
    }
    st.set_runtime("ansible_facts", Json::Object(all));
}

/// Gathered facts as Ansible's `setup` returns them (what `register:` sees): each name with
/// its `ansible_` prefix, but `gather_subset` and `module_setup`.
pub fn as_returned(facts: Map<String, Json>) -> Map<String, Json> {
    facts
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "gather_subset" | "module_setup" => (k, v),
            _ => (format!("ansible_{k}"), v),
        })
        .collect()
}

/// Facts a module returned (`ansible_facts` of its result), as Ansible keeps them: each is a
/// variable by its own name (`getent_passwd`), and `ansible_facts` holds it without an
/// `ansible_` prefix.
pub fn store_module_facts(st: &mut HostState, facts: &Map<String, Json>) {
    let mut all = match st.runtime.get("ansible_facts") {
        Some(Json::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    for (k, v) in facts {
        st.set_runtime(k.clone(), v.clone());
        let short = k.strip_prefix("ansible_").unwrap_or(k);
        all.insert(short.to_string(), v.clone());
    }
    st.set_runtime("ansible_facts", Json::Object(all));
}

#[cfg(test)]
mod tests;
