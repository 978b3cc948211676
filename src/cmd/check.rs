//! `optscrub check --store DIR [--account ID] [--sender ID] PHONE [--json] [--exit-status]`

use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::phone::parse_country;
use crate::scrub::{check, Scrubber};
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

/// Exit status of `--exit-status` for a contact that may not be messaged.
pub(super) const NOT_SENDABLE: i32 = 3;

/// Answer whether the contact may be messaged; returns the exit status.
pub(super) fn run(a: Args) -> Result<i32> {
    let country = parse_country(a.default_country.as_deref())?;
    let (store, opt_outs) = Store::open_with_opt_outs(&a.store.store)?;
    let scrubber = Scrubber::for_lookups(&store.config, opt_outs, store.erasures()?);
    let answer = check::answer(
        &store,
        &scrubber,
        &a.phone,
        a.account.as_deref(),
        a.sender.as_deref(),
        country,
    )?;
    let (out, all_sendable) = (&answer.json, answer.sendable);
    if a.json {
        println!("{out}");
    } else {
        for one in &answer.accounts {
            print_answer(one, a.account.is_none(), &scrubber);
        }
    }
    write_summary(a.store.summary.as_deref(), out)?;
    Ok(if a.exit_status && !all_sendable {
        NOT_SENDABLE
    } else {
        0
    })
}

fn print_answer(one: &check::AccountAnswer, name_account: bool, scrubber: &Scrubber) {
    let check::AccountAnswer {
        account,
        decision: d,
        contact,
        erased,
        events,
        retracted,
    } = one;
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
            check::time(e.at),
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
    if *erased {
        println!("  erased: the number's events are kept under a keyed hash of it");
    }
    if events.is_empty() && contact.is_some() {
        println!("  no opt-out or opt-in events for this contact in this account");
    }
    for (e, at) in retracted {
        println!(
            "  {}  {:<7} scope {:<16} {:<12} id {}  (taken back {} by revert: counts for nothing)",
            check::time(e.at),
            e.action.as_str(),
            e.scope,
            e.source.as_str(),
            e.event_id,
            check::time(*at)
        );
    }
}
