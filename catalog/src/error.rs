//! Catalog errors. Each variant says whose fault it is: the user's (a name clash, an unknown
//! name, an unsupported type) or the data directory's (an entry that does not decode).

use thiserror::Error;

/// An error from a catalog lookup, change or decode.
#[derive(Debug, Error)]
pub enum CatalogError {
    /// The user named an object that already exists.
    #[error("{kind} \"{name}\" already exists")]
    AlreadyExists {
        /// What kind of object holds the name.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// The user named an object that does not exist.
    #[error("{kind} \"{name}\" does not exist")]
    NotFound {
        /// The kind of object that was looked for.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// The user named an object of another kind (`DROP TABLE` of a source).
    #[error("\"{name}\" is not a {expected}")]
    WrongKind {
        /// The name.
        name: String,
        /// The kind the statement expected.
        expected: &'static str,
    },
    /// The user asked for a column type Weir does not store.
    #[error("type {0} is not supported")]
    UnsupportedType(String),
    /// The user wrote a definition that is invalid (duplicate column, bad key, ...).
    #[error("{0}")]
    InvalidDefinition(String),
    /// The user dropped an object others depend on, without `CASCADE`.
    #[error(
        "cannot drop {kind} \"{name}\" because other objects depend on it ({dependents}); use DROP ... CASCADE to drop them too"
    )]
    HasDependents {
        /// The kind of the object.
        kind: &'static str,
        /// The object.
        name: String,
        /// The dependents, as `materialized view "v"`, comma-separated.
        dependents: String,
    },
    /// A persisted entry could not be decoded: the data directory is damaged or was written
    /// by a newer Weir.
    #[error("catalog entry cannot be decoded: {0}")]
    Corrupt(String),
}
