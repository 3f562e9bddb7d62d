//! A source's log: every accepted batch of events, in order, durable before it is
//! acknowledged. Key `source id ++ seq` (u64 BE each) -> one Arrow IPC stream holding one
//! batch, so the log replays without the upstream and scans without row decoding.
//!
//! Group commit: concurrent appends to a source share one synced write. The first appender to
//! find no write in flight becomes the leader: it takes every queued batch, assigns sequence
//! numbers in queue order, writes them as one `WriteBatch` with one WAL sync, and wakes their
//! appenders; appenders that queued meanwhile form the next group. Sequence order is commit
//! order, and nobody is acknowledged before their batch is durable.

use std::collections::VecDeque;
use std::io::Cursor;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{AsArray, RecordBatch, TimestampMicrosecondArray};
use datafusion::arrow::compute::{max, min};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::error::DataFusionError;
use rocksdb::WriteBatch;
use weir_catalog::SourceDef;

use super::conform::conform;
use super::dedup::{DedupFilter, Filtered, now_ms};
use super::{Cf, Db, StorageError};

/// One source's log.
#[derive(Debug)]
pub struct SourceLog {
    db: Arc<Db>,
    def: Arc<SourceDef>,
    schema: SchemaRef,
    queue: Mutex<Queue>,
    /// Signalled when a leader finishes its group.
    idle: Condvar,
    /// The sequence number after the last committed entry, for readers that follow the log.
    head: tokio::sync::watch::Sender<u64>,
    /// When recent groups committed, for how long a reader has left an entry waiting.
    commit_times: Mutex<CommitTimes>,
}

/// Commit times of the last `COMMIT_TIMES_KEPT` groups: (first seq, seq after, when). Entries
/// older than those (or committed before the log was opened) count from the oldest known time.
#[derive(Debug)]
struct CommitTimes {
    opened: Instant,
    groups: VecDeque<(u64, u64, Instant)>,
}

const COMMIT_TIMES_KEPT: usize = 4096;

/// The `meta` key of a source log's event count.
pub fn rows_key(source: weir_catalog::ObjectId) -> Vec<u8> {
    let mut key = b"log_rows:".to_vec();
    key.extend(source.to_be_bytes());
    key
}

/// What an append stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The log entry's sequence number; `None` when every row was a duplicate.
    pub seq: Option<u64>,
    /// Rows stored.
    pub rows: usize,
    /// Rows dropped as duplicates of events already accepted.
    pub duplicates: usize,
}

/// An entry [`SourceLog::stage`] put in a write, to be made visible once it commits.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct Staged {
    next_seq: u64,
    rows: u64,
}

/// One batch to append as a log entry (in the log's schema), with other writes that commit
/// with it (a connector's consumed offsets, its refused messages).
#[derive(Debug)]
pub struct Entry {
    /// The rows, in the log's schema.
    pub batch: RecordBatch,
    /// Puts: column family, key, value.
    pub writes: Vec<(Cf, Vec<u8>, Vec<u8>)>,
}

/// Why a queued append was not stored: its own entry failed (the rest of the group may be
/// stored), or the group's write failed.
#[derive(Debug)]
enum Refusal {
    Entry(String),
    Write(String),
}

/// Where a queued append learns what was stored, or why it was not.
type Reply = SyncSender<Result<Appended, Refusal>>;

/// Appends waiting for the next group commit.
#[derive(Debug)]
struct Queue {
    /// Entries and where to reply to each.
    pending: Vec<(Entry, Reply)>,
    /// A leader is writing a group outside the lock.
    writing: bool,
    /// The sequence number of the next batch.
    next_seq: u64,
    /// Events stored in the log so far.
    rows: u64,
    /// Set once a `DROP SOURCE` committed: appends that race with the drop must not write
    /// under the retired id.
    dropped: bool,
}

/// Appends held off while a `DROP SOURCE` commits.
#[derive(Debug)]
pub struct SourceDropLock<'a> {
    queue: MutexGuard<'a, Queue>,
}

impl SourceDropLock<'_> {
    /// The drop committed: later appends fail instead of writing.
    pub fn retire(mut self) {
        self.queue.dropped = true;
    }
}

impl SourceLog {
    /// Opens the log of `def`, continuing after its last entry.
    pub fn open(db: Arc<Db>, def: Arc<SourceDef>) -> Result<Self, StorageError> {
        if let Some(dedup) = &def.options.dedup {
            db.dedup_windows().set(def.id, dedup.window_ms);
        }
        let next_seq = db.next_seq(Cf::Log, &def.id.to_be_bytes())?;
        let rows = match db.get(Cf::Meta, &rows_key(def.id))? {
            Some(bytes) => u64::from_be_bytes(bytes.as_slice().try_into().map_err(|_| {
                StorageError::Corrupt(format!("log row count of {} bytes", bytes.len()))
            })?),
            None => 0,
        };
        Ok(Self {
            schema: def.arrow_schema(),
            db,
            def,
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                writing: false,
                next_seq,
                rows,
                dropped: false,
            }),
            idle: Condvar::new(),
            head: tokio::sync::watch::Sender::new(next_seq),
            commit_times: Mutex::new(CommitTimes {
                opened: Instant::now(),
                groups: VecDeque::new(),
            }),
        })
    }

    /// Events stored in the log so far.
    pub fn rows(&self) -> u64 {
        self.lock_queue().rows
    }

    /// The sequence number after the last committed entry.
    pub fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// How long the entry at `seq` has been committed, or zero if it has not (a reader at
    /// the head waits for nothing): how far behind in time a reader that next reads `seq` is.
    /// Past the last few thousand commits, or before the log was opened, an underestimate.
    pub fn waited(&self, seq: u64) -> Duration {
        if seq >= self.head() {
            return Duration::ZERO;
        }
        let times = self.commit_times.lock().unwrap_or_else(|e| e.into_inner());
        let since = match times.groups.iter().find(|(_, end, _)| *end > seq) {
            Some(&(first, _, at)) if first <= seq => at,
            // Older than every group kept: committed before the oldest kept group, or before
            // the log was opened if none was let go.
            _ if times.groups.len() == COMMIT_TIMES_KEPT => times.groups[0].2,
            _ => times.opened,
        };
        since.elapsed()
    }

    /// When the entries in `seqs` were committed: each kept commit group overlapping them,
    /// with how many of its entries fall in `seqs`. Entries past the last few thousand commits,
    /// or from before the log was opened, are left out.
    pub fn commit_times(&self, seqs: std::ops::Range<u64>) -> Vec<(Instant, u64)> {
        let times = self.commit_times.lock().unwrap_or_else(|e| e.into_inner());
        times
            .groups
            .iter()
            .filter_map(|&(first, end, at)| {
                let overlap = end.min(seqs.end).saturating_sub(first.max(seqs.start));
                (overlap > 0).then_some((at, overlap))
            })
            .collect()
    }

    /// Follows [`Self::head`] as entries commit.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Committed entries from sequence number `from` on, with their sequence numbers, in
    /// order: up to `max_entries`, and no more once they hold `max_rows` events (the first
    /// entry is read whatever its size).
    pub fn read_from(
        &self,
        from: u64,
        max_entries: usize,
        max_rows: usize,
    ) -> Result<Vec<(u64, RecordBatch)>, StorageError> {
        let prefix = self.def.id.to_be_bytes();
        let (mut entries, mut rows, mut read) = (Vec::new(), 0, 0);
        for item in self.db.iter_from(Cf::Log, &prefix, &self.key(from)) {
            if read == max_entries || rows >= max_rows {
                break;
            }
            let (key, value) = item?;
            let seq =
                u64::from_be_bytes(key[prefix.len()..].try_into().map_err(|_| {
                    StorageError::Corrupt(format!("log key of {} bytes", key.len()))
                })?);
            for batch in decode(&value)? {
                rows += batch.num_rows();
                entries.push((seq, batch));
            }
            read += 1;
        }
        Ok(entries)
    }

    /// The source's definition.
    pub fn def(&self) -> &SourceDef {
        &self.def
    }

    /// The source's definition, shared.
    pub fn shared_def(&self) -> Arc<SourceDef> {
        self.def.clone()
    }

    /// The schema of logged rows (declared columns, then `_received_at`).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Appends events given as the declared columns: casts and checks them like any write,
    /// stamps `_received_at` with `received_at_us` (microseconds since the epoch, UTC), and
    /// returns what was stored (duplicates of accepted events are not stored again).
    pub fn append_rows(
        &self,
        batch: RecordBatch,
        received_at_us: i64,
    ) -> Result<Appended, DataFusionError> {
        let batch = self.conform(batch, received_at_us)?;
        self.append(batch)
            .map_err(|e| DataFusionError::External(Box::new(e)))
    }

    /// Events given as the declared columns, in the log's schema: cast and checked like any
    /// write, `_received_at` stamped with `received_at_us` (µs since the epoch, UTC).
    pub fn conform(
        &self,
        batch: RecordBatch,
        received_at_us: i64,
    ) -> Result<RecordBatch, DataFusionError> {
        let declared = conform(batch, &self.def.name, &self.def.columns, &self.schema)?;
        let rows = declared.num_rows();
        let mut columns = declared.columns().to_vec();
        columns.push(Arc::new(
            TimestampMicrosecondArray::from(vec![received_at_us; rows]).with_timezone("+00:00"),
        ));
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }

    /// Appends `batch` (already in the log's schema) durably, dropping duplicates.
    pub fn append(&self, batch: RecordBatch) -> Result<Appended, StorageError> {
        let mut appended = self.append_entries(vec![Entry {
            batch,
            writes: Vec::new(),
        }])?;
        appended.pop().expect("one entry, one outcome")
    }

    /// Appends `entries` durably in one write, each entry with its other writes (a
    /// connector's consumed offsets), which land if and only if the entry does, even when
    /// all its rows are duplicates or it has none. Fails as a whole only if the write does.
    pub fn append_entries(
        &self,
        entries: Vec<Entry>,
    ) -> Result<Vec<Result<Appended, StorageError>>, StorageError> {
        let mut queue = self.lock_queue();
        if queue.dropped {
            return Err(StorageError::Dropped {
                table: self.def.name.clone(),
            });
        }
        let mut results = Vec::with_capacity(entries.len());
        for entry in entries {
            let (reply, result) = sync_channel(1);
            queue.pending.push((entry, reply));
            results.push(result);
        }
        if !queue.writing {
            queue.writing = true;
            self.lead(queue);
        } else {
            drop(queue);
        }
        let mut appended = Vec::with_capacity(results.len());
        for result in results {
            appended.push(match result.recv() {
                Ok(Ok(a)) => Ok(a),
                Ok(Err(Refusal::Entry(message))) => Err(StorageError::Commit(message)),
                Ok(Err(Refusal::Write(message))) => return Err(StorageError::Commit(message)),
                Err(_) => {
                    return Err(StorageError::Commit(
                        "the committing thread went away".into(),
                    ));
                }
            });
        }
        Ok(appended)
    }

    /// Writes groups until the queue is empty. Called with `writing` set.
    fn lead<'a>(&'a self, mut queue: MutexGuard<'a, Queue>) {
        while !queue.pending.is_empty() && !queue.dropped {
            let group = std::mem::take(&mut queue.pending);
            let (first, rows_before) = (queue.next_seq, queue.rows);
            drop(queue);
            let (mut write, outcomes, next_seq) = self.prepare_group(&group, first);
            let added: u64 = outcomes
                .iter()
                .filter_map(|o| o.as_ref().ok())
                .map(|a| a.rows as u64)
                .sum();
            // The count commits with the entries it counts.
            write.put_cf(
                self.db.cf(Cf::Meta),
                rows_key(self.def.id),
                (rows_before + added).to_be_bytes(),
            );
            crate::failpoint::hit("source_log::before_commit");
            let committed = self.db.write(write);
            queue = self.lock_queue();
            match committed {
                Ok(()) => {
                    queue.next_seq = next_seq;
                    queue.rows = rows_before + added;
                    self.note_commit(first, next_seq);
                    self.head.send_replace(next_seq);
                    for ((_, reply), outcome) in group.into_iter().zip(outcomes) {
                        let _ = reply.send(outcome.map_err(Refusal::Entry));
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    for (_, reply) in group {
                        let _ = reply.send(Err(Refusal::Write(message.clone())));
                    }
                }
            }
        }
        // Appends queued behind a drop are refused, not left waiting.
        for (_, reply) in queue.pending.drain(..) {
            let _ = reply.send(Err(Refusal::Write(format!(
                "source \"{}\" was dropped",
                self.def.name
            ))));
        }
        queue.writing = false;
        self.idle.notify_all();
    }

    fn note_commit(&self, first: u64, end: u64) {
        let mut times = self.commit_times.lock().unwrap_or_else(|e| e.into_inner());
        if times.groups.len() == COMMIT_TIMES_KEPT {
            times.groups.pop_front();
        }
        times.groups.push_back((first, end, Instant::now()));
    }

    /// One write for a group: each batch, less its duplicates, as the next log entry, with the
    /// ids it carries. A batch that fails to encode fails alone.
    fn prepare_group(
        &self,
        group: &[(Entry, Reply)],
        first: u64,
    ) -> (WriteBatch, Vec<Result<Appended, String>>, u64) {
        let now_ms = now_ms();
        let mut dedup = self.def.options.dedup.as_ref().map(|d| {
            let column = self
                .def
                .columns
                .iter()
                .position(|c| c.name == d.key)
                .expect("validated at CREATE SOURCE");
            DedupFilter::new(&self.db, self.def.id, d, column, now_ms)
        });
        let mut write = WriteBatch::default();
        let mut outcomes = Vec::with_capacity(group.len());
        let mut seq = first;
        for (Entry { batch, writes }, _) in group {
            let outcome = (|| {
                let filtered = match dedup.as_mut() {
                    Some(filter) => filter.apply(batch.clone())?,
                    None => Filtered {
                        batch: batch.clone(),
                        duplicates: 0,
                        keys: Vec::new(),
                    },
                };
                let rows = filtered.batch.num_rows();
                let entry = if rows > 0 {
                    Some((encode(&filtered.batch)?, self.time_range(&filtered.batch)))
                } else {
                    None
                };
                Ok::<_, StorageError>((entry, rows, filtered.duplicates, filtered.keys))
            })();
            outcomes.push(match outcome {
                Ok((entry, rows, duplicates, keys)) => {
                    let entry_seq = entry.map(|(value, time_range)| {
                        write.put_cf(self.db.cf(Cf::Log), self.key(seq), value);
                        if let Some((min, max)) = time_range {
                            let mut stats = min.to_be_bytes().to_vec();
                            stats.extend(max.to_be_bytes());
                            write.put_cf(self.db.cf(Cf::LogStats), self.key(seq), stats);
                        }
                        seq += 1;
                        seq - 1
                    });
                    if let Some(filter) = &dedup {
                        for key in keys {
                            write.put_cf(self.db.cf(Cf::Dedup), key, filter.stamp());
                        }
                    }
                    for (cf, key, value) in writes {
                        write.put_cf(self.db.cf(*cf), key, value);
                    }
                    Ok(Appended {
                        seq: entry_seq,
                        rows,
                        duplicates,
                    })
                }
                Err(e) => Err(e.to_string()),
            });
        }
        (write, outcomes, seq)
    }

    /// Stages `batch` (in the log's schema) as the next entry of a log with a single writer
    /// that commits it within its own write: a view publishing its closed windows, with the
    /// epoch that closed them. Call [`Self::committed`] once `write` has committed.
    pub fn stage(
        &self,
        write: &mut WriteBatch,
        batch: &RecordBatch,
    ) -> Result<Staged, StorageError> {
        let queue = self.lock_queue();
        let seq = queue.next_seq;
        write.put_cf(self.db.cf(Cf::Log), self.key(seq), encode(batch)?);
        if let Some((min, max)) = self.time_range(batch) {
            let mut stats = min.to_be_bytes().to_vec();
            stats.extend(max.to_be_bytes());
            write.put_cf(self.db.cf(Cf::LogStats), self.key(seq), stats);
        }
        let rows = queue.rows + batch.num_rows() as u64;
        write.put_cf(
            self.db.cf(Cf::Meta),
            rows_key(self.def.id),
            rows.to_be_bytes(),
        );
        Ok(Staged {
            next_seq: seq + 1,
            rows,
        })
    }

    /// A staged entry committed: readers may have it.
    pub fn committed(&self, staged: Staged) {
        let mut queue = self.lock_queue();
        let first = queue.next_seq;
        queue.next_seq = staged.next_seq;
        queue.rows = staged.rows;
        self.note_commit(first, staged.next_seq);
        self.head.send_replace(staged.next_seq);
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds appends off while a `DROP SOURCE` commits: waits for a group in flight, then
    /// keeps new ones from starting.
    pub fn lock_for_drop(&self) -> SourceDropLock<'_> {
        let mut queue = self.lock_queue();
        while queue.writing {
            queue = self.idle.wait(queue).unwrap_or_else(|e| e.into_inner());
        }
        SourceDropLock { queue }
    }

    /// The smallest and largest event time (µs) in `batch`, if the source has a watermark
    /// column and the batch a non-null time.
    fn time_range(&self, batch: &RecordBatch) -> Option<(i64, i64)> {
        let column = self.event_time_column()?;
        let times = batch
            .column(column)
            .as_primitive_opt::<TimestampMicrosecondType>()?;
        Some((min(times)?, max(times)?))
    }

    /// The position of the watermark (event-time) column.
    pub fn event_time_column(&self) -> Option<usize> {
        let watermark = self.def.watermark.as_ref()?;
        self.def
            .columns
            .iter()
            .position(|c| c.name == watermark.column)
    }

    /// The logged batches that can hold event times in `[lo, hi]` (µs, inclusive; `None` is
    /// unbounded), in order, and how many entries were skipped without being read.
    pub fn scan_time_range(
        &self,
        lo: Option<i64>,
        hi: Option<i64>,
    ) -> Result<(Vec<RecordBatch>, usize), StorageError> {
        if lo.is_none() && hi.is_none() {
            return Ok((self.scan()?, 0));
        }
        let prefix = self.def.id.to_be_bytes();
        let stats = self.db.scan_prefix(Cf::LogStats, &prefix)?;
        let skip: std::collections::HashSet<Box<[u8]>> = stats
            .into_iter()
            .filter(|(_, v)| {
                let (Ok(min), Ok(max)) = (v[..8].try_into(), v[8..16].try_into()) else {
                    return false;
                };
                let (min, max) = (i64::from_be_bytes(min), i64::from_be_bytes(max));
                lo.is_some_and(|lo| max < lo) || hi.is_some_and(|hi| min > hi)
            })
            .map(|(k, _)| k)
            .collect();
        let mut batches = Vec::new();
        for (key, value) in self.db.scan_prefix(Cf::Log, &prefix)? {
            if !skip.contains(&key) {
                batches.extend(decode(&value)?);
            }
        }
        Ok((batches, skip.len()))
    }

    /// Every logged batch, in order, from one snapshot.
    pub fn scan(&self) -> Result<Vec<RecordBatch>, StorageError> {
        let mut batches = Vec::new();
        for (_, value) in self.db.scan_prefix(Cf::Log, &self.def.id.to_be_bytes())? {
            batches.extend(decode(&value)?);
        }
        Ok(batches)
    }

    fn key(&self, seq: u64) -> Vec<u8> {
        let mut key = self.def.id.to_be_bytes().to_vec();
        key.extend(seq.to_be_bytes());
        key
    }
}

/// One batch as an Arrow IPC stream.
pub(super) fn encode(batch: &RecordBatch) -> Result<Vec<u8>, StorageError> {
    let corrupt = |e: datafusion::arrow::error::ArrowError| {
        StorageError::InvalidValue(format!("cannot encode batch: {e}"))
    };
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema()).map_err(corrupt)?;
    writer.write(batch).map_err(corrupt)?;
    writer.into_inner().map_err(corrupt)
}

/// The batches of an Arrow IPC stream.
pub(super) fn decode(bytes: &[u8]) -> Result<Vec<RecordBatch>, StorageError> {
    let corrupt = |e: datafusion::arrow::error::ArrowError| {
        StorageError::Corrupt(format!("source log entry: {e}"))
    };
    StreamReader::try_new(Cursor::new(bytes), None)
        .map_err(corrupt)?
        .map(|batch| batch.map_err(corrupt))
        .collect()
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int32Array, TimestampMicrosecondArray};
    use weir_catalog::{
        ColumnDef, ColumnType, Connector, Encoding, ObjectId, SourceOptions, UnknownFields,
        Watermark,
    };

    use super::*;

    /// A one-column source; with `watermark`, the column is its event time.
    fn source(id: u64, column: &str, ty: ColumnType, watermark: bool) -> Arc<SourceDef> {
        let options = SourceOptions {
            idle_timeout_ms: None,
            max_future_skew_ms: None,
            kafka: None,
            nexmark: None,
            connector: Connector::Http,
            encoding: Encoding::Json,
            dedup: None,
            unknown_fields: UnknownFields::Reject,
        };
        let columns = vec![ColumnDef {
            name: column.into(),
            ty,
            nullable: true,
            default: None,
        }];
        let watermark = watermark.then(|| Watermark {
            column: column.into(),
            delay_ms: 0,
        });
        let def = SourceDef::try_new(
            ObjectId(id),
            format!("s{id}"),
            columns,
            watermark,
            options,
            String::new(),
        );
        Arc::new(def.unwrap())
    }

    fn def() -> Arc<SourceDef> {
        source(3, "a", ColumnType::Int32, false)
    }

    #[test]
    fn appends_survive_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let batch = |v: i32| {
            RecordBatch::try_new(
                def().arrow_schema(),
                vec![
                    Arc::new(Int32Array::from(vec![v, v + 1])),
                    Arc::new(TimestampMicrosecondArray::from(vec![1, 2]).with_timezone("+00:00")),
                ],
            )
            .unwrap()
        };
        {
            let db = Arc::new(Db::open(dir.path()).unwrap());
            let log = SourceLog::open(db, def()).unwrap();
            assert_eq!(log.append(batch(1)).unwrap().seq, Some(0));
            assert_eq!(log.append(batch(10)).unwrap().seq, Some(1));
        }
        let db = Arc::new(Db::open(dir.path()).unwrap());
        let log = SourceLog::open(db, def()).unwrap();
        assert_eq!(
            log.append(batch(100)).unwrap().seq,
            Some(2),
            "sequence continues after reopen"
        );
        assert_eq!(log.scan().unwrap(), vec![batch(1), batch(10), batch(100)]);

        // A reader at the head waits for nothing; one behind waits since the entry it has
        // not read committed, entries from before the reopen since the reopen.
        assert_eq!(log.waited(3), Duration::ZERO);
        let (newest, reopened) = (log.waited(2), log.waited(0));
        assert!(newest > Duration::ZERO);
        assert!(reopened >= newest, "{reopened:?} < {newest:?}");
    }

    #[test]
    fn concurrent_appends_get_every_sequence_number_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path()).unwrap());
        let log = Arc::new(SourceLog::open(db, def()).unwrap());
        let batch = RecordBatch::try_new(
            def().arrow_schema(),
            vec![
                Arc::new(Int32Array::from(vec![7])),
                Arc::new(TimestampMicrosecondArray::from(vec![1]).with_timezone("+00:00")),
            ],
        )
        .unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (log, batch) = (log.clone(), batch.clone());
                std::thread::spawn(move || {
                    (0..25)
                        .map(|_| log.append(batch.clone()).unwrap().seq.unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seqs: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        seqs.sort();
        assert_eq!(seqs, (0..200).collect::<Vec<_>>());
        assert_eq!(log.scan().unwrap().len(), 200);

        let lock = log.lock_for_drop();
        lock.retire();
        assert!(matches!(
            log.append(batch),
            Err(StorageError::Dropped { .. })
        ));
    }

    #[test]
    fn time_range_scans_skip_entries_that_cannot_match() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path()).unwrap());
        let def = source(4, "ts", ColumnType::Timestamp, true);
        let log = SourceLog::open(db, def.clone()).unwrap();
        let entry = |times: Vec<Option<i64>>| {
            let received = vec![0; times.len()];
            RecordBatch::try_new(
                def.arrow_schema(),
                vec![
                    Arc::new(TimestampMicrosecondArray::from(times)),
                    Arc::new(TimestampMicrosecondArray::from(received).with_timezone("+00:00")),
                ],
            )
            .unwrap()
        };
        log.append(entry(vec![Some(10), Some(20)])).unwrap();
        log.append(entry(vec![Some(30), Some(40)])).unwrap();
        log.append(entry(vec![None])).unwrap();
        let rows = |(batches, skipped): (Vec<RecordBatch>, usize)| {
            (batches.iter().map(|b| b.num_rows()).sum::<usize>(), skipped)
        };
        assert_eq!(rows(log.scan_time_range(Some(25), None).unwrap()), (3, 1));
        assert_eq!(rows(log.scan_time_range(None, Some(20)).unwrap()), (3, 1));
        assert_eq!(
            rows(log.scan_time_range(Some(21), Some(29)).unwrap()),
            (1, 2)
        );
        assert_eq!(rows(log.scan_time_range(None, None).unwrap()), (5, 0));
    }
}
