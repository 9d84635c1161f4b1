//! The scale benchmark of issue 13 (run it through `bench/scale.sh`): rdeploy on N hosts of
//! which 5% fail, in four ways, measured from outside while it runs.
//!
//! `scale_bench N [--per-sshd K] [--forks F] [--connect-timeout S]` starts the test fleet
//! (`tests/support/fleet.rs`, K inventory hosts per sshd), writes an inventory in which 5% of
//! the hosts fail, a quarter each way (the remainder to the first kinds):
//! - `refused`: `ansible_port` is a port nothing listens on (connection refused);
//! - `blackholed`: a listening socket whose accept queue is full and never drained, so the
//!   kernel drops every SYN: the connection attempt gets no answer at all (connect timeout);
//! - `auth failure`: `ansible_user` is a user the hosts do not know;
//! - `failing task`: `fail_task: true` makes the playbook's second task exit 1;
//!
//! then runs `rdeploy run` (the binary in `RDEPLOY_BIN`) with `--forks F` and samples
//! `/proc/PID/fd` and the controller's children every 10 ms. It prints: the wall time; the
//! peak RSS (`ru_maxrss` from `wait4`); the most descriptors open at once and how many were
//! open when the recap was printed (every connection closed); the most children of rdeploy
//! at once and at the recap; the processes the fleet's user still has on the hosts after the
//! run (host locks and sessions left behind); and the failed hosts per category, each of which
//! must be exactly the hosts made to fail that way (and every other host ok), else it exits 1.

#[allow(dead_code)]
#[path = "../tests/support/fleet.rs"]
mod fleet;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::net::{AddressFamily, SocketType, bind, listen, socket};
use serde_json::{Map, Value, json};

use fleet::Fleet;

const PLAYBOOK: &str = r#"- name: scale benchmark
  hosts: all
  gather_facts: false
  vars:
    # Hosts sharing an sshd share its /var/lib/rdeploy and /srv: one folder and file each.
    rdeploy_state_dir: "/var/lib/rdeploy/{{ inventory_hostname }}"
  tasks:
    - name: release file
      copy:
        content: "{{ inventory_hostname }} 1.0\n"
        dest: "/srv/scale-{{ inventory_hostname }}"
    - name: smoke test
      command: "{{ 'false' if fail_task | default(false) else 'true' }}"
      changed_when: false
"#;

/// How a host is made to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Refused,
    Blackholed,
    AuthFailure,
    FailingTask,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::Refused,
        Kind::Blackholed,
        Kind::AuthFailure,
        Kind::FailingTask,
    ];

    fn word(self) -> &'static str {
        match self {
            Kind::Refused => "refused",
            Kind::Blackholed => "blackholed",
            Kind::AuthFailure => "auth failure",
            Kind::FailingTask => "failing task",
        }
    }

    /// The category a recap row shows, `None` for a host that came out ok.
    fn of_recap(row: &Value) -> Option<Result<Kind, String>> {
        if row["unreachable"].as_u64() == Some(1) {
            return Some(match row["unreachable_reason"].as_str() {
                Some("unreachable") => Ok(Kind::Refused),
                Some("timed_out") => Ok(Kind::Blackholed),
                Some("auth_failed") => Ok(Kind::AuthFailure),
                other => Err(format!("unreachable ({other:?})")),
            });
        }
        (row["failed"].as_u64().unwrap_or(0) > 0).then_some(Ok(Kind::FailingTask))
    }
}

struct Options {
    hosts: usize,
    per_sshd: usize,
    forks: usize,
    connect_timeout: u64,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        hosts: 1000,
        per_sshd: 50,
        forks: 50,
        connect_timeout: 20,
    };
    let mut it = args.iter();
    let mut first = true;
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--per-sshd" => o.per_sshd = num("--per-sshd")?.max(1),
            "--forks" => o.forks = num("--forks")?.max(1),
            "--connect-timeout" => o.connect_timeout = num("--connect-timeout")? as u64,
            n if first => o.hosts = n.parse().map_err(|_| format!("not a host count: {n}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
        first = false;
    }
    Ok(o)
}

/// A port whose accept queue is full and never drained: every further SYN is dropped. The
/// returned values keep it so.
fn blackhole() -> (u16, rustix::fd::OwnedFd, Vec<TcpStream>) {
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket");
    bind(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).expect("bind");
    listen(&fd, 0).expect("listen");
    let port = std::net::SocketAddr::try_from(rustix::net::getsockname(&fd).expect("getsockname"))
        .map(|a| a.port())
        .expect("an inet address");
    let addr = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    // A backlog of 0 queues one connection: fill it, then check that a SYN gets no answer.
    let filler = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("fill");
    match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
        other => panic!("the blackhole port answered: {other:?}"),
    }
    (port, fd, vec![filler])
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Descriptors open in process `pid`.
fn fds(pid: u32) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Processes whose parent is `pid`.
fn children(pid: u32) -> usize {
    let Ok(dir) = fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let after = s.rsplit_once(')')?.1;
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .count()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "scale_bench: {e}\nusage: scale_bench [N] [--per-sshd K] [--forks F] [--connect-timeout S]"
            );
            return ExitCode::from(2);
        }
    };
    let Some(rdeploy) = std::env::var_os("RDEPLOY_BIN").map(PathBuf::from) else {
        eprintln!("scale_bench: set RDEPLOY_BIN to the rdeploy binary");
        return ExitCode::from(2);
    };
    let work = tempfile::Builder::new()
        .prefix("scale-bench-")
        .tempdir()
        .expect("temp dir");
    let w = work.path();
    eprintln!("starting {} hosts ({} per sshd)...", o.hosts, o.per_sshd);
    let t = Instant::now();
    let fleet = Fleet::builder()
        .hosts(o.hosts)
        .hosts_per_sshd(o.per_sshd)
        .start();
    eprintln!("fleet up in {:.1} s", t.elapsed().as_secs_f64());

    // 5% fail, spread over the fleet (every 20th host), the kinds in turn.
    let (hole_port, _hole, _fill) = blackhole();
    let failing = o.hosts * 5 / 100;
    let mut expected: BTreeMap<String, Kind> = BTreeMap::new();
    let known = format!("-o UserKnownHostsFile={}", fleet.known_hosts().display());
    let mut hosts = Map::new();
    for (i, h) in fleet.hosts().iter().enumerate() {
        let mut v = fleet.host_vars(h);
        v.insert("ansible_ssh_extra_args".into(), json!(known));
        if i % 20 == 10 && expected.len() < failing {
            let kind = Kind::ALL[expected.len() % 4];
            match kind {
                Kind::Refused => {
                    v.insert("ansible_port".into(), json!(closed_port()));
                }
                Kind::Blackholed => {
                    v.insert("ansible_host".into(), json!("127.0.0.1"));
                    v.insert("ansible_port".into(), json!(hole_port));
                }
                Kind::AuthFailure => {
                    v.insert("ansible_user".into(), json!("rdeploy-nosuchuser"));
                }
                Kind::FailingTask => {
                    v.insert("fail_task".into(), json!(true));
                }
            }
            expected.insert(h.name().to_string(), kind);
        }
        hosts.insert(h.name().to_string(), Value::Object(v));
    }
    fs::write(
        w.join("inventory.yaml"),
        serde_json::to_string(&json!({ "all": { "hosts": hosts } })).unwrap(),
    )
    .expect("write inventory");
    fs::write(w.join("scale.yaml"), PLAYBOOK).expect("write playbook");

    // Reaped by the wait4 loop below (for its rusage), not by `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(&rdeploy)
        .current_dir(w)
        .args([
            "run",
            "scale.yaml",
            "-i",
            "inventory.yaml",
            "--output",
            "json",
        ])
        .args(["--forks", &o.forks.to_string()])
        .args(["--connect-timeout", &format!("{}s", o.connect_timeout)])
        .env("NO_COLOR", "1")
        .env("HOME", w)
        .env("XDG_STATE_HOME", w.join("state"))
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            fs::File::create(w.join("stderr.log")).expect("log"),
        ))
        .spawn()
        .expect("start rdeploy");
    let pid = child.id();
    let start = Instant::now();
    // Read stdout on a thread; at the recap line (every connection closed, the process still
    // alive) take the "after" figures.
    let at_recap: Arc<Mutex<Option<(usize, usize)>>> = Arc::default();
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let reader = {
        let stdout = child.stdout.take().expect("stdout");
        let (at_recap, events) = (Arc::clone(&at_recap), Arc::clone(&events));
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(e) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if e["event"] == "recap"
                    && let Ok(mut r) = at_recap.lock()
                {
                    *r = Some((fds(pid).unwrap_or(0), children(pid)));
                }
                if let Ok(mut v) = events.lock() {
                    v.push(e);
                }
            }
        })
    };
    let (mut max_fds, mut max_children) = (0, 0);
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut samples = 0u64;
    loop {
        // SAFETY: pid is our unreaped child; status and usage are valid for writes.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid as libc::pid_t {
            break;
        }
        if r < 0 {
            eprintln!("wait4: {}", std::io::Error::last_os_error());
            return ExitCode::FAILURE;
        }
        if let Some(n) = fds(pid) {
            max_fds = max_fds.max(n);
        }
        if samples.is_multiple_of(10) {
            max_children = max_children.max(children(pid));
        }
        samples += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = start.elapsed();
    drop(child);
    let _ = reader.join();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    // Sessions (and host-lock shells) the fleet's user still has on the hosts, once each sshd.
    std::thread::sleep(Duration::from_millis(500));
    let mut seen = BTreeSet::new();
    let remote: usize = fleet
        .hosts()
        .iter()
        .filter(|h| seen.insert(h.sshd_pid()))
        .map(|h| h.user_processes().len())
        .sum();

    let events = events.lock().map(|v| v.clone()).unwrap_or_default();
    let recap = events
        .iter()
        .rev()
        .find(|e| e["event"] == "recap")
        .map(|e| e["hosts"].clone())
        .unwrap_or(Value::Null);
    let mut got: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut wrong: Vec<String> = Vec::new();
    for h in fleet.hosts() {
        let row = &recap[h.name()];
        if row.is_null() {
            wrong.push(format!("{}: not in the recap", h.name()));
            continue;
        }
        let want = expected.get(h.name()).copied();
        match (Kind::of_recap(row), want) {
            (None, None) => {}
            (Some(Ok(k)), Some(w)) if k == w => *got.entry(k).or_default() += 1,
            (seen, want) => wrong.push(format!(
                "{}: expected {}, got {}",
                h.name(),
                want.map_or("ok", Kind::word),
                match seen {
                    None => "ok".to_string(),
                    Some(Ok(k)) => k.word().to_string(),
                    Some(Err(e)) => e,
                }
            )),
        }
    }
    let after = at_recap.lock().ok().and_then(|r| *r);
    let bound = 4 * o.forks + 64;
    println!(
        "scale benchmark: {} hosts ({} per sshd), --forks {}, --connect-timeout {}s, rdeploy exit {code}",
        o.hosts, o.per_sshd, o.forks, o.connect_timeout
    );
    println!("  wall time               {:8.2} s", wall.as_secs_f64());
    println!(
        "  controller peak RSS     {:8.1} MB",
        usage.ru_maxrss as f64 / 1024.0
    );
    println!(
        "  open descriptors        max {max_fds} during the run (bound 4 x forks + 64 = {bound})"
    );
    match after {
        Some((f, c)) => {
            println!("                          {f} at the recap (every connection closed)");
            println!("  controller children     max {max_children} during, {c} at the recap");
        }
        None => println!("  (no recap line: no \"after\" figures)"),
    }
    println!("  fleet user's processes  {remote} on the hosts after the run");
    println!(
        "  failed hosts            {} of {} expected",
        got.values().sum::<usize>(),
        expected.len()
    );
    for k in Kind::ALL {
        let want = expected.values().filter(|v| **v == k).count();
        println!(
            "    {:<14} {:3} (expected {want})",
            k.word(),
            got.get(&k).copied().unwrap_or(0)
        );
    }
    let mut ok = wrong.is_empty() && max_fds <= bound && after.is_some_and(|(_, c)| c == 0);
    ok &= remote == 0;
    for w in wrong.iter().take(20) {
        println!("  WRONG: {w}");
    }
    if !ok {
        println!(
            "  FAILED: see above; rdeploy's stderr is in {}",
            w.display()
        );
        // Keep the folder for a look.
        let _ = work.keep();
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
