//! Weir's own statements, as parsed: sqlparser's pieces where they fit (column definitions,
//! expressions, `WITH` options), checked and typed later by [`crate::plan`].

use datafusion::sql::sqlparser::ast::{ColumnDef, Expr, Ident, ObjectName, Query, SqlOption};
use weir_catalog::Emit;

/// `CREATE SOURCE [IF NOT EXISTS] name (columns [, WATERMARK FOR col AS expr]) WITH (...)
/// [FORMAT JSON | FORMAT PLAIN ENCODE JSON]`, RisingWave's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSource {
    /// The source name.
    pub name: ObjectName,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// Declared columns.
    pub columns: Vec<ColumnDef>,
    /// `WATERMARK FOR column AS expression`.
    pub watermark: Option<(Ident, Expr)>,
    /// `WITH (key = value, ...)`.
    pub options: Vec<SqlOption>,
    /// The words after `FORMAT` (`JSON`, or `PLAIN ENCODE JSON`), upper-cased.
    pub format: Vec<String>,
    /// The statement's text, stored as the definition.
    pub text: String,
}

/// `CREATE MATERIALIZED VIEW [IF NOT EXISTS] name AS query [EMIT ON UPDATE | EMIT ON WINDOW
/// CLOSE]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateView {
    /// The view name.
    pub name: ObjectName,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// The query the view maintains.
    pub query: Box<Query>,
    /// When rows are emitted.
    pub emit: Emit,
    /// The statement's text, stored as the definition.
    pub text: String,
}

/// Kinds of Weir object a statement can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeirObject {
    /// `SOURCE`
    Source,
    /// `MATERIALIZED VIEW`
    View,
}

/// `DROP SOURCE | MATERIALIZED VIEW [IF EXISTS] name [, ...] [CASCADE | RESTRICT]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DropObjects {
    /// What kind of object.
    pub kind: WeirObject,
    /// The names.
    pub names: Vec<ObjectName>,
    /// `IF EXISTS`.
    pub if_exists: bool,
    /// `CASCADE`: drop dependents too.
    pub cascade: bool,
}

/// `CREATE USER | ROLE`, `ALTER USER | ROLE`, `DROP USER | ROLE`, in Postgres' shape. Of the
/// role options, `LOGIN`/`NOLOGIN` and `PASSWORD` mean something to Weir; the privilege
/// options (`SUPERUSER`, `CREATEDB`, ...) are accepted and change nothing: every user may do
/// everything.
#[derive(Debug, Clone, PartialEq)]
pub enum UserStatement {
    /// `CREATE USER name [WITH] option ...` (`LOGIN` by default), or `CREATE ROLE`
    /// (`NOLOGIN` by default).
    Create {
        /// The user's name.
        name: String,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// The options given.
        options: UserOptions,
    },
    /// `ALTER USER | ROLE name [WITH] option ...`.
    Alter {
        /// The user's name.
        name: String,
        /// The options given.
        options: UserOptions,
    },
    /// `DROP USER | ROLE [IF EXISTS] name [, ...]`.
    Drop {
        /// The names.
        names: Vec<String>,
        /// `IF EXISTS`.
        if_exists: bool,
    },
}

/// The role options of `CREATE`/`ALTER USER` that Weir keeps; `None` where not given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserOptions {
    /// `LOGIN` or `NOLOGIN`.
    pub login: Option<bool>,
    /// `PASSWORD 'text'` (`Some(Some(..))`) or `PASSWORD NULL` (`Some(None)`).
    pub password: Option<Option<String>>,
}
