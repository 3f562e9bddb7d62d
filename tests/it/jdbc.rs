//! pgjdbc (Debian's `libpostgresql-jdbc-java`), as DBeaver, Metabase and JDBC applications use
//! it: `DatabaseMetaData` and prepared statements past the point where pgjdbc switches to named
//! server-side statements (5th execution) and binary results (6th). `tests/clients/JdbcClient.java`
//! is compiled by the test and prints what it saw.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::server::{TestServer, create_clients_schema, post_events, wait_for};

const DRIVER: &str = "/usr/share/java/postgresql.jar";

fn run_jdbc_client(port: u16) -> HashMap<String, String> {
    assert!(
        Path::new(DRIVER).exists(),
        "{DRIVER} is missing: scripts/test.sh installs libpostgresql-jdbc-java"
    );
    let classes = tempfile::tempdir().unwrap();
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/JdbcClient.java");
    let compiled = Command::new("javac")
        .arg("-d")
        .arg(classes.path())
        .arg(source)
        .output()
        .expect("javac is installed (scripts/test.sh installs a JDK)");
    assert!(
        compiled.status.success(),
        "{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let classpath = format!("{DRIVER}:{}", classes.path().display());
    let output = Command::new("java")
        .args(["-cp", &classpath, "JdbcClient", &port.to_string()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "JdbcClient failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn pgjdbc_metadata_and_prepared_statements() {
    let server = TestServer::start();
    let client = server.client().await;
    create_clients_schema(&client).await;
    let body = "{\"ts\": \"2024-03-01T09:30:00Z\", \"kind\": \"view\"}\n\
                {\"ts\": \"2024-03-01T09:30:01Z\", \"kind\": \"buy\"}\n\
                {\"ts\": \"2024-03-01T09:30:02Z\", \"kind\": \"view\"}\n";
    post_events(&server, "events", body.into()).await;
    client.batch_execute("FLUSH").await.unwrap();
    wait_for(
        &client,
        "SELECT kind, n FROM per_kind",
        Duration::from_secs(10),
        |rows| rows.contains("view") && rows.contains('2'),
    )
    .await;

    let seen = run_jdbc_client(server.pg.port());
    assert_eq!(seen["product"], "PostgreSQL 15.0");
    assert_eq!(
        seen["tables"],
        "per_kind=MATERIALIZED VIEW,events=TABLE,users=TABLE"
    );
    assert_eq!(seen["schemas"], "information_schema,pg_catalog,public,weir");
    // name:type name:java.sql.Types:nullable:default (BIGINT = -5, VARCHAR = 12, DOUBLE = 8).
    assert_eq!(
        seen["columns"],
        "id:int8:-5:NO:null,name:text:12:NO:null,score:float8:8:YES:0"
    );
    assert_eq!(seen["primary_keys"], "id:1:users_pkey");
    let prepared: Vec<String> = (0..8)
        .map(|i| {
            format!(
                "{}/{}/2024-03-01 09:30:00.123",
                (i as f64 + 0.25) * 2.0,
                1000 + i
            )
        })
        .collect();
    assert_eq!(seen["prepared"], prepared.join(","));
    assert_eq!(seen["lookups"], "grace,ada,grace,ada,grace,ada,grace");
    assert_eq!(seen["view"], "buy=1,view=2");
    assert_eq!(
        seen["floats"],
        "Infinity,-Infinity,NaN,1.0E16 from Infinity,1e+16"
    );
}
