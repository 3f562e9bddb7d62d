//! Who may connect. `trust` (the default, listening on loopback) lets any user name in;
//! `scram` makes every Postgres connection log in with SCRAM-SHA-256 and every HTTP request
//! carry the same user's password (basic auth).

mod http;
mod scram;
mod users;

use serde::Deserialize;

pub use http::BasicAuth;
pub use scram::{Exchange, ScramError, Verifier};
pub use users::{User, UserError, Users};

/// How clients authenticate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every user name is accepted without a password.
    #[default]
    Trust,
    /// Users log in with their password, checked by SCRAM-SHA-256 on the Postgres port and by
    /// basic auth on the HTTP API.
    Scram,
}
