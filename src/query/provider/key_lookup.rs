//! A point read of an aggregating view: the rows whose leading group key equals a value, one
//! prefix of the view's row keys. The read happens when the plan runs, not when it is made, so
//! a prepared statement (`WHERE user_id = $1`) keeps one physical plan and only binds each
//! execution's parameter into its leaf ([`bind_parameters`]): no planning per lookup.
//!
//! Row keys encode the key column exactly (see `storage::keys`), so the read holds exactly the
//! rows the equality keeps and the filter need not run again above it.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, ParamValues, Result, ScalarValue, plan_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions,
};

use crate::storage::ViewStore;

/// What one `key = …` filter compares the key column with.
#[derive(Debug, Clone)]
pub enum KeyOperand {
    /// A constant; `cast` when the filter casts it to the key's type (`key = CAST(… AS t)`),
    /// else it must equal the key as it is.
    Value { value: ScalarValue, cast: bool },
    /// A prepared statement's parameter (`$n`), bound at execution.
    Parameter { id: String, cast: bool },
}

/// Whether the row-key encoding of `ty` orders and compares exactly like Arrow's equality:
/// floats are left out (Arrow's `-0.0 = 0.0` holds, their encodings differ).
pub fn encodes_exactly(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Boolean
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Date32
            | DataType::Decimal128(_, _)
            | DataType::Utf8
            | DataType::Timestamp(TimeUnit::Microsecond, _)
    )
}

/// The operand of `filter` when it is `column = operand`, which a prefix read of `column` (of
/// type `ty`) answers: exactly where [`encodes_exactly`] holds, when the filter is pushed down
/// `Exact` and the scan that receives it must read by it.
pub fn key_operand(filter: &Expr, column: &str, ty: &DataType) -> Option<KeyOperand> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Eq,
        right,
    }) = filter
    else {
        return None;
    };
    let is_column = |e: &Expr| matches!(e, Expr::Column(c) if c.name == column);
    let other = match (left.as_ref(), right.as_ref()) {
        (l, other) if is_column(l) => other,
        (other, r) if is_column(r) => other,
        _ => return None,
    };
    let (inner, cast) = match other {
        Expr::Cast(c) if c.field.data_type() == ty => (c.expr.as_ref(), true),
        other => (other, false),
    };
    match inner {
        Expr::Literal(value, _) => Some(KeyOperand::Value {
            value: value.clone(),
            cast,
        }),
        Expr::Placeholder(p) => Some(KeyOperand::Parameter {
            id: p.id.clone(),
            cast,
        }),
        _ => None,
    }
}

/// The key `value` stands for, as a one-value array of `ty`, or `None` when no key equals it
/// (null, or a value the key's type cannot hold exactly, such as `7.5` for a bigint key).
fn key_value(value: &ScalarValue, cast: bool, ty: &DataType) -> Result<Option<ArrayRef>> {
    if value.is_null() {
        return Ok(None);
    }
    if cast {
        // The filter compares with the cast's result: it fails as the cast would.
        let key = value.cast_to(ty)?;
        return if key.is_null() {
            Ok(None)
        } else {
            key.to_array().map(Some)
        };
    }
    let Ok(key) = value.cast_to(ty) else {
        return Ok(None);
    };
    if key.is_null() || key.cast_to(&value.data_type()).ok().as_ref() != Some(value) {
        return Ok(None);
    }
    key.to_array().map(Some)
}

/// Reads the rows of a view whose leading group key equals every one of its operands.
#[derive(Debug)]
pub struct KeyLookupExec {
    store: Arc<ViewStore>,
    column: String,
    key_type: DataType,
    operands: Vec<KeyOperand>,
    projection: Option<Vec<usize>>,
    properties: Arc<PlanProperties>,
}

impl KeyLookupExec {
    /// The read of `store`'s rows whose key column (`column`, of type `key_type`) equals every
    /// one of `operands`, projected to `projection`.
    pub fn try_new(
        store: Arc<ViewStore>,
        column: String,
        key_type: DataType,
        operands: Vec<KeyOperand>,
        projection: Option<&Vec<usize>>,
    ) -> Result<Self> {
        let schema: SchemaRef = match projection {
            Some(p) => Arc::new(store.schema().project(p)?),
            None => store.schema().clone(),
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Self {
            store,
            column,
            key_type,
            operands,
            projection: projection.cloned(),
            properties: Arc::new(properties),
        })
    }

    fn has_parameters(&self) -> bool {
        self.operands
            .iter()
            .any(|o| matches!(o, KeyOperand::Parameter { .. }))
    }

    /// This read with its parameters replaced by their values in `params`.
    fn bind(&self, params: &ParamValues) -> Result<Self> {
        let operands = self
            .operands
            .iter()
            .map(|operand| match operand {
                KeyOperand::Parameter { id, cast } => Ok(KeyOperand::Value {
                    value: params.get_placeholders_with_values(id)?.value,
                    cast: *cast,
                }),
                value => Ok(value.clone()),
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            store: self.store.clone(),
            column: self.column.clone(),
            key_type: self.key_type.clone(),
            operands,
            projection: self.projection.clone(),
            properties: self.properties.clone(),
        })
    }

    /// The key every operand equals, or `None` when they disagree (no row has two keys).
    fn key(&self) -> Result<Option<ArrayRef>> {
        let mut key: Option<ArrayRef> = None;
        for operand in &self.operands {
            let KeyOperand::Value { value, cast } = operand else {
                return plan_err!("a key lookup ran with its parameter unbound");
            };
            let Some(value) = key_value(value, *cast, &self.key_type)? else {
                return Ok(None);
            };
            match &key {
                Some(k) if k.to_data() != value.to_data() => return Ok(None),
                Some(_) => {}
                None => key = Some(value),
            }
        }
        Ok(key)
    }
}

impl DisplayAs for KeyLookupExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "KeyLookupExec: {} = ", self.column)?;
        for (i, operand) in self.operands.iter().enumerate() {
            if i > 0 {
                write!(f, " = ")?;
            }
            match operand {
                KeyOperand::Value { value, .. } => write!(f, "{value}")?,
                KeyOperand::Parameter { id, .. } => write!(f, "{id}")?,
            }
        }
        Ok(())
    }
}

impl ExecutionPlan for KeyLookupExec {
    fn name(&self) -> &'static str {
        "KeyLookupExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(&self, _: usize, _: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let schema = self.schema();
        let Some(key) = self.key()? else {
            let rows = RecordBatch::new_empty(schema.clone());
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::once(async { Ok(rows) }),
            )));
        };
        let external = |e| DataFusionError::External(Box::new(e));
        // A point read's rows are usually in memory: reading them here costs less than the hop
        // to a blocking thread, which only a read from disk takes.
        if let Some(rows) = self.store.scan_leading_key_cached(&key).map_err(external)? {
            let rows = project(rows, self.projection.as_deref());
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::once(async { rows }),
            )));
        }
        let store = self.store.clone();
        let projection = self.projection.clone();
        let read = async move {
            let rows = tokio::task::spawn_blocking(move || store.scan_leading_key(&key))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .map_err(external)?;
            project(rows, projection.as_deref())
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::once(read),
        )))
    }
}

/// `batch` with only the columns of `projection`, if any.
fn project(batch: RecordBatch, projection: Option<&[usize]>) -> Result<RecordBatch> {
    match projection {
        Some(p) => Ok(batch.project(p)?),
        None => Ok(batch),
    }
}

/// Whether `plan` holds a key lookup that waits for a parameter.
pub fn has_key_parameters(plan: &Arc<dyn ExecutionPlan>) -> bool {
    match plan.downcast_ref::<KeyLookupExec>() {
        Some(lookup) => lookup.has_parameters(),
        None => plan.children().into_iter().any(has_key_parameters),
    }
}

/// `plan` with the parameters of its key lookups bound to `params`. The lookups' output is
/// described the same whatever the key, so the nodes above keep their computed properties and
/// are only copied: far cheaper than planning again.
pub fn bind_parameters(
    plan: &Arc<dyn ExecutionPlan>,
    params: &ParamValues,
) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(lookup) = plan.downcast_ref::<KeyLookupExec>() {
        return Ok(Arc::new(lookup.bind(params)?));
    }
    let children = plan.children();
    if children.is_empty() {
        return Ok(plan.clone());
    }
    let children = children
        .into_iter()
        .map(|child| bind_parameters(child, params))
        .collect::<Result<Vec<_>>>()?;
    plan.clone().replace_children(
        children,
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
    )
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, Int64Array};
    use datafusion::logical_expr::{cast, col, lit, placeholder};

    use super::*;

    fn int64(array: Option<ArrayRef>) -> Option<i64> {
        array.map(|a| {
            assert_eq!(a.len(), 1);
            a.as_any().downcast_ref::<Int64Array>().unwrap().value(0)
        })
    }

    #[test]
    fn a_key_value_is_one_the_key_type_holds_exactly() {
        let key =
            |value: ScalarValue, cast| int64(key_value(&value, cast, &DataType::Int64).unwrap());
        assert_eq!(key(ScalarValue::Int64(Some(7)), false), Some(7));
        assert_eq!(key(ScalarValue::Float64(Some(7.0)), false), Some(7));
        // No bigint equals 7.5, and no key equals null.
        assert_eq!(key(ScalarValue::Float64(Some(7.5)), false), None);
        assert_eq!(key(ScalarValue::Int64(None), false), None);
        assert_eq!(key(ScalarValue::Int32(Some(-12)), true), Some(-12));
        // A cast the filter asks for fails as the filter would.
        let text = ScalarValue::Utf8(Some("seven".into()));
        assert!(key_value(&text, true, &DataType::Int64).is_err());
    }

    #[test]
    fn only_equalities_of_the_key_column_are_key_operands() {
        let ty = DataType::Int64;
        let operand = |e: Expr| key_operand(&e, "user_id", &ty);
        assert!(matches!(
            operand(col("user_id").eq(placeholder("$1"))),
            Some(KeyOperand::Parameter { id, cast: false }) if id == "$1"
        ));
        assert!(matches!(
            operand(lit(3i64).eq(col("user_id"))),
            Some(KeyOperand::Value { cast: false, .. })
        ));
        assert!(matches!(
            operand(col("user_id").eq(cast(placeholder("$2"), DataType::Int64))),
            Some(KeyOperand::Parameter { cast: true, .. })
        ));
        // A cast to another type is not the key's equality.
        assert!(operand(col("user_id").eq(cast(placeholder("$1"), DataType::Int32))).is_none());
        assert!(operand(col("user_id").lt(lit(3i64))).is_none());
        assert!(operand(col("page").eq(lit(3i64))).is_none());
        assert!(operand(col("user_id").eq(col("other"))).is_none());
    }
}
