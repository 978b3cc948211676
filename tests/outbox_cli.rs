//! Replies to send are data: an ingest keeps them in the store until they
//! are handed over (`--outbox`, `optscrub outbox`), a failed or repeated
//! night never loses or overwrites them, and every confirmation that is
//! due goes out (one per account at a shared number).

use crate::common;

use std::fs;

use common::Work;

fn lines(w: &Work, rel: &str) -> Vec<String> {
    w.read_csv(rel).into_iter().map(|r| r.join(",")).collect()
}

fn manifest(store: &str) -> String {
    fs::read_to_string(std::path::Path::new(store).join("MANIFEST")).unwrap()
}

#[test]
fn replies_ingested_without_outbox_are_kept_until_handed_over() {
    let w = Work::new();
    let store = w.example_store();
    let replies = w.copy_example("replies.csv");
    let e = w.ok_stderr(&["ingest", "replies", "--store", &store, &replies]);
    assert!(e.contains("7 replies to send are kept in the store"), "{e}");
    assert!(e.contains("optscrub outbox --store"), "{e}");
    let stats = w.ok(&["stats", "--store", &store]);
    assert!(stats.contains("outbox: 7 replies pending"), "{stats}");
    // a peek writes them and takes nothing
    w.ok(&[
        "outbox",
        "--store",
        &store,
        "--output",
        &w.p("peek.csv"),
        "--peek",
    ]);
    assert_eq!(lines(&w, "peek.csv").len(), 8);
    w.ok(&["outbox", "--store", &store, "--output", &w.p("o.csv")]);
    let handed = lines(&w, "o.csv");
    assert_eq!(handed.len(), 8, "{handed:?}");
    assert_eq!(handed[0], "to,from,body,kind,in_reply_to");
    assert_eq!(lines(&w, "peek.csv"), handed);
    // handed over once: nothing is left, and a re-run of the log adds none
    w.ok(&["outbox", "--store", &store, "--output", &w.p("again.csv")]);
    assert_eq!(lines(&w, "again.csv"), ["to,from,body,kind,in_reply_to"]);
    w.ok(&[
        "ingest",
        "replies",
        "--store",
        &store,
        &replies,
        "--outbox",
        &w.p("rerun.csv"),
    ]);
    assert_eq!(lines(&w, "rerun.csv").len(), 1);
    let stats = w.ok(&["stats", "--store", &store]);
    assert!(stats.contains("outbox: 0 replies pending"), "{stats}");
}

#[test]
fn an_outbox_file_that_holds_replies_is_never_overwritten() {
    let w = Work::new();
    let store = w.example_store();
    let replies = w.copy_example("replies.csv");
    let out = w.p("out.csv");
    w.ok(&["ingest", "replies", "--store", &store, &replies, "--outbox", &out]);
    let first = fs::read(&out).unwrap();
    // the same log again: nothing new, the file is left as it is
    let e = w.ok_stderr(&["ingest", "replies", "--store", &store, &replies, "--outbox", &out]);
    assert!(e.contains("nothing new to hand over"), "{e}");
    assert_eq!(fs::read(&out).unwrap(), first);
    // a new opt-out while the file still holds the earlier replies: the
    // opt-out goes in (an outbox never holds one back), its confirmation
    // waits in the store, and the command says so with exit 1
    let later = w.write(
        "later.csv",
        "message_id,received_at,from,to,body\nz1,2026-11-21T08:00:00Z,+447700900090,+447860009123,STOP\n",
    );
    let e = w.fails(
        &["ingest", "replies", "--store", &store, &later, "--outbox", &out],
        1,
    );
    assert!(
        e.contains("already holds 7 replies from an earlier hand-over"),
        "{e}"
    );
    assert!(
        e.contains("the 1 replies to send stay pending in the store"),
        "{e}"
    );
    assert_eq!(fs::read(&out).unwrap(), first);
    let check = w.run(&[
        "check",
        "--store",
        &store,
        "--account",
        "acme",
        "--exit-status",
        "+447700900090",
    ]);
    assert_eq!(check.code, 3, "the opt-out was ingested");
    let e = w.fails(&["outbox", "--store", &store, "--output", &out], 1);
    assert!(e.contains("already holds 7 replies"), "{e}");
    // once the earlier file is taken away, the reply is handed over
    fs::remove_file(&out).unwrap();
    w.ok(&["outbox", "--store", &store, "--output", &out]);
    assert_eq!(lines(&w, "out.csv").len(), 2);
}

#[test]
fn nightly_checks_every_campaign_before_it_commits() {
    let w = Work::new();
    let store = w.example_store();
    let replies = w.copy_example("replies.csv");
    w.write(
        "campaigns/renewals.csv",
        &fs::read_to_string(common::repo().join("datasets/demo/campaigns/renewals.csv")).unwrap(),
    );
    // a campaign whose phone column has another name
    w.write(
        "campaigns/bad.csv",
        "msisdn,account_id,sender\n+447700900001,acme,+447860009123\n",
    );
    let before = manifest(&store);
    let out = w.p("out");
    let campaigns = w.p("campaigns");
    let night = |extra: &[&str]| {
        let mut a = vec![
            "nightly",
            "--store",
            &store,
            "--replies",
            &replies,
            "--campaigns",
            &campaigns,
            "--out",
            &out,
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let args = night(&[]);
    let e = w.fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), 1);
    assert!(e.contains("no column 'phone'"), "{e}");
    assert_eq!(manifest(&store), before, "nothing committed");
    assert!(!w.path("out/outbox.parquet").exists());
    // the nightly takes the scrub's column flags, and --summary
    let args = night(&["--phone-column", "msisdn", "--summary", &w.p("s.json")]);
    let e = w.fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), 1);
    assert!(e.contains("renewals.csv"), "the renewals file has 'phone': {e}");
    fs::remove_file(w.path("campaigns/bad.csv")).unwrap();
    let args = night(&["--summary", &w.p("s.json"), "--keep-duplicates"]);
    w.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let s: serde_json::Value = serde_json::from_str(&fs::read_to_string(w.path("s.json")).unwrap()).unwrap();
    assert_eq!(s["outbox_handed_over"], 7);
    let outbox = common::read_parquet(&w.path("out/outbox.parquet"));
    assert_eq!(outbox.num_rows(), 7);
    // the same night again into the same folder: nothing new, and the
    // outbox there is left as it is
    let e = w.ok_stderr(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("nothing new to hand over"), "{e}");
    assert_eq!(common::read_parquet(&w.path("out/outbox.parquet")).num_rows(), 7);
    // a night with new replies while the earlier outbox is still there:
    // they go to a file of their own, none is overwritten
    let more = w.write(
        "more.csv",
        "message_id,received_at,from,to,body\nz9,2026-11-22T08:00:00Z,+447700900091,+447860009123,STOP\n",
    );
    let night2 = [
        "nightly",
        "--store",
        &store,
        "--replies",
        &more,
        "--campaigns",
        &campaigns,
        "--out",
        &out,
        "--summary",
        &w.p("s2.json"),
    ];
    w.ok(&night2);
    let s2: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(w.path("s2.json")).unwrap()).unwrap();
    let name = s2["outbox_file"].as_str().unwrap().to_string();
    assert!(name.starts_with("outbox-"), "{name}");
    assert_eq!(
        common::read_parquet(&w.path(&format!("out/{name}"))).num_rows(),
        1
    );
    assert_eq!(common::read_parquet(&w.path("out/outbox.parquet")).num_rows(), 7);
}

#[test]
fn each_account_confirms_its_free_keyword_at_a_shared_number() {
    let w = Work::new();
    let config = w.write(
        "c.toml",
        r#"
[[shared_numbers]]
number = "+447860009000"

[[accounts]]
id = "a"
free_keyword = "aSTOP"
reply = "A: you are unsubscribed."
  [[accounts.senders]]
  id = "+447860009001"

[[accounts]]
id = "b"
free_keyword = "bSTOP"
reply = "B: you are unsubscribed."
  [[accounts.senders]]
  id = "+447860009002"
"#,
    );
    let store = w.p("store");
    w.ok(&["init", "--store", &store, "--config", &config]);
    let log = w.write(
        "r.csv",
        "message_id,received_at,from,to,body\n\
         m1,2026-11-20T08:00:00Z,+447700900060,+447860009000,aSTOP\n\
         m2,2026-11-20T08:01:00Z,+447700900060,+447860009000,bSTOP\n",
    );
    w.ok(&[
        "ingest",
        "replies",
        "--store",
        &store,
        &log,
        "--outbox",
        &w.p("o.csv"),
    ]);
    assert_eq!(
        lines(&w, "o.csv"),
        [
            "to,from,body,kind,in_reply_to",
            "+447700900060,+447860009000,A: you are unsubscribed.,opt_out_confirmation,m1",
            "+447700900060,+447860009000,B: you are unsubscribed.,opt_out_confirmation,m2",
        ]
    );
}

#[test]
fn an_unknown_sender_or_an_output_that_is_an_input_is_refused() {
    let w = Work::new();
    let store = w.example_store();
    let input = w.copy_example("campaigns/spring-sale.csv");
    let e = w.fails(
        &[
            "scrub",
            "--store",
            &store,
            "--input",
            &input,
            "--output",
            &w.p("k.csv"),
            "--sender",
            "+447000000001",
        ],
        1,
    );
    assert!(
        e.contains("--sender '+447000000001' is not a sender of any account"),
        "{e}"
    );
    let e = w.fails(
        &[
            "scrub",
            "--store",
            &store,
            "--input",
            &input,
            "--output",
            &w.p("k.csv"),
            "--account",
            "acme",
            "--sender",
            "+14155550100",
        ],
        1,
    );
    assert!(e.contains("is not a sender of account 'acme'"), "{e}");
    let before = fs::read(&input).unwrap();
    let e = w.fails(
        &["scrub", "--store", &store, "--input", &input, "--output", &input],
        1,
    );
    assert!(e.contains("is also an input"), "{e}");
    assert_eq!(fs::read(&input).unwrap(), before);
}
