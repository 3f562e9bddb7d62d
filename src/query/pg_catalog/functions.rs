//! The catalog functions clients call to print what the catalog tables hold:
//! `pg_get_indexdef`, `pg_get_constraintdef`, `pg_get_viewdef`, `pg_get_expr`, and the
//! visibility and description functions. They answer from Weir's catalog, by OID, so they agree
//! with `pg_class` and `pg_index`.

use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{Array, AsArray, BooleanArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarUDF, Signature, SimpleScalarUDF, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;
use weir_catalog::Catalog;

use super::oids::{self, UserOid};
use super::snapshot::{
    CatalogSource, NAMESPACES, PG_CATALOG, PUBLIC, Relation, Snapshot, user_relations,
};
use crate::functions::scalar_if_scalar;

/// Registers the catalog functions, replacing `datafusion-pg-catalog`'s placeholders.
pub fn register(ctx: &SessionContext, catalog: &Arc<RwLock<Catalog>>, source: &Arc<CatalogSource>) {
    ctx.register_udf(regclass(source.clone()));
    ctx.register_udf(encoding_to_char());
    let described = [
        (
            "pg_get_indexdef",
            &[&[][..], &[DataType::Int32, DataType::Boolean]][..],
            index_def as Describe,
        ),
        (
            "pg_get_constraintdef",
            &[&[][..], &[DataType::Boolean]],
            constraint_def,
        ),
        ("pg_get_viewdef", &[&[][..], &[DataType::Boolean]], view_def),
    ];
    for (name, extra_arities, describe) in described {
        ctx.register_udf(by_oid(name, extra_arities, catalog.clone(), describe));
    }
    // Weir has no comments, sequences or user-defined functions: these describe nothing.
    for (name, arity) in [
        ("obj_description", &[&[][..], &[DataType::Utf8]][..]),
        ("col_description", &[&[DataType::Int32][..]]),
        ("shobj_description", &[&[DataType::Utf8][..]]),
        ("pg_get_function_result", &[&[][..]]),
        ("pg_get_function_arguments", &[&[][..]]),
        ("pg_get_function_identity_arguments", &[&[][..]]),
    ] {
        ctx.register_udf(by_oid(name, arity, catalog.clone(), |_, _, _| None));
    }
    ctx.register_udf(pg_get_expr());
    ctx.register_udf(pg_get_serial_sequence());
    // Every type and function is in `pg_catalog`, which is always on the search path.
    ctx.register_udf(oid_predicate("pg_type_is_visible", |_| true));
    ctx.register_udf(oid_predicate("pg_function_is_visible", |_| true));
    ctx.register_udf(oid_predicate("pg_collation_is_visible", |_| true));
    ctx.register_udf(oid_predicate("pg_table_is_visible", oids::on_search_path));
    ctx.register_udf(like_escape());
    ctx.register_udf(json_build_object());
}

/// What a function says of the relation (or index, or constraint) an OID names, given its
/// second argument when that is a number (`pg_get_indexdef`'s column).
type Describe = fn(&Catalog, UserOid, Option<i64>) -> Option<String>;

fn relation(catalog: &Catalog, oid: UserOid) -> Option<Relation> {
    let id = match oid {
        UserOid::Relation(id)
        | UserOid::PrimaryKey(id)
        | UserOid::PrimaryKeyIndex(id)
        | UserOid::Default(id, _) => id,
    };
    let object = catalog.objects().find(|o| o.id() == id)?;
    user_relations(object).into_iter().next()
}

fn quoted_columns(r: &Relation) -> String {
    r.column_names(&r.primary_key)
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id)`, or with a column number
/// other than 0, that key column.
fn index_def(catalog: &Catalog, oid: UserOid, column: Option<i64>) -> Option<String> {
    let UserOid::PrimaryKeyIndex(_) = oid else {
        return None;
    };
    let r = relation(catalog, oid)?;
    if let Some(n) = column.filter(|n| *n != 0) {
        let attnum = *r
            .primary_key
            .get(usize::try_from(n).ok()?.checked_sub(1)?)?;
        return r.column_names(&[attnum]).first().map(|c| quote_ident(c));
    }
    Some(format!(
        "CREATE UNIQUE INDEX {} ON {}.{} USING btree ({})",
        quote_ident(&r.primary_key_name()),
        r.namespace.name,
        quote_ident(&r.name),
        quoted_columns(&r)
    ))
}

/// `PRIMARY KEY (id)`
fn constraint_def(catalog: &Catalog, oid: UserOid, _: Option<i64>) -> Option<String> {
    let UserOid::PrimaryKey(_) = oid else {
        return None;
    };
    let r = relation(catalog, oid)?;
    Some(format!("PRIMARY KEY ({})", quoted_columns(&r)))
}

fn view_def(catalog: &Catalog, oid: UserOid, _: Option<i64>) -> Option<String> {
    let UserOid::Relation(_) = oid else {
        return None;
    };
    relation(catalog, oid)?.definition
}

/// An identifier as Postgres prints it: quoted unless it is lower case letters, digits and
/// underscores, not starting with a digit.
fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A function of an OID (and arguments that do not change its answer) returning text.
fn by_oid(
    name: &str,
    extra_arities: &[&[DataType]],
    catalog: Arc<RwLock<Catalog>>,
    describe: Describe,
) -> ScalarUDF {
    // Integer literals are `Int64` to DataFusion and OID columns `Int32`: take either.
    let mut signatures = Vec::new();
    for extra in extra_arities {
        let mut variants = vec![vec![DataType::Int32], vec![DataType::Int64]];
        for arg in extra.iter() {
            variants = variants
                .into_iter()
                .flat_map(|prefix| {
                    let alternatives = match arg {
                        DataType::Int32 => vec![DataType::Int32, DataType::Int64],
                        other => vec![other.clone()],
                    };
                    alternatives.into_iter().map(move |a| {
                        let mut v = prefix.clone();
                        v.push(a);
                        v
                    })
                })
                .collect();
        }
        signatures.extend(variants.into_iter().map(TypeSignature::Exact));
    }
    let fun = move |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let oids = cast(&arrays[0], &DataType::Int32)?;
        let numbers = match arrays.get(1) {
            Some(a) if a.data_type().is_integer() => Some(cast(a, &DataType::Int64)?),
            _ => None,
        };
        let catalog = catalog.read().unwrap_or_else(|e| e.into_inner());
        let texts: StringArray = oids
            .as_primitive::<Int32Type>()
            .iter()
            .enumerate()
            .map(|(row, oid)| {
                let number = numbers
                    .as_ref()
                    .map(|n| n.as_primitive::<datafusion::arrow::datatypes::Int64Type>())
                    .filter(|n| n.is_valid(row))
                    .map(|n| n.value(row));
                describe(&catalog, UserOid::decode(oid?)?, number)
            })
            .collect();
        Ok(scalar_if_scalar(args, Arc::new(texts)))
    };
    ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        name,
        Signature::one_of(signatures, Volatility::Stable),
        DataType::Utf8,
        Arc::new(fun),
    ))
}

/// `weir_regclass('name')`, what `'name'::regclass` becomes: the relation's OID, found as
/// Postgres finds it (`schema.name`, or `pg_catalog` then `public`), or Postgres' error when
/// there is none (42P01). A number is taken as the OID itself.
fn regclass(source: Arc<CatalogSource>) -> ScalarUDF {
    let fun = move |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let names = ColumnarValue::values_to_arrays(args)?;
        let snapshot = source.snapshot()?;
        let oids = names[0]
            .as_string::<i32>()
            .iter()
            .map(|name| name.map(|n| resolve_relation(&snapshot, n)).transpose())
            .collect::<Result<datafusion::arrow::array::Int32Array>>()?;
        Ok(scalar_if_scalar(args, Arc::new(oids)))
    };
    ScalarUDF::from(SimpleScalarUDF::new(
        "weir_regclass",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(fun),
    ))
}

fn resolve_relation(snapshot: &Snapshot, name: &str) -> Result<i32> {
    if let Ok(oid) = name.trim().parse::<i32>() {
        return Ok(oid);
    }
    let parts = identifier_parts(name);
    let (schemas, relation) = match parts.as_slice() {
        [relation] => (vec![PG_CATALOG.name, PUBLIC.name], relation.as_str()),
        [schema, relation] => {
            let known = NAMESPACES.iter().find(|n| n.name == schema.as_str());
            (
                known.map(|n| vec![n.name]).unwrap_or_default(),
                relation.as_str(),
            )
        }
        _ => (vec![], name),
    };
    schemas
        .iter()
        .find_map(|schema| {
            snapshot
                .relations
                .iter()
                .find(|r| r.namespace.name == *schema && r.name == relation)
        })
        .map(|r| r.oid)
        // Read by the error mapping as a missing relation: 42P01.
        .ok_or_else(|| DataFusionError::Plan(format!("table '{name}' not found")))
}

/// `a.b`, `"A".b`: the parts of a qualified name, unquoted parts lower-cased as Postgres reads
/// them.
fn identifier_parts(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = name.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut current)),
            c if quoted => current.push(c),
            c => current.push(c.to_ascii_lowercase()),
        }
    }
    parts.push(current);
    parts
}

/// `pg_get_expr(adbin, relid)`: `pg_attrdef.adbin` holds the default's SQL itself.
fn pg_get_expr() -> ScalarUDF {
    let mut signatures = Vec::new();
    for oid in [DataType::Int32, DataType::Int64] {
        signatures.push(TypeSignature::Exact(vec![DataType::Utf8, oid.clone()]));
        signatures.push(TypeSignature::Exact(vec![
            DataType::Utf8,
            oid,
            DataType::Boolean,
        ]));
    }
    ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        "pg_get_expr",
        Signature::one_of(signatures, Volatility::Stable),
        DataType::Utf8,
        Arc::new(|args: &[ColumnarValue]| Ok(args[0].clone())),
    ))
}

/// `pg_get_serial_sequence(table, column)`: Weir has no sequences.
fn pg_get_serial_sequence() -> ScalarUDF {
    ScalarUDF::from(SimpleScalarUDF::new(
        "pg_get_serial_sequence",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let nulls = datafusion::arrow::array::new_null_array(&DataType::Utf8, arrays[0].len());
            Ok(scalar_if_scalar(args, nulls))
        }),
    ))
}

fn oid_predicate(name: &str, predicate: fn(i32) -> bool) -> ScalarUDF {
    ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        name,
        Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Int32]),
                TypeSignature::Exact(vec![DataType::Int64]),
            ],
            Volatility::Stable,
        ),
        DataType::Boolean,
        Arc::new(move |args: &[ColumnarValue]| {
            let oids = ColumnarValue::values_to_arrays(args)?;
            let oids = cast(&oids[0], &DataType::Int32)?;
            let answers: BooleanArray = oids
                .as_primitive::<Int32Type>()
                .iter()
                .map(|oid| oid.map(predicate))
                .collect();
            Ok(scalar_if_scalar(args, Arc::new(answers)))
        }),
    ))
}

/// `like_escape(pattern, escape)`: the pattern rewritten to escape with `\`, the only escape
/// DataFusion's `LIKE` knows (`x LIKE p ESCAPE '/'` is rewritten to use it).
fn like_escape() -> ScalarUDF {
    ScalarUDF::from(SimpleScalarUDF::new(
        "like_escape",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let (patterns, escapes) = (arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>());
            let converted: StringArray = patterns
                .iter()
                .zip(escapes.iter())
                .map(|(pattern, escape)| {
                    let escape = escape?.chars().next();
                    Some(backslash_escaped(pattern?, escape))
                })
                .collect();
            Ok(scalar_if_scalar(args, Arc::new(converted)))
        }),
    ))
}

fn backslash_escaped(pattern: &str, escape: Option<char>) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            if let Some(next) = chars.next() {
                out.push('\\');
                out.push(next);
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

/// `json_build_object(key, value, ...)`, as JSON text. SQLAlchemy's inspector builds identity
/// and collation details with it.
fn json_build_object() -> ScalarUDF {
    ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        "json_build_object",
        Signature::variadic_any(Volatility::Stable),
        DataType::Utf8,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let rows = arrays.first().map_or(1, |a| a.len());
            let mut objects = Vec::with_capacity(rows);
            for row in 0..rows {
                let mut object = serde_json::Map::new();
                for pair in arrays.chunks(2) {
                    let key = ScalarValue::try_from_array(&pair[0], row)?.to_string();
                    let value = match pair.get(1) {
                        Some(array) => json_value(&ScalarValue::try_from_array(array, row)?),
                        None => serde_json::Value::Null,
                    };
                    object.insert(key, value);
                }
                objects.push(Some(serde_json::Value::Object(object).to_string()));
            }
            Ok(scalar_if_scalar(args, Arc::new(StringArray::from(objects))))
        }),
    ))
}

fn json_value(value: &ScalarValue) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        v if v.is_null() => Json::Null,
        ScalarValue::Boolean(Some(b)) => Json::Bool(*b),
        ScalarValue::Int16(Some(n)) => Json::from(*n),
        ScalarValue::Int32(Some(n)) => Json::from(*n),
        ScalarValue::Int64(Some(n)) => Json::from(*n),
        ScalarValue::Float64(Some(n)) => Json::from(*n),
        other => Json::String(other.to_string()),
    }
}

/// `pg_encoding_to_char(n)`: Postgres' name of an encoding number (psql's `\l`). Weir's one
/// encoding is UTF8, number 6; `datafusion-pg-catalog`'s says `UTF-8`, which Postgres never
/// prints.
fn encoding_to_char() -> ScalarUDF {
    datafusion::logical_expr::create_udf(
        "pg_encoding_to_char",
        vec![DataType::Int32],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let names: StringArray = arrays[0]
                .as_primitive::<Int32Type>()
                .iter()
                .map(|n| match n {
                    Some(6) => Some("UTF8"),
                    Some(_) => Some(""),
                    None => None,
                })
                .collect();
            Ok(scalar_if_scalar(args, Arc::new(names)))
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_are_reescaped_with_backslashes() {
        assert_eq!(backslash_escaped("pg/_%", Some('/')), "pg\\_%");
        assert_eq!(backslash_escaped("a\\b//", Some('/')), "a\\\\b\\/");
        assert_eq!(backslash_escaped("x_", None), "x_");
    }

    #[test]
    fn qualified_names_split_as_postgres_reads_them() {
        assert_eq!(identifier_parts("Public.Users"), ["public", "users"]);
        assert_eq!(identifier_parts("\"My \"\"T\"\"\".x"), ["My \"T\"", "x"]);
        assert_eq!(identifier_parts("t"), ["t"]);
    }

    #[test]
    fn identifiers_are_quoted_as_postgres_prints_them() {
        assert_eq!(quote_ident("user_id"), "user_id");
        assert_eq!(quote_ident("UserId"), "\"UserId\"");
        assert_eq!(quote_ident("1st"), "\"1st\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
