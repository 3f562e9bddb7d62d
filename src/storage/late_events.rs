//! Late events: rows a view did not count because their event time was behind the source's
//! watermark when the view reached them. Never dropped silently: each is kept with the view,
//! the source, its event time, the watermark at the time, the reason and the event itself, and
//! is queryable as `weir.late_events`.
//!
//! Key `view id ++ log seq ++ row index (u32 BE)`, value: Weir's row codec. They are written
//! in the view's epoch commit, so a crash can neither lose nor repeat one.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use rocksdb::WriteBatch;
use weir_catalog::ObjectId;

use super::row_codec::{decode_rows, encode_rows};
use super::{Cf, Db, StorageError};

/// The columns of `weir.late_events`.
pub fn late_events_schema() -> SchemaRef {
    let time = || DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
    Arc::new(Schema::new(vec![
        Field::new("view", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("event_time", time(), true),
        Field::new("watermark", time(), true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("payload", DataType::Utf8, false),
    ]))
}

/// Adds the late rows of log entry `seq` (in [`late_events_schema`]) to `write`.
pub fn stage_late_events(
    db: &Db,
    write: &mut WriteBatch,
    view: ObjectId,
    seq: u64,
    rows: &RecordBatch,
) -> Result<(), StorageError> {
    for (i, row) in encode_rows(rows)?.into_iter().enumerate() {
        let mut key = view.to_be_bytes().to_vec();
        key.extend(seq.to_be_bytes());
        key.extend((i as u32).to_be_bytes());
        write.put_cf(db.cf(Cf::LateEvents), key, row);
    }
    Ok(())
}

/// Reads `weir.late_events`.
#[derive(Debug)]
pub struct LateEvents {
    db: Arc<Db>,
}

impl LateEvents {
    /// The late events in `db`.
    pub fn new(db: Arc<Db>) -> Self {
        Self { db }
    }

    /// Every late event, by view and log position.
    pub fn scan(&self) -> Result<Vec<RecordBatch>, StorageError> {
        let entries = self.db.scan_prefix(Cf::LateEvents, &[])?;
        let values: Vec<&[u8]> = entries.iter().map(|(_, v)| v.as_ref()).collect();
        Ok(vec![decode_rows(&late_events_schema(), &values)?])
    }
}
