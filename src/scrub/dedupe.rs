//! Duplicate marking (SPEC §3.4): a row whose (account, contact) an
//! earlier kept row already has is suppressed as a duplicate.

use roaring::RoaringTreemap;

use super::{Reason, RowDecision};
use crate::util::fasthash::FastMap;

/// Marks rows whose (account, contact) an earlier kept row already has.
///
/// Rows are marked a window at a time: the window's kept rows are sorted by
/// (account, contact, place in input order), so that each key is looked up
/// once, the first row of a new key is the one kept, and the new keys go
/// into the per-account bitmaps as one sorted union. Inserting one contact
/// at a time in input order (random order for a bitmap) took ~45% of a
/// 10M-row scrub's CPU by `perf`, on one thread.
#[derive(Default)]
pub struct Deduper {
    seen: FastMap<u32, RoaringTreemap>,
}

impl Deduper {
    /// Mark duplicates in `rows`, which follow every row seen before.
    pub fn mark(&mut self, rows: &mut [RowDecision]) {
        self.mark_window(&mut [rows]);
    }

    /// Mark duplicates in several runs of rows, in input order, which
    /// follow every row seen before.
    pub fn mark_window(&mut self, window: &mut [&mut [RowDecision]]) {
        use rayon::slice::ParallelSliceMut;
        let starts: Vec<usize> = window
            .iter()
            .scan(0, |at, rows| {
                let start = *at;
                *at += rows.len();
                Some(start)
            })
            .collect();
        // (account, contact, place in the window) of every row still kept
        let mut keys: Vec<(u32, u64, u32)> = Vec::new();
        for (rows, &start) in window.iter().zip(&starts) {
            keys.extend(
                rows.iter()
                    .enumerate()
                    .filter(|(_, d)| d.reason.is_none())
                    .map(|(i, d)| (d.account, d.contact, (start + i) as u32)),
            );
        }
        keys.par_sort_unstable();
        for run in keys.chunk_by(|x, y| x.0 == y.0) {
            let account = run[0].0;
            // the window's distinct contacts of this account, sorted
            let distinct = run.chunk_by(|x, y| x.1 == y.1).map(|g| g[0].1);
            let window_set =
                RoaringTreemap::from_sorted_iter(distinct.clone()).unwrap_or_else(|_| distinct.collect());
            let seen = self.seen.entry(account).or_default();
            // contacts an earlier window kept: one bitmap intersection, then
            // walked alongside the sorted keys (no lookup per key)
            let before = &window_set & &*seen;
            *seen |= window_set;
            let mut before = before.iter().peekable();
            for group in run.chunk_by(|x, y| x.1 == y.1) {
                let contact = group[0].1;
                while before.next_if(|&c| c < contact).is_some() {}
                let dups = if before.next_if_eq(&contact).is_some() {
                    group
                } else {
                    &group[1..]
                };
                for &(_, _, at) in dups {
                    let at = at as usize;
                    let run = starts.partition_point(|&s| s <= at) - 1;
                    window[run][at - starts[run]].reason = Some(Reason::Duplicate);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::scrub::NO_SCOPE;

    fn row(account: u32, contact: u64, reason: Option<Reason>) -> RowDecision {
        RowDecision {
            reason,
            scope: NO_SCOPE,
            account,
            contact,
        }
    }

    /// The obviously right way: one row at a time, in input order.
    fn reference(rows: &mut [RowDecision], seen: &mut std::collections::HashSet<(u32, u64)>) {
        for d in rows.iter_mut().filter(|d| d.reason.is_none()) {
            if !seen.insert((d.account, d.contact)) {
                d.reason = Some(Reason::Duplicate);
            }
        }
    }

    #[test]
    fn a_window_marks_as_one_row_at_a_time_does() {
        // keys repeat within a run, across runs and across windows; a
        // suppressed row never makes a later one a duplicate
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        let mut dedupe = Deduper::default();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..4 {
            let mut runs: Vec<Vec<RowDecision>> = (0..3)
                .map(|_| {
                    (0..200)
                        .map(|_| {
                            let reason = (next() % 5 == 0).then_some(Reason::SenderOptOut);
                            row((next() % 3) as u32, 447_700_900_000 + next() % 150, reason)
                        })
                        .collect()
                })
                .collect();
            let mut want = runs.clone();
            for r in &mut want {
                reference(r, &mut seen);
            }
            let mut window: Vec<&mut [RowDecision]> = runs.iter_mut().map(Vec::as_mut_slice).collect();
            dedupe.mark_window(&mut window);
            assert_eq!(runs, want);
        }
    }
}
