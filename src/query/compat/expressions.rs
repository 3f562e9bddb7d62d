//! Postgres expressions DataFusion spells otherwise: `LIKE ... ESCAPE`, `generate_subscripts`,
//! `int2vector` text, `to_timestamp` templates, `_pg_expandarray`, `(composite).field`.

use datafusion::sql::sqlparser::ast::{
    AccessExpr, CastKind, DataType, Expr, FunctionArguments, GroupByExpr, Ident, LambdaFunction,
    LambdaFunctionParameter, LambdaSyntax, OneOrManyWithParens, SelectItem, SetExpr, TableFactor,
    Value,
};

use super::rules::{column_name, parse_expr};

/// `x LIKE p ESCAPE '/'` → `x LIKE like_escape(p, '/')`: DataFusion escapes with `\` only.
pub(super) fn like_escape(expr: &Expr) -> Option<Expr> {
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
pub(super) fn generate_subscripts(expr: &Expr) -> Option<Expr> {
    let (_, args) = call_of(expr, "pg_catalog", &["generate_subscripts"])?;
    parse_expr(&subscripts(&args))
}

/// The subscripts of dimension `d` of `a`, one row each, for `array_and_dimension` `a, d`.
fn subscripts(array_and_dimension: &str) -> String {
    format!("unnest(range(1, CAST(array_length({array_and_dimension}) AS BIGINT) + 1))")
}

/// The name (without its `schema.`, if it had that one) and the argument text of `expr` when
/// it calls one of `names`.
fn call_of<'a>(expr: &Expr, schema: &str, names: &[&'a str]) -> Option<(&'a str, String)> {
    let Expr::Function(function) = expr else {
        return None;
    };
    let full = function.name.to_string().to_ascii_lowercase();
    let bare = full
        .strip_prefix(schema)
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or(&full);
    let name = names.iter().find(|n| **n == bare)?;
    let args = function.args.to_string();
    Some((name, args.strip_prefix('(')?.strip_suffix(')')?.to_string()))
}

/// The kind, operand and target type of `expr` when it is a cast.
fn cast_of(expr: &Expr) -> Option<(&CastKind, &Expr, &DataType)> {
    match expr {
        Expr::Cast {
            kind,
            expr,
            data_type,
            ..
        } => Some((kind, expr, data_type)),
        _ => None,
    }
}

/// `information_schema._pg_expandarray(a)` (pgjdbc's primary keys), rows of `(x, n)`: each
/// element and its subscript, as a struct per element.
pub(super) fn expand_array(expr: &Expr) -> Option<Expr> {
    let (_, array) = call_of(expr, "information_schema", &["_pg_expandarray"])?;
    let subscripts = subscripts(&format!("{array}, 1"));
    parse_expr(&format!(
        "named_struct('x', unnest({array}), 'n', {subscripts})"
    ))
}

/// `(composite).field` → `get_field(composite, 'field')`, which DataFusion plans.
pub(super) fn field_of_composite(expr: &Expr) -> Option<Expr> {
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
pub(super) fn int2vector_text(expr: &Expr) -> Option<Expr> {
    let (CastKind::DoubleColon | CastKind::Cast, inner, data_type) = cast_of(expr)? else {
        return None;
    };
    if !matches!(
        data_type,
        DataType::Varchar(_) | DataType::Text | DataType::CharacterVarying(_)
    ) {
        return None;
    }
    if !matches!(
        column_name(inner)?,
        "indkey" | "indoption" | "indclass" | "indcollation"
    ) {
        return None;
    }
    parse_expr(&format!("array_to_string({inner}, ' ')"))
}

/// `to_timestamp(text, 'YYYY-MM-DD HH24:MI:SS.US')`: DataFusion reads chrono's format
/// (`%Y-%m-%d %H:%M:%S.%6f`), so a constant Postgres format is translated.
pub(super) fn to_timestamp_format(expr: &Expr) -> Option<Expr> {
    let (name, args) = call_of(expr, "pg_catalog", &["to_timestamp", "to_date"])?;
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

/// `'name'::regclass` → `weir_regclass('name')`, which fails as Postgres does (42P01) for a
/// relation that does not exist, where `datafusion-pg-catalog`'s subquery gives NULL.
pub(super) fn regclass_literal(expr: &Expr) -> Option<Expr> {
    let (_, inner, data_type) = cast_of(expr)?;
    let is_regclass = match data_type {
        DataType::Regclass => true,
        DataType::Custom(name, _) => name
            .to_string()
            .to_ascii_lowercase()
            .trim_start_matches("pg_catalog.")
            .eq("regclass"),
        _ => false,
    };
    if !is_regclass {
        return None;
    }
    let Expr::Value(value) = inner else {
        return None;
    };
    let Value::SingleQuotedString(_) = &value.value else {
        return None;
    };
    parse_expr(&format!("weir_regclass({inner})"))
}

/// `x::json`, `x::jsonb` → `weir_json(x)`, `weir_jsonb(x)`: DataFusion has no JSON type; Weir
/// keeps JSON as text marked as JSON (`functions.rs`).
pub(super) fn json_cast(expr: &Expr) -> Option<Expr> {
    let (_, inner, data_type) = cast_of(expr)?;
    let function = match data_type {
        DataType::JSON => "weir_json",
        DataType::JSONB => "weir_jsonb",
        _ => return None,
    };
    // Through text, which also types a parameter (`$1::json`) for drivers that ask.
    parse_expr(&format!("{function}(CAST({inner} AS TEXT))"))
}

/// `array(SELECT f(x) FROM unnest(a) x)` (psql's `\d+`) → `array_transform(a, x -> f(x))`:
/// DataFusion plans neither `array(subquery)` nor a lateral `unnest` of an outer column.
pub(super) fn array_of_unnest(expr: &Expr) -> Option<Expr> {
    let Expr::Function(function) = expr else {
        return None;
    };
    if !function.name.to_string().eq_ignore_ascii_case("array") {
        return None;
    }
    let FunctionArguments::Subquery(query) = &function.args else {
        return None;
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let plain = select.selection.is_none()
        && select.having.is_none()
        && matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
        && query.order_by.is_none()
        && query.limit_clause.is_none();
    let ([item], [from]) = (select.projection.as_slice(), select.from.as_slice()) else {
        return None;
    };
    if !plain || !from.joins.is_empty() {
        return None;
    }
    let (SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }) = item
    else {
        return None;
    };
    let (array, alias) = match &from.relation {
        TableFactor::Table {
            name,
            args: Some(args),
            alias: Some(alias),
            ..
        } if name
            .to_string()
            .to_ascii_lowercase()
            .trim_start_matches("pg_catalog.")
            == "unnest"
            && args.args.len() == 1 =>
        {
            (parse_expr(&args.args[0].to_string())?, alias.name.clone())
        }
        TableFactor::UNNEST {
            array_exprs,
            alias: Some(alias),
            ..
        } if array_exprs.len() == 1 => (array_exprs[0].clone(), alias.name.clone()),
        _ => return None,
    };
    let lambda = Expr::Lambda(LambdaFunction {
        params: OneOrManyWithParens::One(LambdaFunctionParameter {
            name: Ident::new(alias.value),
            data_type: None,
        }),
        body: Box::new(value.clone()),
        syntax: LambdaSyntax::Arrow,
    });
    let mut transform = parse_expr("array_transform(NULL, NULL)")?;
    let Expr::Function(f) = &mut transform else {
        return None;
    };
    let FunctionArguments::List(list) = &mut f.args else {
        return None;
    };
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr};
    list.args = vec![
        FunctionArg::Unnamed(FunctionArgExpr::Expr(array)),
        FunctionArg::Unnamed(FunctionArgExpr::Expr(lambda)),
    ];
    Some(transform)
}
