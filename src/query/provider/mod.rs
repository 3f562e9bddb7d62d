//! DataFusion `TableProvider`s over Weir's storage, one per kind of relation.

mod key_lookup;
mod source;
mod system;
mod table;
mod time_bound;
mod view;

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use futures::StreamExt;
pub use key_lookup::{KeyLookupExec, bind_parameters, has_key_parameters};
pub use source::SourceTable;
pub use system::ReadOnlyTable;
pub use table::ReferenceTable;
pub use view::{ViewRows, ViewTable};

use crate::storage::StorageError;

/// `schema` with every field nullable. Weir's stores check `NOT NULL` themselves, naming the
/// column in a 23502 error, so DataFusion's generic check must not fire first.
fn nullable(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ))
}

/// All of an `INSERT`'s rows as one batch: a statement is stored all or nothing.
async fn collect_statement(mut data: SendableRecordBatchStream) -> Result<RecordBatch> {
    let schema = data.schema();
    let mut batches = Vec::new();
    while let Some(batch) = data.next().await {
        batches.push(batch?);
    }
    Ok(concat_batches(&schema, &batches)?)
}

/// A scan of the batches `read` returns, read on a blocking thread (RocksDB does I/O).
async fn scan_blocking(
    schema: SchemaRef,
    projection: Option<&Vec<usize>>,
    read: impl FnOnce() -> std::result::Result<Vec<RecordBatch>, StorageError> + Send + 'static,
) -> Result<Arc<dyn ExecutionPlan>> {
    let batches = tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let exec = MemorySourceConfig::try_new_exec(&[batches], schema, projection.cloned())?;
    Ok(exec)
}
