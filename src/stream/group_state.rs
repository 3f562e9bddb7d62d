//! Per-group aggregate state: the `g` (group key) and `p` (partial state) columns of a view's
//! partial query, merged group by group as epochs bring new partial rows.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{Result, ScalarValue};
use datafusion::error::DataFusionError;
use weir_sql::plan::{Merge, WindowEnd};

use crate::storage::keys::append_nullable_column;

/// Every group's state, in memory (loaded from RocksDB when the view starts).
#[derive(Debug)]
pub struct GroupStates {
    /// State rows: the `g` columns, then one per merge (a `count(DISTINCT)` column holds the
    /// count, an `Int64`).
    schema: SchemaRef,
    groups: usize,
    merges: Vec<Merge>,
    states: HashMap<Vec<u8>, Vec<ScalarValue>>,
    /// For `count(DISTINCT)` columns: each group's set of values seen, by merge index.
    distinct: HashMap<Vec<u8>, HashMap<usize, HashSet<ScalarValue>>>,
    /// Values that joined a group's set since [`Self::take_new_distinct`].
    new_distinct: Vec<DistinctValue>,
}

/// A value of a group's `count(DISTINCT)` set: group key, merge index, value.
pub type DistinctValue = (Vec<u8>, usize, ScalarValue);

impl GroupStates {
    /// Empty states for rows of `schema`: `groups` key columns, then one column per merge.
    pub fn new(schema: SchemaRef, groups: usize, merges: Vec<Merge>) -> Self {
        debug_assert_eq!(schema.fields().len(), groups + merges.len());
        Self {
            schema,
            groups,
            merges,
            states: HashMap::new(),
            distinct: HashMap::new(),
            new_distinct: Vec::new(),
        }
    }

    /// Restores stored `count(DISTINCT)` sets (their counts are in the state rows).
    pub fn load_distinct(&mut self, values: impl IntoIterator<Item = DistinctValue>) {
        for (key, column, value) in values {
            self.distinct
                .entry(key)
                .or_default()
                .entry(column)
                .or_default()
                .insert(value);
        }
    }

    /// The values that joined a set since the last call, to be stored with the epoch.
    pub fn take_new_distinct(&mut self) -> Vec<DistinctValue> {
        std::mem::take(&mut self.new_distinct)
    }

    /// Restores stored states.
    pub fn load(&mut self, keys: Vec<Vec<u8>>, batch: &RecordBatch) -> Result<()> {
        for (row, key) in keys.into_iter().enumerate() {
            self.states.insert(key, row_values(batch, row)?);
        }
        Ok(())
    }

    /// Merges the rows of a partial batch into the states; returns the keys of the groups
    /// of its rows, in order (a partial batch holds each group once: it is a `GROUP BY`
    /// result; callers merging several batches dedupe). Columns are cast to the state's types,
    /// but for `count(DISTINCT)` ones, which arrive as lists of the epoch's distinct values.
    pub fn merge(&mut self, partial: &RecordBatch) -> Result<Vec<Vec<u8>>> {
        let columns = partial
            .columns()
            .iter()
            .zip(self.schema.fields())
            .enumerate()
            .map(|(c, (column, field))| {
                if self.is_distinct(c) {
                    Ok(column.clone())
                } else {
                    Ok(datafusion::arrow::compute::cast(column, field.data_type())?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let partial = RecordBatch::try_new(
            Arc::new(datafusion::arrow::datatypes::Schema::new(
                columns
                    .iter()
                    .zip(self.schema.fields())
                    .map(|(c, f)| f.as_ref().clone().with_data_type(c.data_type().clone()))
                    .collect::<Vec<_>>(),
            )),
            columns,
        )?;
        let keys = group_keys(&partial, self.groups)?;
        let mut changed = Vec::with_capacity(keys.len());
        for (row, key) in keys.into_iter().enumerate() {
            let incoming = row_values(&partial, row)?;
            let state = match self.states.entry(key.clone()) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    // The group's keys, and typed "nothing yet" for the merge below to fill.
                    let mut fresh = incoming[..self.groups].to_vec();
                    for field in &self.schema.fields()[self.groups..] {
                        fresh.push(ScalarValue::try_from(field.data_type())?);
                    }
                    entry.insert(fresh)
                }
            };
            for (i, merge) in self.merges.iter().enumerate() {
                let at = self.groups + i;
                if *merge == Merge::Distinct {
                    let set = self
                        .distinct
                        .entry(key.clone())
                        .or_default()
                        .entry(i)
                        .or_default();
                    let mut count = match &state[at] {
                        ScalarValue::Int64(Some(n)) => *n,
                        _ => 0,
                    };
                    if let ScalarValue::List(list) = &incoming[at]
                        && !list.is_null(0)
                    {
                        let values = list.value(0);
                        for j in 0..values.len() {
                            let value = ScalarValue::try_from_array(&values, j)?;
                            if set.insert(value.clone()) {
                                count += 1;
                                self.new_distinct.push((key.clone(), i, value));
                            }
                        }
                    }
                    state[at] = ScalarValue::Int64(Some(count));
                } else {
                    state[at] = merge_value(*merge, &state[at], &incoming[at])?;
                }
            }
            changed.push(key);
        }
        Ok(changed)
    }

    fn is_distinct(&self, column: usize) -> bool {
        column >= self.groups && self.merges[column - self.groups] == Merge::Distinct
    }

    /// The keys of the groups whose window ends at or before `watermark` (µs): no on-time
    /// event can change them any more.
    pub fn closed(&self, end: WindowEnd, watermark: i64) -> Vec<Vec<u8>> {
        let plus_us = end.plus_ms as i64 * 1000;
        self.states
            .iter()
            .filter(|(_, state)| match &state[end.group_column] {
                ScalarValue::TimestampMicrosecond(Some(t), _) => {
                    t.saturating_add(plus_us) <= watermark
                }
                _ => false,
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Forgets the groups of `keys`.
    pub fn remove(&mut self, keys: &[Vec<u8>]) {
        for key in keys {
            self.states.remove(key);
            self.distinct.remove(key);
        }
    }

    /// The states of `keys` as one batch, in that order.
    pub fn batch(&self, keys: &[Vec<u8>]) -> Result<RecordBatch> {
        if keys.is_empty() {
            return Ok(RecordBatch::new_empty(self.schema.clone()));
        }
        let columns = (0..self.schema.fields().len())
            .map(|c| ScalarValue::iter_to_array(keys.iter().map(|k| self.states[k][c].clone())))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let columns = columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(c, f)| datafusion::arrow::compute::cast(&c, f.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// The memcomparable key of each row's first `groups` columns.
pub fn group_keys(batch: &RecordBatch, groups: usize) -> Result<Vec<Vec<u8>>> {
    let mut keys = vec![Vec::new(); batch.num_rows()];
    for column in &batch.columns()[..groups] {
        append_nullable_column(&mut keys, column)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
    }
    Ok(keys)
}

fn row_values(batch: &RecordBatch, row: usize) -> Result<Vec<ScalarValue>> {
    batch
        .columns()
        .iter()
        .map(|c| ScalarValue::try_from_array(c, row))
        .collect()
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
        Merge::Distinct => unreachable!("distinct counts are merged through their sets"),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn merges_sums_minimums_and_maximums_per_group_with_null_keys() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("g0", DataType::Utf8, true),
            Field::new("p0", DataType::Int64, true),
            Field::new("p1", DataType::Float64, true),
            Field::new("p2", DataType::Float64, true),
        ]));
        let batch = |g: Vec<Option<&str>>, c: Vec<i64>, lo: Vec<Option<f64>>, hi: Vec<f64>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(g)),
                    Arc::new(Int64Array::from(c)),
                    Arc::new(Float64Array::from(lo)),
                    Arc::new(Float64Array::from(hi)),
                ],
            )
            .unwrap()
        };
        let mut states =
            GroupStates::new(schema.clone(), 1, vec![Merge::Sum, Merge::Min, Merge::Max]);
        let changed = states
            .merge(&batch(
                vec![Some("eu"), None],
                vec![2, 1],
                vec![Some(3.0), None],
                vec![5.0, 1.0],
            ))
            .unwrap();
        assert_eq!(changed.len(), 2);
        let changed = states
            .merge(&batch(
                vec![Some("eu")],
                vec![4],
                vec![Some(1.0)],
                vec![4.0],
            ))
            .unwrap();
        let merged = states.batch(&changed).unwrap();
        assert_eq!(
            merged,
            batch(vec![Some("eu")], vec![6], vec![Some(1.0)], vec![5.0])
        );
        let null_group = group_keys(&batch(vec![None], vec![0], vec![None], vec![0.0]), 1).unwrap();
        assert_eq!(
            states.batch(&null_group).unwrap(),
            batch(vec![None], vec![1], vec![None], vec![1.0]),
            "a NULL group key is a group of its own"
        );
    }
}
