//! The variables that say how to reach a host, checked where they are written.
//!
//! Owns the literal-value checks of `ansible_port`, `ansible_connection`, the host key policy
//! and the connect timeout, so that a value that can never work (`ansible_port=twenty-two`,
//! `70000`, `ansible_connection=telnet`) is a `FILE:LINE:COL` error before any host is
//! contacted, not a failure after earlier batches were deployed. A template (`{{ ... }}`) is
//! checked when it is rendered, at run time. It must not do I/O.

use serde_json::Value;

use crate::exec::host::Connection;
use crate::transport::known_hosts::HostKeyPolicy;

/// What is wrong with `key = value`, or `None` when it is fine, not a connection variable, or
/// a template.
pub(crate) fn error(key: &str, value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) if s.contains("{{") || s.contains("{%") => return None,
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => return None,
        _ => String::new(),
    };
    let ok = match key {
        "ansible_port" | "ansible_ssh_port" => {
            crate::transport::ssh_config::parse_port(&text).is_some()
        }
        "ansible_connection" => Connection::parse(&text).is_some(),
        "ansible_ssh_host_key_checking" | "ansible_host_key_checking" => {
            HostKeyPolicy::parse(&text).is_some()
        }
        "ansible_ssh_timeout" | "ansible_timeout" => text.parse::<u64>().is_ok(),
        _ => return None,
    };
    if ok {
        return None;
    }
    let shown = if text.is_empty() {
        value.to_string()
    } else {
        format!("'{text}'")
    };
    Some(match key {
        "ansible_port" | "ansible_ssh_port" => {
            format!("{key} must be a port number from 1 to 65535, found {shown}")
        }
        "ansible_connection" => format!(
            "ansible_connection {shown} is not supported by rdeploy (expected local or ssh)"
        ),
        "ansible_ssh_timeout" | "ansible_timeout" => {
            format!("{key} must be a whole number of seconds, found {shown}")
        }
        _ => format!("{key} must be a boolean, strict or accept-new, found {shown}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_connections_policies_and_templates() {
        assert!(error("ansible_port", &json!(22)).is_none());
        assert!(error("ansible_port", &json!("2222")).is_none());
        assert!(error("ansible_port", &json!("{{ base + 1 }}")).is_none());
        assert!(error("ansible_port", &json!("twenty-two")).is_some());
        assert!(error("ansible_port", &json!(70000)).is_some());
        assert!(error("ansible_port", &json!(0)).is_some());
        assert!(error("ansible_connection", &json!("smart")).is_none());
        assert!(
            error("ansible_connection", &json!("telnet"))
                .unwrap()
                .contains("not supported by rdeploy")
        );
        assert!(error("ansible_ssh_host_key_checking", &json!(false)).is_none());
        assert!(error("ansible_ssh_host_key_checking", &json!("maybe")).is_some());
        assert!(error("app_port", &json!("twenty-two")).is_none());
    }
}
