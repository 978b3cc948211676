//! `optscrub bundle --store DIR --output F.tar.gz`

use std::path::PathBuf;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::store::{bundle, Store};

/// Arguments of `bundle`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// The bundle to write (.tar.gz), or a folder to write it into under
    /// its id (optscrub-bundle-g<generation>-<checksum>.tar.gz).
    #[arg(long, value_name = "F")]
    output: PathBuf,
}

/// Write a bundle of the store's current generation.
pub(super) fn run(a: Args) -> Result<()> {
    let store = Store::open(&a.store.store)?;
    let (path, info) = bundle::write(&store, &a.output)?;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "bundle: {} ({} opt-outs, generation {}, {bytes} bytes) written to {}",
        info.id,
        info.opt_outs,
        info.generation,
        path.display()
    );
    write_summary(
        a.store.summary.as_deref(),
        &serde_json::json!({"command": "bundle", "id": info.id, "generation": info.generation,
                            "opt_outs": info.opt_outs, "bytes": bytes, "output": path}),
    )
}
