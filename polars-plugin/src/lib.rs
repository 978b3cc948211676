//! optscrub as a Polars expression plugin: `reason(phone, account,
//! sender)` decides every row with the engine `optscrub scrub` runs (the
//! store opened once per process, reopened when its generation moves) and
//! returns why the row may not be messaged, null when it may.
//!
//! Polars hands the plugin its own Series; the three text columns are
//! copied into Arrow arrays for the engine (the only copy), and the
//! reasons are copied back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType as ArrowType, Field as ArrowField, Schema};
use optscrub::io::input::Dataset;
use optscrub::scrub::memory;
use optscrub::scrub::run::ScrubJob;
use polars::prelude::*;
use pyo3_polars::derive::polars_expr;
use serde::Deserialize;

/// The expression's keyword arguments.
#[derive(Deserialize)]
struct ReasonKwargs {
    /// The store (or unpacked bundle) folder.
    store: String,
    /// The account of rows whose account cell is null (`--account`).
    account: Option<String>,
    /// The sender of rows whose sender cell is null (`--sender`).
    sender: Option<String>,
    /// How national numbers are read (`--default-country`).
    default_country: Option<String>,
}

fn polars_error(e: impl std::fmt::Display) -> PolarsError {
    PolarsError::ComputeError(format!("optscrub: {e}").into())
}

/// A text Series as an Arrow array of `len` rows (a length-1 Series, a
/// literal, is repeated).
fn text(s: &Series, len: usize) -> PolarsResult<ArrayRef> {
    let s = if s.dtype() == &DataType::String {
        s.clone()
    } else {
        s.cast(&DataType::String)?
    };
    let ca = s.str()?;
    let array: StringArray = if ca.len() == 1 && len != 1 {
        let v = ca.get(0);
        (0..len).map(|_| v).collect()
    } else {
        ca.downcast_iter().flat_map(|a| a.iter()).collect()
    };
    Ok(Arc::new(array))
}

#[polars_expr(output_type=String)]
fn reason(inputs: &[Series], kwargs: ReasonKwargs) -> PolarsResult<Series> {
    let len = inputs.iter().map(|s| s.len()).max().unwrap_or(0);
    let name = inputs[0].name().clone();
    let mut job = ScrubJob::new(Vec::new(), PathBuf::new());
    job.account = kwargs.account;
    job.sender = kwargs.sender;
    job.keep_duplicates = true;
    job.country = optscrub::phone::parse_country(kwargs.default_country.as_deref()).map_err(polars_error)?;
    let columns = [&job.phone_column, &job.account_column, &job.sender_column];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| ArrowField::new(c.as_str(), ArrowType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays = inputs
        .iter()
        .take(3)
        .map(|s| text(s, len))
        .collect::<PolarsResult<Vec<_>>>()?;
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(polars_error)?;
    let opened = memory::current(Path::new(&kwargs.store)).map_err(polars_error)?;
    let data = Dataset::from_batches("the frame", schema, vec![batch.clone()]).map_err(polars_error)?;
    let cols = job.columns(&opened.store.config, &data).map_err(polars_error)?;
    let decided = memory::decide(&opened.scrubber, &[batch], &cols, "the frame").map_err(polars_error)?;
    let mut out: Vec<Option<&str>> = Vec::with_capacity(len);
    for b in &decided {
        let reasons = b.column(columns.len()).as_string::<i32>();
        out.extend(reasons.iter());
    }
    Ok(StringChunked::from_iter_options(name, out.into_iter()).into_series())
}

#[pyo3::pymodule]
fn _plugin(_m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    Ok(())
}
