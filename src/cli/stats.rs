//! `rdeploy history --since WHEN --stats`: delivery statistics per playbook from the run
//! journals.
//!
//! Owns parsing `--since` (a duration back from now or a UTC date) and the arithmetic, which is
//! pure and tested here:
//! - **runs per day**: runs started in the span / the span in days (the span runs from
//!   `--since`, else from the first run, to now; at least one day);
//! - **change failure rate**: runs that failed (`failed`, `rolled_back`,
//!   `rollback_incomplete`, `host_key_refused`, or rolled back later with `rdeploy rollback`)
//!   / runs that reached a verdict (those and `success`); interrupted, deadline and unfinished
//!   runs reached none;
//! - **mean time to restore**: from the end of a failed run to the end of the next successful
//!   run of the same playbook (consecutive failures are one incident, timed from the first);
//! - **median duration** of the runs that ended;
//! - **lead time**: from the change's creation (`--change-time`, or the `release_time`
//!   extra variable) to the end of the successful run that deployed it, median.
//!
//! Statistics are per playbook and environment (the inventory sources as given).
//!
//! It must not read journals or print: `runs.rs` does both.

use std::collections::BTreeMap;

use serde::Serialize;

use super::runs::RunInfo;

/// One playbook's statistics in one environment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlaybookStats {
    /// The playbook as given to `rdeploy run`.
    pub playbook: String,
    /// The environment: the inventory sources as given, joined with `,`.
    pub environment: String,
    /// Runs started in the span.
    pub runs: usize,
    /// The span in days (at least 1).
    pub span_days: f64,
    /// Deployment frequency: runs per day.
    pub runs_per_day: f64,
    /// Runs that reached a verdict (success or failure).
    pub judged: usize,
    /// Of those, the failures.
    pub failed: usize,
    /// `failed / judged`; none when no run reached a verdict.
    pub change_failure_rate: Option<f64>,
    /// Failure incidents followed by a successful run.
    pub restores: usize,
    /// Mean time to restore, seconds; none without a restore.
    pub mean_time_to_restore_s: Option<f64>,
    /// Median duration of the runs that ended, seconds.
    pub median_duration_s: Option<f64>,
    /// Successful runs that were given their change's creation time.
    pub lead_times: usize,
    /// Median lead time of those, seconds.
    pub median_lead_time_s: Option<f64>,
}

/// `--change-time`: unix seconds, a UTC date (`2026-12-01`), or a time with its offset
/// (`2026-12-01T08:00:00Z`, `2026-12-01T09:00:00+01:00`). Unix seconds.
pub fn parse_instant(raw: &str) -> Result<u64, String> {
    let t = raw.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Ok(n);
    }
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return u64::try_from(ts.as_second()).map_err(|_| format!("'{raw}' is before 1970"));
    }
    if let Ok(d) = t.parse::<jiff::civil::Date>()
        && let Ok(z) = d.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return u64::try_from(z.timestamp().as_second())
            .map_err(|_| format!("'{raw}' is before 1970"));
    }
    Err(format!(
        "'{raw}': expected a UTC date or time (2026-12-01, 2026-12-01T08:00:00Z) or unix seconds"
    ))
}

const DAY: u64 = 86_400;

/// `--since`: `7d`, `2w`, `12h`, `30m`, `90s` back from `now`, or a UTC date
/// `YYYY-MM-DD` / `YYYY-MM-DDTHH:MM:SS[Z]`. Unix seconds.
pub fn parse_since(raw: &str, now: u64) -> Result<u64, String> {
    let s = raw.trim();
    let bad = || {
        format!(
            "--since '{raw}': expected a duration back from now (7d, 2w, 12h, 30m) or a UTC \
             date (2026-11-01, 2026-11-01T08:00:00Z)"
        )
    };
    if let Some(t) = parse_date(s) {
        return Ok(t);
    }
    let back = if let Some(n) = s.strip_suffix('d') {
        n.parse::<f64>().ok().map(|n| n * DAY as f64)
    } else if let Some(n) = s.strip_suffix('w') {
        n.parse::<f64>().ok().map(|n| n * 7.0 * DAY as f64)
    } else {
        crate::playbook::values::parse_duration(s).map(|d| d.as_secs_f64())
    };
    match back {
        Some(b) if b.is_finite() && b >= 0.0 => Ok(now.saturating_sub(b as u64)),
        _ => Err(bad()),
    }
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS[Z]`, UTC, as unix seconds.
fn parse_date(s: &str) -> Option<u64> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').unwrap_or(t))),
        None => (s, None),
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, day] = d.as_slice() else {
        return None;
    };
    if y.len() != 4 || m.len() != 2 || day.len() != 2 {
        return None;
    }
    let (y, m, day): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, day.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let secs = match time {
        None => 0,
        Some(t) => {
            let p: Vec<u64> = t
                .split(':')
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            match p.as_slice() {
                [h, mi, se] if *h < 24 && *mi < 60 && *se < 61 => h * 3600 + mi * 60 + se,
                [h, mi] if *h < 24 && *mi < 60 => h * 3600 + mi * 60,
                _ => return None,
            }
        }
    };
    let days = u64::try_from(crate::modules::system::common::days_from_civil(y, m, day)).ok()?;
    Some(days * DAY + secs)
}

fn is_failure(r: &RunInfo) -> bool {
    matches!(
        r.outcome.as_str(),
        "failed" | "rolled_back" | "rollback_incomplete" | "host_key_refused"
    ) || !r.rolled_back_hosts.is_empty()
}

fn is_success(r: &RunInfo) -> bool {
    r.outcome == "success" && r.rolled_back_hosts.is_empty()
}

/// Statistics per playbook of `runs` (oldest first), over the span from `since` (else the
/// first run) to `now`.
pub(crate) fn per_playbook(runs: &[RunInfo], since: Option<u64>, now: u64) -> Vec<PlaybookStats> {
    let mut by: BTreeMap<(&str, String), Vec<&RunInfo>> = BTreeMap::new();
    for r in runs {
        by.entry((r.playbook.as_str(), r.inventory.join(",")))
            .or_default()
            .push(r);
    }
    by.into_iter()
        .map(|((pb, env), mut rs)| {
            rs.sort_by_key(|r| r.started_at);
            one(pb, env, &rs, since, now)
        })
        .collect()
}

fn one(
    playbook: &str,
    environment: String,
    rs: &[&RunInfo],
    since: Option<u64>,
    now: u64,
) -> PlaybookStats {
    let first = since.or_else(|| rs.iter().filter_map(|r| r.started_at).min());
    let span_days = (now.saturating_sub(first.unwrap_or(now)) as f64 / DAY as f64).max(1.0);
    let failed = rs.iter().filter(|r| is_failure(r)).count();
    let judged = failed + rs.iter().filter(|r| is_success(r)).count();
    let mut restore_times = Vec::new();
    let mut down_since: Option<u64> = None;
    for r in rs {
        let at = r.ended_at.or(r.started_at);
        if is_failure(r) {
            down_since = down_since.or(at);
        } else if is_success(r)
            && let (Some(from), Some(to)) = (down_since.take(), r.ended_at)
        {
            restore_times.push(to.saturating_sub(from) as f64);
        }
    }
    let mut durations: Vec<f64> = rs
        .iter()
        .filter_map(|r| Some(r.ended_at?.saturating_sub(r.started_at?) as f64))
        .collect();
    durations.sort_by(f64::total_cmp);
    let mut leads: Vec<f64> = rs
        .iter()
        .filter(|r| is_success(r))
        .filter_map(|r| Some(r.ended_at?.saturating_sub(r.change_at?) as f64))
        .collect();
    leads.sort_by(f64::total_cmp);
    PlaybookStats {
        playbook: playbook.to_string(),
        environment,
        lead_times: leads.len(),
        median_lead_time_s: median(&leads),
        runs: rs.len(),
        span_days,
        runs_per_day: rs.len() as f64 / span_days,
        judged,
        failed,
        change_failure_rate: (judged > 0).then(|| failed as f64 / judged as f64),
        restores: restore_times.len(),
        mean_time_to_restore_s: (!restore_times.is_empty())
            .then(|| restore_times.iter().sum::<f64>() / restore_times.len() as f64),
        median_duration_s: median(&durations),
    }
}

fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// `90s`, `4m05s`, `2h03m`, `3d04h`.
pub fn human_secs(s: f64) -> String {
    let s = s.round() as u64;
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m{:02}s", s / 60, s % 60),
        7200..172_800 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / DAY, s % DAY / 3600),
    }
}

/// The human table of [`per_playbook`].
pub fn table(stats: &[PlaybookStats]) -> String {
    if stats.is_empty() {
        return "no runs in this span".into();
    }
    let w = stats
        .iter()
        .map(|s| s.playbook.len())
        .max()
        .unwrap_or(0)
        .max("playbook".len());
    let e = stats
        .iter()
        .map(|s| s.environment.len())
        .max()
        .unwrap_or(0)
        .max("environment".len());
    let mut out = format!(
        "{:<w$}  {:<e$}  {:>5}  {:>7}  {:>19}  {:>8}  {:>15}  {:>9}\n",
        "playbook",
        "environment",
        "runs",
        "per day",
        "change failure rate",
        "MTTR",
        "median duration",
        "lead time"
    );
    for s in stats {
        let cfr = match s.change_failure_rate {
            Some(r) => format!("{:.0}% ({}/{})", r * 100.0, s.failed, s.judged),
            None => "-".into(),
        };
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), human_secs);
        out.push_str(&format!(
            "{:<w$}  {:<e$}  {:>5}  {:>7.2}  {:>19}  {:>8}  {:>15}  {:>9}\n",
            s.playbook,
            s.environment,
            s.runs,
            s.runs_per_day,
            cfr,
            opt(s.mean_time_to_restore_s),
            opt(s.median_duration_s),
            opt(s.median_lead_time_s)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pb: &str, start: u64, dur: u64, outcome: &str) -> RunInfo {
        RunInfo {
            run_id: format!("r{start}"),
            playbook: pb.into(),
            outcome: outcome.into(),
            started_at: Some(start),
            ended_at: (outcome != "unfinished").then_some(start + dur),
            ..RunInfo::default()
        }
    }

    #[test]
    fn lead_time_is_per_environment_from_the_change_to_the_successful_run() {
        let mut prod = run("site.yaml", 1000, 100, "success");
        prod.inventory = vec!["inventory/prod".into()];
        prod.change_at = Some(100); // ended at 1100: 1000 s after the change
        let mut prod2 = run("site.yaml", 5000, 100, "success");
        prod2.inventory = vec!["inventory/prod".into()];
        prod2.change_at = Some(2100); // 3000 s
        let mut failed = run("site.yaml", 6000, 10, "failed");
        failed.inventory = vec!["inventory/prod".into()];
        failed.change_at = Some(0); // a failed run delivered nothing
        let mut stage = run("site.yaml", 900, 50, "success");
        stage.inventory = vec!["inventory/stage".into()];
        stage.change_at = Some(800);
        let stats = per_playbook(&[stage, prod, prod2, failed], None, 10_000);
        assert_eq!(stats.len(), 2);
        assert_eq!(stats[0].environment, "inventory/prod");
        assert_eq!(stats[0].lead_times, 2);
        assert_eq!(stats[0].median_lead_time_s, Some(2000.0));
        assert_eq!(stats[1].environment, "inventory/stage");
        assert_eq!(stats[1].median_lead_time_s, Some(150.0));
        assert!(table(&stats).contains("lead time"));
    }

    #[test]
    fn change_times_are_dates_times_or_unix_seconds() {
        assert_eq!(parse_instant("1796083200"), Ok(1_796_083_200));
        assert_eq!(parse_instant("2026-12-01"), Ok(1_796_083_200));
        assert_eq!(parse_instant("2026-12-01T00:00:00Z"), Ok(1_796_083_200));
        assert_eq!(
            parse_instant("2026-12-01T01:00:00+01:00"),
            Ok(1_796_083_200)
        );
        assert!(parse_instant("yesterday").is_err());
    }

    #[test]
    fn since_takes_durations_and_dates() {
        let now = 1_796_083_200; // 2026-12-01T00:00:00Z
        assert_eq!(parse_since("7d", now).unwrap(), now - 7 * DAY);
        assert_eq!(parse_since("2w", now).unwrap(), now - 14 * DAY);
        assert_eq!(parse_since("12h", now).unwrap(), now - 12 * 3600);
        assert_eq!(parse_since("2026-12-01", now).unwrap(), now);
        assert_eq!(
            parse_since("2026-11-30T12:00:00Z", now).unwrap(),
            now - 12 * 3600
        );
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("2026-13-01", now).is_err());
    }

    #[test]
    fn failure_rate_restore_time_and_median() {
        let d = DAY;
        let runs = vec![
            run("site.yaml", 0, 60, "success"),
            run("site.yaml", d, 100, "rolled_back"),
            run("site.yaml", d + 1000, 20, "failed"),
            run("site.yaml", d + 4000, 40, "success"),
            run("site.yaml", 2 * d, 10, "interrupted"),
            run("site.yaml", 3 * d, 30, "unfinished"),
            run("other.yaml", 0, 5, "success"),
        ];
        let s = per_playbook(&runs, None, 4 * d);
        assert_eq!(s[0].playbook, "other.yaml");
        let site = &s[1];
        assert_eq!(site.runs, 6);
        assert_eq!(site.span_days, 4.0);
        assert_eq!(site.runs_per_day, 1.5);
        assert_eq!((site.failed, site.judged), (2, 4));
        assert_eq!(site.change_failure_rate, Some(0.5));
        // Down from the end of the first failure (d + 100) to the end of the next success.
        assert_eq!(site.restores, 1);
        assert_eq!(site.mean_time_to_restore_s, Some((4040 - 100) as f64));
        // Durations of ended runs: 10, 20, 40, 60, 100.
        assert_eq!(site.median_duration_s, Some(40.0));
        assert!(table(&s).contains("50% (2/4)"), "{}", table(&s));
    }

    #[test]
    fn a_run_rolled_back_later_is_a_failure() {
        let mut r = run("a.yaml", 0, 10, "success");
        r.rolled_back_hosts = vec!["web1".into()];
        let s = per_playbook(&[r], Some(0), 2 * DAY);
        assert_eq!(s[0].change_failure_rate, Some(1.0));
        assert_eq!(s[0].runs_per_day, 0.5);
    }
}
