//! `optscrub ingest replies --store DIR FILE… [--outbox F] [--review F] [--rejects F]`

use std::path::PathBuf;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::ingest::replies::{self, ReplyColumns, ReplyOutputs};
use crate::store::Store;

/// Arguments of `ingest replies`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    limit: crate::cmd::RejectLimit,
    #[command(flatten)]
    csv: crate::cmd::CsvFlags,
    /// Reply logs (CSV or Parquet), folders of them, or - for CSV on stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// Write confirmations and help replies to send here.
    #[arg(long, value_name = "F")]
    outbox: Option<PathBuf>,
    /// Write messages a person should look at here (near misses).
    #[arg(long, value_name = "F")]
    review: Option<PathBuf>,
    /// Write rows that cannot be used here, with the reason.
    #[arg(long, value_name = "F")]
    rejects: Option<PathBuf>,
    /// Name of the message id column.
    #[arg(long, default_value = ReplyColumns::ID)]
    id_column: String,
    /// Name of the receive time column.
    #[arg(long, default_value = ReplyColumns::TIME)]
    time_column: String,
    /// Name of the contact column.
    #[arg(long, default_value = ReplyColumns::FROM)]
    from_column: String,
    /// Name of the destination column.
    #[arg(long, default_value = ReplyColumns::TO)]
    to_column: String,
    /// Name of the message text column.
    #[arg(long, default_value = ReplyColumns::BODY)]
    body_column: String,
    /// Name of the optional channel column (sms / whatsapp).
    #[arg(long, default_value = ReplyColumns::CHANNEL)]
    channel_column: String,
    /// IANA time zone of times written without an offset (like
    /// 2026-11-01 09:14:00, or a Parquet timestamp with no zone); UTC if
    /// not given.
    #[arg(long, value_name = "ZONE")]
    timezone: Option<String>,
}

/// Ingest reply logs.
pub(super) fn run(a: Args) -> Result<()> {
    let (mut store, _lock) = Store::open_for_write(&a.store.store)?;
    let cols = ReplyColumns {
        id: a.id_column,
        time: a.time_column,
        from: a.from_column,
        to: a.to_column,
        body: a.body_column,
        channel: a.channel_column,
        zone: crate::ingest::parse_zone(a.timezone.as_deref())?,
        csv: a.csv.shape()?,
    };
    let outputs = ReplyOutputs {
        outbox: a.outbox.as_deref(),
        review: a.review.as_deref(),
        rejects: a.rejects.as_deref(),
    };
    let mut figures = replies::ingest(&mut store, &a.files, &cols, &outputs)?;
    figures.command = Some("ingest replies".into());
    write_summary(a.store.summary.as_deref(), &figures)?;
    a.limit.check("replies", figures.rejected)
}
