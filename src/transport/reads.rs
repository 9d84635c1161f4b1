//! Reads run ahead: a host's read-only commands run before they are asked for, in a round trip
//! the host makes anyway, and kept until something could change what they saw.
//!
//! Owns [`ReadSet`] (one check's read-only commands, as a unit) and [`Reads`], each transport's
//! record of the sets the executor announced (they ride with the next command:
//! [`crate::transport::cmd::Cmd::then_reads`], or one batch when that command is a read itself)
//! and of the outputs they came back with. The rule that keeps it correct: an output is handed
//! out only for the very same set (same commands, same `become`, environment and timeout), at
//! most once, and only while nothing but reads has run on the host since it was taken. Every
//! other command or file transfer forgets every output first. It must not decide what to
//! announce (the executor does) nor build shell text (that is `cmd.rs`'s job).

use std::time::Duration;

use super::cmd::{Cmd, ReadsFrame, keep_ends};
use super::{Become, Output};

/// Above this much input (a file being written), the command travels alone: riding reads would
/// mean copying the input once more.
const RIDE_MAX_INPUT: u64 = 1 << 20;

/// A set whose outputs are bigger than this is not kept (it is read again in its turn): 500
/// hosts each keeping a large file's text until the next task would cost the controller much.
const KEEP_MAX_BYTES: usize = 256 << 10;

/// One check's read-only commands, asked for together; the same set asked again with nothing
/// but reads run on the host in between gives the same outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadSet {
    /// The commands without their `become` and timeout (those are the set's).
    cmds: Vec<Cmd>,
    /// Bytes kept from each end of each stream.
    keep: u64,
    become_: Option<Become>,
    timeout: Option<Duration>,
}

impl ReadSet {
    /// `cmds` (prepared with the same `become` and timeout, none with stdin), keeping `keep`
    /// bytes from each end of each stream. `None` when they cannot be one set: mixed settings,
    /// stdin, or `become_method: su` (which reads its password from stdin).
    pub fn new(cmds: &[Cmd], keep: u64) -> Option<ReadSet> {
        let first = cmds.first()?;
        let (become_, timeout) = (first.get_become().cloned(), first.get_timeout());
        if become_.as_ref().is_some_and(Become::reads_stdin) {
            return None;
        }
        let mut bare = Vec::with_capacity(cmds.len());
        for c in cmds {
            if c.get_become() != become_.as_ref() || c.get_timeout() != timeout {
                return None;
            }
            bare.push(c.bare()?);
        }
        Some(ReadSet {
            cmds: bare,
            keep,
            become_,
            timeout,
        })
    }

    /// The commands at `which` (in that order), with this set's settings.
    pub fn part(&self, which: &[usize]) -> ReadSet {
        ReadSet {
            cmds: which
                .iter()
                .filter_map(|&i| self.cmds.get(i).cloned())
                .collect(),
            ..self.clone()
        }
    }

    /// How many commands.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// Whether the set holds no command.
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    /// Bytes kept from each end of each stream.
    pub fn keep(&self) -> u64 {
        self.keep
    }

    /// The commands, each with the set's `become` and timeout again.
    pub fn commands(&self) -> Vec<Cmd> {
        self.cmds.iter().map(|c| self.dress(c.clone())).collect()
    }

    /// The bare commands (for a batch that carries the settings itself).
    pub fn bare(&self) -> &[Cmd] {
        &self.cmds
    }

    /// `cmd` with the set's `become` and timeout.
    pub fn dress(&self, mut cmd: Cmd) -> Cmd {
        if let Some(b) = &self.become_ {
            cmd = cmd.with_become(b.clone());
        }
        if let Some(t) = self.timeout {
            cmd = cmd.timeout(t);
        }
        cmd
    }

    /// Whether the set can run inside `cmd`'s round trip (same `become` and timeout).
    /// The set's `become`.
    pub fn become_(&self) -> Option<&Become> {
        self.become_.as_ref()
    }

    /// Whether every command is a typed file query ([`Cmd::file_query`]).
    pub fn is_file_queries(&self) -> bool {
        self.cmds.iter().all(|c| c.file_query().is_some())
    }

    fn runs_with(&self, cmd: &Cmd) -> bool {
        cmd.get_become() == self.become_.as_ref() && cmd.get_timeout() == self.timeout
    }

    /// Whether two sets can share one batch.
    pub fn same_settings(&self, other: &ReadSet) -> bool {
        self.become_ == other.become_ && self.timeout == other.timeout
    }
}

/// A transport's reads run ahead: what the executor announced, and the outputs kept.
#[derive(Clone, Debug, Default)]
pub struct Reads {
    announced: Vec<ReadSet>,
    cached: Vec<(ReadSet, Vec<Output>)>,
    /// Every set asked for since [`Reads::take_seen`] (the executor re-announces a check's sets
    /// to verify after a change).
    seen: Vec<ReadSet>,
    /// While recording, sets asked for are noted and nothing runs.
    recording: Option<Vec<ReadSet>>,
    hits: usize,
    /// Become users (`None`: the login user) whose file queries a file plane answers: sets of
    /// only such queries are not run ahead (the plane answers them without a program).
    served: Vec<Option<String>>,
}

/// A command with announced reads riding along ([`Reads::ride`]).
#[derive(Debug)]
pub struct Riding {
    /// The command to run instead, without stdin: send `prefix`, then the main command's input.
    pub cmd: Cmd,
    /// The first bytes on its stdin.
    pub prefix: Vec<u8>,
    frame: ReadsFrame,
    sets: Vec<ReadSet>,
}

impl Reads {
    /// Announces the sets the host will be asked for soon: they run with the next command,
    /// after it (replacing what was announced before).
    pub fn announce(&mut self, sets: Vec<ReadSet>) {
        let mut fresh: Vec<ReadSet> = Vec::with_capacity(sets.len());
        for s in sets {
            if !fresh.contains(&s) && !self.answered_by_plane(&s) {
                fresh.push(s);
            }
        }
        self.announced = fresh;
    }

    /// A file plane answers `user`'s file queries from now on ([`ReadSet::is_file_queries`]).
    pub fn serve(&mut self, user: Option<String>) {
        if !self.served.contains(&user) {
            self.served.push(user);
        }
    }

    /// Whether a file plane answers every command of `set`.
    fn answered_by_plane(&self, set: &ReadSet) -> bool {
        super::files::plane_user(set.become_.as_ref())
            .is_some_and(|user| self.served.contains(&user) && set.is_file_queries())
    }

    /// Nothing is kept and nothing announced.
    pub fn idle(&self) -> bool {
        self.cached.is_empty() && self.announced.is_empty()
    }

    /// Forgets every kept output and announcement (the host may have changed behind our back).
    pub fn forget(&mut self) {
        self.cached.clear();
        self.announced.clear();
    }

    /// The host may have changed (a file written by other means than a command): every kept
    /// output is forgotten; announced sets stay announced.
    pub fn changed(&mut self) {
        self.cached.clear();
    }

    /// Outputs handed out from what was kept so far.
    pub fn hits(&self) -> usize {
        self.hits
    }

    /// Starts noting the sets asked for instead of running anything.
    pub fn start_recording(&mut self) {
        self.recording = Some(Vec::new());
    }

    /// Stops recording; the sets asked for meanwhile.
    pub fn stop_recording(&mut self) -> Vec<ReadSet> {
        self.recording.take().unwrap_or_default()
    }

    /// `Err(NotRun)` while recording: nothing may run on the host then.
    pub fn may_run(&self) -> Result<(), super::TransportError> {
        match self.recording {
            Some(_) => Err(super::TransportError::NotRun),
            None => Ok(()),
        }
    }

    /// Notes `set` as asked for; `false` while recording (the caller runs nothing).
    pub fn note(&mut self, set: &ReadSet) -> bool {
        match &mut self.recording {
            Some(r) => {
                r.push(set.clone());
                false
            }
            None => {
                self.seen.push(set.clone());
                true
            }
        }
    }

    /// The sets asked for since the last call.
    pub fn take_seen(&mut self) -> Vec<ReadSet> {
        std::mem::take(&mut self.seen)
    }

    /// The kept outputs of `set`, handed out once.
    pub fn hit(&mut self, set: &ReadSet) -> Option<Vec<Output>> {
        let Some(at) = self.cached.iter().position(|(c, _)| c == set) else {
            tracing::debug!(kept = self.cached.len(), "read not read ahead");
            for (c, _) in &self.cached {
                tracing::trace!(kept = ?c, asked = ?set, "kept");
            }
            return None;
        };
        tracing::debug!("read handed out from the reads run ahead");
        self.hits += 1;
        Some(self.cached.swap_remove(at).1)
    }

    /// `set` is no longer to be read ahead (part of it was answered otherwise).
    pub fn unannounce(&mut self, set: &ReadSet) {
        self.announced.retain(|s| s != set);
    }

    /// Before `set` is read on its own: the announced sets that can share its batch (taken; the
    /// others stay announced).
    pub fn batch_with(&mut self, set: &ReadSet) -> Vec<ReadSet> {
        let (with, rest): (Vec<ReadSet>, Vec<ReadSet>) = std::mem::take(&mut self.announced)
            .into_iter()
            .filter(|s| s != set && !self.cached.iter().any(|(c, _)| c == s))
            .partition(|s| s.same_settings(set));
        self.announced = rest;
        with
    }

    /// Before `cmd` (which may change the host; `input` bytes on its stdin) runs: every kept
    /// output is forgotten, and the announced sets that can run in the same round trip are
    /// taken to ride with it.
    pub fn ride(&mut self, cmd: &Cmd, input: Option<u64>) -> Option<Riding> {
        self.cached.clear();
        if input.is_some_and(|len| len > RIDE_MAX_INPUT)
            || cmd.get_become().is_some_and(Become::reads_stdin)
        {
            return None;
        }
        let (sets, rest): (Vec<ReadSet>, Vec<ReadSet>) = std::mem::take(&mut self.announced)
            .into_iter()
            .partition(|s| s.runs_with(cmd));
        self.announced = rest;
        if sets.is_empty() {
            return None;
        }
        let reads: Vec<Cmd> = sets.iter().flat_map(|s| s.cmds.iter().cloned()).collect();
        let (riding, frame) = cmd.then_reads(&reads, input.is_some()).ok()?;
        Some(Riding {
            cmd: riding,
            prefix: frame.stdin_prefix(),
            frame,
            sets,
        })
    }

    /// The main command's output of a [`Riding`] command; the reads' outputs are kept.
    pub fn land(&mut self, riding: Riding, out: Output) -> Output {
        let (main, reads) = riding.frame.split(out);
        if let Some(outs) = reads {
            self.keep_outputs(riding.sets, outs);
        }
        main
    }

    /// Keeps `outs` (one per command of `sets`, in order) for later.
    pub fn keep_outputs(&mut self, sets: Vec<ReadSet>, outs: Vec<Output>) {
        let mut outs = outs.into_iter();
        for s in sets {
            let mine: Vec<Output> = outs
                .by_ref()
                .take(s.cmds.len())
                .map(|mut o| {
                    keep_ends(&mut o, s.keep);
                    o
                })
                .collect();
            let bytes: usize = mine.iter().map(|o| o.stdout.len() + o.stderr.len()).sum();
            if mine.len() == s.cmds.len() && bytes <= KEEP_MAX_BYTES {
                self.cached.retain(|(c, _)| *c != s);
                self.cached.push((s, mine));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{AnyTransport, LocalTransport, Transport};

    fn set(script: &'static str) -> ReadSet {
        ReadSet::new(&[Cmd::raw(script)], 1 << 20).unwrap()
    }

    fn local() -> AnyTransport {
        AnyTransport::Local(LocalTransport::new("t").with_recording())
    }

    #[tokio::test]
    async fn announced_reads_ride_after_the_next_command_and_are_handed_out_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f").display().to_string();
        let mut tr = local();
        let read = ReadSet::new(&[Cmd::raw("cat --").arg(f.clone())], 1 << 20).unwrap();
        tr.reads().announce(vec![read.clone()]);
        let out = tr
            .exec(&Cmd::raw("printf new >").arg(f.clone()).op("; echo main"))
            .await
            .unwrap();
        assert_eq!(out.stdout, b"main\n", "the main command's own output");
        assert_eq!(tr.commands_run(), 1);
        // Read after the command: it sees the change, and costs no command.
        let got = tr.read(&read).await.unwrap().unwrap();
        assert_eq!(got[0].stdout, b"new");
        assert_eq!(tr.commands_run(), 1);
        assert_eq!(tr.reads().hits(), 1);
        // Handed out once: asked again, it runs.
        let again = tr.read(&read).await.unwrap().unwrap();
        assert_eq!(again[0].stdout, b"new");
        assert_eq!(tr.commands_run(), 2);
    }

    #[tokio::test]
    async fn any_command_forgets_what_was_read_ahead() {
        let (a, b) = (set("echo a"), set("echo b"));
        let mut tr = local();
        tr.reads().announce(vec![b.clone()]);
        // A read that misses runs with the announced sets in one batch.
        assert_eq!(tr.read(&a).await.unwrap().unwrap()[0].stdout, b"a\n");
        assert_eq!(tr.commands_run(), 1);
        assert!(!tr.reads().idle());
        tr.exec(&Cmd::raw("true")).await.unwrap();
        assert!(tr.reads().idle(), "kept outputs are stale after a command");
        assert_eq!(tr.read(&b).await.unwrap().unwrap()[0].stdout, b"b\n");
        assert_eq!(tr.commands_run(), 3);
        // Another set (or the same commands under another become) is never handed out.
        tr.reads().announce(vec![set("echo c")]);
        tr.exec(&Cmd::raw("true")).await.unwrap();
        let other =
            ReadSet::new(&[Cmd::raw("echo c").with_become(Become::sudo("nobody"))], 1).unwrap();
        assert_ne!(other, set("echo c"));
        assert!(tr.reads().hit(&other).is_none());
    }

    #[tokio::test]
    async fn large_outputs_are_not_kept() {
        let big = set("head -c 300000 /dev/zero");
        let mut tr = local();
        tr.reads().announce(vec![big.clone()]);
        tr.exec(&Cmd::raw("true")).await.unwrap();
        assert!(tr.reads().idle(), "300 KB is not kept for later");
        assert_eq!(
            tr.read(&big).await.unwrap().unwrap()[0].stdout.len(),
            300_000
        );
    }

    #[tokio::test]
    async fn recording_runs_nothing_and_notes_the_sets_asked_for() {
        let mut tr = local();
        tr.reads().start_recording();
        assert!(matches!(
            tr.read(&set("echo a")).await,
            Err(crate::transport::TransportError::NotRun)
        ));
        assert!(tr.exec(&Cmd::raw("true")).await.is_err());
        assert_eq!(tr.reads().stop_recording(), vec![set("echo a")]);
        assert_eq!(tr.commands_run(), 0);
        // su reads its password from stdin: such reads are not a set.
        assert!(ReadSet::new(&[Cmd::raw("true").with_become(Become::su("x", None))], 1).is_none());
    }
}
