//! The library's error type and how each kind maps to an exit status.
//!
//! SPEC §7: exit 1 for bad input or usage, exit 2 when the store is locked,
//! corrupt or inconsistent. Messages name the file, row and column and what
//! was expected; they never carry a phone number in full.

use std::path::Path;

/// Everything that can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or an impossible combination of them (exit 1).
    #[error("{0}")]
    Usage(String),
    /// A file that cannot be read, lacks a column, or holds bad data (exit 1).
    #[error("{0}")]
    Input(String),
    /// A config that does not parse or is ambiguous (exit 1).
    #[error("{0}")]
    Config(String),
    /// Another process holds the store's writer lock (exit 2).
    #[error("{0}")]
    Locked(String),
    /// The store is damaged or inconsistent (exit 2).
    #[error("{0}")]
    Corrupt(String),
    /// The store's folder or files may be written by others, or belong to
    /// another user (exit 2).
    #[error("{0}")]
    Unsafe(String),
    /// A store file the system would not read (permissions, an I/O
    /// error): the store cannot be used, and the cause is kept (exit 2).
    #[error("{context}: {source}")]
    StoreIo {
        /// The store and the file.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An output that cannot be written (exit 1): the disk, the folder, or
    /// the encoder refused it. Nothing appears under the output's name.
    #[error("cannot write {}: {source}", path.display())]
    Output {
        /// The output's final name.
        path: std::path::PathBuf,
        /// Why: an `io::Error`, or the encoder's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A bug: something the code assumed could not happen (exit 1).
    #[error("internal error (a bug; please report it): {0}")]
    Internal(String),
    /// An operating-system error while writing outputs (exit 1).
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result with the library's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The process exit status for this error (SPEC §7).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Locked(_) | Error::Corrupt(_) | Error::Unsafe(_) | Error::StoreIo { .. } => 2,
            _ => 1,
        }
    }

    /// An output at `path` that cannot be written, and why.
    pub fn output(path: &Path, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error::Output {
            path: path.to_path_buf(),
            source: source.into(),
        }
    }

    /// An I/O error with the action and path it happened on.
    pub fn io(action: &str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            context: format!("{action} {}", path.display()),
            source,
        }
    }
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` with the panic message of this thread silenced (for third-party
/// code run under `catch_unwind`, whose panic becomes an error message).
pub fn quiet_panics<T>(f: impl FnOnce() -> T) -> T {
    let before = QUIET.with(|q| q.replace(true));
    let out = f();
    QUIET.with(|q| q.set(before));
    out
}

/// Install a panic hook that stays silent inside [`quiet_panics`] and
/// otherwise reports as usual.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if is_broken_pipe(info) {
            // `optscrub stats | head -1`: the reader has gone, as ripgrep
            // does, end quietly (print! reports a closed stdout by panicking)
            std::process::exit(0);
        }
        if !QUIET.with(|q| q.get()) {
            default(info);
        }
    }));
}

/// Is this the panic of `print!` on a stdout whose reader has gone?
fn is_broken_pipe(info: &std::panic::PanicHookInfo<'_>) -> bool {
    let msg = info
        .payload()
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| info.payload().downcast_ref::<&str>().copied())
        .unwrap_or("");
    msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe")
}
