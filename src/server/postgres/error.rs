//! The one place SQLSTATEs are chosen: every error a statement can raise becomes an
//! `ErrorResponse` with a code a Postgres client can act on, and the session stays usable.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use pgwire::error::{ErrorInfo, PgWireError};
use weir_catalog::CatalogError;
use weir_sql::SqlError;

use crate::auth::UserError;
use crate::query::QueryError;
use crate::storage::StorageError;

/// The `ErrorResponse` for `error`.
pub fn error_info(error: &QueryError) -> ErrorInfo {
    let code = sqlstate(error);
    if code.starts_with("XX") || code.starts_with("58") {
        tracing::error!(%error, code, "statement failed");
    } else {
        tracing::debug!(%error, code, "statement refused");
    }
    let mut info = ErrorInfo::new("ERROR".into(), code.into(), error.to_string());
    match error {
        QueryError::Sql(SqlError::Syntax { position, .. }) => {
            info.position = position.map(|p| p.to_string())
        }
        QueryError::Storage(StorageError::UniqueViolation { detail, .. }) => {
            info.detail = Some(detail.clone())
        }
        _ => {}
    }
    info
}

/// The pgwire error carrying [`error_info`].
pub fn pg_error(error: QueryError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&error)))
}

fn sqlstate(error: &QueryError) -> &'static str {
    match error {
        QueryError::Sql(SqlError::Syntax { .. }) => "42601",
        QueryError::Sql(SqlError::Unsupported(_)) => "0A000",
        QueryError::Sql(SqlError::TooDeep { .. }) => "54001",
        QueryError::Sql(SqlError::InvalidOption(_)) => "22023",
        QueryError::Sql(SqlError::Catalog(e)) | QueryError::Catalog(e) => catalog_state(e),
        QueryError::Storage(e) => storage_state(e),
        QueryError::DataFusion(e) => datafusion_state(e),
        QueryError::User(UserError::Exists(_)) => "42710",
        QueryError::User(UserError::Missing(_)) => "42704",
        QueryError::User(UserError::Storage(e)) => storage_state(e),
        QueryError::UnknownSetting(_) => "42704",
        QueryError::InvalidParameter(_) => "22023",
        QueryError::Canceled | QueryError::StatementTimeout => "57014",
        QueryError::ClientGone => "08006",
        QueryError::ViewStalled { .. } | QueryError::SourceStalled { .. } => "55000",
    }
}

fn catalog_state(error: &CatalogError) -> &'static str {
    match error {
        CatalogError::AlreadyExists { .. } => "42P07",
        CatalogError::NotFound { .. } => "42P01",
        CatalogError::WrongKind { .. } => "42809",
        CatalogError::UnsupportedType(_) => "0A000",
        CatalogError::InvalidDefinition(_) => "42P16",
        CatalogError::HasDependents { .. } => "2BP01",
        CatalogError::Corrupt(_) => "XX001",
    }
}

fn storage_state(error: &StorageError) -> &'static str {
    match error {
        StorageError::UniqueViolation { .. } => "23505",
        StorageError::NotNullViolation { .. } => "23502",
        StorageError::InvalidValue(_) => "22000",
        StorageError::Dropped { .. } => "42P01",
        StorageError::Locked { .. } => "55006",
        StorageError::Corrupt(_) => "XX001",
        StorageError::Catalog(e) => catalog_state(e),
        StorageError::RocksDb(_) | StorageError::Io { .. } | StorageError::Commit(_) => "58030",
    }
}

fn datafusion_state(error: &DataFusionError) -> &'static str {
    match error.find_root() {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::SchemaError(e, _) => match e.as_ref() {
            datafusion::common::SchemaError::FieldNotFound { .. } => "42703",
            datafusion::common::SchemaError::DuplicateQualifiedField { .. }
            | datafusion::common::SchemaError::DuplicateUnqualifiedField { .. } => "42701",
            _ => "42P10",
        },
        DataFusionError::ArrowError(e, _) => arrow_state(e),
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::Plan(message) => plan_state(message),
        DataFusionError::Execution(message) => {
            if message.contains("Divide by zero") || message.contains("division by zero") {
                "22012"
            } else {
                "22000"
            }
        }
        _ => "XX000",
    }
}

fn arrow_state(error: &ArrowError) -> &'static str {
    match error {
        // Date and time input (`query/datetime_input.rs`) fails as Postgres' does.
        ArrowError::ParseError(m) if m.starts_with("date/time field value out of range") => "22008",
        ArrowError::ParseError(m)
            if ["date", "time", "timestamp"]
                .iter()
                .any(|ty| m.starts_with(&format!("invalid input syntax for type {ty}"))) =>
        {
            "22007"
        }
        ArrowError::CastError(_) | ArrowError::ParseError(_) => "22P02",
        ArrowError::DivideByZero => "22012",
        ArrowError::ArithmeticOverflow(_) => "22003",
        ArrowError::ComputeError(_) | ArrowError::InvalidArgumentError(_) => "22000",
        _ => "XX000",
    }
}

fn plan_state(message: &str) -> &'static str {
    if message.contains("Invalid function") || message.contains("No function matches") {
        "42883"
    } else if message.contains("Cannot cast") || message.contains("Cast error") {
        "22P02"
    } else {
        "42000"
    }
}
