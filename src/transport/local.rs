//! `LocalTransport` (`ansible_connection: local`): runs commands and writes files on the
//! controller itself.
//!
//! It owns process handling for local commands: the argv from [`Cmd::wrap`] is spawned directly
//! (no shell of ours besides the `sh -c` the builder made) in its own process group, stdin fed
//! from the command, stdout/stderr read concurrently into bounded [`Capture`]s, and on timeout,
//! error or cancellation the whole group is sent SIGTERM, given a short grace, then SIGKILL, so
//! no background child outlives its task. The group leader is reaped only after the last signal,
//! so its id cannot have been reused by an unrelated group. `put` writes through a temporary file
//! in the destination's directory. This file must not build shell strings itself (the `chown`
//! in `put` comes from [`super::cmd::chown`]) and must not decide anything about modules.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};

use super::cmd::{self, Cmd};
use super::plane::local::LocalPlane;
use super::{
    Capture, FileAttrs, LocalFile, Output, OutputLimits, Payload, Put, Queued, Reads, Transport,
    TransportError, Truncated, within,
};

/// Default time a timed-out or cancelled command's process group gets between SIGTERM and
/// SIGKILL.
pub const KILL_GRACE_DEFAULT: Duration = Duration::from_secs(2);

/// `RDEPLOY_FILE_PLANE=shell`: the stat helpers' questions run as shell programs here too,
/// instead of being answered with `std::fs` ([`super::files::answer_local`]).
pub fn shell_only() -> bool {
    static SHELL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SHELL.get_or_init(|| std::env::var("RDEPLOY_FILE_PLANE").is_ok_and(|v| v == "shell"))
}

/// Runs commands on the controller (see the module docs).
#[derive(Clone, Debug)]
pub struct LocalTransport {
    name: String,
    limits: OutputLimits,
    default_timeout: Option<Duration>,
    kill_grace: Duration,
    /// Every command run, as [`Cmd::display`] shows it, when recording is on (tests and the
    /// "processes per task" figure); `None` otherwise.
    recorded: Option<Vec<String>>,
    /// The executor's command queued before the next one ([`super::AnyTransport::run_before_next`]).
    pub(crate) queued: Queued,
    /// Reads run ahead ([`super::reads`]).
    pub(crate) reads: Reads,
    /// The stat helpers run as shell programs ([`shell_only`], or [`LocalTransport::with_shell_files`]).
    pub(crate) shell_files: bool,
    /// File changes and backups made with `std::fs` ([`super::plane`]).
    plane: LocalPlane,
}

impl LocalTransport {
    /// A local transport reporting itself as `name` (the inventory host name), with default
    /// output limits, no default timeout and a 2 s kill grace.
    pub fn new(name: impl Into<String>) -> LocalTransport {
        LocalTransport {
            name: name.into(),
            limits: OutputLimits::default(),
            default_timeout: None,
            kill_grace: KILL_GRACE_DEFAULT,
            recorded: None,
            queued: Queued::default(),
            reads: {
                let mut r = Reads::default();
                if !shell_only() {
                    // Its file questions are answered with std::fs: nothing to read ahead.
                    r.serve(None);
                }
                r
            },
            shell_files: shell_only(),
            plane: LocalPlane::default(),
        }
    }

    /// The stat helpers' questions run as shell programs, not answered with `std::fs` (tests
    /// of the commands the shell plane sends).
    pub fn with_shell_files(mut self) -> LocalTransport {
        self.shell_files = true;
        self.reads = Reads::default();
        self
    }

    /// Answers file queries with `std::fs` (no program), as the shell helpers would: `None`
    /// when one of them needs the shell (or they become another user, or the shell plane is
    /// forced). A command queued before the next one runs first.
    pub(crate) async fn plane_answers(
        &mut self,
        queries: &[&super::files::FileQuery],
        become_: Option<&super::Become>,
    ) -> Result<Option<Vec<Output>>, TransportError> {
        if become_.is_some() || self.shell_files {
            return Ok(None);
        }
        self.reads.may_run()?;
        self.run_queued().await?;
        let qs: Vec<super::files::FileQuery> = queries.iter().map(|q| (*q).clone()).collect();
        let answers = tokio::task::spawn_blocking(move || {
            let names = super::files::local_names();
            qs.iter()
                .map(|q| super::files::answer_local(q, names))
                .collect::<Option<Vec<super::files::Answer>>>()
        })
        .await
        .map_err(|e| TransportError::Io(format!("looking at files: {e}")))?;
        Ok(answers.map(|a| a.iter().map(super::files::Answer::to_output).collect()))
    }

    /// Runs the queued command (if any) on its own, before the next command: a local command
    /// costs no round trip. A backup of plain paths is taken with `std::fs` instead of the
    /// program ([`super::plane::backup`]) unless it becomes another user. `Err` when the next
    /// command must not run.
    pub(crate) async fn run_queued(&mut self) -> Result<(), TransportError> {
        if let Some((pre, plan)) = self.queued.planned()
            && pre.get_become().is_none()
            && !self.shell_files
        {
            let plan = plan.clone();
            if let Some(taken) = super::plane::backup::backup(&self.plane, &plan)
                .await
                .map_err(TransportError::Io)
                .transpose()
            {
                self.queued.take_pending();
                let out = taken.map(|b| {
                    // Old runs too large for the plane's walk: one call removes each.
                    for p in &b.prune_left {
                        let _ = std::fs::remove_dir_all(p);
                    }
                    b.out
                });
                tracing::debug!(host = %self.name, "backup with std::fs");
                self.queued.settle_alone(out)?;
                return self.queued.blocked();
            }
        }
        if let Some(pre) = self.queued.take_pending() {
            let r = self.exec(&pre).await;
            self.queued.settle_alone(r)?;
        }
        self.queued.blocked()
    }

    /// Records every command run (see [`LocalTransport::recorded`]).
    pub fn with_recording(mut self) -> LocalTransport {
        self.recorded = Some(Vec::new());
        self
    }

    /// The commands run so far (secrets masked), when recording is on.
    pub fn recorded(&self) -> &[String] {
        self.recorded.as_deref().unwrap_or(&[])
    }

    /// Keep this much of each output stream.
    pub fn with_limits(mut self, limits: OutputLimits) -> LocalTransport {
        self.limits = limits;
        self
    }

    /// Timeout for commands that do not set their own.
    pub fn with_default_timeout(mut self, timeout: Option<Duration>) -> LocalTransport {
        self.default_timeout = timeout;
        self
    }

    /// [`LocalTransport::with_default_timeout`] on a transport in use (set for each task).
    pub fn set_default_timeout(&mut self, timeout: Option<Duration>) {
        self.default_timeout = timeout;
    }

    /// Time between SIGTERM and SIGKILL when a command's group is killed.
    pub fn with_kill_grace(mut self, grace: Duration) -> LocalTransport {
        self.kill_grace = grace;
        self
    }
}

/// A command whose arguments hold a secret (a vault value, `secret_vars`) is started as `sh -c`
/// with a fixed line that reads the real one from stdin ([`crate::transport::cmd::stdin_bootstrap`]),
/// so the secret is not in the controller's process list; a shell script is evaluated in that
/// shell. Other commands are left as they are.
/// `more` says whether more input follows `input` (a streamed body).
fn off_the_argv(
    argv: Vec<String>,
    input: Option<Vec<u8>>,
    more: bool,
) -> Result<(Vec<String>, Option<Vec<u8>>), TransportError> {
    if !argv
        .iter()
        .any(|w| crate::vault::redact::contains_secret(w))
    {
        return Ok((argv, input));
    }
    let line = crate::transport::cmd::argv_line(&argv, input.is_some() || more)
        .map_err(|e| TransportError::Io(e.to_string()))?;
    let (boot, mut data) = crate::transport::cmd::stdin_bootstrap(&line);
    if let Some(i) = &input {
        data.extend_from_slice(i);
    }
    Ok((vec!["sh".into(), "-c".into(), boot.into()], Some(data)))
}

impl LocalTransport {
    /// [`Transport::exec`] with `input` on stdin after the command's own (a `su` password):
    /// written from the caller's buffer, or streamed from its file.
    pub(crate) async fn exec_input(
        &mut self,
        cmd: &Cmd,
        input: Payload<'_>,
    ) -> Result<Output, TransportError> {
        self.run(cmd, Some(input)).await
    }

    /// Runs `cmd` with its own stdin, then `body` when given.
    async fn run(
        &mut self,
        cmd: &Cmd,
        body: Option<Payload<'_>>,
    ) -> Result<Output, TransportError> {
        let body = match body {
            Some(b) => Some(b.reader().await?),
            None => None,
        };
        let (argv, input) = off_the_argv(cmd.wrap()?, cmd.stdin_bytes(), body.is_some())?;
        let Some((program, args)) = argv.split_first() else {
            return Err(TransportError::Io("empty argv".into()));
        };
        let timeout = cmd.get_timeout().or(self.default_timeout);
        tracing::debug!(host = %self.name, cmd = %cmd.display(), ?timeout, "local exec");
        if let Some(log) = self.recorded.as_mut() {
            log.push(cmd.display());
        }

        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .stdin(if input.is_some() || body.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        let mut child = command
            .spawn()
            .map_err(|e| TransportError::Io(format!("cannot start {program}: {e}")))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut group = ProcessGroup::new(child, self.kill_grace)?;

        let run = collect(&mut group, stdin, input, body, stdout, stderr, self.limits);
        let result = match within(timeout, run).await {
            Ok(result) => result,
            Err(gave_up) => {
                group.terminate().await;
                return Err(TransportError::gave_up(gave_up, cmd));
            }
        };
        match result {
            Ok(output) => Ok(output),
            Err(e) => {
                group.terminate().await;
                Err(e)
            }
        }
    }
}

impl Transport for LocalTransport {
    async fn exec(&mut self, cmd: &Cmd) -> Result<Output, TransportError> {
        // File changes (mkdir -p, chmod, chown, a symlink swap) with std::fs, unless they
        // become another user.
        if let Some(ops) = cmd.file_ops()
            && cmd.get_become().is_none()
            && !self.shell_files
            && let Some(out) = super::plane::ops::apply(&self.plane, ops)
                .await
                .map_err(TransportError::Io)?
        {
            return Ok(out);
        }
        self.run(cmd, None).await
    }

    async fn put(
        &mut self,
        data: Payload<'_>,
        path: &str,
        attrs: &FileAttrs,
    ) -> Result<Put, TransportError> {
        let dest = absolute(path)?;
        let (dir, name) = match (dest.parent(), dest.file_name()) {
            (Some(dir), Some(name)) => (dir.to_path_buf(), name.to_string_lossy().into_owned()),
            _ => return Err(TransportError::Io(format!("put: {path} names no file"))),
        };
        let tmp = dir.join(format!(
            ".{name}.rdeploy-tmp.{}.{}",
            std::process::id(),
            unique_suffix()
        ));
        let written = {
            let data = match data {
                Payload::Bytes(b) => Source::Bytes(b.to_vec()),
                Payload::File(f) => Source::File(f.clone()),
            };
            let tmp = tmp.clone();
            let dest = dest.clone();
            let mode = attrs.mode;
            blocking(move || write_temp(&tmp, &dest, &data, mode)).await
        };
        let (file, mode) = match written {
            Ok(v) => v,
            Err(e) => {
                remove_quietly(&tmp).await;
                return Err(e);
            }
        };
        let result = self.finish_put(file, mode, &tmp, &dest, &dir, attrs).await;
        if result.is_err() {
            remove_quietly(&tmp).await;
        }
        result
    }

    async fn get(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>, TransportError> {
        let p = absolute(path)?;
        let file = tokio::fs::File::open(&p)
            .await
            .map_err(|e| io_error("open", path, &e))?;
        let mut buf = Vec::new();
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut buf)
            .await
            .map_err(|e| io_error("read", path, &e))?;
        if buf.len() as u64 > max_bytes {
            return Err(TransportError::TooLarge {
                path: path.to_string(),
                max_bytes,
            });
        }
        Ok(buf)
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl LocalTransport {
    /// chown (through the Cmd builder, which resolves names), chmod, fsync, rename, fsync dir,
    /// then check that `dest` is the very file we wrote.
    async fn finish_put(
        &mut self,
        file: std::fs::File,
        mode: u32,
        tmp: &Path,
        dest: &Path,
        dir: &Path,
        attrs: &FileAttrs,
    ) -> Result<Put, TransportError> {
        let mut put = Put::default();
        if attrs.keep {
            put.not_kept = self.keep_owner(tmp, attrs).await?;
        } else if attrs.owner.is_some() || attrs.group.is_some() {
            let tmp_str = tmp.to_string_lossy();
            let out = self
                .exec(&cmd::chown(
                    &tmp_str,
                    attrs.owner.as_deref(),
                    attrs.group.as_deref(),
                ))
                .await?;
            if !out.success() {
                return Err(TransportError::Io(format!(
                    "chown {}: {}",
                    dest.display(),
                    out.stderr_lossy().trim_end()
                )));
            }
        }
        let tmp = tmp.to_path_buf();
        let dest = dest.to_path_buf();
        let dir = dir.to_path_buf();
        blocking(move || {
            // chmod after chown: changing the owner clears setuid/setgid bits.
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| io_error("chmod", &tmp.display().to_string(), &e))?;
            file.sync_all()
                .map_err(|e| io_error("fsync", &tmp.display().to_string(), &e))?;
            // rename(2) replaces a symlink at `dest` itself; it never writes through it.
            std::fs::rename(&tmp, &dest)
                .map_err(|e| io_error("rename onto", &dest.display().to_string(), &e))?;
            if let Err(e) = std::fs::File::open(&dir).and_then(|d| d.sync_all()) {
                tracing::debug!(dir = %dir.display(), error = %e, "fsync of directory failed");
            }
            let ours = file
                .metadata()
                .map_err(|e| io_error("stat", &dest.display().to_string(), &e))?;
            let there = std::fs::symlink_metadata(&dest)
                .map_err(|e| io_error("stat", &dest.display().to_string(), &e))?;
            if (ours.dev(), ours.ino()) != (there.dev(), there.ino()) {
                return Err(TransportError::Protocol(format!(
                    "{} was replaced by another file while we wrote it",
                    dest.display()
                )));
            }
            Ok(put)
        })
        .await
    }

    /// [`FileAttrs::keep`]: the replaced file's owner and group where permitted (both, else the
    /// group), never a failure; `OWNER:GROUP` of the file when they were not both kept.
    async fn keep_owner(
        &mut self,
        tmp: &Path,
        attrs: &FileAttrs,
    ) -> Result<Option<String>, TransportError> {
        let keep = cmd::keep_owner(
            &tmp.to_string_lossy(),
            attrs.owner.as_deref(),
            attrs.group.as_deref(),
        );
        let out = self.exec(&keep).await?;
        Ok(out
            .stdout_lossy()
            .lines()
            .find_map(|l| l.strip_prefix(cmd::NOT_KEPT))
            .map(str::to_string))
    }
}

/// What [`write_temp`] writes: bytes, or a controller file copied in chunks.
enum Source {
    Bytes(Vec<u8>),
    File(LocalFile),
}

/// Create the temporary file exclusively (never through a symlink), write, fsync, read back and
/// compare sha256 (in chunks: a large file is never held whole). Returns the open file and the
/// mode to give it.
fn write_temp(
    tmp: &Path,
    dest: &Path,
    data: &Source,
    mode: Option<u32>,
) -> Result<(std::fs::File, u32), TransportError> {
    let shown = dest.display().to_string();
    let mode = match mode {
        Some(m) => m & 0o7777,
        None => match std::fs::symlink_metadata(dest) {
            Ok(m) if m.file_type().is_file() => m.mode() & 0o7777,
            _ => 0o644,
        },
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| io_error("create temporary file for", &shown, &e))?;
    let want = match data {
        Source::Bytes(b) => {
            file.write_all(b)
                .map_err(|e| io_error("write", &shown, &e))?;
            hex::encode(Sha256::digest(b))
        }
        Source::File(f) => {
            let src = std::fs::File::open(&f.path)
                .map_err(|e| io_error("read", &f.path.display().to_string(), &e))?;
            std::io::copy(&mut src.take(f.len), &mut file)
                .map_err(|e| io_error("write", &shown, &e))?;
            f.sha256.clone()
        }
    };
    file.sync_all().map_err(|e| io_error("write", &shown, &e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| io_error("read back", &shown, &e))?;
    let back = super::sha256_reader(&mut file).map_err(|e| io_error("read back", &shown, &e))?;
    if back != want {
        return Err(TransportError::Protocol(format!(
            "sha256 of {shown} differs after writing"
        )));
    }
    Ok((file, mode))
}

fn absolute(path: &str) -> Result<PathBuf, TransportError> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(TransportError::Io(format!("{path}: path must be absolute")));
    }
    Ok(p.to_path_buf())
}

fn io_error(what: &str, path: &str, e: &std::io::Error) -> TransportError {
    TransportError::Io(format!("{what} {path}: {e}"))
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{}{nanos:09}", N.fetch_add(1, Ordering::Relaxed))
}

async fn remove_quietly(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove temporary file");
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TransportError> + Send + 'static,
) -> Result<T, TransportError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TransportError::Io(format!("blocking task failed: {e}")))?
}

/// Feed stdin, drain stdout and stderr concurrently, then reap the leader.
async fn collect(
    group: &mut ProcessGroup,
    stdin: Option<ChildStdin>,
    input: Option<Vec<u8>>,
    body: Option<Box<dyn AsyncRead + Send + Unpin + '_>>,
    stdout: Option<impl AsyncRead + Unpin>,
    stderr: Option<impl AsyncRead + Unpin>,
    limits: OutputLimits,
) -> Result<Output, TransportError> {
    let write = async move {
        if let Some(mut pipe) = stdin {
            let head = input.unwrap_or_default();
            let sent = match body {
                Some(mut body) => {
                    let mut all = AsyncReadExt::chain(head.as_slice(), &mut body);
                    tokio::io::copy(&mut all, &mut pipe).await.map(|_| ())
                }
                None => pipe.write_all(&head).await,
            };
            match sent {
                // A command that does not read all its stdin is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other?,
            }
            // Dropping the pipe closes it: the command sees EOF.
        }
        Ok::<(), std::io::Error>(())
    };
    let (written, out, err) = tokio::join!(
        write,
        read_bounded(stdout, limits),
        read_bounded(stderr, limits)
    );
    written.map_err(|e| TransportError::Io(format!("writing stdin: {e}")))?;
    let (stdout, dropped_out) =
        out.map_err(|e| TransportError::Io(format!("reading stdout: {e}")))?;
    let (stderr, dropped_err) =
        err.map_err(|e| TransportError::Io(format!("reading stderr: {e}")))?;
    let status = group.wait().await?;
    Ok(Output {
        status,
        stdout,
        stderr,
        truncated: Truncated {
            stdout: dropped_out,
            stderr: dropped_err,
        },
    })
}

async fn read_bounded(
    stream: Option<impl AsyncRead + Unpin>,
    limits: OutputLimits,
) -> std::io::Result<(Vec<u8>, u64)> {
    let mut capture = Capture::new(limits);
    if let Some(mut stream) = stream {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            capture.push(&buf[..n]);
        }
    }
    Ok(capture.finish())
}

/// A spawned command's process group. Until [`ProcessGroup::wait`] has reaped the leader, dropping
/// or terminating it kills the whole group (TERM, grace, KILL) and only then reaps the leader.
struct ProcessGroup {
    child: Option<Child>,
    pgid: Pid,
    grace: Duration,
}

impl ProcessGroup {
    fn new(child: Child, grace: Duration) -> Result<ProcessGroup, TransportError> {
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .filter(|&id| id > 1)
            .and_then(Pid::from_raw)
            .ok_or_else(|| TransportError::Io("spawned command has no process id".into()))?;
        Ok(ProcessGroup {
            child: Some(child),
            pgid,
            grace,
        })
    }

    /// Wait for the leader to exit and reap it; the group is then left alone (a daemon the
    /// command deliberately left behind keeps running).
    async fn wait(&mut self) -> Result<i32, TransportError> {
        let Some(child) = self.child.as_mut() else {
            return Err(TransportError::Io("command already reaped".into()));
        };
        let status = child
            .wait()
            .await
            .map_err(|e| TransportError::Io(format!("waiting for command: {e}")))?;
        self.child = None;
        Ok(status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1))
    }

    /// SIGTERM the group, wait up to the grace for the leader to exit, SIGKILL the group, reap.
    async fn terminate(&mut self) {
        if self.child.is_none() {
            return;
        }
        signal_group(self.pgid, Signal::TERM);
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline && !leader_exited(self.pgid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        signal_group(self.pgid, Signal::KILL);
        if let Some(child) = self.child.as_mut()
            && let Err(e) = child.wait().await
        {
            tracing::warn!(pgid = self.pgid.as_raw_nonzero().get(), error = %e, "cannot reap killed command");
        }
        self.child = None;
    }
}

impl Drop for ProcessGroup {
    /// Cancellation: the exec future was dropped while the command ran. Kill the group from a
    /// thread (no async in drop); the leader is reaped when the thread drops the child.
    fn drop(&mut self) {
        let Some(child) = self.child.take() else {
            return;
        };
        let (pgid, grace) = (self.pgid, self.grace);
        tracing::debug!(
            pgid = pgid.as_raw_nonzero().get(),
            "command cancelled; killing its process group"
        );
        signal_group(pgid, Signal::TERM);
        let spawned = std::thread::Builder::new()
            .name("rdeploy-kill".into())
            .spawn(move || {
                let deadline = Instant::now() + grace;
                while Instant::now() < deadline && !leader_exited(pgid) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                signal_group(pgid, Signal::KILL);
                drop(child);
            });
        if spawned.is_err() {
            signal_group(pgid, Signal::KILL);
        }
    }
}

/// Signal every process in the group; a group that is already gone is fine.
fn signal_group(pgid: Pid, sig: Signal) {
    match rustix::process::kill_process_group(pgid, sig) {
        Ok(()) => {}
        Err(rustix::io::Errno::SRCH) => {}
        Err(e) => {
            tracing::warn!(pgid = pgid.as_raw_nonzero().get(), error = %e, "cannot signal process group")
        }
    }
}

/// Whether the leader has exited, without reaping it (WNOWAIT), so its pid stays reserved.
fn leader_exited(pid: Pid) -> bool {
    match rustix::process::waitid(
        WaitId::Pid(pid),
        WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
    ) {
        Ok(Some(_)) => true,
        Ok(None) => false,
        // ECHILD: already reaped.
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::cmd::{
        BatchError, PathKind, chmod, ln_sf_atomic, mkdir_p, mv_f, parse_stat, read_file_cmd, rm_rf,
        stat_cmd, test_e,
    };

    fn local() -> LocalTransport {
        LocalTransport::new("localhost")
    }

    async fn run(cmd: Cmd) -> Output {
        local().exec(&cmd).await.unwrap()
    }

    /// Alive means running or sleeping; a zombie (possible when the container's init does not
    /// reap reparented children) has already exited.
    fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => false,
            Ok(stat) => {
                let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
                !matches!(state, Some(Some('Z' | 'X')))
            }
        }
    }

    async fn read_pid(path: &Path) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(s) = std::fs::read_to_string(path)
                && let Ok(pid) = s.trim().parse()
            {
                return pid;
            }
            assert!(Instant::now() < deadline, "no pid in {}", path.display());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn wait_dead(pid: i32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !alive(pid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// A shell that starts a background `sleep` (which ignores SIGTERM when `stubborn`), records
    /// both pids, and hangs.
    fn hanging(dir: &Path, stubborn: bool) -> Cmd {
        let base = Cmd::raw("sh_pid=$$;").op(if stubborn {
            "trap '' TERM; sleep 300 &"
        } else {
            "sleep 300 &"
        });
        base.op("echo $! >")
            .arg(dir.join("bg").to_string_lossy())
            .op("; echo $sh_pid >")
            .arg(dir.join("sh").to_string_lossy())
            .op("; wait")
    }

    #[tokio::test]
    async fn exit_status_stdout_stderr() {
        let out = run(Cmd::raw("echo out; echo err >&2; exit 3")).await;
        assert_eq!(out.status, 3);
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.truncated, Truncated::default());
        let out = run(Cmd::raw("kill -TERM $$")).await;
        assert_eq!(out.status, 128 + 15);
    }

    #[tokio::test]
    async fn stdin_chdir_env_and_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let out = run(Cmd::raw("cat; pwd; printf %s \"$PW\"")
            .stdin(b"in\0put\n".to_vec())
            .chdir(dir.path().to_string_lossy())
            .env_secret("PW", "p'w"))
        .await;
        let expected = format!("in\0put\n{}\np'w", dir.path().display());
        assert_eq!(out.stdout, expected.as_bytes());
        // No stdin given: /dev/null, not the test's own stdin.
        assert_eq!(run(Cmd::raw("cat")).await.stdout, b"");
        // A command that ignores a large stdin is not an error.
        let out = run(Cmd::raw("exit 0").stdin(vec![b'x'; 4 << 20])).await;
        assert_eq!(out.status, 0);
    }

    #[tokio::test]
    async fn invalid_command_runs_nothing() {
        let err = local()
            .exec(&Cmd::raw("echo").arg("a\0b"))
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::InvalidCommand(_)));
    }

    #[tokio::test]
    async fn output_is_bounded() {
        let mut t = local().with_limits(OutputLimits {
            head: 1000,
            tail: 1000,
        });
        let out = t
            .exec(&Cmd::raw(
                "printf START; head -c 5000000 /dev/zero; printf END; head -c 300000 /dev/zero >&2",
            ))
            .await
            .unwrap();
        assert_eq!(out.stdout.len(), 2000);
        assert!(out.stdout.starts_with(b"START"));
        assert!(out.stdout.ends_with(b"END"));
        assert_eq!(out.truncated.stdout, 5_000_008 - 2000);
        assert_eq!(out.stderr.len(), 2000);
        assert_eq!(out.truncated.stderr, 298_000);
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        for stubborn in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut t = local().with_kill_grace(Duration::from_millis(300));
            let started = Instant::now();
            let err = t
                .exec(&hanging(dir.path(), stubborn).timeout(Duration::from_millis(1500)))
                .await
                .unwrap_err();
            assert!(
                matches!(err, TransportError::TimedOut { after, .. } if after == Duration::from_millis(1500)),
                "{err:?}"
            );
            assert!(started.elapsed() < Duration::from_secs(5));
            let (sh, bg) = (
                read_pid(&dir.path().join("sh")).await,
                read_pid(&dir.path().join("bg")).await,
            );
            assert!(
                wait_dead(sh).await,
                "shell {sh} still alive (stubborn={stubborn})"
            );
            assert!(
                wait_dead(bg).await,
                "sleep {bg} still alive (stubborn={stubborn})"
            );
        }
    }

    #[tokio::test]
    async fn cancelling_exec_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = hanging(dir.path(), true);
        let task = tokio::spawn(async move {
            let mut t = local().with_kill_grace(Duration::from_millis(200));
            t.exec(&cmd).await
        });
        let (sh, bg) = (
            read_pid(&dir.path().join("sh")).await,
            read_pid(&dir.path().join("bg")).await,
        );
        assert!(alive(sh) && alive(bg));
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert!(wait_dead(sh).await, "shell {sh} still alive");
        assert!(wait_dead(bg).await, "sleep {bg} still alive");
    }

    #[tokio::test]
    async fn default_timeout_applies() {
        let mut t = local().with_default_timeout(Some(Duration::from_millis(100)));
        let err = t.exec(&Cmd::raw("sleep 5")).await.unwrap_err();
        assert!(matches!(err, TransportError::TimedOut { .. }));
        // The command's own timeout wins.
        let out = t
            .exec(&Cmd::raw("sleep 0.3").timeout(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(out.status, 0);
    }

    #[tokio::test]
    async fn put_writes_atomically_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.conf");
        let p = path.to_string_lossy().into_owned();
        let mut t = local();
        let attrs = FileAttrs {
            mode: Some(0o640),
            ..FileAttrs::default()
        };
        t.put(Payload::Bytes(b"one"), &p, &attrs).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
        // Mode kept when not given.
        t.put(Payload::Bytes(b"two\0bytes"), &p, &FileAttrs::default())
            .await
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two\0bytes");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
        // No temporary file left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        // New file without a mode: 0644.
        let q = dir.path().join("new").to_string_lossy().into_owned();
        t.put(Payload::Bytes(b""), &q, &FileAttrs::default())
            .await
            .unwrap();
        assert_eq!(std::fs::metadata(&q).unwrap().mode() & 0o7777, 0o644);
    }

    /// A large controller file: 3 MiB of a non-repeating pattern, with its sha256.
    fn big_file(dir: &Path) -> LocalFile {
        let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        let path = dir.join("big.bin");
        std::fs::write(&path, &data).unwrap();
        LocalFile {
            path,
            len: data.len() as u64,
            sha256: hex::encode(Sha256::digest(&data)),
        }
    }

    #[tokio::test]
    async fn put_streams_a_controller_file_and_checks_its_sum() {
        let dir = tempfile::tempdir().unwrap();
        let src = big_file(dir.path());
        let dest = dir.path().join("dest.bin");
        let d = dest.to_string_lossy().into_owned();
        local()
            .put(Payload::File(&src), &d, &FileAttrs::default())
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            std::fs::read(&src.path).unwrap()
        );
        // The file changed since it was hashed: refused, the destination keeps its content,
        // no temporary file stays.
        let stale = LocalFile {
            sha256: "0".repeat(64),
            ..src.clone()
        };
        let e = local()
            .put(Payload::File(&stale), &d, &FileAttrs::default())
            .await
            .unwrap_err();
        assert!(matches!(e, TransportError::Protocol(_)), "{e:?}");
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            std::fs::read(&src.path).unwrap()
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        // A file that cannot be read: an error naming it.
        let gone = LocalFile {
            path: dir.path().join("gone"),
            ..src
        };
        let e = local()
            .put(Payload::File(&gone), &d, &FileAttrs::default())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("gone"), "{e}");
    }

    #[tokio::test]
    async fn exec_input_streams_a_file_after_the_commands_own_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let src = big_file(dir.path());
        let mut t = local();
        let out = t
            .exec_input(&Cmd::raw("wc -c"), Payload::File(&src))
            .await
            .unwrap();
        assert_eq!(out.stdout_lossy().trim(), (3u32 << 20).to_string());
        let out = t
            .exec_input(
                // `read` takes one line and not a byte more (a pipe is read byte by byte).
                &Cmd::raw("IFS= read -r l; printf '%s\\n' \"$l\"; sha256sum")
                    .stdin(b"head\n".to_vec()),
                Payload::File(&src),
            )
            .await
            .unwrap();
        assert_eq!(
            out.stdout_lossy(),
            format!("head\n{}  -\n", src.sha256),
            "the command's own stdin first, then the file"
        );
    }

    #[tokio::test]
    async fn put_replaces_a_symlink_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        local()
            .put(
                Payload::Bytes(b"new"),
                &link.to_string_lossy(),
                &FileAttrs::default(),
            )
            .await
            .unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(std::fs::read(&link).unwrap(), b"new");
    }

    #[tokio::test]
    async fn put_sets_owner_and_group_and_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("owned").to_string_lossy().into_owned();
        let uid = std::fs::metadata(dir.path()).unwrap().uid().to_string();
        let gid = std::fs::metadata(dir.path()).unwrap().gid().to_string();
        let attrs = FileAttrs {
            mode: Some(0o4750),
            owner: Some(uid.clone()),
            group: Some(gid),
            become_: None,
            keep: false,
        };
        local().put(Payload::Bytes(b"x"), &p, &attrs).await.unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(meta.uid().to_string(), uid);
        // chmod came after chown, so setuid survived.
        assert_eq!(meta.mode() & 0o7777, 0o4750);
        let bad = FileAttrs {
            owner: Some("no-such-user-rdeploy".into()),
            ..FileAttrs::default()
        };
        let q = dir.path().join("bad").to_string_lossy().into_owned();
        assert!(local().put(Payload::Bytes(b"x"), &q, &bad).await.is_err());
        assert!(!Path::new(&q).exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn put_refuses_relative_paths_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            local()
                .put(Payload::Bytes(b"x"), "rel", &FileAttrs::default())
                .await
                .is_err()
        );
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(
            local()
                .put(
                    Payload::Bytes(b"x"),
                    &sub.to_string_lossy(),
                    &FileAttrs::default()
                )
                .await
                .is_err()
        );
        assert!(sub.is_dir());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn get_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g");
        std::fs::write(&path, b"0123456789").unwrap();
        let p = path.to_string_lossy();
        assert_eq!(local().get(&p, 10).await.unwrap(), b"0123456789");
        assert!(matches!(
            local().get(&p, 9).await,
            Err(TransportError::TooLarge { max_bytes: 9, .. })
        ));
        assert!(matches!(
            local()
                .get(&dir.path().join("none").to_string_lossy(), 9)
                .await,
            Err(TransportError::Io(_))
        ));
    }

    #[tokio::test]
    async fn stat_reports_each_kind() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let file = d.join("file");
        std::fs::write(&file, b"abc").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o4751)).unwrap();
        std::os::unix::fs::symlink("../weird\ntarget name", d.join("link")).unwrap();
        let fifo = d.join("fifo");
        assert!(
            run(Cmd::raw("mkfifo --").arg(fifo.to_string_lossy()))
                .await
                .success()
        );
        let stat = |p: &Path| stat_cmd(&p.to_string_lossy());
        let mut t = local();

        let st = parse_stat(&t.exec(&stat(&file)).await.unwrap()).unwrap();
        assert_eq!(st.kind, PathKind::File);
        assert_eq!(st.mode, 0o4751);
        assert_eq!(st.size, 3);
        assert_eq!(
            st.sha256.as_deref(),
            Some(hex::encode(Sha256::digest(b"abc")).as_str())
        );
        assert_eq!(st.uid, std::fs::metadata(&file).unwrap().uid());
        assert!(!st.owner.is_empty());

        let st = parse_stat(&t.exec(&stat(&d.join("link"))).await.unwrap()).unwrap();
        assert_eq!(
            st.kind,
            PathKind::Link {
                target: "../weird\ntarget name".into()
            }
        );
        assert_eq!(st.sha256, None);

        let st = parse_stat(&t.exec(&stat(d)).await.unwrap()).unwrap();
        assert_eq!(st.kind, PathKind::Directory);
        let st = parse_stat(&t.exec(&stat(&fifo)).await.unwrap()).unwrap();
        assert_eq!(st.kind, PathKind::Other);
        let st = parse_stat(&t.exec(&stat(&d.join("-n 'x"))).await.unwrap()).unwrap();
        assert_eq!(st.kind, PathKind::Absent);
    }

    #[tokio::test]
    async fn file_helpers_work() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let s = |p: &str| d.join(p).to_string_lossy().into_owned();
        let mut t = local();
        assert!(t.exec(&mkdir_p(&s("a b/c"))).await.unwrap().success());
        assert!(t.exec(&test_e(&s("a b/c"))).await.unwrap().success());
        assert_eq!(t.exec(&test_e(&s("zz"))).await.unwrap().status, 1);
        std::fs::write(s("f"), b"data").unwrap();
        assert!(t.exec(&chmod(&s("f"), 0o600)).await.unwrap().success());
        assert_eq!(std::fs::metadata(s("f")).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            t.exec(&read_file_cmd(&s("f"))).await.unwrap().stdout,
            b"data"
        );
        assert!(t.exec(&mv_f(&s("f"), &s("g"))).await.unwrap().success());
        assert!(!d.join("f").exists() && d.join("g").exists());
        // mv -T never moves into a directory.
        std::fs::write(s("h"), b"").unwrap();
        assert!(!t.exec(&mv_f(&s("h"), &s("a b"))).await.unwrap().success());
        assert!(t.exec(&rm_rf(&s("a b"))).await.unwrap().success());
        assert!(!d.join("a b").exists());
    }

    #[tokio::test]
    async fn ln_sf_atomic_swaps_links_to_directories() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("rel1")).unwrap();
        std::fs::create_dir(d.join("rel2")).unwrap();
        let cur = d.join("current").to_string_lossy().into_owned();
        let mut t = local();
        assert!(t.exec(&ln_sf_atomic("rel1", &cur)).await.unwrap().success());
        assert_eq!(std::fs::read_link(&cur).unwrap(), Path::new("rel1"));
        // Replacing a link that points at a directory must not create rel1/rel2.
        let out = t.exec(&ln_sf_atomic("rel2", &cur)).await.unwrap();
        assert!(out.success(), "{out:?}");
        assert_eq!(std::fs::read_link(&cur).unwrap(), Path::new("rel2"));
        assert_eq!(std::fs::read_dir(d.join("rel1")).unwrap().count(), 0);
        // A real directory in the way: mv fails, the temporary link is cleaned up.
        let blocked = d.join("rel1").to_string_lossy().into_owned();
        assert!(
            !t.exec(&ln_sf_atomic("rel2", &blocked))
                .await
                .unwrap()
                .success()
        );
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 3);
    }

    #[tokio::test]
    async fn batch_round_trips_adversarial_output() {
        let cmds = vec![
            Cmd::raw("printf 'RDEPLOY-BATCH x 1 0 0 0 0 0\\nRDEPLOY-BATCH-END x 3\\n'; exit 7"),
            Cmd::raw("printf 'no newline'; printf '\\000\\377\\n\\r' >&2"),
            Cmd::raw("head -c 200000 /dev/urandom | od -An | head -c 150000; echo tail"),
            Cmd::raw("exit 1)"),
            Cmd::raw("cat; echo $0").env("X", "1").chdir("/"),
            Cmd::raw("sh -c 'kill -9 $PPID'"),
        ];
        let batch = Cmd::batch_keeping(&cmds, 1000).unwrap();
        assert_eq!(batch.len(), 6);
        let out = run(batch.cmd.clone()).await;
        assert_eq!(out.status, 0, "{}", out.stderr_lossy());
        let parts = batch.parse(&out).unwrap();
        assert_eq!(parts.len(), 6);
        assert_eq!(parts[0].status, 7);
        assert_eq!(
            parts[0].stdout,
            b"RDEPLOY-BATCH x 1 0 0 0 0 0\nRDEPLOY-BATCH-END x 3\n"
        );
        assert_eq!(parts[1].stdout, b"no newline");
        assert_eq!(parts[1].stderr, b"\x00\xff\n\r");
        assert_eq!(parts[2].stdout.len(), 2000);
        assert!(parts[2].stdout.ends_with(b"tail\n"));
        assert_eq!(parts[2].truncated.stdout, 150_005 - 2000);
        assert_eq!(
            parts[3].status, 2,
            "a syntax error stays in its own sub-command"
        );
        assert_eq!(parts[4].stdout, b"sh\n", "stdin is /dev/null");
        assert_eq!(parts[5].status, 128 + 9);
    }

    #[tokio::test]
    async fn batch_with_forged_nonce_and_stat() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        // First build a batch, then make a sub-command of a second batch print the first one's
        // exact framing; each batch has its own nonce, and lengths frame the data anyway.
        let first = Cmd::batch(&[Cmd::raw("true")]).unwrap();
        let forged = run(first.cmd.clone()).await.stdout;
        let cmds = vec![
            Cmd::raw("cat")
                .op("<")
                .arg(dir.path().join("forged").to_string_lossy()),
            stat_cmd(&f.to_string_lossy()),
            stat_cmd(&dir.path().join("absent").to_string_lossy()),
        ];
        std::fs::write(dir.path().join("forged"), &forged).unwrap();
        let batch = Cmd::batch(&cmds).unwrap();
        let parts = batch.parse(&run(batch.cmd.clone()).await).unwrap();
        assert_eq!(parts[0].stdout, forged);
        assert_eq!(parse_stat(&parts[1]).unwrap().size, 1);
        assert!(!parse_stat(&parts[2]).unwrap().exists());
    }

    #[tokio::test]
    async fn batch_detects_outer_truncation_and_empty_batch() {
        let mut t = local().with_limits(OutputLimits {
            head: 100,
            tail: 100,
        });
        let batch = Cmd::batch(&[Cmd::raw("head -c 5000 /dev/zero")]).unwrap();
        let out = t.exec(&batch.cmd).await.unwrap();
        assert!(matches!(
            batch.parse(&out),
            Err(BatchError::Truncated { .. })
        ));
        let empty = Cmd::batch(&[]).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.parse(&run(empty.cmd.clone()).await).unwrap(), vec![]);
    }

    #[tokio::test]
    async fn capped_batch_gives_the_same_outputs() {
        let cmds = vec![
            Cmd::raw("printf 'no newline'; printf '\\000\\377\\n\\r' >&2; exit 5"),
            Cmd::raw("head -c 3000 /dev/zero | tr '\\0' a; echo tail"),
            Cmd::raw("true"),
        ];
        let batch = Cmd::batch_keeping(&cmds, 100).unwrap();
        let fast = batch.parse(&run(batch.cmd.clone()).await).unwrap();
        let capped = batch.capped();
        let slow = capped.parse(&run(capped.cmd.clone()).await).unwrap();
        assert_eq!(fast, slow);
        assert_eq!(fast[0].stdout, b"no newline");
        assert_eq!(fast[0].stderr, b"\x00\xff\n\r");
        assert_eq!(fast[1].stdout.len(), 200);
        assert_eq!(fast[1].truncated.stdout, 3005 - 200);
        // Too big for the transport: the fast runner's output is refused, the capped one fits.
        let mut t = local().with_limits(OutputLimits {
            head: 500,
            tail: 500,
        });
        let out = t.exec(&batch.cmd).await.unwrap();
        assert!(matches!(
            batch.parse(&out),
            Err(BatchError::Truncated { .. })
        ));
        let out = t.exec(&capped.cmd).await.unwrap();
        assert_eq!(capped.parse(&out).unwrap(), slow);
    }

    #[tokio::test]
    async fn a_failed_queued_command_blocks_the_next_ones() {
        use crate::transport::{AnyTransport, QueuedOutcome};
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("ran");
        let mut t = AnyTransport::Local(local());
        t.run_before_next(Cmd::raw("echo backup; exit 3"), None);
        let touch = Cmd::raw("touch --").arg(flag.to_string_lossy());
        assert!(matches!(t.exec(&touch).await, Err(TransportError::NotRun)));
        assert!(matches!(t.exec(&touch).await, Err(TransportError::NotRun)));
        assert!(!flag.exists());
        match t.take_queued() {
            Some(QueuedOutcome::Failed(o)) => assert_eq!(o.status, 3),
            other => panic!("{other:?}"),
        }
        t.run_before_next(Cmd::raw("echo backup"), None);
        assert!(t.exec(&touch).await.unwrap().success());
        assert!(flag.exists());
        match t.take_queued() {
            Some(QueuedOutcome::Ran(o)) => assert_eq!(o.stdout, b"backup\n"),
            other => panic!("{other:?}"),
        }
        assert!(t.take_queued().is_none());
    }

    #[tokio::test]
    async fn batch_leaves_no_temp_dir() {
        let dir = tempfile::tempdir().unwrap();
        let batch = Cmd::batch(&[Cmd::raw("echo hi"), Cmd::raw("exit 3")]).unwrap();
        let cmd = batch
            .cmd
            .clone()
            .env("TMPDIR", dir.path().to_string_lossy());
        let parts = batch.parse(&run(cmd).await).unwrap();
        assert_eq!(parts[0].stdout, b"hi\n");
        assert_eq!(parts[1].status, 3);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
