//! A source as DataFusion sees it: scans read the source log; `INSERT` appends through the
//! same path as the HTTP collector (cast, `NOT NULL`, `_received_at`, one durable batch).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};

use super::time_bound::{TimeBound, pushdown};
use super::{collect_statement, nullable, scan_blocking};
use crate::storage::SourceLog;

/// An event source backed by its log.
#[derive(Debug)]
pub struct SourceTable {
    log: Arc<SourceLog>,
}

impl SourceTable {
    /// The provider over `log`.
    pub fn new(log: Arc<SourceLog>) -> Self {
        Self { log }
    }

    fn event_time_column(&self) -> Option<String> {
        self.log
            .event_time_column()
            .map(|i| self.log.def().columns[i].name.clone())
    }
}

#[async_trait]
impl TableProvider for SourceTable {
    fn schema(&self) -> SchemaRef {
        self.log.schema().clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Comparisons of the event-time column with a constant narrow which log entries are
    /// read; DataFusion still applies them to the rows (`Inexact`).
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(pushdown(filters, self.event_time_column().as_deref()))
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let TimeBound { lo, hi } = match self.event_time_column() {
            Some(column) => TimeBound::of(filters, &column),
            None => TimeBound::default(),
        };
        let log = self.log.clone();
        scan_blocking(self.schema(), projection, move || {
            log.scan_time_range(lo, hi).map(|(batches, _)| batches)
        })
        .await
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "INSERT {insert_op} into a source"
            )));
        }
        let sink = SourceSink::new(self.log.clone());
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

/// Collects an `INSERT`'s rows and appends them as one batch of events.
#[derive(Debug)]
struct SourceSink {
    log: Arc<SourceLog>,
    /// Every column nullable: the log names the column when it refuses a null.
    schema: SchemaRef,
}

impl SourceSink {
    fn new(log: Arc<SourceLog>) -> Self {
        Self {
            schema: nullable(log.schema()),
            log,
        }
    }
}

impl DisplayAs for SourceSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceSink: {}", self.log.def().name)
    }
}

#[async_trait]
impl DataSink for SourceSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let batch = collect_statement(data).await?;
        // `_received_at` is the server's to set, whatever the statement said.
        let declared = batch.project(&(0..self.log.def().columns.len()).collect::<Vec<_>>())?;
        let received_at_us = now_us();
        let log = self.log.clone();
        let appended =
            tokio::task::spawn_blocking(move || log.append_rows(declared, received_at_us))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))??;
        // Like Postgres' ON CONFLICT DO NOTHING, the count is of rows stored.
        Ok(appended.rows as u64)
    }
}

/// Microseconds since the epoch, now.
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
