//! Facts (`gather_facts`, `setup`): one command per host that prints what playbooks commonly
//! read (`ansible_hostname`, `ansible_os_family`, `ansible_distribution`, ...).
//!
//! Owns the fact names and the one read-only script that collects them. It must not change
//! the host.

use serde_json::{Map, Value as Json};

use crate::exec::host::HostState;
use crate::transport::{AnyTransport, Cmd, Transport};

/// Trusted shell written here (no playbook value in it): key=value lines.
const SCRIPT: &str = "printf 'hostname=%s\\n' \"$(uname -n | cut -d. -f1)\"; \
printf 'nodename=%s\\n' \"$(uname -n)\"; \
printf 'fqdn=%s\\n' \"$(hostname -f 2>/dev/null || uname -n)\"; \
printf 'system=%s\\nkernel=%s\\nmachine=%s\\n' \"$(uname -s)\" \"$(uname -r)\" \"$(uname -m)\"; \
printf 'user_id=%s\\nuser_uid=%s\\nuser_gid=%s\\n' \"$(id -un)\" \"$(id -u)\" \"$(id -g)\"; \
printf 'user_dir=%s\\n' \"$HOME\"; \
printf 'vcpus=%s\\n' \"$(nproc 2>/dev/null || echo 1)\"; \
if [ -r /etc/os-release ]; then . /etc/os-release; fi; \
printf 'os_id=%s\\nos_version=%s\\nos_like=%s\\nos_codename=%s\\n' \"${ID:-}\" \"${VERSION_ID:-}\" \"${ID_LIKE:-}\" \"${VERSION_CODENAME:-}\"";

/// Every fact [`parse`] sets (as `ansible_NAME` and in `ansible_facts`), for the plan-time
/// check, which cannot know their values.
pub const FACT_NAMES: &[&str] = &[
    "hostname",
    "nodename",
    "fqdn",
    "system",
    "kernel",
    "architecture",
    "machine",
    "user_id",
    "user_uid",
    "user_gid",
    "user_dir",
    "processor_vcpus",
    "distribution",
    "distribution_version",
    "distribution_major_version",
    "distribution_release",
    "os_family",
];

/// Collects the facts in one round trip.
pub async fn gather(tr: &mut AnyTransport) -> Result<Map<String, Json>, String> {
    let out = tr
        .exec(&Cmd::raw(SCRIPT))
        .await
        .map_err(|e| e.to_string())?;
    if out.status != 0 {
        return Err(format!(
            "gathering facts failed: {}",
            out.stderr_lossy().trim()
        ));
    }
    Ok(parse(&out.stdout_lossy()))
}

/// Turns the script's lines into Ansible's fact names (without the `ansible_` prefix, as in
/// `ansible_facts`).
pub fn parse(text: &str) -> Map<String, Json> {
    let mut raw = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            raw.insert(k.to_string(), v.to_string());
        }
    }
    let get = |k: &str| raw.get(k).cloned().unwrap_or_default();
    let os_id = get("os_id");
    let (dist, family) = distribution(&os_id, &get("os_like"));
    let mut f = Map::new();
    let mut put = |k: &str, v: Json| {
        f.insert(k.to_string(), v);
    };
    put("hostname", Json::from(get("hostname")));
    put("nodename", Json::from(get("nodename")));
    put("fqdn", Json::from(get("fqdn")));
    put("system", Json::from(get("system")));
    put("kernel", Json::from(get("kernel")));
    put("architecture", Json::from(get("machine")));
    put("machine", Json::from(get("machine")));
    put("user_id", Json::from(get("user_id")));
    put(
        "user_uid",
        Json::from(get("user_uid").parse::<i64>().unwrap_or(-1)),
    );
    put(
        "user_gid",
        Json::from(get("user_gid").parse::<i64>().unwrap_or(-1)),
    );
    put("user_dir", Json::from(get("user_dir")));
    put(
        "processor_vcpus",
        Json::from(get("vcpus").parse::<i64>().unwrap_or(1)),
    );
    put("distribution", Json::from(dist));
    put("distribution_version", Json::from(get("os_version")));
    put(
        "distribution_major_version",
        Json::from(
            get("os_version")
                .split('.')
                .next()
                .unwrap_or("")
                .to_string(),
        ),
    );
    put("distribution_release", Json::from(get("os_codename")));
    put("os_family", Json::from(family));
    f
}

fn distribution(id: &str, like: &str) -> (String, String) {
    let dist = match id {
        "debian" => "Debian",
        "ubuntu" => "Ubuntu",
        "rhel" => "RedHat",
        "centos" => "CentOS",
        "fedora" => "Fedora",
        "rocky" => "Rocky",
        "almalinux" => "AlmaLinux",
        "alpine" => "Alpine",
        "arch" => "Archlinux",
        "opensuse-leap" | "sles" => "SUSE",
        "" => "",
        other => other,
    }
    .to_string();
    let family = if id == "debian" || id == "ubuntu" || like.contains("debian") {
        "Debian"
    } else if ["rhel", "centos", "fedora", "rocky", "almalinux"].contains(&id)
        || like.contains("rhel")
        || like.contains("fedora")
    {
        "RedHat"
    } else if id == "alpine" {
        "Alpine"
    } else if id == "arch" {
        "Archlinux"
    } else if like.contains("suse") {
        "Suse"
    } else {
        &dist
    }
    .to_string();
    (dist, family)
}

/// Stores facts as Ansible does: `ansible_facts` plus each as a top-level `ansible_NAME`.
pub fn store(st: &mut HostState, facts: &Map<String, Json>) {
    for (k, v) in facts {
        st.set_runtime(format!("ansible_{k}"), v.clone());
    }
    st.set_runtime("ansible_facts", Json::Object(facts.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fact_names_list_every_fact() {
        let f = parse("");
        let mut names: Vec<&str> = f.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut listed = FACT_NAMES.to_vec();
        listed.sort_unstable();
        assert_eq!(names, listed);
    }

    #[test]
    fn facts_use_ansible_names() {
        let f = parse("hostname=web01\nos_id=debian\nos_version=12\nmachine=x86_64\nvcpus=2\n");
        assert_eq!(f["hostname"], "web01");
        assert_eq!(f["distribution"], "Debian");
        assert_eq!(f["os_family"], "Debian");
        assert_eq!(f["distribution_major_version"], "12");
        assert_eq!(f["architecture"], "x86_64");
        assert_eq!(f["processor_vcpus"], 2);
        let (d, fam) = distribution("rocky", "rhel centos fedora");
        assert_eq!((d.as_str(), fam.as_str()), ("Rocky", "RedHat"));
    }
}
