//! Materialized views in the engine: `CREATE`, starting them at open, `SHOW`, and `FLUSH`,
//! which waits until every view has processed everything acknowledged before it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use weir_catalog::{CatalogError, CatalogObject, ColumnDef, Emit, ObjectKind, ViewDef};
use weir_sql::ast::CreateView;
use weir_sql::plan::{ViewQuery, object_name, plan_view_query};
use weir_sql::{SqlError, Statement};

use super::engine::Engine;
use super::{QueryError, QueryResult};
use crate::storage::ViewStore;
use crate::stream::{ViewHandle, ViewRunner, spawn_view};
use datafusion::arrow::datatypes::SchemaRef;

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
        let query = plan_view_query(&create.query)?;
        if create.emit == Emit::OnWindowClose && query.window_end.is_none() {
            return Err(SqlError::InvalidOption(
                "EMIT ON WINDOW CLOSE needs a TUMBLE or HOP window with window_start or \
                 window_end in GROUP BY"
                    .into(),
            )
            .into());
        }
        let (id, next_id, source_id) = {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            match catalog.check_free(&name) {
                Err(_) if create.if_not_exists => return done(),
                result => result?,
            }
            let source = catalog
                .get_kind(ObjectKind::Source, &query.source)?
                .ok_or_else(|| CatalogError::NotFound {
                    kind: ObjectKind::Source.as_str(),
                    name: query.source.clone(),
                })?;
            if create.emit == Emit::OnWindowClose
                && let CatalogObject::Source(source) = source
                && source.watermark.is_none()
            {
                return Err(SqlError::InvalidOption(format!(
                    "EMIT ON WINDOW CLOSE needs a watermark on source \"{}\"",
                    source.name
                ))
                .into());
            }
            (catalog.peek_id(), catalog.next_id(), source.id())
        };
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
            source: source_id,
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
        let views: Vec<ViewDef> = {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            catalog
                .objects()
                .filter_map(|o| match o {
                    CatalogObject::View(v) => Some(v.clone()),
                    _ => None,
                })
                .collect()
        };
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
                .view_runner(def.clone(), plan_view_query(query)?)
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
        let log = self
            .source(&query.source)
            .ok_or_else(|| CatalogError::NotFound {
                kind: ObjectKind::Source.as_str(),
                name: query.source.clone(),
            })?;
        let store = Arc::new(ViewStore::new(self.db.clone(), def.id, def.arrow_schema()));
        Ok(ViewRunner::open(def, query, log, store).await?)
    }

    fn start_view(&self, def: &ViewDef, runner: ViewRunner) -> Result<(), QueryError> {
        let store = runner.store().clone();
        let handle = spawn_view(self.query_runtime().handle(), runner, def.name.clone());
        self.views
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(def.name.clone(), handle);
        self.ctx.register_table(
            datafusion::common::TableReference::bare(def.name.clone()),
            Arc::new(super::provider::ReadOnlyTable::view(store)),
        )?;
        Ok(())
    }

    /// `FLUSH`: returns once every view has committed every event its source had acknowledged
    /// when the statement began. (Sources and tables are visible as soon as acknowledged.)
    pub(super) async fn flush(&self) -> Result<QueryResult, QueryError> {
        let targets: Vec<(String, u64, _)> = {
            let views = self.views.read().unwrap_or_else(|e| e.into_inner());
            views
                .iter()
                .map(|(name, handle)| (name.clone(), handle.log().head(), handle.progress()))
                .collect()
        };
        for (name, head, progress) in targets {
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
        let views: Vec<&ViewDef> = catalog
            .objects()
            .filter_map(|o| match o {
                CatalogObject::View(v) => Some(v),
                _ => None,
            })
            .collect();
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

/// The columns of `SHOW MATERIALIZED VIEWS`.
pub(super) fn show_views_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, true),
    ]))
}

/// `weir.views`: each view's progress through its source's log (backfill and live), its
/// watermark, and its last error.
pub(super) fn progress_table(views: &Views) -> super::provider::ReadOnlyTable {
    let time = || DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("events_done", DataType::Int64, false),
        Field::new("events_total", DataType::Int64, false),
        Field::new("log_entries_done", DataType::Int64, false),
        Field::new("log_entries_total", DataType::Int64, false),
        Field::new("watermark", time(), true),
        Field::new("last_error", DataType::Utf8, true),
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
        ];
        Ok(vec![
            RecordBatch::try_new(table_schema.clone(), columns).expect("columns match the schema"),
        ])
    })
}
