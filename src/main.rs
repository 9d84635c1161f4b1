//! The `rdeploy` binary: error-report setup, then `cli::run`, then the exit code. Nothing else.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    rdeploy::limits::bound_malloc_arenas();
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
        // stderr, secrets masked, progress bars lifted while a line is written.
        .with_writer(rdeploy::report::progress::log_writer)
        .init();
    // A descriptor per host in flight: the soft open-files limit is raised to the hard one.
    rdeploy::limits::raise_open_files();
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
    let outcome = rdeploy::cli::run(cli);
    // No helper process outlives the run.
    rdeploy::modules::bridge::shutdown();
    match outcome {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(report) => {
            eprintln!("rdeploy: internal error: {report:?}");
            ExitCode::from(rdeploy::cli::Exit::Internal as u8)
        }
    }
}
