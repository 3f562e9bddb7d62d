//! The input forms of Postgres' documentation, and refusals.

use super::*;

fn ts(text: &str) -> String {
    match parse(text, Target::Timestamp).unwrap() {
        Value::Timestamp(micros) => chrono::DateTime::<Utc>::from_timestamp_micros(micros)
            .unwrap()
            .naive_utc()
            .to_string(),
        other => panic!("{other:?}"),
    }
}

fn tstz(text: &str) -> String {
    match parse(text, Target::TimestampTz).unwrap() {
        Value::Timestamp(micros) => chrono::DateTime::<Utc>::from_timestamp_micros(micros)
            .unwrap()
            .naive_utc()
            .to_string(),
        other => panic!("{other:?}"),
    }
}

fn date(text: &str) -> String {
    match parse(text, Target::Date) {
        Ok(Value::Date(days)) => (NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
            + chrono::Duration::days(i64::from(days)))
        .to_string(),
        other => panic!("{text}: {other:?}"),
    }
}

fn time(text: &str) -> String {
    match parse(text, Target::Time) {
        Ok(Value::Time(micros)) => {
            let t = NaiveTime::MIN + chrono::Duration::microseconds(micros);
            t.format("%H:%M:%S%.f").to_string()
        }
        other => panic!("{text}: {other:?}"),
    }
}

/// Postgres' documentation, table 8.10 (date input), in MDY order.
#[test]
fn dates_of_the_postgres_documentation() {
    for input in [
        "1999-01-08",
        "January 8, 1999",
        "1/8/1999",
        "1999-Jan-08",
        "Jan-08-1999",
        "08-Jan-1999",
        "08-Jan-99",
        "Jan-08-99",
        "19990108",
        "990108",
        "1999.008",
        "J2451187",
    ] {
        assert_eq!(date(input), "1999-01-08", "{input}");
    }
    assert_eq!(date("1/18/1999"), "1999-01-18");
    assert_eq!(date("01/02/03"), "2003-01-02");
    assert_eq!(date("January 8, 99 BC"), "-0098-01-08");
    assert!(
        parse("1999-02-30", Target::Date)
            .unwrap_err()
            .contains("out of range")
    );
    assert!(
        parse("garbage", Target::Date)
            .unwrap_err()
            .contains("invalid input syntax for type date")
    );
}

/// Table 8.11 (time input) and 8.12 (time zone input).
#[test]
fn times_and_zones_of_the_postgres_documentation() {
    assert_eq!(time("04:05:06.789"), "04:05:06.789");
    assert_eq!(time("04:05:06"), "04:05:06");
    assert_eq!(time("04:05"), "04:05:00");
    assert_eq!(time("040506"), "04:05:06");
    assert_eq!(time("04:05 AM"), "04:05:00");
    assert_eq!(time("04:05 PM"), "16:05:00");
    assert_eq!(time("12:05 AM"), "00:05:00");
    // A zone is read and ignored by `time`.
    for input in [
        "04:05:06.789-8",
        "04:05:06-08:00",
        "04:05-08:00",
        "040506-08",
        "040506+0730",
        "040506+07:30:00",
        "04:05:06 PST",
    ] {
        assert!(time(input).starts_with("04:05"), "{input}");
    }
    assert_eq!(time("2003-04-12 04:05:06 America/New_York"), "04:05:06");
    assert_eq!(time("allballs"), "00:00:00");
    assert!(
        parse("25:00", Target::Time)
            .unwrap_err()
            .contains("out of range")
    );
}

#[test]
fn timestamps() {
    assert_eq!(ts("2020-04-15 12:02"), "2020-04-15 12:02:00");
    assert_eq!(ts("2020-04-15T12:02:03"), "2020-04-15 12:02:03");
    assert_eq!(ts("2020-04-15 12:02:03.5+02"), "2020-04-15 12:02:03.500");
    assert_eq!(ts("20200415 120203"), "2020-04-15 12:02:03");
    assert_eq!(ts("January 8 04:05:06 1999 PST"), "1999-01-08 04:05:06");
    assert_eq!(ts("1999-01-08 04:05:06"), "1999-01-08 04:05:06");
    assert_eq!(ts("Wed Dec 17 07:37:16 1997"), "1997-12-17 07:37:16");
    assert_eq!(ts("epoch"), "1970-01-01 00:00:00");
    assert_eq!(ts("2020-04-15"), "2020-04-15 00:00:00");
    // Zones move an instant: to UTC.
    assert_eq!(tstz("2020-04-15 12:02:03.5+02"), "2020-04-15 10:02:03.500");
    assert_eq!(tstz("1999-01-08 04:05:06 -8:00"), "1999-01-08 12:05:06");
    assert_eq!(tstz("1999-01-08 04:05:06 PST"), "1999-01-08 12:05:06");
    assert_eq!(
        tstz("2003-04-12 04:05:06 America/New_York"),
        "2003-04-12 08:05:06"
    );
    assert_eq!(tstz("1999-01-08 04:05:06 zulu"), "1999-01-08 04:05:06");
    assert_eq!(tstz("1999-01-08 04:05:06-0800"), "1999-01-08 12:05:06");
    assert_eq!(tstz("2020-04-15 12:02"), "2020-04-15 12:02:00");
    assert!(
        parse("-infinity", Target::Timestamp)
            .unwrap_err()
            .contains("no infinity")
    );
    assert!(parse("2020-04-15 12:02 Nowhere/Zone", Target::TimestampTz).is_err());
    assert!(parse("12:02:03 12:02:03", Target::Timestamp).is_err());
}
