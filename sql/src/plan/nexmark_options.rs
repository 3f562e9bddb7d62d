//! The `nexmark.*` options of a `connector = 'nexmark'` source, typed (RisingWave's names).

use std::time::{SystemTime, UNIX_EPOCH};

use weir_catalog::{NEXMARK_EVENT_SPACING_US, NexmarkOptions, NexmarkTable};

use crate::SqlError;

/// The option keys this module reads.
pub(super) const KEYS: &[&str] = &[
    "nexmark.table.type",
    "nexmark.event.num",
    "nexmark.min.event.gap.in.ns",
    "nexmark.base.time",
    "nexmark.max.chunk.size",
];

/// Events generated into one log entry unless `nexmark.max.chunk.size` says otherwise.
const DEFAULT_CHUNK_SIZE: u64 = 8192;

/// Types the `nexmark.*` options given (key, value text).
pub(super) fn parse(options: &[(String, String)]) -> Result<NexmarkOptions, SqlError> {
    let get = |key: &str| {
        options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let number = |key: &str| -> Result<Option<u64>, SqlError> {
        get(key)
            .map(|text| {
                text.trim().parse::<u64>().map_err(|_| {
                    SqlError::InvalidOption(format!("{key} must be a whole number, not '{text}'"))
                })
            })
            .transpose()
    };
    let table = match get("nexmark.table.type") {
        Some(text) => NexmarkTable::parse(text).ok_or_else(|| {
            SqlError::InvalidOption(format!(
                "nexmark.table.type must be 'person', 'auction' or 'bid', not '{text}'"
            ))
        })?,
        None => {
            return Err(SqlError::InvalidOption(
                "a Nexmark source needs nexmark.table.type = 'person' | 'auction' | 'bid'".into(),
            ));
        }
    };
    let event_num = number("nexmark.event.num")?;
    let max_chunk_size = number("nexmark.max.chunk.size")?.unwrap_or(DEFAULT_CHUNK_SIZE);
    if max_chunk_size == 0 {
        return Err(SqlError::InvalidOption(
            "nexmark.max.chunk.size must be at least 1".into(),
        ));
    }
    let base_time_ms = match number("nexmark.base.time")? {
        Some(ms) => i64::try_from(ms)
            .map_err(|_| SqlError::InvalidOption("nexmark.base.time is out of range".into()))?,
        // A bounded stream ends at its creation, so none of it lies in the future (where a
        // view would set it aside as clock skew); an endless one starts then. Either way the
        // value is stored with the source, so the stream is the same after a restart.
        None => {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let span_ms = event_num.map_or(0, |n| {
                (n as i64).saturating_mul(NEXMARK_EVENT_SPACING_US) / 1000
            });
            now_ms.saturating_sub(span_ms)
        }
    };
    Ok(NexmarkOptions {
        table,
        event_num,
        // A bounded stream is generated as fast as the log takes it (a benchmark); an endless
        // one at the rate its event time advances, so it does not fill the disk.
        min_event_gap_ns: number("nexmark.min.event.gap.in.ns")?.unwrap_or(match event_num {
            Some(_) => 0,
            None => NEXMARK_EVENT_SPACING_US as u64 * 1000,
        }),
        base_time_ms,
        max_chunk_size,
    })
}
