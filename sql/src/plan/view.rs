//! A materialized view's query split for incremental maintenance.
//!
//! Window table functions become plain SQL over the source: `TUMBLE(src, ts, size [, offset])`
//! adds `window_start = date_bin(size, ts, origin)` and `window_end = window_start + size`;
//! `HOP(src, ts, slide, size [, offset])` joins each event with the size/slide window starts
//! that contain it. The aggregate query is then cut in two (DESIGN.md §5):
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
    DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident,
    Query, Select, SelectItem, SetExpr, TableFactor, VisitMut, VisitorMut,
};

use super::duration::interval_ms;
use super::names::{ident, object_name};
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

/// The source, the window, and the `FROM` text that computes the window columns.
fn window_relation(
    select: &Select,
) -> Result<(String, Option<String>, Option<WindowSpec>, String), SqlError> {
    let [from] = select.from.as_slice() else {
        return Err(SqlError::Unsupported(
            "a materialized view over more than one relation (joins come later)".into(),
        ));
    };
    if !from.joins.is_empty() {
        return Err(SqlError::Unsupported("joins in a materialized view".into()));
    }
    let TableFactor::Table { name, args, .. } = &from.relation else {
        return Err(SqlError::Unsupported(
            "a materialized view over a subquery or table function other than TUMBLE/HOP".into(),
        ));
    };
    let function = object_name(name)?;
    let Some(args) = args else {
        return Ok((function.clone(), None, None, format!("\"{function}\"")));
    };
    let args: Vec<&Expr> = args
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
            _ => Err(SqlError::InvalidOption(format!(
                "{function}: arguments must be plain expressions"
            ))),
        })
        .collect::<Result<_, _>>()?;
    let column = |e: &Expr, what: &str| match e {
        Expr::Identifier(i) => Ok(ident(i)),
        other => Err(SqlError::InvalidOption(format!(
            "{function}: the {what} must be a name, not {other}"
        ))),
    };
    let duration = |e: &Expr, what: &str| match e {
        Expr::Interval(i) => interval_ms(i).and_then(|ms| {
            if ms == 0 && what != "offset" {
                Err(SqlError::InvalidOption(format!(
                    "{function}: the {what} must be positive"
                )))
            } else {
                Ok(ms)
            }
        }),
        other => Err(SqlError::InvalidOption(format!(
            "{function}: the {what} must be an INTERVAL, not {other}"
        ))),
    };
    let (source, time) = match args.as_slice() {
        [source, time, ..] => (
            column(source, "first argument (the source)")?,
            column(time, "time column")?,
        ),
        _ => {
            return Err(SqlError::InvalidOption(format!(
                "{function} takes (source, time column, interval, ...)"
            )));
        }
    };
    let (window, windowed) = match (function.as_str(), &args[2..]) {
        ("tumble", [size, rest @ ..]) if rest.len() <= 1 => {
            let size_ms = duration(size, "size")?;
            let offset_ms = rest
                .first()
                .map(|o| duration(o, "offset"))
                .transpose()?
                .unwrap_or(0);
            let start = format!(
                "date_bin({}, \"{time}\", {})",
                ms(size_ms),
                origin(offset_ms)
            );
            (
                WindowSpec::Tumble { size_ms, offset_ms },
                format!(
                    "(SELECT *, {start} AS window_start, {start} + {} AS window_end FROM \"{source}\") AS tumble",
                    ms(size_ms)
                ),
            )
        }
        ("hop", [slide, size, rest @ ..]) if rest.len() <= 1 => {
            let slide_ms = duration(slide, "slide")?;
            let size_ms = duration(size, "size")?;
            let offset_ms = rest
                .first()
                .map(|o| duration(o, "offset"))
                .transpose()?
                .unwrap_or(0);
            if size_ms % slide_ms != 0 {
                return Err(SqlError::InvalidOption(format!(
                    "HOP: the size ({size_ms} ms) must be a multiple of the slide ({slide_ms} ms)"
                )));
            }
            // Each event joins the size/slide windows that hold it: the one starting at its
            // slide boundary and those starting up to size - slide before it.
            let start = format!(
                "date_bin({}, __src.\"{time}\", {}) - __hop.shift",
                ms(slide_ms),
                origin(offset_ms)
            );
            (
                WindowSpec::Hop {
                    slide_ms,
                    size_ms,
                    offset_ms,
                },
                format!(
                    "(SELECT __src.*, {start} AS window_start, {start} + {} AS window_end \
                     FROM \"{source}\" AS __src CROSS JOIN (VALUES {}) AS __hop(shift)) AS hop",
                    ms(size_ms),
                    hop_shifts(slide_ms, size_ms)
                ),
            )
        }
        ("tumble", _) => {
            return Err(SqlError::InvalidOption(
                "TUMBLE takes (source, time column, size [, offset])".into(),
            ));
        }
        ("hop", _) => {
            return Err(SqlError::InvalidOption(
                "HOP takes (source, time column, slide, size [, offset])".into(),
            ));
        }
        (other, _) => {
            return Err(SqlError::Unsupported(format!(
                "the table function {other} in a materialized view (TUMBLE and HOP are)"
            )));
        }
    };
    Ok((source, Some(time), Some(window), windowed))
}

/// What [`hop_by_panes`] needs.
struct HopPanes<'a> {
    source: &'a str,
    time: &'a str,
    slide_ms: u64,
    size_ms: u64,
    offset_ms: u64,
    groups: &'a [Expr],
    aggregate_items: &'a [String],
    merges: &'a [Merge],
    filter_sql: &'a str,
}

/// The partial query of a HOP view computed per pane (DESIGN.md §7): events are aggregated
/// once into slide-sized panes, and only the pane rows, not the events, are joined with the
/// size/slide windows that contain them and merged per window. Used when nothing but the
/// group list mentions the window columns.
fn hop_by_panes(hop: HopPanes<'_>) -> String {
    let pane = format!(
        "date_bin({}, \"{}\", {})",
        ms(hop.slide_ms),
        hop.time,
        origin(hop.offset_ms)
    );
    let mut inner_items = vec![format!("{pane} AS \"__pane\"")];
    let mut inner_groups = vec![pane];
    let mut outer_items = Vec::new();
    for (j, group) in hop.groups.iter().enumerate() {
        let start = "(\"__pane\" - __hop.shift)".to_string();
        outer_items.push(match window_column(group) {
            Some("window_start") => format!("{start} AS \"g{j}\""),
            Some(_) => format!("{start} + {} AS \"g{j}\"", ms(hop.size_ms)),
            None => {
                inner_items.push(format!("{group} AS \"i{j}\""));
                inner_groups.push(group.to_string());
                format!("\"i{j}\" AS \"g{j}\"")
            }
        });
    }
    inner_items.extend(hop.aggregate_items.iter().cloned());
    for (k, merge) in hop.merges.iter().enumerate() {
        let function = match merge {
            Merge::Sum => "sum",
            Merge::Min => "min",
            Merge::Max => "max",
            Merge::Distinct => unreachable!("distinct counts do not take the pane path"),
        };
        outer_items.push(format!("{function}(\"p{k}\") AS \"p{k}\""));
    }
    let outer_groups = if hop.groups.is_empty() {
        String::new()
    } else {
        format!(
            " GROUP BY {}",
            (1..=hop.groups.len())
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "SELECT {} FROM (SELECT {} FROM \"{}\"{} GROUP BY {}) AS __panes \
         CROSS JOIN (VALUES {}) AS __hop(shift){outer_groups}",
        outer_items.join(", "),
        inner_items.join(", "),
        hop.source,
        hop.filter_sql,
        inner_groups.join(", "),
        hop_shifts(hop.slide_ms, hop.size_ms),
    )
}

/// `window_start` or `window_end`, if `expr` is (only) that column.
fn window_column(expr: &Expr) -> Option<&'static str> {
    let name = match expr {
        Expr::Identifier(i) => ident(i),
        Expr::CompoundIdentifier(parts) => ident(parts.last()?),
        _ => return None,
    };
    match name.as_str() {
        "window_start" => Some("window_start"),
        "window_end" => Some("window_end"),
        _ => None,
    }
}

/// Whether `expr` mentions a window column anywhere.
fn mentions_window(expr: &Expr) -> bool {
    datafusion::sql::sqlparser::ast::visit_expressions(expr, |e| {
        if window_column(e).is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

/// The window starts an event's slide boundary is shifted back by: 0, slide, ... size - slide.
fn hop_shifts(slide_ms: u64, size_ms: u64) -> String {
    (0..size_ms / slide_ms)
        .map(|k| format!("({})", ms(k * slide_ms)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ms(ms: u64) -> String {
    format!("INTERVAL '{ms} milliseconds'")
}

fn origin(offset_ms: u64) -> String {
    format!("TIMESTAMP '1970-01-01T00:00:00Z' + {}", ms(offset_ms))
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
