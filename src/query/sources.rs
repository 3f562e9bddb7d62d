//! The running side of sources: Kafka consumers, and the system tables that show every
//! source's state (`weir.sources`) and each Kafka partition's position (`weir.kafka_partitions`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use weir_catalog::Connector;

use super::provider::ReadOnlyTable;
use crate::connectors::pull::Puller;
use crate::connectors::pull_status::PullStatus;
use crate::storage::{SourceLog, StorageError};

/// Every registered source's log, by name.
pub type SourceLogs = Arc<RwLock<HashMap<String, Arc<SourceLog>>>>;
/// The connector thread of every Kafka and Nexmark source, by source name.
pub type Pullers = Arc<RwLock<HashMap<String, Puller>>>;

impl super::Engine {
    /// The status of every source whose connector ends by itself: a Nexmark generator with an
    /// event count.
    pub(super) fn bounded_generators(&self) -> Vec<(String, Arc<PullStatus>)> {
        let logs = self.sources.read().unwrap_or_else(|e| e.into_inner());
        let pullers = self.pullers.read().unwrap_or_else(|e| e.into_inner());
        pullers
            .iter()
            .filter(|(name, _)| {
                logs.get(*name).is_some_and(|log| {
                    let options = &log.def().options;
                    options.connector == Connector::Nexmark
                        && options
                            .nexmark
                            .as_ref()
                            .is_some_and(|n| n.event_num.is_some())
                })
            })
            .map(|(name, puller)| (name.clone(), puller.status().clone()))
            .collect()
    }
}

fn connector_name(connector: Connector) -> &'static str {
    match connector {
        Connector::Http => "http",
        Connector::Kafka => "kafka",
        Connector::Nexmark => "nexmark",
        Connector::View => "view",
    }
}

/// `weir.sources`: each source's connector, what its log holds, and its consumer's health.
pub(super) fn sources_table(logs: SourceLogs, pullers: Pullers) -> ReadOnlyTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("connector", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, true),
        Field::new("events", DataType::Int64, false),
        Field::new("log_entries", DataType::Int64, false),
        Field::new("messages_consumed", DataType::Int64, true),
        Field::new("dead_letters", DataType::Int64, true),
        Field::new("errors", DataType::Int64, true),
        Field::new("last_error", DataType::Utf8, true),
    ]));
    let table_schema = schema.clone();
    ReadOnlyTable::new(schema, move || {
        let logs = logs.read().unwrap_or_else(|e| e.into_inner());
        let pullers = pullers.read().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<&String> = logs.keys().collect();
        names.sort();
        let logs: Vec<&Arc<SourceLog>> = names.iter().map(|n| &logs[*n]).collect();
        let status: Vec<_> = names
            .iter()
            .map(|n| pullers.get(*n).map(|p| p.status().snapshot()))
            .collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                names.iter().map(|n| n.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                logs.iter()
                    .map(|l| connector_name(l.def().options.connector)),
            )),
            Arc::new(StringArray::from_iter(logs.iter().map(|l| {
                l.def().options.kafka.as_ref().map(|k| k.topic.as_str())
            }))),
            Arc::new(Int64Array::from_iter_values(
                logs.iter().map(|l| l.rows() as i64),
            )),
            Arc::new(Int64Array::from_iter_values(
                logs.iter().map(|l| l.head() as i64),
            )),
            Arc::new(Int64Array::from_iter(
                status
                    .iter()
                    .map(|s| s.as_ref().map(|s| s.messages_total as i64)),
            )),
            Arc::new(Int64Array::from_iter(
                status
                    .iter()
                    .map(|s| s.as_ref().map(|s| s.dead_letters_total as i64)),
            )),
            Arc::new(Int64Array::from_iter(
                status
                    .iter()
                    .map(|s| s.as_ref().map(|s| s.errors_total as i64)),
            )),
            Arc::new(StringArray::from_iter(
                status
                    .iter()
                    .map(|s| s.as_ref().and_then(|s| s.error.clone())),
            )),
        ];
        let batch = RecordBatch::try_new(table_schema.clone(), columns)
            .map_err(|e| StorageError::InvalidValue(e.to_string()))?;
        Ok(vec![batch])
    })
}

/// `weir.kafka_partitions`: per Kafka source and partition, the next offset Weir appends,
/// the broker's high watermark when last read, and the lag between them.
pub(super) fn kafka_partitions_table(logs: SourceLogs, pullers: Pullers) -> ReadOnlyTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("next_offset", DataType::Int64, false),
        Field::new("high_watermark", DataType::Int64, true),
        Field::new("lag", DataType::Int64, true),
    ]));
    let table_schema = schema.clone();
    ReadOnlyTable::new(schema, move || {
        let logs = logs.read().unwrap_or_else(|e| e.into_inner());
        let pullers = pullers.read().unwrap_or_else(|e| e.into_inner());
        let mut rows = Vec::new();
        let mut names: Vec<&String> = pullers.keys().collect();
        names.sort();
        for name in names {
            let Some(topic) = logs
                .get(name)
                .and_then(|l| l.def().options.kafka.as_ref().map(|k| k.topic.clone()))
            else {
                continue;
            };
            for (partition, p) in pullers[name].status().snapshot().partitions {
                rows.push((name.clone(), topic.clone(), partition, p));
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.0.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.1.as_str()),
            )),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.3.next_offset),
            )),
            Arc::new(Int64Array::from_iter(
                rows.iter().map(|r| r.3.high_watermark),
            )),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.3.lag()))),
        ];
        let batch = RecordBatch::try_new(table_schema.clone(), columns)
            .map_err(|e| StorageError::InvalidValue(e.to_string()))?;
        Ok(vec![batch])
    })
}
