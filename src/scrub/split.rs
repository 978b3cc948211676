//! The kept and suppressed outputs of a batch, from its decisions.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringBuilder};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{Reason, RowDecision, Scrubber};

/// The schema of the suppressed output: the input's plus `reason`, `scope`.
pub fn suppressed_schema(input: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("reason", DataType::Utf8, false));
    fields.push(Field::new("scope", DataType::Utf8, true));
    Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()))
}

/// Split a batch into kept rows and suppressed rows (with reason, scope).
/// Columns keep the types they were read with (text read as a dictionary
/// stays one: outputs write its keys, or cast it back to text).
pub fn split(
    batch: &RecordBatch,
    rows: &[RowDecision],
    scrubber: &Scrubber,
) -> Result<(RecordBatch, RecordBatch), arrow::error::ArrowError> {
    let keep: BooleanArray = rows.iter().map(|d| Some(d.reason.is_none())).collect();
    let drop: BooleanArray = rows.iter().map(|d| Some(d.reason.is_some())).collect();
    let kept = filter_record_batch(batch, &keep)?;
    let gone = filter_record_batch(batch, &drop)?;
    let n = gone.num_rows();
    let mut reason = StringBuilder::with_capacity(n, n * 14);
    let mut scope = StringBuilder::with_capacity(n, n * 8);
    for d in rows.iter().filter(|d| d.reason.is_some()) {
        reason.append_option(d.reason.map(Reason::as_str));
        scope.append_option(scrubber.scope_name(d.scope));
    }
    let mut cols: Vec<ArrayRef> = gone.columns().to_vec();
    cols.push(Arc::new(reason.finish()) as ArrayRef);
    cols.push(Arc::new(scope.finish()) as ArrayRef);
    let suppressed = RecordBatch::try_new(suppressed_schema(&gone.schema()), cols)?;
    Ok((kept, suppressed))
}
