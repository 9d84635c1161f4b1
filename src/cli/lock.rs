//! The run lock: at most one `rdeploy run` (or `rollback`, `resume`) of the same inventory and
//! playbook at a time on this controller.
//!
//! Owns the lock files, `<state>/locks/<playbook>-<hash>.lock`, one per (inventory, playbook)
//! pair (paths made absolute, so `cd /srv/deploy && rdeploy run site.yaml` and an absolute
//! path are the same lock). The lock is an OS file lock (`File::try_lock`, `flock` on Linux):
//! a holder that dies, even by SIGKILL, releases it at once, and a stale file never blocks. The
//! holder writes who it is into the file (pid, user, host, since when) for the refusal
//! message. Files are never removed: removing one while another process opens it would let two
//! runs hold "the" lock. It must not print: the caller reports [`Locked`].

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backup::journal;

/// How often a waiting run tries the lock again.
const POLL: Duration = Duration::from_millis(200);

/// Who holds a lock, as written into its file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    /// The holder's process id.
    pub pid: u32,
    /// The user it runs as.
    pub user: String,
    /// The controller's host name.
    pub host: String,
    /// Unix seconds when it took the lock.
    pub since: u64,
    /// What it runs (`run`, `rollback RUN_ID`).
    pub what: String,
    /// The holder's run id (`rdeploy show` and `history` know it).
    #[serde(default)]
    pub run_id: Option<String>,
}

impl Holder {
    /// This process, now.
    fn me(what: &str, run_id: Option<&str>) -> Holder {
        Holder {
            pid: std::process::id(),
            user: user_name(),
            host: host_name(),
            since: journal::now(),
            what: what.to_string(),
            run_id: run_id.map(str::to_string),
        }
    }
}

/// This controller's host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "?".into())
}

/// The user this process runs as: `USER`, `LOGNAME`, else the name of its uid in
/// `/etc/passwd` (cron and systemd units often set neither), else `uid N`.
pub fn user_name() -> String {
    if let Some(u) = ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    {
        return u;
    }
    account_name()
}

/// The name of this process's uid in `/etc/passwd` (what the OS says, unlike `$USER`, which
/// anyone can set), else `$USER`, else `uid N`.
pub fn account_name() -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return std::env::var("USER").unwrap_or_else(|_| "?".into());
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let (name, _, id) = (f.next()?, f.next()?, f.next()?);
            (id.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// The lock is held by another process.
#[derive(Debug)]
pub struct Locked {
    /// The lock file.
    pub path: PathBuf,
    /// Who holds it, when its file says so.
    pub holder: Option<Box<Holder>>,
}

impl std::fmt::Display for Locked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.holder {
            Some(h) => write!(
                f,
                "another run holds the lock {}: {}{} (pid {}, user {}, host {}, since {})",
                self.path.display(),
                h.what,
                match (&h.run_id, h.what.as_str()) {
                    (Some(id), "run") => format!(" {id}"),
                    _ => String::new(),
                },
                h.pid,
                h.user,
                h.host,
                journal::rfc3339(h.since)
            ),
            None => write!(
                f,
                "another run holds the lock {} (its holder wrote nothing yet)",
                self.path.display()
            ),
        }
    }
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it (after waiting, if asked to).
    Locked(Locked),
    /// The lock file could not be created or locked.
    Io(PathBuf, std::io::Error),
}

/// A held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The lock file of `inventory` + `playbook` under the state directory `state`.
pub fn lock_path(state: &Path, inventory: &[PathBuf], playbook: &Path) -> PathBuf {
    let abs = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let mut h = Sha256::new();
    h.update(abs(playbook).as_os_str().as_encoded_bytes());
    for i in inventory {
        h.update([0u8]);
        h.update(abs(i).as_os_str().as_encoded_bytes());
    }
    let stem: String = playbook
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let hash = hex::encode(&h.finalize()[..8]);
    state.join("locks").join(format!("{stem}-{hash}.lock"))
}

/// Takes the lock at `path`, trying again every [`POLL`] for up to `wait`.
pub fn acquire(
    path: &Path,
    wait: Duration,
    what: &str,
    run_id: Option<&str>,
) -> Result<RunLock, LockError> {
    let io = |e| LockError::Io(path.to_path_buf(), e);
    if let Some(dir) = path.parent() {
        crate::backup::journal::private_dir_all(dir).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    let until = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if Instant::now() < until => {
                std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Locked(Locked {
                    path: path.to_path_buf(),
                    holder: read_holder(&mut file).map(Box::new),
                }));
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    let me = serde_json::to_string(&Holder::me(what, run_id)).unwrap_or_default();
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(format!("{me}\n").as_bytes()))
        .and_then(|()| file.sync_data())
        .map_err(io)?;
    Ok(RunLock {
        file,
        path: path.to_path_buf(),
    })
}

/// The file naming the run awaiting approval that holds `lock` after it ended.
fn hold_path(lock: &Path) -> PathBuf {
    lock.with_extension("awaiting-approval")
}

/// Run `run_id` ended awaiting approval: it keeps holding `lock` (held by the caller) until
/// `rdeploy approve` or `rdeploy reject` of it. Best effort: a hold that cannot be written is
/// a lock released, as after any run.
pub fn hold(lock: &Path, run_id: &str) {
    let _ = std::fs::write(hold_path(lock), format!("{run_id}\n"));
}

/// The run awaiting approval that holds `lock`, if any.
pub fn held_for(lock: &Path) -> Option<String> {
    let id = std::fs::read_to_string(hold_path(lock)).ok()?;
    Some(id.trim().to_string()).filter(|i| !i.is_empty())
}

/// Ends run `run_id`'s hold of `lock` (the caller holds the lock), if it has one.
pub fn release_hold(lock: &Path, run_id: &str) {
    if held_for(lock).as_deref() == Some(run_id) {
        let _ = std::fs::remove_file(hold_path(lock));
    }
}

/// Refuses to go on under `lock` (just taken) while a run awaiting approval holds it, unless
/// that run is `owner` (the run being approved, resumed or rejected).
pub(crate) fn refuse_held(lock: &Path, owner: Option<&str>) -> Result<(), crate::cli::Failed> {
    match held_for(lock) {
        Some(id) if owner != Some(id.as_str()) => Err(crate::cli::Failed::Locked(format!(
            "run {id} awaits approval and holds the lock {}: `rdeploy approve {id}` goes on, \
             `rdeploy reject {id}` rolls it back",
            lock.display()
        ))),
        _ => Ok(()),
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// Whether the lock at `path` is held now (by anyone, this process included).
pub fn is_held(path: &Path) -> bool {
    let Ok(file) = OpenOptions::new().read(true).write(true).open(path) else {
        return false;
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_user_or_logname_the_holder_is_the_uids_name() {
        // USER/LOGNAME are read first; the passwd fallback is what cron gets.
        let name = user_name();
        assert!(!name.is_empty() && name != "?", "{name}");
    }

    #[test]
    fn the_same_pair_is_one_lock_and_a_second_taker_learns_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let pb = dir.path().join("site.yaml");
        std::fs::write(&pb, "").unwrap();
        let inv = vec![dir.path().join("inv")];
        let a = lock_path(dir.path(), &inv, &pb);
        assert_eq!(a, lock_path(dir.path(), &inv, &pb));
        assert_ne!(a, lock_path(dir.path(), &[], &pb));
        assert!(
            a.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("site-")
        );
        let held = acquire(&a, Duration::ZERO, "run", Some("r1")).unwrap();
        let started = Instant::now();
        match acquire(&a, Duration::from_millis(300), "run", None) {
            Err(LockError::Locked(l)) => {
                let msg = l.to_string();
                assert!(msg.contains(": run r1 (pid "), "{msg}");
                assert_eq!(l.holder.unwrap().pid, std::process::id());
                assert!(started.elapsed() >= Duration::from_millis(300));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(held);
        assert!(acquire(&a, Duration::ZERO, "run", Some("r1")).is_ok());
    }
}
