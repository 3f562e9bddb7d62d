//! What a pulling connector (a Kafka consumer, a Nexmark generator) is doing, for
//! `weir.sources`, `weir.kafka_partitions` and `/metrics`: its state, its last error, and each
//! partition's position and how far behind its end it is. (A Nexmark source has one partition,
//! whose offsets are event numbers.)

use std::collections::BTreeMap;
use std::sync::Mutex;

/// One partition as the connector sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionStatus {
    /// The next offset Weir will append (everything before it is in the log).
    pub next_offset: i64,
    /// The offset after the newest message upstream (a Kafka broker's high watermark, when
    /// last asked; a bounded Nexmark stream's event count).
    pub high_watermark: Option<i64>,
}

impl PartitionStatus {
    /// Messages upstream holds that Weir has not appended yet.
    pub fn lag(&self) -> Option<i64> {
        self.high_watermark
            .map(|high| (high - self.next_offset).max(0))
    }
}

/// A connector's status, shared between its thread and the readers.
#[derive(Debug)]
pub struct PullStatus {
    /// Its connector and source, for the log (`kafka`, `clicks`).
    connector: &'static str,
    source: String,
    now: Mutex<Snapshot>,
    /// Bumped at every change, for waiters ([`PullStatus::wait_until_ended`]).
    changes: tokio::sync::watch::Sender<()>,
}

/// The status at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The last error, while it is not resolved (a later success clears it).
    pub error: Option<String>,
    /// Errors seen since start.
    pub errors_total: u64,
    /// Messages (Nexmark: events of every kind) consumed and not refused since start
    /// (duplicates dropped by `dedup_key` included).
    pub messages_total: u64,
    /// Messages refused into `weir.dead_letters` since start.
    pub dead_letters_total: u64,
    /// Each assigned partition's position.
    pub partitions: BTreeMap<i32, PartitionStatus>,
}

impl PullStatus {
    /// The status of `connector`'s thread for `source`, before it did anything.
    pub fn new(connector: &'static str, source: String) -> Self {
        Self {
            connector,
            source,
            now: Mutex::default(),
            changes: tokio::sync::watch::Sender::new(()),
        }
    }

    /// Waits until every partition has reached its end (a bounded Nexmark stream has appended
    /// its last event). Returns the last error instead if nothing changes for `patience`.
    pub async fn wait_until_ended(&self, patience: std::time::Duration) -> Result<(), String> {
        let mut changes = self.changes.subscribe();
        loop {
            changes.borrow_and_update();
            let now = self.snapshot();
            let ended = !now.partitions.is_empty()
                && now
                    .partitions
                    .values()
                    .all(|p| p.high_watermark.is_some() && p.lag() == Some(0));
            if ended {
                return Ok(());
            }
            // The sender lives as long as `self`.
            if tokio::time::timeout(patience, changes.changed())
                .await
                .is_err()
            {
                return Err(now
                    .error
                    .unwrap_or_else(|| format!("source {} made no progress", self.source)));
            }
        }
    }

    /// The status now.
    pub fn snapshot(&self) -> Snapshot {
        self.now.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Something failed: shown until something succeeds again.
    pub fn error(&self, message: String) {
        let mut snapshot = self.lock();
        if snapshot.error.as_ref() != Some(&message) {
            tracing::warn!(connector = self.connector, source = %self.source, "{message}");
        }
        snapshot.error = Some(message);
        snapshot.errors_total += 1;
    }

    /// Upstream answered: the last error is resolved.
    pub fn healthy(&self) {
        self.lock().error = None;
    }

    /// The connector's count of messages starts at `messages` (a Nexmark source counts its
    /// events across restarts: its stored position).
    pub fn count_from(&self, messages: u64) {
        self.lock().messages_total = messages;
    }

    /// Partitions now consumed from `next_offset` on.
    pub fn assigned(&self, offsets: impl IntoIterator<Item = (i32, i64)>) {
        let mut snapshot = self.lock();
        for (partition, next_offset) in offsets {
            snapshot
                .partitions
                .entry(partition)
                .or_default()
                .next_offset = next_offset;
        }
    }

    /// Messages up to `next_offset` (exclusive) of `partition` are in the log.
    pub fn appended(&self, partition: i32, next_offset: i64, messages: u64, refused: u64) {
        let mut snapshot = self.lock();
        snapshot
            .partitions
            .entry(partition)
            .or_default()
            .next_offset = next_offset;
        snapshot.messages_total += messages;
        snapshot.dead_letters_total += refused;
        snapshot.error = None;
    }

    /// Where `partition` ends upstream, as just read.
    pub fn high_watermark(&self, partition: i32, high: i64) {
        self.lock()
            .partitions
            .entry(partition)
            .or_default()
            .high_watermark = Some(high);
    }

    /// The snapshot, to change: waiters are told once the guard is dropped (they read the
    /// snapshot only after taking the notice, so they never miss the change).
    fn lock(&self) -> ChangeGuard<'_> {
        ChangeGuard {
            snapshot: self.now.lock().unwrap_or_else(|e| e.into_inner()),
            changes: &self.changes,
        }
    }
}

/// The locked snapshot; tells the waiters when released.
struct ChangeGuard<'a> {
    snapshot: std::sync::MutexGuard<'a, Snapshot>,
    changes: &'a tokio::sync::watch::Sender<()>,
}

impl std::ops::Deref for ChangeGuard<'_> {
    type Target = Snapshot;
    fn deref(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl std::ops::DerefMut for ChangeGuard<'_> {
    fn deref_mut(&mut self) -> &mut Snapshot {
        &mut self.snapshot
    }
}

impl Drop for ChangeGuard<'_> {
    fn drop(&mut self) {
        self.changes.send_replace(());
    }
}
