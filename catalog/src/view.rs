//! Materialized views: a query over a source or a view (and reference tables it joins),
//! maintained incrementally.

use datafusion::arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

use crate::{ColumnDef, ObjectId};

/// When a view's rows are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Emit {
    /// Open windows are visible and change at every epoch (the default).
    OnUpdate,
    /// Each window is emitted once, final, when the watermark passes its end.
    OnWindowClose,
}

/// A materialized view. Its query is kept as text and planned again at every start, so the
/// stored form does not depend on the planner's internals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewDef {
    /// Stable id; keys the view's state, rows and input offset.
    pub id: ObjectId,
    /// The view's name.
    pub name: String,
    /// Output columns, as the query produced them at `CREATE`.
    pub columns: Vec<ColumnDef>,
    /// The source the view reads, or the view it is over.
    pub source: ObjectId,
    /// The reference tables it joins.
    #[serde(default)]
    pub tables: Vec<ObjectId>,
    /// The `SELECT` the view maintains.
    pub query: String,
    /// When rows are emitted.
    pub emit: Emit,
    /// The `CREATE MATERIALIZED VIEW` statement, as written.
    pub definition: String,
}

impl ViewDef {
    /// Whether the view reads object `id`: its input or a table it joins.
    pub fn depends_on(&self, id: ObjectId) -> bool {
        self.source == id || self.tables.contains(&id)
    }

    /// The Arrow schema of the view's rows.
    pub fn arrow_schema(&self) -> SchemaRef {
        crate::object::columns_schema(&self.columns)
    }
}
