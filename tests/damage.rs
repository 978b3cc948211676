//! Damage (SPEC §4): a flipped or cut byte anywhere in any store file is
//! caught. `stats` (which verifies every file) exits 2 naming the file and
//! what to do; scrub, check and export either exit 2 or give exactly the
//! answer of the sound store, never a different one; `rebuild` repairs
//! what is derived (state, ids, snapshot, probe, blocks files) and refuses a damaged ledger,
//! config or manifest, naming it.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{copy_dir, Work};

fn store_files(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            store_files(&p, base, out);
        } else if e.file_name() != "LOCK" {
            out.push(p.strip_prefix(base).unwrap().to_path_buf());
        }
    }
}

/// The answers readers give: scrub's two outputs, check's JSON, export.
fn answers(w: &Work, store: &str, input: &str) -> Vec<Result<Vec<u8>, String>> {
    let runs: Vec<(Vec<String>, Option<String>)> = vec![
        (
            [
                "scrub",
                "--store",
                store,
                "--input",
                input,
                "--output",
                &w.p("k.csv"),
                "--suppressed",
                &w.p("s.csv"),
            ]
            .map(String::from)
            .to_vec(),
            Some(w.p("s.csv")),
        ),
        (
            [
                "check",
                "--store",
                store,
                "--account",
                "acme",
                "--json",
                "+447700900123",
            ]
            .map(String::from)
            .to_vec(),
            None,
        ),
        (
            ["export", "--store", store, "--output", &w.p("e.csv")]
                .map(String::from)
                .to_vec(),
            Some(w.p("e.csv")),
        ),
    ];
    runs.into_iter()
        .map(|(args, file)| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = w.run(&args);
            match r.code {
                0 => Ok(match file {
                    Some(f) => fs::read(f).unwrap(),
                    None => r.stdout.into_bytes(),
                }),
                2 => Err(r.stderr),
                c => panic!("{args:?} exit {c}: {}", r.stderr),
            }
        })
        .collect()
}

#[test]
fn every_flipped_or_cut_byte_is_caught() {
    let w = Work::new();
    let sound = w.loaded_store();
    let replies = w.copy_example("replies.csv");
    w.ok(&["ingest", "replies", "--store", &sound, &replies]);
    let input = w.copy_example("campaigns/spring-sale.csv");
    let good: Vec<Vec<u8>> = answers(&w, &sound, &input)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut files = Vec::new();
    store_files(Path::new(&sound), Path::new(&sound), &mut files);
    // the files of the current generation (old configs are kept but unused)
    let manifest = fs::read_to_string(Path::new(&sound).join("MANIFEST")).unwrap();
    files.retain(|f| f == Path::new("MANIFEST") || manifest.contains(&*f.to_string_lossy()));
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let mut cases = 0;
    for rel in &files {
        let name = rel.to_string_lossy().into_owned();
        let bytes = fs::read(Path::new(&sound).join(rel)).unwrap();
        let n = bytes.len();
        let damages: Vec<(&str, Vec<u8>)> = vec![
            ("first byte flipped", flip(&bytes, 0)),
            ("middle byte flipped", flip(&bytes, n / 2)),
            ("last byte flipped", flip(&bytes, n - 1)),
            ("last byte cut", bytes[..n - 1].to_vec()),
            ("emptied", Vec::new()),
        ];
        for (what, damaged) in damages {
            cases += 1;
            let case = format!("{name}, {what}");
            let dir = w.path("case");
            let _ = fs::remove_dir_all(&dir);
            copy_dir(Path::new(&sound), &dir);
            fs::write(dir.join(rel), &damaged).unwrap();
            let store = dir.to_string_lossy().into_owned();
            let e = w.fails(&["stats", "--store", &store], 2);
            let shown = if name == "MANIFEST" {
                "MANIFEST is damaged"
            } else {
                name.as_str()
            };
            assert!(e.contains(shown), "{case}: stats does not name the file: {e}");
            assert!(
                e.contains("optscrub rebuild") || e.contains("restore it from a backup"),
                "{case}: no remedy: {e}"
            );
            for (got, want) in answers(&w, &store, &input).into_iter().zip(&good) {
                if let Ok(got) = got {
                    assert!(&got == want, "{case}: a reader gave a different answer");
                }
            }
            let derived = ["index/", "ids/", "snapshot/", "probe/"]
                .iter()
                .any(|p| name.starts_with(p))
                || name.ends_with(".blocks");
            if derived {
                w.ok(&["rebuild", "--store", &store]);
                w.ok(&["stats", "--store", &store]);
                let again: Vec<Vec<u8>> = answers(&w, &store, &input)
                    .into_iter()
                    .map(Result::unwrap)
                    .collect();
                assert_eq!(again, good, "{case}: rebuild did not restore the answers");
            } else {
                let e = w.fails(&["rebuild", "--store", &store], 2);
                assert!(
                    e.contains(shown) && e.contains("restore it from a backup"),
                    "{case}: {e}"
                );
            }
        }
    }
    assert!(cases >= 40);
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at] ^= 0x20;
    v
}
