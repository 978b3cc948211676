//! Reading input columns as text, whatever their Arrow type.
//!
//! The string layouts that tools hand over are read where they lie:
//! `string` (pyarrow, DuckDB, Spark, most Parquet), `large_string`
//! (pandas), `string_view` (Polars) and dictionaries of any of them with
//! any integer keys (Parquet read as dictionaries, Polars Categorical).
//! Other types (integers, say) are cast to text once.

use arrow::array::{Array, ArrayRef, AsArray, LargeStringArray, StringArray, StringViewArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;

use crate::util::fasthash::FastMap;

/// A text column, borrowed in its own layout or cast to `string`.
pub(crate) enum Text<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
    Cast(StringArray),
}

impl Text<'_> {
    /// Rows in the column.
    pub(crate) fn len(&self) -> usize {
        match self {
            Text::Utf8(a) => a.len(),
            Text::Large(a) => a.len(),
            Text::View(a) => a.len(),
            Text::Cast(a) => a.len(),
        }
    }

    /// The text of row `i` (`None` for null).
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&str> {
        match self {
            Text::Utf8(a) => (!a.is_null(i)).then(|| a.value(i)),
            Text::Large(a) => (!a.is_null(i)).then(|| a.value(i)),
            Text::View(a) => (!a.is_null(i)).then(|| a.value(i)),
            Text::Cast(a) => (!a.is_null(i)).then(|| a.value(i)),
        }
    }

    /// The column as a `string` array (a copy unless it is one).
    pub(crate) fn into_owned(self) -> StringArray {
        match self {
            Text::Utf8(a) => a.clone(),
            Text::Cast(a) => a,
            Text::Large(a) => (0..a.len())
                .map(|i| (!a.is_null(i)).then(|| a.value(i)))
                .collect(),
            Text::View(a) => (0..a.len())
                .map(|i| (!a.is_null(i)).then(|| a.value(i)))
                .collect(),
        }
    }
}

/// A column as text: borrowed when it is a string layout, else cast
/// (integers become their digits, dictionaries their values).
pub(crate) fn as_text(col: &ArrayRef) -> Result<Text<'_>, String> {
    match col.data_type() {
        DataType::Utf8 => return Ok(Text::Utf8(col.as_string::<i32>())),
        DataType::LargeUtf8 => return Ok(Text::Large(col.as_string::<i64>())),
        DataType::Utf8View => return Ok(Text::View(col.as_string_view())),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            return Err("binary data; expected text".into())
        }
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::ListView(_)
        | DataType::LargeListView(_)
        | DataType::FixedSizeList(_, _)
        | DataType::Struct(_)
        | DataType::Map(_, _) => {
            return Err(format!("{} values; expected text or integers", col.data_type()))
        }
        DataType::Dictionary(_, v)
            if matches!(
                **v,
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView
            ) =>
        {
            return Err("binary data; expected text".into())
        }
        _ => {}
    }
    let c = cast(col, &DataType::Utf8).map_err(|e| format!("{e}"))?;
    c.as_string_opt::<i32>()
        .cloned()
        .map(Text::Cast)
        .ok_or_else(|| "cannot be read as text".into())
}

/// The value of row `i`, `None` for null or empty after trimming.
#[inline]
pub(crate) fn cell<'t>(a: &'t Text<'_>, i: usize) -> Option<&'t str> {
    let v = a.get(i)?;
    // a value that starts with a visible ASCII character is not blank
    let visible = v.as_bytes().first().is_some_and(|b| b.is_ascii_graphic());
    (visible || !v.trim().is_empty()).then_some(v)
}

/// A dictionary-encoded text column, whatever its key type: each row's
/// value index (`None` for a null row), and the values as text.
pub(crate) struct Dict<'a> {
    /// Per row, the index into `values`.
    pub(crate) keys: Vec<Option<usize>>,
    /// The distinct values.
    pub(crate) values: Text<'a>,
}

/// `col` as a [`Dict`], when it is a dictionary.
pub(crate) fn as_dict(col: &ArrayRef) -> Result<Option<Dict<'_>>, String> {
    let Some(d) = col.as_any_dictionary_opt() else {
        return Ok(None);
    };
    let values = as_text(d.values())?;
    let keys = d.keys();
    let keys = d
        .normalized_keys()
        .into_iter()
        .enumerate()
        .map(|(i, k)| (!keys.is_null(i) && k < values.len()).then_some(k))
        .collect();
    Ok(Some(Dict { keys, values }))
}

/// A column's value per row, resolved once per distinct text: once per
/// dictionary value when the column is dictionary-encoded, else through a
/// small cache. Empty cells take `fallback`.
pub(crate) fn per_row<T: Copy>(
    col: &ArrayRef,
    fallback: T,
    resolve: impl Fn(&str) -> T,
) -> Result<Vec<T>, String> {
    if let Some(d) = as_dict(col)? {
        let table: Vec<T> = (0..d.values.len())
            .map(|v| cell(&d.values, v).map(&resolve).unwrap_or(fallback))
            .collect();
        return Ok(d
            .keys
            .iter()
            .map(|k| k.and_then(|k| table.get(k).copied()).unwrap_or(fallback))
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
