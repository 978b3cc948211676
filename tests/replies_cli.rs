//! Black-box tests of `ingest replies`: outbox, review, rejects, scopes,
//! ordering and re-runs (SPEC §3.1–§3.3, §7).

use crate::common;

use common::Work;

fn lines(w: &Work, rel: &str) -> Vec<String> {
    w.read_csv(rel).into_iter().map(|r| r.join(",")).collect()
}

/// Ingest with every output; the outbox of an earlier call is taken away
/// first, as the program that sends replies would.
fn ingest(w: &Work, store: &str, file: &str) -> common::Run {
    let _ = std::fs::remove_file(w.path("outbox.csv"));
    let r = w.run(&[
        "ingest",
        "replies",
        "--store",
        store,
        file,
        "--outbox",
        &w.p("outbox.csv"),
        "--review",
        &w.p("review.csv"),
        "--rejects",
        &w.p("rejects.csv"),
        "--summary",
        &w.p("sum.json"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r
}

#[test]
fn example_reply_log() {
    let w = Work::new();
    let store = w.example_store();
    let replies = w.copy_example("replies.csv");
    let r = ingest(&w, &store, &replies);
    assert!(
        r.stderr.contains("19 messages; 8 new opt-outs, 2 new opt-ins"),
        "{}",
        r.stderr
    );
    assert_eq!(lines(&w, "outbox.csv"), [
        "to,from,body,kind,in_reply_to",
        "+447700900021,+447860009123,You are unsubscribed from ACME. Reply START to resubscribe.,opt_out_confirmation,m-002",
        "+447700900025,+447860009000,You are unsubscribed from all ACME messages.,opt_out_confirmation,m-006",
        "+447700900020,+447860009123,Welcome back to ACME alerts.,opt_in_confirmation,m-008",
        "+447700900027,+447860009123,Welcome back to ACME alerts.,opt_in_confirmation,m-010",
        "+447700900028,+447860009123,ACME alerts. Reply STOP to opt out.,help,m-011",
        "+447700900029,+14155550100,Globex: you are unsubscribed.,opt_out_confirmation,m-012",
        "+447700900034,+447860009123,You are unsubscribed from ACME. Reply START to resubscribe.,opt_out_confirmation,m-019",
    ]);
    assert_eq!(lines(&w, "review.csv"), [
        "message_id,from,to,body,why",
        "m-004,+447700900023,+447860009123,please stop texting me,opt-out keyword 'STOP' in the body did not trigger under match = leading",
        "m-007,+447700900026,+447860009000,STOP,opt-out keyword 'STOP' at a shared number names no account (expected a free keyword)",
        "m-013,+14155550135,+14155550100,opt out please,opt-out keyword 'OPT OUT' in the body did not trigger under match = exact",
    ]);
    let rej: Vec<Vec<String>> = w.read_csv("rejects.csv");
    let why: Vec<(&str, &str)> = rej[1..].iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert_eq!(
        why,
        [
            ("14", "unknown destination"),
            ("15", "received_at is not an RFC 3339 time"),
            ("16", "missing message_id"),
            ("17", "from is not a possible phone number"),
        ]
    );
    // phone numbers stay out of what it prints
    assert!(!r.stderr.contains("7700"), "{}", r.stderr);
    // the same file again: nothing new, no second confirmation
    let again = ingest(&w, &store, &replies);
    assert!(
        again
            .stderr
            .contains("0 new opt-outs, 0 new opt-ins, 10 already in the store"),
        "{}",
        again.stderr
    );
    assert_eq!(lines(&w, "outbox.csv"), ["to,from,body,kind,in_reply_to"]);
}

#[test]
fn scopes_follow_the_sender_setting_and_free_keywords() {
    let w = Work::new();
    let store = w.example_store();
    let replies = w.copy_example("replies.csv");
    ingest(&w, &store, &replies);
    let check = |sender: &str, phone: &str| -> serde_json::Value {
        let mut args = vec!["check", "--store", &store, "--account", "acme", phone, "--json"];
        if !sender.is_empty() {
            args.extend(["--sender", sender]);
        }
        serde_json::from_str(&w.ok(&args)).unwrap()
    };
    // STOP to a number-level sender: that sender only
    assert_eq!(
        check("+447860009123", "+447700900021")["reason"],
        "sender_opt_out"
    );
    assert_eq!(check("wa:acme", "+447700900021")["sendable"], true);
    // STOP to an account-level sender: the whole account
    let v = check("wa:acme", "+447700900024");
    assert_eq!(
        (v["reason"].as_str(), v["scope"].as_str()),
        (Some("account_opt_out"), Some("account"))
    );
    // free keyword at the shared number: the whole account, explained
    let v = check("", "+447700900025");
    assert_eq!(v["reason"], "account_opt_out");
    assert_eq!(v["events"][0]["source"], "free_keyword");
    assert_eq!(v["events"][0]["keyword"], "szWbhSTOP");
    assert_eq!(v["events"][0]["event_id"], "reply:m-006");
    assert_eq!(v["events"][0]["at"], "2026-11-20T08:20:00Z");
    // STOP then START: sendable again, the opt-in decides
    let v = check("+447860009123", "+447700900020");
    assert_eq!(v["sendable"], true);
    assert_eq!(v["events"][0]["action"], "opt_in");
}

#[test]
fn late_stop_does_not_override_a_newer_start() {
    let w = Work::new();
    let store = w.example_store();
    let start = w.write("a.csv", "message_id,received_at,from,to,body\nm2,2026-11-20T10:00:00+01:00,+447700900050,+447860009123,START\n");
    ingest(&w, &store, &start);
    let stop = w.write(
        "b.csv",
        "message_id,received_at,from,to,body\nm1,2026-11-20T08:59:00Z,+447700900050,+447860009123,STOP\n",
    );
    ingest(&w, &store, &stop);
    // the old STOP is recorded but sends nothing and does not win
    assert_eq!(lines(&w, "outbox.csv"), ["to,from,body,kind,in_reply_to"]);
    let v: serde_json::Value = serde_json::from_str(&w.ok(&[
        "check",
        "--store",
        &store,
        "--account",
        "acme",
        "--sender",
        "+447860009123",
        "+447700900050",
        "--json",
    ]))
    .unwrap();
    assert_eq!(v["sendable"], true);
    // an opt-in does not lift an account-wide webform opt-out
    let wf = w.write(
        "wf.csv",
        "account_id,phone,submitted_at\nacme,+447700900050,2026-11-20T07:00:00Z\n",
    );
    w.ok(&["ingest", "webform", "--store", &store, &wf]);
    let later = w.write(
        "c.csv",
        "message_id,received_at,from,to,body\nm3,2026-11-21T10:00:00Z,+447700900050,+447860009123,START\n",
    );
    ingest(&w, &store, &later);
    let v: serde_json::Value = serde_json::from_str(&w.ok(&[
        "check",
        "--store",
        &store,
        "--account",
        "acme",
        "--sender",
        "+447860009123",
        "+447700900050",
        "--json",
    ]))
    .unwrap();
    assert_eq!(v["reason"], "account_opt_out");
}

#[test]
fn one_confirmation_per_contact_sender_kind() {
    let w = Work::new();
    let store = w.example_store();
    let f = w.write(
        "r.csv",
        "message_id,received_at,from,to,body\n\
         a,2026-11-20T08:00:00Z,+447700900060,+447860009123,STOP\n\
         b,2026-11-20T08:01:00Z,+447700900060,+447860009123,END\n\
         c,2026-11-20T08:02:00Z,+447700900060,+447860009123,HELP\n\
         d,2026-11-20T08:03:00Z,+447700900060,+447860009123,INFO\n",
    );
    ingest(&w, &store, &f);
    let out = lines(&w, "outbox.csv");
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(out[1].ends_with("opt_out_confirmation,b"), "{out:?}");
    // two help requests: the newest is answered
    assert!(out[2].ends_with("help,d"), "{out:?}");
}

#[test]
fn stdin_and_renamed_columns() {
    let w = Work::new();
    let store = w.example_store();
    let r = w.run_stdin(
        &[
            "ingest",
            "replies",
            "--store",
            &store,
            "-",
            "--id-column",
            "id",
            "--body-column",
            "text",
            "--from-column",
            "sender_phone",
            "--to-column",
            "dest",
            "--time-column",
            "ts",
            "--outbox",
            &w.p("o.csv"),
        ],
        Some("id,ts,sender_phone,dest,text\nx1,2026-11-20T08:00:00Z,whatsapp:+447700900070,wa:acme,Stop\n"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("1 new opt-outs"), "{}", r.stderr);
    let e = w.fails(
        &[
            "ingest",
            "replies",
            "--store",
            &store,
            "datasets/demo/webform.csv",
        ],
        1,
    );
    // every missing column is named at once
    assert!(
        e.contains("no columns 'message_id', 'received_at', 'from', 'to', 'body' (columns: account_id, phone, submitted_at, submission_id); name them with --id-column, --time-column, --from-column, --to-column, --body-column"),
        "{e}"
    );
}

#[test]
fn parquet_timestamp_column() {
    use std::sync::Arc;

    use arrow::array::{RecordBatch, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let w = Work::new();
    let store = w.example_store();
    let schema = Arc::new(Schema::new(vec![
        Field::new("message_id", DataType::Utf8, false),
        Field::new(
            "received_at",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+01:00".into())),
            false,
        ),
        Field::new("from", DataType::Utf8, false),
        Field::new("to", DataType::Utf8, false),
        Field::new("body", DataType::Utf8, false),
    ]));
    // 2026-11-20T08:00:00Z
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["p1"])),
            Arc::new(TimestampMillisecondArray::from(vec![1_795_161_600_000]).with_timezone("+01:00")),
            Arc::new(StringArray::from(vec!["+447700900080"])),
            Arc::new(StringArray::from(vec!["+447860009123"])),
            Arc::new(StringArray::from(vec!["STOP"])),
        ],
    )
    .unwrap();
    let path = w.path("r.parquet");
    let mut wr =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None).unwrap();
    wr.write(&batch).unwrap();
    wr.close().unwrap();
    ingest(&w, &store, &w.p("r.parquet"));
    let v: serde_json::Value = serde_json::from_str(&w.ok(&[
        "check",
        "--store",
        &store,
        "--account",
        "acme",
        "+447700900080",
        "--json",
    ]))
    .unwrap();
    assert_eq!(v["events"][0]["at"], "2026-11-20T08:00:00Z");
}
