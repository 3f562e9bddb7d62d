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
