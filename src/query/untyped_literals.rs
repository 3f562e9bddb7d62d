//! A quoted literal in Postgres has no type until its context gives one: `indisprimary = 'f'`
//! compares booleans. DataFusion types `'f'` as text and cannot compare it with a boolean, so
//! this analyzer rule, run before DataFusion's type coercion, reads such a literal as a boolean
//! the way Postgres' boolean input does.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ExprSchema, Result, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

/// The analyzer rule (see the module docs). It must run before `type_coercion`.
#[derive(Debug, Default)]
pub struct UntypedLiterals;

impl AnalyzerRule for UntypedLiterals {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let schema = match plan.inputs().as_slice() {
                [input] => input.schema().clone(),
                _ => plan.schema().clone(),
            };
            plan.map_expressions(|expr| expr.transform_up(|e| boolean_literal(e, &schema)))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "weir_untyped_literals"
    }
}

fn boolean_literal(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    if !matches!(
        op,
        Operator::Eq | Operator::NotEq | Operator::IsDistinctFrom | Operator::IsNotDistinctFrom
    ) {
        return Ok(Transformed::no(expr));
    }
    let is_boolean = |e: &Expr| {
        e.get_type(schema as &dyn ExprSchema)
            .is_ok_and(|t| t == DataType::Boolean)
    };
    let (left, right) = match (text_literal(left), text_literal(right)) {
        (None, Some(text)) if is_boolean(left) => (left.as_ref().clone(), boolean(text)?),
        (Some(text), None) if is_boolean(right) => (boolean(text)?, right.as_ref().clone()),
        _ => return Ok(Transformed::no(expr)),
    };
    Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
        Box::new(left),
        *op,
        Box::new(right),
    ))))
}

fn text_literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _) => Some(s),
        _ => None,
    }
}

/// Postgres' boolean input: any unambiguous prefix of `true`/`false`/`yes`/`no`, `on`/`off`,
/// `1`/`0`, in any case, around spaces.
fn boolean(text: &str) -> Result<Expr> {
    let word = text.trim().to_ascii_lowercase();
    let value = match word.as_str() {
        "1" | "on" => true,
        "0" | "of" | "off" => false,
        w if !w.is_empty() && ("true".starts_with(w) || "yes".starts_with(w)) => true,
        w if !w.is_empty() && ("false".starts_with(w) || "no".starts_with(w)) => false,
        _ => {
            return Err(datafusion::error::DataFusionError::Plan(format!(
                "invalid input syntax for type boolean: \"{text}\""
            )));
        }
    };
    Ok(Expr::Literal(ScalarValue::Boolean(Some(value)), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boolean_input_reads_as_postgres_does() {
        for (text, value) in [
            ("t", true),
            ("f", false),
            (" TRUE ", true),
            ("no", false),
            ("1", true),
            ("off", false),
            ("y", true),
        ] {
            assert_eq!(
                boolean(text).unwrap(),
                Expr::Literal(ScalarValue::Boolean(Some(value)), None),
                "{text}"
            );
        }
        assert!(boolean("o").is_err());
        assert!(boolean("maybe").is_err());
    }
}
