//! Connectors turn outside input into Arrow batches in a source's schema, plus a reason for
//! every event they refuse. They append through [`crate::storage::SourceLog`], like `INSERT`.

pub mod backpressure;
pub mod enrich;
pub mod http;
pub mod json;
pub mod kafka;
pub mod nexmark;
pub mod pull;
pub mod pull_status;
