//! Weir's catalog: what every object (table, source, and later view, alert) is, independent of
//! where it is stored.
//!
//! The crate holds definitions, ids, column types and the versioned encoding used to persist
//! them. It does no I/O: the server's `storage` layer writes the encoded entries into RocksDB
//! in the same atomic write as the data change a DDL statement makes, so a crash leaves either
//! the old or the new catalog, never a mix.

mod catalog;
mod codec;
mod error;
mod ids;
mod nexmark;
mod object;
mod source;
mod types;
mod view;

pub use catalog::Catalog;
pub use codec::{CODEC_VERSION, decode_object, encode_object};
pub use error::CatalogError;
pub use ids::ObjectId;
pub use nexmark::{NEXMARK_EVENT_SPACING_US, NexmarkOptions, NexmarkTable};
pub use object::{CatalogObject, ColumnDef, ObjectKind, TableDef};
pub use source::{
    Connector, Dedup, Encoding, KAFKA_METADATA_COLUMNS, KAFKA_PARTITION_COLUMN, KafkaOptions,
    RECEIVED_AT_COLUMN, SourceDef, SourceOptions, StartupMode, UnknownFields, Watermark,
};
pub use types::{ColumnType, JSON_METADATA_KEY};
pub use view::{Emit, ViewDef};
