//! pgwire's handler traits, implemented over the engine. Simple and extended protocol share
//! everything after parsing: [`parse_client_sql`], [`Engine::execute`], [`encode::response`].

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{FutureExt, Sink, SinkExt};
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Flush, Parse, ParseComplete, Sync as SyncMessage,
};
use pgwire::messages::response::{NoticeResponse, ReadyForQuery};
use pgwire::messages::startup::ParameterStatus;
use weir_sql::SqlError;

use super::cancel::{CancelRegistry, CancelSignal};
use super::encode;
use super::error::pg_error;
use crate::query::{Engine, Prepared, QueryError, QueryResult, Session, parse_client_sql};
use crate::telemetry::{self, InFlight};

/// Everything a connection needs, shared by all connections.
#[derive(Debug)]
pub struct Handlers {
    engine: Arc<Engine>,
    /// How connections log in.
    pub(super) auth: crate::auth::AuthMode,
    pub(super) cancels: Arc<CancelRegistry>,
    parser: Arc<StatementParser>,
}

impl Handlers {
    /// Handlers over `engine`, logging connections in as `auth` says.
    pub fn new(engine: Arc<Engine>, auth: crate::auth::AuthMode) -> Self {
        Self {
            auth,
            parser: Arc::new(StatementParser {
                engine: engine.clone(),
            }),
            engine,
            cancels: Arc::new(CancelRegistry::default()),
        }
    }

    pub(super) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Runs one statement for `client`, stopping if the client cancels it or it outlasts the
    /// session's `statement_timeout`.
    async fn run<C>(
        &self,
        client: &mut C,
        work: Work<'_>,
        params: Option<datafusion::common::ParamValues>,
        format: &Format,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let connection = connection(client)?;
        let deadline = connection
            .session
            .statement_timeout()
            .map(|timeout| tokio::time::Instant::now() + timeout);
        let running = InFlight::new(telemetry::PG_STATEMENTS_RUNNING);
        let session = &connection.session;
        let execution = match work {
            Work::Statement(statement) => self.engine.execute(session, statement, params).boxed(),
            Work::Prepared(prepared) => self
                .engine
                .execute_prepared(session, prepared, params)
                .boxed(),
        };
        let result = tokio::select! {
            biased;
            reason = stop(&connection, deadline, None) => Err(reason),
            result = execution => result,
        };
        // Like Postgres, tell the client about reported settings the statement changed (`SET
        // application_name`, `RESET ALL`, `set_config`).
        for (name, value) in super::startup::changed_reported_settings(&connection.session) {
            client
                .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                    name, value,
                )))
                .await?;
        }
        if let Ok(QueryResult::TransactionEnd {
            warning: Some(warning),
            ..
        }) = &result
        {
            let notice = ErrorInfo::new("WARNING".into(), "01000".into(), warning.clone());
            client
                .send(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(
                    notice,
                )))
                .await?;
        }
        encode::response(
            result.map_err(pg_error)?,
            format,
            encode::format_options(&connection.session),
            // Rows stream after this returns: the statement runs until they end.
            stop(&connection, deadline, Some(running)),
        )
    }
}

/// What a client asked to run: a statement of a simple query, or a prepared one.
enum Work<'a> {
    Statement(&'a weir_sql::Statement),
    Prepared(&'a Prepared),
}

/// A connection's own state, made at startup (`startup.rs`) and kept in pgwire's session
/// extensions.
#[derive(Debug)]
pub(super) struct Connection {
    pub(super) session: Session,
    pub(super) cancel: CancelSignal,
    /// Watches for the client leaving while a statement runs, and holds an exchange's
    /// replies until its end.
    pub(super) peer: super::peer::Peer,
}

/// Resolves, with the reason, when the client cancels the running statement, `deadline` (its
/// `statement_timeout`) passes or the client goes away. Holds `running` until it resolves or
/// is dropped.
fn stop(
    connection: &Connection,
    deadline: Option<tokio::time::Instant>,
    running: Option<InFlight>,
) -> impl std::future::Future<Output = QueryError> + Send + 'static {
    let cancelled = connection.cancel.cancelled();
    let gone = connection.peer.gone();
    async move {
        let _running = running;
        let timeout = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = cancelled => QueryError::Canceled,
            _ = timeout => QueryError::StatementTimeout,
            _ = gone => QueryError::ClientGone,
        }
    }
}

/// Holds `client`'s replies until [`send_held`] (`peer.rs`).
fn hold_replies<C: ClientInfo>(client: &C) {
    if let Ok(connection) = connection(client) {
        connection.peer.hold_replies();
    }
}

/// Sends what [`hold_replies`] held.
fn send_held<C: ClientInfo>(client: &C) {
    if let Ok(connection) = connection(client) {
        connection.peer.send_held();
    }
}

fn connection<C: ClientInfo>(client: &C) -> PgWireResult<Arc<Connection>> {
    client
        .session_extensions()
        .get::<Connection>()
        .ok_or_else(|| PgWireError::ApiError("connection used before startup completed".into()))
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::new(self.clone_shallow())
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::new(self.clone_shallow())
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::new(self.clone_shallow())
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancels.clone()
    }
}

impl Handlers {
    fn clone_shallow(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            auth: self.auth,
            cancels: self.cancels.clone(),
            parser: self.parser.clone(),
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for Handlers {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // A simple query is an exchange of its own: what an unfinished extended one left
        // held goes now, and this one's replies go as pgwire writes them.
        send_held(client);
        let statements = parse_client_sql(query).map_err(|e| pg_error(e.into()))?;
        if statements.is_empty() {
            // Only comments or semicolons: Postgres answers EmptyQueryResponse, which Grafana's
            // "Save & test" (`-- ping`) waits for.
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        for statement in &statements {
            match self
                .run(
                    client,
                    Work::Statement(statement),
                    None,
                    &Format::UnifiedText,
                )
                .await
            {
                Ok(response) => responses.push(response),
                Err(PgWireError::UserError(info)) => {
                    // Postgres stops a multi-statement query at its first error.
                    responses.push(Response::Error(info));
                    break;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Handlers {
    type Statement = Prepared;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    // `on_parse`, `on_bind`, `on_sync` and `on_flush` are pgwire's, except that the replies
    // to an exchange are held until its end (see `peer.rs`): `ParseComplete` and
    // `BindComplete` are queued rather than flushed, and the socket is corked from Parse or
    // Bind (pgwire's `on_execute` flushes `CommandComplete`) until Sync or Flush.

    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        hold_replies(client);
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME).to_owned();
        match StoredStatement::parse(client, &message, self.query_parser()).await? {
            Some(statement) => client.portal_store().put_statement(Arc::new(statement)),
            None => client.portal_store().put_empty_statement(&name),
        }
        client
            .feed(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        hold_replies(client);
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) if message.parameters.is_empty() => {
                client.portal_store().put_empty_portal(portal_name);
            }
            Some(Entry::Empty) => {
                return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                    "ERROR".to_owned(),
                    "08P01".to_owned(),
                    format!(
                        "bind message supplies {} parameters, but prepared statement {statement_name:?} requires 0",
                        message.parameters.len(),
                    ),
                ))));
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_sync<C>(&self, client: &mut C, _message: SyncMessage) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(DEFAULT_NAME);
        let ready = ReadyForQuery::new(client.transaction_status());
        client
            .send(PgWireBackendMessage::ReadyForQuery(ready))
            .await?;
        send_held(client);
        Ok(())
    }

    async fn on_flush<C>(&self, client: &mut C, _message: Flush) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.flush().await?;
        send_held(client);
        Ok(())
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let params = if portal.parameter_len() == 0 {
            None
        } else {
            let inferred: Vec<Option<&datafusion::arrow::datatypes::DataType>> =
                prepared.param_types.iter().map(Option::as_ref).collect();
            Some(
                arrow_pg::datatypes::df::deserialize_parameters(portal, &inferred).map_err(
                    |e| match e {
                        PgWireError::UserError(info) => PgWireError::UserError(info),
                        other => pg_error(QueryError::InvalidParameter(other.to_string())),
                    },
                )?,
            )
        };
        self.run(
            client,
            Work::Prepared(prepared),
            params,
            &portal.result_column_format,
        )
        .await
    }
}

/// Parses and describes statements for the extended protocol.
#[derive(Debug)]
pub struct StatementParser {
    engine: Arc<Engine>,
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = parse_client_sql(sql).map_err(|e| pg_error(e.into()))?;
        let statement = match statements.len() {
            0 => return Ok(None),
            1 => statements.remove(0),
            _ => {
                return Err(pg_error(QueryError::Sql(SqlError::Syntax {
                    message: "cannot insert multiple commands into a prepared statement".into(),
                    position: None,
                })));
            }
        };
        self.engine
            .prepare(statement)
            .await
            .map(Some)
            .map_err(pg_error)
    }

    fn get_parameter_types(&self, statement: &Prepared) -> PgWireResult<Vec<Type>> {
        statement
            .param_types
            .iter()
            .map(|ty| match ty {
                Some(ty) => arrow_pg::datatypes::into_pg_type(ty),
                None => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(
        &self,
        statement: &Prepared,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match &statement.schema {
            Some(schema) => encode::fields(schema, format.unwrap_or(&Format::UnifiedText), None),
            None => Ok(vec![]),
        }
    }
}
