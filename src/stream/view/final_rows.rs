//! A view's final rows: the final query over the groups an epoch changed or closed, and what
//! becomes of its rows (the view's keyed rows, entries of its output log).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::HashSet;
use datafusion::error::{DataFusionError, Result};

use super::{RowChange, ViewRunner};
use crate::storage::ViewStore;

impl ViewRunner {
    /// The final rows (outputs, then the `HAVING` verdict) of the groups of `keys`, one per
    /// group, in that order.
    pub(super) async fn finish(&self, keys: &[Vec<u8>]) -> Result<Vec<RecordBatch>> {
        let (groups, query) = self.finish.as_ref().ok_or_else(|| {
            DataFusionError::Internal("final rows of a view without aggregates".into())
        })?;
        groups.set(vec![self.states.batch(keys)?]);
        let rows = query.run(&self.ctx).await;
        groups.set(Vec::new());
        rows
    }

    /// The final rows of the `changed` groups, and those of the `closed` ones (to publish),
    /// from one run of the final query over both: groups that change and close in the same
    /// epoch (most of them, in a backfill) are finished once.
    pub(super) async fn finish_changed_and_closed(
        &self,
        changed: &[Vec<u8>],
        closed: &[Vec<u8>],
    ) -> Result<(Vec<RecordBatch>, Vec<RecordBatch>)> {
        let changed_set: HashSet<&Vec<u8>> = changed.iter().collect();
        let closed_set: HashSet<&Vec<u8>> = closed.iter().collect();
        let mut keys = changed.to_vec();
        keys.extend(closed.iter().filter(|k| !changed_set.contains(k)).cloned());
        let finished = self.finish(&keys).await?;
        let Some(first) = finished.first() else {
            return Ok((Vec::new(), Vec::new()));
        };
        let rows = datafusion::arrow::compute::concat_batches(&first.schema(), &finished)?;
        // The final query is a projection of the groups: a row per key, in order.
        if rows.num_rows() != keys.len() {
            return Err(DataFusionError::Internal(format!(
                "{} final rows for {} groups",
                rows.num_rows(),
                keys.len()
            )));
        }
        let is_closed: BooleanArray = keys.iter().map(|k| Some(closed_set.contains(k))).collect();
        let closed_rows = datafusion::arrow::compute::filter_record_batch(&rows, &is_closed)?;
        Ok((vec![rows.slice(0, changed.len())], vec![closed_rows]))
    }

    /// The output columns of the final rows `HAVING` keeps, in the view's schema.
    pub(super) fn kept_outputs(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let outputs = self.def.columns.len();
        let keep = batch.column(outputs).as_boolean();
        let kept = datafusion::arrow::compute::filter_record_batch(
            &batch.project(&(0..outputs).collect::<Vec<_>>())?,
            keep,
        )?;
        cast_to(&kept, self.store.schema())
    }

    /// `outputs` (in the view's schema) as one entry of the view's output log, stamped with
    /// the time they were published; `None` if the view publishes nothing or has no rows.
    pub(super) fn published(&self, outputs: &[RecordBatch]) -> Result<Option<RecordBatch>> {
        let Some(log) = self.store.output() else {
            return Ok(None);
        };
        let rows = datafusion::arrow::compute::concat_batches(self.store.schema(), outputs)?;
        if rows.num_rows() == 0 {
            return Ok(None);
        }
        let mut columns = rows.columns().to_vec();
        columns.push(Arc::new(
            datafusion::arrow::array::TimestampMicrosecondArray::from(vec![
                chrono::Utc::now()
                    .timestamp_micros();
                rows.num_rows()
            ])
            .with_timezone("+00:00"),
        ));
        Ok(Some(RecordBatch::try_new(log.schema().clone(), columns)?))
    }

    /// Each finished row of the groups `keys` as (group key, encoded row or `None` when
    /// `HAVING` drops it).
    pub(super) fn output_rows(
        &self,
        batch: &RecordBatch,
        keys: &[Vec<u8>],
    ) -> Result<Vec<RowChange>> {
        let outputs = self.def.columns.len();
        let output = batch.project(&(0..outputs).collect::<Vec<_>>())?;
        let rows = ViewStore::encode(&cast_to(&output, self.store.schema())?)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let keep = batch.column(outputs).as_boolean();
        Ok(keys
            .iter()
            .cloned()
            .zip(rows)
            .enumerate()
            .map(|(i, (key, row))| (key, (keep.is_valid(i) && keep.value(i)).then_some(row)))
            .collect())
    }
}

/// `batch` with its columns cast to `schema`'s types.
pub(super) fn cast_to(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| cast(c, f.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
