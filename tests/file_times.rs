//! End to end on the sshd fleet: `file`'s `modification_time`/`access_time` and `follow`.
//! A fixed time is a change once, then ok; `--check` changes nothing; `follow: no` on a link
//! fails as Ansible says; SELinux context parts on a host without SELinux are ignored (ok,
//! no `secontext`), as Ansible ignores them; ansible-playbook (the oracle `$RDEPLOY_ANSIBLE_PLAYBOOK`) reports the
//! same statuses on the same host.

mod support;

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use serde_json::{Value, json};
use support::Sandbox;
use support::fleet::Fleet;
use support::oracle::{ansible_plain, fleet_sandbox_with};

const PLAYBOOK: &str = r#"
- hosts: all
  gather_facts: no
  tasks:
    - file:
        path: /srv/times/f
        modification_time: "202401020304.05"
        access_time: "2023-12-31 23:59"
        access_time_format: "%Y-%m-%d %H:%M"
    - file: { path: /srv/times/ln, state: directory, follow: false }
      ignore_errors: true
    - file: { path: /srv/times/f, setype: httpd_sys_content_t, seuser: _default, selevel: s0 }
"#;

/// Each task's status and message, from `rdeploy run --output json`.
fn rdeploy(sb: &Sandbox, extra: &[&str]) -> Vec<(String, Value)> {
    let args = [
        &["run", "pb.yaml", "-i", "inv.yaml", "--output", "json"],
        extra,
    ]
    .concat();
    let out = sb
        .rdeploy(&args)
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run rdeploy");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "result")
        .map(|e| {
            (
                e["result"]["status"].as_str().unwrap_or("").to_string(),
                e["result"]["result"]["msg"].clone(),
            )
        })
        .collect()
}

/// Each task's status and message, from ansible-playbook's output.
fn ansible(sb: &Sandbox) -> Vec<(String, Value)> {
    let out = ansible_plain(sb, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    stdout
        .lines()
        .filter(|l| l.starts_with("ok:") || l.starts_with("changed:") || l.starts_with("fatal:"))
        .map(|l| {
            let status = l.split(':').next().unwrap_or("").replace("fatal", "failed");
            let msg = l
                .split_once("=> ")
                .and_then(|(_, j)| serde_json::from_str::<Value>(j).ok())
                .map(|v| v["msg"].clone())
                .unwrap_or(Value::Null);
            (status, msg)
        })
        .collect()
}

#[test]
fn file_times_and_follow_behave_as_ansibles() {
    let fleet = Fleet::start(1);
    let dir = fleet.host(0).path("/srv/times");
    // Made by the host's user: only a file's owner may set its times.
    let made = fleet
        .ssh(
            fleet.host(0),
            "mkdir -p /srv/times/real && echo x > /srv/times/f && ln -s real /srv/times/ln",
        )
        .output()
        .expect("ssh");
    assert!(made.status.success(), "{made:?}");
    let sb = fleet_sandbox_with(&fleet, PLAYBOOK);
    let times = || {
        let m = std::fs::metadata(dir.join("f")).expect("stat");
        (m.atime(), m.mtime())
    };
    let before = times();
    // The host's time zone is the machine's, as is the test's.
    let local = |y, mo, d, h, mi, s| {
        chrono::NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|x| x.and_hms_opt(h, mi, s))
            .and_then(|t| t.and_local_timezone(chrono::Local).single())
            .map(|t| t.timestamp())
            .expect("a local time")
    };
    let want = (local(2023, 12, 31, 23, 59, 0), local(2024, 1, 2, 3, 4, 5));
    let refused = json!(format!("/srv/times/ln already exists as a link"));

    let ran = rdeploy(&sb, &["--check"]);
    assert_eq!(ran[0].0, "changed", "{ran:?}");
    assert_eq!(times(), before, "--check changed the times");

    let ran = rdeploy(&sb, &[]);
    assert_eq!(ran[0].0, "changed", "{ran:?}");
    assert_eq!(ran[1], ("failed".to_string(), refused.clone()));
    assert_eq!(ran[2].0, "ok", "{ran:?}");
    assert_eq!(times(), want);
    let ran = rdeploy(&sb, &[]);
    assert_eq!(ran[0].0, "ok", "{ran:?}");

    // ansible-playbook: in sync with what rdeploy set, the same refusal; from other times, a
    // change to the same times.
    let theirs = ansible(&sb);
    assert_eq!(theirs[0].0, "ok", "{theirs:?}");
    assert_eq!(theirs[1], ("failed".to_string(), refused));
    assert_eq!(theirs[2].0, "ok", "{theirs:?}");
    let touched = fleet
        .ssh(fleet.host(0), "echo y > /srv/times/f")
        .output()
        .expect("ssh");
    assert!(touched.status.success(), "{touched:?}");
    let theirs = ansible(&sb);
    assert_eq!(theirs[0].0, "changed", "{theirs:?}");
    assert_eq!(times(), want);
    let ran = rdeploy(&sb, &[]);
    assert_eq!(ran[0].0, "ok", "{ran:?}");
}
