//! A materialized view's durable parts: its rows (in `Rows`, keyed by view id ++ group key, so
//! they scan like a table's), its per-group aggregate state, the log position it has consumed
//! and its watermark (in `ViewState`), and the late events it set aside. One epoch's changes to
//! all of them are one atomic write, so after a
//! crash a view resumes from an offset that matches its state and rows exactly (DESIGN.md §4).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use rocksdb::WriteBatch;
use weir_catalog::ObjectId;

use super::row_codec::{decode_rows, encode_rows};
use super::{Cf, Db, StorageError, stage_late_events};

/// `ViewState` key tags after the view id.
const OFFSET_TAG: u8 = 0;
const STATE_TAG: u8 = 1;
const WATERMARK_TAG: u8 = 2;
const EVENTS_TAG: u8 = 3;
const DISTINCT_TAG: u8 = 4;

/// One view's storage.
#[derive(Debug)]
pub struct ViewStore {
    db: Arc<Db>,
    id: ObjectId,
    /// The view's rows.
    schema: SchemaRef,
}

/// A value of a group's `count(DISTINCT)` set: group key, column, encoded value.
pub type DistinctEntry = (Vec<u8>, u16, Vec<u8>);

/// The changes one epoch commits.
#[derive(Debug, Default)]
pub struct EpochWrite {
    /// Group key -> new state row (encoded).
    pub state: Vec<(Vec<u8>, Vec<u8>)>,
    /// Values new to a group's `count(DISTINCT)` set.
    pub distinct: Vec<DistinctEntry>,
    /// Groups whose state is no longer needed (their window closed), sets included.
    pub state_deletes: Vec<Vec<u8>>,
    /// Group key -> new output row, or `None` to remove the group's row.
    pub rows: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Late rows (in `weir.late_events`' schema) by the log entry they came in.
    pub late: Vec<(u64, RecordBatch)>,
    /// The source watermark after this epoch (µs), if the view follows one.
    pub watermark: Option<i64>,
    /// The next log sequence number to read.
    pub next_seq: u64,
    /// Log events the view has read in all, after this epoch.
    pub events_done: u64,
}

impl ViewStore {
    /// The store of view `id`, whose rows have `schema`.
    pub fn new(db: Arc<Db>, id: ObjectId, schema: SchemaRef) -> Self {
        Self { db, id, schema }
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

    /// Where the view stands: next log seq to read, events read, watermark.
    pub fn position(&self) -> Result<(u64, u64, Option<i64>), StorageError> {
        Ok((self.next_seq()?, self.events_done()?, self.watermark()?))
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

    /// The watermark the view had reached (µs), if it follows one and has seen an event.
    pub fn watermark(&self) -> Result<Option<i64>, StorageError> {
        match self.db.get(Cf::ViewState, &self.key(WATERMARK_TAG, &[]))? {
            None => Ok(None),
            Some(bytes) => Ok(Some(i64::from_be_bytes(
                bytes.as_slice().try_into().map_err(|_| {
                    StorageError::Corrupt(format!("view watermark of {} bytes", bytes.len()))
                })?,
            ))),
        }
    }

    /// Every group's stored state row, decoded with `state_schema`, and the group keys.
    pub fn load_state(
        &self,
        state_schema: &SchemaRef,
    ) -> Result<(Vec<Vec<u8>>, RecordBatch), StorageError> {
        let prefix = self.key(STATE_TAG, &[]);
        let entries = self.db.scan_prefix(Cf::ViewState, &prefix)?;
        let keys = entries
            .iter()
            .map(|(k, _)| k[prefix.len()..].to_vec())
            .collect();
        let values: Vec<&[u8]> = entries.iter().map(|(_, v)| v.as_ref()).collect();
        Ok((keys, decode_rows(state_schema, &values)?))
    }

    /// Every stored `count(DISTINCT)` value: group key, column, encoded value.
    pub fn load_distinct(&self) -> Result<Vec<DistinctEntry>, StorageError> {
        let prefix = self.key(DISTINCT_TAG, &[]);
        let corrupt = || StorageError::Corrupt("view distinct-value key".into());
        self.db
            .scan_prefix(Cf::ViewState, &prefix)?
            .into_iter()
            .map(|(key, _)| {
                let rest = &key[prefix.len()..];
                let len = u32::from_be_bytes(
                    rest.get(..4)
                        .ok_or_else(corrupt)?
                        .try_into()
                        .map_err(|_| corrupt())?,
                ) as usize;
                let group = rest.get(4..4 + len).ok_or_else(corrupt)?.to_vec();
                let column = u16::from_be_bytes(
                    rest.get(4 + len..6 + len)
                        .ok_or_else(corrupt)?
                        .try_into()
                        .map_err(|_| corrupt())?,
                );
                Ok((group, column, rest[6 + len..].to_vec()))
            })
            .collect()
    }

    /// Encodes state or output rows for an [`EpochWrite`].
    pub fn encode(batch: &RecordBatch) -> Result<Vec<Vec<u8>>, StorageError> {
        encode_rows(batch)
    }

    /// Commits one epoch atomically.
    pub fn commit(&self, epoch: EpochWrite) -> Result<(), StorageError> {
        let mut write = WriteBatch::default();
        for (key, row) in epoch.state {
            write.put_cf(self.db.cf(Cf::ViewState), self.key(STATE_TAG, &key), row);
        }
        for (group, column, value) in &epoch.distinct {
            let mut key = self.distinct_prefix(group);
            key.extend(column.to_be_bytes());
            key.extend(value);
            write.put_cf(self.db.cf(Cf::ViewState), self.key(DISTINCT_TAG, &key), []);
        }
        for key in epoch.state_deletes {
            write.delete_cf(self.db.cf(Cf::ViewState), self.key(STATE_TAG, &key));
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
        for (seq, rows) in &epoch.late {
            stage_late_events(&self.db, &mut write, self.id, *seq, rows)?;
        }
        if let Some(watermark) = epoch.watermark {
            write.put_cf(
                self.db.cf(Cf::ViewState),
                self.key(WATERMARK_TAG, &[]),
                watermark.to_be_bytes(),
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
        self.db.write(write)
    }

    /// The view's rows, from one snapshot, in group-key order.
    pub fn scan(&self) -> Result<RecordBatch, StorageError> {
        let entries = self.db.scan_prefix(Cf::Rows, &self.id.to_be_bytes())?;
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
