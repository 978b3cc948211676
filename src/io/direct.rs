//! An output file written straight to the disk, past the page cache.
//!
//! Copying a large output into the page cache is not free: on the
//! machines we measure on (virtual ones), `write` of a 6 GB export cost
//! about 12 s of a core in the kernel's page copy, and buffered writes
//! reached 300-540 MB/s where direct ones reached 1.0-1.3 GB/s (`dd`,
//! 3.4 GB). An output is read by another program later, if at all, and is
//! synced to disk before it gets its name anyway, so keeping its pages
//! cached buys nothing.
//!
//! [`DirectWriter`] gathers what it is given into aligned chunks and hands
//! each full chunk to a thread of its own, which writes it with `O_DIRECT`
//! while more is gathered. The last bytes, less than a block, are written
//! through the page cache. Where the file system refuses `O_DIRECT` (a
//! tmpfs, say) or a write with it fails as unsupported, the same thread
//! writes through the page cache instead: never an error of its own.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes handed to the disk at once.
const CHUNK: usize = 8 << 20;
/// What the address, length and file offset of a direct write are aligned
/// to (the largest logical block size in common use).
const ALIGN: usize = 4096;
/// Chunks made at most: one being filled, one being written, one waiting.
const CHUNKS: usize = 3;

/// A buffer of [`CHUNK`] bytes starting at an [`ALIGN`]ed address.
struct Chunk {
    mem: Vec<u8>,
    start: usize,
    len: usize,
}

impl Chunk {
    fn new() -> Chunk {
        let mem = vec![0u8; CHUNK + ALIGN];
        let start = (ALIGN - mem.as_ptr() as usize % ALIGN) % ALIGN;
        Chunk { mem, start, len: 0 }
    }

    fn data(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }

    fn room(&mut self) -> &mut [u8] {
        &mut self.mem[self.start + self.len..self.start + CHUNK]
    }
}

/// The file, and whether it is being written past the page cache.
struct Disk {
    file: File,
    direct: bool,
}

impl Disk {
    /// `file`, switched to direct writes where the system allows them.
    fn new(file: File) -> Disk {
        let mut disk = Disk { file, direct: false };
        disk.direct = disk.set_direct(true).is_ok();
        disk
    }

    #[cfg(target_os = "linux")]
    fn set_direct(&mut self, on: bool) -> io::Result<()> {
        use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
        let flags = fcntl_getfl(&self.file)?;
        let flags = if on {
            flags | OFlags::DIRECT
        } else {
            flags - OFlags::DIRECT
        };
        fcntl_setfl(&self.file, flags)?;
        self.direct = on;
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn set_direct(&mut self, on: bool) -> io::Result<()> {
        if on {
            return Err(io::Error::from(io::ErrorKind::Unsupported));
        }
        self.direct = false;
        Ok(())
    }

    /// Write all of `bytes`; a direct write refused as unsupported (or
    /// cut short at an odd length) goes on through the page cache.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut done = 0;
        while done < bytes.len() {
            match self.file.write(&bytes[done..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.direct && is_unsupported(&e) => self.set_direct(false)?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Whether a direct write failed because the file, its system or the
/// request's alignment does not allow it.
fn is_unsupported(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) {
        return true;
    }
    e.kind() == io::ErrorKind::Unsupported
}

/// Run `write` on `file`, past the page cache unless `cached` (for a file
/// its next reader maps at once); returns what it gave and the file, every
/// byte written (not yet synced).
pub(crate) fn write_with<T>(
    file: File,
    cached: bool,
    write: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<(T, File)> {
    if cached {
        return Ok((write(&mut &file)?, file));
    }
    let mut direct = DirectWriter::new(file);
    let t = write(&mut direct)?;
    Ok((t, direct.finish()?))
}

/// A file written in large aligned chunks by a thread of its own, past the
/// page cache where the system allows. Nothing is on disk for sure until
/// [`DirectWriter::finish`], which returns the file for its fsync.
pub(crate) struct DirectWriter {
    chunk: Chunk,
    /// The file, until the writing thread starts (at the first full chunk).
    disk: Option<Disk>,
    /// Whether the file was switched to direct writes.
    direct: bool,
    full: Option<SyncSender<Chunk>>,
    empty: Option<Receiver<Chunk>>,
    thread: Option<JoinHandle<io::Result<Disk>>>,
    made: usize,
}

impl DirectWriter {
    pub(crate) fn new(file: File) -> DirectWriter {
        let disk = Disk::new(file);
        DirectWriter {
            chunk: Chunk::new(),
            direct: disk.direct,
            disk: Some(disk),
            full: None,
            empty: None,
            thread: None,
            made: 1,
        }
    }

    /// Whether the file's pages bypass the page cache (then a background
    /// fsync of what was written so far has nothing to do).
    pub(crate) fn is_direct(&self) -> bool {
        self.direct
    }

    /// Hand the full chunk to the writing thread and take an empty one.
    fn send(&mut self) -> io::Result<()> {
        if let Some(mut disk) = self.disk.take() {
            let (full, rx) = sync_channel::<Chunk>(1);
            let (back, empty) = channel::<Chunk>();
            self.thread = Some(std::thread::Builder::new().name("optscrub-write".into()).spawn(
                move || {
                    for mut c in rx {
                        disk.write(c.data())?;
                        c.len = 0;
                        let _ = back.send(c);
                    }
                    Ok(disk)
                },
            )?);
            self.full = Some(full);
            self.empty = Some(empty);
        }
        let next = match self.empty.as_ref().map(Receiver::try_recv) {
            Some(Ok(c)) => Some(c),
            _ if self.made < CHUNKS => {
                self.made += 1;
                Some(Chunk::new())
            }
            _ => self.empty.as_ref().and_then(|e| e.recv().ok()),
        };
        let sent = match next {
            Some(next) => {
                let full = std::mem::replace(&mut self.chunk, next);
                self.full.as_ref().is_some_and(|tx| tx.send(full).is_ok())
            }
            None => false,
        };
        if sent {
            Ok(())
        } else {
            // the thread stopped: its error says why
            Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("the output's writer stopped")))
        }
    }

    /// Stop the writing thread once it has written what it was sent.
    fn join(&mut self) -> io::Result<Disk> {
        self.full = None;
        match (self.thread.take(), self.disk.take()) {
            (Some(t), _) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the output's writer stopped"))),
            (None, Some(disk)) => Ok(disk),
            (None, None) => Err(io::Error::other("the output's writer stopped")),
        }
    }

    /// Write what is left and return the file, every byte written (not
    /// yet synced).
    pub(crate) fn finish(mut self) -> io::Result<File> {
        let mut disk = self.join()?;
        let data = self.chunk.data();
        let whole = data.len() / ALIGN * ALIGN;
        disk.write(&data[..whole])?;
        if disk.direct {
            disk.set_direct(false)?;
        }
        disk.write(&data[whole..])?;
        Ok(disk.file)
    }
}

impl Write for DirectWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.chunk.room();
        let n = room.len().min(buf.len());
        room[..n].copy_from_slice(&buf[..n]);
        self.chunk.len += n;
        if self.chunk.len == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    /// Nothing: a chunk goes to disk when it is full, the rest at
    /// [`DirectWriter::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn written(sizes: &[usize]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut w = DirectWriter::new(File::create(&path).unwrap());
        let mut all = Vec::new();
        let mut k = 0u32;
        for &n in sizes {
            let part: Vec<u8> = (0..n)
                .map(|_| {
                    k = k.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (k >> 16) as u8
                })
                .collect();
            w.write_all(&part).unwrap();
            all.extend_from_slice(&part);
        }
        let file = w.finish().unwrap();
        file.sync_all().unwrap();
        drop(file);
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), all.len());
        assert!(back == all, "the file differs from what was written");
        back
    }

    #[test]
    fn every_byte_comes_back_in_order_whatever_the_sizes() {
        written(&[]);
        written(&[1]);
        written(&[ALIGN - 1, 1, ALIGN + 1]);
        written(&[CHUNK]);
        written(&[CHUNK - 1, 2]);
        // more chunks than are ever made, in pieces that straddle them
        written(&[3_000_001; 12]);
        written(&[CHUNK * 5 + 17]);
    }

    #[test]
    fn a_file_that_refuses_direct_writes_is_written_through_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut disk = Disk::new(File::create(&path).unwrap());
        let was_direct = disk.direct;
        // a direct write from an odd address is refused (EINVAL): the
        // bytes must still all arrive, through the page cache
        let bytes = vec![7u8; ALIGN + 3];
        disk.write(&bytes[1..]).unwrap();
        if was_direct {
            assert!(!disk.direct, "the refused write did not switch to the page cache");
        }
        drop(disk);
        assert_eq!(std::fs::read(&path).unwrap(), &bytes[1..]);
    }
}
