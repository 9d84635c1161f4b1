//! Typing INI values the way Ansible does: Python's `ast.literal_eval`, else the text itself.
//!
//! Owns a small parser for Python literals (ints in any base, floats, `True`/`False`/`None`,
//! quoted strings with escapes and adjacent concatenation, lists, tuples, sets and dicts) that
//! turns them into JSON values. Anything that is not a complete literal stays the original string,
//! exactly as Ansible keeps `yes`, `FALSE` or `a b` as strings. It must not read files or know INI
//! syntax (the caller has already split the line).

use serde_json::{Map, Number, Value};

/// The value of an INI `key=value` right-hand side: a Python literal if it is one, else the
/// string unchanged.
pub fn typed_value(text: &str) -> Value {
    let mut p = Parser {
        s: text.trim_start_matches([' ', '\t']).as_bytes(),
        src: text.trim_start_matches([' ', '\t']),
        i: 0,
        depth: 0,
    };
    match p.expr_top() {
        Some(v) => v,
        None => Value::String(text.to_string()),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn expr_top(&mut self) -> Option<Value> {
        let v = self.expr()?;
        // A top-level `1, 2` is a tuple in Python.
        self.ws();
        let v = if self.peek() == Some(b',') {
            let mut items = vec![v];
            while self.eat(b',') {
                self.ws();
                if self.at_end() {
                    break;
                }
                items.push(self.expr()?);
                self.ws();
            }
            Value::Array(items)
        } else {
            v
        };
        self.ws();
        self.at_end().then_some(v)
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Skips spaces, tabs, newlines and a `#` comment to the end of the line.
    fn ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' => self.i += 1,
                b'#' => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn expr(&mut self) -> Option<Value> {
        self.ws();
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let v = self.atom();
        self.depth -= 1;
        v
    }

    fn atom(&mut self) -> Option<Value> {
        let c = self.peek()?;
        match c {
            b'[' => {
                self.i += 1;
                self.seq(b']').map(|(v, _)| Value::Array(v))
            }
            b'(' => {
                self.i += 1;
                let (items, saw_comma) = self.seq(b')')?;
                // `(x)` is just x; `(x,)` and `()` are tuples.
                if items.len() == 1 && !saw_comma {
                    items.into_iter().next()
                } else {
                    Some(Value::Array(items))
                }
            }
            b'{' => {
                self.i += 1;
                self.dict_or_set()
            }
            b'-' | b'+' => {
                self.i += 1;
                self.ws();
                let n = self.number()?;
                if c == b'+' {
                    return Some(n);
                }
                negate(n)
            }
            b'0'..=b'9' | b'.' => self.number(),
            b'\'' | b'"' => self.strings(),
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.i += 1;
                }
                let word = &self.src[start..self.i];
                match word {
                    "True" => Some(Value::Bool(true)),
                    "False" => Some(Value::Bool(false)),
                    "None" => Some(Value::Null),
                    _ if matches!(self.peek(), Some(b'\'' | b'"')) && is_prefix(word) => {
                        self.i = start;
                        self.strings()
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Items up to `close`; returns them and whether a comma was seen.
    fn seq(&mut self, close: u8) -> Option<(Vec<Value>, bool)> {
        let mut items = Vec::new();
        let mut saw_comma = false;
        loop {
            self.ws();
            if self.eat(close) {
                return Some((items, saw_comma));
            }
            items.push(self.expr()?);
            self.ws();
            if self.eat(b',') {
                saw_comma = true;
                continue;
            }
            self.ws();
            return self.eat(close).then_some((items, saw_comma));
        }
    }

    fn dict_or_set(&mut self) -> Option<Value> {
        self.ws();
        if self.eat(b'}') {
            return Some(Value::Object(Map::new()));
        }
        let first = self.expr()?;
        self.ws();
        if self.eat(b':') {
            let mut map = Map::new();
            let v = self.expr()?;
            map.insert(key_string(&first), v);
            loop {
                self.ws();
                if self.eat(b'}') {
                    return Some(Value::Object(map));
                }
                if !self.eat(b',') {
                    return None;
                }
                self.ws();
                if self.eat(b'}') {
                    return Some(Value::Object(map));
                }
                let k = self.expr()?;
                self.ws();
                if !self.eat(b':') {
                    return None;
                }
                let v = self.expr()?;
                map.insert(key_string(&k), v);
            }
        }
        // A set: Ansible would get a Python set; as data it is a list of distinct items.
        let mut items = vec![first];
        loop {
            self.ws();
            if self.eat(b'}') {
                break;
            }
            if !self.eat(b',') {
                return None;
            }
            self.ws();
            if self.eat(b'}') {
                break;
            }
            items.push(self.expr()?);
        }
        let mut distinct: Vec<Value> = Vec::new();
        for it in items {
            if !distinct.contains(&it) {
                distinct.push(it);
            }
        }
        Some(Value::Array(distinct))
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        {
            // An exponent sign belongs to the number: `1e-3`.
            self.i += 1;
            if matches!(self.s.get(self.i - 1), Some(b'e' | b'E'))
                && matches!(self.peek(), Some(b'+' | b'-'))
                && !self.src[start..self.i].starts_with("0x")
                && !self.src[start..self.i].starts_with("0X")
            {
                self.i += 1;
            }
        }
        parse_number(&self.src[start..self.i])
    }

    /// One or more adjacent string literals, concatenated.
    fn strings(&mut self) -> Option<Value> {
        let mut out = String::new();
        let mut any = false;
        loop {
            self.ws();
            let start = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                self.i += 1;
            }
            let prefix = self.src[start..self.i].to_ascii_lowercase();
            if !matches!(self.peek(), Some(b'\'' | b'"')) || !is_prefix(&prefix) {
                self.i = start;
                break;
            }
            out.push_str(&self.string(prefix.contains('r'))?);
            any = true;
        }
        any.then_some(Value::String(out))
    }

    fn string(&mut self, raw: bool) -> Option<String> {
        let q = self.peek()?;
        let triple = self.s.get(self.i..self.i + 3) == Some(&[q, q, q][..]);
        self.i += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let rest = &self.src[self.i..];
            let c = rest.chars().next()?;
            if c as u32 == u32::from(q) {
                if !triple {
                    self.i += 1;
                    return Some(out);
                }
                if rest.as_bytes().get(..3) == Some(&[q, q, q][..]) {
                    self.i += 3;
                    return Some(out);
                }
            }
            if c == '\n' && !triple {
                return None;
            }
            self.i += c.len_utf8();
            if c != '\\' {
                out.push(c);
                continue;
            }
            let e = self.src[self.i..].chars().next()?;
            if raw {
                out.push('\\');
                out.push(e);
                self.i += e.len_utf8();
                continue;
            }
            self.i += e.len_utf8();
            match e {
                '\n' => {}
                '\\' => out.push('\\'),
                '\'' => out.push('\''),
                '"' => out.push('"'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\x0b'),
                '0'..='7' => {
                    let mut v = e.to_digit(8)?;
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d @ b'0'..=b'7') => {
                                v = v * 8 + u32::from(d - b'0');
                                self.i += 1;
                            }
                            _ => break,
                        }
                    }
                    out.push(char::from_u32(v)?);
                }
                'x' => out.push(self.hex_escape(2)?),
                'u' => out.push(self.hex_escape(4)?),
                'U' => out.push(self.hex_escape(8)?),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }

    fn hex_escape(&mut self, n: usize) -> Option<char> {
        let digits = self.src.get(self.i..self.i + n)?;
        let v = u32::from_str_radix(digits, 16).ok()?;
        self.i += n;
        char::from_u32(v)
    }
}

/// `r`, `u`, `b`, `rb`, `br` (any case) or nothing; f-strings are not literals.
fn is_prefix(p: &str) -> bool {
    matches!(
        p.to_ascii_lowercase().as_str(),
        "" | "r" | "u" | "b" | "rb" | "br"
    )
}

fn negate(n: Value) -> Option<Value> {
    let Value::Number(n) = n else { return None };
    if let Some(i) = n.as_i64() {
        return Some(Value::from(i.checked_neg()?));
    }
    if n.as_u64() == Some(1u64 << 63) {
        return Some(Value::from(i64::MIN));
    }
    Number::from_f64(-n.as_f64()?).map(Value::Number)
}

fn parse_number(tok: &str) -> Option<Value> {
    if tok.is_empty() || tok.starts_with('_') || tok.ends_with('_') || tok.contains("__") {
        return None;
    }
    let t = tok.replace('_', "");
    let lower = t.to_ascii_lowercase();
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(digits) = lower.strip_prefix(prefix) {
            return int_value(u64::from_str_radix(digits.trim_start_matches('_'), radix).ok()?);
        }
    }
    if t.bytes().all(|c| c.is_ascii_digit()) {
        // Python refuses `0123` (leading zeros) but accepts `000`.
        if t.len() > 1 && t.starts_with('0') && t.bytes().any(|c| c != b'0') {
            return None;
        }
        return int_value(t.parse::<u64>().ok()?);
    }
    let float_ok = t.bytes().any(|c| c.is_ascii_digit())
        && t.bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !float_ok {
        return None;
    }
    let f: f64 = t.parse().ok()?;
    Number::from_f64(f).map(Value::Number)
}

fn int_value(v: u64) -> Option<Value> {
    Some(match i64::try_from(v) {
        Ok(i) => Value::from(i),
        Err(_) => Value::from(v),
    })
}

/// A dict key as JSON shows it: strings as themselves, other scalars as their JSON text.
fn key_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_literals_become_typed_values() {
        let cases: &[(&str, Value)] = &[
            ("5", json!(5)),
            ("-5", json!(-5)),
            ("0x1F", json!(31)),
            ("0o17", json!(15)),
            ("1_000", json!(1000)),
            ("1.5", json!(1.5)),
            ("1e3", json!(1000.0)),
            (".5", json!(0.5)),
            ("True", json!(true)),
            ("False", json!(false)),
            ("None", json!(null)),
            ("'quoted'", json!("quoted")),
            ("\"a\\tb\"", json!("a\tb")),
            ("'a' 'b'", json!("ab")),
            ("r'\\d+'", json!("\\d+")),
            ("[1, 'two', 3.0]", json!([1, "two", 3.0])),
            ("(1, 2)", json!([1, 2])),
            ("(1)", json!(1)),
            ("{'a': 1, \"b\": [True]}", json!({"a": 1, "b": [true]})),
            ("{1, 2, 2}", json!([1, 2])),
            ("{}", json!({})),
            ("'x' # a comment", json!("x")),
        ];
        for (text, want) in cases {
            assert_eq!(&typed_value(text), want, "{text}");
        }
    }

    #[test]
    fn non_literals_stay_strings() {
        for text in [
            "yes",
            "no",
            "true",
            "FALSE",
            "a b",
            "",
            "0123",
            "1.2.3",
            "foo()",
            "[1, 2",
            "{'a'}x",
            "'unterminated",
            "f'x'",
            "/usr/bin/python3",
            "1j",
            "10.0.0.1",
        ] {
            assert_eq!(typed_value(text), json!(text), "{text}");
        }
    }
}
