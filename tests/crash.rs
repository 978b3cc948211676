//! Crash safety (SPEC §4): `kill -9` at random moments of every writing
//! command leaves the store as it was before the command or as it is after
//! it. After each kill the store opens, its state agrees with a rebuild
//! from its own ledger, and re-running the command completes. Replies to
//! send are handed over exactly once: the outboxes of the killed runs, the
//! re-run and a final `optscrub outbox` hold together each reply of an
//! unbroken run once.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{copy_dir, Work};

/// Stands for the file of numbers to erase in a step.
const ERASE: &str = "ERASE";

/// Kills per command.
const KILLS: usize = 10;

/// What a reader sees of a store: the suppression list and the config.
fn fingerprint(w: &Work, store: &str) -> (Vec<u8>, String) {
    let out = w.p("fp.csv");
    w.ok(&["export", "--store", store, "--output", &out]);
    let list = fs::read(&out).unwrap();
    let text = fs::read_to_string(Path::new(store).join("MANIFEST")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(text.rsplit_once("\ncrc32 ").unwrap().0).unwrap();
    let config = manifest["config"]["file"].as_str().unwrap();
    (list, fs::read_to_string(Path::new(store).join(config)).unwrap())
}

/// The `in_reply_to` of every row of an outbox file.
fn in_reply_to(path: &Path) -> Vec<String> {
    let f = fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    reader
        .flat_map(|b| common::strings(&b.unwrap(), "in_reply_to"))
        .collect()
}

/// A tiny deterministic generator (no dependency on the code under test).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

#[test]
fn kill_9_at_any_moment_leaves_before_or_after() {
    let w = Work::new();
    let data = w.p("data");
    w.ok(&[
        "gen",
        "--out",
        &data,
        "--seed",
        "7",
        "--recipients",
        "100",
        "--opt-outs",
        "100",
        "--replies",
        "15000",
        "--webforms",
        "8000",
    ]);
    let config = format!("{data}/config.toml");
    let config2 = w.p("config2.toml");
    fs::write(
        &config2,
        fs::read_to_string(&config).unwrap() + "\n# second version\n",
    )
    .unwrap();
    let store = w.p("store");
    w.ok(&["init", "--store", &store, "--config", &config]);
    // each run hands its replies over to a file of its own
    let outbox = "OUTBOX";
    // numbers to erase, picked from the store's list when that step comes
    let erase_list = w.p("erase.txt");
    let replies = format!("{data}/replies");
    let webform = format!("{data}/webform");
    let steps: Vec<Vec<&str>> = vec![
        vec!["ingest", "webform", "--store", &store, &webform],
        vec![
            "ingest", "replies", "--store", &store, &replies, "--outbox", &outbox,
        ],
        vec!["config", "--store", &store, "--config", &config2],
        vec!["rebuild", "--store", &store],
        vec!["erase", "--store", &store, "--file", ERASE],
    ];
    let bin = env!("CARGO_BIN_EXE_optscrub");
    let mut rng = Lcg(0x5eed);
    let mut outcomes = [0usize; 2];
    let mut runs = 0;
    let mut next_args = |step: &[&str]| -> Vec<String> {
        runs += 1;
        step.iter()
            .map(|a| {
                if *a == outbox {
                    w.p(&format!("outboxes/{runs:03}.parquet"))
                } else if *a == ERASE {
                    erase_list.clone()
                } else {
                    a.to_string()
                }
            })
            .collect()
    };
    fs::create_dir_all(w.path("outboxes")).unwrap();
    for step in &steps {
        let before = fingerprint(&w, &store);
        if step[0] == "erase" {
            // three opted-out numbers, from the export `fingerprint` wrote
            let listed = common::read_csv(&w.path("fp.csv"));
            let phones: Vec<&str> = listed[1..4].iter().map(|r| r[2].as_str()).collect();
            fs::write(&erase_list, phones.join("\n") + "\n").unwrap();
        }
        // how long the command takes, on a copy
        let probe = w.path("probe");
        let _ = fs::remove_dir_all(&probe);
        copy_dir(Path::new(&store), &probe);
        let probe_args: Vec<String> = step
            .iter()
            .map(|a| {
                if *a == store {
                    probe.to_string_lossy().into_owned()
                } else if *a == outbox {
                    w.p("probe-outbox.parquet")
                } else if *a == ERASE {
                    erase_list.clone()
                } else {
                    a.to_string()
                }
            })
            .collect();
        let t0 = Instant::now();
        let st = Command::new(bin)
            .args(&probe_args)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "{step:?} fails on a copy");
        let took = t0.elapsed().as_micros() as u64;
        let after = fingerprint(&w, &probe.to_string_lossy());
        if step[0] == "erase" {
            assert_ne!(before, after, "the erase changed nothing");
        }

        for _ in 0..KILLS {
            let mut child = Command::new(bin)
                .args(next_args(step))
                .env("OPTSCRUB_LOCK_WAIT", "0")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_micros(rng.below(took * 5 / 4)));
            let _ = child.kill();
            let _ = child.wait();
            let now = fingerprint(&w, &store);
            assert!(
                now == before || now == after,
                "{step:?}: killed, the store is neither before nor after"
            );
            outcomes[usize::from(now == after && now != before)] += 1;
            // the state agrees with a rebuild from the store's own ledger
            let check = w.path("check");
            let _ = fs::remove_dir_all(&check);
            copy_dir(Path::new(&store), &check);
            let check = check.to_string_lossy().into_owned();
            w.ok(&["rebuild", "--store", &check]);
            assert_eq!(
                fingerprint(&w, &check),
                now,
                "{step:?}: state and ledger disagree after a kill"
            );
            w.ok(&["stats", "--store", &store]);
        }
        // re-running completes and gives the same store as an unbroken run
        let again = next_args(step);
        w.ok(&again.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(
            fingerprint(&w, &store),
            after,
            "{step:?}: re-run after kills differs"
        );
        if step.contains(&outbox) {
            w.ok(&[
                "outbox",
                "--store",
                &store,
                "--output",
                &w.p("outboxes/final.parquet"),
            ]);
            let mut handed = Vec::new();
            for f in fs::read_dir(w.path("outboxes")).unwrap().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.ends_with(".parquet") && !name.starts_with('.') {
                    handed.extend(in_reply_to(&f.path()));
                }
            }
            handed.sort();
            let mut expected = in_reply_to(&w.path("probe-outbox.parquet"));
            expected.sort();
            assert!(!expected.is_empty());
            assert_eq!(handed, expected, "each reply is handed over exactly once");
        }
        w.ok(&["stats", "--store", &store]);
    }
    eprintln!(
        "kills that left the store before: {}, after: {}",
        outcomes[0], outcomes[1]
    );
}
