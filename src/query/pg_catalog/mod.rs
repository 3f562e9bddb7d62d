//! The Postgres catalog clients read (`pg_catalog`, `information_schema`), generated from
//! Weir's catalog. psql's `\d`, SQLAlchemy's inspector, pgjdbc's `DatabaseMetaData` and
//! Grafana's query builder each learn what relations exist from these tables, and refuse to
//! work when an answer does not parse, so the tables that describe relations are built here
//! with Postgres 15's columns and types:
//!
//! - `pg_database`, one row: the database, under the name the session connected by;
//! - `pg_namespace`, `pg_class` (sources are tables, `r`; materialized views are `m`; primary
//!   keys are indexes, `i`), `pg_attribute`, `pg_attrdef`, `pg_index`, `pg_constraint`,
//!   `pg_tables`, `pg_views`, `pg_matviews`; `pg_roles`, `pg_user`, `pg_authid` from the users;
//! - `information_schema.schemata`, `tables`, `columns`, `views`;
//! - the functions that print them (`functions.rs`).
//!
//! The rest of `pg_catalog` (`pg_type`, `pg_proc`, `pg_am`, ...) describes Postgres itself and
//! comes from `datafusion-pg-catalog`, as do the SQL rewrites in `query::compat`.

mod columns;
mod databases;
mod functions;
mod information_schema;
mod keys;
mod oids;
mod relations;
mod roles;
mod rows;
mod snapshot;
mod types;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;
use weir_catalog::Catalog;

pub use types::wire_type;

use self::rows::{Build, CatalogTable};
use self::snapshot::CatalogSource;
use crate::query::engine::DATABASE;

/// Sets up `pg_catalog` and `information_schema` in `ctx`'s default catalog.
pub fn register(
    ctx: &SessionContext,
    catalog: Arc<RwLock<Catalog>>,
    users: Arc<crate::auth::Users>,
) -> Result<()> {
    datafusion_pg_catalog::setup_pg_catalog(
        ctx,
        DATABASE,
        datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider,
    )
    .map_err(|e| *e)?;
    let source = Arc::new(CatalogSource::new(
        catalog.clone(),
        users,
        ctx.state().catalog_list(),
    ));
    let default_catalog = ctx
        .catalog(DATABASE)
        .ok_or_else(|| DataFusionError::Internal("no default catalog".into()))?;
    let postgres_tables = default_catalog.schema("pg_catalog");
    let tables: [TableDefinition; 13] = [
        (
            "pg_database",
            databases::pg_database_schema,
            databases::pg_database,
        ),
        (
            "pg_namespace",
            relations::pg_namespace_schema,
            relations::pg_namespace,
        ),
        ("pg_class", relations::pg_class_schema, relations::pg_class),
        (
            "pg_tables",
            relations::pg_tables_schema,
            relations::pg_tables,
        ),
        ("pg_views", relations::pg_views_schema, relations::pg_views),
        (
            "pg_matviews",
            relations::pg_matviews_schema,
            relations::pg_matviews,
        ),
        (
            "pg_attribute",
            columns::pg_attribute_schema,
            columns::pg_attribute,
        ),
        (
            "pg_attrdef",
            columns::pg_attrdef_schema,
            columns::pg_attrdef,
        ),
        ("pg_index", keys::pg_index_schema, keys::pg_index),
        (
            "pg_constraint",
            keys::pg_constraint_schema,
            keys::pg_constraint,
        ),
        ("pg_roles", roles::pg_roles_schema, roles::pg_roles),
        ("pg_authid", roles::pg_authid_schema, roles::pg_authid),
        ("pg_user", roles::pg_user_schema, roles::pg_user),
    ];
    default_catalog.register_schema(
        "pg_catalog",
        Arc::new(CatalogSchema::new(&source, &tables, postgres_tables)?),
    )?;
    let information_schema: [TableDefinition; 4] = [
        (
            "schemata",
            information_schema::schemata_schema,
            information_schema::schemata,
        ),
        (
            "tables",
            information_schema::tables_schema,
            information_schema::tables,
        ),
        (
            "columns",
            information_schema::columns_schema,
            information_schema::columns,
        ),
        (
            "views",
            information_schema::views_schema,
            information_schema::views,
        ),
    ];
    default_catalog.register_schema(
        "information_schema",
        Arc::new(CatalogSchema::new(&source, &information_schema, None)?),
    )?;
    source.load_system_relations()?;
    functions::register(ctx, &catalog, &source);
    Ok(())
}

/// The name a session connected to the database by, in the session config of its queries'
/// task contexts (absent: [`DATABASE`], Weir's own name for it). The catalog tables read it
/// when they run: `pg_database` and `information_schema` name the database as the session
/// does.
#[derive(Debug, Clone)]
pub struct ConnectedDatabase(pub String);

/// A generated table: its name, its columns, and how its rows are made.
type TableDefinition = (&'static str, fn() -> SchemaRef, Build);

/// A schema of generated catalog tables, falling back to another schema for the rest.
#[derive(Debug)]
struct CatalogSchema {
    tables: HashMap<String, Arc<dyn TableProvider>>,
    fallback: Option<Arc<dyn SchemaProvider>>,
}

impl CatalogSchema {
    fn new(
        source: &Arc<CatalogSource>,
        tables: &[TableDefinition],
        fallback: Option<Arc<dyn SchemaProvider>>,
    ) -> Result<Self> {
        let tables = tables
            .iter()
            .map(|(name, schema, build)| {
                let provider = CatalogTable::provider(schema(), source.clone(), *build)?;
                Ok((name.to_string(), provider))
            })
            .collect::<Result<_>>()?;
        Ok(Self { tables, fallback })
    }
}

#[async_trait]
impl SchemaProvider for CatalogSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tables.keys().cloned().collect();
        if let Some(fallback) = &self.fallback {
            names.extend(
                fallback
                    .table_names()
                    .into_iter()
                    .filter(|n| !self.tables.contains_key(n)),
            );
        }
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(table) = self.tables.get(&name.to_ascii_lowercase()) {
            return Ok(Some(table.clone()));
        }
        match &self.fallback {
            Some(fallback) => fallback.table(name).await,
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(&name.to_ascii_lowercase())
            || self
                .fallback
                .as_ref()
                .is_some_and(|fallback| fallback.table_exist(name))
    }
}
