//! `sitewatch generate`: the man pages and shell completions, written from
//! the same clap tree as `--help`, for packagers (`scripts/package.sh`).
//!
//! Like ripgrep's `--generate`, the subcommand is hidden: it is not in
//! `--help`, in the man pages, or in the completions. It is not even part of
//! [`Cli`]'s tree; [`super::parse`] adds it to the tree it parses, so that
//! everything generated from `Cli::command()` leaves it out.

use super::Cli;
use clap::{Args, CommandFactory, Subcommand};
use clap_complete::Shell;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Options of `sitewatch generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// What to write.
    #[command(subcommand)]
    pub what: What,
}

/// What `sitewatch generate` writes.
#[derive(Subcommand, Debug)]
pub enum What {
    /// Write sitewatch.8 and one page per subcommand (sitewatch-check.8, …) into DIR
    Man {
        /// Directory to write into (created if missing)
        dir: PathBuf,
    },
    /// Write the completion script for SHELL into DIR (sitewatch.bash, _sitewatch, sitewatch.fish, …)
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: Shell,
        /// Directory to write into (created if missing)
        dir: PathBuf,
    },
}

/// The man page section: sitewatch is a daemon for administrators.
pub const MAN_SECTION: &str = "8";

/// The hidden `generate` subcommand, to add to the tree that is parsed.
pub fn command() -> clap::Command {
    GenerateArgs::augment_args(clap::Command::new("generate"))
        .about("Write man pages or shell completions (for packagers)")
        .hide(true)
}

/// `sitewatch generate …`: writes the files and prints their paths.
/// Returns the process exit code.
pub fn run(args: &GenerateArgs) -> i32 {
    let written = match &args.what {
        What::Man { dir } => man_pages(dir),
        What::Completions { shell, dir } => completions(*shell, dir).map(|p| vec![p]),
    };
    let listed = written.and_then(|paths| {
        let list: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
        super::print(&list)
    });
    match listed {
        Ok(()) => 0,
        Err(e) => {
            super::log::error(&format!("sitewatch generate: {e}"));
            1
        }
    }
}

/// Writes `sitewatch.8` and `sitewatch-SUBCOMMAND.8` for each visible
/// subcommand into `dir`. Returns the paths written, main page first.
pub fn man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Building sets each subcommand's display name ("sitewatch-check") and
    // bin name ("sitewatch check"), which name the pages and their synopses.
    cmd.build();

    let main = clap_mangen::Man::new(cmd.clone()).section(MAN_SECTION);
    let path = dir.join(main.get_filename());
    let mut page = Vec::new();
    main.render(&mut page)?;
    page.extend_from_slice(MAIN_PAGE_EXTRA.as_bytes());
    write_file(&path, &page)?;
    let mut written = vec![path];

    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = clap_mangen::Man::new(sub.clone()).section(MAN_SECTION);
        let path = dir.join(man.get_filename());
        let mut page = Vec::new();
        man.render(&mut page)?;
        page.extend_from_slice(SUB_PAGE_EXTRA.as_bytes());
        write_file(&path, &page)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes the completion script for `shell` into `dir` under the name that
/// shell's tools expect. Returns its path.
pub fn completions(shell: Shell, dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Cli::command();
    clap_complete::generate_to(shell, &mut cmd, "sitewatch", dir)
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.flush()
}

/// Sections clap does not know about, appended to sitewatch.8 (roff).
const MAIN_PAGE_EXTRA: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
ok; for \fBcheck\fR: the target is up
.TP
\fB1\fR
for \fBcheck\fR: degraded; for \fBvalidate\fR and \fBrun\fR: an invalid configuration or a fatal error
.TP
\fB2\fR
for \fBcheck\fR: the target is down
.TP
\fB3\fR
a usage or internal error (Nagios UNKNOWN)
.SH ENVIRONMENT
.TP
\fBSITEWATCH_CONFIG\fR
the sites file, when \fB\-\-config\fR is not given
.TP
\fBSITEWATCH_LOG\fR
the log filter, e.g. \fBdebug\fR or \fBwarn,sitewatch=debug\fR
.TP
\fBCONFIGURATION_DIRECTORY\fR, \fBSTATE_DIRECTORY\fR
set by systemd: where \fBsites.toml\fR and the state live
.SH FILES
.TP
\fI/etc/sitewatch/sites.toml\fR
the sites to watch and the daemon's settings
.TP
\fI/var/lib/sitewatch\fR
the daemon's state
.TP
\fI/usr/lib/systemd/system/sitewatch.service\fR
the systemd unit (installed by the package)
.SH "SEE ALSO"
\fBsitewatch\-run\fR(8), \fBsitewatch\-check\fR(8), \fBsitewatch\-validate\fR(8),
\fBsystemctl\fR(1), \fBjournalctl\fR(1);
the documentation in \fI/usr/share/doc/sitewatch/\fR
"#;

/// The "see also" line of each subcommand's page (roff).
const SUB_PAGE_EXTRA: &str = r#".SH "SEE ALSO"
\fBsitewatch\fR(8)
"#;
