//! The SFTP file plane: a host's files reached through OpenSSH's own `sftp-server`, one session
//! per (host, become user) for the whole run, instead of shell programs.
//!
//! Owns [`Sftp`]: starting a session over any byte stream (the `sftp` subsystem of the host's
//! one SSH connection, or `sudo -n sftp-server` on an exec channel for a become user), the
//! extensions it needs (`posix-rename@openssh.com` for an atomic replace, `fsync@openssh.com`
//! for durability; without them the session is not used), answering [`FileQuery`]s, reading a
//! file, and writing one atomically in two steps ([`Sftp::stage`], then [`Staged`]'s commit or
//! discard) so the transport can check a large file's sha256 on the host between them. It must
//! not run commands or decide when the shell plane is used: the transport does
//! ([`super::ssh`]).
//!
//! Every answer is the one the shell plane would give, or none ([`Sftp::answer`] returns
//! `None`): a name not in the host's `/etc/passwd`, a file too large to hash here, a link that
//! cannot be resolved here. Then the transport asks the shell plane instead.

use std::time::Duration;

use futures::stream::{FuturesOrdered, StreamExt};
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::cmd::{PathKind, PathState};
use super::files::{Answer, Asked, FileQuery, HASH_READ_MAX, Names, READ_MAX, kind_of_mode};
use super::plane::Failure;
use super::{FileAttrs, Payload, Put, TransportError};

mod plane;

/// Bytes per read or write request (OpenSSH's sftp-server takes up to 256 KiB).
const CHUNK: usize = 64 * 1024;

/// Requests in flight at once for one transfer.
const IN_FLIGHT: usize = 16;

/// Chunks in flight at once over every host's session together (32 MiB): the controller's
/// memory for transfers stays bounded however many hosts write at once (each chunk is held
/// several times on its way: read from its source, encoded as a request, queued on the
/// connection). One host holds at most [`IN_FLIGHT`] of them, so a few hosts that stop
/// answering mid-transfer cannot hold them all; their requests end with their connection.
const CHUNKS_IN_FLIGHT: usize = 512;

static BUDGET: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CHUNKS_IN_FLIGHT);

/// One chunk's share of [`CHUNKS_IN_FLIGHT`], held until its request is answered. A transfer
/// with requests of its own in flight only takes a share that is free (`None`: answer one of
/// its requests first, which frees one); it waits for one only when it holds none, so that
/// transfers never wait on each other's unanswered shares.
async fn chunk_permit(holding: bool) -> Option<tokio::sync::SemaphorePermit<'static>> {
    match BUDGET.try_acquire() {
        Ok(p) => Some(p),
        Err(_) if holding => None,
        Err(_) => BUDGET.acquire().await.ok(),
    }
}

/// `/etc/passwd` and `/etc/group` larger than this are not read (names are then the shell
/// plane's to find).
const NAMES_MAX: u64 = 8 << 20;

/// The extensions a session must have to be used.
const NEEDED: [&str; 2] = ["posix-rename@openssh.com", "fsync@openssh.com"];

/// One SFTP session (see the module docs).
pub(crate) struct Sftp {
    raw: RawSftpSession,
    names: Names,
    /// How the session was started, for `-v` (`sftp subsystem`, `sudo -u root sftp-server`).
    what: String,
    /// The session's user's id, when the host's user table names it.
    uid: Option<u32>,
    /// The server offers `lsetstat@openssh.com` (a symlink's own owner).
    lsetstat: bool,
    /// The server offers `hardlink@openssh.com`.
    hardlink: bool,
    /// Folders known to exist (made or seen by [`Sftp::mkdir_p`]).
    dirs: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Folders whose stale temporary files were removed in this run (by a backup).
    cleaned: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for Sftp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sftp").field("what", &self.what).finish()
    }
}

impl From<SftpError> for Failure {
    fn from(e: SftpError) -> Failure {
        match e {
            SftpError::Status(s) => Failure::Status(s.status_code, s.error_message),
            e => Failure::Broken(e.to_string()),
        }
    }
}

/// A file written to its temporary name and flushed, still open, not yet renamed over its
/// destination ([`Sftp::stage`]).
#[derive(Debug)]
pub(crate) struct Staged {
    /// Its open handle.
    handle: String,
    /// The temporary file (next to `dest`).
    pub tmp: String,
    /// Where it goes.
    pub dest: String,
    /// The sha256 it must have.
    pub sha256: String,
    /// Its length.
    pub len: u64,
    /// Whether its content was read back and checked already (small files); otherwise the
    /// caller checks it on the host before [`Sftp::commit`].
    pub verified: bool,
    /// What [`super::Transport::put`] reports.
    pub put: Put,
}

impl Sftp {
    /// Starts a session on `stream` (a channel already running `sftp-server`): version
    /// exchange, the extensions it needs, the id-to-name tables. `Err` says why the session
    /// cannot be used (the shell plane is used instead).
    pub(crate) async fn start<S>(stream: S, what: String, user: &str) -> Result<Sftp, String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let cfg = russh_sftp::client::Config {
            // Our own waits (the task's timeout, the connection's liveness) bound every
            // request; this catches a server that stopped answering one (a request of 64 KiB
            // or one fsync), or died while the connection lives.
            request_timeout_secs: 300,
            ..russh_sftp::client::Config::default()
        };
        let raw = RawSftpSession::new_with_config(stream, cfg);
        let version = tokio::time::timeout(Duration::from_secs(30), raw.init())
            .await
            .map_err(|_| format!("{what}: no answer to the version exchange"))?
            .map_err(|e| format!("{what}: {e}"))?;
        let missing: Vec<&str> = NEEDED
            .into_iter()
            .filter(|e| !version.extensions.contains_key(*e))
            .collect();
        if !missing.is_empty() {
            return Err(format!("{what} lacks {}", missing.join(", ")));
        }
        let mut s = Sftp {
            raw,
            names: Names::default(),
            what,
            uid: None,
            lsetstat: version.extensions.contains_key("lsetstat@openssh.com"),
            hardlink: version.extensions.contains_key("hardlink@openssh.com"),
            dirs: Default::default(),
            cleaned: Default::default(),
        };
        // The server's limits and the id-to-name tables in one round trip.
        let asks_limits = version.extensions.contains_key("limits@openssh.com");
        let (limits, passwd, group) = tokio::join!(
            async {
                if asks_limits {
                    s.raw.limits().await.ok()
                } else {
                    None
                }
            },
            s.read("/etc/passwd", NAMES_MAX),
            s.read("/etc/group", NAMES_MAX)
        );
        if let (Ok(p), Ok(g)) = (passwd, group) {
            s.names = Names::parse(&String::from_utf8_lossy(&p), &String::from_utf8_lossy(&g));
        }
        s.uid = s.names.uid(user);
        if let Some(l) = limits {
            s.raw.set_limits(l.into());
        }
        Ok(s)
    }

    /// How the session was started.
    pub(crate) fn what(&self) -> &str {
        &self.what
    }

    /// `lstat`: `None` when nothing is there.
    async fn lstat(&self, path: &str) -> Result<Option<FileAttributes>, Failure> {
        match self.raw.lstat(path).await {
            Ok(a) => Ok(Some(a.attrs)),
            Err(e) => {
                let f = Failure::from(e);
                if f.no_such_file() { Ok(None) } else { Err(f) }
            }
        }
    }

    /// Answers `q` as the shell plane's stat helper would, or `Ok(None)` when this plane cannot
    /// say the same (see the module docs). `Err` only when the session broke.
    pub(crate) async fn answer(&self, q: &FileQuery) -> Result<Option<Answer>, String> {
        match self.try_answer(q).await {
            Ok(a) => Ok(a),
            Err(Failure::Broken(e)) => Err(e),
            // As the helper: refused when the folder holding the path is there but cannot be
            // searched; a folder further up that cannot be searched hides it (absent).
            Err(Failure::Status(StatusCode::PermissionDenied, _)) if q.asked == Asked::Stat => {
                let parent = match q.path.trim_end_matches('/').rsplit_once('/') {
                    Some(("", _)) => "/",
                    Some((d, _)) => d,
                    None => return Ok(None),
                };
                match self.lstat(parent).await {
                    Ok(Some(_)) => Ok(Some(Answer::Refused(format!(
                        "cannot search directory {parent}"
                    )))),
                    Ok(None) | Err(Failure::Status(StatusCode::PermissionDenied, _)) => {
                        Ok(Some(Answer::Found(PathState::absent(), None)))
                    }
                    Err(Failure::Broken(e)) => Err(e),
                    Err(Failure::Status(..)) => Ok(None),
                }
            }
            Err(Failure::Status(..)) => Ok(None),
        }
    }

    async fn try_answer(&self, q: &FileQuery) -> Result<Option<Answer>, Failure> {
        match q.asked {
            Asked::Stat => {}
            Asked::Exists => {
                return Ok(Some(Answer::Status(
                    match self.raw.stat(q.path.as_str()).await {
                        Ok(_) => 0,
                        Err(e) => match Failure::from(e) {
                            Failure::Broken(b) => return Err(Failure::Broken(b)),
                            Failure::Status(..) => 1,
                        },
                    },
                )));
            }
            Asked::StatIfLink => {
                if !self.lstat(&q.path).await?.is_some_and(|a| a.is_symlink()) {
                    return Ok(Some(Answer::Status(1)));
                }
            }
            Asked::IsDir => {
                // `test -d`: anything that keeps the answer from being "a directory" is a no.
                return Ok(Some(Answer::Status(
                    match self.raw.stat(q.path.as_str()).await {
                        Ok(a) if a.attrs.is_dir() => 0,
                        Ok(_) => 1,
                        Err(e) => match Failure::from(e) {
                            Failure::Broken(b) => return Err(Failure::Broken(b)),
                            Failure::Status(..) => 1,
                        },
                    },
                )));
            }
            Asked::Read => {
                let attrs = match self.raw.stat(q.path.as_str()).await {
                    Ok(a) => a.attrs,
                    Err(e) => match Failure::from(e) {
                        Failure::Broken(b) => return Err(Failure::Broken(b)),
                        // `[ -f ]` is false: nothing printed.
                        Failure::Status(..) => return Ok(Some(Answer::Printed(Vec::new()))),
                    },
                };
                if !attrs.is_regular() {
                    return Ok(Some(Answer::Printed(Vec::new())));
                }
                if attrs.size.unwrap_or(u64::MAX) > READ_MAX {
                    return Ok(None);
                }
                return match self.read(&q.path, READ_MAX).await {
                    Ok(data) if data.len() as u64 <= READ_MAX => Ok(Some(Answer::Printed(data))),
                    Ok(_) => Ok(None),
                    Err(Failure::Broken(b)) => Err(Failure::Broken(b)),
                    // `cat` could not read it.
                    Err(Failure::Status(..)) => Ok(Some(Answer::Status(1))),
                };
            }
            Asked::Realpath => return self.realpath_answer(&q.path).await,
        }
        let Some(mut attrs) = self.lstat(&q.path).await? else {
            return Ok(Some(Answer::Found(PathState::absent(), None)));
        };
        let mut path = q.path.clone();
        if q.follow && attrs.is_symlink() {
            // `readlink -f`: the server's realpath resolves every link on the way.
            let Ok(name) = self.raw.realpath(q.path.as_str()).await else {
                return Ok(None);
            };
            let Some(real) = name.files.into_iter().next().map(|f| f.filename) else {
                return Ok(None);
            };
            match self.lstat(&real).await? {
                Some(a) => attrs = a,
                None => return Ok(Some(Answer::Found(PathState::absent(), None))),
            }
            path = real;
        }
        let mode = attrs.permissions.unwrap_or_default();
        let Some(mut kind) = kind_of_mode(mode) else {
            return Ok(None);
        };
        let (Some(uid), Some(gid)) = (attrs.uid, attrs.gid) else {
            return Ok(None);
        };
        let (Some(owner), Some(group)) = (self.names.user(uid), self.names.group(gid)) else {
            return Ok(None);
        };
        let size = attrs.size.unwrap_or_default();
        if let PathKind::Link { target } = &mut kind {
            let name = self.raw.readlink(path.as_str()).await?;
            match name.files.into_iter().next() {
                Some(f) => *target = f.filename,
                None => return Ok(None),
            }
        }
        let mut state = PathState {
            kind,
            mode: mode & 0o7777,
            uid,
            gid,
            owner: owner.to_string(),
            group: group.to_string(),
            size,
            sha256: None,
        };
        let mut content = None;
        if q.hash && state.kind == PathKind::File {
            if size > HASH_READ_MAX {
                return Ok(None);
            }
            // A file that cannot be read has no sha256, as with the shell helper.
            // Hashed as it comes; only the head a diff may show is kept.
            let keep = q.content.as_ref().map_or(0, |(_, max)| (*max).min(size));
            if let Ok((sum, head)) = self.read_hashed(&path, HASH_READ_MAX, keep).await {
                if let Some((unless, _)) = &q.content
                    && unless.as_deref() != Some(sum.as_str())
                {
                    content = Some(head);
                }
                state.sha256 = Some(sum);
            }
        }
        Ok(Some(Answer::Found(state, content)))
    }

    /// `readlink -f` as `realpath_cmd` answers it, or `None` for the shell to.
    async fn realpath_answer(&self, path: &str) -> Result<Option<Answer>, Failure> {
        let canonical =
            |name: russh_sftp::protocol::Name| name.files.into_iter().next().map(|f| f.filename);
        let link_or_dir = self
            .lstat(path)
            .await?
            .is_some_and(|a| a.is_symlink() || a.is_dir());
        if link_or_dir {
            return Ok(match self.raw.realpath(path).await {
                Ok(n) => canonical(n).map(|p| Answer::Printed(format!("{p}\n").into_bytes())),
                Err(_) => None,
            });
        }
        let Some((dir, name)) = path.rsplit_once('/') else {
            return Ok(None);
        };
        if matches!(name, "" | "." | "..") {
            return Ok(None);
        }
        let dir = if dir.is_empty() { "/" } else { dir };
        match self.raw.realpath(dir).await {
            Ok(n) => {
                let Some(d) = canonical(n) else {
                    return Ok(None);
                };
                // `cd -P` into it must work: a file on the way is readlink -f's to answer.
                if !self.lstat(&d).await?.is_some_and(|a| a.is_dir()) {
                    return Ok(None);
                }
                Ok(Some(Answer::Printed(
                    format!("{}/{name}\n", d.trim_end_matches('/')).into_bytes(),
                )))
            }
            Err(e) => match Failure::from(e) {
                Failure::Broken(b) => Err(Failure::Broken(b)),
                // A missing folder on the way (not even a dangling link): exit 1, no output.
                f if f.no_such_file() && self.lstat(dir).await?.is_none() => {
                    Ok(Some(Answer::Status(1)))
                }
                _ => Ok(None),
            },
        }
    }

    /// The sha256 of `path` (following symlinks; at most `max + 1` bytes read) and its first
    /// `keep` bytes, without holding the rest.
    async fn read_hashed(
        &self,
        path: &str,
        max: u64,
        keep: u64,
    ) -> Result<(String, Vec<u8>), Failure> {
        let handle = self
            .raw
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await?
            .handle;
        let mut h = sha2::Sha256::new();
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        let mut head = Vec::with_capacity(keep.min(HASH_READ_MAX as usize));
        let r = self
            .read_handle_into(&handle, max.saturating_add(1), |d| {
                h.update(d);
                let room = keep.saturating_sub(head.len()).min(d.len());
                head.extend_from_slice(&d[..room]);
            })
            .await;
        let _ = self.raw.close(handle).await;
        r.map(|_| (hex::encode(h.finalize()), head))
    }

    /// Reads `path` (following symlinks) to its end; `Err(None)`-like failures are statuses.
    /// More than `max` bytes: [`TransportError::TooLarge`] (as a status failure's words).
    pub(crate) async fn read(&self, path: &str, max: u64) -> Result<Vec<u8>, Failure> {
        let handle = self
            .raw
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await?
            .handle;
        let r = self.read_handle(&handle, max.saturating_add(1)).await;
        let _ = self.raw.close(handle).await;
        r
    }

    /// Reads an open file from offset 0 until its end or `limit` bytes, with reads in flight.
    async fn read_handle(&self, handle: &str, limit: u64) -> Result<Vec<u8>, Failure> {
        let mut data = Vec::new();
        self.read_handle_into(handle, limit, |d| data.extend_from_slice(d))
            .await?;
        Ok(data)
    }

    /// [`Sftp::read_handle`] giving each piece to `sink` in order instead of keeping them
    /// (a file read back only to be hashed is never held whole); returns how many bytes came.
    async fn read_handle_into(
        &self,
        handle: &str,
        limit: u64,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<u64, Failure> {
        let mut got: u64 = 0;
        let mut next: u64 = 0;
        let mut pending = FuturesOrdered::new();
        let mut eof = false;
        loop {
            while !eof && pending.len() < IN_FLIGHT && next < limit {
                let len = (limit - next).min(CHUNK as u64) as u32;
                let at = next;
                let Some(permit) = chunk_permit(!pending.is_empty()).await else {
                    break;
                };
                pending.push_back(async move {
                    let r = self.raw.read(handle, at, len).await;
                    drop(permit);
                    (at, r)
                });
                next += u64::from(len);
            }
            let Some((at, r)) = pending.next().await else {
                break;
            };
            match r {
                Ok(d) if at == got && !d.data.is_empty() => {
                    sink(&d.data);
                    got += d.data.len() as u64;
                    if (d.data.len() as u64) < u64::from(CHUNK as u32).min(limit - at) {
                        // A short read: the rest comes from where it stopped, in order.
                        eof = true;
                        while got < limit {
                            let len = (limit - got).min(CHUNK as u64) as u32;
                            match self.raw.read(handle, got, len).await {
                                Ok(d) if !d.data.is_empty() => {
                                    sink(&d.data);
                                    got += d.data.len() as u64;
                                }
                                Ok(_) => break,
                                Err(e) => {
                                    let f = Failure::from(e);
                                    if matches!(f, Failure::Status(StatusCode::Eof, _)) {
                                        break;
                                    }
                                    return Err(f);
                                }
                            }
                        }
                    }
                }
                Ok(_) => eof = true,
                Err(e) => {
                    let f = Failure::from(e);
                    if !matches!(f, Failure::Status(StatusCode::Eof, _)) {
                        return Err(f);
                    }
                    eof = true;
                }
            }
        }
        Ok(got)
    }

    /// Reads `path` for [`super::Transport::get`].
    pub(crate) async fn get(&self, path: &str, max: u64) -> Result<Vec<u8>, TransportError> {
        let data = self
            .read(path, max)
            .await
            .map_err(|f| TransportError::Io(f.describe(&format!("read {path}"))))?;
        if data.len() as u64 > max {
            return Err(TransportError::TooLarge {
                path: path.to_string(),
                max_bytes: max,
            });
        }
        Ok(data)
    }

    /// Writes `data` to a new temporary file next to `dest` (created exclusively, never through
    /// a planted link), gives it its owner, group and mode and flushes it to disk
    /// (`fsync@openssh.com`): [`Sftp::commit`] renames it over `dest`. `Ok(None)` when this
    /// plane cannot do what the shell plane would (an owner name not in the host's
    /// `/etc/passwd`): nothing was written. Requests are pipelined: three round trips for a
    /// file that fits in one window, and one more to rename it.
    pub(crate) async fn stage(
        &self,
        data: Payload<'_>,
        dest: &str,
        attrs: &FileAttrs,
    ) -> Result<Option<Staged>, TransportError> {
        let (dir, name) = dest.rsplit_once('/').unwrap_or(("", dest));
        let io = |f: Failure| TransportError::Io(f.describe(&format!("writing {dest} failed")));
        let owner = match attrs.owner.as_deref().map(|o| self.names.uid(o)) {
            Some(None) => return Ok(None),
            o => o.flatten(),
        };
        let group = match attrs.group.as_deref().map(|g| self.names.gid(g)) {
            Some(None) => return Ok(None),
            g => g.flatten(),
        };
        let tmp = format!("{dir}/.{name}.rdeploy-tmp.{}", super::cmd::temp_nonce());
        let private = FileAttributes {
            permissions: Some(0o600),
            ..FileAttributes::empty()
        };
        let (cur, opened) = tokio::join!(
            self.lstat(dest),
            self.raw.open(
                tmp.as_str(),
                OpenFlags::READ | OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE,
                private,
            )
        );
        let handle = opened.map_err(|e| io(e.into()))?.handle;
        let staged = match cur {
            Err(f) => Err(io(f)),
            Ok(Some(a)) if a.is_dir() => Err(TransportError::Io(format!(
                "writing {dest} failed: it is a directory"
            ))),
            Ok(cur) => {
                let existing_mode = cur
                    .as_ref()
                    .filter(|a| a.is_regular())
                    .and_then(|a| a.permissions)
                    .map(|m| m & 0o7777);
                let mode = attrs.mode.or(existing_mode).unwrap_or(0o644) & 0o7777;
                let want = Want {
                    uid: owner,
                    gid: group,
                    mode,
                    keep: attrs.keep,
                };
                self.fill(&handle, data, dest, &tmp, want).await
            }
        };
        match staged {
            Ok(s) => Ok(Some(s)),
            Err(e) => {
                let _ = tokio::join!(self.raw.close(handle), self.raw.remove(tmp.as_str()));
                Err(e)
            }
        }
    }

    /// [`Sftp::stage`]'s work on the open temporary file.
    async fn fill(
        &self,
        handle: &str,
        data: Payload<'_>,
        dest: &str,
        tmp: &str,
        want: Want,
    ) -> Result<Staged, TransportError> {
        let io = |f: Failure| TransportError::Io(f.describe(&format!("writing {dest} failed")));
        let sum = data.sha256();
        let len = data.len();
        let small = len <= HASH_READ_MAX;
        // Who the new file belongs to is asked alongside the writes.
        let (mine, sent) = tokio::join!(self.raw.fstat(handle), self.write_all(handle, data, dest));
        let sent = sent?;
        let mine = mine.map_err(|e| io(e.into()))?.attrs;
        if sent != (sum.clone(), len) {
            return Err(TransportError::Protocol(format!(
                "sha256 of {dest} differs after writing (got {})",
                sent.0
            )));
        }
        let put = self.own(handle, dest, &mine, &want).await?;
        let perms = FileAttributes {
            permissions: Some(want.mode),
            ..FileAttributes::empty()
        };
        let back = async {
            if small {
                let mut h = sha2::Sha256::new();
                Some(
                    self.read_handle_into(handle, len.saturating_add(1), |d| h.update(d))
                        .await
                        .map(|_| hex::encode(h.finalize())),
                )
            } else {
                None
            }
        };
        let (set, synced, now, back) = tokio::join!(
            self.raw.fsetstat(handle, perms),
            self.raw.fsync(handle),
            self.raw.fstat(handle),
            back
        );
        set.map_err(|e| io(e.into()))?;
        synced.map_err(|e| io(e.into()))?;
        let now = now.map_err(|e| io(e.into()))?.attrs;
        if now.size != Some(len) || now.permissions.map(|m| m & 0o7777) != Some(want.mode) {
            return Err(TransportError::Protocol(format!(
                "{dest}: the written file has {} bytes, mode {:o} (wanted {len}, {:o})",
                now.size.unwrap_or_default(),
                now.permissions.unwrap_or_default() & 0o7777,
                want.mode
            )));
        }
        // The content as the host has it now: read back and hashed here when small.
        let verified = match back {
            Some(back) => {
                let got = back.map_err(io)?;
                if got != sum {
                    return Err(TransportError::Protocol(format!(
                        "sha256 of {dest} differs after writing (got {got})"
                    )));
                }
                true
            }
            None => false,
        };
        Ok(Staged {
            handle: handle.to_string(),
            tmp: tmp.to_string(),
            dest: dest.to_string(),
            sha256: sum,
            len,
            verified,
            put,
        })
    }

    /// Writes what `data` holds from offset 0, with writes in flight; returns the sha256 and
    /// length of what was sent (a controller file changed since it was hashed shows there).
    async fn write_all(
        &self,
        handle: &str,
        data: Payload<'_>,
        dest: &str,
    ) -> Result<(String, u64), TransportError> {
        let io = |f: Failure| TransportError::Io(f.describe(&format!("writing {dest} failed")));
        let mut reader = data.reader().await?;
        let mut hasher = sha2::Sha256::new();
        let mut pending = FuturesOrdered::new();
        let mut at: u64 = 0;
        loop {
            let permit = match chunk_permit(!pending.is_empty()).await {
                Some(p) => Some(p),
                None => {
                    if let Some(r) = pending.next().await {
                        let r: Result<_, SftpError> = r;
                        r.map_err(|e| io(e.into()))?;
                    }
                    continue;
                }
            };
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                let n = reader
                    .read(&mut buf[filled..])
                    .await
                    .map_err(|e| TransportError::Io(format!("reading what goes to {dest}: {e}")))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            buf.truncate(filled);
            // The last piece of a file is mostly shorter: its buffer no larger than it.
            buf.shrink_to_fit();
            hasher.update(&buf);
            let off = at;
            at += filled as u64;
            pending.push_back(async move {
                let r = self.raw.write(handle, off, buf).await;
                drop(permit);
                r
            });
            while pending.len() >= IN_FLIGHT {
                if let Some(r) = pending.next().await {
                    r.map_err(|e| io(e.into()))?;
                }
            }
            if filled < CHUNK {
                break;
            }
        }
        while let Some(r) = pending.next().await {
            r.map_err(|e| io(e.into()))?;
        }
        Ok((hex::encode(hasher.finalize()), at))
    }

    /// Gives the open temporary file (now `mine`) its owner and group: asked for (a failure is
    /// an error), or kept from the replaced file as far as permitted (`keep`: never a failure;
    /// what the file got instead is reported).
    async fn own(
        &self,
        handle: &str,
        dest: &str,
        mine: &FileAttributes,
        want: &Want,
    ) -> Result<Put, TransportError> {
        let (mine_u, mine_g) = (mine.uid.unwrap_or_default(), mine.gid.unwrap_or_default());
        let (want_u, want_g) = (want.uid.unwrap_or(mine_u), want.gid.unwrap_or(mine_g));
        if (want_u, want_g) == (mine_u, mine_g) {
            return Ok(Put::default());
        }
        let set = |u: u32, g: u32| FileAttributes {
            uid: Some(u),
            gid: Some(g),
            ..FileAttributes::empty()
        };
        let r = self.raw.fsetstat(handle, set(want_u, want_g)).await;
        if !want.keep {
            return match r {
                Ok(_) => Ok(Put::default()),
                Err(e) => Err(TransportError::Io(format!(
                    "writing {dest} failed: chown {want_u}:{want_g}: {}",
                    match Failure::from(e) {
                        Failure::Status(StatusCode::PermissionDenied, _) =>
                            "Operation not permitted".to_string(),
                        f => f.describe("chown"),
                    }
                ))),
            };
        }
        if r.is_ok() {
            return Ok(Put::default());
        }
        let (gu, gg) =
            if want_g != mine_g && self.raw.fsetstat(handle, set(mine_u, want_g)).await.is_ok() {
                (mine_u, want_g)
            } else {
                (mine_u, mine_g)
            };
        let user = self.names.user(gu).map_or(gu.to_string(), str::to_string);
        let group = self.names.group(gg).map_or(gg.to_string(), str::to_string);
        Ok(Put {
            not_kept: Some(format!("{user}:{group}")),
        })
    }

    /// Closes a staged file and renames it over its destination (`posix-rename@openssh.com`:
    /// atomic, a symlink there is replaced, not followed), in one round trip. On failure the
    /// temporary file is removed.
    pub(crate) async fn commit(&self, staged: &Staged) -> Result<(), TransportError> {
        let (closed, renamed) = tokio::join!(
            self.raw.close(staged.handle.as_str()),
            self.posix_rename(&staged.tmp, &staged.dest)
        );
        let fail =
            |f: Failure| TransportError::Io(f.describe(&format!("writing {} failed", staged.dest)));
        match (closed, renamed) {
            (Ok(_), Ok(())) => Ok(()),
            (_, Err(f)) => {
                let _ = self.raw.remove(staged.tmp.as_str()).await;
                Err(fail(f))
            }
            // Renamed; the data was flushed before, and a close that failed changes nothing.
            (Err(e), Ok(())) => {
                tracing::debug!(error = %e, dest = %staged.dest, "sftp close after rename failed");
                Ok(())
            }
        }
    }

    /// Closes and removes a staged file (its check failed).
    pub(crate) async fn discard(&self, staged: &Staged) {
        let _ = tokio::join!(
            self.raw.close(staged.handle.as_str()),
            self.raw.remove(staged.tmp.as_str())
        );
    }

    async fn posix_rename(&self, from: &str, to: &str) -> Result<(), Failure> {
        self.extended_on_two("posix-rename@openssh.com", from, to)
            .await
    }

    /// The OpenSSH extension `name` on two paths (`posix-rename`, `hardlink`), answered with a
    /// status.
    async fn extended_on_two(&self, name: &str, a: &str, b: &str) -> Result<(), Failure> {
        let mut data = Vec::with_capacity(a.len() + b.len() + 8);
        for s in [a, b] {
            data.extend_from_slice(&(s.len() as u32).to_be_bytes());
            data.extend_from_slice(s.as_bytes());
        }
        match self.raw.extended(name, data).await? {
            russh_sftp::protocol::Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
            russh_sftp::protocol::Packet::Status(s) => {
                Err(Failure::Status(s.status_code, s.error_message))
            }
            _ => Err(Failure::Broken(format!("unexpected answer to {name}"))),
        }
    }
}

/// What a staged file is given.
struct Want {
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
    keep: bool,
}
