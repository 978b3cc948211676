//! The scrub pipeline: read batches, decide them in parallel with rayon,
//! mark duplicates and write in input order. Memory holds one window of
//! batches at a time, whatever the number of rows.

use std::collections::BTreeMap;
use std::path::PathBuf;

use std::sync::mpsc::{Receiver, SyncSender};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::io::input::{Batch, Dataset};
use crate::io::output::{Format, Output};
use crate::phone::DefaultCountry;
use crate::scrub::{split, suppressed_schema, Columns, Deduper, Reason, Scrubber};
use crate::store::Store;

/// A validated scrub job.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Input paths (files, folders, `-`).
    pub inputs: Vec<String>,
    /// Kept rows go here.
    pub output: PathBuf,
    /// Suppressed rows go here, if given.
    pub suppressed: Option<PathBuf>,
    /// `--account`.
    pub account: Option<String>,
    /// `--sender`.
    pub sender: Option<String>,
    /// `--default-country`.
    pub country: Option<DefaultCountry>,
    /// `--keep-duplicates`.
    pub keep_duplicates: bool,
    /// Phone column name.
    pub phone_column: String,
    /// Account column name.
    pub account_column: String,
    /// Sender column name.
    pub sender_column: String,
    /// Was the sender column named by a flag (then it must exist)?
    pub sender_column_given: bool,
    /// Rows per batch read ([`crate::io::input::BATCH_ROWS`] by default).
    pub batch_rows: usize,
}

impl Plan {
    /// A job with SPEC's defaults: the default column names, no
    /// `--suppressed`, duplicates removed, whole-size batches.
    pub fn new(inputs: Vec<String>, output: PathBuf) -> Plan {
        Plan {
            inputs,
            output,
            suppressed: None,
            account: None,
            sender: None,
            country: None,
            keep_duplicates: false,
            phone_column: "phone".into(),
            account_column: "account_id".into(),
            sender_column: "sender".into(),
            sender_column_given: false,
            batch_rows: crate::io::input::BATCH_ROWS,
        }
    }
}

/// What a scrub did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Rows read.
    pub rows_in: u64,
    /// Rows kept.
    pub kept: u64,
    /// Suppressed rows per reason.
    pub reasons: BTreeMap<Reason, u64>,
}

impl Stats {
    /// Rows suppressed.
    pub fn suppressed(&self) -> u64 {
        self.reasons.values().sum()
    }

    /// Suppressed rows per reason, every reason named, for summaries.
    pub fn reasons_json(&self) -> serde_json::Value {
        Reason::ALL
            .iter()
            .map(|r| {
                (
                    r.as_str().to_string(),
                    serde_json::json!(self.reasons.get(r).copied().unwrap_or(0)),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// Batches decided together; enough to keep every core busy.
fn window_len() -> usize {
    rayon::current_num_threads() * 2
}

/// Run a scrub job against a store, with the scrubber made from its
/// config and snapshot (made once, however many jobs use it).
pub fn run(store: &Store, scrubber: &Scrubber, plan: &Plan) -> Result<Stats> {
    Format::for_path(&plan.output)?;
    if let Some(s) = &plan.suppressed {
        Format::for_path(s)?;
        if *s == plan.output {
            return Err(Error::Usage(
                "--output and --suppressed name the same file".into(),
            ));
        }
    }
    if let Some(a) = &plan.account {
        if store.config.account(a).is_none() {
            return Err(Error::Usage(format!(
                "--account '{a}' is not an account in the store's config"
            )));
        }
    }
    let dict_columns = [plan.account_column.as_str(), plan.sender_column.as_str()];
    let data = Dataset::open_dict(&plan.inputs, plan.batch_rows, &dict_columns)?;
    let cols = resolve_columns(&data, plan)?;
    let sup_schema = suppressed_schema(&data.schema);
    if plan.suppressed.is_some() {
        for name in ["reason", "scope"] {
            if data.schema.index_of(name).is_ok() {
                return Err(Error::Input(format!(
                    "{}: has a column '{name}', which --suppressed adds; rename it first",
                    data.first_name
                )));
            }
        }
    }
    let plain = [plan.phone_column.as_str()];
    let kept_out = Output::create_with(&plan.output, data.schema.clone(), &plain)?;
    let sup_out = plan
        .suppressed
        .as_ref()
        .map(|p| Output::create_with(p, sup_schema.clone(), &plain))
        .transpose()?;
    // Encoding and compressing the outputs runs on its own thread, fed in
    // input order through a bounded channel, so it overlaps reading and
    // deciding while memory stays bounded.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(RecordBatch, RecordBatch)>(WRITE_QUEUE);
    let writer = std::thread::spawn(move || write_all(rx, kept_out, sup_out));
    let input_schema = data.schema.clone();
    let produced = produce(
        data,
        scrubber,
        &cols,
        (&input_schema, &sup_schema),
        plan.keep_duplicates,
        &tx,
    );
    drop(tx);
    let written = writer
        .join()
        .map_err(|_| Error::Input("the output writer stopped unexpectedly".into()))?;
    // A write error explains a closed channel, so it goes first; outputs
    // dropped unfinished leave no file under the final name.
    let (kept_out, sup_out) = written?;
    let stats = produced?;
    finish(kept_out, sup_out)?;
    Ok(stats)
}

/// Batches waiting for the writer thread; with the window this bounds
/// memory to a few batches whatever the number of rows.
const WRITE_QUEUE: usize = 4;

fn produce(
    data: Dataset,
    scrubber: &Scrubber,
    cols: &Columns,
    (input_schema, sup_schema): (&SchemaRef, &SchemaRef),
    keep_duplicates: bool,
    tx: &SyncSender<(RecordBatch, RecordBatch)>,
) -> Result<Stats> {
    let mut dedupe = (!keep_duplicates).then(Deduper::default);
    let mut stats = Stats::default();
    let bar = crate::progress::rows("scrub", data.total_rows);
    let mut data = data.peekable();
    while data.peek().is_some() {
        let window: Vec<Batch> = data.by_ref().take(window_len()).collect::<Result<_>>()?;
        let decided: Vec<_> = window
            .par_iter()
            .map(|b| {
                scrubber
                    .decide(&b.batch, cols)
                    .map_err(|e| Error::Input(format!("{}: {e}", b.file)))
            })
            .collect::<Result<_>>()?;
        for (b, mut rows) in window.iter().zip(decided) {
            if let Some(d) = &mut dedupe {
                d.mark(&mut rows);
            }
            let (kept, gone) = split(&b.batch, &rows, scrubber, input_schema, sup_schema)
                .map_err(|e| Error::Input(format!("{}: {e}", b.file)))?;
            stats.rows_in += b.batch.num_rows() as u64;
            stats.kept += kept.num_rows() as u64;
            if let Some(bar) = &bar {
                bar.inc(b.batch.num_rows() as u64);
            }
            for r in rows.iter().filter_map(|d| d.reason) {
                *stats.reasons.entry(r).or_default() += 1;
            }
            if tx.send((kept, gone)).is_err() {
                // the writer failed; its error is reported by the caller
                return Ok(stats);
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(stats)
}

fn write_all(
    rx: Receiver<(RecordBatch, RecordBatch)>,
    mut kept_out: Output,
    mut sup_out: Option<Output>,
) -> Result<(Output, Option<Output>)> {
    for (kept, gone) in rx {
        kept_out.write(&kept)?;
        if let Some(o) = &mut sup_out {
            o.write(&gone)?;
        }
    }
    Ok((kept_out, sup_out))
}

/// Finish both outputs (only after every batch was written and decided).
fn finish(kept_out: Output, sup_out: Option<Output>) -> Result<()> {
    kept_out.finish()?;
    sup_out.map(Output::finish).transpose().map(|_| ())
}

fn resolve_columns(data: &Dataset, plan: &Plan) -> Result<Columns> {
    let phone = data.column(&plan.phone_column, "--phone-column")?;
    let account = match data.schema.index_of(&plan.account_column) {
        Ok(i) => Some(i),
        Err(_) if plan.account.is_some() => None,
        Err(_) => {
            data.column(
                &plan.account_column,
                "--account-column (or give --account for every row)",
            )?;
            None
        }
    };
    let sender = match data.schema.index_of(&plan.sender_column) {
        Ok(i) => Some(i),
        Err(_) if plan.sender_column_given => Some(data.column(&plan.sender_column, "--sender-column")?),
        Err(_) => None,
    };
    Ok(Columns {
        phone,
        account,
        sender,
        default_account: plan.account.clone(),
        default_sender: plan.sender.clone(),
        country: plan.country,
    })
}
