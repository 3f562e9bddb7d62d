//! Weir: a SQL-first streaming database for real-time analytics.
//!
//! The layers, in the order a statement meets them: [`server`] (Postgres wire, HTTP) →
//! `weir_sql` (parsing, DDL planning) → [`query`] (DataFusion over Weir's relations) →
//! [`storage`] (RocksDB). [`stream`] keeps materialized views up to date from source logs.
//! `weir_catalog` defines the objects all of them talk about; [`auth`] who may connect.
//! See `docs/architecture.md`.

pub mod auth;
pub mod config;
pub mod connectors;
pub mod failpoint;
pub mod functions;
pub mod query;
pub mod server;
pub mod stack;
pub mod storage;
pub mod stream;
pub mod telemetry;
