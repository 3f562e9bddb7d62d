//! Persisting the catalog: one entry per object in the `catalog` column family, plus the id
//! counter. DDL adds its entry changes to the same `WriteBatch` as its data changes.

use std::sync::Arc;

use rocksdb::WriteBatch;
use weir_catalog::{Catalog, CatalogObject, decode_object, encode_object};

use super::{Cf, Db, StorageError};

const NEXT_ID_KEY: &[u8] = b"next_object_id";

/// Reads and writes catalog entries.
#[derive(Debug, Clone)]
pub struct CatalogStore {
    db: Arc<Db>,
}

impl CatalogStore {
    /// A store over `db`.
    pub fn new(db: Arc<Db>) -> Self {
        Self { db }
    }

    /// Loads every persisted object.
    pub fn load(&self) -> Result<Catalog, StorageError> {
        let objects = self
            .db
            .scan_prefix(Cf::Catalog, &[])?
            .into_iter()
            .map(|(_, value)| decode_object(&value))
            .collect::<Result<Vec<_>, _>>()?;
        let next_id = match self.db.get(Cf::Meta, NEXT_ID_KEY)? {
            Some(bytes) => u64::from_be_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| StorageError::Corrupt("next_object_id".into()))?,
            ),
            None => 1,
        };
        Ok(Catalog::new(objects, next_id))
    }

    /// Adds the creation of `object` to `batch`, with the id counter moved past it.
    pub fn put(&self, batch: &mut WriteBatch, object: &CatalogObject, next_id: u64) {
        batch.put_cf(
            self.db.cf(Cf::Catalog),
            object.id().to_be_bytes(),
            encode_object(object),
        );
        batch.put_cf(self.db.cf(Cf::Meta), NEXT_ID_KEY, next_id.to_be_bytes());
    }

    /// Adds the removal of `object` and of all its data (rows, log entries) to `batch`.
    pub fn delete(&self, batch: &mut WriteBatch, object: &CatalogObject) {
        let id = object.id();
        batch.delete_cf(self.db.cf(Cf::Catalog), id.to_be_bytes());
        batch.delete_cf(self.db.cf(Cf::Meta), super::source_log::rows_key(id));
        // Data keys start with the owner's id, and ids are never reused.
        for cf in [
            Cf::Rows,
            Cf::Log,
            Cf::LogStats,
            Cf::Dedup,
            Cf::ViewState,
            Cf::LateEvents,
        ] {
            batch.delete_range_cf(self.db.cf(cf), id.to_be_bytes(), (id.0 + 1).to_be_bytes());
        }
    }
}
