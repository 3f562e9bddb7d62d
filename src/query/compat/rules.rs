//! Weir's own rewrites of what clients send about the catalog, for the Postgres forms
//! DataFusion cannot plan and `datafusion-pg-catalog` does not rewrite (or rewrites away).
//!
//! Scalar subqueries in a select list run before `datafusion-pg-catalog`'s rules, which
//! replace every correlated one with NULL (psql's and SQLAlchemy's column defaults among them).
//! The rest run after.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Query, SelectItem, SetExpr, Statement, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::expressions::{
    array_of_unnest, expand_array, field_of_composite, generate_subscripts, int2vector_text,
    json_cast, like_escape, regclass_literal, to_timestamp_format,
};
use super::subqueries::{
    SearchPathSchemas, exists_as_count, in_as_count, scalar_subqueries, sorted_outside,
};

/// Weir's rewrites that must precede `datafusion-pg-catalog`'s: Grafana's search path schema
/// list, `'name'::regclass`, and the scalar subqueries of select lists. Returns whether anything changed.
pub fn before_compat(statement: &mut Statement) -> bool {
    let mut rewrite = SearchPathSchemas { changed: false };
    let _ = statement.visit(&mut rewrite);
    let mut regclass = RegclassLiterals { changed: false };
    let _ = statement.visit(&mut regclass);
    rewrite.changed | regclass.changed | scalar_subqueries(statement)
}

/// `'name'::regclass`, before `datafusion-pg-catalog` turns it into a subquery.
struct RegclassLiterals {
    changed: bool,
}

impl VisitorMut for RegclassLiterals {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Some(rewritten) = regclass_literal(expr) {
            *expr = rewritten;
            self.changed = true;
        }
        ControlFlow::Continue(())
    }
}

/// Calls `f` on every expression of `expr`, not descending into the subqueries it replaces.
pub(super) fn visit_exprs_outside_subqueries(
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

/// The rewrites that run after `datafusion-pg-catalog`'s.
pub fn after_compat(statement: &mut Statement) {
    rewrite_expressions(statement);
    super::names::name_columns(statement);
}

fn rewrite_expressions(statement: &mut Statement) {
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
            .or_else(|| json_cast(expr))
            .or_else(|| array_of_unnest(expr))
        {
            *expr = rewritten;
        }
        ControlFlow::Continue(())
    }
}

/// The column `expr` names (`c`, `t.c`), unqualified.
pub(super) fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Identifier(ident) => Some(&ident.value),
        Expr::CompoundIdentifier(idents) => idents.last().map(|i| i.value.as_str()),
        _ => None,
    }
}

pub(super) fn parse_expr(sql: &str) -> Option<Expr> {
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
                rewrite_expressions
            ),
            "SELECT get_field((named_struct('x', unnest(i.indkey), 'n', unnest(range(1, \
             CAST(array_length(i.indkey, 1) AS BIGINT) + 1)))), 'n'), named_struct('x', \
             unnest(i.indkey), 'n', unnest(range(1, CAST(array_length(i.indkey, 1) AS BIGINT) + 1))) \
             AS keys FROM pg_index i"
        );
    }

    #[test]
    fn an_array_of_an_unnest_is_a_transform() {
        assert_eq!(
            rewritten(
                "SELECT array_to_string(c.reloptions || array(select 'toast.' || x \
                 from pg_catalog.unnest(tc.reloptions) x), ', ') FROM pg_class c",
                rewrite_expressions
            ),
            "SELECT array_to_string(c.reloptions || array_transform(tc.reloptions, \
             x -> 'toast.' || x), ', ') FROM pg_class c"
        );
    }

    #[test]
    fn in_subquery_as_a_value_counts() {
        assert_eq!(
            rewritten(
                "SELECT CASE WHEN s IN (SELECT n FROM p) THEN 1 END, s FROM x WHERE s IN (SELECT n FROM p)",
                rewrite_expressions
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
                rewrite_expressions
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
                rewrite_expressions
            ),
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE like_escape('pg/_' || '%', '/')"
        );
        assert_eq!(
            rewritten(
                "SELECT unnest(indkey), generate_subscripts(indkey, 1) FROM pg_index",
                rewrite_expressions
            ),
            "SELECT unnest(indkey), unnest(range(1, CAST(array_length(indkey, 1) AS BIGINT) + 1)) \
             FROM pg_index"
        );
        assert_eq!(
            rewritten(
                "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = i.indexrelid) FROM pg_index i",
                rewrite_expressions
            ),
            "SELECT ((SELECT count(*) FROM pg_constraint WHERE conindid = i.indexrelid) > 0) FROM pg_index i"
        );
        assert_eq!(
            rewritten(
                "SELECT ix.indkey::varchar, relname::varchar FROM pg_index ix",
                rewrite_expressions
            ),
            "SELECT array_to_string(ix.indkey, ' '), relname::VARCHAR FROM pg_index ix"
        );
        assert_eq!(
            rewritten(
                "SELECT TO_TIMESTAMP('2024-03-01 09:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')",
                rewrite_expressions
            ),
            "SELECT to_timestamp('2024-03-01 09:00:00.000000', '%Y-%m-%d %H:%M:%S.%6f')"
        );
    }
}
