//! Errors found while reading or planning SQL. All of them are the user's fault.

use thiserror::Error;
use weir_catalog::CatalogError;

/// A statement Weir cannot read or plan.
#[derive(Debug, Error)]
pub enum SqlError {
    /// The text is not valid SQL.
    #[error("syntax error: {message}")]
    Syntax {
        /// What the parser expected and found.
        message: String,
        /// 1-based character offset of the error in the query text, when known.
        position: Option<usize>,
    },
    /// A statement whose expressions, subqueries or set operations nest deeper than Weir plans:
    /// Postgres' 54001 past `max_stack_depth`.
    #[error(
        "stack depth limit exceeded: the statement nests too deeply (Weir plans at most {limit} levels of operators, where each operator of a chain such as a + b + c or x = 1 OR x = 2 counts one, {calls} of function calls and subqueries, and {scopes} of parentheses and CASE); write long lists of alternatives as IN (...)"
    )]
    TooDeep {
        /// The deepest nesting of operators Weir plans.
        limit: usize,
        /// The deepest nesting of function calls and subqueries Weir plans.
        calls: usize,
        /// The deepest nesting of parentheses and `CASE` Weir parses.
        scopes: usize,
    },
    /// Valid SQL that Weir does not support (yet).
    #[error("{0} is not supported")]
    Unsupported(String),
    /// An option or clause with a value Weir cannot use (unknown key, bad duration).
    #[error("{0}")]
    InvalidOption(String),
    /// A definition the catalog refuses (duplicate column, unknown type, ...).
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}
