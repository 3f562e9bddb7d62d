//! DDL is atomic across crashes: the server aborts just before or just after a DDL statement's
//! write commits; after a restart the catalog and the rows are entirely old or entirely new.

use super::server::{TestServer, sorted_rows};

/// Runs `sql` on a server armed to abort at `failpoint`; the statement must not be answered.
async fn crash_during(server: TestServer, failpoint: &str, sql: &str) -> TestServer {
    let dir = server.dir.clone();
    drop(server);
    let armed = TestServer::start_with_env(dir.clone(), &[("WEIR_FAILPOINTS", failpoint)]);
    let client = armed.client().await;
    let err = client
        .batch_execute(sql)
        .await
        .expect_err("the server aborts before answering");
    assert!(
        err.as_db_error().is_none(),
        "expected a lost connection, got {err}"
    );
    drop(armed);
    TestServer::start_in(dir)
}

async fn count(server: &TestServer, table: &str) -> Result<i64, tokio_postgres::Error> {
    let client = server.client().await;
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .map(|row| row.get(0))
}

#[tokio::test]
async fn create_table_as_is_all_or_nothing() {
    let ctas = "CREATE TABLE t AS SELECT value AS v FROM generate_series(1, 500)";

    let server = crash_during(TestServer::start(), "ddl::before_commit", ctas).await;
    let err = count(&server, "t")
        .await
        .expect_err("no table before the commit");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
    );

    let server = crash_during(server, "ddl::after_commit", ctas).await;
    assert_eq!(
        count(&server, "t").await.unwrap(),
        500,
        "the table and all its rows after the commit"
    );
}

#[tokio::test]
async fn drop_table_is_all_or_nothing() {
    let server = TestServer::start();
    server
        .client()
        .await
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t SELECT value FROM generate_series(1, 300)")
        .await
        .unwrap();

    let server = crash_during(server, "ddl::before_commit", "DROP TABLE t").await;
    assert_eq!(count(&server, "t").await.unwrap(), 300);

    let server = crash_during(server, "ddl::after_commit", "DROP TABLE t").await;
    assert!(
        count(&server, "t").await.is_err(),
        "the table is gone after the commit"
    );
    // The name is free again and the old rows are not resurrected.
    server
        .client()
        .await
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    assert_eq!(count(&server, "t").await.unwrap(), 0);
}

/// Each view of `VIEWS` as text rows, next to its batch query's over the source.
const VIEWS: &[(&str, &str, &str)] = &[
    (
        "per_min",
        "SELECT window_start, region, count(*) AS n, sum(amount) AS total, \
         count(DISTINCT user_id) AS users, approx_count_distinct(user_id) AS users_approx \
         FROM TUMBLE(sales, ts, INTERVAL '1 minute') GROUP BY window_start, region",
        "SELECT date_bin(INTERVAL '1 minute', ts), region, count(*), sum(amount), \
         count(DISTINCT user_id), approx_distinct(user_id) FROM sales GROUP BY 1, 2",
    ),
    (
        "per_10_min",
        "SELECT window_start, sum(n) AS n FROM TUMBLE(per_min, window_start, \
         INTERVAL '10 minutes') GROUP BY window_start",
        "SELECT date_bin(INTERVAL '10 minutes', ts), count(*) FROM sales \
         WHERE date_bin(INTERVAL '1 minute', ts) + INTERVAL '1 minute' <= \
         (SELECT max(ts) FROM sales) GROUP BY 1",
    ),
];

/// A minute of sales starting at `minute`, ids from `first`.
fn sales(first: usize, minute: usize) -> String {
    let rows: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "('s{}', 'u{}', '2026-05-03T10:{:02}:{:02}Z', {}, '{}')",
                first + i,
                (first + i * 7) % 13,
                minute,
                i,
                i % 9,
                ["NA", "EU", "APAC"][i % 3]
            )
        })
        .collect();
    format!("INSERT INTO sales VALUES {}", rows.join(", "))
}

#[tokio::test]
async fn a_view_epoch_commits_all_or_nothing() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE SOURCE sales (sale_id VARCHAR, user_id VARCHAR, ts TIMESTAMPTZ NOT NULL, \
             amount DOUBLE, region VARCHAR, WATERMARK FOR ts AS ts) WITH (connector = 'http')",
        )
        .await
        .unwrap();
    for (name, query, _) in VIEWS {
        client
            .batch_execute(&format!("CREATE MATERIALIZED VIEW {name} AS {query}"))
            .await
            .unwrap();
    }
    client.batch_execute(&sales(0, 0)).await.unwrap();
    client.batch_execute("FLUSH").await.unwrap();
    drop(client);
    let mut server = server;
    // The server dies in the epoch that processes each insert, before or after its commit;
    // the insert itself was durable before the epoch began.
    for (round, failpoint) in ["view::before_commit", "view::after_commit"]
        .into_iter()
        .enumerate()
    {
        let dir = server.dir.clone();
        drop(server);
        let armed = TestServer::start_with_env(dir.clone(), &[("WEIR_FAILPOINTS", failpoint)]);
        let client = armed.client().await;
        let minute = 11 * (round + 1);
        let err = client
            .batch_execute(&format!("{}; FLUSH", sales(1000 * (round + 1), minute)))
            .await
            .expect_err("the server aborts in the view's epoch");
        assert!(
            err.as_db_error().is_none(),
            "expected a lost connection, got {err}"
        );
        drop(armed);
        server = TestServer::start_in(dir);
        let client = server.client().await;
        client.batch_execute("FLUSH").await.unwrap();
        assert_eq!(
            sorted_rows(&client, "SELECT count(*) FROM sales").await,
            vec![format!("{}", 40 * (round + 2))]
        );
        for (name, _, batch) in VIEWS {
            let view = sorted_rows(&client, &format!("SELECT * FROM {name}")).await;
            assert!(!view.is_empty(), "{failpoint}: {name} is empty");
            assert_eq!(
                view,
                sorted_rows(&client, batch).await,
                "{failpoint}: {name} differs from its batch query"
            );
        }
    }
}
