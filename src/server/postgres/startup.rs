//! Connection startup: protocol negotiation, the session made from the client's startup
//! options, and the `ParameterStatus` messages that tell the client what that session is.
//!
//! With `--auth scram` the client logs in first with SCRAM-SHA-256 against the verifier
//! stored for its user.
//!
//! The reported values come from the session itself, so what a client learns at connect
//! (pgjdbc checks `DateStyle` starts with `ISO` and reads `server_version`, psycopg reads
//! `client_encoding`) is what `SHOW` answers later.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{LazyLock, Mutex};

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    ServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::handler::{Connection, Handlers};
use crate::auth::{AuthMode, Exchange, Verifier};
use crate::query::Session;

/// The one SASL mechanism offered (channel binding, `-PLUS`, is not).
const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

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
        match message {
            PgWireFrontendMessage::Startup(startup) => {
                protocol_negotiation(client, &startup).await?;
                save_startup_parameters_to_metadata(client, &startup);
                match self.auth {
                    AuthMode::Trust => self.open_session(client).await,
                    AuthMode::Scram => {
                        client.set_state(PgWireConnectionState::AuthenticationInProgress);
                        let mechanisms = vec![SCRAM_SHA_256.to_string()];
                        client
                            .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                                mechanisms,
                            )))
                            .await?;
                        Ok(())
                    }
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(message)
                if self.auth == AuthMode::Scram =>
            {
                self.scram_step(client, message).await
            }
            _ => Ok(()),
        }
    }
}

/// A SCRAM exchange between the server's first message and the client's final one.
struct PendingScram(Mutex<Option<Exchange>>);

impl Handlers {
    /// One step of SCRAM-SHA-256: the client's first message is answered with the server's
    /// first, its final message checked; then the session opens. Any failure is 28P01, the
    /// same for a wrong password, an unknown user or a malformed message.
    async fn scram_step<C>(
        &self,
        client: &mut C,
        message: PasswordMessageFamily,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        let pending = client
            .session_extensions()
            .get::<PendingScram>()
            .and_then(|p| p.0.lock().unwrap_or_else(|e| e.into_inner()).take());
        match pending {
            None => {
                let initial = message.into_sasl_initial_response()?;
                if initial.auth_method != SCRAM_SHA_256 {
                    return Err(authentication_failed(&user));
                }
                let verifier = self
                    .engine()
                    .users()
                    .get(&user)
                    .and_then(|u| u.verifier())
                    .unwrap_or_else(Verifier::impossible);
                let data = initial.data.unwrap_or_default();
                let (exchange, server_first) =
                    Exchange::start(&data, verifier).map_err(|_| authentication_failed(&user))?;
                client
                    .session_extensions()
                    .insert(PendingScram(Mutex::new(Some(exchange))));
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::SASLContinue(server_first.into()),
                    ))
                    .await?;
                Ok(())
            }
            Some(exchange) => {
                let response = message.into_sasl_response()?;
                let server_final = exchange.finish(&response.data).map_err(|e| {
                    tracing::info!(%user, reason = %e, "authentication failed");
                    authentication_failed(&user)
                })?;
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::SASLFinal(server_final.into()),
                    ))
                    .await?;
                self.open_session(client).await
            }
        }
    }

    /// Makes the session from the client's startup options and tells the client it is in.
    async fn open_session<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Postgres' default database is the user's name.
        let metadata = client.metadata();
        let session = match metadata.get("database").or_else(|| metadata.get("user")) {
            Some(database) if !database.is_empty() => Session::connected(database),
            _ => Session::new(),
        };
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
        client.session_extensions().insert(Connection {
            session,
            cancel,
            peer: super::peer::Peer::accepted(),
        });
        finish_authentication(client, &parameters).await
    }
}

/// `FATAL 28P01`: the connection closes with it.
fn authentication_failed(user: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        "28P01".into(),
        format!("password authentication failed for user \"{user}\""),
    )))
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
    // No privileges yet: every user may do everything.
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
