//! System tables: Weir's own records, read-only (`weir.dead_letters`, `weir.late_events`).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::scan_blocking;
use crate::storage::{DeadLetters, LateEvents, late_events_schema};

/// `weir.dead_letters`: every event refused at ingestion.
#[derive(Debug)]
pub struct DeadLetterTable {
    letters: Arc<DeadLetters>,
}

impl DeadLetterTable {
    /// The table over `letters`.
    pub fn new(letters: Arc<DeadLetters>) -> Self {
        Self { letters }
    }
}

#[async_trait]
impl TableProvider for DeadLetterTable {
    fn schema(&self) -> SchemaRef {
        self.letters.schema().clone()
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
        let letters = self.letters.clone();
        scan_blocking(self.schema(), projection, move || letters.scan()).await
    }
}

/// `weir.late_events`: every event a view set aside as late.
#[derive(Debug)]
pub struct LateEventTable {
    events: Arc<LateEvents>,
}

impl LateEventTable {
    /// The table over `events`.
    pub fn new(events: Arc<LateEvents>) -> Self {
        Self { events }
    }
}

#[async_trait]
impl TableProvider for LateEventTable {
    fn schema(&self) -> SchemaRef {
        late_events_schema()
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
        let events = self.events.clone();
        scan_blocking(self.schema(), projection, move || events.scan()).await
    }
}
