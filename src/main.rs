//! The `sitewatch` binary: parses the command line, sets up logging and
//! hands over to the library. Exit codes: 0 ok (or up), 1 degraded or an
//! invalid config, 2 down, 3 usage or internal error.

use clap::Parser;
use sitewatch::cli::{self, Cli, Command, check::EXIT_UNKNOWN};
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Logs go to stderr (stdout is the `check` result). Under journald the
/// timestamps are journald's; without a terminal there are no colours.
fn init_logging(default: &str) {
    let filter =
        EnvFilter::try_from_env("SITEWATCH_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_UNKNOWN } else { 0 };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let code = match &cli.command {
        Command::Run(arg) => {
            init_logging("warn,sitewatch=info");
            match sitewatch::app::run(&arg.path()) {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("sitewatch: {e:#}");
                    1
                }
            }
        }
        Command::Check(args) => {
            init_logging("error");
            cli::check::run(args)
        }
        Command::Validate(arg) => cli::validate(arg),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
