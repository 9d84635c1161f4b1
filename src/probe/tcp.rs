//! TCP probes made from the controller: connect to `host:port` within the attempt's limit.
//!
//! Owns splitting and checking a probe address ([`split_address`], shared with `from: host`
//! probes) and the controller-side connect. It must not send or read any data, nor retry.

use std::time::{Duration, Instant};

use super::http::{human, tidy};
use super::{Attempt, millis};

/// `host:port` → (`host`, `port`); `[v6]:port` → (`v6`, `port`). `Err` says what is wrong.
pub fn split_address(address: &str) -> Result<(&str, u16), String> {
    let bad = || format!("invalid address {address:?}: expected host:port");
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or_else(bad)?,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host, port))
}

/// One connect from the controller, bounded by `limit`; the connection is closed at once.
pub async fn check(address: &str, limit: Duration) -> Attempt {
    let (host, port) = match split_address(address) {
        Ok(hp) => hp,
        Err(e) => return Attempt::fatal(e),
    };
    let start = Instant::now();
    match tokio::time::timeout(limit, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_stream)) => {
            let ms = millis(start.elapsed());
            Attempt::pass(format!("connected in {ms} ms"))
                .with("result", true)
                .with("latency_ms", ms)
        }
        Ok(Err(e)) => Attempt::fail(tidy(&e)),
        Err(_) => Attempt::fail(format!("timed out after {}", human(limit))),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(split_address("web1:8080"), Ok(("web1", 8080)));
        assert_eq!(split_address("[::1]:443"), Ok(("::1", 443)));
        for bad in [
            "web1",
            "web1:",
            ":80",
            "::1:80",
            "web1:http",
            "web1:0",
            "[::1:80",
        ] {
            assert!(split_address(bad).is_err(), "{bad}");
        }
    }
}
