//! Per-connection state: the settings a client may `SET` and `SHOW`, and whether it is inside a
//! transaction block.
//!
//! Weir commits every statement on its own. `BEGIN`/`COMMIT` are accepted so drivers that wrap
//! statements in transactions work; the session remembers how many writes a block applied, so a
//! `ROLLBACK` after writes can say that it undid nothing instead of pretending.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::query::QueryError;

/// Settings a client may read and change, with their defaults. The names are the ones clients
/// send at connect (JDBC, psycopg, psql, Grafana) and read back.
const SETTINGS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("client_min_messages", "notice"),
    ("DateStyle", "ISO, MDY"),
    ("default_transaction_isolation", "read committed"),
    ("extra_float_digits", "1"),
    ("integer_datetimes", "on"),
    ("IntervalStyle", "postgres"),
    ("lc_messages", "C"),
    ("max_identifier_length", "63"),
    ("search_path", "\"$user\", public"),
    ("server_encoding", "UTF8"),
    ("server_version", "15.0"),
    ("server_version_num", "150000"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("TimeZone", "UTC"),
    ("transaction_isolation", "read committed"),
];

/// Settings that only the server sets.
const READ_ONLY: &[&str] = &[
    "integer_datetimes",
    "max_identifier_length",
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
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

impl Session {
    /// A session with default settings, outside any transaction block.
    pub fn new() -> Self {
        let settings = SETTINGS
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), (*name, value.to_string())))
            .collect();
        Self {
            settings: Mutex::new(settings),
            changed: Mutex::default(),
            writes_in_block: Mutex::new(None),
        }
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
