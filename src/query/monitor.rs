//! What the engine tells `/metrics` when scraped: each view's progress and lag, each Kafka
//! consumer's status, and storage estimates.

use weir_catalog::Connector;

use crate::connectors::pull_status::Snapshot;
use crate::storage::DbStats;

use super::Engine;

/// One running view, as scraped.
#[derive(Debug, Clone)]
pub struct ViewGauges {
    /// The view's name.
    pub name: String,
    /// The source (or view) whose log it follows.
    pub source: String,
    /// Events in the log the view has not committed yet.
    pub lag_events: u64,
    /// Log entries the view has not committed yet.
    pub lag_entries: u64,
    /// How long the oldest log entry the view has not committed has been in the log.
    pub lag: std::time::Duration,
    /// Its watermark (µs), if it follows one.
    pub watermark_us: Option<i64>,
    /// The newest event time it has committed (µs): its watermark plus the source's delay
    /// (over a Kafka source, the slowest active partition's newest).
    pub event_time_us: Option<i64>,
    /// Groups with aggregate state.
    pub state_groups: usize,
    /// Of those, the groups whose state is in memory.
    pub cached_groups: usize,
}

impl Engine {
    /// Every running view's progress and lag.
    pub fn view_gauges(&self) -> Vec<ViewGauges> {
        let views = self.views.read().unwrap_or_else(|e| e.into_inner());
        views
            .iter()
            .map(|(name, handle)| {
                let now = handle.progress().now();
                let log = handle.log();
                ViewGauges {
                    name: name.clone(),
                    source: log.def().name.clone(),
                    lag_events: log.rows().saturating_sub(now.events_done),
                    lag_entries: log.head().saturating_sub(now.next_seq),
                    lag: log.waited(now.next_seq),
                    watermark_us: now.watermark,
                    event_time_us: now.watermark.map(|w| {
                        let delay_ms = log.def().watermark.as_ref().map_or(0, |w| w.delay_ms);
                        w.saturating_add(delay_ms as i64 * 1000)
                    }),
                    state_groups: now.state_groups,
                    cached_groups: now.cached_groups,
                }
            })
            .collect()
    }

    /// Every Kafka source's consumer status.
    pub fn kafka_snapshots(&self) -> Vec<(String, Snapshot)> {
        // Sources before pullers, in the order DROP takes them.
        let sources = self.sources.read().unwrap_or_else(|e| e.into_inner());
        let pullers = self.pullers.read().unwrap_or_else(|e| e.into_inner());
        pullers
            .iter()
            .filter(|(name, _)| {
                sources
                    .get(*name)
                    .is_some_and(|log| log.def().options.connector == Connector::Kafka)
            })
            .map(|(name, consumer)| (name.clone(), consumer.status().snapshot()))
            .collect()
    }

    /// RocksDB's size estimates.
    pub fn storage_gauges(&self) -> DbStats {
        self.db.stats()
    }
}
