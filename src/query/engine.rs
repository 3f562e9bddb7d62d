//! The engine: one DataFusion context over Weir's catalog, shared by every connection.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{RecordBatch, UInt64Array};
use datafusion::catalog::SchemaProvider;
use datafusion::common::ParamValues;
use datafusion::logical_expr::{LogicalPlan, WriteOp};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{self, ObjectType};
use futures::StreamExt;
use tokio::sync::mpsc;
use tracing::Instrument;
use weir_catalog::{Catalog, CatalogObject, ObjectKind, SourceDef};
use weir_sql::ast::WeirObject;
use weir_sql::{SqlError, Statement};

use super::{QueryError, QueryResult, Session};
use crate::storage::{CatalogStore, DataDirLock, Db, DeadLetters, SourceLog, TableStore};

/// The database name clients see (`current_database()`, `\l`).
pub const DATABASE: &str = "weir";

/// The schema of Weir's system tables (`weir.dead_letters`).
pub const SYSTEM_SCHEMA: &str = "weir";

/// How to open an engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where all durable state lives.
    pub data_dir: PathBuf,
    /// Threads of the query runtime.
    pub query_threads: usize,
    /// Memory each view keeps aggregate states in.
    pub view_state_cache_bytes: usize,
}

/// Weir's query engine: catalog, storage and the DataFusion context.
pub struct Engine {
    pub(super) ctx: SessionContext,
    pub(super) db: Arc<Db>,
    pub(super) catalog: Arc<RwLock<Catalog>>,
    pub(super) catalog_store: CatalogStore,
    /// The row store of every registered table, by name.
    pub(super) tables: RwLock<HashMap<String, Arc<TableStore>>>,
    /// The log of every registered source, by name.
    pub(super) sources: super::sources::SourceLogs,
    /// The consumer of every Kafka source, by name.
    pub(super) pullers: super::sources::Pullers,
    /// Every running materialized view, by name.
    pub(super) views: super::views::Views,
    /// Events refused at ingestion.
    dead_letters: Arc<DeadLetters>,
    /// Who may log in, when authentication is on.
    users: Arc<crate::auth::Users>,
    /// Serializes DDL, so a statement's check of the catalog and its write cannot interleave
    /// with another's. Held across the awaits of `CREATE TABLE ... AS SELECT`.
    pub(super) ddl: tokio::sync::Mutex<()>,
    /// Always `Some` until drop, which shuts it down without blocking: the engine may be
    /// dropped on an async task.
    query_runtime: Option<tokio::runtime::Runtime>,
    /// Memory each view keeps aggregate states in.
    pub(super) view_state_cache_bytes: usize,
    /// Moves on whenever relations are created, dropped or registered: plans kept by prepared
    /// statements are valid only for the version they were made at.
    pub(super) catalog_version: std::sync::atomic::AtomicU64,
    pub(super) execution_state: std::sync::OnceLock<super::prepared::ExecutionState>,
    _lock: DataDirLock,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("db", &self.db).finish()
    }
}

/// Adds an analyzer rule that must see the plan before DataFusion coerces its types.
fn before_type_coercion(
    ctx: &SessionContext,
    rule: Arc<dyn datafusion::optimizer::AnalyzerRule + Send + Sync>,
) {
    let state = ctx.state();
    let mut rules = state.analyzer().rules.clone();
    let at = rules
        .iter()
        .position(|r| r.name() == "type_coercion")
        .unwrap_or(rules.len());
    rules.insert(at, rule);
    let state = datafusion::execution::SessionStateBuilder::new_from_existing(state)
        .with_analyzer_rules(rules)
        .build();
    *ctx.state_ref().write() = state;
}

impl Engine {
    /// Locks the data directory, opens storage and loads the catalog.
    pub fn open(config: &EngineConfig) -> Result<Arc<Self>, QueryError> {
        let lock = DataDirLock::acquire(&config.data_dir)?;
        let db = Arc::new(Db::open(&config.data_dir.join("db"))?);
        let catalog_store = CatalogStore::new(db.clone());
        let catalog = catalog_store.load()?;
        let dead_letters = Arc::new(DeadLetters::open(db.clone())?);
        let users = Arc::new(crate::auth::Users::open(db.clone())?);

        let session_config = SessionConfig::new()
            .with_default_catalog_and_schema(DATABASE, weir_sql::plan::DEFAULT_SCHEMA)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL")
            // `timestamptz` is an instant: `CAST(x AS TIMESTAMPTZ)` and `$1::timestamptz` keep a
            // zone, UTC as Weir stores them, so drivers are told `timestamptz`, not `timestamp`.
            .set_str("datafusion.execution.time_zone", "+00:00");
        let mut ctx = SessionContext::new_with_config(session_config);
        // `->`, `->>` and `json_get*` over JSON text columns.
        datafusion_functions_json::register_all(&mut ctx)?;
        let catalog = Arc::new(RwLock::new(catalog));
        crate::functions::register(&ctx);
        ctx.add_analyzer_rule(Arc::new(super::pg_semantics::PostgresSemantics));
        before_type_coercion(&ctx, Arc::new(super::untyped_literals::UntypedLiterals));
        // Weir's own tables live in schema `weir`, apart from user relations.
        let system = Arc::new(datafusion::catalog::MemorySchemaProvider::new());
        system.register_table(
            "dead_letters".into(),
            Arc::new(super::provider::ReadOnlyTable::dead_letters(
                dead_letters.clone(),
            )),
        )?;
        system.register_table(
            "late_events".into(),
            Arc::new(super::provider::ReadOnlyTable::late_events(Arc::new(
                crate::storage::LateEvents::new(db.clone()),
            ))),
        )?;
        let sources = super::sources::SourceLogs::default();
        let pullers = super::sources::Pullers::default();
        system.register_table(
            "sources".into(),
            Arc::new(super::sources::sources_table(
                sources.clone(),
                pullers.clone(),
            )),
        )?;
        system.register_table(
            "kafka_partitions".into(),
            Arc::new(super::sources::kafka_partitions_table(
                sources.clone(),
                pullers.clone(),
            )),
        )?;
        let views = super::views::Views::default();
        system.register_table(
            "views".into(),
            Arc::new(super::views::progress_table(&views)),
        )?;
        ctx.catalog(DATABASE)
            .expect("the default catalog exists")
            .register_schema(SYSTEM_SCHEMA, system)?;
        // Last: it lists the system relations of every schema registered so far.
        super::pg_catalog::register(&ctx, catalog.clone(), users.clone())?;

        let query_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.query_threads.max(1))
            .thread_name("weir-query")
            .thread_stack_size(crate::stack::STATEMENT_THREAD_STACK_BYTES)
            .enable_all()
            .build()
            .map_err(|e| crate::storage::StorageError::Io {
                path: "query runtime".into(),
                source: e,
            })?;

        let engine = Arc::new(Self {
            ctx,
            db,
            catalog: catalog.clone(),
            catalog_store,
            tables: RwLock::new(HashMap::new()),
            sources,
            pullers,
            views,
            dead_letters,
            users,
            ddl: tokio::sync::Mutex::new(()),
            query_runtime: Some(query_runtime),
            view_state_cache_bytes: config.view_state_cache_bytes,
            catalog_version: std::sync::atomic::AtomicU64::new(0),
            execution_state: std::sync::OnceLock::new(),
            _lock: lock,
        });
        let objects: Vec<CatalogObject> = catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .objects()
            .cloned()
            .collect();
        for object in &objects {
            match object {
                CatalogObject::Table(def) => engine.register_table(Arc::new(def.clone()))?,
                CatalogObject::Source(def) => engine.register_source(Arc::new(def.clone()))?,
                // Views start in `start_views`, once a runtime is at hand to plan them.
                CatalogObject::View(_) => {}
            }
        }
        Ok(engine)
    }

    /// Makes a stored table visible to queries.
    pub(super) fn register_table(
        &self,
        def: Arc<weir_catalog::TableDef>,
    ) -> Result<(), QueryError> {
        let mut defaults = HashMap::new();
        for column in &def.columns {
            if let Some(sql) = &column.default {
                let df_schema = datafusion::common::DFSchema::empty();
                defaults.insert(
                    column.name.clone(),
                    self.ctx.parse_sql_expr(sql, &df_schema)?,
                );
            }
        }
        let store = Arc::new(TableStore::open(self.db.clone(), def.clone())?);
        self.tables
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(def.name.clone(), store.clone());
        let provider = super::provider::ReferenceTable::new(store, defaults);
        self.ctx.register_table(
            datafusion::common::TableReference::bare(def.name.clone()),
            Arc::new(provider),
        )?;
        self.catalog_changed();
        Ok(())
    }

    /// Makes a source visible to queries and inserts.
    pub(super) fn register_source(&self, def: Arc<SourceDef>) -> Result<(), QueryError> {
        let log = Arc::new(SourceLog::open(self.db.clone(), def.clone())?);
        self.sources
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(def.name.clone(), log.clone());
        let puller = match def.options.connector {
            weir_catalog::Connector::Kafka => Some(crate::connectors::kafka::start(
                self.db.clone(),
                log.clone(),
                self.dead_letters.clone(),
            )),
            weir_catalog::Connector::Nexmark => Some(crate::connectors::nexmark::start(
                self.db.clone(),
                log.clone(),
            )),
            weir_catalog::Connector::Http | weir_catalog::Connector::View => None,
        };
        if let Some(puller) = puller {
            self.pullers
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(def.name.clone(), puller);
        }
        self.ctx.register_table(
            datafusion::common::TableReference::bare(def.name.clone()),
            Arc::new(super::provider::SourceTable::new(log)),
        )?;
        self.catalog_changed();
        Ok(())
    }

    /// Who may log in.
    pub fn users(&self) -> &Arc<crate::auth::Users> {
        &self.users
    }

    /// Where refused events are recorded.
    pub fn dead_letters(&self) -> &Arc<DeadLetters> {
        &self.dead_letters
    }

    /// The log of the source called `name`, if there is one.
    pub fn source(&self, name: &str) -> Option<Arc<SourceLog>> {
        self.sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Runs one statement. `params` are the bound values of `$n` placeholders.
    pub async fn execute(
        &self,
        session: &Session,
        statement: &Statement,
        params: Option<ParamValues>,
    ) -> Result<QueryResult, QueryError> {
        let started = std::time::Instant::now();
        let kind = super::latency::kind(statement);
        let result = self
            .execute_statement(session, statement, params)
            .instrument(tracing::debug_span!("statement", kind))
            .await;
        result
            .map(|result| super::latency::record(kind, started, result))
            .inspect_err(|_| super::latency::observe(kind, started))
    }

    async fn execute_statement(
        &self,
        session: &Session,
        statement: &Statement,
        params: Option<ParamValues>,
    ) -> Result<QueryResult, QueryError> {
        let result = match statement {
            Statement::Flush => self.flush().await,
            Statement::CreateView(create) => {
                let result = self.create_view(create).await;
                session.note_write();
                result
            }
            Statement::Standard(s) => self.execute_standard(session, s, params).await,
            Statement::CreateSource(create) => {
                let plan = weir_sql::plan::plan_create_source(create)?;
                let result = self.create_source(plan).await;
                session.note_write();
                result
            }
            Statement::Drop(drop) => {
                let kind = match drop.kind {
                    WeirObject::Source => ObjectKind::Source,
                    WeirObject::View => ObjectKind::View,
                };
                let result = self
                    .drop_objects(kind, &drop.names, drop.if_exists, drop.cascade)
                    .await;
                session.note_write();
                result
            }
            Statement::Show(WeirObject::Source) => Ok(self.show_sources()),
            Statement::Show(WeirObject::View) => Ok(self.show_views()),
            Statement::User(user) => super::users::execute(&self.users, user),
        };
        result.map_err(QueryError::into_weir)
    }

    async fn execute_standard(
        &self,
        session: &Session,
        statement: &ast::Statement,
        params: Option<ParamValues>,
    ) -> Result<QueryResult, QueryError> {
        use ast::Statement as S;
        match statement {
            S::CreateTable(create) => {
                let result = self
                    .create_table(weir_sql::plan::plan_create_table(create)?)
                    .await?;
                session.note_write();
                Ok(result)
            }
            S::Drop {
                object_type: ObjectType::Table,
                if_exists,
                names,
                cascade,
                ..
            } => {
                let result = self
                    .drop_objects(ObjectKind::Table, names, *if_exists, *cascade)
                    .await?;
                session.note_write();
                Ok(result)
            }
            S::StartTransaction { .. } => {
                session.begin();
                Ok(QueryResult::TransactionStart("BEGIN".into()))
            }
            S::Commit { .. } => {
                session.end();
                Ok(QueryResult::TransactionEnd {
                    tag: "COMMIT".into(),
                    warning: None,
                })
            }
            S::Rollback { .. } => {
                let writes = session.end();
                let warning = (writes > 0).then(|| {
                    format!(
                        "ROLLBACK cannot undo the {writes} write statement(s) of this transaction block: \
                         Weir commits every statement when it runs"
                    )
                });
                Ok(QueryResult::TransactionEnd {
                    tag: "ROLLBACK".into(),
                    warning,
                })
            }
            S::Set(set) => self.set(session, set),
            // Connection pools send these when a connection goes back to the pool.
            S::Reset(reset) => {
                match &reset.reset {
                    ast::Reset::ALL => session.reset_all(),
                    ast::Reset::ConfigurationParameter(name) => {
                        session.set(&name.to_string(), None)?
                    }
                }
                Ok(QueryResult::Command("RESET".into()))
            }
            S::Discard { object_type } => {
                if *object_type == ast::DiscardObject::ALL {
                    session.reset_all();
                }
                Ok(QueryResult::Command(format!("DISCARD {object_type}")))
            }
            // Weir has no SQL `PREPARE`; protocol-level statements are closed by the client.
            S::Deallocate { name, .. } if name.value.eq_ignore_ascii_case("all") => {
                Ok(QueryResult::Command("DEALLOCATE ALL".into()))
            }
            S::ShowVariable { variable } => self.show(session, variable).await,
            S::Query(_)
            | S::Insert(_)
            | S::Update(_)
            | S::Delete(_)
            | S::Explain { .. }
            | S::ShowTables { .. }
            | S::ShowColumns { .. }
            | S::ExplainTable { .. } => {
                let statement = super::session_functions::bind(statement, session)?;
                let plan = self.logical_plan(&statement).await?;
                let plan = match params {
                    Some(params) => plan.with_param_values(params)?,
                    None => plan,
                };
                self.run_plan(session, plan).await
            }
            other => Err(SqlError::Unsupported(statement_kind(other)).into()),
        }
    }

    /// Plans a statement DataFusion handles, refusing DataFusion's own (in-memory) DDL.
    pub(super) async fn logical_plan(
        &self,
        statement: &ast::Statement,
    ) -> Result<LogicalPlan, QueryError> {
        let state = self.ctx.state();
        let mut statement = statement.clone();
        self.name_source_insert_columns(&mut statement);
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(statement.clone())))
            .await?;
        if matches!(
            plan,
            LogicalPlan::Ddl(_) | LogicalPlan::Statement(_) | LogicalPlan::Copy(_)
        ) {
            return Err(SqlError::Unsupported(statement_kind(&statement)).into());
        }
        Ok(plan)
    }

    /// `INSERT INTO source VALUES (...)` means the declared columns: `_received_at` is the
    /// server's to fill, so the column list DataFusion plans with is made explicit.
    fn name_source_insert_columns(&self, statement: &mut ast::Statement) {
        let ast::Statement::Insert(insert) = statement else {
            return;
        };
        let ast::TableObject::TableName(name) = &insert.table else {
            return;
        };
        if !insert.columns.is_empty() {
            return;
        }
        let Some(log) = weir_sql::plan::object_name(name)
            .ok()
            .and_then(|name| self.source(&name))
        else {
            return;
        };
        insert.columns = log
            .def()
            .columns
            .iter()
            .map(|c| ast::ObjectName::from(vec![ast::Ident::with_quote('"', c.name.clone())]))
            .collect();
    }

    async fn run_plan(
        &self,
        session: &Session,
        plan: LogicalPlan,
    ) -> Result<QueryResult, QueryError> {
        let dml = match &plan {
            LogicalPlan::Dml(dml) => Some(dml.op.clone()),
            _ => None,
        };
        let state = self.ctx.state();
        let task_ctx = session.task_ctx(&self.execution_state().task_ctx);
        match dml {
            Some(op) => {
                // Planning UPDATE/DELETE already touches storage (see provider/table.rs), so
                // planning and running both happen on the query runtime.
                let count = self
                    .query_runtime()
                    .spawn(async move {
                        let physical = state.create_physical_plan(&plan).await?;
                        let batches =
                            datafusion::physical_plan::collect(physical, task_ctx).await?;
                        Ok::<_, QueryError>(dml_count(&batches))
                    })
                    .await
                    .map_err(|e| {
                        QueryError::DataFusion(datafusion::error::DataFusionError::External(
                            Box::new(e),
                        ))
                    })??;
                session.note_write();
                let tag = match op {
                    WriteOp::Insert(_) => format!("INSERT 0 {count}"),
                    WriteOp::Update => format!("UPDATE {count}"),
                    WriteOp::Delete => format!("DELETE {count}"),
                    other => format!("{} {count}", other.name()),
                };
                Ok(QueryResult::Command(tag))
            }
            None => {
                let physical = state.create_physical_plan(&plan).await?;
                Ok(self.stream_on_query_runtime(physical, task_ctx))
            }
        }
    }

    /// Executes `plan` on the query runtime, handing batches over a small channel: the
    /// connection's task only encodes rows. Dropping the result stream (the client went away
    /// or cancelled) stops the query.
    pub(super) fn stream_on_query_runtime(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        task_ctx: Arc<datafusion::execution::TaskContext>,
    ) -> QueryResult {
        let schema = plan.schema();
        let (tx, mut rx) = mpsc::channel(2);
        let producer = self.query_runtime().spawn(async move {
            let mut stream = match execute_stream(plan, task_ctx) {
                Ok(stream) => stream,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            loop {
                tokio::select! {
                    _ = tx.closed() => return,
                    next = stream.next() => match next {
                        Some(item) => if tx.send(item).await.is_err() { return },
                        None => return,
                    },
                }
            }
        });
        let abort = producer.abort_handle();
        let guard = AbortOnDrop(abort);
        let stream = futures::stream::poll_fn(move |cx| {
            let _keep = &guard;
            rx.poll_recv(cx)
        });
        QueryResult::Rows {
            schema: schema.clone(),
            stream: Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
        }
    }
}

impl Engine {
    pub(super) fn query_runtime(&self) -> &tokio::runtime::Runtime {
        self.query_runtime
            .as_ref()
            .expect("the query runtime lives until the engine is dropped")
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(runtime) = self.query_runtime.take() {
            runtime.shutdown_background();
        }
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn dml_count(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .filter_map(|b| b.column(0).as_any().downcast_ref::<UInt64Array>())
        .map(|a| a.values().iter().sum::<u64>())
        .sum()
}

/// A short name for a statement, for "... is not supported".
fn statement_kind(statement: &ast::Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(3).collect();
    let keywords: Vec<&str> = words
        .iter()
        .take_while(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .copied()
        .collect();
    if keywords.is_empty() {
        words.first().copied().unwrap_or("statement").to_string()
    } else {
        keywords.join(" ")
    }
}
