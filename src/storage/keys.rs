//! Memcomparable key encoding: byte order equals value order, so RocksDB's sorted keys are
//! sorted rows and a key range is a value range.
//!
//! Integers are big-endian with the sign bit flipped; floats are flipped so negatives sort
//! first; strings and bytes escape `0x00` as `0x00 0xFF` and end with `0x00 0x00`, so a prefix
//! sorts before its extensions. Key columns are never null (primary keys are `NOT NULL`).

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, IntervalMonthDayNanoType, IntervalUnit, TimeUnit, TimestampMicrosecondType,
};

use super::StorageError;

/// Like [`append_column`], for columns that may hold nulls (view group keys): each value is
/// led by a byte, 0 for null (sorting first) and 1 for a value.
pub fn append_nullable_column(keys: &mut [Vec<u8>], column: &ArrayRef) -> Result<(), StorageError> {
    if column.null_count() == 0 {
        keys.iter_mut().for_each(|k| k.push(1));
        return append_column(keys, column);
    }
    for (row, key) in keys.iter_mut().enumerate() {
        if column.is_null(row) {
            key.push(0);
        } else {
            key.push(1);
            append_column(std::slice::from_mut(key), &column.slice(row, 1))?;
        }
    }
    Ok(())
}

/// Appends to `keys[row]` the encoding of each row of `column`.
pub fn append_column(keys: &mut [Vec<u8>], column: &ArrayRef) -> Result<(), StorageError> {
    debug_assert_eq!(keys.len(), column.len());
    if column.null_count() > 0 {
        return Err(StorageError::InvalidValue(
            "a key column holds a null".into(),
        ));
    }
    macro_rules! each {
        ($ty:ty, |$key:ident, $v:ident| $body:expr) => {
            for ($key, $v) in keys
                .iter_mut()
                .zip(column.as_primitive::<$ty>().values().iter())
            {
                $body
            }
        };
    }
    match column.data_type() {
        DataType::Boolean => {
            for (key, v) in keys.iter_mut().zip(column.as_boolean().values().iter()) {
                key.push(v as u8);
            }
        }
        DataType::Int16 => each!(Int16Type, |k, v| k
            .extend((*v as u16 ^ 0x8000).to_be_bytes())),
        DataType::Int32 => each!(Int32Type, |k, v| k
            .extend((*v as u32 ^ (1 << 31)).to_be_bytes())),
        DataType::Date32 => each!(Date32Type, |k, v| k
            .extend((*v as u32 ^ (1 << 31)).to_be_bytes())),
        DataType::Int64 => each!(Int64Type, |k, v| k
            .extend((*v as u64 ^ (1 << 63)).to_be_bytes())),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            each!(TimestampMicrosecondType, |k, v| k
                .extend((*v as u64 ^ (1 << 63)).to_be_bytes()))
        }
        DataType::Decimal128(_, _) => {
            each!(Decimal128Type, |k, v| k
                .extend((*v as u128 ^ (1 << 127)).to_be_bytes()))
        }
        DataType::Float32 => each!(Float32Type, |k, v| {
            let bits = v.to_bits();
            let ordered = if bits >> 31 == 1 {
                !bits
            } else {
                bits | (1 << 31)
            };
            k.extend(ordered.to_be_bytes())
        }),
        DataType::Float64 => each!(Float64Type, |k, v| {
            let bits = v.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            k.extend(ordered.to_be_bytes())
        }),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            each!(IntervalMonthDayNanoType, |k, v| {
                k.extend((v.months as u32 ^ (1 << 31)).to_be_bytes());
                k.extend((v.days as u32 ^ (1 << 31)).to_be_bytes());
                k.extend((v.nanoseconds as u64 ^ (1 << 63)).to_be_bytes());
            })
        }
        DataType::Utf8 => {
            for (key, v) in keys.iter_mut().zip(column.as_string::<i32>().iter()) {
                append_bytes(key, v.unwrap_or_default().as_bytes());
            }
        }
        DataType::Binary => {
            for (key, v) in keys.iter_mut().zip(column.as_binary::<i32>().iter()) {
                append_bytes(key, v.unwrap_or_default());
            }
        }
        other => {
            return Err(StorageError::InvalidValue(format!(
                "type {other} cannot be part of a key"
            )));
        }
    }
    Ok(())
}

fn append_bytes(key: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        key.push(b);
        if b == 0 {
            key.push(0xFF);
        }
    }
    key.extend([0, 0]);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, Int32Array, StringArray};

    use super::*;

    fn encode(column: ArrayRef) -> Vec<Vec<u8>> {
        let mut keys = vec![Vec::new(); column.len()];
        append_column(&mut keys, &column).unwrap();
        keys
    }

    fn assert_sorted_like_values(keys: Vec<Vec<u8>>) {
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys);
    }

    #[test]
    fn byte_order_is_value_order() {
        assert_sorted_like_values(encode(Arc::new(Int32Array::from(vec![
            i32::MIN,
            -5,
            -1,
            0,
            1,
            7,
            i32::MAX,
        ]))));
        assert_sorted_like_values(encode(Arc::new(Float64Array::from(vec![
            f64::NEG_INFINITY,
            -2.5,
            -0.0,
            0.0,
            1e-9,
            3.0,
            f64::INFINITY,
        ]))));
        assert_sorted_like_values(encode(Arc::new(StringArray::from(vec![
            "", "a", "a\0", "a\0b", "ab", "b",
        ]))));
    }

    #[test]
    fn composite_keys_do_not_collide() {
        let a = encode(Arc::new(StringArray::from(vec!["a", "a\0"])));
        assert_ne!(a[0], a[1]);
        let mut keys = vec![Vec::new(); 1];
        append_column(
            &mut keys,
            &(Arc::new(Int32Array::from(vec![Some(1)])) as ArrayRef),
        )
        .unwrap();
        assert!(
            append_column(
                &mut keys,
                &(Arc::new(Int32Array::from(vec![None::<i32>])) as ArrayRef)
            )
            .is_err()
        );
    }
}
