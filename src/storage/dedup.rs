//! Duplicate suppression by event id: an event whose `dedup_key` was accepted within the
//! source's `dedup_window` is acknowledged as a duplicate and not stored again.
//!
//! Seen ids live in RocksDB (`dedup` column family, `source id ++ key` -> accepted-at ms), and
//! are written in the same batch as the log entry that carried them, so a crash can neither
//! store an event without remembering its id nor remember an id whose event was lost. The
//! filter runs in the source log's commit leader, which writes one group at a time, so two
//! concurrent requests carrying the same new id cannot both store it.
//!
//! Ids older than their window are ignored when read, and removed by a RocksDB compaction
//! filter, so the state is bounded by the window rather than by every id ever seen.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::DataType;
use weir_catalog::{Dedup, ObjectId};

use super::{Cf, Db, StorageError};

/// Each dedup source's window, for the compaction filter that drops expired ids.
#[derive(Debug, Clone, Default)]
pub struct DedupWindows {
    windows: Arc<RwLock<HashMap<u64, u64>>>,
}

impl DedupWindows {
    /// Records the window of `source`'s dedup ids.
    pub fn set(&self, source: ObjectId, window_ms: u64) {
        self.windows
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(source.0, window_ms);
    }

    /// Whether the entry `key -> value` of the `dedup` column family has expired at `now_ms`.
    /// Entries of sources not (yet) registered are kept: at start-up compaction may run before
    /// every source is open.
    pub fn expired(&self, key: &[u8], value: &[u8], now_ms: u64) -> bool {
        let (Some(source), Ok(at)) = (key.get(..8), <[u8; 8]>::try_from(value)) else {
            return false;
        };
        let source = u64::from_be_bytes(source.try_into().expect("8 bytes"));
        let windows = self.windows.read().unwrap_or_else(|e| e.into_inner());
        windows
            .get(&source)
            .is_some_and(|window| now_ms.saturating_sub(u64::from_be_bytes(at)) > *window)
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_removes_only_expired_ids_of_known_sources() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.dedup_windows().set(ObjectId(1), 1_000);
        let now = now_ms();
        let key = |source: u64, id: &str| {
            let mut key = source.to_be_bytes().to_vec();
            key.extend(id.as_bytes());
            key
        };
        let mut write = rocksdb::WriteBatch::default();
        write.put_cf(
            db.cf(Cf::Dedup),
            key(1, "old"),
            (now - 60_000).to_be_bytes(),
        );
        write.put_cf(db.cf(Cf::Dedup), key(1, "new"), now.to_be_bytes());
        write.put_cf(
            db.cf(Cf::Dedup),
            key(2, "unknown-source"),
            0u64.to_be_bytes(),
        );
        db.write(write).unwrap();
        db.compact(Cf::Dedup);
        assert!(db.get(Cf::Dedup, &key(1, "old")).unwrap().is_none());
        assert!(db.get(Cf::Dedup, &key(1, "new")).unwrap().is_some());
        assert!(
            db.get(Cf::Dedup, &key(2, "unknown-source"))
                .unwrap()
                .is_some()
        );
    }
}
