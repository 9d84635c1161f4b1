//! The plan-time check of what a template names, when rendering it could not get there.
//!
//! The check renders each template with stand-ins for run-time values; an operator the
//! stand-in does not take (`'^' + item`, `r.stdout % 2`) stops that render with an error
//! that is an artefact of the stand-in, so the rest of the text is never evaluated. Here the
//! text's tokens are read instead: every filter (`| NAME`), test (`is NAME`) and lookup
//! (`lookup('NAME', ..., OPTION=...)`, `query`, `q`) it names is checked by name alone, with
//! the same error the render gives, so a typo, a collection's filter or a lookup rdeploy does
//! not have is still refused before the run.
//!
//! It decides nothing about variables (whether one is defined depends on guards only a render
//! can see), and must not run a lookup.

use minijinja::machinery::{Token, tokenize};
use minijinja::{Environment, Error, ErrorKind};

/// One name `source` uses that the environment refuses: the error, and the 1-based line and
/// column of the name in `source`.
pub(super) struct Refused {
    pub error: Error,
    pub line: usize,
    pub col: usize,
}

/// Every filter, test and lookup named in `source` (a template, or a bare expression when
/// `in_expr`) that `env` refuses, in order. Text that does not tokenize gives nothing (the
/// render reports a syntax error itself).
pub(super) fn refused(env: &Environment<'static>, source: &str, in_expr: bool) -> Vec<Refused> {
    let mut toks: Vec<(Token<'_>, usize, usize)> = Vec::new();
    for t in tokenize(source, in_expr, env.syntax().clone()) {
        match t {
            Ok((tok, span)) => toks.push((
                tok,
                usize::from(span.start_line),
                usize::from(span.start_col) + 1,
            )),
            Err(_) => return Vec::new(),
        }
    }
    let ident = |i: usize| match toks.get(i) {
        Some((Token::Ident(s), _, _)) => Some(*s),
        _ => None,
    };
    // A dotted name starting at token `i` (`ansible.builtin.to_json`), and the index after it.
    let dotted = |mut i: usize| -> Option<(String, usize)> {
        let mut name = ident(i)?.to_string();
        i += 1;
        while matches!(toks.get(i), Some((Token::Dot, _, _)))
            && let Some(part) = ident(i + 1)
        {
            name.push('.');
            name.push_str(part);
            i += 2;
        }
        Some((name, i))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let (line, col) = (toks[i].1, toks[i].2);
        let mut plugin_name = String::new();
        let after_dot = i > 0 && matches!(toks[i - 1].0, Token::Dot);
        let found = match &toks[i].0 {
            Token::Pipe => dotted(i + 1).map(|(n, _)| format!("__rd | {n}")),
            Token::Ident("is") => {
                let at = if ident(i + 1) == Some("not") {
                    i + 2
                } else {
                    i + 1
                };
                dotted(at).map(|(n, _)| format!("__rd is {n}"))
            }
            Token::Ident(f @ ("lookup" | "query" | "q")) if !after_dot => lookup_call(&toks, i + 1)
                .map(|(plugin, opts)| {
                    plugin_name = plugin;
                    let mut e = format!("{f}(__rd_plugin, __rd");
                    for o in opts {
                        e.push_str(&format!(", {o}=__rd"));
                    }
                    e.push(')');
                    e
                }),
            _ => None,
        };
        if let Some(expr) = found
            && let Some(error) = refusal(env, &expr, &plugin_name)
        {
            out.push(Refused { error, line, col });
        }
        i += 1;
    }
    out
}

/// `('NAME', ..., OPTION=..., ...)` from token `i` on: the plugin's literal name and the
/// options given (not `wantlist` or `errors`, whose values the stand-in cannot give).
fn lookup_call(toks: &[(Token<'_>, usize, usize)], i: usize) -> Option<(String, Vec<String>)> {
    if !matches!(toks.get(i), Some((Token::ParenOpen, _, _))) {
        return None;
    }
    let plugin = match toks.get(i + 1) {
        Some((Token::Str(s), _, _)) => s.to_string(),
        Some((Token::String(s), _, _)) => s.to_string(),
        _ => return None,
    };
    let mut opts = Vec::new();
    let mut depth = 0usize;
    for (j, (tok, _, _)) in toks.iter().enumerate().skip(i) {
        match tok {
            Token::ParenOpen | Token::BracketOpen | Token::BraceOpen => depth += 1,
            Token::ParenClose | Token::BracketClose | Token::BraceClose => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            Token::Ident(k)
                if depth == 1
                    && matches!(toks.get(j + 1), Some((Token::Assign, _, _)))
                    && !matches!(*k, "wantlist" | "errors") =>
            {
                opts.push(k.to_string());
            }
            _ => {}
        }
    }
    Some((plugin, opts))
}

/// The error `expr` (a filter, test or lookup applied to a stand-in) gives when the name it
/// uses is refused; `None` when it exists (whatever else it makes of the stand-in).
fn refusal(env: &Environment<'static>, expr: &str, plugin: &str) -> Option<Error> {
    let ctx = minijinja::context! { __rd => crate::validate::unknown(), __rd_plugin => plugin };
    let e = match env.compile_expression(expr) {
        Ok(compiled) => compiled.eval(ctx).err()?,
        Err(e) => e,
    };
    matches!(
        e.kind(),
        ErrorKind::UnknownFilter | ErrorKind::UnknownTest | ErrorKind::UnknownFunction
    )
    .then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(source: &str, in_expr: bool) -> Vec<(String, usize, usize)> {
        let env = crate::template::plan_environment(crate::validate::unknown());
        refused(&env, source, in_expr)
            .into_iter()
            .map(|r| {
                (
                    r.error.detail().unwrap_or_default().to_string(),
                    r.line,
                    r.col,
                )
            })
            .collect()
    }

    #[test]
    fn filters_tests_and_lookups_are_found_by_name_where_they_are() {
        assert_eq!(
            names("a {{ (x + 1) | to_jsn }}\n{{ y is not sucess }}", false),
            vec![
                ("filter to_jsn is unknown".to_string(), 1, 14),
                ("test sucess is unknown".to_string(), 2, 6),
            ]
        );
        assert_eq!(
            names("x | ansible.builtin.to_jsn", true),
            vec![("filter ansible.builtin.to_jsn is unknown".to_string(), 1, 3)]
        );
        let found = names("{{ lookup('hashi_vault', 'a' + x) }}", false);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].0.contains("'hashi_vault' is not supported"),
            "{found:?}"
        );
        let found = names("{{ query('env', x, wantlist=true, nope=1) }}", false);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].0.contains("has no option 'nope'"), "{found:?}");
    }

    #[test]
    fn names_that_exist_methods_and_text_are_not_refused() {
        for ok in [
            "{{ (x + 1) | to_json | b64encode }} {{ x is defined }} {{ x is not ansible.builtin.failed }}",
            "{{ x.lookup('nope') }} | to_jsn is unknown {{ 'a | b' }}",
            "{{ lookup('env', 'HOME', default='') }} {{ q('items', x) }}",
            "{{ unclosed ",
        ] {
            assert_eq!(names(ok, false), vec![], "{ok}");
        }
    }
}
