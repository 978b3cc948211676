//! `optscrub ingest signals --store DIR FILE… [--kind send-log|deactivations] [--rejects F]`

use std::path::PathBuf;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::ingest::signals::{self, SignalColumns, SignalKind};
use crate::store::Store;

/// Arguments of `ingest signals`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    limit: crate::cmd::RejectLimit,
    #[command(flatten)]
    csv: crate::cmd::CsvFlags,
    /// Signal files (CSV or Parquet), folders of them, or - for CSV on stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// What the files are: a provider's send or delivery log (its error
    /// codes), a carrier's list of disconnected and reassigned numbers, or
    /// WhatsApp user_preferences webhooks (.json/.jsonl bodies, or their
    /// rows flattened to CSV or Parquet: wa_id, value, category, timestamp,
    /// display_phone_number or phone_number_id).
    #[arg(long, value_enum, default_value = "send-log")]
    kind: SignalKind,
    /// The provider of rows without a provider cell: twilio, telnyx,
    /// vonage, plivo, aws, or one the config's [[signals]] name.
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,
    /// WhatsApp: the sender (wa:<profile>) the preferences are for, when
    /// the config does not name it by its number (wa:<digits>) or id.
    #[arg(long, value_name = "wa:PROFILE")]
    profile: Option<String>,
    /// Write rows that cannot be used here, with the reason.
    #[arg(long, value_name = "F")]
    rejects: Option<PathBuf>,
    /// Name of the message (send log) or record (deactivations) id column
    /// [default: message_id or record_id].
    #[arg(long)]
    id_column: Option<String>,
    /// Name of the provider column.
    #[arg(long, default_value = "provider")]
    provider_column: String,
    /// Name of the error code column (send logs).
    #[arg(long, default_value = "error_code")]
    code_column: String,
    /// Name of the column of the sender the message was sent from (send logs).
    #[arg(long, default_value = "from")]
    from_column: String,
    /// Name of the contact column [default: to; phone for deactivations;
    /// wa_id for WhatsApp].
    #[arg(long, visible_alias = "phone-column")]
    to_column: Option<String>,
    /// Name of the time column [default: sent_at; deactivated_at;
    /// timestamp for WhatsApp, Unix seconds or RFC 3339].
    #[arg(long)]
    time_column: Option<String>,
    /// Name of the optional account id column (needed for messages sent
    /// from a shared number; deactivations without it apply to every account).
    #[arg(long, default_value = "account_id")]
    account_column: String,
    /// Read national numbers as this country's (ISO 3166 alpha-2); else
    /// the account's `default_country`; else they are rejected.
    #[arg(long, value_name = "XX")]
    default_country: Option<String>,
    /// IANA time zone of times written without an offset; UTC if not given.
    #[arg(long, value_name = "ZONE")]
    timezone: Option<String>,
}

/// Ingest provider signals.
pub(super) fn run(a: Args) -> Result<()> {
    let (mut store, _lock) = Store::open_for_write(&a.store.store)?;
    let mut cols = SignalColumns::new(a.kind);
    if let Some(c) = a.id_column {
        cols.id = c;
    }
    if let Some(c) = a.to_column {
        cols.contact = c;
    }
    if let Some(c) = a.time_column {
        cols.time = c;
    }
    cols.provider = a.provider;
    cols.profile = a.profile;
    cols.provider_column = a.provider_column;
    cols.code = a.code_column;
    cols.from = a.from_column;
    cols.account = a.account_column;
    cols.country = crate::phone::parse_country(a.default_country.as_deref())?;
    cols.zone = crate::ingest::parse_zone(a.timezone.as_deref())?;
    cols.csv = a.csv.shape()?;
    let mut figures = signals::ingest(&mut store, &a.files, &cols, a.rejects.as_deref())?;
    figures.command = Some("ingest signals".into());
    write_summary(a.store.summary.as_deref(), &figures)?;
    a.limit.check("signals", figures.rejected)
}
