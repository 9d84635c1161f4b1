//! The backup before a step's change, on a file plane: [`backup`] does for plain paths what
//! the backup program (`src/host/sh/backup.sh`) does, with the plane's operations and no
//! program on the host: refuses a path below another user's symlink, prepares the state
//! folders (and prunes old runs) on the host's first backup, removes rdeploy's stale
//! temporary files next to each path, keeps each path's data in its entry folder and appends
//! the manifest lines, printing them as the program does. The program stays the reference:
//! what this file cannot do the same way, it declines before changing anything.

use russh_sftp::protocol::FileAttributes;
use sha2::Digest;

use super::ops::{TREE_MAX, mkdir_p, remove_listed, tree};
use super::{Fail, FilePlane, fail, failed};
use crate::transport::Output;
use crate::transport::files::{
    BackupPlan, HASH_READ_MAX, ancestors, is_stale_temp_name, parent_of, parents,
};

/// What [`backup`] did.
#[derive(Debug)]
pub(crate) struct Backup {
    /// The backup program's output and exit status: 0 and the manifest lines; 6 and why a
    /// path was refused (nothing changed); 3 and what failed.
    pub out: Output,
    /// Old runs' folders too large to remove here: the transport removes them with `rm -rf`.
    pub prune_left: Vec<String>,
}

/// What a path was when it was looked at.
#[derive(Clone, Debug)]
enum Seen {
    Absent,
    /// Looking failed (a folder on the way that cannot be searched): to the program's `-e`
    /// and `-L` tests, nothing is there.
    Unseen,
    There(FileAttributes),
}

impl Seen {
    fn exists(&self) -> bool {
        matches!(self, Seen::There(_))
    }
}

async fn look(p: &impl FilePlane, path: &str) -> Seen {
    match p.lstat(path).await {
        Ok(Some(a)) => Seen::There(a),
        Ok(None) => Seen::Absent,
        Err(_) => Seen::Unseen,
    }
}

/// Takes the backup `plan` describes as the plane's user. `Ok(None)` when only the program
/// can (a file too large to hash here, a refusal check that needs the uid the host's table does
/// not give): nothing was changed. `Err` when the plane broke.
pub(crate) async fn backup(
    pl: &impl FilePlane,
    plan: &BackupPlan,
) -> Result<Option<Backup>, String> {
    let uid = pl.uid();
    // Everything the decisions need, in one round trip: each path and every folder above.
    let mut paths: Vec<String> = Vec::new();
    for it in &plan.items {
        for p in std::iter::once(it.path.clone())
            .chain(ancestors(&it.path))
            .chain(parents(&it.path))
        {
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
    }
    let seen: Vec<Seen> = futures::future::join_all(paths.iter().map(|p| look(pl, p))).await;
    let at = |p: &str| -> Seen {
        paths
            .iter()
            .position(|q| q == p)
            .map_or(Seen::Unseen, |i| seen[i].clone())
    };
    // The program's refusal: a folder on the way that is a symlink owned by neither root
    // nor the user.
    for it in &plan.items {
        for q in ancestors(&it.path) {
            let Seen::There(a) = at(&q) else { continue };
            if !a.is_symlink() {
                continue;
            }
            let owner = a.uid.unwrap_or_default();
            if owner == 0 {
                continue;
            }
            let Some(me) = uid else { return Ok(None) };
            if owner == me {
                continue;
            }
            return Ok(Some(Backup {
                    out: Output {
                        status: crate::backup::REFUSED,
                        stderr: format!(
                            "refusing to write {}: parent {q} is a symlink owned by uid {owner} (neither root nor the user the task runs as)\n",
                            it.path
                        )
                        .into_bytes(),
                        ..Output::default()
                    },
                    prune_left: Vec::new(),
                }));
        }
    }
    // A file whose content is kept must be small enough to hash here.
    for it in plan.items.iter().filter(|i| !i.attrs_only) {
        if let Seen::There(a) = at(&it.path)
            && a.is_regular()
            && a.size.unwrap_or(u64::MAX) > HASH_READ_MAX
        {
            return Ok(None);
        }
    }
    let mut prune_left = Vec::new();
    match take(pl, plan, uid, &at, &mut prune_left).await {
        Ok(lines) => Ok(Some(Backup {
            out: Output {
                stdout: lines.into_bytes(),
                ..Output::default()
            },
            prune_left,
        })),
        Err(Fail { msg, broken: true }) => Err(msg),
        Err(Fail { msg, .. }) => Ok(Some(Backup {
            out: Output {
                status: 3,
                stderr: format!("{msg}\n").into_bytes(),
                ..Output::default()
            },
            prune_left,
        })),
    }
}

/// The backup's changes, once it is sure to be taken here; returns the manifest lines.
async fn take(
    pl: &impl FilePlane,
    plan: &BackupPlan,
    uid: Option<u32>,
    at: &impl Fn(&str) -> Seen,
    prune_left: &mut Vec<String>,
) -> Result<String, Fail> {
    let sd = plan.state_dir.trim_end_matches('/');
    let sd = if sd.is_empty() { "/" } else { sd };
    let run_dir = format!("{sd}/backups/{}", plan.run_id);
    if let Some(keep) = plan.prepare {
        prepare(pl, sd, &plan.run_id, keep, prune_left).await?;
    }
    if let Some(t0) = plan.started {
        for it in &plan.items {
            clean(pl, &parent_of(&it.path), t0).await?;
        }
    }
    let mut lines = String::new();
    for (i, it) in plan.items.iter().enumerate() {
        let d = format!("{run_dir}/{}/{i}", plan.step);
        if look(pl, &d).await.exists() {
            remove_tree(pl, &d, prune_left).await?;
        }
        let seen = at(&it.path);
        let (kind, sha) = match &seen {
            Seen::There(a) if a.is_symlink() => {
                let target = pl
                    .readlink(&it.path)
                    .await
                    .map_err(|e| fail(e, &format!("readlink {}", it.path)))?;
                mkdir_p(pl, &d, 0o700, false).await?;
                pl.create(
                    &format!("{d}/target"),
                    format!("{target}\n").as_bytes(),
                    None,
                )
                .await?;
                ("link", String::new())
            }
            Seen::There(a) if a.is_regular() && it.attrs_only => ("attrs", String::new()),
            Seen::There(a) if a.is_regular() => {
                let data = pl
                    .read(&it.path, HASH_READ_MAX + 1)
                    .await
                    .map_err(failed(format!("reading {}", it.path)))?;
                if data.len() as u64 > HASH_READ_MAX {
                    return Err(Fail::new(format!(
                        "{} grew while it was backed up",
                        it.path
                    )));
                }
                mkdir_p(pl, &d, 0o700, false).await?;
                pl.create(&format!("{d}/data"), &data, Some((&it.path, a)))
                    .await?;
                ("file", hex::encode(sha2::Sha256::digest(&data)))
            }
            Seen::There(a) if a.is_dir() => ("directory", String::new()),
            Seen::There(_) => ("other", String::new()),
            Seen::Absent | Seen::Unseen => ("absent", String::new()),
        };
        let line = match &seen {
            Seen::There(a) => format!(
                "{},\"kind\":\"{kind}\",\"mode\":\"{:o}\",\"uid\":{},\"gid\":{},\"sha256\":\"{sha}\",\"deep\":false,\"parents\":0}}\n",
                it.prefix,
                a.permissions.unwrap_or_default() & 0o7777,
                a.uid.unwrap_or_default(),
                a.gid.unwrap_or_default(),
            ),
            _ => {
                let missing = parents(&it.path)
                    .iter()
                    .take_while(|q| !at(q).exists())
                    .count();
                format!(
                    "{},\"kind\":\"absent\",\"mode\":\"\",\"uid\":null,\"gid\":null,\"sha256\":\"\",\"deep\":false,\"parents\":{missing}}}\n",
                    it.prefix
                )
            }
        };
        lines.push_str(&line);
    }
    let manifest = format!("{sd}/runs/{}.json", plan.run_id);
    pl.append(&manifest, lines.as_bytes()).await?;
    // A backup as root in a state folder the login user owns: the manifest and the run's
    // backup folder stay the folder owner's (the copies inside stay root's, 0600).
    if uid == Some(0)
        && let Seen::There(a) = look(pl, sd).await
        && (a.uid, a.gid) != (Some(0), Some(0))
    {
        let (uid, gid) = (a.uid.unwrap_or_default(), a.gid.unwrap_or_default());
        for p in [manifest.as_str(), run_dir.as_str()] {
            if look(pl, p).await.exists() {
                pl.chown(p, uid, gid)
                    .await
                    .map_err(|e| fail(e, &format!("chown {p}")))?;
            }
        }
    }
    Ok(lines)
}

/// The state folders, as `backup_prepare.sh` makes them: `runs` and this run's backup
/// folder (0700), then the oldest runs beyond `keep` removed, never one whose rollback is
/// pending.
async fn prepare(
    pl: &impl FilePlane,
    sd: &str,
    run: &str,
    keep: u32,
    prune_left: &mut Vec<String>,
) -> Result<(), Fail> {
    let runs = format!("{sd}/runs");
    let backups = format!("{sd}/backups");
    let this = format!("{backups}/{run}");
    mkdir_p(pl, &runs, 0o700, false).await?;
    mkdir_p(pl, &this, 0o700, false).await?;
    let set = futures::future::join_all([&runs, &backups, &this].map(|p| pl.chmod(p, 0o700))).await;
    for (r, p) in set.into_iter().zip([&runs, &backups, &this]) {
        r.map_err(|e| fail(e, &format!("chmod 700 {p}")))?;
    }
    let mut ids: Vec<String> = pl
        .list(&backups)
        .await
        .map_err(failed(format!("listing {backups}")))?
        .into_iter()
        .filter(|(n, _)| !n.starts_with('.'))
        .map(|(n, _)| n)
        .collect();
    ids.sort();
    let mut n = ids.len();
    let keep = keep.max(1) as usize;
    for id in ids {
        if n <= keep {
            break;
        }
        n -= 1;
        if id == run || look(pl, &format!("{runs}/{id}.pending")).await.exists() {
            continue;
        }
        remove_tree(pl, &format!("{backups}/{id}"), prune_left).await?;
        for m in [format!("{runs}/{id}.json"), format!("{runs}/{id}.restored")] {
            if let Err(f) = pl.remove(&m).await
                && !f.no_such_file()
            {
                return Err(fail(f, &format!("removing {m}")));
            }
        }
    }
    Ok(())
}

/// Removes rdeploy's temporary files in `dir` last modified before `t0` (left by a killed
/// transfer), once per folder and session: later ones belong to this run.
async fn clean(pl: &impl FilePlane, dir: &str, t0: u64) -> Result<(), Fail> {
    {
        let mut done = pl.cleaned().lock().unwrap_or_else(|e| e.into_inner());
        if !done.insert(dir.to_string()) {
            return Ok(());
        }
    }
    // A folder that cannot be listed has nothing the program's glob would find.
    let Ok(entries) = pl.list(dir).await else {
        return Ok(());
    };
    let stale: Vec<String> = entries
        .into_iter()
        .filter(|(n, a)| {
            is_stale_temp_name(n)
                && (a.is_regular() || a.is_symlink())
                && u64::from(a.mtime.unwrap_or(u32::MAX)) < t0
        })
        .map(|(n, _)| format!("{}/{n}", dir.trim_end_matches('/')))
        .collect();
    for r in futures::future::join_all(stale.iter().map(|p| pl.remove(p))).await {
        // The program's `rm -f`: a file already gone is no failure, nor is one it may not
        // remove (it said nothing either).
        let _ = r;
    }
    Ok(())
}

/// `rm -rf` of `path` (links not followed), when its tree has at most [`TREE_MAX`] entries;
/// a larger one is added to `left` for the transport.
async fn remove_tree(pl: &impl FilePlane, path: &str, left: &mut Vec<String>) -> Result<(), Fail> {
    match tree(pl, path, TREE_MAX).await? {
        Some((files, dirs)) => remove_listed(pl, &files, &dirs).await,
        None => {
            left.push(path.to_string());
            Ok(())
        }
    }
}
