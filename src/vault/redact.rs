//! The redaction set: values that must never reach the terminal or a JSON stream.
//!
//! Owns the process-wide list of secret texts (every decrypted vault value, the string values
//! of decrypted vault files, and the values of the variables named in `secret_vars`) and
//! replacing them with `********`. Each secret is also registered in its JSON-escaped form
//! (a result printed as JSON escapes quotes and newlines) and, when it spans lines, line by
//! line (a diff prints it a line at a time). Texts shorter than [`MIN_LEN`] characters are not
//! registered: masking every `1` or `on` would make output unreadable and hides nothing.
//! It must not print: `report` calls [`redact`] on everything it writes.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a secret is replaced with.
pub const MASK: &str = "********";

/// Shortest text registered.
pub const MIN_LEN: usize = 3;

/// Secret texts, longest first (so a secret containing another is masked whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a secret value: it (and its JSON-escaped form, and each of its lines) will be
/// masked in everything rdeploy prints from now on.
pub fn register(value: &str) {
    let mut forms: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        if s.chars().count() >= MIN_LEN && !forms.iter().any(|f| f == s) {
            forms.push(s.to_string());
        }
    };
    add(value);
    let escaped = serde_json::to_string(value).unwrap_or_default();
    add(&escaped[1..escaped.len().saturating_sub(1).max(1)]);
    if value.contains('\n') {
        for line in value.lines() {
            add(line.trim());
        }
    }
    if forms.is_empty() {
        return;
    }
    let mut set = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for f in forms {
        if !set.contains(&f) {
            set.push(f);
        }
    }
    set.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Registers every string inside a JSON value (a decrypted file's values, a `secret_vars`
/// variable that holds a list or mapping). Keys are names, not secrets, and are skipped.
pub fn register_json(v: &serde_json::Value) {
    match v {
        serde_json::Value::String(s) => register(s),
        serde_json::Value::Number(n) => register(&n.to_string()),
        serde_json::Value::Array(items) => items.iter().for_each(register_json),
        serde_json::Value::Object(m) => m.values().for_each(register_json),
        serde_json::Value::Bool(_) | serde_json::Value::Null => {}
    }
}

/// True when nothing is registered (the common case: no vault in use).
pub fn is_empty() -> bool {
    SECRETS.read().map(|s| s.is_empty()).unwrap_or(false)
}

/// Whether `text` holds a registered secret.
pub fn contains_secret(text: &str) -> bool {
    let set = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    set.iter().any(|s| text.contains(s.as_str()))
}

/// `text` with every registered secret replaced by [`MASK`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let set = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    if !set.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for s in set.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_escaped_and_line_forms_are_masked() {
        register("redact-test \"q\"\nline-two-of-it");
        assert_eq!(
            redact("x redact-test \"q\"\nline-two-of-it y"),
            "x ******** y"
        );
        assert_eq!(
            redact(r#"{"msg":"redact-test \"q\"\nline-two-of-it"}"#),
            r#"{"msg":"********"}"#
        );
        assert_eq!(redact("+line-two-of-it\n"), "+********\n");
        assert_eq!(redact("nothing here"), "nothing here");
    }

    #[test]
    fn short_values_are_not_registered() {
        register("ab");
        assert_eq!(redact("ab cab"), "ab cab");
    }
}
