//! The executor's side of backups: the run's journal and id, each host's backup bookkeeping,
//! and the `backup` step of the pipeline (between check and apply).
//!
//! Owns deciding where a host keeps its backups (`rdeploy_state_dir`, `rdeploy_keep_runs`),
//! preparing that folder once per host and run, numbering the host's steps, and writing the
//! intent to the journal before the backup and the change. What is copied and how lives in
//! `backup/`. It must not print.

use serde_json::Value as Json;

use crate::backup::journal::{Journal, Record};
use crate::backup::{self, DEFAULT_KEEP_RUNS, DEFAULT_STATE_DIR, Store};
use crate::modules::runtime::Resource;
use crate::template::LazyVars;
use crate::transport::{AnyTransport, Become, Cmd, QueuedOutcome};

/// One run that changes hosts: its id and its journal. Absent in check mode.
pub struct RunCtx {
    /// The run id.
    pub run_id: String,
    /// The controller journal.
    pub journal: Journal,
    /// The state folder of hosts on the local connection (the controller itself) that set no
    /// `rdeploy_state_dir`: `<controller state dir>/local`, writable without root.
    pub local_state_dir: String,
    /// Who holds the hosts' locks, as their lock files say: `RUN from CONTROLLER since T`.
    pub holder: String,
    /// Who runs what (user, controller, playbook, started, `--label`), a JSON object, for
    /// the hosts' manifests ([`backup::Store::stamp`]).
    pub who: serde_json::Value,
    /// The release label of the play running now (`release_label`, rendered).
    pub release: std::sync::Mutex<Option<String>>,
}

impl RunCtx {
    /// The stamp a host's manifest keeps: [`RunCtx::who`] with the label (`--label`, else the
    /// play's release label).
    pub fn stamp(&self) -> String {
        let mut v = self.who.clone();
        if v.get("label").is_none_or(serde_json::Value::is_null)
            && let Some(r) = self
                .release
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        {
            v["label"] = serde_json::Value::from(r);
        }
        v.to_string()
    }
}

impl std::fmt::Debug for RunCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunCtx")
            .field("run_id", &self.run_id)
            .finish()
    }
}

/// A host's backups in this run.
#[derive(Clone, Debug, Default)]
pub struct HostBackups {
    /// Where they go, once prepared.
    pub store: Option<Store>,
    /// How the state folder was prepared: as that become user (`None`: the login user).
    pub prepared_as: Option<Become>,
    /// The become password of the host's steps, when they had one (never written anywhere):
    /// a rollback in this run restores with it.
    pub become_password: Option<String>,
    /// The state directory in use (or, in check mode, that would be), once known.
    pub dir: Option<String>,
    /// `dir` was shown (`-v`).
    pub shown: bool,
    /// Check mode: whether the state directory could be prepared (once per host).
    pub preparable: Option<Result<(), String>>,
    /// Steps backed up so far.
    pub step: u32,
    /// Time spent preparing, journaling and taking backups on this host.
    pub spent: std::time::Duration,
}

/// `rdeploy_state_dir` from the host's variables (`None` when unset): an absolute path
/// without `..`.
pub fn state_dir_var(vars: &LazyVars) -> Result<Option<String>, String> {
    let dir = match vars.get_json("rdeploy_state_dir") {
        None | Some(Ok(Json::Null)) => return Ok(None),
        Some(Ok(Json::String(s))) => s,
        Some(Ok(other)) => return Err(format!("rdeploy_state_dir must be a path, found {other}")),
        Some(Err(e)) => return Err(format!("rdeploy_state_dir: {e}")),
    };
    checked_state_dir(&dir).map(Some)
}

/// The host's state directory: `rdeploy_state_dir` when set; else, on the local connection,
/// `local` (the controller's); else the default for the user the backups run as (the task's
/// `become` user, else the login user): `/var/lib/rdeploy` for root, otherwise
/// `$HOME/.local/state/rdeploy` of that user on the host (as Ansible keeps `~/.ansible/tmp`).
/// The user comes from `become`, else from the gathered facts (`ansible_user_uid`,
/// `ansible_user_dir`); only when neither tells is the host asked (one command).
pub async fn resolve_state_dir(
    tr: &mut AnyTransport,
    vars: &LazyVars,
    become_: Option<&Become>,
    local: Option<&str>,
) -> Result<String, String> {
    if let Some(d) = state_dir_var(vars)? {
        return Ok(d);
    }
    if let Some(l) = local {
        return checked_state_dir(l);
    }
    let root_or_home = |uid: i64, home: &str| -> Result<String, String> {
        if uid == 0 {
            return Ok(DEFAULT_STATE_DIR.to_string());
        }
        checked_state_dir(&format!(
            "{}/{USER_STATE_DIR}",
            home.trim_end_matches('/')
        ))
        .map_err(|_| {
            format!("the home directory '{home}' on the host is not an absolute path: set rdeploy_state_dir")
        })
    };
    match become_ {
        Some(b) if b.user == "root" || b.user == "0" => return root_or_home(0, "/"),
        Some(_) => {}
        None => {
            let fact = |k: &str| vars.get_json(k).and_then(Result::ok);
            if let (Some(uid), Some(Json::String(home))) = (
                fact("ansible_user_uid").and_then(|u| u.as_i64()),
                fact("ansible_user_dir"),
            ) && uid >= 0
            {
                return root_or_home(uid, &home);
            }
        }
    }
    let (uid, home) = backup::whoami(tr, become_)
        .await
        .map_err(|e| format!("finding the state directory: {e}"))?;
    root_or_home(uid, &home)
}

/// Under a plain user's home: the default state directory (XDG's state folder).
pub const USER_STATE_DIR: &str = ".local/state/rdeploy";

/// `dir` if it is absolute and does not climb (`..`).
pub fn checked_state_dir(dir: &str) -> Result<String, String> {
    if !dir.starts_with('/') || dir.split('/').any(|c| c == "..") || dir.contains('\0') {
        return Err(format!(
            "rdeploy_state_dir '{dir}' must be an absolute path without '..'"
        ));
    }
    Ok(dir.to_string())
}

fn keep_runs_of(vars: &LazyVars) -> Result<u32, String> {
    match vars.get_json("rdeploy_keep_runs") {
        None => Ok(DEFAULT_KEEP_RUNS),
        Some(Ok(v)) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                format!("rdeploy_keep_runs must be a whole number of at least 1, found {v}")
            }),
        Some(Err(e)) => Err(format!("rdeploy_keep_runs: {e}")),
    }
}

/// A host on the local connection keeps its backups in this controller's `base`
/// (`<state>/local`) when it is `localhost`, else in `base/hosts/NAME`: several inventory
/// hosts on the local connection (aliases of this machine) run their steps at once, and each
/// numbers its steps from 1, so they must not share a folder.
pub fn local_dir(base: &str, host: &str) -> String {
    if host == "localhost" {
        return base.to_string();
    }
    let safe: String = host
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '_',
        })
        .collect();
    let safe = if safe.starts_with('.') {
        format!("_{safe}")
    } else {
        safe
    };
    format!("{}/hosts/{safe}", base.trim_end_matches('/'))
}

/// What one step needs to be backed up.
pub struct StepBackup<'a> {
    /// The run.
    pub run: &'a RunCtx,
    /// The host's bookkeeping.
    pub host: &'a mut HostBackups,
    /// The host's name.
    pub name: &'a str,
    /// The task's variables on this host.
    pub vars: &'a LazyVars,
    /// The task's label.
    pub task: &'a str,
    /// The host is the controller (local connection).
    pub local: bool,
    /// The task is tagged `switch` ([`backup::Store::switch`]).
    pub switch: bool,
}

/// A backup queued on the transport to run right before the module's first change
/// ([`AnyTransport::run_before_next`]); settled by [`StepBackup::settle`] after `apply`.
#[derive(Debug)]
pub struct Queued {
    step: u32,
    targets: Vec<backup::Target>,
    /// The state folder is prepared by the same command (the host's first backup).
    prepares: bool,
}

impl StepBackup<'_> {
    /// Before `apply`: records the intent (durably, in the journal), then queues the backup of
    /// every path among `resources` on the transport, so that it runs on the host right before
    /// the module's first command, in the same round trip, and that command runs only if the
    /// backup succeeded (see [`AnyTransport::run_before_next`]). The host's first backup also
    /// prepares its state folder in that command. Returns `None` when the module touches no
    /// path. An error means the change must not be made.
    pub async fn queue(
        &mut self,
        tr: &mut AnyTransport,
        resources: &[Resource],
        become_: Option<&Become>,
        environment: &[(String, String)],
    ) -> Result<Option<Queued>, String> {
        let targets = backup::targets(resources);
        if targets.is_empty() {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let r = self.queue_targets(tr, targets, become_, environment).await;
        self.host.spent += started.elapsed();
        r
    }

    async fn queue_targets(
        &mut self,
        tr: &mut AnyTransport,
        targets: Vec<backup::Target>,
        become_: Option<&Become>,
        environment: &[(String, String)],
    ) -> Result<Option<Queued>, String> {
        let (mut store, prepare) = self.store(tr, become_).await?;
        store.stamp = Some(self.run.stamp());
        store.switch = self.switch;
        if let Some(p) = become_.and_then(|b| b.password.as_ref()) {
            self.host.become_password = Some(p.clone());
        }
        self.host.step += 1;
        let step = self.host.step;
        self.run
            .journal
            .durable(&Record::Intent {
                host: self.name.to_string(),
                step,
                task: self.task.to_string(),
                paths: targets.iter().map(|t| t.path.clone()).collect(),
            })
            .await
            .map_err(|e| format!("the journal could not record the change: {e}"))?;
        let path_env = environment
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str());
        let mut cmd = backup::backup_cmd(&store, step, self.task, &targets, become_, path_env);
        let prepares = prepare.is_some();
        let plan = backup::backup_plan(
            &store,
            step,
            self.task,
            &targets,
            become_,
            path_env,
            prepares.then_some(store.keep_runs.max(1)),
        );
        if let Some(p) = prepare {
            cmd = Cmd::raw(":").and(p).and(cmd);
        }
        // The task's `environment:` (a PATH, say) applies to what the backup looks at too.
        for (k, v) in environment.iter().filter(|(k, _)| k != "PATH") {
            cmd = cmd.env(k.clone(), v.clone());
        }
        if let Some(b) = become_ {
            cmd = cmd.with_become(b.clone());
        }
        tr.run_before_next(cmd, plan);
        Ok(Some(Queued {
            step,
            targets,
            prepares,
        }))
    }

    /// After `apply`: what became of the queued backup. `Err` when it failed (the module's
    /// change was then not made: the transport refused every command after it) or its output
    /// is not the manifest entries expected.
    pub fn settle(&mut self, tr: &mut AnyTransport, q: Queued) -> Result<(), String> {
        let outcome = tr.take_queued();
        let failed =
            |what: String| format!("backup before the change failed, nothing was changed: {what}");
        let out = match outcome {
            Some(QueuedOutcome::Ran(out)) => out,
            // The module ran no command: nothing was changed, nothing needed a backup.
            None => {
                if q.prepares {
                    self.host.store = None;
                }
                return Ok(());
            }
            // The backup refused a path (a folder on its way is another user's symlink).
            Some(QueuedOutcome::Failed(out)) if out.status == backup::REFUSED => {
                return Err(format!(
                    "{}; nothing was changed",
                    out.stderr_lossy().trim()
                ));
            }
            Some(QueuedOutcome::Failed(out)) => {
                let (what, hint) = match q.prepares.then(|| self.host.store.take()).flatten() {
                    Some(store) => (
                        "preparing the state directory or the backup",
                        format!(" ({})", backup::prepare_hint(&store)),
                    ),
                    None => ("backup", String::new()),
                };
                return Err(failed(format!(
                    "{what} failed (exit {}): {}{hint}",
                    out.status,
                    out.stderr_lossy().trim()
                )));
            }
            Some(QueuedOutcome::Lost(e)) => {
                return Err(format!("the backup before the change did not finish: {e}"));
            }
        };
        let entries = backup::parse_backup(&out, &q.targets).map_err(|e| e.to_string())?;
        self.run.journal.note(&Record::Backup {
            host: self.name.to_string(),
            step: q.step,
            entries,
        });
        Ok(())
    }

    /// The host's store and, when it is not prepared yet and the login user prepares it, the
    /// command preparing it (to run with the first backup). With a `become` user, the folder
    /// is prepared right away: as the login user, or, when that cannot write the state folder,
    /// as the task's become user.
    async fn store(
        &mut self,
        tr: &mut AnyTransport,
        become_: Option<&Become>,
    ) -> Result<(Store, Option<Cmd>), String> {
        if let Some(s) = &self.host.store {
            return Ok((s.clone(), None));
        }
        let local = self
            .local
            .then(|| local_dir(&self.run.local_state_dir, self.name));
        let local = local.as_deref();
        let store = Store {
            state_dir: resolve_state_dir(tr, self.vars, become_, local).await?,
            run_id: self.run.run_id.clone(),
            keep_runs: keep_runs_of(self.vars)?,
            stamp: None,
            switch: false,
        };
        self.host.dir = Some(store.state_dir.clone());
        if become_.is_none() {
            self.record_host(&store, None).await?;
            self.host.prepared_as = None;
            self.host.store = Some(store.clone());
            let prepare = backup::prepare_cmd(&store);
            return Ok((store, Some(prepare)));
        }
        let mut prepared_as = None;
        if let Err(first) = backup::prepare(tr, &store, None).await {
            match become_ {
                Some(b) => {
                    backup::prepare(tr, &store, Some(b))
                        .await
                        .map_err(|e| e.to_string())?;
                    prepared_as = Some(b.clone());
                }
                None => return Err(first.to_string()),
            }
        }
        self.record_host(&store, prepared_as.as_ref()).await?;
        self.host.prepared_as = prepared_as;
        self.host.store = Some(store.clone());
        Ok((store, None))
    }

    /// The journal's record of where the host keeps its backups, written before any of them.
    async fn record_host(&self, store: &Store, become_: Option<&Become>) -> Result<(), String> {
        self.run
            .journal
            .durable(&Record::Host {
                host: self.name.to_string(),
                state_dir: store.state_dir.clone(),
                become_user: become_.map(|b| b.user.clone()),
                become_method: become_.map(|b| b.method),
            })
            .await
            .map_err(|e| format!("the journal could not record the host: {e}"))
    }
}
