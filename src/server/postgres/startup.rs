//! Connection startup: protocol negotiation, the session made from the client's startup
//! options, and the `ParameterStatus` messages that tell the client what that session is.
//!
//! The reported values come from the session itself, so what a client learns at connect
//! (pgjdbc checks `DateStyle` starts with `ISO` and reads `server_version`, psycopg reads
//! `client_encoding`) is what `SHOW` answers later.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::LazyLock;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::{
    ServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{ClientInfo, PidSecretKeyGenerator, RandomPidSecretKeyGenerator};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::handler::{Connection, Handlers};
use crate::query::Session;

/// Startup options a client may send that are also session settings.
const STARTUP_SETTINGS: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "extra_float_digits",
    "TimeZone",
    "search_path",
];

/// The settings Postgres reports to the client at startup (its `GUC_REPORT` settings), read
/// from the session.
const REPORTED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "integer_datetimes",
    "IntervalStyle",
    "server_encoding",
    "server_version",
    "standard_conforming_strings",
    "TimeZone",
];

static KEYS: LazyLock<RandomPidSecretKeyGenerator> =
    LazyLock::new(RandomPidSecretKeyGenerator::default);

#[async_trait]
impl StartupHandler for Handlers {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let PgWireFrontendMessage::Startup(startup) = &message else {
            return Ok(());
        };
        protocol_negotiation(client, startup).await?;
        save_startup_parameters_to_metadata(client, startup);
        let session = Session::new();
        for name in STARTUP_SETTINGS {
            let value = client
                .metadata()
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone());
            if let Some(value) = value {
                // A client's startup options are hints; one Weir does not accept is ignored.
                let _ = session.set(name, Some(value));
            }
        }
        let (pid, secret) = KEYS.generate(client);
        client.set_pid_and_secret_key(pid, secret.clone());
        let parameters = Reported(reported(&session, client));
        let cancel = self.cancels.register(pid, &secret);
        client
            .session_extensions()
            .insert(Connection { session, cancel });
        finish_authentication(client, &parameters).await
    }
}

/// The settings Postgres reports that changed since this was last asked, with their values:
/// what to send again after a statement.
pub(super) fn changed_reported_settings(session: &Session) -> Vec<(String, String)> {
    session
        .take_changed()
        .into_iter()
        .filter(|(name, _)| REPORTED.contains(&name.as_str()))
        .collect()
}

/// The `ParameterStatus` values of a new session.
fn reported<C: ClientInfo>(session: &Session, client: &C) -> HashMap<String, String> {
    // All of them are sent now: the startup options' changes need no second report.
    session.take_changed();
    let mut parameters: HashMap<String, String> = REPORTED
        .iter()
        .filter_map(|name| session.get(name).ok())
        .collect();
    if let Some(user) = client.metadata().get("user") {
        parameters.insert("session_authorization".into(), user.clone());
    }
    // No roles yet: every user may do everything (no auth until issue 8's SCRAM lands).
    parameters.insert("is_superuser".into(), "on".into());
    parameters.insert("in_hot_standby".into(), "off".into());
    parameters.insert("default_transaction_read_only".into(), "off".into());
    parameters
}

struct Reported(HashMap<String, String>);

impl ServerParameterProvider for Reported {
    fn server_parameters<C: ClientInfo>(&self, _client: &C) -> Option<HashMap<String, String>> {
        Some(self.0.clone())
    }
}
