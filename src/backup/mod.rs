//! Backups on the host before every change, and their restore.
//!
//! Owns the on-host layout under a host's state directory (`rdeploy_state_dir`, default
//! `/var/lib/rdeploy` for root and `~/.local/state/rdeploy` for other users, chosen by
//! `exec::backups`):
//!
//! ```text
//! <state>/backups/<run-id>/<step>/<index>/data     a file's bytes, or a whole tree (cp -a)
//! <state>/backups/<run-id>/<step>/<index>/target   a symlink's target
//! <state>/runs/<run-id>.json                       the manifest: one JSON object per line
//! <state>/runs/<run-id>.pending                    a rollback of this run did not finish
//! <state>/runs/<run-id>.restored                   a rollback of this run restored everything
//! ```
//!
//! A manifest line is appended only after its backup is complete, so every entry can be
//! restored; an interrupted backup leaves no entry. Restores read the manifest from the host,
//! so `rdeploy rollback` works from any controller. The shell lines are fixed scripts given
//! to [`Cmd`] with every value quoted; nothing here formats a shell line. It must not print
//! or decide when to back up (that is the executor's pipeline).

pub mod journal;

use serde::{Deserialize, Serialize};

use crate::modules::runtime::Resource;
use crate::transport::files::{BackupItem, BackupPlan};
use crate::transport::{
    AnyTransport, Become, BecomeMethod, Cmd, Output, Transport, TransportError,
};

/// The default `rdeploy_state_dir` of a host whose backups run as root.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/rdeploy";
/// The default `rdeploy_keep_runs`.
pub const DEFAULT_KEEP_RUNS: u32 = 5;

/// Where and how one host keeps its backups for this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    /// `rdeploy_state_dir` for the host.
    pub state_dir: String,
    /// The run's id.
    pub run_id: String,
    /// `rdeploy_keep_runs` for the host.
    pub keep_runs: u32,
    /// Who runs what, as a JSON object (user, controller, playbook, started, label): kept in
    /// each step's first manifest entry, so `rdeploy status --from-hosts` can say it from any
    /// controller.
    pub stamp: Option<String>,
    /// The step is a switch (its task is tagged `switch`): `rdeploy switch-back` restores it.
    pub switch: bool,
}

/// One backed-up resource, as a manifest line records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The host's step number in this run (1-based, one per changing task).
    pub step: u32,
    /// The resource's index within the step.
    pub index: u32,
    /// The task's label, for reports.
    pub task: String,
    /// The path on the host.
    pub path: String,
    /// The user a restore runs as (the task's `become_user`), if any.
    #[serde(default)]
    pub become_user: Option<String>,
    /// How the backup switched to `become_user` (`sudo` or `su`; never a password): the
    /// restore switches the same way. Manifests and journals written before it was recorded
    /// have none: `sudo`.
    #[serde(default)]
    pub become_method: Option<BecomeMethod>,
    /// `file`, `directory`, `link`, `absent` or `other`; `attrs` (a regular file of which
    /// only the attributes were kept); `service`, `package`, `sysctl` or `mount`.
    pub kind: String,
    /// Octal mode (`644`), empty when absent.
    #[serde(default)]
    pub mode: String,
    /// Owner's uid.
    #[serde(default)]
    pub uid: Option<u32>,
    /// Group's gid.
    #[serde(default)]
    pub gid: Option<u32>,
    /// sha256 of a file's bytes.
    #[serde(default)]
    pub sha256: String,
    /// A directory's contents were copied too (`cp -a`).
    #[serde(default)]
    pub deep: bool,
    /// The task's `PATH` from `environment:`, used again by the restore.
    #[serde(default)]
    pub path_env: Option<String>,
    /// A service's `ACTIVE ENABLED` (as systemctl says them), a package's installed
    /// version (empty: not installed), a sysctl parameter's live value (its words joined
    /// by single spaces; empty: no such parameter), or what was mounted at a path
    /// (`SOURCE FSTYPE OPTIONS`; empty: nothing; `absent`: no mount point).
    #[serde(default)]
    pub state: String,
    /// An `absent` path: how many folders above it were missing too (`a` and `a/b` for
    /// `a/b/c` when `a` was missing), which the step may have created. Restoring the entry
    /// removes those that are empty, deepest first. Absent from older manifests: 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parents: u32,
    /// The run's stamp ([`Store::stamp`]), on each step's first entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<serde_json::Value>,
    /// The step is a switch ([`Store::switch`]).
    #[serde(default, skip_serializing_if = "is_false")]
    pub switch: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Entry {
    /// The folder holding this entry's data on the host.
    pub fn dir(&self, store_dir: &str, run_id: &str) -> String {
        format!(
            "{}/backups/{run_id}/{}/{}",
            store_dir.trim_end_matches('/'),
            step_name(self.step),
            self.index
        )
    }
}

/// `0007`: step folders sort by name in step order.
fn step_name(step: u32) -> String {
    format!("{step:04}")
}

/// The manifest's path for `run_id` under `state_dir`.
pub fn manifest_path(state_dir: &str, run_id: &str) -> String {
    format!("{}/runs/{run_id}.json", state_dir.trim_end_matches('/'))
}

/// A backup could not be taken or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The host could not be reached.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The command ran and failed.
    #[error("{0}")]
    Failed(String),
}

/// What a backup records about a subject.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TargetKind {
    /// A path: its content, link target, attributes or absence.
    #[default]
    Path,
    /// A service: whether it is active and enabled at boot.
    Service,
    /// A package: its installed version, or its absence.
    Package,
    /// A path whose attributes only may change: a regular file's content is not copied.
    Attrs,
    /// A kernel parameter: its live value under `/proc/sys`.
    Sysctl,
    /// A mount point: what is mounted there, if anything, and whether it exists.
    Mount,
    /// A load balancer server: its forced state and weight in HAProxy.
    Haproxy,
}

/// Something the run may change: a path (and whether a directory there is copied whole), a
/// service or a package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The path, or the service's or package's name.
    pub path: String,
    /// Copy a directory's contents (`Resource::Tree`), not only its attributes.
    pub deep: bool,
    /// What kind of subject it is.
    pub kind: TargetKind,
}

/// What a module's resources say to record before its change, each subject once.
pub fn targets(resources: &[Resource]) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for r in resources {
        let (path, deep, kind) = match r {
            Resource::Path(p) => (p, false, TargetKind::Path),
            Resource::Tree(p) => (p, true, TargetKind::Path),
            Resource::Attrs(p) => (p, false, TargetKind::Attrs),
            Resource::Service(n) => (n, false, TargetKind::Service),
            Resource::Package(n) => (n, false, TargetKind::Package),
            Resource::Sysctl(n) => (n, false, TargetKind::Sysctl),
            Resource::Mount(p) => (p, false, TargetKind::Mount),
            Resource::Haproxy(s) => (s, false, TargetKind::Haproxy),
        };
        // A path named for its attributes and for more is backed up for more.
        let is_path = |k: TargetKind| matches!(k, TargetKind::Path | TargetKind::Attrs);
        match out
            .iter_mut()
            .find(|t| t.path == *path && (t.kind == kind || (is_path(t.kind) && is_path(kind))))
        {
            Some(t) => {
                t.deep |= deep;
                if kind == TargetKind::Path {
                    t.kind = TargetKind::Path;
                }
            }
            None => out.push(Target {
                path: path.clone(),
                deep,
                kind,
            }),
        }
    }
    out
}

/// Creates the state folders and prunes old runs: keeps the newest `keep_runs` runs (this one
/// included), never one whose rollback is pending. Run ids sort by start time.
/// The glob lists the runs oldest first (run ids sort by time); only `mkdir` (and `rm` for what
/// goes) runs as a process.
const PREPARE: &str = crate::host::BACKUP_PREPARE;

/// The exit status of a backup that refused a path (its stderr says why): nothing was
/// backed up or changed.
pub const REFUSED: i32 = 6;

/// Backs up each `INDEX PATH DEEP PREFIX` group after `STATE RUN STEP STARTED`: copies the
/// data (into the entry's folder, made only when there is data to keep), then appends the
/// manifest line (PREFIX is the controller's JSON for the fixed fields, without the closing
/// brace; one `printf`, one write) and prints it. Only `mkdir`, `cp`, `readlink`,
/// `sha256sum` and `stat` run as processes, and only for what exists.
///
/// Before anything, every path's folders are looked at: a symlink among them owned by neither
/// root nor the user the backup runs as (the step's user) is refused, naming it (exit 6; the
/// CVE-2024-9902 class: a user who replaced a folder by a link to somewhere else would have
/// the step write there). For an absent path, the folders above it that are missing too are
/// counted (`parents`). In each folder a path is in, rdeploy's temporary files
/// (`.NAME.rdeploy-tmp.*`, `.NAME.rdeploy-validate.*`, `.NAME.rdeploy-ln.*`) last modified
/// before STARTED (the run's start, unix seconds; empty: none is removed) are removed: left
/// by a killed transfer, they belong to no live write (the host lock keeps other runs out).
const BACKUP: &str = crate::host::BACKUP;

/// Restores one entry: `PATH KIND MODE UID GID DIR SHA256 DEEP`. Exit 4: the restored file's
/// checksum is wrong; 5: the kind cannot be restored. Only what differs from the backup is
/// written: a path the step never changed (it failed first, say on a read-only filesystem)
/// is restored by doing nothing.
const RESTORE: &str = crate::host::BACKUP_RESTORE;

/// After an `absent` entry is restored: `PATH N` removes the N folders above PATH that the
/// step may have created, deepest first, stopping at the first that is not empty (`rmdir`
/// removes nothing else). Always exits 0.
const PRUNE_PARENTS: &str = crate::host::BACKUP_PRUNE_PARENTS;

/// Marks (`pending`) or unmarks a run whose rollback did not finish.
const PENDING: &str = crate::host::BACKUP_PENDING;

/// Runs `cmd` with `become_` and fails on a non-zero exit with its stderr.
async fn run_ok(
    tr: &mut AnyTransport,
    cmd: Cmd,
    become_: Option<&Become>,
    what: &str,
) -> Result<Output, BackupError> {
    let cmd = match become_ {
        Some(b) => cmd.with_become(b.clone()),
        None => cmd,
    };
    let out = tr.exec(&cmd).await?;
    if out.status != 0 {
        return Err(BackupError::Failed(format!(
            "{what} failed (exit {}): {}",
            out.status,
            out.stderr_lossy().trim()
        )));
    }
    Ok(out)
}

/// The command creating `store`'s folders on the host and pruning runs beyond `keep_runs`.
pub fn prepare_cmd(store: &Store) -> Cmd {
    Cmd::raw("set --")
        .arg(&store.state_dir)
        .arg(&store.run_id)
        .arg(store.keep_runs.max(1).to_string())
        .op(";")
        .op(PREPARE)
}

/// Prints the user's uid and home directory (from the user database, else `$HOME`).
const WHOAMI: &str = crate::host::WHOAMI;

/// The uid and home directory of the user commands run as on the host (with `become_`).
pub async fn whoami(
    tr: &mut AnyTransport,
    become_: Option<&Become>,
) -> Result<(i64, String), BackupError> {
    let out = run_ok(tr, Cmd::raw(WHOAMI), become_, "asking the user's home").await?;
    let text = out.stdout_lossy();
    let mut lines = text.lines();
    match (
        lines.next().and_then(|u| u.trim().parse().ok()),
        lines.next(),
    ) {
        (Some(uid), Some(home)) if !home.is_empty() => Ok((uid, home.to_string())),
        _ => Err(BackupError::Failed(format!(
            "asking the user's home printed {:?}",
            text.trim()
        ))),
    }
}

/// Whether `mkdir -p DIR` would succeed (read-only: the first existing folder on the way must
/// be a writable, searchable directory, or DIR a writable one).
const PREPARABLE: &str = crate::host::BACKUP_PREPARABLE;

/// `--check`: whether the state directory could be prepared (as the real run would: as the
/// login user, else with `become_`). Changes nothing.
pub async fn preparable(
    tr: &mut AnyTransport,
    state_dir: &str,
    become_: Option<&Become>,
) -> Result<(), BackupError> {
    let cmd = Cmd::raw("set --").arg(state_dir).op(";").op(PREPARABLE);
    let what = "preparing the state directory";
    let first = run_ok(tr, cmd.clone(), None, what).await;
    let result = match (first, become_) {
        (Err(BackupError::Failed(_)), Some(b)) => run_ok(tr, cmd, Some(b), what).await.map(|_| ()),
        (r, _) => r.map(|_| ()),
    };
    result.map_err(|e| match e {
        BackupError::Failed(m) => {
            BackupError::Failed(format!("{m} ({})", prepare_hint_dir(state_dir)))
        }
        other => other,
    })
}

/// What to add to a failed preparation's message.
pub fn prepare_hint(store: &Store) -> String {
    prepare_hint_dir(&store.state_dir)
}

fn prepare_hint_dir(state_dir: &str) -> String {
    format!(
        "set rdeploy_state_dir to a folder the login or become user may write: it is {state_dir}"
    )
}

/// Creates `store`'s folders on the host and prunes runs beyond `keep_runs`.
pub async fn prepare(
    tr: &mut AnyTransport,
    store: &Store,
    become_: Option<&Become>,
) -> Result<(), BackupError> {
    run_ok(
        tr,
        prepare_cmd(store),
        become_,
        "preparing the state directory",
    )
    .await
    .map(|_| ())
    .map_err(|e| match e {
        BackupError::Failed(m) => BackupError::Failed(format!("{m} ({})", prepare_hint(store))),
        other => other,
    })
}

/// The command backing up `targets` as step `step` of task `task` (without `become`: add the
/// task's). It prints the manifest entries it wrote; see [`parse_backup`]. `path_env` is the
/// task's own `PATH` (`environment:`), kept so a restore finds the same tools.
pub fn backup_cmd(
    store: &Store,
    step: u32,
    task: &str,
    targets: &[Target],
    become_: Option<&Become>,
    path_env: Option<&str>,
) -> Cmd {
    let started = journal::run_started(&store.run_id)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let mut cmd = Cmd::raw("set --")
        .arg(&store.state_dir)
        .arg(&store.run_id)
        .arg(step_name(step))
        .arg(started);
    for (i, t) in targets.iter().enumerate() {
        let prefix = prefix_json(store, step, i as u32, task, &t.path, become_, path_env);
        cmd = cmd
            .arg(i.to_string())
            .arg(&t.path)
            .arg(match (t.kind, t.deep) {
                (TargetKind::Service, _) => "svc",
                (TargetKind::Package, _) => "pkg",
                (TargetKind::Sysctl, _) => "sysctl",
                (TargetKind::Mount, _) => "mount",
                (TargetKind::Haproxy, _) => "haproxy",
                (TargetKind::Path, true) => "1",
                (TargetKind::Path, false) => "0",
                (TargetKind::Attrs, _) => "attr",
            })
            .arg(prefix);
    }
    let cmd = if targets.iter().any(|t| t.kind == TargetKind::Haproxy) {
        cmd.op(";").op(crate::host::HAPROXY_CLI)
    } else {
        cmd
    };
    let cmd = cmd.op(";").op(BACKUP);
    match path_env {
        Some(p) => cmd.env("PATH", p),
        None => cmd,
    }
}

/// What [`backup_cmd`] does, typed, for a file plane to do instead
/// ([`crate::transport::AnyTransport::run_before_next`]): `None` unless every target is a
/// plain path (not a service, package, sysctl, mount, or a folder kept with its content).
/// `prepare`: the state folders are made first, keeping this many runs.
pub fn backup_plan(
    store: &Store,
    step: u32,
    task: &str,
    targets: &[Target],
    become_: Option<&Become>,
    path_env: Option<&str>,
    prepare: Option<u32>,
) -> Option<BackupPlan> {
    let items = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let attrs_only = match (t.kind, t.deep) {
                (TargetKind::Path, false) => false,
                (TargetKind::Attrs, _) => true,
                _ => return None,
            };
            Some(BackupItem {
                path: t.path.clone(),
                attrs_only,
                prefix: prefix_json(store, step, i as u32, task, &t.path, become_, path_env),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(BackupPlan {
        state_dir: store.state_dir.clone(),
        run_id: store.run_id.clone(),
        step: step_name(step),
        started: journal::run_started(&store.run_id),
        prepare,
        items,
    })
}

/// The manifest entries a [`backup_cmd`] that exited 0 printed: one per target.
pub fn parse_backup(out: &Output, targets: &[Target]) -> Result<Vec<Entry>, BackupError> {
    let (entries, torn) = parse_manifest(&out.stdout_lossy());
    if torn || entries.len() != targets.len() {
        return Err(BackupError::Failed(format!(
            "backup printed {} of {} manifest entries",
            entries.len(),
            targets.len()
        )));
    }
    Ok(entries)
}

/// The manifest line's fixed fields, as JSON without the closing brace; the first entry of a
/// step carries the run's stamp.
fn prefix_json(
    store: &Store,
    step: u32,
    index: u32,
    task: &str,
    path: &str,
    become_: Option<&Become>,
    path_env: Option<&str>,
) -> String {
    let mut v = serde_json::json!({
        "step": step,
        "index": index,
        "task": task,
        "path": path,
        "become_user": become_.map(|b| b.user.clone()),
        "become_method": become_.map(|b| b.method),
        "path_env": path_env,
    });
    if index == 0
        && let Some(stamp) = store
            .stamp
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
    {
        v["run"] = stamp;
    }
    if store.switch {
        v["switch"] = serde_json::Value::Bool(true);
    }
    let mut v = v.to_string();
    v.pop(); // the closing brace: the host adds the fields it measured
    v
}

/// Parses a manifest; lines that do not parse (a torn last line) are dropped and reported by
/// the flag.
pub fn parse_manifest(text: &str) -> (Vec<Entry>, bool) {
    let mut torn = false;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Entry>(line) {
            Ok(e) => out.push(e),
            Err(_) => torn = true,
        }
    }
    (out, torn)
}

/// Reads the manifest of `run_id` from the host; `None` when the host has none.
pub async fn read_manifest(
    tr: &mut AnyTransport,
    state_dir: &str,
    run_id: &str,
    become_: Option<&Become>,
) -> Result<Option<Vec<Entry>>, BackupError> {
    let path = manifest_path(state_dir, run_id);
    let cmd = Cmd::raw("if [ -e")
        .arg(&path)
        .op("]; then cat --")
        .arg(&path)
        .op("; else exit 9; fi");
    let cmd = match become_ {
        Some(b) => cmd.with_become(b.clone()),
        None => cmd,
    };
    let out = tr.exec(&cmd).await?;
    match out.status {
        0 => Ok(Some(parse_manifest(&out.stdout_lossy()).0)),
        9 => Ok(None),
        s => Err(BackupError::Failed(format!(
            "reading {path} failed (exit {s}): {}",
            out.stderr_lossy().trim()
        ))),
    }
}

/// Why a rollback did not put something back on a host: the restored file is not the one
/// backed up, an entry could not be restored (and why), the host could not be reached, or the
/// host failed outside any one entry (reading its manifest, its lock, the pending mark).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RestoreError {
    /// The file was put back, but its checksum is not the backup's.
    #[error(
        "checksum mismatch: {path} (step {step}, {task}) differs from its backup after the restore"
    )]
    ChecksumMismatch {
        /// The entry's step.
        step: u32,
        /// The entry's task.
        task: String,
        /// The path on the host.
        path: String,
    },
    /// The entry could not be restored.
    #[error("cannot restore {path} (step {step}, {task}): {cause}")]
    CannotRestore {
        /// The entry's step.
        step: u32,
        /// The entry's task.
        task: String,
        /// The path, service or package on the host.
        path: String,
        /// What failed.
        cause: String,
    },
    /// The host could not be reached (refused, unanswered, its key or our credentials refused):
    /// its backups are still on it.
    #[error("unreachable: {cause}")]
    Unreachable {
        /// What the connection said.
        cause: String,
    },
    /// Something on the host outside any one entry failed.
    #[error("{what}")]
    Host {
        /// What failed, and why.
        what: String,
    },
}

impl RestoreError {
    /// A failure outside any one entry.
    pub fn host(what: impl Into<String>) -> RestoreError {
        RestoreError::Host { what: what.into() }
    }

    /// A transport failure while doing `what`: the host unreachable, or `what` failed.
    pub fn from_transport(e: &TransportError, what: &str) -> RestoreError {
        match e {
            TransportError::Unreachable(m) => RestoreError::Unreachable { cause: m.clone() },
            TransportError::AuthFailed(_)
            | TransportError::HostKeyRefused(_)
            | TransportError::Unresponsive(_) => RestoreError::Unreachable {
                cause: e.to_string(),
            },
            other => RestoreError::host(format!("{what}: {other}")),
        }
    }

    /// A [`BackupError`] while doing `what` (reading the manifest, marking it pending).
    pub fn from_backup(e: &BackupError, what: &str) -> RestoreError {
        match e {
            BackupError::Transport(t) => RestoreError::from_transport(t, what),
            BackupError::Failed(m) => RestoreError::host(format!("{what}: {m}")),
        }
    }
}

/// How an entry's restore switches user: its become user, by the method the backup used
/// (`sudo` when the manifest predates the method), with `password` (the host's become
/// password, if any; never recorded).
pub fn restore_become(e: &Entry, password: Option<&str>) -> Option<Become> {
    e.become_user.as_ref().map(|u| Become {
        user: u.clone(),
        method: e.become_method.unwrap_or_default(),
        password: password.map(str::to_string),
    })
}

/// The command restoring one entry (without its `become`: see [`restore_become`]).
pub fn restore_cmd(state_dir: &str, run_id: &str, e: &Entry) -> Cmd {
    let cmd = Cmd::raw("set --")
        .arg(&e.path)
        .arg(&e.kind)
        .arg(&e.mode)
        .arg(e.uid.map(|u| u.to_string()).unwrap_or_default())
        .arg(e.gid.map(|g| g.to_string()).unwrap_or_default())
        .arg(e.dir(state_dir, run_id))
        .arg(&e.sha256)
        .arg(if e.deep { "true" } else { "false" })
        .arg(&e.state)
        .op(";");
    let cmd = if e.kind == "haproxy" {
        cmd.op(crate::host::HAPROXY_CLI).op(";")
    } else {
        cmd
    };
    let cmd = cmd.op(RESTORE);
    // Each script ends with `exit`: both run in subshells.
    let cmd = if e.kind == "absent" && e.parents > 0 {
        Cmd::raw(":").and(cmd).and(
            Cmd::raw("set --")
                .arg(&e.path)
                .arg(e.parents.to_string())
                .op(";")
                .op(PRUNE_PARENTS),
        )
    } else {
        cmd
    };
    match &e.path_env {
        Some(p) => cmd.env("PATH", p.clone()),
        None => cmd,
    }
}

/// What a restore command's exit says: 0 restored, 4 the checksum is wrong, anything else
/// (3: a step failed, 5: the kind cannot be restored) the entry could not be restored.
pub fn restore_outcome(out: &Output, e: &Entry) -> Result<(), RestoreError> {
    let stderr = out.stderr_lossy();
    let stderr = stderr.trim();
    match out.status {
        0 => Ok(()),
        4 => Err(RestoreError::ChecksumMismatch {
            step: e.step,
            task: e.task.clone(),
            path: e.path.clone(),
        }),
        s => Err(RestoreError::CannotRestore {
            step: e.step,
            task: e.task.clone(),
            path: e.path.clone(),
            cause: if stderr.is_empty() {
                format!("exit {s}")
            } else {
                format!("{stderr} (exit {s})")
            },
        }),
    }
}

/// Restores one entry, as its task's become user and by its become method; `password` is the
/// host's become password, if it has one.
pub async fn restore(
    tr: &mut AnyTransport,
    state_dir: &str,
    run_id: &str,
    e: &Entry,
    password: Option<&str>,
) -> Result<(), RestoreError> {
    let cmd = restore_cmd(state_dir, run_id, e);
    let cmd = match restore_become(e, password) {
        Some(b) => cmd.with_become(b),
        None => cmd,
    };
    match tr.exec(&cmd).await {
        Ok(out) => restore_outcome(&out, e),
        Err(err) => Err(match RestoreError::from_transport(&err, "") {
            RestoreError::Host { .. } => RestoreError::CannotRestore {
                step: e.step,
                task: e.task.clone(),
                path: e.path.clone(),
                cause: err.to_string(),
            },
            unreachable => unreachable,
        }),
    }
}

/// What a run's rollback left on a host, as its markers next to the manifest say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A rollback began and has not finished (`.pending`: the run is never pruned).
    Pending,
    /// No rollback is under way (the `.pending` marker goes).
    Clear,
    /// A rollback restored every entry (`.pending` goes, `.restored` is written).
    Restored,
}

/// Marks `run_id`'s rollback on the host (a pending run is never pruned).
pub async fn set_pending(
    tr: &mut AnyTransport,
    state_dir: &str,
    run_id: &str,
    mark: Mark,
    become_: Option<&Become>,
) -> Result<(), BackupError> {
    let cmd = Cmd::raw("set --")
        .arg(state_dir)
        .arg(run_id)
        .arg(match mark {
            Mark::Pending => "1",
            Mark::Clear => "0",
            Mark::Restored => "2",
        })
        .op(";")
        .op(PENDING);
    run_ok(tr, cmd, become_, "marking the rollback")
        .await
        .map(|_| ())
}

/// Entries in restore order: the last step first, and within a step the last resource first;
/// each subject (path, service, package) restored once, straight to its state before the run.
///
/// A subject's oldest entry is that state: the later ones are states the run passed through
/// (a marker removed by step 1 and written again by step 3 was absent in between), and
/// replaying them would expose each of them on the host, if only for a moment. Only an entry
/// that kept part of the state (`attrs`, a directory kept without its contents) needs the
/// next complete one after it: that one holds the content the run's first change left alone,
/// and the partial one, restored after it, the attributes.
pub fn restore_order(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by_key(|e| (e.step, e.index));
    let subject = |e: &Entry| -> (&'static str, String) {
        let class = match e.kind.as_str() {
            "service" => "service",
            "package" => "package",
            "sysctl" => "sysctl",
            "mount" => "mount",
            "haproxy" => "haproxy",
            _ => "path",
        };
        (class, e.path.clone())
    };
    let partial = |e: &Entry| e.kind == "attrs" || (e.kind == "directory" && !e.deep);
    // Per subject: whether what was kept so far still lacks a complete entry.
    let mut seen: std::collections::HashMap<(&'static str, String), bool> =
        std::collections::HashMap::new();
    entries.retain(|e| match seen.get_mut(&subject(e)) {
        None => {
            seen.insert(subject(e), partial(e));
            true
        }
        Some(lacking) if *lacking && !partial(e) => {
            *lacking = false;
            true
        }
        Some(_) => false,
    });
    entries.reverse();
    entries
}

#[cfg(test)]
mod tests;
