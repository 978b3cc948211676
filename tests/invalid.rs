//! The config fixtures of `datasets/invalid/` fail with their exact
//! message and exit status; missing files are named. (The data-file
//! fixtures are covered, kind by kind, in `tests/hostile.rs`.)

use crate::common;

use common::Work;

const CONFIG_CASES: &[(&str, &str)] = &[
    ("config_sender_in_two_accounts.toml", "sender +447860009123 is in two accounts: 'a' and 'b'"),
    ("config_duplicate_free_keyword.toml", "accounts 'a' and 'b' have the same free_keyword 'SZWBHstop' (free keywords must differ, ignoring case)"),
    ("config_keyword_in_two_classes.toml", "account 'a', sender +447860009123: keyword 'END' is both an opt-out and an opt-in keyword"),
    ("config_unknown_match.toml", "line 3, column 9: unknown variant `fuzzy`, expected one of `exact`, `leading`, `contains`"),
    ("config_unknown_pack.toml", "line 5, column 12: unknown variant `fr`, expected one of `us-fcc`, `ca`, `es`, `pt`"),
    ("config_not_toml.toml", "line 1, column 12: unclosed array table, expected `]`"),
    ("config_unknown_field.toml", "line 5, column 3: unknown field `acount_level`, expected one of `id`, `keywords`, `packs`, `account_level`, `reply`, `resubscribe_reply`"),
    ("config_bad_sender_id.toml", "line 4: account 'a': sender id 'acme' is not an SMS number (+ and its country code), wa:<profile>, name:<text> or short:<digits>"),
    ("config_national_sender_id.toml", "line 6: account 'a': sender id '0612345678' looks like a national number; write it in international form, + and its country code (+33612345678, not 0612345678)"),
    ("config_bare_short_code.toml", "line 4: account 'a': sender id '12345' is not a possible international number; write a short code as short:12345, and a phone number with + and its country code"),
    ("config_impossible_shared_number.toml", "line 2: shared number '+447000' is not a possible phone number for international dialling; a short code is written short:<digits>"),
];

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
