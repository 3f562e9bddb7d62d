//! A materialized view as DataFusion sees it: its committed rows. An aggregating view's rows
//! are keyed by group key, so a view grouped by its window first reads only the windows a
//! `window_start` (or `window_end`) filter asks for. A view without aggregates is read from its
//! output log, whose entries are its rows, narrowed by its event-time column like a source.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::scan_blocking;
use super::time_bound::{TimeBound, pushdown};
use crate::storage::{SourceLog, StorageError, ViewStore};

/// Where a view's rows are.
#[derive(Debug)]
pub enum ViewRows {
    /// Keyed rows in the view's store.
    Keyed {
        /// The output column whose values lead the row keys, when it is a timestamp.
        leading_time: Option<String>,
    },
    /// The entries of the view's output log, less their `_received_at` column.
    Log(Arc<SourceLog>),
}

/// A view's rows.
#[derive(Debug)]
pub struct ViewTable {
    store: Arc<ViewStore>,
    rows: ViewRows,
}

impl ViewTable {
    /// The provider over the view of `store`, whose rows are in `rows`.
    pub fn new(store: Arc<ViewStore>, rows: ViewRows) -> Self {
        Self { store, rows }
    }

    /// The column reads can be narrowed by: the leading key, or the log's event time.
    fn time_column(&self) -> Option<String> {
        match &self.rows {
            ViewRows::Keyed { leading_time } => leading_time.clone(),
            ViewRows::Log(log) => log
                .event_time_column()
                .map(|i| log.def().columns[i].name.clone()),
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
        Ok(pushdown(filters, self.time_column().as_deref()))
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let TimeBound { lo, hi } = match self.time_column() {
            Some(column) => TimeBound::of(filters, &column),
            None => TimeBound::default(),
        };
        match &self.rows {
            ViewRows::Keyed { .. } => {
                let store = self.store.clone();
                scan_blocking(self.schema(), projection, move || {
                    Ok(vec![store.scan_leading_time(lo, hi)?])
                })
                .await
            }
            ViewRows::Log(log) => {
                let (log, schema) = (log.clone(), self.schema());
                scan_blocking(self.schema(), projection, move || {
                    let (entries, _) = log.scan_time_range(lo, hi)?;
                    entries
                        .into_iter()
                        .map(|entry| {
                            // The view's columns lead the log's; `_received_at` follows.
                            let columns = entry.columns()[..schema.fields().len()].to_vec();
                            RecordBatch::try_new(schema.clone(), columns)
                                .map_err(|e| StorageError::InvalidValue(e.to_string()))
                        })
                        .collect()
                })
                .await
            }
        }
    }
}
