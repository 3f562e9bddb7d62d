//! HTTP basic auth against the users' SCRAM verifiers. Checking a password derives its salted
//! form (4,096 PBKDF2 rounds, about a millisecond), so a checked password is remembered by its
//! hash beside the verifier it matched: a changed or dropped user's next request is checked
//! again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::digest;

use super::Users;

/// Checks `Authorization: Basic` headers.
#[derive(Debug)]
pub struct BasicAuth {
    users: Arc<Users>,
    /// SHA-256 of `user:password` -> the verifier it matched.
    checked: Mutex<HashMap<Vec<u8>, String>>,
}

/// Remembered passwords at most; beyond, the memory starts over.
const MAX_REMEMBERED: usize = 10_000;

impl BasicAuth {
    /// Checks against `users`.
    pub fn new(users: Arc<Users>) -> Self {
        Self {
            users,
            checked: Mutex::new(HashMap::new()),
        }
    }

    /// The user an `Authorization` header value logs in as, if its password is right.
    pub fn user(&self, authorization: Option<&str>) -> Option<String> {
        if let Some(user) = self.remembered(authorization) {
            return Some(user);
        }
        let decoded = decode(authorization)?;
        let (name, password) = decoded.split_once(':')?;
        let stored = self.users.get(name)?;
        if !stored.verifier()?.matches(password) {
            return None;
        }
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        if checked.len() >= MAX_REMEMBERED {
            checked.clear();
        }
        checked.insert(remembered_key(&decoded), stored.password?);
        Some(name.to_string())
    }

    /// The user, if this header's password was checked before against the user's present
    /// verifier: cheap, unlike [`Self::user`], which may hash the password.
    pub fn remembered(&self, authorization: Option<&str>) -> Option<String> {
        let decoded = decode(authorization)?;
        let (name, _) = decoded.split_once(':')?;
        let stored = self.users.get(name)?;
        stored.verifier()?;
        let checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        (checked.get(&remembered_key(&decoded)) == stored.password.as_ref())
            .then(|| name.to_string())
    }
}

/// `user:password` from a basic `Authorization` header value.
fn decode(authorization: Option<&str>) -> Option<String> {
    let encoded = authorization?.strip_prefix("Basic ")?.trim();
    String::from_utf8(BASE64.decode(encoded).ok()?).ok()
}

fn remembered_key(credentials: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, credentials.as_bytes())
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{User, Verifier};
    use crate::storage::Db;

    #[test]
    fn basic_auth_takes_the_right_password_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let users = Arc::new(Users::open(Arc::new(Db::open(dir.path()).unwrap())).unwrap());
        let user = |password: &str| User {
            login: true,
            password: Some(Verifier::new(password).to_string()),
        };
        users.create("alice", user("pw"), false).unwrap();
        let auth = BasicAuth::new(users.clone());
        let header = |credentials: &str| format!("Basic {}", BASE64.encode(credentials));
        assert_eq!(auth.user(Some(&header("alice:pw"))), Some("alice".into()));
        // Remembered, and still right.
        assert_eq!(
            auth.remembered(Some(&header("alice:pw"))),
            Some("alice".into())
        );
        assert_eq!(auth.user(Some(&header("alice:pw"))), Some("alice".into()));
        assert_eq!(auth.remembered(Some(&header("alice:nope"))), None);
        assert_eq!(auth.user(Some(&header("alice:nope"))), None);
        assert_eq!(auth.user(Some(&header("bob:pw"))), None);
        assert_eq!(auth.user(Some("Bearer x")), None);
        assert_eq!(auth.user(None), None);
        users
            .alter("alice", |u| {
                u.password = Some(Verifier::new("new").to_string())
            })
            .unwrap();
        assert_eq!(auth.remembered(Some(&header("alice:pw"))), None);
        assert_eq!(auth.user(Some(&header("alice:pw"))), None);
        assert_eq!(auth.user(Some(&header("alice:new"))), Some("alice".into()));
    }
}
