//! A materialized view as DataFusion sees it: its committed rows, read from RocksDB.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::scan_blocking;
use crate::storage::ViewStore;

/// A view's rows as a read-only relation.
#[derive(Debug)]
pub struct ViewTable {
    store: Arc<ViewStore>,
}

impl ViewTable {
    /// The provider over `store`.
    pub fn new(store: Arc<ViewStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl TableProvider for ViewTable {
    fn schema(&self) -> SchemaRef {
        self.store.schema().clone()
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
        let store = self.store.clone();
        scan_blocking(self.schema(), projection, move || Ok(vec![store.scan()?])).await
    }
}
