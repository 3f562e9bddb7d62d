//! Object names as Postgres resolves them: unquoted identifiers fold to lower case, and the one
//! schema is `public`.

use datafusion::sql::sqlparser::ast::{Ident, ObjectName};

use crate::SqlError;

/// The schema every object lives in until Weir has `CREATE SCHEMA`.
pub const DEFAULT_SCHEMA: &str = "public";

/// The normalized name of a (possibly `public.`-qualified) object.
pub fn object_name(name: &ObjectName) -> Result<String, SqlError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| {
            p.as_ident()
                .map(ident)
                .ok_or_else(|| SqlError::Unsupported(format!("name {name}")))
        })
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [table] => Ok(table.clone()),
        [schema, table] if schema == DEFAULT_SCHEMA => Ok(table.clone()),
        _ => Err(SqlError::Unsupported(format!(
            "name {name} (objects live in schema \"{DEFAULT_SCHEMA}\")"
        ))),
    }
}

/// An identifier as Postgres folds it.
pub fn ident(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}
