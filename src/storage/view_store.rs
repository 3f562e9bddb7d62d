//! A materialized view's durable parts: its rows (in `Rows`, keyed by view id ++ group key, so
//! they scan like a table's), its per-group aggregate state, the log position it has consumed
//! and its watermark (in `ViewState`), and the late events it set aside. One epoch's changes to
//! all of them, and the final rows it publishes to its output log for views over it, are one
//! atomic write, so after a crash a view resumes from an offset that matches its state and rows exactly (DESIGN.md §4).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use rocksdb::WriteBatch;
use weir_catalog::ObjectId;

use super::row_codec::{decode_rows, encode_rows};
use super::{Cf, Db, SourceLog, StorageError, stage_late_events};

/// `ViewState` key tags after the view id.
const OFFSET_TAG: u8 = 0;
const STATE_TAG: u8 = 1;
const WATERMARK_TAG: u8 = 2;
const EVENTS_TAG: u8 = 3;
/// `count(DISTINCT)` values: a chunk per group, column and epoch. (Tag 4 held them one key
/// per value before.)
const DISTINCT_TAG: u8 = 5;
/// A SESSION view's partitions with a recently closed session: partition key -> its end.
const CLOSED_SESSION_TAG: u8 = 6;

/// One view's storage.
#[derive(Debug)]
pub struct ViewStore {
    db: Arc<Db>,
    id: ObjectId,
    /// The view's rows.
    schema: SchemaRef,
    /// Where the view publishes its final rows for views over it, when it has final rows:
    /// closed windows, or the rows of a view without aggregates.
    output: Option<Arc<SourceLog>>,
}

/// Values new to a group's `count(DISTINCT)` set in an epoch: group key, column, and the
/// values as one chunk (each a 4-byte big-endian length and the encoded value), stored as is
/// under the group, column and epoch.
pub type DistinctEntry = (Vec<u8>, u16, Vec<u8>);

/// A group's stored state: its state row and its `count(DISTINCT)` chunks (column, chunk).
#[derive(Debug)]
pub struct StoredGroup {
    /// The group key.
    pub key: Vec<u8>,
    /// Its state row, alone in a batch.
    pub row: RecordBatch,
    /// Its `count(DISTINCT)` values: column, and a chunk of values as an epoch stored it.
    pub distinct: Vec<(u16, Box<[u8]>)>,
}

/// The changes one epoch commits.
#[derive(Debug, Default)]
pub struct EpochWrite {
    /// Group key -> new state row (encoded).
    pub state: Vec<(Vec<u8>, Vec<u8>)>,
    /// Values new to a group's `count(DISTINCT)` set.
    pub distinct: Vec<DistinctEntry>,
    /// Groups whose stored state is no longer needed (their window closed).
    pub state_deletes: Vec<Vec<u8>>,
    /// Groups whose `count(DISTINCT)` sets are no longer needed (each a range delete, which
    /// RocksDB pays for on reads until compaction: only for views that keep sets).
    pub set_deletes: Vec<Vec<u8>>,
    /// Group key -> new output row, or `None` to remove the group's row.
    pub rows: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Late rows (in `weir.late_events`' schema) by the log entry they came in.
    pub late: Vec<(u64, RecordBatch)>,
    /// Final rows to publish to the view's output log (its schema, `_received_at` included).
    pub published: Option<RecordBatch>,
    /// The view's clock after this epoch, if the view follows a watermark.
    pub clock: Option<ClockState>,
    /// The next log sequence number to read.
    pub next_seq: u64,
    /// Log events the view has read in all, after this epoch.
    pub events_done: u64,
    /// A SESSION view's partitions whose last closed session ended (µs), or `None` once
    /// that end can make no event late.
    pub closed_sessions: Vec<(Vec<u8>, Option<i64>)>,
}

/// Where a view's event clock stands: its watermark (µs) and, over a source with
/// partitions (Kafka), each partition's newest event time and latest arrival.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClockState {
    /// The watermark (µs).
    pub watermark: i64,
    /// The partitions' times, by partition; empty over an unpartitioned source.
    pub partitions: Vec<PartitionTime>,
}

/// One partition's times as a view's clock saw them (µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionTime {
    /// The partition.
    pub partition: i32,
    /// Its newest event time counted (µs).
    pub newest: i64,
    /// When its latest event arrived (`_received_at`, µs).
    pub last_arrival: i64,
}

impl ClockState {
    /// The watermark (i64 BE), then 20 bytes a partition: id, newest, last arrival (BE).
    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(8 + 20 * self.partitions.len());
        bytes.extend(self.watermark.to_be_bytes());
        for p in &self.partitions {
            bytes.extend(p.partition.to_be_bytes());
            bytes.extend(p.newest.to_be_bytes());
            bytes.extend(p.last_arrival.to_be_bytes());
        }
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let corrupt = || StorageError::Corrupt(format!("view clock of {} bytes", bytes.len()));
        if bytes.len() < 8 || !(bytes.len() - 8).is_multiple_of(20) {
            return Err(corrupt());
        }
        let i64_at = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let partitions = bytes[8..]
            .chunks_exact(20)
            .enumerate()
            .map(|(i, chunk)| {
                let at = 8 + i * 20;
                PartitionTime {
                    partition: i32::from_be_bytes(chunk[..4].try_into().expect("4 bytes")),
                    newest: i64_at(at + 4),
                    last_arrival: i64_at(at + 12),
                }
            })
            .collect();
        Ok(Self {
            watermark: i64_at(0),
            partitions,
        })
    }
}

impl ViewStore {
    /// The store of view `id`, whose rows have `schema`.
    pub fn new(db: Arc<Db>, id: ObjectId, schema: SchemaRef) -> Self {
        Self {
            db,
            id,
            schema,
            output: None,
        }
    }

    /// The same store, publishing final rows to `output`.
    pub fn with_output(self, output: Arc<SourceLog>) -> Self {
        Self {
            output: Some(output),
            ..self
        }
    }

    /// The log of the view's final rows, if it publishes them.
    pub fn output(&self) -> Option<&Arc<SourceLog>> {
        self.output.as_ref()
    }

    /// The schema of the view's rows.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The next log sequence number the view has to read (0 for a new view).
    pub fn next_seq(&self) -> Result<u64, StorageError> {
        match self.db.get(Cf::ViewState, &self.key(OFFSET_TAG, &[]))? {
            None => Ok(0),
            Some(bytes) => Ok(u64::from_be_bytes(bytes.as_slice().try_into().map_err(
                |_| StorageError::Corrupt(format!("view offset of {} bytes", bytes.len())),
            )?)),
        }
    }

    /// Where the view stands: next log seq to read, events read, clock.
    pub fn position(&self) -> Result<(u64, u64, Option<ClockState>), StorageError> {
        Ok((self.next_seq()?, self.events_done()?, self.clock()?))
    }

    /// Log events the view has read in all (0 for a new view).
    pub fn events_done(&self) -> Result<u64, StorageError> {
        match self.db.get(Cf::ViewState, &self.key(EVENTS_TAG, &[]))? {
            None => Ok(0),
            Some(bytes) => Ok(u64::from_be_bytes(bytes.as_slice().try_into().map_err(
                |_| StorageError::Corrupt(format!("view event count of {} bytes", bytes.len())),
            )?)),
        }
    }

    /// The view's clock, if it follows a watermark and has seen an event.
    pub fn clock(&self) -> Result<Option<ClockState>, StorageError> {
        self.db
            .get(Cf::ViewState, &self.key(WATERMARK_TAG, &[]))?
            .map(|bytes| ClockState::decode(&bytes))
            .transpose()
    }

    /// A SESSION view's partitions with a recently closed session, and its end (µs). Few: an
    /// end is kept only until the watermark is a gap past it.
    pub fn closed_sessions(&self) -> Result<Vec<(Vec<u8>, i64)>, StorageError> {
        let prefix = self.key(CLOSED_SESSION_TAG, &[]);
        self.db
            .scan_prefix(Cf::ViewState, &prefix)?
            .iter()
            .map(|(key, value)| {
                let end: [u8; 8] = value.as_ref().try_into().map_err(|_| {
                    StorageError::Corrupt(format!("closed session end of {} bytes", value.len()))
                })?;
                Ok((key[prefix.len()..].to_vec(), i64::from_be_bytes(end)))
            })
            .collect()
    }

    /// Every group's stored state row, decoded with `state_schema`, with the group keys, in
    /// chunks of at most `chunk` rows (read at start to index the groups; states are loaded
    /// as epochs need them, so memory holds one chunk at a time).
    pub fn for_each_state(
        &self,
        state_schema: &SchemaRef,
        chunk: usize,
        mut each: impl FnMut(Vec<Vec<u8>>, RecordBatch) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let prefix = self.key(STATE_TAG, &[]);
        let mut start = prefix.clone();
        loop {
            let entries = self.db.scan_from(Cf::ViewState, &prefix, &start, chunk)?;
            let Some((last, _)) = entries.last() else {
                return Ok(());
            };
            start = last.to_vec();
            start.push(0);
            let keys = entries
                .iter()
                .map(|(k, _)| k[prefix.len()..].to_vec())
                .collect();
            let values: Vec<&[u8]> = entries.iter().map(|(_, v)| v.as_ref()).collect();
            each(keys, decode_rows(state_schema, &values)?)?;
            if entries.len() < chunk {
                return Ok(());
            }
        }
    }

    /// The stored state rows of `groups` (decoded with `state_schema`, one batch of one row
    /// each), with their `count(DISTINCT)` values (column, encoded value). Groups without
    /// stored state are left out.
    pub fn load_groups(
        &self,
        groups: &[Vec<u8>],
        state_schema: &SchemaRef,
    ) -> Result<Vec<StoredGroup>, StorageError> {
        let mut loaded = Vec::with_capacity(groups.len());
        for group in groups {
            let Some(row) = self.db.get(Cf::ViewState, &self.key(STATE_TAG, group))? else {
                continue;
            };
            let prefix = self.key(DISTINCT_TAG, &self.distinct_prefix(group));
            let corrupt = || StorageError::Corrupt("view distinct-value key".into());
            let mut distinct = Vec::new();
            for (key, chunk) in self.db.scan_prefix(Cf::ViewState, &prefix)? {
                let column = key
                    .get(prefix.len()..prefix.len() + 2)
                    .ok_or_else(corrupt)?;
                distinct.push((u16::from_be_bytes([column[0], column[1]]), chunk));
            }
            loaded.push(StoredGroup {
                key: group.clone(),
                row: decode_rows(state_schema, &[row.as_slice()])?,
                distinct,
            });
        }
        Ok(loaded)
    }

    /// Encodes state or output rows for an [`EpochWrite`].
    pub fn encode(batch: &RecordBatch) -> Result<Vec<Vec<u8>>, StorageError> {
        encode_rows(batch)
    }

    /// Commits one epoch atomically.
    pub fn commit(&self, epoch: EpochWrite) -> Result<(), StorageError> {
        // Sized up front: a large epoch's batch would otherwise grow by copying itself.
        let sized = |key: &[u8], value: usize| key.len() + value + 32;
        let bytes = epoch
            .state
            .iter()
            .map(|(key, row)| sized(key, row.len()))
            .chain(
                epoch
                    .rows
                    .iter()
                    .map(|(key, row)| sized(key, row.as_ref().map_or(0, Vec::len))),
            )
            .chain(epoch.state_deletes.iter().map(|key| sized(key, 0)))
            .sum();
        let mut write = WriteBatch::with_capacity_bytes(bytes);
        for (key, row) in epoch.state {
            write.put_cf(self.db.cf(Cf::ViewState), self.key(STATE_TAG, &key), row);
        }
        for (group, column, chunk) in &epoch.distinct {
            // Keyed by the epoch (its next log position), so each epoch adds a chunk.
            let mut key = self.distinct_prefix(group);
            key.extend(column.to_be_bytes());
            key.extend(epoch.next_seq.to_be_bytes());
            write.put_cf(
                self.db.cf(Cf::ViewState),
                self.key(DISTINCT_TAG, &key),
                chunk,
            );
        }
        for key in epoch.state_deletes {
            write.delete_cf(self.db.cf(Cf::ViewState), self.key(STATE_TAG, &key));
        }
        for key in epoch.set_deletes {
            let sets = self.key(DISTINCT_TAG, &self.distinct_prefix(&key));
            if let Some(end) = super::db::prefix_end(&sets) {
                write.delete_range_cf(self.db.cf(Cf::ViewState), sets, end);
            }
        }
        for (key, row) in epoch.rows {
            let key = self.row_key(&key);
            match row {
                Some(row) => write.put_cf(self.db.cf(Cf::Rows), key, row),
                None => write.delete_cf(self.db.cf(Cf::Rows), key),
            }
        }
        for (partition, end) in epoch.closed_sessions {
            let key = self.key(CLOSED_SESSION_TAG, &partition);
            match end {
                Some(end) => write.put_cf(self.db.cf(Cf::ViewState), key, end.to_be_bytes()),
                None => write.delete_cf(self.db.cf(Cf::ViewState), key),
            }
        }
        for (seq, rows) in &epoch.late {
            stage_late_events(&self.db, &mut write, self.id, *seq, rows)?;
        }
        if let Some(clock) = &epoch.clock {
            write.put_cf(
                self.db.cf(Cf::ViewState),
                self.key(WATERMARK_TAG, &[]),
                clock.encode(),
            );
        }
        write.put_cf(
            self.db.cf(Cf::ViewState),
            self.key(OFFSET_TAG, &[]),
            epoch.next_seq.to_be_bytes(),
        );
        write.put_cf(
            self.db.cf(Cf::ViewState),
            self.key(EVENTS_TAG, &[]),
            epoch.events_done.to_be_bytes(),
        );
        let staged = match (&self.output, &epoch.published) {
            (Some(output), Some(rows)) if rows.num_rows() > 0 => {
                Some((output, output.stage(&mut write, rows)?))
            }
            _ => None,
        };
        crate::failpoint::hit("view::before_commit");
        self.db.write(write)?;
        crate::failpoint::hit("view::after_commit");
        if let Some((output, staged)) = staged {
            output.committed(staged);
        }
        Ok(())
    }

    /// The rows whose leading group key, a timestamp, is within `lo..=hi` (µs): a range of
    /// keys, since rows are keyed by group key. For views grouped by their window first, this
    /// is how a `window_start` filter reads only its windows.
    pub fn scan_leading_time(
        &self,
        lo: Option<i64>,
        hi: Option<i64>,
    ) -> Result<RecordBatch, StorageError> {
        let prefix = self.id.to_be_bytes().to_vec();
        let bound = |t: i64| -> Result<Vec<u8>, StorageError> {
            let mut key = vec![prefix.clone()];
            let value: datafusion::arrow::array::ArrayRef = Arc::new(
                datafusion::arrow::array::TimestampMicrosecondArray::from(vec![t]),
            );
            super::keys::append_nullable_column(&mut key, &value)?;
            Ok(key.pop().expect("one key"))
        };
        let start = match lo {
            Some(lo) => bound(lo)?,
            None => prefix.clone(),
        };
        let end = match hi {
            // Every key that starts with the bound's encoding: the rows of that time.
            Some(hi) => super::db::prefix_end(&bound(hi)?),
            None => super::db::prefix_end(&prefix),
        };
        let entries = self.db.scan_range(Cf::Rows, &start, end)?;
        self.decode_entries(&entries)
    }

    /// The rows whose leading group key is `value` (a one-value array of that column's type):
    /// one prefix of the row keys, read without the rest.
    pub fn scan_leading_key(
        &self,
        value: &datafusion::arrow::array::ArrayRef,
    ) -> Result<RecordBatch, StorageError> {
        let (start, end) = self.leading_key_range(value)?;
        let entries = self.db.scan_range(Cf::Rows, &start, end)?;
        self.decode_entries(&entries)
    }

    /// [`ViewStore::scan_leading_key`] from memory only, or `None` when part of it is on disk
    /// only (see [`Db::scan_range_cached`]).
    pub fn scan_leading_key_cached(
        &self,
        value: &datafusion::arrow::array::ArrayRef,
    ) -> Result<Option<RecordBatch>, StorageError> {
        let (start, end) = self.leading_key_range(value)?;
        match self.db.scan_range_cached(Cf::Rows, &start, end)? {
            Some(entries) => self.decode_entries(&entries).map(Some),
            None => Ok(None),
        }
    }

    /// The row keys whose leading column is `value`: `start <= key < end`.
    fn leading_key_range(
        &self,
        value: &datafusion::arrow::array::ArrayRef,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), StorageError> {
        let mut key = vec![self.id.to_be_bytes().to_vec()];
        super::keys::append_nullable_column(&mut key, value)?;
        let start = key.pop().expect("one key");
        let end = super::db::prefix_end(&start);
        Ok((start, end))
    }

    fn decode_entries(&self, entries: &[super::db::Entry]) -> Result<RecordBatch, StorageError> {
        let values: Vec<&[u8]> = entries.iter().map(|(_, v)| v.as_ref()).collect();
        decode_rows(&self.schema, &values)
    }

    fn key(&self, tag: u8, rest: &[u8]) -> Vec<u8> {
        let mut key = self.id.to_be_bytes().to_vec();
        key.push(tag);
        key.extend_from_slice(rest);
        key
    }

    /// A group's `count(DISTINCT)` keys start with its key's length and the key itself, so one
    /// group's values never share a prefix with another's.
    fn distinct_prefix(&self, group: &[u8]) -> Vec<u8> {
        let mut prefix = (group.len() as u32).to_be_bytes().to_vec();
        prefix.extend_from_slice(group);
        prefix
    }

    fn row_key(&self, group: &[u8]) -> Vec<u8> {
        let mut key = self.id.to_be_bytes().to_vec();
        key.extend_from_slice(group);
        key
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{ArrayRef, Int64Array, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;
    use crate::storage::keys::append_nullable_column;

    #[test]
    fn a_leading_time_range_reads_only_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path()).unwrap());
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "window_start",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
            Field::new("n", DataType::Int64, true),
        ]));
        let minute = 60_000_000i64;
        let starts: Vec<Option<i64>> = vec![None, Some(0), Some(minute), Some(2 * minute)];
        let windows: ArrayRef =
            Arc::new(TimestampMicrosecondArray::from(starts.clone()).with_timezone("+00:00"));
        let mut keys = vec![Vec::new(); starts.len()];
        append_nullable_column(&mut keys, &windows).unwrap();
        // A neighbouring view's rows must never show up in this one's ranges.
        for (id, n) in [(7, 0), (8, 100)] {
            let store = ViewStore::new(db.clone(), ObjectId(id), schema.clone());
            let mut epoch = EpochWrite::default();
            let rows = RecordBatch::try_new(
                schema.clone(),
                vec![
                    windows.clone(),
                    Arc::new(Int64Array::from(vec![9 + n, 1 + n, 2 + n, 3 + n])),
                ],
            )
            .unwrap();
            epoch.rows = keys
                .iter()
                .cloned()
                .zip(ViewStore::encode(&rows).unwrap().into_iter().map(Some))
                .collect();
            store.commit(epoch).unwrap();
        }
        let store = ViewStore::new(db, ObjectId(7), schema);
        let counts = |lo, hi| {
            let batch = store.scan_leading_time(lo, hi).unwrap();
            batch
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        };
        assert_eq!(counts(None, None), vec![9, 1, 2, 3], "all, NULL first");
        assert_eq!(counts(Some(minute), Some(minute)), vec![2]);
        assert_eq!(counts(Some(minute), None), vec![2, 3]);
        assert_eq!(counts(None, Some(minute)), vec![9, 1, 2]);
        assert_eq!(
            counts(Some(minute + 1), Some(2 * minute - 1)),
            Vec::<i64>::new()
        );
    }
}
