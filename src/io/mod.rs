//! Reading inputs and writing outputs: CSV or Parquet by extension, folders
//! of parts, standard input, and files that appear only when complete.

pub mod atomic;
pub mod input;
pub mod output;
pub mod parquet;
