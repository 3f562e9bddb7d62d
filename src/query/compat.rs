//! What Postgres clients send about themselves: psql's `\d`, drivers' type lookups, BI tools'
//! schema browsers query `pg_catalog` in ways DataFusion cannot plan as written.
//! `datafusion-pg-catalog` rewrites those queries; Weir's parser still sees the text first, so
//! syntax errors and Weir statements behave the same whoever sends them.

use std::sync::LazyLock;

use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use weir_sql::{SqlError, Statement};

static COMPAT: LazyLock<PostgresCompatibilityParser> =
    LazyLock::new(PostgresCompatibilityParser::new);

/// Parses `sql` with Weir's parser, then applies the client-compatibility rewrites to standard
/// statements. Queries on the catalog tables are re-read by the compatibility parser, whose
/// whole-statement substitutions need the original text.
pub fn parse_client_sql(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let statements = weir_sql::parse(sql)?;
    let all_standard = statements
        .iter()
        .all(|s| matches!(s, Statement::Standard(_)));
    if all_standard
        && mentions_catalog(sql)
        && let Ok(rewritten) = COMPAT.parse(sql)
        && rewritten.len() == statements.len()
    {
        return Ok(rewritten
            .into_iter()
            .map(|s| Statement::Standard(Box::new(s)))
            .collect());
    }
    Ok(statements
        .into_iter()
        .map(|s| match s {
            Statement::Standard(s) => Statement::Standard(Box::new(COMPAT.rewrite(*s))),
            other => other,
        })
        .collect())
}

fn mentions_catalog(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    lower.contains("pg_") || lower.contains("information_schema")
}
