//! Values in the text format as Postgres writes them, where pgwire writes other forms: floats
//! ([`float`]) and dates, times, timestamps and intervals ([`datetime`]). Before a batch is
//! encoded, each such column a client reads as text becomes a string column of Postgres' text;
//! arrow-pg picks each value's encoder by the batch's Arrow type and the wire type by the
//! field descriptions, which still name the original type, so the client sees Postgres' type
//! and Postgres' text. Binary columns are left alone.

mod datetime;
mod float;

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType,
    DurationSecondType, Float32Type, Float64Type, IntervalDayTimeType, IntervalMonthDayNanoType,
    IntervalUnit, IntervalYearMonthType, Schema, SchemaRef, Time32MillisecondType,
    Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::types::format::FormatOptions;

pub use datetime::Zone;
pub use float::{float4_text, float8_text};

/// Which of Postgres' text forms a session's settings ask for.
#[derive(Debug, Clone, Copy)]
pub struct TextStyle {
    /// Shortest round-trip floats: `extra_float_digits >= 1` (below, pgwire rounds to fewer
    /// digits as Postgres does).
    floats: bool,
    /// `DateStyle` ISO (pgwire writes the other styles).
    datetimes: bool,
    /// `IntervalStyle` postgres (pgwire writes the other styles).
    intervals: bool,
    /// The session's `TimeZone`, UTC when Weir does not know the name.
    zone: Zone,
}

impl TextStyle {
    /// The forms `options` (the session's settings) ask for.
    pub fn new(options: &FormatOptions) -> Self {
        Self {
            floats: options.extra_float_digits >= 1,
            datetimes: options
                .date_style
                .trim_start()
                .get(..3)
                .is_some_and(|s| s.eq_ignore_ascii_case("iso")),
            intervals: options.interval_style.eq_ignore_ascii_case("postgres"),
            zone: Zone::from_setting(&options.time_zone)
                .or_else(|| Zone::from_setting("UTC"))
                .expect("UTC is a zone"),
        }
    }

    /// `batch` with each column that `fields` sends as text, and whose Postgres text differs
    /// from pgwire's, turned into that text.
    pub fn apply(&self, batch: RecordBatch, fields: &[FieldInfo]) -> RecordBatch {
        let is_text = |i: usize| {
            fields
                .get(i)
                .is_some_and(|f| f.format() == FieldFormat::Text)
        };
        let rewritten: Vec<Option<StringArray>> = batch
            .columns()
            .iter()
            .enumerate()
            .map(|(i, column)| is_text(i).then(|| self.text(column)).flatten())
            .collect();
        if rewritten.iter().all(Option::is_none) {
            return batch;
        }
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .zip(rewritten)
            .map(|(column, text)| match text {
                Some(text) => Arc::new(text) as ArrayRef,
                None => column.clone(),
            })
            .collect();
        RecordBatch::try_new(text_schema(&batch, &columns), columns)
            .expect("the same rows, with some columns as their text")
    }

    /// `column` as Postgres' text, if pgwire would write it otherwise.
    fn text(&self, column: &ArrayRef) -> Option<StringArray> {
        let zone = self.zone;
        Some(match column.data_type() {
            DataType::Float64 if self.floats => {
                map(column.as_primitive::<Float64Type>(), float8_text)
            }
            DataType::Float32 if self.floats => {
                map(column.as_primitive::<Float32Type>(), float4_text)
            }
            DataType::Timestamp(unit, zoned) if self.datetimes => {
                let micros = timestamp_micros(column, unit);
                match zoned {
                    None => micros
                        .iter()
                        .map(|v| v.map(datetime::timestamp_text))
                        .collect(),
                    Some(_) => micros
                        .iter()
                        .map(|v| v.map(|v| datetime::timestamptz_text(v, zone)))
                        .collect(),
                }
            }
            DataType::Date32 if self.datetimes => {
                map(column.as_primitive::<Date32Type>(), datetime::date_text)
            }
            DataType::Time64(TimeUnit::Microsecond) if self.datetimes => map(
                column.as_primitive::<Time64MicrosecondType>(),
                datetime::time_text,
            ),
            DataType::Time64(TimeUnit::Nanosecond) if self.datetimes => {
                map(column.as_primitive::<Time64NanosecondType>(), |v| {
                    datetime::time_text(datetime::nanos_to_micros(v))
                })
            }
            DataType::Time32(TimeUnit::Second) if self.datetimes => {
                map(column.as_primitive::<Time32SecondType>(), |v| {
                    datetime::time_text(i64::from(v) * 1_000_000)
                })
            }
            DataType::Time32(TimeUnit::Millisecond) if self.datetimes => {
                map(column.as_primitive::<Time32MillisecondType>(), |v| {
                    datetime::time_text(i64::from(v) * 1_000)
                })
            }
            DataType::Interval(IntervalUnit::MonthDayNano) if self.intervals => {
                map(column.as_primitive::<IntervalMonthDayNanoType>(), |v| {
                    datetime::interval_text(
                        v.months,
                        v.days,
                        datetime::nanos_to_micros(v.nanoseconds),
                    )
                })
            }
            DataType::Interval(IntervalUnit::YearMonth) if self.intervals => {
                map(column.as_primitive::<IntervalYearMonthType>(), |months| {
                    datetime::interval_text(months, 0, 0)
                })
            }
            DataType::Interval(IntervalUnit::DayTime) if self.intervals => {
                map(column.as_primitive::<IntervalDayTimeType>(), |v| {
                    datetime::interval_text(0, v.days, i64::from(v.milliseconds) * 1_000)
                })
            }
            DataType::Duration(unit) if self.intervals => {
                let micros: Vec<Option<i64>> = match unit {
                    TimeUnit::Second => {
                        scaled(column.as_primitive::<DurationSecondType>(), 1_000_000)
                    }
                    TimeUnit::Millisecond => {
                        scaled(column.as_primitive::<DurationMillisecondType>(), 1_000)
                    }
                    TimeUnit::Microsecond => {
                        scaled(column.as_primitive::<DurationMicrosecondType>(), 1)
                    }
                    TimeUnit::Nanosecond => column
                        .as_primitive::<DurationNanosecondType>()
                        .iter()
                        .map(|v| v.map(datetime::nanos_to_micros))
                        .collect(),
                };
                micros
                    .into_iter()
                    .map(|v| v.map(datetime::duration_text))
                    .collect()
            }
            _ => return None,
        })
    }
}

fn map<T, F>(array: &datafusion::arrow::array::PrimitiveArray<T>, text: F) -> StringArray
where
    T: datafusion::arrow::datatypes::ArrowPrimitiveType,
    F: Fn(T::Native) -> String,
{
    array.iter().map(|v| v.map(&text)).collect()
}

fn scaled<T>(array: &datafusion::arrow::array::PrimitiveArray<T>, factor: i64) -> Vec<Option<i64>>
where
    T: datafusion::arrow::datatypes::ArrowPrimitiveType<Native = i64>,
{
    array
        .iter()
        .map(|v| v.map(|v| v.saturating_mul(factor)))
        .collect()
}

/// A timestamp column's values in microseconds (nanoseconds rounded as Postgres rounds input).
fn timestamp_micros(column: &ArrayRef, unit: &TimeUnit) -> Vec<Option<i64>> {
    match unit {
        TimeUnit::Second => scaled(column.as_primitive::<TimestampSecondType>(), 1_000_000),
        TimeUnit::Millisecond => scaled(column.as_primitive::<TimestampMillisecondType>(), 1_000),
        TimeUnit::Microsecond => scaled(column.as_primitive::<TimestampMicrosecondType>(), 1),
        TimeUnit::Nanosecond => column
            .as_primitive::<TimestampNanosecondType>()
            .iter()
            .map(|v| v.map(datetime::nanos_to_micros))
            .collect(),
    }
}

/// `batch`'s schema with each column typed as in `columns`.
fn text_schema(batch: &RecordBatch, columns: &[ArrayRef]) -> SchemaRef {
    let fields: Vec<_> = batch
        .schema()
        .fields()
        .iter()
        .zip(columns)
        .map(|(field, column)| {
            field
                .as_ref()
                .clone()
                .with_data_type(column.data_type().clone())
        })
        .collect();
    Arc::new(Schema::new(fields))
}
