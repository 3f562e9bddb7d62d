//! Runs `tests/sqllogictest/**/*.slt` against a real server through tokio-postgres (simple
//! protocol), each file on a fresh server and data directory.
//!
//! One harness directive beyond standard sqllogictest: a `statement ok` record whose SQL is
//! `RESTART` kills the server with SIGKILL and starts it again on the same data directory,
//! so files can check what survives a crash.

use std::path::{Path, PathBuf};

use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tokio_postgres::SimpleQueryMessage;

use super::server::TestServer;

struct Weir {
    server: TestServer,
    client: tokio_postgres::Client,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct SltError {
    message: String,
    sqlstate: Option<String>,
}

impl From<tokio_postgres::Error> for SltError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => Self {
                message: db.message().to_string(),
                sqlstate: Some(db.code().code().to_string()),
            },
            None => Self {
                message: e.to_string(),
                sqlstate: None,
            },
        }
    }
}

#[async_trait::async_trait]
impl AsyncDB for Weir {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        if sql.trim() == "RESTART" {
            self.server.kill_and_restart();
            self.client = self.server.client().await;
            return Ok(DBOutput::StatementComplete(0));
        }
        let messages = self.client.simple_query(sql).await?;
        let mut rows = Vec::new();
        let mut columns = 0;
        let mut returned_rows = false;
        let mut affected = 0;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(description) => {
                    returned_rows = true;
                    columns = description.len();
                }
                SimpleQueryMessage::Row(row) => {
                    returned_rows = true;
                    columns = row.len();
                    rows.push(
                        (0..row.len())
                            .map(|i| match row.get(i) {
                                None => "NULL".to_string(),
                                Some("") => "(empty)".to_string(),
                                Some(v) => v.to_string(),
                            })
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => affected = n,
                _ => {}
            }
        }
        if returned_rows {
            Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Any; columns],
                rows,
            })
        } else {
            Ok(DBOutput::StatementComplete(affected))
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "weir"
    }

    async fn sleep(duration: std::time::Duration) {
        tokio::time::sleep(duration).await
    }

    fn error_sql_state(error: &Self::Error) -> Option<String> {
        error.sqlstate.clone()
    }
}

fn slt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read slt dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            slt_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "slt") {
            out.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files() {
    // Cargo sets the manifest dir at run time too; the compile-time value is
    // stale when a shared target dir holds a binary built from another checkout.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    let root = manifest.join("tests/sqllogictest");
    let mut files = Vec::new();
    slt_files(&root, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no .slt files under {}", root.display());
    let filter = std::env::var("SLT").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for file in &files {
        if filter
            .as_deref()
            .is_some_and(|f| !file.to_string_lossy().contains(f))
        {
            continue;
        }
        ran += 1;
        let server = TestServer::start();
        let client = server.client().await;
        let mut db = Some(Weir { server, client });
        let mut runner = sqllogictest::Runner::new(move || {
            let db = db.take().expect("one connection per file");
            async move { Ok::<_, SltError>(db) }
        });
        if let Err(e) = runner.run_file_async(file).await {
            failures.push(format!("{}:\n{e}", file.display()));
        }
    }
    assert!(ran > 0, "SLT={filter:?} matched no file");
    assert!(
        failures.is_empty(),
        "{} of {ran} files failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!("sqllogictest: {ran} files passed");
}
