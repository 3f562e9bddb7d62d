//! A materialized view as DataFusion sees it: its committed rows. An aggregating view's rows
//! are keyed by group key, so a view grouped by its window first reads only the windows a
//! `window_start` (or `window_end`) filter asks for, and an equality on the leading group
//! column (`WHERE user_id = 42`, or `= $1`) becomes a [`KeyLookupExec`] that reads that key's
//! rows only. A view without aggregates is read from its output log, whose entries are its
//! rows, narrowed by its event-time column like a source.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::key_lookup::{KeyLookupExec, encodes_exactly, key_operand};
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
        /// The output column whose values lead the row keys, and its type.
        leading_key: Option<(String, DataType)>,
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
            ViewRows::Keyed { leading_time, .. } => leading_time.clone(),
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
    /// DataFusion still applies them to the rows (`Inexact`). An equality on the leading key
    /// is answered by the read alone (`Exact`) where the key encodes exactly.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        let mut pushed = pushdown(filters, self.time_column().as_deref());
        if let ViewRows::Keyed {
            leading_key: Some((column, ty)),
            ..
        } = &self.rows
        {
            for (filter, pushed) in filters.iter().zip(&mut pushed) {
                // A prepared statement's plan is made once with its parameter in place: the
                // lookup reads the parameter when it runs.
                if key_operand(filter, column, ty).is_some() {
                    *pushed = if encodes_exactly(ty) {
                        TableProviderFilterPushDown::Exact
                    } else {
                        TableProviderFilterPushDown::Inexact
                    };
                }
            }
        }
        Ok(pushed)
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
            ViewRows::Keyed { leading_key, .. } => {
                // An equality on the leading key reads its prefix only, when the plan runs.
                if let Some((column, ty)) = leading_key {
                    let operands: Vec<_> = filters
                        .iter()
                        .filter_map(|f| key_operand(f, column, ty))
                        .collect();
                    if !operands.is_empty() {
                        let lookup = KeyLookupExec::try_new(
                            self.store.clone(),
                            column.clone(),
                            ty.clone(),
                            operands,
                            projection,
                        )?;
                        return Ok(Arc::new(lookup));
                    }
                }
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
