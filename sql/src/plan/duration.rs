//! Durations written in SQL: `INTERVAL '5 seconds'`, `INTERVAL '5' SECOND`, and option values
//! such as `'1 hour'` or `'500 ms'`.

use datafusion::sql::sqlparser::ast::{DateTimeField, Expr, Interval, Value};

use crate::SqlError;

/// Milliseconds in `text`: one or more `<number> <unit>` pairs (`1 hour 30 minutes`).
pub fn parse_duration_ms(text: &str) -> Result<u64, SqlError> {
    let invalid = || {
        SqlError::InvalidOption(format!(
            "invalid duration \"{text}\" (write e.g. '5 seconds', '1 hour', '500 ms')"
        ))
    };
    let mut total = 0u64;
    let mut words = text.split_whitespace().peekable();
    if words.peek().is_none() {
        return Err(invalid());
    }
    while let Some(word) = words.next() {
        // Allow "5s" as well as "5 s".
        let split = word
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(word.len());
        let (number, unit) = word.split_at(split);
        let unit = if unit.is_empty() {
            words.next().ok_or_else(invalid)?
        } else {
            unit
        };
        let number: f64 = number.parse().map_err(|_| invalid())?;
        let unit_ms = unit_ms(unit).ok_or_else(invalid)?;
        let ms = number * unit_ms as f64;
        if !ms.is_finite() || ms < 0.0 {
            return Err(invalid());
        }
        total = total.checked_add(ms.round() as u64).ok_or_else(invalid)?;
    }
    Ok(total)
}

fn unit_ms(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return None,
    })
}

/// Milliseconds of an `INTERVAL` expression.
pub fn interval_ms(interval: &Interval) -> Result<u64, SqlError> {
    let Expr::Value(value) = interval.value.as_ref() else {
        return Err(SqlError::Unsupported(format!("interval {interval}")));
    };
    let text = match &value.value {
        Value::SingleQuotedString(s) => s.clone(),
        Value::Number(n, _) => n.to_string(),
        _ => return Err(SqlError::Unsupported(format!("interval {interval}"))),
    };
    match &interval.leading_field {
        None => parse_duration_ms(&text),
        Some(field) => {
            let unit = match field {
                DateTimeField::Millisecond | DateTimeField::Milliseconds => "ms",
                DateTimeField::Second | DateTimeField::Seconds => "s",
                DateTimeField::Minute | DateTimeField::Minutes => "min",
                DateTimeField::Hour | DateTimeField::Hours => "h",
                DateTimeField::Day | DateTimeField::Days => "d",
                other => return Err(SqlError::Unsupported(format!("interval unit {other}"))),
            };
            parse_duration_ms(&format!("{text} {unit}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("5 seconds").unwrap(), 5_000);
        assert_eq!(parse_duration_ms("1 hour 30 minutes").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("500ms").unwrap(), 500);
        assert_eq!(parse_duration_ms("1.5 s").unwrap(), 1_500);
        assert!(parse_duration_ms("").is_err());
        assert!(parse_duration_ms("5 fortnights").is_err());
        assert!(parse_duration_ms("five seconds").is_err());
    }
}
