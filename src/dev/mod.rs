//! Development tools built into the binary and the library: the synthetic
//! data generator behind `optscrub gen` (benchmarks, `plan`, the demo's
//! scale) and the checks the fuzz targets run. Not part of the library's
//! surface.

pub mod fuzzing;
pub mod gen;
