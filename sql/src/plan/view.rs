//! A materialized view's query split for incremental maintenance.
//!
//! Window table functions become plain SQL over the source (`window.rs`). The aggregate query
//! is then cut in two (DESIGN.md §5):
//!
//! - the **partial** query runs over each epoch's new events and yields, per group, mergeable
//!   partial states: `count` and `sum` merge by adding, `min`/`max` by comparing, `avg`
//!   is carried as a sum and a count, approximate aggregates as sketches; each
//!   `count(DISTINCT x)` has a query of its own for the epoch's (group, value) pairs, which the
//!   server adds to the group's set (`aggregates.rs` says which calls take which form);
//! - the **final** query runs over the merged states of the groups an epoch touched and
//!   evaluates the view's select list and `HAVING` with every aggregate call replaced by its
//!   finished value, so expressions over aggregates (`count(*) FILTER (...)::double /
//!   count(*)`) need nothing special.
//!
//! The **batch** query is the view's query over the whole source, windows rewritten: the
//! server plans it to validate the view and name its columns, and the tests run it as the
//! correctness oracle.

use datafusion::sql::sqlparser::ast::{Expr, GroupByExpr, Ident, Query, SelectItem, SetExpr};

use super::aggregates::{AggregateCalls, Finisher};
pub use super::session::SessionKeys;
use super::session::session_plan;
use super::window::{HopPanes, hop_by_panes, mentions_window, window_column, window_relation};
use crate::SqlError;

/// How a partial state merges with another of the same group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Add (`count`, `sum`, and the two halves of `avg`); NULL adds nothing.
    Sum,
    /// Keep the smaller; NULL loses.
    Min,
    /// Keep the larger; NULL loses.
    Max,
    /// Bitwise OR of 64-bit masks (`retention`'s conditions seen); NULL adds nothing.
    BitOr,
    /// `count(DISTINCT x)`: the server keeps each group's set and its size, fed by the
    /// view's distinct-value queries; the partial column is NULL.
    Distinct,
    /// An approximate aggregate: the partial state is a serialized sketch, merged as sketches
    /// merge (DESIGN.md §5).
    Sketch(Sketch),
}

/// The sketches behind the approximate aggregates. Each partial state is DataFusion's own
/// accumulator state for the aggregate, serialized by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sketch {
    /// HyperLogLog, for `approx_count_distinct` / `approx_distinct`.
    Hll,
    /// t-digest, for `approx_percentile_cont` and `approx_median`.
    TDigest,
    /// `window_funnel`'s (time, step) entries, which merge by concatenation.
    Funnel,
}

impl Sketch {
    /// The aggregate that yields an epoch's serialized sketch (registered by the server).
    pub fn state_function(self) -> &'static str {
        match self {
            Sketch::Hll => "__weir_hll_state",
            Sketch::TDigest => "__weir_tdigest_state",
            Sketch::Funnel => "__weir_funnel_events",
        }
    }

    /// The aggregate that merges serialized sketches into one (registered by the server), for
    /// those merged in SQL: a HOP view's panes merge into each window once per pane, not
    /// once per event.
    pub fn merge_function(self) -> Option<&'static str> {
        match self {
            Sketch::Hll => Some("__weir_hll_merge"),
            Sketch::TDigest | Sketch::Funnel => None,
        }
    }

    /// The function that reads the answer off a merged sketch (registered by the server):
    /// `(sketch)` for HLL, `(sketch, percentile)` for t-digest.
    pub fn finish_function(self) -> &'static str {
        match self {
            Sketch::Hll => "__weir_hll_estimate",
            Sketch::TDigest => "__weir_tdigest_quantile",
            Sketch::Funnel => "__weir_funnel_level",
        }
    }
}

/// The window a view aggregates over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// Fixed, non-overlapping windows of `size_ms`.
    Tumble {
        /// Window length.
        size_ms: u64,
        /// Shift of window boundaries from the epoch.
        offset_ms: u64,
    },
    /// Windows of `size_ms` starting every `slide_ms`.
    Hop {
        /// Distance between window starts.
        slide_ms: u64,
        /// Window length (a multiple of the slide).
        size_ms: u64,
        /// Shift of window boundaries from the epoch.
        offset_ms: u64,
    },
    /// Per group key, events less than `gap_ms` apart (DESIGN.md §7).
    Session {
        /// The gap that ends a session.
        gap_ms: u64,
        /// The longest a session may last, if bounded.
        max_duration_ms: Option<u64>,
    },
}

/// A view's query, split for incremental maintenance.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewQuery {
    /// The source the view reads.
    pub source: String,
    /// The event-time column windows are computed from.
    pub time_column: Option<String>,
    /// The window, if the view aggregates over one.
    pub window: Option<WindowSpec>,
    /// The whole query over the source, windows rewritten.
    pub batch_sql: String,
    /// Per-group partial states over new events: columns `g0..` (group keys), then `p0..`.
    pub partial_sql: String,
    /// How each `p` column merges.
    pub partials: Vec<Merge>,
    /// How many `g` columns lead the partial query.
    pub group_columns: usize,
    /// The select list over merged states (a relation with the `g` and `p` columns), one
    /// expression per output column, in order; the server adds the output names.
    pub final_items: Vec<String>,
    /// `HAVING`, over the same relation.
    pub final_filter: Option<String>,
    /// Where a group's window ends, when the view groups by its window: the `g` column holding
    /// `window_end`, or `window_start` plus the window size.
    pub window_end: Option<WindowEnd>,
    /// The output column that is the first `GROUP BY` expression itself, whose values lead
    /// the view's row keys.
    pub leading_key_output: Option<usize>,
    /// A view without aggregates: `partial_sql` is the whole query, and its rows are appended
    /// as events arrive.
    pub append_only: bool,
    /// Reference tables the query joins, read as they are when each epoch runs.
    pub tables: Vec<String>,
    /// For each `count(DISTINCT)`: the query of an epoch's (group, value) pairs.
    pub distinct_sql: Vec<DistinctValues>,
    /// For a SESSION view: the partial query's `window_start` and `window_end` columns hold
    /// each event's time, and the server places them in sessions.
    pub session: Option<SessionKeys>,
}

/// The values of one `count(DISTINCT x)` in an epoch's events, with their groups: columns
/// `g0..` (group keys) and `v`, one row per qualifying event (repeats are the sets' to drop).
#[derive(Debug, Clone, PartialEq)]
pub struct DistinctValues {
    /// The merge (and `p` column) whose count the values feed.
    pub merge: usize,
    /// The query over the epoch's events.
    pub sql: String,
}

/// How to read a group's window end from its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowEnd {
    /// The `g` column.
    pub group_column: usize,
    /// Added to that column's value (0 for `window_end`, the size for `window_start`).
    pub plus_ms: u64,
}

/// Splits a view's query. `columns_of` names the columns of the relation a view reads (its
/// source's, or those of the view it is over). Errors name what is not supported.
pub fn plan_view_query(
    query: &Query,
    columns_of: &dyn Fn(&str) -> Vec<String>,
) -> Result<ViewQuery, SqlError> {
    if query.with.is_some() || query.order_by.is_some() || query.limit_clause.is_some() {
        return Err(SqlError::Unsupported(
            "WITH, ORDER BY or LIMIT in a materialized view".into(),
        ));
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err(SqlError::Unsupported(
            "a materialized view that is not a single SELECT".into(),
        ));
    };
    let relation = window_relation(select, columns_of)?;
    let (source, time_column, window, from) = (
        relation.source.clone(),
        relation.time_column.clone(),
        relation.window,
        relation.from_sql.clone(),
    );
    let GroupByExpr::Expressions(groups, modifiers) = &select.group_by else {
        return Err(SqlError::Unsupported(
            "GROUP BY ALL in a materialized view".into(),
        ));
    };
    if !modifiers.is_empty() {
        return Err(SqlError::Unsupported(
            "ROLLUP, CUBE or GROUPING SETS in a materialized view".into(),
        ));
    }
    let mut calls = AggregateCalls::default();
    for item in &select.projection {
        if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item {
            calls.collect(expr)?;
        }
    }
    if let Some(having) = &select.having {
        calls.collect(having)?;
    }
    let session = match window {
        Some(WindowSpec::Session {
            gap_ms,
            max_duration_ms,
        }) => Some(session_plan(
            select,
            groups,
            &calls,
            &relation,
            gap_ms,
            max_duration_ms,
        )?),
        _ => None,
    };
    // A SESSION view's events without a time are in no session.
    let selection = match (&session, &time_column) {
        (Some(_), Some(time)) => Some(match &select.selection {
            Some(w) => format!("\"{time}\" IS NOT NULL AND ({w})"),
            None => format!("\"{time}\" IS NOT NULL"),
        }),
        _ => select.selection.as_ref().map(|w| w.to_string()),
    };
    let filter_sql = selection
        .as_ref()
        .map(|w| format!(" WHERE {w}"))
        .unwrap_or_default();
    if calls.calls.is_empty() && groups.is_empty() && select.having.is_none() {
        // No aggregates: the view is the query's rows, appended as events arrive.
        let projection = select
            .projection
            .iter()
            .map(|item| item.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT {projection} FROM {from}{filter_sql}");
        return Ok(ViewQuery {
            source,
            time_column,
            window,
            batch_sql: sql.clone(),
            partial_sql: sql,
            partials: Vec::new(),
            group_columns: 0,
            final_items: Vec::new(),
            final_filter: None,
            window_end: None,
            leading_key_output: None,
            append_only: true,
            tables: relation.tables,
            distinct_sql: Vec::new(),
            session: None,
        });
    }
    let items: Vec<(Expr, Option<&Ident>)> = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => Ok((e.clone(), None)),
            SelectItem::ExprWithAlias { expr, alias } => Ok((expr.clone(), Some(alias))),
            _ => Err(SqlError::Unsupported(
                "* in an aggregating materialized view (name the columns)".into(),
            )),
        })
        .collect::<Result<_, _>>()?;

    // A SESSION view's events are aggregated per (partition, time): the server merges those
    // into sessions, so the window columns hold the event's time.
    let partial_groups: Vec<String> = groups
        .iter()
        .map(|g| match (&session, window_column(g), &time_column) {
            (Some(_), Some(_), Some(time)) => format!("\"{time}\""),
            _ => g.to_string(),
        })
        .collect();
    let mut partial_items: Vec<String> = partial_groups
        .iter()
        .enumerate()
        .map(|(j, g)| format!("{g} AS \"g{j}\""))
        .collect();
    let mut partials = Vec::new();
    let mut finished = Vec::new();
    let mut distinct_values = Vec::new();
    for call in &calls.calls {
        let p = partials.len();
        let (name, arguments) = (&call.name, &call.arguments);
        let filter = call
            .filter
            .as_ref()
            .map(|f| format!(" FILTER (WHERE {f})"))
            .unwrap_or_default();
        match name.as_str() {
            "count_distinct" => {
                // The server keeps each group's set and its size; a query of its own brings
                // the epoch's distinct (group, value) pairs.
                let keep = match &call.filter {
                    Some(f) => format!("{arguments} IS NOT NULL AND ({f})"),
                    None => format!("{arguments} IS NOT NULL"),
                };
                partial_items.push(format!("CAST(NULL AS BIGINT) AS \"p{p}\""));
                partials.push(Merge::Distinct);
                finished.push(format!("COALESCE(\"p{p}\", 0)"));
                distinct_values.push((p, arguments.clone(), keep));
            }
            "approx_distinct" | "approx_percentile_cont" => {
                let (sketch, finish) = match call.percentile {
                    Some(q) => (Sketch::TDigest, format!(", {q:?}")),
                    None => (Sketch::Hll, String::new()),
                };
                partial_items.push(format!(
                    "{}({arguments}){filter} AS \"p{p}\"",
                    sketch.state_function()
                ));
                partials.push(Merge::Sketch(sketch));
                finished.push(format!("{}(\"p{p}\"{finish})", sketch.finish_function()));
            }
            "window_funnel" => {
                // The same arguments: the state records what the answer needs.
                let sketch = Sketch::Funnel;
                partial_items.push(format!(
                    "{}({arguments}){filter} AS \"p{p}\"",
                    sketch.state_function()
                ));
                partials.push(Merge::Sketch(sketch));
                finished.push(format!("{}(\"p{p}\")", sketch.finish_function()));
            }
            "retention" => {
                if call.args.is_empty() || call.args.len() > 32 {
                    return Err(SqlError::InvalidOption(
                        "retention takes 1 to 32 conditions".into(),
                    ));
                }
                // Bit i: condition i+1 held for some event of the group.
                let mask = call
                    .args
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        format!(
                            "CASE WHEN ({c}) THEN CAST({} AS BIGINT) ELSE CAST(0 AS BIGINT) END",
                            1u64 << i
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" | ");
                partial_items.push(format!("bit_or({mask}){filter} AS \"p{p}\""));
                partials.push(Merge::BitOr);
                finished.push(format!(
                    "__weir_retention_of(\"p{p}\", {})",
                    call.args.len()
                ));
            }
            "avg" => {
                partial_items.push(format!("sum({arguments}){filter} AS \"p{p}\""));
                partial_items.push(format!("count({arguments}){filter} AS \"p{}\"", p + 1));
                partials.extend([Merge::Sum, Merge::Sum]);
                finished.push(format!(
                    "(CAST(\"p{p}\" AS DOUBLE) / CAST(NULLIF(\"p{}\", 0) AS DOUBLE))",
                    p + 1
                ));
            }
            _ => {
                partial_items.push(format!("{name}({arguments}){filter} AS \"p{p}\""));
                partials.push(match name.as_str() {
                    "min" => Merge::Min,
                    "max" => Merge::Max,
                    _ => Merge::Sum,
                });
                // A count over no new events in a group is 0, never NULL.
                finished.push(if name == "count" {
                    format!("COALESCE(\"p{p}\", 0)")
                } else {
                    format!("\"p{p}\"")
                });
            }
        }
    }
    let group_sql = if groups.is_empty() {
        String::new()
    } else {
        format!(
            " GROUP BY {}",
            groups
                .iter()
                .map(|g| g.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let partial_group_sql = if groups.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", partial_groups.join(", "))
    };
    let aggregate_items = &partial_items[groups.len()..];
    let by_panes = relation.plain
        && !select.selection.as_ref().is_some_and(mentions_window)
        && calls.calls.iter().all(|c| !mentions_window(&c.expr))
        && partials.iter().all(|m| match m {
            Merge::Sum | Merge::Min | Merge::Max | Merge::BitOr => true,
            Merge::Sketch(sketch) => sketch.merge_function().is_some(),
            Merge::Distinct => false,
        });
    let partial_sql = match (window, &time_column) {
        (
            Some(WindowSpec::Hop {
                slide_ms,
                size_ms,
                offset_ms,
            }),
            Some(time),
        ) if by_panes => hop_by_panes(HopPanes {
            source: &source,
            time,
            slide_ms,
            size_ms,
            offset_ms,
            groups,
            aggregate_items,
            merges: &partials,
            filter_sql: &filter_sql,
        }),
        _ => format!(
            "SELECT {} FROM {from}{filter_sql}{partial_group_sql}",
            partial_items.join(", ")
        ),
    };

    let distinct_sql = distinct_values
        .into_iter()
        .map(|(p, argument, keep)| {
            let filter = match &selection {
                Some(w) => format!(" WHERE ({w}) AND ({keep})"),
                None => format!(" WHERE {keep}"),
            };
            // Every qualifying (group, value) pair, repeats included: the view's sets drop
            // repeats as they insert, and within an epoch nearly every pair is new (a group
            // sees few repeats of a value in one epoch), so deduplicating here first would
            // hash every pair twice.
            DistinctValues {
                merge: p,
                sql: format!(
                    "SELECT {}{}{argument} AS \"v\" FROM {from}{filter}",
                    partial_items[..groups.len()].join(", "),
                    if groups.is_empty() { "" } else { ", " },
                ),
            }
        })
        .collect();
    let mut rewriter = Finisher {
        calls: &calls.calls,
        finished: &finished,
        groups,
    };
    let final_items = items
        .iter()
        .map(|(expr, _)| rewriter.rewrite(expr))
        .collect();
    let final_filter = select.having.as_ref().map(|h| rewriter.rewrite(h));

    let batch_items: Vec<String> = items
        .iter()
        .map(|(expr, alias)| match alias {
            Some(alias) => format!("{expr} AS {alias}"),
            None => expr.to_string(),
        })
        .collect();
    let having_sql = select
        .having
        .as_ref()
        .map(|h| format!(" HAVING {h}"))
        .unwrap_or_default();
    let batch_sql = match (&session, &time_column, window) {
        (Some(keys), Some(time), Some(WindowSpec::Session { gap_ms, .. })) => {
            let alias = relation
                .alias
                .clone()
                .unwrap_or_else(|| format!("\"{}\"", source.replace('"', "\"\"")));
            let partition: Vec<String> = keys
                .partition_columns
                .iter()
                .map(|&j| groups[j].to_string())
                .collect();
            let from = super::window::session_batch_from(
                &source,
                time,
                gap_ms,
                &partition,
                select.selection.as_ref().map(|w| w.to_string()),
                &alias,
            );
            format!(
                "SELECT {} FROM {from}{group_sql}{having_sql}",
                batch_items.join(", ")
            )
        }
        _ => format!(
            "SELECT {} FROM {from}{filter_sql}{group_sql}{having_sql}",
            batch_items.join(", ")
        ),
    };
    let size_ms = match window {
        Some(WindowSpec::Tumble { size_ms, .. } | WindowSpec::Hop { size_ms, .. }) => size_ms,
        Some(WindowSpec::Session { .. }) | None => 0,
    };
    let window_end = match &session {
        // A session's end is a group key of its own (a session's start says nothing of it).
        Some(keys) => Some(WindowEnd {
            group_column: keys.end_column,
            plus_ms: 0,
        }),
        None => window.and(
            groups
                .iter()
                .enumerate()
                .find_map(|(j, g)| match window_column(g) {
                    Some("window_end") => Some(WindowEnd {
                        group_column: j,
                        plus_ms: 0,
                    }),
                    Some(_) => Some(WindowEnd {
                        group_column: j,
                        plus_ms: size_ms,
                    }),
                    None => None,
                }),
        ),
    };
    Ok(ViewQuery {
        source,
        time_column,
        window,
        batch_sql,
        partial_sql,
        partials,
        group_columns: groups.len(),
        final_items,
        final_filter,
        window_end,
        leading_key_output: groups
            .first()
            .and_then(|first| items.iter().position(|(expr, _)| expr == first)),
        append_only: false,
        tables: relation.tables,
        distinct_sql,
        session,
    })
}

#[cfg(test)]
mod tests;
