//! The storage work around a view's epochs, overlapped with their computation: while an
//! epoch is computed on one core, the entries of the next are read from the log and the write
//! of the last lands on another.
//!
//! Overlapping the write is safe because epochs still commit one after another, in order, and
//! only a landed write counts: the view's committed position (what `FLUSH` and restarts see)
//! moves when its write lands, never before.

use datafusion::arrow::array::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use std::sync::Arc;
use tokio::task::JoinHandle;

use crate::storage::{EpochWrite, SourceLog, StorageError, ViewStore};
use crate::telemetry;

/// A position in the log: the next sequence number to read and the events read before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub next_seq: u64,
    pub events_done: u64,
}

type Entries = Vec<(u64, RecordBatch)>;

/// An epoch reads no more entries once it holds this many events: large entries (a Kafka
/// poll, a Nexmark chunk) would otherwise make epochs, and the memory they hold, large.
const MAX_EPOCH_EVENTS: usize = 256 * 1024;

/// Reads a view's log entries, the next epoch's while the current one runs.
#[derive(Debug)]
pub struct LogReader {
    log: Arc<SourceLog>,
    ahead: Option<(u64, JoinHandle<Result<Entries, StorageError>>)>,
    /// Entries read but left for the next epoch.
    returned: Entries,
}

impl LogReader {
    pub fn new(log: Arc<SourceLog>) -> Self {
        Self {
            log,
            ahead: None,
            returned: Vec::new(),
        }
    }

    /// Gives back entries an epoch read but left (they come first from the next read).
    pub fn put_back(&mut self, entries: Entries) {
        self.returned = entries;
    }

    /// Up to `max_entries` entries (and about `MAX_EPOCH_EVENTS` events) from `from` on (none
    /// if the log has nothing there yet).
    /// If the log holds more after them (a backlog), starts reading those.
    pub async fn read(&mut self, from: u64, max_entries: usize) -> Result<Entries> {
        if self.returned.first().is_some_and(|&(seq, _)| seq == from) {
            return Ok(std::mem::take(&mut self.returned));
        }
        self.returned.clear();
        let ahead = match self.ahead.take() {
            Some((at, entries)) if at == from => join(entries).await?,
            _ => Vec::new(),
        };
        // What was read ahead may predate entries appended since: an empty read is redone.
        let entries = if ahead.is_empty() {
            let log = self.log.clone();
            join(tokio::task::spawn_blocking(move || {
                log.read_from(from, max_entries, MAX_EPOCH_EVENTS)
            }))
            .await?
        } else {
            ahead
        };
        if let Some(&(last, _)) = entries.last()
            && self.log.head() > last + 1
        {
            let (log, next) = (self.log.clone(), last + 1);
            self.ahead = Some((
                next,
                tokio::task::spawn_blocking(move || {
                    log.read_from(next, max_entries, MAX_EPOCH_EVENTS)
                }),
            ));
        }
        Ok(entries)
    }

    /// Forgets what was read ahead (the view goes back to an earlier position).
    pub fn reset(&mut self) {
        self.ahead = None;
        self.returned.clear();
    }
}

/// Writes a view's epochs in order, each while the next one is computed.
#[derive(Debug)]
pub struct EpochWriter {
    store: Arc<ViewStore>,
    /// The log the view reads, whose commit times say how long its entries took to show.
    log: Arc<SourceLog>,
    /// The view's name, for the commit-latency metric.
    view: String,
    in_flight: Option<(Position, JoinHandle<Result<(), StorageError>>)>,
    committed: Position,
}

impl EpochWriter {
    /// A writer for view `view`'s `store` over `log`, whose committed position is `committed`.
    pub fn new(
        store: Arc<ViewStore>,
        log: Arc<SourceLog>,
        view: &str,
        committed: Position,
    ) -> Self {
        Self {
            store,
            log,
            view: view.to_string(),
            in_flight: None,
            committed,
        }
    }

    /// The position of the last epoch whose write has landed.
    pub fn committed(&self) -> Position {
        self.committed
    }

    /// Starts writing `write` once the write in flight has landed; fails if that one failed.
    pub async fn start(&mut self, write: EpochWrite) -> Result<()> {
        self.settle().await?;
        let position = Position {
            next_seq: write.next_seq,
            events_done: write.events_done,
        };
        let (store, log, view) = (self.store.clone(), self.log.clone(), self.view.clone());
        // The entries this write makes visible: those after the last epoch's.
        let entries = self.committed.next_seq..position.next_seq;
        self.in_flight = Some((
            position,
            tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                let committed = store.commit(write);
                if committed.is_ok() {
                    let visible = metrics::histogram!(
                        telemetry::VIEW_VISIBLE_SECONDS,
                        "view" => view.clone()
                    );
                    for (appended, entries) in log.commit_times(entries) {
                        visible.record_many(appended.elapsed().as_secs_f64(), entries as usize);
                    }
                }
                telemetry::seconds(
                    telemetry::VIEW_COMMIT_SECONDS,
                    ("view", view),
                    started.elapsed(),
                );
                committed
            }),
        ));
        Ok(())
    }

    /// Waits for the write in flight, if any, to land.
    pub async fn settle(&mut self) -> Result<()> {
        if let Some((position, write)) = self.in_flight.take() {
            join(write).await?;
            self.committed = position;
        }
        Ok(())
    }
}

async fn join<T>(task: JoinHandle<Result<T, StorageError>>) -> Result<T> {
    task.await
        .map_err(|e| DataFusionError::External(Box::new(e)))?
        .map_err(|e| DataFusionError::External(Box::new(e)))
}
