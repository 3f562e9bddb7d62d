//! Window table functions as SQL over the source: `TUMBLE(src, ts, size [, offset])` and
//! `HOP(src, ts, slide, size [, offset])` in a view's `FROM` become `date_bin` expressions, and
//! HOP views whose window columns appear only in `GROUP BY` aggregate per slide-sized pane.
//! `SESSION(src, ts, gap [, max_duration])` depends on the view's other group keys, so its
//! SQL is written by [`session_batch_from`] once those are known; the server forms sessions
//! incrementally (`src/stream/session.rs`).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, JoinConstraint, JoinOperator, Select, TableAlias,
    TableFactor,
};

use super::duration::interval_ms;
use super::names::{ident, object_name};
use super::view::{Merge, WindowSpec};
use crate::SqlError;

/// What a view reads: its source (or the view it is over), the window, the reference tables
/// it joins, and the `FROM` text that computes the window columns and the joins.
#[derive(Debug)]
pub(super) struct Relation {
    pub(super) source: String,
    pub(super) time_column: Option<String>,
    pub(super) window: Option<WindowSpec>,
    pub(super) from_sql: String,
    /// Joined relations, by name: reference tables, read as they are when each epoch runs.
    pub(super) tables: Vec<String>,
    /// The `FROM` is the source alone, under its own name (no alias, no joins).
    pub(super) plain: bool,
    /// The name the `FROM` gave the source or window, if any.
    pub(super) alias: Option<String>,
}

/// Reads a view's `FROM`. `columns_of` names the columns of a relation (for a view over a
/// view, whose own `window_start` and `window_end` the new window's replace).
pub(super) fn window_relation(
    select: &Select,
    columns_of: &dyn Fn(&str) -> Vec<String>,
) -> Result<Relation, SqlError> {
    let [from] = select.from.as_slice() else {
        return Err(SqlError::Unsupported(
            "a materialized view over a comma-separated list of relations (use JOIN ... ON)".into(),
        ));
    };
    let mut tables = Vec::new();
    let mut joins = String::new();
    for join in &from.joins {
        let TableFactor::Table {
            name, args: None, ..
        } = &join.relation
        else {
            return Err(SqlError::Unsupported(
                "a join with anything but a reference table in a materialized view".into(),
            ));
        };
        match &join.join_operator {
            JoinOperator::Join(JoinConstraint::On(_))
            | JoinOperator::Inner(JoinConstraint::On(_))
            | JoinOperator::Left(JoinConstraint::On(_))
            | JoinOperator::LeftOuter(JoinConstraint::On(_)) => {}
            _ => {
                return Err(SqlError::Unsupported(
                    "joins in a materialized view other than [INNER] JOIN or LEFT JOIN ... ON"
                        .into(),
                ));
            }
        }
        tables.push(object_name(name)?);
        joins.push_str(&format!(" {join}"));
    }
    let (source, time_column, window, relation) = windowed_source(&from.relation, columns_of)?;
    Ok(Relation {
        plain: joins.is_empty() && relation.alias().is_none(),
        alias: relation.alias(),
        from_sql: match relation.alias() {
            Some(alias) => format!("{} AS {alias}{joins}", relation.sql()),
            None => format!("{}{joins}", relation.sql()),
        },
        source,
        time_column,
        window,
        tables,
    })
}

/// The `FROM` text of the source or window, and the alias it was given.
enum Windowed<'a> {
    Source(String, Option<&'a TableAlias>),
    Window(String, &'static str, Option<&'a TableAlias>),
    /// A session window: the source under the window's alias, sessions formed by the view.
    Session(String, Option<&'a TableAlias>),
}

impl Windowed<'_> {
    fn alias(&self) -> Option<String> {
        match self {
            // The name alone: `AS` is written by the caller either way.
            Windowed::Source(_, alias)
            | Windowed::Window(_, _, alias)
            | Windowed::Session(_, alias) => alias.map(|a| a.name.to_string()),
        }
    }

    /// The relation without its alias (a window's subquery needs a name of its own).
    fn sql(&self) -> String {
        match self {
            Windowed::Source(source, _) | Windowed::Session(source, _) => {
                format!("\"{source}\"")
            }
            Windowed::Window(sql, name, alias) => match alias {
                Some(_) => sql.clone(),
                None => format!("{sql} AS {name}"),
            },
        }
    }
}

/// The source, time column and window of a `FROM` relation, and its text.
fn windowed_source<'a>(
    relation: &'a TableFactor,
    columns_of: &dyn Fn(&str) -> Vec<String>,
) -> Result<(String, Option<String>, Option<WindowSpec>, Windowed<'a>), SqlError> {
    let TableFactor::Table {
        name, args, alias, ..
    } = relation
    else {
        return Err(SqlError::Unsupported(
            "a materialized view over a subquery or table function other than TUMBLE, HOP or \
             SESSION"
                .into(),
        ));
    };
    let alias = alias.as_ref();
    let function = object_name(name)?;
    let Some(args) = args else {
        return Ok((
            function.clone(),
            None,
            None,
            Windowed::Source(function, alias),
        ));
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
    // The input's columns but for window columns of its own, which the new window's replace.
    let columns = columns_of(&source);
    let passed = |qualifier: &str| {
        if columns
            .iter()
            .any(|c| c == "window_start" || c == "window_end")
        {
            columns
                .iter()
                .filter(|c| *c != "window_start" && *c != "window_end")
                .map(|c| format!("{qualifier}\"{}\"", c.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            format!("{qualifier}*")
        }
    };
    let offset = |rest: &[&Expr]| {
        rest.first()
            .map(|o| duration(o, "offset"))
            .transpose()
            .map(|o| o.unwrap_or(0))
    };
    let (window, windowed) = match (function.as_str(), &args[2..]) {
        ("tumble", [size, rest @ ..]) if rest.len() <= 1 => {
            let size_ms = duration(size, "size")?;
            let offset_ms = offset(rest)?;
            let start = format!(
                "date_bin({}, \"{time}\", {})",
                ms(size_ms),
                origin(offset_ms)
            );
            (
                WindowSpec::Tumble { size_ms, offset_ms },
                Windowed::Window(
                    format!(
                        "(SELECT {}, {start} AS window_start, {start} + {} AS window_end \
                         FROM \"{source}\")",
                        passed(""),
                        span(size_ms)
                    ),
                    "tumble",
                    alias,
                ),
            )
        }
        ("hop", [slide, size, rest @ ..]) if rest.len() <= 1 => {
            let slide_ms = duration(slide, "slide")?;
            let size_ms = duration(size, "size")?;
            let offset_ms = offset(rest)?;
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
                Windowed::Window(
                    format!(
                        "(SELECT {}, {start} AS window_start, {start} + {} AS window_end \
                         FROM \"{source}\" AS __src CROSS JOIN (VALUES {}) AS __hop(shift))",
                        passed("__src."),
                        span(size_ms),
                        hop_shifts(slide_ms, size_ms)
                    ),
                    "hop",
                    alias,
                ),
            )
        }
        ("session", [gap, rest @ ..]) if rest.len() <= 1 => {
            let gap_ms = duration(gap, "gap")?;
            let max_duration_ms = rest
                .first()
                .map(|m| duration(m, "max_duration"))
                .transpose()?;
            (
                WindowSpec::Session {
                    gap_ms,
                    max_duration_ms,
                },
                Windowed::Session(source.clone(), alias),
            )
        }
        ("session", _) => {
            return Err(SqlError::InvalidOption(
                "SESSION takes (source, time column, gap [, max_duration])".into(),
            ));
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
                "the table function {other} in a materialized view (TUMBLE, HOP and SESSION are)"
            )));
        }
    };
    Ok((source, Some(time), Some(window), windowed))
}

/// The `FROM` of a SESSION view's query over the whole source (DESIGN.md §7): per value of
/// `partition` (the view's other group keys), events sorted by time start a session when they
/// are the first or `gap` or more after the previous one (a running sum of those starts
/// numbers the sessions: gaps and islands); `window_start` is a session's first event and
/// `window_end` its last plus the gap. `filter` (the view's `WHERE`) applies before sessions
/// form, and events without a time are in none. Every level carries `alias`, so the group
/// keys read the same at each.
pub(super) fn session_batch_from(
    source: &str,
    time: &str,
    gap_ms: u64,
    partition: &[String],
    filter: Option<String>,
    alias: &str,
) -> String {
    let time = format!("{alias}.\"{}\"", time.replace('"', "\"\""));
    let by = if partition.is_empty() {
        String::new()
    } else {
        format!("PARTITION BY {} ", partition.join(", "))
    };
    let session = if partition.is_empty() {
        "PARTITION BY __session".to_string()
    } else {
        format!("PARTITION BY {}, __session", partition.join(", "))
    };
    let filter = filter.map(|f| format!(" AND ({f})")).unwrap_or_default();
    format!(
        "(SELECT {alias}.*, min(__time) OVER ({session}) AS window_start, \
         max(__time) OVER ({session}) + {gap} AS window_end \
         FROM (SELECT {alias}.*, sum(__starts) OVER ({by}ORDER BY __time \
         ROWS UNBOUNDED PRECEDING) AS __session \
         FROM (SELECT {alias}.*, {time} AS __time, CASE WHEN lag({time}) OVER ({by}ORDER BY \
         {time}) + {gap} > {time} THEN 0 ELSE 1 END AS __starts \
         FROM \"{source}\" AS {alias} WHERE {time} IS NOT NULL{filter}) AS {alias}) AS {alias}) \
         AS {alias}",
        gap = span(gap_ms),
    )
}

/// What [`hop_by_panes`] needs.
pub(super) struct HopPanes<'a> {
    pub(super) source: &'a str,
    pub(super) time: &'a str,
    pub(super) slide_ms: u64,
    pub(super) size_ms: u64,
    pub(super) offset_ms: u64,
    pub(super) groups: &'a [Expr],
    pub(super) aggregate_items: &'a [String],
    pub(super) merges: &'a [Merge],
    pub(super) filter_sql: &'a str,
}

/// The partial query of a HOP view computed per pane (DESIGN.md §7): events are aggregated
/// once into slide-sized panes, and only the pane rows, not the events, are joined with the
/// size/slide windows that contain them and merged per window. Used when nothing but the
/// group list mentions the window columns.
pub(super) fn hop_by_panes(hop: HopPanes<'_>) -> String {
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
            Some(_) => format!("{start} + {} AS \"g{j}\"", span(hop.size_ms)),
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
            Merge::BitOr => "bit_or",
            Merge::Sketch(sketch) => sketch
                .merge_function()
                .expect("only sketches merged in SQL take the pane path"),
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
pub(super) fn window_column(expr: &Expr) -> Option<&'static str> {
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
pub(super) fn mentions_window(expr: &Expr) -> bool {
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
        .map(|k| format!("({})", span(k * slide_ms)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An interval, for `date_bin`'s stride and origin.
fn ms(ms: u64) -> String {
    format!("INTERVAL '{ms} milliseconds'")
}

/// A span added to or taken from event times: a duration in the timestamps' own unit, which
/// Arrow adds as integers, where an `INTERVAL` (months, days and nanoseconds) goes through
/// calendar arithmetic for every row.
fn span(ms: u64) -> String {
    format!("arrow_cast({}, 'Duration(Microsecond)')", ms * 1000)
}

fn origin(offset_ms: u64) -> String {
    format!("TIMESTAMP '1970-01-01T00:00:00Z' + {}", ms(offset_ms))
}
