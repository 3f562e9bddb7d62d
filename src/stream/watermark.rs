//! Event time as a view sees it: the source's watermark (the largest event time seen so far,
//! less the source's `WATERMARK` delay) and the events that arrive behind it.
//!
//! The watermark advances per log entry, in log order, so which events are late is a function
//! of the log alone: the same after a crash and restart as without one, whatever the epochs'
//! boundaries. An event is late when its time is behind the watermark reached before its entry,
//! and "from the future" when its time is more than `max_future_skew` (default 5 minutes) ahead
//! of its own `_received_at`; neither is counted by the view (nor does a future event move the
//! watermark), and both are kept in `weir.late_events` with the reason.

use std::sync::Arc;

use datafusion::arrow::array::{
    AsArray, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::{filter_record_batch, not};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::error::{DataFusionError, Result};

use crate::storage::late_events_schema;

/// Why a late event was not counted.
const BEHIND_WATERMARK: &str = "event time is behind the source watermark";

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
}

impl EventClock {
    /// A clock over `columns`, resuming at `watermark` (µs).
    pub fn new(columns: ClockColumns, watermark: Option<i64>, view: &str, source: &str) -> Self {
        Self {
            column: columns.event_time,
            received: columns.received_at,
            delay_us: columns.delay_ms as i64 * 1000,
            max_future_us: columns.max_future_skew_ms as i64 * 1000,
            ahead: format!(
                "event time is more than {} ms ahead of its arrival (max_future_skew)",
                columns.max_future_skew_ms
            ),
            watermark,
            view: view.into(),
            source: source.into(),
        }
    }

    /// The watermark reached (µs), once an event has been seen.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
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
        // A NULL time is never set aside.
        let reasons: Vec<Option<&str>> = times
            .iter()
            .zip(received.iter())
            .map(|(time, arrived)| match time {
                Some(t) if arrived.is_some_and(|a| t > a.saturating_add(self.max_future_us)) => {
                    Some(self.ahead.as_str())
                }
                Some(t) if watermark.is_some_and(|w| t < w) => Some(BEHIND_WATERMARK),
                _ => None,
            })
            .collect();
        let newest = times
            .iter()
            .zip(&reasons)
            .filter(|(_, reason)| reason.is_none_or(|r| r == BEHIND_WATERMARK))
            .filter_map(|(time, _)| time)
            .max();
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
