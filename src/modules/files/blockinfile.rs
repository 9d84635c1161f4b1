//! `blockinfile`: a block of lines between two marker lines, inserted, updated or removed.
//!
//! Owns Ansible's block rules (markers from `marker` with `{mark}` → `marker_begin`/
//! `marker_end`; an existing block is replaced where it is; a new one goes after the last line
//! matching `insertafter` or before the last line matching `insertbefore`, at `EOF` by
//! default; an empty `block` removes it). The new content is computed on the controller from
//! the one-round-trip read and written by one atomic `put` to the real file (a symlink at
//! `path` is followed, as Ansible does). It must not format shell lines and must not read the
//! run mode. Not supported: `append_newline`/`prepend_newline` (not in the argument spec).

use serde_json::Value;

use super::common::{
    EditOpts, WantAttrs, edit_apply, edit_verdict_with, failed, read_text_file, validate_text,
};
use super::lineinfile::split_lines;
use super::pyre::compile;
use crate::diag::Diagnostic;
use crate::modules::runtime::{
    Ahead, Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::modules::spec::ArgsRef;
use crate::transport::AnyTransport;

/// The `blockinfile` module.
pub struct BlockInFile;

crate::module_args! {
    /// Inserts, updates or removes a block of lines between marker lines in a text file.
    #[module(
        name = "blockinfile",
        backup = "The file is copied (content, mode, owner) before it is changed; rollback puts the copy back, or removes the file if the step created it.",
        returns = &[("msg", "Block inserted, Block removed, File created..."), ("backup_file", "with backup: the on-host copy's name")],
        examples = "- blockinfile:\n    path: /etc/ssh/sshd_config\n    block: |\n      Match User deploy\n        PasswordAuthentication no",
        check_args = after_xor_before
    )]
    pub struct BlockInFileArgs {
        /// The file to change.
        #[arg(required, kind = Path, aliases = &["dest", "destfile", "name"])]
        path: String,
        /// The text between the markers.
        #[arg(aliases = &["content"], default = "")]
        block: String,
        /// Marker line template; `{mark}` becomes `marker_begin`/`marker_end`.
        #[arg(default = "# {mark} ANSIBLE MANAGED BLOCK")]
        marker: String,
        /// Replaces `{mark}` in the opening marker.
        #[arg(default = "BEGIN")]
        marker_begin: String,
        /// Replaces `{mark}` in the closing marker.
        #[arg(default = "END")]
        marker_end: String,
        /// Insert after the last line matching this regex, or `EOF` (the default when neither
        /// `insertafter` nor `insertbefore` is given).
        insertafter: Option<String>,
        /// Insert before the last line matching this regex, or `BOF`.
        insertbefore: Option<String>,
        /// Whether the block is present or absent.
        #[arg(default = "present", choices = &["present", "absent"])]
        state: String,
        /// Create the file if it does not exist.
        #[arg(default = "no")]
        create: bool,
        /// Keep a timestamped copy of the original file on the host.
        #[arg(default = "no")]
        backup: bool,
        /// Permissions of the file (`0644`, `u=rw,g=r`).
        mode: Value,
        /// Owner of the file.
        owner: Option<String>,
        /// Group of the file.
        group: Option<String>,
        /// Command run on the new content before it is moved in; `%s` is the temp file.
        validate: Option<String>,
    }
}

fn after_xor_before(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    a.exclusive("insertafter", "insertbefore")
}

impl Module for BlockInFile {
    fn ahead(&self) -> Ahead {
        Ahead::Reads
    }

    fn name(&self) -> &'static str {
        "blockinfile"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let a = BlockInFileArgs::parse(args)?;
            let path = a.path.clone();
            let present = a.state != "absent";
            let opts = EditOpts {
                want: WantAttrs {
                    mode: Some(a.mode.clone()).filter(|m| !m.is_null()),
                    owner: a.owner.clone(),
                    group: a.group.clone(),
                },
                validate: validate_text(a.validate.clone())?,
                backup: a.backup,
            };
            let tf = read_text_file(tr, ctx, &path).await?;
            let result = Args::new();
            let original = match &tf.bytes {
                Some(b) => Some(
                    String::from_utf8(b.clone())
                        .map_err(|_| failed(format!("{path} is not UTF-8 text")))?,
                ),
                None if !present => {
                    let mut result = result;
                    result.insert(
                        "msg".into(),
                        Value::from(format!("File {path} not present")),
                    );
                    return Ok(Verdict::InSync { result });
                }
                None if !a.create => {
                    return Err(failed(format!("Path {path} does not exist !")));
                }
                None => None,
            };
            let new = edit_block(&a, original.as_deref(), present)?;
            let msg = if original.as_deref() == Some(new.as_str()) {
                ""
            } else if original.is_none() {
                "File created"
            } else if !present || a.block.is_empty() {
                "Block removed"
            } else {
                "Block inserted"
            };
            edit_verdict_with(
                &path,
                &tf,
                Some(new.into_bytes()),
                &opts,
                msg.into(),
                result,
            )
        })
    }

    fn apply<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        _args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
        drift: &'a Drift,
    ) -> BoxFut<'a, Result<Args, ModuleError>> {
        Box::pin(edit_apply(tr, ctx, drift, "backup_file"))
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        BlockInFileArgs::parse(args)
            .map(|a| vec![Resource::Path(a.path)])
            .unwrap_or_default()
    }
}

/// The file's new text (Ansible's `main()` after reading the file).
fn edit_block(
    a: &BlockInFileArgs,
    original: Option<&str>,
    present: bool,
) -> Result<String, ModuleError> {
    let mut lines = original.map(split_lines).unwrap_or_default();
    let marker = &a.marker;
    let begin = &a.marker_begin;
    let end = &a.marker_end;
    let mut insertafter = a.insertafter.clone();
    let insertbefore = a.insertbefore.clone();
    if insertafter.is_some() && insertbefore.is_some() {
        return Err(ModuleError::Args(
            "insertafter and insertbefore are mutually exclusive".into(),
        ));
    }
    if insertafter.is_none() && insertbefore.is_none() {
        insertafter = Some("EOF".into());
    }
    let insert_pattern = match (&insertafter, &insertbefore) {
        (Some(a), _) if a != "EOF" => Some((a.clone(), "insertafter")),
        (_, Some(b)) if b != "BOF" => Some((b.clone(), "insertbefore")),
        _ => None,
    };
    let marker0 = format!("{}\n", marker.replace("{mark}", begin));
    let marker1 = format!("{}\n", marker.replace("{mark}", end));
    let mut block = a.block.clone();
    let blocklines: Vec<String> = if present && !block.is_empty() {
        if !block.ends_with('\n') {
            block.push('\n');
        }
        let mut v = vec![marker0.clone()];
        v.extend(split_lines(&block));
        v.push(marker1.clone());
        v
    } else {
        Vec::new()
    };

    let mut n0 = None;
    let mut n1 = None;
    for (i, l) in lines.iter().enumerate() {
        if *l == marker0 {
            n0 = Some(i);
        }
        if *l == marker1 {
            n1 = Some(i);
        }
    }
    let at = match (n0, n1) {
        (Some(a), Some(b)) if a < b => {
            lines.drain(a..=b);
            a
        }
        (Some(a), Some(b)) => {
            lines.drain(b..=a);
            b
        }
        _ => match insert_pattern {
            Some((pat, what)) => {
                let re = compile(&pat, what, false, false)?;
                let mut found = None;
                if pat.contains("(?m") {
                    // Ansible searches the whole text when the pattern itself is MULTILINE.
                    let text = original.unwrap_or_default();
                    if let Some(m) = re.find(text) {
                        let pos = if what == "insertafter" {
                            m.end()
                        } else {
                            m.start()
                        };
                        found = Some(text[..pos].matches('\n').count());
                    }
                } else {
                    for (i, l) in lines.iter().enumerate() {
                        if re.is_match(l.strip_suffix('\n').unwrap_or(l)) {
                            found = Some(i);
                        }
                    }
                }
                match found {
                    None => lines.len(),
                    Some(i) if what == "insertafter" => i + 1,
                    Some(i) => i,
                }
            }
            None if insertbefore.is_some() => 0,
            None => lines.len(),
        },
    };
    let at = at.min(lines.len());
    if at > 0 && !lines[at - 1].ends_with('\n') {
        lines[at - 1].push('\n');
    }
    lines.splice(at..at, blocklines);
    Ok(lines.concat())
}
