//! What the account modules (`user`, `group`) share: reading the host's account databases
//! (`getent passwd`/`shadow`/`group`) into [`AccountDb`], and the files they change, which the
//! executor backs up before a step ([`account_files`]).
//!
//! Owns parsing of `getent` lines and nothing else; it must not change the host and must not
//! format shell lines.

use crate::modules::runtime::Resource;

/// The account databases `useradd`/`usermod`/`groupadd`... rewrite; backed up whole before a
/// step (an absent one is recorded as absent and stays so on restore).
pub const ACCOUNT_FILES: [&str; 6] = [
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/subuid",
    "/etc/subgid",
];

/// [`ACCOUNT_FILES`] as resources.
pub fn account_files() -> Vec<Resource> {
    ACCOUNT_FILES
        .iter()
        .map(|p| Resource::Path((*p).to_string()))
        .collect()
}

/// One `passwd` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passwd {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: i64,
    /// Primary group id.
    pub gid: i64,
    /// GECOS (comment).
    pub comment: String,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// One `shadow` entry (the fields the modules compare).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Shadow {
    /// The password hash (`!` prefix: locked).
    pub hash: String,
    /// Minimum days between changes, if set.
    pub min: Option<i64>,
    /// Maximum days, if set.
    pub max: Option<i64>,
    /// Warning days, if set.
    pub warn: Option<i64>,
    /// Account expiry in days since the epoch, if set.
    pub expire: Option<i64>,
}

/// One `group` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupEnt {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: i64,
    /// Supplementary members.
    pub members: Vec<String>,
}

/// Parses a `getent passwd NAME` line; `None` when it is not one.
pub fn parse_passwd(line: &str) -> Option<Passwd> {
    let f: Vec<&str> = line.trim_end_matches('\n').splitn(7, ':').collect();
    if f.len() != 7 {
        return None;
    }
    Some(Passwd {
        name: f[0].to_string(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        comment: f[4].to_string(),
        home: f[5].to_string(),
        shell: f[6].to_string(),
    })
}

/// Parses a `getent shadow NAME` line.
pub fn parse_shadow(line: &str) -> Option<Shadow> {
    let f: Vec<&str> = line.trim_end_matches('\n').split(':').collect();
    if f.len() < 8 {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    Some(Shadow {
        hash: f[1].to_string(),
        min: num(f[3]),
        max: num(f[4]),
        warn: num(f[5]),
        expire: num(f[7]),
    })
}

/// Parses `getent group` (every line).
pub fn parse_groups(text: &str) -> Vec<GroupEnt> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(4, ':').collect();
            if f.len() != 4 {
                return None;
            }
            Some(GroupEnt {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// The group named `g`, or whose gid is `g` (Ansible tries the gid first).
pub fn find_group<'a>(groups: &'a [GroupEnt], g: &str) -> Option<&'a GroupEnt> {
    if let Ok(gid) = g.parse::<i64>()
        && let Some(e) = groups.iter().find(|e| e.gid == gid)
    {
        return Some(e);
    }
    groups.iter().find(|e| e.name == g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getent_lines_parse() {
        let p = parse_passwd("alice:x:1001:1001:Alice A,,,:/home/alice:/bin/bash\n").unwrap();
        assert_eq!((p.uid, p.gid, p.shell.as_str()), (1001, 1001, "/bin/bash"));
        assert!(parse_passwd("garbage").is_none());
        let s = parse_shadow("alice:!$6$x:19000:0:99999:7:::\n").unwrap();
        assert_eq!(
            (s.min, s.max, s.warn, s.expire),
            (Some(0), Some(99999), Some(7), None)
        );
        let g = parse_groups("root:x:0:\nadm:x:4:syslog,alice\n");
        assert_eq!(g[1].members, ["syslog", "alice"]);
        assert_eq!(find_group(&g, "4").unwrap().name, "adm");
        assert_eq!(find_group(&g, "root").unwrap().gid, 0);
        assert!(find_group(&g, "nope").is_none());
    }
}
