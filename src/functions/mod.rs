//! Postgres functions that neither DataFusion nor `datafusion-pg-catalog` provide, registered
//! for queries and views alike (a view's query may call them too).

mod retention;
mod window_funnel;

pub use window_funnel::merge as merge_funnel_states;

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{AggregateUDF, ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;

/// The version string `SELECT version()` returns. Tools parse the leading `PostgreSQL N`
/// (SQLAlchemy, pgjdbc); Weir speaks PostgreSQL 15's dialect and catalog, so it says 15.
pub fn version_string() -> String {
    format!(
        "PostgreSQL 15.0 on x86_64-pc-linux-gnu (Weir {})",
        env!("CARGO_PKG_VERSION")
    )
}

/// Registers Weir's functions with `ctx`.
pub fn register(ctx: &SessionContext) {
    for function in scalars() {
        ctx.register_udf(function);
    }
    for kind in ["json", "jsonb"] {
        ctx.register_udf(ScalarUDF::new_from_impl(ToJson::new(kind)));
    }
    ctx.register_udaf(approx_count_distinct());
    // Product analytics: in queries, and finished from the states views keep.
    for funnel in window_funnel::aggregates() {
        ctx.register_udaf(funnel);
    }
    ctx.register_udf(window_funnel::finish());
    ctx.register_udaf(retention::aggregate());
    ctx.register_udf(retention::finish());
}

fn scalars() -> Vec<ScalarUDF> {
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
        // Postgres's `mod(y, x)`, the remainder of `y / x` with the sign of `y` (Nexmark's q2
        // is written with it); integers only, like `%` on integers.
        create_udf(
            "mod",
            vec![DataType::Int64, DataType::Int64],
            DataType::Int64,
            Volatility::Immutable,
            Arc::new(|args| {
                let [y, x] = args else {
                    unreachable!("the signature takes two arguments")
                };
                let remainder = match (y, x) {
                    (ColumnarValue::Scalar(y), ColumnarValue::Scalar(x)) => {
                        let (y, x) = (y.to_array()?, x.to_array()?);
                        let r = datafusion::arrow::compute::kernels::numeric::rem(&y, &x)?;
                        return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&r, 0)?));
                    }
                    (ColumnarValue::Array(y), ColumnarValue::Scalar(x)) => {
                        datafusion::arrow::compute::kernels::numeric::rem(y, &x.to_scalar()?)?
                    }
                    (ColumnarValue::Scalar(y), ColumnarValue::Array(x)) => {
                        datafusion::arrow::compute::kernels::numeric::rem(&y.to_scalar()?, x)?
                    }
                    (ColumnarValue::Array(y), ColumnarValue::Array(x)) => {
                        datafusion::arrow::compute::kernels::numeric::rem(y, x)?
                    }
                };
                Ok(ColumnarValue::Array(remainder))
            }),
        ),
    ]
}

/// `approx_count_distinct`, the name most SQL engines give DataFusion's `approx_distinct`
/// (a HyperLogLog estimate).
fn approx_count_distinct() -> AggregateUDF {
    datafusion::functions_aggregate::approx_distinct::approx_distinct_udaf()
        .as_ref()
        .clone()
        .with_aliases(["approx_count_distinct"])
}

/// `x::json` and `x::jsonb`, which DataFusion has no type for (the client SQL rewrite makes them
/// `weir_json(x)` and `weir_jsonb(x)`): the text, checked to be JSON, typed as a JSON column is,
/// so clients are told `json`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToJson {
    name: String,
    kind: &'static str,
    signature: datafusion::logical_expr::Signature,
}

impl ToJson {
    fn new(kind: &'static str) -> Self {
        Self {
            name: format!("weir_{kind}"),
            kind,
            signature: datafusion::logical_expr::Signature::any(1, Volatility::Immutable),
        }
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for ToJson {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> datafusion::error::Result<datafusion::arrow::datatypes::FieldRef> {
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(
            weir_catalog::ColumnType::from_sql_name(self.kind)
                .map_err(|e| datafusion::error::DataFusionError::Plan(e.to_string()))?
                .arrow_field(&self.name, nullable),
        ))
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray};
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let text = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
        for value in text.as_string::<i32>().iter().flatten() {
            if serde_json::from_str::<serde_json::Value>(value).is_err() {
                return Err(datafusion::error::DataFusionError::Execution(format!(
                    "invalid input syntax for type {}: \"{value}\"",
                    self.kind
                )));
            }
        }
        Ok(
            if text.len() == 1
                && args
                    .args
                    .iter()
                    .all(|a| matches!(a, ColumnarValue::Scalar(_)))
            {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&text, 0)?)
            } else {
                ColumnarValue::Array(text)
            },
        )
    }
}

/// A one-row result as a scalar when every argument was one, as DataFusion expects.
pub(crate) fn scalar_if_scalar(
    args: &[ColumnarValue],
    result: datafusion::arrow::array::ArrayRef,
) -> ColumnarValue {
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) && result.len() == 1 {
        match ScalarValue::try_from_array(&result, 0) {
            Ok(value) => ColumnarValue::Scalar(value),
            Err(_) => ColumnarValue::Array(result),
        }
    } else {
        ColumnarValue::Array(result)
    }
}
