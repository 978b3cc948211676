//! Reading inputs and writing outputs: CSV or Parquet by extension, folders
//! of parts, standard input, and files that appear only when complete.

pub(crate) mod atomic;
pub(crate) mod direct;
pub mod input;
pub(crate) mod output;
pub(crate) mod parquet;
