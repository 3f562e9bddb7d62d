//! Merging partial states per group.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Float64Array, Int64Array, StringArray};
use datafusion::arrow::datatypes::Int64Type;
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
    let mut states = GroupStates::new(
        schema.clone(),
        1,
        vec![Merge::Sum, Merge::Min, Merge::Max],
        None,
        usize::MAX,
    );
    let mut merge = |partial: RecordBatch| {
        let (partial, keys) = states.keyed(&partial).unwrap();
        states.merge(&partial, &keys).unwrap();
        keys
    };
    let changed = merge(batch(
        vec![Some("eu"), None],
        vec![2, 1],
        vec![Some(3.0), None],
        vec![5.0, 1.0],
    ));
    assert_eq!(changed.len(), 2);
    let changed = merge(batch(vec![Some("eu")], vec![4], vec![Some(1.0)], vec![4.0]));
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

#[test]
fn a_group_formed_again_from_parts_takes_their_merged_states_and_sets() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("g0", DataType::Utf8, true),
        Field::new("p0", DataType::Int64, true),
        Field::new("p1", DataType::Int64, true),
    ]));
    let rows = |g: Vec<&str>, n: Vec<i64>| {
        let len = g.len();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(g)),
                Arc::new(Int64Array::from(n)),
                Arc::new(Int64Array::from(vec![0; len])),
            ],
        )
        .unwrap()
    };
    let pairs = |g: Vec<&str>, v: Vec<&str>| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("g0", DataType::Utf8, true),
                Field::new("v", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(StringArray::from(g)),
                Arc::new(StringArray::from(v)),
            ],
        )
        .unwrap()
    };
    let merges = vec![Merge::Sum, Merge::Distinct];
    let mut parts = GroupStates::new(schema.clone(), 1, merges.clone(), None, usize::MAX)
        .with_key_prefix(&[0xFF]);
    let (partial, keys) = parts
        .keyed(&rows(vec!["a", "b", "c"], vec![1, 2, 4]))
        .unwrap();
    assert!(
        keys.iter().all(|k| k[0] == 0xFF),
        "part keys carry the prefix"
    );
    parts.merge(&partial, &keys).unwrap();
    parts
        .add_distinct(
            1,
            &pairs(vec!["a", "a", "b", "c"], vec!["x", "y", "y", "z"]),
        )
        .unwrap();
    let mut states = GroupStates::new(schema.clone(), 1, merges, None, usize::MAX);
    let (partial, into) = states.keyed(&rows(vec!["s"], vec![100])).unwrap();
    states.merge(&partial, &into).unwrap();
    states
        .add_distinct(1, &pairs(vec!["s"], vec!["old"]))
        .unwrap();
    states.take_new_distinct();
    // "s" is formed again from "a" and "b": what it held before is replaced.
    let key_values = [ScalarValue::Utf8(Some("s".into()))];
    states
        .rebuild(into[0].clone(), &key_values, &parts, &keys[..2])
        .unwrap();
    let formed = states.batch(&into).unwrap();
    assert_eq!(formed.column(1).as_primitive::<Int64Type>().value(0), 3);
    assert_eq!(
        formed.column(2).as_primitive::<Int64Type>().value(0),
        2,
        "x and y, counted once"
    );
    let stored: Vec<_> = states.take_new_distinct();
    assert_eq!(stored.len(), 1, "its set is written again, whole");
    assert_eq!(states.counts(), (1, 1));
    assert_eq!(parts.counts(), (3, 3), "the parts stay");
}
