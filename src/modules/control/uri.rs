//! `uri`: an HTTP request from the controller (Ansible runs it on the host; rdeploy needs no
//! Python there, so it runs here). Owns its arguments, the request (authentication, headers,
//! body encodings, redirects) and the result's shape; fails unless the status is one of
//! `status_code`. Must not reach the executor's state.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::modules::runtime::{Args, ModuleError};

crate::module_args! {
    /// Makes an HTTP request from the controller (Ansible's runs on the host; rdeploy needs no
    /// Python there) and checks the status code; register the result for the body.
    #[module(
        name = "uri",
        backup = "Runs on the controller (the request comes from the controller, not the host) and changes nothing rdeploy can back up: a request other than GET or HEAD is not reversible and is skipped under --check.",
        returns = &[
            ("status", "the HTTP status"),
            ("url", "the URL the answer came from (after redirects)"),
            ("elapsed", "seconds the request took"),
            ("json", "the body parsed, when the answer is JSON"),
            ("content", "the body, with return_content"),
            ("msg", "why the task failed"),
        ],
        examples = "- uri:\n    url: \"http://{{ inventory_hostname }}:8080/health\"\n    status_code: 200\n    return_content: true\n  register: health\n- uri:\n    url: http://127.0.0.1:8080/api/deploys\n    method: POST\n    body_format: json\n    body: {version: \"2.1\"}\n    status_code: [200, 201]"
    )]
    pub struct UriArgs {
        /// The URL.
        #[arg(required)]
        url: String,
        /// HTTP method.
        #[arg(default = "GET")]
        method: String,
        /// Status code(s) that count as success.
        #[arg(default = "200")]
        status_code: Vec<String>,
        /// Return the body as `content`.
        #[arg(default = "no")]
        return_content: bool,
        /// Request timeout in seconds.
        #[arg(default = "30")]
        timeout: i64,
        /// Request body: text as is; with `body_format: json` a value is sent as JSON, with
        /// `form-urlencoded` a mapping is encoded as a form.
        body: Value,
        /// How `body` is encoded.
        #[arg(default = "raw", choices = &["raw", "json", "form-urlencoded"])]
        body_format: String,
        /// Request headers.
        #[arg(kind = Dict)]
        headers: Value,
        /// Verify TLS certificates.
        #[arg(default = "yes")]
        validate_certs: bool,
        /// User for basic authentication.
        #[arg(aliases = &["user"])]
        url_username: Option<String>,
        /// Password for basic authentication.
        #[arg(aliases = &["password"])]
        url_password: Option<String>,
        /// Send basic authentication without waiting for a 401.
        #[arg(default = "no")]
        force_basic_auth: bool,
        /// `safe` follows redirects of GET and HEAD only; `all`/`yes` every one; `none`/`no`
        /// none.
        #[arg(default = "safe", choices = &["safe", "all", "none", "urllib2", "yes", "no"])]
        follow_redirects: String,
    }
}

/// What the request gave: the result keys, and the failure message if it failed.
pub struct Answer {
    /// Result keys for `register:`.
    pub result: Map<String, Value>,
    /// Why the task failed (the status was not wanted, the request failed).
    pub failed: Option<String>,
}

impl Answer {
    fn failed(msg: String) -> Answer {
        let mut result = Map::new();
        result.insert("msg".into(), Value::from(msg.clone()));
        Answer {
            result,
            failed: Some(msg),
        }
    }
}

/// Text of a scalar (a header value, a form field) as Ansible sends it.
fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// `application/x-www-form-urlencoded` text of one name or value: letters, digits and `*-._`
/// as they are, a space as `+`, every other byte as `%XX`.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Runs the request `args` describe.
pub async fn request(args: &Args) -> Answer {
    match UriArgs::parse(args) {
        Ok(a) => a.send().await,
        Err(e) => Answer::failed(format!("uri: {e}")),
    }
}

impl UriArgs {
    fn wanted(&self) -> Result<Vec<u16>, ModuleError> {
        self.status_code
            .iter()
            .map(|s| {
                s.trim().parse::<u16>().map_err(|_| {
                    ModuleError::Args(format!("status_code: '{s}' is not an HTTP status code"))
                })
            })
            .collect()
    }

    fn body(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (self.body_format.as_str(), &self.body) {
            (_, Value::Null) => req,
            // As Ansible: text is sent as it is, whatever the format says.
            ("json", Value::String(s)) => req
                .header("Content-Type", "application/json")
                .body(s.clone()),
            ("json", b) => req
                .header("Content-Type", "application/json")
                .body(b.to_string()),
            ("form-urlencoded", Value::Object(m)) => {
                let fields: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(&text(v))))
                    .collect();
                req.header("Content-Type", "application/x-www-form-urlencoded")
                    .body(fields.join("&"))
            }
            ("form-urlencoded", Value::String(s)) => req
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(s.clone()),
            (_, Value::String(s)) => req.body(s.clone()),
            (_, other) => req.body(other.to_string()),
        }
    }

    async fn send(self) -> Answer {
        let url = self.url.clone();
        let method = self.method.to_ascii_uppercase();
        let wanted = match self.wanted() {
            Ok(w) => w,
            Err(e) => return Answer::failed(format!("uri: {e}")),
        };
        // Ansible's `follow_redirects`: `safe` (and `urllib2`) only for GET and HEAD.
        let follow = match self.follow_redirects.as_str() {
            "all" | "yes" => true,
            "none" | "no" => false,
            _ => matches!(method.as_str(), "GET" | "HEAD"),
        };
        let timeout = Duration::from_secs(self.timeout.max(1).unsigned_abs());
        let client = match reqwest::Client::builder()
            .timeout(timeout)
            .tls_danger_accept_invalid_certs(!self.validate_certs)
            .redirect(if follow {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .build()
        {
            Ok(c) => c,
            Err(e) => return Answer::failed(format!("uri: {e}")),
        };
        let Ok(m) = reqwest::Method::from_bytes(method.as_bytes()) else {
            return Answer::failed(format!("uri: invalid method '{method}'"));
        };
        let user = self.url_username.clone();
        let password = self.url_password.clone();
        let mut req = client.request(m, &url);
        if self.force_basic_auth
            && let Some(u) = &user
        {
            req = req.basic_auth(u, password.as_deref());
        }
        if let Value::Object(h) = &self.headers {
            for (k, v) in h {
                req = req.header(k.as_str(), text(v));
            }
        }
        req = self.body(req);
        let started = Instant::now();
        // Without `force_basic_auth`, credentials go only to a server that asks for them (a
        // 401 with a Basic challenge), as Ansible's urllib handler does.
        let retry = (!self.force_basic_auth && user.is_some())
            .then(|| req.try_clone())
            .flatten();
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Answer::failed(format!("uri: request to {url} failed: {e}")),
        };
        if let (Some(again), Some(u)) = (retry, &user)
            && resp.status().as_u16() == 401
            && resp.headers().get_all("www-authenticate").iter().any(|v| {
                v.to_str()
                    .is_ok_and(|s| s.to_ascii_lowercase().starts_with("basic"))
            })
        {
            resp = match again.basic_auth(u, password.as_deref()).send().await {
                Ok(r) => r,
                Err(e) => return Answer::failed(format!("uri: request to {url} failed: {e}")),
            };
        }
        let status = resp.status().as_u16();
        let mut r = Map::new();
        r.insert("status".into(), Value::from(status));
        r.insert("url".into(), Value::from(resp.url().to_string()));
        r.insert(
            "elapsed".into(),
            Value::from(started.elapsed().as_secs_f64()),
        );
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if self.return_content || ctype.contains("json") {
            let body = resp.text().await.unwrap_or_default();
            if ctype.contains("json")
                && let Ok(j) = serde_json::from_str::<Value>(&body)
            {
                r.insert("json".into(), j);
            }
            if self.return_content {
                r.insert("content".into(), Value::from(body));
            }
        }
        if !wanted.contains(&status) {
            let msg = format!("Status code was {status} and not {wanted:?}");
            r.insert("msg".into(), Value::from(msg.clone()));
            return Answer {
                result: r,
                failed: Some(msg),
            };
        }
        Answer {
            result: r,
            failed: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_encoded_as_browsers_do() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(form_encode("Az09*-._"), "Az09*-._");
    }
}
