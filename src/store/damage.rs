//! What a user is told about a store file that cannot be used: why
//! ([`Fault`]: the system would not read it, or its bytes are wrong) and
//! what to do ([`Fix`]: rebuild it, or restore it from a backup).

use std::path::Path;

use crate::error::Error;

/// What to do about a damaged store file: the one wording of each remedy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fix {
    /// A derived file: recompile it from the ledger.
    Rebuild,
    /// A file nothing can recompile (the ledger, the manifest, pending
    /// replies).
    Restore,
}

impl Fix {
    /// The remedy, for the store at `dir` (`DIR` when the caller does not
    /// know it).
    pub(crate) fn say(self, dir: Option<&Path>) -> String {
        match self {
            Fix::Rebuild => format!(
                "run `optscrub rebuild --store {}` to recompile it from the ledger",
                dir.map_or_else(|| "DIR".to_string(), |d| d.display().to_string())
            ),
            Fix::Restore => "restore it from a backup".to_string(),
        }
    }
}

/// An error for a store file that cannot be used, with what to do.
pub(super) fn corrupt(dir: &Path, file: &str, why: &str, fix: Fix) -> Error {
    Error::Corrupt(format!(
        "store {}: {file} is damaged ({why}); {}",
        dir.display(),
        fix.say(Some(dir))
    ))
}

/// Why a store file cannot be used: the system would not read it, or its
/// bytes are not what the store wrote. The reading functions of the store's
/// file formats return it; `damaged` turns it into the error a user sees.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// Opening, reading or mapping the file failed.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are wrong, and how.
    #[error("{0}")]
    Bad(String),
}

impl From<String> for Fault {
    fn from(why: String) -> Fault {
        Fault::Bad(why)
    }
}

impl From<&str> for Fault {
    fn from(why: &str) -> Fault {
        Fault::Bad(why.to_string())
    }
}

impl Fault {
    /// As an `io::Error`, for a reader the parquet crate drives: a read
    /// the system refused keeps its kind.
    pub(crate) fn into_io(self) -> std::io::Error {
        match self {
            Fault::Io(e) => e,
            bad => std::io::Error::new(std::io::ErrorKind::InvalidData, bad.to_string()),
        }
    }
}

/// The error for a store file that cannot be used. A missing file or wrong
/// bytes are damage, with the remedy; any other refusal by the system
/// (permissions, an I/O error) keeps its cause, since rebuilding would not
/// help. Both stop the command with exit status 2.
pub(crate) fn damaged(dir: &Path, file: &str, fault: Fault, fix: Fix) -> Error {
    match fault {
        Fault::Io(e) if e.kind() != std::io::ErrorKind::NotFound => Error::StoreIo {
            context: format!("store {}: cannot read {file}", dir.display()),
            source: e,
        },
        fault => corrupt(dir, file, &fault.to_string(), fix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wrong bytes and a missing file are damage, with the remedy; a read
    /// the system refused keeps its cause and does not send the user to
    /// rebuild, and both stop with the store's exit status.
    #[test]
    fn a_refused_read_keeps_its_cause_and_damage_names_the_remedy() {
        use std::error::Error as _;
        use std::io::{Error as IoError, ErrorKind};
        let dir = Path::new("/s");
        let refused = damaged(
            dir,
            "probe/1.probe",
            IoError::from(ErrorKind::PermissionDenied).into(),
            Fix::Rebuild,
        );
        assert_eq!(refused.exit_code(), 2);
        let cause = refused
            .source()
            .and_then(|s| s.downcast_ref::<IoError>())
            .map(IoError::kind);
        assert_eq!(cause, Some(ErrorKind::PermissionDenied));
        let text = refused.to_string();
        assert!(
            text.starts_with("store /s: cannot read probe/1.probe: "),
            "{text}"
        );
        assert!(!text.contains("rebuild"), "{text}");

        let missing = damaged(
            dir,
            "probe/1.probe",
            IoError::from(ErrorKind::NotFound).into(),
            Fix::Rebuild,
        );
        assert_eq!(missing.exit_code(), 2);
        assert!(
            missing.to_string().contains("is damaged (cannot read: "),
            "{missing}"
        );
        assert!(missing
            .to_string()
            .ends_with("run `optscrub rebuild --store /s` to recompile it from the ledger"));

        let bad = damaged(dir, "ledger/1.parquet", "checksum mismatch".into(), Fix::Restore);
        assert_eq!(
            bad.to_string(),
            "store /s: ledger/1.parquet is damaged (checksum mismatch); restore it from a backup"
        );
    }
}
