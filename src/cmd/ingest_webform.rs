//! `optscrub ingest webform --store DIR FILE… [--rejects F]`

use std::path::PathBuf;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::ingest::webform::{self, WebformColumns};
use crate::store::Store;

/// Arguments of `ingest webform`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    limit: crate::cmd::RejectLimit,
    #[command(flatten)]
    csv: crate::cmd::CsvFlags,
    /// Webform files (CSV or Parquet), folders of them, or - for CSV on stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// Write rows that cannot be used here, with the reason.
    #[arg(long, value_name = "F")]
    rejects: Option<PathBuf>,
    /// Name of the account id column.
    #[arg(long, default_value = WebformColumns::ACCOUNT)]
    account_column: String,
    /// Name of the phone column.
    #[arg(long, default_value = WebformColumns::PHONE)]
    phone_column: String,
    /// Name of the submission time column.
    #[arg(long, default_value = WebformColumns::TIME)]
    time_column: String,
    /// Name of the optional submission id column.
    #[arg(long, default_value = WebformColumns::ID)]
    id_column: String,
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

/// Ingest webform submissions.
pub(super) fn run(a: Args) -> Result<()> {
    let (mut store, _lock) = Store::open_for_write(&a.store.store)?;
    let cols = WebformColumns {
        account: a.account_column,
        phone: a.phone_column,
        time: a.time_column,
        id: a.id_column,
        country: crate::phone::parse_country(a.default_country.as_deref())?,
        zone: crate::ingest::parse_zone(a.timezone.as_deref())?,
        csv: a.csv.shape()?,
    };
    let mut figures = webform::ingest(&mut store, &a.files, &cols, a.rejects.as_deref())?;
    figures.command = Some("ingest webform".into());
    write_summary(a.store.summary.as_deref(), &figures)?;
    a.limit.check("webform", figures.rejected)
}
