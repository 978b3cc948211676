//! Who may read and write a store. Every ledger file holds phone numbers,
//! and anyone who can write into the store can change who gets messaged
//! (the checksums catch damage, not intent). So, as PostgreSQL does with
//! its data directory and OpenSSH with its keys:
//!
//! - the store's folders are created `0700` and its files `0600`, whatever
//!   the umask;
//! - a store folder, subfolder or file that group or others may write
//!   stops every command (exit 2) with the fix;
//! - one that others may read is used, with a warning on stderr;
//! - a store owned by another user is refused to writers; readers may use
//!   it when they can read it.
//!
//! On systems without Unix modes, nothing is checked.

use std::path::Path;

use crate::error::{Error, Result};

/// Mode of the store's folders.
pub(super) const DIR_MODE: u32 = 0o700;
/// Mode of the store's files.
pub(super) const FILE_MODE: u32 = 0o600;

/// How a command uses a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Use {
    /// Reads only (`scrub`, `check`, `export`, `stats`).
    Read,
    /// Writes (takes the lock).
    Write,
}

/// Create a folder of the store (and its parents), `0700` whatever the
/// umask.
pub(super) fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| Error::io("cannot create", path, e))?;
    restrict(path, DIR_MODE)
}

/// Give a store file or folder its mode.
#[cfg(unix)]
pub(super) fn restrict(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("cannot set the mode of", path, e))
}

/// Give a store file or folder its mode (nothing to do here).
#[cfg(not(unix))]
pub fn restrict(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

/// Check the store at `dir`, its subfolders and their files, for `how`.
/// Returns a warning when others may read it (printed once per process
/// on stderr, too).
#[cfg(unix)]
pub(super) fn check(dir: &Path, how: Use) -> Result<Option<String>> {
    use std::os::unix::fs::MetadataExt;
    let Ok(top) = std::fs::metadata(dir) else {
        return Ok(None); // missing: opening it says so
    };
    if how == Use::Write && top.uid() != rustix::process::geteuid().as_raw() {
        return Err(Error::Unsafe(format!(
            "store {} belongs to another user (uid {}); only reading commands (scrub, check, export, stats) may use it: run writers as its owner",
            dir.display(),
            top.uid()
        )));
    }
    let mut readable: Option<(std::path::PathBuf, u32)> = None;
    let mut visit = |path: &Path, meta: &std::fs::Metadata| -> Result<()> {
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(Error::Unsafe(format!(
                "store {}: {} is writable by {} (mode {mode:04o}): anyone who can write there can change who gets messaged; run `chmod -R go-w {}`",
                dir.display(),
                path.display(),
                match (mode & 0o020 != 0, mode & 0o002 != 0) {
                    (true, true) => "its group and other users",
                    (true, false) => "its group",
                    _ => "other users",
                },
                dir.display()
            )));
        }
        if mode & 0o004 != 0 && readable.is_none() {
            readable = Some((path.to_path_buf(), mode));
        }
        Ok(())
    };
    visit(dir, &top)?;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        visit(&path, &meta)?;
        if meta.is_dir() {
            for inner in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                if let Ok(m) = std::fs::metadata(inner.path()) {
                    visit(&inner.path(), &m)?;
                }
            }
        }
    }
    Ok(readable.map(|(path, mode)| {
        let text = format!(
            "store {} is readable by other users ({} has mode {mode:04o}); it holds phone numbers: run `chmod -R go-rwx {}`",
            dir.display(),
            path.display(),
            dir.display()
        );
        warn_once(&text);
        text
    }))
}

/// Check the store at `dir` (nothing to check here).
#[cfg(not(unix))]
pub fn check(_dir: &Path, _how: Use) -> Result<Option<String>> {
    Ok(None)
}

fn warn_once(text: &str) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!("optscrub: warning: {text}");
    }
}
