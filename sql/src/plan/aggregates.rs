//! The aggregate calls of a view's query: which can be maintained incrementally, in what
//! form their partial states are computed, and the rewrite of the select list over merged
//! states, where each call becomes its finished value.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    DuplicateTreatment, Expr, FunctionArguments, Ident, VisitMut, VisitorMut,
};

use crate::SqlError;

/// Aggregates a view can maintain incrementally, and those it cannot yet.
const INCREMENTAL: &[&str] = &["count", "sum", "min", "max", "avg"];
/// Approximate aggregates, maintained as sketches.
const SKETCHES: &[&str] = &[
    "approx_count_distinct",
    "approx_distinct",
    "approx_percentile_cont",
    "approx_median",
];
/// Product-analytics aggregates (ClickHouse's `windowFunnel` and `retention`), maintained as
/// mergeable states: the funnel's (time, step) entries, retention's bit mask.
const ANALYTICS: &[&str] = &["window_funnel", "retention"];
const NOT_YET: &[&str] = &[
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

/// One aggregate call of the select list or `HAVING`.
#[derive(Debug, PartialEq)]
pub(super) struct AggregateCall {
    pub(super) expr: Expr,
    pub(super) name: String,
    pub(super) arguments: String,
    pub(super) filter: Option<Expr>,
    /// For `approx_percentile_cont` and `approx_median`: the percentile, ascending.
    pub(super) percentile: Option<f64>,
    /// The arguments one by one (`arguments` is them joined).
    pub(super) args: Vec<String>,
}

impl AggregateCall {
    /// A call whose arguments are taken as written.
    fn plain(
        expr: &Expr,
        function: &datafusion::sql::sqlparser::ast::Function,
        name: String,
        list: &datafusion::sql::sqlparser::ast::FunctionArgumentList,
    ) -> Self {
        let args: Vec<String> = list.args.iter().map(|a| a.to_string()).collect();
        AggregateCall {
            expr: expr.clone(),
            name,
            arguments: args.join(", "),
            filter: function.filter.as_deref().cloned(),
            percentile: None,
            args,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct AggregateCalls {
    pub(super) calls: Vec<AggregateCall>,
}

impl AggregateCalls {
    /// Records each aggregate call in `expr`, once per distinct call.
    pub(super) fn collect(&mut self, expr: &Expr) -> Result<(), SqlError> {
        let mut found = Vec::new();
        let mut error = None;
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(expr, |e| {
            if let Expr::Function(f) = e {
                let name = f.name.to_string().to_lowercase();
                if NOT_YET.contains(&name.as_str()) {
                    error = Some(SqlError::Unsupported(format!(
                        "{name} in a materialized view (count, sum, min, max, avg, \
                         approx_count_distinct, approx_percentile_cont, window_funnel and \
                         retention are)"
                    )));
                    return ControlFlow::Break(());
                }
                if SKETCHES.contains(&name.as_str()) {
                    match sketch_call(e, f, &name) {
                        Ok(call) => found.push(call),
                        Err(e) => {
                            error = Some(e);
                            return ControlFlow::Break(());
                        }
                    }
                    return ControlFlow::Continue(());
                }
                if ANALYTICS.contains(&name.as_str()) {
                    let FunctionArguments::List(list) = &f.args else {
                        error = Some(SqlError::InvalidOption(format!("{name} needs arguments")));
                        return ControlFlow::Break(());
                    };
                    if list.duplicate_treatment.is_some() || f.over.is_some() {
                        error = Some(SqlError::Unsupported(format!(
                            "{name} with DISTINCT or OVER in a materialized view"
                        )));
                        return ControlFlow::Break(());
                    }
                    found.push(AggregateCall::plain(e, f, name, list));
                    return ControlFlow::Continue(());
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
                    found.push(AggregateCall::plain(e, f, name, list));
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

/// An approximate aggregate call, its arguments in the plain form the sketch aggregates take:
/// `(x)` for distinct counts, `(x, percentile [, centroids])` for percentiles, whether written
/// `approx_percentile_cont(p) WITHIN GROUP (ORDER BY x [DESC])`, `approx_percentile_cont(x, p)`
/// or `approx_median(x)`.
fn sketch_call(
    expr: &Expr,
    function: &datafusion::sql::sqlparser::ast::Function,
    name: &str,
) -> Result<AggregateCall, SqlError> {
    let FunctionArguments::List(list) = &function.args else {
        return Err(SqlError::InvalidOption(format!("{name} needs arguments")));
    };
    if list.duplicate_treatment.is_some() || function.over.is_some() {
        return Err(SqlError::Unsupported(format!(
            "{name} with DISTINCT or OVER in a materialized view"
        )));
    }
    let args: Vec<String> = list.args.iter().map(|a| a.to_string()).collect();
    let percentile_of = |arg: &str| {
        arg.trim()
            .parse::<f64>()
            .ok()
            .filter(|q| (0.0..=1.0).contains(q))
            .ok_or_else(|| {
                SqlError::InvalidOption(format!(
                    "{name} needs a constant percentile between 0 and 1, not {arg}"
                ))
            })
    };
    let (name, arguments, percentile) = match (name, function.within_group.as_slice()) {
        ("approx_count_distinct" | "approx_distinct", []) if args.len() == 1 => {
            ("approx_distinct", args[0].clone(), None)
        }
        ("approx_median", []) if args.len() == 1 => (
            "approx_percentile_cont",
            format!("{}, 0.5", args[0]),
            Some(0.5),
        ),
        ("approx_percentile_cont", []) if (2..=3).contains(&args.len()) => {
            let q = percentile_of(&args[1])?;
            ("approx_percentile_cont", args.join(", "), Some(q))
        }
        ("approx_percentile_cont", [order]) if (1..=2).contains(&args.len()) => {
            let q = percentile_of(&args[0])?;
            // Descending order asks for the same point from the other end.
            let q = if order.options.asc == Some(false) {
                1.0 - q
            } else {
                q
            };
            let mut plain = vec![order.expr.to_string(), format!("{q:?}")];
            plain.extend(args.get(1).cloned());
            ("approx_percentile_cont", plain.join(", "), Some(q))
        }
        _ => {
            return Err(SqlError::InvalidOption(format!(
                "{name}: expected approx_count_distinct(x), approx_median(x), \
                 approx_percentile_cont(p) WITHIN GROUP (ORDER BY x) or \
                 approx_percentile_cont(x, p)"
            )));
        }
    };
    Ok(AggregateCall {
        expr: expr.clone(),
        name: name.to_string(),
        arguments,
        filter: function.filter.as_deref().cloned(),
        percentile,
        args,
    })
}

/// Rewrites select-list expressions over the merged-state relation: aggregate calls become
/// their finished values, group expressions their `g` columns.
pub(super) struct Finisher<'a> {
    pub(super) calls: &'a [AggregateCall],
    pub(super) finished: &'a [String],
    pub(super) groups: &'a [Expr],
}

impl Finisher<'_> {
    pub(super) fn rewrite(&mut self, expr: &Expr) -> String {
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
