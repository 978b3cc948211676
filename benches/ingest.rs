//! Keyword matching of reply bodies, on generated data with a fixed seed.
//!
//! Run: `cargo bench --bench ingest`. Figures and machine in the README.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use optscrub::config::{Config, MatchMode};
use optscrub::gen::{Rng, Spec};
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

fn bench_match(c: &mut Criterion) {
    let spec = Spec {
        seed: 1,
        recipients: 0,
        opt_outs: 0,
        accounts: 10,
        senders_per_account: 10,
        campaigns: 1,
        replies: 0,
        webforms: 0,
        mixed_phones: false,
    };
    let config = Config::parse(&optscrub::gen::config(&spec)).expect("config");
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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_match
}
criterion_main!(benches);
