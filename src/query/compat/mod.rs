//! What Postgres clients send about themselves: psql's `\d`, drivers' type lookups, BI tools'
//! schema browsers query `pg_catalog` in ways DataFusion cannot plan as written.
//! `datafusion-pg-catalog` rewrites those queries; Weir's parser still sees the text first, so
//! syntax errors and Weir statements behave the same whoever sends them.

mod expressions;
mod names;
mod rules;
mod subqueries;

use std::borrow::Cow;
use std::sync::LazyLock;

use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use weir_sql::{SqlError, Statement};

static COMPAT: LazyLock<PostgresCompatibilityParser> =
    LazyLock::new(PostgresCompatibilityParser::new);

/// Parses `sql` with Weir's parser, then applies the client-compatibility rewrites to standard
/// statements. Queries on the catalog tables are re-read by the compatibility parser, whose
/// whole-statement substitutions need the text: the original, unless Weir's own rewrites that
/// must precede the compatibility rules changed it.
pub fn parse_client_sql(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let mut statements = weir_sql::parse(sql)?;
    let all_standard = statements
        .iter()
        .all(|s| matches!(s, Statement::Standard(_)));
    if all_standard && mentions_catalog(sql) {
        let mut changed = false;
        for statement in &mut statements {
            if let Statement::Standard(s) = statement {
                changed |= rules::before_compat(s);
            }
        }
        let text = if changed {
            Cow::Owned(
                statements
                    .iter()
                    .filter_map(|s| match s {
                        Statement::Standard(s) => Some(s.to_string()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(";\n"),
            )
        } else {
            Cow::Borrowed(sql)
        };
        if let Ok(rewritten) = COMPAT.parse(&text)
            && rewritten.len() == statements.len()
        {
            return Ok(rewritten
                .into_iter()
                .map(|mut s| {
                    rules::after_compat(&mut s);
                    Statement::Standard(Box::new(s))
                })
                .collect());
        }
    }
    Ok(statements
        .into_iter()
        .map(|s| match s {
            Statement::Standard(mut s) => {
                rules::before_compat(&mut s);
                let mut s = COMPAT.rewrite(*s);
                rules::after_compat(&mut s);
                Statement::Standard(Box::new(s))
            }
            other => other,
        })
        .collect())
}

fn mentions_catalog(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    lower.contains("pg_") || lower.contains("information_schema")
}
