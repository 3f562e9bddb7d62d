//! Running a view: a task on the query runtime that follows the source log, one epoch after
//! another, and publishes how far it has got so `FLUSH` can wait for it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::ViewRunner;
use crate::storage::SourceLog;

/// Log entries one epoch reads at most, so a long backlog (a backfill) commits in steps.
const MAX_EPOCH_ENTRIES: usize = 256;
/// How long a failing view waits before trying its epoch again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A running view, as the engine holds it. Dropping it stops the view.
#[derive(Debug)]
pub struct ViewHandle {
    log: Arc<SourceLog>,
    output: Option<Arc<SourceLog>>,
    progress: ViewProgress,
    task: AbortHandle,
}

/// How far a view has got, for those who wait on it.
#[derive(Debug, Clone)]
pub struct ViewProgress {
    progress: watch::Receiver<Progress>,
    last_error: Arc<Mutex<Option<String>>>,
}

/// A view's committed position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The next log sequence number to read.
    pub next_seq: u64,
    /// Log events read.
    pub events_done: u64,
    /// The watermark reached (µs), if the view follows one.
    pub watermark: Option<i64>,
    /// Groups with aggregate state.
    pub state_groups: usize,
    /// Of those, groups whose state is in memory.
    pub cached_groups: usize,
}

impl ViewHandle {
    /// The source log the view follows.
    pub fn log(&self) -> &Arc<SourceLog> {
        &self.log
    }

    /// The log of the view's final rows, which views over it read, if it has final rows.
    pub fn output(&self) -> Option<&Arc<SourceLog>> {
        self.output.as_ref()
    }

    /// The view's progress.
    pub fn progress(&self) -> ViewProgress {
        self.progress.clone()
    }
}

impl ViewProgress {
    /// The committed position now.
    pub fn now(&self) -> Progress {
        *self.progress.borrow()
    }

    /// The last epoch error, if the view has failed since it started.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until the view has committed every log entry before `seq`. Returns the view's
    /// last error instead if it stops making progress for `patience`.
    pub async fn wait_for(&self, seq: u64, patience: Duration) -> Result<(), String> {
        let mut progress = self.progress.clone();
        loop {
            if progress.borrow_and_update().next_seq >= seq {
                return Ok(());
            }
            match tokio::time::timeout(patience, progress.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err("the view stopped".into()),
                Err(_) => {
                    let error = self
                        .last_error
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    return Err(error.unwrap_or_else(|| "the view made no progress".into()));
                }
            }
        }
    }
}

impl Drop for ViewHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts maintaining a view on `runtime`.
pub fn spawn_view(
    runtime: &tokio::runtime::Handle,
    mut runner: ViewRunner,
    name: String,
) -> ViewHandle {
    let log = runner.log().clone();
    let output = runner.store().output().cloned();
    let position = |runner: &ViewRunner| {
        let (state_groups, cached_groups) = runner.state_counts();
        let committed = runner.committed();
        Progress {
            next_seq: committed.next_seq,
            events_done: committed.events_done,
            watermark: runner.watermark(),
            state_groups,
            cached_groups,
        }
    };
    let (progress_tx, progress) = watch::channel(position(&runner));
    let last_error = Arc::new(Mutex::new(None));
    let errors = last_error.clone();
    let record = move |error: &datafusion::error::DataFusionError| {
        tracing::error!(view = %name, %error, "view epoch failed; retrying");
        *errors.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
    };
    let mut head = log.subscribe();
    let task = runtime.spawn(async move {
        loop {
            if *head.borrow() <= runner.processed_seq() {
                // Caught up: the last epoch's write lands before the view waits, so `FLUSH`
                // sees it.
                if let Err(e) = runner.settle().await {
                    record(&e);
                    tokio::time::sleep(RETRY_AFTER).await;
                    if let Err(e) = runner.recover().await {
                        record(&e);
                    }
                    continue;
                }
                progress_tx.send_replace(position(&runner));
            }
            // Sleep until the log has entries this view has not read, or, for a source with
            // `idle_timeout`, until it has been quiet that long.
            while *head.borrow_and_update() <= runner.processed_seq() {
                let Some(idle) = runner.idle_timeout() else {
                    if head.changed().await.is_err() {
                        return;
                    }
                    continue;
                };
                match tokio::time::timeout(idle, head.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => match runner.idle(chrono::Utc::now().timestamp_micros()).await {
                        Ok(true) => {
                            progress_tx.send_replace(position(&runner));
                        }
                        Ok(false) => {}
                        Err(e) => {
                            record(&e);
                            if let Err(e) = runner.recover().await {
                                record(&e);
                            }
                        }
                    },
                }
            }
            match runner.epoch(MAX_EPOCH_ENTRIES).await {
                Ok(_) => {
                    progress_tx.send_replace(position(&runner));
                }
                Err(e) => {
                    record(&e);
                    tokio::time::sleep(RETRY_AFTER).await;
                    if let Err(e) = runner.recover().await {
                        record(&e);
                    }
                }
            }
        }
    });
    ViewHandle {
        log,
        output,
        progress: ViewProgress {
            progress,
            last_error,
        },
        task: task.abort_handle(),
    }
}
