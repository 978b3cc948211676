//! Block checksums of a store file, kept beside it (`<file>.blocks`), so
//! that a reader who needs a few rows of a large file (`check`, asking for
//! one contact's events) verifies only the blocks it reads, not the whole
//! file. The manifest names the blocks file with its own size and CRC, as
//! it names every file; a file written before blocks files were kept is
//! verified whole, as before.
//!
//! ```text
//! OPTBLK01, block size (u32), blocks (u32), fenced (u32: 0 or 1),
//! then per block: CRC-32 (u32) and, when fenced, the block's first key
//! (two u64: a key run's scope hash and contact)
//! ```
//!
//! Blocks cover `body` bytes from `start` (a key run's records, aligned to
//! whole records; a ledger file from its first byte); the bytes before
//! `start` (a key run's header) are the first block's business of the
//! caller, checked with [`Checked::head`].

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::damage::Fault;

const MAGIC: &[u8; 8] = b"OPTBLK01";

/// Bytes per block of a blocks file.
pub(super) const BLOCK: usize = 1 << 16;

/// [`super::files::write_file_known`] of a file whose blocks start at its
/// first byte (a ledger file), with its blocks file (`<rel>.blocks`).
pub(super) fn write_file_blocked(
    dir: &Path,
    rel: &str,
    bytes: &[u8],
    rows: u64,
    crc32: u32,
) -> crate::error::Result<super::manifest::FileRef> {
    let table = encode(bytes, 0, BLOCK, None);
    let sidecar = write_blocks(dir, rel, &table)?;
    let mut r = super::files::write_file_known(dir, rel, bytes, rows, crc32)?;
    r.blocks = Some(sidecar);
    Ok(r)
}

/// Write the blocks file of the store file `rel`.
pub(super) fn write_blocks(
    dir: &Path,
    rel: &str,
    table: &[u8],
) -> crate::error::Result<Box<super::manifest::FileRef>> {
    super::files::write_file(dir, &super::layout::blocks_file(rel), table, 0).map(Box::new)
}

/// Reads the first key of a block of a sorted run.
pub(super) type Fence<'a> = &'a dyn Fn(&[u8]) -> (u64, u64);

/// Block checksums (and first keys) of a file.
pub(crate) struct Blocks {
    /// Bytes per block.
    pub size: usize,
    /// Where the blocks start in the file.
    pub start: usize,
    crcs: Vec<u32>,
    /// Each block's first key, when the file is a sorted run.
    pub fences: Vec<(u64, u64)>,
    /// CRC-32 of the bytes before `start`.
    head_crc: u32,
}

/// Encode the blocks file of `file`: blocks of `size` bytes from `start`,
/// with first keys read by `fence` when given.
pub(super) fn encode(file: &[u8], start: usize, size: usize, fence: Option<Fence<'_>>) -> Vec<u8> {
    let start = start.min(file.len());
    let mut table = Table::new(size, start, crc32fast::hash(&file[..start]), fence.is_some());
    for block in file[start..].chunks(size) {
        table.push(crc32fast::hash(block), fence.map(|f| f(block)));
    }
    table.finish()
}

/// A blocks file built a block at a time, for a file written as a stream.
pub(super) struct Table {
    out: Vec<u8>,
    count: u32,
}

impl Table {
    /// For blocks of `size` bytes from `start`, the bytes before having
    /// this CRC; `fenced` when each block will come with its first key.
    pub(super) fn new(size: usize, start: usize, head_crc: u32, fenced: bool) -> Table {
        let mut out = Vec::with_capacity(1 << 12);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(size as u32).to_le_bytes());
        out.extend_from_slice(&(start as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&u32::from(fenced).to_le_bytes());
        out.extend_from_slice(&head_crc.to_le_bytes());
        Table { out, count: 0 }
    }

    /// The next block's CRC and, for a fenced table, its first key.
    pub(super) fn push(&mut self, crc: u32, fence: Option<(u64, u64)>) {
        self.out.extend_from_slice(&crc.to_le_bytes());
        if let Some((a, b)) = fence {
            self.out.extend_from_slice(&a.to_le_bytes());
            self.out.extend_from_slice(&b.to_le_bytes());
        }
        self.count += 1;
    }

    /// The blocks file.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.out[16..20].copy_from_slice(&self.count.to_le_bytes());
        self.out
    }
}

impl Blocks {
    /// Decode a blocks file (its bytes already checked against the
    /// manifest) for a file of `file_len` bytes.
    pub(crate) fn decode(bytes: &[u8], file_len: usize) -> Result<Blocks, Fault> {
        let word = |i: usize| -> Result<u32, Fault> {
            bytes
                .get(i..i + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| "blocks file cut short".into())
        };
        if bytes.get(..8) != Some(&MAGIC[..]) {
            return Err("not a blocks file".into());
        }
        let size = word(8)? as usize;
        let start = word(12)? as usize;
        let count = word(16)? as usize;
        let fenced = word(20)? == 1;
        let head_crc = word(24)?;
        let each = if fenced { 20 } else { 4 };
        if size == 0
            || start > file_len
            || count != (file_len - start).div_ceil(size)
            || bytes.len() != 28 + count * each
        {
            return Err("blocks file does not fit its file".into());
        }
        let mut crcs = Vec::with_capacity(count);
        let mut fences = Vec::new();
        for i in 0..count {
            let at = 28 + i * each;
            crcs.push(word(at)?);
            if fenced {
                let u = |j: usize| -> Result<u64, Fault> {
                    Ok(u64::from(word(j)?) | (u64::from(word(j + 4)?) << 32))
                };
                fences.push((u(at + 4)?, u(at + 12)?));
            }
        }
        Ok(Blocks {
            size,
            start,
            crcs,
            fences,
            head_crc,
        })
    }
}

/// Checks a file's blocks against their CRCs, each the first time a read
/// covers it (a flag per block). The probe file (its table inside it) and
/// [`Checked`] files (their table beside them) both check through it.
pub(super) struct Verifier {
    size: usize,
    start: usize,
    end: usize,
    crcs: Vec<u32>,
    done: Vec<AtomicBool>,
}

impl Verifier {
    /// Blocks of `size` bytes from `start` to `end` with these CRCs;
    /// `trusted` when the bytes need no checking (built in memory).
    pub(super) fn new(size: usize, start: usize, end: usize, crcs: Vec<u32>, trusted: bool) -> Verifier {
        let done = crcs.iter().map(|_| AtomicBool::new(trusted)).collect();
        Verifier {
            size,
            start,
            end,
            crcs,
            done,
        }
    }

    /// Are blocks `first..=last` checked already (the fast path of a
    /// caller that numbers its blocks itself)?
    #[inline]
    pub(super) fn done(&self, first: usize, last: usize) -> bool {
        (first..=last).all(|b| self.done.get(b).is_some_and(|d| d.load(Ordering::Relaxed)))
    }

    /// The blocks bytes `r` of the file lie in (none for an empty range).
    #[inline]
    fn blocks_of(&self, r: &Range<usize>) -> Result<Option<(usize, usize)>, Fault> {
        if r.start < self.start || r.end > self.end || r.start > r.end {
            return Err("a read out of bounds".into());
        }
        if r.is_empty() {
            return Ok(None);
        }
        Ok(Some((
            (r.start - self.start) / self.size,
            (r.end - 1 - self.start) / self.size,
        )))
    }

    /// Check the blocks that bytes `r` of `data` (the whole file) lie in.
    #[inline]
    pub(super) fn check(&self, data: &[u8], r: Range<usize>) -> Result<(), Fault> {
        let Some((first, last)) = self.blocks_of(&r)? else {
            return Ok(());
        };
        for b in first..=last {
            let done = self.done.get(b).ok_or("a read out of bounds")?;
            if !done.load(Ordering::Relaxed) {
                let from = self.start + b * self.size;
                let to = (from + self.size).min(self.end);
                self.check_block(b, data.get(from..to).ok_or("a read out of bounds")?)?;
            }
        }
        Ok(())
    }

    /// Check block `b`, these bytes, and take it as checked.
    #[cold]
    fn check_block(&self, b: usize, block: &[u8]) -> Result<(), Fault> {
        if crc32fast::hash(block) != *self.crcs.get(b).ok_or("a read out of bounds")? {
            return Err(Fault::Bad(format!("block {b} checksum mismatch")));
        }
        if let Some(done) = self.done.get(b) {
            done.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The same blocks, none taken as checked.
    pub(super) fn untrusted(&self) -> Verifier {
        Verifier::new(self.size, self.start, self.end, self.crcs.clone(), false)
    }

    /// Check every block not checked yet, on all threads.
    pub(super) fn check_all(&self, data: &[u8]) -> Result<(), Fault> {
        use rayon::prelude::*;
        let Some((first, last)) = self.blocks_of(&(self.start..self.end))? else {
            return Ok(());
        };
        (first..last + 1)
            .into_par_iter()
            .with_min_len(64)
            .try_for_each(|b| {
                let from = self.start + b * self.size;
                self.check(data, from..(from + self.size).min(self.end))
            })
    }
}

/// A store file with its blocks: each block is verified the first time a
/// read covers it. Mapped for readers that go through much of it; read by
/// positioned reads for a few lookups (`check`), so that a lookup costs the
/// blocks it reads and not the pages the kernel maps around them (on this
/// machine a touch of a mapped file maps about 250 KB).
pub(crate) struct Checked {
    bytes: Backing,
    /// Its blocks.
    pub blocks: Blocks,
    verifier: Verifier,
}

/// Where a [`Checked`] file's bytes come from.
enum Backing {
    Mapped(memmap2::Mmap),
    Read(std::fs::File, usize),
}

impl Checked {
    /// Open a file of `bytes` bytes with its blocks, mapped or read.
    pub(crate) fn open_as(path: &Path, bytes: u64, blocks: Blocks, mapped: bool) -> Result<Checked, Fault> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        if len != bytes || len == 0 {
            return Err("wrong size".into());
        }
        let len = usize::try_from(len).map_err(|_| "too large to read".to_string())?;
        let bytes = if mapped {
            Backing::Mapped(super::files::map_file(&file, true)?)
        } else {
            Backing::Read(file, len)
        };
        let verifier = Verifier::new(blocks.size, blocks.start, len, blocks.crcs.clone(), false);
        Ok(Checked {
            bytes,
            blocks,
            verifier,
        })
    }

    /// Bytes of the file.
    pub(crate) fn len(&self) -> usize {
        match &self.bytes {
            Backing::Mapped(m) => m.len(),
            Backing::Read(_, len) => *len,
        }
    }

    /// Bytes `r` of a read file.
    fn read(file: &std::fs::File, r: Range<usize>) -> Result<Vec<u8>, Fault> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; r.len()];
        file.read_exact_at(&mut buf, r.start as u64)?;
        Ok(buf)
    }

    /// The bytes before the blocks, verified.
    pub(crate) fn head(&self) -> Result<Cow<'_, [u8]>, Fault> {
        let head = match &self.bytes {
            Backing::Mapped(m) => Cow::Borrowed(&m[..self.blocks.start]),
            Backing::Read(f, _) => Cow::Owned(Checked::read(f, 0..self.blocks.start)?),
        };
        if crc32fast::hash(&head) != self.blocks.head_crc {
            return Err("checksum mismatch in its header".into());
        }
        Ok(head)
    }

    /// Bytes `r` of the file (from the blocks' start on), every block they
    /// touch verified.
    pub(crate) fn range(&self, r: Range<usize>) -> Result<Cow<'_, [u8]>, Fault> {
        let f = match &self.bytes {
            Backing::Mapped(m) => {
                self.verifier.check(m, r.clone())?;
                return Ok(Cow::Borrowed(&m[r]));
            }
            Backing::Read(f, _) => f,
        };
        let v = &self.verifier;
        let Some((first, last)) = v.blocks_of(&r)? else {
            return Ok(Cow::Owned(Vec::new()));
        };
        if v.done(first, last) {
            return Checked::read(f, r).map(Cow::Owned);
        }
        // the whole blocks, to verify them, then the bytes asked for
        let from = v.start + first * v.size;
        let to = (v.start + (last + 1) * v.size).min(v.end);
        let mut blocks = Checked::read(f, from..to)?;
        for (k, block) in blocks.chunks(v.size).enumerate() {
            v.check_block(first + k, block)?;
        }
        blocks.truncate(r.end - from);
        blocks.drain(..r.start - from);
        Ok(Cow::Owned(blocks))
    }
}

/// A [`Checked`] file as the parquet crate reads it: every byte range it
/// asks for is verified first.
#[derive(Clone)]
pub(super) struct CheckedSource(std::sync::Arc<Checked>);

impl CheckedSource {
    /// Read this file through its blocks.
    pub(super) fn new(file: Checked) -> CheckedSource {
        CheckedSource(std::sync::Arc::new(file))
    }
}

impl parquet::file::reader::Length for CheckedSource {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
}

/// A [`CheckedSource`] read on from a place: each read verifies (and
/// copies) only the bytes it returns, so that a page header read from the
/// middle of a large file costs the header, not the rest of the file.
pub(super) struct CheckedRead {
    file: std::sync::Arc<Checked>,
    at: usize,
}

impl std::io::Read for CheckedRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let end = self.at.saturating_add(buf.len()).min(self.file.len());
        if end <= self.at {
            return Ok(0);
        }
        let bytes = self.file.range(self.at..end).map_err(Fault::into_io)?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        self.at = end;
        Ok(bytes.len())
    }
}

impl parquet::file::reader::ChunkReader for CheckedSource {
    type T = CheckedRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let at =
            usize::try_from(start).map_err(|_| parquet::errors::ParquetError::EOF("out of range".into()))?;
        Ok(CheckedRead {
            file: self.0.clone(),
            at,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        let from =
            usize::try_from(start).map_err(|_| parquet::errors::ParquetError::EOF("out of range".into()))?;
        self.0
            .range(from..from.saturating_add(length))
            .map(|b| match b {
                Cow::Borrowed(b) => bytes::Bytes::copy_from_slice(b),
                Cow::Owned(v) => bytes::Bytes::from(v),
            })
            .map_err(|f| parquet::errors::ParquetError::External(Box::new(f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_verified_by_the_blocks_they_touch() {
        // mapped, and read by positioned reads
        for mapped in [true, false] {
            verified_reads(mapped);
        }
    }

    fn verified_reads(mapped: bool) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let path = dir.path().join("f");
        let fence = |b: &[u8]| (u64::from(b[0]), u64::from(b[1]));
        let table = encode(&file, 100, 1000, Some(&fence));
        let blocks = Blocks::decode(&table, file.len()).expect("decode");
        assert_eq!(blocks.fences.len(), 40);
        assert_eq!(blocks.fences[1], (u64::from(file[1100]), u64::from(file[1101])));
        let mut bad = file.clone();
        bad[5500] ^= 1;
        std::fs::write(&path, &bad).expect("write");
        let c = Checked::open_as(&path, bad.len() as u64, blocks, mapped).expect("open");
        assert_eq!(&*c.head().expect("head"), &file[..100]);
        assert_eq!(&*c.range(100..1100).expect("sound"), &file[100..1100]);
        assert_eq!(&*c.range(6100..9000).expect("sound"), &file[6100..9000]);
        // a block checked once is read again as it is
        assert_eq!(&*c.range(6150..6160).expect("sound"), &file[6150..6160]);
        assert!(c.range(5000..5200).is_err(), "block 5 holds the flip");
        assert!(c.range(5000..5200).is_err(), "and is refused every time");
        assert!(c.range(1050..5101).is_err());
        assert!(c.range(0..10).is_err(), "the head is read with head()");
        assert!(c.range(39_000..40_001).is_err(), "past the end");
        assert!(Blocks::decode(&table, file.len() + 1000).is_err());
        // read on from a place: only what is read is checked
        use parquet::file::reader::ChunkReader;
        use std::io::Read;
        let src = CheckedSource::new(c);
        let mut four = [0u8; 4];
        src.get_read(1000)
            .expect("read")
            .read_exact(&mut four)
            .expect("sound");
        assert_eq!(four, file[1000..1004]);
        let mut rest = Vec::new();
        assert!(src.get_read(5000).expect("read").read_to_end(&mut rest).is_err());
        rest.clear();
        src.get_read(39_990)
            .expect("read")
            .read_to_end(&mut rest)
            .expect("sound");
        assert_eq!(rest, file[39_990..]);
        assert!(Blocks::decode(&table[..table.len() - 1], file.len()).is_err());
    }
}
