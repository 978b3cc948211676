//! `optscrub completions bash|zsh|fish|elvish|powershell` and `optscrub man`:
//! shell completions and a man page, made from the command line's own
//! definition so that they never drift from it.

use std::io::Write;

use clap::CommandFactory;

use crate::cmd::Cli;
use crate::error::{Error, Result};

/// Arguments of `completions`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Print the completion script for a shell on stdout.
pub(super) fn run(a: Args) -> Result<()> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "optscrub", &mut out);
    to_stdout(&out)
}

/// Print the man page (roff) on stdout: `optscrub man > optscrub.1`.
pub(super) fn man() -> Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| Error::Internal(format!("cannot render the man page: {e}")))?;
    to_stdout(&out)
}

/// Write to stdout; a reader that has gone (`| head`) is not an error.
fn to_stdout(bytes: &[u8]) -> Result<()> {
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        res => res.map_err(|e| Error::io("cannot write", std::path::Path::new("<stdout>"), e)),
    }
}
