//! Facts end to end on the fleet: what `gather_facts`/`setup` gathers on a real sshd host,
//! compared with what ansible-core's own setup module reports on the same host (the oracle
//! is `ansible` beside `$RDEPLOY_ANSIBLE_PLAYBOOK`, which `scripts/test.sh` sets); one round
//! trip per host; `gather_subset` and `filter`; other hosts' facts through `hostvars`;
//! `delegate_facts`; a fact rdeploy does not gather named as such at run time.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Map, Value, json};
use support::Sandbox;
use support::fleet::Fleet;
use support::oracle::fleet_sandbox;

/// `ansible`, beside the oracle `ansible-playbook`.
fn ansible() -> PathBuf {
    support::oracle::ansible_playbook().with_file_name("ansible")
}

/// `rdeploy run PLAYBOOK --output json`: the JSON events, after checking the exit code.
fn run(sb: &Sandbox, playbook: &str, code: i32) -> Vec<Value> {
    sb.write("pb.yaml", playbook);
    let out = sb
        .rdeploy(&["run", "pb.yaml", "-i", "inv.yaml", "--output", "json"])
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run rdeploy");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The result events of `host`, in order.
fn results(events: &[Value], host: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["event"] == "result" && e["result"]["host"] == host)
        .map(|e| e["result"].clone())
        .collect()
}

/// Ansible's setup module on `host`, through the same inventory: its `ansible_facts`.
fn ansible_setup(sb: &Sandbox, host: &str) -> Map<String, Value> {
    let out = Command::new(ansible())
        .current_dir(sb.path())
        .args([host, "-i", "inv.yaml", "-m", "setup"])
        .env("ANSIBLE_HOST_KEY_CHECKING", "True")
        .env("ANSIBLE_PYTHON_INTERPRETER", "auto_silent")
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("run ansible");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ansible -m setup failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = stdout
        .split_once("=> ")
        .map(|(_, j)| j)
        .expect("ansible's `HOST | SUCCESS => {...}`");
    let v: Value = serde_json::from_str(json).expect("ansible's JSON");
    v["ansible_facts"]
        .as_object()
        .cloned()
        .expect("ansible_facts")
}

/// The facts the issue asks for, which must all be gathered (names without `ansible_`).
const ASKED: &[&str] = &[
    "hostname",
    "fqdn",
    "nodename",
    "domain",
    "os_family",
    "distribution",
    "distribution_version",
    "distribution_major_version",
    "distribution_release",
    "system",
    "kernel",
    "architecture",
    "machine",
    "userspace_bits",
    "pkg_mgr",
    "service_mgr",
    "python",
    "default_ipv4",
    "default_ipv6",
    "all_ipv4_addresses",
    "all_ipv6_addresses",
    "interfaces",
    "memtotal_mb",
    "memfree_mb",
    "swaptotal_mb",
    "processor_count",
    "processor_cores",
    "processor_vcpus",
    "mounts",
    "date_time",
    "env",
    "user_id",
    "user_dir",
    "user_shell",
    "selinux",
    "virtualization_type",
    "virtualization_role",
    "lsb",
    "dns",
];

/// Values that move by themselves between two gatherings are compared by what does not move.
fn steady(name: &str, v: &Value) -> Value {
    let pick = |v: &Value, keys: &[&str]| -> Value {
        keys.iter()
            .map(|k| (k.to_string(), v.get(*k).cloned().unwrap_or(Value::Null)))
            .collect::<Map<String, Value>>()
            .into()
    };
    let sorted = |v: &Value| {
        let mut a: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| x.to_string())
            .collect();
        a.sort();
        json!(a)
    };
    match name {
        "date_time" => {
            let mut keys: Vec<&String> = v
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            keys.sort();
            json!({
                "keys": keys,
                "fixed": pick(v, &["year", "month", "day", "weekday", "tz", "tz_dst", "tz_offset"]),
            })
        }
        "memfree_mb" | "swapfree_mb" | "uptime_seconds" => json!("moves"),
        "memory_mb" => json!([v["real"]["total"], v["swap"]["total"]]),
        "mounts" => {
            let mut m: Vec<Value> = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    pick(
                        m,
                        &[
                            "mount",
                            "device",
                            "fstype",
                            "options",
                            "dump",
                            "passno",
                            "uuid",
                            "block_size",
                            "block_total",
                            "size_total",
                            "inode_total",
                        ],
                    )
                })
                .collect();
            m.sort_by_key(|x| x.to_string());
            json!(m)
        }
        // The process's own variables differ between any two commands.
        "env" => {
            let mut e = v.as_object().cloned().unwrap_or_default();
            // ... and so do the connection's: its ports, and what Ansible's pty (`-tt`) and
            // the OpenSSH client's `SendEnv LC_*` add.
            for k in [
                "_",
                "PWD",
                "OLDPWD",
                "SHLVL",
                "SSH_CLIENT",
                "SSH_CONNECTION",
                "SSH_TTY",
                "TERM",
                "LC_CTYPE",
            ] {
                e.remove(k);
            }
            json!(e)
        }
        "interfaces" | "virtualization_tech_guest" | "virtualization_tech_host" => sorted(v),
        _ => v.clone(),
    }
}

#[test]
fn setup_gathers_what_ansibles_setup_module_reports_on_the_same_host() {
    let fleet = Fleet::start(1);
    let sb = fleet_sandbox(&fleet);
    let host = fleet.host(0).name().to_string();
    // The second gathering runs on the open connection: its time is the round trip alone.
    let events = run(&sb, "- hosts: all\n  tasks:\n    - setup:\n", 0);
    let both = results(&events, &host);
    assert_eq!(both.len(), 2, "{events:#?}");
    for (r, what) in both
        .iter()
        .zip(["with connecting", "on the open connection"])
    {
        assert_eq!(r["commands"], 1, "gathering is one round trip");
        eprintln!(
            "gathering on {host} {what}: {} command, {:.3} s",
            r["commands"], r["duration"]
        );
    }
    let gathered = both[1].clone();
    let ours = gathered["result"]["ansible_facts"]
        .as_object()
        .cloned()
        .expect("ansible_facts in the result");
    let started = std::time::Instant::now();
    let theirs = ansible_setup(&sb, &host);
    eprintln!(
        "ansible -m setup on {host}: {:.3} s (the whole ad-hoc command)",
        started.elapsed().as_secs_f64()
    );
    for name in ASKED {
        // Registered as Ansible's setup returns them: with the `ansible_` prefix.
        assert!(
            ours.contains_key(&format!("ansible_{name}")),
            "rdeploy did not gather {name}"
        );
    }
    let mut differ = Vec::new();
    for (k, v) in &ours {
        let short = k.strip_prefix("ansible_").unwrap_or(k);
        match theirs.get(k) {
            None => differ.push(format!("{k}: Ansible has no {k}")),
            Some(a) if steady(short, a) != steady(short, v) => differ.push(format!(
                "{k}:\n  ansible: {}\n  rdeploy: {}",
                steady(short, a),
                steady(short, v)
            )),
            Some(_) => {}
        }
    }
    assert!(
        differ.is_empty(),
        "facts that differ from Ansible's:\n{}",
        differ.join("\n")
    );
}

#[test]
fn gather_subset_filter_hostvars_and_delegate_facts_work_across_hosts() {
    let fleet = Fleet::start(2);
    let sb = fleet_sandbox(&fleet);
    let (h0, h1) = (fleet.host(0).name(), fleet.host(1).name());
    let pb = format!(
        "- hosts: all\n  gather_subset: ['!all', '!min', network]\n  tasks:\n\
         \x20   - copy:\n        dest: /srv/facts\n        content: |\n\
         \x20         {{{{ ansible_default_ipv4 is defined }}}} {{{{ ansible_hostname is defined }}}} {{{{ ansible_memtotal_mb is defined }}}}\n\
         \x20         {{{{ hostvars['{h1}']['ansible_facts']['interfaces'] | length > 0 }}}}\n\
         - hosts: {h0}\n  gather_facts: false\n  tasks:\n\
         \x20   - setup:\n        filter: ['ansible_user_*', 'kernel']\n      delegate_to: \"{{{{ item }}}}\"\n      delegate_facts: true\n      loop: ['{h1}']\n\
         - hosts: {h1}\n  gather_facts: false\n  tasks:\n\
         \x20   - copy:\n        dest: /srv/delegated\n        content: \"{{{{ ansible_user_dir }}}} {{{{ ansible_kernel }}}} {{{{ ansible_hostname is defined }}}}\\n\"\n"
    );
    let events = run(&sb, &pb, 0);
    let read = |i: usize, p: &str| {
        std::fs::read_to_string(fleet.host(i).path(p))
            .unwrap_or_else(|e| panic!("{p}: {e}\n{events:#?}"))
    };
    assert_eq!(read(0, "/srv/facts"), "True False False\nTrue\n");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(
        read(1, "/srv/delegated"),
        format!("/home/{} {} False\n", support::fleet::USER, kernel.trim())
    );
}

#[test]
fn a_fact_rdeploy_does_not_gather_fails_the_host_naming_it_at_run_time() {
    let fleet = Fleet::start(1);
    let sb = fleet_sandbox(&fleet);
    let host = fleet.host(0).name().to_string();
    // A key computed from a registered value is only known on the host.
    let events = run(
        &sb,
        "- hosts: all\n  tasks:\n    - set_fact:\n        which: bios_date\n    - debug:\n        msg: \"{{ ansible_facts[which] }}\"\n",
        2,
    );
    let last = results(&events, &host).pop().expect("a result");
    assert_eq!(last["status"], "failed", "{last:#}");
    let msg = last.to_string();
    assert!(
        msg.contains("fact 'bios_date' is not gathered by rdeploy"),
        "{last:#}"
    );
}

#[test]
fn facts_are_gathered_as_the_become_user_and_with_the_plays_environment() {
    assert!(
        support::fleet::enable_sudo(),
        "sudo is required: scripts/test.sh --install-only installs it"
    );
    let fleet = Fleet::start(1);
    let sb = fleet_sandbox(&fleet);
    let host = fleet.host(0).name().to_string();
    let events = run(
        &sb,
        "- hosts: all\n  become: yes\n  environment:\n    DEPLOY_STAGE: blue\n  tasks:\n    - debug:\n        msg: \"{{ ansible_user_id }} {{ ansible_user_uid }} {{ ansible_env.DEPLOY_STAGE }}\"\n",
        0,
    );
    let last = results(&events, &host).pop().expect("a result");
    assert_eq!(last["result"]["msg"], "root 0 blue", "{last:#}");
}
