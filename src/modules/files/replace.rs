//! `replace`: every match of a Python regex in a text file replaced (`\1`, `\g<name>`
//! backreferences), optionally only in the section after the first match of `after` and/or
//! before the first match of `before`.
//!
//! Owns Ansible's rules (the pattern is MULTILINE; the section pattern is
//! `AFTER(?P<subsection>.*?)BEFORE` with DOTALL; nothing happens when the section is not
//! found). The new content is computed on the controller from the one-round-trip read and
//! written by one atomic `put` to the real file (a symlink at `path` is followed, as Ansible
//! does). It must not format shell lines and must not read the run mode. Difference from
//! Python's `re.sub`: an empty match right after a non-empty one is not replaced (the `regex`
//! crate's iteration rule); look-around and pattern backreferences are refused.

use serde_json::Value;

use super::common::{
    EditOpts, WantAttrs, edit_apply, edit_verdict_with, failed, read_text_file, validate_text,
};
use super::pyre::{Template, compile};
use crate::modules::runtime::{
    Ahead, Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::AnyTransport;

/// The `replace` module.
pub struct Replace;

crate::module_args! {
    /// Replaces every match of a regex in a text file, optionally only between `after` and
    /// `before`.
    #[module(
        name = "replace",
        backup = "The file is copied (content, mode, owner) before it is changed; rollback puts the copy back.",
        returns = &[("msg", "N replacements made"), ("backup_file", "with backup: the on-host copy's name")],
        examples = "- replace:\n    path: /etc/hosts\n    regexp: '(\\s+)old\\.example\\.com(\\s+.*)?$'\n    replace: '\\1new.example.com\\2'"
    )]
    pub struct ReplaceArgs {
        /// The file to change.
        #[arg(required, kind = Path, aliases = &["dest", "destfile", "name"])]
        path: String,
        /// Python-style regex to replace.
        #[arg(required)]
        regexp: String,
        /// Replacement text; may use `\1` groups.
        #[arg(default = "")]
        replace: String,
        /// Only replace after the first match of this regex.
        after: Option<String>,
        /// Only replace before the first match of this regex.
        before: Option<String>,
        /// Keep a timestamped copy of the original file on the host.
        #[arg(default = "no")]
        backup: bool,
        /// Permissions of the file.
        mode: Value,
        /// Owner of the file.
        owner: Option<String>,
        /// Group of the file.
        group: Option<String>,
        /// Command run on the new content before it is moved in; `%s` is the temp file.
        validate: Option<String>,
    }
}

impl Module for Replace {
    fn ahead(&self) -> Ahead {
        Ahead::Reads
    }

    fn name(&self) -> &'static str {
        "replace"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let a = ReplaceArgs::parse(args)?;
            let path = a.path.clone();
            let opts = EditOpts {
                want: WantAttrs {
                    mode: Some(a.mode.clone()).filter(|m| !m.is_null()),
                    owner: a.owner.clone(),
                    group: a.group.clone(),
                },
                validate: validate_text(a.validate.clone())?,
                backup: a.backup,
            };
            let re = compile(&a.regexp, "regexp", true, false)?;
            let template = Template::parse(&a.replace, &re)?;
            let tf = read_text_file(tr, ctx, &path).await?;
            let Some(bytes) = &tf.bytes else {
                return Err(failed(format!("Path {path} does not exist !")));
            };
            let text = String::from_utf8(bytes.clone())
                .map_err(|_| failed(format!("{path} is not UTF-8 text")))?;
            let mut result = Args::new();
            let (start, end) = match section(a.after.as_deref(), a.before.as_deref(), &text)? {
                Ok(range) => range,
                Err(msg) => {
                    // Like Ansible: nothing at all happens, not even attributes.
                    result.insert("msg".into(), Value::from(msg));
                    return Ok(Verdict::InSync { result });
                }
            };
            let sec = &text[start..end];
            let mut count = 0usize;
            let replaced = re.replace_all(sec, |caps: &regex::Captures<'_>| {
                count += 1;
                template.expand(caps)
            });
            let (new, msg) = if count > 0 && replaced != sec {
                let new = format!("{}{}{}", &text[..start], replaced, &text[end..]);
                (new, format!("{count} replacements made"))
            } else {
                (text.clone(), String::new())
            };
            edit_verdict_with(&path, &tf, Some(new.into_bytes()), &opts, msg, result)
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
        ReplaceArgs::parse(args)
            .map(|a| vec![Resource::Path(a.path)])
            .unwrap_or_default()
    }
}

/// The byte range `after`/`before` select (the whole text without them); `Ok(Err(msg))` when
/// the section pattern does not match.
fn section(
    after: Option<&str>,
    before: Option<&str>,
    text: &str,
) -> Result<Result<(usize, usize), String>, ModuleError> {
    let pattern = match (after, before) {
        (Some(a), Some(b)) => format!("{a}(?P<subsection>.*?){b}"),
        (Some(a), None) => format!("{a}(?P<subsection>.*)"),
        (None, Some(b)) => format!("(?P<subsection>.*){b}"),
        (None, None) => return Ok(Ok((0, text.len()))),
    };
    let re = compile(&pattern, "after/before", false, true)?;
    match re.captures(text).and_then(|c| c.name("subsection")) {
        Some(m) => Ok(Ok((m.start(), m.end()))),
        None => Ok(Err(format!(
            "Pattern for before/after params did not match the given file: {pattern}"
        ))),
    }
}
