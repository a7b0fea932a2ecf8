//! RFC 7807 problem documents with the ACME error types (RFC 8555 §6.7). Every ACME
//! error leaves the server through [`Problem`], so every one carries `Replay-Nonce` (a
//! client retries `badNonce` with it) and the directory `Link` (§7.1).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::api::ApiError;

/// One ACME error.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    #[serde(serialize_with = "with_namespace")]
    pub kind: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Subproblem>,
    /// badSignatureAlgorithm: what the server accepts (RFC 8555 §6.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<&'static [&'static str]>,
    #[serde(skip)]
    pub status: StatusCode,
    /// Seconds a client should wait (rateLimited, HSM or ledger unavailable).
    #[serde(skip)]
    pub retry_after: Option<u32>,
    /// `Location` of the conflicting resource (key change to a taken key, §7.3.5).
    #[serde(skip)]
    pub location: Option<Box<str>>,
}

/// A problem with one identifier of an order (§6.7.1).
#[derive(Debug, Clone, Serialize)]
pub struct Subproblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: String,
    pub identifier: super::Identifier,
}

pub const NS: &str = "urn:ietf:params:acme:error:";

/// The wire `type`: the ACME namespace and the error type.
fn with_namespace<S: serde::Serializer>(kind: &&'static str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{NS}{kind}"))
}

impl Problem {
    /// `kind` is the ACME error type without its namespace (`badNonce`, ...).
    pub fn new(kind: &'static str, status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind,
            detail: detail.into(),
            subproblems: Vec::new(),
            algorithms: None,
            status,
            retry_after: None,
            location: None,
        }
    }
    pub fn location(mut self, url: String) -> Problem {
        self.location = Some(url.into());
        self
    }
    pub fn malformed(detail: impl Into<String>) -> Problem {
        Problem::new("malformed", StatusCode::BAD_REQUEST, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new("unauthorized", StatusCode::FORBIDDEN, detail)
    }
    pub fn bad_nonce() -> Problem {
        Problem::new(
            "badNonce",
            StatusCode::BAD_REQUEST,
            "the nonce is unknown, expired or already used; retry with the Replay-Nonce of this response",
        )
    }
    pub fn account_does_not_exist(detail: impl Into<String>) -> Problem {
        Problem::new("accountDoesNotExist", StatusCode::BAD_REQUEST, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new("malformed", StatusCode::NOT_FOUND, detail)
    }
    pub fn server(detail: impl Into<String>) -> Problem {
        Problem::new("serverInternal", StatusCode::INTERNAL_SERVER_ERROR, detail)
    }
    pub fn with_status(mut self, status: StatusCode) -> Problem {
        self.status = status;
        self
    }

    /// The problem as the server sends it, with a fresh nonce.
    pub fn into_response_with(self, nonce: String, directory: &str) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::to_string(&self).unwrap_or_default(),
        )
            .into_response();
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&nonce) {
            h.insert("replay-nonce", v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("<{directory}>;rel=\"index\"")) {
            h.insert(header::LINK, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(l) = self
            .location
            .as_deref()
            .and_then(|l| HeaderValue::from_str(l).ok())
        {
            h.insert(header::LOCATION, l);
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The appliance's own errors (policy, sequencer, HSM) in ACME's words. Policy denials
/// are `unauthorized` or `rejectedIdentifier`; overload and outages are 503 with
/// Retry-After, as the JSON API answers them.
impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Problem {
        let (status, detail, retry_after) = e.wire_parts();
        let p = match status {
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED | StatusCode::CONFLICT => {
                Problem::unauthorized(detail)
            }
            StatusCode::NOT_FOUND => Problem::not_found(detail),
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                Problem::malformed(detail)
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                Problem::malformed(detail).with_status(StatusCode::PAYLOAD_TOO_LARGE)
            }
            StatusCode::TOO_MANY_REQUESTS => {
                Problem::new("rateLimited", StatusCode::TOO_MANY_REQUESTS, detail)
            }
            // Overload and outages (HSM, ledger): the server's state, not the client's rate.
            StatusCode::SERVICE_UNAVAILABLE => {
                Problem::new("serverInternal", StatusCode::SERVICE_UNAVAILABLE, detail)
            }
            _ => Problem::server(detail),
        };
        Problem {
            retry_after: retry_after.map(|s| u32::try_from(s).unwrap_or(u32::MAX)),
            ..p
        }
    }
}

/// Errors of the parts ACME shares with the JSON API, in ACME's words.
macro_rules! via_api_error {
    ($($t:ty),+) => {$(
        impl From<$t> for Problem {
            fn from(e: $t) -> Problem {
                ApiError::from(e).into()
            }
        }
    )+};
}
via_api_error!(
    crate::sequencer::SequenceError,
    crate::hsm::HsmError,
    crate::registry::ProjectionError,
    crate::issuance::IssueError,
    crate::policy::Denial,
    crate::issue::CsrError
);
