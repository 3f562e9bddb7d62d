//! One view's epochs: new log entries in, state merged, changed rows and the new offset
//! committed together.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{SessionConfig, SessionContext};
use weir_catalog::{Emit, ViewDef};
use weir_sql::plan::{Merge, ViewQuery};

use super::group_state::{GroupStates, group_keys};
use super::watermark::{ClockColumns, EventClock};
use crate::storage::{EpochWrite, SourceLog, ViewStore};

/// How far ahead of its arrival an event may be when the source does not say.
const DEFAULT_MAX_FUTURE_SKEW_MS: u64 = 5 * 60 * 1000;

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
    states: GroupStates,
    final_sql: String,
    next_seq: u64,
    /// Log events read so far.
    events_done: u64,
    /// For windowed views over a source with a watermark: what is late.
    clock: Option<EventClock>,
}

impl std::fmt::Debug for ViewRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewRunner")
            .field("view", &self.def.name)
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

impl ViewRunner {
    /// Plans the view's partial and final queries and loads its stored state and offset.
    /// Fails (before anything is stored, at `CREATE`) if either query does not plan.
    pub async fn open(
        def: Arc<ViewDef>,
        query: ViewQuery,
        log: Arc<SourceLog>,
        store: Arc<ViewStore>,
    ) -> Result<Self> {
        // One partition: an epoch's delta is small, and the view's order of work is its own.
        let config = SessionConfig::new()
            .with_target_partitions(1)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL");
        let ctx = SessionContext::new_with_config(config);
        register(&ctx, &query.source, log.schema().clone(), Vec::new())?;
        let partial = ctx.sql(&query.partial_sql).await?;
        if query.append_only {
            let (next_seq, events_done, watermark) = {
                let store = store.clone();
                blocking(move || store.position()).await?
            };
            let clock = event_clock(&def, &query, &log, watermark);
            return Ok(Self {
                states: GroupStates::new(Arc::new(Schema::empty()), 0, Vec::new()),
                final_sql: String::new(),
                def,
                query,
                log,
                store,
                ctx,
                next_seq,
                events_done,
                clock,
            });
        }
        // Stored in Weir's row format, whose timestamps are microseconds (`date_bin` yields
        // nanoseconds).
        let mut distinct_types = Vec::new();
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
                        // The state keeps the count; the set is stored value by value.
                        let DataType::List(element) = f.data_type() else {
                            unreachable!("array_agg yields a list")
                        };
                        distinct_types.push((c - query.group_columns, element.data_type().clone()));
                        return Field::new(f.name(), DataType::Int64, true);
                    }
                    let ty = match f.data_type() {
                        DataType::Timestamp(_, tz) => {
                            DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
                        }
                        other => other.clone(),
                    };
                    Field::new(f.name(), ty, true)
                })
                .collect::<Vec<_>>(),
        ));
        register(&ctx, GROUPS, state_schema.clone(), Vec::new())?;
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
        items.extend((0..query.group_columns).map(|j| format!("\"g{j}\"")));
        let final_sql = format!("SELECT {} FROM \"{GROUPS}\"", items.join(", "));
        ctx.sql(&final_sql).await?;

        let mut states = GroupStates::new(
            state_schema.clone(),
            query.group_columns,
            query.partials.clone(),
        );
        let ((next_seq, events_done, watermark), (keys, stored), distinct) = {
            let store = store.clone();
            blocking(move || {
                Ok((
                    store.position()?,
                    store.load_state(&state_schema)?,
                    store.load_distinct()?,
                ))
            })
            .await?
        };
        states.load(keys, &stored)?;
        let mut values = Vec::with_capacity(distinct.len());
        for (group, column, bytes) in distinct {
            let ty = distinct_types
                .iter()
                .find(|(c, _)| *c == column as usize)
                .map(|(_, ty)| ty.clone())
                .ok_or_else(|| DataFusionError::Internal(format!("no distinct column {column}")))?;
            values.push((group, column as usize, decode_value(&ty, &bytes)?));
        }
        states.load_distinct(values);
        let clock = event_clock(&def, &query, &log, watermark);
        Ok(Self {
            def,
            query,
            log,
            store,
            ctx,
            states,
            final_sql,
            next_seq,
            events_done,
            clock,
        })
    }

    /// The next log sequence number this view reads: everything before it is in its rows.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Log events the view has read.
    pub fn events_done(&self) -> u64 {
        self.events_done
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
        Ok(true)
    }

    /// Runs one epoch over at most `max_entries` new log entries; returns how many it read.
    pub async fn epoch(&mut self, max_entries: usize) -> Result<usize> {
        let (log, from) = (self.log.clone(), self.next_seq);
        let entries = blocking(move || log.read_from(from, max_entries)).await?;
        if entries.is_empty() {
            return Ok(0);
        }
        let read = entries.len();
        self.run_epoch(entries).await?;
        Ok(read)
    }

    /// Processes `entries` (none: only the watermark moved) and commits the epoch.
    async fn run_epoch(&mut self, entries: Vec<(u64, RecordBatch)>) -> Result<()> {
        let (first, next_seq) = match (entries.first(), entries.last()) {
            (Some(&(first, _)), Some(&(last, _))) => (first, last + 1),
            _ => (self.next_seq, self.next_seq),
        };
        let read = entries.len();
        let events: u64 = entries.iter().map(|(_, e)| e.num_rows() as u64).sum();
        let mut delta = Vec::with_capacity(read);
        let mut late = Vec::new();
        for (seq, entry) in entries {
            match &mut self.clock {
                Some(clock) => {
                    let (on_time, late_rows) = clock.split(entry)?;
                    delta.push(on_time);
                    late.extend(late_rows.map(|rows| (seq, rows)));
                }
                None => delta.push(entry),
            }
        }
        register(
            &self.ctx,
            &self.query.source,
            self.log.schema().clone(),
            delta,
        )?;
        let partials = self
            .ctx
            .sql(&self.query.partial_sql)
            .await?
            .collect()
            .await?;
        let watermark = self.clock.as_ref().and_then(EventClock::watermark);
        let mut write = EpochWrite {
            late,
            watermark,
            next_seq,
            events_done: self.events_done + events,
            ..EpochWrite::default()
        };
        if self.query.append_only {
            // Each output row once, keyed by where it came from: the epoch's first log
            // position and its place in the epoch's output. An epoch that did not commit
            // wrote nothing, so a retry after a crash cannot duplicate a row.
            let mut index = 0u32;
            for batch in &partials {
                let rows = ViewStore::encode(&cast_to(batch, self.store.schema())?)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                for row in rows {
                    let mut key = first.to_be_bytes().to_vec();
                    key.extend(index.to_be_bytes());
                    index += 1;
                    write.rows.push((key, Some(row)));
                }
            }
            return self.commit(write).await;
        }
        let mut changed = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for partial in &partials {
            for key in self.states.merge(partial)? {
                if seen.insert(key.clone()) {
                    changed.push(key);
                }
            }
        }
        // Windows the watermark has passed can change no more: their state goes, and with
        // EMIT ON WINDOW CLOSE this is when their rows appear, once.
        let closed = match (self.query.window_end, watermark) {
            (Some(end), Some(watermark)) => self.states.closed(end, watermark),
            _ => Vec::new(),
        };
        let closed_set: std::collections::HashSet<&Vec<u8>> = closed.iter().collect();
        let open: Vec<Vec<u8>> = changed
            .iter()
            .filter(|k| !closed_set.contains(k))
            .cloned()
            .collect();
        let emit = match self.def.emit {
            Emit::OnUpdate => &changed,
            Emit::OnWindowClose => &closed,
        };
        let open_states = self.states.batch(&open)?;
        let state_rows =
            ViewStore::encode(&open_states).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let emitted = self.states.batch(emit)?;
        register(&self.ctx, GROUPS, emitted.schema(), vec![emitted])?;
        let finished = self.ctx.sql(&self.final_sql).await?.collect().await?;
        self.states.remove(&closed);

        write.state = open.into_iter().zip(state_rows).collect();
        write.distinct = encode_distinct(self.states.take_new_distinct())?;
        write.state_deletes = closed;
        for batch in &finished {
            write.rows.extend(self.output_rows(batch)?);
        }
        self.commit(write).await
    }

    /// Commits an epoch and moves past it.
    async fn commit(&mut self, write: EpochWrite) -> Result<()> {
        let (next_seq, events_done) = (write.next_seq, write.events_done);
        let store = self.store.clone();
        blocking(move || store.commit(write)).await?;
        self.next_seq = next_seq;
        self.events_done = events_done;
        Ok(())
    }

    /// Each finished row as (group key, encoded row or `None` when `HAVING` drops it).
    fn output_rows(&self, batch: &RecordBatch) -> Result<Vec<RowChange>> {
        let outputs = self.def.columns.len();
        let output = batch.project(&(0..outputs).collect::<Vec<_>>())?;
        let rows = ViewStore::encode(&cast_to(&output, self.store.schema())?)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let keep = batch.column(outputs).as_boolean();
        let groups = batch.project(&(outputs + 1..batch.num_columns()).collect::<Vec<_>>())?;
        let keys = group_keys(&groups, self.query.group_columns)?;
        Ok(keys
            .into_iter()
            .zip(rows)
            .enumerate()
            .map(|(i, (key, row))| (key, (keep.is_valid(i) && keep.value(i)).then_some(row)))
            .collect())
    }
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

/// The watermark a windowed view over a source with one follows.
fn event_clock(
    def: &ViewDef,
    query: &ViewQuery,
    log: &SourceLog,
    watermark: Option<i64>,
) -> Option<EventClock> {
    match (&query.window, &log.def().watermark, log.event_time_column()) {
        (Some(_), Some(w), Some(column)) => Some(EventClock::new(
            ClockColumns {
                event_time: column,
                // `_received_at` follows the declared columns.
                received_at: log.def().columns.len(),
                delay_ms: w.delay_ms,
                max_future_skew_ms: log
                    .def()
                    .options
                    .max_future_skew_ms
                    .unwrap_or(DEFAULT_MAX_FUTURE_SKEW_MS),
            },
            watermark,
            &def.name,
            &log.def().name,
        )),
        _ => None,
    }
}

/// New `count(DISTINCT)` values in Weir's row format, encoded a column at a time.
fn encode_distinct(
    values: Vec<super::group_state::DistinctValue>,
) -> Result<Vec<crate::storage::DistinctEntry>> {
    let mut by_column: std::collections::BTreeMap<usize, Vec<(Vec<u8>, ScalarValue)>> =
        std::collections::BTreeMap::new();
    for (group, column, value) in values {
        by_column.entry(column).or_default().push((group, value));
    }
    let mut entries = Vec::new();
    for (column, values) in by_column {
        let array = ScalarValue::iter_to_array(values.iter().map(|(_, v)| v.clone()))?;
        let schema = Arc::new(Schema::new(vec![Field::new(
            "v",
            array.data_type().clone(),
            true,
        )]));
        let rows = ViewStore::encode(&RecordBatch::try_new(schema, vec![array])?)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        for ((group, _), row) in values.into_iter().zip(rows) {
            entries.push((group, column as u16, row));
        }
    }
    Ok(entries)
}

fn decode_value(ty: &DataType, bytes: &[u8]) -> Result<ScalarValue> {
    let schema = Arc::new(Schema::new(vec![Field::new("v", ty.clone(), true)]));
    let batch = crate::storage::row_codec::decode_rows(&schema, &[bytes])
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    ScalarValue::try_from_array(batch.column(0), 0)
}

/// `batch` with its columns cast to `schema`'s types.
fn cast_to(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| cast(c, f.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// (Re)binds `name` in `ctx` to `batches`.
fn register(
    ctx: &SessionContext,
    name: &str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<()> {
    let table = TableReference::bare(name.to_string());
    ctx.deregister_table(table.clone())?;
    ctx.register_table(table, Arc::new(MemTable::try_new(schema, vec![batches])?))?;
    Ok(())
}
