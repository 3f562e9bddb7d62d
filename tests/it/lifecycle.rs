//! The server as a process: help, the data-directory lock, health, clean shutdown on SIGTERM,
//! and durability of acknowledged statements across SIGKILL.

use std::process::{Command, Stdio};
use std::sync::Arc;

use super::server::TestServer;

#[test]
fn help_documents_the_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in ["--data-dir", "--pg-listen", "--http-listen", "--config"] {
        assert!(help.contains(flag), "help lacks {flag}:\n{help}");
    }
}

#[test]
fn a_second_server_on_the_same_directory_is_refused() {
    let server = TestServer::start();
    let output = TestServer::command(&TestServer::data_dir_of(server.dir.path()))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use by another Weir server"), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", server.pid())),
        "{stderr}"
    );
}

#[test]
fn a_bad_config_file_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    std::fs::write(&config, "pg_listen = 5\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid config file") && stderr.contains("pg_listen"),
        "{stderr}"
    );
}

#[tokio::test]
async fn health_reports_the_version() {
    let server = TestServer::start();
    let response = reqwest::get(format!("http://{}/health", server.http))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_data_survives() {
    let mut server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a')")
        .await
        .unwrap();
    drop(client);
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let server = TestServer::start_in(server.dir.clone());
    let client = server.client().await;
    let row = client
        .query_one("SELECT v FROM t WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "a");
}

#[tokio::test]
async fn acknowledged_statements_survive_kill_9() {
    let mut server = TestServer::start();
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE acked (id BIGINT PRIMARY KEY)")
        .await
        .unwrap();
    let mut acknowledged = 0i64;
    for batch in 0..20i64 {
        let values: Vec<String> = (0..50).map(|i| format!("({})", batch * 50 + i)).collect();
        client
            .execute(
                &format!("INSERT INTO acked VALUES {}", values.join(",")),
                &[],
            )
            .await
            .unwrap();
        acknowledged += 50;
    }
    server.kill();
    let dir = Arc::clone(&server.dir);
    drop(server);
    let server = TestServer::start_in(dir);
    let client = server.client().await;
    let row = client
        .query_one("SELECT count(*), count(DISTINCT id) FROM acked", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), acknowledged);
    assert_eq!(row.get::<_, i64>(1), acknowledged);
}
