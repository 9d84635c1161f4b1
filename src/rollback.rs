//! Rollback: a host's recorded backups for one run, restored newest step first, each path
//! straight to its state before the run ([`backup::restore_order`]).
//!
//! Owns the order and the bookkeeping of a restore: read the run's manifest from the host
//! (so it works from any controller), mark the run pending, restore its entries in reverse
//! step order, each subject once (going on past a failure so as much as possible is put
//! back, and naming each failure), then clear the mark. Used by the executor on a failed batch and by
//! `rdeploy rollback`. The play's `rollback:` tasks and the health gate after it are the
//! executor's. It must not print.

use serde::Serialize;

use crate::backup::{self, Entry};
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
    /// What failed: `step N (task): message`, in restore order.
    pub errors: Vec<String>,
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
    pub fn failed(host: &str, error: impl Into<String>) -> HostRollback {
        HostRollback {
            host: host.to_string(),
            errors: vec![error.into()],
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
                format!("{e}; its backups are still on it: {then} `rdeploy rollback {run_id}`"),
            )
        }
    }

    /// The host's identity was refused.
    pub fn host_key_refused(&self) -> bool {
        self.reach == Some(Reach::HostKeyRefused)
    }
}

/// Restores `run_id` on the host behind `tr`. `manifest_as` is the user the state folder was
/// prepared as (the journal's `host` record), `None` for the login user.
pub async fn restore_host(
    tr: &mut AnyTransport,
    host: &str,
    state_dir: &str,
    run_id: &str,
    manifest_as: Option<&str>,
) -> HostRollback {
    let become_ = manifest_as.map(|u| Become::sudo(u.to_string()));
    let mut out = HostRollback {
        host: host.to_string(),
        ..HostRollback::default()
    };
    let entries: Vec<Entry> =
        match backup::read_manifest(tr, state_dir, run_id, become_.as_ref()).await {
            Ok(Some(e)) => e,
            Ok(None) => {
                out.nothing_recorded = true;
                return out;
            }
            Err(e) => {
                out.errors.push(format!("reading the manifest: {e}"));
                return out;
            }
        };
    out.entries = entries.len();
    if let Err(e) = backup::set_pending(tr, state_dir, run_id, true, become_.as_ref()).await {
        out.errors
            .push(format!("marking the rollback pending: {e}"));
        return out;
    }
    for e in backup::restore_order(entries) {
        match backup::restore(tr, state_dir, run_id, &e).await {
            Ok(()) => out.restored += 1,
            Err(err) => out
                .errors
                .push(format!("step {} ({}): {}", e.step, e.task, err)),
        }
    }
    if out.clean()
        && let Err(e) = backup::set_pending(tr, state_dir, run_id, false, become_.as_ref()).await
    {
        out.errors.push(format!("clearing the pending mark: {e}"));
    }
    out
}
