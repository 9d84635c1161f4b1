//! `wait_for_connection`: waits until the host can be reached again (after a reboot, or while
//! a new machine boots). Owns its arguments, its plan and its result text; the executor
//! makes the attempts (it owns the host's connection).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::modules::runtime::{Args, ModuleError};

crate::module_args! {
    /// Waits until the host answers over its connection, as Ansible's `wait_for_connection`:
    /// after `delay` seconds, it drops the host's connection and opens a new one (SSH
    /// handshake, authentication, and the host lock of the run), every `sleep` seconds, each
    /// attempt at most `connect_timeout` seconds, until one succeeds or `timeout` seconds have
    /// passed (then the task fails: "timed out waiting for ping module test: ..."). rdeploy
    /// needs no Python on the host, so an open connection is the test; Ansible also runs its
    /// `ping` module. Skipped under `--check`, as in Ansible. Changes nothing.
    #[module(
        name = "wait_for_connection",
        backup = "Changes nothing on the host: nothing to back up.",
        returns = &[("elapsed", "whole seconds waited")],
        examples = "- wait_for_connection:\n    delay: 10\n    timeout: 300\n- wait_for_connection:\n    sleep: 5\n    connect_timeout: 10"
    )]
    pub struct WaitForConnectionArgs {
        /// Seconds an attempt to connect may take.
        #[arg(default = "5")]
        connect_timeout: i64,
        /// Seconds to wait before the first attempt.
        #[arg(default = "0")]
        delay: i64,
        /// Seconds between attempts.
        #[arg(default = "1")]
        sleep: i64,
        /// Seconds to keep trying.
        #[arg(default = "600")]
        timeout: i64,
    }
}

/// The waits, from the arguments.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    pub connect_timeout: Duration,
    pub delay: Duration,
    pub sleep: Duration,
    pub timeout: Duration,
}

/// Reads the arguments (negative times count as 0; an attempt gets at least a second).
pub fn plan(args: &Args) -> Result<Plan, ModuleError> {
    let a = WaitForConnectionArgs::parse(args)?;
    let secs = |s: i64| Duration::from_secs(s.max(0).unsigned_abs());
    Ok(Plan {
        connect_timeout: secs(a.connect_timeout.max(1)),
        delay: secs(a.delay),
        sleep: secs(a.sleep),
        timeout: secs(a.timeout),
    })
}

/// The result after `elapsed`: `elapsed` in whole seconds, as Ansible's.
pub fn result(elapsed: Duration) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("elapsed".into(), Value::from(elapsed.as_secs()));
    r.insert("changed".into(), Value::Bool(false));
    r
}

/// Ansible's failure text when no attempt succeeded; `last` is the last attempt's error.
pub fn timed_out(last: &str) -> String {
    format!("timed out waiting for ping module test: {last}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_ansibles_and_times_are_read_as_seconds() {
        let p = plan(&Args::new()).unwrap();
        assert_eq!(
            p,
            Plan {
                connect_timeout: Duration::from_secs(5),
                delay: Duration::ZERO,
                sleep: Duration::from_secs(1),
                timeout: Duration::from_secs(600),
            }
        );
        let mut a = Args::new();
        a.insert("timeout".into(), Value::from("7"));
        a.insert("delay".into(), Value::from(-3));
        a.insert("connect_timeout".into(), Value::from(0));
        let p = plan(&a).unwrap();
        assert_eq!(p.timeout, Duration::from_secs(7));
        assert_eq!(p.delay, Duration::ZERO);
        assert_eq!(p.connect_timeout, Duration::from_secs(1));
        let mut a = Args::new();
        a.insert("sleep".into(), Value::from("soon"));
        assert!(plan(&a).is_err());
        assert_eq!(result(Duration::from_millis(2900))["elapsed"], 2);
    }
}
