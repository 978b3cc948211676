//! `optscrub outbox --store DIR --output F [--peek]`: hand over the replies
//! (confirmations, help answers) that ingests kept in the store.

use std::path::PathBuf;

use serde_json::json;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::store::Store;

/// Arguments of `outbox`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// Write the pending replies here (.parquet or .csv).
    #[arg(long, value_name = "F")]
    output: PathBuf,
    /// Write them without handing them over: they stay pending.
    #[arg(long)]
    peek: bool,
}

/// Hand over (or, with `--peek`, show) the pending replies.
pub(super) fn run(a: Args) -> Result<()> {
    crate::io::output::Format::for_path(&a.output)?;
    let (rows, pending) = if a.peek {
        let mut store = Store::open(&a.store.store)?;
        let rows = store.hand_over(&a.output, false)?;
        eprintln!(
            "outbox: {rows} pending replies written to {} (still pending: --peek hands nothing over)",
            a.output.display()
        );
        (rows, store.pending_replies())
    } else {
        let (mut store, _lock) = Store::open_for_write(&a.store.store)?;
        let rows = store.deliver(&a.output)?;
        (rows, store.pending_replies())
    };
    write_summary(
        a.store.summary.as_deref(),
        &json!({"command": "outbox", "written": rows, "handed_over": if a.peek { 0 } else { rows },
                "pending_replies": pending, "output": a.output}),
    )
}
