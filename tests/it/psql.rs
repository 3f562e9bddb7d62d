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
    let output = psql_command(server)
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

    let schemas = psql(&server, "\\dn");
    assert!(schemas.contains("public"), "\\dn:\n{schemas}");

    // Weir defines no functions of its own in user schemas, as a fresh Postgres database.
    let functions = psql(&server, "\\df");
    assert!(
        functions.contains("List of functions") && functions.contains("(0 rows)"),
        "\\df:\n{functions}"
    );
    // Weir's views are all materialized: `\dv` (plain views) finds none, as psql says.
    let (views, said) = psql_output(&server, "\\dv");
    assert!(
        views.is_empty() && said.contains("Did not find any relations."),
        "\\dv:\n{views}\n{said}"
    );

    let query = psql(&server, "SELECT name FROM customers");
    assert!(query.contains("(0 rows)"), "{query}");
}

#[tokio::test]
async fn meta_commands_show_sources_views_keys_and_defaults() {
    let server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL, score DOUBLE PRECISION DEFAULT 0);
             CREATE SOURCE events (ts TIMESTAMP, kind TEXT, WATERMARK FOR ts AS ts - INTERVAL '5 seconds') \
               WITH (connector = 'http');
             CREATE MATERIALIZED VIEW per_kind AS SELECT kind, count(*) AS n FROM events GROUP BY kind;",
        )
        .await
        .unwrap();

    // Sources are tables to a client; materialized views are their own kind.
    let relations = cells(&psql(&server, "\\d"));
    for row in [
        ["public", "events", "table", "postgres"],
        ["public", "per_kind", "materialized view", "postgres"],
        ["public", "users", "table", "postgres"],
    ] {
        assert!(
            relations.contains(&row.map(String::from).to_vec()),
            "\\d lacks {row:?}: {relations:?}"
        );
    }
    let views = psql(&server, "\\dm");
    assert!(
        views.contains("per_kind") && !views.contains("users"),
        "\\dm:\n{views}"
    );
    let tables = psql(&server, "\\dt");
    assert!(
        tables.contains("events") && !tables.contains("per_kind"),
        "\\dt:\n{tables}"
    );
    let indexes = cells(&psql(&server, "\\di"));
    assert!(
        indexes.contains(
            &["public", "users_pkey", "index", "postgres", "users"]
                .map(String::from)
                .to_vec()
        ),
        "\\di: {indexes:?}"
    );

    let users = psql(&server, "\\d users");
    assert!(
        cells(&users).contains(
            &["score", "double precision", "", "", "0"]
                .map(String::from)
                .to_vec()
        ),
        "\\d users shows the default:\n{users}"
    );
    assert!(
        users.contains("\"users_pkey\" PRIMARY KEY, btree (id)"),
        "\\d users shows the key:\n{users}"
    );
    let key = psql(&server, "\\d users_pkey");
    assert!(
        key.contains("primary key, btree, for table \"public.users\""),
        "{key}"
    );
    let view = psql(&server, "\\d per_kind");
    assert!(
        view.contains("Materialized view \"public.per_kind\""),
        "{view}"
    );
    assert!(
        cells(&view).iter().any(|row| row[..2] == ["n", "bigint"]),
        "{view}"
    );

    // `\d+` adds storage details and, for a view, its definition.
    let detailed = psql(&server, "\\d+ users");
    assert!(
        cells(&detailed)
            .iter()
            .any(|row| row.len() > 5 && row[0] == "score" && row[4] == "0" && row[5] == "plain"),
        "\\d+ users:\n{detailed}"
    );
    let detailed_view = psql(&server, "\\d+ per_kind");
    assert!(
        detailed_view.contains("View definition:")
            && detailed_view.contains("SELECT kind, count(*) AS n FROM events GROUP BY kind"),
        "\\d+ per_kind:\n{detailed_view}"
    );

    // \x and \timing are psql's own, around a query Weir answers.
    let expanded = psql_commands(
        &server,
        &["\\x on", "\\timing on", "SELECT id, name FROM users"],
    );
    assert!(expanded.contains("Expanded display is on."), "{expanded}");
    assert!(expanded.contains("Time: "), "{expanded}");
}

/// The cells of psql's aligned table rows, trimmed.
fn cells(output: &str) -> Vec<Vec<String>> {
    output
        .lines()
        .filter(|line| line.contains('|'))
        .map(|line| line.split('|').map(|c| c.trim().to_string()).collect())
        .collect()
}

/// psql connecting to `server`, stopping at the first error.
fn psql_command(server: &TestServer) -> Command {
    let mut command = Command::new("psql");
    command.args([
        "-h",
        "127.0.0.1",
        "-p",
        &server.pg.port().to_string(),
        "-U",
        "weir",
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
    ]);
    command
}

/// Runs several `-c` commands in one psql session.
fn psql_commands(server: &TestServer, commands: &[&str]) -> String {
    let mut command = psql_command(server);
    for c in commands {
        command.args(["-c", c]);
    }
    let output = command.arg("dev").output().expect("psql is installed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stderr.contains("ERROR"),
        "{stderr}"
    );
    String::from_utf8_lossy(&output.stdout).to_string()
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

/// Weir has one database, named as each client connects to it: psql's `\l` and `\c`,
/// `current_database()`, `pg_database` and `information_schema` agree on the name.
#[tokio::test]
async fn the_database_is_named_as_the_client_connected() {
    let server = TestServer::start();
    psql(&server, "CREATE TABLE notes (id INT PRIMARY KEY)");
    let databases = cells(&psql(&server, "\\l"));
    assert_eq!(databases[1][0], "dev", "\\l: {databases:?}");
    assert_eq!(databases.len(), 2, "one database: {databases:?}");
    assert_eq!(databases[1][2], "UTF8", "{databases:?}");
    let query = "SELECT current_database() AS db, \
                 (SELECT string_agg(datname, ',') FROM pg_database) AS listed, \
                 (SELECT min(table_catalog) FROM information_schema.tables) AS tables, \
                 (SELECT max(table_catalog) FROM information_schema.columns) AS columns";
    let before = psql_commands(&server, &["\\x on", query, "\\c analytics", query]);
    let names: Vec<&str> = before
        .lines()
        .filter_map(|line| line.split_once('|').map(|(_, v)| v.trim()))
        .collect();
    assert_eq!(
        names,
        [
            "dev",
            "dev",
            "dev",
            "dev",
            "analytics",
            "analytics",
            "analytics",
            "analytics"
        ],
        "{before}"
    );
    assert!(
        before.contains("You are now connected to database \"analytics\""),
        "{before}"
    );
}
