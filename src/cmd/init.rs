//! `optscrub init --store DIR --config FILE`

use std::path::PathBuf;

use serde_json::json;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::store::Store;

/// Arguments of `init`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// The config file (TOML).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

/// Create the store.
pub(super) fn run(a: Args) -> Result<()> {
    let store = Store::init(&a.store.store, &a.config)?;
    let senders: usize = store.config.accounts.iter().map(|x| x.senders.len()).sum();
    eprintln!(
        "initialized store {}: {} accounts, {senders} senders, {} shared numbers",
        a.store.store.display(),
        store.config.accounts.len(),
        store.config.shared_numbers.len()
    );
    // what `optscrub lint` finds in the config, as warnings
    let warnings: Vec<String> = crate::lint::config_findings(&store.config)
        .iter()
        .map(crate::lint::Finding::line)
        .collect();
    for w in &warnings {
        eprintln!("optscrub: warning: {w}");
    }
    write_summary(
        a.store.summary.as_deref(),
        &json!({"warnings": warnings, "command": "init", "accounts": store.config.accounts.len(), "senders": senders,
                "shared_numbers": store.config.shared_numbers.len()}),
    )
}
