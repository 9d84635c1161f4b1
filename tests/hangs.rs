//! Steps that would hang a run, end to end against the test fleet's real sshd hosts: a
//! transfer to a host whose receiving process stopped reading, and a command that hangs before
//! its process group is known, both end at the task's timeout (issue 13, item 4); a step that
//! outlives `--stop-grace` after SIGTERM is killed (item 5). Nothing is left running on the
//! host.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Sandbox;
use support::fleet::{Fleet, Host, Proc};

/// One finished `rdeploy run --output json`: exit code, events, the output for messages.
struct Run {
    code: i32,
    events: Vec<Value>,
    text: String,
}

impl Run {
    /// The last task result of `host`.
    fn last(&self, host: &str) -> Value {
        self.events
            .iter()
            .rfind(|e| e["event"] == "result" && e["result"]["host"] == host)
            .map(|e| e["result"].clone())
            .unwrap_or_else(|| panic!("no result for {host}: {}", self.text))
    }
}

fn sandbox(fleet: &Fleet, playbook: &str) -> Sandbox {
    let sb = Sandbox::new();
    let known = format!("-o UserKnownHostsFile={}", fleet.known_hosts().display());
    let mut hosts = serde_json::Map::new();
    for h in fleet.hosts() {
        let mut v = fleet.host_vars(h);
        v.insert("ansible_ssh_extra_args".into(), json!(known));
        hosts.insert(h.name().to_string(), Value::Object(v));
    }
    let inv = json!({ "all": { "hosts": hosts } });
    sb.write("inv.yaml", serde_saphyr::to_string(&inv).unwrap());
    sb.write("pb.yaml", playbook);
    sb
}

/// Starts `rdeploy run pb.yaml` (bounded at 120 s, so a regression fails instead of hanging).
fn spawn(sb: &Sandbox, args: &[&str]) -> std::thread::JoinHandle<Run> {
    spawn_on(sb, args, None)
}

/// [`spawn`] with the file plane chosen (`Some("shell")`: shell programs only).
fn spawn_on(sb: &Sandbox, args: &[&str], plane: Option<&str>) -> std::thread::JoinHandle<Run> {
    let mut cmd = sb.rdeploy(&["run", "pb.yaml", "-i", "inv.yaml", "--output", "json"]);
    match plane {
        Some(p) => cmd.env("RDEPLOY_FILE_PLANE", p),
        None => cmd.env_remove("RDEPLOY_FILE_PLANE"),
    };
    cmd.args(args)
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(120));
    std::thread::spawn(move || {
        let out = cmd.output().expect("run rdeploy");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Run {
            code: out.status.code().unwrap_or(-1),
            events: stdout
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
            text: format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
        }
    })
}

/// Waits for a process of the test user on `h` whose command line starts with `prefix`.
fn wait_for(h: &Host, prefix: &str) -> Proc {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(p) = h
            .user_processes()
            .into_iter()
            .find(|p| p.cmdline.starts_with(prefix))
        {
            return p;
        }
        assert!(Instant::now() < until, "{prefix} never ran on {}", h.name());
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What the test user still runs on `h` besides sshd's own session processes.
fn left_on(h: &Host) -> Vec<String> {
    h.user_processes()
        .into_iter()
        .map(|p| p.cmdline)
        .filter(|c| !c.starts_with("sshd"))
        .collect()
}

/// The host's processes go within a few seconds of the connection closing.
fn assert_nothing_left(h: &Host) {
    let until = Instant::now() + Duration::from_secs(5);
    while !left_on(h).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(left_on(h).is_empty(), "left running: {:?}", left_on(h));
}

/// It held a run for 11 minutes: `put` had no time limit, and a write blocked on the SSH
/// channel's window waited for ever. Now the task's `timeout:` bounds the transfer, the host
/// is reported timed out, and the stopped receiver is killed with its process group. The
/// receiver is the shell plane's (`dd`): the plane is forced, since over SFTP the receiver
/// is the connection's own sftp session.
#[test]
fn a_transfer_to_a_host_that_stops_reading_ends_at_the_task_timeout() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: { src: big.bin, dest: /srv/big.bin }\n      timeout: 3\n",
    );
    let big: Vec<u8> = (0..8u32 << 20).map(|i| (i ^ (i >> 11)) as u8).collect();
    sb.write("big.bin", &big);
    let child = spawn_on(&sb, &[], Some("shell"));
    // The transfer's receiving process (`dd` in the put script) stops reading at once.
    let dd = wait_for(h, "dd bs=65536");
    let pid = rustix::process::Pid::from_raw(dd.pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    let stopped = Instant::now();
    let r = child.join().unwrap();
    let took = stopped.elapsed();
    eprintln!(
        "the hung transfer ended {:.1}s after its receiver stopped",
        took.as_secs_f64()
    );
    assert!(!dd.is_running(), "the stopped receiver was killed");
    assert_eq!(r.code, 2, "{}", r.text);
    let last = r.last(h.name());
    assert_eq!(last["status"], "failed", "{last}");
    assert!(
        last["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out after 3s"),
        "{last}"
    );
    // 3 s of timeout, 2 s for the stopped group to take SIGTERM before SIGKILL, round trips.
    assert!(took < Duration::from_secs(12), "took {took:?}");
    assert!(
        !h.path("/srv/big.bin").exists(),
        "nothing half written in place"
    );
    assert_nothing_left(h);
}

/// A command that hangs before its shell printed its process group (here `~/.ssh/rc`, which
/// sshd runs first) is still killed at the timeout: through its channel's session.
#[test]
fn a_command_hung_before_its_process_group_is_known_is_killed_at_the_timeout() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let home = support_home();
    let ssh_dir = h.path(&format!("{home}/.ssh"));
    std::fs::create_dir_all(&ssh_dir).unwrap();
    // The first session is the run's host lock; the command's session is the one that hangs
    // before it starts.
    std::fs::write(
        ssh_dir.join("rc"),
        "if [ -e \"$HOME/.rc-once\" ]; then sleep 303; else : > \"$HOME/.rc-once\"; fi\n",
    )
    .unwrap();
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: \"true\"\n",
    );
    let t = Instant::now();
    let child = spawn(&sb, &["--task-timeout", "2s"]);
    let sleeper = wait_for(h, "sleep 303");
    let r = child.join().unwrap();
    let took = t.elapsed();
    eprintln!("the hung command ended after {:.1}s", took.as_secs_f64());
    assert_eq!(r.code, 2, "{}", r.text);
    assert!(
        r.last(h.name())["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out after 2s"),
        "{}",
        r.text
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    // The kill goes over the connection as rdeploy closes it: give sshd a moment.
    let until = Instant::now() + Duration::from_secs(3);
    while sleeper.is_running() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!sleeper.is_running(), "what the session started was killed");
    assert_nothing_left(h);
}

/// The test user's home directory (as the hosts see it).
fn support_home() -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with(&format!("{}:", support::fleet::USER)))
        .expect("the fleet's user");
    line.split(':').nth(5).unwrap().to_string()
}

/// Issue 13 item 5 over SSH: after SIGTERM a 40 s step on a real host is given
/// `--stop-grace 2s`, then its remote process group is killed, the host's step is recorded
/// as interrupted, and rdeploy exits 143 within the grace + 5 s.
#[test]
fn sigterm_kills_a_remote_step_after_the_stop_grace() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: sleep 40\n    - command: \"true\"\n",
    );
    let child = sb
        .rdeploy_process(&[
            "run",
            "pb.yaml",
            "-i",
            "inv.yaml",
            "--output",
            "json",
            "--stop-grace",
            "2s",
        ])
        .env_remove("SSH_AUTH_SOCK")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start rdeploy");
    let sleeper = wait_for(h, "sleep 40");
    let t = Instant::now();
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let took = t.elapsed();
    eprintln!("SIGTERM to exit: {:.1}s", took.as_secs_f64());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(143), "{stdout}");
    assert!(
        took >= Duration::from_secs(2),
        "the grace was given: {took:?}"
    );
    assert!(took < Duration::from_secs(7), "grace + 5 s: {took:?}");
    assert!(!sleeper.is_running(), "the remote step was killed");
    let end: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "run_end")
        .unwrap_or_else(|| panic!("no run_end: {stdout}"));
    let journal = std::fs::read_to_string(end["journal"].as_str().unwrap()).unwrap();
    assert!(
        journal.contains(&format!(
            "\"host\":\"{}\",\"task\":\"command\",\"status\":\"interrupted\"",
            h.name()
        )),
        "{journal}"
    );
    assert!(journal.contains("\"outcome\":\"interrupted\""), "{journal}");
    assert_nothing_left(h);
}
