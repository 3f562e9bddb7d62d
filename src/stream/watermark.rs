//! Event time as a view sees it: the source's watermark (the largest event time seen so far,
//! less the source's `WATERMARK` delay) and the events that arrive behind it.
//!
//! The watermark advances per log entry, in log order, so which events are late is a function
//! of the log alone: the same after a crash and restart as without one, whatever the epochs'
//! boundaries. An event is late when its time is behind the watermark reached before its entry.
//! Late events are not counted by the view; they are kept in `weir.late_events`.

use std::sync::Arc;

use datafusion::arrow::array::{
    AsArray, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::{filter_record_batch, max, not};
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
    delay_us: i64,
    watermark: Option<i64>,
    view: String,
    source: String,
}

impl EventClock {
    /// A clock over `column`, resuming at `watermark` (µs).
    pub fn new(
        column: usize,
        delay_ms: u64,
        watermark: Option<i64>,
        view: &str,
        source: &str,
    ) -> Self {
        Self {
            column,
            delay_us: delay_ms as i64 * 1000,
            watermark,
            view: view.into(),
            source: source.into(),
        }
    }

    /// The watermark reached (µs), once an event has been seen.
    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// Splits one log entry into the rows on time and the late rows (as `weir.late_events`
    /// rows), then advances the watermark past the entry.
    pub fn split(&mut self, entry: RecordBatch) -> Result<(RecordBatch, Option<RecordBatch>)> {
        let times = entry
            .column(self.column)
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or_else(|| {
                DataFusionError::Internal("event-time column is not a timestamp".into())
            })?
            .clone();
        let late_rows = match self.watermark {
            Some(watermark) => {
                // A NULL time is never late.
                let behind: BooleanArray = times
                    .iter()
                    .map(|t| Some(t.is_some_and(|t| t < watermark)))
                    .collect();
                if behind.true_count() > 0 {
                    let late = filter_record_batch(&entry, &behind)?;
                    let on_time = filter_record_batch(&entry, &not(&behind)?)?;
                    self.advance(&times);
                    return Ok((on_time, Some(self.records(&late, watermark)?)));
                }
                None
            }
            None => None,
        };
        self.advance(&times);
        Ok((entry, late_rows))
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

    fn advance(&mut self, times: &TimestampMicrosecondArray) {
        if let Some(newest) = max(times) {
            let candidate = newest.saturating_sub(self.delay_us);
            self.watermark = Some(self.watermark.map_or(candidate, |w| w.max(candidate)));
        }
    }

    /// `late` as `weir.late_events` rows: the event itself as JSON, and why.
    fn records(&self, late: &RecordBatch, watermark: i64) -> Result<RecordBatch> {
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
                Arc::new(StringArray::from(vec![BEHIND_WATERMARK; n])),
                Arc::new(payloads),
            ],
        )?)
    }
}
