//! The rough edges a new user hits: files without a header or with another
//! separator, names in another case, times without a zone, and what cron
//! and scripts need (exit statuses, --strict, a closed pipe, completions).

use crate::common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::Work;

#[test]
fn a_csv_without_header_is_said_so_and_no_number_is_echoed() {
    let w = Work::new();
    let store = w.loaded_store();
    let list = w.write(
        "l.csv",
        "+447700900711,acme,+447860009123\n+447700900712,acme,+447860009123\n",
    );
    let e = w.fails(
        &[
            "scrub",
            "--store",
            &store,
            "--input",
            &list,
            "--output",
            &w.p("k.csv"),
        ],
        1,
    );
    assert!(e.contains("seems to have no header row"), "{e}");
    assert!(!e.contains("900711"), "a phone number in an error: {e}");
    // --no-header names the columns by position, and no row is lost
    let r = w.ok_stderr(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &list,
        "--output",
        &w.p("k.csv"),
        "--no-header",
        "--phone-column",
        "1",
        "--account-column",
        "2",
        "--sender-column",
        "3",
    ]);
    assert!(r.contains("2 rows in, 2 kept"), "{r}");
    // an import without a header, separated by ;
    let imp = w.write(
        "i.csv",
        "+447700900713;2026-11-01T00:00:00Z\n+447700900714;2026-11-01T00:00:00Z\n",
    );
    let r = w.ok_stderr(&[
        "ingest",
        "import",
        "--store",
        &store,
        &imp,
        "--account",
        "acme",
        "--account-wide",
        "--no-header",
        "--delimiter",
        ";",
        "--phone-column",
        "1",
        "--time-column",
        "2",
    ]);
    assert!(r.contains("2 opt-outs read"), "{r}");
    let e = w.fails(
        &[
            "ingest",
            "import",
            "--store",
            &store,
            &imp,
            "--account",
            "acme",
            "--account-wide",
            "--delimiter",
            "ab",
        ],
        1,
    );
    assert!(
        e.contains("--delimiter 'ab': expected one ASCII character"),
        "{e}"
    );
}

#[test]
fn semicolon_tab_and_bar_separated_files_and_header_case() {
    let w = Work::new();
    let store = w.loaded_store();
    for (name, sep) in [("semi.csv", ";"), ("tab.csv", "\t"), ("bar.csv", "|")] {
        let text = format!(
            "Phone{sep}Account_ID{sep}sender{sep}note\n+447700900801{sep}acme{sep}+447860009123{sep}a, b\n"
        );
        let list = w.write(name, &text);
        let r = w.ok_stderr(&[
            "scrub",
            "--store",
            &store,
            "--input",
            &list,
            "--output",
            &w.p("k.csv"),
        ]);
        assert!(r.contains("1 rows in, 1 kept"), "{name}: {r}");
        assert_eq!(w.read_csv("k.csv")[1][3], "a, b", "{name}");
    }
    // every missing column at once
    let list = w.write("m.csv", "msisdn;acct\n+447700900801;acme\n");
    let e = w.fails(&["ingest", "webform", "--store", &store, &list], 1);
    assert!(
        e.contains("no columns 'account_id', 'phone', 'submitted_at' (columns: msisdn, acct); name them with --account-column, --phone-column, --time-column"),
        "{e}"
    );
}

#[test]
fn an_id_in_another_case_is_suppressed_and_said() {
    let w = Work::new();
    let store = w.loaded_store();
    let list = w.write(
        "l.csv",
        "phone,account_id,sender\n+447700900801,ACME,+447860009123\n+447700900802,acme,wa:ACME\n",
    );
    let r = w.ok_stderr(&[
        "scrub",
        "--store",
        &store,
        "--input",
        &list,
        "--output",
        &w.p("k.csv"),
        "--suppressed",
        &w.p("s.csv"),
    ]);
    assert!(
        r.contains("'ACME' is not a configured account or sender, but 'acme' is"),
        "{r}"
    );
    assert!(
        r.contains("'wa:ACME' is not a configured account or sender, but 'wa:acme' is"),
        "{r}"
    );
    let reasons: Vec<String> = w
        .read_csv("s.csv")
        .into_iter()
        .skip(1)
        .map(|r| r[3].clone())
        .collect();
    assert_eq!(reasons, ["unknown_account", "unknown_sender"]);
}

#[test]
fn times_without_an_offset_are_read_in_the_given_zone() {
    let w = Work::new();
    let store = w.example_store();
    let wf = w.write(
        "wf.csv",
        "account_id,phone,submitted_at,submission_id\n\
         acme,+447700900901,2026-07-01 09:14:00,a\n\
         acme,+447700900902,2026-07-01T09:14:00+0100,b\n",
    );
    w.ok(&[
        "ingest",
        "webform",
        "--store",
        &store,
        &wf,
        "--timezone",
        "Europe/London",
    ]);
    for phone in ["+447700900901", "+447700900902"] {
        let v: serde_json::Value =
            serde_json::from_str(&w.ok(&["check", "--store", &store, "--account", "acme", phone, "--json"]))
                .unwrap();
        // 09:14 in London in July is 08:14 UTC
        assert_eq!(v["events"][0]["at"], "2026-07-01T08:14:00Z", "{phone}");
    }
    let e = w.fails(
        &[
            "ingest",
            "webform",
            "--store",
            &store,
            &wf,
            "--timezone",
            "Mars/Base",
        ],
        1,
    );
    assert!(
        e.contains("--timezone 'Mars/Base' is not an IANA time zone name"),
        "{e}"
    );
}

#[test]
fn check_answers_in_its_exit_status_and_for_every_account() {
    let w = Work::new();
    let store = w.loaded_store();
    // +447700900001 opted out of acme by webform
    let out = w.run(&["check", "--store", &store, "--exit-status", "+447700900001"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stdout.contains("acme: sendable: no (account_opt_out"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("globex: sendable: yes"), "{}", out.stdout);
    let ok = w.run(&[
        "check",
        "--store",
        &store,
        "--account",
        "globex",
        "--exit-status",
        "+447700900001",
    ]);
    assert_eq!(ok.code, 0);
    // without --exit-status, the answer is in the output only
    w.ok(&["check", "--store", &store, "--account", "acme", "+447700900001"]);
    let json = w.ok(&["check", "--store", &store, "+447700900001", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["sendable"], false);
    assert_eq!(v["accounts"].as_array().unwrap().len(), 2);
    // an unknown account is an answer (fail closed), as in scrub
    let out = w.run(&[
        "check",
        "--store",
        &store,
        "--account",
        "nope",
        "--exit-status",
        "+447700900001",
    ]);
    assert_eq!(out.code, 3);
    assert!(out.stdout.contains("unknown_account"), "{}", out.stdout);
}

#[test]
fn strict_ingests_exit_1_after_writing_their_rejects() {
    let w = Work::new();
    let store = w.example_store();
    let wf = w.write(
        "wf.csv",
        "account_id,phone,submitted_at\nacme,+447700900901,2026-07-01T09:14:00Z\nacme,12,2026-07-01T09:14:00Z\n",
    );
    let e = w.fails(
        &[
            "ingest",
            "webform",
            "--store",
            &store,
            &wf,
            "--strict",
            "--rejects",
            &w.p("r.csv"),
        ],
        1,
    );
    assert!(
        e.contains("webform: 1 rows were rejected, more than --strict allows (0)"),
        "{e}"
    );
    assert_eq!(w.read_csv("r.csv").len(), 2);
    // the good row went in
    let out = w.run(&[
        "check",
        "--store",
        &store,
        "--account",
        "acme",
        "--exit-status",
        "+447700900901",
    ]);
    assert_eq!(out.code, 3);
    w.ok(&["ingest", "webform", "--store", &store, &wf, "--max-rejects", "1"]);
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let w = Work::new();
    let store = w.loaded_store();
    for args in [
        vec!["stats", "--store", &store],
        vec!["completions", "bash"],
        vec!["man"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_optscrub"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let st = child.wait().unwrap();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(st.code().is_some(), "{args:?}: killed by a signal");
    }
    assert!(w.ok(&["completions", "zsh"]).contains("#compdef optscrub"));
    assert!(w.ok(&["man"]).contains(".TH optscrub 1"));
}

#[test]
fn init_warns_about_opt_outs_no_text_confirms() {
    let w = Work::new();
    let config = w.copy_example("config.toml");
    let e = w.ok_stderr(&["init", "--store", &w.p("s"), "--config", &config]);
    assert!(
        e.contains("optscrub: warning: account 'acme', sender wa:acme: no reply text, so its opt-outs (STOP, UNSUBSCRIBE) are not confirmed"),
        "{e}"
    );
    assert!(e.contains("account 'globex': no help_reply"), "{e}");
}

/// Every command's `--help`, as a user reads it, against the copy kept in
/// `tests/golden/help/`: a flag renamed, a default changed or a help text
/// lost shows up as a diff in review. After an intended change, run
/// `OPTSCRUB_REGENERATE=1 cargo test help_is_as_documented` and commit the
/// new copies.
#[test]
fn help_is_as_documented() {
    let commands: [&[&str]; 23] = [
        &[],
        &["init"],
        &["config"],
        &["ingest"],
        &["ingest", "replies"],
        &["ingest", "webform"],
        &["ingest", "import"],
        &["ingest", "signals"],
        &["scrub"],
        &["lint"],
        &["revert"],
        &["erase"],
        &["outbox"],
        &["check"],
        &["export"],
        &["stats"],
        &["rebuild"],
        &["nightly"],
        &["demo"],
        &["gen"],
        &["plan"],
        &["completions"],
        &["man"],
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/help");
    let regenerate = std::env::var_os("OPTSCRUB_REGENERATE").is_some();
    let mut stale = Vec::new();
    for args in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_optscrub"))
            .args(args)
            .arg("--help")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?} --help failed");
        let text = String::from_utf8(out.stdout).unwrap();
        let name = if args.is_empty() {
            "optscrub".to_string()
        } else {
            args.join("-")
        };
        let path = dir.join(format!("{name}.txt"));
        if regenerate {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "--help differs from tests/golden/help/ for {stale:?}; if intended, run OPTSCRUB_REGENERATE=1 cargo test help_is_as_documented"
    );
}
