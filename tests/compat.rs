//! The compatibility suite: public playbooks and roles, unchanged (tests/compat/, listed in
//! tests/compat/suite.yaml, their origins in tests/compat/SOURCES), run three ways against the
//! SSH test fleet, each beside ansible-playbook (ansible-core 2.19, `RDEPLOY_ANSIBLE_PLAYBOOK`
//! or `target/ansible-venv`) on fresh hosts of its own:
//!
//! - `syntax`: `rdeploy run --syntax-check` accepts what `ansible-playbook --syntax-check`
//!   accepts (and rejects what it rejects);
//! - `check`: `rdeploy run --check --diff` reports, per host and per task, the statuses
//!   (ok, changed, skipped, failed, unreachable) that `ansible-playbook --check --diff` reports,
//!   and both succeed or both fail;
//! - `run`: the same for a real run, only for entries marked `run: true` (safe on the test
//!   hosts).
//!
//! Each mode's outcome is `pass`, `refused` (rdeploy refused before touching any host, naming
//! FILE:LINE:COL and "not supported by rdeploy"), `rejected` (exit 4 for another reason, e.g.
//! an undefined variable or an unknown module, where ansible-playbook went ahead), or
//! `differs` (rdeploy ran, or accepted, where its results differ from ansible-playbook's).
//! tests/compat/expected.txt records today's outcome of each playbook and mode: the test fails
//! when one changes either way (a regression, or a playbook that now does better, so that the
//! file is kept true). `COMPAT_BLESS=1` rewrites the file with what was measured;
//! `COMPAT_ONLY=NAME[,NAME]` runs only those entries (and compares only them).
//!
//! Ansible's results come from tests/compat/callback/compat_results.py, a stdout callback of
//! ours (ansible-core has no JSON one); it sees every task result, include tasks' too.

mod support;

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use support::Sandbox;
use support::fleet::Fleet;

/// Entries run at once (each runs its commands one after the other).
const WORKERS: usize = 2;
const RDEPLOY_TIMEOUT: Duration = Duration::from_secs(120);
const ANSIBLE_TIMEOUT: Duration = Duration::from_secs(180);

fn compat_dir() -> PathBuf {
    support::repo().join("tests/compat")
}

// ------------------------------------------------------------------ the suite's files

/// One playbook of suite.yaml.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    playbook: String,
    hosts: Vec<String>,
    groups: BTreeMap<String, Vec<String>>,
    vars: Map<String, Value>,
    roles: Option<String>,
    run: bool,
}

fn load_suite() -> Vec<Entry> {
    let path = compat_dir().join("suite.yaml");
    let text = std::fs::read_to_string(&path).expect("read tests/compat/suite.yaml");
    let doc: Value = serde_saphyr::from_str(&text).expect("tests/compat/suite.yaml is YAML");
    let items = doc.as_array().expect("suite.yaml is a list");
    items
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().map(str::to_string);
            let list = |v: &Value| -> Vec<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let name = s("name").expect("an entry without a name");
            let e = Entry {
                playbook: s("playbook").unwrap_or_else(|| panic!("{name}: no playbook")),
                hosts: list(&v["hosts"]),
                groups: v["groups"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, g)| (k.clone(), list(g))).collect())
                    .unwrap_or_default(),
                vars: v["vars"].as_object().cloned().unwrap_or_default(),
                roles: s("roles"),
                run: v["run"].as_bool().unwrap_or(false),
                name,
            };
            assert!(!e.hosts.is_empty(), "{}: no hosts", e.name);
            assert!(
                compat_dir().join(&e.playbook).is_file(),
                "{}: no file {}",
                e.name,
                e.playbook
            );
            e
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Syntax,
    Check,
    Run,
}

const MODES: [Mode; 3] = [Mode::Syntax, Mode::Check, Mode::Run];

impl Mode {
    fn word(self) -> &'static str {
        match self {
            Mode::Syntax => "syntax",
            Mode::Check => "check",
            Mode::Run => "run",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Pass,
    Refused,
    Rejected,
    Differs,
    /// The mode does not run for this entry (`-`).
    NotRun,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Refused => "refused",
            Outcome::Rejected => "rejected",
            Outcome::Differs => "differs",
            Outcome::NotRun => "-",
        }
    }

    fn parse(w: &str) -> Option<Outcome> {
        [
            Outcome::Pass,
            Outcome::Refused,
            Outcome::Rejected,
            Outcome::Differs,
            Outcome::NotRun,
        ]
        .into_iter()
        .find(|o| o.word() == w)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.word())
    }
}

/// expected.txt: `NAME SYNTAX CHECK RUN` per line, `#` comments.
fn load_expected(file: &str) -> BTreeMap<String, [Outcome; 3]> {
    let text = std::fs::read_to_string(compat_dir().join(file)).unwrap_or_default();
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let parsed: Option<Vec<Outcome>> =
            words.iter().skip(1).map(|w| Outcome::parse(w)).collect();
        match (words.len(), parsed) {
            (4, Some(o)) => {
                out.insert(words[0].to_string(), [o[0], o[1], o[2]]);
            }
            _ => panic!(
                "tests/compat/{file}:{}: expected 'NAME SYNTAX CHECK RUN' with pass, refused, rejected, differs or -, found '{line}'",
                i + 1
            ),
        }
    }
    out
}

fn write_expected(file: &str, results: &BTreeMap<String, Measured>, suite: &[Entry]) {
    let mut text = String::from(
        "# What tests/compat.rs measured for each playbook of suite.yaml: one line per playbook,\n\
         # its outcome with --syntax-check, with --check --diff and in a real run (- when that\n\
         # mode does not run for it): pass (as ansible-playbook), refused (before any host, with\n\
         # FILE:LINE:COL and \"not supported by rdeploy\"), rejected (exit 4 for another reason),\n\
         # differs (results differ from ansible-playbook's). COMPAT_BLESS=1 rewrites this file.\n",
    );
    let width = suite.iter().map(|e| e.name.len()).max().unwrap_or(10) + 2;
    let _ = writeln!(text, "{:width$}{:10}{:10}run", "# name", "syntax", "check");
    for e in suite {
        if let Some(m) = results.get(&e.name) {
            let o = m.outcomes();
            let _ = writeln!(text, "{:width$}{:10}{:10}{}", e.name, o[0], o[1], o[2]);
        }
    }
    std::fs::write(compat_dir().join(file), text).expect("write the expectations");
}

// ------------------------------------------------------------------ running one side

fn ansible_playbook() -> PathBuf {
    if let Some(p) = std::env::var_os("RDEPLOY_ANSIBLE_PLAYBOOK") {
        return PathBuf::from(p);
    }
    let venv = support::repo().join("target/ansible-venv/bin/ansible-playbook");
    assert!(
        venv.is_file(),
        "the compatibility suite compares with ansible-playbook: run ./scripts/test.sh, or \
         scripts/ansible-venv.sh and set RDEPLOY_ANSIBLE_PLAYBOOK"
    );
    venv
}

/// One finished run of either tool.
struct Ran {
    code: i32,
    events: Vec<Value>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn from(out: std::process::Output) -> Ran {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Ran {
            code: out.status.code().unwrap_or(-1),
            events: stdout
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The first error line (or the last line of stderr), to show in the table.
    fn first_error(&self) -> String {
        let all = format!("{}\n{}", self.stderr, self.stdout);
        all.lines()
            .filter(|l| !l.starts_with('{'))
            .find(|l| l.contains("error:") || l.contains("ERROR!") || l.contains("[ERROR]"))
            .or_else(|| self.stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("")
            .trim()
            .replace(&format!("{}/", support::repo().display()), "")
            .chars()
            .take(220)
            .collect()
    }
}

/// The inventory for `e` on `fleet` (host i of the fleet is `e.hosts[i]`).
fn inventory(fleet: &Fleet, e: &Entry) -> String {
    let known = format!("-o UserKnownHostsFile={}", fleet.known_hosts().display());
    let mut hosts = Map::new();
    for (i, name) in e.hosts.iter().enumerate() {
        let mut v = fleet.host_vars(fleet.host(i));
        v.insert("ansible_ssh_extra_args".into(), json!(known));
        // The hosts share this machine's Python (ansible-playbook's modules need one).
        v.insert(
            "ansible_python_interpreter".into(),
            json!("/usr/bin/python3"),
        );
        hosts.insert(name.clone(), Value::Object(v));
    }
    let mut all = json!({ "hosts": hosts });
    if !e.vars.is_empty() {
        all["vars"] = Value::Object(e.vars.clone());
    }
    if !e.groups.is_empty() {
        let children: Map<String, Value> = e
            .groups
            .iter()
            .map(|(g, members)| {
                let m: Map<String, Value> =
                    members.iter().map(|h| (h.clone(), Value::Null)).collect();
                (g.clone(), json!({ "hosts": m }))
            })
            .collect();
        all["children"] = Value::Object(children);
    }
    serde_saphyr::to_string(&json!({ "all": all })).expect("inventory YAML")
}

fn mode_args(mode: Mode) -> &'static [&'static str] {
    match mode {
        Mode::Syntax => &["--syntax-check"],
        Mode::Check => &["--check", "--diff"],
        Mode::Run => &[],
    }
}

fn rdeploy(sb: &Sandbox, e: &Entry, mode: Mode, bridge: bool) -> Ran {
    let pb = compat_dir().join(&e.playbook);
    let mut cmd = sb.rdeploy(&["run"]);
    cmd.arg(&pb)
        .args(["-i", "inv.yaml", "--output", "json"])
        .args(mode_args(mode))
        .env_remove("SSH_AUTH_SOCK")
        .timeout(RDEPLOY_TIMEOUT);
    // Ansible's own modules run through the bridge only in the measurement that asks for it.
    if bridge {
        cmd.env(
            "RDEPLOY_ANSIBLE_PYTHON",
            ansible_playbook().with_file_name("python"),
        );
    } else {
        cmd.env("RDEPLOY_ANSIBLE_PYTHON", "/nonexistent/no-ansible-python");
    }
    if let Some(r) = &e.roles {
        cmd.arg("--roles-path").arg(compat_dir().join(r));
    }
    Ran::from(cmd.output().expect("run rdeploy"))
}

fn ansible(sb: &Sandbox, e: &Entry, mode: Mode) -> Ran {
    let pb = compat_dir().join(&e.playbook);
    let home = sb.path().join("ansible-home");
    std::fs::create_dir_all(&home).expect("create ansible's HOME");
    let mut cmd = assert_cmd::Command::new(ansible_playbook());
    cmd.current_dir(sb.path())
        .arg(&pb)
        .args(["-i", "inv.yaml"])
        .args(mode_args(mode))
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("ANSIBLE_CONFIG")
        .env("HOME", &home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env("ANSIBLE_CALLBACK_PLUGINS", compat_dir().join("callback"))
        .env("ANSIBLE_STDOUT_CALLBACK", "compat_results")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .env("ANSIBLE_DEPRECATION_WARNINGS", "false")
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "false")
        .env("ANSIBLE_PIPELINING", "true")
        // No ControlPersist: nothing of ansible's may outlive the run (or the fleet).
        .env(
            "ANSIBLE_SSH_ARGS",
            "-o ControlMaster=no -o ControlPersist=no",
        )
        .timeout(ANSIBLE_TIMEOUT);
    if let Some(r) = &e.roles {
        cmd.env("ANSIBLE_ROLES_PATH", compat_dir().join(r));
    }
    Ran::from(cmd.output().expect("run ansible-playbook"))
}

/// A sandbox with the inventory for `e` on a fleet of its own.
fn sandbox_on_fleet(e: &Entry) -> (Fleet, Sandbox) {
    let fleet = Fleet::start(e.hosts.len());
    let sb = Sandbox::new();
    sb.write("inv.yaml", inventory(&fleet, e));
    (fleet, sb)
}

// ------------------------------------------------------------------ comparing

/// Per host: (task, status, message) in order.
type PerHost = BTreeMap<String, Vec<(String, String, String)>>;

fn rdeploy_results(ran: &Ran) -> PerHost {
    let mut out = PerHost::new();
    let mut task = String::new();
    for ev in &ran.events {
        match ev["event"].as_str() {
            Some("task") => task = ev["name"].as_str().unwrap_or("").to_string(),
            Some("result") => {
                let r = &ev["result"];
                let host = r["host"].as_str().unwrap_or("").to_string();
                let status = r["status"].as_str().unwrap_or("").to_string();
                let msg = r["msg"].as_str().unwrap_or("").to_string();
                out.entry(host)
                    .or_default()
                    .push((task.clone(), status, msg));
            }
            _ => {}
        }
    }
    out
}

fn ansible_results(ran: &Ran) -> PerHost {
    let mut out = PerHost::new();
    for ev in &ran.events {
        if ev["event"] == "result" {
            let r = &ev["result"];
            let host = r["host"].as_str().unwrap_or("").to_string();
            let task = ev["task"].as_str().unwrap_or("").to_string();
            let status = r["status"].as_str().unwrap_or("").to_string();
            let msg = r["msg"].as_str().unwrap_or("").to_string();
            out.entry(host).or_default().push((task, status, msg));
        }
    }
    out
}

/// The first difference between rdeploy's and ansible-playbook's per-task statuses, if any.
fn first_difference(rd: &PerHost, an: &PerHost) -> Option<String> {
    let hosts: std::collections::BTreeSet<&String> = rd.keys().chain(an.keys()).collect();
    for h in hosts {
        let empty = Vec::new();
        let (a, b) = (rd.get(h).unwrap_or(&empty), an.get(h).unwrap_or(&empty));
        for i in 0..a.len().max(b.len()) {
            let (x, y) = (a.get(i), b.get(i));
            if x.map(|t| &t.1) != y.map(|t| &t.1) {
                let show = |t: Option<&(String, String, String)>| match t {
                    None => "nothing".to_string(),
                    Some((n, s, m)) if s == "failed" && !m.is_empty() => {
                        let m: String = m.lines().next().unwrap_or("").chars().take(160).collect();
                        format!("{s} '{n}' ({m})")
                    }
                    Some((n, s, _)) => format!("{s} '{n}'"),
                };
                return Some(format!(
                    "{h}, result {}: rdeploy {}, ansible {}",
                    i + 1,
                    show(x),
                    show(y)
                ));
            }
        }
    }
    None
}

/// `PATH:LINE:COL: error: ... not supported by rdeploy`
fn is_precise_refusal(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        l.contains("not supported by rdeploy") && {
            let mut parts = l.splitn(4, ':');
            let (_, line, col) = (parts.next(), parts.next(), parts.next());
            let num = |p: Option<&str>| {
                p.is_some_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
            };
            num(line) && num(col)
        }
    })
}

fn accepted_logins(fleet: &Fleet) -> usize {
    fleet
        .hosts()
        .iter()
        .map(|h| h.log().matches("Accepted publickey").count())
        .sum()
}

/// One mode's outcome and why.
#[derive(Clone, Debug)]
struct Verdict {
    outcome: Outcome,
    why: String,
}

fn verdict(outcome: Outcome, why: impl Into<String>) -> Verdict {
    Verdict {
        outcome,
        why: why.into(),
    }
}

/// The syntax mode's verdict, and whether ansible-playbook accepted the playbook.
fn measure_syntax(e: &Entry, bridge: bool) -> (Verdict, bool) {
    // No host is touched: a fleet is still needed for the inventory's addresses.
    let (fleet, sb) = sandbox_on_fleet(e);
    let rd = rdeploy(&sb, e, Mode::Syntax, bridge);
    let an = ansible(&sb, e, Mode::Syntax);
    assert_eq!(accepted_logins(&fleet), 0, "--syntax-check logged in");
    let v = match (rd.code == 0, an.code == 0) {
        (true, true) => verdict(Outcome::Pass, ""),
        (false, false) => verdict(Outcome::Pass, "both reject it"),
        (true, false) => verdict(
            Outcome::Differs,
            format!("ansible-playbook rejects it: {}", an.first_error()),
        ),
        (false, true) if rd.code == 4 && is_precise_refusal(&rd.stderr) => {
            verdict(Outcome::Refused, rd.first_error())
        }
        (false, true) if rd.code == 4 => verdict(Outcome::Rejected, rd.first_error()),
        (false, true) => verdict(
            Outcome::Differs,
            format!("exit {}: {}", rd.code, rd.first_error()),
        ),
    };
    (v, an.code == 0)
}

/// `ansible_parses`: ansible-playbook's --syntax-check accepted the playbook (when it did
/// not, ansible-playbook refuses it in every mode, before any host).
fn measure_hosts(e: &Entry, mode: Mode, ansible_parses: bool, bridge: bool) -> Verdict {
    let rd = {
        let (fleet, sb) = sandbox_on_fleet(e);
        let rd = rdeploy(&sb, e, mode, bridge);
        if rd.code == 4 && !ansible_parses {
            return verdict(Outcome::Pass, "both reject it");
        }
        if rd.code == 4 {
            let touched = accepted_logins(&fleet) > 0;
            let why = rd.first_error();
            return if !touched && is_precise_refusal(&rd.stderr) {
                verdict(Outcome::Refused, why)
            } else if touched {
                verdict(Outcome::Rejected, format!("after logging in: {why}"))
            } else {
                verdict(Outcome::Rejected, why)
            };
        }
        rd
    };
    let an = {
        let (_fleet, sb) = sandbox_on_fleet(e);
        ansible(&sb, e, mode)
    };
    if std::env::var_os("COMPAT_SHOW").is_some() {
        let _ = writeln!(
            std::io::stderr(),
            "--- {} {}: rdeploy exit {}\n{}\n{}\n--- ansible exit {}\n{}\n{}",
            e.name,
            mode.word(),
            rd.code,
            rd.stdout,
            rd.stderr,
            an.code,
            an.stdout,
            an.stderr
        );
    }
    if let Some(d) = first_difference(&rdeploy_results(&rd), &ansible_results(&an)) {
        let error = rd.first_error();
        let why = if error.is_empty() {
            d
        } else {
            format!("{d} ({error})")
        };
        return verdict(Outcome::Differs, why);
    }
    if (rd.code == 0) != (an.code == 0) {
        return verdict(
            Outcome::Differs,
            format!(
                "same results, but rdeploy exits {} and ansible-playbook {}: {}",
                rd.code,
                an.code,
                rd.first_error()
            ),
        );
    }
    verdict(Outcome::Pass, "")
}

/// The three modes of one entry.
struct Measured {
    verdicts: [Verdict; 3],
}

impl Measured {
    fn outcomes(&self) -> [Outcome; 3] {
        [
            self.verdicts[0].outcome,
            self.verdicts[1].outcome,
            self.verdicts[2].outcome,
        ]
    }
}

fn measure(e: &Entry, bridge: bool) -> Measured {
    let (syntax, parses) = measure_syntax(e, bridge);
    let check = measure_hosts(e, Mode::Check, parses, bridge);
    let run = if e.run {
        measure_hosts(e, Mode::Run, parses, bridge)
    } else {
        verdict(Outcome::NotRun, "not run: not safe on the test hosts")
    };
    Measured {
        verdicts: [syntax, check, run],
    }
}

// ------------------------------------------------------------------ the test

#[test]
fn public_playbooks_keep_their_recorded_compatibility_with_ansible_playbook() {
    compare("expected.txt", false);
}

/// The same suite with Ansible's own modules run through the bridge (issue 14), recorded in
/// `expected-bridge.txt`: what a user with ansible-core on the controller gets.
#[test]
fn public_playbooks_with_the_bridge_keep_their_recorded_compatibility() {
    compare("expected-bridge.txt", true);
}

fn compare(file: &str, bridge: bool) {
    let started = Instant::now();
    let mut suite = load_suite();
    let only = std::env::var("COMPAT_ONLY").ok();
    if let Some(only) = &only {
        let names: Vec<&str> = only.split(',').collect();
        suite.retain(|e| names.contains(&e.name.as_str()));
        assert!(
            !suite.is_empty(),
            "COMPAT_ONLY={only} names no entry of suite.yaml"
        );
    }
    let bless = std::env::var_os("COMPAT_BLESS").is_some();
    let expected = if bless {
        BTreeMap::new()
    } else {
        load_expected(file)
    };
    let _ = ansible_playbook();

    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<String, Measured>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(e) = suite.get(i) else { break };
                    let m = measure(e, bridge);
                    results.lock().expect("results").insert(e.name.clone(), m);
                }
            });
        }
    });
    let results = results.into_inner().expect("results");

    if bless {
        if only.is_some() {
            panic!("COMPAT_BLESS rewrites the whole file: run it without COMPAT_ONLY");
        }
        write_expected(file, &results, &suite);
    }

    // The table, the summary and the changes from expected.txt, always printed (the test's
    // stderr is not captured for this: it is the suite's report).
    let tag = if bridge { "compat+bridge" } else { "compat" };
    let mut report = String::new();
    let mut changed = Vec::new();
    for e in &suite {
        let m = &results[&e.name];
        let o = m.outcomes();
        let _ = writeln!(
            report,
            "{tag}: {:28} {:9} {:9} {:9}",
            e.name, o[0], o[1], o[2]
        );
        for (i, mode) in MODES.iter().enumerate() {
            let v = &m.verdicts[i];
            if !v.why.is_empty() && v.outcome != Outcome::NotRun {
                let _ = writeln!(report, "{tag}:     {:6} {}", mode.word(), v.why);
            }
            let want = expected.get(&e.name).map(|x| x[i]);
            if want != Some(v.outcome) {
                changed.push(format!(
                    "{} {}: expected {}, measured {} {}",
                    e.name,
                    mode.word(),
                    want.map_or("(no line in expected.txt)".to_string(), |w| w.to_string()),
                    v.outcome,
                    v.why
                ));
            }
        }
    }
    let all = suite.len();
    let passing = results
        .values()
        .filter(|m| {
            m.outcomes()
                .iter()
                .all(|o| matches!(o, Outcome::Pass | Outcome::NotRun))
        })
        .count();
    for (i, mode) in MODES.iter().enumerate() {
        let count = |o: Outcome| results.values().filter(|m| m.outcomes()[i] == o).count();
        let ran = all - count(Outcome::NotRun);
        let _ = writeln!(
            report,
            "{tag}: {:6}: {} of {ran} pass, {} refused, {} rejected, {} differ",
            mode.word(),
            count(Outcome::Pass),
            count(Outcome::Refused),
            count(Outcome::Rejected),
            count(Outcome::Differs),
        );
    }
    let _ = writeln!(
        report,
        "{tag}: {passing} of {all} playbooks pass all three modes ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    let _ = std::io::stderr().write_all(report.as_bytes());

    if !bless {
        assert!(
            changed.is_empty(),
            "outcomes differ from tests/compat/{file} (fix the regression, or record the \
             improvement there, e.g. with COMPAT_BLESS=1):\n{}",
            changed.join("\n")
        );
    }
}

#[test]
fn the_suite_and_its_expectations_name_the_same_playbooks() {
    let suite = load_suite();
    let expected = load_expected("expected.txt");
    let names: Vec<&String> = suite.iter().map(|e| &e.name).collect();
    for e in &suite {
        assert!(
            expected.contains_key(&e.name),
            "expected.txt has no line for {}",
            e.name
        );
        let run = expected[&e.name][2];
        assert_eq!(
            run == Outcome::NotRun,
            !e.run,
            "{}: expected.txt's run column must be '-' exactly when suite.yaml does not run it",
            e.name
        );
    }
    for name in expected.keys() {
        assert!(
            names.contains(&name),
            "expected.txt names {name}, which suite.yaml does not"
        );
    }
    // SOURCES: `LOCAL_PATH REPO COMMIT PATH_IN_REPO` (a folder ends with /); ours: `ours`.
    let sources =
        std::fs::read_to_string(compat_dir().join("SOURCES")).expect("tests/compat/SOURCES");
    let locals: Vec<&str> = sources
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for e in &suite {
        assert!(
            locals
                .iter()
                .any(|l| e.playbook == *l || (l.ends_with('/') && e.playbook.starts_with(l))),
            "tests/compat/SOURCES does not say where {} comes from",
            e.playbook
        );
    }
}
