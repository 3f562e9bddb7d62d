//! Planning of Weir's DDL into catalog definitions. Queries and DML are planned by DataFusion
//! in the server; what lands here is what DataFusion has no notion of (durable tables, and
//! later sources, views and alerts).

mod aggregates;
mod create_source;
mod create_table;
mod duration;
mod names;
mod nexmark_options;
mod session;
mod view;
mod window;

pub use create_source::{CreateSourcePlan, plan_create_source};
pub use create_table::{CreateTablePlan, plan_create_table};
pub use duration::parse_duration_ms;
pub use names::{DEFAULT_SCHEMA, object_name};
pub use view::{
    DistinctValues, Merge, SessionKeys, Sketch, ViewQuery, WindowEnd, WindowSpec, plan_view_query,
};
