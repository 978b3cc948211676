//! `optscrub config --store DIR --config FILE`

use std::path::PathBuf;

use serde_json::json;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::store::Store;

/// Arguments of `config`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// The new config file (TOML).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

/// Replace the config, keeping the old one in the store.
pub(super) fn run(a: Args) -> Result<()> {
    let (mut store, _lock) = Store::open_for_write(&a.store.store)?;
    store.replace_config(&a.config)?;
    eprintln!(
        "config replaced: {} accounts (the previous config is kept in {}/config/)",
        store.config.accounts.len(),
        a.store.store.display()
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
        &json!({"warnings": warnings, "command": "config", "accounts": store.config.accounts.len(), "generation": store.manifest.generation}),
    )
}
