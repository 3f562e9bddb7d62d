//! `pg_database`: Weir's one database, under the name the session connected by. Clients may
//! name the database as they like (psql's default is the user's name), so `\l`, SQLAlchemy's
//! `get_catalog_names` and pgjdbc's `getCatalogs` list what `current_database()` says.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::error::Result;

use super::oids;
use super::rows::*;
use super::snapshot::Snapshot;

/// The database's OID: the one Postgres gives its first database, `postgres`.
const DATABASE_OID: i32 = 5;
/// `pg_encoding_to_char(6)` is `UTF8`.
const UTF8: i32 = 6;

pub fn pg_database_schema() -> SchemaRef {
    schema(&[
        ("oid", OID),
        ("datname", Col::Text),
        ("datdba", OID),
        ("encoding", Col::Int32),
        ("datlocprovider", Col::Text),
        ("datistemplate", Col::Bool),
        ("datallowconn", Col::Bool),
        ("datconnlimit", Col::Int32),
        ("datfrozenxid", Col::Int32),
        ("datminmxid", Col::Int32),
        ("dattablespace", OID),
        ("datcollate", Col::Text),
        ("datctype", Col::Text),
        ("daticulocale", Col::Text),
        ("datcollversion", Col::Text),
        ("datacl", Col::TextArray),
    ])
}

pub fn pg_database(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    rows.push(vec![
        oid(DATABASE_OID),
        text(&snapshot.database),
        oid(oids::OWNER),
        int32(UTF8),
        // libc, with the C locale `lc_collate` and `lc_ctype` report.
        text("c"),
        boolean(false),
        boolean(true),
        int32(-1),
        int32(1),
        int32(1),
        // pg_default
        oid(1663),
        text("C"),
        text("C"),
        null_text(),
        null_text(),
        null_list(DataType::Utf8),
    ]);
    rows.finish()
}
