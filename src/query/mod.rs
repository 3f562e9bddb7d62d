//! Running statements: DataFusion plans and executes every query and DML statement over
//! Weir's relations; Weir handles what DataFusion has no durable notion of (table DDL), session
//! settings and transaction control.
//!
//! Query execution runs on its own multi-threaded runtime (the "CPU runtime"), so a heavy query
//! never stalls the network runtime that serves other connections.

mod compat;
mod datetime_input;
mod ddl;
mod engine;
mod error;
mod latency;
mod monitor;
pub mod pg_catalog;
mod pg_semantics;
mod prepared;
pub mod provider;
mod result;
mod session;
mod session_commands;
mod session_functions;
pub mod sources;
mod untyped_literals;
mod users;
mod views;

pub use compat::parse_client_sql;
pub(crate) use datetime_input::named_zone;
pub use engine::{Engine, EngineConfig};
pub use error::QueryError;
pub use monitor::ViewGauges;
pub use pg_semantics::parse_bytea;
pub use prepared::Prepared;
pub use result::QueryResult;
pub use session::Session;
