//! `ini_file`: one option (or a whole section) of an INI-style file, added, changed or removed.
//!
//! Owns community.general's editing rules, ported line for line into the pure [`edit_ini`]
//! (the file read as UTF-8 with its BOM dropped and its line ends made `\n`, as Python's text
//! mode does; a missing last newline added; options found by Ansible's `match_opt` /
//! `match_active_opt` patterns; new options after the section's last non-blank, non-comment
//! line; a new section at the end of the file) so the written bytes and `msg` are Ansible's.
//! The file is read in one round trip and written by one atomic `put`, like `lineinfile`. It
//! must not format shell lines and must not read the run mode.

use serde_json::Value;

use super::common::{edit_apply, edit_verdict, failed, read_text_file};
use crate::modules::runtime::{
    Ahead, Args, BoxFut, Drift, HostView, Module, ModuleCtx, ModuleError, Resource, Verdict,
};
use crate::transport::AnyTransport;

/// The `ini_file` module.
pub struct IniFile;

crate::module_args! {
    /// Ensures an option of an INI-style file has a value (or values), or is absent, or that a
    /// whole section is absent; missing sections are added.
    #[module(
        name = "ini_file",
        backup = "The file is copied (content, mode, owner) before it is changed; rollback puts the copy back, or removes the file if the step created it. `backup: true` is accepted and does nothing more (rdeploy's own backup already keeps the old file). A symlink at `path` is replaced by a regular file, as Ansible does without `follow` (which rdeploy does not support).",
        returns = &[("msg", "OK, option added, option changed, section and option added, only section added, section removed"), ("path", "the file")],
        examples = "- ini_file:\n    path: /etc/app/app.ini\n    section: server\n    option: port\n    value: \"8080\"\n    mode: \"0640\""
    )]
    pub struct IniFileArgs {
        /// The INI file; created when missing (unless `create: no`).
        #[arg(required, kind = Path, aliases = &["dest"])]
        path: String,
        /// The section; empty or omitted means before the first section.
        section: Option<String>,
        /// Among sections of the same name, the one holding these options (list of `option` with
        /// `value` or `values`).
        section_has_values: Value,
        /// The option; omitted with `state: absent` removes the whole section.
        #[arg(aliases = &["key"])]
        option: Option<String>,
        /// The option's value (exclusive with `values`).
        value: Option<String>,
        /// The option's values, one line each (exclusive with `value`).
        values: Vec<String>,
        /// `present` or `absent`.
        #[arg(default = "present", choices = &["absent", "present"])]
        state: String,
        /// Replace (present) or remove (absent) every line of the option, not only the given
        /// values.
        #[arg(default = "yes")]
        exclusive: bool,
        /// Accepted; rdeploy's own backup of the file makes it unnecessary.
        #[arg(default = "no")]
        backup: bool,
        /// Write `option=value` instead of `option = value`.
        #[arg(default = "no")]
        no_extra_spaces: bool,
        /// Leave a line alone when only the spaces around `=` differ.
        #[arg(default = "no")]
        ignore_spaces: bool,
        /// Allow an option without `=` and value.
        #[arg(default = "no")]
        allow_no_value: bool,
        /// Also change a commented-out (`#`/`;`) occurrence of the option.
        #[arg(default = "yes")]
        modify_inactive_option: bool,
        /// Create the file when it is missing (else fail).
        #[arg(default = "yes")]
        create: bool,
        /// The file's mode.
        mode: Value,
        /// The file's owner.
        owner: Option<String>,
        /// The file's group.
        group: Option<String>,
    }
}

/// `section_has_values`: (option, values) pairs a section must hold.
pub type Conditions = Vec<(String, Vec<String>)>;

/// What to do to the file, after argument checks: [`edit_ini`]'s input.
#[derive(Clone, Debug, Default)]
pub struct IniEdit {
    /// The section (`None` or empty: before the first section).
    pub section: Option<String>,
    /// `section_has_values`: (option, values) pairs the chosen section must hold.
    pub section_has_values: Option<Conditions>,
    /// The option.
    pub option: Option<String>,
    /// The values (deduplicated by [`edit_ini`]).
    pub values: Vec<String>,
    /// `state: present`.
    pub present: bool,
    /// `exclusive`.
    pub exclusive: bool,
    /// `no_extra_spaces`.
    pub no_extra_spaces: bool,
    /// `ignore_spaces`.
    pub ignore_spaces: bool,
    /// `allow_no_value`.
    pub allow_no_value: bool,
    /// `modify_inactive_option`.
    pub modify_inactive_option: bool,
}

/// An option line as Ansible's patterns see it.
struct OptMatch<'l> {
    comment: bool,
    sep: bool,
    value: &'l str,
}

fn skip_blanks(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

/// `(?: |\t)*(?P<comment>[#;]?)(?: |\t)*OPTION(?: |\t)*(?P<sep>=|$)(?: |\t)*(?P<value>.*)`
/// (`match_opt`; `inactive: false` is `match_active_opt`, no comment character).
fn match_opt<'l>(option: &str, line: &'l str, inactive: bool) -> Option<OptMatch<'l>> {
    // `.` stops at a newline and `$` matches before a final one.
    let body = line.strip_suffix('\n').unwrap_or(line);
    let lead = skip_blanks(body);
    let after_option = |s: &'l str, comment: bool| -> Option<OptMatch<'l>> {
        let rest = skip_blanks(s.strip_prefix(option)?);
        if rest.is_empty() {
            return Some(OptMatch {
                comment,
                sep: false,
                value: "",
            });
        }
        let value = skip_blanks(rest.strip_prefix('=')?);
        Some(OptMatch {
            comment,
            sep: true,
            value,
        })
    };
    if inactive
        && let Some(c) = lead.strip_prefix(['#', ';'])
        && let Some(m) = after_option(skip_blanks(c), true)
    {
        return Some(m);
    }
    after_option(lead, false)
}

/// `^[ \t]*([#;].*)?$`: a blank or comment line.
fn blank_or_comment(line: &str) -> bool {
    let body = skip_blanks(line.strip_suffix('\n').unwrap_or(line));
    body.is_empty() || body.starts_with(['#', ';'])
}

/// `^\[\s*SECTION\s*]` with `section` stripped.
fn is_section_line(line: &str, section: &str) -> bool {
    line.strip_prefix('[')
        .map(str::trim_start)
        .and_then(|s| s.strip_prefix(section.trim()))
        .is_some_and(|s| s.trim_start().starts_with(']'))
}

fn section_has(conds: &Option<Conditions>, lines: &[String]) -> bool {
    let Some(conds) = conds else { return true };
    conds.iter().all(|(opt, vals)| {
        lines.iter().any(|l| {
            match_opt(opt, l, true)
                .is_some_and(|m| vals.is_empty() || vals.iter().any(|v| v == m.value))
        })
    })
}

/// The file's lines as Python's text mode reads them: BOM dropped, `\r\n` and `\r` made `\n`,
/// each line keeping its `\n`.
fn read_lines(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    text.split_inclusive('\n').map(str::to_string).collect()
}

/// Section name of the line-less part before the first section (community.general's).
const FAKE_SECTION: &str = "ad01e11446efb704fcdbdb21f2c43757423d91c5";

/// Edits `original` (`None`: no file) as community.general's `do_ini` does; returns the new
/// text, whether Ansible reports a change, and its `msg`.
pub fn edit_ini(
    original: Option<&str>,
    e: &IniEdit,
) -> Result<(String, bool, &'static str), String> {
    let option = e.option.as_deref().filter(|o| !o.is_empty());
    let mut values: Vec<String> = Vec::new();
    for v in &e.values {
        if !values.contains(v) {
            values.push(v.clone());
        }
    }
    let mut lines = original.map(read_lines).unwrap_or_default();
    let mut changed = false;
    if lines.is_empty() {
        lines.push("\n".into());
    }
    if let Some(last) = lines.last_mut()
        && !last.ends_with('\n')
    {
        last.push('\n');
        changed = true;
    }
    lines.insert(0, format!("[{FAKE_SECTION}]"));
    lines.push("[".into());
    let section = match e.section.as_deref() {
        None | Some("") => FAKE_SECTION,
        Some(s) => s,
    };
    let mut within = false;
    let (mut start, mut end) = (0, 0);
    for index in 0..lines.len() {
        let line = &lines[index];
        if within && line.starts_with('[') {
            if section_has(&e.section_has_values, &lines[start..index]) {
                end = index;
                break;
            }
            within = false;
            start = 0;
            end = 0;
        }
        if is_section_line(line, section) {
            within = true;
            start = index;
        }
    }
    let after: Vec<String> = lines.split_off(end);
    let mut section_lines: Vec<String> = lines.split_off(start);
    let before = lines;
    let mut changed_lines = vec![false; section_lines.len()];
    let inactive = e.modify_inactive_option;
    let sep = if e.no_extra_spaces { "=" } else { " = " };
    let mut msg = "OK";
    let mut no_value_present = false;

    let update = |section_lines: &mut Vec<String>,
                  changed_lines: &mut Vec<bool>,
                  index: usize,
                  newline: String,
                  changed: &mut bool,
                  msg: &mut &'static str| {
        let mut option_changed = None;
        if e.ignore_spaces
            && let Some(opt) = option
            && let Some(old) = match_opt(opt, &section_lines[index], true)
            && !old.comment
        {
            let new_value = match_opt(opt, &newline, true).map(|m| m.value.to_string());
            option_changed = Some(new_value.as_deref() != Some(old.value));
        }
        let option_changed = option_changed.unwrap_or(section_lines[index] != newline);
        if option_changed {
            section_lines[index] = newline;
            *changed = true;
            *msg = "option changed";
        }
        changed_lines[index] = true;
    };

    if e.present
        && let Some(opt) = option
    {
        for index in 0..section_lines.len() {
            let Some(m) = match_opt(opt, &section_lines[index], inactive) else {
                continue;
            };
            if !values.is_empty() && values.iter().any(|v| v == m.value) {
                let matched = m.value.to_string();
                let newline = if matched.is_empty() && e.allow_no_value {
                    no_value_present = true;
                    format!("{opt}\n")
                } else {
                    format!("{opt}{sep}{matched}\n")
                };
                update(
                    &mut section_lines,
                    &mut changed_lines,
                    index,
                    newline,
                    &mut changed,
                    &mut msg,
                );
                if let Some(i) = values.iter().position(|v| *v == matched) {
                    values.remove(i);
                }
            } else if values.is_empty() && e.allow_no_value {
                update(
                    &mut section_lines,
                    &mut changed_lines,
                    index,
                    format!("{opt}\n"),
                    &mut changed,
                    &mut msg,
                );
                no_value_present = true;
                break;
            }
        }
    }

    if e.present && e.exclusive && !e.allow_no_value {
        let Some(opt) = option else {
            return Err("option is required when a value is given".into());
        };
        // A commented line without `=` is prose, not a disabled option: left alone.
        let config_line =
            |l: &str| match_opt(opt, l, inactive).is_some_and(|m| !m.comment || m.sep);
        if !values.is_empty() {
            for index in 0..section_lines.len() {
                if !changed_lines[index] && config_line(&section_lines[index]) {
                    let newline = format!("{opt}{sep}{}\n", values.remove(0));
                    update(
                        &mut section_lines,
                        &mut changed_lines,
                        index,
                        newline,
                        &mut changed,
                        &mut msg,
                    );
                    if values.is_empty() {
                        break;
                    }
                }
            }
        }
        for index in (1..section_lines.len()).rev() {
            if !changed_lines[index] && config_line(&section_lines[index]) {
                section_lines.remove(index);
                changed_lines.remove(index);
                changed = true;
                msg = "option changed";
            }
        }
    }

    if e.present {
        for index in (1..=section_lines.len()).rev() {
            if blank_or_comment(&section_lines[index - 1]) {
                continue;
            }
            if let Some(opt) = option {
                if !values.is_empty() {
                    for v in values.iter().rev() {
                        section_lines.insert(index, format!("{opt}{sep}{v}\n"));
                    }
                    msg = "option added";
                    changed = true;
                } else if e.allow_no_value && !no_value_present {
                    section_lines.insert(index, format!("{opt}\n"));
                    msg = "option added";
                    changed = true;
                }
            }
            break;
        }
    } else if let Some(opt) = option {
        let len = section_lines.len();
        if e.exclusive {
            section_lines.retain(|l| match_opt(opt, l, false).is_none());
        } else if !values.is_empty() {
            section_lines.retain(|l| {
                !match_opt(opt, l, false).is_some_and(|m| values.iter().any(|v| v == m.value))
            });
        }
        if section_lines.len() != len {
            changed = true;
            msg = "option changed";
        }
    } else if !section_lines.is_empty() {
        section_lines.clear();
        msg = "section removed";
        changed = true;
    }

    let mut lines = before;
    lines.extend(section_lines);
    lines.extend(after);
    if !lines.is_empty() {
        lines.remove(0);
    }
    lines.pop();

    if !within && e.present {
        lines.push(format!("[{section}]\n"));
        msg = "section and option added";
        if let Some(conds) = &e.section_has_values {
            for (copt, cvals) in conds {
                if Some(copt.as_str()) != option {
                    if !cvals.is_empty() {
                        for v in cvals {
                            lines.push(format!("{copt}{sep}{v}\n"));
                        }
                    } else if e.allow_no_value {
                        lines.push(format!("{copt}\n"));
                    }
                } else if !e.exclusive {
                    for v in cvals {
                        if !values.contains(v) {
                            values.push(v.clone());
                        }
                    }
                }
            }
        }
        match option {
            Some(opt) if !values.is_empty() => {
                for v in &values {
                    lines.push(format!("{opt}{sep}{v}\n"));
                }
            }
            Some(opt) if e.allow_no_value => lines.push(format!("{opt}\n")),
            _ => msg = "only section added",
        }
        changed = true;
    }
    Ok((lines.concat(), changed, msg))
}

/// `section_has_values`: a list of `{option, value}` or `{option, values}`.
fn parse_section_has(v: &Value) -> Result<Option<Conditions>, ModuleError> {
    let items = match v {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        _ => {
            return Err(ModuleError::Args(
                "section_has_values must be a list of {option, value|values}".into(),
            ));
        }
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        other => other.to_string(),
    };
    let mut out = Vec::new();
    for item in items {
        let bad = || {
            ModuleError::Args(format!(
                "section_has_values: expected {{option, value|values}}, found {item}"
            ))
        };
        let map = item.as_object().ok_or_else(bad)?;
        if map
            .keys()
            .any(|k| !["option", "value", "values"].contains(&k.as_str()))
        {
            return Err(bad());
        }
        let opt = map.get("option").filter(|o| !o.is_null()).ok_or_else(bad)?;
        let value = map.get("value").filter(|o| !o.is_null());
        let values = map.get("values").filter(|o| !o.is_null());
        let vals = match (value, values) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Args(
                    "parameters are mutually exclusive: value|values found in section_has_values"
                        .into(),
                ));
            }
            (Some(v), None) => vec![text(v)],
            (None, Some(Value::Array(vs))) => vs.iter().map(text).collect(),
            (None, Some(v)) => vec![text(v)],
            (None, None) => Vec::new(),
        };
        out.push((text(opt), vals));
    }
    Ok(Some(out))
}

/// The arguments as an [`IniEdit`], with Ansible's argument checks.
fn edit_of(a: &IniFileArgs, given_values: bool) -> Result<IniEdit, ModuleError> {
    if a.value.is_some() && given_values {
        return Err(ModuleError::Args(
            "parameters are mutually exclusive: value|values".into(),
        ));
    }
    let present = a.state == "present";
    if present && !a.allow_no_value && a.value.is_none() && a.values.is_empty() {
        return Err(ModuleError::Args(
            "Parameter 'value(s)' must be defined if state=present and allow_no_value=False."
                .into(),
        ));
    }
    Ok(IniEdit {
        section: a.section.clone(),
        section_has_values: parse_section_has(&a.section_has_values)?,
        option: a.option.clone(),
        values: match &a.value {
            Some(v) => vec![v.clone()],
            None => a.values.clone(),
        },
        present,
        exclusive: a.exclusive,
        no_extra_spaces: a.no_extra_spaces,
        ignore_spaces: a.ignore_spaces,
        allow_no_value: a.allow_no_value,
        modify_inactive_option: a.modify_inactive_option,
    })
}

async fn check_ini(
    tr: &mut HostView<'_>,
    args: &Args,
    ctx: &ModuleCtx<'_>,
) -> Result<Verdict, ModuleError> {
    let a = IniFileArgs::parse(args)?;
    let given_values = args.get("values").is_some_and(|v| !v.is_null());
    let edit = edit_of(&a, given_values)?;
    // Ansible's own backup copy is what rdeploy's backup already is.
    let _ = a.backup;
    let mut tf = read_text_file(tr, ctx, &a.path).await?;
    // Without `follow`, Ansible writes at `path` itself: a symlink there becomes a file.
    tf.real = a.path.clone();
    let original = match &tf.bytes {
        Some(b) => Some(
            String::from_utf8(b.clone())
                .map_err(|_| failed(format!("{}: not UTF-8 text", a.path)))?,
        ),
        None if !a.create => {
            let mut r = Args::new();
            r.insert("rc".into(), Value::from(257));
            return Err(ModuleError::Failed {
                msg: format!("Destination {} does not exist!", a.path),
                result: r,
            });
        }
        None => None,
    };
    let (text, changed, msg) =
        edit_ini(original.as_deref(), &edit).map_err(|m| ModuleError::Args(m.to_string()))?;
    let mut attrs = Args::new();
    if !a.mode.is_null() {
        attrs.insert("mode".into(), a.mode.clone());
    }
    if let Some(o) = &a.owner {
        attrs.insert("owner".into(), Value::from(o.clone()));
    }
    if let Some(g) = &a.group {
        attrs.insert("group".into(), Value::from(g.clone()));
    }
    let mut result = Args::new();
    result.insert("path".into(), Value::from(a.path.clone()));
    let new = changed.then(|| text.into_bytes());
    // The file is only created when an edit is made (an absent file stays absent).
    let verdict = edit_verdict(&a.path, &tf, new, &attrs, msg.into(), result)?;
    // Ansible's msg says nothing of attributes.
    Ok(match verdict {
        Verdict::InSync { mut result } => {
            result.insert("msg".into(), Value::from(msg));
            Verdict::InSync { result }
        }
        Verdict::Drift(mut d) => {
            if let Some((_, r)) = d.plan.downcast_mut::<(super::common::EditPlan, Args)>() {
                r.insert("msg".into(), Value::from(msg));
            }
            Verdict::Drift(d)
        }
    })
}

impl Module for IniFile {
    fn ahead(&self) -> Ahead {
        Ahead::Reads
    }

    fn name(&self) -> &'static str {
        "ini_file"
    }

    fn check<'a>(
        &'a self,
        tr: &'a mut HostView<'_>,
        args: &'a Args,
        ctx: &'a ModuleCtx<'a>,
    ) -> BoxFut<'a, Result<Verdict, ModuleError>> {
        Box::pin(check_ini(tr, args, ctx))
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
        IniFileArgs::parse(args)
            .map(|a| vec![Resource::Path(a.path)])
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[path = "ini_file_tests.rs"]
mod tests;
