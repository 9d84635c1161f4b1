//! `rdeploy show RUN --html FILE`: one self-contained page picturing a run.
//!
//! Owns the page: a header (run, playbook, outcome, who, label), a timeline of the run's
//! batches with each host's state in it (changed, ok, failed, rolled back), the gate failures,
//! rollbacks and an approval the run waits for, and one chart per analysis metric and batch:
//! its measurements over time (inline SVG, colored by verdict) against the thresholds its
//! conditions name (`result < 0.01` draws a line at 0.01). No script, style sheet or font is
//! fetched: the page opens without network access. It must not read files or journals.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::backup::journal::Record;

/// What the page's header says.
#[derive(Clone, Debug, Default)]
pub struct Header {
    /// The run's id.
    pub run_id: String,
    /// The playbook as given.
    pub playbook: String,
    /// How the run ended (`success`, `rolled_back`, `awaiting-approval`...).
    pub outcome: String,
    /// Start and end (RFC 3339).
    pub started: Option<String>,
    /// End.
    pub ended: Option<String>,
    /// `user@controller`.
    pub who: Option<String>,
    /// The release label.
    pub label: Option<String>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
.host{display:inline-block;margin:2px;padding:2px 6px;border-radius:4px;font-size:.9em}\
.changed{background:#fde68a}.ok{background:#bbf7d0}.failed{background:#fca5a5}\
.rolled_back{background:#c7d2fe}.unfinished{background:#e5e7eb}\
.mark{color:#b91c1c;font-weight:bold}.wait{color:#92400e;font-weight:bold}\
.chart{margin:1em 0}.chart svg{border:1px solid #ddd;background:#fff}";

/// The whole page.
pub fn page(h: &Header, recs: &[Record]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>rdeploy run {id}</title>\
         <style>{STYLE}</style></head><body>\n<h1>rdeploy run {id}</h1>\n<p>playbook <b>{pb}</b>: \
         <b id=\"outcome\">{outcome}</b>",
        id = esc(&h.run_id),
        pb = esc(&h.playbook),
        outcome = esc(&h.outcome),
    );
    if let Some(l) = &h.label {
        let _ = write!(out, ", release <b>{}</b>", esc(l));
    }
    if let Some(w) = &h.who {
        let _ = write!(out, ", by {}", esc(w));
    }
    let _ = writeln!(
        out,
        ", from {} to {}</p>",
        esc(h.started.as_deref().unwrap_or("-")),
        esc(h.ended.as_deref().unwrap_or("-"))
    );
    timeline(&mut out, h, recs);
    charts(&mut out, recs);
    out.push_str("</body></html>\n");
    out
}

/// The batches in order with their hosts' states and what happened between them.
fn timeline(out: &mut String, h: &Header, recs: &[Record]) {
    // Each host's state in this run: its last result, then a rollback over it.
    let mut state: BTreeMap<&str, &str> = BTreeMap::new();
    for r in recs {
        match r {
            Record::Result { host, status, .. } => {
                let s = match status.as_str() {
                    "changed" => "changed",
                    "failed" | "unreachable" | "interrupted" => "failed",
                    _ if state.get(host.as_str()) == Some(&"changed") => "changed",
                    _ => "ok",
                };
                if state.get(host.as_str()) != Some(&"failed") {
                    state.insert(host, s);
                }
            }
            Record::Rollback {
                host, error: None, ..
            } => {
                state.insert(host, "rolled_back");
            }
            _ => {}
        }
    }
    out.push_str("<h2>Timeline</h2>\n<table id=\"timeline\"><tr><th>step</th><th>hosts</th><th>what happened</th></tr>\n");
    for r in recs {
        match r {
            Record::Batch { play, index, hosts } => {
                let _ = write!(
                    out,
                    "<tr class=\"batch\"><td>play {} batch {index}</td><td>",
                    play + 1
                );
                for host in hosts {
                    let s = state.get(host.as_str()).copied().unwrap_or("unfinished");
                    let _ = write!(
                        out,
                        "<span class=\"host {s}\" title=\"{s}\">{}</span>",
                        esc(host)
                    );
                }
                out.push_str("</td><td>");
                let ended = recs.iter().any(|e| {
                    matches!(e, Record::BatchEnd { play: p, index: i, .. } if p == play && i == index)
                });
                if ended {
                    out.push_str("finished");
                }
                out.push_str("</td></tr>\n");
            }
            Record::GateFailed {
                play,
                batch,
                reason,
            } => {
                let _ = writeln!(
                    out,
                    "<tr><td>play {} batch {batch}</td><td></td><td class=\"mark\">gate failed: {}</td></tr>",
                    play + 1,
                    esc(reason)
                );
            }
            Record::Rollback {
                host,
                restored,
                error,
                ..
            } => {
                let what = match error {
                    None => format!("rolled back ({restored} restored)"),
                    Some(e) => format!("rollback incomplete: {e}"),
                };
                let _ = writeln!(
                    out,
                    "<tr><td>rollback</td><td><span class=\"host rolled_back\">{}</span></td><td class=\"mark\">{}</td></tr>",
                    esc(host),
                    esc(&what)
                );
            }
            _ => {}
        }
    }
    if h.outcome == "awaiting-approval" {
        out.push_str("<tr><td>approval</td><td></td><td class=\"wait\">awaiting approval: <code>rdeploy approve</code> goes on, <code>rdeploy reject</code> rolls back</td></tr>\n");
    }
    out.push_str("</table>\n");
}

/// A threshold a condition names: `result < 0.01` → 0.01.
fn threshold(cond: &str) -> Option<f64> {
    let c = cond.trim();
    let rest = c.strip_prefix("result")?.trim_start();
    let rest = ["<=", ">=", "<", ">"]
        .iter()
        .find_map(|op| rest.strip_prefix(op))?
        .trim();
    rest.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// One chart per (play, batch, metric): its measurements over time.
fn charts(out: &mut String, recs: &[Record]) {
    type Point = (f64, f64, String);
    let mut series: BTreeMap<(usize, usize, String), Vec<Point>> = BTreeMap::new();
    let mut conditions: BTreeMap<(usize, usize, String), Vec<(String, f64)>> = BTreeMap::new();
    for r in recs {
        match r {
            Record::Analysis {
                play,
                batch,
                metrics,
            } => {
                for (name, success, failure) in metrics {
                    let lines = conditions.entry((*play, *batch, name.clone())).or_default();
                    for (kind, c) in [("success", success), ("failure", failure)] {
                        if let Some(t) = c.as_deref().and_then(threshold) {
                            lines.push((kind.to_string(), t));
                        }
                    }
                }
            }
            Record::Measurement {
                play,
                batch,
                metric,
                verdict,
                value,
                at_s,
                ..
            } => {
                let y = value.as_ref().and_then(|v| match v {
                    serde_json::Value::Bool(b) => Some(f64::from(u8::from(*b))),
                    other => other.as_f64(),
                });
                if let Some(y) = y {
                    series
                        .entry((*play, *batch, metric.clone()))
                        .or_default()
                        .push((*at_s, y, verdict.clone()));
                }
            }
            _ => {}
        }
    }
    if series.is_empty() {
        return;
    }
    out.push_str("<h2>Analysis</h2>\n");
    for ((play, batch, metric), points) in &series {
        let lines = conditions
            .get(&(*play, *batch, metric.clone()))
            .cloned()
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<div class=\"chart\"><div>play {} batch {batch}: <b>{}</b></div>{}</div>",
            play + 1,
            esc(metric),
            svg(points, &lines)
        );
    }
}

fn svg(points: &[(f64, f64, String)], lines: &[(String, f64)]) -> String {
    let (w, h, pad) = (520.0, 180.0, 36.0);
    let xmax = points.iter().map(|p| p.0).fold(1.0_f64, f64::max);
    let ys = points.iter().map(|p| p.1).chain(lines.iter().map(|l| l.1));
    let (mut lo, mut hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    if (hi - lo).abs() < 1e-12 {
        lo -= 1.0;
        hi += 1.0;
    }
    let x = |t: f64| pad + t / xmax * (w - 2.0 * pad);
    let y = |v: f64| h - pad - (v - lo) / (hi - lo) * (h - 2.0 * pad);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">"
    );
    let _ = write!(
        s,
        "<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#999\"/>\
         <line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{b}\" stroke=\"#999\"/>\
         <text x=\"2\" y=\"{ty}\" font-size=\"10\">{hi}</text><text x=\"2\" y=\"{by}\" font-size=\"10\">{lo}</text>\
         <text x=\"{r}\" y=\"{tb}\" font-size=\"10\" text-anchor=\"end\">{xmax:.0} s</text>",
        b = h - pad,
        r = w - pad,
        ty = pad + 4.0,
        by = h - pad,
        tb = h - pad + 14.0,
    );
    for (kind, t) in lines {
        let color = if kind == "failure" {
            "#dc2626"
        } else {
            "#16a34a"
        };
        let _ = write!(
            s,
            "<line class=\"threshold\" x1=\"{pad}\" y1=\"{yy:.1}\" x2=\"{r}\" y2=\"{yy:.1}\" stroke=\"{color}\" stroke-dasharray=\"4 3\"/>\
             <text x=\"{r}\" y=\"{ly:.1}\" font-size=\"10\" fill=\"{color}\" text-anchor=\"end\">{kind} {t}</text>",
            yy = y(*t),
            r = w - pad,
            ly = y(*t) - 3.0,
        );
    }
    let pts: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
        .collect();
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#2563eb\" stroke-width=\"2\" points=\"{}\"/>",
        pts.join(" ")
    );
    for (t, v, verdict) in points {
        let color = match verdict.as_str() {
            "success" => "#16a34a",
            "failure" => "#dc2626",
            _ => "#d97706",
        };
        let _ = write!(
            s,
            "<circle class=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{color}\"><title>{t:.1} s: {v} ({})</title></circle>",
            esc(verdict),
            x(*t),
            y(*v),
            esc(verdict)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_come_from_simple_conditions() {
        assert_eq!(threshold("result < 0.01"), Some(0.01));
        assert_eq!(threshold(" result >= 5 "), Some(5.0));
        assert_eq!(threshold("result <= baseline * 1.1"), None);
        assert_eq!(threshold("latency_ms < 300"), None);
    }

    #[test]
    fn a_page_has_the_timeline_and_a_chart_per_metric() {
        let recs = vec![
            Record::Batch {
                play: 0,
                index: 1,
                hosts: vec!["web1".into()],
            },
            Record::Result {
                host: "web1".into(),
                task: "copy".into(),
                status: "changed".into(),
                step: Some(1),
            },
            Record::Analysis {
                play: 0,
                batch: 1,
                metrics: vec![("errors".into(), Some("result < 0.01".into()), None)],
            },
            Record::Measurement {
                play: 0,
                batch: 1,
                metric: "errors".into(),
                hosts: vec!["web1".into()],
                n: 1,
                verdict: "success".into(),
                value: Some(serde_json::json!(0.001)),
                observed: "value 0.001".into(),
                at_s: 0.0,
            },
            Record::Measurement {
                play: 0,
                batch: 1,
                metric: "errors".into(),
                hosts: vec!["web1".into()],
                n: 2,
                verdict: "failure".into(),
                value: Some(serde_json::json!(0.5)),
                observed: "value 0.5".into(),
                at_s: 1.0,
            },
        ];
        let h = Header {
            run_id: "R<1>".into(),
            outcome: "rolled_back".into(),
            ..Header::default()
        };
        let p = page(&h, &recs);
        assert!(p.contains("rdeploy run R&lt;1&gt;"), "{p}");
        assert!(
            p.contains("<span class=\"host changed\" title=\"changed\">web1</span>"),
            "{p}"
        );
        assert_eq!(p.matches("<circle").count(), 2, "{p}");
        assert!(p.contains("class=\"threshold\""), "{p}");
        // Nothing is fetched: no script, style sheet, image or font from anywhere.
        assert!(
            !p.contains("src=") && !p.contains("<link") && !p.contains("<script"),
            "{p}"
        );
    }
}
