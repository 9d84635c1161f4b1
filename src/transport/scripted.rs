//! A scripted transport for tests: a fake host whose commands are answered from a script of
//! canned replies, and whose files live in memory. Built only for tests (`#[cfg(test)]`).
//!
//! Owns [`Host`] (the fake host: its script, its in-memory files and the log of every request
//! it was sent, shared by every connection opened to it, so a test keeps a handle and reads
//! the log after the executor closed the connection), [`ScriptedTransport`] (one connection
//! to it, the [`super::AnyTransport::Scripted`] variant), [`Fleet`] (hosts by inventory name,
//! what the executor opens instead of SSH in a test: [`crate::exec::host::Connect`]) and the
//! reply builders ([`ok`], [`exit`], [`stat_reply`]). A command is matched by the text
//! [`Cmd::display`] shows (a substring, or any predicate), in the order the rules were given;
//! a rule given with [`Host::once`] answers once. Two things need no rule: a stat helper
//! ([`super::cmd::stat_cmd`] and its kin) and `test -d PATH` are answered from the in-memory
//! files, and [`Transport::put`]/[`Transport::get`] write and read them. Anything else
//! unscripted fails with [`TransportError::Protocol`] naming the command, so a test says what
//! it expects the host to be asked. It behaves like the local transport around the script: a
//! queued command ([`super::AnyTransport::run_before_next`]) runs on its own before the next
//! one, and every command or transfer forgets what was read ahead. It must not be used by
//! anything but tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::cmd::{self, Batch, BatchError, Cmd, PathKind};
use super::{FileAttrs, Output, Payload, Put, Queued, ReadSet, Reads, Transport, TransportError};

/// One request the host was sent, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A command, as [`Cmd::display`] shows it, with what was written to its stdin (its own
    /// bytes, then an `exec_input` body).
    Exec {
        /// The command's text.
        cmd: String,
        /// Its stdin.
        stdin: Vec<u8>,
    },
    /// Several commands in one round trip (a batch, or a set of reads), each as shown.
    Batch(Vec<String>),
    /// A file written.
    Put {
        /// Where.
        path: String,
        /// What.
        data: Vec<u8>,
        /// The mode asked for.
        mode: Option<u32>,
    },
    /// A file read.
    Get {
        /// Which.
        path: String,
    },
}

impl Request {
    /// The commands of this request (none for a transfer).
    pub fn commands(&self) -> Vec<&str> {
        match self {
            Request::Exec { cmd, .. } => vec![cmd.as_str()],
            Request::Batch(cmds) => cmds.iter().map(String::as_str).collect(),
            Request::Put { .. } | Request::Get { .. } => Vec::new(),
        }
    }
}

/// A path in the host's in-memory file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A regular file.
    File {
        /// Its bytes.
        data: Vec<u8>,
        /// Its mode.
        mode: u32,
    },
    /// A directory.
    Dir {
        /// Its mode.
        mode: u32,
    },
    /// A symbolic link.
    Link {
        /// Its target.
        target: String,
    },
}

/// The host's in-memory files, by absolute path.
pub type Files = BTreeMap<String, Node>;

/// What a rule answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// The command ran: its output.
    Out(Output),
    /// The transport failed on it.
    Fail(TransportError),
    /// The host stopped answering during it: this connection is lost and the host refuses new
    /// ones (with this error).
    Lose(TransportError),
}

type Matcher = Box<dyn Fn(&str) -> bool + Send>;
type Answer = Box<dyn FnMut(&str, &mut Files) -> Reply + Send>;

struct Rule {
    matches: Matcher,
    answer: Answer,
    /// Answers left; `None` for any number.
    left: Option<usize>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    files: Files,
    log: Vec<Request>,
    /// Connections are refused with this error.
    refuse: Option<TransportError>,
    /// Connections opened so far.
    connects: usize,
    /// Bumped when the host is lost: connections opened before are dead.
    epoch: usize,
}

/// A fake host (see the module docs): cheap to clone, every clone is the same host.
#[derive(Clone)]
pub struct Host {
    name: String,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("name", &self.name).finish()
    }
}

/// The output of a command that exited 0 and printed `stdout`.
pub fn ok(stdout: impl Into<Vec<u8>>) -> Output {
    Output {
        stdout: stdout.into(),
        ..Output::default()
    }
}

/// The output of a command that exited `status` and printed `stderr` on its stderr.
pub fn exit(status: i32, stderr: impl Into<Vec<u8>>) -> Output {
    Output {
        status,
        stderr: stderr.into(),
        ..Output::default()
    }
}

impl Host {
    /// A host named `name` that has no files and answers nothing yet.
    pub fn new(name: impl Into<String>) -> Host {
        Host {
            name: name.into(),
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding it has failed already: its state is still fine
        // to read.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The host's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Answers every command whose shown text contains `text` with `out`.
    pub fn on(self, text: &str, out: Output) -> Host {
        self.rule(contains(text), None, move |_, _| Reply::Out(out.clone()))
    }

    /// Answers the next command whose shown text contains `text` with `out`, once.
    pub fn once(self, text: &str, out: Output) -> Host {
        self.rule(contains(text), Some(1), move |_, _| Reply::Out(out.clone()))
    }

    /// Fails every command whose shown text contains `text` with `e` (the transport's failure).
    pub fn fails(self, text: &str, e: TransportError) -> Host {
        self.rule(contains(text), None, move |_, _| Reply::Fail(e.clone()))
    }

    /// The host stops answering at the first command whose shown text contains `text`: that
    /// command fails with `e`, the connection is lost, and new ones are refused with `e`.
    pub fn lost_at(self, text: &str, e: TransportError) -> Host {
        self.rule(contains(text), Some(1), move |_, _| Reply::Lose(e.clone()))
    }

    /// The most general rule: commands for which `matches` holds (`left` times, or always) are
    /// answered by `answer`, which sees the command's text and may change the host's files.
    pub fn rule(
        self,
        matches: impl Fn(&str) -> bool + Send + 'static,
        left: Option<usize>,
        answer: impl FnMut(&str, &mut Files) -> Reply + Send + 'static,
    ) -> Host {
        self.lock().rules.push(Rule {
            matches: Box::new(matches),
            answer: Box::new(answer),
            left,
        });
        self
    }

    /// A regular file at `path` holding `data`, with mode `mode`.
    pub fn file(self, path: &str, data: impl Into<Vec<u8>>, mode: u32) -> Host {
        self.set(
            path,
            Node::File {
                data: data.into(),
                mode,
            },
        );
        self
    }

    /// A directory at `path` with mode `mode`.
    pub fn dir(self, path: &str, mode: u32) -> Host {
        self.set(path, Node::Dir { mode });
        self
    }

    /// Connections to the host are refused with `e` (it is unreachable).
    pub fn refusing(self, e: TransportError) -> Host {
        self.lock().refuse = Some(e);
        self
    }

    /// Puts `node` at `path`.
    pub fn set(&self, path: &str, node: Node) {
        self.lock().files.insert(path.to_string(), node);
    }

    /// What is at `path` now.
    pub fn node(&self, path: &str) -> Option<Node> {
        self.lock().files.get(path).cloned()
    }

    /// Every request sent to the host so far, in order, over all its connections.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().log.clone()
    }

    /// Every command sent so far, in order (a batch's one by one).
    pub fn commands(&self) -> Vec<String> {
        self.lock()
            .log
            .iter()
            .flat_map(|r| r.commands().into_iter().map(str::to_string))
            .collect()
    }

    /// Connections opened to the host so far.
    pub fn connects(&self) -> usize {
        self.lock().connects
    }

    /// Opens a connection to the host; refused when the host is set to refuse them.
    pub fn connect(&self) -> Result<ScriptedTransport, TransportError> {
        let mut s = self.lock();
        if let Some(e) = &s.refuse {
            return Err(e.clone());
        }
        s.connects += 1;
        Ok(ScriptedTransport {
            host: self.clone(),
            epoch: s.epoch,
            queued: Queued::default(),
            reads: Reads::default(),
            recorded: Vec::new(),
            timeout: None,
        })
    }

    /// The answer to `shown`: the first rule that matches (its count used), else what the
    /// host answers by itself, else a protocol error naming the command.
    fn answer(&self, shown: &str) -> Reply {
        let mut guard = self.lock();
        let s = &mut *guard;
        for rule in s.rules.iter_mut() {
            if rule.left == Some(0) || !(rule.matches)(shown) {
                continue;
            }
            if let Some(n) = rule.left.as_mut() {
                *n -= 1;
            }
            let reply = (rule.answer)(shown, &mut s.files);
            if let Reply::Lose(e) = &reply {
                s.refuse = Some(e.clone());
                s.epoch += 1;
            }
            return reply;
        }
        if let Some(out) = builtin(shown, &s.files) {
            return Reply::Out(out);
        }
        Reply::Fail(TransportError::Protocol(format!(
            "scripted host {}: no reply scripted for `{shown}`",
            self.name
        )))
    }
}

fn contains(text: &str) -> impl Fn(&str) -> bool + Send + 'static {
    let text = text.to_string();
    move |shown: &str| shown.contains(&text)
}

/// The single-quoted arguments after `set --` on the first line of a stat helper's text
/// (`w_=1; set -- 'PATH' 'SHA' 'MAX'`), or after `test -d`.
fn quoted_args(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('\'') {
        let mut word = String::new();
        let mut s = &rest[start + 1..];
        loop {
            match s.find('\'') {
                Some(end) => {
                    word.push_str(&s[..end]);
                    s = &s[end + 1..];
                    // `'\''` is a quote inside the word.
                    if let Some(more) = s.strip_prefix("\\''") {
                        word.push('\'');
                        s = more;
                        continue;
                    }
                    break;
                }
                None => {
                    word.push_str(s);
                    s = "";
                    break;
                }
            }
        }
        out.push(word);
        rest = s;
    }
    out
}

/// What the host answers by itself, from its files: `test -d PATH`, `test -L PATH`,
/// `realpath_cmd`, and the stat helpers ([`super::cmd::stat_cmd`], `stat_content_cmd`, `stat_attrs_cmd`, the
/// resolved ones, and a resolved one behind `test -L PATH &&`).
fn builtin(shown: &str, files: &Files) -> Option<Output> {
    let first = shown.lines().next().unwrap_or_default();
    let status = |yes: bool| Output {
        status: if yes { 0 } else { 1 },
        ..Output::default()
    };
    let is_link = |p: &str| matches!(files.get(p), Some(Node::Link { .. }));
    if !first.contains("&&") {
        if let Some(rest) = first.strip_prefix("test -d ") {
            let path = quoted_args(rest).into_iter().next()?;
            let dir = matches!(files.get(&resolve(files, &path)), Some(Node::Dir { .. }));
            return Some(status(dir));
        }
        if let Some(rest) = first.strip_prefix("test -L ") {
            return Some(status(is_link(&quoted_args(rest).into_iter().next()?)));
        }
    }
    // `realpath_cmd`: the path with its links followed, when its folder exists.
    if shown.ends_with("exec readlink -f -- \"$1\"")
        && let Some(rest) = first.strip_prefix("set -- ")
    {
        let real = resolve(files, &quoted_args(rest).into_iter().next()?);
        let parent = match real.rsplit_once('/') {
            Some(("", _)) => "/".to_string(),
            Some((d, _)) => d.to_string(),
            None => ".".to_string(),
        };
        let found = files.contains_key(&real) || parent == "/" || files.contains_key(&parent);
        return Some(if found {
            ok(format!("{real}\n"))
        } else {
            status(false)
        });
    }
    let body = match first.strip_prefix("test -L ") {
        Some(rest) => {
            let (guard, body) = rest.split_once(" && ( ")?;
            if !is_link(&quoted_args(guard).into_iter().next()?) {
                return Some(status(false));
            }
            body
        }
        None => first,
    };
    if !shown.contains("\np_=$1;") {
        return None;
    }
    let (hash, rest) = if let Some(r) = body.strip_prefix("w_=1; set -- ") {
        (true, r)
    } else if let Some(r) = body.strip_prefix("w_=; set -- ") {
        (false, r)
    } else {
        return None;
    };
    let follow = rest.contains("readlink -f");
    let args = quoted_args(rest.split(" ;").next().unwrap_or(rest));
    let path = args.first()?;
    let path = if follow {
        resolve(files, path)
    } else {
        path.clone()
    };
    let content = match (
        args.get(1),
        args.get(2).and_then(|m| m.parse::<usize>().ok()),
    ) {
        (Some(unless), Some(max)) => Some((unless.as_str(), max)),
        _ => None,
    };
    Some(stat_reply(files.get(path.as_str()), hash, content))
}

/// `path` with every symbolic link on it followed (as `readlink -f`, for links at the path
/// itself; at most 40 of them).
fn resolve(files: &Files, path: &str) -> String {
    let mut p = path.to_string();
    for _ in 0..40 {
        let Some(Node::Link { target }) = files.get(&p) else {
            break;
        };
        p = if target.starts_with('/') {
            target.clone()
        } else {
            let parent = p.rsplit_once('/').map_or("", |(d, _)| d);
            format!("{parent}/{target}")
        };
    }
    p
}

/// What a stat helper prints for `node` (absent when `None`): kind, mode, owner and group
/// (`root`, 0), size, the sha256 of a file when `hash`, its first `max` bytes after a line
/// `content` when `content` asks for them and its sha256 is not `unless`, a link's target.
pub fn stat_reply(node: Option<&Node>, hash: bool, content: Option<(&str, usize)>) -> Output {
    let Some(node) = node else {
        return ok("kind absent\n");
    };
    let (kind, mode, size) = match node {
        Node::File { data, mode } => ("file", *mode, data.len()),
        Node::Dir { mode } => ("directory", *mode, 4096),
        Node::Link { target } => ("link", 0o777, target.len()),
    };
    let mut text =
        format!("kind {kind}\nmode {mode:o}\nuid 0\ngid 0\nowner root\ngroup root\nsize {size}\n");
    let mut body = Vec::new();
    if let (Node::File { data, .. }, true) = (node, hash) {
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data));
        text.push_str(&format!("sha256 {sha}\n"));
        if let Some((unless, max)) = content
            && unless != sha
        {
            text.push_str("content\n");
            body = data[..data.len().min(max)].to_vec();
        }
    }
    if let Node::Link { target } = node {
        text.push_str(&format!("target {target}\n"));
    }
    let mut stdout = text.into_bytes();
    stdout.extend(body);
    ok(stdout)
}

/// A fleet of scripted hosts by inventory name: what a test's run connects to.
#[derive(Clone, Debug, Default)]
pub struct Fleet {
    hosts: BTreeMap<String, Host>,
}

impl Fleet {
    /// A fleet of these hosts.
    pub fn of(hosts: impl IntoIterator<Item = Host>) -> Fleet {
        Fleet {
            hosts: hosts
                .into_iter()
                .map(|h| (h.name().to_string(), h))
                .collect(),
        }
    }

    /// Opens a connection to the host named `name`.
    pub fn connect(&self, name: &str) -> Result<super::AnyTransport, TransportError> {
        match self.hosts.get(name) {
            Some(h) => h.connect().map(super::AnyTransport::Scripted),
            None => Err(TransportError::Unreachable(format!(
                "{name}: not a scripted host of this test"
            ))),
        }
    }
}

/// One connection to a [`Host`].
pub struct ScriptedTransport {
    host: Host,
    /// The host's epoch when this connection was opened: a lost host bumps it.
    epoch: usize,
    pub(crate) queued: Queued,
    pub(crate) reads: Reads,
    recorded: Vec<String>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for ScriptedTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedTransport")
            .field("host", &self.host.name)
            .finish()
    }
}

impl ScriptedTransport {
    /// The host this connects to.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The commands sent over this connection (a batch's one by one).
    pub fn recorded(&self) -> &[String] {
        &self.recorded
    }

    /// The connection is gone: the host was lost after it was opened.
    pub fn is_lost(&self) -> bool {
        self.host.lock().epoch != self.epoch
    }

    /// The default time limit (set for each task; recorded, not enforced).
    pub fn set_default_timeout(&mut self, limit: Option<Duration>) {
        self.timeout = limit;
    }

    fn alive(&self) -> Result<(), TransportError> {
        if self.is_lost() {
            return Err(TransportError::Unresponsive(format!(
                "{}: connection lost",
                self.host.name
            )));
        }
        Ok(())
    }

    fn log(&self, r: Request) {
        self.host.lock().log.push(r);
    }

    /// One command's answer, recorded.
    fn run(&mut self, cmd: &Cmd, input: Vec<u8>) -> Result<Output, TransportError> {
        self.alive()?;
        cmd.wrap()?;
        let shown = cmd.display();
        self.recorded.push(shown.clone());
        let mut stdin = cmd.stdin_bytes().unwrap_or_default();
        stdin.extend(input);
        self.log(Request::Exec {
            cmd: shown.clone(),
            stdin,
        });
        match self.host.answer(&shown) {
            Reply::Out(o) => Ok(o),
            Reply::Fail(e) | Reply::Lose(e) => Err(e),
        }
    }

    /// Several commands in one round trip, recorded as one request: one output each, or the
    /// transport's failure (the first command's that failed).
    fn run_all(&mut self, cmds: &[Cmd]) -> Result<Vec<Output>, TransportError> {
        self.alive()?;
        let shown: Vec<String> = cmds.iter().map(Cmd::display).collect();
        self.recorded.extend(shown.iter().cloned());
        self.log(Request::Batch(shown.clone()));
        let mut outs = Vec::with_capacity(cmds.len());
        for s in &shown {
            match self.host.answer(s) {
                Reply::Out(o) => outs.push(o),
                Reply::Fail(e) | Reply::Lose(e) => return Err(e),
            }
        }
        Ok(outs)
    }

    /// Runs the queued command (if any) on its own first, as the local transport does.
    async fn run_queued(&mut self) -> Result<(), TransportError> {
        if let Some(pre) = self.queued.take_pending() {
            let r = self.run(&pre, Vec::new());
            self.queued.settle_alone(r)?;
        }
        self.queued.blocked()
    }

    /// A command that may change the host: what was read ahead is forgotten first.
    pub(crate) async fn exec_input(
        &mut self,
        cmd: &Cmd,
        input: Payload<'_>,
    ) -> Result<Output, TransportError> {
        self.reads.may_run()?;
        self.reads.changed();
        self.run_queued().await?;
        let body = payload_bytes(input).await?;
        self.run(cmd, body)
    }

    /// A read-only command: what was read ahead stays.
    pub(crate) async fn run_read(&mut self, cmd: &Cmd) -> Result<Output, TransportError> {
        self.reads.may_run()?;
        self.run_queued().await?;
        self.run(cmd, Vec::new())
    }

    /// [`super::AnyTransport::read`] once nothing read ahead answered `set`: its commands, with
    /// the announced sets that can share the round trip (their outputs kept for later).
    pub(crate) async fn read(
        &mut self,
        set: &ReadSet,
    ) -> Result<Result<Vec<Output>, BatchError>, TransportError> {
        self.reads.may_run()?;
        self.run_queued().await?;
        let others = self.reads.batch_with(set);
        let mut cmds = set.commands();
        for o in &others {
            cmds.extend(o.commands());
        }
        let mut outs = self.run_all(&cmds)?;
        let rest = outs.split_off(set.len().min(outs.len()));
        for o in &mut outs {
            cmd::keep_ends(o, set.keep());
        }
        self.reads.keep_outputs(others, rest);
        Ok(Ok(outs))
    }

    /// [`super::AnyTransport::batch`]: each sub-command (passed through `dress`) answered on
    /// its own, in one recorded round trip.
    pub(crate) async fn batch(
        &mut self,
        batch: &Batch,
        dress: &(dyn Fn(Cmd) -> Cmd + Sync),
        read_only: bool,
    ) -> Result<Result<Vec<Output>, BatchError>, TransportError> {
        self.reads.may_run()?;
        if !read_only {
            self.reads.changed();
        }
        self.run_queued().await?;
        let cmds: Vec<Cmd> = batch.commands().iter().cloned().map(dress).collect();
        Ok(Ok(self.run_all(&cmds)?))
    }
}

/// The bytes a payload carries (a controller file read whole: tests send small ones).
async fn payload_bytes(p: Payload<'_>) -> Result<Vec<u8>, TransportError> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    p.reader()
        .await?
        .read_to_end(&mut buf)
        .await
        .map_err(|e| TransportError::Io(e.to_string()))?;
    Ok(buf)
}

impl Transport for ScriptedTransport {
    async fn exec(&mut self, cmd: &Cmd) -> Result<Output, TransportError> {
        self.reads.may_run()?;
        self.reads.changed();
        self.run_queued().await?;
        self.run(cmd, Vec::new())
    }

    /// Writes the in-memory file, unless a rule matching `put PATH` answers otherwise (a
    /// failure, or a lost host).
    async fn put(
        &mut self,
        data: Payload<'_>,
        path: &str,
        attrs: &FileAttrs,
    ) -> Result<Put, TransportError> {
        self.reads.may_run()?;
        self.reads.changed();
        self.run_queued().await?;
        self.alive()?;
        let data = payload_bytes(data).await?;
        self.log(Request::Put {
            path: path.to_string(),
            data: data.clone(),
            mode: attrs.mode,
        });
        if let Some(e) = self.scripted_failure(&format!("put {path}")) {
            return Err(e);
        }
        let mut s = self.host.lock();
        let mode = attrs.mode.unwrap_or(match s.files.get(path) {
            Some(Node::File { mode, .. }) => *mode,
            _ => 0o644,
        });
        s.files.insert(path.to_string(), Node::File { data, mode });
        Ok(Put::default())
    }

    /// Reads the in-memory file (following no link), unless a rule matching `get PATH`
    /// answers otherwise.
    async fn get(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>, TransportError> {
        self.reads.may_run()?;
        self.run_queued().await?;
        self.alive()?;
        self.log(Request::Get {
            path: path.to_string(),
        });
        if let Some(e) = self.scripted_failure(&format!("get {path}")) {
            return Err(e);
        }
        match self.host.lock().files.get(path) {
            Some(Node::File { data, .. }) if data.len() as u64 > max_bytes => {
                Err(TransportError::TooLarge {
                    path: path.to_string(),
                    max_bytes,
                })
            }
            Some(Node::File { data, .. }) => Ok(data.clone()),
            _ => Err(TransportError::Io(format!(
                "open {path}: No such file or directory (os error 2)"
            ))),
        }
    }

    fn name(&self) -> &str {
        &self.host.name
    }
}

impl ScriptedTransport {
    /// The failure a rule scripts for a transfer (`put PATH`, `get PATH`), if any; a rule
    /// answering with an output lets the transfer go on.
    fn scripted_failure(&self, what: &str) -> Option<TransportError> {
        let has_rule = self
            .host
            .lock()
            .rules
            .iter()
            .any(|r| r.left != Some(0) && (r.matches)(what));
        if !has_rule {
            return None;
        }
        match self.host.answer(what) {
            Reply::Out(_) => None,
            Reply::Fail(e) | Reply::Lose(e) => Some(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{AnyTransport, QueuedOutcome};

    fn tr(h: &Host) -> AnyTransport {
        AnyTransport::Scripted(h.connect().unwrap())
    }

    #[tokio::test]
    async fn answers_from_the_script_in_order_and_records_every_request() {
        let h = Host::new("h")
            .once("systemctl is-active", exit(3, "inactive"))
            .on("systemctl is-active", ok("active\n"));
        let mut t = tr(&h);
        let first = t.exec(&Cmd::raw("systemctl is-active app")).await.unwrap();
        let second = t.exec(&Cmd::raw("systemctl is-active app")).await.unwrap();
        assert_eq!((first.status, second.stdout), (3, b"active\n".to_vec()));
        let err = t.exec(&Cmd::raw("reboot")).await.unwrap_err();
        assert!(
            err.to_string().contains("no reply scripted for `reboot`"),
            "{err}"
        );
        assert_eq!(h.commands().len(), 3);
        assert_eq!(t.commands_run(), 3);
    }

    #[tokio::test]
    async fn files_live_in_memory_and_stat_helpers_see_them() {
        let h = Host::new("h").file("/etc/a", "old", 0o600);
        let mut t = tr(&h);
        let st = cmd::parse_stat(&t.exec(&cmd::stat_cmd("/etc/a")).await.unwrap()).unwrap();
        assert_eq!((st.kind, st.mode, st.size), (PathKind::File, 0o600, 3));
        t.put(Payload::Bytes(b"new!"), "/etc/a", &FileAttrs::default())
            .await
            .unwrap();
        assert_eq!(t.get("/etc/a", 100).await.unwrap(), b"new!");
        let (st, content) = cmd::parse_stat_content(
            &t.exec(&cmd::stat_content_cmd("/etc/a", None, 2))
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!((st.mode, content), (0o600, Some(b"ne".to_vec())));
        let absent = t.exec(&cmd::stat_cmd("/etc/b")).await.unwrap();
        assert_eq!(cmd::parse_stat(&absent).unwrap().kind, PathKind::Absent);
    }

    #[tokio::test]
    async fn a_queued_command_runs_alone_first_and_its_failure_blocks_the_next() {
        let h = Host::new("h").on("backup", exit(1, "disk full"));
        let mut t = tr(&h);
        t.run_before_next(Cmd::raw("backup"), None);
        assert!(matches!(
            t.exec(&Cmd::raw("change")).await,
            Err(TransportError::NotRun)
        ));
        assert!(matches!(t.take_queued(), Some(QueuedOutcome::Failed(o)) if o.status == 1));
        assert_eq!(h.commands(), ["backup"], "the change was never sent");
    }

    #[tokio::test]
    async fn a_lost_host_fails_what_follows_and_refuses_new_connections() {
        let h = Host::new("h").lost_at("deploy", TransportError::Unresponsive("gone".into()));
        let mut t = tr(&h);
        assert!(t.exec(&Cmd::raw("deploy")).await.is_err());
        assert!(t.is_lost());
        assert!(t.exec(&cmd::stat_cmd("/x")).await.is_err());
        assert!(h.connect().is_err());
    }
}
