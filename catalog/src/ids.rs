//! Object ids: stable across renames and restarts, never reused.

use serde::{Deserialize, Serialize};

/// The id of a catalog object. Ids are allocated from a persisted counter and never reused, so
/// data keyed by id (table rows, later view state) cannot be confused with a dropped object's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId(pub u64);

impl ObjectId {
    /// The id as big-endian bytes: the prefix of every storage key owned by this object, so an
    /// object's keys sort together.
    pub fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
