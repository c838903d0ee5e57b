//! The command line: `run`, `check` and `validate`, defined once with clap
//! so help, man page and completions come from the same tree, plus the
//! hidden `generate` that writes the man pages and completions.

pub mod check;
pub mod generate;
pub mod log;
mod peers;
pub mod ping;
pub mod silence;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

/// Writes a result to stdout. A closed or full stdout is an error for the
/// caller to turn into an exit code, never a panic (as `println!` would).
pub fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// [`print()`] for a command whose result is lost: says so on stderr (if it
/// can) and returns the exit code for an internal error.
pub fn print_or_unknown(command: &str, text: &str) -> Option<i32> {
    print(text).err().map(|e| {
        log::error(&format!(
            "sitewatch {command}: cannot write the result: {e}"
        ));
        check::EXIT_UNKNOWN
    })
}

/// sitewatch: an uptime monitor that says why a site is down.
#[derive(Parser, Debug)]
#[command(
    name = "sitewatch",
    version,
    about = "Uptime monitor that tells you why a site is down",
    long_about = "sitewatch probes each site the way a browser reaches it (DNS, TCP, TLS, HTTP), \
stops at the first layer that fails, and names the cause with a hint of what to check first.",
    propagate_version = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the monitoring daemon.
    Run(ConfigArg),
    /// Probe one target once and print the diagnosis (exit 0 up, 1 degraded, 2 down, 3 error).
    Check(Box<check::CheckArgs>),
    /// Check a configuration file and report every mistake with file:line:column.
    Validate(ConfigArg),
    /// Send a test message through every alert channel (or one) and say what failed.
    NotifyTest(NotifyTestArgs),
    /// Run a job under a heartbeat: ping start, run COMMAND, ping its exit code and output's tail.
    Ping(ping::PingArgs),
    /// Mute alerts for a while on the running daemon: add, list or expire silences.
    Silence(silence::SilenceArgs),
}

/// Options of `sitewatch notify-test`.
#[derive(Args, Debug)]
pub struct NotifyTestArgs {
    /// The sites file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only this channel ([alert.NAME])
    #[arg(long, value_name = "NAME")]
    pub channel: Option<String>,
}

/// `sitewatch notify-test`: returns the process exit code (0 all sent,
/// 1 a channel failed or the config is invalid).
pub fn notify_test(args: &NotifyTestArgs) -> i32 {
    let path = args.config.path();
    let config = match crate::config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            log::error(&e.to_string());
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            log::error(&format!(
                "sitewatch notify-test: cannot start the async runtime: {e}"
            ));
            return 1;
        }
    };
    match runtime.block_on(crate::alert::notify_test(&config, args.channel.as_deref())) {
        Ok(outcomes) => {
            let text: String = outcomes.iter().map(|o| format!("{o}\n")).collect();
            if let Some(code) = print_or_unknown("notify-test", &text) {
                return code;
            }
            i32::from(outcomes.iter().any(|o| o.result.is_err()))
        }
        Err(e) => {
            log::error(&format!("sitewatch notify-test: {e}"));
            1
        }
    }
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Invocation {
    /// One of the documented subcommands.
    Cli(Cli),
    /// The hidden `sitewatch generate man|completions …`.
    Generate(generate::GenerateArgs),
}

/// Parses the process's arguments: [`Cli`]'s tree plus the hidden
/// `generate`, which is added here rather than to [`Command`] so that help,
/// man pages and completions (all made from `Cli::command()`) leave it out.
pub fn parse() -> Result<Invocation, clap::Error> {
    parse_from(std::env::args_os())
}

/// [`parse`] with the given arguments (the first is the program name).
pub fn parse_from<I, T>(args: I) -> Result<Invocation, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut cmd = Cli::command().subcommand(generate::command());
    let matches = cmd.try_get_matches_from_mut(args)?;
    let invocation = match matches.subcommand() {
        Some(("generate", sub)) => {
            generate::GenerateArgs::from_arg_matches(sub).map(Invocation::Generate)
        }
        _ => Cli::from_arg_matches(&matches).map(Invocation::Cli),
    };
    invocation.map_err(|e| e.format(&mut cmd))
}

/// The address a local client reaches a daemon listening on `addr` at:
/// an unspecified address (`0.0.0.0`, `::`) becomes loopback.
pub fn reachable(mut addr: std::net::SocketAddr) -> std::net::SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    addr
}

/// `--config PATH`.
#[derive(Args, Debug)]
pub struct ConfigArg {
    /// The sites file [default: $CONFIGURATION_DIRECTORY/sites.toml, else /etc/sitewatch/sites.toml]
    #[arg(long, short, env = "SITEWATCH_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// The path given, or the default location.
    pub fn path(&self) -> PathBuf {
        if let Some(p) = &self.config {
            return p.clone();
        }
        match std::env::var_os("CONFIGURATION_DIRECTORY") {
            Some(dir) => PathBuf::from(dir.to_string_lossy().split(':').next().unwrap_or_default())
                .join("sites.toml"),
            None => PathBuf::from("/etc/sitewatch/sites.toml"),
        }
    }
}

/// `sitewatch validate`: prints every mistake (stderr), or a one-line
/// summary (stdout). Returns the process exit code: 0 valid, 1 invalid,
/// 3 the summary could not be written.
pub fn validate(arg: &ConfigArg) -> i32 {
    let path = arg.path();
    match crate::config::load(&path) {
        Ok(config) => {
            let beats = config
                .sites
                .iter()
                .filter(|s| s.heartbeat.is_some())
                .count();
            let sites = config.sites.len() - beats;
            let plural = |n: usize| if n == 1 { "" } else { "s" };
            let mut summary = format!("{}: ok, {sites} site{}", path.display(), plural(sites));
            if beats > 0 {
                summary.push_str(&format!(", {beats} heartbeat{}", plural(beats)));
            }
            if !config.maintenance.is_empty() {
                let n = config.maintenance.len();
                summary.push_str(&format!(", {n} maintenance window{}", plural(n)));
            }
            summary.push('\n');
            print_or_unknown("validate", &summary).unwrap_or(0)
        }
        Err(crate::config::Error::Invalid(diags)) => {
            let mut report = String::new();
            for d in &diags {
                report.push_str(&d.render());
                report.push_str("\n\n");
            }
            report.push_str(&format!(
                "{}: {} error{}",
                path.display(),
                diags.len(),
                if diags.len() == 1 { "" } else { "s" }
            ));
            log::error(&report);
            1
        }
        Err(e) => {
            log::error(&e.to_string());
            1
        }
    }
}
