//! DataFusion `TableProvider`s over Weir's storage, one per kind of relation.

mod table;

pub use table::ReferenceTable;
