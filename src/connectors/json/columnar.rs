//! The fast path: a whole body decoded straight into columns by arrow-json's tape decoder.
//!
//! The decoder reads each column in a type whose arrow-json reading accepts no more than the
//! per-event path does, and the result is then checked and converted: integers arrive as
//! `Float64` and must be whole (and exact, within 2^53); timestamps arrive as text, so an
//! epoch-millisecond number fails here and is read right by the per-event path; columns the
//! fast path does not decode (numeric, json, bytea, date, interval) must be absent. Keys must
//! be the columns' own names (strict mode), NOT NULL columns must be filled, and each slice of
//! the body must hold exactly one event. Any failure means "take the per-event path", never an
//! error of its own.

use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::cast_utils::string_to_datetime;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};
use datafusion::arrow::json::ReaderBuilder;
use weir_catalog::{ColumnType, SourceDef};

use super::Framing;
use super::slices::event_slices;
use crate::connectors::enrich::{CLIENT_IP_COLUMN, DEVICE_COLUMN, Enrichment};

/// Integers from this magnitude up may have been rounded on their way into `Float64`
/// (2^53 + 1 reads as 2^53): the per-event path reads them exactly.
const MAX_EXACT_INTEGER: f64 = (1u64 << 53) as f64;

/// How one column is read and then turned into its declared type.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// Read in the declared type (text, boolean, double).
    Direct,
    /// Read as `Float64`, then narrowed.
    Float32,
    /// Read as `Float64`, then checked whole and in range.
    Integer(ColumnType),
    /// Read as text, then parsed like the per-event path parses timestamps.
    Timestamp,
    /// Not decoded here: the column must be absent or null in every event.
    AbsentOnly,
}

/// Decodes bodies for one source on the fast path.
#[derive(Debug)]
pub struct ColumnarDecoder {
    /// What arrow-json reads: the declared names, each in its plan's reading type.
    reading: SchemaRef,
    /// The declared columns, as the batch must come out.
    declared: SchemaRef,
    plans: Vec<Plan>,
    required: Vec<bool>,
    client_ip: Option<usize>,
    device: Option<usize>,
}

impl ColumnarDecoder {
    /// A decoder for `def`.
    pub fn new(def: &SourceDef) -> Self {
        let full = def.arrow_schema();
        let declared = Arc::new(
            full.project(&(0..def.columns.len()).collect::<Vec<_>>())
                .expect("declared columns lead"),
        );
        let plans: Vec<Plan> = def
            .columns
            .iter()
            .map(|c| match c.ty {
                ColumnType::Text | ColumnType::Boolean | ColumnType::Float64 => Plan::Direct,
                ColumnType::Float32 => Plan::Float32,
                ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 => Plan::Integer(c.ty),
                ColumnType::Timestamp | ColumnType::TimestampTz => Plan::Timestamp,
                ColumnType::Numeric { .. }
                | ColumnType::Json
                | ColumnType::Jsonb
                | ColumnType::Bytea
                | ColumnType::Date
                | ColumnType::Interval
                | ColumnType::BooleanArray => Plan::AbsentOnly,
            })
            .collect();
        let reading = Arc::new(Schema::new(
            declared
                .fields()
                .iter()
                .zip(&plans)
                .map(|(field, plan)| {
                    let ty = match plan {
                        Plan::Direct => field.data_type().clone(),
                        Plan::Float32 | Plan::Integer(_) => DataType::Float64,
                        Plan::Timestamp => DataType::Utf8,
                        Plan::AbsentOnly => DataType::Null,
                    };
                    Field::new(field.name(), ty, true)
                })
                .collect::<Vec<_>>(),
        ));
        let text_column = |name: &str| {
            def.columns
                .iter()
                .position(|c| c.name == name && c.ty == ColumnType::Text)
        };
        Self {
            reading,
            declared,
            plans,
            required: def.columns.iter().map(|c| !c.nullable).collect(),
            client_ip: text_column(CLIENT_IP_COLUMN),
            device: text_column(DEVICE_COLUMN),
        }
    }

    /// The events of `body` as one batch of the declared columns, enriched; `None` when any
    /// event needs the per-event path.
    pub fn decode(
        &self,
        body: &[u8],
        framing: Framing,
        enrichment: &Enrichment,
    ) -> Option<RecordBatch> {
        let slices = event_slices(body, framing)?;
        if slices.is_empty() {
            return None;
        }
        let mut decoder = ReaderBuilder::new(self.reading.clone())
            .with_strict_mode(true)
            .with_batch_size(slices.len() + 1)
            .build_decoder()
            .ok()?;
        for (i, slice) in slices.iter().enumerate() {
            decoder.decode(slice).ok()?;
            if decoder.len() != i + 1 || decoder.has_partial_record() {
                return None;
            }
        }
        let read = decoder.flush().ok()??;
        let mut columns = Vec::with_capacity(self.plans.len());
        for (i, plan) in self.plans.iter().enumerate() {
            let column = self.convert(i, *plan, read.column(i))?;
            if self.required[i] && column.null_count() > 0 {
                return None;
            }
            columns.push(column);
        }
        for (column, value) in [
            (self.client_ip, enrichment.client_ip.as_deref()),
            (self.device, enrichment.device),
        ] {
            if let (Some(i), Some(value)) = (column, value) {
                columns[i] = fill_nulls(&columns[i], value);
            }
        }
        RecordBatch::try_new(self.declared.clone(), columns).ok()
    }

    fn convert(&self, i: usize, plan: Plan, read: &ArrayRef) -> Option<ArrayRef> {
        let declared = self.declared.field(i).data_type();
        Some(match plan {
            Plan::Direct => {
                if read.data_type() == &DataType::Float64
                    && read
                        .as_primitive::<Float64Type>()
                        .iter()
                        .flatten()
                        .any(|f| !f.is_finite())
                {
                    return None;
                }
                read.clone()
            }
            Plan::Float32 => {
                let floats = read.as_primitive::<Float64Type>();
                if floats.iter().flatten().any(|f| !f.is_finite()) {
                    return None;
                }
                cast(read, declared).ok()?
            }
            Plan::Integer(ty) => integers(read.as_primitive::<Float64Type>(), ty)?,
            Plan::Timestamp => {
                let micros: TimestampMicrosecondArray = read
                    .as_string::<i32>()
                    .iter()
                    .map(|text| match text {
                        None => Ok(None),
                        Some(text) => string_to_datetime(&Utc, text)
                            .map(|t| Some(t.timestamp_micros()))
                            .map_err(|_| ()),
                    })
                    .collect::<Result<_, ()>>()
                    .ok()?;
                match declared {
                    DataType::Timestamp(_, Some(tz)) => Arc::new(micros.with_timezone(tz.clone())),
                    _ => Arc::new(micros),
                }
            }
            Plan::AbsentOnly => new_null_array(declared, read.len()),
        })
    }
}

/// Whole floats that were surely exact, narrowed to `ty`; `None` if any is not.
fn integers(floats: &datafusion::arrow::array::Float64Array, ty: ColumnType) -> Option<ArrayRef> {
    let (lo, hi) = match ty {
        ColumnType::Int16 => (i16::MIN as f64, i16::MAX as f64),
        ColumnType::Int32 => (i32::MIN as f64, i32::MAX as f64),
        _ => (-MAX_EXACT_INTEGER + 1.0, MAX_EXACT_INTEGER - 1.0),
    };
    let whole: Vec<Option<i64>> = floats
        .iter()
        .map(|f| match f {
            None => Some(None),
            Some(f) if f.fract() == 0.0 && f >= lo && f <= hi => Some(Some(f as i64)),
            Some(_) => None,
        })
        .collect::<Option<_>>()?;
    Some(match ty {
        ColumnType::Int16 => Arc::new(
            whole
                .into_iter()
                .map(|v| v.map(|v| v as i16))
                .collect::<Int16Array>(),
        ),
        ColumnType::Int32 => Arc::new(
            whole
                .into_iter()
                .map(|v| v.map(|v| v as i32))
                .collect::<Int32Array>(),
        ),
        _ => Arc::new(whole.into_iter().collect::<Int64Array>()),
    })
}

/// A text column with its nulls replaced by `value`.
fn fill_nulls(column: &ArrayRef, value: &str) -> ArrayRef {
    if column.null_count() == 0 {
        return column.clone();
    }
    Arc::new(
        column
            .as_string::<i32>()
            .iter()
            .map(|v| Some(v.unwrap_or(value)))
            .collect::<StringArray>(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use weir_catalog::UnknownFields;

    use super::*;
    use crate::connectors::json::{BadJson, EventDecoder};

    fn source(with_properties: bool) -> SourceDef {
        let mut columns = vec![
            ("event_id", ColumnType::Text, true),
            ("event_name", ColumnType::Text, false),
            ("n", ColumnType::Int32, true),
            ("big", ColumnType::Int64, true),
            ("ts", ColumnType::TimestampTz, false),
            ("amount", ColumnType::Float64, true),
            ("ratio", ColumnType::Float32, true),
            ("ok", ColumnType::Boolean, true),
            ("device", ColumnType::Text, true),
            ("client_ip", ColumnType::Text, true),
        ];
        if with_properties {
            columns.push(("properties", ColumnType::Jsonb, true));
        }
        super::super::test_source(&columns, UnknownFields::Reject)
    }

    /// A deterministic stream of choices (an LCG is plenty to vary test events).
    struct Choices(u64);

    impl Choices {
        fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            options[(self.0 >> 33) as usize % options.len()]
        }
    }

    impl Choices {
        /// One of `usual`, or now and then one of `odd`.
        fn field<'a>(&mut self, usual: &[&'a str], odd: &[&'a str]) -> &'a str {
            if self.pick(&[
                "odd", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
            ]) == "odd"
            {
                self.pick(odd)
            } else {
                self.pick(usual)
            }
        }
    }

    /// One event: mostly plain, now and then one of the ways events go wrong or need the
    /// per-event path.
    fn event(c: &mut Choices) -> String {
        let fields = [
            c.field(
                &[r#""event_id":"e1""#, r#""event_id":"e2""#, ""],
                &[r#""event_id":5"#, r#""eventId":"e3""#],
            ),
            c.field(
                &[r#""event_name":"click""#, r#""event_name":"view""#],
                &[r#""event_name":null"#, ""],
            ),
            c.field(
                &[r#""n":7"#, r#""n":-3"#, ""],
                &[r#""n":7.0"#, r#""n":"12""#, r#""n":7.5"#, r#""n":1e12"#],
            ),
            c.field(
                &[r#""big":-5"#, ""],
                &[r#""big":9007199254740993"#, r#""big":"77""#, r#""big":1e3"#],
            ),
            c.field(
                &[
                    r#""ts":"2026-05-03T10:00:00Z""#,
                    r#""ts":"2026-05-03 10:00:00.123456+02:00""#,
                    r#""ts":"2026-05-03T10:00:00.5Z""#,
                ],
                &[
                    r#""ts":1777800000000"#,
                    r#""timestamp":"2026-05-03T10:00:00Z""#,
                    r#""ts":"yesterday""#,
                ],
            ),
            c.field(
                &[r#""amount":49.99"#, r#""amount":3"#, ""],
                &[
                    r#""amount":"49.99""#,
                    r#""amount":"lots""#,
                    r#""amount":true"#,
                ],
            ),
            c.field(
                &[r#""ratio":0.5"#, ""],
                &[r#""ratio":1e40"#, r#""ratio":"0.25""#],
            ),
            c.field(&[r#""ok":true"#, r#""ok":false"#, ""], &[r#""ok":"true""#]),
            c.field(&["", r#""device":"tv""#], &[r#""client_ip":"1.2.3.4""#]),
            c.field(
                &[""],
                &[
                    r#""colour":"red""#,
                    r#""properties":{"amount":3}"#,
                    r#""properties":null"#,
                ],
            ),
        ];
        let body: Vec<&str> = fields.into_iter().filter(|f| !f.is_empty()).collect();
        match c.field(&["object"], &["object", "array", "null"]) {
            "array" => "[1,2]".into(),
            "null" => "null".into(),
            _ => format!("{{{}}}", body.join(",")),
        }
    }

    fn per_event(
        def: &SourceDef,
        events: &[String],
        enrichment: &Enrichment,
    ) -> super::super::Decoded {
        let values = events
            .iter()
            .map(|e| {
                serde_json::from_str::<Value>(e).map_err(|err| BadJson {
                    raw: e.clone(),
                    reason: err.to_string(),
                })
            })
            .collect();
        EventDecoder::new(Arc::new(def.clone())).decode(values, enrichment)
    }

    #[test]
    fn fast_path_yields_what_the_per_event_path_does_or_steps_aside() {
        let enrichment = Enrichment {
            client_ip: Some("10.0.0.1".into()),
            device: Some("mobile"),
        };
        let mut choices = Choices(7);
        for with_properties in [false, true] {
            let def = source(with_properties);
            let fast = ColumnarDecoder::new(&def);
            let (mut taken, mut clean) = (0, 0);
            for _ in 0..3000 {
                let events: Vec<String> =
                    (0..1 + choices.pick(&["1", "2", "3"]).parse::<usize>().unwrap())
                        .map(|_| event(&mut choices))
                        .collect();
                let (body, framing) = match choices.pick(&["ndjson", "array"]) {
                    "ndjson" => (events.join("\n"), Framing::NdJson),
                    _ => (format!("[{}]", events.join(",")), Framing::Json),
                };
                let slow = per_event(&def, &events, &enrichment);
                clean += slow.rejects.is_empty() as usize;
                if let Some(batch) = fast.decode(body.as_bytes(), framing, &enrichment) {
                    taken += 1;
                    assert!(
                        slow.rejects.is_empty(),
                        "fast path took {body}: {:?}",
                        slow.rejects
                    );
                    assert_eq!(batch, slow.batch, "{body}");
                }
            }
            assert!(
                taken > 0 && clean > taken,
                "fast path took {taken} of {clean} clean bodies"
            );
        }
    }

    #[test]
    fn fast_path_takes_plain_events() {
        let def = source(true);
        let body = "{\"event_name\":\"click\",\"ts\":\"2026-05-03T10:00:00Z\",\"n\":3}\n\
                    {\"event_name\":\"view\",\"ts\":\"2026-05-03T10:00:01Z\",\"amount\":1.5}\n";
        let batch = ColumnarDecoder::new(&def)
            .decode(body.as_bytes(), Framing::NdJson, &Enrichment::default())
            .expect("plain events take the fast path");
        assert_eq!(batch.num_rows(), 2);
        let not_plain = "{\"eventName\":\"click\",\"ts\":\"2026-05-03T10:00:00Z\"}";
        assert!(
            ColumnarDecoder::new(&def)
                .decode(not_plain.as_bytes(), Framing::Json, &Enrichment::default())
                .is_none()
        );
    }
}
