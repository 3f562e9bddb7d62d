//! A connector that pulls events into a source's log on a thread of its own (Kafka's consumer,
//! Nexmark's generator): the calls it makes block, and so do the log's synced appends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics::counter;

use super::pull_status::PullStatus;
use crate::storage::{Appended, Entry, SourceLog};
use crate::telemetry;

/// A running connector thread; asked to stop when dropped.
#[derive(Debug)]
pub struct Puller {
    status: Arc<PullStatus>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What a connector's loop is given: where to report, and a flag to watch.
#[derive(Debug, Clone)]
pub struct PullContext {
    /// The status readers see.
    pub status: Arc<PullStatus>,
    stop: Arc<AtomicBool>,
}

impl PullContext {
    /// Whether the connector was asked to stop (its source dropped, the server stopping).
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

impl Puller {
    /// Runs `body`, `connector`'s loop for `source`, on a thread of its own until it returns;
    /// it should return soon after its context says stopped.
    pub fn start(
        connector: &'static str,
        source: &str,
        body: impl FnOnce(PullContext) + Send + 'static,
    ) -> Self {
        let context = PullContext {
            status: Arc::new(PullStatus::new(connector, source.to_string())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (status, stop) = (context.status.clone(), context.stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("weir-{connector}-{source}"))
            .spawn(move || body(context))
            .expect("spawn a connector thread");
        Self {
            status,
            stop,
            thread: Some(thread),
        }
    }

    /// What the connector is doing.
    pub fn status(&self) -> &Arc<PullStatus> {
        &self.status
    }
}

impl Drop for Puller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // The thread notices within one of its waits; it is not joined here, so dropping a
        // source never waits on a broker.
        drop(self.thread.take());
    }
}

/// Appends one entry a connector pulled, counting its events (and the duplicates `dedup_key`
/// dropped) for `/metrics`; the error says why it was not stored.
pub fn append(log: &SourceLog, entry: Entry) -> Result<Appended, String> {
    let appended = log
        .append_entries(vec![entry])
        .map_err(|e| e.to_string())?
        .pop()
        .expect("one entry, one outcome")
        .map_err(|e| e.to_string())?;
    let source = [("source", log.def().name.clone())];
    counter!(telemetry::SOURCE_EVENTS, &source).increment(appended.rows as u64);
    counter!(telemetry::SOURCE_DUPLICATES, &source).increment(appended.duplicates as u64);
    Ok(appended)
}
