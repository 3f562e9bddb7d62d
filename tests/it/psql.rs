//! The real `psql` (Debian's postgresql-client): its meta-commands query `pg_catalog` and
//! `information_schema` with its own SQL, so these tests check what a person at a terminal sees.

use std::process::Command;

use super::server::TestServer;

/// Runs `psql -c command` against `server` and returns stdout, failing on any error.
fn psql(server: &TestServer, command: &str) -> String {
    let (stdout, stderr) = psql_output(server, command);
    assert!(
        !stderr.contains("ERROR"),
        "psql -c {command:?} reported:\n{stderr}"
    );
    stdout
}

/// Runs `psql -c command` (which must succeed) and returns stdout and stderr.
fn psql_output(server: &TestServer, command: &str) -> (String, String) {
    let output = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.pg.port().to_string(),
            "-U",
            "weir",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-c", command, "dev"])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql is installed (the test command installs postgresql-client)");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        output.status.success(),
        "psql -c {command:?} failed:\n{stderr}\n{stdout}"
    );
    (stdout, stderr)
}

#[tokio::test]
async fn meta_commands_describe_tables() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE customers (id BIGINT PRIMARY KEY, name TEXT NOT NULL, region VARCHAR(8))",
        )
        .await
        .unwrap();

    let tables = psql(&server, "\\dt");
    assert!(tables.contains("customers"), "\\dt:\n{tables}");

    let described = psql(&server, "\\d customers");
    for expected in ["id", "bigint", "name", "text", "region", "not null"] {
        assert!(
            described.contains(expected),
            "\\d customers lacks {expected}:\n{described}"
        );
    }

    let databases = psql(&server, "\\l");
    assert!(databases.contains("weir"), "\\l:\n{databases}");

    let schemas = psql(&server, "\\dn");
    assert!(schemas.contains("public"), "\\dn:\n{schemas}");

    psql(&server, "\\df");

    let query = psql(&server, "SELECT name FROM customers");
    assert!(query.contains("(0 rows)"), "{query}");
}

#[tokio::test]
async fn rollback_after_writes_warns_that_it_undid_nothing() {
    let server = TestServer::start();
    psql(&server, "CREATE TABLE notes (id INT PRIMARY KEY)");
    let (_, stderr) = psql_output(&server, "BEGIN; INSERT INTO notes VALUES (1); ROLLBACK;");
    assert!(
        stderr.contains("WARNING:  ROLLBACK cannot undo the 1 write statement"),
        "{stderr}"
    );
    // What the warning says is true: the row is there.
    assert!(psql(&server, "SELECT count(*) FROM notes").contains(" 1\n"));
    let (_, stderr) = psql_output(&server, "BEGIN; SELECT 1; ROLLBACK;");
    assert!(
        !stderr.contains("WARNING"),
        "a read-only block rolls back silently: {stderr}"
    );
}
