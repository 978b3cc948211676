//! Reading input columns as text, whatever their Arrow type.

use std::borrow::Cow;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;

/// A column as UTF-8 strings: zero-copy when it already is, else cast
/// (integers become their digits, dictionaries their values).
pub fn as_text(col: &ArrayRef) -> Result<Cow<'_, StringArray>, String> {
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
pub fn cell(a: &StringArray, i: usize) -> Option<&str> {
    if a.is_null(i) {
        return None;
    }
    let v = a.value(i);
    (!v.trim().is_empty()).then_some(v)
}
