//! The writer lock: an OS file lock on `LOCK`, so that it dies with its
//! process (SPEC §4). Readers never take it.

use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a writer waits for another writer before giving up (seconds);
/// `OPTSCRUB_LOCK_WAIT` overrides it.
const LOCK_WAIT_SECS: u64 = 30;
/// How often a waiting writer retries the lock.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// The writer lock; released when dropped or when the process dies.
pub struct WriteLock {
    _file: File,
}

/// Take the writer lock of the store at `dir`, waiting up to
/// `OPTSCRUB_LOCK_WAIT` seconds (default 30) for another writer.
pub fn lock(dir: &Path) -> Result<WriteLock> {
    let path = dir.join("LOCK");
    let mut options = File::options();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, super::perms::FILE_MODE);
    let file = options
        .open(&path)
        .map_err(|e| Error::io("cannot open the lock file", &path, e))?;
    let wait = std::env::var("OPTSCRUB_LOCK_WAIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LOCK_WAIT_SECS);
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(WriteLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) if start.elapsed().as_secs() < wait => {
                std::thread::sleep(LOCK_POLL)
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked(format!(
                    "store {} is locked by another optscrub command (waited {wait} s); try again when it has finished",
                    dir.display()
                )))
            }
            Err(fs::TryLockError::Error(e)) => return Err(Error::io("cannot lock", &path, e)),
        }
    }
}
