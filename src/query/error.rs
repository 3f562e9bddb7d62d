//! Errors from running a statement. The wire layer maps each to a SQLSTATE; nothing here knows
//! about Postgres codes.

use datafusion::error::DataFusionError;
use thiserror::Error;
use weir_catalog::CatalogError;
use weir_sql::SqlError;

use crate::storage::StorageError;

/// Why a statement failed.
#[derive(Debug, Error)]
pub enum QueryError {
    /// The SQL could not be read or planned by Weir.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// A catalog rule was broken (name taken, unknown object).
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Storage failed or refused a row (constraint violation).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// DataFusion failed to plan or execute.
    #[error("{}", strip_datafusion_prefix(.0))]
    DataFusion(#[from] DataFusionError),
    /// A user statement failed (exists, missing, storage).
    #[error(transparent)]
    User(#[from] crate::auth::UserError),
    /// `SET`/`SHOW` of a setting Weir does not know.
    #[error("unrecognized configuration parameter \"{0}\"")]
    UnknownSetting(String),
    /// A bound parameter could not be decoded.
    #[error("{0}")]
    InvalidParameter(String),
    /// `FLUSH` gave up on a view that stopped making progress.
    #[error("materialized view \"{view}\" is not keeping up: {reason}")]
    ViewStalled {
        /// The view.
        view: String,
        /// Its last error, or why the wait ended.
        reason: String,
    },
    /// `FLUSH` gave up on a bounded source's generator that stopped making progress.
    #[error("source \"{name}\" is not finishing its events: {reason}")]
    SourceStalled {
        /// The source (not `source`, which `thiserror` takes for the cause).
        name: String,
        /// Its last error, or why the wait ended.
        reason: String,
    },
    /// The client cancelled the statement.
    #[error("canceling statement due to user request")]
    Canceled,
    /// The statement ran longer than the session's `statement_timeout`.
    #[error("canceling statement due to statement timeout")]
    StatementTimeout,
    /// The client closed its connection while the statement ran; nobody reads the error.
    #[error("connection to client lost")]
    ClientGone,
}

impl QueryError {
    /// The error Weir raised inside DataFusion (a storage constraint from a sink, say), if this
    /// is one, so it is reported as itself rather than as a DataFusion error.
    pub fn into_weir(self) -> Self {
        match self {
            QueryError::DataFusion(e) => match find_storage_error(e) {
                Ok(storage) => QueryError::Storage(storage),
                Err(e) => match missing_relation(&e) {
                    Some(name) => QueryError::Catalog(CatalogError::NotFound {
                        kind: "relation",
                        name,
                    }),
                    None => QueryError::DataFusion(e),
                },
            },
            other => other,
        }
    }
}

/// The relation DataFusion could not resolve (`table 'weir.public.t' not found`), so it is
/// reported as Postgres does: `relation "t" does not exist`.
fn missing_relation(error: &DataFusionError) -> Option<String> {
    let DataFusionError::Plan(message) = error.find_root() else {
        return None;
    };
    let quoted = message
        .strip_prefix("table '")?
        .strip_suffix("' not found")?;
    Some(quoted.rsplit('.').next().unwrap_or(quoted).to_string())
}

fn find_storage_error(error: DataFusionError) -> Result<StorageError, DataFusionError> {
    match error {
        DataFusionError::External(inner) => match inner.downcast::<StorageError>() {
            Ok(storage) => Ok(*storage),
            Err(inner) => match inner.downcast::<DataFusionError>() {
                Ok(df) => find_storage_error(*df),
                Err(inner) => Err(DataFusionError::External(inner)),
            },
        },
        DataFusionError::Context(context, inner) => {
            find_storage_error(*inner).map_err(|e| DataFusionError::Context(context, Box::new(e)))
        }
        DataFusionError::Shared(shared) => match std::sync::Arc::try_unwrap(shared) {
            Ok(inner) => find_storage_error(inner),
            Err(shared) => Err(DataFusionError::Shared(shared)),
        },
        other => Err(other),
    }
}

/// DataFusion prefixes messages with the error class ("Error during planning: "); users of a
/// database want the message itself.
fn strip_datafusion_prefix(error: &DataFusionError) -> String {
    let error = error.find_root();
    let text = error.to_string();
    for prefix in [
        "Error during planning: ",
        "Execution error: ",
        "This feature is not implemented: ",
        "Arrow error: ",
        "Schema error: ",
        "Invalid argument error: ",
        "Cast error: ",
        "Parser error: ",
        "SQL error: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return strip_once_more(rest);
        }
    }
    text
}

fn strip_once_more(text: &str) -> String {
    for prefix in [
        "Cast error: ",
        "Parser error: ",
        "Invalid argument error: ",
        "Divide by zero error",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return if rest.is_empty() {
                "division by zero".into()
            } else {
                rest.to_string()
            };
        }
    }
    text.to_string()
}
