//! Authentication: users made with SQL while authentication is off, then `--auth scram`:
//! SCRAM-SHA-256 logins from tokio-postgres and psql, 28P01 for a wrong password, an unknown
//! user or a role without LOGIN, passwords stored only as verifiers, and basic auth on HTTP.

use std::process::Command;
use std::sync::Arc;

use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use super::server::TestServer;

async fn connect(
    server: &TestServer,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(server.pg.port())
        .user(user)
        .password(password)
        .dbname("weir")
        .connect(NoTls)
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

async fn login_fails(server: &TestServer, user: &str, password: &str) {
    let error = connect(server, user, password)
        .await
        .err()
        .unwrap_or_else(|| panic!("{user} logged in with {password:?}"));
    assert_eq!(error.code(), Some(&SqlState::INVALID_PASSWORD), "{error:?}");
    let message = error.as_db_error().map(|e| e.message().to_string());
    assert_eq!(
        message.as_deref(),
        Some(format!("password authentication failed for user \"{user}\"").as_str())
    );
}

#[tokio::test]
async fn scram_logins_users_and_http_basic_auth() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut server = TestServer::start_in(dir.clone());
    let client = server.client().await;
    client
        .batch_execute(
            "CREATE USER alice WITH PASSWORD 'wonder land';
             CREATE USER bob PASSWORD 'first';
             ALTER USER bob WITH PASSWORD 'second';
             CREATE ROLE readers;
             CREATE USER carol PASSWORD 'c';
             DROP USER carol;
             CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT);
             CREATE SOURCE events (ts TIMESTAMP, kind TEXT) WITH (connector = 'http');",
        )
        .await
        .unwrap();
    let duplicate = client.batch_execute("CREATE USER alice").await.unwrap_err();
    assert_eq!(duplicate.code(), Some(&SqlState::DUPLICATE_OBJECT));
    let missing = client.batch_execute("DROP USER nobody").await.unwrap_err();
    assert_eq!(missing.code(), Some(&SqlState::UNDEFINED_OBJECT));

    // Only verifiers are stored; the views hide even those.
    let rows = client
        .query(
            "SELECT rolname, rolcanlogin, rolpassword FROM pg_catalog.pg_authid \
             WHERE rolname <> 'postgres' ORDER BY rolname",
            &[],
        )
        .await
        .unwrap();
    let roles: Vec<(String, bool, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(roles.len(), 3, "{roles:?}");
    assert_eq!((roles[0].0.as_str(), roles[0].1), ("alice", true));
    assert_eq!(
        (roles[2].0.as_str(), roles[2].1, &roles[2].2),
        ("readers", false, &None)
    );
    for (name, _, password) in &roles[..2] {
        let password = password.as_deref().unwrap();
        assert!(
            password.starts_with("SCRAM-SHA-256$4096:"),
            "{name}: {password}"
        );
        assert!(!password.contains("wonder") && !password.contains("second"));
    }
    let hidden = client
        .query_one(
            "SELECT rolpassword FROM pg_catalog.pg_roles WHERE rolname = 'alice'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(hidden.get::<_, String>(0), "********");
    drop(client);

    server.terminate();
    let server = TestServer::start_configured(dir, &[], "auth = \"scram\"\n");

    let alice = connect(&server, "alice", "wonder land").await.unwrap();
    let row = alice
        .query_one("SELECT count(*) FROM notes", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);
    connect(&server, "bob", "second").await.unwrap();
    login_fails(&server, "bob", "first").await;
    login_fails(&server, "alice", "wonder").await;
    login_fails(&server, "nobody", "x").await;
    login_fails(&server, "readers", "").await;
    login_fails(&server, "carol", "c").await;

    // psql (libpq) logs in the same way.
    let psql = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-p",
            &server.pg.port().to_string(),
        ])
        .args(["-U", "alice", "-d", "weir", "-c", "SELECT 'psql in'"])
        .env("PGPASSWORD", "wonder land")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&psql.stdout).trim(), "psql in");

    // A password change or a drop applies to the next login.
    alice
        .batch_execute("ALTER USER bob PASSWORD 'third'")
        .await
        .unwrap();
    login_fails(&server, "bob", "second").await;
    connect(&server, "bob", "third").await.unwrap();
    alice.batch_execute("DROP USER bob").await.unwrap();
    login_fails(&server, "bob", "third").await;

    // HTTP: basic auth with the same users; /health stays open.
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.http);
    let event = "{\"ts\": \"2024-03-01T09:30:00Z\", \"kind\": \"view\"}\n";
    let anonymous = http
        .post(format!("{base}/api/events/events"))
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Basic realm=\"weir\""
    );
    let wrong = http
        .post(format!("{base}/api/events/events"))
        .basic_auth("alice", Some("nope"))
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    for _ in 0..2 {
        let accepted = http
            .post(format!("{base}/api/events/events"))
            .basic_auth("alice", Some("wonder land"))
            .header("content-type", "application/x-ndjson")
            .body(event)
            .send()
            .await
            .unwrap();
        assert!(accepted.status().is_success(), "{}", accepted.status());
    }
    let count = alice
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap();
    assert_eq!(count.get::<_, i64>(0), 2);
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 401);
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[test]
fn scram_without_users_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = TestServer::command(&TestServer::data_dir_of(dir.path()))
        .args(["--auth", "scram"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--auth scram needs a user"), "{stderr}");
}
