//! `optscrub erase`: an erased number keeps every decision it had, under a
//! keyed hash; nothing the store keeps holds the number; the same rows
//! ingested again are known; later events of the number decide.

use std::collections::HashSet;
use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;

use crate::common::{self, Work};
use crate::props::{ev, store_list, to_event, Listed, CONFIG};
use optscrub::event::{Action, Event, Source};
use optscrub::scrub::Scrubber;
use optscrub::store::Store;

const ACCOUNTS: [&str; 2] = ["a", "b"];
const SENDERS: [Option<&str>; 4] = [None, Some("+447860009001"), Some("wa:a"), Some("+447860009002")];

/// Every (account, sender, contact) decision, as (reason, scope).
fn decisions(store: &Store, contacts: &[u64]) -> Vec<(Option<&'static str>, Option<String>)> {
    let s = Scrubber::for_lookups(
        &store.config,
        store.opt_outs().unwrap(),
        store.erasures().unwrap(),
    );
    let mut out = Vec::new();
    for &c in contacts {
        for a in ACCOUNTS {
            for sender in SENDERS {
                let d = s.decide_one(Some(&format!("+{c}")), Some(a), sender, None);
                out.push((
                    d.reason.map(|r| r.as_str()),
                    d.reason.and_then(|_| s.scope_name(d.scope)).map(String::from),
                ));
            }
        }
    }
    out
}

/// Every event of every ledger file, read as a stranger would read them.
fn ledger_rows(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(dir.join("ledger")).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "parquet") {
            let b = common::read_parquet(&p);
            let ids = common::strings(&b, "event_id");
            let contacts = b
                .column_by_name("contact")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow::array::UInt64Array>()
                .unwrap()
                .clone();
            for (i, id) in ids.into_iter().enumerate() {
                out.push((id, contacts.value(i)));
            }
        }
    }
    out
}

/// Ids as optscrub makes them from a row (the number goes into the hash)
/// for the opt-outs of every other event, the log's ids for the rest.
fn with_ids(events: &mut [Event]) {
    for (i, e) in events.iter_mut().enumerate() {
        if e.action == Action::OptOut && i % 2 == 0 {
            let made = format!("{}|{}|{}|{i}", e.account, e.scope, e.contact);
            e.event_id = format!("import#{:016x}", xxhash_rust::xxh3::xxh3_64(made.as_bytes())).into();
            e.source = Source::Import;
            e.keyword = None;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn an_erased_number_decides_as_before_and_is_nowhere(
        evs in prop::collection::vec(ev(), 1..30),
        files in 1..4usize,
        erase_mask in 1..64u32,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let mut store = Store::init(&dir.path().join("store"), &config).unwrap();
        let mut events: Vec<Event> = evs.iter().enumerate().map(|(i, e)| to_event(i, e)).collect();
        with_ids(&mut events);
        let chunks: Vec<Vec<Event>> =
            events.chunks(events.len().div_ceil(files).max(1)).map(|c| c.to_vec()).collect();
        for c in &chunks {
            store.ingest(c.clone()).unwrap();
        }
        let mut contacts: Vec<u64> = events.iter().map(|e| e.contact).collect();
        contacts.sort_unstable();
        contacts.dedup();
        let erase: Vec<u64> = contacts
            .iter()
            .enumerate()
            .filter(|(i, _)| erase_mask & (1 << (i % 6)) != 0)
            .map(|(_, &c)| c)
            .collect();
        prop_assume!(!erase.is_empty());
        let before_list = store_list(&store, None);
        let before = decisions(&store, &contacts);
        let old_ids: HashSet<String> = events
            .iter()
            .filter(|e| erase.contains(&e.contact) && e.event_id.contains('#'))
            .map(|e| e.event_id.to_string())
            .collect();

        let done = store.erase(&erase).unwrap();
        prop_assert_eq!(done.erased as usize, erase.len());
        let er = store.erasures().unwrap();
        // every decision as before, the list the same under the hashes
        prop_assert_eq!(decisions(&store, &contacts), before.clone());
        let mut mapped: Vec<Listed> = before_list
            .iter()
            .map(|l| { let mut l = l.clone(); l.2 = er.key_of(l.2); l })
            .collect();
        mapped.sort();
        prop_assert_eq!(store_list(&store, None), mapped.clone());
        // no ledger row holds the number, nor an id made from it
        for (id, c) in ledger_rows(&store.dir) {
            prop_assert!(!erase.contains(&c));
            prop_assert!(!old_ids.contains(&id), "{}", id);
        }
        // a store opened afresh, and one rebuilt, agree
        let reopened = Store::open(&store.dir).unwrap();
        prop_assert_eq!(decisions(&reopened, &contacts), before.clone());
        store.rebuild().unwrap();
        prop_assert_eq!(store_list(&store, None), mapped.clone());
        // the same rows again are known
        for c in &chunks {
            let again = store.ingest(c.clone()).unwrap();
            prop_assert_eq!(again.new_events.len(), 0);
        }
        prop_assert_eq!(decisions(&store, &contacts), before.clone());
        // erasing again changes nothing
        let g = store.manifest.generation;
        let again = store.erase(&erase).unwrap();
        prop_assert_eq!(again.already_erased as usize, erase.len());
        prop_assert_eq!(store.manifest.generation, g);
        // a later event of an erased number decides, and is kept hashed
        let mut later = events.iter().find(|e| e.contact == erase[0]).unwrap().clone();
        later.event_id = "later-1".into();
        later.at = 1_000;
        later.action = match later.action { Action::OptIn => Action::OptOut, Action::OptOut => Action::OptIn };
        store.ingest(vec![later.clone()]).unwrap();
        let now = store_list(&store, None);
        let key = (later.account.to_string(), later.scope.to_string(), er.key_of(later.contact));
        let listed = now.iter().any(|l| (l.0.clone(), l.1.clone(), l.2) == key);
        prop_assert_eq!(listed, later.action == Action::OptOut);
        for (_, c) in ledger_rows(&store.dir) {
            prop_assert!(!erase.contains(&c));
        }
    }
}

/// An opt-out and an opt-in of one key at the same microsecond are settled
/// by their ids; when the new ids would settle it the other way, the erase
/// is refused and nothing changes. The key is random per store, so some
/// of these stores flip and some do not.
#[test]
fn an_erase_that_would_change_a_tie_is_refused() {
    let mut refused = 0;
    let mut done = 0;
    for t in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let mut store = Store::init(&dir.path().join("store"), &config).unwrap();
        let ev = |id: String, action| Event {
            event_id: id.into(),
            account: "a".into(),
            scope: "account".into(),
            contact: 447700900001,
            at: 5,
            action,
            source: Source::Whatsapp,
            keyword: None,
            via: None,
        };
        store
            .ingest(vec![
                ev(format!("whatsapp#{:016x}", 2 * t), Action::OptOut),
                ev(format!("whatsapp#{:016x}", 2 * t + 1), Action::OptIn),
            ])
            .unwrap();
        let contacts = [447700900001];
        let before = decisions(&store, &contacts);
        let files = |d: &Path| {
            let mut v: Vec<_> = walk(d);
            v.sort();
            v
        };
        let on_disk = files(&store.dir);
        match store.erase(&contacts) {
            Ok(_) => done += 1,
            Err(e) => {
                assert!(e.to_string().contains("would change a decision"), "{e}");
                assert_eq!(files(&store.dir), on_disk);
                refused += 1;
            }
        }
        assert_eq!(decisions(&Store::open(&store.dir).unwrap(), &contacts), before);
    }
    assert!(refused > 0 && done > 0, "refused {refused}, done {done}");
}

fn walk(d: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path().to_string_lossy().into_owned());
        }
    }
    out
}

fn check(w: &Work, store: &str, phone: &str) -> Value {
    serde_json::from_str(&w.ok(&["check", "--store", store, "--account", "acme", phone, "--json"])).unwrap()
}

#[test]
fn erase_from_the_command_line() {
    let w = Work::new();
    let store = w.loaded_store();
    let replies = w.write(
        "replies.csv",
        "message_id,received_at,from,to,body\nR1,2026-11-01T09:00:00Z,+447700900401,+447860009123,STOP\n",
    );
    // the confirmation waits in the outbox: erasing that number is refused
    w.ok_stderr(&["ingest", "replies", "--store", &store, &replies]);
    let e = w.fails(&["erase", "--store", &store, "+447700900401"], 1);
    assert!(e.contains("outbox holds 1 replies"), "{e}");
    assert!(!e.contains("447700900401"), "the number is in the error: {e}");
    w.ok_stderr(&["outbox", "--store", &store, "--output", &w.p("out.csv")]);
    let before_1 = check(&w, &store, "+447700900401");
    let before_2 = check(&w, &store, "+447700900002");
    assert_eq!(before_1["sendable"], false);
    assert_eq!(before_2["sendable"], false);

    // from a file, so the numbers stay out of the process list
    let list = w.write("erase.txt", "+447700900401\n\n0044 7700 900002\n+447700900999\n");
    let summary = w.p("s.json");
    let err = w.ok_stderr(&["erase", "--store", &store, "--file", &list, "--summary", &summary]);
    assert!(err.contains("2 numbers erased now"), "{err}");
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(s["erased"], 2, "{s}");
    assert_eq!(s["not_in_store"], 1, "{s}");
    assert_eq!(s["command"], "erase", "{s}");

    for (phone, before) in [("+447700900401", &before_1), ("+447700900002", &before_2)] {
        let v = check(&w, &store, phone);
        assert_eq!(v["erased"], true, "{v}");
        assert_eq!(v["sendable"], before["sendable"], "{v}");
        assert_eq!(v["reason"], before["reason"], "{v}");
        assert_eq!(
            v["events"].as_array().unwrap().len(),
            before["events"].as_array().unwrap().len()
        );
    }
    // a list that brings them back is still scrubbed
    let input = w.write(
        "list.csv",
        "phone,account_id,sender\n+447700900401,acme,+447860009123\n+447700900002,acme,+447860009123\n+447700900777,acme,+447860009123\n",
    );
    w.ok_stderr(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &input,
        "--output",
        &w.p("kept.csv"),
    ]);
    let kept = w.read_csv("kept.csv");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[1][0], "+447700900777");
    // so is it on a bundle of the store, and an erase there is refused
    let bundle = w.p("b.tar.gz");
    w.ok_stderr(&["bundle", "--store", &store, "--output", &bundle]);
    crate::bundle::unpack(Path::new(&bundle), &w.path("unpacked"));
    let unpacked = w.p("unpacked");
    w.ok_stderr(&[
        "scrub",
        "--store",
        &unpacked,
        "--input",
        &input,
        "--output",
        &w.p("kept2.csv"),
    ]);
    assert_eq!(w.read_csv("kept2.csv"), kept);
    let e = w.fails(&["erase", "--store", &unpacked, "+447700900777"], 1);
    assert!(e.contains("bundle"), "{e}");
    // exports show the hash, not the number
    w.ok_stderr(&["export", "--store", &store, "--output", &w.p("x.csv")]);
    let text = std::fs::read_to_string(w.path("x.csv")).unwrap();
    assert!(
        !text.contains("447700900401") && !text.contains("447700900002"),
        "{text}"
    );
    assert!(text.contains(",erased:"), "{text}");
    // no file of the store holds the numbers (the ledger files that did
    // are gone, with the generation before)
    for (_, c) in ledger_rows(Path::new(&store)) {
        assert!(c != 447700900401 && c != 447700900002);
    }
    // an import that brings an erased number back keeps its row under the
    // hash, with an id that is not a hash of the number; a second import
    // of the same file adds nothing
    let renamed = |rows: &[(String, u64)]| {
        rows.iter()
            .filter(|(id, _)| id.starts_with("import#erased-"))
            .count()
    };
    let before = renamed(&ledger_rows(Path::new(&store)));
    let import = w.write(
        "again.csv",
        "phone,sender\n+447700900002,+447860009123\n+447700900888,+447860009123\n",
    );
    let import_again = || {
        w.ok_stderr(&[
            "ingest",
            "import",
            "--store",
            &store,
            &import,
            "--account",
            "acme",
            "--account-wide",
        ])
    };
    let err = import_again();
    assert!(err.contains("2 new"), "{err}");
    let err = import_again();
    assert!(err.contains("0 new, 2 already"), "{err}");
    let rows = ledger_rows(Path::new(&store));
    assert!(rows.iter().all(|(_, c)| *c != 447700900002));
    assert_eq!(renamed(&rows), before + 1);
    assert!(rows
        .iter()
        .any(|(id, c)| *c == 447700900888 && id.starts_with("import#") && !id.contains("erased")));
    let v = check(&w, &store, "+447700900002");
    assert_eq!(
        (v["erased"].clone(), v["sendable"].clone()),
        (true.into(), false.into()),
        "{v}"
    );
    let stats = w.ok(&["stats", "--store", &store]);
    assert!(stats.contains("erased: 2 numbers"), "{stats}");
    // again: nothing to do
    let err = w.ok_stderr(&["erase", "--store", &store, "+447700900401"]);
    assert!(err.contains("1 erased before"), "{err}");
    // a bad number is named by its place, not echoed
    let e = w.fails(&["erase", "--store", &store, "+447700900401", "hello 447"], 1);
    assert!(e.contains("number 2 of the command line"), "{e}");
    assert!(!e.contains("hello"), "{e}");
    let bad = w.write("bad.txt", "+447700900401\nnot a number\n");
    let e = w.fails(&["erase", "--store", &store, "--file", &bad], 1);
    assert!(e.contains("line 2"), "{e}");
    w.fails(&["erase", "--store", &store], 1);
    let stats = w.ok(&["stats", "--store", &store]);
    assert!(stats.contains("files verified"), "{stats}");
}
