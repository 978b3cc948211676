//! The bytes of a Parquet input, readable from many threads at once.
//!
//! The parquet crate's reader for `File` clones the handle and seeks it,
//! and clones share one file offset: two threads reading row groups of one
//! file would race. [`ByteSource`] reads with positional reads (`pread`), which
//! have no shared offset, so that row groups decode in parallel.

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use parquet::errors::{ParquetError, Result};
use parquet::file::reader::{ChunkReader, Length};

/// A Parquet file on disk or in memory; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) enum ByteSource {
    /// An open file and its length.
    File(Arc<File>, u64),
    /// Bytes held in memory.
    Bytes(Bytes),
}

impl ByteSource {
    /// An opened file.
    pub(crate) fn file(file: File) -> std::io::Result<ByteSource> {
        let len = file.metadata()?.len();
        Ok(ByteSource::File(Arc::new(file), len))
    }
}

impl Length for ByteSource {
    fn len(&self) -> u64 {
        match self {
            ByteSource::File(_, len) => *len,
            ByteSource::Bytes(b) => b.len() as u64,
        }
    }
}

/// Sequential reading from a position of a [`ByteSource`].
pub(crate) struct At {
    source: ByteSource,
    pos: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match &self.source {
            ByteSource::File(f, len) => {
                let room = len.saturating_sub(self.pos).min(buf.len() as u64) as usize;
                f.read_at(&mut buf[..room], self.pos)?
            }
            ByteSource::Bytes(b) => {
                let from = (self.pos.min(b.len() as u64)) as usize;
                let n = (b.len() - from).min(buf.len());
                buf[..n].copy_from_slice(&b[from..from + n]);
                n
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl ChunkReader for ByteSource {
    type T = BufReader<At>;

    fn get_read(&self, start: u64) -> Result<Self::T> {
        if start > self.len() {
            return Err(ParquetError::EOF(format!(
                "read at {start} past the end of a {}-byte file",
                self.len()
            )));
        }
        Ok(BufReader::new(At {
            source: self.clone(),
            pos: start,
        }))
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes> {
        let end = start.checked_add(length as u64).filter(|&e| e <= self.len());
        if end.is_none() {
            return Err(ParquetError::EOF(format!(
                "{length} bytes at {start} lie past the end of a {}-byte file",
                self.len()
            )));
        }
        match self {
            ByteSource::File(f, _) => {
                let mut buf = vec![0u8; length];
                f.read_exact_at(&mut buf, start)?;
                Ok(buf.into())
            }
            ByteSource::Bytes(b) => Ok(b.slice(start as usize..start as usize + length)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_from_any_position_without_a_shared_offset() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").expect("write");
        let disk = ByteSource::file(File::open(&path).expect("open")).expect("len");
        let mem = ByteSource::Bytes(Bytes::from_static(b"0123456789"));
        for s in [disk, mem] {
            let mut a = s.get_read(3).expect("read");
            let b = s.get_bytes(7, 2).expect("bytes");
            let mut text = String::new();
            a.read_to_string(&mut text).expect("to end");
            assert_eq!(text, "3456789");
            assert_eq!(&b[..], b"78");
            assert!(s.get_bytes(9, 2).is_err());
            assert!(s.get_read(11).is_err());
        }
    }
}
