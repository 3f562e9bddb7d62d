//! Time bounds in scan filters: comparisons of a timestamp column with constants, which the
//! source log (per-entry event-time ranges) and views (rows keyed by window) use to read less.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};

/// Inclusive event-time bounds (µs) a filter implies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TimeBound {
    pub(super) lo: Option<i64>,
    pub(super) hi: Option<i64>,
}

impl TimeBound {
    /// The tightest bounds all of `filters` put on `column`.
    pub(super) fn of(filters: &[Expr], column: &str) -> Self {
        let mut bound = Self::default();
        for b in filters.iter().filter_map(|f| time_bound(f, column)) {
            if let Some(lo) = b.lo {
                bound.lo = Some(bound.lo.map_or(lo, |l| l.max(lo)));
            }
            if let Some(hi) = b.hi {
                bound.hi = Some(bound.hi.map_or(hi, |h| h.min(hi)));
            }
        }
        bound
    }
}

/// The bound `filter` puts on `column`, if it compares the column with a constant.
pub(super) fn time_bound(filter: &Expr, column: &str) -> Option<TimeBound> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = filter else {
        return None;
    };
    let is_column = |e: &Expr| matches!(e, Expr::Column(c) if c.name == column);
    let (value, op) = match (left.as_ref(), right.as_ref()) {
        (l, Expr::Literal(v, _)) if is_column(l) => (v, *op),
        (Expr::Literal(v, _), r) if is_column(r) => (v, op.swap()?),
        _ => return None,
    };
    let micros = match value
        .cast_to(&DataType::Timestamp(TimeUnit::Microsecond, None))
        .ok()?
    {
        ScalarValue::TimestampMicrosecond(Some(t), _) => t,
        _ => return None,
    };
    match op {
        Operator::Gt | Operator::GtEq => Some(TimeBound {
            lo: Some(micros),
            hi: None,
        }),
        Operator::Lt | Operator::LtEq => Some(TimeBound {
            lo: None,
            hi: Some(micros),
        }),
        Operator::Eq => Some(TimeBound {
            lo: Some(micros),
            hi: Some(micros),
        }),
        _ => None,
    }
}

/// How a provider that narrows its scan by `column` (if it has one) takes `filters`:
/// `Inexact` for the comparisons it uses (DataFusion still applies them to the rows).
pub(super) fn pushdown(
    filters: &[&Expr],
    column: Option<&str>,
) -> Vec<TableProviderFilterPushDown> {
    filters
        .iter()
        .map(|f| match column.and_then(|c| time_bound(f, c)) {
            Some(_) => TableProviderFilterPushDown::Inexact,
            None => TableProviderFilterPushDown::Unsupported,
        })
        .collect()
}
