//! The server: binds the Postgres and HTTP listeners over one engine and runs until told to
//! stop.

pub mod api;
pub mod postgres;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::AuthMode;
use crate::config::Config;
use crate::query::{Engine, EngineConfig};

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// Where the Postgres protocol listens (the actual port when 0 was asked for).
    pub pg_addr: SocketAddr,
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    engine: Arc<Engine>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The engine (data directory, storage, catalog) failed to open.
    #[error(transparent)]
    Engine(#[from] crate::query::QueryError),
    /// The TLS certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] postgres::TlsError),
    /// TLS needs both a certificate and a key.
    #[error("TLS needs both --tls-cert and --tls-key")]
    TlsHalfConfigured,
    /// SCRAM with no users would let nobody in.
    #[error(
        "--auth scram needs a user to log in as: create one first (CREATE USER name PASSWORD \
         '...') with authentication off"
    )]
    NoUsers,
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl Server {
    /// Opens the engine and starts serving.
    pub async fn start(config: &Config) -> Result<Self, StartError> {
        let engine_config = EngineConfig {
            data_dir: config.data_dir.clone(),
            query_threads: config.query_threads,
            view_state_cache_bytes: config.view_state_cache_bytes,
        };
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(postgres::tls_acceptor(cert, key)?),
            (None, None) => None,
            _ => return Err(StartError::TlsHalfConfigured),
        };
        let engine = tokio::task::spawn_blocking(move || Engine::open(&engine_config))
            .await
            .expect("opening the engine does not panic")?;
        if config.auth == AuthMode::Scram && engine.users().is_empty() {
            return Err(StartError::NoUsers);
        }
        engine.start_views().await?;
        let bind = |addr: String| async move {
            TcpListener::bind(&addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })
        };
        let pg = bind(config.pg_listen.clone()).await?;
        let http = bind(config.http_listen.clone()).await?;
        let pg_addr = pg.local_addr().map_err(|source| StartError::Bind {
            addr: config.pg_listen.clone(),
            source,
        })?;
        let http_addr = http.local_addr().map_err(|source| StartError::Bind {
            addr: config.http_listen.clone(),
            source,
        })?;
        let (shutdown, stop) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(postgres::serve(
                pg,
                engine.clone(),
                tls,
                config.auth,
                stop.clone(),
            )),
            tokio::spawn(api::serve(
                http,
                engine.clone(),
                api::Limits {
                    max_body_bytes: config.max_body_bytes,
                    max_inflight_ingest_bytes: config.max_inflight_ingest_bytes,
                },
                config.auth,
                stop,
            )),
        ];
        Ok(Self {
            pg_addr,
            http_addr,
            shutdown,
            tasks,
            engine,
        })
    }

    /// Stops accepting connections and waits for the listeners to close. Storage closes when
    /// the last connection lets go of the engine.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        drop(self.engine);
    }
}
