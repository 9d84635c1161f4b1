//! Host patterns: which hosts `hosts: web:&prod:!web03` or `--limit` means.
//!
//! Owns Ansible's pattern language: splitting (`split_host_pattern`: on `,` if there is one,
//! else keep a lone address such as `fe80::1` or `host:22` whole, else split on `:`), the
//! terms (host and group names, `all`, globs as Python `fnmatch`, `~regex` matched from the
//! start like `re.match`, `group[0]` / `group[-1]` / `group[1:]` subscripts), and evaluation
//! (every union first, then every `&`, then every `!`). The implicit localhost is matched only
//! when named. Unlike Ansible, a term that matches nothing is an error, not a warning. It must
//! not read files or know where the inventory came from.

use std::collections::HashSet;
use std::sync::LazyLock;

use globset::GlobBuilder;
use regex::Regex;

use crate::diag::did_you_mean;

use super::{Host, Inventory, LOCALHOST_NAMES, address};

static SPLIT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:[^\s:\[\]]|\[[^\]]*\])+").expect("constant regex is valid"));
static SUBSCRIPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)[:-]([0-9]*))\]$").expect("constant regex is valid")
});

/// Splits a pattern into terms as Ansible's `split_host_pattern` does. Terms keep their `&`
/// or `!` prefix.
pub fn split_host_pattern(pattern: &str) -> Vec<String> {
    let parts: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(str::to_string).collect()
    } else if address::parse_address(pattern.trim()).is_some() {
        vec![pattern.to_string()]
    } else {
        SPLIT
            .find_iter(pattern)
            .map(|m| m.as_str().to_string())
            .collect()
    };
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The hosts `pattern` selects: union terms in the order written (each term's hosts in
/// inventory order), then intersections, then exclusions.
pub(crate) fn select<'a>(inv: &'a Inventory, pattern: &str) -> Result<Vec<&'a Host>, String> {
    let terms = split_host_pattern(pattern);
    if terms.is_empty() {
        return Err("the host pattern is empty".to_string());
    }
    let mut regular: Vec<&str> = Vec::new();
    let mut inter: Vec<&str> = Vec::new();
    let mut excl: Vec<&str> = Vec::new();
    for t in &terms {
        if let Some(rest) = t.strip_prefix('&') {
            inter.push(rest);
        } else if let Some(rest) = t.strip_prefix('!') {
            excl.push(rest);
        } else {
            regular.push(t);
        }
    }
    if regular.is_empty() {
        regular.push("all");
    }
    let mut result: Vec<usize> = Vec::new();
    let mut present: HashSet<usize> = HashSet::new();
    for t in regular {
        let matched = match inv.hosts.get_index_of(t) {
            Some(i) => vec![i],
            None => match_one(inv, t)?,
        };
        for i in matched {
            if present.insert(i) {
                result.push(i);
            }
        }
    }
    for (op, list) in [('&', inter), ('!', excl)] {
        for t in list {
            if t.is_empty() {
                return Err(format!("'{op}' must be followed by a host pattern"));
            }
            let set: HashSet<usize> = match_one(inv, t)?.into_iter().collect();
            result.retain(|i| set.contains(i) == (op == '&'));
        }
    }
    Ok(result
        .into_iter()
        .filter_map(|i| inv.hosts.get_index(i).map(|(_, h)| h))
        .collect())
}

/// One term without its `&`/`!`: host indexes in inventory order.
fn match_one(inv: &Inventory, term: &str) -> Result<Vec<usize>, String> {
    if !term.starts_with('~')
        && let Some(c) = SUBSCRIPT.captures(term)
    {
        let base = &c[1];
        let sub = match (c.get(2), c.get(3), c.get(4)) {
            (Some(idx), _, _) => Subscript::Index(idx.as_str().parse().map_err(|_| bad(term))?),
            (None, Some(start), Some(end)) => Subscript::Range(
                start.as_str().parse().map_err(|_| bad(term))?,
                if end.as_str().is_empty() {
                    None
                } else {
                    Some(end.as_str().parse().map_err(|_| bad(term))?)
                },
            ),
            _ => return Err(bad(term)),
        };
        // `db[12]` slices group (or host) `db` when it exists; otherwise it is a glob.
        if let Some(hosts) = enumerate(inv, base)? {
            return apply_subscript(hosts, sub, term);
        }
    }
    enumerate(inv, term)?.ok_or_else(|| no_match(inv, term))
}

fn bad(term: &str) -> String {
    format!("invalid subscript in host pattern '{term}'")
}

#[derive(Clone, Copy, Debug)]
enum Subscript {
    Index(i64),
    Range(usize, Option<usize>),
}

/// Python's `hosts[i]` / `hosts[start:end+1]`, as Ansible's `_apply_subscript`.
fn apply_subscript(hosts: Vec<usize>, sub: Subscript, term: &str) -> Result<Vec<usize>, String> {
    if hosts.is_empty() {
        return Ok(hosts);
    }
    let len = hosts.len();
    let out_of_range =
        || format!("no hosts matched the subscripted pattern '{term}': it selects {len} host(s)");
    let pick = |i: usize| {
        hosts
            .get(i)
            .copied()
            .map(|h| vec![h])
            .ok_or_else(out_of_range)
    };
    match sub {
        Subscript::Index(i) => {
            let idx = if i < 0 {
                usize::try_from(i64::try_from(len).unwrap_or(i64::MAX) + i)
                    .map_err(|_| out_of_range())?
            } else {
                usize::try_from(i).map_err(|_| out_of_range())?
            };
            pick(idx)
        }
        // `[x:0]` takes the `hosts[x]` branch in Ansible, since `0` is falsy.
        Subscript::Range(start, Some(0)) => pick(start),
        Subscript::Range(start, end) => {
            let stop = end.map_or(len, |e| e.saturating_add(1)).min(len);
            Ok(hosts
                .get(start..stop)
                .map(<[usize]>::to_vec)
                .unwrap_or_default())
        }
    }
}

enum Matcher {
    Regex(Regex),
    Glob(globset::GlobMatcher),
}

impl Matcher {
    fn new(expr: &str) -> Result<Matcher, String> {
        if let Some(re) = expr.strip_prefix('~') {
            let invalid = |e: regex::Error| {
                format!("invalid regular expression in host pattern '{expr}': {e}")
            };
            // Checked alone first, so that a stray `)` cannot escape the anchoring group.
            Regex::new(re).map_err(invalid)?;
            return Regex::new(&format!("^(?:{re})"))
                .map(Matcher::Regex)
                .map_err(invalid);
        }
        GlobBuilder::new(&escape_braces(expr))
            .literal_separator(false)
            .backslash_escape(false)
            .allow_unclosed_class(true)
            .build()
            .map(|g| Matcher::Glob(g.compile_matcher()))
            .map_err(|e| format!("invalid glob in host pattern '{expr}': {e}"))
    }

    fn is_match(&self, name: &str) -> bool {
        match self {
            Matcher::Regex(r) => r.is_match(name),
            Matcher::Glob(g) => g.is_match(name),
        }
    }
}

/// Python's `fnmatch` has no `{a,b}`: make braces outside classes literal for globset.
fn escape_braces(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len());
    let mut in_class = false;
    for c in glob.chars() {
        match c {
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '{' | '}' if !in_class => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// Ansible's `_enumerate_matches`: hosts of every group the expression matches, plus hosts
/// it matches by name when no group matched or it is a glob/regex; the implicit localhost when
/// nothing else did and it is named. `None` when neither a group nor a host matched.
fn enumerate(inv: &Inventory, expr: &str) -> Result<Option<Vec<usize>>, String> {
    let m = Matcher::new(expr)?;
    let mut found: Vec<usize> = Vec::new();
    let groups: Vec<&str> = inv
        .groups
        .keys()
        .map(String::as_str)
        .filter(|g| m.is_match(g))
        .collect();
    for g in &groups {
        found.extend(group_hosts(inv, g));
    }
    let special = expr.starts_with('~') || expr.contains(['.', '?', '*', '[']);
    if groups.is_empty() || special {
        for (i, (name, h)) in inv.hosts.iter().enumerate() {
            if !h.implicit && m.is_match(name) {
                found.push(i);
            }
        }
    }
    if found.is_empty()
        && LOCALHOST_NAMES.contains(&expr)
        && let Some(i) = inv.hosts.get_index_of("localhost")
    {
        found.push(i);
    }
    if found.is_empty() && groups.is_empty() {
        return Ok(None);
    }
    found.sort_unstable();
    found.dedup();
    Ok(Some(found))
}

/// Every non-implicit host in `group` or below it.
fn group_hosts(inv: &Inventory, group: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut stack = vec![group];
    let mut seen = HashSet::new();
    while let Some(g) = stack.pop() {
        if !seen.insert(g) {
            continue;
        }
        let Some(grp) = inv.groups.get(g) else {
            continue;
        };
        for h in &grp.hosts {
            if let Some((i, _, host)) = inv.hosts.get_full(h)
                && !host.implicit
            {
                out.push(i);
            }
        }
        stack.extend(grp.children.iter().map(String::as_str));
    }
    out
}

fn no_match(inv: &Inventory, term: &str) -> String {
    let mut msg = format!("no host or group matches '{term}'");
    let names = inv
        .hosts
        .values()
        .filter(|h| !h.implicit)
        .map(|h| h.name.as_str())
        .chain(inv.groups.keys().map(String::as_str));
    if let Some(s) = did_you_mean(term, names) {
        msg.push_str(&format!(" (did you mean '{s}'?)"));
    }
    msg
}
