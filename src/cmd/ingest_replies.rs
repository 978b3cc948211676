//! `optscrub ingest replies --store DIR FILE… [--outbox F] [--review F] [--rejects F]`

use std::path::PathBuf;

use serde_json::json;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::event::Action;
use crate::ingest::replies::{self, Kind, ReplyColumns, Review};
use crate::ingest::Rejects;
use crate::io::input::Dataset;
use crate::io::output::Format;
use crate::store::Store;

/// Arguments of `ingest replies`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
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
    #[arg(long, default_value = "message_id")]
    id_column: String,
    /// Name of the receive time column.
    #[arg(long, default_value = "received_at")]
    time_column: String,
    /// Name of the contact column.
    #[arg(long, default_value = "from")]
    from_column: String,
    /// Name of the destination column.
    #[arg(long, default_value = "to")]
    to_column: String,
    /// Name of the message text column.
    #[arg(long, default_value = "body")]
    body_column: String,
    /// Name of the optional channel column (sms / whatsapp).
    #[arg(long, default_value = "channel")]
    channel_column: String,
}

/// Ingest reply logs.
pub fn run(a: Args) -> Result<()> {
    for p in [&a.outbox, &a.review, &a.rejects].into_iter().flatten() {
        Format::for_path(p)?;
    }
    let (mut store, _lock) = Store::open_for_write(&a.store.store)?;
    let data = Dataset::open(&a.files)?;
    let mut rejects = Rejects::new(a.rejects.as_deref(), &data.schema)?;
    let mut review = Review::new(a.review.as_deref())?;
    let cols = ReplyColumns {
        id: a.id_column,
        time: a.time_column,
        from: a.from_column,
        to: a.to_column,
        body: a.body_column,
        channel: a.channel_column,
    };
    let mut outcome = replies::read(&store.config, data, &cols, &mut review, &mut rejects)?;
    let events = std::mem::take(&mut outcome.events);
    let prepared = store.prepare_ingest(events, &outcome.other_ids)?;
    let rows = replies::outbox(&outcome, &prepared.committed.fresh, &prepared.other_new);
    // every output is complete under its temporary name before the store
    // commits; only the renames follow
    let outbox = a
        .outbox
        .as_deref()
        .map(|p| replies::write_outbox(p, &rows))
        .transpose()?;
    let (done, _) = store.commit_ingest(prepared)?;
    if let Some(o) = outbox {
        o.finish()?;
    }
    review.finish()?;
    let count = |action| done.new_events.iter().filter(|e| e.action == action).count();
    let (opt_outs, opt_ins) = (count(Action::OptOut), count(Action::OptIn));
    let kind = |k| rows.iter().filter(|r| r.kind == k).count();
    eprintln!(
        "replies: {} messages; {opt_outs} new opt-outs, {opt_ins} new opt-ins, {} already in the store; {} to review; outbox {} rows{}",
        outcome.messages,
        done.already_known,
        outcome.reviewed,
        rows.len(),
        if a.outbox.is_none() && !rows.is_empty() { " (not written: give --outbox F)" } else { "" }
    );
    if let Some(line) = rejects.summary(a.rejects.is_some()) {
        eprintln!("replies: {line}");
    }
    let rejected = rejects.count;
    rejects.finish()?;
    write_summary(
        a.store.summary.as_deref(),
        &json!({"command": "ingest replies", "messages": outcome.messages, "new_opt_outs": opt_outs,
                "new_opt_ins": opt_ins, "already_known": done.already_known, "review": outcome.reviewed,
                "rejected": rejected, "outbox": rows.len(),
                "outbox_by_kind": {"opt_out_confirmation": kind(Kind::OptOutConfirmation),
                                   "opt_in_confirmation": kind(Kind::OptInConfirmation), "help": kind(Kind::Help)}}),
    )
}
