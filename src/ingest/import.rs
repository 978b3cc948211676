//! Manual imports → opt-outs mapped to the listed senders or the whole
//! account (SPEC §3.2). A row's own `sender` cell overrides the mapping.

use std::sync::Arc;

use crate::config::Account;
use crate::error::{Error, Result};
use arrow::array::RecordBatch;

use crate::event::{Action, Event, EventId, Source, ACCOUNT_SCOPE};
use crate::ingest::{BadTime, Rejected, Rejects, TimeColumn};
use crate::io::input::{Batch, Dataset};
use crate::phone::{normalize, normalize_sender};
use crate::store::rows::NewRows;
use crate::store::Erasures;
use crate::util::columns::cell;

/// Where an import's opt-outs apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// The whole account.
    AccountWide,
    /// Each of these (normalized) senders.
    Senders(Vec<String>),
}

/// Column names of an import file.
#[derive(Clone, Debug)]
pub struct ImportColumns {
    /// Phone column.
    pub phone: String,
    /// Optional per-row sender column.
    pub sender: String,
    /// Optional event time column.
    pub time: String,
    /// `--default-country`: how national numbers are read (else the
    /// account's `default_country`; else they are rejected).
    pub country: Option<crate::phone::DefaultCountry>,
    /// The zone of times written without an offset (UTC when `None`).
    pub zone: crate::ingest::Zone,
    /// How CSV files are read.
    pub csv: crate::io::input::CsvShape,
}

impl ImportColumns {
    /// The default name of the phone column.
    pub const PHONE: &'static str = "phone";
    /// The default name of the (optional) sender column.
    pub const SENDER: &'static str = "sender";
    /// The default name of the (optional) time column.
    pub const TIME: &'static str = "occurred_at";
}

impl Default for ImportColumns {
    fn default() -> Self {
        ImportColumns {
            phone: Self::PHONE.into(),
            sender: Self::SENDER.into(),
            time: Self::TIME.into(),
            country: None,
            zone: None,
            csv: Default::default(),
        }
    }
}

/// Resolve `--senders A,B` against the account; errors name the bad one.
pub fn resolve_senders(account: &Account, list: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let id = normalize_sender(raw)
            .filter(|id| account.sender(id).is_some())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--senders: '{raw}' is not a sender of account '{}'",
                    account.id
                ))
            })?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if out.is_empty() {
        return Err(Error::Usage("--senders names no sender".into()));
    }
    Ok(out)
}

/// A row's scope, as an index into the scope names of [`read`]: the
/// account scope first, then the account's senders in config order.
type ScopeCode = u32;
/// An empty `sender` cell: the import's mapping applies.
const MAPPED: ScopeCode = u32::MAX;
/// A `sender` cell that names no sender of the account.
const UNKNOWN: ScopeCode = u32::MAX - 1;

fn scope_code(account: &Account, raw: &str) -> ScopeCode {
    if raw.trim().eq_ignore_ascii_case(ACCOUNT_SCOPE) {
        return 0;
    }
    normalize_sender(raw)
        .and_then(|id| account.sender_position(&id))
        .map_or(UNKNOWN, |p| p as ScopeCode + 1)
}

/// The hash an imported opt-out's stable id is made of: a hash of the
/// account, scope, contact and the row's time as given (empty without
/// one), so that a file imported twice adds nothing the second time.
/// Written without `format!` (a fifth of an import's time when it was):
/// the bytes hashed and the id are what they always were (see the test).
fn import_hash(key: &mut Vec<u8>, account: &str, scope: &str, contact: u64, at: Option<i64>) -> u64 {
    key.clear();
    for part in [account, scope] {
        key.extend_from_slice(part.as_bytes());
        key.push(0x1f);
    }
    key.push(b'+');
    key.extend_from_slice(itoa::Buffer::new().format(contact).as_bytes());
    key.push(0x1f);
    if let Some(t) = at {
        key.extend_from_slice(itoa::Buffer::new().format(t).as_bytes());
    }
    xxhash_rust::xxh3::xxh3_64(key)
}

/// The id of an imported opt-out whose row hashes to `h`:
/// `import#` and the hash in 16 hex digits.
fn import_id_bytes(h: u64) -> [u8; 23] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = *b"import#0000000000000000";
    for (i, d) in id[7..].iter_mut().enumerate() {
        *d = HEX[(h >> (4 * (15 - i))) as usize & 15];
    }
    id
}

/// [`import_id_bytes`] as an id.
fn import_id(h: u64) -> EventId {
    // ASCII throughout: never the empty default
    std::str::from_utf8(&import_id_bytes(h))
        .map(EventId::from)
        .unwrap_or_default()
}

/// An import's opt-outs, in columns: 32 bytes a row, where an [`Event`]
/// takes 112 and three shared strings (the ids are made when written).
pub struct ImportRows {
    account: Arc<str>,
    /// Scope names, by code.
    names: Vec<Arc<str>>,
    /// Their scope hashes.
    scope_hashes: Vec<u64>,
    /// The files read, by index: each row's `via`.
    files: Vec<Arc<str>>,
    contact: Vec<u64>,
    at: Vec<i64>,
    /// What each row's id is made of ([`import_hash`]).
    id: Vec<u64>,
    scope: Vec<u32>,
    file: Vec<u32>,
    /// The ids of the rows of erased numbers, by row, ascending.
    renamed: Vec<(u32, EventId)>,
}

impl ImportRows {
    fn renamed(&self, i: usize) -> Option<&EventId> {
        if self.renamed.is_empty() {
            return None;
        }
        self.renamed
            .binary_search_by_key(&(i as u32), |r| r.0)
            .ok()
            .map(|at| &self.renamed[at].1)
    }

    /// Add a chunk's rows, read from the file of index `file`.
    fn extend(&mut self, chunk: Chunk, file: u32) {
        self.file.extend(std::iter::repeat_n(file, chunk.contact.len()));
        self.contact.extend(chunk.contact);
        self.at.extend(chunk.at);
        self.id.extend(chunk.id);
        self.scope.extend(chunk.scope);
    }
}

/// One batch's rows.
#[derive(Default)]
struct Chunk {
    contact: Vec<u64>,
    at: Vec<i64>,
    id: Vec<u64>,
    scope: Vec<u32>,
}

impl Chunk {
    fn reserve(&mut self, n: usize) {
        self.contact.reserve(n);
        self.at.reserve(n);
        self.id.reserve(n);
        self.scope.reserve(n);
    }
}

impl NewRows for ImportRows {
    fn len(&self) -> usize {
        self.contact.len()
    }

    fn erase(&mut self, erasures: &Erasures) {
        use rayon::prelude::*;
        let keys: Vec<u64> = self.contact.par_iter().map(|&c| erasures.key_of(c)).collect();
        for (i, k) in keys.into_iter().enumerate() {
            if k != self.contact[i] {
                self.contact[i] = k;
                if let Some(id) = erasures.id_of_erased(&import_id(self.id[i])) {
                    self.renamed.push((i as u32, id.into()));
                }
            }
        }
    }

    fn id_hash(&self, i: usize) -> u64 {
        match self.renamed(i) {
            Some(id) => xxhash_rust::xxh3::xxh3_64(id.as_bytes()),
            None => xxhash_rust::xxh3::xxh3_64(&import_id_bytes(self.id[i])),
        }
    }

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
        self.contact
            .par_iter()
            .zip(&self.scope)
            .enumerate()
            .map(|(i, (&c, &s))| (self.scope_hashes[s as usize], c, i as u32))
            .collect()
    }

    fn names(&self, i: usize) -> (&str, &str) {
        (&self.account, &self.names[self.scope[i] as usize])
    }

    fn at(&self, i: usize) -> i64 {
        self.at[i]
    }

    fn opt_out(&self, _: usize) -> bool {
        true
    }

    fn event_id(&self, i: usize) -> EventId {
        self.renamed(i).cloned().unwrap_or_else(|| import_id(self.id[i]))
    }

    fn batch(&self, rows: std::ops::Range<usize>) -> RecordBatch {
        use arrow::array::{ArrayRef, StringArray, StringBuilder, TimestampMicrosecondArray, UInt64Array};
        let n = rows.len();
        let mut ids = StringBuilder::with_capacity(n, n * 23);
        for i in rows.clone() {
            match self.renamed(i) {
                Some(id) => ids.append_value(id),
                None => {
                    ids.append_value(std::str::from_utf8(&import_id_bytes(self.id[i])).unwrap_or_default())
                }
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
            text(&self.names, &self.scope),
            Arc::new(UInt64Array::from(self.contact[rows.clone()].to_vec())),
            Arc::new(
                TimestampMicrosecondArray::from(self.at[rows.clone()].to_vec())
                    .with_timezone(crate::event::UTC),
            ),
            same(Action::OptOut.as_str()),
            same(Source::Import.as_str()),
            arrow::array::new_null_array(&arrow::datatypes::DataType::Utf8, n),
            text(&self.files, &self.file),
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
                scope: self.names[self.scope[i] as usize].clone(),
                contact: self.contact[i],
                at: self.at[i],
                action: Action::OptOut,
                source: Source::Import,
                keyword: None,
                via: Some(self.files[self.file[i] as usize].clone()),
            })
            .collect()
    }
}

/// Read an import dataset into opt-outs; unusable rows go to `rejects`.
/// `now` is the event time of rows without `occurred_at`.
pub fn read(
    account: &Account,
    mapping: &Mapping,
    mut data: Dataset,
    cols: &ImportColumns,
    now: i64,
    rejects: &mut Rejects,
) -> Result<ImportRows> {
    let phone_i = data.column(&cols.phone, "--phone-column")?;
    let sender_i = data.schema.index_of(&cols.sender).ok();
    let time_i = data.schema.index_of(&cols.time).ok();
    let mut names: Vec<Arc<str>> = std::iter::once(ACCOUNT_SCOPE)
        .chain(account.senders.iter().map(|s| s.id.as_str()))
        .map(Arc::from)
        .collect();
    let mapped: Vec<ScopeCode> = match mapping {
        Mapping::AccountWide => vec![0],
        Mapping::Senders(list) => list
            .iter()
            .map(|id| match account.sender_position(id) {
                Some(p) => p as ScopeCode + 1,
                None => {
                    names.push(id.as_str().into());
                    (names.len() - 1) as ScopeCode
                }
            })
            .collect(),
    };
    let mut out = ImportRows {
        account: account.id.as_str().into(),
        scope_hashes: names
            .iter()
            .map(|n| crate::store::keys::scope_hash(&account.id, n))
            .collect(),
        names,
        files: Vec::new(),
        contact: Vec::new(),
        at: Vec::new(),
        id: Vec::new(),
        scope: Vec::new(),
        file: Vec::new(),
        renamed: Vec::new(),
    };
    if let Some(rows) = data.total_rows {
        // a hint only: a file may claim more rows than it has
        let rows = (rows.min(1 << 27) as usize) * mapped.len();
        let _ = out.contact.try_reserve_exact(rows);
        let _ = out.at.try_reserve_exact(rows);
        let _ = out.id.try_reserve_exact(rows);
        let _ = out.scope.try_reserve_exact(rows);
        let _ = out.file.try_reserve_exact(rows);
    }
    let country = cols.country.or(account.default_country);
    let names = out.names.clone();
    // batches read on this thread, their rows worked out as tasks of the
    // pool (a few batches in flight), and added in input order
    let mut rows_before = 0u64;
    let source = || {
        let b = data.next()?;
        Some(b.map(|b| {
            let first_row = rows_before + 1;
            rows_before += b.batch.num_rows() as u64;
            (b, first_row)
        }))
    };
    let work = |(b, first_row): (Batch, u64)| -> Result<(Batch, Chunk, Vec<Rejected>)> {
        let file = &*b.file;
        let phones = b.text(phone_i)?;
        let scopes = sender_i
            .map(|i| b.per_row(i, MAPPED, |raw| scope_code(account, raw)))
            .transpose()?;
        let times = time_i
            .map(|i| TimeColumn::new(file, &cols.time, b.batch.column(i), cols.zone))
            .transpose()?;
        let n = b.batch.num_rows();
        let mut out = Chunk::default();
        out.reserve(n * mapped.len());
        let mut bad = Vec::new();
        let mut key = Vec::with_capacity(64);
        for i in 0..n {
            let reject = |why: String| (i as u32, first_row + i as u64, why);
            let Some(contact) = cell(&phones, i).and_then(|p| normalize(p, country)) else {
                bad.push(reject("phone is not a possible number".to_string()));
                continue;
            };
            let at = match times.as_ref().map(|t| t.get(i)) {
                Some(Ok(t)) => t,
                None => None,
                Some(Err(BadTime)) => {
                    bad.push(reject(format!("{} is not an RFC 3339 time", cols.time)));
                    continue;
                }
            };
            let one;
            let codes: &[ScopeCode] = match scopes.as_ref().map_or(MAPPED, |s| s[i]) {
                MAPPED => &mapped,
                UNKNOWN => {
                    bad.push(reject(format!("unknown sender for account '{}'", account.id)));
                    continue;
                }
                code => {
                    one = [code];
                    &one
                }
            };
            for &code in codes {
                out.id.push(import_hash(
                    &mut key,
                    &account.id,
                    &names[code as usize],
                    contact,
                    at,
                ));
                out.contact.push(contact);
                out.at.push(at.unwrap_or(now));
                out.scope.push(code);
            }
        }
        Ok((b, out, bad))
    };
    let add = |(b, chunk, bad): (Batch, Chunk, Vec<Rejected>)| {
        if out.files.last().is_none_or(|f| **f != *b.file) {
            out.files.push(b.file.clone());
        }
        let file = u32::try_from(out.files.len() - 1)
            .map_err(|_| Error::Usage("an import of more than 4 billion files".into()))?;
        out.extend(chunk, file);
        rejects.add(&b.batch, &bad)
    };
    crate::util::ordered::run(rayon::current_num_threads() * 2, source, work, Ok, Ok, add)?;
    Ok(out)
}

/// Import a dataset of opt-outs for one account into a store (the caller
/// holds the lock), mapped account-wide or, with `senders` (a
/// comma-separated list, `*` for account-wide), to those senders. Prints
/// the summary line on stderr and returns its figures.
pub fn ingest(
    store: &mut crate::store::Store,
    account: &str,
    senders: Option<&str>,
    data: Dataset,
    cols: &ImportColumns,
    rejects_path: Option<&std::path::Path>,
) -> Result<crate::summary::ImportSummary> {
    let account = store
        .config
        .account(account)
        .ok_or_else(|| {
            crate::error::Error::Usage(format!(
                "--account '{account}' is not an account in the store's config"
            ))
        })?
        .clone();
    let mapping = match senders {
        Some(list) => Mapping::Senders(resolve_senders(&account, list)?),
        None => Mapping::AccountWide,
    };
    let mut rejects = Rejects::new(rejects_path, &data.schema)?;
    crate::util::trace::mark("import: opened");
    let rows = read(&account, &mapping, data, cols, super::now_micros(), &mut rejects)?;
    let read = rows.len();
    crate::util::trace::mark("import: file read");
    let (new, already_known) = store.ingest_counting(rows)?;
    eprintln!(
        "import: {read} opt-outs read for account '{}', {new} new, {already_known} already in the store",
        account.id,
    );
    if let Some(line) = rejects.summary(rejects_path.is_some()) {
        eprintln!("import: {line}");
    }
    let rejected = rejects.count;
    rejects.finish()?;
    Ok(crate::summary::ImportSummary {
        account: account.id,
        already_known: already_known as u64,
        command: None,
        events_read: read as u64,
        new_events: new as u64,
        rejected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_id_is_the_hash_of_the_row_as_written_before() {
        // ids are kept in stores: the same row must keep its id
        let old = |account: &str, scope: &str, contact: u64, at_key: &str| {
            let key = format!("{account}\u{1f}{scope}\u{1f}+{contact}\u{1f}{at_key}");
            format!("import#{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes()))
        };
        let mut key = Vec::new();
        let at = 1_790_000_000_123_456;
        assert_eq!(
            import_id(import_hash(
                &mut key,
                "acct01",
                "+447700900123",
                447700900456,
                Some(at)
            )),
            old("acct01", "+447700900123", 447700900456, &at.to_string())
        );
        assert_eq!(
            import_id(import_hash(&mut key, "acct01", "account", 15551234567, None)),
            old("acct01", "account", 15551234567, "")
        );
        assert_eq!(
            import_id(import_hash(&mut key, "a", "account", 1, Some(-5))),
            old("a", "account", 1, "-5")
        );
        // a thousand rows: hashes with leading zero digits among them
        for contact in 0..1000u64 {
            let at = (contact % 3 == 0).then_some(contact as i64 * 7_919 - 3_000);
            let at_key = at.map(|t| t.to_string()).unwrap_or_default();
            assert_eq!(
                import_id(import_hash(&mut key, "acct09", "+447700900001", contact, at)),
                old("acct09", "+447700900001", contact, &at_key)
            );
        }
    }

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
        ImportRows {
            account: "acct01".into(),
            scope_hashes: names
                .iter()
                .map(|s| crate::store::keys::scope_hash("acct01", s))
                .collect(),
            names,
            files: vec!["a.csv".into(), "b.parquet".into()],
            contact,
            at,
            id,
            scope,
            file: (0..n).map(|i| u32::from(i >= 150)).collect(),
            renamed: vec![(7, "import#erased-00000000000000ff".into()), (201, "x#y".into())],
        }
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
