//! Errors on the wire: a status code and a stable JSON body
//! `{"error": "<code>", "message": "<text>"[, "field": "<name>"]}`.
//! The only module that picks status codes. 5xx details go to the log, not the client.
//!
//! Messages may quote the caller's input (a name, a serial, a path) but never more than
//! [`ECHO_LIMIT`] characters of it: every quoted run longer than that is cut and marked
//! with `…` before the body is written, whichever code built the message.

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection};
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
    /// What another protocol's error document (ACME's problem+json) needs: the status,
    /// the message a client may see (echoes capped, 5xx details withheld and logged), and
    /// Retry-After for a 503.
    pub fn wire_parts(&self) -> (StatusCode, String, Option<u64>) {
        let (status, code) = self.parts();
        if status.is_server_error() {
            tracing::error!(code, error = %self, "request failed");
        }
        let retry = match self {
            ApiError::HsmUnavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => None,
        };
        (status, cap_echoes(&self.public_message()), retry)
    }

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

/// Most characters of one piece of caller input an error message repeats.
pub const ECHO_LIMIT: usize = 64;
/// Most characters of a whole error message (a last resort for unquoted input).
const MESSAGE_LIMIT: usize = 512;

/// `input` quoted for an error message, cut to [`ECHO_LIMIT`] characters plus `…`.
pub fn echo(input: &str) -> String {
    let mut chars = input.chars();
    let head: String = chars.by_ref().take(ECHO_LIMIT).collect();
    if chars.next().is_some() {
        format!("{:?}", format!("{head}…"))
    } else {
        format!("{head:?}")
    }
}

/// Cuts every run between a pair of quotes (`"` or `` ` ``) longer than [`ECHO_LIMIT`]
/// characters, then the whole message at [`MESSAGE_LIMIT`]: serde and the router quote
/// input in their own messages, and none of it may come back at length.
fn cap_echoes(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MESSAGE_LIMIT + 8));
    let mut open: Option<(char, usize)> = None;
    let mut kept = 0usize;
    for c in message.chars() {
        if kept >= MESSAGE_LIMIT {
            out.push('…');
            return out;
        }
        match open {
            Some((q, _)) if c == q => {
                open = None;
                out.push(c);
                kept += 1;
            }
            Some((q, n)) => {
                if n < ECHO_LIMIT {
                    out.push(c);
                    kept += 1;
                } else if n == ECHO_LIMIT {
                    out.push('…');
                    kept += 1;
                }
                open = Some((q, n + 1));
            }
            None => {
                if c == '"' || c == '`' {
                    open = Some((c, 0));
                }
                out.push(c);
                kept += 1;
            }
        }
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        if status.is_server_error() {
            tracing::error!(code, error = %self, "request failed");
        } else {
            tracing::info!(code, status = status.as_u16(), "request refused");
        }
        let message = cap_echoes(&self.public_message());
        let mut body = json!({ "error": code, "message": message });
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
        match r {
            JsonRejection::BytesRejection(b) => b.into(),
            r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
            r => ApiError::BadRequest(format!("invalid JSON body: {}", r.body_text())),
        }
    }
}

/// Reading the body failed: over the limit (413) or the bytes on the wire were not a valid
/// HTTP body (a bad chunk-size line, a connection cut mid-body): 400 naming the cause.
impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::TooLarge;
        }
        let mut cause: &dyn std::error::Error = &r;
        while let Some(next) = cause.source() {
            cause = next;
        }
        ApiError::BadRequest(format!("request body could not be read: {cause}"))
    }
}

/// A path segment that does not decode (invalid UTF-8 after percent-decoding) or does not
/// parse as the route expects: 400 naming the segment.
impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        use axum::extract::path::ErrorKind;
        let PathRejection::FailedToDeserializePathParams(e) = &r else {
            return ApiError::Internal(r.body_text());
        };
        match e.kind() {
            ErrorKind::InvalidUtf8InPathParam { key } => ApiError::BadRequest(format!(
                "path segment `{key}` is not valid UTF-8 once percent-decoded"
            )),
            ErrorKind::ParseErrorAtKey {
                key,
                value,
                expected_type,
            } => ApiError::BadRequest(format!(
                "path segment `{key}`: {} is not a valid {expected_type}",
                echo(value)
            )),
            _ => ApiError::BadRequest(format!("invalid path: {}", r.body_text())),
        }
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
            Refusal::UnknownIntegration(_)
            | Refusal::UnknownCredential(_)
            | Refusal::UnknownMonitor(_) => ApiError::NotFound(r.to_string()),
            Refusal::SelfApproval(message) => ApiError::Forbidden(message),
            Refusal::AcmeEab(_) | Refusal::AcmeAccountGone(_) | Refusal::AcmeKeyChanged => {
                ApiError::Unauthenticated(r.to_string())
            }
            Refusal::AcmeKeyTaken => ApiError::Conflict(r.to_string()),
            Refusal::Invalid(_) => ApiError::BadRequest(r.to_string()),
            Refusal::NameTaken(_)
            | Refusal::MonitorNameTaken(_)
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
            LookupError::NoCheckpoint | LookupError::ProofPending(_) => ApiError::Unavailable {
                what: "checkpoint",
                detail: e.to_string(),
            },
            LookupError::NotRevoked => ApiError::NotFound(e.to_string()),
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
            e @ RotationError::IntermediateCa => ApiError::Conflict(e.to_string()),
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

impl From<credmint_ledger::StoreError> for ApiError {
    fn from(e: credmint_ledger::StoreError) -> Self {
        ApiError::Unavailable {
            what: "ledger",
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
mod echo_caps {
    use super::*;

    #[test]
    fn quoted_input_is_cut_at_the_echo_limit() {
        let long = "x".repeat(1000);
        let quoted = echo(&long);
        assert_eq!(quoted, format!("\"{}…\"", "x".repeat(ECHO_LIMIT)));
        assert_eq!(echo("short"), "\"short\"");
        let capped = cap_echoes(&format!("unknown field `{long}`, expected `ttl_secs`"));
        assert_eq!(
            capped,
            format!(
                "unknown field `{}…`, expected `ttl_secs`",
                "x".repeat(ECHO_LIMIT)
            )
        );
        assert!(cap_echoes(&long).chars().count() <= MESSAGE_LIMIT + 1);
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
