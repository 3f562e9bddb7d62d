//! A bounded SESSION view's epochs (`stream/session/bounded.rs`): the partial query's atoms
//! (events aggregated per partition and time) are merged into atom states, kept until their
//! session closes; sessions that only gained new atoms merge them as in an unbounded view,
//! and the others are formed again from their atoms' states, with the rows of sessions that
//! are no more deleted in the same commit.

use datafusion::arrow::array::{BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::common::HashSet;
use datafusion::error::{DataFusionError, Result};
use weir_sql::plan::Merge;

use super::ViewRunner;
use super::sessions::{Atoms, with_spans};
use crate::storage::{EpochWrite, ViewStore};
use crate::stream::group_state::row_values;
use crate::stream::session::Reshaped;

/// What an epoch of a bounded view placed, for the steps after its partial rows merged.
#[derive(Default)]
pub(super) struct BoundedEpoch {
    pub reshaped: Reshaped,
    /// The keys of the atoms the epoch's events touched.
    atoms: Vec<Vec<u8>>,
}

impl ViewRunner {
    /// Merges an epoch's atoms (the partial query's rows) into their states and places them
    /// in sessions; returns the atoms of sessions that grow in place, with the window columns
    /// holding their sessions' start and end, keyed by session.
    pub(super) async fn place_in_bounded_sessions(
        &mut self,
        partials: Vec<RecordBatch>,
    ) -> Result<(Vec<(RecordBatch, Vec<Vec<u8>>)>, BoundedEpoch)> {
        let Some(Atoms {
            batch,
            partitions,
            times,
        }) = self.atoms_of(&partials)?
        else {
            return Ok((Vec::new(), BoundedEpoch::default()));
        };
        let atom_keys = self.atoms()?.keys_of(&batch)?;
        self.load_missing_atoms(&atom_keys).await?;
        self.atoms_mut()?.merge(&batch, &atom_keys)?;
        let reshaped = self
            .sessions_mut()?
            .reshape(&partitions, times.values(), &atom_keys);
        let placed = with_spans(&batch, self.session_keys()?, &reshaped.spans)?;
        let grown: BooleanArray = reshaped.rebuilt_atom.iter().map(|r| Some(!r)).collect();
        let placed = filter_record_batch(&placed, &grown)?;
        let placed_keys = self.states.keys_of(&placed)?;
        Ok((
            vec![(placed, placed_keys)],
            BoundedEpoch {
                reshaped,
                atoms: atom_keys,
            },
        ))
    }

    /// Forms the epoch's reshaped sessions again from their atoms' states (once the epoch's
    /// partial rows and distinct values are in them), and deletes the sessions that are no
    /// more. Returns the keys of the sessions formed.
    pub(super) async fn rebuild_sessions(
        &mut self,
        epoch: &BoundedEpoch,
        write: &mut EpochWrite,
    ) -> Result<Vec<Vec<u8>>> {
        let reshaped = &epoch.reshaped;
        let parts: Vec<Vec<u8>> = reshaped
            .rebuilt
            .iter()
            .flat_map(|session| session.atoms.iter().cloned())
            .collect();
        self.load_missing_atoms(&parts).await?;
        let sets = self.query.partials.contains(&Merge::Distinct);
        self.states.remove(&reshaped.removed);
        for old in &reshaped.removed {
            write.state_deletes.push(old.clone());
            if sets {
                write.set_deletes.push(old.clone());
            }
            write.rows.push((old.clone(), None));
        }
        let keys = self.session_keys()?.clone();
        let atoms = self.atoms.as_ref().ok_or_else(no_atoms)?;
        let mut rebuilt = Vec::with_capacity(reshaped.rebuilt.len());
        for session in &reshaped.rebuilt {
            // The group columns of any of its atoms, with the session's window.
            let row = with_spans(
                &atoms.batch(&session.atoms[..1])?,
                &keys,
                &[(session.start, session.end)],
            )?;
            let key = self
                .states
                .keys_of(&row)?
                .pop()
                .ok_or_else(|| DataFusionError::Internal("a session without a key".into()))?;
            let values = row_values(&row, 0)?;
            self.states.rebuild(
                key.clone(),
                &values[..self.query.group_columns],
                atoms,
                &session.atoms,
            )?;
            if let Some(sessions) = &mut self.sessions {
                sessions.set_key(&session.partition, session.start, key.clone());
            }
            rebuilt.push(key);
        }
        Ok(rebuilt)
    }

    /// Adds to `write` the states of the atoms the epoch touched, and deletes those of the
    /// atoms whose sessions closed.
    pub(super) fn store_atoms(
        &mut self,
        epoch: BoundedEpoch,
        write: &mut EpochWrite,
    ) -> Result<()> {
        let dropped = self
            .sessions
            .as_mut()
            .map(|sessions| sessions.take_dropped_atoms())
            .unwrap_or_default();
        let sets = self.query.partials.contains(&Merge::Distinct);
        let atoms = self.atoms_mut()?;
        let gone: HashSet<&Vec<u8>> = dropped.iter().collect();
        let mut seen = HashSet::new();
        let kept: Vec<Vec<u8>> = epoch
            .atoms
            .into_iter()
            .filter(|key| !gone.contains(key) && seen.insert(key.clone()))
            .collect();
        let rows = ViewStore::encode(&atoms.batch(&kept)?)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        write.state.extend(kept.into_iter().zip(rows));
        for key in &dropped {
            if atoms.stored(key) {
                write.state_deletes.push(key.clone());
                if sets {
                    write.set_deletes.push(key.clone());
                }
            }
        }
        atoms.remove(&dropped);
        write.distinct.extend(
            atoms
                .take_new_distinct()
                .into_iter()
                .map(|(atom, column, values)| (atom, column as u16, values)),
        );
        Ok(())
    }

    fn atoms(&self) -> Result<&crate::stream::group_state::GroupStates> {
        self.atoms.as_ref().ok_or_else(no_atoms)
    }

    fn atoms_mut(&mut self) -> Result<&mut crate::stream::group_state::GroupStates> {
        self.atoms.as_mut().ok_or_else(no_atoms)
    }
}

fn no_atoms() -> DataFusionError {
    DataFusionError::Internal("a bounded SESSION view without its atoms".into())
}
