//! Postgres functions clients call that neither DataFusion nor `datafusion-pg-catalog` provide.

use std::sync::Arc;

use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{AggregateUDF, ColumnarValue, ScalarUDF, Volatility, create_udf};

/// The version string `SELECT version()` returns. Tools parse the leading `PostgreSQL N`.
pub fn version_string() -> String {
    format!(
        "PostgreSQL 16.6 on x86_64-pc-linux-gnu (Weir {})",
        env!("CARGO_PKG_VERSION")
    )
}

/// Every function registered by Weir.
pub fn all() -> Vec<ScalarUDF> {
    let version = version_string();
    vec![
        create_udf(
            "version",
            vec![],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(move |_| {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                    version.clone(),
                ))))
            }),
        ),
        // psql's `\df` describes functions with these; Weir has no user-defined functions, so
        // there is nothing to describe.
        unknown_text("pg_get_function_result"),
        unknown_text("pg_get_function_arguments"),
        // psql's `\df` filters with it; every function is on the one search path.
        create_udf(
            "pg_function_is_visible",
            vec![DataType::Int32],
            DataType::Boolean,
            Volatility::Stable,
            Arc::new(|args| {
                Ok(match &args[0] {
                    ColumnarValue::Array(a) => {
                        ColumnarValue::Array(Arc::new(BooleanArray::from(vec![true; a.len()])))
                    }
                    ColumnarValue::Scalar(_) => {
                        ColumnarValue::Scalar(ScalarValue::Boolean(Some(true)))
                    }
                })
            }),
        ),
    ]
}

/// `approx_count_distinct`, the name most SQL engines give DataFusion's `approx_distinct`
/// (a HyperLogLog estimate).
pub fn approx_count_distinct() -> AggregateUDF {
    datafusion::functions_aggregate::approx_distinct::approx_distinct_udaf()
        .as_ref()
        .clone()
        .with_aliases(["approx_count_distinct"])
}

/// A one-argument (`oid`) function returning a null `text`.
fn unknown_text(name: &str) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Int32],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|args| {
            Ok(match &args[0] {
                ColumnarValue::Array(a) => ColumnarValue::Array(
                    datafusion::arrow::array::new_null_array(&DataType::Utf8, a.len()),
                ),
                ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::Utf8(None)),
            })
        }),
    )
}
