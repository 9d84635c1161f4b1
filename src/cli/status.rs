//! `rdeploy status`: per host, the release it runs and the run that put it there, read from
//! the controller's run journals, or (`--from-hosts`) from the hosts' own manifests.
//!
//! Owns the per-host reading of every journal, oldest run first: a run's changes stand on a
//! host until a later run changes it or a rollback undoes them there; and the same reading of
//! a host's manifests and their rollback markers ([`from_hosts`]). It must change nothing on a
//! host.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::args::{self, OutputFormat};
use super::runs::{left_by, run_info};
use super::{Exit, Failed};
use crate::backup::journal::{self, Record};
use crate::diag::{Diagnostic, Diagnostics};
use crate::report;

/// One host's line.
#[derive(Debug, Default, Serialize)]
pub(crate) struct HostStatus {
    pub(crate) host: String,
    /// The release label of the run whose changes stand on the host.
    pub(crate) label: Option<String>,
    /// That run.
    pub(crate) run_id: Option<String>,
    /// `finished`, `failed` (the run failed on this host and it was not rolled back),
    /// `in_flight` (still running), `needs_attention` (its run was killed while changing it),
    /// or `rolled_back` (every run that changed it was undone there).
    pub(crate) state: String,
    /// Who started that run, from which controller.
    pub(crate) user: Option<String>,
    pub(crate) controller: Option<String>,
    /// When it started (RFC 3339).
    pub(crate) started: Option<String>,
    /// Later runs undone on this host: `RUN (fully|partially)`.
    pub(crate) rolled_back: Vec<String>,
    /// Steps left mid-flight by a killed run: `step N 'TASK'`.
    pub(crate) mid_flight: Vec<String>,
    /// `--from-hosts`: why the host could not be asked (its state is `unreachable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// Whether `host` matches `pattern`: names and globs (`*`, `?`), unions with `,` or `:`.
fn matches(pattern: &str, host: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
            (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    pattern
        .split([',', ':'])
        .filter(|t| !t.is_empty())
        .any(|t| t == "all" || glob(t.as_bytes(), host.as_bytes()))
}

/// Every host's status from the journals under `state`.
pub(crate) fn from_journals(
    state: &Path,
    inventory: Option<&str>,
    limit: Option<&str>,
) -> Result<Vec<HostStatus>, Failed> {
    // Per host, the runs whose changes stand there, oldest first.
    let mut standing: BTreeMap<String, Vec<HostStatus>> = BTreeMap::new();
    let mut undone: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in journal::run_ids(state)? {
        let recs = journal::read(&journal::journal_path(state, &id))?.records;
        let info = run_info(&id, &recs);
        if inventory.is_some_and(|i| !info.is_environment(i)) {
            continue;
        }
        let ended = recs.iter().any(|r| matches!(r, Record::RunEnd { .. }));
        let running = !ended && {
            let cwd = Path::new(&info.cwd);
            let inv: Vec<_> = info.inventory.iter().map(|i| cwd.join(i)).collect();
            super::lock::is_held(&super::lock::lock_path(
                state,
                &inv,
                &cwd.join(&info.playbook),
            ))
        };
        let left = left_by(&recs);
        let mut touched: Vec<String> = Vec::new();
        let mut failed: Vec<&str> = Vec::new();
        let mut rolled: Vec<&str> = Vec::new();
        for r in &recs {
            match r {
                Record::Intent { host, .. } if !touched.contains(host) => {
                    touched.push(host.clone())
                }
                Record::Result { host, status, .. }
                    if status == "failed" || status == "unreachable" =>
                {
                    failed.push(host)
                }
                Record::Rollback {
                    host, error: None, ..
                } => rolled.push(host),
                _ => {}
            }
        }
        let how = if touched.iter().all(|h| rolled.contains(&h.as_str())) {
            "fully"
        } else {
            "partially"
        };
        for host in &touched {
            if limit.is_some_and(|l| !matches(l, host)) {
                continue;
            }
            if rolled.contains(&host.as_str()) {
                undone
                    .entry(host.clone())
                    .or_default()
                    .push(format!("{id} ({how})"));
                continue;
            }
            let (state, mid_flight) = match left.get(host) {
                _ if ended && failed.contains(&host.as_str()) => ("failed", vec![]),
                _ if ended => ("finished", vec![]),
                _ if running => ("in_flight", vec![]),
                Some(l) => (
                    "needs_attention",
                    l.mid_flight
                        .iter()
                        .map(|(n, t)| format!("step {n} '{t}'"))
                        .collect(),
                ),
                None => ("needs_attention", vec![]),
            };
            standing.entry(host.clone()).or_default().push(HostStatus {
                host: host.clone(),
                label: info.label.clone(),
                run_id: Some(id.clone()),
                state: state.into(),
                user: info.user.clone(),
                controller: info.controller.clone(),
                started: info.started.clone(),
                rolled_back: Vec::new(),
                mid_flight,
                error: None,
            });
        }
    }
    let mut hosts: Vec<String> = standing.keys().chain(undone.keys()).cloned().collect();
    hosts.sort();
    hosts.dedup();
    Ok(hosts
        .into_iter()
        .map(|h| {
            let mut s = standing
                .get_mut(&h)
                .and_then(Vec::pop)
                .unwrap_or_else(|| HostStatus {
                    host: h.clone(),
                    state: "rolled_back".into(),
                    ..HostStatus::default()
                });
            let later = |r: &String| s.run_id.as_deref().is_none_or(|mine| r.as_str() > mine);
            s.rolled_back = undone
                .get(&h)
                .map(|v| v.iter().filter(|r| later(r)).cloned().collect())
                .unwrap_or_default();
            s
        })
        .collect())
}

/// One run manifest a host keeps: its id, rollback marker and stamp.
#[derive(Debug, PartialEq)]
struct Kept {
    run_id: String,
    /// `pending`, `restored` or `-`.
    mark: String,
    stamp: serde_json::Value,
}

/// The manifests in a `status_scan.sh` output, in run order (run ids sort by start time).
fn parse_scan(text: &str) -> Vec<Kept> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        let Some(rest) = l.strip_prefix("@@run ") else {
            continue;
        };
        let mut w = rest.splitn(3, ' ');
        let (Some(mark), Some(id)) = (w.next(), w.next()) else {
            continue;
        };
        let first = lines.next().unwrap_or_default();
        let stamp = serde_json::from_str::<serde_json::Value>(first)
            .ok()
            .and_then(|v| v.get("run").cloned())
            .unwrap_or(serde_json::Value::Null);
        out.push(Kept {
            run_id: id.to_string(),
            mark: mark.to_string(),
            stamp,
        });
    }
    out.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    out.dedup_by(|a, b| a.run_id == b.run_id);
    out
}

/// A host's status from its manifests: the newest run not rolled back stands (`standing`, or
/// `rollback_incomplete` when a rollback of it did not finish); later runs rolled back are
/// listed; with none standing, the host is `rolled_back` (or never changed: `unchanged`).
fn host_status(host: &str, kept: &[Kept]) -> HostStatus {
    let standing = kept.iter().rev().find(|k| k.mark != "restored");
    let text = |k: &Kept, f: &str| k.stamp.get(f).and_then(|v| v.as_str()).map(str::to_string);
    let mut s = HostStatus {
        host: host.to_string(),
        state: match standing {
            Some(k) if k.mark == "pending" => "rollback_incomplete".into(),
            Some(_) => "standing".into(),
            None if kept.is_empty() => "unchanged".into(),
            None => "rolled_back".into(),
        },
        ..HostStatus::default()
    };
    if let Some(k) = standing {
        s.run_id = Some(k.run_id.clone());
        s.label = text(k, "label");
        s.user = text(k, "user");
        s.controller = text(k, "controller");
        s.started = text(k, "started");
    }
    s.rolled_back = kept
        .iter()
        .filter(|k| k.mark == "restored")
        .filter(|k| standing.is_none_or(|st| k.run_id > st.run_id))
        .map(|k| format!("{} (restored)", k.run_id))
        .collect();
    s
}

/// Every selected host's status from its own manifests, asked over its connection
/// (`--from-hosts`): in its `rdeploy_state_dir`, else in `/var/lib/rdeploy` and the login
/// user's `~/.local/state/rdeploy`, as the login user.
fn from_hosts(a: &args::StatusArgs) -> Result<Vec<HostStatus>, Failed> {
    use crate::exec::host::Connection;
    use crate::transport::{Cmd, Transport};
    let Some(inv_path) = &a.inventory else {
        return Err(Failed::Invalid(Diagnostics::from(Diagnostic::options(
            "--from-hosts asks the hosts of an inventory: give it with -i",
        ))));
    };
    super::install_vault(&a.vault)?;
    let inv = crate::inventory::Inventory::load(std::slice::from_ref(inv_path), None)?;
    let pattern = a.limit.as_deref().unwrap_or("all");
    let hosts: Vec<String> = inv
        .select(pattern)
        .map_err(|m| Failed::Invalid(Diagnostics::from(Diagnostic::options(m))))?
        .into_iter()
        .map(|h| h.name.clone())
        .collect();
    let cfg = super::config::AnsibleCfg::discover()?;
    let (ssh, ssh_config) = super::ssh_options(&a.connect, cfg.as_ref())?;
    let opts = std::sync::Arc::new(crate::exec::RunOptions {
        forks: a.forks.unwrap_or(50).max(1),
        ssh,
        ssh_config: std::sync::Arc::new(ssh_config),
        ..crate::exec::RunOptions::default()
    });
    let local = std::path::absolute(journal::state_dir(a.journals.state_dir.as_deref()))
        .map(|p| p.join("local").display().to_string())
        .unwrap_or_default();
    let inv = std::sync::Arc::new(inv);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(async {
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(opts.forks));
        let mut set = tokio::task::JoinSet::new();
        for host in hosts {
            let (inv, opts, sem, local) = (
                std::sync::Arc::clone(&inv),
                std::sync::Arc::clone(&opts),
                std::sync::Arc::clone(&sem),
                local.clone(),
            );
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let failed = |why: String| HostStatus {
                    host: host.clone(),
                    state: "unreachable".into(),
                    error: Some(why),
                    ..HostStatus::default()
                };
                let super::runs::Reached { vars, conn, mut tr } =
                    match super::runs::reach(&inv, &opts, &host).await {
                        Ok(r) => r,
                        Err(super::runs::Unreached::Config(e)) => return failed(e),
                        Err(super::runs::Unreached::Transport(e)) => return failed(e.to_string()),
                    };
                let dirs: Vec<String> = match vars.get("rdeploy_state_dir") {
                    Some(serde_json::Value::String(d)) => vec![d.clone()],
                    _ if conn == Connection::Local => vec![
                        local.clone(),
                        crate::exec::backups::local_dir(&local, &host),
                    ],
                    _ => vec![crate::backup::DEFAULT_STATE_DIR.into(), "@home".into()],
                };
                let mut cmd = Cmd::raw("set --");
                for d in &dirs {
                    cmd = cmd.arg(d.clone());
                }
                let out = tr.exec(&cmd.op(";").op(crate::host::STATUS_SCAN)).await;
                tr.close().await;
                match out {
                    Ok(o) if o.status == 0 => host_status(&host, &parse_scan(&o.stdout_lossy())),
                    Ok(o) => failed(format!(
                        "reading its state folder failed (exit {}): {}",
                        o.status,
                        o.stderr_lossy().trim()
                    )),
                    Err(e) => failed(e.to_string()),
                }
            });
        }
        super::runs::joined(set, |s| &s.host).await
    }))
}

/// `rdeploy status [-i INVENTORY] [--limit PATTERN] [--json] [--from-hosts]`.
pub(crate) fn cmd_status(out: &mut dyn Write, a: args::StatusArgs) -> Result<Exit, Failed> {
    let state = journal::state_dir(a.journals.state_dir.as_deref());
    let inventory = a.inventory.as_ref().map(|p| p.display().to_string());
    let hosts = if a.from_hosts {
        from_hosts(&a)?
    } else {
        from_journals(&state, inventory.as_deref(), a.limit.as_deref())?
    };
    if a.json || a.journals.output == OutputFormat::Json {
        report::json_pretty(out, &serde_json::json!({ "hosts": hosts }))?;
        return Ok(Exit::Success);
    }
    if hosts.is_empty() {
        report::text(
            out,
            &format!(
                "no host changed by the runs recorded under {}",
                state.display()
            ),
        )?;
        return Ok(Exit::Success);
    }
    report::text(
        out,
        &format!(
            "{:<20} {:<16} {:<24} {:<16} {:<20} NOTE",
            "HOST", "RELEASE", "RUN", "STATE", "BY"
        ),
    )?;
    for h in &hosts {
        let mut note = Vec::new();
        if let Some(e) = &h.error {
            note.push(e.clone());
        }
        if !h.mid_flight.is_empty() {
            note.push(format!("left mid-flight: {}", h.mid_flight.join(", ")));
        }
        if !h.rolled_back.is_empty() {
            note.push(format!("rolled back: {}", h.rolled_back.join(", ")));
        }
        let by = match (&h.user, &h.controller) {
            (Some(u), Some(c)) => format!("{u}@{c}"),
            (Some(u), None) => u.clone(),
            _ => "-".into(),
        };
        report::text(
            out,
            format!(
                "{:<20} {:<16} {:<24} {:<16} {:<20} {}",
                h.host,
                h.label.as_deref().unwrap_or("-"),
                h.run_id.as_deref().unwrap_or("-"),
                h.state,
                by,
                note.join("; ")
            )
            .trim_end(),
        )?;
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::{host_status, matches, parse_scan};

    /// A host's manifests as `status_scan.sh` prints them: the newest run not restored stands,
    /// with its stamp; restored later runs are listed; an unreadable first line is no stamp.
    #[test]
    fn a_hosts_manifests_say_which_run_stands() {
        let scan = "@@run - 20261201T000000Z-aaaaaa /var/lib/rdeploy\n\
            {\"step\":1,\"index\":0,\"run\":{\"label\":\"v1\",\"user\":\"ops\",\"controller\":\"c1\"}}\n\
            @@run restored 20261202T000000Z-bbbbbb /var/lib/rdeploy\n\
            {\"step\":1,\"index\":0,\"run\":{\"label\":\"v2\"}}\n";
        let kept = parse_scan(scan);
        assert_eq!(kept.len(), 2);
        let s = host_status("web1", &kept);
        assert_eq!(s.state, "standing");
        assert_eq!(s.run_id.as_deref(), Some("20261201T000000Z-aaaaaa"));
        assert_eq!(s.label.as_deref(), Some("v1"));
        assert_eq!(
            (s.user.as_deref(), s.controller.as_deref()),
            (Some("ops"), Some("c1"))
        );
        assert_eq!(s.rolled_back, ["20261202T000000Z-bbbbbb (restored)"]);

        let pending = parse_scan("@@run pending 20261203T000000Z-cccccc /s\nnot json\n");
        let s = host_status("web2", &pending);
        assert_eq!(s.state, "rollback_incomplete");
        assert_eq!(s.label, None);
        assert_eq!(host_status("web3", &[]).state, "unchanged");
        let all_back = parse_scan("@@run restored 20261203T000000Z-cccccc /s\n{}\n");
        assert_eq!(host_status("web4", &all_back).state, "rolled_back");
    }

    #[test]
    fn limit_patterns() {
        for (p, h, want) in [
            ("web1", "web1", true),
            ("web*", "web12", true),
            ("web?", "web12", false),
            ("db,web1", "web1", true),
            ("db:web2", "web1", false),
            ("all", "x", true),
        ] {
            assert_eq!(matches(p, h), want, "{p} {h}");
        }
    }
}
