//! The dataflow that keeps materialized views up to date (DESIGN.md §3–5).
//!
//! Each view follows its source's log. An epoch reads the entries the view has not consumed,
//! runs the view's partial aggregate over them (DataFusion, vectorized), merges the partial
//! states into the stored per-group states, evaluates the view's select list over the groups
//! that changed, and commits state, rows and the new log offset in one atomic write. After a
//! crash a view resumes from its committed offset, so every accepted event counts exactly once.
//! Events behind the source's watermark are set aside as late events in the same commit.

mod distinct_set;
mod epoch_io;
mod epoch_plan;
mod group_state;
mod runner;
mod session;
mod sketch;
mod view;
mod watermark;

pub use runner::{Progress, ViewHandle, ViewProgress, spawn_view};
pub use view::ViewRunner;
