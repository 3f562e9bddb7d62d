//! Weir's integration tests: one binary (so the suite links once), each module a capability,
//! every test against a real `weir serve` process and real clients (tokio-postgres, psql, HTTP).

#[cfg(feature = "failpoints")]
mod auth;
mod backpressure;
mod connections;
#[cfg(feature = "failpoints")]
mod crash;
mod deep_statements;
mod grafana;
mod ingest;
mod ingest_crash;
mod jdbc;
mod kafka;
mod lifecycle;
mod metrics;
mod nexmark;
mod point_lookup;
mod postgres_client;
mod psql;
mod python_clients;
mod server;
mod sqllogictest;
mod tls;
mod views;
mod wire;
