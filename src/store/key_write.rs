//! Writing key runs (the format is described in `store::keys`): a run is
//! written as a stream, a packed block at a time, with its blocks file
//! made on the way.

#[cfg(test)]
use super::keys::MAGIC;
use super::keys::{Entry, Header, ScopeName, PACKED};
use super::packed::{encode_block, MAX_BLOCK, PER_BLOCK};

/// Encode a key run from records sorted by key, each key once (for tests:
/// a store streams its runs to their files).
#[cfg(test)]
pub(crate) fn encode_keys(scopes: &[ScopeName], entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + entries.len() * 10);
    // writing to memory does not fail
    let _ = write_keys(&mut out, scopes, entries.iter().copied(), super::blocks::BLOCK);
    out
}

/// Encode a fixed run (as stores wrote them before packing), for tests of
/// how such runs are still read.
#[cfg(test)]
pub(crate) fn encode_fixed(scopes: &[ScopeName], entries: &[Entry]) -> Vec<u8> {
    let header = serde_json::to_vec(&Header {
        scopes: scopes.to_vec(),
    })
    .unwrap();
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    for e in entries {
        e.encode(&mut out);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A key run written as a stream.
pub(crate) struct WrittenRun {
    /// Bytes of the run.
    pub bytes: u64,
    /// Their CRC-32.
    pub crc32: u32,
    /// Records.
    pub rows: u64,
    /// Its blocks file (checksums of `block` bytes each).
    pub blocks: Vec<u8>,
}

/// Writes a file a `size`-byte block at a time, keeping each block's CRC
/// for its blocks file.
struct Chunked<W: std::io::Write> {
    out: W,
    table: super::blocks::Table,
    size: usize,
    pending: Vec<u8>,
    bytes: u64,
    /// When the table is fenced: the first key of each block so far (a
    /// packed block starts each one).
    fences: Option<Vec<(u64, u64)>>,
    /// Blocks written.
    written: usize,
}

impl<W: std::io::Write> Chunked<W> {
    /// Write the whole blocks among the pending bytes (all of them when
    /// `last`).
    fn flush(&mut self, last: bool) -> std::io::Result<()> {
        let whole = if last {
            self.pending.len()
        } else {
            self.pending.len() / self.size * self.size
        };
        for block in self.pending[..whole].chunks(self.size) {
            self.out.write_all(block)?;
            let fence = self
                .fences
                .as_ref()
                .map(|f| f.get(self.written).copied().unwrap_or((u64::MAX, u64::MAX)));
            self.table.push(crc32fast::hash(block), fence);
            self.written += 1;
        }
        self.bytes += whole as u64;
        self.pending.drain(..whole);
        Ok(())
    }
}

/// Write a key run from records sorted by key, each key once, with its
/// blocks file (checksums of `block` bytes each) made on the way: memory
/// is a block and the offsets of the run's packed blocks (8 bytes per 256
/// records), whatever the number of records.
///
/// When `block` can hold the largest packed block, no packed block
/// straddles two blocks of the blocks file (one that would is moved to the
/// next, the bytes between left zero): each of them then starts with a
/// packed block, whose first key the blocks file keeps, so that a lookup
/// (`check`) finds its block there and reads that block alone.
pub(crate) fn write_keys<W: std::io::Write>(
    out: W,
    scopes: &[ScopeName],
    entries: impl Iterator<Item = Entry>,
    block: usize,
) -> std::io::Result<WrittenRun> {
    use std::io::Write;
    let header = serde_json::to_vec(&Header {
        scopes: scopes.to_vec(),
    })
    .map_err(std::io::Error::other)?;
    let mut head = Vec::with_capacity(12 + header.len());
    head.extend_from_slice(PACKED);
    head.extend_from_slice(&(header.len() as u32).to_le_bytes());
    head.extend_from_slice(&header);
    let mut out = std::io::BufWriter::with_capacity(super::files::STREAM_BUFFER, out);
    out.write_all(&head)?;
    let mut body_crc = crc32fast::Hasher::new();
    body_crc.update(&head);
    let fenced = block >= MAX_BLOCK;
    let start = head.len() as u64;
    let mut w = Chunked {
        table: super::blocks::Table::new(block, head.len(), crc32fast::hash(&head), fenced),
        out,
        size: block.max(1),
        pending: Vec::with_capacity(block + MAX_BLOCK),
        bytes: start,
        fences: fenced.then(Vec::new),
        written: 0,
    };
    let mut offsets: Vec<u64> = Vec::new();
    let mut pack: Vec<Entry> = Vec::with_capacity(PER_BLOCK);
    let mut packed: Vec<u8> = Vec::with_capacity(MAX_BLOCK);
    let mut rows = 0u64;
    let mut entries = entries.peekable();
    while entries.peek().is_some() {
        pack.clear();
        pack.extend(entries.by_ref().take(PER_BLOCK));
        rows += pack.len() as u64;
        packed.clear();
        let number = u32::try_from(offsets.len()).map_err(|_| std::io::Error::other("too many records"))?;
        encode_block(number, &pack, &mut packed);
        let from = w.pending.len();
        if let Some(fences) = &mut w.fences {
            let into = (w.bytes + from as u64 - start) as usize % w.size;
            if into != 0 && packed.len() > w.size - into {
                w.pending.resize(from + w.size - into, 0);
            }
            if (w.bytes + w.pending.len() as u64 - start).is_multiple_of(w.size as u64) {
                fences.push(pack[0].key());
            }
        }
        offsets.push(w.bytes + w.pending.len() as u64);
        w.pending.extend_from_slice(&packed);
        body_crc.update(&w.pending[from..]);
        if w.pending.len() >= w.size {
            w.flush(false)?;
        }
    }
    let from = w.pending.len();
    for o in &offsets {
        w.pending.extend_from_slice(&o.to_le_bytes());
    }
    w.pending.extend_from_slice(&rows.to_le_bytes());
    body_crc.update(&w.pending[from..]);
    // the run's own CRC, and the manifest's (the whole file, that CRC too)
    let mut file_crc = body_crc.clone();
    let crc = body_crc.finalize().to_le_bytes();
    file_crc.update(&crc);
    w.pending.extend_from_slice(&crc);
    w.flush(true)?;
    w.out.flush()?;
    Ok(WrittenRun {
        bytes: w.bytes,
        crc32: file_crc.finalize(),
        rows,
        blocks: w.table.finish(),
    })
}
