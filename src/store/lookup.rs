//! Looking one contact up: its deciding events found in the key runs in
//! place, and only the ledger rows that hold them read.

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::damage::{corrupt, damaged, Fix};
use super::files::{read_events, read_verified};
use super::keys::{Entry, KeyRun, ScopeName};
use super::manifest::FileRef;
use super::{blocks, damage, key_lookup, Fault, Store};
use crate::error::Result;
use crate::event::{self, Event};

/// The store's key runs opened for lookups of a few contacts, newest
/// first (see [`Store::key_lookups`]).
pub struct KeyLookups(Vec<RunLookup>);

/// A key run opened for lookups.
enum RunLookup {
    /// Verified whole (a run written before blocks files).
    Whole(KeyRun),
    /// Verified by the blocks each lookup reads.
    Blocks(key_lookup::KeyLookup),
}

impl RunLookup {
    fn scopes(&self) -> &[ScopeName] {
        match self {
            RunLookup::Whole(r) => &r.scopes,
            RunLookup::Blocks(r) => &r.scopes,
        }
    }

    fn get(&self, scope: u64, contact: u64) -> std::result::Result<Option<Entry>, Fault> {
        match self {
            RunLookup::Whole(r) => Ok(r.get(scope, contact)),
            RunLookup::Blocks(r) => r.get(scope, contact),
        }
    }
}

impl Store {
    /// The last events of a contact in an account (SPEC §3.4's deciding
    /// events): the account scope and the given sender's, or every sender
    /// scope when `sender` is `None`; oldest first. Searches the key runs
    /// in place and reads only the ledger files that hold the answers.
    pub fn deciding(&self, account: &str, sender: Option<&str>, contact: u64) -> Result<Vec<Event>> {
        self.deciding_in(&self.key_lookups()?, account, sender, contact)
    }

    /// [`Store::deciding`] with key runs opened once for several lookups
    /// (`check` asks every account).
    pub fn deciding_in(
        &self,
        runs: &KeyLookups,
        account: &str,
        sender: Option<&str>,
        contact: u64,
    ) -> Result<Vec<Event>> {
        let runs = &runs.0;
        let mut scopes: Vec<&ScopeName> = runs
            .iter()
            .flat_map(|r| r.scopes().iter())
            .filter(|s| {
                s.account == account
                    && (s.scope == event::ACCOUNT_SCOPE || sender.is_none_or(|x| x == s.scope))
            })
            .collect();
        scopes.sort();
        scopes.dedup();
        let mut found: Vec<Entry> = Vec::new();
        for s in scopes {
            // the newest run that has the key is right
            for (r, fr) in runs.iter().zip(self.manifest.keys.iter().rev()) {
                // a run names every scope it has records of
                if !r.scopes().iter().any(|x| x.hash == s.hash) {
                    continue;
                }
                let got = r
                    .get(s.hash, contact)
                    .map_err(|why| damaged(&self.dir, &fr.file, why, Fix::Rebuild))?;
                if let Some(e) = got {
                    found.push(e);
                    break;
                }
            }
        }
        found.sort_by_key(|e| (e.ledger, e.row));
        let mut out = Vec::new();
        for same in found.chunk_by(|a, b| a.ledger == b.ledger) {
            let r = self.ledger_file(same[0].ledger)?;
            let rows: Vec<u32> = same.iter().map(|w| w.row).collect();
            let mut events = self.ledger_rows(r, &rows)?;
            for (w, e) in same.iter().zip(&mut events) {
                // a ledger read by pages has no time (see `ledger_rows`):
                // the key run's, once the row is shown to be this
                // contact's event in this scope
                let same_key =
                    e.contact == w.contact && super::keys::scope_hash(&e.account, &e.scope) == w.scope;
                if e.at == NO_TIME && same_key {
                    e.at = w.at;
                }
                if !same_key || e.at != w.at {
                    return Err(corrupt(
                        &self.dir,
                        "index",
                        "it disagrees with the ledger",
                        Fix::Rebuild,
                    ));
                }
            }
            out.extend(events);
        }
        out.sort_by(|a, b| a.order(b));
        Ok(out)
    }

    /// The key runs for a few lookups, newest first: those with a blocks
    /// file verified only where a lookup reads.
    pub fn key_lookups(&self) -> Result<KeyLookups> {
        self.whole("looking up events (check)")?;
        self.manifest
            .keys
            .iter()
            .rev()
            .map(|r| match self.checked(r, Fix::Rebuild, false)? {
                Some(c) => key_lookup::KeyLookup::new(c)
                    .map(RunLookup::Blocks)
                    .map_err(|why| damaged(&self.dir, &r.file, why, Fix::Rebuild)),
                None => self.open_run(r, KeyRun::open).map(RunLookup::Whole),
            })
            .collect::<Result<Vec<_>>>()
            .map(KeyLookups)
    }

    /// A store file with its blocks, when it has a blocks file: `mapped`
    /// for a reader of much of it, else read by positioned reads (a few
    /// lookups).
    pub(super) fn checked(
        &self,
        r: &FileRef,
        fix: damage::Fix,
        mapped: bool,
    ) -> Result<Option<blocks::Checked>> {
        let Some(b) = r.blocks.as_deref() else {
            return Ok(None);
        };
        let table = read_verified(&self.dir, b, Fix::Rebuild)?;
        let table = blocks::Blocks::decode(&table, r.bytes as usize)
            .map_err(|why| damaged(&self.dir, &b.file, why, Fix::Rebuild))?;
        blocks::Checked::open_as(&self.dir.join(&r.file), r.bytes, table, mapped)
            .map(Some)
            .map_err(|why| damaged(&self.dir, &r.file, why, fix))
    }

    /// The events at these rows (sorted) of a ledger file. With a blocks
    /// file, only the pages that hold them are read (through the file's
    /// page index), and only the blocks those pages lie in are verified.
    fn ledger_rows(&self, r: &FileRef, rows: &[u32]) -> Result<Vec<Event>> {
        use parquet::arrow::arrow_reader::{
            ArrowReaderMetadata, ArrowReaderOptions, RowSelection, RowSelector,
        };
        use parquet::file::metadata::{ColumnChunkMask, PageIndexPolicy, ParquetMetaDataReader};
        let disagrees = || corrupt(&self.dir, "index", "it disagrees with the ledger", Fix::Rebuild);
        let Some(checked) = self.checked(r, Fix::Restore, false)? else {
            let all = read_events(&self.dir, r, Fix::Restore)?;
            return rows
                .iter()
                .map(|&i| all.get(i as usize).cloned().ok_or_else(disagrees))
                .collect();
        };
        let bad = |why: String| corrupt(&self.dir, &r.file, &why, Fix::Restore);
        let src = blocks::CheckedSource::new(checked);
        // the footer first: which row groups hold the rows says whose page
        // index to read (all of it, every row group and column, cost more
        // than the rows)
        let meta = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Skip)
            .parse_and_finish(&src)
            .map_err(|e| bad(e.to_string()))?;
        // every column but the time: its dictionary page (a megabyte, read
        // and decompressed whole for one value) cost more than the rest of
        // a row; the key run has the same time
        let leaves = meta.file_metadata().schema_descr_ptr();
        let columns: Vec<usize> = (0..leaves.num_columns())
            .filter(|&i| leaves.column(i).name() != "at")
            .collect();
        let mask = parquet::arrow::ProjectionMask::leaves(&leaves, columns.iter().copied());
        // every wanted row of the file in one read: a page that holds two
        // of them is decompressed once
        let mut want: Vec<u32> = rows.to_vec();
        want.sort_unstable();
        want.dedup();
        let mut groups = Vec::new();
        let mut selectors = Vec::new();
        let mut first = 0u64;
        let mut next = want.iter().peekable();
        for (g, rg) in meta.row_groups().iter().enumerate() {
            let n = u64::try_from(rg.num_rows()).unwrap_or(0);
            let mut at = 0u64;
            while let Some(&&row) = next.peek() {
                let row = u64::from(row);
                if row >= first + n {
                    break;
                }
                next.next();
                selectors.push(RowSelector::skip((row - first - at) as usize));
                selectors.push(RowSelector::select(1));
                at = row - first + 1;
            }
            if at > 0 {
                groups.push(g);
                selectors.push(RowSelector::skip((n - at) as usize));
            }
            first += n;
        }
        if next.peek().is_some() {
            return Err(disagrees());
        }
        let mut index = ParquetMetaDataReader::new_with_metadata(meta)
            .with_column_index_policy(PageIndexPolicy::Skip)
            .with_offset_index_policy(PageIndexPolicy::Required)
            .with_offset_index_mask(ColumnChunkMask::row_groups_and_columns(
                groups.iter().copied(),
                columns,
            ));
        index.read_page_indexes(&src).map_err(|e| bad(e.to_string()))?;
        let meta = index.finish().map_err(|e| bad(e.to_string()))?;
        let meta = ArrowReaderMetadata::try_new(std::sync::Arc::new(meta), ArrowReaderOptions::new())
            .map_err(|e| bad(e.to_string()))?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(src, meta)
            .with_row_groups(groups)
            .with_projection(mask)
            .with_row_selection(RowSelection::from(selectors))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let mut read = Vec::with_capacity(want.len());
        for batch in reader {
            let batch = batch.map_err(|e| bad(e.to_string()))?;
            event::from_batch(&with_no_time(batch).map_err(bad)?, &mut read).map_err(bad)?;
        }
        if read.len() != want.len() {
            return Err(disagrees());
        }
        let out = rows
            .iter()
            .map(|r| {
                want.binary_search(r)
                    .map(|i| read[i].clone())
                    .map_err(|_| disagrees())
            })
            .collect::<Result<Vec<Event>>>()?;
        Ok(out)
    }
}

/// The time of an event read without its ledger's `at` column, until the
/// key run's is put in.
const NO_TIME: i64 = i64::MIN;

/// Ledger rows read without their time, with an `at` column of
/// [`NO_TIME`] added.
fn with_no_time(batch: arrow::array::RecordBatch) -> std::result::Result<arrow::array::RecordBatch, String> {
    use arrow::array::{ArrayRef, TimestampMicrosecondArray};
    use std::sync::Arc;
    if batch.column_by_name("at").is_some() {
        return Ok(batch);
    }
    let at = event::schema();
    let at = at.field_with_name("at").map_err(|e| e.to_string())?;
    let mut fields: Vec<_> = batch.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(at.clone()));
    let mut columns = batch.columns().to_vec();
    let times = TimestampMicrosecondArray::from(vec![NO_TIME; batch.num_rows()]).with_timezone(event::UTC);
    columns.push(Arc::new(times) as ArrayRef);
    arrow::array::RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
        .map_err(|e| e.to_string())
}
