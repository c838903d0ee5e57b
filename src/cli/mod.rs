//! The command line: `run`, `check` and `validate`, defined once with clap
//! so help, man page and completions come from the same tree.

pub mod check;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

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

/// `sitewatch validate`: prints every mistake, or a one-line summary.
/// Returns the process exit code.
pub fn validate(arg: &ConfigArg) -> i32 {
    let path = arg.path();
    match crate::config::load(&path) {
        Ok(config) => {
            println!(
                "{}: ok, {} site{}",
                path.display(),
                config.sites.len(),
                if config.sites.len() == 1 { "" } else { "s" }
            );
            0
        }
        Err(crate::config::Error::Invalid(diags)) => {
            for d in &diags {
                eprintln!("{}\n", d.render());
            }
            eprintln!(
                "{}: {} error{}",
                path.display(),
                diags.len(),
                if diags.len() == 1 { "" } else { "s" }
            );
            1
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}
