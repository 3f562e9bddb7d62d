//! The bounded cache: evicted states read back, closed windows found by index.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use super::*;

const MINUTE: i64 = 60_000_000;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("g0", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("p0", DataType::Int64, true),
    ]))
}

fn partial(starts: &[i64], counts: &[i64]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(TimestampMicrosecondArray::from(starts.to_vec())),
            Arc::new(Int64Array::from(counts.to_vec())),
        ],
    )
    .unwrap()
}

#[test]
fn evicted_states_must_be_loaded_back_and_closed_windows_are_found_by_index() {
    let window = WindowEnd {
        group_column: 0,
        plus_ms: 60_000,
    };
    // Room for about one state.
    let mut states = GroupStates::new(schema(), 1, vec![Merge::Sum], Some(window), 200);
    states.begin_epoch();
    let (batch, keys) = states
        .keyed(&partial(&[0, MINUTE, 2 * MINUTE], &[1, 2, 3]))
        .unwrap();
    states.merge(&batch, &keys).unwrap();
    states.evict(true);
    assert_eq!(
        states.counts().1,
        3,
        "the current epoch's states stay while its write may be in flight"
    );
    states.evict(false);
    let (groups, cached) = states.counts();
    assert_eq!(groups, 3, "every group stays indexed");
    assert!(
        cached < 3,
        "the cache shed states beyond its size: {cached} left"
    );
    let missing = states.missing(&keys);
    assert_eq!(missing.len(), 3 - cached);
    // Merging into a group whose state is stored but not loaded is refused, not a reset.
    let (batch, again) = states
        .keyed(&partial(&[missing_start(&missing[0])], &[5]))
        .unwrap();
    assert!(states.merge(&batch, &again).is_err());
    // Loaded back (from what an epoch stored), it merges on.
    let stored = states_of(&missing);
    states
        .insert_loaded(
            stored
                .into_iter()
                .map(|(key, row)| LoadedGroup {
                    key,
                    row,
                    distinct: Vec::new(),
                })
                .collect(),
        )
        .unwrap();
    assert!(states.missing(&keys).is_empty());
    states.merge(&batch, &again).unwrap();

    assert_eq!(states.closed(MINUTE - 1), Vec::<Vec<u8>>::new());
    assert_eq!(states.closed(MINUTE), vec![keys[0].clone()]);
    assert_eq!(states.closed(2 * MINUTE + 1).len(), 2);
    states.remove(&states.closed(2 * MINUTE));
    assert_eq!(states.counts().0, 1);
}

/// The start of the window a one-timestamp group key holds.
fn missing_start(key: &[u8]) -> i64 {
    [0, MINUTE, 2 * MINUTE]
        .into_iter()
        .find(|&t| group_keys(&partial(&[t], &[0]), 1).unwrap()[0] == key)
        .unwrap()
}

/// What storage would hold for these groups: their state rows as merged above.
fn states_of(keys: &[Vec<u8>]) -> Vec<(Vec<u8>, RecordBatch)> {
    keys.iter()
        .map(|key| {
            let start = missing_start(key);
            let count = start / MINUTE + 1;
            (key.clone(), partial(&[start], &[count]))
        })
        .collect()
}
