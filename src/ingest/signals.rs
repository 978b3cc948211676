//! Provider signals → opt-outs: a send log's errors that say the provider
//! itself blocked a contact (the contact replied STOP where the provider
//! saw it first), and carrier deactivations (the number changed hands).
//!
//! A send log row is an opt-out when its (provider, code) pair means one:
//! the built-in table below, plus the config's `[[signals]]`, which add
//! codes or switch built-in ones off. It opts the contact out of the
//! sender the message was sent from (of the account when that sender has
//! `account_level`). A deactivation is an account-wide opt-out of the
//! named account, or of every account when the file names none.

use std::sync::Arc;

use crate::config::{Config, SignalMeaning};
use crate::error::{Error, Result};
use crate::event::{Action, Event, Source, ACCOUNT_SCOPE};
use crate::ingest::{BadTime, Rejected, Rejects, TimeColumn};
use crate::io::input::Dataset;
use crate::phone::{format_e164, normalize, normalize_sender};
use crate::util::columns::cell;

/// The send-time codes that mean "this contact opted out of this sender",
/// per provider, as the providers document them: (provider, code, what
/// the provider says).
pub const BUILT_IN: &[(&str, &str, &str)] = &[
    (
        "twilio",
        "21610",
        "attempt to send to an unsubscribed recipient (it replied STOP)",
    ),
    ("telnyx", "40300", "blocked because the recipient sent STOP"),
    (
        "vonage",
        "9",
        "delivery receipt err-code 9: the recipient asked not to get messages from this sender",
    ),
    (
        "plivo",
        "200",
        "the destination opted out of messages from this source number",
    ),
    (
        "aws",
        "OPTED_OUT",
        "messageStatus OPTED_OUT: the destination number is opted out",
    ),
];

/// What kind of signal file this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SignalKind {
    /// A send or delivery log with the provider's error codes.
    SendLog,
    /// Numbers that were disconnected or reassigned.
    Deactivations,
    /// WhatsApp `user_preferences` webhooks (JSON) or their flattened rows:
    /// a user stopped or resumed a business number's marketing messages.
    Whatsapp,
}

/// Column names and settings of a signal file.
#[derive(Clone, Debug)]
pub struct SignalColumns {
    /// Which kind of file.
    pub kind: SignalKind,
    /// The message (or record) id column; optional.
    pub id: String,
    /// The provider column; optional when `provider` is given.
    pub provider_column: String,
    /// `--provider`: the provider of rows without a provider cell.
    pub provider: Option<String>,
    /// The error code column (send logs).
    pub code: String,
    /// The sender column: the number the message was sent from (send logs).
    pub from: String,
    /// The contact column: `to` in a send log, `phone` in deactivations.
    pub contact: String,
    /// The time column.
    pub time: String,
    /// The optional account column.
    pub account: String,
    /// `--default-country`.
    pub country: Option<crate::phone::DefaultCountry>,
    /// The zone of times written without an offset.
    pub zone: crate::ingest::Zone,
    /// How CSV files are read.
    pub csv: crate::io::input::CsvShape,
    /// `--profile`: the WhatsApp sender the preferences are for (else
    /// found from the business number of each row).
    pub profile: Option<String>,
}

/// Columns of flattened WhatsApp preference rows (the webhook's own names).
pub mod wa {
    /// The user's WhatsApp id (their number's digits).
    pub const WA_ID: &str = "wa_id";
    /// `stop` or `resume`.
    pub const VALUE: &str = "value";
    /// The message category (`marketing_messages`).
    pub const CATEGORY: &str = "category";
    /// Unix seconds.
    pub const TIMESTAMP: &str = "timestamp";
    /// The business number as displayed.
    pub const DISPLAY: &str = "display_phone_number";
    /// The business number's id.
    pub const NUMBER_ID: &str = "phone_number_id";
}

impl SignalColumns {
    /// Default column names for a kind of file.
    pub fn new(kind: SignalKind) -> SignalColumns {
        let send = kind == SignalKind::SendLog;
        let wa = kind == SignalKind::Whatsapp;
        SignalColumns {
            kind,
            id: if send { "message_id" } else { "record_id" }.into(),
            provider_column: "provider".into(),
            provider: None,
            code: "error_code".into(),
            from: "from".into(),
            contact: if wa {
                wa::WA_ID
            } else if send {
                "to"
            } else {
                "phone"
            }
            .into(),
            time: if wa {
                wa::TIMESTAMP
            } else if send {
                "sent_at"
            } else {
                "deactivated_at"
            }
            .into(),
            account: "account_id".into(),
            country: None,
            zone: None,
            csv: Default::default(),
            profile: None,
        }
    }
}

/// Provider names compare without case or surrounding blanks.
fn provider_key(p: &str) -> String {
    p.trim().to_ascii_lowercase()
}

/// Codes compare without case or surrounding blanks (`opted_out` is
/// `OPTED_OUT`; `21610` is `21610`).
fn code_key(c: &str) -> String {
    c.trim().to_ascii_uppercase()
}

/// The (provider, code) pairs that are opt-outs, after the config's changes.
pub struct CodeTable {
    opt_out: std::collections::HashSet<(String, String)>,
    known_providers: std::collections::HashSet<String>,
}

impl CodeTable {
    /// The built-in table with the config's `[[signals]]` applied.
    pub fn new(config: &Config) -> CodeTable {
        let mut opt_out = std::collections::HashSet::new();
        let mut known_providers = std::collections::HashSet::new();
        for (p, c, _) in BUILT_IN {
            opt_out.insert((provider_key(p), code_key(c)));
            known_providers.insert(provider_key(p));
        }
        for s in &config.signals {
            let key = (provider_key(&s.provider), code_key(&s.code));
            known_providers.insert(key.0.clone());
            match s.meaning {
                SignalMeaning::OptOut => opt_out.insert(key),
                SignalMeaning::Ignore => opt_out.remove(&key),
            };
        }
        CodeTable {
            opt_out,
            known_providers,
        }
    }

    /// Whether a code of a provider is an opt-out; `None` when no code of
    /// that provider is known at all.
    pub fn is_opt_out(&self, provider: &str, code: &str) -> Option<bool> {
        let p = provider_key(provider);
        if !self.known_providers.contains(&p) {
            return None;
        }
        Some(self.opt_out.contains(&(p, code_key(code))))
    }
}

/// What reading a signal file found besides its events.
#[derive(Debug, Default)]
pub struct Read {
    /// The opt-outs.
    pub events: Vec<Event>,
    /// Send log rows with no error code, or a code that is not an opt-out.
    pub not_signals: u64,
}

/// Read a signal dataset into events; unusable rows go to `rejects`.
pub fn read(config: &Config, mut data: Dataset, cols: &SignalColumns, rejects: &mut Rejects) -> Result<Read> {
    if cols.kind == SignalKind::Whatsapp {
        return read_whatsapp(config, data, cols, rejects);
    }
    let send = cols.kind == SignalKind::SendLog;
    let required: Vec<(&str, &str)> = if send {
        vec![
            (&cols.code, "--code-column"),
            (&cols.from, "--from-column"),
            (&cols.contact, "--to-column"),
            (&cols.time, "--time-column"),
        ]
    } else {
        vec![(&cols.contact, "--phone-column"), (&cols.time, "--time-column")]
    };
    let found = data.columns(&required)?;
    let provider_i = data.find(&cols.provider_column);
    if send && provider_i.is_none() && cols.provider.is_none() {
        return Err(Error::Usage(format!(
            "the send log has no '{}' column: say whose codes these are with --provider (one of {})",
            cols.provider_column,
            provider_names()
        )));
    }
    let account_i = data.find(&cols.account);
    let id_i = data.find(&cols.id);
    let table = CodeTable::new(config);
    let mut out = Read::default();
    let mut row = 0u64;
    let account_scope: Arc<str> = ACCOUNT_SCOPE.into();
    let accounts: Vec<Arc<str>> = config.accounts.iter().map(|a| a.id.as_str().into()).collect();
    for batch in &mut data {
        let b = batch?;
        let via: Arc<str> = b.file.clone();
        let file = &*b.file;
        let (contact_i, time_i) = if send {
            (found[2], found[3])
        } else {
            (found[0], found[1])
        };
        let contacts = b.text(contact_i)?;
        let times = TimeColumn::new(file, &cols.time, b.batch.column(time_i), cols.zone)?;
        let ids = id_i.map(|i| b.text(i)).transpose()?;
        let account_cells = account_i.map(|i| b.text(i)).transpose()?;
        let providers = provider_i.map(|i| b.text(i)).transpose()?;
        let codes = send.then(|| b.text(found[0])).transpose()?;
        let froms = send.then(|| b.text(found[1])).transpose()?;
        let mut bad: Vec<Rejected> = Vec::new();
        for i in 0..b.batch.num_rows() {
            row += 1;
            let mut reject = |why: String| bad.push((i as u32, row, why));
            // a send log row first: most rows are not signals at all
            let mut signal = None;
            if let (Some(codes), Some(froms)) = (&codes, &froms) {
                let Some(code) = cell(codes, i).map(str::trim) else {
                    out.not_signals += 1;
                    continue;
                };
                let provider = providers
                    .as_ref()
                    .and_then(|p| cell(p, i))
                    .or(cols.provider.as_deref())
                    .map(str::trim);
                let Some(provider) = provider else {
                    reject(format!("missing {} (and no --provider)", cols.provider_column));
                    continue;
                };
                match table.is_opt_out(provider, code) {
                    None => {
                        reject(format!(
                            "no opt-out codes are known for provider '{provider}'; add them to the config as [[signals]]"
                        ));
                        continue;
                    }
                    Some(false) => {
                        out.not_signals += 1;
                        continue;
                    }
                    Some(true) => {}
                }
                let Some(from) = cell(froms, i).and_then(normalize_sender) else {
                    reject(format!("{} is not a sender id", cols.from));
                    continue;
                };
                signal = Some((provider_key(provider), code.to_string(), from));
            }
            let named = account_cells.as_ref().and_then(|a| cell(a, i)).map(str::trim);
            if let Some(a) = named {
                if config.account(a).is_none() {
                    reject(format!("unknown account in {}", cols.account));
                    continue;
                }
            }
            // the accounts and scope the opt-out applies to
            let (targets, scope): (Vec<usize>, Arc<str>) = match &signal {
                Some((_, _, from)) => match sender_of(config, from) {
                    Some((ai, si)) => {
                        let acc = &config.accounts[ai];
                        if named.is_some_and(|n| n != acc.id) {
                            reject(format!(
                                "the sender belongs to account '{}', not the one in {}",
                                acc.id, cols.account
                            ));
                            continue;
                        }
                        let s = &acc.senders[si];
                        let scope = if s.account_level {
                            account_scope.clone()
                        } else {
                            s.id.as_str().into()
                        };
                        (vec![ai], scope)
                    }
                    None if config.shared_numbers.iter().any(|n| n == from) => match named {
                        // at a shared number the account is the only scope there is
                        Some(n) => (
                            config
                                .accounts
                                .iter()
                                .position(|a| a.id == n)
                                .into_iter()
                                .collect(),
                            account_scope.clone(),
                        ),
                        None => {
                            reject(format!(
                                "sent from a shared number, which names no account; add an {} column",
                                cols.account
                            ));
                            continue;
                        }
                    },
                    None => {
                        reject("the sender is not in the config".to_string());
                        continue;
                    }
                },
                None => match named {
                    Some(n) => (
                        config
                            .accounts
                            .iter()
                            .position(|a| a.id == n)
                            .into_iter()
                            .collect(),
                        account_scope.clone(),
                    ),
                    None => ((0..config.accounts.len()).collect(), account_scope.clone()),
                },
            };
            let at = match times.get(i) {
                Ok(Some(t)) => t,
                Ok(None) => {
                    reject(format!("missing {}", cols.time));
                    continue;
                }
                Err(BadTime) => {
                    reject(format!("{} is not an RFC 3339 time", cols.time));
                    continue;
                }
            };
            // national numbers are read as the account's; a file for every
            // account needs --default-country for them
            let country = cols.country.or_else(|| {
                (targets.len() == 1)
                    .then(|| config.accounts[targets[0]].default_country)
                    .flatten()
            });
            let Some(contact) = cell(&contacts, i).and_then(|p| normalize(p, country)) else {
                let hint = if country.is_none() {
                    " (a national number needs --default-country)"
                } else {
                    ""
                };
                reject(format!("{} is not a possible number{hint}", cols.contact));
                continue;
            };
            let id = ids.as_ref().and_then(|a| cell(a, i)).map(str::trim);
            for &ai in &targets {
                let (source, keyword, event_id) = match &signal {
                    Some((provider, code, from)) => {
                        let id = match id {
                            Some(id) => format!("signal:{provider}:{id}"),
                            None => hashed(
                                "signal",
                                &[provider, code, from, &format_e164(contact), &at.to_string()],
                            ),
                        };
                        (Source::Provider, Some(format!("{provider}:{code}").into()), id)
                    }
                    None => {
                        let acc = &config.accounts[ai].id;
                        let id = match id {
                            Some(id) => format!("deactivated:{acc}:{id}"),
                            None => hashed("deactivated", &[acc, &format_e164(contact), &at.to_string()]),
                        };
                        (Source::Deactivated, None, id)
                    }
                };
                out.events.push(Event {
                    event_id,
                    account: accounts[ai].clone(),
                    scope: scope.clone(),
                    contact,
                    at,
                    action: Action::OptOut,
                    source,
                    keyword,
                    via: Some(via.clone()),
                });
            }
        }
        rejects.add(&b.batch, &bad)?;
    }
    Ok(out)
}

/// An event id from the fields that make a row what it is.
fn hashed(prefix: &str, parts: &[&str]) -> String {
    format!(
        "{prefix}#{:016x}",
        xxhash_rust::xxh3::xxh3_64(parts.join("\u{1f}").as_bytes())
    )
}

/// The account and sender a normalized sender id belongs to.
fn sender_of(config: &Config, id: &str) -> Option<(usize, usize)> {
    config
        .accounts
        .iter()
        .enumerate()
        .find_map(|(ai, a)| a.sender_position(id).map(|si| (ai, si)))
}

/// The providers of the built-in table, for messages.
fn provider_names() -> String {
    let mut names: Vec<&str> = BUILT_IN.iter().map(|(p, _, _)| *p).collect();
    names.dedup();
    names.join(", ")
}

/// Ingest signal files into a store (the caller holds the lock): print the
/// summary line on stderr and return its figures.
pub fn ingest(
    store: &mut crate::store::Store,
    files: &[String],
    cols: &SignalColumns,
    rejects_path: Option<&std::path::Path>,
) -> Result<crate::summary::SignalsSummary> {
    let json = |f: &String| f.ends_with(".json") || f.ends_with(".jsonl");
    let data = if cols.kind == SignalKind::Whatsapp && !files.is_empty() && files.iter().all(json) {
        webhooks(files)?
    } else {
        Dataset::open_shaped(files, cols.csv)?
    };
    ingest_dataset(store, data, cols, rejects_path)
}

/// [`ingest`] of a dataset already opened.
pub fn ingest_dataset(
    store: &mut crate::store::Store,
    data: Dataset,
    cols: &SignalColumns,
    rejects_path: Option<&std::path::Path>,
) -> Result<crate::summary::SignalsSummary> {
    let mut rejects = Rejects::new(rejects_path, &data.schema)?;
    let got = read(&store.config, data, cols, &mut rejects)?;
    let read = got.events.len();
    let done = store.ingest(got.events)?;
    let what = match cols.kind {
        SignalKind::SendLog => "signals",
        SignalKind::Deactivations => "deactivations",
        SignalKind::Whatsapp => "whatsapp",
    };
    let read_what = if cols.kind == SignalKind::Whatsapp {
        "stops and resumes"
    } else {
        "opt-outs"
    };
    eprintln!(
        "{what}: {read} {read_what} read, {} new, {} already in the store{}",
        done.new_events.len(),
        done.already_known,
        if cols.kind == SignalKind::SendLog {
            format!(", {} rows not opt-out signals", got.not_signals)
        } else {
            String::new()
        }
    );
    if let Some(line) = rejects.summary(rejects_path.is_some()) {
        eprintln!("{what}: {line}");
    }
    let rejected = rejects.count;
    rejects.finish()?;
    Ok(crate::summary::SignalsSummary {
        already_known: done.already_known as u64,
        command: None,
        events_read: read as u64,
        new_by_source_and_scope: crate::event::breakdown(&done.new_events),
        new_events: done.new_events.len() as u64,
        not_signals: got.not_signals,
        rejected,
    })
}

/// WhatsApp preference rows: `stop` opts the user out of the business
/// number's profile (of the account when that sender has
/// `account_level`), `resume` opts them back in to the same key.
fn read_whatsapp(
    config: &Config,
    mut data: Dataset,
    cols: &SignalColumns,
    rejects: &mut Rejects,
) -> Result<Read> {
    let found = data.columns(&[
        (&cols.contact, "--to-column"),
        (wa::VALUE, "value"),
        (&cols.time, "--time-column"),
    ])?;
    let category_i = data.find(wa::CATEGORY);
    let display_i = data.find(wa::DISPLAY);
    let number_id_i = data.find(wa::NUMBER_ID);
    if cols.profile.is_none() && display_i.is_none() && number_id_i.is_none() {
        return Err(Error::Usage(format!(
            "the WhatsApp rows name no business number ({} or {}): say whose they are with --profile wa:<profile>",
            wa::DISPLAY,
            wa::NUMBER_ID
        )));
    }
    let profile = match &cols.profile {
        Some(p) => Some(
            sender_of(config, &normalize_sender(p).unwrap_or_default())
                .ok_or_else(|| Error::Usage(format!("--profile {p} is not a sender of the config")))?,
        ),
        None => None,
    };
    let account_scope: Arc<str> = ACCOUNT_SCOPE.into();
    let mut out = Read::default();
    let mut row = 0u64;
    for batch in &mut data {
        let b = batch?;
        let via: Arc<str> = b.file.clone();
        let users = b.text(found[0])?;
        let values = b.text(found[1])?;
        let times = b.text(found[2])?;
        let categories = category_i.map(|i| b.text(i)).transpose()?;
        let displays = display_i.map(|i| b.text(i)).transpose()?;
        let number_ids = number_id_i.map(|i| b.text(i)).transpose()?;
        let mut bad: Vec<Rejected> = Vec::new();
        for i in 0..b.batch.num_rows() {
            row += 1;
            let mut reject = |why: String| bad.push((i as u32, row, why));
            let action = match cell(&values, i).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
                Some("stop") => Action::OptOut,
                Some("resume") => Action::OptIn,
                _ => {
                    reject(format!("{} is neither stop nor resume", wa::VALUE));
                    continue;
                }
            };
            let display = displays.as_ref().and_then(|d| cell(d, i)).map(str::trim);
            let number_id = number_ids.as_ref().and_then(|d| cell(d, i)).map(str::trim);
            let owner = profile.or_else(|| {
                let by_display = display.and_then(|d| {
                    let digits: String = d.chars().filter(char::is_ascii_digit).collect();
                    sender_of(config, &format!("wa:{digits}"))
                        .or_else(|| sender_of(config, &format!("wa:+{digits}")))
                });
                by_display.or_else(|| number_id.and_then(|n| sender_of(config, &format!("wa:{n}"))))
            });
            let Some((ai, si)) = owner else {
                reject("the business number is no WhatsApp sender of the config (as wa:<number> or wa:<phone_number_id>); give --profile".into());
                continue;
            };
            let acc = &config.accounts[ai];
            let sender = &acc.senders[si];
            // wa_id is the user's number in international form, without +
            let Some(contact) = cell(&users, i)
                .and_then(|u| normalize(&format!("+{}", u.trim().trim_start_matches('+')), None))
            else {
                reject(format!("{} is not a possible number", cols.contact));
                continue;
            };
            let Some(raw_at) = cell(&times, i).map(str::trim) else {
                reject(format!("missing {}", cols.time));
                continue;
            };
            let at = match raw_at.parse::<i64>() {
                Ok(secs) => secs.checked_mul(1_000_000),
                Err(_) => crate::ingest::parse_time_in(raw_at, cols.zone),
            };
            let Some(at) = at else {
                reject(format!(
                    "{} is neither Unix seconds nor an RFC 3339 time",
                    cols.time
                ));
                continue;
            };
            let category = categories
                .as_ref()
                .and_then(|c| cell(c, i))
                .map(str::trim)
                .unwrap_or("");
            let scope: Arc<str> = if sender.account_level {
                account_scope.clone()
            } else {
                sender.id.as_str().into()
            };
            let value = if action == Action::OptOut {
                "stop"
            } else {
                "resume"
            };
            out.events.push(Event {
                event_id: hashed(
                    "whatsapp",
                    &[&sender.id, &format_e164(contact), raw_at, value, category],
                ),
                account: acc.id.as_str().into(),
                scope,
                contact,
                at,
                action,
                source: Source::Whatsapp,
                keyword: (!category.is_empty()).then(|| category.into()),
                via: Some(via.clone()),
            });
        }
        rejects.add(&b.batch, &bad)?;
    }
    Ok(out)
}

/// Webhook bodies (one JSON object a line, or a file holding one object
/// or a list of them), flattened to one row per `user_preferences` entry.
fn webhooks(files: &[String]) -> Result<Dataset> {
    use arrow::array::StringBuilder;
    use arrow::datatypes::{DataType, Field, Schema};
    let names = [
        wa::WA_ID,
        wa::VALUE,
        wa::CATEGORY,
        wa::TIMESTAMP,
        wa::DISPLAY,
        wa::NUMBER_ID,
    ];
    let mut cols: Vec<StringBuilder> = names.iter().map(|_| StringBuilder::new()).collect();
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    for file in files {
        let body = std::fs::read_to_string(file)
            .map_err(|e| Error::io("cannot read", std::path::Path::new(file), e))?;
        let whole: Option<serde_json::Value> = serde_json::from_str(&body).ok();
        let docs: Vec<(usize, serde_json::Value)> = match whole {
            Some(serde_json::Value::Array(items)) => items.into_iter().map(|v| (0, v)).collect(),
            Some(v) => vec![(0, v)],
            None => {
                let mut docs = Vec::new();
                for (n, line) in body.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    let v = serde_json::from_str(line).map_err(|e| {
                        Error::Input(format!("{file}: line {}: not a JSON webhook body ({e})", n + 1))
                    })?;
                    docs.push((n + 1, v));
                }
                docs
            }
        };
        for (line, doc) in docs {
            let at = |what: &str| {
                if line > 0 {
                    format!("{file}: line {line}: {what}")
                } else {
                    format!("{file}: {what}")
                }
            };
            let entries = doc.get("entry").and_then(|e| e.as_array()).ok_or_else(|| {
                Error::Input(at(
                    "no entry list; expected a WhatsApp webhook body ({\"object\": ..., \"entry\": [...]})",
                ))
            })?;
            for change in entries
                .iter()
                .filter_map(|e| e.get("changes")?.as_array())
                .flatten()
            {
                let Some(value) = change.get("value") else {
                    continue;
                };
                let Some(prefs) = value.get("user_preferences").and_then(|p| p.as_array()) else {
                    continue;
                };
                let meta = value.get("metadata");
                let display = meta.and_then(|m| m.get("display_phone_number")).and_then(text);
                let number_id = meta.and_then(|m| m.get("phone_number_id")).and_then(text);
                for p in prefs {
                    let cells = [
                        p.get("wa_id").and_then(text),
                        p.get("value").and_then(text),
                        p.get("category").and_then(text),
                        p.get("timestamp").and_then(text),
                        display.clone(),
                        number_id.clone(),
                    ];
                    for (b, c) in cols.iter_mut().zip(cells) {
                        b.append_option(c);
                    }
                }
            }
        }
    }
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<arrow::array::ArrayRef> = cols.iter_mut().map(|b| Arc::new(b.finish()) as _).collect();
    let batch = arrow::array::RecordBatch::try_new(schema.clone(), arrays)
        .map_err(|e| Error::Internal(format!("whatsapp rows: {e}")))?;
    let name = files.first().map_or("whatsapp", String::as_str);
    Dataset::from_batches(name, schema, vec![batch])
}
