//! The consumer loop of one Kafka source.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::counter;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use weir_catalog::{KafkaOptions, StartupMode};

use super::decode::{Message, MessageDecoder};
use crate::connectors::pull::PullContext;
use crate::connectors::pull_status::PullStatus;
use crate::storage::source_offsets::{self, SourceOffsets};
use crate::storage::{Cf, Db, DeadLetters, Entry, SourceLog};
use crate::telemetry;

/// How long one poll waits for messages before the loop looks around (stop, metadata).
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// Messages gathered into one append at most, and how long the first waits for company.
const MAX_BATCH_MESSAGES: usize = 10_000;
const MAX_BATCH_WAIT: Duration = Duration::from_millis(20);
/// How often the topic's partitions and their high watermarks are read.
const METADATA_EVERY: Duration = Duration::from_secs(2);
const BROKER_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries after a failure wait this long at first, doubling up to the maximum.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(super) struct Consumer {
    pub db: Arc<Db>,
    pub log: Arc<SourceLog>,
    pub decoder: MessageDecoder,
    pub dead_letters: Arc<DeadLetters>,
    pub context: PullContext,
}

/// Sends librdkafka's own errors (a broker unreachable, a connection reset) to the status.
struct Context {
    status: Arc<PullStatus>,
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        self.status.error(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for Context {}

impl Consumer {
    fn options(&self) -> &KafkaOptions {
        self.log
            .def()
            .options
            .kafka
            .as_ref()
            .expect("a Kafka source has Kafka options")
    }

    fn stopped(&self) -> bool {
        self.context.stopped()
    }

    /// Consumes until stopped, starting over from the stored offsets after a failure.
    pub fn run(self) {
        let mut backoff = MIN_BACKOFF;
        while !self.stopped() {
            let started = Instant::now();
            match self.session() {
                Ok(()) => return,
                Err(message) => {
                    self.context.status.error(message);
                    if started.elapsed() > MAX_BACKOFF * 4 {
                        backoff = MIN_BACKOFF;
                    }
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && !self.stopped() {
                        std::thread::sleep(POLL_TIMEOUT.min(backoff));
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One consumer, from the stored offsets on. Returns `Ok` when stopped, `Err` when it
    /// must start over (an append failed: what it had consumed past the log is read again).
    fn session(&self) -> Result<(), String> {
        let options = self.options().clone();
        let source = &self.log.def().name;
        let group = options
            .group_id
            .clone()
            .unwrap_or_else(|| format!("weir-{source}"));
        let consumer: BaseConsumer<Context> = ClientConfig::new()
            .set("bootstrap.servers", &options.bootstrap_servers)
            .set("group.id", &group)
            .set("client.id", format!("weir-{source}"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "2000")
            .create_with_context(Context {
                status: self.context.status.clone(),
            })
            .map_err(|e| format!("Kafka client: {e}"))?;
        let id = self.log.def().id;
        let mut next = source_offsets::load(&self.db, id).map_err(|e| e.to_string())?;
        // A source that never stored an offset starts where `scan.startup.mode` says; a
        // partition that appears later starts at its first message.
        let mut first_assignment = next.is_empty();
        let mut assigned = SourceOffsets::new();
        let mut last_metadata: Option<Instant> = None;
        let mut appended_since_commit = false;
        loop {
            if self.stopped() {
                return Ok(());
            }
            if last_metadata.is_none_or(|at| at.elapsed() >= METADATA_EVERY) {
                last_metadata = Some(Instant::now());
                if appended_since_commit {
                    commit_to_group(&consumer, &options.topic, &next);
                    appended_since_commit = false;
                }
                match self.discover(&consumer, &options, &assigned) {
                    Ok(partitions) => {
                        self.context.status.healthy();
                        let new: Vec<i32> = partitions
                            .into_iter()
                            .filter(|p| !assigned.contains_key(p))
                            .collect();
                        if !new.is_empty() {
                            let startup = if first_assignment {
                                options.startup
                            } else {
                                StartupMode::Earliest
                            };
                            let starts =
                                self.assign(&consumer, &options.topic, &new, &next, startup)?;
                            first_assignment = false;
                            next.extend(starts.iter().map(|(&p, &o)| (p, o)));
                            assigned.extend(starts);
                        }
                    }
                    Err(message) => self.context.status.error(message),
                }
            }
            let messages = self.poll_batch(&consumer);
            if messages.is_empty() {
                continue;
            }
            self.append(&options.topic, messages, &mut next)?;
            appended_since_commit = true;
        }
    }

    /// The topic's partitions; records each one's high watermark on the way.
    fn discover(
        &self,
        consumer: &BaseConsumer<Context>,
        options: &KafkaOptions,
        assigned: &SourceOffsets,
    ) -> Result<Vec<i32>, String> {
        let metadata = consumer
            .fetch_metadata(Some(&options.topic), BROKER_TIMEOUT)
            .map_err(|e| format!("reading the metadata of topic \"{}\": {e}", options.topic))?;
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == options.topic)
            .ok_or_else(|| {
                format!(
                    "topic \"{}\" is not in the broker's metadata",
                    options.topic
                )
            })?;
        if let Some(error) = topic.error() {
            return Err(format!(
                "topic \"{}\": {:?}",
                options.topic,
                rdkafka::types::RDKafkaErrorCode::from(error)
            ));
        }
        let partitions: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
        for &partition in assigned.keys() {
            // One failure says the broker is away; the rest would each wait out the timeout.
            let (_, high) = consumer
                .fetch_watermarks(&options.topic, partition, BROKER_TIMEOUT)
                .map_err(|e| format!("reading the high watermark of partition {partition}: {e}"))?;
            self.context.status.high_watermark(partition, high);
        }
        Ok(partitions)
    }

    /// Adds `partitions` to the assignment, each from its stored offset or else from where
    /// `startup` says; those without a stored offset get it stored first, so a restart
    /// before their first message resumes from the same place. Returns the starts.
    fn assign(
        &self,
        consumer: &BaseConsumer<Context>,
        topic: &str,
        partitions: &[i32],
        stored: &SourceOffsets,
        startup: StartupMode,
    ) -> Result<SourceOffsets, String> {
        let mut starts = SourceOffsets::new();
        let mut resolved = SourceOffsets::new();
        for &partition in partitions {
            let start = match stored.get(&partition) {
                Some(&offset) => offset,
                None => {
                    let offset = self.resolve(consumer, topic, partition, startup)?;
                    resolved.insert(partition, offset);
                    offset
                }
            };
            starts.insert(partition, start);
        }
        if !resolved.is_empty() {
            source_offsets::store(&self.db, self.log.def().id, &resolved)
                .map_err(|e| e.to_string())?;
        }
        let mut list = TopicPartitionList::new();
        for (&partition, &offset) in &starts {
            list.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(|e| e.to_string())?;
        }
        consumer
            .incremental_assign(&list)
            .map_err(|e| format!("assigning partitions {partitions:?} of \"{topic}\": {e}"))?;
        self.context
            .status
            .assigned(starts.iter().map(|(&p, &o)| (p, o)));
        tracing::info!(source = %self.log.def().name, ?starts, "kafka partitions assigned");
        Ok(starts)
    }

    /// The concrete offset `startup` means for `partition`.
    fn resolve(
        &self,
        consumer: &BaseConsumer<Context>,
        topic: &str,
        partition: i32,
        startup: StartupMode,
    ) -> Result<i64, String> {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, BROKER_TIMEOUT)
            .map_err(|e| format!("reading the offsets of {topic}/{partition}: {e}"))?;
        Ok(match startup {
            StartupMode::Earliest => low,
            StartupMode::Latest => high,
            StartupMode::Timestamp(ms) => {
                let mut list = TopicPartitionList::new();
                list.add_partition_offset(topic, partition, Offset::Offset(ms))
                    .map_err(|e| e.to_string())?;
                let found = consumer
                    .offsets_for_times(list, BROKER_TIMEOUT)
                    .map_err(|e| {
                        format!("finding the offset of time {ms} in {topic}/{partition}: {e}")
                    })?;
                match found.elements().first().map(|e| e.offset()) {
                    Some(Offset::Offset(offset)) => offset,
                    // No message at or after that time yet.
                    _ => high,
                }
            }
        })
    }

    /// Messages until the batch is full, or briefly after the first one.
    fn poll_batch(&self, consumer: &BaseConsumer<Context>) -> Vec<Message> {
        let mut messages = Vec::new();
        let mut deadline = Instant::now() + POLL_TIMEOUT;
        while messages.len() < MAX_BATCH_MESSAGES {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match consumer.poll(deadline - now) {
                None => break,
                Some(Ok(m)) => {
                    if messages.is_empty() {
                        deadline = Instant::now() + MAX_BATCH_WAIT;
                    }
                    messages.push(Message {
                        partition: m.partition(),
                        offset: m.offset(),
                        timestamp_ms: m.timestamp().to_millis(),
                        key: m.key().map(<[u8]>::to_vec),
                        payload: m.payload().map(<[u8]>::to_vec),
                    });
                }
                Some(Err(e)) => {
                    self.context.status.error(format!("consuming: {e}"));
                    break;
                }
            }
        }
        messages
    }

    /// Appends `messages` as one log entry (refused ones to the dead letters), written with
    /// each partition's next offset. One entry for all partitions: a view's clock takes in
    /// every partition's events of the entry before it judges the next, so a partition is not
    /// found late against another one consumed in the same poll.
    fn append(
        &self,
        topic: &str,
        messages: Vec<Message>,
        next: &mut SourceOffsets,
    ) -> Result<(), String> {
        // A message before the stored offset is in the log already (a fetch that overlapped
        // an assignment).
        let messages: Vec<Message> = messages
            .into_iter()
            .filter(|m| next.get(&m.partition).is_none_or(|&n| m.offset >= n))
            .collect();
        if messages.is_empty() {
            return Ok(());
        }
        let received_at_us = chrono::Utc::now().timestamp_micros();
        let decoded = self
            .decoder
            .decode(topic, &messages, received_at_us)
            .map_err(|e| format!("decoding messages of {topic}: {e}"))?;
        let batch = self
            .log
            .conform(decoded.batch, received_at_us)
            .map_err(|e| format!("messages of {topic}: {e}"))?;
        let mut ends: BTreeMap<i32, (i64, u64, u64)> = BTreeMap::new();
        for message in &messages {
            let end = ends.entry(message.partition).or_default();
            end.0 = end.0.max(message.offset + 1);
            end.1 += 1;
        }
        for letter in &decoded.dead_letters {
            if let Some(kafka) = &letter.kafka {
                let end = ends.entry(kafka.partition).or_default();
                end.1 -= 1;
                end.2 += 1;
            }
        }
        let id = self.log.def().id;
        let mut writes: Vec<_> = ends
            .iter()
            .map(|(&partition, &(end, _, _))| {
                let (key, value) = source_offsets::offset_write(id, partition, end);
                (Cf::Meta, key, value)
            })
            .collect();
        // Refused messages land with the entry and the offsets that pass them: once.
        if let Some((key, value)) = self
            .dead_letters
            .stage(&decoded.dead_letters)
            .map_err(|e| format!("recording dead letters: {e}"))?
        {
            writes.push((Cf::DeadLetters, key, value));
        }
        let entry = Entry { batch, writes };
        let source = [("source", self.log.def().name.clone())];
        crate::connectors::pull::append(&self.log, entry)?;
        counter!(telemetry::SOURCE_REJECTED, &source).increment(decoded.dead_letters.len() as u64);
        telemetry::dead_letters(&decoded.dead_letters);
        counter!(telemetry::SOURCE_BYTES, &source).increment(
            messages
                .iter()
                .map(|m| m.payload.as_ref().map_or(0, Vec::len) as u64)
                .sum(),
        );
        for (partition, (end, accepted, refused)) in ends {
            next.insert(partition, end);
            self.context
                .status
                .appended(partition, end, accepted, refused);
        }
        Ok(())
    }
}

/// Commits `next` to the consumer group, for monitoring tools only: what Weir resumes from is
/// stored with the log. Once a metadata round (2 s) rather than once an append: the group
/// sees progress soon enough, and the broker is not asked to commit many times a second.
fn commit_to_group(consumer: &BaseConsumer<Context>, topic: &str, next: &SourceOffsets) {
    let mut list = TopicPartitionList::new();
    for (&partition, &offset) in next {
        let _ = list.add_partition_offset(topic, partition, Offset::Offset(offset));
    }
    if let Err(e) = consumer.commit(&list, CommitMode::Async) {
        tracing::debug!("committing offsets to the consumer group: {e}");
    }
}
