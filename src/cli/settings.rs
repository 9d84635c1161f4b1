//! Settings: the command line checked and turned into typed values.
//!
//! Owns reading `-e` (key=value, JSON/YAML, `@file`), `--limit @file` and the vault password
//! files, and refusing bad option values with a clear message. It must not load inventories or playbooks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use crate::cli::args::{Common, OutputFormat, VaultArgs};
use crate::cli::config::AnsibleCfg;
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::vault::secrets::{Source, VaultSecret};
use crate::yaml;

/// Options shared by `run` and `plan`, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The playbook file.
    pub playbook: PathBuf,
    /// Inventory sources, in the order given.
    pub inventory: Vec<PathBuf>,
    /// The `--limit` pattern, with `@file` already read (one pattern per line, joined by `,`).
    pub limit: Option<String>,
    /// Extra variables, merged in the order given (later `-e` wins).
    pub extra_vars: IndexMap<String, Value>,
    /// Texts of extra vars written `!unsafe` (or decrypted from `!vault`) in `-e @file`: the
    /// variables holding them stay data.
    pub extra_data_texts: std::collections::HashSet<String>,
    /// `--tags`.
    pub tags: Vec<String>,
    /// `--skip-tags`.
    pub skip_tags: Vec<String>,
    /// `--roles-path`.
    pub roles_path: Vec<PathBuf>,
    /// Where collections are looked for (their roles): `ANSIBLE_COLLECTIONS_PATH`, else
    /// ansible.cfg's `collections_path`, else Ansible's default.
    pub collections_path: Vec<PathBuf>,
    /// `--ansible-python`.
    pub ansible_python: Option<PathBuf>,
    /// Seed for `order: shuffle`.
    pub shuffle_seed: u64,
    /// Output format.
    pub output: OutputFormat,
    /// `-v` count.
    pub verbose: u8,
    /// The `ansible.cfg` found, if any (its defaults are already applied above).
    pub config: Option<AnsibleCfg>,
}

impl Settings {
    /// Validates the shared flags for `playbook`.
    pub fn from_common(playbook: &Path, c: &Common) -> Result<Settings, Diagnostics> {
        let mut errors = Diagnostics::new();
        let config = AnsibleCfg::discover().unwrap_or_else(|d| {
            errors.extend(d);
            None
        });
        let mut extra_vars = IndexMap::new();
        let mut extra_data_texts = std::collections::HashSet::new();
        for raw in &c.extra_vars {
            match parse_extra_vars_into(raw, &mut extra_data_texts) {
                Ok(vars) => {
                    for (k, v) in &vars {
                        if let Some(msg) = crate::inventory::connvars::error(k, v) {
                            errors.push(Diagnostic::options(format!("-e {msg}")));
                        }
                    }
                    extra_vars.extend(vars)
                }
                Err(d) => errors.extend(d),
            }
        }
        let limit = match c.limit.as_deref() {
            Some(l) => match read_limit(l) {
                Ok(l) => Some(l),
                Err(d) => {
                    errors.push(d);
                    None
                }
            },
            None => None,
        };
        if !playbook.is_file() {
            errors.push(Diagnostic::at(
                &Loc::file_start(playbook.display().to_string()),
                "playbook not found (expected a YAML file)",
            ));
        }
        let clean = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()
        };
        errors.into_result(Settings {
            playbook: playbook.to_path_buf(),
            inventory: match &config {
                Some(cfg) if c.inventory.is_empty() => cfg.inventory.clone(),
                _ => c.inventory.clone(),
            },
            limit,
            extra_vars,
            extra_data_texts,
            tags: clean(&c.tags),
            skip_tags: clean(&c.skip_tags),
            roles_path: c
                .roles_path
                .iter()
                .chain(config.iter().flat_map(|cfg| &cfg.roles_path))
                .cloned()
                .collect(),
            collections_path: collections_path(config.as_ref()),
            ansible_python: c.ansible_python.clone(),
            shuffle_seed: c.shuffle_seed.unwrap_or_else(seed_from_clock),
            output: c.output,
            verbose: c.verbose,
            config,
        })
    }
}

/// Ansible's collections path: `ANSIBLE_COLLECTIONS_PATH` (or the older
/// `ANSIBLE_COLLECTIONS_PATHS`), else ansible.cfg's, else `~/.ansible/collections` and
/// `/usr/share/ansible/collections`.
fn collections_path(config: Option<&AnsibleCfg>) -> Vec<PathBuf> {
    let env = ["ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS"]
        .iter()
        .find_map(std::env::var_os);
    if let Some(v) = env {
        return std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    match config {
        Some(cfg) if !cfg.collections_path.is_empty() => cfg.collections_path.clone(),
        _ => {
            let mut out: Vec<PathBuf> = std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".ansible/collections"))
                .into_iter()
                .collect();
            out.push(PathBuf::from("/usr/share/ansible/collections"));
            out
        }
    }
}

fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The vault passwords of `--vault-password-file` (under `default`) and `--vault-id`, read
/// (password scripts run) in the order given. Every unreadable one is reported.
pub fn vault_secrets(v: &VaultArgs) -> Result<Vec<VaultSecret>, Diagnostics> {
    let mut errors = Diagnostics::new();
    let sources = v
        .vault_password_file
        .iter()
        .map(|f| {
            Ok(Source {
                label: "default".into(),
                file: f.clone(),
            })
        })
        .chain(v.vault_id.iter().map(|raw| Source::parse_vault_id(raw)));
    let mut out = Vec::new();
    for s in sources {
        match s.and_then(|s| s.read()) {
            Ok(secret) => out.push(secret),
            Err(m) => errors.push(Diagnostic::options(m)),
        }
    }
    errors.into_result(out)
}

/// `--limit`: a pattern, or `@file` with one pattern per line.
pub fn read_limit(raw: &str) -> Result<String, Diagnostic> {
    let Some(path) = raw.strip_prefix('@') else {
        return Ok(raw.to_string());
    };
    let file: Arc<str> = Arc::from(path);
    let text = yaml::read_text(Path::new(path), &file, 16 * 1024 * 1024)?;
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if parts.is_empty() {
        return Err(Diagnostic::at(
            &Loc::file_start(file),
            "limit file names no hosts",
        ));
    }
    Ok(parts.join(","))
}

/// One `-e` value: `@file` (YAML or JSON), an inline JSON/YAML mapping, or `key=value` pairs
/// (values are strings, as in Ansible).
pub fn parse_extra_vars(raw: &str) -> Result<IndexMap<String, Value>, Diagnostics> {
    parse_extra_vars_into(raw, &mut std::collections::HashSet::new())
}

/// [`parse_extra_vars`], adding the `!unsafe`/`!vault` texts it finds to `data_texts`.
pub fn parse_extra_vars_into(
    raw: &str,
    data_texts: &mut std::collections::HashSet<String>,
) -> Result<IndexMap<String, Value>, Diagnostics> {
    let trimmed = raw.trim_start();
    let mut doc = |docs: Vec<yaml::Node>| {
        let first = docs.into_iter().next();
        if let Some(n) = &first {
            n.unsafe_texts(data_texts);
        }
        first
    };
    if let Some(path) = trimmed.strip_prefix('@') {
        let docs =
            yaml::load_file(Path::new(path), yaml::Limits::default()).map_err(Diagnostics)?;
        return mapping_to_vars(doc(docs), path);
    }
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let file: Arc<str> = Arc::from("<extra vars>");
        let docs = yaml::load_str(&file, trimmed, yaml::Limits::default()).map_err(Diagnostics)?;
        return mapping_to_vars(doc(docs), "<extra vars>");
    }
    parse_kv(raw)
        .map_err(|m| Diagnostics::from(Diagnostic::options(format!("-e '{raw}': {m}"))))
        .map(|pairs| {
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect()
        })
}

fn mapping_to_vars(
    doc: Option<yaml::Node>,
    what: &str,
) -> Result<IndexMap<String, Value>, Diagnostics> {
    match doc {
        None => Ok(IndexMap::new()),
        Some(node) if node.is_null() => Ok(IndexMap::new()),
        Some(node) => match node.to_json() {
            Value::Object(m) => Ok(m.into_iter().collect()),
            _ => Err(Diagnostic::at(
                &node.loc,
                format!(
                    "extra vars from {what} must be a mapping, found {}",
                    node.type_name()
                ),
            )
            .into()),
        },
    }
}

/// Splits `a=1 b="two words" c='x'` into pairs, honouring quotes and backslashes.
pub fn parse_kv(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    in_word = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '{') if matches!(chars.clone().next(), Some('{' | '%' | '#')) => {
                // A Jinja block (`{{ a }}`, `{% if %}`, `{# #}`) stays whole, spaces and
                // quotes included, as Ansible's splitter keeps it.
                let open = chars.next().unwrap_or('{');
                let close = match open {
                    '{' => '}',
                    other => other,
                };
                cur.push('{');
                cur.push(open);
                let mut prev = '\0';
                let mut closed = false;
                for n in chars.by_ref() {
                    cur.push(n);
                    if prev == close && n == '}' {
                        closed = true;
                        break;
                    }
                    prev = n;
                }
                if !closed {
                    return Err(format!("unterminated '{{{open}' block"));
                }
                in_word = true;
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        words.push(cur);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if is_identifier(k) => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("expected key=value, found '{w}'")),
        })
        .collect()
}

/// A valid variable name: a letter or `_`, then letters, digits or `_`.
pub fn is_identifier(s: &str) -> bool {
    let mut it = s.chars();
    matches!(it.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && it.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_keeps_jinja_blocks_whole() {
        let v = parse_kv("a={{ x | default('y z') }} b={% if c %}1{% endif %} d=e").unwrap();
        assert_eq!(
            v,
            [
                ("a".to_string(), "{{ x | default('y z') }}".to_string()),
                ("b".to_string(), "{% if c %}1{% endif %}".to_string()),
                ("d".to_string(), "e".to_string()),
            ]
        );
        assert!(parse_kv("a={{ x").is_err());
    }

    #[test]
    fn kv_extra_vars_are_strings_with_quotes_honoured() {
        let v = parse_extra_vars(r#"version=1.2 msg="hello world" n=3"#).unwrap();
        assert_eq!(v["version"], "1.2");
        assert_eq!(v["msg"], "hello world");
        assert_eq!(v["n"], "3");
    }

    #[test]
    fn json_extra_vars_keep_types() {
        let v = parse_extra_vars(r#"{"n": 3, "on": true, "list": [1, 2]}"#).unwrap();
        assert_eq!(v["n"], 3);
        assert_eq!(v["on"], true);
        assert_eq!(v["list"], serde_json::json!([1, 2]));
    }

    #[test]
    fn bad_kv_is_an_error() {
        assert!(parse_extra_vars("novalue").is_err());
        assert!(parse_extra_vars("a='open").is_err());
        assert!(parse_extra_vars("1x=2").is_err());
    }

    #[test]
    fn extra_vars_file_and_limit_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("vars.yaml");
        std::fs::write(&f, "release: v2\nreplicas: 3\n").unwrap();
        let v = parse_extra_vars(&format!("@{}", f.display())).unwrap();
        assert_eq!(v["release"], "v2");
        assert_eq!(v["replicas"], 3);
        let l = dir.path().join("retry");
        std::fs::write(&l, "web01\n\nweb02\n").unwrap();
        assert_eq!(
            read_limit(&format!("@{}", l.display())).unwrap(),
            "web01,web02"
        );
    }
}
