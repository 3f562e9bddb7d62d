//! Per-group aggregate state: the `g` (group key) and `p` (partial state) columns of a view's
//! partial query, merged group by group as epochs bring new partial rows.
//!
//! States are stored in RocksDB with every epoch (write-through); memory holds a bounded cache
//! of them (DESIGN.md §5). What stays in memory for every group is an index entry: its key and
//! where its window ends, so the server knows which groups exist and which the watermark
//! closes without their states. A group not in the cache is read back before an epoch merges
//! into it or emits it; after each commit the least recently used states leave the cache until
//! it fits its size.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{Row, RowConverter, SortField};
use datafusion::common::{HashMap, HashSet, Result, ScalarValue};
use datafusion::error::DataFusionError;
use weir_sql::plan::{Merge, WindowEnd};

use super::distinct_set::DistinctSet;
use crate::storage::keys::append_nullable_column;

/// The groups of a view: an index of all, and a cache of their states.
#[derive(Debug)]
pub struct GroupStates {
    /// State rows: the `g` columns, then one per merge (a `count(DISTINCT)` column holds the
    /// count, an `Int64`).
    schema: SchemaRef,
    groups: usize,
    merges: Vec<Merge>,
    /// Where a group's window ends, read off its key columns, for windowed views.
    window_end: Option<WindowEnd>,
    /// The `g` columns a group's key encodes: all of them, but a SESSION view's end.
    key_columns: Vec<usize>,
    /// A SESSION view's `window_end` column: a group column outside the key, which moves to
    /// the incoming value as the session grows (its key, from its start, stays).
    moving_end: Option<usize>,
    /// Bytes every key starts with: a bounded SESSION view's atoms share its state's
    /// keyspace with its sessions, told apart by this.
    key_prefix: Vec<u8>,
    /// Every group with state, and its window end (µs; `i64::MAX` without a window).
    index: HashMap<Vec<u8>, i64>,
    /// The same, ordered by window end, to find closed windows without a scan.
    by_end: BTreeSet<(i64, Vec<u8>)>,
    cache: HashMap<Vec<u8>, Cached>,
    /// Bytes the cached states take, roughly.
    cached_bytes: usize,
    /// The size the cache is brought back to after each epoch.
    capacity_bytes: usize,
    /// Counts epochs, to find the least recently used states and those of the current one.
    clock: u64,
    /// The groups (key, merge index) whose distinct sets have values not stored yet.
    unstored: Vec<(Vec<u8>, usize)>,
}

/// One group's state in memory.
#[derive(Debug)]
struct Cached {
    values: Vec<ScalarValue>,
    /// For `count(DISTINCT)` columns: the set of values seen (in Weir's row encoding, as they
    /// are stored), by merge index.
    distinct: HashMap<usize, DistinctSet>,
    /// Bytes of the values in `distinct`.
    set_bytes: usize,
    bytes: usize,
    used: u64,
    /// The epoch that made the group (0: it was stored before this process read it).
    created: u64,
}

/// Values new to one group's `count(DISTINCT)` set in an epoch: group key, merge index, the
/// values (row-encoded) as one stored chunk.
pub type NewDistinct = (Vec<u8>, usize, Vec<u8>);

/// A stored group read back into the cache: its state row and its distinct values.
pub struct LoadedGroup {
    /// The group key.
    pub key: Vec<u8>,
    /// Its state row, alone in a batch.
    pub row: RecordBatch,
    /// Its `count(DISTINCT)` values: merge index, and a chunk of values as stored.
    pub distinct: Vec<(usize, Box<[u8]>)>,
}

/// Rough per-entry bookkeeping cost beyond the values themselves.
const ENTRY_OVERHEAD: usize = 96;

impl GroupStates {
    /// Empty states for rows of `schema`: `groups` key columns, then one column per merge.
    pub fn new(
        schema: SchemaRef,
        groups: usize,
        merges: Vec<Merge>,
        window_end: Option<WindowEnd>,
        capacity_bytes: usize,
    ) -> Self {
        debug_assert_eq!(schema.fields().len(), groups + merges.len());
        Self {
            schema,
            key_columns: (0..groups).collect(),
            moving_end: None,
            key_prefix: Vec::new(),
            groups,
            merges,
            window_end,
            index: HashMap::new(),
            by_end: BTreeSet::new(),
            cache: HashMap::new(),
            cached_bytes: 0,
            capacity_bytes,
            clock: 0,
            unstored: Vec::new(),
        }
    }

    /// States of a SESSION view: `end_column` is left out of group keys and follows each
    /// session's growth, so a session keeps its key (and its row) while it grows forward.
    pub fn with_moving_end(mut self, end_column: usize) -> Self {
        self.key_columns.retain(|&c| c != end_column);
        self.moving_end = Some(end_column);
        self
    }

    /// States whose keys all start with `prefix`.
    pub fn with_key_prefix(mut self, prefix: &[u8]) -> Self {
        self.key_prefix = prefix.to_vec();
        self
    }

    /// The same kind of states with none in them: what a view starts from before indexing.
    pub fn emptied(&self) -> Self {
        let mut emptied = Self::new(
            self.schema.clone(),
            self.groups,
            self.merges.clone(),
            self.window_end,
            self.capacity_bytes,
        );
        emptied.key_columns = self.key_columns.clone();
        emptied.moving_end = self.moving_end;
        emptied.key_prefix = self.key_prefix.clone();
        emptied
    }

    /// The group keys of the rows of `batch` (in the state's types).
    pub fn keys_of(&self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
        let mut keys = keys_of(batch, &self.key_columns)?;
        if !self.key_prefix.is_empty() {
            for key in &mut keys {
                key.splice(0..0, self.key_prefix.iter().copied());
            }
        }
        Ok(keys)
    }

    /// Indexes stored state rows (at start; `batch` holds at least their key columns): their
    /// groups exist, and their states stay on disk until an epoch needs them.
    pub fn index_stored(&mut self, keys: Vec<Vec<u8>>, batch: &RecordBatch) -> Result<()> {
        for (row, key) in keys.into_iter().enumerate() {
            let end = self.end_of(&row_values(batch, row)?);
            self.add_to_index(key, end);
        }
        Ok(())
    }

    /// Of `keys`, those with stored state that is not in the cache.
    pub fn missing(&self, keys: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut seen = HashSet::new();
        keys.iter()
            .filter(|k| self.index.contains_key(*k) && !self.cache.contains_key(*k))
            .filter(|k| seen.insert(*k))
            .cloned()
            .collect()
    }

    /// Puts groups read back from storage into the cache.
    pub fn insert_loaded(&mut self, groups: Vec<LoadedGroup>) -> Result<()> {
        for group in groups {
            let values = row_values(&self.cast(&group.row)?, 0)?;
            let mut distinct: HashMap<usize, DistinctSet> = HashMap::new();
            let mut set_bytes = 0;
            for (column, chunk) in group.distinct {
                set_bytes += distinct
                    .entry(column)
                    .or_default()
                    .insert_stored(&chunk)
                    .map_err(|e| DataFusionError::Internal(format!("view state: {e}")))?;
            }
            // Read back: made before this process read it.
            self.cache_insert(group.key, values, distinct, set_bytes, 0);
        }
        Ok(())
    }

    /// The values that joined a set since the last call, to be stored with the epoch (but for
    /// groups removed since: their sets are gone).
    pub fn take_new_distinct(&mut self) -> Vec<NewDistinct> {
        let unstored = std::mem::take(&mut self.unstored);
        unstored
            .into_iter()
            .filter_map(|(key, merge)| {
                let set = self.cache.get_mut(&key)?.distinct.get_mut(&merge)?;
                let chunk = set.take_unstored();
                Some((key, merge, chunk))
            })
            .collect()
    }

    /// A partial batch with its columns cast to the state's types, and its rows' group keys.
    pub fn keyed(&self, partial: &RecordBatch) -> Result<(RecordBatch, Vec<Vec<u8>>)> {
        let partial = self.cast(partial)?;
        let keys = self.keys_of(&partial)?;
        Ok((partial, keys))
    }

    /// Merges the rows of a [`Self::keyed`] partial batch into the states. A partial batch
    /// holds each group once (it is a `GROUP BY` result). Groups with stored state must be in
    /// the cache ([`Self::missing`]).
    pub fn merge(&mut self, partial: &RecordBatch, keys: &[Vec<u8>]) -> Result<()> {
        for (row, key) in keys.iter().enumerate() {
            let incoming = row_values(partial, row)?;
            let state = match self.cache.get_mut(key) {
                Some(state) => {
                    if let Some(end) = self.moving_end
                        && state.values[end] != incoming[end]
                    {
                        state.values[end] = incoming[end].clone();
                        let moved = end_of(self.window_end, &state.values);
                        if let Some(old) = self.index.insert(key.clone(), moved) {
                            self.by_end.remove(&(old, key.clone()));
                        }
                        self.by_end.insert((moved, key.clone()));
                    }
                    merge_states(&self.merges, self.groups, &mut state.values, &incoming)?;
                    state
                }
                None => {
                    if self.index.contains_key(key) {
                        return Err(DataFusionError::Internal(
                            "a stored group was merged before it was loaded".into(),
                        ));
                    }
                    // A new group: merged into nothing, its partial states are its states.
                    let mut values = incoming;
                    for (i, merge) in self.merges.iter().enumerate() {
                        if *merge == Merge::Distinct {
                            values[self.groups + i] = ScalarValue::Int64(Some(0));
                        }
                    }
                    let end = self.end_of(&values);
                    self.add_to_index(key.clone(), end);
                    self.cache
                        .entry(key.clone())
                        .insert(Cached {
                            values,
                            distinct: HashMap::new(),
                            set_bytes: 0,
                            bytes: 0,
                            used: self.clock,
                            created: self.clock,
                        })
                        .into_mut()
                }
            };
            state.used = self.clock;
            let bytes = state.measure(key.len());
            self.cached_bytes = self.cached_bytes + bytes - state.bytes;
            state.bytes = bytes;
        }
        Ok(())
    }

    /// Adds an epoch's distinct (group, value) pairs of the `count(DISTINCT)` at merge index
    /// `merge`: rows of the `g` columns, then the value. Their groups are in the cache (the
    /// epoch's partial rows, merged first, hold every group its events touched).
    pub fn add_distinct(&mut self, merge: usize, pairs: &RecordBatch) -> Result<()> {
        let values = encode_values(pairs.column(self.groups))?;
        let at = self.groups + merge;
        // A batch holds many values of few groups: its rows are gathered by group (hashing
        // Arrow's row format, which is vectorized), and each group's key and state are made
        // and looked up once.
        for rows in rows_by_group(&pairs.columns()[..self.groups], pairs.num_rows())? {
            let key = self.group_key(pairs, rows[0] as usize)?;
            let state = self.cache.get_mut(&key).ok_or_else(|| {
                DataFusionError::Internal("a distinct value of a group without state".into())
            })?;
            let set = state.distinct.entry(merge).or_default();
            let was_stored = !set.has_unstored();
            let mut grew = 0;
            let mut added = 0;
            for row in rows {
                if let Some(bytes) = set.insert(&values[row as usize]) {
                    grew += bytes;
                    added += 1;
                }
            }
            if added == 0 {
                continue;
            }
            state.set_bytes += grew;
            state.bytes += grew;
            self.cached_bytes += grew;
            if let ScalarValue::Int64(count) = &mut state.values[at] {
                *count = Some(count.unwrap_or(0) + added);
            }
            if was_stored {
                self.unstored.push((key, merge));
            }
        }
        Ok(())
    }

    /// The group key of `row` of a batch whose first columns are group columns, in the
    /// state's types.
    fn group_key(&self, batch: &RecordBatch, row: usize) -> Result<Vec<u8>> {
        let mut key = vec![self.key_prefix.clone()];
        for &c in &self.key_columns {
            let value = datafusion::arrow::compute::cast(
                &batch.column(c).slice(row, 1),
                self.schema.field(c).data_type(),
            )?;
            append_nullable_column(&mut key, &value)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
        }
        Ok(key.pop().unwrap_or_default())
    }

    /// The keys of the groups whose window ends at or before `watermark` (µs): no on-time
    /// event can change them any more.
    pub fn closed(&self, watermark: i64) -> Vec<Vec<u8>> {
        if self.window_end.is_none() {
            return Vec::new();
        }
        self.by_end
            .range(..(watermark.saturating_add(1), Vec::new()))
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// The schema of state rows.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Whether the group of `key` has a stored state: every group does but those the current
    /// epoch made (an epoch stores the states of the groups it leaves open).
    pub fn stored(&self, key: &[u8]) -> bool {
        self.cache
            .get(key)
            .is_none_or(|cached| cached.created < self.clock)
    }

    /// Forgets the groups of `keys`.
    pub fn remove(&mut self, keys: &[Vec<u8>]) {
        for key in keys {
            if let Some(end) = self.index.remove(key) {
                self.by_end.remove(&(end, key.clone()));
            }
            if let Some(cached) = self.cache.remove(key) {
                self.cached_bytes -= cached.bytes;
            }
        }
    }

    /// The states of `keys` (all cached) as one batch, in that order.
    pub fn batch(&self, keys: &[Vec<u8>]) -> Result<RecordBatch> {
        if keys.is_empty() {
            return Ok(RecordBatch::new_empty(self.schema.clone()));
        }
        let cached = keys
            .iter()
            .map(|k| {
                self.cache.get(k).ok_or_else(|| {
                    DataFusionError::Internal(
                        "a group's state was used before it was loaded".into(),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let columns = (0..self.schema.fields().len())
            .map(|c| ScalarValue::iter_to_array(cached.iter().map(|s| s.values[c].clone())))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let columns = columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(c, f)| datafusion::arrow::compute::cast(&c, f.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }

    /// An epoch starts: the states it touches from now on are its own.
    pub fn begin_epoch(&mut self) {
        self.clock += 1;
    }

    /// Drops the least recently used states until the cache fits its size. Their groups stay
    /// indexed; their states are in storage (every epoch writes the states it changed), but
    /// for the current epoch's, when `keep_current` says its write may not have landed yet.
    pub fn evict(&mut self, keep_current: bool) {
        if self.cached_bytes <= self.capacity_bytes {
            return;
        }
        let mut by_use: Vec<(u64, Vec<u8>)> = self
            .cache
            .iter()
            .filter(|(_, cached)| !keep_current || cached.used < self.clock)
            .map(|(key, cached)| (cached.used, key.clone()))
            .collect();
        by_use.sort_unstable();
        // Down to three quarters, so a full cache does not evict at every epoch.
        let target = self.capacity_bytes / 4 * 3;
        for (_, key) in by_use {
            if self.cached_bytes <= target {
                break;
            }
            if let Some(cached) = self.cache.remove(&key) {
                self.cached_bytes -= cached.bytes;
            }
        }
    }

    /// Groups with state, and how many of their states are in memory.
    pub fn counts(&self) -> (usize, usize) {
        (self.index.len(), self.cache.len())
    }

    /// Caches a group's state, used now, made in epoch `created`.
    fn cache_insert(
        &mut self,
        key: Vec<u8>,
        values: Vec<ScalarValue>,
        distinct: HashMap<usize, DistinctSet>,
        set_bytes: usize,
        created: u64,
    ) {
        let mut cached = Cached {
            values,
            distinct,
            set_bytes,
            bytes: 0,
            used: self.clock,
            created,
        };
        cached.bytes = cached.measure(key.len());
        self.cached_bytes += cached.bytes;
        if let Some(old) = self.cache.insert(key, cached) {
            self.cached_bytes -= old.bytes;
        }
    }

    fn add_to_index(&mut self, key: Vec<u8>, end: i64) {
        if self.index.insert(key.clone(), end).is_none() {
            self.by_end.insert((end, key));
        }
    }

    /// Where the window of a group with these state values ends.
    fn end_of(&self, values: &[ScalarValue]) -> i64 {
        end_of(self.window_end, values)
    }

    /// `batch` with columns cast to the state's types.
    pub fn cast(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let columns = batch
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(|(column, field)| datafusion::arrow::compute::cast(column, field.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl Cached {
    /// Roughly the bytes this state takes.
    fn measure(&self, key_len: usize) -> usize {
        let values: usize = self.values.iter().map(ScalarValue::size).sum();
        ENTRY_OVERHEAD + 2 * key_len + values + self.set_bytes
    }
}

/// Each value of `values` in Weir's row encoding: how distinct sets hold and store them.
/// The row numbers of each group of the `len` rows of `columns` (equal values, nulls
/// equal), in order of first appearance.
fn rows_by_group(columns: &[ArrayRef], len: usize) -> Result<Vec<Vec<u32>>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if columns.is_empty() {
        return Ok(vec![(0..len as u32).collect()]);
    }
    let fields = columns
        .iter()
        .map(|c| SortField::new(c.data_type().clone()))
        .collect();
    let rows = RowConverter::new(fields)?.convert_columns(columns)?;
    let mut index: HashMap<Row<'_>, usize> = HashMap::new();
    let mut groups: Vec<Vec<u32>> = Vec::new();
    for i in 0..len {
        let group = *index.entry(rows.row(i)).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(i as u32);
    }
    Ok(groups)
}

fn encode_values(values: &ArrayRef) -> Result<Vec<Vec<u8>>> {
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        datafusion::arrow::datatypes::Field::new("v", values.data_type().clone(), true),
    ]));
    let rows = crate::storage::row_codec::encode_rows(&RecordBatch::try_new(
        schema,
        vec![values.clone()],
    )?)
    .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(rows)
}

/// Where the window of a group with these state values ends (µs; `i64::MAX`: never).
fn end_of(window_end: Option<WindowEnd>, values: &[ScalarValue]) -> i64 {
    let Some(end) = window_end else {
        return i64::MAX;
    };
    match &values[end.group_column] {
        ScalarValue::TimestampMicrosecond(Some(t), _) => {
            t.saturating_add(end.plus_ms as i64 * 1000)
        }
        // A group without a window start never closes.
        _ => i64::MAX,
    }
}

/// The memcomparable key of each row's first `groups` columns.
#[cfg(test)]
pub fn group_keys(batch: &RecordBatch, groups: usize) -> Result<Vec<Vec<u8>>> {
    keys_of(batch, &(0..groups).collect::<Vec<_>>())
}

/// The memcomparable key of each row's `columns`.
pub fn keys_of(batch: &RecordBatch, columns: &[usize]) -> Result<Vec<Vec<u8>>> {
    memcomparable_keys(columns.iter().map(|&c| batch.column(c)), batch.num_rows())
}

/// The memcomparable key of each of `rows` rows of `columns`, as group keys encode them.
pub fn memcomparable_keys<'a>(
    columns: impl IntoIterator<Item = &'a ArrayRef>,
    rows: usize,
) -> Result<Vec<Vec<u8>>> {
    let mut keys = vec![Vec::new(); rows];
    for column in columns {
        append_nullable_column(&mut keys, column)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
    }
    Ok(keys)
}

/// The values of one row of `batch`.
pub fn row_values(batch: &RecordBatch, row: usize) -> Result<Vec<ScalarValue>> {
    batch
        .columns()
        .iter()
        .map(|c| ScalarValue::try_from_array(c, row))
        .collect()
}

/// Merges the partial states of `from` into those of `into` (rows of `groups` key columns,
/// then one column per merge). Distinct counts are left alone: they grow with their sets.
fn merge_states(
    merges: &[Merge],
    groups: usize,
    into: &mut [ScalarValue],
    from: &[ScalarValue],
) -> Result<()> {
    for (i, merge) in merges.iter().enumerate() {
        let at = groups + i;
        if *merge != Merge::Distinct {
            into[at] = merge_value(*merge, &into[at], &from[at])?;
        }
    }
    Ok(())
}

/// Combines two partial states of one aggregate. NULL is "no value yet" for every merge.
fn merge_value(merge: Merge, old: &ScalarValue, new: &ScalarValue) -> Result<ScalarValue> {
    if new.is_null() {
        return Ok(old.clone());
    }
    if old.is_null() {
        return Ok(new.clone());
    }
    Ok(match merge {
        Merge::Sum => old.add(new)?,
        Merge::Min => {
            if new < old {
                new.clone()
            } else {
                old.clone()
            }
        }
        Merge::Max => {
            if new > old {
                new.clone()
            } else {
                old.clone()
            }
        }
        Merge::BitOr => match (old, new) {
            (ScalarValue::Int64(Some(old)), ScalarValue::Int64(Some(new))) => {
                ScalarValue::Int64(Some(old | new))
            }
            _ => {
                return Err(DataFusionError::Internal(format!(
                    "bit masks {old:?} and {new:?}"
                )));
            }
        },
        Merge::Sketch(sketch) => match (old, new) {
            (ScalarValue::Binary(Some(old)), ScalarValue::Binary(Some(new))) => {
                ScalarValue::Binary(Some(super::sketch::merge(sketch, old, new)?))
            }
            _ => {
                return Err(DataFusionError::Internal(format!(
                    "sketch states {old:?} and {new:?}"
                )));
            }
        },
        Merge::Distinct => unreachable!("distinct counts are merged through their sets"),
    })
}

mod formed;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod cache_tests;
