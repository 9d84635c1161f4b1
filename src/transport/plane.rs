//! A file plane: a host's files changed with file operations instead of shell programs.
//!
//! [`FilePlane`] is the small set of operations a plane offers (lstat, read, mkdir, chmod,
//! chown, symlink, rename, remove, list, an exclusive create and an append, both flushed to
//! disk); two planes implement it: the SFTP session over a host's SSH connection
//! ([`super::sftp::Sftp`]) and `std::fs` on the controller for the local connection
//! ([`local::LocalPlane`]). What is built from them is written once, here, for both: the
//! [`FileOp`](super::files::FileOp)s a command carries ([`ops`]), and the backup before a step's
//! change ([`backup`]). Each leaves the host as the shell programs would or declines before
//! changing anything; the programs stay the reference and the fallback.
//!
//! This module must not run programs or decide when a plane is used: the transports do.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;

use russh_sftp::protocol::{FileAttributes, StatusCode};

use super::files::Names;

pub(crate) mod backup;
pub(crate) mod local;
pub(crate) mod ops;

/// Why a file operation failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The host said no (permission, no such file), with its words.
    Status(StatusCode, String),
    /// The plane broke (an SFTP session closed, timed out, spoke nonsense): it is not used
    /// again.
    Broken(String),
}

impl Failure {
    pub(crate) fn no_such_file(&self) -> bool {
        matches!(self, Failure::Status(StatusCode::NoSuchFile, _))
    }

    /// The failure as words about `what` (`writing /etc/x`).
    pub(crate) fn describe(&self, what: &str) -> String {
        match self {
            Failure::Status(code, msg) if msg.is_empty() => format!("{what}: {code}"),
            Failure::Status(_, msg) => format!("{what}: {msg}"),
            Failure::Broken(e) => format!("{what}: sftp session lost: {e}"),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        use std::io::ErrorKind;
        // A file on the way is "no such file", as OpenSSH's sftp-server says.
        let code = match e.kind() {
            ErrorKind::NotFound | ErrorKind::NotADirectory => StatusCode::NoSuchFile,
            ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
            _ => StatusCode::Failure,
        };
        // The words without Rust's "(os error N)".
        let msg = e.to_string();
        let msg = match msg.rfind(" (os error ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        Failure::Status(code, msg)
    }
}

/// A failed step of a change made with several operations: the program's failure and this
/// message, unless the plane broke.
pub(crate) struct Fail {
    pub(crate) msg: String,
    pub(crate) broken: bool,
}

impl Fail {
    pub(crate) fn new(msg: String) -> Fail {
        Fail { msg, broken: false }
    }
}

/// `e` while doing `what`.
pub(crate) fn fail(e: impl Into<Failure>, what: &str) -> Fail {
    let f = e.into();
    Fail {
        broken: matches!(f, Failure::Broken(_)),
        msg: f.describe(what),
    }
}

pub(crate) fn failed(what: String) -> impl FnOnce(Failure) -> Fail {
    move |f| fail(f, &what)
}

/// What a result of a plane's operation is.
pub(crate) type Done<T> = Result<T, Failure>;

/// The operations a file plane offers (see the module docs). Paths are absolute; symlinks are
/// followed only where it says so. Attributes are SFTP's record (`permissions` holds the
/// file type bits too).
pub(crate) trait FilePlane: Sync {
    /// The id of the user the plane acts as, when known.
    fn uid(&self) -> Option<u32>;
    /// The host's user and group names.
    fn names(&self) -> &Names;
    /// A symlink's own owner can be changed.
    fn can_lchown(&self) -> bool;
    /// Folders known to exist (made or seen by [`ops::mkdir_p`]).
    fn dirs(&self) -> &Mutex<HashSet<String>>;
    /// Folders whose stale temporary files were removed in this run (by a backup).
    fn cleaned(&self) -> &Mutex<HashSet<String>>;

    /// `lstat`: `None` when nothing is there.
    fn lstat(&self, path: &str) -> impl Future<Output = Done<Option<FileAttributes>>> + Send;
    /// `stat` (a symlink followed).
    fn stat(&self, path: &str) -> impl Future<Output = Done<FileAttributes>> + Send;
    /// A symlink's target.
    fn readlink(&self, path: &str) -> impl Future<Output = Done<String>> + Send;
    /// `path`'s bytes (following symlinks), at most `max + 1` of them (more than `max` says
    /// it is too large).
    fn read(&self, path: &str, max: u64) -> impl Future<Output = Done<Vec<u8>>> + Send;
    /// Makes folder `path`, asking for `mode` (the umask applies).
    fn mkdir(&self, path: &str, mode: u32) -> impl Future<Output = Done<()>> + Send;
    /// `chmod` (a symlink followed).
    fn chmod(&self, path: &str, mode: u32) -> impl Future<Output = Done<()>> + Send;
    /// `chown` (a symlink followed).
    fn chown(&self, path: &str, uid: u32, gid: u32) -> impl Future<Output = Done<()>> + Send;
    /// `chown -h`: a symlink itself ([`FilePlane::can_lchown`]).
    fn lchown(&self, path: &str, uid: u32, gid: u32) -> impl Future<Output = Done<()>> + Send;
    /// Makes the symlink `link` pointing at `target`.
    fn symlink(&self, target: &str, link: &str) -> impl Future<Output = Done<()>> + Send;
    /// Hard links can be made ([`FilePlane::hardlink`]).
    fn can_hardlink(&self) -> bool;
    /// Makes `link` a hard link to `src` (a symlink `src` itself, not followed).
    fn hardlink(&self, src: &str, link: &str) -> impl Future<Output = Done<()>> + Send;
    /// Renames `from` over `to` atomically.
    fn rename(&self, from: &str, to: &str) -> impl Future<Output = Done<()>> + Send;
    /// Removes a file or symlink.
    fn remove(&self, path: &str) -> impl Future<Output = Done<()>> + Send;
    /// Removes an empty folder.
    fn rmdir(&self, path: &str) -> impl Future<Output = Done<()>> + Send;
    /// The entries of folder `dir` (without `.` and `..`), with their `lstat` attributes.
    fn list(&self, dir: &str) -> impl Future<Output = Done<Vec<(String, FileAttributes)>>> + Send;
    /// Creates `path` (it must not exist: created exclusively, 0600) holding `data`, flushed
    /// to disk; with `like` (a file and its attributes), given that file's owner (as far as
    /// permitted, as `cp -p`) and times.
    fn create(
        &self,
        path: &str,
        data: &[u8],
        like: Option<(&str, &FileAttributes)>,
    ) -> impl Future<Output = Result<(), Fail>> + Send;
    /// Appends `data` to `path` (made 0600 when missing) in one write, flushed to disk.
    fn append(&self, path: &str, data: &[u8]) -> impl Future<Output = Result<(), Fail>> + Send;
}
