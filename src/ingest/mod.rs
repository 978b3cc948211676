//! Ingestion: turning input rows into events, and the rows that cannot be
//! used into `--rejects` rows (SPEC §7).

mod classify;
pub mod import;
pub mod outbox;
pub mod replies;
pub mod signals;
pub mod webform;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};
use crate::io::output::Output;
use crate::util::columns::as_text;

/// A row to reject: its index in its batch, its row number in the
/// dataset, and what is wrong with it.
pub type Rejected = (u32, u64, String);

/// A time cell that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadTime;

/// A time column: RFC 3339 text, or a Parquet timestamp. A time without
/// an offset (text like `2026-11-01 09:14:00`, or a Parquet timestamp with
/// no time zone) is wall-clock time in the `--timezone` zone, UTC when
/// none is given: one rule for text and Parquet.
pub enum TimeColumn {
    /// Text to parse per row.
    Text(StringArray, Zone),
    /// Microseconds since the epoch, UTC.
    Micros(TimestampMicrosecondArray),
    /// Wall-clock microseconds with no zone, read in the zone.
    Naive(TimestampMicrosecondArray, Zone),
}

/// The zone of times written without an offset (`--timezone`, an IANA
/// name); `None` is UTC.
pub type Zone = Option<chrono_tz::Tz>;

/// Parse `--timezone`.
pub fn parse_zone(name: Option<&str>) -> Result<Zone> {
    name.map(|n| {
        n.parse::<chrono_tz::Tz>().map_err(|_| {
            Error::Usage(format!(
                "--timezone '{n}' is not an IANA time zone name (like Europe/London or America/New_York)"
            ))
        })
    })
    .transpose()
}

impl TimeColumn {
    /// Read column `name` of a batch as times; `zone` for times without
    /// an offset.
    pub fn new(file: &str, name: &str, col: &ArrayRef, zone: Zone) -> Result<TimeColumn> {
        match col.data_type() {
            DataType::Timestamp(_, tz) => {
                let naive = tz.is_none();
                let c = cast(col, &DataType::Timestamp(TimeUnit::Microsecond, None))
                    .map_err(|e| Error::Input(format!("{file}: column '{name}': {e}")))?;
                let a = c
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .cloned()
                    .ok_or_else(|| Error::Input(format!("{file}: column '{name}' cannot be read as a timestamp")))?;
                Ok(if naive { TimeColumn::Naive(a, zone) } else { TimeColumn::Micros(a) })
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
                let t = as_text(col).map_err(|e| Error::Input(format!("{file}: column '{name}': {e}")))?;
                Ok(TimeColumn::Text(t.into_owned(), zone))
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
            TimeColumn::Naive(a, zone) => {
                if a.is_null(i) {
                    return Ok(None);
                }
                let Some(zone) = zone else {
                    return Ok(Some(a.value(i)));
                };
                let naive = chrono::DateTime::from_timestamp_micros(a.value(i))
                    .ok_or(BadTime)?
                    .naive_utc();
                in_zone(naive, *zone).map(Some).ok_or(BadTime)
            }
            TimeColumn::Text(a, zone) => {
                if a.is_null(i) || a.value(i).trim().is_empty() {
                    return Ok(None);
                }
                parse_time_in(a.value(i), *zone).map(Some).ok_or(BadTime)
            }
        }
    }
}

/// Parse RFC 3339 (any offset) to microseconds since the epoch, UTC.
pub fn parse_time(s: &str) -> Option<i64> {
    parse_time_in(s, None)
}

/// Parse a time to microseconds since the epoch, UTC: RFC 3339 or ISO 8601
/// with an offset (`+01:00`, `+0100`, `Z`), or without one (a `T` or a
/// space between date and time), then read in `zone` (UTC when `None`).
pub fn parse_time_in(s: &str, zone: Zone) -> Option<i64> {
    let s = s.trim();
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp_micros());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(d) = chrono::DateTime::parse_from_str(s, f) {
            return Some(d.timestamp_micros());
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return match zone {
                None => Some(naive.and_utc().timestamp_micros()),
                Some(z) => in_zone(naive, z),
            };
        }
    }
    None
}

/// A wall-clock time in a zone, as UTC microseconds; the earlier of two
/// when clocks go back, none in the hour skipped when they go forward.
fn in_zone(naive: chrono::NaiveDateTime, zone: chrono_tz::Tz) -> Option<i64> {
    use chrono::TimeZone;
    zone.from_local_datetime(&naive)
        .earliest()
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

    /// Reject rows of `batch`.
    pub fn add(&mut self, batch: &RecordBatch, rows: &[Rejected]) -> Result<()> {
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

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn offsets_and_naive_times() {
        let utc = parse_time("2026-11-01T09:14:00Z").unwrap();
        assert_eq!(parse_time("2026-11-01T10:14:00+01:00"), Some(utc));
        assert_eq!(parse_time("2026-11-01T10:14:00+0100"), Some(utc));
        assert_eq!(parse_time("2026-11-01 09:14:00"), Some(utc));
        assert_eq!(parse_time("2026-11-01T09:14:00"), Some(utc));
        let paris = parse_zone(Some("Europe/Paris")).unwrap();
        // 1 November: Paris is UTC+1
        assert_eq!(parse_time_in("2026-11-01 10:14:00", paris), Some(utc));
        // an offset in the text wins over the zone
        assert_eq!(parse_time_in("2026-11-01T09:14:00Z", paris), Some(utc));
        assert_eq!(parse_time("yesterday"), None);
        assert!(parse_zone(Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn parquet_timestamps_without_a_zone_follow_the_same_rule() {
        use arrow::array::TimestampMillisecondArray;
        let utc = parse_time("2026-11-01T09:14:00Z").unwrap();
        let wall = utc / 1000 + 3_600_000; // 10:14 as a wall-clock reading
        let naive: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![wall]));
        let paris = parse_zone(Some("Europe/Paris")).unwrap();
        let col = TimeColumn::new("f", "t", &naive, paris).unwrap();
        assert_eq!(col.get(0), Ok(Some(utc)));
        // no zone given: the wall clock is UTC
        let col = TimeColumn::new("f", "t", &naive, None).unwrap();
        assert_eq!(col.get(0), Ok(Some(utc + 3_600_000_000)));
        // a timestamp with a zone is an instant, whatever --timezone says
        let instant: ArrayRef =
            Arc::new(TimestampMillisecondArray::from(vec![utc / 1000]).with_timezone("UTC"));
        let col = TimeColumn::new("f", "t", &instant, paris).unwrap();
        assert_eq!(col.get(0), Ok(Some(utc)));
    }
}
