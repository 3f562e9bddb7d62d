//! A SESSION view's epochs: the partial query aggregates events per (partition, time), and
//! these atoms are placed in sessions (`stream/session.rs`). A session is keyed by its
//! partition and start: growing forward it keeps its key and is merged in place. One that grew
//! backward or swallowed others takes over their states, and their states, sets and rows are
//! deleted in the same commit that writes its own.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch, not};
use datafusion::arrow::datatypes::{DataType, TimestampMicrosecondType};
use datafusion::error::{DataFusionError, Result};
use weir_sql::plan::{Merge, SessionKeys};

use super::ViewRunner;
use super::bounded::BoundedEpoch;
use crate::storage::EpochWrite;
use crate::stream::group_state::{keys_of, memcomparable_keys, row_values};
use crate::stream::session::SessionIndex;
use crate::stream::watermark::IN_CLOSED_SESSION;

impl ViewRunner {
    pub(super) fn session_keys(&self) -> Result<&SessionKeys> {
        self.query
            .session
            .as_ref()
            .ok_or_else(|| DataFusionError::Internal("sessions of a view without them".into()))
    }

    /// The session index (a SESSION view has one).
    pub(super) fn sessions_mut(&mut self) -> Result<&mut SessionIndex> {
        self.sessions
            .as_mut()
            .ok_or_else(|| DataFusionError::Internal("a SESSION view without its sessions".into()))
    }

    /// An epoch's atoms (the partial query's rows) in the state's types, with each one's
    /// partition and time; `None` if the epoch has none.
    pub(super) fn atoms_of(&self, partials: &[RecordBatch]) -> Result<Option<Atoms>> {
        let Some(first) = partials.first() else {
            return Ok(None);
        };
        let batch = self
            .states
            .cast(&concat_batches(&first.schema(), partials)?)?;
        let (partitions, times) = partitions_and_times(&batch, self.session_keys()?)?;
        Ok(Some(Atoms {
            batch,
            partitions,
            times,
        }))
    }

    /// Places an epoch's atoms (the partial query's rows) in sessions; returns them with the
    /// window columns holding their sessions' start and end, in the state's types, and their
    /// group keys. Sessions that grew backward or merged take over the states of those they
    /// replace, whose stored states, sets and rows `write` deletes.
    pub(super) async fn place_in_sessions(
        &mut self,
        partials: Vec<RecordBatch>,
        write: &mut EpochWrite,
    ) -> Result<Vec<(RecordBatch, Vec<Vec<u8>>)>> {
        let Some(Atoms {
            batch: atoms,
            partitions,
            times,
        }) = self.atoms_of(&partials)?
        else {
            return Ok(Vec::new());
        };
        let placement = self.sessions_mut()?.place(&partitions, times.values());
        let placed = with_spans(&atoms, self.session_keys()?, &placement.spans)?;
        let placed_keys = self.states.keys_of(&placed)?;
        let sessions = self.sessions_mut()?;
        let mut replaced = Vec::new();
        for change in placement.changed {
            let key = placed_keys[change.atom].clone();
            sessions.set_key(&change.partition, change.start, key.clone());
            // A session that only grew forward keeps its key (its start) and merges in place.
            if change.replaces.iter().any(|k| *k != key) {
                replaced.push((change.replaces, key, change.atom));
            }
        }
        let all: Vec<Vec<u8>> = replaced
            .iter()
            .flat_map(|(from, ..)| from.clone())
            .collect();
        self.load_missing(&all).await?;
        let sets = self.query.partials.contains(&Merge::Distinct);
        for (from, key, atom) in replaced {
            let values = row_values(&placed, atom)?;
            self.states
                .absorb(&from, key.clone(), &values[..self.query.group_columns])?;
            for old in from.into_iter().filter(|old| *old != key) {
                write.state_deletes.push(old.clone());
                if sets {
                    write.set_deletes.push(old.clone());
                }
                write.rows.push((old, None));
            }
        }
        Ok(vec![(placed, placed_keys)])
    }

    /// An epoch's `count(DISTINCT)` pairs (window columns holding event times) with the window
    /// columns of the sessions the times were placed in.
    /// In a bounded view, pairs of sessions formed again this epoch are left out: their
    /// sets are formed from their atoms'.
    pub(super) fn pairs_in_sessions(
        &self,
        pairs: &RecordBatch,
        bounded: Option<&BoundedEpoch>,
    ) -> Result<RecordBatch> {
        let (Some(sessions), Some(keys)) = (&self.sessions, &self.query.session) else {
            return Ok(pairs.clone());
        };
        let count = self.query.group_columns;
        let fields = self.states.schema().fields()[..count].to_vec();
        let columns = pairs.columns()[..count]
            .iter()
            .zip(&fields)
            .map(|(column, field)| cast(column, field.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let groups = RecordBatch::try_new(
            Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
            columns,
        )?;
        let (partitions, times) = partitions_and_times(&groups, keys)?;
        let spans = partitions
            .iter()
            .zip(times.values())
            .map(|(partition, &t)| {
                sessions.span_of(partition, t).ok_or_else(|| {
                    DataFusionError::Internal("a distinct value outside every session".into())
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let placed = with_spans(&groups, keys, &spans)?;
        let mut columns = placed.columns().to_vec();
        columns.extend(pairs.columns()[self.query.group_columns..].iter().cloned());
        let mut fields: Vec<_> = placed.schema().fields().iter().cloned().collect();
        fields.extend(
            pairs.schema().fields()[self.query.group_columns..]
                .iter()
                .cloned(),
        );
        let placed = RecordBatch::try_new(
            Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
            columns,
        )?;
        match bounded {
            Some(epoch) => {
                let grown: BooleanArray = partitions
                    .iter()
                    .zip(&spans)
                    .map(|(partition, &(start, _))| {
                        Some(!epoch.reshaped.is_rebuilt(partition, start))
                    })
                    .collect();
                Ok(filter_record_batch(&placed, &grown)?)
            }
            None => Ok(placed),
        }
    }

    /// Sets aside the events of the first entry of an epoch (`on_time`, after the watermark
    /// `before` judged them) that fall inside or before a closed session of their partition.
    /// Only events behind the watermark can, and only the first entry of an epoch has them
    /// (an epoch ends before any later entry that does), so this is rare and row-wise.
    pub(super) async fn set_aside_in_closed_sessions(
        &self,
        on_time: RecordBatch,
        before: Option<i64>,
    ) -> Result<(RecordBatch, Option<RecordBatch>)> {
        let (Some(sessions), Some(clock), Some(watermark)) = (&self.sessions, &self.clock, before)
        else {
            return Ok((on_time, None));
        };
        if !sessions.has_closed() {
            return Ok((on_time, None));
        }
        let times = micros(on_time.column(clock.time_column()))?;
        let behind: BooleanArray = times
            .iter()
            .map(|t| Some(t.is_some_and(|t| t < watermark)))
            .collect();
        if behind.true_count() == 0 {
            return Ok((on_time, None));
        }
        let candidates = filter_record_batch(&on_time, &behind)?;
        let partitions = self.partitions_of(&candidates).await?;
        let candidate_times = micros(candidates.column(clock.time_column()))?;
        let sessions = self.sessions.as_ref().expect("checked above");
        let mut late = candidate_times
            .values()
            .iter()
            .zip(&partitions)
            .map(|(&t, partition)| sessions.falls_in_closed(partition, t));
        let aside: BooleanArray = behind
            .iter()
            .map(|b| Some(b == Some(true) && late.next().unwrap_or(false)))
            .collect();
        if aside.true_count() == 0 {
            return Ok((on_time, None));
        }
        let clock = self.clock.as_ref().expect("checked above");
        let rows = clock.set_aside(
            &filter_record_batch(&on_time, &aside)?,
            IN_CLOSED_SESSION,
            Some(watermark),
        )?;
        Ok((filter_record_batch(&on_time, &not(&aside)?)?, Some(rows)))
    }

    /// The partition keys of log rows, as the states encode them.
    async fn partitions_of(&self, rows: &RecordBatch) -> Result<Vec<Vec<u8>>> {
        let keys = self.session_keys()?;
        let query = self.partition_query.as_ref().ok_or_else(|| {
            DataFusionError::Internal("a SESSION view without its partition query".into())
        })?;
        if keys.partition_columns.is_empty() {
            return Ok(vec![Vec::new(); rows.num_rows()]);
        }
        self.events.set(vec![rows.clone()]);
        let batches = query.run(&self.ctx).await;
        self.events.set(Vec::new());
        let batches = batches?;
        let schema = query.schema();
        let batch = concat_batches(&schema, &batches)?;
        let state = self.states.schema();
        let columns = batch
            .columns()
            .iter()
            .zip(&keys.partition_columns)
            .map(|(column, &g)| cast(column, state.field(g).data_type()))
            .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
        memcomparable_keys(&columns, batch.num_rows())
    }
}

/// Indexes stored session states (at start: `batch` holds their key columns).
pub(super) fn restore_sessions(
    sessions: &mut SessionIndex,
    keys: &SessionKeys,
    group_keys: Vec<Vec<u8>>,
    batch: &RecordBatch,
) -> Result<()> {
    let (partitions, starts) = partitions_and_times(batch, keys)?;
    let ends = micros(batch.column(keys.end_column))?;
    for (i, (partition, key)) in partitions.into_iter().zip(group_keys).enumerate() {
        sessions.restore(partition, starts.value(i), ends.value(i), key);
    }
    Ok(())
}

/// Indexes stored atoms of a bounded view (at start: `batch` holds their key columns).
pub(super) fn restore_atoms(
    sessions: &mut SessionIndex,
    keys: &SessionKeys,
    atom_keys: &[Vec<u8>],
    batch: &RecordBatch,
) -> Result<()> {
    let (partitions, times) = partitions_and_times(batch, keys)?;
    for (i, (partition, key)) in partitions.into_iter().zip(atom_keys).enumerate() {
        sessions.restore_atom(partition, times.value(i), key.clone());
    }
    Ok(())
}

/// An epoch's atoms: rows of the partial query, in the state's types.
pub(super) struct Atoms {
    pub batch: RecordBatch,
    /// Each row's partition key.
    pub partitions: Vec<Vec<u8>>,
    /// Each row's time (µs), from its window_start column.
    pub times: TimestampMicrosecondArray,
}

/// The partition keys and times (window_start, µs) of rows holding a SESSION view's group
/// columns.
fn partitions_and_times(
    batch: &RecordBatch,
    keys: &SessionKeys,
) -> Result<(Vec<Vec<u8>>, TimestampMicrosecondArray)> {
    Ok((
        keys_of(batch, &keys.partition_columns)?,
        micros(batch.column(keys.start_column))?,
    ))
}

pub(super) fn micros(column: &ArrayRef) -> Result<TimestampMicrosecondArray> {
    let column = match column.data_type() {
        DataType::Timestamp(_, tz) => cast(
            column,
            &DataType::Timestamp(
                datafusion::arrow::datatypes::TimeUnit::Microsecond,
                tz.clone(),
            ),
        )?,
        other => {
            return Err(DataFusionError::Internal(format!(
                "a session time of type {other}"
            )));
        }
    };
    Ok(column.as_primitive::<TimestampMicrosecondType>().clone())
}

/// `batch` with its window columns replaced by each row's span: its session's start and end
/// (µs, in their types).
pub(super) fn with_spans(
    batch: &RecordBatch,
    keys: &SessionKeys,
    spans: &[(i64, i64)],
) -> Result<RecordBatch> {
    let starts = spans.iter().map(|&(start, _)| start);
    let ends = spans.iter().map(|&(_, end)| end);
    let mut columns = batch.columns().to_vec();
    for (column, values) in [
        (keys.start_column, starts.collect::<Vec<_>>()),
        (keys.end_column, ends.collect::<Vec<_>>()),
    ] {
        columns[column] = match batch.schema().field(column).data_type() {
            DataType::Timestamp(_, tz) => {
                Arc::new(TimestampMicrosecondArray::from(values).with_timezone_opt(tz.clone()))
            }
            other => {
                return Err(DataFusionError::Internal(format!(
                    "a session window column of type {other}"
                )));
            }
        };
    }
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}
