//! The `sitewatch` binary: parses the command line, sets up logging and
//! hands over to the library. Exit codes: 0 ok (or up), 1 degraded or an
//! invalid config, 2 down, 3 usage or internal error.

use sitewatch::cli::{self, Command, Invocation, check::EXIT_UNKNOWN};
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Logs go to stderr (stdout is the `check` result), through a writer that
/// ignores a closed or full stderr. Under journald each line carries its
/// priority and the timestamps are journald's; without a terminal there
/// are no colours.
fn init_logging(default: &str) {
    let filter =
        EnvFilter::try_from_env("SITEWATCH_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let journal = cli::log::stderr_is_journal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(cli::log::Stderr { journal })
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    if journal {
        builder.without_time().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    // rustls, reqwest and lettre all use ring; make it the process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = match cli::parse() {
        Ok(Invocation::Cli(cli)) => cli,
        Ok(Invocation::Generate(args)) => {
            return ExitCode::from(u8::try_from(cli::generate::run(&args)).unwrap_or(1));
        }
        Err(e) => {
            // Usage errors, and --help or --version that cannot be printed,
            // are UNKNOWN.
            let printed = e.print().is_ok();
            let code = if e.use_stderr() || !printed {
                EXIT_UNKNOWN
            } else {
                0
            };
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
                    cli::log::error(&format!("sitewatch: {e:#}"));
                    1
                }
            }
        }
        Command::Check(args) => {
            init_logging("error");
            cli::check::run(args)
        }
        Command::NotifyTest(args) => {
            init_logging("warn");
            cli::notify_test(args)
        }
        Command::Validate(arg) => cli::validate(arg),
        Command::Ping(args) => {
            init_logging("error");
            cli::ping::run(args)
        }
        Command::Silence(args) => {
            init_logging("error");
            cli::silence::run(args)
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
