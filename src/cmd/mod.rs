//! The subcommands, one file each, each with its own args and `run`.

mod bundle;
mod check;
mod completions;
mod config;
mod demo;
mod erase;
mod export;
mod gen;
mod ingest_import;
mod ingest_replies;
mod ingest_signals;
mod ingest_webform;
mod init;
mod lint;
mod nightly;
mod outbox;
mod plan;
mod rebuild;
mod revert;
mod scrub;
mod stats;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;

/// optscrub: keeps a messaging platform from texting people who said STOP.
#[derive(Parser, Debug)]
#[command(name = "optscrub", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a store with a config.
    Init(init::Args),
    /// Replace a store's config (the old one is kept).
    Config(config::Args),
    /// Add opt-out evidence to a store.
    #[command(subcommand)]
    Ingest(Ingest),
    /// Filter recipient lists: write who may be messaged, and who not and why.
    Scrub(scrub::Args),
    /// Hand over the replies to send (confirmations, help answers) that
    /// ingests kept in the store.
    Outbox(outbox::Args),
    /// May this contact be messaged, and which events decide it?
    Check(check::Args),
    /// Write the current suppression list.
    Export(export::Args),
    /// Counts per account and scope, and bytes on disk.
    Stats(stats::Args),
    /// Recompile the snapshot from the ledger.
    Rebuild(rebuild::Args),
    /// Check a config (and message templates) against the opt-out rules:
    /// US and Canadian keywords, confirmations, template instructions.
    Lint(lint::Args),
    /// Take back a manual import or webform file that was mapped wrongly
    /// (its events stay in the ledger and stop counting).
    Revert(revert::Args),
    /// Forget phone numbers (an erasure request) and keep their opt-outs:
    /// their events are kept under a keyed hash of the number.
    Erase(erase::Args),
    /// Write a scrub-only copy of a store, for Spark executors.
    ///
    /// The copy (a .tar.gz) holds the store's manifest, its config and
    /// its probe file: it scrubs exactly as the store does, on machines
    /// that cannot reach the store.
    Bundle(bundle::Args),
    /// The whole nightly job: ingest, then scrub every campaign of a folder.
    Nightly(nightly::Args),
    /// Run the nightly job on the bundled demo data, with nothing to prepare.
    Demo(demo::Args),
    /// Write deterministic synthetic data (config, opt-out imports, campaigns).
    Gen(gen::Args),
    /// Capacity planning: project scrub time and peak memory for a target.
    Plan(plan::Args),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(completions::Args),
    /// Print the man page (roff): `optscrub man > optscrub.1`.
    Man,
}

/// `ingest` subcommands.
#[derive(Subcommand, Debug)]
pub enum Ingest {
    /// Inbound reply logs: STOP and other keywords, confirmations, review.
    Replies(ingest_replies::Args),
    /// Webform submissions: account-wide opt-outs.
    Webform(ingest_webform::Args),
    /// A manual import of opt-outs, mapped to senders or the whole account.
    Import(ingest_import::Args),
    /// Provider signals: send-time errors that say a contact opted out,
    /// and carrier deactivations.
    Signals(ingest_signals::Args),
}

/// Run a parsed command line; returns the exit status of a success (0,
/// or `check --exit-status`'s answer).
pub fn run(cli: Cli) -> Result<i32> {
    let done = match cli.command {
        Command::Init(a) => init::run(a),
        Command::Config(a) => config::run(a),
        Command::Ingest(Ingest::Replies(a)) => ingest_replies::run(a),
        Command::Ingest(Ingest::Webform(a)) => ingest_webform::run(a),
        Command::Ingest(Ingest::Import(a)) => ingest_import::run(a),
        Command::Ingest(Ingest::Signals(a)) => ingest_signals::run(a),
        Command::Scrub(a) => scrub::run(a),
        Command::Outbox(a) => outbox::run(a),
        Command::Check(a) => return check::run(a),
        Command::Lint(a) => return lint::run(a),
        Command::Export(a) => export::run(a),
        Command::Stats(a) => stats::run(a),
        Command::Rebuild(a) => rebuild::run(a),
        Command::Revert(a) => revert::run(a),
        Command::Erase(a) => erase::run(a),
        Command::Bundle(a) => bundle::run(a),
        Command::Gen(a) => gen::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Nightly(a) => nightly::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Completions(a) => completions::run(a),
        Command::Man => completions::man(),
    };
    done.map(|()| 0)
}

/// Write `--summary FILE.json` if it was given.
pub fn write_summary(path: Option<&Path>, value: &impl serde::Serialize) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Input(e.to_string()))?;
    write_atomic(path, format!("{text}\n").as_bytes())
}

/// This process's peak resident memory (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `--strict` and `--max-rejects N`: an ingest whose rejected rows pass
/// the limit exits 1, after committing the good rows and writing the
/// rejects (for cron: a file that went bad is noticed).
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct RejectLimit {
    /// Exit 1 when any row was rejected (--max-rejects 0).
    #[arg(long)]
    strict: bool,
    /// Exit 1 when more than N rows were rejected.
    #[arg(long, value_name = "N", conflicts_with = "strict")]
    max_rejects: Option<u64>,
}

impl RejectLimit {
    /// Fail when `rejected` rows of `what` pass the limit.
    pub fn check(&self, what: &str, rejected: u64) -> Result<()> {
        let limit = if self.strict { Some(0) } else { self.max_rejects };
        match limit {
            Some(max) if rejected > max => Err(Error::Input(format!(
                "{what}: {rejected} rows were rejected, more than {} allows ({max}); the other rows were ingested, and the rejected ones are in the rejects output",
                if self.strict { "--strict" } else { "--max-rejects" }
            ))),
            _ => Ok(()),
        }
    }
}

/// How CSV inputs are read: `--no-header`, `--delimiter C`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CsvFlags {
    /// CSV inputs have no header row: their columns are named 1, 2, 3…
    /// (say --phone-column 1, and so on).
    #[arg(long)]
    no_header: bool,
    /// The CSV field separator (one character, or `tab`); judged from the
    /// first row when not given (`,` else `;`, tab or `|`).
    #[arg(long, value_name = "C")]
    delimiter: Option<String>,
}

impl CsvFlags {
    /// The same flags as a command line takes them.
    pub fn as_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.no_header {
            out.push("--no-header".to_string());
        }
        if let Some(d) = &self.delimiter {
            out.extend(["--delimiter".to_string(), d.clone()]);
        }
        out
    }

    /// The shape these flags ask for.
    pub fn shape(&self) -> Result<crate::io::input::CsvShape> {
        let delimiter = match self.delimiter.as_deref() {
            None => None,
            Some("tab" | "\\t") => Some(b'\t'),
            Some(d) if d.len() == 1 && d.is_ascii() && d != "\"" && d != "\n" => Some(d.as_bytes()[0]),
            Some(d) => {
                return Err(Error::Usage(format!(
                    "--delimiter '{d}': expected one ASCII character (like ; or |) or `tab`"
                )))
            }
        };
        Ok(crate::io::input::CsvShape {
            header: !self.no_header,
            delimiter,
        })
    }
}

/// Options every store command shares.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// The store folder.
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// Also write the summary figures as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    pub summary: Option<PathBuf>,
}
