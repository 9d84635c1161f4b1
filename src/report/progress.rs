//! Progress bars on a terminal: a bar per batch (batch i/N, the step in flight, hosts done of
//! the step's hosts), the hosts still working on the step (at most [`SHOWN`] lines, the rest
//! counted), and a per-state count of the hosts done, for tasks, health gates (probing, soak)
//! and rollbacks.
//!
//! Owns the one [`MultiProgress`] rdeploy draws on ([`screen`]) and what is drawn on it. The
//! run reporter (`run.rs`) feeds [`Bars`] every event and prints its lines through
//! [`Bars::suspend`]; diagnostic logs (`RDEPLOY_LOG`) go through [`log_writer`]
//! (tracing-indicatif's writer on the same `MultiProgress`): neither tears the bars.
//! [`Board`] is the pure part, events in and a [`View`] out, with every text masked
//! (`vault::redact`). [`wanted`] decides when bars are drawn at all. It must not print lines:
//! those are `run.rs`'s, and without bars nothing here writes a byte.

use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use crate::exec::outcome::{HostOutcome, Status};
use crate::report::events::Event;
use crate::vault::redact::redact;

/// At most this many hosts in flight get a line of their own; the rest are counted.
pub const SHOWN: usize = 5;

/// At most this many failed (or unreachable) hosts are named on the count line.
const NAMED: usize = 3;

/// `--progress`: when to draw bars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum When {
    /// When stdout is a terminal that can move its cursor, the output is human, not `-q`,
    /// and `CI` is unset.
    #[default]
    Auto,
    /// Also with `-q` or `CI`: still only on such a terminal, for human output.
    Always,
    /// Never.
    Never,
}

/// What [`wanted`] needs to know about where stdout goes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Terminal {
    /// stdout is a terminal.
    pub tty: bool,
    /// `TERM` is unset or `dumb`: the terminal cannot move its cursor (indicatif draws
    /// nothing there either).
    pub dumb: bool,
    /// `CI` is set (CI services that give jobs a terminal mangle redrawn lines in their logs).
    pub ci: bool,
}

impl Terminal {
    /// The process's stdout and environment.
    pub fn stdout() -> Terminal {
        let set = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Terminal {
            tty: io::IsTerminal::is_terminal(&io::stdout()),
            dumb: set("TERM").is_none_or(|t| t == "dumb"),
            ci: set("CI").is_some_and(|v| v != "false" && v != "0"),
        }
    }
}

/// Whether to draw bars: never without a terminal that can move its cursor or for JSON
/// output; `auto` also not with `-q` or `CI`.
pub fn wanted(when: When, human: bool, quiet: bool, t: Terminal) -> bool {
    if !t.tty || t.dumb || !human {
        return false;
    }
    match when {
        When::Never => false,
        When::Always => true,
        When::Auto => !quiet && !t.ci,
    }
}

/// The `MultiProgress` the run's bars are drawn on: hidden (drawing nothing) until a reporter
/// shows bars on stdout.
pub fn screen() -> &'static MultiProgress {
    static SCREEN: OnceLock<MultiProgress> = OnceLock::new();
    SCREEN.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::hidden()))
}

/// Before the process exits without the reporter's end (a second Ctrl-C, steps abandoned at
/// the deadline): runs `f` (a last message) with the bars lifted, and leaves them off the
/// screen. Without bars it only runs `f`.
pub fn before_exit<R>(f: impl FnOnce() -> R) -> R {
    let mp = screen();
    let r = mp.suspend(f);
    let _ = mp.clear();
    mp.set_draw_target(ProgressDrawTarget::hidden());
    r
}

/// Takes the bars off the screen while the operator answers a question (a `pause` prompt), so
/// that no redraw covers the question or the reply; they come back below when the returned
/// guard is dropped. Without bars it does nothing.
pub fn lifted() -> Lifted {
    let mp = screen();
    if mp.is_hidden() {
        return Lifted(false);
    }
    let _ = mp.clear();
    mp.set_draw_target(ProgressDrawTarget::hidden());
    Lifted(true)
}

/// The bars lifted by [`lifted`], until this is dropped.
pub struct Lifted(bool);

impl Drop for Lifted {
    fn drop(&mut self) {
        if self.0 {
            screen().set_draw_target(ProgressDrawTarget::term_like_with_hz(
                Box::new(Stdout(console::Term::buffered_stdout())),
                20,
            ));
        }
    }
}

/// The writer diagnostic logs (`RDEPLOY_LOG`) go through: stderr, every registered secret
/// masked, the bars (if any) lifted while a line is written. Each log event arrives as one
/// write.
pub fn log_writer() -> LogWriter {
    LogWriter(tracing_indicatif::IndicatifWriter::new(screen().clone()))
}

/// See [`log_writer`].
pub struct LogWriter(tracing_indicatif::IndicatifWriter<tracing_indicatif::writer::Stderr>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// How a host ended the current step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Nothing to change (or a passed probe, a clean restore).
    Ok,
    /// Changed.
    Changed,
    /// Skipped.
    Skipped,
    /// Failed with `ignore_errors`.
    Ignored,
    /// Failed (or a failed probe, an incomplete restore).
    Failed,
    /// Could not be reached.
    Unreachable,
}

impl Mark {
    const ALL: [Mark; 6] = [
        Mark::Ok,
        Mark::Changed,
        Mark::Skipped,
        Mark::Ignored,
        Mark::Failed,
        Mark::Unreachable,
    ];

    fn word(self) -> &'static str {
        match self {
            Mark::Ok => "ok",
            Mark::Changed => "changed",
            Mark::Skipped => "skipped",
            Mark::Ignored => "ignored",
            Mark::Failed => "failed",
            Mark::Unreachable => "unreachable",
        }
    }

    fn of(o: &HostOutcome) -> Mark {
        match o.status {
            Status::Ok => Mark::Ok,
            Status::Changed => Mark::Changed,
            Status::Skipped => Mark::Skipped,
            Status::Failed if o.ignored => Mark::Ignored,
            Status::Failed => Mark::Failed,
            Status::Unreachable => Mark::Unreachable,
        }
    }
}

/// What the hosts are doing.
#[derive(Clone, Debug, Default, PartialEq)]
enum Step {
    /// No play yet, or the run ended: no bars.
    #[default]
    None,
    /// A play or batch began; no task yet.
    Starting,
    /// A task or handler.
    Task { label: String, handler: bool },
    /// Health probes (`soak`: the round after the soak time).
    Probing { soak: bool },
    /// The `soak`: the probes watched for `seconds`, then probed again.
    Soak { seconds: f64 },
    /// An analysis measuring its metrics for `seconds`.
    Analysis { seconds: f64 },
    /// Restoring backups.
    Rollback,
}

/// The state behind the bars, from the events seen. Pure: time comes in with each event.
#[derive(Debug, Default)]
pub struct Board {
    play: String,
    batch: Option<(usize, usize)>,
    step: Step,
    /// Bumped at each new step (the bar's clock restarts).
    serial: u64,
    /// Hosts the step runs on.
    targets: usize,
    /// Hosts working on the step, in the order they started.
    running: IndexMap<String, Instant>,
    /// The running hosts that have a line, each keeping it until it finishes.
    shown: Vec<String>,
    /// Hosts done with the step, in the order they finished.
    finished: IndexMap<String, Mark>,
}

/// What the bars show now. Every text is already masked.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// Changes when a new step begins.
    pub serial: u64,
    /// `batch i/N`.
    pub prefix: String,
    /// The step: `TASK [name]`, `HEALTH probing`, ...
    pub message: String,
    /// Hosts done and hosts in the step, when the step counts hosts.
    pub progress: Option<(u64, u64)>,
    /// The hosts with a line of their own and how long they have been at it.
    pub hosts: Vec<(String, Duration)>,
    /// More hosts running and waiting, and how those done ended.
    pub footer: String,
}

impl Board {
    /// Takes one event into account, at time `now`.
    pub fn apply(&mut self, e: &Event<'_>, now: Instant) {
        match e {
            Event::PlayStart { name, .. } => {
                self.play = name.to_string();
                self.batch = None;
                self.begin(Step::Starting, &[], now);
            }
            Event::BatchStart { index, total, .. } => {
                self.batch = Some((*index, *total));
                self.begin(Step::Starting, &[], now);
            }
            Event::TaskStart {
                label,
                handler,
                hosts,
                ..
            } => {
                let step = Step::Task {
                    label: label.to_string(),
                    handler: *handler,
                };
                self.begin(step, &[], now);
                self.targets = hosts.len();
            }
            Event::HostStart { host } => {
                if !self.finished.contains_key(*host) && !self.running.contains_key(*host) {
                    self.running.insert(host.to_string(), now);
                    self.fill();
                }
            }
            Event::Host(o) => self.finish(&o.host, Mark::of(o)),
            Event::GateStart { soak, hosts, .. } => {
                self.begin(Step::Probing { soak: *soak }, hosts, now);
            }
            Event::Probe { host, passed, .. } => match self.finished.get_mut(*host) {
                // A host's later probe failed: the host failed.
                Some(m) if !passed => *m = Mark::Failed,
                Some(_) => {}
                None => self.finish(host, if *passed { Mark::Ok } else { Mark::Failed }),
            },
            Event::Soak { seconds, .. } => {
                self.begin(Step::Soak { seconds: *seconds }, &[], now);
            }
            Event::Analysis { seconds, .. } => {
                self.begin(Step::Analysis { seconds: *seconds }, &[], now);
            }
            Event::RollbackStart { hosts, .. } => self.begin(Step::Rollback, hosts, now),
            Event::Rollback(r) => {
                let mark = if r.clean() { Mark::Ok } else { Mark::Failed };
                self.finish(&r.host, mark);
            }
            Event::Recap { .. } => self.begin(Step::None, &[], now),
            Event::Warning(_)
            | Event::StateDir { .. }
            | Event::FilePlane { .. }
            | Event::GateFailed { .. }
            | Event::Measurement { .. }
            | Event::RunEnd { .. } => {}
        }
    }

    /// A new step on `hosts`, all of them at work from `now` (tasks start theirs one by one).
    fn begin(&mut self, step: Step, hosts: &[String], now: Instant) {
        self.step = step;
        self.serial += 1;
        self.targets = hosts.len();
        self.running = hosts.iter().map(|h| (h.clone(), now)).collect();
        self.shown.clear();
        self.finished.clear();
        self.fill();
    }

    fn finish(&mut self, host: &str, mark: Mark) {
        self.running.shift_remove(host);
        self.shown.retain(|h| h != host);
        self.finished.insert(host.to_string(), mark);
        self.fill();
    }

    /// Gives free lines to the longest-running hosts without one.
    fn fill(&mut self) {
        for h in self.running.keys() {
            if self.shown.len() >= SHOWN {
                break;
            }
            if !self.shown.contains(h) {
                self.shown.push(h.clone());
            }
        }
    }

    /// What to draw at time `now`; `None` when no bars should be shown.
    pub fn view(&self, now: Instant) -> Option<View> {
        let message = match &self.step {
            Step::None => return None,
            Step::Starting => format!("PLAY [{}]", self.play),
            Step::Task { label, handler } => {
                let kind = if *handler { "RUNNING HANDLER" } else { "TASK" };
                format!("{kind} [{label}]")
            }
            Step::Probing { soak: false } => "HEALTH probing".to_string(),
            Step::Probing { soak: true } => "HEALTH probing again after soak".to_string(),
            Step::Soak { seconds } => {
                format!("HEALTH soak: watching the probes for {seconds}s")
            }
            Step::Analysis { seconds } => format!("ANALYSIS measuring for {seconds}s"),
            Step::Rollback => "ROLLBACK restoring backups".to_string(),
        };
        let prefix = match self.batch {
            Some((i, n)) => format!("batch {i}/{n}"),
            None => "play".to_string(),
        };
        let progress = match self.step {
            Step::Task { .. } | Step::Probing { .. } | Step::Rollback => {
                let total = self.targets.max(self.finished.len());
                Some((self.finished.len() as u64, total as u64))
            }
            Step::None | Step::Starting | Step::Soak { .. } | Step::Analysis { .. } => None,
        };
        let hosts = self
            .shown
            .iter()
            .filter_map(|h| {
                let since = self.running.get(h)?;
                Some((
                    redact(h).into_owned(),
                    now.saturating_duration_since(*since),
                ))
            })
            .collect();
        Some(View {
            serial: self.serial,
            prefix,
            message: redact(&message).into_owned(),
            progress,
            hosts,
            footer: redact(&self.footer()).into_owned(),
        })
    }

    /// `+2 more running, 40 waiting | ok 3, changed 1, failed 1 (web3)`.
    fn footer(&self) -> String {
        let mut busy = Vec::new();
        let more = self.running.len().saturating_sub(self.shown.len());
        if more > 0 {
            busy.push(format!("+{more} more running"));
        }
        let waiting = self
            .targets
            .saturating_sub(self.running.len() + self.finished.len());
        if waiting > 0 {
            busy.push(format!("{waiting} waiting"));
        }
        let mut counts = Vec::new();
        for m in Mark::ALL {
            let hosts: Vec<&str> = self
                .finished
                .iter()
                .filter(|(_, x)| **x == m)
                .map(|(h, _)| h.as_str())
                .collect();
            if hosts.is_empty() {
                continue;
            }
            let mut part = format!("{} {}", m.word(), hosts.len());
            if matches!(m, Mark::Failed | Mark::Unreachable) {
                let mut names = hosts[..hosts.len().min(NAMED)].join(", ");
                if hosts.len() > NAMED {
                    names.push_str(&format!(" +{}", hosts.len() - NAMED));
                }
                part.push_str(&format!(" ({names})"));
            }
            counts.push(part);
        }
        [busy.join(", "), counts.join(", ")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// How often the spinner and the clocks move.
const TICK: Duration = Duration::from_millis(120);
const HOST_TICK: Duration = Duration::from_millis(500);

/// The bars of one run on a `MultiProgress`: a head bar for the batch and step, a line per
/// shown host, a count line. Cleared at the recap, or when dropped.
pub struct Bars {
    mp: MultiProgress,
    board: Board,
    head: Option<ProgressBar>,
    hosts: Vec<ProgressBar>,
    foot: Option<ProgressBar>,
    serial: u64,
    /// Hide `mp` again when done (the process-wide [`screen`]).
    hide_when_done: bool,
}

impl Bars {
    /// Bars drawn on `mp` (tests pass an in-memory terminal).
    pub fn new(mp: MultiProgress) -> Bars {
        Bars {
            mp,
            board: Board::default(),
            head: None,
            hosts: Vec::new(),
            foot: None,
            serial: 0,
            hide_when_done: false,
        }
    }

    /// Bars on stdout, through [`screen`] (so that log lines lift them too). For a terminal
    /// only: [`wanted`] says when.
    pub fn stdout() -> Bars {
        let mp = screen().clone();
        mp.set_draw_target(ProgressDrawTarget::term_like_with_hz(
            Box::new(Stdout(console::Term::buffered_stdout())),
            20,
        ));
        let mut bars = Bars::new(mp);
        bars.hide_when_done = true;
        bars
    }

    /// Takes one event into account and redraws (at most indicatif's refresh rate).
    pub fn observe(&mut self, e: &Event<'_>) {
        self.board.apply(e, Instant::now());
        match self.board.view(Instant::now()) {
            Some(v) => self.draw(&v),
            None => self.clear(),
        }
    }

    /// Runs `f` (which prints lines) with the bars lifted, then draws them again below.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.head.is_none() {
            return f();
        }
        self.mp.suspend(f)
    }

    fn draw(&mut self, v: &View) {
        let (head, foot) = match (&self.head, &self.foot) {
            (Some(h), Some(f)) => (h.clone(), f.clone()),
            _ => {
                let head = self.mp.add(ProgressBar::new(0));
                let foot = self
                    .mp
                    .add(ProgressBar::new(0).with_style(style("  {wide_msg}")));
                head.enable_steady_tick(TICK);
                self.head = Some(head.clone());
                self.foot = Some(foot.clone());
                self.serial = 0;
                (head, foot)
            }
        };
        // Each setter may draw: the counts first, the style (a new step) last.
        if let Some((done, total)) = v.progress {
            head.update(|s| {
                s.set_len(total);
                s.set_pos(done);
            });
        }
        head.set_prefix(v.prefix.clone());
        head.set_message(v.message.clone());
        if v.serial != self.serial {
            self.serial = v.serial;
            head.reset_elapsed();
            head.set_style(if v.progress.is_some() {
                style("{spinner} {prefix} [{bar:24}] {pos}/{len} {elapsed:>4} {wide_msg}")
                    .progress_chars("=> ")
            } else {
                style("{spinner} {prefix} {elapsed:>4} {wide_msg}")
            });
        }
        while self.hosts.len() > v.hosts.len() {
            if let Some(pb) = self.hosts.pop() {
                pb.finish_and_clear();
                self.mp.remove(&pb);
            }
        }
        for (i, (name, elapsed)) in v.hosts.iter().enumerate() {
            if i == self.hosts.len() {
                let pb = self.mp.insert_before(
                    &foot,
                    ProgressBar::new(0).with_style(style("    {msg}  {elapsed}")),
                );
                pb.enable_steady_tick(HOST_TICK);
                self.hosts.push(pb);
            }
            let pb = &self.hosts[i];
            if pb.message() != *name {
                pb.set_message(name.clone());
                pb.set_elapsed(*elapsed);
            }
        }
        foot.set_message(v.footer.clone());
    }

    /// Removes every bar from the screen.
    pub fn clear(&mut self) {
        let bars: Vec<ProgressBar> = self
            .head
            .take()
            .into_iter()
            .chain(self.hosts.drain(..))
            .chain(self.foot.take())
            .collect();
        if bars.is_empty() {
            return;
        }
        for pb in &bars {
            pb.finish_and_clear();
            self.mp.remove(pb);
        }
        let _ = self.mp.clear();
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.clear();
        if self.hide_when_done {
            self.mp.set_draw_target(ProgressDrawTarget::hidden());
        }
    }
}

/// stdout as indicatif's terminal (as `ProgressDrawTarget::stdout` has it), write errors
/// dropped: indicatif unwraps some of them, and a terminal that went away (a closed session
/// whose hangup signal was ignored) must not stop a deployment, no more than it does for the
/// result lines.
#[derive(Debug)]
struct Stdout(console::Term);

impl TermLike for Stdout {
    fn width(&self) -> u16 {
        self.0.size().1
    }

    fn height(&self) -> u16 {
        self.0.size().0
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        dropped(self.0.move_cursor_up(n))
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        dropped(self.0.move_cursor_down(n))
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        dropped(self.0.move_cursor_right(n))
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        dropped(self.0.move_cursor_left(n))
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        dropped(self.0.write_line(s))
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        dropped(self.0.write_str(s))
    }

    fn clear_line(&self) -> io::Result<()> {
        dropped(self.0.clear_line())
    }

    fn flush(&self) -> io::Result<()> {
        dropped(self.0.flush())
    }
}

fn dropped(_: io::Result<()>) -> io::Result<()> {
    Ok(())
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .tick_chars("|/-\\ ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollback::HostRollback;
    use indicatif::InMemoryTerm;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("{prefix}{i}")).collect()
    }

    fn outcome(host: &str, status: Status) -> HostOutcome {
        HostOutcome::of(host, status)
    }

    /// A board in batch 1/2 of play `web`, running `label` on `hosts`, each started
    /// a millisecond after the previous one.
    fn task_board(label: &str, hosts: &[String], started: usize, t0: Instant) -> Board {
        let mut b = Board::default();
        b.apply(
            &Event::PlayStart {
                name: "web",
                hosts: hosts.len(),
                batches: 2,
            },
            t0,
        );
        b.apply(
            &Event::BatchStart {
                index: 1,
                total: 2,
                hosts,
            },
            t0,
        );
        b.apply(
            &Event::TaskStart {
                label,
                handler: false,
                check: false,
                hosts,
            },
            t0,
        );
        for (i, h) in hosts.iter().take(started).enumerate() {
            let at = t0 + Duration::from_millis(i as u64);
            b.apply(&Event::HostStart { host: h }, at);
        }
        b
    }

    fn shown(v: &View) -> Vec<&str> {
        v.hosts.iter().map(|(h, _)| h.as_str()).collect()
    }

    #[test]
    fn bars_only_on_a_terminal_for_people() {
        let tty = Terminal {
            tty: true,
            ..Terminal::default()
        };
        let pipe = Terminal::default();
        let dumb = Terminal { dumb: true, ..tty };
        let ci = Terminal { ci: true, ..tty };
        assert!(wanted(When::Auto, true, false, tty));
        assert!(!wanted(When::Auto, true, false, pipe));
        assert!(!wanted(When::Always, true, false, pipe), "never on a pipe");
        assert!(
            !wanted(When::Auto, false, false, tty),
            "never for --output json"
        );
        assert!(
            !wanted(When::Always, false, false, tty),
            "never for --output json"
        );
        assert!(!wanted(When::Auto, true, true, tty), "-q");
        assert!(!wanted(When::Auto, true, false, dumb), "TERM=dumb");
        assert!(!wanted(When::Always, true, false, dumb), "TERM=dumb");
        assert!(!wanted(When::Auto, true, false, ci), "CI");
        assert!(wanted(When::Always, true, true, tty));
        assert!(wanted(When::Always, true, false, ci));
        assert!(!wanted(When::Never, true, false, tty));
    }

    #[test]
    fn a_task_counts_hosts_done_running_and_waiting() {
        let t0 = Instant::now();
        let hosts = names("web", 20);
        let mut b = task_board("app : deploy", &hosts, 12, t0);
        b.apply(&Event::Host(&outcome("web1", Status::Ok)), t0);
        b.apply(&Event::Host(&outcome("web2", Status::Changed)), t0);
        let later = t0 + Duration::from_secs(3);
        let v = b.view(later).expect("bars during a task");
        assert_eq!(v.prefix, "batch 1/2");
        assert_eq!(v.message, "TASK [app : deploy]");
        assert_eq!(v.progress, Some((2, 20)));
        // The five longest-running hosts have a line, with their time at it.
        assert_eq!(shown(&v), ["web3", "web4", "web5", "web6", "web7"]);
        assert_eq!(v.hosts[0].1, Duration::from_millis(2998));
        assert_eq!(v.footer, "+5 more running, 8 waiting | ok 1, changed 1");
    }

    #[test]
    fn five_hundred_hosts_make_five_host_lines() {
        let t0 = Instant::now();
        let hosts = names("h", 500);
        let b = task_board("deploy", &hosts, 50, t0);
        let v = b.view(t0).expect("bars");
        assert_eq!(v.hosts.len(), SHOWN);
        assert_eq!(v.footer, "+45 more running, 450 waiting");
    }

    #[test]
    fn a_host_keeps_its_line_until_it_finishes() {
        let t0 = Instant::now();
        let hosts = names("h", 8);
        let mut b = task_board("deploy", &hosts, 7, t0);
        b.apply(&Event::Host(&outcome("h3", Status::Ok)), t0);
        let v = b.view(t0).expect("bars");
        assert_eq!(shown(&v), ["h1", "h2", "h4", "h5", "h6"]);
        b.apply(&Event::Host(&outcome("h1", Status::Ok)), t0);
        b.apply(&Event::HostStart { host: "h8" }, t0);
        let v = b.view(t0).expect("bars");
        assert_eq!(shown(&v), ["h2", "h4", "h5", "h6", "h7"]);
        assert_eq!(v.footer, "+1 more running | ok 2");
    }

    #[test]
    fn failed_and_unreachable_hosts_are_named_up_to_three() {
        let t0 = Instant::now();
        let hosts = names("db", 7);
        let mut b = task_board("migrate", &hosts, 7, t0);
        for h in &hosts[..5] {
            b.apply(&Event::Host(&outcome(h, Status::Failed)), t0);
        }
        b.apply(&Event::Host(&outcome("db6", Status::Unreachable)), t0);
        let mut ignored = outcome("db7", Status::Failed);
        ignored.ignored = true;
        b.apply(&Event::Host(&ignored), t0);
        let v = b.view(t0).expect("bars");
        assert_eq!(v.progress, Some((7, 7)));
        assert!(v.hosts.is_empty());
        assert_eq!(
            v.footer,
            "ignored 1, failed 5 (db1, db2, db3 +2), unreachable 1 (db6)"
        );
    }

    #[test]
    fn registered_secrets_never_reach_the_bars() {
        let secret = "bar-secret-7f3a9";
        crate::vault::redact::register(secret);
        let t0 = Instant::now();
        let hosts = vec![format!("web-{secret}"), "web2".to_string()];
        let label = format!("deploy {secret}");
        let mut b = task_board(&label, &hosts, 2, t0);
        b.apply(&Event::Host(&outcome(&hosts[1], Status::Failed)), t0);
        let v = b.view(t0).expect("bars");
        let all = format!("{v:?}");
        assert!(!all.contains(secret), "{all}");
        assert_eq!(v.message, "TASK [deploy ********]");
        assert_eq!(shown(&v), ["web-********"]);
        let mut p = Board::default();
        p.apply(
            &Event::PlayStart {
                name: &format!("release {secret}"),
                hosts: 1,
                batches: 1,
            },
            t0,
        );
        let v = p.view(t0).expect("bars once a play starts");
        assert_eq!(v.message, "PLAY [release ********]");
    }

    #[test]
    fn health_gate_soak_and_rollback_steps() {
        let t0 = Instant::now();
        let hosts = names("h", 3);
        let mut b = task_board("deploy", &hosts, 0, t0);
        b.apply(
            &Event::GateStart {
                index: 1,
                total: 2,
                soak: false,
                hosts: &hosts,
            },
            t0,
        );
        let v = b.view(t0).expect("bars");
        assert_eq!(v.message, "HEALTH probing");
        assert_eq!(v.progress, Some((0, 3)));
        assert_eq!(shown(&v), ["h1", "h2", "h3"]);
        let probe = |host, passed| Event::Probe {
            host,
            probe: "http",
            passed,
            attempts: 1,
            observed: "200",
        };
        b.apply(&probe("h1", true), t0);
        b.apply(&probe("h1", false), t0);
        b.apply(&probe("h2", true), t0);
        let v = b.view(t0).expect("bars");
        assert_eq!(v.progress, Some((2, 3)));
        assert_eq!(shown(&v), ["h3"]);
        assert_eq!(v.footer, "ok 1, failed 1 (h1)");
        b.apply(
            &Event::Soak {
                index: 1,
                total: 2,
                seconds: 30.0,
            },
            t0,
        );
        let v = b.view(t0).expect("bars");
        assert_eq!(v.message, "HEALTH soak: watching the probes for 30s");
        assert_eq!(v.progress, None);
        assert!(v.hosts.is_empty());
        b.apply(
            &Event::RollbackStart {
                hosts: &hosts,
                switch_back: false,
            },
            t0,
        );
        b.apply(
            &Event::Rollback(&HostRollback::failed(
                "h2",
                crate::backup::RestoreError::Unreachable {
                    cause: "connection refused".into(),
                },
            )),
            t0,
        );
        let v = b.view(t0).expect("bars");
        assert_eq!(v.message, "ROLLBACK restoring backups");
        assert_eq!(v.progress, Some((1, 3)));
        assert_eq!(v.footer, "failed 1 (h2)");
        b.apply(&Event::Recap { rows: &[] }, t0);
        assert_eq!(b.view(t0), None, "no bars after the recap");
    }

    #[test]
    fn bars_are_drawn_then_cleared_at_the_recap() {
        let term = InMemoryTerm::new(20, 100);
        let mp =
            MultiProgress::with_draw_target(ProgressDrawTarget::term_like(Box::new(term.clone())));
        let mut bars = Bars::new(mp);
        let hosts = names("web", 7);
        bars.observe(&Event::PlayStart {
            name: "web",
            hosts: 7,
            batches: 3,
        });
        bars.observe(&Event::BatchStart {
            index: 2,
            total: 3,
            hosts: &hosts,
        });
        bars.observe(&Event::TaskStart {
            label: "deploy",
            handler: false,
            check: false,
            hosts: &hosts,
        });
        for h in &hosts {
            bars.observe(&Event::HostStart { host: h });
        }
        bars.observe(&Event::Host(&outcome("web7", Status::Changed)));
        // Lifting the bars for a line draws them again at once, whatever the refresh rate.
        bars.suspend(|| ());
        let screen = term.contents();
        let lines: Vec<&str> = screen.lines().collect();
        assert_eq!(lines.len(), 1 + SHOWN + 1, "{screen}");
        assert!(lines[0].contains("batch 2/3"), "{screen}");
        assert!(lines[0].contains("1/7"), "{screen}");
        assert!(lines[0].contains("TASK [deploy]"), "{screen}");
        assert!(lines[1].trim_start().starts_with("web1"), "{screen}");
        assert_eq!(lines[6].trim(), "+1 more running | changed 1", "{screen}");
        bars.observe(&Event::Recap { rows: &[] });
        assert_eq!(term.contents().trim(), "", "cleared at the recap");
    }
}
