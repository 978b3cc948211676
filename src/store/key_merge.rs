//! The streamed merge of key runs: their records in key order, each key
//! once, the newest run's record winning, holding nothing but a place in
//! each run.

use super::keys::{Entry, KeyRun, Reader};

/// The records of key runs (newest first) in key order, each key once:
/// for a key in several runs, the newest run's record. Streams: it holds
/// nothing but a place in each run.
pub(crate) fn merged_keys<'a>(newest_first: &'a [KeyRun]) -> impl Iterator<Item = Entry> + 'a {
    merged_range(newest_first, (0, 0)..=(u64::MAX, u64::MAX))
}

/// [`merged_keys`] of new records (sorted by key, each key once) over key
/// runs (newest first): a commit's keys, merged without being encoded as
/// a run and read back first.
pub(crate) fn merged_over<'a>(newest: &'a [Entry], older: &'a [KeyRun]) -> impl Iterator<Item = Entry> + 'a {
    use std::cmp::Ordering;
    let mut new = newest.iter().copied().peekable();
    let mut old = merged_keys(older).peekable();
    std::iter::from_fn(move || match (new.peek(), old.peek()) {
        (Some(n), Some(o)) => match n.key().cmp(&o.key()) {
            Ordering::Less => new.next(),
            Ordering::Equal => {
                old.next();
                new.next()
            }
            Ordering::Greater => old.next(),
        },
        (Some(_), None) => new.next(),
        (None, _) => old.next(),
    })
}

/// [`merged_keys`] of the keys in a range only (each run binary-searched
/// for its start): one scope's keys are `(hash, 0)..=(hash, u64::MAX)`.
pub(crate) fn merged_range<'a>(
    newest_first: &'a [KeyRun],
    keys: std::ops::RangeInclusive<(u64, u64)>,
) -> impl Iterator<Item = Entry> + 'a {
    let end = *keys.end();
    // each run's next record, decoded once; None when the run is done
    let head = move |run: &mut Reader<'_>, at: usize| {
        (at < run.run().len())
            .then(|| run.entry(at))
            .filter(|e| e.key() <= end)
    };
    let mut readers: Vec<Reader<'_>> = newest_first.iter().map(KeyRun::reader).collect();
    let mut at: Vec<usize> = newest_first
        .iter()
        .map(|r| r.lower_bound(*keys.start()))
        .collect();
    let mut heads: Vec<Option<Entry>> = readers.iter_mut().zip(&at).map(|(r, &i)| head(r, i)).collect();
    // the run whose records come next, up to (not including) the smallest
    // head of the others: within that stretch no other run is looked at
    let mut stretch: Option<(usize, (u64, u64))> = None;
    std::iter::from_fn(move || {
        if let Some((r, limit)) = stretch {
            if let Some(e) = heads[r].filter(|e| e.key() < limit) {
                at[r] += 1;
                heads[r] = head(&mut readers[r], at[r]);
                return Some(e);
            }
        }
        // the smallest head; on a tie the newer run (earlier) wins
        let (r, best) = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|e| (i, e)))
            .fold(None, |b: Option<(usize, Entry)>, (i, e)| match b {
                Some(b) if b.1.key() <= e.key() => Some(b),
                _ => Some((i, e)),
            })?;
        let mut limit = (u64::MAX, u64::MAX);
        for ((run, i), h) in readers.iter_mut().zip(&mut at).zip(&mut heads) {
            if h.is_some_and(|e| e.key() == best.key()) {
                *i += 1;
                *h = head(run, *i);
            }
        }
        for (i, h) in heads.iter().enumerate() {
            if let Some(e) = h.filter(|_| i != r) {
                limit = limit.min(e.key());
            }
        }
        stretch = Some((r, limit));
        Some(best)
    })
}

#[cfg(test)]
mod tests {
    use super::super::key_write::{encode_fixed, encode_keys, write_keys};
    use super::super::keys::ScopeName;
    use super::*;

    /// Merge key runs, newest first: for a key in several, the newest wins
    /// (in memory: the model the streamed [`merged_keys`] is tested against).
    fn merge_keys(newest_first: &[&KeyRun]) -> (Vec<ScopeName>, Vec<Entry>) {
        let mut scopes: Vec<ScopeName> = newest_first
            .iter()
            .flat_map(|r| r.scopes.iter().cloned())
            .collect();
        scopes.sort();
        scopes.dedup();
        let mut all: Vec<(u64, u64, usize, Entry)> =
            Vec::with_capacity(newest_first.iter().map(|r| r.len()).sum());
        for (age, r) in newest_first.iter().enumerate() {
            all.extend(r.iter().map(|e| (e.scope, e.contact, age, e)));
        }
        all.sort_unstable_by_key(|x| (x.0, x.1, x.2));
        all.dedup_by_key(|x| (x.0, x.1));
        (scopes, all.into_iter().map(|x| x.3).collect())
    }

    #[test]
    fn runs_round_trip_and_merge_newest_wins() {
        let e = |scope, contact, at| Entry {
            scope,
            contact,
            at,
            ledger: 3,
            row: 7,
            opt_out: at % 2 == 0,
        };
        let old = KeyRun::from_bytes(encode_keys(&[], &[e(1, 5, 10), e(1, 6, 10), e(2, 5, 10)])).unwrap();
        let new = KeyRun::from_bytes(encode_keys(&[], &[e(1, 6, 11), e(3, 1, 12)])).unwrap();
        assert_eq!(old.get(1, 6), Some(e(1, 6, 10)));
        assert_eq!(old.get(1, 7), None);
        let (_, merged) = merge_keys(&[&new, &old]);
        assert_eq!(merged, [e(1, 5, 10), e(1, 6, 11), e(2, 5, 10), e(3, 1, 12)]);
        let mut bytes = encode_keys(&[], &merged);
        bytes[20] ^= 1;
        assert!(KeyRun::from_bytes(bytes).is_err());
    }

    #[test]
    fn a_streamed_merge_writes_what_a_merge_in_memory_writes() {
        let scope = |i: u64| ScopeName {
            hash: i,
            account: "a".into(),
            scope: format!("s{i}"),
        };
        let e = |i: u64, at: i64| Entry {
            scope: i % 3,
            contact: i * 7919 % 100_003,
            at,
            ledger: at as u32,
            row: i as u32,
            opt_out: i.is_multiple_of(2),
        };
        let sorted = |mut v: Vec<Entry>| {
            v.sort_by_key(Entry::key);
            v.dedup_by_key(|x| x.key());
            v
        };
        // runs of several blocks (block of 4 records here), keys shared
        for (a, b, c) in [(0, 0, 0), (1, 0, 0), (50, 3, 9), (4000, 700, 5000), (8, 8, 0)] {
            let runs: Vec<KeyRun> = [(a, 1), (b, 2), (c, 3)]
                .iter()
                .rev()
                .map(|&(n, at)| {
                    let v = sorted((0..n).map(|i| e(i * at as u64 + at as u64, at)).collect());
                    KeyRun::from_bytes(encode_keys(&[scope(at as u64)], &v)).unwrap()
                })
                .collect();
            let (scopes, want) = merge_keys(&runs.iter().collect::<Vec<_>>());
            let streamed: Vec<Entry> = merged_keys(&runs).collect();
            assert_eq!(streamed, want);
            // the newest run's records as they are, over the others
            let newest: Vec<Entry> = runs[0].iter().collect();
            assert_eq!(merged_over(&newest, &runs[1..]).collect::<Vec<_>>(), want);
            for s in 0..4 {
                let one: Vec<Entry> = merged_range(&runs, (s, 0)..=(s, u64::MAX)).collect();
                let model: Vec<Entry> = want.iter().filter(|e| e.scope == s).copied().collect();
                assert_eq!(one, model, "scope {s}");
            }
            let mut out = Vec::new();
            let w = write_keys(&mut out, &scopes, streamed.into_iter(), 100).unwrap();
            let whole = encode_keys(&scopes, &want);
            assert_eq!(out, whole);
            assert_eq!(
                (w.bytes, w.crc32, w.rows),
                (whole.len() as u64, crc32fast::hash(&whole), want.len() as u64)
            );
            let start = 12 + u32::from_le_bytes(whole[8..12].try_into().unwrap()) as usize;
            let table = super::super::blocks::encode(&whole, start, 100, None);
            assert_eq!(w.blocks, table);
            // a run written before packing merges the same
            let fixed: Vec<KeyRun> = runs
                .iter()
                .map(|r| KeyRun::from_bytes(encode_fixed(&r.scopes, &r.iter().collect::<Vec<_>>())).unwrap())
                .collect();
            assert_eq!(merged_keys(&fixed).collect::<Vec<_>>(), want);
        }
    }
}
