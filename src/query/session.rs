//! Per-connection state: the settings a client may `SET` and `SHOW`, and whether it is inside a
//! transaction block.
//!
//! Weir commits every statement on its own. `BEGIN`/`COMMIT` are accepted so drivers that wrap
//! statements in transactions work; the session remembers how many writes a block applied, so a
//! `ROLLBACK` after writes can say that it undid nothing instead of pretending.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::execution::TaskContext;

use crate::query::QueryError;
use crate::query::engine::DATABASE;
use crate::query::pg_catalog::ConnectedDatabase;

/// Settings a client may read and change, with their defaults: the parameters of Postgres 15's
/// `SHOW ALL` that drivers and BI tools send at connect or read with `current_setting` and
/// `SHOW` (SQLAlchemy's table reflection compares `pg_am.amname` with
/// `default_table_access_method`), with the values Postgres 15 gives them on a server like
/// Weir's: UTF-8, the C locale, no timeouts, read-write, read committed.
const SETTINGS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("array_nulls", "on"),
    ("backslash_quote", "safe_encoding"),
    ("block_size", "8192"),
    ("bytea_output", "hex"),
    ("check_function_bodies", "on"),
    ("client_encoding", "UTF8"),
    ("client_min_messages", "notice"),
    ("DateStyle", "ISO, MDY"),
    ("default_table_access_method", "heap"),
    ("default_transaction_deferrable", "off"),
    ("default_transaction_isolation", "read committed"),
    ("default_transaction_read_only", "off"),
    ("escape_string_warning", "on"),
    ("extra_float_digits", "1"),
    ("idle_in_transaction_session_timeout", "0"),
    ("idle_session_timeout", "0"),
    ("integer_datetimes", "on"),
    ("IntervalStyle", "postgres"),
    ("lc_collate", "C"),
    ("lc_ctype", "C"),
    ("lc_messages", "C"),
    ("lc_monetary", "C"),
    ("lc_numeric", "C"),
    ("lc_time", "C"),
    ("lock_timeout", "0"),
    ("max_function_args", "100"),
    ("max_identifier_length", "63"),
    ("max_index_keys", "32"),
    ("row_security", "on"),
    ("search_path", "\"$user\", public"),
    ("server_encoding", "UTF8"),
    ("server_version", "15.0"),
    ("server_version_num", "150000"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("synchronous_commit", "on"),
    ("TimeZone", "UTC"),
    ("timezone_abbreviations", "Default"),
    ("transaction_deferrable", "off"),
    ("transaction_isolation", "read committed"),
    ("transaction_read_only", "off"),
    ("xmloption", "content"),
];

/// Settings that only the server sets.
const READ_ONLY: &[&str] = &[
    "block_size",
    "integer_datetimes",
    "lc_collate",
    "lc_ctype",
    "max_function_args",
    "max_identifier_length",
    "max_index_keys",
    "server_encoding",
    "server_version",
    "server_version_num",
];

/// One client connection's session.
#[derive(Debug)]
pub struct Session {
    settings: Mutex<BTreeMap<String, (&'static str, String)>>,
    /// Settings whose value changed since [`Session::take_changed`] last looked.
    changed: Mutex<Vec<&'static str>>,
    writes_in_block: Mutex<Option<u64>>,
    /// The name the client connected to the database by (see [`Session::connected`]).
    database: String,
    /// The task context this session's queries run with, made at its first query.
    task_ctx: OnceLock<Arc<TaskContext>>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    /// A session with default settings, outside any transaction block, connected to the
    /// database by its own name.
    pub fn new() -> Self {
        Self::connected(DATABASE)
    }

    /// A new session of a client that connected to the database as `database`. Weir has one
    /// database, which clients may name as they like (psql's default is the user's name): each
    /// session's `current_database()`, `pg_database` and `information_schema` say the name it
    /// was opened with, as Postgres' say the database a connection is in.
    pub fn connected(database: &str) -> Self {
        let settings = SETTINGS
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), (*name, value.to_string())))
            .collect();
        Self {
            settings: Mutex::new(settings),
            changed: Mutex::default(),
            writes_in_block: Mutex::new(None),
            database: database.to_string(),
            task_ctx: OnceLock::new(),
        }
    }

    /// The name the client connected to the database by.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// `shared`, the engine's task context, as this session's queries run with it: carrying
    /// the name the session connected by, which the catalog tables read when they run. Made
    /// once per session (copying a task context copies every function registry).
    pub fn task_ctx(&self, shared: &Arc<TaskContext>) -> Arc<TaskContext> {
        if self.database == DATABASE {
            return shared.clone();
        }
        self.task_ctx
            .get_or_init(|| {
                let config = shared
                    .session_config()
                    .clone()
                    .with_extension(Arc::new(ConnectedDatabase(self.database.clone())));
                Arc::new(TaskContext::new(
                    shared.task_id(),
                    shared.session_id(),
                    config,
                    shared.scalar_functions().clone(),
                    shared.higher_order_functions().clone(),
                    shared.aggregate_functions().clone(),
                    shared.window_functions().clone(),
                    shared.runtime_env(),
                ))
            })
            .clone()
    }

    /// The value of a setting (names are case-insensitive).
    pub fn get(&self, name: &str) -> Result<(String, String), QueryError> {
        let settings = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let key = match name.to_ascii_lowercase().as_str() {
            // `SHOW TRANSACTION ISOLATION LEVEL`, as JDBC asks it.
            "transaction isolation level" => "transaction_isolation".to_string(),
            other => other.to_string(),
        };
        settings
            .get(&key)
            .map(|(display, value)| (display.to_string(), value.clone()))
            .ok_or_else(|| QueryError::UnknownSetting(name.to_string()))
    }

    /// Every setting as `(name, value)`, for `SHOW ALL`.
    pub fn all(&self) -> Vec<(String, String)> {
        let settings = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        settings
            .values()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect()
    }

    /// `RESET ALL`, `DISCARD ALL`: every setting a client may change back to its default.
    pub fn reset_all(&self) {
        for (name, default) in SETTINGS {
            if !READ_ONLY.contains(name) {
                self.store(name, default.to_string());
            }
        }
    }

    /// The settings whose value changed since the last call, with their values now.
    pub fn take_changed(&self) -> Vec<(String, String)> {
        let changed = std::mem::take(&mut *self.changed.lock().unwrap_or_else(|e| e.into_inner()));
        let mut seen = Vec::with_capacity(changed.len());
        for name in changed {
            if !seen.contains(&name) {
                seen.push(name);
            }
        }
        seen.into_iter()
            .filter_map(|name| self.get(name).ok())
            .collect()
    }

    /// Sets `name` (a name of [`SETTINGS`]) to `value`, noting it if that changes it.
    fn store(&self, name: &'static str, value: String) {
        let mut settings = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let old = settings.insert(name.to_ascii_lowercase(), (name, value.clone()));
        if old.is_none_or(|(_, old)| old != value) {
            self.changed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(name);
        }
    }

    /// `statement_timeout`: milliseconds when a bare number (as Postgres reads it), else a
    /// duration (`'5s'`, `'1 min'`); `None` when 0 or unreadable.
    pub fn statement_timeout(&self) -> Option<std::time::Duration> {
        let (_, value) = self.get("statement_timeout").ok()?;
        let value = value.trim().trim_matches('\'');
        let ms = match value.parse::<u64>() {
            Ok(ms) => ms,
            Err(_) => weir_sql::plan::parse_duration_ms(value).ok()?,
        };
        (ms > 0).then(|| std::time::Duration::from_millis(ms))
    }

    /// Changes a setting; `None` restores its default.
    pub fn set(&self, name: &str, value: Option<String>) -> Result<(), QueryError> {
        let key = name.to_ascii_lowercase();
        let (display, default) = SETTINGS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&key))
            .ok_or_else(|| QueryError::UnknownSetting(name.to_string()))?;
        if READ_ONLY.iter().any(|n| n.eq_ignore_ascii_case(&key)) {
            return Err(QueryError::InvalidParameter(format!(
                "parameter \"{display}\" cannot be changed"
            )));
        }
        self.store(display, value.unwrap_or_else(|| default.to_string()));
        Ok(())
    }

    /// Enters a transaction block.
    pub fn begin(&self) {
        *self
            .writes_in_block
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(0);
    }

    /// Counts a write applied inside the current block, if any.
    pub fn note_write(&self) {
        if let Some(writes) = self
            .writes_in_block
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            *writes += 1;
        }
    }

    /// Leaves the transaction block, returning how many writes it applied.
    pub fn end(&self) -> u64 {
        self.writes_in_block
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_show_and_refusals() {
        let session = Session::new();
        session.set("EXTRA_FLOAT_DIGITS", Some("3".into())).unwrap();
        assert_eq!(
            session.get("extra_float_digits").unwrap(),
            ("extra_float_digits".into(), "3".into())
        );
        session.set("extra_float_digits", None).unwrap();
        assert_eq!(session.get("extra_float_digits").unwrap().1, "1");
        assert!(matches!(
            session.set("no_such", Some("x".into())),
            Err(QueryError::UnknownSetting(_))
        ));
        assert_eq!(
            session.get("TRANSACTION ISOLATION LEVEL").unwrap().1,
            "read committed"
        );
        assert!(session.set("server_version", Some("1".into())).is_err());
        session.begin();
        session.note_write();
        assert_eq!(session.end(), 1);
        assert_eq!(session.end(), 0);
    }
}
