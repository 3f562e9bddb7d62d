//! `pg_index` and `pg_constraint`: primary keys, the only keys Weir has. A primary key shows
//! as its unique btree index and its constraint, named `<table>_pkey`, as Postgres names them.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::error::Result;

use super::oids::UserOid;
use super::rows::*;
use super::snapshot::{RelKind, Relation, Snapshot};

pub fn pg_index_schema() -> SchemaRef {
    schema(&[
        ("indexrelid", OID),
        ("indrelid", OID),
        ("indnatts", Col::Int16),
        ("indnkeyatts", Col::Int16),
        ("indisunique", Col::Bool),
        ("indnullsnotdistinct", Col::Bool),
        ("indisprimary", Col::Bool),
        ("indisexclusion", Col::Bool),
        ("indimmediate", Col::Bool),
        ("indisclustered", Col::Bool),
        ("indisvalid", Col::Bool),
        ("indcheckxmin", Col::Bool),
        ("indisready", Col::Bool),
        ("indislive", Col::Bool),
        ("indisreplident", Col::Bool),
        ("indkey", Col::Int16Array),
        ("indcollation", Col::OidArray),
        ("indclass", Col::OidArray),
        ("indoption", Col::Int16Array),
        ("indexprs", Col::Text),
        ("indpred", Col::Text),
    ])
}

/// Relations with a primary key, each with its index's OID.
fn keyed(relations: &[Relation]) -> impl Iterator<Item = (&Relation, i32)> {
    relations.iter().filter_map(|r| {
        let Some(UserOid::Relation(id)) = UserOid::decode(r.oid) else {
            return None;
        };
        (r.kind != RelKind::Index && !r.primary_key.is_empty())
            .then(|| (r, UserOid::PrimaryKeyIndex(id).oid()))
    })
}

pub fn pg_index(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let relations = &snapshot.relations;
    let mut rows = Rows::new(schema);
    for (r, index) in keyed(relations) {
        let n = r.primary_key.len() as i16;
        rows.push(vec![
            oid(index),
            oid(r.oid),
            int16(n),
            int16(n),
            boolean(true),
            boolean(false),
            boolean(true),
            boolean(false),
            boolean(true),
            boolean(false),
            boolean(true),
            boolean(false),
            boolean(true),
            boolean(true),
            boolean(false),
            int16_array(&r.primary_key),
            oid_array(&vec![0; r.primary_key.len()]),
            oid_array(&vec![0; r.primary_key.len()]),
            int16_array(&vec![0; r.primary_key.len()]),
            null_text(),
            null_text(),
        ]);
    }
    rows.finish()
}

pub fn pg_constraint_schema() -> SchemaRef {
    schema(&[
        ("oid", OID),
        ("conname", Col::Text),
        ("connamespace", OID),
        ("contype", Col::Text),
        ("condeferrable", Col::Bool),
        ("condeferred", Col::Bool),
        ("convalidated", Col::Bool),
        ("conrelid", OID),
        ("contypid", OID),
        ("conindid", OID),
        ("conparentid", OID),
        ("confrelid", OID),
        ("confupdtype", Col::Text),
        ("confdeltype", Col::Text),
        ("confmatchtype", Col::Text),
        ("conislocal", Col::Bool),
        ("coninhcount", Col::Int32),
        ("connoinherit", Col::Bool),
        ("conkey", Col::Int16Array),
        ("confkey", Col::Int16Array),
        ("conpfeqop", Col::OidArray),
        ("conppeqop", Col::OidArray),
        ("conffeqop", Col::OidArray),
        ("confdelsetcols", Col::Int16Array),
        ("conexclop", Col::OidArray),
        ("conbin", Col::Text),
    ])
}

pub fn pg_constraint(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let relations = &snapshot.relations;
    let mut rows = Rows::new(schema);
    for (r, index) in keyed(relations) {
        let Some(UserOid::Relation(id)) = UserOid::decode(r.oid) else {
            continue;
        };
        rows.push(vec![
            oid(UserOid::PrimaryKey(id).oid()),
            text(r.primary_key_name()),
            oid(r.namespace.oid),
            text("p"),
            boolean(false),
            boolean(false),
            boolean(true),
            oid(r.oid),
            oid(0),
            oid(index),
            oid(0),
            oid(0),
            text(" "),
            text(" "),
            text(" "),
            boolean(true),
            int32(0),
            boolean(true),
            int16_array(&r.primary_key),
            null_list(DataType::Int16),
            null_list(DataType::Int32),
            null_list(DataType::Int32),
            null_list(DataType::Int32),
            null_list(DataType::Int16),
            null_list(DataType::Int32),
            null_text(),
        ]);
    }
    rows.finish()
}
