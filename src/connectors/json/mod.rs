//! JSON events into Arrow batches of a source's declared columns.
//!
//! Two paths with one meaning. [`ColumnarDecoder`] decodes a whole body straight into columns
//! with arrow-json's tape decoder when every event uses the columns' own names and fits their
//! types: the common case, and the fast one. Anything else (camelCase keys, nested
//! `properties`, epoch-millisecond timestamps, unknown fields, a bad event) goes to
//! [`EventDecoder`], which maps each event field by field and names every problem. The fast
//! path accepts nothing the per-event path would refuse and yields the same rows; a test
//! checks this on generated bodies.

mod columnar;
mod events;
mod slices;

pub use columnar::ColumnarDecoder;
pub use events::{BadJson, Decoded, EventDecoder, Reject};

/// How a request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON value: an object (one event) or an array of objects.
    Json,
    /// One JSON object per line.
    NdJson,
}

/// A source for decoder tests: `columns` as (name, type, nullable), watermark on `ts`.
#[cfg(test)]
fn test_source(
    columns: &[(&str, weir_catalog::ColumnType, bool)],
    unknown_fields: weir_catalog::UnknownFields,
) -> weir_catalog::SourceDef {
    use weir_catalog::{ColumnDef, Connector, Encoding, ObjectId, SourceOptions, Watermark};
    let columns = columns
        .iter()
        .map(|&(name, ty, nullable)| ColumnDef {
            name: name.into(),
            ty,
            nullable,
            default: None,
        })
        .collect();
    let options = SourceOptions {
        idle_timeout_ms: None,
        max_future_skew_ms: None,
        kafka: None,
        nexmark: None,
        connector: Connector::Http,
        encoding: Encoding::Json,
        dedup: None,
        unknown_fields,
    };
    let watermark = Some(Watermark {
        column: "ts".into(),
        delay_ms: 0,
    });
    weir_catalog::SourceDef::try_new(
        ObjectId(1),
        "e".into(),
        columns,
        watermark,
        options,
        "".into(),
    )
    .expect("a valid test source")
}
