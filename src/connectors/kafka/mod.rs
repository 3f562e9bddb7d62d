//! Kafka sources: every partition of a topic consumed into the source log, each append
//! written together with the offsets it consumed, so a restart resumes exactly after what
//! the log holds (`storage/kafka_offsets.rs`).
//!
//! One consumer thread per source (librdkafka's calls block; the appends block on the WAL
//! sync anyway). Partitions are assigned by Weir from its stored offsets, not by a consumer
//! group rebalance; offsets are also committed to the group `properties.group.id`, for
//! monitoring only. The topic's metadata is read again every few seconds, so partitions added
//! while running are picked up (from their first message).

mod consumer;
mod decode;
mod status;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use decode::{Message, MessageDecoder};
pub use status::{KafkaStatus, PartitionStatus, Snapshot};

use crate::storage::{Db, DeadLetters, SourceLog};

/// A Kafka source's running consumer; stops when dropped.
#[derive(Debug)]
pub struct KafkaIngest {
    status: Arc<KafkaStatus>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KafkaIngest {
    /// Starts consuming into `log` (a Kafka source's).
    pub fn start(db: Arc<Db>, log: Arc<SourceLog>, dead_letters: Arc<DeadLetters>) -> Self {
        let status = Arc::new(KafkaStatus::default());
        let stop = Arc::new(AtomicBool::new(false));
        let consumer = consumer::Consumer {
            db,
            decoder: MessageDecoder::new(log.shared_def()),
            log,
            dead_letters,
            status: status.clone(),
            stop: stop.clone(),
        };
        let name = format!("weir-kafka-{}", consumer.log.def().name);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || consumer.run())
            .expect("spawn a Kafka consumer thread");
        Self {
            status,
            stop,
            thread: Some(thread),
        }
    }

    /// What the consumer is doing.
    pub fn status(&self) -> &Arc<KafkaStatus> {
        &self.status
    }
}

impl Drop for KafkaIngest {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // The thread notices within one poll timeout; it is not joined here, so dropping a
        // source never waits on a broker.
        drop(self.thread.take());
    }
}
