//! The one place HTTP status codes are chosen. Internals are logged, not leaked.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::connectors::backpressure::{Busy, RETRY_AFTER_SECS};
use crate::connectors::http::IngestError;

/// An API error: a status and a message naming the problem.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// 404 for a source that does not exist.
    pub fn unknown_source(name: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("source \"{name}\" does not exist"),
        }
    }

    /// 401: authentication is on and the request has no user's password.
    pub fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: "authentication required: send a user's name and password (basic auth)".into(),
        }
    }

    /// A source fed by a connector of its own (Kafka) takes no events over HTTP.
    pub fn not_an_http_source(name: &str) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            message: format!(
                "source \"{name}\" reads its events from Kafka; it takes none over HTTP"
            ),
        }
    }
}

impl From<Busy> for ApiError {
    fn from(busy: Busy) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: busy.to_string(),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        let status = match &error {
            IngestError::BadGzip(_)
            | IngestError::MalformedJson(_)
            | IngestError::WrongShape(_) => StatusCode::BAD_REQUEST,
            IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::Storage(_) => {
                tracing::error!(%error, "ingest failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        Self {
            status,
            message: error.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if matches!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        ) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"weir\""),
            );
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was not read: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
