//! Starting and stopping real `weir serve` processes on ephemeral ports.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to open its data directory and listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A `weir serve` child process with a temporary data directory.
pub struct TestServer {
    /// Holds the temporary directory; kept across restarts.
    pub dir: Arc<tempfile::TempDir>,
    child: Option<Child>,
    /// The Postgres wire address.
    pub pg: SocketAddr,
    /// The HTTP address.
    pub http: SocketAddr,
}

impl TestServer {
    /// A server on a fresh data directory.
    pub fn start() -> Self {
        Self::start_in(Arc::new(tempfile::tempdir().expect("temp dir")))
    }

    /// A server on the data directory of `dir` (restart after a stop or a kill).
    pub fn start_in(dir: Arc<tempfile::TempDir>) -> Self {
        Self::start_with_env(dir, &[])
    }

    /// A server on `dir` with extra environment variables (`WEIR_FAILPOINTS`).
    pub fn start_with_env(dir: Arc<tempfile::TempDir>, env: &[(&str, &str)]) -> Self {
        Self::start_configured(dir, env, "")
    }

    /// A server on `dir` with extra environment variables and, when `config` is not empty,
    /// that TOML as its `--config` file.
    pub fn start_configured(
        dir: Arc<tempfile::TempDir>,
        env: &[(&str, &str)],
        config: &str,
    ) -> Self {
        let mut command = Self::command(&Self::data_dir_of(dir.path()));
        if !config.is_empty() {
            let path = dir.path().join("weir.toml");
            std::fs::write(&path, config).expect("write config file");
            command.arg("--config").arg(path);
        }
        let mut child = command
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn weir");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "weir did not report ready within {START_TIMEOUT:?} (exit status {status:?})"
                );
            }
        };
        let (pg, http) = parse_ready(&line);
        Self {
            dir,
            child: Some(child),
            pg,
            http,
        }
    }

    /// `weir serve` on `data_dir` with ephemeral ports; the caller spawns it.
    pub fn command(data_dir: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--pg-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .env("WEIR_LOG", "warn");
        command
    }

    /// The data directory inside a test's temporary directory.
    pub fn data_dir_of(dir: &Path) -> PathBuf {
        dir.join("data")
    }

    /// A connected tokio-postgres client; its connection task runs on the current runtime.
    pub async fn client(&self) -> tokio_postgres::Client {
        let config = format!(
            "host=127.0.0.1 port={} user=weir dbname=dev",
            self.pg.port()
        );
        let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
            .await
            .expect("connect to weir");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: no chance to flush or close anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        child.wait().expect("wait for weir")
    }

    /// Waits up to `timeout` for the process to exit on its own (an armed failpoint).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait for weir") {
                self.child = None;
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill -9 and start again on the same data directory.
    pub fn kill_and_restart(&mut self) {
        self.kill();
        // With the configuration file it was started with, if any.
        let config = std::fs::read_to_string(self.dir.path().join("weir.toml")).unwrap_or_default();
        *self = Self::start_configured(self.dir.clone(), &[], &config);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn parse_ready(line: &str) -> (SocketAddr, SocketAddr) {
    let rest = line
        .strip_prefix("weir ready: ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"));
    let mut pg = None;
    let mut http = None;
    for part in rest.split_whitespace() {
        match part.split_once('=') {
            Some(("postgres", addr)) => pg = addr.parse().ok(),
            Some(("http", addr)) => http = addr.parse().ok(),
            _ => {}
        }
    }
    (pg.expect("postgres address"), http.expect("http address"))
}

/// Rows as sorted text lines, so a view and its batch query compare whatever their column names.
pub async fn sorted_rows(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows: Vec<String> = messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            _ => None,
        })
        .collect();
    rows.sort();
    rows
}

/// Polls `sql` (one value) until `done` holds, for up to `timeout`; returns the last value.
pub async fn wait_for(
    client: &tokio_postgres::Client,
    sql: &str,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let value = sorted_rows(client, sql).await.join("\n");
        if done(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: still {value:?} after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /metrics`: the Prometheus text.
pub async fn scrape_metrics(server: &TestServer) -> String {
    let url = format!("http://{}/metrics", server.http);
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The value of the sample `name{labels}` in Prometheus text, if present.
pub fn metric_sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map(|value| value.trim().parse().expect("a number"))
}

/// Posts newline-delimited JSON events to `source` over HTTP and checks they were accepted.
pub async fn post_events(server: &TestServer, source: &str, ndjson: String) {
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/events/{source}", server.http))
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .expect("the collector answers");
    assert!(
        response.status().is_success(),
        "events refused: {}",
        response.status()
    );
}

/// What the client-library tests (Python, pgjdbc) reflect and query: a table with a key and a
/// default, an HTTP source, and a materialized view over it.
pub async fn create_clients_schema(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL, \
               score DOUBLE PRECISION DEFAULT 0);
             INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'grace');
             CREATE SOURCE events (ts TIMESTAMP, user_id BIGINT, kind TEXT, \
               WATERMARK FOR ts AS ts - INTERVAL '5 seconds') WITH (connector = 'http');
             CREATE MATERIALIZED VIEW per_kind AS SELECT kind, count(*) AS n FROM events GROUP BY kind;",
        )
        .await
        .expect("create the clients' schema");
}
