//! What key runs and id runs share: a store file mapped and verified, a
//! forward search in a sorted run, and the size-tiered choice of the runs
//! a new one is merged with.

use std::fs::File;
use std::path::Path;

use super::damage::Fault;

/// Bytes of a store file, mapped or owned.
pub(super) enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

impl Bytes {
    /// Ask the system to read these byte ranges `(start, length)` ahead,
    /// without waiting: lookups whose places are known before they are
    /// made get their pages from the disk together, not one fault at a
    /// time (a mapped file opened for lookups reads no more than the page
    /// a fault asks for).
    pub(super) fn will_need(&self, ranges: impl Iterator<Item = (usize, usize)>) {
        #[cfg(unix)]
        if let Bytes::Mapped(m) = self {
            for (at, len) in ranges {
                let len = len.min(m.len().saturating_sub(at));
                if len > 0 {
                    let _ = m.advise_range(memmap2::Advice::WillNeed, at, len);
                }
            }
        }
        #[cfg(not(unix))]
        let _ = ranges;
    }
}

/// Map a store file and check its size and CRC-32 against the manifest's.
pub(super) fn map_verified(path: &Path, bytes: u64, crc: u32) -> Result<Bytes, Fault> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len != bytes {
        return Err("wrong size".into());
    }
    let data = if len == 0 {
        Bytes::Owned(Vec::new())
    } else {
        let map = super::files::map_file(&file, false)?;
        Bytes::Mapped(map)
    };
    if super::files::crc32(&data) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(data)
}

/// The first index in `from..len` at which `below` is false (`len` when
/// there is none), for a `below` that is true up to some index and false
/// after it: it steps 1, 2, 4, … from `from`, then halves the last step,
/// so a search costs the log of how far it goes, not of `len`.
pub(crate) fn gallop(from: usize, len: usize, below: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut step) = (from, 1usize);
    let mut hi = lo;
    while hi < len && below(hi) {
        lo = hi + 1;
        hi = lo + step - 1;
        step *= 2;
    }
    let mut hi = hi.min(len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if below(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Where a forward search of a sorted run stands, and the keys of the
/// block it last ended in, decoded once: searches asked in ascending
/// order that end in that block (most of them, when a batch is large next
/// to the run) read those keys, not the run's encoding a step at a time.
/// The key and id seekers both search this way.
pub(super) struct BlockSeeker<K> {
    /// The first record not below the last key asked.
    pub(super) at: usize,
    /// The first record of the block whose keys `keys` holds.
    start: usize,
    keys: Vec<K>,
}

impl<K: Ord + Copy> BlockSeeker<K> {
    /// From record `at` on, blocks of `per_block` records.
    pub(super) fn new(at: usize, per_block: usize) -> BlockSeeker<K> {
        BlockSeeker {
            at,
            start: 0,
            keys: Vec::with_capacity(per_block),
        }
    }

    /// The index of `key` in a run of `len` records, if it is there; `key`
    /// must not be below the key asked before. `key_at` reads one key of
    /// the run, `decode` appends the keys of block `b`.
    pub(super) fn seek(
        &mut self,
        key: K,
        len: usize,
        per_block: usize,
        key_at: impl Fn(usize) -> K,
        decode: impl FnOnce(usize, &mut Vec<K>),
    ) -> Option<usize> {
        let end = self.start + self.keys.len();
        if self.keys.last().is_none_or(|last| key > *last) || self.at >= end {
            // past the block kept: gallop through the run, then keep the
            // keys of the block the search ends in
            self.at = gallop(self.at.max(end), len, |i| key_at(i) < key);
            if self.at >= len {
                return None;
            }
            let b = self.at / per_block;
            self.start = b * per_block;
            self.keys.clear();
            decode(b, &mut self.keys);
        }
        let keys = &self.keys;
        let j = gallop(self.at - self.start, keys.len(), |j| keys[j] < key);
        self.at = self.start + j;
        (keys.get(j) == Some(&key)).then_some(self.at)
    }
}

/// A run is merged into the newer ones when it has at most this many
/// times their records: larger, fewer merges of big runs (less written per
/// ingest); smaller, fewer runs for a reader to search.
const MERGE_FACTOR: u64 = 4;

/// Which runs (a suffix of the list, oldest first) to merge after a new
/// one was added: size-tiered, so that each record is rewritten O(log n)
/// times and there are O(log n) runs.
pub(crate) fn merge_from(rows: &[u64]) -> usize {
    let mut from = rows.len().saturating_sub(1);
    let mut merged = rows.last().copied().unwrap_or(0);
    while from > 0 && rows[from - 1] <= MERGE_FACTOR * merged.max(1) {
        from -= 1;
        merged += rows[from];
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_tiered_merging() {
        assert_eq!(merge_from(&[]), 0);
        assert_eq!(merge_from(&[100]), 0);
        // a small run after a big one stays apart
        assert_eq!(merge_from(&[10_000_000, 10_000]), 1);
        // similar sizes merge, and the merge cascades
        assert_eq!(merge_from(&[1000, 300, 100]), 0);
        assert_eq!(merge_from(&[100_000, 300, 100]), 1);
    }

    #[test]
    fn a_gallop_finds_the_first_index_not_below() {
        let v: Vec<u32> = (0..1000).map(|i| i * 3).collect();
        for from in [0usize, 1, 17, 999, 1000] {
            for x in [0u32, 1, 3, 500, 2997, 2998, 5000] {
                let want = v.partition_point(|&y| y < x).max(from);
                assert_eq!(gallop(from, v.len(), |i| v[i] < x), want, "from {from}, x {x}");
            }
        }
    }
}
