//! Files that appear under their final name only when complete: write to a
//! temporary name beside the target, fsync, rename, fsync the folder.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The temporary name used while `path` is being written.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// fsync a folder so that a rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("cannot sync folder", dir, e))
}

/// Write `bytes` to `path` atomically.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, None)
}

/// Write `bytes` to `path` atomically; with `mode`, the file has exactly
/// that Unix mode whatever the umask (store files), else the umask's.
pub(crate) fn write_atomic_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    write_atomic_as(path, bytes, mode, true)
}

/// [`write_atomic_mode`], past the page cache unless `cached` (see
/// `io::direct`): for a file no one reads soon after it is written.
pub(crate) fn write_atomic_as(path: &Path, bytes: &[u8], mode: Option<u32>, cached: bool) -> Result<()> {
    write_atomic_with(path, mode, cached, |w| w.write_all(bytes))
}

/// A file written atomically by `write`, as a stream: under a temporary
/// name with `mode`, past the page cache unless `cached`, fsynced, then
/// renamed into place.
pub(crate) fn write_atomic_with<T>(
    path: &Path,
    mode: Option<u32>,
    cached: bool,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<T>,
) -> Result<T> {
    let tmp = temp_path(path);
    let res = create(&tmp, mode).and_then(|f| {
        let (t, f) = crate::io::direct::write_with(f, cached, write)?;
        f.sync_all()?;
        Ok(t)
    });
    match res {
        Ok(t) => commit(&tmp, path).map(|()| t),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(Error::io("cannot write", path, e))
        }
    }
}

/// Create (or truncate) a file, with exactly `mode` when given.
pub(crate) fn create(path: &Path, mode: Option<u32>) -> std::io::Result<File> {
    let mut o = File::options();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if let Some(m) = mode {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        o.mode(m);
        let f = o.open(path)?;
        // the umask may have taken bits away; the mode is set as asked
        f.set_permissions(fs::Permissions::from_mode(m))?;
        return Ok(f);
    }
    let _ = mode;
    o.open(path)
}

/// Rename a finished temporary file to its final name and make it durable.
pub(crate) fn commit(tmp: &Path, path: &Path) -> Result<()> {
    if let Err(e) = fs::rename(tmp, path) {
        let _ = fs::remove_file(tmp);
        return Err(Error::io("cannot rename into place", path, e));
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// A file being written under a temporary name; removed on drop unless
/// [`PendingFile::commit`] was called.
pub(crate) struct PendingFile {
    tmp: PathBuf,
    path: PathBuf,
    done: bool,
}

impl PendingFile {
    /// Create the temporary file for `path`.
    pub(crate) fn create(path: &Path) -> Result<(PendingFile, File)> {
        let tmp = temp_path(path);
        let file = File::create(&tmp).map_err(|e| Error::io("cannot create", path, e))?;
        Ok((
            PendingFile {
                tmp,
                path: path.to_path_buf(),
                done: false,
            },
            file,
        ))
    }

    /// fsync `file` and move it under its final name (after the syncs of
    /// `syncer`, if it was given one).
    pub(crate) fn commit(self, file: File, syncer: Option<Syncer>) -> Result<()> {
        self.seal(file, syncer)?.commit()
    }
}

impl PendingFile {
    /// fsync `file` and leave it complete under its temporary name; the
    /// returned [`Sealed`] moves it into place (or removes it when dropped).
    pub(crate) fn seal(mut self, file: File, syncer: Option<Syncer>) -> Result<Sealed> {
        syncer
            .map_or(Ok(()), Syncer::finish)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("cannot write", &self.path, e))?;
        let bytes = file
            .metadata()
            .map_err(|e| Error::io("cannot write", &self.path, e))?
            .len();
        drop(file);
        self.done = true;
        Ok(Sealed {
            tmp: self.tmp.clone(),
            path: self.path.clone(),
            bytes,
            done: false,
        })
    }
}

/// A complete, durable file under its temporary name, waiting for
/// [`Sealed::commit`]; removed on drop unless committed or kept.
pub(crate) struct Sealed {
    tmp: PathBuf,
    path: PathBuf,
    bytes: u64,
    done: bool,
}

impl Sealed {
    /// The temporary name.
    pub(crate) fn temp(&self) -> &Path {
        &self.tmp
    }

    /// The final name.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Move it under its final name.
    pub(crate) fn commit(mut self) -> Result<()> {
        self.done = true;
        commit(&self.tmp, &self.path)
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes a file's pages to disk in the background while it is still being
/// written, so that the fsync before its rename has little left to do
/// (a 70 MB output took 0.2 s to fsync at the end, a seventh of a scrub).
/// Each [`Syncer::nudge`] asks for one more `fdatasync` of what has been
/// written so far; nudges that come while one runs are merged.
pub(crate) struct Syncer {
    /// A handle to the file, until the thread takes it at the first nudge
    /// (none: the final fsync does it all).
    file: Option<File>,
    tx: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Syncer {
    /// A syncer of the file being written; its thread starts at the first
    /// nudge, so an output that is never nudged costs none.
    pub(crate) fn new(file: &File) -> Syncer {
        Syncer {
            file: file.try_clone().ok(),
            tx: None,
            thread: None,
        }
    }

    /// Ask for what has been written so far to go to disk.
    pub(crate) fn nudge(&mut self) {
        if let Some(file) = self.file.take() {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            self.thread = std::thread::Builder::new()
                .name("optscrub-sync".into())
                .spawn(move || {
                    while rx.recv().is_ok() {
                        while rx.try_recv().is_ok() {}
                        file.sync_data()?;
                    }
                    Ok(())
                })
                .ok();
            self.tx = self.thread.as_ref().map(|_| tx);
        }
        if let Some(tx) = &self.tx {
            // a thread that has stopped reports its error at `finish`
            let _ = tx.send(());
        }
    }

    /// Wait for the background syncs; their first error, if any (an
    /// error a background fsync saw may not be seen again by the last).
    pub(crate) fn finish(mut self) -> std::io::Result<()> {
        self.tx = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(res)) => res,
            Some(Err(_)) => Err(std::io::Error::other("the background sync stopped")),
            None => Ok(()),
        }
    }
}
