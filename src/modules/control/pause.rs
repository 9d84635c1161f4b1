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
        check_args = crate::modules::builtin::pause_check,
        backup = "Runs on the controller and changes nothing on the hosts: nothing to back up.",
        returns = &[
            ("delta", "seconds paused"),
            ("start", "when the pause began"),
            ("stop", "when it ended"),
            ("stdout", "Paused for N seconds (or minutes)"),
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
    stdout: String,
}

/// Reads the arguments; a pause without a time is refused with what to do instead.
pub fn plan(args: &Args) -> Result<Pause, ModuleError> {
    let a = PauseArgs::parse(args)?;
    let (secs, stdout) = match (a.seconds, a.minutes) {
        (Some(s), _) => (s, format!("Paused for {s} seconds")),
        (None, Some(m)) => (m * 60, format!("Paused for {m} minutes")),
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
        stdout,
    })
}

impl Pause {
    /// The result after waiting from `start` to `stop` (RFC 3339 text).
    pub fn result(&self, start: String, stop: String, delta: f64) -> Map<String, Value> {
        let mut r = Map::new();
        r.insert("delta".into(), Value::from(delta));
        r.insert("start".into(), Value::from(start));
        r.insert("stop".into(), Value::from(stop));
        r.insert("stdout".into(), Value::from(self.stdout.clone()));
        r.insert("user_input".into(), Value::from(""));
        r
    }
}
