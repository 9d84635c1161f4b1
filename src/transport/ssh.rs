//! `SshTransport`: one russh connection per host for the whole run, a channel per command.
//!
//! It owns the connection's life: TCP connect (through `ProxyJump` hosts with `direct-tcpip`
//! channels and `connect_stream`; the TCP socket acknowledges what it reads at once,
//! [`QuickAck`], since sshd leaves Nagle on until a command runs, and for good on a jump
//! host), host identity (our [`known_hosts`] layer, consulted from
//! `check_server_key`, refusing before any credential is sent), authentication (ssh-agent, key
//! files, password; a failure names every method tried), a semaphore capping channels below
//! OpenSSH's `MaxSessions` (10), and a liveness task sending `keepalive@openssh.com` requests
//! that need a reply (a host that stops answering is declared dead after interval × count;
//! russh's inactivity timer is not enough, the server's own keepalives reset it). Each command
//! runs in its own session and process group ([`cmd::session_line`]); on timeout or
//! cancellation the group is killed over a fresh channel ([`cmd::kill_group_cmd`], with the
//! command's `become`), so nothing is left behind on the host. Files go through the file
//! plane ([`super::sftp`]: one SFTP session per become user, started with the connection for
//! the login user) when the host offers it: `put` (temp file, owner and mode, fsync, checked,
//! posix-rename), `get`, and the stat helpers' questions ([`super::files::FileQuery`]). Where it
//! cannot (no sftp subsystem, `su`, a sudo password, `RDEPLOY_FILE_PLANE=shell`, a queued
//! backup that rides with the shell's write), `exec` channels do it: `put` streams the bytes to
//! [`cmd::put_file_cmd`] (temp file, sha256 check on the host, chmod before rename), `get`
//! reads at most the limit plus one byte.
//!
//! It must not build shell strings (all come from [`cmd`]), print, or log secrets.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use russh::client::{self, AuthResult, Handle};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{Algorithm, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Sig};
use tokio::sync::{Semaphore, watch};

use super::cmd::{self, Become, Cmd};
use super::files::FileQuery;
use super::known_hosts::{self, HostKey, HostKeyPolicy, KnownHosts, Verdict};
use super::plane;
use super::quickack::QuickAck;
use super::sftp::Sftp;
use super::ssh_config::{Hop, HostSettings, SshOptions};
use super::{
    Capture, FileAttrs, GaveUp, Output, OutputLimits, Payload, Put, Queued, Reads, Transport,
    TransportError, Truncated, within,
};

/// Channels open at once on one connection (OpenSSH's `MaxSessions` defaults to 10).
pub const MAX_CHANNELS: usize = 8;

/// Time a timed-out or cancelled command's process group gets between SIGTERM and SIGKILL.
pub const KILL_GRACE_DEFAULT: Duration = Duration::from_secs(2);

/// Runs commands on a host over SSH (see the module docs).
pub struct SshTransport {
    name: String,
    conn: Arc<Conn>,
    limits: OutputLimits,
    default_timeout: Option<Duration>,
    kill_grace: Duration,
    commands: usize,
    /// The executor's command queued before the next one ([`super::AnyTransport::run_before_next`]).
    pub(crate) queued: Queued,
    /// Reads run ahead ([`super::reads`]).
    pub(crate) reads: Reads,
    /// The channel holding the host lock ([`SshTransport::hold`]), open until the connection
    /// closes.
    held: Option<russh::Channel<client::Msg>>,
    /// The file plane's sessions ([`super::sftp`]), by become user (`None`: the login user),
    /// opened at first use; a user whose session could not start is served by the shell.
    planes: std::collections::HashMap<Option<String>, Plane>,
    /// `RDEPLOY_FILE_PLANE=shell`: files go through shell programs only (the fallback, forced).
    shell_only: bool,
    /// How the login user's files are reached, until it is reported (`-v`).
    plane_note: Option<String>,
    /// Why the last session that could not start did not.
    plane_off: Option<String>,
    /// The login user's name.
    login: String,
}

/// One become user's file plane on a connection.
enum Plane {
    /// A session, and the channel permit it holds for the whole run.
    Ready(
        Box<Sftp>,
        #[allow(dead_code)] tokio::sync::OwnedSemaphorePermit,
    ),
    /// No session: the shell plane serves this user.
    Off,
}

impl std::fmt::Debug for SshTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshTransport")
            .field("name", &self.name)
            .field("commands", &self.commands)
            .finish()
    }
}

/// One authenticated connection, shared by the transport, its kill tasks and its liveness task.
struct Conn {
    name: String,
    handle: Handle<Client>,
    /// Jump connections the tunnel runs through; kept open as long as this one.
    _jumps: Vec<Handle<Client>>,
    channels: Arc<Semaphore>,
    dead: watch::Receiver<Option<String>>,
    /// Keeps `dead` open: without a liveness task (`ServerAliveInterval 0`) nothing declares
    /// the connection dead, and a closed channel would read as "connection lost".
    _dead_tx: watch::Sender<Option<String>>,
    /// Set once, right after the connection is built (the task holds a `Weak` to it).
    liveness: OnceLock<tokio::task::JoinHandle<()>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(t) = self.liveness.get() {
            t.abort();
        }
    }
}

impl SshTransport {
    /// Connects to the host described by `settings` (through its jump hosts), verifies its
    /// identity and authenticates. Errors: [`TransportError::Unreachable`] (DNS, refused, lost),
    /// [`TransportError::Unresponsive`] (connect timeout), [`TransportError::HostKeyRefused`],
    /// [`TransportError::AuthFailed`].
    pub async fn connect(
        settings: &HostSettings,
        opts: &SshOptions,
    ) -> Result<SshTransport, TransportError> {
        let name = settings.name.clone();
        let mut jumps: Vec<Handle<Client>> = Vec::new();
        for hop in settings
            .jumps
            .iter()
            .chain(std::iter::once(&settings.target))
        {
            let what = if std::ptr::eq(hop, &settings.target) {
                format!("{name} ({})", hop.endpoint)
            } else {
                format!("{name}: jump host {}", hop.endpoint)
            };
            let handle = tokio::time::timeout(
                settings.connect_timeout,
                connect_hop(hop, jumps.last(), opts, &what),
            )
            .await
            .map_err(|_| {
                TransportError::Unresponsive(format!(
                    "{what}: no answer within {}s (connect timeout)",
                    settings.connect_timeout.as_secs_f64()
                ))
            })??;
            jumps.push(handle);
        }
        let Some(handle) = jumps.pop() else {
            return Err(TransportError::Unreachable(format!(
                "{name}: nothing to connect to"
            )));
        };
        let (dead_tx, dead_rx) = watch::channel(None);
        let conn = Arc::new(Conn {
            name: name.clone(),
            handle,
            _jumps: jumps,
            channels: Arc::new(Semaphore::new(MAX_CHANNELS)),
            dead: dead_rx,
            _dead_tx: dead_tx.clone(),
            liveness: OnceLock::new(),
        });
        if let Some(interval) = settings.alive_interval {
            // Spawned once `conn` exists: started from inside `Arc::new_cyclic`, the task could
            // run before the Arc did, find nothing to upgrade and end, which every command then
            // read as "connection lost".
            let task = tokio::spawn(liveness(
                Arc::downgrade(&conn),
                dead_tx,
                interval,
                settings.alive_count.max(1),
            ));
            let _ = conn.liveness.set(task);
        }
        tracing::debug!(host = %name, "ssh connection ready");
        let mut t = SshTransport {
            name,
            conn,
            limits: OutputLimits::default(),
            default_timeout: None,
            kill_grace: KILL_GRACE_DEFAULT,
            commands: 0,
            queued: Queued::default(),
            reads: Reads::default(),
            held: None,
            planes: std::collections::HashMap::new(),
            shell_only: std::env::var("RDEPLOY_FILE_PLANE").is_ok_and(|v| v == "shell"),
            plane_note: None,
            plane_off: None,
            login: settings.target.endpoint.user.clone(),
        };
        // The login user's file plane starts with the connection: the executor reads ahead
        // (checks ride with commands) unless it knows the plane answers them.
        t.plane_note = Some(if t.shell_only {
            "shell programs (RDEPLOY_FILE_PLANE=shell)".to_string()
        } else {
            t.plane(&None).await;
            match t.planes.get(&None) {
                Some(Plane::Ready(s, _)) => s.what().to_string(),
                _ => t
                    .plane_off
                    .take()
                    .map_or("shell programs".to_string(), |why| {
                        format!("shell programs ({why})")
                    }),
            }
        });
        Ok(t)
    }

    /// The connection is gone (closed by the host, its session killed, keepalives unanswered):
    /// no command can run on it any more.
    pub fn is_lost(&self) -> bool {
        self.conn.dead_reason().is_some() || self.conn.handle.is_closed()
    }

    /// Timeout of the commands and transfers that set none of their own (set for each task).
    pub fn set_default_timeout(&mut self, timeout: Option<Duration>) {
        self.default_timeout = timeout;
    }

    /// Runs `line` (a [`cmd::host_lock_line`]) on a channel of its own and waits at most `wait`
    /// for [`cmd::HOST_LOCK_TAKEN`]: then the channel is kept open, holding the lock, until the
    /// connection closes. Otherwise returns what the command printed and its exit status.
    pub async fn hold(
        &mut self,
        line: &str,
        wait: Duration,
    ) -> Result<Option<(String, i32)>, TransportError> {
        let conn = Arc::clone(&self.conn);
        let mut channel = conn
            .handle
            .channel_open_session()
            .await
            .map_err(|e| conn.lost("opening a channel", e))?;
        channel
            .exec(true, line.as_bytes())
            .await
            .map_err(|e| conn.lost("starting a command", e))?;
        // Not counted in `commands`: those are the tasks' own (the per-task count).
        let mut out: Vec<u8> = Vec::new();
        let mut status: Option<i32> = None;
        let taken = cmd::HOST_LOCK_TAKEN.as_bytes();
        let read = async {
            loop {
                match channel.wait().await {
                    Some(ChannelMsg::Data { data }) => {
                        out.extend_from_slice(&data);
                        if out.split(|b| *b == b'\n').any(|l| l == taken) {
                            return true;
                        }
                        out.truncate(64 * 1024);
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        status = Some(i32::try_from(exit_status).unwrap_or(255));
                    }
                    Some(ChannelMsg::Close) | None => return false,
                    Some(_) => {}
                }
            }
        };
        let got = match within(Some(wait), read).await {
            Ok(got) => got,
            Err(GaveUp::TimedOut(after)) => {
                return Err(TransportError::Unresponsive(format!(
                    "{}: the host lock did not answer within {}s",
                    self.name,
                    after.as_secs_f64()
                )));
            }
            Err(GaveUp::Abandoned) => return Err(TransportError::Interrupted),
        };
        if got {
            self.held = Some(channel);
            return Ok(None);
        }
        Ok(Some((
            String::from_utf8_lossy(&out).into_owned(),
            status.unwrap_or(255),
        )))
    }

    /// Commands run so far (for the per-task count).
    pub fn commands_run(&self) -> usize {
        self.commands
    }

    /// Closes the connection (and the jump connections under it).
    pub async fn close(self) {
        if let Ok(conn) = Arc::try_unwrap(self.conn) {
            let _ = conn
                .handle
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        }
    }

    /// Runs `cmd` (which may change the host) with `input` on stdin (`cmd`'s own stdin when
    /// `None`): what was read ahead is forgotten, and the reads announced meanwhile ride in the
    /// same round trip when they can ([`Reads::ride`]).
    async fn run(
        &mut self,
        cmd: &Cmd,
        input: Option<Stdin<'_>>,
        limits: OutputLimits,
    ) -> Result<Output, TransportError> {
        self.reads.may_run()?;
        let own = match input {
            Some(_) => None,
            None => cmd.stdin_bytes(),
        };
        let input = input.or(own.as_deref().map(Stdin::bytes));
        let Some(riding) = self.reads.ride(cmd, input.map(|i| i.len())) else {
            return self.run_after_queued(cmd, input, limits).await;
        };
        let limits = OutputLimits {
            head: limits.head.max(self.limits.head),
            tail: limits.tail.max(self.limits.tail),
        };
        // The reads' prefix goes first; the command's own input follows, not copied.
        let joined;
        let stdin = match input {
            Some(i) if !i.head.is_empty() => {
                joined = [riding.prefix.as_slice(), i.head].concat();
                Stdin {
                    head: &joined,
                    body: i.body,
                }
            }
            Some(i) => Stdin {
                head: &riding.prefix,
                body: i.body,
            },
            None => Stdin::bytes(&riding.prefix),
        };
        let out = self
            .run_after_queued(&riding.cmd, Some(stdin), limits)
            .await?;
        Ok(self.reads.land(riding, out))
    }

    /// Runs `cmd` with `input` after its own stdin (a `su` password), borrowed: written from
    /// the caller's buffer or streamed from its file, never copied.
    pub(crate) async fn exec_input(
        &mut self,
        cmd: &Cmd,
        input: Payload<'_>,
    ) -> Result<Output, TransportError> {
        let limits = self.limits;
        self.run_input(cmd, input, limits).await
    }

    /// [`SshTransport::exec_input`] keeping `limits` of the output.
    async fn run_input(
        &mut self,
        cmd: &Cmd,
        input: Payload<'_>,
        limits: OutputLimits,
    ) -> Result<Output, TransportError> {
        // A su password (if any) goes first on stdin; the payload follows.
        let pw = cmd.stdin_bytes().unwrap_or_default();
        let stdin = Stdin {
            head: &pw,
            body: input,
        };
        self.run(cmd, Some(stdin), limits).await
    }

    /// Runs a read-only command (nothing read ahead is forgotten, nothing rides with it).
    pub(crate) async fn run_read(&mut self, cmd: &Cmd) -> Result<Output, TransportError> {
        self.reads.may_run()?;
        let limits = self.limits;
        self.run_after_queued(cmd, None, limits).await
    }

    /// Runs `cmd` after the queued command if there is one: in the same round trip when both
    /// have the same `become` ([`Cmd::after`]), else on its own first.
    async fn run_after_queued(
        &mut self,
        cmd: &Cmd,
        input: Option<Stdin<'_>>,
        limits: OutputLimits,
    ) -> Result<Output, TransportError> {
        if let Some(pre) = self.queued.take_pending() {
            if pre.get_become() == cmd.get_become()
                && let Ok((combined, preamble)) = cmd.after(&pre)
            {
                let r = self.run_one(&combined, input, limits).await;
                return self.queued.settle_combined(r, &preamble);
            }
            let r = self.run_one(&pre, None, self.limits).await;
            self.queued.settle_alone(r)?;
        }
        self.queued.blocked()?;
        self.run_one(cmd, input, limits).await
    }

    /// Runs one command on its own channel.
    async fn run_one(
        &mut self,
        cmd: &Cmd,
        input: Option<Stdin<'_>>,
        limits: OutputLimits,
    ) -> Result<Output, TransportError> {
        let own_stdin = match input {
            Some(_) => None,
            None => cmd.stdin_bytes(),
        };
        let input = input.or(own_stdin.as_deref().map(Stdin::bytes));
        let line = cmd::session_line(cmd, input.is_some())?;
        // A line holding a secret (a vault value, `secret_vars`) travels over stdin, never as
        // the exec request: the host's process list would show it. The body follows unchanged.
        let via_stdin = crate::vault::redact::contains_secret(&line).then(|| {
            let (boot, mut data) = cmd::stdin_bootstrap(&line);
            if let Some(i) = input {
                data.extend_from_slice(i.head);
            }
            (boot.to_string(), data)
        });
        let (line, input) = match &via_stdin {
            Some((boot, data)) => (
                boot.clone(),
                Some(Stdin {
                    head: data,
                    body: input.map_or(Payload::Bytes(&[]), |i| i.body),
                }),
            ),
            None => (line, input),
        };
        let timeout = cmd.get_timeout().or(self.default_timeout);
        self.commands += 1;
        tracing::debug!(host = %self.name, cmd = %cmd.display(), ?timeout, "ssh exec");
        let mut guard = KillGuard {
            conn: Arc::clone(&self.conn),
            started: Arc::new(Started::default()),
            become_: cmd.get_become().cloned(),
            grace: self.kill_grace,
            armed: true,
        };
        let run = self
            .conn
            .exec(&line, input, limits, Arc::clone(&guard.started));
        let result = match within(timeout, run).await {
            Ok(r) => r,
            Err(gave_up) => {
                guard.armed = false;
                guard.kill_now().await;
                return Err(TransportError::gave_up(gave_up, cmd));
            }
        };
        guard.armed = false;
        if let Err(TransportError::Unresponsive(_) | TransportError::Unreachable(_)) = &result {
            // The host is gone: nobody can be asked to kill anything.
            return result;
        }
        if result.is_err() {
            guard.kill_now().await;
        }
        result
    }
}

/// Where OpenSSH's `sftp-server` is found on the common systems (Debian, Red Hat, Arch, BSD,
/// Gentoo), tried in this order when a become user needs a session of its own.
const SFTP_SERVERS: &str = "/usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/sftp-server /usr/lib/misc/sftp-server";

impl SshTransport {
    /// The become user whose file plane serves `b`: `Some(None)` for the login user,
    /// `Some(Some(user))` for a `sudo` without a password, `None` when only the shell can do it
    /// (`su`, a sudo password) or the shell plane is forced.
    fn plane_key(&self, b: Option<&Become>) -> Option<Option<String>> {
        if self.shell_only {
            return None;
        }
        super::files::plane_user(b)
    }

    /// The session serving `key`, started now if this is its first use.
    async fn plane(&mut self, key: &Option<String>) -> Option<&Sftp> {
        if !self.planes.contains_key(key) {
            let plane = match self.start_plane(key.as_deref()).await {
                Ok(p) => p,
                Err(why) => {
                    tracing::info!(host = %self.name, user = ?key, "file plane: shell programs ({why})");
                    self.plane_off = Some(why);
                    Plane::Off
                }
            };
            self.planes.insert(key.clone(), plane);
        }
        match self.planes.get(key) {
            Some(Plane::Ready(s, _)) => Some(s),
            _ => None,
        }
    }

    /// Starts a session: the `sftp` subsystem for the login user, `sudo -n -u USER
    /// sftp-server` (the first found of [`SFTP_SERVERS`]) on an exec channel for another.
    async fn start_plane(&mut self, user: Option<&str>) -> Result<Plane, String> {
        let permit = Arc::clone(&self.conn.channels)
            .acquire_owned()
            .await
            .map_err(|e| format!("channel limit: {e}"))?;
        let channel = self
            .conn
            .handle
            .channel_open_session()
            .await
            .map_err(|e| format!("opening a channel: {e}"))?;
        let what = match user {
            None => {
                channel
                    .request_subsystem(true, "sftp")
                    .await
                    .map_err(|e| format!("sftp subsystem: {e}"))?;
                "sftp subsystem".to_string()
            }
            Some(u) => {
                let line = cmd::sftp_server_line(u, SFTP_SERVERS).map_err(|e| e.to_string())?;
                channel
                    .exec(true, line.as_bytes())
                    .await
                    .map_err(|e| format!("sudo sftp-server: {e}"))?;
                format!("sudo -u {u} sftp-server")
            }
        };
        // The server's answer to the request first: a host without the subsystem (or whose
        // sudo refused) says so at once instead of leaving the session to time out.
        let mut channel = channel;
        let answer = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match channel.wait().await {
                    Some(ChannelMsg::Success) => return Ok(()),
                    Some(ChannelMsg::Failure) => {
                        return Err(format!("{what}: refused by the host"));
                    }
                    Some(ChannelMsg::Close | ChannelMsg::Eof) | None => {
                        return Err(format!("{what}: the host closed the channel"));
                    }
                    Some(_) => {}
                }
            }
        })
        .await
        .map_err(|_| format!("{what}: no answer"))?;
        answer?;
        if user.is_some() {
            // sudo and the server's search speak first: the ready line, or why not.
            let ready = format!("{}\n", cmd::SFTP_READY);
            let waited = tokio::time::timeout(Duration::from_secs(30), async {
                let (mut out, mut err) = (Vec::new(), Vec::new());
                loop {
                    match channel.wait().await {
                        Some(ChannelMsg::Data { data }) => {
                            out.extend_from_slice(&data);
                            if out == ready.as_bytes() {
                                return Ok(());
                            }
                            if out.len() >= ready.len() {
                                return Err(format!("{what}: unexpected output before the server"));
                            }
                        }
                        Some(ChannelMsg::ExtendedData { data, .. }) => {
                            err.extend_from_slice(&data);
                            err.truncate(4096);
                        }
                        Some(
                            ChannelMsg::ExitStatus { .. } | ChannelMsg::Close | ChannelMsg::Eof,
                        )
                        | None => {
                            let why = String::from_utf8_lossy(&err).trim().to_string();
                            return Err(format!(
                                "{what}: {}",
                                if why.is_empty() { "ended" } else { &why }
                            ));
                        }
                        Some(_) => {}
                    }
                }
            })
            .await
            .map_err(|_| format!("{what}: no answer"))?;
            waited?;
        }
        let sftp = Sftp::start(channel.into_stream(), what, user.unwrap_or(&self.login)).await?;
        tracing::info!(host = %self.name, plane = sftp.what(), "file plane: sftp");
        self.reads.serve(user.map(str::to_string));
        Ok(Plane::Ready(Box::new(sftp), permit))
    }

    /// How the login user's files are reached (`sftp subsystem`, `shell programs (why)`), once:
    /// `None` after it was taken.
    pub fn take_plane_note(&mut self) -> Option<String> {
        self.plane_note.take()
    }

    /// Runs the queued command (the executor's backup) on its own, if one is waiting: a file
    /// operation has no command line to ride on. A backup of plain paths is taken on the file
    /// plane of its user when that session is ready; else its program runs.
    async fn settle_queued(&mut self) -> Result<(), TransportError> {
        if let Some((pre, plan)) = self.queued.planned() {
            let (plan, become_) = (plan.clone(), pre.get_become().cloned());
            if let Some(key) = self.plane_key(become_.as_ref())
                && self.plane(&key).await.is_some()
                && let Some(Plane::Ready(sftp, _)) = self.planes.get(&key)
            {
                let r = self
                    .on_plane("backing up", plane::backup::backup(sftp.as_ref(), &plan))
                    .await;
                let taken = match r {
                    Ok(Ok(Some(b))) => Some(Ok(b)),
                    Ok(Ok(None)) => None,
                    Ok(Err(broken)) => {
                        self.plane_broke(&key, &broken);
                        Some(Err(TransportError::Io(format!(
                            "{}: backing up: sftp session lost: {broken}",
                            self.name
                        ))))
                    }
                    Err(e) => Some(Err(e)),
                };
                if let Some(taken) = taken {
                    self.queued.take_pending();
                    let out = match taken {
                        Ok(b) => {
                            if !b.prune_left.is_empty() {
                                // Old runs too large to remove request by request.
                                let mut rm = Cmd::raw("rm -rf --").args(b.prune_left);
                                if let Some(b) = &become_ {
                                    rm = rm.with_become(b.clone());
                                }
                                let limits = self.limits;
                                let _ = self.run_one(&rm, None, limits).await;
                            }
                            Ok(b.out)
                        }
                        Err(e) => Err(e),
                    };
                    tracing::debug!(host = %self.name, "backup on the file plane");
                    self.queued.settle_alone(out)?;
                    return self.queued.blocked();
                }
            }
        }
        if let Some(pre) = self.queued.take_pending() {
            let limits = self.limits;
            let r = self.run_one(&pre, None, limits).await;
            self.queued.settle_alone(r)?;
        }
        self.queued.blocked()
    }

    /// Waits for `fut` within the transport's default timeout and while the connection lives.
    async fn on_plane<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = T>,
    ) -> Result<T, TransportError> {
        let mut dead = self.conn.dead.clone();
        if let Some(r) = dead.borrow_and_update().clone() {
            return Err(TransportError::Unresponsive(r));
        }
        let guarded = async {
            tokio::select! {
                r = fut => Ok(r),
                _ = dead.wait_for(Option::is_some) => Err(TransportError::Unresponsive(
                    self.conn.dead_reason().unwrap_or_else(|| format!("{}: connection lost", self.name)),
                )),
            }
        };
        match within(self.default_timeout, guarded).await {
            Ok(r) => r,
            Err(GaveUp::TimedOut(after)) => Err(TransportError::TimedOut {
                after,
                what: Some(what.to_string()),
                script: what.to_string(),
            }),
            Err(GaveUp::Abandoned) => Err(TransportError::Interrupted),
        }
    }

    /// Marks `key`'s session broken after `e` (the shell plane serves it from now on).
    fn plane_broke(&mut self, key: &Option<String>, e: &str) {
        tracing::info!(host = %self.name, user = ?key, error = %e, "file plane: sftp session lost; shell programs from now on");
        self.planes.insert(key.clone(), Plane::Off);
    }

    /// [`Transport::put`] on the file plane: `None` when the shell plane must do it.
    async fn plane_put(
        &mut self,
        data: Payload<'_>,
        path: &str,
        attrs: &FileAttrs,
    ) -> Result<Option<Put>, TransportError> {
        let Some(key) = self.plane_for_change(attrs.become_.as_ref()).await? else {
            return Ok(None);
        };
        let Some(Plane::Ready(sftp, _)) = self.planes.get(&key) else {
            return Ok(None);
        };
        let staged = self
            .on_plane(&format!("writing {path}"), sftp.stage(data, path, attrs))
            .await??;
        let Some(staged) = staged else {
            return Ok(None);
        };
        if !staged.verified {
            // Too large to read back here: its sha256 is taken on the host.
            let mut check = cmd::sha256_cmd(&staged.tmp);
            if let Some(b) = &attrs.become_ {
                check = check.with_become(b.clone());
            }
            let out = self.run_read(&check).await;
            let got = match &out {
                Ok(o) if o.status == 0 => o.stdout_lossy().get(..64).map(str::to_string),
                _ => None,
            };
            if got.as_deref() != Some(staged.sha256.as_str()) {
                if let Some(Plane::Ready(sftp, _)) = self.planes.get(&key) {
                    sftp.discard(&staged).await;
                }
                out?;
                return Err(TransportError::Protocol(format!(
                    "{}: sha256 of {path} differs after writing (got {})",
                    self.name,
                    got.unwrap_or_default()
                )));
            }
        }
        let Some(Plane::Ready(sftp, _)) = self.planes.get(&key) else {
            return Ok(None);
        };
        self.on_plane(&format!("writing {path}"), sftp.commit(&staged))
            .await??;
        tracing::debug!(host = %self.name, path, bytes = staged.len, "sftp put");
        Ok(Some(staged.put))
    }

    /// The session a change with `become_` is made on, ready, with what was read ahead
    /// forgotten and the queued backup taken: `None` when the shell plane must make it (no
    /// session for that user, or a queued backup that only a program can take: it rides with
    /// the shell's command in one round trip).
    async fn plane_for_change(
        &mut self,
        become_: Option<&Become>,
    ) -> Result<Option<Option<String>>, TransportError> {
        let Some(key) = self.plane_key(become_) else {
            return Ok(None);
        };
        self.reads.may_run()?;
        if self.queued.is_pending() && self.queued.planned().is_none() {
            return Ok(None);
        }
        if self.plane(&key).await.is_none() {
            return Ok(None);
        }
        self.reads.changed();
        self.settle_queued().await?;
        Ok(Some(key))
    }

    /// A command that is only file operations ([`Cmd::file_ops`]) made on the file plane:
    /// `None` when the shell plane must run it.
    async fn plane_ops(&mut self, cmd: &Cmd) -> Result<Option<Output>, TransportError> {
        let Some(ops) = cmd.file_ops() else {
            return Ok(None);
        };
        let Some(key) = self.plane_for_change(cmd.get_become()).await? else {
            return Ok(None);
        };
        let Some(Plane::Ready(sftp, _)) = self.planes.get(&key) else {
            return Ok(None);
        };
        let what = format!(
            "changing {}",
            ops.first().map(|o| o.path()).unwrap_or_default()
        );
        match self
            .on_plane(&what, plane::ops::apply(sftp.as_ref(), ops))
            .await?
        {
            Ok(out) => {
                if out.is_some() {
                    tracing::debug!(host = %self.name, ops = ops.len(), "file operations on the file plane");
                }
                Ok(out)
            }
            Err(broken) => {
                self.plane_broke(&key, &broken);
                Err(TransportError::Io(format!(
                    "{}: {what}: sftp session lost: {broken}",
                    self.name
                )))
            }
        }
    }

    /// [`Transport::get`] on the file plane: `None` when the shell plane must do it.
    async fn plane_get(
        &mut self,
        path: &str,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        let Some(key) = self.plane_key(None) else {
            return Ok(None);
        };
        self.reads.may_run()?;
        if self.plane(&key).await.is_none() {
            return Ok(None);
        }
        self.settle_queued().await?;
        let Some(Plane::Ready(sftp, _)) = self.planes.get(&key) else {
            return Ok(None);
        };
        self.on_plane(&format!("reading {path}"), sftp.get(path, max_bytes))
            .await?
            .map(Some)
    }

    /// Answers a set of file queries on the file plane (no program on the host), as the
    /// shell plane's stat helpers would: `None` when one of them needs the shell plane.
    pub(crate) async fn plane_answers(
        &mut self,
        queries: &[&FileQuery],
        become_: Option<&Become>,
    ) -> Result<Option<Vec<Output>>, TransportError> {
        let Some(key) = self.plane_key(become_) else {
            return Ok(None);
        };
        tracing::debug!(host = %self.name, n = queries.len(), queued = self.queued.is_pending(), "file queries");
        // A queued backup that only a program can take rides with the shell plane's next
        // command; reads do not overtake it. One of plain paths is taken on the plane first.
        if self.queued.is_pending() && self.queued.planned().is_none() {
            return Ok(None);
        }
        self.queued.blocked()?;
        if self.plane(&key).await.is_none() {
            return Ok(None);
        }
        if self.queued.is_pending() {
            self.settle_queued().await?;
        }
        let Some(Plane::Ready(sftp, _)) = self.planes.get(&key) else {
            return Ok(None);
        };
        let sftp: &Sftp = sftp;
        let all = futures::future::join_all(queries.iter().map(|q| sftp.answer(q)));
        let answers = self.on_plane("looking at files", all).await?;
        let mut outs = Vec::with_capacity(answers.len());
        for (a, q) in answers.into_iter().zip(queries) {
            match a {
                Ok(Some(a)) => outs.push(a.to_output()),
                Ok(None) => {
                    tracing::debug!(host = %self.name, path = %q.path, "file query left to the shell plane");
                    return Ok(None);
                }
                Err(e) => {
                    self.plane_broke(&key, &e);
                    return Ok(None);
                }
            }
        }
        tracing::debug!(host = %self.name, n = outs.len(), "file queries answered over sftp");
        Ok(Some(outs))
    }
}

impl Transport for SshTransport {
    async fn exec(&mut self, cmd: &Cmd) -> Result<Output, TransportError> {
        if let Some(out) = self.plane_ops(cmd).await? {
            return Ok(out);
        }
        let limits = self.limits;
        self.run(cmd, None, limits).await
    }

    async fn put(
        &mut self,
        data: Payload<'_>,
        path: &str,
        attrs: &FileAttrs,
    ) -> Result<Put, TransportError> {
        if !path.starts_with('/') {
            return Err(TransportError::Io(format!("{path}: path must be absolute")));
        }
        if let Some(put) = self.plane_put(data, path, attrs).await? {
            return Ok(put);
        }
        let sum = data.sha256();
        let mut cmd = cmd::put_file_keeping_cmd(
            path,
            &sum,
            attrs.mode,
            attrs.owner.as_deref(),
            attrs.group.as_deref(),
            attrs.keep,
        );
        if let Some(b) = &attrs.become_ {
            cmd = cmd.with_become(b.clone());
        }
        if let Some(t) = self.default_timeout {
            cmd = cmd.timeout(t);
        }
        let small = OutputLimits {
            head: 64 * 1024,
            tail: 64 * 1024,
        };
        let out = self.run_input(&cmd, data, small).await?;
        match out.status {
            0 => Ok(Put {
                not_kept: out
                    .stdout_lossy()
                    .lines()
                    .find_map(|l| l.strip_prefix(cmd::NOT_KEPT))
                    .map(str::to_string),
            }),
            3 => Err(TransportError::Protocol(format!(
                "{}: {}",
                self.name,
                out.stderr_lossy().trim_end()
            ))),
            s => Err(TransportError::Io(format!(
                "writing {path} failed (exit {s}): {}",
                out.stderr_lossy().trim_end()
            ))),
        }
    }

    async fn get(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>, TransportError> {
        if let Some(data) = self.plane_get(path, max_bytes).await? {
            return Ok(data);
        }
        let want = max_bytes.saturating_add(1);
        let mut cmd = cmd::read_file_bounded_cmd(path, want);
        if let Some(t) = self.default_timeout {
            cmd = cmd.timeout(t);
        }
        let limits = OutputLimits {
            head: usize::try_from(want).unwrap_or(usize::MAX),
            tail: 0,
        };
        self.reads.may_run()?;
        let out = self.run_after_queued(&cmd, None, limits).await?;
        if out.status != 0 {
            return Err(TransportError::Io(format!(
                "read {path}: {}",
                out.stderr_lossy().trim_end()
            )));
        }
        if out.stdout.len() as u64 > max_bytes || out.truncated.stdout > 0 {
            return Err(TransportError::TooLarge {
                path: path.to_string(),
                max_bytes,
            });
        }
        Ok(out.stdout)
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// What a command gets on stdin: `head`, then `body`, written one after the other (a large
/// body is never copied to put a few bytes before it; a file body is streamed from disk).
#[derive(Clone, Copy, Debug)]
struct Stdin<'a> {
    head: &'a [u8],
    body: Payload<'a>,
}

impl<'a> Stdin<'a> {
    fn bytes(body: &'a [u8]) -> Stdin<'a> {
        Stdin {
            head: &[],
            body: Payload::Bytes(body),
        }
    }

    fn len(&self) -> u64 {
        self.head.len() as u64 + self.body.len()
    }
}

/// What is known of a command the host started: its process group (from the marker the
/// session line prints first) and its channel, once open.
#[derive(Default)]
struct Started {
    pgid: AtomicU32,
    channel: Mutex<Option<Arc<russh::ChannelWriteHalf<client::Msg>>>>,
}

impl Started {
    /// Asks sshd to SIGKILL what the channel's session started (RFC 4254 `signal`; OpenSSH
    /// 7.9+ sends it to the session's process group with `killpg`, as the login user), then
    /// closes the channel. For a command whose process group was never learned (it hung
    /// before its shell printed it: a login script, a stopped process, a blocked write).
    async fn kill_by_channel(&self, name: &str) {
        let channel = self.channel.lock().ok().and_then(|c| c.clone());
        let Some(channel) = channel else { return };
        tracing::debug!(host = %name, "process group unknown; signalling the channel's session");
        // It never got as far as its own command: nothing to let clean up, SIGKILL at once.
        if let Err(e) = channel.signal(Sig::KILL).await {
            tracing::debug!(host = %name, error = %e, "cannot signal the channel's session");
        }
        let _ = channel.close().await;
    }
}

/// Kills a command's process group when the command is abandoned: on timeout or error right
/// away ([`KillGuard::kill_now`]), on cancellation (the future dropped) from a task.
struct KillGuard {
    conn: Arc<Conn>,
    started: Arc<Started>,
    become_: Option<Become>,
    grace: Duration,
    armed: bool,
}

impl KillGuard {
    async fn kill_now(&self) {
        let pgid = self.started.pgid.load(Ordering::SeqCst);
        if pgid == 0 {
            if self.conn.dead.borrow().is_none() {
                self.started.kill_by_channel(&self.conn.name).await;
            }
            return;
        }
        kill_group(
            Arc::clone(&self.conn),
            pgid,
            self.become_.clone(),
            self.grace,
        )
        .await;
    }
}

impl Drop for KillGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let pgid = self.started.pgid.load(Ordering::SeqCst);
        if pgid == 0 {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let (started, name) = (Arc::clone(&self.started), self.conn.name.clone());
                rt.spawn(async move { started.kill_by_channel(&name).await });
            }
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            tracing::debug!(host = %self.conn.name, pgid, "command cancelled; killing its process group");
            rt.spawn(kill_group(
                Arc::clone(&self.conn),
                pgid,
                self.become_.clone(),
                self.grace,
            ));
        }
    }
}

async fn kill_group(conn: Arc<Conn>, pgid: u32, become_: Option<Become>, grace: Duration) {
    if pgid <= 1 || conn.dead.borrow().is_some() {
        return;
    }
    let mut kill = cmd::kill_group_cmd(pgid, grace);
    if let Some(b) = become_ {
        kill = kill.with_become(b);
    }
    let Ok(line) = kill.wrap_line() else { return };
    let limits = OutputLimits {
        head: 4096,
        tail: 4096,
    };
    let run = conn.exec(&line, None, limits, Arc::new(Started::default()));
    match tokio::time::timeout(grace + Duration::from_secs(10), run).await {
        Ok(Ok(out)) if out.success() => {}
        Ok(Ok(out)) => {
            tracing::warn!(host = %conn.name, pgid, stderr = %out.stderr_lossy(), "killing the process group failed")
        }
        Ok(Err(e)) => {
            tracing::warn!(host = %conn.name, pgid, error = %e, "cannot kill the process group")
        }
        Err(_) => tracing::warn!(host = %conn.name, pgid, "killing the process group timed out"),
    }
}

impl Conn {
    /// The reason the connection is dead, if it is.
    fn dead_reason(&self) -> Option<String> {
        self.dead.borrow().clone()
    }

    fn lost(&self, what: &str, e: impl std::fmt::Display) -> TransportError {
        match self.dead_reason() {
            Some(r) => TransportError::Unresponsive(r),
            None => {
                TransportError::Unreachable(format!("{}: connection lost {what}: {e}", self.name))
            }
        }
    }

    /// Opens a channel, runs `line`, feeds `input`, collects bounded output. Reports the
    /// command's process group in `pgid` as soon as it is known. Waits on the liveness signal
    /// so a host that stops answering ends the wait.
    async fn exec(
        &self,
        line: &str,
        input: Option<Stdin<'_>>,
        limits: OutputLimits,
        started: Arc<Started>,
    ) -> Result<Output, TransportError> {
        let mut dead = self.dead.clone();
        if let Some(r) = dead.borrow_and_update().clone() {
            return Err(TransportError::Unresponsive(r));
        }
        let work = self.exec_channel(line, input, limits, started);
        tokio::select! {
            r = work => r,
            _ = dead.wait_for(Option::is_some) => Err(TransportError::Unresponsive(
                self.dead_reason().unwrap_or_else(|| format!("{}: connection lost", self.name)),
            )),
        }
    }

    async fn exec_channel(
        &self,
        line: &str,
        input: Option<Stdin<'_>>,
        limits: OutputLimits,
        started: Arc<Started>,
    ) -> Result<Output, TransportError> {
        // A file to stream is opened first: one that cannot be read fails before anything runs.
        let body = match &input {
            Some(s) => Some(s.body.reader().await?),
            None => None,
        };
        let _permit = self
            .channels
            .acquire()
            .await
            .map_err(|e| TransportError::Io(format!("channel limit: {e}")))?;
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.lost("opening a channel", e))?;
        channel
            .exec(true, line.as_bytes())
            .await
            .map_err(|e| self.lost("starting a command", e))?;
        let (mut read, write) = channel.split();
        let write = Arc::new(write);
        if let Ok(mut c) = started.channel.lock() {
            *c = Some(Arc::clone(&write));
        }
        // Without input the command's stdin is /dev/null (see session_line): no EOF to send,
        // one message less per command (it costs a delayed ACK through a jump host).
        let writer = async {
            if let (Some(s), Some(body)) = (input, body) {
                let sent = write
                    .data(tokio::io::AsyncReadExt::chain(s.head, body))
                    .await;
                // EOF even when the body could not be read to its end: the command sees a short
                // input (a transfer's sha256 check then refuses it) instead of waiting forever.
                let eof = write.eof().await;
                sent?;
                eof?;
            }
            Ok::<(), russh::Error>(())
        };
        tokio::pin!(writer);
        let mut writing = input.is_some();
        let mut stdout = Capture::new(limits);
        let mut stderr = Capture::new(limits);
        let mut marker = Marker::default();
        let mut status: Option<i32> = None;
        let mut refused = false;
        loop {
            tokio::select! {
                w = &mut writer, if writing => {
                    writing = false;
                    if let Err(e) = w {
                        // The command may exit without reading its stdin.
                        tracing::debug!(host = %self.name, error = %e, "stdin not fully written");
                    }
                }
                msg = read.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        if let Some(rest) = marker.feed(&data, &started.pgid) {
                            stdout.push(&rest);
                        }
                    }
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => stderr.push(&data),
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        status = Some(i32::try_from(exit_status).unwrap_or(255));
                    }
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                        status = Some(128 + signal_number(&signal_name));
                    }
                    Some(ChannelMsg::Failure) => refused = true,
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
            }
        }
        if let Some(rest) = marker.finish() {
            stdout.push(&rest);
        }
        let Some(status) = status else {
            if refused {
                return Err(TransportError::Protocol(format!(
                    "{}: the server refused to run the command",
                    self.name
                )));
            }
            return Err(self.lost(
                "while a command ran",
                "the channel closed without an exit status",
            ));
        };
        let (out, dropped_out) = stdout.finish();
        let (err, dropped_err) = stderr.finish();
        Ok(Output {
            status,
            stdout: out,
            stderr: err,
            truncated: Truncated {
                stdout: dropped_out,
                stderr: dropped_err,
            },
        })
    }
}

/// Finds the `RDEPLOY-PGID n` line [`cmd::session_line`] prints first; what a login script
/// printed before it is dropped. Gives up (passing everything through) after 64 KiB.
#[derive(Default)]
struct Marker {
    buf: Vec<u8>,
    done: bool,
}

impl Marker {
    const LIMIT: usize = 64 * 1024;

    /// Bytes that belong to the command's stdout, once the marker is behind us.
    fn feed(&mut self, data: &[u8], pgid: &AtomicU32) -> Option<Vec<u8>> {
        if self.done {
            return Some(data.to_vec());
        }
        self.buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let line = &self.buf[start..start + nl];
            if let Some(n) = line
                .strip_prefix(cmd::PGID_MARKER.as_bytes())
                .and_then(|n| std::str::from_utf8(n).ok())
                .and_then(|n| n.trim().parse::<u32>().ok())
            {
                pgid.store(n, Ordering::SeqCst);
                self.done = true;
                let rest = self.buf[start + nl + 1..].to_vec();
                self.buf.clear();
                return Some(rest);
            }
            start += nl + 1;
        }
        if self.buf.len() > Self::LIMIT {
            self.done = true;
            return Some(std::mem::take(&mut self.buf));
        }
        None
    }

    /// What is left when the stream ends without a marker (the command never started).
    fn finish(self) -> Option<Vec<u8>> {
        (!self.done && !self.buf.is_empty()).then_some(self.buf)
    }
}

fn signal_number(sig: &Sig) -> i32 {
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(_) => 0,
    }
}

/// Every `interval`, a `keepalive@openssh.com` request that wants a reply (any reply, even
/// "unsupported", proves the host alive). `count` unanswered in a row, or a closed connection,
/// and the connection is declared dead: every command waiting on it fails at once.
async fn liveness(
    conn: Weak<Conn>,
    dead: watch::Sender<Option<String>>,
    interval: Duration,
    count: u32,
) {
    let mut missed = 0u32;
    loop {
        let started = tokio::time::Instant::now();
        let Some(c) = conn.upgrade() else { return };
        let name = c.name.clone();
        let reply = tokio::time::timeout(
            interval,
            c.handle
                .send_global_request("keepalive@openssh.com", &[], true),
        )
        .await;
        drop(c);
        match reply {
            Ok(Ok(_)) | Ok(Err(russh::Error::RequestDenied)) => {
                missed = 0;
                tokio::time::sleep_until(started + interval).await;
            }
            Ok(Err(e)) => {
                let _ = dead.send(Some(format!("{name}: connection lost: {e}")));
                return;
            }
            Err(_) => {
                missed += 1;
                tracing::debug!(host = %name, missed, "keepalive unanswered");
                if missed >= count {
                    let _ = dead.send(Some(format!(
                        "{name}: the host stopped answering ({count} keepalives unanswered, {}s apart)",
                        interval.as_secs_f64()
                    )));
                    return;
                }
            }
        }
    }
}

/// The russh handler: checks the server's key against known_hosts before anything else.
struct Client {
    label: String,
    host: String,
    port: u16,
    policy: HostKeyPolicy,
    files: Vec<PathBuf>,
    known: Arc<KnownHosts>,
    refusal: Arc<Mutex<Option<Refusal>>>,
}

/// Why `check_server_key` said no.
enum Refusal {
    /// The host's identity (the message says why).
    Identity(String),
    /// The controller ran out of resources while checking it: nothing is known about the key.
    Exhausted(String),
}

impl Client {
    fn refuse(&self, why: String) -> bool {
        tracing::warn!(host = %self.label, "{why}");
        if let Ok(mut r) = self.refusal.lock() {
            *r = Some(Refusal::Identity(why));
        }
        false
    }

    /// Gives up on the connection for the controller's own lack of resources.
    fn exhausted(&self, why: String) -> bool {
        tracing::warn!(host = %self.label, "{why}");
        if let Ok(mut r) = self.refusal.lock() {
            *r = Some(Refusal::Exhausted(why));
        }
        false
    }

    async fn verify(&self, key: &PublicKey) -> bool {
        let blob = match key.to_bytes() {
            Ok(b) => b,
            Err(e) => {
                return self.refuse(format!("{}: cannot encode its host key: {e}", self.label));
            }
        };
        let hk = HostKey {
            algo: key.algorithm().as_str().to_string(),
            blob,
        };
        let verdict = self.known.check(&self.host, self.port, &hk);
        let shown = known_hosts::lookup_name(&self.host, self.port);
        match verdict {
            Verdict::Known => true,
            Verdict::Unknown => match (self.policy.learns(&verdict), self.files.first()) {
                (false, _) | (_, None) => self.refuse(format!(
                    "{}: host key for {shown} is unknown ({} {}); not in {}. Refusing under the strict policy: add it to known_hosts (e.g. ssh-keyscan) or use --host-key-checking accept-new",
                    self.label,
                    hk.algo,
                    hk.fingerprint(),
                    self.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
                )),
                (true, Some(file)) => {
                    let (file, known, host, port, key2) = (
                        file.clone(),
                        self.known.clone(),
                        self.host.clone(),
                        self.port,
                        hk.clone(),
                    );
                    let learned = tokio::task::spawn_blocking(move || {
                        known_hosts::learn(&file, &known, &host, port, &key2)
                    })
                    .await;
                    match learned {
                        Ok(Ok(Verdict::Known)) => {
                            tracing::info!(host = %self.label, key = %hk.fingerprint(), "recorded a new host key (accept-new)");
                            true
                        }
                        Ok(Ok(v)) => {
                            let why = v.refusal(&shown, &hk).unwrap_or_default();
                            self.refuse(format!("{}: {why}", self.label))
                        }
                        Ok(Err(e)) => match &e.exhausted {
                            Some(x) => self.exhausted(format!("{x}: {}: cannot record its host key: {e}", self.label)),
                            None => self.refuse(format!("{}: cannot record its host key: {e}", self.label)),
                        },
                        Err(e) => self.refuse(format!("{}: cannot record its host key: {e}", self.label)),
                    }
                }
            },
            v => {
                let why = v.refusal(&shown, &hk).unwrap_or_default();
                self.refuse(format!("{}: {why}", self.label))
            }
        }
    }
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => Ok(self.verify(key).await),
            PublicKeyOrCertificate::Certificate(_) => Ok(self.refuse(format!(
                "{}: the server offered a host certificate; rdeploy verifies plain host keys only",
                self.label
            ))),
        }
    }
}

/// Connects to one hop (directly, or through `via`'s direct-tcpip channel), verifies its key,
/// authenticates.
async fn connect_hop(
    hop: &Hop,
    via: Option<&Handle<Client>>,
    opts: &SshOptions,
    label: &str,
) -> Result<Handle<Client>, TransportError> {
    let ep = &hop.endpoint;
    let files = hop.known_hosts.clone();
    let known = {
        let files = files.clone();
        tokio::task::spawn_blocking(move || KnownHosts::load_shared(&files))
            .await
            .map_err(|e| TransportError::Io(format!("{label}: {e}")))?
            .map_err(|e| match &e.exhausted {
                // Out of descriptors while reading known_hosts says nothing about the host.
                Some(x) => TransportError::Exhausted(format!("{x}: {label}: {e}")),
                None => TransportError::HostKeyRefused(format!("{label}: {e}")),
            })?
    };
    let mut config = client::Config {
        nodelay: true,
        ..client::Config::default()
    };
    config.preferred.key = preferred_host_keys(&known.known_types(&ep.host, ep.port)).into();
    let refusal = Arc::new(Mutex::new(None));
    let handler = Client {
        label: label.to_string(),
        host: ep.host.clone(),
        port: ep.port,
        policy: hop.policy,
        files,
        known,
        refusal: Arc::clone(&refusal),
    };
    let config = Arc::new(config);
    let connected = match via {
        None => {
            let stream = tcp_connect(&ep.host, ep.port, label).await?;
            // sshd keeps Nagle on until a session runs a command (a jump host: for good):
            // without quick ACKs the login and the first command each wait ~40 ms, and every
            // command through a jump host (see quickack.rs).
            client::connect_stream(config, QuickAck::new(stream), handler).await
        }
        Some(jump) => {
            let channel = jump
                .channel_open_direct_tcpip(ep.host.clone(), u32::from(ep.port), "127.0.0.1", 0)
                .await
                .map_err(|e| {
                    TransportError::Unreachable(format!(
                        "{label}: the jump host could not open a tunnel to {}:{}: {e}",
                        ep.host, ep.port
                    ))
                })?;
            client::connect_stream(config, channel.into_stream(), handler).await
        }
    };
    let mut handle = match connected {
        Ok(h) => h,
        Err(e) => {
            match refusal.lock().ok().and_then(|mut r| r.take()) {
                Some(Refusal::Identity(why)) => return Err(TransportError::HostKeyRefused(why)),
                Some(Refusal::Exhausted(why)) => return Err(TransportError::Exhausted(why)),
                None => {}
            }
            if let Some(x) = crate::limits::exhausted_text(&e.to_string()) {
                return Err(TransportError::Exhausted(format!(
                    "{x}: {label}: SSH handshake failed: {e}"
                )));
            }
            return Err(TransportError::Unreachable(format!(
                "{label}: SSH handshake failed: {e}"
            )));
        }
    };
    authenticate(&mut handle, hop, opts, label).await?;
    Ok(handle)
}

async fn tcp_connect(
    host: &str,
    port: u16,
    label: &str,
) -> Result<tokio::net::TcpStream, TransportError> {
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| match crate::limits::exhausted(&e) {
            Some(x) => {
                TransportError::Exhausted(format!("{x}: {label}: cannot resolve {host}: {e}"))
            }
            None => TransportError::Unreachable(format!("{label}: cannot resolve {host}: {e}")),
        })?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                if let Err(e) = s.set_nodelay(true) {
                    tracing::debug!(error = %e, "set_nodelay failed");
                }
                return Ok(s);
            }
            // No socket for it: the controller's failure, whatever the host is.
            Err(e) => match crate::limits::exhausted(&e) {
                Some(x) => {
                    return Err(TransportError::Exhausted(format!(
                        "{x}: {label}: cannot connect to {addr}: {e}"
                    )));
                }
                None => last = Some(format!("{addr}: {e}")),
            },
        }
    }
    Err(TransportError::Unreachable(format!(
        "{label}: cannot connect: {}",
        last.unwrap_or_else(|| format!("{host} has no address"))
    )))
}

/// russh's default host key algorithms, with the types known_hosts records for this host first
/// (OpenSSH does the same): a host with several keys then shows us the one we know.
fn preferred_host_keys(known: &[String]) -> Vec<Algorithm> {
    let defaults: Vec<Algorithm> = russh::Preferred::DEFAULT.key.to_vec();
    let mut out: Vec<Algorithm> = Vec::new();
    for t in known {
        for a in &defaults {
            let same = match a {
                Algorithm::Rsa { .. } => t == "ssh-rsa",
                other => other.as_str() == t,
            };
            if same && !out.contains(a) {
                out.push(a.clone());
            }
        }
    }
    for a in defaults {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// Tries the agent's keys, then the key files, then the password. The error lists every
/// method tried and what the server still accepts; it never contains a secret.
async fn authenticate(
    handle: &mut Handle<Client>,
    hop: &Hop,
    opts: &SshOptions,
    label: &str,
) -> Result<(), TransportError> {
    let user = hop.endpoint.user.clone();
    let mut tried: Vec<String> = Vec::new();
    let mut server_accepts: Option<String> = None;
    let mut note = |r: &AuthResult| {
        if let AuthResult::Failure {
            remaining_methods, ..
        } = r
        {
            let names: Vec<&str> = remaining_methods.iter().map(<&str>::from).collect();
            server_accepts = Some(names.join(","));
        }
    };
    let rsa_hash = handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten();

    // 1. ssh-agent.
    let wanted: Option<Vec<PublicKey>> = hop.identities_only.then(|| {
        hop.identity_files
            .iter()
            .filter_map(|f| russh::keys::load_public_key(pub_path(f)).ok())
            .collect()
    });
    match AgentClient::connect_env().await {
        Err(e) => {
            if let Some(x) = crate::limits::exhausted_text(&e.to_string()) {
                return Err(TransportError::Exhausted(format!(
                    "{x}: {label}: cannot reach ssh-agent: {e}"
                )));
            }
            tried.push("ssh-agent (none: SSH_AUTH_SOCK unset or unreachable)".into())
        }
        Ok(mut agent) => match agent.request_identities().await {
            Err(e) => tried.push(format!("ssh-agent (cannot list keys: {e})")),
            Ok(ids) => {
                let mut offered = 0;
                for id in ids {
                    let AgentIdentity::PublicKey { key, comment } = id else {
                        continue;
                    };
                    if let Some(w) = &wanted
                        && !w.iter().any(|k| k.key_data() == key.key_data())
                    {
                        continue;
                    }
                    offered += 1;
                    let hash = key.algorithm().is_rsa().then_some(rsa_hash).flatten();
                    match handle
                        .authenticate_publickey_with(&user, key.clone(), hash, &mut agent)
                        .await
                    {
                        Ok(AuthResult::Success) => return Ok(()),
                        Ok(r) => note(&r),
                        Err(e) => {
                            tracing::debug!(host = %label, error = %e, %comment, "agent signing failed")
                        }
                    }
                }
                tried.push(format!("ssh-agent ({offered} key(s) refused)"));
            }
        },
    }

    // 2. Key files.
    for file in &hop.identity_files {
        if !file.exists() {
            continue;
        }
        let shown = file.display().to_string();
        let key = match russh::keys::load_secret_key(file, None) {
            Ok(k) => k,
            Err(russh::keys::Error::KeyIsEncrypted) => match &opts.key_passphrase {
                None => {
                    tried.push(format!(
                        "key {shown} (encrypted: give --key-passphrase-file or load it into ssh-agent)"
                    ));
                    continue;
                }
                Some(p) => match russh::keys::load_secret_key(file, Some(p.expose())) {
                    Ok(k) => k,
                    Err(_) => {
                        tried.push(format!("key {shown} (the passphrase does not unlock it)"));
                        continue;
                    }
                },
            },
            Err(e) => {
                if let Some(x) = crate::limits::exhausted_text(&e.to_string()) {
                    return Err(TransportError::Exhausted(format!(
                        "{x}: {label}: cannot read key {shown}: {e}"
                    )));
                }
                tried.push(format!("key {shown} (unreadable: {e})"));
                continue;
            }
        };
        let hash = key.algorithm().is_rsa().then_some(rsa_hash).flatten();
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        match handle.authenticate_publickey(&user, key).await {
            Ok(AuthResult::Success) => return Ok(()),
            Ok(r) => {
                note(&r);
                tried.push(format!("key {shown} (refused)"));
            }
            Err(e) => tried.push(format!("key {shown} (error: {e})")),
        }
    }
    if !hop.identity_files.iter().any(|f| f.exists()) {
        tried.push(format!(
            "key files (none found: {})",
            hop.identity_files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    // 3. Password.
    match (&hop.password, hop.batch_mode) {
        (Some(pw), false) => match handle.authenticate_password(&user, pw.expose()).await {
            Ok(AuthResult::Success) => return Ok(()),
            Ok(r) => {
                note(&r);
                tried.push("password (refused)".into());
            }
            Err(e) => tried.push(format!("password (error: {e})")),
        },
        (Some(_), true) => tried.push("password (not tried: BatchMode yes)".into()),
        (None, _) => {}
    }

    let accepts = server_accepts
        .map(|m| format!("; the server accepts: {m}"))
        .unwrap_or_default();
    Err(TransportError::AuthFailed(format!(
        "{label}: authentication as {user} failed; tried: {}{accepts}",
        tried.join(", ")
    )))
}

/// `key` → `key.pub`.
fn pub_path(f: &std::path::Path) -> PathBuf {
    let mut s = f.as_os_str().to_os_string();
    s.push(".pub");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_strips_the_pgid_line_and_login_noise() {
        let pgid = AtomicU32::new(0);
        let mut m = Marker::default();
        assert_eq!(m.feed(b"motd noise\nRDEPLOY-PG", &pgid), None);
        assert_eq!(
            m.feed(b"ID 4242\nhello\n", &pgid),
            Some(b"hello\n".to_vec())
        );
        assert_eq!(pgid.load(Ordering::SeqCst), 4242);
        assert_eq!(m.feed(b"more", &pgid), Some(b"more".to_vec()));
        assert_eq!(m.finish(), None);
    }

    #[test]
    fn output_without_a_marker_is_kept() {
        let pgid = AtomicU32::new(0);
        let mut m = Marker::default();
        assert_eq!(m.feed(b"sh: setsid: not found\n", &pgid), None);
        assert_eq!(m.finish(), Some(b"sh: setsid: not found\n".to_vec()));
        assert_eq!(pgid.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn known_key_types_are_preferred() {
        let p = preferred_host_keys(&["ssh-rsa".into()]);
        assert!(matches!(p[0], Algorithm::Rsa { .. }));
        assert!(matches!(p[1], Algorithm::Rsa { .. }));
        assert_eq!(p.len(), russh::Preferred::DEFAULT.key.len());
        let p = preferred_host_keys(&["ecdsa-sha2-nistp384".into()]);
        assert_eq!(p[0].as_str(), "ecdsa-sha2-nistp384");
        let p = preferred_host_keys(&[]);
        assert_eq!(p, russh::Preferred::DEFAULT.key.to_vec());
    }

    #[test]
    fn signals_map_to_shell_statuses() {
        assert_eq!(128 + signal_number(&Sig::KILL), 137);
        assert_eq!(128 + signal_number(&Sig::TERM), 143);
    }
}
