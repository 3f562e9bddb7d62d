//! `window_funnel(window, ts, cond1, ..., condN [, 'mode' ...])`: the deepest step of a funnel
//! a group's events reach, with ClickHouse's `windowFunnel` semantics.
//!
//! A chain starts at an event matching `cond1`; step k counts when an event matching `condk`
//! comes after step k-1 and within `window` (inclusive) of the chain's start. Events are taken
//! in time order, and at one time in step order, so by default one event can fill several
//! steps. Modes: `strict_order` (an event matching no step, after the chain started, ends the
//! search; a step out of order ends it at the first missing step), `strict_deduplication` (a
//! step seen again ends the search), `strict_increase` (each step strictly later than the one
//! before).
//!
//! The state is the group's (time, step) entries, which merge by concatenation: the answer
//! sorts them, so it does not depend on the order states were merged in. A view keeps it as a
//! sketch (`__weir_funnel_events` for the partial query, `__weir_funnel_level` to finish); the
//! state carries the window, modes and step count, so finishing needs nothing else.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Int32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarUDF, Signature, Volatility,
    create_udf,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;

/// Most steps a funnel may have (as ClickHouse).
const MAX_STEPS: usize = 32;
/// State bytes before the entries: steps (u8), modes (u8), window in µs (i64 LE).
const HEADER: usize = 10;
/// Bytes of one entry: time in µs (i64 LE), step (u8; 0 = no step, kept in strict_order).
const ENTRY: usize = 9;

const STRICT_ORDER: u8 = 1;
const STRICT_DEDUPLICATION: u8 = 2;
const STRICT_INCREASE: u8 = 4;

/// `window_funnel` for queries, and the state aggregate views compute it through.
pub fn aggregates() -> [AggregateUDF; 2] {
    [
        AggregateUDF::new_from_impl(WindowFunnel {
            name: "window_funnel",
            output: Output::Level,
            signature: Signature::variadic_any(Volatility::Immutable),
        }),
        AggregateUDF::new_from_impl(WindowFunnel {
            name: "__weir_funnel_events",
            output: Output::Entries,
            signature: Signature::variadic_any(Volatility::Immutable),
        }),
    ]
}

/// `__weir_funnel_level(state)`: the step a merged state reached.
pub fn finish() -> ScalarUDF {
    create_udf(
        "__weir_funnel_level",
        vec![DataType::Binary],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(|args| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let states = arrays[0].as_binary::<i32>();
            let levels = (0..states.len())
                .map(|i| {
                    if states.is_null(i) {
                        return Ok(None);
                    }
                    let (funnel, entries) = decode(states.value(i))?;
                    Ok(Some(funnel.level(entries) as i32))
                })
                .collect::<Result<Int32Array>>()?;
            Ok(ColumnarValue::Array(Arc::new(levels)))
        }),
    )
}

/// Merges two states of one funnel: the entries of both.
pub fn merge(a: &[u8], b: &[u8]) -> Result<Vec<u8>> {
    if a.len() < HEADER || b.len() < HEADER {
        return exec_err!("a window_funnel state of {} bytes", a.len().min(b.len()));
    }
    let mut merged = Vec::with_capacity(a.len() + b.len() - HEADER);
    merged.extend_from_slice(a);
    merged.extend_from_slice(&b[HEADER..]);
    Ok(merged)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Output {
    /// The deepest step.
    Level,
    /// The serialized state.
    Entries,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct WindowFunnel {
    name: &'static str,
    output: Output,
    signature: Signature,
}

impl AggregateUDFImpl for WindowFunnel {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() < 3 {
            return plan_err!(
                "window_funnel takes (window, time, condition, ... [, 'mode' ...]), \
                 not {} arguments",
                arg_types.len()
            );
        }
        Ok(match self.output {
            Output::Level => DataType::Int32,
            Output::Entries => DataType::Binary,
        })
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}_entries", args.name),
            DataType::Binary,
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(FunnelAccumulator {
            funnel: Funnel::from_arguments(args.exprs)?,
            entries: Vec::new(),
            output: self.output,
        }))
    }
}

/// A funnel's definition: its steps, window and modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Funnel {
    steps: usize,
    modes: u8,
    window_us: i64,
}

impl Funnel {
    /// Reads the window (a constant `INTERVAL`) and the modes (trailing constant strings) off
    /// the call's arguments; the rest after the time are the steps.
    fn from_arguments(exprs: &[Arc<dyn PhysicalExpr>]) -> Result<Self> {
        let constant =
            |e: &Arc<dyn PhysicalExpr>| e.downcast_ref::<Literal>().map(|l| l.value().clone());
        let window_us = match exprs.first().and_then(constant) {
            Some(ScalarValue::IntervalMonthDayNano(Some(i))) if i.months == 0 => {
                i.days as i64 * 86_400_000_000 + i.nanoseconds / 1_000
            }
            Some(ScalarValue::IntervalDayTime(Some(i))) => {
                i.days as i64 * 86_400_000_000 + i.milliseconds as i64 * 1_000
            }
            other => {
                return plan_err!(
                    "window_funnel: the window must be a constant INTERVAL of days or less, \
                     not {other:?}"
                );
            }
        };
        if window_us < 0 {
            return plan_err!("window_funnel: the window must not be negative");
        }
        let mut modes = 0;
        let mut end = exprs.len();
        while end > 2 {
            match constant(&exprs[end - 1]) {
                Some(ScalarValue::Utf8(Some(mode)) | ScalarValue::LargeUtf8(Some(mode))) => {
                    modes |= match mode.as_str() {
                        "strict_order" => STRICT_ORDER,
                        "strict_deduplication" => STRICT_DEDUPLICATION,
                        "strict_increase" => STRICT_INCREASE,
                        other => {
                            return plan_err!(
                                "window_funnel: unknown mode '{other}' (strict_order, \
                                 strict_deduplication or strict_increase)"
                            );
                        }
                    };
                    end -= 1;
                }
                _ => break,
            }
        }
        let steps = end.saturating_sub(2);
        if !(1..=MAX_STEPS).contains(&steps) {
            return plan_err!("window_funnel takes 1 to {MAX_STEPS} conditions, not {steps}");
        }
        Ok(Self {
            steps,
            modes,
            window_us,
        })
    }

    fn has(&self, mode: u8) -> bool {
        self.modes & mode != 0
    }

    /// The deepest step `entries` reach (ClickHouse's algorithm: one pass in time order,
    /// remembering for each step the start and the time of the chain that reached it).
    fn level(&self, mut entries: Vec<(i64, u8)>) -> usize {
        if entries.is_empty() {
            return 0;
        }
        let strict_order = self.has(STRICT_ORDER);
        if !strict_order && self.steps == 1 {
            return 1;
        }
        entries.sort_unstable();
        let deepest = |reached: &[Option<(i64, i64)>]| {
            reached
                .iter()
                .rposition(Option::is_some)
                .map_or(0, |i| i + 1)
        };
        // Per step: (start of the chain that reached it, time it was reached).
        let mut reached: Vec<Option<(i64, i64)>> = vec![None; self.steps];
        let mut started = false;
        for (time, step) in entries {
            if step == 0 {
                // Only strict_order keeps events matching no step.
                if started {
                    break;
                }
                continue;
            }
            let step = step as usize - 1;
            if step == 0 {
                reached[0] = Some((time, time));
                started = true;
            } else if self.has(STRICT_DEDUPLICATION) && reached[step].is_some() {
                return deepest(&reached);
            } else if strict_order && started && reached[step - 1].is_none() {
                return reached
                    .iter()
                    .position(Option::is_none)
                    .unwrap_or(self.steps);
            } else if let Some((start, previous)) = reached[step - 1] {
                let in_window = time <= start.saturating_add(self.window_us);
                if in_window && (!self.has(STRICT_INCREASE) || previous < time) {
                    reached[step] = Some((start, time));
                    if step + 1 == self.steps {
                        return self.steps;
                    }
                }
            }
        }
        deepest(&reached)
    }
}

#[derive(Debug)]
struct FunnelAccumulator {
    funnel: Funnel,
    entries: Vec<(i64, u8)>,
    output: Output,
}

impl FunnelAccumulator {
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER + ENTRY * self.entries.len());
        bytes.push(self.funnel.steps as u8);
        bytes.push(self.funnel.modes);
        bytes.extend(self.funnel.window_us.to_le_bytes());
        for (time, step) in &self.entries {
            bytes.extend(time.to_le_bytes());
            bytes.push(*step);
        }
        bytes
    }
}

impl Accumulator for FunnelAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let times = cast(
            &values[1],
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )?;
        let times = times.as_primitive::<TimestampMicrosecondType>();
        let conditions = values[2..2 + self.funnel.steps]
            .iter()
            .map(|c| match c.data_type() {
                DataType::Boolean => Ok(c.as_boolean()),
                other => exec_err!("window_funnel: a condition of type {other}, not boolean"),
            })
            .collect::<Result<Vec<_>>>()?;
        for row in 0..times.len() {
            if times.is_null(row) {
                continue;
            }
            let time = times.value(row);
            let mut matched = false;
            for (step, condition) in conditions.iter().enumerate() {
                if condition.is_valid(row) && condition.value(row) {
                    self.entries.push((time, step as u8 + 1));
                    matched = true;
                }
            }
            if !matched && self.funnel.has(STRICT_ORDER) {
                self.entries.push((time, 0));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(match self.output {
            Output::Level => {
                ScalarValue::Int32(Some(self.funnel.level(self.entries.clone()) as i32))
            }
            Output::Entries => ScalarValue::Binary(Some(self.encode())),
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.entries.capacity() * std::mem::size_of::<(i64, u8)>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Binary(Some(self.encode()))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let states: &BinaryArray = states[0].as_binary::<i32>();
        for state in states.iter().flatten() {
            let (_, entries) = decode(state)?;
            self.entries.extend(entries);
        }
        Ok(())
    }
}

/// A serialized state's funnel and entries.
fn decode(bytes: &[u8]) -> Result<(Funnel, Vec<(i64, u8)>)> {
    if bytes.len() < HEADER || !(bytes.len() - HEADER).is_multiple_of(ENTRY) {
        return exec_err!("a window_funnel state of {} bytes", bytes.len());
    }
    let funnel = Funnel {
        steps: bytes[0] as usize,
        modes: bytes[1],
        window_us: i64::from_le_bytes(bytes[2..HEADER].try_into().expect("8 bytes")),
    };
    let entries = bytes[HEADER..]
        .chunks_exact(ENTRY)
        .map(|e| {
            (
                i64::from_le_bytes(e[..8].try_into().expect("8 bytes")),
                e[8],
            )
        })
        .collect();
    Ok((funnel, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The level of events given as (time s, steps matched), in `modes`, window `window` s.
    fn level(window: i64, steps: usize, modes: u8, events: &[(i64, &[u8])]) -> usize {
        let funnel = Funnel {
            steps,
            modes,
            window_us: window * 1_000_000,
        };
        let mut entries = Vec::new();
        for (time, matched) in events {
            for step in *matched {
                entries.push((time * 1_000_000, *step));
            }
            if matched.is_empty() && modes & STRICT_ORDER != 0 {
                entries.push((time * 1_000_000, 0));
            }
        }
        funnel.level(entries)
    }

    #[test]
    fn follows_clickhouse_in_every_mode() {
        // A-B-C-B-D within the window.
        let abcbd: &[(i64, &[u8])] = &[(1, &[1]), (2, &[2]), (3, &[3]), (4, &[2]), (5, &[4])];
        assert_eq!(level(10, 4, 0, abcbd), 4);
        assert_eq!(level(10, 4, STRICT_DEDUPLICATION, abcbd), 3, "B repeats");
        // A-B-D-C: strict_order stops at D, the step after B missing.
        let abdc: &[(i64, &[u8])] = &[(1, &[1]), (2, &[2]), (3, &[4]), (4, &[3])];
        assert_eq!(level(10, 4, 0, abdc), 3);
        assert_eq!(level(10, 4, STRICT_ORDER, abdc), 2);
        // An event matching no step ends a strict_order chain.
        let gap: &[(i64, &[u8])] = &[(1, &[1]), (2, &[]), (3, &[2])];
        assert_eq!(level(10, 2, STRICT_ORDER, gap), 1);
        assert_eq!(level(10, 2, 0, gap), 2);
        // One event may fill several steps, but not under strict_increase.
        let both: &[(i64, &[u8])] = &[(1, &[1, 2])];
        assert_eq!(level(10, 2, 0, both), 2);
        assert_eq!(level(10, 2, STRICT_INCREASE, both), 1);
        // The window is inclusive and counts from the chain's start.
        let spread: &[(i64, &[u8])] = &[(0, &[1]), (5, &[2]), (10, &[3]), (11, &[3])];
        assert_eq!(level(10, 3, 0, spread), 3);
        assert_eq!(level(9, 3, 0, spread), 2);
        assert_eq!(level(10, 3, 0, &[]), 0);
    }
}
