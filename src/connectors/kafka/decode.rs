//! Kafka messages -> an Arrow batch of a source's declared columns: the payload through the
//! same JSON decoding as the HTTP collector (mapping, validation, enrichment columns), and the
//! metadata columns the source declares (`_partition`, `_offset`, `_kafka_timestamp`, `_key`)
//! from each message.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::Schema;
use datafusion::error::Result;
use weir_catalog::SourceDef;

use crate::connectors::enrich::Enrichment;
use crate::connectors::json::{BadJson, ColumnarDecoder, EventDecoder, Framing};
use crate::storage::{DeadLetter, KafkaPosition};

/// What Weir keeps of one consumed message.
#[derive(Debug, Clone)]
pub struct Message {
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The message's timestamp (ms since the epoch), if it has one.
    pub timestamp_ms: Option<i64>,
    /// Its key, if it has one.
    pub key: Option<Vec<u8>>,
    /// Its value (one JSON event), if it has one.
    pub payload: Option<Vec<u8>>,
}

/// Decodes a Kafka source's messages.
#[derive(Debug)]
pub struct MessageDecoder {
    def: Arc<SourceDef>,
    /// Decodes the payload columns (the declared ones less the metadata columns), one
    /// message at a time with a reason for each refused one.
    payload: EventDecoder,
    /// The same, all messages at once, for batches of well-formed messages (HTTP's fast path).
    columnar: ColumnarDecoder,
    /// For each declared column: the metadata it is filled from, or `None` for the payload.
    metadata: Vec<Option<Metadata>>,
}

#[derive(Debug, Clone, Copy)]
enum Metadata {
    Partition,
    Offset,
    Timestamp,
    Key,
}

/// One partition's messages, decoded.
#[derive(Debug)]
pub struct DecodedMessages {
    /// The accepted messages as the declared columns, in offset order.
    pub batch: RecordBatch,
    /// The refused ones, to record as dead letters.
    pub dead_letters: Vec<DeadLetter>,
}

impl MessageDecoder {
    /// A decoder for the messages of the Kafka source `def`.
    pub fn new(def: Arc<SourceDef>) -> Self {
        let metadata: Vec<Option<Metadata>> = def
            .columns
            .iter()
            .map(|c| match c.name.as_str() {
                "_partition" => Some(Metadata::Partition),
                "_offset" => Some(Metadata::Offset),
                "_kafka_timestamp" => Some(Metadata::Timestamp),
                "_key" => Some(Metadata::Key),
                _ => None,
            })
            .collect();
        let mut payload_def = (*def).clone();
        payload_def.columns = def
            .columns
            .iter()
            .zip(&metadata)
            .filter(|(_, m)| m.is_none())
            .map(|(c, _)| c.clone())
            .collect();
        Self {
            columnar: ColumnarDecoder::new(&payload_def),
            payload: EventDecoder::new(Arc::new(payload_def)),
            def,
            metadata,
        }
    }

    /// Decodes `messages` (of one topic, in order), received at `received_at_us`.
    pub fn decode(
        &self,
        topic: &str,
        messages: &[Message],
        received_at_us: i64,
    ) -> Result<DecodedMessages> {
        let (payload_batch, rejects) = match self.decode_columnar(messages) {
            Some(batch) => (batch, Vec::new()),
            None => {
                let events = messages
                    .iter()
                    .map(|m| BadJson::parse(m.payload.as_deref().unwrap_or_default()))
                    .collect();
                let decoded = self.payload.decode(events, &Enrichment::default());
                (decoded.batch, decoded.rejects)
            }
        };
        let mut refused = vec![false; messages.len()];
        let dead_letters = rejects
            .into_iter()
            .map(|reject| {
                refused[reject.index] = true;
                let message = &messages[reject.index];
                DeadLetter {
                    source: self.def.name.clone(),
                    received_at_us,
                    index: message.offset as u64,
                    field: reject.field,
                    reason: reject.reason,
                    payload: reject.payload,
                    kafka: Some(KafkaPosition {
                        topic: topic.to_string(),
                        partition: message.partition,
                        offset: message.offset,
                    }),
                }
            })
            .collect();
        let accepted: Vec<&Message> = messages
            .iter()
            .zip(&refused)
            .filter(|(_, refused)| !**refused)
            .map(|(m, _)| m)
            .collect();
        let mut payload_columns = payload_batch.columns().iter();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.metadata.len());
        let mut fields = Vec::with_capacity(self.metadata.len());
        for (column, metadata) in self.def.columns.iter().zip(&self.metadata) {
            let array: ArrayRef = match metadata {
                None => payload_columns
                    .next()
                    .expect("the payload decoder returns every payload column")
                    .clone(),
                Some(Metadata::Partition) => Arc::new(Int32Array::from_iter_values(
                    accepted.iter().map(|m| m.partition),
                )),
                Some(Metadata::Offset) => Arc::new(Int64Array::from_iter_values(
                    accepted.iter().map(|m| m.offset),
                )),
                Some(Metadata::Timestamp) => Arc::new(
                    TimestampMicrosecondArray::from_iter(
                        accepted.iter().map(|m| m.timestamp_ms.map(|ms| ms * 1000)),
                    )
                    .with_timezone("+00:00"),
                ),
                Some(Metadata::Key) => Arc::new(StringArray::from_iter(accepted.iter().map(|m| {
                    m.key
                        .as_deref()
                        .map(|k| String::from_utf8_lossy(k).into_owned())
                }))),
            };
            fields.push(
                column
                    .ty
                    .arrow_field(&column.name, true)
                    .with_data_type(array.data_type().clone()),
            );
            columns.push(array);
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        Ok(DecodedMessages {
            batch,
            dead_letters,
        })
    }

    /// The payload columns of `messages` when every one is a one-line JSON event the fast
    /// path takes whole; `None` sends them down the per-event path.
    fn decode_columnar(&self, messages: &[Message]) -> Option<RecordBatch> {
        let mut body = Vec::with_capacity(
            messages
                .iter()
                .map(|m| m.payload.as_ref().map_or(0, Vec::len) + 1)
                .sum(),
        );
        for message in messages {
            let payload = message.payload.as_deref()?;
            if payload.contains(&b'\n') {
                return None;
            }
            body.extend_from_slice(payload);
            body.push(b'\n');
        }
        let batch = self
            .columnar
            .decode(&body, Framing::NdJson, &Enrichment::default())?;
        (batch.num_rows() == messages.len()).then_some(batch)
    }
}
