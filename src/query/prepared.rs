//! Prepared statements (the extended protocol's `Parse`/`Describe`/`Execute`): a statement is
//! described once, and a query keeps its optimized plan, into which each execution binds its
//! parameters. A point lookup by parameter (`WHERE key = $1` on a view) keeps its physical plan
//! too, and binds only the key of its read. DDL moves the engine's catalog version on, which
//! makes every kept plan stale.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::sql::sqlparser::ast;
use weir_sql::Statement;
use weir_sql::ast::WeirObject;

use super::provider::{bind_parameters, has_key_parameters};
use super::session_commands::{show_all_schema, show_schema, show_sources_schema, variable_name};
use super::{Engine, QueryError, QueryResult, Session};

/// A statement parsed and planned far enough to describe its parameters and result columns
/// (the extended protocol's `Parse`/`Describe`).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The statement.
    pub statement: Statement,
    /// The type DataFusion infers for each `$n`, in order; `None` where it cannot tell.
    pub param_types: Vec<Option<DataType>>,
    /// Result columns, for statements that return rows.
    pub schema: Option<SchemaRef>,
    /// The query's optimized logical plan, kept so each execution binds its parameters into it
    /// instead of planning and optimizing the SQL again; valid while the catalog is as it was
    /// when planned.
    plan: Option<CachedPlan>,
}

#[derive(Debug, Clone)]
struct CachedPlan {
    plan: LogicalPlan,
    /// For a point lookup by parameter (`WHERE key = $1`), its physical plan, whose key read
    /// takes the parameter when it runs: executions bind into it and skip planning.
    lookup: Option<Arc<dyn ExecutionPlan>>,
    catalog_version: u64,
}

/// The most rows a plan may filter and project on the connection's own task.
const INLINE_ROWS: usize = 1024;

/// Whether `plan` only filters and projects rows its scans already hold in memory (at most
/// [`INLINE_ROWS`]) or read by one key: its answer costs less than a task hop.
fn answered_already(plan: &Arc<dyn ExecutionPlan>) -> bool {
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::datasource::source::DataSourceExec;
    fn rows(plan: &Arc<dyn ExecutionPlan>) -> Option<usize> {
        match plan.name() {
            "FilterExec" | "ProjectionExec" | "CoalesceBatchesExec" => {
                plan.children().iter().map(|c| rows(c)).sum()
            }
            "PlaceholderRowExec" | "EmptyExec" => Some(1),
            // One key's rows, read when the plan runs.
            "KeyLookupExec" => Some(1),
            "DataSourceExec" => {
                let source = plan.downcast_ref::<DataSourceExec>()?;
                let memory = source.data_source().downcast_ref::<MemorySourceConfig>()?;
                Some(
                    memory
                        .partitions()
                        .iter()
                        .flatten()
                        .map(|b| b.num_rows())
                        .sum(),
                )
            }
            _ => None,
        }
    }
    rows(plan).is_some_and(|n| n <= INLINE_ROWS)
}

/// Whether every function `plan` calls gives the same answer for the same arguments: the
/// optimizer folds `now()` into a constant, so a plan kept across executions must not call it
/// (or `random()`).
fn only_immutable_functions(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::TreeNode;
    use datafusion::logical_expr::{Expr as PlanExpr, Volatility};
    let varies = |expr: &PlanExpr| {
        expr.exists(|e| {
            Ok(matches!(e, PlanExpr::ScalarFunction(f)
                if f.func.signature().volatility != Volatility::Immutable))
        })
        .unwrap_or(true)
    };
    let mut found = false;
    let visited = plan.apply_with_subqueries(|node| {
        found = node.expressions().iter().any(varies);
        Ok(if found {
            datafusion::common::tree_node::TreeNodeRecursion::Stop
        } else {
            datafusion::common::tree_node::TreeNodeRecursion::Continue
        })
    });
    visited.is_ok() && !found
}

impl Engine {
    /// Runs a prepared statement: from its kept plan when the catalog has not changed since it
    /// was prepared, else from its SQL.
    pub async fn execute_prepared(
        &self,
        session: &Session,
        prepared: &Prepared,
        params: Option<ParamValues>,
    ) -> Result<QueryResult, QueryError> {
        let Some(cached) = prepared
            .plan
            .as_ref()
            .filter(|c| c.catalog_version == self.catalog_version())
        else {
            return self.execute(session, &prepared.statement, params).await;
        };
        let started = std::time::Instant::now();
        let kind = super::latency::kind(&prepared.statement);
        let result = match (&cached.lookup, params) {
            (Some(lookup), Some(params)) => self.run_lookup(session, lookup, &params),
            (_, Some(params)) => match cached.plan.clone().with_param_values(params) {
                Ok(plan) => self.run_optimized(session, plan).await,
                Err(e) => Err(e.into()),
            },
            (_, None) => self.run_optimized(session, cached.plan.clone()).await,
        };
        result
            .map(|result| super::latency::record(kind, started, result))
            .inspect_err(|_| super::latency::observe(kind, started))
    }

    fn catalog_version(&self) -> u64 {
        self.catalog_version
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Invalidates the plans prepared statements keep.
    pub(super) fn catalog_changed(&self) {
        self.catalog_version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Describes a statement without running it.
    pub async fn prepare(&self, statement: Statement) -> Result<Prepared, QueryError> {
        let mut cached = None;
        let (param_types, schema) = match &statement {
            Statement::Standard(s) => match s.as_ref() {
                ast::Statement::Query(_)
                | ast::Statement::Insert(_)
                | ast::Statement::Update(_)
                | ast::Statement::Delete(_)
                | ast::Statement::Explain { .. }
                | ast::Statement::ShowTables { .. }
                | ast::Statement::ShowColumns { .. }
                | ast::Statement::ExplainTable { .. } => {
                    // Describing needs only the types: session functions are bound to a
                    // throwaway session (a `set_config` here must not change the client's).
                    let catalog_version = self.catalog_version();
                    let bound = super::session_functions::bind(s, &Session::new())?;
                    let binds_session = matches!(bound, std::borrow::Cow::Owned(_));
                    let plan = self
                        .logical_plan(&bound)
                        .await
                        .map_err(QueryError::into_weir)?;
                    // A query whose plan depends on nothing but the catalog is kept: DML
                    // and session functions are planned at each execution.
                    // (A plan the optimizer refuses with its parameters unbound is planned at
                    // each execution, with them bound.)
                    if !binds_session
                        && matches!(s.as_ref(), ast::Statement::Query(_))
                        && only_immutable_functions(&plan)
                        && let Ok(plan) = self.ctx.state().optimize(&plan)
                    {
                        cached = Some(CachedPlan {
                            lookup: self.lookup_plan(&plan).await,
                            plan,
                            catalog_version,
                        });
                    }
                    let mut params: Vec<(usize, Option<DataType>)> = plan
                        .get_parameter_types()?
                        .into_iter()
                        .filter_map(|(name, ty)| {
                            Some((name.trim_start_matches('$').parse().ok()?, ty))
                        })
                        .collect();
                    params.sort_by_key(|(n, _)| *n);
                    let count = params.last().map(|(n, _)| *n).unwrap_or(0);
                    let mut types = vec![None; count];
                    for (n, ty) in params {
                        types[n - 1] = ty;
                    }
                    // A parameter DataFusion leaves untyped but casts (`$1::bigint`) takes its
                    // cast's type, as Postgres infers it.
                    for (n, ty) in cast_parameter_types(&plan) {
                        if let Some(slot @ None) = types.get_mut(n - 1) {
                            *slot = Some(ty);
                        }
                    }
                    let schema = match plan {
                        LogicalPlan::Dml(_) => None,
                        plan => Some(Arc::new(plan.schema().as_arrow().clone())),
                    };
                    (types, schema)
                }
                ast::Statement::ShowVariable { variable } => {
                    let name = variable_name(variable);
                    let schema = if name.eq_ignore_ascii_case("all") {
                        show_all_schema()
                    } else {
                        show_schema(&name)
                    };
                    (vec![], Some(schema))
                }
                _ => (vec![], None),
            },
            Statement::Show(WeirObject::Source) => (vec![], Some(show_sources_schema())),
            Statement::Show(WeirObject::View) => (vec![], Some(super::views::show_views_schema())),
            Statement::Flush
            | Statement::CreateSource(_)
            | Statement::CreateView(_)
            | Statement::Drop(_)
            | Statement::User(_) => (vec![], None),
        };
        Ok(Prepared {
            statement,
            param_types,
            schema,
            plan: cached,
        })
    }

    /// Runs a query plan that is optimized already (a prepared statement's, its parameters
    /// bound): straight to the physical plan.
    async fn run_optimized(
        &self,
        session: &Session,
        plan: LogicalPlan,
    ) -> Result<QueryResult, QueryError> {
        let execution = self.execution_state();
        // Planned without the physical optimizer first: a plan answered already only filters and
        // projects a few rows in one partition, which no rule would make faster, and its ~15
        // passes cost as much as the rest of a point lookup.
        let physical = execution
            .unoptimized
            .query_planner()
            .create_physical_plan(&plan, &execution.unoptimized)
            .await?;
        if answered_already(&physical) {
            // Nothing left to compute: hopping to the query runtime and back would cost more
            // than the rows.
            return self.run_inline(session, physical);
        }
        let physical = datafusion::physical_planner::DefaultPhysicalPlanner::default()
            .optimize_physical_plan(physical, &execution.state, |_, _| {})?;
        Ok(self.stream_on_query_runtime(physical, session.task_ctx(&execution.task_ctx)))
    }

    /// The physical plan of `plan` when it is a point lookup by parameter: one scan, filtered
    /// and projected, whose key read takes its parameter when it runs. A plan with parameters
    /// anywhere else fails to plan here and is planned at each execution instead.
    async fn lookup_plan(&self, plan: &LogicalPlan) -> Option<Arc<dyn ExecutionPlan>> {
        // Only a chain down to one scan: planning runs the scans, and another scan (a join's
        // other side) would be read here, at prepare time, for nothing.
        let mut node = plan;
        loop {
            match node {
                LogicalPlan::Projection(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::SubqueryAlias(_) => {
                    node = node.inputs()[0];
                }
                // The scan must take the parameter: one that cannot (a source's) would be
                // read here for nothing before planning fails on the parameter above it.
                LogicalPlan::TableScan(scan) if scan.filters.iter().any(has_placeholder) => break,
                _ => return None,
            }
        }
        let execution = self.execution_state();
        let physical = execution
            .unoptimized
            .query_planner()
            .create_physical_plan(plan, &execution.unoptimized)
            .await
            .ok()?;
        (has_key_parameters(&physical) && answered_already(&physical)).then_some(physical)
    }

    /// Runs a point lookup's kept physical plan with `params` bound into its key read.
    fn run_lookup(
        &self,
        session: &Session,
        lookup: &Arc<dyn ExecutionPlan>,
        params: &ParamValues,
    ) -> Result<QueryResult, QueryError> {
        self.run_inline(session, bind_parameters(lookup, params)?)
    }

    /// Runs `physical` on the connection's task, as its rows are asked for.
    fn run_inline(
        &self,
        session: &Session,
        physical: Arc<dyn ExecutionPlan>,
    ) -> Result<QueryResult, QueryError> {
        let schema = physical.schema();
        let task_ctx = session.task_ctx(&self.execution_state().task_ctx);
        let stream = execute_stream(physical, task_ctx)?;
        Ok(QueryResult::Rows { schema, stream })
    }

    /// The session states and task context of prepared executions, made once: `ctx.state()`
    /// copies every function registry per call, a large part of a point lookup's cost. They
    /// share the catalog, so relations created later are seen; functions and settings are
    /// fixed once the engine is open.
    pub(super) fn execution_state(&self) -> &ExecutionState {
        self.execution_state.get_or_init(|| {
            let state = self.ctx.state();
            let unoptimized =
                datafusion::execution::SessionStateBuilder::new_from_existing(state.clone())
                    .with_physical_optimizer_rules(vec![])
                    .build();
            ExecutionState {
                state,
                unoptimized,
                task_ctx: self.ctx.task_ctx(),
            }
        })
    }
}

/// What prepared executions plan and run with.
#[derive(Debug)]
pub(super) struct ExecutionState {
    state: datafusion::execution::SessionState,
    /// `state` without physical optimizer rules, which [`Engine::run_optimized`] applies only
    /// to plans that need them.
    unoptimized: datafusion::execution::SessionState,
    /// Every session's queries run with this, or a copy naming the database as the session
    /// does ([`Session::task_ctx`]).
    pub(super) task_ctx: Arc<datafusion::execution::TaskContext>,
}

/// Whether `expr` holds a parameter (`$n`).
fn has_placeholder(expr: &datafusion::logical_expr::Expr) -> bool {
    use datafusion::common::tree_node::TreeNode;
    expr.exists(|e| Ok(matches!(e, datafusion::logical_expr::Expr::Placeholder(_))))
        .unwrap_or(false)
}

/// `(n, type)` for each `CAST($n AS type)` in `plan` (and its subqueries).
fn cast_parameter_types(plan: &LogicalPlan) -> Vec<(usize, DataType)> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::{Cast, Expr as PlanExpr, TryCast};
    let mut found = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                let (inner, ty) = match e {
                    PlanExpr::Cast(Cast { expr, field }) => (expr, field.data_type()),
                    PlanExpr::TryCast(TryCast { expr, field }) => (expr, field.data_type()),
                    _ => return Ok(TreeNodeRecursion::Continue),
                };
                if let PlanExpr::Placeholder(placeholder) = inner.as_ref()
                    && let Ok(n) = placeholder.id.trim_start_matches('$').parse::<usize>()
                    && n >= 1
                {
                    found.push((n, ty.clone()));
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    found
}
