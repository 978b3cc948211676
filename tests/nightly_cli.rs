//! Black-box tests of `nightly` and `demo`.

use crate::common;

use common::Work;

fn summary(w: &Work, rel: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(w.path(rel)).unwrap()).unwrap()
}

#[test]
fn demo_runs_with_nothing_to_prepare() {
    let w = Work::new();
    let out = w.ok(&["demo", "--out", &w.p("d")]);
    assert!(out.contains("spring-sale        13      4          9"), "{out}");
    assert!(out.contains("renewals            8      4          4"), "{out}");
    for f in [
        "spring-sale.parquet",
        "spring-sale.suppressed.parquet",
        "renewals.parquet",
        "outbox.parquet",
        "review.parquet",
        "replies.rejects.parquet",
        "webform.rejects.parquet",
        "summary.json",
    ] {
        assert!(w.path("d/out").join(f).exists(), "{f} missing");
    }
    let s = summary(&w, "d/out/summary.json");
    let by = &s["replies"]["new_by_source_and_scope"];
    assert_eq!(by["opt_out"]["keyword"]["sender"], 6);
    assert_eq!(by["opt_out"]["keyword"]["account"], 1);
    assert_eq!(by["opt_out"]["free_keyword"]["account"], 1);
    assert_eq!(by["opt_in"]["keyword"]["sender"], 2);
    assert_eq!(
        s["webform"]["new_by_source_and_scope"]["opt_out"]["webform"]["account"],
        2
    );
    let kept = common::read_parquet(&w.path("d/out/renewals.parquet"));
    assert_eq!(common::strings(&kept, "customer_id"), ["r1", "r5", "r6", "r8"]);
    let e = w.fails(&["demo", "--out", &w.p("d")], 1);
    assert!(e.contains("is not empty"), "{e}");
}

#[test]
fn nightly_twice_is_safe_and_accounts_for_every_row() {
    let w = Work::new();
    w.ok(&[
        "gen",
        "--out",
        &w.p("g"),
        "--seed",
        "3",
        "--recipients",
        "3000",
        "--opt-outs",
        "500",
        "--replies",
        "2000",
        "--accounts",
        "3",
        "--senders-per-account",
        "4",
        "--campaigns",
        "2",
    ]);
    let store = w.p("store");
    w.ok(&["init", "--store", &store, "--config", &w.p("g/config.toml")]);
    let args = [
        "nightly",
        "--store",
        &store,
        "--replies",
        &w.p("g/replies"),
        "--campaigns",
        &w.p("g/campaigns"),
    ];
    let mut first = args.to_vec();
    let out1 = w.p("out1");
    first.extend(["--out", &out1]);
    w.ok(&first);
    let s = summary(&w, "out1/summary.json");
    for c in s["campaigns"].as_array().unwrap() {
        let reasons: u64 = c["reasons"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(
            c["kept"].as_u64().unwrap() + reasons,
            c["rows_in"].as_u64().unwrap()
        );
        assert_eq!(
            c["kept"].as_u64().unwrap() + c["suppressed"].as_u64().unwrap(),
            1500
        );
    }
    assert!(s["replies"]["outbox"].as_u64().unwrap() > 0);
    let generation = s["store_generation"].clone();
    let mut second = args.to_vec();
    let out2 = w.p("out2");
    second.extend(["--out", &out2]);
    w.ok(&second);
    let s2 = summary(&w, "out2/summary.json");
    assert_eq!(s2["replies"]["outbox"], 0);
    assert_eq!(s2["replies"]["new_opt_outs"], 0);
    assert_eq!(s2["store_generation"], generation);
    // the same night again scrubs to the same results
    let counts = |v: &serde_json::Value| -> Vec<String> {
        v["campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| format!("{} {} {} {}", c["name"], c["rows_in"], c["kept"], c["reasons"]))
            .collect()
    };
    assert_eq!(counts(&s2), counts(&s));
}

#[test]
fn gen_is_deterministic() {
    let w = Work::new();
    for d in ["a", "b"] {
        w.ok(&[
            "gen",
            "--out",
            &w.p(d),
            "--seed",
            "11",
            "--recipients",
            "2000",
            "--opt-outs",
            "300",
            "--replies",
            "500",
        ]);
    }
    for f in [
        "config.toml",
        "campaigns/campaign-00.parquet",
        "imports/acct00.parquet",
        "replies/replies-00.parquet",
    ] {
        assert_eq!(
            std::fs::read(w.path("a").join(f)).unwrap(),
            std::fs::read(w.path("b").join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn report_is_self_contained_and_renders() {
    let w = Work::new();
    w.ok(&["demo", "--out", &w.p("d")]);
    let html = std::fs::read_to_string(w.path("d/out/report.html")).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    for needle in [
        "spring-sale",
        "renewals",
        "sender_opt_out",
        "<svg",
        "3 replies wait in",
    ] {
        assert!(html.contains(needle), "report lacks {needle}");
    }
    // nothing fetched: no scripts, no external links or images
    for banned in ["<script", "http://", "https://", "src="] {
        assert!(!html.contains(banned), "report has {banned}");
    }
    // render it in a real headless browser when one is installed (.ci/run installs Debian's chromium)
    let Ok(chromium) = which("chromium") else {
        eprintln!("chromium not installed: render check skipped");
        return;
    };
    let png = w.path("report.png");
    let status = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", w.p("chr")),
            "--window-size=1000,1000",
            &format!("--screenshot={}", png.display()),
            &format!("file://{}", w.p("d/out/report.html")),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "no real screenshot"
    );
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn plan_measures_fits_and_projects() {
    let w = Work::new();
    let out = w.ok(&[
        "plan",
        "--recipients",
        "1000000",
        "--opt-outs",
        "50000",
        "--senders",
        "20",
        "--max-rows",
        "8000",
        "--max-opt-outs",
        "2000",
        "--work",
        &w.p("work"),
        "--summary",
        &w.p("plan.json"),
    ]);
    assert!(
        out.starts_with("projected scrub of 1000000 rows against 50000 opt-outs over 20 senders: "),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("plan.json")).unwrap()).unwrap();
    let points = v["points"].as_array().unwrap();
    let rows: Vec<u64> = points.iter().map(|p| p["rows"].as_u64().unwrap()).collect();
    let opts: Vec<u64> = points.iter().map(|p| p["opt_outs"].as_u64().unwrap()).collect();
    assert_eq!(rows, [2000, 4000, 8000, 8000, 8000]);
    assert_eq!(opts, [2000, 2000, 2000, 500, 1000]);
    for p in points {
        assert!(p["seconds"].as_f64().unwrap() > 0.0);
        assert!(p["peak_rss_bytes"].as_u64().unwrap() > 1 << 20);
    }
    assert!(v["projected"]["seconds"].as_f64().unwrap() > 0.0);
    assert!(v["projected"]["peak_rss_bytes"].as_u64().unwrap() > 1 << 20);
    assert!(v["fit"]["seconds"]["per_row"].is_f64());
    // the scaled-down data is cleaned up as it goes
    assert_eq!(std::fs::read_dir(w.path("work")).unwrap().count(), 0);
    // and nonsense is refused
    w.fails(&["plan", "--recipients", "0", "--opt-outs", "1"], 1);
}

/// A recipient list of `n` rows in the demo's shape, some of them opted out.
fn recipients_csv(w: &Work, rel: &str, n: usize) -> String {
    let mut text = String::from("customer_id,phone,account_id,sender,segment\n");
    for i in 0..n {
        text.push_str(&format!(
            "c{i},+4477009{:05},acme,+447860009123,s{}\n",
            i % 100_000,
            i % 7
        ));
    }
    w.write(rel, &text)
}

#[test]
fn plan_measures_the_users_own_file_as_written() {
    let w = Work::new();
    let store = w.loaded_store();
    let csv = recipients_csv(&w, "list.csv", 6000);
    let parquet = w.path("list.parquet");
    common::csv_to_parquet_grouped(std::path::Path::new(&csv), &parquet, &[], Some(1000));
    let out = w.ok(&[
        "plan",
        "--recipients",
        "2000000",
        "--max-rows",
        "4000",
        "--input",
        &w.p("list.parquet"),
        "--store",
        &store,
        "--work",
        &w.p("work"),
        "--summary",
        &w.p("plan.json"),
    ]);
    assert!(
        out.starts_with("projected scrub of 2000000 rows against "),
        "{out}"
    );
    assert!(!out.contains("senders"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("plan.json")).unwrap()).unwrap();
    assert_eq!(v["modelled"]["data"], "input");
    let writer = v["modelled"]["writer"].as_str().unwrap();
    assert!(
        writer.contains("6000 rows in 6 row groups of about 1000 rows"),
        "{writer}"
    );
    let notes: Vec<&str> = v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(notes[0].contains("as written"), "{notes:?}");
    // samples of whole row groups: 1000, 2000 and 4000 rows
    let rows: Vec<u64> = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rows"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [1000, 2000, 4000]);
    assert!(v["projected"]["seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(std::fs::read_dir(w.path("work")).unwrap().count(), 0);

    // a CSV is sampled by its first records
    w.ok(&[
        "plan",
        "--recipients",
        "100000",
        "--max-rows",
        "4000",
        "--input",
        &csv,
        "--store",
        &store,
        "--summary",
        &w.p("plan-csv.json"),
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("plan-csv.json")).unwrap()).unwrap();
    assert_eq!(v["modelled"]["writer"], "CSV");
    let rows: Vec<u64> = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rows"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [1000, 2000, 4000]);

    // --input needs the store it is scrubbed against, and a readable file
    let e = w.fails(&["plan", "--recipients", "10", "--input", &csv], 1);
    assert!(e.contains("--store"), "{e}");
    let bad = w.write("bad.parquet", "PAR1 not really");
    let e = w.fails(
        &["plan", "--recipients", "10", "--input", &bad, "--store", &store],
        1,
    );
    assert!(e.contains("bad.parquet"), "{e}");
}

#[test]
fn nightly_ingests_provider_signals_and_deactivations_before_scrubbing() {
    let w = Work::new();
    let store = w.loaded_store();
    let campaigns = w.path("campaigns");
    std::fs::create_dir(&campaigns).unwrap();
    std::fs::copy(
        common::repo().join("datasets/demo/campaigns/spring-sale.csv"),
        campaigns.join("spring-sale.csv"),
    )
    .unwrap();
    // no provider column: --signals-provider says whose codes they are
    let sends = w.write(
        "sends.csv",
        "message_id,error_code,from,to,sent_at\nSM1,21610,+447860009123,+447700900010,2026-11-01T10:00:00Z\nSM2,21610,+447860009123,+447700900011,nope\n",
    );
    let gone = w.write(
        "gone.csv",
        "phone,deactivated_at\n+447700900012,2026-11-01T00:00:00Z\n",
    );
    let out = w.p("out");
    let args = [
        "nightly",
        "--store",
        &store,
        "--signals",
        &sends,
        "--signals-provider",
        "twilio",
        "--deactivations",
        &gone,
        "--campaigns",
        &w.p("campaigns"),
        "--out",
        &out,
    ];
    w.ok(&args);
    let s = summary(&w, "out/summary.json");
    assert_eq!(s["signals"]["new_events"], 1, "{s}");
    assert_eq!(s["signals"]["rejected"], 1, "{s}");
    assert_eq!(s["deactivations"]["new_events"], 2, "{s}");
    assert!(w.path("out/signals.rejects.parquet").exists());
    let gone = w.read_parquet("out/spring-sale.suppressed.parquet");
    let phones = common::strings(&gone, "phone");
    let reasons = common::strings(&gone, "reason");
    let reason_of = |p: &str| phones.iter().position(|x| x == p).map(|i| reasons[i].clone());
    assert_eq!(reason_of("+447700900010").as_deref(), Some("sender_opt_out"));
    // --strict counts the signals' rejects too
    let mut strict = args.to_vec();
    strict.push("--strict");
    w.fails(&strict, 1);
    // a send log without the columns fails before anything is committed
    let bad = w.write("bad.csv", "id,code\n1,21610\n");
    let e = w.fails(
        &[
            "nightly",
            "--store",
            &store,
            "--signals",
            &bad,
            "--campaigns",
            &w.p("campaigns"),
            "--out",
            &w.p("out2"),
        ],
        1,
    );
    assert!(e.contains("--code-column"), "{e}");
}
