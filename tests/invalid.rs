//! Every fixture in `datasets/invalid/` fails with its exact message and
//! exit status, and writes nothing under the final output name.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::Work;

const SCRUB_CASES: &[(&str, &str)] = &[
    ("recipients_no_phone.csv", "datasets/invalid/recipients_no_phone.csv: no column 'phone' (columns: customer_id, account_id, sender); name it with --phone-column"),
    ("recipients_ragged.csv", "datasets/invalid/recipients_ragged.csv: incorrect number of fields for line 3, expected 2 got 3; expected UTF-8 CSV with as many fields as the header"),
    ("recipients_unclosed_quote.csv", "datasets/invalid/recipients_unclosed_quote.csv: incorrect number of fields for line 2, expected 2 got 1; expected UTF-8 CSV with as many fields as the header"),
    ("recipients_invalid_utf8.csv", "datasets/invalid/recipients_invalid_utf8.csv: Encountered invalid UTF-8 data for line 3 and field 1; expected UTF-8 CSV with as many fields as the header"),
    ("recipients_empty.csv", "datasets/invalid/recipients_empty.csv: the file is empty; expected a header row of column names"),
    ("recipients_duplicate_header.csv", "datasets/invalid/recipients_duplicate_header.csv: header names column 'phone' twice"),
    ("recipients_fake.parquet", "datasets/invalid/recipients_fake.parquet: not a readable Parquet file (Parquet error: Invalid Parquet file. Corrupt footer)"),
];

const CONFIG_CASES: &[(&str, &str)] = &[
    ("config_sender_in_two_accounts.toml", "sender +447860009123 is in two accounts: 'a' and 'b'"),
    ("config_duplicate_free_keyword.toml", "accounts 'a' and 'b' have the same free_keyword 'SZWBHstop' (free keywords must differ, ignoring case)"),
    ("config_keyword_in_two_classes.toml", "account 'a', sender +447860009123: keyword 'END' is both an opt-out and an opt-in keyword"),
    ("config_unknown_match.toml", "line 3, column 9: unknown variant `fuzzy`, expected one of `exact`, `leading`, `contains`"),
    ("config_unknown_pack.toml", "line 5, column 12: unknown variant `fr`, expected one of `us-fcc`, `ca`, `es`, `pt`"),
    ("config_not_toml.toml", "line 1, column 12: unclosed array table, expected `]`"),
    ("config_unknown_field.toml", "line 5, column 3: unknown field `acount_level`, expected one of `id`, `keywords`, `packs`, `account_level`, `reply`, `resubscribe_reply`"),
    ("config_bad_sender_id.toml", "account 'a': sender id 'acme' is not an SMS number, wa:<profile> or name:<text>"),
];

#[test]
fn bad_recipient_files() {
    let w = Work::new();
    let store = w.example_store();
    for (file, want) in SCRUB_CASES {
        let input = format!("datasets/invalid/{file}");
        let out = w.p("out.parquet");
        let e = w.fails(
            &["scrub", "--store", &store, "--input", &input, "--output", &out],
            1,
        );
        assert_eq!(e.trim(), format!("optscrub: error: {want}"), "{file}");
        assert!(!w.path("out.parquet").exists(), "{file}: output written");
    }
}

#[test]
fn header_only_gives_empty_outputs() {
    let w = Work::new();
    let store = w.example_store();
    let input = "datasets/invalid/recipients_header_only.csv";
    w.ok(&[
        "scrub",
        "--store",
        &store,
        "--input",
        input,
        "--output",
        &w.p("k.csv"),
        "--suppressed",
        &w.p("s.csv"),
    ]);
    assert_eq!(w.read_csv("k.csv"), [["phone", "account_id"]]);
    assert_eq!(w.read_csv("s.csv"), [["phone", "account_id", "reason", "scope"]]);
}

#[test]
fn bad_configs() {
    let w = Work::new();
    for (file, want) in CONFIG_CASES {
        let path = format!("datasets/invalid/{file}");
        let e = w.fails(&["init", "--store", &w.p("store"), "--config", &path], 1);
        assert_eq!(
            e.trim(),
            format!("optscrub: error: config {path}: {want}"),
            "{file}"
        );
        assert!(!w.path("store/MANIFEST").exists());
    }
}

#[test]
fn bad_webform_files() {
    let w = Work::new();
    let store = w.example_store();
    let e = w.fails(
        &[
            "ingest",
            "webform",
            "--store",
            &store,
            "datasets/invalid/webform_no_time.csv",
        ],
        1,
    );
    assert_eq!(
        e.trim(),
        "optscrub: error: datasets/invalid/webform_no_time.csv: no column 'submitted_at' (columns: account_id, phone); name it with --time-column"
    );
    // a time column of integers is refused, with the types that would do
    let schema = Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, false),
        Field::new("phone", DataType::Utf8, false),
        Field::new("submitted_at", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["acme"])),
            Arc::new(StringArray::from(vec!["+447700900001"])),
            Arc::new(Int64Array::from(vec![1_700_000_000])),
        ],
    )
    .unwrap();
    let path = w.path("wf.parquet");
    let mut wr =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None).unwrap();
    wr.write(&batch).unwrap();
    wr.close().unwrap();
    let e = w.fails(&["ingest", "webform", "--store", &store, &w.p("wf.parquet")], 1);
    assert!(e.contains("wf.parquet: column 'submitted_at' has type Int64; expected RFC 3339 text (2026-11-22T18:00:00Z) or a Parquet timestamp"), "{e}");
    // the store did not change
    let out = w.ok(&["stats", "--store", &store]);
    assert!(out.contains("total: 0 opt-outs"), "{out}");
    // a truncated Parquet file
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(w.path("cut.parquet"), &bytes[..bytes.len() / 2]).unwrap();
    let e = w.fails(&["ingest", "webform", "--store", &store, &w.p("cut.parquet")], 1);
    assert!(e.contains("cut.parquet: not a readable Parquet file"), "{e}");
}

#[test]
fn missing_files() {
    let w = Work::new();
    let store = w.example_store();
    let e = w.fails(
        &[
            "scrub",
            "--store",
            &store,
            "--input",
            &w.p("nope.csv"),
            "--output",
            &w.p("k.csv"),
        ],
        1,
    );
    assert!(e.contains("cannot open") && e.contains("nope.csv"), "{e}");
    let e = w.fails(&["init", "--store", &w.p("s"), "--config", &w.p("nope.toml")], 1);
    assert!(e.contains("cannot read config"), "{e}");
}
