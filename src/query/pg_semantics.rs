//! Where Postgres and DataFusion read the same SQL differently, Weir follows Postgres. Each
//! difference is one analyzer rewrite here, run after DataFusion's type coercion:
//!
//! - A string literal cast to `bytea` is read in Postgres' bytea input format (`'\x0102'` is
//!   two bytes), not as its UTF-8 bytes.
//! - A string literal cast to a date, time or timestamp type is read as Postgres reads date
//!   and time input (`datetime_input.rs`): `timestamp '2020-04-15 12:02'`, `'January 8,
//!   1999'::date`, `'04:05 PM'::time`, zones by name.
//! - `VALUES` rows are nullable whatever the target table says, so inserting a null into a
//!   `NOT NULL` column reaches the table's own check, which reports 23502 naming the column,
//!   instead of failing inside Arrow with a message about `column2`.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Cast, Expr, LogicalPlan, Values};
use datafusion::optimizer::AnalyzerRule;

/// The analyzer rule applying Postgres semantics (see the module docs).
#[derive(Debug, Default)]
pub struct PostgresSemantics;

impl AnalyzerRule for PostgresSemantics {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let plan = match plan {
                LogicalPlan::Values(values) => LogicalPlan::Values(nullable_values(values)?),
                other => other.recompute_schema()?,
            };
            // A rewritten literal keeps its column's name (`date '...'` is still `date`).
            let names = NamePreserver::new(&plan);
            let plan = plan
                .map_expressions(|expr| {
                    let name = names.save(&expr);
                    Ok(expr
                        .transform_up(|e| bytea_literal(e)?.transform_data(datetime_literal))?
                        .update_data(|e| name.restore(e)))
                })?
                .data;
            Ok(Transformed::yes(plan))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "weir_postgres_semantics"
    }
}

fn nullable_values(values: Values) -> Result<Values> {
    let fields: Vec<_> = values
        .schema
        .iter()
        .map(|(qualifier, field)| {
            (
                qualifier.cloned(),
                Arc::new(Field::clone(field).with_nullable(true)),
            )
        })
        .collect();
    let schema = DFSchema::new_with_metadata(fields, values.schema.metadata().clone())?;
    Ok(Values {
        schema: Arc::new(schema),
        values: values.values,
    })
}

/// The text and target type of `expr` if it casts a string literal.
fn text_cast(expr: &Expr) -> Option<(&str, &DataType)> {
    let Expr::Cast(Cast { expr: inner, field }) = expr else {
        return None;
    };
    match inner.as_ref() {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Some((s, field.data_type())),
        _ => None,
    }
}

/// A literal's input refused, as Postgres' message.
fn input_error(message: String) -> DataFusionError {
    DataFusionError::ArrowError(Box::new(ArrowError::ParseError(message)), None)
}

fn bytea_literal(expr: Expr) -> Result<Transformed<Expr>> {
    let Some((text, ty)) = text_cast(&expr) else {
        return Ok(Transformed::no(expr));
    };
    if !matches!(
        ty,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    ) {
        return Ok(Transformed::no(expr));
    }
    let bytes = parse_bytea(text).map_err(input_error)?;
    let value = ScalarValue::Binary(Some(bytes)).cast_to(ty)?;
    Ok(Transformed::yes(Expr::Literal(value, None)))
}

fn datetime_literal(expr: Expr) -> Result<Transformed<Expr>> {
    use super::datetime_input::{Target, Value, parse};
    let Some((text, ty)) = text_cast(&expr) else {
        return Ok(Transformed::no(expr));
    };
    let target = match ty {
        DataType::Date32 | DataType::Date64 => Target::Date,
        DataType::Time32(_) | DataType::Time64(_) => Target::Time,
        DataType::Timestamp(_, None) => Target::Timestamp,
        DataType::Timestamp(_, Some(_)) => Target::TimestampTz,
        _ => return Ok(Transformed::no(expr)),
    };
    let value = match parse(text, target).map_err(input_error)? {
        Value::Date(days) => ScalarValue::Date32(Some(days)),
        Value::Time(micros) => ScalarValue::Time64Microsecond(Some(micros)),
        Value::Timestamp(micros) => {
            let zone = match ty {
                DataType::Timestamp(_, zone) => zone.clone(),
                _ => None,
            };
            ScalarValue::TimestampMicrosecond(Some(micros), zone)
        }
    };
    Ok(Transformed::yes(Expr::Literal(value.cast_to(ty)?, None)))
}

/// Postgres' bytea input: `\x` then hex digit pairs, or the escape format where `\\` is a
/// backslash and `\nnn` an octal byte.
pub fn parse_bytea(text: &str) -> Result<Vec<u8>, String> {
    let invalid = || format!("invalid input syntax for type bytea: \"{text}\"");
    if let Some(hex) = text
        .strip_prefix("\\x")
        .or_else(|| text.strip_prefix("\\X"))
    {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return Err(invalid());
        }
        return digits
            .chunks(2)
            .map(|pair| {
                let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
                u8::from_str_radix(pair, 16).map_err(|_| invalid())
            })
            .collect();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let octal = bytes.get(i + 1..i + 4).ok_or_else(invalid)?;
            let octal = std::str::from_utf8(octal).map_err(|_| invalid())?;
            out.push(u8::from_str_radix(octal, 8).map_err(|_| invalid())?);
            i += 4;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytea_input_formats() {
        assert_eq!(parse_bytea("\\x00ff10").unwrap(), vec![0, 255, 16]);
        assert_eq!(parse_bytea("\\x00 ff").unwrap(), vec![0, 255]);
        assert_eq!(parse_bytea("ab\\\\c\\001").unwrap(), b"ab\\c\x01".to_vec());
        assert!(parse_bytea("\\x0").is_err());
        assert!(parse_bytea("\\xzz").is_err());
        assert!(parse_bytea("a\\9").is_err());
    }
}
