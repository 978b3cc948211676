//! What `plan` projects from its measured points: time and memory fitted as
//! a + b·rows + c·opt-outs by least squares with non-negative slopes, and
//! evaluated at the job's size.

/// One measured scrub.
#[derive(Debug, Clone, Copy)]
pub(super) struct Point {
    /// Recipient rows scrubbed.
    pub(super) rows: f64,
    /// Opt-outs in the store.
    pub(super) opt_outs: f64,
    /// Wall time.
    pub(super) seconds: f64,
    /// Peak resident memory.
    pub(super) peak_bytes: f64,
}

/// y = a + b·rows + c·opt_outs, by least squares with b, c ≥ 0: neither
/// time nor memory falls as rows or opt-outs grow, so a negative slope is
/// noise (a shared machine, runs of a few milliseconds) and would project
/// a big job as nearly free.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fit {
    /// The intercept.
    pub(super) a: f64,
    /// Per recipient row.
    pub(super) b: f64,
    /// Per opt-out.
    pub(super) c: f64,
}

impl Fit {
    /// The non-negative least-squares fit of `y` over the points.
    pub(super) fn of(points: &[Point], y: impl Fn(&Point) -> f64) -> Fit {
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
    pub(super) fn project(
        &self,
        points: &[Point],
        y: impl Fn(&Point) -> f64,
        rows: f64,
        opt_outs: f64,
    ) -> f64 {
        let floor = points
            .iter()
            .filter(|p| p.rows <= rows && p.opt_outs <= opt_outs)
            .map(&y)
            .fold(0.0, f64::max);
        (self.a + self.b * rows + self.c * opt_outs).max(floor)
    }
}

/// The fits of time and memory, and their values at a target.
pub(super) struct Projection {
    /// Time's fit.
    pub(super) time: Fit,
    /// Memory's fit.
    pub(super) mem: Fit,
    /// Projected seconds at the target.
    pub(super) secs: f64,
    /// Projected peak bytes at the target.
    pub(super) peak: f64,
}

impl Projection {
    /// Fit time and memory to the points and project both at a target.
    pub(super) fn of(points: &[Point], rows: f64, opt_outs: f64) -> Projection {
        let mut sizes: Vec<u64> = points.iter().map(|p| p.rows as u64).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let fit = |points: &[Point], y: &dyn Fn(&Point) -> f64| {
            if sizes.len() < 2 {
                // one sample size: a line through the origin, never a flat one
                let p = points.first().copied().unwrap_or(Point {
                    rows: 1.0,
                    opt_outs: 0.0,
                    seconds: 0.0,
                    peak_bytes: 0.0,
                });
                Fit {
                    a: 0.0,
                    b: y(&p) / p.rows.max(1.0),
                    c: 0.0,
                }
            } else {
                Fit::of(points, y)
            }
        };
        let time = fit(points, &|p| p.seconds);
        // memory grows fast while the pipeline fills, then only with what
        // is kept per row: its slope in rows comes from the two largest
        // sample sizes
        let from = sizes.len().checked_sub(2).map_or(0, |i| sizes[i]);
        let large: Vec<Point> = points.iter().filter(|p| p.rows as u64 >= from).copied().collect();
        let mem = fit(&large, &|p| p.peak_bytes);
        Projection {
            time,
            mem,
            secs: time.project(points, |p| p.seconds, rows, opt_outs),
            peak: mem.project(points, |p| p.peak_bytes, rows, opt_outs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;

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
    fn memory_is_projected_from_past_the_pipelines_fill() {
        // measured on a Polars file: steep while units grow, then ~17 MiB
        // per million rows; the scrub of 10M rows peaked at 430 MiB
        let mib = |v: f64| v * MIB;
        let points: Vec<Point> = [(1.0, 244.0, 0.27), (2.0, 351.0, 0.54), (4.0, 386.0, 0.94)]
            .iter()
            .map(|&(r, m, s)| Point {
                rows: r * 1048576.0,
                opt_outs: 1.87e7,
                seconds: s,
                peak_bytes: mib(m),
            })
            .collect();
        let p = Projection::of(&points, 1e7, 1.87e7);
        let peak = p.peak / MIB;
        // a line through all three would say 520+ MiB
        assert!((400.0..=500.0).contains(&peak), "{peak}");
        assert!((2.0..=2.6).contains(&p.secs), "{}", p.secs);
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
