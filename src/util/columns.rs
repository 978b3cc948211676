//! Reading input columns as text, whatever their Arrow type.

use std::borrow::Cow;

use arrow::array::{Array, ArrayRef, DictionaryArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int32Type};

use crate::util::fasthash::FastMap;

/// A column as UTF-8 strings: zero-copy when it already is, else cast
/// (integers become their digits, dictionaries their values).
pub(crate) fn as_text(col: &ArrayRef) -> Result<Cow<'_, StringArray>, String> {
    if let Some(s) = col.as_any().downcast_ref::<StringArray>() {
        return Ok(Cow::Borrowed(s));
    }
    match col.data_type() {
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            return Err("binary data; expected text".into())
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::Struct(_) | DataType::Map(_, _) => {
            return Err(format!("{} values; expected text or integers", col.data_type()))
        }
        _ => {}
    }
    let c = cast(col, &DataType::Utf8).map_err(|e| format!("{e}"))?;
    c.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .map(Cow::Owned)
        .ok_or_else(|| "cannot be read as text".into())
}

/// The value of row `i`, `None` for null or empty after trimming.
pub(crate) fn cell(a: &StringArray, i: usize) -> Option<&str> {
    if a.is_null(i) {
        return None;
    }
    let v = a.value(i);
    // a value that starts with a visible ASCII character is not blank
    let visible = v.as_bytes().first().is_some_and(|b| b.is_ascii_graphic());
    (visible || !v.trim().is_empty()).then_some(v)
}

/// A column's value per row, resolved once per distinct text: once per
/// dictionary value when the column is dictionary-encoded, else through a
/// small cache. Empty cells take `fallback`.
pub(crate) fn per_row<T: Copy>(
    col: &ArrayRef,
    fallback: T,
    resolve: impl Fn(&str) -> T,
) -> Result<Vec<T>, String> {
    if let Some(d) = col.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
        let values = as_text(d.values())?;
        let table: Vec<T> = (0..values.len())
            .map(|v| cell(&values, v).map(&resolve).unwrap_or(fallback))
            .collect();
        return Ok(d
            .keys()
            .iter()
            .map(|k| k.and_then(|k| table.get(k as usize).copied()).unwrap_or(fallback))
            .collect());
    }
    let text = as_text(col)?;
    let mut cache: FastMap<&str, T> = FastMap::default();
    Ok((0..col.len())
        .map(|i| match cell(&text, i) {
            Some(v) => *cache.entry(v).or_insert_with(|| resolve(v)),
            None => fallback,
        })
        .collect())
}

/// A batch with its columns cast to `schema`'s types (dictionary columns
/// read by [`crate::io::input::Dataset::open_dict`] back to text); unchanged when they match.
pub(crate) fn conform(
    batch: arrow::array::RecordBatch,
    schema: &arrow::datatypes::SchemaRef,
) -> std::result::Result<arrow::array::RecordBatch, arrow::error::ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let cols = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                arrow::compute::cast(c, f.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    arrow::array::RecordBatch::try_new(schema.clone(), cols)
}
