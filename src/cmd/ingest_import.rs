//! `optscrub ingest import --store DIR FILE… --account ID (--senders A,B | --account-wide) [--rejects F]`

use std::path::PathBuf;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::ingest::import::{self, ImportColumns};
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
    let cols = ImportColumns {
        phone: a.phone_column,
        sender: a.sender_column,
        time: a.time_column,
        country: crate::phone::parse_country(a.default_country.as_deref())?,
        zone: crate::ingest::parse_zone(a.timezone.as_deref())?,
        csv: a.csv.shape()?,
    };
    let data = Dataset::open_shaped(&a.files, cols.csv)?;
    let mut figures = import::ingest(
        &mut store,
        &a.account,
        a.senders.as_deref(),
        data,
        &cols,
        a.rejects.as_deref(),
    )?;
    figures.command = Some("ingest import".into());
    write_summary(a.store.summary.as_deref(), &figures)?;
    let rejected = figures.rejected;
    a.limit.check("import", rejected)
}
