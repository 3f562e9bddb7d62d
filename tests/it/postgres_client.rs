//! A real driver (tokio-postgres): the extended protocol with parameters, binary results for
//! every common type, SQLSTATEs, and cancellation.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use super::server::TestServer;

#[tokio::test]
async fn prepared_statements_bind_parameters() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score DOUBLE)",
        )
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO users VALUES ($1, $2, $3)")
        .await
        .unwrap();
    for (id, name, score) in [(1i64, "ada", 9.5f64), (2, "bob", 7.0), (3, "cy", 8.25)] {
        assert_eq!(
            client
                .execute(&insert, &[&id, &name, &score])
                .await
                .unwrap(),
            1
        );
    }
    let select = client
        .prepare("SELECT name, score FROM users WHERE score > $1 ORDER BY id")
        .await
        .unwrap();
    assert_eq!(select.params(), &[Type::FLOAT8]);
    assert_eq!(select.columns()[0].name(), "name");
    let rows = client.query(&select, &[&8.0f64]).await.unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["ada", "cy"]);

    let updated = client
        .execute(
            "UPDATE users SET score = score + $1 WHERE id = $2",
            &[&1.0f64, &2i64],
        )
        .await
        .unwrap();
    assert_eq!(updated, 1);
    let score: f64 = client
        .query_one("SELECT score FROM users WHERE id = $1", &[&2i64])
        .await
        .unwrap()
        .get(0);
    assert_eq!(score, 8.0);
    assert_eq!(
        client
            .execute("DELETE FROM users WHERE name = $1", &[&"cy"])
            .await
            .unwrap(),
        1
    );
    let count: i64 = client
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);
}

#[tokio::test]
async fn binary_results_for_common_types() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE every (b BOOLEAN, i2 SMALLINT, i4 INT, i8 BIGINT PRIMARY KEY, f4 REAL, f8 DOUBLE PRECISION, \
             t TEXT, v VARCHAR(10), by BYTEA, d DATE, ts TIMESTAMP, tz TIMESTAMPTZ, j JSONB);
             INSERT INTO every VALUES (true, 2, 4, 8, 1.5, 2.25, 'text', 'var', '\\x0102', '2024-02-29', \
             '2024-01-02 03:04:05.678', '2024-01-02 03:04:05+00', '{\"a\": 1}')",
        )
        .await
        .unwrap();
    // tokio-postgres reads results in binary format.
    let row = client.query_one("SELECT * FROM every", &[]).await.unwrap();
    assert!(row.get::<_, bool>("b"));
    assert_eq!(row.get::<_, i16>("i2"), 2);
    assert_eq!(row.get::<_, i32>("i4"), 4);
    assert_eq!(row.get::<_, i64>("i8"), 8);
    assert_eq!(row.get::<_, f32>("f4"), 1.5);
    assert_eq!(row.get::<_, f64>("f8"), 2.25);
    assert_eq!(row.get::<_, String>("t"), "text");
    assert_eq!(row.get::<_, String>("v"), "var");
    assert_eq!(row.get::<_, Vec<u8>>("by"), vec![1, 2]);
    assert_eq!(
        row.get::<_, NaiveDate>("d"),
        NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
    );
    let ts: NaiveDateTime = row.get("ts");
    assert_eq!(ts.to_string(), "2024-01-02 03:04:05.678");
    let tz: DateTime<Utc> = row.get("tz");
    assert_eq!(tz.to_rfc3339(), "2024-01-02T03:04:05+00:00");
    let json: serde_json::Value = row.get("j");
    assert_eq!(json, serde_json::json!({"a": 1}));

    client
        .batch_execute(
            "CREATE TABLE more (id INT PRIMARY KEY, n NUMERIC(10,2), iv INTERVAL);
             INSERT INTO more VALUES (1, 12.5, INTERVAL '1 day 2 hours'), (2, -0.01, INTERVAL '3 months')",
        )
        .await
        .unwrap();
    let rows = client
        .query("SELECT n, iv FROM more ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(
        rows[0].get::<_, rust_decimal::Decimal>(0).to_string(),
        "12.50"
    );
    assert_eq!(
        rows[1].get::<_, rust_decimal::Decimal>(0).to_string(),
        "-0.01"
    );
    let day_two_hours: pg_interval::Interval = rows[0].get(1);
    assert_eq!(
        (
            day_two_hours.months,
            day_two_hours.days,
            day_two_hours.microseconds
        ),
        (0, 1, 2 * 3_600_000_000)
    );
    let quarter: pg_interval::Interval = rows[1].get(1);
    assert_eq!(
        (quarter.months, quarter.days, quarter.microseconds),
        (3, 0, 0)
    );

    let version: String = client
        .query_one("SELECT version()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(version.starts_with("PostgreSQL "), "{version}");
}

#[tokio::test]
async fn errors_carry_sqlstates_and_the_session_survives() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE k (id INT PRIMARY KEY, v TEXT NOT NULL)")
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO k VALUES (1, 'x')")
        .await
        .unwrap();
    let cases: &[(&str, &SqlState)] = &[
        ("SELEC 1", &SqlState::SYNTAX_ERROR),
        ("SELECT * FROM missing", &SqlState::UNDEFINED_TABLE),
        ("SELECT nope FROM k", &SqlState::UNDEFINED_COLUMN),
        ("CREATE TABLE k (a INT)", &SqlState::DUPLICATE_TABLE),
        ("SELECT 'abc'::INT", &SqlState::INVALID_TEXT_REPRESENTATION),
        ("INSERT INTO k VALUES (1, 'y')", &SqlState::UNIQUE_VIOLATION),
        (
            "INSERT INTO k VALUES (2, NULL)",
            &SqlState::NOT_NULL_VIOLATION,
        ),
        (
            "CREATE MATERIALIZED VIEW v AS SELECT 1",
            &SqlState::FEATURE_NOT_SUPPORTED,
        ),
    ];
    for (sql, state) in cases {
        let err = client.batch_execute(sql).await.expect_err(sql);
        let db = err.as_db_error().unwrap_or_else(|| panic!("{sql}: {err}"));
        assert_eq!(db.code(), *state, "{sql}: {}", db.message());
        // Extended protocol, same answer.
        let err = client.query(*sql, &[]).await.expect_err(sql);
        assert_eq!(err.code(), Some(*state), "{sql} (extended): {err}");
    }
    let err = client.batch_execute("SELECT 1 +").await.unwrap_err();
    assert!(
        err.as_db_error().unwrap().position().is_some(),
        "syntax errors carry a position"
    );
    let count: i64 = client
        .query_one("SELECT count(*) FROM k", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1, "failed statements changed nothing");
}

#[tokio::test]
async fn cancel_stops_a_long_query() {
    let server = TestServer::start();
    let client = server.client().await;
    let token = client.cancel_token();
    let mut long = tokio::spawn(async move {
        client
            .query("SELECT count(*) FROM generate_series(1, 5000000000) a", &[])
            .await
    });
    // Cancel until the query answers: a cancel that lands before the query started is
    // (correctly) a no-op, so a single request could race with the query's start.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let result = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the query was not cancelled within 60 s"
        );
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
        if let Ok(result) = tokio::time::timeout(Duration::from_millis(200), &mut long).await {
            break result.unwrap();
        }
    };
    let err = result.expect_err("a cancelled query fails");
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
}

/// What a client learns at connect (`ParameterStatus`) is the session `SHOW` describes, and
/// says PostgreSQL 15, as drivers that parse the version expect.
#[tokio::test]
async fn startup_reports_the_sessions_settings() {
    let server = TestServer::start();
    let config = format!(
        "host=127.0.0.1 port={} user=weir dbname=dev application_name=grafana",
        server.pg.port()
    );
    let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
        .await
        .unwrap();
    let reported = |name: &str| connection.parameter(name).map(str::to_string);
    assert_eq!(reported("server_version").as_deref(), Some("15.0"));
    assert_eq!(reported("application_name").as_deref(), Some("grafana"));
    assert_eq!(reported("client_encoding").as_deref(), Some("UTF8"));
    assert_eq!(reported("integer_datetimes").as_deref(), Some("on"));
    assert_eq!(
        reported("standard_conforming_strings").as_deref(),
        Some("on")
    );
    assert_eq!(reported("session_authorization").as_deref(), Some("weir"));
    let date_style = reported("DateStyle").unwrap();
    assert!(
        date_style.starts_with("ISO"),
        "pgjdbc needs ISO: {date_style}"
    );
    let time_zone = reported("TimeZone").unwrap();
    tokio::spawn(connection);
    for (setting, value) in [
        ("DateStyle", date_style),
        ("TimeZone", time_zone),
        ("application_name", "grafana".to_string()),
        ("server_version_num", "150000".to_string()),
    ] {
        let shown: String = client
            .query_one(&format!("SHOW {setting}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(shown, value, "SHOW {setting}");
    }
    let version: String = client
        .query_one("SELECT version()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(version.starts_with("PostgreSQL 15."), "{version}");
}

/// What pools and tools send around their queries: an empty query (Grafana's `-- ping`),
/// `RESET`, `DISCARD ALL`, `DEALLOCATE ALL`; and `statement_timeout` stops a long statement
/// with 57014 while the session goes on.
#[tokio::test]
async fn session_statements_pools_send_and_statement_timeout() {
    let server = TestServer::start();
    let client = server.client().await;
    for empty in [";", "-- ping", "  "] {
        // tokio-postgres shows an EmptyQueryResponse as a completion of 0 rows; with no
        // response at all it shows nothing.
        let messages = client.simple_query(empty).await.unwrap();
        assert!(
            matches!(
                messages.as_slice(),
                [tokio_postgres::SimpleQueryMessage::CommandComplete(0)]
            ),
            "{empty:?}: {messages:?}"
        );
    }
    client
        .batch_execute("SET application_name = 'pooled'; SET DateStyle = 'ISO, DMY'")
        .await
        .unwrap();
    client
        .batch_execute("RESET application_name")
        .await
        .unwrap();
    let shown: String = client
        .query_one("SHOW application_name", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(shown, "");
    client
        .batch_execute("DISCARD ALL; DEALLOCATE ALL")
        .await
        .unwrap();
    let shown: String = client
        .query_one("SHOW DateStyle", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(shown, "ISO, MDY", "DISCARD ALL resets the session");

    client
        .batch_execute("SET statement_timeout = 200")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = client
        .query("SELECT count(*) FROM generate_series(1, 5000000000) a", &[])
        .await
        .expect_err("the statement outlasts its timeout");
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
    let message = err.as_db_error().map(|e| e.message().to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("statement timeout")),
        "{message:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // The session goes on, and without a timeout the same kind of statement finishes.
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM generate_series(1, 1000) a", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1000);
}

/// A parameter whose only context is a cast takes the cast's type when the statement is
/// described, as Postgres infers it, so drivers bind typed values (`$1::bigint`).
#[tokio::test]
async fn cast_parameters_are_typed_by_their_cast() {
    let server = TestServer::start();
    let client = server.client().await;
    let statement = client
        .prepare(
            "SELECT $1::bigint + 1 AS next, CAST($2 AS TEXT) AS label, $3::double precision * 2",
        )
        .await
        .unwrap();
    assert_eq!(statement.params(), &[Type::INT8, Type::TEXT, Type::FLOAT8]);
    let row = client
        .query_one(&statement, &[&41i64, &"answer", &1.25f64])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 42);
    assert_eq!(row.get::<_, String>(1), "answer");
    assert_eq!(row.get::<_, f64>(2), 2.5);
}

#[tokio::test]
async fn result_columns_are_named_as_postgres_names_them() {
    let server = TestServer::start();
    let client = server.client().await;
    let statement = client
        .prepare("SELECT 1, count(*), upper('a'), 2::int, 'x' AS x, CASE WHEN true THEN 1 END")
        .await
        .unwrap();
    let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["?column?", "count", "upper", "int4", "x", "case"]);
}

/// A prepared statement keeps its plan, and plans again after DDL: the table it reads was
/// dropped and made anew, and it reads the new one.
#[tokio::test]
async fn prepared_statements_plan_again_after_ddl() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (id BIGINT PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let count = client
        .prepare("SELECT count(*) FROM t WHERE id >= $1")
        .await
        .unwrap();
    for _ in 0..3 {
        let row = client.query_one(&count, &[&0i64]).await.unwrap();
        assert_eq!(row.get::<_, i64>(0), 1);
    }
    client
        .batch_execute(
            "DROP TABLE t; CREATE TABLE t (id BIGINT PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3)",
        )
        .await
        .unwrap();
    let row = client.query_one(&count, &[&2i64]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);
}

/// `now()` is the time of each execution of a prepared statement, not of its preparation.
#[tokio::test]
async fn prepared_statements_read_the_clock_at_each_execution() {
    let server = TestServer::start();
    let client = server.client().await;
    let statement = client
        .prepare("SELECT now() >= $1::timestamptz")
        .await
        .unwrap();
    for _ in 0..3 {
        let before: DateTime<Utc> = Utc::now();
        let row = client.query_one(&statement, &[&before]).await.unwrap();
        assert!(row.get::<_, bool>(0), "now() is older than {before}");
    }
}
