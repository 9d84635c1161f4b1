//! Whole-file edits shared by the package-repository modules (`apt_repository`,
//! `deb822_repository`, `apt_key`, `yum_repository`): a file's new text, or its removal, as a
//! drift, and applying it.
//!
//! Owns the comparison of wanted text and attributes with what the host has (read with
//! [`read_text_file`], which follows a symlink at the path like Ansible's `atomic_move` does)
//! and the one way these modules write (the file modules' `write_file`: temporary file, rename)
//! or remove a file. It must not format shell lines and must not read the run mode.

use crate::modules::files::common::{
    EditPlan, TextFile, WantAttrs, WriteSpec, as_text, attr, read_text_file, shown_after,
    write_file,
};
use crate::modules::runtime::{Change, HostView, ModuleCtx, ModuleError};
use crate::transport::cmd::{mkdir_p, rm_rf};
use crate::transport::{AnyTransport, Payload};

/// What happens to one file.
#[derive(Clone, Debug)]
pub enum Action {
    /// New content (or only new attributes).
    Write(Box<EditPlan>),
    /// The file goes.
    Remove,
}

/// One file's edit, found by `check` and carried to `apply`.
#[derive(Clone, Debug)]
pub struct FileEdit {
    /// The path as the task names it (removal removes this path, a link is not followed).
    pub path: String,
    /// What happens to it.
    pub action: Action,
}

/// Reads `path` (absent is fine; a directory or special file is an error).
pub async fn read(
    tr: &mut HostView<'_>,
    ctx: &ModuleCtx<'_>,
    path: &str,
) -> Result<TextFile, ModuleError> {
    read_text_file(tr, ctx, path).await
}

/// The text of `tf`, `None` when absent (bytes that are not UTF-8 are replaced).
pub fn text_of(tf: &TextFile) -> Option<String> {
    tf.bytes
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

/// The edit that makes `path` (read as `tf`) hold `new` with the attributes `want` asks for;
/// `None` when it already does. A new file gets the transport's default mode (`0644`) unless
/// `want` names one; an existing file keeps its mode and owner unless `want` changes them.
pub fn plan_write(
    path: &str,
    tf: &TextFile,
    new: Vec<u8>,
    want: &WantAttrs,
) -> Result<Option<(Vec<Change>, FileEdit)>, ModuleError> {
    let exists = tf.state.exists();
    let mut changes = Vec::new();
    let plan = if tf.bytes.as_ref() != Some(&new) {
        changes.push(Change::Content {
            path: path.to_string(),
            before: tf.bytes.as_deref().and_then(as_text),
            after: shown_after(&new),
        });
        if exists {
            changes.extend(want.diff(path, &tf.state)?.changes);
        }
        EditPlan {
            write: WriteSpec {
                dest: tf.real.clone(),
                attrs: want.put_attrs(&tf.state)?,
                validate: None,
                backup: false,
            },
            mkdir_parent: !exists && !tf.parent_exists,
            data: Some(new),
            fix: Default::default(),
        }
    } else {
        let fix = want.diff(path, &tf.state)?;
        if fix.is_empty() {
            return Ok(None);
        }
        changes.extend(fix.changes.iter().cloned());
        EditPlan {
            write: WriteSpec {
                dest: tf.real.clone(),
                attrs: Default::default(),
                validate: None,
                backup: false,
            },
            mkdir_parent: false,
            data: None,
            fix,
        }
    };
    Ok(Some((
        changes,
        FileEdit {
            path: path.to_string(),
            action: Action::Write(Box::new(plan)),
        },
    )))
}

/// The edit that removes `path` (read as `tf`); `None` when it is already absent.
pub fn plan_remove(path: &str, tf: &TextFile) -> Option<(Vec<Change>, FileEdit)> {
    if !tf.state.exists() {
        return None;
    }
    Some((
        vec![attr(path, "state", "file", "absent")],
        FileEdit {
            path: path.to_string(),
            action: Action::Remove,
        },
    ))
}

/// Carries out `edit` on the host.
pub async fn apply(
    tr: &mut AnyTransport,
    ctx: &ModuleCtx<'_>,
    edit: &FileEdit,
) -> Result<(), ModuleError> {
    match &edit.action {
        Action::Remove => ctx.run_ok(tr, rm_rf(&edit.path)).await.map(|_| ()),
        Action::Write(plan) => match &plan.data {
            Some(data) => {
                if plan.mkdir_parent {
                    let parent = crate::modules::files::common::parent_of(&plan.write.dest);
                    ctx.run_ok(tr, mkdir_p(parent)).await?;
                }
                write_file(tr, ctx, Payload::Bytes(data), &plan.write)
                    .await
                    .map(|_| ())
            }
            None => plan.fix.apply(tr, ctx, &plan.write.dest).await,
        },
    }
}
