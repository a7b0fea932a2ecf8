//! Errors on the wire: a status code and a stable JSON body
//! `{"error": "<code>", "message": "<text>"[, "field": "<name>"]}`.
//! The only module that picks status codes. 5xx details go to the log, not the client.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::issuance::IssueError;
use crate::issue::{CsrError, LeafError};
use crate::policy::Denial;
use crate::registry::{FieldError, ProjectionError};
use crate::sequencer::{Refusal, SequenceError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    /// 404 whose body is the given status document (`"status": "unknown"`).
    #[error("unknown credential")]
    UnknownCredential(serde_json::Value),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(transparent)]
    Csr(#[from] CsrError),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large")]
    TooLarge,
    #[error("method {method} not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("{what} unavailable: {detail}")]
    Unavailable { what: &'static str, detail: String },
    /// Overload refused before any work (HSM admission or sequencer queue): 503.
    #[error("busy: at capacity")]
    Busy,
    /// The HSM is away (`cause`: the fault's kind, as `/healthz` reports it) and the
    /// appliance is reconnecting: 503 with `Retry-After` until the next attempt.
    #[error("HSM unavailable ({cause})")]
    HsmUnavailable {
        cause: &'static str,
        retry_after_secs: u64,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound(_) | ApiError::UnknownCredential(_) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Field(_) => (StatusCode::BAD_REQUEST, "invalid_field"),
            ApiError::Csr(_) => (StatusCode::BAD_REQUEST, "invalid_csr"),
            ApiError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Denied(_) => (StatusCode::FORBIDDEN, "denied"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
            }
            ApiError::Unavailable { .. } | ApiError::Busy | ApiError::HsmUnavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// What the client may read: 5xx bodies never carry internal detail.
    fn public_message(&self) -> String {
        match self {
            ApiError::Unavailable { what, .. } => format!("{what} is temporarily unavailable"),
            ApiError::Busy => "the appliance is at capacity, retry shortly".into(),
            ApiError::HsmUnavailable { cause, .. } => {
                format!("the HSM is unavailable ({cause}); credmint is reconnecting, retry later")
            }
            ApiError::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        if status.is_server_error() {
            tracing::error!(code, error = %self, "request failed");
        } else {
            tracing::info!(code, status = status.as_u16(), "request refused");
        }
        let mut body = json!({ "error": code, "message": self.public_message() });
        if let ApiError::UnknownCredential(doc) = &self {
            if let Some(obj) = doc.as_object() {
                for (k, v) in obj {
                    body[k] = v.clone();
                }
            }
        }
        if let ApiError::Field(f) = &self {
            body["field"] = json!(f.field);
        }
        let mut retry_after = 1;
        if let ApiError::HsmUnavailable {
            cause,
            retry_after_secs,
        } = &self
        {
            body["hsm"] = json!(cause);
            retry_after = *retry_after_secs;
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::TooLarge;
        }
        ApiError::BadRequest(format!("invalid JSON body: {}", r.body_text()))
    }
}

impl From<SequenceError> for ApiError {
    fn from(e: SequenceError) -> Self {
        match e {
            SequenceError::QueueFull => ApiError::Busy,
            SequenceError::Refused(r) => r.into(),
            SequenceError::Closed | SequenceError::Storage(_) => ApiError::Unavailable {
                what: "ledger",
                detail: e.to_string(),
            },
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::EnrollmentSpent | Refusal::EnrollmentExpired => {
                ApiError::Unauthenticated(r.to_string())
            }
            Refusal::ActorRevoked => ApiError::Unauthenticated("certificate revoked".into()),
            Refusal::ActorExpired | Refusal::ActorUnknown => {
                ApiError::Unauthenticated(r.to_string())
            }
            Refusal::UnknownIntegration(_) | Refusal::UnknownCredential(_) => {
                ApiError::NotFound(r.to_string())
            }
            Refusal::SelfApproval(message) => ApiError::Forbidden(message),
            Refusal::Invalid(_) => ApiError::BadRequest(r.to_string()),
            Refusal::NameTaken(_)
            | Refusal::OperatorNameTaken(_)
            | Refusal::NotIssuable(_)
            | Refusal::Stale(_)
            | Refusal::Decommissioned(_)
            | Refusal::NotPending(_) => ApiError::Conflict(r.to_string()),
            Refusal::SerialTaken | Refusal::JtiTaken | Refusal::KeyRotated => {
                ApiError::Unavailable {
                    what: "issuance",
                    detail: r.to_string(),
                }
            }
        }
    }
}

impl From<crate::hsm::HsmError> for ApiError {
    fn from(e: crate::hsm::HsmError) -> Self {
        match e {
            crate::hsm::HsmError::Unavailable {
                cause,
                retry_after_secs,
                ..
            } => ApiError::HsmUnavailable {
                cause,
                retry_after_secs,
            },
            other => ApiError::Unavailable {
                what: "HSM",
                detail: other.to_string(),
            },
        }
    }
}

impl From<IssueError> for ApiError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Overloaded(_) | IssueError::QueueFull => ApiError::Busy,
            IssueError::Hsm(e) => e.into(),
            IssueError::Leaf(e) => e.into(),
            IssueError::Sequence(e) => e.into(),
            IssueError::TokenSigning(_) => ApiError::Unavailable {
                what: "token signing",
                detail: e.to_string(),
            },
            IssueError::Task(detail) => ApiError::Internal(detail),
        }
    }
}

impl From<crate::status::json::LookupError> for ApiError {
    fn from(e: crate::status::json::LookupError) -> Self {
        use crate::status::json::LookupError;
        match e {
            LookupError::Unknown(doc) => ApiError::UnknownCredential(doc),
            LookupError::NoCheckpoint => ApiError::Unavailable {
                what: "checkpoint",
                detail: e.to_string(),
            },
            LookupError::Registry(e) => e.into(),
            LookupError::Ledger(detail) => ApiError::Internal(detail),
        }
    }
}

impl From<crate::rotation::RotationError> for ApiError {
    fn from(e: crate::rotation::RotationError) -> Self {
        use crate::rotation::RotationError;
        match e {
            RotationError::Sequence(e) => e.into(),
            RotationError::NotInForce(message) => ApiError::Conflict(message),
            RotationError::Unavailable(_) | RotationError::Hsm(_) => ApiError::Unavailable {
                what: "key rotation",
                detail: e.to_string(),
            },
            RotationError::History(_) | RotationError::Ca(_) | RotationError::Internal(_) => {
                ApiError::Internal(e.to_string())
            }
        }
    }
}

impl From<ProjectionError> for ApiError {
    fn from(e: ProjectionError) -> Self {
        ApiError::Unavailable {
            what: "registry",
            detail: e.to_string(),
        }
    }
}

impl From<LeafError> for ApiError {
    fn from(e: LeafError) -> Self {
        ApiError::Unavailable {
            what: "certificate signing",
            detail: e.to_string(),
        }
    }
}

#[cfg(test)]
mod sequencer_mapping {
    use super::*;

    fn status_and_retry(e: SequenceError) -> (u16, bool) {
        let r = ApiError::from(e).into_response();
        (
            r.status().as_u16(),
            r.headers().contains_key(header::RETRY_AFTER),
        )
    }

    #[test]
    fn overload_and_storage_are_503_with_retry_after_and_never_404() {
        assert_eq!(status_and_retry(SequenceError::QueueFull), (503, true));
        assert_eq!(
            status_and_retry(SequenceError::Storage("redb read".into())),
            (503, true)
        );
        assert_eq!(
            status_and_retry(SequenceError::Refused(Refusal::UnknownCredential(
                "certificate with serial 01".into()
            ))),
            (404, false)
        );
        assert_eq!(
            status_and_retry(SequenceError::Refused(Refusal::Invalid("too long".into()))),
            (400, false)
        );
        let busy = ApiError::from(IssueError::Overloaded(crate::hsm::Overloaded {
            capacity: 8,
        }));
        assert_eq!(busy.into_response().status().as_u16(), 503);
    }

    #[tokio::test]
    async fn hsm_outage_is_503_naming_the_fault_with_retry_after_the_next_attempt() {
        let r = ApiError::from(IssueError::Hsm(crate::hsm::HsmError::Unavailable {
            cause: "token_not_found",
            down_secs: 3,
            retry_after_secs: 7,
        }))
        .into_response();
        assert_eq!(r.status().as_u16(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
        let body = axum::body::to_bytes(r.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "unavailable");
        assert_eq!(body["hsm"], "token_not_found");
        assert!(body["message"]
            .as_str()
            .unwrap()
            .contains("the HSM is unavailable (token_not_found)"));
    }
}
