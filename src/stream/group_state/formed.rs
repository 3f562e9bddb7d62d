//! Groups formed whole from others: sessions that swallowed others, and bounded sessions
//! formed again from their atoms.

use datafusion::common::{HashMap, Result, ScalarValue};
use datafusion::error::DataFusionError;
use weir_sql::plan::Merge;

use super::{DistinctSet, GroupStates, merge_states};

impl GroupStates {
    /// Merges the states of the groups `from` (all in the cache) into the group `into` whose
    /// group columns hold `key_values`, and forgets them: a session that grew backward or
    /// swallowed others is a group of its own, or keeps the key of one of them (`into` may be
    /// among `from`). Its `count(DISTINCT)` sets are the union of theirs, all written again
    /// under its key.
    pub fn absorb(
        &mut self,
        from: &[Vec<u8>],
        into: Vec<u8>,
        key_values: &[ScalarValue],
    ) -> Result<()> {
        let (values, distinct) = self.combined(from, key_values)?;
        let created = self.created_of(&into);
        self.remove(from);
        self.put(into, values, distinct, created);
        Ok(())
    }

    /// Makes the state of the group `into` (group columns `key_values`) the merge of the
    /// states of `parts` in `from` (all in its cache), whatever it was: a bounded session
    /// formed again from its atoms. Its sets are written again under its key; it only ever
    /// gains values, so the chunks it has stored stay true.
    pub fn rebuild(
        &mut self,
        into: Vec<u8>,
        key_values: &[ScalarValue],
        from: &GroupStates,
        parts: &[Vec<u8>],
    ) -> Result<()> {
        let (values, distinct) = from.combined(parts, key_values)?;
        let created = self.created_of(&into);
        self.remove(std::slice::from_ref(&into));
        self.put(into, values, distinct, created);
        Ok(())
    }

    /// The merge of the cached states of `keys`, with `key_values` for group columns, and the
    /// union of their sets.
    fn combined(
        &self,
        keys: &[Vec<u8>],
        key_values: &[ScalarValue],
    ) -> Result<(Vec<ScalarValue>, HashMap<usize, DistinctSet>)> {
        let mut values = key_values.to_vec();
        for (i, merge) in self.merges.iter().enumerate() {
            values.push(match merge {
                Merge::Distinct => ScalarValue::Int64(Some(0)),
                _ => ScalarValue::try_from(self.schema.field(self.groups + i).data_type())?,
            });
        }
        let mut distinct: HashMap<usize, DistinctSet> = HashMap::new();
        for key in keys {
            let cached = self.cache.get(key).ok_or_else(|| {
                DataFusionError::Internal("a group was merged before it was loaded".into())
            })?;
            merge_states(&self.merges, self.groups, &mut values, &cached.values)?;
            for (merge, set) in &cached.distinct {
                distinct.entry(*merge).or_default().union(set);
            }
        }
        Ok((values, distinct))
    }

    /// The epoch a group was made in, for a group about to be made again under its key: a
    /// stored group keeps its standing (its stored state is still there to replace).
    fn created_of(&self, key: &[u8]) -> u64 {
        if self.index.contains_key(key) {
            self.cache.get(key).map_or(0, |cached| cached.created)
        } else {
            self.clock
        }
    }

    /// Caches and indexes a group made whole (its sets all unstored).
    fn put(
        &mut self,
        into: Vec<u8>,
        mut values: Vec<ScalarValue>,
        distinct: HashMap<usize, DistinctSet>,
        created: u64,
    ) {
        let mut set_bytes = 0;
        for (merge, set) in &distinct {
            values[self.groups + merge] = ScalarValue::Int64(Some(set.len() as i64));
            set_bytes += set.bytes();
            if set.has_unstored() {
                self.unstored.push((into.clone(), *merge));
            }
        }
        let end = self.end_of(&values);
        self.add_to_index(into.clone(), end);
        self.cache_insert(into, values, distinct, set_bytes, created);
    }
}
