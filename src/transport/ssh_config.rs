//! SSH connection settings for one host, resolved from every place they can come from.
//!
//! One precedence list, highest first: **inventory variables** (`ansible_host`, `ansible_port`,
//! `ansible_user`, `ansible_ssh_private_key_file`, `ansible_password`,
//! `ansible_ssh_host_key_checking`, `ansible_ssh_timeout`) > **`-o Key=Value` options** in
//! `ansible_ssh_common_args` / `ansible_ssh_extra_args` (also `-J`, `-i`, `-p`, `-l`) >
//! **command-line flags** (`--host-key-checking`, `--connect-timeout`) > **the ssh config file**
//! (`~/.ssh/config` or `--ssh-config FILE`: `Host` patterns, HostName, User, Port, IdentityFile,
//! ProxyJump, UserKnownHostsFile, StrictHostKeyChecking, ServerAliveInterval,
//! ServerAliveCountMax, ConnectTimeout, IdentitiesOnly, BatchMode) > **defaults**.
//!
//! This file owns that resolution and the parsing of the `-o` arguments (through the same
//! ssh_config parser, so `-o IdentityFile=~/k` and a config line behave alike). It is pure: it
//! reads the config file once ([`load_config`]) and never connects. Secrets are held in
//! [`Secret`], whose `Debug` never shows them.

use std::fmt;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value as Json;
use ssh2_config::{HostParams, ParseRule, SshConfig};

use super::cmd::split_words;
use super::known_hosts::HostKeyPolicy;

/// Default connect timeout (TCP connect, key exchange and authentication, per hop).
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Default keepalive interval (`ServerAliveInterval`).
pub const ALIVE_INTERVAL_DEFAULT: Duration = Duration::from_secs(5);
/// Default unanswered keepalives before a host is declared dead (`ServerAliveCountMax`).
pub const ALIVE_COUNT_DEFAULT: u32 = 3;

/// A password or passphrase: never printed, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

/// Run-wide SSH options from the command line.
#[derive(Clone, Debug, Default)]
pub struct SshOptions {
    /// `--ssh-config FILE` (default `~/.ssh/config` when it exists).
    pub config_file: Option<PathBuf>,
    /// `--host-key-checking`.
    pub host_key_checking: Option<HostKeyPolicy>,
    /// `--connect-timeout`.
    pub connect_timeout: Option<Duration>,
    /// Read from `--key-passphrase-file`: unlocks passphrase-protected key files.
    pub key_passphrase: Option<Secret>,
    /// `-u`/`--user` (or `remote_user` in ansible.cfg): the login user of hosts that set none.
    pub user: Option<String>,
    /// `--private-key` (or `private_key_file` in ansible.cfg): offered before the ssh
    /// config's IdentityFile.
    pub identity_file: Option<PathBuf>,
}

/// Loads the ssh config file: `path`, or `~/.ssh/config` when `path` is `None` (a missing
/// default file is an empty config; a missing named file is an error).
pub fn load_config(path: Option<&Path>) -> Result<SshConfig, String> {
    let (file, named) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => match home() {
            Some(h) => (h.join(".ssh").join("config"), false),
            None => return Ok(SshConfig::default()),
        },
    };
    let f = match std::fs::File::open(&file) {
        Ok(f) => f,
        Err(e) if !named && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(SshConfig::default());
        }
        Err(e) => return Err(format!("ssh config {}: {e}", file.display())),
    };
    parse_config(&mut BufReader::new(f)).map_err(|e| format!("ssh config {}: {e}", file.display()))
}

fn parse_config(reader: &mut impl std::io::BufRead) -> Result<SshConfig, String> {
    let mut config = SshConfig::default();
    if let Some(h) = home() {
        config = config.home_dir(h);
    }
    config
        .parse(
            reader,
            ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
        )
        .map_err(|e| e.to_string())
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Where to connect and as whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address to connect to (after `HostName`).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Login user.
    pub user: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

/// Everything needed to connect to and authenticate with one SSH server (the target or a
/// jump host).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    /// Where.
    pub endpoint: Endpoint,
    /// Private key files to try, in order (after the agent's keys).
    pub identity_files: Vec<PathBuf>,
    /// `IdentitiesOnly yes`: of the agent's keys, only those whose public key matches one of
    /// `identity_files` are offered.
    pub identities_only: bool,
    /// `ansible_password` (the target only).
    pub password: Option<Secret>,
    /// `BatchMode yes`: no password authentication.
    pub batch_mode: bool,
    /// known_hosts files to consult; the first one records new keys under `accept-new`.
    pub known_hosts: Vec<PathBuf>,
    /// What to do with an unknown host key.
    pub policy: HostKeyPolicy,
}

/// The resolved settings for one inventory host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSettings {
    /// The inventory name (for messages).
    pub name: String,
    /// The host itself.
    pub target: Hop,
    /// Jump hosts, first to last (`ProxyJump`).
    pub jumps: Vec<Hop>,
    /// Limit for TCP connect + handshake + authentication, per hop.
    pub connect_timeout: Duration,
    /// Keepalive interval; `None` turns liveness checks off (`ServerAliveInterval 0`).
    pub alive_interval: Option<Duration>,
    /// Unanswered keepalives before the host is declared dead.
    pub alive_count: u32,
}

impl HostSettings {
    /// How long a dead host takes to be noticed: interval × count.
    pub fn liveness_window(&self) -> Option<Duration> {
        self.alive_interval.map(|i| i * self.alive_count.max(1))
    }
}

/// The layers after inventory variables, each answering "what does it say about key K".
struct Layers<'a> {
    opts: &'a HostParams,
    cli: &'a SshOptions,
    config: &'a HostParams,
}

impl Layers<'_> {
    /// An ssh_config keyword the parser keeps as text (lowercase key), `-o` first.
    fn text(&self, key: &str) -> Option<&[String]> {
        self.opts
            .unsupported_fields
            .get(key)
            .or_else(|| self.config.unsupported_fields.get(key))
            .map(Vec::as_slice)
    }

    fn text_from(params: &HostParams, key: &str) -> Option<String> {
        params.unsupported_fields.get(key).map(|v| v.join(" "))
    }
}

/// Resolves `name`'s settings. `var` looks up an inventory variable (already templated).
pub fn resolve(
    name: &str,
    var: &dyn Fn(&str) -> Option<Json>,
    cli: &SshOptions,
    config: &SshConfig,
) -> Result<HostSettings, String> {
    let s = |k: &str| var(k).and_then(|v| json_string(&v));
    let first = |keys: &[&str]| keys.iter().find_map(|k| s(k));
    let opts = ssh_args(
        &[
            first(&["ansible_ssh_common_args"]),
            first(&["ansible_ssh_extra_args"]),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>(),
    )
    .map_err(|e| format!("{name}: ansible_ssh_common_args/extra_args: {e}"))?;
    let destination = first(&["ansible_host", "ansible_ssh_host"]).unwrap_or_else(|| name.into());
    let cfg = config.query(&destination);
    let layers = Layers {
        opts: &opts,
        cli,
        config: &cfg,
    };

    let host = opts
        .host_name
        .clone()
        .or_else(|| cfg.host_name.clone())
        .map(|h| h.replace("%h", &destination))
        .unwrap_or_else(|| destination.clone());
    let port = match first(&["ansible_port", "ansible_ssh_port"]) {
        Some(p) => parse_port(&p)
            .ok_or_else(|| format!("{name}: ansible_port '{p}' is not a port number"))?,
        None => opts.port.or(cfg.port).unwrap_or(22),
    };
    let user = match first(&["ansible_user", "ansible_ssh_user"])
        .or_else(|| opts.user.clone())
        .or_else(|| cli.user.clone())
        .or_else(|| cfg.user.clone())
        .or_else(local_user)
    {
        Some(u) => u,
        None => return Err(format!("{name}: no login user: set ansible_user")),
    };

    let mut identity_files: Vec<PathBuf> =
        first(&["ansible_ssh_private_key_file", "ansible_private_key_file"])
            .map(|p| vec![expand_tilde(&p)])
            .unwrap_or_default();
    identity_files.extend(opts.identity_file.clone().unwrap_or_default());
    identity_files.extend(cli.identity_file.iter().cloned());
    identity_files.extend(cfg.identity_file.clone().unwrap_or_default());
    if identity_files.is_empty() {
        identity_files = default_identities();
    }
    dedup(&mut identity_files);

    let policy = match first(&["ansible_ssh_host_key_checking", "ansible_host_key_checking"]) {
        Some(v) => HostKeyPolicy::parse(&v).ok_or_else(|| {
            format!("{name}: ansible_ssh_host_key_checking '{v}': expected strict or accept-new")
        })?,
        None => layered_policy(&layers).map_err(|e| format!("{name}: {e}"))?,
    };

    let connect_timeout = match first(&["ansible_ssh_timeout", "ansible_timeout"]) {
        Some(t) => Duration::from_secs(t.trim().parse::<u64>().map_err(|_| {
            format!("{name}: ansible_ssh_timeout '{t}' is not a number of seconds")
        })?),
        None => opts
            .connect_timeout
            .or(cli.connect_timeout)
            .or(cfg.connect_timeout)
            .unwrap_or(CONNECT_TIMEOUT_DEFAULT),
    };
    let alive_interval = match opts.server_alive_interval.or(cfg.server_alive_interval) {
        Some(d) if d.is_zero() => None,
        Some(d) => Some(d),
        None => Some(ALIVE_INTERVAL_DEFAULT),
    };
    let alive_count = match layers.text("serveralivecountmax") {
        Some(v) => v
            .join(" ")
            .trim()
            .parse::<u32>()
            .map_err(|_| {
                format!(
                    "{name}: ServerAliveCountMax '{}' is not a number",
                    v.join(" ")
                )
            })?
            .max(1),
        None => ALIVE_COUNT_DEFAULT,
    };

    let target = Hop {
        endpoint: Endpoint { host, port, user },
        identity_files: identity_files.clone(),
        identities_only: yes(layers.text("identitiesonly")),
        password: first(&[
            "ansible_password",
            "ansible_ssh_pass",
            "ansible_ssh_password",
        ])
        .map(Secret::new),
        batch_mode: yes(layers.text("batchmode")),
        known_hosts: known_hosts_files(layers.text("userknownhostsfile")),
        policy,
    };

    let jump_specs = opts
        .proxy_jump
        .clone()
        .or_else(|| cfg.proxy_jump.clone())
        .unwrap_or_default();
    let mut jumps = Vec::new();
    for spec in jump_specs.iter().flat_map(|s| s.split(',')) {
        let spec = spec.trim();
        if spec.is_empty() || spec.eq_ignore_ascii_case("none") {
            continue;
        }
        jumps.push(
            jump_hop(spec, cli, config, &target)
                .map_err(|e| format!("{name}: ProxyJump '{spec}': {e}"))?,
        );
    }

    Ok(HostSettings {
        name: name.to_string(),
        target,
        jumps,
        connect_timeout,
        alive_interval,
        alive_count,
    })
}

fn layered_policy(l: &Layers<'_>) -> Result<HostKeyPolicy, String> {
    let parse = |v: String| {
        HostKeyPolicy::parse(&v)
            .ok_or_else(|| format!("StrictHostKeyChecking '{v}': expected yes, accept-new or no"))
    };
    if let Some(v) = Layers::text_from(l.opts, "stricthostkeychecking") {
        return parse(v);
    }
    if let Some(p) = l.cli.host_key_checking {
        return Ok(p);
    }
    if let Some(v) = Layers::text_from(l.config, "stricthostkeychecking") {
        return parse(v);
    }
    Ok(HostKeyPolicy::Strict)
}

/// A jump host `[user@]host[:port]` (or `ssh://[user@]host[:port]`), completed from the ssh
/// config's entry for that host. It uses the target's known_hosts files and policy, and also
/// tries the target's key files after its own.
fn jump_hop(spec: &str, cli: &SshOptions, config: &SshConfig, target: &Hop) -> Result<Hop, String> {
    let spec = spec.strip_prefix("ssh://").unwrap_or(spec);
    let (user, rest) = match spec.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, spec),
    };
    let (alias, port) = split_host_port(rest)?;
    let cfg = config.query(&alias);
    let host = cfg
        .host_name
        .clone()
        .map(|h| h.replace("%h", &alias))
        .unwrap_or_else(|| alias.clone());
    let port = port.or(cfg.port).unwrap_or(22);
    let user = user
        .or_else(|| cfg.user.clone())
        .or_else(local_user)
        .ok_or("no login user")?;
    let mut identity_files = cfg.identity_file.clone().unwrap_or_default();
    identity_files.extend(target.identity_files.iter().cloned());
    dedup(&mut identity_files);
    let policy = match Layers::text_from(&cfg, "stricthostkeychecking") {
        Some(v) if cli.host_key_checking.is_none() => {
            HostKeyPolicy::parse(&v).ok_or_else(|| {
                format!("StrictHostKeyChecking '{v}': expected yes, accept-new or no")
            })?
        }
        _ => target.policy,
    };
    Ok(Hop {
        endpoint: Endpoint { host, port, user },
        identity_files,
        identities_only: yes(cfg
            .unsupported_fields
            .get("identitiesonly")
            .map(Vec::as_slice)),
        password: None,
        batch_mode: true,
        known_hosts: target.known_hosts.clone(),
        policy,
    })
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("unclosed '['")?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(p).ok_or_else(|| format!("bad port '{p}'"))?),
            None if after.is_empty() => None,
            None => return Err(format!("unexpected '{after}'")),
        };
        return Ok((h.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((
            h.to_string(),
            Some(parse_port(p).ok_or_else(|| format!("bad port '{p}'"))?),
        )),
        _ => Ok((s.to_string(), None)),
    }
}

pub(crate) fn parse_port(s: &str) -> Option<u16> {
    s.trim().parse::<u16>().ok().filter(|p| *p > 0)
}

fn yes(v: Option<&[String]>) -> bool {
    v.and_then(|v| v.first())
        .is_some_and(|s| matches!(s.to_ascii_lowercase().as_str(), "yes" | "true"))
}

fn json_string(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(if *b { "yes" } else { "no" }.to_string()),
        _ => None,
    }
}

fn local_user() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|u| !u.is_empty()))
}

fn expand_tilde(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), home()) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(p),
    }
}

fn default_identities() -> Vec<PathBuf> {
    match home() {
        Some(h) => ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|f| h.join(".ssh").join(f))
            .collect(),
        None => Vec::new(),
    }
}

/// `UserKnownHostsFile` (space-separated, `~` expanded; default `~/.ssh/known_hosts` and
/// `~/.ssh/known_hosts2`), then the system-wide `/etc/ssh/ssh_known_hosts` (read only).
fn known_hosts_files(setting: Option<&[String]>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match setting {
        Some(v) => v
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(expand_tilde)
            .collect(),
        None => match home() {
            Some(h) => vec![
                h.join(".ssh").join("known_hosts"),
                h.join(".ssh").join("known_hosts2"),
            ],
            None => Vec::new(),
        },
    };
    files.push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
    dedup(&mut files);
    files
}

fn dedup(v: &mut Vec<PathBuf>) {
    let mut seen = Vec::new();
    v.retain(|p| {
        if seen.contains(p) {
            false
        } else {
            seen.push(p.clone());
            true
        }
    });
}

/// Parses `ssh` command-line arguments as Ansible passes them (`-o Key=Value`, `-oKey=Value`,
/// `-J jump`, `-i key`, `-p port`, `-l user`) into ssh_config parameters. Other options are
/// ignored with a warning; an option missing its value is an error.
fn ssh_args(args: &[String]) -> Result<HostParams, String> {
    let mut lines = String::new();
    // As in ssh, the first value of a keyword wins (IdentityFile accumulates).
    let mut seen: Vec<String> = Vec::new();
    let mut push = |k: &str, v: &str| {
        let key = k.to_ascii_lowercase();
        if key != "identityfile" && seen.contains(&key) {
            return;
        }
        seen.push(key);
        lines.push_str(&format!("{k} {v}\n"));
    };
    for raw in args {
        let words = split_words(raw)?;
        let mut it = words.into_iter();
        while let Some(w) = it.next() {
            let (flag, inline) = if w.len() > 2 && w.starts_with('-') && !w.starts_with("--") {
                (w[..2].to_string(), Some(w[2..].to_string()))
            } else {
                (w.clone(), None)
            };
            let keyword = match flag.as_str() {
                "-o" => None,
                "-J" => Some("ProxyJump"),
                "-i" => Some("IdentityFile"),
                "-p" => Some("Port"),
                "-l" => Some("User"),
                _ => {
                    tracing::warn!(option = %w, "ignoring an ssh option rdeploy does not support");
                    continue;
                }
            };
            let value = match inline.or_else(|| it.next()) {
                Some(v) => v,
                None => return Err(format!("{flag} needs a value")),
            };
            if value.contains('\n') {
                return Err(format!("{flag}: a value cannot contain a newline"));
            }
            match keyword {
                Some(k) => push(k, &value),
                None => {
                    let (k, v) = value
                        .split_once('=')
                        .or_else(|| value.split_once(char::is_whitespace))
                        .ok_or_else(|| format!("-o '{value}': expected Key=Value"))?;
                    let k = k.trim();
                    if k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case("match") {
                        return Err(format!("-o {k} is not allowed"));
                    }
                    if k.eq_ignore_ascii_case("proxycommand") {
                        tracing::warn!("ignoring -o ProxyCommand: use ProxyJump (-J)");
                        continue;
                    }
                    push(k, v.trim());
                }
            }
        }
    }
    let config = parse_config(&mut lines.as_bytes())?;
    Ok(config.query("*"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(text: &str) -> SshConfig {
        parse_config(&mut text.as_bytes()).unwrap()
    }

    fn vars(pairs: &[(&str, Json)]) -> impl Fn(&str) -> Option<Json> {
        let m: std::collections::HashMap<String, Json> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn resolve_with(
        name: &str,
        v: &[(&str, Json)],
        cli: &SshOptions,
        cfg: &str,
    ) -> Result<HostSettings, String> {
        resolve(name, &vars(v), cli, &config(cfg))
    }

    const CFG: &str = "\
Host web*
    HostName %h.internal
    User deploy
    Port 2200
    IdentityFile /keys/web
    StrictHostKeyChecking accept-new
    ServerAliveInterval 7
    ServerAliveCountMax 4
    ConnectTimeout 3
    IdentitiesOnly yes
    UserKnownHostsFile /kh/one /kh/two

Host db1
    HostName 10.0.0.9
    ProxyJump bastion

Host bastion
    HostName 10.0.0.1
    User jump
    Port 2222
    IdentityFile /keys/jump

Host *
    User fallback
    IdentityFile /keys/default
";

    #[test]
    fn defaults_when_nothing_is_set() {
        let s = resolve_with(
            "h1",
            &[("ansible_user", json!("me"))],
            &SshOptions::default(),
            "",
        )
        .unwrap();
        assert_eq!(s.target.endpoint.host, "h1");
        assert_eq!(s.target.endpoint.port, 22);
        assert_eq!(s.target.endpoint.user, "me");
        assert_eq!(s.target.policy, HostKeyPolicy::Strict);
        assert_eq!(s.connect_timeout, CONNECT_TIMEOUT_DEFAULT);
        assert_eq!(s.alive_interval, Some(ALIVE_INTERVAL_DEFAULT));
        assert_eq!(s.alive_count, ALIVE_COUNT_DEFAULT);
        assert!(s.jumps.is_empty());
        assert!(!s.target.identities_only);
        assert_eq!(
            s.target.known_hosts.last().unwrap(),
            Path::new("/etc/ssh/ssh_known_hosts")
        );
    }

    #[test]
    fn ssh_config_applies_by_host_pattern() {
        let s = resolve_with("web1", &[], &SshOptions::default(), CFG).unwrap();
        assert_eq!(
            s.target.endpoint,
            Endpoint {
                host: "web1.internal".into(),
                port: 2200,
                user: "deploy".into()
            }
        );
        assert_eq!(
            s.target.identity_files,
            vec![PathBuf::from("/keys/web"), PathBuf::from("/keys/default")]
        );
        assert_eq!(s.target.policy, HostKeyPolicy::AcceptNew);
        assert_eq!(s.alive_interval, Some(Duration::from_secs(7)));
        assert_eq!(s.alive_count, 4);
        assert_eq!(s.connect_timeout, Duration::from_secs(3));
        assert!(s.target.identities_only);
        assert_eq!(
            s.target.known_hosts,
            vec![
                PathBuf::from("/kh/one"),
                PathBuf::from("/kh/two"),
                PathBuf::from("/etc/ssh/ssh_known_hosts")
            ]
        );
        let other = resolve_with("mail", &[], &SshOptions::default(), CFG).unwrap();
        assert_eq!(other.target.endpoint.user, "fallback");
        assert_eq!(other.target.endpoint.host, "mail");
    }

    #[test]
    fn inventory_vars_beat_ssh_args_beat_cli_beat_config() {
        let cli = SshOptions {
            host_key_checking: Some(HostKeyPolicy::Strict),
            connect_timeout: Some(Duration::from_secs(20)),
            ..SshOptions::default()
        };
        // Config only (the CLI flag beats the config's accept-new and ConnectTimeout 3).
        let s = resolve_with("web1", &[], &cli, CFG).unwrap();
        let with_user = SshOptions {
            user: Some("cliuser".into()),
            identity_file: Some(PathBuf::from("/keys/cli")),
            ..SshOptions::default()
        };
        let u = resolve_with("web1", &[], &with_user, CFG).unwrap();
        assert_eq!(u.target.endpoint.user, "cliuser");
        assert_eq!(
            u.target.identity_files.first(),
            Some(&PathBuf::from("/keys/cli"))
        );
        assert_eq!(s.target.policy, HostKeyPolicy::Strict);
        assert_eq!(s.connect_timeout, Duration::from_secs(20));
        // -o beats the CLI and the config.
        let args = json!(
            "-o StrictHostKeyChecking=accept-new -oPort=2300 -o 'User=argsuser' -o ConnectTimeout=4"
        );
        let s = resolve_with(
            "web1",
            &[("ansible_ssh_common_args", args.clone())],
            &cli,
            CFG,
        )
        .unwrap();
        assert_eq!(s.target.policy, HostKeyPolicy::AcceptNew);
        assert_eq!(s.target.endpoint.port, 2300);
        assert_eq!(s.target.endpoint.user, "argsuser");
        assert_eq!(s.connect_timeout, Duration::from_secs(4));
        // Inventory variables beat everything.
        let s = resolve_with(
            "web1",
            &[
                ("ansible_ssh_common_args", args),
                ("ansible_port", json!(2400)),
                ("ansible_user", json!("invuser")),
                ("ansible_ssh_host_key_checking", json!("strict")),
                ("ansible_ssh_timeout", json!("9")),
                ("ansible_ssh_private_key_file", json!("/keys/inv")),
            ],
            &cli,
            CFG,
        )
        .unwrap();
        assert_eq!(s.target.endpoint.port, 2400);
        assert_eq!(s.target.endpoint.user, "invuser");
        assert_eq!(s.target.policy, HostKeyPolicy::Strict);
        assert_eq!(s.connect_timeout, Duration::from_secs(9));
        assert_eq!(s.target.identity_files[0], PathBuf::from("/keys/inv"));
    }

    #[test]
    fn ansible_host_is_the_destination_looked_up_in_the_config() {
        let s = resolve_with(
            "app",
            &[
                ("ansible_host", json!("web9")),
                ("ansible_user", json!("u")),
            ],
            &SshOptions::default(),
            CFG,
        )
        .unwrap();
        assert_eq!(s.target.endpoint.host, "web9.internal");
        assert_eq!(s.target.endpoint.port, 2200);
        assert_eq!(s.name, "app");
    }

    #[test]
    fn host_key_checking_false_means_accept_new_never_accept_changed() {
        let s = resolve_with(
            "h",
            &[
                ("ansible_user", json!("u")),
                ("ansible_host_key_checking", json!(false)),
            ],
            &SshOptions::default(),
            "",
        )
        .unwrap();
        assert_eq!(s.target.policy, HostKeyPolicy::AcceptNew);
        let e = resolve_with(
            "h",
            &[
                ("ansible_user", json!("u")),
                ("ansible_ssh_host_key_checking", json!("maybe")),
            ],
            &SshOptions::default(),
            "",
        )
        .unwrap_err();
        assert!(e.starts_with("h: "), "{e}");
    }

    #[test]
    fn proxy_jump_from_config_and_from_args() {
        let s = resolve_with(
            "db1",
            &[("ansible_ssh_private_key_file", json!("/keys/target"))],
            &SshOptions::default(),
            CFG,
        )
        .unwrap();
        assert_eq!(s.target.endpoint.host, "10.0.0.9");
        assert_eq!(s.jumps.len(), 1);
        let j = &s.jumps[0];
        assert_eq!(
            j.endpoint,
            Endpoint {
                host: "10.0.0.1".into(),
                port: 2222,
                user: "jump".into()
            }
        );
        // Its own key first, then the shared defaults, then the target's.
        assert_eq!(j.identity_files[0], PathBuf::from("/keys/jump"));
        assert!(j.identity_files.contains(&PathBuf::from("/keys/target")));
        assert!(j.password.is_none());

        let s = resolve_with(
            "web1",
            &[(
                "ansible_ssh_extra_args",
                json!("-J a@j1:2201,[::1]:2202 -o ProxyJump=ignored"),
            )],
            &SshOptions::default(),
            CFG,
        )
        .unwrap();
        // -J came first; the later -o does not override it (first value wins, as in ssh).
        assert_eq!(s.jumps.len(), 2);
        assert_eq!(s.jumps[0].endpoint.user, "a");
        assert_eq!(s.jumps[0].endpoint.port, 2201);
        assert_eq!(s.jumps[1].endpoint.host, "::1");
        assert_eq!(s.jumps[1].endpoint.port, 2202);

        let s = resolve_with(
            "db1",
            &[("ansible_ssh_common_args", json!("-o ProxyJump=none"))],
            &SshOptions::default(),
            CFG,
        )
        .unwrap();
        assert!(s.jumps.is_empty());
    }

    #[test]
    fn liveness_settings() {
        let s = resolve_with(
            "h",
            &[
                ("ansible_user", json!("u")),
                (
                    "ansible_ssh_common_args",
                    json!("-o ServerAliveInterval=2 -o ServerAliveCountMax=5"),
                ),
            ],
            &SshOptions::default(),
            "",
        )
        .unwrap();
        assert_eq!(s.liveness_window(), Some(Duration::from_secs(10)));
        let s = resolve_with(
            "h",
            &[
                ("ansible_user", json!("u")),
                ("ansible_ssh_common_args", json!("-o ServerAliveInterval=0")),
            ],
            &SshOptions::default(),
            "",
        )
        .unwrap();
        assert_eq!(s.liveness_window(), None);
    }

    #[test]
    fn password_and_batch_mode() {
        let s = resolve_with(
            "h",
            &[
                ("ansible_user", json!("u")),
                ("ansible_password", json!("hunter2")),
                ("ansible_ssh_common_args", json!("-o BatchMode=yes")),
            ],
            &SshOptions::default(),
            "",
        )
        .unwrap();
        assert_eq!(
            s.target.password.as_ref().map(Secret::expose),
            Some("hunter2")
        );
        assert!(s.target.batch_mode);
        // Never in Debug output.
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }

    #[test]
    fn bad_values_are_errors_naming_the_host() {
        for (k, v) in [
            ("ansible_port", json!("http")),
            ("ansible_ssh_timeout", json!("soon")),
            ("ansible_ssh_common_args", json!("-o 'unterminated")),
            ("ansible_ssh_common_args", json!("-o NoEquals")),
            (
                "ansible_ssh_common_args",
                json!("-o StrictHostKeyChecking=perhaps"),
            ),
            ("ansible_ssh_common_args", json!("-i")),
        ] {
            let e = resolve_with(
                "web7",
                &[("ansible_user", json!("u")), (k, v.clone())],
                &SshOptions::default(),
                "",
            )
            .unwrap_err();
            assert!(e.contains("web7"), "{k}={v}: {e}");
        }
    }

    #[test]
    fn split_host_port_forms() {
        assert_eq!(split_host_port("h").unwrap(), ("h".into(), None));
        assert_eq!(split_host_port("h:22").unwrap(), ("h".into(), Some(22)));
        assert_eq!(
            split_host_port("[::1]:22").unwrap(),
            ("::1".into(), Some(22))
        );
        assert_eq!(split_host_port("::1").unwrap(), ("::1".into(), None));
        assert!(split_host_port("h:port").is_err());
    }
}
