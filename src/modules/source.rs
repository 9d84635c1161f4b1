//! Controller-side source files (`copy`/`template`/`script`/`unarchive` `src:`): small ones read
//! once and shared by every host in flight, large ones streamed from disk ([`Content::Disk`]),
//! each hashed once, and decrypted from Ansible Vault as Ansible does.
//!
//! Owns the per-buffer caches (weak: a buffer is freed when the last host is done with it, and
//! a file changed since is read again) and the sums of large files. It must not touch hosts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::modules::files::common::{sha1_hex, sha256_hex};
use crate::modules::runtime::ModuleError;
use crate::transport::{LocalFile, Payload};

/// A controller-side path with a leading `~` or `~USER` expanded to that user's home on the
/// controller (Ansible's `path_dwim` does the same); other paths, and an unknown user's, as
/// written.
pub fn expand_home(p: &str) -> PathBuf {
    let Some(rest) = p.strip_prefix('~') else {
        return PathBuf::from(p);
    };
    let (user, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let home = if user.is_empty() {
        std::env::var_os("HOME").map(PathBuf::from)
    } else {
        std::fs::read_to_string("/etc/passwd").ok().and_then(|t| {
            t.lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.first() == Some(&user) && f.len() > 5)
                .map(|f| PathBuf::from(f[5]))
        })
    };
    match home {
        Some(h) if tail.is_empty() => h,
        Some(h) => h.join(tail),
        None => PathBuf::from(p),
    }
}

/// Files of this size or more are streamed from disk ([`Content::Disk`]) rather than read
/// into memory; smaller ones are read whole (they can be shown in a diff).
pub const STREAM_FROM: u64 = 1 << 20;

/// A controller-side source's bytes: in memory, or a large file left on disk and streamed to
/// each host as it is sent (never held whole).
#[derive(Clone, Debug)]
pub enum Content {
    /// In memory: a small file, a decrypted Ansible Vault file, literal content, a rendered
    /// template.
    Mem(Arc<[u8]>),
    /// A large file on disk, hashed once.
    Disk(Arc<Hashed>),
}

/// A large controller-side file with its sums, computed once in one pass.
#[derive(Debug)]
pub struct Hashed {
    /// The file, its length and sha256.
    pub file: LocalFile,
    /// Its sha1 (Ansible's `checksum`).
    pub sha1: String,
}

impl Content {
    /// What a transfer sends.
    pub fn payload(&self) -> Payload<'_> {
        match self {
            Content::Mem(b) => Payload::Bytes(b),
            Content::Disk(h) => Payload::File(&h.file),
        }
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.payload().len()
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its sha256 (lowercase hex).
    pub fn sha256(&self) -> String {
        match self {
            Content::Mem(b) => sha256_shared(b),
            Content::Disk(h) => h.file.sha256.clone(),
        }
    }

    /// Its sha1 (lowercase hex).
    pub fn sha1(&self) -> String {
        match self {
            Content::Mem(b) => sha1_hex(b),
            Content::Disk(h) => h.sha1.clone(),
        }
    }

    /// The bytes when they are in memory (for a diff).
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Content::Mem(b) => Some(b),
            Content::Disk(_) => None,
        }
    }
}

/// `path`'s content: read whole ([`read`]) below [`STREAM_FROM`] bytes or when it is an Ansible
/// Vault file (decrypted: then `true`), else left on disk to stream, hashed once per version of
/// the file ([`hashed`]).
pub async fn open(path: &Path) -> Result<(Content, bool), ModuleError> {
    let cannot =
        |e: std::io::Error| ModuleError::Args(format!("cannot read {}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if meta.len() < STREAM_FROM || starts_as_vault(path).map_err(cannot)? {
        return read(path).map(|(data, vaulted)| (Content::Mem(data), vaulted));
    }
    hashed(path, &meta)
        .await
        .map(|h| (Content::Disk(h), false))
        .map_err(|e| ModuleError::Args(format!("cannot read {}: {e}", path.display())))
}

fn starts_as_vault(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut head = Vec::with_capacity(16);
    std::fs::File::open(path)?.take(15).read_to_end(&mut head)?;
    Ok(head.starts_with(b"$ANSIBLE_VAULT;"))
}

/// A large file's sums, computed once per version (path, mtime, length) however many hosts
/// ask at once: the first hashes it (off the async threads), the others wait for its result.
async fn hashed(path: &Path, meta: &std::fs::Metadata) -> Result<Arc<Hashed>, String> {
    use std::sync::{Mutex, OnceLock};
    type Key = (PathBuf, Option<std::time::SystemTime>, u64);
    type Cell = Arc<tokio::sync::OnceCell<Result<Arc<Hashed>, String>>>;
    static SUMS: OnceLock<Mutex<HashMap<PathBuf, (Key, Cell)>>> = OnceLock::new();
    let key: Key = (path.to_path_buf(), meta.modified().ok(), meta.len());
    let cell = {
        let mut sums = SUMS
            .get_or_init(|| Mutex::new(HashMap::new()))
            .lock()
            .map_err(|_| "internal: a hashing thread panicked".to_string())?;
        match sums.get(path) {
            Some((k, cell)) if *k == key => Arc::clone(cell),
            _ => {
                let cell = Cell::default();
                sums.insert(path.to_path_buf(), (key.clone(), Arc::clone(&cell)));
                cell
            }
        }
    };
    cell.get_or_init(|| async move {
        let (path, _, len) = key;
        tokio::task::spawn_blocking(move || hash_file(path, len))
            .await
            .map_err(|e| format!("internal: {e}"))?
    })
    .await
    .clone()
}

/// Reads `path` once, in chunks, for its sha256 and sha1; an error if it no longer holds `len`
/// bytes (changed while we read it).
fn hash_file(path: PathBuf, len: u64) -> Result<Arc<Hashed>, String> {
    use sha2::Digest;
    let mut file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
    let mut sha256 = sha2::Sha256::new();
    let mut sha1 = sha1::Sha1::new();
    let read = crate::transport::read_chunks(&mut file, |chunk| {
        sha256.update(chunk);
        sha1.update(chunk);
    })
    .map_err(|e| e.to_string())?;
    if read != len {
        return Err(format!(
            "it changed while it was read ({len} bytes, then {read})"
        ));
    }
    Ok(Arc::new(Hashed {
        file: LocalFile {
            path,
            len,
            sha256: hex::encode(sha256.finalize()),
        },
        sha1: hex::encode(sha1.finalize()),
    }))
}

/// `path`'s bytes (shared, [`read_shared`]), decrypted when Ansible Vault encrypted them
/// ([`unvault`]; then `true`).
pub fn read(path: &Path) -> Result<(Arc<[u8]>, bool), ModuleError> {
    let data = read_shared(path)
        .map_err(|e| ModuleError::Args(format!("cannot read {}: {e}", path.display())))?;
    unvault(path, data)
}

/// A controller-side file's bytes, read once and shared by every host copying it at the
/// same time (500 hosts in flight would otherwise hold 500 copies). Entries are weak: the
/// bytes are freed when the last host is done, and a file changed since (size or mtime) is
/// read again.
pub fn read_shared(path: &Path) -> std::io::Result<Arc<[u8]>> {
    use std::sync::{Mutex, OnceLock, Weak};
    type Key = (PathBuf, Option<std::time::SystemTime>, u64);
    static CACHE: OnceLock<Mutex<HashMap<Key, Weak<[u8]>>>> = OnceLock::new();
    let meta = std::fs::metadata(path)?;
    let key: Key = (path.to_path_buf(), meta.modified().ok(), meta.len());
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(data) = cache
        .lock()
        .ok()
        .and_then(|c| c.get(&key).and_then(Weak::upgrade))
    {
        return Ok(data);
    }
    let data: Arc<[u8]> = Arc::from(std::fs::read(path)?);
    if let Ok(mut c) = cache.lock() {
        c.retain(|_, w| w.strong_count() > 0);
        c.insert(key, Arc::downgrade(&data));
    }
    Ok(data)
}

/// A value computed once per shared buffer ([`read_shared`]), kept as long as the buffer lives:
/// every host, and every look ahead at the task ([`crate::modules::runtime::Ahead`]), asks.
struct PerBuffer<T>(std::sync::OnceLock<std::sync::Mutex<PerBufferMap<T>>>);

type PerBufferMap<T> = HashMap<usize, (std::sync::Weak<[u8]>, T)>;

impl<T: Clone> PerBuffer<T> {
    const fn new() -> PerBuffer<T> {
        PerBuffer(std::sync::OnceLock::new())
    }

    fn get_or(&self, data: &Arc<[u8]>, compute: impl FnOnce() -> T) -> T {
        let key = Arc::as_ptr(data).cast::<u8>() as usize;
        let map = self.0.get_or_init(Default::default);
        if let Some(v) = map.lock().ok().and_then(|m| {
            m.get(&key)
                .filter(|(w, _)| w.upgrade().is_some_and(|d| Arc::ptr_eq(&d, data)))
                .map(|(_, v)| v.clone())
        }) {
            return v;
        }
        let v = compute();
        if let Ok(mut m) = map.lock() {
            m.retain(|_, (w, _)| w.strong_count() > 0);
            m.insert(key, (Arc::downgrade(data), v.clone()));
        }
        v
    }
}

/// The sha256 of `data`, computed once per shared buffer of 16 KiB or more (a file copied to
/// every host; smaller ones, content and rendered templates, are hashed again: not worth an
/// entry).
pub fn sha256_shared(data: &Arc<[u8]>) -> String {
    static SUMS: PerBuffer<String> = PerBuffer::new();
    if data.len() < 16 << 10 {
        return sha256_hex(data);
    }
    SUMS.get_or(data, || sha256_hex(data))
}

/// A controller-side source encrypted with Ansible Vault, decrypted with the run's vault
/// passwords as Ansible does (once per shared buffer: the key derivation is slow); `true` when
/// it was, and its text is then never shown in a diff. Without a password that opens it, an
/// error naming the file: never the ciphertext copied.
pub fn unvault(path: &Path, data: Arc<[u8]>) -> Result<(Arc<[u8]>, bool), ModuleError> {
    static PLAIN: PerBuffer<Result<Arc<[u8]>, String>> = PerBuffer::new();
    if !data.starts_with(b"$ANSIBLE_VAULT;") {
        return Ok((data, false));
    }
    let plain = PLAIN.get_or(&data, || {
        let text =
            std::str::from_utf8(&data).map_err(|_| "not an Ansible Vault text".to_string())?;
        crate::vault::secrets::with(|s| crate::vault::decrypt(text, s))
            .map(Arc::from)
            .map_err(|e| e.to_string())
    });
    plain
        .map(|p| (p, true))
        .map_err(|e| ModuleError::Args(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_files_stay_on_disk_with_their_sums_and_small_ones_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"hello\n").unwrap();
        let (c, vaulted) = open(&small).await.unwrap();
        assert!(!vaulted);
        assert_eq!(c.bytes(), Some(&b"hello\n"[..]));
        assert_eq!(c.sha256(), sha256_hex(b"hello\n"));

        let big = dir.path().join("big");
        let data = vec![3u8; STREAM_FROM as usize + 7];
        std::fs::write(&big, &data).unwrap();
        let (c, _) = open(&big).await.unwrap();
        assert!(c.bytes().is_none(), "streamed, not read into memory");
        assert_eq!(c.len(), data.len() as u64);
        assert_eq!(c.sha256(), sha256_hex(&data));
        assert_eq!(c.sha1(), sha1_hex(&data));
        match c.payload() {
            Payload::File(f) => assert_eq!(f.path, big),
            Payload::Bytes(_) => panic!("a large file must be streamed"),
        }
        // Hosts asking at once share one result.
        let (a, b) = tokio::join!(open(&big), open(&big));
        match (a.unwrap().0, b.unwrap().0) {
            (Content::Disk(a), Content::Disk(b)) => assert!(Arc::ptr_eq(&a, &b)),
            _ => panic!("expected streamed files"),
        }
        // The file changed: hashed again.
        let data = vec![4u8; STREAM_FROM as usize + 9];
        std::fs::write(&big, &data).unwrap();
        let (c, _) = open(&big).await.unwrap();
        assert_eq!(c.sha256(), sha256_hex(&data));
    }

    #[tokio::test]
    async fn a_large_vault_file_is_decrypted_never_streamed_as_ciphertext() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret.bin");
        let mut text = b"$ANSIBLE_VAULT;1.1;AES256\n".to_vec();
        text.resize(STREAM_FROM as usize + 1, b'0');
        std::fs::write(&p, &text).unwrap();
        // No password opens it (this one is not even valid): an error naming the file.
        let e = open(&p).await.unwrap_err();
        assert!(e.to_string().contains("secret.bin"), "{e}");
    }

    #[test]
    fn a_shared_buffer_is_hashed_once_and_a_new_one_again() {
        let big: Arc<[u8]> = Arc::from(vec![7u8; 2 << 20]);
        let want = sha256_hex(&big);
        assert_eq!(sha256_shared(&big), want);
        assert_eq!(sha256_shared(&Arc::clone(&big)), want);
        drop(big);
        // Whatever address the next buffer gets, its own content is hashed.
        let other: Arc<[u8]> = Arc::from(vec![8u8; 2 << 20]);
        assert_eq!(sha256_shared(&other), sha256_hex(&other));
        let small: Arc<[u8]> = Arc::from(&b"x"[..]);
        assert_eq!(sha256_shared(&small), sha256_hex(&small));
    }
}

#[cfg(test)]
mod home_tests {
    use super::*;

    #[test]
    fn a_leading_tilde_is_the_controller_users_home() {
        let home = PathBuf::from(std::env::var_os("HOME").expect("HOME"));
        assert_eq!(expand_home("~/files/a.conf"), home.join("files/a.conf"));
        assert_eq!(expand_home("~"), home);
        assert_eq!(expand_home("~root/x"), PathBuf::from("/root/x"));
        assert_eq!(
            expand_home("~no-such-user-here/x"),
            PathBuf::from("~no-such-user-here/x")
        );
        assert_eq!(expand_home("files/~x"), PathBuf::from("files/~x"));
    }
}
