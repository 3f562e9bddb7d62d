//! A materialized view as DataFusion sees it: its committed rows. Rows are keyed by group key,
//! so a view grouped by its window first reads only the windows a `window_start` (or
//! `window_end`) filter asks for.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::scan_blocking;
use super::time_bound::{TimeBound, pushdown};
use crate::storage::ViewStore;

/// A view's rows.
#[derive(Debug)]
pub struct ViewTable {
    store: Arc<ViewStore>,
    /// The output column whose values lead the row keys, when it is a timestamp.
    leading_time: Option<String>,
}

impl ViewTable {
    /// The provider over `store`; `leading_time` names the timestamp column rows are keyed by
    /// first, if there is one.
    pub fn new(store: Arc<ViewStore>, leading_time: Option<String>) -> Self {
        Self {
            store,
            leading_time,
        }
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

    /// Comparisons of the leading time column with constants narrow the key range read;
    /// DataFusion still applies them to the rows (`Inexact`).
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(pushdown(filters, self.leading_time.as_deref()))
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let TimeBound { lo, hi } = match &self.leading_time {
            Some(column) => TimeBound::of(filters, column),
            None => TimeBound::default(),
        };
        let store = self.store.clone();
        scan_blocking(self.schema(), projection, move || {
            Ok(vec![store.scan_leading_time(lo, hi)?])
        })
        .await
    }
}
