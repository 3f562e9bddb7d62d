//! Prometheus metrics (`GET /metrics`): counters and histograms recorded where things happen
//! (`metrics` macros), gauges read from the engine's state when scraped. The recorder is
//! process-wide and installed by `weir serve`; without it (unit tests, the library used
//! alone) every macro is a no-op.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::query::Engine;

/// Events accepted into a source's log (duplicates not counted), by `source`.
pub const SOURCE_EVENTS: &str = "weir_source_events_total";
/// Bytes of request bodies received, by `source`.
pub const SOURCE_BYTES: &str = "weir_source_bytes_total";
/// Events dropped as duplicates of accepted ones, by `source`.
pub const SOURCE_DUPLICATES: &str = "weir_source_duplicates_total";
/// Events refused into `weir.dead_letters`, by `source`.
pub const SOURCE_REJECTED: &str = "weir_source_rejected_total";
/// Time to answer an ingest request (decode, validate, durable append), by `source`.
pub const INGEST_SECONDS: &str = "weir_ingest_request_seconds";
/// Rows written into `weir.dead_letters` (refused events, unreadable bodies), by `source`.
pub const SOURCE_DEAD_LETTERS: &str = "weir_source_dead_letters_total";
/// Events a view set aside into `weir.late_events`, by `view` and `reason`
/// (`behind_watermark`, `ahead_of_arrival`).
pub const VIEW_LATE_EVENTS: &str = "weir_view_late_events_total";
/// Time from a log entry's durable append (an HTTP request's 202, a Kafka poll's append) until
/// the view's write holding it landed, by `view`: how fresh a view is, entry by entry.
pub const VIEW_VISIBLE_SECONDS: &str = "weir_view_visible_seconds";
/// Group states an epoch needed, by `view`; and of those, the ones not in the cache (read back
/// from RocksDB). Their ratio is the state cache's miss rate.
pub const VIEW_CACHE_LOOKUPS: &str = "weir_view_state_cache_lookups_total";
/// See [`VIEW_CACHE_LOOKUPS`].
pub const VIEW_CACHE_MISSES: &str = "weir_view_state_cache_misses_total";
/// Time for one epoch's atomic write to land, by `view`.
pub const VIEW_COMMIT_SECONDS: &str = "weir_view_epoch_commit_seconds";
/// Time from a statement's start to its last row, by `kind` (query, dml, ddl, flush, show, other).
pub const QUERY_SECONDS: &str = "weir_query_seconds";

/// Open Postgres connections.
pub const PG_CONNECTIONS: &str = "weir_pg_connections";
/// Postgres statements running, rows still streaming included.
pub const PG_STATEMENTS_RUNNING: &str = "weir_pg_statements_running";

/// Counts one of something in a gauge for as long as it lives (a connection, a statement),
/// however it ends: returned, failed, or dropped with its client.
#[derive(Debug)]
pub struct InFlight(&'static str);

impl InFlight {
    /// One more in `gauge`, until dropped.
    pub fn new(gauge: &'static str) -> Self {
        gauge!(gauge).increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        gauge!(self.0).decrement(1.0);
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls keep the first).
pub fn install() {
    HANDLE.get_or_init(|| {
        let latency = [
            0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            5.0, 10.0,
        ];
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
            .expect("non-empty buckets")
            .install_recorder()
            .expect("the only metrics recorder of the process")
    });
}

/// The Prometheus text of every metric, gauges read from `engine` now.
pub fn render(engine: &Engine) -> String {
    let Some(handle) = HANDLE.get() else {
        return String::new();
    };
    record_gauges(engine);
    handle.render()
}

/// Records a duration in seconds.
pub fn seconds(name: &'static str, label: (&'static str, String), took: Duration) {
    histogram!(name, label.0 => label.1).record(took.as_secs_f64());
}

/// Counts `letters`, just written to `weir.dead_letters`, by source.
pub fn dead_letters(letters: &[crate::storage::DeadLetter]) {
    for (source, n) in tally(letters.iter().map(|l| l.source.as_str())) {
        counter!(SOURCE_DEAD_LETTERS, "source" => source.to_string()).increment(n);
    }
}

/// How many times each label occurs, in first-seen order: one counter increment per label
/// instead of one per row (labels are few: sources of a request, reasons of an epoch).
pub fn tally<'a>(labels: impl IntoIterator<Item = &'a str>) -> Vec<(&'a str, u64)> {
    let mut counts: Vec<(&str, u64)> = Vec::new();
    for label in labels {
        match counts.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => counts.push((label, 1)),
        }
    }
    counts
}

fn record_gauges(engine: &Engine) {
    let now_us = chrono::Utc::now().timestamp_micros();
    for view in engine.view_gauges() {
        let labels = [("view", view.name.clone()), ("source", view.source.clone())];
        gauge!("weir_view_lag_events", &labels).set(view.lag_events as f64);
        gauge!("weir_view_lag_entries", &labels).set(view.lag_entries as f64);
        gauge!("weir_view_lag_seconds", &labels).set(view.lag.as_secs_f64());
        if let Some(watermark) = view.watermark_us {
            gauge!("weir_view_watermark_seconds", &labels).set(watermark as f64 / 1e6);
        }
        gauge!("weir_view_state_groups", &labels).set(view.state_groups as f64);
        gauge!("weir_view_cached_groups", &labels).set(view.cached_groups as f64);
        if let Some(newest) = view.event_time_us {
            // How far the newest event time the view has committed trails the wall clock.
            gauge!("weir_view_freshness_seconds", &labels).set((now_us - newest) as f64 / 1e6);
        }
        if let Some(watermark) = view.watermark_us {
            // How far event time as the view sees it trails the wall clock.
            gauge!("weir_view_watermark_delay_seconds", &labels)
                .set((now_us - watermark) as f64 / 1e6);
        }
    }
    for (source, status) in engine.kafka_snapshots() {
        let labels = [("source", source.clone())];
        gauge!("weir_kafka_source_up", &labels).set(f64::from(u8::from(status.error.is_none())));
        counter!("weir_kafka_source_errors_total", &labels).absolute(status.errors_total);
        counter!("weir_kafka_messages_total", &labels).absolute(status.messages_total);
        counter!("weir_kafka_dead_letters_total", &labels).absolute(status.dead_letters_total);
        for (partition, p) in &status.partitions {
            if let Some(lag) = p.lag() {
                gauge!(
                    "weir_kafka_partition_lag",
                    "source" => source.clone(),
                    "partition" => partition.to_string()
                )
                .set(lag as f64);
            }
        }
    }
    let db = engine.storage_gauges();
    gauge!("weir_rocksdb_live_data_bytes").set(db.live_data_bytes as f64);
    gauge!("weir_rocksdb_pending_compaction_bytes").set(db.pending_compaction_bytes as f64);
    gauge!("weir_rocksdb_running_background_jobs").set(db.running_background_jobs as f64);
}
