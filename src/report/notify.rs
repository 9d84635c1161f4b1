//! Webhooks (`--notify URL`, repeatable): a JSON summary POSTed when the run starts, when it
//! ends and when a rollback starts; `slack+URL` and `teams+URL` post the same news as a
//! Slack-compatible message (`{"text": ...}`) or a Microsoft Teams Adaptive Card.
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

/// What a webhook is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// rdeploy's own JSON document.
    Json,
    /// `{"text": "..."}`: Slack incoming webhooks (and Mattermost, Rocket.Chat, Discord's
    /// `/slack` endpoint).
    Slack,
    /// A `message` with one Adaptive Card: Microsoft Teams workflow webhooks.
    Teams,
}

/// One webhook: where and in which shape.
#[derive(Clone, Debug)]
pub struct Hook {
    /// The URL (without the `slack+`/`teams+` prefix).
    pub url: reqwest::Url,
    /// What it is sent.
    pub format: Format,
}

/// The webhooks of one run.
pub struct Notifier {
    urls: Vec<Hook>,
    client: Option<reqwest::Client>,
    pending: Vec<JoinHandle<Option<String>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field(
                "urls",
                &self.urls.iter().map(|h| redact(&h.url)).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Checks `--notify` values: absolute `http`/`https` URLs, optionally prefixed `slack+` or
/// `teams+`. Errors never repeat the URL's path (webhook paths are secrets).
pub fn parse_urls(raw: &[String]) -> Result<Vec<Hook>, String> {
    raw.iter()
        .map(|u| {
            let (format, rest) = match u.split_once('+') {
                Some(("slack", rest)) => (Format::Slack, rest),
                Some(("teams", rest)) => (Format::Teams, rest),
                _ => (Format::Json, u.as_str()),
            };
            match reqwest::Url::parse(rest) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                    Ok(Hook { url, format })
                }
                Ok(url) => Err(format!(
                    "--notify '{}': expected an http:// or https:// URL, optionally prefixed slack+ or teams+",
                    redact(&url)
                )),
                Err(e) => Err(format!("--notify: not a URL ({e})")),
            }
        })
        .collect()
}

/// The news in one line for people: who ran what, where, and how it went.
pub fn summary_line(body: &Value) -> String {
    let get = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
    let playbook = get("playbook");
    let what = match get("label") {
        "" => playbook.to_string(),
        label => format!("{playbook} ({label})"),
    };
    let env = joined(body.get("environment"));
    let on = if env.is_empty() {
        String::new()
    } else {
        format!(" on {env}")
    };
    let who = match (get("user"), get("controller")) {
        ("", _) => String::new(),
        (u, "") => format!(" by {u}"),
        (u, c) => format!(" by {u}@{c}"),
    };
    let run = match get("run_id") {
        "" => String::new(),
        id => format!(" (run {id})"),
    };
    match get("event") {
        "run_start" => format!("rdeploy: {what}{on} started{who}{run}"),
        "rollback_start" => {
            let hosts = joined(body.get("hosts"));
            format!("rdeploy: rolling back {hosts}{run}")
        }
        _ => {
            let code = body.get("exit_code").and_then(Value::as_i64).unwrap_or(-1);
            format!(
                "rdeploy: {what}{on} ended {} (exit {code}){who}{run}",
                get("outcome")
            )
        }
    }
}

/// A list of texts as `a, b`; a text as itself.
fn joined(v: Option<&Value>) -> String {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// What `format` sends for `body`.
pub fn payload(format: Format, body: &Value) -> Value {
    match format {
        Format::Json => body.clone(),
        Format::Slack => serde_json::json!({ "text": summary_line(body) }),
        Format::Teams => serde_json::json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [{ "type": "TextBlock", "text": summary_line(body), "wrap": true }],
                },
            }],
        }),
    }
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
    pub fn new(urls: Vec<Hook>) -> Notifier {
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
        for hook in &self.urls {
            let Some(client) = self.client.clone() else {
                self.pending
                    .push(rt.spawn(async { Some("webhooks: no HTTP client".to_string()) }));
                continue;
            };
            // Registered secrets (vault values, `secret_vars`) are masked in what leaves too.
            let text = payload(hook.format, body).to_string();
            let bytes = crate::vault::redact::redact(&text)
                .into_owned()
                .into_bytes();
            let url = hook.url.clone();
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
        assert_eq!(redact(&u[0].url), "https://hooks.example.com/…");
        assert_eq!(u[0].format, Format::Json);
        assert!(parse_urls(&["ftp://x/".into()]).is_err());
        assert!(parse_urls(&["not a url".into()]).is_err());
        let e = parse_urls(&["slack+ftp://x/s3cr3t".into()]).unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
        let chat = parse_urls(&[
            "slack+https://hooks.slack.com/services/T/B/x".into(),
            "teams+https://prod.example.logic.azure.com/workflows/x".into(),
        ])
        .unwrap();
        assert_eq!(chat[0].format, Format::Slack);
        assert_eq!(
            chat[0].url.as_str(),
            "https://hooks.slack.com/services/T/B/x"
        );
        assert_eq!(chat[1].format, Format::Teams);
    }

    #[test]
    fn chat_payloads_say_who_ran_what_where_and_how_it_went() {
        let end = serde_json::json!({"event": "run_end", "run_id": "R1", "playbook": "site.yaml",
            "label": "app 2.0", "user": "ops", "controller": "deploy1",
            "environment": ["inventory/prod"], "outcome": "rolled_back", "exit_code": 3});
        let line = "rdeploy: site.yaml (app 2.0) on inventory/prod ended rolled_back (exit 3) by ops@deploy1 (run R1)";
        assert_eq!(
            payload(Format::Slack, &end),
            serde_json::json!({ "text": line })
        );
        let teams = payload(Format::Teams, &end);
        assert_eq!(teams["type"], "message");
        let card = &teams["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert_eq!(card["content"]["body"][0]["text"], line);
        let start = serde_json::json!({"event": "run_start", "run_id": "R1",
            "playbook": "site.yaml", "user": "ops", "controller": "deploy1",
            "environment": ["inventory/prod"]});
        assert_eq!(
            summary_line(&start),
            "rdeploy: site.yaml on inventory/prod started by ops@deploy1 (run R1)"
        );
        let rollback = serde_json::json!({"event": "rollback_start", "run_id": "R1",
            "hosts": ["web1", "web2"]});
        assert_eq!(
            summary_line(&rollback),
            "rdeploy: rolling back web1, web2 (run R1)"
        );
        assert_eq!(payload(Format::Json, &end), end);
    }
}
