//! Approximate aggregates as mergeable sketches (DESIGN.md §5).
//!
//! A view's partial query computes, per group and epoch, DataFusion's own accumulator state for
//! `approx_distinct` (HyperLogLog) or `approx_percentile_cont` (t-digest), serialized to bytes
//! by the `__weir_*_state` aggregates registered here. The group state keeps the merged sketch;
//! the final query reads the answer off it with `__weir_hll_estimate` /
//! `__weir_tdigest_quantile`. Merging two HyperLogLogs is exact (the result equals one sketch
//! over all the values); merging t-digests is what DataFusion does between partitions.

use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::functions_aggregate::approx_distinct::approx_distinct_udaf;
use datafusion::functions_aggregate::approx_percentile_cont::approx_percentile_cont_udaf;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Signature, Volatility, create_udf,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::prelude::SessionContext;
use weir_sql::plan::Sketch;

/// Registers the sketch aggregates and finishing functions in a view's context.
pub fn register(ctx: &SessionContext) {
    for (sketch, inner) in [
        (Sketch::Hll, approx_distinct_udaf()),
        (Sketch::TDigest, approx_percentile_cont_udaf()),
    ] {
        ctx.register_udaf(AggregateUDF::new_from_impl(SketchState {
            name: sketch.state_function(),
            inner,
        }));
    }
    ctx.register_udaf(AggregateUDF::new_from_impl(SketchMerge {
        signature: Signature::exact(vec![DataType::Binary], Volatility::Immutable),
    }));
    ctx.register_udf(create_udf(
        Sketch::Hll.finish_function(),
        vec![DataType::Binary],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args| finish_each(args, |sketch, _| estimate(sketch))),
    ));
    ctx.register_udf(create_udf(
        Sketch::TDigest.finish_function(),
        vec![DataType::Binary, DataType::Float64],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(|args| finish_each(args, quantile)),
    ));
}

/// Merges two serialized sketches of one kind into one.
pub fn merge(sketch: Sketch, a: &[u8], b: &[u8]) -> Result<Vec<u8>> {
    if sketch == Sketch::Funnel {
        return crate::functions::merge_funnel_states(a, b);
    }
    let mut accumulator = accumulator(sketch, 0.5)?;
    accumulator.merge_batch(&decode(a)?)?;
    accumulator.merge_batch(&decode(b)?)?;
    encode(accumulator.state()?)
}

/// The distinct-count estimate of a serialized HyperLogLog.
fn estimate(sketch: &[u8]) -> Result<ScalarValue> {
    let mut accumulator = accumulator(Sketch::Hll, 0.0)?;
    accumulator.merge_batch(&decode(sketch)?)?;
    Ok(match accumulator.evaluate()? {
        ScalarValue::UInt64(n) => ScalarValue::Int64(n.map(|n| n as i64)),
        other => return exec_err!("approx_distinct evaluated to {other:?}"),
    })
}

/// The value at `percentile` of a serialized t-digest.
fn quantile(sketch: &[u8], percentile: f64) -> Result<ScalarValue> {
    let mut accumulator = accumulator(Sketch::TDigest, percentile)?;
    accumulator.merge_batch(&decode(sketch)?)?;
    accumulator.evaluate()?.cast_to(&DataType::Float64)
}

/// Applies `finish` to each non-null sketch of the first argument, with the second argument's
/// value (the percentile) when there is one.
fn finish_each(
    args: &[ColumnarValue],
    finish: impl Fn(&[u8], f64) -> Result<ScalarValue>,
) -> Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let sketches = arrays[0].as_binary::<i32>();
    let percentile = arrays
        .get(1)
        .map(|a| a.as_primitive::<datafusion::arrow::datatypes::Float64Type>());
    let values = (0..sketches.len())
        .map(|i| {
            let q = percentile.map_or(0.0, |p| p.value(i));
            if sketches.is_null(i) {
                Ok(None)
            } else {
                finish(sketches.value(i), q).map(Some)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let ty = if arrays.len() > 1 {
        DataType::Float64
    } else {
        DataType::Int64
    };
    let values = values
        .into_iter()
        .map(|v| v.map_or_else(|| ScalarValue::try_from(&ty), Ok))
        .collect::<Result<Vec<_>>>()?;
    if values.is_empty() {
        return Ok(ColumnarValue::Array(
            datafusion::arrow::array::new_empty_array(&ty),
        ));
    }
    Ok(ColumnarValue::Array(ScalarValue::iter_to_array(values)?))
}

/// A fresh accumulator of DataFusion's for `sketch`, to merge serialized states into. The
/// input type only decides how new values would be hashed or read, and none are added.
fn accumulator(sketch: Sketch, percentile: f64) -> Result<Box<dyn Accumulator>> {
    let (udaf, input, return_type) = match sketch {
        Sketch::Hll => (approx_distinct_udaf(), DataType::Int64, DataType::UInt64),
        Sketch::TDigest => (
            approx_percentile_cont_udaf(),
            DataType::Float64,
            DataType::Float64,
        ),
        Sketch::Funnel => return exec_err!("window_funnel states are not DataFusion's"),
    };
    let fields: Vec<FieldRef> = vec![
        Arc::new(Field::new("x", input, true)),
        Arc::new(Field::new("q", DataType::Float64, false)),
    ];
    let schema = Schema::new(fields.clone());
    let exprs: Vec<Arc<dyn PhysicalExpr>> = vec![
        Arc::new(Column::new("x", 0)),
        Arc::new(Literal::new(ScalarValue::Float64(Some(percentile)))),
    ];
    udaf.accumulator(AccumulatorArgs {
        return_field: Arc::new(Field::new("r", return_type, true)),
        schema: &schema,
        ignore_nulls: false,
        order_bys: &[],
        is_reversed: false,
        name: udaf.name(),
        is_distinct: false,
        exprs: &exprs,
        expr_fields: &fields,
    })
}

/// An accumulator state as bytes: a one-row Arrow IPC stream, one column per state value.
fn encode(state: Vec<ScalarValue>) -> Result<Vec<u8>> {
    let columns = state
        .iter()
        .map(|v| v.to_array())
        .collect::<Result<Vec<ArrayRef>>>()?;
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .enumerate()
            .map(|(i, c)| Field::new(format!("s{i}"), c.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let mut bytes = Vec::new();
    let mut writer = StreamWriter::try_new(&mut bytes, &schema)?;
    writer.write(&batch)?;
    writer.finish()?;
    drop(writer);
    Ok(bytes)
}

/// The state columns of [`encode`]'s bytes, as `merge_batch` takes them.
fn decode(bytes: &[u8]) -> Result<Vec<ArrayRef>> {
    let mut reader = StreamReader::try_new(Cursor::new(bytes), None)?;
    match reader.next() {
        Some(batch) => Ok(batch?.columns().to_vec()),
        None => exec_err!("an empty sketch"),
    }
}

/// `__weir_hll_state` / `__weir_tdigest_state`: DataFusion's aggregate, evaluated to its
/// serialized state instead of its answer.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SketchState {
    name: &'static str,
    inner: Arc<AggregateUDF>,
}

impl AggregateUDFImpl for SketchState {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let return_field = self.inner.return_field(args.input_fields)?;
        self.inner.state_fields(StateFieldsArgs {
            return_field,
            ..args
        })
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let return_field = self.inner.return_field(args.expr_fields)?;
        Ok(Box::new(StateAccumulator(self.inner.accumulator(
            AccumulatorArgs {
                return_field,
                ..args
            },
        )?)))
    }
}

#[derive(Debug)]
struct StateAccumulator(Box<dyn Accumulator>);

impl Accumulator for StateAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.0.update_batch(values)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(Some(encode(self.0.state()?)?)))
    }

    fn size(&self) -> usize {
        self.0.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.0.merge_batch(states)
    }
}

/// `__weir_hll_merge`: serialized HyperLogLogs merged into one (the pane path of HOP views).
#[derive(Debug, PartialEq, Eq, Hash)]
struct SketchMerge {
    signature: Signature,
}

impl AggregateUDFImpl for SketchMerge {
    fn name(&self) -> &str {
        Sketch::Hll
            .merge_function()
            .expect("HyperLogLogs merge in SQL")
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn state_fields(&self, _args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new("sketch", DataType::Binary, true))])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(MergeAccumulator(accumulator(Sketch::Hll, 0.0)?)))
    }
}

/// Merges serialized sketches (its input and its state alike) into DataFusion's accumulator.
#[derive(Debug)]
struct MergeAccumulator(Box<dyn Accumulator>);

impl Accumulator for MergeAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let sketches = values[0].as_binary::<i32>();
        for sketch in sketches.iter().flatten() {
            self.0.merge_batch(&decode(sketch)?)?;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(Some(encode(self.0.state()?)?)))
    }

    fn size(&self) -> usize {
        self.0.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn one(ctx: &SessionContext, sql: &str) -> ScalarValue {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        ScalarValue::try_from_array(batches[0].column(0), 0).unwrap()
    }

    #[tokio::test]
    async fn merged_sketches_answer_like_one_sketch_over_all_values() {
        let ctx = SessionContext::new();
        register(&ctx);
        let sketch = |sql: String| {
            let ctx = ctx.clone();
            async move {
                match one(&ctx, &sql).await {
                    ScalarValue::Binary(Some(b)) => b,
                    other => panic!("{other:?}"),
                }
            }
        };
        let values =
            |from: i64, to: i64| format!("SELECT value % 700 AS v FROM range({from}, {to})");
        let low = sketch(format!(
            "SELECT __weir_hll_state(v) FROM ({})",
            values(0, 5000)
        ))
        .await;
        let high = sketch(format!(
            "SELECT __weir_hll_state(v) FROM ({})",
            values(5000, 9000)
        ))
        .await;
        let merged = merge(Sketch::Hll, &low, &high).unwrap();
        let in_sql = sketch(format!(
            "SELECT __weir_hll_merge(s) FROM (SELECT __weir_hll_state(v) AS s FROM ({}) \
             GROUP BY v < 300)",
            values(0, 9000)
        ))
        .await;
        assert_eq!(
            estimate(&in_sql).unwrap(),
            estimate(&merged).unwrap(),
            "merged by the aggregate as by `merge`"
        );
        let whole = one(
            &ctx,
            &format!("SELECT approx_distinct(v) FROM ({})", values(0, 9000)),
        )
        .await;
        assert_eq!(
            estimate(&merged)
                .unwrap()
                .cast_to(&DataType::UInt64)
                .unwrap(),
            whole
        );

        let low = sketch(format!(
            "SELECT __weir_tdigest_state(v, 0.9) FROM ({})",
            values(0, 5000)
        ))
        .await;
        let high = sketch(format!(
            "SELECT __weir_tdigest_state(v, 0.9) FROM ({})",
            values(5000, 9000)
        ))
        .await;
        let merged = merge(Sketch::TDigest, &low, &high).unwrap();
        let ScalarValue::Float64(Some(p90)) = quantile(&merged, 0.9).unwrap() else {
            panic!("no quantile")
        };
        assert!(
            (p90 - 630.0).abs() < 10.0,
            "p90 of 0..700 is about 630, not {p90}"
        );
    }
}
