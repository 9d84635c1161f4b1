//! The controller's run journal: `<state>/runs/<run-id>/journal.jsonl`, append-only JSON
//! lines, fsynced.
//!
//! Owns the record vocabulary ([`Record`]), run ids, the controller state directory
//! (`--state-dir`, else `$XDG_STATE_HOME/rdeploy`, else `~/.local/state/rdeploy`) and reading
//! journals back (a line that does not parse, torn by a crash or damaged, is skipped and
//! reported with its number). Writes go through one writer thread that group-commits: every
//! record queued while it wrote is written, then one `fsync` covers them all, so fifty hosts
//! recording intents at once cost one disk flush, not fifty. An intent ([`Journal::durable`])
//! returns only once it is on disk. Records carry statuses, paths and
//! task names, never registered results or variable values; the descriptive texts that can
//! hold a rendered value (a probe's URL, a gate's reason) have every registered secret masked
//! before they are written. The journal file is created 0600 and the run folders 0700. It
//! must not print.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Entry;

/// One journal line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record {
    /// The run begins.
    RunStart {
        /// Its id.
        run_id: String,
        /// The playbook as given.
        playbook: String,
        /// The inventory sources as given.
        inventory: Vec<String>,
        /// `--limit`, if any.
        #[serde(default)]
        limit: Option<String>,
        /// The controller's working directory (relative paths above are relative to it).
        cwd: String,
        /// Unix seconds.
        started: u64,
        /// The interrupted run this one goes on with.
        #[serde(default)]
        resumed_from: Option<String>,
        /// Unfinished runs this one was told to start over (`--force-over`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        forced_over: Vec<String>,
        /// Who started it: the name of the process's uid in the user database (not `$USER`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        /// The controller's host name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        controller: Option<String>,
        /// `--label`: the release this run deploys.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        /// `--change-time` (or the `release_time` extra variable): when the change it
        /// deploys was made, unix seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change_time: Option<u64>,
    },
    /// A play begins.
    Play {
        /// 0-based index in the playbook.
        index: usize,
        /// Its name.
        name: String,
        /// Its release label, rendered, when it sets `release_label`.
        #[serde(default)]
        release: Option<String>,
    },
    /// A batch begins.
    Batch {
        /// 0-based play index.
        play: usize,
        /// 1-based batch index.
        index: usize,
        /// Its hosts.
        hosts: Vec<String>,
    },
    /// A batch passed its gate.
    BatchEnd {
        /// 0-based play index.
        play: usize,
        /// 1-based batch index.
        index: usize,
        /// Its hosts.
        hosts: Vec<String>,
    },
    /// A host's backups live in `state_dir`.
    Host {
        /// The host.
        host: String,
        /// Its `rdeploy_state_dir`.
        state_dir: String,
        /// The user the state folder was prepared as, when not the login user.
        #[serde(default)]
        become_user: Option<String>,
        /// How `become_user` was become (`sudo` or `su`; never a password). Journals written
        /// before it was recorded have none: `sudo`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        become_method: Option<crate::transport::BecomeMethod>,
    },
    /// `add_host` added `host` to the run's inventory: how to reach it again for a rollback
    /// (its connection variables; never a password or key passphrase).
    AddedHost {
        /// The host.
        host: String,
        /// Its groups.
        #[serde(default)]
        groups: Vec<String>,
        /// Its connection variables (`ansible_host`, `ansible_port`, `ansible_user`,
        /// `ansible_connection`, ...).
        #[serde(default)]
        vars: serde_json::Map<String, serde_json::Value>,
    },
    /// About to change `paths` on `host` as its step `step` (written before the change).
    Intent {
        /// The host.
        host: String,
        /// The host's step number.
        step: u32,
        /// The task's label.
        task: String,
        /// What the step may change.
        paths: Vec<String>,
    },
    /// What the step's backup recorded.
    Backup {
        /// The host.
        host: String,
        /// The step.
        step: u32,
        /// The manifest entries.
        entries: Vec<Entry>,
    },
    /// A task finished on a host.
    Result {
        /// The host.
        host: String,
        /// The task's label.
        task: String,
        /// `ok`, `changed`, `failed`, `skipped`, `unreachable`.
        status: String,
        /// The host's step number when the task changed something.
        #[serde(default)]
        step: Option<u32>,
    },
    /// A health probe's outcome.
    Probe {
        /// The host.
        host: String,
        /// The probe's name.
        probe: String,
        /// Passed or not.
        passed: bool,
        /// The last observed value.
        observed: String,
    },
    /// An analysis begins: its metrics with their conditions as written (for the charts of
    /// `rdeploy show --html`).
    Analysis {
        /// 0-based play index.
        play: usize,
        /// 1-based batch index.
        batch: usize,
        /// `[name, success_condition, failure_condition]` per metric.
        metrics: Vec<(String, Option<String>, Option<String>)>,
    },
    /// One measurement of an analysis (no secret: the metric's name, its result and verdict).
    Measurement {
        /// 0-based play index.
        play: usize,
        /// 1-based batch index.
        batch: usize,
        /// The metric's name.
        metric: String,
        /// The hosts it speaks for.
        hosts: Vec<String>,
        /// 1-based number of the measurement.
        n: u32,
        /// `success`, `failure` or `inconclusive`.
        verdict: String,
        /// The measured result.
        #[serde(default)]
        value: Option<serde_json::Value>,
        /// What was seen.
        observed: String,
        /// Seconds since the analysis started.
        at_s: f64,
    },
    /// A batch's health gate or failure budget failed.
    GateFailed {
        /// 0-based play index.
        play: usize,
        /// 1-based batch index.
        batch: usize,
        /// Why.
        reason: String,
    },
    /// A host was rolled back.
    Rollback {
        /// The host.
        host: String,
        /// The run whose changes were undone.
        run_id: String,
        /// Entries restored.
        restored: usize,
        /// What failed, if anything.
        #[serde(default)]
        error: Option<String>,
    },
    /// `rdeploy switch-back` put a host's load balancer servers back as they were before the
    /// run.
    SwitchBack {
        /// The host (the load balancer).
        host: String,
        /// The run whose switches were undone.
        run_id: String,
        /// Entries restored.
        restored: usize,
        /// What failed, if anything.
        #[serde(default)]
        error: Option<String>,
    },
    /// The run ended.
    RunEnd {
        /// `success`, `failed`, `rolled_back`, `rollback_incomplete`, `host_key_refused`,
        /// `interrupted`, `deadline`.
        outcome: String,
        /// The exit code.
        exit_code: i32,
        /// Unix seconds.
        ended: u64,
        /// Hosts with at least one change.
        hosts_changed: Vec<String>,
        /// Written by a forced exit (a second signal, steps that outlived the grace): the
        /// steps begun may not have their results recorded.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        forced: bool,
    },
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for unix seconds `t`.
pub fn rfc3339(t: u64) -> String {
    let (days, secs) = (t / 86_400, t % 86_400);
    let (y, m, d) =
        crate::modules::system::common::civil_from_days(i64::try_from(days).unwrap_or_default());
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// A new run id: `YYYYMMDDTHHMMSSZ-mmmrrr`, sortable by start time to the millisecond (`mmm`,
/// the milliseconds in hex), unique by its random tail `rrr`.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let exact = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let stamp: String = rfc3339(exact.as_secs())
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(exact.as_nanos());
    format!(
        "{stamp}-{:03x}{:03x}",
        exact.subsec_millis(),
        h.finish() & 0xfff
    )
}

/// The unix second a [`new_run_id`] was made in (its `YYYYMMDDTHHMMSSZ` stamp); `None` for an
/// id of another shape.
pub fn run_started(id: &str) -> Option<u64> {
    let stamp = id.get(..16)?;
    let b = stamp.as_bytes();
    if b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = stamp.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = crate::modules::system::common::days_from_civil(i64::from(y), m, d);
    u64::try_from(days)
        .ok()
        .map(|days| days * 86_400 + u64::from(h) * 3600 + u64::from(mi) * 60 + u64::from(s))
}

/// Whether `id` has the shape of a run id (so it is safe in paths on both sides).
pub fn valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The controller's state directory: `--state-dir`, `$XDG_STATE_HOME/rdeploy`,
/// `~/.local/state/rdeploy`.
pub fn state_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(d) = flag {
        return d.to_path_buf();
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("rdeploy");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    PathBuf::from(home).join(".local/state/rdeploy")
}

/// Creates `dir` and its missing parents 0700 (the controller's state folders hold what
/// runs changed; nobody else needs to read them).
pub fn private_dir_all(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// `<state>/runs/<run-id>/journal.jsonl`.
pub fn journal_path(state: &Path, run_id: &str) -> PathBuf {
    state.join("runs").join(run_id).join("journal.jsonl")
}

type Ack = tokio::sync::oneshot::Sender<Result<(), String>>;

/// An open journal. Dropping it (or [`Journal::close`]) flushes and joins the writer.
pub struct Journal {
    tx: Option<mpsc::Sender<(String, Option<Ack>)>>,
    writer: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl Journal {
    /// Creates the run's folder and journal file.
    pub fn create(state: &Path, run_id: &str) -> io::Result<Journal> {
        let path = journal_path(state, run_id);
        if let Some(dir) = path.parent() {
            private_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        let (tx, rx) = mpsc::channel::<(String, Option<Ack>)>();
        let writer = std::thread::Builder::new()
            .name("rdeploy-journal".into())
            .spawn(move || write_loop(file, rx))?;
        Ok(Journal {
            tx: Some(tx),
            writer: Some(writer),
            path,
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `rec`; it reaches the disk with the next flush.
    pub fn note(&self, rec: &Record) {
        if let Some(tx) = &self.tx {
            let _ = tx.send((line(rec), None));
        }
    }

    /// Writes `rec` and returns once it is on disk.
    pub async fn durable(&self, rec: &Record) -> Result<(), String> {
        let Some(tx) = &self.tx else {
            return Err("the journal is closed".into());
        };
        let (ack, done) = tokio::sync::oneshot::channel();
        tx.send((line(rec), Some(ack)))
            .map_err(|_| "the journal writer stopped".to_string())?;
        done.await
            .map_err(|_| "the journal writer stopped".to_string())?
    }

    /// Flushes everything queued and stops the writer.
    pub fn close(&mut self) {
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

fn line(rec: &Record) -> String {
    let mut v = serde_json::to_value(rec).unwrap_or(Value::Null);
    if !crate::vault::redact::is_empty() {
        mask_secrets(&mut v);
    }
    if let Value::Object(m) = &mut v {
        m.insert("t".into(), Value::from(now()));
    }
    let mut s = v.to_string();
    s.push('\n');
    s
}

/// Fields that name what rollback restores (paths, the host's state folder, the manifest
/// entries): kept as they are, since masking them would make the run impossible to undo.
const RESTORE_FIELDS: &[&str] = &[
    "paths",
    "entries",
    "state_dir",
    "cwd",
    "playbook",
    "inventory",
];

/// Masks every registered secret in a record's descriptive texts (probe descriptions and
/// observations, gate reasons, task labels, errors), so a value rendered from a vault
/// variable never reaches the disk. Shown again by `rdeploy show` as `********`.
fn mask_secrets(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(masked) = crate::vault::redact::redact(s) {
                *s = masked;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        Value::Object(m) => {
            for (k, item) in m.iter_mut() {
                if !RESTORE_FIELDS.contains(&k.as_str()) {
                    mask_secrets(item);
                }
            }
        }
        _ => {}
    }
}

/// Group commit: block for one record, take every other one already queued, write, fsync,
/// acknowledge them all.
fn write_loop(mut file: File, rx: mpsc::Receiver<(String, Option<Ack>)>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let mut buf = String::new();
        for (l, _) in &batch {
            buf.push_str(l);
        }
        let res = file
            .write_all(buf.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| e.to_string());
        for (_, ack) in batch {
            if let Some(ack) = ack {
                let _ = ack.send(res.clone());
            }
        }
    }
}

/// A journal line that was not read: its 1-based number and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredLine {
    /// The line's number in the file, from 1.
    pub line: usize,
    /// Why it was not read.
    pub why: String,
    /// It is the file's last line, cut short: a write a crash tore, which lost at most the
    /// record being written (its writer never heard it was on disk).
    pub torn_last: bool,
}

impl std::fmt::Display for IgnoredLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "journal line {} ignored: {}", self.line, self.why)
    }
}

/// A journal as read back: the records that parsed, and the lines that did not.
#[derive(Clone, Debug, Default)]
pub struct Read {
    /// The records, in file order.
    pub records: Vec<Record>,
    /// Lines that did not parse (a write torn by a crash, a damaged file), in file order.
    pub ignored: Vec<IgnoredLine>,
}

impl Read {
    /// Whether the journal has the run's start record (an empty or damaged journal may not).
    pub fn has_start(&self) -> bool {
        self.records
            .iter()
            .any(|r| matches!(r, Record::RunStart { .. }))
    }

    /// Whether records may be missing from the middle of the run: no start record, or a line
    /// other than a torn last one that did not read back.
    pub fn damaged(&self) -> bool {
        !self.has_start() || self.ignored.iter().any(|l| !l.torn_last)
    }
}

/// Why a line is not a record, in words (serde's message, with the column and without its
/// "line 1"). `last`: the file's last line, where a cut-short write is a crash's.
fn why_ignored(e: &serde_json::Error, last: bool) -> String {
    use serde_json::error::Category;
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    let col = e.column();
    match e.classify() {
        Category::Eof if last => format!("cut short, a write torn by a crash (at column {col})"),
        Category::Eof => format!("cut short (at column {col})"),
        Category::Syntax | Category::Io => format!("not JSON ({msg} at column {col})"),
        Category::Data => match msg.strip_prefix("unknown variant ") {
            // serde lists every event; the one found is enough.
            Some(rest) => format!(
                "not a journal record (unknown event {})",
                rest.split(',').next().unwrap_or(rest)
            ),
            None => format!("not a journal record ({msg})"),
        },
    }
}

/// Reads a journal: its records, and the lines that did not parse with their numbers.
/// Bytes that are not UTF-8 make their line unreadable, not the file.
pub fn read(path: &Path) -> io::Result<Read> {
    let bytes = fs::read(path)?;
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let last = lines
        .iter()
        .rposition(|l| !l.trim_ascii().is_empty())
        .unwrap_or(0);
    let mut out = Read::default();
    for (i, raw) in lines.into_iter().enumerate() {
        let Ok(l) = std::str::from_utf8(raw) else {
            out.ignored.push(IgnoredLine {
                line: i + 1,
                why: "not UTF-8 text".into(),
                torn_last: false,
            });
            continue;
        };
        if l.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(l) {
            Ok(r) => out.records.push(r),
            Err(e) => out.ignored.push(IgnoredLine {
                line: i + 1,
                why: why_ignored(&e, i == last),
                torn_last: i == last && e.classify() == serde_json::error::Category::Eof,
            }),
        }
    }
    Ok(out)
}

/// Every run id with a journal under `state`, oldest first.
pub fn run_ids(state: &Path) -> io::Result<Vec<String>> {
    let dir = state.join("runs");
    let mut ids: Vec<String> = match fs::read_dir(&dir) {
        Ok(d) => d
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("journal.jsonl").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| valid_run_id(n))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_run_ids() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_083_200), "2026-12-01T00:00:00Z");
        assert_eq!(rfc3339(951_827_696), "2000-02-29T12:34:56Z");
        let a = new_run_id();
        assert!(valid_run_id(&a), "{a}");
        assert_eq!(a.len(), "20261201T130000Z-abcdef".len());
        assert!(!valid_run_id("../etc"));
        assert!(!valid_run_id(""));
        // Two runs started one after the other sort in that order, within a second too.
        let b = {
            std::thread::sleep(std::time::Duration::from_millis(2));
            new_run_id()
        };
        assert!(a < b, "{a} then {b}");
    }

    #[test]
    fn a_run_id_says_when_its_run_started() {
        assert_eq!(run_started("20001231T235959Z-abcdef"), Some(978_307_199));
        assert_eq!(run_started("20000229T123456Z-000001"), Some(951_827_696));
        let t = now();
        let id = new_run_id();
        let started = run_started(&id).unwrap();
        assert!(started >= t && started <= now(), "{id}: {started}");
        for other in [
            "r1",
            "",
            "2026120xT000000Z-1",
            "20261301T000000Z-1",
            "20261201T0000Z",
        ] {
            assert_eq!(run_started(other), None, "{other}");
        }
    }

    #[tokio::test]
    async fn records_survive_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "r1").unwrap();
        j.durable(&Record::Intent {
            host: "web1".into(),
            step: 1,
            task: "copy".into(),
            paths: vec!["/srv/a".into()],
        })
        .await
        .unwrap();
        j.note(&Record::Result {
            host: "web1".into(),
            task: "copy".into(),
            status: "changed".into(),
            step: Some(1),
        });
        j.close();
        let path = journal_path(dir.path(), "r1");
        // A write cut short by a crash.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"event\":\"res")
            .unwrap();
        let got = read(&path).unwrap();
        assert_eq!(got.records.len(), 2);
        assert!(matches!(&got.records[1], Record::Result { status, .. } if status == "changed"));
        assert_eq!(got.ignored.len(), 1);
        assert_eq!(got.ignored[0].line, 3);
        // (No start record here: `damaged()` would say so for that reason alone.)
        assert!(got.ignored[0].torn_last);
        assert!(
            got.ignored[0]
                .to_string()
                .starts_with("journal line 3 ignored: cut short"),
            "{}",
            got.ignored[0]
        );
        assert_eq!(run_ids(dir.path()).unwrap(), ["r1"]);
    }

    /// A crash tears at most the last line: the journal is still whole for rollback; a damaged
    /// line before it is not.
    #[test]
    fn only_a_torn_last_line_leaves_the_journal_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let start = r#"{"event":"run_start","run_id":"r","playbook":"p","inventory":[],"cwd":"/","started":0}"#;
        fs::write(&path, format!("{start}\n{{\"event\":\"res")).unwrap();
        let got = read(&path).unwrap();
        assert!(got.has_start() && !got.damaged(), "{:?}", got.ignored);
        fs::write(&path, format!("{start}\n{{\"event\":\"res\n{start}\n")).unwrap();
        assert!(read(&path).unwrap().damaged());
    }

    /// A damaged line in the middle is skipped with its number and why; the records around
    /// it are read; a `host` record written before the become method was recorded still reads.
    #[test]
    fn damaged_lines_are_reported_with_their_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        fs::write(
            &path,
            concat!(
                "{\"event\":\"host\",\"host\":\"a\",\"state_dir\":\"/s\",\"become_user\":\"root\"}\n",
                "{\"event\":\"bogus\",\"host\":\"a\"}\n",
                "{\"event\":\"result\",\"host\":\"a\",\"task\":\n",
                "\n",
                "not json at all\n",
                "{\"event\":\"result\",\"host\":\"a\",\"task\":\"t\",\"status\":\"ok\"}\n",
            ),
        )
        .unwrap();
        let got = read(&path).unwrap();
        assert_eq!(got.records.len(), 2);
        assert!(matches!(
            &got.records[0],
            Record::Host { become_user: Some(u), become_method: None, .. } if u == "root"
        ));
        assert!(!got.has_start() && got.damaged());
        assert!(got.ignored.iter().all(|l| !l.torn_last));
        let said: Vec<String> = got.ignored.iter().map(ToString::to_string).collect();
        assert_eq!(
            said,
            [
                "journal line 2 ignored: not a journal record (unknown event `bogus`)",
                "journal line 3 ignored: cut short (at column 36)",
                "journal line 5 ignored: not JSON (expected ident at column 2)",
            ]
        );
    }
}
