//! `pause`: waits a number of seconds or minutes on the controller, or for the operator's Enter
//! on a terminal. Owns its arguments, its prompt text and its result. Must not touch the hosts
//! or read the terminal itself (the executor does).

use serde_json::{Map, Value};

use crate::modules::runtime::{Args, ModuleError};

crate::module_args! {
    /// Waits for a number of seconds or minutes, showing `prompt` if given; without a time,
    /// asks on the terminal and waits for Enter (what was typed is `user_input`), once per
    /// batch, as Ansible's pause. Without a terminal (cron, a pipe) it does not wait: it warns
    /// and goes on, as Ansible does. Less than a second waits one second, as in Ansible.
    /// Ctrl-C (or SIGTERM, or `--deadline`) while it waits, timed or not, ends it at once
    /// (the task fails, "pause interrupted") and stops the run; Ansible asks instead whether
    /// to continue or abort.
    #[module(
        name = "pause",
        check_args = pause_check,
        backup = "Runs on the controller and changes nothing on the hosts: nothing to back up.",
        returns = &[
            ("delta", "whole seconds paused"),
            ("start", "when the pause began"),
            ("stop", "when it ended"),
            ("stdout", "Paused for N.N seconds (or minutes)"),
            ("user_input", "what the operator typed before Enter (empty for a timed pause)"),
        ],
        examples = "- pause:\n    seconds: 30\n    prompt: \"Waiting for caches to warm up\"\n- pause:\n    prompt: \"Canary is live; check the dashboards, then press Enter\""
    )]
    pub struct PauseArgs {
        /// How long to wait, in seconds.
        seconds: Option<i64>,
        /// How long to wait, in minutes.
        minutes: Option<i64>,
        /// Text shown while waiting (in the task's result line), or the question asked.
        prompt: Option<String>,
        /// Show what the operator types (a prompt without a time only).
        #[arg(default = "yes")]
        echo: bool,
    }
}

/// How long to wait, and the text to show.
pub struct Pause {
    /// The wait; `None` waits for Enter on a terminal.
    pub wait: Option<std::time::Duration>,
    /// Whether the typed reply is shown.
    pub echo: bool,
    /// The prompt, shown while waiting.
    pub prompt: Option<String>,
    /// Whether the time was given in minutes (`stdout` then says minutes).
    in_minutes: bool,
}

/// Reads the arguments: a time (at least one second, as Ansible waits), or none (ask).
pub fn plan(args: &Args) -> Result<Pause, ModuleError> {
    let a = PauseArgs::parse(args)?;
    let (secs, in_minutes) = match (a.seconds, a.minutes) {
        (Some(s), _) => (s, false),
        (None, Some(m)) => (m * 60, true),
        (None, None) => {
            return Ok(Pause {
                wait: None,
                echo: a.echo,
                prompt: a.prompt,
                in_minutes: true,
            });
        }
    };
    // As Ansible's pause: less than a second (0, or a negative time) waits one second.
    Ok(Pause {
        wait: Some(std::time::Duration::from_secs(secs.max(1).unsigned_abs())),
        echo: a.echo,
        prompt: a.prompt,
        in_minutes,
    })
}

/// Ansible's warning when a pause would ask but stdin is not a terminal.
pub const NOT_INTERACTIVE: &str = "Not waiting for response to prompt as stdin is not interactive";

impl Pause {
    /// The question asked on the terminal, as Ansible words it: `[TASK]`, then the prompt (or
    /// Ansible's default) and `(output is hidden)` without echo, then `:`.
    pub fn question(&self, task: &str) -> String {
        let text = self
            .prompt
            .as_deref()
            .unwrap_or("Press enter to continue, Ctrl+C to interrupt");
        let hidden = if self.echo { "" } else { " (output is hidden)" };
        format!("[{}]\n{text}{hidden}:", task.trim())
    }
}

impl Pause {
    /// The result after waiting from `start` to `stop` (local time, Python's `str(datetime)`)
    /// for `elapsed` seconds, as Ansible's pause returns it: `delta` in whole seconds, `stdout`
    /// the time paused rounded to 2 places in the unit given (`Paused for 1.0 seconds`).
    pub fn result(
        &self,
        start: String,
        stop: String,
        elapsed: f64,
        user_input: String,
    ) -> Map<String, Value> {
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
        r.insert("echo".into(), Value::from(self.echo));
        r.insert("user_input".into(), Value::from(user_input));
        r
    }
}

/// `seconds` or `minutes`, not both.
fn pause_check(a: &crate::modules::ArgsRef<'_>) -> Vec<crate::diag::Diagnostic> {
    a.exclusive("seconds", "minutes")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_result_reads_as_ansibles_pause() {
        let m = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
        let p = plan(&m(json!({"seconds": 1}))).unwrap();
        let r = p.result("a".into(), "b".into(), 1.0004, String::new());
        assert_eq!(r["stdout"], json!("Paused for 1.0 seconds"));
        assert_eq!(r["delta"], json!(1));
        let p = plan(&m(json!({"minutes": 0}))).unwrap();
        assert_eq!(p.wait, Some(std::time::Duration::from_secs(1)));
        let r = p.result("a".into(), "b".into(), 1.2, String::new());
        assert_eq!(r["stdout"], json!("Paused for 0.02 minutes"));
        let p = plan(&m(json!({"seconds": -5}))).unwrap();
        assert_eq!(p.wait, Some(std::time::Duration::from_secs(1)));
        let p = plan(&m(json!({"prompt": "Go on?", "echo": false}))).unwrap();
        assert!(p.wait.is_none());
        assert_eq!(
            p.question(" deploy "),
            "[deploy]\nGo on? (output is hidden):"
        );
        let p = plan(&m(json!({}))).unwrap();
        assert_eq!(
            p.question("t"),
            "[t]\nPress enter to continue, Ctrl+C to interrupt:"
        );
    }
}
