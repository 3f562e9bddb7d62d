//! Weir's SQL dialect.
//!
//! Every statement a client sends, on the simple or the extended protocol, is parsed here
//! first. [`parser::parse`] reads Weir's own statements (`FLUSH`; `CREATE SOURCE`,
//! `CREATE MATERIALIZED VIEW`, `CREATE ALERT` as they land) and hands everything else to
//! sqlparser's PostgreSQL dialect, the way DataFusion's `DFParser` wraps sqlparser. [`plan`]
//! turns DDL into catalog definitions. No I/O, no runtime: this crate tests without a server.

pub mod ast;
pub mod depth;
mod error;
pub mod parser;
pub mod plan;
mod users;

pub use datafusion::sql::sqlparser;
pub use error::SqlError;
pub use parser::{Statement, parse};
