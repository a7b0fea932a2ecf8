//! Errors on the wire: a status code and a stable JSON body `{"error": code, "message": ...}`.
//! 5xx details go to the log, not to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{what} unavailable: {detail}")]
    Unavailable { what: &'static str, detail: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.clone()),
            ApiError::Unavailable { what, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("{what} is temporarily unavailable"),
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        if status.is_server_error() {
            tracing::error!(code, error = %self, "request failed");
        }
        (status, Json(json!({ "error": code, "message": message }))).into_response()
    }
}
