//! The users that may log in: name, whether they may log in, and their SCRAM verifier.
//! Persisted in the `meta` column family (`user:` ++ name), read once at start and kept in
//! memory; every change is written before it is visible.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::scram::Verifier;
use crate::storage::{Cf, Db, StorageError};

const PREFIX: &[u8] = b"user:";

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// `LOGIN`: `CREATE USER` gives it, `CREATE ROLE` does not.
    pub login: bool,
    /// The SCRAM verifier of the password; none, and the user cannot log in with one.
    pub password: Option<String>,
}

impl User {
    /// The verifier a login must match, if this user may log in with a password.
    pub fn verifier(&self) -> Option<Verifier> {
        self.password
            .as_deref()
            .filter(|_| self.login)
            .and_then(Verifier::parse)
    }
}

/// Why a user statement failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A user or role of that name exists.
    #[error("role \"{0}\" already exists")]
    Exists(String),
    /// No user or role has that name.
    #[error("role \"{0}\" does not exist")]
    Missing(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Every user, in memory and in storage.
#[derive(Debug)]
pub struct Users {
    db: Arc<Db>,
    users: RwLock<BTreeMap<String, User>>,
}

impl Users {
    /// Loads the stored users.
    pub fn open(db: Arc<Db>) -> Result<Self, StorageError> {
        let mut users = BTreeMap::new();
        for (key, value) in db.scan_prefix(Cf::Meta, PREFIX)? {
            let name = String::from_utf8(key[PREFIX.len()..].to_vec())
                .map_err(|_| StorageError::Corrupt("user name".into()))?;
            let user = serde_json::from_slice(&value)
                .map_err(|e| StorageError::Corrupt(format!("user {name}: {e}")))?;
            users.insert(name, user);
        }
        Ok(Self {
            db,
            users: RwLock::new(users),
        })
    }

    /// The user named `name`.
    pub fn get(&self, name: &str) -> Option<User> {
        self.read().get(name).cloned()
    }

    /// Whether there are no users (SCRAM would let nobody in).
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Every user, by name.
    pub fn all(&self) -> Vec<(String, User)> {
        self.read()
            .iter()
            .map(|(n, u)| (n.clone(), u.clone()))
            .collect()
    }

    /// `CREATE USER`/`CREATE ROLE`; `Ok(false)` when it exists and `if_not_exists` was given.
    pub fn create(&self, name: &str, user: User, if_not_exists: bool) -> Result<bool, UserError> {
        let mut users = self.write();
        if users.contains_key(name) {
            return if if_not_exists {
                Ok(false)
            } else {
                Err(UserError::Exists(name.into()))
            };
        }
        self.store(name, Some(&user))?;
        users.insert(name.into(), user);
        Ok(true)
    }

    /// `ALTER USER`: changes what `change` changes.
    pub fn alter(&self, name: &str, change: impl FnOnce(&mut User)) -> Result<(), UserError> {
        let mut users = self.write();
        let mut user = users
            .get(name)
            .cloned()
            .ok_or_else(|| UserError::Missing(name.into()))?;
        change(&mut user);
        self.store(name, Some(&user))?;
        users.insert(name.into(), user);
        Ok(())
    }

    /// `DROP USER`; `Ok(false)` when it does not exist and `if_exists` was given.
    pub fn drop_user(&self, name: &str, if_exists: bool) -> Result<bool, UserError> {
        let mut users = self.write();
        if !users.contains_key(name) {
            return if if_exists {
                Ok(false)
            } else {
                Err(UserError::Missing(name.into()))
            };
        }
        self.store(name, None)?;
        users.remove(name);
        Ok(true)
    }

    fn store(&self, name: &str, user: Option<&User>) -> Result<(), StorageError> {
        let mut key = PREFIX.to_vec();
        key.extend(name.as_bytes());
        let mut batch = rocksdb::WriteBatch::default();
        match user {
            Some(user) => batch.put_cf(
                self.db.cf(Cf::Meta),
                key,
                serde_json::to_vec(user).expect("a user serializes"),
            ),
            None => batch.delete_cf(self.db.cf(Cf::Meta), key),
        }
        self.db.write(batch)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, User>> {
        self.users.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, User>> {
        self.users.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_persist_and_statements_report_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(dir.path()).unwrap());
        let users = Users::open(db.clone()).unwrap();
        let alice = User {
            login: true,
            password: Some(Verifier::new("a").to_string()),
        };
        assert!(users.create("alice", alice.clone(), false).unwrap());
        assert!(!users.create("alice", alice.clone(), true).unwrap());
        assert!(matches!(
            users.create("alice", alice, false),
            Err(UserError::Exists(_))
        ));
        users
            .alter("alice", |u| {
                u.password = Some(Verifier::new("b").to_string())
            })
            .unwrap();
        users
            .create(
                "reporting",
                User {
                    login: false,
                    password: None,
                },
                false,
            )
            .unwrap();
        drop(users);

        let users = Users::open(db).unwrap();
        assert!(users.get("alice").unwrap().verifier().unwrap().matches("b"));
        assert_eq!(users.get("reporting").unwrap().verifier(), None);
        assert!(users.drop_user("reporting", false).unwrap());
        assert!(!users.drop_user("reporting", true).unwrap());
        assert!(matches!(
            users.drop_user("reporting", false),
            Err(UserError::Missing(_))
        ));
    }
}
