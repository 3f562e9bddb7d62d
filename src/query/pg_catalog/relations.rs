//! `pg_namespace`, `pg_class` and the views over it (`pg_tables`, `pg_views`, `pg_matviews`).

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::error::Result;

use super::oids;
use super::rows::*;
use super::snapshot::{NAMESPACES, RelKind, Snapshot};

/// Who owns every relation until Weir has roles: `pg_get_userbyid(10)`.
pub const OWNER_NAME: &str = "postgres";

pub fn pg_namespace_schema() -> SchemaRef {
    schema(&[
        ("oid", OID),
        ("nspname", Col::Text),
        ("nspowner", OID),
        ("nspacl", Col::TextArray),
    ])
}

pub fn pg_namespace(_: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for namespace in NAMESPACES {
        rows.push(vec![
            oid(namespace.oid),
            text(namespace.name),
            oid(oids::OWNER),
            null_list(DataType::Utf8),
        ]);
    }
    rows.finish()
}

pub fn pg_class_schema() -> SchemaRef {
    schema(&[
        ("oid", OID),
        ("relname", Col::Text),
        ("relnamespace", OID),
        ("reltype", OID),
        ("reloftype", OID),
        ("relowner", OID),
        ("relam", OID),
        ("relfilenode", OID),
        ("reltablespace", OID),
        ("relpages", Col::Int32),
        ("reltuples", Col::Float32),
        ("relallvisible", Col::Int32),
        ("reltoastrelid", OID),
        ("relhasindex", Col::Bool),
        ("relisshared", Col::Bool),
        ("relpersistence", Col::Text),
        ("relkind", Col::Text),
        ("relnatts", Col::Int16),
        ("relchecks", Col::Int16),
        ("relhasrules", Col::Bool),
        ("relhastriggers", Col::Bool),
        ("relhassubclass", Col::Bool),
        ("relrowsecurity", Col::Bool),
        ("relforcerowsecurity", Col::Bool),
        ("relispopulated", Col::Bool),
        ("relreplident", Col::Text),
        ("relispartition", Col::Bool),
        ("relrewrite", OID),
        ("relfrozenxid", Col::Int32),
        ("relminmxid", Col::Int32),
        ("relacl", Col::TextArray),
        ("reloptions", Col::TextArray),
        ("relpartbound", Col::Text),
    ])
}

pub fn pg_class(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let relations = &snapshot.relations;
    let mut rows = Rows::new(schema);
    for r in relations {
        rows.push(vec![
            oid(r.oid),
            text(&r.name),
            oid(r.namespace.oid),
            oid(0),
            oid(0),
            oid(oids::OWNER),
            oid(if r.kind == RelKind::Index {
                oids::BTREE
            } else {
                0
            }),
            oid(r.oid),
            oid(0),
            int32(0),
            // Unknown, as for a table never analyzed.
            float32(-1.0),
            int32(0),
            oid(0),
            boolean(!r.primary_key.is_empty()),
            boolean(false),
            text("p"),
            text(r.kind.code()),
            int16(r.columns.len() as i16),
            int16(0),
            boolean(false),
            boolean(false),
            boolean(false),
            boolean(false),
            boolean(false),
            boolean(true),
            text(if r.primary_key.is_empty() { "n" } else { "d" }),
            boolean(false),
            oid(0),
            int32(0),
            int32(0),
            null_list(DataType::Utf8),
            null_list(DataType::Utf8),
            null_text(),
        ]);
    }
    rows.finish()
}

pub fn pg_tables_schema() -> SchemaRef {
    schema(&[
        ("schemaname", Col::Text),
        ("tablename", Col::Text),
        ("tableowner", Col::Text),
        ("tablespace", Col::Text),
        ("hasindexes", Col::Bool),
        ("hasrules", Col::Bool),
        ("hastriggers", Col::Bool),
        ("rowsecurity", Col::Bool),
    ])
}

pub fn pg_tables(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let relations = &snapshot.relations;
    let mut rows = Rows::new(schema);
    for r in relations.iter().filter(|r| r.kind == RelKind::Table) {
        rows.push(vec![
            text(r.namespace.name),
            text(&r.name),
            text(OWNER_NAME),
            null_text(),
            boolean(!r.primary_key.is_empty()),
            boolean(false),
            boolean(false),
            boolean(false),
        ]);
    }
    rows.finish()
}

pub fn pg_views_schema() -> SchemaRef {
    schema(&[
        ("schemaname", Col::Text),
        ("viewname", Col::Text),
        ("viewowner", Col::Text),
        ("definition", Col::Text),
    ])
}

pub fn pg_views(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let relations = &snapshot.relations;
    let mut rows = Rows::new(schema);
    for r in relations.iter().filter(|r| r.kind == RelKind::View) {
        rows.push(vec![
            text(r.namespace.name),
            text(&r.name),
            text(OWNER_NAME),
            opt_text(r.definition.as_deref()),
        ]);
    }
    rows.finish()
}

pub fn pg_matviews_schema() -> SchemaRef {
    schema(&[
        ("schemaname", Col::Text),
        ("matviewname", Col::Text),
        ("matviewowner", Col::Text),
        ("tablespace", Col::Text),
        ("hasindexes", Col::Bool),
        ("ispopulated", Col::Bool),
        ("definition", Col::Text),
    ])
}

pub fn pg_matviews(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let relations = &snapshot.relations;
    let mut rows = Rows::new(schema);
    for r in relations
        .iter()
        .filter(|r| r.kind == RelKind::MaterializedView)
    {
        rows.push(vec![
            text(r.namespace.name),
            text(&r.name),
            text(OWNER_NAME),
            null_text(),
            boolean(false),
            boolean(true),
            opt_text(r.definition.as_deref()),
        ]);
    }
    rows.finish()
}
