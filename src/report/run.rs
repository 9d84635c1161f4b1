//! The run reporter: renders [`Event`]s as Ansible-style text for people (colours only on a
//! terminal, `NO_COLOR` respected) or as JSON lines for machines.
//!
//! Owns every line printed during a run, and the run's other sinks, fed whatever the output
//! mode: `--log-file` (every event as a JSON line, appended), the report tracker
//! (`--report`, see `summary.rs`) and webhooks (`--notify`, see `notify.rs`). `--quiet`
//! keeps only failures, warnings, gate failures, rollbacks and the recap on screen (a failed
//! task's banner is shown with its first failure). It must not decide outcomes: it shows
//! what the executor reports, hiding results of `no_log` tasks and masking every registered
//! secret (`vault::redact`) in everything it writes.
//!
//! On a terminal it can also draw progress bars (`progress.rs`, `--progress`): it feeds them
//! every event and prints its lines with the bars lifted, so the lines are the same bytes as
//! without bars and the bars stay below them; the bars are cleared before the recap.

use std::io::{self, IsTerminal, Write};

use crate::exec::outcome::{HostOutcome, Status};
use crate::modules::runtime::Change;
use crate::report::events::Event;
use crate::report::notify::Notifier;
use crate::report::progress::Bars;
use crate::report::summary::{self, RunFacts, Tracker};

/// How the run is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Text for people.
    Human,
    /// One JSON object per event, per line.
    Json,
}

/// Writes run events to a stream.
pub struct Reporter {
    out: Box<dyn Write + Send>,
    /// One event's text, redacted before it reaches `out`.
    buf: Vec<u8>,
    format: Format,
    color: bool,
    verbose: u8,
    diff: bool,
    /// `--quiet`: only failures and the recap on screen.
    quiet: bool,
    /// `--quiet`: the banner of the task in flight, shown with its first failure.
    held_banner: Option<String>,
    /// `--log-file`.
    log: Option<Box<dyn Write + Send>>,
    /// The run's id, once known (log lines and webhooks carry it).
    run_id: Option<String>,
    /// What the final report needs.
    tracker: Tracker,
    /// `--notify`.
    notifier: Option<Notifier>,
    /// What every webhook payload carries: `label`, `user`, `controller`, `environment`.
    notify_context: serde_json::Map<String, serde_json::Value>,
    /// `--progress`: bars below the lines, on a terminal.
    bars: Option<Bars>,
}

const NO_LOG_MSG: &str =
    "the output has been hidden due to the fact that 'no_log: true' was specified for this result";

/// A stream that keeps what is written, for reading back afterwards (a check-mode run's
/// events, say).
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// What was written so far, as text.
    pub fn text(&self) -> String {
        let b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&b).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Reporter {
    /// A reporter on stdout. Colours when stdout is a terminal and `NO_COLOR` is unset.
    pub fn stdout(format: Format, verbose: u8, diff: bool) -> Reporter {
        let color =
            io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Reporter::new(Box::new(io::stdout()), format, color, verbose, diff)
    }

    /// A reporter on any stream (tests read what a user would see).
    pub fn new(
        out: Box<dyn Write + Send>,
        format: Format,
        color: bool,
        verbose: u8,
        diff: bool,
    ) -> Reporter {
        Reporter {
            out,
            buf: Vec::new(),
            format,
            color,
            verbose,
            diff,
            quiet: false,
            held_banner: None,
            log: None,
            run_id: None,
            tracker: Tracker::default(),
            notifier: None,
            notify_context: serde_json::Map::new(),
            bars: None,
        }
    }

    /// Progress bars on stdout (see `progress::wanted` for when), below the lines.
    pub fn progress(mut self, on: bool) -> Reporter {
        self.bars = on.then(Bars::stdout);
        self
    }

    /// Progress bars drawn by `bars` (tests draw them on an in-memory terminal).
    pub fn with_bars(mut self, bars: Bars) -> Reporter {
        self.bars = Some(bars);
        self
    }

    /// `--quiet`: only failures, warnings, gate failures, rollbacks and the recap.
    pub fn quiet(mut self, quiet: bool) -> Reporter {
        self.quiet = quiet;
        self
    }

    /// `--log-file`: every event, as a JSON line, to `log` too.
    pub fn log_to(mut self, log: Box<dyn Write + Send>) -> Reporter {
        self.log = Some(log);
        self
    }

    /// `--notify`: webhooks on run end and rollback start.
    pub fn notify(mut self, notifier: Notifier) -> Reporter {
        self.notifier = Some(notifier);
        self
    }

    /// What every webhook payload carries from now on (`label`, `user`, `controller`,
    /// `environment`, `playbook`).
    pub fn set_notify_context(&mut self, ctx: serde_json::Map<String, serde_json::Value>) {
        self.notify_context = ctx;
    }

    /// The `run_start` webhook: the context and the run's id (null in check mode).
    pub fn notify_start(&mut self, check: bool) {
        let body = self.with_context(serde_json::json!({"event": "run_start",
            "run_id": self.run_id, "check": check}));
        if let Some(n) = self.notifier.as_mut() {
            n.send(&body);
        }
    }

    /// `body` with the notify context added (keys it has already win).
    fn with_context(&self, mut body: serde_json::Value) -> serde_json::Value {
        if let Some(m) = body.as_object_mut() {
            for (k, v) in &self.notify_context {
                m.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        body
    }

    /// The run's id, for log lines and webhooks.
    pub fn set_run_id(&mut self, run_id: &str) {
        self.run_id = Some(run_id.to_string());
    }

    /// Shows one event. Output errors (a closed pipe) are ignored: the run goes on.
    /// Each event is rendered whole, then every registered secret (vault values,
    /// `secret_vars`) is masked before it is written.
    pub fn emit(&mut self, e: &Event<'_>) {
        if let Some(bars) = self.bars.as_mut() {
            bars.observe(e);
        }
        if e.progress_only() {
            return;
        }
        self.buf.clear();
        self.tracker.observe(e);
        if self.log.is_some() {
            let _ = self.log_line(e);
        }
        if let Event::RollbackStart { hosts, .. } = e {
            let body = self.with_context(serde_json::json!({"event": "rollback_start",
                "run_id": self.run_id, "hosts": hosts}));
            if let Some(n) = self.notifier.as_mut() {
                n.send(&body);
            }
        }
        if self.quiet && !self.shown_when_quiet(e) {
            return;
        }
        if matches!(e, Event::StateDir { .. } | Event::FilePlane { .. }) && self.verbose == 0 {
            return;
        }
        let _ = match self.format {
            Format::Human => self.human(e),
            Format::Json => {
                let v = self.json_value(e);
                serde_json::to_writer(&mut self.buf, &v)
                    .map_err(io::Error::from)
                    .and_then(|()| writeln!(self.buf))
            }
        };
        let text = String::from_utf8_lossy(&self.buf);
        let text = crate::vault::redact::redact(&text);
        let out = &mut self.out;
        let mut write = || {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        };
        match &self.bars {
            Some(bars) if !text.is_empty() => bars.suspend(write),
            _ => write(),
        }
    }

    /// `--quiet`: whether `e` is shown. A task's banner is held back and shown before its
    /// first failure.
    fn shown_when_quiet(&mut self, e: &Event<'_>) -> bool {
        match e {
            Event::TaskStart { label, handler, .. } => {
                let kind = if *handler { "RUNNING HANDLER" } else { "TASK" };
                self.held_banner = Some(format!("{kind} [{label}]"));
                false
            }
            Event::Host(o) => {
                let failed =
                    o.status == Status::Unreachable || (o.status == Status::Failed && !o.ignored);
                if failed
                    && self.format == Format::Human
                    && let Some(b) = self.held_banner.take()
                {
                    let _ = self.banner(&b);
                }
                failed
            }
            Event::Probe { passed, .. } => !passed,
            Event::Measurement { verdict, .. } => *verdict != "success",
            Event::StateDir { .. } | Event::FilePlane { .. } => false,
            Event::Warning(_)
            | Event::GateFailed { .. }
            | Event::RollbackStart { .. }
            | Event::Rollback(_)
            | Event::Recap { .. } => true,
            Event::PlayStart { .. }
            | Event::BatchStart { .. }
            | Event::GateStart { .. }
            | Event::Analysis { .. }
            | Event::RunEnd { .. }
            | Event::HostStart { .. }
            | Event::Soak { .. } => false,
        }
    }

    /// `--log-file`: the event as JSON with its time and the run's id.
    fn log_line(&mut self, e: &Event<'_>) -> io::Result<()> {
        let mut v = self.json_value(e);
        if let Some(m) = v.as_object_mut() {
            m.insert("t".into(), serde_json::json!(crate::backup::journal::now()));
            m.insert("run_id".into(), serde_json::json!(self.run_id));
        }
        if let Some(log) = self.log.as_mut() {
            let text = v.to_string();
            writeln!(log, "{}", crate::vault::redact::redact(&text))?;
            log.flush()?;
        }
        Ok(())
    }

    /// The end of the run: the report document (per host from the events seen, the rest from
    /// `facts`), after the webhooks got it and finished; their failures are shown as
    /// warnings.
    pub async fn finish(&mut self, facts: &RunFacts) -> serde_json::Value {
        let doc = summary::document(facts, &self.tracker.hosts());
        if let Some(mut n) = self.notifier.take() {
            let mut body = self.with_context(doc.clone());
            if let Some(m) = body.as_object_mut() {
                m.insert("event".into(), serde_json::json!("run_end"));
            }
            n.send(&body);
            for w in n.finish().await {
                self.emit(&Event::Warning(&w));
            }
        }
        doc
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn banner(&mut self, title: &str) -> io::Result<()> {
        let stars = 72usize.saturating_sub(title.chars().count() + 1).max(3);
        writeln!(self.buf, "\n{title} {}", "*".repeat(stars))
    }

    fn human(&mut self, e: &Event<'_>) -> io::Result<()> {
        match e {
            Event::PlayStart { name, .. } => self.banner(&format!("PLAY [{name}]")),
            Event::BatchStart {
                index,
                total,
                hosts,
            } => {
                if *total > 1 {
                    self.banner(&format!("BATCH {index}/{total} [{}]", hosts.join(", ")))?;
                }
                Ok(())
            }
            Event::TaskStart {
                label,
                handler,
                check,
                ..
            } => {
                let kind = if *handler { "RUNNING HANDLER" } else { "TASK" };
                let suffix = if *check { " (check mode)" } else { "" };
                self.banner(&format!("{kind} [{label}]{suffix}"))
            }
            Event::Host(o) => self.host_line(o),
            // Progress only: `emit` never gets here with them.
            Event::HostStart { .. } | Event::Soak { .. } => Ok(()),
            Event::Warning(w) => {
                let line = self.paint("35", &format!("[WARNING]: {w}"));
                writeln!(self.buf, "{line}")
            }
            Event::StateDir { host, dir } => {
                writeln!(self.buf, "backups: [{host}] => state directory {dir}")
            }
            Event::FilePlane { host, plane } => {
                writeln!(self.buf, "files: [{host}] => {plane}")
            }
            Event::GateStart {
                index, total, soak, ..
            } => {
                let after = if *soak { " after soak" } else { "" };
                self.banner(&format!("HEALTH [batch {index}/{total}{after}]"))
            }
            Event::Probe {
                host,
                probe,
                passed,
                attempts,
                observed,
            } => {
                let tries = if *attempts == 1 { "try" } else { "tries" };
                let (word, code) = if *passed {
                    ("ok", "32")
                } else {
                    ("fatal", "31")
                };
                let verdict = if *passed { "" } else { "FAILED! " };
                let line = self.paint(
                    code,
                    &format!(
                        "{word}: [{host}] => {verdict}{probe}: {observed} ({attempts} {tries})"
                    ),
                );
                writeln!(self.buf, "{line}")
            }
            Event::Analysis {
                index,
                total,
                metrics,
                seconds,
            } => self.banner(&format!(
                "ANALYSIS [batch {index}/{total}: {} for {seconds}s]",
                metrics.join(", ")
            )),
            Event::Measurement {
                hosts,
                metric,
                n,
                of,
                verdict,
                observed,
                at_s,
                ..
            } => {
                let (word, code) = match *verdict {
                    "success" => ("ok", "32"),
                    "failure" => ("fatal", "31"),
                    _ => ("inconclusive", "33"),
                };
                let line = self.paint(
                    code,
                    &format!(
                        "{word}: [{}] => {metric} {n}/{of} at {at_s:.1}s: {observed}",
                        hosts.join(", ")
                    ),
                );
                writeln!(self.buf, "{line}")
            }
            Event::GateFailed {
                index,
                reason,
                action,
            } => {
                let what = if *action == "rollback" {
                    "rolling it back and stopping"
                } else {
                    "stopping (on_failure: halt, nothing is rolled back)"
                };
                let line = self.paint(
                    "31",
                    &format!("[ERROR]: batch {index} failed: {reason}; {what}"),
                );
                writeln!(self.buf, "{line}")
            }
            Event::RollbackStart { hosts, switch_back } => {
                let what = if *switch_back {
                    "SWITCH BACK"
                } else {
                    "ROLLBACK"
                };
                self.banner(&format!("{what} [{}]", hosts.join(", ")))
            }
            Event::Rollback(r) => {
                let line = if r.clean() {
                    let what = if r.nothing_recorded {
                        "nothing was recorded to restore".to_string()
                    } else {
                        format!("{} of {} backups restored", r.restored, r.entries)
                    };
                    self.paint("33", &format!("restored: [{}] => {what}", r.host))
                } else {
                    // One line per failure, each saying its kind.
                    let mut text = format!(
                        "fatal: [{}]: ROLLBACK INCOMPLETE! {} of {} backups restored",
                        r.host, r.restored, r.entries
                    );
                    for e in &r.errors {
                        text.push_str("\n  - ");
                        text.push_str(&e.to_string());
                    }
                    self.paint("31", &text)
                };
                writeln!(self.buf, "{line}")
            }
            Event::RunEnd {
                run_id, journal, ..
            } => {
                writeln!(
                    self.buf,
                    "\nrun {run_id} recorded in {journal}\n(undo it with: rdeploy rollback {run_id})"
                )
            }
            Event::Recap { rows } => {
                self.banner("PLAY RECAP")?;
                let width = rows.iter().map(|(h, _)| h.len()).max().unwrap_or(0);
                // Sorted by name, as ansible-playbook's recap is.
                let mut sorted: Vec<_> = rows.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                for (host, r) in sorted {
                    let code = if r.unreachable > 0 || r.failed > 0 {
                        "31"
                    } else if r.changed > 0 {
                        "33"
                    } else {
                        "32"
                    };
                    let name = self.paint(code, &format!("{host:width$}"));
                    let why = match r.reach {
                        Some(reach) if r.unreachable > 0 => format!("  ({})", reach.describe()),
                        _ => String::new(),
                    };
                    writeln!(
                        self.buf,
                        "{name} : ok={:<4} changed={:<4} unreachable={:<4} failed={:<4} skipped={:<4} rescued={:<4} ignored={}{why}",
                        r.ok, r.changed, r.unreachable, r.failed, r.skipped, r.rescued, r.ignored
                    )?;
                }
                Ok(())
            }
        }
    }

    fn status_color(s: Status) -> &'static str {
        match s {
            Status::Ok => "32",
            Status::Changed => "33",
            Status::Skipped => "36",
            Status::Failed | Status::Unreachable => "31",
        }
    }

    fn host_line(&mut self, o: &HostOutcome) -> io::Result<()> {
        let host = match &o.delegated_to {
            Some(d) => format!("{} -> {d}", o.host),
            None => o.host.clone(),
        };
        if !o.items.is_empty() {
            for item in &o.items {
                let label = if o.no_log {
                    "None".to_string()
                } else {
                    item.label.clone()
                };
                let mut line = format!("{}: [{host}] => (item={label})", item.status.word());
                if let (Some(m), false) = (&item.msg, o.no_log) {
                    line.push_str(&format!(" => {m}"));
                }
                let line = self.paint(Self::status_color(item.status), &line);
                writeln!(self.buf, "{line}")?;
            }
        }
        let word = o.status.word();
        let mut line = match o.status {
            Status::Failed if o.ignored => format!("{word}: [{host}]: FAILED! (ignored)"),
            Status::Failed => format!("{word}: [{host}]: FAILED!"),
            Status::Unreachable => match o.reach {
                Some(r) if r != crate::transport::Reach::Unreachable => {
                    format!("fatal: [{host}]: UNREACHABLE! ({})", r.describe())
                }
                _ => format!("fatal: [{host}]: UNREACHABLE!"),
            },
            _ => format!("{word}: [{host}]"),
        };
        let show_result = matches!(o.status, Status::Failed | Status::Unreachable)
            || self.verbose > 0
            || is_debug(o);
        if show_result {
            if o.no_log {
                line.push_str(&format!(" => {{\"censored\": \"{NO_LOG_MSG}\"}}"));
            } else {
                line.push_str(&format!(" => {}", summary_json(o, self.verbose)));
            }
        }
        if self.verbose > 1 {
            line.push_str(&format!(
                " ({:.3}s, {} command{})",
                o.duration.as_secs_f64(),
                o.commands,
                if o.commands == 1 { "" } else { "s" }
            ));
        }
        let line = self.paint(Self::status_color(o.status), &line);
        if o.items.is_empty()
            || matches!(o.status, Status::Failed | Status::Unreachable)
            || self.verbose > 0
        {
            writeln!(self.buf, "{line}")?;
        }
        if self.diff && !o.no_log {
            for c in &o.changes {
                let text = render_change(c);
                for l in text.lines() {
                    let painted = match l.as_bytes().first() {
                        Some(b'+') if !l.starts_with("+++") => self.paint("32", l),
                        Some(b'-') if !l.starts_with("---") => self.paint("31", l),
                        Some(b'@') => self.paint("36", l),
                        _ => l.to_string(),
                    };
                    writeln!(self.buf, "{painted}")?;
                }
            }
        }
        Ok(())
    }

    fn json_value(&self, e: &Event<'_>) -> serde_json::Value {
        match e {
            Event::PlayStart {
                name,
                hosts,
                batches,
            } => {
                serde_json::json!({"event": "play", "name": name, "hosts": hosts, "batches": batches})
            }
            Event::BatchStart {
                index,
                total,
                hosts,
            } => {
                serde_json::json!({"event": "batch", "index": index, "total": total, "hosts": hosts})
            }
            Event::TaskStart {
                label,
                handler,
                check,
                ..
            } => {
                serde_json::json!({"event": "task", "name": label, "handler": handler, "check": check})
            }
            Event::Host(o) => {
                let mut v = serde_json::to_value(o).unwrap_or_default();
                if o.no_log
                    && let Some(m) = v.as_object_mut()
                {
                    m.insert("result".into(), serde_json::json!({"censored": NO_LOG_MSG}));
                    m.remove("msg");
                    m.remove("items");
                }
                if self.diff
                    && !o.no_log
                    && let Some(m) = v.as_object_mut()
                {
                    let diffs: Vec<String> = o.changes.iter().map(render_change).collect();
                    m.insert("diff".into(), serde_json::json!(diffs));
                }
                serde_json::json!({"event": "result", "result": v})
            }
            Event::Warning(w) => serde_json::json!({"event": "warning", "msg": w}),
            Event::StateDir { host, dir } => {
                serde_json::json!({"event": "state_dir", "host": host, "dir": dir})
            }
            Event::FilePlane { host, plane } => {
                serde_json::json!({"event": "file_plane", "host": host, "plane": plane})
            }
            // Progress only: `emit` never gets here with them.
            Event::HostStart { .. } | Event::Soak { .. } => serde_json::Value::Null,
            Event::GateStart {
                index, total, soak, ..
            } => {
                serde_json::json!({"event": "health", "batch": index, "total": total, "soak": soak})
            }
            Event::Probe {
                host,
                probe,
                passed,
                attempts,
                observed,
            } => serde_json::json!({"event": "probe", "host": host, "probe": probe,
                "passed": passed, "attempts": attempts, "observed": observed}),
            Event::Analysis {
                index,
                total,
                metrics,
                seconds,
            } => serde_json::json!({"event": "analysis", "batch": index, "total": total,
                "metrics": metrics, "seconds": seconds}),
            Event::Measurement {
                hosts,
                metric,
                n,
                of,
                verdict,
                value,
                observed,
                at_s,
            } => serde_json::json!({"event": "measurement", "hosts": hosts, "metric": metric,
                "n": n, "of": of, "verdict": verdict, "value": value, "observed": observed,
                "at_s": at_s}),
            Event::GateFailed {
                index,
                reason,
                action,
            } => serde_json::json!({"event": "gate_failed", "batch": index, "reason": reason,
                "action": action}),
            Event::RollbackStart { hosts, switch_back } => {
                let mut v = serde_json::json!({"event": "rollback_start", "hosts": hosts});
                if *switch_back {
                    v["switch_back"] = serde_json::Value::Bool(true);
                }
                v
            }
            Event::Rollback(r) => serde_json::json!({"event": "rollback", "rollback": r}),
            Event::RunEnd {
                run_id,
                journal,
                timing,
            } => {
                serde_json::json!({"event": "run_end", "run_id": run_id, "journal": journal,
                    "timing": timing})
            }
            Event::Recap { rows } => {
                let m: serde_json::Map<String, serde_json::Value> = rows
                    .iter()
                    .map(|(h, r)| (h.clone(), serde_json::to_value(r).unwrap_or_default()))
                    .collect();
                serde_json::json!({"event": "recap", "hosts": m})
            }
        }
    }
}

fn is_debug(o: &HostOutcome) -> bool {
    o.show
}

/// The part of a result shown after `=>`: Ansible shows the whole result dict; we show it
/// without the bulky line lists unless -vv.
fn summary_json(o: &HostOutcome, verbose: u8) -> String {
    let mut m = o.result.clone();
    if verbose < 2 {
        m.remove("stdout_lines");
        m.remove("stderr_lines");
    }
    // A timed-out step's whole internal script: only for whoever asked with -vvv.
    if verbose < 3 {
        m.remove("script");
    }
    if let (Some(msg), false) = (&o.msg, m.contains_key("msg")) {
        m.insert("msg".into(), serde_json::Value::from(msg.clone()));
    }
    serde_json::to_string(&m).unwrap_or_default()
}

/// `--diff` text for one change: a unified diff for content, before/after for attributes.
pub fn render_change(c: &Change) -> String {
    match c {
        Change::Content {
            path,
            before,
            after,
        } => {
            let old = before.as_deref().unwrap_or("");
            let diff = similar::TextDiff::from_lines(old, after.as_str());
            let from = if before.is_some() {
                format!("before: {path}")
            } else {
                "before: (absent)".to_string()
            };
            diff.unified_diff()
                .context_radius(3)
                .header(&from, &format!("after: {path}"))
                .to_string()
        }
        Change::Attr {
            subject,
            what,
            before,
            after,
        } => {
            format!(
                "--- before: {subject}\n+++ after: {subject}\n-  {what}: {before}\n+  {what}: {after}\n"
            )
        }
        Change::Run { command } => format!("would run: {command}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_diff_is_unified() {
        let c = Change::Content {
            path: "/srv/app.conf".into(),
            before: Some("port=80\nname=x\n".into()),
            after: "port=8080\nname=x\n".into(),
        };
        let d = render_change(&c);
        assert!(d.contains("--- before: /srv/app.conf"), "{d}");
        assert!(d.contains("-port=80\n"), "{d}");
        assert!(d.contains("+port=8080\n"), "{d}");
    }

    #[test]
    fn attr_diff_shows_before_and_after() {
        let c = Change::Attr {
            subject: "/srv/x".into(),
            what: "mode".into(),
            before: "0644".into(),
            after: "0600".into(),
        };
        assert_eq!(
            render_change(&c),
            "--- before: /srv/x\n+++ after: /srv/x\n-  mode: 0644\n+  mode: 0600\n"
        );
    }

    #[test]
    fn the_recap_lists_hosts_sorted_by_name_as_ansible_does() {
        let out = Captured::default();
        let mut r = Reporter::new(Box::new(out.clone()), Format::Human, false, 0, false);
        let rows: Vec<_> = ["web2", "db1", "web10"]
            .iter()
            .map(|h| (h.to_string(), crate::exec::outcome::Recap::default()))
            .collect();
        r.emit(&Event::Recap { rows: &rows });
        drop(r);
        let text = out.text();
        let order: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next().filter(|_| l.contains(" : ok=")))
            .collect();
        assert_eq!(order, ["db1", "web10", "web2"], "{text}");
    }

    /// What a run of a few events prints, with or without bars drawn beside it.
    fn printed(bars: Option<Bars>) -> Vec<u8> {
        let out = Captured::default();
        let mut r = Reporter::new(Box::new(out.clone()), Format::Human, false, 0, false);
        if let Some(b) = bars {
            r = r.with_bars(b);
        }
        let hosts = vec!["web1".to_string(), "web2".to_string()];
        let ok = |host: &str, status| HostOutcome {
            commands: 1,
            ..HostOutcome::of(host, status)
        };
        let rows = vec![
            ("web1".to_string(), crate::exec::outcome::Recap::default()),
            ("web2".to_string(), crate::exec::outcome::Recap::default()),
        ];
        for e in [
            Event::PlayStart {
                name: "web",
                hosts: 2,
                batches: 2,
            },
            Event::BatchStart {
                index: 1,
                total: 2,
                hosts: &hosts,
            },
            Event::TaskStart {
                label: "deploy",
                handler: false,
                check: false,
                hosts: &hosts,
            },
            Event::HostStart { host: "web1" },
            Event::HostStart { host: "web2" },
            Event::Host(&ok("web2", Status::Changed)),
            Event::Host(&ok("web1", Status::Failed)),
            Event::Soak {
                index: 1,
                total: 2,
                seconds: 1.0,
            },
            Event::Recap { rows: &rows },
        ] {
            r.emit(&e);
        }
        drop(r);
        out.text().into_bytes()
    }

    #[test]
    fn bars_change_no_byte_of_the_lines() {
        let term = indicatif::InMemoryTerm::new(10, 80);
        let mp = indicatif::MultiProgress::with_draw_target(
            indicatif::ProgressDrawTarget::term_like(Box::new(term.clone())),
        );
        let plain = printed(None);
        let beside_bars = printed(Some(Bars::new(mp)));
        assert!(!plain.is_empty());
        assert_eq!(
            String::from_utf8_lossy(&plain),
            String::from_utf8_lossy(&beside_bars)
        );
        assert!(!plain.contains(&0x1b));
        assert_eq!(
            term.contents().trim(),
            "",
            "the bars are gone after the recap"
        );
    }
}
