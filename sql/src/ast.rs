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
