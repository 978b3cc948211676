//! optscrub: a batch engine for the opt-out (suppression) side of an SMS /
//! WhatsApp messaging platform.
//!
//! The pipeline, one module per stage: [`phone`] and [`keywords`]
//! normalize; [`config`] holds the accounts; [`ingest`] turns evidence into
//! [`event`]s; [`store`] keeps the ledger and compiles roaring bitmaps;
//! [`scrub`] decides per recipient row over Arrow record batches; [`io`]
//! reads and writes CSV and Parquet; [`cmd`] is one file per subcommand.

// the domain: who may be messaged, and why
pub mod config;
pub mod event;
pub mod keywords;
pub mod lint;
pub mod matcher;
pub mod phone;

// the stages, each using the ones below it
#[doc(hidden)]
pub mod cmd;
pub mod ingest;
pub mod io;
pub(crate) mod nightly;
pub mod scrub;
pub mod store;

// what runs report, and what went wrong
pub mod error;
pub mod summary;

// helpers for Arrow columns, hashing and progress lines
pub(crate) mod util;

// test data and fuzz checks for development, not part of the library
#[doc(hidden)]
pub mod dev;

pub use error::{Error, Result};
