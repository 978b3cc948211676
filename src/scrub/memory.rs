//! Scrubbing batches a caller holds in memory (a data frame handed over
//! from Python, a partition on a Spark executor): the same decisions as
//! [`super::run`] makes for files, with no files in between.
//!
//! The batches are cut into slices of at most [`SLICE_ROWS`] rows (no
//! copy), decided on rayon's threads, have their duplicates marked in
//! input order, and are split into kept and suppressed batches.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder, UInt64Builder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rayon::prelude::*;

use super::run::Stats;
use super::{split, suppressed_schema, Columns, Deduper, Reason, RowDecision, Scrubber};
use crate::error::{Error, Result};
use crate::phone::e164_bytes;

/// A store opened at one generation, with its scrubber: what the
/// in-process callers (Python, the Polars plugin) share.
pub struct Opened {
    /// The store.
    pub store: crate::store::Store,
    /// Its scrubber.
    pub scrubber: Scrubber,
}

/// Stores opened in this process, by folder.
fn cache() -> &'static std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, Arc<Opened>>> {
    static CACHE: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, Arc<Opened>>>,
    > = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The store at `dir` at its current generation: from this process's
/// cache when it has not moved on, else opened (and cached).
pub fn current(dir: &std::path::Path) -> Result<Arc<Opened>> {
    use crate::store::Store;
    let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let now = Store::current_generation(dir)?;
    if let Ok(c) = cache().lock() {
        if let Some(o) = c.get(&key).filter(|o| o.store.generation() == now) {
            return Ok(Arc::clone(o));
        }
    }
    let (store, opt_outs) = Store::open_with_opt_outs(dir)?;
    let scrubber = Scrubber::new(&store.config, opt_outs, store.erasures()?)?;
    let opened = Arc::new(Opened { store, scrubber });
    if let Ok(mut c) = cache().lock() {
        c.insert(key, Arc::clone(&opened));
    }
    Ok(opened)
}

/// Rows decided by one task at most.
pub const SLICE_ROWS: usize = 1 << 16;

/// The kept and suppressed rows of a scrub in memory.
pub struct Scrubbed {
    /// Rows that may be messaged, in input order, with the input's columns.
    pub kept: Vec<RecordBatch>,
    /// Rows that may not, in input order, with `reason` and `scope` added.
    pub suppressed: Vec<RecordBatch>,
    /// The schema of `suppressed` (also when there are no batches).
    pub suppressed_schema: SchemaRef,
    /// What the scrub did.
    pub stats: Stats,
}

/// The batches cut into slices of at most [`SLICE_ROWS`] rows.
fn slices(batches: &[RecordBatch]) -> Vec<RecordBatch> {
    batches
        .iter()
        .flat_map(|b| {
            (0..b.num_rows())
                .step_by(SLICE_ROWS)
                .map(move |at| b.slice(at, SLICE_ROWS.min(b.num_rows() - at)))
        })
        .collect()
}

/// Decide every slice in parallel (duplicates not yet marked).
fn decide_all(
    scrubber: &Scrubber,
    slices: &[RecordBatch],
    cols: &Columns,
    name: &str,
) -> Result<Vec<Vec<RowDecision>>> {
    if slices.iter().map(RecordBatch::num_rows).sum::<usize>() >= 1 << 17 {
        scrubber.check_ahead();
    }
    let decided = slices
        .par_iter()
        .map(|b| {
            scrubber
                .decide(b, cols)
                .map_err(|e| Error::Input(format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    scrubber.verified()?;
    Ok(decided)
}

/// Scrub batches of one schema: the kept and suppressed rows, as
/// `optscrub scrub` writes them for the same rows in the same order.
/// `name` stands for the data in messages.
pub fn scrub(
    scrubber: &Scrubber,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    cols: &Columns,
    keep_duplicates: bool,
    name: &str,
) -> Result<Scrubbed> {
    let slices = slices(batches);
    let mut decided = decide_all(scrubber, &slices, cols, name)?;
    if !keep_duplicates {
        let mut window: Vec<&mut [RowDecision]> = decided.iter_mut().map(Vec::as_mut_slice).collect();
        Deduper::default().mark_window(&mut window);
    }
    let parts = slices
        .par_iter()
        .zip(&decided)
        .map(|(b, rows)| split(b, rows, scrubber))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Internal(format!("{name}: cannot split the rows: {e}")))?;
    let mut stats = Stats::default();
    for rows in &decided {
        stats.rows_in += rows.len() as u64;
        for d in rows {
            match d.reason {
                None => stats.kept += 1,
                Some(r) => *stats.reasons.entry(r).or_default() += 1,
            }
        }
    }
    let (kept, suppressed) = parts
        .into_iter()
        .filter(|(k, s)| k.num_rows() + s.num_rows() > 0)
        .unzip::<_, _, Vec<_>, Vec<_>>();
    let keep_nonempty = |v: Vec<RecordBatch>| v.into_iter().filter(|b| b.num_rows() > 0).collect();
    Ok(Scrubbed {
        kept: keep_nonempty(kept),
        suppressed: keep_nonempty(suppressed),
        suppressed_schema: suppressed_schema(schema),
        stats,
    })
}

/// The columns [`decide`] adds, in order.
pub const DECISION_COLUMNS: [&str; 4] = ["reason", "scope", "contact", "dedupe_key"];

/// The schema of [`decide`]'s batches: the input's columns, then
/// [`DECISION_COLUMNS`].
pub fn decided_schema(input: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("reason", DataType::Utf8, true));
    fields.push(Field::new("scope", DataType::Utf8, true));
    fields.push(Field::new("contact", DataType::Utf8, true));
    fields.push(Field::new("dedupe_key", DataType::UInt64, true));
    Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()))
}

/// Decide every row of the batches, for engines that mark duplicates
/// themselves (Polars, Spark): each batch comes back with its columns and
///
/// - `reason`: why the row may not be messaged, null when it may (before
///   the duplicate rule);
/// - `scope`: the opt-out's scope (the sender, or `account` account-wide);
/// - `contact`: the phone in E.164 form, null when it is not a number;
/// - `dedupe_key`: set on the rows that may be messaged, equal for two
///   rows exactly when they name the same (account, contact). Of the rows
///   sharing a key, the first in input order is kept and the others are
///   duplicates: that is the whole duplicate rule.
///
/// Rows are not reordered or dropped.
pub fn decide(
    scrubber: &Scrubber,
    batches: &[RecordBatch],
    cols: &Columns,
    name: &str,
) -> Result<Vec<RecordBatch>> {
    if let Some(b) = batches.iter().find(|b| {
        DECISION_COLUMNS
            .iter()
            .any(|c| b.schema().column_with_name(c).is_some())
    }) {
        let taken: Vec<&str> = DECISION_COLUMNS
            .iter()
            .copied()
            .filter(|c| b.schema().column_with_name(c).is_some())
            .collect();
        return Err(Error::Input(format!(
            "{name}: has column(s) {}, which the decision adds; rename them first",
            taken.join(", ")
        )));
    }
    let slices = slices(batches);
    let decided = decide_all(scrubber, &slices, cols, name)?;
    slices
        .par_iter()
        .zip(&decided)
        .map(|(b, rows)| with_decisions(b, rows, scrubber))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Internal(format!("{name}: cannot add the decisions: {e}")))
}

/// The duplicate key of a row that may be messaged: its account's place
/// in the config above the contact's digits (an E.164 number has at most
/// 15 digits, under 2^50).
fn dedupe_key(d: &RowDecision) -> Option<u64> {
    d.reason
        .is_none()
        .then(|| (u64::from(d.account) << 50) | d.contact)
}

fn with_decisions(
    b: &RecordBatch,
    rows: &[RowDecision],
    scrubber: &Scrubber,
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let n = rows.len();
    let mut reason = StringBuilder::with_capacity(n, n * 4);
    let mut scope = StringBuilder::with_capacity(n, n * 4);
    let mut contact = StringBuilder::with_capacity(n, n * 13);
    let mut key = UInt64Builder::with_capacity(n);
    let mut buf = [0u8; crate::phone::E164_BUF];
    for d in rows {
        reason.append_option(d.reason.map(Reason::as_str));
        scope.append_option(d.reason.and_then(|_| scrubber.scope_name(d.scope)));
        if d.reason == Some(Reason::InvalidPhone) {
            contact.append_null();
        } else {
            // only ASCII digits and '+' are written
            contact.append_value(std::str::from_utf8(e164_bytes(d.contact, &mut buf)).unwrap_or_default());
        }
        key.append_option(dedupe_key(d));
    }
    let mut cols: Vec<ArrayRef> = b.columns().to_vec();
    cols.push(Arc::new(reason.finish()));
    cols.push(Arc::new(scope.finish()));
    cols.push(Arc::new(contact.finish()));
    cols.push(Arc::new(key.finish()));
    RecordBatch::try_new(decided_schema(&b.schema()), cols)
}
