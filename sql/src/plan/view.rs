//! A materialized view's query split for incremental maintenance.
//!
//! Window table functions become plain SQL over the source (`window.rs`). The aggregate query
//! is then cut in two (DESIGN.md §5):
//!
//! - the **partial** query runs over each epoch's new events and yields, per group, mergeable
//!   partial states: `count` and `sum` merge by adding, `min`/`max` by comparing, and `avg`
//!   is carried as a sum and a count;
//! - the **final** query runs over the merged states of the groups an epoch touched and
//!   evaluates the view's select list and `HAVING` with every aggregate call replaced by its
//!   finished value, so expressions over aggregates (`count(*) FILTER (...)::double /
//!   count(*)`) need nothing special.
//!
//! The **batch** query is the view's query over the whole source, windows rewritten: the
//! server plans it to validate the view and name its columns, and the tests run it as the
//! correctness oracle.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    DuplicateTreatment, Expr, FunctionArguments, GroupByExpr, Ident, Query, SelectItem, SetExpr,
    VisitMut, VisitorMut,
};

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
    /// `count(DISTINCT x)`: the partial state is the list of an epoch's distinct values; the
    /// server keeps each group's set and its size.
    Distinct,
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
    /// A view without aggregates: `partial_sql` is the whole query, and its rows are appended
    /// as events arrive.
    pub append_only: bool,
}

/// How to read a group's window end from its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowEnd {
    /// The `g` column.
    pub group_column: usize,
    /// Added to that column's value (0 for `window_end`, the size for `window_start`).
    pub plus_ms: u64,
}

/// Aggregates a view can maintain incrementally, and those it cannot yet.
const INCREMENTAL: &[&str] = &["count", "sum", "min", "max", "avg"];
const NOT_YET: &[&str] = &[
    "approx_count_distinct",
    "approx_distinct",
    "approx_percentile_cont",
    "approx_median",
    "percentile_cont",
    "median",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "array_agg",
    "string_agg",
    "first_value",
    "last_value",
    "bool_and",
    "bool_or",
    "bit_and",
    "bit_or",
];

/// Splits a view's query. Errors name what is not supported.
pub fn plan_view_query(query: &Query) -> Result<ViewQuery, SqlError> {
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
    let (source, time_column, window, from) = window_relation(select)?;
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
    let filter_sql = select
        .selection
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
            append_only: true,
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

    let mut partial_items: Vec<String> = groups
        .iter()
        .enumerate()
        .map(|(j, g)| format!("{g} AS \"g{j}\""))
        .collect();
    let mut partials = Vec::new();
    let mut finished = Vec::new();
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
                // The distinct values of the epoch's events; the server keeps each group's set
                // and counts what is new.
                let keep = match &call.filter {
                    Some(f) => format!("{arguments} IS NOT NULL AND ({f})"),
                    None => format!("{arguments} IS NOT NULL"),
                };
                partial_items.push(format!(
                    "array_agg(DISTINCT {arguments}) FILTER (WHERE {keep}) AS \"p{p}\""
                ));
                partials.push(Merge::Distinct);
                finished.push(format!("COALESCE(\"p{p}\", 0)"));
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
    let aggregate_items = &partial_items[groups.len()..];
    let by_panes = !select.selection.as_ref().is_some_and(mentions_window)
        && calls.calls.iter().all(|c| !mentions_window(&c.expr))
        && !partials.contains(&Merge::Distinct);
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
            "SELECT {} FROM {from}{filter_sql}{group_sql}",
            partial_items.join(", ")
        ),
    };

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
    let batch_sql = format!(
        "SELECT {} FROM {from}{filter_sql}{group_sql}{having_sql}",
        batch_items.join(", ")
    );
    let size_ms = match window {
        Some(WindowSpec::Tumble { size_ms, .. } | WindowSpec::Hop { size_ms, .. }) => size_ms,
        None => 0,
    };
    let window_end =
        window.and(
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
        );
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
        append_only: false,
    })
}

/// One aggregate call of the select list or `HAVING`.
#[derive(Debug, PartialEq)]
struct AggregateCall {
    expr: Expr,
    name: String,
    arguments: String,
    filter: Option<Expr>,
}

#[derive(Debug, Default)]
struct AggregateCalls {
    calls: Vec<AggregateCall>,
}

impl AggregateCalls {
    /// Records each aggregate call in `expr`, once per distinct call.
    fn collect(&mut self, expr: &Expr) -> Result<(), SqlError> {
        let mut found = Vec::new();
        let mut error = None;
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(expr, |e| {
            if let Expr::Function(f) = e {
                let name = f.name.to_string().to_lowercase();
                if NOT_YET.contains(&name.as_str()) {
                    error = Some(SqlError::Unsupported(format!(
                        "{name} in a materialized view (count, sum, min, max and avg are)"
                    )));
                    return ControlFlow::Break(());
                }
                if INCREMENTAL.contains(&name.as_str()) {
                    let FunctionArguments::List(list) = &f.args else {
                        error = Some(SqlError::InvalidOption(format!("{name} needs arguments")));
                        return ControlFlow::Break(());
                    };
                    let distinct =
                        matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
                    if (distinct && (name != "count" || list.args.len() != 1))
                        || f.over.is_some()
                        || !f.within_group.is_empty()
                    {
                        error = Some(SqlError::Unsupported(format!(
                            "{name} with DISTINCT (but count of one value), OVER or WITHIN GROUP \
                             in a materialized view"
                        )));
                        return ControlFlow::Break(());
                    }
                    let name = if distinct {
                        "count_distinct".to_string()
                    } else {
                        name
                    };
                    let arguments = list
                        .args
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", ");
                    found.push(AggregateCall {
                        expr: e.clone(),
                        name,
                        arguments,
                        filter: f.filter.as_deref().cloned(),
                    });
                }
            }
            ControlFlow::Continue(())
        });
        if let Some(error) = error {
            return Err(error);
        }
        for call in found {
            if !self.calls.iter().any(|c| c.expr == call.expr) {
                self.calls.push(call);
            }
        }
        Ok(())
    }
}

/// Rewrites select-list expressions over the merged-state relation: aggregate calls become
/// their finished values, group expressions their `g` columns.
struct Finisher<'a> {
    calls: &'a [AggregateCall],
    finished: &'a [String],
    groups: &'a [Expr],
}

impl Finisher<'_> {
    fn rewrite(&mut self, expr: &Expr) -> String {
        let mut expr = expr.clone();
        let _ = expr.visit(self);
        // Placeholders stand in for the replacements while the tree is printed, since the
        // replacements are SQL text.
        let mut sql = expr.to_string();
        for (i, finished) in self.finished.iter().enumerate() {
            sql = sql.replace(&format!("__weir_f{i}__"), &format!("({finished})"));
        }
        for j in 0..self.groups.len() {
            sql = sql.replace(&format!("__weir_g{j}__"), &format!("\"g{j}\""));
        }
        sql
    }
}

impl VisitorMut for Finisher<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let placeholder = if let Some(i) = self.calls.iter().position(|c| &c.expr == expr) {
            Some(format!("__weir_f{i}__"))
        } else {
            self.groups
                .iter()
                .position(|g| g == expr)
                .map(|j| format!("__weir_g{j}__"))
        };
        if let Some(name) = placeholder {
            *expr = Expr::Identifier(Ident::new(name));
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn plan(sql: &str) -> Result<ViewQuery, SqlError> {
        let query = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(sql)
            .unwrap()
            .parse_query()
            .unwrap();
        plan_view_query(&query)
    }

    #[test]
    fn splits_a_tumbling_aggregate() {
        let view = plan(
            "SELECT window_start, region, count(*) AS orders, avg(amount), \
             count(*) FILTER (WHERE amount > 10)::double / count(*) AS big_share \
             FROM TUMBLE(events, ts, INTERVAL '1 minute') WHERE event_name = 'buy' \
             GROUP BY window_start, window_end, region HAVING count(*) > 1",
        )
        .unwrap();
        assert_eq!(view.source, "events");
        assert_eq!(view.time_column.as_deref(), Some("ts"));
        assert_eq!(
            view.window,
            Some(WindowSpec::Tumble {
                size_ms: 60_000,
                offset_ms: 0
            })
        );
        assert_eq!(view.group_columns, 3);
        assert_eq!(
            view.window_end,
            Some(WindowEnd {
                group_column: 0,
                plus_ms: 60_000
            })
        );
        assert_eq!(
            view.partials,
            vec![Merge::Sum, Merge::Sum, Merge::Sum, Merge::Sum]
        );
        assert!(
            view.partial_sql
                .contains("count(*) FILTER (WHERE amount > 10) AS \"p3\""),
            "{}",
            view.partial_sql
        );
        assert!(
            view.partial_sql
                .contains("sum(amount) AS \"p1\", count(amount) AS \"p2\""),
            "{}",
            view.partial_sql
        );
        assert_eq!(view.final_items[0], "\"g0\"");
        assert_eq!(view.final_items[1], "\"g2\"");
        assert_eq!(view.final_items[2], "(COALESCE(\"p0\", 0))");
        assert_eq!(
            view.final_items[4],
            "(COALESCE(\"p3\", 0))::DOUBLE / (COALESCE(\"p0\", 0))"
        );
        assert_eq!(
            view.final_filter.as_deref(),
            Some("(COALESCE(\"p0\", 0)) > 1")
        );
        assert!(view.batch_sql.contains("HAVING count(*) > 1"));
    }

    #[test]
    fn hop_joins_each_event_with_its_windows() {
        let view = plan(
            "SELECT window_start, max(amount) FROM HOP(events, ts, INTERVAL '1 minute', \
             INTERVAL '5 minutes') GROUP BY window_start",
        )
        .unwrap();
        assert_eq!(
            view.window,
            Some(WindowSpec::Hop {
                slide_ms: 60_000,
                size_ms: 300_000,
                offset_ms: 0
            })
        );
        assert!(
            view.partial_sql.contains("AS __panes"),
            "the hop aggregates per pane: {}",
            view.partial_sql
        );
        assert!(
            view.partial_sql.contains("INTERVAL '240000 milliseconds'"),
            "{}",
            view.partial_sql
        );
        assert_eq!(view.partials, vec![Merge::Max]);
    }

    #[test]
    fn refuses_what_it_cannot_maintain_by_name() {
        for (sql, named) in [
            ("SELECT sum(DISTINCT amount) FROM events", "DISTINCT"),
            (
                "SELECT approx_count_distinct(user_id) FROM events",
                "approx_count_distinct",
            ),
            (
                "SELECT count(*) FROM HOP(events, ts, INTERVAL '2 minutes', INTERVAL '3 minutes')",
                "multiple",
            ),
            (
                "SELECT count(*) FROM SESSION(events, ts, INTERVAL '1 minute')",
                "session",
            ),
            ("SELECT * FROM events GROUP BY a", "*"),
        ] {
            let error = plan(sql).unwrap_err().to_string();
            assert!(error.contains(named), "{sql}: {error}");
        }
    }
}
