//! `optscrub scrub --store DIR --input PATH… --output F [--suppressed F] …`

use std::path::PathBuf;
use std::time::Instant;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::scrub::run::{self, ScrubJob};
use crate::scrub::{Reason, Scrubber};
use crate::store::Store;

/// Arguments of `scrub`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// Recipient files (CSV or Parquet), folders of them, or - for CSV on stdin.
    #[arg(long, required = true, num_args = 1.., value_name = "PATH")]
    input: Vec<String>,
    /// Where the rows that may be messaged go (.parquet or .csv).
    #[arg(long, value_name = "F")]
    output: PathBuf,
    /// Where the rows that may not be messaged go, with reason and scope.
    #[arg(long, value_name = "F")]
    suppressed: Option<PathBuf>,
    /// Account of every row, when the file has no account column.
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// Sender of every row, when the file has no sender column.
    #[arg(long, value_name = "ID")]
    sender: Option<String>,
    #[command(flatten)]
    flags: ScrubFlags,
}

/// How rows are read and decided: the flags `scrub` shares with `nightly`.
#[derive(clap::Args, Debug, Clone)]
pub(super) struct ScrubFlags {
    /// Read national numbers as this country's (ISO 3166 alpha-2).
    #[arg(long, value_name = "XX")]
    default_country: Option<String>,
    /// Keep rows whose (account, contact) an earlier kept row has.
    #[arg(long)]
    keep_duplicates: bool,
    /// Name of the phone column.
    #[arg(long, value_name = "C", default_value = ScrubJob::PHONE_COLUMN)]
    phone_column: String,
    /// Name of the account column.
    #[arg(long, value_name = "C", default_value = ScrubJob::ACCOUNT_COLUMN)]
    account_column: String,
    /// Name of the sender column [default: sender; optional unless named here]
    #[arg(long, value_name = "C")]
    sender_column: Option<String>,
    /// A column giving each row's country (ISO 3166 alpha-2) for national
    /// numbers; an empty cell falls back to --default-country, then to the
    /// account's default_country.
    #[arg(long, value_name = "C")]
    country_column: Option<String>,
    #[command(flatten)]
    csv: crate::cmd::CsvFlags,
}

impl ScrubFlags {
    /// A plan with these settings, for these inputs and output.
    pub(super) fn plan(self, inputs: Vec<String>, output: PathBuf) -> Result<ScrubJob> {
        let mut plan = ScrubJob::new(inputs, output);
        plan.country = crate::phone::parse_country(self.default_country.as_deref())?;
        plan.keep_duplicates = self.keep_duplicates;
        plan.phone_column = self.phone_column;
        plan.account_column = self.account_column;
        plan.country_column = self.country_column;
        plan.csv = self.csv.shape()?;
        if let Some(c) = self.sender_column {
            plan.sender_column = c;
            plan.sender_column_given = true;
        }
        Ok(plan)
    }

    /// The same flags as `scrub` takes them on its command line (for a
    /// scrub run as a separate process, as `plan` does).
    pub(super) fn as_args(&self) -> Vec<String> {
        let mut out = vec![
            "--phone-column".to_string(),
            self.phone_column.clone(),
            "--account-column".to_string(),
            self.account_column.clone(),
        ];
        for (flag, v) in [
            ("--sender-column", &self.sender_column),
            ("--country-column", &self.country_column),
            ("--default-country", &self.default_country),
        ] {
            if let Some(v) = v {
                out.extend([flag.to_string(), v.clone()]);
            }
        }
        if self.keep_duplicates {
            out.push("--keep-duplicates".into());
        }
        out.extend(self.csv.as_args());
        out
    }

    /// How CSV inputs are read.
    pub(super) fn csv_shape(&self) -> Result<crate::io::input::CsvShape> {
        self.csv.shape()
    }
}

/// Scrub recipient lists.
pub(super) fn run(a: Args) -> Result<()> {
    let start = Instant::now();
    let mut plan = a.flags.plan(a.input, a.output)?;
    plan.suppressed = a.suppressed;
    plan.account = a.account;
    plan.sender = a.sender;
    let (store, opt_outs) = Store::open_with_opt_outs(&a.store.store)?;
    let scrubber = Scrubber::new(&store.config, opt_outs, store.erasures()?)?;
    let stats = run::run(&store, &scrubber, &plan)?;
    let secs = start.elapsed().as_secs_f64();
    let reasons: Vec<String> = Reason::ALL
        .iter()
        .filter_map(|r| stats.reasons.get(r).map(|n| format!("{} {n}", r.as_str())))
        .collect();
    eprintln!(
        "scrub: {} rows in, {} kept, {} suppressed{} in {secs:.2} s",
        stats.rows_in,
        stats.kept,
        stats.suppressed(),
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        }
    );
    let hints = run::say_case_hints("scrub", &scrubber);
    write_summary(
        a.store.summary.as_deref(),
        &crate::summary::ScrubSummary {
            case_hints: hints,
            command: "scrub".into(),
            kept: stats.kept,
            output: plan.output,
            peak_rss_bytes: crate::cmd::peak_rss_bytes(),
            reasons: stats.reasons(),
            rows_in: stats.rows_in,
            seconds: secs,
            suppressed: stats.suppressed(),
            suppressed_output: plan.suppressed,
        },
    )
}
