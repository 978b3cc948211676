//! One contact's answer (`optscrub check`, `Store.check` in Python):
//! whether it may be messaged, per account, and the events that decided.

use serde_json::json;

use super::{Reason, RowDecision, Scrubber};
use crate::error::Result;
use crate::event::Event;
use crate::phone::{format_e164, normalize_sender, DefaultCountry};
use crate::store::Store;

/// The answer for one account.
pub struct AccountAnswer {
    /// The account asked about.
    pub account: String,
    /// The decision, as a scrub of one row makes it.
    pub decision: RowDecision,
    /// The contact as the decision read it (with the account's country),
    /// `None` when the phone is not a number.
    pub contact: Option<u64>,
    /// Was the number erased (its events kept under its hash)?
    pub erased: bool,
    /// The opt-out and opt-in events behind the decision, oldest first.
    pub events: Vec<Event>,
    /// Events of reverted ledger files for this contact, with when their
    /// file was taken back: they count for nothing, and are shown.
    pub retracted: Vec<(Event, i64)>,
}

/// A contact's answer in one account, or in every account of the config.
pub struct Answer {
    /// May it be messaged (in every account asked about)?
    pub sendable: bool,
    /// Per account asked about.
    pub accounts: Vec<AccountAnswer>,
    /// The answer as `check --json` prints it.
    pub json: serde_json::Value,
}

/// A time as RFC 3339 in UTC.
pub fn time(at: i64) -> String {
    chrono::DateTime::from_timestamp_micros(at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

fn event_json(e: &Event) -> serde_json::Value {
    json!({"event_id": e.event_id.as_str(), "scope": e.scope, "action": e.action.as_str(), "source": e.source.as_str(),
           "keyword": e.keyword, "at": time(e.at), "via": e.via})
}

/// Whether `phone` may be messaged by `account` (every account of the
/// config when `None`) and `sender` (any of the account's when `None`).
/// The answer stands only on sound bytes: damage read on the way is an
/// error.
pub fn answer(
    store: &Store,
    scrubber: &Scrubber,
    phone: &str,
    account: Option<&str>,
    sender: Option<&str>,
    country: Option<DefaultCountry>,
) -> Result<Answer> {
    if crate::store::bundle::is_bundle(&store.dir) {
        return Err(crate::store::bundle::refuse(
            &store.dir,
            "check (its events are in the ledger)",
        ));
    }
    let names: Vec<&str> = match account {
        Some(acc) => vec![acc],
        None => store.config.accounts.iter().map(|x| x.id.as_str()).collect(),
    };
    let sender_id = sender.and_then(normalize_sender);
    // each account's decision, and the contact it read the phone as
    let mut decided = Vec::with_capacity(names.len());
    for name in names {
        let d = scrubber.decide_one(Some(phone), Some(name), sender, country);
        let read = (d.reason != Some(Reason::InvalidPhone)).then_some(d.contact);
        scrubber.verified()?;
        // an erased number's events are kept under its hash
        decided.push((name, d, read, read.map(|c| scrubber.erasures().key_of(c))));
    }
    let contact = decided.iter().find_map(|(_, _, read, _)| *read);
    // events of reverted ledger files, read once per contact (accounts
    // with different countries may read the phone as different contacts)
    let mut taken_back: Vec<(u64, Vec<(Event, i64)>)> = Vec::new();
    for c in decided.iter().filter_map(|(_, _, _, c)| *c) {
        if !taken_back.iter().any(|(k, _)| *k == c) {
            taken_back.push((c, store.retracted(c)?));
        }
    }
    // the key runs, opened once for every account asked about (none for
    // a phone that is not a number); the accounts' lookups side by side:
    // each reads its own blocks and ledger pages
    let runs = match decided.iter().any(|(_, _, _, c)| c.is_some()) {
        true => Some(store.key_lookups()?),
        false => None,
    };
    let deciding: Vec<Vec<Event>> = {
        use rayon::prelude::*;
        decided
            .par_iter()
            .map(|(name, _, _, c)| match (c, &runs) {
                (Some(c), Some(runs)) => store.deciding_in(runs, name, sender_id.as_deref(), *c),
                _ => Ok(Vec::new()),
            })
            .collect::<Result<_>>()?
    };
    let mut accounts = Vec::with_capacity(decided.len());
    for ((name, d, read, c), events) in decided.into_iter().zip(deciding) {
        let retracted = taken_back
            .iter()
            .filter(|(k, _)| Some(*k) == c)
            .flat_map(|(_, all)| all.iter())
            .filter(|(e, _)| &*e.account == name)
            .cloned()
            .collect();
        accounts.push(AccountAnswer {
            account: name.to_string(),
            decision: d,
            contact: read,
            erased: c.is_some_and(crate::store::erasure::is_erased),
            events,
            retracted,
        });
    }
    let sendable = accounts.iter().all(|a| a.decision.reason.is_none());
    let one = |a: &AccountAnswer| {
        let d = a.decision;
        let reason = d.reason.map(|r| r.as_str());
        let scope = d.reason.and_then(|_| scrubber.scope_name(d.scope));
        let mut one = json!({
            "phone": a.contact.map(format_e164), "account": a.account, "sender": sender_id,
            "sendable": d.reason.is_none(), "reason": reason, "scope": scope,
            "events": a.events.iter().map(event_json).collect::<Vec<_>>(),
        });
        if a.erased {
            one["erased"] = true.into();
        }
        if !a.retracted.is_empty() {
            one["retracted"] = a
                .retracted
                .iter()
                .map(|(e, at)| {
                    let mut j = event_json(e);
                    j["reverted_at"] = time(*at).into();
                    j
                })
                .collect();
        }
        one
    };
    let json = match account {
        Some(_) => one(&accounts[0]),
        None => json!({
            "phone": contact.map(format_e164), "sender": sender_id, "sendable": sendable,
            "accounts": accounts.iter().map(one).collect::<Vec<_>>(),
        }),
    };
    Ok(Answer {
        sendable,
        accounts,
        json,
    })
}
