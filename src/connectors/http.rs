//! The HTTP event collector: `POST /api/events/<source>` with one JSON object, a JSON array,
//! or NDJSON (`Content-Type: application/x-ndjson`), optionally gzip-encoded.
//!
//! A request's accepted events are appended as one batch and acknowledged only after the
//! append is durable. Refused events are listed with their index, field and reason; the valid
//! events of the same request are kept unless the request says `?atomic=true`.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use super::enrich::Enrichment;
pub use super::json::Framing;
use super::json::{BadJson, ColumnarDecoder, Decoded, EventDecoder, Reject};
use crate::storage::{DeadLetter, DeadLetters, SourceLog};

/// How much of an unreadable body is kept in its dead letter.
const DEAD_LETTER_BODY_BYTES: usize = 64 << 10;

/// What an ingest request asked for.
#[derive(Debug)]
pub struct IngestRequest {
    /// The raw body, as received.
    pub body: Bytes,
    /// `Content-Encoding: gzip`.
    pub gzip: bool,
    /// Object/array or NDJSON.
    pub framing: Framing,
    /// `?atomic=true`: refuse the whole request if any event is refused.
    pub atomic: bool,
    /// The largest decompressed body accepted.
    pub max_body_bytes: usize,
    /// What the request tells about its events (client address, device).
    pub enrichment: Enrichment,
}

/// The outcome of an ingest request.
#[derive(Debug, serde::Serialize)]
pub struct IngestOutcome {
    /// Events durably appended (duplicates not counted).
    pub accepted: usize,
    /// Events recognised as duplicates (stored once).
    pub duplicates: usize,
    /// Events refused.
    pub rejected: usize,
    /// Why each refused event was refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Reject>,
}

/// Why a request was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body is not valid gzip.
    #[error("body is not valid gzip: {0}")]
    BadGzip(String),
    /// The decompressed body is over the limit.
    #[error("body is larger than {0} bytes")]
    TooLarge(usize),
    /// The body is not JSON at all (object/array framing).
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The body is JSON but neither an object nor an array.
    #[error("the body must be a JSON object, an array of objects, or NDJSON; got {0}")]
    WrongShape(&'static str),
    /// Storage failed: the events were not accepted.
    #[error("events could not be stored: {0}")]
    Storage(String),
}

/// Decodes, validates and durably appends one request's events, and records every refused
/// event (or the whole body, when it cannot be read) as a dead letter. Blocking: run it off
/// the network runtime.
pub fn ingest(
    log: &Arc<SourceLog>,
    dead_letters: &DeadLetters,
    request: IngestRequest,
    received_at_us: i64,
) -> Result<IngestOutcome, IngestError> {
    let letter = |index: u64, field: Option<String>, reason: String, payload: String| DeadLetter {
        source: log.def().name.clone(),
        received_at_us,
        index,
        field,
        reason,
        payload,
        kafka: None,
    };
    // A body that cannot be read at all is kept (its head) as one dead letter.
    let dead_body = |error: IngestError| {
        let kept = &request.body[..request.body.len().min(DEAD_LETTER_BODY_BYTES)];
        let payload = String::from_utf8_lossy(kept).into_owned();
        match dead_letters.record(&[letter(0, None, error.to_string(), payload)]) {
            Ok(()) => error,
            Err(e) => IngestError::Storage(e.to_string()),
        }
    };
    let body = match decompress(&request) {
        Ok(body) => body,
        Err(error @ IngestError::BadGzip(_)) => return Err(dead_body(error)),
        Err(other) => return Err(other),
    };
    let decoded =
        match ColumnarDecoder::new(log.def()).decode(&body, request.framing, &request.enrichment) {
            Some(batch) => Decoded {
                batch,
                rejects: Vec::new(),
            },
            None => {
                let events = match split(&body, request.framing) {
                    Ok(events) => events,
                    Err(error) => return Err(dead_body(error)),
                };
                EventDecoder::new(log.shared_def()).decode(events, &request.enrichment)
            }
        };
    let letters: Vec<DeadLetter> = decoded
        .rejects
        .iter()
        .map(|r| {
            letter(
                r.index as u64,
                r.field.clone(),
                r.reason.clone(),
                r.payload.clone(),
            )
        })
        .collect();
    dead_letters
        .record(&letters)
        .map_err(|e| IngestError::Storage(e.to_string()))?;
    let rejected = decoded.rejects.len();
    let store = decoded.batch.num_rows() > 0 && !(request.atomic && rejected > 0);
    let (accepted, duplicates) = if store {
        let appended = log
            .append_rows(decoded.batch, received_at_us)
            .map_err(|e| IngestError::Storage(e.to_string()))?;
        (appended.rows, appended.duplicates)
    } else {
        (0, 0)
    };
    Ok(IngestOutcome {
        accepted,
        duplicates,
        rejected,
        errors: decoded.rejects,
    })
}

/// The body, gunzipped when it says it is gzip.
fn decompress(request: &IngestRequest) -> Result<std::borrow::Cow<'_, [u8]>, IngestError> {
    Ok(if request.gzip {
        std::borrow::Cow::Owned(gunzip(&request.body, request.max_body_bytes)?)
    } else {
        std::borrow::Cow::Borrowed(&request.body[..])
    })
}

fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(body).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| IngestError::BadGzip(e.to_string()))?;
    if out.len() > limit {
        return Err(IngestError::TooLarge(limit));
    }
    Ok(out)
}

/// The events of a body; an NDJSON line that is not JSON is an `Err` for that event only.
fn split(body: &[u8], framing: Framing) -> Result<Vec<Result<Value, BadJson>>, IngestError> {
    match framing {
        Framing::NdJson => Ok(body
            .split(|b| *b == b'\n')
            .filter(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
            .map(BadJson::parse)
            .collect()),
        Framing::Json => match serde_json::from_slice(body) {
            Ok(Value::Array(events)) => Ok(events.into_iter().map(Ok).collect()),
            Ok(event @ Value::Object(_)) => Ok(vec![Ok(event)]),
            Ok(Value::Null) => Err(IngestError::WrongShape("null")),
            Ok(Value::Bool(_)) => Err(IngestError::WrongShape("a boolean")),
            Ok(Value::Number(_)) => Err(IngestError::WrongShape("a number")),
            Ok(Value::String(_)) => Err(IngestError::WrongShape("a string")),
            Err(e) => Err(IngestError::MalformedJson(e.to_string())),
        },
    }
}
