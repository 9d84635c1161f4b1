//! The `rdeploy` binary: error-report setup, then `cli::run`, then the exit code. Nothing else.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Colours in internal-error reports only for a person at a terminal.
    let plain = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
        || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let hook = if plain {
        color_eyre::config::HookBuilder::default().theme(color_eyre::config::Theme::new())
    } else {
        color_eyre::config::HookBuilder::default()
    };
    let _ = hook.install();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("RDEPLOY_LOG"))
        .with_writer(|| RedactedStderr)
        .init();
    let cli = match rdeploy::cli::args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; every other bad option is invalid input.
            let code = if e.use_stderr() {
                rdeploy::cli::Exit::Invalid as u8
            } else {
                0
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match rdeploy::cli::run(cli) {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(report) => {
            eprintln!("rdeploy: internal error: {report:?}");
            ExitCode::from(rdeploy::cli::Exit::Internal as u8)
        }
    }
}

/// Diagnostic logs (`RDEPLOY_LOG`) on stderr with every registered secret masked, like the
/// reporter's output: each event arrives as one write.
struct RedactedStderr;

impl std::io::Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(rdeploy::vault::redact::redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
