//! [`FilePlane`] on the controller itself (the local connection): each operation one system
//! call through `std::fs`, no program. The calls are made on the task that asks (they are
//! local file operations, each short); a `become` stays with the programs (`sudo`).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::sync::Mutex;

use russh_sftp::protocol::FileAttributes;

use super::{Done, Fail, Failure, FilePlane, fail};
use crate::transport::files::{Names, local_names};

/// The controller's files as a plane (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct LocalPlane {
    dirs: Mutex<HashSet<String>>,
    cleaned: Mutex<HashSet<String>>,
}

impl Clone for LocalPlane {
    /// A fresh plane: what one transport learnt is not another's.
    fn clone(&self) -> LocalPlane {
        LocalPlane::default()
    }
}

/// `m` as the plane's attribute record.
fn attrs(m: &std::fs::Metadata) -> FileAttributes {
    FileAttributes {
        size: Some(m.size()),
        uid: Some(m.uid()),
        gid: Some(m.gid()),
        permissions: Some(m.mode()),
        atime: Some(m.atime().clamp(0, i64::from(u32::MAX)) as u32),
        mtime: Some(m.mtime().clamp(0, i64::from(u32::MAX)) as u32),
        ..FileAttributes::empty()
    }
}

impl FilePlane for LocalPlane {
    fn uid(&self) -> Option<u32> {
        Some(rustix::process::geteuid().as_raw())
    }

    fn names(&self) -> &Names {
        local_names()
    }

    fn can_lchown(&self) -> bool {
        true
    }

    fn dirs(&self) -> &Mutex<HashSet<String>> {
        &self.dirs
    }

    fn cleaned(&self) -> &Mutex<HashSet<String>> {
        &self.cleaned
    }

    async fn lstat(&self, path: &str) -> Done<Option<FileAttributes>> {
        match std::fs::symlink_metadata(path) {
            Ok(m) => Ok(Some(attrs(&m))),
            Err(e) => {
                let f = Failure::from(e);
                if f.no_such_file() { Ok(None) } else { Err(f) }
            }
        }
    }

    async fn stat(&self, path: &str) -> Done<FileAttributes> {
        Ok(attrs(&std::fs::metadata(path)?))
    }

    async fn readlink(&self, path: &str) -> Done<String> {
        Ok(std::fs::read_link(path)?.to_string_lossy().into_owned())
    }

    async fn read(&self, path: &str, max: u64) -> Done<Vec<u8>> {
        let mut data = Vec::new();
        std::fs::File::open(path)?
            .take(max.saturating_add(1))
            .read_to_end(&mut data)?;
        Ok(data)
    }

    async fn mkdir(&self, path: &str, mode: u32) -> Done<()> {
        Ok(std::fs::DirBuilder::new().mode(mode).create(path)?)
    }

    async fn chmod(&self, path: &str, mode: u32) -> Done<()> {
        Ok(std::fs::set_permissions(
            path,
            std::fs::Permissions::from_mode(mode),
        )?)
    }

    async fn chown(&self, path: &str, uid: u32, gid: u32) -> Done<()> {
        Ok(std::os::unix::fs::chown(path, Some(uid), Some(gid))?)
    }

    async fn lchown(&self, path: &str, uid: u32, gid: u32) -> Done<()> {
        Ok(std::os::unix::fs::lchown(path, Some(uid), Some(gid))?)
    }

    async fn symlink(&self, target: &str, link: &str) -> Done<()> {
        Ok(std::os::unix::fs::symlink(target, link)?)
    }

    fn can_hardlink(&self) -> bool {
        true
    }

    async fn hardlink(&self, src: &str, link: &str) -> Done<()> {
        Ok(std::fs::hard_link(src, link)?)
    }

    async fn rename(&self, from: &str, to: &str) -> Done<()> {
        Ok(std::fs::rename(from, to)?)
    }

    async fn remove(&self, path: &str) -> Done<()> {
        Ok(std::fs::remove_file(path)?)
    }

    async fn rmdir(&self, path: &str) -> Done<()> {
        Ok(std::fs::remove_dir(path)?)
    }

    async fn list(&self, dir: &str) -> Done<Vec<(String, FileAttributes)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            // An entry removed since the folder was read is not there.
            if let Ok(m) = std::fs::symlink_metadata(e.path()) {
                out.push((name, attrs(&m)));
            }
        }
        Ok(out)
    }

    async fn create(
        &self,
        path: &str,
        data: &[u8],
        like: Option<(&str, &FileAttributes)>,
    ) -> Result<(), Fail> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| fail(e, &format!("creating {path}")))?;
        f.write_all(data)
            .map_err(|e| fail(e, &format!("writing {path}")))?;
        if let Some((from, a)) = like {
            // cp -p: the owner where permitted (an error only to root), then the times (to the
            // nanosecond when the file is still there to ask).
            if let (Some(uid), Some(gid)) = (a.uid, a.gid) {
                let _ = std::os::unix::fs::fchown(&f, Some(uid), Some(gid));
            }
            let secs = |s: Option<u32>| {
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::from(s.unwrap_or(0)))
            };
            let (at, mt) = match std::fs::metadata(from) {
                Ok(m) => (
                    m.accessed().unwrap_or(secs(a.atime)),
                    m.modified().unwrap_or(secs(a.mtime)),
                ),
                Err(_) => (secs(a.atime), secs(a.mtime)),
            };
            f.set_times(std::fs::FileTimes::new().set_accessed(at).set_modified(mt))
                .map_err(|e| fail(e, &format!("setting the times of {path}")))?;
        }
        f.sync_all()
            .map_err(|e| fail(e, &format!("flushing {path}")))?;
        Ok(())
    }

    async fn append(&self, path: &str, data: &[u8]) -> Result<(), Fail> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| fail(e, &format!("opening {path}")))?;
        f.write_all(data)
            .map_err(|e| fail(e, &format!("appending to {path}")))?;
        f.sync_all()
            .map_err(|e| fail(e, &format!("flushing {path}")))?;
        Ok(())
    }
}
