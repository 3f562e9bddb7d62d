//! Weir's own rewrites of what clients send about the catalog, for the Postgres forms
//! DataFusion cannot plan and `datafusion-pg-catalog` does not rewrite (or rewrites away).
//!
//! Scalar subqueries in a select list run before `datafusion-pg-catalog`'s rules, which
//! replace every correlated one with NULL (psql's and SQLAlchemy's column defaults among them).
//! The rest run after.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, CastKind, DataType, Expr, GroupByExpr, Ident, OrderByKind, Query,
    Select, SelectItem, SetExpr, Statement, TableFactor, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Weir's rewrites that must precede `datafusion-pg-catalog`'s: [`search_path_schemas`] and the
/// scalar subqueries of select lists. Returns whether anything changed.
pub fn before_compat(statement: &mut Statement) -> bool {
    let mut rewrite = SearchPathSchemas { changed: false };
    let _ = statement.visit(&mut rewrite);
    rewrite.changed | scalar_subqueries(statement)
}

/// Grafana asks for the schemas on the search path with `FROM generate_series(...) AS i,
/// string_to_array(current_setting('search_path'), ',') s`, a scalar function used as a
/// table, which DataFusion cannot plan (and `datafusion-pg-catalog` replaces with `''`, so
/// Grafana found no columns). The same list, as a query DataFusion plans.
struct SearchPathSchemas {
    changed: bool,
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
fn scalar_subqueries(statement: &mut Statement) -> bool {
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

/// Calls `f` on every expression of `expr`, not descending into the subqueries it replaces.
fn visit_exprs_outside_subqueries(
    expr: &mut Expr,
    f: &mut dyn FnMut(&mut Expr),
) -> ControlFlow<()> {
    struct Each<'a>(&'a mut dyn FnMut(&mut Expr));
    impl VisitorMut for Each<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            (self.0)(expr);
            ControlFlow::Continue(())
        }
    }
    expr.visit(&mut Each(f))
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
    matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
}

/// The rewrites that run after `datafusion-pg-catalog`'s.
pub fn after_compat(statement: &mut Statement) {
    let _ = statement.visit(&mut AfterCompat);
}

struct AfterCompat;

impl VisitorMut for AfterCompat {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(sorted) = sorted_outside(query) {
            *query = sorted;
        }
        // `EXISTS` and `IN (SELECT ...)` as values (psql's `\d index`, Grafana's table list):
        // DataFusion takes them only as filters.
        let SetExpr::Select(select) = query.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        for item in &mut select.projection {
            if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item {
                let _ = visit_exprs_outside_subqueries(expr, &mut |e| {
                    if let Some(counted) = exists_as_count(e).or_else(|| in_as_count(e)) {
                        *e = counted;
                    }
                });
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Some(rewritten) = like_escape(expr)
            .or_else(|| generate_subscripts(expr))
            .or_else(|| int2vector_text(expr))
            .or_else(|| to_timestamp_format(expr))
            .or_else(|| expand_array(expr))
            .or_else(|| field_of_composite(expr))
        {
            *expr = rewritten;
        }
        ControlFlow::Continue(())
    }
}

/// An `ORDER BY` on a subquery (Grafana orders tables on the search path first): DataFusion
/// takes subqueries in projections, not sorts, so the sort key is computed as a column of the
/// query, which is sorted from outside.
fn sorted_outside(query: &Query) -> Option<Query> {
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
fn exists_as_count(expr: &Expr) -> Option<Expr> {
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
fn in_as_count(expr: &Expr) -> Option<Expr> {
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

/// `x LIKE p ESCAPE '/'` → `x LIKE like_escape(p, '/')`: DataFusion escapes with `\` only.
fn like_escape(expr: &Expr) -> Option<Expr> {
    let mut expr = expr.clone();
    let (Expr::Like {
        pattern,
        escape_char,
        ..
    }
    | Expr::ILike {
        pattern,
        escape_char,
        ..
    }) = &mut expr
    else {
        return None;
    };
    let escape = escape_char.as_ref()?.to_string();
    if escape == "'\\'" {
        return None;
    }
    let converted = parse_expr(&format!("like_escape({pattern}, {escape})"))?;
    **pattern = converted;
    *escape_char = None;
    Some(expr)
}

/// `generate_subscripts(a, d)` → `unnest(range(1, array_length(a, d) + 1))`: the same rows,
/// and zipped with an `unnest(a)` beside it as Postgres zips set-returning functions.
fn generate_subscripts(expr: &Expr) -> Option<Expr> {
    let Expr::Function(function) = expr else {
        return None;
    };
    let name = function.name.to_string().to_ascii_lowercase();
    if name.trim_start_matches("pg_catalog.") != "generate_subscripts" {
        return None;
    }
    let args = function.args.to_string();
    let args = args.strip_prefix('(')?.strip_suffix(')')?;
    parse_expr(&format!(
        "unnest(range(1, CAST(array_length({args}) AS BIGINT) + 1))"
    ))
}

/// `information_schema._pg_expandarray(a)` (pgjdbc's primary keys), rows of `(x, n)`: each
/// element and its subscript, as a struct per element.
fn expand_array(expr: &Expr) -> Option<Expr> {
    let Expr::Function(function) = expr else {
        return None;
    };
    let name = function.name.to_string().to_ascii_lowercase();
    if name.trim_start_matches("information_schema.") != "_pg_expandarray" {
        return None;
    }
    let args = function.args.to_string();
    let array = args.strip_prefix('(')?.strip_suffix(')')?;
    parse_expr(&format!(
        "named_struct('x', unnest({array}), 'n', \
         unnest(range(1, CAST(array_length({array}, 1) AS BIGINT) + 1)))"
    ))
}

/// `(composite).field` → `get_field(composite, 'field')`, which DataFusion plans.
fn field_of_composite(expr: &Expr) -> Option<Expr> {
    let Expr::CompoundFieldAccess { root, access_chain } = expr else {
        return None;
    };
    if !matches!(root.as_ref(), Expr::Nested(_)) {
        return None;
    }
    let mut result = root.to_string();
    for access in access_chain {
        let AccessExpr::Dot(Expr::Identifier(field)) = access else {
            return None;
        };
        result = format!(
            "get_field({result}, '{}')",
            field.value.to_ascii_lowercase()
        );
    }
    parse_expr(&result)
}

/// `ix.indkey::varchar`: an `int2vector` prints as its numbers separated by spaces (SQLAlchemy
/// splits it), where an Arrow list would print `[1, 2]`.
fn int2vector_text(expr: &Expr) -> Option<Expr> {
    let Expr::Cast {
        kind: CastKind::DoubleColon | CastKind::Cast,
        expr: inner,
        data_type,
        ..
    } = expr
    else {
        return None;
    };
    if !matches!(
        data_type,
        DataType::Varchar(_) | DataType::Text | DataType::CharacterVarying(_)
    ) {
        return None;
    }
    let column = match inner.as_ref() {
        Expr::Identifier(ident) => &ident.value,
        Expr::CompoundIdentifier(idents) => &idents.last()?.value,
        _ => return None,
    };
    if !matches!(
        column.as_str(),
        "indkey" | "indoption" | "indclass" | "indcollation"
    ) {
        return None;
    }
    parse_expr(&format!("array_to_string({inner}, ' ')"))
}

/// `to_timestamp(text, 'YYYY-MM-DD HH24:MI:SS.US')`: DataFusion reads chrono's format
/// (`%Y-%m-%d %H:%M:%S.%6f`), so a constant Postgres format is translated.
fn to_timestamp_format(expr: &Expr) -> Option<Expr> {
    let Expr::Function(function) = expr else {
        return None;
    };
    let name = function.name.to_string().to_ascii_lowercase();
    if !matches!(
        name.trim_start_matches("pg_catalog."),
        "to_timestamp" | "to_date"
    ) {
        return None;
    }
    let args = function.args.to_string();
    let args = args.strip_prefix('(')?.strip_suffix(')')?;
    let (value, format) = args.rsplit_once(", '")?;
    let format = format.strip_suffix('\'')?;
    if format.contains('%') || format.contains('\'') {
        return None;
    }
    let chrono = chrono_format(format);
    parse_expr(&format!("{name}({value}, '{chrono}')"))
}

/// Postgres' date/time template patterns as chrono's.
fn chrono_format(pattern: &str) -> String {
    const PATTERNS: [(&str, &str); 22] = [
        ("YYYY", "%Y"),
        ("HH24", "%H"),
        ("HH12", "%I"),
        ("Month", "%B"),
        ("MONTH", "%B"),
        ("Mon", "%b"),
        ("MON", "%b"),
        ("Day", "%A"),
        ("DAY", "%A"),
        ("Dy", "%a"),
        ("DY", "%a"),
        ("YY", "%y"),
        ("MM", "%m"),
        ("DD", "%d"),
        ("HH", "%I"),
        ("MI", "%M"),
        ("SS", "%S"),
        ("US", "%6f"),
        ("MS", "%3f"),
        ("AM", "%p"),
        ("PM", "%p"),
        ("TZ", "%Z"),
    ];
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut rest = pattern;
    'outer: while !rest.is_empty() {
        for (postgres, chrono) in PATTERNS {
            if let Some(after) = rest.strip_prefix(postgres) {
                out.push_str(chrono);
                rest = after;
                continue 'outer;
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn parse_expr(sql: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .ok()?
        .parse_expr()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str, rule: fn(&mut Statement)) -> String {
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        rule(&mut statement);
        statement.to_string()
    }

    #[test]
    fn correlated_subqueries_in_select_lists_aggregate() {
        let sql = "SELECT a.attname, (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d \
                   WHERE d.adrelid = a.attrelid AND a.atthasdef) FROM pg_attribute a";
        assert_eq!(
            rewritten(sql, |s| {
                assert!(before_compat(s));
            }),
            "SELECT a.attname, CASE WHEN a.atthasdef THEN ((SELECT max(pg_get_expr(d.adbin, \
             d.adrelid)) FROM pg_attrdef d WHERE d.adrelid = a.attrelid)) END FROM pg_attribute a"
        );
        let unequal = "SELECT (SELECT c.collname FROM pg_collation c WHERE c.oid = a.attcollation \
                       AND a.attcollation <> c.typcollation) FROM pg_attribute a";
        let through_function = "SELECT (SELECT s.seqstart FROM pg_sequence s \
                       WHERE s.seqrelid = f(a.attrelid)) FROM pg_attribute a";
        assert_eq!(
            rewritten(through_function, |s| {
                before_compat(s);
            }),
            "SELECT NULL FROM pg_attribute a"
        );
        assert_eq!(
            rewritten(unequal, |s| {
                before_compat(s);
            }),
            "SELECT NULL FROM pg_attribute a"
        );
    }

    #[test]
    fn grafanas_search_path_schemas() {
        let sql = "SELECT 1 FROM information_schema.tables WHERE quote_ident(table_schema) IN (\
                   SELECT CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END \
                   FROM generate_series(array_lower(string_to_array(current_setting('search_path'),','),1), \
                   array_upper(string_to_array(current_setting('search_path'),','),1)) as i, \
                   string_to_array(current_setting('search_path'),',') s)";
        let rewritten = rewritten(sql, |s| {
            assert!(before_compat(s));
        });
        assert!(
            rewritten.ends_with(
                "IN (SELECT CASE WHEN TRIM(s) = '\"$user\"' THEN current_user ELSE TRIM(s) END \
                 FROM UNNEST(string_to_array(current_setting('search_path'), ',')) AS t (s))"
            ),
            "{rewritten}"
        );
    }

    #[test]
    fn expanded_arrays_are_structs_of_element_and_subscript() {
        assert_eq!(
            rewritten(
                "SELECT (information_schema._pg_expandarray(i.indkey)).n, \
                 information_schema._pg_expandarray(i.indkey) AS keys FROM pg_index i",
                after_compat
            ),
            "SELECT get_field((named_struct('x', unnest(i.indkey), 'n', unnest(range(1, \
             CAST(array_length(i.indkey, 1) AS BIGINT) + 1)))), 'n'), named_struct('x', \
             unnest(i.indkey), 'n', unnest(range(1, CAST(array_length(i.indkey, 1) AS BIGINT) + 1))) \
             AS keys FROM pg_index i"
        );
    }

    #[test]
    fn in_subquery_as_a_value_counts() {
        assert_eq!(
            rewritten(
                "SELECT CASE WHEN s IN (SELECT n FROM p) THEN 1 END, s FROM x WHERE s IN (SELECT n FROM p)",
                after_compat
            ),
            "SELECT CASE WHEN ((SELECT count(*) FROM (SELECT n AS __weir_value FROM p) AS __weir_in \
             WHERE __weir_in.__weir_value = s) > 0) THEN 1 END, s FROM x WHERE s IN (SELECT n FROM p)"
        );
    }

    #[test]
    fn sorting_on_a_subquery_sorts_from_outside() {
        assert_eq!(
            rewritten(
                "SELECT t AS \"table\" FROM x WHERE t <> '' \
                 ORDER BY CASE WHEN s IN (SELECT 'public') THEN 0 ELSE 1 END, 1 DESC LIMIT 3",
                after_compat
            ),
            "SELECT \"table\" FROM (SELECT t AS \"table\", CASE WHEN ((SELECT count(*) FROM \
             (SELECT 'public' AS __weir_value) AS __weir_in WHERE __weir_in.__weir_value = s) > 0) \
             THEN 0 ELSE 1 END AS __weir_order_0 FROM x WHERE t <> '') AS __weir_sorted \
             ORDER BY __weir_order_0, 1 DESC LIMIT 3"
        );
    }

    #[test]
    fn later_rewrites() {
        assert_eq!(
            rewritten(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg/_' || '%' ESCAPE '/'",
                after_compat
            ),
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE like_escape('pg/_' || '%', '/')"
        );
        assert_eq!(
            rewritten(
                "SELECT unnest(indkey), generate_subscripts(indkey, 1) FROM pg_index",
                after_compat
            ),
            "SELECT unnest(indkey), unnest(range(1, CAST(array_length(indkey, 1) AS BIGINT) + 1)) \
             FROM pg_index"
        );
        assert_eq!(
            rewritten(
                "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = i.indexrelid) FROM pg_index i",
                after_compat
            ),
            "SELECT ((SELECT count(*) FROM pg_constraint WHERE conindid = i.indexrelid) > 0) FROM pg_index i"
        );
        assert_eq!(
            rewritten(
                "SELECT ix.indkey::varchar, relname::varchar FROM pg_index ix",
                after_compat
            ),
            "SELECT array_to_string(ix.indkey, ' '), relname::VARCHAR FROM pg_index ix"
        );
        assert_eq!(
            rewritten(
                "SELECT TO_TIMESTAMP('2024-03-01 09:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')",
                after_compat
            ),
            "SELECT to_timestamp('2024-03-01 09:00:00.000000', '%Y-%m-%d %H:%M:%S.%6f')"
        );
    }
}
