//! Many connections: 2,000 idle clients held at once while new ones are served, and a client
//! that goes away while its rows stream, or before its first row, stops its statement
//! (`weir_pg_statements_running` returns to zero, and the connection is closed).

use std::time::{Duration, Instant};

use super::server::{TestServer, metric_sample, scrape_metrics};

/// The value of an unlabelled gauge in `GET /metrics` (0 before it is first set).
async fn gauge(server: &TestServer, name: &str) -> f64 {
    metric_sample(&scrape_metrics(server).await, name).unwrap_or(0.0)
}

/// Polls `gauge` until `done` holds, for up to 60 s.
async fn wait_gauge(server: &TestServer, name: &str, done: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let value = gauge(server, name).await;
        if done(value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{name} stayed at {value}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_thousand_idle_connections_and_clients_that_leave_mid_statement() {
    let server = TestServer::start();
    let mut idle = Vec::new();
    for _ in 0..20 {
        let batch = futures::future::join_all((0..100).map(|_| server.client())).await;
        idle.extend(batch);
    }
    assert_eq!(idle.len(), 2000);
    wait_gauge(&server, "weir_pg_connections", |n| n >= 2000.0).await;
    // A new client is served while they are held, and the idle ones still answer.
    let fresh = server.client().await;
    let started = Instant::now();
    let n: i64 = fresh
        .query_one("SELECT count(*) FROM generate_series(1, 100)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 100);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for client in idle.iter().step_by(97) {
        let one: i64 = client
            .query_one("SELECT 1::bigint", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(one, 1);
    }
    drop(idle);
    wait_gauge(&server, "weir_pg_connections", |n| n <= 2.0).await;

    // A client that stops reading and goes while a billion rows stream: its statement ends.
    leave_during(&server, "SELECT * FROM generate_series(1, 1000000000000)").await;
    // One that goes while its statement computes, before any row is written to notice it by:
    // its statement ends too (it would take hours).
    leave_during(
        &server,
        "SELECT sum(value % 7) FROM generate_series(1, 1000000000000)",
    )
    .await;
}

/// Starts `sql` on a new connection, closes the connection once it runs, and waits for the
/// statement and the connection to end.
async fn leave_during(server: &TestServer, sql: &'static str) {
    let config = format!(
        "host=127.0.0.1 port={} user=weir dbname=dev",
        server.pg.port()
    );
    let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let query = tokio::spawn(async move {
        let _ = client.simple_query(sql).await;
    });
    wait_gauge(server, "weir_pg_statements_running", |n| n >= 1.0).await;
    query.abort();
    connection.abort();
    wait_gauge(server, "weir_pg_statements_running", |n| n == 0.0).await;
    wait_gauge(server, "weir_pg_connections", |n| n <= 1.0).await;
}
