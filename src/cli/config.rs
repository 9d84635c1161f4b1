//! `ansible.cfg`: the settings an Ansible user already keeps there, read the way Ansible finds
//! the file (`ANSIBLE_CONFIG`, `./ansible.cfg`, `~/.ansible.cfg`, `/etc/ansible/ansible.cfg`;
//! the first that exists is the only one read).
//!
//! Owns parsing the file and typing the values rdeploy uses; a value of the wrong type is an
//! error at its line and column. Keys rdeploy does not use are listed back (`ignored`) so the
//! caller can say so once instead of skipping them silently. Command-line flags win over
//! everything here; this file only supplies defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{Diagnostic, Diagnostics, Loc};

/// What rdeploy takes from `ansible.cfg`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnsibleCfg {
    /// The file that was read.
    pub path: PathBuf,
    /// `[defaults] inventory`: comma-separated sources, relative to the file's directory.
    pub inventory: Vec<PathBuf>,
    /// `[defaults] forks`.
    pub forks: Option<usize>,
    /// `[defaults] roles_path`: colon-separated, relative to the file's directory.
    pub roles_path: Vec<PathBuf>,
    /// `[defaults] collections_path` (or `collections_paths`): colon-separated, relative to
    /// the file's directory.
    pub collections_path: Vec<PathBuf>,
    /// `[defaults] remote_user`.
    pub remote_user: Option<String>,
    /// `[defaults] private_key_file`.
    pub private_key_file: Option<PathBuf>,
    /// `[defaults] host_key_checking` (false means `accept-new`: a changed key is still refused).
    pub host_key_checking: Option<bool>,
    /// `[defaults] timeout`: the connect timeout in seconds.
    pub timeout: Option<u64>,
    /// `[defaults] vault_password_file`, relative to the file's directory.
    pub vault_password_file: Option<PathBuf>,
    /// `[defaults] vault_identity_list`: `LABEL@FILE` (or `FILE`) entries, each file relative to
    /// the file's directory.
    pub vault_identity_list: Vec<String>,
    /// `[section] key` of every setting rdeploy does not use, in file order.
    pub ignored: Vec<String>,
}

impl AnsibleCfg {
    /// Finds and reads the configuration file, if there is one.
    pub fn discover() -> Result<Option<AnsibleCfg>, Diagnostics> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let env = std::env::var_os("ANSIBLE_CONFIG").map(PathBuf::from);
        // Relative, so that errors name it as the user would.
        let here = Path::new("ansible.cfg");
        match find(env.as_deref(), Some(here), home.as_deref()) {
            Some(path) => AnsibleCfg::read(&path).map(Some),
            None => Ok(None),
        }
    }

    /// Reads one file.
    pub fn read(path: &Path) -> Result<AnsibleCfg, Diagnostics> {
        let file: Arc<str> = Arc::from(path.display().to_string());
        let text = crate::yaml::read_text(path, &file, 1024 * 1024)?;
        parse(&text, path, &file)
    }

    /// The one line to print when keys were ignored.
    pub fn ignored_note(&self) -> Option<String> {
        (!self.ignored.is_empty()).then(|| {
            format!(
                "rdeploy: {}: not used by rdeploy: {}",
                self.path.display(),
                self.ignored.join(", ")
            )
        })
    }
}

/// Ansible's search order: `$ANSIBLE_CONFIG` (a file, or a directory holding `ansible.cfg`),
/// then `ansible.cfg` in the current directory (`here`), `~/.ansible.cfg`,
/// `/etc/ansible/ansible.cfg`.
fn find(env: Option<&Path>, here: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    let env = env.filter(|p| !p.as_os_str().is_empty()).map(|p| {
        if p.is_dir() {
            p.join("ansible.cfg")
        } else {
            p.to_path_buf()
        }
    });
    env.into_iter()
        .chain(here.map(Path::to_path_buf))
        .chain(home.map(|h| h.join(".ansible.cfg")))
        .chain(std::iter::once(PathBuf::from("/etc/ansible/ansible.cfg")))
        .find(|p| p.is_file())
}

fn parse(text: &str, path: &Path, file: &Arc<str>) -> Result<AnsibleCfg, Diagnostics> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut cfg = AnsibleCfg {
        path: path.to_path_buf(),
        ..AnsibleCfg::default()
    };
    let mut errors = Diagnostics::new();
    let mut section: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let at = |col: usize| Loc::new(file, line_no, u32::try_from(col + 1).unwrap_or(u32::MAX));
        let trimmed = raw.trim_start();
        let indent = raw.len() - trimmed.len();
        let line = trimmed.trim_end();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            match rest.strip_suffix(']') {
                Some(name) => section = Some(name.trim().to_string()),
                None => errors.push(Diagnostic::at(&at(indent), "expected '[section]'")),
            }
            continue;
        }
        let Some(sep) = line.find(['=', ':']) else {
            errors.push(Diagnostic::at(&at(indent), "expected 'key = value'"));
            continue;
        };
        let key = line[..sep].trim().to_ascii_lowercase();
        let value_start = line[sep + 1..].len() - line[sep + 1..].trim_start().len();
        let value = line[sep + 1..].trim();
        let vloc = at(indent + sep + 1 + value_start);
        let Some(sec) = section.as_deref() else {
            errors.push(Diagnostic::at(
                &at(indent),
                "a setting before any '[section]' (expected '[defaults]' first)",
            ));
            continue;
        };
        if sec != "defaults" {
            cfg.ignored.push(format!("[{sec}] {key}"));
            continue;
        }
        let mut bad = |what: &str| {
            errors.push(Diagnostic::at(
                &vloc,
                format!("'{key}' must be {what}, found '{value}'"),
            ))
        };
        match key.as_str() {
            "inventory" => {
                cfg.inventory = split(value, ',').map(|p| resolve(base, p)).collect();
            }
            "roles_path" => {
                cfg.roles_path = split(value, ':').map(|p| resolve(base, p)).collect();
            }
            "collections_path" | "collections_paths" => {
                cfg.collections_path = split(value, ':').map(|p| resolve(base, p)).collect();
            }
            "forks" => match value.parse::<usize>() {
                Ok(n) if n > 0 => cfg.forks = Some(n),
                _ => bad("a positive whole number"),
            },
            "timeout" => match value.parse::<u64>() {
                Ok(n) if n > 0 => cfg.timeout = Some(n),
                _ => bad("a positive number of seconds"),
            },
            "host_key_checking" => match parse_bool(value) {
                Some(b) => cfg.host_key_checking = Some(b),
                None => bad("a boolean (true/false, yes/no, on/off, 1/0)"),
            },
            "remote_user" if !value.is_empty() => cfg.remote_user = Some(value.to_string()),
            "private_key_file" if !value.is_empty() => {
                cfg.private_key_file = Some(resolve(base, value));
            }
            "vault_password_file" if !value.is_empty() => {
                cfg.vault_password_file = Some(resolve(base, value));
            }
            "vault_identity_list" => {
                cfg.vault_identity_list = split(value, ',')
                    .map(|id| match id.split_once('@') {
                        Some((label, file)) if file != "prompt" => {
                            format!("{label}@{}", resolve(base, file).display())
                        }
                        Some(_) => id.to_string(),
                        None => resolve(base, id).display().to_string(),
                    })
                    .collect();
            }
            _ => cfg.ignored.push(format!("[defaults] {key}")),
        }
    }
    errors.into_result(cfg)
}

fn split(value: &str, sep: char) -> impl Iterator<Item = &str> {
    value.split(sep).map(str::trim).filter(|p| !p.is_empty())
}

/// `~/x` under `$HOME`; a relative path under the configuration file's directory.
fn resolve(base: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    base.join(p)
}

/// The booleans configparser accepts, as Ansible reads them.
fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "y" | "t" => Some(true),
        "false" | "no" | "off" | "0" | "n" | "f" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<AnsibleCfg, Diagnostics> {
        parse(text, Path::new("/p/ansible.cfg"), &Arc::from("ansible.cfg"))
    }

    #[test]
    fn reads_the_settings_rdeploy_uses_and_lists_the_rest() {
        let cfg = parsed(
            "# comment\n[defaults]\ninventory = inventory/prod, /etc/hosts.ini\nforks=20\n\
             remote_user: deploy\nprivate_key_file = keys/id\nhost_key_checking = False\n\
             timeout = 5\nroles_path = roles:/usr/share/roles\ngathering = smart\n\
             collections_path = ./colls:/opt/c\n\
             [ssh_connection]\npipelining = True\n",
        )
        .unwrap();
        assert_eq!(
            cfg.inventory,
            [
                PathBuf::from("/p/inventory/prod"),
                PathBuf::from("/etc/hosts.ini")
            ]
        );
        assert_eq!(cfg.forks, Some(20));
        assert_eq!(cfg.vault_password_file, None);
        assert_eq!(cfg.remote_user.as_deref(), Some("deploy"));
        assert_eq!(cfg.private_key_file, Some(PathBuf::from("/p/keys/id")));
        assert_eq!(cfg.host_key_checking, Some(false));
        assert_eq!(cfg.timeout, Some(5));
        assert_eq!(
            cfg.roles_path,
            [PathBuf::from("/p/roles"), PathBuf::from("/usr/share/roles")]
        );
        assert_eq!(
            cfg.collections_path,
            [PathBuf::from("/p/./colls"), PathBuf::from("/opt/c")]
        );
        assert_eq!(
            cfg.ignored,
            ["[defaults] gathering", "[ssh_connection] pipelining"]
        );
        assert!(cfg.ignored_note().unwrap().contains("gathering"));
    }

    #[test]
    fn vault_passwords_are_found_next_to_the_file() {
        let cfg = parsed(
            "[defaults]\nvault_password_file = keys/pw\nvault_identity_list = dev@d.txt, /abs/p, x@prompt\n",
        )
        .unwrap();
        assert_eq!(cfg.vault_password_file, Some(PathBuf::from("/p/keys/pw")));
        assert_eq!(
            cfg.vault_identity_list,
            ["dev@/p/d.txt", "/abs/p", "x@prompt"].map(String::from)
        );
        assert!(cfg.ignored.is_empty(), "{:?}", cfg.ignored);
    }

    #[test]
    fn bad_values_are_errors_at_their_position() {
        let err = parsed("[defaults]\nforks = many\nhost_key_checking=maybe\nnot a setting\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "ansible.cfg:2:9: error: 'forks' must be a positive whole number, found 'many'"
            ),
            "{err}"
        );
        assert!(
            err.contains("ansible.cfg:3:19: error: 'host_key_checking'"),
            "{err}"
        );
        assert!(
            err.contains("ansible.cfg:4:1: error: expected 'key = value'"),
            "{err}"
        );
        let err = parsed("forks = 2\n").unwrap_err().to_string();
        assert!(
            err.contains("1:1: error: a setting before any '[section]'"),
            "{err}"
        );
    }

    #[test]
    fn search_order_is_ansibles() {
        let dir = tempfile::tempdir().unwrap();
        let (env, cwd, home) = (
            dir.path().join("env"),
            dir.path().join("cwd"),
            dir.path().join("home"),
        );
        for d in [&env, &cwd, &home] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(home.join(".ansible.cfg"), "").unwrap();
        let here = cwd.join("ansible.cfg");
        assert_eq!(
            find(None, Some(&here), Some(&home)),
            Some(home.join(".ansible.cfg"))
        );
        std::fs::write(&here, "").unwrap();
        assert_eq!(find(None, Some(&here), Some(&home)), Some(here.clone()));
        std::fs::write(env.join("ansible.cfg"), "").unwrap();
        assert_eq!(
            find(Some(&env), Some(&here), Some(&home)),
            Some(env.join("ansible.cfg"))
        );
    }
}
