//! Prometheus probes: an instant query against the Prometheus HTTP API whose every sample must
//! stay within `max`/`min`.
//!
//! Owns building the `/api/v1/query` request (from the controller) and [`evaluate`], which reads
//! the JSON answer (`vector` or `scalar`) and judges it. It must not retry, and it never runs
//! anything on a host.

use std::time::Duration;

use serde_json::Value;

use super::Attempt;
use super::http::{Clients, describe, fetch, innermost};

/// The query's bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// Highest acceptable value.
    pub max: Option<f64>,
    /// Lowest acceptable value.
    pub min: Option<f64>,
}

/// `GET {url}/api/v1/query?query=...` from the controller, bounded by `limit`, then
/// [`evaluate`].
pub async fn check(
    clients: &mut Clients,
    url: &str,
    query: &str,
    bounds: Bounds,
    limit: Duration,
) -> Attempt {
    let endpoint = format!("{}/api/v1/query", url.trim_end_matches('/'));
    let mut endpoint = match reqwest::Url::parse(&endpoint) {
        Ok(u) => u,
        Err(e) => return Attempt::fatal(format!("invalid Prometheus URL {url:?}: {e}")),
    };
    endpoint.query_pairs_mut().append_pair("query", query);
    let client = match clients.get(None, false).await {
        Ok(c) => c,
        Err(e) => return Attempt::fatal(e),
    };
    match fetch(client.get(endpoint).timeout(limit)).await {
        Ok((status, body)) => match serde_json::from_str::<Value>(&body) {
            Ok(json) => evaluate(&json, bounds),
            Err(_) if !(200..300).contains(&status) => Attempt::fail(format!("status {status}")),
            Err(e) => Attempt::fail(format!("status {status}: not JSON: {e}")),
        },
        Err(e) if e.is_builder() => Attempt::fatal(format!("invalid request: {}", innermost(&e))),
        Err(e) => Attempt::fail(describe(&e, limit)),
    }
}

/// Judges a Prometheus query answer: `status: error` and an empty result fail (`no data`); every
/// sample must be a number within the bounds (NaN never is). The observed value names the
/// first sample out of bounds (`value 0.2 > max 0.01 {instance="a"}`), or the values seen.
pub fn evaluate(json: &Value, bounds: Bounds) -> Attempt {
    if json.get("status").and_then(Value::as_str) != Some("success") {
        let kind = json.get("errorType").and_then(Value::as_str).unwrap_or("");
        let msg = json
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unexpected answer");
        return Attempt::fail(format!("prometheus error: {kind}{}{msg}", sep(kind)));
    }
    let data = json.get("data");
    let kind = data
        .and_then(|d| d.get("resultType"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let result = data.and_then(|d| d.get("result"));
    let samples: Vec<(String, Result<f64, String>)> = match (kind, result) {
        ("vector", Some(Value::Array(items))) => items
            .iter()
            .map(|s| {
                let labels = s.get("metric").map(labels).unwrap_or_default();
                (labels, number(s.get("value")))
            })
            .collect(),
        ("scalar", Some(v)) => vec![(String::new(), number(Some(v)))],
        _ => {
            return Attempt::fail(format!(
                "unsupported result type {kind:?}: use a query giving an instant vector or a scalar"
            ));
        }
    };
    if samples.is_empty() {
        return Attempt::fail("no data");
    }
    // What an analysis' conditions read: the first sample as `result`, all of them as
    // `results` (only numbers: a sample that is not one leaves nothing to judge).
    let measured: Vec<f64> = samples
        .iter()
        .filter_map(|(_, v)| v.as_ref().ok().copied())
        .filter(|v| !v.is_nan())
        .collect();
    let attempt = judge_samples(&samples, bounds);
    match measured.first() {
        Some(first) if measured.len() == samples.len() => attempt
            .with("result", *first)
            .with("results", measured.clone()),
        _ => attempt,
    }
}

fn judge_samples(samples: &[(String, Result<f64, String>)], bounds: Bounds) -> Attempt {
    let mut values = Vec::with_capacity(samples.len());
    let mut bad: Vec<String> = Vec::new();
    for (labels, v) in samples {
        let problem = match v {
            Err(e) => Some(e.clone()),
            Ok(v) if v.is_nan() => Some("value NaN".to_string()),
            Ok(v) => match (bounds.max, bounds.min) {
                (Some(max), _) if *v > max => Some(format!("value {v} > max {max}")),
                (_, Some(min)) if *v < min => Some(format!("value {v} < min {min}")),
                _ => None,
            },
        };
        match problem {
            Some(p) if labels.is_empty() => bad.push(p),
            Some(p) => bad.push(format!("{p} {labels}")),
            None => {
                if let Ok(v) = v {
                    values.push(*v);
                }
            }
        }
    }
    match bad.split_first() {
        Some((first, [])) => Attempt::fail(first.clone()),
        Some((first, rest)) => Attempt::fail(format!("{first} (and {} more)", rest.len())),
        None => match values.as_slice() {
            [one] => Attempt::pass(format!("value {one}")),
            many => {
                let lo = many.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = many.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                Attempt::pass(format!("{} values in [{lo}, {hi}]", many.len()))
            }
        },
    }
}

fn sep(kind: &str) -> &'static str {
    if kind.is_empty() { "" } else { ": " }
}

/// `[timestamp, "value"]` → the value.
fn number(pair: Option<&Value>) -> Result<f64, String> {
    let text = pair
        .and_then(Value::as_array)
        .and_then(|a| a.get(1))
        .and_then(Value::as_str)
        .ok_or_else(|| "malformed sample (expected [time, \"value\"])".to_string())?;
    text.parse::<f64>()
        .map_err(|_| format!("not a number: {text:?}"))
}

/// `{"instance": "a", "job": "b"}` → `{instance="a",job="b"}`.
fn labels(metric: &Value) -> String {
    let Some(m) = metric.as_object() else {
        return String::new();
    };
    if m.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or_default()))
        .collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    const MAX: Bounds = Bounds {
        max: Some(0.01),
        min: None,
    };

    fn vector(values: &[(&str, &str)]) -> Value {
        let result: Vec<Value> = values
            .iter()
            .map(|(inst, v)| json!({"metric": {"instance": inst}, "value": [1.5, v]}))
            .collect();
        json!({"status": "success", "data": {"resultType": "vector", "result": result}})
    }

    #[test]
    fn every_sample_must_be_within_bounds() {
        assert_eq!(
            evaluate(&vector(&[("a", "0.002")]), MAX),
            Attempt::pass("value 0.002")
        );
        assert_eq!(
            evaluate(&vector(&[("a", "0.002"), ("b", "0.2")]), MAX),
            Attempt::fail("value 0.2 > max 0.01 {instance=\"b\"}")
        );
        assert_eq!(
            evaluate(&vector(&[("a", "0.3"), ("b", "0.2")]), MAX),
            Attempt::fail("value 0.3 > max 0.01 {instance=\"a\"} (and 1 more)")
        );
        assert_eq!(
            evaluate(&vector(&[("a", "NaN")]), MAX),
            Attempt::fail("value NaN {instance=\"a\"}")
        );
        let min = Bounds {
            max: None,
            min: Some(1.0),
        };
        assert_eq!(
            evaluate(&vector(&[("a", "0.5")]), min),
            Attempt::fail("value 0.5 < min 1 {instance=\"a\"}")
        );
    }

    #[test]
    fn scalars_empty_results_and_errors() {
        let scalar = json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "0.001"]}});
        assert_eq!(evaluate(&scalar, MAX), Attempt::pass("value 0.001"));
        assert_eq!(evaluate(&vector(&[]), MAX), Attempt::fail("no data"));
        let err = json!({"status": "error", "errorType": "bad_data", "error": "parse error"});
        assert_eq!(
            evaluate(&err, MAX),
            Attempt::fail("prometheus error: bad_data: parse error")
        );
        let matrix = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
        assert!(evaluate(&matrix, MAX).observed.contains("unsupported"));
        let garbage = json!({"status": "success", "data": {"resultType": "vector", "result": [{"value": 3}]}});
        assert!(!evaluate(&garbage, MAX).passed);
    }
}
