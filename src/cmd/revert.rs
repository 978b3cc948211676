//! `optscrub revert --store DIR (--ledger GEN | --list)`

use crate::cmd::{write_summary, StoreArgs};
use crate::error::{Error, Result};
use crate::store::Store;

/// Arguments of `revert`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["ledger", "list"])))]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// The generation of the ledger file to take back (`--list` shows
    /// them, with the input files they came from).
    #[arg(long, value_name = "GEN", value_parser = parse_generation)]
    ledger: Option<u32>,
    /// List the ledger files (JSON lines): generation, events, sources,
    /// input files, times, and whether taken back.
    #[arg(long)]
    list: bool,
}

/// `g12`, `12`, or a ledger file name (`ledger/00000012.parquet`).
fn parse_generation(s: &str) -> std::result::Result<u32, String> {
    let name = s.rsplit('/').next().unwrap_or(s);
    let digits = name.trim_start_matches('g').split('.').next().unwrap_or("");
    digits
        .parse::<u32>()
        .map_err(|_| format!("'{s}' is not a ledger generation (like 12, g12 or the file's name)"))
}

/// Take back one ledger file, or list them.
pub(super) fn run(a: Args) -> Result<()> {
    if a.list {
        let store = Store::open(&a.store.store)?;
        for line in store.ledger_listing()? {
            println!("{line}");
        }
        return Ok(());
    }
    let generation = a
        .ledger
        .ok_or_else(|| Error::Usage("give --ledger GEN or --list".into()))?;
    let (mut store, _lock) = Store::open_for_write(&a.store.store)?;
    let mut s = store.revert(generation)?;
    if s.already_reverted {
        eprintln!("revert: ledger g{generation} was already taken back; nothing changed");
    } else {
        eprintln!(
            "revert: ledger g{generation} taken back ({} events no longer count; they stay in the ledger)",
            s.events
        );
    }
    s.command = Some("revert".into());
    write_summary(a.store.summary.as_deref(), &s)
}
