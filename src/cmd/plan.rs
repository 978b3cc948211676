//! `optscrub plan --recipients N --opt-outs M [--senders K]`: capacity
//! planning for the nightly window. Runs scaled-down scrubs (each a
//! separate process, so that its peak memory is its own), fits how time and
//! peak memory grow with rows and opt-outs by least squares, and projects
//! both for the target.
//!
//! The scrubs run on generated data, or, with `--input F --store S`, on the
//! user's own file against the user's own store: samples of whole row
//! groups copied from `F` byte for byte (the writer's encodings, codec,
//! page sizes and Arrow types kept), so that the projection is made on the
//! shape the nightly job will read, not on a friendlier one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::de::IgnoredAny;
use serde_json::json;

use crate::cmd::write_summary;
use crate::error::{Error, Result};
use crate::summary::ScrubSummary;

mod fit;
mod sample;

use fit::{Point, Projection};

/// Arguments of `plan`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Recipient rows the nightly scrub will have.
    #[arg(long)]
    recipients: u64,
    /// Opt-outs the store will hold (with --store: what it holds).
    #[arg(long, required_unless_present_any = ["store", "input"])]
    opt_outs: Option<u64>,
    /// Senders over all accounts (10 accounts share them).
    #[arg(long, default_value_t = 100)]
    senders: u32,
    /// Largest scaled-down run, in rows (default: twice the rows a scrub
    /// holds in flight, 2 × threads × 1M, so that memory is measured past
    /// the point where it stops growing with the pipeline).
    #[arg(long)]
    max_rows: Option<u64>,
    /// Largest scaled-down run, in opt-outs (default: the target itself;
    /// a smaller one is extrapolated, and said so).
    #[arg(long)]
    max_opt_outs: Option<u64>,
    /// Measure on this recipient file (Parquet or CSV, or a folder of
    /// Parquet parts) as it was written: samples of its row groups (of a
    /// CSV, its first rows), scrubbed against --store.
    #[arg(long, value_name = "PATH", requires = "store")]
    input: Option<PathBuf>,
    /// The store the --input rows are scrubbed against (only read).
    #[arg(long, value_name = "DIR", requires = "input")]
    store: Option<PathBuf>,
    /// With --input: see `scrub --account`.
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// With --input: see `scrub --sender`.
    #[arg(long, value_name = "ID")]
    sender: Option<String>,
    /// With --input: the scrub flags the nightly job uses (see `scrub`).
    #[command(flatten)]
    scrub: crate::cmd::scrub::ScrubFlags,
    /// Work folder for the generated data or the samples (default: a new
    /// folder in the system's temporary folder; removed afterwards).
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
    /// Also write the points, the fit and the projection as JSON.
    #[arg(long, value_name = "FILE.json")]
    summary: Option<PathBuf>,
}

fn exe() -> Result<PathBuf> {
    std::env::current_exe().map_err(|e| Error::Usage(format!("cannot find the optscrub binary: {e}")))
}

/// Run optscrub with these arguments; its summary JSON.
fn step<T: serde::de::DeserializeOwned>(args: &[&str], summary: &Path) -> Result<T> {
    let out = Command::new(exe()?)
        .args(args)
        .arg("--summary")
        .arg(summary)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::Usage(format!("cannot run optscrub {}: {e}", args[0])))?;
    if !out.status.success() {
        return Err(Error::Input(format!(
            "plan: optscrub {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = std::fs::read_to_string(summary).map_err(|e| Error::io("cannot read", summary, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Input(format!("plan: bad summary from {}: {e}", args[0])))
}

fn measure(work: &Path, rows: u64, opt_outs: u64, senders: u32) -> Result<Point> {
    let dir = work.join(format!("r{rows}-o{opt_outs}"));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    let store = dir.join("store");
    let d = data.to_string_lossy().into_owned();
    let s = store.to_string_lossy().into_owned();
    let sum = dir.join("summary.json");
    let per_account = senders.div_ceil(10).max(1).to_string();
    let (rows_s, opt_s) = (rows.to_string(), opt_outs.to_string());
    step::<IgnoredAny>(
        &[
            "gen",
            "--out",
            &d,
            "--recipients",
            &rows_s,
            "--opt-outs",
            &opt_s,
            "--replies",
            "0",
            "--webforms",
            "0",
            "--phones",
            "e164",
            "--campaigns",
            "1",
            "--senders-per-account",
            &per_account,
        ],
        &sum,
    )?;
    let config = data.join("config.toml").to_string_lossy().into_owned();
    step::<IgnoredAny>(&["init", "--store", &s, "--config", &config], &sum)?;
    for import in crate::dev::gen::Manifest::read(&data)?.imports {
        let file = data.join(&import.file).to_string_lossy().into_owned();
        step::<IgnoredAny>(
            &[
                "ingest",
                "import",
                "--store",
                &s,
                &file,
                "--account",
                &import.account,
                "--account-wide",
            ],
            &sum,
        )?;
    }
    let campaign = std::fs::read_dir(data.join("campaigns"))
        .map_err(|e| Error::io("cannot read", &data.join("campaigns"), e))?
        .flatten()
        .map(|e| e.path())
        .next()
        .ok_or_else(|| Error::Input("plan: gen wrote no campaign".into()))?;
    let point = scrub_point(
        &dir,
        &store,
        &campaign,
        rows,
        opt_outs,
        &["--keep-duplicates".to_string()],
    );
    let _ = std::fs::remove_dir_all(&dir);
    point
}

/// Time one scrub of `input` against `store` (outputs in `dir`).
fn scrub_point(
    dir: &Path,
    store: &Path,
    input: &Path,
    rows: u64,
    opt_outs: u64,
    flags: &[String],
) -> Result<Point> {
    let output = dir.join("kept.parquet").to_string_lossy().into_owned();
    let suppressed = dir.join("suppressed.parquet").to_string_lossy().into_owned();
    let (s, input) = (
        store.to_string_lossy().into_owned(),
        input.to_string_lossy().into_owned(),
    );
    let mut args: Vec<&str> = vec![
        "scrub",
        "--store",
        &s,
        "--input",
        &input,
        "--output",
        &output,
        "--suppressed",
        &suppressed,
    ];
    args.extend(flags.iter().map(String::as_str));
    let start = Instant::now();
    let v: ScrubSummary = step(&args, &dir.join("summary.json"))?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(Point {
        rows: rows as f64,
        opt_outs: opt_outs as f64,
        seconds,
        peak_bytes: v.peak_rss_bytes.unwrap_or(0) as f64,
    })
}

/// What a plan measured: its points, the opt-outs it projects at, the
/// shape of the data it modelled, and what the reader should know.
struct Measured {
    points: Vec<Point>,
    opt_outs: u64,
    modelled: serde_json::Value,
    notes: Vec<String>,
}

fn print_point(p: &Point) {
    eprintln!(
        "plan: {:>10} rows, {:>9} opt-outs: {:>7.2} s, peak {:>6.0} MiB",
        p.rows,
        p.opt_outs,
        p.seconds,
        p.peak_bytes / MIB
    );
}

const MIB: f64 = 1048576.0;

/// The largest sample's rows: past the rows a scrub holds in flight (a
/// unit of up to 1M rows per thread), where its memory stops growing with
/// the pipeline and grows only with what it keeps per row.
fn max_rows(a: &Args) -> u64 {
    a.max_rows
        .unwrap_or_else(|| 2 * rayon::current_num_threads().max(1) as u64 * crate::scrub::run::UNIT_ROWS)
}

/// Scaled-down scrubs of generated data: rows and opt-outs each varied.
fn measure_generated(a: &Args, work: &Path) -> Result<Measured> {
    let target = a.opt_outs.unwrap_or(0);
    let rows = a.recipients.min(max_rows(a));
    let opts = target.min(a.max_opt_outs.unwrap_or(target)).max(4);
    let grid = [
        (rows / 4, opts),
        (rows / 2, opts),
        (rows, opts),
        (rows, opts / 4),
        (rows, opts / 2),
    ];
    let mut points = Vec::new();
    for (r, o) in grid {
        let p = measure(work, r.max(1), o, a.senders)?;
        print_point(&p);
        points.push(p);
    }
    let mut notes = vec![
        "modelled on generated data (optscrub gen: zstd, E.164 phones, its own encodings); a file written by another tool can be slower: give --input FILE --store DIR to measure yours".to_string(),
    ];
    if opts < target {
        notes.push(format!(
            "opt-outs extrapolated linearly from {opts} measured to the target {target} (--max-opt-outs)"
        ));
    }
    Ok(Measured {
        points,
        opt_outs: target,
        modelled: json!({"data": "generated", "max_opt_outs_measured": opts}),
        notes,
    })
}

/// Scaled-down scrubs of the user's own file against the user's store.
fn measure_input(a: &Args, input: &Path, store: &Path, work: &Path) -> Result<Measured> {
    let held: u64 = {
        let st = crate::store::Store::open(store)?;
        let snap = st.snapshot_mapped()?;
        crate::cmd::export::snapshot_scopes(&st, &snap)?
            .iter()
            .map(|s| s.count)
            .sum()
    };
    let rows = a.recipients.min(max_rows(a)).max(1);
    let targets = [rows / 4, rows / 2, rows].map(|t| t.max(1));
    let sample = sample::Sampler::open(input, a.scrub.csv_shape()?)?;
    let mut flags = a.scrub.as_args();
    for (flag, v) in [("--account", &a.account), ("--sender", &a.sender)] {
        if let Some(v) = v {
            flags.extend([flag.to_string(), v.clone()]);
        }
    }
    // each sample at least twice the one before (a file of one row group
    // is measured at one, two and four copies of it); the first is
    // scrubbed once unmeasured, so that no point pays for a cold store
    let mut points: Vec<Point> = Vec::new();
    let mut smallest = 0u64;
    let mut repeated = false;
    for (k, t) in targets.into_iter().enumerate() {
        let t = t.max(smallest << k);
        let dir = work.join(format!("sample-{k}"));
        let _ = std::fs::remove_dir_all(&dir);
        private_dir(&dir)?;
        let measured = sample.write(t, &dir).and_then(|written| {
            let (file, n) = (written.path, written.rows);
            repeated |= written.repeated;
            if k == 0 {
                smallest = n;
                scrub_point(&dir, store, &file, n, held, &flags)?;
            }
            if points.iter().any(|p| p.rows as u64 == n) {
                return Ok(None);
            }
            scrub_point(&dir, store, &file, n, held, &flags).map(Some)
        });
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(p) = measured? {
            print_point(&p);
            points.push(p);
        }
    }
    let mut notes = vec![format!(
        "modelled on {} as written ({}), against the store {} with {held} opt-outs",
        input.display(),
        sample.describe(),
        store.display()
    )];
    if repeated {
        let largest = points.iter().map(|p| p.rows as u64).max().unwrap_or(0);
        notes.push(format!(
            "samples of up to {largest} rows repeat the input's rows (its row groups, records or parts, as written): a repeated row is a duplicate, set aside as one unless --keep-duplicates"
        ));
    }
    if points.len() < 2 {
        notes.push(format!(
            "only one sample size ({} rows): time and memory taken to grow in proportion to rows",
            points.first().map_or(0, |p| p.rows as u64)
        ));
    }
    if a.opt_outs.is_some_and(|m| m != held) {
        notes.push(format!(
            "projected at the {held} opt-outs the store holds, not the --opt-outs {} asked: measure against a store of that size",
            a.opt_outs.unwrap_or(0)
        ));
    }
    Ok(Measured {
        points,
        opt_outs: held,
        modelled: json!({"data": "input", "file": input, "writer": sample.describe(), "store": store, "opt_outs": held}),
        notes,
    })
}

/// A new folder only its owner may enter: a sample is a copy of the
/// user's recipients (phone numbers), and so are the scrub's outputs.
fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("cannot create", dir, e))
}

/// A new private folder in the system's temporary folder (never one that
/// is already there: another user could have made it).
fn temporary_work() -> Result<PathBuf> {
    let base = std::env::temp_dir();
    let mut last = None;
    for attempt in 0..16u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!("optscrub-plan-{}-{nanos:x}{attempt}", std::process::id()));
        match private_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Usage("cannot create a temporary folder".into())))
}

/// Measure, fit, project.
pub(super) fn run(a: Args) -> Result<()> {
    if a.recipients == 0 || a.max_rows.is_some_and(|m| m < 4) || a.max_opt_outs.is_some_and(|m| m < 4) {
        return Err(Error::Usage(
            "--recipients must be at least 1, --max-rows and --max-opt-outs at least 4".into(),
        ));
    }
    let (work, temporary) = match &a.work {
        Some(w) => {
            std::fs::create_dir_all(w).map_err(|e| Error::io("cannot create", w, e))?;
            (w.clone(), false)
        }
        None => (temporary_work()?, true),
    };
    let result = match (&a.input, &a.store) {
        (Some(input), Some(store)) => measure_input(&a, input, store, &work),
        _ => measure_generated(&a, &work),
    };
    if temporary {
        let _ = std::fs::remove_dir_all(&work);
    }
    let Measured {
        points,
        opt_outs,
        modelled,
        notes,
    } = result?;
    let (n, m) = (a.recipients as f64, opt_outs as f64);
    let Projection {
        time,
        mem,
        secs,
        peak,
    } = Projection::of(&points, n, m);
    eprintln!(
        "plan: time ≈ {:.2} s {:+.3} s per million rows {:+.3} s per million opt-outs",
        time.a,
        time.b * 1e6,
        time.c * 1e6
    );
    eprintln!(
        "plan: peak ≈ {:.0} MiB {:+.1} MiB per million rows {:+.1} MiB per million opt-outs",
        mem.a / MIB,
        mem.b * 1e6 / MIB,
        mem.c * 1e6 / MIB
    );
    for note in &notes {
        eprintln!("plan: {note}");
    }
    let over = if a.input.is_some() {
        String::new()
    } else {
        format!(" over {} senders", a.senders)
    };
    println!(
        "projected scrub of {} rows against {opt_outs} opt-outs{over}: {secs:.1} s, peak {:.0} MiB",
        a.recipients,
        peak / MIB
    );
    let pts: Vec<_> = points
        .iter()
        .map(|p| json!({"rows": p.rows as u64, "opt_outs": p.opt_outs as u64, "seconds": p.seconds, "peak_rss_bytes": p.peak_bytes as u64}))
        .collect();
    write_summary(
        a.summary.as_deref(),
        &json!({"command": "plan", "target": {"recipients": a.recipients, "opt_outs": opt_outs, "senders": a.senders},
                "modelled": modelled, "notes": notes,
                "points": pts,
                "fit": {"seconds": {"base": time.a, "per_row": time.b, "per_opt_out": time.c},
                        "peak_rss_bytes": {"base": mem.a, "per_row": mem.b, "per_opt_out": mem.c}},
                "projected": {"seconds": secs, "peak_rss_bytes": peak as u64}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_go_in_folders_only_their_owner_may_enter() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temporary_work().unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // an existing folder is never taken over
        assert!(private_dir(&dir).is_err());
        std::fs::remove_dir(&dir).unwrap();
    }
}
