//! `optscrub stats --store DIR`

use std::collections::BTreeMap;

use serde_json::json;

use crate::cmd::{write_summary, StoreArgs};
use crate::error::Result;
use crate::store::Store;

/// Arguments of `stats`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
}

/// Print counts per account and scope, and bytes on disk.
pub(super) fn run(a: Args) -> Result<()> {
    let (store, snap) = Store::open_with_snapshot(&a.store.store)?;
    let verified = store.verify()?;
    let m = &store.manifest;
    let events: u64 = m.ledger.iter().map(|f| f.rows).sum();
    let ledger_bytes: u64 = m.ledger.iter().map(|f| f.bytes).sum();
    let opt_outs = snap.opt_outs();
    let mut per_account: BTreeMap<&str, Vec<(&str, u64)>> = BTreeMap::new();
    for acc in &store.config.accounts {
        per_account.entry(&acc.id).or_default();
    }
    for s in &snap.scopes {
        per_account
            .entry(&s.account)
            .or_default()
            .push((&s.scope, s.bitmap.len()));
    }
    println!("{:<20} {:<28} {:>12}", "account", "scope", "opt-outs");
    for (acc, scopes) in &per_account {
        if scopes.is_empty() {
            println!("{acc:<20} {:<28} {:>12}", "-", 0);
        }
        for (scope, n) in scopes {
            println!("{acc:<20} {scope:<28} {n:>12}");
        }
    }
    let per_opt_out = if opt_outs > 0 {
        m.snapshot.bytes as f64 / opt_outs as f64
    } else {
        0.0
    };
    let probe_bytes: u64 = m.probe_files().map(|p| p.bytes).sum();
    let probe_files = m.probe_files().count();
    let in_files = match probe_files {
        1 => String::new(),
        n => format!(" in {n} files"),
    };
    let probe = match probe_files {
        0 => String::new(),
        _ if opt_outs > 0 => format!(
            "probe {probe_bytes} bytes{in_files} ({:.2} bytes per opt-out); ",
            probe_bytes as f64 / opt_outs as f64
        ),
        _ => format!("probe {probe_bytes} bytes{in_files}; "),
    };
    println!(
        "total: {opt_outs} opt-outs; {events} events in {} ledger files ({ledger_bytes} bytes); snapshot {} bytes ({per_opt_out:.2} bytes per opt-out); {probe}index {} bytes in {} runs; ids {} bytes in {} runs; generation {}; all {verified} files verified",
        m.ledger.len(),
        m.snapshot.bytes,
        m.keys.iter().map(|r| r.bytes).sum::<u64>(),
        m.keys.len(),
        m.ids.iter().map(|r| r.bytes).sum::<u64>(),
        m.ids.len(),
        m.generation
    );
    if !m.reverted.is_empty() {
        let events: u64 = m.reverted.iter().map(|r| r.events).sum();
        println!(
            "reverted: {} ledger files ({events} events that stay in the ledger and count for nothing; `optscrub revert --list` names them)",
            m.reverted.len()
        );
    }
    if !m.erased.is_empty() {
        println!(
            "erased: {} numbers (their events kept under a keyed hash of the number)",
            m.erased.len()
        );
    }
    match &store.exposed {
        Some(why) => println!("permissions: {why}"),
        None => println!("permissions: only its owner may read or write it"),
    }
    let pending = store.pending_replies();
    println!(
        "outbox: {pending} replies pending{}",
        if pending > 0 {
            format!(
                " (hand them over with `optscrub outbox --store {} --output FILE`)",
                store.dir.display()
            )
        } else {
            String::new()
        }
    );
    let scopes: Vec<_> = snap
        .scopes
        .iter()
        .map(|s| json!({"account_id": s.account, "scope": s.scope, "opt_outs": s.bitmap.len()}))
        .collect();
    write_summary(
        a.store.summary.as_deref(),
        &json!({"command": "stats", "accounts": store.config.accounts.len(), "opt_outs": opt_outs, "events": events,
                "ledger_files": m.ledger.len(), "ledger_bytes": ledger_bytes, "snapshot_bytes": m.snapshot.bytes,
                "probe_bytes": m.probe.as_ref().map(|_| probe_bytes), "probe_files": probe_files, "index_bytes": m.keys.iter().map(|r| r.bytes).sum::<u64>(), "index_runs": m.keys.len(),
                "ids_bytes": m.ids.iter().map(|r| r.bytes).sum::<u64>(), "id_runs": m.ids.len(), "generation": m.generation, "verified_files": verified, "pending_replies": pending, "readable_by_others": store.exposed.is_some(), "scopes": scopes,
                "reverted_ledger_files": m.reverted.iter().map(|r| r.ledger).collect::<Vec<_>>(), "erased_numbers": m.erased.len()}),
    )
}
