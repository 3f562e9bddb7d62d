//! `pg_attribute` and `pg_attrdef`: every relation's columns and their defaults.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::error::Result;

use super::oids::{self, UserOid};
use super::rows::*;
use super::snapshot::Snapshot;
use super::types::ColumnType;

pub fn pg_attribute_schema() -> SchemaRef {
    schema(&[
        ("attrelid", OID),
        ("attname", Col::Text),
        ("atttypid", OID),
        ("attstattarget", Col::Int32),
        ("attlen", Col::Int16),
        ("attnum", Col::Int16),
        ("attndims", Col::Int32),
        ("attcacheoff", Col::Int32),
        ("atttypmod", Col::Int32),
        ("attbyval", Col::Bool),
        ("attalign", Col::Text),
        ("attstorage", Col::Text),
        ("attcompression", Col::Text),
        ("attnotnull", Col::Bool),
        ("atthasdef", Col::Bool),
        ("atthasmissing", Col::Bool),
        ("attidentity", Col::Text),
        ("attgenerated", Col::Text),
        ("attisdropped", Col::Bool),
        ("attislocal", Col::Bool),
        ("attinhcount", Col::Int32),
        ("attcollation", OID),
        ("attacl", Col::TextArray),
        ("attoptions", Col::TextArray),
        ("attfdwoptions", Col::TextArray),
        ("attmissingval", Col::Text),
    ])
}

/// Text columns collate by the database default, as in Postgres.
const DEFAULT_COLLATION: i32 = 100;

pub fn pg_attribute(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let relations = &snapshot.relations;
    let mut rows = Rows::new(schema);
    for r in relations {
        for (i, column) in r.columns.iter().enumerate() {
            let ty = ColumnType::of(&column.field);
            let collatable = matches!(ty.sql_name, "text" | "character varying");
            rows.push(vec![
                oid(r.oid),
                text(column.field.name()),
                oid(ty.oid),
                int32(-1),
                int16(ty.len),
                int16(i as i16 + 1),
                int32(i32::from(ty.sql_name == "ARRAY")),
                int32(-1),
                int32(ty.typmod),
                boolean(ty.by_value),
                text(ty.align),
                text(if ty.len == -1 { "x" } else { "p" }),
                text(""),
                boolean(column.not_null),
                boolean(column.default.is_some()),
                boolean(false),
                text(""),
                text(""),
                boolean(false),
                boolean(true),
                int32(0),
                oid(if collatable { DEFAULT_COLLATION } else { 0 }),
                null_list(DataType::Utf8),
                null_list(DataType::Utf8),
                null_list(DataType::Utf8),
                null_text(),
            ]);
        }
    }
    rows.finish()
}

pub fn pg_attrdef_schema() -> SchemaRef {
    schema(&[
        ("oid", OID),
        ("adrelid", OID),
        ("adnum", Col::Int16),
        ("adbin", Col::Text),
    ])
}

/// `adbin` holds the default's SQL, which is what `pg_get_expr` gives back.
pub fn pg_attrdef(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let relations = &snapshot.relations;
    let mut rows = Rows::new(schema);
    for r in relations {
        let Some(UserOid::Relation(id)) = UserOid::decode(r.oid) else {
            continue;
        };
        for (i, column) in r.columns.iter().enumerate() {
            if let Some(default) = &column.default
                && i < oids::MAX_DEFAULT_COLUMNS
            {
                rows.push(vec![
                    oid(UserOid::Default(id, i).oid()),
                    oid(r.oid),
                    int16(i as i16 + 1),
                    text(default),
                ]);
            }
        }
    }
    rows.finish()
}
