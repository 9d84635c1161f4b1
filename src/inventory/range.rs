//! Host ranges: `web[01:20].example.com`, `db[1:9:2]`, `node[a:f]`, several ranges as a product.
//!
//! Owns expanding one host name with `[begin:end(:step)]` parts into the list of names, as
//! Ansible's `expand_hostname_range` does (leading zeros set the width, letters count through
//! `a-zA-Z`), but stricter: an empty or backwards range and unbalanced brackets are errors with
//! the byte offset of the offending bracket. It must not split ports (see `address.rs`) or know
//! where the name came from; callers turn the offset into a file position.

/// Most names one host entry may expand to, so that `h[0:99999999]` cannot exhaust memory.
pub const MAX_EXPANSION: usize = 100_000;

/// A range that cannot be expanded, with the byte offset in the name where the problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeError {
    /// Byte offset of the offending `[` (or `]`) in the name.
    pub offset: usize,
    /// What is wrong, as one sentence without a trailing period.
    pub message: String,
}

/// Expands every `[a:b]` / `[a:b:step]` in `name` (left to right, as a product). A name without
/// brackets comes back as itself.
pub fn expand(name: &str) -> Result<Vec<String>, RangeError> {
    let Some(open) = name.find('[') else {
        if let Some(close) = name.find(']') {
            return Err(err(close, "unbalanced ']' in host name"));
        }
        return Ok(vec![name.to_string()]);
    };
    if let Some(close) = name[..open].find(']') {
        return Err(err(close, "unbalanced ']' in host name"));
    }
    let Some(len) = name[open + 1..].find(']') else {
        return Err(err(open, "unbalanced '[' in host name: no closing ']'"));
    };
    let close = open + 1 + len;
    let body = &name[open + 1..close];
    if body.contains('[') {
        return Err(err(open, "nested '[' in host range"));
    }
    let head = &name[..open];
    let items = expand_one(body).map_err(|m| err(open, m))?;
    let tails = expand(&name[close + 1..]).map_err(|mut e| {
        e.offset += close + 1;
        e
    })?;
    if items.len().saturating_mul(tails.len()) > MAX_EXPANSION {
        return Err(err(
            open,
            format!("host range expands to more than {MAX_EXPANSION} names"),
        ));
    }
    let mut out = Vec::with_capacity(items.len() * tails.len());
    for item in &items {
        for tail in &tails {
            out.push(format!("{head}{item}{tail}"));
        }
    }
    Ok(out)
}

fn err(offset: usize, message: impl Into<String>) -> RangeError {
    RangeError {
        offset,
        message: message.into(),
    }
}

/// The values of one range body (`01:20`, `1:9:2`, `a:f`).
fn expand_one(body: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = body.split(':').collect();
    if parts.len() != 2 && parts.len() != 3 {
        return Err(format!(
            "host range '[{body}]' must be [begin:end] or [begin:end:step]"
        ));
    }
    let beg = if parts[0].is_empty() { "0" } else { parts[0] };
    let end = parts[1];
    if end.is_empty() {
        return Err(format!("host range '[{body}]' has no end value"));
    }
    let step = match parts.get(2) {
        None => 1,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(format!(
                    "host range '[{body}]' has step '{s}', expected a positive integer"
                ));
            }
        },
    };
    if let (Some(b), Some(e)) = (letter_index(beg), letter_index(end)) {
        if b > e {
            return Err(format!(
                "host range '[{body}]' is backwards: '{beg}' comes after '{end}'"
            ));
        }
        return Ok((b..=e)
            .step_by(step)
            .map(|i| LETTERS[i].to_string())
            .collect());
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(beg) || !digits(end) {
        return Err(format!(
            "host range '[{body}]' must be two numbers or two letters"
        ));
    }
    let width = if beg.len() > 1 && beg.starts_with('0') {
        if beg.len() != end.len() {
            return Err(format!(
                "host range '[{body}]': a zero-padded begin needs an end of the same width"
            ));
        }
        beg.len()
    } else {
        0
    };
    let (Ok(b), Ok(e)) = (beg.parse::<u64>(), end.parse::<u64>()) else {
        return Err(format!("host range '[{body}]' has numbers too large"));
    };
    if b > e {
        return Err(format!(
            "host range '[{body}]' is backwards: {beg} is greater than {end}"
        ));
    }
    if (e - b) / step as u64 >= MAX_EXPANSION as u64 {
        return Err(format!(
            "host range '[{body}]' expands to more than {MAX_EXPANSION} names"
        ));
    }
    Ok((b..=e)
        .step_by(step)
        .map(|i| format!("{i:0width$}"))
        .collect())
}

const LETTERS: [char; 52] = [
    'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's',
    't', 'u', 'v', 'w', 'x', 'y', 'z', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L',
    'M', 'N', 'O', 'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z',
];

/// Position of a single ASCII letter in Python's `string.ascii_letters` (`a-z` then `A-Z`).
fn letter_index(s: &str) -> Option<usize> {
    let mut chars = s.chars();
    let c = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    LETTERS.iter().position(|&l| l == c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zeros_are_kept() {
        let names = expand("web[01:20].example.com").unwrap();
        assert_eq!(names.len(), 20);
        assert_eq!(names[0], "web01.example.com");
        assert_eq!(names[8], "web09.example.com");
        assert_eq!(names[19], "web20.example.com");
        assert_eq!(expand("h[1:10]").unwrap()[0], "h1");
        assert_eq!(expand("h[001:003]").unwrap(), ["h001", "h002", "h003"]);
    }

    #[test]
    fn stride_letters_and_empty_begin() {
        assert_eq!(
            expand("db[1:9:2]").unwrap(),
            ["db1", "db3", "db5", "db7", "db9"]
        );
        assert_eq!(expand("n[a:d]").unwrap(), ["na", "nb", "nc", "nd"]);
        assert_eq!(expand("n[a:e:2]").unwrap(), ["na", "nc", "ne"]);
        assert_eq!(expand("n[y:B]").unwrap(), ["ny", "nz", "nA", "nB"]);
        assert_eq!(expand("h[:2]").unwrap(), ["h0", "h1", "h2"]);
    }

    #[test]
    fn several_ranges_are_a_product() {
        assert_eq!(
            expand("r[1:2]-n[a:b].dc").unwrap(),
            ["r1-na.dc", "r1-nb.dc", "r2-na.dc", "r2-nb.dc"]
        );
    }

    #[test]
    fn plain_names_pass_through() {
        assert_eq!(expand("web01").unwrap(), ["web01"]);
    }

    #[test]
    fn bad_ranges_are_errors_with_offsets() {
        let cases: &[(&str, usize, &str)] = &[
            ("h[5:1]", 1, "backwards"),
            ("h[a:9]", 1, "two numbers or two letters"),
            ("web[01:03", 3, "unbalanced '['"),
            ("web01]", 5, "unbalanced ']'"),
            ("h[1:2]x[3:1]", 7, "backwards"),
            ("h[1:2:0]", 1, "positive integer"),
            ("h[01:100]", 1, "same width"),
            ("h[1]", 1, "begin:end"),
            ("h[1:]", 1, "no end"),
            ("h[0:99999999]", 1, "more than"),
        ];
        for (name, offset, msg) in cases {
            let e = expand(name).unwrap_err();
            assert_eq!(e.offset, *offset, "{name}: {e:?}");
            assert!(e.message.contains(msg), "{name}: {}", e.message);
        }
    }
}
