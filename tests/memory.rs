//! Scrubbing batches in memory (the path Python and Spark take) makes the
//! CLI's decisions, whatever string layout the batches arrive in: `string`,
//! `large_string`, `string_view` and dictionaries with any integer keys.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};

use optscrub::io::input::Dataset;
use optscrub::scrub::memory;
use optscrub::scrub::run::ScrubJob;
use optscrub::scrub::Scrubber;
use optscrub::store::Store;

use crate::common::{self, Work};

/// A generated store (imports and replies in) and one campaign file.
fn generated(w: &Work) -> (String, String) {
    w.ok(&[
        "gen",
        "--out",
        &w.p("g"),
        "--seed",
        "5",
        "--recipients",
        "6000",
        "--opt-outs",
        "900",
        "--replies",
        "1500",
        "--accounts",
        "3",
        "--senders-per-account",
        "3",
        "--campaigns",
        "1",
    ]);
    let store = w.p("store");
    w.ok(&["init", "--store", &store, "--config", &w.p("g/config.toml")]);
    for a in ["acct00", "acct01", "acct02"] {
        let f = w.p(&format!("g/imports/{a}.parquet"));
        w.ok(&[
            "ingest",
            "import",
            "--store",
            &store,
            &f,
            "--account",
            a,
            "--account-wide",
        ]);
    }
    w.ok(&["ingest", "replies", "--store", &store, &w.p("g/replies")]);
    (store, w.p("g/campaigns/campaign-00.parquet"))
}

/// Every column of a batch as text, row by row, for comparing outputs
/// whatever their layouts.
fn rows(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
    let mut out = Vec::new();
    for b in batches {
        let cols: Vec<ArrayRef> = b
            .columns()
            .iter()
            .map(|c| cast(c, &DataType::Utf8).unwrap())
            .collect();
        for i in 0..b.num_rows() {
            out.push(
                cols.iter()
                    .map(|c| {
                        let s = c.as_any().downcast_ref::<arrow::array::StringArray>().unwrap();
                        (!s.is_null(i)).then(|| s.value(i).to_string())
                    })
                    .collect(),
            );
        }
    }
    out
}

/// The batch with its text columns recast to `to` (and back to rows of
/// the same values).
fn relayout(b: &RecordBatch, to: &DataType) -> RecordBatch {
    let fields: Vec<Field> = b
        .schema()
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 | DataType::Dictionary(_, _) => Field::new(f.name(), to.clone(), true),
            _ => f.as_ref().clone(),
        })
        .collect();
    let cols: Vec<ArrayRef> = b
        .columns()
        .iter()
        .zip(&fields)
        .map(|(c, f)| cast(c, f.data_type()).unwrap())
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
}

#[test]
fn every_string_layout_scrubs_as_the_cli_does() {
    let w = Work::new();
    let (store_dir, campaign) = generated(&w);
    w.ok(&[
        "scrub",
        "--store",
        &store_dir,
        "--input",
        &campaign,
        "--output",
        &w.p("kept.parquet"),
        "--suppressed",
        &w.p("gone.parquet"),
    ]);
    let want_kept = rows(&[w.read_parquet("kept.parquet")]);
    let want_gone = rows(&[w.read_parquet("gone.parquet")]);
    assert!(want_gone.iter().any(|r| r.contains(&Some("duplicate".into()))));
    assert!(want_gone
        .iter()
        .any(|r| r.contains(&Some("sender_opt_out".into()))));

    let input = common::read_parquet(std::path::Path::new(&campaign));
    let (store, opt_outs) = Store::open_with_opt_outs(std::path::Path::new(&store_dir)).unwrap();
    let scrubber = Scrubber::new(&store.config, opt_outs, store.erasures().unwrap()).unwrap();
    let dict = |k: DataType, v: DataType| DataType::Dictionary(Box::new(k), Box::new(v));
    for layout in [
        DataType::Utf8,
        DataType::LargeUtf8,
        DataType::Utf8View,
        dict(DataType::UInt32, DataType::Utf8View),
        dict(DataType::Int16, DataType::Utf8),
        dict(DataType::UInt16, DataType::LargeUtf8),
    ] {
        let b = relayout(&input, &layout);
        // in several batches, so that duplicates cross batches
        let batches: Vec<RecordBatch> = (0..b.num_rows())
            .step_by(1000)
            .map(|at| b.slice(at, 1000.min(b.num_rows() - at)))
            .collect();
        let data = Dataset::from_batches("the frame", b.schema(), batches.clone()).unwrap();
        let cols = ScrubJob::new(vec![], "-".into())
            .columns(&store.config, &data)
            .unwrap();
        let got = memory::scrub(&scrubber, &b.schema(), &batches, &cols, false, "the frame").unwrap();
        assert_eq!(rows(&got.kept), want_kept, "{layout}");
        assert_eq!(rows(&got.suppressed), want_gone, "{layout}");
        assert_eq!(got.stats.rows_in as usize, b.num_rows());

        // decide, then the duplicate rule by hand: the first row of each
        // key is kept
        let decided = memory::decide(&scrubber, &batches, &cols, "the frame").unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut reasons = Vec::new();
        for d in &decided {
            let reason = d.column_by_name("reason").unwrap();
            let reason = cast(reason, &DataType::Utf8).unwrap();
            let reason = reason
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            let key = d.column_by_name("dedupe_key").unwrap();
            let key = key.as_any().downcast_ref::<arrow::array::UInt64Array>().unwrap();
            for i in 0..d.num_rows() {
                reasons.push(if !reason.is_null(i) {
                    Some(reason.value(i).to_string())
                } else if !seen.insert(key.value(i)) {
                    Some("duplicate".to_string())
                } else {
                    None
                });
            }
        }
        let kept = reasons.iter().filter(|r| r.is_none()).count();
        assert_eq!(kept, want_kept.len(), "{layout}");
        let reason_at = want_gone[0].len() - 2;
        let want: Vec<Option<String>> = want_gone.iter().map(|r| r[reason_at].clone()).collect();
        let got: Vec<Option<String>> = reasons.into_iter().flatten().map(Some).collect();
        assert_eq!(got, want, "{layout}");
    }
}

#[test]
fn decide_refuses_columns_it_would_add() {
    let w = Work::new();
    let (store_dir, campaign) = generated(&w);
    let input = common::read_parquet(std::path::Path::new(&campaign));
    let mut fields: Vec<Field> = input
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("reason", DataType::Utf8, true));
    let mut cols = input.columns().to_vec();
    cols.push(Arc::new(arrow::array::StringArray::new_null(input.num_rows())));
    let b = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    let (store, opt_outs) = Store::open_with_opt_outs(std::path::Path::new(&store_dir)).unwrap();
    let scrubber = Scrubber::new(&store.config, opt_outs, store.erasures().unwrap()).unwrap();
    let data = Dataset::from_batches("the frame", b.schema(), vec![b.clone()]).unwrap();
    let cols = ScrubJob::new(vec![], "-".into())
        .columns(&store.config, &data)
        .unwrap();
    let e = memory::decide(&scrubber, &[b], &cols, "the frame")
        .unwrap_err()
        .to_string();
    assert!(e.contains("the frame") && e.contains("reason"), "{e}");
}

#[test]
fn a_scrub_checks_the_probe_ahead_only_once_it_has_read_many_rows() {
    // checking every block of a large probe ahead is for scrubs that will
    // read most of it: a CSV of one row (whose size is not known before it
    // is read) has only the blocks its lookup reads checked
    let w = Work::new();
    let (store_dir, _) = generated(&w);
    let row = "+447700900123,acct00,+447860000000\n";
    let scrub = |rows: usize| {
        let csv = w.p(&format!("rows-{rows}.csv"));
        std::fs::write(&csv, format!("phone,account_id,sender\n{}", row.repeat(rows))).unwrap();
        let (store, opt_outs) = Store::open_with_opt_outs(std::path::Path::new(&store_dir)).unwrap();
        let scrubber = Scrubber::new(&store.config, opt_outs, store.erasures().unwrap()).unwrap();
        let job = ScrubJob::new(vec![csv], w.p(&format!("out-{rows}.parquet")).into());
        let stats = optscrub::scrub::run::run(&store, &scrubber, &job).unwrap();
        assert_eq!(stats.rows_in, rows as u64);
        scrubber.checked_ahead()
    };
    assert!(!scrub(1), "one row");
    assert!(scrub(200_000), "200,000 rows");
}
