//! optscrub: a batch engine for the opt-out (suppression) side of an SMS /
//! WhatsApp messaging platform.
//!
//! The pipeline, one module per stage: [`phone`] and [`keywords`]
//! normalize; [`config`] holds the accounts; [`ingest`] turns evidence into
//! [`event`]s; [`store`] keeps the ledger and compiles roaring bitmaps;
//! [`scrub`] decides per recipient row over Arrow record batches; [`io`]
//! reads and writes CSV and Parquet; [`cmd`] is one file per subcommand.

pub mod cmd;
pub mod columns;
pub mod config;
pub mod error;
pub mod event;
pub mod fasthash;
#[doc(hidden)]
pub mod fuzzing;
pub mod gen;
pub mod ingest;
pub mod io;
pub mod keywords;
pub mod matcher;
pub mod nightly;
pub mod phone;
pub mod progress;
pub mod report;
pub mod scrub;
pub mod store;
pub mod summary;

pub use error::{Error, Result};
