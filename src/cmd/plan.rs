//! `optscrub plan --recipients N --opt-outs M [--senders K]`: capacity
//! planning for the nightly window. Runs scaled-down scrubs of generated
//! data (each a separate process, so that its peak memory is its own), fits
//! how time and peak memory grow with rows and opt-outs by least squares,
//! and projects both for the target.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::json;

use crate::cmd::write_summary;
use crate::error::{Error, Result};

/// Arguments of `plan`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Recipient rows the nightly scrub will have.
    #[arg(long)]
    recipients: u64,
    /// Opt-outs the store will hold.
    #[arg(long)]
    opt_outs: u64,
    /// Senders over all accounts (10 accounts share them).
    #[arg(long, default_value_t = 100)]
    senders: u32,
    /// Largest scaled-down run, in rows.
    #[arg(long, default_value_t = 1_000_000)]
    max_rows: u64,
    /// Largest scaled-down run, in opt-outs.
    #[arg(long, default_value_t = 200_000)]
    max_opt_outs: u64,
    /// Work folder for the generated data (default: a new folder in the
    /// system's temporary folder, removed afterwards).
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,
    /// Also write the points, the fit and the projection as JSON.
    #[arg(long, value_name = "FILE.json")]
    summary: Option<PathBuf>,
}

/// One measured scrub.
#[derive(Debug, Clone, Copy)]
struct Point {
    rows: f64,
    opt_outs: f64,
    seconds: f64,
    peak_bytes: f64,
}

/// y = a + b·rows + c·opt_outs, by least squares with b, c ≥ 0: neither
/// time nor memory falls as rows or opt-outs grow, so a negative slope is
/// noise (a shared machine, runs of a few milliseconds) and would project
/// a big job as nearly free.
#[derive(Debug, Clone, Copy)]
struct Fit {
    a: f64,
    b: f64,
    c: f64,
}

impl Fit {
    fn of(points: &[Point], y: impl Fn(&Point) -> f64) -> Fit {
        // the non-negative least-squares solution is the best of the
        // unconstrained fits over each subset of the slopes that are feasible
        [(true, true), (true, false), (false, true), (false, false)]
            .into_iter()
            .map(|(rows, opts)| Fit::solve(points, &y, rows, opts))
            .filter(|f| f.b >= 0.0 && f.c >= 0.0)
            .min_by(|f, g| f.sse(points, &y).total_cmp(&g.sse(points, &y)))
            .unwrap_or(Fit {
                a: 0.0,
                b: 0.0,
                c: 0.0,
            })
    }

    /// Ordinary least squares over the intercept and the chosen slopes
    /// (the others held at zero).
    fn solve(points: &[Point], y: &impl Fn(&Point) -> f64, rows: bool, opts: bool) -> Fit {
        // normal equations of the 3-parameter linear model; an unused slope
        // keeps a unit row so that it solves to zero
        let mut m = [[0.0f64; 4]; 3];
        for p in points {
            let x = [
                1.0,
                if rows { p.rows } else { 0.0 },
                if opts { p.opt_outs } else { 0.0 },
            ];
            for i in 0..3 {
                for j in 0..3 {
                    m[i][j] += x[i] * x[j];
                }
                m[i][3] += x[i] * y(p);
            }
        }
        for (i, used) in [(1, rows), (2, opts)] {
            if !used {
                m[i] = [0.0; 4];
                m[i][i] = 1.0;
            }
        }
        // Gauss–Jordan with partial pivoting; a singular system (too few
        // distinct points) leaves a parameter at zero
        for col in 0..3 {
            let pivot = (col..3)
                .max_by(|&r, &s| m[r][col].abs().total_cmp(&m[s][col].abs()))
                .unwrap_or(col);
            m.swap(col, pivot);
            let d = m[col][col];
            if d.abs() < 1e-12 {
                continue;
            }
            for v in &mut m[col][col..] {
                *v /= d;
            }
            let pivot_row = m[col];
            for (r, row) in m.iter_mut().enumerate() {
                if r != col {
                    let f = row[col];
                    for (v, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                        *v -= f * p;
                    }
                }
            }
        }
        Fit {
            a: m[0][3],
            b: m[1][3],
            c: m[2][3],
        }
    }

    /// Sum of squared residuals.
    fn sse(&self, points: &[Point], y: &impl Fn(&Point) -> f64) -> f64 {
        points
            .iter()
            .map(|p| (y(p) - self.a - self.b * p.rows - self.c * p.opt_outs).powi(2))
            .sum()
    }

    /// The fitted value at a target, never below what a measured point no
    /// larger in either dimension actually cost.
    fn project(&self, points: &[Point], y: impl Fn(&Point) -> f64, rows: f64, opt_outs: f64) -> f64 {
        let floor = points
            .iter()
            .filter(|p| p.rows <= rows && p.opt_outs <= opt_outs)
            .map(&y)
            .fold(0.0, f64::max);
        (self.a + self.b * rows + self.c * opt_outs).max(floor)
    }
}

fn exe() -> Result<PathBuf> {
    std::env::current_exe().map_err(|e| Error::Usage(format!("cannot find the optscrub binary: {e}")))
}

/// Run optscrub with these arguments; its summary JSON.
fn step(args: &[&str], summary: &Path) -> Result<serde_json::Value> {
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
    step(
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
    step(&["init", "--store", &s, "--config", &config], &sum)?;
    let manifest = std::fs::read_to_string(data.join("imports/MANIFEST.txt"))
        .map_err(|e| Error::io("cannot read", &data.join("imports/MANIFEST.txt"), e))?;
    for line in manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut parts = line.split_whitespace();
        let (Some(file), Some(_), Some(account)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let file = data.join(file).to_string_lossy().into_owned();
        step(
            &[
                "ingest",
                "import",
                "--store",
                &s,
                &file,
                "--account",
                account,
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
    let input = campaign.to_string_lossy().into_owned();
    let output = dir.join("kept.parquet").to_string_lossy().into_owned();
    let suppressed = dir.join("suppressed.parquet").to_string_lossy().into_owned();
    let start = Instant::now();
    let v = step(
        &[
            "scrub",
            "--store",
            &s,
            "--input",
            &input,
            "--output",
            &output,
            "--suppressed",
            &suppressed,
            "--keep-duplicates",
        ],
        &sum,
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Point {
        rows: rows as f64,
        opt_outs: opt_outs as f64,
        seconds,
        peak_bytes: v["peak_rss_bytes"].as_f64().unwrap_or(0.0),
    })
}

/// Measure, fit, project.
pub fn run(a: Args) -> Result<()> {
    if a.recipients == 0 || a.max_rows < 4 || a.max_opt_outs < 4 {
        return Err(Error::Usage(
            "--recipients must be at least 1, --max-rows and --max-opt-outs at least 4".into(),
        ));
    }
    let (work, temporary) = match &a.work {
        Some(w) => (w.clone(), false),
        None => (
            std::env::temp_dir().join(format!("optscrub-plan-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&work).map_err(|e| Error::io("cannot create", &work, e))?;
    let rows = a.recipients.min(a.max_rows);
    let opts = a.opt_outs.min(a.max_opt_outs).max(4);
    let grid = [
        (rows / 4, opts),
        (rows / 2, opts),
        (rows, opts),
        (rows, opts / 4),
        (rows, opts / 2),
    ];
    let mut points = Vec::new();
    let result = (|| {
        for (r, o) in grid {
            let p = measure(&work, r.max(1), o, a.senders)?;
            eprintln!(
                "plan: {:>10} rows, {:>9} opt-outs: {:>7.2} s, peak {:>6.0} MiB",
                r,
                o,
                p.seconds,
                p.peak_bytes / 1048576.0
            );
            points.push(p);
        }
        Ok::<(), Error>(())
    })();
    if temporary {
        let _ = std::fs::remove_dir_all(&work);
    }
    result?;
    let time = Fit::of(&points, |p| p.seconds);
    let mem = Fit::of(&points, |p| p.peak_bytes);
    let (n, m) = (a.recipients as f64, a.opt_outs as f64);
    let secs = time.project(&points, |p| p.seconds, n, m);
    let peak = mem.project(&points, |p| p.peak_bytes, n, m);
    eprintln!(
        "plan: time ≈ {:.2} s {:+.3} s per million rows {:+.3} s per million opt-outs",
        time.a,
        time.b * 1e6,
        time.c * 1e6
    );
    eprintln!(
        "plan: peak ≈ {:.0} MiB {:+.1} MiB per million rows {:+.1} MiB per million opt-outs",
        mem.a / 1048576.0,
        mem.b * 1e6 / 1048576.0,
        mem.c * 1e6 / 1048576.0
    );
    println!(
        "projected scrub of {} rows against {} opt-outs over {} senders: {secs:.1} s, peak {:.0} MiB",
        a.recipients,
        a.opt_outs,
        a.senders,
        peak / 1048576.0
    );
    let pts: Vec<_> = points
        .iter()
        .map(|p| json!({"rows": p.rows as u64, "opt_outs": p.opt_outs as u64, "seconds": p.seconds, "peak_rss_bytes": p.peak_bytes as u64}))
        .collect();
    write_summary(
        a.summary.as_deref(),
        &json!({"command": "plan", "target": {"recipients": a.recipients, "opt_outs": a.opt_outs, "senders": a.senders},
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
    fn the_fit_recovers_a_plane() {
        let points: Vec<Point> = [(1.0, 1.0), (2.0, 1.0), (4.0, 1.0), (4.0, 3.0), (4.0, 2.0)]
            .iter()
            .map(|&(r, o)| Point {
                rows: r * 1e5,
                opt_outs: o * 1e4,
                seconds: 0.5 + 2e-6 * r * 1e5 + 3e-5 * o * 1e4,
                peak_bytes: 1e7,
            })
            .collect();
        let f = Fit::of(&points, |p| p.seconds);
        assert!(
            (f.a - 0.5).abs() < 1e-6 && (f.b - 2e-6).abs() < 1e-12 && (f.c - 3e-5).abs() < 1e-10,
            "{f:?}"
        );
        let m = Fit::of(&points, |p| p.peak_bytes);
        assert!(
            (m.project(&points, |p| p.peak_bytes, 1e7, 1e6) - 1e7).abs() < 1.0,
            "{m:?}"
        );
    }

    #[test]
    fn noise_never_projects_a_falling_cost() {
        // time that happens to shrink with rows (a noisy machine): the fit
        // holds the slope at zero and the projection at what was measured
        let points: Vec<Point> = [(2e3, 0.30), (4e3, 0.25), (8e3, 0.20)]
            .iter()
            .map(|&(r, s)| Point {
                rows: r,
                opt_outs: 2e3,
                seconds: s,
                peak_bytes: 1e7,
            })
            .collect();
        let f = Fit::of(&points, |p| p.seconds);
        assert!(f.b >= 0.0 && f.c >= 0.0, "{f:?}");
        let s = f.project(&points, |p| p.seconds, 1e6, 5e4);
        assert!(s >= 0.30 - 1e-9, "{s} {f:?}");
    }
}
