//! `optscrub ingest webform --store DIR FILE… [--rejects F]`

use std::path::PathBuf;

use serde_json::json;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::ingest::webform::{self, WebformColumns};
use crate::ingest::Rejects;
use crate::io::input::Dataset;
use crate::store::Store;

/// Arguments of `ingest webform`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// Webform files (CSV or Parquet), folders of them, or - for CSV on stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// Write rows that cannot be used here, with the reason.
    #[arg(long, value_name = "F")]
    rejects: Option<PathBuf>,
    /// Name of the account id column.
    #[arg(long, default_value = "account_id")]
    account_column: String,
    /// Name of the phone column.
    #[arg(long, default_value = "phone")]
    phone_column: String,
    /// Name of the submission time column.
    #[arg(long, default_value = "submitted_at")]
    time_column: String,
    /// Name of the optional submission id column.
    #[arg(long, default_value = "submission_id")]
    id_column: String,
}

/// Ingest webform submissions.
pub fn run(a: Args) -> Result<()> {
    let (mut store, _lock) = Store::open_for_write(&a.store.store)?;
    let data = Dataset::open(&a.files)?;
    let mut rejects = Rejects::new(a.rejects.as_deref(), &data.schema)?;
    let cols = WebformColumns {
        account: a.account_column,
        phone: a.phone_column,
        time: a.time_column,
        id: a.id_column,
    };
    let events = webform::read(&store.config, data, &cols, &mut rejects)?;
    let read = events.len();
    let done = store.ingest(events)?;
    eprintln!(
        "webform: {read} opt-outs read, {} new, {} already in the store",
        done.new_events.len(),
        done.already_known
    );
    if let Some(line) = rejects.summary(a.rejects.is_some()) {
        eprintln!("webform: {line}");
    }
    let rejected = rejects.count;
    rejects.finish()?;
    write_summary(
        a.store.summary.as_deref(),
        &json!({"command": "ingest webform", "events_read": read, "new_events": done.new_events.len(),
                "already_known": done.already_known, "rejected": rejected}),
    )
}
