//! The Parquet layer: everything that depends on how the parquet crate
//! behaves, in one place. It mirrors **parquet 60.1** (arrow-rs): on an
//! upgrade, re-check each module here against the new crate (the guards'
//! fuzz corpus in `tests/fuzz` and the `dict_chunk` equality tests say
//! whether its assumptions still hold).
//!
//! - [`source`]: file bytes read by positioned reads, so that row groups
//!   decode on many threads at once.
//! - [`footer`] and [`guard`]: a file's footer and metadata checked before
//!   the crate trusts them (a crafted file must get an error, not abort).
//! - [`reader`]: a file opened, read in order or a few row groups at a
//!   time on any thread, and which text columns are read as dictionaries.
//! - [`dict_chunk`]: text column chunks written straight from dictionary
//!   keys, byte for byte what the crate would write, without its re-hashing.
//! - [`Encodings`]: which output columns are written plain or from keys.
//!
//! Reading a dataset (`io::input`) and writing one (`io::output`) use this
//! layer; it uses neither.

pub(crate) mod dict_chunk;
mod encodings;
pub(crate) mod footer;
pub(crate) mod guard;
pub(crate) mod reader;
pub(crate) mod source;

pub(crate) use encodings::Encodings;
