//! SCRAM-SHA-256 (RFC 5802, RFC 7677), as Postgres speaks it: the stored verifier and the
//! server's side of the exchange.
//!
//! Only the verifier is stored, in Postgres' own format
//! (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`): enough to check a client's
//! proof and to prove the server knows it, not enough to log in as the user.

use std::num::NonZeroU32;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};

/// Postgres' default iteration count (`scram_iterations`).
pub const ITERATIONS: u32 = 4096;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 18;
const PREFIX: &str = "SCRAM-SHA-256$";

/// What a user's password is stored as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    /// PBKDF2 iterations the salted password was derived with.
    pub iterations: u32,
    /// The password's salt.
    pub salt: Vec<u8>,
    /// SHA-256 of the client key: checks a client's proof.
    pub stored_key: Vec<u8>,
    /// Signs the server's final message, proving it holds the verifier.
    pub server_key: Vec<u8>,
}

/// Why an exchange failed. Every failure answers the client the same way (28P01).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A message did not parse; the part named.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// The client asked for channel binding (`SCRAM-SHA-256-PLUS`), which is not offered.
    #[error("channel binding is not supported")]
    ChannelBinding,
    /// The proof does not match the verifier.
    #[error("wrong password")]
    WrongPassword,
}

impl Verifier {
    /// The verifier of `password` with a fresh random salt.
    pub fn new(password: &str) -> Self {
        let mut salt = vec![0; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .expect("the system random source works");
        Self::with_salt(password, salt, ITERATIONS)
    }

    fn with_salt(password: &str, salt: Vec<u8>, iterations: u32) -> Self {
        let salted = salted_password(password, &salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        Self {
            iterations,
            stored_key: digest::digest(&digest::SHA256, &client_key)
                .as_ref()
                .to_vec(),
            server_key: hmac_sha256(&salted, b"Server Key"),
            salt,
        }
    }

    /// A verifier no password matches: what an unknown user is checked against, so that the
    /// exchange fails only at the proof, as for a wrong password, and names are not revealed.
    pub fn impossible() -> Self {
        let mut random = vec![0; SALT_LEN + 64];
        SystemRandom::new()
            .fill(&mut random)
            .expect("the system random source works");
        Self {
            iterations: ITERATIONS,
            salt: random[..SALT_LEN].to_vec(),
            stored_key: random[SALT_LEN..SALT_LEN + 32].to_vec(),
            server_key: random[SALT_LEN + 32..].to_vec(),
        }
    }

    /// Whether `password` is the one this verifier was made from (HTTP basic auth).
    pub fn matches(&self, password: &str) -> bool {
        let candidate = Self::with_salt(password, self.salt.clone(), self.iterations);
        ring_eq(&candidate.stored_key, &self.stored_key)
    }

    /// Parses the stored form.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(PREFIX)?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored_key, server_key) = keys.split_once(':')?;
        Some(Self {
            iterations: iterations.parse().ok().filter(|i| *i > 0)?,
            salt: BASE64.decode(salt).ok()?,
            stored_key: BASE64.decode(stored_key).ok().filter(|k| k.len() == 32)?,
            server_key: BASE64.decode(server_key).ok().filter(|k| k.len() == 32)?,
        })
    }
}

impl std::fmt::Display for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            BASE64.encode(&self.salt),
            BASE64.encode(&self.stored_key),
            BASE64.encode(&self.server_key)
        )
    }
}

/// The server's side of one exchange, between the client's first message and its final one.
#[derive(Debug)]
pub struct Exchange {
    verifier: Verifier,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl Exchange {
    /// Answers the client's first message (`n,,n=user,r=nonce`) with the server's first.
    pub fn start(client_first: &[u8], verifier: Verifier) -> Result<(Self, String), ScramError> {
        let mut nonce = vec![0; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system random source works");
        Self::start_with_nonce(client_first, verifier, &BASE64.encode(nonce))
    }

    fn start_with_nonce(
        client_first: &[u8],
        verifier: Verifier,
        server_nonce: &str,
    ) -> Result<(Self, String), ScramError> {
        let text = std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("UTF-8"))?;
        // gs2-header: a channel binding flag (`n`, or `y`: the client could but thinks the
        // server cannot; `p=` asks for binding, which is not offered), an empty authzid.
        let mut parts = text.splitn(3, ',');
        let flag = parts.next().ok_or(ScramError::Malformed("gs2 header"))?;
        let authzid = parts.next().ok_or(ScramError::Malformed("gs2 header"))?;
        let bare = parts
            .next()
            .ok_or(ScramError::Malformed("client-first-message-bare"))?;
        match flag {
            "n" | "y" => {}
            f if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
            _ => return Err(ScramError::Malformed("channel binding flag")),
        }
        if !authzid.is_empty() && !authzid.starts_with("a=") {
            return Err(ScramError::Malformed("authzid"));
        }
        // Postgres takes the user from the startup message; `n=` may be empty.
        let client_nonce = attribute(bare, "r").ok_or(ScramError::Malformed("client nonce"))?;
        if client_nonce.is_empty() || !bare.starts_with("n=") {
            return Err(ScramError::Malformed("client-first-message-bare"));
        }
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&verifier.salt),
            verifier.iterations
        );
        let exchange = Self {
            verifier,
            gs2_header: format!("{flag},{authzid},"),
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok((exchange, server_first))
    }

    /// Checks the client's final message (`c=...,r=...,p=proof`); on success, the server's
    /// final message (`v=signature`).
    pub fn finish(self, client_final: &[u8]) -> Result<String, ScramError> {
        let text = std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("proof"))?;
        let binding = attribute(without_proof, "c").ok_or(ScramError::Malformed("c="))?;
        if BASE64.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(ScramError::ChannelBinding);
        }
        if attribute(without_proof, "r") != Some(self.nonce.as_str()) {
            return Err(ScramError::Malformed("nonce"));
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let signature = hmac_sha256(&self.verifier.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(ScramError::WrongPassword);
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        let stored_key = digest::digest(&digest::SHA256, &client_key);
        if !ring_eq(stored_key.as_ref(), &self.verifier.stored_key) {
            return Err(ScramError::WrongPassword);
        }
        let server_signature = hmac_sha256(&self.verifier.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)))
    }
}

/// The value of `name=` among comma-separated attributes.
fn attribute<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .split(',')
        .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
}

fn salted_password(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    // SASLprep, as Postgres: a password it cannot normalise is used as it is.
    let normalized = stringprep::saslprep(password)
        .map(|p| p.into_owned())
        .unwrap_or_else(|_| password.to_string());
    let mut out = vec![0; digest::SHA256_OUTPUT_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(iterations).expect("iterations are positive"),
        salt,
        normalized.as_bytes(),
        &mut out,
    );
    out
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message)
        .as_ref()
        .to_vec()
}

/// Compares in time independent of where the inputs differ.
fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example exchange.
    #[test]
    fn rfc_7677_exchange() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let verifier = Verifier::with_salt("pencil", salt, 4096);
        let (exchange, server_first) = Exchange::start_with_nonce(
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            verifier.clone(),
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        )
        .unwrap();
        assert_eq!(
            server_first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let server_final = exchange
            .finish(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            )
            .unwrap();
        assert_eq!(
            server_final,
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );

        // The same exchange against another password's verifier fails at the proof.
        let other = Verifier::with_salt("pencil2", verifier.salt.clone(), 4096);
        let (exchange, _) = Exchange::start_with_nonce(
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            other,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        )
        .unwrap();
        assert_eq!(
            exchange.finish(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
            ),
            Err(ScramError::WrongPassword)
        );
    }

    #[test]
    fn verifiers_round_trip_their_stored_form_and_match_only_their_password() {
        let verifier = Verifier::new("s3cret");
        let stored = verifier.to_string();
        assert!(stored.starts_with("SCRAM-SHA-256$4096:"));
        assert!(!stored.contains("s3cret"));
        assert_eq!(Verifier::parse(&stored), Some(verifier.clone()));
        assert!(verifier.matches("s3cret"));
        assert!(!verifier.matches("s3cret "));
        assert_eq!(Verifier::parse("md5abc"), None);
        assert!(!Verifier::impossible().matches(""));
    }

    #[test]
    fn channel_binding_requests_and_bad_nonces_are_refused() {
        let verifier = Verifier::new("x");
        assert_eq!(
            Exchange::start(b"p=tls-server-end-point,,n=,r=abc", verifier.clone()).unwrap_err(),
            ScramError::ChannelBinding
        );
        let (exchange, _) = Exchange::start(b"n,,n=,r=abc", verifier).unwrap();
        assert_eq!(
            exchange.finish(b"c=biws,r=abcWRONG,p=AAAA").unwrap_err(),
            ScramError::Malformed("nonce")
        );
    }
}
