//! `optscrub check --store DIR [--account ID] [--sender ID] PHONE [--json] [--exit-status]`

use serde_json::json;

use crate::cmd::scrub::parse_country;
use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::event::Event;
use crate::phone::{format_e164, normalize_sender};
use crate::scrub::{Reason, Scrubber};
use crate::store::Store;

/// Arguments of `check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// The account that would send; without it, the contact's state in
    /// every account.
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// The sender that would send; without it, every sender of the account.
    #[arg(long, value_name = "ID")]
    sender: Option<String>,
    /// Read a national number as this country's (ISO 3166 alpha-2).
    #[arg(long, value_name = "XX")]
    default_country: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Answer in the exit status too: 0 sendable, 3 not sendable (in
    /// every account when --account is not given), as `grep -q` does.
    #[arg(long)]
    exit_status: bool,
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

/// Exit status of `--exit-status` for a contact that may not be messaged.
pub(super) const NOT_SENDABLE: i32 = 3;

/// Answer whether the contact may be messaged; returns the exit status.
pub(super) fn run(a: Args) -> Result<i32> {
    let country = parse_country(a.default_country.as_deref())?;
    let (store, opt_outs) = Store::open_with_opt_outs(&a.store.store)?;
    let scrubber = Scrubber::for_lookups(&store.config, opt_outs);
    let accounts: Vec<&str> = match &a.account {
        Some(acc) => vec![acc.as_str()],
        None => store.config.accounts.iter().map(|x| x.id.as_str()).collect(),
    };
    let sender = a.sender.as_deref().and_then(normalize_sender);
    let mut answers = Vec::new();
    let mut contact = None;
    for account in &accounts {
        let d = scrubber.decide_one(Some(&a.phone), Some(account), a.sender.as_deref(), country);
        // the contact as the decision read it (with the account's country)
        let c = (d.reason != Some(Reason::InvalidPhone)).then_some(d.contact);
        // the answer stands only on sound bytes
        scrubber.verified()?;
        contact = contact.or(c);
        let events = match c {
            Some(c) => store.deciding(account, sender.as_deref(), c)?,
            None => Vec::new(),
        };
        answers.push((*account, d, c, events));
    }
    let all_sendable = answers.iter().all(|(_, d, _, _)| d.reason.is_none());
    let one = |(account, d, c, events): &(&str, crate::scrub::RowDecision, Option<u64>, Vec<Event>)| {
        let reason = d.reason.map(|r| r.as_str());
        let scope = d.reason.and_then(|_| scrubber.scope_name(d.scope));
        json!({
            "phone": c.map(format_e164), "account": account, "sender": sender,
            "sendable": d.reason.is_none(), "reason": reason, "scope": scope,
            "events": events.iter().map(event_json).collect::<Vec<_>>(),
        })
    };
    let out = match &a.account {
        Some(_) => one(&answers[0]),
        None => json!({
            "phone": contact.map(format_e164), "sender": sender, "sendable": all_sendable,
            "accounts": answers.iter().map(one).collect::<Vec<_>>(),
        }),
    };
    if a.json {
        println!("{out}");
    } else {
        for answer in &answers {
            print_answer(answer, a.account.is_none(), &scrubber);
        }
    }
    write_summary(a.store.summary.as_deref(), &out)?;
    Ok(if a.exit_status && !all_sendable {
        NOT_SENDABLE
    } else {
        0
    })
}

fn print_answer(
    (account, d, contact, events): &(&str, crate::scrub::RowDecision, Option<u64>, Vec<Event>),
    name_account: bool,
    scrubber: &Scrubber,
) {
    let reason = d.reason.map(|r| r.as_str());
    let scope = d.reason.and_then(|_| scrubber.scope_name(d.scope));
    let prefix = if name_account {
        format!("{account}: ")
    } else {
        String::new()
    };
    match reason {
        None => println!("{prefix}sendable: yes"),
        Some(r) => println!(
            "{prefix}sendable: no ({r}{})",
            scope.map(|s| format!(", scope {s}")).unwrap_or_default()
        ),
    }
    for e in events {
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
