//! `pause`: waits a number of seconds or minutes on the controller. Owns its arguments and its
//! result; waiting for a keypress is refused (rdeploy runs unattended as often as not). Must not
//! touch the hosts.

use serde_json::{Map, Value};

use crate::modules::runtime::{Args, ModuleError};

crate::module_args! {
    /// Waits for a number of seconds or minutes, showing `prompt` if given. Waiting for a
    /// keypress (no `seconds` or `minutes`) is not supported by rdeploy: give a time, or use an
    /// approval.
    #[module(
        name = "pause",
        check_args = pause_check,
        backup = "Runs on the controller and changes nothing on the hosts: nothing to back up.",
        returns = &[
            ("delta", "whole seconds paused"),
            ("start", "when the pause began"),
            ("stop", "when it ended"),
            ("stdout", "Paused for N.N seconds (or minutes)"),
            ("user_input", "always empty (no keypress is read)"),
        ],
        examples = "- pause:\n    seconds: 30\n    prompt: \"Waiting for caches to warm up\""
    )]
    pub struct PauseArgs {
        /// How long to wait, in seconds.
        seconds: Option<i64>,
        /// How long to wait, in minutes.
        minutes: Option<i64>,
        /// Text shown while waiting (in the task's result line).
        prompt: Option<String>,
    }
}

/// How long to wait, and the text to show.
pub struct Pause {
    /// The wait.
    pub wait: std::time::Duration,
    /// The prompt, shown while waiting.
    pub prompt: Option<String>,
    /// Whether the time was given in minutes (`stdout` then says minutes).
    in_minutes: bool,
}

/// Reads the arguments; a pause without a time is refused with what to do instead.
pub fn plan(args: &Args) -> Result<Pause, ModuleError> {
    let a = PauseArgs::parse(args)?;
    let (secs, in_minutes) = match (a.seconds, a.minutes) {
        (Some(s), _) => (s, false),
        (None, Some(m)) => (m * 60, true),
        (None, None) => {
            return Err(ModuleError::Args(
                "pause without seconds or minutes waits for a keypress, which is not supported by rdeploy; give seconds: or minutes: (or an approval gate)".into(),
            ));
        }
    };
    if secs < 0 {
        return Err(ModuleError::Args(format!(
            "pause: a negative time ({secs} s)"
        )));
    }
    Ok(Pause {
        wait: std::time::Duration::from_secs(secs.unsigned_abs()),
        prompt: a.prompt,
        in_minutes,
    })
}

impl Pause {
    /// The result after waiting from `start` to `stop` (local time, Python's `str(datetime)`)
    /// for `elapsed` seconds, as Ansible's pause returns it: `delta` in whole seconds, `stdout`
    /// the time paused rounded to 2 places in the unit given (`Paused for 1.0 seconds`).
    pub fn result(&self, start: String, stop: String, elapsed: f64) -> Map<String, Value> {
        let (amount, unit) = if self.in_minutes {
            (elapsed / 60.0, "minutes")
        } else {
            (elapsed, "seconds")
        };
        let rounded = (amount * 100.0).round() / 100.0;
        // Python prints a whole float with `.0`.
        let shown = if rounded.fract() == 0.0 {
            format!("{rounded:.1}")
        } else {
            format!("{rounded}")
        };
        let mut r = Map::new();
        r.insert("delta".into(), Value::from(elapsed.trunc() as i64));
        r.insert("start".into(), Value::from(start));
        r.insert("stop".into(), Value::from(stop));
        r.insert(
            "stdout".into(),
            Value::from(format!("Paused for {shown} {unit}")),
        );
        r.insert("stderr".into(), Value::from(""));
        r.insert("rc".into(), Value::from(0));
        r.insert("echo".into(), Value::from(true));
        r.insert("user_input".into(), Value::from(""));
        r
    }
}

/// `seconds` or `minutes`, not both; one of them (waiting for a keypress is not supported).
fn pause_check(a: &crate::modules::ArgsRef<'_>) -> Vec<crate::diag::Diagnostic> {
    let mut out = a.exclusive("seconds", "minutes");
    if !a.has("seconds") && !a.has("minutes") {
        out.extend(a.error(
            "module 'pause' without seconds or minutes waits for a keypress, which is not supported by rdeploy; give seconds: or minutes: (or an approval gate)".into(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_result_reads_as_ansibles_pause() {
        let m = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
        let p = plan(&m(json!({"seconds": 1}))).unwrap();
        let r = p.result("a".into(), "b".into(), 1.0004);
        assert_eq!(r["stdout"], json!("Paused for 1.0 seconds"));
        assert_eq!(r["delta"], json!(1));
        let p = plan(&m(json!({"minutes": 0}))).unwrap();
        let r = p.result("a".into(), "b".into(), 1.2);
        assert_eq!(r["stdout"], json!("Paused for 0.02 minutes"));
    }
}
