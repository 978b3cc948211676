//! Hostile input, every kind × every case (`datasets/invalid/`, written by
//! its `make.py`): each ends in exit 0 with the bad rows in `--rejects` or
//! suppressed, or in exit 1 with a message naming the file and what was
//! expected. Never a panic, never an output under its final name after a
//! failure, never a store changed by a failed command, never a contact's
//! phone number in the messages.

use crate::common;

use std::fs;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::Work;

/// (file in datasets/invalid, exit status, what stderr says)
const CASES: &[(&str, i32, &str)] = &[
    ("recipients_empty.csv", 1, "recipients_empty.csv: the file is empty; expected a header row of column names"),
    ("recipients_header_only.csv", 0, "scrub: 0 rows in, 0 kept"),
    ("recipients_missing_column.csv", 1, "recipients_missing_column.csv: no column 'phone' (columns: customer_id, account_id, sender); name it with --phone-column"),
    ("recipients_extra_columns.csv", 0, "scrub: 1 rows in, 1 kept"),
    ("recipients_invalid_utf8.csv", 1, "recipients_invalid_utf8.csv: Encountered invalid UTF-8 data for line 3 and field 2"),
    ("recipients_nul_bytes.csv", 0, "scrub: 2 rows in, 1 kept, 1 suppressed (invalid_phone 1)"),
    ("recipients_cr_in_character.csv", 1, "recipients_cr_in_character.csv: row 3, column 'customer_id': bytes that are not UTF-8; expected UTF-8 CSV"),
    ("recipients_ragged.csv", 1, "recipients_ragged.csv: incorrect number of fields for line 3, expected 4 got 5"),
    ("recipients_quoted_newline.csv", 0, "scrub: 2 rows in"),
    ("recipients_unclosed_quote.csv", 1, "recipients_unclosed_quote.csv: incorrect number of fields for line 3, expected 4 got 5"),
    ("recipients_bom_crlf.csv", 0, "scrub: 2 rows in"),
    ("recipients_duplicate_header.csv", 1, "recipients_duplicate_header.csv: header names column 'sender' twice"),
    ("recipients_fake.parquet", 1, "recipients_fake.parquet: not a readable Parquet file (Parquet error: Invalid Parquet file. Corrupt footer)"),
    ("recipients_chunk_outside.parquet", 1, "recipients_chunk_outside.parquet: not a readable Parquet file (column 3 of row group 1 lies outside the file)"),
    ("recipients_truncated.parquet", 1, "recipients_truncated.parquet: not a readable Parquet file"),
    ("recipients_int_phone.parquet", 0, "scrub: 2 rows in"),
    ("replies_empty.csv", 1, "replies_empty.csv: the file is empty; expected a header row of column names"),
    ("replies_header_only.csv", 0, "replies: 0 messages"),
    ("replies_missing_column.csv", 1, "replies_missing_column.csv: no column 'from' (columns: message_id, received_at, to, body); name it with --from-column"),
    ("replies_extra_columns.csv", 0, "replies: 1 messages"),
    ("replies_invalid_utf8.csv", 1, "replies_invalid_utf8.csv: Encountered invalid UTF-8 data for line 3 and field 3"),
    ("replies_nul_bytes.csv", 0, "replies: 1 rows rejected; first: row 2: from is not a possible phone number"),
    ("replies_cr_in_character.csv", 1, "replies_cr_in_character.csv: row 3, column 'message_id': bytes that are not UTF-8; expected UTF-8 CSV"),
    ("replies_ragged.csv", 1, "replies_ragged.csv: incorrect number of fields for line 3, expected 5 got 6"),
    ("replies_quoted_newline.csv", 0, "replies: 2 messages"),
    ("replies_unclosed_quote.csv", 1, "replies_unclosed_quote.csv: incorrect number of fields for line 3, expected 5 got 6"),
    ("replies_bom_crlf.csv", 0, "replies: 2 messages"),
    ("replies_duplicate_header.csv", 1, "replies_duplicate_header.csv: header names column 'body' twice"),
    ("replies_fake.parquet", 1, "replies_fake.parquet: not a readable Parquet file"),
    ("replies_chunk_outside.parquet", 1, "replies_chunk_outside.parquet: not a readable Parquet file (column 3 of row group 1 lies outside the file)"),
    ("replies_truncated.parquet", 1, "replies_truncated.parquet: not a readable Parquet file"),
    ("replies_int_phone.parquet", 0, "replies: 2 messages"),
    ("replies_int_time.parquet", 1, "replies_int_time.parquet: column 'received_at' has type Int64; expected RFC 3339 text (2026-11-22T18:00:00Z) or a Parquet timestamp"),
    ("webform_empty.csv", 1, "webform_empty.csv: the file is empty; expected a header row of column names"),
    ("webform_header_only.csv", 0, "webform: 0 opt-outs read"),
    ("webform_missing_column.csv", 1, "webform_missing_column.csv: no column 'submitted_at' (columns: account_id, phone); name it with --time-column"),
    ("webform_extra_columns.csv", 0, "webform: 1 opt-outs read"),
    ("webform_invalid_utf8.csv", 1, "webform_invalid_utf8.csv: Encountered invalid UTF-8 data for line 3 and field 2"),
    ("webform_nul_bytes.csv", 0, "webform: 1 rows rejected; first: row 2: phone is not a possible number"),
    ("webform_cr_in_character.csv", 1, "webform_cr_in_character.csv: row 3, column 'account_id': bytes that are not UTF-8; expected UTF-8 CSV"),
    ("webform_ragged.csv", 1, "webform_ragged.csv: incorrect number of fields for line 3, expected 3 got 4"),
    ("webform_quoted_newline.csv", 0, "webform: 2 opt-outs read"),
    ("webform_unclosed_quote.csv", 1, "webform_unclosed_quote.csv: incorrect number of fields for line 3, expected 3 got 4"),
    ("webform_bom_crlf.csv", 0, "webform: 2 opt-outs read"),
    ("webform_duplicate_header.csv", 1, "webform_duplicate_header.csv: header names column 'submitted_at' twice"),
    ("webform_fake.parquet", 1, "webform_fake.parquet: not a readable Parquet file"),
    ("webform_chunk_outside.parquet", 1, "webform_chunk_outside.parquet: not a readable Parquet file (column 3 of row group 1 lies outside the file)"),
    ("webform_truncated.parquet", 1, "webform_truncated.parquet: not a readable Parquet file"),
    ("webform_int_phone.parquet", 0, "webform: 2 opt-outs read"),
    ("webform_int_time.parquet", 1, "webform_int_time.parquet: column 'submitted_at' has type Int64; expected RFC 3339 text"),
    ("import_empty.csv", 1, "import_empty.csv: the file is empty; expected a header row of column names"),
    ("import_header_only.csv", 0, "import: 0 opt-outs read"),
    ("import_missing_column.csv", 1, "import_missing_column.csv: no column 'phone' (columns: sender, occurred_at); name it with --phone-column"),
    ("import_extra_columns.csv", 0, "import: 1 opt-outs read"),
    ("import_invalid_utf8.csv", 1, "import_invalid_utf8.csv: Encountered invalid UTF-8 data for line 3 and field 1"),
    ("import_nul_bytes.csv", 0, "import: 1 rows rejected; first: row 2: phone is not a possible number"),
    ("import_cr_in_character.csv", 1, "import_cr_in_character.csv: row 3, column 'phone': bytes that are not UTF-8; expected UTF-8 CSV"),
    ("import_ragged.csv", 1, "import_ragged.csv: incorrect number of fields for line 3, expected 3 got 4"),
    ("import_quoted_newline.csv", 0, "import: 2 opt-outs read"),
    ("import_unclosed_quote.csv", 1, "import_unclosed_quote.csv: incorrect number of fields for line 3, expected 3 got 4"),
    ("import_bom_crlf.csv", 0, "import: 2 opt-outs read"),
    ("import_duplicate_header.csv", 1, "import_duplicate_header.csv: header names column 'occurred_at' twice"),
    ("import_fake.parquet", 1, "import_fake.parquet: not a readable Parquet file"),
    ("import_chunk_outside.parquet", 1, "import_chunk_outside.parquet: not a readable Parquet file (column 3 of row group 1 lies outside the file)"),
    ("import_truncated.parquet", 1, "import_truncated.parquet: not a readable Parquet file"),
    ("import_int_phone.parquet", 0, "import: 2 opt-outs read"),
    ("import_int_time.parquet", 1, "import_int_time.parquet: column 'occurred_at' has type Int64; expected RFC 3339 text"),
];

/// The command for an input of this kind, and the outputs it may write.
fn command(w: &Work, store: &str, file: &str) -> (Vec<String>, Vec<String>) {
    let kind = file.rsplit('/').next().unwrap().split('_').next().unwrap();
    let (o, rv, rj) = (w.p("out.csv"), w.p("review.csv"), w.p("rejects.csv"));
    let args: Vec<&str> = match kind {
        "recipients" => vec![
            "scrub",
            "--store",
            store,
            "--input",
            file,
            "--output",
            &o,
            "--suppressed",
            &rv,
        ],
        "replies" => vec![
            "ingest",
            "replies",
            "--store",
            store,
            file,
            "--outbox",
            &o,
            "--review",
            &rv,
            "--rejects",
            &rj,
        ],
        "webform" => vec!["ingest", "webform", "--store", store, file, "--rejects", &rj],
        "import" => vec![
            "ingest",
            "import",
            "--store",
            store,
            file,
            "--account",
            "acme",
            "--senders",
            "+447860009123",
            "--rejects",
            &rj,
        ],
        k => panic!("unknown kind {k}"),
    };
    (
        args.into_iter().map(String::from).collect(),
        vec![o.clone(), rv.clone(), rj.clone()],
    )
}

/// Runs one case and checks what every case must hold.
fn run_case(w: &Work, store: &str, file: &str, code: i32, says: &str) -> String {
    let (args, outputs) = command(w, store, file);
    for o in &outputs {
        let _ = fs::remove_file(o);
    }
    let manifest = fs::read(w.path("store/MANIFEST")).unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = w.run(&args);
    assert_eq!(r.code, code, "{file}: {}", r.stderr);
    assert!(
        r.stderr.contains(says),
        "{file}: stderr does not say {says:?}:\n{}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{file}: {}", r.stderr);
    for digits in ["7700900", "447700"] {
        assert!(
            !r.stderr.contains(digits),
            "{file}: a phone number in the message: {}",
            r.stderr
        );
    }
    if code != 0 {
        assert!(r.stderr.starts_with("optscrub: error: "), "{file}: {}", r.stderr);
        for o in &outputs {
            assert!(
                !std::path::Path::new(o).exists(),
                "{file}: {o} written after a failure"
            );
        }
        assert_eq!(
            fs::read(w.path("store/MANIFEST")).unwrap(),
            manifest,
            "{file}: the store changed"
        );
    }
    r.stderr
}

#[test]
fn every_kind_times_every_case() {
    let w = Work::new();
    let store = w.loaded_store();
    let mut kinds = std::collections::BTreeMap::new();
    for (file, code, says) in CASES {
        run_case(&w, &store, &format!("datasets/invalid/{file}"), *code, says);
        *kinds.entry(file.split('_').next().unwrap()).or_insert(0) += 1;
    }
    // every fixture is in the table, and every kind has every case
    let mut fixtures: Vec<String> = fs::read_dir(common::repo().join("datasets/invalid"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("config_") && !n.ends_with(".md") && !n.ends_with(".py"))
        .collect();
    fixtures.sort();
    let mut listed: Vec<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    listed.sort();
    assert_eq!(fixtures, listed);
    assert_eq!(
        kinds.values().copied().collect::<Vec<_>>(),
        [17, 16, 17, 17],
        "{kinds:?}"
    );
}

#[test]
fn rejects_count_records_not_lines() {
    // a quoted newline inside a body does not shift the row numbers
    let w = Work::new();
    let store = w.example_store();
    let log = w.write(
        "r.csv",
        "message_id,received_at,from,to,body\nm-1,2026-11-20T08:00:00Z,+447700900020,+447860009123,\"STOP\nnow\"\nm-2,2026-11-20T08:00:00Z,not a phone,+447860009123,STOP\n",
    );
    w.ok(&[
        "ingest",
        "replies",
        "--store",
        &store,
        &log,
        "--rejects",
        &w.p("rj.csv"),
    ]);
    let rows = w.read_csv("rj.csv");
    assert_eq!(rows[1][0], "2", "{rows:?}");
}

#[test]
fn a_10_mb_field_passes_through() {
    let w = Work::new();
    let store = w.loaded_store();
    let big = "x".repeat(10 << 20);
    let recipients = w.write(
        "big.csv",
        &format!("phone,account_id,sender,note\n+447700900010,acme,+447860009123,{big}\n+447700900011,acme,+447860009123,short\n"),
    );
    w.ok(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &recipients,
        "--output",
        &w.p("k.csv"),
    ]);
    let kept = w.read_csv("k.csv");
    assert_eq!(kept.len(), 3);
    assert_eq!(kept[1][3].len(), 10 << 20);
    let log = w.write(
        "big-replies.csv",
        &format!("message_id,received_at,from,to,body\nm-1,2026-11-20T08:00:00Z,+447700900030,+447860009123,STOP {big}\n"),
    );
    let e = w.run(&[
        "ingest",
        "replies",
        "--store",
        &store,
        &log,
        "--review",
        &w.p("rv.csv"),
    ]);
    assert_eq!(e.code, 0, "{}", e.stderr);
    assert!(e.stderr.contains("1 new opt-outs"), "{}", e.stderr);
}

#[test]
fn one_huge_row_group_streams() {
    let w = Work::new();
    let store = w.loaded_store();
    let n = 300_000usize;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("phone", DataType::Utf8, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("sender", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("+4477009{:05}", i % 100_000)),
            )),
            Arc::new(StringArray::from_iter_values((0..n).map(|_| "acme"))),
            Arc::new(StringArray::from_iter_values((0..n).map(|_| "+447860009123"))),
        ],
    )
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(n))
        .build();
    let path = w.path("huge.parquet");
    let mut wr =
        parquet::arrow::ArrowWriter::try_new(fs::File::create(&path).unwrap(), schema, Some(props)).unwrap();
    wr.write(&batch).unwrap();
    wr.close().unwrap();
    let meta = parquet::file::reader::SerializedFileReader::new(fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(
        parquet::file::reader::FileReader::metadata(&meta).num_row_groups(),
        1
    );
    let e = w.run(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &w.p("huge.parquet"),
        "--output",
        &w.p("k.parquet"),
        "--keep-duplicates",
    ]);
    assert_eq!(e.code, 0, "{}", e.stderr);
    assert!(e.stderr.contains("scrub: 300000 rows in"), "{}", e.stderr);
}

#[test]
fn bad_flags_are_usage_errors() {
    let w = Work::new();
    let store = w.loaded_store();
    let input = w.copy_example("campaigns/spring-sale.csv");
    let out = w.p("k.csv");
    let txt = w.p("k.txt");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "scrub", "--store", &store, "--input", &input, "--output", &out, "--nope",
            ],
            "unexpected argument '--nope'",
        ),
        (
            vec!["scrub", "--store", &store, "--input", &input],
            "--output <F>",
        ),
        (
            vec![
                "scrub",
                "--store",
                &store,
                "--input",
                &input,
                "--output",
                &out,
                "--default-country",
                "ZZ",
            ],
            "--default-country",
        ),
        (
            vec!["scrub", "--store", &store, "--input", &input, "--output", &txt],
            "k.txt",
        ),
        (
            vec!["ingest", "import", "--store", &store, &input, "--account", "acme"],
            "--senders",
        ),
        (
            vec![
                "ingest",
                "import",
                "--store",
                &store,
                &input,
                "--account",
                "nobody",
                "--account-wide",
            ],
            "nobody",
        ),
        (
            vec![
                "export",
                "--store",
                &store,
                "--output",
                &out,
                "--account",
                "nobody",
            ],
            "nobody",
        ),
        (vec!["check", "--store", &store, "--account", "acme"], "<PHONE>"),
        (vec!["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, says) in cases {
        let r = w.run(&args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert!(!w.path("k.csv").exists() && !w.path("k.txt").exists());
    }
}

/// (config fixture, what the error says)
const CONFIGS: &[(&str, &str)] = &[
    (
        "config_empty.toml",
        "no accounts; expected at least one [[accounts]] table",
    ),
    (
        "config_invalid_utf8.toml",
        "line 2: bytes that are not UTF-8; expected UTF-8 TOML text",
    ),
    ("config_nul_bytes.toml", "line 2, column 8: invalid basic string"),
    ("config_duplicate_account.toml", "account 'a' is defined twice"),
];

#[test]
fn hostile_configs() {
    let w = Work::new();
    for (file, says) in CONFIGS {
        let path = format!("datasets/invalid/{file}");
        let e = w.fails(&["init", "--store", &w.p("s"), "--config", &path], 1);
        assert!(e.contains(says), "{file}: {e}");
        assert!(!w.path("s/MANIFEST").exists());
    }
    // a 10 MB reply text is fine; replacing a config with a bad one keeps the old
    let store = w.example_store();
    let big = format!(
        "[[accounts]]\nid = \"acme\"\nreply = \"{}\"\n  [[accounts.senders]]\n  id = \"+447860009123\"\n",
        "x".repeat(10 << 20)
    );
    let cfg = w.write("big.toml", &big);
    w.ok(&["config", "--store", &store, "--config", &cfg]);
    let before = fs::read(w.path("store/MANIFEST")).unwrap();
    w.fails(
        &[
            "config",
            "--store",
            &store,
            "--config",
            "datasets/invalid/config_nul_bytes.toml",
        ],
        1,
    );
    assert_eq!(fs::read(w.path("store/MANIFEST")).unwrap(), before);
}
