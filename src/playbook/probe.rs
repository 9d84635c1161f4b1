//! rdeploy's rollout keywords: `health` probes and `probe` settings.
//!
//! Owns the shapes of `http`, `tcp`, `command` and `prometheus` probes and their options, and
//! the retry/timing settings. It must not run probes (that is `probe/`'s runner) or render
//! their templates.

use super::model::{Analysis, Metric, Probe, ProbeCheck, ProbeFrom, ProbeOverrides, ProbeSettings};
use super::values::{self, Errors};
use crate::diag::{Diagnostic, did_you_mean};
use crate::modules::spec::{ansible_bool, shown};
use crate::yaml::{Kind, Node};

const KINDS: &[&str] = &["http", "tcp", "command", "prometheus"];
const HTTP_KEYS: &[&str] = &[
    "http",
    "name",
    "status",
    "body",
    "max_latency",
    "headers",
    "ca_file",
    "insecure",
    "from",
];
const TCP_KEYS: &[&str] = &["tcp", "name", "from"];
const COMMAND_KEYS: &[&str] = &["command", "name", "stdout"];
const PROMETHEUS_KEYS: &[&str] = &["prometheus", "name", "query", "max", "min"];
/// Probe fields whose value must be known before the run (a number, a duration, a choice):
/// written as templates, they are rendered with the play's variables, as `serial` is.
pub const PLAY_LEVEL: &[&str] = &["status", "max_latency", "insecure", "from", "max", "min"];
const SETTINGS: &[&str] = &[
    "initial_delay",
    "retries",
    "interval",
    "timeout",
    "success_threshold",
    "deadline",
];

/// `health:` — a list of probes.
pub fn health(errors: &mut Errors, v: &Node) -> Vec<Probe> {
    match &v.kind {
        Kind::Null => Vec::new(),
        Kind::Seq(items) => items
            .iter()
            .filter_map(|it| probe(errors, it, Entry::Health))
            .collect(),
        _ => {
            errors.push(Diagnostic::at(
                &v.loc,
                format!("'health' must be a list of probes, found {}", v.type_name()),
            ));
            Vec::new()
        }
    }
}

/// What a probe entry is part of: `health:` (with its own timing) or an analysis' `metrics:`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    Health,
    Metric,
}

/// Options a health probe may set for itself, over the play's `probe:`.
const OWN_SETTINGS: &[&str] = &[
    "initial_delay",
    "retries",
    "interval",
    "timeout",
    "success_threshold",
];
/// Options of a metric beyond its check's.
const METRIC_KEYS: &[&str] = &[
    "baseline",
    "success_condition",
    "failure_condition",
    "failure_limit",
    "inconclusive_limit",
    "consecutive_successes",
    "interval",
    "timeout",
];
const ANALYSIS_KEYS: &[&str] = &["interval", "duration", "metrics"];

fn probe(errors: &mut Errors, n: &Node, entry: Entry) -> Option<Probe> {
    let what = match entry {
        Entry::Health => "a health probe",
        Entry::Metric => "a metric",
    };
    let Some(entries) = n.as_map() else {
        errors.push(Diagnostic::at(
            &n.loc,
            format!("{what} must be a mapping, found {}", n.type_name()),
        ));
        return None;
    };
    let kinds: Vec<&str> = entries
        .iter()
        .filter_map(|(k, _)| k.as_str())
        .filter(|k| KINDS.contains(k))
        .collect();
    let kind = match kinds.as_slice() {
        [one] => *one,
        [] => {
            errors.push(Diagnostic::at(
                &n.loc,
                format!("{what} needs one of: http, tcp, command, prometheus"),
            ));
            return None;
        }
        many => {
            errors.push(Diagnostic::at(
                &n.loc,
                format!("{what} has only one kind, found: {}", many.join(", ")),
            ));
            return None;
        }
    };
    let allowed = match kind {
        "http" => HTTP_KEYS,
        "tcp" => TCP_KEYS,
        "command" => COMMAND_KEYS,
        _ => PROMETHEUS_KEYS,
    };
    let extra = match entry {
        Entry::Health => OWN_SETTINGS,
        Entry::Metric => METRIC_KEYS,
    };
    let allowed: Vec<&str> = allowed.iter().chain(extra).copied().collect();
    let before = errors.len();
    for (k, _) in entries {
        let key = k.scalar_string().unwrap_or_default();
        if !allowed.contains(&key.as_str()) {
            let msg = match did_you_mean(&key, allowed.iter().copied()) {
                Some(s) => format!("unknown {kind} probe option '{key}', did you mean '{s}'?"),
                None => format!("unknown {kind} probe option '{key}'"),
            };
            errors.push(Diagnostic::at(&k.loc, msg));
        }
    }
    let get = |k: &str| n.get(k);
    let target = get(kind).and_then(|t| values::text(errors, kind, t));
    let name = get("name").and_then(|t| values::text(errors, "name", t));
    let from = get("from").map_or(Some(ProbeFrom::Controller), |f| {
        values::choice(errors, "from", f, &["controller", "host"]).map(|i| {
            if i == 1 {
                ProbeFrom::Host
            } else {
                ProbeFrom::Controller
            }
        })
    });
    let check = match kind {
        "http" => {
            let status = match get("status") {
                None => vec![200],
                Some(s) => status_codes(errors, s),
            };
            let headers = match get("headers") {
                None => Vec::new(),
                Some(h) => match h.as_map() {
                    Some(m) => m
                        .iter()
                        .map(|(k, v)| (k.scalar_string().unwrap_or_default(), v.clone()))
                        .collect(),
                    None => {
                        errors.push(Diagnostic::at(
                            &h.loc,
                            format!("'headers' must be a mapping, found {}", shown(h)),
                        ));
                        Vec::new()
                    }
                },
            };
            let insecure = match get("insecure") {
                None => false,
                Some(i) => ansible_bool(i).unwrap_or_else(|| {
                    errors.push(Diagnostic::at(
                        &i.loc,
                        format!("'insecure' must be a boolean, found {}", shown(i)),
                    ));
                    false
                }),
            };
            ProbeCheck::Http {
                url: target?,
                status,
                body: get("body").and_then(|b| values::text(errors, "body", b)),
                max_latency: get("max_latency")
                    .and_then(|d| values::duration(errors, "max_latency", d)),
                headers,
                ca_file: get("ca_file").and_then(|c| values::text(errors, "ca_file", c)),
                insecure,
                from: from?,
            }
        }
        "tcp" => ProbeCheck::Tcp {
            address: target?,
            from: from?,
        },
        "command" => ProbeCheck::Command {
            command: target?,
            stdout: get("stdout").and_then(|s| values::text(errors, "stdout", s)),
        },
        _ => {
            let query = match get("query") {
                Some(q) => values::text(errors, "query", q),
                None => {
                    errors.push(Diagnostic::at(&n.loc, "a prometheus probe needs a 'query'"));
                    None
                }
            };
            let max = get("max").and_then(|m| values::number(errors, "max", m));
            let min = get("min").and_then(|m| values::number(errors, "min", m));
            if entry == Entry::Health && max.is_none() && min.is_none() && errors.len() == before {
                errors.push(Diagnostic::at(
                    &n.loc,
                    "a prometheus probe needs 'max', 'min' or both",
                ));
            }
            ProbeCheck::Prometheus {
                url: target?,
                query: query?,
                max,
                min,
            }
        }
    };
    let mut settings = ProbeOverrides {
        timeout: get("timeout").and_then(|d| values::duration(errors, "timeout", d)),
        ..ProbeOverrides::default()
    };
    if entry == Entry::Health {
        settings.initial_delay =
            get("initial_delay").and_then(|d| values::duration(errors, "initial_delay", d));
        settings.interval = get("interval").and_then(|d| values::duration(errors, "interval", d));
        settings.retries = get("retries").and_then(|c| values::count(errors, "retries", c));
        settings.success_threshold =
            get("success_threshold").and_then(|c| at_least_one(errors, "success_threshold", c));
    }
    (errors.len() == before).then(|| Probe {
        loc: n.loc.clone(),
        name,
        check,
        settings,
    })
}

/// A count that must be at least 1.
fn at_least_one(errors: &mut Errors, key: &str, n: &Node) -> Option<u32> {
    match values::count(errors, key, n) {
        Some(0) => {
            errors.push(Diagnostic::at(
                &n.loc,
                format!("'{key}' must be at least 1"),
            ));
            None
        }
        c => c,
    }
}

/// `analysis: {interval, duration, metrics: [...]}`.
pub fn analysis(errors: &mut Errors, v: &Node) -> Option<Analysis> {
    let Some(entries) = v.as_map() else {
        errors.push(Diagnostic::at(
            &v.loc,
            format!(
                "'analysis' must be a mapping (interval, duration, metrics), found {}",
                v.type_name()
            ),
        ));
        return None;
    };
    let before = errors.len();
    for (k, _) in entries {
        let key = k.scalar_string().unwrap_or_default();
        if !ANALYSIS_KEYS.contains(&key.as_str()) {
            let msg = match did_you_mean(&key, ANALYSIS_KEYS.iter().copied()) {
                Some(s) => format!("unknown 'analysis' key '{key}', did you mean '{s}'?"),
                None => {
                    format!("unknown 'analysis' key '{key}': expected interval, duration, metrics")
                }
            };
            errors.push(Diagnostic::at(&k.loc, msg));
        }
    }
    let positive = |errors: &mut Errors, key: &str| -> Option<std::time::Duration> {
        let n = v.get(key)?;
        match values::duration(errors, key, n) {
            Some(d) if d.is_zero() => {
                errors.push(Diagnostic::at(&n.loc, format!("'{key}' must be above 0s")));
                None
            }
            d => d,
        }
    };
    let interval = positive(errors, "interval").unwrap_or(std::time::Duration::from_secs(10));
    let duration = match v.get("duration") {
        Some(n) => values::duration(errors, "duration", n).unwrap_or_default(),
        None => std::time::Duration::ZERO,
    };
    let metrics: Vec<Metric> = match v.get("metrics").map(|m| &m.kind) {
        Some(Kind::Seq(items)) if !items.is_empty() => {
            items.iter().filter_map(|it| metric(errors, it)).collect()
        }
        _ => {
            errors.push(Diagnostic::at(
                v.get("metrics").map_or(&v.loc, |m| &m.loc),
                "'analysis' needs 'metrics': a list of checks (http, tcp, command, prometheus) with their conditions",
            ));
            Vec::new()
        }
    };
    (errors.len() == before).then(|| Analysis {
        loc: v.loc.clone(),
        interval,
        duration,
        metrics,
    })
}

fn metric(errors: &mut Errors, n: &Node) -> Option<Metric> {
    let before = errors.len();
    let probe = probe(errors, n, Entry::Metric)?;
    let get = |k: &str| n.get(k);
    let condition = |errors: &mut Errors, key: &str| -> Option<Node> {
        let c = get(key)?;
        match c.scalar_string() {
            Some(text) => match minijinja::Environment::new().compile_expression(&text) {
                Ok(_) => Some(c.clone()),
                Err(e) => {
                    let why = match e.detail() {
                        Some(d) => format!("{}: {d}", e.kind()),
                        None => e.kind().to_string(),
                    };
                    errors.push(Diagnostic::at(&c.loc, format!("'{key}': {why}")));
                    None
                }
            },
            None => {
                errors.push(Diagnostic::at(
                    &c.loc,
                    format!(
                        "'{key}' must be an expression like \"result < 0.01\", found {}",
                        shown(c)
                    ),
                ));
                None
            }
        }
    };
    let success = condition(errors, "success_condition");
    let failure = condition(errors, "failure_condition");
    let baseline = get("baseline").and_then(|b| values::text(errors, "baseline", b));
    if let Some(b) = get("baseline")
        && !matches!(probe.check, ProbeCheck::Prometheus { .. })
    {
        errors.push(Diagnostic::at(
            &b.loc,
            "'baseline' is a second PromQL query: only a prometheus metric has one",
        ));
    }
    if let ProbeCheck::Prometheus {
        max: None,
        min: None,
        ..
    } = probe.check
        && success.is_none()
        && failure.is_none()
        && errors.len() == before
    {
        errors.push(Diagnostic::at(
            &n.loc,
            "a prometheus metric needs 'success_condition', 'failure_condition', 'max' or 'min'",
        ));
    }
    let failure_limit = get("failure_limit")
        .and_then(|c| values::count(errors, "failure_limit", c))
        .unwrap_or(0);
    let inconclusive_limit = get("inconclusive_limit")
        .and_then(|c| values::count(errors, "inconclusive_limit", c))
        .unwrap_or(0);
    let consecutive_successes = get("consecutive_successes")
        .and_then(|c| at_least_one(errors, "consecutive_successes", c))
        .unwrap_or(1);
    let interval = get("interval").and_then(|d| match values::duration(errors, "interval", d) {
        Some(z) if z.is_zero() => {
            errors.push(Diagnostic::at(&d.loc, "'interval' must be above 0s"));
            None
        }
        other => other,
    });
    (errors.len() == before).then_some(Metric {
        probe,
        baseline,
        success,
        failure,
        failure_limit,
        inconclusive_limit,
        consecutive_successes,
        interval,
    })
}

fn status_codes(errors: &mut Errors, n: &Node) -> Vec<u16> {
    let items: Vec<&Node> = match &n.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![n],
    };
    let mut out = Vec::new();
    for it in items {
        match &it.kind {
            Kind::Int(i) if (100..=599).contains(i) => out.push(*i as u16),
            _ => errors.push(Diagnostic::at(
                &it.loc,
                format!(
                    "'status' must be an HTTP status code (100-599), found {}",
                    shown(it)
                ),
            )),
        }
    }
    out
}

/// `probe:` — retry and timing settings.
pub fn settings(errors: &mut Errors, v: &Node) -> ProbeSettings {
    let mut s = ProbeSettings::default();
    let Some(entries) = v.as_map() else {
        if !v.is_null() {
            errors.push(Diagnostic::at(
                &v.loc,
                format!("'probe' must be a mapping, found {}", v.type_name()),
            ));
        }
        return s;
    };
    for (k, val) in entries {
        let key = k.scalar_string().unwrap_or_default();
        match key.as_str() {
            "initial_delay" => {
                if let Some(d) = values::duration(errors, "initial_delay", val) {
                    s.initial_delay = d;
                }
            }
            "interval" => {
                if let Some(d) = values::duration(errors, "interval", val) {
                    s.interval = d;
                }
            }
            "timeout" => {
                if let Some(d) = values::duration(errors, "timeout", val) {
                    s.timeout = d;
                }
            }
            "deadline" => {
                if let Some(d) = values::duration(errors, "deadline", val) {
                    s.deadline = Some(d);
                }
            }
            "retries" => {
                if let Some(c) = values::count(errors, "retries", val) {
                    s.retries = c;
                }
            }
            "success_threshold" => match values::count(errors, "success_threshold", val) {
                Some(0) => errors.push(Diagnostic::at(
                    &val.loc,
                    "'success_threshold' must be at least 1",
                )),
                Some(c) => s.success_threshold = c,
                None => {}
            },
            _ => {
                let msg = match did_you_mean(&key, SETTINGS.iter().copied()) {
                    Some(x) => format!("unknown probe setting '{key}', did you mean '{x}'?"),
                    None => format!("unknown probe setting '{key}'"),
                };
                errors.push(Diagnostic::at(&k.loc, msg));
            }
        }
    }
    s
}
