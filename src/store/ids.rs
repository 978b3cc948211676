//! Id runs (`ids/<gen>.bin`): the hashes of every event id (and help
//! request id) a store has seen, so that an ingest skips what it already
//! has. A run is a sorted list of distinct 64-bit hashes; runs are merged
//! size-tiered like key runs (see `runs::merge_from`).
//!
//! A run is packed: `OPTIDS02`, then blocks of 64 hashes, each its
//! smallest hash (u64), a width in bits (u8) and every hash's offset from
//! the smallest in that many bits; then as many zero bytes as make the
//! file's length 4 more than a multiple of 8, each block's offset (u64),
//! the number of hashes (u64) and a u32 that is 2. Hashes spread evenly,
//! so 64 of them among n span about 64/n of the range: 5.6 bytes a hash at
//! 100M rather than 8, and each still read in place. Runs written before
//! (the hashes as little-endian u64s, one after another: a length that is
//! a multiple of 8) are still read.

use std::path::Path;

use super::bits::{mask, u64_at, window};
use super::damage::Fault;
use super::runs::{gallop, map_verified, BlockSeeker, Bytes};

/// Bytes of ids staged at a time when an id run is written.
const ID_STAGE: usize = 1 << 16;
const MAGIC: &[u8; 8] = b"OPTIDS02";
/// Hashes per block.
const PER_BLOCK: usize = 64;
/// Bytes of a block before its offsets.
const BLOCK_HEAD: usize = 9;

/// One id run, mapped and verified.
pub(super) struct IdRun {
    data: Bytes,
    len: usize,
    /// Where a packed run's block offsets start (None: a plain run).
    dir: Option<usize>,
}

impl IdRun {
    /// Open an id run, checking it against the manifest's size and CRC.
    pub(super) fn open(path: &Path, bytes: u64, crc: u32) -> Result<IdRun, Fault> {
        IdRun::parse(map_verified(path, bytes, crc)?)
    }

    fn parse(data: Bytes) -> Result<IdRun, Fault> {
        if data.len().is_multiple_of(8) {
            return Ok(IdRun {
                len: data.len() / 8,
                data,
                dir: None,
            });
        }
        let n = data.len();
        if n < 20 || n % 8 != 4 || data[..8] != MAGIC[..] || data[n - 4..] != 2u32.to_le_bytes() {
            return Err("malformed".into());
        }
        let word = |i: usize| u64_at(&data, i);
        let len = usize::try_from(word(n - 12)).map_err(|_| "malformed")?;
        let blocks = len.div_ceil(PER_BLOCK);
        let dir = blocks
            .checked_mul(8)
            .and_then(|d| (n - 12).checked_sub(d))
            .filter(|d| *d >= 8)
            .ok_or("malformed")?;
        // each block where the one before ends, the last a few bytes
        // (under 8) before the offsets
        let mut end = 8usize;
        for b in 0..blocks {
            let at = usize::try_from(word(dir + 8 * b)).map_err(|_| "malformed")?;
            let width = *data.get(at + 8).ok_or("malformed")?;
            if at != end || width > 64 {
                return Err("malformed".into());
            }
            let count = (len - b * PER_BLOCK).min(PER_BLOCK);
            end = at + BLOCK_HEAD + (count * usize::from(width)).div_ceil(8);
        }
        if end > dir || dir - end >= 8 {
            return Err("malformed".into());
        }
        Ok(IdRun {
            data,
            len,
            dir: Some(dir),
        })
    }

    /// Number of ids.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Every id, in order (a packed run decoded a block at a time).
    fn iter(&self) -> Box<dyn Iterator<Item = u64> + '_> {
        if self.dir.is_none() {
            return Box::new((0..self.len).map(|i| self.at(i)));
        }
        Box::new((0..self.len.div_ceil(PER_BLOCK)).flat_map(move |b| {
            let count = (self.len - b * PER_BLOCK).min(PER_BLOCK);
            let mut ids = Vec::with_capacity(count);
            self.decode_block(b, count, &mut ids);
            ids.into_iter()
        }))
    }

    /// The `count` ids of block `b` of a packed run, in order.
    fn decode_block(&self, b: usize, count: usize, out: &mut Vec<u64>) {
        let Some(dir) = self.dir else {
            return;
        };
        let block = u64_at(&self.data, dir + 8 * b) as usize;
        let (base, width) = (u64_at(&self.data, block), u32::from(self.data[block + 8]));
        let mask = mask(width);
        let bytes = self.data.get(block + BLOCK_HEAD..).unwrap_or(&[]);
        let (mut acc, mut held, mut next) = (0u128, 0u32, 0usize);
        for _ in 0..count {
            if held < width {
                acc |= u128::from(u64::from_le_bytes(window(bytes, next))) << held;
                next += 8;
                held += 64;
            }
            out.push(base.wrapping_add(acc as u64 & mask));
            acc = acc.checked_shr(width).unwrap_or(0);
            held -= width;
        }
    }

    fn at(&self, i: usize) -> u64 {
        let word = |at: usize| u64_at(&self.data, at);
        let Some(dir) = self.dir else {
            return word(i * 8);
        };
        let block = word(dir + 8 * (i / PER_BLOCK)) as usize;
        let width = self.data[block + 8];
        if width == 0 {
            return word(block);
        }
        // the offset's bits, read as a 16-byte window (zeros past the end)
        let bit = (i % PER_BLOCK) * usize::from(width);
        let from = block + BLOCK_HEAD + bit / 8;
        let w = u128::from_le_bytes(window(&self.data, from));
        word(block).wrapping_add((w >> (bit % 8)) as u64 & mask(u32::from(width)))
    }
}

/// Looks up hashes asked in ascending order in one id run, each search
/// starting where the last one ended, and the hashes of the block it ends
/// in decoded once for the searches after it (see `keys::Seeker`).
pub(super) struct IdSeeker<'a> {
    run: &'a IdRun,
    place: BlockSeeker<u64>,
}

impl<'a> IdSeeker<'a> {
    /// For hashes from `first` on.
    pub(super) fn new(run: &'a IdRun, first: u64) -> IdSeeker<'a> {
        IdSeeker {
            run,
            place: BlockSeeker::new(gallop(0, run.len(), |i| run.at(i) < first), PER_BLOCK),
        }
    }

    /// Is `h` in the run? `h` must not be below the hash asked before.
    pub(super) fn contains(&mut self, h: u64) -> bool {
        let run = self.run;
        if run.dir.is_none() {
            self.place.at = gallop(self.place.at, run.len(), |i| run.at(i) < h);
            return self.place.at < run.len() && run.at(self.place.at) == h;
        }
        let decode =
            |b: usize, ids: &mut Vec<u64>| run.decode_block(b, (run.len - b * PER_BLOCK).min(PER_BLOCK), ids);
        self.place
            .seek(h, run.len(), PER_BLOCK, |i| run.at(i), decode)
            .is_some()
    }
}

/// Merge id runs into one sorted, distinct list.
pub(super) fn merge_ids(runs: &[&IdRun], more: &[u64]) -> Vec<u64> {
    merged_ids(runs, more).collect()
}

/// The ids of runs and of `more` (sorted), in order, each once. Streams:
/// it holds nothing but a place in each.
pub(super) fn merged_ids<'a>(runs: &'a [&'a IdRun], more: &'a [u64]) -> impl Iterator<Item = u64> + 'a {
    let mut heads: Vec<std::iter::Peekable<Box<dyn Iterator<Item = u64> + 'a>>> = runs
        .iter()
        .map(|r| r.iter())
        .chain(std::iter::once(
            Box::new(more.iter().copied()) as Box<dyn Iterator<Item = u64>>
        ))
        .map(Iterator::peekable)
        .collect();
    std::iter::from_fn(move || {
        let least = heads.iter_mut().filter_map(|h| h.peek().copied()).min()?;
        for h in &mut heads {
            while h.next_if_eq(&least).is_some() {}
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
    let mut buf: Vec<u8> = Vec::with_capacity(ID_STAGE + 1024);
    buf.extend_from_slice(MAGIC);
    let (mut n, mut written) = (0u64, 0u64);
    let mut offsets: Vec<u64> = Vec::new();
    let mut block: Vec<u64> = Vec::with_capacity(PER_BLOCK);
    let mut ids = ids.peekable();
    while ids.peek().is_some() {
        block.clear();
        block.extend(ids.by_ref().take(PER_BLOCK));
        n += block.len() as u64;
        offsets.push(written + buf.len() as u64);
        // sorted: the first is the smallest
        let base = block[0];
        let top = block.iter().map(|v| v.wrapping_sub(base)).max().unwrap_or(0);
        let width = 64 - top.leading_zeros();
        buf.extend_from_slice(&base.to_le_bytes());
        buf.push(width as u8);
        // bits gathered in a u128 and written out 64 at a time
        let (mut acc, mut held) = (0u128, 0u32);
        for v in &block {
            acc |= u128::from(v.wrapping_sub(base)) << held;
            held += width;
            if held >= 64 {
                buf.extend_from_slice(&(acc as u64).to_le_bytes());
                acc >>= 64;
                held -= 64;
            }
        }
        buf.extend_from_slice(&(acc as u64).to_le_bytes()[..held.div_ceil(8) as usize]);
        if buf.len() >= ID_STAGE {
            out.write_all(&buf)?;
            crc.update(&buf);
            written += buf.len() as u64;
            buf.clear();
        }
    }
    // zeros to a length of 4 more than a multiple of 8 (offsets, count
    // and tag take 8k + 12 bytes)
    let len = written + buf.len() as u64;
    buf.resize(buf.len() + ((8 - len % 8) % 8) as usize, 0);
    for o in &offsets {
        buf.extend_from_slice(&o.to_le_bytes());
    }
    buf.extend_from_slice(&n.to_le_bytes());
    buf.extend_from_slice(&2u32.to_le_bytes());
    out.write_all(&buf)?;
    crc.update(&buf);
    written += buf.len() as u64;
    out.flush()?;
    Ok((written, crc.finalize(), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encode sorted, distinct ids as runs were written before packing.
    fn encode_plain(sorted: &[u64]) -> Vec<u8> {
        sorted.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// Encode sorted, distinct ids.
    fn encode_ids(sorted: &[u64]) -> Vec<u8> {
        let mut out = Vec::new();
        write_ids(&mut out, sorted.iter().copied()).unwrap();
        out
    }

    #[test]
    fn packed_runs_read_back_what_was_written() {
        let mut x = 1u64;
        let mut spread: Vec<u64> = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect();
        spread.sort_unstable();
        spread.dedup();
        for ids in [
            vec![],
            vec![5],
            vec![0, u64::MAX],
            (0..64).collect(),
            (0..65).collect(),
            spread,
        ] {
            for bytes in [encode_ids(&ids), encode_plain(&ids)] {
                let run = IdRun::parse(Bytes::Owned(bytes.clone())).unwrap();
                assert_eq!(run.len(), ids.len());
                assert!((0..ids.len()).all(|i| run.at(i) == ids[i]));
                assert_eq!(run.iter().collect::<Vec<_>>(), ids);
            }
        }
        let ids: Vec<u64> = (0..1000u64).map(|i| i << 40).collect();
        let packed = encode_ids(&ids);
        assert!(packed.len() < ids.len() * 7, "{} bytes", packed.len());
        // a length or an offset that does not fit is refused, not read (a
        // run cut by a multiple of 4 reads as plain hashes here: opening a
        // run checks its size against the manifest first)
        for cut in [1, 8, 13] {
            assert!(IdRun::parse(Bytes::Owned(packed[..packed.len() - cut].to_vec())).is_err());
        }
        for at in packed.len() - 12 - 8 * 16..packed.len() {
            let mut bad = packed.clone();
            bad[at] ^= 0x11;
            assert!(IdRun::parse(Bytes::Owned(bad)).is_err(), "byte {at}");
        }
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
            let bytes = if name == "plain" {
                encode_plain(ids)
            } else {
                encode_ids(ids)
            };
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
        let plain = run("plain", &[3, 9]);
        assert_eq!(merge_ids(&[&plain, &c], &[1]), [0, 1, 3, 4, 9, 11, u64::MAX]);
        assert_eq!((bytes, crc, n), (out.len() as u64, crc32fast::hash(&out), 9));
    }
}
