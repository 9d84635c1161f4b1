//! The fleet benchmark of issues 4 and 16 (run it through `bench/run.sh`): the same 10-step
//! deploy on N test-fleet hosts by rdeploy and by four baselines, each measured as a child
//! process.
//!
//! `fleet_bench drive N [--per-sshd K] [--reps R] [--no-ansible]` starts the fleet
//! (`tests/support/fleet.rs`), writes the inventory, ssh config, playbook and scripts into a
//! temporary folder, then, R times, runs each contender as a child process and takes its
//! wall time, user+system CPU and peak RSS from `wait4` (so each figure is the contender's
//! own, its reaped children included). Every host's `/srv/bench` is removed before each
//! contender's first run, and after each run every host must have the expected files, so a
//! broken contender cannot look fast. It prints the median of each figure and its ratio to
//! the floor.
//!
//! The contenders:
//! - `floor`: this binary again (`fleet_bench floor SPEC.json`), a minimal russh client:
//!   one connection per host, the 10 steps as 10 exec channels one after the other, all
//!   hosts at once. No checks before changing, no backups, no verification: the floor.
//! - `sftp floor`: the same client (`fleet_bench sftp-floor SPEC.json`) doing the file steps
//!   as requests on one SFTP session per host (russh-sftp's raw session on the `sftp`
//!   subsystem) *with* every safety step rdeploy keeps: an `lstat` before each step; a file
//!   about to be replaced hard-linked into a backup folder (`hardlink@openssh.com`); each
//!   write to a temporary file created exclusively next to the destination, its mode set,
//!   `fsync@openssh.com`, then `posix-rename@openssh.com` over the destination; the symlink
//!   swap as a link at a temporary name renamed over; after each change an `lstat` and, for
//!   a written file, its content read back and sha256-hashed here. The checksum and
//!   read-back steps read the files over SFTP; the smoke test stays one exec channel. What
//!   the SSH protocol allows with rdeploy's safety (no journal, though).
//! - `openssh`: a generated bash script: per host, in the background, a ControlMaster
//!   connection and the 10 steps as `ssh -S SOCKET` commands; measured as the bash process,
//!   so the ssh processes it reaps count.
//! - `ansible-playbook` (when on PATH, run once, not R times): forks = N, pipelining on,
//!   facts off. Its persistent control masters are not its children: their CPU is not counted.
//! - `rdeploy` first run (fresh hosts) and second run (nothing to change), `--forks N`.
//!
//! `fleet_bench rolling N` (issue 5) deploys `playbooks/rolling-update.yaml` (the demo app:
//! python3's http.server per host on its own `app_port`, health probed from the controller)
//! to N hosts in 5 batches (a copy of the playbook with `serial: "20%"`): v1 on fresh hosts,
//! then v2, and prints the v2 run's wall time and the `timing` of its `run_end` event. Every
//! host must answer `ok 2.0.0` on /health afterwards.
//!
//! Host processes per host are counted after the measured repetitions, in one more run of
//! each floor and of rdeploy's first and second runs: `strace -f` attached to the first
//! host's sshd (PID 1 of the host's PID namespace, so it sees everything started on the
//! host) logs each `execve` and fork, and the bench counts programs (successful `execve` of
//! anything but sshd), processes (those that ran such a program, or were forked by one:
//! subshells) and sshd's own processes (everything else new: the listener's fork, the
//! re-exec, privilege separation, sessions; the fleet's sshd serves SFTP as
//! `internal-sftp`, so an SFTP session is one of these and starts no program), divided by
//! the hosts that sshd serves. Issue 4 counted the same way, by hand. These runs are not
//! timed: strace slows the host it watches. Without strace they are skipped.
//!
//! Peak RSS is `ru_maxrss`: the largest single process of the contender's tree, not a sum
//! (the OpenSSH baseline runs 12 ssh processes per host, up to N masters at once).
//! "machine CPU" is the busy time of the whole machine during the run (`/proc/stat`): the
//! contender plus the hosts' sshd and shells, which share the controller's CPUs here.

#[allow(dead_code)]
#[path = "../tests/support/fleet.rs"]
mod fleet;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use serde_json::{Value, json};

use fleet::Fleet;

/// The release every contender deploys.
const VERSION: &str = "1.0";
/// Size of the payload file each contender copies to each host.
const PAYLOAD_SIZE: usize = 100 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("drive") => drive(&args[1..]),
        Some("rolling") => rolling(&args[1..], Mode::Serial),
        Some("canary") => rolling(&args[1..], Mode::Canary),
        Some("floor") if args.len() == 2 => floor(Path::new(&args[1]), Floor::Exec),
        Some("sftp-floor") if args.len() == 2 => floor(Path::new(&args[1]), Floor::Sftp),
        _ => {
            eprintln!(
                "usage: fleet_bench drive N [--per-sshd K] [--reps R] [--no-ansible] [--hold SECS]\n       \
                 fleet_bench rolling N\n       \
                 fleet_bench canary N\n       \
                 fleet_bench floor SPEC.json\n       \
                 fleet_bench sftp-floor SPEC.json"
            );
            ExitCode::from(2)
        }
    }
}

// ------------------------------------------------------------------ the workload

/// Where host `name` deploys: hosts sharing an sshd share its `/srv`, so each has a folder.
fn root(name: &str) -> String {
    format!("/srv/bench/{name}")
}

/// The content of `app.conf` for host `name` (what the playbook's template renders).
fn app_conf(name: &str) -> String {
    format!(
        "# Managed by the fleet benchmark\nname={name}\nversion={VERSION}\nlisten=127.0.0.1:8080\n"
    )
}

/// What a step sends on the command's stdin.
enum Input {
    None,
    Payload,
    AppConf,
}

/// One of the 10 steps as a shell command, for the floor and the OpenSSH baseline.
struct Step {
    cmd: String,
    input: Input,
    /// The command's stdout must be this (trimmed).
    expect: Option<String>,
}

/// The 10 steps for host `name`, as the baselines run them: the same effect as the playbook,
/// without checking first.
fn steps(name: &str) -> Vec<Step> {
    let r = root(name);
    let rel = format!("{r}/releases/{VERSION}");
    let step = |cmd: String, input| Step {
        cmd,
        input,
        expect: None,
    };
    vec![
        step(format!("mkdir -p {rel}"), Input::None),
        step(format!("cat > {rel}/payload.bin"), Input::Payload),
        step(format!("cat > {rel}/app.conf"), Input::AppConf),
        step(format!("sha256sum {rel}/payload.bin"), Input::None),
        step(
            format!(
                "grep -qx mode=production {r}/env 2>/dev/null || \
                 {{ sed -i /^mode=/d {r}/env 2>/dev/null; echo mode=production >> {r}/env; }}"
            ),
            Input::None,
        ),
        step(
            format!("ln -sfn {rel} {r}/current.tmp && mv -T {r}/current.tmp {r}/current"),
            Input::None,
        ),
        step(format!("echo {VERSION} > {rel}/VERSION"), Input::None),
        Step {
            cmd: format!("cat {r}/current/VERSION"),
            input: Input::None,
            expect: Some(VERSION.into()),
        },
        step(format!("chmod 0600 {rel}/payload.bin"), Input::None),
        step(format!("test -f {r}/current/VERSION"), Input::None),
    ]
}

/// The playbook: the same 10 steps with rdeploy's (and Ansible's) modules.
const PLAYBOOK: &str = r#"- name: fleet benchmark
  hosts: all
  gather_facts: false
  vars:
    root: "/srv/bench/{{ inventory_hostname }}"
    rel: "/srv/bench/{{ inventory_hostname }}/releases/{{ app_version }}"
    # Hosts sharing an sshd (--per-sshd) share its /var/lib/rdeploy: one state folder each.
    rdeploy_state_dir: "/var/lib/rdeploy/{{ inventory_hostname }}"
  tasks:
    - name: release directory
      file: { path: "{{ rel }}", state: directory }
    - name: payload
      copy: { src: payload.bin, dest: "{{ rel }}/payload.bin" }
    - name: config
      template: { src: app.conf.j2, dest: "{{ rel }}/app.conf" }
    - name: checksum
      stat: { path: "{{ rel }}/payload.bin", get_checksum: true, checksum_algorithm: sha256 }
      register: payload
    - name: mode line
      lineinfile: { path: "{{ root }}/env", regexp: "^mode=", line: mode=production, create: true }
    - name: current link
      file: { src: "{{ rel }}", dest: "{{ root }}/current", state: link }
    - name: version file
      copy: { content: "{{ app_version }}\n", dest: "{{ rel }}/VERSION" }
    - name: read version
      command: cat {{ root }}/current/VERSION
      register: version
      changed_when: false
      failed_when: version.stdout != app_version
    - name: payload mode
      file: { path: "{{ rel }}/payload.bin", mode: "0600" }
    - name: smoke test
      command: test -f {{ root }}/current/VERSION
      changed_when: false
"#;

const TEMPLATE: &str = "# Managed by the fleet benchmark\nname={{ inventory_hostname }}\n\
                        version={{ app_version }}\nlisten=127.0.0.1:8080\n";

/// Deterministic, incompressible-looking bytes.
fn payload() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..PAYLOAD_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ------------------------------------------------------------------ the floor

/// What the floor needs to know, written by `drive` as JSON.
#[derive(serde::Serialize, serde::Deserialize)]
struct FloorSpec {
    user: String,
    key: PathBuf,
    known_hosts: PathBuf,
    payload: PathBuf,
    /// (name, address, port)
    hosts: Vec<(String, String, u16)>,
}

/// Which floor `floor_all` runs.
#[derive(Clone, Copy)]
enum Floor {
    /// The 10 steps as 10 exec channels, no safety steps.
    Exec,
    /// The file steps over one SFTP session with every safety step, the command over exec.
    Sftp,
}

fn floor(spec: &Path, kind: Floor) -> ExitCode {
    let spec: FloorSpec = match fs::read(spec).map(|b| serde_json::from_slice(&b)) {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return fail(format!("{}: {e}", spec.display())),
        Err(e) => return fail(format!("{}: {e}", spec.display())),
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(floor_all(spec, kind)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(msg: String) -> ExitCode {
    eprintln!("fleet_bench: {msg}");
    ExitCode::FAILURE
}

async fn floor_all(spec: FloorSpec, kind: Floor) -> Result<(), String> {
    let key = russh::keys::load_secret_key(&spec.key, None).map_err(|e| e.to_string())?;
    let key = Arc::new(key);
    // `[addr]:port alg base64` lines: a host key is accepted only if it is listed for the host.
    let known = fs::read_to_string(&spec.known_hosts).map_err(|e| e.to_string())?;
    let known: Arc<Vec<String>> = Arc::new(known.lines().map(str::to_string).collect());
    let payload = Arc::new(fs::read(&spec.payload).map_err(|e| e.to_string())?);
    let config = Arc::new(client::Config {
        nodelay: true,
        ..client::Config::default()
    });
    let user = Arc::new(spec.user);
    let mut set = tokio::task::JoinSet::new();
    for (name, addr, port) in spec.hosts {
        let (key, known, payload, config, user) = (
            key.clone(),
            known.clone(),
            payload.clone(),
            config.clone(),
            user.clone(),
        );
        set.spawn(async move {
            let handle = connect(&addr, port, &user, key, &known, config)
                .await
                .map_err(|e| format!("{name}: {e}"))?;
            let done = match kind {
                Floor::Exec => floor_host(&handle, &name, &payload).await,
                Floor::Sftp => sftp_floor_host(&handle, &name, &payload).await,
            };
            let _ = handle.disconnect(Disconnect::ByApplication, "", "").await;
            done.map_err(|e| format!("{name}: {e}"))
        });
    }
    let mut errors = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

struct Checker {
    /// `[addr]:port ` prefix of this host's known_hosts lines.
    pattern: String,
    known: Arc<Vec<String>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_public_key else {
            return Ok(false);
        };
        let Ok(text) = key.to_openssh() else {
            return Ok(false);
        };
        let shown: Vec<&str> = text.split_whitespace().take(2).collect();
        let line = format!("{}{}", self.pattern, shown.join(" "));
        Ok(self.known.contains(&line))
    }
}

/// One authenticated connection to a host whose key is listed in `known`.
async fn connect(
    addr: &str,
    port: u16,
    user: &str,
    key: Arc<russh::keys::PrivateKey>,
    known: &Arc<Vec<String>>,
    config: Arc<client::Config>,
) -> Result<client::Handle<Checker>, String> {
    let checker = Checker {
        pattern: format!("[{addr}]:{port} "),
        known: known.clone(),
    };
    let mut handle = client::connect(config, (addr, port), checker)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let auth = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, None))
        .await
        .map_err(|e| format!("auth: {e}"))?;
    if !auth.success() {
        return Err("authentication refused".into());
    }
    Ok(handle)
}

/// The exec floor on one host: the 10 steps as 10 exec channels, nothing checked.
async fn floor_host(
    handle: &client::Handle<Checker>,
    name: &str,
    payload: &[u8],
) -> Result<(), String> {
    let conf = app_conf(name);
    for step in steps(name) {
        let input: Option<&[u8]> = match step.input {
            Input::None => None,
            Input::Payload => Some(payload),
            Input::AppConf => Some(conf.as_bytes()),
        };
        let (status, out) = run(handle, &step.cmd, input)
            .await
            .map_err(|e| format!("{}: {e}", step.cmd))?;
        if status != 0 {
            return Err(format!("{}: exit status {status}", step.cmd));
        }
        if let Some(want) = &step.expect
            && String::from_utf8_lossy(&out).trim() != want
        {
            return Err(format!("{}: printed {out:?}, not {want}", step.cmd));
        }
    }
    Ok(())
}

/// One command on one channel: (exit status, stdout).
async fn run(
    handle: &client::Handle<Checker>,
    cmd: &str,
    input: Option<&[u8]>,
) -> Result<(u32, Vec<u8>), russh::Error> {
    let mut channel = handle.channel_open_session().await?;
    channel.exec(true, cmd).await?;
    if let Some(data) = input {
        channel.data(data).await?;
        channel.eof().await?;
    }
    let mut out = Vec::new();
    let mut status = None;
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => out.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    Ok((status.unwrap_or(255), out))
}

// ------------------------------------------------------------------ the SFTP floor

/// Largest SFTP read or write sent as one request: below OpenSSH's 256 KiB message limit.
const SFTP_CHUNK: usize = 255 * 1024;

/// The SFTP floor on one host: the same 10 steps, the file steps as requests on one SFTP
/// session with every safety step rdeploy keeps (see [`Plane`]), the smoke test as one exec
/// channel.
async fn sftp_floor_host(
    handle: &client::Handle<Checker>,
    name: &str,
    payload: &[u8],
) -> Result<(), String> {
    let channel = handle
        .channel_open_session()
        .await
        .map_err(|e| format!("sftp channel: {e}"))?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| format!("sftp subsystem: {e}"))?;
    let raw = russh_sftp::client::RawSftpSession::new(channel.into_stream());
    raw.set_timeout(120);
    raw.init().await.map_err(|e| format!("sftp init: {e}"))?;
    let plane = Plane {
        raw,
        backups: format!("{}/.backups", root(name)),
        seq: AtomicU32::new(0),
        backups_made: AtomicBool::new(false),
    };
    let r = root(name);
    let rel = format!("{r}/releases/{VERSION}");
    let ctx = |what: &'static str| move |e: String| format!("{what}: {e}");
    // 1. release directory
    plane.mkdir_p(&rel).await.map_err(ctx("mkdir"))?;
    // 2. payload, 3. config
    let payload_path = format!("{rel}/payload.bin");
    plane
        .put(&payload_path, payload, 0o644)
        .await
        .map_err(ctx("payload"))?;
    plane
        .put(&format!("{rel}/app.conf"), app_conf(name).as_bytes(), 0o644)
        .await
        .map_err(ctx("config"))?;
    // 4. checksum: read back and hashed here
    let (kind, _, size) = plane.lstat(&payload_path).await.map_err(ctx("checksum"))?;
    if kind != Kind::File {
        return Err(format!("checksum: {payload_path} is {kind:?}"));
    }
    let content = plane.read(&payload_path, Some(size)).await;
    let sum = sha256(&content.map_err(ctx("checksum"))?);
    if sum != sha256(payload) {
        return Err("checksum: payload.bin differs".into());
    }
    // 5. mode line
    plane.line(&format!("{r}/env")).await.map_err(ctx("env"))?;
    // 6. current link
    plane
        .symlink(&format!("{r}/current"), &rel)
        .await
        .map_err(ctx("current"))?;
    // 7. version file
    plane
        .put(
            &format!("{rel}/VERSION"),
            format!("{VERSION}\n").as_bytes(),
            0o644,
        )
        .await
        .map_err(ctx("VERSION"))?;
    // 8. read version (through the link)
    let text = plane
        .read(&format!("{r}/current/VERSION"), None)
        .await
        .map_err(ctx("read version"))?;
    if String::from_utf8_lossy(&text).trim() != VERSION {
        return Err(format!("read version: {text:?}, not {VERSION}"));
    }
    // 9. payload mode
    plane
        .chmod(&payload_path, 0o600)
        .await
        .map_err(ctx("chmod"))?;
    // 10. smoke test: a command stays a command
    let cmd = format!("test -f {r}/current/VERSION");
    let (status, _) = run(handle, &cmd, None)
        .await
        .map_err(|e| format!("{cmd}: {e}"))?;
    if status != 0 {
        return Err(format!("{cmd}: exit status {status}"));
    }
    let _ = plane.raw.close_session();
    Ok(())
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// What `lstat` found at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Missing,
    File,
    Dir,
    Link,
    Other,
}

/// File operations over one SFTP session, each with the safety steps rdeploy keeps: an
/// `lstat` before the change decides whether there is one; a file about to be replaced is
/// hard-linked into `backups` first (`hardlink@openssh.com`: no copy); a write goes to a
/// temporary file created exclusively next to the destination, gets its mode, is fsynced
/// (`fsync@openssh.com`) and renamed over the destination (`posix-rename@openssh.com`); and
/// the result is checked afterwards (`lstat`, and a written file's content read back and
/// hashed here).
struct Plane {
    raw: russh_sftp::client::RawSftpSession,
    /// Where replaced files are hard-linked (same filesystem as the files).
    backups: String,
    /// Makes temporary and backup names unique within the session.
    seq: AtomicU32,
    /// Whether `backups` is known to exist.
    backups_made: AtomicBool,
}

/// The SFTP status code of an error, if it is one.
fn status_of(e: &russh_sftp::client::error::Error) -> Option<russh_sftp::protocol::StatusCode> {
    match e {
        russh_sftp::client::error::Error::Status(s) => Some(s.status_code),
        _ => None,
    }
}

/// A string as SSH encodes it: length (u32, big endian), then the bytes.
fn ssh_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Plane {
    /// (kind, permission bits, size) of `path`, not following a final symlink.
    async fn lstat(&self, path: &str) -> Result<(Kind, u32, u64), String> {
        use russh_sftp::protocol::{FileType, StatusCode};
        match self.raw.lstat(path).await {
            Ok(a) => {
                let attrs = a.attrs;
                let kind = match attrs.file_type() {
                    FileType::File => Kind::File,
                    FileType::Dir => Kind::Dir,
                    FileType::Symlink => Kind::Link,
                    FileType::Other => Kind::Other,
                };
                let mode = attrs.permissions.unwrap_or(0) & 0o7777;
                Ok((kind, mode, attrs.size.unwrap_or(0)))
            }
            Err(e) if status_of(&e) == Some(StatusCode::NoSuchFile) => Ok((Kind::Missing, 0, 0)),
            Err(e) => Err(format!("lstat {path}: {e}")),
        }
    }

    /// A name next to `path` (same folder, so the same filesystem) for a temporary file.
    fn temp_name(&self, path: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let (dir, base) = path.rsplit_once('/').unwrap_or((".", path));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!("{dir}/.{base}.tmp-{}-{n}-{nanos:x}", std::process::id())
    }

    /// `mkdir -p`: the missing folders from the top down, each checked afterwards.
    async fn mkdir_p(&self, path: &str) -> Result<(), String> {
        let mut missing = Vec::new();
        let mut p = path.trim_end_matches('/');
        loop {
            match self.lstat(p).await?.0 {
                Kind::Dir => break,
                Kind::Missing => missing.push(p.to_string()),
                other => return Err(format!("{p} is {other:?}, not a folder")),
            }
            match p.rsplit_once('/') {
                Some((parent, _)) if !parent.is_empty() => p = parent,
                _ => break,
            }
        }
        for dir in missing.iter().rev() {
            let attrs = russh_sftp::protocol::FileAttributes {
                permissions: Some(0o755),
                ..Default::default()
            };
            let (made, stat) = tokio::join!(self.raw.mkdir(dir.as_str(), attrs), self.lstat(dir));
            // Made by another host on the same sshd meanwhile (`--per-sshd`): a folder is
            // what `mkdir -p` wants.
            if stat?.0 != Kind::Dir {
                made.map_err(|e| format!("mkdir {dir}: {e}"))?;
                return Err(format!("mkdir {dir}: no folder afterwards"));
            }
        }
        Ok(())
    }

    /// Hard-links `path` into the backup folder (made on first use).
    async fn backup(&self, path: &str) -> Result<(), String> {
        if !self.backups_made.load(Ordering::Relaxed) {
            self.mkdir_p(&self.backups).await?;
            self.backups_made.store(true, Ordering::Relaxed);
        }
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let base = path.rsplit('/').next().unwrap_or(path);
        let target = format!("{}/{base}.{}-{n}", self.backups, std::process::id());
        self.raw
            .hardlink(path, target.as_str())
            .await
            .map_err(|e| format!("backup {path}: {e}"))?;
        Ok(())
    }

    /// `posix-rename@openssh.com`: replaces `to` atomically (SSH_FXP_RENAME refuses to).
    async fn rename(&self, from: &str, to: &str) -> Result<(), String> {
        use russh_sftp::protocol::{Packet, StatusCode};
        let mut data = Vec::new();
        ssh_string(&mut data, from);
        ssh_string(&mut data, to);
        match self.raw.extended("posix-rename@openssh.com", data).await {
            Ok(Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
            Ok(Packet::Status(s)) => Err(format!("rename {from} {to}: {}", s.status_code)),
            Ok(_) => Err(format!("rename {from} {to}: unexpected reply")),
            Err(e) => Err(format!("rename {from} {to}: {e}")),
        }
    }

    /// The whole content of `path` (following symlinks); `size`, when known from an `lstat`,
    /// saves the read that would find the end.
    async fn read(&self, path: &str, size: Option<u64>) -> Result<Vec<u8>, String> {
        use russh_sftp::protocol::{FileAttributes, OpenFlags};
        let h = self
            .raw
            .open(path, OpenFlags::READ, FileAttributes::default())
            .await
            .map_err(|e| format!("open {path}: {e}"))?
            .handle;
        self.read_handle(h, path, size).await
    }

    /// Reads the open file `h` to its end (or `size` bytes) and closes it. A file that fits
    /// one read is read and closed in one round trip (requests are answered in order).
    async fn read_handle(
        &self,
        h: String,
        path: &str,
        size: Option<u64>,
    ) -> Result<Vec<u8>, String> {
        use russh_sftp::protocol::StatusCode;
        let data = |r: Result<russh_sftp::protocol::Data, russh_sftp::client::error::Error>| match r
        {
            Ok(d) => Ok(d.data),
            Err(e) if status_of(&e) == Some(StatusCode::Eof) => Ok(Vec::new()),
            Err(e) => Err(format!("read {path}: {e}")),
        };
        if let Some(size) = size.filter(|&s| s <= SFTP_CHUNK as u64) {
            let (read, closed) = tokio::join!(
                self.raw.read(h.as_str(), 0, size.max(1) as u32),
                self.raw.close(h.as_str())
            );
            let out = data(read)?;
            closed.map_err(|e| format!("close {path}: {e}"))?;
            if out.len() as u64 != size {
                return Err(format!("{path}: read {} bytes, not {size}", out.len()));
            }
            return Ok(out);
        }
        let mut out = Vec::new();
        let result = loop {
            match data(
                self.raw
                    .read(h.as_str(), out.len() as u64, SFTP_CHUNK as u32)
                    .await,
            ) {
                Ok(d) if d.is_empty() => break Ok(()),
                Ok(d) => out.extend_from_slice(&d),
                Err(e) => break Err(e),
            }
        };
        let closed = self.raw.close(h).await;
        result?;
        closed.map_err(|e| format!("close {path}: {e}"))?;
        Ok(out)
    }

    /// Writes `data` to `path` unless it is already there: check, backup, temporary file
    /// (exclusive) + write + mode + fsync + rename, verification. A new file gets `mode`, a
    /// replaced one keeps its own (as `copy` without `mode:`).
    async fn put(&self, path: &str, data: &[u8], mode: u32) -> Result<(), String> {
        let (kind, old_mode, size) = self.lstat(path).await?;
        let mode = match kind {
            Kind::Missing => mode,
            Kind::File => {
                if size == data.len() as u64
                    && sha256(&self.read(path, Some(size)).await?) == sha256(data)
                {
                    return Ok(());
                }
                self.backup(path).await?;
                old_mode
            }
            other => return Err(format!("{path} is {other:?}, not a file")),
        };
        self.write_atomic(path, data, mode).await?;
        self.verify_file(path, data, mode).await
    }

    async fn write_atomic(&self, path: &str, data: &[u8], mode: u32) -> Result<(), String> {
        use russh_sftp::protocol::{FileAttributes, OpenFlags};
        let tmp = self.temp_name(path);
        let attrs = FileAttributes {
            permissions: Some(mode),
            ..Default::default()
        };
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE;
        let h = self
            .raw
            .open(tmp.as_str(), flags, attrs.clone())
            .await
            .map_err(|e| format!("create {tmp}: {e}"))?
            .handle;
        // The last chunk, the mode, the fsync and the close go out together and are answered
        // in order; the rename waits for every answer.
        let chunks: Vec<&[u8]> = data.chunks(SFTP_CHUNK).collect();
        let (head, last) = match chunks.split_last() {
            Some((last, head)) => (head, Some(*last)),
            None => (&chunks[..], None),
        };
        let mut written = Ok(());
        for (i, chunk) in head.iter().enumerate() {
            let offset = (i * SFTP_CHUNK) as u64;
            if let Err(e) = self.raw.write(h.as_str(), offset, chunk.to_vec()).await {
                written = Err(format!("write {tmp}: {e}"));
                break;
            }
        }
        let tail = async {
            written?;
            if let Some(chunk) = last {
                let offset = (head.len() * SFTP_CHUNK) as u64;
                self.raw
                    .write(h.as_str(), offset, chunk.to_vec())
                    .await
                    .map_err(|e| format!("write {tmp}: {e}"))?;
            }
            Ok::<(), String>(())
        };
        let (wrote, moded, synced, closed) = tokio::join!(
            tail,
            // The mode asked for, whatever the umask made of the one given at creation.
            self.raw.fsetstat(h.as_str(), attrs),
            self.raw.fsync(h.as_str()),
            self.raw.close(h.as_str()),
        );
        let written = wrote
            .and(moded.map(drop).map_err(|e| format!("chmod {tmp}: {e}")))
            .and(synced.map(drop).map_err(|e| format!("fsync {tmp}: {e}")));
        let closed = closed.map(drop).map_err(|e| format!("close {tmp}: {e}"));
        let done = match written.and(closed) {
            Ok(()) => self.rename(&tmp, path).await,
            Err(e) => Err(e),
        };
        if done.is_err() {
            let _ = self.raw.remove(tmp.as_str()).await;
        }
        done
    }

    /// After a write: a regular file of the right size and mode whose content, read back,
    /// hashes as `data` does.
    async fn verify_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), String> {
        use russh_sftp::protocol::{FileAttributes, OpenFlags};
        let (stat, opened) = tokio::join!(
            self.lstat(path),
            self.raw
                .open(path, OpenFlags::READ, FileAttributes::default())
        );
        let h = opened.map_err(|e| format!("open {path}: {e}"))?.handle;
        let content = self.read_handle(h, path, Some(data.len() as u64)).await;
        let (kind, got_mode, size) = stat?;
        if kind != Kind::File || got_mode != mode || size != data.len() as u64 {
            return Err(format!(
                "{path} after the write: {kind:?}, mode {got_mode:o}, {size} bytes"
            ));
        }
        if sha256(&content?) != sha256(data) {
            return Err(format!("{path} after the write: content differs"));
        }
        Ok(())
    }

    /// `lineinfile` of the benchmark: `mode=production` and no other `mode=` line.
    async fn line(&self, path: &str) -> Result<(), String> {
        let (kind, mode, size) = self.lstat(path).await?;
        let (old, mode) = match kind {
            Kind::Missing => (String::new(), 0o644),
            Kind::File => (
                String::from_utf8_lossy(&self.read(path, Some(size)).await?).into_owned(),
                mode,
            ),
            other => return Err(format!("{path} is {other:?}, not a file")),
        };
        let mut new: String = old
            .lines()
            .filter(|l| !l.starts_with("mode=") || *l == "mode=production")
            .map(|l| format!("{l}\n"))
            .collect();
        if !new.lines().any(|l| l == "mode=production") {
            new.push_str("mode=production\n");
        }
        if kind == Kind::File {
            if new == old {
                return Ok(());
            }
            self.backup(path).await?;
        }
        self.write_atomic(path, new.as_bytes(), mode).await?;
        self.verify_file(path, new.as_bytes(), mode).await
    }

    /// `path` becomes a symlink to `target`: a link at a temporary name renamed over it.
    async fn symlink(&self, path: &str, target: &str) -> Result<(), String> {
        let (kind, _, _) = self.lstat(path).await?;
        match kind {
            Kind::Missing => {}
            Kind::Link => {
                let now = self.readlink(path).await?;
                if now == target {
                    return Ok(());
                }
                self.backup(path).await?;
            }
            other => return Err(format!("{path} is {other:?}, not a link")),
        }
        let tmp = self.temp_name(path);
        // OpenSSH's sftp-server takes SSH_FXP_SYMLINK's paths in the reverse order of the
        // draft: the target first, then the link. russh-sftp sends (linkpath, targetpath).
        self.raw
            .symlink(target, tmp.as_str())
            .await
            .map_err(|e| format!("symlink {tmp}: {e}"))?;
        if let Err(e) = self.rename(&tmp, path).await {
            let _ = self.raw.remove(tmp.as_str()).await;
            return Err(e);
        }
        let (stat, now) = tokio::join!(self.lstat(path), self.readlink(path));
        let (kind, now) = (stat?.0, now?);
        if kind != Kind::Link || now != target {
            return Err(format!("{path} after the swap: {kind:?} to {now}"));
        }
        Ok(())
    }

    async fn readlink(&self, path: &str) -> Result<String, String> {
        let name = self
            .raw
            .readlink(path)
            .await
            .map_err(|e| format!("readlink {path}: {e}"))?;
        name.files
            .into_iter()
            .next()
            .map(|f| f.filename)
            .ok_or(format!("readlink {path}: no name"))
    }

    /// Sets `path`'s permission bits when they differ, and checks them afterwards.
    async fn chmod(&self, path: &str, mode: u32) -> Result<(), String> {
        let (kind, old, _) = self.lstat(path).await?;
        if kind != Kind::File {
            return Err(format!("{path} is {kind:?}, not a file"));
        }
        if old == mode {
            return Ok(());
        }
        let attrs = russh_sftp::protocol::FileAttributes {
            permissions: Some(mode),
            ..Default::default()
        };
        let (set, stat) = tokio::join!(self.raw.setstat(path, attrs), self.lstat(path));
        set.map_err(|e| format!("chmod {path}: {e}"))?;
        let (kind, now, _) = stat?;
        if kind != Kind::File || now != mode {
            return Err(format!("{path} after chmod: {kind:?}, mode {now:o}"));
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ the driver

struct Options {
    hosts: usize,
    per_sshd: usize,
    reps: usize,
    ansible: bool,
    /// Seconds to keep the fleet and the work folder after the runs, to look around.
    hold: u64,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut it = args.iter();
    let hosts = it
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or("drive needs a host count")?;
    let mut o = Options {
        hosts,
        per_sshd: 1,
        reps: 3,
        ansible: true,
        hold: 0,
    };
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .filter(|&v| v > 0)
                .ok_or(format!("{what} needs a positive number"))
        };
        match a.as_str() {
            "--per-sshd" => o.per_sshd = num("--per-sshd")?,
            "--reps" => o.reps = num("--reps")?,
            "--no-ansible" => o.ansible = false,
            "--hold" => o.hold = num("--hold")? as u64,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

/// One measured run of a contender.
#[derive(Clone, Copy)]
struct Measure {
    wall: Duration,
    cpu: Duration,
    /// Kilobytes.
    maxrss: u64,
    /// CPU time the whole machine spent meanwhile (the hosts' sshd and shells included).
    machine: Duration,
}

/// Busy CPU time of the whole machine since boot, from the first line of `/proc/stat`.
fn machine_cpu() -> Duration {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .enumerate()
        // user nice system idle iowait irq softirq steal: all but idle and iowait.
        .filter(|(i, _)| *i < 8 && *i != 3 && *i != 4)
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// Runs `cmd` (stdout and stderr to `log`) and takes its wall time and, from `wait4`, the
/// CPU time and peak RSS of it and every child it reaped.
fn measure(cmd: &mut Command, log: &Path) -> Result<Measure, String> {
    measure_code(cmd, log, 0)
}

/// [`measure`], expecting exit code `expected`.
fn measure_code(cmd: &mut Command, log: &Path, expected: i32) -> Result<Measure, String> {
    let out = fs::File::create(log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let machine_start = machine_cpu();
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our unreaped child; status and usage are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4: {e}"));
        }
    }
    let wall = start.elapsed();
    let machine = machine_cpu().saturating_sub(machine_start);
    // Reaped above: dropping the handle neither waits nor kills.
    drop(child);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == expected;
    if !ok {
        let text = fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<String> = text
            .lines()
            .rev()
            .take(15)
            .map(|l| l.chars().take(300).collect())
            .collect();
        let tail: Vec<String> = tail.into_iter().rev().collect();
        return Err(format!(
            "exited with status {status:#x}; end of {}:\n{}",
            log.display(),
            tail.join("\n")
        ));
    }
    Ok(Measure {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        maxrss: usage.ru_maxrss as u64,
        machine,
    })
}

/// Removes every host's `/srv/bench`: the next contender starts on fresh hosts.
fn reset(fleet: &Fleet) {
    for h in fleet.hosts() {
        let p = h.path("/srv/bench");
        if p.exists() {
            fs::remove_dir_all(&p).unwrap_or_else(|e| panic!("remove {}: {e}", p.display()));
        }
    }
}

/// Every host has the deployed release: a contender that did not do the work fails here.
fn verify(fleet: &Fleet, payload: &[u8]) -> Result<(), String> {
    for h in fleet.hosts() {
        let r = root(h.name());
        let rel = format!("{r}/releases/{VERSION}");
        let read = |p: &str| fs::read(h.path(p)).map_err(|e| format!("{}: {p}: {e}", h.name()));
        if read(&format!("{rel}/VERSION"))? != format!("{VERSION}\n").as_bytes() {
            return Err(format!("{}: wrong VERSION", h.name()));
        }
        if read(&format!("{rel}/payload.bin"))? != payload {
            return Err(format!("{}: wrong payload.bin", h.name()));
        }
        if read(&format!("{rel}/app.conf"))? != app_conf(h.name()).as_bytes() {
            return Err(format!("{}: wrong app.conf", h.name()));
        }
        if !String::from_utf8_lossy(&read(&format!("{r}/env"))?).contains("mode=production\n") {
            return Err(format!("{}: env has no mode=production", h.name()));
        }
        let link = fs::read_link(h.path(&format!("{r}/current")))
            .map_err(|e| format!("{}: current: {e}", h.name()))?;
        if link != Path::new(&rel) {
            return Err(format!("{}: current -> {}", h.name(), link.display()));
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(h.path(&format!("{rel}/payload.bin")))
            .map_err(|e| e.to_string())?
            .permissions()
            .mode();
        if mode & 0o777 != 0o600 {
            return Err(format!("{}: payload.bin mode {:o}", h.name(), mode & 0o777));
        }
    }
    Ok(())
}

/// Single-quotes `s` for bash.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The OpenSSH baseline: a bash script, one background job per host.
fn openssh_script(fleet: &Fleet, ssh_config: &Path, work: &Path, payload: &Path) -> String {
    let cfg = ssh_config.display().to_string();
    let mut s = format!(
        "#!/usr/bin/env bash\n# Generated by examples/fleet_bench.rs: the OpenSSH baseline.\n\
         set -u\nCFG={}\nCM={}\nPAYLOAD={}\n\
         master() {{ ssh -F \"$CFG\" -M -N -S \"$CM/$1\" \"$1\" & }}\n\
         ready() {{ until [ -S \"$CM/$1\" ]; do kill -0 \"$2\" 2>/dev/null || return 1; sleep 0.01; done; }}\n\
         c() {{ local h=$1; shift; ssh -F \"$CFG\" -S \"$CM/$h\" \"$h\" \"$@\"; }}\n",
        quote(&cfg),
        quote(&work.join("cm").display().to_string()),
        quote(&payload.display().to_string()),
    );
    for h in fleet.hosts() {
        let name = h.name();
        let _ = writeln!(
            s,
            "{name}() {{\n  set -e\n  trap 'echo \"{name}: line $LINENO failed\" >&2' ERR\n  \
             master {name}; m=$!\n  ready {name} $m"
        );
        for step in steps(name) {
            let cmd = quote(&step.cmd);
            let line = match (&step.input, &step.expect) {
                (Input::Payload, _) => format!("c {name} {cmd} < \"$PAYLOAD\""),
                (Input::AppConf, _) => {
                    format!("printf %s {} | c {name} {cmd}", quote(&app_conf(name)))
                }
                (Input::None, Some(want)) => {
                    format!("[ \"$(c {name} {cmd})\" = {} ]", quote(want))
                }
                (Input::None, None) => format!("c {name} {cmd} > /dev/null"),
            };
            let _ = writeln!(s, "  {line}");
        }
        let _ = writeln!(
            s,
            "  ssh -F \"$CFG\" -S \"$CM/{name}\" -O exit {name} 2>/dev/null\n  wait $m || true\n}}"
        );
    }
    s.push_str("pids=()\n");
    for h in fleet.hosts() {
        let _ = writeln!(s, "{} & pids+=($!)", h.name());
    }
    s.push_str("rc=0\nfor p in \"${pids[@]}\"; do wait \"$p\" || rc=1; done\nexit $rc\n");
    s
}

fn ansible_cfg(work: &Path, forks: usize, ssh_config: &Path) -> String {
    format!(
        "[defaults]\nforks = {forks}\ngathering = explicit\nhost_key_checking = True\n\
         interpreter_python = /usr/bin/python3\nretry_files_enabled = False\n\
         [ssh_connection]\npipelining = True\n\
         ssh_args = -F {} -o ControlMaster=auto -o ControlPersist=60s\ncontrol_path_dir = {}\n",
        ssh_config.display(),
        work.join("acp").display()
    )
}

/// Closes the ControlPersist masters Ansible left behind (processes it started for us).
fn close_masters(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let _ = Command::new("ssh")
            .arg("-S")
            .arg(e.path())
            .args(["-O", "exit", "x"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(prog))
            .find(|p| p.is_file())
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn drive(args: &[String]) -> ExitCode {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let rdeploy = match std::env::var_os("RDEPLOY_BIN") {
        Some(p) => PathBuf::from(p),
        None => return fail("set RDEPLOY_BIN to the release rdeploy binary".into()),
    };
    let me = std::env::current_exe().expect("own path");
    let work = tempfile::Builder::new()
        .prefix("fleet-bench-")
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

    let payload = payload();
    let payload_path = w.join("payload.bin");
    fs::write(&payload_path, &payload).expect("write payload");
    fs::create_dir(w.join("files")).expect("mkdir files");
    fs::create_dir(w.join("templates")).expect("mkdir templates");
    fs::create_dir(w.join("cm")).expect("mkdir cm");
    fs::write(w.join("files/payload.bin"), &payload).expect("write payload");
    fs::write(w.join("templates/app.conf.j2"), TEMPLATE).expect("write template");
    fs::write(w.join("bench.yaml"), PLAYBOOK).expect("write playbook");
    fleet.write_inventory(w.join("inventory.yaml"), json!({ "app_version": VERSION }));
    // The fleet's ssh config with room to connect: hundreds of key exchanges at once on a
    // 2-CPU machine take longer than its 5 s ConnectTimeout, for every client alike.
    let ssh_config = w.join("ssh_config");
    let text = fs::read_to_string(fleet.ssh_config()).expect("read the fleet's ssh config");
    fs::write(
        &ssh_config,
        text.replace("ConnectTimeout 5\n", "ConnectTimeout 120\n"),
    )
    .expect("write ssh_config");
    let spec = FloorSpec {
        user: fleet::USER.into(),
        key: fleet.client_key().into(),
        known_hosts: fleet.known_hosts().into(),
        payload: payload_path.clone(),
        hosts: fleet
            .hosts()
            .iter()
            .map(|h| (h.name().to_string(), h.addr().to_string(), h.port()))
            .collect(),
    };
    fs::write(w.join("floor.json"), serde_json::to_vec(&spec).unwrap()).expect("write spec");
    fs::write(
        w.join("openssh.sh"),
        openssh_script(&fleet, &ssh_config, w, &payload_path),
    )
    .expect("write script");
    // Not in the playbook's folder: rdeploy reads ./ansible.cfg too.
    fs::create_dir(w.join("ansible")).expect("mkdir ansible");
    fs::write(
        w.join("ansible/ansible.cfg"),
        ansible_cfg(w, o.hosts, &ssh_config),
    )
    .expect("write ansible.cfg");

    let forks = o.hosts.to_string();
    let rdeploy_cmd = || {
        let mut c = Command::new(&rdeploy);
        c.current_dir(w)
            .args([
                "run",
                "bench.yaml",
                "-i",
                "inventory.yaml",
                "--forks",
                &forks,
            ])
            .arg("--ssh-config")
            .arg(&ssh_config)
            .args(["--output", "json"])
            .env("NO_COLOR", "1")
            .env("HOME", w);
        c
    };

    let mut results: BTreeMap<&str, Vec<Measure>> = BTreeMap::new();
    let mut record = |name: &'static str, m: Result<Measure, String>, check: bool| -> bool {
        let m = m.and_then(|m| {
            if check {
                verify(&fleet, &payload).map(|()| m)
            } else {
                Ok(m)
            }
        });
        match m {
            Ok(m) => {
                eprintln!(
                    "  {name:<18} {:7.2} s wall {:7.2} s CPU {:6.1} MB {:7.2} s machine CPU",
                    m.wall.as_secs_f64(),
                    m.cpu.as_secs_f64(),
                    m.maxrss as f64 / 1024.0,
                    m.machine.as_secs_f64()
                );
                results.entry(name).or_default().push(m);
                true
            }
            Err(e) => {
                eprintln!("  {name}: FAILED: {e}");
                false
            }
        }
    };
    let mut failed = false;
    for rep in 1..=o.reps {
        eprintln!("repetition {rep}/{}", o.reps);
        reset(&fleet);
        let mut c = Command::new(&me);
        c.arg("floor").arg(w.join("floor.json"));
        failed |= !record("floor (russh)", measure(&mut c, &w.join("floor.log")), true);

        reset(&fleet);
        let mut c = Command::new(&me);
        c.arg("sftp-floor").arg(w.join("floor.json"));
        let m = measure(&mut c, &w.join("sftp-floor.log"));
        failed |= !record("sftp floor (russh)", m, true);

        reset(&fleet);
        let mut c = Command::new("bash");
        c.arg(w.join("openssh.sh"));
        failed |= !record("openssh", measure(&mut c, &w.join("openssh.log")), true);

        reset(&fleet);
        let log1 = w.join(format!("rdeploy-first-{rep}.json"));
        failed |= !record("rdeploy first", measure(&mut rdeploy_cmd(), &log1), true);
        let log2 = w.join(format!("rdeploy-second-{rep}.json"));
        failed |= !record("rdeploy second", measure(&mut rdeploy_cmd(), &log2), true);
        if rep == 1 {
            commands_per_task(&log1, "first");
            commands_per_task(&log2, "second");
            check_unchanged(&log2);
        }
    }
    // Host processes, in runs of their own: strace slows the host it watches.
    let mut procs: Vec<(&str, HostProcs)> = Vec::new();
    if which("strace").is_none() {
        eprintln!("host processes: not counted (strace is not installed)");
    } else {
        eprintln!(
            "host processes (strace -f on {}'s sshd, one run each)",
            fleet.host(0).name()
        );
        let runs: [(&str, bool); 4] = [
            ("floor (russh)", true),
            ("sftp floor (russh)", true),
            ("rdeploy first", true),
            ("rdeploy second", false),
        ];
        for (name, fresh) in runs {
            if fresh {
                reset(&fleet);
            }
            let mut c = match name {
                "floor (russh)" => {
                    let mut c = Command::new(&me);
                    c.arg("floor").arg(w.join("floor.json"));
                    c
                }
                "sftp floor (russh)" => {
                    let mut c = Command::new(&me);
                    c.arg("sftp-floor").arg(w.join("floor.json"));
                    c
                }
                _ => rdeploy_cmd(),
            };
            let tag = name.split(' ').take(2).collect::<Vec<_>>().join("-");
            let counted = count_host_processes(&fleet, w, &tag, &mut c)
                .and_then(|p| verify(&fleet, &payload).map(|()| p));
            match counted {
                Ok(p) => {
                    eprintln!(
                        "  {name:<18} {:.1} programs, {:.1} processes, {:.1} sshd's own per host ({})",
                        p.programs,
                        p.processes,
                        p.sshd,
                        p.shown()
                    );
                    procs.push((name, p));
                }
                Err(e) => {
                    eprintln!("  {name}: FAILED: {e}");
                    failed = true;
                }
            }
        }
    }
    match (o.ansible, which("ansible-playbook")) {
        (false, _) => eprintln!("ansible-playbook: skipped (--no-ansible)"),
        (true, None) => eprintln!("ansible-playbook: not installed"),
        (true, Some(ansible)) => {
            eprintln!("ansible-playbook (one run)");
            reset(&fleet);
            let mut c = Command::new(ansible);
            c.current_dir(w)
                .args(["-i", "inventory.yaml", "bench.yaml"])
                .env("ANSIBLE_CONFIG", w.join("ansible/ansible.cfg"))
                .env("ANSIBLE_NOCOLOR", "1");
            let m = measure(&mut c, &w.join("ansible.log"));
            failed |= !record("ansible-playbook", m, true);
            close_masters(&w.join("acp"));
        }
    }
    report(&o, &results, &procs);
    if o.hold > 0 {
        eprintln!(
            "holding the fleet for {} s; work folder {} (rdeploy: {})",
            o.hold,
            w.display(),
            rdeploy_cmd()
                .get_args()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        // Ends early when the file is removed: a signal would leave the fleet running.
        let flag = w.join("hold");
        fs::write(&flag, "remove this file to stop the fleet\n").expect("write hold");
        eprintln!("remove {} to stop earlier", flag.display());
        let until = Instant::now() + Duration::from_secs(o.hold);
        while Instant::now() < until && flag.exists() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    drop(fleet);
    if failed {
        eprintln!("fleet_bench: a contender failed; its figures are left out");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Prints how many commands each task of an rdeploy run sent to one host, from its JSON events.
fn commands_per_task(log: &Path, label: &str) {
    let Ok(text) = fs::read_to_string(log) else {
        return;
    };
    let mut task = String::new();
    let mut per_task: Vec<(String, u64, u64)> = Vec::new();
    for line in text.lines() {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match e["event"].as_str() {
            Some("task") => {
                task = e["name"].as_str().unwrap_or("?").to_string();
                per_task.push((task.clone(), 0, 0));
            }
            Some("result") => {
                if let Some(last) = per_task.last_mut().filter(|l| l.0 == task) {
                    last.1 += e["result"]["commands"].as_u64().unwrap_or(0);
                    last.2 += 1;
                }
            }
            _ => {}
        }
    }
    let total: u64 = per_task.iter().map(|t| t.1).sum();
    let hosts = per_task.first().map_or(1, |t| t.2.max(1));
    let shown: Vec<String> = per_task
        .iter()
        .map(|(t, c, n)| format!("{t} {:.1}", *c as f64 / (*n).max(1) as f64))
        .collect();
    eprintln!(
        "  rdeploy {label} run: {:.1} commands per host ({})",
        total as f64 / hosts as f64,
        shown.join(", ")
    );
}

/// The second run must change nothing: says so when it did.
fn check_unchanged(log: &Path) {
    let Ok(text) = fs::read_to_string(log) else {
        return;
    };
    let changed = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "result" && e["result"]["status"] == "changed")
        .count();
    if changed > 0 {
        eprintln!("  note: the rdeploy second run reported {changed} changed results");
    }
}

fn report(o: &Options, results: &BTreeMap<&str, Vec<Measure>>, procs: &[(&str, HostProcs)]) {
    let floor = results
        .get("floor (russh)")
        .map(|v| median(v.iter().map(|m| m.wall.as_secs_f64()).collect()));
    println!(
        "\nfleet benchmark: {} hosts ({} per sshd), 10 steps per host, median of {} runs \
         (ansible-playbook: 1 run)",
        o.hosts, o.per_sshd, o.reps
    );
    println!(
        "| {:<18} | {:>8} | {:>8} | {:>11} | {:>12} | {:>14} |",
        "contender", "wall s", "CPU s", "peak RSS MB", "wall / floor", "machine CPU s"
    );
    println!(
        "|{:-<20}|{:->10}|{:->10}|{:->13}|{:->14}|{:->16}|",
        "", "", "", "", "", ""
    );
    let order = [
        "floor (russh)",
        "sftp floor (russh)",
        "openssh",
        "ansible-playbook",
        "rdeploy first",
        "rdeploy second",
    ];
    for name in order {
        let Some(v) = results.get(name) else {
            continue;
        };
        let wall = median(v.iter().map(|m| m.wall.as_secs_f64()).collect());
        let cpu = median(v.iter().map(|m| m.cpu.as_secs_f64()).collect());
        let rss = median(v.iter().map(|m| m.maxrss as f64 / 1024.0).collect());
        let machine = median(v.iter().map(|m| m.machine.as_secs_f64()).collect());
        let ratio = floor.map_or("-".to_string(), |f| format!("{:.2}x", wall / f));
        println!(
            "| {name:<18} | {wall:>8.2} | {cpu:>8.2} | {rss:>11.1} | {ratio:>12} | {machine:>14.2} |"
        );
    }
    if procs.is_empty() {
        return;
    }
    println!(
        "\nhost processes per host (one run each, strace -f on one host's sshd; programs: \
         execve of anything but sshd; processes: those that ran one, or were forked by one; \
         sshd's own: the connection's sshd processes, internal-sftp sessions included)"
    );
    println!(
        "| {:<18} | {:>8} | {:>9} | {:>10} | {:<40} |",
        "contender", "programs", "processes", "sshd's own", "programs started"
    );
    println!(
        "|{:-<20}|{:->10}|{:->11}|{:->12}|{:-<42}|",
        "", "", "", "", ""
    );
    for (name, p) in procs {
        println!(
            "| {name:<18} | {:>8.1} | {:>9.1} | {:>10.1} | {:<40} |",
            p.programs,
            p.processes,
            p.sshd,
            p.shown()
        );
    }
}

/// What one run started on one host, per host (an sshd serving K hosts is divided by K).
struct HostProcs {
    /// Successful `execve` of anything but sshd.
    programs: f64,
    /// Processes that ran such a program, or were forked by one (subshells).
    processes: f64,
    /// The other new processes: sshd's own for each connection (the listener's fork, the
    /// re-exec, privilege separation, sessions; an `internal-sftp` session is one of these).
    sshd: f64,
    /// Programs by name, per host.
    by_program: BTreeMap<String, f64>,
}

impl HostProcs {
    fn shown(&self) -> String {
        let mut v: Vec<(&String, &f64)> = self.by_program.iter().collect();
        v.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
        let v: Vec<String> = v.iter().map(|(n, c)| format!("{n} {c:.0}")).collect();
        if v.is_empty() {
            "-".into()
        } else {
            v.join(", ")
        }
    }
}

/// Runs `cmd` with `strace -f` attached to the first host's sshd and counts what the run
/// started there (see [`HostProcs`]). The host's sessions must be gone before strace stops.
fn count_host_processes(
    fleet: &Fleet,
    w: &Path,
    tag: &str,
    cmd: &mut Command,
) -> Result<HostProcs, String> {
    let host = fleet.host(0);
    let sshd = host.sshd_pid();
    let served = fleet
        .hosts()
        .iter()
        .filter(|h| h.sshd_pid() == sshd)
        .count()
        .max(1);
    let trace = w.join(format!("strace-{tag}.txt"));
    let mut strace = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-s",
            "0",
            "--decode-pids=pidns",
            "-e",
            "signal=none",
        ])
        .args(["-e", "trace=execve,fork,vfork,clone,clone3", "-o"])
        .arg(&trace)
        .args(["-p", &sshd.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("strace: {e}"))?;
    let stop = |strace: &mut std::process::Child| {
        // SAFETY: kill has no memory preconditions; the PID is our unreaped child.
        unsafe { libc::kill(strace.id() as libc::pid_t, libc::SIGINT) };
        let _ = strace.wait();
    };
    // Attached when the sshd names strace as its tracer.
    let tracer = |pid: u32| -> Option<u32> {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("TracerPid:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let until = Instant::now() + Duration::from_secs(10);
    while tracer(sshd) != Some(strace.id()) {
        if Instant::now() > until || strace.try_wait().ok().flatten().is_some() {
            stop(&mut strace);
            return Err(format!("strace did not attach to sshd {sshd}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = measure(cmd, &w.join(format!("counted-{tag}.log")));
    // The sessions end a little after the client: wait until only the sshd is left.
    let until = Instant::now() + Duration::from_secs(10);
    while host.processes().len() > 1 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop(&mut strace);
    run?;
    let text = fs::read_to_string(&trace).map_err(|e| format!("{}: {e}", trace.display()))?;
    let c = count_trace(&text);
    let per = |n: usize| n as f64 / served as f64;
    Ok(HostProcs {
        programs: per(c.programs),
        processes: per(c.processes),
        sshd: per(c.new_pids - c.processes),
        by_program: c.by_program.into_iter().map(|(k, v)| (k, per(v))).collect(),
    })
}

/// Counts from an `strace -f --decode-pids=pidns -e trace=execve,fork,vfork,clone,clone3`
/// log (see [`HostProcs`]; here for the whole traced sshd).
#[derive(Default)]
struct TraceCount {
    programs: usize,
    processes: usize,
    new_pids: usize,
    by_program: BTreeMap<String, usize>,
}

fn count_trace(text: &str) -> TraceCount {
    use std::collections::{HashMap, HashSet};
    let is_sshd = |prog: &str| prog.rsplit('/').next() == Some("sshd");
    // pid -> the program it runs now (a pid not seen yet runs sshd: everything comes from it).
    let mut prog: HashMap<u32, String> = HashMap::new();
    let mut pending_exec: HashMap<u32, String> = HashMap::new();
    let mut ran_other: HashSet<u32> = HashSet::new();
    let mut new: HashSet<u32> = HashSet::new();
    let mut c = TraceCount::default();
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        let (call, resumed) = match rest.strip_prefix("<... ") {
            Some(r) => (r.split(' ').next().unwrap_or(""), true),
            None => (rest.split('(').next().unwrap_or(""), false),
        };
        if call == "execve" && !resumed {
            let path = rest.split('"').nth(1).unwrap_or("").to_string();
            pending_exec.insert(pid, path);
        }
        // The result, when this line has it: `= N` or `= N /* M in strace's PID NS */`.
        let Some((_, result)) = rest.rsplit_once(") = ").or_else(|| {
            rest.rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().strip_prefix("= ").map(|r| ("", r)))
        }) else {
            continue;
        };
        let result = result.trim();
        let value = match result.split_once("/* ") {
            Some((_, ns)) => ns.split(' ').next().unwrap_or(""),
            None => result.split(' ').next().unwrap_or(""),
        };
        let Ok(value) = value.parse::<i64>() else {
            continue;
        };
        match call {
            "execve" if value == 0 => {
                let path = pending_exec.remove(&pid).unwrap_or_default();
                if !is_sshd(&path) {
                    c.programs += 1;
                    ran_other.insert(pid);
                    let base = path.rsplit('/').next().unwrap_or(&path).to_string();
                    *c.by_program.entry(base).or_default() += 1;
                }
                prog.insert(pid, path);
            }
            "execve" => {
                pending_exec.remove(&pid);
            }
            "clone" | "clone3" | "fork" | "vfork" if value > 0 => {
                let child = value as u32;
                new.insert(child);
                let parent = prog.get(&pid).cloned().unwrap_or_else(|| "sshd".into());
                if !is_sshd(&parent) {
                    ran_other.insert(child);
                }
                prog.entry(child).or_insert(parent);
            }
            _ => {}
        }
    }
    c.new_pids = new.len();
    c.processes = ran_other.intersection(&new).count();
    c
}

// ------------------------------------------------------------------ rolling update (issue 5)

/// What the rolling bench deploys with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `serial: 20%`, v1 then v2.
    Serial,
    /// A canary plan (5%, 25%, 50%, 100%) with a 30 s analysis after each step and an approval
    /// after 25%: v1 plainly, then v2 run without a terminal (it stops awaiting approval) and
    /// `rdeploy approve`.
    Canary,
}

/// The canary plan the `canary` mode puts in place of the playbook's `serial`: after each
/// step, the step's hosts' /health measured every 5 s for 30 s (it must answer `ok` within
/// 500 ms); an approval after 25%.
fn canary_plan() -> String {
    let analysis = "      analysis:\n        interval: 5s\n        duration: 30s\n        metrics:\n          - name: health\n            http: \"http://127.0.0.1:{{ app_port }}/health\"\n            body: ok\n            success_condition: latency_ms < 500\n";
    let mut out = String::from("  canary:\n");
    for step in ["5%", "25%", "50%", "100%"] {
        out.push_str(&format!("    - step: \"{step}\"\n{analysis}"));
        if step == "25%" {
            out.push_str("      approve: \"25% done: go on?\"\n");
        }
    }
    out
}

/// `fleet_bench rolling N` and `fleet_bench canary N`: see the file's docs.
fn rolling(args: &[String], mode: Mode) -> ExitCode {
    let Some(n) = args
        .first()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0)
    else {
        return fail("rolling needs a host count".into());
    };
    if args.len() > 1 {
        return fail(format!(
            "rolling takes only a host count, not {:?}",
            &args[1..]
        ));
    }
    let rdeploy = match std::env::var_os("RDEPLOY_BIN") {
        Some(p) => PathBuf::from(p),
        None => return fail("set RDEPLOY_BIN to the release rdeploy binary".into()),
    };
    let work = tempfile::Builder::new()
        .prefix("fleet-rolling-")
        .tempdir()
        .expect("temp dir");
    let w = work.path();
    eprintln!("starting {n} hosts (1 per sshd: each host has its own /srv/app)...");
    let fleet = Fleet::builder().hosts(n).hosts_per_sshd(1).start();

    // Each host's app listens on its own port of 127.0.0.1 (the hosts share the loopback).
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().expect("port").port())
        .collect();
    drop(listeners);
    let mut hosts = serde_json::Map::new();
    for (h, port) in fleet.hosts().iter().zip(&ports) {
        let mut v = fleet.host_vars(h);
        v.insert("app_port".into(), json!(port));
        hosts.insert(h.name().to_string(), Value::Object(v));
    }
    let inv = json!({ "all": { "hosts": hosts } });
    fs::write(
        w.join("inventory.yaml"),
        serde_saphyr::to_string(&inv).expect("serialize the inventory"),
    )
    .expect("write inventory");
    let ssh_config = w.join("ssh_config");
    let text = fs::read_to_string(fleet.ssh_config()).expect("read the fleet's ssh config");
    fs::write(
        &ssh_config,
        text.replace("ConnectTimeout 5\n", "ConnectTimeout 120\n"),
    )
    .expect("write ssh_config");
    let original = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/rolling-update.yaml");
    let text = fs::read_to_string(&original).expect("read playbooks/rolling-update.yaml");
    let serial = "  serial: [1, 2, \"100%\"]\n";
    if !text.contains(serial) {
        return fail(format!(
            "{}: no `{}` line to replace",
            original.display(),
            serial.trim()
        ));
    }
    let plan = match mode {
        Mode::Serial => "  serial: \"20%\"\n".to_string(),
        Mode::Canary => canary_plan(),
    };
    fs::write(w.join("rolling.yaml"), text.replace(serial, &plan)).expect("write playbook");

    let forks = n.to_string();
    let deploy = |version: &str, log: &Path, expected: i32| -> Result<Measure, String> {
        let mut c = Command::new(&rdeploy);
        c.current_dir(w)
            .args([
                "run",
                "rolling.yaml",
                "-i",
                "inventory.yaml",
                "--forks",
                &forks,
            ])
            .stdin(std::process::Stdio::null())
            .arg("--ssh-config")
            .arg(&ssh_config)
            .args(["--output", "json", "-e"])
            .arg(json!({ "app_version": version }).to_string())
            .env("NO_COLOR", "1")
            .env("HOME", w);
        measure_code(&mut c, log, expected)
    };
    if mode == Mode::Canary {
        return canary_run(&fleet, &ports, w, &rdeploy, &ssh_config, &deploy);
    }
    let mut failed = false;
    for (version, log) in [("1.0.0", "rolling-v1.json"), ("2.0.0", "rolling-v2.json")] {
        let log = w.join(log);
        match deploy(version, &log, 0) {
            Ok(m) => {
                let timing = run_end_timing(&log);
                eprintln!(
                    "  v{version}: {:.2} s wall, {:.2} s CPU, {:.1} MB, {:.2} s machine CPU",
                    m.wall.as_secs_f64(),
                    m.cpu.as_secs_f64(),
                    m.maxrss as f64 / 1024.0,
                    m.machine.as_secs_f64()
                );
                if version == "2.0.0" {
                    println!(
                        "\nrolling update: {n} hosts, 5 batches (serial 20%), v1 -> v2\n\
                         v2 run: {:.2} s wall\nrun_end timing: {}",
                        m.wall.as_secs_f64(),
                        timing.map_or("(no run_end event)".to_string(), |t| t.to_string())
                    );
                }
            }
            Err(e) => {
                eprintln!("  v{version}: FAILED: {e}");
                failed = true;
                break;
            }
        }
    }
    if !failed {
        for (h, port) in fleet.hosts().iter().zip(&ports) {
            let body = http_get(*port, "/health");
            if body.trim() != "ok 2.0.0" {
                eprintln!("  {}: /health answered {body:?}", h.name());
                failed = true;
            }
        }
    }
    drop(fleet);
    if failed {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The canary mode's runs: v1 (stopped at the approval, approved), then v2 the same way; the
/// v2 figures are printed: wall time of the run up to the approval and of `rdeploy approve`,
/// and the commands each host ran (from the `result` events).
fn canary_run(
    fleet: &Fleet,
    ports: &[u16],
    w: &Path,
    rdeploy: &Path,
    ssh_config: &Path,
    deploy: &dyn Fn(&str, &Path, i32) -> Result<Measure, String>,
) -> ExitCode {
    let approve = |id: &str, version: &str, log: &Path| -> Result<Measure, String> {
        let mut c = Command::new(rdeploy);
        c.current_dir(w)
            .args(["approve", id])
            .arg("--ssh-config")
            .arg(ssh_config)
            .args(["--output", "json", "-e"])
            .arg(json!({ "app_version": version }).to_string())
            .stdin(std::process::Stdio::null())
            .env("NO_COLOR", "1")
            .env("HOME", w);
        measure(&mut c, log)
    };
    for version in ["1.0.0", "2.0.0"] {
        let (first, second) = (
            w.join(format!("canary-{version}-1.json")),
            w.join(format!("canary-{version}-2.json")),
        );
        // Without a terminal the run stops at the approval: exit 11.
        let stopped = match deploy(version, &first, 11) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("  v{version}: FAILED: {e}");
                return ExitCode::FAILURE;
            }
        };
        let Some(id) = run_id(&first) else {
            eprintln!("  v{version}: no run id in {}", first.display());
            return ExitCode::FAILURE;
        };
        let approved = match approve(&id, version, &second) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("  v{version} approve: FAILED: {e}");
                return ExitCode::FAILURE;
            }
        };
        let commands = commands_per_host(&[&first, &second]);
        let (lo, hi) = (
            commands.values().min().copied().unwrap_or(0),
            commands.values().max().copied().unwrap_or(0),
        );
        let measured = count_events(&first, "measurement") + count_events(&second, "measurement");
        eprintln!(
            "  v{version}: up to the approval {:.2} s, approve {:.2} s; {measured} measurements; commands per host {lo}..{hi}",
            stopped.wall.as_secs_f64(),
            approved.wall.as_secs_f64(),
        );
        if version == "2.0.0" {
            println!(
                "\ncanary: {} hosts, steps 5% 25% (approval) 50% 100%, 30 s analysis per step\n\
                 v2: {:.2} s to the approval, {:.2} s after it ({:.2} s of rdeploy in all); \
                 {measured} measurements; commands per host {lo}..{hi}",
                ports.len(),
                stopped.wall.as_secs_f64(),
                approved.wall.as_secs_f64(),
                stopped.wall.as_secs_f64() + approved.wall.as_secs_f64(),
            );
        }
    }
    let mut failed = false;
    for (h, port) in fleet.hosts().iter().zip(ports) {
        let body = http_get(*port, "/health");
        if body.trim() != "ok 2.0.0" {
            eprintln!("  {}: /health answered {body:?}", h.name());
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn json_events(log: &Path) -> Vec<Value> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

fn run_id(log: &Path) -> Option<String> {
    json_events(log)
        .into_iter()
        .find(|e| e["event"] == "run_end")
        .and_then(|e| e["run_id"].as_str().map(str::to_string))
}

fn count_events(log: &Path, kind: &str) -> usize {
    json_events(log)
        .iter()
        .filter(|e| e["event"] == kind)
        .count()
}

/// Commands each host ran, summed over the `result` events of the logs.
fn commands_per_host(logs: &[&Path]) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for log in logs {
        for e in json_events(log) {
            if e["event"] == "result"
                && let Some(h) = e["result"]["host"].as_str()
            {
                *out.entry(h.to_string()).or_insert(0) +=
                    e["result"]["commands"].as_u64().unwrap_or(0);
            }
        }
    }
    out
}

/// The `timing` object of the `run_end` event in an `--output json` log.
fn run_end_timing(log: &Path) -> Option<Value> {
    fs::read_to_string(log)
        .ok()?
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "run_end")
        .map(|e| e["timing"].clone())
}

/// The body of `GET path` on 127.0.0.1:`port` (empty on any error).
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An strace log of one host's sshd: a connection (sshd's forks and re-exec), a session
    /// whose shell runs a command and a subshell, a failed PATH lookup, and the child's line
    /// printed before its parent's `vfork` returned.
    const TRACE: &str = r#"100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD, child_tidptr=0x7f) = 7 /* 201 in strace's PID NS */
201 execve("/usr/sbin/sshd", [...], 0x55 /* 1 var */) = 0
201 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD, child_tidptr=0x7f) = 8 /* 202 in strace's PID NS */
201 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD, child_tidptr=0x7f) = 9 /* 203 in strace's PID NS */
203 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD, child_tidptr=0x7f) = 10 /* 204 in strace's PID NS */
204 execve("/bin/sh", [...], 0x55 /* 9 vars */) = 0
204 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD, child_tidptr=0x7f) = 11 /* 205 in strace's PID NS */
204 vfork( <unfinished ...>
206 execve("/usr/local/bin/cat", [...], 0x55 /* 9 vars */) = -1 ENOENT (No such file or directory)
206 execve("/usr/bin/cat", [...], 0x55 /* 9 vars */ <unfinished ...>
204 <... vfork resumed>)              = 12 /* 206 in strace's PID NS */
206 <... execve resumed>)             = 0
"#;

    #[test]
    fn count_trace_tells_programs_subshells_and_sshd_apart() {
        let c = count_trace(TRACE);
        // sh and cat; sshd's re-exec and the failed lookup are not programs started.
        assert_eq!(c.programs, 2);
        assert_eq!(c.by_program.get("sh"), Some(&1));
        assert_eq!(c.by_program.get("cat"), Some(&1));
        // The shell's process, its subshell (205, no exec of its own) and cat's.
        assert_eq!(c.processes, 3);
        // 201 (re-exec'd sshd), 202, 203: the connection's sshd processes.
        assert_eq!(c.new_pids - c.processes, 3);
    }

    #[test]
    fn ssh_string_is_length_then_bytes() {
        let mut out = Vec::new();
        ssh_string(&mut out, "/a");
        ssh_string(&mut out, "");
        assert_eq!(out, [0, 0, 0, 2, b'/', b'a', 0, 0, 0, 0]);
    }
}
