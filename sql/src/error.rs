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
