//! A reference table's rows: `table id ++ key -> row`, where the key is the memcomparable
//! primary key, or a hidden sequence number for tables without one.
//!
//! Each statement is one atomic `WriteBatch`. A per-table write lock makes the check-then-write
//! of constraints (unique keys) atomic against concurrent statements on the same table.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::arrow::array::{BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use rocksdb::WriteBatch;
use weir_catalog::TableDef;

use super::conform::conform;
use super::{Cf, Db, StorageError, keys, row_codec};

/// The rows of a table read from one snapshot, with their storage keys.
#[derive(Debug)]
pub struct ScannedRows {
    /// Storage key of each row, in row order.
    pub keys: Vec<Box<[u8]>>,
    /// The rows.
    pub batch: RecordBatch,
}

/// Writers of a table held off during its `DROP TABLE`.
#[derive(Debug)]
pub struct DropLock<'a> {
    store: &'a TableStore,
    _guard: MutexGuard<'a, ()>,
}

impl DropLock<'_> {
    /// The drop committed: statements planned before it now fail instead of writing.
    pub fn retire(self) {
        self.store.dropped.store(true, Ordering::Release);
    }
}

/// Reads and writes one table's rows.
#[derive(Debug)]
pub struct TableStore {
    db: Arc<Db>,
    def: Arc<TableDef>,
    schema: SchemaRef,
    writer: Mutex<()>,
    next_seq: AtomicU64,
    /// Set, under `writer`, once a `DROP TABLE` of this table committed: a statement planned
    /// before the drop must not write rows under the retired id.
    dropped: AtomicBool,
}

type DfResult<T> = Result<T, DataFusionError>;

fn external(e: StorageError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl TableStore {
    /// Opens the rows of `def`.
    pub fn open(db: Arc<Db>, def: Arc<TableDef>) -> Result<Self, StorageError> {
        let prefix = def.id.to_be_bytes();
        // Keyless tables key rows by a sequence number that continues after a restart.
        let next_seq = if def.primary_key.is_empty() {
            db.next_seq(Cf::Rows, &prefix)?
        } else {
            0
        };
        Ok(Self {
            schema: def.arrow_schema(),
            db,
            def,
            writer: Mutex::new(()),
            next_seq: AtomicU64::new(next_seq),
            dropped: AtomicBool::new(false),
        })
    }

    /// The table's definition.
    pub fn def(&self) -> &TableDef {
        &self.def
    }

    /// The schema rows are scanned with.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Takes the write lock, refusing if the table was dropped meanwhile.
    fn lock_writer(&self) -> DfResult<MutexGuard<'_, ()>> {
        let guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if self.dropped.load(Ordering::Acquire) {
            return Err(external(StorageError::Dropped {
                table: self.def.name.clone(),
            }));
        }
        Ok(guard)
    }

    /// Holds writers off while a `DROP TABLE` commits; [`DropLock::retire`] once it did.
    pub fn lock_for_drop(&self) -> DropLock<'_> {
        DropLock {
            store: self,
            _guard: self.writer.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Every row, from one consistent snapshot.
    pub fn scan(&self) -> Result<ScannedRows, StorageError> {
        let entries = self.db.scan_prefix(Cf::Rows, &self.def.id.to_be_bytes())?;
        let rows: Vec<&[u8]> = entries.iter().map(|(_, v)| &**v).collect();
        let batch = row_codec::decode_rows(&self.schema, &rows)?;
        Ok(ScannedRows {
            keys: entries.into_iter().map(|(k, _)| k).collect(),
            batch,
        })
    }

    /// Appends `batch` (columns in table order), refusing nulls in `NOT NULL` columns and keys
    /// that already exist. Returns the number of rows written.
    pub fn insert(&self, batch: RecordBatch) -> DfResult<u64> {
        let _guard = self.lock_writer()?;
        let mut write = WriteBatch::default();
        let count = self.stage_insert(&mut write, batch)?;
        self.db.write(write).map_err(external)?;
        Ok(count)
    }

    /// Adds the rows of `batch` to `write`, checked as [`Self::insert`] checks them, for a
    /// statement that commits them with other changes (`CREATE TABLE ... AS SELECT`). The
    /// caller must keep other writers of this table out until `write` commits.
    pub fn stage_insert(&self, write: &mut WriteBatch, batch: RecordBatch) -> DfResult<u64> {
        let batch = conform(batch, &self.def.name, &self.def.columns, &self.schema)?;
        self.put_rows(write, &batch, &HashSet::new())?;
        Ok(batch.num_rows() as u64)
    }

    /// Deletes the rows `select` marks true. Returns the number deleted.
    pub fn delete(
        &self,
        select: impl FnOnce(&RecordBatch) -> DfResult<BooleanArray>,
    ) -> DfResult<u64> {
        let _guard = self.lock_writer()?;
        let rows = self.scan().map_err(external)?;
        let mask = select(&rows.batch)?;
        let mut write = WriteBatch::default();
        let mut deleted = 0;
        for (key, selected) in rows.keys.iter().zip(mask.iter()) {
            if selected == Some(true) {
                write.delete_cf(self.db.cf(Cf::Rows), key);
                deleted += 1;
            }
        }
        self.db.write(write).map_err(external)?;
        Ok(deleted)
    }

    /// Replaces the rows `change` selects with the new versions it computes for them (one per
    /// selected row, in order). Keys may change; a new key that collides with a row that stays
    /// is refused. Returns the number of rows updated.
    pub fn update(
        &self,
        change: impl FnOnce(&RecordBatch) -> DfResult<(BooleanArray, RecordBatch)>,
    ) -> DfResult<u64> {
        let _guard = self.lock_writer()?;
        let rows = self.scan().map_err(external)?;
        let (mask, new_rows) = change(&rows.batch)?;
        let new_rows = conform(new_rows, &self.def.name, &self.def.columns, &self.schema)?;
        let mut write = WriteBatch::default();
        let mut replaced = HashSet::new();
        for (key, selected) in rows.keys.iter().zip(mask.iter()) {
            if selected == Some(true) {
                write.delete_cf(self.db.cf(Cf::Rows), key);
                replaced.insert(key.to_vec());
            }
        }
        if replaced.len() != new_rows.num_rows() {
            return Err(DataFusionError::Internal(format!(
                "update selected {} rows but computed {}",
                replaced.len(),
                new_rows.num_rows()
            )));
        }
        self.put_rows(&mut write, &new_rows, &replaced)?;
        self.db.write(write).map_err(external)?;
        Ok(new_rows.num_rows() as u64)
    }

    /// Adds `batch` to `write`. `vacated` keys count as free (their rows are deleted by the
    /// same write).
    fn put_rows(
        &self,
        write: &mut WriteBatch,
        batch: &RecordBatch,
        vacated: &HashSet<Vec<u8>>,
    ) -> DfResult<()> {
        let keys = self.keys_for(batch)?;
        if !self.def.primary_key.is_empty() {
            let mut seen = HashSet::with_capacity(keys.len());
            let stored = self.db_multi_exists(&keys)?;
            for (row, key) in keys.iter().enumerate() {
                let taken = stored[row] && !vacated.contains(key);
                if taken || !seen.insert(key.as_slice()) {
                    return Err(external(StorageError::UniqueViolation {
                        table: self.def.name.clone(),
                        detail: self.describe_key(batch, row),
                    }));
                }
            }
        }
        let values = row_codec::encode_rows(batch).map_err(external)?;
        let cf = self.db.cf(Cf::Rows);
        for (key, value) in keys.iter().zip(values) {
            write.put_cf(cf, key, value);
        }
        Ok(())
    }

    fn db_multi_exists(&self, keys: &[Vec<u8>]) -> DfResult<Vec<bool>> {
        keys.iter()
            .map(|k| {
                self.db
                    .get(Cf::Rows, k)
                    .map(|v| v.is_some())
                    .map_err(external)
            })
            .collect()
    }

    fn keys_for(&self, batch: &RecordBatch) -> DfResult<Vec<Vec<u8>>> {
        let prefix = self.def.id.to_be_bytes();
        let mut keys = vec![prefix.to_vec(); batch.num_rows()];
        if self.def.primary_key.is_empty() {
            let first = self
                .next_seq
                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            for (i, key) in keys.iter_mut().enumerate() {
                key.extend((first + i as u64).to_be_bytes());
            }
        } else {
            for &column in &self.def.primary_key {
                keys::append_column(&mut keys, batch.column(column)).map_err(external)?;
            }
        }
        Ok(keys)
    }

    fn describe_key(&self, batch: &RecordBatch, row: usize) -> String {
        let options = FormatOptions::default();
        let names: Vec<&str> = self
            .def
            .primary_key
            .iter()
            .map(|&c| self.def.columns[c].name.as_str())
            .collect();
        let values: Vec<String> = self
            .def
            .primary_key
            .iter()
            .map(|&c| {
                ArrayFormatter::try_new(batch.column(c).as_ref(), &options)
                    .map(|f| f.value(row).to_string())
                    .unwrap_or_default()
            })
            .collect();
        format!(
            "Key ({})=({}) already exists.",
            names.join(", "),
            values.join(", ")
        )
    }
}
