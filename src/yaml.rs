//! YAML as Ansible reads it, with a position on every node.
//!
//! Owns turning YAML text into a [`Node`] tree: YAML 1.1 scalar resolution as PyYAML does it
//! (`yes`/`no`/`on`/`off` booleans, `0644` octal, `1:30` sexagesimal), anchors and aliases with
//! an expansion budget, merge keys (`<<`) in order, tags (`!unsafe`, `!vault`) kept for the
//! consumer, duplicate keys refused, and limits on file size and nesting depth. Every node
//! carries its [`Loc`], so that the layers above can say `PATH:LINE:COL` for any mistake.
//!
//! It is also the one place vault-encrypted YAML is opened: [`read_text`] decrypts a whole
//! vault file before it is parsed, and [`load_str`] replaces each `!vault` scalar by its
//! plaintext, tagged `unsafe` (data, never rendered as a template). Both use the passwords
//! the command line installed in [`crate::vault::secrets`], and register what they decrypt
//! for redaction.
//!
//! It must not know playbook or inventory keywords: those layers walk the tree themselves.
//! We build the tree from `granit-parser` events (the parser under serde-saphyr) rather than
//! through serde, because Ansible's task shape (the module is whichever key is left over) and
//! "list every error, not just the first" both need positions on untyped nodes.

use std::collections::HashMap;
use std::sync::Arc;

use granit_parser::{ErrorKind, Event, Parser, ScalarStyle, ScanError};

use crate::diag::{Diagnostic, Loc};
use crate::vault;

/// Limits that keep a hostile or broken file from exhausting the controller.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest file accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of sequences and mappings.
    pub max_depth: usize,
    /// Most nodes that aliases may copy in one file (an alias bomb hits this).
    pub max_alias_nodes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 16 * 1024 * 1024,
            max_depth: 128,
            max_alias_nodes: 100_000,
        }
    }
}

/// One YAML node and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub kind: Kind,
    /// Where the node starts.
    pub loc: Loc,
    /// A local tag such as `!unsafe` or `!vault`, without the `!`. Core tags (`!!str`) are
    /// applied during resolution and not kept.
    pub tag: Option<String>,
}

/// The value of a [`Node`], after YAML 1.1 resolution of plain scalars.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `~`, `null`, or nothing.
    Null,
    /// `true`/`yes`/`on` and their opposites, in any of PyYAML's spellings.
    Bool(bool),
    /// An integer (decimal, `0o`/leading-zero octal, hex, binary, sexagesimal).
    Int(i64),
    /// A float, including `.inf` and `.nan`.
    Float(f64),
    /// A string; `quoted` is true for any non-plain style (quotes or block scalars).
    Str {
        /// The text after escape processing.
        value: String,
        /// Whether the source wrote it as something other than a plain scalar.
        quoted: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order, merge keys already applied.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items, if this is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// True for `~`/`null`/empty.
    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// A short name for the node's type, for "expected a mapping, found a string" messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str { .. } => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The scalar as Ansible would stringify it (`True`, `42`, the text), for keys and
    /// free-form arguments. `None` for collections.
    pub fn scalar_string(&self) -> Option<String> {
        Some(match &self.kind {
            Kind::Null => String::new(),
            Kind::Bool(true) => "True".into(),
            Kind::Bool(false) => "False".into(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => f.to_string(),
            Kind::Str { value, .. } => value.clone(),
            Kind::Seq(_) | Kind::Map(_) => return None,
        })
    }

    /// The node as plain data (what a variable holds). Mapping keys become strings the way
    /// Ansible's JSON would show them; tags are dropped (callers that care look first).
    /// Adds to `out` every string below `self` that sits under an `unsafe` tag (`!unsafe`, a
    /// decrypted `!vault`) and holds template syntax: the texts that stay data once the tags
    /// are gone ([`Node::to_json`] drops them).
    pub fn unsafe_texts(&self, out: &mut std::collections::HashSet<String>) {
        fn walk(n: &Node, under: bool, out: &mut std::collections::HashSet<String>) {
            let under = under || n.tag.as_deref() == Some("unsafe");
            match &n.kind {
                Kind::Str { value, .. } if under && crate::template::has_template(value) => {
                    out.insert(value.clone());
                }
                Kind::Seq(items) => items.iter().for_each(|i| walk(i, under, out)),
                Kind::Map(entries) => entries.iter().for_each(|(_, v)| walk(v, under, out)),
                _ => {}
            }
        }
        walk(self, false, out);
    }

    /// A node holding `v` (a rendered value), every part of it placed at `loc`. Strings are
    /// quoted strings, so a rendered `"yes"` stays text.
    pub fn from_json(v: &serde_json::Value, loc: &Loc) -> Node {
        use serde_json::Value;
        let kind = match v {
            Value::Null => Kind::Null,
            Value::Bool(b) => Kind::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Kind::Int(i),
                None => Kind::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Kind::Str {
                value: s.clone(),
                quoted: true,
            },
            Value::Array(items) => {
                Kind::Seq(items.iter().map(|i| Node::from_json(i, loc)).collect())
            }
            Value::Object(m) => Kind::Map(
                m.iter()
                    .map(|(k, v)| {
                        (
                            Node::from_json(&Value::String(k.clone()), loc),
                            Node::from_json(v, loc),
                        )
                    })
                    .collect(),
            ),
        };
        Node {
            kind,
            loc: loc.clone(),
            tag: None,
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(f.to_string())),
            Kind::Str { value, .. } => Value::String(value.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar_string().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Parses every document in `text`. `file` is the path shown in errors.
///
/// An empty file yields no documents. The first syntax error stops parsing (YAML cannot be
/// resynchronised reliably); structural mistakes (duplicate keys, bad merge values) are
/// collected and all returned.
pub fn load_str(file: &Arc<str>, text: &str, limits: Limits) -> Result<Vec<Node>, Vec<Diagnostic>> {
    if text.len() > limits.max_bytes {
        return Err(vec![Diagnostic::at(
            &Loc::file_start(Arc::clone(file)),
            format!(
                "file is {} bytes, larger than the {} bytes rdeploy accepts",
                text.len(),
                limits.max_bytes
            ),
        )]);
    }
    let mut b = Builder {
        limits,
        anchors: HashMap::new(),
        alias_nodes: 0,
        errors: Vec::new(),
        stack: Vec::new(),
        docs: Vec::new(),
    };
    for item in Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(x) => x,
            Err(e) => {
                let (line, col, message) = syntax_error(text, &e);
                b.errors.push(Diagnostic::at(
                    &Loc::new(file, line_u32(line), line_u32(col + 1)),
                    format!("invalid YAML: {message}"),
                ));
                return Err(b.errors);
            }
        };
        let loc = Loc::new(
            file,
            line_u32(span.start.line()),
            line_u32(span.start.col() + 1),
        );
        if let Err(d) = b.event(event, loc) {
            b.errors.push(d);
            return Err(b.errors);
        }
    }
    for d in &mut b.docs {
        decrypt_inline(d, &mut b.errors);
    }
    if b.errors.is_empty() {
        Ok(b.docs)
    } else {
        Err(b.errors)
    }
}

/// The message for a vault value or file that cannot be opened.
fn vault_message(e: &vault::VaultError, what: &str) -> String {
    match e {
        vault::VaultError::NoSecret => e.to_string(),
        _ => format!("cannot decrypt this {what}: {e}"),
    }
}

/// Replaces every `!vault` scalar below `n` by its plaintext, tagged `unsafe` so that no layer
/// renders it, and registers the plaintext for redaction.
fn decrypt_inline(n: &mut Node, errors: &mut Vec<Diagnostic>) {
    match &mut n.kind {
        Kind::Seq(items) => items.iter_mut().for_each(|i| decrypt_inline(i, errors)),
        Kind::Map(entries) => entries
            .iter_mut()
            .for_each(|(_, v)| decrypt_inline(v, errors)),
        Kind::Str { value, .. } if n.tag.as_deref() == Some("vault") => {
            let plain = vault::secrets::with(|s| vault::decrypt(value, s))
                .map_err(|e| vault_message(&e, "!vault value"))
                .and_then(|b| {
                    String::from_utf8(b).map_err(|_| "this !vault value is not UTF-8 text".into())
                });
            match plain {
                Ok(p) => {
                    vault::redact::register(&p);
                    n.kind = Kind::Str {
                        value: p,
                        quoted: true,
                    };
                    n.tag = Some("unsafe".into());
                }
                Err(m) => errors.push(Diagnostic::at(&n.loc, m)),
            }
        }
        _ => {}
    }
}

/// Reads and parses a file. Errors name the path.
pub fn load_file(path: &std::path::Path, limits: Limits) -> Result<Vec<Node>, Vec<Diagnostic>> {
    let file: Arc<str> = Arc::from(path.display().to_string());
    let text = read_text(path, &file, limits.max_bytes).map_err(|d| vec![d])?;
    load_str(&file, &text, limits)
}

/// Reads a UTF-8 text file of at most `max_bytes`, naming the file in any error. A vault file
/// (`$ANSIBLE_VAULT;...`) is decrypted here, so every reader of YAML gets the plaintext; the
/// string values of a decrypted YAML file are registered for redaction.
pub fn read_text(
    path: &std::path::Path,
    file: &Arc<str>,
    max_bytes: usize,
) -> Result<String, Diagnostic> {
    let start = Loc::file_start(Arc::clone(file));
    let meta = std::fs::metadata(path)
        .map_err(|e| Diagnostic::at(&start, format!("cannot read file: {e}")))?;
    if meta.len() > max_bytes as u64 {
        return Err(Diagnostic::at(
            &start,
            format!(
                "file is {} bytes, larger than the {max_bytes} bytes rdeploy accepts",
                meta.len()
            ),
        ));
    }
    let mut bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::at(&start, format!("cannot read file: {e}")))?;
    let encrypted = bytes.starts_with(vault::HEADER.as_bytes());
    if encrypted {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        bytes = vault::secrets::with(|s| vault::decrypt(&text, s))
            .map_err(|e| Diagnostic::at(&start, vault_message(&e, "vault file")))?;
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|&&c| c == b'\n').count() + 1;
        let col = upto.iter().rev().take_while(|&&c| c != b'\n').count() + 1;
        Diagnostic::at(
            &Loc::new(file, line_u32(line), line_u32(col)),
            "file is not valid UTF-8",
        )
    })?;
    if encrypted {
        register_file_values(file, &text, max_bytes);
    }
    Ok(text)
}

/// Registers for redaction the scalar values (not the keys) of a decrypted file; a file that
/// is not YAML is registered line by line.
fn register_file_values(file: &Arc<str>, text: &str, max_bytes: usize) {
    let limits = Limits {
        max_bytes,
        ..Limits::default()
    };
    match load_str(file, text, limits) {
        Ok(docs) => docs
            .iter()
            .for_each(|d| vault::redact::register_json(&d.to_json())),
        Err(_) => text.lines().for_each(vault::redact::register),
    }
}

/// Where a syntax error is reported (1-based line, 0-based column) and what it says. The
/// scanner reports where it gave up; the user needs the cause: an unterminated quoted string
/// is reported at its opening quote, a tab at the tab itself.
fn syntax_error(text: &str, e: &ScanError) -> (usize, usize, String) {
    let m = e.marker();
    match e.kind() {
        ErrorKind::UnclosedQuotedScalar => (
            m.line(),
            m.col(),
            "unterminated quoted string: no closing quote before the end of the file".into(),
        ),
        // The scanner stops at the first continuation line that is not indented inside the
        // string, far from where the string began: parse the text up to that line again, so
        // the scanner meets the end inside the string and reports where the string opened.
        ErrorKind::InvalidQuotedScalarIndent => {
            let head: String = text
                .split_inclusive('\n')
                .take(m.line().saturating_sub(1))
                .collect();
            for item in Parser::new_from_str(head.trim_end()) {
                match item {
                    Ok(_) => {}
                    Err(inner) if matches!(inner.kind(), ErrorKind::UnclosedQuotedScalar) => {
                        let o = inner.marker();
                        let rest: String = text.chars().skip(m.index()).collect();
                        let message = if rest.trim().is_empty() {
                            "unterminated quoted string: no closing quote before the end of the file".to_string()
                        } else {
                            format!(
                                "unterminated quoted string: no closing quote before line {}, which is not indented as its continuation",
                                m.line()
                            )
                        };
                        return (o.line(), o.col(), message);
                    }
                    Err(_) => break,
                }
            }
            (m.line(), m.col(), e.info())
        }
        // Reported at the start of the scalar; the tab is in the indentation of one of the
        // lines after it (the first such line, or the scalar would have ended there).
        ErrorKind::TabInPlainScalar => {
            let found = text
                .split('\n')
                .enumerate()
                .skip(m.line())
                .find_map(|(i, l)| {
                    l.chars()
                        .take_while(|c| *c == ' ' || *c == '\t')
                        .position(|c| c == '\t')
                        .map(|c| (i + 1, c))
                });
            let (line, col) = found.unwrap_or((m.line(), m.col()));
            (line, col, e.info())
        }
        ErrorKind::TabNotAllowed
        | ErrorKind::TabInBlockIndentation
        | ErrorKind::TabInIndentation => {
            let (line, col) = tab_position(text, m.line(), m.col());
            (line, col, e.info())
        }
        _ => (m.line(), m.col(), e.info()),
    }
}

/// For a tab error the scanner points somewhere around the tab: after the indentation it is
/// part of, or (inside a plain scalar) at the end of the line before it. Point at the first tab
/// of the blank run around `line`/`col` (1-based line, 0-based column) instead, which is what
/// the user has to delete; the position is kept when that run holds no tab.
fn tab_position(text: &str, line: usize, col: usize) -> (usize, usize) {
    let lines: Vec<Vec<char>> = text.split('\n').map(|l| l.chars().collect()).collect();
    let Some(src) = lines.get(line.saturating_sub(1)) else {
        return (line, col);
    };
    let blank = |c: char| c == ' ' || c == '\t' || c == '\r';
    let mut c = col.min(src.len());
    while c > 0 && blank(src[c - 1]) {
        c -= 1;
    }
    let (mut l, mut c) = (line.saturating_sub(1), c);
    while let Some(chars) = lines.get(l) {
        match chars.get(c) {
            Some('\t') => return (l + 1, c),
            Some(&ch) if blank(ch) => c += 1,
            Some(_) => break,
            None => {
                l += 1;
                c = 0;
            }
        }
    }
    (line, col)
}

fn line_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A collection being built.
enum Open {
    Seq {
        node: Node,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        node: Node,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        merges: Vec<Node>,
    },
}

struct Builder {
    limits: Limits,
    anchors: HashMap<usize, Node>,
    alias_nodes: usize,
    errors: Vec<Diagnostic>,
    stack: Vec<Open>,
    docs: Vec<Node>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, loc: Loc) -> Result<(), Diagnostic> {
        match event {
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(..)
            | Event::DocumentEnd => {
                self.anchors.clear();
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| Diagnostic::at(&loc, "alias refers to an unknown anchor"))?;
                self.alias_nodes += count_nodes(&node);
                if self.alias_nodes > self.limits.max_alias_nodes {
                    return Err(Diagnostic::at(
                        &loc,
                        format!(
                            "aliases expand to more than {} nodes (an alias bomb?)",
                            self.limits.max_alias_nodes
                        ),
                    ));
                }
                self.finish(node, 0);
            }
            Event::UnresolvedAlias(name) => {
                return Err(Diagnostic::at(
                    &loc,
                    format!("alias '*{name}' refers to an unknown anchor"),
                ));
            }
            Event::Scalar(value, style, anchor, tag) => {
                let tag_s = tag
                    .as_ref()
                    .map(|t| (t.handle().to_string(), t.suffix().to_string()));
                let (kind, local_tag) = resolve_scalar(&value, style, tag_s.as_ref(), &loc)?;
                let node = Node {
                    kind,
                    loc,
                    tag: local_tag,
                };
                self.finish(node, anchor);
            }
            Event::SequenceStart(_, anchor, tag) => {
                self.depth_check(&loc)?;
                let tag = tag.and_then(|t| local_tag(t.handle(), t.suffix()));
                self.stack.push(Open::Seq {
                    node: Node {
                        kind: Kind::Null,
                        loc,
                        tag,
                    },
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(_, anchor, tag) => {
                self.depth_check(&loc)?;
                let tag = tag.and_then(|t| local_tag(t.handle(), t.suffix()));
                self.stack.push(Open::Map {
                    node: Node {
                        kind: Kind::Null,
                        loc,
                        tag,
                    },
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    merges: Vec::new(),
                });
            }
            Event::SequenceEnd => {
                if let Some(Open::Seq {
                    mut node,
                    anchor,
                    items,
                }) = self.stack.pop()
                {
                    node.kind = Kind::Seq(items);
                    self.finish(node, anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Open::Map {
                    mut node,
                    anchor,
                    entries,
                    merges,
                    ..
                }) = self.stack.pop()
                {
                    node.kind = Kind::Map(self.apply_merges(entries, merges));
                    self.finish(node, anchor);
                }
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
        Ok(())
    }

    fn depth_check(&self, loc: &Loc) -> Result<(), Diagnostic> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(Diagnostic::at(
                loc,
                format!("nesting deeper than {} levels", self.limits.max_depth),
            ));
        }
        Ok(())
    }

    /// A complete node: remember its anchor and hand it to its parent (or end the document).
    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Open::Seq { items, .. }) => items.push(node),
            Some(Open::Map {
                entries,
                key,
                merges,
                ..
            }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    if k.as_str() == Some("<<") && !matches!(k.kind, Kind::Str { quoted: true, .. })
                    {
                        merges.push(node);
                    } else if let Some((first, _)) = entries.iter().find(|(e, _)| same_key(e, &k)) {
                        self.errors.push(
                            Diagnostic::at(
                                &k.loc,
                                format!(
                                    "duplicate key '{}'",
                                    k.scalar_string().unwrap_or_default()
                                ),
                            )
                            .note(format!("first defined at {}", first.loc)),
                        );
                    } else {
                        entries.push((k, node));
                    }
                }
            },
        }
    }

    /// `<<: *base` and `<<: [*a, *b]`: merged keys come first, earlier sources win, and the
    /// mapping's own keys override them.
    fn apply_merges(&mut self, own: Vec<(Node, Node)>, merges: Vec<Node>) -> Vec<(Node, Node)> {
        if merges.is_empty() {
            return own;
        }
        let mut out: Vec<(Node, Node)> = Vec::new();
        let add = |out: &mut Vec<(Node, Node)>, k: Node, v: Node| {
            if !out.iter().any(|(e, _)| same_key(e, &k)) {
                out.push((k, v));
            }
        };
        for m in merges {
            let sources: Vec<Node> = match m.kind {
                Kind::Map(_) => vec![m],
                Kind::Seq(items) => items,
                _ => {
                    self.errors.push(Diagnostic::at(
                        &m.loc,
                        format!(
                            "merge key '<<' expects a mapping or a list of mappings, found {}",
                            m.type_name()
                        ),
                    ));
                    continue;
                }
            };
            for s in sources {
                match s.kind {
                    Kind::Map(entries) => {
                        for (k, v) in entries {
                            add(&mut out, k, v);
                        }
                    }
                    _ => self.errors.push(Diagnostic::at(
                        &s.loc,
                        format!("merge key '<<' expects mappings, found {}", s.type_name()),
                    )),
                }
            }
        }
        for (k, v) in own {
            if let Some(slot) = out.iter_mut().find(|(e, _)| same_key(e, &k)) {
                *slot = (k, v);
            } else {
                out.push((k, v));
            }
        }
        out
    }
}

fn same_key(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Str { value: x, .. }, Kind::Str { value: y, .. }) => x == y,
        (Kind::Seq(_) | Kind::Map(_), _) | (_, Kind::Seq(_) | Kind::Map(_)) => false,
        _ => a.kind == b.kind,
    }
}

fn count_nodes(n: &Node) -> usize {
    1 + match &n.kind {
        Kind::Seq(items) => items.iter().map(count_nodes).sum(),
        Kind::Map(entries) => entries
            .iter()
            .map(|(k, v)| count_nodes(k) + count_nodes(v))
            .sum(),
        _ => 0,
    }
}

/// A local (`!name`) tag we keep for the layers above; core `!!` tags are not kept.
fn local_tag(handle: &str, suffix: &str) -> Option<String> {
    (handle == "!").then(|| suffix.to_string())
}

fn resolve_scalar(
    value: &str,
    style: ScalarStyle,
    tag: Option<&(String, String)>,
    loc: &Loc,
) -> Result<(Kind, Option<String>), Diagnostic> {
    let str_kind = |quoted| Kind::Str {
        value: value.to_string(),
        quoted,
    };
    if let Some((handle, suffix)) = tag {
        if handle == "!" {
            // `!unsafe`, `!vault`, and any other local tag: the text is kept verbatim.
            return Ok((str_kind(true), Some(suffix.clone())));
        }
        let core = suffix.rsplit(':').next().unwrap_or(suffix);
        let kind = match core {
            "str" => str_kind(true),
            "int" => resolve_int(value).map(Kind::Int).ok_or_else(|| {
                Diagnostic::at(
                    loc,
                    format!("'{value}' is tagged !!int but is not an integer"),
                )
            })?,
            "float" => resolve_float(value)
                .or_else(|| resolve_int(value).map(|i| i as f64))
                .map(Kind::Float)
                .ok_or_else(|| {
                    Diagnostic::at(
                        loc,
                        format!("'{value}' is tagged !!float but is not a number"),
                    )
                })?,
            "bool" => resolve_bool(value).map(Kind::Bool).ok_or_else(|| {
                Diagnostic::at(
                    loc,
                    format!("'{value}' is tagged !!bool but is not a boolean"),
                )
            })?,
            "null" => Kind::Null,
            _ => resolve_plain(value),
        };
        return Ok((kind, None));
    }
    if style != ScalarStyle::Plain {
        return Ok((str_kind(true), None));
    }
    Ok((resolve_plain(value), None))
}

/// YAML 1.1 implicit resolution of a plain scalar, as PyYAML (and so Ansible) does it.
pub fn resolve_plain(value: &str) -> Kind {
    if matches!(value, "" | "~" | "null" | "Null" | "NULL") {
        return Kind::Null;
    }
    if let Some(b) = resolve_bool(value) {
        return Kind::Bool(b);
    }
    if let Some(i) = resolve_int(value) {
        return Kind::Int(i);
    }
    if let Some(f) = resolve_float(value) {
        return Kind::Float(f);
    }
    Kind::Str {
        value: value.to_string(),
        quoted: false,
    }
}

fn resolve_bool(v: &str) -> Option<bool> {
    match v {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn resolve_int(v: &str) -> Option<i64> {
    let (neg, body) = match v.as_bytes().first()? {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    };
    if body.is_empty() || !body.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let digits = |s: &str, radix: u32| -> Option<i64> {
        let s: String = s.chars().filter(|&c| c != '_').collect();
        if s.is_empty() {
            return None;
        }
        i64::from_str_radix(&s, radix).ok()
    };
    let n = if let Some(b) = body.strip_prefix("0b") {
        digits(b, 2)?
    } else if let Some(h) = body.strip_prefix("0x") {
        digits(h, 16)?
    } else if let Some(o) = body.strip_prefix("0o") {
        digits(o, 8)?
    } else if body.contains(':') {
        // Sexagesimal: 1:30 == 90 (PyYAML's YAML 1.1 rule). First part must not start with 0.
        if body.starts_with('0') {
            return None;
        }
        let mut total: i64 = 0;
        for (i, part) in body.split(':').enumerate() {
            if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit() || c == b'_') {
                return None;
            }
            let p = digits(part, 10)?;
            if i > 0 && (p > 59 || part.len() > 2) {
                return None;
            }
            total = total.checked_mul(60)?.checked_add(p)?;
        }
        total
    } else if body.len() > 1 && body.starts_with('0') {
        if !body
            .bytes()
            .all(|c| (b'0'..=b'7').contains(&c) || c == b'_')
        {
            return None;
        }
        digits(body, 8)?
    } else {
        if !body.bytes().all(|c| c.is_ascii_digit() || c == b'_') {
            return None;
        }
        digits(body, 10)?
    };
    Some(if neg { -n } else { n })
}

fn resolve_float(v: &str) -> Option<f64> {
    match v {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    // PyYAML: [-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)? — a dot is required.
    let body = v.strip_prefix(['-', '+']).unwrap_or(v);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac) = mantissa.split_once('.')?;
    if !int_part.bytes().all(|c| c.is_ascii_digit() || c == b'_')
        || !frac.bytes().all(|c| c.is_ascii_digit() || c == b'_')
        || (int_part.is_empty() && frac.is_empty())
        || int_part.starts_with('_')
    {
        return None;
    }
    if let Some(e) = exp {
        let digits = e.strip_prefix(['-', '+'])?;
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    v.replace('_', "").parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let f: Arc<str> = Arc::from("t.yaml");
        load_str(&f, text, Limits::default())
            .expect("valid yaml")
            .remove(0)
    }

    #[test]
    fn yaml11_scalars_resolve_like_pyyaml() {
        let n = one(
            "a: yes\nb: off\nc: 0644\nd: '0644'\ne: 1:30\nf: 1.5\ng: 1e3\nh: ~\ni: 0x1f\nj: True\n",
        );
        let v = n.to_json();
        assert_eq!(v["a"], true);
        assert_eq!(v["b"], false);
        assert_eq!(v["c"], 420);
        assert_eq!(v["d"], "0644");
        assert_eq!(v["e"], 90);
        assert_eq!(v["f"], 1.5);
        assert_eq!(v["g"], "1e3");
        assert!(v["h"].is_null());
        assert_eq!(v["i"], 31);
        assert_eq!(v["j"], true);
    }

    #[test]
    fn positions_are_one_based() {
        let n = one("- hosts: all\n  serail: 2\n");
        let play = &n.as_seq().unwrap()[0];
        let (k, _) = &play.as_map().unwrap()[1];
        assert_eq!((k.loc.line, k.loc.col), (2, 3));
    }

    #[test]
    fn merge_keys_apply_in_order_and_own_keys_win() {
        let n = one("base: &b {a: 1, b: 2}\nother: &o {b: 9, c: 3}\nx:\n  <<: [*b, *o]\n  a: 7\n");
        let x = n.get("x").unwrap().to_json();
        assert_eq!(x, serde_json::json!({"a": 7, "b": 2, "c": 3}));
    }

    #[test]
    fn duplicate_keys_are_errors_naming_both_places() {
        let f: Arc<str> = Arc::from("t.yaml");
        let errs = load_str(&f, "a: 1\nb: 2\na: 3\n", Limits::default()).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .to_string()
                .starts_with("t.yaml:3:1: error: duplicate key 'a'")
        );
        assert!(errs[0].to_string().contains("first defined at t.yaml:1:1"));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let f: Arc<str> = Arc::from("bomb.yaml");
        let errs = load_str(&f, &text, Limits::default()).unwrap_err();
        assert!(errs[0].message.contains("alias bomb"), "{}", errs[0]);
    }

    #[test]
    fn depth_limit() {
        let text = "[".repeat(200) + &"]".repeat(200);
        let f: Arc<str> = Arc::from("deep.yaml");
        let errs = load_str(&f, &text, Limits::default()).unwrap_err();
        assert!(errs[0].message.contains("nesting deeper"));
    }

    #[test]
    fn syntax_error_has_position() {
        let f: Arc<str> = Arc::from("bad.yaml");
        let errs = load_str(&f, "a: [1, 2\nb: 3\n", Limits::default()).unwrap_err();
        assert!(errs[0].to_string().starts_with("bad.yaml:"), "{}", errs[0]);
        assert!(errs[0].message.starts_with("invalid YAML"));
    }

    fn first_error(text: &str) -> String {
        let f: Arc<str> = Arc::from("f.yaml");
        load_str(&f, text, Limits::default()).unwrap_err()[0].to_string()
    }

    #[test]
    fn an_unterminated_quoted_string_is_reported_at_its_opening_quote() {
        // The scanner gives up at line 4 (not indented inside the string).
        let text = "tasks:\n  - debug:\n      msg: \"hello\n  - ping:\n";
        assert_eq!(
            first_error(text),
            "f.yaml:3:12: error: invalid YAML: unterminated quoted string: no closing quote before line 4, which is not indented as its continuation"
        );
        let text = "a: 1\nb: 'it\n";
        assert_eq!(
            first_error(text),
            "f.yaml:2:4: error: invalid YAML: unterminated quoted string: no closing quote before the end of the file"
        );
        // A closed string spanning lines is fine; the unclosed one after it is the one named.
        let text = "a: \"x\n  y\"\nb: [\"z]\nc: 1\n";
        assert!(
            first_error(text).starts_with("f.yaml:3:5: "),
            "{}",
            first_error(text)
        );
    }

    #[test]
    fn a_tab_used_for_indentation_is_reported_at_the_tab() {
        assert!(first_error("a:\n\tb: 1\n").starts_with("f.yaml:2:1: "));
        // Spaces before the tab: the tab, not the first non-blank.
        let e = first_error("a:\n  b:\n  \t  - 1\n");
        assert!(e.starts_with("f.yaml:3:3: "), "{e}");
        // Inside a plain scalar the scanner stops at the end of the line before the tab.
        let e = first_error("a:\n  b: 1\n\t  c: 2\n");
        assert!(e.starts_with("f.yaml:3:1: "), "{e}");
    }

    #[test]
    fn local_tags_are_kept() {
        let n = one("a: !unsafe '{{ x }}'\nb: !other x\n");
        assert_eq!(n.get("a").unwrap().tag.as_deref(), Some("unsafe"));
        assert_eq!(n.get("b").unwrap().tag.as_deref(), Some("other"));
        assert_eq!(n.get("a").unwrap().as_str(), Some("{{ x }}"));
    }

    #[test]
    fn vault_values_decrypt_to_unsafe_data_or_fail_at_their_position() {
        let f: Arc<str> = Arc::from("t.yaml");
        let secret = vault::VaultSecret::new("yaml-test", "yaml-test-pw");
        let value = vault::encrypt(b"{{ not a template }}", &secret, None);
        let text = format!("a: 1\nb: !vault |\n  {}", value.replace('\n', "\n  "));
        let errs = load_str(&f, &text, Limits::default()).unwrap_err();
        // No password at all, or (another test installed one) not this one.
        let e = errs[0].to_string();
        assert!(
            e == "t.yaml:3:3: error: vault-encrypted: give --vault-password-file or --vault-id"
                || e.starts_with("t.yaml:3:3: error: cannot decrypt this !vault value"),
            "{e}"
        );
        vault::secrets::install([secret]);
        let n = one(&text);
        let b = n.get("b").unwrap();
        assert_eq!(b.tag.as_deref(), Some("unsafe"));
        assert_eq!(b.as_str(), Some("{{ not a template }}"));
        assert_eq!(
            vault::redact::redact("x {{ not a template }}"),
            "x ********"
        );
    }
}
