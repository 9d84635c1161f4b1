//! Turns the gathering script's sections into Ansible's facts, with Ansible's names, shapes
//! and types (integers as integers, lists as lists, the same keys in `default_ipv4`,
//! `date_time`, `mounts`, `ansible_<iface>` ...), following ansible-core's Linux collectors.
//!
//! Owns the interpretation of host output. Pure: text in, facts out; a missing section gives
//! the value Ansible gives when its source is missing, never a panic.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value as Json, json};

use super::Group;

/// The script's output split at its `@@NAME` lines.
pub struct Sections<'a> {
    map: HashMap<&'a str, Vec<&'a str>>,
    order: Vec<&'a str>,
}

impl<'a> Sections<'a> {
    pub fn new(text: &'a str) -> Sections<'a> {
        let mut map: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut order = Vec::new();
        let mut current: Option<&str> = None;
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("@@") {
                current = Some(name);
                order.push(name);
                map.entry(name).or_default();
            } else if let Some(name) = current {
                map.entry(name).or_default().push(line);
            }
        }
        for lines in map.values_mut() {
            while lines.last().is_some_and(|l| l.trim().is_empty()) {
                lines.pop();
            }
        }
        Sections { map, order }
    }

    fn lines(&self, name: &str) -> &[&'a str] {
        self.map.get(name).map_or(&[], Vec::as_slice)
    }

    fn text(&self, name: &str) -> String {
        self.lines(name).join("\n")
    }

    fn first(&self, name: &str) -> Option<&'a str> {
        self.lines(name).first().copied()
    }

    /// `key=value` lines of a section.
    fn pairs(&self, name: &str) -> HashMap<&'a str, &'a str> {
        self.lines(name)
            .iter()
            .filter_map(|l| l.split_once('='))
            .collect()
    }

    /// Names of sections that start with `prefix ` (one per interface), in output order.
    fn with_prefix<'s>(&'s self, prefix: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.order
            .iter()
            .filter_map(move |n| n.strip_prefix(prefix)?.strip_prefix(' '))
    }
}

/// Every fact the script's output gives for these groups (names without `ansible_`).
pub fn facts(text: &str, groups: &[Group]) -> Map<String, Json> {
    let s = Sections::new(text);
    let mut f = Map::new();
    if groups.contains(&Group::Min) {
        platform(&s, &mut f);
        distribution(&s, &mut f);
        user(&s, &mut f);
        date_time(&s, &mut f);
        dns(&s, &mut f);
        env(&s, &mut f);
        lsb(&s, &mut f);
        selinux(&s, &mut f);
        pkg_mgr(&s, &mut f);
        service_mgr(&s, &mut f);
        python(&s, &mut f);
    }
    if groups.contains(&Group::Network) {
        network(&s, &mut f);
    }
    if groups.contains(&Group::Hardware) {
        hardware(&s, &mut f);
    }
    if groups.contains(&Group::Virtual) {
        virtual_facts(&s, &mut f);
    }
    f
}

fn put(f: &mut Map<String, Json>, k: &str, v: impl Into<Json>) {
    f.insert(k.to_string(), v.into());
}

fn platform(s: &Sections, f: &mut Map<String, Json>) {
    let u = s.lines("uname");
    let at = |i: usize| u.get(i).copied().unwrap_or("").to_string();
    let node = at(0);
    let machine = at(3);
    put(f, "nodename", node.clone());
    put(
        f,
        "hostname",
        node.split('.').next().unwrap_or("").to_string(),
    );
    put(f, "system", at(1));
    put(f, "kernel", at(2));
    put(f, "machine", machine.clone());
    put(f, "kernel_version", at(4));
    // Python's socket.getfqdn(): the address's names; the first with a dot, else the first.
    let fqdn = s
        .first("fqdn")
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>())
        .filter(|names| !names.is_empty())
        .map_or_else(
            || node.clone(),
            |names| {
                names
                    .iter()
                    .find(|n| n.contains('.'))
                    .unwrap_or(&names[0])
                    .to_string()
            },
        );
    put(
        f,
        "domain",
        fqdn.split_once('.').map_or("", |(_, d)| d).to_string(),
    );
    put(f, "fqdn", fqdn);
    let bits = s.first("bits").unwrap_or("").trim().to_string();
    put(f, "userspace_bits", bits.clone());
    put(f, "architecture", machine.clone());
    if machine == "x86_64" {
        match bits.as_str() {
            "64" => put(f, "userspace_architecture", "x86_64"),
            "32" => put(f, "userspace_architecture", "i386"),
            _ => {}
        }
    }
    if let Some(id) = s.first("machine_id").filter(|l| !l.trim().is_empty()) {
        put(f, "machine_id", id.trim().to_string());
    }
}

/// `/etc/os-release` as a map, quotes removed.
fn os_release(s: &Sections) -> HashMap<String, String> {
    s.lines("os_release")
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

/// The first `N.N...` run in `text`.
fn version_in(text: &str) -> Option<String> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let v: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    Some(v.trim_end_matches('.').to_string())
}

/// Ansible's names for `distro.id()` values (`distro.id().capitalize()` and its fixes).
fn distribution_name(id: &str, name: &str) -> String {
    match id {
        "rhel" => "RedHat".into(),
        "centos" => "CentOS".into(),
        "sled" => "SLED".into(),
        "pop" => "Pop!_OS".into(),
        "euleros" => "EulerOS".into(),
        "openeuler" => "openEuler".into(),
        "clear-linux-os" => "Clear Linux OS".into(),
        "amzn" => "Amazon".into(),
        "almalinux" => "AlmaLinux".into(),
        "opensuse-leap" => "openSUSE Leap".into(),
        "opensuse-tumbleweed" => "openSUSE Tumbleweed".into(),
        "sles" => "SLES".into(),
        "arch" => "Archlinux".into(),
        "ol" => "OracleLinux".into(),
        "linuxmint" => "Linux Mint".into(),
        "" if name.is_empty() => "OtherLinux".into(),
        "" => name.to_string(),
        other => {
            let mut c = other.chars();
            c.next().map_or_else(String::new, |first| {
                first
                    .to_uppercase()
                    .chain(c.flat_map(char::to_lowercase))
                    .collect()
            })
        }
    }
}

/// Ansible's `OS_FAMILY_MAP`, for the distributions rdeploy names.
fn os_family(dist: &str) -> String {
    const MAP: &[(&str, &[&str])] = &[
        (
            "RedHat",
            &[
                "RedHat",
                "RHEL",
                "Fedora",
                "CentOS",
                "Scientific",
                "OracleLinux",
                "Amazon",
                "Virtuozzo",
                "XenServer",
                "Alibaba",
                "EulerOS",
                "openEuler",
                "AlmaLinux",
                "Rocky",
                "TencentOS",
                "EuroLinux",
                "CloudLinux",
            ],
        ),
        (
            "Debian",
            &[
                "Debian",
                "Ubuntu",
                "Raspbian",
                "Neon",
                "Linux Mint",
                "SteamOS",
                "Devuan",
                "Kali",
                "Cumulus Linux",
                "Pop!_OS",
                "Parrot",
                "Uos",
                "Deepin",
                "OSMC",
            ],
        ),
        (
            "Suse",
            &[
                "SuSE",
                "SLES",
                "SLED",
                "openSUSE",
                "openSUSE Tumbleweed",
                "SLES_SAP",
                "SUSE_LINUX",
                "openSUSE Leap",
                "SL-Micro",
                "openSUSE MicroOS",
            ],
        ),
        ("Archlinux", &["Archlinux", "Antergos", "Manjaro"]),
        ("Gentoo", &["Gentoo", "Funtoo"]),
        ("Alpine", &["Alpine"]),
        ("Slackware", &["Slackware"]),
        ("Altlinux", &["Altlinux"]),
        ("ClearLinux", &["Clear Linux OS", "Clear Linux Mix"]),
    ];
    MAP.iter()
        .find(|(_, names)| names.contains(&dist))
        .map_or(dist, |(family, _)| family)
        .to_string()
}

fn distribution(s: &Sections, f: &mut Map<String, Json>) {
    let os = os_release(s);
    let get = |k: &str| os.get(k).cloned().unwrap_or_default();
    let id = get("ID");
    let dist = distribution_name(&id, &get("NAME"));
    // distro.version(): VERSION_ID; Debian and CentOS take the most precise one there is.
    let mut version = get("VERSION_ID");
    let best_from = match id.as_str() {
        "debian" => version_in(&s.text("debian_version")),
        "centos" => version_in(&s.text("centos_release")),
        _ => None,
    };
    if let Some(best) = best_from
        && best.matches('.').count() > version.matches('.').count()
    {
        version = best;
    }
    if id == "centos" {
        version = version.split('.').take(2).collect::<Vec<_>>().join(".");
    }
    let mut minor = None;
    if id == "debian" {
        let dv = s.text("debian_version");
        if let Some(v) = version_in(&dv)
            && let Some((_, m)) = v.split_once('.')
        {
            minor = Some(m.split('.').next().unwrap_or("").to_string());
        }
    }
    let release = os
        .get("VERSION_CODENAME")
        .or_else(|| os.get("UBUNTU_CODENAME"))
        .cloned()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            // distro.codename(): the parenthesised part of VERSION.
            let v = get("VERSION");
            let (_, rest) = v.split_once('(')?;
            Some(rest.trim_end_matches(')').trim().to_string())
        })
        .unwrap_or_else(|| "NA".into());
    let version = if version.is_empty() {
        "NA".to_string()
    } else {
        version
    };
    let major = version.split('.').next().unwrap_or("").to_string();
    put(f, "os_family", os_family(&dist));
    put(f, "distribution", dist);
    put(
        f,
        "distribution_major_version",
        if major.is_empty() { "NA".into() } else { major },
    );
    put(f, "distribution_version", version);
    put(f, "distribution_release", release);
    if let Some(m) = minor {
        put(f, "distribution_minor_version", m);
    }
}

fn user(s: &Sections, f: &mut Map<String, Json>) {
    let id = s.lines("id");
    let num = |i: usize| {
        id.get(i)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map_or(Json::Null, Json::from)
    };
    let name = id.first().copied().unwrap_or("").to_string();
    let pw: Vec<&str> = s
        .first("passwd")
        .map_or_else(Vec::new, |l| l.split(':').collect());
    let field = |i: usize| pw.get(i).copied().unwrap_or("").to_string();
    let pw_num = |i: usize, fallback: Json| {
        pw.get(i)
            .and_then(|v| v.parse::<i64>().ok())
            .map_or(fallback, Json::from)
    };
    put(f, "user_id", name);
    put(f, "user_uid", pw_num(2, num(1)));
    put(f, "user_gid", pw_num(3, num(2)));
    put(f, "user_gecos", field(4));
    put(f, "user_dir", field(5));
    put(f, "user_shell", field(6));
    put(f, "real_user_id", num(3));
    put(f, "effective_user_id", num(1));
    put(f, "real_group_id", num(4));
    // Ansible's collector reports os.getgid() here too.
    put(f, "effective_group_id", num(4));
}

fn date_time(s: &Sections, f: &mut Map<String, Json>) {
    let Some(line) = s.first("date") else {
        return;
    };
    let p: Vec<&str> = line.split('|').collect();
    if p.len() < 13 {
        return;
    }
    let (year, month, weekday, wday, week, day, hour, min, sec, epoch, tz, off, nanos) = (
        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12],
    );
    let micro = nanos
        .get(..6)
        .filter(|m| m.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or("000000");
    let secs: i64 = epoch.parse().unwrap_or(0);
    let (uy, um, ud, uh, umin, us) = utc(secs);
    let iso = format!("{uy:04}-{um:02}-{ud:02}T{uh:02}:{umin:02}:{us:02}");
    // time.tzname[1]: the summer-time name, or the standard one where there is none.
    let zones: Vec<(&str, i32)> = s
        .lines("tz")
        .iter()
        .filter_map(|l| {
            let (n, o) = l.split_once(' ')?;
            Some((n, o.trim().parse::<i32>().ok()?))
        })
        .collect();
    let tz_dst = match zones.as_slice() {
        [(a, ao), (b, bo)] if ao != bo => {
            if ao > bo {
                *a
            } else {
                *b
            }
        }
        [(a, _), ..] => *a,
        [] => tz,
    };
    let d = json!({
        "year": year, "month": month, "weekday": weekday, "weekday_number": wday,
        "weeknumber": week, "day": day, "hour": hour, "minute": min, "second": sec,
        "epoch": epoch, "epoch_int": epoch,
        "date": format!("{year}-{month}-{day}"),
        "time": format!("{hour}:{min}:{sec}"),
        "iso8601_micro": format!("{iso}.{micro}Z"),
        "iso8601": format!("{iso}Z"),
        "iso8601_basic": format!("{year}{month}{day}T{hour}{min}{sec}{micro}"),
        "iso8601_basic_short": format!("{year}{month}{day}T{hour}{min}{sec}"),
        "tz": tz, "tz_dst": tz_dst, "tz_offset": off,
    });
    put(f, "date_time", d);
}

/// UTC calendar time of a Unix time (Howard Hinnant's civil-from-days).
fn utc(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

fn dns(s: &Sections, f: &mut Map<String, Json>) {
    let mut d = Map::new();
    for line in s.lines("resolv") {
        if line.starts_with('#') || line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        let t: Vec<&str> = line.split_whitespace().collect();
        let rest = || Json::from(t[1..].iter().map(|x| x.to_string()).collect::<Vec<_>>());
        match t[0] {
            "nameserver" => {
                let list = d
                    .entry("nameservers")
                    .or_insert_with(|| Json::Array(Vec::new()));
                if let Json::Array(a) = list {
                    a.extend(t[1..].iter().map(|x| Json::from(*x)));
                }
            }
            "domain" if t.len() > 1 => {
                d.insert("domain".into(), Json::from(t[1]));
            }
            "search" => {
                d.insert("search".into(), rest());
            }
            "sortlist" => {
                d.insert("sortlist".into(), rest());
            }
            "options" => {
                let mut o = Map::new();
                for opt in &t[1..] {
                    match opt.split_once(':') {
                        Some((k, v)) if !v.is_empty() => o.insert(k.into(), Json::from(v)),
                        Some((k, _)) => o.insert(k.into(), Json::Bool(true)),
                        None => o.insert((*opt).into(), Json::Bool(true)),
                    };
                }
                d.insert("options".into(), Json::Object(o));
            }
            _ => {}
        }
    }
    put(f, "dns", Json::Object(d));
}

fn env(s: &Sections, f: &mut Map<String, Json>) {
    let mut e: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in s.lines("env") {
        if let Some(more) = line.strip_prefix('+')
            && let Some(v) = last.as_ref().and_then(|k| e.get_mut(k))
        {
            v.push('\n');
            v.push_str(more);
        } else if let Some((k, v)) = line.split_once('=') {
            e.insert(k.to_string(), v.to_string());
            last = Some(k.to_string());
        }
    }
    // awk's own variables and the script's, not the session's.
    e.remove("AWKPATH");
    e.remove("AWKLIBPATH");
    e.remove(super::PYTHON_VAR);
    e.remove(super::TIMEOUT_VAR);
    put(
        f,
        "env",
        Json::Object(e.into_iter().map(|(k, v)| (k, Json::from(v))).collect()),
    );
}

fn lsb(s: &Sections, f: &mut Map<String, Json>) {
    let mut l = Map::new();
    for line in s.lines("lsb_release") {
        let Some((_, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let key = if line.contains("LSB Version:") || line.contains("Release:") {
            "release"
        } else if line.contains("Distributor ID:") {
            "id"
        } else if line.contains("Description:") {
            "description"
        } else if line.contains("Codename:") {
            "codename"
        } else {
            continue;
        };
        l.insert(key.into(), Json::from(value));
    }
    if l.is_empty() {
        for line in s.lines("lsb_file") {
            let Some((k, value)) = line.split_once('=') else {
                continue;
            };
            let key = match k {
                k if k.contains("DISTRIB_ID") => "id",
                k if k.contains("DISTRIB_RELEASE") => "release",
                k if k.contains("DISTRIB_DESCRIPTION") => "description",
                k if k.contains("DISTRIB_CODENAME") => "codename",
                _ => continue,
            };
            l.insert(key.into(), Json::from(value.trim()));
        }
    }
    if let Some(r) = l.get("release").and_then(Json::as_str) {
        let major = r.split('.').next().unwrap_or("").to_string();
        l.insert("major_release".into(), Json::from(major));
    }
    for v in l.values_mut() {
        if let Some(t) = v.as_str() {
            *v = Json::from(t.trim_matches(['\'', '"', '\\']));
        }
    }
    put(f, "lsb", Json::Object(l));
}

fn selinux(s: &Sections, f: &mut Map<String, Json>) {
    let v = match s.first("selinux").map(str::trim) {
        Some("1") => json!({"status": "enabled", "mode": "enforcing"}),
        Some("0") => json!({"status": "enabled", "mode": "permissive"}),
        _ => json!({"status": "disabled"}),
    };
    put(f, "selinux", v);
}

fn pkg_mgr(s: &Sections, f: &mut Map<String, Json>) {
    const PKG_MGRS: &[(&str, &str)] = &[
        ("/usr/bin/rpm-ostree", "atomic_container"),
        ("/usr/bin/yum", "dnf"),
        ("/usr/bin/dnf-3", "dnf"),
        ("/usr/bin/dnf5", "dnf5"),
        ("/usr/bin/apt-get", "apt"),
        ("/usr/bin/zypper", "zypper"),
        ("/usr/sbin/urpmi", "urpmi"),
        ("/usr/bin/pacman", "pacman"),
        ("/bin/opkg", "opkg"),
        ("/sbin/apk", "apk"),
        ("/usr/bin/emerge", "portage"),
        ("/usr/bin/xbps-install", "xbps"),
        ("/usr/bin/swupd", "swupd"),
    ];
    let lines = s.lines("pkg");
    let has = |p: &str| lines.contains(&p);
    let mut name = PKG_MGRS
        .iter()
        .rev()
        .find(|(p, _)| has(p))
        .map_or("unknown", |(_, n)| n)
        .to_string();
    let family = f.get("os_family").and_then(Json::as_str).unwrap_or("");
    if family == "RedHat" {
        name = if has("/run/ostree-booted") {
            "atomic_container".into()
        } else if has("/usr/bin/dnf") || has("/usr/bin/microdnf") {
            let target = lines
                .iter()
                .find_map(|l| l.strip_prefix("dnf_target="))
                .unwrap_or("");
            if has("/usr/bin/dnf") && target == "/usr/bin/dnf5" {
                "dnf5".into()
            } else {
                "dnf".into()
            }
        } else {
            "unknown".into()
        };
    } else if family == "Debian" {
        name = "apt".into();
    } else if family == "Altlinux" && name == "apt" {
        name = "apt_rpm".into();
    }
    if name == "apt" && has("apt_rpm") {
        name = "apt_rpm".into();
    }
    put(f, "pkg_mgr", name);
}

fn service_mgr(s: &Sections, f: &mut Map<String, Json>) {
    let lines = s.lines("init");
    let has = |p: &str| lines.contains(&p);
    let proc_1 = lines
        .iter()
        .find_map(|l| l.strip_prefix("comm="))
        .map(|c| c.rsplit('/').next().unwrap_or(c).trim())
        .filter(|c| !c.is_empty() && *c != "COMMAND" && *c != "init" && !c.ends_with("sh"));
    let name = match proc_1 {
        Some("procd") => "openwrt_init",
        Some("runit-init") => "runit",
        Some("svscan") => "svc",
        Some("openrc-init") => "openrc",
        Some(other) => other,
        None if has("systemctl") && has("systemd_canary") => "systemd",
        None if has("upstart") => "upstart",
        None if has("openrc") => "openrc",
        None if has("systemctl") && has("systemd_init") => "systemd",
        None if has("sysvinit") => "sysvinit",
        None if has("dinit") => "dinit",
        None => "service",
    };
    put(f, "service_mgr", name.to_string());
}

fn python(s: &Sections, f: &mut Map<String, Json>) {
    let Some(p) = s
        .first("python")
        .and_then(|l| serde_json::from_str::<Json>(l).ok())
    else {
        return;
    };
    if let Some(v) = p.get("version") {
        let n = |k: &str| v.get(k).and_then(Json::as_i64).unwrap_or(0);
        put(
            f,
            "python_version",
            format!("{}.{}.{}", n("major"), n("minor"), n("micro")),
        );
    }
    put(f, "python", p);
}

/// IPv4 netmask and network of `address/prefix`.
fn ipv4_net(address: &str, prefix: u32) -> Option<(String, String)> {
    let a: std::net::Ipv4Addr = address.parse().ok()?;
    let mask: u32 = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32))
    };
    let net = u32::from(a) & mask;
    Some((
        std::net::Ipv4Addr::from(mask).to_string(),
        std::net::Ipv4Addr::from(net).to_string(),
    ))
}

/// `dev`, `src` and `via` of `ip route get DEST`'s first line, as Ansible reads them.
fn default_route(line: Option<&str>, dest: &str) -> Map<String, Json> {
    let mut m = Map::new();
    let Some(line) = line else {
        return m;
    };
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.first() != Some(&dest) {
        return m;
    }
    for i in 0..w.len().saturating_sub(1) {
        match w[i] {
            "dev" => {
                m.insert("interface".into(), Json::from(w[i + 1]));
            }
            "src" => {
                m.insert("address".into(), Json::from(w[i + 1]));
            }
            "via" if w[i + 1] != dest => {
                m.insert("gateway".into(), Json::from(w[i + 1]));
            }
            _ => {}
        }
    }
    m
}

const INTERFACE_TYPE: &[(&str, &str)] = &[
    ("1", "ether"),
    ("32", "infiniband"),
    ("512", "ppp"),
    ("772", "loopback"),
    ("65534", "tunnel"),
];

/// One interface's `/sys/class/net` attributes.
fn interface_attrs(dev: &str, p: &HashMap<&str, &str>) -> Map<String, Json> {
    let mut i = Map::new();
    i.insert("device".into(), Json::from(dev));
    if let Some(mac) = p
        .get("address")
        .filter(|m| !m.is_empty() && **m != "00:00:00:00:00:00")
    {
        i.insert("macaddress".into(), Json::from(*mac));
    }
    if let Some(mtu) = p.get("mtu").and_then(|m| m.parse::<i64>().ok()) {
        i.insert("mtu".into(), Json::from(mtu));
    }
    if let Some(state) = p.get("operstate") {
        i.insert("active".into(), Json::Bool(*state != "down"));
    }
    if let Some(m) = p.get("module") {
        i.insert("module".into(), Json::from(*m));
    }
    if let Some(t) = p.get("type") {
        let name = INTERFACE_TYPE
            .iter()
            .find(|(n, _)| n == t)
            .map_or("unknown", |(_, name)| name);
        i.insert("type".into(), Json::from(name));
    }
    if p.contains_key("bridge") {
        i.insert("type".into(), Json::from("bridge"));
        let members: Vec<Json> = p.get("brif").map_or(Vec::new(), |b| {
            b.split_whitespace().map(Json::from).collect()
        });
        i.insert("interfaces".into(), Json::Array(members));
        if let Some(id) = p.get("bridge_id") {
            i.insert("id".into(), Json::from(*id));
        }
        if let Some(stp) = p.get("stp_state") {
            i.insert("stp".into(), Json::Bool(*stp == "1"));
        }
    }
    if p.contains_key("bonding") {
        i.insert("type".into(), Json::from("bonding"));
        let word = |k: &str| {
            p.get(k)
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or("")
        };
        let slaves: Vec<Json> = p.get("bond_slaves").map_or(Vec::new(), |b| {
            b.split_whitespace().map(Json::from).collect()
        });
        i.insert("slaves".into(), Json::Array(slaves));
        i.insert("mode".into(), Json::from(word("bond_mode")));
        i.insert("miimon".into(), Json::from(word("bond_miimon")));
        i.insert("lacp_rate".into(), Json::from(word("bond_lacp_rate")));
        if let Some(primary) = p.get("bond_primary").filter(|v| !v.is_empty()) {
            i.insert("primary".into(), Json::from(*primary));
            if let Some(a) = p.get("bond_all_slaves_active") {
                i.insert("all_slaves_active".into(), Json::Bool(*a == "1"));
            }
        }
    }
    if let Some(perm) = p.get("perm_macaddress") {
        i.insert("perm_macaddress".into(), Json::from(*perm));
    }
    if let Some(pci) = p.get("pciid") {
        i.insert("pciid".into(), Json::from(*pci));
    }
    if let Some(speed) = p.get("speed").and_then(|v| v.trim().parse::<i64>().ok()) {
        i.insert("speed".into(), Json::from(speed));
    }
    if let Some(flags) = p
        .get("flags")
        .and_then(|v| i64::from_str_radix(v.trim().trim_start_matches("0x"), 16).ok())
    {
        i.insert("promisc".into(), Json::Bool(flags & 0x100 != 0));
    }
    i
}

struct Net {
    interfaces: BTreeMap<String, Map<String, Json>>,
    order: Vec<String>,
    all4: Vec<Json>,
    all6: Vec<Json>,
    default4: Map<String, Json>,
    default6: Map<String, Json>,
}

impl Net {
    /// One `ip addr show` output for `device`, as Ansible's `parse_ip_output`.
    fn ip_output(&mut self, device: &str, text: &[&str], secondary: bool) {
        let mac = self.interfaces[device].get("macaddress").cloned();
        let mtu = self.interfaces[device].get("mtu").cloned();
        let kind = self.interfaces[device]
            .get("type")
            .cloned()
            .unwrap_or_else(|| Json::from("unknown"));
        for line in text {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.first() {
                Some(&"inet") if w.len() > 1 => {
                    let (address, len) = w[1].split_once('/').unwrap_or((w[1], "32"));
                    let broadcast = if w.len() > 3 && w[2] == "brd" {
                        w[3]
                    } else {
                        ""
                    };
                    let Some((netmask, network)) =
                        len.parse::<u32>().ok().and_then(|p| ipv4_net(address, p))
                    else {
                        continue;
                    };
                    let entry = json!({
                        "address": address, "broadcast": broadcast, "netmask": netmask,
                        "network": network, "prefix": len,
                    });
                    let iface = w.last().copied().unwrap_or(device).to_string();
                    if iface != device {
                        self.interfaces.insert(iface.clone(), Map::new());
                        if !self.order.contains(&iface) {
                            self.order.push(iface.clone());
                        }
                    }
                    let target = self.interfaces.entry(iface.clone()).or_default();
                    if !secondary && !target.contains_key("ipv4") {
                        target.insert("ipv4".into(), entry.clone());
                    } else if let Json::Array(a) = target
                        .entry("ipv4_secondaries")
                        .or_insert_with(|| Json::Array(Vec::new()))
                    {
                        a.push(entry.clone());
                    }
                    if secondary && iface != device {
                        let own = self.interfaces.entry(device.to_string()).or_default();
                        if let Json::Array(a) = own
                            .entry("ipv4_secondaries")
                            .or_insert_with(|| Json::Array(Vec::new()))
                        {
                            a.push(entry.clone());
                        }
                    }
                    if self.default4.get("address").and_then(Json::as_str) == Some(address) {
                        let d = &mut self.default4;
                        for k in ["broadcast", "netmask", "network", "prefix"] {
                            d.insert(k.into(), entry[k].clone());
                        }
                        if let Some(m) = &mac {
                            d.insert("macaddress".into(), m.clone());
                        }
                        if let Some(m) = &mtu {
                            d.insert("mtu".into(), m.clone());
                        }
                        d.insert("type".into(), kind.clone());
                        d.insert("alias".into(), Json::from(iface.as_str()));
                    }
                    if !address.starts_with("127.") {
                        self.all4.push(Json::from(address));
                    }
                }
                Some(&"inet6") if w.len() > 3 => {
                    let (address, prefix, scope) = if w[2] == "peer" && w.len() > 5 {
                        let prefix = w[3].split_once('/').map_or("", |(_, p)| p);
                        (w[1], prefix, w[5])
                    } else {
                        let (a, p) = w[1].split_once('/').unwrap_or((w[1], ""));
                        (a, p, w[3])
                    };
                    let own = self.interfaces.entry(device.to_string()).or_default();
                    if let Json::Array(a) =
                        own.entry("ipv6").or_insert_with(|| Json::Array(Vec::new()))
                    {
                        a.push(json!({"address": address, "prefix": prefix, "scope": scope}));
                    }
                    if self.default6.get("address").and_then(Json::as_str) == Some(address) {
                        let d = &mut self.default6;
                        d.insert("prefix".into(), Json::from(prefix));
                        d.insert("scope".into(), Json::from(scope));
                        if let Some(m) = &mac {
                            d.insert("macaddress".into(), m.clone());
                        }
                        if let Some(m) = &mtu {
                            d.insert("mtu".into(), m.clone());
                        }
                        d.insert("type".into(), kind.clone());
                    }
                    if address != "::1" {
                        self.all6.push(Json::from(address));
                    }
                }
                _ => {}
            }
        }
    }
}

fn network(s: &Sections, f: &mut Map<String, Json>) {
    if s.first("ip").is_none_or(|l| l.trim().is_empty()) {
        return;
    }
    let mut net = Net {
        interfaces: BTreeMap::new(),
        order: Vec::new(),
        all4: Vec::new(),
        all6: Vec::new(),
        default4: default_route(s.first("route4"), "8.8.8.8"),
        default6: default_route(s.first("route6"), "2404:6800:400a:800::1012"),
    };
    let devices: Vec<&str> = s.with_prefix("if").collect();
    for dev in &devices {
        let attrs = interface_attrs(dev, &s.pairs(&format!("if {dev}")));
        net.interfaces.insert(dev.to_string(), attrs);
        net.order.push(dev.to_string());
        let primary = s.lines(&format!("primary {dev}")).to_vec();
        net.ip_output(dev, &primary, false);
        let secondary = s.lines(&format!("secondary {dev}")).to_vec();
        net.ip_output(dev, &secondary, true);
    }
    let mut names = Vec::new();
    for name in &net.order {
        let Some(iface) = net.interfaces.get(name) else {
            continue;
        };
        let key = name.replace(':', "_");
        names.push(Json::from(key.as_str()));
        // Ansible's fact namespace turns '-' into '_' in top-level names.
        f.insert(key.replace('-', "_"), Json::Object(iface.clone()));
    }
    let mut reachable = json!({"ipv4": [], "ipv6": []});
    for (section, fam) in [("local4", "ipv4"), ("local6", "ipv6")] {
        for line in s.lines(section) {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.len() < 2 || w[0] != "local" {
                continue;
            }
            let fam = if w[1].contains(':') { "ipv6" } else { fam };
            if let Some(Json::Array(a)) = reachable.get_mut(fam)
                && !a.iter().any(|x| x == w[1])
            {
                a.push(Json::from(w[1]));
            }
        }
    }
    put(f, "interfaces", Json::Array(names));
    put(f, "default_ipv4", Json::Object(net.default4));
    put(f, "default_ipv6", Json::Object(net.default6));
    put(f, "all_ipv4_addresses", Json::Array(net.all4));
    put(f, "all_ipv6_addresses", Json::Array(net.all6));
    put(f, "locally_reachable_ips", reachable);
}

fn hardware(s: &Sections, f: &mut Map<String, Json>) {
    memory(s, f);
    cpu(s, f);
    if let Some(up) = s
        .first("uptime")
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
    {
        // Whole seconds, as Ansible's int() of the float.
        put(f, "uptime_seconds", up.trunc() as i64);
    }
    mounts(s, f);
}

fn memory(s: &Sections, f: &mut Map<String, Json>) {
    let mut m: HashMap<&str, i64> = HashMap::new();
    for line in s.lines("meminfo") {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if let Some(kb) = v
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<i64>().ok())
        {
            m.insert(k, kb / 1024);
        }
    }
    if m.is_empty() {
        return;
    }
    for (k, name) in [
        ("MemTotal", "memtotal_mb"),
        ("MemFree", "memfree_mb"),
        ("SwapTotal", "swaptotal_mb"),
        ("SwapFree", "swapfree_mb"),
    ] {
        if let Some(v) = m.get(k) {
            put(f, name, *v);
        }
    }
    let get = |k: &str| m.get(k).copied();
    let sub = |a: Option<i64>, b: Option<i64>| Some(a? - b?);
    let nocache_free = (|| Some(get("Cached")? + get("MemFree")? + get("Buffers")?))();
    let j = |v: Option<i64>| v.map_or(Json::Null, Json::from);
    put(
        f,
        "memory_mb",
        json!({
            "real": {
                "total": j(get("MemTotal")),
                "used": j(sub(get("MemTotal"), get("MemFree"))),
                "free": j(get("MemFree")),
            },
            "nocache": {
                "free": j(nocache_free),
                "used": j(sub(get("MemTotal"), nocache_free)),
            },
            "swap": {
                "total": j(get("SwapTotal")),
                "free": j(get("SwapFree")),
                "used": j(sub(get("SwapTotal"), get("SwapFree"))),
                "cached": j(get("SwapCached")),
            },
        }),
    );
}

/// Ansible's `get_cpu_facts` on Linux (x86 and ARM; not Xen paravirt or s390x).
fn cpu(s: &Sections, f: &mut Map<String, Json>) {
    let lines = s.lines("cpuinfo");
    if lines.is_empty() {
        return;
    }
    let mut processor = Vec::new();
    let (mut i, mut vendor_n, mut model_n, mut proc_n) = (0i64, 0, 0, 0i64);
    let mut sockets: Vec<(String, i64)> = Vec::new();
    let mut cores: Vec<(String, i64)> = Vec::new();
    let (mut physid, mut coreid) = (String::from("0"), String::from("0"));
    fn set(v: &mut Vec<(String, i64)>, k: &str, val: i64, only_new: bool) {
        match v.iter_mut().find(|(n, _)| n == k) {
            Some(e) if !only_new => e.1 = val,
            Some(_) => {}
            None => v.push((k.to_string(), val)),
        }
    }
    for line in lines {
        let (key, val) = line.split_once(':').unwrap_or((line, ""));
        let (key, val) = (key.trim(), val.trim());
        match key {
            "model name" | "Processor" | "vendor_id" | "cpu" | "Vendor" | "processor" => {
                processor.push(Json::from(val));
                match key {
                    "vendor_id" => vendor_n += 1,
                    "model name" => model_n += 1,
                    "processor" => proc_n += 1,
                    _ => {}
                }
                i += 1;
            }
            "physical id" => {
                physid = val.to_string();
                set(&mut sockets, &physid, 1, true);
            }
            "core id" => {
                coreid = val.to_string();
                // Ansible's own quirk: it tests the core id against the sockets.
                if !sockets.iter().any(|(n, _)| *n == coreid) {
                    set(&mut cores, &coreid, 1, false);
                }
            }
            "cpu cores" => set(&mut sockets, &physid, val.parse().unwrap_or(0), false),
            "siblings" => set(&mut cores, &coreid, val.parse().unwrap_or(0), false),
            _ => {}
        }
    }
    if vendor_n > 0 && vendor_n == model_n {
        i = vendor_n;
    }
    let arch = f.get("architecture").and_then(Json::as_str).unwrap_or("");
    if arch.starts_with("armv") || arch.starts_with("aarch") || arch.starts_with("ppc") {
        i = proc_n;
    }
    let xen_paravirt = s.lines("xen").contains(&"xen") && !s.lines("xen").contains(&"vme");
    let count = if xen_paravirt || sockets.is_empty() {
        i
    } else {
        sockets.len() as i64
    };
    let per_socket = if xen_paravirt {
        i
    } else {
        sockets
            .first()
            .map(|(_, v)| *v)
            .filter(|v| *v != 0)
            .unwrap_or(1)
    };
    let threads = if xen_paravirt {
        1
    } else {
        let first = cores.first().map_or(1.0, |(_, v)| *v as f64);
        // Python's round(): half to even.
        let r = first / per_socket as f64;
        let fl = r.floor();
        if (r - fl - 0.5).abs() < f64::EPSILON {
            if fl as i64 % 2 == 0 {
                fl as i64
            } else {
                fl as i64 + 1
            }
        } else {
            r.round() as i64
        }
    };
    put(f, "processor", Json::Array(processor));
    put(f, "processor_count", count);
    put(f, "processor_cores", per_socket);
    put(f, "processor_threads_per_core", threads);
    put(f, "processor_vcpus", threads * count * per_socket);
    let nproc = s
        .first("nproc")
        .and_then(|n| n.trim().parse::<i64>().ok())
        .unwrap_or(proc_n);
    put(f, "processor_nproc", nproc);
}

/// `\NNN` octal escapes of `/proc/mounts` fields.
fn unescape_octal(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mounts(s: &Sections, f: &mut Map<String, Json>) {
    let binds: Vec<&str> = s
        .lines("bind")
        .iter()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 2 && w[1].contains('[') && w[1].ends_with(']')).then_some(w[0])
        })
        .collect();
    let mut uuids: HashMap<&str, &str> = HashMap::new();
    for l in s.lines("lsblk") {
        let mut w = l.trim().rsplitn(2, char::is_whitespace);
        if let (Some(uuid), Some(dev)) = (w.next(), w.next()) {
            uuids.entry(dev.trim()).or_insert(uuid.trim());
        }
    }
    let mut out: Vec<Json> = Vec::new();
    for line in s.lines("mounts") {
        if let Some(rest) = line.strip_prefix("M ") {
            let w: Vec<String> = rest.split(' ').map(unescape_octal).collect();
            if w.len() < 6 {
                continue;
            }
            let mut options = w[3].clone();
            let bind_in_opts = options.split(',').any(|o| o == "bind");
            if binds.contains(&w[1].as_str()) && !bind_in_opts {
                options.push_str(",bind");
            }
            let uuid = uuids.get(w[0].as_str()).copied().unwrap_or("N/A");
            let mut m = Map::new();
            m.insert("mount".into(), Json::from(w[1].as_str()));
            m.insert("device".into(), Json::from(w[0].as_str()));
            m.insert("fstype".into(), Json::from(w[2].as_str()));
            m.insert("options".into(), Json::from(options));
            m.insert("dump".into(), Json::from(w[4].parse::<i64>().unwrap_or(0)));
            m.insert(
                "passno".into(),
                Json::from(w[5].parse::<i64>().unwrap_or(0)),
            );
            m.insert("uuid".into(), Json::from(uuid));
            out.push(Json::Object(m));
        } else if let Some(rest) = line.strip_prefix("S ")
            && let Some(Json::Object(m)) = out.last_mut()
        {
            let n: Vec<i64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if let [frsize, bsize, blocks, bavail, files, ffree] = n[..] {
                m.insert("size_total".into(), Json::from(frsize * blocks));
                m.insert("size_available".into(), Json::from(frsize * bavail));
                m.insert("block_size".into(), Json::from(bsize));
                m.insert("block_total".into(), Json::from(blocks));
                m.insert("block_available".into(), Json::from(bavail));
                m.insert("block_used".into(), Json::from(blocks - bavail));
                m.insert("inode_total".into(), Json::from(files));
                m.insert("inode_available".into(), Json::from(ffree));
                m.insert("inode_used".into(), Json::from(files - ffree));
            }
        }
    }
    put(f, "mounts", Json::Array(out));
}

/// Ansible's Linux virtualization check, in its order (the first finding sets the type).
fn virtual_facts(s: &Sections, f: &mut Map<String, Json>) {
    let mut kind: Option<&str> = None;
    let mut role: Option<&str> = None;
    let mut guest: Vec<String> = Vec::new();
    let mut host: Vec<String> = Vec::new();
    let add = |v: &mut Vec<String>, t: &str| {
        if !v.iter().any(|x| x == t) {
            v.push(t.to_string());
        }
    };
    let found = |kind: &mut Option<&'static str>,
                 role: &mut Option<&'static str>,
                 t: &'static str,
                 r: Option<&'static str>| {
        if kind.is_none() {
            *kind = Some(t);
            if let Some(r) = r {
                *role = Some(r);
            }
        }
    };
    for line in s.lines("cgroup1") {
        if line.contains("/docker/") || (line.contains("/docker-") && line.contains(".scope")) {
            add(&mut guest, "docker");
            found(&mut kind, &mut role, "docker", Some("guest"));
        }
        if line.contains("/lxc/") || line.contains("/machine.slice/machine-lxc") {
            add(&mut guest, "lxc");
            found(&mut kind, &mut role, "lxc", Some("guest"));
        }
        if line.contains("/system.slice/containerd.service") {
            add(&mut guest, "containerd");
            found(&mut kind, &mut role, "containerd", Some("guest"));
        }
    }
    for line in s.lines("environ1") {
        if line.contains("container=lxc") {
            add(&mut guest, "lxc");
            found(&mut kind, &mut role, "lxc", Some("guest"));
        }
        if line.contains("container=podman") {
            add(&mut guest, "podman");
            found(&mut kind, &mut role, "podman", Some("guest"));
        }
        if line.len() > "container=".len() {
            add(&mut guest, "container");
            found(&mut kind, &mut role, "container", Some("guest"));
        }
    }
    let v = s.pairs("virt");
    let exists = |p: &str| {
        s.lines("virt")
            .iter()
            .any(|l| l.strip_prefix("exists=") == Some(p))
    };
    let found_before_vz = kind.is_some();
    if exists("/proc/vz") && !exists("/proc/lve") {
        kind = Some("openvz");
        if exists("/proc/bc") {
            add(&mut host, "openvz");
            if !found_before_vz {
                role = Some("host");
            }
        } else {
            add(&mut guest, "openvz");
            if !found_before_vz {
                role = Some("guest");
            }
        }
    }
    let systemd_container = v.get("systemd_container").copied().unwrap_or("").trim();
    if !systemd_container.is_empty() {
        add(&mut guest, systemd_container);
        if kind.is_none() {
            kind = Some("systemd");
            role = Some("guest");
        }
    }
    let kind_is_systemd = kind == Some("systemd");
    if exists("/.dockerenv") || exists("/.dockerinit") {
        add(&mut guest, "docker");
        found(&mut kind, &mut role, "docker", Some("guest"));
    }
    if guest
        .iter()
        .any(|t| ["docker", "lxc", "podman", "openvz", "containerd"].contains(&t.as_str()))
        || !systemd_container.is_empty()
    {
        add(&mut guest, "container");
    }
    if exists("/proc/xen") {
        let is_host = v.get("xen_caps").is_some_and(|c| c.contains("control_d"));
        if is_host {
            add(&mut host, "xen");
        }
        found(
            &mut kind,
            &mut role,
            "xen",
            Some(if is_host { "host" } else { "guest" }),
        );
    }
    if kind.is_none() {
        role = Some("guest");
    }
    let get = |k: &str| v.get(k).copied().unwrap_or("").trim();
    let product = get("product_name");
    let vendor = get("sys_vendor");
    let bios = get("bios_vendor");
    let dmi: &[(bool, &'static str)] = &[
        (
            [
                "KVM",
                "KVM Server",
                "Bochs",
                "AHV",
                "CloudStack KVM Hypervisor",
            ]
            .contains(&product),
            "kvm",
        ),
        (vendor == "oVirt", "oVirt"),
        (vendor == "Red Hat" && get("product_family") == "RHV", "RHV"),
        (vendor == "Red Hat" && product == "RHEV Hypervisor", "RHEV"),
        (product.starts_with("VMware"), "VMware"),
        (
            ["OpenStack Compute", "OpenStack Nova"].contains(&product),
            "openstack",
        ),
        (bios == "Xen", "xen"),
        (bios == "innotek GmbH", "virtualbox"),
        (
            ["Amazon EC2", "DigitalOcean", "Hetzner", "Linode"].contains(&bios),
            "kvm",
        ),
        (
            [
                "QEMU",
                "Amazon EC2",
                "DigitalOcean",
                "Google",
                "Scaleway",
                "Nutanix",
            ]
            .contains(&vendor),
            "kvm",
        ),
        (vendor == "KubeVirt", "KubeVirt"),
        (vendor == "Microsoft Corporation", "VirtualPC"),
        (
            vendor == "Parallels Software International Inc.",
            "parallels",
        ),
        (vendor == "OpenStack Foundation", "openstack"),
    ];
    for (hit, t) in dmi {
        if *hit {
            add(&mut guest, t);
            found(&mut kind, &mut role, t, None);
        }
    }
    if kind.is_none() {
        role = None;
    }
    let models = get("cpu_models");
    if models.contains("QEMU Virtual CPU") {
        add(&mut guest, "kvm");
        found(&mut kind, &mut role, "kvm", None);
    }
    let modules: Vec<&str> = get("modules").split_whitespace().collect();
    if modules.contains(&"kvm") {
        add(&mut host, "kvm");
        found(&mut kind, &mut role, "kvm", Some("host"));
    }
    if modules.contains(&"vboxdrv") {
        add(&mut host, "virtualbox");
        found(&mut kind, &mut role, "virtualbox", Some("host"));
    }
    if modules.contains(&"virtio") {
        found(&mut kind, &mut role, "kvm", Some("guest"));
    }
    if exists("/dev/kvm") {
        add(&mut host, "kvm");
        found(&mut kind, &mut role, "kvm", Some("host"));
    }
    guest.sort();
    host.sort();
    let kind_name = if kind_is_systemd {
        systemd_container.to_string()
    } else {
        kind.unwrap_or("NA").to_string()
    };
    put(f, "virtualization_type", kind_name);
    let role = if kind.is_none() { Some("NA") } else { role };
    if let Some(r) = role {
        put(f, "virtualization_role", r.to_string());
    }
    put(f, "virtualization_tech_guest", Json::from(guest));
    put(f, "virtualization_tech_host", Json::from(host));
}
