//! Running unattended (cron, CI): the run lock, `--deadline`, `--report`, `--log-file`,
//! `--notify`, `--quiet`, `--detailed-exitcode` and `--stop-grace`, checked before anything
//! runs.
//!
//! Owns turning those flags into [`Unattended`] (a bad value is invalid input, exit 4), taking
//! the lock of a run's inventory and playbook (`lock.rs`), and the watchers that stop a run:
//! the deadline's and the signals' ([`watch_signals`]). The deadline, or a first SIGINT or
//! SIGTERM, asks the executor to stop at the next step boundary; a grace period later
//! ([`grace`] of the deadline, `--stop-grace` after a signal) the steps still in flight are
//! abandoned and killed on their hosts, so that the run ends by itself; if it still has not a
//! few seconds later, or at a second signal, the process exits at once, the journal's end and
//! the report written and marked forced. Nothing hangs. What the user reads goes through
//! `report`.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use super::args::{LockArgs, UnattendedArgs};
use super::lock::{self, LockError, RunLock};
use super::{Exit, Failed};
use crate::backup::journal::{self, Record};
use crate::diag::{Diagnostic, Diagnostics};
use crate::exec::STOP_DEADLINE;
use crate::exec::backups::RunCtx;
use crate::report;
use crate::report::summary::{self, RunFacts};

/// The unattended-run flags, checked.
#[derive(Debug, Default)]
pub struct Unattended {
    /// `--deadline`, from rdeploy's start.
    pub deadline: Option<Duration>,
    /// `--lock-wait` (zero: do not wait).
    pub lock_wait: Duration,
    /// `--no-lock`.
    pub no_lock: bool,
    /// `--quiet`.
    pub quiet: bool,
    /// `--report FILE`.
    pub report: Option<PathBuf>,
    /// `--log-file FILE`, opened for appending.
    pub log: Option<File>,
    /// `--notify URL`s.
    pub notify: Vec<crate::report::notify::Hook>,
    /// `--detailed-exitcode`.
    pub detailed_exitcode: bool,
    /// `--stop-grace` ([`STOP_GRACE_DEFAULT`] when not given).
    pub stop_grace: Duration,
}

/// How long the steps in flight may take after SIGTERM or SIGINT when `--stop-grace` is not
/// given.
pub const STOP_GRACE_DEFAULT: Duration = Duration::from_secs(30);

/// After the steps in flight were abandoned ([`crate::transport::abandon_all`]), how long the
/// run may take to kill them on their hosts (the kill's own grace is 2 s) and record its end
/// before the exit is forced: the process ends within `--stop-grace` + 5 s.
const WIND_DOWN: Duration = Duration::from_secs(4);

/// A duration flag's value (`30s`, `10m`, `2h`), greater than zero.
pub fn duration_flag(flag: &str, raw: &str) -> Result<Duration, Diagnostic> {
    match crate::playbook::values::parse_duration(raw) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(Diagnostic::options(format!(
            "{flag} '{raw}': expected a number and a unit (ms, s, m, h), e.g. 30m"
        ))),
    }
}

/// `--lock-wait`, zero when not given.
pub fn lock_wait(l: &LockArgs) -> Result<Duration, Diagnostic> {
    l.lock_wait
        .as_deref()
        .map_or(Ok(Duration::ZERO), |w| duration_flag("--lock-wait", w))
}

/// Checks every unattended-run flag; all mistakes are reported together.
pub fn check(u: &UnattendedArgs, l: &LockArgs) -> Result<Unattended, Diagnostics> {
    let mut errors = Diagnostics::new();
    let mut keep = |r: Result<Duration, Diagnostic>| match r {
        Ok(d) => Some(d),
        Err(d) => {
            errors.push(d);
            None
        }
    };
    let deadline = u
        .deadline
        .as_deref()
        .and_then(|d| keep(duration_flag("--deadline", d)));
    let lock_wait = keep(lock_wait(l)).unwrap_or_default();
    let stop_grace = match u.stop_grace.as_deref() {
        None => STOP_GRACE_DEFAULT,
        Some(raw) => match crate::playbook::values::parse_duration(raw) {
            Some(d) => d,
            None => {
                errors.push(Diagnostic::options(format!(
                    "--stop-grace '{raw}': expected a number and a unit (ms, s, m, h), e.g. 30s"
                )));
                STOP_GRACE_DEFAULT
            }
        },
    };
    if let Some(r) = &u.report {
        let dir = r.parent().filter(|p| !p.as_os_str().is_empty());
        if !dir.unwrap_or(Path::new(".")).is_dir() || r.is_dir() {
            errors.push(Diagnostic::options(format!(
                "--report {}: its folder does not exist, or it is a folder",
                r.display()
            )));
        }
    }
    let log = match &u.log_file {
        None => None,
        Some(p) => match File::options()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(p)
        {
            Ok(f) => Some(f),
            Err(e) => {
                errors.push(Diagnostic::options(format!(
                    "--log-file {}: {e}",
                    p.display()
                )));
                None
            }
        },
    };
    let notify = report::notify::parse_urls(&u.notify).unwrap_or_else(|m| {
        errors.push(Diagnostic::options(m));
        Vec::new()
    });
    errors.into_result(Unattended {
        deadline,
        lock_wait,
        no_lock: l.no_lock,
        quiet: u.quiet,
        report: u.report.clone(),
        log,
        notify,
        detailed_exitcode: u.detailed_exitcode,
        stop_grace,
    })
}

/// Takes the lock of `inventory` + `playbook` under `state`, waiting up to `wait`.
/// Another holder is [`Failed::Locked`] (exit 75).
pub(crate) fn take_lock(
    state: &Path,
    inventory: &[PathBuf],
    playbook: &Path,
    wait: Duration,
    what: &str,
    run_id: Option<&str>,
) -> Result<RunLock, Failed> {
    let path = lock::lock_path(state, inventory, playbook);
    lock::acquire(&path, wait, what, run_id).map_err(|e| match e {
        LockError::Locked(l) => {
            let hint = if wait.is_zero() {
                "--lock-wait DURATION waits for it"
            } else {
                "it was not released in time"
            };
            Failed::Locked(format!("{l}; {hint}"))
        }
        LockError::Io(p, e) => Failed::Invalid(Diagnostics::from(Diagnostic::options(format!(
            "cannot take the run lock {} ({e}); set --state-dir, or --no-lock",
            p.display()
        )))),
    })
}

/// How long steps still running after the deadline may take before rdeploy gives up on
/// them: a tenth of the deadline, between 5 s and 60 s.
pub fn grace(deadline: Duration) -> Duration {
    (deadline / 10).clamp(Duration::from_secs(5), Duration::from_secs(60))
}

/// What a watcher records when it has to end the process before the run ended.
pub struct Abandon {
    /// The run's journal (none in check mode).
    pub run: Option<Arc<RunCtx>>,
    /// `--report` and what it says (per-host detail is lost).
    pub report: Option<(PathBuf, RunFacts)>,
}

impl Abandon {
    /// Records the run's end (journal `run_end` and `--report`, both marked forced) with
    /// `outcome` and `code` (`why` in the report's `error`), says `msg` on stderr, and exits
    /// with `code`.
    async fn exit(self, outcome: &'static str, code: i32, why: &str, msg: &str) {
        if let Some(run) = &self.run {
            let _ = run
                .journal
                .durable(&Record::RunEnd {
                    outcome: outcome.into(),
                    exit_code: code,
                    ended: journal::now(),
                    hosts_changed: Vec::new(),
                    forced: true,
                })
                .await;
        }
        if let Some((path, mut facts)) = self.report {
            facts.outcome = outcome;
            facts.exit_code = code;
            facts.ended = journal::now();
            facts.error = Some(why.to_string());
            facts.forced = true;
            let _ = summary::write(&path, &summary::document(&facts, &Default::default()));
        }
        let _ = report::progress::before_exit(|| report::text(&mut std::io::stderr().lock(), msg));
        crate::modules::bridge::shutdown();
        std::process::exit(code)
    }
}

/// The first SIGINT or SIGTERM asks the run to stop after the steps in flight (the executor
/// reads `stop`); `grace` later, the steps still in flight are abandoned (killed on their
/// hosts, recorded as interrupted) and the run ends by itself. If it has not `WIND_DOWN`
/// later, or at a second signal (or a signal after the deadline stopped the run), the process
/// exits at once with 128 + the first signal's number, its end recorded as forced. Call
/// inside the run's tokio runtime.
pub fn watch_signals(stop: Arc<AtomicI32>, grace: Duration, abandon: Abandon) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::spawn(async move {
        let mut first: Option<i32> = None;
        let mut abandoned = false;
        let timer = tokio::time::sleep(Duration::from_secs(86_400 * 365));
        tokio::pin!(timer);
        loop {
            tokio::select! {
                sig = async { tokio::select! { _ = int.recv() => 2, _ = term.recv() => 15 } } => {
                    if first.is_none()
                        && stop.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst).is_ok()
                    {
                        first = Some(sig);
                        timer.as_mut().reset((Instant::now() + grace).into());
                        continue;
                    }
                    let name = signal_name(sig);
                    abandon
                        .exit(
                            "interrupted",
                            128 + first.unwrap_or(sig),
                            &format!("forced exit: a second signal ({name}) while stopping"),
                            &format!(
                                "rdeploy: {name} again: exiting at once, without waiting for the \
                                 steps in flight (`rdeploy show` names the steps begun)"
                            ),
                        )
                        .await;
                    return;
                }
                _ = &mut timer, if first.is_some() => {
                    if !abandoned {
                        abandoned = true;
                        let msg = format!(
                            "rdeploy: steps still running {}s after the signal (--stop-grace): \
                             killing them on their hosts",
                            grace.as_secs_f64()
                        );
                        let _ = report::progress::before_exit(|| {
                            report::text(&mut std::io::stderr().lock(), &msg)
                        });
                        crate::transport::abandon_all();
                        timer.as_mut().reset((Instant::now() + WIND_DOWN).into());
                        continue;
                    }
                    abandon
                        .exit(
                            "interrupted",
                            128 + first.unwrap_or(15),
                            "forced exit: steps did not end after --stop-grace",
                            "rdeploy: steps were still running after --stop-grace: exiting \
                             (`rdeploy show` names the steps begun)",
                        )
                        .await;
                    return;
                }
            }
        }
    });
}

fn signal_name(sig: i32) -> &'static str {
    if sig == 2 { "SIGINT" } else { "SIGTERM" }
}

/// At `at`, asks the run to stop (unless a signal already did); `grace` later, if the process
/// is still running, abandons the steps in flight (killed on their hosts, recorded as
/// interrupted: the run then ends by itself, exit 124), and `WIND_DOWN` after that records
/// the end and exits 124. Call inside the run's tokio runtime, and
/// abort the watcher once the run has ended by itself.
pub fn watch_deadline(
    at: Instant,
    grace: Duration,
    stop: Arc<AtomicI32>,
    abandon: Abandon,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep_until(at.into()).await;
        if stop
            .compare_exchange(0, STOP_DEADLINE, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        tokio::time::sleep(grace).await;
        let msg = format!(
            "rdeploy: the deadline passed and steps were still running {}s later: \
             abandoned them, killing them on their hosts",
            grace.as_secs()
        );
        let _ = report::progress::before_exit(|| report::text(&mut std::io::stderr().lock(), &msg));
        crate::transport::abandon_all();
        tokio::time::sleep(WIND_DOWN).await;
        abandon
            .exit(
                "deadline",
                Exit::Deadline as i32,
                "steps still running after the deadline were abandoned",
                "rdeploy: steps were still running after the deadline's grace: exiting \
                 (`rdeploy show` names the steps begun)",
            )
            .await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_is_a_tenth_of_the_deadline_within_bounds() {
        assert_eq!(grace(Duration::from_secs(1)), Duration::from_secs(5));
        assert_eq!(grace(Duration::from_secs(300)), Duration::from_secs(30));
        assert_eq!(grace(Duration::from_secs(7200)), Duration::from_secs(60));
    }

    #[test]
    fn bad_values_are_all_reported() {
        let u = UnattendedArgs {
            deadline: Some("soon".into()),
            notify: vec!["ftp://x/".into()],
            report: Some("/nonexistent-dir/r.json".into()),
            ..Default::default()
        };
        let l = LockArgs {
            lock_wait: Some("0s".into()),
            no_lock: false,
        };
        assert_eq!(check(&u, &l).unwrap_err().len(), 4);
    }
}
