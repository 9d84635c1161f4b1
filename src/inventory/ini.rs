//! The INI inventory format: `[group]`, `[group:children]`, `[group:vars]`, `host k=v ...`.
//!
//! Owns reading INI inventory text into the [`Builder`] the way Ansible's `ini` plugin does:
//! lines before any section are ungrouped hosts; host lines are split like Python's
//! `shlex.split(comments=True)`; inline host `key=value` right-hand sides are typed by
//! [`typed_value`] (Python `literal_eval`, else the string), while `[g:vars]` values stay
//! strings, as Ansible's inventory guide documents (its `ini.py` literal-evals both; we follow
//! the documented rule so `version=1.10` never turns into the float 1.1); a
//! `[g:vars]` section needs `g` declared by a `[g]`/`[g:children]` section (in this file or an
//! earlier source), and so does each name listed under `[g:children]`. Unlike Ansible, every
//! bad line is reported (with its column), not just the first. It must not read files.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde_json::Value;

use crate::diag::{Diagnostic, Loc, did_you_mean};

use super::build::Builder;
use super::expand_host_entry;
use super::literal::typed_value;

static SECTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$").expect("constant regex is valid")
});
static GROUP_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([^:\]\s]+)\s*(?:#.*)?$").expect("constant regex is valid"));

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Hosts,
    Children,
    Vars,
    /// After a broken section header: skip lines until the next header.
    Skip,
}

/// Adds the groups and hosts of one INI inventory file to `b`. `file` is the path shown in
/// errors.
pub(crate) fn read(b: &mut Builder, file: &Arc<str>, text: &str) {
    let known_before: HashSet<String> = b.groups.keys().cloned().collect();
    let mut declared: HashSet<String> = HashSet::new();
    // `[g:vars]` headers and `[g:children]` members, checked once the whole file is read.
    let mut vars_refs: Vec<(String, Loc)> = Vec::new();
    let mut child_refs: Vec<(String, String, Loc)> = Vec::new();

    let mut group = "ungrouped".to_string();
    let mut state = State::Hosts;
    for (idx, raw_line) in text.lines().enumerate() {
        let lineno = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let indent = raw_line.len() - raw_line.trim_start().len();
        // Offsets may come from an unquoted token, so they need not fall on a char boundary.
        let col_of = |byte: usize| -> u32 {
            let chars = raw_line
                .char_indices()
                .take_while(|(i, _)| *i < indent + byte)
                .count();
            u32::try_from(chars + 1).unwrap_or(u32::MAX)
        };
        let at = |byte: usize| Loc::new(file, lineno, col_of(byte));

        if let Some(c) = SECTION.captures(line) {
            let name = c[1].to_string();
            let kind = c.get(2).map(|m| (m.as_str().to_string(), m.start()));
            state = match kind.as_ref().map(|(k, _)| k.as_str()) {
                None | Some("hosts") => State::Hosts,
                Some("children") => State::Children,
                Some("vars") => State::Vars,
                Some(other) => {
                    let start = kind.as_ref().map_or(0, |(_, s)| *s);
                    let mut d = Diagnostic::at(
                        &at(start),
                        format!(
                            "section [{name}:{other}] has unknown type '{other}': expected 'children' or 'vars'"
                        ),
                    );
                    if let Some(s) = did_you_mean(other, ["children", "vars"]) {
                        d = d.note(format!("did you mean '{s}'?"));
                    }
                    b.diags.push(d);
                    State::Skip
                }
            };
            match state {
                State::Hosts | State::Children => {
                    declared.insert(name.clone());
                    b.add_group(&name, Some(&at(1)));
                }
                State::Vars => vars_refs.push((name.clone(), at(1))),
                State::Skip => {}
            }
            group = name;
            continue;
        }
        if line.starts_with('[') {
            b.error(
                Some(&at(0)),
                format!(
                    "invalid section header '{line}': expected [group], [group:children] or [group:vars] with no spaces"
                ),
            );
            state = State::Skip;
            continue;
        }
        match state {
            State::Skip => {}
            State::Hosts => host_line(b, &group, line, &at),
            State::Vars => match line.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    let loc = at(k.len() + 1);
                    b.set_group_var(&group, k.trim(), group_var_value(v.trim()), Some(&loc));
                }
                _ => b.error(
                    Some(&at(0)),
                    format!("expected 'key=value' in [{group}:vars], found '{line}'"),
                ),
            },
            State::Children => match GROUP_NAME.captures(line) {
                Some(c) => child_refs.push((group.clone(), c[1].to_string(), at(0))),
                None => b.error(
                    Some(&at(0)),
                    format!("expected a group name in [{group}:children], found '{line}'"),
                ),
            },
        }
    }

    let is_declared = |g: &str| declared.contains(g) || known_before.contains(g);
    let candidates: Vec<String> = declared.iter().chain(&known_before).cloned().collect();
    for (g, loc) in vars_refs {
        if is_declared(&g) {
            b.add_group(&g, Some(&loc));
        } else {
            b.error(
                Some(&loc),
                format!(
                    "section [{g}:vars] is for group '{g}', which is not declared by a [{g}] or [{g}:children] section"
                ),
            );
        }
    }
    for (parent, child, loc) in child_refs {
        if is_declared(&child) {
            b.add_child(&parent, &child, Some(&loc));
        } else {
            let mut d = Diagnostic::at(
                &loc,
                format!(
                    "[{parent}:children] includes undefined group '{child}': declare it with a [{child}] section"
                ),
            );
            if let Some(s) = did_you_mean(&child, candidates.iter().map(String::as_str)) {
                d = d.note(format!("did you mean '{s}'?"));
            }
            b.diags.push(d);
        }
    }
}

/// `host[:port] [key=value ...] [# comment]` in a hosts section.
fn host_line(b: &mut Builder, group: &str, line: &str, at: &dyn Fn(usize) -> Loc) {
    let tokens = match shlex_split(line) {
        Ok(t) => t,
        Err((offset, msg)) => {
            b.error(Some(&at(offset)), format!("cannot split host line: {msg}"));
            return;
        }
    };
    let Some((first, first_at)) = tokens.first() else {
        return;
    };
    let (names, port) = match expand_host_entry(first) {
        Ok(x) => x,
        Err(e) => {
            // Offsets are into the token; without quotes in the host name they match the line.
            b.error(Some(&at(first_at + e.offset)), e.message);
            return;
        }
    };
    let mut vars = Vec::new();
    for (tok, tok_at) in &tokens[1..] {
        match tok.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                let v = typed_value(v);
                b.check_var(k, &v, Some(&at(*tok_at + k.len() + 1)));
                vars.push((k.to_string(), v));
            }
            _ => b.error(
                Some(&at(*tok_at)),
                format!("expected a 'key=value' host variable, found '{tok}'"),
            ),
        }
    }
    let loc = at(*first_at);
    for name in &names {
        b.add_host(group, name, Some(&loc));
        if let Some(p) = port {
            b.set_host_var(name, "ansible_port", p.into());
        }
        for (k, v) in &vars {
            b.set_host_var(name, k, v.clone());
        }
    }
}

/// Python's `shlex.split(line, comments=True)` (POSIX mode): whitespace separates tokens,
/// quotes group, a backslash escapes outside single quotes, `#` outside quotes ends the line.
/// Each token comes with the byte offset where it starts. An error carries the offset of the
/// unclosed quote or dangling backslash.
fn shlex_split(line: &str) -> Result<Vec<(String, usize)>, (usize, &'static str)> {
    let mut tokens = Vec::new();
    let mut cur: Option<(String, usize)> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(t) = cur.take() {
                    tokens.push(t);
                }
            }
            '#' => break,
            '\\' => {
                let tok = cur.get_or_insert_with(|| (String::new(), i));
                match chars.next() {
                    Some((_, n)) => tok.0.push(n),
                    None => return Err((i, "no character after the backslash")),
                }
            }
            '\'' | '"' => {
                let tok = cur.get_or_insert_with(|| (String::new(), i));
                let mut closed = false;
                while let Some((_, n)) = chars.next() {
                    if n == c {
                        closed = true;
                        break;
                    }
                    if c == '"' && n == '\\' {
                        match chars.peek() {
                            Some(&(_, e)) if e == '"' || e == '\\' => {
                                tok.0.push(e);
                                chars.next();
                            }
                            _ => tok.0.push('\\'),
                        }
                        continue;
                    }
                    tok.0.push(n);
                }
                if !closed {
                    return Err((i, "no closing quotation"));
                }
            }
            c => cur.get_or_insert_with(|| (String::new(), i)).0.push(c),
        }
    }
    if let Some(t) = cur.take() {
        tokens.push(t);
    }
    Ok(tokens)
}

/// A `[g:vars]` value: always a string (`x=5` is "5", `flag=False` is "False"); a quoted
/// Python string literal loses its quotes.
fn group_var_value(text: &str) -> Value {
    match typed_value(text) {
        s @ Value::String(_) => s,
        _ => Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shlex_like_python() {
        let t = |s: &str| -> Vec<String> {
            shlex_split(s)
                .unwrap()
                .into_iter()
                .map(|(t, _)| t)
                .collect()
        };
        assert_eq!(t("a b=1  c='x y'"), ["a", "b=1", "c=x y"]);
        assert_eq!(t(r#"a b="q\"q" c=\#d # rest"#), ["a", "b=q\"q", "c=#d"]);
        assert_eq!(t("a b=c#d"), ["a", "b=c"]);
        assert_eq!(t(r#"a b="x\ny""#), ["a", "b=x\\ny"]);
        assert_eq!(t("a b='\"[1, 2]\"'"), ["a", "b=\"[1, 2]\""]);
        assert_eq!(shlex_split("a b='x").unwrap_err().0, 4);
    }
}
