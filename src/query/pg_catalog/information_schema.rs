//! `information_schema.schemata`, `tables`, `columns` and `views`, from the same snapshot as
//! `pg_catalog`, with Postgres's type names (`bigint`, `timestamp without time zone`).
//!
//! One departure from Postgres: materialized views are listed in `tables` and `views` (as
//! `VIEW`). Postgres leaves them out, but they are what Weir serves, and BI tools such as
//! Grafana list relations from `information_schema.tables` only.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::Result;

use super::relations::OWNER_NAME;
use super::rows::*;
use super::snapshot::{NAMESPACES, RelKind, Relation, Snapshot};
use super::types::ColumnType;

pub fn schemata_schema() -> SchemaRef {
    schema(&[
        ("catalog_name", Col::Text),
        ("schema_name", Col::Text),
        ("schema_owner", Col::Text),
        ("default_character_set_catalog", Col::Text),
        ("default_character_set_schema", Col::Text),
        ("default_character_set_name", Col::Text),
        ("sql_path", Col::Text),
    ])
}

pub fn schemata(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for namespace in NAMESPACES {
        rows.push(vec![
            text(&snapshot.database),
            text(namespace.name),
            text(OWNER_NAME),
            null_text(),
            null_text(),
            null_text(),
            null_text(),
        ]);
    }
    rows.finish()
}

pub fn tables_schema() -> SchemaRef {
    schema(&[
        ("table_catalog", Col::Text),
        ("table_schema", Col::Text),
        ("table_name", Col::Text),
        ("table_type", Col::Text),
        ("self_referencing_column_name", Col::Text),
        ("reference_generation", Col::Text),
        ("user_defined_type_catalog", Col::Text),
        ("user_defined_type_schema", Col::Text),
        ("user_defined_type_name", Col::Text),
        ("is_insertable_into", Col::Text),
        ("is_typed", Col::Text),
        ("commit_action", Col::Text),
    ])
}

fn listed(relations: &[Relation]) -> impl Iterator<Item = &Relation> {
    relations.iter().filter(|r| r.kind != RelKind::Index)
}

fn is_view(r: &Relation) -> bool {
    matches!(r.kind, RelKind::View | RelKind::MaterializedView)
}

/// Tables take `INSERT`; sources take events through their connector, views nothing.
fn insertable(r: &Relation) -> &'static str {
    if r.weir_kind == Some("table") {
        "YES"
    } else {
        "NO"
    }
}

pub fn tables(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let relations = &snapshot.relations;
    let mut rows = Rows::new(schema);
    for r in listed(relations) {
        rows.push(vec![
            text(&snapshot.database),
            text(r.namespace.name),
            text(&r.name),
            text(if is_view(r) { "VIEW" } else { "BASE TABLE" }),
            null_text(),
            null_text(),
            null_text(),
            null_text(),
            null_text(),
            text(insertable(r)),
            text("NO"),
            null_text(),
        ]);
    }
    rows.finish()
}

pub fn columns_schema() -> SchemaRef {
    schema(&[
        ("table_catalog", Col::Text),
        ("table_schema", Col::Text),
        ("table_name", Col::Text),
        ("column_name", Col::Text),
        ("ordinal_position", Col::Int32),
        ("column_default", Col::Text),
        ("is_nullable", Col::Text),
        ("data_type", Col::Text),
        ("character_maximum_length", Col::Int32),
        ("character_octet_length", Col::Int32),
        ("numeric_precision", Col::Int32),
        ("numeric_precision_radix", Col::Int32),
        ("numeric_scale", Col::Int32),
        ("datetime_precision", Col::Int32),
        ("interval_type", Col::Text),
        ("interval_precision", Col::Int32),
        ("character_set_catalog", Col::Text),
        ("character_set_schema", Col::Text),
        ("character_set_name", Col::Text),
        ("collation_catalog", Col::Text),
        ("collation_schema", Col::Text),
        ("collation_name", Col::Text),
        ("domain_catalog", Col::Text),
        ("domain_schema", Col::Text),
        ("domain_name", Col::Text),
        ("udt_catalog", Col::Text),
        ("udt_schema", Col::Text),
        ("udt_name", Col::Text),
        ("scope_catalog", Col::Text),
        ("scope_schema", Col::Text),
        ("scope_name", Col::Text),
        ("maximum_cardinality", Col::Int32),
        ("dtd_identifier", Col::Text),
        ("is_self_referencing", Col::Text),
        ("is_identity", Col::Text),
        ("identity_generation", Col::Text),
        ("identity_start", Col::Text),
        ("identity_increment", Col::Text),
        ("identity_maximum", Col::Text),
        ("identity_minimum", Col::Text),
        ("identity_cycle", Col::Text),
        ("is_generated", Col::Text),
        ("generation_expression", Col::Text),
        ("is_updatable", Col::Text),
    ])
}

pub fn columns(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let relations = &snapshot.relations;
    let mut rows = Rows::new(schema);
    for r in listed(relations) {
        for (i, column) in r.columns.iter().enumerate() {
            let ty = ColumnType::of(&column.field);
            let (precision, radix, scale) = match ty.numeric {
                Some((p, r, s)) => (int32(p), int32(r), s.map_or_else(null_int32, int32)),
                None => (null_int32(), null_int32(), null_int32()),
            };
            let position = (i + 1).to_string();
            let mut row = vec![
                text(&snapshot.database),
                text(r.namespace.name),
                text(&r.name),
                text(column.field.name()),
                int32(i as i32 + 1),
                opt_text(column.default.as_deref()),
                text(if column.not_null { "NO" } else { "YES" }),
                text(ty.sql_name),
                null_int32(),
                // As Postgres: the most a text value can take, in bytes.
                if ty.sql_name == "text" {
                    int32(1_073_741_824)
                } else {
                    null_int32()
                },
                precision,
                radix,
                scale,
                ty.datetime_precision.map_or_else(null_int32, int32),
                null_text(),
                null_int32(),
            ];
            row.extend([null_text(), null_text(), null_text()]);
            row.extend([null_text(), null_text(), null_text()]);
            row.extend([null_text(), null_text(), null_text()]);
            row.extend([
                text(&snapshot.database),
                text("pg_catalog"),
                text(&ty.type_name),
            ]);
            row.extend([null_text(), null_text(), null_text()]);
            row.extend([null_int32(), text(position), text("NO"), text("NO")]);
            row.extend([null_text(), null_text(), null_text(), null_text()]);
            row.extend([null_text(), text("NO"), text("NEVER"), null_text()]);
            row.push(text(insertable(r)));
            rows.push(row);
        }
    }
    rows.finish()
}

pub fn views_schema() -> SchemaRef {
    schema(&[
        ("table_catalog", Col::Text),
        ("table_schema", Col::Text),
        ("table_name", Col::Text),
        ("view_definition", Col::Text),
        ("check_option", Col::Text),
        ("is_updatable", Col::Text),
        ("is_insertable_into", Col::Text),
        ("is_trigger_updatable", Col::Text),
        ("is_trigger_deletable", Col::Text),
        ("is_trigger_insertable_into", Col::Text),
    ])
}

pub fn views(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let relations = &snapshot.relations;
    let mut rows = Rows::new(schema);
    for r in listed(relations).filter(|r| is_view(r)) {
        rows.push(vec![
            text(&snapshot.database),
            text(r.namespace.name),
            text(&r.name),
            opt_text(r.definition.as_deref()),
            text("NONE"),
            text("NO"),
            text("NO"),
            text("NO"),
            text("NO"),
            text("NO"),
        ]);
    }
    rows.finish()
}
