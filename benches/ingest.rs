//! Keyword matching of reply bodies, and reading a generated reply log
//! (decode, classify, review and rejects), with fixed seeds.
//!
//! Run: `cargo bench --bench ingest`. Figures and machine in the README.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use optscrub::config::{Config, MatchMode};
use optscrub::dev::gen::{Rng, Spec};
use optscrub::matcher::{Matcher, Words};

const N: usize = 65_536;
const ASCII: &[&str] = &[
    "STOP",
    "stop",
    "Stop!!",
    "Stop. Thank you",
    "unsubscribe",
    "END",
    "START",
    "HELP",
    "ok thanks",
    "Yes",
    "please stop texting me",
    "Stopping by later",
    "what is this?",
    "See you at 5",
];
const UNICODE: &[&str] = &["STOP 🙏", "ＳＴＯＰ", "ARRÊT", "Merci, arrêtez", "¿qué es esto?"];

fn bodies(pool: &[&'static str]) -> Vec<&'static str> {
    let mut rng = Rng::new(9);
    (0..N)
        .map(|_| pool[rng.below(pool.len() as u64) as usize])
        .collect()
}

/// 10 accounts of 10 senders, with `replies` replies to them.
fn spec(seed: u64, replies: u64) -> Spec {
    Spec {
        seed,
        recipients: 1000,
        opt_outs: 1000,
        campaigns: 1,
        replies,
        webforms: 0,
        mixed_phones: false,
        ..Spec::default()
    }
}

fn bench_match(c: &mut Criterion) {
    let spec = spec(1, 0);
    let config = Config::parse(&optscrub::dev::gen::config(&spec)).expect("config");
    let matcher = Matcher::new(&config);
    let table = &matcher.senders[0][0];
    let mut g = c.benchmark_group("keywords");
    g.throughput(Throughput::Elements(N as u64));
    for (name, pool) in [
        ("64k ASCII reply bodies", ASCII),
        ("64k non-ASCII reply bodies", UNICODE),
    ] {
        let data = bodies(pool);
        for mode in [MatchMode::Leading, MatchMode::Contains] {
            g.bench_function(format!("match {name}, {mode:?}"), |b| {
                let mut words = Words::default();
                b.iter(|| {
                    let mut hits = 0usize;
                    for body in &data {
                        words.cut(body);
                        hits += usize::from(words.best(table, mode).is_some());
                        hits += usize::from(words.any_opt_out(table).is_some());
                    }
                    hits
                })
            });
        }
    }
    g.finish();
}

fn bench_read(c: &mut Criterion) {
    use optscrub::ingest::outbox::Review;
    use optscrub::ingest::replies::{read, ReplyColumns};
    use optscrub::ingest::Rejects;
    use optscrub::io::input::Dataset;
    let spec = spec(5, N as u64);
    let dir = tempfile::tempdir().expect("temp dir");
    optscrub::dev::gen::generate(&spec, dir.path()).expect("gen");
    let config = Config::parse(&optscrub::dev::gen::config(&spec)).expect("config");
    let log = vec![dir.path().join("replies").to_string_lossy().into_owned()];
    let mut g = c.benchmark_group("replies");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("read 64k replies (decode, classify, review, rejects)", |b| {
        b.iter(|| {
            let data = Dataset::open(&log).expect("open");
            let mut rejects = Rejects::new(None, &data.schema).expect("rejects");
            let mut review = Review::new(None).expect("review");
            let out = read(&config, data, &ReplyColumns::default(), &mut review, &mut rejects).expect("read");
            out.events.len()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_match, bench_read
}
criterion_main!(benches);
