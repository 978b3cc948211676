//! Reading and writing the store's files: every file written once under a
//! fresh name with the store's mode and described by its size and CRC-32;
//! read back verified against that description, whole, mapped or as
//! Parquet events; errors that name the file and the remedy.

use std::fs;
use std::path::Path;

use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::damage::{corrupt, damaged, Fix};
use super::layout::Kind;
use super::manifest::FileRef;
use super::perms;
use super::rows::NewRows;
use crate::error::{Error, Result};
use crate::event::{self, Event};
use crate::io::atomic::write_atomic_as;

/// Bytes per piece of a [`crc32`] spread over threads.
const CRC_PIECE: usize = 4 << 20;

/// The CRC-32 of `data`, the same as `crc32fast::hash`: large files are
/// hashed a piece per thread and the pieces' CRCs combined, so that
/// verifying a store file of gigabytes uses every core.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    use rayon::prelude::*;
    if data.len() <= CRC_PIECE {
        return crc32fast::hash(data);
    }
    data.par_chunks(CRC_PIECE)
        .map(|piece| {
            let mut h = crc32fast::Hasher::new();
            h.update(piece);
            h
        })
        .reduce_with(|mut a, b| {
            a.combine(&b);
            a
        })
        .map_or_else(|| crc32fast::hash(&[]), crc32fast::Hasher::finalize)
}

/// Write one store file under a fresh name and describe it.
pub(super) fn write_file(dir: &Path, rel: &str, bytes: &[u8], rows: u64) -> Result<FileRef> {
    write_file_known(dir, rel, bytes, rows, crc32fast::hash(bytes))
}

/// [`write_file`] of bytes whose CRC-32 the caller has worked out.
pub(super) fn write_file_known(
    dir: &Path,
    rel: &str,
    bytes: &[u8],
    rows: u64,
    crc32: u32,
) -> Result<FileRef> {
    // a store file is read at the next ingest or lookup, if ever, not at
    // once: past the page cache (the probe, which is, is streamed)
    write_atomic_as(&dir.join(rel), bytes, Some(perms::FILE_MODE), false)?;
    Ok(FileRef {
        file: rel.to_string(),
        bytes: bytes.len() as u64,
        crc32,
        rows,
        blocks: None,
    })
}

/// Map a store file read-only; `random` for files read at random (no
/// read-ahead). The one place the store maps files.
pub(super) fn map_file(file: &fs::File, random: bool) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: store files are written once under a fresh name and never
    // modified in place (a commit writes a new generation, and the old
    // files are removed only when no manifest names them), so the mapped
    // bytes do not change while a map is held. Every reader checks the
    // file's size before it reads.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(file) }?;
    #[cfg(unix)]
    if random {
        let _ = map.advise(memmap2::Advice::Random);
    }
    Ok(map)
}

/// Rows per row group of the store's Parquet files (ledger, outbox).
pub(super) const GROUP_ROWS: usize = 1 << 20;

/// Events encoded per Arrow batch (one thread's share of a ledger file).
pub(super) const LEDGER_BATCH_ROWS: usize = 1 << 16;
/// Rows per data page of a ledger file.
const LEDGER_PAGE_ROWS: usize = 4096;

/// Bytes buffered by a store file written or read as a stream.
pub(super) const STREAM_BUFFER: usize = 1 << 20;

/// The generation of a ledger file, from its name (`ledger/<gen>.parquet`).
pub(super) fn ledger_generation(r: &FileRef) -> Option<u32> {
    Kind::Ledger.generation_of(&r.file)
}

/// Read a store file whole and check its size and checksum.
pub(super) fn read_verified(dir: &Path, r: &FileRef, fix: Fix) -> Result<Bytes> {
    let path = dir.join(&r.file);
    let bytes = fs::read(&path).map_err(|e| damaged(dir, &r.file, e.into(), fix))?;
    if bytes.len() as u64 != r.bytes {
        return Err(corrupt(dir, &r.file, "wrong size", fix));
    }
    if crc32(&bytes) != r.crc32 {
        return Err(corrupt(dir, &r.file, "checksum mismatch", fix));
    }
    Ok(Bytes::from(bytes))
}

/// Check a store file's size and checksum, reading it a piece at a time.
pub(super) fn check_file(dir: &Path, r: &FileRef, fix: Fix) -> Result<()> {
    use std::io::Read;
    let cannot = |e: std::io::Error| damaged(dir, &r.file, e.into(), fix);
    let mut f = fs::File::open(dir.join(&r.file)).map_err(cannot)?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; STREAM_BUFFER];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(cannot)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        bytes += n as u64;
    }
    if bytes != r.bytes {
        return Err(corrupt(dir, &r.file, "wrong size", fix));
    }
    if h.finalize() != r.crc32 {
        return Err(corrupt(dir, &r.file, "checksum mismatch", fix));
    }
    Ok(())
}

pub(super) fn read_events(dir: &Path, r: &FileRef, fix: Fix) -> Result<Vec<Event>> {
    decode_events(dir, r, read_verified(dir, r, fix)?, fix)
}

/// The events of a ledger file's bytes (already verified).
pub(super) fn decode_events(dir: &Path, r: &FileRef, bytes: Bytes, fix: Fix) -> Result<Vec<Event>> {
    let bad = |why: String| corrupt(dir, &r.file, &why, fix);
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|b| b.build())
        .map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::with_capacity(r.rows as usize);
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        event::from_batch(&batch, &mut out).map_err(bad)?;
    }
    Ok(out)
}

/// A ledger file of these rows.
pub(super) fn rows_to_parquet(rows: &impl NewRows) -> Result<Vec<u8>> {
    use rayon::prelude::*;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        // no min/max statistics: nothing reads them (a lookup finds its
        // rows through the offset index, which is still written), and
        // they cost a comparison a value
        .set_statistics_enabled(EnabledStatistics::None)
        // `check` decompresses the pages that hold a contact's few events:
        // small pages keep that to a few kilobytes a column
        .set_data_page_row_count_limit(LEDGER_PAGE_ROWS)
        .set_write_batch_size(LEDGER_PAGE_ROWS);
    // columns of (nearly) distinct values get no dictionary: it would be
    // given up after a megabyte anyway, and a reader of one row would
    // decompress that megabyte first
    let props = ["event_id", "contact"]
        .into_iter()
        .fold(props, |p, c| p.set_column_dictionary_enabled(c.into(), false))
        .build();
    // one row group's batches at a time: the rows are in memory already,
    // their Arrow copy need not be whole too
    let len = rows.len();
    let groups = (0..len).step_by(GROUP_ROWS).map(|group| {
        let end = len.min(group + GROUP_ROWS);
        let batches: Vec<_> = (group..end)
            .into_par_iter()
            .step_by(LEDGER_BATCH_ROWS)
            .map(|from| rows.batch(from..end.min(from + LEDGER_BATCH_ROWS)))
            .collect();
        Ok(std::borrow::Cow::Owned(batches))
    });
    // an import's ledger file takes about 14 bytes a row, one of replies
    // more: 32 covers them, and what the file does not fill is never
    // touched
    crate::io::output::parquet_bytes_by_group(event::schema(), props, groups, len.saturating_mul(32))
        .map_err(|e| Error::Internal(format!("cannot encode events: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crc_in_pieces_is_the_crc_of_the_whole() {
        let data: Vec<u8> = (0..3 * CRC_PIECE + 12_345)
            .map(|i| (i * 7 + i / 977) as u8)
            .collect();
        for n in [
            0,
            1,
            CRC_PIECE - 1,
            CRC_PIECE,
            CRC_PIECE + 1,
            2 * CRC_PIECE,
            data.len(),
        ] {
            assert_eq!(crc32(&data[..n]), crc32fast::hash(&data[..n]), "{n} bytes");
        }
    }
}
