//! Read-only relations whose rows Weir produces: the system tables (`weir.dead_letters`,
//! `weir.late_events`, `weir.views`) and materialized views. One provider serves them all: a schema and a
//! function that reads the current rows from storage.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::scan_blocking;
use crate::storage::{DeadLetters, LateEvents, StorageError, late_events_schema};

/// Reads a relation's rows (blocking: RocksDB).
type Read = Arc<dyn Fn() -> std::result::Result<Vec<RecordBatch>, StorageError> + Send + Sync>;

/// A relation that queries can read but not write.
pub struct ReadOnlyTable {
    schema: SchemaRef,
    read: Read,
}

impl std::fmt::Debug for ReadOnlyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyTable")
            .field("schema", &self.schema)
            .finish()
    }
}

impl ReadOnlyTable {
    /// A relation of `schema` whose rows `read` returns.
    pub fn new(
        schema: SchemaRef,
        read: impl Fn() -> std::result::Result<Vec<RecordBatch>, StorageError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            schema,
            read: Arc::new(read),
        }
    }

    /// `weir.dead_letters`: every event refused at ingestion.
    pub fn dead_letters(letters: Arc<DeadLetters>) -> Self {
        Self {
            schema: letters.schema().clone(),
            read: Arc::new(move || letters.scan()),
        }
    }

    /// `weir.late_events`: every event a view set aside as late.
    pub fn late_events(events: Arc<LateEvents>) -> Self {
        Self {
            schema: late_events_schema(),
            read: Arc::new(move || events.scan()),
        }
    }
}

#[async_trait]
impl TableProvider for ReadOnlyTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let read = self.read.clone();
        scan_blocking(self.schema(), projection, move || read()).await
    }
}
