//! Descriptors at scale, end to end on the test fleet: the connections rdeploy holds are
//! bounded by `--forks`, not by the fleet (a batch larger than `--forks` closes each host's
//! connection when its part of a step is done, and a rollback reopens it), and a controller
//! that runs out of open files says so (exit 71) instead of blaming hosts (a host-key refusal
//! or an authentication failure).
//!
//! Timing is not asserted here: the 1,000-host figures are `bench/scale.sh`'s.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use support::Sandbox;
use support::fleet::Fleet;

/// An inventory of every fleet host, each with its own state folder (hosts of one sshd share
/// its files) and `extra` variables from `per_host(name)`.
fn inventory(fleet: &Fleet, per_host: impl Fn(usize) -> Map<String, Value>) -> String {
    let known = format!("-o UserKnownHostsFile={}", fleet.known_hosts().display());
    let hosts: Map<String, Value> = fleet
        .hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut v = fleet.host_vars(h);
            v.insert("ansible_ssh_extra_args".into(), json!(known));
            v.insert(
                "rdeploy_state_dir".into(),
                json!(format!("/var/lib/rdeploy/{}", h.name())),
            );
            v.extend(per_host(i));
            (h.name().to_string(), Value::Object(v))
        })
        .collect();
    serde_json::to_string(&json!({ "all": { "hosts": hosts } })).unwrap()
}

/// `prlimit --nofile=SOFT:HARD -- rdeploy ARGS` with the sandbox's environment.
fn with_nofile(sb: &Sandbox, (soft, hard): (u64, u64), args: &[&str]) -> Command {
    let inner = sb.rdeploy_process(args);
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nofile={soft}:{hard}"))
        .arg("--")
        .arg(inner.get_program())
        .args(inner.get_args())
        .env_remove("SSH_AUTH_SOCK");
    if let Some(dir) = inner.get_current_dir() {
        cmd.current_dir(dir);
    }
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd
}

/// The TCP and Unix sockets process `pid` has open, and all its descriptors.
fn open_fds(pid: u32) -> Option<(usize, usize)> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let mut all = 0;
    let mut sockets = 0;
    for e in dir.flatten() {
        all += 1;
        if std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:")) {
            sockets += 1;
        }
    }
    Some((sockets, all))
}

#[test]
fn running_out_of_open_files_is_a_controller_error_never_a_host_key_refusal() {
    // 40 hosts on one sshd, all in flight at once, under a limit of 32 descriptors (soft and
    // hard): some connections cannot get a socket, or cannot read known_hosts or the key.
    let fleet = Fleet::builder().hosts(40).hosts_per_sshd(40).start();
    let sb = Sandbox::new();
    sb.write("inv.yaml", inventory(&fleet, |_| Map::new()));
    sb.write(
        "pb.yaml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: sleep 1\n",
    );
    // Soft and hard limit alike: rdeploy's raise of the soft limit cannot lift it.
    let out = with_nofile(
        &sb,
        (32, 32),
        &[
            "run", "pb.yaml", "-i", "inv.yaml", "--forks", "40", "--output", "json",
        ],
    )
    .output()
    .expect("run rdeploy under prlimit");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let explain = format!("exit {:?}\n{stdout}\n{stderr}", out.status.code());
    assert!(
        !stdout.contains("host key refused") && !stdout.contains("host_key_refused"),
        "a host was blamed for its identity:\n{explain}"
    );
    assert!(
        !stdout.contains("authentication failed") && !stdout.contains("auth_failed"),
        "a host was blamed for credentials:\n{explain}"
    );
    assert!(
        stdout.contains("controller ran out of open files (limit 32)"),
        "the message names open files and the limit:\n{explain}"
    );
    let recap = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|e| e["event"] == "recap")
        .unwrap_or(Value::Null);
    let exhausted = fleet
        .hosts()
        .iter()
        .filter(|h| recap["hosts"][h.name()]["unreachable_reason"] == "controller_exhausted")
        .count();
    assert!(
        exhausted > 0,
        "no host recorded as controller_exhausted:\n{explain}"
    );
    assert_eq!(out.status.code(), Some(71), "{explain}");
}

/// A 16-host play in batches of 8 with `--forks 2`; the second batch fails its health gate
/// (host 12 deployed a bad file) and is rolled back. Returns the most TCP/Unix sockets and descriptors rdeploy
/// held at once, the run's exit code and its output.
fn sixteen_hosts_forks_two(fleet: &Fleet, sb: &Sandbox) -> (usize, usize, Option<i32>, String) {
    sb.write(
        "inv.yaml",
        inventory(fleet, |i| {
            let mut m = Map::new();
            m.insert("bad".into(), json!(i == 12));
            m
        }),
    );
    sb.write(
        "pb.yaml",
        r#"- hosts: all
  gather_facts: no
  serial: 8
  tasks:
    - copy:
        content: "{{ 'bad' if bad else 'good' }}\n"
        dest: "/srv/scale-{{ inventory_hostname }}"
    - command: sleep 0.2
      changed_when: false
  health:
    - command: "sh -c '! grep -qx bad /srv/scale-{{ inventory_hostname }}'"
  probe: { retries: 0, interval: 100ms, timeout: 5s }
"#,
    );
    let mut child = sb
        .rdeploy_process(&[
            "run", "pb.yaml", "-i", "inv.yaml", "--forks", "2", "--output", "json",
        ])
        .env_remove("SSH_AUTH_SOCK")
        .stdout(std::fs::File::create(sb.path().join("out.log")).expect("log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start rdeploy");
    let (mut sockets, mut fds) = (0, 0);
    let until = Instant::now() + Duration::from_secs(180);
    let code = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st.code();
        }
        if let Some((s, a)) = open_fds(child.id()) {
            sockets = sockets.max(s);
            fds = fds.max(a);
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rdeploy did not finish in 180 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = std::fs::read_to_string(sb.path().join("out.log")).unwrap_or_default();
    (sockets, fds, code, out)
}

#[test]
fn descriptors_stay_bounded_by_forks_not_by_the_fleet_and_a_rollback_reconnects() {
    let fleet = Fleet::builder().hosts(16).hosts_per_sshd(16).start();
    let sb = Sandbox::new();
    let (sockets, fds, code, out) = sixteen_hosts_forks_two(&fleet, &sb);
    let file = |i: usize| {
        let name = fleet.host(i).name().to_string();
        fleet.host(i).path(&format!("/srv/scale-{name}"))
    };
    // Batch 1 deployed and kept; batch 2 failed its gate and was rolled back: the files it
    // created are gone, restored over connections closed after its tasks and reopened.
    assert_eq!(code, Some(3), "the second batch is rolled back:\n{out}");
    for i in 0..8 {
        assert!(file(i).exists(), "{} deployed", file(i).display());
    }
    for i in 8..16 {
        assert!(
            !Path::new(&file(i)).exists(),
            "{} rolled back",
            file(i).display()
        );
    }
    // Two hosts in flight: a socket each, one more while a closed one winds down, and the
    // logging/agent sockets (none here). 16 before the fix.
    assert!(
        sockets <= 6,
        "{sockets} sockets open at once with --forks 2"
    );
    assert!(
        fds <= 4 * 2 + 64,
        "{fds} descriptors open at once with --forks 2"
    );
}

#[test]
fn a_low_soft_open_files_limit_is_raised_to_the_hard_one_at_start() {
    // The same 40 hosts at once under a soft limit of 32 but a hard one of 4096: rdeploy
    // raises its soft limit first, so every host is reached.
    let fleet = Fleet::builder().hosts(40).hosts_per_sshd(40).start();
    let sb = Sandbox::new();
    sb.write("inv.yaml", inventory(&fleet, |_| Map::new()));
    sb.write(
        "pb.yaml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: sleep 1\n",
    );
    let out = with_nofile(
        &sb,
        (32, 4096),
        &["run", "pb.yaml", "-i", "inv.yaml", "--forks", "40"],
    )
    .output()
    .expect("run rdeploy under prlimit");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ok=1") && !stdout.contains("unreachable=1"),
        "{stdout}"
    );
}
