//! Bringing rows to a relation's stored shape before they are written: each column cast to its
//! declared type, `NOT NULL` enforced with an error naming the column. Shared by tables and
//! source logs, so both refuse the same input the same way.

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use weir_catalog::ColumnDef;

use super::StorageError;

/// `batch` with `columns`' types, in `schema` (whose leading fields are `columns`).
/// Extra trailing fields of `schema` must be absent from `batch`; the caller adds them.
pub fn conform(
    batch: RecordBatch,
    relation: &str,
    columns: &[ColumnDef],
    schema: &SchemaRef,
) -> Result<RecordBatch, DataFusionError> {
    if batch.num_columns() != columns.len() {
        return Err(DataFusionError::Internal(format!(
            "relation \"{relation}\" has {} columns, got {}",
            columns.len(),
            batch.num_columns()
        )));
    }
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (column, (array, field)) in columns
        .iter()
        .zip(batch.columns().iter().zip(schema.fields()))
    {
        if !column.nullable && array.logical_null_count() > 0 {
            return Err(DataFusionError::External(Box::new(
                StorageError::NotNullViolation {
                    table: relation.to_string(),
                    column: column.name.clone(),
                },
            )));
        }
        arrays.push(if array.data_type() == field.data_type() {
            array.clone()
        } else {
            cast_with_options(array, field.data_type(), &options)?
        });
    }
    if arrays.len() == schema.fields().len() {
        Ok(RecordBatch::try_new(schema.clone(), arrays)?)
    } else {
        let leading = schema.project(&(0..arrays.len()).collect::<Vec<_>>())?;
        Ok(RecordBatch::try_new(std::sync::Arc::new(leading), arrays)?)
    }
}
