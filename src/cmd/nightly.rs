//! `optscrub nightly --store DIR [--replies P…] [--webform P…] [--signals P…] [--deactivations P…] --campaigns DIR --out DIR`

use std::path::PathBuf;

use crate::cmd::scrub::ScrubFlags;
use crate::cmd::write_summary;
use crate::error::Result;
use crate::nightly::{self, Nightly};

/// Arguments of `nightly`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The store folder.
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// Reply logs to ingest first (files or folders).
    #[arg(long, num_args = 1.., value_name = "P")]
    replies: Vec<String>,
    /// Webform submissions to ingest first (files or folders).
    #[arg(long, num_args = 1.., value_name = "P")]
    webform: Vec<String>,
    /// Provider send logs to ingest first (as `ingest signals`: their
    /// opt-out error codes become opt-outs).
    #[arg(long, num_args = 1.., value_name = "P")]
    signals: Vec<String>,
    /// The provider of send-log rows without a provider column.
    #[arg(long, value_name = "NAME")]
    signals_provider: Option<String>,
    /// Carrier deactivation lists to ingest first (as `ingest signals
    /// --kind deactivations`).
    #[arg(long, num_args = 1.., value_name = "P")]
    deactivations: Vec<String>,
    /// Folder of campaign files (.csv, .parquet, or folders of parts).
    #[arg(long, value_name = "DIR")]
    campaigns: PathBuf,
    /// Where the scrubbed campaigns, outbox, review, rejects and summary.json go.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    flags: ScrubFlags,
    #[command(flatten)]
    limit: crate::cmd::RejectLimit,
    /// IANA time zone of times written without an offset (like
    /// 2026-11-01 09:14:00, or a Parquet timestamp with no zone); UTC if
    /// not given.
    #[arg(long, value_name = "ZONE")]
    timezone: Option<String>,

    /// Also write the summary (as in out/summary.json) to this file.
    #[arg(long, value_name = "FILE.json")]
    summary: Option<PathBuf>,
}

/// Run the nightly job.
pub(super) fn run(a: Args) -> Result<()> {
    let n = Nightly {
        store: a.store,
        replies: a.replies,
        webform: a.webform,
        signals: a.signals,
        signals_provider: a.signals_provider,
        deactivations: a.deactivations,
        campaigns: a.campaigns,
        out: a.out,
        scrub: a.flags.plan(Vec::new(), PathBuf::new())?,
        zone: crate::ingest::parse_zone(a.timezone.as_deref())?,
    };
    let summary = nightly::run(&n)?;
    eprintln!("nightly: outputs and summary.json in {}", n.out.display());
    write_summary(a.summary.as_deref(), &summary)?;
    let rejected = summary.rejected();
    a.limit.check("nightly", rejected)
}
