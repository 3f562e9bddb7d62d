//! The relations the Postgres catalog shows, read at one moment: Weir's own objects from its
//! catalog, and the system relations (`pg_catalog`, `information_schema`, `weir`) from the
//! query engine's schemas.

use std::sync::{Arc, OnceLock, RwLock, Weak};

use datafusion::arrow::datatypes::FieldRef;
use datafusion::catalog::CatalogProviderList;
use datafusion::error::{DataFusionError, Result};
use weir_catalog::{Catalog, CatalogObject, ColumnDef};

use crate::auth::Users;

use super::oids::{self, UserOid};
use crate::query::engine::{DATABASE, SYSTEM_SCHEMA};

/// A schema, as `pg_namespace` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Namespace {
    pub oid: i32,
    pub name: &'static str,
}

pub const PG_CATALOG: Namespace = Namespace {
    oid: oids::PG_CATALOG_NAMESPACE,
    name: "pg_catalog",
};
pub const PUBLIC: Namespace = Namespace {
    oid: oids::PUBLIC_NAMESPACE,
    name: weir_sql::plan::DEFAULT_SCHEMA,
};
pub const INFORMATION_SCHEMA: Namespace = Namespace {
    oid: oids::INFORMATION_SCHEMA_NAMESPACE,
    name: "information_schema",
};
pub const WEIR: Namespace = Namespace {
    oid: oids::WEIR_NAMESPACE,
    name: SYSTEM_SCHEMA,
};

/// Every schema, in the order `\dn` would sort them.
pub const NAMESPACES: [Namespace; 4] = [INFORMATION_SCHEMA, PG_CATALOG, PUBLIC, WEIR];

/// `pg_class.relkind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelKind {
    /// `r`: tables, and sources, which are append-only tables to a client.
    Table,
    /// `v`: system views.
    View,
    /// `m`
    MaterializedView,
    /// `i`: a primary key's index.
    Index,
}

impl RelKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::Table => "r",
            Self::View => "v",
            Self::MaterializedView => "m",
            Self::Index => "i",
        }
    }
}

/// A column of a relation.
#[derive(Debug, Clone)]
pub struct Column {
    pub field: FieldRef,
    pub not_null: bool,
    /// The default's SQL, as written.
    pub default: Option<String>,
}

/// A relation: table, source, view, or a primary key's index.
#[derive(Debug, Clone)]
pub struct Relation {
    pub oid: i32,
    pub namespace: Namespace,
    pub name: String,
    pub kind: RelKind,
    pub columns: Vec<Column>,
    /// Key columns by attribute number (from 1), in key order.
    pub primary_key: Vec<i16>,
    /// The query of a view.
    pub definition: Option<String>,
    /// For a user object, what Weir calls it: `table`, `source`, `materialized view`.
    pub weir_kind: Option<&'static str>,
}

impl Relation {
    /// The name of its primary key's index and constraint, as Postgres names them.
    pub fn primary_key_name(&self) -> String {
        format!("{}_pkey", self.name)
    }

    pub fn column_names(&self, attnums: &[i16]) -> Vec<&str> {
        attnums
            .iter()
            .filter_map(|n| self.columns.get(*n as usize - 1))
            .map(|c| c.field.name().as_str())
            .collect()
    }
}

/// A role, as `pg_roles` and `pg_authid` list it.
#[derive(Debug, Clone)]
pub struct Role {
    pub oid: i32,
    pub name: String,
    pub login: bool,
    /// The SCRAM verifier, never the password.
    pub password: Option<String>,
}

/// Everything the catalog tables show, read at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// System relations first.
    pub relations: Vec<Relation>,
    /// The bootstrap role (`postgres`, OID 10, owner of everything), then Weir's users.
    pub roles: Vec<Role>,
    /// The database's name as the reading session knows it.
    pub database: String,
}

/// Where snapshots come from. Holds the engine's schemas weakly: they hold this.
#[derive(Debug)]
pub struct CatalogSource {
    catalog: Arc<RwLock<Catalog>>,
    users: Arc<Users>,
    schemas: Weak<dyn CatalogProviderList>,
    /// System relations never change after startup, so they are listed once, at startup.
    system: OnceLock<Vec<Relation>>,
}

impl CatalogSource {
    pub fn new(
        catalog: Arc<RwLock<Catalog>>,
        users: Arc<Users>,
        schemas: &Arc<dyn CatalogProviderList>,
    ) -> Self {
        Self {
            catalog,
            users,
            schemas: Arc::downgrade(schemas),
            system: OnceLock::new(),
        }
    }

    /// Every relation and role now.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let mut relations = self.system.get().cloned().unwrap_or_default();
        {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            for object in catalog.objects() {
                relations.extend(user_relations(object));
            }
        }
        let bootstrap = Role {
            oid: oids::OWNER,
            name: super::relations::OWNER_NAME.into(),
            // Under `trust`, any name logs in; under `scram` only users with a password.
            login: true,
            password: None,
        };
        let users = self.users.all().into_iter().map(|(name, user)| Role {
            oid: oids::role(&name),
            login: user.login,
            password: user.password,
            name,
        });
        Ok(Snapshot {
            relations,
            roles: std::iter::once(bootstrap).chain(users).collect(),
            database: DATABASE.to_string(),
        })
    }

    /// Lists the system relations: once every schema is registered. Their providers are made
    /// in memory, so the futures complete at once.
    pub fn load_system_relations(&self) -> Result<()> {
        let relations = futures::executor::block_on(self.system_relations())?;
        let _ = self.system.set(relations);
        Ok(())
    }

    async fn system_relations(&self) -> Result<Vec<Relation>> {
        let schemas = self
            .schemas
            .upgrade()
            .ok_or_else(|| DataFusionError::Internal("the engine is gone".into()))?;
        let catalog = schemas
            .catalog(DATABASE)
            .ok_or_else(|| DataFusionError::Internal("no default catalog".into()))?;
        let mut relations = Vec::new();
        for (namespace, mut next_oid) in [
            (PG_CATALOG, oids::FIRST_PG_CATALOG_RELATION),
            (INFORMATION_SCHEMA, oids::FIRST_INFORMATION_SCHEMA_RELATION),
            (WEIR, oids::FIRST_WEIR_RELATION),
        ] {
            let Some(schema) = catalog.schema(namespace.name) else {
                continue;
            };
            let mut names = schema.table_names();
            names.sort();
            for name in names {
                let Some(table) = schema.table(&name).await? else {
                    continue;
                };
                let oid = oids::well_known_relation(&name)
                    .filter(|_| namespace == PG_CATALOG)
                    .unwrap_or_else(|| {
                        next_oid += 1;
                        next_oid
                    });
                relations.push(Relation {
                    oid,
                    namespace,
                    kind: system_kind(namespace, &name),
                    name,
                    columns: table
                        .schema()
                        .fields()
                        .iter()
                        .map(|field| Column {
                            not_null: !field.is_nullable(),
                            field: field.clone(),
                            default: None,
                        })
                        .collect(),
                    primary_key: Vec::new(),
                    definition: None,
                    weir_kind: None,
                });
            }
        }
        Ok(relations)
    }
}

/// As Postgres has them: `pg_catalog`'s tables are tables, except its few views;
/// `information_schema` is all views, and so are Weir's own tables, which are computed.
fn system_kind(namespace: Namespace, name: &str) -> RelKind {
    let pg_catalog_view = name.starts_with("pg_stat")
        || matches!(
            name,
            "pg_tables"
                | "pg_views"
                | "pg_matviews"
                | "pg_roles"
                | "pg_user"
                | "pg_settings"
                | "pg_replication_slots"
        );
    if namespace == PG_CATALOG && !pg_catalog_view {
        RelKind::Table
    } else {
        RelKind::View
    }
}

/// A Weir object's relation, and its primary key's index if it has one.
pub fn user_relations(object: &CatalogObject) -> Vec<Relation> {
    let id = object.id();
    let (kind, schema, defs, primary_key, definition): (_, _, &[ColumnDef], &[usize], _) =
        match object {
            CatalogObject::Table(t) => (
                RelKind::Table,
                t.arrow_schema(),
                &t.columns,
                &t.primary_key,
                None,
            ),
            CatalogObject::Source(s) => (RelKind::Table, s.arrow_schema(), &s.columns, &[], None),
            CatalogObject::View(v) => (
                RelKind::MaterializedView,
                v.arrow_schema(),
                &v.columns,
                &[],
                Some(v.query.clone()),
            ),
        };
    let columns: Vec<Column> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let def = defs.get(i);
            Column {
                field: field.clone(),
                not_null: def.map_or(!field.is_nullable(), |d| !d.nullable),
                default: def.and_then(|d| d.default.clone()),
            }
        })
        .collect();
    let relation = Relation {
        oid: UserOid::Relation(id).oid(),
        namespace: PUBLIC,
        name: object.name().to_string(),
        kind,
        columns,
        primary_key: primary_key.iter().map(|i| *i as i16 + 1).collect(),
        definition,
        weir_kind: Some(object.kind().as_str()),
    };
    if relation.primary_key.is_empty() {
        return vec![relation];
    }
    let index = Relation {
        oid: UserOid::PrimaryKeyIndex(id).oid(),
        namespace: PUBLIC,
        name: relation.primary_key_name(),
        kind: RelKind::Index,
        columns: relation
            .primary_key
            .iter()
            .map(|n| relation.columns[*n as usize - 1].clone())
            .collect(),
        primary_key: Vec::new(),
        definition: None,
        weir_kind: Some("index"),
    };
    vec![relation, index]
}
