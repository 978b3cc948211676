//! `optscrub rebuild --store DIR`

use serde_json::json;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::store::Store;

/// Arguments of `rebuild`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
}

/// Recompile the key runs, id runs, snapshot and probe from the ledger.
pub(super) fn run(a: Args) -> Result<()> {
    let (mut store, _lock) = Store::open_for_write(&a.store.store)?;
    store.rebuild()?;
    let m = &store.manifest;
    let events: u64 = m.ledger.iter().map(|f| f.rows).sum();
    let probe_bytes = m.probe.as_ref().map_or(0, |p| p.bytes);
    eprintln!(
        "rebuilt snapshot from {} ledger files ({events} events): {} opt-outs, {} bytes; probe {probe_bytes} bytes",
        m.ledger.len(),
        m.snapshot.rows,
        m.snapshot.bytes
    );
    write_summary(
        a.store.summary.as_deref(),
        &json!({"command": "rebuild", "ledger_files": m.ledger.len(), "events": events,
                "opt_outs": m.snapshot.rows, "snapshot_bytes": m.snapshot.bytes, "probe_bytes": probe_bytes}),
    )
}
