//! What the operator types: passwords for `-K/--ask-become-pass` and `--ask-vault-pass`, and
//! `vars_prompt` replies ([`Terminal`]).
//!
//! Owns asking on the terminal with echo off (Ansible's prompts, `BECOME password: ` and
//! `Vault password: `) and refusing to ask without one: a run under cron or in a pipe gets a
//! precise error before any host is touched, never a hang. Also refuses a become password given
//! on the command line (`-e ansible_become_password=...`), which every user of the machine can
//! read in the process list. It must not print anything but the prompts (to the terminal).

use std::io::IsTerminal;

use crate::diag::{Diagnostic, Diagnostics};

/// Asks for a password on the terminal, input hidden. `flag` and `instead` word the error
/// when stdin is not a terminal.
pub fn password(prompt: &str, flag: &str, instead: &str) -> Result<String, Diagnostics> {
    let term = console::Term::stderr();
    if !std::io::stdin().is_terminal() || !term.is_term() {
        return Err(Diagnostic::options(format!(
            "{flag} asks for a password on a terminal, and there is none (stdin or stderr is not a terminal): {instead}"
        ))
        .into());
    }
    let read = term
        .write_str(prompt)
        .and_then(|()| term.read_secure_line());
    read.map_err(|e| {
        Diagnostic::options(format!("{flag}: could not read the password: {e}")).into()
    })
}

/// The operator's terminal, for `vars_prompt`: questions on stderr's terminal, replies from
/// it (hidden unless the prompt says `private: false`).
pub struct Terminal(console::Term);

impl Terminal {
    /// The terminal, when stdin and stderr are one (`None` under cron, in a pipe, in CI).
    pub fn open() -> Option<Terminal> {
        let term = console::Term::stderr();
        (std::io::stdin().is_terminal() && term.is_term()).then_some(Terminal(term))
    }
}

impl crate::resolve::Asker for Terminal {
    fn ask(&mut self, question: &str, echo: bool) -> Result<String, String> {
        self.0.write_str(question).map_err(|e| e.to_string())?;
        let read = if echo {
            self.0.read_line()
        } else {
            self.0.read_secure_line()
        };
        read.map_err(|e| e.to_string())
    }

    fn say(&mut self, line: &str) {
        // A terminal that cannot be written to fails the next question, which says why.
        let _ = self.0.write_line(line);
    }
}

/// The extra-vars variables that hold a become password: never given as text on the command line.
const BECOME_PASSWORD_VARS: [&str; 2] = ["ansible_become_password", "ansible_become_pass"];

/// Refuses `-e` text (not `-e @FILE`) that sets a become password.
pub fn no_password_in_argv(extra_vars: &[String]) -> Result<(), Diagnostics> {
    for raw in extra_vars {
        if raw.trim_start().starts_with('@') {
            continue;
        }
        if let Some(name) = BECOME_PASSWORD_VARS.iter().find(|n| raw.contains(*n)) {
            return Err(Diagnostic::options(format!(
                "-e {name}=...: a password on the command line can be read by every user of this machine (process list, shell history); give it in a vault-encrypted variable, in a file (-e @FILE), or type it with -K"
            ))
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_become_password_in_extra_vars_text_is_refused_but_a_file_is_not() {
        let refused = no_password_in_argv(&["ansible_become_password=hunter22".into()]);
        let msg = refused.unwrap_err().to_string();
        assert!(msg.contains("ansible_become_password"), "{msg}");
        assert!(!msg.contains("hunter22"), "{msg}");
        assert!(no_password_in_argv(&[r#"{"ansible_become_pass": "x"}"#.into()]).is_err());
        assert!(no_password_in_argv(&["@secrets.yml".into(), "a=1".into()]).is_ok());
    }
}
