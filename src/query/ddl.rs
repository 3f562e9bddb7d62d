//! DDL: `CREATE TABLE [AS SELECT]`, `CREATE SOURCE`, `DROP TABLE | SOURCE`, each one atomic
//! write of catalog entries and data, applied to the in-memory catalog and DataFusion only after it committed.

use std::sync::Arc;

use datafusion::arrow::compute::concat_batches;
use datafusion::sql::sqlparser::ast::{self, ObjectName};
use rocksdb::WriteBatch;
use weir_catalog::{CatalogError, CatalogObject, ColumnDef, ObjectKind, SourceDef, TableDef};
use weir_sql::plan::{CreateSourcePlan, CreateTablePlan, object_name};

use super::engine::Engine;
use super::{QueryError, QueryResult};
use crate::storage::TableStore;

impl Engine {
    pub(super) async fn create_table(
        &self,
        plan: CreateTablePlan,
    ) -> Result<QueryResult, QueryError> {
        let _ddl = self.ddl.lock().await;
        let id = {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            match catalog.check_free(&plan.name) {
                Err(_) if plan.if_not_exists => {
                    return Ok(QueryResult::Command("CREATE TABLE".into()));
                }
                result => result?,
            }
            catalog.peek_id()
        };
        let (columns, rows) = match &plan.query {
            None => (plan.columns.clone(), None),
            Some(query) => {
                let statement = ast::Statement::Query(query.clone());
                let df = self
                    .ctx
                    .execute_logical_plan(
                        self.ctx
                            .state()
                            .statement_to_plan(datafusion::sql::parser::Statement::Statement(
                                Box::new(statement),
                            ))
                            .await?,
                    )
                    .await?;
                let schema = Arc::new(df.schema().as_arrow().clone());
                let batches = df.collect().await?;
                let columns = ColumnDef::from_query_schema(&schema)?;
                (
                    columns,
                    Some(
                        concat_batches(&schema, &batches)
                            .map_err(datafusion::error::DataFusionError::from)?,
                    ),
                )
            }
        };
        let def = TableDef::try_new(
            id,
            plan.name.clone(),
            columns,
            plan.primary_key.clone(),
            plan.definition.clone(),
        )?;
        // Plan the defaults now, so a bad DEFAULT fails the CREATE rather than the next start.
        for column in &def.columns {
            if let Some(sql) = &column.default {
                self.ctx
                    .parse_sql_expr(sql, &datafusion::common::DFSchema::empty())?;
            }
        }
        let def = Arc::new(def);
        let object = CatalogObject::Table(def.as_ref().clone());
        let next_id = {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            catalog.next_id()
        };
        let mut write = WriteBatch::default();
        self.catalog_store.put(&mut write, &object, next_id);
        let mut count = 0;
        if let Some(rows) = rows {
            let store = TableStore::open(self.db.clone(), def.clone())?;
            count = store.stage_insert(&mut write, rows)?;
        }
        self.commit_ddl(write)?;
        self.catalog
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(object);
        self.register_table(def)?;
        Ok(QueryResult::Command(match plan.query {
            Some(_) => format!("SELECT {count}"),
            None => "CREATE TABLE".into(),
        }))
    }

    /// Stores a new object that brings no data of its own, then makes the catalog know it.
    pub(super) fn commit_new_object(
        &self,
        object: CatalogObject,
        next_id: u64,
    ) -> Result<(), QueryError> {
        let mut write = WriteBatch::default();
        self.catalog_store.put(&mut write, &object, next_id);
        self.commit_ddl(write)?;
        self.catalog
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(object);
        Ok(())
    }

    /// Writes a DDL statement's batch, between the crash points the crash tests arm.
    fn commit_ddl(&self, write: WriteBatch) -> Result<(), QueryError> {
        crate::failpoint::hit("ddl::before_commit");
        self.db.write(write)?;
        self.catalog_changed();
        crate::failpoint::hit("ddl::after_commit");
        Ok(())
    }

    pub(super) async fn create_source(
        &self,
        plan: CreateSourcePlan,
    ) -> Result<QueryResult, QueryError> {
        let _ddl = self.ddl.lock().await;
        let (id, next_id) = {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            match catalog.check_free(&plan.name) {
                Err(_) if plan.if_not_exists => {
                    return Ok(QueryResult::Command("CREATE SOURCE".into()));
                }
                result => result?,
            }
            (catalog.peek_id(), catalog.next_id())
        };
        let def = SourceDef::try_new(
            id,
            plan.name,
            plan.columns,
            plan.watermark,
            plan.options,
            plan.definition,
        )?;
        self.commit_new_object(CatalogObject::Source(def.clone()), next_id)?;
        self.register_source(Arc::new(def))?;
        Ok(QueryResult::Command("CREATE SOURCE".into()))
    }

    /// `DROP TABLE`, `DROP SOURCE` and `DROP MATERIALIZED VIEW`: one write removes the entries
    /// and all their data. Views over a dropped source go too with `CASCADE`; without it the
    /// drop is refused.
    pub(super) async fn drop_objects(
        &self,
        kind: ObjectKind,
        names: &[ObjectName],
        if_exists: bool,
        cascade: bool,
    ) -> Result<QueryResult, QueryError> {
        let _ddl = self.ddl.lock().await;
        let mut dropped = Vec::new();
        {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            for name in names {
                let name = object_name(name)?;
                match catalog.get_kind(kind, &name)? {
                    Some(object) => dropped.push(object.clone()),
                    None if if_exists => {}
                    None => {
                        return Err(CatalogError::NotFound {
                            kind: kind.as_str(),
                            name,
                        }
                        .into());
                    }
                }
            }
            // Views over the dropped objects, and views over those, and so on.
            let mut dependents: Vec<CatalogObject> = Vec::new();
            loop {
                let found: Vec<CatalogObject> = catalog
                    .objects()
                    .filter(|o| match o {
                        CatalogObject::View(v) => dropped
                            .iter()
                            .chain(&dependents)
                            .any(|d| v.depends_on(d.id())),
                        _ => false,
                    })
                    .filter(|v| !dropped.iter().chain(&dependents).any(|d| d.id() == v.id()))
                    .cloned()
                    .collect();
                if found.is_empty() {
                    break;
                }
                dependents.extend(found);
            }
            if !cascade && let Some(CatalogObject::View(view)) = dependents.first() {
                let source = dropped
                    .iter()
                    .find(|d| view.depends_on(d.id()))
                    .expect("a dependent depends on a dropped object");
                return Err(CatalogError::HasDependents {
                    kind: source.kind().as_str(),
                    name: source.name().to_string(),
                    dependents: dependents
                        .iter()
                        .map(|v| format!("materialized view \"{}\"", v.name()))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
                .into());
            }
            dropped.extend(dependents);
        }
        // A dropped view stops before its data goes, so no epoch writes after the drop.
        {
            let mut views = self.views.write().unwrap_or_else(|e| e.into_inner());
            for object in &dropped {
                views.remove(object.name());
            }
        }
        // Writers of the dropped objects wait until the drop committed, then fail.
        let (tables, sources) = {
            let tables = self.tables.read().unwrap_or_else(|e| e.into_inner());
            let sources = self.sources.read().unwrap_or_else(|e| e.into_inner());
            let names = || dropped.iter().map(|o| o.name());
            (
                names()
                    .filter_map(|n| tables.get(n).cloned())
                    .collect::<Vec<_>>(),
                names()
                    .filter_map(|n| sources.get(n).cloned())
                    .collect::<Vec<_>>(),
            )
        };
        let table_locks: Vec<_> = tables.iter().map(|t| t.lock_for_drop()).collect();
        let source_locks: Vec<_> = sources.iter().map(|s| s.lock_for_drop()).collect();
        let mut write = WriteBatch::default();
        for object in &dropped {
            self.catalog_store.delete(&mut write, object);
        }
        self.commit_ddl(write)?;
        table_locks.into_iter().for_each(|lock| lock.retire());
        source_locks.into_iter().for_each(|lock| lock.retire());
        let mut catalog = self.catalog.write().unwrap_or_else(|e| e.into_inner());
        let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
        let mut sources = self.sources.write().unwrap_or_else(|e| e.into_inner());
        let mut pullers = self.pullers.write().unwrap_or_else(|e| e.into_inner());
        for object in &dropped {
            catalog.remove(object.name());
            tables.remove(object.name());
            sources.remove(object.name());
            // Stops the connector; its next append finds the log retired.
            pullers.remove(object.name());
            self.ctx
                .deregister_table(datafusion::common::TableReference::bare(
                    object.name().to_string(),
                ))?;
        }
        self.catalog_changed();
        Ok(QueryResult::Command(format!(
            "DROP {}",
            kind.as_str().to_ascii_uppercase()
        )))
    }
}
