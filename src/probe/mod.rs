//! The health probe runner: what a play's `health:` probes check, rendered for one host, and
//! the loop that runs them under the play's `probe:` settings.
//!
//! This module owns the rendered probe types ([`Rendered`], [`Check`], [`Matcher`]), turning a
//! parsed [`Probe`] into one with [`render`], and the outcome of a probe on a host
//! ([`ProbeOutcome`]). The retry loop lives in [`run`], each kind of check in its own file:
//! [`http`] (from the controller), [`tcp`] (from the controller), [`remote`] (everything that runs
//! on the host over its transport) and [`prometheus`]. It must not print, emit events, decide
//! what a failed gate means for the batch (that is the executor's) or parse YAML (that is
//! [`crate::playbook::probe`]'s). Shell lines for the host come from [`crate::transport::cmd`].

pub mod analysis;
pub mod http;
pub mod prometheus;
pub mod remote;
pub mod run;
pub mod tcp;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::playbook::model::ProbeFrom;
use crate::playbook::model::{Probe, ProbeCheck, ProbeOverrides, ProbeSettings};
use crate::yaml::Node;
pub use run::run_host;

/// A probe with its templates rendered for one host.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The probe's `name`, or a description of it (`http http://web1:8080/health`).
    pub name: String,
    /// What it checks.
    pub check: Check,
    /// Its own timing over the play's `probe:`.
    pub settings: ProbeOverrides,
}

/// What a rendered probe checks.
#[derive(Clone, Debug)]
pub enum Check {
    /// An HTTP(S) GET whose status, body and latency are checked.
    Http {
        /// The URL.
        url: String,
        /// Accepted status codes.
        status: Vec<u16>,
        /// What the body must contain.
        body: Option<Matcher>,
        /// Slowest acceptable response (request start to the end of the body).
        max_latency: Option<Duration>,
        /// Request headers.
        headers: Vec<(String, String)>,
        /// CA bundle (PEM) trusted in addition to the built-in roots.
        ca_file: Option<PathBuf>,
        /// Skip TLS certificate verification.
        insecure: bool,
        /// Where the request is made from.
        from: ProbeFrom,
    },
    /// A TCP connect to `host:port`.
    Tcp {
        /// `host:port` (`[v6]:port` for IPv6 literals).
        address: String,
        /// Where the connection is made from.
        from: ProbeFrom,
    },
    /// A command on the host (run by `sh -c`) that must exit 0.
    Command {
        /// The command line, written by the playbook's author.
        command: String,
        /// What its stdout must contain.
        stdout: Option<Matcher>,
    },
    /// A Prometheus instant query whose every sample must stay within bounds.
    Prometheus {
        /// Base URL of the Prometheus HTTP API (`/api/v1/query` is appended).
        url: String,
        /// PromQL expression.
        query: String,
        /// Highest acceptable value.
        max: Option<f64>,
        /// Lowest acceptable value.
        min: Option<f64>,
    },
}

/// What a body or stdout must contain: `/re/` is a regular expression, anything else a
/// substring. Expressions are multi-line: `^` and `$` match at each line's start and end (so
/// `/^ok$/` matches the body `ok\n`); `\A` and `\z` anchor to the whole text.
#[derive(Clone, Debug)]
pub enum Matcher {
    /// A literal substring.
    Substring(String),
    /// A regular expression searched anywhere in the text.
    Regex(regex::Regex),
}

impl Matcher {
    /// `/re/` → [`Matcher::Regex`] (an invalid expression is an `Err` naming it), anything else
    /// → [`Matcher::Substring`].
    pub fn parse(text: &str) -> Result<Matcher, String> {
        match text
            .strip_prefix('/')
            .and_then(|rest| rest.strip_suffix('/'))
        {
            Some(re) => regex::RegexBuilder::new(re)
                .multi_line(true)
                .build()
                .map(Matcher::Regex)
                .map_err(|e| format!("invalid regular expression /{re}/: {e}")),
            None => Ok(Matcher::Substring(text.to_string())),
        }
    }

    /// Whether `text` contains the substring or a match of the expression.
    pub fn matches(&self, text: &str) -> bool {
        match self {
            Matcher::Substring(s) => text.contains(s.as_str()),
            Matcher::Regex(re) => re.is_match(text),
        }
    }
}

impl std::fmt::Display for Matcher {
    /// `"text"` for a substring, `/re/` for an expression.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Substring(s) => write!(f, "{s:?}"),
            Matcher::Regex(re) => write!(f, "/{}/", re.as_str()),
        }
    }
}

/// The outcome of one probe on one host after all attempts.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProbeOutcome {
    /// The probe's name ([`Rendered::name`]).
    pub probe: String,
    /// Whether it reached `success_threshold` consecutive passes.
    pub passed: bool,
    /// Attempts made.
    pub attempts: u32,
    /// What the last attempt saw: `status 503 after 12 ms`, `connection refused`,
    /// `exit 1: stdout "..."`, `value 0.2 > max 0.01`.
    pub observed: String,
    /// Time from the first attempt to the last one's end, in milliseconds.
    pub elapsed_ms: u64,
}

/// A probe's template node rendered with a host's variables (`ctx`): a string is rendered
/// (unless tagged `!unsafe`), any other scalar is its text. What [`render`] and
/// `analysis::render` are given by the executor.
pub fn render_node(
    env: &minijinja::Environment<'static>,
    ctx: &minijinja::Value,
    n: &Node,
) -> Result<String, String> {
    match &n.kind {
        crate::yaml::Kind::Str { value, .. } if n.tag.as_deref() != Some("unsafe") => {
            crate::template::render_str(env, value, ctx, &n.loc).map_err(|d| d.to_string())
        }
        _ => Ok(n.scalar_string().unwrap_or_default()),
    }
}

/// Renders one probe for a host; `render` renders a template [`Node`] to a string (the executor
/// passes a closure over the host's variables). Errors name the option that failed.
pub fn render(
    p: &Probe,
    render: &dyn Fn(&Node) -> Result<String, String>,
) -> Result<Rendered, String> {
    let field = |what: &str, n: &Node| render(n).map_err(|e| format!("health {what}: {e}"));
    // What a probe targets (URL, address, command, query) cannot be empty.
    let target = |what: &str, n: &Node| match field(what, n)? {
        t if t.trim().is_empty() => Err(format!("health {what}: empty after rendering")),
        t => Ok(t),
    };
    let matcher = |what: &str, n: &Option<Node>| -> Result<Option<Matcher>, String> {
        let Some(n) = n else { return Ok(None) };
        let text = field(what, n)?;
        Matcher::parse(&text)
            .map(Some)
            .map_err(|e| format!("health {what}: {e}"))
    };
    let (check, described) = match &p.check {
        ProbeCheck::Http {
            url,
            status,
            body,
            max_latency,
            headers,
            ca_file,
            insecure,
            from,
        } => {
            let url = target("http", url)?;
            let mut hs = Vec::with_capacity(headers.len());
            for (k, v) in headers {
                hs.push((k.clone(), field(&format!("headers.{k}"), v)?));
            }
            let ca_file = ca_file
                .as_ref()
                .map(|c| field("ca_file", c).map(PathBuf::from))
                .transpose()?;
            let described = format!("http {url}");
            let check = Check::Http {
                url,
                status: if status.is_empty() {
                    vec![200]
                } else {
                    status.clone()
                },
                body: matcher("body", body)?,
                max_latency: *max_latency,
                headers: hs,
                ca_file,
                insecure: *insecure,
                from: *from,
            };
            (check, described)
        }
        ProbeCheck::Tcp { address, from } => {
            let address = target("tcp", address)?;
            let described = format!("tcp {address}");
            (
                Check::Tcp {
                    address,
                    from: *from,
                },
                described,
            )
        }
        ProbeCheck::Command { command, stdout } => {
            let command = target("command", command)?;
            let described = format!("command {command}");
            (
                Check::Command {
                    command,
                    stdout: matcher("stdout", stdout)?,
                },
                described,
            )
        }
        ProbeCheck::Prometheus {
            url,
            query,
            max,
            min,
        } => {
            let url = target("prometheus", url)?;
            let query = target("query", query)?;
            let described = format!("prometheus {query}");
            (
                Check::Prometheus {
                    url,
                    query,
                    max: *max,
                    min: *min,
                },
                described,
            )
        }
    };
    let name = match &p.name {
        Some(n) => field("name", n)?,
        None => described,
    };
    Ok(Rendered {
        name,
        check,
        settings: p.settings.clone(),
    })
}

/// What one attempt of one probe saw.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// Whether the check passed.
    pub passed: bool,
    /// The observed value, for the outcome.
    pub observed: String,
    /// Retrying cannot help (no connection to the host, unreadable CA file, a command that
    /// cannot be built): stop now.
    pub fatal: bool,
    /// What was measured, by name, for an analysis' conditions (`result`, `status`,
    /// `latency_ms`, `rc`, `stdout`, `results`); empty when nothing could be measured.
    pub values: serde_json::Map<String, serde_json::Value>,
}

/// Two attempts are equal when their verdicts are: what they measured is read only by
/// conditions.
impl PartialEq for Attempt {
    fn eq(&self, other: &Attempt) -> bool {
        (self.passed, &self.observed, self.fatal) == (other.passed, &other.observed, other.fatal)
    }
}

impl Attempt {
    /// A pass.
    pub fn pass(observed: impl Into<String>) -> Attempt {
        Attempt {
            passed: true,
            observed: observed.into(),
            fatal: false,
            values: serde_json::Map::new(),
        }
    }

    /// A failure worth retrying.
    pub fn fail(observed: impl Into<String>) -> Attempt {
        Attempt {
            passed: false,
            ..Attempt::pass(observed)
        }
    }

    /// A failure no retry can fix.
    pub fn fatal(observed: impl Into<String>) -> Attempt {
        Attempt {
            fatal: true,
            ..Attempt::fail(observed)
        }
    }

    /// The attempt with a measured value.
    pub fn with(mut self, name: &str, value: impl Into<serde_json::Value>) -> Attempt {
        self.values.insert(name.to_string(), value.into());
        self
    }
}

/// At most `max` characters of `text`, trimmed, newlines shown as `\n`, `…` when cut: for
/// bodies and outputs quoted in an observed value.
pub(crate) fn snippet(text: &str, max: usize) -> String {
    let text = text.trim();
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Milliseconds in `d`, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The per-attempt limit, never zero (a zero timeout would fail every attempt at once).
pub(crate) fn attempt_limit(settings: &ProbeSettings) -> Duration {
    settings.timeout.max(Duration::from_millis(1))
}
