//! Webform submissions → account-wide opt-outs (SPEC §3.2: a webform
//! opt-out applies to the whole account, whatever the senders' settings).

use crate::config::Config;
use crate::error::Result;
use crate::event::{Action, Event, Source, ACCOUNT_SCOPE};
use crate::ingest::{BadTime, Rejects, TimeColumn};
use crate::io::input::Dataset;
use crate::phone::{format_e164, normalize};
use crate::util::columns::cell;

/// Column names of a webform file.
#[derive(Clone, Debug)]
pub struct WebformColumns {
    /// Account id column.
    pub account: String,
    /// Phone column.
    pub phone: String,
    /// Submission time column.
    pub time: String,
    /// Optional submission id column.
    pub id: String,
    /// `--default-country`: how national numbers are read (else each
    /// account's `default_country`; else they are rejected).
    pub country: Option<crate::phone::DefaultCountry>,
    /// The zone of times written without an offset (UTC when `None`).
    pub zone: crate::ingest::Zone,
    /// How CSV files are read.
    pub csv: crate::io::input::CsvShape,
}

impl WebformColumns {
    /// The default name of the account column.
    pub const ACCOUNT: &'static str = "account_id";
    /// The default name of the phone column.
    pub const PHONE: &'static str = "phone";
    /// The default name of the time column.
    pub const TIME: &'static str = "submitted_at";
    /// The default name of the submission id column.
    pub const ID: &'static str = "submission_id";
}

impl Default for WebformColumns {
    fn default() -> Self {
        WebformColumns {
            account: Self::ACCOUNT.into(),
            phone: Self::PHONE.into(),
            time: Self::TIME.into(),
            id: Self::ID.into(),
            country: None,
            zone: None,
            csv: Default::default(),
        }
    }
}

/// Read a webform dataset into opt-out events; unusable rows go to `rejects`.
pub fn read(
    config: &Config,
    mut data: Dataset,
    cols: &WebformColumns,
    rejects: &mut Rejects,
) -> Result<Vec<Event>> {
    let found = data.columns(&[
        (&cols.account, "--account-column"),
        (&cols.phone, "--phone-column"),
        (&cols.time, "--time-column"),
    ])?;
    let (account_i, phone_i, time_i) = (found[0], found[1], found[2]);
    let id_i = data.schema.index_of(&cols.id).ok();
    let mut events = Vec::new();
    let mut row = 0u64;
    let scope: std::sync::Arc<str> = ACCOUNT_SCOPE.into();
    for batch in &mut data {
        let b = batch?;
        let file = &*b.file;
        let accounts = b.text(account_i)?;
        let phones = b.text(phone_i)?;
        let ids = id_i.map(|i| b.text(i)).transpose()?;
        let times = TimeColumn::new(file, &cols.time, b.batch.column(time_i), cols.zone)?;
        let mut bad = Vec::new();
        for i in 0..b.batch.num_rows() {
            row += 1;
            let account = cell(&accounts, i).map(str::trim);
            let Some((account, acc)) = account.and_then(|a| config.account(a).map(|acc| (a, acc))) else {
                let why = if account.is_some() {
                    "unknown account"
                } else {
                    "missing account_id"
                };
                bad.push((i as u32, row, why.to_string()));
                continue;
            };
            let country = cols.country.or(acc.default_country);
            let Some(contact) = cell(&phones, i).and_then(|p| normalize(p, country)) else {
                bad.push((i as u32, row, "phone is not a possible number".to_string()));
                continue;
            };
            let at = match times.get(i) {
                Ok(Some(t)) => t,
                Ok(None) => {
                    bad.push((i as u32, row, format!("missing {}", cols.time)));
                    continue;
                }
                Err(BadTime) => {
                    bad.push((i as u32, row, format!("{} is not an RFC 3339 time", cols.time)));
                    continue;
                }
            };
            let event_id = match ids.as_ref().and_then(|a| cell(a, i)) {
                Some(id) => format!("webform:{account}:{}", id.trim()),
                None => format!(
                    "webform#{:016x}",
                    xxhash_rust::xxh3::xxh3_64(
                        format!("{account}\u{1f}{}\u{1f}{at}", format_e164(contact)).as_bytes()
                    )
                ),
            };
            events.push(Event {
                event_id: event_id.into(),
                account: account.into(),
                scope: scope.clone(),
                contact,
                at,
                action: Action::OptOut,
                source: Source::Webform,
                keyword: None,
                via: Some(b.file.clone()),
            });
        }
        rejects.add(&b.batch, &bad)?;
    }
    Ok(events)
}

/// Ingest webform files into a store (the caller holds the lock): print
/// the summary line on stderr and return its figures.
pub fn ingest(
    store: &mut crate::store::Store,
    files: &[String],
    cols: &WebformColumns,
    rejects_path: Option<&std::path::Path>,
) -> Result<crate::summary::WebformSummary> {
    let data = Dataset::open_shaped(files, cols.csv)?;
    ingest_dataset(store, data, cols, rejects_path)
}

/// [`ingest`] of a dataset already opened.
pub fn ingest_dataset(
    store: &mut crate::store::Store,
    data: Dataset,
    cols: &WebformColumns,
    rejects_path: Option<&std::path::Path>,
) -> Result<crate::summary::WebformSummary> {
    let mut rejects = Rejects::new(rejects_path, &data.schema)?;
    let events = read(&store.config, data, cols, &mut rejects)?;
    let read = events.len();
    let done = store.ingest(events)?;
    eprintln!(
        "webform: {read} opt-outs read, {} new, {} already in the store",
        done.new_events.len(),
        done.already_known
    );
    if let Some(line) = rejects.summary(rejects_path.is_some()) {
        eprintln!("webform: {line}");
    }
    let rejected = rejects.count;
    rejects.finish()?;
    Ok(crate::summary::WebformSummary {
        already_known: done.already_known as u64,
        command: None,
        events_read: read as u64,
        new_by_source_and_scope: crate::event::breakdown(&done.new_events),
        new_events: done.new_events.len() as u64,
        rejected,
    })
}
