//! Sources: durable, replayable, append-only logs of events, whatever their connector.
//!
//! Options are parsed once into these types when the source is created; unknown keys are
//! refused there, so nothing downstream reads an option as a string.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::{CatalogError, ColumnDef, ColumnType, NexmarkOptions, ObjectId};

/// The system column every source row carries: when Weir accepted it.
pub const RECEIVED_AT_COLUMN: &str = "_received_at";

/// Where a source's events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Connector {
    /// `POST /api/events/<source>` and `INSERT INTO <source>`.
    Http,
    /// A materialized view's output log: its final rows, read by views over it. Such logs
    /// are not catalog objects; the view is.
    View,
    /// A Kafka topic, every partition of it ([`KafkaOptions`]).
    Kafka,
    /// Nexmark's generated auction events ([`NexmarkOptions`]).
    Nexmark,
}

/// Where a Kafka source starts reading a partition it has no stored offset for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartupMode {
    /// `scan.startup.mode = 'earliest'`: the oldest message the broker keeps.
    Earliest,
    /// `scan.startup.mode = 'latest'`: only messages produced from now on.
    Latest,
    /// `scan.startup.mode = 'timestamp'`: the first message at or after
    /// `scan.startup.timestamp.millis`.
    Timestamp(i64),
}

/// A Kafka source's connection (RisingWave's option names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaOptions {
    /// `topic`.
    pub topic: String,
    /// `properties.bootstrap.server`: `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// `scan.startup.mode` (default earliest).
    pub startup: StartupMode,
    /// `properties.group.id`: the consumer group offsets are committed to, for monitoring
    /// (default `weir-<source>`); what Weir resumes from is the offsets stored with its log.
    pub group_id: Option<String>,
}

/// The metadata columns a Kafka source may declare, filled from each message rather than
/// from its payload, and their types.
pub const KAFKA_METADATA_COLUMNS: &[(&str, ColumnType)] = &[
    (KAFKA_PARTITION_COLUMN, ColumnType::Int32),
    ("_offset", ColumnType::Int64),
    ("_kafka_timestamp", ColumnType::TimestampTz),
    ("_key", ColumnType::Text),
];

/// The partition a Kafka source's row came from. Every Kafka source has it (it is added
/// last when not declared): watermarks are kept per partition.
pub const KAFKA_PARTITION_COLUMN: &str = "_partition";

/// How event payloads are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encoding {
    /// One JSON object per event.
    Json,
}

/// What happens to a JSON field that matches no column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnknownFields {
    /// The event is rejected with a reason naming the field.
    Reject,
    /// The field is dropped; the event is kept.
    Ignore,
}

/// Duplicate suppression by an event id column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dedup {
    /// The column holding the event id.
    pub key: String,
    /// How long an id is remembered, in milliseconds.
    pub window_ms: u64,
}

/// `WATERMARK FOR column AS column - INTERVAL '...'`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// The event-time column.
    pub column: String,
    /// How far the watermark trails the largest event time seen, in milliseconds.
    pub delay_ms: u64,
}

/// A source's typed `WITH` options and format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceOptions {
    /// `connector = '...'`.
    pub connector: Connector,
    /// `FORMAT JSON` / `FORMAT PLAIN ENCODE JSON`.
    pub encoding: Encoding,
    /// `dedup_key` and `dedup_window`.
    pub dedup: Option<Dedup>,
    /// `unknown_fields = 'reject' | 'ignore'`.
    pub unknown_fields: UnknownFields,
    /// `idle_timeout`: after this long without events, the watermark follows the wall clock
    /// (less the watermark delay), so windows on a quiet source still close.
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
    /// `max_future_skew`: how far ahead of its arrival an event's time may be before views set
    /// it aside instead of letting it move the watermark (views default to 5 minutes).
    #[serde(default)]
    pub max_future_skew_ms: Option<u64>,
    /// The topic and broker of a Kafka source.
    #[serde(default)]
    pub kafka: Option<KafkaOptions>,
    /// The generator of a Nexmark source.
    #[serde(default)]
    pub nexmark: Option<NexmarkOptions>,
}

/// A source definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceDef {
    /// Never reused; prefixes every log key.
    pub id: ObjectId,
    /// Source name.
    pub name: String,
    /// Declared columns, in order (`_received_at` is not among them).
    pub columns: Vec<ColumnDef>,
    /// The event-time watermark, if declared.
    pub watermark: Option<Watermark>,
    /// Connector, format and ingestion options.
    pub options: SourceOptions,
    /// The statement that created the source.
    pub definition: String,
}

impl SourceDef {
    /// Builds a definition, checking that columns are unique, that the watermark names a
    /// timestamp column and the dedup key a column.
    pub fn try_new(
        id: ObjectId,
        name: String,
        columns: Vec<ColumnDef>,
        watermark: Option<Watermark>,
        options: SourceOptions,
        definition: String,
    ) -> Result<Self, CatalogError> {
        if columns.is_empty() {
            return Err(CatalogError::InvalidDefinition(format!(
                "source \"{name}\" must have at least one column"
            )));
        }
        for (i, column) in columns.iter().enumerate() {
            if column.name == RECEIVED_AT_COLUMN {
                return Err(CatalogError::InvalidDefinition(format!(
                    "column name \"{RECEIVED_AT_COLUMN}\" is reserved for the time Weir received an event"
                )));
            }
            if columns[..i].iter().any(|c| c.name == column.name) {
                return Err(CatalogError::InvalidDefinition(format!(
                    "column \"{}\" specified more than once",
                    column.name
                )));
            }
            if column.default.is_some() {
                return Err(CatalogError::InvalidDefinition(format!(
                    "column \"{}\": sources do not take DEFAULT values",
                    column.name
                )));
            }
        }
        let column = |name: &str| columns.iter().find(|c| c.name == name);
        match (options.connector, &options.kafka) {
            (Connector::Kafka, None) => {
                return Err(CatalogError::InvalidDefinition(
                    "a Kafka source needs its topic and bootstrap server".into(),
                ));
            }
            (Connector::Kafka, Some(_)) => {
                for (name, ty) in KAFKA_METADATA_COLUMNS {
                    if let Some(c) = column(name)
                        && c.ty != *ty
                    {
                        return Err(CatalogError::InvalidDefinition(format!(
                            "Kafka metadata column \"{name}\" must be {}, not {}",
                            ty.sql_name(),
                            c.ty.sql_name()
                        )));
                    }
                }
                if column(KAFKA_PARTITION_COLUMN).is_none() {
                    return Err(CatalogError::InvalidDefinition(format!(
                        "a Kafka source has a \"{KAFKA_PARTITION_COLUMN}\" column"
                    )));
                }
            }
            (_, Some(_)) => {
                return Err(CatalogError::InvalidDefinition(
                    "Kafka options on a source whose connector is not 'kafka'".into(),
                ));
            }
            (_, None) => {}
        }
        match (options.connector, &options.nexmark) {
            (Connector::Nexmark, Some(nexmark)) => nexmark.table.check_columns(&columns)?,
            (Connector::Nexmark, None) => {
                return Err(CatalogError::InvalidDefinition(
                    "a Nexmark source needs nexmark.table.type".into(),
                ));
            }
            (_, Some(_)) => {
                return Err(CatalogError::InvalidDefinition(
                    "Nexmark options on a source whose connector is not 'nexmark'".into(),
                ));
            }
            (_, None) => {}
        }
        if let Some(watermark) = &watermark {
            match column(&watermark.column) {
                Some(c) if matches!(c.ty, ColumnType::Timestamp | ColumnType::TimestampTz) => {}
                Some(c) => {
                    return Err(CatalogError::InvalidDefinition(format!(
                        "watermark column \"{}\" must be a timestamp, not {}",
                        c.name,
                        c.ty.sql_name()
                    )));
                }
                None => {
                    return Err(CatalogError::InvalidDefinition(format!(
                        "watermark column \"{}\" does not exist",
                        watermark.column
                    )));
                }
            }
        }
        if let Some(dedup) = &options.dedup
            && column(&dedup.key).is_none()
        {
            return Err(CatalogError::InvalidDefinition(format!(
                "dedup_key column \"{}\" does not exist",
                dedup.key
            )));
        }
        Ok(Self {
            id,
            name,
            columns,
            watermark,
            options,
            definition,
        })
    }

    /// Whether `column` is filled from each Kafka message's metadata, not its payload.
    pub fn is_kafka_metadata(&self, column: &str) -> bool {
        self.options.connector == Connector::Kafka
            && KAFKA_METADATA_COLUMNS
                .iter()
                .any(|(name, _)| *name == column)
    }

    /// The schema of the source's rows: the declared columns, then `_received_at`.
    pub fn arrow_schema(&self) -> SchemaRef {
        let mut fields: Vec<_> = self
            .columns
            .iter()
            .map(|c| c.ty.arrow_field(&c.name, c.nullable))
            .collect();
        fields.push(ColumnType::TimestampTz.arrow_field(RECEIVED_AT_COLUMN, false));
        Arc::new(Schema::new(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, ty: ColumnType) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            ty,
            nullable: true,
            default: None,
        }
    }

    fn options(dedup: Option<&str>) -> SourceOptions {
        SourceOptions {
            idle_timeout_ms: None,
            max_future_skew_ms: None,
            kafka: None,
            nexmark: None,
            connector: Connector::Http,
            encoding: Encoding::Json,
            dedup: dedup.map(|key| Dedup {
                key: key.into(),
                window_ms: 1000,
            }),
            unknown_fields: UnknownFields::Reject,
        }
    }

    fn source(
        columns: Vec<ColumnDef>,
        watermark: Option<&str>,
        dedup: Option<&str>,
    ) -> Result<SourceDef, CatalogError> {
        let watermark = watermark.map(|c| Watermark {
            column: c.into(),
            delay_ms: 5000,
        });
        SourceDef::try_new(
            ObjectId(1),
            "e".into(),
            columns,
            watermark,
            options(dedup),
            String::new(),
        )
    }

    #[test]
    fn checks_watermark_and_dedup_columns() {
        let columns = vec![
            column("id", ColumnType::Text),
            column("ts", ColumnType::TimestampTz),
        ];
        let def = source(columns.clone(), Some("ts"), Some("id")).unwrap();
        let schema = def.arrow_schema();
        assert_eq!(schema.fields().len(), 3);
        assert_eq!(schema.field(2).name(), RECEIVED_AT_COLUMN);
        assert!(source(columns.clone(), Some("id"), None).is_err());
        assert!(source(columns.clone(), Some("nope"), None).is_err());
        assert!(source(columns, None, Some("nope")).is_err());
        assert!(
            source(
                vec![column(RECEIVED_AT_COLUMN, ColumnType::Text)],
                None,
                None
            )
            .is_err()
        );
    }
}
