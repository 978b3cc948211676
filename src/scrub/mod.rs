//! Scrubbing (SPEC §3.4): the decision for each recipient row.
//!
//! [`Scrubber::decide`] is the core: one Arrow `RecordBatch` and an opened
//! snapshot in, a reason (or none) per row out — no files, no threads.
//! [`Deduper`] then marks duplicates in input order, and [`split`] turns
//! the decisions into the kept and suppressed batches. Reading, rayon and
//! writing wrap around these in [`run`].

pub mod check;
mod dedupe;
pub mod memory;
pub mod run;
mod setup;
mod split;

pub use dedupe::Deduper;
pub use split::{split, suppressed_schema};

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use roaring::RoaringTreemap;

use crate::phone::{normalize, normalize_sender, DefaultCountry};
use crate::store::probe::Probe;
use crate::util::columns::{as_dict, as_text, cell, per_row};
use crate::util::fasthash::FastMap;

/// Why a row may not be messaged, in SPEC §3.4's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The phone is not a possible number.
    InvalidPhone,
    /// The account is not in the config.
    UnknownAccount,
    /// The sender is not one of the account's.
    UnknownSender,
    /// Opted out account-wide.
    AccountOptOut,
    /// Opted out for the row's sender (or any sender, when none is named).
    SenderOptOut,
    /// An earlier kept row has the same (account, contact).
    Duplicate,
}

impl Reason {
    /// Every reason, in order.
    pub const ALL: [Reason; 6] = [
        Reason::InvalidPhone,
        Reason::UnknownAccount,
        Reason::UnknownSender,
        Reason::AccountOptOut,
        Reason::SenderOptOut,
        Reason::Duplicate,
    ];

    /// The name used in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidPhone => "invalid_phone",
            Reason::UnknownAccount => "unknown_account",
            Reason::UnknownSender => "unknown_sender",
            Reason::AccountOptOut => "account_opt_out",
            Reason::SenderOptOut => "sender_opt_out",
            Reason::Duplicate => "duplicate",
        }
    }
}

/// No scope matched.
const NO_SCOPE: u32 = u32::MAX;

/// The decision for one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowDecision {
    /// `None`: the row may be messaged.
    pub reason: Option<Reason>,
    /// Index into [`Scrubber::scope_name`] of the scope that matched.
    pub scope: u32,
    /// Account position, for duplicate detection.
    pub account: u32,
    /// E.164 digits of the contact.
    pub contact: u64,
}

/// One account's scope ids: `base` is its account scope, `base + 1 ..
/// end` its sender scopes in sender-id order.
struct AccountView {
    pos: u32,
    base: u32,
    end: u32,
    /// Configured senders by normalized id → their scope id (a sender with
    /// no opt-outs gets one too, so that every configured sender resolves).
    senders: FastMap<String, u32>,
    /// The account's `default_country`, for national numbers when no
    /// `--default-country` is given.
    country: Option<DefaultCountry>,
}

/// How to find the inputs of the decision in a batch.
#[derive(Clone, Debug)]
pub struct Columns {
    /// The phone column.
    pub phone: usize,
    /// The account column, if the file has one.
    pub account: Option<usize>,
    /// The sender column, if the file has one.
    pub sender: Option<usize>,
    /// Account for rows with none (`--account`).
    pub default_account: Option<String>,
    /// Sender for rows with none (`--sender`).
    pub default_sender: Option<String>,
    /// `--default-country`.
    pub country: Option<DefaultCountry>,
    /// A column giving each row's country (`--country-column`), used
    /// before `--default-country` and the account's `default_country`.
    pub country_column: Option<usize>,
}

/// The config and snapshot, arranged for per-row lookups.
pub struct Scrubber {
    accounts: FastMap<String, AccountView>,
    scope_names: Vec<String>,
    lookup: Lookup,
    /// Account and sender ids a row named that are not configured but
    /// match a configured one ignoring case: (as written, as configured).
    case_hints: std::sync::Mutex<std::collections::BTreeSet<(String, String)>>,
    /// Does any account have a `default_country`?
    account_countries: bool,
    /// Was [`Scrubber::check_ahead`] started?
    checking_ahead: std::sync::atomic::AtomicBool,
    /// The store's erased numbers, looked up as their hashes.
    erasures: crate::store::Erasures,
}

#[derive(Clone, Copy, Default)]
enum SenderRes {
    #[default]
    None,
    Unknown,
    Known(u32),
}

impl Scrubber {
    /// Check the probe file's blocks ahead of the lookups, on a thread of
    /// their own (once per scrubber): for a scrub of many rows, which would
    /// otherwise check them inline, one at a time.
    pub fn check_ahead(&self) {
        if let Lookup::Probe { probe, .. } = &self.lookup {
            if !self
                .checking_ahead
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                let probe = Arc::clone(probe);
                // not joined: it only sets flags, and ends with the process
                std::thread::spawn(move || probe.check_all());
            }
        }
    }

    /// Was [`Scrubber::check_ahead`] started (by a scrub that read many
    /// rows)?
    pub fn checked_ahead(&self) -> bool {
        self.checking_ahead.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Were all the bytes of the probe file that decisions read sound?
    /// An error names the damaged file: a scrub asks before its outputs
    /// are put in place, `check` before it answers.
    pub fn verified(&self) -> crate::error::Result<()> {
        match &self.lookup {
            Lookup::Probe { probe, .. } => match probe.damage() {
                Some((origin, why)) => Err(Scrubber::damaged(origin, why)),
                None => Ok(()),
            },
            Lookup::Bitmaps(_) => Ok(()),
        }
    }

    fn damaged(origin: &str, why: &str) -> crate::error::Error {
        crate::error::Error::Corrupt(format!(
            "{origin} is damaged ({why}); {}",
            crate::store::damage::Fix::Rebuild.say(None)
        ))
    }

    /// Unknown account and sender ids seen so far that match a configured
    /// one ignoring case: (as written, as configured). Ids are matched
    /// exactly (a row is suppressed, fail closed); these say why.
    pub fn case_hints(&self) -> Vec<(String, String)> {
        self.case_hints
            .lock()
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The account with this id; an unknown one that matches a configured
    /// id ignoring case is noted (once per distinct value, not per row).
    fn account(&self, name: &str) -> Option<&AccountView> {
        let name = name.trim();
        let found = self.accounts.get(name);
        if found.is_none() {
            if let Some(k) = self.accounts.keys().find(|k| k.eq_ignore_ascii_case(name)) {
                self.note_case(name, k);
            }
        }
        found
    }

    fn note_case(&self, written: &str, configured: &str) {
        if let Ok(mut h) = self.case_hints.lock() {
            if h.len() < MAX_CASE_HINTS {
                h.insert((written.to_string(), configured.to_string()));
            }
        }
    }

    fn resolve_sender(&self, view: &AccountView, raw: &str) -> SenderRes {
        let res = resolve_sender(view, raw);
        if matches!(res, SenderRes::Unknown) {
            let raw = raw.trim();
            if let Some(k) = view.senders.keys().find(|k| k.eq_ignore_ascii_case(raw)) {
                self.note_case(raw, k);
            }
        }
        res
    }

    /// The name of a scope index from a [`RowDecision`].
    pub fn scope_name(&self, scope: u32) -> Option<&str> {
        self.scope_names.get(scope as usize).map(String::as_str)
    }

    /// Decide one row from its raw values.
    pub fn decide_one(
        &self,
        phone: Option<&str>,
        account: Option<&str>,
        sender: Option<&str>,
        country: Option<DefaultCountry>,
    ) -> RowDecision {
        let account = account.and_then(|a| self.account(a));
        let country = country.or(account.and_then(|a| a.country));
        let contact = phone.and_then(|p| normalize(p, country));
        let sender = match (account, sender) {
            (Some(view), Some(s)) => self.resolve_sender(view, s),
            _ => SenderRes::None,
        };
        let key = contact.map(|c| self.erasures.key_of(c));
        self.verdict(contact, key, account, &sender, Found::Ask)
    }

    /// The store's erased numbers.
    pub fn erasures(&self) -> &crate::store::Erasures {
        &self.erasures
    }

    fn verdict(
        &self,
        contact: Option<u64>,
        key: Option<u64>,
        account: Option<&AccountView>,
        sender: &SenderRes,
        found: Found,
    ) -> RowDecision {
        let mut d = RowDecision {
            reason: None,
            scope: NO_SCOPE,
            account: 0,
            contact: 0,
        };
        let (Some(contact), Some(key)) = (contact, key) else {
            d.reason = Some(Reason::InvalidPhone);
            return d;
        };
        d.contact = contact;
        let Some(view) = account else {
            d.reason = Some(Reason::UnknownAccount);
            return d;
        };
        d.account = view.pos;
        if matches!(sender, SenderRes::Unknown) {
            d.reason = Some(Reason::UnknownSender);
            return d;
        }
        if matches!(found, Found::No) {
            return d;
        }
        // the account scope (base) comes before its senders: the smallest
        // scope that applies decides
        let mut hit = NO_SCOPE;
        let mut consider = |s: u32| {
            let applies = s >= view.base
                && s < view.end
                && match sender {
                    SenderRes::Known(id) => s == view.base || s == *id,
                    _ => true,
                };
            if applies {
                hit = hit.min(s);
            }
        };
        match &self.lookup {
            Lookup::Probe { probe, ids } => {
                let value = match found {
                    Found::Value(v) => Some(v),
                    _ => probe.value(key),
                };
                if let Some(v) = value {
                    probe.for_each_scope(v, |raw| {
                        if let Some(&s) = ids.get(raw as usize) {
                            consider(s);
                        }
                    });
                }
            }
            Lookup::Bitmaps(b) => {
                for (id, bm) in b {
                    if bm.contains(key) {
                        consider(*id);
                    }
                }
            }
        }
        let hit = (hit != NO_SCOPE).then_some(hit);
        if let Some(s) = hit {
            d.reason = Some(if s == view.base {
                Reason::AccountOptOut
            } else {
                Reason::SenderOptOut
            });
            d.scope = s;
        }
        d
    }

    /// Decide every row of a batch (duplicates not yet marked).
    ///
    /// Accounts and senders are resolved once per distinct value: once per
    /// dictionary value when the column is dictionary-encoded (Parquet
    /// read with [`crate::io::input::Dataset::open_dict`]), else through a
    /// small per-batch cache.
    pub fn decide(&self, batch: &RecordBatch, cols: &Columns) -> Result<Vec<RowDecision>, String> {
        let named = |i: usize, what: &str, e: String| {
            format!("column '{}' ({what}): {e}", batch.schema().field(i).name())
        };
        let phones = as_text(batch.column(cols.phone)).map_err(|e| named(cols.phone, "phone", e))?;
        let n = batch.num_rows();
        let accounts: Vec<Option<&AccountView>> = match cols.account {
            Some(i) => {
                let resolve = |name: &str| self.account(name);
                let fallback = cols.default_account.as_deref().and_then(resolve);
                per_row(batch.column(i), fallback, resolve).map_err(|e| named(i, "account", e))?
            }
            None => {
                let v = cols.default_account.as_deref().and_then(|a| self.account(a));
                vec![v; n]
            }
        };
        let senders: Vec<SenderRes> = match cols.sender {
            Some(i) => self
                .senders_per_row(batch.column(i), &accounts, cols.default_sender.as_deref())
                .map_err(|e| named(i, "sender", e))?,
            None => accounts
                .iter()
                .map(|a| match (a, cols.default_sender.as_deref()) {
                    (Some(view), Some(name)) => self.resolve_sender(view, name),
                    _ => SenderRes::None,
                })
                .collect(),
        };
        let row_countries = cols
            .country_column
            .map(|i| as_text(batch.column(i)).map_err(|e| named(i, "country", e)))
            .transpose()?;
        let mut parsed: FastMap<&str, Option<DefaultCountry>> = FastMap::default();
        let no_country = cols.country.is_none() && row_countries.is_none() && !self.account_countries;
        let contacts: Vec<Option<u64>> = (0..n)
            .map(|i| {
                if no_country {
                    return cell(&phones, i).and_then(|p| normalize(p, None));
                }
                let row = row_countries
                    .as_ref()
                    .and_then(|c| cell(c, i))
                    .and_then(|c| *parsed.entry(c).or_insert_with(|| DefaultCountry::parse(c)));
                let country = row.or(cols.country).or(accounts[i].and_then(|a| a.country));
                cell(&phones, i).and_then(|p| normalize(p, country))
            })
            .collect();
        // an erased number is kept under its hash
        let keys: std::borrow::Cow<'_, [Option<u64>]> = if self.erasures.is_empty() {
            std::borrow::Cow::Borrowed(&contacts)
        } else {
            contacts
                .iter()
                .map(|c| c.map(|c| self.erasures.key_of(c)))
                .collect::<Vec<_>>()
                .into()
        };
        // a tight loop of independent loads: the cache misses of the filter
        // overlap instead of stalling one row at a time
        let found: Vec<Found> = match &self.lookup {
            // the filter's words, then the table's slots of the rows that
            // pass it: tight loops of independent reads, whose misses
            // overlap instead of stalling one row at a time
            Lookup::Probe { probe, .. } => {
                let found: Vec<Found> = probe
                    .values(&keys)
                    .into_iter()
                    .map(|v| v.map_or(Found::No, Found::Value))
                    .collect();
                let touched = found.iter().fold(0u32, |acc, f| match f {
                    Found::Value(v) => acc ^ probe.touch_scopes(*v),
                    _ => acc,
                });
                std::hint::black_box(touched);
                found
            }
            Lookup::Bitmaps(_) => vec![Found::Ask; n],
        };
        Ok((0..n)
            .map(|i| self.verdict(contacts[i], keys[i], accounts[i], &senders[i], found[i]))
            .collect())
    }

    /// The sender of every row, resolved in its row's account once per
    /// distinct (account, sender text).
    fn senders_per_row(
        &self,
        col: &ArrayRef,
        accounts: &[Option<&AccountView>],
        default: Option<&str>,
    ) -> Result<Vec<SenderRes>, String> {
        let resolve = |a: Option<&AccountView>, name: Option<&str>| match (a, name.or(default)) {
            (Some(view), Some(name)) => self.resolve_sender(view, name),
            _ => SenderRes::None,
        };
        if let Some(d) = as_dict(col)? {
            let values = &d.values;
            let width = values.len() + 1;
            // (account position, dictionary value) → resolution, filled
            // lazily: a dense table, no hashing per row
            let mut table: Vec<Option<SenderRes>> = vec![None; self.accounts.len().max(1) * width];
            return Ok(d
                .keys
                .iter()
                .zip(accounts)
                .map(|(k, a)| {
                    let slot = k.map_or(width - 1, |k| k.min(width - 1));
                    let Some(view) = a else {
                        return SenderRes::None;
                    };
                    let at = view.pos as usize * width + slot;
                    let resolved = || {
                        let name = if slot < values.len() {
                            cell(values, slot)
                        } else {
                            None
                        };
                        resolve(Some(view), name)
                    };
                    match table.get_mut(at) {
                        Some(Some(r)) => *r,
                        Some(entry) => *entry.insert(resolved()),
                        None => resolved(),
                    }
                })
                .collect());
        }
        let text = as_text(col)?;
        let mut cache: FastMap<(u32, &str), SenderRes> = FastMap::default();
        Ok(accounts
            .iter()
            .enumerate()
            .map(|(i, a)| match (a, cell(&text, i)) {
                (Some(view), Some(name)) => *cache
                    .entry((view.pos, name))
                    .or_insert_with(|| self.resolve_sender(view, name)),
                (a, None) => resolve(*a, None),
                (None, Some(_)) => SenderRes::None,
            })
            .collect())
    }
}

/// How a scrubber finds a contact's opt-outs.
enum Lookup {
    /// Every (contact, scope) in one probe; `ids` turns its scope indices
    /// into this scrubber's ids (`NO_SCOPE` for unconfigured accounts).
    Probe { probe: Arc<Probe>, ids: Vec<u32> },
    /// The bitmaps by scope id: nothing to build.
    Bitmaps(Vec<(u32, RoaringTreemap)>),
}

/// What a row's lookup found, when it was made ahead of the verdict.
#[derive(Clone, Copy)]
enum Found {
    /// No opt-out.
    No,
    /// Where the probe holds the contact's scopes.
    Value(u64),
    /// Not looked up yet.
    Ask,
}

/// Distinct case hints kept at most (they are for a message).
const MAX_CASE_HINTS: usize = 8;

fn resolve_sender(view: &AccountView, raw: &str) -> SenderRes {
    if raw.trim().is_empty() {
        return SenderRes::None;
    }
    match normalize_sender(raw).and_then(|id| view.senders.get(&id).copied()) {
        Some(id) => SenderRes::Known(id),
        None => SenderRes::Unknown,
    }
}
