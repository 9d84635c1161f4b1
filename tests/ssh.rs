//! The SSH transport end to end, against the test fleet's real sshd hosts: a multi-host deploy
//! and its idempotent second run; host identity (unknown refused under strict, learned under
//! accept-new, changed key and other key type refused, exit code 6); authentication (keys,
//! encrypted key with a passphrase file, password, a failure naming the methods tried); hosts
//! that are unreachable, killed mid-run or frozen next to healthy ones; a hanging command
//! killed with its whole process group; ProxyJump through the bastion; `--ssh-config`; become
//! via sudo.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use support::Sandbox;
use support::fleet::{Fleet, KeyType, PASSPHRASE, PASSWORD, USER, enable_sudo};

/// One finished `rdeploy run --output json`.
struct Run {
    code: i32,
    events: Vec<Value>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The recap row of `host`.
    fn recap(&self, host: &str) -> Value {
        self.events
            .iter()
            .rev()
            .find(|e| e["event"] == "recap")
            .map(|e| e["hosts"][host].clone())
            .unwrap_or(Value::Null)
    }

    /// Every task result of `host`, in order.
    fn results(&self, host: &str) -> Vec<Value> {
        self.events
            .iter()
            .filter(|e| e["event"] == "result" && e["result"]["host"] == host)
            .map(|e| e["result"].clone())
            .collect()
    }

    /// The last result of `host`.
    fn last(&self, host: &str) -> Value {
        self.results(host).pop().unwrap_or(Value::Null)
    }

    fn explain(&self) -> String {
        format!("exit {}\n{}\n{}", self.code, self.stdout, self.stderr)
    }
}

/// `rdeploy run PLAYBOOK -i inv.yaml --output json ARGS` in the sandbox (no ssh-agent).
fn run(sb: &Sandbox, playbook: &str, args: &[&str]) -> Run {
    let out = sb
        .rdeploy(&["run", playbook, "-i", "inv.yaml", "--output", "json"])
        .args(args)
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run rdeploy");
    Run::from(out)
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Run {
            code: out.status.code().unwrap_or(-1),
            events: stdout
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// An inventory with `hosts` (name → connection variables) in group `group` and `vars` for all.
fn inventory(group: &str, hosts: Vec<(String, Map<String, Value>)>, vars: Value) -> String {
    let hosts: Map<String, Value> = hosts
        .into_iter()
        .map(|(h, v)| (h, Value::Object(v)))
        .collect();
    let mut doc = json!({ group: { "hosts": hosts } });
    if !vars.is_null() {
        doc["all"] = json!({ "vars": vars });
    }
    serde_saphyr::to_string(&doc).expect("inventory YAML")
}

/// Every fleet host with its connection variables, plus `extra` on each.
fn fleet_hosts(fleet: &Fleet, extra: &Value) -> Vec<(String, Map<String, Value>)> {
    fleet
        .hosts()
        .iter()
        .map(|h| {
            let mut v = fleet.host_vars(h);
            if let Some(m) = extra.as_object() {
                v.extend(m.clone());
            }
            (h.name().to_string(), v)
        })
        .collect()
}

/// Known hosts for the fleet: the file rdeploy uses, as an `-o` argument.
fn known_hosts_arg(path: &Path) -> Value {
    json!(format!("-o UserKnownHostsFile={}", path.display()))
}

/// A sandbox with [`WRITE_FILE`] and every fleet host using the sandbox's own known_hosts
/// file, which holds `known` (no file when empty). Returns the file's path too.
fn sandbox_known_hosts(fleet: &Fleet, known: &str) -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new();
    let kh = sb.path().join("known_hosts");
    if !known.is_empty() {
        std::fs::write(&kh, known).unwrap();
    }
    let extra = json!({ "ansible_ssh_extra_args": known_hosts_arg(&kh) });
    sb.write(
        "inv.yaml",
        inventory("all", fleet_hosts(fleet, &extra), Value::Null),
    );
    sb.write("pb.yaml", WRITE_FILE);
    (sb, kh)
}

/// A sandbox whose inventory lists every fleet host (with the fleet's known_hosts) in `all`.
fn sandbox(fleet: &Fleet, playbook: &str) -> Sandbox {
    sandbox_with_options(fleet, "", playbook)
}

/// [`sandbox`], with `options` (`-o Key=Value ...`) after the known_hosts option in every
/// host's `ansible_ssh_extra_args`.
fn sandbox_with_options(fleet: &Fleet, options: &str, playbook: &str) -> Sandbox {
    let sb = Sandbox::new();
    let known = known_hosts_arg(fleet.known_hosts());
    let args = format!("{} {options}", known.as_str().unwrap_or_default());
    let extra = json!({ "ansible_ssh_extra_args": args.trim_end() });
    sb.write(
        "inv.yaml",
        inventory("all", fleet_hosts(fleet, &extra), Value::Null),
    );
    sb.write("pb.yaml", playbook);
    sb
}

fn keygen(kind: &str, path: &Path) {
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen")
        .success();
    assert!(ok, "ssh-keygen failed");
}

const WRITE_FILE: &str = "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy:\n        content: \"{{ inventory_hostname }}\\n\"\n        dest: /srv/who\n        mode: \"0640\"\n";

// ------------------------------------------------------------------ deploys

#[test]
fn site_yaml_deploys_on_three_hosts_over_ssh_and_a_second_run_changes_nothing() {
    let fleet = Fleet::start(3);
    let sb = Sandbox::new();
    let extra = json!({ "ansible_ssh_extra_args": known_hosts_arg(fleet.known_hosts()) });
    sb.write(
        "inv.yaml",
        inventory("local", fleet_hosts(&fleet, &extra), Value::Null),
    );
    let site = support::repo().join("playbooks/site.yaml");
    let site = site.to_str().unwrap();
    let first = run(&sb, site, &["-e", "app_root=/srv/app"]);
    assert_eq!(first.code, 0, "{}", first.explain());
    for h in fleet.hosts() {
        let r = first.recap(h.name());
        assert!(r["changed"].as_u64().unwrap_or(0) > 0, "{r}");
        // `current` points at the release by its path on the host.
        let current = std::fs::read_link(h.path("/srv/app/current")).unwrap();
        assert_eq!(current, Path::new("/srv/app/releases/1.0.0"));
        let release = h.path("/srv/app/releases/1.0.0");
        assert_eq!(
            std::fs::read_to_string(release.join("VERSION")).unwrap(),
            "1.0.0\n"
        );
        assert!(release.join("STARTED").exists(), "the handler ran");
    }
    let second = run(&sb, site, &["-e", "app_root=/srv/app"]);
    assert_eq!(second.code, 0, "{}", second.explain());
    for h in fleet.hosts() {
        assert_eq!(second.recap(h.name())["changed"], 0, "{}", second.explain());
    }
}

/// Ten steps like the benchmark's: directory, file, template, stat, line, link, file, command,
/// mode, command.
const RELEASE: &str = r#"- hosts: all
  gather_facts: no
  vars:
    rel: /srv/rel/{{ v }}
  tasks:
    - file: { path: "{{ rel }}", state: directory }
    - copy: { content: "payload {{ v }}\n", dest: "{{ rel }}/payload" }
    - template: { src: app.conf.j2, dest: "{{ rel }}/app.conf" }
    - stat: { path: "{{ rel }}/payload", get_checksum: true }
      register: payload
    - lineinfile: { path: /srv/rel/env, regexp: "^mode=", line: mode=production, create: true }
    - file: { src: "{{ rel }}", dest: /srv/rel/current, state: link }
    - copy: { content: "{{ v }}\n", dest: "{{ rel }}/VERSION" }
    - command: cat /srv/rel/current/VERSION
      register: version
      changed_when: false
      failed_when: version.stdout != v
    - file: { path: "{{ rel }}/payload", mode: "0600" }
    - command: test -f /srv/rel/current/VERSION
      changed_when: false
"#;

/// Commands each host was sent, summed over the run.
fn commands_per_host(r: &Run, host: &str) -> u64 {
    r.results(host)
        .iter()
        .map(|x| x["commands"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn checks_read_ahead_ride_in_round_trips_the_host_makes_anyway() {
    let fleet = Fleet::start(2);
    let sb = sandbox(&fleet, RELEASE);
    sb.write("app.conf.j2", "version={{ v }}\n");
    let first = run(&sb, "pb.yaml", &["-e", "v=1"]);
    assert_eq!(first.code, 0, "{}", first.explain());
    let second = run(&sb, "pb.yaml", &["-e", "v=1"]);
    assert_eq!(second.code, 0, "{}", second.explain());
    let off = run(
        &sb,
        "pb.yaml",
        &["-e", "v=1", "-e", "rdeploy_read_ahead=false"],
    );
    assert_eq!(off.code, 0, "{}", off.explain());
    let upgrade = run(&sb, "pb.yaml", &["-e", "v=2"]);
    assert_eq!(upgrade.code, 0, "{}", upgrade.explain());
    for h in fleet.hosts() {
        let statuses = |r: &Run| -> Vec<String> {
            r.results(h.name())
                .iter()
                .map(|x| x["status"].as_str().unwrap_or("?").to_string())
                .collect()
        };
        let all = |s: &str, n: usize| vec![s.to_string(); n];
        assert_eq!(statuses(&second), all("ok", 10), "{}", second.explain());
        assert_eq!(statuses(&off), all("ok", 10), "{}", off.explain());
        // One round trip for the seven checks, one per command: the host is asked 3 times
        // instead of once per task, and every change is still seen.
        assert_eq!(
            commands_per_host(&second, h.name()),
            3,
            "{}",
            second.explain()
        );
        // Without read-ahead each check is its own command, but the file plane (SFTP)
        // answers the `file`, `copy`, `template` and `lineinfile` checks without a program:
        // what is left is the `stat` module's check and the two commands. With the shell
        // plane forced (scripts/test.sh runs this file once so), all ten.
        let forced = std::env::var("RDEPLOY_FILE_PLANE").is_ok_and(|v| v == "shell");
        assert_eq!(
            commands_per_host(&off, h.name()),
            if forced { 10 } else { 3 },
            "{}",
            off.explain()
        );
        // The first run: the checks of the next task and the verification of each change ride
        // with the change (plus the state folder set up once, and the first batch of checks;
        // and, with no facts gathered and no `rdeploy_state_dir`, one command asking the login
        // user's uid and home for the default state folder).
        let first_cmds = commands_per_host(&first, h.name());
        assert!(
            first_cmds <= 13,
            "{first_cmds} commands\n{}",
            first.explain()
        );
        let changed: Vec<String> = statuses(&upgrade);
        assert_eq!(
            changed,
            [
                "changed", "changed", "changed", "ok", "ok", "changed", "changed", "ok", "changed",
                "ok"
            ],
            "{}",
            upgrade.explain()
        );
        assert_eq!(
            std::fs::read_link(h.path("/srv/rel/current")).unwrap(),
            Path::new("/srv/rel/2")
        );
        assert_eq!(
            std::fs::read_to_string(h.path("/srv/rel/2/VERSION")).unwrap(),
            "2\n"
        );
        assert_eq!(
            std::fs::read_to_string(h.path("/srv/rel/2/app.conf")).unwrap(),
            "version=2\n"
        );
    }
}

#[test]
fn a_controller_archive_is_streamed_to_each_host_and_unpacked() {
    let fleet = Fleet::start(2);
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - file: { path: /srv/u, state: directory }\n    - unarchive: { src: app.tar.gz, dest: /srv/u }\n",
    );
    std::fs::create_dir_all(sb.path().join("src/app")).unwrap();
    std::fs::write(sb.path().join("src/app/README"), "hello\n").unwrap();
    let tar = std::process::Command::new("tar")
        .args(["czf", "app.tar.gz", "-C", "src", "app"])
        .current_dir(sb.path())
        .status()
        .unwrap();
    assert!(tar.success());
    let first = run(&sb, "pb.yaml", &[]);
    assert_eq!(first.code, 0, "{}", first.explain());
    let second = run(&sb, "pb.yaml", &[]);
    assert_eq!(second.code, 0, "{}", second.explain());
    for h in fleet.hosts() {
        assert_eq!(
            std::fs::read_to_string(h.path("/srv/u/app/README")).unwrap(),
            "hello\n"
        );
        assert_eq!(
            first.last(h.name())["status"],
            "changed",
            "{}",
            first.explain()
        );
        assert_eq!(
            second.last(h.name())["status"],
            "ok",
            "{}",
            second.explain()
        );
    }
}

/// [`run`], also returning rdeploy's own peak RSS in KiB (from `wait4`: that process alone).
fn run_measured(sb: &Sandbox, playbook: &str) -> (Run, i64) {
    use std::io::Read;
    // Reaped below with wait4 (Child::wait would not give its rusage).
    #[allow(clippy::zombie_processes)]
    let mut child = sb
        .rdeploy_process(&["run", playbook, "-i", "inv.yaml", "--output", "json"])
        .env_remove("SSH_AUTH_SOCK")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start rdeploy");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut stdout = Vec::new();
    out.read_to_end(&mut stdout).unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 fills it in for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let stderr = err_reader.join().unwrap();
    let out = std::process::Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout,
        stderr,
    };
    (Run::from(out), usage.ru_maxrss)
}

#[test]
fn hundreds_of_megabytes_are_streamed_from_disk_never_held_in_memory_whole() {
    let fleet = Fleet::start(2);
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: { src: big.bin, dest: /srv/big.bin, mode: \"0600\" }\n    - script: big-script.sh\n    - file: { path: /srv/u, state: directory }\n    - unarchive: { src: s.tar, dest: /srv/u }\n",
    );
    // 256 MiB that differ from block to block (a reordered or repeated chunk shows).
    const MIB: usize = 1 << 20;
    let path = sb.path().join("big.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut block = vec![0u8; MIB];
        for i in 0..256u32 {
            for (j, b) in block.iter_mut().enumerate() {
                *b = (j as u32 ^ i.wrapping_mul(2_654_435_761)) as u8;
            }
            block[..4].copy_from_slice(&i.to_le_bytes());
            f.write_all(&block).unwrap();
        }
    }
    // A 2 MiB script (streamed too): a shell line, then a long comment.
    let mut script = b"#!/bin/sh\necho \"script ran on $(hostname)\" > /srv/script-ran\n".to_vec();
    while script.len() < 2 * MIB {
        script.extend_from_slice(b"# padding padding padding padding padding padding padding\n");
    }
    sb.write("big-script.sh", &script);
    // A tar archive over 1 MiB (streamed as well).
    let tar = std::process::Command::new("tar")
        .args(["cf", "s.tar", "big-script.sh"])
        .current_dir(sb.path())
        .status()
        .unwrap();
    assert!(tar.success());
    let want = std::process::Command::new("sha256sum")
        .arg(&path)
        .output()
        .unwrap();
    let want = String::from_utf8_lossy(&want.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    let (first, rss_kib) = run_measured(&sb, "pb.yaml");
    assert_eq!(first.code, 0, "{}", first.explain());
    for h in fleet.hosts() {
        let got = std::process::Command::new("sha256sum")
            .arg(h.path("/srv/big.bin"))
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&got.stdout).starts_with(&want),
            "{} differs",
            h.name()
        );
        assert_eq!(first.results(h.name())[0]["status"], "changed");
        assert!(
            std::fs::read_to_string(h.path("/srv/script-ran"))
                .unwrap()
                .starts_with("script ran")
        );
        assert_eq!(
            std::fs::read(h.path("/srv/u/big-script.sh")).unwrap(),
            script,
            "unpacked from the streamed archive"
        );
    }
    // Two hosts took 256 MiB each; rdeploy never held even one copy (it peaked at 535 MiB
    // when it read the file whole).
    eprintln!("rdeploy's peak RSS: {} MiB", rss_kib / 1024);
    assert!(
        rss_kib < 128 * 1024,
        "rdeploy's peak RSS was {} MiB for a 256 MiB file",
        rss_kib / 1024
    );
    let (second, _) = run_measured(&sb, "pb.yaml");
    assert_eq!(second.code, 0, "{}", second.explain());
    for h in fleet.hosts() {
        let r = second.results(h.name());
        assert_eq!(r[0]["status"], "ok", "{}", second.explain());
        assert_eq!(r[3]["status"], "ok", "{}", second.explain());
    }
}

#[test]
fn files_arrive_whole_with_their_mode_and_fetch_brings_them_back() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let big: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy:\n        src: big.txt\n        dest: /srv/big.txt\n        mode: \"0600\"\n    - fetch:\n        src: /srv/big.txt\n        dest: got/\n",
    );
    sb.write("big.txt", &big);
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(
        std::fs::read_to_string(h.path("/srv/big.txt")).unwrap(),
        big
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(h.path("/srv/big.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o600);
    let fetched = sb.path().join("got").join(h.name()).join("srv/big.txt");
    assert_eq!(std::fs::read_to_string(fetched).unwrap(), big);
}

// ------------------------------------------------------------------ host identity

#[test]
fn an_unknown_host_is_refused_under_strict_and_learned_under_accept_new() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let (sb, kh) = sandbox_known_hosts(&fleet, "");

    let strict = run(&sb, "pb.yaml", &[]);
    assert_eq!(strict.code, 6, "{}", strict.explain());
    let last = strict.last(h.name());
    assert_eq!(last["unreachable_reason"], "host_key_refused", "{last}");
    assert!(last["msg"].as_str().unwrap().contains("unknown"), "{last}");
    assert_eq!(
        strict.recap(h.name())["unreachable_reason"],
        "host_key_refused"
    );
    assert!(!h.path("/srv/who").exists());
    assert!(
        !h.log().contains("Accepted"),
        "refused before authentication:\n{}",
        h.log()
    );

    let learn = run(&sb, "pb.yaml", &["--host-key-checking", "accept-new"]);
    assert_eq!(learn.code, 0, "{}", learn.explain());
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), h.known_hosts_lines());

    // Now known: strict accepts it.
    let again = run(&sb, "pb.yaml", &[]);
    assert_eq!(again.code, 0, "{}", again.explain());
}

#[test]
fn accept_new_from_the_inventory_records_many_hosts_once_each() {
    let fleet = Fleet::start(6);
    let sb = Sandbox::new();
    let kh = sb.path().join("kh/known_hosts");
    let extra = json!({ "ansible_ssh_common_args": format!("-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}", kh.display()) });
    sb.write(
        "inv.yaml",
        inventory("all", fleet_hosts(&fleet, &extra), Value::Null),
    );
    sb.write("pb.yaml", WRITE_FILE);
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let text = std::fs::read_to_string(&kh).unwrap();
    assert_eq!(text.lines().count(), 6, "{text}");
    for h in fleet.hosts() {
        assert!(text.contains(&h.known_hosts_lines()), "{text}");
    }
}

#[test]
fn a_changed_host_key_is_refused_even_under_accept_new() {
    let fleet = Fleet::start(2);
    let (h0, h1) = (fleet.host(0), fleet.host(1));
    // host0's name with host1's key: what a man in the middle would look like.
    let pattern = format!("[{}]:{}", h0.addr(), h0.port());
    let (sb, _) = sandbox_known_hosts(&fleet, &format!("{pattern} {}\n", h1.host_keys()[0].public));
    for args in [&[][..], &["--host-key-checking", "accept-new"][..]] {
        let r = run(&sb, "pb.yaml", args);
        assert_eq!(r.code, 6, "{}", r.explain());
        let last = r.last(h0.name());
        assert_eq!(last["unreachable_reason"], "host_key_refused");
        assert!(last["msg"].as_str().unwrap().contains("CHANGED"), "{last}");
        assert!(!h0.path("/srv/who").exists());
    }
}

/// OpenSSH's `SHA256:...` fingerprint of a known_hosts key (`ALGORITHM BASE64`).
fn fingerprint(public: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key.pub");
    std::fs::write(&file, format!("{public}\n")).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&file)
        .output()
        .expect("ssh-keygen");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_changed_key_refusal_names_the_pinned_fingerprint_and_its_known_hosts_line() {
    let fleet = Fleet::start(2);
    let (h0, h1) = (fleet.host(0), fleet.host(1));
    let pattern = format!("[{}]:{}", h0.addr(), h0.port());
    let pinned = &h1.host_keys()[0].public;
    let offered = &h0.host_keys()[0].public;
    let (sb, kh) = sandbox_known_hosts(&fleet, &format!("# fleet\n{pattern} {pinned}\n"));
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 6, "{}", r.explain());
    let msg = r.last(h0.name())["msg"].as_str().unwrap().to_string();
    let (fp_pinned, fp_offered) = (fingerprint(pinned), fingerprint(offered));
    assert!(fp_pinned.starts_with("SHA256:") && fp_pinned != fp_offered);
    assert!(msg.contains(&fp_offered), "offered fingerprint: {msg}");
    assert!(msg.contains(&fp_pinned), "pinned fingerprint: {msg}");
    assert!(
        msg.contains(&format!("{}:2 pins", kh.display())),
        "file:line: {msg}"
    );
}

#[test]
fn a_key_recorded_only_for_another_port_is_refused_under_strict_and_learned_under_accept_new() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    // The host's own key, but recorded for a port the host does not listen on.
    let elsewhere = format!(
        "[{}]:{} {}\n",
        h.addr(),
        h.port().wrapping_add(1),
        h.host_keys()[0].public
    );
    let (sb, kh) = sandbox_known_hosts(&fleet, &elsewhere);

    let strict = run(&sb, "pb.yaml", &[]);
    assert_eq!(strict.code, 6, "{}", strict.explain());
    let last = strict.last(h.name());
    assert_eq!(last["unreachable_reason"], "host_key_refused", "{last}");
    assert!(last["msg"].as_str().unwrap().contains("unknown"), "{last}");
    assert!(!h.path("/srv/who").exists());
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), elsewhere);

    let learn = run(&sb, "pb.yaml", &["--host-key-checking", "accept-new"]);
    assert_eq!(learn.code, 0, "{}", learn.explain());
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        format!("{elsewhere}{}", h.known_hosts_lines())
    );
    assert!(h.path("/srv/who").exists());
}

#[test]
fn a_host_known_only_under_another_key_type_is_refused() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let keys = tempfile::tempdir().unwrap();
    keygen("rsa", &keys.path().join("other_rsa"));
    let rsa = std::fs::read_to_string(keys.path().join("other_rsa.pub")).unwrap();
    let rsa: Vec<&str> = rsa.split_whitespace().take(2).collect();
    let line = format!("[{}]:{} {}\n", h.addr(), h.port(), rsa.join(" "));
    let (sb, kh) = sandbox_known_hosts(&fleet, &line);
    let r = run(&sb, "pb.yaml", &["--host-key-checking", "accept-new"]);
    assert_eq!(r.code, 6, "{}", r.explain());
    let msg = r.last(h.name())["msg"].as_str().unwrap().to_string();
    assert!(msg.contains("known only with ssh-rsa"), "{msg}");
    // Nothing was learned on top of it.
    assert_eq!(std::fs::read_to_string(&kh).unwrap().lines().count(), 1);
}

#[test]
fn the_key_type_known_hosts_records_is_the_one_negotiated() {
    // The host has Ed25519 and ECDSA keys; known_hosts lists only the ECDSA one.
    let fleet = Fleet::builder().hosts(1).host_key(KeyType::Ecdsa).start();
    let h = fleet.host(0);
    let ecdsa = h
        .host_keys()
        .iter()
        .find(|k| k.kind == KeyType::Ecdsa)
        .unwrap()
        .public
        .clone();
    let (sb, _) = sandbox_known_hosts(&fleet, &format!("[{}]:{} {ecdsa}\n", h.addr(), h.port()));
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
}

#[test]
fn a_refused_host_stops_new_batches() {
    let fleet = Fleet::start(2);
    let sb = Sandbox::new();
    let empty = sb.path().join("empty_known_hosts");
    let mut hosts = fleet_hosts(
        &fleet,
        &json!({ "ansible_ssh_extra_args": known_hosts_arg(fleet.known_hosts()) }),
    );
    // host0 (first batch) is unknown; host1 (second batch) would be fine.
    hosts[0]
        .1
        .insert("ansible_ssh_extra_args".into(), known_hosts_arg(&empty));
    sb.write("inv.yaml", inventory("all", hosts, Value::Null));
    sb.write(
        "pb.yaml",
        "- hosts: all\n  serial: 1\n  gather_facts: no\n  tasks:\n    - command: \"true\"\n",
    );
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 6, "{}", r.explain());
    assert!(r.results("host1").is_empty(), "{}", r.explain());
    assert!(r.stdout.contains("no new batch"), "{}", r.explain());
}

/// A play with a failure budget and a health gate: a host refused by its key fails the batch,
/// whose other host is rolled back; the refusal, not the rollback, is the exit code.
const GATED: &str = "- hosts: all\n  gather_facts: no\n  max_fail_percentage: 0\n  tasks:\n    - copy: { content: \"new\\n\", dest: /srv/who }\n  health:\n    - command: \"true\"\n";

#[test]
fn an_unknown_host_key_in_a_play_with_a_health_gate_exits_6_not_3() {
    let fleet = Fleet::start(2);
    let sb = Sandbox::new();
    let empty = sb.path().join("empty_known_hosts");
    let mut hosts = fleet_hosts(
        &fleet,
        &json!({ "ansible_ssh_extra_args": known_hosts_arg(fleet.known_hosts()) }),
    );
    hosts[0]
        .1
        .insert("ansible_ssh_extra_args".into(), known_hosts_arg(&empty));
    sb.write("inv.yaml", inventory("all", hosts, Value::Null));
    sb.write("pb.yaml", GATED);
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 6, "{}", r.explain());
    assert_eq!(
        r.recap("host0")["unreachable_reason"],
        "host_key_refused",
        "{}",
        r.explain()
    );
    assert!(
        r.stdout.contains("host key refused for host0"),
        "{}",
        r.explain()
    );
    // The rest happened as before: the batch failed its budget and host1 was rolled back.
    assert!(r.events.iter().any(|e| e["event"] == "gate_failed"));
    assert!(!fleet.host(1).path("/srv/who").exists(), "{}", r.explain());
    // In the human output too.
    let human = sb
        .rdeploy(&["run", "pb.yaml", "-i", "inv.yaml"])
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run rdeploy");
    assert_eq!(human.status.code(), Some(6));
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("host0") && text.contains("host key refused"),
        "{text}"
    );
}

/// A play whose gate fails after about 3 s (nothing listens on port 1), over every fleet host
/// with a known_hosts file of the sandbox's: started in the background once the hosts are
/// changed and the gate runs, so that the test can change what the rollback will meet.
fn gate_failing_slowly(
    fleet: &Fleet,
) -> (
    Sandbox,
    std::path::PathBuf,
    std::thread::JoinHandle<std::process::Output>,
) {
    let mut known = String::new();
    for h in fleet.hosts() {
        known.push_str(&h.known_hosts_lines());
    }
    let (sb, kh) = sandbox_known_hosts(fleet, &known);
    sb.write(
        "pb.yaml",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: { content: \"new\\n\", dest: /srv/who }\n  health:\n    - tcp: \"127.0.0.1:1\"\n  probe: { retries: 30, interval: 100ms, timeout: 1s }\n",
    );
    let child = spawn(&sb);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fleet.hosts().iter().all(|h| h.path("/srv/who").exists()) {
        assert!(Instant::now() < deadline, "the deploy never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The task has finished (it took about 0.1 s); the gate has 3 s to go.
    std::thread::sleep(Duration::from_secs(1));
    (sb, kh, child)
}

/// Drops the host's connection: kills every process of the login user on it (its session).
fn drop_connection(h: &support::fleet::Host) {
    for p in h.user_processes() {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(p.pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
    }
}

#[test]
fn a_connection_lost_before_the_automatic_rollback_is_opened_again_and_the_host_restored() {
    let fleet = Fleet::start(1);
    let h0 = fleet.host(0);
    let (_sb, _kh, child) = gate_failing_slowly(&fleet);
    drop_connection(h0);
    let r = finish(child);
    let rollback = r
        .events
        .iter()
        .find(|e| e["event"] == "rollback")
        .map(|e| e["rollback"].clone())
        .unwrap_or(Value::Null);
    assert_eq!(rollback["errors"], json!([]), "{}", r.explain());
    assert_eq!(rollback["restored"], 1, "{}", r.explain());
    assert!(!h0.path("/srv/who").exists());
    // The health gate after the rollback still fails (nothing listens): exit 5, not 6.
    assert_eq!(r.code, 5, "{}", r.explain());
}

#[test]
fn a_host_key_changed_before_the_automatic_rollback_is_refused_and_exits_6() {
    let fleet = Fleet::start(2);
    let (h0, h1) = (fleet.host(0), fleet.host(1));
    // Meanwhile host0's key changes and its connection drops, as when an impostor takes its
    // address.
    let (_sb, kh, child) = gate_failing_slowly(&fleet);
    let pattern = format!("[{}]:{}", h0.addr(), h0.port());
    std::fs::write(
        &kh,
        format!(
            "{pattern} {}\n{}",
            h1.host_keys()[0].public,
            h1.known_hosts_lines()
        ),
    )
    .unwrap();
    drop_connection(h0);
    let r = finish(child);
    assert_eq!(r.code, 6, "{}", r.explain());
    let rollback = |host: &str| -> Value {
        r.events
            .iter()
            .find(|e| e["event"] == "rollback" && e["rollback"]["host"] == host)
            .map(|e| e["rollback"].clone())
            .unwrap_or(Value::Null)
    };
    let refused = rollback("host0");
    assert_eq!(
        refused["unreachable_reason"],
        "host_key_refused",
        "{}",
        r.explain()
    );
    assert_eq!(
        refused["errors"][0]["kind"],
        "unreachable",
        "{}",
        r.explain()
    );
    let why = refused["errors"][0]["cause"].as_str().unwrap_or_default();
    assert!(
        why.contains("reconnecting for the rollback") && why.contains("CHANGED"),
        "{why}"
    );
    assert_eq!(r.recap("host0")["unreachable_reason"], "host_key_refused");
    // Nothing was sent to the impostor: host0 keeps the change; host1 was rolled back.
    assert_eq!(
        std::fs::read_to_string(h0.path("/srv/who")).unwrap(),
        "new\n"
    );
    assert_eq!(rollback("host1")["errors"], json!([]), "{}", r.explain());
    assert!(!h1.path("/srv/who").exists());
}

// ------------------------------------------------------------------ authentication

#[test]
fn an_auth_failure_names_the_methods_tried_and_never_the_password() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let sb = sandbox(&fleet, WRITE_FILE);
    keygen("ed25519", &sb.path().join("stranger"));
    let stranger = sb.path().join("stranger");
    let extra = json!({
        "ansible_ssh_extra_args": known_hosts_arg(fleet.known_hosts()),
        "ansible_ssh_private_key_file": stranger.display().to_string(),
        "ansible_password": "not-the-password-42",
    });
    sb.write(
        "inv.yaml",
        inventory("all", fleet_hosts(&fleet, &extra), Value::Null),
    );
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 2, "{}", r.explain());
    let last = r.last(h.name());
    assert_eq!(last["unreachable_reason"], "auth_failed", "{last}");
    let msg = last["msg"].as_str().unwrap();
    assert!(msg.contains("ssh-agent"), "{msg}");
    assert!(
        msg.contains(&format!("key {} (refused)", stranger.display())),
        "{msg}"
    );
    assert!(msg.contains("password"), "{msg}");
    assert!(msg.contains(USER), "{msg}");
    assert!(!r.stdout.contains("not-the-password-42") && !r.stderr.contains("not-the-password-42"));
}

#[test]
fn an_encrypted_key_needs_its_passphrase_file() {
    let fleet = Fleet::builder().hosts(1).encrypted_client_key().start();
    let h = fleet.host(0);
    let sb = Sandbox::new();
    let key = fleet.encrypted_client_key().unwrap().display().to_string();
    let extra = json!({
        "ansible_ssh_extra_args": known_hosts_arg(fleet.known_hosts()),
        "ansible_ssh_private_key_file": key,
    });
    sb.write(
        "inv.yaml",
        inventory("all", fleet_hosts(&fleet, &extra), Value::Null),
    );
    sb.write("pb.yaml", WRITE_FILE);
    let without = run(&sb, "pb.yaml", &[]);
    assert_eq!(without.code, 2, "{}", without.explain());
    let msg = without.last(h.name())["msg"].as_str().unwrap().to_string();
    assert!(msg.contains("encrypted"), "{msg}");
    sb.write("pass", format!("{PASSPHRASE}\n"));
    let with = run(&sb, "pb.yaml", &["--key-passphrase-file", "pass"]);
    assert_eq!(with.code, 0, "{}", with.explain());
    assert!(!with.stdout.contains(PASSPHRASE) && !with.stderr.contains(PASSPHRASE));
}

#[test]
fn password_authentication_works_without_any_key() {
    let fleet = Fleet::builder().hosts(1).password_auth().start();
    let h = fleet.host(0);
    let sb = Sandbox::new();
    let mut hosts = fleet_hosts(
        &fleet,
        &json!({
            "ansible_ssh_extra_args": known_hosts_arg(fleet.known_hosts()),
            "ansible_password": PASSWORD,
        }),
    );
    hosts[0].1.remove("ansible_ssh_private_key_file");
    sb.write("inv.yaml", inventory("all", hosts, Value::Null));
    sb.write("pb.yaml", WRITE_FILE);
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(
        std::fs::read_to_string(h.path("/srv/who")).unwrap(),
        "host0\n"
    );
    assert!(!r.stdout.contains(PASSWORD));
}

/// Runs [`WRITE_FILE`] with an inventory of bare host names and `--ssh-config` the fleet's
/// config: everything (address, port, user, key, known_hosts, ProxyJump) comes from it.
fn run_with_ssh_config_only(fleet: &Fleet) -> Run {
    let sb = Sandbox::new();
    let hosts = fleet
        .hosts()
        .iter()
        .map(|h| (h.name().to_string(), Map::new()))
        .collect();
    sb.write("inv.yaml", inventory("all", hosts, Value::Null));
    sb.write("pb.yaml", WRITE_FILE);
    let config = fleet.ssh_config().display().to_string();
    run(&sb, "pb.yaml", &["--ssh-config", &config])
}

/// Each host holds its own name in `/srv/who` ([`WRITE_FILE`] ran there).
fn assert_each_wrote_its_name(fleet: &Fleet) {
    for h in fleet.hosts() {
        assert_eq!(
            std::fs::read_to_string(h.path("/srv/who")).unwrap(),
            format!("{}\n", h.name())
        );
    }
}

#[test]
fn the_ssh_config_file_alone_is_enough() {
    let fleet = Fleet::start(2);
    let r = run_with_ssh_config_only(&fleet);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_each_wrote_its_name(&fleet);
}

/// An Ansible project's ansible.cfg supplies the inventory, the login user, the key, the host
/// key policy (`host_key_checking = False` learns new keys) and forks; rdeploy says which of
/// its settings it does not use.
#[test]
fn ansible_cfg_supplies_inventory_user_key_and_host_key_policy() {
    let fleet = Fleet::start(2);
    let sb = Sandbox::new();
    let kh = sb.path().join("known_hosts");
    let hosts: Vec<(String, Map<String, Value>)> = fleet
        .hosts()
        .iter()
        .map(|h| {
            let mut v = Map::new();
            v.insert("ansible_host".into(), json!(h.addr().to_string()));
            v.insert("ansible_port".into(), json!(h.port()));
            v.insert("ansible_ssh_extra_args".into(), known_hosts_arg(&kh));
            (h.name().to_string(), v)
        })
        .collect();
    sb.write("hosts/inv.yaml", inventory("all", hosts, Value::Null));
    sb.write("pb.yaml", WRITE_FILE);
    sb.write(
        "ansible.cfg",
        format!(
            "[defaults]\ninventory = hosts/inv.yaml\nremote_user = {USER}\nprivate_key_file = {}\n\
             host_key_checking = False\nforks = 1\nretry_files_enabled = False\n\
             [ssh_connection]\npipelining = True\n",
            fleet.client_key().display()
        ),
    );
    let r = Run::from(
        sb.rdeploy(&["run", "pb.yaml", "--output", "json", "-v"])
            .env_remove("SSH_AUTH_SOCK")
            .timeout(Duration::from_secs(120))
            .output()
            .expect("run rdeploy"),
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_each_wrote_its_name(&fleet);
    let learned = std::fs::read_to_string(&kh).unwrap();
    assert_eq!(learned.lines().count(), 2, "{learned}");
    assert!(
        r.stderr.contains(
            "ansible.cfg: not used by rdeploy: [defaults] retry_files_enabled, [ssh_connection] pipelining"
        ),
        "{}",
        r.explain()
    );
}

// ------------------------------------------------------------------ failures next to healthy hosts

#[test]
fn an_unreachable_host_is_reported_and_the_others_finish() {
    let fleet = Fleet::start(2);
    let sb = sandbox(&fleet, WRITE_FILE);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut hosts = fleet_hosts(
        &fleet,
        &json!({ "ansible_ssh_extra_args": known_hosts_arg(fleet.known_hosts()) }),
    );
    let mut dead = hosts[0].1.clone();
    dead.insert("ansible_port".into(), json!(closed));
    hosts.push(("nothing-listens".into(), dead));
    sb.write("inv.yaml", inventory("all", hosts, Value::Null));
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 2, "{}", r.explain());
    let last = r.last("nothing-listens");
    assert_eq!(last["status"], "unreachable");
    assert_eq!(last["unreachable_reason"], "unreachable");
    assert!(last["msg"].as_str().unwrap().contains("refused"), "{last}");
    for h in fleet.hosts() {
        assert_eq!(r.recap(h.name())["changed"], 1, "{}", r.explain());
    }
}

/// Starts `rdeploy run` in the background; [`finish`] waits for it.
fn spawn(sb: &Sandbox) -> std::thread::JoinHandle<std::process::Output> {
    let mut cmd = sb.rdeploy(&["run", "pb.yaml", "-i", "inv.yaml", "--output", "json"]);
    cmd.env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(120));
    std::thread::spawn(move || cmd.output().expect("run rdeploy"))
}

fn finish(child: std::thread::JoinHandle<std::process::Output>) -> Run {
    Run::from(child.join().expect("the rdeploy thread"))
}

/// Waits until `host` runs a process whose command line contains `needle`.
fn wait_for_process(h: &support::fleet::Host, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !h
        .user_processes()
        .iter()
        .any(|p| p.cmdline.contains(needle))
    {
        assert!(
            Instant::now() < deadline,
            "{needle} never started on {}",
            h.name()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_host_whose_sshd_is_killed_mid_run_is_reported_and_the_others_finish() {
    let fleet = Fleet::start(2);
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: sleep 3\n    - command: \"true\"\n",
    );
    let child = spawn(&sb);
    wait_for_process(fleet.host(1), "sleep 3");
    fleet.host(1).kill();
    let r = finish(child);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert_eq!(r.last("host1")["status"], "unreachable", "{}", r.explain());
    assert_eq!(r.recap("host1")["unreachable"], 1);
    assert_eq!(r.recap("host0")["changed"], 2, "{}", r.explain());
}

#[test]
fn a_frozen_host_is_declared_dead_within_interval_times_count() {
    let fleet = Fleet::start(2);
    let sb = sandbox_with_options(
        &fleet,
        "-o ServerAliveInterval=1 -o ServerAliveCountMax=2",
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: sleep 8\n    - command: \"true\"\n",
    );
    let child = spawn(&sb);
    wait_for_process(fleet.host(1), "sleep 8");
    let frozen_at = Instant::now();
    fleet.host(1).freeze();
    let r = finish(child);
    let elapsed = frozen_at.elapsed();
    fleet.host(1).thaw();
    assert_eq!(r.code, 2, "{}", r.explain());
    let last = r.last("host1");
    assert_eq!(last["status"], "unreachable", "{}", r.explain());
    assert_eq!(last["unreachable_reason"], "timed_out", "{last}");
    assert!(
        last["msg"].as_str().unwrap().contains("stopped answering"),
        "{last}"
    );
    // host1's task ended long before host0's 8 s sleep: within 2 × 1 s plus slack.
    let secs = last["duration"].as_f64().unwrap();
    assert!(secs < 6.0, "liveness took {secs}s");
    assert_eq!(r.recap("host0")["changed"], 2, "{}", r.explain());
    assert!(elapsed < Duration::from_secs(30));
}

#[test]
fn server_alive_interval_0_turns_liveness_off_and_commands_still_run() {
    // It used to fail every command with "connection lost": without a liveness task the
    // connection's "dead" signal had no sender left, and a closed signal read as dead.
    let fleet = Fleet::start(1);
    let sb = sandbox_with_options(&fleet, "-o ServerAliveInterval=0", WRITE_FILE);
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_each_wrote_its_name(&fleet);
}

#[test]
fn a_hanging_command_is_killed_with_its_process_group_and_the_host_goes_on() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - shell: \"sleep 300 & sleep 301 & wait\"\n      timeout: 2\n      ignore_errors: yes\n    - command: \"true\"\n",
    );
    let started = Instant::now();
    let r = run(&sb, "pb.yaml", &[]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{}",
        r.explain()
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    let hung = &r.results(h.name())[0];
    assert!(
        hung["msg"].as_str().unwrap().contains("timed out"),
        "{hung}"
    );
    assert_eq!(r.recap(h.name())["ignored"], 1);
    assert_eq!(r.recap(h.name())["changed"], 1, "the next task ran");
    let left: Vec<String> = h
        .user_processes()
        .into_iter()
        .map(|p| p.cmdline)
        .filter(|c| c.contains("sleep 30"))
        .collect();
    assert!(left.is_empty(), "orphans on the host: {left:?}");
}

#[test]
fn task_timeout_from_the_command_line_kills_the_command() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: sleep 302\n",
    );
    let r = run(&sb, "pb.yaml", &["--task-timeout", "1s"]);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.last(h.name())["msg"]
            .as_str()
            .unwrap()
            .contains("timed out")
    );
    assert!(
        !h.user_processes()
            .iter()
            .any(|p| p.cmdline.contains("sleep 302"))
    );
}

// ------------------------------------------------------------------ topology and become

#[test]
fn proxy_jump_through_the_bastion_reaches_the_private_hosts() {
    let fleet = Fleet::builder().hosts(2).bastion().start();
    let sb = sandbox(&fleet, WRITE_FILE);
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_each_wrote_its_name(&fleet);
    // The same hosts from the fleet's ssh config (`ProxyJump bastion`).
    let r = run_with_ssh_config_only(&fleet);
    assert_eq!(r.code, 0, "{}", r.explain());
}

#[test]
fn become_runs_commands_and_writes_files_as_root_through_sudo() {
    need_sudo();
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  become: yes\n  tasks:\n    - command: id -u\n      register: who\n    - copy:\n        content: \"{{ who.stdout }}\\n\"\n        dest: /etc/rdeploy-test/root-owned\n        mode: \"0600\"\n    - shell: \"sleep 303 & sleep 304 & wait\"\n      timeout: 1\n      ignore_errors: yes\n",
    );
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let f = h.path("/etc/rdeploy-test/root-owned");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "0\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&f).unwrap().uid(), 0);
    // The timed-out group ran as root and was still killed (through sudo).
    assert!(
        !h.processes()
            .iter()
            .any(|p| p.cmdline.contains("sleep 303") || p.cmdline.contains("sleep 304")),
        "{:?}",
        h.processes()
    );
}

/// CVE-2024-9902 class, on a real host: the unprivileged login user replaced a folder of the
/// tree by a symlink to a root-owned folder; a `become: yes` copy into the tree is refused,
/// naming the link, and nothing is written where it points.
#[test]
fn a_root_write_through_a_folder_the_login_user_replaced_by_a_symlink_is_refused() {
    need_sudo();
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let app = h.path("/srv/app");
    let target = h.path("/etc/rdeploy-test/elsewhere");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    let conf = app.join("conf");
    std::os::unix::fs::symlink("/etc/rdeploy-test/elsewhere", &conf).unwrap();
    let uid = std::process::Command::new("id")
        .args(["-u", USER])
        .output()
        .unwrap();
    let uid: u32 = String::from_utf8_lossy(&uid.stdout).trim().parse().unwrap();
    std::os::unix::fs::lchown(&conf, Some(uid), None).unwrap();
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  become: yes\n  tasks:\n    - copy: { content: \"x=1\\n\", dest: /srv/app/conf/app.ini }\n",
    );
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 2, "{}", r.explain());
    let msg = r.last(h.name())["msg"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        msg,
        format!(
            "refusing to write /srv/app/conf/app.ini: parent /srv/app/conf is a symlink owned by uid {uid} (neither root nor the user the task runs as); nothing was changed"
        ),
        "{}",
        r.explain()
    );
    assert!(
        std::fs::read_dir(&target).unwrap().next().is_none(),
        "written through the link"
    );
}

/// Installs the test user's sudoers rule; sudo itself must be installed.
fn need_sudo() {
    assert!(
        enable_sudo(),
        "sudo is required: scripts/test.sh --install-only installs it"
    );
}

/// The run id a run's `run_end` event names.
fn run_id_of(r: &Run) -> String {
    r.events
        .iter()
        .find(|e| e["event"] == "run_end")
        .and_then(|e| e["run_id"].as_str())
        .expect("a run id")
        .to_string()
}

/// What the debug task `said` printed on `host`.
fn said(r: &Run, host: &str) -> String {
    r.results(host)
        .iter()
        .rev()
        .find_map(|e| e["result"]["msg"].as_str().map(str::to_string))
        .unwrap_or_default()
}

const WHO_BECOMES: &str = r#"
- hosts: all
  gather_facts: no
  become: yes
  tasks:
    - command: id -un
      register: play_become
    - command: id -un
      become: false
      register: task_no_become
- hosts: all
  gather_facts: no
  tasks:
    - command: id -un
      register: no_keyword
    - debug:
        msg: "{{ play_become.stdout }} {{ task_no_become.stdout }} {{ no_keyword.stdout }}"
"#;

/// `ansible_become*` variables (inventory, `-e`) win over the play's and task's keywords,
/// which win over `-b`/`--become-user`, as ansible-playbook 2.19 does on the same playbook
/// (`-e ansible_become=false` used to be ignored: commands still ran under sudo).
#[test]
fn become_variables_win_over_keywords_which_win_over_the_command_line() {
    need_sudo();
    let fleet = Fleet::start(1);
    let h = fleet.host(0).name().to_string();
    let sb = sandbox(&fleet, WHO_BECOMES);
    let cases: [(&[&str], &str); 4] = [
        (&[], "root rdeploy-test rdeploy-test"),
        (
            &["-e", "ansible_become=false"],
            "rdeploy-test rdeploy-test rdeploy-test",
        ),
        (
            &["-b", "--become-user", "nobody"],
            "nobody rdeploy-test nobody",
        ),
        (
            &[
                "-e",
                "ansible_become_user=nobody",
                "--become-user",
                "daemon",
            ],
            "nobody rdeploy-test rdeploy-test",
        ),
    ];
    for (args, want) in cases {
        let r = run(&sb, "pb.yaml", args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.explain());
        assert_eq!(said(&r, &h), want, "{args:?}");
    }
    // From the inventory: the variable beats even the task's `become: false`.
    let extra = json!({
        "ansible_ssh_extra_args": known_hosts_arg(fleet.known_hosts()),
        "ansible_become": true,
        "ansible_become_user": "nobody",
    });
    sb.write(
        "inv.yaml",
        inventory("all", fleet_hosts(&fleet, &extra), Value::Null),
    );
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(said(&r, &h), "nobody nobody nobody");
}

/// A sudo that asks for a password gets `ansible_become_password` (here from a file given with
/// `-e @FILE`) on stdin, never in a command line; the command's own stdin is intact whether
/// sudo asked or not; the password is never printed. Without it, sudo fails fast.
#[test]
fn become_password_from_a_file_unlocks_sudo_and_never_shows() {
    need_sudo();
    let fleet = Fleet::builder().hosts(1).sudo_password().start();
    let h = fleet.host(0).name().to_string();
    let pb = "- hosts: all\n  gather_facts: no\n  become: yes\n  tasks:\n    - shell: cat; id -un\n      args:\n        stdin: from the playbook\n      register: out\n    - debug:\n        msg: \"{{ out.stdout_lines | join(' / ') }}\"\n";
    let sb = sandbox(&fleet, pb);
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(
        r.code,
        2,
        "sudo -n without a password fails: {}",
        r.explain()
    );
    assert!(r.stdout.contains("password is required"), "{}", r.explain());
    sb.write(
        "become.yml",
        format!("ansible_become_password: {PASSWORD}\n"),
    );
    // Shown on purpose: masked all the same.
    sb.write(
        "pb.yaml",
        pb.replace(
            "  tasks:\n",
            "  tasks:\n    - debug: { var: ansible_become_password }\n",
        ),
    );
    let r = run(&sb, "pb.yaml", &["-e", "@become.yml", "-v"]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(said(&r, &h), "from the playbook / root");
    assert!(!r.stdout.contains(PASSWORD) && !r.stderr.contains(PASSWORD));
}

/// Passwords never come from argv, and prompts need a terminal: each is an error before any
/// host is touched (exit 4, no result line).
#[test]
fn become_password_in_argv_and_prompts_without_a_terminal_are_refused_up_front() {
    let fleet = Fleet::start(1);
    let sb = sandbox(&fleet, WRITE_FILE);
    for (args, needle) in [
        (
            &["-e", "ansible_become_password=hunter22"][..],
            "command line",
        ),
        (&["-K"][..], "terminal"),
        (&["--ask-vault-pass"][..], "terminal"),
        (&["--become-method", "doas"][..], "not supported by rdeploy"),
    ] {
        let r = run(&sb, "pb.yaml", args);
        assert_eq!(r.code, 4, "{args:?}: {}", r.explain());
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.explain());
        assert!(!r.stderr.contains("hunter22"), "{}", r.explain());
        assert!(r.events.iter().all(|e| e["event"] != "result"), "{args:?}");
    }
    assert!(!fleet.host(0).path("/srv/who").exists());
}

/// `-K` on a terminal (util-linux `script` gives rdeploy a pseudo-terminal): the prompt is
/// Ansible's, what is typed is not echoed, and sudo gets it.
#[test]
fn ask_become_pass_prompts_on_a_terminal_with_the_input_hidden() {
    use std::io::{Read, Write};
    use std::process::Stdio;
    need_sudo();
    let fleet = Fleet::builder().hosts(1).sudo_password().start();
    let pb = "- hosts: all\n  gather_facts: no\n  become: yes\n  tasks:\n    - command: id -un\n";
    let sb = sandbox(&fleet, pb);
    let proc = sb.rdeploy_process(&[]);
    let line = format!(
        "exec '{}' run pb.yaml -i inv.yaml -K",
        assert_cmd::cargo::cargo_bin("rdeploy").display()
    );
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &line, "/dev/null"])
        .current_dir(sb.path())
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in proc.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let mut child = c
        .spawn()
        .expect("util-linux script (scripts/test.sh installs it)");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut typed = false;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(b) => screen.extend(b),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(_) => {}
        }
        if !typed && String::from_utf8_lossy(&screen).contains("BECOME password: ") {
            // The terminal's echo is off once the prompt is shown.
            std::thread::sleep(Duration::from_millis(200));
            stdin.write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
            typed = true;
        }
    }
    let status = child.wait().expect("wait for script");
    let screen = String::from_utf8_lossy(&screen).into_owned();
    assert!(typed, "no prompt: {screen}");
    assert!(status.success(), "{screen}");
    assert!(screen.contains("changed: ["), "{screen}");
    assert!(
        !screen.contains(PASSWORD),
        "the password was echoed: {screen}"
    );
}

/// `copy` and `template` over a file whose group the plain login user is not in (here root's):
/// with no `owner`/`group` in the task, the write keeps what the rename allows, as Ansible's
/// `atomic_move` does (its `chown` refused, the user's own group), keeps the mode, and says so
/// under `-v`. Before, every such task failed on `chown ... Operation not permitted`.
#[test]
fn copy_over_a_file_of_a_group_the_login_user_is_not_in_keeps_what_it_may() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let pb = "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy:\n        content: \"new\\n\"\n        dest: /srv/app.conf\n    - template:\n        src: t.j2\n        dest: /srv/app.tmpl\n    - copy:\n        content: \"asked\\n\"\n        dest: /srv/strict.conf\n        group: root\n";
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let sb = sandbox(&fleet, pb);
    sb.write("t.j2", "{{ inventory_hostname }}\n");
    let uid = std::fs::metadata(h.path("/srv")).unwrap().uid();
    assert_ne!(uid, 0, "the fleet's /srv belongs to the login user");
    for f in ["/srv/app.conf", "/srv/app.tmpl", "/srv/strict.conf"] {
        let p = h.path(f);
        std::fs::write(&p, "old\n").unwrap();
        std::os::unix::fs::chown(&p, Some(uid), Some(0)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let r = run(&sb, "pb.yaml", &["-v"]);
    // The task that names `group: root` still fails: what a task asks for is never dropped.
    assert_eq!(r.code, 2, "{}", r.explain());
    let results = r.results(h.name());
    assert_eq!(results[0]["status"], "changed", "{}", r.explain());
    assert_eq!(results[1]["status"], "changed", "{}", r.explain());
    assert_eq!(results[2]["status"], "failed", "{}", r.explain());
    for (f, body) in [
        ("/srv/app.conf", "new\n"),
        ("/srv/app.tmpl", format!("{}\n", h.name()).as_str()),
    ] {
        let p = h.path(f);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), body);
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o7777), (uid, 0o640), "{f}");
        assert_ne!(
            m.gid(),
            0,
            "{f}: the login user cannot give it root's group"
        );
    }
    let msg = results[0]["result"]["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("/srv/app.conf is now owned by rdeploy-test:"),
        "{}",
        r.explain()
    );
    // A second run changes nothing: the content is there; owner and group were not asked.
    sb.write(
        "pb.yaml",
        pb.split("    - copy:\n        content: \"asked")
            .next()
            .unwrap(),
    );
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(
        r.results(h.name()).iter().all(|e| e["status"] == "ok"),
        "{}",
        r.explain()
    );
}

/// The test user's `/etc/passwd` fields (the same on the machine and every host).
fn user_entry() -> Vec<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with(&format!("{USER}:")))
        .expect("the fleet's user");
    line.split(':').map(str::to_string).collect()
}

/// The test user's home directory.
fn user_home() -> String {
    user_entry()[5].clone()
}

/// The test user's uid and primary gid.
fn user_ids() -> (u32, u32) {
    let e = user_entry();
    (e[2].parse().unwrap(), e[3].parse().unwrap())
}

/// A plain login user with no `rdeploy_state_dir` gets its backups in
/// `~/.local/state/rdeploy` on the host (created 0700), shown with `-v`, and `rdeploy rollback`
/// finds them there (from the journal, and from the inventory alone, as another controller
/// would). Before, every changing task failed on `mkdir: cannot create directory
/// '/var/lib/rdeploy'` (here the fleet's /var/lib/rdeploy is made root's, as on a real host).
#[test]
fn a_plain_login_user_keeps_its_backups_in_its_home_and_rollback_finds_them() {
    use std::os::unix::fs::PermissionsExt;
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let var_lib = h.path("/var/lib/rdeploy");
    std::os::unix::fs::chown(&var_lib, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&var_lib, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sb = sandbox(&fleet, WRITE_FILE);
    std::fs::write(h.path("/srv/who"), "before\n").unwrap();
    // The login user's file, as it would be on a real host.
    let (uid, gid) = user_ids();
    std::os::unix::fs::chown(h.path("/srv/who"), Some(uid), Some(gid)).unwrap();
    let r = run(&sb, "pb.yaml", &["-v"]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let home = user_home();
    let state = format!("{home}/.local/state/rdeploy");
    assert!(
        r.events
            .iter()
            .any(|e| e["event"] == "state_dir" && e["dir"] == state.as_str()),
        "-v names the state directory: {}",
        r.explain()
    );
    let mode = std::fs::metadata(h.path(&state))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let run_id = run_id_of(&r);
    assert!(h.path(&format!("{state}/runs/{run_id}.json")).exists());
    assert_eq!(
        std::fs::read_to_string(h.path("/srv/who")).unwrap(),
        format!("{}\n", h.name())
    );
    let back = sb
        .rdeploy(&["rollback", &run_id, "-i", "inv.yaml", "--no-lock"])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert!(back.status.success(), "{back:?}");
    assert_eq!(
        std::fs::read_to_string(h.path("/srv/who")).unwrap(),
        "before\n"
    );
    // Another controller (no journal): the manifest is found under the login user's home.
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let run_id = run_id_of(&r);
    let elsewhere = sb.path().join("other-controller");
    let back = sb
        .rdeploy(&["rollback", &run_id, "-i", "inv.yaml", "--no-lock"])
        .env("RDEPLOY_STATE_DIR", &elsewhere)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert!(back.status.success(), "{back:?}");
    assert_eq!(
        std::fs::read_to_string(h.path("/srv/who")).unwrap(),
        "before\n"
    );
}

/// `--check` fails a host whose state directory cannot be prepared (here the user's
/// `~/.local` belongs to root), so a check that passes never predicts a run that fails at
/// every change; it creates nothing. A task with `become` (root) uses `/var/lib/rdeploy`.
#[test]
fn check_fails_a_host_whose_state_directory_cannot_be_prepared() {
    use std::os::unix::fs::PermissionsExt;
    need_sudo();
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let sb = sandbox(&fleet, WRITE_FILE);
    let home = user_home();
    let r = run(&sb, "pb.yaml", &["--check", "-v"]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(
        !h.path(&format!("{home}/.local")).exists(),
        "--check created it"
    );
    let local = h.path(&format!("{home}/.local"));
    std::fs::create_dir(&local).unwrap();
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = run(&sb, "pb.yaml", &["--check"]);
    assert_eq!(r.code, 2, "{}", r.explain());
    let last = r.last(h.name());
    assert_eq!(last["status"], "failed", "{}", r.explain());
    let msg = last["msg"].as_str().unwrap_or_default().to_string();
    assert!(
        msg.contains("state directory") && msg.contains("not writable"),
        "{}",
        r.explain()
    );
    // The real run fails the same way, as predicted.
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(!h.path("/srv/who").exists());
    // With become (root), the state directory is root's.
    let pb = "- hosts: all\n  gather_facts: no\n  become: yes\n  tasks:\n    - copy: { content: \"x\\n\", dest: /srv/who }\n";
    sb.write("pb.yaml", pb);
    let r = run(&sb, "pb.yaml", &["-v"]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(
        r.events
            .iter()
            .any(|e| e["event"] == "state_dir" && e["dir"] == "/var/lib/rdeploy"),
        "{}",
        r.explain()
    );
}

/// `connection:` on a play and a task, as in Ansible: `local` runs on the controller (here as
/// root, facts included), a task's `ssh` goes back to the host (as the login user), and an
/// `ansible_connection` variable wins over both keywords. Other plugins are refused up front.
#[test]
fn the_connection_keyword_on_plays_and_tasks_chooses_local_or_ssh() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0).name().to_string();
    let pb = r#"
- hosts: all
  connection: local
  tasks:
    - command: id -un
      register: play_local
    - command: id -un
      connection: ssh
      register: task_ssh
    - debug:
        msg: "{{ ansible_user_id }} {{ play_local.stdout }} {{ task_ssh.stdout }}"
"#;
    let sb = sandbox(&fleet, pb);
    let controller = String::from_utf8(
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let me = controller.trim();
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(said(&r, &h), format!("{me} {me} {USER}"));
    let r = run(&sb, "pb.yaml", &["-e", "ansible_connection=ssh"]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(said(&r, &h), format!("{USER} {USER} {USER}"));
    sb.write(
        "pb.yaml",
        pb.replace("connection: local", "connection: winrm"),
    );
    let r = run(&sb, "pb.yaml", &[]);
    assert_eq!(r.code, 4, "{}", r.explain());
    assert!(
        r.stderr
            .contains("connection 'winrm' is not supported by rdeploy"),
        "{}",
        r.explain()
    );
}

/// `rdeploy run pb.yaml` in text mode (no ssh-agent): (exit code, stdout, the run id it printed).
fn run_text(sb: &Sandbox) -> (Option<i32>, String, String) {
    let out = sb
        .rdeploy(&["run", "pb.yaml", "-i", "inv.yaml"])
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    (out.status.code(), text, id)
}

/// `rdeploy rollback ID`: (exit code, stdout and stderr).
fn rollback(sb: &Sandbox, id: &str) -> (Option<i32>, String) {
    let back = sb
        .rdeploy(&["rollback", id, "-i", "inv.yaml"])
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&back.stdout),
        String::from_utf8_lossy(&back.stderr)
    );
    (back.status.code(), text)
}

// ------------------------------------------------------------------ ~ in paths

/// `path: ~/...` failed ("cannot touch '~/x'"): rdeploy passed `~` to the host literally.
/// Ansible's modules expand `~` and `~USER` on the host as the user they run as (after
/// become); so does rdeploy now, and the backups name the expanded path, so rollback removes
/// what the run created.
#[test]
fn tilde_paths_are_the_users_home_on_the_host_and_roll_back() {
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let home = format!("/home/{}", USER);
    let sb = sandbox(
        &fleet,
        &format!(
            "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: {{ dest: \"~/tilde.txt\", content: \"one\\n\" }}\n    - file: {{ path: \"~/tilde-dir\", state: directory }}\n    - lineinfile: {{ path: \"~{user}/tilde-root.conf\", line: \"a=1\", create: yes }}\n      become: true\n",
            user = USER
        ),
    );
    let (code, text, id) = run_text(&sb);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        std::fs::read_to_string(h.path(&format!("{home}/tilde.txt"))).unwrap(),
        "one\n"
    );
    assert!(h.path(&format!("{home}/tilde-dir")).is_dir());
    assert_eq!(
        std::fs::read_to_string(h.path(&format!("{home}/tilde-root.conf"))).unwrap(),
        "a=1\n"
    );
    // The second run changes nothing.
    let again = run(&sb, "pb.yaml", &[]);
    assert_eq!(again.code, 0, "{}", again.explain());
    assert!(
        again.results(h.name()).iter().all(|r| r["status"] == "ok"),
        "{}",
        again.explain()
    );
    let (code, back) = rollback(&sb, &id);
    assert_eq!(code, Some(0), "{back}");
    for f in ["tilde.txt", "tilde-dir", "tilde-root.conf"] {
        assert!(
            !h.path(&format!("{home}/{f}")).exists(),
            "{f} is still there"
        );
    }
}

/// `known_hosts` is native: the default file is the login user's `~/.ssh/known_hosts` on the
/// host, a second run changes nothing, `--check` writes nothing, rollback removes the line.
#[test]
fn known_hosts_adds_a_key_to_the_users_file_and_rolls_back() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let home = format!("/home/{USER}");
    let line = "git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBbWexample";
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(h.path(&home)).unwrap().uid();
    let id_g = std::process::Command::new("id")
        .args(["-g", USER])
        .output()
        .unwrap();
    let gid: u32 = String::from_utf8_lossy(&id_g.stdout)
        .trim()
        .parse()
        .unwrap();
    let ssh_dir = h.path(&format!("{home}/.ssh"));
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let file = h.path(&format!("{home}/.ssh/known_hosts"));
    std::fs::write(&file, "other.example.com ssh-rsa AAAAB3NzaC1yc2E\n").unwrap();
    for p in [&ssh_dir, &file] {
        std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    }
    let sb = sandbox(
        &fleet,
        &format!(
            "- hosts: all\n  gather_facts: no\n  tasks:\n    - known_hosts: {{ name: git.example.com, key: \"{line}\" }}\n"
        ),
    );
    let check = run(&sb, "pb.yaml", &["--check"]);
    assert_eq!(check.code, 0, "{}", check.explain());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "other.example.com ssh-rsa AAAAB3NzaC1yc2E\n"
    );
    let (code, text, id) = run_text(&sb);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("changed: [host0]"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("other.example.com ssh-rsa AAAAB3NzaC1yc2E\n{line}\n")
    );
    let again = run(&sb, "pb.yaml", &[]);
    assert_eq!(again.last(h.name())["status"], "ok", "{}", again.explain());
    let (code, back) = rollback(&sb, &id);
    assert_eq!(code, Some(0), "{back}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "other.example.com ssh-rsa AAAAB3NzaC1yc2E\n"
    );
}

/// In a state folder the login user owns (the fleet's `/var/lib/rdeploy`), a `become` step
/// wrote its manifest as root, 0600: `rdeploy rollback` then could not read it, and a later
/// step without become could not add to it. Both work now.
#[test]
fn a_become_step_in_the_login_users_state_folder_rolls_back() {
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: { dest: /srv/as-root.txt, content: \"r\\n\" }\n      become: true\n    - copy: { dest: /srv/as-user.txt, content: \"u\\n\" }\n",
    );
    let (code, text, id) = run_text(&sb);
    assert_eq!(code, Some(0), "{text}");
    let (code, back) = rollback(&sb, &id);
    assert_eq!(code, Some(0), "{back}");
    assert!(!h.path("/srv/as-root.txt").exists());
    assert!(!h.path("/srv/as-user.txt").exists());
}

/// The file plane (issue 16): copy, template, file, lineinfile and a `become` write of a large
/// file, on one host through SFTP (the default) and on another with the shell plane forced
/// (`RDEPLOY_FILE_PLANE=shell`). Both hosts end up with the same files, modes and owners, a
/// second run changes nothing on either, and on the SFTP host it sends fewer commands: the
/// checks of whole files were answered without a program.
#[test]
fn files_go_over_sftp_and_the_forced_shell_plane_leaves_the_same_hosts() {
    need_sudo();
    let fleet = Fleet::start(2);
    let sb = sandbox(
        &fleet,
        r#"- hosts: all
  gather_facts: no
  vars:
    rel: /srv/rel/{{ v }}
  tasks:
    - file: { path: "{{ rel }}", state: directory }
    - copy: { content: "payload {{ v }}\n", dest: "{{ rel }}/payload", mode: "0640" }
    - template: { src: app.conf.j2, dest: "{{ rel }}/app.conf" }
    - lineinfile: { path: /srv/rel/env, regexp: "^mode=", line: mode=production, create: true }
    - file: { src: "{{ rel }}", dest: /srv/rel/current, state: link }
    - stat: { path: "{{ rel }}/payload", checksum_algorithm: sha256 }
      register: st
    - copy:
        dest: "{{ rel }}/stat"
        content: "{{ st.stat.checksum }} {{ st.stat.mode }} {{ st.stat.size }} {{ st.stat.pw_name }} {{ st.stat.isreg }} {{ st.stat.readable }} {{ st.stat.nlink }}\n"
    - file: { path: "{{ rel }}/stat", mode: "0600" }
    - copy: { src: big.bin, dest: /etc/rdeploy-test/big.bin, mode: "0600" }
      become: yes
    - copy: { content: "{{ v }}\n", dest: /etc/rdeploy-test/VERSION, owner: root, group: root }
      become: yes
"#,
    );
    sb.write("app.conf.j2", "version={{ v }}\n");
    // Above the size the plane reads back on the controller: checked on the host instead.
    let big: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(sb.path().join("big.bin"), &big).unwrap();
    let on = |host: &str, shell: bool, v: &str| -> Run {
        let mut c = sb.rdeploy(&["run", "pb.yaml", "-i", "inv.yaml", "--output", "json"]);
        // Each check in its own turn (no read-ahead batch): what each plane costs shows.
        c.args(["--limit", host, "-e", &format!("v={v}")])
            .args(["-e", "rdeploy_read_ahead=false"])
            .env_remove("SSH_AUTH_SOCK")
            .env("RDEPLOY_LOG", "rdeploy=info")
            .timeout(Duration::from_secs(120));
        // The SFTP host is that whatever the suite's own setting (scripts/test.sh runs this
        // file a second time with the shell plane forced).
        if shell {
            c.env("RDEPLOY_FILE_PLANE", "shell");
        } else {
            c.env_remove("RDEPLOY_FILE_PLANE");
        }
        Run::from(c.output().expect("run rdeploy"))
    };
    let (sftp, shell) = (fleet.host(0), fleet.host(1));
    let (mut firsts, mut seconds) = (Vec::new(), Vec::new());
    for (h, forced) in [(sftp, false), (shell, true)] {
        let first = on(h.name(), forced, "1");
        assert_eq!(first.code, 0, "{}", first.explain());
        firsts.push((commands_per_host(&first, h.name()), first.explain()));
        assert_eq!(
            first.stderr.contains("file plane: sftp"),
            !forced,
            "{}",
            first.stderr
        );
        // The become tasks' questions went to a server of their own, run through sudo.
        assert_eq!(
            first.stderr.contains("plane=\"sudo -u root sftp-server\""),
            !forced,
            "{}",
            first.stderr
        );
        let second = on(h.name(), forced, "1");
        assert_eq!(second.code, 0, "{}", second.explain());
        assert_eq!(second.recap(h.name())["changed"], 0, "{}", second.explain());
        seconds.push((commands_per_host(&second, h.name()), second.explain()));
        let upgrade = on(h.name(), forced, "2");
        assert_eq!(upgrade.code, 0, "{}", upgrade.explain());
    }
    use std::os::unix::fs::MetadataExt;
    for path in [
        "/srv/rel/1/payload",
        "/srv/rel/2/payload",
        "/srv/rel/2/app.conf",
        "/srv/rel/2/stat",
        "/srv/rel/env",
        "/etc/rdeploy-test/big.bin",
        "/etc/rdeploy-test/VERSION",
    ] {
        let (a, b) = (sftp.path(path), shell.path(path));
        let (ma, mb) = (
            std::fs::metadata(&a).unwrap(),
            std::fs::metadata(&b).unwrap(),
        );
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{path}"
        );
        assert_eq!(
            (ma.mode(), ma.uid(), ma.gid()),
            (mb.mode(), mb.uid(), mb.gid()),
            "{path}"
        );
    }
    assert_eq!(
        std::fs::read(sftp.path("/etc/rdeploy-test/big.bin")).unwrap(),
        big
    );
    let version = std::fs::metadata(sftp.path("/etc/rdeploy-test/VERSION")).unwrap();
    assert_eq!((version.uid(), version.mode() & 0o7777), (0, 0o644));
    assert_eq!(
        std::fs::read_link(sftp.path("/srv/rel/current")).unwrap(),
        Path::new("/srv/rel/2")
    );
    // The backups, the writes and the changes to folders and links go over sftp too.
    assert!(
        firsts[0].0 * 2 < firsts[1].0,
        "first run: {} commands over sftp, {} with the shell plane\n{}\n{}",
        firsts[0].0,
        firsts[1].0,
        firsts[0].1,
        firsts[1].1
    );
    assert!(
        seconds[0].0 < seconds[1].0,
        "second run: {} commands over sftp, {} with the shell plane\n{}\n{}",
        seconds[0].0,
        seconds[1].0,
        seconds[0].1,
        seconds[1].1
    );
    // No temporary file is left next to what was written.
    for h in [sftp, shell] {
        for dir in ["/srv/rel/2", "/etc/rdeploy-test"] {
            let left: Vec<String> = std::fs::read_dir(h.path(dir))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("rdeploy-tmp"))
                .collect();
            assert!(left.is_empty(), "{dir}: {left:?}");
        }
    }
}

/// A host whose sshd has no `sftp` subsystem gets its files through shell programs: the run
/// works the same, and the log says which plane serves it.
#[test]
fn a_host_without_the_sftp_subsystem_gets_its_files_through_shell_programs() {
    let fleet = Fleet::builder().no_sftp().start();
    let h = fleet.host(0);
    let sb = sandbox(
        &fleet,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - file: { path: /srv/app, state: directory }\n    - copy: { content: \"hello\\n\", dest: /srv/app/hello, mode: \"0640\" }\n    - slurp: { src: /srv/app/hello }\n      register: got\n    - assert: { that: [\"got.content | b64decode == 'hello\\n'\"] }\n",
    );
    for round in 0..2 {
        let r = Run::from(
            sb.rdeploy(&["run", "pb.yaml", "-i", "inv.yaml", "--output", "json", "-v"])
                .env_remove("SSH_AUTH_SOCK")
                .env_remove("RDEPLOY_FILE_PLANE")
                .env("RDEPLOY_LOG", "rdeploy=info")
                .timeout(Duration::from_secs(120))
                .output()
                .expect("run rdeploy"),
        );
        assert_eq!(r.code, 0, "{}", r.explain());
        assert!(
            r.stderr.contains("file plane: shell programs"),
            "{}",
            r.stderr
        );
        // `-v` says which plane serves the host, and why.
        let plane = r.events.iter().find(|e| e["event"] == "file_plane");
        let plane = plane.map(|e| e["plane"].as_str().unwrap_or_default().to_string());
        assert!(
            plane
                .as_deref()
                .is_some_and(|p| p.starts_with("shell programs (sftp subsystem")),
            "{plane:?}"
        );
        assert_eq!(
            r.recap(h.name())["changed"],
            if round == 0 { 2 } else { 0 },
            "{}",
            r.explain()
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let f = h.path("/srv/app/hello");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "hello\n");
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
        0o640
    );
}

/// Forwards TCP connections on `listener` to `to`, each in threads of its own, until the test
/// process ends (the listener's thread holds it).
fn forward(listener: std::net::TcpListener, to: std::net::SocketAddr) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(a) = conn else { continue };
            let Ok(b) = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(5)) else {
                continue;
            };
            let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
                continue;
            };
            let pump = |mut from: std::net::TcpStream, mut into: std::net::TcpStream| {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut into);
                    let _ = into.shutdown(std::net::Shutdown::Both);
                });
            };
            pump(a, b2);
            pump(b, a2);
        }
    });
}

#[test]
fn wait_for_connection_waits_until_the_host_answers_and_fails_after_its_timeout() {
    let fleet = Fleet::start(1);
    let h = fleet.host(0);
    // The host is reached through a port where nothing listens until the host "boots".
    let port = support::fleet::free_port();
    let sb = Sandbox::new();
    let kh = sb.path().join("known_hosts");
    let known = h.known_hosts_lines().replace(
        &format!("[{}]:{}", h.addr(), h.port()),
        &format!("[127.0.0.1]:{port}"),
    );
    std::fs::write(&kh, known).unwrap();
    let mut vars = fleet.host_vars(h);
    vars.insert("ansible_host".into(), json!("127.0.0.1"));
    vars.insert("ansible_port".into(), json!(port));
    vars.insert("ansible_ssh_extra_args".into(), known_hosts_arg(&kh));
    sb.write(
        "inv.yaml",
        inventory("all", vec![("late".into(), vars)], Value::Null),
    );
    let playbook = "- hosts: all\n  gather_facts: false\n  tasks:\n    - wait_for_connection: { timeout: 30, sleep: 1, connect_timeout: 3 }\n      register: w\n    - command: echo up\n      register: up\n";
    sb.write("pb.yaml", playbook);

    // Under --check it is skipped, as in Ansible, and nothing is reached.
    let r = run(&sb, "pb.yaml", &["--check"]);
    assert_eq!(r.results("late")[0]["status"], "skipped", "{}", r.explain());

    // With nothing listening for 3 s, it keeps trying; then the host answers.
    let to = std::net::SocketAddr::from((h.addr(), h.port()));
    let boot = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the late port");
        forward(l, to);
    });
    let started = Instant::now();
    let r = run(&sb, "pb.yaml", &[]);
    boot.join().unwrap();
    assert_eq!(r.code, 0, "{}", r.explain());
    let results = r.results("late");
    assert_eq!(results[0]["status"], "ok", "{}", r.explain());
    let elapsed = results[0]["result"]["elapsed"].as_u64().unwrap_or(0);
    assert!(
        (2..30).contains(&elapsed),
        "elapsed {elapsed}: {}",
        r.explain()
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(results[1]["result"]["stdout"], "up", "{}", r.explain());

    // A host that never answers fails the task after `timeout`, with Ansible's words.
    let sb2 = Sandbox::new();
    let dead = support::fleet::free_port();
    let mut vars = fleet.host_vars(h);
    vars.insert("ansible_host".into(), json!("127.0.0.1"));
    vars.insert("ansible_port".into(), json!(dead));
    sb2.write(
        "inv.yaml",
        inventory("all", vec![("never".into(), vars)], Value::Null),
    );
    sb2.write(
        "pb.yaml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - wait_for_connection: { timeout: 2, sleep: 1 }\n",
    );
    let r = run(&sb2, "pb.yaml", &[]);
    assert_eq!(r.code, 2, "{}", r.explain());
    let last = r.last("never");
    assert_eq!(last["status"], "failed", "{last}");
    let msg = last["msg"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("timed out waiting for ping module test: "),
        "{last}"
    );
    assert!(last["result"]["elapsed"].as_u64() >= Some(2), "{last}");
}
