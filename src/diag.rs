//! Diagnostics: where in which file a user's input is wrong, and what was expected.
//!
//! Every layer before the executor (inventory, playbook, templates, plan) reports bad input as
//! [`Diagnostic`]s collected into [`Diagnostics`], so that all mistakes are listed at once and
//! each first line reads `PATH:LINE:COL: error: MESSAGE`. This module owns the formatting and the
//! "did you mean" suggestion; it must not read files or know about any particular input format.

use std::fmt;
use std::sync::Arc;

/// A position in a user's file: 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Loc {
    /// The path as the user named it (or as it was found relative to what they named).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

impl Loc {
    /// A location at `line:col` (both 1-based) in `file`.
    pub fn new(file: &Arc<str>, line: u32, col: u32) -> Loc {
        Loc {
            file: Arc::clone(file),
            line,
            col,
        }
    }

    /// The start of a file, for errors about a whole file (missing, unreadable, too large).
    pub fn file_start(file: impl Into<Arc<str>>) -> Loc {
        Loc {
            file: file.into(),
            line: 1,
            col: 1,
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// One mistake in the user's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where it is. `None` only for mistakes that have no file (command-line options).
    pub loc: Option<Loc>,
    /// What is wrong and what was expected, as one sentence without a trailing period.
    pub message: String,
    /// Further lines: a hint, or the other place involved (a duplicate's first definition).
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// A mistake at `loc`.
    pub fn at(loc: &Loc, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            loc: Some(loc.clone()),
            message: message.into(),
            notes: Vec::new(),
        }
    }

    /// A mistake in the command line or settings, which has no file position.
    pub fn options(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            loc: None,
            message: message.into(),
            notes: Vec::new(),
        }
    }

    /// Adds a note line shown under the error.
    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Some(loc) => write!(f, "{loc}: error: {}", self.message)?,
            None => write!(f, "rdeploy: error: {}", self.message)?,
        }
        for note in &self.notes {
            write!(f, "\n  note: {note}")?;
        }
        Ok(())
    }
}

/// All mistakes found in one pass over the input. An error type: a non-empty list means
/// nothing may run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// An empty list.
    pub fn new() -> Diagnostics {
        Diagnostics(Vec::new())
    }

    /// Records a mistake.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// Records a mistake at `loc`.
    pub fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        self.0.push(Diagnostic::at(loc, message));
    }

    /// Moves every mistake of `other` into this list.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// True when nothing was found wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many mistakes were found.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `Ok(value)` when the list is empty, else the list as the error.
    pub fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// Sorts by file, line and column and drops exact repeats (the same template checked for
    /// several hosts reports once).
    pub fn sorted(mut self) -> Diagnostics {
        self.0
            .sort_by(|a, b| a.loc.cmp(&b.loc).then(a.message.cmp(&b.message)));
        self.0.dedup();
        self
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Diagnostics {
        Diagnostics(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest of `candidates` to `word`, if one is close enough to be a likely typo.
///
/// Used for "unknown play keyword 'serail', did you mean 'serial'?".
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_l = word.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = edit_distance(&word_l, &c.to_ascii_lowercase());
        let limit = match c.len() {
            0..=3 => 1,
            4..=7 => 2,
            _ => 3,
        };
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions each cost one (so `serail` is one step from `serial`). Case-sensitive.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_transposed_keyword() {
        let kw = ["serial", "hosts", "tasks", "vars"];
        assert_eq!(did_you_mean("serail", kw), Some("serial"));
        assert_eq!(did_you_mean("host", kw), Some("hosts"));
        assert_eq!(did_you_mean("zzzzzz", kw), None);
    }

    #[test]
    fn first_line_is_path_line_col_error() {
        let file: Arc<str> = Arc::from("site.yaml");
        let d = Diagnostic::at(&Loc::new(&file, 3, 5), "unknown play keyword 'serail'")
            .note("did you mean 'serial'?");
        let s = d.to_string();
        assert_eq!(
            s.lines().next(),
            Some("site.yaml:3:5: error: unknown play keyword 'serail'")
        );
        assert!(s.contains("note: did you mean 'serial'?"));
    }
}
