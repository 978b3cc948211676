//! How a Parquet output's columns are encoded: chosen from the input's
//! column chunks (see `io::input`), followed by `io::output`.

/// How the columns of a Parquet output are encoded, by name.
#[derive(Clone, Debug, Default)]
pub struct Encodings {
    /// Written without a dictionary: for columns of (nearly) distinct
    /// values, such as phone numbers, a dictionary is work that the writer
    /// throws away.
    pub plain: Vec<String>,
    /// Text columns that arrive as dictionary arrays: written from their
    /// keys by [`super::dict_chunk::DictChunk`], each distinct value looked up once.
    pub dict: Vec<String>,
}
