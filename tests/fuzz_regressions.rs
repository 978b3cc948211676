//! Replays, through every fuzz target's check, each input the fuzzers ever
//! crashed on (`tests/fuzz/regressions/<target>/`) and every file under
//! `datasets/` (the fuzzers' seed corpus).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use optscrub::fuzzing::TARGETS;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn saved_crashes_no_longer_crash() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for (name, check) in TARGETS {
        for f in files(&root.join("tests/fuzz/regressions").join(name)) {
            let data = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "fuzz target {name} panics on {}", f.display());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} saved inputs");
}

#[test]
fn seed_corpus_passes_every_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = files(&root.join("datasets"));
    assert!(seeds.len() > 10, "datasets/ went missing");
    for (name, check) in TARGETS {
        for f in &seeds {
            let data = std::fs::read(f).unwrap();
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "fuzz target {name} panics on {}", f.display());
            // and line by line, the unit the phone and keyword targets see
            for line in data.split(|&b| b == b'\n') {
                let r = std::panic::catch_unwind(|| check(line));
                assert!(
                    r.is_ok(),
                    "fuzz target {name} panics on a line of {}",
                    f.display()
                );
            }
        }
    }
}

/// The error reading a saved Parquet input gives (at open, or at its
/// first batch), named as `crafted.parquet`.
fn refusal(file: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(root.join("tests/fuzz/regressions/parquet").join(file)).unwrap();
    let err = match optscrub::io::input::Dataset::from_bytes("crafted.parquet", data, true, 1024) {
        Err(e) => e,
        Ok(mut ds) => match ds.next() {
            Some(Err(e)) => e,
            _ => panic!("{file} was read"),
        },
    };
    err.to_string()
}

/// Found by the parquet target: a dictionary page header that claims two
/// billion values made the parquet crate reserve 8 GB before reading them
/// (an abort where the machine cannot give it). It is now refused first.
#[test]
fn dictionary_page_claiming_billions_of_values_is_refused() {
    let err = refusal("dictionary-page-8gb.parquet");
    let want = "crafted.parquet: row group 0, column 'account_id': its dictionary page claims";
    assert!(err.contains(want), "{err}");
}

/// Found by the parquet target: a footer whose schema element claims 789
/// million children made the parquet crate reserve 6 GB while decoding the
/// footer. The footer's encoding is walked first and the lie refused.
#[test]
fn footer_claiming_millions_of_children_is_refused() {
    let err = refusal("footer-children-6gb.parquet");
    let want = "crafted.parquet: not a readable Parquet file (its footer is damaged: a schema element claims 789405693 children";
    assert!(err.contains(want), "{err}");
}

/// Found by the parquet target: a page header whose statistics claim a
/// list of booleans far longer than the header kept the parquet crate's
/// header reader looping for minutes. Page headers are walked first.
#[test]
fn page_header_claiming_an_endless_list_is_refused() {
    let err = refusal("page-header-endless-list.parquet");
    let want = "crafted.parquet: row group 0, column 'account_id': a page header is damaged (a list claims";
    assert!(err.contains(want), "{err}");
}

/// Found by the parquet target: a mangled footer makes a column chunk end
/// inside a page header that claims a list of 205 million doubles. The
/// parquet crate reads the header on past the chunk, skips each double past
/// the end of the file without noticing, and took over a minute to fail.
/// The walk now reads a header as far as the file goes, as the crate does.
#[test]
fn page_header_running_past_its_chunk_is_refused() {
    let err = refusal("page-header-past-chunk.parquet");
    let want = "crafted.parquet: row group 0, column 'customer_id': a page header is damaged (a list claims 205110761 items";
    assert!(err.contains(want), "{err}");
}
