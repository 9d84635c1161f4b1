//! `lineinfile`: one line present (replacing the last line matching `regexp`/`search_string`,
//! or inserted after/before a matching line, at `BOF` or `EOF`) or absent in a text file.
//!
//! Owns Ansible's line rules, ported from its `present()`/`absent()`: the new content is
//! computed on the controller from the content `check` read (one round trip: realpath, stat,
//! content), shown as a [`Change::Content`], and written by `apply` with one atomic `put` to
//! the real file (a symlink at `path` is followed, as Ansible does; the link is kept). It must
//! not format shell lines and must not read the run mode.
//!
//! Python regex notes (see `pyre`): a line is matched without its trailing `\n` (so `$` works
//! as in Python, where `$` also matches before a final newline); look-around and
//! backreferences in patterns are refused. A file that is not UTF-8 text is refused.

use serde_json::Value;

use super::common::{edit_apply, edit_verdict, failed, read_text_file};
use super::pyre::{Template, compile};
use crate::modules::runtime::{
    Ahead, Args, ArgsExt, BoxFut, Drift, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::AnyTransport;

/// The `lineinfile` module.
pub struct LineInFile;

impl Module for LineInFile {
    fn ahead(&self) -> Ahead {
        Ahead::Reads
    }

    fn name(&self) -> &'static str {
        "lineinfile"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut AnyTransport,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let path = args.req_str("path")?;
            let params = Params::from_args(args)?;
            let tf = read_text_file(tr, ctx, &path).await?;
            let mut result = Args::new();
            let Some(bytes) = &tf.bytes else {
                if !params.present {
                    result.insert("msg".into(), Value::from("file not present"));
                    return Ok(Verdict::InSync { result });
                }
                if !args.bool_arg("create", false)? {
                    return Err(failed(format!("Destination {path} does not exist !")));
                }
                let mut lines = Vec::new();
                let (_, msg) = params.present(&mut lines);
                let new = lines.concat().into_bytes();
                return edit_verdict(&path, &tf, Some(new), args, msg, result);
            };
            let text = String::from_utf8(bytes.clone())
                .map_err(|_| failed(format!("{path} is not UTF-8 text")))?;
            let mut lines = split_lines(&text);
            let msg = if params.present {
                params.present(&mut lines).1
            } else {
                let found = params.absent(&mut lines);
                result.insert("found".into(), Value::from(found));
                if found > 0 {
                    format!("{found} line(s) removed")
                } else {
                    String::new()
                }
            };
            edit_verdict(
                &path,
                &tf,
                Some(lines.concat().into_bytes()),
                args,
                msg,
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
        Box::pin(edit_apply(tr, ctx, drift, "backup"))
    }

    fn resources(&self, args: &Args) -> Vec<Resource> {
        args.str_arg("path")
            .map(|p| vec![Resource::Path(p)])
            .unwrap_or_default()
    }
}

/// Splits text into lines that keep their `\n` (Python's `readlines` on bytes).
pub fn split_lines(text: &str) -> Vec<String> {
    text.split_inclusive('\n').map(str::to_string).collect()
}

/// A line without its final `\n` (what regexes are matched against).
fn chomp(l: &str) -> &str {
    l.strip_suffix('\n').unwrap_or(l)
}

fn rstrip(l: &str) -> &str {
    l.trim_end_matches(['\r', '\n'])
}

struct Params {
    present: bool,
    regexp: Option<regex::Regex>,
    template: Option<Template>,
    search: Option<String>,
    line: Option<String>,
    insertafter: Option<String>,
    insertbefore: Option<String>,
    ins_re: Option<regex::Regex>,
    backrefs: bool,
    firstmatch: bool,
}

impl Params {
    fn from_args(args: &Args) -> Result<Params, ModuleError> {
        let present = args.str_arg("state").as_deref() != Some("absent");
        let regexp = args
            .str_arg("regexp")
            .map(|r| compile(&r, "regexp", false, false))
            .transpose()?;
        let search = args.str_arg("search_string");
        let line = args.str_arg("line");
        let backrefs = args.bool_arg("backrefs", false)?;
        let mut insertafter = args.str_arg("insertafter");
        let insertbefore = args.str_arg("insertbefore");
        if insertafter.is_some() && insertbefore.is_some() {
            return Err(ModuleError::Args(
                "insertafter and insertbefore are mutually exclusive".into(),
            ));
        }
        if present {
            if backrefs && regexp.is_none() {
                return Err(ModuleError::Args(
                    "regexp is required with backrefs=true".into(),
                ));
            }
            if line.is_none() {
                return Err(ModuleError::Args(
                    "line is required with state=present".into(),
                ));
            }
            if insertafter.is_none() && insertbefore.is_none() {
                insertafter = Some("EOF".into());
            }
        } else if regexp.is_none() && search.is_none() && line.is_none() {
            return Err(ModuleError::Args(
                "one of line, search_string, or regexp is required with state=absent".into(),
            ));
        }
        let ins_re = match (&insertafter, &insertbefore) {
            (Some(a), _) if a != "BOF" && a != "EOF" => {
                Some(compile(a, "insertafter", false, false)?)
            }
            (_, Some(b)) if b != "BOF" => Some(compile(b, "insertbefore", false, false)?),
            _ => None,
        };
        let template = match (&regexp, &line, backrefs) {
            (Some(re), Some(l), true) => Some(Template::parse(l, re)?),
            _ => None,
        };
        Ok(Params {
            present,
            regexp,
            template,
            search,
            line,
            insertafter,
            insertbefore,
            ins_re,
            backrefs,
            firstmatch: args.bool_arg("firstmatch", false)?,
        })
    }

    /// Ansible's `present()`: edits `lines`, returns (changed, msg).
    fn present(&self, lines: &mut Vec<String>) -> (bool, String) {
        let line = self.line.clone().unwrap_or_default();
        let mut index0: Option<usize> = None;
        let mut index1: Option<usize> = None;
        let mut matched = false;
        let mut expanded: Option<String> = None;
        if let Some(re) = &self.regexp {
            for (i, l) in lines.iter().enumerate() {
                if let Some(caps) = re.captures(chomp(l)) {
                    index0 = Some(i);
                    matched = true;
                    expanded = self.template.as_ref().map(|t| t.expand(&caps));
                    if self.firstmatch {
                        break;
                    }
                }
            }
        }
        if let Some(s) = &self.search {
            for (i, l) in lines.iter().enumerate() {
                if l.contains(s.as_str()) {
                    index0 = Some(i);
                    matched = true;
                    if self.firstmatch {
                        break;
                    }
                }
            }
        }
        if !matched {
            for (i, l) in lines.iter().enumerate() {
                if rstrip(l) == line {
                    index0 = Some(i);
                } else if let Some(re) = &self.ins_re
                    && re.is_match(chomp(l))
                {
                    if self.insertafter.is_some() {
                        index1 = Some(i + 1);
                        if self.firstmatch {
                            break;
                        }
                    }
                    if self.insertbefore.is_some() {
                        index1 = Some(i);
                        if self.firstmatch {
                            break;
                        }
                    }
                }
            }
        }
        let with_nl = |s: &str| {
            if s.ends_with('\n') {
                s.to_string()
            } else {
                format!("{s}\n")
            }
        };
        let ensure_last_nl = |lines: &mut Vec<String>| {
            if let Some(last) = lines.last_mut()
                && !last.ends_with(['\n', '\r'])
            {
                last.push('\n');
            }
        };
        let added = (true, "line added".to_string());
        if let Some(i0) = index0 {
            let new_line = match (&expanded, self.backrefs && matched) {
                (Some(e), true) => with_nl(e),
                _ => with_nl(&line),
            };
            if lines[i0] != new_line {
                lines[i0] = new_line;
                return (true, "line replaced".into());
            }
            return (false, String::new());
        }
        if self.backrefs {
            // Nothing: the line cannot be built without the regexp's groups.
            return (false, String::new());
        }
        let ia = self.insertafter.as_deref();
        let ib = self.insertbefore.as_deref();
        if ib == Some("BOF") || ia == Some("BOF") {
            lines.insert(0, with_nl(&line));
            return added;
        }
        match index1 {
            Some(i1) if ia != Some("EOF") => {
                if ia.is_some() {
                    if lines.len() == i1 {
                        if i1 == 0 || rstrip(&lines[i1 - 1]) != line {
                            ensure_last_nl(lines);
                            lines.push(with_nl(&line));
                            return added;
                        }
                        (false, String::new())
                    } else if rstrip(&lines[i1]) != line {
                        lines.insert(i1, with_nl(&line));
                        added
                    } else {
                        (false, String::new())
                    }
                } else {
                    lines.insert(i1, with_nl(&line));
                    added
                }
            }
            _ => {
                ensure_last_nl(lines);
                lines.push(with_nl(&line));
                added
            }
        }
    }

    /// Ansible's `absent()`: removes every matching line, returns how many.
    fn absent(&self, lines: &mut Vec<String>) -> usize {
        let line = self.line.clone().unwrap_or_default();
        let before = lines.len();
        lines.retain(|l| {
            let hit = if let Some(re) = &self.regexp {
                re.is_match(chomp(l))
            } else if let Some(s) = &self.search {
                l.contains(s.as_str())
            } else {
                rstrip(l) == line
            };
            !hit
        });
        before - lines.len()
    }
}
