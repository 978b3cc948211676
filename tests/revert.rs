//! `optscrub revert`: a wrongly mapped import or webform file is taken
//! back; the state is what a store that never had the file holds, later
//! events of other files still decide, and the file's events stay in the
//! ledger, shown by `check` as taken back.

use proptest::prelude::*;
use serde_json::Value;

use crate::common::Work;
use crate::props::{ev, model_list, store_list, to_event, CONFIG};
use optscrub::event::{Event, Source};
use optscrub::store::Store;

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn a_reverted_file_is_as_if_never_ingested(
        evs in prop::collection::vec(ev(), 1..30),
        files in 1..5usize,
        pick in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let mut store = Store::init(&dir.path().join("store"), &config).unwrap();
        let events: Vec<Event> = evs.iter().enumerate().map(|(i, e)| to_event(i, e)).collect();
        let mut chunks: Vec<Vec<Event>> =
            events.chunks(events.len().div_ceil(files).max(1)).map(|c| c.to_vec()).collect();
        // the file taken back is an import
        let r = pick.index(chunks.len());
        for e in &mut chunks[r] {
            e.source = Source::Import;
            e.keyword = None;
        }
        let mut generation = 0;
        for (i, c) in chunks.iter().enumerate() {
            store.ingest(c.clone()).unwrap();
            if i == r {
                generation = store.manifest.generation as u32;
            }
        }
        let done = store.revert(generation).unwrap();
        prop_assert_eq!(done.events as usize, chunks[r].len());
        let rest: Vec<Event> = chunks.iter().enumerate().filter(|(i, _)| *i != r).flat_map(|(_, c)| c.clone()).collect();
        prop_assert_eq!(store_list(&store, None), model_list(&rest, None));
        // a store opened afresh, and one rebuilt, agree
        let reopened = Store::open(&store.dir).unwrap();
        prop_assert_eq!(store_list(&reopened, None), model_list(&rest, None));
        store.rebuild().unwrap();
        prop_assert_eq!(store_list(&store, None), model_list(&rest, None));
        // reverting again changes nothing
        let before = store.manifest.generation;
        prop_assert!(store.revert(generation).unwrap().already_reverted);
        prop_assert_eq!(store.manifest.generation, before);
        // the same rows ingested again count again
        let again = store.ingest(chunks[r].clone()).unwrap();
        prop_assert_eq!(again.new_events.len(), chunks[r].len());
        let all: Vec<Event> = chunks.concat();
        prop_assert_eq!(store_list(&store, None), model_list(&all, None));
    }
}

fn check(w: &Work, store: &str, phone: &str) -> Value {
    serde_json::from_str(&w.ok(&["check", "--store", store, "--account", "acme", phone, "--json"])).unwrap()
}

fn ledger_of(w: &Work, store: &str, via: &str) -> String {
    let list = w.ok(&["revert", "--store", store, "--list"]);
    list.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| {
            v["via"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f.as_str().unwrap().ends_with(via))
        })
        .map(|v| v["ledger"].to_string())
        .unwrap()
}

#[test]
fn revert_takes_back_a_wrong_import_and_nothing_else() {
    let w = Work::new();
    let store = w.example_store();
    // an import meant for globex, mapped to acme's whole account
    let wrong = w.write(
        "wrong.csv",
        "phone,occurred_at\n+447700900401,2026-10-01T00:00:00Z\n+447700900402,2026-10-01T00:00:00Z\n",
    );
    w.ok(&[
        "ingest",
        "import",
        "--store",
        &store,
        &wrong,
        "--account",
        "acme",
        "--account-wide",
    ]);
    // later, one of them really says STOP to an acme sender
    let replies = w.write(
        "replies.csv",
        "message_id,received_at,from,to,body\nR1,2026-11-01T09:00:00Z,+447700900401,+447860009123,STOP\n",
    );
    w.ok_stderr(&["ingest", "replies", "--store", &store, &replies]);
    assert_eq!(check(&w, &store, "+447700900402")["sendable"], false);

    let g = ledger_of(&w, &store, "wrong.csv");
    let summary = w.p("summary.json");
    let err = w.ok_stderr(&["revert", "--store", &store, "--ledger", &g, "--summary", &summary]);
    assert!(err.contains("2 events"), "{err}");
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(s["events"], 2);
    // the wrongly imported number may be messaged again, and check says why
    let v = check(&w, &store, "+447700900402");
    assert_eq!(v["sendable"], true, "{v}");
    assert_eq!(v["retracted"][0]["source"], "import", "{v}");
    assert!(v["retracted"][0]["reverted_at"].is_string(), "{v}");
    // the real STOP still stands
    let v = check(&w, &store, "+447700900401");
    assert_eq!(v["sendable"], false, "{v}");
    assert_eq!(v["reason"], "sender_opt_out", "{v}");
    let text = w.ok(&["check", "--store", &store, "--account", "acme", "+447700900402"]);
    assert!(text.contains("taken back"), "{text}");

    // a reply log is the contacts' own word: refused, nothing changed
    let g_replies = ledger_of(&w, &store, "+447860009123");
    let e = w.fails(&["revert", "--store", &store, "--ledger", &g_replies], 1);
    assert!(e.contains("only imports and webform files"), "{e}");
    // again: nothing to do
    let err = w.ok_stderr(&["revert", "--store", &store, "--ledger", &g]);
    assert!(err.contains("already taken back"), "{err}");
    // an unknown generation, a wrong flag
    let e = w.fails(&["revert", "--store", &store, "--ledger", "999"], 1);
    assert!(e.contains("999"), "{e}");
    let e = w.fails(&["revert", "--store", &store, "--ledger", "x1"], 1);
    assert!(e.contains("not a ledger generation"), "{e}");
    // the store is sound, and stats and the list show the revert
    let stats = w.ok(&["stats", "--store", &store]);
    assert!(stats.contains("reverted: 1 ledger files (2 events"), "{stats}");
    let list = w.ok(&["revert", "--store", &store, "--list"]);
    assert!(
        list.lines()
            .any(|l| l.contains("wrong.csv") && l.contains("\"reverted\":\"")),
        "{list}"
    );
}
