//! Property tests of reply ingestion: any order of the same messages, any
//! split into several ingests, and ingesting twice all give one state.

use crate::common;

use std::path::Path;

use optscrub::ingest::outbox::Review;
use optscrub::ingest::replies::{self, ReplyColumns};
use optscrub::ingest::Rejects;
use optscrub::io::input::Dataset;
use optscrub::store::Store;
use proptest::prelude::*;

const BODIES: &[&str] = &[
    "STOP",
    "stop please",
    "START",
    "HELP",
    "End",
    "hello",
    "UNSTOP",
    "szWbhSTOP",
    "please stop",
];
const TOS: &[&str] = &[
    "+447860009123",
    "wa:acme",
    "name:ACME",
    "+447860009000",
    "+14155550100",
];

#[derive(Clone, Debug)]
struct Msg {
    contact: u8,
    to: usize,
    body: usize,
    minute: u8,
}

fn msg() -> impl Strategy<Value = Msg> {
    (0..4u8, 0..TOS.len(), 0..BODIES.len(), 0..30u8).prop_map(|(contact, to, body, minute)| Msg {
        contact,
        to,
        body,
        minute,
    })
}

fn csv(rows: &[(usize, &Msg)]) -> String {
    let mut s = String::from("message_id,received_at,from,to,body\n");
    for (i, m) in rows {
        s.push_str(&format!(
            "m{i:03},2026-11-20T08:{:02}:00Z,+4477009001{:02},{},{}\n",
            m.minute, m.contact, TOS[m.to], BODIES[m.body]
        ));
    }
    s
}

fn ingest(store: &mut Store, path: &Path) -> Vec<String> {
    ingest_in(store, path, 1 << 16)
}

/// Ingest reading `batch_rows` rows at a time; returns what the log gave
/// (events, help ids and candidate replies, in input order).
fn ingest_in(store: &mut Store, path: &Path, batch_rows: usize) -> Vec<String> {
    let data = Dataset::open_with(&[path.to_string_lossy().into_owned()], batch_rows).unwrap();
    let mut rejects = Rejects::new(None, &data.schema).unwrap();
    let mut review = Review::new(None).unwrap();
    let mut out = replies::read(
        &store.config.clone(),
        data,
        &ReplyColumns::default(),
        &mut review,
        &mut rejects,
    )
    .unwrap();
    let mut gave: Vec<String> = out.events.iter().map(|e| format!("{e:?}")).collect();
    gave.extend(out.other_ids.iter().cloned());
    gave.extend(
        out.replies
            .iter()
            .map(|r| format!("{} {} {:?} {}", r.to, r.from, r.kind, r.source)),
    );
    let events = std::mem::take(&mut out.events);
    store.ingest_with(events, &out.other_ids).unwrap();
    gave
}

fn state_of(store: &Store) -> Vec<String> {
    let state = store.state().unwrap();
    state
        .events_sorted()
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} {}",
                e.account,
                e.scope,
                e.contact,
                e.event_id,
                e.action.as_str()
            )
        })
        .collect()
}

fn new_store(dir: &Path, name: &str) -> Store {
    let config = common::repo().join("datasets/demo/config.toml");
    Store::init(&dir.join(name), &config).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn order_split_and_repeat_do_not_change_the_state(
        msgs in prop::collection::vec(msg(), 1..25),
        perm in any::<prop::sample::Index>(),
        split in 1..4usize,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<(usize, &Msg)> = msgs.iter().enumerate().collect();
        let all = dir.path().join("all.csv");
        std::fs::write(&all, csv(&rows)).unwrap();
        let mut a = new_store(dir.path(), "a");
        let gave = ingest(&mut a, &all);
        let want = state_of(&a);
        // read two rows at a time (many windows in flight): the same
        let mut c = new_store(dir.path(), "c");
        prop_assert_eq!(ingest_in(&mut c, &all, 2), gave);
        prop_assert_eq!(state_of(&c), want.clone());
        // twice = once
        let generation = a.manifest.generation;
        ingest(&mut a, &all);
        prop_assert_eq!(a.manifest.generation, generation);
        prop_assert_eq!(state_of(&a), want.clone());
        // a rotation of the rows, split into several files, in reverse
        let mut shuffled = rows.clone();
        let k = perm.index(shuffled.len());
        shuffled.rotate_left(k);
        let mut b = new_store(dir.path(), "b");
        let size = shuffled.len().div_ceil(split);
        let parts: Vec<_> = shuffled.chunks(size).collect();
        for (i, part) in parts.iter().enumerate().rev() {
            let p = dir.path().join(format!("part{i}.csv"));
            std::fs::write(&p, csv(part)).unwrap();
            ingest(&mut b, &p);
        }
        prop_assert_eq!(state_of(&b), want);
    }
}
