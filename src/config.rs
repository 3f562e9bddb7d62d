//! Server configuration: embedded defaults, overridden by a TOML file, overridden by flags.
//! Parsed once at start; unknown keys in the file are refused so a typo is not silently
//! ignored.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything the server is configured with.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where all durable state lives.
    pub data_dir: PathBuf,
    /// Postgres wire protocol listen address.
    pub pg_listen: String,
    /// HTTP API listen address.
    pub http_listen: String,
    /// Threads that execute queries (the network runtime has its own).
    pub query_threads: usize,
    /// The largest HTTP request body (after gzip decompression) the event collector takes.
    pub max_body_bytes: usize,
    /// Ingest bytes taken in but not yet committed beyond which the collector answers 429.
    pub max_inflight_ingest_bytes: usize,
    /// Memory each materialized view keeps aggregate states in; states beyond it are read
    /// back from RocksDB when an epoch needs them.
    pub view_state_cache_bytes: usize,
    /// PEM certificate chain for TLS on the Postgres port; with `tls_key`, clients may (and
    /// with `sslmode=require` must) connect over TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// How clients authenticate: `trust` (any user name) or `scram` (passwords).
    pub auth: crate::auth::AuthMode,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./weir-data"),
            pg_listen: "127.0.0.1:4566".into(),
            http_listen: "127.0.0.1:8080".into(),
            query_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            max_body_bytes: 10 << 20,
            max_inflight_ingest_bytes: 256 << 20,
            view_state_cache_bytes: 64 << 20,
            tls_cert: None,
            tls_key: None,
            auth: crate::auth::AuthMode::Trust,
        }
    }
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with its location.
        message: String,
    },
}

impl Config {
    /// The defaults overridden by the TOML file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.toml");
        std::fs::write(&path, "pg_listen = \"127.0.0.1:6000\"\n").unwrap();
        let config = Config::from_file(&path).unwrap();
        assert_eq!(config.pg_listen, "127.0.0.1:6000");
        assert_eq!(config.http_listen, Config::default().http_listen);

        std::fs::write(&path, "pg_listn = \"x\"\n").unwrap();
        let err = Config::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("pg_listn"), "{err}");
    }
}
