//! The log entries an epoch takes: each split by the view's clock into events on time and
//! events set aside (late, too far ahead, or, for a SESSION view, inside a closed session).

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::error::Result;
use weir_catalog::{Connector, KAFKA_PARTITION_COLUMN, ViewDef};
use weir_sql::plan::ViewQuery;

use super::ViewRunner;
use crate::storage::{ClockState, SourceLog};
use crate::stream::watermark::{ClockColumns, EventClock};

/// How far ahead of its arrival an event may be when the source does not say.
const DEFAULT_MAX_FUTURE_SKEW_MS: u64 = 5 * 60 * 1000;

/// What an epoch took from the entries it read.
pub(super) struct Taken {
    /// The first log position taken, and the one after the last.
    pub(super) first: u64,
    pub(super) next_seq: u64,
    /// Entries and events taken.
    pub(super) read: usize,
    pub(super) events: u64,
    /// Per entry, its events on time.
    pub(super) delta: Vec<RecordBatch>,
    /// Per entry, its rows set aside (as `weir.late_events` rows).
    pub(super) late: Vec<(u64, RecordBatch)>,
}

impl ViewRunner {
    /// Splits `entries` into events on time and events set aside, in log order, moving the
    /// clock past each. A SESSION view may leave entries for the next epoch (put back).
    pub(super) async fn take_entries(&mut self, entries: Vec<(u64, RecordBatch)>) -> Result<Taken> {
        let (mut first, mut next_seq) = (self.position.next_seq, self.position.next_seq);
        let (mut read, mut events) = (0, 0u64);
        let mut delta = Vec::with_capacity(entries.len());
        let mut late = Vec::new();
        let mut entries = entries.into_iter();
        while let Some((seq, entry)) = entries.next() {
            // A SESSION view judges events behind the watermark against the sessions closed
            // before their entry: the epoch ends before a later entry that has some, so the
            // judgement does not depend on where epochs end.
            if read > 0
                && self.sessions.is_some()
                && self
                    .clock
                    .as_ref()
                    .is_some_and(|clock| clock.has_allowed_late(&entry))
            {
                self.reader
                    .put_back(std::iter::once((seq, entry)).chain(entries).collect());
                break;
            }
            if read == 0 {
                first = seq;
            }
            next_seq = seq + 1;
            read += 1;
            events += entry.num_rows() as u64;
            match &mut self.clock {
                Some(clock) => {
                    let before = clock.watermark();
                    let (mut on_time, mut late_rows) = clock.split(entry)?;
                    if read == 1 && self.sessions.is_some() {
                        let (kept, aside) =
                            self.set_aside_in_closed_sessions(on_time, before).await?;
                        on_time = kept;
                        // One batch per entry: late rows are keyed by entry and row index.
                        late_rows = match (late_rows, aside) {
                            (Some(a), Some(b)) => Some(datafusion::arrow::compute::concat_batches(
                                &a.schema(),
                                [&a, &b],
                            )?),
                            (a, b) => a.or(b),
                        };
                    }
                    late.extend(late_rows.map(|rows| (seq, rows)));
                    delta.push(on_time);
                }
                None => delta.push(entry),
            }
        }
        Ok(Taken {
            first,
            next_seq,
            read,
            events,
            delta,
            late,
        })
    }
}

/// Counts the rows `late` set aside in `weir_view_late_events_total`, by reason.
pub(super) fn count_late(view: &str, late: &[(u64, RecordBatch)]) {
    let reasons = late
        .iter()
        .filter_map(|(_, rows)| rows.column_by_name("reason")?.as_string_opt::<i32>())
        .flat_map(|reasons| reasons.iter().flatten())
        .map(crate::stream::watermark::reason_label);
    for (reason, n) in crate::telemetry::tally(reasons) {
        metrics::counter!(
            crate::telemetry::VIEW_LATE_EVENTS,
            "view" => view.to_string(),
            "reason" => reason
        )
        .increment(n);
    }
}

/// The watermark a windowed view over a source with one follows.
pub(super) fn event_clock(
    def: &ViewDef,
    query: &ViewQuery,
    log: &SourceLog,
    state: Option<ClockState>,
) -> Option<EventClock> {
    match (&query.window, &log.def().watermark, log.event_time_column()) {
        (Some(_), Some(w), Some(column)) => Some(EventClock::new(
            ClockColumns {
                event_time: column,
                // `_received_at` follows the declared columns.
                received_at: log.def().columns.len(),
                delay_ms: w.delay_ms,
                max_future_skew_ms: log
                    .def()
                    .options
                    .max_future_skew_ms
                    .unwrap_or(DEFAULT_MAX_FUTURE_SKEW_MS),
                partition: (log.def().options.connector == Connector::Kafka)
                    .then(|| {
                        log.def()
                            .columns
                            .iter()
                            .position(|c| c.name == KAFKA_PARTITION_COLUMN)
                    })
                    .flatten(),
                idle_timeout_ms: log.def().options.idle_timeout_ms,
                allowed_lateness_ms: query.session.as_ref().map_or(0, |s| s.gap_ms),
                reject_null_time: query.session.is_some(),
            },
            state,
            &def.name,
            &log.def().name,
        )),
        _ => None,
    }
}
