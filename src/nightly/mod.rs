//! The nightly job (SPEC §7 `nightly`): ingest the day's replies and
//! webforms, then scrub every campaign of a folder into
//! `out/<name>.parquet` and `out/<name>.suppressed.parquet`, with the
//! outbox, review, rejects, one `summary.json` for the run and a
//! self-contained `report.html`.

pub(crate) mod report;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::summary::{CampaignSummary, NightlySummary, Seconds};

use crate::error::{Error, Result};
use crate::ingest::replies::{self, ReplyColumns, ReplyOutputs};
use crate::ingest::signals::{self, SignalColumns, SignalKind};
use crate::ingest::webform::{self, WebformColumns};
use crate::io::atomic::write_atomic;
use crate::io::input::Dataset;
use crate::scrub::run::{self, ScrubJob};
use crate::scrub::Scrubber;
use crate::store::Store;

/// A nightly run.
#[derive(Clone, Debug)]
pub(crate) struct Nightly {
    /// The store.
    pub store: PathBuf,
    /// Reply logs (files or folders).
    pub replies: Vec<String>,
    /// Webform files (files or folders).
    pub webform: Vec<String>,
    /// Provider send logs (files or folders).
    pub signals: Vec<String>,
    /// The provider of send-log rows without a provider column.
    pub signals_provider: Option<String>,
    /// Carrier deactivation lists (files or folders).
    pub deactivations: Vec<String>,
    /// The folder of campaign files.
    pub campaigns: PathBuf,
    /// Where everything is written.
    pub out: PathBuf,
    /// How campaigns are scrubbed: columns, default country, duplicates
    /// (its inputs and outputs are set per campaign).
    pub scrub: ScrubJob,
    /// The zone of times written without an offset (`--timezone`).
    pub zone: crate::ingest::Zone,
}

/// The outbox file of a nightly run, in its `--out` folder.
pub(crate) const OUTBOX: &str = "outbox.parquet";

/// One campaign: a `.csv`/`.parquet` file, or a folder of parts.
pub(crate) fn campaigns(dir: &Path) -> Result<Vec<(String, String)>> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::Input(format!("cannot read campaigns folder {}: {e}", dir.display())))?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let path = entry.path();
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
        let is_data = matches!(ext.as_deref(), Some("csv" | "parquet"));
        if path.is_dir() || is_data {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((stem, path.to_string_lossy().into_owned()));
        }
    }
    out.sort();
    for w in out.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(Error::Input(format!(
                "{}: two campaigns are named '{}' (a .csv and a .parquet, or a folder); rename one",
                dir.display(),
                w[0].0
            )));
        }
    }
    if out.is_empty() {
        return Err(Error::Input(format!(
            "{}: no campaign files (.csv or .parquet)",
            dir.display()
        )));
    }
    Ok(out)
}

/// Check, before anything is committed, that every input of the night
/// (replies, webforms, each campaign) can be read and has its columns: a
/// night that would fail half-way fails at once instead. Replies and
/// webforms are read by their default column names here; a log named
/// otherwise goes through `ingest replies` with its flags first.
fn check_inputs(n: &Nightly, store: &Store, plans: &[(String, ScrubJob)]) -> Result<()> {
    let required = |files: &[String], cols: &[(&str, &str)]| -> Result<()> {
        Dataset::open(files)?.columns(cols).map(|_| ())
    };
    if !n.replies.is_empty() {
        let c = ReplyColumns::default();
        required(
            &n.replies,
            &[
                (&c.id, "`ingest replies --id-column`"),
                (&c.time, "`ingest replies --time-column`"),
                (&c.from, "`ingest replies --from-column`"),
                (&c.to, "`ingest replies --to-column`"),
                (&c.body, "`ingest replies --body-column`"),
            ],
        )?;
    }
    if !n.webform.is_empty() {
        let c = WebformColumns::default();
        required(
            &n.webform,
            &[
                (&c.account, "`ingest webform --account-column`"),
                (&c.phone, "`ingest webform --phone-column`"),
                (&c.time, "`ingest webform --time-column`"),
            ],
        )?;
    }
    for (files, kind, what) in [
        (&n.signals, SignalKind::SendLog, "`ingest signals"),
        (
            &n.deactivations,
            SignalKind::Deactivations,
            "`ingest signals --kind deactivations",
        ),
    ] {
        if files.is_empty() {
            continue;
        }
        let c = SignalColumns::new(kind);
        let flags: Vec<(String, String)> = match kind {
            SignalKind::SendLog => vec![
                (c.code.clone(), format!("{what} --code-column`")),
                (c.from.clone(), format!("{what} --from-column`")),
                (c.contact.clone(), format!("{what} --to-column`")),
                (c.time.clone(), format!("{what} --time-column`")),
            ],
            _ => vec![
                (c.contact.clone(), format!("{what} --phone-column`")),
                (c.time.clone(), format!("{what} --time-column`")),
            ],
        };
        let wanted: Vec<(&str, &str)> = flags.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        required(files, &wanted)?;
    }
    for (_, plan) in plans {
        run::check(store, plan)?;
    }
    Ok(())
}

/// Where a night's replies go: `out/outbox.parquet`, unless that still
/// holds replies of an earlier run and there are new ones; then
/// `out/outbox-<generation>.parquet`, so that none is overwritten.
fn outbox_file(out: &Path, pending: u64, generation: u64) -> PathBuf {
    let first = out.join(OUTBOX);
    if pending == 0 || !crate::store::outbox::Held::at(&first).must_keep() {
        return first;
    }
    out.join(format!("outbox-{generation}.parquet"))
}

/// Run the nightly job; returns the summary that is also written to
/// `out/summary.json`.
pub(crate) fn run(n: &Nightly) -> Result<NightlySummary> {
    let start = Instant::now();
    let list = campaigns(&n.campaigns)?;
    std::fs::create_dir_all(&n.out).map_err(|e| Error::io("cannot create", &n.out, e))?;
    let (mut store, _lock) = Store::open_for_write(&n.store)?;
    let p = |name: &str| n.out.join(name);
    let plans: Vec<(String, ScrubJob)> = list
        .iter()
        .map(|(name, path)| {
            let mut plan = n.scrub.clone();
            plan.inputs = vec![path.clone()];
            plan.output = p(&format!("{name}.parquet"));
            plan.suppressed = Some(p(&format!("{name}.suppressed.parquet")));
            (name.clone(), plan)
        })
        .collect();
    check_inputs(n, &store, &plans)?;
    let replies = if n.replies.is_empty() {
        None
    } else {
        let (review, rejects) = (p("review.parquet"), p("replies.rejects.parquet"));
        let outputs = ReplyOutputs {
            outbox: None,
            review: Some(&review),
            rejects: Some(&rejects),
        };
        let cols = ReplyColumns {
            zone: n.zone,
            ..ReplyColumns::default()
        };
        Some(replies::ingest(&mut store, &n.replies, &cols, &outputs)?)
    };
    // every pending reply goes out now, before the campaigns; an earlier
    // run's outbox file that holds replies is never overwritten
    let outbox = outbox_file(&n.out, store.pending_replies(), store.manifest.generation);
    let handed_over = store.deliver(&outbox)?;
    let webform = if n.webform.is_empty() {
        None
    } else {
        let rejects = p("webform.rejects.parquet");
        let cols = WebformColumns {
            zone: n.zone,
            ..WebformColumns::default()
        };
        Some(webform::ingest(&mut store, &n.webform, &cols, Some(&rejects))?)
    };
    let mut signal_ingest = |files: &[String], kind: SignalKind, rejects: &str| {
        if files.is_empty() {
            return Ok(None);
        }
        let mut cols = SignalColumns::new(kind);
        cols.zone = n.zone;
        cols.provider = n.signals_provider.clone();
        signals::ingest(&mut store, files, &cols, Some(&p(rejects))).map(Some)
    };
    let signals = signal_ingest(&n.signals, SignalKind::SendLog, "signals.rejects.parquet")?;
    let deactivations = signal_ingest(
        &n.deactivations,
        SignalKind::Deactivations,
        "deactivations.rejects.parquet",
    )?;
    let ingested = start.elapsed().as_secs_f64();
    let lookups = store.opt_outs()?;
    let opt_outs = lookups.opt_outs();
    let scrubber = Scrubber::new(&store.config, lookups, store.erasures()?)?;
    let mut results = Vec::new();
    for (name, plan) in &plans {
        let t = Instant::now();
        let stats = run::run(&store, &scrubber, plan)?;
        eprintln!(
            "campaign {name}: {} rows in, {} kept, {} suppressed",
            stats.rows_in,
            stats.kept,
            stats.suppressed()
        );
        results.push(CampaignSummary {
            kept: stats.kept,
            name: name.clone(),
            reasons: stats.reasons(),
            rows_in: stats.rows_in,
            seconds: t.elapsed().as_secs_f64(),
            suppressed: stats.suppressed(),
        });
    }
    let summary = NightlySummary {
        campaigns: results,
        case_hints: run::say_case_hints("nightly", &scrubber),
        command: "nightly".into(),
        opt_outs_in_store: opt_outs,
        outbox_file: outbox.file_name().map(|f| f.to_string_lossy().into_owned()),
        outbox_handed_over: handed_over,
        replies,
        seconds: Seconds {
            ingest: ingested,
            total: start.elapsed().as_secs_f64(),
        },
        store_generation: store.manifest.generation,
        webform,
        signals,
        deactivations,
    };
    let text = serde_json::to_string_pretty(&summary).map_err(|e| Error::Input(e.to_string()))?;
    write_atomic(&p("summary.json"), format!("{text}\n").as_bytes())?;
    let state = store.state()?;
    let page = report::render(&summary, &state.events_sorted());
    write_atomic(&p("report.html"), page.as_bytes())?;
    Ok(summary)
}
