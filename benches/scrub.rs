//! Hot kernels of the scrub path, on generated data with fixed seeds.
//!
//! Run: `cargo bench --bench scrub`. Figures and machine in the README.
#![allow(missing_docs)]

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use optscrub::config::Config;
use optscrub::dev::gen::{Rng, Spec};
use optscrub::phone::{normalize, DefaultCountry};
use optscrub::scrub::{Columns, Deduper, Scrubber};
use optscrub::store::snapshot::{ScopeBitmap, Snapshot};
use optscrub::store::{Erasures, OptOuts};
use roaring::RoaringTreemap;

const ROWS: usize = 65_536;
const OPT_OUTS: u64 = 1_000_000;
/// Contacts drawn from; with 1M opt-outs over 11 scopes per account, about
/// 2% of rows hit an opt-out in their account.
const POOL: u64 = 5_000_000;

fn spec() -> Spec {
    Spec {
        seed: 7,
        recipients: 0,
        opt_outs: OPT_OUTS,
        campaigns: 1,
        replies: 0,
        webforms: 0,
        mixed_phones: false,
        ..Spec::default()
    }
}

fn snapshot(spec: &Spec) -> Snapshot {
    let mut rng = Rng::new(1);
    let mut scopes = Vec::new();
    let per_scope = OPT_OUTS / u64::from(spec.accounts * (spec.senders_per_account + 1));
    for a in 0..spec.accounts {
        let mut names = vec!["account".to_string()];
        names.extend((0..spec.senders_per_account).map(|s| optscrub::dev::gen::sender_id(spec, a, s)));
        for scope in names {
            let bitmap: RoaringTreemap = (0..per_scope)
                .map(|_| 447_000_000_000 + rng.below(POOL))
                .collect();
            scopes.push(ScopeBitmap {
                account: optscrub::dev::gen::account_id(a),
                scope,
                bitmap,
            });
        }
    }
    Snapshot {
        ledger_digest: 0,
        scopes,
    }
}

fn batch(spec: &Spec) -> RecordBatch {
    let mut rng = Rng::new(2);
    let phones: Vec<String> = (0..ROWS)
        .map(|_| format!("+{}", 447_000_000_000 + rng.below(POOL)))
        .collect();
    let picks: Vec<u32> = (0..ROWS)
        .map(|_| rng.below(u64::from(spec.accounts)) as u32)
        .collect();
    let accounts: Vec<String> = picks.iter().map(|&a| optscrub::dev::gen::account_id(a)).collect();
    let senders: Vec<String> = picks
        .iter()
        .map(|&a| {
            optscrub::dev::gen::sender_id(spec, a, rng.below(u64::from(spec.senders_per_account)) as u32)
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("phone", DataType::Utf8, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("sender", DataType::Utf8, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(phones)),
        Arc::new(StringArray::from(accounts)),
        Arc::new(StringArray::from(senders)),
    ];
    RecordBatch::try_new(schema, cols).expect("batch")
}

fn bench_phone(c: &mut Criterion) {
    let mut g = c.benchmark_group("phone");
    let mut rng = Rng::new(3);
    let e164: Vec<String> = (0..ROWS)
        .map(|_| format!("+{}", 447_000_000_000 + rng.below(POOL)))
        .collect();
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function("normalize 64k E.164 phones (fast path)", |b| {
        b.iter(|| e164.iter().filter_map(|p| normalize(p, None)).count())
    });
    let national: Vec<String> = (0..1000).map(|i| format!("07700 9{i:05}")).collect();
    let gb = DefaultCountry::parse("GB");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("normalize 1k GB national phones (libphonenumber parse)", |b| {
        b.iter(|| national.iter().filter_map(|p| normalize(p, gb)).count())
    });
    g.finish();
}

fn bench_scrub(c: &mut Criterion) {
    let spec = spec();
    let config = Config::parse(&optscrub::dev::gen::config(&spec)).expect("config");
    let snap = snapshot(&spec);
    let bytes = snap.encode();
    let crc = crc32fast::hash(&bytes);
    let mut g = c.benchmark_group("snapshot");
    g.bench_function("decode snapshot of 1M opt-outs", |b| {
        b.iter(|| Snapshot::decode(&bytes, crc).map(|s| s.opt_outs()))
    });
    g.bench_function("build scrub index from 1M opt-outs", |b| {
        b.iter(|| Scrubber::new(&config, OptOuts::Bitmaps(snap.clone()), Erasures::default()))
    });
    g.finish();
    let scrubber = Scrubber::new(&config, OptOuts::Bitmaps(snap), Erasures::default()).expect("scrubber");
    let batch = batch(&spec);
    let cols = Columns {
        phone: 0,
        account: Some(1),
        sender: Some(2),
        default_account: None,
        default_sender: None,
        country: None,
        country_column: None,
    };
    let mut g = c.benchmark_group("scrub");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_with_input(
        BenchmarkId::new("decide 64k rows, ~2% opted out", ROWS),
        &batch,
        |b, batch| b.iter(|| scrubber.decide(batch, &cols).map(|d| d.len())),
    );
    let decided = scrubber.decide(&batch, &cols).expect("decide");
    g.bench_function("dedupe 64k rows", |b| {
        b.iter(|| {
            let mut rows = decided.clone();
            Deduper::default().mark(&mut rows);
            rows.len()
        })
    });
    g.bench_function("split 64k rows into kept and suppressed", |b| {
        b.iter(|| optscrub::scrub::split(&batch, &decided, &scrubber).map(|(k, _)| k.num_rows()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_phone, bench_scrub
}
criterion_main!(benches);
