//! The suppression list as `export` writes it: every key whose last event
//! is an opt-out, in (account, scope, contact) order, with its time, source
//! and keyword. Built from the key runs, which already say where each key's
//! last event lies; from the ledger only the source and keyword of those
//! rows are read, one file at a time. Loading every event of the ledger
//! instead ([`Store::state`]) costs about 400 bytes an event.

use std::sync::Arc;

use arrow::array::{Array, StringArray, TimestampMicrosecondArray, UInt64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::index::{self, ScopeName};
use super::{corrupt, read_verified, Store, FIX_REBUILD, FIX_RESTORE};
use crate::error::Result;
use crate::event::Source;
use crate::fasthash::FastMap;

/// One opted-out key of the suppression list.
#[derive(Clone, Debug)]
pub struct OptOut {
    /// Index of its (account, scope) in [`SuppressionList::scopes`].
    pub scope: u32,
    /// E.164 digits of the contact.
    pub contact: u64,
    /// When it was opted out (µs, UTC).
    pub at: i64,
    /// Where the opt-out came from.
    pub source: Source,
    /// The keyword, for replies.
    pub keyword: Option<Arc<str>>,
}

/// The suppression list: opted-out keys sorted by (account, scope,
/// contact).
#[derive(Debug, Default)]
pub struct SuppressionList {
    /// (account, scope) names, sorted.
    pub scopes: Vec<ScopeName>,
    /// The keys.
    pub opt_outs: Vec<OptOut>,
}

/// A key whose source and keyword are still to be read.
struct Wanted {
    scope: u32,
    contact: u64,
    at: i64,
    ledger: u32,
    row: u32,
}

impl Store {
    /// The suppression list, of one account or all.
    pub fn suppression_list(&self, account: Option<&str>) -> Result<SuppressionList> {
        let runs = self.key_runs()?;
        let mut scopes: Vec<ScopeName> = runs.iter().flat_map(|r| r.scopes.iter().cloned()).collect();
        scopes.retain(|s| account.is_none_or(|a| s.account == a));
        scopes.sort_by(|a, b| (&a.account, &a.scope).cmp(&(&b.account, &b.scope)));
        scopes.dedup_by(|a, b| a.hash == b.hash);
        let rank: FastMap<u64, u32> = scopes
            .iter()
            .enumerate()
            .map(|(i, s)| (s.hash, i as u32))
            .collect();
        // the runs merged as a stream: only the opt-outs wanted are kept
        let mut wanted: Vec<Wanted> = index::merged_keys(&runs)
            .filter(|e| e.opt_out)
            .filter_map(|e| {
                Some(Wanted {
                    scope: *rank.get(&e.scope)?,
                    contact: e.contact,
                    at: e.at,
                    ledger: e.ledger,
                    row: e.row,
                })
            })
            .collect();
        drop(runs);
        wanted.sort_unstable_by_key(|w| (w.ledger, w.row));
        let mut opt_outs = Vec::with_capacity(wanted.len());
        for file in wanted.chunk_by(|a, b| a.ledger == b.ledger) {
            self.read_sources(file, &mut opt_outs)?;
        }
        opt_outs.sort_unstable_by_key(|o| (o.scope, o.contact));
        Ok(SuppressionList { scopes, opt_outs })
    }

    /// Read the source and keyword of these rows (one ledger file, sorted
    /// by row), checking that the rows are the keys' events.
    fn read_sources(&self, rows: &[Wanted], out: &mut Vec<OptOut>) -> Result<()> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let r = self.ledger_file(first.ledger)?;
        let bytes = read_verified(&self.dir, r, FIX_RESTORE)?;
        let bad = |why: String| corrupt(&self.dir, &r.file, &why, FIX_RESTORE);
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| bad(e.to_string()))?;
        let columns = ["contact", "at", "source", "keyword"];
        let schema = builder.parquet_schema();
        let indexes: Vec<usize> = columns
            .iter()
            .map(|c| {
                (0..schema.num_columns())
                    .find(|&i| schema.column(i).name() == *c)
                    .ok_or_else(|| bad(format!("no column '{c}'")))
            })
            .collect::<Result<_>>()?;
        let mask = ProjectionMask::leaves(schema, indexes);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let disagree = || corrupt(&self.dir, "index", "it disagrees with the ledger", FIX_REBUILD);
        let mut keywords: FastMap<String, Arc<str>> = FastMap::default();
        let mut next = rows.iter().peekable();
        let mut base = 0u32;
        for batch in reader {
            let batch = batch.map_err(|e| bad(e.to_string()))?;
            let col = |name: &str| {
                batch
                    .column_by_name(name)
                    .ok_or_else(|| bad(format!("no column '{name}'")))
            };
            let contact = col("contact")?
                .as_any()
                .downcast_ref::<UInt64Array>()
                .ok_or_else(|| bad("contact is not UInt64".into()))?;
            let at = col("at")?
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .ok_or_else(|| bad("at is not a timestamp".into()))?;
            let source = col("source")?
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| bad("source is not text".into()))?;
            let keyword = col("keyword")?
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| bad("keyword is not text".into()))?;
            let end = base + batch.num_rows() as u32;
            while let Some(w) = next.next_if(|w| w.row < end) {
                let i = (w.row - base) as usize;
                if contact.value(i) != w.contact || at.value(i) != w.at {
                    return Err(disagree());
                }
                let kw = (!keyword.is_null(i)).then(|| {
                    let k = keyword.value(i);
                    keywords.entry(k.to_string()).or_insert_with(|| k.into()).clone()
                });
                out.push(OptOut {
                    scope: w.scope,
                    contact: w.contact,
                    at: w.at,
                    source: Source::parse(source.value(i)).ok_or_else(|| bad("bad source value".into()))?,
                    keyword: kw,
                });
            }
            base = end;
        }
        if next.peek().is_some() {
            return Err(disagree());
        }
        Ok(())
    }
}
