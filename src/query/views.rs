//! Materialized views in the engine: `CREATE`, starting them at open, `SHOW`, and `FLUSH`,
//! which waits until every view has processed everything acknowledged before it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use weir_catalog::{
    CatalogError, CatalogObject, ColumnDef, Connector, Emit, Encoding, ObjectId, ObjectKind,
    SourceDef, SourceOptions, UnknownFields, ViewDef, Watermark,
};
use weir_sql::ast::CreateView;
use weir_sql::plan::{ViewQuery, object_name, plan_view_query};
use weir_sql::{SqlError, Statement};

use super::engine::Engine;
use super::{QueryError, QueryResult};
use crate::storage::{SourceLog, ViewStore};
use crate::stream::{ViewHandle, ViewRunner, spawn_view};
use datafusion::arrow::datatypes::SchemaRef;

/// How many views lie between `view` and its source: 0 for a view over a source.
fn depth<'a>(views: &'a HashMap<String, ViewHandle>, mut view: &'a ViewHandle) -> usize {
    let mut depth = 0;
    while view.log().def().options.connector == Connector::View
        && let Some(input) = views.get(&view.log().def().name)
    {
        depth += 1;
        view = input;
    }
    depth
}

/// A reference table a view joins.
struct JoinedTable {
    id: ObjectId,
    name: String,
    provider: Arc<dyn datafusion::catalog::TableProvider>,
}

/// The running views, by name; shared with the `weir.views` system table.
pub(super) type Views = Arc<RwLock<HashMap<String, ViewHandle>>>;

/// How long `FLUSH` waits for a view that makes no progress before reporting its error.
const FLUSH_PATIENCE: Duration = Duration::from_secs(30);

impl Engine {
    /// `CREATE MATERIALIZED VIEW`: plans the view, stores it, and starts it; the view first
    /// works through the events its source already holds (backfill), then follows new ones.
    pub(super) async fn create_view(&self, create: &CreateView) -> Result<QueryResult, QueryError> {
        let done = || Ok(QueryResult::Command("CREATE MATERIALIZED VIEW".into()));
        let _ddl = self.ddl.lock().await;
        let name = object_name(&create.name)?;
        let query = plan_view_query(&create.query, &self.relation_columns())?;
        if create.emit == Emit::OnWindowClose && query.window_end.is_none() {
            return Err(SqlError::InvalidOption(
                "EMIT ON WINDOW CLOSE needs a TUMBLE, HOP or SESSION window with window_start \
                 or window_end in GROUP BY"
                    .into(),
            )
            .into());
        }
        let (id, next_id) = {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            match catalog.check_free(&name) {
                Err(_) if create.if_not_exists => return done(),
                result => result?,
            }
            (catalog.peek_id(), catalog.next_id())
        };
        let input = self.view_input(&query.source)?;
        if create.emit == Emit::OnWindowClose && input.def().watermark.is_none() {
            return Err(SqlError::InvalidOption(format!(
                "EMIT ON WINDOW CLOSE needs a watermark on \"{}\"",
                query.source
            ))
            .into());
        }
        if let (Some(_), Some(time)) = (&query.session, &query.time_column) {
            // Sessions close by the watermark, and an event's lateness is judged on the column
            // the watermark follows: they must be the same.
            match &input.def().watermark {
                Some(w) if w.column == *time => {}
                _ => {
                    return Err(SqlError::InvalidOption(format!(
                        "SESSION over \"{}\" needs a watermark on its time column \"{time}\" \
                         (WATERMARK FOR {time} AS {time} - INTERVAL '...')",
                        query.source
                    ))
                    .into());
                }
            }
        }
        // Windows close by the input's watermark, and lateness is judged on the column it
        // follows: a window over another column could close before its rows arrive (over a
        // SESSION view, rows arrive in the order of window_end, not window_start).
        if let (Some(_), Some(time), Some(w)) =
            (&query.window, &query.time_column, &input.def().watermark)
            && w.column != *time
        {
            return Err(SqlError::InvalidOption(format!(
                "a window over \"{}\" must be on \"{}\", the column its watermark follows, \
                 not \"{time}\"",
                query.source, w.column
            ))
            .into());
        }
        // Planning the whole query over the source checks it and names its columns.
        let plan = self
            .ctx
            .state()
            .create_logical_plan(&query.batch_sql)
            .await?;
        let columns = ColumnDef::from_query_schema(plan.schema().as_arrow())?;
        let def = Arc::new(ViewDef {
            id,
            name,
            columns,
            source: input.def().id,
            tables: self
                .view_tables(&query)
                .await?
                .iter()
                .map(|t| t.id)
                .collect(),
            query: create.query.to_string(),
            emit: create.emit,
            definition: create.text.clone(),
        });
        // The runner is built before anything is stored: a query it cannot run fails here.
        let runner = self.view_runner(def.clone(), query).await?;
        self.commit_new_object(CatalogObject::View((*def).clone()), next_id)?;
        self.start_view(&def, runner)?;
        done()
    }

    /// Starts every stored view. Called once after [`Engine::open`], on the server's runtime.
    pub async fn start_views(&self) -> Result<(), QueryError> {
        let mut views: Vec<ViewDef> = {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            catalog.views().cloned().collect()
        };
        // A view over a view was created after it: in id order, each view's input is running
        // before the view starts.
        views.sort_by_key(|v| v.id);
        for def in views {
            let statements = weir_sql::parse(&def.query)?;
            let query = match statements.as_slice() {
                [Statement::Standard(statement)] => match statement.as_ref() {
                    datafusion::sql::sqlparser::ast::Statement::Query(query) => Some(query),
                    _ => None,
                },
                _ => None,
            }
            .ok_or_else(|| CatalogError::Corrupt(format!("view \"{}\": stored query", def.name)))?;
            let def = Arc::new(def);
            let runner = self
                .view_runner(
                    def.clone(),
                    plan_view_query(query, &self.relation_columns())?,
                )
                .await?;
            self.start_view(&def, runner)?;
        }
        Ok(())
    }

    async fn view_runner(
        &self,
        def: Arc<ViewDef>,
        query: ViewQuery,
    ) -> Result<ViewRunner, QueryError> {
        let input = self.view_input(&query.source)?;
        let mut store = ViewStore::new(self.db.clone(), def.id, def.arrow_schema());
        if let Some(output) = output_def(&def, &query, input.def()) {
            store = store.with_output(Arc::new(SourceLog::open(
                self.db.clone(),
                Arc::new(output),
            )?));
        }
        let tables = self
            .view_tables(&query)
            .await?
            .into_iter()
            .map(|t| (t.name, t.provider))
            .collect();
        Ok(ViewRunner::open(
            def,
            query,
            input,
            Arc::new(store),
            tables,
            self.view_state_cache_bytes,
        )
        .await?)
    }

    /// The reference tables a view joins.
    async fn view_tables(&self, query: &ViewQuery) -> Result<Vec<JoinedTable>, QueryError> {
        let mut tables = Vec::with_capacity(query.tables.len());
        for name in &query.tables {
            let id = {
                let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
                catalog
                    .get_kind(ObjectKind::Table, name)?
                    .ok_or_else(|| CatalogError::NotFound {
                        kind: ObjectKind::Table.as_str(),
                        name: name.clone(),
                    })?
                    .id()
            };
            let provider = self
                .ctx
                .table_provider(datafusion::common::TableReference::bare(name.clone()))
                .await?;
            tables.push(JoinedTable {
                id,
                name: name.clone(),
                provider,
            });
        }
        Ok(tables)
    }

    /// The column names of each source and view, for planning views over them.
    fn relation_columns(&self) -> impl Fn(&str) -> Vec<String> + use<> {
        let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
        let columns: HashMap<String, Vec<String>> = catalog
            .objects()
            .filter_map(|o| {
                let columns = match o {
                    CatalogObject::Source(s) => &s.columns,
                    CatalogObject::View(v) => &v.columns,
                    _ => return None,
                };
                Some((
                    o.name().to_string(),
                    columns.iter().map(|c| c.name.clone()).collect(),
                ))
            })
            .collect();
        move |name| columns.get(name).cloned().unwrap_or_default()
    }

    /// The log a view reads: its source's, or the output log of the view it is over.
    fn view_input(&self, name: &str) -> Result<Arc<SourceLog>, QueryError> {
        if let Some(log) = self.source(name) {
            return Ok(log);
        }
        let views = self.views.read().unwrap_or_else(|e| e.into_inner());
        match views.get(name) {
            Some(view) => view.output().cloned().ok_or_else(|| {
                SqlError::Unsupported(format!(
                    "a view over \"{name}\", whose rows are never final (views over views read \
                     closed windows, or the rows of a view without aggregates)"
                ))
                .into()
            }),
            None => Err(CatalogError::NotFound {
                kind: ObjectKind::Source.as_str(),
                name: name.to_string(),
            }
            .into()),
        }
    }

    fn start_view(&self, def: &ViewDef, runner: ViewRunner) -> Result<(), QueryError> {
        let store = runner.store().clone();
        let rows = match store.output() {
            Some(log) if runner.rows_in_output_log() => super::provider::ViewRows::Log(log.clone()),
            _ => super::provider::ViewRows::Keyed {
                leading_time: runner.leading_time_column(),
                leading_key: runner.leading_key_column(),
            },
        };
        let handle = spawn_view(self.query_runtime().handle(), runner, def.name.clone());
        self.views
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(def.name.clone(), handle);
        self.ctx.register_table(
            datafusion::common::TableReference::bare(def.name.clone()),
            Arc::new(super::provider::ViewTable::new(store, rows)),
        )?;
        self.catalog_changed();
        Ok(())
    }

    /// `FLUSH`: returns once every bounded generator (a Nexmark source with
    /// `nexmark.event.num`) has appended its last event, and then every view has committed
    /// every event its source had acknowledged. (Sources and tables are visible as soon as
    /// acknowledged.)
    pub(super) async fn flush(&self) -> Result<QueryResult, QueryError> {
        for (name, status) in self.bounded_generators() {
            status
                .wait_until_ended(FLUSH_PATIENCE)
                .await
                .map_err(|reason| QueryError::SourceStalled { name, reason })?;
        }
        // Upstream views first: a view over a view must also read what its input publishes
        // while the flush waits for that input.
        let targets: Vec<(String, Arc<SourceLog>, _)> = {
            let views = self.views.read().unwrap_or_else(|e| e.into_inner());
            let mut targets: Vec<_> = views
                .iter()
                .map(|(name, handle)| (depth(&views, handle), name, handle))
                .collect();
            targets.sort_by_key(|(depth, _, _)| *depth);
            targets
                .into_iter()
                .map(|(_, name, handle)| (name.clone(), handle.log().clone(), handle.progress()))
                .collect()
        };
        let start: Vec<u64> = targets.iter().map(|(_, log, _)| log.head()).collect();
        for ((name, log, progress), head) in targets.into_iter().zip(start) {
            // A source log's head at the start, or a view log's head once its view is done.
            let head = match log.def().options.connector {
                Connector::View => log.head(),
                Connector::Http | Connector::Kafka | Connector::Nexmark => head,
            };
            progress
                .wait_for(head, FLUSH_PATIENCE)
                .await
                .map_err(|reason| QueryError::ViewStalled { view: name, reason })?;
        }
        Ok(QueryResult::Command("FLUSH".into()))
    }

    /// `SHOW MATERIALIZED VIEWS`: each view's name and source.
    pub(super) fn show_views(&self) -> QueryResult {
        let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
        let views: Vec<&ViewDef> = catalog.views().collect();
        let source_name = |v: &ViewDef| {
            catalog
                .objects()
                .find(|o| o.id() == v.source)
                .map(|o| o.name().to_string())
        };
        let batch = RecordBatch::try_new(
            show_views_schema(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    views.iter().map(|v| v.name.as_str()),
                )),
                Arc::new(
                    views
                        .iter()
                        .map(|v| source_name(v))
                        .collect::<StringArray>(),
                ),
            ],
        )
        .expect("columns match the schema");
        QueryResult::from_batch(batch)
    }
}

/// The output log of a view whose rows become final: each closed window, or each row of a
/// view without aggregates. Its watermark, for windows over it, follows `window_start` (else
/// `window_end`) of the closed windows, which arrive in order, or the input's event time when
/// the view passes that column through.
fn output_def(def: &ViewDef, query: &ViewQuery, input: &SourceDef) -> Option<SourceDef> {
    let has = |column: &str| def.columns.iter().any(|c| c.name == column);
    let watermark = if query.append_only {
        input.watermark.clone().filter(|w| has(&w.column))
    } else if query.session.is_some() {
        // Sessions close in the order of their ends, not of their starts.
        has("window_end").then(|| Watermark {
            column: "window_end".to_string(),
            delay_ms: 0,
        })
    } else if query.window_end.is_some() {
        ["window_start", "window_end"]
            .into_iter()
            .find(|c| has(c))
            .map(|column| Watermark {
                column: column.to_string(),
                delay_ms: 0,
            })
    } else {
        return None;
    };
    let options = SourceOptions {
        connector: Connector::View,
        encoding: Encoding::Json,
        dedup: None,
        unknown_fields: UnknownFields::Reject,
        idle_timeout_ms: None,
        max_future_skew_ms: None,
        kafka: None,
        nexmark: None,
    };
    // A view that shows `_received_at` has no output log; views over it are refused.
    SourceDef::try_new(
        def.id,
        def.name.clone(),
        def.columns.clone(),
        watermark,
        options,
        def.definition.clone(),
    )
    .ok()
}

/// The columns of `SHOW MATERIALIZED VIEWS`.
pub(super) fn show_views_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, true),
    ]))
}

/// `weir.views`: each view's progress through its source's log (backfill and live), its
/// watermark, its last error, and its groups with state (all, and those in memory).
pub(super) fn progress_table(views: &Views) -> super::provider::ReadOnlyTable {
    let time = || DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("events_done", DataType::Int64, false),
        Field::new("events_total", DataType::Int64, false),
        Field::new("log_entries_done", DataType::Int64, false),
        Field::new("log_entries_total", DataType::Int64, false),
        Field::new("lag_seconds", DataType::Float64, false),
        Field::new("watermark", time(), true),
        Field::new("last_error", DataType::Utf8, true),
        Field::new("state_groups", DataType::Int64, false),
        Field::new("cached_groups", DataType::Int64, false),
    ]));
    let views = views.clone();
    let table_schema = schema.clone();
    super::provider::ReadOnlyTable::new(schema, move || {
        let views = views.read().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<(&String, &ViewHandle)> = views.iter().collect();
        rows.sort_by_key(|(name, _)| *name);
        let progress: Vec<_> = rows.iter().map(|(_, h)| h.progress()).collect();
        let now: Vec<_> = progress.iter().map(|p| p.now()).collect();
        let int = |f: &dyn Fn(usize) -> u64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(
                (0..rows.len()).map(|i| f(i) as i64),
            ))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|(n, _)| n.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|(_, h)| h.log().def().name.as_str()),
            )),
            int(&|i| now[i].events_done),
            int(&|i| rows[i].1.log().rows()),
            int(&|i| now[i].next_seq),
            int(&|i| rows[i].1.log().head()),
            Arc::new(Float64Array::from_iter_values(
                (0..rows.len()).map(|i| rows[i].1.log().waited(now[i].next_seq).as_secs_f64()),
            )),
            Arc::new(
                now.iter()
                    .map(|p| p.watermark)
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("+00:00"),
            ),
            Arc::new(
                progress
                    .iter()
                    .map(|p| p.last_error())
                    .collect::<StringArray>(),
            ),
            int(&|i| now[i].state_groups as u64),
            int(&|i| now[i].cached_groups as u64),
        ];
        Ok(vec![
            RecordBatch::try_new(table_schema.clone(), columns).expect("columns match the schema"),
        ])
    })
}
