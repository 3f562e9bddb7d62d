//! A materialized view as DataFusion sees it: its committed rows. An aggregating view's rows
//! are keyed by group key, so a view grouped by its window first reads only the windows a
//! `window_start` (or `window_end`) filter asks for, and an equality on the leading group
//! column (`WHERE user_id = 42`) reads that key's rows only. A view without aggregates is read from its
//! output log, whose entries are its rows, narrowed by its event-time column like a source.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::time_bound::{TimeBound, pushdown};
use super::{scan_batches, scan_blocking};
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

/// The other side of `filter` when it is `column = something`.
fn compared_with<'a>(filter: &'a Expr, column: &str) -> Option<&'a Expr> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Eq,
        right,
    }) = filter
    else {
        return None;
    };
    let is_column = |e: &Expr| matches!(e, Expr::Column(c) if c.name == column);
    match (left.as_ref(), right.as_ref()) {
        (l, other) if is_column(l) => Some(other),
        (other, r) if is_column(r) => Some(other),
        _ => None,
    }
}

/// Whether `filter` is `column = $n`.
fn key_parameter(filter: &Expr, column: &str) -> bool {
    match compared_with(filter, column) {
        Some(Expr::Placeholder(_)) => true,
        Some(Expr::Cast(cast)) => matches!(cast.expr.as_ref(), Expr::Placeholder(_)),
        _ => false,
    }
}

/// The value (as a one-value array of the column's type) that `filter` requires `column` to
/// equal, if it is `column = constant` and the constant converts exactly.
fn key_equality(filter: &Expr, column: &str, ty: &DataType) -> Option<ArrayRef> {
    let Some(Expr::Literal(value, _)) = compared_with(filter, column) else {
        return None;
    };
    if value.is_null() {
        return None;
    }
    let cast = value.cast_to(ty).ok()?;
    // Only a value the cast keeps (`7.0` for a bigint key, not `7.5`): the prefix read must
    // hold every row the filter keeps.
    if cast.cast_to(&value.data_type()).ok()? != *value {
        return None;
    }
    cast.to_array().ok()
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
        let mut pushed = pushdown(filters, self.time_column().as_deref());
        if let ViewRows::Keyed {
            leading_key: Some((column, ty)),
            ..
        } = &self.rows
        {
            for (filter, pushed) in filters.iter().zip(&mut pushed) {
                // A prepared statement's plan is optimized once with its parameter in place:
                // the value arrives in `scan`'s filters.
                if key_equality(filter, column, ty).is_some() || key_parameter(filter, column) {
                    *pushed = TableProviderFilterPushDown::Inexact;
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
                let store = self.store.clone();
                // An equality on the leading key reads its prefix only (DataFusion still
                // applies every filter to the rows read).
                let key = leading_key
                    .as_ref()
                    .and_then(|(column, ty)| {
                        filters.iter().find_map(|f| key_equality(f, column, ty))
                    })
                    .filter(|_| lo.is_none() && hi.is_none());
                if let Some(value) = &key {
                    // A point read's rows are usually in memory: reading them here costs less
                    // than the hop to a blocking thread.
                    let cached = store
                        .scan_leading_key_cached(value)
                        .map_err(|e| DataFusionError::External(Box::new(e)))?;
                    if let Some(rows) = cached {
                        return scan_batches(self.schema(), projection, vec![rows]);
                    }
                }
                scan_blocking(self.schema(), projection, move || match key {
                    Some(value) => Ok(vec![store.scan_leading_key(&value)?]),
                    None => Ok(vec![store.scan_leading_time(lo, hi)?]),
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
