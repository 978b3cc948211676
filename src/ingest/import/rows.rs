//! An import's opt-outs in columns, as the store reads new rows
//! ([`NewRows`]): what a row needs of its event, 32 bytes a row where an
//! [`Event`] takes 112 and three shared strings. Ids are made when they
//! are written.

use std::sync::Arc;

use arrow::array::RecordBatch;

use crate::error::{Error, Result};
use crate::event::{Action, Event, EventId, Source};
use crate::store::rows::NewRows;
use crate::store::Erasures;

/// The id of an imported opt-out whose row hashes to `h`
/// ([`super::import_hash`]): `import#` and the hash in 16 hex digits.
fn import_id_bytes(h: u64) -> [u8; 23] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = *b"import#0000000000000000";
    for (i, d) in id[7..].iter_mut().enumerate() {
        *d = HEX[(h >> (4 * (15 - i))) as usize & 15];
    }
    id
}

/// [`import_id_bytes`] as an id.
pub(super) fn import_id(h: u64) -> EventId {
    // ASCII throughout: never the empty default
    std::str::from_utf8(&import_id_bytes(h))
        .map(EventId::from)
        .unwrap_or_default()
}

/// The rows' columns: of one batch as it is read, or of the whole import.
#[derive(Default)]
pub(super) struct Columns {
    pub(super) contact: Vec<u64>,
    pub(super) at: Vec<i64>,
    /// What each row's id is made of ([`super::import_hash`]).
    pub(super) id: Vec<u64>,
    /// Codes into [`ImportRows::names`].
    pub(super) scope: Vec<u32>,
    /// Indices into [`ImportRows::files`] (left empty in a batch's).
    file: Vec<u32>,
}

impl Columns {
    pub(super) fn reserve(&mut self, n: usize) {
        // a hint: a column that cannot have it grows as it would have
        let _ = self.contact.try_reserve_exact(n);
        let _ = self.at.try_reserve_exact(n);
        let _ = self.id.try_reserve_exact(n);
        let _ = self.scope.try_reserve_exact(n);
        let _ = self.file.try_reserve_exact(n);
    }

    /// Keep the rows whose flag is set, in order.
    fn retain(&mut self, keep: &[bool]) {
        fn keep_in<T: Copy>(v: &mut Vec<T>, keep: &[bool]) {
            let mut flags = keep.iter();
            v.retain(|_| flags.next().copied().unwrap_or(false));
            v.shrink_to_fit();
        }
        keep_in(&mut self.contact, keep);
        keep_in(&mut self.at, keep);
        keep_in(&mut self.id, keep);
        keep_in(&mut self.scope, keep);
        keep_in(&mut self.file, keep);
    }
}

/// An import's opt-outs, in columns.
pub struct ImportRows {
    account: Arc<str>,
    /// Scope names, by code.
    names: Vec<Arc<str>>,
    /// Their scope hashes.
    scope_hashes: Vec<u64>,
    /// The files read, by index: each row's `via`.
    files: Vec<Arc<str>>,
    pub(super) columns: Columns,
    /// The ids of the rows of erased numbers, by row, ascending.
    renamed: Vec<(u32, EventId)>,
}

impl ImportRows {
    /// No rows yet, for an account, with these scope names by code.
    pub(super) fn new(account: &str, names: Vec<Arc<str>>) -> ImportRows {
        ImportRows {
            account: account.into(),
            scope_hashes: names
                .iter()
                .map(|n| crate::store::keys::scope_hash(account, n))
                .collect(),
            names,
            files: Vec::new(),
            columns: Columns::default(),
            renamed: Vec::new(),
        }
    }

    /// The scope names, by code.
    pub(super) fn scope_names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// Add a batch's rows, read from `file`.
    pub(super) fn append(&mut self, rows: Columns, file: &Arc<str>) -> Result<()> {
        if self.files.last().is_none_or(|f| **f != **file) {
            self.files.push(file.clone());
        }
        let index = u32::try_from(self.files.len() - 1)
            .map_err(|_| Error::Usage("an import of more than 4 billion files".into()))?;
        let c = &mut self.columns;
        c.file.extend(std::iter::repeat_n(index, rows.contact.len()));
        c.contact.extend(rows.contact);
        c.at.extend(rows.at);
        c.id.extend(rows.id);
        c.scope.extend(rows.scope);
        Ok(())
    }

    fn renamed(&self, i: usize) -> Option<&EventId> {
        if self.renamed.is_empty() {
            return None;
        }
        self.renamed
            .binary_search_by_key(&(i as u32), |r| r.0)
            .ok()
            .map(|at| &self.renamed[at].1)
    }
}

impl NewRows for ImportRows {
    fn len(&self) -> usize {
        self.columns.contact.len()
    }

    fn erase(&mut self, erasures: &Erasures) {
        use rayon::prelude::*;
        let keys: Vec<u64> = self
            .columns
            .contact
            .par_iter()
            .map(|&c| erasures.key_of(c))
            .collect();
        for (i, k) in keys.into_iter().enumerate() {
            if k != self.columns.contact[i] {
                self.columns.contact[i] = k;
                if let Some(id) = erasures.id_of_erased(&import_id(self.columns.id[i])) {
                    self.renamed.push((i as u32, id.into()));
                }
            }
        }
    }

    fn id_hash(&self, i: usize) -> u64 {
        match self.renamed(i) {
            Some(id) => xxhash_rust::xxh3::xxh3_64(id.as_bytes()),
            None => xxhash_rust::xxh3::xxh3_64(&import_id_bytes(self.columns.id[i])),
        }
    }

    fn retain(&mut self, keep: &[bool]) {
        self.columns.retain(keep);
        // a renamed row's new place: the rows kept before it
        let mut kept = 0u32;
        let mut row = 0usize;
        let mut renamed = Vec::new();
        for (i, id) in std::mem::take(&mut self.renamed) {
            while row < i as usize {
                kept += u32::from(keep.get(row).copied().unwrap_or(false));
                row += 1;
            }
            if keep.get(i as usize).copied().unwrap_or(false) {
                renamed.push((kept, id));
            }
        }
        self.renamed = renamed;
    }

    fn keyed(&self) -> Vec<(u64, u64, u32)> {
        use rayon::prelude::*;
        self.columns
            .contact
            .par_iter()
            .zip(&self.columns.scope)
            .enumerate()
            .map(|(i, (&c, &s))| (self.scope_hashes[s as usize], c, i as u32))
            .collect()
    }

    fn names(&self, i: usize) -> (&str, &str) {
        (&self.account, &self.names[self.columns.scope[i] as usize])
    }

    fn at(&self, i: usize) -> i64 {
        self.columns.at[i]
    }

    fn opt_out(&self, _: usize) -> bool {
        true
    }

    fn event_id(&self, i: usize) -> EventId {
        self.renamed(i)
            .cloned()
            .unwrap_or_else(|| import_id(self.columns.id[i]))
    }

    fn batch(&self, rows: std::ops::Range<usize>) -> RecordBatch {
        use arrow::array::{ArrayRef, StringArray, StringBuilder, TimestampMicrosecondArray, UInt64Array};
        let n = rows.len();
        let mut ids = StringBuilder::with_capacity(n, n * 23);
        for i in rows.clone() {
            match self.renamed(i) {
                Some(id) => ids.append_value(id),
                None => ids.append_value(
                    std::str::from_utf8(&import_id_bytes(self.columns.id[i])).unwrap_or_default(),
                ),
            }
        }
        let same =
            |v: &str| -> ArrayRef { Arc::new(StringArray::from_iter_values(std::iter::repeat_n(v, n))) };
        let text = |names: &[Arc<str>], codes: &[u32]| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(
                codes[rows.clone()].iter().map(|&c| &*names[c as usize]),
            ))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ids.finish()),
            same(&self.account),
            text(&self.names, &self.columns.scope),
            Arc::new(UInt64Array::from(self.columns.contact[rows.clone()].to_vec())),
            Arc::new(
                TimestampMicrosecondArray::from(self.columns.at[rows.clone()].to_vec())
                    .with_timezone(crate::event::UTC),
            ),
            same(Action::OptOut.as_str()),
            same(Source::Import.as_str()),
            arrow::array::new_null_array(&arrow::datatypes::DataType::Utf8, n),
            text(&self.files, &self.columns.file),
        ];
        // the columns are built to the ledger's schema, so this cannot fail
        RecordBatch::try_new(crate::event::schema(), columns)
            .unwrap_or_else(|_| RecordBatch::new_empty(crate::event::schema()))
    }

    fn into_events(self) -> Vec<Event> {
        (0..self.len())
            .map(|i| Event {
                event_id: self.event_id(i),
                account: self.account.clone(),
                scope: self.names[self.columns.scope[i] as usize].clone(),
                contact: self.columns.contact[i],
                at: self.columns.at[i],
                action: Action::OptOut,
                source: Source::Import,
                keyword: None,
                via: Some(self.files[self.columns.file[i] as usize].clone()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::import_hash;
    use super::*;

    /// Rows of two scopes and two files, one of them renamed (as an
    /// erased number's is).
    fn sample() -> ImportRows {
        let names: Vec<Arc<str>> = vec!["account".into(), "+447700900001".into()];
        let mut key = Vec::new();
        let n = 300u64;
        let contact: Vec<u64> = (0..n).map(|i| 447_700_900_000 + i % 97).collect();
        let at: Vec<i64> = (0..n).map(|i| 1_790_000_000_000_000 + (i as i64 % 5)).collect();
        let scope: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
        let id = (0..n as usize)
            .map(|i| {
                import_hash(
                    &mut key,
                    "acct01",
                    &names[scope[i] as usize],
                    contact[i],
                    Some(at[i]),
                )
            })
            .collect();
        let mut rows = ImportRows::new("acct01", names);
        rows.files = vec!["a.csv".into(), "b.parquet".into()];
        rows.columns = Columns {
            contact,
            at,
            id,
            scope,
            file: (0..n).map(|i| u32::from(i >= 150)).collect(),
        };
        rows.renamed = vec![(7, "import#erased-00000000000000ff".into()), (201, "x#y".into())];
        rows
    }

    #[test]
    fn import_rows_are_the_events_they_stand_for() {
        let rows = sample();
        let events = sample().into_events();
        assert_eq!(events[7].event_id, "import#erased-00000000000000ff");
        assert_eq!(&*events[160].via.clone().unwrap_or_default(), "b.parquet");
        // the ledger gets the same rows as from the events
        for range in [0..300, 5..9, 150..151, 0..0] {
            assert_eq!(rows.batch(range.clone()), crate::event::to_batch(&events[range]));
        }
        for i in 0..rows.len() {
            assert_eq!(rows.id_hash(i), events[i].id_hash(), "{i}");
            assert_eq!(rows.event_id(i), events[i].event_id);
            let (a, s) = rows.names(i);
            assert_eq!((a, s), (&*events[i].account, &*events[i].scope));
            assert_eq!(
                rows.order(i, (i * 7) % 300),
                events[i].order(&events[(i * 7) % 300])
            );
        }
        let keyed = rows.keyed();
        assert_eq!(keyed, events.keyed());
    }

    #[test]
    fn kept_import_rows_keep_their_ids() {
        let keep: Vec<bool> = (0..300).map(|i| i % 3 != 0 || i == 7).collect();
        let mut rows = sample();
        rows.retain(&keep);
        let mut events = sample().into_events();
        NewRows::retain(&mut events, &keep);
        assert_eq!(rows.len(), events.len());
        assert_eq!(rows.into_events(), events);
        // a renamed row dropped, and one kept
        assert!(events
            .iter()
            .any(|e| e.event_id == "import#erased-00000000000000ff"));
        assert!(!events.iter().any(|e| e.event_id == "x#y"));
    }
}
