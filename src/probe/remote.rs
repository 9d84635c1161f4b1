//! Probes that run on the host over its transport: `command` probes, and `http`/`tcp` probes
//! with `from: host`.
//!
//! Owns the [`Cmd`]s these probes send (built only with the builder's quoting: `curl`, else
//! `wget`, for HTTP; bash's `/dev/tcp`, else `nc -z`, for TCP) and reading their output back
//! into an [`Attempt`]. It must not format shell strings itself, retry, or touch the controller's
//! network.

use std::time::{Duration, Instant};

use super::http::{HttpSpec, human, judge};
use super::tcp::split_address;
use super::{Attempt, Matcher, millis, snippet};
use crate::transport::cmd::{Cmd, if_program};
use crate::transport::{AnyTransport, Output, Transport, TransportError};

/// Extra time the transport gives a probe command beyond the attempt's limit, so the tool's own
/// timeout (curl's `--max-time`) reports first.
const GRACE: Duration = Duration::from_secs(1);

/// What `curl -w` prints after the body: a marker line with status code and total seconds.
const CURL_MARK: &str = "\nrdeploy-probe-curl ";
/// What the `wget` branch prints after the body: a marker line with wget's exit status.
const WGET_MARK: &str = "\nrdeploy-probe-wget ";

/// A `command` probe: `sh -c COMMAND` must exit 0 and, when asked, its stdout must match.
pub async fn command(
    tr: &mut AnyTransport,
    command: &str,
    stdout: Option<&Matcher>,
    limit: Duration,
) -> Attempt {
    let cmd = Cmd::user_script(command).timeout(limit);
    match tr.exec(&cmd).await {
        Ok(out) => judge_command(&out, stdout),
        Err(e) => transport_failure(e, limit),
    }
}

/// The verdict on a command probe's output.
pub fn judge_command(out: &Output, stdout: Option<&Matcher>) -> Attempt {
    let so = out.stdout_lossy();
    let text = so.trim();
    // A number printed by the command is the measured result; any other output is text.
    let result = match text.parse::<f64>() {
        Ok(n) if n.is_finite() => serde_json::json!(n),
        _ => serde_json::json!(text),
    };
    command_verdict(out, &so, stdout)
        .with("result", result)
        .with("rc", out.status)
        .with("stdout", text)
}

fn command_verdict(out: &Output, so: &str, stdout: Option<&Matcher>) -> Attempt {
    let se = out.stderr_lossy();
    let mut streams = Vec::new();
    if !so.trim().is_empty() {
        streams.push(format!("stdout \"{}\"", snippet(so, 120)));
    }
    if !out.success() && !se.trim().is_empty() {
        streams.push(format!("stderr \"{}\"", snippet(&se, 120)));
    }
    let seen = match streams.is_empty() {
        true => format!("exit {}", out.status),
        false => format!("exit {}: {}", out.status, streams.join(" ")),
    };
    if !out.success() {
        return Attempt::fail(seen);
    }
    match stdout {
        Some(m) if !m.matches(so) => Attempt::fail(format!("{seen}; stdout does not contain {m}")),
        _ => Attempt::pass(seen),
    }
}

/// An HTTP probe with `from: host`: `curl` on the host (else `wget`), judged like a controller
/// request. Latency is curl's own `time_total`; with wget it is the round trip seen from here.
pub async fn http(tr: &mut AnyTransport, spec: &HttpSpec<'_>, limit: Duration) -> Attempt {
    let cmd = http_cmd(spec, limit);
    let start = Instant::now();
    match tr.exec(&cmd).await {
        Ok(out) => match parse_http(&out) {
            Ok(r) => judge(
                spec,
                r.status,
                &r.body,
                r.latency.unwrap_or(start.elapsed()),
            ),
            Err(e) => Attempt::fail(e),
        },
        Err(e) => transport_failure(e, limit),
    }
}

/// The command for an HTTP probe run on the host.
pub fn http_cmd(spec: &HttpSpec<'_>, limit: Duration) -> Cmd {
    let secs = format!("{:.3}", limit.as_secs_f64());
    // -L: follow redirects, like the controller's client (up to 10) and wget.
    let mut curl = Cmd::raw("curl -sS -L --max-redirs 10 --max-time")
        .arg(secs.as_str())
        .op("-w")
        .arg("\\nrdeploy-probe-curl %{http_code} %{time_total}\\n");
    if spec.insecure {
        curl = curl.op("-k");
    }
    if let Some(ca) = spec.ca_file {
        curl = curl.op("--cacert").arg(ca.to_string_lossy());
    }
    for (k, v) in spec.headers {
        curl = curl.op("-H").arg(format!("{k}: {v}"));
    }
    curl = curl.op("--url").arg(spec.url);
    // GNU wget: -S prints the response headers to stderr; 4xx/5xx bodies are not shown.
    let mut wget = Cmd::raw("wget -q -S -O - --tries=1").arg(format!("--timeout={secs}"));
    if spec.insecure {
        wget = wget.op("--no-check-certificate");
    }
    if let Some(ca) = spec.ca_file {
        wget = wget.arg(format!("--ca-certificate={}", ca.to_string_lossy()));
    }
    for (k, v) in spec.headers {
        wget = wget.op("--header").arg(format!("{k}: {v}"));
    }
    wget = wget
        .op("--")
        .arg(spec.url)
        .op("; s_=$?; printf '\\nrdeploy-probe-wget %s\\n' \"$s_\"");
    let neither = Cmd::raw("echo 'rdeploy: neither curl nor wget on the host' >&2; exit 127");
    if_program("curl", curl, if_program("wget", wget, neither)).timeout(limit + GRACE)
}

/// A response read back from curl or wget on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostResponse {
    /// HTTP status code.
    pub status: u16,
    /// Body (as much as the transport kept).
    pub body: String,
    /// curl's `time_total`; `None` with wget.
    pub latency: Option<Duration>,
}

/// Reads the output of [`http_cmd`]; `Err` is the observed failure (curl's message, ...).
pub fn parse_http(out: &Output) -> Result<HostResponse, String> {
    let text = out.stdout_lossy();
    let err_line = || {
        let se = out.stderr_lossy();
        let last = se
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        if last.is_empty() {
            format!("exit {}", out.status)
        } else {
            snippet(last, 200)
        }
    };
    if let Some(i) = text.rfind(CURL_MARK) {
        let mut words = text[i + CURL_MARK.len()..].split_whitespace();
        let status = words.next().and_then(|w| w.parse::<u16>().ok());
        let secs = words.next().and_then(|w| w.parse::<f64>().ok());
        return match status {
            Some(status) if status != 0 && out.success() => Ok(HostResponse {
                status,
                body: text[..i].to_string(),
                latency: secs.and_then(|s| Duration::try_from_secs_f64(s).ok()),
            }),
            _ => Err(err_line()),
        };
    }
    if let Some(i) = text.rfind(WGET_MARK) {
        let se = out.stderr_lossy();
        let status = se
            .lines()
            .rev()
            .filter_map(|l| l.trim().strip_prefix("HTTP/"))
            .find_map(|l| l.split_whitespace().nth(1)?.parse::<u16>().ok());
        return match status {
            Some(status) => Ok(HostResponse {
                status,
                body: text[..i].to_string(),
                latency: None,
            }),
            None => Err(err_line()),
        };
    }
    Err(err_line())
}

/// A TCP probe with `from: host`: connect from the host with bash's `/dev/tcp`, else `nc -z`.
pub async fn tcp(tr: &mut AnyTransport, address: &str, limit: Duration) -> Attempt {
    let cmd = match split_address(address) {
        Ok((host, port)) => tcp_cmd(host, port, limit),
        Err(e) => return Attempt::fatal(e),
    };
    let start = Instant::now();
    match tr.exec(&cmd).await {
        Ok(out) if out.success() => {
            let ms = millis(start.elapsed());
            Attempt::pass(format!("connected in {ms} ms"))
                .with("result", true)
                .with("latency_ms", ms)
        }
        Ok(out) => {
            let se = out.stderr_lossy();
            // bash: "bash: line 1: /dev/tcp/127.0.0.1/1: Connection refused"
            let why = se
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.rsplit(": ").next().unwrap_or(l).trim().to_lowercase());
            match why {
                Some(w) if !w.is_empty() => Attempt::fail(w),
                _ => Attempt::fail(format!("connection failed (exit {})", out.status)),
            }
        }
        Err(e) => transport_failure(e, limit),
    }
}

/// The command for a TCP probe run on the host.
pub fn tcp_cmd(host: &str, port: u16, limit: Duration) -> Cmd {
    let bash = Cmd::raw("bash -c 'exec 3<>\"/dev/tcp/$1/$2\"' rdeploy-probe")
        .arg(host)
        .arg(port.to_string());
    let nc = Cmd::raw("nc -z -w")
        .arg(limit.as_secs().max(1).to_string())
        .arg(host)
        .arg(port.to_string());
    let neither = Cmd::raw("echo 'rdeploy: neither bash nor nc on the host' >&2; exit 127");
    if_program("bash", bash, if_program("nc", nc, neither)).timeout(limit)
}

fn transport_failure(e: TransportError, limit: Duration) -> Attempt {
    match e {
        TransportError::TimedOut { .. } => {
            Attempt::fail(format!("timed out after {}", human(limit)))
        }
        TransportError::InvalidCommand(e) => Attempt::fatal(format!("invalid command: {e}")),
        e => Attempt::fail(e.to_string()),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn out(status: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            status,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            ..Output::default()
        }
    }

    #[test]
    fn curl_output_is_read_back() {
        let r = parse_http(&out(0, "ok\n\nrdeploy-probe-curl 200 0.012\n", "")).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "ok\n");
        assert_eq!(r.latency, Some(Duration::from_millis(12)));
        let refused = "curl: (7) Failed to connect to 127.0.0.1 port 1: Connection refused\n";
        let e = parse_http(&out(7, "\nrdeploy-probe-curl 000 0.000\n", refused)).unwrap_err();
        assert!(e.contains("Connection refused"), "{e}");
        let e = parse_http(&out(
            127,
            "",
            "rdeploy: neither curl nor wget on the host\n",
        ));
        assert_eq!(e.unwrap_err(), "rdeploy: neither curl nor wget on the host");
    }

    #[test]
    fn wget_output_is_read_back() {
        let stderr = "  HTTP/1.1 301 Moved\n  Location: /x\n  HTTP/1.1 503 Unavailable\n";
        let r = parse_http(&out(0, "\nrdeploy-probe-wget 8\n", stderr)).unwrap();
        assert_eq!((r.status, r.latency), (503, None));
        assert!(parse_http(&out(0, "\nrdeploy-probe-wget 4\n", "failed: refused\n")).is_err());
    }

    #[test]
    fn commands_quote_every_value() {
        let spec = HttpSpec {
            url: "http://h/?a=1&b='x'",
            status: &[200],
            body: None,
            max_latency: None,
            headers: &[("X-Token".into(), "a b;$(rm -rf /)".into())],
            ca_file: None,
            insecure: true,
        };
        let line = http_cmd(&spec, Duration::from_secs(2)).to_shell().unwrap();
        assert!(
            line.contains("--url 'http://h/?a=1&b='\"'\"'x'\"'\"''"),
            "{line}"
        );
        assert!(line.contains("-H 'X-Token: a b;$(rm -rf /)'"), "{line}");
        let line = tcp_cmd("h;reboot", 80, Duration::from_secs(1))
            .to_shell()
            .unwrap();
        assert!(line.contains("'h;reboot' '80'"), "{line}");
    }

    #[test]
    fn command_verdicts_show_exit_and_output() {
        let m = Matcher::parse("/^ready/").unwrap();
        assert_eq!(
            judge_command(&out(0, "ready\n", ""), Some(&m)),
            Attempt::pass("exit 0: stdout \"ready\"")
        );
        assert_eq!(
            judge_command(&out(0, "not yet\n", ""), Some(&m)),
            Attempt::fail("exit 0: stdout \"not yet\"; stdout does not contain /^ready/")
        );
        assert_eq!(
            judge_command(&out(1, "", "nope\n"), None),
            Attempt::fail("exit 1: stderr \"nope\"")
        );
    }
}
