//! Changes to a host's files on the file plane: [`Sftp::apply`] makes the [`FileOp`]s a
//! command carries (`mkdir -p`, `chmod`, `chown -h`, an atomic symlink swap) with protocol
//! requests, leaving the host as the shell programs would, and [`Sftp::mkdir_p`] serves them
//! and the backups.

use russh_sftp::protocol::{FileAttributes, StatusCode};

use super::{Fail, Failure, Sftp, fail};
use crate::transport::Output;
use crate::transport::files::{FileOp, parent_of};

/// `SSH_FILEXFER_ATTR_UIDGID`.
const ATTR_UIDGID: u32 = 0x2;

impl Sftp {
    /// Makes `ops` in order, stopping at the first that fails, as the programs joined by `&&`
    /// would: `Ok(None)` when only the programs can make them the same way (a relative path,
    /// an owner or group the host's tables do not name, a symlink's owner without
    /// `lsetstat@openssh.com`): nothing was changed. The output is the programs': exit 0, or
    /// 1 and what failed. `Err` when the session broke.
    pub(crate) async fn apply(&self, ops: &[FileOp]) -> Result<Option<Output>, String> {
        if !ops.iter().all(|op| self.can_make(op)) {
            return Ok(None);
        }
        // A symlink's own owner needs the extension; which paths are links is asked first.
        if !self.lsetstat {
            for op in ops {
                if let FileOp::Chown { path, .. } = op
                    && let Ok(Some(a)) = self.lstat(path).await
                    && a.is_symlink()
                {
                    return Ok(None);
                }
            }
        }
        for op in ops {
            match self.make(op).await {
                Ok(()) => {}
                Err(Fail { msg, broken: true }) => return Err(msg),
                Err(Fail { msg, .. }) => {
                    return Ok(Some(Output {
                        status: 1,
                        stderr: format!("{msg}\n").into_bytes(),
                        ..Output::default()
                    }));
                }
            }
        }
        Ok(Some(Output::default()))
    }

    fn can_make(&self, op: &FileOp) -> bool {
        let absolute = |p: &str| p.starts_with('/');
        match op {
            FileOp::Mkdir(p) | FileOp::Chmod(p, _) => absolute(p),
            FileOp::Chown { path, owner, group } => {
                absolute(path)
                    && owner.as_deref().is_none_or(|o| self.names.uid(o).is_some())
                    && group.as_deref().is_none_or(|g| self.names.gid(g).is_some())
            }
            FileOp::Symlink { link, tmp, .. } => absolute(link) && absolute(tmp),
        }
    }

    async fn make(&self, op: &FileOp) -> Result<(), Fail> {
        match op {
            FileOp::Mkdir(p) => self.mkdir_p(p, 0o755, true).await,
            FileOp::Chmod(p, mode) => self
                .raw
                .setstat(
                    p.as_str(),
                    FileAttributes {
                        permissions: Some(mode & 0o7777),
                        ..FileAttributes::empty()
                    },
                )
                .await
                .map(|_| ())
                .map_err(|e| fail(e, &format!("chmod {mode:04o} {p}"))),
            FileOp::Chown { path, owner, group } => {
                let what = format!("chown {path}");
                let cur = self
                    .lstat(path)
                    .await
                    .map_err(|f| fail(f, &what))?
                    .ok_or_else(|| Fail::new(format!("{what}: No such file or directory")))?;
                let uid = owner
                    .as_deref()
                    .and_then(|o| self.names.uid(o))
                    .or(cur.uid)
                    .unwrap_or_default();
                let gid = group
                    .as_deref()
                    .and_then(|g| self.names.gid(g))
                    .or(cur.gid)
                    .unwrap_or_default();
                if cur.is_symlink() {
                    self.lsetstat_owner(path, uid, gid)
                        .await
                        .map_err(|f| fail(f, &what))
                } else {
                    self.raw
                        .setstat(
                            path.as_str(),
                            FileAttributes {
                                uid: Some(uid),
                                gid: Some(gid),
                                ..FileAttributes::empty()
                            },
                        )
                        .await
                        .map(|_| ())
                        .map_err(|e| fail(e, &what))
                }
            }
            FileOp::Symlink { target, link, tmp } => {
                let what = format!("ln -s {target} {link}");
                // OpenSSH's server takes SYMLINK's paths the other way round from the draft:
                // the link's target first, then where the link goes.
                self.raw
                    .symlink(target.as_str(), tmp.as_str())
                    .await
                    .map_err(|e| fail(e, &what))?;
                if let Err(f) = self.posix_rename(tmp, link).await {
                    let _ = self.raw.remove(tmp.as_str()).await;
                    return Err(fail(f, &what));
                }
                Ok(())
            }
        }
    }

    /// `lsetstat@openssh.com` with the owner and group only.
    async fn lsetstat_owner(&self, path: &str, uid: u32, gid: u32) -> Result<(), Failure> {
        let mut data = Vec::with_capacity(path.len() + 16);
        data.extend_from_slice(&(path.len() as u32).to_be_bytes());
        data.extend_from_slice(path.as_bytes());
        for n in [ATTR_UIDGID, uid, gid] {
            data.extend_from_slice(&n.to_be_bytes());
        }
        match self.raw.extended("lsetstat@openssh.com", data).await? {
            russh_sftp::protocol::Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
            russh_sftp::protocol::Packet::Status(s) => {
                Err(Failure::Status(s.status_code, s.error_message))
            }
            _ => Err(Failure::Broken("unexpected answer to lsetstat".into())),
        }
    }

    /// `mkdir -p`: every missing folder on the way asked for at once (the server answers in
    /// order; one that exists answers with a failure), then the last one looked at. With
    /// `exact`, the folders it made are given `mode` whatever the server's umask (as the
    /// program's `umask 022` makes them); else `mode` is asked for and the umask applies.
    /// Folders known to exist are not asked for again in the session; if that knowledge is
    /// stale (a folder removed since), the whole way is asked for once more.
    pub(crate) async fn mkdir_p(&self, path: &str, mode: u32, exact: bool) -> Result<(), Fail> {
        let trimmed = path.trim_end_matches('/');
        if trimmed.is_empty() {
            return Ok(());
        }
        match self.mkdir_chain(trimmed, mode, exact, true).await {
            Err(f) if !f.broken => self.mkdir_chain(trimmed, mode, exact, false).await,
            r => r,
        }
    }

    async fn mkdir_chain(
        &self,
        path: &str,
        mode: u32,
        exact: bool,
        trust: bool,
    ) -> Result<(), Fail> {
        let known = |p: &str| {
            trust
                && self
                    .dirs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(p)
        };
        let mut chain: Vec<String> = Vec::new();
        if !known(path) {
            chain.push(path.to_string());
            let mut q = path.to_string();
            loop {
                q = parent_of(&q);
                if q == "/" || q == "." || known(&q) {
                    break;
                }
                chain.push(q.clone());
            }
            chain.reverse();
        }
        let asked = FileAttributes {
            permissions: Some(mode),
            ..FileAttributes::empty()
        };
        let (made, last) = tokio::join!(
            futures::future::join_all(
                chain
                    .iter()
                    .map(|p| self.raw.mkdir(p.as_str(), asked.clone())),
            ),
            self.raw.stat(path)
        );
        let what = format!("mkdir -p {path}");
        match last {
            Ok(a) if a.attrs.is_dir() => {}
            Ok(_) => return Err(Fail::new(format!("{what}: File exists"))),
            Err(e) => {
                // The first folder that could not be made says why.
                let why = made
                    .into_iter()
                    .filter_map(Result::err)
                    .map(Failure::from)
                    .find(|f| !matches!(f, Failure::Status(StatusCode::Failure, _)));
                return Err(match why {
                    Some(f) => fail(f, &what),
                    None => fail(e, &what),
                });
            }
        }
        if exact {
            let created: Vec<&String> = chain
                .iter()
                .zip(&made)
                .filter(|(_, r)| r.is_ok())
                .map(|(p, _)| p)
                .collect();
            let exactly = FileAttributes {
                permissions: Some(mode),
                ..FileAttributes::empty()
            };
            for (r, p) in futures::future::join_all(
                created
                    .iter()
                    .map(|p| self.raw.setstat(p.as_str(), exactly.clone())),
            )
            .await
            .into_iter()
            .zip(&created)
            {
                r.map_err(|e| fail(e, &format!("chmod {mode:o} {p}")))?;
            }
        }
        self.dirs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(chain);
        Ok(())
    }
}
