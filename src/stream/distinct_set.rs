//! A group's `count(DISTINCT)` set.
//!
//! The values live in one append-only arena, each as a 4-byte big-endian length and its
//! bytes, which is also how they are stored; a hash table holds where each starts. A value
//! costs no allocation of its own, and the values added since the set was last stored are the
//! arena's tail, stored as they are as one chunk.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// Bytes of bookkeeping a value costs beyond its own: its length prefix and its table slot.
const VALUE_OVERHEAD: usize = 4 + std::mem::size_of::<usize>() + 1;

/// The distinct values of one group's `count(DISTINCT)`.
#[derive(Debug, Default)]
pub struct DistinctSet {
    arena: Vec<u8>,
    starts: HashTable<usize>,
    hasher: DefaultHashBuilder,
    /// How much of `arena` is stored.
    stored: usize,
}

impl DistinctSet {
    /// Adds `value`; returns whether it was new, and the bytes the set grew by.
    pub fn insert(&mut self, value: &[u8]) -> Option<usize> {
        let Self {
            arena,
            starts,
            hasher,
            ..
        } = self;
        let hash = hasher.hash_one(value);
        if starts
            .find(hash, |&start| value_at(arena, start) == value)
            .is_some()
        {
            return None;
        }
        let start = arena.len();
        arena.extend((value.len() as u32).to_be_bytes());
        arena.extend_from_slice(value);
        starts.insert_unique(hash, start, |&start| {
            hasher.hash_one(value_at(arena, start))
        });
        Some(value.len() + VALUE_OVERHEAD)
    }

    /// How many values the set holds.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Roughly the bytes the set takes, as [`Self::insert`] counts them.
    pub fn bytes(&self) -> usize {
        self.arena.len() + self.starts.len() * (VALUE_OVERHEAD - 4)
    }

    /// Whether values were added since the set was last stored.
    pub fn has_unstored(&self) -> bool {
        self.stored < self.arena.len()
    }

    /// The values added since the set was last stored, as one stored chunk; they count as
    /// stored from now on.
    pub fn take_unstored(&mut self) -> Vec<u8> {
        let chunk = self.arena[self.stored..].to_vec();
        self.stored = self.arena.len();
        chunk
    }

    /// Adds the values of `other` (as not stored: they join a new group's set). Returns how
    /// many were new and the bytes the set grew by.
    pub fn union(&mut self, other: &DistinctSet) -> (i64, usize) {
        let (mut added, mut grew) = (0, 0);
        let mut at = 0;
        while at < other.arena.len() {
            let value = value_at(&other.arena, at);
            at += 4 + value.len();
            if let Some(bytes) = self.insert(value) {
                added += 1;
                grew += bytes;
            }
        }
        (added, grew)
    }

    /// Adds the values of a chunk read back from storage, which are stored already. Returns
    /// the bytes the set grew by.
    pub fn insert_stored(&mut self, chunk: &[u8]) -> Result<usize, String> {
        let mut grew = 0;
        let mut rest = chunk;
        while !rest.is_empty() {
            let len = rest
                .get(..4)
                .ok_or("a distinct-value chunk ends inside a length")?;
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let value = rest
                .get(4..4 + len)
                .ok_or("a distinct-value chunk ends inside a value")?;
            grew += self.insert(value).unwrap_or(0);
            rest = &rest[4 + len..];
        }
        self.stored = self.arena.len();
        Ok(grew)
    }
}

fn value_at(arena: &[u8], start: usize) -> &[u8] {
    let len = u32::from_be_bytes(
        arena[start..start + 4]
            .try_into()
            .expect("a length prefix is 4 bytes"),
    ) as usize;
    &arena[start + 4..start + 4 + len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_kept_once_and_stored_as_chunks() {
        let mut set = DistinctSet::default();
        assert!(set.insert(b"a").is_some());
        assert!(set.insert(b"bc").is_some());
        assert!(set.insert(b"a").is_none(), "a value is counted once");
        assert!(set.insert(b"").is_some(), "an empty value is a value");
        assert_eq!(set.len(), 3);
        assert!(set.has_unstored());
        let chunk = set.take_unstored();
        assert_eq!(
            chunk,
            [&[0, 0, 0, 1][..], b"a", &[0, 0, 0, 2], b"bc", &[0, 0, 0, 0]].concat()
        );
        assert!(!set.has_unstored());
        set.insert(b"d");
        assert_eq!(set.take_unstored(), [&[0, 0, 0, 1][..], b"d"].concat());

        let mut loaded = DistinctSet::default();
        loaded.insert_stored(&chunk).unwrap();
        assert_eq!(loaded.len(), 3);
        assert!(!loaded.has_unstored(), "values read back are stored");
        assert!(loaded.insert(b"bc").is_none());
        assert!(
            loaded.insert_stored(&[0, 0, 0, 5, b'x']).is_err(),
            "a truncated chunk is refused"
        );

        let mut merged = DistinctSet::default();
        merged.insert(b"a");
        merged.take_unstored();
        let (added, _) = merged.union(&loaded);
        assert_eq!(
            (added, merged.len()),
            (2, 3),
            "bc and the empty value are new"
        );
        assert_eq!(
            merged.take_unstored(),
            [&[0, 0, 0, 2][..], b"bc", &[0, 0, 0, 0]].concat()
        );
    }
}
