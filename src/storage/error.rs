//! Storage errors: constraint violations (the user's fault) apart from I/O and corruption.

use thiserror::Error;
use weir_catalog::CatalogError;

/// An error from the storage layer.
#[derive(Debug, Error)]
pub enum StorageError {
    /// RocksDB failed (I/O, corruption it detected).
    #[error("storage: {0}")]
    RocksDb(#[from] rocksdb::Error),
    /// The data directory could not be prepared.
    #[error("data directory {path}: {source}")]
    Io {
        /// The directory or file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Another server holds the data directory.
    #[error(
        "data directory {path} is in use by another Weir server{holder}; stop it or choose another --data-dir"
    )]
    Locked {
        /// The directory.
        path: String,
        /// `" (pid N)"` when the lock file names its holder.
        holder: String,
    },
    /// A stored value does not decode.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A catalog entry does not decode.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A row would duplicate a primary key.
    #[error("duplicate key value violates unique constraint \"{table}_pkey\"")]
    UniqueViolation {
        /// The table.
        table: String,
        /// `Key (a, b)=(1, x) already exists.`
        detail: String,
    },
    /// A `NOT NULL` column got a null.
    #[error(
        "null value in column \"{column}\" of relation \"{table}\" violates not-null constraint"
    )]
    NotNullViolation {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// The table or source was dropped after the statement was planned.
    #[error("relation \"{table}\" does not exist")]
    Dropped {
        /// The table.
        table: String,
    },
    /// A group commit failed; none of its appends were stored.
    #[error("commit failed: {0}")]
    Commit(String),
    /// A value cannot be stored in its column (wrong type after casting).
    #[error("{0}")]
    InvalidValue(String),
}
