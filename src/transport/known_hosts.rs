//! Our own `known_hosts` layer: parsing OpenSSH's format, deciding whether a host's key is
//! known, and recording a new one under `accept-new`.
//!
//! It owns the decision "may we talk to this host", and it fails closed: a key recorded for
//! the host under another algorithm, a different key of the same algorithm, a key marked
//! `@revoked`, or an unreadable file all refuse the host, as OpenSSH does; only a host that no
//! line names at all is "unknown", and only [`HostKeyPolicy::AcceptNew`] may record it. Lines are
//! matched like OpenSSH matches them: comma-separated patterns with `*`/`?` wildcards and
//! `!negation`, hashed names (`|1|salt|hash`, HMAC-SHA1), and `[host]:port` for ports other
//! than 22. `@cert-authority` lines are ignored (we verify plain host keys only). russh's own
//! known_hosts helpers are deliberately not used (no wildcards, no negation, no revocation, and a
//! host known under another algorithm comes back "unknown").
//!
//! Keys are handled as `(algorithm name, wire blob)` pairs so this file knows nothing of russh.
//! It must not prompt, print, or connect.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// What to do with a host whose key is not recorded anywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Refuse it (the default; never a prompt).
    #[default]
    Strict,
    /// Record its key in the first known_hosts file and go on; a changed key is still refused.
    AcceptNew,
}

impl HostKeyPolicy {
    /// Reads an OpenSSH `StrictHostKeyChecking` value or our flag's value. `no`/`off` are
    /// read as `accept-new`: rdeploy never accepts a changed key. `ask` is `strict` (we never
    /// prompt).
    pub fn parse(s: &str) -> Option<HostKeyPolicy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "strict" | "ask" | "true" | "1" => Some(HostKeyPolicy::Strict),
            "accept-new" | "accept_new" | "no" | "off" | "false" | "0" => {
                Some(HostKeyPolicy::AcceptNew)
            }
            _ => None,
        }
    }

    /// Whether this policy records the key on `verdict` (rather than refusing the host):
    /// only `accept-new`, only for an [`Verdict::Unknown`] host. A key recorded for the same
    /// host on another port leaves it unknown on this one, as in OpenSSH.
    pub fn learns(self, verdict: &Verdict) -> bool {
        self == HostKeyPolicy::AcceptNew && *verdict == Verdict::Unknown
    }

    /// The flag's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            HostKeyPolicy::Strict => "strict",
            HostKeyPolicy::AcceptNew => "accept-new",
        }
    }
}

/// A host key as the wire carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKey {
    /// Key type as known_hosts spells it (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`).
    pub algo: String,
    /// The public key blob (the base64-decoded third field of a known_hosts line).
    pub blob: Vec<u8>,
}

impl HostKey {
    /// OpenSSH's fingerprint: `SHA256:` and the unpadded base64 of the blob's sha256.
    pub fn fingerprint(&self) -> String {
        format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(Sha256::digest(&self.blob))
        )
    }

    /// The key as known_hosts writes it: `type base64`.
    pub fn to_line_fields(&self) -> String {
        format!("{} {}", self.algo, STANDARD.encode(&self.blob))
    }
}

/// The name a host is looked up under: `host` on port 22, `[host]:port` otherwise.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_ascii_lowercase()
    } else {
        format!("[{}]:{port}", host.to_ascii_lowercase())
    }
}

/// Where a line came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// The answer for one host and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A line for this host holds exactly this key.
    Known,
    /// No line names this host.
    Unknown,
    /// The host is recorded with a different key of the same type.
    Changed {
        /// The line holding the recorded key.
        at: Origin,
        /// The key that line pins.
        pinned: HostKey,
    },
    /// The host is recorded, but only with keys of other types.
    OtherType {
        /// The recorded types.
        known: Vec<String>,
        /// The first such line.
        at: Origin,
    },
    /// This key is marked `@revoked` for this host.
    Revoked {
        /// The `@revoked` line.
        at: Origin,
    },
}

impl Verdict {
    /// Why the host is refused, or `None` for [`Verdict::Known`]/[`Verdict::Unknown`].
    pub fn refusal(&self, host: &str, key: &HostKey) -> Option<String> {
        let fp = key.fingerprint();
        match self {
            Verdict::Known | Verdict::Unknown => None,
            Verdict::Changed { at, pinned } => Some(format!(
                "REMOTE HOST IDENTIFICATION HAS CHANGED for {host}: it offered {} key {fp}, but {at} pins {} key {}; refusing (remove the old line if the change is expected)",
                key.algo,
                pinned.algo,
                pinned.fingerprint()
            )),
            Verdict::OtherType { known, at } => Some(format!(
                "{host} offered a {} key ({fp}) but is known only with {} keys ({at}); refusing",
                key.algo,
                known.join(", ")
            )),
            Verdict::Revoked { at } => Some(format!(
                "{host} offered {} key {fp}, which {at} marks @revoked; refusing",
                key.algo
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    None,
    CertAuthority,
    Revoked,
}

#[derive(Clone, Debug)]
enum Hosts {
    /// `|1|salt|hash`.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// Comma-separated patterns.
    Patterns(Vec<String>),
}

#[derive(Clone, Debug)]
struct Entry {
    marker: Marker,
    hosts: Hosts,
    key: HostKey,
    at: Origin,
}

/// The parsed contents of one or more known_hosts files.
#[derive(Clone, Debug, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

/// A known_hosts file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("known_hosts {path}: {msg}")]
pub struct KnownHostsError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub msg: String,
    /// The failure was the controller's own ([`crate::limits::exhausted`]: out of open files
    /// or memory), not the file's: never a reason to refuse a host.
    pub exhausted: Option<String>,
}

impl KnownHosts {
    /// Parses `text` (read from `file`). Lines that cannot be understood are skipped, as
    /// OpenSSH skips them: they cannot make an unknown key known.
    pub fn parse(text: &str, file: &Path) -> KnownHosts {
        let mut kh = KnownHosts::default();
        kh.add(text, file);
        kh
    }

    fn add(&mut self, text: &str, file: &Path) {
        for (i, line) in text.lines().enumerate() {
            let at = Origin {
                file: file.to_path_buf(),
                line: i + 1,
            };
            if let Some(e) = parse_line(line, at) {
                self.entries.push(e);
            }
        }
    }

    /// [`KnownHosts::load`], parsed once for every connection of the run that reads the same
    /// files while they stay as they were (same size and modification time each; a key
    /// learned with `accept-new` changes them, and the next connection reads them again): 500
    /// hosts sharing one known_hosts file of 500 lines hold it once, not 500 times.
    pub fn load_shared(files: &[PathBuf]) -> Result<std::sync::Arc<KnownHosts>, KnownHostsError> {
        type Stamp = Vec<Option<(std::time::SystemTime, u64)>>;
        type Cache = std::collections::HashMap<Vec<PathBuf>, (Stamp, std::sync::Arc<KnownHosts>)>;
        static CACHE: std::sync::OnceLock<std::sync::Mutex<Cache>> = std::sync::OnceLock::new();
        let stamp: Stamp = files
            .iter()
            .map(|f| {
                std::fs::metadata(f)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())))
            })
            .collect();
        let cache = CACHE.get_or_init(Default::default);
        if let Some((s, kh)) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(files)
            && *s == stamp
        {
            return Ok(std::sync::Arc::clone(kh));
        }
        let kh = std::sync::Arc::new(KnownHosts::load(files)?);
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(files.to_vec(), (stamp, std::sync::Arc::clone(&kh)));
        Ok(kh)
    }

    /// Reads each file in turn; a missing file is empty, any other read error is an error
    /// (fail closed: we cannot tell a changed key from an unknown one without it).
    pub fn load(files: &[PathBuf]) -> Result<KnownHosts, KnownHostsError> {
        let mut kh = KnownHosts::default();
        for f in files {
            match std::fs::read(f) {
                Ok(bytes) => kh.add(&String::from_utf8_lossy(&bytes), f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(KnownHostsError {
                        path: f.clone(),
                        msg: e.to_string(),
                        exhausted: crate::limits::exhausted(&e),
                    });
                }
            }
        }
        Ok(kh)
    }

    /// Whether `key` is the key recorded for `host` on `port`.
    pub fn check(&self, host: &str, port: u16, key: &HostKey) -> Verdict {
        let name = lookup_name(host, port);
        let matching: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.marker != Marker::CertAuthority && hosts_match(&e.hosts, &name))
            .collect();
        if let Some(e) = matching
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key == *key)
        {
            return Verdict::Revoked { at: e.at.clone() };
        }
        let plain: Vec<&&Entry> = matching
            .iter()
            .filter(|e| e.marker == Marker::None)
            .collect();
        if plain.iter().any(|e| e.key == *key) {
            return Verdict::Known;
        }
        if let Some(e) = plain.iter().find(|e| e.key.algo == key.algo) {
            return Verdict::Changed {
                at: e.at.clone(),
                pinned: e.key.clone(),
            };
        }
        match plain.first() {
            None => Verdict::Unknown,
            Some(first) => {
                let mut known: Vec<String> = Vec::new();
                for e in &plain {
                    if !known.contains(&e.key.algo) {
                        known.push(e.key.algo.clone());
                    }
                }
                Verdict::OtherType {
                    known,
                    at: first.at.clone(),
                }
            }
        }
    }

    /// The key types recorded for `host` on `port`, in file order (so the connection can
    /// prefer them, as OpenSSH does, instead of negotiating a type we would then refuse).
    pub fn known_types(&self, host: &str, port: u16) -> Vec<String> {
        let name = lookup_name(host, port);
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            if e.marker == Marker::None
                && hosts_match(&e.hosts, &name)
                && !out.contains(&e.key.algo)
            {
                out.push(e.key.algo.clone());
            }
        }
        out
    }
}

/// Records `key` for `host:port` in `file` unless the file (re-read under an exclusive lock,
/// together with `others`, the other files already consulted) now says something about the
/// host. Returns the verdict that holds after the call: [`Verdict::Known`] when the key was
/// recorded (by us or by a concurrent run), or the refusal found. Safe with many connections
/// and processes at once: `flock` + append, the parent directory created `0700`, the file
/// `0600`.
pub fn learn(
    file: &Path,
    others: &KnownHosts,
    host: &str,
    port: u16,
    key: &HostKey,
) -> Result<Verdict, KnownHostsError> {
    let err = |what: &str, e: std::io::Error| KnownHostsError {
        path: file.to_path_buf(),
        msg: format!("{what}: {e}"),
        exhausted: crate::limits::exhausted(&e),
    };
    if let Some(dir) = file.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err("cannot create its directory", e))?;
    }
    let mut f: File = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| err("cannot open for appending", e))?;
    f.lock().map_err(|e| err("cannot lock", e))?;
    let mut text = String::new();
    let mut bytes = Vec::new();
    f.seek(SeekFrom::Start(0))
        .and_then(|_| f.read_to_end(&mut bytes))
        .map_err(|e| err("cannot read", e))?;
    text.push_str(&String::from_utf8_lossy(&bytes));
    let mut now = others.clone();
    now.add(&text, file);
    let verdict = now.check(host, port, key);
    if verdict != Verdict::Unknown {
        return Ok(verdict);
    }
    let mut line = String::new();
    if !text.is_empty() && !text.ends_with('\n') {
        line.push('\n');
    }
    line.push_str(&lookup_name(host, port));
    line.push(' ');
    line.push_str(&key.to_line_fields());
    line.push('\n');
    f.write_all(line.as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| err("cannot append", e))?;
    // The lock is released when `f` is closed.
    Ok(Verdict::Known)
}

fn parse_line(line: &str, at: Origin) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@cert-authority" => Marker::CertAuthority,
        "@revoked" => Marker::Revoked,
        m if m.starts_with('@') => return None,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    let algo = fields.next()?;
    let blob = STANDARD.decode(fields.next()?).ok()?;
    let hosts = if let Some(rest) = first.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|')?;
        Hosts::Hashed {
            salt: STANDARD.decode(salt).ok()?,
            hash: STANDARD.decode(hash).ok()?,
        }
    } else {
        Hosts::Patterns(first.split(',').map(str::to_ascii_lowercase).collect())
    };
    Some(Entry {
        marker,
        hosts,
        key: HostKey {
            algo: algo.to_string(),
            blob,
        },
        at,
    })
}

fn hosts_match(hosts: &Hosts, name: &str) -> bool {
    match hosts {
        Hosts::Hashed { salt, hash } => hmac_sha1(salt, name.as_bytes()).as_slice() == hash,
        Hosts::Patterns(patterns) => {
            let mut positive = false;
            for p in patterns {
                if let Some(neg) = p.strip_prefix('!') {
                    if wildcard_match(neg, name) {
                        return false;
                    }
                } else if wildcard_match(p, name) {
                    positive = true;
                }
            }
            positive
        }
    }
}

/// OpenSSH's `match_pattern`: `*` matches any run (also empty), `?` one character; nothing else
/// is special (so `[host]:2222` is literal). Both sides are already lowercase.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// HMAC-SHA1 (RFC 2104) for hashed host names; 20 lines instead of another crate.
fn hmac_sha1(key: &[u8], msg: &[u8]) -> [u8; 20] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha1::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let inner = inner.finalize();
    let mut outer = Sha1::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections reading the same unchanged files share one parse; a file that changed (a
    /// key learned meanwhile) is read again.
    #[test]
    fn shared_known_hosts_are_read_again_once_a_file_changed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("known_hosts");
        let k = key(ED, 1);
        std::fs::write(&f, line("web1", &k)).unwrap();
        let files = vec![f.clone()];
        let a = KnownHosts::load_shared(&files).unwrap();
        let b = KnownHosts::load_shared(&files).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &b), "one parse for both");
        assert_eq!(a.entries.len(), 1);
        std::fs::write(&f, line("web1", &k) + &line("web2", &k)).unwrap();
        let c = KnownHosts::load_shared(&files).unwrap();
        assert_eq!(c.entries.len(), 2, "the changed file is read again");
    }

    fn key(algo: &str, seed: u8) -> HostKey {
        HostKey {
            algo: algo.into(),
            blob: vec![seed; 32],
        }
    }

    fn line(hosts: &str, k: &HostKey) -> String {
        format!("{hosts} {}\n", k.to_line_fields())
    }

    fn kh(text: &str) -> KnownHosts {
        KnownHosts::parse(text, Path::new("/kh"))
    }

    fn hashed(name: &str, salt: &[u8]) -> String {
        format!(
            "|1|{}|{}",
            STANDARD.encode(salt),
            STANDARD.encode(hmac_sha1(salt, name.as_bytes()))
        )
    }

    const ED: &str = "ssh-ed25519";
    const RSA: &str = "ssh-rsa";

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        let out = hmac_sha1(&[0x0b; 20], b"Hi There");
        assert_eq!(hex::encode(out), "b617318655057264e28bc0b6fb378c8ef146be00");
        let out = hmac_sha1(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex::encode(out), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        // A key longer than the block is hashed first.
        let out = hmac_sha1(
            &[0xaa; 80],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(hex::encode(out), "aa4ae5e15272d00e95705637ce8a3b55ed402112");
    }

    #[test]
    fn exact_name_is_known_and_other_hosts_are_unknown() {
        let k = key(ED, 1);
        let db = kh(&line("web1,10.0.0.1", &k));
        assert_eq!(db.check("web1", 22, &k), Verdict::Known);
        assert_eq!(db.check("WEB1", 22, &k), Verdict::Known);
        assert_eq!(db.check("10.0.0.1", 22, &k), Verdict::Known);
        assert_eq!(db.check("web2", 22, &k), Verdict::Unknown);
    }

    #[test]
    fn hashed_names_match_only_their_host() {
        let k = key(ED, 1);
        let db = kh(&line(&hashed("web1", b"0123456789abcdefghij"), &k));
        assert_eq!(db.check("web1", 22, &k), Verdict::Known);
        assert_eq!(db.check("web2", 22, &k), Verdict::Unknown);
        let db = kh(&line(&hashed("[web1]:2222", b"salt-salt-salt-salt!"), &k));
        assert_eq!(db.check("web1", 2222, &k), Verdict::Known);
        assert_eq!(db.check("web1", 22, &k), Verdict::Unknown);
    }

    #[test]
    fn wildcards_and_negation() {
        let k = key(ED, 1);
        let db = kh(&line("*.example.com,!bad.example.com,db?", &k));
        assert_eq!(db.check("a.example.com", 22, &k), Verdict::Known);
        assert_eq!(db.check("x.y.example.com", 22, &k), Verdict::Known);
        assert_eq!(db.check("bad.example.com", 22, &k), Verdict::Unknown);
        assert_eq!(db.check("db1", 22, &k), Verdict::Known);
        assert_eq!(db.check("db12", 22, &k), Verdict::Unknown);
        assert_eq!(db.check("example.com", 22, &k), Verdict::Unknown);
        // A negation alone matches nothing.
        let db = kh(&line("!bad", &k));
        assert_eq!(db.check("good", 22, &k), Verdict::Unknown);
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
        assert!(!wildcard_match("a*b*c", "axxbyy"));
    }

    #[test]
    fn a_key_recorded_for_another_port_does_not_count() {
        let k = key(ED, 1);
        let db = kh(&line("[web1]:2222", &k));
        assert_eq!(db.check("web1", 2222, &k), Verdict::Known);
        assert_eq!(db.check("web1", 22, &k), Verdict::Unknown);
        assert_eq!(db.check("web1", 2200, &k), Verdict::Unknown);
        let db = kh(&line("web1", &k));
        assert_eq!(db.check("web1", 2222, &k), Verdict::Unknown);
        // Wildcards apply to the bracketed form too.
        let db = kh(&line("[web*]:2222", &k));
        assert_eq!(db.check("web7", 2222, &k), Verdict::Known);
    }

    #[test]
    fn changed_key_of_the_same_type_is_refused() {
        let old = key(ED, 1);
        let new = key(ED, 2);
        let db = kh(&format!("# comment\n\n{}", line("web1", &old)));
        let v = db.check("web1", 22, &new);
        assert_eq!(
            v,
            Verdict::Changed {
                at: Origin {
                    file: "/kh".into(),
                    line: 3
                },
                pinned: old.clone(),
            }
        );
        let msg = v.refusal("web1", &new).unwrap();
        assert!(msg.contains("CHANGED") && msg.contains("/kh:3"), "{msg}");
        assert!(msg.contains(&new.fingerprint()), "{msg}");
    }

    #[test]
    fn a_changed_key_refusal_shows_the_pinned_fingerprint_and_where_it_is_pinned() {
        let old = key(ED, 1);
        let new = key(ED, 2);
        let db = kh(&format!("{}{}", line("web2", &new), line("web1", &old)));
        let v = db.check("web1", 22, &new);
        let msg = v.refusal("web1", &new).unwrap();
        assert!(
            msg.contains(&format!(
                "it offered {ED} key {}, but /kh:2 pins {ED} key {};",
                new.fingerprint(),
                old.fingerprint()
            )),
            "{msg}"
        );
    }

    #[test]
    fn a_key_recorded_only_for_another_port_is_unknown_so_accept_new_learns_it_for_the_new_port() {
        // OpenSSH looks a host up under `[host]:port` only: a key recorded for port 2222 says
        // nothing about port 22. Strict refuses an unknown host; accept-new records it.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let k = key(ED, 1);
        let recorded = line("[web1]:2222", &k);
        std::fs::write(&file, &recorded).unwrap();
        let db = KnownHosts::load(std::slice::from_ref(&file)).unwrap();
        assert_eq!(db.check("web1", 22, &k), Verdict::Unknown);
        assert!(!HostKeyPolicy::Strict.learns(&Verdict::Unknown));
        assert!(HostKeyPolicy::AcceptNew.learns(&Verdict::Unknown));
        let none = KnownHosts::default();
        assert_eq!(learn(&file, &none, "web1", 22, &k).unwrap(), Verdict::Known);
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text, format!("{recorded}{}", line("web1", &k)));
        let db = KnownHosts::load(std::slice::from_ref(&file)).unwrap();
        assert_eq!(db.check("web1", 22, &k), Verdict::Known);
        assert_eq!(db.check("web1", 2222, &k), Verdict::Known);
        // A different key on the new port is still unknown there, and a changed one on the
        // recorded port is still refused under either policy.
        let other = key(ED, 2);
        assert!(matches!(
            db.check("web1", 2222, &other),
            Verdict::Changed { .. }
        ));
        assert!(!HostKeyPolicy::AcceptNew.learns(&db.check("web1", 2222, &other)));
    }

    #[test]
    fn a_host_known_under_another_key_type_is_refused() {
        let rsa = key(RSA, 1);
        let ed = key(ED, 1);
        let db = kh(&line("web1", &rsa));
        match db.check("web1", 22, &ed) {
            Verdict::OtherType { known, .. } => assert_eq!(known, vec![RSA.to_string()]),
            other => panic!("{other:?}"),
        }
        assert_eq!(db.known_types("web1", 22), vec![RSA.to_string()]);
        assert!(db.known_types("web2", 22).is_empty());
    }

    #[test]
    fn one_matching_line_is_enough_among_several() {
        let a = key(ED, 1);
        let b = key(ED, 2);
        let db = kh(&format!("{}{}", line("web1", &a), line("web*", &b)));
        assert_eq!(db.check("web1", 22, &a), Verdict::Known);
        assert_eq!(db.check("web1", 22, &b), Verdict::Known);
        assert!(matches!(db.check("web2", 22, &a), Verdict::Changed { .. }));
    }

    #[test]
    fn revoked_keys_are_refused_even_when_also_listed() {
        let k = key(ED, 1);
        let text = format!("{}@revoked * {}\n", line("web1", &k), k.to_line_fields());
        let db = kh(&text);
        assert!(matches!(
            db.check("web1", 22, &k),
            Verdict::Revoked { at } if at.line == 2
        ));
        // Another key for the same host is unaffected.
        let other = key(ED, 9);
        assert!(matches!(
            db.check("web1", 22, &other),
            Verdict::Changed { .. }
        ));
    }

    #[test]
    fn cert_authority_lines_do_not_vouch_for_plain_keys() {
        let k = key(ED, 1);
        let db = kh(&format!(
            "@cert-authority *.example.com {}\n",
            k.to_line_fields()
        ));
        assert_eq!(db.check("a.example.com", 22, &k), Verdict::Unknown);
        assert!(db.known_types("a.example.com", 22).is_empty());
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let k = key(ED, 1);
        let text = format!(
            "garbage\nweb1 ssh-ed25519 !!notbase64!!\n@unknown-marker web1 {}\n|1|bad|\n{}",
            k.to_line_fields(),
            line("web2", &k)
        );
        let db = kh(&text);
        assert_eq!(db.check("web1", 22, &k), Verdict::Unknown);
        assert_eq!(db.check("web2", 22, &k), Verdict::Known);
    }

    #[test]
    fn load_treats_a_missing_file_as_empty_and_an_unreadable_one_as_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(KnownHosts::load(std::slice::from_ref(&missing)).is_ok());
        // A directory cannot be read as a file.
        assert!(KnownHosts::load(&[dir.path().to_path_buf()]).is_err());
    }

    #[test]
    fn learn_appends_once_and_refuses_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/known_hosts");
        let k = key(ED, 1);
        let none = KnownHosts::default();
        assert_eq!(
            learn(&file, &none, "web1", 2222, &k).unwrap(),
            Verdict::Known
        );
        assert_eq!(
            learn(&file, &none, "web1", 2222, &k).unwrap(),
            Verdict::Known
        );
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text, format!("[web1]:2222 {}\n", k.to_line_fields()));
        let changed = key(ED, 2);
        assert!(matches!(
            learn(&file, &none, "web1", 2222, &changed).unwrap(),
            Verdict::Changed { .. }
        ));
        let db = KnownHosts::load(std::slice::from_ref(&file)).unwrap();
        assert_eq!(db.check("web1", 2222, &k), Verdict::Known);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(file.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
    }

    #[test]
    fn learn_respects_what_other_files_say() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let k = key(ED, 1);
        let global = kh(&line("web1", &key(RSA, 3)));
        assert!(matches!(
            learn(&file, &global, "web1", 22, &k).unwrap(),
            Verdict::OtherType { .. }
        ));
        assert!(!file.exists() || std::fs::read_to_string(&file).unwrap().is_empty());
    }

    #[test]
    fn learn_adds_a_newline_to_a_file_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let a = key(ED, 1);
        std::fs::write(&file, line("web1", &a).trim_end()).unwrap();
        let b = key(ED, 2);
        learn(&file, &KnownHosts::default(), "web2", 22, &b).unwrap();
        let db = KnownHosts::load(&[file]).unwrap();
        assert_eq!(db.check("web1", 22, &a), Verdict::Known);
        assert_eq!(db.check("web2", 22, &b), Verdict::Known);
    }

    #[test]
    fn learn_under_many_concurrent_writers_records_each_host_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let threads: Vec<_> = (0..50u8)
            .map(|i| {
                let file = file.clone();
                std::thread::spawn(move || {
                    let k = key(ED, i % 10);
                    let host = format!("h{}", i % 10);
                    learn(&file, &KnownHosts::default(), &host, 22, &k).unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), Verdict::Known);
        }
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().count(), 10, "{text}");
    }

    #[test]
    fn policy_values() {
        assert_eq!(HostKeyPolicy::parse("yes"), Some(HostKeyPolicy::Strict));
        assert_eq!(HostKeyPolicy::parse("ask"), Some(HostKeyPolicy::Strict));
        assert_eq!(
            HostKeyPolicy::parse("accept-new"),
            Some(HostKeyPolicy::AcceptNew)
        );
        assert_eq!(HostKeyPolicy::parse("no"), Some(HostKeyPolicy::AcceptNew));
        assert_eq!(HostKeyPolicy::parse("maybe"), None);
        assert_eq!(HostKeyPolicy::default(), HostKeyPolicy::Strict);
    }
}
