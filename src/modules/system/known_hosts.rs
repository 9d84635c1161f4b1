//! `known_hosts`: a host's keys present in (or absent from) a known_hosts file.
//!
//! Owns Ansible's rules, ported from its `enforce_state`/`search_for_host_key`: lines are
//! matched to the host as `ssh-keygen -F` matches them (patterns with `*`/`?`/`!`, `[host]:port`,
//! hashed `|1|salt|hash` names), a line of the same key type is replaced, an exact line is
//! kept, `state: absent` without a key removes every line of the host (`ssh-keygen -R`). The
//! new content is computed on the controller from the one-round-trip read and written by one
//! atomic `put` (the file's backup is rdeploy's own). It must not format shell lines.
//!
//! Deviations: no `ssh-keygen` is needed on the host (the matching is done here); `state:
//! absent` without a key leaves no `FILE.old` copy (rdeploy's backup replaces it).

use serde_json::Value;
use sha1::{Digest, Sha1};

use crate::modules::files::common::{edit_apply, edit_verdict, failed, read_text_file};
use crate::modules::runtime::{
    Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::AnyTransport;

/// The `known_hosts` module.
pub struct KnownHosts;

crate::module_args! {
    /// Adds or removes a host's keys in a known_hosts file, one line per key type (for `git`
    /// over SSH, say). The file is created if needed; its directory must exist.
    #[module(
        name = "known_hosts",
        backup = "The known_hosts file is copied (content, mode, owner) before it is changed; rollback puts the copy back, or removes the file if the step created it.",
        returns = &[
            ("name", "the host"),
            ("key", "the line given"),
            ("path", "the file"),
            ("hash_host", "whether the name was hashed"),
            ("state", "present or absent"),
        ],
        examples = "- known_hosts:\n    name: git.example.com\n    key: \"git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8lV4S7t1HzcOp+example\"\n    path: /etc/ssh/ssh_known_hosts\n- known_hosts:\n    name: \"[git.example.com]:2222\"\n    state: absent"
    )]
    pub struct KnownHostsArgs {
        /// The host (lower-cased, as `ssh-keygen` looks it up); `[host]:port` for another port.
        #[arg(required, aliases = &["host"])]
        name: String,
        /// The line to add, as in a known_hosts file (`HOST[,IP] TYPE KEY`); its host field must
        /// match `name`. Required when `state` is present; without it, `absent` removes every key
        /// of the host.
        key: Option<String>,
        /// The known_hosts file to edit.
        #[arg(kind = Path, default = "~/.ssh/known_hosts")]
        path: String,
        /// Write the host name hashed (`|1|salt|hash`); an already hashed line is kept.
        #[arg(default = "no")]
        hash_host: bool,
        /// Whether the host's key is in the file.
        #[arg(default = "present", choices = &["present", "absent"])]
        state: String,
    }
}

/// One known_hosts line, as Ansible's `normalize_known_hosts_key` splits it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    marker: Option<String>,
    host: String,
    kind: String,
    key: String,
}

fn parse_entry(line: &str) -> Option<Entry> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let (marker, rest) = match f.first() {
        Some(m) if m.starts_with('@') => (Some(m.to_string()), &f[1..]),
        _ => (None, &f[..]),
    };
    match rest {
        [host, kind, key, ..] => Some(Entry {
            marker,
            host: host.to_string(),
            kind: kind.to_string(),
            key: key.to_string(),
        }),
        _ => None,
    }
}

/// HMAC-SHA1 (RFC 2104) of `msg` with `key`: OpenSSH's hashed host names.
fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha1::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha1::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// OpenSSH's pattern match: `*` any run, `?` one character.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pat[1..], s) || (!s.is_empty() && glob(pat, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&pat[1..], &s[1..]),
        (Some(p), Some(c)) if p.eq_ignore_ascii_case(c) => glob(&pat[1..], &s[1..]),
        _ => false,
    }
}

/// Whether a line's host field names `host`, as `ssh-keygen -F host` decides.
fn host_matches(field: &str, host: &str) -> bool {
    use base64::Engine as _;
    if let Some(rest) = field.strip_prefix("|1|") {
        let b64 = base64::engine::general_purpose::STANDARD;
        let Some((salt, hash)) = rest.split_once('|') else {
            return false;
        };
        return match (b64.decode(salt), b64.decode(hash)) {
            (Ok(salt), Ok(hash)) => hmac_sha1(&salt, host.as_bytes()).as_slice() == hash,
            _ => false,
        };
    }
    let mut matched = false;
    for pat in field.split(',') {
        if let Some(neg) = pat.strip_prefix('!') {
            if glob(neg.as_bytes(), host.as_bytes()) {
                return false;
            }
        } else if glob(pat.as_bytes(), host.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// `host`'s name hashed with a fresh salt (`|1|salt|hash`).
fn hashed_name(host: &str) -> Result<String, ModuleError> {
    use base64::Engine as _;
    let mut salt = [0u8; 20];
    getrandom::fill(&mut salt).map_err(|e| failed(format!("no randomness for a salt: {e}")))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(format!(
        "|1|{}|{}",
        b64.encode(salt),
        b64.encode(hmac_sha1(&salt, host.as_bytes()))
    ))
}

/// What the file says of the host: (found, replace or add, line number of the key to replace).
fn search(lines: &[&str], host: &str, new: Option<&mut Entry>) -> (bool, bool, Option<usize>) {
    let matched: Vec<(usize, Entry)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#'))
        .filter_map(|(i, l)| parse_entry(l).map(|e| (i + 1, e)))
        .filter(|(_, e)| host_matches(&e.host, host))
        .collect();
    if matched.is_empty() {
        return (false, false, None);
    }
    let Some(new) = new else {
        return (true, false, None);
    };
    for (n, found) in matched {
        if found.marker.is_some() {
            if *new == found {
                return (true, false, Some(n));
            }
            continue;
        }
        if new.host.starts_with("|1|") && found.host.starts_with("|1|") {
            // A hashed name stays as it is in the file.
            new.host = found.host.clone();
        }
        if *new == found {
            return (true, false, Some(n));
        }
        if new.kind == found.kind {
            return (true, true, Some(n));
        }
    }
    (true, true, None)
}

/// The file's new text, or `None` when nothing changes.
fn edit(text: &str, a: &KnownHostsArgs) -> Result<Option<String>, ModuleError> {
    let host = a.name.to_lowercase();
    let present = a.state == "present";
    let mut key = match &a.key {
        Some(k) if !k.trim().is_empty() => Some(k.trim_end_matches('\n').to_string()),
        _ if present => return Err(failed("No key specified when adding a host")),
        _ => None,
    };
    let mut new_entry = None;
    if let Some(k) = &key {
        let has_comma = host.split(',').count() > 1;
        if has_comma {
            return Err(failed(
                "Comma separated list of names is not supported. Please pass a single name to lookup in the known_hosts file.",
            ));
        }
        let entry = parse_entry(k).ok_or_else(|| {
            failed(format!(
                "the key '{k}' is not a known_hosts line (HOST TYPE KEY)"
            ))
        })?;
        if !host_matches(&entry.host, &host) {
            return Err(failed(
                "Host parameter does not match hashed host field in supplied key",
            ));
        }
        let mut entry = entry;
        if a.hash_host {
            entry.host = hashed_name(&host)?;
        }
        new_entry = Some(entry);
    }
    let lines: Vec<&str> = text.lines().collect();
    let (found, replace, found_line) = search(&lines, &host, new_entry.as_mut());
    if let (Some(k), Some(e), true) = (&mut key, &new_entry, a.hash_host) {
        // The line as written: the user's, with its name hashed (or kept from the file).
        let mut parts: Vec<String> = k.split_whitespace().map(str::to_string).collect();
        let at = usize::from(parts.first().is_some_and(|p| p.starts_with('@')));
        if let Some(p) = parts.get_mut(at) {
            p.clone_from(&e.host);
        }
        *k = parts.join(" ");
    }
    if !present && found_line.is_none() && key.is_some() {
        return Ok(None);
    }
    if !(replace || found != present) {
        return Ok(None);
    }
    let mut out = String::new();
    for (i, l) in text.split_inclusive('\n').enumerate() {
        let n = i + 1;
        let remove_all = found && key.is_none() && !present;
        let of_host = parse_entry(l).is_some_and(|e| host_matches(&e.host, &host))
            && !l.trim_start().starts_with('#');
        if (remove_all && of_host) || (found_line == Some(n) && (replace || !present)) {
            continue;
        }
        out.push_str(l);
    }
    if present && let Some(k) = &key {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(k);
        out.push('\n');
    }
    Ok(Some(out))
}

impl Module for KnownHosts {
    fn name(&self) -> &'static str {
        "known_hosts"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let a = KnownHostsArgs::parse(args)?;
            let tf = read_text_file(tr, ctx, &a.path).await?;
            if !tf.parent_exists {
                return Err(failed(format!(
                    "Failed to write to file '{}': its directory does not exist",
                    a.path
                )));
            }
            let text = match &tf.bytes {
                Some(b) => String::from_utf8(b.clone())
                    .map_err(|_| failed(format!("{} is not UTF-8 text", a.path)))?,
                None => String::new(),
            };
            let new = edit(&text, &a)?;
            let mut result = Args::new();
            result.insert("name".into(), Value::from(a.name.clone()));
            result.insert("key".into(), a.key.clone().map_or(Value::Null, Value::from));
            result.insert("path".into(), Value::from(a.path.clone()));
            result.insert("hash_host".into(), Value::from(a.hash_host));
            result.insert("state".into(), Value::from(a.state.clone()));
            // No `msg` in Ansible's result.
            let verdict = edit_verdict(
                &a.path,
                &tf,
                new.map(String::into_bytes),
                &Args::new(),
                String::new(),
                result,
            )?;
            Ok(match verdict {
                Verdict::InSync { mut result } => {
                    result.remove("msg");
                    Verdict::InSync { result }
                }
                d => d,
            })
        })
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(async move {
            let mut r = edit_apply(tr, ctx, drift, "backup").await?;
            r.remove("msg");
            Ok(r)
        })
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        KnownHostsArgs::parse(args)
            .map(|a| vec![Resource::Path(a.path)])
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBbW";
    const ED2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIXXXX";
    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ";

    fn args(v: serde_json::Value) -> KnownHostsArgs {
        match v {
            serde_json::Value::Object(m) => KnownHostsArgs::parse(&m).expect("arguments"),
            _ => panic!("not a mapping"),
        }
    }

    fn run(text: &str, v: serde_json::Value) -> Result<Option<String>, String> {
        edit(text, &args(v)).map_err(|e| e.to_string())
    }

    #[test]
    fn lines_are_added_replaced_kept_and_removed_as_ansible_does() {
        let add = json!({"name": "git.example.com", "key": format!("git.example.com {ED}")});
        // Added to an empty (or missing) file.
        assert_eq!(
            run("", add.clone()).unwrap().as_deref(),
            Some(format!("git.example.com {ED}\n").as_str())
        );
        // Already there: nothing changes.
        let have = format!("other {RSA}\ngit.example.com {ED}\n");
        assert_eq!(run(&have, add.clone()).unwrap(), None);
        // A different key of the same type replaces that line (moved to the end).
        let new = json!({"name": "git.example.com", "key": format!("git.example.com {ED2}")});
        assert_eq!(
            run(&have, new).unwrap().as_deref(),
            Some(format!("other {RSA}\ngit.example.com {ED2}\n").as_str())
        );
        // Another key type is added beside it.
        let rsa = json!({"name": "git.example.com", "key": format!("git.example.com {RSA}")});
        assert_eq!(
            run(&have, rsa).unwrap().as_deref(),
            Some(format!("{have}git.example.com {RSA}\n").as_str())
        );
        // Absent without a key: every line of the host goes.
        let two = format!("git.example.com {RSA}\nother {RSA}\ngit.example.com {ED}\n");
        let gone = json!({"name": "git.example.com", "state": "absent"});
        assert_eq!(
            run(&two, gone.clone()).unwrap().as_deref(),
            Some(format!("other {RSA}\n").as_str())
        );
        assert_eq!(run(&format!("other {RSA}\n"), gone).unwrap(), None);
        // Absent with another key of a type the file has: Ansible removes that type's line.
        let absent_key = json!({"name": "git.example.com", "key": format!("git.example.com {ED2}"), "state": "absent"});
        assert_eq!(
            run(&have, absent_key).unwrap().as_deref(),
            Some(format!("other {RSA}\n").as_str())
        );
        // Absent with a key of a type the file lacks for the host: nothing.
        let absent_rsa = json!({"name": "git.example.com", "key": format!("git.example.com {RSA}"), "state": "absent"});
        assert_eq!(run(&have, absent_rsa).unwrap(), None);
    }

    #[test]
    fn host_patterns_ports_and_hashed_names_match_as_ssh_keygen() {
        assert!(host_matches("git.example.com,10.0.0.1", "10.0.0.1"));
        assert!(host_matches("*.example.com", "git.example.com"));
        assert!(!host_matches(
            "*.example.com,!git.example.com",
            "git.example.com"
        ));
        assert!(host_matches(
            "[git.example.com]:2222",
            "[git.example.com]:2222"
        ));
        assert!(!host_matches("git.example.com", "[git.example.com]:2222"));
        // `ssh-keygen -H` of "git.example.com" with this salt.
        let hashed = hashed_name("git.example.com").unwrap();
        assert!(host_matches(&hashed, "git.example.com"));
        assert!(!host_matches(&hashed, "other.example.com"));
        // RFC 2202 test case 2.
        let mac = hmac_sha1(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    }

    #[test]
    fn a_hashed_line_is_kept_and_mistakes_are_ansibles_messages() {
        let hashed = format!("{} {ED}\n", hashed_name("git.example.com").unwrap());
        let again = json!({"name": "git.example.com", "key": format!("git.example.com {ED}"), "hash_host": true});
        assert_eq!(run(&hashed, again).unwrap(), None);
        let e = run("", json!({"name": "git.example.com"})).unwrap_err();
        assert_eq!(e, "No key specified when adding a host");
        let e = run("", json!({"name": "a,b", "key": format!("a {ED}")})).unwrap_err();
        assert!(
            e.starts_with("Comma separated list of names is not supported"),
            "{e}"
        );
        let e = run(
            "",
            json!({"name": "git.example.com", "key": format!("other {ED}")}),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "Host parameter does not match hashed host field in supplied key"
        );
        // Names are looked up lower-cased.
        let upper = json!({"name": "GIT.example.com", "key": format!("git.example.com {ED}")});
        assert_eq!(
            run(&format!("git.example.com {ED}\n"), upper).unwrap(),
            None
        );
    }
}
