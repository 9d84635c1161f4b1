//! Blue-green releases end to end with a real load balancer: HAProxy (Debian's package, started
//! by this test with an admin socket on the `lb` host of a three-host SSH fleet) in front of
//! the demo app on the `blue` and `green` hosts, switched by `playbooks/blue-green.yaml`
//! through community.general.haproxy (rdeploy's own, over HAProxy's runtime API). A client
//! thread requests the front all along, through the release, `rdeploy switch-back` and a
//! release whose front check fails, and counts every request that did not get a 200: none may.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::fleet::{Fleet, free_port};
use support::{Finished, Sandbox};

const HAPROXY: &str = "/usr/sbin/haproxy";

/// HAProxy, started by the test and stopped by PID when dropped.
struct Balancer {
    child: Child,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One GET of `path` on 127.0.0.1:`port`: the status code and body, or why not.
fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: front\r\n\r\n").map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.to_string())?;
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// What the client thread saw.
#[derive(Default)]
struct Seen {
    ok: usize,
    failed: Vec<String>,
    /// The versions answered, each run of equal answers once, in order.
    versions: Vec<String>,
}

/// Requests the front every 10 ms until stopped (at most 10 minutes).
struct Client {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<JoinHandle<()>>,
}

impl Client {
    fn start(port: u16) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (s, n) = (Arc::clone(&stop), Arc::clone(&seen));
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            while !s.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(600) {
                let r = get(port, "/VERSION");
                let mut seen = n.lock().expect("client lock");
                match r {
                    Ok((200, v)) => {
                        seen.ok += 1;
                        if seen.versions.last() != Some(&v) {
                            seen.versions.push(v);
                        }
                    }
                    Ok((code, body)) => seen.failed.push(format!("{code}: {body}")),
                    Err(e) => seen.failed.push(e),
                }
                drop(seen);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Client {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("client thread");
        }
        std::mem::take(&mut *self.seen.lock().expect("client lock"))
    }
}

fn rdeploy(sb: &Sandbox, args: &[&str]) -> Finished {
    sb.finish(args)
}

/// The fleet (host 0 the load balancer, 1 blue, 2 green), HAProxy in front of the colours'
/// ports, and the inventory.
struct Setup {
    fleet: Fleet,
    sb: Sandbox,
    front: u16,
    ports: [u16; 2],
    _lb: Balancer,
}

fn setup() -> Setup {
    let fleet = Fleet::start(3);
    let sb = Sandbox::new();
    let (front, ports) = (free_port(), [free_port(), free_port()]);
    let lb = fleet.host(0);
    let dir = lb.path("/srv/haproxy");
    std::fs::create_dir_all(&dir).expect("haproxy folder");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (blue, green) = (fleet.host(1).name(), fleet.host(2).name());
    // Blue is live; green is configured out of service. Each server is health-checked every
    // 200 ms; a request to a server that refuses is sent to the other.
    let cfg = format!(
        "global\n  stats socket {sock} mode 666 level admin\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n  \
         retries 3\n  option redispatch 1\n\
         frontend fe\n  bind 127.0.0.1:{front}\n  default_backend app\n\
         backend app\n  balance roundrobin\n  \
         server {blue} 127.0.0.1:{p1} check inter 200ms rise 1 fall 2\n  \
         server {green} 127.0.0.1:{p2} check inter 200ms rise 1 fall 2 disabled\n",
        sock = dir.join("admin.sock").display(),
        p1 = ports[0],
        p2 = ports[1],
    );
    let cfg_path = dir.join("haproxy.cfg");
    std::fs::write(&cfg_path, cfg).expect("write haproxy.cfg");
    let check = Command::new(HAPROXY)
        .arg("-c")
        .arg("-f")
        .arg(&cfg_path)
        .output()
        .expect("run haproxy -c");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let child = Command::new(HAPROXY)
        .arg("-db")
        .arg("-f")
        .arg(&cfg_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    let balancer = Balancer { child };
    let t0 = Instant::now();
    while !dir.join("admin.sock").exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut hosts = serde_json::Map::new();
    let mut vars = |i: usize, extra: Value| {
        let h = fleet.host(i);
        let mut v = support::oracle::trusted_host_vars(&fleet, h);
        if let Value::Object(e) = extra {
            v.extend(e);
        }
        hosts.insert(h.name().to_string(), Value::Object(v));
    };
    vars(
        0,
        json!({"haproxy_socket": "/srv/haproxy/admin.sock", "front_port": front}),
    );
    vars(1, json!({"app_port": ports[0]}));
    vars(2, json!({"app_port": ports[1]}));
    let group = |i: usize| json!({"hosts": {fleet.host(i).name(): null}});
    let inv = json!({"all": {
        "hosts": hosts,
        "children": {"lb": group(0), "blue": group(1), "green": group(2)},
    }});
    sb.write(
        "inv.yaml",
        serde_saphyr::to_string(&inv).expect("inventory"),
    );
    Setup {
        fleet,
        sb,
        front,
        ports,
        _lb: balancer,
    }
}

impl Setup {
    fn release(&self, version: &str, idle: &str, live: &str, more: Value) -> Finished {
        let mut vars = json!({"app_version": version, "idle": idle, "live": live});
        if let (Some(m), Value::Object(e)) = (vars.as_object_mut(), more) {
            m.extend(e);
        }
        let pb = support::repo().join("playbooks/blue-green.yaml");
        rdeploy(
            &self.sb,
            &[
                "run",
                &pb.display().to_string(),
                "-i",
                "inv.yaml",
                "--output",
                "json",
                "-e",
                &vars.to_string(),
            ],
        )
    }

    /// What the front answers for /VERSION, once HAProxy has settled on one answer.
    fn front_version(&self) -> String {
        get(self.front, "/VERSION")
            .map(|(_, v)| v)
            .unwrap_or_else(|e| e)
    }

    fn colour_release(&self, i: usize) -> Option<String> {
        std::fs::read_link(self.fleet.host(i).path("/srv/app/current"))
            .ok()
            .map(|p| p.display().to_string())
    }
}

#[test]
fn a_release_switches_the_front_and_switch_back_restores_it_without_a_failed_request() {
    assert!(
        std::path::Path::new(HAPROXY).exists(),
        "HAProxy is needed: scripts/test.sh --install-only installs it"
    );
    let s = setup();
    // Version 1 on blue, which the front already serves; green stays out of service.
    let first = s.release("1.0", "blue", "green", json!({}));
    assert_eq!(first.code, 0, "{}", first.text);
    assert_eq!(s.front_version(), "1.0");
    let client = Client::start(s.front);

    // Version 2 goes to green, is checked there, and the front is switched to it.
    let second = s.release("2.0", "green", "blue", json!({}));
    assert_eq!(second.code, 0, "{}", second.text);
    assert_eq!(s.front_version(), "2.0");
    assert_eq!(
        get(s.ports[0], "/VERSION"),
        Ok((200, "1.0".into())),
        "blue still runs 1.0"
    );
    let run = second.run_id();

    // Switch back: the front serves blue again at once, and green keeps its release.
    let back = rdeploy(&s.sb, &["switch-back", &run, "--output", "json"]);
    assert_eq!(back.code, 0, "{}", back.text);
    assert_eq!(s.front_version(), "1.0");
    assert_eq!(
        s.colour_release(2).as_deref(),
        Some("/srv/app/releases/2.0"),
        "switch-back leaves the new colour's release in place"
    );
    let shown = rdeploy(&s.sb, &["show", &run]);
    assert!(shown.text.contains("switch-back"), "{}", shown.text);

    // A second switch-back changes nothing: each server is already as it was.
    let again = rdeploy(&s.sb, &["switch-back", &run, "--output", "json"]);
    assert_eq!(again.code, 0, "{}", again.text);
    assert_eq!(s.front_version(), "1.0");

    let seen = client.finish();
    eprintln!(
        "front: {} requests answered 200, {} failed, versions {:?}",
        seen.ok,
        seen.failed.len(),
        seen.versions
    );
    assert!(
        seen.failed.is_empty(),
        "{} of {} requests failed: {:?}",
        seen.failed.len(),
        seen.ok + seen.failed.len(),
        seen.failed
    );
    assert_eq!(
        seen.versions,
        ["1.0", "2.0", "1.0"],
        "the front served 1.0, then 2.0 after the switch, then 1.0 after the switch back"
    );
    assert!(seen.ok >= 10, "only {} requests were made", seen.ok);

    // rollback of the run goes further: green's release is gone; the front stays on blue.
    let rb = rdeploy(&s.sb, &["rollback", &run, "--output", "json"]);
    assert_eq!(rb.code, 0, "{}", rb.text);
    assert!(!s.fleet.host(2).path("/srv/app/releases/2.0").exists());
    assert_eq!(s.front_version(), "1.0");
}

#[test]
fn a_switch_whose_front_check_fails_is_switched_back_by_the_run_itself() {
    let s = setup();
    let first = s.release("1.0", "blue", "green", json!({}));
    assert_eq!(first.code, 0, "{}", first.text);
    let client = Client::start(s.front);
    // Green gets 2.0 and passes its own gate (its /VERSION), but its /health says `down`: the
    // front check fails once the front is switched, the run rolls the switch back (exit 3)
    // and blue serves again.
    let green = s.fleet.host(2).name().to_string();
    let bad = s.release("2.0", "green", "blue", json!({"app_broken_on": [green]}));
    assert_eq!(bad.code, 3, "{}", bad.text);
    assert_eq!(s.front_version(), "1.0");
    assert_eq!(
        s.colour_release(2).as_deref(),
        Some("/srv/app/releases/2.0"),
        "only the failed batch (the switch) is rolled back"
    );
    let seen = client.finish();
    assert!(
        seen.failed.is_empty(),
        "{} requests failed: {:?}",
        seen.failed.len(),
        seen.failed
    );
    assert_eq!(seen.versions, ["1.0", "2.0", "1.0"]);
}
