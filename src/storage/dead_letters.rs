//! The dead-letter log: every event refused at ingestion, with its source, the time, its
//! position in the request, the field at fault, the reason and the payload, so nothing is
//! dropped silently. Queryable as `weir.dead_letters`.
//!
//! One Arrow IPC batch per refusing request, keyed by a global sequence number (u64 BE).

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    new_null_array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use rocksdb::WriteBatch;

use super::source_log::{decode, encode};
use super::{Cf, Db, StorageError};

/// Refused events staged as one put into `dead_letters`: key, value.
pub type StagedLetters = (Vec<u8>, Vec<u8>);

/// One refused event.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The source it was sent to.
    pub source: String,
    /// When Weir received it (µs since the epoch, UTC).
    pub received_at_us: i64,
    /// Its position in the request.
    pub index: u64,
    /// The field at fault, if one was.
    pub field: Option<String>,
    /// Why it was refused.
    pub reason: String,
    /// The event as received.
    pub payload: String,
    /// Where a Kafka message came from.
    pub kafka: Option<KafkaPosition>,
}

/// A Kafka message's place: topic, partition, offset.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaPosition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The message's offset.
    pub offset: i64,
}

/// The dead-letter log.
#[derive(Debug)]
pub struct DeadLetters {
    db: Arc<Db>,
    schema: SchemaRef,
    next_seq: Mutex<u64>,
}

impl DeadLetters {
    /// Opens the log, continuing after its last entry.
    pub fn open(db: Arc<Db>) -> Result<Self, StorageError> {
        let next_seq = db.next_seq(Cf::DeadLetters, &[])?;
        let schema = Arc::new(Schema::new(vec![
            Field::new("source", DataType::Utf8, false),
            Field::new(
                "received_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                false,
            ),
            Field::new("event_index", DataType::Int64, false),
            Field::new("field", DataType::Utf8, true),
            Field::new("reason", DataType::Utf8, false),
            Field::new("payload", DataType::Utf8, false),
            Field::new("topic", DataType::Utf8, true),
            Field::new("kafka_partition", DataType::Int32, true),
            Field::new("kafka_offset", DataType::Int64, true),
        ]));
        Ok(Self {
            db,
            schema,
            next_seq: Mutex::new(next_seq),
        })
    }

    /// The table's schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Records `letters` durably.
    pub fn record(&self, letters: &[DeadLetter]) -> Result<(), StorageError> {
        let Some((key, value)) = self.stage(letters)? else {
            return Ok(());
        };
        let mut write = WriteBatch::default();
        write.put_cf(self.db.cf(Cf::DeadLetters), key, value);
        self.db.write(write)?;
        crate::telemetry::dead_letters(letters);
        Ok(())
    }

    /// `letters` as a put into `dead_letters` (`None` for none), to commit with other writes:
    /// a Kafka poll's refused messages land with the entry and offsets that pass them, so a
    /// crash records them once or not at all. The key's sequence number is taken now; one
    /// whose write never lands leaves a gap, nothing else.
    pub fn stage(&self, letters: &[DeadLetter]) -> Result<Option<StagedLetters>, StorageError> {
        if letters.is_empty() {
            return Ok(None);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                letters.iter().map(|l| l.source.as_str()),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    letters.iter().map(|l| l.received_at_us),
                )
                .with_timezone("+00:00"),
            ),
            Arc::new(Int64Array::from_iter_values(
                letters.iter().map(|l| l.index as i64),
            )),
            Arc::new(StringArray::from_iter(
                letters.iter().map(|l| l.field.as_deref()),
            )),
            Arc::new(StringArray::from_iter_values(
                letters.iter().map(|l| l.reason.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                letters.iter().map(|l| l.payload.as_str()),
            )),
            Arc::new(StringArray::from_iter(
                letters
                    .iter()
                    .map(|l| l.kafka.as_ref().map(|k| k.topic.as_str())),
            )),
            Arc::new(Int32Array::from_iter(
                letters
                    .iter()
                    .map(|l| l.kafka.as_ref().map(|k| k.partition)),
            )),
            Arc::new(Int64Array::from_iter(
                letters.iter().map(|l| l.kafka.as_ref().map(|k| k.offset)),
            )),
        ];
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| StorageError::InvalidValue(e.to_string()))?;
        let value = encode(&batch)?;
        let mut next_seq = self.next_seq.lock().unwrap_or_else(|e| e.into_inner());
        let key = next_seq.to_be_bytes().to_vec();
        *next_seq += 1;
        Ok(Some((key, value)))
    }

    /// A batch stored before the table had its later (nullable) columns, with them null.
    fn padded(&self, batch: RecordBatch) -> Result<RecordBatch, StorageError> {
        if batch.num_columns() == self.schema.fields().len() {
            return Ok(batch);
        }
        let mut columns = batch.columns().to_vec();
        for field in &self.schema.fields()[columns.len()..] {
            columns.push(new_null_array(field.data_type(), batch.num_rows()));
        }
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| StorageError::Corrupt(format!("a dead-letter entry: {e}")))
    }

    /// Every dead letter, oldest first.
    pub fn scan(&self) -> Result<Vec<RecordBatch>, StorageError> {
        let mut batches = Vec::new();
        for (_, value) in self.db.scan_prefix(Cf::DeadLetters, &[])? {
            for batch in decode(&value)? {
                batches.push(self.padded(batch)?);
            }
        }
        Ok(batches)
    }
}
