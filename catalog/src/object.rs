//! Object definitions as persisted: what a user created, with its id, schema and options.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::{CatalogError, ColumnType, ObjectId, SourceDef, ViewDef};

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Column name, as Postgres folds it (unquoted identifiers lower-cased).
    pub name: String,
    /// Stored type.
    pub ty: ColumnType,
    /// False for `NOT NULL` and primary-key columns.
    pub nullable: bool,
    /// The `DEFAULT` expression as SQL text, planned again at every start so its functions
    /// (`now()`) are evaluated per insert.
    pub default: Option<String>,
}

/// A reference table: rows keyed by primary key in RocksDB. Streaming views will join against
/// these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    /// Never reused; prefixes every row key.
    pub id: ObjectId,
    /// Table name (one schema, `public`, for now).
    pub name: String,
    /// Columns in declaration order.
    pub columns: Vec<ColumnDef>,
    /// Indexes into `columns` of the primary key, in key order; empty when the table has
    /// none, in which case rows are keyed by a hidden sequence number.
    pub primary_key: Vec<usize>,
    /// The statement that created the table, for `SHOW CREATE` and humans.
    pub definition: String,
}

impl TableDef {
    /// Builds a definition, checking what any database would: unique column names, at least one
    /// column, and primary-key columns that exist (they become `NOT NULL`).
    pub fn try_new(
        id: ObjectId,
        name: String,
        mut columns: Vec<ColumnDef>,
        primary_key: Vec<String>,
        definition: String,
    ) -> Result<Self, CatalogError> {
        if columns.is_empty() {
            return Err(CatalogError::InvalidDefinition(format!(
                "table \"{name}\" must have at least one column"
            )));
        }
        for (i, column) in columns.iter().enumerate() {
            if columns[..i].iter().any(|c| c.name == column.name) {
                return Err(CatalogError::InvalidDefinition(format!(
                    "column \"{}\" specified more than once",
                    column.name
                )));
            }
        }
        let mut key = Vec::with_capacity(primary_key.len());
        for key_column in primary_key {
            let index = columns
                .iter()
                .position(|c| c.name == key_column)
                .ok_or_else(|| {
                    CatalogError::InvalidDefinition(format!(
                        "column \"{key_column}\" named in key does not exist"
                    ))
                })?;
            if key.contains(&index) {
                return Err(CatalogError::InvalidDefinition(format!(
                    "column \"{key_column}\" appears twice in primary key constraint"
                )));
            }
            columns[index].nullable = false;
            key.push(index);
        }
        Ok(Self {
            id,
            name,
            columns,
            primary_key: key,
            definition,
        })
    }

    /// The Arrow schema rows of this table are scanned with.
    pub fn arrow_schema(&self) -> SchemaRef {
        columns_schema(&self.columns)
    }
}

/// The Arrow schema of `columns`.
pub fn columns_schema(columns: &[ColumnDef]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| c.ty.arrow_field(&c.name, c.nullable))
            .collect::<Vec<_>>(),
    ))
}

impl ColumnDef {
    /// Nullable columns named and typed as `schema`'s fields: the columns of what a query
    /// produces (`CREATE TABLE ... AS`, a view).
    pub fn from_query_schema(
        schema: &datafusion::arrow::datatypes::Schema,
    ) -> Result<Vec<Self>, CatalogError> {
        schema
            .fields()
            .iter()
            .map(|f| {
                Ok(ColumnDef {
                    name: f.name().clone(),
                    ty: ColumnType::from_arrow(f)?,
                    nullable: true,
                    default: None,
                })
            })
            .collect()
    }
}

/// The kinds of object the catalog holds. Views and alerts join as variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A reference table.
    Table,
    /// An event source.
    Source,
    /// A materialized view.
    View,
}

impl ObjectKind {
    /// The word used in messages (`table "t" does not exist`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Source => "source",
            Self::View => "materialized view",
        }
    }
}

/// Any object in the catalog. Persisted: variants are only ever added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CatalogObject {
    /// A reference table.
    Table(TableDef),
    /// An event source.
    Source(SourceDef),
    /// A materialized view.
    View(ViewDef),
}

impl CatalogObject {
    /// The object's id.
    pub fn id(&self) -> ObjectId {
        match self {
            Self::Table(t) => t.id,
            Self::Source(s) => s.id,
            Self::View(v) => v.id,
        }
    }

    /// The object's name; names are unique across kinds, as relations share one namespace.
    pub fn name(&self) -> &str {
        match self {
            Self::Table(t) => &t.name,
            Self::Source(s) => &s.name,
            Self::View(v) => &v.name,
        }
    }

    /// The object's kind.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Self::Table(_) => ObjectKind::Table,
            Self::Source(_) => ObjectKind::Source,
            Self::View(_) => ObjectKind::View,
        }
    }
}
