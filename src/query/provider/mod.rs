//! DataFusion `TableProvider`s over Weir's storage, one per kind of relation.

mod source;
mod table;

pub use source::SourceTable;
pub use table::ReferenceTable;
