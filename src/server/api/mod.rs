//! The HTTP API (axum): `GET /health`, `GET /metrics` and the event collector
//! `POST /api/events/<source>`.

mod error;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use metrics::counter;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::{AuthMode, BasicAuth};
use crate::connectors::backpressure::IngestGate;
use crate::connectors::enrich::{Enrichment, device_class};
use crate::connectors::http::{Framing, IngestError, IngestOutcome, IngestRequest, ingest};
use crate::query::Engine;
use crate::telemetry;
pub use error::ApiError;

/// The bounds the event collector enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request body (after gzip decompression): 413 beyond it.
    pub max_body_bytes: usize,
    /// Ingest bytes in flight beyond which requests get 429.
    pub max_inflight_ingest_bytes: usize,
}

/// What the handlers share.
#[derive(Debug, Clone)]
struct Api {
    engine: Arc<Engine>,
    max_body_bytes: usize,
    gate: Arc<IngestGate>,
}

/// Serves the API until `shutdown` turns true. With `auth` `scram`, every route but
/// `/health` takes a user's password by basic auth.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    limits: Limits,
    auth: AuthMode,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/events/{source}", post(ingest_events));
    if auth == AuthMode::Scram {
        let basic = Arc::new(BasicAuth::new(engine.users().clone()));
        protected = protected.layer(axum::middleware::from_fn_with_state(basic, require_user));
    }
    let app = Router::new()
        .route("/health", get(health))
        .merge(protected)
        .with_state(Api {
            engine,
            max_body_bytes: limits.max_body_bytes,
            gate: IngestGate::new(limits.max_inflight_ingest_bytes),
        });
    let stopped = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    // The peer address feeds the `client_ip` enrichment.
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, service)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

/// 401 unless the request carries a user's password (basic auth).
async fn require_user(
    State(basic): State<Arc<BasicAuth>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let user = match basic.remembered(authorization.as_deref()) {
        Some(user) => Some(user),
        // The check hashes the password: off the I/O threads.
        None => tokio::task::spawn_blocking(move || basic.user(authorization.as_deref()))
            .await
            .ok()
            .flatten(),
    };
    match user {
        Some(_) => next.run(request).await,
        None => ApiError::unauthorized().into_response(),
    }
}

/// Prometheus text (`telemetry.rs`).
async fn metrics(State(api): State<Api>) -> ([(header::HeaderName, &'static str); 1], String) {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::render(&api.engine),
    )
}

/// Liveness: 200 with the version, so a load balancer and a human see the same thing.
async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// The first `X-Forwarded-For` hop (the client behind a proxy), else the peer address.
fn client_ip(headers: &HeaderMap, peer: SocketAddr) -> String {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|ip| ip.trim().to_string())
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| peer.ip().to_string())
}

#[derive(Debug, Deserialize)]
struct IngestQuery {
    #[serde(default)]
    atomic: bool,
}

/// How much of an oversized body is still read (and dropped) before the 413 goes out.
const OVERSIZED_DRAIN_BYTES: usize = 64 << 20;

/// The request body, at most `max` bytes. A client still sending an oversized body when the
/// server closes the connection may see a reset instead of the 413, so a body over the limit
/// is read on (up to [`OVERSIZED_DRAIN_BYTES`] more) and dropped before the 413 is sent.
async fn read_body(body: Body, max: usize) -> Result<Bytes, IngestError> {
    let mut chunks = body.into_data_stream();
    let mut kept = BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = chunks.next().await {
        let chunk =
            chunk.map_err(|e| IngestError::MalformedJson(format!("reading the body: {e}")))?;
        seen += chunk.len();
        if seen <= max {
            kept.extend_from_slice(&chunk);
        } else if seen > max.saturating_add(OVERSIZED_DRAIN_BYTES) {
            break;
        }
    }
    if seen > max {
        return Err(IngestError::TooLarge(max));
    }
    Ok(kept.freeze())
}

/// 202 when every event was accepted (after they are durable), 400 with per-event reasons
/// when some were refused (the others are kept unless `?atomic=true`), 429 while too much is
/// waiting to be committed.
async fn ingest_events(
    State(api): State<Api>,
    Path(source): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<IngestQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<IngestOutcome>), ApiError> {
    let body = read_body(body, api.max_body_bytes).await?;
    let log = api
        .engine
        .source(&source)
        .ok_or_else(|| ApiError::unknown_source(&source))?;
    if log.def().options.connector != weir_catalog::Connector::Http {
        return Err(ApiError::not_an_http_source(&source));
    }
    let header_is = |name: header::HeaderName, prefixes: &[&str]| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                prefixes
                    .iter()
                    .any(|p| v.trim().to_ascii_lowercase().starts_with(p))
            })
    };
    let request = IngestRequest {
        body,
        gzip: header_is(header::CONTENT_ENCODING, &["gzip"]),
        framing: if header_is(
            header::CONTENT_TYPE,
            &["application/x-ndjson", "application/jsonl"],
        ) {
            Framing::NdJson
        } else {
            Framing::Json
        },
        atomic: query.atomic,
        max_body_bytes: api.max_body_bytes,
        enrichment: Enrichment {
            client_ip: Some(client_ip(&headers, peer)),
            device: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(device_class),
        },
    };
    let started = std::time::Instant::now();
    let bytes = request.body.len() as u64;
    // Held until the blocking work ends, even if the client goes away before it does.
    let admission = api.gate.try_admit(request.body.len())?;
    let received_at_us = chrono::Utc::now().timestamp_micros();
    let dead_letters = api.engine.dead_letters().clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let outcome = ingest(&log, &dead_letters, request, received_at_us);
        drop(admission);
        outcome
    })
    .await
    .map_err(|e| ApiError::from(IngestError::Storage(e.to_string())))??;
    let labels = [("source", source.clone())];
    counter!(telemetry::SOURCE_BYTES, &labels).increment(bytes);
    counter!(telemetry::SOURCE_EVENTS, &labels).increment(outcome.accepted as u64);
    counter!(telemetry::SOURCE_DUPLICATES, &labels).increment(outcome.duplicates as u64);
    counter!(telemetry::SOURCE_REJECTED, &labels).increment(outcome.rejected as u64);
    telemetry::seconds(
        telemetry::INGEST_SECONDS,
        ("source", source),
        started.elapsed(),
    );
    let status = if outcome.rejected == 0 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((status, Json(outcome)))
}
