//! Kafka sources: every partition of a topic consumed into the source log, each append
//! written together with the offsets it consumed, so a restart resumes exactly after what
//! the log holds (`storage/source_offsets.rs`).
//!
//! One consumer thread per source (librdkafka's calls block; the appends block on the WAL
//! sync anyway). Partitions are assigned by Weir from its stored offsets, not by a consumer
//! group rebalance; offsets are also committed to the group `properties.group.id`, for
//! monitoring only. The topic's metadata is read again every few seconds, so partitions added
//! while running are picked up (from their first message).

mod consumer;
mod decode;

use std::sync::Arc;

pub use decode::{Message, MessageDecoder};

use super::pull::Puller;
use crate::storage::{Db, DeadLetters, SourceLog};

/// Starts consuming into `log` (a Kafka source's).
pub fn start(db: Arc<Db>, log: Arc<SourceLog>, dead_letters: Arc<DeadLetters>) -> Puller {
    let source = log.def().name.clone();
    Puller::start("kafka", &source, move |context| {
        consumer::Consumer {
            db,
            decoder: MessageDecoder::new(log.shared_def()),
            log,
            dead_letters,
            context,
        }
        .run()
    })
}
