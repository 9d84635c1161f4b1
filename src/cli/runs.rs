//! Runs as records: starting and ending a run's journal, and the commands that read journals
//! back (`rdeploy history`, `rdeploy show`) or undo a run (`rdeploy rollback`).
//!
//! Owns the controller-side view of past runs. Restoring is `rollback.rs`'s, connecting is the
//! transport's; what the user sees goes through the reporter or `report::text`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::args::{self, OutputFormat};
use super::config::AnsibleCfg;
use super::{Checked, Exit, Failed, ssh_options};
use crate::backup::RestoreError;
use crate::backup::journal::{self, Journal, Record};
use crate::diag::{Diagnostic, Diagnostics};
use crate::exec::backups::{RunCtx, checked_state_dir};
use crate::exec::host::{Connection, Opening};
use crate::exec::{RunOptions, Summary};
use crate::inventory::Inventory;
use crate::report;
use crate::report::events::Event;
use crate::report::run::{Format, Reporter};
use crate::rollback::{self, HostRollback, Scope};
use crate::transport::Become;

fn invalid(msg: impl Into<String>) -> Failed {
    Failed::Invalid(Diagnostics::from(Diagnostic::options(msg)))
}

/// A run id no journal under the state directory has yet.
pub(crate) fn fresh_run_id(state_dir: Option<&Path>) -> String {
    let state = journal::state_dir(state_dir);
    let mut id = journal::new_run_id();
    for _ in 0..16 {
        if !journal::journal_path(&state, &id).exists() {
            break;
        }
        id = journal::new_run_id();
    }
    id
}

/// Opens the journal of a new run and records its start.
pub(crate) fn start(a: &args::RunArgs, c: &Checked, run_id: String) -> Result<RunCtx, Failed> {
    // Checked before the journal exists: a mistake leaves no run behind.
    let change_time = match (
        &a.unattended.change_time,
        c.settings.extra_vars.get("release_time"),
    ) {
        (Some(t), _) => Some(
            super::stats::parse_instant(t).map_err(|e| invalid(format!("--change-time: {e}")))?,
        ),
        (None, Some(v)) => {
            let t = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some(
                super::stats::parse_instant(&t)
                    .map_err(|e| invalid(format!("the extra variable release_time: {e}")))?,
            )
        }
        (None, None) => None,
    };
    let state = journal::state_dir(a.state_dir.as_deref());
    let journal = Journal::create(&state, &run_id).map_err(|e| {
        invalid(format!(
            "cannot create the run journal under {} ({e}); set --state-dir",
            state.display()
        ))
    })?;
    journal.note(&Record::RunStart {
        run_id: run_id.clone(),
        playbook: c.settings.playbook.display().to_string(),
        inventory: c
            .settings
            .inventory
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        limit: c.settings.limit.clone(),
        cwd: std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        started: journal::now(),
        resumed_from: a.resume.clone(),
        forced_over: a.force_over.clone(),
        user: Some(super::lock::account_name()),
        controller: Some(super::lock::host_name()),
        label: a.unattended.label.clone(),
        change_time,
    });
    let local = std::path::absolute(state.join("local")).unwrap_or_else(|_| state.join("local"));
    let holder = format!(
        "{run_id} from {} since {}",
        super::lock::host_name(),
        journal::rfc3339(journal::now())
    );
    let who = json!({
        "user": super::lock::account_name(),
        "controller": super::lock::host_name(),
        "playbook": c.settings.playbook.display().to_string(),
        "started": journal::rfc3339(journal::now()),
        "label": a.unattended.label,
    });
    Ok(RunCtx {
        holder,
        run_id,
        journal,
        local_state_dir: local.display().to_string(),
        who,
        release: std::sync::Mutex::new(None),
    })
}

/// Records the run's end.
pub fn end(run: &RunCtx, summary: &Summary, exit: Exit) {
    run.journal.note(&Record::RunEnd {
        outcome: outcome_word(exit).into(),
        exit_code: exit as i32,
        ended: journal::now(),
        hosts_changed: summary.changed_hosts.clone(),
        forced: false,
    });
}

/// The journal's and the report's word for how a run ended.
pub(crate) fn outcome_word(exit: Exit) -> &'static str {
    match exit {
        Exit::Success => "success",
        Exit::ChangesPending => "changes_pending",
        Exit::Deadline => "deadline",
        Exit::AwaitingApproval => "awaiting-approval",
        Exit::OutsideWindow => "outside-window",
        Exit::Locked => "locked",
        Exit::RolledBack => "rolled_back",
        Exit::RollbackIncomplete => "rollback_incomplete",
        Exit::HostKeyRefused => "host_key_refused",
        Exit::ControllerExhausted => "controller_exhausted",
        Exit::Interrupted | Exit::Terminated => "interrupted",
        _ => "failed",
    }
}

/// One past run, summarised from its journal.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct RunInfo {
    pub(crate) run_id: String,
    pub(crate) playbook: String,
    pub(crate) started: Option<String>,
    pub(crate) ended: Option<String>,
    /// `success`, `failed`, `rolled_back`, ..., or `unfinished` (no end record: killed).
    pub(crate) outcome: String,
    pub(crate) hosts_changed: Vec<String>,
    pub(crate) release: Option<String>,
    /// `--label`, else the last play's `release_label`.
    pub(crate) label: Option<String>,
    /// Who started it and from which controller.
    pub(crate) user: Option<String>,
    pub(crate) controller: Option<String>,
    /// The inventory sources as given, and the folder they are relative to.
    pub(crate) inventory: Vec<String>,
    #[serde(skip)]
    pub(crate) cwd: String,
    /// Hosts restored by a later `rdeploy rollback` of this run.
    pub(crate) rolled_back_hosts: Vec<String>,
    /// Unix seconds of the start.
    #[serde(skip)]
    pub(crate) started_at: Option<u64>,
    /// Unix seconds of the end.
    #[serde(skip)]
    pub(crate) ended_at: Option<u64>,
    /// When the change it deploys was made (`--change-time`), unix seconds.
    #[serde(skip)]
    pub(crate) change_at: Option<u64>,
}

/// The same path as `given` from the current folder: `p` as recorded (relative to `cwd`).
fn same_path(cwd: &str, p: &str, given: &str) -> bool {
    let abs = |base: &Path, x: &str| {
        let j = base.join(x);
        std::fs::canonicalize(&j).unwrap_or_else(|_| std::path::absolute(&j).unwrap_or(j))
    };
    let here = std::env::current_dir().unwrap_or_default();
    p == given || abs(Path::new(cwd), p) == abs(&here, given)
}

impl RunInfo {
    /// Whether the run's playbook is `given` (as given to `run`, the same file, or its name).
    fn is_playbook(&self, given: &str) -> bool {
        same_path(&self.cwd, &self.playbook, given)
            || Path::new(&self.playbook).file_name() == Some(std::ffi::OsStr::new(given))
    }

    /// Whether the run used the inventory `given` (the environment).
    pub(crate) fn is_environment(&self, given: &str) -> bool {
        self.inventory
            .iter()
            .any(|i| same_path(&self.cwd, i, given))
    }
}

pub(crate) fn run_info(run_id: &str, recs: &[Record]) -> RunInfo {
    let mut info = RunInfo {
        run_id: run_id.to_string(),
        outcome: "unfinished".into(),
        ..RunInfo::default()
    };
    for r in recs {
        match r {
            Record::RunStart {
                playbook,
                started,
                user,
                controller,
                label,
                inventory,
                cwd,
                change_time,
                ..
            } => {
                info.change_at = *change_time;
                info.playbook = playbook.clone();
                info.user = user.clone();
                info.controller = controller.clone();
                info.label = label.clone();
                info.inventory = inventory.clone();
                info.cwd = cwd.clone();
                info.started = Some(journal::rfc3339(*started));
                info.started_at = Some(*started);
            }
            Record::Play {
                release: Some(rel), ..
            } => info.release = Some(rel.clone()),
            Record::Rollback { host, error, .. }
                if error.is_none() && !info.rolled_back_hosts.contains(host) =>
            {
                info.rolled_back_hosts.push(host.clone());
            }
            Record::RunEnd {
                outcome,
                ended,
                hosts_changed,
                ..
            } => {
                info.outcome = outcome.clone();
                info.ended = Some(journal::rfc3339(*ended));
                info.ended_at = Some(*ended);
                info.hosts_changed = hosts_changed.clone();
            }
            _ => {}
        }
    }
    if info.label.is_none() {
        info.label = info.release.clone();
    }
    // A killed run has no end record: the hosts it set out to change are in its intents.
    if info.ended_at.is_none() {
        for r in recs {
            if let Record::Intent { host, .. } = r
                && !info.hosts_changed.contains(host)
            {
                info.hosts_changed.push(host.clone());
            }
        }
    }
    info
}

/// What an unfinished run left on one host.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct LeftOn {
    /// Steps it changed and finished.
    pub(crate) done: usize,
    /// Steps with an intent and no result after it: `(step, task)`.
    pub(crate) mid_flight: Vec<(u32, String)>,
}

/// Per host, what the run's journal says it left: every host with an intent that no
/// successful `rdeploy rollback` of the run restored since.
pub(crate) fn left_by(recs: &[Record]) -> BTreeMap<String, LeftOn> {
    let mut left: BTreeMap<String, LeftOn> = BTreeMap::new();
    for r in recs {
        match r {
            Record::Intent {
                host, step, task, ..
            } => left
                .entry(host.clone())
                .or_default()
                .mid_flight
                .push((*step, task.clone())),
            Record::Result { host, .. } => {
                if let Some(l) = left.get_mut(host) {
                    l.done += l.mid_flight.len();
                    l.mid_flight.clear();
                }
            }
            Record::Rollback {
                host, error: None, ..
            } => {
                left.remove(host);
            }
            _ => {}
        }
    }
    left
}

/// Refuses (exit 4, before anything is touched) a run over an earlier run on the same hosts
/// that was killed: its journal has no end record, no later run resumed it or was forced over
/// it, and no live process holds its lock. Its hosts may be half updated; a new run's backups
/// would capture that state, so that rolling the new run back leaves them half updated.
/// `holding` says whether this run holds its own lock (not with `--no-lock`).
pub(crate) fn refuse_over_unfinished(
    a: &args::RunArgs,
    c: &Checked,
    holding: bool,
) -> Result<(), Failed> {
    let state = journal::state_dir(a.state_dir.as_deref());
    let ours: std::collections::BTreeSet<&str> = c
        .plan
        .plays
        .iter()
        .flat_map(|p| p.hosts.iter().map(String::as_str))
        .collect();
    let our_lock = super::lock::lock_path(&state, &c.settings.inventory, &c.settings.playbook);
    let mut journals = Vec::new();
    for id in journal::run_ids(&state).unwrap_or_default() {
        if let Ok(read) = journal::read(&journal::journal_path(&state, &id)) {
            journals.push((id, read.records));
        }
    }
    let mut settled: std::collections::HashSet<String> = a.force_over.iter().cloned().collect();
    settled.extend(a.resume.iter().cloned());
    for (_, recs) in &journals {
        for r in recs {
            if let Record::RunStart {
                resumed_from,
                forced_over,
                ..
            } = r
            {
                settled.extend(resumed_from.iter().cloned());
                settled.extend(forced_over.iter().cloned());
            }
        }
    }
    let mut msgs = Vec::new();
    for (id, recs) in &journals {
        if settled.contains(id) || recs.iter().any(|r| matches!(r, Record::RunEnd { .. })) {
            continue;
        }
        let Some((playbook, inventory, cwd)) = recs.iter().find_map(|r| match r {
            Record::RunStart {
                playbook,
                inventory,
                cwd,
                ..
            } => Some((playbook, inventory, cwd)),
            _ => None,
        }) else {
            continue;
        };
        // Still running (another playbook of this controller, or this one under --no-lock):
        // not a killed run. The lock this run holds itself says nothing.
        let cwd = Path::new(cwd);
        let inv: Vec<PathBuf> = inventory.iter().map(|i| cwd.join(i)).collect();
        let theirs = super::lock::lock_path(&state, &inv, &cwd.join(playbook));
        if !(holding && theirs == our_lock) && super::lock::is_held(&theirs) {
            continue;
        }
        let hosts: Vec<String> = left_by(recs)
            .into_iter()
            .filter(|(h, _)| ours.contains(h.as_str()))
            .map(|(h, l)| {
                let steps: Vec<String> = l
                    .mid_flight
                    .iter()
                    .map(|(n, t)| format!("step {n} '{t}'"))
                    .collect();
                match (steps.is_empty(), l.done) {
                    (true, n) => format!("{h} ({n} step(s) done, the run stopped after them)"),
                    (false, _) => format!("{h} ({} left mid-flight)", steps.join(", ")),
                }
            })
            .collect();
        if !hosts.is_empty() {
            msgs.push(format!(
                "run {id} ({playbook}) did not finish and left these hosts part-way: {}; \
                 finish it with `rdeploy resume {id}` or undo it with `rdeploy rollback {id}` \
                 (or start anyway with --force-over {id})",
                hosts.join("; ")
            ));
        }
    }
    if msgs.is_empty() {
        return Ok(());
    }
    let mut d = Diagnostics::default();
    for m in msgs {
        d.push(Diagnostic::options(m));
    }
    Err(Failed::Invalid(d))
}

/// For `rdeploy rollback RUN_ID`: the later runs (by start) whose intents touched a path this
/// run also changed, on the same host, and that were not themselves rolled back on that host.
/// Rolling the older run back would silently undo their changes to those paths.
fn later_runs_over(state: &Path, run_id: &str, recs: &[Record]) -> Vec<String> {
    let mut mine: std::collections::HashSet<(String, String)> = Default::default();
    for r in recs {
        if let Record::Intent { host, paths, .. } = r {
            mine.extend(paths.iter().map(|p| (host.clone(), p.clone())));
        }
    }
    let mut out = Vec::new();
    for id in journal::run_ids(state).unwrap_or_default() {
        if id.as_str() <= run_id {
            continue;
        }
        let Ok(journal::Read { records: later, .. }) =
            journal::read(&journal::journal_path(state, &id))
        else {
            continue;
        };
        let undone: std::collections::HashSet<&str> = later
            .iter()
            .filter_map(|r| match r {
                Record::Rollback {
                    host, error: None, ..
                } => Some(host.as_str()),
                _ => None,
            })
            .collect();
        let mut touched: Vec<String> = later
            .iter()
            .filter_map(|r| match r {
                Record::Intent { host, paths, .. } if !undone.contains(host.as_str()) => Some(
                    paths
                        .iter()
                        .filter(|p| mine.contains(&(host.clone(), (*p).clone())))
                        .map(|p| format!("{host}:{p}"))
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect();
        touched.dedup();
        if !touched.is_empty() {
            let more = touched.len().saturating_sub(3);
            touched.truncate(3);
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            out.push(format!("{id} ({}{tail})", touched.join(", ")));
        }
    }
    out
}

/// `rdeploy history [--since WHEN] [--stats]`.
pub(crate) fn cmd_history(out: &mut dyn Write, a: args::HistoryArgs) -> Result<Exit, Failed> {
    let now = journal::now();
    let since = match a.since.as_deref() {
        None => None,
        Some(w) => Some(super::stats::parse_since(w, now).map_err(invalid)?),
    };
    let state = journal::state_dir(a.journals.state_dir.as_deref());
    let mut runs = Vec::new();
    for id in journal::run_ids(&state)? {
        let recs = journal::read(&journal::journal_path(&state, &id))?.records;
        let info = run_info(&id, &recs);
        if since.is_none_or(|s| info.started_at.is_some_and(|t| t >= s))
            && a.playbook.as_deref().is_none_or(|p| info.is_playbook(p))
            && a.inventory
                .as_deref()
                .is_none_or(|i| info.is_environment(i))
            && a.label
                .as_deref()
                .is_none_or(|l| info.label.as_deref() == Some(l))
        {
            runs.push(info);
        }
    }
    if a.stats {
        let stats = super::stats::per_playbook(&runs, since, now);
        match a.journals.output {
            OutputFormat::Json => report::json_pretty(
                out,
                &json!({"since": since.map(journal::rfc3339), "until": journal::rfc3339(now),
                    "playbooks": stats}),
            )?,
            OutputFormat::Human => report::text(out, &super::stats::table(&stats))?,
        }
        return Ok(Exit::Success);
    }
    match a.journals.output {
        OutputFormat::Json => {
            for r in &runs {
                report::text(out, &serde_json::to_string(r).unwrap_or_default())?;
            }
        }
        OutputFormat::Human => {
            if runs.is_empty() {
                report::text(out, &format!("no runs recorded under {}", state.display()))?;
            }
            for r in &runs {
                report::text(out, &history_line(r))?;
            }
        }
    }
    Ok(Exit::Success)
}

fn history_line(r: &RunInfo) -> String {
    let mut line = format!(
        "{}  {:<20} {:<20} {:<20} {:<19} changed={}",
        r.run_id,
        r.playbook,
        r.started.as_deref().unwrap_or("-"),
        r.ended.as_deref().unwrap_or("-"),
        r.outcome,
        r.hosts_changed.len()
    );
    if let Some(rel) = &r.label {
        line.push_str(&format!(" release={rel}"));
    }
    if let Some(u) = &r.user {
        line.push_str(&format!(
            " by={u}@{}",
            r.controller.as_deref().unwrap_or("?")
        ));
    }
    if !r.rolled_back_hosts.is_empty() {
        line.push_str(&format!(" rolled-back={}", r.rolled_back_hosts.len()));
    }
    line
}

/// The run's journal, `None` when there is none. Lines it skipped are in [`journal::Read`]'s
/// `ignored`: [`say_ignored`] tells the user.
fn load_journal(state: &Path, run_id: &str) -> Result<Option<journal::Read>, Failed> {
    if !journal::valid_run_id(run_id) {
        return Err(invalid(format!("'{run_id}' is not a run id")));
    }
    let path = journal::journal_path(state, run_id);
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(journal::read(&path)?))
}

/// On stderr, once per line: each journal line of the run that was not read, and why.
fn say_ignored(state: &Path, run_id: &str, read: &journal::Read) -> Result<(), Failed> {
    if read.ignored.is_empty() {
        return Ok(());
    }
    let path = journal::journal_path(state, run_id);
    let mut err = std::io::stderr().lock();
    for l in &read.ignored {
        report::text(&mut err, &format!("rdeploy: {l} ({})", path.display()))?;
    }
    Ok(())
}

/// `rdeploy show RUN_ID`: the run's header, then per host its steps, results, probes and
/// rollbacks.
pub(crate) fn cmd_show(out: &mut dyn Write, a: args::ShowArgs) -> Result<Exit, Failed> {
    let state = journal::state_dir(a.journals.state_dir.as_deref());
    let Some(read) = load_journal(&state, &a.run_id)? else {
        return Err(invalid(format!(
            "no journal for run {} under {}",
            a.run_id,
            state.display()
        )));
    };
    say_ignored(&state, &a.run_id, &read)?;
    if !read.has_start() {
        report::text(
            &mut std::io::stderr().lock(),
            &format!(
                "rdeploy: the journal of run {id} has no start record (it is empty or damaged); \
                 `rdeploy rollback {id} -i INVENTORY` restores from the hosts' manifests",
                id = a.run_id
            ),
        )?;
    }
    let recs = read.records;
    let info = run_info(&a.run_id, &recs);
    if let Some(file) = &a.html {
        let header = crate::report::html::Header {
            run_id: info.run_id.clone(),
            playbook: info.playbook.clone(),
            outcome: info.outcome.clone(),
            started: info.started.clone(),
            ended: info.ended.clone(),
            who: info.user.as_ref().map(|u| match &info.controller {
                Some(c) => format!("{u}@{c}"),
                None => u.clone(),
            }),
            label: info.label.clone().or_else(|| info.release.clone()),
        };
        let page = crate::report::html::page(&header, &recs);
        crate::report::summary::write_text(file, &page)
            .map_err(|e| invalid(format!("--html {}: {e}", file.display())))?;
    }
    let mut hosts: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut analysis: Vec<Value> = Vec::new();
    for r in &recs {
        if let Record::Measurement {
            play,
            batch,
            metric,
            hosts,
            n,
            verdict,
            value,
            observed,
            at_s,
        } = r
        {
            analysis.push(json!({"play": play + 1, "batch": batch, "metric": metric,
                "hosts": hosts, "n": n, "verdict": verdict, "value": value,
                "observed": observed, "at_s": at_s}));
            continue;
        }
        let (host, v) = match r {
            Record::Intent {
                host,
                step,
                task,
                paths,
            } => (host, json!({"step": step, "task": task, "intent": paths})),
            Record::Result {
                host,
                task,
                status,
                step,
            } => (host, json!({"task": task, "status": status, "step": step})),
            Record::Probe {
                host,
                probe,
                passed,
                observed,
            } => (
                host,
                json!({"probe": probe, "passed": passed, "observed": observed}),
            ),
            Record::Rollback {
                host,
                restored,
                error,
                ..
            } => (
                host,
                json!({"rollback": {"restored": restored, "error": error}}),
            ),
            Record::SwitchBack {
                host,
                restored,
                error,
                ..
            } => (
                host,
                json!({"switch_back": {"restored": restored, "error": error}}),
            ),
            _ => continue,
        };
        hosts.entry(host.clone()).or_default().push(v);
    }
    match a.journals.output {
        OutputFormat::Json => {
            report::json_pretty(
                out,
                &json!({"run": info, "hosts": hosts, "analysis": analysis}),
            )?;
        }
        OutputFormat::Human => {
            report::text(
                out,
                &format!(
                    "run {} ({}): {} from {} to {}",
                    info.run_id,
                    info.playbook,
                    info.outcome,
                    info.started.as_deref().unwrap_or("-"),
                    info.ended.as_deref().unwrap_or("-")
                ),
            )?;
            for (h, events) in &hosts {
                report::text(out, &format!("{h}:"))?;
                for e in events {
                    let line = if let Some(p) = e.get("intent") {
                        format!("  step {} {}: changes {}", e["step"], e["task"], p)
                    } else if let Some(s) = e.get("status") {
                        format!("  {} {}", s.as_str().unwrap_or("?"), e["task"])
                    } else if let Some(p) = e.get("probe") {
                        let ok = if e["passed"] == true {
                            "passed"
                        } else {
                            "FAILED"
                        };
                        format!("  probe {} {ok}: {}", p, e["observed"])
                    } else if let Some(sb) = e.get("switch_back") {
                        format!("  switch-back {sb}")
                    } else {
                        format!("  rollback {}", e["rollback"])
                    };
                    report::text(out, &line)?;
                }
            }
            if !analysis.is_empty() {
                report::text(out, "analysis:")?;
            }
            for m in &analysis {
                let line = format!(
                    "  play {} batch {} at {:.1}s: {} #{} {} [{}]: {}",
                    m["play"],
                    m["batch"],
                    m["at_s"].as_f64().unwrap_or(0.0),
                    m["metric"].as_str().unwrap_or("?"),
                    m["n"],
                    m["verdict"].as_str().unwrap_or("?"),
                    m["hosts"]
                        .as_array()
                        .map(|h| h
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default(),
                    m["observed"].as_str().unwrap_or("")
                );
                report::text(out, &line)?;
            }
        }
    }
    Ok(Exit::Success)
}

/// `rdeploy rollback RUN_ID`: every host the run backed up, restored to before the run, from
/// the manifests on the hosts. Without the run's journal (another controller), or with a
/// journal that is empty or damaged (no start record, lines other than a torn last one that
/// did not parse), `-i` names the inventory (a damaged journal that names its own is used) and
/// every host in it (or `--limit`) is asked for its manifest; the journal's host records still
/// say where those hosts keep it.
pub(crate) fn cmd_rollback(a: args::RollbackArgs) -> Result<Exit, Failed> {
    restore_run(a, Scope::All)
}

/// `rdeploy switch-back RUN`: only the load balancer switches of the run are undone (each
/// server's state and weight as before the run); what the run deployed stays.
pub(crate) fn cmd_switch_back(a: args::RollbackArgs) -> Result<Exit, Failed> {
    restore_run(a, Scope::Switch)
}

/// `rollback` (every backup of the run) or `switch-back` (its load balancer switches).
fn restore_run(a: args::RollbackArgs, scope: Scope) -> Result<Exit, Failed> {
    super::install_vault(&a.vault)?;
    let state = journal::state_dir(a.state_dir.as_deref());
    let read = load_journal(&state, &a.run_id)?;
    if let Some(read) = &read {
        say_ignored(&state, &a.run_id, read)?;
    }
    // Trust the journal for which hosts to ask only when no record can be missing from it (a
    // torn last line lost only a record whose writer never went on).
    let ask_every_host = read.as_ref().is_none_or(journal::Read::damaged);
    let recs: Option<Vec<Record>> = read.map(|r| r.records);
    let (sources, base) = match (&recs, a.inventory.is_empty()) {
        (_, false) => (a.inventory.clone(), None),
        (Some(recs), true) => match recs.iter().find_map(|r| match r {
            Record::RunStart { inventory, cwd, .. } => Some((inventory.clone(), cwd.clone())),
            _ => None,
        }) {
            Some((inv, cwd)) => (inv.into_iter().map(PathBuf::from).collect(), Some(cwd)),
            None => {
                return Err(invalid(format!(
                    "the journal of run {} ({}) has no start record (it is empty or damaged): \
                     give the inventory with -i, and every host in it is asked for the run's \
                     manifest",
                    a.run_id,
                    journal::journal_path(&state, &a.run_id).display()
                )));
            }
        },
        (None, true) => {
            return Err(invalid(format!(
                "no journal for run {} under {}: on another controller, give the inventory with -i",
                a.run_id,
                state.display()
            )));
        }
    };
    let sources: Vec<PathBuf> = sources
        .into_iter()
        .map(|p| match &base {
            Some(cwd) if p.is_relative() => Path::new(cwd).join(p),
            _ => p,
        })
        .collect();
    let _lock = match (&recs, a.lock.no_lock) {
        (Some(recs), false) => rollback_lock(&state, recs, &sources, &a)?,
        _ => None,
    };
    if let Some(recs) = &recs {
        let later = later_runs_over(&state, &a.run_id, recs);
        if !later.is_empty() && !a.force && scope == Scope::All {
            return Err(invalid(format!(
                "later runs changed the same paths since run {}: {}; rolling {} back would undo \
                 their changes too. Roll them back first (newest first), or give --force",
                a.run_id,
                later.join("; "),
                a.run_id
            )));
        }
    }
    let mut inv = Inventory::load(&sources, None)?;
    // Hosts the run added with `add_host` are reached as the journal recorded them.
    for r in recs.iter().flatten() {
        if let Record::AddedHost { host, groups, vars } = r
            && inv.hosts.get(host).is_none_or(|h| h.implicit)
        {
            inv.add_dynamic_host(host, groups, vars);
        }
    }
    // Host → (state dir, how the state folder was prepared). An empty dir: the default, looked
    // up on the host.
    let mut targets: BTreeMap<String, (String, Option<Become>)> = BTreeMap::new();
    if ask_every_host {
        let all = inv.select("all").map_err(invalid)?;
        for h in all {
            let vars = inv.vars_of(h);
            let dir = match vars.get("rdeploy_state_dir") {
                Some(Value::String(s)) => checked_state_dir(s).map_err(invalid)?,
                _ => String::new(),
            };
            targets.insert(h.name.clone(), (dir, None));
        }
    }
    for r in recs.iter().flatten() {
        if let Record::Host {
            host,
            state_dir,
            become_user,
            become_method,
        } = r
        {
            let prepared_as = become_user.as_ref().map(|u| Become {
                user: u.clone(),
                method: become_method.unwrap_or_default(),
                password: None,
            });
            targets.insert(host.clone(), (state_dir.clone(), prepared_as));
        }
    }
    if let Some(limit) = a.limit.as_deref() {
        let keep: Vec<String> = inv
            .select(limit)
            .map_err(|m| invalid(format!("--limit '{limit}': {m}")))?
            .into_iter()
            .map(|h| h.name.clone())
            .collect();
        targets.retain(|h, _| keep.contains(h));
    }
    if targets.is_empty() {
        if a.limit.is_none()
            && let Some(l) = &_lock
        {
            // Nothing to restore: a run awaiting approval that changed nothing lets go.
            super::lock::release_hold(l.path(), &a.run_id);
        }
        return Err(Failed::NoHosts(format!(
            "run {} changed no host that is selected",
            a.run_id
        )));
    }
    let cfg = AnsibleCfg::discover()?;
    let (ssh, ssh_config) = ssh_options(&a.connect, cfg.as_ref())?;
    let opts = Arc::new(RunOptions {
        forks: a.forks.unwrap_or(50).max(1),
        ssh,
        ssh_config: Arc::new(ssh_config),
        ..RunOptions::default()
    });
    let format = match a.output {
        OutputFormat::Human => Format::Human,
        OutputFormat::Json => Format::Json,
    };
    let mut reporter = Reporter::stdout(format, 0, false);
    let journal = recs
        .as_ref()
        .and_then(|_| Journal::create(&state, &a.run_id).ok());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let inv = Arc::new(inv);
    let mut results: Vec<HostRollback> = Vec::new();
    let mut clean = true;
    let local = Arc::new(
        std::path::absolute(state.join("local"))
            .unwrap_or_else(|_| state.join("local"))
            .display()
            .to_string(),
    );
    for group in rollback_groups(recs.as_deref().unwrap_or_default(), &targets) {
        reporter.emit(&Event::RollbackStart {
            hosts: &group,
            switch_back: scope == Scope::Switch,
        });
        let done: Vec<HostRollback> = runtime.block_on(async {
            let sem = Arc::new(Semaphore::new(opts.forks));
            let mut set = JoinSet::new();
            for host in group {
                let Some((dir, prepared_as)) = targets.get(&host).cloned() else {
                    continue;
                };
                let (opts, inv, sem) = (Arc::clone(&opts), Arc::clone(&inv), Arc::clone(&sem));
                let (run_id, local) = (a.run_id.clone(), Arc::clone(&local));
                set.spawn(async move {
                    let _permit = sem.acquire_owned().await;
                    let t = Target {
                        host: &host,
                        state_dir: &dir,
                        run_id: &run_id,
                        prepared_as,
                        local_state_dir: &local,
                        scope,
                    };
                    restore_one(&inv, &opts, t).await
                });
            }
            joined(set, |r| &r.host).await
        });
        for r in &done {
            reporter.emit(&Event::Rollback(r));
            clean &= r.clean();
            if let Some(j) = &journal {
                let (host, run_id) = (r.host.clone(), a.run_id.clone());
                let (restored, error) = (r.restored, (!r.clean()).then(|| r.errors_line()));
                j.note(&match scope {
                    Scope::All => Record::Rollback {
                        host,
                        run_id,
                        restored,
                        error,
                    },
                    Scope::Switch => Record::SwitchBack {
                        host,
                        run_id,
                        restored,
                        error,
                    },
                });
            }
        }
        results.extend(done);
    }
    if scope == Scope::Switch && results.iter().all(|r| r.nothing_recorded) {
        return Err(Failed::NoHosts(format!(
            "run {} switched nothing on the selected hosts: switch-back undoes what its \
             haproxy tasks and its tasks tagged `switch` changed, and none changed anything",
            a.run_id
        )));
    }
    if clean
        && scope == Scope::All
        && let Some(l) = &_lock
    {
        // A run awaiting approval, rolled back: its hold on the lock ends.
        super::lock::release_hold(l.path(), &a.run_id);
    }
    Ok(if results.iter().any(HostRollback::host_key_refused) {
        Exit::HostKeyRefused
    } else if clean {
        Exit::Success
    } else {
        Exit::RollbackIncomplete
    })
}

/// Every per-host answer of `set` that finished (a task that panicked has none), by host name.
pub(crate) async fn joined<T: 'static>(
    mut set: JoinSet<T>,
    host: impl Fn(&T) -> &String,
) -> Vec<T> {
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(r) = r {
            out.push(r);
        }
    }
    out.sort_by(|a, b| host(a).cmp(host(b)));
    out
}

/// The groups `rdeploy rollback` restores `targets` in, one after the other: the run's batches
/// as its journal recorded them, newest first, each host once (in the newest batch it was in),
/// so that no more hosts are being restored at once than the run deployed at once; then, in one
/// group, the hosts no batch names (no journal: another controller).
fn rollback_groups<T>(recs: &[Record], targets: &BTreeMap<String, T>) -> Vec<Vec<String>> {
    let mut taken: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut groups = Vec::new();
    for r in recs.iter().rev() {
        if let Record::Batch { hosts, .. } = r {
            let group: Vec<String> = hosts
                .iter()
                .filter(|h| targets.contains_key(*h) && taken.insert(h.as_str()))
                .cloned()
                .collect();
            if !group.is_empty() {
                groups.push(group);
            }
        }
    }
    let rest: Vec<String> = targets
        .keys()
        .filter(|h| !taken.contains(h.as_str()))
        .cloned()
        .collect();
    if !rest.is_empty() {
        groups.push(rest);
    }
    groups
}

/// The lock of the run's inventory and playbook, so that a rollback and a run of them never
/// overlap. Without the run's journal (another controller) there is no playbook to lock, and
/// this controller's lock would not stop the other's runs anyway.
fn rollback_lock(
    state: &Path,
    recs: &[Record],
    sources: &[PathBuf],
    a: &args::RollbackArgs,
) -> Result<Option<super::lock::RunLock>, Failed> {
    let Some((playbook, cwd)) = recs.iter().find_map(|r| match r {
        Record::RunStart { playbook, cwd, .. } => Some((playbook.clone(), cwd.clone())),
        _ => None,
    }) else {
        return Ok(None);
    };
    let wait = super::unattended::lock_wait(&a.lock).map_err(Diagnostics::from)?;
    let what = format!("rollback {}", a.run_id);
    let playbook = Path::new(&cwd).join(playbook);
    let l = super::unattended::take_lock(state, sources, &playbook, wait, &what, Some(&a.run_id))?;
    super::lock::refuse_held(l.path(), Some(&a.run_id))?;
    Ok(Some(l))
}

/// One host to roll back, as `rdeploy rollback` found it.
struct Target<'a> {
    host: &'a str,
    /// Its state directory; empty: the default, looked up on the host.
    state_dir: &'a str,
    run_id: &'a str,
    /// How its state folder was prepared (the journal's host record).
    prepared_as: Option<Become>,
    /// This controller's state folder for hosts on the local connection.
    local_state_dir: &'a str,
    /// What to restore.
    scope: Scope,
}

/// The host's become password (`ansible_become_password`, else `ansible_become_pass`) from
/// the inventory, as a plain or vault value; `Err` when it is a template, which rollback does
/// not render.
fn become_password(vars: &serde_json::Map<String, Value>) -> Result<Option<String>, String> {
    for k in ["ansible_become_password", "ansible_become_pass"] {
        match vars.get(k) {
            None | Some(Value::Null) => continue,
            Some(Value::String(p)) if p.contains("{{") || p.contains("{%") => {
                return Err(format!(
                    "{k} as a template is not supported by rdeploy rollback: give it as a plain \
                     or vault-encrypted value in the inventory"
                ));
            }
            Some(Value::String(p)) => {
                crate::vault::redact::register(p);
                return Ok(Some(p.clone()));
            }
            Some(other) => return Ok(Some(other.to_string())),
        }
    }
    Ok(None)
}

/// A host of the inventory as a command outside a run (`rollback`, `status --from-hosts`)
/// reaches it: its variables and connection, and the connection opened.
pub(crate) struct Reached {
    pub(crate) vars: serde_json::Map<String, Value>,
    pub(crate) conn: Connection,
    pub(crate) tr: crate::transport::AnyTransport,
}

/// Why [`reach`] did not: the inventory or its variables, or the connection.
pub(crate) enum Unreached {
    Config(String),
    Transport(crate::transport::TransportError),
}

/// Opens `host` by its inventory variables, as `rdeploy run` would.
pub(crate) async fn reach(
    inv: &Inventory,
    opts: &RunOptions,
    host: &str,
) -> Result<Reached, Unreached> {
    let h = inv
        .hosts
        .get(host)
        .ok_or_else(|| Unreached::Config("the host is no longer in the inventory".into()))?;
    let vars = inv.vars_of(h);
    let conn = Connection::from_vars(&vars).map_err(Unreached::Config)?;
    let var = |k: &str| vars.get(k).cloned();
    let tr = match Opening::plan(host, &conn, opts, &var) {
        Ok(o) => o.open(opts).await,
        Err(e) => Err(e),
    }
    .map_err(Unreached::Transport)?;
    Ok(Reached { vars, conn, tr })
}

async fn restore_one(inv: &Inventory, opts: &RunOptions, t: Target<'_>) -> HostRollback {
    let (host, run_id) = (t.host, t.run_id);
    let Reached { vars, conn, mut tr } = match reach(inv, opts, host).await {
        Ok(r) => r,
        Err(Unreached::Config(e)) => return HostRollback::failed(host, RestoreError::host(e)),
        Err(Unreached::Transport(e)) => return HostRollback::unusable(host, &e, run_id),
    };
    let password = match become_password(&vars) {
        Ok(p) => p,
        Err(e) => {
            tr.close().await;
            return HostRollback::failed(host, RestoreError::host(e));
        }
    };
    let prepared_as = t.prepared_as.map(|b| b.with_password(password.clone()));
    // The hosts' locks keep a rollback and a run elsewhere apart too.
    let holder = format!(
        "rollback of {run_id} from {} since {}",
        super::lock::host_name(),
        journal::rfc3339(journal::now())
    );
    let lock_dir = Some(t.state_dir).filter(|d| !d.is_empty());
    if let Err(e) = crate::exec::host::lock_host(&mut tr, host, lock_dir, &holder).await {
        tr.close().await;
        return HostRollback::unusable(host, &e, run_id);
    }
    let dir = match t.state_dir {
        "" => {
            let local = (conn == Connection::Local)
                .then(|| crate::exec::backups::local_dir(t.local_state_dir, host));
            default_dir_holding(&mut tr, run_id, local.as_deref()).await
        }
        d => d.to_string(),
    };
    let r = rollback::restore_host(
        &mut tr,
        host,
        &dir,
        run_id,
        prepared_as.as_ref(),
        password.as_deref(),
        t.scope,
    )
    .await;
    tr.close().await;
    r
}

/// Without a state directory from the journal or `rdeploy_state_dir`: the default state
/// directory that holds the run's manifest: on the local connection, this controller's
/// (`local`, as the run used); else `/var/lib/rdeploy` (root's) or the login user's
/// `~/.local/state/rdeploy`; `/var/lib/rdeploy` when none does.
async fn default_dir_holding(
    tr: &mut crate::transport::AnyTransport,
    run_id: &str,
    local: Option<&str>,
) -> String {
    if let Some(l) = local
        && matches!(
            crate::backup::read_manifest(tr, l, run_id, None).await,
            Ok(Some(_))
        )
    {
        return l.to_string();
    }
    let root = crate::backup::DEFAULT_STATE_DIR.to_string();
    if matches!(
        crate::backup::read_manifest(tr, &root, run_id, None).await,
        Ok(Some(_))
    ) {
        return root;
    }
    match crate::backup::whoami(tr, None).await {
        Ok((uid, home)) if uid != 0 => {
            let dir = format!(
                "{}/{}",
                home.trim_end_matches('/'),
                crate::exec::backups::USER_STATE_DIR
            );
            match crate::backup::read_manifest(tr, &dir, run_id, None).await {
                Ok(Some(_)) => dir,
                _ => root,
            }
        }
        _ => root,
    }
}

/// For `--resume RUN_ID`: per play index, the hosts whose batch the run finished. Only a run
/// that was interrupted, stopped by its deadline, or killed (no end record) can be resumed.
pub(crate) fn finished_batches(
    state_dir: Option<&Path>,
    run_id: &str,
) -> Result<std::collections::HashMap<usize, std::collections::HashSet<String>>, Failed> {
    let state = journal::state_dir(state_dir);
    let Some(read) = load_journal(&state, run_id)? else {
        return Err(invalid(format!(
            "no journal for run {run_id} under {}",
            state.display()
        )));
    };
    say_ignored(&state, run_id, &read)?;
    let recs = read.records;
    let info = run_info(run_id, &recs);
    if !matches!(
        info.outcome.as_str(),
        "unfinished" | "interrupted" | "deadline" | "awaiting-approval" | "outside-window"
    ) {
        return Err(invalid(format!(
            "run {run_id} ended ({}): only an interrupted run can be resumed; start a new run",
            info.outcome
        )));
    }
    let mut done: std::collections::HashMap<usize, std::collections::HashSet<String>> =
        Default::default();
    for r in &recs {
        if let Record::BatchEnd { play, hosts, .. } = r {
            done.entry(*play).or_default().extend(hosts.iter().cloned());
        }
    }
    Ok(done)
}

/// Whether run `run_id` ended awaiting approval; `Err` says what it is instead.
fn awaiting(state_dir: Option<&Path>, run_id: &str, verb: &str) -> Result<(), Failed> {
    let state = journal::state_dir(state_dir);
    let Some(read) = load_journal(&state, run_id)? else {
        return Err(invalid(format!(
            "no journal for run {run_id} under {}",
            state.display()
        )));
    };
    let info = run_info(run_id, &read.records);
    if info.outcome != "awaiting-approval" {
        return Err(invalid(format!(
            "run {run_id} is not awaiting approval ({}): nothing to {verb}",
            info.outcome
        )));
    }
    Ok(())
}

/// `rdeploy approve RUN_ID [RUN FLAGS]`: `rdeploy resume` of a run awaiting approval, the
/// gate it stopped at passed.
pub(crate) fn approve_args(a: args::ResumeArgs) -> Result<args::RunArgs, Failed> {
    awaiting(a.state_dir.as_deref(), &a.run_id, "approve")?;
    let mut r = resume_args(a)?;
    r.approved = true;
    Ok(r)
}

/// `rdeploy reject RUN_ID`: `rdeploy rollback` of a run awaiting approval; the lock it held
/// is released once the rollback is done.
pub(crate) fn cmd_reject(a: args::RollbackArgs) -> Result<Exit, Failed> {
    awaiting(a.state_dir.as_deref(), &a.run_id, "reject")?;
    let whole = a.limit.is_none();
    match cmd_rollback(a) {
        // It changed no host: rejected, with nothing to restore.
        Err(Failed::NoHosts(m)) if whole => {
            let note = format!("rdeploy: {m}: nothing to roll back; the run is rejected");
            // A closed stderr loses only this note: the rejection itself is done.
            let _ = crate::report::text(&mut std::io::stderr().lock(), &note);
            Ok(Exit::Success)
        }
        other => other,
    }
}

/// `rdeploy resume RUN_ID [RUN FLAGS]`: `rdeploy run` again with the run's playbook,
/// inventory and limit, and `--resume RUN_ID`.
pub(crate) fn resume_args(a: args::ResumeArgs) -> Result<args::RunArgs, Failed> {
    let state = journal::state_dir(a.state_dir.as_deref());
    let Some(read) = load_journal(&state, &a.run_id)? else {
        return Err(invalid(format!(
            "no journal for run {} under {}",
            a.run_id,
            state.display()
        )));
    };
    // The lines it skipped are told once, by the run it starts (`finished_batches`), or here
    // when it cannot start one.
    let Some((playbook, inventory, limit, cwd)) = read.records.iter().find_map(|r| match r {
        Record::RunStart {
            playbook,
            inventory,
            limit,
            cwd,
            ..
        } => Some((
            playbook.clone(),
            inventory.clone(),
            limit.clone(),
            cwd.clone(),
        )),
        _ => None,
    }) else {
        say_ignored(&state, &a.run_id, &read)?;
        return Err(invalid(format!(
            "the journal of run {} has no start record (it is empty or damaged), so the run \
             cannot be resumed: undo it from the hosts' manifests with `rdeploy rollback {} -i \
             INVENTORY`",
            a.run_id, a.run_id
        )));
    };
    let abs = |p: &str| Path::new(&cwd).join(p).display().to_string();
    let mut argv: Vec<String> = vec!["rdeploy".into(), "run".into(), abs(&playbook)];
    for i in &inventory {
        argv.extend(["-i".into(), abs(i)]);
    }
    if let Some(l) = limit {
        argv.extend(["--limit".into(), l]);
    }
    argv.extend(["--resume".into(), a.run_id.clone()]);
    if let Some(d) = &a.state_dir {
        argv.extend(["--state-dir".into(), d.display().to_string()]);
    }
    argv.extend(a.rest);
    use clap::Parser;
    match args::Cli::try_parse_from(&argv) {
        Ok(args::Cli {
            command: args::Command::Run(r),
        }) => Ok(r),
        Ok(_) => Err(invalid("internal: resume did not build a run")),
        Err(e) => Err(invalid(format!("rdeploy resume: {}", e.to_string().trim()))),
    }
}
