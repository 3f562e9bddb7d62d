//! Date and time input as Postgres reads it (`DateStyle` ISO, MDY): the forms its
//! documentation lists for `date`, `time`, `timestamp` and `timestamptz` literals, which
//! Arrow's parser, DataFusion's, refuses in part (`timestamp '2020-04-15 12:02'` has no
//! seconds; `January 8, 1999`, `1/8/1999`, `19990108`, `J2451187`, `04:05 PM`,
//! `04:05:06 PST`, `2003-04-12 04:05:06 America/New_York`, `epoch`, `today`).
//!
//! Like Postgres' `ParseDateTime`/`DecodeDateTime`, the text is split into fields (a date with
//! separators, a time with colons, a run of digits, a word, a signed offset), then each field
//! is read by its shape and what came before it. Dates are month-day-year when ambiguous;
//! two-digit years are taken nearest to 2020. A zone given to a `timestamp` or `time` is
//! ignored, as Postgres ignores it; a `timestamptz` without one is in UTC (Weir's default
//! `TimeZone`). Infinite timestamps are refused: Arrow's timestamps have no infinity.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// The type a literal is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `date`.
    Date,
    /// `time` (without time zone).
    Time,
    /// `timestamp` (without time zone).
    Timestamp,
    /// `timestamptz`: an instant.
    TimestampTz,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Date => "date",
            Target::Time => "time",
            Target::Timestamp => "timestamp",
            Target::TimestampTz => "timestamp with time zone",
        }
    }
}

/// A value read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since 1970-01-01 00:00:00 (UTC for `timestamptz`).
    Timestamp(i64),
}

/// Reads `text` as a `target` literal; the error is Postgres' message.
pub fn parse(text: &str, target: Target) -> Result<Value, String> {
    let syntax = || {
        format!(
            "invalid input syntax for type {}: \"{text}\"",
            target.name()
        )
    };
    let range = || format!("date/time field value out of range: \"{text}\"");
    let fields = split(&text.trim().to_ascii_lowercase()).ok_or_else(syntax)?;
    let mut parts = Parts::default();
    for field in &fields {
        parts.take(field, target).map_err(|e| match e {
            Failure::Syntax => syntax(),
            Failure::Range => range(),
            Failure::Infinite => format!("{} (Weir's dates and times have no infinity)", syntax()),
        })?;
    }
    parts.finish(target).map_err(|e| match e {
        Failure::Syntax => syntax(),
        Failure::Range | Failure::Infinite => range(),
    })
}

enum Failure {
    Syntax,
    Range,
    Infinite,
}

/// One field of the input, by its shape.
#[derive(Debug, PartialEq)]
enum Field {
    /// Parts joined by `-`, `/` or `.`: `1999-01-08`, `1/8/1999`, `jan-08-1999`, `1999.008`.
    Date(Vec<String>),
    /// Parts joined by `:`: `04:05:06.789`.
    Time(String),
    /// Digits, maybe with a fraction: `8`, `1999`, `19990108`, `040506.5`.
    Number(String),
    /// Letters (a month, a zone, `pm`, `bc`, `epoch`), or a zone name with `/`.
    Word(String),
    /// A signed offset from UTC: `-8`, `+05:30`, `-0800`.
    Offset(String),
}

/// Splits `text` (lower case) into fields; `None` for a character no field can hold.
fn split(text: &str) -> Option<Vec<Field>> {
    let chars: Vec<char> = text.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    let take = |i: &mut usize, keep: &dyn Fn(char) -> bool| {
        let start = *i;
        while *i < chars.len() && keep(chars[*i]) {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || c == ',' {
            i += 1;
        } else if c.is_ascii_digit() {
            let digits = take(&mut i, &|c| c.is_ascii_digit());
            match chars.get(i) {
                Some(':') => {
                    let rest = take(&mut i, &|c| c.is_ascii_digit() || c == ':' || c == '.');
                    fields.push(Field::Time(digits + &rest));
                }
                // `040506-08`: a time's offset, not a date (a date has three parts).
                Some('-') if is_offset(&chars[i + 1..]) => fields.push(Field::Number(digits)),
                Some('-' | '/') => {
                    let rest = take(&mut i, &|c| c.is_ascii_alphanumeric() || "-/.".contains(c));
                    // `2020-04-15t12:02`: ISO 8601's `T` ends the date.
                    let mut date = digits + &rest;
                    if let Some(t) = date.find('t')
                        && date[t + 1..].starts_with(|c: char| c.is_ascii_digit())
                    {
                        i -= date.len() - t - 1;
                        date.truncate(t);
                    }
                    fields.push(Field::Date(parts_of(&date)));
                }
                Some('.') if chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                    let rest = take(&mut i, &|c| c.is_ascii_digit() || c == '.');
                    let dots = rest.matches('.').count();
                    if dots == 1 && digits.len() == 4 && rest.len() == 4 {
                        // `1999.008`: a year and a day of the year.
                        fields.push(Field::Date(parts_of(&(digits + &rest))));
                    } else if dots == 1 {
                        fields.push(Field::Number(digits + &rest));
                    } else {
                        fields.push(Field::Date(parts_of(&(digits + &rest))));
                    }
                }
                Some('t') if chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                    fields.push(Field::Number(digits));
                    i += 1;
                }
                _ => fields.push(Field::Number(digits)),
            }
        } else if c.is_ascii_alphabetic() {
            let word = take(&mut i, &|c| {
                c.is_ascii_alphanumeric() || c == '_' || c == '/'
            });
            if month(&word).is_some() && matches!(chars.get(i), Some('-' | '/' | '.')) {
                let rest = take(&mut i, &|c| c.is_ascii_alphanumeric() || "-/.".contains(c));
                fields.push(Field::Date(parts_of(&(word + &rest))));
            } else if word.contains('/') && matches!(chars.get(i), Some('+' | '-')) {
                // `etc/gmt+5`
                let rest = take(&mut i, &|c| c.is_ascii_alphanumeric() || "+-".contains(c));
                fields.push(Field::Word(word + &rest));
            } else {
                fields.push(Field::Word(word));
            }
        } else if c == '+' || c == '-' {
            i += 1;
            match chars.get(i) {
                Some(d) if d.is_ascii_digit() => {
                    let rest = take(&mut i, &|c| c.is_ascii_digit() || c == ':');
                    fields.push(Field::Offset(format!("{c}{rest}")));
                }
                Some(a) if a.is_ascii_alphabetic() => {
                    let word = take(&mut i, &|c| c.is_ascii_alphabetic());
                    fields.push(Field::Word(format!("{c}{word}")));
                }
                _ => return None,
            }
        } else {
            return None;
        }
    }
    Some(fields)
}

/// Whether `rest`, after a `-`, is an offset: digits and colons up to a space or the end.
fn is_offset(rest: &[char]) -> bool {
    let end = rest
        .iter()
        .position(|c| !(c.is_ascii_digit() || *c == ':'))
        .unwrap_or(rest.len());
    end > 0 && rest.get(end).is_none_or(|c| c.is_whitespace())
}

fn parts_of(date: &str) -> Vec<String> {
    date.split(['-', '/', '.'])
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn month(word: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if word == "sept" {
        return Some(9);
    }
    let n = MONTHS
        .iter()
        .position(|m| word == *m || (word.len() == 3 && m.starts_with(word)))?;
    Some(n as u32 + 1)
}

fn is_weekday(word: &str) -> bool {
    const DAYS: [&str; 7] = [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    DAYS.iter().any(|d| word.len() >= 3 && d.starts_with(word))
}

/// Zone abbreviations Postgres' default `timezone_abbreviations` set holds, the common ones:
/// offsets in seconds east of UTC.
fn abbreviation(word: &str) -> Option<i32> {
    let hours = match word {
        "utc" | "gmt" | "ut" | "z" | "zulu" | "wet" => 0.0,
        "bst" | "cet" | "met" | "west" => 1.0,
        "cest" | "eet" | "mest" | "ist" | "sast" => 2.0,
        "eest" | "msk" | "idt" => 3.0,
        "pkt" => 5.0,
        "wib" => 7.0,
        "awst" | "hkt" | "sgt" | "cst8" => 8.0,
        "jst" | "kst" => 9.0,
        "acst" => 9.5,
        "aest" => 10.0,
        "aedt" => 11.0,
        "nzst" => 12.0,
        "nzdt" => 13.0,
        "ast" | "edt" => -4.0,
        "est" | "cdt" => -5.0,
        "cst" | "mdt" => -6.0,
        "mst" | "pdt" => -7.0,
        "pst" | "akdt" => -8.0,
        "akst" => -9.0,
        "hst" => -10.0,
        "nst" => -3.5,
        "ndt" => -2.5,
        "adt" => -3.0,
        _ => return None,
    };
    Some((hours * 3600.0) as i32)
}

#[derive(Debug, Clone, Copy)]
enum Zone {
    /// Seconds east of UTC.
    Offset(i32),
    Named(chrono_tz::Tz),
}

#[derive(Debug, Clone, Copy)]
enum Special {
    Epoch,
    Now,
    Today(i64),
    Allballs,
}

#[derive(Default)]
struct Parts {
    date: Option<NaiveDate>,
    /// A month named in a word (`January 8, 1999`), waiting for its day and year.
    named_month: Option<u32>,
    /// Numbers beside a named month.
    loose: Vec<String>,
    time: Option<i64>,
    pm: Option<bool>,
    bc: bool,
    zone: Option<Zone>,
    special: Option<Special>,
}

impl Parts {
    fn take(&mut self, field: &Field, target: Target) -> Result<(), Failure> {
        match field {
            Field::Date(parts) => self.set_date(date_of(parts)?),
            Field::Time(text) => self.set_time(time_of(text)?),
            Field::Number(digits) => self.number(digits, target),
            Field::Offset(text) => {
                if self.zone.is_some() {
                    return Err(Failure::Syntax);
                }
                self.zone = Some(Zone::Offset(offset_of(text)?));
                Ok(())
            }
            Field::Word(word) => self.word(word),
        }
    }

    fn set_date(&mut self, date: NaiveDate) -> Result<(), Failure> {
        if self.date.replace(date).is_some() || self.named_month.is_some() {
            return Err(Failure::Syntax);
        }
        Ok(())
    }

    fn set_time(&mut self, micros: i64) -> Result<(), Failure> {
        if self.time.replace(micros).is_some() {
            return Err(Failure::Syntax);
        }
        Ok(())
    }

    fn number(&mut self, digits: &str, target: Target) -> Result<(), Failure> {
        let (whole, fraction) = match digits.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (digits, None),
        };
        let date_known = self.date.is_some() || target == Target::Time;
        if self.named_month.is_some() && fraction.is_none() && whole.len() <= 4 {
            self.loose.push(whole.to_string());
            return Ok(());
        }
        match whole.len() {
            // `19990108`, `990108`: a date when none was read yet.
            8 if !date_known && fraction.is_none() => {
                self.set_date(ymd(&whole[..4], &whole[4..6], &whole[6..])?)
            }
            6 if !date_known && fraction.is_none() => {
                self.set_date(ymd(&whole[..2], &whole[2..4], &whole[4..])?)
            }
            // `040506`, `0405`, `040506.789`: a time, once the date is known.
            6 | 4 if date_known || fraction.is_some() => {
                let mut text = format!("{}:{}", &whole[..2], &whole[2..4]);
                if whole.len() == 6 {
                    text.push_str(&format!(":{}", &whole[4..]));
                }
                if let Some(fraction) = fraction {
                    text.push_str(&format!(".{fraction}"));
                }
                self.set_time(time_of(&text)?)
            }
            // A year after `BC`-less `January 8,`: handled above; anything else is loose.
            _ if self.date.is_none() => {
                self.loose.push(whole.to_string());
                Ok(())
            }
            _ => Err(Failure::Syntax),
        }
    }

    fn word(&mut self, word: &str) -> Result<(), Failure> {
        if let Some(m) = month(word) {
            if self.named_month.replace(m).is_some() || self.date.is_some() {
                return Err(Failure::Syntax);
            }
            return Ok(());
        }
        match word {
            "am" => self.pm = Some(false),
            "pm" => self.pm = Some(true),
            "bc" => self.bc = true,
            "ad" | "t" | "at" | "on" => {}
            "epoch" => self.special = Some(Special::Epoch),
            "now" => self.special = Some(Special::Now),
            "today" => self.special = Some(Special::Today(0)),
            "tomorrow" => self.special = Some(Special::Today(1)),
            "yesterday" => self.special = Some(Special::Today(-1)),
            "allballs" => self.special = Some(Special::Allballs),
            "infinity" | "+infinity" | "-infinity" => return Err(Failure::Infinite),
            w if is_weekday(w) => {}
            w if w.starts_with('j')
                && w.len() > 1
                && w[1..].chars().all(|c| c.is_ascii_digit()) =>
            {
                let julian: i64 = w[1..].parse().map_err(|_| Failure::Range)?;
                // Julian day 2440588 is 1970-01-01.
                let date = NaiveDate::from_ymd_opt(1970, 1, 1)
                    .and_then(|d| d.checked_add_signed(chrono::Duration::days(julian - 2_440_588)))
                    .ok_or(Failure::Range)?;
                self.set_date(date)?;
            }
            w => {
                let zone = match abbreviation(w) {
                    Some(offset) => Zone::Offset(offset),
                    None => Zone::Named(named_zone(w).ok_or(Failure::Syntax)?),
                };
                if self.zone.replace(zone).is_some() {
                    return Err(Failure::Syntax);
                }
            }
        }
        Ok(())
    }

    fn finish(mut self, target: Target) -> Result<Value, Failure> {
        if let Some(special) = self.special {
            return special_value(special, target, &self);
        }
        if let Some(m) = self.named_month.take() {
            let (day, year) = match self.loose.as_slice() {
                [a, b] if is_year(a) => (b, a),
                [a, b] => (a, b),
                _ => return Err(Failure::Syntax),
            };
            let year = year_of(year, self.bc)?;
            self.bc = false;
            let day: u32 = day.parse().map_err(|_| Failure::Syntax)?;
            self.date = Some(NaiveDate::from_ymd_opt(year, m, day).ok_or(Failure::Range)?);
        } else if !self.loose.is_empty() {
            return Err(Failure::Syntax);
        }
        if self.bc {
            // The date was read with year n AD: n BC is year 1 - n.
            let date = self.date.ok_or(Failure::Syntax)?;
            self.date = Some(
                NaiveDate::from_ymd_opt(1 - date.year(), date.month(), date.day())
                    .ok_or(Failure::Range)?,
            );
        }
        if let Some(pm) = self.pm {
            let time = self.time.ok_or(Failure::Syntax)?;
            let hour = time / 3_600_000_000;
            if hour > 12 {
                return Err(Failure::Range);
            }
            let shift = match (pm, hour) {
                (false, 12) => -12,
                (true, h) if h < 12 => 12,
                _ => 0,
            };
            self.time = Some(time + shift * 3_600_000_000);
        }
        match target {
            Target::Date => Ok(Value::Date(days(self.date.ok_or(Failure::Syntax)?))),
            Target::Time => Ok(Value::Time(self.time.ok_or(Failure::Syntax)?)),
            Target::Timestamp | Target::TimestampTz => {
                let date = self.date.ok_or(Failure::Syntax)?;
                let local = micros_of(date, self.time.unwrap_or(0))?;
                if target == Target::Timestamp {
                    return Ok(Value::Timestamp(local));
                }
                Ok(Value::Timestamp(to_utc(local, self.zone)?))
            }
        }
    }
}

fn special_value(special: Special, target: Target, parts: &Parts) -> Result<Value, Failure> {
    let now = Utc::now();
    let midnight = |shift: i64| -> Result<i64, Failure> {
        let date = now.date_naive() + chrono::Duration::days(shift);
        micros_of(date, parts.time.unwrap_or(0))
    };
    let micros = match special {
        Special::Epoch => 0,
        Special::Now => now.timestamp_micros(),
        Special::Today(shift) => midnight(shift)?,
        Special::Allballs => {
            return match target {
                Target::Time => Ok(Value::Time(0)),
                _ => Err(Failure::Syntax),
            };
        }
    };
    Ok(match target {
        Target::Date => Value::Date(micros.div_euclid(86_400_000_000) as i32),
        Target::Time => Value::Time(micros.rem_euclid(86_400_000_000)),
        Target::Timestamp | Target::TimestampTz => Value::Timestamp(micros),
    })
}

/// A date from the parts of a date field.
fn date_of(parts: &[String]) -> Result<NaiveDate, Failure> {
    let named: Vec<Option<u32>> = parts.iter().map(|p| month(p)).collect();
    match (parts, named.as_slice()) {
        // `1999.008`
        ([year, doy], [None, None]) if doy.len() == 3 => {
            let doy: u32 = doy.parse().map_err(|_| Failure::Syntax)?;
            NaiveDate::from_yo_opt(year_of(year, false)?, doy).ok_or(Failure::Range)
        }
        ([a, b, c], [None, None, None]) => {
            if is_year(a) {
                ymd(a, b, c)
            } else {
                // Month-day-year, `DateStyle` MDY.
                ymd(c, a, b)
            }
        }
        ([_, _, _], _) => {
            let m = named
                .iter()
                .flatten()
                .next()
                .copied()
                .ok_or(Failure::Syntax)?;
            let numbers: Vec<&String> = parts
                .iter()
                .zip(&named)
                .filter(|(_, n)| n.is_none())
                .map(|(p, _)| p)
                .collect();
            let [a, b] = numbers.as_slice() else {
                return Err(Failure::Syntax);
            };
            let (year, day) = if is_year(a) { (a, b) } else { (b, a) };
            let day: u32 = day.parse().map_err(|_| Failure::Syntax)?;
            NaiveDate::from_ymd_opt(year_of(year, false)?, m, day).ok_or(Failure::Range)
        }
        _ => Err(Failure::Syntax),
    }
}

fn ymd(year: &str, month: &str, day: &str) -> Result<NaiveDate, Failure> {
    let (m, d): (u32, u32) = (
        month.parse().map_err(|_| Failure::Syntax)?,
        day.parse().map_err(|_| Failure::Syntax)?,
    );
    NaiveDate::from_ymd_opt(year_of(year, false)?, m, d).ok_or(Failure::Range)
}

/// Whether a number field can only be a year: three digits or more, or above 31.
fn is_year(text: &str) -> bool {
    text.len() >= 3 || text.parse::<u32>().is_ok_and(|n| n > 31)
}

/// A year as written: two digits are the year nearest 2020 (`99` is 1999, `03` is 2003),
/// except before `BC`.
fn year_of(text: &str, bc: bool) -> Result<i32, Failure> {
    if !text.chars().all(|c| c.is_ascii_digit()) {
        return Err(Failure::Syntax);
    }
    let year: i32 = text.parse().map_err(|_| Failure::Range)?;
    Ok(match (text.len(), bc) {
        (1 | 2, false) if year < 70 => 2000 + year,
        (1 | 2, false) => 1900 + year,
        (_, true) => 1 - year,
        _ => year,
    })
}

/// Microseconds since midnight from `h:m[:s[.frac]]`.
fn time_of(text: &str) -> Result<i64, Failure> {
    let mut parts = text.split(':');
    let hour: i64 = number(parts.next())?;
    let minute: i64 = number(parts.next())?;
    let (second, micros) = match parts.next() {
        Some(s) => {
            let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
            (number(Some(whole))?, fraction_micros(fraction)?)
        }
        None => (0, 0),
    };
    if parts.next().is_some() {
        return Err(Failure::Syntax);
    }
    let total = ((hour * 60 + minute) * 60 + second) * 1_000_000 + micros;
    // 24:00:00 is allowed; a leap second rolls over.
    if minute > 59 || second > 60 || total > 86_400_000_000 {
        return Err(Failure::Range);
    }
    Ok(total)
}

fn number(text: Option<&str>) -> Result<i64, Failure> {
    match text {
        Some(t) if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) => {
            t.parse().map_err(|_| Failure::Range)
        }
        _ => Err(Failure::Syntax),
    }
}

/// A fraction of a second as microseconds, rounded.
fn fraction_micros(fraction: &str) -> Result<i64, Failure> {
    if fraction.is_empty() {
        return Ok(0);
    }
    if !fraction.chars().all(|c| c.is_ascii_digit()) {
        return Err(Failure::Syntax);
    }
    let digits: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(7)
        .collect();
    let tenths_of_micros: i64 = digits.parse().map_err(|_| Failure::Syntax)?;
    Ok((tenths_of_micros + 5) / 10)
}

/// Seconds east of UTC from `+h`, `+hh`, `+hhmm`, `+hh:mm`, `+hh:mm:ss`.
fn offset_of(text: &str) -> Result<i32, Failure> {
    let (sign, rest) = text.split_at(1);
    let sign = if sign == "-" { -1 } else { 1 };
    let parts: Vec<&str> = rest.split(':').collect();
    let (h, m, s) = match parts.as_slice() {
        [hhmm] if hhmm.len() > 2 => {
            let split = hhmm.len() - 2;
            (&hhmm[..split], &hhmm[split..], "0")
        }
        [h] => (*h, "0", "0"),
        [h, m] => (*h, *m, "0"),
        [h, m, s] => (*h, *m, *s),
        _ => return Err(Failure::Syntax),
    };
    let (h, m, s) = (number(Some(h))?, number(Some(m))?, number(Some(s))?);
    if h > 15 || m > 59 || s > 59 {
        return Err(Failure::Range);
    }
    Ok(sign * (h * 3600 + m * 60 + s) as i32)
}

/// The IANA zone `name` names, case-insensitively (`america/new_york`), as Postgres matches
/// zone names in input and in `TimeZone`.
pub(crate) fn named_zone(name: &str) -> Option<chrono_tz::Tz> {
    name.parse::<chrono_tz::Tz>().ok().or_else(|| {
        chrono_tz::TZ_VARIANTS
            .iter()
            .find(|tz| tz.name().eq_ignore_ascii_case(name))
            .copied()
    })
}

fn days(date: NaiveDate) -> i32 {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch")).num_days() as i32
}

fn micros_of(date: NaiveDate, time: i64) -> Result<i64, Failure> {
    let midnight = NaiveDateTime::new(date, NaiveTime::MIN)
        .and_utc()
        .timestamp_micros();
    midnight.checked_add(time).ok_or(Failure::Range)
}

/// The instant a local time in `zone` (UTC when none) names; in a daylight-saving gap, the
/// time an hour later, as Postgres reads it.
fn to_utc(local: i64, zone: Option<Zone>) -> Result<i64, Failure> {
    match zone {
        None => Ok(local),
        Some(Zone::Offset(offset)) => Ok(local - i64::from(offset) * 1_000_000),
        Some(Zone::Named(tz)) => {
            let naive = chrono::DateTime::<Utc>::from_timestamp_micros(local)
                .ok_or(Failure::Range)?
                .naive_utc();
            let resolved = tz
                .from_local_datetime(&naive)
                .earliest()
                .or_else(|| {
                    tz.from_local_datetime(&(naive + chrono::Duration::hours(1)))
                        .earliest()
                })
                .ok_or(Failure::Range)?;
            Ok(resolved.timestamp_micros())
        }
    }
}

#[cfg(test)]
mod tests;
