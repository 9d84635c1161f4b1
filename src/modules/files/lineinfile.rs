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

use super::common::{
    EditOpts, WantAttrs, edit_apply, edit_verdict_with, failed, read_text_file, validate_text,
};
use super::pyre::{Template, compile};
use crate::diag::Diagnostic;
use crate::modules::runtime::{
    Ahead, Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::modules::spec::ArgsRef;
use crate::transport::AnyTransport;

/// The `lineinfile` module.
pub struct LineInFile;

crate::module_args! {
    /// Ensures one line is present (replacing the last line matching `regexp`) or absent in a
    /// text file.
    #[module(
        name = "lineinfile",
        backup = "The file is copied (content, mode, owner) before it is changed; rollback puts the copy back, or removes the file if the step created it.",
        returns = &[("msg", "line added, line replaced, line removed..."), ("found", "with state absent: how many lines were removed"), ("backup", "with backup: the on-host copy's name")],
        examples = "- lineinfile:\n    path: /etc/ssh/sshd_config\n    regexp: '^#?PermitRootLogin'\n    line: PermitRootLogin no\n- lineinfile:\n    path: /etc/hosts\n    line: 10.0.0.5 db\n    state: absent",
        check_args = lineinfile_check
    )]
    pub struct LineInFileArgs {
        /// The file to change.
        #[arg(required, kind = Path, aliases = &["dest", "destfile", "name"])]
        path: String,
        /// Regex of the line to replace or remove.
        #[arg(aliases = &["regex"])]
        regexp: Option<String>,
        /// Literal text of the line to replace or remove.
        search_string: Option<String>,
        /// The line to insert or put in place of the match.
        #[arg(aliases = &["value"])]
        line: Option<String>,
        /// Insert after the last line matching this regex, or `EOF` (the default when neither
        /// `insertafter` nor `insertbefore` is given).
        insertafter: Option<String>,
        /// Insert before the last line matching this regex, or `BOF`.
        insertbefore: Option<String>,
        /// Whether the line is present or absent.
        #[arg(default = "present", choices = &["present", "absent"])]
        state: String,
        /// Create the file if it does not exist.
        #[arg(default = "no")]
        create: bool,
        /// `line` may use `\1` groups of `regexp`; with no match, change nothing.
        #[arg(default = "no")]
        backrefs: bool,
        /// With `insertafter`/`insertbefore`: insert at the first line matching, not the last.
        #[arg(default = "no")]
        firstmatch: bool,
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

/// Ansible's `mutually_exclusive` and the `line` rules of its `main()`, at playbook load.
fn lineinfile_check(a: &ArgsRef<'_>) -> Vec<Diagnostic> {
    let mut out = a.exclusive("insertafter", "insertbefore");
    out.extend(a.exclusive("regexp", "search_string"));
    out.extend(a.exclusive("backrefs", "search_string"));
    let state = match a.get("state") {
        None => "present".to_string(),
        Some(_) => a.literal("state").unwrap_or_default(),
    };
    let err = |msg: &str| Diagnostic::at(a.module_loc, msg.to_string());
    if state == "present" && !a.has("line") {
        out.push(err(
            "module 'lineinfile' needs 'line' when state is present",
        ));
    }
    if state == "absent" && !a.has("regexp") && !a.has("search_string") && !a.has("line") {
        out.push(err(
            "module 'lineinfile' needs 'regexp', 'search_string' or 'line' when state is absent",
        ));
    }
    out
}

impl LineInFileArgs {
    fn opts(&self) -> Result<EditOpts, ModuleError> {
        Ok(EditOpts {
            want: WantAttrs {
                mode: Some(self.mode.clone()).filter(|m| !m.is_null()),
                owner: self.owner.clone(),
                group: self.group.clone(),
            },
            validate: validate_text(self.validate.clone())?,
            backup: self.backup,
        })
    }
}

impl Module for LineInFile {
    fn ahead(&self) -> Ahead {
        Ahead::Reads
    }

    fn name(&self) -> &'static str {
        "lineinfile"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(async move {
            let a = LineInFileArgs::parse(args)?;
            let opts = a.opts()?;
            let path = a.path.clone();
            let create = a.create;
            let params = Params::from_args(a)?;
            let tf = read_text_file(tr, ctx, &path).await?;
            let mut result = Args::new();
            let Some(bytes) = &tf.bytes else {
                if !params.present {
                    result.insert("msg".into(), Value::from("file not present"));
                    return Ok(Verdict::InSync { result });
                }
                if !create {
                    return Err(failed(format!("Destination {path} does not exist !")));
                }
                let mut lines = Vec::new();
                let (_, msg) = params.present(&mut lines);
                let new = lines.concat().into_bytes();
                return edit_verdict_with(&path, &tf, Some(new), &opts, msg, result);
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
            edit_verdict_with(
                &path,
                &tf,
                Some(lines.concat().into_bytes()),
                &opts,
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
        LineInFileArgs::parse(args)
            .map(|a| vec![Resource::Path(a.path)])
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
    fn from_args(a: LineInFileArgs) -> Result<Params, ModuleError> {
        let present = a.state != "absent";
        let regexp = a
            .regexp
            .as_deref()
            .map(|r| compile(r, "regexp", false, false))
            .transpose()?;
        let search = a.search_string;
        let line = a.line;
        let backrefs = a.backrefs;
        let mut insertafter = a.insertafter;
        let insertbefore = a.insertbefore;
        if insertafter.is_some() && insertbefore.is_some() {
            return Err(ModuleError::Args(
                "insertafter and insertbefore are mutually exclusive".into(),
            ));
        }
        if regexp.is_some() && search.is_some() {
            return Err(ModuleError::Args(
                "parameters are mutually exclusive: regexp|search_string".into(),
            ));
        }
        if backrefs && search.is_some() {
            return Err(ModuleError::Args(
                "parameters are mutually exclusive: backrefs|search_string".into(),
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
            firstmatch: a.firstmatch,
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::files::blockinfile::BlockInFile;
    use crate::modules::files::replace::Replace;
    use crate::modules::system::testutil::{Ran, args, check_apply, ctx, transport};

    fn load_errors(task: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pb.yml");
        std::fs::write(&p, format!("- hosts: all\n  tasks:\n    - {task}\n")).unwrap();
        match crate::playbook::load(&p, &crate::playbook::LoadOptions::default()) {
            Ok(_) => Vec::new(),
            Err(d) => d.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    /// `insertafter` is documented as `EOF` by default but has no default value: given one,
    /// `insertbefore` alone would be refused as "mutually exclusive".
    #[tokio::test]
    async fn insertbefore_alone_and_typed_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path(), None, vec![]);
        let mut tr = transport();
        let f = dir.path().join("f");
        std::fs::write(&f, "a\nb\n").unwrap();
        let a = args(json!({"path": f, "line": "x", "insertbefore": "^b", "mode": "0600"}));
        let ran = check_apply(&LineInFile, &mut tr, &a, &c).await;
        assert!(matches!(ran, Ran::Applied(_, Ok(_))), "{ran:?}");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "a\nx\nb\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let a = args(json!({"path": f, "block": "y", "insertbefore": "^a"}));
        let ran = check_apply(&BlockInFile, &mut tr, &a, &c).await;
        assert!(matches!(ran, Ran::Applied(_, Ok(_))), "{ran:?}");
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "# BEGIN ANSIBLE MANAGED BLOCK\ny\n# END ANSIBLE MANAGED BLOCK\na\nx\nb\n"
        );
        let a = args(json!({"path": f, "regexp": "^x$", "replace": "z", "backup": true}));
        let Ran::Applied(_, Ok(r)) = check_apply(&Replace, &mut tr, &a, &c).await else {
            panic!()
        };
        assert!(r["backup_file"].is_string(), "{r:?}");
        // validate must hold %s, as in Ansible.
        let a = args(json!({"path": f, "line": "q", "validate": "true"}));
        let ran = check_apply(&LineInFile, &mut tr, &a, &c).await;
        assert!(
            matches!(ran, Ran::CheckFailed(ref m, _) if m.contains("validate must contain %s")),
            "{ran:?}"
        );
        // Ansible's mutually exclusive backrefs and search_string, at run time too (arguments
        // built from a variable).
        let a = args(json!({"path": f, "line": "q", "search_string": "x", "backrefs": true}));
        let ran = check_apply(&LineInFile, &mut tr, &a, &c).await;
        assert!(
            matches!(ran, Ran::CheckFailed(ref m, _) if m.contains("backrefs|search_string")),
            "{ran:?}"
        );
        let a = args(json!({"path": f, "line": "q", "unsafe_writes": true}));
        let ran = check_apply(&LineInFile, &mut tr, &a, &c).await;
        assert!(
            matches!(ran, Ran::CheckFailed(ref m, _) if m.contains("not supported by rdeploy")),
            "{ran:?}"
        );
    }

    /// The argument checks that moved here from the table, run at playbook load.
    #[test]
    fn checks_at_load() {
        for (task, want) in [
            (
                "lineinfile: { path: /f, regexp: x, search_string: y, line: z }",
                Some(
                    "arguments 'regexp' and 'search_string' of module 'lineinfile' are mutually exclusive",
                ),
            ),
            (
                "lineinfile: { path: /f, backrefs: yes, search_string: y, line: z }",
                Some(
                    "arguments 'backrefs' and 'search_string' of module 'lineinfile' are mutually exclusive",
                ),
            ),
            (
                "lineinfile: { path: /f, regexp: x }",
                Some("module 'lineinfile' needs 'line' when state is present"),
            ),
            (
                "lineinfile: { path: /f, state: absent }",
                Some("needs 'regexp', 'search_string' or 'line' when state is absent"),
            ),
            (
                "blockinfile: { path: /f, block: x, insertafter: a, insertbefore: b }",
                Some(
                    "arguments 'insertafter' and 'insertbefore' of module 'blockinfile' are mutually exclusive",
                ),
            ),
            ("lineinfile: { path: /f, line: x, insertbefore: BOF }", None),
            (
                "blockinfile: { dest: /f, content: x, insertbefore: BOF }",
                None,
            ),
            ("replace: { path: /f, regexp: x }", None),
        ] {
            let e = load_errors(task);
            match want {
                Some(w) => assert!(e.iter().any(|e| e.contains(w)), "{task}: {e:?}"),
                None => assert!(e.is_empty(), "{task}: {e:?}"),
            }
        }
    }
}
