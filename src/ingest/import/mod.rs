//! Manual imports → opt-outs mapped to the listed senders or the whole
//! account (SPEC §3.2). A row's own `sender` cell overrides the mapping.

use std::sync::Arc;

use crate::config::Account;
use crate::error::{Error, Result};
use crate::event::ACCOUNT_SCOPE;
use crate::ingest::{BadTime, Rejected, Rejects, TimeColumn};
use crate::io::input::{Batch, Dataset};
use crate::phone::{normalize, normalize_sender};
use crate::store::rows::NewRows;
use crate::util::columns::cell;

mod rows;

use rows::Columns;
pub use rows::ImportRows;

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
    let mut out = ImportRows::new(account.id.as_str(), names);
    if let Some(rows) = data.total_rows {
        // a hint only: a file may claim more rows than it has
        out.columns.reserve((rows.min(1 << 27) as usize) * mapped.len());
    }
    let country = cols.country.or(account.default_country);
    let names = out.scope_names().to_vec();
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
    let work = |(b, first_row): (Batch, u64)| -> Result<(Batch, Columns, Vec<Rejected>)> {
        let file = &*b.file;
        let phones = b.text(phone_i)?;
        let scopes = sender_i
            .map(|i| b.per_row(i, MAPPED, |raw| scope_code(account, raw)))
            .transpose()?;
        let times = time_i
            .map(|i| TimeColumn::new(file, &cols.time, b.batch.column(i), cols.zone))
            .transpose()?;
        let n = b.batch.num_rows();
        let mut out = Columns::default();
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
    let add = |(b, rows, bad): (Batch, Columns, Vec<Rejected>)| {
        out.append(rows, &b.file)?;
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
    use super::rows::import_id;
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
}
