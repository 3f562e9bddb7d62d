//! Durable state in RocksDB: the catalog, reference-table rows, source logs, and (as they
//! land) view state. Every change a statement makes goes into one `WriteBatch`, written with a
//! synced WAL before the statement is acknowledged.

mod catalog_store;
mod conform;
mod db;
mod dead_letters;
mod dedup;
mod error;
pub mod keys;
mod late_events;
mod lock;
pub mod row_codec;
mod source_log;
mod table_store;
mod view_store;

pub use catalog_store::CatalogStore;
pub use db::{Cf, Db, DbStats};
pub use dead_letters::{DeadLetter, DeadLetters, KafkaPosition};
pub use error::StorageError;
pub use source_offsets::SourceOffsets;
pub mod source_offsets;
pub use late_events::{LateEvents, late_events_schema, stage_late_events};
pub use lock::DataDirLock;
pub use source_log::{Appended, Entry, SourceDropLock, SourceLog};
pub use table_store::{DropLock, ScannedRows, TableStore};
pub use view_store::{
    ClockState, DistinctEntry, EpochWrite, PartitionTime, StoredGroup, ViewStore,
};
