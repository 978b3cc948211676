//! Scrubbing (SPEC §3.4): the decision for each recipient row.
//!
//! [`Scrubber::decide`] is the core: one Arrow `RecordBatch` and an opened
//! snapshot in, a reason (or none) per row out — no files, no threads.
//! [`Deduper`] then marks duplicates in input order, and [`split`] turns
//! the decisions into the kept and suppressed batches. Reading, rayon and
//! writing wrap around these in [`run`].

pub mod run;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringBuilder};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use roaring::RoaringTreemap;

use crate::columns::{as_text, cell};
use crate::config::Config;
use crate::event::ACCOUNT_SCOPE;
use crate::phone::{normalize, normalize_sender, DefaultCountry};
use crate::store::snapshot::Snapshot;

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

struct SenderScope {
    id: String,
    bitmap: RoaringTreemap,
    scope: u32,
}

struct AccountView {
    account_scope: u32,
    bitmap: RoaringTreemap,
    /// Configured senders by normalized id → index into `scopes`, or
    /// `None` for a configured sender with no opt-outs.
    senders: HashMap<String, Option<usize>>,
    /// Every sender scope with opt-outs, sorted by sender id.
    scopes: Vec<SenderScope>,
    /// Union of all sender scopes, for rows that name no sender.
    any_sender: RoaringTreemap,
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
}

/// The config and snapshot, arranged for per-row lookups.
pub struct Scrubber {
    accounts: HashMap<String, (u32, AccountView)>,
    scope_names: Vec<String>,
}

enum SenderRes {
    None,
    Unknown,
    Known(Option<usize>),
}

impl Scrubber {
    /// Arrange a config and snapshot for scrubbing.
    pub fn new(config: &Config, snapshot: Snapshot) -> Scrubber {
        let mut scope_names = vec![ACCOUNT_SCOPE.to_string()];
        let mut accounts = HashMap::new();
        let mut by_account: HashMap<String, Vec<(String, RoaringTreemap)>> = HashMap::new();
        for s in snapshot.scopes {
            by_account.entry(s.account).or_default().push((s.scope, s.bitmap));
        }
        for (pos, a) in config.accounts.iter().enumerate() {
            let mut view = AccountView {
                account_scope: 0,
                bitmap: RoaringTreemap::new(),
                senders: HashMap::new(),
                scopes: Vec::new(),
                any_sender: RoaringTreemap::new(),
            };
            let mut scopes = by_account.remove(&a.id).unwrap_or_default();
            scopes.sort_by(|x, y| x.0.cmp(&y.0));
            for (scope, bitmap) in scopes {
                if scope == ACCOUNT_SCOPE {
                    view.bitmap = bitmap;
                } else {
                    view.any_sender |= &bitmap;
                    scope_names.push(scope.clone());
                    let idx = (scope_names.len() - 1) as u32;
                    view.scopes.push(SenderScope {
                        id: scope,
                        bitmap,
                        scope: idx,
                    });
                }
            }
            for s in &a.senders {
                let slot = view.scopes.iter().position(|x| x.id == s.id);
                view.senders.insert(s.id.clone(), slot);
            }
            accounts.insert(a.id.clone(), (pos as u32, view));
        }
        Scrubber {
            accounts,
            scope_names,
        }
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
        let contact = phone.and_then(|p| normalize(p, country));
        let account = account.and_then(|a| self.accounts.get(a.trim()));
        let sender = match (account, sender) {
            (Some((_, view)), Some(s)) => resolve_sender(view, s),
            _ => SenderRes::None,
        };
        self.verdict(contact, account, &sender)
    }

    fn verdict(
        &self,
        contact: Option<u64>,
        account: Option<&(u32, AccountView)>,
        sender: &SenderRes,
    ) -> RowDecision {
        let mut d = RowDecision {
            reason: None,
            scope: NO_SCOPE,
            account: 0,
            contact: 0,
        };
        let Some(contact) = contact else {
            d.reason = Some(Reason::InvalidPhone);
            return d;
        };
        d.contact = contact;
        let Some((pos, view)) = account else {
            d.reason = Some(Reason::UnknownAccount);
            return d;
        };
        d.account = *pos;
        if matches!(sender, SenderRes::Unknown) {
            d.reason = Some(Reason::UnknownSender);
            return d;
        }
        if view.bitmap.contains(contact) {
            d.reason = Some(Reason::AccountOptOut);
            d.scope = view.account_scope;
            return d;
        }
        match sender {
            SenderRes::Known(Some(i)) => {
                let s = &view.scopes[*i];
                if s.bitmap.contains(contact) {
                    d.reason = Some(Reason::SenderOptOut);
                    d.scope = s.scope;
                }
            }
            SenderRes::None if view.any_sender.contains(contact) => {
                if let Some(s) = view.scopes.iter().find(|s| s.bitmap.contains(contact)) {
                    d.reason = Some(Reason::SenderOptOut);
                    d.scope = s.scope;
                }
            }
            _ => {}
        }
        d
    }

    /// Decide every row of a batch (duplicates not yet marked).
    pub fn decide(&self, batch: &RecordBatch, cols: &Columns) -> Result<Vec<RowDecision>, String> {
        let text = |i: usize, what: &str| {
            as_text(batch.column(i))
                .map_err(|e| format!("column '{}' ({what}): {e}", batch.schema().field(i).name()))
        };
        let phones = text(cols.phone, "phone")?;
        let accounts = cols.account.map(|i| text(i, "account")).transpose()?;
        let senders = cols.sender.map(|i| text(i, "sender")).transpose()?;
        let mut account_cache: HashMap<&str, Option<&(u32, AccountView)>> = HashMap::new();
        let mut sender_cache: HashMap<(u32, &str), SenderRes> = HashMap::new();
        let mut out = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            let contact = cell(&phones, i).and_then(|p| normalize(p, cols.country));
            let account_name = accounts
                .as_ref()
                .and_then(|a| cell(a, i))
                .or(cols.default_account.as_deref());
            let account = match account_name {
                None => None,
                Some(name) => *account_cache
                    .entry(name)
                    .or_insert_with(|| self.accounts.get(name.trim())),
            };
            let sender_name = senders
                .as_ref()
                .and_then(|s| cell(s, i))
                .or(cols.default_sender.as_deref());
            let none = SenderRes::None;
            let sender = match (account, sender_name) {
                (Some((pos, view)), Some(name)) => &*sender_cache
                    .entry((*pos, name))
                    .or_insert_with(|| resolve_sender(view, name)),
                _ => &none,
            };
            out.push(self.verdict(contact, account, sender));
        }
        Ok(out)
    }
}

fn resolve_sender(view: &AccountView, raw: &str) -> SenderRes {
    if raw.trim().is_empty() {
        return SenderRes::None;
    }
    match normalize_sender(raw).and_then(|id| view.senders.get(&id).copied()) {
        Some(slot) => SenderRes::Known(slot),
        None => SenderRes::Unknown,
    }
}

/// Marks rows whose (account, contact) an earlier kept row already has.
#[derive(Default)]
pub struct Deduper {
    seen: HashMap<u32, RoaringTreemap>,
}

impl Deduper {
    /// Mark duplicates in `rows`, which follow every row seen before.
    pub fn mark(&mut self, rows: &mut [RowDecision]) {
        for d in rows.iter_mut().filter(|d| d.reason.is_none()) {
            if !self.seen.entry(d.account).or_default().insert(d.contact) {
                d.reason = Some(Reason::Duplicate);
            }
        }
    }
}

/// The schema of the suppressed output: the input's plus `reason`, `scope`.
pub fn suppressed_schema(input: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("reason", DataType::Utf8, false));
    fields.push(Field::new("scope", DataType::Utf8, true));
    Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()))
}

/// Split a batch into kept rows and suppressed rows (with reason, scope).
pub fn split(
    batch: &RecordBatch,
    rows: &[RowDecision],
    scrubber: &Scrubber,
    suppressed_schema: &SchemaRef,
) -> Result<(RecordBatch, RecordBatch), arrow::error::ArrowError> {
    let keep: BooleanArray = rows.iter().map(|d| Some(d.reason.is_none())).collect();
    let drop: BooleanArray = rows.iter().map(|d| Some(d.reason.is_some())).collect();
    let kept = filter_record_batch(batch, &keep)?;
    let gone = filter_record_batch(batch, &drop)?;
    let n = gone.num_rows();
    let mut reason = StringBuilder::with_capacity(n, n * 14);
    let mut scope = StringBuilder::with_capacity(n, n * 8);
    for d in rows.iter().filter(|d| d.reason.is_some()) {
        reason.append_option(d.reason.map(Reason::as_str));
        scope.append_option(scrubber.scope_name(d.scope));
    }
    let mut cols: Vec<ArrayRef> = gone.columns().to_vec();
    cols.push(Arc::new(reason.finish()) as ArrayRef);
    cols.push(Arc::new(scope.finish()) as ArrayRef);
    let suppressed = RecordBatch::try_new(suppressed_schema.clone(), cols)?;
    Ok((kept, suppressed))
}
