//! Event time as a view sees it: the source's watermark (the largest event time seen so far,
//! less the source's `WATERMARK` delay) and the events that arrive behind it.
//!
//! The watermark advances per log entry, in log order, so which events are late is a function
//! of the log alone: the same after a crash and restart as without one, whatever the epochs'
//! boundaries. An event is late when its time is behind the watermark reached before its entry,
//! and "from the future" when its time is more than `max_future_skew` (default 5 minutes) ahead
//! of its own `_received_at`; neither is counted by the view (nor does a future event move the
//! watermark), and both are kept in `weir.late_events` with the reason.
//!
//! Over a source with partitions (Kafka: each row has `_partition`), each partition's newest
//! event time is kept, and the source's watermark is the oldest of them, over the partitions
//! that are active: a partition whose last event arrived more than `idle_timeout` before the
//! entry at hand stops holding it back. Arrival is each row's logged `_received_at`, so this
//! too is a function of the log; the partitions' times are committed with the watermark.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, AsArray, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::{filter_record_batch, not};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::error::{DataFusionError, Result};

use crate::storage::{ClockState, PartitionTime, late_events_schema};

/// Why a late event was not counted.
const BEHIND_WATERMARK: &str = "event time is behind the source watermark";
/// Why an event of a SESSION view without a time was not counted.
const NULL_TIME: &str = "event time is NULL";
/// Why an event of a SESSION view that would change a session already closed was not counted.
pub const IN_CLOSED_SESSION: &str = "event falls inside or before a closed session of its key";

/// The `reason` label of `weir_view_late_events_total` for a row set aside with `reason` (the
/// `weir.late_events` text, which for events too far ahead names the view's skew).
pub fn reason_label(reason: &str) -> &'static str {
    match reason {
        BEHIND_WATERMARK => "behind_watermark",
        NULL_TIME => "null_time",
        IN_CLOSED_SESSION => "closed_session",
        _ => "ahead_of_arrival",
    }
}

/// One view's watermark over its source.
#[derive(Debug)]
pub struct EventClock {
    /// The event-time column in the log's rows.
    column: usize,
    /// The `_received_at` column: an event is judged against its own arrival, so the decision
    /// is a function of the log, whenever it is made.
    received: usize,
    delay_us: i64,
    max_future_us: i64,
    /// Why an event too far ahead was set aside.
    ahead: String,
    watermark: Option<i64>,
    /// The partition column, over a partitioned source.
    partition: Option<usize>,
    /// How long a partition may go without events before it stops holding the watermark.
    idle_us: Option<i64>,
    /// Per partition: the newest event time and the latest arrival (µs).
    partitions: BTreeMap<i32, (i64, i64)>,
    /// How far behind the watermark an event is still on time (µs): a SESSION view's gap.
    allowance_us: i64,
    /// Whether an event without a time is set aside (a SESSION view's) or passed on.
    reject_null_time: bool,
    view: String,
    source: String,
}

/// Where a view's clock reads time, and how it judges it.
#[derive(Debug, Clone, Copy)]
pub struct ClockColumns {
    /// The event-time column in the log's rows.
    pub event_time: usize,
    /// The `_received_at` column.
    pub received_at: usize,
    /// The watermark delay.
    pub delay_ms: u64,
    /// How far ahead of its arrival an event's time may be.
    pub max_future_skew_ms: u64,
    /// The partition column (`Int32`) of a partitioned source.
    pub partition: Option<usize>,
    /// The source's `idle_timeout`.
    pub idle_timeout_ms: Option<u64>,
    /// An event is late when its time plus this is at or behind the watermark (a SESSION
    /// view's gap); with 0, when its time is behind the watermark.
    pub allowed_lateness_ms: u64,
    /// Set events without a time aside (a SESSION view places none of them).
    pub reject_null_time: bool,
}

impl EventClock {
    /// A clock over `columns`, resuming where `state` says.
    pub fn new(columns: ClockColumns, state: Option<ClockState>, view: &str, source: &str) -> Self {
        let (watermark, partitions) = match state {
            Some(state) => (
                Some(state.watermark),
                state
                    .partitions
                    .iter()
                    .map(|p| (p.partition, (p.newest, p.last_arrival)))
                    .collect(),
            ),
            None => (None, BTreeMap::new()),
        };
        Self {
            partition: columns.partition,
            idle_us: columns.idle_timeout_ms.map(|ms| ms as i64 * 1000),
            partitions,
            column: columns.event_time,
            received: columns.received_at,
            delay_us: columns.delay_ms as i64 * 1000,
            max_future_us: columns.max_future_skew_ms as i64 * 1000,
            ahead: format!(
                "event time is more than {} ms ahead of its arrival (max_future_skew)",
                columns.max_future_skew_ms
            ),
            watermark,
            allowance_us: columns.allowed_lateness_ms as i64 * 1000,
            reject_null_time: columns.reject_null_time,
            view: view.into(),
            source: source.into(),
        }
    }

    /// The watermark reached (µs), once an event has been seen.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// What to commit to resume this clock.
    pub fn state(&self) -> Option<ClockState> {
        Some(ClockState {
            watermark: self.watermark?,
            partitions: self
                .partitions
                .iter()
                .map(|(&partition, &(newest, last_arrival))| PartitionTime {
                    partition,
                    newest,
                    last_arrival,
                })
                .collect(),
        })
    }

    /// Splits one log entry into the rows on time and the rows set aside (as
    /// `weir.late_events` rows): those behind the watermark reached before the entry, and those
    /// too far ahead of their own arrival, which do not move the watermark either. Then
    /// advances the watermark past the entry.
    pub fn split(&mut self, entry: RecordBatch) -> Result<(RecordBatch, Option<RecordBatch>)> {
        let timestamps = |column: usize| {
            entry
                .column(column)
                .as_primitive_opt::<TimestampMicrosecondType>()
                .cloned()
                .ok_or_else(|| DataFusionError::Internal("time column is not a timestamp".into()))
        };
        let (times, received) = (timestamps(self.column)?, timestamps(self.received)?);
        let watermark = self.watermark;
        let on_time_from = watermark.map(|w| self.on_time_from(w));
        // A NULL time is set aside only where it cannot be placed (sessions).
        let reasons: Vec<Option<&str>> = times
            .iter()
            .zip(received.iter())
            .map(|(time, arrived)| match time {
                Some(t) if arrived.is_some_and(|a| t > a.saturating_add(self.max_future_us)) => {
                    Some(self.ahead.as_str())
                }
                Some(t) if on_time_from.is_some_and(|from| t < from) => Some(BEHIND_WATERMARK),
                None if self.reject_null_time => Some(NULL_TIME),
                _ => None,
            })
            .collect();
        let counted = |i: usize| reasons[i].is_none_or(|r| r != self.ahead.as_str());
        let newest = match self.partition {
            None => (0..times.len())
                .filter(|&i| counted(i))
                .filter(|&i| times.is_valid(i))
                .map(|i| times.value(i))
                .max(),
            Some(column) => {
                let partitions = entry
                    .column(column)
                    .as_primitive_opt::<datafusion::arrow::datatypes::Int32Type>()
                    .cloned()
                    .ok_or_else(|| {
                        DataFusionError::Internal("partition column is not an int".into())
                    })?;
                advance_partitions(
                    &mut self.partitions,
                    self.idle_us,
                    &times,
                    &received,
                    &partitions,
                    &counted,
                )
            }
        };
        let aside: BooleanArray = reasons.iter().map(|r| Some(r.is_some())).collect();
        let result = if aside.true_count() > 0 {
            let late = filter_record_batch(&entry, &aside)?;
            let on_time = filter_record_batch(&entry, &not(&aside)?)?;
            let why: Vec<&str> = reasons.iter().flatten().copied().collect();
            (on_time, Some(self.records(&late, &why, watermark)?))
        } else {
            (entry, None)
        };
        if let Some(newest) = newest {
            let candidate = newest.saturating_sub(self.delay_us);
            self.watermark = Some(self.watermark.map_or(candidate, |w| w.max(candidate)));
        }
        Ok(result)
    }

    /// The earliest time still on time against `watermark`.
    fn on_time_from(&self, watermark: i64) -> i64 {
        if self.allowance_us == 0 {
            watermark
        } else {
            // `t + allowance > watermark`.
            watermark
                .saturating_sub(self.allowance_us)
                .saturating_add(1)
        }
    }

    /// Whether `entry` has events behind the watermark that its allowance keeps on time: a
    /// SESSION view judges those against the sessions closed before the entry, so it ends an
    /// epoch before such an entry and the judgement does not depend on where epochs end.
    pub fn has_allowed_late(&self, entry: &RecordBatch) -> bool {
        let (Some(watermark), true) = (self.watermark, self.allowance_us > 0) else {
            return false;
        };
        entry
            .column(self.column)
            .as_primitive_opt::<TimestampMicrosecondType>()
            .is_some_and(|times| times.iter().flatten().any(|t| t < watermark))
    }

    /// `rows` (of the log) as `weir.late_events` rows set aside for `reason`, against
    /// `watermark`.
    pub fn set_aside(
        &self,
        rows: &RecordBatch,
        reason: &str,
        watermark: Option<i64>,
    ) -> Result<RecordBatch> {
        self.records(rows, &vec![reason; rows.num_rows()], watermark)
    }

    /// The column of event times in the log's rows.
    pub fn time_column(&self) -> usize {
        self.column
    }

    /// After the source has been idle: the watermark follows the wall clock `now_us` less the
    /// delay. Returns whether it moved.
    pub fn follow_clock(&mut self, now_us: i64) -> bool {
        let candidate = now_us.saturating_sub(self.delay_us);
        if self.watermark.is_some_and(|w| w >= candidate) {
            return false;
        }
        self.watermark = Some(candidate);
        true
    }

    /// `late` as `weir.late_events` rows: the event itself as JSON, and why.
    fn records(
        &self,
        late: &RecordBatch,
        reasons: &[&str],
        watermark: Option<i64>,
    ) -> Result<RecordBatch> {
        let mut writer = LineDelimitedWriter::new(Vec::new());
        writer.write(late)?;
        writer.finish()?;
        let json = String::from_utf8(writer.into_inner())
            .map_err(|e| DataFusionError::Internal(e.to_string()))?;
        let payloads: StringArray = json.lines().map(Some).collect();
        let n = late.num_rows();
        let times = late
            .column(self.column)
            .as_primitive::<TimestampMicrosecondType>();
        let utc = |a: TimestampMicrosecondArray| a.with_timezone("+00:00");
        Ok(RecordBatch::try_new(
            late_events_schema(),
            vec![
                Arc::new(StringArray::from(vec![self.view.as_str(); n])),
                Arc::new(StringArray::from(vec![self.source.as_str(); n])),
                Arc::new(utc(times.iter().collect())),
                Arc::new(utc(vec![watermark; n].into())),
                Arc::new(StringArray::from(reasons.to_vec())),
                Arc::new(payloads),
            ],
        )?)
    }
}

/// Takes in each partition's newest time and latest arrival from an entry; returns the
/// oldest newest time over the partitions still active at the entry's arrival.
fn advance_partitions(
    clocks: &mut BTreeMap<i32, (i64, i64)>,
    idle_us: Option<i64>,
    times: &TimestampMicrosecondArray,
    received: &TimestampMicrosecondArray,
    partitions: &datafusion::arrow::array::Int32Array,
    counted: &dyn Fn(usize) -> bool,
) -> Option<i64> {
    let mut arrival = None;
    for i in 0..times.len() {
        if partitions.is_null(i) || received.is_null(i) {
            continue;
        }
        let at = received.value(i);
        arrival = arrival.max(Some(at));
        let slot = clocks.entry(partitions.value(i)).or_insert((i64::MIN, at));
        slot.1 = slot.1.max(at);
        if counted(i) && times.is_valid(i) {
            slot.0 = slot.0.max(times.value(i));
        }
    }
    let arrival = arrival?;
    clocks
        .values()
        .filter(|(_, last)| idle_us.is_none_or(|idle| *last >= arrival - idle))
        .map(|(newest, _)| *newest)
        .min()
        .filter(|&t| t != i64::MIN)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Int32Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    const S: i64 = 1_000_000;

    /// An entry of (partition, event time s, arrival s) rows: columns ts, _partition,
    /// _received_at.
    fn entry(rows: &[(i32, i64, i64)]) -> RecordBatch {
        let time = || DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
        let utc = |v: Vec<i64>| TimestampMicrosecondArray::from(v).with_timezone("+00:00");
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("ts", time(), true),
                Field::new("_partition", DataType::Int32, false),
                Field::new("_received_at", time(), false),
            ])),
            vec![
                Arc::new(utc(rows.iter().map(|r| r.1 * S).collect())),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(utc(rows.iter().map(|r| r.2 * S).collect())),
            ],
        )
        .unwrap()
    }

    fn clock(state: Option<ClockState>) -> EventClock {
        EventClock::new(
            ClockColumns {
                event_time: 0,
                received_at: 2,
                delay_ms: 5_000,
                max_future_skew_ms: 3_600_000,
                partition: Some(1),
                idle_timeout_ms: Some(10_000),
                allowed_lateness_ms: 0,
                reject_null_time: false,
            },
            state,
            "v",
            "s",
        )
    }

    #[test]
    fn the_slowest_active_partition_holds_the_watermark() {
        let mut c = clock(None);
        let (_, late) = c.split(entry(&[(0, 100, 1), (1, 40, 1)])).unwrap();
        assert!(late.is_none());
        assert_eq!(
            c.watermark(),
            Some(35 * S),
            "the older partition's time, less 5 s"
        );
        // Partition 1 moves on; partition 0's time is still the newest it has.
        c.split(entry(&[(1, 90, 2)])).unwrap();
        assert_eq!(c.watermark(), Some(85 * S));
        // An event behind the watermark of the slowest partition is late.
        let (on_time, late) = c.split(entry(&[(0, 80, 3), (1, 86, 3)])).unwrap();
        assert_eq!((on_time.num_rows(), late.unwrap().num_rows()), (1, 1));

        // The clock resumes from its committed state as if it had never stopped.
        let mut resumed = clock(c.state());
        for clock in [&mut c, &mut resumed] {
            // Partition 1 falls silent; 10 s of arrivals later it no longer holds the
            // watermark back.
            clock.split(entry(&[(0, 120, 12)])).unwrap();
            assert_eq!(
                clock.watermark(),
                Some(85 * S),
                "partition 1 is still active"
            );
            clock.split(entry(&[(0, 130, 14)])).unwrap();
            assert_eq!(clock.watermark(), Some(125 * S), "partition 1 went idle");
        }
    }
}
