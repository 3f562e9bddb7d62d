//! Where a pulling connector resumes, per partition: a Kafka source's next offset in each of
//! its topic's partitions, a Nexmark source's next event number (partition 0). `meta` keys
//! `kafka_offset:` (the name predates Nexmark; stored keys keep it) ++ source id (u64 BE) ++
//! partition (i32 BE) -> the next offset to read (i64 BE).
//!
//! They are written in the same `WriteBatch` as the log entries holding those messages, so
//! after a crash consumption resumes exactly after what the log holds: nothing is lost and
//! nothing is appended twice. (Offsets committed to a Kafka consumer group are for
//! monitoring.)

use std::collections::BTreeMap;

use weir_catalog::ObjectId;

use super::{Cf, Db, StorageError};

const PREFIX: &[u8] = b"kafka_offset:";

/// A source's stored next offset per partition.
pub type SourceOffsets = BTreeMap<i32, i64>;

fn source_prefix(source: ObjectId) -> Vec<u8> {
    let mut key = PREFIX.to_vec();
    key.extend(source.to_be_bytes());
    key
}

/// The `meta` write that records `next_offset` as where `partition` resumes.
pub fn offset_write(source: ObjectId, partition: i32, next_offset: i64) -> (Vec<u8>, Vec<u8>) {
    let mut key = source_prefix(source);
    key.extend(partition.to_be_bytes());
    (key, next_offset.to_be_bytes().to_vec())
}

/// The offsets stored for `source`.
pub fn load(db: &Db, source: ObjectId) -> Result<SourceOffsets, StorageError> {
    let prefix = source_prefix(source);
    let mut offsets = SourceOffsets::new();
    for (key, value) in db.scan_prefix(Cf::Meta, &prefix)? {
        let corrupt =
            || StorageError::Corrupt(format!("Kafka offset entry of {} bytes", key.len()));
        let partition = i32::from_be_bytes(key[prefix.len()..].try_into().map_err(|_| corrupt())?);
        let offset = i64::from_be_bytes(value[..].try_into().map_err(|_| corrupt())?);
        offsets.insert(partition, offset);
    }
    Ok(offsets)
}

/// Writes `offsets` for `source` on their own (where a source starts, before any message).
pub fn store(db: &Db, source: ObjectId, offsets: &SourceOffsets) -> Result<(), StorageError> {
    let mut write = rocksdb::WriteBatch::default();
    for (&partition, &offset) in offsets {
        let (key, value) = offset_write(source, partition, offset);
        write.put_cf(db.cf(Cf::Meta), key, value);
    }
    db.write(write)
}
