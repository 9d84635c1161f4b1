//! Shared helpers for the end-to-end CLI tests: a sandbox directory that test files are
//! written into, an `rdeploy` command that runs inside it with relative paths and with HOME,
//! XDG and TMPDIR pointed at a second, empty directory, and a snapshot of both trees so a test
//! can assert that a command wrote nothing anywhere.

#![allow(dead_code)] // each test crate uses a different subset

pub mod fleet;
pub mod oracle;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The repository root, where the example `playbooks/`, `inventory/` and `roles/` live.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `rdeploy` run from the repository root, with a clean, colourless environment.
pub fn rdeploy_in_repo() -> Command {
    let mut cmd = Command::cargo_bin("rdeploy").expect("the rdeploy binary is built");
    cmd.current_dir(repo())
        .env("NO_COLOR", "1")
        // Run journals and the local connection's backups stay out of the user's home.
        .env(
            "RDEPLOY_STATE_DIR",
            std::env::temp_dir().join("rdeploy-test-state"),
        )
        .env_remove("RUST_LOG");
    cmd
}

/// A temporary working directory plus a temporary HOME, both empty at the start.
pub struct Sandbox {
    work: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let sandbox = Sandbox {
            work: tempfile::tempdir().expect("tempdir"),
            home: tempfile::tempdir().expect("tempdir"),
        };
        std::fs::create_dir(sandbox.home.path().join("tmp")).expect("create TMPDIR");
        sandbox
    }

    /// The working directory commands run in.
    pub fn path(&self) -> &Path {
        self.work.path()
    }

    /// Writes `body` to `rel` (relative to the working directory), creating parent folders.
    pub fn write(&self, rel: &str, body: impl AsRef<[u8]>) -> &Sandbox {
        let p = self.work.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent folders");
        }
        std::fs::write(&p, body).expect("write test file");
        self
    }

    /// `rdeploy ARGS` in the working directory, with HOME, XDG_* and TMPDIR in the sandbox.
    pub fn rdeploy(&self, args: &[&str]) -> Command {
        Command::from_std(self.rdeploy_process(args))
    }

    /// [`Sandbox::rdeploy`] as a plain process, for tests that spawn it and stop it.
    pub fn rdeploy_process(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("rdeploy"));
        let home = self.home.path();
        cmd.current_dir(self.work.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("RDEPLOY_STATE_DIR")
            .env("HOME", home)
            .env("XDG_STATE_HOME", home.join("state"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("TMPDIR", home.join("tmp"));
        cmd
    }

    /// Runs `rdeploy ARGS` to its end as cron would (stdin from /dev/null, no SSH agent).
    pub fn finish(&self, args: &[&str]) -> Finished {
        let out = self
            .rdeploy_process(args)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run rdeploy");
        Finished {
            code: out.status.code().unwrap_or(-1),
            text: format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Every file under the working directory and the sandbox HOME, with its content.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        walk(self.work.path(), Path::new("work"), &mut out);
        walk(self.home.path(), Path::new("home"), &mut out);
        out
    }
}

fn walk(dir: &Path, label: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("dir entry"))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = label.join(e.file_name());
        let ft = e.file_type().expect("file type");
        if ft.is_dir() {
            out.insert(name.join(""), Vec::new());
            walk(&path, &name, out);
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path).expect("read_link");
            out.insert(name, target.to_string_lossy().into_owned().into_bytes());
        } else {
            out.insert(name, std::fs::read(&path).expect("read file"));
        }
    }
}

/// A finished `rdeploy` ([`Sandbox::finish`]): its exit code, and its stdout then stderr.
pub struct Finished {
    pub code: i32,
    pub text: String,
}

impl Finished {
    /// The run id of its `run_end` event (`--output json`).
    pub fn run_id(&self) -> String {
        self.text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["event"] == "run_end")
            .and_then(|e| e["run_id"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("a run_end event in:\n{}", self.text))
    }
}

/// Stdout of a finished command as text.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

/// Stderr of a finished command as text.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// An inventory with only `localhost` on the local connection.
pub const LOCAL_INVENTORY: &str =
    "local:\n  hosts:\n    localhost:\n      ansible_connection: local\n";

/// Writes `files` (path, text) under `dir`, and [`LOCAL_INVENTORY`] as `inv.yaml` unless
/// `files` has one, then runs `rdeploy run pb.yaml -i inv.yaml ARGS` there with `env` set
/// (journals under `dir/state`); returns (exit code, stdout, stderr).
pub fn run_local(
    dir: &Path,
    files: &[(&str, &str)],
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    if !files.iter().any(|(p, _)| *p == "inv.yaml") {
        std::fs::write(dir.join("inv.yaml"), LOCAL_INVENTORY).unwrap();
    }
    for (p, text) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let out = Command::cargo_bin("rdeploy")
        .unwrap()
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("RDEPLOY_STATE_DIR", dir.join("state"))
        .envs(env.iter().copied())
        .args(["run", "pb.yaml", "-i", "inv.yaml"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The host line of the `PLAY RECAP`, with runs of spaces folded.
pub fn recap_line(stdout: &str) -> String {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
