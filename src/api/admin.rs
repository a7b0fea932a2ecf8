//! Operator routes (mTLS with an operator certificate): integrations, enrollment tokens,
//! further operators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use credmint_ledger::event::EnrollmentCreated;
use serde::Deserialize;
use serde_json::json;

use super::error::echo;
use super::extract::{ApiBytes, ApiJson, ApiPath, Operator, Reader};
use super::{views, ApiError};
use crate::app::AppState;
use crate::registry::{check_identifier, validate, Registration, Registry};
use crate::sequencer::{Command, Op};

/// Longest lifetime of an enrollment token.
pub const MAX_ENROLLMENT_TTL_SECS: u64 = 3600;
/// Lifetime of an enrollment token when the request names none.
pub const DEFAULT_ENROLLMENT_TTL_SECS: u64 = 900;
/// Prefix that makes leaked enrollment tokens easy to spot in secret scanners.
pub const ENROLLMENT_TOKEN_PREFIX: &str = "cmt_";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/admin/integrations",
            post(register).get(crate::api::inventory::list),
        )
        .route("/v1/admin/integrations/{name}", get(show_integration))
        .route(
            "/v1/admin/integrations/{name}/enrollments",
            post(create_enrollment),
        )
        .route(
            "/v1/admin/operators",
            post(crate::api::operators::add_operator),
        )
        .route(
            "/v1/admin/operators/requests",
            get(crate::api::operators::list_requests),
        )
        .route(
            "/v1/admin/operators/requests/{index}/approve",
            post(crate::api::operators::approve_request),
        )
        .merge(crate::api::lifecycle::router())
        .merge(crate::api::monitors::router())
}

async fn register(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(reg): ApiJson<Registration>,
) -> Result<impl IntoResponse, ApiError> {
    let spec = validate(
        reg,
        &state.config.ttl,
        &state.config.governance.review_caps(),
        state.clock.unix(),
    )?;
    let name = spec.name.clone();
    let receipt = state
        .sequencer
        .submit(Command::new(operator.actor(), Op::Register(spec.clone())))
        .await?;
    tracing::info!(integration = %name, operator = %operator.name, "integration registered");
    let mut body = views::integration_of(&state, &spec);
    body["ledger_index"] = json!(receipt.first_index());
    Ok((StatusCode::CREATED, Json(body)))
}

async fn show_integration(
    State(state): State<AppState>,
    _reader: Reader,
    ApiPath(name): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let spec = Registry::open(&state.ledger)?
        .integration(&name)?
        .ok_or_else(|| ApiError::NotFound(format!("no integration named {}", echo(&name))))?;
    Ok(Json(views::integration_of(&state, &spec)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollmentRequest {
    ttl_secs: Option<u64>,
}

async fn create_enrollment(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
    ApiBytes(body): ApiBytes,
) -> Result<impl IntoResponse, ApiError> {
    check_identifier("name", &name)?;
    // The body is optional: empty means the default lifetime.
    let req: EnrollmentRequest = if body.is_empty() {
        EnrollmentRequest { ttl_secs: None }
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?
    };
    let ttl = req.ttl_secs.unwrap_or(DEFAULT_ENROLLMENT_TTL_SECS);
    if ttl == 0 || ttl > MAX_ENROLLMENT_TTL_SECS {
        return Err(ApiError::Field(crate::registry::FieldError {
            field: "ttl_secs",
            message: format!("must be between 1 and {MAX_ENROLLMENT_TTL_SECS}"),
        }));
    }
    let spec = Registry::open(&state.ledger)?
        .integration(&name)?
        .ok_or_else(|| ApiError::NotFound(format!("no integration named {}", echo(&name))))?;
    crate::policy::check_standing(&spec, state.clock.unix())?;
    let (token, token_hash) = crate::secret::bearer_token(ENROLLMENT_TOKEN_PREFIX);
    let expires_at = state.clock.unix() + ttl;
    let created = Op::CreateEnrollment(EnrollmentCreated {
        integration: name.clone(),
        token_hash,
        expires_at,
    });
    let receipt = state
        .sequencer
        .submit(Command::new(operator.actor(), created))
        .await?;
    tracing::info!(integration = %name, operator = %operator.name, token_hash = %hex::encode(token_hash), "enrollment token created");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "integration": name,
            "token": token,
            "expires_at": views::rfc3339(expires_at),
            "ledger_index": receipt.first_index(),
        })),
    ))
}
