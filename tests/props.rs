//! Property tests: the engine against a small, obviously-correct model.
//!
//! - nothing opted out ever survives a scrub, and every row gets exactly
//!   the reason SPEC §3.4 gives it (a HashMap/HashSet model);
//! - parallel equals serial; Parquet equals CSV;
//! - the order and split of ingests does not change the final state, and
//!   ingesting twice changes nothing.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use optscrub::event::{Action, Event, Source, ACCOUNT_SCOPE};
use optscrub::scrub::run::{run, ScrubJob};
use optscrub::scrub::Scrubber;
use optscrub::store::{Erasures, OptOuts, Store};
use proptest::prelude::*;

pub(crate) const CONFIG: &str = r#"
[[accounts]]
id = "a"
  [[accounts.senders]]
  id = "+447860009001"
  [[accounts.senders]]
  id = "wa:a"
[[accounts]]
id = "b"
  [[accounts.senders]]
  id = "+447860009002"
"#;

const ACCOUNTS: [&str; 2] = ["a", "b"];
const SENDERS: [&[&str]; 2] = [&["+447860009001", "wa:a"], &["+447860009002"]];
const CONTACTS: u64 = 6;

fn contact(i: u64) -> u64 {
    447700900000 + i
}

#[derive(Clone, Debug)]
pub(crate) struct Ev {
    account: usize,
    scope: Option<usize>,
    contact: u64,
    at: i64,
    opt_in: bool,
}

pub(crate) fn ev() -> impl Strategy<Value = Ev> {
    (
        0..2usize,
        any::<bool>(),
        0..2usize,
        0..CONTACTS,
        0..8i64,
        prop::bool::weighted(0.3),
    )
        .prop_map(|(account, wide, s, contact, at, opt_in)| {
            let scope = (!wide).then(|| s % SENDERS[account].len());
            Ev {
                account,
                scope,
                contact,
                at,
                opt_in,
            }
        })
}

#[derive(Clone, Debug)]
struct Row {
    phone: Option<u64>,
    account: &'static str,
    sender: &'static str,
}

fn row() -> impl Strategy<Value = Row> {
    let phone = prop_oneof![9 => (0..CONTACTS).prop_map(Some), 1 => Just(None)];
    let account = prop_oneof![5 => Just("a"), 4 => Just("b"), 1 => Just("zz")];
    let sender = prop_oneof![
        3 => Just(""),
        3 => Just("+447860009001"),
        2 => Just("447860009001"),
        3 => Just("wa:a"),
        3 => Just("+447860009002"),
        1 => Just("+447860009999"),
    ];
    (phone, account, sender).prop_map(|(phone, account, sender)| Row {
        phone,
        account,
        sender,
    })
}

pub(crate) fn to_event(i: usize, e: &Ev) -> Event {
    Event {
        event_id: format!("e{i:03}").into(),
        account: ACCOUNTS[e.account].into(),
        scope: e
            .scope
            .map_or(ACCOUNT_SCOPE.into(), |s| SENDERS[e.account][s].into()),
        contact: contact(e.contact),
        at: e.at,
        action: if e.opt_in { Action::OptIn } else { Action::OptOut },
        // sources and keywords vary, for the export's evidence
        source: [Source::Import, Source::Keyword, Source::Webform][i % 3],
        keyword: (i % 3 == 1).then(|| ["STOP", "END"][i % 2].into()),
        via: None,
    }
}

/// The model: opted-out keys, from the last event per key by (at, id).
fn model_opt_outs(events: &[Event]) -> HashSet<(String, String, u64)> {
    let mut last: HashMap<(String, String, u64), &Event> = HashMap::new();
    for e in events {
        let k = (e.account.to_string(), e.scope.to_string(), e.contact);
        let newer = last
            .get(&k)
            .is_none_or(|cur| (e.at, &e.event_id) > (cur.at, &cur.event_id));
        if newer {
            last.insert(k, e);
        }
    }
    last.into_iter()
        .filter(|(_, e)| e.action == Action::OptOut)
        .map(|(k, _)| k)
        .collect()
}

/// The model's suppression list: (account, scope, contact, at, source,
/// keyword) of every key whose last event is an opt-out, in order.
pub(crate) type Listed = (String, String, u64, i64, String, Option<String>);
pub(crate) fn model_list(events: &[Event], account: Option<&str>) -> Vec<Listed> {
    let mut last: HashMap<(String, String, u64), &Event> = HashMap::new();
    for e in events {
        let k = (e.account.to_string(), e.scope.to_string(), e.contact);
        if last
            .get(&k)
            .is_none_or(|cur| (e.at, &e.event_id) > (cur.at, &cur.event_id))
        {
            last.insert(k, e);
        }
    }
    let mut out: Vec<Listed> = last
        .into_iter()
        .filter(|(k, e)| e.action == Action::OptOut && account.is_none_or(|a| k.0 == a))
        .map(|((a, s, c), e)| {
            (
                a,
                s,
                c,
                e.at,
                e.source.as_str().to_string(),
                e.keyword.as_deref().map(String::from),
            )
        })
        .collect();
    out.sort();
    out
}

/// The suppression list as the store streams it.
pub(crate) fn store_list(store: &Store, account: Option<&str>) -> Vec<Listed> {
    let list = store.suppression_list(account).unwrap();
    let whole: Vec<_> = list.opt_outs().map(|o| o.unwrap()).collect();
    // cut into shares of a few key-run records (scopes cut at contacts,
    // several runs merged in each piece), gathered one by one: the same
    // list, each opt-out once and in order
    for n in [1, 2, 5] {
        let shares = list.shares(n);
        let cut: Vec<_> = shares.iter().flat_map(|s| list.share(s).unwrap()).collect();
        assert_eq!(cut, whole, "the list cut into shares of {n} records");
    }
    whole
        .into_iter()
        .map(|o| {
            let s = &list.scopes[o.scope as usize];
            let (source, keyword) = &list.evidence[o.evidence as usize];
            (
                s.account.clone(),
                s.scope.clone(),
                o.contact,
                o.at,
                source.as_str().to_string(),
                keyword.as_deref().map(String::from),
            )
        })
        .collect()
}

/// The model's (reason, scope) per row; empty reason = kept.
fn model_scrub(rows: &[Row], out: &HashSet<(String, String, u64)>, dedupe: bool) -> Vec<(String, String)> {
    let mut kept: HashSet<(&str, u64)> = HashSet::new();
    let mut res = Vec::new();
    for r in rows {
        let Some(c) = r.phone.map(contact) else {
            res.push(("invalid_phone".into(), String::new()));
            continue;
        };
        let Some(ai) = ACCOUNTS.iter().position(|a| *a == r.account) else {
            res.push(("unknown_account".into(), String::new()));
            continue;
        };
        let sender = r.sender.trim_start_matches('+');
        let sender = if sender.is_empty() {
            None
        } else if sender.starts_with("wa:") {
            Some(sender.to_string())
        } else {
            Some(format!("+{sender}"))
        };
        if let Some(s) = &sender {
            if !SENDERS[ai].contains(&s.as_str()) {
                res.push(("unknown_sender".into(), String::new()));
                continue;
            }
        }
        let acc = r.account.to_string();
        if out.contains(&(acc.clone(), ACCOUNT_SCOPE.into(), c)) {
            res.push(("account_opt_out".into(), ACCOUNT_SCOPE.into()));
            continue;
        }
        let mut scopes: Vec<&str> = SENDERS[ai].to_vec();
        scopes.sort();
        let hit = match &sender {
            Some(s) => out.contains(&(acc.clone(), s.clone(), c)).then(|| s.clone()),
            None => scopes
                .iter()
                .find(|s| out.contains(&(acc.clone(), s.to_string(), c)))
                .map(|s| s.to_string()),
        };
        if let Some(s) = hit {
            res.push(("sender_opt_out".into(), s));
            continue;
        }
        if dedupe && !kept.insert((r.account, c)) {
            res.push(("duplicate".into(), String::new()));
            continue;
        }
        res.push((String::new(), String::new()));
    }
    res
}

fn write_rows(path: &Path, rows: &[Row]) {
    let mut s = String::from("id,phone,account_id,sender\n");
    for (i, r) in rows.iter().enumerate() {
        let phone = r.phone.map_or("12".to_string(), |c| format!("+{}", contact(c)));
        s.push_str(&format!("{i},{phone},{},{}\n", r.account, r.sender));
    }
    std::fs::write(path, s).unwrap();
}

/// Run the engine; (reason, scope) per input row, in input order.
fn engine(
    store: &Store,
    input: &Path,
    dir: &Path,
    ext: &str,
    threads: usize,
    dedupe: bool,
    unit_rows: u64,
) -> Vec<(String, String)> {
    let mut plan = ScrubJob::new(
        vec![input.to_string_lossy().into_owned()],
        dir.join(format!("kept.{ext}")),
    );
    plan.suppressed = Some(dir.join(format!("sup.{ext}")));
    plan.keep_duplicates = !dedupe;
    plan.batch_rows = 3;
    plan.unit_rows = unit_rows;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let scrubber = Scrubber::new(
        &store.config,
        store.opt_outs().unwrap(),
        store.erasures().unwrap(),
    )
    .unwrap();
    pool.install(|| run(store, &scrubber, &plan)).unwrap();
    let (kept_ids, sup) = if ext == "csv" {
        let k = common::read_csv(&plan.output);
        let s = common::read_csv(plan.suppressed.as_ref().unwrap());
        let kept: Vec<String> = k[1..].iter().map(|r| r[0].clone()).collect();
        let sup: Vec<(String, String, String)> = s[1..]
            .iter()
            .map(|r| (r[0].clone(), r[4].clone(), r[5].clone()))
            .collect();
        (kept, sup)
    } else {
        let k = optional_parquet(&plan.output);
        let s = optional_parquet(plan.suppressed.as_ref().unwrap());
        let kept = k.map(|b| common::strings(&b, "id")).unwrap_or_default();
        let sup = s
            .map(|b| {
                let id = common::strings(&b, "id");
                let reason = common::strings(&b, "reason");
                let scope = common::strings(&b, "scope");
                (0..id.len())
                    .map(|i| (id[i].clone(), reason[i].clone(), scope[i].clone()))
                    .collect()
            })
            .unwrap_or_default();
        (kept, sup)
    };
    let mut out: HashMap<usize, (String, String)> = HashMap::new();
    let mut last = None;
    for id in kept_ids {
        let i: usize = id.parse().unwrap();
        assert!(last < Some(i), "kept rows out of input order");
        last = Some(i);
        out.insert(i, (String::new(), String::new()));
    }
    for (id, reason, scope) in sup {
        out.insert(id.parse().unwrap(), (reason, scope));
    }
    (0..out.len())
        .map(|i| out.remove(&i).expect("every row accounted for"))
        .collect()
}

fn optional_parquet(p: &Path) -> Option<arrow::array::RecordBatch> {
    let f = std::fs::File::open(p).unwrap();
    let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = r.map(|b| b.unwrap()).collect();
    let schema = batches.first()?.schema();
    Some(arrow::compute::concat_batches(&schema, &batches).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn scrub_matches_the_model(
        evs in prop::collection::vec(ev(), 0..30),
        rows in prop::collection::vec(row(), 1..25),
        split in 1..4usize,
        dedupe in any::<bool>(),
        reverse in any::<bool>(),
        skew in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let store_dir = dir.path().join("store");
        let mut store = Store::init(&store_dir, &config).unwrap();
        let events: Vec<Event> = evs.iter().enumerate().map(|(i, e)| to_event(i, e)).collect();
        // ingest in `split` chunks, possibly in reverse order
        let mut chunks: Vec<Vec<Event>> = events.chunks(events.len().div_ceil(split).max(1)).map(|c| c.to_vec()).collect();
        if skew {
            // most at once, then one at a time: small commits over a
            // larger probe write layers of it
            let most = events.len() * 4 / 5;
            chunks = std::iter::once(events[..most].to_vec()).chain(events[most..].chunks(1).map(|c| c.to_vec())).collect();
        }
        if reverse {
            chunks.reverse();
        }
        for c in &chunks {
            store.ingest(c.clone()).unwrap();
        }
        // ingesting everything again changes nothing
        let generation = store.manifest.generation;
        let again = store.ingest(events.clone()).unwrap();
        prop_assert!(again.new_events.is_empty());
        prop_assert_eq!(store.manifest.generation, generation);

        let out = model_opt_outs(&events);
        let state = store.state().unwrap();
        for e in &events {
            let opted = state.get(&e.account, &e.scope, e.contact).map(|l| l.action == Action::OptOut);
            prop_assert_eq!(opted, Some(out.contains(&(e.account.to_string(), e.scope.to_string(), e.contact))));
        }

        // the export's stream, of every account and of one
        for account in [None, Some("a"), Some("b")] {
            prop_assert_eq!(store_list(&store, account), model_list(&events, account));
        }

        let input = dir.path().join("in.csv");
        write_rows(&input, &rows);
        // one row at a time, as `check` asks (the probe file, and the
        // bitmaps of a store without one), and as a scrub asks (the probe
        // file merged commit by commit, and a probe built in memory from
        // the snapshot): each as the model without duplicates
        let each = model_scrub(&rows, &out, false);
        let bitmaps = Scrubber::for_lookups(&store.config, OptOuts::Bitmaps(store.snapshot().unwrap()), Erasures::default());
        let point = Scrubber::for_lookups(&store.config, store.opt_outs().unwrap(), store.erasures().unwrap());
        prop_assert!(matches!(store.opt_outs().unwrap(), OptOuts::Probe(_)));
        let probe = Scrubber::new(&store.config, store.opt_outs().unwrap(), store.erasures().unwrap()).unwrap();
        probe.verified().unwrap();
        let in_memory = Scrubber::new(&store.config, OptOuts::Bitmaps(store.snapshot().unwrap()), Erasures::default()).unwrap();
        for (r, want) in rows.iter().zip(&each) {
            let phone = r.phone.map_or("12".to_string(), |c| format!("+{}", contact(c)));
            let sender = (!r.sender.is_empty()).then_some(r.sender);
            for s in [&bitmaps, &point, &probe, &in_memory] {
                let d = s.decide_one(Some(&phone), Some(r.account), sender, None);
                let got = (
                    d.reason.map_or(String::new(), |x| x.as_str().to_string()),
                    d.reason.and_then(|_| s.scope_name(d.scope)).unwrap_or("").to_string(),
                );
                prop_assert_eq!(&got, want);
            }
        }
        let want = model_scrub(&rows, &out, dedupe);
        let serial = engine(&store, &input, dir.path(), "csv", 1, dedupe, 1 << 20);
        prop_assert_eq!(&serial, &want);
        let parallel = engine(&store, &input, dir.path(), "parquet", 2, dedupe, 4);
        prop_assert_eq!(&parallel, &want);
        let pq = dir.path().join("in.parquet");
        common::csv_to_parquet(&input, &pq, &[]);
        let from_parquet = engine(&store, &pq, dir.path(), "csv", 2, dedupe, 1 << 20);
        prop_assert_eq!(&from_parquet, &want);
        // row groups of 4 rows: units of one or two whole row groups (9),
        // and row groups larger than a unit read in batches (3)
        common::csv_to_parquet_grouped(&input, &pq, &[], Some(4));
        for unit_rows in [9, 3] {
            let grouped = engine(&store, &pq, dir.path(), "parquet", 2, dedupe, unit_rows);
            prop_assert_eq!(&grouped, &want);
        }

        // the incremental key runs and snapshot equal a rebuild from the ledger
        let bitmaps = |s: &Store| -> Vec<(String, String, Vec<u64>)> {
            s.snapshot().unwrap().scopes.into_iter().map(|b| (b.account, b.scope, b.bitmap.iter().collect())).collect()
        };
        let lasts = |s: &Store| -> Vec<String> {
            s.state().unwrap().events_sorted().iter().map(|e| format!("{} {} {} {}", e.account, e.scope, e.contact, e.event_id)).collect()
        };
        // `check`'s in-place search agrees with the whole state
        let state = store.state().unwrap();
        for e in &events {
            for sender in [None, Some(&*e.scope)] {
                let ids = |v: Vec<&Event>| v.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>();
                let want = ids(state.deciding(&e.account, sender, e.contact));
                let got: Vec<optscrub::event::EventId> = store.deciding(&e.account, sender, e.contact).unwrap().into_iter().map(|e| e.event_id).collect();
                prop_assert_eq!(got, want);
            }
        }
        let (inc_bitmaps, inc_lasts) = (bitmaps(&store), lasts(&store));
        store.rebuild().unwrap();
        prop_assert_eq!(bitmaps(&store), inc_bitmaps);
        prop_assert_eq!(lasts(&store), inc_lasts);
    }
}

#[test]
fn an_ingest_prepared_before_another_commit_is_refused() {
    // its keys were decided, and its snapshot made, against the store as
    // it was: committing it over a newer generation would lose that one
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut store = Store::init(&dir.path().join("store"), &config).unwrap();
    let e = |i: usize, contact: u64| {
        to_event(
            i,
            &Ev {
                account: 0,
                scope: None,
                contact,
                at: 1_000 + i as i64,
                opt_in: false,
            },
        )
    };
    let first = store.prepare_ingest(vec![e(1, 1)], &[]).unwrap();
    let second = store.prepare_ingest(vec![e(2, 2)], &[]).unwrap();
    store.commit_ingest(first).unwrap();
    let before = serde_json::to_value(&store.manifest).unwrap();
    let generation = store.manifest.generation;
    let err = store.commit_ingest(second).unwrap_err();
    assert!(err.to_string().contains("changed between preparing"), "{err}");
    assert_eq!(serde_json::to_value(&store.manifest).unwrap(), before);
    // prepared again, it goes in
    let again = store.prepare_ingest(vec![e(2, 2)], &[]).unwrap();
    store.commit_ingest(again).unwrap();
    assert_eq!(store.manifest.generation, generation + 1);
}

#[test]
fn small_commits_over_a_large_probe_write_layers_that_decide_alike() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let store_dir = dir.path().join("store");
    let mut store = Store::init(&store_dir, &config).unwrap();
    let e = |i: usize, contact: u64, scope: Option<usize>, opt_in: bool| {
        to_event(
            i,
            &Ev {
                account: 0,
                scope,
                contact,
                at: 1_000 + i as i64,
                opt_in,
            },
        )
    };
    store
        .ingest(
            (0..200)
                .map(|c| e(c as usize, c, Some((c % 2) as usize), false))
                .collect(),
        )
        .unwrap();
    assert!(store.manifest.probe_layers.is_empty());
    // an opt-in of one scope, an opt-out of a new contact, and one of a
    // contact in another scope besides
    store
        .ingest(vec![
            e(300, 4, Some(0), true),
            e(301, 500, None, false),
            e(302, 7, None, false),
        ])
        .unwrap();
    assert_eq!(store.manifest.probe_layers.len(), 1);
    store.ingest(vec![e(303, 9, Some(1), true)]).unwrap();
    // a change much smaller than the layer under it lies apart from it
    assert_eq!(store.manifest.probe_layers.len(), 2);
    // a build that reads one probe file, or only 4-byte words, must
    // refuse the store
    assert_eq!(store.manifest.format, 5);
    let decide = |store: &Store| -> Vec<Option<String>> {
        let fresh = Store::open(&store_dir).unwrap();
        assert_eq!(fresh.generation(), store.generation());
        let s = Scrubber::new(
            &fresh.config,
            fresh.opt_outs().unwrap(),
            fresh.erasures().unwrap(),
        )
        .unwrap();
        let out = (0..600u64)
            .flat_map(|c| {
                let phone = format!("+{}", contact(c));
                ["+447860009001", "wa:a", ""]
                    .map(|sender| {
                        let sender = (!sender.is_empty()).then_some(sender);
                        let d = s.decide_one(Some(&phone), Some("a"), sender, None);
                        d.reason
                            .map(|r| format!("{} {}", r.as_str(), s.scope_name(d.scope).unwrap_or("")))
                    })
                    .into_iter()
                    .collect::<Vec<_>>()
            })
            .collect();
        s.verified().unwrap();
        out
    };
    let layered = decide(&store);
    let at = |c: u64, sender: usize| layered[c as usize * 3 + sender].clone();
    assert_eq!(at(4, 0), None, "opted in");
    assert_eq!(at(4, 1), None);
    assert_eq!(at(9, 1), None, "opted in");
    assert!(at(6, 0).is_some() && at(500, 2).is_some() && at(7, 1).is_some());
    assert_eq!(at(501, 0), None);
    // a sender's opt-out stops its rows and those naming no sender: two of
    // three per contact, less two each for 4 and 9, and three for 500 and
    // one more for 7 account-wide
    assert_eq!(
        layered.iter().filter(|d| d.is_some()).count(),
        200 * 2 - 2 * 2 + 3 + 1
    );
    store.rebuild().unwrap();
    assert!(store.manifest.probe_layers.is_empty());
    assert_eq!(decide(&store), layered);

    // a damaged first file, found while a layer over it is written (the
    // changed contacts are looked up in it): the probe is written whole
    // from the snapshot instead
    store.ingest(vec![e(304, 11, None, false)]).unwrap();
    assert_eq!(store.manifest.probe_layers.len(), 1);
    let first = store_dir.join(&store.manifest.probe.as_ref().unwrap().file);
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[3] ^= 0x10;
    std::fs::write(&first, bytes).unwrap();
    store.ingest(vec![e(305, 550, None, false)]).unwrap();
    assert!(store.manifest.probe_layers.is_empty());
    let mut whole = layered;
    for c in [11, 550] {
        for s in 0..3 {
            whole[c * 3 + s] = Some("account_opt_out account".into());
        }
    }
    let got = decide(&store);
    let differ: Vec<usize> = (0..whole.len())
        .filter(|&i| got[i] != whole[i])
        .map(|i| i / 3)
        .collect();
    assert!(differ.is_empty(), "contacts decided otherwise: {differ:?}");
}
