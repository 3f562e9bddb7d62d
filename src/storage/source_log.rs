//! A source's log: every accepted batch of events, in order, durable before it is
//! acknowledged. Key `source id ++ seq` (u64 BE each) -> one Arrow IPC stream holding one
//! batch, so the log replays without the upstream and scans without row decoding.
//!
//! Appends are serialized per source so sequence order is commit order.

use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::arrow::array::{RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::error::DataFusionError;
use rocksdb::WriteBatch;
use weir_catalog::SourceDef;

use super::conform::conform;
use super::{Cf, Db, StorageError};

/// One source's log.
#[derive(Debug)]
pub struct SourceLog {
    db: Arc<Db>,
    def: Arc<SourceDef>,
    schema: SchemaRef,
    /// The next sequence number; held while appending.
    next_seq: Mutex<u64>,
    /// Set, under `next_seq`, once a `DROP SOURCE` committed: an append that raced with the
    /// drop must not write under the retired id.
    dropped: AtomicBool,
}

/// Appends held off while a `DROP SOURCE` commits.
#[derive(Debug)]
pub struct SourceDropLock<'a> {
    log: &'a SourceLog,
    _guard: MutexGuard<'a, u64>,
}

impl SourceDropLock<'_> {
    /// The drop committed: later appends fail instead of writing.
    pub fn retire(self) {
        self.log.dropped.store(true, Ordering::Release);
    }
}

impl SourceLog {
    /// Opens the log of `def`, continuing after its last entry.
    pub fn open(db: Arc<Db>, def: Arc<SourceDef>) -> Result<Self, StorageError> {
        let next_seq = match db.last_with_prefix(Cf::Log, &def.id.to_be_bytes())? {
            Some((key, _)) => {
                let seq: [u8; 8] = key[8..]
                    .try_into()
                    .map_err(|_| StorageError::Corrupt("source log key".into()))?;
                u64::from_be_bytes(seq) + 1
            }
            None => 0,
        };
        Ok(Self {
            schema: def.arrow_schema(),
            db,
            def,
            next_seq: Mutex::new(next_seq),
            dropped: AtomicBool::new(false),
        })
    }

    /// The source's definition.
    pub fn def(&self) -> &SourceDef {
        &self.def
    }

    /// The schema of logged rows (declared columns, then `_received_at`).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Appends events given as the declared columns: casts and checks them like any write,
    /// stamps `_received_at` with `received_at_us` (microseconds since the epoch, UTC), and
    /// returns the log sequence number and the number of rows.
    pub fn append_rows(
        &self,
        batch: RecordBatch,
        received_at_us: i64,
    ) -> Result<(u64, usize), DataFusionError> {
        let declared = conform(batch, &self.def.name, &self.def.columns, &self.schema)?;
        let rows = declared.num_rows();
        let mut columns = declared.columns().to_vec();
        columns.push(Arc::new(
            TimestampMicrosecondArray::from(vec![received_at_us; rows]).with_timezone("+00:00"),
        ));
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        let seq = self
            .append(&batch)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok((seq, rows))
    }

    /// Appends `batch` (already in the log's schema) durably and returns its sequence number.
    pub fn append(&self, batch: &RecordBatch) -> Result<u64, StorageError> {
        let value = encode(batch)?;
        let mut next_seq = self.next_seq.lock().unwrap_or_else(|e| e.into_inner());
        if self.dropped.load(Ordering::Acquire) {
            return Err(StorageError::Dropped {
                table: self.def.name.clone(),
            });
        }
        let seq = *next_seq;
        let mut write = WriteBatch::default();
        write.put_cf(self.db.cf(Cf::Log), self.key(seq), value);
        self.db.write(write)?;
        *next_seq += 1;
        Ok(seq)
    }

    /// Holds appends off while a `DROP SOURCE` commits.
    pub fn lock_for_drop(&self) -> SourceDropLock<'_> {
        SourceDropLock {
            log: self,
            _guard: self.next_seq.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Every logged batch, in order, from one snapshot.
    pub fn scan(&self) -> Result<Vec<RecordBatch>, StorageError> {
        let mut batches = Vec::new();
        for (_, value) in self.db.scan_prefix(Cf::Log, &self.def.id.to_be_bytes())? {
            batches.extend(decode(&value)?);
        }
        Ok(batches)
    }

    fn key(&self, seq: u64) -> Vec<u8> {
        let mut key = self.def.id.to_be_bytes().to_vec();
        key.extend(seq.to_be_bytes());
        key
    }
}

fn encode(batch: &RecordBatch) -> Result<Vec<u8>, StorageError> {
    let corrupt = |e: datafusion::arrow::error::ArrowError| {
        StorageError::InvalidValue(format!("cannot encode batch: {e}"))
    };
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema()).map_err(corrupt)?;
    writer.write(batch).map_err(corrupt)?;
    writer.into_inner().map_err(corrupt)
}

fn decode(bytes: &[u8]) -> Result<Vec<RecordBatch>, StorageError> {
    let corrupt = |e: datafusion::arrow::error::ArrowError| {
        StorageError::Corrupt(format!("source log entry: {e}"))
    };
    StreamReader::try_new(Cursor::new(bytes), None)
        .map_err(corrupt)?
        .map(|batch| batch.map_err(corrupt))
        .collect()
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Int32Array;
    use weir_catalog::{
        ColumnDef, ColumnType, Connector, Encoding, ObjectId, SourceOptions, UnknownFields,
    };

    use super::*;

    fn def() -> Arc<SourceDef> {
        let options = SourceOptions {
            connector: Connector::Http,
            encoding: Encoding::Json,
            dedup: None,
            unknown_fields: UnknownFields::Reject,
        };
        let columns = vec![ColumnDef {
            name: "a".into(),
            ty: ColumnType::Int32,
            nullable: true,
            default: None,
        }];
        Arc::new(
            SourceDef::try_new(
                ObjectId(3),
                "s".into(),
                columns,
                None,
                options,
                String::new(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn appends_survive_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let batch = |v: i32| {
            RecordBatch::try_new(
                def().arrow_schema(),
                vec![
                    Arc::new(Int32Array::from(vec![v, v + 1])),
                    Arc::new(TimestampMicrosecondArray::from(vec![1, 2]).with_timezone("+00:00")),
                ],
            )
            .unwrap()
        };
        {
            let db = Arc::new(Db::open(dir.path()).unwrap());
            let log = SourceLog::open(db, def()).unwrap();
            assert_eq!(log.append(&batch(1)).unwrap(), 0);
            assert_eq!(log.append(&batch(10)).unwrap(), 1);
        }
        let db = Arc::new(Db::open(dir.path()).unwrap());
        let log = SourceLog::open(db, def()).unwrap();
        assert_eq!(
            log.append(&batch(100)).unwrap(),
            2,
            "sequence continues after reopen"
        );
        assert_eq!(log.scan().unwrap(), vec![batch(1), batch(10), batch(100)]);
    }
}
