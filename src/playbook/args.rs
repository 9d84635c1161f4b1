//! `key=value` module arguments written as text (`file: path=/x state=directory`,
//! `command: chdir=/tmp ls -l`), split the way Ansible's `split_args`/`parse_kv` do:
//! whitespace separates words except inside quotes and Jinja `{{ }}` / `{% %}` / `{# #}`.
//!
//! Owns splitting and extraction only. It must not know which module takes which argument
//! beyond the list of names its caller passes in.

use crate::yaml::{Kind, Node};

/// A word of the text: its byte range and, for `key=value` words, the key and unquoted value.
#[derive(Debug, PartialEq)]
struct Word {
    start: usize,
    end: usize,
    kv: Option<(String, String)>,
}

/// The result of splitting module text.
#[derive(Debug, Default, PartialEq)]
pub struct KvSplit {
    /// `key=value` pairs taken out, as string nodes positioned at the text.
    pub args: Vec<(Node, Node)>,
    /// The rest of the text (trimmed), if any is left.
    pub rest: Option<String>,
    /// Words that were neither taken nor allowed to stay (for modules without free form).
    pub stray: Vec<String>,
}

/// Splits `text`: a `key=value` word whose key `take` accepts becomes an argument; with
/// `keep_rest`, every other word stays in `rest` (text between them kept as written), else
/// such words are reported in `stray`.
pub fn split_kv(text: &str, at: &Node, take: &dyn Fn(&str) -> bool, keep_rest: bool) -> KvSplit {
    let words = split_words(text);
    let mut out = KvSplit::default();
    let mut removed: Vec<(usize, usize)> = Vec::new();
    for w in &words {
        match &w.kv {
            Some((k, v)) if take(k) => {
                out.args.push((str_node(k, at), str_node(v, at)));
                removed.push((w.start, w.end));
            }
            _ if keep_rest => {}
            _ => out.stray.push(text[w.start..w.end].to_string()),
        }
    }
    if keep_rest {
        let mut rest = String::new();
        let mut pos = 0;
        for (s, e) in removed {
            rest.push_str(&text[pos..s]);
            pos = e;
        }
        rest.push_str(&text[pos..]);
        let rest = if out.args.is_empty() {
            text.to_string()
        } else {
            rest.trim().to_string()
        };
        if !rest.trim().is_empty() {
            out.rest = Some(rest);
        }
    }
    out
}

fn str_node(s: &str, at: &Node) -> Node {
    Node {
        kind: Kind::Str {
            value: s.to_string(),
            quoted: true,
        },
        loc: at.loc.clone(),
        tag: None,
    }
}

fn split_words(text: &str) -> Vec<Word> {
    let b = text.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let mut quote: Option<u8> = None;
        let mut jinja = 0usize;
        while i < b.len() {
            let c = b[i];
            let next = b.get(i + 1).copied();
            if let Some(q) = quote {
                if c == b'\\' && q == b'"' {
                    i += 2;
                    continue;
                }
                if c == q {
                    quote = None;
                }
            } else if c == b'{' && matches!(next, Some(b'{' | b'%' | b'#')) {
                jinja += 1;
                i += 2;
                continue;
            } else if jinja > 0 && matches!(c, b'}' | b'%' | b'#') && next == Some(b'}') {
                jinja -= 1;
                i += 2;
                continue;
            } else if jinja == 0 && (c == b'"' || c == b'\'') {
                quote = Some(c);
            } else if jinja == 0 && c.is_ascii_whitespace() {
                break;
            }
            i += 1;
        }
        let end = i.min(b.len());
        let word = &text[start..end];
        words.push(Word {
            start,
            end,
            kv: key_value(word),
        });
    }
    words
}

fn key_value(word: &str) -> Option<(String, String)> {
    if word.contains("{{") {
        // A templated key (`set_fact: "{{ item.key }}={{ value }}"`): the first `=` outside
        // `{{ ... }}`.
        let eq = first_eq_outside_jinja(word)?;
        let k = &word[..eq];
        if k.contains("{{") {
            return Some((k.to_string(), unquote(&word[eq + 1..])));
        }
    }
    let (k, v) = word.split_once('=')?;
    if k.is_empty()
        || !k
            .chars()
            .all(|c| c == '_' || c == '-' || c.is_ascii_alphanumeric())
    {
        return None;
    }
    Some((k.to_string(), unquote(v)))
}

fn first_eq_outside_jinja(word: &str) -> Option<usize> {
    let b = word.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'{', Some(b'{')) => {
                depth += 1;
                i += 2;
                continue;
            }
            (b'}', Some(b'}')) if depth > 0 => {
                depth -= 1;
                i += 2;
                continue;
            }
            (b'=', _) if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn unquote(v: &str) -> String {
    let bytes = v.as_bytes();
    if bytes.len() >= 2
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[bytes.len() - 1] == bytes[0]
    {
        let inner = &v[1..v.len() - 1];
        if bytes[0] == b'"' {
            return inner.replace("\\\"", "\"").replace("\\\\", "\\");
        }
        return inner.to_string();
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Loc;

    fn at() -> Node {
        Node {
            kind: Kind::Null,
            loc: Loc::file_start("t.yaml"),
            tag: None,
        }
    }

    #[test]
    fn splits_key_values_with_quotes_and_jinja() {
        let s = split_kv(
            r#"path=/x state=directory mode="0755 x" owner={{ user | default('a b') }}"#,
            &at(),
            &|_| true,
            false,
        );
        let kv: Vec<(String, String)> = s
            .args
            .iter()
            .map(|(k, v)| (k.as_str().unwrap().into(), v.as_str().unwrap().into()))
            .collect();
        assert_eq!(
            kv,
            vec![
                ("path".into(), "/x".into()),
                ("state".into(), "directory".into()),
                ("mode".into(), "0755 x".into()),
                ("owner".into(), "{{ user | default('a b') }}".into()),
            ]
        );
        assert!(s.stray.is_empty());
    }

    #[test]
    fn templated_keys_split_after_their_template() {
        let s = split_kv(
            "{{ item.key }}={{ hostvars[h][item.value] }} {{ k }}_x=\"a b\"",
            &at(),
            &|_| true,
            false,
        );
        let kv: Vec<(String, String)> = s
            .args
            .iter()
            .map(|(k, v)| (k.as_str().unwrap().into(), v.as_str().unwrap().into()))
            .collect();
        assert_eq!(
            kv,
            vec![
                (
                    "{{ item.key }}".into(),
                    "{{ hostvars[h][item.value] }}".into()
                ),
                ("{{ k }}_x".into(), "a b".into()),
            ]
        );
        assert!(s.stray.is_empty());
    }

    #[test]
    fn free_form_keeps_the_rest_as_written() {
        let s = split_kv(
            "chdir=/tmp ls -l   'a b' X=1",
            &at(),
            &|k| k == "chdir",
            true,
        );
        assert_eq!(s.args.len(), 1);
        assert_eq!(s.rest.as_deref(), Some("ls -l   'a b' X=1"));
        let untouched = split_kv("echo a\n  echo b\n", &at(), &|k| k == "chdir", true);
        assert_eq!(untouched.rest.as_deref(), Some("echo a\n  echo b\n"));
    }
}
