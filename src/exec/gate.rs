//! Between batches: the failure budget, the health gate (probes, `soak`, probes again) and,
//! when either fails, the batch's rollback.
//!
//! Owns deciding whether a batch passed (`max_fail_percentage` must be strictly exceeded; a
//! batch whose every host failed stops the play unless it is `100`; `any_errors_fatal`), running
//! the play's probes on the batch's healthy hosts at once, and the rollback sequence: restore
//! each host's backups newest first, run the play's `rollback:` tasks (and their handlers), then
//! the health gate again; with `rollback_scope: all`, that sequence batch by batch, newest
//! batch first, stopping at a batch that does not come back clean. Probing itself is `probe/`'s; restoring is `rollback.rs`'s. It must
//! not print: everything goes out as events.

use std::sync::Arc;

use tokio::task::JoinSet;

use super::{Outcome, Runner, Scope, task};
use crate::backup::RestoreError;
use crate::backup::journal::Record;
use crate::exec::host::HostState;
use crate::playbook::model::{OnFailure, Play, RollbackScope, Val};
use crate::probe::{self, ProbeOutcome};
use crate::report::events::Event;
use crate::rollback::{self, HostRollback};
use crate::transport::Reach;
use crate::yaml::Node;

fn deadline_passed(play: &Play) -> String {
    format!(
        "the health gate did not pass within its deadline ({}s)",
        play.probe.deadline.map(|d| d.as_secs_f64()).unwrap_or(0.0)
    )
}

/// Which round of probes this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watch {
    /// The health gate (or the gate after a rollback): every outcome is reported.
    Gate,
    /// A round during the soak: only failures are reported.
    Quiet,
    /// The round at the end of the soak.
    AfterSoak,
}

/// Where a batch is: its play (0-based), its index (1-based) and the play's batch count.
#[derive(Clone, Copy, Debug)]
pub struct BatchPos {
    /// The play's index in the playbook.
    pub play: usize,
    /// 1-based batch index.
    pub index: usize,
    /// Batches in the play.
    pub total: usize,
}

/// Whether a batch broke its failure budget: `failed` of `size` hosts failed.
pub fn budget_broken(failed: usize, size: usize, max_fail_percentage: Option<f64>) -> bool {
    if size == 0 || failed == 0 {
        return false;
    }
    let pct = failed as f64 * 100.0 / size as f64;
    match max_fail_percentage {
        Some(m) if m >= 100.0 => false,
        Some(m) => pct > m || failed == size,
        None => failed == size,
    }
}

impl<'r> Runner<'r> {
    /// The batch's verdict: `None` when it passed, else why it failed. Runs the health gate
    /// (and `soak`) only when the failure budget held.
    pub(super) async fn gate(
        &mut self,
        play: &Play,
        (index, total): (usize, usize),
        batch: &[String],
        soak: Option<std::time::Duration>,
    ) -> Option<String> {
        let failed = self.failed_among(batch);
        let fatal = matches!(
            play.keywords.any_errors_fatal,
            Some(Val::Lit { value: true, .. })
        );
        if budget_broken(failed.len(), batch.len(), play.max_fail_percentage)
            || (fatal && !failed.is_empty())
        {
            let names: Vec<&str> = failed.iter().map(|h| h.as_str()).collect();
            return Some(format!(
                "{} of {} hosts failed ({}), over the failure budget{}",
                failed.len(),
                batch.len(),
                names.join(", "),
                match play.max_fail_percentage {
                    Some(m) => format!(" (max_fail_percentage {m})"),
                    None if fatal => " (any_errors_fatal)".to_string(),
                    None => String::new(),
                }
            ));
        }
        if let Some(total) = play.max_failed_total {
            let mut failed: Vec<&str> = self
                .states
                .values()
                .filter(|s| s.failed || s.unreachable || s.gate_failed)
                .map(|s| s.name.as_str())
                .collect();
            if failed.len() > usize::try_from(total).unwrap_or(usize::MAX) {
                failed.sort_unstable();
                return Some(format!(
                    "{} hosts failed in this run ({}), over the failure budget (max_failed total {total})",
                    failed.len(),
                    failed.join(", ")
                ));
            }
        }
        if play.health.is_empty() {
            // Nothing to watch: a soak (or a canary step's pause) is a plain wait, cut short
            // by a signal or the deadline.
            if let Some(soak) = soak {
                let until = self.soak_begins((index, total), soak);
                while tokio::time::Instant::now() < until && !self.stopping() {
                    let step = std::time::Duration::from_millis(200);
                    tokio::time::sleep_until((tokio::time::Instant::now() + step).min(until)).await;
                }
            }
            return None;
        }
        let healthy: Vec<String> = batch
            .iter()
            .filter(|h| !failed.contains(h))
            .cloned()
            .collect();
        let deadline = play.probe.deadline.map(|d| tokio::time::Instant::now() + d);
        if let Some(why) = self
            .probe_hosts(play, &healthy, (index, total), Watch::Gate, deadline)
            .await
        {
            return Some(why);
        }
        if let Some(soak) = soak {
            // The soak watches: the probes run again every round (their interval, at least a
            // second), reporting only failures, so that a failure at minute 3 of 5 fails the
            // batch at minute 3.
            let until = self.soak_begins((index, total), soak);
            let round = play.probe.interval.max(std::time::Duration::from_secs(1));
            loop {
                let next = (tokio::time::Instant::now() + round).min(until);
                match deadline {
                    Some(d) if d < next => {
                        tokio::time::sleep_until(d).await;
                        return Some(deadline_passed(play));
                    }
                    _ => tokio::time::sleep_until(next).await,
                }
                if next >= until || self.stopping() {
                    break;
                }
                if let Some(why) = self
                    .probe_hosts(play, &healthy, (index, total), Watch::Quiet, deadline)
                    .await
                {
                    return Some(format!("during the soak, {why}"));
                }
            }
            return self
                .probe_hosts(play, &healthy, (index, total), Watch::AfterSoak, deadline)
                .await;
        }
        None
    }

    /// Says that the soak of batch `index` of `total` begins; when it ends.
    fn soak_begins(
        &mut self,
        (index, total): (usize, usize),
        soak: std::time::Duration,
    ) -> tokio::time::Instant {
        self.reporter.emit(&Event::Soak {
            index,
            total,
            seconds: soak.as_secs_f64(),
        });
        tokio::time::Instant::now() + soak
    }

    /// The hosts among `hosts` that failed or could not be used.
    fn failed_among<'h>(&self, hosts: &'h [String]) -> Vec<&'h String> {
        hosts
            .iter()
            .filter(|h| {
                self.states
                    .get(*h)
                    .is_some_and(|s| s.failed || s.unreachable)
            })
            .collect()
    }

    /// Runs the play's probes on `hosts` at once; `Some(reason)` when any failed.
    async fn probe_hosts(
        &mut self,
        play: &Play,
        hosts: &[String],
        (index, total): (usize, usize),
        watch: Watch,
        deadline: Option<tokio::time::Instant>,
    ) -> Option<String> {
        if hosts.is_empty() || play.health.is_empty() {
            return None;
        }
        if watch != Watch::Quiet {
            self.reporter.emit(&Event::GateStart {
                index,
                total,
                soak: watch == Watch::AfterSoak,
                hosts,
            });
        }
        let hostvars = self.hostvars();
        let mut set = JoinSet::new();
        let mut failures: Vec<String> = Vec::new();
        let crowded = self.crowded(hosts.len());
        for h in hosts {
            let Some(mut st) = self.states.shift_remove(h) else {
                continue;
            };
            let vars = task::vars_at(&self.shared, &Scope::default(), &hostvars, &mut st, &[]);
            let env = Arc::clone(&self.shared.env);
            let ctx = vars.to_value();
            let render = |n: &Node| probe::render_node(&env, &ctx, n);
            let rendered: Result<Vec<probe::Rendered>, String> = play
                .health
                .iter()
                .map(|p| probe::render(p, &render))
                .collect();
            let settings = play.probe.clone();
            let shared = Arc::clone(&self.shared);
            let sem = Arc::clone(&self.sem);
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let outcomes = match rendered {
                    Err(msg) => vec![ProbeOutcome {
                        probe: "health".into(),
                        passed: false,
                        attempts: 0,
                        observed: msg,
                        elapsed_ms: 0,
                    }],
                    Ok(probes) => {
                        let var = |k: &str| vars.get_json(k).and_then(Result::ok);
                        let probing = async {
                            let tr = st.transport(&shared.opts, &var).await.ok();
                            probe::run_host(&probes, &settings, tr).await
                        };
                        // The host's state always comes back: only the probing is cut short.
                        match deadline {
                            None => probing.await,
                            Some(d) => match tokio::time::timeout_at(d, probing).await {
                                Ok(o) => o,
                                Err(_) => vec![ProbeOutcome {
                                    probe: "health".into(),
                                    passed: false,
                                    attempts: 0,
                                    observed: "the health gate's deadline passed".into(),
                                    elapsed_ms: 0,
                                }],
                            },
                        }
                    }
                };
                if crowded {
                    st.release().await;
                }
                (st, outcomes)
            });
        }
        let mut done: Vec<(HostState, Vec<ProbeOutcome>)> = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(r) => done.push(r),
                Err(e) => failures.push(format!("internal error: a probe task failed: {e}")),
            }
        }
        for (mut st, outcomes) in done {
            // A failed health gate is a failure of the host, in the recap too (once per run,
            // however many of its probes or gates failed), rolled back or not.
            if !st.gate_failed && outcomes.iter().any(|o| !o.passed) {
                st.gate_failed = true;
                st.recap.failed += 1;
            }
            for o in &outcomes {
                if watch == Watch::Quiet && o.passed {
                    continue;
                }
                self.reporter.emit(&Event::Probe {
                    host: &st.name,
                    probe: &o.probe,
                    passed: o.passed,
                    attempts: o.attempts,
                    observed: &o.observed,
                });
                if let Some(run) = &self.shared.opts.run {
                    run.journal.note(&Record::Probe {
                        host: st.name.clone(),
                        probe: o.probe.clone(),
                        passed: o.passed,
                        observed: o.observed.clone(),
                    });
                }
                if !o.passed {
                    failures.push(format!("{}: {} ({})", st.name, o.probe, o.observed));
                }
            }
            self.states.insert(st.name.clone(), st);
        }
        if failures.is_empty() {
            None
        } else {
            failures.sort();
            Some(format!("health gate failed on {}", failures.join("; ")))
        }
    }

    /// A failed batch: stop scheduling; with `on_failure: rollback`, restore, run the play's
    /// `rollback:` tasks and probe again.
    pub(super) async fn fail_batch(
        &mut self,
        play: &'r Play,
        scope: &Scope,
        pos: BatchPos,
        batch: &[String],
        reason: &str,
    ) {
        let BatchPos {
            play: play_index,
            index,
            total,
        } = pos;
        self.halted = true;
        let action = play.failure_action();
        let word = match action {
            OnFailure::Rollback => "rollback",
            OnFailure::Halt => "halt",
        };
        if let Some(run) = &self.shared.opts.run {
            run.journal.note(&Record::GateFailed {
                play: play_index,
                batch: index,
                reason: reason.to_string(),
            });
        }
        self.reporter.emit(&Event::GateFailed {
            index,
            reason,
            action: word,
        });
        if action == OnFailure::Halt {
            self.outcome = self.outcome.max(Outcome::Halted);
            return;
        }
        let groups = self.rollback_groups(play.rollback_scope, batch);
        let mut clean = true;
        for (i, group) in groups.iter().enumerate() {
            if self
                .roll_back_group(play, scope, group, (index, total))
                .await
            {
                continue;
            }
            clean = false;
            let left: Vec<&str> = groups[i + 1..]
                .iter()
                .flatten()
                .map(String::as_str)
                .collect();
            if !left.is_empty() {
                let msg = match &self.shared.opts.run {
                    Some(run) => format!(
                        "the rollback stopped: {} still run this run's changes (`rdeploy rollback {} --limit {}` when the hosts rolled back are fixed)",
                        left.join(", "),
                        run.run_id,
                        left.join(",")
                    ),
                    None => format!(
                        "the rollback stopped: {} were not rolled back",
                        left.join(", ")
                    ),
                };
                self.reporter.emit(&Event::Warning(&msg));
            }
            break;
        }
        self.outcome = self.outcome.max(if clean {
            Outcome::RolledBack
        } else {
            Outcome::RollbackIncomplete
        });
    }

    /// The hosts a rollback covers, in the groups it restores them in, newest first: with
    /// `rollback_scope: batch` the failed batch; with `all`, each batch this run started
    /// (this play's and earlier plays'), newest first, keeping its hosts that took backups
    /// (and every host of the failed batch), each host once, in the newest batch it was in. No
    /// group is larger than the batch it was deployed in, so the batch invariant holds during
    /// the rollback too.
    fn rollback_groups(
        &self,
        rollback_scope: RollbackScope,
        failed: &[String],
    ) -> Vec<Vec<String>> {
        if rollback_scope == RollbackScope::Batch {
            return vec![failed.to_vec()];
        }
        let mut taken: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut groups = vec![failed.to_vec()];
        taken.extend(failed.iter().map(String::as_str));
        for b in self.started_batches.iter().rev() {
            let group: Vec<String> = b
                .iter()
                .filter(|h| {
                    self.states
                        .get(*h)
                        .is_some_and(|s| s.backups.store.is_some())
                })
                .filter(|h| taken.insert(h.as_str()))
                .cloned()
                .collect();
            if !group.is_empty() {
                groups.push(group);
            }
        }
        groups
    }

    /// Rolls back one group of hosts: restores their backups at once, runs the play's
    /// `rollback:` tasks (and their handlers) on those that can be reached, then the health
    /// gate on them. True when all of it went through.
    async fn roll_back_group(
        &mut self,
        play: &'r Play,
        scope: &Scope,
        hosts: &[String],
        (index, total): (usize, usize),
    ) -> bool {
        let mut clean = self.restore(hosts).await;
        // The rollback tasks and the second health gate run on every host that can be reached.
        let reachable: Vec<String> = hosts
            .iter()
            .filter(|h| self.states.get(*h).is_some_and(|s| !s.unreachable))
            .cloned()
            .collect();
        for h in &reachable {
            if let Some(s) = self.states.get_mut(h) {
                s.failed = false;
                s.ended = false;
                s.rolled_back = true;
            }
        }
        self.end_play = false;
        if !play.rollback.is_empty() && !reachable.is_empty() {
            self.items(&play.rollback, scope, &reachable).await;
            self.flush_handlers(play, &reachable).await;
            let failed = self.failed_among(&reachable);
            if !failed.is_empty() {
                clean = false;
                let names: Vec<&str> = failed.iter().map(|h| h.as_str()).collect();
                let msg = format!(
                    "rollback tasks failed on {}: check these hosts by hand",
                    names.join(", ")
                );
                self.reporter.emit(&Event::Warning(&msg));
            }
        }
        let ok: Vec<String> = reachable
            .iter()
            .filter(|h| {
                self.states
                    .get(*h)
                    .is_some_and(|s| !s.failed && !s.unreachable)
            })
            .cloned()
            .collect();
        let deadline = play.probe.deadline.map(|d| tokio::time::Instant::now() + d);
        if let Some(why) = self
            .probe_hosts(play, &ok, (index, total), Watch::Gate, deadline)
            .await
        {
            clean = false;
            let msg = format!("after the rollback, {why}: check these hosts by hand");
            self.reporter.emit(&Event::Warning(&msg));
        }
        clean
    }

    /// Restores this run's backups on `hosts` at once; true when every host was restored.
    async fn restore(&mut self, hosts: &[String]) -> bool {
        let Some(run) = self.shared.opts.run.clone() else {
            return true;
        };
        self.reporter.emit(&Event::RollbackStart {
            hosts,
            switch_back: false,
        });
        let hostvars = self.hostvars();
        let mut set = JoinSet::new();
        let crowded = self.crowded(hosts.len());
        for h in hosts {
            let Some(mut st) = self.states.shift_remove(h) else {
                continue;
            };
            // The host's connection variables, should its connection have to be opened again.
            let vars = task::vars_at(&self.shared, &Scope::default(), &hostvars, &mut st, &[]);
            let run = Arc::clone(&run);
            let shared = Arc::clone(&self.shared);
            let sem = Arc::clone(&self.sem);
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let Some(store) = st.backups.store.clone() else {
                    let r = HostRollback {
                        host: st.name.clone(),
                        nothing_recorded: true,
                        ..HostRollback::default()
                    };
                    return (st, r);
                };
                if st.unreachable {
                    let r = HostRollback::failed(
                        &st.name,
                        RestoreError::Unreachable {
                            cause: "the host was lost earlier in the run: its backups are still on it; run `rdeploy rollback` when it is back".into(),
                        },
                    );
                    return (st, r);
                }
                let prepared_as = st.backups.prepared_as.clone();
                let password = st.backups.become_password.clone();
                let name = st.name.clone();
                let var = |k: &str| vars.get_json(k).and_then(Result::ok);
                // A connection lost since the host's last step is opened again, and the host's
                // identity verified again: the rollback must not give up on a host it can reach.
                let reconnect = st.forget_lost_connection().await;
                let r = match st.transport(&shared.opts, &var).await {
                    Ok(tr) => {
                        rollback::restore_host(
                            tr,
                            &name,
                            &store.state_dir,
                            &run.run_id,
                            prepared_as.as_ref(),
                            password.as_deref(),
                            rollback::Scope::All,
                        )
                        .await
                    }
                    Err(e) => {
                        // Whatever else the run did, a refused identity is reported as one
                        // (and wins the exit code); the host is not used again.
                        if let Some(reach) = e.reach() {
                            st.unreachable = true;
                            st.recap.unreachable = 1;
                            if st.recap.reach != Some(Reach::HostKeyRefused) {
                                st.recap.reach = Some(reach);
                            }
                        }
                        let mut r = HostRollback::unusable(&name, &e, &run.run_id);
                        if reconnect
                            && let Some(RestoreError::Unreachable { cause }) = r.errors.first_mut()
                        {
                            *cause = format!("reconnecting for the rollback: {cause}");
                        }
                        r
                    }
                };
                if crowded {
                    st.release().await;
                }
                (st, r)
            });
        }
        let mut clean = true;
        while let Some(joined) = set.join_next().await {
            let Ok((st, r)) = joined else {
                clean = false;
                continue;
            };
            clean &= r.clean();
            self.reporter.emit(&Event::Rollback(&r));
            run.journal.note(&Record::Rollback {
                host: r.host.clone(),
                run_id: run.run_id.clone(),
                restored: r.restored,
                error: (!r.clean()).then(|| r.errors_line()),
            });
            self.states.insert(st.name.clone(), st);
        }
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::budget_broken;

    #[test]
    fn the_budget_must_be_strictly_exceeded() {
        // 1 of 4 is 25%: at the threshold the rollout goes on, one more host aborts it.
        assert!(!budget_broken(1, 4, Some(25.0)));
        assert!(budget_broken(2, 4, Some(25.0)));
        assert!(budget_broken(1, 4, Some(0.0)));
        assert!(!budget_broken(0, 4, Some(0.0)));
        // Every host of a batch failed: the play stops, unless the budget is 100.
        assert!(budget_broken(3, 3, None));
        assert!(budget_broken(3, 3, Some(99.0)));
        assert!(!budget_broken(3, 3, Some(100.0)));
        assert!(!budget_broken(2, 3, None));
    }
}
