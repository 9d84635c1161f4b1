//! Changes to a host's files on a file plane: [`apply`] makes the [`FileOp`]s a command
//! carries (`mkdir -p`, `chmod`, `chown -h`, an atomic symlink swap) with the plane's
//! operations, leaving the host as the shell programs would, and [`mkdir_p`] serves them and
//! the backups.

use russh_sftp::protocol::StatusCode;

/// Entries a folder's tree may hold to be removed entry by entry; a larger one is left to
/// `rm -rf`.
pub(crate) const TREE_MAX: usize = 4096;

use super::{Fail, Failure, FilePlane, fail};
use crate::transport::Output;
use crate::transport::files::{FileOp, parent_of};

/// Makes `ops` in order, stopping at the first that fails, as the programs joined by `&&`
/// would: `Ok(None)` when only the programs can make them the same way (a relative path, an
/// owner or group the host's tables do not name, a symlink's owner the plane cannot change):
/// nothing was changed. The output is the programs': exit 0, or 1 and what failed. `Err` when
/// the plane broke.
pub(crate) async fn apply(p: &impl FilePlane, ops: &[FileOp]) -> Result<Option<Output>, String> {
    if !ops.iter().all(|op| can_make(p, op)) {
        return Ok(None);
    }
    // A symlink's own owner needs the plane to change it; which paths are links is asked
    // first.
    if !p.can_lchown() {
        for op in ops {
            if let FileOp::Chown { path, .. } = op
                && let Ok(Some(a)) = p.lstat(path).await
                && a.is_symlink()
            {
                return Ok(None);
            }
        }
    }
    // A folder to remove whose tree is too large to remove entry by entry is the program's;
    // asked before anything is changed.
    for op in ops {
        if let FileOp::Remove(path) = op {
            match tree(p, path, TREE_MAX).await {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(None),
                Err(f) if f.broken => return Err(f.msg),
                // The removal itself fails the same way, in order.
                Err(_) => {}
            }
        }
    }
    for op in ops {
        match make(p, op).await {
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

fn can_make(p: &impl FilePlane, op: &FileOp) -> bool {
    let absolute = |p: &str| p.starts_with('/');
    match op {
        FileOp::Mkdir(path) | FileOp::Chmod(path, _) => absolute(path),
        FileOp::Chown { path, owner, group } => {
            absolute(path)
                && owner.as_deref().is_none_or(|o| p.names().uid(o).is_some())
                && group.as_deref().is_none_or(|g| p.names().gid(g).is_some())
        }
        FileOp::Symlink { link, tmp, .. } => absolute(link) && absolute(tmp),
        FileOp::Hardlink { src, path, tmp } => {
            p.can_hardlink() && absolute(src) && absolute(path) && absolute(tmp)
        }
        // rm's own refusals (`/`, `.`, `..`) and a trailing slash (through a link) are its.
        FileOp::Remove(path) => {
            absolute(path)
                && !path.ends_with('/')
                && !matches!(path.rsplit('/').next(), Some("." | ".."))
        }
    }
}

async fn make(p: &impl FilePlane, op: &FileOp) -> Result<(), Fail> {
    match op {
        FileOp::Mkdir(path) => mkdir_p(p, path, 0o755, true).await,
        FileOp::Chmod(path, mode) => p
            .chmod(path, mode & 0o7777)
            .await
            .map_err(|e| fail(e, &format!("chmod {mode:04o} {path}"))),
        FileOp::Chown { path, owner, group } => {
            let what = format!("chown {path}");
            let cur = p
                .lstat(path)
                .await
                .map_err(|f| fail(f, &what))?
                .ok_or_else(|| Fail::new(format!("{what}: No such file or directory")))?;
            let uid = owner
                .as_deref()
                .and_then(|o| p.names().uid(o))
                .or(cur.uid)
                .unwrap_or_default();
            let gid = group
                .as_deref()
                .and_then(|g| p.names().gid(g))
                .or(cur.gid)
                .unwrap_or_default();
            if cur.is_symlink() {
                p.lchown(path, uid, gid).await
            } else {
                p.chown(path, uid, gid).await
            }
            .map_err(|f| fail(f, &what))
        }
        FileOp::Remove(path) => {
            let what = format!("rm -rf {path}");
            match tree(p, path, usize::MAX).await? {
                Some((files, dirs)) => remove_listed(p, &files, &dirs).await,
                None => Err(Fail::new(format!("{what}: too many entries"))),
            }
        }
        FileOp::Hardlink { src, path, tmp } => {
            // ln's own words are not the host's: what failed, and why.
            if let Err(f) = p.remove(tmp).await
                && !f.no_such_file()
            {
                return Err(fail(f, &format!("rm -f {tmp}")));
            }
            p.hardlink(src, tmp)
                .await
                .map_err(|e| fail(e, &format!("ln {src} {tmp}")))?;
            if let Err(f) = p.rename(tmp, path).await {
                let _ = p.remove(tmp).await;
                return Err(fail(f, &format!("mv -T {tmp} {path}")));
            }
            // A rename between two names of one file changes nothing and leaves both: `mv`
            // refuses that, and the temporary name goes.
            if let Ok(Some(_)) = p.lstat(tmp).await {
                let _ = p.remove(tmp).await;
                return Err(Fail::new(format!(
                    "mv: '{tmp}' and '{path}' are the same file"
                )));
            }
            Ok(())
        }
        FileOp::Symlink { target, link, tmp } => {
            let what = format!("ln -s {target} {link}");
            p.symlink(target, tmp).await.map_err(|e| fail(e, &what))?;
            if let Err(f) = p.rename(tmp, link).await {
                let _ = p.remove(tmp).await;
                return Err(fail(f, &what));
            }
            Ok(())
        }
    }
}

/// `mkdir -p`: every missing folder on the way asked for at once (an SFTP server answers in
/// order; one that exists answers with a failure), then the last one looked at. With `exact`,
/// the folders it made are given `mode` whatever the umask (as the program's `umask 022` makes
/// them); else `mode` is asked for and the umask applies. Folders known to exist are not asked
/// for again in the session; if that knowledge is stale (a folder removed since), the whole way
/// is asked for once more.
pub(crate) async fn mkdir_p(
    p: &impl FilePlane,
    path: &str,
    mode: u32,
    exact: bool,
) -> Result<(), Fail> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(());
    }
    match mkdir_chain(p, trimmed, mode, exact, true).await {
        Err(f) if !f.broken => mkdir_chain(p, trimmed, mode, exact, false).await,
        r => r,
    }
}

async fn mkdir_chain(
    p: &impl FilePlane,
    path: &str,
    mode: u32,
    exact: bool,
    trust: bool,
) -> Result<(), Fail> {
    let known = |q: &str| {
        trust
            && p.dirs()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(q)
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
    let (made, last) = tokio::join!(
        futures::future::join_all(chain.iter().map(|q| p.mkdir(q, mode))),
        p.stat(path)
    );
    let what = format!("mkdir -p {path}");
    match last {
        Ok(a) if a.is_dir() => {}
        Ok(_) => return Err(Fail::new(format!("{what}: File exists"))),
        Err(e) => {
            // The first folder that could not be made says why.
            let why = made
                .into_iter()
                .filter_map(Result::err)
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
            .map(|(q, _)| q)
            .collect();
        for (r, q) in futures::future::join_all(created.iter().map(|q| p.chmod(q, mode)))
            .await
            .into_iter()
            .zip(&created)
        {
            r.map_err(|e| fail(e, &format!("chmod {mode:o} {q}")))?;
        }
    }
    p.dirs()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(chain);
    Ok(())
}

/// The tree at `path` (links not followed): its files (and links and other non-folders), and
/// its folders, each listed after the folder it is in; `None` when it has more than `max`
/// entries; both empty when nothing is there.
pub(crate) async fn tree(
    p: &impl FilePlane,
    path: &str,
    max: usize,
) -> Result<Option<(Vec<String>, Vec<String>)>, Fail> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    match p.lstat(path).await {
        Ok(Some(a)) if a.is_dir() => dirs.push(path.to_string()),
        Ok(Some(_)) => files.push(path.to_string()),
        Ok(None) => return Ok(Some((files, dirs))),
        Err(f) => return Err(fail(f, &format!("cannot remove '{path}'"))),
    }
    let mut i = 0;
    while i < dirs.len() {
        let d = dirs[i].clone();
        i += 1;
        let entries = p
            .list(&d)
            .await
            .map_err(|f| fail(f, &format!("cannot remove '{d}'")))?;
        for (n, a) in entries {
            let q = format!("{d}/{n}");
            if a.is_dir() {
                dirs.push(q);
            } else {
                files.push(q);
            }
        }
        if files.len() + dirs.len() > max {
            return Ok(None);
        }
    }
    Ok(Some((files, dirs)))
}

/// Removes what [`tree`] listed: the files at once, then the folders deepest first.
pub(crate) async fn remove_listed(
    p: &impl FilePlane,
    files: &[String],
    dirs: &[String],
) -> Result<(), Fail> {
    for (r, q) in futures::future::join_all(files.iter().map(|q| p.remove(q)))
        .await
        .into_iter()
        .zip(files)
    {
        r.map_err(|e| fail(e, &format!("cannot remove '{q}'")))?;
    }
    for d in dirs.iter().rev() {
        p.rmdir(d)
            .await
            .map_err(|e| fail(e, &format!("cannot remove '{d}'")))?;
    }
    Ok(())
}
