//! Dynamic inventory: an executable that prints Ansible's `--list` JSON.
//!
//! Owns running the script (`SCRIPT --list`, and `SCRIPT --host NAME` for each host when the
//! output has no `_meta`), with a wall-clock timeout and bounded output, and turning its JSON
//! into the [`Builder`] as Ansible's `script` plugin does: each key is a group whose value is
//! a list of hosts or `{hosts, children, vars}` (a mapping with none of those keys is a host
//! named after the group, with those variables); `_meta.hostvars` gives host variables. Errors
//! name the script and quote what it printed on stderr. It must not interpret the variables.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::diag::Loc;

use super::build::Builder;

/// How long a script may run before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes of stdout read from a script.
pub const MAX_STDOUT: usize = 64 * 1024 * 1024;
/// Most bytes of stderr kept for an error message.
const MAX_STDERR: usize = 64 * 1024;

/// Runs the inventory script at `path` and adds what it lists to `b`.
pub(crate) fn read(b: &mut Builder, path: &Path) {
    read_with_timeout(b, path, TIMEOUT);
}

pub(crate) fn read_with_timeout(b: &mut Builder, path: &Path, timeout: Duration) {
    let file: Arc<str> = Arc::from(path.display().to_string());
    let loc = Loc::file_start(Arc::clone(&file));
    let data = match run_json(path, &["--list"], timeout) {
        Ok(d) => d,
        Err(msg) => {
            b.error(Some(&loc), msg);
            return;
        }
    };
    // What a script prints comes from outside (a cloud API, a CMDB): data, never rendered.
    crate::template::lazy::template_texts(&data, &mut b.data_texts);
    let Value::Object(data) = data else {
        b.error(
            Some(&loc),
            format!("inventory script '{file}' must print a JSON object for --list"),
        );
        return;
    };
    let hostvars = data
        .get("_meta")
        .and_then(|m| m.get("hostvars"))
        .and_then(Value::as_object)
        .cloned();
    let mut listed: Vec<String> = Vec::new();
    for (group, value) in &data {
        if group == "_meta" {
            continue;
        }
        if let Err(msg) = read_group(b, group, value, &mut listed) {
            b.error(
                Some(&loc),
                format!("inventory script '{file}' printed a bad entry for group '{group}': {msg}"),
            );
        }
    }
    let has_meta = data.contains_key("_meta");
    for host in &listed {
        let vars = if has_meta {
            hostvars.as_ref().and_then(|hv| hv.get(host)).cloned()
        } else {
            match run_json(path, &["--host", host], timeout) {
                Ok(v) => Some(v),
                Err(msg) => {
                    b.error(Some(&loc), msg);
                    continue;
                }
            }
        };
        match vars {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    b.set_host_var(host, &k, v);
                }
            }
            Some(other) => b.error(
                Some(&loc),
                format!(
                    "inventory script '{file}' printed variables for host '{host}' that are not a JSON object: {other}"
                ),
            ),
        }
    }
}

fn read_group(
    b: &mut Builder,
    group: &str,
    value: &Value,
    listed: &mut Vec<String>,
) -> Result<(), String> {
    b.add_group(group, None);
    let obj: Map<String, Value> = match value {
        Value::Object(m)
            if ["hosts", "vars", "children"]
                .iter()
                .any(|k| m.contains_key(*k)) =>
        {
            m.clone()
        }
        // Simplified form: a mapping without those keys is one host with variables.
        Value::Object(m) => {
            let mut o = Map::new();
            o.insert(
                "hosts".into(),
                Value::Array(vec![Value::String(group.into())]),
            );
            o.insert("vars".into(), Value::Object(m.clone()));
            o
        }
        other => {
            let mut o = Map::new();
            o.insert("hosts".into(), other.clone());
            o
        }
    };
    if let Some(hosts) = obj.get("hosts") {
        let Value::Array(hosts) = hosts else {
            return Err(format!("'hosts' must be a list, found {hosts}"));
        };
        for h in hosts {
            let name = match h {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => return Err(format!("a host name must be a string, found {other}")),
            };
            b.add_host(group, &name, None);
            if !listed.contains(&name) {
                listed.push(name);
            }
        }
    }
    if let Some(vars) = obj.get("vars") {
        let Value::Object(vars) = vars else {
            return Err(format!("'vars' must be an object, found {vars}"));
        };
        for (k, v) in vars {
            b.set_group_var(group, k, v.clone(), None);
        }
    }
    if let Some(children) = obj.get("children") {
        let Value::Array(children) = children else {
            return Err(format!("'children' must be a list, found {children}"));
        };
        for c in children {
            let Value::String(c) = c else {
                return Err(format!("a group name must be a string, found {c}"));
            };
            b.add_group(c, None);
            b.add_child(group, c, None);
        }
    }
    Ok(())
}

/// Runs `path args...` and parses its stdout as JSON; the error names the script.
fn run_json(path: &Path, args: &[&str], timeout: Duration) -> Result<Value, String> {
    let shown = format!("{} {}", path.display(), args.join(" "));
    let out = run(path, args, timeout).map_err(|e| format!("inventory script '{shown}' {e}"))?;
    serde_json::from_slice(&out.stdout).map_err(|e| {
        let mut msg = format!("inventory script '{shown}' printed invalid JSON: {e}");
        if !out.stderr.trim().is_empty() {
            msg.push_str(&format!("; its stderr: {}", out.stderr.trim()));
        }
        msg
    })
}

struct Output {
    stdout: Vec<u8>,
    stderr: String,
}

fn run(path: &Path, args: &[&str], timeout: Duration) -> Result<Output, String> {
    // A bare file name would be looked up in PATH: run the file that was named.
    let program: PathBuf = if path.components().count() == 1 && path.is_relative() {
        Path::new(".").join(path)
    } else {
        path.to_path_buf()
    };
    let mut child = Command::new(&program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not be started: {e}"))?;
    let (out_tx, out_rx) = mpsc::channel();
    let (err_tx, err_rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let _ = out_tx.send(read_bounded(stdout, MAX_STDOUT));
        });
    }
    if let Some(stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let _ = err_tx.send(read_bounded(stderr, MAX_STDERR));
        });
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not finish within {} s and was killed",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("could not be waited for: {e}")),
        }
    };
    // The pipes close when the script exits, unless it left children holding them.
    let grace = Duration::from_secs(2);
    let (stdout, too_long) = out_rx.recv_timeout(grace).unwrap_or_default();
    let (stderr, _) = err_rx.recv_timeout(grace).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&stderr).to_string();
    if !status.success() {
        let mut msg = format!("failed ({status})");
        if !stderr.trim().is_empty() {
            msg.push_str(&format!(": {}", stderr.trim()));
        }
        return Err(msg);
    }
    if too_long {
        return Err(format!("printed more than {MAX_STDOUT} bytes"));
    }
    Ok(Output { stdout, stderr })
}

/// Reads at most `max` bytes, then drains the rest; the flag says whether there was more.
fn read_bounded(r: impl Read, max: usize) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let mut r = r;
    let mut limited = (&mut r).take(max as u64 + 1);
    let _ = limited.read_to_end(&mut buf);
    let too_long = buf.len() > max;
    buf.truncate(max);
    let _ = std::io::copy(&mut r, &mut std::io::sink());
    (buf, too_long)
}
