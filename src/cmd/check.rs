//! `optscrub check --store DIR --account ID [--sender ID] PHONE [--json]`

use serde_json::json;

use crate::cmd::scrub::parse_country;
use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::event::Event;
use crate::phone::{format_e164, normalize, normalize_sender};
use crate::scrub::Scrubber;
use crate::store::Store;

/// Arguments of `check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// The account that would send.
    #[arg(long, value_name = "ID")]
    account: String,
    /// The sender that would send; without it, every sender of the account.
    #[arg(long, value_name = "ID")]
    sender: Option<String>,
    /// Read a national number as this country's (ISO 3166 alpha-2).
    #[arg(long, value_name = "XX")]
    default_country: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The contact's phone number.
    phone: String,
}

fn time(at: i64) -> String {
    chrono::DateTime::from_timestamp_micros(at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

fn event_json(e: &Event) -> serde_json::Value {
    json!({"event_id": e.event_id, "scope": e.scope, "action": e.action.as_str(), "source": e.source.as_str(),
           "keyword": e.keyword, "at": time(e.at), "via": e.via})
}

/// Answer whether the contact may be messaged.
pub fn run(a: Args) -> Result<()> {
    let country = parse_country(a.default_country.as_deref())?;
    let (store, snapshot) = Store::open_with_snapshot(&a.store.store)?;
    let scrubber = Scrubber::new(&store.config, snapshot);
    let d = scrubber.decide_one(Some(&a.phone), Some(&a.account), a.sender.as_deref(), country);
    let contact = normalize(&a.phone, country);
    let sender = a.sender.as_deref().and_then(normalize_sender);
    let events = match contact {
        Some(c) => store.deciding(&a.account, sender.as_deref(), c)?,
        None => Vec::new(),
    };
    let reason = d.reason.map(|r| r.as_str());
    let scope = d.reason.and_then(|_| scrubber.scope_name(d.scope));
    let out = json!({
        "phone": contact.map(format_e164), "account": a.account, "sender": sender,
        "sendable": d.reason.is_none(), "reason": reason, "scope": scope,
        "events": events.iter().map(event_json).collect::<Vec<_>>(),
    });
    if a.json {
        println!("{out}");
    } else {
        match reason {
            None => println!("sendable: yes"),
            Some(r) => println!(
                "sendable: no ({r}{})",
                scope.map(|s| format!(", scope {s}")).unwrap_or_default()
            ),
        }
        for e in &events {
            println!(
                "  {}  {:<7} scope {:<16} {:<12} {}{}  id {}",
                time(e.at),
                e.action.as_str(),
                e.scope,
                e.source.as_str(),
                e.keyword
                    .as_deref()
                    .map(|k| format!("keyword {k} "))
                    .unwrap_or_default(),
                e.via.as_deref().map(|v| format!("via {v}")).unwrap_or_default(),
                e.event_id
            );
        }
        if events.is_empty() && contact.is_some() {
            println!("  no opt-out or opt-in events for this contact in this account");
        }
    }
    write_summary(a.store.summary.as_deref(), &out)
}
