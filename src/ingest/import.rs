//! Manual imports → opt-outs mapped to the listed senders or the whole
//! account (SPEC §3.2). A row's own `sender` cell overrides the mapping.

use crate::columns::cell;
use crate::config::Account;
use crate::error::{Error, Result};
use crate::event::{Action, Event, Source, ACCOUNT_SCOPE};
use crate::ingest::{BadTime, Rejects, TimeColumn};
use crate::io::input::Dataset;
use crate::phone::{format_e164, normalize, normalize_sender};

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

impl Default for ImportColumns {
    fn default() -> Self {
        ImportColumns {
            phone: "phone".into(),
            sender: "sender".into(),
            time: "occurred_at".into(),
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

fn scope_for_cell(account: &Account, raw: &str) -> Option<String> {
    if raw.trim().eq_ignore_ascii_case(ACCOUNT_SCOPE) {
        return Some(ACCOUNT_SCOPE.to_string());
    }
    normalize_sender(raw).filter(|id| account.sender(id).is_some())
}

/// Read an import dataset into opt-out events; unusable rows go to `rejects`.
/// `now` is the event time of rows without `occurred_at`.
pub fn read(
    account: &Account,
    mapping: &Mapping,
    mut data: Dataset,
    cols: &ImportColumns,
    now: i64,
    rejects: &mut Rejects,
) -> Result<Vec<Event>> {
    let phone_i = data.column(&cols.phone, "--phone-column")?;
    let sender_i = data.schema.index_of(&cols.sender).ok();
    let time_i = data.schema.index_of(&cols.time).ok();
    let mapped: Vec<String> = match mapping {
        Mapping::AccountWide => vec![ACCOUNT_SCOPE.to_string()],
        Mapping::Senders(s) => s.clone(),
    };
    let mut events = Vec::new();
    let mut row = 0u64;
    let account_id: std::sync::Arc<str> = account.id.as_str().into();
    for batch in &mut data {
        let b = batch?;
        let file = &*b.file;
        let via: std::sync::Arc<str> = b.file.clone();
        let phones = b.text(phone_i)?;
        let senders = sender_i.map(|i| b.text(i)).transpose()?;
        let times = time_i
            .map(|i| TimeColumn::new(file, &cols.time, b.batch.column(i), cols.zone))
            .transpose()?;
        let mut bad = Vec::new();
        for i in 0..b.batch.num_rows() {
            row += 1;
            let country = cols.country.or(account.default_country);
            let Some(contact) = cell(&phones, i).and_then(|p| normalize(p, country)) else {
                bad.push((i as u32, row, "phone is not a possible number".to_string()));
                continue;
            };
            let (at, at_key) = match times.as_ref().map(|t| t.get(i)) {
                Some(Ok(Some(t))) => (t, t.to_string()),
                None | Some(Ok(None)) => (now, String::new()),
                Some(Err(BadTime)) => {
                    bad.push((i as u32, row, format!("{} is not an RFC 3339 time", cols.time)));
                    continue;
                }
            };
            let scopes = match senders.as_ref().and_then(|s| cell(s, i)) {
                None => mapped.clone(),
                Some(raw) => match scope_for_cell(account, raw) {
                    Some(scope) => vec![scope],
                    None => {
                        bad.push((
                            i as u32,
                            row,
                            format!("unknown sender for account '{}'", account.id),
                        ));
                        continue;
                    }
                },
            };
            for scope in scopes {
                let key = format!(
                    "{}\u{1f}{scope}\u{1f}{}\u{1f}{at_key}",
                    account.id,
                    format_e164(contact)
                );
                events.push(Event {
                    event_id: format!("import#{:016x}", xxhash_rust::xxh3::xxh3_64(key.as_bytes())),
                    account: account_id.clone(),
                    scope: scope.as_str().into(),
                    contact,
                    at,
                    action: Action::OptOut,
                    source: Source::Import,
                    keyword: None,
                    via: Some(via.clone()),
                });
            }
        }
        rejects.add(&b.batch, &bad)?;
    }
    Ok(events)
}
