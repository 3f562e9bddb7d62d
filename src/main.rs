//! The `weir` command.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use weir::config::Config;
use weir::server::Server;

// mimalloc: view maintenance allocates and frees many small values per group (keys, states,
// rows), where glibc's allocator spent a sixth of a Nexmark q5 run; mimalloc is DataFusion's
// own recommendation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Weir: a SQL-first streaming database for real-time analytics.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: Postgres wire protocol and HTTP API over one data directory.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Data directory (default ./weir-data). One server per directory.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Postgres wire protocol address (default 127.0.0.1:4566; port 0 picks a free port).
    #[arg(long, value_name = "HOST:PORT")]
    pg_listen: Option<String>,
    /// HTTP API address (default 127.0.0.1:8080; port 0 picks a free port).
    #[arg(long, value_name = "HOST:PORT")]
    http_listen: Option<String>,
    /// PEM certificate chain: serve TLS on the Postgres port (with --tls-key).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// How clients log in: trust (any user name, the default) or scram (passwords, SCRAM-SHA-256
    /// on the Postgres port and basic auth on HTTP).
    #[arg(long, value_enum, value_name = "MODE")]
    auth: Option<weir::auth::AuthMode>,
    /// TOML file with any of: data_dir, pg_listen, http_listen, query_threads, max_body_bytes,
    /// max_inflight_ingest_bytes, tls_cert, tls_key, auth. Flags win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        if let Some(addr) = self.pg_listen {
            config.pg_listen = addr;
        }
        if let Some(addr) = self.http_listen {
            config.http_listen = addr;
        }
        if let Some(cert) = self.tls_cert {
            config.tls_cert = Some(cert);
        }
        if let Some(key) = self.tls_key {
            config.tls_key = Some(key);
        }
        if let Some(auth) = self.auth {
            config.auth = auth;
        }
        Ok(config)
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("WEIR_LOG")
                .or_else(|_| EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = args.into_config()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("weir-io")
                .thread_stack_size(weir::stack::STATEMENT_THREAD_STACK_BYTES)
                .build()
                .context("starting the I/O runtime")?;
            runtime.block_on(serve(config))
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    weir::telemetry::install();
    let server = Server::start(&config).await?;
    tracing::info!(data_dir = %config.data_dir.display(), "weir started");
    // One machine-readable line on stdout, so scripts and tests learn the bound ports.
    println!(
        "weir ready: postgres={} http={}",
        server.pg_addr, server.http_addr
    );
    wait_for_signal().await?;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
