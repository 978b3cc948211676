//! The scrub pipeline, in units of about one Parquet row group: rayon
//! tasks decode and decide units in parallel, duplicates are marked in
//! input order, then tasks encode each unit's kept and suppressed rows into
//! row groups of the outputs, appended in input order. Memory holds one
//! window of units (one per thread), whatever the number of rows.

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::io::input::{Batch, Dataset, Unit};
use crate::io::output::{Format, Output, Part, PartEncoder, Parts};
use crate::phone::DefaultCountry;
use crate::scrub::{split, suppressed_schema, Columns, Deduper, Reason, RowDecision, Scrubber};
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
    /// Rows per unit of work at most ([`UNIT_ROWS`] by default).
    pub unit_rows: u64,
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
            unit_rows: UNIT_ROWS,
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
    let mut kept_out = Output::create_with(&plan.output, data.schema.clone(), &plain)?;
    let mut sup_out = plan
        .suppressed
        .as_ref()
        .map(|p| Output::create_with(p, sup_schema.clone(), &plain))
        .transpose()?;
    let input_schema = data.schema.clone();
    let stats = produce(
        data,
        scrubber,
        &cols,
        (&input_schema, &sup_schema),
        (plan.keep_duplicates, plan.unit_rows.max(1)),
        (&mut kept_out, sup_out.as_mut()),
    )?;
    // only now, with every row decided and written, do the outputs appear
    kept_out.finish()?;
    sup_out.map(Output::finish).transpose()?;
    Ok(stats)
}

/// Rows a unit of work holds at most (decoded and decided by one task):
/// one Parquet row group of the usual 1M rows, so that a file's row groups
/// decode in parallel, each into a row group of the output.
pub const UNIT_ROWS: u64 = 1 << 20;

/// Units in flight: one per thread; memory is bounded by these whatever
/// the number of rows.
fn window_len() -> usize {
    rayon::current_num_threads().max(1)
}

/// The scrub, a window of units at a time. With duplicates kept, each
/// unit is one task from decoding to encoding, a batch at a time. Else
/// each unit is decoded and decided by one task, duplicates are marked in
/// input order, and then each unit's rows are encoded by one task. Either
/// way a unit's kept and suppressed rows become a part (a Parquet row
/// group) of each output, appended in input order.
fn produce(
    mut data: Dataset,
    scrubber: &Scrubber,
    cols: &Columns,
    schemas: (&SchemaRef, &SchemaRef),
    (keep_duplicates, unit_rows): (bool, u64),
    (kept_out, mut sup_out): (&mut Output, Option<&mut Output>),
) -> Result<Stats> {
    let mut dedupe = (!keep_duplicates).then(Deduper::default);
    let mut stats = Stats::default();
    let bar = crate::progress::rows("scrub", data.total_rows);
    let parts = Outputs {
        kept: kept_out.parts(),
        suppressed: sup_out.as_ref().map(|o| o.parts()),
        scrubber,
        schemas,
    };
    loop {
        let units: Vec<Unit> = std::iter::from_fn(|| data.next_unit(unit_rows))
            .take(window_len())
            .collect::<Result<_>>()?;
        if units.is_empty() {
            break;
        }
        let done: Vec<UnitDone> = match &mut dedupe {
            None => units
                .into_par_iter()
                .map(|u| {
                    let mut out = parts.encoder()?;
                    u.for_each(|b| out.add(&b, &decide(scrubber, &b, cols)?))?;
                    out.finish()
                })
                .collect::<Result<_>>()?,
            Some(dedupe) => {
                let mut decided: Vec<Vec<(Batch, Vec<RowDecision>)>> = units
                    .into_par_iter()
                    .map(|u| {
                        let mut out = Vec::new();
                        u.for_each(|b| {
                            let rows = decide(scrubber, &b, cols)?;
                            out.push((b, rows));
                            Ok(())
                        })?;
                        Ok(out)
                    })
                    .collect::<Result<_>>()?;
                let mut window: Vec<&mut [RowDecision]> = decided
                    .iter_mut()
                    .flatten()
                    .map(|(_, rows)| rows.as_mut_slice())
                    .collect();
                dedupe.mark_window(&mut window);
                decided
                    .into_par_iter()
                    .map(|unit| {
                        let mut out = parts.encoder()?;
                        for (b, rows) in unit {
                            out.add(&b, &rows)?;
                        }
                        out.finish()
                    })
                    .collect::<Result<_>>()?
            }
        };
        for d in done {
            if let Some(bar) = &bar {
                bar.inc(d.stats.rows_in);
            }
            stats.rows_in += d.stats.rows_in;
            stats.kept += d.stats.kept;
            for (r, n) in d.stats.reasons {
                *stats.reasons.entry(r).or_default() += n;
            }
            kept_out.append(d.kept)?;
            if let (Some(o), Some(p)) = (sup_out.as_deref_mut(), d.suppressed) {
                o.append(p)?;
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(stats)
}

/// Decide one batch (duplicates not yet marked).
fn decide(scrubber: &Scrubber, b: &Batch, cols: &Columns) -> Result<Vec<RowDecision>> {
    scrubber
        .decide(&b.batch, cols)
        .map_err(|e| Error::Input(format!("{}: {e}", b.file)))
}

/// What every unit's encoding needs; shared by the tasks.
struct Outputs<'a> {
    kept: Parts,
    suppressed: Option<Parts>,
    scrubber: &'a Scrubber,
    schemas: (&'a SchemaRef, &'a SchemaRef),
}

fn write_error(what: &str, e: String) -> Error {
    Error::Input(format!("cannot write {what}: {e}"))
}

impl<'a> Outputs<'a> {
    fn encoder(&self) -> Result<UnitOut<'a, '_>> {
        Ok(UnitOut {
            kept: self.kept.encoder().map_err(|e| write_error("the output", e))?,
            suppressed: self
                .suppressed
                .as_ref()
                .map(Parts::encoder)
                .transpose()
                .map_err(|e| write_error("--suppressed", e))?,
            outputs: self,
            stats: Stats::default(),
        })
    }
}

/// One unit's rows being split and encoded.
struct UnitOut<'a, 'o> {
    kept: PartEncoder,
    suppressed: Option<PartEncoder>,
    outputs: &'o Outputs<'a>,
    stats: Stats,
}

/// One unit's outputs, ready to append.
struct UnitDone {
    kept: Part,
    suppressed: Option<Part>,
    stats: Stats,
}

impl UnitOut<'_, '_> {
    /// Split a decided batch and encode its kept and suppressed rows.
    fn add(&mut self, b: &Batch, rows: &[RowDecision]) -> Result<()> {
        let (input_schema, sup_schema) = self.outputs.schemas;
        let (kept, gone) = split(&b.batch, rows, self.outputs.scrubber, input_schema, sup_schema)
            .map_err(|e| Error::Input(format!("{}: {e}", b.file)))?;
        self.kept.write(&kept).map_err(|e| write_error("the output", e))?;
        if let Some(s) = &mut self.suppressed {
            s.write(&gone).map_err(|e| write_error("--suppressed", e))?;
        }
        self.stats.rows_in += b.batch.num_rows() as u64;
        self.stats.kept += kept.num_rows() as u64;
        for r in rows.iter().filter_map(|d| d.reason) {
            *self.stats.reasons.entry(r).or_default() += 1;
        }
        Ok(())
    }

    fn finish(self) -> Result<UnitDone> {
        Ok(UnitDone {
            kept: self.kept.finish().map_err(|e| write_error("the output", e))?,
            suppressed: self
                .suppressed
                .map(PartEncoder::finish)
                .transpose()
                .map_err(|e| write_error("--suppressed", e))?,
            stats: self.stats,
        })
    }
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
