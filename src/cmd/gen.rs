//! `optscrub gen --out DIR --seed N --recipients N --opt-outs N …`

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use crate::cmd::write_summary;
use crate::dev::gen::{generate, Spec};
use crate::error::{Error, Result};

/// How campaign phones are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PhoneFormats {
    /// The formats real lists use, a few invalid.
    Mixed,
    /// E.164 only.
    E164,
}

/// Arguments of `gen`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = Spec::default().seed)]
    seed: u64,
    /// Recipient rows in all campaigns.
    #[arg(long, default_value_t = Spec::default().recipients)]
    recipients: u64,
    /// Opt-outs in the imports.
    #[arg(long, default_value_t = Spec::default().opt_outs)]
    opt_outs: u64,
    /// Inbound replies.
    #[arg(long, default_value_t = Spec::default().replies)]
    replies: u64,
    /// Webform submissions.
    #[arg(long, default_value_t = Spec::default().webforms)]
    webforms: u64,
    /// Campaign phones: `mixed` (the formats real lists use, a few invalid)
    /// or `e164` (all `+digits`, as the performance benchmark asks).
    #[arg(long, value_enum, default_value_t = PhoneFormats::Mixed)]
    phones: PhoneFormats,
    /// Accounts.
    #[arg(long, default_value_t = Spec::default().accounts)]
    accounts: u32,
    /// Senders per account.
    #[arg(long, default_value_t = Spec::default().senders_per_account)]
    senders_per_account: u32,
    /// Campaign files the recipients are split into.
    #[arg(long, default_value_t = Spec::default().campaigns)]
    campaigns: u32,
    /// Also write the summary figures as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    summary: Option<PathBuf>,
}

/// Generate data.
pub(super) fn run(a: Args) -> Result<()> {
    if a.accounts == 0 || a.senders_per_account == 0 || a.campaigns == 0 {
        return Err(Error::Usage(
            "--accounts, --senders-per-account and --campaigns must be at least 1".into(),
        ));
    }
    let start = Instant::now();
    let spec = Spec {
        seed: a.seed,
        recipients: a.recipients,
        opt_outs: a.opt_outs,
        accounts: a.accounts,
        senders_per_account: a.senders_per_account,
        campaigns: a.campaigns,
        replies: a.replies,
        webforms: a.webforms,
        mixed_phones: a.phones == PhoneFormats::Mixed,
    };
    generate(&spec, &a.out)?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "gen: {} recipients in {} campaigns, {} opt-outs over {} accounts × {} senders, in {} ({secs:.1} s)",
        a.recipients,
        a.campaigns,
        a.opt_outs,
        a.accounts,
        a.senders_per_account,
        a.out.display()
    );
    write_summary(
        a.summary.as_deref(),
        &json!({"command": "gen", "recipients": a.recipients, "opt_outs": a.opt_outs, "seconds": secs}),
    )
}
