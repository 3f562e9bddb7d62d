//! A reference table as DataFusion sees it: scans read one RocksDB snapshot; `INSERT`,
//! `UPDATE` and `DELETE` each commit one atomic write through [`TableStore`].
//!
//! Like DataFusion's `MemTable`, `UPDATE` and `DELETE` do their work when the physical plan is
//! built and return the count; Weir only builds physical plans to execute them.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, Result};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, utils::conjunction};
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};

use super::{collect_statement, nullable, scan_blocking};
use crate::storage::TableStore;

/// A table stored in RocksDB.
#[derive(Debug)]
pub struct ReferenceTable {
    store: Arc<TableStore>,
    defaults: HashMap<String, Expr>,
}

impl ReferenceTable {
    /// The provider for `store`, with each column's planned `DEFAULT` expression.
    pub fn new(store: Arc<TableStore>, defaults: HashMap<String, Expr>) -> Self {
        Self { store, defaults }
    }

    /// Evaluates `filters` (ANDed) over `batch`: true where a row is selected.
    fn select(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        batch: &RecordBatch,
    ) -> Result<BooleanArray> {
        let Some(predicate) = conjunction(filters.iter().cloned()) else {
            return Ok(BooleanArray::from(vec![true; batch.num_rows()]));
        };
        let df_schema = DFSchema::try_from(self.store.schema().as_ref().clone())?;
        let physical = create_physical_expr(
            &predicate,
            &df_schema,
            state.execution_props(),
            &PhysicalPlanningContext::default(),
        )?;
        let value = physical.evaluate(batch)?.into_array(batch.num_rows())?;
        let mask = value
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| DataFusionError::Plan("WHERE condition must be boolean".into()))?;
        // NULL selects nothing, as in SQL.
        Ok(mask.iter().map(|v| Some(v == Some(true))).collect())
    }
}

#[async_trait]
impl TableProvider for ReferenceTable {
    fn schema(&self) -> SchemaRef {
        self.store.schema().clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let store = self.store.clone();
        scan_blocking(self.schema(), projection, move || {
            store.scan().map(|rows| vec![rows.batch])
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
                "INSERT {insert_op}"
            )));
        }
        let sink = TableSink::new(self.store.clone());
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }

    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.require_key("DELETE")?;
        let count = self
            .store
            .delete(|batch| self.select(state, &filters, batch))?;
        dml_count(count)
    }

    async fn update(
        &self,
        state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.require_key("UPDATE")?;
        let schema = self.schema();
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let assignments = assignments
            .into_iter()
            .map(|(name, expr)| {
                schema.index_of(&name).map_err(|_| {
                    DataFusionError::SchemaError(
                        Box::new(datafusion::common::SchemaError::FieldNotFound {
                            field: Box::new(datafusion::common::Column::new_unqualified(
                                name.clone(),
                            )),
                            valid_fields: vec![],
                        }),
                        Box::new(None),
                    )
                })?;
                Ok((
                    name,
                    create_physical_expr(
                        &expr,
                        &df_schema,
                        state.execution_props(),
                        &PhysicalPlanningContext::default(),
                    )?,
                ))
            })
            .collect::<Result<HashMap<_, _>>>()?;
        let count = self.store.update(|batch| {
            let mask = self.select(state, &filters, batch)?;
            let selected = filter_record_batch(batch, &mask)?;
            let columns = schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, field)| match assignments.get(field.name()) {
                    Some(expr) => {
                        let value = expr.evaluate(&selected)?.into_array(selected.num_rows())?;
                        Ok(datafusion::arrow::compute::cast(&value, field.data_type())?)
                    }
                    None => Ok(selected.column(i).clone()),
                })
                .collect::<Result<Vec<ArrayRef>>>()?;
            // Nullability is the store's to check, with a proper error, so build the batch
            // with a schema that admits nulls.
            Ok((mask, RecordBatch::try_new(nullable(&schema), columns)?))
        })?;
        dml_count(count)
    }
}

impl ReferenceTable {
    fn require_key(&self, statement: &str) -> Result<()> {
        if self.store.def().primary_key.is_empty() {
            return Err(DataFusionError::NotImplemented(format!(
                "{statement} on table \"{}\", which has no primary key",
                self.store.def().name
            )));
        }
        Ok(())
    }
}

/// A plan producing the single `count` row DataFusion expects from DML.
fn dml_count(count: u64) -> Result<Arc<dyn ExecutionPlan>> {
    use datafusion::arrow::array::UInt64Array;
    use datafusion::arrow::datatypes::{DataType, Field};
    let schema = Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(UInt64Array::from(vec![count]))],
    )?;
    Ok(MemorySourceConfig::try_new_exec(
        &[vec![batch]],
        schema,
        None,
    )?)
}

/// Collects an `INSERT`'s input and commits it as one write: a statement is all or nothing.
#[derive(Debug)]
struct TableSink {
    store: Arc<TableStore>,
    /// The table schema with every column nullable: `NOT NULL` is checked by the store, which
    /// names the column in its error, rather than by DataFusion's generic check.
    schema: SchemaRef,
}

impl TableSink {
    fn new(store: Arc<TableStore>) -> Self {
        Self {
            schema: nullable(store.schema()),
            store,
        }
    }
}

impl DisplayAs for TableSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TableSink: {}", self.store.def().name)
    }
}

#[async_trait]
impl DataSink for TableSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let batch = collect_statement(data).await?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.insert(batch))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
    }
}
