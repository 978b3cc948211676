//! Id runs (`ids/<gen>.bin`): the hashes of every event id (and help
//! request id) a store has seen, so that an ingest skips what it already
//! has. A run is a sorted list of distinct little-endian 64-bit hashes;
//! runs are merged size-tiered like key runs (see `keys::merge_from`).

use std::path::Path;

use super::damage::Fault;
use super::keys::{map_verified, Bytes};

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

    /// Is this hash in the run?
    pub(super) fn contains(&self, h: u64) -> bool {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.at(mid).cmp(&h) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
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
