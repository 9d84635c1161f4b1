//! Controller-side source files (`copy`/`template`/`script`/`unarchive` `src:`): read once and
//! shared by every host in flight, hashed once, and decrypted from Ansible Vault as Ansible does.
//!
//! Owns the per-buffer caches (weak: a buffer is freed when the last host is done with it, and
//! a file changed since is read again). It must not touch hosts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::modules::files::common::sha256_hex;
use crate::modules::runtime::ModuleError;

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

/// The sha256 of `data`, computed once per shared buffer of 1 MiB or more (smaller ones,
/// content and rendered templates, are hashed again: not worth an entry).
pub fn sha256_shared(data: &Arc<[u8]>) -> String {
    static SUMS: PerBuffer<String> = PerBuffer::new();
    if data.len() < 1 << 20 {
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
