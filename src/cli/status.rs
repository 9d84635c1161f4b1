//! `rdeploy status`: per host, the release it runs and the run that put it there, read from
//! the controller's run journals.
//!
//! Owns the per-host reading of every journal, oldest run first: a run's changes stand on a
//! host until a later run changes it or a rollback undoes them there. It must not touch a host.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::args::{self, OutputFormat};
use super::runs::{left_by, run_info};
use super::{Exit, Failed};
use crate::backup::journal::{self, Record};
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

/// `rdeploy status [-i INVENTORY] [--limit PATTERN] [--json]`.
pub(crate) fn cmd_status(out: &mut dyn Write, a: args::StatusArgs) -> Result<Exit, Failed> {
    let state = journal::state_dir(a.journals.state_dir.as_deref());
    let inventory = a.inventory.as_ref().map(|p| p.display().to_string());
    let hosts = from_journals(&state, inventory.as_deref(), a.limit.as_deref())?;
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
    use super::matches;

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
