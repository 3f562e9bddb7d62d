//! A view's stored groups: indexed at start (their keys and window ends stay in memory) and
//! read back into the state cache as epochs need them (DESIGN.md §5).

use std::sync::Arc;

use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::compute::{filter_record_batch, not};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::Result;
use weir_sql::plan::ViewQuery;

use super::{ViewRunner, blocking, sessions};
use crate::storage::ViewStore;
use crate::stream::group_state::{GroupStates, LoadedGroup};
use crate::stream::session::SessionIndex;

/// Where a bounded SESSION view's atoms are in its state's keyspace: every atom key starts
/// with this byte, which no group key starts with (a key column starts with a null flag,
/// 0 or 1).
pub(super) const ATOM_KEY_PREFIX: u8 = 0xFF;

impl ViewRunner {
    /// Reads the stored states of `keys` that are not in memory back into the cache.
    pub(super) async fn load_missing(&mut self, keys: &[Vec<u8>]) -> Result<()> {
        load_missing(
            &mut self.states,
            &self.store,
            &self.state_schema,
            &self.def.name,
            keys,
        )
        .await
    }

    /// The same for a bounded SESSION view's atoms.
    pub(super) async fn load_missing_atoms(&mut self, keys: &[Vec<u8>]) -> Result<()> {
        let Some(atoms) = &mut self.atoms else {
            return Ok(());
        };
        load_missing(atoms, &self.store, &self.state_schema, &self.def.name, keys).await
    }
}

async fn load_missing(
    states: &mut GroupStates,
    store: &Arc<ViewStore>,
    schema: &SchemaRef,
    view: &str,
    keys: &[Vec<u8>],
) -> Result<()> {
    let missing = states.missing(keys);
    metrics::counter!(crate::telemetry::VIEW_CACHE_MISSES, "view" => view.to_string())
        .increment(missing.len() as u64);
    metrics::counter!(crate::telemetry::VIEW_CACHE_LOOKUPS, "view" => view.to_string())
        .increment(keys.len() as u64);
    if missing.is_empty() {
        return Ok(());
    }
    let (store, schema) = (store.clone(), schema.clone());
    let stored = blocking(move || store.load_groups(&missing, &schema)).await?;
    let groups = stored
        .into_iter()
        .map(|group| LoadedGroup {
            key: group.key,
            row: group.row,
            distinct: group
                .distinct
                .into_iter()
                .map(|(column, chunk)| (column as usize, chunk))
                .collect(),
        })
        .collect();
    states.insert_loaded(groups)
}

/// What a view's stored groups are indexed into.
pub(super) struct Indexes<'a> {
    pub states: &'a mut GroupStates,
    pub sessions: Option<&'a mut SessionIndex>,
    pub atoms: Option<&'a mut GroupStates>,
}

/// Indexes the groups `store` holds state for: only their keys and window ends stay in
/// memory; states load as epochs need them.
pub(super) async fn index_stored_groups(
    indexes: Indexes<'_>,
    store: &Arc<ViewStore>,
    state_schema: &SchemaRef,
    query: &ViewQuery,
) -> Result<()> {
    let Indexes {
        states,
        mut sessions,
        mut atoms,
    } = indexes;
    let group_columns = query.group_columns;
    let indexed = {
        let store = store.clone();
        let schema = state_schema.clone();
        let key_columns: Vec<usize> = (0..group_columns).collect();
        blocking(move || {
            let mut indexed = Vec::new();
            store.for_each_state(&schema, 4096, |keys, batch| {
                let batch = batch.project(&key_columns).map_err(|e| {
                    crate::storage::StorageError::Corrupt(format!("view state: {e}"))
                })?;
                indexed.push((keys, batch));
                Ok(())
            })?;
            Ok(indexed)
        })
        .await?
    };
    for (keys, batch) in indexed {
        let (keys, batch) = match atoms.as_deref_mut() {
            Some(atoms) => {
                let is_atom: BooleanArray = keys
                    .iter()
                    .map(|k| Some(k.first() == Some(&ATOM_KEY_PREFIX)))
                    .collect();
                let (atom_keys, group_keys): (Vec<Vec<u8>>, Vec<Vec<u8>>) = keys
                    .into_iter()
                    .partition(|k| k.first() == Some(&ATOM_KEY_PREFIX));
                let atom_batch = filter_record_batch(&batch, &is_atom)?;
                let group_batch = filter_record_batch(&batch, &not(&is_atom)?)?;
                if let (Some(sessions), Some(session_keys)) =
                    (sessions.as_deref_mut(), &query.session)
                {
                    sessions::restore_atoms(sessions, session_keys, &atom_keys, &atom_batch)?;
                }
                atoms.index_stored(atom_keys, &atom_batch)?;
                (group_keys, group_batch)
            }
            None => (keys, batch),
        };
        if let (Some(sessions), Some(session_keys)) = (sessions.as_deref_mut(), &query.session) {
            sessions::restore_sessions(sessions, session_keys, keys.clone(), &batch)?;
        }
        states.index_stored(keys, &batch)?;
    }
    if let Some(sessions) = sessions {
        let store = store.clone();
        for (partition, end) in blocking(move || store.closed_sessions()).await? {
            sessions.restore_closed(partition, end);
        }
    }
    Ok(())
}
