//! Nexmark sources: the auction benchmark's people, auctions or bids, generated into the
//! source's log by the reference generator's rules (`sequence.rs`, `generator.rs`).
//!
//! One thread per source generates `nexmark.max.chunk.size` events at a time (keeping those
//! of its table's kind) and appends them as one log entry, written together with the number of
//! the next event to generate, so a restart resumes exactly after what the log holds. With
//! `nexmark.min.event.gap.in.ns` the events are paced to the wall clock; without, they are
//! generated as fast as the log takes them.

mod generator;
mod sequence;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use generator::Generator;
pub use sequence::rows_before;
use weir_catalog::NexmarkOptions;

use super::pull::{PullContext, Puller};
use crate::storage::{Cf, Db, Entry, SourceLog, source_offsets};

/// A paced stream appends at least this often, so its events are visible soon after their time.
const PACED_APPEND_EVERY: Duration = Duration::from_millis(50);
/// Retries after a failed append wait this long at first, doubling up to the maximum.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The partition a Nexmark source's position is stored under.
const PARTITION: i32 = 0;

/// Starts generating into `log` (a Nexmark source's).
pub fn start(db: Arc<Db>, log: Arc<SourceLog>) -> Puller {
    let source = log.def().name.clone();
    Puller::start("nexmark", &source, move |context| {
        let options = log
            .def()
            .options
            .nexmark
            .clone()
            .expect("a Nexmark source has Nexmark options");
        let generator = Generator::new(options.table, options.base_time_ms);
        // The declared columns, by name, among the generated ones.
        let projection = log
            .def()
            .columns
            .iter()
            .map(|c| {
                generator
                    .schema()
                    .index_of(&c.name)
                    .expect("declared Nexmark columns were checked at CREATE SOURCE")
            })
            .collect();
        Ingest {
            db,
            log,
            context,
            options,
            generator,
            projection,
        }
        .run()
    })
}

struct Ingest {
    db: Arc<Db>,
    log: Arc<SourceLog>,
    context: PullContext,
    options: NexmarkOptions,
    generator: Generator,
    projection: Vec<usize>,
}

impl Ingest {
    /// Generates until the stream ends or the source is dropped, starting again from the
    /// stored position after a failure.
    fn run(self) {
        let mut backoff = MIN_BACKOFF;
        while !self.context.stopped() {
            match self.generate() {
                Ok(()) => return,
                Err(message) => {
                    self.context.status.error(message);
                    self.sleep_until(Instant::now() + backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn generate(&self) -> Result<(), String> {
        let id = self.log.def().id;
        let stored = source_offsets::load(&self.db, id).map_err(|e| e.to_string())?;
        let mut next = stored.get(&PARTITION).map_or(0, |&n| n as u64);
        let status = &self.context.status;
        status.assigned([(PARTITION, next as i64)]);
        // `weir.sources.messages_consumed` shows how far the stream is, whatever the restarts.
        status.count_from(next);
        if let Some(total) = self.options.event_num {
            status.high_watermark(PARTITION, total as i64);
        }
        let gap = Duration::from_nanos(self.options.min_event_gap_ns);
        let chunk = if gap.is_zero() {
            self.options.max_chunk_size
        } else {
            let per_append = PACED_APPEND_EVERY.as_nanos() / gap.as_nanos();
            (per_append as u64).clamp(1, self.options.max_chunk_size)
        };
        let (started, first) = (Instant::now(), next);
        while !self.context.stopped() {
            let end = match self.options.event_num {
                Some(total) if next >= total => return Ok(()),
                Some(total) => (next + chunk).min(total),
                None => next + chunk,
            };
            if !gap.is_zero() {
                // The chunk is appended once its last event's time has come.
                let due = started
                    + Duration::from_nanos(
                        self.options.min_event_gap_ns.saturating_mul(end - first),
                    );
                if !self.sleep_until(due) {
                    return Ok(());
                }
            }
            let generated = self
                .generator
                .batch(next..end)
                .project(&self.projection)
                .map_err(|e| e.to_string())?;
            let batch = self
                .log
                .conform(generated, now_us())
                .map_err(|e| e.to_string())?;
            let (key, value) = source_offsets::offset_write(id, PARTITION, end as i64);
            let entry = Entry {
                batch,
                writes: vec![(Cf::Meta, key, value)],
            };
            super::pull::append(&self.log, entry)?;
            status.appended(PARTITION, end as i64, end - next, 0);
            next = end;
        }
        Ok(())
    }

    /// Sleeps until `due` or until stopped, whichever comes first; false if stopped.
    fn sleep_until(&self, due: Instant) -> bool {
        loop {
            if self.context.stopped() {
                return false;
            }
            let now = Instant::now();
            if now >= due {
                return true;
            }
            std::thread::sleep((due - now).min(Duration::from_millis(100)));
        }
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
