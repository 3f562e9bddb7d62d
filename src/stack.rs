//! The stack of every thread that handles statements: the network runtime's (parsing, client
//! rewrites, planning), the query runtime's (optimizing, executing, maintaining views) and
//! their blocking pools.
//!
//! Those stages walk a statement's trees recursively, much of it in code no depth check can
//! reach (the derived `Drop`, `Clone`, `Hash` and `Display` of sqlparser's and DataFusion's
//! expressions; physical expressions evaluating their children). The parser refuses statements
//! nested deeper than [`weir_sql::depth::MAX_NESTING`] (54001, as Postgres past
//! `max_stack_depth`), and this stack holds every stage of the deepest statement it admits,
//! in a debug build, with room to spare; `tests/it/deep_statements.rs` sends statements at the
//! limit through each stage. Only the pages a thread touches are ever committed: a thread that
//! never nests deeply uses no more memory than with the 2 MiB default.

/// The stack size of the network and query runtimes' threads.
pub const STATEMENT_THREAD_STACK_BYTES: usize = 256 << 20;
