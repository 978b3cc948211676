//! `optscrub ingest import --store DIR FILE… --account ID (--senders A,B | --account-wide) [--rejects F]`

use std::path::PathBuf;

use serde_json::json;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::{Error, Result};
use crate::ingest::import::{self, ImportColumns, Mapping};
use crate::ingest::{now_micros, Rejects};
use crate::io::input::Dataset;
use crate::store::Store;

/// Arguments of `ingest import`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("mapping").required(true).args(["senders", "account_wide"])))]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    limit: crate::cmd::RejectLimit,
    #[command(flatten)]
    csv: crate::cmd::CsvFlags,
    /// Import files (CSV or Parquet), folders of them, or - for CSV on stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// The account the opt-outs belong to.
    #[arg(long, value_name = "ID")]
    account: String,
    /// Apply the opt-outs to these senders of the account (comma-separated).
    #[arg(long, value_name = "A,B")]
    senders: Option<String>,
    /// Apply the opt-outs to the whole account.
    #[arg(long)]
    account_wide: bool,
    /// Write rows that cannot be used here, with the reason.
    #[arg(long, value_name = "F")]
    rejects: Option<PathBuf>,
    /// Name of the phone column.
    #[arg(long, default_value = ImportColumns::PHONE)]
    phone_column: String,
    /// Name of the optional per-row sender column (overrides the mapping).
    #[arg(long, default_value = ImportColumns::SENDER)]
    sender_column: String,
    /// Name of the optional event time column.
    #[arg(long, default_value = ImportColumns::TIME)]
    time_column: String,
    /// Read national numbers as this country's (ISO 3166 alpha-2); else
    /// the account's `default_country` in the config; else they are rejected.
    #[arg(long, value_name = "XX")]
    default_country: Option<String>,
    /// IANA time zone of times written without an offset (like
    /// 2026-11-01 09:14:00, or a Parquet timestamp with no zone); UTC if
    /// not given.
    #[arg(long, value_name = "ZONE")]
    timezone: Option<String>,
}

/// Ingest a manual import.
pub(super) fn run(a: Args) -> Result<()> {
    let (mut store, _lock) = Store::open_for_write(&a.store.store)?;
    let account = store
        .config
        .account(&a.account)
        .ok_or_else(|| {
            Error::Usage(format!(
                "--account '{}' is not an account in the store's config",
                a.account
            ))
        })?
        .clone();
    let mapping = match &a.senders {
        Some(list) => Mapping::Senders(import::resolve_senders(&account, list)?),
        None => Mapping::AccountWide,
    };
    let cols = ImportColumns {
        phone: a.phone_column,
        sender: a.sender_column,
        time: a.time_column,
        country: crate::cmd::scrub::parse_country(a.default_country.as_deref())?,
        zone: crate::ingest::parse_zone(a.timezone.as_deref())?,
        csv: a.csv.shape()?,
    };
    let data = Dataset::open_shaped(&a.files, cols.csv)?;
    let mut rejects = Rejects::new(a.rejects.as_deref(), &data.schema)?;
    let events = import::read(&account, &mapping, data, &cols, now_micros(), &mut rejects)?;
    let read = events.len();
    let done = store.ingest(events)?;
    eprintln!(
        "import: {read} opt-outs read for account '{}', {} new, {} already in the store",
        account.id,
        done.new_events.len(),
        done.already_known
    );
    if let Some(line) = rejects.summary(a.rejects.is_some()) {
        eprintln!("import: {line}");
    }
    let rejected = rejects.count;
    rejects.finish()?;
    write_summary(
        a.store.summary.as_deref(),
        &json!({"command": "ingest import", "account": account.id, "events_read": read,
                "new_events": done.new_events.len(), "already_known": done.already_known, "rejected": rejected}),
    )?;
    a.limit.check("import", rejected)
}
