//! Dates, times, timestamps and intervals as Postgres writes them in text under its default
//! styles (`DateStyle` ISO, `IntervalStyle` postgres): `2026-05-03 10:00:00+00`, fractional
//! seconds only as far as they are not zero (`10:00:00.5`), offsets as short as they can be
//! (`+00`, `+05:30`), years past 9999 in full and ` BC` before year 1,
//! `1 year 2 mons 3 days 04:05:06`. Timestamps with a time zone are shown in the session's
//! `TimeZone`, as Postgres shows them.
//!
//! pgwire writes six fraction digits always and its own zone and BC forms: psql users and
//! sqllogictest suites written against Postgres compare this text.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MINUTE;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// The zone timestamps with a time zone are shown in: an IANA zone (`UTC`, `Europe/Paris`),
/// with its daylight saving rules.
#[derive(Debug, Clone, Copy)]
pub struct Zone(chrono_tz::Tz);

impl Zone {
    /// The zone a `TimeZone` setting names, if Weir knows it (IANA names and their aliases,
    /// case-insensitively).
    pub fn from_setting(setting: &str) -> Option<Self> {
        let name = setting.trim().trim_matches('\'');
        crate::query::named_zone(name).map(Zone)
    }

    /// The offset from UTC, in seconds, at the instant `utc`.
    fn offset_seconds(self, utc: &NaiveDateTime) -> i32 {
        self.0.offset_from_utc_datetime(utc).fix().local_minus_utc()
    }
}

/// Rounds nanoseconds to the microseconds Postgres keeps.
pub fn nanos_to_micros(nanos: i64) -> i64 {
    let micros = nanos.div_euclid(1_000);
    if nanos.rem_euclid(1_000) >= 500 {
        micros.saturating_add(1)
    } else {
        micros
    }
}

/// A `timestamp` (microseconds since 1970-01-01 00:00:00).
pub fn timestamp_text(micros: i64) -> String {
    match naive(micros) {
        Some(at) => {
            let mut out = String::with_capacity(26);
            let bc = push_date(&mut out, at.date());
            out.push(' ');
            push_time(
                &mut out,
                at.time().num_seconds_from_midnight(),
                subsec(micros),
            );
            push_era(&mut out, bc);
            out
        }
        None => micros.to_string(),
    }
}

/// A `timestamptz` (microseconds since the epoch, UTC), shown in `zone`.
pub fn timestamptz_text(micros: i64, zone: Zone) -> String {
    let Some(utc) = naive(micros) else {
        return micros.to_string();
    };
    let offset = zone.offset_seconds(&utc);
    let local = utc + chrono::Duration::seconds(i64::from(offset));
    let mut out = String::with_capacity(32);
    let bc = push_date(&mut out, local.date());
    out.push(' ');
    push_time(
        &mut out,
        local.time().num_seconds_from_midnight(),
        subsec(micros),
    );
    push_offset(&mut out, offset);
    push_era(&mut out, bc);
    out
}

/// A `date` (days since 1970-01-01).
pub fn date_text(days: i32) -> String {
    match NaiveDate::from_num_days_from_ce_opt(days.saturating_add(719_163)) {
        Some(date) => {
            let mut out = String::with_capacity(13);
            let bc = push_date(&mut out, date);
            push_era(&mut out, bc);
            out
        }
        None => days.to_string(),
    }
}

/// A `time` (microseconds since midnight).
pub fn time_text(micros: i64) -> String {
    let mut out = String::with_capacity(15);
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    push_time(
        &mut out,
        seconds as u32,
        micros.rem_euclid(MICROS_PER_SECOND),
    );
    out
}

/// An `interval` of `months`, `days` and `micros`, in `IntervalStyle` postgres: each non-zero
/// part with its unit, the time part as `[-]HH:MM:SS[.frac]`, and a `+` on a positive part
/// that follows a negative one (`-1 days +02:00:00`), as Postgres' `EncodeInterval`.
pub fn interval_text(months: i32, days: i32, micros: i64) -> String {
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    for (value, unit) in [
        (i64::from(months / 12), "year"),
        (i64::from(months % 12), "mon"),
        (i64::from(days), "day"),
    ] {
        if value == 0 {
            continue;
        }
        if !is_zero {
            out.push(' ');
        }
        if is_before && value > 0 {
            out.push('+');
        }
        out.push_str(&format!(
            "{value} {unit}{}",
            if value == 1 { "" } else { "s" }
        ));
        is_before = value < 0;
        is_zero = false;
    }
    if is_zero || micros != 0 {
        if !is_zero {
            out.push(' ');
        }
        if micros < 0 {
            out.push('-');
        } else if is_before {
            out.push('+');
        }
        let time = micros.unsigned_abs();
        let hours = time / MICROS_PER_HOUR as u64;
        let minutes = time % MICROS_PER_HOUR as u64 / MICROS_PER_MINUTE as u64;
        let seconds = time % MICROS_PER_MINUTE as u64 / MICROS_PER_SECOND as u64;
        out.push_str(&format!("{hours:02}:{minutes:02}:{seconds:02}"));
        push_fraction(&mut out, (time % MICROS_PER_SECOND as u64) as i64);
    }
    out
}

/// An exact duration as Postgres' `timestamp - timestamp` gives it: whole days, then the time.
pub fn duration_text(micros: i64) -> String {
    let days = micros / MICROS_PER_DAY;
    interval_text(0, days as i32, micros - days * MICROS_PER_DAY)
}

fn naive(micros: i64) -> Option<NaiveDateTime> {
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    DateTime::<Utc>::from_timestamp(seconds, 0).map(|at| at.naive_utc())
}

fn subsec(micros: i64) -> i64 {
    micros.rem_euclid(MICROS_PER_SECOND)
}

/// Writes `YYYY-MM-DD` (the year in full past 9999, counted from 1 BC backwards before year
/// 1); returns whether the date is BC.
fn push_date(out: &mut String, date: NaiveDate) -> bool {
    let year = date.year();
    let (year, bc) = if year <= 0 {
        (1 - year, true)
    } else {
        (year, false)
    };
    out.push_str(&format!("{year:04}-{:02}-{:02}", date.month(), date.day()));
    bc
}

fn push_time(out: &mut String, seconds_of_day: u32, micros: i64) {
    out.push_str(&format!(
        "{:02}:{:02}:{:02}",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60
    ));
    push_fraction(out, micros);
}

/// `.` and the microseconds without their trailing zeros; nothing for none.
fn push_fraction(out: &mut String, micros: i64) {
    if micros != 0 {
        let digits = format!("{micros:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// `+HH`, then `:MM` and `:SS` only when not zero.
fn push_offset(out: &mut String, offset_seconds: i32) {
    out.push(if offset_seconds < 0 { '-' } else { '+' });
    let offset = offset_seconds.unsigned_abs();
    out.push_str(&format!("{:02}", offset / 3600));
    if !offset.is_multiple_of(3600) {
        out.push_str(&format!(":{:02}", offset / 60 % 60));
        if !offset.is_multiple_of(60) {
            out.push_str(&format!(":{:02}", offset % 60));
        }
    }
}

fn push_era(out: &mut String, bc: bool) {
    if bc {
        out.push_str(" BC");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(text: &str) -> i64 {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
            .unwrap()
            .and_utc()
            .timestamp_micros()
    }

    /// Each expected text is what Postgres 15 prints for the same value.
    #[test]
    fn timestamps_as_postgres_writes_them() {
        for (value, text) in [
            ("2026-05-03 10:00:00", "2026-05-03 10:00:00"),
            ("2026-05-03 10:00:00.5", "2026-05-03 10:00:00.5"),
            ("2026-05-03 10:00:00.123456", "2026-05-03 10:00:00.123456"),
            ("2026-05-03 10:00:00.000010", "2026-05-03 10:00:00.00001"),
            ("1969-12-31 23:59:59.999999", "1969-12-31 23:59:59.999999"),
            ("0099-01-01 00:00:00", "0099-01-01 00:00:00"),
            ("0000-12-31 00:00:00", "0001-12-31 00:00:00 BC"),
        ] {
            assert_eq!(timestamp_text(micros(value)), text, "{value}");
        }
        let far = NaiveDate::from_ymd_opt(12345, 6, 7)
            .unwrap()
            .and_hms_opt(8, 9, 10)
            .unwrap()
            .and_utc()
            .timestamp_micros();
        assert_eq!(timestamp_text(far), "12345-06-07 08:09:10");
        let utc = Zone::from_setting("UTC").unwrap();
        assert_eq!(
            timestamptz_text(micros("2026-05-03 10:00:00"), utc),
            "2026-05-03 10:00:00+00"
        );
        let kolkata = Zone::from_setting("asia/kolkata").unwrap();
        assert_eq!(
            timestamptz_text(micros("2026-05-03 10:00:00.25"), kolkata),
            "2026-05-03 15:30:00.25+05:30"
        );
        let new_york = Zone::from_setting("America/New_York").unwrap();
        assert_eq!(
            timestamptz_text(micros("2026-01-15 12:00:00"), new_york),
            "2026-01-15 07:00:00-05"
        );
        assert_eq!(
            timestamptz_text(micros("2026-07-15 12:00:00"), new_york),
            "2026-07-15 08:00:00-04"
        );
        // Offsets with seconds (local mean time before standard zones).
        let mut offset = String::new();
        push_offset(&mut offset, 1172);
        assert_eq!(offset, "+00:19:32");
        assert!(Zone::from_setting("Nowhere/Special").is_none());
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(date_text(-719_163), "0001-12-31 BC");
        assert_eq!(time_text(0), "00:00:00");
        assert_eq!(time_text(45_296_500_000), "12:34:56.5");
        assert_eq!(nanos_to_micros(1_499), 1);
        assert_eq!(nanos_to_micros(1_500), 2);
        assert_eq!(nanos_to_micros(-1_500), -1);
    }

    /// Each expected text is what Postgres 15 prints for `SELECT '<input>'::interval`.
    #[test]
    fn intervals_as_postgres_writes_them() {
        let hour = MICROS_PER_HOUR;
        for ((months, days, micros), text) in [
            ((0, 0, 0), "00:00:00"),
            ((0, 1, 0), "1 day"),
            ((0, 2, 0), "2 days"),
            (
                (14, 3, 4 * hour + 5 * MICROS_PER_MINUTE + 6_789_000),
                "1 year 2 mons 3 days 04:05:06.789",
            ),
            ((1, 0, 0), "1 mon"),
            ((24, 0, 0), "2 years"),
            ((0, -1, 2 * hour), "-1 days +02:00:00"),
            ((0, 0, -MICROS_PER_SECOND), "-00:00:01"),
            ((0, 0, 30 * hour), "30:00:00"),
            ((-13, 0, 0), "-1 years -1 mons"),
            ((0, 0, 1_500_000), "00:00:01.5"),
        ] {
            assert_eq!(interval_text(months, days, micros), text);
        }
        assert_eq!(duration_text(26 * hour), "1 day 02:00:00");
        assert_eq!(duration_text(-26 * hour), "-1 days -02:00:00");
    }
}
