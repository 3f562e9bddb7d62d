//! `retention(cond1, ..., condN)` -> `boolean[]`, ClickHouse's `retention`: element 1 is whether
//! any event of the group matched `cond1`; element i, whether any matched `cond1` and any
//! matched `condi` (not necessarily the same event). A NULL condition is not a match.
//!
//! The state is a bit mask of the conditions some event matched, which merges by OR: a view
//! computes it with `bit_or` per epoch and finishes it with `__weir_retention_of(mask, N)`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanBuilder, ListBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarUDF, Signature, Volatility,
    create_udf,
};

/// Most conditions `retention` takes (as ClickHouse).
const MAX_CONDITIONS: usize = 32;

/// `retention` for queries.
pub fn aggregate() -> AggregateUDF {
    AggregateUDF::new_from_impl(Retention {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

/// `__weir_retention_of(mask, N)`: a view's merged mask as `retention`'s answer.
pub fn finish() -> ScalarUDF {
    create_udf(
        "__weir_retention_of",
        vec![DataType::Int64, DataType::Int64],
        answer_type(),
        Volatility::Immutable,
        Arc::new(|args| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let masks = arrays[0].as_primitive::<Int64Type>();
            let counts = arrays[1].as_primitive::<Int64Type>();
            let mut answers = ListBuilder::new(BooleanBuilder::new());
            for i in 0..masks.len() {
                // No qualifying event at all: nothing matched.
                let mask = if masks.is_null(i) { 0 } else { masks.value(i) };
                append_answer(&mut answers, mask as u64, counts.value(i) as usize);
            }
            Ok(ColumnarValue::Array(Arc::new(answers.finish())))
        }),
    )
}

fn answer_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Boolean, true)))
}

fn append_answer(answers: &mut ListBuilder<BooleanBuilder>, mask: u64, conditions: usize) {
    let first = mask & 1 != 0;
    for i in 0..conditions {
        answers.values().append_value(first && mask & (1 << i) != 0);
    }
    answers.append(true);
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Retention {
    signature: Signature,
}

impl AggregateUDFImpl for Retention {
    fn name(&self) -> &str {
        "retention"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.is_empty() || arg_types.len() > MAX_CONDITIONS {
            return plan_err!(
                "retention takes 1 to {MAX_CONDITIONS} conditions, not {}",
                arg_types.len()
            );
        }
        if let Some(other) = arg_types.iter().find(|t| **t != DataType::Boolean) {
            return plan_err!("retention: a condition of type {other}, not boolean");
        }
        Ok(answer_type())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}_mask", args.name),
            DataType::Int64,
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(RetentionAccumulator {
            conditions: args.exprs.len(),
            mask: 0,
        }))
    }
}

#[derive(Debug)]
struct RetentionAccumulator {
    conditions: usize,
    mask: u64,
}

impl Accumulator for RetentionAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for (i, condition) in values.iter().enumerate() {
            let DataType::Boolean = condition.data_type() else {
                return exec_err!("retention: a condition of type {}", condition.data_type());
            };
            if condition.as_boolean().true_count() > 0 {
                self.mask |= 1 << i;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut answers = ListBuilder::new(BooleanBuilder::new());
        append_answer(&mut answers, self.mask, self.conditions);
        Ok(ScalarValue::List(Arc::new(answers.finish())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(Some(self.mask as i64))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for mask in states[0].as_primitive::<Int64Type>().iter().flatten() {
            self.mask |= mask as u64;
        }
        Ok(())
    }
}
