//! A view's queries, planned once and run at every epoch over that epoch's input.
//!
//! Planning a query (SQL to logical plan, optimizer, physical planner) costs DataFusion a few
//! hundred microseconds to milliseconds; a live view runs several queries per epoch and many
//! epochs a second, so planning them each time took most of a live view's CPU. The inputs the
//! queries read are registered once as tables whose rows are read when a plan executes, and
//! the physical plans are kept and executed again, their operators' state reset each time.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::TableReference;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::SessionContext;

/// A table of a view's private context whose rows are set before each run of the plans that
/// read it.
#[derive(Debug, Clone)]
pub struct EpochInput {
    rows: Arc<Rows>,
}

#[derive(Debug)]
struct Rows {
    schema: SchemaRef,
    batches: Mutex<Vec<RecordBatch>>,
}

impl EpochInput {
    /// Registers `name` in `ctx` as an input with `schema`, empty for now.
    pub fn register(ctx: &SessionContext, name: &str, schema: SchemaRef) -> Result<Self> {
        let rows = Arc::new(Rows {
            schema: schema.clone(),
            batches: Mutex::new(Vec::new()),
        });
        let table = StreamingTable::try_new(schema, vec![rows.clone()])?;
        let name = TableReference::bare(name.to_string());
        ctx.deregister_table(name.clone())?;
        ctx.register_table(name, Arc::new(table))?;
        Ok(Self { rows })
    }

    /// What plans executed from now on read.
    pub fn set(&self, batches: Vec<RecordBatch>) {
        *self.rows.batches.lock().unwrap_or_else(|e| e.into_inner()) = batches;
    }
}

impl PartitionStream for Rows {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batches = self
            .batches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(batches.into_iter().map(Ok)),
        ))
    }
}

/// One of a view's queries, with its physical plan.
#[derive(Debug)]
pub struct EpochQuery {
    sql: String,
    plan: Arc<dyn ExecutionPlan>,
    /// Planned again at every run: a query joining reference tables must read them as they
    /// are at each epoch, and a planned join keeps the table it read the first time.
    replan: bool,
}

impl EpochQuery {
    /// Plans `sql` in `ctx`; fails if it does not plan.
    pub async fn plan(ctx: &SessionContext, sql: &str, replan: bool) -> Result<Self> {
        Ok(Self {
            sql: sql.to_string(),
            plan: ctx.sql(sql).await?.create_physical_plan().await?,
            replan,
        })
    }

    /// The schema of the query's rows.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }

    /// The query's rows over what its inputs hold now.
    pub async fn run(&self, ctx: &SessionContext) -> Result<Vec<RecordBatch>> {
        let plan = if self.replan {
            ctx.sql(&self.sql).await?.create_physical_plan().await?
        } else {
            // Operators that keep what they built (a cross join's side, a hop's panes) start
            // afresh, as for each round of a recursive query.
            reset_plan_states(self.plan.clone())?
        };
        collect(plan, ctx.task_ctx()).await
    }
}
