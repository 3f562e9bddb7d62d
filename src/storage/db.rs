//! The RocksDB instance and its column families.
//!
//! Only the compression codec Weir uses (zstd) is compiled into RocksDB, to keep its C++ build
//! short.

use std::path::Path;

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Direction, ErrorKind,
    IteratorMode, Options, ReadOptions, ReadTier, WriteBatch, WriteOptions,
    compaction_filter::Decision as CompactionDecision,
};

use super::StorageError;
use super::dedup::{DedupWindows, now_ms};

/// Column families: one per kind of data, so each can be tuned and scanned alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cf {
    /// `object id` -> encoded catalog object.
    Catalog,
    /// Small named counters (`next_object_id`).
    Meta,
    /// `table id ++ memcomparable primary key` -> encoded row.
    Rows,
    /// `source id ++ seq` -> one Arrow IPC batch of accepted events.
    Log,
    /// `source id ++ event id` -> when it was accepted (ms): dedup state.
    Dedup,
    /// `seq` -> one Arrow IPC batch of refused events.
    DeadLetters,
    /// `source id ++ seq` -> min and max event time (µs, i64 BE) of that log entry, so a scan
    /// with a time predicate reads only the entries that can match.
    LogStats,
    /// `view id ++ 0` -> the next log sequence number the view reads; `view id ++ 1 ++ group
    /// key` -> that group's aggregate state row.
    ViewState,
    /// `view id ++ seq ++ row index` -> a late event (row codec), `weir.late_events`.
    LateEvents,
}

impl Cf {
    const ALL: [Cf; 9] = [
        Cf::Catalog,
        Cf::Meta,
        Cf::Rows,
        Cf::Log,
        Cf::Dedup,
        Cf::DeadLetters,
        Cf::LogStats,
        Cf::ViewState,
        Cf::LateEvents,
    ];

    fn name(self) -> &'static str {
        match self {
            Cf::Catalog => "catalog",
            Cf::Meta => "meta",
            Cf::Rows => "rows",
            Cf::Log => "source_log",
            Cf::Dedup => "dedup",
            Cf::DeadLetters => "dead_letters",
            Cf::LogStats => "source_log_stats",
            Cf::ViewState => "view_state",
            Cf::LateEvents => "late_events",
        }
    }
}

/// What [`Db::stats`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbStats {
    /// Estimated bytes of live data.
    pub live_data_bytes: u64,
    /// Estimated bytes compaction has yet to rewrite.
    pub pending_compaction_bytes: u64,
    /// Memtable flushes and compactions running now.
    pub running_background_jobs: u64,
}

/// The database. Writes are atomic batches with a synced WAL: a statement is acknowledged only
/// once its batch would survive a crash of the process or the machine.
pub struct Db {
    inner: DB,
    synced: WriteOptions,
    dedup_windows: DedupWindows,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.path())
            .finish()
    }
}

/// Files written by a flush stay uncompressed; compactions compress with zstd. Most of what
/// is flushed is short-lived (view states rewritten every epoch, log entries views read while
/// they are fresh), and compressing it twice, at flush and again at compaction, was the
/// largest cost of a server ingesting at 100,000 events/s with views running.
fn compress_after_flush(options: &mut Options) {
    let mut levels = [DBCompressionType::Zstd; 7];
    levels[0] = DBCompressionType::None;
    options.set_compression_per_level(&levels);
}

/// A key/value pair read by a scan.
pub type Entry = (Box<[u8]>, Box<[u8]>);

impl Db {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        compress_after_flush(&mut options);
        let dedup_windows = DedupWindows::default();
        let families = Cf::ALL.iter().map(|cf| {
            let mut cf_options = Options::default();
            compress_after_flush(&mut cf_options);
            if *cf == Cf::Dedup {
                let windows = dedup_windows.clone();
                cf_options.set_compaction_filter(
                    "weir_dedup_expiry",
                    move |_level, key: &[u8], value: &[u8]| {
                        if windows.expired(key, value, now_ms()) {
                            CompactionDecision::Remove
                        } else {
                            CompactionDecision::Keep
                        }
                    },
                );
            }
            ColumnFamilyDescriptor::new(cf.name(), cf_options)
        });
        let inner = DB::open_cf_descriptors(&options, path, families)?;
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        Ok(Self {
            inner,
            synced,
            dedup_windows,
        })
    }

    /// RocksDB's estimates of the live data and of the bytes compaction has yet to
    /// rewrite, over all column families.
    pub fn stats(&self) -> DbStats {
        let mut stats = DbStats::default();
        for cf in Cf::ALL {
            let handle = self.cf(cf);
            let property = |name: &str| {
                self.inner
                    .property_int_value_cf(handle, name)
                    .ok()
                    .flatten()
                    .unwrap_or(0)
            };
            stats.live_data_bytes += property("rocksdb.estimate-live-data-size");
            stats.pending_compaction_bytes += property("rocksdb.estimate-pending-compaction-bytes");
        }
        // Counted for the whole database, whichever column family is asked.
        let handle = self.cf(Cf::Meta);
        for name in [
            "rocksdb.num-running-flushes",
            "rocksdb.num-running-compactions",
        ] {
            stats.running_background_jobs += self
                .inner
                .property_int_value_cf(handle, name)
                .ok()
                .flatten()
                .unwrap_or(0);
        }
        stats
    }

    /// The handle of a column family.
    pub fn cf(&self, cf: Cf) -> &ColumnFamily {
        self.inner
            .cf_handle(cf.name())
            .expect("every column family is created at open")
    }

    /// The dedup windows the `dedup` compaction filter expires ids by.
    pub fn dedup_windows(&self) -> &DedupWindows {
        &self.dedup_windows
    }

    /// Compacts a whole column family now (tests; compaction otherwise runs on its own).
    pub fn compact(&self, cf: Cf) {
        self.inner
            .compact_range_cf(self.cf(cf), None::<&[u8]>, None::<&[u8]>);
    }

    /// Writes `batch` atomically and durably.
    pub fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        Ok(self.inner.write_opt(batch, &self.synced)?)
    }

    /// One value.
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.inner.get_cf(self.cf(cf), key)?)
    }

    /// Every entry whose key starts with `prefix`, in key order, from one consistent snapshot.
    pub fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Vec<Entry>, StorageError> {
        self.scan_from(cf, prefix, prefix, usize::MAX)
    }

    /// Every entry with `start <= key < end` (no end: to the end of `cf`), in key order, from
    /// one consistent snapshot.
    pub fn scan_range(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<Vec<u8>>,
    ) -> Result<Vec<Entry>, StorageError> {
        self.iterate(cf, start, end).collect()
    }

    /// [`Db::scan_range`] from memory only (memtables and the block cache), or `None` when an
    /// entry would have to be read from disk: an async task reads what is cached without
    /// blocking and leaves the rest to a blocking thread.
    pub fn scan_range_cached(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<Vec<u8>>,
    ) -> Result<Option<Vec<Entry>>, StorageError> {
        let mut read = ReadOptions::default();
        read.set_read_tier(ReadTier::BlockCache);
        let mut entries = Vec::new();
        for entry in self.iterate_with(read, cf, start, end) {
            match entry {
                Ok(entry) => entries.push(entry),
                Err(e) if e.kind() == ErrorKind::Incomplete => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(entries))
    }

    /// Up to `limit` entries with keys from `start` on that still start with `prefix`.
    pub fn scan_from(
        &self,
        cf: Cf,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        self.iterate(cf, start, prefix_end(prefix))
            .take(limit)
            .collect()
    }

    /// The entries of `cf` under `prefix` from `start` on, in key order, read as iterated.
    pub fn iter_from<'a>(
        &'a self,
        cf: Cf,
        prefix: &[u8],
        start: &[u8],
    ) -> impl Iterator<Item = Result<Entry, StorageError>> + 'a {
        self.iterate(cf, start, prefix_end(prefix))
    }

    fn iterate(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<Vec<u8>>,
    ) -> impl Iterator<Item = Result<Entry, StorageError>> + '_ {
        self.iterate_with(ReadOptions::default(), cf, start, end)
            .map(|item| item.map_err(StorageError::from))
    }

    fn iterate_with(
        &self,
        mut read: ReadOptions,
        cf: Cf,
        start: &[u8],
        end: Option<Vec<u8>>,
    ) -> impl Iterator<Item = Result<Entry, rocksdb::Error>> + '_ {
        if let Some(end) = end {
            read.set_iterate_upper_bound(end);
        }
        self.inner.iterator_cf_opt(
            self.cf(cf),
            read,
            IteratorMode::From(start, Direction::Forward),
        )
    }

    /// The sequence number after the last key `prefix ++ seq` (u64 BE) in `cf`; 0 when there
    /// is none. Logs continue from it after a restart.
    pub fn next_seq(&self, cf: Cf, prefix: &[u8]) -> Result<u64, StorageError> {
        match self.last_with_prefix(cf, prefix)? {
            Some((key, _)) => {
                let seq: [u8; 8] = key[prefix.len()..].try_into().map_err(|_| {
                    StorageError::Corrupt(format!("{} key of {} bytes", cf.name(), key.len()))
                })?;
                Ok(u64::from_be_bytes(seq) + 1)
            }
            None => Ok(0),
        }
    }

    /// The last entry whose key starts with `prefix`.
    pub fn last_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Option<Entry>, StorageError> {
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(prefix.to_vec());
        if let Some(end) = prefix_end(prefix) {
            read.set_iterate_upper_bound(end);
        }
        let mut iter = self
            .inner
            .iterator_cf_opt(self.cf(cf), read, IteratorMode::End);
        iter.next().transpose().map_err(StorageError::from)
    }
}

/// The smallest key greater than every key starting with `prefix`, if one exists.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_scans_stay_inside_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let mut batch = WriteBatch::default();
        for key in [&b"a\x01"[..], b"b\x00", b"b\x01", b"b\xff", b"c"] {
            batch.put_cf(db.cf(Cf::Rows), key, b"v");
        }
        db.write(batch).unwrap();
        let keys: Vec<_> = db
            .scan_prefix(Cf::Rows, b"b")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            vec![
                b"b\x00".to_vec().into(),
                b"b\x01".to_vec().into(),
                b"b\xff".to_vec().into()
            ]
        );
        let last = db.last_with_prefix(Cf::Rows, b"b").unwrap().unwrap();
        assert_eq!(&*last.0, b"b\xff");
        assert!(db.last_with_prefix(Cf::Rows, b"d").unwrap().is_none());
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
    }

    #[test]
    fn cached_scans_answer_from_memory_only() {
        let dir = tempfile::tempdir().unwrap();
        let rows = |db: &Db| db.scan_range(Cf::Rows, b"k", prefix_end(b"k")).unwrap();
        let cached = |db: &Db| {
            db.scan_range_cached(Cf::Rows, b"k", prefix_end(b"k"))
                .unwrap()
        };
        {
            let db = Db::open(dir.path()).unwrap();
            let mut batch = WriteBatch::default();
            for i in 0..100u8 {
                batch.put_cf(db.cf(Cf::Rows), [b'k', i], [i; 64]);
            }
            db.write(batch).unwrap();
            // In the memtable.
            assert_eq!(cached(&db).unwrap(), rows(&db));
            db.compact(Cf::Rows);
        }
        // Reopened, the rows are in a table file and not in the block cache: a cached scan
        // declines; a full scan reads them, which caches their blocks.
        let db = Db::open(dir.path()).unwrap();
        assert_eq!(cached(&db), None);
        let read = rows(&db);
        assert_eq!(read.len(), 100);
        assert_eq!(cached(&db).unwrap(), read);
    }
}
