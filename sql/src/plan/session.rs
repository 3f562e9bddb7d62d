//! A SESSION view's sessions in its group keys (DESIGN.md §7): which `g` columns hold
//! `window_start` and `window_end`, which form the partition, and what the view may not do
//! with them before they exist.

use datafusion::sql::sqlparser::ast::{Expr, Select};

use super::aggregates::AggregateCalls;
use super::window::{Relation, mentions_window, window_column};
use crate::SqlError;

/// Where a SESSION view's sessions are in its group keys, and how to read an event's
/// partition (its other group keys) on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionKeys {
    /// The gap that ends a session.
    pub gap_ms: u64,
    /// The longest a session lasts, if bounded: an event this long after its session's start
    /// starts the next.
    pub max_duration_ms: Option<u64>,
    /// The `g` column holding `window_start`.
    pub start_column: usize,
    /// The `g` column holding `window_end`.
    pub end_column: usize,
    /// The other `g` columns, in order: the partition sessions are formed within.
    pub partition_columns: Vec<usize>,
    /// The partition columns of each of the source's rows (no filter, row for row), to judge
    /// events behind the watermark against the sessions of their partition.
    pub partition_sql: String,
}

/// Checks what a SESSION view may do and finds its sessions in the group keys: both window
/// columns must be grouped on, as themselves (a session is known by its start and end), and
/// nothing else may read them before the sessions exist (the filter, the aggregates' inputs).
pub(super) fn session_plan(
    select: &Select,
    groups: &[Expr],
    calls: &AggregateCalls,
    relation: &Relation,
    gap_ms: u64,
    max_duration_ms: Option<u64>,
) -> Result<SessionKeys, SqlError> {
    if !relation.tables.is_empty() {
        return Err(SqlError::Unsupported(
            "a join in a SESSION view (sessions form over the source's own rows)".into(),
        ));
    }
    let position = |name: &str| groups.iter().position(|g| window_column(g) == Some(name));
    let (Some(start_column), Some(end_column)) = (position("window_start"), position("window_end"))
    else {
        return Err(SqlError::InvalidOption(
            "a SESSION view groups by window_start and window_end (and the keys sessions are \
             formed per)"
                .into(),
        ));
    };
    if groups
        .iter()
        .any(|g| window_column(g).is_none() && mentions_window(g))
        || select.selection.as_ref().is_some_and(mentions_window)
        || calls.calls.iter().any(|c| mentions_window(&c.expr))
    {
        return Err(SqlError::Unsupported(
            "window_start or window_end of a SESSION inside a filter, group expression or \
             aggregate (sessions are known only once formed)"
                .into(),
        ));
    }
    let partition_columns: Vec<usize> = (0..groups.len())
        .filter(|&j| window_column(&groups[j]).is_none())
        .collect();
    let items: Vec<String> = partition_columns
        .iter()
        .map(|&j| format!("{} AS \"g{j}\"", groups[j]))
        .collect();
    let partition_sql = format!(
        "SELECT {} FROM {}",
        if items.is_empty() {
            "1 AS \"__none\"".to_string()
        } else {
            items.join(", ")
        },
        relation.from_sql
    );
    Ok(SessionKeys {
        gap_ms,
        max_duration_ms,
        start_column,
        end_column,
        partition_columns,
        partition_sql,
    })
}
