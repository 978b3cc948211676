//! `optscrub demo [--out DIR]`: the nightly job on the bundled
//! `datasets/demo`, for a first run with nothing to prepare.

use std::path::PathBuf;

use crate::summary::NightlySummary;

use crate::error::{Error, Result};
use crate::ingest::import::{self, ImportColumns, Mapping};
use crate::ingest::{now_micros, Rejects};
use crate::io::input::Dataset;
use crate::nightly::{self, Nightly};
use crate::scrub::Reason;
use crate::store::Store;

/// The demo files, built into the binary so that the demo runs anywhere.
const FILES: &[(&str, &str)] = &[
    ("config.toml", include_str!("../../datasets/demo/config.toml")),
    ("replies.csv", include_str!("../../datasets/demo/replies.csv")),
    ("webform.csv", include_str!("../../datasets/demo/webform.csv")),
    ("import.csv", include_str!("../../datasets/demo/import.csv")),
    (
        "campaigns/spring-sale.csv",
        include_str!("../../datasets/demo/campaigns/spring-sale.csv"),
    ),
    (
        "campaigns/renewals.csv",
        include_str!("../../datasets/demo/campaigns/renewals.csv"),
    ),
];

/// Arguments of `demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder for the demo's inputs, store and outputs (new or empty);
    /// a new temporary folder by default.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Also write the nightly summary (as in out/summary.json) to this file.
    #[arg(long, value_name = "FILE.json")]
    summary: Option<PathBuf>,
}

/// Run the demo.
pub(super) fn run(a: Args) -> Result<()> {
    let dir = match a.out {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("optscrub-demo-{}", std::process::id())),
    };
    if std::fs::read_dir(&dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
    {
        return Err(Error::Usage(format!(
            "{} is not empty; give a new or empty folder with --out",
            dir.display()
        )));
    }
    let input = dir.join("input");
    for (name, text) in FILES {
        let path = input.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("cannot create", parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| Error::io("cannot write", &path, e))?;
    }
    let s = |p: &str| input.join(p).to_string_lossy().into_owned();
    let store_dir = dir.join("store");
    let mut store = Store::init(&store_dir, &input.join("config.toml"))?;
    // the manual import: opt-outs taken by phone for ACME's SMS number
    let account = store
        .config
        .account("acme")
        .cloned()
        .ok_or_else(|| Error::Config("demo: no account acme".into()))?;
    let data = Dataset::open(&[s("import.csv")])?;
    let mut rejects = Rejects::new(None, &data.schema)?;
    let mapping = Mapping::Senders(vec!["+447860009123".into()]);
    let rows = import::read(
        &account,
        &mapping,
        data,
        &ImportColumns::default(),
        now_micros(),
        &mut rejects,
    )?;
    store.ingest_counting(rows)?;
    drop(store);
    let n = Nightly {
        store: store_dir,
        replies: vec![s("replies.csv")],
        webform: vec![s("webform.csv")],
        signals: Vec::new(),
        signals_provider: None,
        deactivations: Vec::new(),
        campaigns: input.join("campaigns"),
        out: dir.join("out"),
        scrub: crate::scrub::run::ScrubJob::new(Vec::new(), PathBuf::new()),
        zone: None,
    };
    let summary = nightly::run(&n)?;
    crate::cmd::write_summary(a.summary.as_deref(), &summary)?;
    print_table(&summary);
    println!("\nEverything is in {}:", dir.display());
    println!("  input/   the demo files (datasets/demo in the repository)");
    println!(
        "  store/   the opt-out store; try: optscrub check --store {} --account acme +447700900021",
        n.store.display()
    );
    println!("  out/     <campaign>.parquet (may be messaged), <campaign>.suppressed.parquet (with reason),");
    println!("           outbox.parquet, review.parquet, *.rejects.parquet, summary.json");
    Ok(())
}

fn print_table(summary: &NightlySummary) {
    let r = summary.replies.clone().unwrap_or_default();
    println!(
        "replies: {} messages -> {} opt-outs, {} opt-ins, {} confirmations to send, {} to review, {} rejected",
        r.messages, r.new_opt_outs, r.new_opt_ins, r.outbox, r.review, r.rejected
    );
    let w = summary.webform.clone().unwrap_or_default();
    println!("webform: {} opt-outs, {} rejected", w.new_events, w.rejected);
    println!();
    print!(
        "{:<14} {:>6} {:>6} {:>10}",
        "campaign", "rows", "kept", "suppressed"
    );
    for reason in Reason::ALL {
        print!(" {:>15}", reason.as_str());
    }
    println!();
    for c in &summary.campaigns {
        print!(
            "{:<14} {:>6} {:>6} {:>10}",
            c.name, c.rows_in, c.kept, c.suppressed
        );
        for reason in Reason::ALL {
            print!(" {:>15}", c.reason(reason.as_str()));
        }
        println!();
    }
}
