//! The command builder: the only place in rdeploy where a shell string is built.
//!
//! Modules describe what to run as [`Cmd`] values made of trusted shell syntax written by our own
//! code ([`Cmd::raw`], [`Cmd::op`]), arguments that are always POSIX-single-quoted ([`Cmd::arg`];
//! every value that came from a playbook goes through it) and secrets ([`Cmd::secret`], quoted in
//! the real line, `********` in [`Cmd::display`]), plus settings (`chdir`, environment, stdin,
//! `become`, timeout). This file owns quoting, the `sh -c` / `sudo` / `su` wrapping, secret
//! masking, batching of read-only checks into one round trip ([`Cmd::batch`]) and the small
//! library of file helpers modules build on ([`stat_cmd`], [`ln_sf_atomic`], ...). It must not run
//! anything, do I/O or know about a particular transport; a `format!` that makes a shell line
//! anywhere else in the crate is a bug.
//!
//! The longer scripts these commands carry are the host programs in `src/host/sh/` (loaded by
//! [`crate::host`]); this file puts their arguments in front of them and parses what they print.
//!
//! Target shell: plain POSIX `sh` (dash on Debian) with GNU coreutils; `tests/host_sh.rs` also
//! runs the host programs under `bash --posix` and BusyBox `sh` and with BusyBox's tools. Never a
//! login shell, no bash-isms. Where a helper relies on a GNU option the comment says so and names
//! the BusyBox/BSD difference.

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::files::{Asked, FileOp, FileQuery};
use super::{Output, Truncated};
use crate::host;

/// What is shown in place of a secret by [`Cmd::display`].
pub const MASK: &str = "********";

/// A command that cannot be turned into a shell line or argv. Never echoes the offending value
/// (it may be a secret); it names where the problem is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CmdError {
    /// A NUL byte cannot be passed in argv or in a shell string; we refuse rather than truncate.
    #[error("{what} contains a NUL byte, which cannot be passed to a command")]
    NulByte {
        /// Where: "argument 2", "a secret", "chdir", "environment variable FOO", ...
        what: String,
    },
    /// An environment variable name that is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error(
        "invalid environment variable name {0:?}: expected letters, digits and '_', not starting with a digit"
    )]
    InvalidEnvName(String),
    /// A `become` user that is empty, starts with `-` or contains whitespace/control characters.
    #[error("invalid become user {0:?}")]
    InvalidBecomeUser(String),
    /// A command with no parts at all.
    #[error("empty command")]
    Empty,
    /// A sub-command (in [`Cmd::batch`] or [`Cmd::and`] and friends) carries a setting that only
    /// the outermost command can have.
    #[error("sub-command {index} sets {setting}, which only the outermost command can carry")]
    NotNestable {
        /// Position of the sub-command (0-based).
        index: usize,
        /// "stdin", "become" or "timeout".
        setting: &'static str,
    },
}

/// POSIX-single-quote `s` exactly like Python's `shlex.quote` (so the `quote` template filter and
/// this builder agree): the empty string becomes `''`, a string made only of
/// `[A-Za-z0-9_@%+=:,./-]` is returned as is, anything else is wrapped in single quotes with each
/// `'` written as `'"'"'`.
///
/// Errors with [`CmdError::NulByte`] if `s` contains a NUL byte, which no shell word can carry.
pub fn quote(s: &str) -> Result<String, CmdError> {
    if s.contains('\0') {
        return Err(CmdError::NulByte {
            what: "the quoted string".into(),
        });
    }
    if s.is_empty() {
        return Ok("''".into());
    }
    if s.bytes().all(is_shlex_safe) {
        return Ok(s.to_string());
    }
    Ok(single_quote(s))
}

fn is_shlex_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b)
}

/// Always single-quote, even a "safe" word: an argument must never become an assignment
/// (`A=b` as first word), a keyword (`if`) or be tilde-expanded. NUL bytes are not checked here.
fn single_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\"'\"'");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// The line after a sudo password on stdin ([`Become::password`]).
const SUDO_MARK: &str = "rdeploy-become-password-ends-here";

/// Run first under `sudo -S`: reads past the marker, and past the password too when sudo did
/// not read it (no password needed). `read` takes one byte at a time from a pipe, as sudo does,
/// so nothing after the marker is consumed.
const SUDO_SKIP: &str = "IFS= read -r b_; [ \"$b_\" = rdeploy-become-password-ends-here ] || IFS= read -r b_; unset b_\n";

/// How a command switches user on the host. Recorded (as `sudo` or `su`) in backup manifests
/// and the journal, so that a restore switches user the way the backup did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BecomeMethod {
    /// `sudo -n -u USER -- sh -c SCRIPT`: non-interactive; fails fast ("a password is required")
    /// instead of hanging when sudo wants a password.
    #[default]
    Sudo,
    /// `su -s /bin/sh USER -c SCRIPT`, fed its password on stdin when one is given.
    Su,
}

/// Run the command as another user (Ansible's `become`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Become {
    /// Target user name.
    pub user: String,
    /// sudo or su.
    pub method: BecomeMethod,
    /// The become password (`ansible_become_password`, `-K`), written as the first line of
    /// stdin, never in a command line. su run by root does not ask, and the line then reaches
    /// the command's stdin instead; sudo is given it with `-S` and a marker line after it, which
    /// the command's shell reads past, so the command's stdin is the same whether sudo asked
    /// (a password) or not (`NOPASSWD`, cached).
    pub password: Option<String>,
}

impl Become {
    /// `sudo -n -u USER`.
    pub fn sudo(user: impl Into<String>) -> Become {
        Become {
            user: user.into(),
            method: BecomeMethod::Sudo,
            password: None,
        }
    }

    /// `su -s /bin/sh USER`, with an optional password fed on stdin.
    pub fn su(user: impl Into<String>, password: Option<String>) -> Become {
        Become {
            user: user.into(),
            method: BecomeMethod::Su,
            password,
        }
    }

    /// This become with a password (`None` keeps `sudo -n`: fail fast rather than hang).
    pub fn with_password(mut self, password: Option<String>) -> Become {
        self.password = password;
        self
    }

    /// Whether the wrapped command's stdin starts with lines of the become method's own (a
    /// password): such a command cannot join a batch of reads.
    pub fn reads_stdin(&self) -> bool {
        self.method == BecomeMethod::Su || self.password.is_some()
    }

    fn validated_user(&self) -> Result<&str, CmdError> {
        let u = self.user.as_str();
        if u.is_empty()
            || u.starts_with('-')
            || u.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(CmdError::InvalidBecomeUser(u.to_string()));
        }
        Ok(u)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    /// Trusted shell syntax from our own code, inserted verbatim.
    Raw(Cow<'static, str>),
    /// A value: always single-quoted.
    Arg(String),
    /// A value: single-quoted in the real line, masked in `display`.
    Secret(String),
    /// A whole command, run in a subshell `( ... )`.
    Sub(Box<Cmd>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct EnvVar {
    name: String,
    value: String,
    secret: bool,
}

/// A command to run on a host, built from parts so that quoting, masking and wrapping happen in
/// one place. Parts are joined with single spaces.
///
/// ```
/// use rdeploy::transport::cmd::Cmd;
/// let c = Cmd::raw("test -e").arg("/etc/my app.conf");
/// assert_eq!(c.to_shell().unwrap(), "test -e '/etc/my app.conf'");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cmd {
    parts: Vec<Part>,
    chdir: Option<String>,
    env: Vec<EnvVar>,
    stdin: Option<Vec<u8>>,
    become_: Option<Become>,
    timeout: Option<Duration>,
    /// A stat helper's path and whether it hashes it: a batch stats (and hashes) its helpers'
    /// paths with one process each ([`stat_tables`]).
    stats: Option<(String, bool)>,
    /// What this command asks, typed, when it is one of the file plane's queries (a stat
    /// helper): a transport with a file plane answers it without running the script.
    query: Option<(FileQuery, usize)>,
    /// What this command changes, typed, when it is only file operations (`mkdir -p`,
    /// `chmod`, `chown -h`, an atomic symlink, joined by `&&`): a transport with a file plane
    /// makes them with protocol requests instead of running the script.
    ops: Option<(Vec<FileOp>, usize)>,
    /// The long script this command ends with, which a batch of several such commands defines
    /// once as a shell function ([`Cmd::with_shared`]).
    shared: Option<Shared>,
}

/// A script several commands of a batch end with (the stat helper): the batch defines it once
/// as the function `name` and runs each command's `call` (its own head, then `name "$@"`),
/// instead of carrying the whole script once per command.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shared {
    name: &'static str,
    body: &'static str,
    call: Box<Cmd>,
    /// The command's parts when it was made: anything added since (or a `chdir`/`env`) and the
    /// call no longer says the same, so the whole script is used.
    parts: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The line actually run: every check applies, secrets are in it.
    Real,
    /// For humans: never fails, secrets masked.
    Display,
}

impl Cmd {
    /// Start a command with trusted shell syntax written by our own code (a program name, an
    /// operator, a fixed script). `'static` on purpose: a value computed at run time (anything
    /// from a playbook) cannot end up here by accident; use [`Cmd::arg`] for those.
    pub fn raw(syntax: &'static str) -> Cmd {
        Cmd {
            parts: vec![Part::Raw(Cow::Borrowed(syntax))],
            ..Cmd::default()
        }
    }

    /// A command whose every word is a quoted value: `argv[0]` is looked up in `PATH`, no shell
    /// syntax is interpreted (the `command` module).
    pub fn argv<I, S>(words: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd::default().args(words)
    }

    /// A shell script written by the playbook's author and run as written (the `shell` module,
    /// probe `command:` lines). This is the one sanctioned way for playbook text to be shell
    /// syntax; nothing else may use it.
    pub fn user_script(script: impl Into<String>) -> Cmd {
        Cmd {
            parts: vec![Part::Raw(Cow::Owned(script.into()))],
            ..Cmd::default()
        }
    }

    /// Append trusted shell syntax (an operator such as `&&` or `|`, a redirection, a keyword).
    pub fn op(mut self, syntax: &'static str) -> Cmd {
        self.parts.push(Part::Raw(Cow::Borrowed(syntax)));
        self
    }

    /// Append a value, always single-quoted.
    pub fn arg(mut self, value: impl Into<String>) -> Cmd {
        self.parts.push(Part::Arg(value.into()));
        self
    }

    /// Append several values, each single-quoted.
    pub fn args<I, S>(mut self, values: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.parts
            .extend(values.into_iter().map(|v| Part::Arg(v.into())));
        self
    }

    /// Append a secret: quoted in the real line, shown as `********` by [`Cmd::display`]. Prefer
    /// [`Cmd::stdin`] for secrets: argv is visible to other users of the host through `ps`.
    pub fn secret(mut self, value: impl Into<String>) -> Cmd {
        self.parts.push(Part::Secret(value.into()));
        self
    }

    /// `self && other` (`other` runs in a subshell so its `chdir`/`env` stay its own).
    pub fn and(self, other: Cmd) -> Cmd {
        let ops = self
            .file_ops()
            .zip(other.file_ops())
            .map(|(a, b)| [a, b].concat());
        let mut joined = self.op("&&").sub(other);
        if let Some(ops) = ops {
            joined.ops = Some((ops, joined.parts.len()));
        }
        joined
    }

    /// `self || other`.
    pub fn or(self, other: Cmd) -> Cmd {
        self.op("||").sub(other)
    }

    /// `self; other`.
    pub fn then(self, other: Cmd) -> Cmd {
        self.op(";").sub(other)
    }

    /// `self | other`.
    pub fn pipe(self, other: Cmd) -> Cmd {
        self.op("|").sub(other)
    }

    /// `! self`: inverts the exit status.
    pub fn negate(self) -> Cmd {
        Cmd::raw("!").sub(self)
    }

    fn sub(mut self, other: Cmd) -> Cmd {
        self.parts.push(Part::Sub(Box::new(other)));
        self
    }

    /// Run in this directory (`cd -- DIR || exit 1` before the command).
    pub fn chdir(mut self, dir: impl Into<String>) -> Cmd {
        self.chdir = Some(dir.into());
        self
    }

    /// Export an environment variable for the command (the name is validated when the line is
    /// built: `[A-Za-z_][A-Za-z0-9_]*`).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.push(EnvVar {
            name: name.into(),
            value: value.into(),
            secret: false,
        });
        self
    }

    /// Export an environment variable whose value is masked in [`Cmd::display`].
    pub fn env_secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.push(EnvVar {
            name: name.into(),
            value: value.into(),
            secret: true,
        });
        self
    }

    /// Bytes written to the command's stdin (then closed). The way to hand over secrets and file
    /// contents: never argv.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(data.into());
        self
    }

    /// Run as another user.
    pub fn with_become(mut self, become_: Become) -> Cmd {
        self.become_ = Some(become_);
        self
    }

    /// Wall-clock limit for this command; the transport kills the command's whole process group
    /// when it is exceeded.
    pub fn timeout(mut self, after: Duration) -> Cmd {
        self.timeout = Some(after);
        self
    }

    /// The per-command timeout, if any.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The `become` setting, if any.
    pub fn get_become(&self) -> Option<&Become> {
        self.become_.as_ref()
    }

    /// What the transport writes to the command's stdin: the `su` password line (if any)
    /// followed by [`Cmd::stdin`]'s bytes. `None` means stdin is `/dev/null`.
    pub fn stdin_bytes(&self) -> Option<Vec<u8>> {
        let become_ = self.become_.as_ref();
        let password = become_.and_then(|b| b.password.as_deref());
        match (password, &self.stdin) {
            (None, None) => None,
            (None, Some(data)) => Some(data.clone()),
            (Some(pw), data) => {
                let mut bytes = Vec::with_capacity(pw.len() + SUDO_MARK.len() + 2);
                bytes.extend_from_slice(pw.as_bytes());
                bytes.push(b'\n');
                if become_.is_some_and(|b| b.method == BecomeMethod::Sudo) {
                    bytes.extend_from_slice(SUDO_MARK.as_bytes());
                    bytes.push(b'\n');
                }
                if let Some(data) = data {
                    bytes.extend_from_slice(data);
                }
                Some(bytes)
            }
        }
    }

    /// The command without its `become` and timeout (to nest it in another that carries them);
    /// `None` when it has stdin of its own.
    pub fn bare(&self) -> Option<Cmd> {
        if self.stdin.is_some() {
            return None;
        }
        let mut c = self.clone();
        c.become_ = None;
        c.timeout = None;
        Some(c)
    }

    /// The full script run by `sh -c`: `cd`, environment exports, then the command.
    pub fn to_shell(&self) -> Result<String, CmdError> {
        let mut out = String::new();
        self.render(Mode::Real, &mut out)?;
        Ok(out)
    }

    /// The script with secrets masked, for logs, errors and the journal. Never fails (a NUL byte
    /// is shown as `\0`); prefixed by `[become USER via sudo|su] ` when the command switches user.
    /// Stdin contents are never shown.
    pub fn display(&self) -> String {
        let mut out = String::new();
        if let Some(b) = &self.become_ {
            let how = match b.method {
                BecomeMethod::Sudo => "sudo",
                BecomeMethod::Su => "su",
            };
            out.push_str("[become ");
            out.push_str(&b.user);
            out.push_str(" via ");
            out.push_str(how);
            out.push_str("] ");
        }
        // Display mode never returns an error.
        let _ = self.render(Mode::Display, &mut out);
        out
    }

    /// What a person recognises of this command in an error message: the playbook's own
    /// script (`shell`, `raw`, a probe's `command:`), else the command when it is one short
    /// line (a `command` argv, one program); `None` for rdeploy's own step scripts, which
    /// only `-vvv` shows. Secrets masked.
    pub fn brief(&self) -> Option<String> {
        fn user_part(c: &Cmd) -> Option<&str> {
            c.parts.iter().find_map(|p| match p {
                Part::Raw(Cow::Owned(s)) => Some(s.as_str()),
                Part::Sub(c) => user_part(c),
                _ => None,
            })
        }
        if let Some(s) = user_part(self) {
            return Some(s.trim().to_string());
        }
        let full = self.display();
        (full.chars().count() <= 200 && !full.contains('\n')).then_some(full)
    }

    /// The argv actually executed: `["sh", "-c", script]`; with become,
    /// `["sudo", "-n", "-u", USER, "--", "sh", "-c", script]` or
    /// `["su", "-s", "/bin/sh", USER, "-c", script]`. Always `sh -c`, never a login shell.
    pub fn wrap(&self) -> Result<Vec<String>, CmdError> {
        let script = self.to_shell()?;
        let mut argv: Vec<String> = Vec::with_capacity(8);
        match &self.become_ {
            None => {}
            Some(b) => {
                let user = b.validated_user()?.to_string();
                match b.method {
                    BecomeMethod::Sudo if b.password.is_some() => {
                        // The password is read from stdin (`-S`, no prompt text); the marker line
                        // after it tells the command's shell where its own stdin starts.
                        argv.extend(["sudo", "-S", "-p", "", "-u"].map(String::from));
                        argv.push(user);
                        argv.extend(["--", "sh", "-c"].map(String::from));
                        argv.push(format!("{SUDO_SKIP}{script}"));
                        return Ok(argv);
                    }
                    BecomeMethod::Sudo => {
                        argv.extend(["sudo", "-n", "-u"].map(String::from));
                        argv.push(user);
                        argv.push("--".into());
                    }
                    BecomeMethod::Su => {
                        argv.extend(["su", "-s", "/bin/sh"].map(String::from));
                        argv.push(user);
                        argv.push("-c".into());
                        argv.push(script);
                        return Ok(argv);
                    }
                }
            }
        }
        argv.extend(["sh", "-c"].map(String::from));
        argv.push(script);
        Ok(argv)
    }

    /// [`Cmd::wrap`] as one line for transports that take a command string (SSH `exec`, run by
    /// the remote user's shell): each word quoted with [`quote`].
    pub fn wrap_line(&self) -> Result<String, CmdError> {
        let argv = self.wrap()?;
        let mut words = Vec::with_capacity(argv.len());
        for w in &argv {
            words.push(quote(w)?);
        }
        Ok(words.join(" "))
    }

    fn render(&self, mode: Mode, out: &mut String) -> Result<(), CmdError> {
        if self.parts.is_empty() && mode == Mode::Real {
            return Err(CmdError::Empty);
        }
        if let Some(dir) = &self.chdir {
            out.push_str("cd -- ");
            push_quoted(out, dir, mode, || "chdir".into())?;
            out.push_str(" || exit 1\n");
        }
        for var in &self.env {
            if mode == Mode::Real && !valid_env_name(&var.name) {
                return Err(CmdError::InvalidEnvName(var.name.clone()));
            }
            out.push_str("export ");
            out.push_str(&var.name);
            out.push('=');
            if var.secret && mode == Mode::Display {
                out.push_str(MASK);
            } else {
                push_quoted(out, &var.value, mode, || {
                    format!("environment variable {}", var.name)
                })?;
            }
            out.push('\n');
        }
        let mut arg_no = 0usize;
        let mut sub_no = 0usize;
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            match part {
                Part::Raw(s) => {
                    if s.contains('\0') && mode == Mode::Real {
                        return Err(CmdError::NulByte {
                            what: "the script".into(),
                        });
                    }
                    out.push_str(s);
                }
                Part::Arg(v) => {
                    arg_no += 1;
                    push_quoted(out, v, mode, || format!("argument {arg_no}"))?;
                }
                Part::Secret(v) => {
                    if mode == Mode::Display {
                        out.push_str(MASK);
                    } else {
                        push_quoted(out, v, mode, || "a secret".into())?;
                    }
                }
                Part::Sub(c) => {
                    if mode == Mode::Real {
                        c.check_nestable(sub_no)?;
                    }
                    sub_no += 1;
                    out.push_str("( ");
                    c.render(mode, out)?;
                    out.push_str("\n)");
                }
            }
        }
        Ok(())
    }

    fn check_nestable(&self, index: usize) -> Result<(), CmdError> {
        let setting = if self.stdin.is_some() {
            "stdin"
        } else if self.become_.is_some() {
            "become"
        } else if self.timeout.is_some() {
            "timeout"
        } else {
            return Ok(());
        };
        Err(CmdError::NotNestable { index, setting })
    }
}

fn push_quoted(
    out: &mut String,
    value: &str,
    mode: Mode,
    what: impl FnOnce() -> String,
) -> Result<(), CmdError> {
    if value.contains('\0') {
        if mode == Mode::Real {
            return Err(CmdError::NulByte { what: what() });
        }
        out.push_str(&single_quote(&value.replace('\0', "\\0")));
        return Ok(());
    }
    out.push_str(&single_quote(value));
    Ok(())
}

fn valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A random-enough token (128 bits) for batch delimiters and temporary names. Not a secret: the
/// batch framing is length-prefixed, the nonce only guards against desynchronisation.
/// A fresh name part for a temporary file next to another (the file plane's writes).
pub(crate) fn temp_nonce() -> String {
    nonce()
}

fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_usize(i);
        h.write_u32(std::process::id());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        h.write_u128(now);
        *w = h.finish();
    }
    format!("{:016x}{:016x}", words[0], words[1])
}

// ---------------------------------------------------------------------------------------------
// Batching
// ---------------------------------------------------------------------------------------------

/// Default number of bytes kept from the start and from the end of each sub-command's stdout and
/// stderr in a batch (so at most 64 KiB per stream): batches are for small read-only checks.
pub const BATCH_KEEP_DEFAULT: u64 = 32 * 1024;

/// Several read-only commands run in one round trip; see [`Cmd::batch`].
#[derive(Clone, Debug)]
pub struct Batch {
    /// The command to execute (set a timeout or `become` on it as for any command).
    pub cmd: Cmd,
    nonce: String,
    count: usize,
    keep: u64,
    /// The sub-commands' scripts, for [`Batch::capped`].
    scripts: Vec<String>,
    /// The sub-commands themselves ([`Batch::commands`]).
    cmds: Vec<Cmd>,
    /// Which runner `cmd` is.
    capped: bool,
}

/// A batch's output could not be split back into its sub-commands' outputs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The transport dropped bytes from the middle of the batch's stdout or stderr: run
    /// [`Batch::capped`] instead (it cuts each sub-command's streams on the host), or raise the
    /// transport's output limits.
    #[error("batch output was truncated by the transport ({dropped} bytes dropped)")]
    Truncated {
        /// Bytes the transport dropped.
        dropped: u64,
    },
    /// The runner stopped early or its output is not what it prints.
    #[error(
        "batch output incomplete after {parsed} of {expected} commands ({reason}); exit status {status}; stderr: {stderr}"
    )]
    Incomplete {
        /// Sub-commands successfully parsed.
        parsed: usize,
        /// Sub-commands in the batch.
        expected: usize,
        /// What was wrong.
        reason: String,
        /// Exit status of the whole batch.
        status: i32,
        /// Start of the batch's own stderr.
        stderr: String,
    },
}

impl Cmd {
    /// One script that runs each of `cmds` in order and reports each one's exit status, stdout
    /// and stderr separately (nonce-framed; see `src/host/sh/batch_runner.sh`). Meant for read-only checks:
    /// sub-commands get `/dev/null` as stdin and may not carry stdin, become or a timeout of
    /// their own (set those on [`Batch::cmd`], which carries the nonce as its stdin). Each
    /// stream keeps at most [`BATCH_KEEP_DEFAULT`] bytes from its start and from its end.
    pub fn batch(cmds: &[Cmd]) -> Result<Batch, CmdError> {
        Cmd::batch_keeping(cmds, BATCH_KEEP_DEFAULT)
    }

    /// [`Cmd::batch`] keeping `keep` bytes from the start and `keep` from the end of each
    /// sub-command's stream.
    pub fn batch_keeping(cmds: &[Cmd], keep: u64) -> Result<Batch, CmdError> {
        let nonce = nonce();
        let cmd = run_each(Cmd::raw(host::BATCH_RUNNER).op(host::BATCH_RUN_FN), cmds)?
            .stdin(format!("{nonce}\n").into_bytes());
        // The capped runner (no functions, no tables there) gets each whole script.
        let scripts = cmds.iter().map(Cmd::to_shell).collect::<Result<_, _>>()?;
        Ok(Batch {
            cmd,
            nonce,
            count: cmds.len(),
            keep,
            scripts,
            cmds: cmds.to_vec(),
            capped: false,
        })
    }
}

impl Batch {
    /// Number of sub-commands.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the batch has no sub-commands.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The same sub-commands through the capped runner (temporary files on the host, each
    /// stream cut to its first and last `keep` bytes there): for when [`Batch::parse`] says
    /// [`BatchError::Truncated`]. A new nonce; the same outputs.
    pub fn capped(&self) -> Batch {
        let nonce = nonce();
        let mut cmd = Cmd::raw("set --")
            .arg(nonce.clone())
            .arg(self.keep.to_string())
            .op(host::BATCH_CAPPED);
        for (i, script) in self.scripts.iter().enumerate() {
            cmd = cmd.op("\nrun_").arg(i.to_string()).arg(script.clone());
        }
        cmd = cmd
            .op("\nprintf 'RDEPLOY-BATCH-END %s %s\\n' \"$n_\"")
            .arg(self.count.to_string());
        Batch {
            cmd,
            nonce,
            count: self.count,
            keep: self.keep,
            scripts: self.scripts.clone(),
            cmds: self.cmds.clone(),
            capped: true,
        }
    }

    /// The sub-commands, as given.
    pub fn commands(&self) -> &[Cmd] {
        &self.cmds
    }

    /// Split the batch's output back into one [`Output`] per sub-command, in order, each stream
    /// cut to its first and last `keep` bytes (the cut counted in `truncated`). Text before the
    /// start (e.g. from a chatty shell start-up file) is skipped.
    pub fn parse(&self, out: &Output) -> Result<Vec<Output>, BatchError> {
        if self.capped {
            return self.parse_capped(out);
        }
        let dropped = out.truncated.stdout + out.truncated.stderr;
        if dropped > 0 {
            return Err(BatchError::Truncated { dropped });
        }
        let incomplete = |parsed: usize, reason: String| self.incomplete(out, parsed, reason);
        let start = format!("RDEPLOY-BATCH {} start\n", self.nonce);
        let mark = format!("\nRDEPLOY-BATCH {} ", self.nonce);
        let (data, errs) = (out.stdout.as_slice(), out.stderr.as_slice());
        let (Some(mut pos), Some(mut epos)) =
            (find(data, start.as_bytes()), find(errs, start.as_bytes()))
        else {
            return Err(incomplete(0, "no start line".into()));
        };
        pos += start.len();
        epos += start.len();
        let mut results = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let at = find_from(data, mark.as_bytes(), pos)
                .ok_or_else(|| incomplete(i, format!("no end of stdout {i}")))?;
            let (line, next) = header_line(data, at + mark.len())
                .ok_or_else(|| incomplete(i, format!("no status {i}")))?;
            let status = match line.split_once(' ') {
                Some((idx, st)) if idx == i.to_string() => st.parse::<i32>().ok(),
                _ => None,
            }
            .ok_or_else(|| incomplete(i, format!("bad status line {i}: {line:?}")))?;
            let eat = find_from(errs, mark.as_bytes(), epos)
                .ok_or_else(|| incomplete(i, format!("no end of stderr {i}")))?;
            let (eline, enext) = header_line(errs, eat + mark.len())
                .ok_or_else(|| incomplete(i, format!("no end of stderr {i}")))?;
            if eline != i.to_string() {
                return Err(incomplete(i, format!("bad stderr end {i}: {eline:?}")));
            }
            let mut o = Output {
                status,
                stdout: data[pos..at].to_vec(),
                stderr: errs[epos..eat].to_vec(),
                truncated: Truncated::default(),
            };
            keep_ends(&mut o, self.keep);
            results.push(o);
            pos = next;
            epos = enext;
        }
        self.end_marker(data, pos)
            .map_err(|reason| incomplete(self.count, reason))?;
        Ok(results)
    }

    /// The error for output that stopped making sense after `parsed` sub-commands.
    fn incomplete(&self, out: &Output, parsed: usize, reason: String) -> BatchError {
        BatchError::Incomplete {
            parsed,
            expected: self.count,
            reason,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr[..out.stderr.len().min(500)]).into_owned(),
        }
    }

    /// The batch's end marker must come at `pos` (else why not); output after it is ignored.
    fn end_marker(&self, data: &[u8], pos: usize) -> Result<(), String> {
        let end = format!("RDEPLOY-BATCH-END {} {}", self.nonce, self.count);
        match header_line(data, pos) {
            Some((line, rest)) if line == end => {
                if rest < data.len() {
                    tracing::debug!(
                        extra = data.len() - rest,
                        "batch: ignoring output after the end marker"
                    );
                }
                Ok(())
            }
            _ => Err("no end marker".into()),
        }
    }

    /// [`Batch::parse`] for the capped runner's length-prefixed output.
    fn parse_capped(&self, out: &Output) -> Result<Vec<Output>, BatchError> {
        if out.truncated.stdout > 0 {
            return Err(BatchError::Truncated {
                dropped: out.truncated.stdout,
            });
        }
        let data = out.stdout.as_slice();
        let mut results = Vec::with_capacity(self.count);
        let incomplete = |parsed: usize, reason: String| self.incomplete(out, parsed, reason);
        let first = if self.count == 0 {
            format!("RDEPLOY-BATCH-END {} ", self.nonce)
        } else {
            format!("RDEPLOY-BATCH {} 0 ", self.nonce)
        };
        let Some(mut pos) = find(data, first.as_bytes()) else {
            return Err(incomplete(0, "no header found".into()));
        };
        if pos > 0 {
            tracing::debug!(
                skipped = pos,
                "batch: skipping output before the first header"
            );
        }
        for i in 0..self.count {
            let (line, next) =
                header_line(data, pos).ok_or_else(|| incomplete(i, format!("no header {i}")))?;
            let fields: Vec<&str> = line.split(' ').collect();
            let nums = match fields.as_slice() {
                ["RDEPLOY-BATCH", n, idx, rest @ ..]
                    if *n == self.nonce && *idx == i.to_string() && rest.len() == 5 =>
                {
                    rest.iter()
                        .map(|f| f.parse::<u64>())
                        .collect::<Result<Vec<u64>, _>>()
                        .map_err(|_| incomplete(i, format!("bad header {i}: {line:?}")))?
                }
                _ => return Err(incomplete(i, format!("bad header {i}: {line:?}"))),
            };
            let [status, out_len, out_dropped, err_len, err_dropped] = nums[..] else {
                return Err(incomplete(i, format!("bad header {i}")));
            };
            let status = i32::try_from(status)
                .map_err(|_| incomplete(i, format!("bad status in header {i}")))?;
            let out_end = usize::try_from(out_len)
                .ok()
                .and_then(|l| next.checked_add(l))
                .filter(|&e| e <= data.len())
                .ok_or_else(|| incomplete(i, format!("stdout of command {i} is cut short")))?;
            let err_end = usize::try_from(err_len)
                .ok()
                .and_then(|l| out_end.checked_add(l))
                .filter(|&e| e <= data.len())
                .ok_or_else(|| incomplete(i, format!("stderr of command {i} is cut short")))?;
            results.push(Output {
                status,
                stdout: data[next..out_end].to_vec(),
                stderr: data[out_end..err_end].to_vec(),
                truncated: Truncated {
                    stdout: out_dropped,
                    stderr: err_dropped,
                },
            });
            pos = err_end;
        }
        self.end_marker(data, pos)
            .map_err(|reason| incomplete(self.count, reason))?;
        Ok(results)
    }
}

/// `out` with each stream cut to its first and last `keep` bytes (the cut added to
/// `truncated`), as the capped runner cuts them on the host.
pub fn keep_ends(out: &mut Output, keep: u64) {
    let keep = usize::try_from(keep).unwrap_or(usize::MAX);
    let cut = |data: &mut Vec<u8>, dropped: &mut u64| {
        if data.len() > keep.saturating_mul(2) {
            let extra = data.len() - 2 * keep;
            data.drain(keep..keep + extra);
            *dropped += extra as u64;
        }
    };
    cut(&mut out.stdout, &mut out.truncated.stdout);
    cut(&mut out.stderr, &mut out.truncated.stderr);
}

fn find_from(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    find(haystack.get(from..)?, needle).map(|i| i + from)
}

/// The line starting at `pos` (without its `\n`) and the position after it; headers are short.
fn header_line(data: &[u8], pos: usize) -> Option<(&str, usize)> {
    let rest = data.get(pos..)?;
    let window = &rest[..rest.len().min(256)];
    let nl = window.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&window[..nl]).ok()?;
    Some((line, pos + nl + 1))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Read-only commands run right after another, in the same round trip
// ---------------------------------------------------------------------------------------------

/// How to split the output of a command built by [`Cmd::then_reads`].
#[derive(Clone, Debug)]
pub struct ReadsFrame {
    nonce: String,
    count: usize,
}

impl Cmd {
    /// `self`, then the read-only `reads`, in ONE command (one round trip): `self` runs first in a
    /// subshell with its own `chdir` and environment (and the rest of stdin when `main_stdin`,
    /// else /dev/null), then each read as in a batch ([`Cmd::batch`]), whatever `self`'s exit
    /// status; the command exits with `self`'s status. The result carries `self`'s `become` and
    /// timeout, and NO stdin: send [`ReadsFrame::stdin_prefix`] and then `self`'s input. The reads
    /// may carry neither stdin, become nor a timeout (run them with the same ones as `self`).
    /// Split the output with [`ReadsFrame::split`].
    pub fn then_reads(
        &self,
        reads: &[Cmd],
        main_stdin: bool,
    ) -> Result<(Cmd, ReadsFrame), CmdError> {
        let mut main = self.clone();
        let (become_, timeout) = (main.become_.take(), main.timeout.take());
        main.stdin = None;
        let mut cmd = Cmd::raw(host::READS_HEAD).op(host::BATCH_RUN_FN).op("\n");
        cmd.parts.push(Part::Sub(Box::new(main)));
        if !main_stdin {
            cmd = cmd.op("< /dev/null");
        }
        cmd = run_each(cmd.op(host::READS_MID), reads)?.op("\nexit \"$m_\"");
        cmd.become_ = become_;
        cmd.timeout = timeout;
        Ok((
            cmd,
            ReadsFrame {
                nonce: nonce(),
                count: reads.len(),
            },
        ))
    }
}

impl ReadsFrame {
    /// What goes on stdin before the main command's own input.
    pub fn stdin_prefix(&self) -> Vec<u8> {
        format!("{}\n", self.nonce).into_bytes()
    }

    /// The main command's output, and the reads' outputs (each stream whole) when every one of
    /// them came back intact. With no marker (the shell stopped before it: `sudo` refused, the
    /// command was killed) the output is the main command's, as it is.
    pub fn split(&self, out: Output) -> (Output, Option<Vec<Output>>) {
        let mark = format!("\nRDEPLOY-POST {} ", self.nonce);
        let emark = format!("\nRDEPLOY-POST {}\n", self.nonce);
        let Some(at) = find(&out.stdout, mark.as_bytes()) else {
            return (out, None);
        };
        let Some((status, next)) = header_line(&out.stdout, at + mark.len())
            .and_then(|(line, next)| Some((line.parse::<i32>().ok()?, next)))
        else {
            return (out, None);
        };
        let (main_err, rest_err) = match find(&out.stderr, emark.as_bytes()) {
            Some(e) => (
                out.stderr[..e].to_vec(),
                out.stderr[e + emark.len()..].to_vec(),
            ),
            None => (out.stderr.clone(), Vec::new()),
        };
        let main = Output {
            status,
            stdout: out.stdout[..at].to_vec(),
            stderr: main_err,
            truncated: out.truncated,
        };
        if out.truncated != Truncated::default() {
            // Where the transport cut is unknown: the reads are not trusted.
            return (main, None);
        }
        let rest = Output {
            status: out.status,
            stdout: out.stdout[next..].to_vec(),
            stderr: rest_err,
            truncated: Truncated::default(),
        };
        let batch = Batch {
            cmd: Cmd::default(),
            nonce: self.nonce.clone(),
            count: self.count,
            keep: u64::MAX,
            scripts: Vec::new(),
            cmds: Vec::new(),
            capped: false,
        };
        (main, batch.parse(&rest).ok())
    }
}

// ---------------------------------------------------------------------------------------------
// A command run right before another, in the same round trip
// ---------------------------------------------------------------------------------------------

/// How to split the output of a command built by [`Cmd::after`].
#[derive(Clone, Debug)]
pub struct Preamble {
    nonce: String,
}

/// What [`Preamble::split`] found.
#[derive(Debug)]
pub enum PreambleSplit {
    /// The preamble exited 0 and the main command ran: both outputs.
    Ran {
        /// The preamble's output.
        pre: Output,
        /// The main command's output.
        main: Output,
    },
    /// The preamble failed (its output, non-zero status): the main command did not run.
    PreFailed(Output),
    /// No marker: the shell did not get that far (the output is the whole command's).
    NoMarker,
}

impl Cmd {
    /// `pre` then `self` in ONE command (one round trip): `pre` runs first, in a subshell with
    /// stdin from /dev/null; `self` runs only if `pre` exited 0, with its own stdin, `chdir` and
    /// environment. The result carries `self`'s `become` and timeout; `pre` may carry neither
    /// become nor stdin (run it separately when its `become` differs). Split the output with
    /// [`Preamble::split`]. `pre`'s own output must not hold the marker line (it cannot, short of
    /// printing the 128-bit nonce built here): it is meant for the executor's backup script.
    pub fn after(&self, pre: &Cmd) -> Result<(Cmd, Preamble), CmdError> {
        if pre.stdin.is_some() {
            return Err(CmdError::NotNestable {
                index: 0,
                setting: "stdin",
            });
        }
        let nonce = nonce();
        let mut main = self.clone();
        let (stdin, become_, timeout) =
            (main.stdin.take(), main.become_.take(), main.timeout.take());
        let mut pre = pre.clone();
        pre.become_ = None;
        pre.timeout = None;
        let mut cmd = Cmd::raw("set --")
            .arg(nonce.clone())
            .arg(pre.to_shell()?)
            .op(host::PREAMBLE);
        cmd.parts.push(Part::Raw(Cow::Owned(main.to_shell()?)));
        cmd.stdin = stdin;
        cmd.become_ = become_;
        cmd.timeout = timeout;
        Ok((cmd, Preamble { nonce }))
    }
}

impl Preamble {
    /// Splits the combined command's output at the preamble's markers.
    pub fn split(&self, out: Output) -> PreambleSplit {
        let mark = format!("\nRDEPLOY-PRE {} ", self.nonce);
        let emark = format!("\nRDEPLOY-PRE {}\n", self.nonce);
        let Some(at) = find(&out.stdout, mark.as_bytes()) else {
            return PreambleSplit::NoMarker;
        };
        let Some((line, next)) = header_line(&out.stdout, at + mark.len()) else {
            return PreambleSplit::NoMarker;
        };
        let Ok(status) = line.parse::<i32>() else {
            return PreambleSplit::NoMarker;
        };
        let (pre_err, main_err) = match find(&out.stderr, emark.as_bytes()) {
            Some(e) => (
                out.stderr[..e].to_vec(),
                out.stderr[e + emark.len()..].to_vec(),
            ),
            None => (Vec::new(), out.stderr.clone()),
        };
        let pre = Output {
            status,
            stdout: out.stdout[..at].to_vec(),
            stderr: pre_err,
            truncated: Truncated::default(),
        };
        if status != 0 {
            return PreambleSplit::PreFailed(pre);
        }
        let main = Output {
            status: out.status,
            stdout: out.stdout[next..].to_vec(),
            stderr: main_err,
            truncated: out.truncated,
        };
        PreambleSplit::Ran { pre, main }
    }
}

// ---------------------------------------------------------------------------------------------
// Helper library for modules
// ---------------------------------------------------------------------------------------------

/// What kind of thing is at a path (`lstat`: a symlink is reported as a link, not followed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathKind {
    /// Nothing there.
    Absent,
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link, with its target as stored (non-UTF-8 bytes replaced).
    Link {
        /// The link's target, as `readlink` prints it.
        target: String,
    },
    /// A FIFO, socket or device.
    Other,
}

/// A path's state on the host, as reported by [`stat_cmd`] and parsed by [`parse_stat`]. For
/// [`PathKind::Absent`] every other field is zero/empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathState {
    /// File type.
    pub kind: PathKind,
    /// Permission bits including setuid/setgid/sticky (e.g. `0o1777`).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Owner name (`UNKNOWN` when the uid has no name).
    pub owner: String,
    /// Group name (`UNKNOWN` when the gid has no name).
    pub group: String,
    /// Size in bytes (of the link itself for a link).
    pub size: u64,
    /// sha256 of a regular file's content, lowercase hex; `None` for other kinds or when the
    /// file could not be read.
    pub sha256: Option<String>,
}

impl PathState {
    /// Nothing at a path.
    pub fn absent() -> PathState {
        PathState {
            kind: PathKind::Absent,
            mode: 0,
            uid: 0,
            gid: 0,
            owner: String::new(),
            group: String::new(),
            size: 0,
            sha256: None,
        }
    }

    /// Whether anything (even a dangling link) is at the path.
    pub fn exists(&self) -> bool {
        self.kind != PathKind::Absent
    }

    /// Whether `owner` (a name or a numeric id) matches this path's owner.
    pub fn owner_is(&self, owner: &str) -> bool {
        self.owner == owner || owner.parse::<u32>().is_ok_and(|id| id == self.uid)
    }

    /// Whether `group` (a name or a numeric id) matches this path's group.
    pub fn group_is(&self, group: &str) -> bool {
        self.group == group || group.parse::<u32>().is_ok_and(|id| id == self.gid)
    }
}

/// [`stat_cmd`]'s output could not be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatError {
    /// The command failed (e.g. permission denied on the parent directory).
    #[error("cannot stat (exit status {status}): {stderr}")]
    Failed {
        /// Exit status.
        status: i32,
        /// The command's stderr.
        stderr: String,
    },
    /// The output is not in the expected form (e.g. a non-GNU `stat`).
    #[error("unexpected stat output: {0}")]
    Malformed(String),
}

/// A command printing `path`'s type, mode, owner, group, size, link target and sha256 (for
/// regular files) in the form [`parse_stat`] reads. Does not follow a symlink at `path`.
pub fn stat_cmd(path: &str) -> Cmd {
    Cmd::raw("w_=1; set --")
        .arg(path)
        .with_shared(STAT_FN, host::STAT)
        .stats(path, true)
        .query(FileQuery::stat(path, true))
}

/// The name a batch gives [`host::STAT`] when several of its helpers use it.
const STAT_FN: &str = "st_f_";

/// [`stat_cmd`], followed for a regular file whose sha256 is not `unless_sha` (any, when
/// `None`) by a line `content` and its first `max` bytes: a check that compares content gets the
/// current text for the diff without a read of its own when nothing differs. Parse with
/// [`parse_stat_content`].
pub fn stat_content_cmd(path: &str, unless_sha: Option<&str>, max: u64) -> Cmd {
    Cmd::raw("w_=1; set --")
        .arg(path)
        .arg(unless_sha.unwrap_or("-"))
        .arg(max.to_string())
        .with_shared(STAT_FN, host::STAT)
        .stats(path, true)
        .query(FileQuery {
            content: Some((unless_sha.map(str::to_string), max)),
            ..FileQuery::stat(path, true)
        })
}

/// [`stat_cmd`] without the sha256 (no `sha256sum` process, the file is not read): for
/// modules that look at attributes only.
pub fn stat_attrs_cmd(path: &str) -> Cmd {
    Cmd::raw("w_=; set --")
        .arg(path)
        .with_shared(STAT_FN, host::STAT)
        .stats(path, false)
        .query(FileQuery::stat(path, false))
}

impl Cmd {
    /// Notes that this command is a stat helper for `path` (hashing it when `hash`).
    fn stats(mut self, path: &str, hash: bool) -> Cmd {
        self.stats = Some((path.to_string(), hash));
        self
    }

    /// Notes what this command asks, typed (it must be the command's last part).
    fn query(mut self, q: FileQuery) -> Cmd {
        self.query = Some((q, self.parts.len()));
        self
    }

    fn changes(mut self, op: FileOp) -> Cmd {
        self.ops = Some((vec![op], self.parts.len()));
        self
    }

    /// The file operations this command is, in order, when nothing was added to it since it
    /// was made (more shell, a folder to run in, environment, input): a file plane may make
    /// them instead.
    pub fn file_ops(&self) -> Option<&[FileOp]> {
        match &self.ops {
            Some((ops, parts))
                if *parts == self.parts.len()
                    && self.chdir.is_none()
                    && self.env.is_empty()
                    && self.stdin.is_none() =>
            {
                Some(ops)
            }
            _ => None,
        }
    }

    /// The typed query this command is, when nothing was added to it since it was made (more
    /// shell, a folder to run in, environment): a file plane may answer it instead.
    pub fn file_query(&self) -> Option<&FileQuery> {
        match &self.query {
            Some((q, parts)) if *parts == self.parts.len() && self.chdir.is_none() => Some(q),
            _ => None,
        }
    }

    /// Ends this command with `body` (a script reading its arguments from `"$@"`, run in the
    /// command's own shell or subshell: its `exit` ends the command), which a batch of several
    /// such commands defines once as the function `name` ([`shared_functions`]).
    fn with_shared(self, name: &'static str, body: &'static str) -> Cmd {
        let mut call = self.clone();
        call.parts
            .push(Part::Raw(Cow::Owned(format!("\n{name} \"$@\""))));
        let mut full = self.op(body);
        full.shared = Some(Shared {
            name,
            body,
            call: Box::new(call),
            parts: full.parts.len(),
        });
        full
    }

    /// The script of this command as a sub-command of a batch that defines the functions
    /// `defined`: its short call when its shared script is one of them.
    fn batch_script(&self, defined: &[&str]) -> Result<String, CmdError> {
        match &self.shared {
            Some(sh)
                if defined.contains(&sh.name)
                    && self.parts.len() == sh.parts
                    && self.chdir.is_none()
                    && self.env.is_empty() =>
            {
                sh.call.to_shell()
            }
            _ => self.to_shell(),
        }
    }
}

/// Appends to `cmd` (a script that defined `run_` and `n_`) the batch's stat tables and shared
/// functions, a `run_ INDEX SCRIPT` line per command of `cmds`, and the end marker.
fn run_each(mut cmd: Cmd, cmds: &[Cmd]) -> Result<Cmd, CmdError> {
    if let Some(t) = stat_tables(cmds) {
        cmd.parts.extend(t.parts);
    }
    let (defs, defined) = shared_functions(cmds);
    cmd.parts.push(Part::Raw(Cow::Owned(defs)));
    for (i, sub) in cmds.iter().enumerate() {
        sub.check_nestable(i)?;
        cmd = cmd
            .op("\nrun_")
            .arg(i.to_string())
            .arg(sub.batch_script(&defined)?);
    }
    Ok(cmd
        .op("\nprintf 'RDEPLOY-BATCH-END %s %s\\n' \"$n_\"")
        .arg(cmds.len().to_string()))
}

/// The definitions (`name() { body }`) of the shared scripts at least two of `cmds` end with,
/// and their names: each is sent once instead of once per command.
fn shared_functions(cmds: &[Cmd]) -> (String, Vec<&'static str>) {
    let mut defs = String::new();
    let mut names = Vec::new();
    for sh in cmds.iter().filter_map(|c| c.shared.as_ref()) {
        if names.contains(&sh.name) {
            continue;
        }
        let users = cmds
            .iter()
            .filter(|c| c.shared.as_ref().is_some_and(|o| o.name == sh.name))
            .count();
        if users >= 2 {
            defs.push_str(&format!("\n{}() {{{}\n}}", sh.name, sh.body));
            names.push(sh.name);
        }
    }
    (defs, names)
}

/// The `stat` (and `sha256sum`) tables of a batch's stat helpers: one process each for all
/// their paths instead of one per helper, run in the batch's shell before the helpers, which
/// look their path up and start their own process only when it is not there. Paths a table
/// line could not hold unambiguously (newline, tab, backslash) are left to the helpers. `None`
/// when fewer than two paths would share a table.
fn stat_tables(cmds: &[Cmd]) -> Option<Cmd> {
    let usable = |p: &str| !p.is_empty() && !p.contains(['\n', '\t', '\\']);
    let mut stat: Vec<&str> = Vec::new();
    let mut hash: Vec<&str> = Vec::new();
    // A helper that changes folder looks its path up from there: not in the batch's table.
    for (p, h) in cmds
        .iter()
        .filter(|c| c.chdir.is_none())
        .filter_map(|c| c.stats.as_ref())
    {
        if usable(p) && !stat.contains(&p.as_str()) {
            stat.push(p);
        }
        if *h && usable(p) && !hash.contains(&p.as_str()) {
            hash.push(p);
        }
    }
    if stat.len() < 2 {
        return None;
    }
    // Paths that exist only (on a fresh host nothing is there: no process at all);
    // tab-separated: an owner or group name may hold spaces (`domain users`).
    let mut t = Cmd::raw("\nset --").args(stat).op(host::STAT_TABLE);
    if hash.len() >= 2 {
        // Regular files only (a FIFO would block): the helpers hash nothing else either.
        t = t.op("\nset --").args(hash).op(host::HASH_TABLE);
    }
    Some(t)
}

/// Parse the output of [`stat_cmd`].
pub fn parse_stat(out: &Output) -> Result<PathState, StatError> {
    parse_stat_content(out).map(|(state, _)| state)
}

/// Parse the output of [`stat_content_cmd`]: the state, and the content when it was sent.
pub fn parse_stat_content(out: &Output) -> Result<(PathState, Option<Vec<u8>>), StatError> {
    // Only a regular file's fields (names and numbers, one per line) come before `content`;
    // a link's target, which may hold anything, never comes with it.
    let (fields, content) = match find(&out.stdout, b"\ncontent\n") {
        Some(at) if find(&out.stdout[..at], b"target ").is_none() => {
            (&out.stdout[..at + 1], Some(out.stdout[at + 9..].to_vec()))
        }
        _ => (out.stdout.as_slice(), None),
    };
    parse_stat_fields(out, fields).map(|state| (state, content))
}

fn parse_stat_fields(out: &Output, data: &[u8]) -> Result<PathState, StatError> {
    if out.status != 0 {
        return Err(StatError::Failed {
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
        });
    }
    // The link target is last and may contain anything but NUL: split it off first.
    let (fields, target) = if let Some(rest) = data.strip_prefix(b"target ") {
        (&data[..0], Some(rest))
    } else if let Some(at) = find(data, b"\ntarget ") {
        (&data[..at + 1], Some(&data[at + 8..]))
    } else {
        (data, None)
    };
    let fields = std::str::from_utf8(fields)
        .map_err(|_| StatError::Malformed("fields are not UTF-8".into()))?;
    let mut state = PathState::absent();
    let mut kind = None;
    let bad = |what: &str, v: &str| StatError::Malformed(format!("bad {what} {v:?}"));
    for line in fields.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "kind" => kind = Some(value.to_string()),
            "mode" => state.mode = u32::from_str_radix(value, 8).map_err(|_| bad(key, value))?,
            "uid" => state.uid = value.parse().map_err(|_| bad(key, value))?,
            "gid" => state.gid = value.parse().map_err(|_| bad(key, value))?,
            "owner" => state.owner = value.to_string(),
            "group" => state.group = value.to_string(),
            "size" => state.size = value.parse().map_err(|_| bad(key, value))?,
            "sha256" => {
                if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad(key, value));
                }
                state.sha256 = Some(value.to_ascii_lowercase());
            }
            "" => {}
            _ => return Err(StatError::Malformed(format!("unknown field {key:?}"))),
        }
    }
    state.kind = match (kind.as_deref(), target) {
        (Some("absent"), None) => PathKind::Absent,
        (Some("file"), None) => PathKind::File,
        (Some("directory"), None) => PathKind::Directory,
        (Some("other"), None) => PathKind::Other,
        (Some("link"), Some(t)) => {
            let t = t.strip_suffix(b"\n").unwrap_or(t);
            PathKind::Link {
                target: String::from_utf8_lossy(t).into_owned(),
            }
        }
        (k, _) => {
            return Err(StatError::Malformed(format!(
                "kind {k:?} with target {}",
                target.is_some()
            )));
        }
    };
    Ok(state)
}

/// Print a file's bytes (`cat`; our transports carry binary output unchanged). Follows a
/// symlink at `path`. Check the output's `truncated` counts: large files are cut in the middle.
pub fn read_file_cmd(path: &str) -> Cmd {
    Cmd::raw("cat --").arg(path)
}

/// `mkdir -p -- PATH`: every folder it creates is 0755 whatever the login's umask (under
/// umask 000 a plain `mkdir -p` makes world-writable folders); a task's `mode:` is applied
/// after it by the caller.
pub fn mkdir_p(path: &str) -> Cmd {
    mkdir_p_all([path])
}

/// [`mkdir_p`] for several folders in one command.
pub fn mkdir_p_all<I, S>(paths: I) -> Cmd
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let paths: Vec<String> = paths.into_iter().map(Into::into).collect();
    let ops = paths.iter().cloned().map(FileOp::Mkdir).collect();
    let mut c = Cmd::raw("(umask 022 && mkdir -p --").args(paths).op(")");
    c.ops = Some((ops, c.parts.len()));
    c
}

/// `chmod -- MODE PATH` with `mode` in octal (e.g. `0o644` → `0644`). Follows symlinks, like
/// chmod itself: check the kind first.
pub fn chmod(path: &str, mode: u32) -> Cmd {
    Cmd::raw("chmod --")
        .arg(format!("{mode:04o}"))
        .arg(path)
        .changes(FileOp::Chmod(path.to_string(), mode))
}

/// `chown -h -- OWNER:GROUP PATH` (either may be left out; `-h` changes a symlink itself).
/// Names or numeric ids. With neither, a no-op (`:`).
pub fn chown(path: &str, owner: Option<&str>, group: Option<&str>) -> Cmd {
    match chown_spec(owner, group) {
        None => Cmd::raw(":"),
        Some(spec) => Cmd::raw("chown -h --")
            .arg(spec)
            .arg(path)
            .changes(FileOp::Chown {
                path: path.to_string(),
                owner: owner.map(str::to_string),
                group: group.map(str::to_string),
            }),
    }
}

/// Gives `path` the owner and group `owner`:`group` (numeric ids of a file it replaces) where
/// permitted: both, else the group, else neither; never fails. Prints [`NOT_KEPT`] and the
/// `OWNER:GROUP` names it has when it did not get both.
pub fn keep_owner(path: &str, owner: Option<&str>, group: Option<&str>) -> Cmd {
    Cmd::raw("set --")
        .arg(path)
        .arg(chown_spec(owner, group).unwrap_or_default())
        .op(";")
        .op(host::KEEP_OWNER)
}

/// `OWNER:GROUP`, `OWNER` or `:GROUP` as chown takes it; `None` when neither is given.
fn chown_spec(owner: Option<&str>, group: Option<&str>) -> Option<String> {
    match (owner, group) {
        (None, None) => None,
        (Some(o), None) => Some(o.to_string()),
        (None, Some(g)) => Some(format!(":{g}")),
        (Some(o), Some(g)) => Some(format!("{o}:{g}")),
    }
}

/// Point the symlink `link` at `target` atomically: create a temporary link in the same
/// directory, then `mv -Tf` it over `link` (rename(2) swaps it in one step; `-T` makes mv replace
/// a link to a directory instead of moving into that directory). The temporary link is removed
/// if the swap fails. GNU and BusyBox `mv -T`; BSD spells it `mv -h`.
pub fn ln_sf_atomic(target: &str, link: &str) -> Cmd {
    let tmp = next_to(link, &format!("rdeploy-ln.{}", nonce()));
    Cmd::raw("set --")
        .arg(target)
        .arg(link)
        .arg(&tmp)
        .op(";")
        .op(host::LN_SF)
        .changes(FileOp::Symlink {
            target: target.to_string(),
            link: link.to_string(),
            tmp,
        })
}

/// A temporary name in `path`'s folder: `.NAME.TAG`.
fn next_to(path: &str, tag: &str) -> String {
    let (dir, name) = match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => (".", path),
    };
    let sep = if dir.ends_with('/') { "" } else { "/" };
    format!("{dir}{sep}.{name}.{tag}")
}

/// The hard link `path` to `src` made atomically: `ln` to a temporary name next to `path`
/// (one left by an earlier failure removed first), then renamed over `path` (`mv -T`); the
/// temporary name is removed if the rename fails.
pub fn ln_atomic(src: &str, path: &str) -> Cmd {
    let tmp = next_to(path, "rdeploy-hard");
    Cmd::raw("set --")
        .arg(src)
        .arg(path)
        .arg(&tmp)
        .op(r#"; rm -f -- "$3"; ln -- "$1" "$3" || exit 1; mv -f -T -- "$3" "$2" || { s_=$?; rm -f -- "$3"; exit "$s_"; }"#)
        .changes(FileOp::Hardlink {
            src: src.to_string(),
            path: path.to_string(),
            tmp,
        })
}

/// `rm -rf -- PATH` (GNU rm refuses `/` by default).
pub fn rm_rf(path: &str) -> Cmd {
    Cmd::raw("rm -rf --")
        .arg(path)
        .changes(FileOp::Remove(path.to_string()))
}

/// `mv -f -T -- SRC DST`: rename over `dst`, never into it when it is a directory (GNU `-T`; see
/// [`ln_sf_atomic`] for other platforms).
pub fn mv_f(src: &str, dst: &str) -> Cmd {
    Cmd::raw("mv -f -T --").arg(src).arg(dst)
}

/// `test -e PATH`: exit 0 when something exists there. Follows symlinks, so a dangling link
/// counts as absent; use [`stat_cmd`] to tell them apart.
pub fn test_e(path: &str) -> Cmd {
    Cmd::raw("test -e")
        .arg(path)
        .query(FileQuery::asking(path, Asked::Exists))
}

/// `test -L PATH && ` [`stat_resolved_attrs_cmd`]: exit 1 and nothing unless a symlink is at
/// `path`; else the attributes of what it finally names.
pub fn stat_resolved_if_link_attrs_cmd(path: &str) -> Cmd {
    Cmd::raw("test -L")
        .arg(path)
        .and(stat_resolved_attrs_cmd(path))
        .query(FileQuery {
            follow: true,
            asked: Asked::StatIfLink,
            ..FileQuery::stat(path, false)
        })
}

// ---------------------------------------------------------------------------------------------
// Additions for the file modules (mod-files): resolved stat, user commands naming a file
// ---------------------------------------------------------------------------------------------

/// Like [`stat_cmd`], but for the path a symlink at `path` finally points to (`readlink -f`;
/// GNU/BusyBox, every component but the last must exist, otherwise exit 3). For a path that is
/// not a link this is the same as [`stat_cmd`]. Used by the modules that edit a file in place
/// (`lineinfile`, `blockinfile`, `replace`), which follow a link at their path like Ansible does.
/// A path that is not a symlink (existing or not) is stat'ed as it is (the same file
/// `readlink -f` names): no `readlink` process.
pub fn stat_resolved_cmd(path: &str) -> Cmd {
    stat_resolved_with(path, true)
}

/// [`stat_resolved_cmd`] without the sha256 (see [`stat_attrs_cmd`]).
pub fn stat_resolved_attrs_cmd(path: &str) -> Cmd {
    stat_resolved_with(path, false)
}

fn stat_resolved_with(path: &str, hash: bool) -> Cmd {
    Cmd::raw(if hash { "w_=1; set --" } else { "w_=; set --" })
        .arg(path)
        .op(";")
        .op(host::RESOLVE_LINK)
        .with_shared(STAT_FN, host::STAT)
        .query(FileQuery {
            follow: true,
            ..FileQuery::stat(path, hash)
        })
}

/// Prints the path after following every symlink, as `readlink -f -- PATH` does. For a path
/// that is not a symlink (existing, or missing in an existing folder) it is found with shell
/// built-ins (`cd -P` and `$PWD`: no process), and a path in a missing folder fails as
/// `readlink -f` fails there (no output, exit 1); anything else (a link, a dangling link on
/// the way, a directory that cannot be entered) goes to `readlink -f` (GNU/BusyBox).
pub fn realpath_cmd(path: &str) -> Cmd {
    Cmd::raw("set --")
        .arg(path)
        .op(host::REALPATH)
        .query(FileQuery::asking(path, Asked::Realpath))
}

/// Prints a regular file's bytes, following a symlink; nothing for anything else (never blocks
/// on a FIFO or reads a device).
pub fn read_following_cmd(path: &str) -> Cmd {
    Cmd::raw("set --")
        .arg(path)
        .op(r#"; if [ -f "$1" ]; then cat -- "$1"; fi"#)
        .query(FileQuery::asking(path, Asked::Read))
}

/// A command written by the playbook's author that names a file with `%s` (Ansible's
/// `validate: visudo -cf %s`). `path` is passed as a quoted positional parameter and each `%s`
/// becomes `"$1"`, so the value is never spliced into the line; `%%` is a literal `%`, as in
/// Python's `%` formatting. The rest of `template` is shell text, as with [`Cmd::user_script`].
pub fn user_script_with_path(template: &str, path: &str) -> Cmd {
    let mut script = String::with_capacity(template.len() + 8);
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('%', Some('s')) => {
                chars.next();
                script.push_str("\"$1\"");
            }
            ('%', Some('%')) => {
                chars.next();
                script.push('%');
            }
            _ => script.push(c),
        }
    }
    Cmd::raw("set --")
        .arg(path)
        .op(";")
        .sub(Cmd::user_script(script))
}

/// The inverse of [`quote`]: splits a command line into words as a POSIX shell would for
/// plain words (whitespace separates; single quotes keep everything; double quotes group and
/// allow `\\` escapes; a backslash outside quotes escapes the next character). No expansion of
/// any kind. Errors on an unterminated quote.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('"') | None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    in_word = true;
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The line a remote-shell transport sends (SSH `exec`): runs [`Cmd::wrap`]'s argv as the leader
/// of its own process group, after printing `RDEPLOY-PGID <pgid>` as the first line of stdout so
/// the transport can kill the whole group on timeout or cancel ([`kill_group_cmd`]). The
/// transport strips that line (and anything a login script printed before it).
///
/// OpenSSH's sshd already calls `setsid()` in the child it forks for a session (`session.c`,
/// with or without a PTY), so the login shell running this line is the leader of a new session
/// and process group: the line checks that in `/proc/self/stat` (its pid field equals its
/// process-group field, whichever pid namespace that `/proc` shows) with shell built-ins only
/// (the redirection is opened by the shell itself, so `self` is the shell) and then runs the
/// command in place: when the login shell is `sh` (its `comm`, the name it was run as, as `sh -c`
/// would run it) and the argv is `sh -c SCRIPT`, the script is `eval`ed by this very shell,
/// positional parameters and the line's own variables cleared first (one exec less per command,
/// which is most of a small command's cost on the host); otherwise the argv is `exec`ed (no extra
/// process; the group's id stays the shell's pid). Where
/// that cannot be confirmed (no `/proc`, another SSH server, a shell that is not the group's
/// leader) it falls back to util-linux's `setsid -w` (and, without setsid, to the group the
/// shell is in).
pub fn session_line(cmd: &Cmd, stdin: bool) -> Result<String, CmdError> {
    let argv = cmd.wrap()?;
    let mut line = String::from(if stdin {
        "set --"
    } else {
        "exec </dev/null; set --"
    });
    for w in &argv {
        line.push(' ');
        line.push_str(&quote(w)?);
    }
    line.push_str("; ");
    line.push_str(host::SESSION);
    Ok(line)
}

/// What [`host_lock_line`] prints first when it took the lock.
pub const HOST_LOCK_TAKEN: &str = "RDEPLOY-HOSTLOCK taken";
/// What [`host_lock_line`] prints, then the holder's line, when another run holds the lock.
pub const HOST_LOCK_HELD: &str = "RDEPLOY-HOSTLOCK held ";

/// The host lock's command line (`src/host/sh/host_lock.sh`): in `dir` (else the login user's
/// default state directory, `/var/lib/rdeploy` for root, `~/.local/state/rdeploy` otherwise),
/// lock `host.lock` with `flock -n` on a descriptor of the shell itself, write `holder` into it
/// and print [`HOST_LOCK_TAKEN`], then wait for stdin to end: the channel, and with it the
/// lock, lives as long as the connection (sshd closes the command's stdin when the connection
/// dies, even when the controller was killed). A lock whose holder line is `holder`, this
/// run's own, is waited for up to 10 s: the session of a connection this run just closed
/// ([`crate::exec::host::HostState::release`]) may not have ended yet on the host. When another
/// process holds it: [`HOST_LOCK_HELD`] and its holder line, exit 75. Without `flock(1)`: exit
/// 127.
pub fn host_lock_line(dir: Option<&str>, holder: &str) -> Result<String, CmdError> {
    let dir = match dir {
        Some(d) => quote(d)?,
        None => "''".to_string(),
    };
    Ok(fill(
        host::HOST_LOCK,
        &[("@DIR@", &dir), ("@HOLDER@", &quote(holder)?)],
    ))
}

/// `template` with each placeholder of `words` (trusted names such as `@DIR@`) replaced by its
/// value (already quoted words), in one pass: a value is never searched for placeholders.
fn fill(template: &str, words: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match words.iter().find(|(name, _)| rest.starts_with(name)) {
            Some((name, value)) => {
                out.push_str(value);
                rest = &rest[name.len()..];
            }
            None => {
                out.push('@');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `line` delivered through stdin: the fixed command to send instead, and the bytes to send
/// on stdin before the command's own input. The line must then always get stdin (its own
/// `exec </dev/null` still applies once it is read).
pub fn stdin_bootstrap(line: &str) -> (&'static str, Vec<u8>) {
    let lines: Vec<&str> = line.split('\n').collect();
    let mut data = format!("{}\n", lines.len()).into_bytes();
    for l in lines {
        data.extend_from_slice(l.as_bytes());
        data.push(b'\n');
    }
    (host::STDIN_BOOTSTRAP, data)
}

/// A shell line running `argv` (from [`Cmd::wrap`]) in the shell that evaluates it: an
/// `sh -c SCRIPT` is the script itself, anything else is `exec`ed with every word quoted;
/// without `stdin` the line first points stdin at /dev/null. For [`stdin_bootstrap`].
pub fn argv_line(argv: &[String], stdin: bool) -> Result<String, CmdError> {
    let mut line = String::from(if stdin { "" } else { "exec </dev/null\n" });
    match argv {
        [sh, c, script] if sh == "sh" && c == "-c" => line.push_str(script),
        words => {
            line.push_str("exec");
            for w in words {
                line.push(' ');
                line.push_str(&quote(w)?);
            }
        }
    }
    Ok(line)
}

/// The marker [`session_line`] prints before the command runs.
pub const PGID_MARKER: &str = "RDEPLOY-PGID ";

/// Kills the process group `pgid` started by [`session_line`]: SIGTERM, up to `grace` for it
/// to go (checked every 0.1 s), then SIGKILL. Give it the same `become` as the command it
/// kills (a group running as root can only be signalled by root). Always exits 0.
pub fn kill_group_cmd(pgid: u32, grace: Duration) -> Cmd {
    let tenths = (grace.as_millis() / 100).max(1);
    Cmd::raw("set --")
        .arg(format!("-{pgid}"))
        .arg(tenths.to_string())
        .op(";")
        .op(host::KILL_GROUP)
}

/// Writes stdin to `dest` atomically for a remote-shell transport (stream the bytes to its
/// stdin): a new temporary file next to `dest` (`set -C`: never through an existing file or
/// link; umask 077), its sha256 compared with `sha256` (exit 3 on a mismatch), chown then
/// chmod (`mode`, else the mode of the regular file at `dest`, else 0644) BEFORE `mv -f -T`
/// renames it over `dest` (a symlink there is replaced, not followed). The temporary file is
/// removed on any failure. `dest` must be absolute. GNU coreutils (`sha256sum`, `stat -c`,
/// `mv -T`).
pub fn put_file_cmd(
    dest: &str,
    sha256: &str,
    mode: Option<u32>,
    owner: Option<&str>,
    group: Option<&str>,
) -> Cmd {
    put_file_keeping_cmd(dest, sha256, mode, owner, group, false)
}

/// [`put_file_cmd`]; with `keep`, `owner` and `group` are the replaced file's (numeric ids),
/// set where permitted: `OWNER:GROUP`, else `:GROUP`, else neither, never a failure. When the
/// new file did not get both, it prints `rdeploy-not-kept OWNER:GROUP` (what it has) on stdout.
pub fn put_file_keeping_cmd(
    dest: &str,
    sha256: &str,
    mode: Option<u32>,
    owner: Option<&str>,
    group: Option<&str>,
    keep: bool,
) -> Cmd {
    let (dir, name) = dest.rsplit_once('/').unwrap_or(("", dest));
    let tmp = format!("{dir}/.{name}.rdeploy-tmp.{}", nonce());
    let chown = chown_spec(owner, group);
    // A mode the umask can give at creation (no execute or special bits) needs no chmod; with
    // a chown, the file stays private until it has its owner.
    let umask = match mode {
        Some(m) if m & 0o7111 == 0 && chown.is_none() => format!("{:03o}", 0o777 & !m),
        _ => String::new(),
    };
    Cmd::raw("set --")
        .arg(dest)
        .arg(tmp)
        .arg(sha256)
        .arg(
            mode.map(|m| format!("{:o}", m & 0o7777))
                .unwrap_or_default(),
        )
        .arg(chown.unwrap_or_default())
        .arg(umask)
        .arg(if keep { "keep" } else { "" })
        .op(host::PUT)
}

/// The marker [`put_file_keeping_cmd`] prints when the replaced file's owner/group were not kept.
pub const NOT_KEPT: &str = "rdeploy-not-kept ";

/// Prints at most `max_bytes` bytes of `path` (following a symlink): the transport asks for one
/// byte more than it accepts, to tell "exactly the limit" from "larger".
pub fn read_file_bounded_cmd(path: &str, max_bytes: u64) -> Cmd {
    Cmd::raw("head -c")
        .arg(max_bytes.to_string())
        .op("--")
        .arg(path)
}

/// `if command -v PROGRAM >/dev/null 2>&1; then ( found ) else ( otherwise ) fi`: run `found`
/// when `program` is on the host's `PATH`, else `otherwise` (which may itself be an
/// `if_program`, to try several tools in turn). Neither branch may carry stdin, become or a
/// timeout: set those on the result. Used by the health probes (`curl`, else `wget`).
pub fn if_program(program: &'static str, found: Cmd, otherwise: Cmd) -> Cmd {
    Cmd::raw("if command -v")
        .arg(program)
        .op(">/dev/null 2>&1; then")
        .sub(found)
        .op("; else")
        .sub(otherwise)
        .op("; fi")
}

/// `test -d PATH`: exit 0 when a directory is there (links followed). A file plane answers it
/// without a program.
pub fn test_d(path: &str) -> Cmd {
    Cmd::raw("test -d")
        .arg(path)
        .query(FileQuery::asking(path, Asked::IsDir))
}

/// `sha256sum -- PATH`: the file's sha256 first on the line (the file plane's check of a large
/// file it wrote, on the host).
pub fn sha256_cmd(path: &str) -> Cmd {
    Cmd::raw("sha256sum --").arg(path)
}

/// The line [`sftp_server_line`] prints once sudo let it in and a server was found, right
/// before the server starts: the transport waits for it, so a refused sudo or a host without
/// the server fails at once instead of leaving the session to time out.
pub const SFTP_READY: &str = "rdeploy-sftp-ready";

/// The exec line that starts OpenSSH's `sftp-server` as `user` (`sudo -n`, never a prompt):
/// the first of `servers` (space-separated paths) that is executable, after the line
/// [`SFTP_READY`]. From then on its stdin and stdout are the SFTP session: no session wrapper.
pub fn sftp_server_line(user: &str, servers: &'static str) -> Result<String, CmdError> {
    let b = Become::sudo(user);
    let user = b.validated_user()?;
    let script = format!(
        "for p in {servers}; do if [ -x \"$p\" ]; then echo {SFTP_READY}; exec \"$p\"; fi; done; echo 'rdeploy: no sftp-server found' >&2; exit 127"
    );
    Ok(format!(
        "sudo -n -u {} -- sh -c {}",
        quote(user)?,
        quote(&script)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_host_lock_prints_the_markers_the_transport_looks_for() {
        let line = host_lock_line(Some("/var/@HOLDER@"), "run @DIR@").unwrap();
        assert!(
            line.contains(&format!("echo '{HOST_LOCK_TAKEN}'")),
            "{line}"
        );
        assert!(
            line.contains(&format!("printf '{HOST_LOCK_HELD}'")),
            "{line}"
        );
        // Values are quoted words put in once, never searched for placeholders.
        assert!(line.starts_with("d_=/var/@HOLDER@; "), "{line}");
        assert_eq!(line.matches("'run @DIR@'").count(), 2, "{line}");
        assert!(
            !line.contains("@DIR@;") && !line.contains("@HOLDER@ ]"),
            "{line}"
        );
    }

    #[test]
    fn if_program_picks_the_first_tool_found() {
        let c = if_program(
            "sh",
            Cmd::raw("echo").arg("has sh"),
            Cmd::raw("echo").arg("no sh"),
        );
        let out = run_sh(&c.to_shell().unwrap(), b"");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "has sh\n");
        let c = if_program(
            "rdeploy-no-such-tool",
            Cmd::raw("echo").arg("found"),
            Cmd::raw("echo").arg("fallback").op("; exit 3"),
        );
        let out = run_sh(&c.to_shell().unwrap(), b"");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "fallback\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn a_host_lock_held_by_the_runs_own_closing_connection_is_waited_for_another_runs_is_not() {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let hold = |holder: &str| {
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(host_lock_line(Some(d), holder).unwrap())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut first = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut first)
                .unwrap();
            (child, first)
        };
        let (mut first, said) = hold("run-A from c1 since t");
        assert_eq!(said.trim(), HOST_LOCK_TAKEN);
        // Another run: refused at once, naming the holder.
        let other = run_sh(
            &host_lock_line(Some(d), "run-B from c2 since t").unwrap(),
            b"",
        );
        assert_eq!(other.status.code(), Some(75));
        let text = String::from_utf8_lossy(&other.stdout);
        assert!(text.contains("run-A from c1 since t"), "{text}");
        // The same run reconnecting while its closed connection's session still holds it:
        // taken as soon as that session ends (its stdin closes), not refused.
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(first.stdin.take());
            first.wait().unwrap()
        });
        let (mut again, said) = hold("run-A from c1 since t");
        assert_eq!(said.trim(), HOST_LOCK_TAKEN);
        assert!(releaser.join().unwrap().success());
        drop(again.stdin.take());
        assert!(again.wait().unwrap().success());
    }

    /// dash exits 2 when `exec`'s redirection fails (a special built-in), so the "no lock file
    /// here" answer (71, on which the run goes on without the lock) never came.
    #[test]
    fn a_lock_file_that_cannot_be_opened_is_exit_71_not_a_shell_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("host.lock")).unwrap();
        let d = dir.path().to_str().unwrap();
        let out = run_sh(&host_lock_line(Some(d), "run-A").unwrap(), b"");
        assert_eq!(out.status.code(), Some(71), "{out:?}");
    }

    fn run_sh(line: &str, stdin: &[u8]) -> std::process::Output {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    #[test]
    fn keep_ends_cuts_the_middle_like_a_batch() {
        let mut out = Output {
            stdout: b"0123456789".to_vec(),
            stderr: b"abc".to_vec(),
            ..Output::default()
        };
        keep_ends(&mut out, 2);
        assert_eq!(out.stdout, b"0189");
        assert_eq!(out.truncated.stdout, 6);
        assert_eq!(out.stderr, b"abc");
        assert_eq!(out.truncated.stderr, 0);
    }

    fn output_of(o: std::process::Output) -> Output {
        Output {
            status: o.status.code().unwrap_or(-1),
            stdout: o.stdout,
            stderr: o.stderr,
            truncated: Truncated::default(),
        }
    }

    #[test]
    fn reads_after_a_command_see_its_change_and_come_back_apart_from_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f").display().to_string();
        // The main command reads its own stdin (after the nonce line) and exits 3 without a
        // trailing newline; the reads run after it, see what it wrote, and print fake markers.
        let main = Cmd::raw("cat >")
            .arg(f.clone())
            .op("; printf 'main out'; printf 'main err' >&2; exit 3");
        let reads = [
            Cmd::raw("cat --").arg(f.clone()),
            Cmd::raw("printf '\\nRDEPLOY-POST x 0\\nRDEPLOY-BATCH-END x 9\\n'; echo e >&2; exit 4"),
        ];
        let (cmd, frame) = main.then_reads(&reads, true).unwrap();
        let mut stdin = frame.stdin_prefix();
        stdin.extend_from_slice(b"the new content");
        let out = output_of(run_sh(&cmd.to_shell().unwrap(), &stdin));
        assert_eq!(out.status, 3, "the main command's status is the command's");
        let (main_out, reads_out) = frame.split(out);
        assert_eq!(main_out.status, 3);
        assert_eq!(main_out.stdout, b"main out");
        assert_eq!(main_out.stderr, b"main err");
        let reads_out = reads_out.expect("reads parsed");
        assert_eq!(reads_out.len(), 2);
        assert_eq!(reads_out[0].stdout, b"the new content");
        assert_eq!(reads_out[0].status, 0);
        assert_eq!(reads_out[1].status, 4);
        assert_eq!(reads_out[1].stderr, b"e\n");
        assert!(reads_out[1].stdout.starts_with(b"\nRDEPLOY-POST x 0"));
    }

    #[test]
    fn reads_without_main_stdin_and_a_main_that_never_reached_the_marker() {
        let (cmd, frame) = Cmd::raw("cat")
            .then_reads(&[Cmd::raw("echo read")], false)
            .unwrap();
        // No input after the nonce: `cat` reads /dev/null, not the rest of stdin.
        let mut stdin = frame.stdin_prefix();
        stdin.extend_from_slice(b"not for cat");
        let (main_out, reads_out) =
            frame.split(output_of(run_sh(&cmd.to_shell().unwrap(), &stdin)));
        assert_eq!(main_out.stdout, b"");
        assert_eq!(reads_out.unwrap()[0].stdout, b"read\n");
        // A shell that stopped early (no nonce at all): the whole output is the main command's.
        let out = output_of(run_sh(&cmd.to_shell().unwrap(), b""));
        let (main_out, reads_out) = frame.split(out);
        assert_eq!(main_out.status, 125);
        assert!(reads_out.is_none());
        // Reads may not carry settings of their own.
        assert!(
            Cmd::raw("true")
                .then_reads(&[Cmd::raw("cat").stdin(b"x".to_vec())], false)
                .is_err()
        );
    }

    #[test]
    fn a_line_sent_through_stdin_runs_as_it_would_directly_and_keeps_the_stdin_after_it() {
        let c = Cmd::user_script("printf '%s|' \"$0\" 'two\nlines'; cat; echo; exit 7");
        for own_stdin in [Some(&b"the command's input\n"[..]), None] {
            let line = session_line(&c, own_stdin.is_some()).unwrap();
            let direct = run_sh(&line, own_stdin.unwrap_or(b""));
            let (boot, mut data) = stdin_bootstrap(&line);
            assert!(
                !boot.contains("two"),
                "the line is not in the command: {boot}"
            );
            data.extend_from_slice(own_stdin.unwrap_or(b""));
            let via = run_sh(boot, &data);
            assert_eq!(via.status.code(), Some(7));
            assert_eq!(direct.status.code(), Some(7));
            let strip = |o: &std::process::Output| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| !l.starts_with(PGID_MARKER))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            assert_eq!(strip(&via), strip(&direct));
            assert!(strip(&via).contains("two\nlines|"), "{}", strip(&via));
            // A login shell that is not sh (bash) becomes sh first: the same result.
            let mut bash = std::process::Command::new("bash")
                .arg("-c")
                .arg(boot)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(&mut bash.stdin.take().unwrap(), &data).unwrap();
            let via_bash = bash.wait_with_output().unwrap();
            assert_eq!(via_bash.status.code(), Some(7));
            assert_eq!(strip(&via_bash), strip(&direct));
        }
    }

    #[test]
    fn argv_line_execs_quoted_words_and_evaluates_a_script_in_place() {
        let words: Vec<String> = ["printf", "%s|", "a b", "it's"]
            .iter()
            .map(|w| w.to_string())
            .collect();
        let line = argv_line(&words, false).unwrap();
        assert_eq!(
            line,
            "exec </dev/null\nexec printf '%s|' 'a b' 'it'\"'\"'s'"
        );
        let (boot, data) = stdin_bootstrap(&line);
        let out = run_sh(boot, &data);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b|it's|");
        let script = vec![
            "sh".to_string(),
            "-c".to_string(),
            "echo in place".to_string(),
        ];
        assert_eq!(argv_line(&script, true).unwrap(), "echo in place");
    }

    /// The process group of `pid`, from /proc.
    fn pgrp_of(pid: &str) -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = stat.rsplit_once(')')?.1;
        after.split_whitespace().nth(2).map(str::to_string)
    }

    #[test]
    fn session_line_runs_the_command_as_leader_of_its_own_group() {
        let c = Cmd::raw(r#"echo "pid=$$"; echo err >&2; exit 7"#);
        let out = run_sh(&session_line(&c, false).unwrap(), b"");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = text.lines();
        let pgid = lines
            .next()
            .and_then(|l| l.strip_prefix(PGID_MARKER))
            .unwrap_or_else(|| panic!("no marker: {text}"))
            .to_string();
        assert_eq!(lines.next(), Some(format!("pid={pgid}").as_str()), "{text}");
        assert_eq!(out.status.code(), Some(7));
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    }

    #[test]
    fn session_line_execs_in_place_when_the_shell_already_leads_its_group() {
        use std::os::unix::process::CommandExt;
        // As sshd starts it: the shell is the leader of a new group (setsid in sshd's child).
        let c = Cmd::raw(r#"echo "pid=$$ n=$# c=${c_-unset} g=${g_-unset}"; exit 3"#);
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(session_line(&c, false).unwrap())
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let leader = child.id();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{PGID_MARKER}{leader}\npid={leader} n=0 c=unset g=unset\n"),
            "no setsid, no extra process: the command is the shell sshd started"
        );
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn kill_group_cmd_leaves_nothing_of_the_group() {
        let c = Cmd::raw("sleep 30 & sleep 31 & wait");
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(session_line(&c, false).unwrap())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut first,
        )
        .unwrap();
        let pgid: u32 = first
            .trim()
            .strip_prefix(PGID_MARKER.trim())
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let out = run_sh(
            &kill_group_cmd(pgid, Duration::from_secs(2))
                .to_shell()
                .unwrap(),
            b"",
        );
        assert!(out.status.success());
        child.wait().unwrap();
        let left: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|p| p.chars().all(|c| c.is_ascii_digit()))
            .filter(|p| pgrp_of(p).as_deref() == Some(pgid.to_string().as_str()))
            .collect();
        assert!(left.is_empty(), "still running in group {pgid}: {left:?}");
    }

    #[test]
    fn put_file_cmd_writes_verifies_and_renames() {
        use sha2::{Digest, Sha256};
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("conf file").to_string_lossy().into_owned();
        let data = b"line one\nline 'two'\n";
        let sum = hex::encode(Sha256::digest(data));
        // A symlink at dest is replaced, not written through.
        let target = dir.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, &dest).unwrap();
        let out = run_sh(
            &put_file_cmd(&dest, &sum, Some(0o640), None, None)
                .to_shell()
                .unwrap(),
            data,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let meta = std::fs::symlink_metadata(&dest).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        // No mode given: the existing file's is kept.
        let sum2 = hex::encode(Sha256::digest(b"v2"));
        let out = run_sh(
            &put_file_cmd(&dest, &sum2, None, None, None)
                .to_shell()
                .unwrap(),
            b"v2",
        );
        assert!(out.status.success());
        assert_eq!(
            std::fs::metadata(&dest).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        // A checksum mismatch leaves dest alone and no temporary file behind.
        let out = run_sh(
            &put_file_cmd(&dest, &sum, None, None, None)
                .to_shell()
                .unwrap(),
            b"other",
        );
        assert_eq!(out.status.code(), Some(3));
        assert!(String::from_utf8_lossy(&out.stderr).contains("sha256"));
        assert_eq!(std::fs::read(&dest).unwrap(), b"v2");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // A new file gets 0644 without a mode; modes with execute bits are set by chmod; the
        // caller's umask plays no part.
        for (name, mode, want) in [
            ("new", None, 0o644),
            ("x", Some(0o750), 0o750),
            ("p", Some(0o600), 0o600),
        ] {
            let f = dir.path().join(name).to_string_lossy().into_owned();
            let out = run_sh(
                &format!(
                    "umask 0777; {}",
                    put_file_cmd(&f, &sum2, mode, None, None)
                        .to_shell()
                        .unwrap()
                ),
                b"v2",
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(std::fs::read(&f).unwrap(), b"v2");
            let got = std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777;
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn put_file_cmd_writes_and_flushes_with_one_dd_or_falls_back_to_cat_and_sync() {
        use sha2::{Digest, Sha256};
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // 300 KiB: more than one pipe buffer and one dd block.
        let data: Vec<u8> = (0..300 * 1024u32).map(|i| (i % 253) as u8).collect();
        let sum = hex::encode(Sha256::digest(&data));
        // Shims log each start of dd, cat and sync; `old/dd` refuses conv=fsync as a dd
        // without it does (before reading anything).
        let (bin, old) = (d.join("bin"), d.join("old"));
        for b in [&bin, &old] {
            std::fs::create_dir(b).unwrap();
        }
        let shim = |path: std::path::PathBuf, body: String| {
            std::fs::write(
                &path,
                format!(
                    "#!/bin/sh\necho {} >> {}/calls\n{body}\n",
                    path.file_name().unwrap().to_string_lossy(),
                    d.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        for tool in ["dd", "cat", "sync"] {
            shim(bin.join(tool), format!("exec /usr/bin/{tool} \"$@\""));
            shim(old.join(tool), format!("exec /usr/bin/{tool} \"$@\""));
        }
        shim(
            old.join("dd"),
            "echo 'dd: invalid conversion' >&2; exit 1".into(),
        );
        let path = std::env::var("PATH").unwrap_or_default();
        for (shims, want_calls) in [(&bin, "dd\n"), (&old, "dd\ncat\nsync\n")] {
            let dest = d.join("dest").to_string_lossy().into_owned();
            let _ = std::fs::remove_file(d.join("calls"));
            let out = run_sh(
                &format!(
                    "PATH='{}:{path}'\n{}",
                    shims.display(),
                    put_file_cmd(&dest, &sum, Some(0o640), None, None)
                        .to_shell()
                        .unwrap()
                ),
                &data,
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(std::fs::read(&dest).unwrap(), data, "{}", shims.display());
            assert_eq!(
                std::fs::metadata(&dest).unwrap().permissions().mode() & 0o7777,
                0o640
            );
            let calls = std::fs::read_to_string(d.join("calls")).unwrap();
            assert_eq!(calls, want_calls, "{}", shims.display());
        }
        // A temp name already taken (a planted symlink) is never written through.
        let victim = d.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let dest = d.join("d2").to_string_lossy().into_owned();
        let cmd = put_file_cmd(&dest, &sum, None, None, None);
        let script = cmd.to_shell().unwrap();
        let tmp = script
            .split('\'')
            .find(|w| w.contains(".d2.rdeploy-tmp."))
            .unwrap()
            .to_string();
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        // (No input: the script stops before reading it.)
        let out = run_sh(&script, b"");
        assert!(!out.status.success());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!std::path::Path::new(&dest).exists());
    }

    #[test]
    fn a_put_killed_mid_transfer_leaves_no_temp_file() {
        use std::io::Write;
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("big").to_string_lossy().into_owned();
        let line = put_file_cmd(&dest, &"0".repeat(64), None, None, None)
            .to_shell()
            .unwrap();
        // Its own process group, as on a host (sshd makes each session's shell a leader).
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .stdin(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(&[7u8; 200_000]).unwrap();
        // The input stays open: the transfer is in flight until the temp file has the bytes.
        let tmp_len = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(Result::ok)
                .find(|e| e.file_name().to_string_lossy().contains(".rdeploy-tmp."))
                .and_then(|e| e.metadata().ok())
                .map(|m| m.len())
        };
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while tmp_len() != Some(200_000) && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(tmp_len(), Some(200_000), "the transfer never got going");
        let pgid = rustix::process::Pid::from_child(&child);
        rustix::process::kill_process_group(pgid, rustix::process::Signal::TERM).unwrap();
        let status = child.wait().unwrap();
        drop(input);
        assert_eq!(status.code(), Some(143), "{status:?}");
        assert_eq!(tmp_len(), None, "temp file left behind");
        assert!(!std::path::Path::new(&dest).exists());
    }

    #[test]
    fn read_file_bounded_cmd_stops_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big");
        std::fs::write(&f, vec![b'x'; 100]).unwrap();
        let out = run_sh(
            &read_file_bounded_cmd(&f.to_string_lossy(), 11)
                .to_shell()
                .unwrap(),
            b"",
        );
        assert_eq!(out.stdout.len(), 11);
    }

    #[test]
    fn split_words_splits_like_a_shell() {
        assert_eq!(
            split_words(r#"-o "A=b c" -o'X=y' \"q"#).unwrap(),
            vec!["-o", "A=b c", "-oX=y", "\"q"]
        );
        assert!(split_words("'open").is_err());
    }

    #[test]
    fn split_words_undoes_quote() {
        for w in [
            "plain",
            "two words",
            "it's",
            "a\\b",
            "",
            "\"q\"",
            "$HOME `x`",
        ] {
            let line = format!("{} {}", quote(w).unwrap(), quote("next").unwrap());
            assert_eq!(
                split_words(&line).unwrap(),
                vec![w.to_string(), "next".into()],
                "{line}"
            );
        }
    }

    fn sh_printf(quoted: &str) -> Vec<u8> {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {quoted}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        out.stdout
    }

    #[test]
    fn quote_matches_python_shlex() {
        // Expected values produced by Python 3's shlex.quote.
        let table: &[(&str, &str)] = &[
            ("", "''"),
            ("abc", "abc"),
            ("a b", "'a b'"),
            ("it's", r#"'it'"'"'s'"#),
            ("$(id)", "'$(id)'"),
            ("`id`", "'`id`'"),
            ("a\nb", "'a\nb'"),
            ("x;y", "'x;y'"),
            ("héllo", "'héllo'"),
            ("@%+=:,./-_", "@%+=:,./-_"),
            ("~", "'~'"),
            ("*", "'*'"),
            ("a\"b", "'a\"b'"),
            ("'", r#"''"'"''"#),
            ("-n", "-n"),
            ("if", "if"),
            ("A=b", "A=b"),
            ("tab\there", "'tab\there'"),
            ("back\\slash", "'back\\slash'"),
            ("!", "'!'"),
        ];
        for (input, expected) in table {
            assert_eq!(quote(input).unwrap(), *expected, "quote({input:?})");
        }
    }

    #[test]
    fn quote_refuses_nul() {
        assert!(matches!(quote("a\0b"), Err(CmdError::NulByte { .. })));
        let err = Cmd::raw("echo")
            .arg("x")
            .arg("a\0b")
            .to_shell()
            .unwrap_err();
        assert_eq!(
            err,
            CmdError::NulByte {
                what: "argument 2".into()
            }
        );
        // The message names the position, never the value.
        let err = Cmd::raw("echo").secret("hunter2\0").to_shell().unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn quote_round_trips_through_sh_table() {
        for s in [
            "",
            "'",
            "''",
            "a'b'c",
            "$(touch /tmp/pwned)",
            "`id`",
            "a\nb\n",
            ";rm -rf /;",
            "\\",
            "\"$HOME\"",
            "${x:-y}",
            "*?[a]",
            "~root",
            "héllo wörld ✓",
            "\t \r",
            "-n",
            "%s%d",
            "!$",
            "#comment",
            "a&b|c>d<e",
        ] {
            assert_eq!(sh_printf(&quote(s).unwrap()), s.as_bytes(), "{s:?}");
            assert_eq!(sh_printf(&single_quote(s)), s.as_bytes(), "{s:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn quote_round_trips_through_sh(s in "[^\u{0}]{0,40}") {
            prop_assert_eq!(sh_printf(&quote(&s).unwrap()), s.as_bytes());
        }

        #[test]
        fn arg_round_trips_through_sh(s in "(['\"$`\\\\;&|\n a-z]|[^\u{0}]){0,30}") {
            let line = Cmd::raw("printf %s").arg(s.clone()).to_shell().unwrap();
            let out = std::process::Command::new("sh").arg("-c").arg(line).output().unwrap();
            prop_assert_eq!(out.stdout, s.as_bytes());
        }
    }

    #[test]
    fn arg_is_always_quoted() {
        let c = Cmd::argv(["A=b", "if", "~"]);
        assert_eq!(c.to_shell().unwrap(), "'A=b' 'if' '~'");
    }

    #[test]
    fn secrets_are_masked_in_display_only() {
        let c = Cmd::raw("mysql -p")
            .secret("s3cr'et")
            .env_secret("TOKEN", "tok")
            .env("MODE", "x y");
        let real = c.to_shell().unwrap();
        assert!(real.contains(r#"'s3cr'"'"'et'"#));
        assert!(real.contains("export TOKEN='tok'"));
        let shown = c.display();
        assert!(!shown.contains("s3cr") && !shown.contains("tok"), "{shown}");
        assert!(shown.contains("mysql -p ********"));
        assert!(shown.contains("export TOKEN=********"));
        assert!(shown.contains("export MODE='x y'"));
    }

    #[test]
    fn chdir_and_env_come_first() {
        let c = Cmd::raw("pwd").chdir("/tmp/a b").env("FOO", "1");
        assert_eq!(
            c.to_shell().unwrap(),
            "cd -- '/tmp/a b' || exit 1\nexport FOO='1'\npwd"
        );
        let out = std::process::Command::new("sh")
            .args(
                Cmd::raw("echo \"$FOO\"; pwd")
                    .chdir("/")
                    .env("FOO", "x'y")
                    .wrap()
                    .unwrap()
                    .iter()
                    .skip(1),
            )
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"x'y\n/\n");
    }

    #[test]
    fn env_names_are_validated() {
        for bad in ["", "1A", "A-B", "A B", "A;rm"] {
            assert_eq!(
                Cmd::raw("true").env(bad, "v").to_shell(),
                Err(CmdError::InvalidEnvName(bad.into()))
            );
        }
        assert!(Cmd::raw("true").env("_A1", "v").to_shell().is_ok());
    }

    #[test]
    fn empty_command_is_an_error() {
        assert_eq!(Cmd::default().to_shell(), Err(CmdError::Empty));
    }

    /// A sudo password goes on stdin before a marker line, never in argv; the command's shell
    /// skips past it whether sudo read the password or not, and the command sees its own stdin.
    #[test]
    fn a_sudo_password_is_on_stdin_only_and_the_command_keeps_its_stdin() {
        let c = Cmd::raw("cat")
            .stdin(b"data\n".to_vec())
            .with_become(Become::sudo("root").with_password(Some("s3cret pw".into())));
        let argv = c.wrap().unwrap();
        assert_eq!(argv[..7], ["sudo", "-S", "-p", "", "-u", "root", "--"]);
        assert!(argv.iter().all(|a| !a.contains("s3cret")), "{argv:?}");
        let input = c.stdin_bytes().unwrap();
        assert_eq!(input, format!("s3cret pw\n{SUDO_MARK}\ndata\n").as_bytes());
        let script = &argv[argv.len() - 1];
        // sudo read the password: the shell sees the marker first.
        let asked = run_sh(script, &input[b"s3cret pw\n".len()..]);
        assert_eq!(asked.stdout, b"data\n");
        // sudo needed none: the shell sees the password line, then the marker.
        assert_eq!(run_sh(script, &input).stdout, b"data\n");
        assert!(c.get_become().is_some_and(Become::reads_stdin));
        assert!(!Become::sudo("root").reads_stdin());
    }

    #[test]
    fn wrap_plain_sudo_and_su() {
        let c = Cmd::raw("id");
        assert_eq!(c.wrap().unwrap(), ["sh", "-c", "id"]);
        let s = c.clone().with_become(Become::sudo("root"));
        assert_eq!(
            s.wrap().unwrap(),
            ["sudo", "-n", "-u", "root", "--", "sh", "-c", "id"]
        );
        assert_eq!(s.display(), "[become root via sudo] id");
        let su = c
            .clone()
            .with_become(Become::su("app", Some("pw".into())))
            .stdin(b"data".to_vec());
        assert_eq!(
            su.wrap().unwrap(),
            ["su", "-s", "/bin/sh", "app", "-c", "id"]
        );
        assert_eq!(su.stdin_bytes().unwrap(), b"pw\ndata");
        assert!(!su.display().contains("pw"));
        for bad in ["", "-root", "a b", "a\nb"] {
            assert_eq!(
                c.clone().with_become(Become::sudo(bad)).wrap(),
                Err(CmdError::InvalidBecomeUser(bad.into()))
            );
        }
    }

    #[test]
    fn wrap_line_quotes_each_word() {
        let c = Cmd::raw("echo")
            .arg("it's")
            .with_become(Become::sudo("root"));
        let line = c.wrap_line().unwrap();
        assert_eq!(
            line,
            r#"sudo -n -u root -- sh -c 'echo '"'"'it'"'"'"'"'"'"'"'"'s'"'"''"#
        );
        let c = Cmd::raw("echo").arg("it's $HOME");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(c.wrap_line().unwrap())
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"it's $HOME\n");
    }

    #[test]
    fn folders_made_under_umask_000_are_0755_not_world_writable() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("a/b/c");
        let line = format!(
            "umask 000; {}",
            mkdir_p(&deep.to_string_lossy()).to_shell().unwrap()
        );
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .status()
            .unwrap();
        assert!(st.success());
        for p in [d.path().join("a"), d.path().join("a/b"), deep] {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, 0o755, "{}", p.display());
        }
    }

    #[test]
    fn combinators_use_subshells() {
        let c = test_e("/nonexistent").or(rm_rf("/x y").chdir("/"));
        assert_eq!(
            c.to_shell().unwrap(),
            "test -e '/nonexistent' || ( cd -- '/' || exit 1\nrm -rf -- '/x y'\n)"
        );
        let bad = Cmd::raw("true").and(Cmd::raw("cat").stdin(b"x".to_vec()));
        assert_eq!(
            bad.to_shell(),
            Err(CmdError::NotNestable {
                index: 0,
                setting: "stdin"
            })
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(
                Cmd::raw("false")
                    .negate()
                    .and(Cmd::raw("echo ok"))
                    .to_shell()
                    .unwrap(),
            )
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"ok\n");
    }

    #[test]
    fn helpers_build_expected_lines() {
        assert_eq!(
            chmod("/a", 0o644).to_shell().unwrap(),
            "chmod -- '0644' '/a'"
        );
        assert_eq!(
            chmod("/a", 0o4755).to_shell().unwrap(),
            "chmod -- '4755' '/a'"
        );
        assert_eq!(
            chown("/a", Some("app"), Some("www")).to_shell().unwrap(),
            "chown -h -- 'app:www' '/a'"
        );
        assert_eq!(
            chown("/a", None, Some("www")).to_shell().unwrap(),
            "chown -h -- ':www' '/a'"
        );
        assert_eq!(chown("/a", None, None).to_shell().unwrap(), ":");
        assert_eq!(rm_rf("/a b").to_shell().unwrap(), "rm -rf -- '/a b'");
        assert_eq!(
            mv_f("/a", "/b").to_shell().unwrap(),
            "mv -f -T -- '/a' '/b'"
        );
        assert_eq!(read_file_cmd("/a").to_shell().unwrap(), "cat -- '/a'");
        let ln = ln_sf_atomic("../rel 1", "/srv/app/current")
            .to_shell()
            .unwrap();
        assert!(
            ln.starts_with("set -- '../rel 1' '/srv/app/current' '/srv/app/.current.rdeploy-ln.")
        );
        let ln = ln_sf_atomic("x", "/top").to_shell().unwrap();
        assert!(ln.contains("'/.top.rdeploy-ln."), "{ln}");
        let ln = ln_sf_atomic("x", "rel").to_shell().unwrap();
        assert!(ln.contains("'./.rel.rdeploy-ln."), "{ln}");
    }

    #[test]
    fn parse_stat_reads_each_kind() {
        let o = |s: &[u8]| Output {
            status: 0,
            stdout: s.to_vec(),
            ..Output::default()
        };
        let st = parse_stat(&o(b"kind absent\n")).unwrap();
        assert!(!st.exists());
        let st = parse_stat(&o(b"kind file\nmode 644\nuid 0\ngid 0\nowner root\ngroup root\nsize 3\nsha256 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n")).unwrap();
        assert_eq!(st.kind, PathKind::File);
        assert_eq!(st.mode, 0o644);
        assert!(st.owner_is("root") && st.owner_is("0") && !st.owner_is("1"));
        let st = parse_stat(&o(b"kind link\nmode 777\nuid 0\ngid 0\nowner root\ngroup root\nsize 5\ntarget a\ntarget b\n")).unwrap();
        assert_eq!(
            st.kind,
            PathKind::Link {
                target: "a\ntarget b".into()
            }
        );
        assert!(matches!(
            parse_stat(&o(b"kind file\nmode xyz\n")),
            Err(StatError::Malformed(_))
        ));
        assert!(matches!(parse_stat(&o(b"")), Err(StatError::Malformed(_))));
        assert!(matches!(
            parse_stat(&Output {
                status: 3,
                ..Output::default()
            }),
            Err(StatError::Failed { status: 3, .. })
        ));
    }

    #[test]
    fn user_script_with_path_passes_the_path_as_a_parameter() {
        let c = user_script_with_path("printf '%%s|' %s x%s", "/tmp/a b'c");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(c.to_shell().unwrap())
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"/tmp/a b'c|x/tmp/a b'c|");
    }

    #[test]
    fn realpath_cmd_agrees_with_readlink_f() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("real/sub")).unwrap();
        std::fs::write(d.join("real/f"), b"x").unwrap();
        std::os::unix::fs::symlink("real", d.join("lnk")).unwrap();
        std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
        let p = d.to_string_lossy();
        for path in [
            format!("{p}/lnk/sub"),
            format!("{p}/lnk/f"),
            format!("{p}/lnk"),
            format!("{p}/real/sub/.."),
            format!("{p}/lnk/sub/"),
            format!("{p}//lnk///f"),
            format!("{p}/missing/x"),
            format!("{p}/real/missing"),
            format!("{p}/lnk/missing"),
            format!("{p}/real/f/x"),
            format!("{p}/missing/a/b"),
            format!("{p}/dangling/x"),
            format!("{p}/dangling"),
            "relative-missing".to_string(),
            "missing-folder/x".to_string(),
            "/".to_string(),
        ] {
            let ours = run_sh(&realpath_cmd(&path).to_shell().unwrap(), b"");
            let theirs = std::process::Command::new("readlink")
                .args(["-f", "--", &path])
                .output()
                .unwrap();
            assert_eq!(ours.stdout, theirs.stdout, "{path}");
            assert_eq!(ours.status.code(), theirs.status.code(), "{path}");
        }
        // A path in a missing folder (a fresh host) is answered without readlink.
        let bin = d.join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(
            bin.join("readlink"),
            "#!/bin/sh\necho readlink ran >&2\nexit 99\n",
        )
        .unwrap();
        std::fs::set_permissions(
            bin.join("readlink"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let ours = run_sh(
            &format!(
                "PATH='{}'\n{}",
                bin.display(),
                realpath_cmd(&format!("{p}/missing/a/b"))
                    .to_shell()
                    .unwrap()
            ),
            b"",
        );
        assert_eq!(ours.status.code(), Some(1), "{ours:?}");
        assert!(ours.stdout.is_empty() && ours.stderr.is_empty(), "{ours:?}");
    }

    #[test]
    fn stat_resolved_follows_links() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        std::fs::write(&target, b"abc").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink("t", &link).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(
                stat_resolved_cmd(&link.to_string_lossy())
                    .to_shell()
                    .unwrap(),
            )
            .output()
            .unwrap();
        let st = parse_stat(&Output {
            status: out.status.code().unwrap_or(1),
            stdout: out.stdout,
            ..Output::default()
        })
        .unwrap();
        assert_eq!(st.kind, PathKind::File);
        assert_eq!(st.size, 3);
        assert!(st.sha256.is_some());
        // Attributes only: no hash; a missing path is absent, whether its folder exists or not.
        for (path, kind) in [
            (link.clone(), PathKind::File),
            (dir.path().join("missing"), PathKind::Absent),
            (dir.path().join("no/such"), PathKind::Absent),
        ] {
            let out = run_sh(
                &stat_resolved_attrs_cmd(&path.to_string_lossy())
                    .to_shell()
                    .unwrap(),
                b"",
            );
            let st = parse_stat(&Output {
                status: out.status.code().unwrap_or(1),
                stdout: out.stdout,
                ..Output::default()
            })
            .unwrap();
            assert_eq!(st.kind, kind, "{}", path.display());
            assert!(st.sha256.is_none());
        }
    }

    #[test]
    fn stat_content_sends_the_text_only_when_it_differs() {
        use sha2::{Digest, Sha256};
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"old\ncontent\nline").unwrap();
        let same = hex::encode(Sha256::digest(b"old\ncontent\nline"));
        let stat = |path: &std::path::Path, unless: Option<&str>| {
            let out = run_sh(
                &stat_content_cmd(&path.to_string_lossy(), unless, 100)
                    .to_shell()
                    .unwrap(),
                b"",
            );
            parse_stat_content(&Output {
                status: out.status.code().unwrap_or(1),
                stdout: out.stdout,
                ..Output::default()
            })
            .unwrap()
        };
        let (st, content) = stat(&f, Some(&same));
        assert_eq!((st.kind, st.size), (PathKind::File, 16));
        assert_eq!(st.sha256.as_deref(), Some(same.as_str()));
        assert_eq!(content, None, "in sync: no content");
        let (_, content) = stat(&f, Some(&"0".repeat(64)));
        assert_eq!(content.as_deref(), Some(&b"old\ncontent\nline"[..]));
        assert_eq!(
            stat(&f, None).1.as_deref(),
            Some(&b"old\ncontent\nline"[..])
        );
        // A link's target may hold the marker: it is the target, not content.
        let l = dir.path().join("l");
        std::os::unix::fs::symlink("a\ncontent\nb", &l).unwrap();
        let (st, content) = stat(&l, None);
        assert_eq!(
            st.kind,
            PathKind::Link {
                target: "a\ncontent\nb".into()
            }
        );
        assert_eq!(content, None);
        // Absent: nothing.
        let (st, content) = stat(&dir.path().join("none"), None);
        assert_eq!((st.kind, content), (PathKind::Absent, None));
    }

    #[test]
    fn a_batch_of_stat_helpers_stats_and_hashes_with_one_process_each_and_says_the_same() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a"), b"alpha").unwrap();
        std::fs::write(d.join("b c"), b"beta").unwrap();
        std::fs::write(d.join("tab\there"), b"tab").unwrap();
        std::fs::create_dir(d.join("dir")).unwrap();
        std::os::unix::fs::symlink("a", d.join("link")).unwrap();
        let fifo = d.join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        // Shims count how often stat and sha256sum start.
        let bin = d.join("bin");
        std::fs::create_dir(&bin).unwrap();
        for tool in ["stat", "sha256sum"] {
            let shim = bin.join(tool);
            std::fs::write(
                &shim,
                format!(
                    "#!/bin/sh\necho {tool} >> {}/calls\nexec /usr/bin/{tool} \"$@\"\n",
                    d.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let p = |n: &str| d.join(n).to_string_lossy().into_owned();
        let cmds = vec![
            stat_cmd(&p("a")),
            stat_content_cmd(&p("b c"), Some(&"0".repeat(64)), 100),
            stat_attrs_cmd(&p("dir")),
            stat_cmd(&p("link")),
            stat_cmd(&p("missing")),
            stat_cmd(&p("tab\there")),
            stat_cmd(&p("fifo")),
            stat_resolved_cmd(&p("link")),
            // Changed after it was made: the batch must run its whole script, not the call.
            stat_cmd("b c").chdir(d.to_string_lossy()),
        ];
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let run = |script: String, stdin: &[u8]| {
            let out = run_sh(&format!("PATH='{path}'; export PATH\n{script}"), stdin);
            Output {
                status: out.status.code().unwrap_or(-1),
                stdout: out.stdout,
                stderr: out.stderr,
                truncated: Truncated::default(),
            }
        };
        let alone: Vec<Output> = cmds
            .iter()
            .map(|c| run(c.to_shell().unwrap(), b""))
            .collect();
        let calls = || std::fs::read_to_string(d.join("calls")).unwrap_or_default();
        let count = |tool: &str| calls().lines().filter(|l| *l == tool).count();
        let (alone_stat, alone_hash) = (count("stat"), count("sha256sum"));
        std::fs::remove_file(d.join("calls")).unwrap();
        let batch = Cmd::batch(&cmds).unwrap();
        let out = run(
            batch.cmd.to_shell().unwrap(),
            format!("{}\n", batch.nonce).as_bytes(),
        );
        let together = batch.parse(&out).unwrap();
        assert_eq!(together.len(), cmds.len());
        // The helpers' script is sent once (a shell function), not once per helper.
        let text = batch.cmd.to_shell().unwrap();
        assert_eq!(text.matches("cannot search directory").count(), 2, "{text}");
        assert!(
            alone[8].stdout.starts_with(b"kind file\n"),
            "{:?}",
            alone[8]
        );
        for (i, (a, t)) in alone.iter().zip(&together).enumerate() {
            assert_eq!(
                String::from_utf8_lossy(&a.stdout),
                String::from_utf8_lossy(&t.stdout),
                "helper {i}"
            );
            assert_eq!(a.status, t.status, "helper {i}");
        }
        // Alone: a stat per existing path (and the resolved link); together: the table, and
        // the tab path's own and the one run from another folder (the resolved link's
        // target, `a`, is in the table).
        assert_eq!((alone_stat, alone_hash), (8, 5), "{}", calls());
        assert_eq!((count("stat"), count("sha256sum")), (3, 3), "{}", calls());
        // Nothing there yet (a fresh host): no process at all.
        let fresh = Cmd::batch(&[stat_cmd(&p("new1")), stat_cmd(&p("new2"))]).unwrap();
        let out = run(
            fresh.cmd.to_shell().unwrap(),
            format!("{}\n", fresh.nonce).as_bytes(),
        );
        let outs = fresh.parse(&out).unwrap();
        assert!(outs.iter().all(|o| o.stdout == b"kind absent\n"));
        assert_eq!((count("stat"), count("sha256sum")), (3, 3), "{}", calls());
    }

    #[test]
    fn a_stat_table_line_keeps_names_with_spaces() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"12345").unwrap();
        let f = f.to_string_lossy().into_owned();
        // A table as the batch writes it, with an AD-style group name.
        let script = format!(
            "st_t_='{f}\t640\t1000\t1001\talice\tdomain users\t5'\n{}",
            stat_attrs_cmd(&f).to_shell().unwrap()
        );
        let out = run_sh(&script, b"");
        let st = parse_stat(&Output {
            status: out.status.code().unwrap_or(1),
            stdout: out.stdout,
            ..Output::default()
        })
        .unwrap();
        assert_eq!(
            (
                st.mode,
                st.uid,
                st.gid,
                st.owner.as_str(),
                st.group.as_str(),
                st.size
            ),
            (0o640, 1000, 1001, "alice", "domain users", 5)
        );
    }

    #[test]
    fn batch_nonces_differ() {
        let a = Cmd::batch(&[Cmd::raw("true")]).unwrap();
        let b = Cmd::batch(&[Cmd::raw("true")]).unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_eq!(a.nonce.len(), 32);
    }

    #[test]
    fn batch_rejects_nested_settings() {
        let err = Cmd::batch(&[
            Cmd::raw("true"),
            Cmd::raw("id").with_become(Become::sudo("x")),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            CmdError::NotNestable {
                index: 1,
                setting: "become"
            }
        );
    }

    #[test]
    fn batch_parse_rejects_truncated_and_forged_output() {
        let b = Cmd::batch(&[Cmd::raw("true")]).unwrap();
        let start = format!("RDEPLOY-BATCH {} start\n", b.nonce);
        let out = Output {
            status: 0,
            stdout: format!("{start}ab").into_bytes(),
            stderr: start.clone().into_bytes(),
            ..Output::default()
        };
        assert!(matches!(
            b.parse(&out),
            Err(BatchError::Incomplete { parsed: 0, .. })
        ));
        let out = Output {
            truncated: Truncated {
                stdout: 1,
                stderr: 0,
            },
            ..out
        };
        assert!(matches!(
            b.parse(&out),
            Err(BatchError::Truncated { dropped: 1 })
        ));
        // Another batch's nonce is not accepted.
        let other = Cmd::batch(&[Cmd::raw("true")]).unwrap();
        let framed = |n: &str| {
            Output {
            stdout: format!(
                "noise\nRDEPLOY-BATCH {n} start\nab\nRDEPLOY-BATCH {n} 0 3\nRDEPLOY-BATCH-END {n} 1\n"
            )
            .into_bytes(),
            stderr: format!("RDEPLOY-BATCH {n} start\ne\nRDEPLOY-BATCH {n} 0\n").into_bytes(),
            ..Output::default()
        }
        };
        assert!(b.parse(&framed(&other.nonce)).is_err());
        let parts = other.parse(&framed(&other.nonce)).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].status, 3);
        assert_eq!(parts[0].stdout, b"ab");
        assert_eq!(parts[0].stderr, b"e");
    }

    #[test]
    fn batch_runs_each_command_in_a_subshell_that_cannot_see_the_nonce() {
        let b = Cmd::batch(&[
            Cmd::raw(r#"printf '%s|' "$n_"; cd /; x_=1; exit 4"#),
            Cmd::raw(r#"printf '%s|%s' "$x_" "$(pwd)" ; printf e >&2"#).chdir("/tmp"),
            Cmd::raw("if then"),
        ])
        .unwrap();
        let line = b.cmd.to_shell().unwrap();
        assert!(
            !line.contains(&b.nonce),
            "the nonce is not in the command line"
        );
        let out = run_sh(&line, &b.cmd.stdin_bytes().unwrap());
        let parts = b
            .parse(&Output {
                status: out.status.code().unwrap_or(-1),
                stdout: out.stdout,
                stderr: out.stderr,
                ..Output::default()
            })
            .unwrap();
        assert_eq!(parts[0].stdout, b"|");
        assert_eq!(parts[0].status, 4);
        assert_eq!(parts[1].stdout, b"|/tmp");
        assert_eq!(parts[1].stderr, b"e");
        assert_eq!(
            parts[2].status, 2,
            "a syntax error stays in its sub-command"
        );
    }

    #[test]
    fn after_runs_the_preamble_first_and_the_command_only_if_it_succeeded() {
        let main = Cmd::raw("printf 'main:'; cat; printf x >&2").stdin(b"in".to_vec());
        let (c, p) = main.after(&Cmd::raw("printf pre; printf pe >&2")).unwrap();
        let out = run_sh(&c.to_shell().unwrap(), &c.stdin_bytes().unwrap());
        let out = Output {
            status: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
            ..Output::default()
        };
        match p.split(out) {
            PreambleSplit::Ran { pre, main } => {
                assert_eq!(pre.stdout, b"pre");
                assert_eq!(pre.stderr, b"pe");
                assert_eq!(main.stdout, b"main:in");
                assert_eq!(main.stderr, b"x");
                assert_eq!(main.status, 0);
            }
            other => panic!("{other:?}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("ran");
        let main = Cmd::raw("touch --").arg(flag.to_string_lossy());
        let (c, p) = main.after(&Cmd::raw("echo no >&2; exit 3")).unwrap();
        let out = run_sh(&c.to_shell().unwrap(), b"");
        assert_eq!(out.status.code(), Some(97));
        let out = Output {
            status: 97,
            stdout: out.stdout,
            stderr: out.stderr,
            ..Output::default()
        };
        match p.split(out) {
            PreambleSplit::PreFailed(o) => {
                assert_eq!(o.status, 3);
                assert_eq!(o.stderr, b"no\n");
            }
            other => panic!("{other:?}"),
        }
        assert!(!flag.exists(), "the command did not run");
        assert!(
            Cmd::raw("true")
                .after(&Cmd::raw("cat").stdin(b"x".to_vec()))
                .is_err()
        );
    }
}
