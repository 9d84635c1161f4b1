//! Python `re` semantics on top of the `regex` crate, for the modules whose arguments are
//! Python regexes (`lineinfile`, `replace`, `find` with `use_regex`).
//!
//! Owns the pattern translation and Python's replacement templates (`\1`, `\g<1>`, `\g<name>`,
//! `\n`...). Differences from Python that remain (documented for users): no look-around and no
//! backreferences inside a pattern (`(?=...)`, `(?<!...)`, `\1`, `(?P=name)` are refused with a
//! clear error), no possessive quantifiers or atomic groups; `\Z` is translated to `\z`;
//! `\d`/`\w`/`\s` are Unicode-aware as in Python 3 `str` patterns. It must not touch hosts.

use regex::{Captures, Regex, RegexBuilder};

use crate::modules::runtime::ModuleError;

/// Compiles a Python-style `pattern` (`multi_line`: Python's `re.MULTILINE`; `dot_all`:
/// `re.DOTALL`). `what` names the argument in errors.
pub fn compile(
    pattern: &str,
    what: &str,
    multi_line: bool,
    dot_all: bool,
) -> Result<Regex, ModuleError> {
    let translated = translate(pattern);
    RegexBuilder::new(&translated)
        .multi_line(multi_line)
        .dot_matches_new_line(dot_all)
        .build()
        .map_err(|e| {
            ModuleError::Args(format!(
                "{what}: {pattern:?} is not a supported regex (Python syntax without look-around or backreferences): {e}"
            ))
        })
}

/// `\Z` (Python: end of string) → `\z`; everything else is passed as written.
pub fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('Z') => out.push_str("\\z"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Lit(String),
    Group(usize),
    Named(String),
}

/// A Python replacement template (`re.sub`'s `repl`, `match.expand`), checked against a regex.
#[derive(Clone, Debug)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `repl` for `re`: `\1`..`\99`, `\g<1>`, `\g<name>`, `\n \t \r \f \v \a \b \\`;
    /// an unknown group or an unknown letter escape is an error, as in Python.
    pub fn parse(repl: &str, re: &Regex) -> Result<Template, ModuleError> {
        let bad = |m: String| ModuleError::Args(format!("replacement {repl:?}: {m}"));
        let groups = re.captures_len();
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = repl.chars().peekable();
        let flush = |lit: &mut String, pieces: &mut Vec<Piece>| {
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(lit)));
            }
        };
        while let Some(c) = chars.next() {
            if c != '\\' {
                lit.push(c);
                continue;
            }
            match chars.next() {
                None => return Err(bad("bad escape (end of pattern)".into())),
                Some(d @ '1'..='9') => {
                    let mut n = d.to_digit(10).unwrap_or(0) as usize;
                    if let Some(e) = chars.peek().and_then(|c| c.to_digit(10)) {
                        n = n * 10 + e as usize;
                        chars.next();
                    }
                    if n >= groups {
                        return Err(bad(format!("invalid group reference {n}")));
                    }
                    flush(&mut lit, &mut pieces);
                    pieces.push(Piece::Group(n));
                }
                Some('0') => lit.push('\0'),
                Some('g') => {
                    if chars.next() != Some('<') {
                        return Err(bad("missing < after \\g".into()));
                    }
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('>') => break,
                            Some(c) => name.push(c),
                            None => return Err(bad("missing > in \\g<...>".into())),
                        }
                    }
                    flush(&mut lit, &mut pieces);
                    if let Ok(n) = name.parse::<usize>() {
                        if n >= groups {
                            return Err(bad(format!("invalid group reference {n}")));
                        }
                        pieces.push(Piece::Group(n));
                    } else if re.capture_names().any(|g| g == Some(name.as_str())) {
                        pieces.push(Piece::Named(name));
                    } else {
                        return Err(bad(format!("unknown group name '{name}'")));
                    }
                }
                Some('n') => lit.push('\n'),
                Some('t') => lit.push('\t'),
                Some('r') => lit.push('\r'),
                Some('f') => lit.push('\u{c}'),
                Some('v') => lit.push('\u{b}'),
                Some('a') => lit.push('\u{7}'),
                Some('b') => lit.push('\u{8}'),
                Some('\\') => lit.push('\\'),
                Some(c) if c.is_ascii_alphabetic() => {
                    return Err(bad(format!("bad escape \\{c}")));
                }
                Some(c) => {
                    lit.push('\\');
                    lit.push(c);
                }
            }
        }
        flush(&mut lit, &mut pieces);
        Ok(Template { pieces })
    }

    /// The replacement for one match (an unmatched group is empty, as in Python 3.5+).
    pub fn expand(&self, caps: &Captures<'_>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Group(n) => out.push_str(caps.get(*n).map_or("", |m| m.as_str())),
                Piece::Named(n) => out.push_str(caps.name(n).map_or("", |m| m.as_str())),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand_like_python() {
        let re = compile(r"^(?P<key>\w+)=(\d+)?", "regexp", true, false).unwrap();
        let caps = re.captures("port=").unwrap();
        let t = Template::parse(r"\g<key>: \2|\1\n\\", &re).unwrap();
        assert_eq!(t.expand(&caps), "port: |port\n\\");
        assert!(Template::parse(r"\3", &re).is_err());
        assert!(Template::parse(r"\g<nope>", &re).is_err());
        assert!(Template::parse(r"\q", &re).is_err());
    }

    #[test]
    fn python_only_syntax() {
        assert!(compile(r"a\Z", "r", false, false).unwrap().is_match("xa"));
        assert!(!compile(r"a\Z", "r", false, false).unwrap().is_match("a\n"));
        let e = compile(r"(?<=a)b", "regexp", false, false).unwrap_err();
        assert!(e.to_string().contains("look-around"), "{e}");
    }
}
