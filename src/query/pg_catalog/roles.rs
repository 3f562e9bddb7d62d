//! `pg_roles`, `pg_user` and `pg_authid`: the bootstrap role and Weir's users. Passwords are
//! shown as Postgres shows them: `********` in the views, the SCRAM verifier in `pg_authid`.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result;

use super::rows::*;
use super::snapshot::Snapshot;

/// What the views show of a password that is set.
const HIDDEN: &str = "********";

/// `rolsuper`, `rolinherit`, `rolcreaterole`, `rolcreatedb`: every role may do everything,
/// as Weir has no privileges yet.
fn all_privileges() -> [ScalarValue; 4] {
    [boolean(true), boolean(true), boolean(true), boolean(true)]
}

pub fn pg_roles_schema() -> SchemaRef {
    schema(&[
        ("rolname", Col::Text),
        ("rolsuper", Col::Bool),
        ("rolinherit", Col::Bool),
        ("rolcreaterole", Col::Bool),
        ("rolcreatedb", Col::Bool),
        ("rolcanlogin", Col::Bool),
        ("rolreplication", Col::Bool),
        ("rolconnlimit", Col::Int32),
        ("rolpassword", Col::Text),
        ("rolvaliduntil", Col::Text),
        ("rolbypassrls", Col::Bool),
        ("rolconfig", Col::TextArray),
        ("oid", OID),
    ])
}

pub fn pg_roles(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for r in &snapshot.roles {
        let mut row = vec![text(&r.name)];
        row.extend(all_privileges());
        row.extend([
            boolean(r.login),
            boolean(false),
            int32(-1),
            opt_text(r.password.as_ref().map(|_| HIDDEN)),
            null_text(),
            boolean(true),
            null_list(DataType::Utf8),
            oid(r.oid),
        ]);
        rows.push(row);
    }
    rows.finish()
}

pub fn pg_authid_schema() -> SchemaRef {
    schema(&[
        ("oid", OID),
        ("rolname", Col::Text),
        ("rolsuper", Col::Bool),
        ("rolinherit", Col::Bool),
        ("rolcreaterole", Col::Bool),
        ("rolcreatedb", Col::Bool),
        ("rolcanlogin", Col::Bool),
        ("rolreplication", Col::Bool),
        ("rolbypassrls", Col::Bool),
        ("rolconnlimit", Col::Int32),
        ("rolpassword", Col::Text),
        ("rolvaliduntil", Col::Text),
    ])
}

pub fn pg_authid(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for r in &snapshot.roles {
        let mut row = vec![oid(r.oid), text(&r.name)];
        row.extend(all_privileges());
        row.extend([
            boolean(r.login),
            boolean(false),
            boolean(true),
            int32(-1),
            opt_text(r.password.as_deref()),
            null_text(),
        ]);
        rows.push(row);
    }
    rows.finish()
}

pub fn pg_user_schema() -> SchemaRef {
    schema(&[
        ("usename", Col::Text),
        ("usesysid", OID),
        ("usecreatedb", Col::Bool),
        ("usesuper", Col::Bool),
        ("userepl", Col::Bool),
        ("usebypassrls", Col::Bool),
        ("passwd", Col::Text),
        ("valuntil", Col::Text),
        ("useconfig", Col::TextArray),
    ])
}

pub fn pg_user(snapshot: &Snapshot, schema: &SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for r in snapshot.roles.iter().filter(|r| r.login) {
        rows.push(vec![
            text(&r.name),
            oid(r.oid),
            boolean(true),
            boolean(true),
            boolean(false),
            boolean(true),
            opt_text(r.password.as_ref().map(|_| HIDDEN)),
            null_text(),
            null_list(DataType::Utf8),
        ]);
    }
    rows.finish()
}
