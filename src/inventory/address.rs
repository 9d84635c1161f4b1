//! Ansible's `parse_address`: is a string a host name, IPv4 or IPv6 address (ranges allowed),
//! optionally followed by `:PORT`?
//!
//! Owns the regular expressions Ansible uses in `ansible.parsing.utils.addresses`, translated to
//! the `regex` crate (which has no look-behind, so the "label must not end with `_` or `-`" rule
//! is spelled out). Used by the INI/YAML parsers to split `host:port`, and by host patterns to
//! decide whether a pattern without commas is one address or a `:`-separated list. It must not
//! expand ranges (see `range.rs`) or know about groups.

use std::sync::LazyLock;

use regex::Regex;

/// `[1:9]` / `[01:10:2]` inside an IPv4 address.
const NUMERIC_RANGE: &str = r"\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]";
/// `[a:f]` / `[0a:ff]` inside an IPv6 address.
const HEX_RANGE: &str = r"\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]";
/// `[a:z]` or `[01:20]` inside a host name.
const ALNUM_RANGE: &str = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]";

static BRACKETED_HOSTPORT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\[(.+)\]:([0-9]+)$").expect("constant regex is valid"));

static HOSTPORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$").expect("constant regex is valid")
});

static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    let c = format!(r"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{NUMERIC_RANGE})");
    Regex::new(&format!(r"(?i)^(?:{c}\.){{3}}{c}$")).expect("constant regex is valid")
});

static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    let c = format!(r"(?:[0-9a-f]{{1,4}}|{HEX_RANGE})");
    // Python writes `^alt|alt|...|alt$` and calls `re.match`, so every alternative is anchored
    // at the start but only the last one at the end. Kept as is: it decides pattern splitting.
    let alts = [
        format!(r"(?:{c}:){{7}}{c}"),
        format!(r"(?:{c}:){{1,6}}:"),
        format!(r"(?:{c}:)(?::{c}){{1,6}}"),
        format!(r"(?:{c}:){{2}}(?::{c}){{1,5}}"),
        format!(r"(?:{c}:){{3}}(?::{c}){{1,4}}"),
        format!(r"(?:{c}:){{4}}(?::{c}){{1,3}}"),
        format!(r"(?:{c}:){{5}}(?::{c}){{1,2}}"),
        format!(r"(?:{c}:){{6}}(?::{c})"),
        format!(r":(?::{c}){{1,6}}"),
        format!(r"{c}?::"),
        format!(r"(?:0:){{6}}(?:{c}\.){{3}}{c}"),
        format!(r"::(?:ffff:)?(?:{c}\.){{3}}{c}"),
        format!(r"(?:0:){{5}}ffff:(?:{c}\.){{3}}{c}$"),
    ];
    Regex::new(&format!("(?i)^(?:{})", alts.join("|"))).expect("constant regex is valid")
});

static HOSTNAME: LazyLock<Regex> = LazyLock::new(|| {
    let r = ALNUM_RANGE;
    // A label starts with a word character or range, continues with word characters, `-` or
    // ranges, and does not end with `_` or `-`.
    let last = format!(r"(?:[\w&&[^_]]|{r})");
    let label = format!(r"(?:(?:\w|{r})(?:[\w-]|{r})*{last}|{last})");
    Regex::new(&format!(r"(?i)^{label}(?:\.{label})*$")).expect("constant regex is valid")
});

/// Splits `address` into host and port the way Ansible's `parse_address(allow_ranges=True)`
/// does. `None` when the rest is neither an IPv4/IPv6 address nor a host name (ranges allowed).
pub fn parse_address(address: &str) -> Option<(String, Option<u64>)> {
    let mut host = address.to_string();
    let mut port = None;
    for re in [&*BRACKETED_HOSTPORT, &*HOSTPORT] {
        if let Some(c) = re.captures(&host) {
            let (h, p) = (c[1].to_string(), c[2].to_string());
            port = Some(p.parse::<u64>().ok()?);
            host = h;
        }
    }
    if IPV4.is_match(&host) || IPV6.is_match(&host) || HOSTNAME.is_match(&host) {
        Some((host, port))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_ports_and_addresses() {
        assert_eq!(parse_address("web01"), Some(("web01".into(), None)));
        assert_eq!(
            parse_address("web01:2222"),
            Some(("web01".into(), Some(2222)))
        );
        assert_eq!(
            parse_address("web[01:20].example.com:22"),
            Some(("web[01:20].example.com".into(), Some(22)))
        );
        assert_eq!(parse_address("10.0.0.1"), Some(("10.0.0.1".into(), None)));
        assert_eq!(parse_address("fe80::1"), Some(("fe80::1".into(), None)));
        assert_eq!(
            parse_address("[fe80::1]:22"),
            Some(("fe80::1".into(), Some(22)))
        );
        assert_eq!(parse_address("web:db"), None);
        assert_eq!(parse_address("web:&db"), None);
        assert_eq!(parse_address("web_"), None);
        assert_eq!(parse_address("web-01"), Some(("web-01".into(), None)));
    }
}
