//! Ingestion: turning input rows into events, and the rows that cannot be
//! used into `--rejects` rows (SPEC §7).

mod classify;
pub mod import;
pub mod outbox;
pub mod replies;
pub mod webform;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::columns::as_text;
use crate::error::{Error, Result};
use crate::io::output::Output;

/// A time cell that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadTime;

/// A time column: RFC 3339 text, or a Parquet timestamp.
pub enum TimeColumn {
    /// Text to parse per row.
    Text(StringArray),
    /// Microseconds since the epoch, UTC (timestamps without a zone are
    /// taken as UTC).
    Micros(TimestampMicrosecondArray),
}

impl TimeColumn {
    /// Read column `name` of a batch as times.
    pub fn new(file: &str, name: &str, col: &ArrayRef) -> Result<TimeColumn> {
        match col.data_type() {
            DataType::Timestamp(_, _) => {
                let c = cast(col, &DataType::Timestamp(TimeUnit::Microsecond, None))
                    .map_err(|e| Error::Input(format!("{file}: column '{name}': {e}")))?;
                let a = c
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .cloned()
                    .ok_or_else(|| Error::Input(format!("{file}: column '{name}' cannot be read as a timestamp")))?;
                Ok(TimeColumn::Micros(a))
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
                let t = as_text(col).map_err(|e| Error::Input(format!("{file}: column '{name}': {e}")))?;
                Ok(TimeColumn::Text(t.into_owned()))
            }
            other => Err(Error::Input(format!(
                "{file}: column '{name}' has type {other}; expected RFC 3339 text (2026-11-22T18:00:00Z) or a Parquet timestamp"
            ))),
        }
    }

    /// Row `i`: `Ok(None)` when empty, `Err` when it does not parse.
    pub fn get(&self, i: usize) -> std::result::Result<Option<i64>, BadTime> {
        match self {
            TimeColumn::Micros(a) => Ok((!a.is_null(i)).then(|| a.value(i))),
            TimeColumn::Text(a) => {
                if a.is_null(i) || a.value(i).trim().is_empty() {
                    return Ok(None);
                }
                parse_time(a.value(i)).map(Some).ok_or(BadTime)
            }
        }
    }
}

/// Parse RFC 3339 (any offset) to microseconds since the epoch, UTC.
pub fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.timestamp_micros())
}

/// Now, in microseconds since the epoch.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Collects rows that cannot be used, for `--rejects` and the summary.
pub struct Rejects {
    out: Option<Output>,
    schema: SchemaRef,
    /// Rows rejected so far.
    pub count: u64,
    /// The first few, as `row N: error`, for the summary on stderr.
    pub examples: Vec<String>,
}

/// How many rejected rows are quoted on stderr.
const REJECT_EXAMPLES: usize = 3;

impl Rejects {
    /// Rejects for inputs of this schema, written to `path` if given.
    pub fn new(path: Option<&Path>, input: &Schema) -> Result<Rejects> {
        let mut fields = vec![
            Field::new("row", DataType::UInt64, false),
            Field::new("error", DataType::Utf8, false),
        ];
        for f in input.fields() {
            let name = if matches!(f.name().as_str(), "row" | "error") {
                format!("input_{}", f.name())
            } else {
                f.name().clone()
            };
            fields.push(Field::new(name, DataType::Utf8, true));
        }
        let schema = Arc::new(Schema::new(fields));
        let out = path.map(|p| Output::create(p, schema.clone())).transpose()?;
        Ok(Rejects {
            out,
            schema,
            count: 0,
            examples: Vec::new(),
        })
    }

    /// Reject rows of `batch`: (index in batch, dataset row number, error).
    pub fn add(&mut self, batch: &RecordBatch, rows: &[(u32, u64, String)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.count += rows.len() as u64;
        for (_, n, e) in rows
            .iter()
            .take(REJECT_EXAMPLES.saturating_sub(self.examples.len()))
        {
            self.examples.push(format!("row {n}: {e}"));
        }
        let Some(out) = &mut self.out else {
            return Ok(());
        };
        let idx = UInt32Array::from_iter_values(rows.iter().map(|r| r.0));
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2.as_str()))),
        ];
        for c in batch.columns() {
            let picked = take(c.as_ref(), &idx, None).map_err(|e| Error::Input(e.to_string()))?;
            let text = as_text(&picked).map_err(Error::Input)?;
            cols.push(Arc::new(text.into_owned()));
        }
        let b = RecordBatch::try_new(self.schema.clone(), cols).map_err(|e| Error::Input(e.to_string()))?;
        out.write(&b)
    }

    /// Finish the rejects file, if any.
    pub fn finish(self) -> Result<()> {
        self.out.map(Output::finish).transpose().map(|_| ())
    }

    /// One line for stderr, or `None` when nothing was rejected.
    pub fn summary(&self, written: bool) -> Option<String> {
        (self.count > 0).then(|| {
            let hint = if written {
                ""
            } else {
                " (give --rejects FILE to keep them)"
            };
            format!(
                "{} rows rejected{hint}; first: {}",
                self.count,
                self.examples.join("; ")
            )
        })
    }
}
