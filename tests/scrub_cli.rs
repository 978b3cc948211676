//! Black-box tests of `scrub`: every rule of SPEC §3.4 and §3.5, on the
//! example data, through the real binary.

use crate::common;

use common::{csv_to_parquet, strings, Work};

const KEPT: &[&str] = &[
    "customer_id,phone,account_id,sender,first_name,segment",
    "1,+447700900010,acme,+447860009123,Ada,gold",
    "4,+447700900002,acme,wa:acme,Cy,silver",
    "11,+14155550134,globex,+14155550100,Hal,new",
    "12,447700900001,globex,+14155550100,Ivy,new",
];

const SUPPRESSED: &[&str] = &[
    "customer_id,phone,account_id,sender,first_name,segment,reason,scope",
    "2,+44 7700 900001,acme,+447860009123,Bea,gold,account_opt_out,account",
    "3,+447700900002,acme,447860009123,Cy,silver,sender_opt_out,+447860009123",
    "5,+447700900003,acme,wa:acme,Dot,bronze,sender_opt_out,wa:acme",
    "6,+447700900003,acme,,Dot,bronze,sender_opt_out,wa:acme",
    "7,07700 900011,acme,+447860009123,Eve,gold,invalid_phone,",
    "8,+447700900012,acmee,+447860009123,Fay,gold,unknown_account,",
    "9,+447700900013,acme,+447860009999,Gus,gold,unknown_sender,",
    "10,+447700900010,acme,wa:acme,Ada,gold,duplicate,",
    "13,+1 415-555-0199,globex,+14155550100,Jo,new,account_opt_out,account",
];

/// Scrub `in.parquet` into `k.parquet` and `s.parquet`.
fn scrub_parquet(w: &Work, store: &str) {
    w.ok(&[
        "scrub",
        "--store",
        store,
        "--input",
        &w.p("in.parquet"),
        "--output",
        &w.p("k.parquet"),
        "--suppressed",
        &w.p("s.parquet"),
    ]);
}

fn lines(w: &Work, rel: &str) -> Vec<String> {
    w.read_csv(rel).into_iter().map(|r| r.join(",")).collect()
}

#[test]
fn example_gives_every_reason_in_order() {
    let w = Work::new();
    let store = w.loaded_store();
    let input = w.copy_example("campaigns/spring-sale.csv");
    let r = w.run(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &input,
        "--output",
        &w.p("kept.csv"),
        "--suppressed",
        &w.p("sup.csv"),
        "--summary",
        &w.p("sum.json"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lines(&w, "kept.csv"), KEPT);
    assert_eq!(lines(&w, "sup.csv"), SUPPRESSED);
    let sum: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("sum.json")).unwrap()).unwrap();
    assert_eq!(sum["rows_in"], 13);
    assert_eq!(sum["kept"], 4);
    assert_eq!(sum["suppressed"], 9);
    assert_eq!(sum["reasons"]["sender_opt_out"], 3);
    assert_eq!(sum["reasons"]["duplicate"], 1);
    assert!(
        r.stderr.contains("13 rows in, 4 kept, 9 suppressed"),
        "{}",
        r.stderr
    );
    // no phone number from the data in what it prints
    assert!(!r.stderr.contains("7700"), "{}", r.stderr);
}

#[test]
fn keep_duplicates_keeps_the_second_row() {
    let w = Work::new();
    let store = w.loaded_store();
    let input = w.copy_example("campaigns/spring-sale.csv");
    w.ok(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &input,
        "--output",
        &w.p("kept.csv"),
        "--keep-duplicates",
    ]);
    let kept = lines(&w, "kept.csv");
    assert_eq!(kept.len(), 6);
    assert_eq!(kept[3], "10,+447700900010,acme,wa:acme,Ada,gold");
}

#[test]
fn default_country_reads_national_numbers() {
    let w = Work::new();
    let store = w.loaded_store();
    let input = w.copy_example("campaigns/spring-sale.csv");
    w.ok(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &input,
        "--output",
        &w.p("kept.csv"),
        "--default-country",
        "GB",
    ]);
    assert!(lines(&w, "kept.csv").contains(&"7,07700 900011,acme,+447860009123,Eve,gold".to_string()));
    let e = w.fails(
        &[
            "scrub",
            "--store",
            &store,
            "--input",
            &input,
            "--output",
            &w.p("k2.csv"),
            "--default-country",
            "XX",
        ],
        1,
    );
    assert_eq!(
        e.trim(),
        "optscrub: error: --default-country 'XX' is not an ISO 3166 alpha-2 country code (like GB or US)"
    );
    assert!(!w.path("k2.csv").exists());
}

#[test]
fn account_and_sender_flags_fill_missing_columns() {
    let w = Work::new();
    let store = w.loaded_store();
    let input = w.write(
        "in.csv",
        "phone,name\n+447700900002,a\n+447700900003,b\n+447700900001,c\n+447700900020,d\n",
    );
    // sender given: only that sender's scope and the account's count
    w.ok(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &input,
        "--output",
        &w.p("k.csv"),
        "--suppressed",
        &w.p("s.csv"),
        "--account",
        "acme",
        "--sender",
        "wa:acme",
    ]);
    assert_eq!(
        lines(&w, "k.csv"),
        ["phone,name", "+447700900002,a", "+447700900020,d"]
    );
    assert_eq!(
        lines(&w, "s.csv"),
        [
            "phone,name,reason,scope",
            "+447700900003,b,sender_opt_out,wa:acme",
            "+447700900001,c,account_opt_out,account",
        ]
    );
    // no sender at all: every sender of the account is checked
    w.ok(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &input,
        "--output",
        &w.p("k.csv"),
        "--account",
        "acme",
    ]);
    assert_eq!(lines(&w, "k.csv"), ["phone,name", "+447700900020,d"]);
    // an account column is needed when --account is not given
    let e = w.fails(
        &[
            "scrub",
            "--store",
            &store,
            "--input",
            &input,
            "--output",
            &w.p("k3.csv"),
        ],
        1,
    );
    assert!(e.contains("no column 'account_id' (columns: phone, name); name it with --account-column (or give --account for every row)"), "{e}");
    let e = w.fails(
        &[
            "scrub",
            "--store",
            &store,
            "--input",
            &input,
            "--output",
            &w.p("k3.csv"),
            "--account",
            "nope",
        ],
        1,
    );
    assert_eq!(
        e.trim(),
        "optscrub: error: --account 'nope' is not an account in the store's config"
    );
}

#[test]
fn renamed_columns() {
    let w = Work::new();
    let store = w.loaded_store();
    let input = w.write(
        "in.csv",
        "msisdn,tenant,from\n+447700900002,acme,+447860009123\n+447700900010,acme,+447860009123\n",
    );
    w.ok(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &input,
        "--output",
        &w.p("k.csv"),
        "--phone-column",
        "msisdn",
        "--account-column",
        "tenant",
        "--sender-column",
        "from",
    ]);
    assert_eq!(
        lines(&w, "k.csv"),
        ["msisdn,tenant,from", "+447700900010,acme,+447860009123"]
    );
    let e = w.fails(
        &[
            "scrub",
            "--store",
            &store,
            "--input",
            &input,
            "--output",
            &w.p("k2.csv"),
            "--phone-column",
            "msisdn",
            "--account-column",
            "tenant",
            "--sender-column",
            "sndr",
        ],
        1,
    );
    assert!(e.contains("no column 'sndr'"), "{e}");
}

#[test]
fn parquet_in_and_out_with_integer_phones() {
    let w = Work::new();
    let store = w.loaded_store();
    let csv = w.write("in.csv", "id,phone,account_id,sender\n1,447700900002,acme,+447860009123\n2,447700900010,acme,+447860009123\n3,14155550199,globex,\n4,14155550134,globex,\n");
    csv_to_parquet(
        std::path::Path::new(&csv),
        &w.path("in.parquet"),
        &["id", "phone"],
    );
    scrub_parquet(&w, &store);
    let k = w.read_parquet("k.parquet");
    assert_eq!(
        k.schema().field(1).data_type(),
        &arrow::datatypes::DataType::Int64,
        "columns unchanged"
    );
    assert_eq!(strings(&k, "id"), ["2", "4"]);
    let s = w.read_parquet("s.parquet");
    assert_eq!(strings(&s, "reason"), ["sender_opt_out", "account_opt_out"]);
    assert_eq!(strings(&s, "scope"), ["+447860009123", "account"]);
}

#[test]
fn folder_of_parts_and_stdin() {
    let w = Work::new();
    let store = w.loaded_store();
    w.write(
        "parts/b.csv",
        "phone,account_id\n+447700900010,acme\n+447700900030,acme\n",
    );
    w.write(
        "parts/a.csv",
        "phone,account_id\n+447700900030,acme\n+447700900001,acme\n",
    );
    w.write("parts/notes.txt", "ignored");
    w.ok(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &w.p("parts"),
        "--output",
        &w.p("k.csv"),
    ]);
    // a.csv first (name order); the second +447700900030 is a duplicate
    assert_eq!(
        lines(&w, "k.csv"),
        ["phone,account_id", "+447700900030,acme", "+447700900010,acme"]
    );
    let r = w.run_stdin(
        &[
            "scrub",
            "--store",
            &store,
            "--input",
            "-",
            "--output",
            &w.p("k2.csv"),
        ],
        Some("phone,account_id\n+447700900001,acme\n+447700900040,acme\n"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lines(&w, "k2.csv"), ["phone,account_id", "+447700900040,acme"]);
}

#[test]
fn phone_forms_of_spec_3_5() {
    let w = Work::new();
    let store = w.loaded_store();
    let forms = [
        "+447700900003",
        "447700900003",
        "+44 7700 900003",
        "0044 7700 900003",
        "+44 (7700) 900-003",
        "+44.7700.900.003",
        "tel:+447700900003",
        "whatsapp:+447700900003",
    ];
    let mut csv = String::from("phone,account_id,sender\n");
    for f in forms {
        csv.push_str(&format!("\"{f}\",acme,wa:acme\n"));
    }
    csv.push_str("07700 900003,acme,wa:acme\nnot a phone,acme,wa:acme\n+44770090000312345,acme,wa:acme\n");
    let input = w.write("in.csv", &csv);
    w.ok(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &input,
        "--output",
        &w.p("k.csv"),
        "--suppressed",
        &w.p("s.csv"),
        "--keep-duplicates",
    ]);
    let s = w.read_csv("s.csv");
    let reasons: Vec<&str> = s[1..].iter().map(|r| r[3].as_str()).collect();
    let mut want = vec!["sender_opt_out"; forms.len()];
    want.extend(["invalid_phone"; 3]);
    assert_eq!(reasons, want);
}

#[test]
fn bad_output_names_and_failed_runs_write_nothing() {
    let w = Work::new();
    let store = w.loaded_store();
    let input = w.copy_example("campaigns/spring-sale.csv");
    let e = w.fails(
        &[
            "scrub",
            "--store",
            &store,
            "--input",
            &input,
            "--output",
            &w.p("k.txt"),
        ],
        1,
    );
    assert!(
        e.contains("unknown output type; expected a name ending in .parquet or .csv"),
        "{e}"
    );
    let bad = w.write(
        "bad.csv",
        "phone,account_id\n+447700900010,acme\n+447700900011,acme,extra\n",
    );
    let e = w.fails(
        &[
            "scrub",
            "--store",
            &store,
            "--input",
            &bad,
            "--output",
            &w.p("k.csv"),
            "--suppressed",
            &w.p("s.csv"),
        ],
        1,
    );
    assert!(e.contains("bad.csv"), "{e}");
    assert!(!w.path("k.csv").exists() && !w.path("s.csv").exists());
    let leftovers: Vec<_> = std::fs::read_dir(w.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
    let e = w.fails(
        &[
            "scrub",
            "--store",
            &w.p("nostore"),
            "--input",
            &input,
            "--output",
            &w.p("k.csv"),
        ],
        1,
    );
    assert!(e.contains("is not an optscrub store"), "{e}");
}

#[test]
fn usage_errors_exit_1() {
    let w = Work::new();
    let r = w.run(&["scrub", "--bogus"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("--bogus"), "{}", r.stderr);
    let r = w.run(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("scrub"));
}

/// Outputs keep the input's encodings: a text column whose pages are all
/// dictionary-encoded stays so (written from its keys), and columns the
/// input wrote without a dictionary (or gave one up on) get none.
#[test]
fn outputs_follow_the_inputs_encodings() {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Encoding;
    use parquet::file::properties::WriterProperties;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let w = Work::new();
    let store = w.loaded_store();
    let n = 40;
    let phones: Vec<String> = (0..n).map(|i| format!("+4477009{i:05}")).collect();
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(Int64Array::from_iter_values(0..n as i64))),
        ("phone", Arc::new(StringArray::from_iter_values(&phones))),
        (
            "account_id",
            Arc::new(StringArray::from_iter_values((0..n).map(|_| "acme"))),
        ),
        (
            "sender",
            Arc::new(StringArray::from_iter_values((0..n).map(|_| "+447860009123"))),
        ),
        (
            "segment",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| ["gold", "new"][i % 2]),
            )),
        ),
    ];
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    // a dictionary page of 64 bytes: id and phone give theirs up at once
    let props = WriterProperties::builder()
        .set_dictionary_page_size_limit(64)
        .build();
    let mut writer = ArrowWriter::try_new(
        std::fs::File::create(w.path("in.parquet")).unwrap(),
        batch.schema(),
        Some(props),
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    scrub_parquet(&w, &store);
    // the example store opts out 900001 (account), 900002 and 900004 (the sender)
    let k = w.read_parquet("k.parquet");
    let kept: Vec<String> = (0..n)
        .filter(|i| ![1, 2, 4].contains(i))
        .map(|i| i.to_string())
        .collect();
    assert_eq!(strings(&k, "id"), kept);
    assert_eq!(
        strings(&k, "segment"),
        kept.iter()
            .map(|i| ["gold", "new"][i.parse::<usize>().unwrap() % 2])
            .collect::<Vec<_>>()
    );
    assert_eq!(strings(&w.read_parquet("s.parquet"), "id"), ["1", "2", "4"]);
    for out in ["k.parquet", "s.parquet"] {
        let file = SerializedFileReader::new(std::fs::File::open(w.path(out)).unwrap()).unwrap();
        let rg = file.metadata().row_group(0);
        for c in rg.columns() {
            let name = c.column_path().string();
            let all_dict = c.dictionary_page_offset().is_some()
                && c.page_encoding_stats_mask()
                    .is_some_and(|m| m.is_only(Encoding::RLE_DICTIONARY));
            match name.as_str() {
                "id" | "phone" => assert!(
                    c.dictionary_page_offset().is_none(),
                    "{out}: {name} has a dictionary"
                ),
                "account_id" | "sender" | "segment" => {
                    assert!(all_dict, "{out}: {name} is not all dictionary")
                }
                _ => {}
            }
        }
    }
}

/// Polars writes text as `string_view` (and pandas as `large_string`) in
/// the Arrow schema it embeds: those columns take the same path as
/// `string` (read and written as dictionaries), with the same rows out.
#[test]
fn text_written_as_string_view_or_large_string_scrubs_the_same() {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, LargeStringArray, RecordBatch, StringArray, StringViewArray};
    use parquet::arrow::ArrowWriter;

    let w = Work::new();
    let store = w.loaded_store();
    let n = 200;
    let phones: Vec<String> = (0..n)
        .map(|i| {
            if i % 50 == 0 {
                "+447700900001".to_string()
            } else {
                format!("+4477009{i:05}")
            }
        })
        .collect();
    let segment: Vec<&str> = (0..n).map(|i| ["gold", "new", "lapsed"][i % 3]).collect();
    let write = |name: &str, text: &dyn Fn(Vec<String>) -> ArrayRef| {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let batch = RecordBatch::try_from_iter(vec![
            ("phone", text(phones.clone())),
            ("account_id", text(owned(&vec!["acme"; n]))),
            ("sender", text(owned(&vec!["+447860009123"; n]))),
            ("segment", text(owned(&segment))),
        ])
        .unwrap();
        let mut writer =
            ArrowWriter::try_new(std::fs::File::create(w.path(name)).unwrap(), batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    };
    write("utf8.parquet", &|v| Arc::new(StringArray::from(v)) as ArrayRef);
    write("view.parquet", &|v| {
        Arc::new(StringViewArray::from(v)) as ArrayRef
    });
    write("large.parquet", &|v| {
        Arc::new(LargeStringArray::from(v)) as ArrayRef
    });
    let mut kept = Vec::new();
    for f in ["utf8", "view", "large"] {
        let out = w.p(&format!("{f}-k.parquet"));
        w.ok(&[
            "scrub",
            "--store",
            &store,
            "--input",
            &w.p(&format!("{f}.parquet")),
            "--output",
            &out,
        ]);
        let b = common::read_parquet(std::path::Path::new(&out));
        kept.push((strings(&b, "phone"), strings(&b, "segment")));
    }
    assert!(
        !kept[0].0.contains(&"+447700900001".to_string()),
        "opted out by webform"
    );
    assert_eq!(kept[0].0.len(), 193);
    assert_eq!(kept[1], kept[0]);
    assert_eq!(kept[2], kept[0]);
}
