//! Black-box tests of the store commands: init, config, ingest webform and
//! import, check, export, stats, rebuild; damage and the writer lock.

use crate::common;

use std::fs;

use common::{strings, Work};

fn ledger_files(w: &Work) -> usize {
    fs::read_dir(w.path("store/ledger")).unwrap().count()
}

#[test]
fn init_refuses_an_existing_store_and_bad_configs() {
    let w = Work::new();
    let store = w.example_store();
    let config = w.p("config.toml");
    let e = w.fails(&["init", "--store", &store, "--config", &config], 1);
    assert!(e.contains("is already an optscrub store"), "{e}");
    let bad = w.write("bad.toml", "[[accounts]]\nid = \"a\"\nmatch = \"fuzzy\"\n");
    let e = w.fails(&["init", "--store", &w.p("s2"), "--config", &bad], 1);
    assert!(
        e.contains("unknown variant `fuzzy`, expected one of `exact`, `leading`, `contains`"),
        "{e}"
    );
    assert!(!w.path("s2/MANIFEST").exists());
    // a folder with other things in it is not taken over
    w.write("busy/notes.txt", "mine");
    let e = w.fails(&["init", "--store", &w.p("busy"), "--config", &config], 1);
    assert!(e.contains("exists and is not empty"), "{e}");
    assert!(!w.path("busy/ledger").exists());
}

#[test]
fn config_replacement_keeps_the_old_one() {
    let w = Work::new();
    let store = w.loaded_store();
    let text = fs::read_to_string(w.path("config.toml"))
        .unwrap()
        .replace("id = \"globex\"", "id = \"globex2\"");
    let new = w.write("new.toml", &text);
    w.ok(&["config", "--store", &store, "--config", &new]);
    assert_eq!(fs::read_dir(w.path("store/config")).unwrap().count(), 2);
    // globex is gone from the config: its rows are now unknown_account
    let input = w.write(
        "in.csv",
        "phone,account_id\n+14155550134,globex\n+14155550134,globex2\n",
    );
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
    ]);
    let s = w.read_csv("s.csv");
    assert_eq!(s[1], ["+14155550134", "globex", "unknown_account", ""]);
    let bad = w.write("bad.toml", &text.replace("gxSTOP", "SZWBHstop"));
    let e = w.fails(&["config", "--store", &store, "--config", &bad], 1);
    assert!(e.contains("have the same free_keyword"), "{e}");
}

#[test]
fn leftovers_of_a_killed_writer_are_removed() {
    let w = Work::new();
    let store = w.example_store();
    w.write("store/.MANIFEST.tmp-99999", "half a manifest");
    w.write(
        "store/ledger/0000000099.parquet",
        "an ingest that never committed",
    );
    w.write("store/snapshot/.0000000099.snap.tmp-99999", "half a snapshot");
    let wf = w.copy_example("webform.csv");
    w.ok(&["ingest", "webform", "--store", &store, &wf]);
    assert!(!w.path("store/.MANIFEST.tmp-99999").exists());
    assert!(!w.path("store/ledger/0000000099.parquet").exists());
    assert!(!w.path("store/snapshot/.0000000099.snap.tmp-99999").exists());
    let out = w.ok(&["stats", "--store", &store]);
    assert!(
        out.contains("total: 2 opt-outs; 2 events in 1 ledger files"),
        "{out}"
    );
}

#[test]
fn ingesting_twice_changes_nothing() {
    let w = Work::new();
    let store = w.loaded_store();
    let before = ledger_files(&w);
    let manifest = fs::read(w.path("store/MANIFEST")).unwrap();
    let wf = w.p("webform.csv");
    let r = w.run(&[
        "ingest",
        "webform",
        "--store",
        &store,
        &wf,
        "--summary",
        &w.p("s.json"),
    ]);
    assert_eq!(r.code, 0);
    assert!(
        r.stderr
            .contains("2 opt-outs read, 0 new, 2 already in the store"),
        "{}",
        r.stderr
    );
    let imp = w.p("import.csv");
    w.ok(&[
        "ingest",
        "import",
        "--store",
        &store,
        &imp,
        "--account",
        "acme",
        "--senders",
        "+447860009123",
    ]);
    assert_eq!(ledger_files(&w), before);
    assert_eq!(fs::read(w.path("store/MANIFEST")).unwrap(), manifest);
}

#[test]
fn webform_and_import_rejects() {
    let w = Work::new();
    let store = w.example_store();
    let wf = w.copy_example("webform.csv");
    w.ok(&[
        "ingest",
        "webform",
        "--store",
        &store,
        &wf,
        "--rejects",
        &w.p("wr.csv"),
    ]);
    let r = w.read_csv("wr.csv");
    assert_eq!(
        r[0],
        [
            "row",
            "error",
            "account_id",
            "phone",
            "submitted_at",
            "submission_id"
        ]
    );
    assert_eq!(r[1][..2], ["3", "phone is not a possible number"]);
    assert_eq!(r[2][..2], ["4", "unknown account"]);
    assert_eq!(r[3][..2], ["5", "submitted_at is not an RFC 3339 time"]);
    assert_eq!(r.len(), 4);
    let imp = w.copy_example("import.csv");
    let run = w.run(&[
        "ingest",
        "import",
        "--store",
        &store,
        &imp,
        "--account",
        "acme",
        "--account-wide",
    ]);
    assert_eq!(run.code, 0);
    assert!(run.stderr.contains("1 rows rejected (give --rejects FILE to keep them); first: row 4: phone is not a possible number"), "{}", run.stderr);
    let e = w.fails(
        &[
            "ingest",
            "import",
            "--store",
            &store,
            &imp,
            "--account",
            "acme",
            "--senders",
            "+15550000",
        ],
        1,
    );
    assert!(
        e.contains("--senders: '+15550000' is not a sender of account 'acme'"),
        "{e}"
    );
    let e = w.fails(
        &["ingest", "import", "--store", &store, &imp, "--account", "acme"],
        1,
    );
    assert!(e.contains("--senders") && e.contains("--account-wide"), "{e}");
}

#[test]
fn import_row_sender_overrides_mapping_and_account_wide() {
    let w = Work::new();
    let store = w.loaded_store();
    // +447700900003 was imported with its row's sender wa:acme, not the mapping
    let j = w.ok(&[
        "check",
        "--store",
        &store,
        "--account",
        "acme",
        "--sender",
        "+447860009123",
        "+447700900003",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["sendable"], true);
    let j = w.ok(&[
        "check",
        "--store",
        &store,
        "--account",
        "acme",
        "--sender",
        "wa:acme",
        "+447700900003",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["sendable"], false);
    assert_eq!(v["reason"], "sender_opt_out");
    assert_eq!(v["events"][0]["source"], "import");
    assert_eq!(v["events"][0]["at"], "2026-10-02T09:00:00Z");
    let imp = w.write("aw.csv", "phone\n+447700900050\n");
    w.ok(&[
        "ingest",
        "import",
        "--store",
        &store,
        &imp,
        "--account",
        "acme",
        "--account-wide",
    ]);
    let j = w.ok(&[
        "check",
        "--store",
        &store,
        "--account",
        "acme",
        "--sender",
        "name:ACME",
        "+447700900050",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(
        (v["reason"].as_str(), v["scope"].as_str()),
        (Some("account_opt_out"), Some("account"))
    );
}

#[test]
fn check_explains() {
    let w = Work::new();
    let store = w.loaded_store();
    let out = w.ok(&["check", "--store", &store, "--account", "acme", "+44 7700 900001"]);
    assert!(
        out.starts_with("sendable: no (account_opt_out, scope account)"),
        "{out}"
    );
    assert!(
        out.contains("webform") && out.contains("webform:acme:wf-1001"),
        "{out}"
    );
    let j = w.ok(&[
        "check",
        "--store",
        &store,
        "--account",
        "acme",
        "+447700900099",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(
        (
            v["sendable"].as_bool(),
            v["reason"].is_null(),
            v["events"].as_array().map(Vec::len)
        ),
        (Some(true), true, Some(0))
    );
    let j = w.ok(&[
        "check",
        "--store",
        &store,
        "--account",
        "nope",
        "+447700900099",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["reason"], "unknown_account");
    let j = w.ok(&["check", "--store", &store, "--account", "acme", "12", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v["reason"], "invalid_phone");
}

#[test]
fn export_table_and_roaring() {
    let w = Work::new();
    let store = w.loaded_store();
    w.ok(&["export", "--store", &store, "--output", &w.p("e.csv")]);
    let rows = w.read_csv("e.csv");
    assert_eq!(
        rows[0],
        [
            "account_id",
            "scope",
            "phone",
            "opted_out_at",
            "source",
            "keyword"
        ]
    );
    assert_eq!(rows.len(), 6);
    let acct = rows.iter().find(|r| r[0] == "acme" && r[1] == "account").unwrap();
    assert_eq!(acct[2], "+447700900001");
    assert!(acct[3].starts_with("2026-11-01T10:00:00"), "{acct:?}");
    assert_eq!(acct[4], "webform");
    w.ok(&[
        "export",
        "--store",
        &store,
        "--output",
        &w.p("e.parquet"),
        "--account",
        "globex",
    ]);
    let b = w.read_parquet("e.parquet");
    assert_eq!(strings(&b, "phone"), ["+14155550199"]);
    assert_eq!(strings(&b, "source"), ["webform"]);
    w.ok(&[
        "export",
        "--store",
        &store,
        "--output",
        &w.p("roar"),
        "--format",
        "roaring",
    ]);
    let bytes = fs::read(w.path("roar/acme/wa%3Aacme.roaring")).unwrap();
    let bm = roaring::RoaringTreemap::deserialize_from(&bytes[..]).unwrap();
    assert_eq!(bm.iter().collect::<Vec<u64>>(), [447700900003]);
    let index: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(w.path("roar/index.json")).unwrap()).unwrap();
    assert_eq!(index["scopes"].as_array().map(Vec::len), Some(4));
    // re-export replaces the folder
    w.ok(&[
        "export",
        "--store",
        &store,
        "--output",
        &w.p("roar"),
        "--format",
        "roaring",
        "--account",
        "globex",
    ]);
    assert!(!w.path("roar/acme").exists());
}

#[test]
fn stats_counts() {
    let w = Work::new();
    let store = w.loaded_store();
    let out = w.ok(&["stats", "--store", &store, "--summary", &w.p("s.json")]);
    assert!(
        out.contains("total: 5 opt-outs; 5 events in 2 ledger files"),
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(w.path("s.json")).unwrap()).unwrap();
    assert_eq!(v["opt_outs"], 5);
    assert_eq!(v["scopes"].as_array().map(Vec::len), Some(4));
    // the probe file, and the blocks files of the ledger and key runs, are
    // among the files verified
    let probe = fs::metadata(newest(&w, "probe")).unwrap().len();
    assert_eq!(v["probe_bytes"], probe);
    assert!(out.contains(&format!("probe {probe} bytes (")), "{out}");
    assert!(v["verified_files"].as_u64().unwrap() >= 10, "{v}");
}

fn newest(w: &Work, sub: &str) -> std::path::PathBuf {
    fs::read_dir(w.path(&format!("store/{sub}")))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .max()
        .unwrap()
}

/// Flip a bit of a file's byte at `at(its length)`.
fn flip_byte(path: &std::path::Path, at: fn(usize) -> usize) {
    let mut bytes = fs::read(path).unwrap();
    let at = at(bytes.len());
    bytes[at] ^= 1;
    fs::write(path, &bytes).unwrap();
}

fn scrub_args<'a>(store: &'a str, input: &'a str, out: &'a str) -> [&'a str; 7] {
    ["scrub", "--store", store, "--input", input, "--output", out]
}

/// The probe file is what a scrub reads: damaged, it stops the scrub
/// (no output appears) until `rebuild`.
#[test]
fn damaged_probe_stops_scrub_until_rebuild() {
    let w = Work::new();
    let store = w.loaded_store();
    let input = w.copy_example("campaigns/spring-sale.csv");
    let out = w.p("k.csv");
    // a byte of the table (the header, at the end, is most of a small
    // probe)
    flip_byte(&newest(&w, "probe"), |_| 5);
    let e = w.fails(&scrub_args(&store, &input, &out), 2);
    assert!(
        e.contains("probe/") && e.contains("is damaged (block 0 checksum mismatch); run `optscrub rebuild"),
        "{e}"
    );
    assert!(!w.path("k.csv").exists());
    w.ok(&["rebuild", "--store", &store]);
    w.ok(&scrub_args(&store, &input, &out));
    assert_eq!(w.read_csv("k.csv").len(), 5);
    fs::remove_file(newest(&w, "probe")).unwrap();
    let e = w.fails(&scrub_args(&store, &input, &out), 2);
    assert!(
        e.contains("probe/") && e.contains("is damaged (cannot read: "),
        "{e}"
    );
}

/// The snapshot is what an ingest and `stats` read: damaged, it stops
/// them until `rebuild`.
#[test]
fn damaged_snapshot_stops_ingest_until_rebuild() {
    let w = Work::new();
    let store = w.loaded_store();
    let replies = w.copy_example("replies.csv");
    flip_byte(&newest(&w, "snapshot"), |len| len / 2);
    let e = w.fails(&["ingest", "replies", "--store", &store, &replies], 2);
    assert!(
        e.contains("is damaged (checksum mismatch); run `optscrub rebuild"),
        "{e}"
    );
    w.fails(&["stats", "--store", &store], 2);
    w.ok(&["rebuild", "--store", &store]);
    w.ok(&["ingest", "replies", "--store", &store, &replies]);
    fs::remove_file(newest(&w, "snapshot")).unwrap();
    let e = w.fails(&["stats", "--store", &store], 2);
    assert!(
        e.contains("snapshot/") && e.contains("is damaged (cannot read: "),
        "{e}"
    );
}

#[test]
fn damaged_ledger_and_manifest_are_refused() {
    let w = Work::new();
    let store = w.loaded_store();
    let ledger = fs::read_dir(w.path("store/ledger"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .min()
        .unwrap();
    let bytes = fs::read(&ledger).unwrap();
    fs::write(&ledger, &bytes[..bytes.len() - 10]).unwrap();
    let e = w.fails(&["rebuild", "--store", &store], 2);
    assert!(
        e.contains("ledger/") && e.contains("is damaged (wrong size); restore it from a backup"),
        "{e}"
    );
    let m = w.path("store/MANIFEST");
    let text = fs::read_to_string(&m)
        .unwrap()
        .replacen("\"generation\": ", "\"generation\": 1", 1);
    fs::write(&m, text).unwrap();
    let e = w.fails(&["stats", "--store", &store], 2);
    assert!(e.contains("MANIFEST is damaged (checksum mismatch)"), "{e}");
}

#[test]
fn a_second_writer_fails_clearly_while_readers_go_on() {
    let w = Work::new();
    let store = w.loaded_store();
    let lock = fs::File::options()
        .write(true)
        .open(w.path("store/LOCK"))
        .unwrap();
    lock.lock().unwrap();
    let wf = w.p("webform.csv");
    let e = w.fails(&["ingest", "webform", "--store", &store, &wf], 2);
    assert!(e.contains("is locked by another optscrub command"), "{e}");
    let input = w.copy_example("campaigns/spring-sale.csv");
    w.ok(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &input,
        "--output",
        &w.p("k.csv"),
    ]);
    drop(lock);
    w.ok(&["ingest", "webform", "--store", &store, &wf]);
}

#[test]
fn an_export_of_scopes_of_many_opt_outs_holds_each_once() {
    // the export reads its records a chunk at a time: scopes of thousands
    // of opt-outs cross chunks, and each opt-out is exported once, in
    // order, as the roaring export (the bitmaps themselves) has it
    let w = Work::new();
    w.ok(&[
        "gen",
        "--out",
        &w.p("g"),
        "--seed",
        "3",
        "--recipients",
        "40000",
        "--opt-outs",
        "40000",
        "--accounts",
        "1",
        "--senders-per-account",
        "1",
        "--campaigns",
        "1",
    ]);
    let store = w.p("store");
    w.ok(&["init", "--store", &store, "--config", &w.p("g/config.toml")]);
    w.ok(&[
        "ingest",
        "import",
        "--store",
        &store,
        &w.p("g/imports/acct00.parquet"),
        "--account",
        "acct00",
        "--account-wide",
    ]);
    w.ok(&["export", "--store", &store, "--output", &w.p("e.csv")]);
    w.ok(&[
        "export",
        "--store",
        &store,
        "--output",
        &w.p("roar"),
        "--format",
        "roaring",
    ]);
    let rows = w.read_csv("e.csv");
    let index: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(w.path("roar/index.json")).unwrap()).unwrap();
    let mut total = 0;
    for s in index["scopes"].as_array().unwrap() {
        let (account, scope) = (s["account_id"].as_str().unwrap(), s["scope"].as_str().unwrap());
        let file = s["file"].as_str().unwrap();
        let bytes = fs::read(w.path(&format!("roar/{file}"))).unwrap();
        let bm = roaring::RoaringTreemap::deserialize_from(&bytes[..]).unwrap();
        let want: Vec<String> = bm.iter().map(|c| format!("+{c}")).collect();
        let got: Vec<String> = rows[1..]
            .iter()
            .filter(|r| r[0] == account && r[1] == scope)
            .map(|r| r[2].clone())
            .collect();
        assert_eq!(got, want, "{account} {scope}");
        total += want.len();
    }
    assert!(total > 3 * 4096, "{total} opt-outs: too few to cross chunks");
    assert_eq!(rows.len() - 1, total);
}
