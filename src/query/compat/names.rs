//! Result column names as Postgres gives them. An unaliased expression is named by what it is:
//! a function call by the function (`count`), a cast of a column by the column, a cast of
//! anything else by the type (`int4`), a `CASE` `case`, anything else `?column?`. DataFusion
//! names it by its whole text (`count(*)`, `Int64(1)`), which clients show as headers and
//! Grafana as series names.
//!
//! Only a query's own select list is named (a subquery's names are referenced by the query
//! around it), and only where the name is not already taken: DataFusion wants distinct names,
//! where Postgres allows two `?column?`.

use datafusion::sql::sqlparser::ast::{
    DataType, Expr, Ident, SelectItem, SetExpr, Statement, TimezoneInfo,
};

use super::rules::column_name;

/// Names the unaliased expressions of a query's select list.
pub(super) fn name_columns(statement: &mut Statement) {
    let Statement::Query(query) = statement else {
        return;
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let mut taken: Vec<String> = select.projection.iter().filter_map(output_name).collect();
    for item in &mut select.projection {
        let SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        if column_name(expr).is_some() {
            continue;
        }
        let name = postgres_name(expr);
        if taken.contains(&name) {
            continue;
        }
        taken.push(name.clone());
        *item = SelectItem::ExprWithAlias {
            expr: expr.clone(),
            alias: Ident::with_quote('"', name),
        };
    }
}

/// The name an item already has: its alias, or the column it is.
fn output_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
        SelectItem::UnnamedExpr(expr) => column_name(expr).map(str::to_string),
        _ => None,
    }
}

fn postgres_name(expr: &Expr) -> String {
    match expr {
        Expr::Function(function) => match function
            .name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map(|ident| ident.value.to_ascii_lowercase())
        {
            // What casts became (`compat/expressions.rs`): named as the casts are.
            Some(name) if name.starts_with("weir_") => match cast_operand_column(function) {
                Some(column) => column,
                None => name.trim_start_matches("weir_").to_string(),
            },
            Some(name) => name,
            None => "?column?".into(),
        },
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } => column_name(inner)
            .or_else(|| type_name(data_type))
            .unwrap_or("?column?")
            .into(),
        Expr::Nested(inner) => postgres_name(inner),
        Expr::Case { .. } => "case".into(),
        Expr::Exists { .. } => "exists".into(),
        _ => "?column?".into(),
    }
}

/// The column a rewritten cast (`weir_json(col)`) takes, if its operand is one.
fn cast_operand_column(function: &datafusion::sql::sqlparser::ast::Function) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    let FunctionArguments::List(list) = &function.args else {
        return None;
    };
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(operand))] = list.args.as_slice() else {
        return None;
    };
    let operand = match operand {
        Expr::Cast { expr, .. } => expr.as_ref(),
        other => other,
    };
    column_name(operand).map(str::to_string)
}

/// `pg_type.typname` of the common cast targets.
fn type_name(data_type: &DataType) -> Option<&'static str> {
    Some(match data_type {
        DataType::Boolean | DataType::Bool => "bool",
        DataType::SmallInt(_) | DataType::Int2(_) => "int2",
        DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) => "int4",
        DataType::BigInt(_) | DataType::Int8(_) => "int8",
        DataType::Real | DataType::Float4 => "float4",
        DataType::DoublePrecision | DataType::Float8 | DataType::Double(_) => "float8",
        DataType::Numeric(_) | DataType::Decimal(_) => "numeric",
        DataType::Text => "text",
        DataType::Varchar(_) | DataType::CharacterVarying(_) => "varchar",
        DataType::Date => "date",
        DataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => "timestamptz",
        DataType::Timestamp(..) => "timestamp",
        DataType::Interval { .. } => "interval",
        DataType::Bytea => "bytea",
        DataType::JSON => "json",
        DataType::JSONB => "jsonb",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn named(sql: &str) -> String {
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        name_columns(&mut statement);
        statement.to_string()
    }

    #[test]
    fn unaliased_expressions_are_named_as_postgres_names_them() {
        assert_eq!(
            named(
                "SELECT 1, count(*), pg_catalog.upper(kind), kind, ts::date, 2::int, CASE WHEN true THEN 1 END, 3 AS x FROM t"
            ),
            "SELECT 1 AS \"?column?\", count(*) AS \"count\", pg_catalog.upper(kind) AS \"upper\", \
             kind, ts::DATE AS \"ts\", 2::INT AS \"int4\", CASE WHEN true THEN 1 END AS \"case\", 3 AS x FROM t"
        );
        // A name already taken stays DataFusion's.
        assert_eq!(
            named("SELECT count(*), count(x), 1, 2 FROM t"),
            "SELECT count(*) AS \"count\", count(x), 1 AS \"?column?\", 2 FROM t"
        );
        // Subqueries keep their names: the query around them refers to them.
        assert_eq!(
            named("SELECT n FROM (SELECT count(*) FROM t) AS s(n)"),
            "SELECT n FROM (SELECT count(*) FROM t) AS s (n)"
        );
    }
}
