//! `optscrub erase --store DIR [--default-country XX] (PHONE… | --file FILE)`

use std::io::BufRead as _;
use std::path::PathBuf;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::{Error, Result};
use crate::phone::{normalize, parse_country};
use crate::store::Store;

/// Arguments of `erase`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("numbers").required(true).multiple(true).args(["phones", "file"])))]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// Read a national number as this country's (ISO 3166 alpha-2).
    #[arg(long, value_name = "XX")]
    default_country: Option<String>,
    /// Read the numbers from this file, one a line (`-` for standard
    /// input): they stay out of the shell's history and the process list.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// The numbers to erase.
    #[arg(value_name = "PHONE")]
    phones: Vec<String>,
}

/// Erase numbers from the store: their opt-outs stay, under a keyed hash.
pub(super) fn run(a: Args) -> Result<()> {
    let country = parse_country(a.default_country.as_deref())?;
    let mut contacts = Vec::new();
    for (i, p) in a.phones.iter().enumerate() {
        contacts.push(normalize(p, country).ok_or_else(|| {
            Error::Usage(format!(
                "number {} of the command line is not a phone number{}",
                i + 1,
                hint(country.is_none())
            ))
        })?);
    }
    if let Some(path) = &a.file {
        let reader: Box<dyn std::io::BufRead> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            let f = std::fs::File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
            Box::new(std::io::BufReader::new(f))
        };
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| Error::io("cannot read", path, e))?;
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            contacts.push(normalize(text, country).ok_or_else(|| {
                Error::Input(format!(
                    "{} line {}: not a phone number (expected one number a line){}",
                    path.display(),
                    i + 1,
                    hint(country.is_none())
                ))
            })?);
        }
    }
    let (mut store, _lock) = Store::open_for_write(&a.store.store)?;
    let mut s = store.erase(&contacts)?;
    eprintln!(
        "erase: {} numbers erased now ({} events kept under their hash, {} ledger files written anew), {} erased before, {} with no event in the store; {} erased in all",
        s.erased, s.events, s.ledger_files, s.already_erased, s.not_in_store, s.erased_in_store
    );
    s.command = Some("erase".into());
    write_summary(a.store.summary.as_deref(), &s)
}

fn hint(no_country: bool) -> &'static str {
    if no_country {
        " (a national number needs --default-country)"
    } else {
        ""
    }
}
