//! Helpers shared by the end-to-end tests that run rdeploy, and ansible-playbook as the oracle,
//! against the SSH fleet: a sandbox with the fleet's inventory, `rdeploy run` / `rollback` with
//! JSON events, and ansible-playbook set up to reach the same hosts.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::Sandbox;
use super::fleet::{Fleet, Host, USER};

/// ansible-playbook 2.19: `RDEPLOY_ANSIBLE_PLAYBOOK`, else the repository's
/// `target/ansible-venv` if it has one.
pub fn ansible_playbook() -> PathBuf {
    if let Some(pb) = std::env::var_os("RDEPLOY_ANSIBLE_PLAYBOOK") {
        return PathBuf::from(pb);
    }
    let venv = super::repo().join("target/ansible-venv/bin/ansible-playbook");
    if venv.exists() {
        return venv;
    }
    panic!(
        "RDEPLOY_ANSIBLE_PLAYBOOK is not set: this test compares rdeploy with ansible-playbook; \
         run it through ./scripts/test.sh, or set the variable to ansible-playbook 2.19"
    );
}

/// [`Fleet::host_vars`] of `host` plus `ansible_ssh_extra_args` naming the fleet's
/// known_hosts, so that ssh (rdeploy's and ansible-playbook's) trusts the host.
pub fn trusted_host_vars(fleet: &Fleet, host: &Host) -> Map<String, Value> {
    let mut v = fleet.host_vars(host);
    v.insert(
        "ansible_ssh_extra_args".into(),
        json!(format!(
            "-o UserKnownHostsFile={}",
            fleet.known_hosts().display()
        )),
    );
    v
}

/// Writes `inv.yaml` into `sb` with each of `hosts` (name, variables) under `all.hosts`.
pub fn write_inventory(
    sb: &Sandbox,
    hosts: impl IntoIterator<Item = (String, Map<String, Value>)>,
) {
    let hosts: Map<String, Value> = hosts
        .into_iter()
        .map(|(name, vars)| (name, Value::Object(vars)))
        .collect();
    let inv = json!({ "all": { "hosts": hosts } });
    sb.write(
        "inv.yaml",
        serde_saphyr::to_string(&inv).expect("inventory"),
    );
}

/// A sandbox whose `inv.yaml` lists every fleet host with [`trusted_host_vars`].
pub fn fleet_sandbox(fleet: &Fleet) -> Sandbox {
    let sb = Sandbox::new();
    write_inventory(
        &sb,
        fleet
            .hosts()
            .iter()
            .map(|h| (h.name().to_string(), trusted_host_vars(fleet, h))),
    );
    sb
}

/// [`fleet_sandbox`] with `playbook` as `pb.yaml`.
pub fn fleet_sandbox_with(fleet: &Fleet, playbook: &str) -> Sandbox {
    let sb = fleet_sandbox(fleet);
    sb.write("pb.yaml", playbook);
    sb
}

/// One `rdeploy ... --output json` invocation: its exit code, JSON events and all its text.
pub struct JsonRun {
    pub code: i32,
    pub events: Vec<Value>,
    pub text: String,
}

impl JsonRun {
    /// The recap counters of `host`.
    pub fn recap(&self, host: &str) -> Value {
        self.events
            .iter()
            .rev()
            .find(|e| e["event"] == "recap")
            .map(|e| e["hosts"][host].clone())
            .unwrap_or(Value::Null)
    }

    /// The status of each task result of `host`, in order.
    pub fn statuses(&self, host: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["event"] == "result" && e["result"]["host"] == host)
            .map(|e| {
                e["result"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    /// The run id of the run that ended.
    pub fn run_id(&self) -> String {
        self.events
            .iter()
            .find(|e| e["event"] == "run_end")
            .and_then(|e| e["run_id"].as_str())
            .expect("a run id")
            .to_string()
    }

    /// The recap's `changed` count of `host` (-1 when it has none).
    pub fn changed(&self, host: &str) -> i64 {
        self.recap(host)["changed"].as_i64().unwrap_or(-1)
    }
}

/// `rdeploy ARGS -i inv.yaml --output json` in `sb` with `env` set, without an ssh agent.
pub fn rdeploy_json(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> JsonRun {
    let mut cmd = sb.rdeploy(args);
    cmd.args(["-i", "inv.yaml", "--output", "json"])
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(180));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run rdeploy");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    JsonRun {
        code: out.status.code().unwrap_or(-1),
        events: stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        text: format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// `rdeploy run pb.yaml` with `extra` arguments and `env`; asserts it exits 0.
pub fn play(sb: &Sandbox, extra: &[&str], env: &[(&str, &str)]) -> JsonRun {
    let mut args = vec!["run", "pb.yaml"];
    args.extend_from_slice(extra);
    let r = rdeploy_json(sb, &args, env);
    assert_eq!(r.code, 0, "{}", r.text);
    r
}

/// `rdeploy rollback RUN --no-lock`; asserts it exits 0.
pub fn rollback_run(sb: &Sandbox, run: &JsonRun) {
    let id = run.run_id();
    let r = rdeploy_json(sb, &["rollback", &id, "--no-lock"], &[]);
    assert_eq!(r.code, 0, "{}", r.text);
}

/// The fleet user's uid and primary gid (the hosts' login user, on this machine).
pub fn user_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let e: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with(&format!("{USER}:")))
        .expect("the fleet's user")
        .split(':')
        .collect();
    (e[2].parse().expect("a uid"), e[3].parse().expect("a gid"))
}

/// Each task result's status in rdeploy's JSON events or the compat callback's output, a
/// failed or unreachable one as `failed: MSG`.
pub fn statuses(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "result")
        .map(|e| match e["result"]["status"].as_str().unwrap_or("") {
            "failed" | "unreachable" => format!("failed: {}", e["result"]["msg"]),
            s => s.to_string(),
        })
        .collect()
}

/// Writes `playbook` as `pb.yaml` and runs `rdeploy run pb.yaml --output json EXTRA`; asserts
/// it exits 0 or 2 (a failed host); returns (the run id, each task's status as [`statuses`]).
pub fn run_statuses(sb: &Sandbox, playbook: &str, extra: &[&str]) -> (String, Vec<String>) {
    sb.write("pb.yaml", playbook);
    let mut args = vec!["run", "pb.yaml", "-i", "inv.yaml", "--output", "json"];
    args.extend_from_slice(extra);
    let out = sb
        .rdeploy(&args)
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run rdeploy");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "run_end")
        .and_then(|e| e["run_id"].as_str().map(str::to_string))
        .unwrap_or_default();
    (id, statuses(&stdout))
}

/// `rdeploy rollback ID -i inv.yaml EXTRA`; asserts it succeeds.
pub fn rollback_id(sb: &Sandbox, id: &str, extra: &[&str]) {
    let mut args = vec!["rollback", id, "-i", "inv.yaml"];
    args.extend_from_slice(extra);
    let out = sb
        .rdeploy(&args)
        .env_remove("SSH_AUTH_SOCK")
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run rdeploy rollback");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ansible-playbook in `sb`, with its own HOME and temp folder under `sb`, the compat results
/// callback (one JSON event a line, as rdeploy's), pipelining, and no ssh agent or ControlMaster.
pub fn ansible_compat(sb: &Sandbox) -> Command {
    let home = sb.path().join("ansible-home");
    std::fs::create_dir_all(&home).expect("create ansible's HOME");
    let mut cmd = Command::new(ansible_playbook());
    cmd.current_dir(sb.path())
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("ANSIBLE_CONFIG")
        .env("HOME", &home)
        .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
        .env(
            "ANSIBLE_CALLBACK_PLUGINS",
            super::repo().join("tests/compat/callback"),
        )
        .env("ANSIBLE_STDOUT_CALLBACK", "compat_results")
        .env("ANSIBLE_PIPELINING", "true")
        .env(
            "ANSIBLE_SSH_ARGS",
            "-o ControlMaster=no -o ControlPersist=no",
        );
    cmd
}

/// Writes `playbook` as `pb.yaml` and runs [`ansible_compat`] `pb.yaml -i inv.yaml EXTRA`;
/// asserts it succeeds; returns each task's status as [`statuses`].
pub fn ansible_statuses(sb: &Sandbox, playbook: &str, extra: &[&str]) -> Vec<String> {
    sb.write("pb.yaml", playbook);
    let out = ansible_compat(sb)
        .args(["pb.yaml", "-i", "inv.yaml"])
        .args(extra)
        .output()
        .expect("run ansible-playbook");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    statuses(&stdout)
}

/// ansible-playbook `pb.yaml -i inv.yaml EXTRA` in `sb` with its default output: host key
/// checking on, the interpreter found silently, no colour, no ssh agent.
pub fn ansible_plain(sb: &Sandbox, extra: &[&str]) -> std::process::Output {
    Command::new(ansible_playbook())
        .current_dir(sb.path())
        .args(["pb.yaml", "-i", "inv.yaml"])
        .args(extra)
        .env("ANSIBLE_HOST_KEY_CHECKING", "True")
        .env("ANSIBLE_PYTHON_INTERPRETER", "auto_silent")
        .env("ANSIBLE_NOCOLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("run ansible-playbook")
}
