//! End to end on the sshd fleet: `apt`, `package` and `dnf` (`yum`) beside ansible-playbook
//! (the oracle `$RDEPLOY_ANSIBLE_PLAYBOOK`) on the same Debian host, under `--check` (the fleet
//! shares the machine's dpkg database and apt cache, and tests must not install packages):
//! each task reports the status Ansible reports, installed and absent packages, `autoremove`
//! and `only_upgrade` with installed names, `purge` of an absent package, the whole-system
//! upgrade of `name: "*"`, `package: use:` and the arguments the picked manager refuses, and
//! `yum` on a host without dnf.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::Sandbox;
use support::fleet::{Fleet, enable_sudo};
use support::oracle::{ansible_plain, fleet_sandbox_with};

/// Tasks named so that both tools' reports can be matched; every one is read-only under
/// `--check`. `git` is installed on the test machine and not essential.
const PLAYBOOK: &str = r#"
- hosts: all
  gather_facts: no
  become: true
  tasks:
    - name: installed
      apt: { name: coreutils }
    - name: removal of an installed package
      apt: { name: git, state: absent, purge: true, autoremove: true }
    - name: absent package with purge
      apt: { name: rdeploy-e2e-no-such-package, state: absent, purge: true }
    - name: autoremove with an installed name
      apt: { name: coreutils, autoremove: true, dpkg_options: force-confold, lock_timeout: 30, fail_on_autoremove: true }
    - name: only_upgrade of an installed name
      apt: { name: coreutils, only_upgrade: true, force: false, policy_rc_d: 101 }
    - name: everything to the latest
      apt: { name: "*", state: latest, force_apt_get: true, allow_unauthenticated: false }
    - name: fresh cache
      apt: { update_cache: true, cache_valid_time: 315360000 }
    - name: package forced to apt
      package: { name: coreutils, use: apt, install_recommends: false }
    - name: dnf argument on apt
      package: { name: coreutils, use: apt, enablerepo: epel }
      ignore_errors: true
    - name: detected apt refuses dnf argument
      package: { name: coreutils, disable_gpg_check: true }
      ignore_errors: true
    - name: yum without dnf
      yum: { name: epel-release, security: true }
      ignore_errors: true
"#;

/// Every task name of [`PLAYBOOK`], in order.
fn task_names() -> Vec<String> {
    PLAYBOOK
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- name: "))
        .map(str::to_string)
        .collect()
}

/// rdeploy's (task name, status) pairs.
fn rdeploy(sb: &Sandbox) -> Vec<(String, String)> {
    let out = sb
        .rdeploy(&[
            "run", "pb.yaml", "-i", "inv.yaml", "--check", "--output", "json",
        ])
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(300))
        .output()
        .expect("run rdeploy");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut task = String::new();
    let mut seen = Vec::new();
    for e in stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        match e["event"].as_str() {
            Some("task") => task = e["name"].as_str().unwrap_or_default().to_string(),
            Some("result") => seen.push((
                task.clone(),
                e["result"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )),
            _ => {}
        }
    }
    seen
}

/// ansible-playbook's (task name, status) pairs.
fn ansible(sb: &Sandbox) -> Vec<(String, String)> {
    let out = ansible_plain(sb, &["--check"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut task = String::new();
    let mut seen = Vec::new();
    for l in stdout.lines() {
        if let Some(rest) = l.strip_prefix("TASK [") {
            task = rest.split(']').next().unwrap_or_default().to_string();
        } else if let Some((status, _)) = l.split_once(": [") {
            let status = match status {
                "fatal" => "failed",
                s @ ("ok" | "changed" | "skipping") => s,
                _ => continue,
            };
            seen.push((task.clone(), status.to_string()));
        }
    }
    assert!(!seen.is_empty(), "{stdout}");
    seen
}

#[test]
fn apt_package_and_yum_report_what_ansible_reports_under_check() {
    assert!(
        enable_sudo(),
        "sudo is missing: scripts/test.sh installs it"
    );
    let fleet = Fleet::start(1);
    let sb = fleet_sandbox_with(&fleet, PLAYBOOK);
    let mine = rdeploy(&sb);
    let names = task_names();
    assert_eq!(
        mine.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(),
        names,
        "{mine:?}"
    );
    let status = |t: &str| {
        mine.iter()
            .find(|(n, _)| n == t)
            .map(|(_, s)| s.as_str())
            .unwrap_or_default()
    };
    assert_eq!(status("installed"), "ok");
    assert_eq!(status("removal of an installed package"), "changed");
    assert_eq!(status("absent package with purge"), "ok");
    assert_eq!(status("autoremove with an installed name"), "ok");
    assert_eq!(status("dnf argument on apt"), "failed");
    assert_eq!(status("yum without dnf"), "failed");
    assert_eq!(mine, ansible(&sb), "rdeploy, then ansible-playbook");
}
