//! Checks of a Parquet file's metadata before the parquet crate trusts it.
//!
//! The crate (60.1) assumes its input is sound in places: it reserves
//! memory for counts a file claims before reading what they count, and
//! asserts that column chunks lie inside the file. A crafted file (every
//! case here was found by fuzzing) could abort the process that way. Each
//! check refuses such a file with an input error naming it.

use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::file::reader::Length;

use crate::error::{Error, Result};
use crate::io::parquet::source::ByteSource;

/// Walk the footer's encoding before the parquet crate decodes it (see
/// [`crate::io::parquet::footer`]). A file too short to have a footer, or whose
/// footer length points outside it, is left to the crate's own error.
pub(crate) fn check_footer(name: &str, file: &ByteSource) -> Result<()> {
    use parquet::file::reader::ChunkReader;
    let len = file.len();
    let Ok(tail) = file.get_bytes(len.saturating_sub(8), 8) else {
        return Ok(());
    };
    if len < 12 || tail.len() != 8 || &tail[4..] != b"PAR1" {
        return Ok(());
    }
    let footer_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    let Some(start) = len.checked_sub(8 + footer_len) else {
        return Ok(());
    };
    let Ok(footer) = file.get_bytes(start, footer_len as usize) else {
        return Ok(());
    };
    crate::io::parquet::footer::check(&footer).map_err(|why| {
        Error::Input(format!(
            "{name}: not a readable Parquet file (its footer is damaged: {why})"
        ))
    })
}

/// Every column chunk of a Parquet file must lie inside the file: the
/// reader asserts this deep inside and would panic on a hostile file.
pub(crate) fn check_chunks(
    name: &str,
    meta: &parquet::file::metadata::ParquetMetaData,
    file_len: u64,
) -> Result<()> {
    for (g, rg) in meta.row_groups().iter().enumerate() {
        for (c, col) in rg.columns().iter().enumerate() {
            let start = col.dictionary_page_offset().unwrap_or(col.data_page_offset());
            let inside = start >= 0
                && col.data_page_offset() >= 0
                && col.compressed_size() >= 0
                && (start as u64)
                    .checked_add(col.compressed_size() as u64)
                    .is_some_and(|end| end <= file_len);
            if !inside {
                return Err(Error::Input(format!(
                    "{name}: not a readable Parquet file (column {} of row group {} lies outside the file)",
                    c + 1,
                    g + 1
                )));
            }
        }
    }
    Ok(())
}

/// Walk every page header of these row groups before the parquet crate
/// does (see [`crate::io::parquet::footer::page_header`]): a header whose counts
/// cannot be true is refused, and so is a dictionary page that claims more
/// values than its size can hold (every value takes at least one bit, four
/// bytes for byte arrays and 32-bit numbers). The crate reserves memory for
/// a dictionary's claimed count before it reads it: fuzzing found a page
/// claiming two billion values, which made it reserve 8 GB. Nothing is
/// decompressed; a header this walk cannot follow is left to the crate.
pub(crate) fn check_pages(
    name: &str,
    source: &ByteSource,
    meta: &ArrowReaderMetadata,
    groups: &[usize],
) -> Result<()> {
    use crate::io::parquet::footer::{page_header, PageHeader};
    use parquet::basic::{Compression, Type};
    use parquet::file::reader::ChunkReader;
    /// Bytes read first to find one header (statistics of long text make
    /// headers of a few hundred bytes); a header that goes on is read again
    /// with 16 times more, up to `HEADER_MAX`, and one longer than that is
    /// refused (no writer makes one; the crate would follow it).
    const HEADER_READ: u64 = 16 << 10;
    const HEADER_MAX: u64 = 64 << 20;
    let file = meta.metadata();
    for &g in groups {
        let Some(rg) = file.row_groups().get(g) else {
            continue;
        };
        for col in rg.columns() {
            let min_bits: i64 = match col.column_type() {
                Type::BOOLEAN => 1,
                Type::INT32 | Type::FLOAT | Type::BYTE_ARRAY => 32,
                Type::INT64 | Type::DOUBLE => 64,
                Type::INT96 => 96,
                Type::FIXED_LEN_BYTE_ARRAY => 8,
            };
            // The most a codec can expand its input, with room to spare: the
            // crate reserves a page's claimed size before decompressing it
            // (fuzzing found 10 bytes of Snappy claiming 1.3 GB). Pages
            // stored plain are not decompressed; Brotli and LZO have no
            // useful bound.
            let max_ratio: Option<i64> = match col.compression() {
                Compression::SNAPPY => Some(64),                      // ~21x at most
                Compression::LZ4 | Compression::LZ4_RAW => Some(512), // ~255x
                Compression::GZIP(_) => Some(2048),                   // deflate ~1032x
                Compression::ZSTD(_) => Some(65536),                  // RLE blocks ~32768x
                _ => None,
            };
            let damaged = |why: String| {
                Error::Input(format!(
                    "{name}: row group {g}, column '{}': {why}; the file is damaged",
                    col.column_path().string()
                ))
            };
            let (start, len) = col.byte_range();
            let end = start.saturating_add(len).min(source.len());
            let mut at = start;
            while at < end {
                // The crate reads a header on past the end of its chunk.
                let left = source.len() - at;
                let mut read = HEADER_READ;
                let header = loop {
                    let Ok(bytes) = source.get_bytes(at, left.min(read) as usize) else {
                        break PageHeader::Lost;
                    };
                    match page_header(&bytes, left)
                        .map_err(|why| damaged(format!("a page header is damaged ({why})")))?
                    {
                        PageHeader::Short if read < HEADER_MAX => read *= 16,
                        PageHeader::Short => {
                            return Err(damaged(format!(
                                "a page header runs on past {} MiB",
                                HEADER_MAX >> 20
                            )))
                        }
                        header => break header,
                    }
                };
                match header {
                    PageHeader::Lost | PageHeader::Short => break,
                    PageHeader::Page {
                        header_len,
                        compressed,
                        uncompressed,
                        dict_values,
                    } => {
                        if compressed < 0 || uncompressed < 0 {
                            return Err(damaged("a page claims a negative size".into()));
                        }
                        if max_ratio
                            .is_some_and(|r| uncompressed > compressed.saturating_mul(r).saturating_add(1024))
                        {
                            return Err(damaged(format!(
                                "a page claims {uncompressed} bytes once decompressed from {compressed}"
                            )));
                        }
                        if let Some(n) = dict_values {
                            if n < 0 || n.saturating_mul(min_bits) > uncompressed.saturating_mul(8) {
                                return Err(damaged(format!(
                                    "its dictionary page claims {n} values in {uncompressed} bytes"
                                )));
                            }
                        }
                        at = at
                            .saturating_add(header_len as u64)
                            .saturating_add(compressed as u64);
                    }
                }
            }
        }
    }
    Ok(())
}
