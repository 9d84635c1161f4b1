//! Webhooks (`--notify URL`, repeatable): a JSON summary POSTed when the run ends and when a
//! rollback starts.
//!
//! Owns the HTTP client and the posts in flight. Each POST is bounded by [`TIMEOUT`]; a
//! webhook that fails (refused, timed out, answered non-2xx) becomes a warning and never
//! changes the run's outcome or exit code. Warnings name a URL by its scheme and host only,
//! since webhook paths often carry secrets. It must not print: warnings are returned to the
//! reporter.

use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

/// The limit on each POST, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The webhooks of one run.
pub struct Notifier {
    urls: Vec<reqwest::Url>,
    client: Option<reqwest::Client>,
    pending: Vec<JoinHandle<Option<String>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("urls", &self.urls.iter().map(redact).collect::<Vec<_>>())
            .finish()
    }
}

/// Checks `--notify` values: absolute `http`/`https` URLs.
pub fn parse_urls(raw: &[String]) -> Result<Vec<reqwest::Url>, String> {
    raw.iter()
        .map(|u| match reqwest::Url::parse(u) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
            Ok(_) => Err(format!(
                "--notify '{u}': expected an http:// or https:// URL"
            )),
            Err(e) => Err(format!("--notify '{u}': {e}")),
        })
        .collect()
}

/// `scheme://host[:port]/…`: a URL without the path, query and credentials it may carry.
pub fn redact(url: &reqwest::Url) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{}://{}{port}/…",
        url.scheme(),
        url.host_str().unwrap_or("?")
    )
}

impl Notifier {
    /// Webhooks for these URLs (already checked by [`parse_urls`]).
    pub fn new(urls: Vec<reqwest::Url>) -> Notifier {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .build()
            .ok();
        Notifier {
            urls,
            client,
            pending: Vec::new(),
        }
    }

    /// Starts POSTing `body` to every URL on the current tokio runtime (none: nothing is
    /// sent). [`Notifier::finish`] waits for them.
    pub fn send(&mut self, body: &Value) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // Registered secrets (vault values, `secret_vars`) are masked in what leaves too.
        let text = body.to_string();
        let bytes = crate::vault::redact::redact(&text)
            .into_owned()
            .into_bytes();
        for url in &self.urls {
            let Some(client) = self.client.clone() else {
                self.pending
                    .push(rt.spawn(async { Some("webhooks: no HTTP client".to_string()) }));
                continue;
            };
            let (url, bytes) = (url.clone(), bytes.clone());
            self.pending
                .push(rt.spawn(async move { post(&client, url, bytes).await }));
        }
    }

    /// Waits for every POST started; returns a warning per failed one.
    pub async fn finish(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        for p in self.pending.drain(..) {
            match tokio::time::timeout(TIMEOUT + Duration::from_secs(1), p).await {
                Ok(Ok(None)) => {}
                Ok(Ok(Some(w))) => warnings.push(w),
                Ok(Err(e)) => warnings.push(format!("webhook: {e}")),
                Err(_) => warnings.push("webhook: no answer in time".into()),
            }
        }
        warnings
    }
}

/// One POST; a warning when it failed.
async fn post(client: &reqwest::Client, url: reqwest::Url, body: Vec<u8>) -> Option<String> {
    let shown = redact(&url);
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => Some(format!("webhook {shown} answered {}", r.status())),
        Err(e) if e.is_timeout() => Some(format!(
            "webhook {shown} did not answer within {}s",
            TIMEOUT.as_secs()
        )),
        Err(e) => Some(format!(
            "webhook {shown} failed: {}",
            error_chain(&e.without_url())
        )),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_shown_without_their_secrets() {
        let u = parse_urls(&["https://hooks.example.com/T0/B0/s3cr3t?x=1".into()]).unwrap();
        assert_eq!(redact(&u[0]), "https://hooks.example.com/…");
        assert!(parse_urls(&["ftp://x/".into()]).is_err());
        assert!(parse_urls(&["not a url".into()]).is_err());
    }
}
