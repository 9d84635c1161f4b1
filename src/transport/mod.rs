//! The transport contract: how the executor runs a [`Cmd`] on a host and moves files to and
//! from it.
//!
//! This module owns the [`Transport`] trait, the bounded [`Output`] every transport returns (the
//! first and last N bytes of each stream, with a count of what was dropped), the
//! [`TransportError`] enum (transport failures only: a non-zero exit status is data in
//! [`Output::status`], not an error) and [`AnyTransport`], the one type the executor holds. It
//! must not build shell strings (that is [`cmd`]'s job), know about modules, or print anything.
//! Implementations live in their own files: [`local`] (`ansible_connection: local`) and [`ssh`]
//! (the default), with [`known_hosts`] and [`ssh_config`] beside it; in tests, `scripted`
//! (canned replies, in-memory files) too.

pub mod cmd;
pub mod files;
pub mod known_hosts;
pub mod local;
pub(crate) mod plane;
mod quickack;
pub mod reads;
#[cfg(test)]
pub mod scripted;
pub(crate) mod sftp;
pub mod ssh;
pub mod ssh_config;

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

pub use cmd::{Batch, BatchError, Become, BecomeMethod, Cmd, CmdError};
pub use local::LocalTransport;
pub use reads::{ReadSet, Reads};
pub use ssh::SshTransport;

/// What a command left behind: exit status and (bounded) output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code; `128 + signal` when the command was killed by a signal.
    pub status: i32,
    /// Standard output (first and last bytes only when `truncated.stdout > 0`).
    pub stdout: Vec<u8>,
    /// Standard error (first and last bytes only when `truncated.stderr > 0`).
    pub stderr: Vec<u8>,
    /// Bytes dropped from the middle of each stream.
    pub truncated: Truncated,
}

impl Output {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Stdout as text (invalid UTF-8 replaced).
    pub fn stdout_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    /// Stderr as text (invalid UTF-8 replaced).
    pub fn stderr_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }
}

/// Bytes dropped from the middle of each stream to keep an [`Output`] bounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Truncated {
    /// Bytes dropped from stdout.
    pub stdout: u64,
    /// Bytes dropped from stderr.
    pub stderr: u64,
}

/// How much of each stream an [`Output`] keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputLimits {
    /// Bytes kept from the start of each stream.
    pub head: usize,
    /// Bytes kept from the end of each stream.
    pub tail: usize,
}

impl Default for OutputLimits {
    /// 1 MiB from the start and 1 MiB from the end of each stream.
    fn default() -> Self {
        OutputLimits {
            head: 1 << 20,
            tail: 1 << 20,
        }
    }
}

/// Collects one output stream in bounded memory: the first `head` bytes, the last `tail` bytes,
/// and a count of the bytes dropped in between. Shared by all transports.
#[derive(Debug)]
pub struct Capture {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    limits: OutputLimits,
    dropped: u64,
}

impl Capture {
    /// An empty capture with these limits.
    pub fn new(limits: OutputLimits) -> Capture {
        Capture {
            head: Vec::new(),
            tail: VecDeque::new(),
            limits,
            dropped: 0,
        }
    }

    /// Append bytes read from the stream.
    pub fn push(&mut self, mut data: &[u8]) {
        let room = self.limits.head.saturating_sub(self.head.len());
        let take = room.min(data.len());
        self.head.extend_from_slice(&data[..take]);
        data = &data[take..];
        if data.is_empty() {
            return;
        }
        let cap = self.limits.tail;
        if data.len() >= cap {
            self.dropped += (self.tail.len() + data.len() - cap) as u64;
            self.tail.clear();
            self.tail.extend(&data[data.len() - cap..]);
        } else {
            self.tail.extend(data);
            let excess = self.tail.len().saturating_sub(cap);
            if excess > 0 {
                self.tail.drain(..excess);
                self.dropped += excess as u64;
            }
        }
    }

    /// The kept bytes (head then tail) and the number of bytes dropped between them.
    pub fn finish(self) -> (Vec<u8>, u64) {
        let mut bytes = self.head;
        bytes.extend(self.tail);
        (bytes, self.dropped)
    }
}

/// What a file transfer ([`Transport::put`]) or a command's input
/// ([`AnyTransport::exec_input`]) carries: bytes in memory, or a controller-side file that is
/// streamed from disk in chunks as it is sent, never held in memory whole.
#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    /// Bytes already in memory (literal content, a rendered template, a small file).
    Bytes(&'a [u8]),
    /// A file on the controller, sent as it is on disk.
    File(&'a LocalFile),
}

/// A controller-side file to stream ([`Payload::File`]): its path, and its length and sha256
/// when it was hashed. The receiving side checks the sha256, so a file changed on the
/// controller since it was hashed is refused, never written half old, half new.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFile {
    /// Where it is on the controller.
    pub path: std::path::PathBuf,
    /// Its length in bytes when it was hashed (no more is sent).
    pub len: u64,
    /// Its sha256 (lowercase hex) when it was hashed.
    pub sha256: String,
}

impl<'a> From<&'a [u8]> for Payload<'a> {
    fn from(data: &'a [u8]) -> Payload<'a> {
        Payload::Bytes(data)
    }
}

impl<'a> Payload<'a> {
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Payload::Bytes(b) => b.len() as u64,
            Payload::File(f) => f.len,
        }
    }

    /// Whether it carries no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its sha256 (lowercase hex): computed for bytes, as hashed for a file.
    pub fn sha256(&self) -> String {
        match self {
            Payload::Bytes(b) => hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b)),
            Payload::File(f) => f.sha256.clone(),
        }
    }

    /// A reader of its bytes: the slice, or the file opened now (at most `len` bytes of it).
    /// Opening first means a file that cannot be read fails before anything runs on the host.
    pub(crate) async fn reader(
        self,
    ) -> Result<Box<dyn tokio::io::AsyncRead + Send + Unpin + 'a>, TransportError> {
        use tokio::io::AsyncReadExt;
        match self {
            Payload::Bytes(b) => Ok(Box::new(b)),
            Payload::File(f) => {
                let file = tokio::fs::File::open(&f.path).await.map_err(|e| {
                    TransportError::Io(format!("cannot read {}: {e}", f.path.display()))
                })?;
                Ok(Box::new(file.take(f.len)))
            }
        }
    }
}

/// Feeds what `r` reads, to its end, to `each` in chunks of at most 256 KiB (a large file is
/// never held whole); returns how many bytes it read.
pub fn read_chunks(
    r: &mut impl std::io::Read,
    mut each: impl FnMut(&[u8]),
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                each(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The sha256 (lowercase hex) of what `r` reads to its end, read in chunks ([`read_chunks`]).
pub fn sha256_reader(r: &mut impl std::io::Read) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    read_chunks(r, |chunk| hasher.update(chunk))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Attributes for [`Transport::put`]. `None` leaves the choice to the transport: an existing
/// regular file's mode is kept (else `0644`); owner and group are the connecting user's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileAttrs {
    /// Permission bits, e.g. `0o640`.
    pub mode: Option<u32>,
    /// Owner name or numeric uid.
    pub owner: Option<String>,
    /// Group name or numeric gid.
    pub group: Option<String>,
    /// Write the file as this user (the task's `become`). Remote transports run the whole
    /// write under it; the local transport writes as the controller's user.
    pub become_: Option<Become>,
    /// `owner` and `group` are not asked for: they are the replaced file's, kept as far as the
    /// writing user may set them (Ansible's `atomic_move`). A `chown` that is not permitted (a
    /// plain login user, a group it is not in) is not a failure: the new file keeps the group,
    /// or the owner and group, the user could give it, and [`Put::not_kept`] says which.
    pub keep: bool,
}

/// What [`Transport::put`] did besides writing the content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Put {
    /// With [`FileAttrs::keep`]: `OWNER:GROUP` (names) the file got instead of the replaced
    /// file's, when the writing user could not keep them; `None` when they were kept.
    pub not_kept: Option<String>,
}

/// A transport failure: the host could not be reached or did not run the command to its end.
/// A command that ran and exited non-zero is not an error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No connection could be made.
    #[error("host unreachable: {0}")]
    Unreachable(String),
    /// The host refused our credentials.
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    /// The host's identity was not accepted (unknown or changed host key).
    #[error("host key refused: {0}")]
    HostKeyRefused(String),
    /// The host did not answer in time: connect timeout, or keepalives unanswered (a host
    /// that stopped answering mid-run).
    #[error("host not answering: {0}")]
    Unresponsive(String),
    /// The command ran longer than its timeout and was killed.
    #[error("timed out after {after:?}{}", what.as_deref().map(|w| format!(": {w}")).unwrap_or_default())]
    TimedOut {
        /// The limit that was exceeded.
        after: Duration,
        /// The command as a person knows it ([`Cmd::brief`]), when it is not rdeploy's own
        /// step script.
        what: Option<String>,
        /// The whole script ([`Cmd::display`], secrets masked), shown only at `-vvv`.
        script: String,
    },
    /// The controller was stopping and gave up on the command (`--stop-grace` ran out after a
    /// signal); its process group was killed.
    #[error("interrupted: the controller stopped and killed the command")]
    Interrupted,
    /// A local or remote I/O failure.
    #[error("I/O error: {0}")]
    Io(String),
    /// The other side did not behave as expected (e.g. a checksum mismatch after writing).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The command could not be built (NUL byte, bad environment name, ...): nothing was run.
    #[error("invalid command: {0}")]
    InvalidCommand(#[from] CmdError),
    /// The command queued to run before this one ([`AnyTransport::run_before_next`]) failed, so
    /// this one was not run; the executor reports the queued command's failure.
    #[error("not run: the command queued before it failed")]
    NotRun,
    /// Another run holds the host's lock (the message names it): nothing else was sent.
    #[error("{0}")]
    HostLocked(String),
    /// The controller ran out of open files or memory while reaching the host: the
    /// controller's failure, not the host's (see [`crate::limits`]).
    #[error("{0}")]
    Exhausted(String),
    /// [`Transport::get`] found a file larger than allowed.
    #[error("{path} is larger than {max_bytes} bytes")]
    TooLarge {
        /// The file asked for.
        path: String,
        /// The limit given.
        max_bytes: u64,
    },
}

/// Runs commands on one host and moves files to and from it. One value per host, owned by that
/// host's future. Every method's future is `Send` so hosts can run in a `JoinSet`.
pub trait Transport: Send {
    /// Run `cmd` (as [`Cmd::wrap`] gives it) with its stdin, become and timeout. A non-zero exit
    /// is returned in [`Output::status`]; on timeout or cancellation the command's whole process
    /// group is killed.
    fn exec(&mut self, cmd: &Cmd) -> impl Future<Output = Result<Output, TransportError>> + Send;

    /// Write `data` to `path`: temp file in the same directory, fsync, chown/chmod BEFORE the
    /// rename, rename over `path`; a symlink at `path` is replaced, never written through; the
    /// content's sha256 is verified after writing. A [`Payload::File`] is streamed from disk.
    fn put(
        &mut self,
        data: Payload<'_>,
        path: &str,
        attrs: &FileAttrs,
    ) -> impl Future<Output = Result<Put, TransportError>> + Send;

    /// Read `path` (following symlinks); [`TransportError::TooLarge`] when it holds more than
    /// `max_bytes` bytes.
    fn get(
        &mut self,
        path: &str,
        max_bytes: u64,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send;

    /// The host's name, for messages.
    fn name(&self) -> &str;
}

/// Why [`within`] gave up on a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GaveUp {
    /// The time limit ran out.
    TimedOut(Duration),
    /// The controller is stopping ([`abandon_all`]).
    Abandoned,
}

/// Runs `fut` under an optional time limit, and until the controller abandons every wait
/// ([`abandon_all`]): `Err` when either came first (the future is dropped; the caller kills
/// what it started).
pub(crate) async fn within<T>(
    limit: Option<Duration>,
    fut: impl Future<Output = T>,
) -> Result<T, GaveUp> {
    let mut abandon = abandoning().subscribe();
    if *abandon.borrow_and_update() {
        return Err(GaveUp::Abandoned);
    }
    let limited = async {
        match limit {
            None => Ok(fut.await),
            Some(after) => tokio::time::timeout(after, fut)
                .await
                .map_err(|_| GaveUp::TimedOut(after)),
        }
    };
    tokio::select! {
        r = limited => r,
        _ = abandon.wait_for(|a| *a) => Err(GaveUp::Abandoned),
    }
}

/// Set once the controller gives up on the steps in flight (`--stop-grace` ran out after a
/// signal): process-wide, as signals are.
fn abandoning() -> &'static tokio::sync::watch::Sender<bool> {
    static ABANDON: std::sync::OnceLock<tokio::sync::watch::Sender<bool>> =
        std::sync::OnceLock::new();
    ABANDON.get_or_init(|| tokio::sync::watch::channel(false).0)
}

/// Gives up on every transport wait in this process, now and later: each command running is
/// killed (its process group on the host) and ends in [`TransportError::Interrupted`].
pub fn abandon_all() {
    abandoning().send_replace(true);
}

/// True once [`abandon_all`] was called.
pub fn abandoned() -> bool {
    *abandoning().borrow()
}

impl TransportError {
    /// `cmd` ran longer than `after` (and was killed).
    pub fn timed_out(after: Duration, cmd: &Cmd) -> TransportError {
        tracing::warn!(cmd = %cmd.display(), ?after, "command timed out; killing its process group");
        TransportError::TimedOut {
            after,
            what: cmd.brief(),
            script: cmd.display(),
        }
    }

    /// `cmd` was given up on ([`within`]) and killed.
    pub(crate) fn gave_up(why: GaveUp, cmd: &Cmd) -> TransportError {
        match why {
            GaveUp::TimedOut(after) => TransportError::timed_out(after, cmd),
            GaveUp::Abandoned => {
                tracing::warn!(cmd = %cmd.display(), "controller stopping; killing the command's process group");
                TransportError::Interrupted
            }
        }
    }

    /// How the host was unreachable, when this error means it was (the outcome's reason).
    pub fn reach(&self) -> Option<Reach> {
        match self {
            TransportError::Unreachable(_) => Some(Reach::Unreachable),
            TransportError::AuthFailed(_) => Some(Reach::AuthFailed),
            TransportError::HostKeyRefused(_) => Some(Reach::HostKeyRefused),
            TransportError::Unresponsive(_) => Some(Reach::TimedOut),
            TransportError::HostLocked(_) => Some(Reach::Locked),
            TransportError::Exhausted(_) => Some(Reach::ControllerExhausted),
            _ => None,
        }
    }
}

/// Why a host could not be used: each is reported distinctly (human output, recap, JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// No connection: refused, DNS failure, no route, connection lost.
    Unreachable,
    /// The host refused every credential tried.
    AuthFailed,
    /// The host's key is unknown (strict policy), changed, of another type or revoked.
    HostKeyRefused,
    /// No answer in time: connect timeout, or keepalives unanswered.
    TimedOut,
    /// Another run (another playbook, state directory or controller) holds the host's lock.
    Locked,
    /// The controller ran out of open files or memory: nothing is known about the host.
    ControllerExhausted,
}

impl Reach {
    /// Words for people.
    pub fn describe(self) -> &'static str {
        match self {
            Reach::Unreachable => "unreachable",
            Reach::AuthFailed => "authentication failed",
            Reach::HostKeyRefused => "host key refused",
            Reach::TimedOut => "timed out",
            Reach::Locked => "locked by another run",
            Reach::ControllerExhausted => "controller out of resources",
        }
    }
}

/// What became of a command queued with [`AnyTransport::run_before_next`].
#[derive(Clone, Debug)]
pub enum QueuedOutcome {
    /// It ran and exited 0 (its output); the next command ran after it.
    Ran(Output),
    /// It failed (its output; a non-zero status): the next command was not run, nor any
    /// command after it until [`AnyTransport::take_queued`].
    Failed(Output),
    /// The round trip carrying it failed (timeout, connection lost): how far it got is unknown.
    Lost(String),
}

/// A transport's queued command and, once it ran, its outcome.
#[derive(Clone, Debug, Default)]
pub struct Queued {
    pending: Option<Cmd>,
    /// What the pending command does, typed, when a file plane can do it instead.
    plan: Option<files::BackupPlan>,
    outcome: Option<QueuedOutcome>,
}

impl Queued {
    /// Queue `cmd` (replacing anything queued or recorded before), with what it does typed
    /// when a file plane can do it instead.
    pub fn set(&mut self, cmd: Cmd, plan: Option<files::BackupPlan>) {
        self.pending = Some(cmd);
        self.plan = plan;
        self.outcome = None;
    }

    /// The queued command and its typed plan, if it has one and has not run yet.
    pub fn planned(&self) -> Option<(&Cmd, &files::BackupPlan)> {
        self.pending.as_ref().zip(self.plan.as_ref())
    }

    /// Whether a command is queued and has not run yet.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The queued command, if it has not run yet.
    pub fn take_pending(&mut self) -> Option<Cmd> {
        self.plan = None;
        self.pending.take()
    }

    /// `Err(NotRun)` while a failed queued command blocks the transport.
    pub fn blocked(&self) -> Result<(), TransportError> {
        match self.outcome {
            Some(QueuedOutcome::Failed(_)) => Err(TransportError::NotRun),
            _ => Ok(()),
        }
    }

    /// Records the queued command's result when it ran on its own; `Err` when the next
    /// command must not run.
    pub fn settle_alone(
        &mut self,
        r: Result<Output, TransportError>,
    ) -> Result<(), TransportError> {
        match r {
            Ok(out) if out.status == 0 => {
                self.outcome = Some(QueuedOutcome::Ran(out));
                Ok(())
            }
            Ok(out) => {
                self.outcome = Some(QueuedOutcome::Failed(out));
                Err(TransportError::NotRun)
            }
            Err(e) => {
                self.outcome = Some(QueuedOutcome::Lost(e.to_string()));
                Err(e)
            }
        }
    }

    /// Records the queued command's result from a combined command ([`Cmd::after`]) and returns
    /// the next command's own result.
    pub fn settle_combined(
        &mut self,
        r: Result<Output, TransportError>,
        pre: &cmd::Preamble,
    ) -> Result<Output, TransportError> {
        let out = match r {
            Ok(out) => out,
            Err(e) => {
                self.outcome = Some(QueuedOutcome::Lost(e.to_string()));
                return Err(e);
            }
        };
        match pre.split(out.clone()) {
            cmd::PreambleSplit::Ran { pre, main } => {
                self.outcome = Some(QueuedOutcome::Ran(pre));
                Ok(main)
            }
            cmd::PreambleSplit::PreFailed(o) => {
                self.outcome = Some(QueuedOutcome::Failed(o));
                Err(TransportError::NotRun)
            }
            // The shell stopped before the queued command finished (sudo refused, ...): the
            // next command did not run either.
            cmd::PreambleSplit::NoMarker => {
                self.outcome = Some(QueuedOutcome::Failed(out));
                Err(TransportError::NotRun)
            }
        }
    }

    /// The outcome (`None` when nothing ran), clearing the queue and unblocking.
    pub fn take(&mut self) -> Option<QueuedOutcome> {
        self.pending = None;
        self.plan = None;
        self.outcome.take()
    }
}

/// Every transport rdeploy has, as one type the executor can hold.
#[derive(Debug)]
pub enum AnyTransport {
    /// Commands run on the controller itself.
    Local(LocalTransport),
    /// Commands run over SSH.
    Ssh(SshTransport),
    /// Commands answered from a test's script ([`scripted`]).
    #[cfg(test)]
    Scripted(scripted::ScriptedTransport),
}

impl AnyTransport {
    /// Commands run through this transport so far.
    pub fn commands_run(&self) -> usize {
        match self {
            AnyTransport::Local(t) => t.recorded().len(),
            AnyTransport::Ssh(t) => t.commands_run(),
            #[cfg(test)]
            AnyTransport::Scripted(t) => t.recorded().len(),
        }
    }

    /// The commands run so far (secrets masked) when the transport records them (the local
    /// transport in tests); empty otherwise.
    pub fn recorded(&self) -> &[String] {
        match self {
            AnyTransport::Local(t) => t.recorded(),
            AnyTransport::Ssh(_) => &[],
            #[cfg(test)]
            AnyTransport::Scripted(t) => t.recorded(),
        }
    }

    /// Queues `cmd` to run on the host right before the next command (or file transfer), in the
    /// same round trip when the transport can (SSH, same `become`: [`Cmd::after`]); the next
    /// command runs only if `cmd` exits 0, and while a failed queued command's outcome has not
    /// been taken ([`AnyTransport::take_queued`]) every command is refused with
    /// [`TransportError::NotRun`]. The executor queues its backup this way: it runs on the host
    /// before the change, without a round trip of its own. `cmd` may not carry stdin.
    ///
    /// `plan` is what `cmd` does, typed (a backup of plain paths): a transport with a file
    /// plane takes it with protocol requests instead when the next operation is on that plane.
    pub fn run_before_next(&mut self, cmd: Cmd, plan: Option<files::BackupPlan>) {
        match self {
            AnyTransport::Local(t) => t.queued.set(cmd, plan),
            AnyTransport::Ssh(t) => t.queued.set(cmd, plan),
            #[cfg(test)]
            AnyTransport::Scripted(t) => t.queued.set(cmd, plan),
        }
    }

    /// What became of the command queued with [`AnyTransport::run_before_next`]: `None` when it
    /// has not run (no command followed it; it is dropped). Unblocks the transport.
    pub fn take_queued(&mut self) -> Option<QueuedOutcome> {
        match self {
            AnyTransport::Local(t) => t.queued.take(),
            AnyTransport::Ssh(t) => t.queued.take(),
            #[cfg(test)]
            AnyTransport::Scripted(t) => t.queued.take(),
        }
    }

    /// The reads run ahead on this host ([`reads`]): announce, record, forget.
    pub fn reads(&mut self) -> &mut Reads {
        match self {
            AnyTransport::Local(t) => &mut t.reads,
            AnyTransport::Ssh(t) => &mut t.reads,
            #[cfg(test)]
            AnyTransport::Scripted(t) => &mut t.reads,
        }
    }

    /// Runs the read-only commands of `set` and returns their outputs (one per command, each
    /// stream cut to the set's `keep` bytes at each end), or hands out what was read ahead for
    /// the very same set. Announced sets with the same settings run in the same batch and are
    /// kept. Refused with [`TransportError::NotRun`] while recording.
    pub async fn read(
        &mut self,
        set: &ReadSet,
    ) -> Result<Result<Vec<Output>, BatchError>, TransportError> {
        if !self.reads().note(set) {
            return Err(TransportError::NotRun);
        }
        if let Some(outs) = self.reads().hit(set) {
            return Ok(Ok(outs));
        }
        // The questions the file plane answers, by position; the rest are programs.
        let (asked, programs): (Vec<usize>, Vec<usize>) =
            (0..set.len()).partition(|&i| set.bare()[i].file_query().is_some());
        let qs: Vec<&files::FileQuery> = asked
            .iter()
            .filter_map(|&i| set.bare()[i].file_query())
            .collect();
        let answers = match self {
            _ if qs.is_empty() => None,
            AnyTransport::Ssh(t) => t.plane_answers(&qs, set.become_()).await?,
            AnyTransport::Local(t) => t.plane_answers(&qs, set.become_()).await?,
            #[cfg(test)]
            AnyTransport::Scripted(_) => None,
        };
        if let Some(answers) = answers {
            let mut outs: Vec<Option<Output>> = vec![None; set.len()];
            for (i, o) in asked.into_iter().zip(answers) {
                outs[i] = Some(o);
            }
            if !programs.is_empty() {
                // The programs alone, as a set of their own.
                self.reads().unannounce(set);
                let rest = set.part(&programs);
                let ran = match Box::pin(self.read_programs(&rest)).await? {
                    Ok(ran) => ran,
                    Err(e) => return Ok(Err(e)),
                };
                for (i, o) in programs.into_iter().zip(ran) {
                    outs[i] = Some(o);
                }
            }
            let mut outs: Vec<Output> = outs.into_iter().map(Option::unwrap_or_default).collect();
            for o in &mut outs {
                cmd::keep_ends(o, set.keep());
            }
            return Ok(Ok(outs));
        }
        #[cfg(test)]
        if let AnyTransport::Scripted(t) = self {
            return t.read(set).await;
        }
        self.read_programs(set).await
    }

    /// Runs the read-only commands of `set` as programs: one on its own, several as one batch,
    /// with the announced sets that can share it (their outputs kept for when they are asked).
    async fn read_programs(
        &mut self,
        set: &ReadSet,
    ) -> Result<Result<Vec<Output>, BatchError>, TransportError> {
        let others = self.reads().batch_with(set);
        if others.is_empty() {
            if let [one] = set.commands().as_slice() {
                // One command needs no batch runner around it (that costs the host processes).
                let mut out = self.run_read(one).await?;
                cmd::keep_ends(&mut out, set.keep());
                return Ok(Ok(vec![out]));
            }
            let batch = Cmd::batch_keeping(set.bare(), set.keep())?;
            return self.batch(&batch, &|c| set.dress(c), true).await;
        }
        let mut bare = set.bare().to_vec();
        for o in &others {
            bare.extend_from_slice(o.bare());
        }
        let batch = Cmd::batch_keeping(&bare, u64::MAX)?;
        let out = self.run_read(&set.dress(batch.cmd.clone())).await?;
        match batch.parse(&out) {
            Ok(mut outs) => {
                let rest = outs.split_off(set.len().min(outs.len()));
                for o in &mut outs {
                    cmd::keep_ends(o, set.keep());
                }
                self.reads().keep_outputs(others, rest);
                Ok(Ok(outs))
            }
            // Too much for one round trip: this set alone, capped on the host if need be.
            Err(BatchError::Truncated { .. }) => {
                let batch = Cmd::batch_keeping(set.bare(), set.keep())?;
                self.batch(&batch, &|c| set.dress(c), true).await
            }
            Err(e) => Ok(Err(e)),
        }
    }

    /// Runs `batch` (its command passed through `dress`: become, environment, timeout) and
    /// splits its output. When the whole output was too big for the transport, runs it once
    /// more through the capped runner ([`Batch::capped`]), which cuts each sub-command's streams
    /// on the host: the outputs are the same either way. `read_only` batches leave what was read
    /// ahead alone; others run as any command ([`Transport::exec`]).
    pub async fn batch(
        &mut self,
        batch: &Batch,
        dress: &(dyn Fn(Cmd) -> Cmd + Sync),
        read_only: bool,
    ) -> Result<Result<Vec<Output>, BatchError>, TransportError> {
        #[cfg(test)]
        if let AnyTransport::Scripted(t) = self {
            return t.batch(batch, dress, read_only).await;
        }
        let cmd = dress(batch.cmd.clone());
        let out = if read_only {
            self.run_read(&cmd).await?
        } else {
            self.exec(&cmd).await?
        };
        match batch.parse(&out) {
            Err(BatchError::Truncated { dropped }) => {
                tracing::debug!(
                    dropped,
                    "batch output too big for the transport; capped runner"
                );
                let capped = batch.capped();
                let cmd = dress(capped.cmd.clone());
                let out = if read_only {
                    self.run_read(&cmd).await?
                } else {
                    self.exec(&cmd).await?
                };
                Ok(capped.parse(&out))
            }
            parsed => Ok(parsed),
        }
    }

    /// [`Transport::exec`] with `input` on the command's stdin (after a `su` password, if any),
    /// borrowed: written from the caller's buffer, never copied, or streamed from its file.
    pub async fn exec_input(
        &mut self,
        cmd: &Cmd,
        input: Payload<'_>,
    ) -> Result<Output, TransportError> {
        match self {
            AnyTransport::Local(t) => {
                t.reads.may_run()?;
                t.reads.changed();
                t.run_queued().await?;
                t.exec_input(cmd, input).await
            }
            AnyTransport::Ssh(t) => t.exec_input(cmd, input).await,
            #[cfg(test)]
            AnyTransport::Scripted(t) => t.exec_input(cmd, input).await,
        }
    }

    /// Runs a read-only command: nothing read ahead is forgotten, nothing rides with it.
    async fn run_read(&mut self, cmd: &Cmd) -> Result<Output, TransportError> {
        match self {
            AnyTransport::Local(t) => {
                t.reads.may_run()?;
                t.run_queued().await?;
                t.exec(cmd).await
            }
            AnyTransport::Ssh(t) => t.run_read(cmd).await,
            #[cfg(test)]
            AnyTransport::Scripted(t) => t.run_read(cmd).await,
        }
    }

    /// The time limit of every wait that has none of its own (a command without a timeout, a
    /// file transfer, a write blocked on the channel's window): the task's `timeout:` or
    /// `--task-timeout`, set before each task; `None` for no limit.
    pub fn set_timeout(&mut self, limit: Option<Duration>) {
        match self {
            AnyTransport::Local(t) => t.set_default_timeout(limit),
            AnyTransport::Ssh(t) => t.set_default_timeout(limit),
            #[cfg(test)]
            AnyTransport::Scripted(t) => t.set_default_timeout(limit),
        }
    }

    /// How the host's files are reached (the file plane), once, for `-v`: `None` after it was
    /// taken and for the local connection.
    pub fn take_plane_note(&mut self) -> Option<String> {
        match self {
            AnyTransport::Ssh(t) => t.take_plane_note(),
            _ => None,
        }
    }

    /// The connection is gone: nothing can run on it any more (never for the local transport).
    pub fn is_lost(&self) -> bool {
        match self {
            AnyTransport::Local(_) => false,
            AnyTransport::Ssh(t) => t.is_lost(),
            #[cfg(test)]
            AnyTransport::Scripted(t) => t.is_lost(),
        }
    }

    /// Closes the connection (a no-op for the local transport).
    pub async fn close(self) {
        match self {
            AnyTransport::Local(_) => {}
            AnyTransport::Ssh(t) => t.close().await,
            #[cfg(test)]
            AnyTransport::Scripted(_) => {}
        }
    }
}

impl Transport for AnyTransport {
    /// Any command may change the host: what was read ahead is forgotten first, and announced
    /// reads ride in the same round trip ([`Reads::ride`]).
    async fn exec(&mut self, cmd: &Cmd) -> Result<Output, TransportError> {
        match self {
            AnyTransport::Local(t) => {
                t.reads.may_run()?;
                let own = cmd.stdin_bytes();
                let riding = t.reads.ride(cmd, own.as_ref().map(|o| o.len() as u64));
                t.run_queued().await?;
                match riding {
                    Some(r) => {
                        let mut stdin = r.prefix.clone();
                        stdin.extend_from_slice(own.as_deref().unwrap_or_default());
                        let out = t.exec(&r.cmd.clone().stdin(stdin)).await?;
                        Ok(t.reads.land(r, out))
                    }
                    None => t.exec(cmd).await,
                }
            }
            AnyTransport::Ssh(t) => t.exec(cmd).await,
            #[cfg(test)]
            AnyTransport::Scripted(t) => t.exec(cmd).await,
        }
    }

    async fn put(
        &mut self,
        data: Payload<'_>,
        path: &str,
        attrs: &FileAttrs,
    ) -> Result<Put, TransportError> {
        match self {
            AnyTransport::Local(t) => {
                t.reads.may_run()?;
                // Written by the controller itself: nothing can ride; what was read is stale.
                t.reads.changed();
                t.run_queued().await?;
                t.put(data, path, attrs).await
            }
            AnyTransport::Ssh(t) => t.put(data, path, attrs).await,
            #[cfg(test)]
            AnyTransport::Scripted(t) => t.put(data, path, attrs).await,
        }
    }

    async fn get(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>, TransportError> {
        match self {
            AnyTransport::Local(t) => {
                t.reads.may_run()?;
                t.run_queued().await?;
                t.get(path, max_bytes).await
            }
            AnyTransport::Ssh(t) => t.get(path, max_bytes).await,
            #[cfg(test)]
            AnyTransport::Scripted(t) => t.get(path, max_bytes).await,
        }
    }

    fn name(&self) -> &str {
        match self {
            AnyTransport::Local(t) => t.name(),
            AnyTransport::Ssh(t) => t.name(),
            #[cfg(test)]
            AnyTransport::Scripted(t) => t.name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(limits: OutputLimits, chunks: &[&[u8]]) -> (Vec<u8>, u64) {
        let mut c = Capture::new(limits);
        for chunk in chunks {
            c.push(chunk);
        }
        c.finish()
    }

    #[test]
    fn capture_keeps_everything_under_the_limits() {
        let l = OutputLimits { head: 4, tail: 4 };
        assert_eq!(capture(l, &[b"abc", b"def"]), (b"abcdef".to_vec(), 0));
        assert_eq!(capture(l, &[b"abcdefgh"]), (b"abcdefgh".to_vec(), 0));
    }

    #[test]
    fn capture_drops_the_middle() {
        let l = OutputLimits { head: 3, tail: 3 };
        assert_eq!(capture(l, &[b"0123456789"]), (b"012789".to_vec(), 4));
        let chunks: Vec<&[u8]> = b"0123456789".chunks(1).collect();
        assert_eq!(capture(l, &chunks), (b"012789".to_vec(), 4));
        let chunks: Vec<&[u8]> = b"0123456789".chunks(4).collect();
        assert_eq!(capture(l, &chunks), (b"012789".to_vec(), 4));
        let l = OutputLimits { head: 0, tail: 0 };
        assert_eq!(capture(l, &[b"abc", b"d"]), (Vec::new(), 4));
    }

    #[test]
    fn any_transport_futures_are_send() {
        fn assert_send<T: Send>(_: T) {}
        let mut t = AnyTransport::Local(LocalTransport::new("localhost"));
        let cmd = Cmd::raw("true");
        assert_send(t.exec(&cmd));
    }
}
