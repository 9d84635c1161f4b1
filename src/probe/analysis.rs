//! Analysis: metrics measured over time after a batch passed its health gate.
//!
//! Owns a metric rendered for a host ([`RenderedMetric`]), judging one measurement
//! ([`judge`]: the check's own verdict, then `failure_condition` / `success_condition` over what
//! was measured), counting measurements into a verdict ([`Tally`]), and the loop that measures a
//! set of metrics every interval for the analysis' duration ([`watch`]), stopping early when one
//! fails or when told to. It must not print, emit events or decide what a verdict means for the
//! batch (the executor does); measurements go out on a channel as they are taken.

use std::sync::Arc;
use std::time::Duration;

use minijinja::Environment;
use serde_json::Value;
use tokio::sync::{mpsc, watch as signal};
use tokio::time::Instant;

use super::http::Clients;
use super::{Attempt, Check, ProbeFrom, Rendered, millis};
use crate::diag::Loc;
use crate::playbook::model::{Metric, ProbeSettings};
use crate::transport::AnyTransport;
use crate::yaml::Node;

/// A metric with its templates rendered for a host.
#[derive(Clone, Debug)]
pub struct RenderedMetric {
    /// What is measured, and its name.
    pub probe: Rendered,
    /// The baseline query, rendered (prometheus only).
    pub baseline: Option<String>,
    /// `success_condition`, as written.
    pub success: Option<String>,
    /// `failure_condition`, as written.
    pub failure: Option<String>,
    /// Failed measurements tolerated.
    pub failure_limit: u32,
    /// Inconclusive measurements tolerated.
    pub inconclusive_limit: u32,
    /// Successes in a row that must end the analysis.
    pub consecutive_successes: u32,
    /// Time between two measurements.
    pub interval: Duration,
    /// Where the metric was written, for condition errors.
    pub loc: Loc,
}

impl RenderedMetric {
    /// Measured on the host over its connection (a command, or a check `from: host`), not from
    /// the controller.
    pub fn on_host(&self) -> bool {
        match &self.probe.check {
            Check::Command { .. } => true,
            Check::Http { from, .. } | Check::Tcp { from, .. } => *from == ProbeFrom::Host,
            Check::Prometheus { .. } => false,
        }
    }

    /// What makes two hosts' renderings the same measurement (measured once for both).
    pub fn key(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}",
            self.probe.name, self.probe.check, self.baseline, self.success, self.failure
        )
    }
}

/// Renders a metric for one host (`render` renders a template node, as for health probes).
pub fn render(
    m: &Metric,
    default_interval: Duration,
    render: &dyn Fn(&Node) -> Result<String, String>,
) -> Result<RenderedMetric, String> {
    let probe = super::render(&m.probe, render)?;
    let baseline = m
        .baseline
        .as_ref()
        .map(|b| render(b).map_err(|e| format!("metric baseline: {e}")))
        .transpose()?;
    let text = |n: &Option<Node>| n.as_ref().and_then(Node::scalar_string);
    Ok(RenderedMetric {
        probe,
        baseline,
        success: text(&m.success),
        failure: text(&m.failure),
        failure_limit: m.failure_limit,
        inconclusive_limit: m.inconclusive_limit,
        consecutive_successes: m.consecutive_successes.max(1),
        interval: m.interval.unwrap_or(default_interval),
        loc: m.probe.loc.clone(),
    })
}

/// What one measurement says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The metric is good.
    Success,
    /// The metric is bad.
    Failure,
    /// Neither could be told (no data, a condition that could not be evaluated, both
    /// conditions false).
    Inconclusive,
}

impl Verdict {
    /// `success`, `failure`, `inconclusive`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Success => "success",
            Verdict::Failure => "failure",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Judges one measurement: a check that could not measure anything is a failure (the service
/// does not answer), except a Prometheus query, which is inconclusive (the metric is unknown, not
/// bad); a check whose own criteria failed (HTTP status, body, latency, a command's exit code,
/// a query's `max`/`min`) is a failure; then `failure_condition` true is a failure,
/// `success_condition` true a success, and with both written and neither true, inconclusive.
/// With one condition, the other outcome is its opposite; with none, the check's verdict is.
/// `baseline` is the baseline query's attempt, when the metric has one.
pub fn judge(
    env: &Environment<'static>,
    m: &RenderedMetric,
    a: &Attempt,
    baseline: Option<&Attempt>,
) -> (Verdict, String) {
    let prometheus = matches!(m.probe.check, Check::Prometheus { .. });
    if a.values.is_empty() {
        let v = if prometheus {
            Verdict::Inconclusive
        } else {
            Verdict::Failure
        };
        return (v, a.observed.clone());
    }
    if !a.passed {
        return (Verdict::Failure, a.observed.clone());
    }
    let mut ctx = a.values.clone();
    if let Some(b) = baseline {
        match b.values.get("result") {
            Some(v) => {
                ctx.insert("baseline".into(), v.clone());
            }
            None => {
                return (
                    Verdict::Inconclusive,
                    format!("{}; baseline: {}", a.observed, b.observed),
                );
            }
        }
    }
    let seen = match ctx.get("baseline") {
        Some(b) => format!("{} (baseline {b})", a.observed),
        None => a.observed.clone(),
    };
    let ctx = crate::template::json_to_value(&Value::Object(ctx));
    let eval = |expr: &str| crate::template::eval_bool(env, expr, &ctx, &m.loc);
    if let Some(f) = &m.failure {
        match eval(f) {
            Ok(true) => return (Verdict::Failure, format!("{seen}: {f}")),
            Ok(false) => {}
            Err(e) => return (Verdict::Inconclusive, format!("{seen}: {f}: {}", e.message)),
        }
    }
    match &m.success {
        Some(s) => match eval(s) {
            Ok(true) => (Verdict::Success, seen),
            Ok(false) if m.failure.is_some() => (Verdict::Inconclusive, format!("{seen}: not {s}")),
            Ok(false) => (Verdict::Failure, format!("{seen}: not {s}")),
            Err(e) => (Verdict::Inconclusive, format!("{seen}: {s}: {}", e.message)),
        },
        None => (Verdict::Success, seen),
    }
}

/// A metric's measurements so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Measurements taken.
    pub taken: u32,
    /// Failures among them.
    pub failures: u32,
    /// Inconclusive ones.
    pub inconclusive: u32,
    /// Successes in a row at the end.
    pub streak: u32,
}

/// How a metric ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Passed.
    Passed,
    /// Failed: why.
    Failed(String),
    /// Could not be told: why.
    Inconclusive(String),
}

impl Tally {
    /// Counts one measurement.
    pub fn add(&mut self, v: Verdict) {
        self.taken += 1;
        match v {
            Verdict::Success => self.streak += 1,
            Verdict::Failure => {
                self.failures += 1;
                self.streak = 0;
            }
            Verdict::Inconclusive => {
                self.inconclusive += 1;
                self.streak = 0;
            }
        }
    }

    /// The metric has failed: more failures than its `failure_limit`. Measuring stops.
    pub fn failed(&self, m: &RenderedMetric) -> bool {
        self.failures > m.failure_limit
    }

    /// The metric is inconclusive: more inconclusive measurements than its limit. Measuring
    /// stops (a person decides).
    pub fn undecided(&self, m: &RenderedMetric) -> bool {
        self.inconclusive > m.inconclusive_limit
    }

    /// The verdict once measuring stopped.
    pub fn end(&self, m: &RenderedMetric) -> End {
        let of = format!("{} measurement{}", self.taken, plural(self.taken));
        if self.failed(m) {
            return End::Failed(format!(
                "{} failed of {of} (failure_limit {})",
                self.failures, m.failure_limit
            ));
        }
        if self.undecided(m) {
            return End::Inconclusive(format!(
                "{} inconclusive of {of} (inconclusive_limit {})",
                self.inconclusive, m.inconclusive_limit
            ));
        }
        if self.streak >= m.consecutive_successes {
            return End::Passed;
        }
        let why = format!(
            "{of} did not end with {} success{} in a row",
            m.consecutive_successes,
            if m.consecutive_successes == 1 {
                ""
            } else {
                "es"
            }
        );
        if self.failures > 0 {
            End::Failed(why)
        } else {
            End::Inconclusive(why)
        }
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// How many measurements a metric takes in `duration`: one at the start, then one every
/// interval while time is left (at least one).
pub fn planned(duration: Duration, interval: Duration) -> u32 {
    if interval.is_zero() {
        return 1;
    }
    let n = duration.as_secs_f64() / interval.as_secs_f64();
    // Float noise must not add a measurement: 60s / 10s is 6.
    u32::try_from((n - 1e-9).ceil().max(1.0) as u64).unwrap_or(u32::MAX)
}

/// One measurement, sent as it is taken.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// The metric's name.
    pub name: String,
    /// 1-based number of this measurement.
    pub n: u32,
    /// Measurements planned.
    pub of: u32,
    /// What it says.
    pub verdict: Verdict,
    /// The measured result (`result`), when there is one.
    pub value: Option<Value>,
    /// What was seen, in words.
    pub observed: String,
    /// Milliseconds since the analysis started.
    pub at_ms: u64,
    /// How the metric ended, when this measurement ended it.
    pub end: Option<End>,
}

/// When and how an analysis measures.
#[derive(Clone)]
pub struct Schedule {
    /// The run's template environment (for conditions).
    pub env: Arc<Environment<'static>>,
    /// How long the analysis lasts.
    pub duration: Duration,
    /// The play's probe settings (each measurement's time limit).
    pub settings: ProbeSettings,
    /// When the analysis started: the first measurements are due then.
    pub started: Instant,
}

/// Measures `metrics` every interval until each has taken its planned measurements, failed,
/// or become inconclusive, or until `stop` turns true (another metric failed, the run is
/// stopping). Measurements of one call are taken one at a time (a host's connection serves
/// one command at a time), each bounded by the play's probe timeout. Each is sent on `out`
/// tagged with `job`. One end per metric.
pub async fn watch(
    metrics: Vec<RenderedMetric>,
    schedule: Schedule,
    mut tr: Option<&mut AnyTransport>,
    (out, job): (mpsc::UnboundedSender<(usize, Measurement)>, usize),
    mut stop: signal::Receiver<bool>,
) -> Vec<End> {
    let Schedule {
        env,
        duration,
        settings,
        started,
    } = schedule;
    let mut clients = Clients::new(super::attempt_limit(&settings));
    let plans: Vec<u32> = metrics
        .iter()
        .map(|m| planned(duration, m.interval))
        .collect();
    let mut due: Vec<Option<Instant>> = metrics.iter().map(|_| Some(started)).collect();
    let mut tallies = vec![Tally::default(); metrics.len()];
    let mut ends: Vec<Option<End>> = vec![None; metrics.len()];
    loop {
        let next = due
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.map(|d| (d, i)))
            .min();
        let Some((at, i)) = next else { break };
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let m = &metrics[i];
        let own = m.probe.settings.over(&settings);
        let a = super::run::attempt(&m.probe.check, &own, &mut clients, tr.as_deref_mut()).await;
        let b = match &m.baseline {
            Some(q) => {
                let check = baseline_check(&m.probe.check, q);
                Some(super::run::attempt(&check, &own, &mut clients, tr.as_deref_mut()).await)
            }
            None => None,
        };
        let (verdict, observed) = judge(&env, m, &a, b.as_ref());
        let t = &mut tallies[i];
        t.add(verdict);
        let over = t.failed(m) || t.undecided(m) || t.taken >= plans[i];
        let end = over.then(|| t.end(m));
        let _ = out.send((
            job,
            Measurement {
                name: m.probe.name.clone(),
                n: t.taken,
                of: plans[i],
                verdict,
                value: a.values.get("result").cloned(),
                observed,
                at_ms: millis(started.elapsed()),
                end: end.clone(),
            },
        ));
        if let Some(e) = end {
            ends[i] = Some(e);
            due[i] = None;
        } else {
            // The next measurement is due one interval after this one was: a slow measurement
            // does not shift the schedule, one that overran it is taken at once.
            due[i] = Some(at + m.interval);
        }
    }
    // A metric cut short (another failed, the run stops) ends with what it saw.
    ends.into_iter()
        .zip(&tallies)
        .zip(&metrics)
        .map(|((e, t), m)| {
            e.unwrap_or_else(|| match t.end(m) {
                End::Failed(why) => End::Failed(why),
                _ => End::Passed,
            })
        })
        .collect()
}

/// The baseline query as a check of its own, on the same Prometheus without bounds.
fn baseline_check(check: &Check, query: &str) -> Check {
    match check {
        Check::Prometheus { url, .. } => Check::Prometheus {
            url: url.clone(),
            query: query.to_string(),
            max: None,
            min: None,
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::model::ProbeOverrides;

    fn metric(success: Option<&str>, failure: Option<&str>) -> RenderedMetric {
        RenderedMetric {
            probe: Rendered {
                name: "errors".into(),
                check: Check::Prometheus {
                    url: "http://127.0.0.1:1".into(),
                    query: "q".into(),
                    max: None,
                    min: None,
                },
                settings: ProbeOverrides::default(),
            },
            baseline: None,
            success: success.map(String::from),
            failure: failure.map(String::from),
            failure_limit: 0,
            inconclusive_limit: 0,
            consecutive_successes: 1,
            interval: Duration::from_secs(1),
            loc: Loc::new(&std::sync::Arc::from("p.yaml"), 1, 1),
        }
    }

    fn env() -> Environment<'static> {
        crate::template::environment()
    }

    fn value(v: f64) -> Attempt {
        Attempt::pass(format!("value {v}")).with("result", v)
    }

    #[test]
    fn conditions_judge_what_was_measured() {
        let env = env();
        let both = metric(Some("result < 0.01"), Some("result > 0.05"));
        assert_eq!(judge(&env, &both, &value(0.001), None).0, Verdict::Success);
        assert_eq!(judge(&env, &both, &value(0.2), None).0, Verdict::Failure);
        // Between the two: neither holds, a person decides.
        assert_eq!(
            judge(&env, &both, &value(0.03), None).0,
            Verdict::Inconclusive
        );
        // One condition: the other outcome is its opposite.
        let only_success = metric(Some("result < 0.01"), None);
        assert_eq!(
            judge(&env, &only_success, &value(0.03), None).0,
            Verdict::Failure
        );
        let only_failure = metric(None, Some("result > 0.05"));
        assert_eq!(
            judge(&env, &only_failure, &value(0.03), None).0,
            Verdict::Success
        );
        // No data from Prometheus is inconclusive, never a success.
        assert_eq!(
            judge(&env, &both, &Attempt::fail("no data"), None).0,
            Verdict::Inconclusive
        );
        // A condition naming what was not measured cannot be evaluated: inconclusive.
        let typo = metric(Some("reslt < 1"), None);
        assert_eq!(
            judge(&env, &typo, &value(0.0), None).0,
            Verdict::Inconclusive
        );
    }

    #[test]
    fn a_baseline_is_compared_and_its_absence_is_inconclusive() {
        let env = env();
        let m = metric(Some("result <= baseline * 1.5"), None);
        let (v, seen) = judge(&env, &m, &value(0.012), Some(&value(0.01)));
        assert_eq!(v, Verdict::Success, "{seen}");
        assert!(seen.contains("baseline 0.01"), "{seen}");
        assert_eq!(
            judge(&env, &m, &value(0.02), Some(&value(0.01))).0,
            Verdict::Failure
        );
        assert_eq!(
            judge(&env, &m, &value(0.02), Some(&Attempt::fail("no data"))).0,
            Verdict::Inconclusive
        );
    }

    #[test]
    fn a_service_that_does_not_answer_fails_and_its_own_criteria_count() {
        let env = env();
        let mut m = metric(Some("latency_ms < 300"), None);
        m.probe.check = Check::Tcp {
            address: "127.0.0.1:1".into(),
            from: ProbeFrom::Controller,
        };
        assert_eq!(
            judge(&env, &m, &Attempt::fail("connection refused"), None).0,
            Verdict::Failure
        );
        let answered_500 = Attempt::fail("status 500 after 3 ms")
            .with("status", 500)
            .with("latency_ms", 3);
        assert_eq!(judge(&env, &m, &answered_500, None).0, Verdict::Failure);
    }

    #[test]
    fn a_tally_fails_past_its_limit_and_must_end_with_successes() {
        let mut m = metric(None, None);
        m.failure_limit = 1;
        m.consecutive_successes = 2;
        let mut t = Tally::default();
        t.add(Verdict::Failure);
        assert!(!t.failed(&m));
        t.add(Verdict::Success);
        t.add(Verdict::Success);
        assert_eq!(t.end(&m), End::Passed);
        t.add(Verdict::Failure);
        assert!(t.failed(&m));
        assert!(matches!(t.end(&m), End::Failed(_)));
        let mut t = Tally::default();
        t.add(Verdict::Success);
        t.add(Verdict::Inconclusive);
        m.inconclusive_limit = 1;
        assert!(!t.undecided(&m));
        assert!(matches!(t.end(&m), End::Inconclusive(_)));
    }

    #[test]
    fn measurements_are_planned_over_the_duration() {
        let s = Duration::from_secs;
        assert_eq!(planned(s(60), s(10)), 6);
        assert_eq!(planned(s(0), s(10)), 1);
        assert_eq!(planned(s(5), s(10)), 1);
        assert_eq!(planned(s(25), s(10)), 3);
    }
}
