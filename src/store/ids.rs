//! Id runs (`ids/<gen>.bin`): the hashes of every event id (and help
//! request id) a store has seen, so that an ingest skips what it already
//! has. A run is a sorted list of distinct little-endian 64-bit hashes;
//! runs are merged size-tiered like key runs (see `runs::merge_from`).

use std::path::Path;

use super::damage::Fault;
use super::runs::{gallop, map_verified, Bytes};

/// Bytes of ids staged (and CRC'd) at a time when an id run is written.
const ID_STAGE: usize = 1 << 16;

/// One id run, mapped and verified.
pub(super) struct IdRun {
    data: Bytes,
}

impl IdRun {
    /// Open an id run, checking it against the manifest's size and CRC.
    pub(super) fn open(path: &Path, bytes: u64, crc: u32) -> Result<IdRun, Fault> {
        let data = map_verified(path, bytes, crc)?;
        if !data.len().is_multiple_of(8) {
            return Err("malformed".into());
        }
        Ok(IdRun { data })
    }

    /// Number of ids.
    pub(super) fn len(&self) -> usize {
        self.data.len() / 8
    }

    fn at(&self, i: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.data[i * 8..i * 8 + 8]);
        u64::from_le_bytes(a)
    }
}

/// Looks up hashes asked in ascending order in one id run, each search
/// starting where the last one ended (see `keys::Seeker`).
pub(super) struct IdSeeker<'a> {
    run: &'a IdRun,
    at: usize,
}

impl<'a> IdSeeker<'a> {
    /// For hashes from `first` on.
    pub(super) fn new(run: &'a IdRun, first: u64) -> IdSeeker<'a> {
        IdSeeker {
            run,
            at: gallop(0, run.len(), |i| run.at(i) < first),
        }
    }

    /// Is `h` in the run? `h` must not be below the hash asked before.
    pub(super) fn contains(&mut self, h: u64) -> bool {
        let run = self.run;
        self.at = gallop(self.at, run.len(), |i| run.at(i) < h);
        self.at < run.len() && run.at(self.at) == h
    }
}

/// Merge id runs into one sorted, distinct list.
pub(super) fn merge_ids(runs: &[&IdRun], more: &[u64]) -> Vec<u64> {
    merged_ids(runs, more).collect()
}

/// The ids of runs and of `more` (sorted), in order, each once. Streams:
/// it holds nothing but a place in each.
pub(super) fn merged_ids<'a>(runs: &'a [&'a IdRun], more: &'a [u64]) -> impl Iterator<Item = u64> + 'a {
    let mut heads = vec![0usize; runs.len() + 1];
    let at = move |i: usize, pos: usize| -> Option<u64> {
        match runs.get(i) {
            Some(r) => (pos < r.len()).then(|| r.at(pos)),
            None => more.get(pos).copied(),
        }
    };
    std::iter::from_fn(move || {
        let least = (0..heads.len()).filter_map(|i| at(i, heads[i])).min()?;
        for (i, h) in heads.iter_mut().enumerate() {
            while at(i, *h) == Some(least) {
                *h += 1;
            }
        }
        Some(least)
    })
}

/// Write an id run from ids in order; returns (bytes, CRC-32, ids).
pub(super) fn write_ids<W: std::io::Write>(
    out: W,
    ids: impl Iterator<Item = u64>,
) -> std::io::Result<(u64, u32, u64)> {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(super::files::STREAM_BUFFER, out);
    let mut crc = crc32fast::Hasher::new();
    let mut buf: Vec<u8> = Vec::with_capacity(ID_STAGE);
    let mut n = 0u64;
    for id in ids {
        buf.extend_from_slice(&id.to_le_bytes());
        n += 1;
        if buf.len() >= ID_STAGE {
            out.write_all(&buf)?;
            crc.update(&buf);
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    crc.update(&buf);
    out.flush()?;
    Ok((n * 8, crc.finalize(), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encode sorted, distinct ids.
    fn encode_ids(sorted: &[u64]) -> Vec<u8> {
        sorted.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn a_seeker_finds_what_a_search_finds() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<u64> = (0..3000u64).map(|i| i * i * 31 + 7).collect();
        let bytes = encode_ids(&ids);
        let p = dir.path().join("r");
        std::fs::write(&p, &bytes).unwrap();
        let run = IdRun::open(&p, bytes.len() as u64, crc32fast::hash(&bytes)).unwrap();
        for stride in [1u64, 3, 1000, 70_001] {
            let asked: Vec<u64> = (0..300_000_000u64).step_by(stride as usize * 997).collect();
            let mut seeker = IdSeeker::new(&run, asked[0]);
            for &h in &asked {
                assert_eq!(
                    seeker.contains(h),
                    ids.binary_search(&h).is_ok(),
                    "{h}, stride {stride}"
                );
            }
            let mut on_ids = IdSeeker::new(&run, ids[0]);
            assert!(ids.iter().step_by(stride as usize).all(|&h| on_ids.contains(h)));
        }
    }

    #[test]
    fn ids_merge_as_a_stream() {
        let dir = tempfile::tempdir().unwrap();
        let run = |name: &str, ids: &[u64]| {
            let bytes = encode_ids(ids);
            let p = dir.path().join(name);
            std::fs::write(&p, &bytes).unwrap();
            IdRun::open(&p, bytes.len() as u64, crc32fast::hash(&bytes)).unwrap()
        };
        let a = run("a", &[1, 4, 9, 10]);
        let b = run("b", &[]);
        let c = run("c", &[0, 4, 11, u64::MAX]);
        let ids = merge_ids(&[&a, &b, &c], &[2, 4, 9, 12]);
        assert_eq!(ids, [0, 1, 2, 4, 9, 10, 11, 12, u64::MAX]);
        let mut out = Vec::new();
        let (bytes, crc, n) = write_ids(&mut out, ids.iter().copied()).unwrap();
        assert_eq!(out, encode_ids(&ids));
        assert_eq!((bytes, crc, n), (out.len() as u64, crc32fast::hash(&out), 9));
    }
}
