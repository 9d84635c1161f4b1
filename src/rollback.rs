//! Rollback: a host's recorded backups for one run, restored newest step first, each path
//! straight to its state before the run ([`backup::restore_order`]).
//!
//! Owns the order and the bookkeeping of a restore: read the run's manifest from the host
//! (so it works from any controller), mark the run pending, restore its entries in reverse
//! step order, each subject once (going on past a failure so as much as possible is put
//! back, and naming each failure by its kind; only a lost connection stops it), then clear
//! the mark. Used by the executor on a failed batch and by `rdeploy rollback`. The play's
//! `rollback:` tasks and the health gate after it are the executor's. It must not print.

use serde::Serialize;

use crate::backup::{self, Entry, RestoreError};
use crate::transport::{AnyTransport, Become, Reach, TransportError};

/// What a rollback did on one host.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HostRollback {
    /// The host.
    pub host: String,
    /// Entries the manifest listed.
    pub entries: usize,
    /// Entries restored.
    pub restored: usize,
    /// The host had no manifest for the run (it changed nothing that was backed up).
    pub nothing_recorded: bool,
    /// What failed, in restore order, each with its kind (checksum mismatch, cannot restore,
    /// unreachable, a failure outside the entries).
    pub errors: Vec<RestoreError>,
    /// The host could not be used for the restore, and why (`host_key_refused` wins the exit
    /// code).
    #[serde(rename = "unreachable_reason", skip_serializing_if = "Option::is_none")]
    pub reach: Option<Reach>,
}

impl HostRollback {
    /// Every entry was restored.
    pub fn clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// A rollback that could not start (the host is unreachable, say).
    pub fn failed(host: &str, error: RestoreError) -> HostRollback {
        HostRollback {
            host: host.to_string(),
            errors: vec![error],
            ..HostRollback::default()
        }
    }

    /// A rollback that could not start because the host could not be used (`e`), with a word
    /// on what to do about it.
    pub fn unusable(host: &str, e: &TransportError, run_id: &str) -> HostRollback {
        let reach = e.reach();
        let then = match reach {
            Some(Reach::HostKeyRefused) => "check the host's key, then run",
            _ => "when the host can be used again, run",
        };
        HostRollback {
            reach,
            ..HostRollback::failed(
                host,
                RestoreError::Unreachable {
                    cause: format!(
                        "{e}; its backups are still on it: {then} `rdeploy rollback {run_id}`"
                    ),
                },
            )
        }
    }

    /// The host's identity was refused.
    pub fn host_key_refused(&self) -> bool {
        self.reach == Some(Reach::HostKeyRefused)
    }

    /// The errors as one line (`; ` between them), for the journal and the report.
    pub fn errors_line(&self) -> String {
        self.errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What a restore puts back of a run's backups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everything (`rdeploy rollback`).
    All,
    /// Only the switches (`rdeploy switch-back`): load balancers' server states, and what
    /// tasks tagged `switch` changed (a `current` symlink between two colours' folders); the
    /// new colour's files stay.
    Switch,
}

impl Scope {
    /// The mark a clean restore leaves: a switch-back restored only part of the run.
    fn mark(self) -> backup::Mark {
        match self {
            Scope::All => backup::Mark::Restored,
            Scope::Switch => backup::Mark::Clear,
        }
    }

    fn keeps(self, e: &Entry) -> bool {
        self == Scope::All || e.kind == "haproxy" || e.switch
    }
}

/// Restores `run_id` (what `scope` names of it) on the host behind `tr`. `manifest_as` is how
/// the state folder was prepared (the journal's `host` record: user and method), `None` for
/// the login user; `password` is the host's become password, if any, for the entries restored
/// as their task's become user (by the method each was backed up with).
pub async fn restore_host(
    tr: &mut AnyTransport,
    host: &str,
    state_dir: &str,
    run_id: &str,
    manifest_as: Option<&Become>,
    password: Option<&str>,
    scope: Scope,
) -> HostRollback {
    let mut out = HostRollback {
        host: host.to_string(),
        ..HostRollback::default()
    };
    let entries: Vec<Entry> = match backup::read_manifest(tr, state_dir, run_id, manifest_as).await
    {
        Ok(Some(e)) => e,
        Ok(None) => {
            out.nothing_recorded = true;
            return out;
        }
        Err(e) => {
            out.errors
                .push(RestoreError::from_backup(&e, "reading the manifest"));
            return out;
        }
    };
    let entries: Vec<Entry> = entries.into_iter().filter(|e| scope.keeps(e)).collect();
    if entries.is_empty() {
        out.nothing_recorded = true;
        return out;
    }
    out.entries = entries.len();
    if let Err(e) =
        backup::set_pending(tr, state_dir, run_id, backup::Mark::Pending, manifest_as).await
    {
        out.errors.push(RestoreError::from_backup(
            &e,
            "marking the rollback pending",
        ));
        return out;
    }
    for e in backup::restore_order(entries) {
        match backup::restore(tr, state_dir, run_id, &e, password).await {
            Ok(()) => out.restored += 1,
            // The connection is gone: the entries left are not tried, each would say so.
            Err(err @ RestoreError::Unreachable { .. }) => {
                out.errors.push(err);
                break;
            }
            Err(err) => out.errors.push(err),
        }
    }
    if out.clean()
        && let Err(e) = backup::set_pending(tr, state_dir, run_id, scope.mark(), manifest_as).await
    {
        out.errors
            .push(RestoreError::from_backup(&e, "clearing the pending mark"));
    }
    out
}
