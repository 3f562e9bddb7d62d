//! One view's epochs: new log entries in, state merged, changed rows and the new offset
//! committed together.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::{HashSet, TableReference};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{SessionConfig, SessionContext};
use tracing::Instrument;
use weir_catalog::{ColumnType, Emit, ViewDef};
use weir_sql::plan::{Merge, ViewQuery};

mod bounded;
mod entries;
mod final_rows;
mod sessions;
mod stored_groups;

use self::entries::{Taken, count_late, event_clock};
use self::stored_groups::{ATOM_KEY_PREFIX, Indexes, index_stored_groups};
use super::epoch_io::{EpochWriter, LogReader, Position};
use super::epoch_plan::{EpochInput, EpochQuery};
use super::group_state::GroupStates;
use super::session::SessionIndex;
use super::watermark::EventClock;
use crate::storage::{ClockState, EpochWrite, SourceLog, ViewStore};

/// A group key and its new encoded row, or `None` to remove it.
type RowChange = (Vec<u8>, Option<Vec<u8>>);

/// The relation the final query reads: merged states of the groups an epoch changed.
const GROUPS: &str = "__groups";
/// The final query's column telling whether a group's row is kept (`HAVING`).
const KEEP: &str = "__keep";

/// Maintains one view.
pub struct ViewRunner {
    def: Arc<ViewDef>,
    query: ViewQuery,
    log: Arc<SourceLog>,
    store: Arc<ViewStore>,
    /// A private context: the source's name in it means "this epoch's new events".
    ctx: SessionContext,
    /// This epoch's new events, as the queries read them.
    events: EpochInput,
    /// The partial aggregate (or, for a view without one, the output rows) of the events.
    partial: EpochQuery,
    /// Per `count(DISTINCT)`: the (group, value) pairs of the events.
    distinct: Vec<EpochQuery>,
    /// The output rows of groups, from their merged states (`None` without aggregates).
    finish: Option<(EpochInput, EpochQuery)>,
    states: GroupStates,
    /// The schema of stored state rows.
    state_schema: SchemaRef,
    /// The next log sequence number to process, and events processed before it.
    position: Position,
    reader: LogReader,
    writer: EpochWriter,
    /// For windowed views over a source with a watermark: what is late.
    clock: Option<EventClock>,
    /// For SESSION views: the open sessions.
    sessions: Option<SessionIndex>,
    /// For SESSION views with a max_duration: the states of their sessions' atoms (events
    /// aggregated per partition and time), which sessions are formed from again when they
    /// split.
    atoms: Option<GroupStates>,
    /// For SESSION views: each log row's partition (its other group keys).
    partition_query: Option<EpochQuery>,
}

impl std::fmt::Debug for ViewRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewRunner")
            .field("view", &self.def.name)
            .field("position", &self.position)
            .finish()
    }
}

impl ViewRunner {
    /// Plans the view's partial and final queries and loads its stored state and offset.
    /// `tables` are the reference tables the query joins; `state_cache_bytes` bounds the
    /// memory its aggregate states take.
    /// Fails (before anything is stored, at `CREATE`) if either query does not plan.
    pub async fn open(
        def: Arc<ViewDef>,
        query: ViewQuery,
        log: Arc<SourceLog>,
        store: Arc<ViewStore>,
        tables: Vec<(String, Arc<dyn datafusion::catalog::TableProvider>)>,
        state_cache_bytes: usize,
    ) -> Result<Self> {
        // One partition: an epoch's delta is small, and the view's order of work is its own.
        let config = SessionConfig::new()
            .with_target_partitions(1)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL");
        let mut ctx = SessionContext::new_with_config(config);
        super::sketch::register(&ctx);
        crate::functions::register(&ctx);
        // The same JSON operators as queries (`properties->>'service'`).
        datafusion_functions_json::register_all(&mut ctx)?;
        // Joined reference tables are read as they are when each epoch runs: an update
        // applies to the events processed after it.
        for (name, table) in tables {
            ctx.register_table(TableReference::bare(name), table)?;
        }
        // Plans that join reference tables are made again at each epoch, to read the tables
        // as they are then.
        let replan = !query.tables.is_empty();
        let events = EpochInput::register(&ctx, &query.source, log.schema().clone())?;
        let partial = EpochQuery::plan(&ctx, &query.partial_sql, replan).await?;
        if query.append_only {
            let (position, clock) = committed_position(&store).await?;
            let clock = event_clock(&def, &query, &log, clock);
            return Ok(Self {
                reader: LogReader::new(log.clone()),
                writer: EpochWriter::new(store.clone(), log.clone(), &def.name, position),
                states: GroupStates::new(Arc::new(Schema::empty()), 0, Vec::new(), None, 0),
                state_schema: Arc::new(Schema::empty()),
                events,
                partial,
                distinct: Vec::new(),
                finish: None,
                def,
                query,
                log,
                store,
                ctx,
                position,
                clock,
                sessions: None,
                atoms: None,
                partition_query: None,
            });
        }
        // Stored in Weir's row format, whose timestamps are microseconds (`date_bin` yields
        // nanoseconds).
        let state_schema = Arc::new(Schema::new(
            partial
                .schema()
                .fields()
                .iter()
                .enumerate()
                .map(|(c, f)| {
                    if c >= query.group_columns
                        && query.partials[c - query.group_columns] == Merge::Distinct
                    {
                        // The state keeps the count; the set is stored beside it.
                        return Field::new(f.name(), DataType::Int64, true);
                    }
                    let ty = match f.data_type() {
                        DataType::Timestamp(_, tz) => {
                            DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
                        }
                        // Session lengths (`max(window_end - window_start)`) and the like.
                        DataType::Duration(_) => DataType::Duration(TimeUnit::Microsecond),
                        other => other.clone(),
                    };
                    Field::new(f.name(), ty, true)
                })
                .collect::<Vec<_>>(),
        ));
        let mut distinct = Vec::with_capacity(query.distinct_sql.len());
        for values in &query.distinct_sql {
            distinct.push(EpochQuery::plan(&ctx, &values.sql, replan).await?);
        }
        let groups = EpochInput::register(&ctx, GROUPS, state_schema.clone())?;
        let mut items: Vec<String> = query
            .final_items
            .iter()
            .zip(&def.columns)
            .map(|(item, column)| format!("{item} AS \"{}\"", column.name.replace('"', "\"\"")))
            .collect();
        items.push(match &query.final_filter {
            Some(filter) => format!("COALESCE({filter}, false) AS \"{KEEP}\""),
            None => format!("true AS \"{KEEP}\""),
        });
        let final_sql = format!("SELECT {} FROM \"{GROUPS}\"", items.join(", "));
        let finish = Some((groups, EpochQuery::plan(&ctx, &final_sql, false).await?));

        let mut states = GroupStates::new(
            state_schema.clone(),
            query.group_columns,
            query.partials.clone(),
            query.window_end,
            state_cache_bytes,
        );
        if let Some(keys) = &query.session {
            states = states.with_moving_end(keys.end_column);
        }
        let (mut sessions, partition_query) = match &query.session {
            Some(keys) => (
                Some(SessionIndex::new(keys.gap_ms, keys.max_duration_ms)),
                Some(EpochQuery::plan(&ctx, &keys.partition_sql, false).await?),
            ),
            None => (None, None),
        };
        let mut atoms = query
            .session
            .as_ref()
            .filter(|keys| keys.max_duration_ms.is_some())
            .map(|_| states.emptied().with_key_prefix(&[ATOM_KEY_PREFIX]));
        let (position, clock) = committed_position(&store).await?;
        index_stored_groups(
            Indexes {
                states: &mut states,
                sessions: sessions.as_mut(),
                atoms: atoms.as_mut(),
            },
            &store,
            &state_schema,
            &query,
        )
        .await?;
        let clock = event_clock(&def, &query, &log, clock);
        Ok(Self {
            reader: LogReader::new(log.clone()),
            writer: EpochWriter::new(store.clone(), log.clone(), &def.name, position),
            def,
            query,
            log,
            store,
            ctx,
            states,
            state_schema,
            events,
            partial,
            distinct,
            finish,
            position,
            clock,
            sessions,
            atoms,
            partition_query,
        })
    }

    /// The output column holding the leading group key, when it is a timestamp (a view
    /// grouped by its window first): rows are keyed by it first, so filters on it read a key
    /// range.
    pub fn leading_time_column(&self) -> Option<String> {
        let column = &self.def.columns[self.query.leading_key_output?];
        matches!(column.ty, ColumnType::Timestamp | ColumnType::TimestampTz)
            .then(|| column.name.clone())
    }

    /// The output column holding the leading group key, whatever its type, with that type:
    /// rows are keyed by its values first, so an equality on it reads one key prefix.
    pub fn leading_key_column(&self) -> Option<(String, DataType)> {
        let column = &self.def.columns[self.query.leading_key_output?];
        Some((column.name.clone(), column.ty.arrow_type()))
    }

    /// Whether the view's rows are its output log's entries, stored once, as Arrow batches: a
    /// view without aggregates appends rows that never change, which is what its output log
    /// holds already. (One that shows `_received_at` has no output log; its rows are keyed.)
    pub fn rows_in_output_log(&self) -> bool {
        self.query.append_only && self.store.output().is_some()
    }

    /// The next log sequence number this view processes.
    pub fn processed_seq(&self) -> u64 {
        self.position.next_seq
    }

    /// How far the view's stored rows are: everything before `next_seq` is in them.
    pub fn committed(&self) -> Position {
        self.writer.committed()
    }

    /// Waits until every processed epoch is stored (one may still be landing after
    /// [`Self::epoch`] returns), then lets the state cache shed what it holds beyond its size.
    pub async fn settle(&mut self) -> Result<()> {
        self.writer.settle().await?;
        self.states.evict(false);
        if let Some(atoms) = &mut self.atoms {
            atoms.evict(false);
        }
        Ok(())
    }

    /// Groups with state, and how many of their states are in memory.
    pub fn state_counts(&self) -> (usize, usize) {
        self.states.counts()
    }

    /// The watermark the view has reached (µs), if it follows one.
    pub fn watermark(&self) -> Option<i64> {
        self.clock.as_ref().and_then(EventClock::watermark)
    }

    /// Where the view's rows are stored.
    pub fn store(&self) -> &Arc<ViewStore> {
        &self.store
    }

    /// The source log the view follows.
    pub fn log(&self) -> &Arc<SourceLog> {
        &self.log
    }

    /// How long the source may be quiet before the watermark follows the wall clock, for a
    /// view that follows a watermark over a source with `idle_timeout`.
    pub fn idle_timeout(&self) -> Option<std::time::Duration> {
        self.clock.as_ref()?;
        self.log
            .def()
            .options
            .idle_timeout_ms
            .map(std::time::Duration::from_millis)
    }

    /// The source has been idle: moves the watermark to the wall clock `now_us` (less the
    /// delay) and, if it moved, runs an epoch without events so windows it passed close.
    /// Returns whether it moved.
    pub async fn idle(&mut self, now_us: i64) -> Result<bool> {
        let Some(clock) = &mut self.clock else {
            return Ok(false);
        };
        if !clock.follow_clock(now_us) {
            return Ok(false);
        }
        self.run_epoch(Vec::new()).await?;
        self.settle().await?;
        Ok(true)
    }

    /// Runs one epoch over at most `max_entries` new log entries; returns how many it read.
    /// Its write may still be landing when this returns ([`Self::settle`]).
    pub async fn epoch(&mut self, max_entries: usize) -> Result<usize> {
        let entries = self
            .reader
            .read(self.position.next_seq, max_entries)
            .await?;
        if entries.is_empty() {
            return Ok(0);
        }
        self.run_epoch(entries).await
    }

    /// Goes back to what is committed after an epoch failed part way: the watermark and the
    /// states in memory may hold the failed epoch's effects, which a retry would apply twice.
    pub async fn recover(&mut self) -> Result<()> {
        // A write in flight lands or fails before storage is read back; either way what
        // storage then holds is the truth.
        let _ = self.writer.settle().await;
        self.reader.reset();
        let (position, clock) = committed_position(&self.store).await?;
        self.position = position;
        self.writer = EpochWriter::new(
            self.store.clone(),
            self.log.clone(),
            &self.def.name,
            position,
        );
        self.clock = event_clock(&self.def, &self.query, &self.log, clock);
        self.states = self.states.emptied();
        self.sessions = self.sessions.as_ref().map(SessionIndex::emptied);
        self.atoms = self.atoms.as_ref().map(GroupStates::emptied);
        if !self.query.append_only {
            index_stored_groups(
                Indexes {
                    states: &mut self.states,
                    sessions: self.sessions.as_mut(),
                    atoms: self.atoms.as_mut(),
                },
                &self.store,
                &self.state_schema,
                &self.query,
            )
            .await?;
        }
        Ok(())
    }

    /// Processes `entries` (none: only the watermark moved) and commits the epoch; returns
    /// how many entries it took (a SESSION view may leave some for the next epoch).
    async fn run_epoch(&mut self, entries: Vec<(u64, RecordBatch)>) -> Result<usize> {
        let span = tracing::debug_span!(
            "epoch",
            view = %self.def.name,
            entries = entries.len(),
            from = self.position.next_seq
        );
        self.run_epoch_in(entries).instrument(span).await
    }

    async fn run_epoch_in(&mut self, entries: Vec<(u64, RecordBatch)>) -> Result<usize> {
        self.states.begin_epoch();
        if let Some(atoms) = &mut self.atoms {
            atoms.begin_epoch();
        }
        let Taken {
            first,
            next_seq,
            read,
            events,
            delta,
            late,
        } = self.take_entries(entries).await?;
        self.events.set(delta);
        count_late(&self.def.name, &late);
        let partials = self.partial.run(&self.ctx).await?;
        let watermark = self.clock.as_ref().and_then(EventClock::watermark);
        let mut write = EpochWrite {
            clock: self.clock.as_ref().and_then(EventClock::state),
            late,
            next_seq,
            events_done: self.position.events_done + events,
            ..EpochWrite::default()
        };
        if self.query.append_only {
            self.events.set(Vec::new());
            let outputs = partials
                .iter()
                .map(|batch| final_rows::cast_to(batch, self.store.schema()))
                .collect::<Result<Vec<_>>>()?;
            if !self.rows_in_output_log() {
                // Each output row once, keyed by where it came from: the epoch's first log
                // position and its place in the epoch's output. An epoch that did not commit
                // wrote nothing, so a retry after a crash cannot duplicate a row.
                let mut index = 0u32;
                for output in &outputs {
                    let rows = ViewStore::encode(output)
                        .map_err(|e| DataFusionError::External(Box::new(e)))?;
                    for row in rows {
                        let mut key = first.to_be_bytes().to_vec();
                        key.extend(index.to_be_bytes());
                        index += 1;
                        write.rows.push((key, Some(row)));
                    }
                }
            }
            write.published = self.published(&outputs)?;
            self.commit(write).await?;
            return Ok(read);
        }
        // A SESSION view's rows come keyed by their sessions.
        let mut bounded = None;
        let keyed = if self.atoms.is_some() {
            let (keyed, epoch) = self.place_in_bounded_sessions(partials).await?;
            bounded = Some(epoch);
            keyed
        } else if self.sessions.is_some() {
            self.place_in_sessions(partials, &mut write).await?
        } else {
            partials
                .iter()
                .map(|partial| self.states.keyed(partial))
                .collect::<Result<Vec<_>>>()?
        };
        let mut changed = Vec::new();
        let mut seen = HashSet::new();
        for (_, keys) in &keyed {
            changed.extend(keys.iter().filter(|k| seen.insert((*k).clone())).cloned());
        }
        // States the epoch merges into that are not in memory are read back first.
        self.load_missing(&changed).await?;
        for (partial, keys) in &keyed {
            self.states.merge(partial, keys)?;
        }
        for (values, query) in self.query.distinct_sql.iter().zip(&self.distinct) {
            for pairs in query.run(&self.ctx).await? {
                if let Some(atoms) = &mut self.atoms {
                    atoms.add_distinct(values.merge, &pairs)?;
                }
                let pairs = self.pairs_in_sessions(&pairs, bounded.as_ref())?;
                self.states.add_distinct(values.merge, &pairs)?;
            }
        }
        self.events.set(Vec::new());
        if let Some(epoch) = &bounded {
            let rebuilt = self.rebuild_sessions(epoch, &mut write).await?;
            changed.extend(rebuilt);
        }
        // Windows the watermark has passed can change no more: their state goes, and with
        // EMIT ON WINDOW CLOSE this is when their rows appear, once (read back if need be).
        let closed = match watermark {
            Some(watermark) => self.states.closed(watermark),
            None => Vec::new(),
        };
        if let (Some(sessions), Some(watermark)) = (&mut self.sessions, watermark) {
            let closed_sessions = sessions.close(watermark);
            debug_assert_eq!(closed_sessions.len(), closed.len());
            write.closed_sessions = sessions.take_closed_changes();
        }
        if let Some(epoch) = bounded {
            self.store_atoms(epoch, &mut write)?;
        }
        if self.def.emit == Emit::OnWindowClose || self.store.output().is_some() {
            self.load_missing(&closed).await?;
        }
        let closed_set: HashSet<&Vec<u8>> = closed.iter().collect();
        let open: Vec<Vec<u8>> = changed
            .iter()
            .filter(|k| !closed_set.contains(k))
            .cloned()
            .collect();
        drop(closed_set);
        let open_states = self.states.batch(&open)?;
        let state_rows =
            ViewStore::encode(&open_states).map_err(|e| DataFusionError::External(Box::new(e)))?;
        // Views over this one read each closed window once, final.
        let publish = self.store.output().is_some() && !closed.is_empty();
        let (finished, closed_rows) = match self.def.emit {
            Emit::OnWindowClose => {
                let finished = self.finish(&closed).await?;
                let closed_rows = if publish {
                    finished.clone()
                } else {
                    Vec::new()
                };
                (finished, closed_rows)
            }
            Emit::OnUpdate if publish => self.finish_changed_and_closed(&changed, &closed).await?,
            Emit::OnUpdate => (self.finish(&changed).await?, Vec::new()),
        };
        if publish {
            let kept = closed_rows
                .iter()
                .map(|batch| self.kept_outputs(batch))
                .collect::<Result<Vec<_>>>()?;
            write.published = self.published(&kept)?;
        }
        // Closed groups this epoch made were never stored: there is nothing to delete.
        write
            .state_deletes
            .extend(closed.iter().filter(|key| self.states.stored(key)).cloned());
        self.states.remove(&closed);

        write.state.extend(open.into_iter().zip(state_rows));
        write.distinct.extend(
            self.states
                .take_new_distinct()
                .into_iter()
                .map(|(group, column, values)| (group, column as u16, values)),
        );
        // Final rows come a row per group, in the order of the groups asked for.
        let emitted = match self.def.emit {
            Emit::OnUpdate => &changed,
            Emit::OnWindowClose => &closed,
        };
        let mut at = 0;
        for batch in &finished {
            let keys = emitted
                .get(at..at + batch.num_rows())
                .ok_or_else(|| DataFusionError::Internal("more final rows than groups".into()))?;
            write.rows.extend(self.output_rows(batch, keys)?);
            at += batch.num_rows();
        }
        if self.query.partials.contains(&Merge::Distinct) {
            write.set_deletes.extend(closed);
        }
        self.commit(write).await?;
        // Every state but this epoch's is stored now: the cache can shed what it holds beyond
        // its size.
        self.states.evict(true);
        if let Some(atoms) = &mut self.atoms {
            atoms.evict(true);
        }
        Ok(read)
    }

    /// Starts committing an epoch (once the one before has landed) and moves past it.
    async fn commit(&mut self, write: EpochWrite) -> Result<()> {
        let position = Position {
            next_seq: write.next_seq,
            events_done: write.events_done,
        };
        self.writer.start(write).await?;
        self.position = position;
        Ok(())
    }
}

/// The position and watermark `store` has committed.
async fn committed_position(store: &Arc<ViewStore>) -> Result<(Position, Option<ClockState>)> {
    let store = store.clone();
    let (next_seq, events_done, clock) = blocking(move || store.position()).await?;
    Ok((
        Position {
            next_seq,
            events_done,
        },
        clock,
    ))
}

/// Runs storage work on a blocking thread (RocksDB does I/O).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::result::Result<T, crate::storage::StorageError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?
        .map_err(|e| DataFusionError::External(Box::new(e)))
}
