//! DDL is atomic across crashes: the server aborts just before or just after a DDL statement's
//! write commits; after a restart the catalog and the rows are entirely old or entirely new.

use super::server::TestServer;

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
