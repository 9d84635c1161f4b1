//! Helpers shared by the file modules: one-round-trip batches, stat and content reads, desired
//! attributes (mode/owner/group) versus what is on the host, and the one way content is written
//! (`backup` → `tr.put` to the destination or to a temporary file that `validate` checks → `mv`).
//!
//! Owns the conventions every file module follows: a missing owner/group on an existing file is
//! preserved (numeric ids are passed to `put`, like Ansible's `atomic_move`), `chmod` comes after
//! `chown` (changing the owner clears setuid/setgid), and content is never truncated in place.
//! It must not format shell lines (fixed scripts go through `Cmd::raw`, values through
//! `.arg()`), and must not read the run mode.

use serde_json::Value;

use crate::modules::runtime::{
    Args, ArgsExt, Change, HostView, ModuleCtx, ModuleError, parse_mode,
};
use crate::transport::cmd::{
    self, Cmd, PathKind, PathState, chmod, chown, mv_f, parse_stat, rm_rf, user_script_with_path,
};
use crate::transport::{AnyTransport, FileAttrs, Output, Payload, Put, Transport, TransportError};

/// Bytes kept from the start and from the end of a batched file read. A file bigger than twice
/// this is refused by the modules that edit text (the transport keeps 1 MiB of each end).
pub const READ_KEEP: u64 = 480 * 1024;

/// Largest existing content read only to show a `--diff` (copy, template).
pub const DIFF_MAX: u64 = 64 * 1024;

/// A failure on the host with no command output to register.
pub fn failed(msg: impl Into<String>) -> ModuleError {
    ModuleError::Failed {
        msg: msg.into(),
        result: Args::new(),
    }
}

/// Runs `cmds` as ONE round trip (a [`Cmd::batch`] keeping `keep` bytes of each stream's ends)
/// with the task's become/environment/timeout, and splits the outputs back.
pub async fn run_batch(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    cmds: &[Cmd],
    keep: u64,
) -> Result<Vec<Output>, ModuleError> {
    ctx.read(tr, cmds, keep)
        .await?
        .map_err(|e| failed(format!("reading the host's state failed: {e}")))
}

/// The first output of a batch, or an error (a batch always returns one output per command).
pub fn take(outs: &mut std::vec::IntoIter<Output>) -> Result<Output, ModuleError> {
    outs.next()
        .ok_or_else(|| failed("batch returned fewer outputs than commands"))
}

/// Parses a [`cmd::stat_cmd`] output for `path`.
pub fn stat_of(out: &Output, path: &str) -> Result<PathState, ModuleError> {
    parse_stat(out).map_err(|e| failed(format!("{path}: {e}")))
}

/// Parses a [`cmd::stat_content_cmd`] output for `path`: the state, and the content when the
/// host sent it.
pub fn stat_content_of(
    out: &Output,
    path: &str,
) -> Result<(PathState, Option<Vec<u8>>), ModuleError> {
    cmd::parse_stat_content(out).map_err(|e| failed(format!("{path}: {e}")))
}

/// `readlink -f -- PATH` (the path after following every symlink). See [`cmd::realpath_cmd`]:
/// no process for a path that exists and is not a symlink.
pub fn realpath_cmd(path: &str) -> Cmd {
    cmd::realpath_cmd(path)
}

/// The content a diff-read returned, if it is all there and is text.
pub fn diff_text(content: &[u8]) -> Option<String> {
    if content.len() as u64 > DIFF_MAX {
        return None;
    }
    as_text(content)
}

/// `bytes` as text, if it is UTF-8 without NUL bytes.
pub fn as_text(bytes: &[u8]) -> Option<String> {
    if bytes.contains(&0) {
        return None;
    }
    String::from_utf8(bytes.to_vec()).ok()
}

/// How content is shown in a [`Change::Content`]'s `after`: the text, or a one-line description.
pub fn shown_after(data: &[u8]) -> String {
    match as_text(data) {
        Some(t) if data.len() as u64 <= DIFF_MAX => t,
        _ => format!(
            "<{} bytes, sha256 {}>",
            data.len(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data))
        ),
    }
}

/// [`shown_after`] for a controller-side source: a file streamed from disk is described by its
/// length and sha256 (too big for a diff) without being read again.
pub fn shown_content(c: &crate::modules::source::Content) -> String {
    match c.bytes() {
        Some(b) => shown_after(b),
        None => format!("<{} bytes, sha256 {}>", c.len(), c.sha256()),
    }
}

/// sha256 of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data))
}

/// sha1 of `data`, lowercase hex (Ansible's `checksum`).
pub fn sha1_hex(data: &[u8]) -> String {
    hex::encode(<sha1::Sha1 as sha1::Digest>::digest(data))
}

/// The word Ansible uses for a path's kind (`file`, `directory`, `link`, `absent`...).
pub fn kind_word(kind: &PathKind) -> &'static str {
    match kind {
        PathKind::Absent => "absent",
        PathKind::File => "file",
        PathKind::Directory => "directory",
        PathKind::Link { .. } => "link",
        PathKind::Other => "other",
    }
}

/// `0644`-style text for a mode, as Ansible returns it.
pub fn mode_text(mode: u32) -> String {
    format!("{mode:04o}")
}

/// The parent directory of a host path (`/` for `/x`, `.` for a bare name).
pub fn parent_of(path: &str) -> &str {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
        None => ".",
    }
}

/// The last component of a path, ignoring trailing slashes.
pub fn basename(path: &str) -> &str {
    let t = path.trim_end_matches('/');
    t.rsplit_once('/').map_or(t, |(_, b)| b)
}

/// `dir/name` without doubling the slash.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The `mode`, `owner` and `group` a task asks for.
#[derive(Clone, Debug, Default)]
pub struct WantAttrs {
    /// `mode` as written (int, octal string or symbolic); `preserve` is resolved by copy.
    pub mode: Option<Value>,
    /// Owner name or id.
    pub owner: Option<String>,
    /// Group name or id.
    pub group: Option<String>,
}

impl WantAttrs {
    /// `mode`/`owner`/`group` from the task's arguments.
    pub fn from_args(args: &Args) -> WantAttrs {
        WantAttrs {
            mode: args.get("mode").filter(|v| !v.is_null()).cloned(),
            owner: args.str_arg("owner"),
            group: args.str_arg("group"),
        }
    }

    /// The wanted mode given the current one (symbolic modes apply to it), if a mode was asked.
    pub fn mode_for(&self, current: u32, is_dir: bool) -> Result<Option<u32>, ModuleError> {
        self.mode
            .as_ref()
            .map(|m| parse_mode(m, Some(current), is_dir))
            .transpose()
    }

    /// What must change on the existing `cur` (at `subject`) to match. Links get owner/group
    /// only (`chown -h`); a link's mode is meaningless on Linux.
    pub fn diff(&self, subject: &str, cur: &PathState) -> Result<AttrFix, ModuleError> {
        let mut fix = AttrFix::default();
        let is_link = matches!(cur.kind, PathKind::Link { .. });
        if let Some(o) = &self.owner
            && !cur.owner_is(o)
        {
            fix.changes
                .push(attr(subject, "owner", cur.owner.clone(), o.clone()));
            fix.owner = Some(o.clone());
        }
        if let Some(g) = &self.group
            && !cur.group_is(g)
        {
            fix.changes
                .push(attr(subject, "group", cur.group.clone(), g.clone()));
            fix.group = Some(g.clone());
        }
        if !is_link
            && let Some(m) = self.mode_for(cur.mode, cur.kind == PathKind::Directory)?
            && m != cur.mode & 0o7777
        {
            fix.changes.push(attr(
                subject,
                "mode",
                mode_text(cur.mode & 0o7777),
                mode_text(m),
            ));
            fix.mode = Some(m);
        }
        Ok(fix)
    }

    /// Attributes for `put` when writing content at a path whose current state is `cur`: what
    /// was asked, else what the existing regular file has (owner and group kept like Ansible's
    /// `atomic_move`: when neither is asked, as far as the writing user may set them,
    /// [`FileAttrs::keep`]), else the transport's default (`0644`, the connecting user).
    pub fn put_attrs(&self, cur: &PathState) -> Result<FileAttrs, ModuleError> {
        let existing = cur.kind == PathKind::File;
        let keep = existing && self.owner.is_none() && self.group.is_none();
        let base = if existing { cur.mode & 0o7777 } else { 0o644 };
        let mode = self.mode_for(base, false)?.or(existing.then_some(base));
        let owner = self
            .owner
            .clone()
            .or_else(|| existing.then(|| cur.uid.to_string()));
        let group = self
            .group
            .clone()
            .or_else(|| existing.then(|| cur.gid.to_string()));
        Ok(FileAttrs {
            mode,
            owner,
            group,
            become_: None,
            keep,
        })
    }
}

/// An [`Change::Attr`].
pub fn attr(
    subject: &str,
    what: &str,
    before: impl Into<String>,
    after: impl Into<String>,
) -> Change {
    Change::Attr {
        subject: subject.to_string(),
        what: what.to_string(),
        before: before.into(),
        after: after.into(),
    }
}

/// Attribute changes found by [`WantAttrs::diff`], applied by [`AttrFix::apply`].
#[derive(Clone, Debug, Default)]
pub struct AttrFix {
    /// New mode.
    pub mode: Option<u32>,
    /// New owner.
    pub owner: Option<String>,
    /// New group.
    pub group: Option<String>,
    /// The same, for the report.
    pub changes: Vec<Change>,
}

impl AttrFix {
    /// Whether nothing needs changing.
    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.owner.is_none() && self.group.is_none()
    }

    /// `chown -h` then `chmod` (chmod last: chown clears setuid/setgid), as one command; `None`
    /// when nothing needs changing.
    pub fn cmd(&self, path: &str) -> Option<Cmd> {
        match (self.owner.is_some() || self.group.is_some(), self.mode) {
            (false, None) => None,
            (true, None) => Some(chown(path, self.owner.as_deref(), self.group.as_deref())),
            (false, Some(m)) => Some(chmod(path, m)),
            (true, Some(m)) => {
                Some(chown(path, self.owner.as_deref(), self.group.as_deref()).and(chmod(path, m)))
            }
        }
    }

    /// Runs [`AttrFix::cmd`] on the host.
    pub async fn apply(
        &self,
        tr: &mut AnyTransport,
        ctx: &ModuleCtx<'_>,
        path: &str,
    ) -> Result<(), ModuleError> {
        match self.cmd(path) {
            Some(c) => ctx.run_ok(tr, c).await.map(|_| ()),
            None => Ok(()),
        }
    }
}

/// How content reaches its destination.
#[derive(Clone, Debug)]
pub struct WriteSpec {
    /// The destination (replaced by rename; a symlink there is replaced, not followed).
    pub dest: String,
    /// Mode/owner/group set on the new file before it is renamed into place.
    pub attrs: FileAttrs,
    /// Ansible's `validate`: run on the temporary file (`%s`) before it is moved in.
    pub validate: Option<String>,
    /// Keep a timestamped copy of the current `dest` first (only when it is a regular file).
    pub backup: bool,
}

/// Checks a `validate` argument: Ansible requires `%s`.
pub fn validate_arg(args: &Args) -> Result<Option<String>, ModuleError> {
    validate_text(args.str_arg("validate"))
}

/// A `validate` command as given: it must name the temporary file with `%s`.
pub fn validate_text(validate: Option<String>) -> Result<Option<String>, ModuleError> {
    match validate {
        None => Ok(None),
        Some(v) if v.contains("%s") => Ok(Some(v)),
        Some(v) => Err(ModuleError::Args(format!("validate must contain %s: {v}"))),
    }
}

/// Ansible's `backup_local`: copies `path` to `PATH.PID.YYYY-MM-DD@HH:MM:SS~` next to it (the
/// shell's pid, the host's local time) and prints the backup's name.
pub fn backup_cmd(path: &str) -> Cmd {
    Cmd::raw("set --")
        .arg(path)
        .op(r#"; b_="$1.$$.$(date +%Y-%m-%d@%H:%M:%S)~"; cp -p -- "$1" "$b_" && printf '%s' "$b_""#)
}

/// A temporary name next to `dest` for content that `validate` checks before the move.
pub fn temp_next_to(dest: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let name = format!(
        ".{}.rdeploy-validate.{}.{}{nanos:09}",
        basename(dest),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    join(parent_of(dest), &name)
}

/// Writes `data` as `spec` says; returns the backup's path when one was made. Without
/// `validate`, one atomic `put` onto `dest`; with it, `put` to a temporary file in the same
/// directory, the validate command, then `mv -f -T` over `dest` (the temporary file is removed
/// when validation fails).
pub async fn write_file(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    data: Payload<'_>,
    spec: &WriteSpec,
) -> Result<Written, ModuleError> {
    let backup = if spec.backup {
        let out = ctx.run_ok(tr, backup_cmd(&spec.dest)).await?;
        Some(out.stdout_lossy().into_owned())
    } else {
        None
    };
    let Some(validate) = &spec.validate else {
        let put = put(tr, ctx, data, &spec.dest, &spec.attrs).await?;
        return Ok(Written::new(backup, put, &spec.dest));
    };
    let tmp = temp_next_to(&spec.dest);
    let put = put(tr, ctx, data, &tmp, &spec.attrs).await?;
    validate_and_move(tr, ctx, validate, &tmp, &spec.dest).await?;
    Ok(Written::new(backup, put, &spec.dest))
}

/// What [`write_file`] did besides writing: the backup it kept, and a note when the replaced
/// file's owner/group could not be kept.
#[derive(Debug, Default)]
pub struct Written {
    /// The `backup: true` copy's path.
    pub backup: Option<String>,
    /// Shown as the result's `msg` (with `-v`): the replaced file's owner/group were not kept.
    pub note: Option<String>,
}

impl Written {
    fn new(backup: Option<String>, put: Put, dest: &str) -> Written {
        Written {
            backup,
            note: put.not_kept.map(|now| not_kept_note(dest, &now)),
        }
    }

    /// Puts the backup under `backup_key` and the note in `msg` (after the module's own).
    pub fn record(self, result: &mut Args, backup_key: &str) {
        if let Some(b) = self.backup {
            result.insert(backup_key.into(), Value::from(b));
        }
        if let Some(n) = self.note {
            let msg = match result.get("msg").and_then(Value::as_str) {
                Some(m) if !m.is_empty() => format!("{m}; {n}"),
                _ => n,
            };
            result.insert("msg".into(), Value::from(msg));
        }
    }
}

/// Why a replaced file's owner/group changed although the task named neither.
pub fn not_kept_note(dest: &str, now: &str) -> String {
    format!(
        "{dest} is now owned by {now}: the login user may not give it the owner and group of the file it replaced, so it kept what the rename allows (as Ansible does); name owner/group with become to set them"
    )
}

/// Runs `validate` on `tmp` (already written next to `dest`), then renames it over `dest`;
/// removes `tmp` when either step fails.
pub async fn validate_and_move(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    validate: &str,
    tmp: &str,
    dest: &str,
) -> Result<(), ModuleError> {
    let out = ctx.run(tr, user_script_with_path(validate, tmp)).await;
    let ok = matches!(&out, Ok(o) if o.success());
    if !ok {
        // Best effort: the temporary file must not stay behind.
        let _ = ctx.run(tr, rm_rf(tmp)).await;
        return match out {
            Err(e) => Err(e),
            Ok(o) => Err(ModuleError::Failed {
                msg: format!(
                    "failed to validate: rc:{} error:{}",
                    o.status,
                    o.stderr_lossy().trim_end()
                ),
                result: crate::modules::runtime::output_result(&o),
            }),
        };
    }
    if let Err(e) = ctx.run_ok(tr, mv_f(tmp, dest)).await {
        let _ = ctx.run(tr, rm_rf(tmp)).await;
        return Err(e);
    }
    Ok(())
}

/// `put` under the task's `become`.
async fn put(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    data: Payload<'_>,
    path: &str,
    attrs: &FileAttrs,
) -> Result<Put, ModuleError> {
    let attrs = FileAttrs {
        become_: attrs.become_.clone().or_else(|| ctx.become_.clone()),
        ..attrs.clone()
    };
    tr.put(data, path, &attrs).await.map_err(|e| match e {
        TransportError::Io(m) | TransportError::Protocol(m) => failed(m),
        other => ModuleError::Transport(other),
    })
}

/// A text file read for an in-place edit (`lineinfile`, `blockinfile`, `replace`), following a
/// symlink at its path like Ansible does (the real file is edited; the link stays).
#[derive(Clone, Debug)]
pub struct TextFile {
    /// The path after following symlinks (where the new content is written).
    pub real: String,
    /// The state of `real`.
    pub state: PathState,
    /// Its content, `None` when absent.
    pub bytes: Option<Vec<u8>>,
    /// Its parent directory exists (the path could be resolved).
    pub parent_exists: bool,
}

/// Reads `path` for an edit in ONE round trip: realpath, stat of the real file, content. Fails
/// on a directory or special file, or a file too big to edit here.
pub async fn read_text_file(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    path: &str,
) -> Result<TextFile, ModuleError> {
    let cmds = [
        realpath_cmd(path),
        cmd::stat_resolved_attrs_cmd(path),
        cmd::read_following_cmd(path),
    ];
    let mut outs = run_batch(tr, ctx, &cmds, READ_KEEP).await?.into_iter();
    let (real_out, stat_out, read_out) = (take(&mut outs)?, take(&mut outs)?, take(&mut outs)?);
    let real = real_out.stdout_lossy().trim_end_matches('\n').to_string();
    let parent_exists = real_out.success() && !real.is_empty();
    let (real, state) = if parent_exists {
        (real, stat_of(&stat_out, path)?)
    } else {
        // The parent does not exist: nothing to follow, the file is absent.
        (path.to_string(), PathState::absent())
    };
    match state.kind {
        PathKind::Absent => Ok(TextFile {
            real,
            state,
            bytes: None,
            parent_exists,
        }),
        PathKind::File => {
            if read_out.truncated.stdout > 0 || read_out.status != 0 {
                return Err(failed(format!(
                    "{path}: cannot read it whole ({} bytes; at most {} can be edited)",
                    state.size,
                    2 * READ_KEEP
                )));
            }
            Ok(TextFile {
                real,
                state,
                bytes: Some(read_out.stdout),
                parent_exists,
            })
        }
        PathKind::Directory => Err(failed(format!("Path {path} is a directory !"))),
        _ => Err(failed(format!("Path {path} is not a regular file"))),
    }
}

/// What an in-place edit module carries from `check` to `apply`.
#[derive(Clone, Debug)]
pub struct EditPlan {
    /// New content, when it changes.
    pub data: Option<Vec<u8>>,
    /// Where and how it is written.
    pub write: WriteSpec,
    /// Create the parent directory first (`create: yes` on a missing file).
    pub mkdir_parent: bool,
    /// Attribute fixes when the content does not change.
    pub fix: AttrFix,
}

/// The verdict of an in-place edit: `new` is the edited content (`None` when the module decided
/// nothing changes, e.g. an absent file with `state: absent`). Attributes are compared when the
/// file exists or is created.
pub fn edit_verdict(
    path: &str,
    tf: &TextFile,
    new: Option<Vec<u8>>,
    args: &Args,
    msg: String,
    result: Args,
) -> Result<crate::modules::runtime::Verdict, ModuleError> {
    let opts = EditOpts {
        want: WantAttrs::from_args(args),
        validate: validate_arg(args)?,
        backup: args.bool_arg("backup", false)?,
    };
    edit_verdict_with(path, tf, new, &opts, msg, result)
}

/// What a typed edit module's arguments say about how the file is written.
#[derive(Clone, Debug, Default)]
pub struct EditOpts {
    /// `mode`, `owner`, `group`.
    pub want: WantAttrs,
    /// `validate`, already checked ([`validate_text`]).
    pub validate: Option<String>,
    /// `backup`: keep a timestamped copy of a regular file next to it.
    pub backup: bool,
}

/// [`edit_verdict`] with the arguments already read ([`EditOpts`]).
pub fn edit_verdict_with(
    path: &str,
    tf: &TextFile,
    new: Option<Vec<u8>>,
    opts: &EditOpts,
    msg: String,
    mut result: Args,
) -> Result<crate::modules::runtime::Verdict, ModuleError> {
    use crate::modules::runtime::{Drift, Verdict};
    let want = &opts.want;
    let content_changes = new.as_ref().is_some_and(|n| tf.bytes.as_ref() != Some(n));
    let data = if content_changes { new } else { None };
    let mut changes = Vec::new();
    if let Some(d) = &data {
        changes.push(Change::Content {
            path: path.to_string(),
            before: tf.bytes.as_deref().and_then(as_text),
            after: shown_after(d),
        });
    }
    let fix = if tf.state.exists() && data.is_none() {
        want.diff(path, &tf.state)?
    } else {
        AttrFix::default()
    };
    if data.is_some() && tf.state.exists() {
        // Written by put with the wanted attributes: report what changes.
        changes.extend(want.diff(path, &tf.state)?.changes);
    }
    changes.extend(fix.changes.iter().cloned());
    let mut msg = msg;
    if !fix.is_empty() {
        if !msg.is_empty() {
            msg.push_str(" and ");
        }
        msg.push_str("ownership, perms or SE linux context changed");
    }
    result.insert("msg".into(), Value::from(msg));
    if changes.is_empty() {
        return Ok(Verdict::InSync { result });
    }
    let plan = EditPlan {
        write: WriteSpec {
            dest: tf.real.clone(),
            attrs: want.put_attrs(&tf.state)?,
            validate: opts.validate.clone(),
            backup: opts.backup && tf.state.kind == PathKind::File,
        },
        mkdir_parent: !tf.state.exists() && !tf.parent_exists,
        data,
        fix,
    };
    Ok(Verdict::Drift(Drift::new(changes, (plan, result))))
}

/// Applies an [`EditPlan`]; returns the result with `backup_key` set when a backup was made.
pub async fn edit_apply(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    drift: &crate::modules::runtime::Drift,
    backup_key: &str,
) -> Result<Args, ModuleError> {
    let (plan, result) = drift
        .plan::<(EditPlan, Args)>()
        .ok_or_else(|| ModuleError::Args("internal: foreign drift plan".into()))?;
    let mut result = result.clone();
    if let Some(data) = &plan.data {
        if plan.mkdir_parent {
            ctx.run_ok(tr, cmd::mkdir_p(parent_of(&plan.write.dest)))
                .await?;
        }
        write_file(tr, ctx, Payload::Bytes(data), &plan.write)
            .await?
            .record(&mut result, backup_key);
    } else {
        plan.fix.apply(tr, ctx, &plan.write.dest).await?;
    }
    Ok(result)
}
