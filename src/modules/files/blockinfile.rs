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

use super::common::{edit_apply, edit_verdict, failed, read_text_file};
use super::lineinfile::split_lines;
use super::pyre::compile;
use crate::modules::runtime::{
    Ahead, Args, ArgsExt, BoxFut, Drift, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::AnyTransport;

/// The `blockinfile` module.
pub struct BlockInFile;

impl Module for BlockInFile {
    fn ahead(&self) -> Ahead {
        Ahead::Reads
    }

    fn name(&self) -> &'static str {
        "blockinfile"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let path = args.req_str("path")?;
            let present = args.str_arg("state").as_deref() != Some("absent");
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
                None if !args.bool_arg("create", false)? => {
                    return Err(failed(format!("Path {path} does not exist !")));
                }
                None => None,
            };
            let new = edit_block(args, original.as_deref(), present)?;
            let msg = if original.as_deref() == Some(new.as_str()) {
                ""
            } else if original.is_none() {
                "File created"
            } else if !present || args.str_arg("block").unwrap_or_default().is_empty() {
                "Block removed"
            } else {
                "Block inserted"
            };
            edit_verdict(&path, &tf, Some(new.into_bytes()), args, msg.into(), result)
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
        args.str_arg("path")
            .map(|p| vec![Resource::Path(p)])
            .unwrap_or_default()
    }
}

/// The file's new text (Ansible's `main()` after reading the file).
fn edit_block(args: &Args, original: Option<&str>, present: bool) -> Result<String, ModuleError> {
    let mut lines = original.map(split_lines).unwrap_or_default();
    let marker = args
        .str_arg("marker")
        .unwrap_or_else(|| "# {mark} ANSIBLE MANAGED BLOCK".into());
    let begin = args
        .str_arg("marker_begin")
        .unwrap_or_else(|| "BEGIN".into());
    let end = args.str_arg("marker_end").unwrap_or_else(|| "END".into());
    let mut insertafter = args.str_arg("insertafter");
    let insertbefore = args.str_arg("insertbefore");
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
    let marker0 = format!("{}\n", marker.replace("{mark}", &begin));
    let marker1 = format!("{}\n", marker.replace("{mark}", &end));
    let mut block = args.str_arg("block").unwrap_or_default();
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
