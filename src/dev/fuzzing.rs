//! The checks behind the fuzz targets in `tests/fuzz/`, kept in the library
//! so that `tests/fuzz_regressions.rs` replays every saved crashing input
//! through exactly the same code on every `cargo test`.
//!
//! Each function takes arbitrary bytes, must never panic, and asserts the
//! invariants that hold for every input.

use crate::config::{Config, MatchMode};
use crate::io::input::Dataset;
use crate::matcher::{Class, Matcher, Words};
use crate::phone::{self, DefaultCountry};
use crate::store::snapshot::Snapshot;

/// One fuzz check: arbitrary bytes in, a panic on a broken invariant.
pub type Check = fn(&[u8]);

/// The fuzz targets, by name (the file names of `tests/fuzz/fuzz_targets/`
/// and the folders of `tests/fuzz/regressions/`).
pub const TARGETS: &[(&str, Check)] = &[
    ("phone", phone),
    ("keywords", keywords),
    ("config", config),
    ("csv", csv),
    ("parquet", parquet),
    ("snapshot", snapshot),
];

/// Under libFuzzer every panic aborts; route panics through optscrub's hook
/// so that those its own code catches (around the Parquet reader) do not.
fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(crate::error::install_panic_hook);
}

/// Phone normalization: a number that normalizes prints as `+digits` that
/// normalize to the same number, with or without a default country.
pub fn phone(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    for country in [None, DefaultCountry::parse("GB"), DefaultCountry::parse("US")] {
        if let Some(v) = phone::normalize(raw, country) {
            let e164 = phone::format_e164(v);
            assert_eq!(phone::normalize(&e164, None), Some(v), "E.164 does not read back");
        }
    }
    if let Some(s) = phone::normalize_sender(raw) {
        assert_eq!(
            phone::normalize_sender(&s).as_deref(),
            Some(s.as_str()),
            "sender not stable"
        );
    }
}

const KEYWORD_CONFIG: &str = r#"
[[accounts]]
id = "a"
free_keyword = "szWbhSTOP"
opt_in_keywords = ["UNSTOP"]
help_keywords = ["INFO"]
  [[accounts.senders]]
  id = "+447860009123"
  keywords = ["END", "CANCEL", "opt out please"]
  packs = ["us-fcc", "ca", "es", "pt"]
"#;

/// Body normalization and keyword matching: never panics, and a keyword
/// found under `exact` is also found under `leading`, and under `leading`
/// also under `contains`.
pub fn keywords(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    static MATCHER: std::sync::OnceLock<Option<Matcher>> = std::sync::OnceLock::new();
    let Some(m) = MATCHER.get_or_init(|| Config::parse(KEYWORD_CONFIG).ok().map(|c| Matcher::new(&c))) else {
        panic!("the fuzz config does not parse");
    };
    let table = &m.senders[0][0];
    let mut w = Words::default();
    w.cut(body);
    let exact = w.best(table, MatchMode::Exact).map(|k| k.class);
    let leading = w.best(table, MatchMode::Leading).map(|k| k.class);
    let contains = w.best(table, MatchMode::Contains).map(|k| k.class);
    if exact.is_some() {
        assert!(leading.is_some(), "exact matched, leading did not");
    }
    if leading.is_some() {
        assert!(contains.is_some(), "leading matched, contains did not");
    }
    if contains == Some(Class::OptOut) {
        assert!(
            w.any_opt_out(table).is_some(),
            "contains found an opt-out, any_opt_out did not"
        );
    }
    let _ = w.best(&m.shared, MatchMode::Exact);
    let _ = w.any_opt_out(&m.plain);
}

/// Config parsing: any text is accepted or refused with a message; an
/// accepted config builds its keyword tables.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Config::parse(text) {
        let _ = Matcher::new(&c);
    }
}

fn read_all(data: &[u8], parquet: bool) {
    init();
    let Ok(ds) = Dataset::from_bytes("fuzz", data.to_vec(), parquet, 7) else {
        return;
    };
    let columns = ds.schema.fields().len();
    for batch in ds {
        let Ok(batch) = batch else {
            return;
        };
        for i in 0..columns {
            if let Ok(col) = batch.text(i) {
                for v in (0..col.len()).filter_map(|r| col.get(r)) {
                    let _ = phone::normalize(v, None);
                }
            }
        }
    }
}

/// CSV reading: any bytes give batches or an error.
pub fn csv(data: &[u8]) {
    read_all(data, false);
}

/// Parquet reading: any bytes give batches or an error.
pub fn parquet(data: &[u8]) {
    read_all(data, true);
}

/// Snapshot decoding, with a checksum that matches so that the decoder
/// itself is exercised: any bytes give a snapshot or an error.
pub fn snapshot(data: &[u8]) {
    let crc = crc32fast::hash(data);
    let _ = Snapshot::decode(data, crc);
    // and with the inner checksum made right too
    if data.len() >= 16 {
        let mut v = data.to_vec();
        let n = v.len();
        v[..8].copy_from_slice(b"OPTSNAP1");
        let inner = crc32fast::hash(&v[..n - 4]);
        v[n - 4..].copy_from_slice(&inner.to_le_bytes());
        if let Ok(s) = Snapshot::decode(&v, crc32fast::hash(&v)) {
            let _ = s.opt_outs();
        }
    }
}
