//! A batch's analysis: its metrics measured over time, after the health gate passed.
//!
//! Owns rendering each metric for each host of the batch (a metric that renders the same for
//! several hosts and is measured from the controller, such as a fleet-wide Prometheus query, is
//! measured once for all of them), running the measurements at once (one loop per host for what
//! runs on the host, one per metric measured from the controller), stopping everything as soon as
//! one metric fails, and turning the measurements into events, journal records and a verdict.
//! Measuring itself is `probe::analysis`'s. It must not print.

use std::sync::Arc;

use indexmap::IndexMap;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::host::HostState;
use super::{Runner, Scope, task};
use crate::backup::journal::Record;
use crate::playbook::model::{Analysis, Play, StepGates};
use crate::probe::analysis::{self as measure, End, Measurement, RenderedMetric, Verdict};
use crate::report::events::Event;
use crate::yaml::Node;

/// What an analysis concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Concluded {
    /// Every metric passed.
    Passed,
    /// A metric failed: why (the batch is failed and rolled back).
    Failed(String),
    /// A metric could not be told good or bad: why (a person decides).
    Inconclusive(String),
}

/// What a measuring loop gives back: the host state it took (for a loop on a host) and how
/// each of its metrics ended.
type Watched = (Option<HostState>, Vec<(String, End)>);

impl<'r> Runner<'r> {
    /// The analyses after batch `index`: its canary steps' own, else the play's, on the
    /// batch's hosts that did not fail. Not run in check mode: nothing was deployed to measure.
    pub(super) async fn analyses(
        &mut self,
        play: &Play,
        gates: &[&StepGates],
        (play_index, index, total): (usize, usize, usize),
        batch: &[String],
    ) -> Concluded {
        let analyses = play.analyses_after(gates);
        if analyses.is_empty() {
            return Concluded::Passed;
        }
        if self.shared.opts.check {
            let msg = format!(
                "analysis after batch {index}/{total}: not run in check mode (nothing was deployed to measure)"
            );
            self.reporter.emit(&Event::Warning(&msg));
            return Concluded::Passed;
        }
        let healthy: Vec<String> = batch
            .iter()
            .filter(|h| {
                self.states
                    .get(*h)
                    .is_some_and(|s| !s.failed && !s.unreachable && !s.gate_failed)
            })
            .cloned()
            .collect();
        let mut undecided = None;
        for a in analyses {
            match self
                .analyse(play, a, &healthy, (play_index, index, total))
                .await
            {
                Concluded::Passed => {}
                Concluded::Failed(why) => return Concluded::Failed(why),
                Concluded::Inconclusive(why) => undecided = Some(why),
            }
            if self.stopping() {
                break;
            }
        }
        match undecided {
            Some(why) => Concluded::Inconclusive(why),
            None => Concluded::Passed,
        }
    }

    /// Runs `analysis` on `hosts` (batch `index` of `total` of play number `play_index`).
    pub(super) async fn analyse(
        &mut self,
        play: &Play,
        analysis: &Analysis,
        hosts: &[String],
        (play_index, index, total): (usize, usize, usize),
    ) -> Concluded {
        if hosts.is_empty() {
            return Concluded::Passed;
        }
        let hostvars = self.hostvars();
        let mut from_controller: IndexMap<String, (RenderedMetric, Vec<String>)> = IndexMap::new();
        let mut on_host: Vec<(String, Vec<RenderedMetric>)> = Vec::new();
        let mut problems = Vec::new();
        for h in hosts {
            let Some(st) = self.states.get_mut(h) else {
                continue;
            };
            let vars = task::vars_at(&self.shared, &Scope::default(), &hostvars, st, &[]);
            let ctx = vars.to_value();
            let env = &self.shared.env;
            let render = |n: &Node| crate::probe::render_node(env, &ctx, n);
            let mut mine = Vec::new();
            for m in &analysis.metrics {
                match measure::render(m, analysis.interval, &render) {
                    Ok(r) if r.on_host() => mine.push(r),
                    Ok(r) => from_controller
                        .entry(r.key())
                        .or_insert_with(|| (r, Vec::new()))
                        .1
                        .push(h.clone()),
                    Err(e) => problems.push(format!("{h}: {e}")),
                }
            }
            if !mine.is_empty() {
                on_host.push((h.clone(), mine));
            }
        }
        if !problems.is_empty() {
            return Concluded::Failed(format!("analysis: {}", problems.join("; ")));
        }
        let names = analysis.metric_names();
        if let Some(run) = &self.shared.opts.run {
            let text = |n: &Option<Node>| n.as_ref().and_then(Node::scalar_string);
            run.journal.note(&Record::Analysis {
                play: play_index,
                batch: index,
                metrics: names
                    .iter()
                    .zip(&analysis.metrics)
                    .map(|(name, m)| (name.clone(), text(&m.success), text(&m.failure)))
                    .collect(),
            });
        }
        self.reporter.emit(&Event::Analysis {
            index,
            total,
            metrics: &names,
            seconds: analysis.duration.as_secs_f64(),
        });

        let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Measurement)>();
        let (stop_tx, stop_rx) = watch::channel(false);
        let started = tokio::time::Instant::now();
        // Per measuring loop, the hosts it speaks for.
        let mut jobs: Vec<Vec<String>> = Vec::new();
        let mut set: JoinSet<Watched> = JoinSet::new();
        let schedule = measure::Schedule {
            env: Arc::clone(&self.shared.env),
            duration: analysis.duration,
            settings: play.probe.clone(),
            started,
        };
        for (_, (metric, hs)) in from_controller {
            let j = jobs.len();
            jobs.push(hs);
            let (out, stop) = ((tx.clone(), j), stop_rx.clone());
            let schedule = schedule.clone();
            set.spawn(async move {
                let name = metric.probe.name.clone();
                let ends = measure::watch(vec![metric], schedule, None, out, stop).await;
                (None, ends.into_iter().map(|e| (name.clone(), e)).collect())
            });
        }
        let crowded = self.crowded(on_host.len());
        for (h, metrics) in on_host {
            let Some(mut st) = self.states.shift_remove(&h) else {
                continue;
            };
            let j = jobs.len();
            jobs.push(vec![h.clone()]);
            let vars = task::vars_at(&self.shared, &Scope::default(), &hostvars, &mut st, &[]);
            let (out, stop) = ((tx.clone(), j), stop_rx.clone());
            let (shared, sem) = (Arc::clone(&self.shared), Arc::clone(&self.sem));
            let schedule = schedule.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let names: Vec<String> = metrics.iter().map(|m| m.probe.name.clone()).collect();
                let var = |k: &str| vars.get_json(k).and_then(Result::ok);
                let tr = st.transport(&shared.opts, &var).await.ok();
                let ends = measure::watch(metrics, schedule, tr, out, stop).await;
                if crowded {
                    st.release().await;
                }
                (Some(st), names.into_iter().zip(ends).collect())
            });
        }
        drop(tx);

        let mut ended: Vec<(String, End)> = Vec::new();
        let mut states = Vec::new();
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        let mut open = true;
        loop {
            tokio::select! {
                biased;
                got = rx.recv(), if open => match got {
                    Some((j, m)) => self.measured(&jobs[j], &m, (play_index, index), &stop_tx),
                    None => open = false,
                },
                joined = set.join_next() => match joined {
                    Some(Ok((st, ends))) => {
                        states.extend(st);
                        ended.extend(ends);
                    }
                    Some(Err(e)) => ended.push(("analysis".into(), End::Failed(format!("internal error: a measuring task failed: {e}")))),
                    None if !open => break,
                    None => {}
                },
                _ = tick.tick() => {
                    if self.stopping() {
                        let _ = stop_tx.send(true);
                    }
                }
            }
        }
        for st in states {
            self.states.insert(st.name.clone(), st);
        }
        self.conclude(ended)
    }

    /// One measurement: an event, a journal record, and a stop to every loop when it ended its
    /// metric as failed.
    fn measured(
        &mut self,
        hosts: &[String],
        m: &Measurement,
        (play, batch): (usize, usize),
        stop: &watch::Sender<bool>,
    ) {
        let at_s = m.at_ms as f64 / 1000.0;
        self.reporter.emit(&Event::Measurement {
            hosts,
            metric: &m.name,
            n: m.n,
            of: m.of,
            verdict: m.verdict.word(),
            value: m.value.as_ref(),
            observed: &m.observed,
            at_s,
        });
        if let Some(run) = &self.shared.opts.run {
            run.journal.note(&Record::Measurement {
                play,
                batch,
                metric: m.name.clone(),
                hosts: hosts.to_vec(),
                n: m.n,
                verdict: m.verdict.word().into(),
                value: m.value.clone(),
                observed: m.observed.clone(),
                at_s,
            });
        }
        if m.verdict == Verdict::Failure && matches!(m.end, Some(End::Failed(_))) {
            let _ = stop.send(true);
            // The hosts it speaks for failed (once per run, as a failed health gate counts).
            for h in hosts {
                if let Some(st) = self.states.get_mut(h)
                    && !st.gate_failed
                {
                    st.gate_failed = true;
                    st.recap.failed += 1;
                }
            }
        }
    }

    /// The verdict from every metric's end.
    fn conclude(&self, ended: Vec<(String, End)>) -> Concluded {
        let mut failed = Vec::new();
        let mut undecided = Vec::new();
        for (name, e) in ended {
            match e {
                End::Passed => {}
                End::Failed(why) => failed.push(format!("{name}: {why}")),
                End::Inconclusive(why) => undecided.push(format!("{name}: {why}")),
            }
        }
        failed.sort();
        failed.dedup();
        undecided.sort();
        undecided.dedup();
        if !failed.is_empty() {
            Concluded::Failed(format!("analysis failed: {}", failed.join("; ")))
        } else if !undecided.is_empty() {
            Concluded::Inconclusive(format!("analysis inconclusive: {}", undecided.join("; ")))
        } else {
            Concluded::Passed
        }
    }
}
