//! Duplicate suppression by event id: an event whose `dedup_key` was accepted within the
//! source's `dedup_window` is acknowledged as a duplicate and not stored again.
//!
//! Seen ids live in RocksDB (`dedup` column family, `source id ++ key` -> accepted-at ms), and
//! are written in the same batch as the log entry that carried them, so a crash can neither
//! store an event without remembering its id nor remember an id whose event was lost. The
//! filter runs in the source log's commit leader, which writes one group at a time, so two
//! concurrent requests carrying the same new id cannot both store it.

use std::collections::HashSet;

use datafusion::arrow::array::{AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::DataType;
use weir_catalog::{Dedup, ObjectId};

use super::{Cf, Db, StorageError};

/// Filters one commit group's batches against ids seen before and within the group.
pub struct DedupFilter<'a> {
    db: &'a Db,
    source: ObjectId,
    window_ms: u64,
    column: usize,
    now_ms: u64,
    /// Ids accepted earlier in this group (not yet in RocksDB).
    seen: HashSet<Vec<u8>>,
}

/// What the filter kept of a batch.
pub struct Filtered {
    /// The rows to store.
    pub batch: RecordBatch,
    /// How many rows were duplicates.
    pub duplicates: usize,
    /// Keys (`dedup` column family) to record with the stored rows.
    pub keys: Vec<Vec<u8>>,
}

impl<'a> DedupFilter<'a> {
    /// A filter for the source `source` whose `dedup_key` is column `column`.
    pub fn new(db: &'a Db, source: ObjectId, dedup: &Dedup, column: usize, now_ms: u64) -> Self {
        Self {
            db,
            source,
            window_ms: dedup.window_ms,
            column,
            now_ms,
            seen: HashSet::new(),
        }
    }

    /// Drops the rows of `batch` whose id was seen within the window. Rows without an id
    /// (null) are always kept.
    pub fn apply(&mut self, batch: RecordBatch) -> Result<Filtered, StorageError> {
        let ids = cast(batch.column(self.column), &DataType::Utf8)
            .map_err(|e| StorageError::InvalidValue(format!("dedup key: {e}")))?;
        let ids = ids.as_string::<i32>();
        let mut keep = Vec::with_capacity(batch.num_rows());
        let mut keys = Vec::new();
        for id in ids.iter() {
            let Some(id) = id else {
                keep.push(true);
                continue;
            };
            let mut key = self.source.to_be_bytes().to_vec();
            key.extend(id.as_bytes());
            let duplicate = self.seen.contains(&key) || self.seen_recently(&key)?;
            keep.push(!duplicate);
            if !duplicate {
                self.seen.insert(key.clone());
                keys.push(key);
            }
        }
        let duplicates = keep.iter().filter(|k| !**k).count();
        let batch = if duplicates == 0 {
            batch
        } else {
            filter_record_batch(&batch, &BooleanArray::from(keep))
                .map_err(|e| StorageError::InvalidValue(e.to_string()))?
        };
        Ok(Filtered {
            batch,
            duplicates,
            keys,
        })
    }

    /// The value recorded for an accepted id.
    pub fn stamp(&self) -> [u8; 8] {
        self.now_ms.to_be_bytes()
    }

    fn seen_recently(&self, key: &[u8]) -> Result<bool, StorageError> {
        Ok(match self.db.get(Cf::Dedup, key)? {
            Some(value) => {
                let at = u64::from_be_bytes(
                    value
                        .as_slice()
                        .try_into()
                        .map_err(|_| StorageError::Corrupt("dedup entry".into()))?,
                );
                self.now_ms.saturating_sub(at) <= self.window_ms
            }
            None => false,
        })
    }
}

impl std::fmt::Debug for DedupFilter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedupFilter")
            .field("source", &self.source)
            .field("seen", &self.seen.len())
            .finish()
    }
}
