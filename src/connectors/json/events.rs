//! The per-event path: JSON events, parsed one by one, -> an Arrow batch of a source's
//! declared columns, and a rejection (index, field, reason, raw payload) for every event that
//! does not fit.
//!
//! The field mapping, documented in `docs/ingestion.md`: a column `event_id` takes the key
//! `event_id` or its camelCase `eventId`; a column not found at the top level is looked up
//! inside a nested `properties` object (`properties.amount` -> `amount`); the watermark column
//! also takes the key `timestamp`. Timestamps are RFC 3339 strings or epoch milliseconds.
//! Fields no column takes go into the source's first `json`/`jsonb` column when it has one,
//! else are refused or ignored per `unknown_fields`. Numeric columns also take a string
//! holding a number (`"49.99"`), and integer columns a number with no fractional part (`12.0`).

use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::kernels::cast_utils::string_to_datetime;
use datafusion::arrow::datatypes::SchemaRef;
use serde_json::{Map, Value};
use weir_catalog::{ColumnType, SourceDef, UnknownFields};

use crate::connectors::enrich::{CLIENT_IP_COLUMN, DEVICE_COLUMN, Enrichment};

/// The nested object whose fields may fill columns.
const NESTED: &str = "properties";

/// One event refused, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reject {
    /// Position of the event in the request (0-based).
    pub index: usize,
    /// The field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong.
    pub reason: String,
    /// The event as received (re-serialized when it was valid JSON), for the dead-letter table.
    #[serde(skip)]
    pub payload: String,
}

/// An event that is not valid JSON: its text and the parser's complaint.
#[derive(Debug, Clone, PartialEq)]
pub struct BadJson {
    /// The event's text.
    pub raw: String,
    /// What the parser said.
    pub reason: String,
}

impl BadJson {
    /// Parses one event's text, or says why it is not JSON.
    pub fn parse(text: &[u8]) -> Result<Value, Self> {
        serde_json::from_slice(text).map_err(|e| Self {
            raw: String::from_utf8_lossy(text).into_owned(),
            reason: format!("malformed JSON: {e}"),
        })
    }
}

/// The accepted events of a request as one batch, and the refused ones.
#[derive(Debug)]
pub struct Decoded {
    /// Declared columns of the accepted events, in request order.
    pub batch: RecordBatch,
    /// Refused events.
    pub rejects: Vec<Reject>,
}

/// A typed value on its way into a column.
#[derive(Debug, Clone)]
enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Micros(i64),
    Days(i32),
    Decimal(i128),
    Bytes(Vec<u8>),
}

/// Decodes events for one source.
#[derive(Debug)]
pub struct EventDecoder {
    def: Arc<SourceDef>,
    schema: SchemaRef,
    /// For each column, the keys that fill it, in order of preference.
    keys: Vec<Vec<String>>,
    /// The column that collects fields no column takes.
    overflow: Option<usize>,
    /// The `client_ip` and `device` columns, when declared as text.
    client_ip: Option<usize>,
    device: Option<usize>,
}

impl EventDecoder {
    /// A decoder for `def`.
    pub fn new(def: Arc<SourceDef>) -> Self {
        let full = def.arrow_schema();
        let schema = Arc::new(
            full.project(&(0..def.columns.len()).collect::<Vec<_>>())
                .expect("declared columns lead"),
        );
        let event_time = def.watermark.as_ref().map(|w| w.column.as_str());
        let keys = def
            .columns
            .iter()
            .map(|c| {
                let mut keys = vec![c.name.clone()];
                let camel = camel_case(&c.name);
                if camel != c.name {
                    keys.push(camel);
                }
                if Some(c.name.as_str()) == event_time {
                    keys.push("timestamp".into());
                }
                keys
            })
            .collect();
        let overflow = def
            .columns
            .iter()
            .position(|c| matches!(c.ty, ColumnType::Json | ColumnType::Jsonb));
        let text_column = |name: &str| {
            def.columns
                .iter()
                .position(|c| c.name == name && c.ty == ColumnType::Text)
        };
        let client_ip = text_column(CLIENT_IP_COLUMN);
        let device = text_column(DEVICE_COLUMN);
        Self {
            def,
            schema,
            keys,
            overflow,
            client_ip,
            device,
        }
    }

    /// Decodes `events`; an `Err` entry is an event that was not valid JSON.
    pub fn decode(&self, events: Vec<Result<Value, BadJson>>, enrichment: &Enrichment) -> Decoded {
        let mut rows: Vec<Vec<Cell>> = Vec::with_capacity(events.len());
        let mut rejects = Vec::new();
        for (index, event) in events.into_iter().enumerate() {
            match event {
                Ok(value) => match self.row(&value) {
                    Ok(mut row) => {
                        self.enrich(&mut row, enrichment);
                        rows.push(row)
                    }
                    Err((field, reason)) => rejects.push(Reject {
                        index,
                        field,
                        reason,
                        payload: value.to_string(),
                    }),
                },
                Err(bad) => rejects.push(Reject {
                    index,
                    field: None,
                    reason: bad.reason,
                    payload: bad.raw,
                }),
            }
        }
        let columns: Vec<ArrayRef> = self
            .def
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| build(c.ty, rows.iter().map(|r| &r[i])))
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .expect("cells match their column types");
        Decoded { batch, rejects }
    }

    fn row(&self, value: &Value) -> Result<Vec<Cell>, (Option<String>, String)> {
        let Value::Object(object) = value else {
            return Err((
                None,
                format!("an event must be a JSON object, not {}", kind(value)),
            ));
        };
        let nested = match object.get(NESTED) {
            Some(Value::Object(nested)) => Some(nested),
            _ => None,
        };
        let mut consumed: Vec<&str> = Vec::with_capacity(self.keys.len());
        let mut nested_used = false;
        let mut taken: Vec<Option<Value>> = Vec::with_capacity(self.def.columns.len());
        for keys in &self.keys {
            let top = keys.iter().find_map(|k| object.get_key_value(k.as_str()));
            let value = match top {
                Some((key, v)) => {
                    consumed.push(key.as_str());
                    Some(v)
                }
                None => {
                    let v = nested.and_then(|n| keys.iter().find_map(|k| n.get(k.as_str())));
                    nested_used |= v.is_some();
                    v
                }
            };
            taken.push(value.cloned());
        }
        if nested_used && !self.has_column(NESTED) {
            // The nested object only fed columns: it is not an unknown field.
            consumed.push(NESTED);
        }
        let mut unknown = object
            .iter()
            .filter(|(k, _)| !consumed.contains(&k.as_str()))
            .peekable();
        if unknown.peek().is_some() {
            match (self.overflow, self.def.options.unknown_fields) {
                (Some(i), _) => {
                    let extra = unknown.map(|(k, v)| (k.clone(), v.clone())).collect();
                    taken[i] = Some(merge(taken[i].take(), extra));
                }
                (None, UnknownFields::Ignore) => {}
                (None, UnknownFields::Reject) => {
                    let field = unknown.next().expect("peeked").0.clone();
                    return Err((
                        Some(field.clone()),
                        format!("unknown field \"{field}\" (the source has no column for it)"),
                    ));
                }
            }
        }
        let mut row = Vec::with_capacity(self.def.columns.len());
        for (column, value) in self.def.columns.iter().zip(taken) {
            let cell = match value {
                None | Some(Value::Null) => Cell::Null,
                Some(value) => convert(column.ty, value)
                    .map_err(|reason| (Some(column.name.clone()), reason))?,
            };
            if matches!(cell, Cell::Null) && !column.nullable {
                return Err((
                    Some(column.name.clone()),
                    format!("missing required field \"{}\"", column.name),
                ));
            }
            row.push(cell);
        }
        Ok(row)
    }

    /// Fills the enrichment columns the event left empty.
    fn enrich(&self, row: &mut [Cell], enrichment: &Enrichment) {
        let fills = [
            (self.client_ip, enrichment.client_ip.as_deref()),
            (self.device, enrichment.device),
        ];
        for (column, value) in fills {
            if let (Some(i), Some(value)) = (column, value)
                && matches!(row[i], Cell::Null)
            {
                row[i] = Cell::Text(value.to_string());
            }
        }
    }

    fn has_column(&self, name: &str) -> bool {
        self.def.columns.iter().any(|c| c.name == name)
    }
}

fn merge(existing: Option<Value>, extra: Map<String, Value>) -> Value {
    match existing {
        Some(Value::Object(mut object)) => {
            for (k, v) in extra {
                object.entry(k).or_insert(v);
            }
            Value::Object(object)
        }
        None | Some(Value::Null) => Value::Object(extra),
        Some(other) => other,
    }
}

/// `event_id` -> `eventId`.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn convert(ty: ColumnType, value: Value) -> Result<Cell, String> {
    let expected = |what: &str| format!("expected {what}, got {}", kind(&value));
    Ok(match ty {
        ColumnType::Boolean => Cell::Bool(value.as_bool().ok_or_else(|| expected("a boolean"))?),
        ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 => {
            let n = integer(&value).ok_or_else(|| expected("an integer"))?;
            let (lo, hi) = match ty {
                ColumnType::Int16 => (i16::MIN as i64, i16::MAX as i64),
                ColumnType::Int32 => (i32::MIN as i64, i32::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            if n < lo || n > hi {
                return Err(format!("{n} is out of range for {}", ty.sql_name()));
            }
            Cell::Int(n)
        }
        ColumnType::Float32 | ColumnType::Float64 => {
            Cell::Float(float(&value).ok_or_else(|| expected("a number"))?)
        }
        ColumnType::Numeric { precision, scale } => {
            let text = match &value {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return Err(expected("a number")),
            };
            Cell::Decimal(parse_decimal(&text, precision, scale)?)
        }
        ColumnType::Text => match value {
            Value::String(s) => Cell::Text(s),
            _ => return Err(expected("a string")),
        },
        ColumnType::Json | ColumnType::Jsonb => Cell::Text(value.to_string()),
        ColumnType::Bytea => match value {
            Value::String(s) => {
                Cell::Bytes(crate::query::parse_bytea(&s).map_err(|e| e.to_string())?)
            }
            _ => return Err(expected("a string")),
        },
        ColumnType::Timestamp | ColumnType::TimestampTz => Cell::Micros(timestamp_micros(&value)?),
        ColumnType::Date => match &value {
            Value::String(s) => {
                let date = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|e| format!("invalid date \"{s}\": {e}"))?;
                let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
                Cell::Days((date - epoch).num_days() as i32)
            }
            _ => return Err(expected("a date string (YYYY-MM-DD)")),
        },
        ColumnType::Interval => {
            return Err("interval fields are not accepted in JSON events".into());
        }
        ColumnType::BooleanArray => {
            return Err("array fields are not accepted in JSON events".into());
        }
    })
}

/// A finite number, or a string holding one.
fn float(value: &Value) -> Option<f64> {
    let f = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    f.is_finite().then_some(f)
}

/// An integer: a number without a fractional part, or a string holding one.
fn integer(value: &Value) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    if let Value::String(s) = value
        && let Ok(n) = s.parse()
    {
        return Some(n);
    }
    let f = float(value)?;
    // `as` saturates: bounds keep values outside i64 from landing on its ends.
    (f.fract() == 0.0 && f >= -(2f64.powi(63)) && f < 2f64.powi(63)).then_some(f as i64)
}

/// RFC 3339 (or `YYYY-MM-DD HH:MM:SS[.f][offset]`) strings, or epoch milliseconds.
fn timestamp_micros(value: &Value) -> Result<i64, String> {
    match value {
        Value::Number(n) => {
            let ms = n
                .as_i64()
                .ok_or_else(|| format!("epoch milliseconds must be an integer, got {n}"))?;
            ms.checked_mul(1000)
                .ok_or_else(|| format!("timestamp {ms} is out of range"))
        }
        Value::String(s) => string_to_datetime(&Utc, s)
            .map(|t| t.timestamp_micros())
            .map_err(|_| format!("invalid timestamp \"{s}\" (use RFC 3339 or epoch milliseconds)")),
        other => Err(format!("expected a timestamp, got {}", kind(other))),
    }
}

fn parse_decimal(text: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let value = datafusion::arrow::compute::kernels::cast_utils::parse_decimal::<
        datafusion::arrow::datatypes::Decimal128Type,
    >(text, precision, scale)
    .map_err(|e| format!("invalid numeric \"{text}\": {e}"))?;
    Ok(value)
}

fn build<'a>(ty: ColumnType, cells: impl Iterator<Item = &'a Cell>) -> ArrayRef {
    macro_rules! collect {
        ($array:ty, $pattern:pat => $value:expr) => {
            Arc::new(
                cells
                    .map(|c| match c {
                        $pattern => Some($value),
                        _ => None,
                    })
                    .collect::<$array>(),
            )
        };
    }
    match ty {
        ColumnType::Boolean => collect!(BooleanArray, Cell::Bool(b) => *b),
        ColumnType::Int16 => collect!(Int16Array, Cell::Int(n) => *n as i16),
        ColumnType::Int32 => collect!(Int32Array, Cell::Int(n) => *n as i32),
        ColumnType::Int64 => collect!(Int64Array, Cell::Int(n) => *n),
        ColumnType::Float32 => collect!(Float32Array, Cell::Float(f) => *f as f32),
        ColumnType::Float64 => collect!(Float64Array, Cell::Float(f) => *f),
        ColumnType::Numeric { precision, scale } => Arc::new(
            cells
                .map(|c| match c {
                    Cell::Decimal(d) => Some(*d),
                    _ => None,
                })
                .collect::<Decimal128Array>()
                .with_precision_and_scale(precision, scale)
                .expect("precision and scale were validated at CREATE"),
        ),
        ColumnType::Text | ColumnType::Json | ColumnType::Jsonb => Arc::new(
            cells
                .map(|c| match c {
                    Cell::Text(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect::<StringArray>(),
        ),
        ColumnType::Bytea => Arc::new(
            cells
                .map(|c| match c {
                    Cell::Bytes(b) => Some(b.as_slice()),
                    _ => None,
                })
                .collect::<BinaryArray>(),
        ),
        ColumnType::Date => collect!(Date32Array, Cell::Days(d) => *d),
        ColumnType::Timestamp => collect!(TimestampMicrosecondArray, Cell::Micros(t) => *t),
        ColumnType::TimestampTz => Arc::new(
            cells
                .map(|c| match c {
                    Cell::Micros(t) => Some(*t),
                    _ => None,
                })
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("+00:00"),
        ),
        ColumnType::Interval => Arc::new(
            cells
                .map(|_| None::<datafusion::arrow::datatypes::IntervalMonthDayNano>)
                .collect::<datafusion::arrow::array::IntervalMonthDayNanoArray>(),
        ),
        ColumnType::BooleanArray => datafusion::arrow::array::new_null_array(
            &ColumnType::BooleanArray.arrow_type(),
            cells.count(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder(unknown_fields: UnknownFields, with_properties: bool) -> EventDecoder {
        let mut columns = vec![
            ("event_id", ColumnType::Text, true),
            ("event_name", ColumnType::Text, false),
            ("ts", ColumnType::TimestampTz, false),
            ("amount", ColumnType::Float64, true),
        ];
        if with_properties {
            columns.push(("properties", ColumnType::Jsonb, true));
        }
        EventDecoder::new(Arc::new(super::super::test_source(
            &columns,
            unknown_fields,
        )))
    }

    impl EventDecoder {
        fn decode_plain(&self, events: Vec<Result<Value, BadJson>>) -> Decoded {
            self.decode(events, &Enrichment::default())
        }
    }

    fn events(json: &[&str]) -> Vec<Result<Value, BadJson>> {
        json.iter()
            .map(|j| {
                serde_json::from_str(j).map_err(|e| BadJson {
                    raw: j.to_string(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    #[test]
    fn maps_camel_case_nested_properties_and_timestamp() {
        let decoded = decoder(UnknownFields::Reject, true).decode_plain(events(&[
            r#"{"eventId":"evt_123","eventName":"purchase_completed","userId":"u456","timestamp":"2026-05-03T10:00:00Z","properties":{"amount":49.99,"region":"NA"}}"#,
            r#"{"event_id":"e2","event_name":"x","ts":1777800000000}"#,
        ]));
        assert!(decoded.rejects.is_empty(), "{:?}", decoded.rejects);
        let batch = decoded.batch;
        assert_eq!(batch.num_rows(), 2);
        let amount = batch
            .column(3)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(amount.value(0), 49.99);
        let ts = batch
            .column(2)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(ts.value(0), 1_777_802_400_000_000);
        assert_eq!(ts.value(1), 1_777_800_000_000_000);
        let properties = batch
            .column(4)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let kept: Value = serde_json::from_str(properties.value(0)).unwrap();
        assert_eq!(kept["region"], "NA");
        assert_eq!(
            kept["userId"], "u456",
            "unknown fields land in the jsonb column"
        );
    }

    #[test]
    fn rejects_name_the_event_and_field() {
        let decoded = decoder(UnknownFields::Reject, false).decode_plain(events(&[
            r#"{"event_name":"ok","ts":"2026-05-03T10:00:00Z"}"#,
            r#"{"event_name":"bad","ts":"yesterday"}"#,
            r#"{"ts":"2026-05-03T10:00:00Z"}"#,
            r#"{"event_name":"x","ts":"2026-05-03T10:00:00Z","amount":"lots"}"#,
            r#"{"event_name":"x","ts":"2026-05-03T10:00:00Z","colour":"red"}"#,
            r#"[1,2]"#,
            r#"{"event_name":"#,
        ]));
        assert_eq!(decoded.batch.num_rows(), 1);
        let fields: Vec<_> = decoded
            .rejects
            .iter()
            .map(|r| (r.index, r.field.clone()))
            .collect();
        assert_eq!(
            fields,
            vec![
                (1, Some("ts".into())),
                (2, Some("event_name".into())),
                (3, Some("amount".into())),
                (4, Some("colour".into())),
                (5, None),
                (6, None),
            ]
        );
        assert!(decoded.rejects[1].reason.contains("missing required field"));
        assert!(
            decoded.rejects[2]
                .reason
                .contains("expected a number, got a string")
        );

        let ignoring = decoder(UnknownFields::Ignore, false).decode_plain(events(&[
            r#"{"event_name":"x","ts":"2026-05-03T10:00:00Z","colour":"red"}"#,
        ]));
        assert!(ignoring.rejects.is_empty());
    }
}
