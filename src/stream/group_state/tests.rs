//! Merging partial states per group.

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
