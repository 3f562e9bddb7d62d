//! DataFusion `TableProvider`s over Weir's storage, one per kind of relation.

mod source;
mod system;
mod table;

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_plan::ExecutionPlan;
pub use source::SourceTable;
pub use system::DeadLetterTable;
pub use table::ReferenceTable;

use crate::storage::StorageError;

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
