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

mod whatsapp;
use crate::util::columns::cell;
pub use whatsapp::wa;
use whatsapp::{read_whatsapp, webhooks};

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

impl SignalKind {
    /// A kind by the name `--kind` takes (`send_log` for `send-log` too).
    pub fn parse(name: &str) -> Option<SignalKind> {
        <SignalKind as clap::ValueEnum>::from_str(&name.replace('_', "-"), false).ok()
    }
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

/// The (provider, code) pairs that are opt-outs, after the config's
/// changes. Providers and codes compare trimmed and without ASCII case
/// (`opted_out` is `OPTED_OUT`); a send log asks once per row, so a
/// lookup allocates nothing (the table is a few providers of a few codes).
pub struct CodeTable {
    /// Per provider, its opt-out codes (empty when the config switched
    /// every one off: the provider is still known).
    providers: Vec<(String, Vec<String>)>,
}

impl CodeTable {
    /// The built-in table with the config's `[[signals]]` applied.
    pub fn new(config: &Config) -> CodeTable {
        let mut t = CodeTable {
            providers: Vec::new(),
        };
        for (p, c, _) in BUILT_IN {
            t.codes_of(p).push(c.to_string());
        }
        for s in &config.signals {
            let code = s.code.trim();
            let codes = t.codes_of(&s.provider);
            codes.retain(|c| !c.eq_ignore_ascii_case(code));
            if s.meaning == SignalMeaning::OptOut {
                codes.push(code.to_string());
            }
        }
        t
    }

    fn codes_of(&mut self, provider: &str) -> &mut Vec<String> {
        let p = provider.trim();
        let at = match self.providers.iter().position(|(q, _)| q.eq_ignore_ascii_case(p)) {
            Some(at) => at,
            None => {
                self.providers.push((p.to_string(), Vec::new()));
                self.providers.len() - 1
            }
        };
        &mut self.providers[at].1
    }

    /// Whether a code of a provider is an opt-out; `None` when no code of
    /// that provider is known at all.
    pub fn is_opt_out(&self, provider: &str, code: &str) -> Option<bool> {
        let (provider, code) = (provider.trim(), code.trim());
        let (_, codes) = self
            .providers
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(provider))?;
        Some(codes.iter().any(|c| c.eq_ignore_ascii_case(code)))
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
                signal = Some((provider.to_ascii_lowercase(), code.to_string(), from));
            }
            // the account the row names, as its place in the config
            let named = match account_cells.as_ref().and_then(|a| cell(a, i)).map(str::trim) {
                Some(a) => match config.accounts.iter().position(|x| x.id == a) {
                    Some(ai) => Some(ai),
                    None => {
                        reject(format!("unknown account in {}", cols.account));
                        continue;
                    }
                },
                None => None,
            };
            // the accounts and scope the opt-out applies to
            let (targets, scope): (Vec<usize>, Arc<str>) = match &signal {
                Some((_, _, from)) => match sender_of(config, from) {
                    Some((ai, si)) => {
                        let acc = &config.accounts[ai];
                        if named.is_some_and(|n| n != ai) {
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
                        Some(ai) => (vec![ai], account_scope.clone()),
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
                    Some(ai) => (vec![ai], account_scope.clone()),
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
            // without the log's own id, the id is a hash of what makes the row
            let (e164, at_text) = match id {
                Some(_) => (String::new(), String::new()),
                None => (format_e164(contact), at.to_string()),
            };
            for &ai in &targets {
                let (source, keyword, event_id) = match &signal {
                    Some((provider, code, from)) => (
                        Source::Provider,
                        Some(format!("{provider}:{code}").into()),
                        match id {
                            Some(id) => format!("signal:{provider}:{id}"),
                            None => hashed("signal", &[provider, code, from, &e164, &at_text]),
                        },
                    ),
                    None => {
                        let acc = &config.accounts[ai].id;
                        let event_id = match id {
                            Some(id) => format!("deactivated:{acc}:{id}"),
                            None => hashed("deactivated", &[acc, &e164, &at_text]),
                        };
                        (Source::Deactivated, None, event_id)
                    }
                };
                out.events.push(Event {
                    event_id: event_id.into(),
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
