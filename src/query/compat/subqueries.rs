//! Subqueries where DataFusion takes none: correlated scalar subqueries in select lists,
//! `EXISTS` and `IN (SELECT ...)` as values, a sort on a subquery, and Grafana's
//! `search_path` schema list.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Ident, OrderByKind, Query, Select, SelectItem, SetExpr,
    Statement, TableFactor, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::rules::{column_name, parse_expr, visit_exprs_outside_subqueries};

/// Grafana asks for the schemas on the search path with `FROM generate_series(...) AS i,
/// string_to_array(current_setting('search_path'), ',') s`, a scalar function used as a
/// table, which DataFusion cannot plan (and `datafusion-pg-catalog` replaces with `''`, so
/// Grafana found no columns). The same list, as a query DataFusion plans.
pub(super) struct SearchPathSchemas {
    pub(super) changed: bool,
}

const SEARCH_PATH_SCHEMAS: &str = "SELECT CASE WHEN trim(s) = '\"$user\"' THEN current_user \
     ELSE trim(s) END FROM unnest(string_to_array(current_setting('search_path'), ',')) AS t(s)";

impl VisitorMut for SearchPathSchemas {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let SetExpr::Select(select) = query.body.as_ref() else {
            return ControlFlow::Continue(());
        };
        let splits_search_path = select.from.iter().any(|from| {
            matches!(
                &from.relation,
                TableFactor::Table { name, args: Some(args), .. }
                    if name.to_string().eq_ignore_ascii_case("string_to_array")
                        && args.args.iter().any(|a| {
                            a.to_string().to_ascii_lowercase().contains("search_path")
                        })
            )
        });
        if splits_search_path
            && let Ok(mut replacement) =
                Parser::parse_sql(&PostgreSqlDialect {}, SEARCH_PATH_SCHEMAS)
            && let Some(Statement::Query(replacement)) = replacement.pop()
        {
            *query = *replacement;
            self.changed = true;
        }
        ControlFlow::Continue(())
    }
}

/// Makes the scalar subqueries of select lists plannable: DataFusion turns a correlated
/// subquery into a join only when it aggregates, so `(SELECT e FROM ... WHERE inner = outer)`
/// becomes `((SELECT max(e) ...))` (at most one row matches where Postgres would run it; more
/// would be an error there). One whose correlation is not an equality cannot be joined and
/// becomes NULL. Returns whether anything changed.
pub(super) fn scalar_subqueries(statement: &mut Statement) -> bool {
    let mut rewrite = ScalarSubqueries { changed: false };
    let _ = statement.visit(&mut rewrite);
    rewrite.changed
}

struct ScalarSubqueries {
    changed: bool,
}

impl VisitorMut for ScalarSubqueries {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let SetExpr::Select(select) = query.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        for item in &mut select.projection {
            let (SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. }) = item
            else {
                continue;
            };
            let _ = visit_exprs_outside_subqueries(expr, &mut |e| {
                if let Expr::Subquery(subquery) = e
                    && let Some(rewritten) = aggregated(subquery)
                {
                    *e = rewritten;
                    self.changed = true;
                }
            });
        }
        ControlFlow::Continue(())
    }
}

fn aggregated(subquery: &Query) -> Option<Expr> {
    let SetExpr::Select(select) = subquery.body.as_ref() else {
        return None;
    };
    let plain = select.projection.len() == 1
        && select.distinct.is_none()
        && select.having.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
        && subquery.limit_clause.is_none()
        && subquery.order_by.is_none();
    if !plain {
        return None;
    }
    let (SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }) =
        &select.projection[0]
    else {
        return None;
    };
    let inner = relation_names(select);
    let mut subquery = subquery.clone();
    let SetExpr::Select(select) = subquery.body.as_mut() else {
        unreachable!("checked above")
    };
    if !is_aggregate(value) {
        select.projection = vec![SelectItem::UnnamedExpr(parse_expr(&format!(
            "max({value})"
        ))?)];
    }
    // A condition on the outer row alone stops DataFusion from joining the subquery: it becomes
    // a CASE around it.
    let (outer, rest): (Vec<Expr>, Vec<Expr>) = select
        .selection
        .take()
        .map(conjuncts)
        .unwrap_or_default()
        .into_iter()
        .partition(|c| references_only_outer(c, &inner));
    if !rest.iter().all(|c| joinable(c, &inner)) {
        return Some(Expr::Value(Value::Null.into()));
    }
    select.selection = and_all(rest);
    let subquery = Expr::Nested(Box::new(Expr::Subquery(Box::new(subquery))));
    match and_all(outer) {
        None => Some(subquery),
        Some(condition) => parse_expr(&format!("CASE WHEN {condition} THEN {subquery} END")),
    }
}

/// The names a select's columns are qualified with: aliases, else table names.
fn relation_names(select: &Select) -> Vec<String> {
    let mut names = Vec::new();
    let factors = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    for factor in factors {
        match factor {
            TableFactor::Table {
                alias: Some(alias), ..
            }
            | TableFactor::Derived {
                alias: Some(alias), ..
            }
            | TableFactor::Function {
                alias: Some(alias), ..
            }
            | TableFactor::UNNEST {
                alias: Some(alias), ..
            } => names.push(alias.name.value.clone()),
            TableFactor::Table { name, .. } => {
                if let Some(last) = name.0.last().and_then(|p| p.as_ident()) {
                    names.push(last.value.clone());
                }
            }
            _ => {}
        }
    }
    names
}

fn conjuncts(expr: Expr) -> Vec<Expr> {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut all = conjuncts(*left);
            all.extend(conjuncts(*right));
            all
        }
        Expr::Nested(inner)
            if matches!(
                *inner,
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner)
        }
        other => vec![other],
    }
}

fn and_all(exprs: Vec<Expr>) -> Option<Expr> {
    exprs.into_iter().reduce(|left, right| Expr::BinaryOp {
        left: Box::new(left),
        op: BinaryOperator::And,
        right: Box::new(right),
    })
}

/// Whether every column `expr` names is qualified by something other than `inner`.
fn references_only_outer(expr: &Expr, inner: &[String]) -> bool {
    let mut columns = 0;
    let mut outer = true;
    let mut expr = expr.clone();
    let _ = visit_exprs_outside_subqueries(&mut expr, &mut |e| match e {
        Expr::Identifier(_) => {
            columns += 1;
            outer = false;
        }
        Expr::CompoundIdentifier(idents) => {
            columns += 1;
            let qualifier = &idents[idents.len().saturating_sub(2)].value;
            if inner.iter().any(|name| name == qualifier) {
                outer = false;
            }
        }
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => outer = false,
        _ => {}
    });
    outer && columns > 0
}

fn is_aggregate(expr: &Expr) -> bool {
    let Expr::Function(function) = expr else {
        return false;
    };
    let name = function.name.to_string().to_ascii_lowercase();
    matches!(
        name.trim_start_matches("pg_catalog."),
        "count"
            | "sum"
            | "min"
            | "max"
            | "avg"
            | "array_agg"
            | "string_agg"
            | "bool_and"
            | "bool_or"
            | "json_agg"
            | "jsonb_agg"
    )
}

/// Whether DataFusion can join on a condition of the subquery: one on its own rows, or an
/// equality of one of its columns with an outer one.
fn joinable(condition: &Expr, inner: &[String]) -> bool {
    if let Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    } = condition
        && is_column(left)
        && is_column(right)
    {
        return true;
    }
    let mut outer = false;
    let mut condition = condition.clone();
    let _ = visit_exprs_outside_subqueries(&mut condition, &mut |e| {
        if let Expr::CompoundIdentifier(idents) = e {
            let qualifier = &idents[idents.len().saturating_sub(2)].value;
            if !inner.iter().any(|name| name == qualifier) {
                outer = true;
            }
        }
    });
    !outer
}

fn is_column(expr: &Expr) -> bool {
    column_name(expr).is_some()
}

/// An `ORDER BY` on a subquery (Grafana orders tables on the search path first): DataFusion
/// takes subqueries in projections, not sorts, so the sort key is computed as a column of the
/// query, which is sorted from outside.
pub(super) fn sorted_outside(query: &Query) -> Option<Query> {
    let OrderByKind::Expressions(order) = &query.order_by.as_ref()?.kind else {
        return None;
    };
    if !order.iter().any(|o| has_subquery(&o.expr)) {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let names: Vec<String> = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.to_string()),
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => Some(ident.to_string()),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let mut inner = select.as_ref().clone();
    let mut keys = Vec::new();
    for (n, item) in order.iter().enumerate() {
        let key = if has_subquery(&item.expr) {
            let name = format!("__weir_order_{n}");
            inner.projection.push(SelectItem::ExprWithAlias {
                expr: item.expr.clone(),
                alias: Ident::new(&name),
            });
            name
        } else if matches!(item.expr, Expr::Value(_)) || names.contains(&item.expr.to_string()) {
            // An ordinal or an output column: the same in the outer query.
            item.expr.to_string()
        } else {
            return None;
        };
        keys.push(format!("{key} {}", item.options).trim_end().to_string());
    }
    let limit = query
        .limit_clause
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let sql = format!(
        "SELECT {} FROM ({inner}) AS __weir_sorted ORDER BY {}{limit}",
        names.join(", "),
        keys.join(", ")
    );
    match Parser::parse_sql(&PostgreSqlDialect {}, &sql).ok()?.pop()? {
        Statement::Query(sorted) => Some(*sorted),
        _ => None,
    }
}

fn has_subquery(expr: &Expr) -> bool {
    let mut found = false;
    let mut expr = expr.clone();
    let _ = expr.visit(&mut SubqueryFinder(&mut found));
    found
}

struct SubqueryFinder<'a>(&'a mut bool);

impl VisitorMut for SubqueryFinder<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if matches!(
            expr,
            Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. }
        ) {
            *self.0 = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// `EXISTS (SELECT ... FROM f WHERE w)` → `((SELECT count(*) FROM f WHERE w) > 0)`.
pub(super) fn exists_as_count(expr: &Expr) -> Option<Expr> {
    let Expr::Exists { subquery, negated } = expr else {
        return None;
    };
    let SetExpr::Select(select) = subquery.body.as_ref() else {
        return None;
    };
    if select.having.is_some()
        || !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
    {
        return None;
    }
    let mut counted = subquery.clone();
    let SetExpr::Select(select) = counted.body.as_mut() else {
        unreachable!("checked above")
    };
    select.projection = vec![SelectItem::UnnamedExpr(parse_expr("count(*)")?)];
    select.distinct = None;
    counted.limit_clause = None;
    counted.order_by = None;
    Some(Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(Expr::Subquery(counted)),
        op: if *negated {
            BinaryOperator::Eq
        } else {
            BinaryOperator::Gt
        },
        right: Box::new(parse_expr("0")?),
    })))
}

/// `x IN (SELECT e FROM ...)` → `((SELECT count(*) FROM (SELECT e AS v FROM ...) AS s
/// WHERE s.v = x) > 0)`. (A NULL `x` counts nothing, where Postgres would answer NULL.)
pub(super) fn in_as_count(expr: &Expr) -> Option<Expr> {
    let Expr::InSubquery {
        expr: needle,
        subquery,
        negated,
    } = expr
    else {
        return None;
    };
    let mut values = subquery.as_ref().clone();
    let SetExpr::Select(select) = values.body.as_mut() else {
        return None;
    };
    let [SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }] =
        select.projection.as_slice()
    else {
        return None;
    };
    select.projection = vec![SelectItem::ExprWithAlias {
        expr: value.clone(),
        alias: Ident::new("__weir_value"),
    }];
    let comparison = if *negated { "=" } else { ">" };
    parse_expr(&format!(
        "((SELECT count(*) FROM ({values}) AS __weir_in WHERE __weir_in.__weir_value = {needle}) \
         {comparison} 0)"
    ))
}
