//! The retry loop: runs a host's probes one after another under the play's `probe:` settings.
//!
//! Owns the timing rules — `initial_delay` once per host, then attempts of each probe until
//! `success_threshold` consecutive passes or more than `retries` failed attempts, `interval`
//! between attempts, every attempt bounded by `timeout` (plus a short backstop) — and dispatching
//! each attempt to its kind of check. It must not print, emit events, or decide what a failed
//! probe means for the batch.

use std::time::{Duration, Instant};

use super::http::{self, Clients, HttpSpec, human};
use super::prometheus::{self, Bounds};
use super::{
    Attempt, Check, ProbeFrom, ProbeOutcome, Rendered, attempt_limit, millis, remote, tcp,
};
use crate::playbook::model::ProbeSettings;
use crate::transport::AnyTransport;

/// Time an attempt may overrun its limit before it is abandoned: the checks bound themselves by
/// the limit, and a command on the host gets a little longer so its own timeout reports first.
const BACKSTOP: Duration = Duration::from_secs(2);

/// Runs every probe of a host under the settings: `initial_delay` once, then, probe by probe,
/// attempts until `success_threshold` consecutive passes (passed) or `retries + 1` failed
/// attempts (failed); `interval` between attempts; each attempt bounded by `settings.timeout`.
/// A failure retrying cannot fix (no connection, unreadable CA file) ends the probe at once.
/// `tr` is the host's open connection (`None` for a local-only caller): command probes and
/// `from: host` probes need it and fail with observed `no connection` without it. One outcome
/// per probe, in order.
pub async fn run_host(
    probes: &[Rendered],
    settings: &ProbeSettings,
    tr: Option<&mut AnyTransport>,
) -> Vec<ProbeOutcome> {
    let mut tr = tr;
    let mut clients = Clients::new(attempt_limit(settings));
    if !probes.is_empty() && !settings.initial_delay.is_zero() {
        tokio::time::sleep(settings.initial_delay).await;
    }
    let mut outcomes = Vec::with_capacity(probes.len());
    for p in probes {
        // A probe's own settings win over the play's; its own initial delay waits before it.
        let own = p.settings.over(settings);
        if let Some(d) = p.settings.initial_delay.filter(|d| !d.is_zero()) {
            tokio::time::sleep(d).await;
        }
        outcomes.push(run_probe(p, &own, &mut clients, tr.as_deref_mut()).await);
    }
    outcomes
}

/// One probe's attempts.
async fn run_probe(
    p: &Rendered,
    settings: &ProbeSettings,
    clients: &mut Clients,
    mut tr: Option<&mut AnyTransport>,
) -> ProbeOutcome {
    let start = Instant::now();
    let threshold = settings.success_threshold.max(1);
    let (mut attempts, mut failures, mut streak) = (0u32, 0u32, 0u32);
    loop {
        if attempts > 0 {
            tokio::time::sleep(settings.interval).await;
        }
        attempts += 1;
        let a = attempt(&p.check, settings, clients, tr.as_deref_mut()).await;
        tracing::debug!(probe = %p.name, attempts, passed = a.passed, observed = %a.observed, "probe attempt");
        if a.passed {
            streak += 1;
        } else {
            streak = 0;
            failures += 1;
        }
        let done = if streak >= threshold {
            Some(true)
        } else if a.fatal || failures > settings.retries {
            Some(false)
        } else {
            None
        };
        if let Some(passed) = done {
            return ProbeOutcome {
                probe: p.name.clone(),
                passed,
                attempts,
                observed: a.observed,
                elapsed_ms: millis(start.elapsed()),
            };
        }
    }
}

/// One attempt of one check, bounded by the settings' timeout (plus [`BACKSTOP`]).
pub(crate) async fn attempt(
    check: &Check,
    settings: &ProbeSettings,
    clients: &mut Clients,
    tr: Option<&mut AnyTransport>,
) -> Attempt {
    let limit = attempt_limit(settings);
    let fut = async {
        match check {
            Check::Http {
                url,
                status,
                body,
                max_latency,
                headers,
                ca_file,
                insecure,
                from,
            } => {
                let spec = HttpSpec {
                    url,
                    status,
                    body: body.as_ref(),
                    max_latency: *max_latency,
                    headers,
                    ca_file: ca_file.as_deref(),
                    insecure: *insecure,
                };
                match (from, tr) {
                    (ProbeFrom::Controller, _) => http::check(clients, &spec, limit).await,
                    (ProbeFrom::Host, Some(tr)) => remote::http(tr, &spec, limit).await,
                    (ProbeFrom::Host, None) => no_connection(),
                }
            }
            Check::Tcp { address, from } => match (from, tr) {
                (ProbeFrom::Controller, _) => tcp::check(address, limit).await,
                (ProbeFrom::Host, Some(tr)) => remote::tcp(tr, address, limit).await,
                (ProbeFrom::Host, None) => no_connection(),
            },
            Check::Command { command, stdout } => match tr {
                Some(tr) => remote::command(tr, command, stdout.as_ref(), limit).await,
                None => no_connection(),
            },
            Check::Prometheus {
                url,
                query,
                max,
                min,
            } => {
                let bounds = Bounds {
                    max: *max,
                    min: *min,
                };
                prometheus::check(clients, url, query, bounds, limit).await
            }
        }
    };
    match tokio::time::timeout(limit + BACKSTOP, fut).await {
        Ok(a) => a,
        Err(_) => Attempt::fail(format!("timed out after {}", human(limit))),
    }
}

fn no_connection() -> Attempt {
    Attempt::fatal("no connection")
}
