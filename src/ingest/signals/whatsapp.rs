//! WhatsApp's `user_preferences` webhook: a user stops or resumes a
//! business number's marketing messages. The bodies as Meta posts them
//! are flattened to rows; rows (from the bodies or from a table) become
//! opt-outs and opt-ins of the business number's WhatsApp sender.

use std::sync::Arc;

use super::{hashed, sender_of, Read, SignalColumns};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::event::{Action, Event, Source, ACCOUNT_SCOPE};
use crate::ingest::{Rejected, Rejects};
use crate::io::input::Dataset;
use crate::phone::{format_e164, normalize, normalize_sender};
use crate::util::columns::cell;

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

/// WhatsApp preference rows: `stop` opts the user out of the business
/// number's profile (of the account when that sender has
/// `account_level`), `resume` opts them back in to the same key.
pub(super) fn read_whatsapp(
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
                )
                .into(),
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
pub(super) fn webhooks(files: &[String]) -> Result<Dataset> {
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
