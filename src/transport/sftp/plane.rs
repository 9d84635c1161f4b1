//! [`FilePlane`] over an SFTP session: each operation one request (or a few), OpenSSH's
//! extensions where the draft protocol has none (`posix-rename`, `fsync`, `lsetstat`).

use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};

use super::Sftp;
use crate::transport::files::Names;
use crate::transport::plane::{Done, Fail, Failure, FilePlane, fail};

/// `SSH_FILEXFER_ATTR_UIDGID`.
const ATTR_UIDGID: u32 = 0x2;

impl FilePlane for Sftp {
    fn uid(&self) -> Option<u32> {
        self.uid
    }

    fn names(&self) -> &Names {
        &self.names
    }

    fn can_lchown(&self) -> bool {
        self.lsetstat
    }

    fn dirs(&self) -> &std::sync::Mutex<std::collections::HashSet<String>> {
        &self.dirs
    }

    fn cleaned(&self) -> &std::sync::Mutex<std::collections::HashSet<String>> {
        &self.cleaned
    }

    async fn lstat(&self, path: &str) -> Done<Option<FileAttributes>> {
        Sftp::lstat(self, path).await
    }

    async fn stat(&self, path: &str) -> Done<FileAttributes> {
        Ok(self.raw.stat(path).await?.attrs)
    }

    async fn readlink(&self, path: &str) -> Done<String> {
        Ok(self
            .raw
            .readlink(path)
            .await?
            .files
            .into_iter()
            .next()
            .map(|f| f.filename)
            .unwrap_or_default())
    }

    async fn read(&self, path: &str, max: u64) -> Done<Vec<u8>> {
        Sftp::read(self, path, max).await
    }

    async fn mkdir(&self, path: &str, mode: u32) -> Done<()> {
        let asked = FileAttributes {
            permissions: Some(mode),
            ..FileAttributes::empty()
        };
        self.raw.mkdir(path, asked).await?;
        Ok(())
    }

    async fn chmod(&self, path: &str, mode: u32) -> Done<()> {
        let attrs = FileAttributes {
            permissions: Some(mode),
            ..FileAttributes::empty()
        };
        self.raw.setstat(path, attrs).await?;
        Ok(())
    }

    async fn chown(&self, path: &str, uid: u32, gid: u32) -> Done<()> {
        let attrs = FileAttributes {
            uid: Some(uid),
            gid: Some(gid),
            ..FileAttributes::empty()
        };
        self.raw.setstat(path, attrs).await?;
        Ok(())
    }

    /// `lsetstat@openssh.com` with the owner and group only.
    async fn lchown(&self, path: &str, uid: u32, gid: u32) -> Done<()> {
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

    async fn symlink(&self, target: &str, link: &str) -> Done<()> {
        // OpenSSH's server takes SYMLINK's paths the other way round from the draft: the
        // link's target first, then where the link goes.
        self.raw.symlink(target, link).await?;
        Ok(())
    }

    fn can_hardlink(&self) -> bool {
        self.hardlink
    }

    async fn hardlink(&self, src: &str, link: &str) -> Done<()> {
        self.extended_on_two("hardlink@openssh.com", src, link)
            .await
    }

    async fn rename(&self, from: &str, to: &str) -> Done<()> {
        self.posix_rename(from, to).await
    }

    async fn remove(&self, path: &str) -> Done<()> {
        self.raw.remove(path).await?;
        Ok(())
    }

    async fn rmdir(&self, path: &str) -> Done<()> {
        self.raw.rmdir(path).await?;
        Ok(())
    }

    /// The entries of folder `dir` (without `.` and `..`), with their `lstat` attributes.
    async fn list(&self, dir: &str) -> Done<Vec<(String, FileAttributes)>> {
        let handle = self.raw.opendir(dir).await?.handle;
        let mut out = Vec::new();
        let r = loop {
            match self.raw.readdir(handle.as_str()).await {
                Ok(name) => {
                    for f in name.files {
                        if f.filename != "." && f.filename != ".." {
                            out.push((f.filename, f.attrs));
                        }
                    }
                    if out.len() > 1 << 20 {
                        break Err(Failure::Status(
                            StatusCode::Failure,
                            format!("{dir} has too many entries"),
                        ));
                    }
                }
                Err(e) => {
                    let f = Failure::from(e);
                    break match f {
                        Failure::Status(StatusCode::Eof, _) => Ok(()),
                        f => Err(f),
                    };
                }
            }
        };
        let _ = self.raw.close(handle).await;
        r.map(|()| out)
    }

    /// Creates `path` (it must not exist: created exclusively, 0600) holding `data`, flushed
    /// to disk; with `like`, given that file's owner (as far as permitted, as `cp -p`) and
    /// times.
    async fn create(
        &self,
        path: &str,
        data: &[u8],
        like: Option<(&str, &FileAttributes)>,
    ) -> Result<(), Fail> {
        let like = like.map(|(_, a)| a);
        let handle = self
            .open_private(path, OpenFlags::EXCLUDE, "creating")
            .await?;
        let r = self.fill_new(&handle, path, data, like).await;
        let closed = self.raw.close(handle).await;
        r?;
        closed.map_err(|e| fail(e, &format!("closing {path}")))?;
        Ok(())
    }

    /// Appends `data` to `path` (made 0600 when missing) in one write, flushed to disk.
    async fn append(&self, path: &str, data: &[u8]) -> Result<(), Fail> {
        let handle = self
            .open_private(path, OpenFlags::APPEND, "opening")
            .await?;
        let (written, synced) = {
            let w = self.raw.write(handle.as_str(), 0, data.to_vec()).await;
            let s = self.raw.fsync(handle.as_str()).await;
            (w, s)
        };
        let closed = self.raw.close(handle).await;
        written.map_err(|e| fail(e, &format!("appending to {path}")))?;
        synced.map_err(|e| fail(e, &format!("flushing {path}")))?;
        closed.map_err(|e| fail(e, &format!("closing {path}")))?;
        Ok(())
    }
}

impl Sftp {
    async fn fill_new(
        &self,
        handle: &str,
        path: &str,
        data: &[u8],
        like: Option<&FileAttributes>,
    ) -> Result<(), Fail> {
        let writes =
            futures::future::join_all(data.chunks(super::CHUNK).enumerate().map(|(i, c)| {
                self.raw
                    .write(handle, (i * super::CHUNK) as u64, c.to_vec())
            }))
            .await;
        for w in writes {
            w.map_err(|e| fail(e, &format!("writing {path}")))?;
        }
        if let Some(a) = like {
            // cp -p: the owner where permitted (an error only to root), then the times.
            if a.uid.is_some() && a.gid.is_some() {
                let _ = self
                    .raw
                    .fsetstat(
                        handle,
                        FileAttributes {
                            uid: a.uid,
                            gid: a.gid,
                            ..FileAttributes::empty()
                        },
                    )
                    .await;
            }
            if a.atime.is_some() && a.mtime.is_some() {
                self.raw
                    .fsetstat(
                        handle,
                        FileAttributes {
                            atime: a.atime,
                            mtime: a.mtime,
                            ..FileAttributes::empty()
                        },
                    )
                    .await
                    .map_err(|e| fail(e, &format!("setting the times of {path}")))?;
            }
        }
        self.raw
            .fsync(handle)
            .await
            .map_err(|e| fail(e, &format!("flushing {path}")))?;
        Ok(())
    }

    /// Opens `path` for writing, made 0600 when missing, with `flags` besides.
    async fn open_private(
        &self,
        path: &str,
        flags: OpenFlags,
        doing: &str,
    ) -> Result<String, Fail> {
        let private = FileAttributes {
            permissions: Some(0o600),
            ..FileAttributes::empty()
        };
        Ok(self
            .raw
            .open(path, OpenFlags::WRITE | OpenFlags::CREATE | flags, private)
            .await
            .map_err(|e| fail(e, &format!("{doing} {path}")))?
            .handle)
    }
}
