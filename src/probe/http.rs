//! HTTP probes made from the controller, and the verdict on an HTTP response wherever it was
//! fetched.
//!
//! Owns the reqwest clients ([`Clients`]: one per distinct TLS setting, built lazily with a
//! connect timeout), the bounded GET ([`check`]) and [`judge`], which turns status, body and
//! latency into an [`Attempt`] for both controller and `from: host` requests. It must not run
//! anything on a host (that is [`super::remote`]) or retry (that is [`super::run`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Attempt, Matcher, millis, snippet};

/// Most body bytes read from a response; the rest is not read.
pub const MAX_BODY: usize = 1 << 20;

/// An HTTP probe's request and expectations, borrowed from a [`super::Check::Http`].
#[derive(Clone, Copy, Debug)]
pub struct HttpSpec<'a> {
    /// The URL.
    pub url: &'a str,
    /// Accepted status codes.
    pub status: &'a [u16],
    /// What the body must contain.
    pub body: Option<&'a Matcher>,
    /// Slowest acceptable response.
    pub max_latency: Option<Duration>,
    /// Request headers.
    pub headers: &'a [(String, String)],
    /// Extra CA bundle (PEM).
    pub ca_file: Option<&'a Path>,
    /// Skip certificate verification.
    pub insecure: bool,
}

/// reqwest clients keyed by TLS setting (CA file, insecure), built on first use. A client that
/// could not be built (unreadable CA file) is remembered as its error.
#[derive(Debug)]
pub struct Clients {
    connect_timeout: Duration,
    built: HashMap<(Option<PathBuf>, bool), Result<reqwest::Client, String>>,
}

impl Clients {
    /// No clients yet; those built will give up connecting after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Clients {
        Clients {
            connect_timeout,
            built: HashMap::new(),
        }
    }

    /// The client for this TLS setting.
    pub async fn get(
        &mut self,
        ca_file: Option<&Path>,
        insecure: bool,
    ) -> Result<reqwest::Client, String> {
        let key = (ca_file.map(Path::to_path_buf), insecure);
        if let Some(c) = self.built.get(&key) {
            return c.clone();
        }
        let built = build_client(self.connect_timeout, ca_file, insecure).await;
        self.built.insert(key, built.clone());
        built
    }
}

async fn build_client(
    connect_timeout: Duration,
    ca_file: Option<&Path>,
    insecure: bool,
) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .user_agent(concat!("rdeploy-probe/", env!("CARGO_PKG_VERSION")))
        .tls_danger_accept_invalid_certs(insecure);
    if let Some(path) = ca_file {
        let pem = tokio::fs::read(path)
            .await
            .map_err(|e| format!("cannot read CA file {}: {}", path.display(), tidy(&e)))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("CA file {}: {}", path.display(), innermost(&e)))?;
        if certs.is_empty() {
            return Err(format!(
                "CA file {}: no PEM certificate in it",
                path.display()
            ));
        }
        b = b.tls_certs_merge(certs);
    }
    b.build()
        .map_err(|e| format!("HTTP client: {}", innermost(&e)))
}

/// One GET from the controller, bounded by `limit` (connect to end of body). Redirects are
/// followed (up to 10); the status judged is the last response's.
pub async fn check(clients: &mut Clients, spec: &HttpSpec<'_>, limit: Duration) -> Attempt {
    let client = match clients.get(spec.ca_file, spec.insecure).await {
        Ok(c) => c,
        Err(e) => return Attempt::fatal(e),
    };
    let mut req = client.get(spec.url).timeout(limit);
    for (k, v) in spec.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let start = Instant::now();
    match fetch(req).await {
        Ok((status, body)) => judge(spec, status, &body, start.elapsed()),
        Err(e) if e.is_builder() => Attempt::fatal(format!("invalid request: {}", innermost(&e))),
        Err(e) => Attempt::fail(describe(&e, limit)),
    }
}

/// Sends `req` and reads at most `MAX_BODY` bytes of the body.
pub(crate) async fn fetch(req: reqwest::RequestBuilder) -> Result<(u16, String), reqwest::Error> {
    let mut resp = req.send().await?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY {
            break;
        }
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The verdict on a response: status accepted, then latency within `max_latency`, then the
/// body matched. The observed value starts `status N after M ms`.
pub fn judge(spec: &HttpSpec<'_>, status: u16, body: &str, latency: Duration) -> Attempt {
    verdict(spec, status, body, latency)
        .with("result", status)
        .with("status", status)
        .with("latency_ms", millis(latency))
}

fn verdict(spec: &HttpSpec<'_>, status: u16, body: &str, latency: Duration) -> Attempt {
    let seen = format!("status {status} after {} ms", millis(latency));
    if !spec.status.contains(&status) {
        return Attempt::fail(seen);
    }
    if let Some(max) = spec.max_latency
        && latency > max
    {
        return Attempt::fail(format!("{seen} > max_latency {}", human(max)));
    }
    if let Some(m) = spec.body
        && !m.matches(body)
    {
        return Attempt::fail(format!(
            "{seen}; body does not contain {m}: \"{}\"",
            snippet(body, 120)
        ));
    }
    Attempt::pass(seen)
}

/// A reqwest error as a short phrase: `timed out after 2 s`, `connection refused`, ...
pub(crate) fn describe(e: &reqwest::Error, limit: Duration) -> String {
    if e.is_timeout() {
        return format!("timed out after {}", human(limit));
    }
    innermost(e)
}

/// The deepest cause's message, tidied (`Connection refused (os error 111)` →
/// `connection refused`).
pub(crate) fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(s) = inner.source() {
        inner = s;
    }
    tidy_text(&inner.to_string())
}

/// An I/O error as a short phrase (`connection refused`).
pub(crate) fn tidy(e: &std::io::Error) -> String {
    tidy_text(&e.to_string())
}

fn tidy_text(msg: &str) -> String {
    let msg = match msg.rfind(" (os error ") {
        Some(i) if msg.ends_with(')') => &msg[..i],
        _ => msg,
    };
    let mut chars = msg.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A duration for people: `500 ms`, `2 s`, `1500 ms`.
pub fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", millis(d))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn spec<'a>(status: &'a [u16], body: Option<&'a Matcher>) -> HttpSpec<'a> {
        HttpSpec {
            url: "http://x/",
            status,
            body,
            max_latency: Some(Duration::from_millis(500)),
            headers: &[],
            ca_file: None,
            insecure: false,
        }
    }

    #[test]
    fn judge_checks_status_then_latency_then_body() {
        let m = Matcher::parse("ok").unwrap();
        let s = spec(&[200, 204], Some(&m));
        let ms = Duration::from_millis;
        assert_eq!(
            judge(&s, 200, "all ok", ms(12)),
            Attempt::pass("status 200 after 12 ms")
        );
        assert_eq!(
            judge(&s, 503, "ok", ms(12)),
            Attempt::fail("status 503 after 12 ms")
        );
        assert_eq!(
            judge(&s, 204, "ok", ms(612)),
            Attempt::fail("status 204 after 612 ms > max_latency 500 ms")
        );
        assert_eq!(
            judge(&s, 200, "down\n", ms(3)),
            Attempt::fail("status 200 after 3 ms; body does not contain \"ok\": \"down\"")
        );
    }

    #[test]
    fn io_errors_read_as_short_phrases() {
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            tidy_text("Connection refused (os error 111)"),
            "connection refused"
        );
        assert!(!tidy(&e).is_empty());
        assert_eq!(human(Duration::from_secs(2)), "2 s");
        assert_eq!(human(Duration::from_millis(1500)), "1500 ms");
    }
}
