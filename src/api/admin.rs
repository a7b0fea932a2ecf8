//! Operator routes (mTLS with an operator certificate): integrations, enrollment tokens,
//! further operators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use credmint_ledger::event::EnrollmentCreated;

use super::error::echo;
use super::extract::{ApiBytes, ApiJson, ApiPath, Operator, Reader};
use super::{views, ApiError};
use crate::app::AppState;
use crate::registry::{check_identifier, validate, Registry};
use crate::sequencer::{Command, Op};
use crate::wire::{
    EnrollmentRequest, EnrollmentToken, ErrorBody, IntegrationUpdate, IntegrationView, Registration,
};

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

/// Registers an integration: an owned non-human identity with its scopes and caps.
#[utoipa::path(
    post, path = "/v1/admin/integrations", tag = "integrations",
    security(("operator_mtls" = [])),
    request_body(content = Registration, example = json!({
        "name": "ci-deploy", "business_owner": "payments", "technical_owner": "alice@example.com",
        "purpose": "deploys the payments service", "environment": "prod",
        "scopes": ["deploy:read", "deploy:write"], "privilege_class": "routine",
        "max_ttl_secs": 900, "review_by": "2027-06-30", "approval_ref": "CHG-1234",
        "dns_names": ["ci-deploy.internal.example"], "audiences": ["billing"]
    })),
    responses(
        (status = 201, description = "Registered", body = IntegrationUpdate, example = json!({
            "name": "ci-deploy", "spiffe_id": "spiffe://example.org/prod/ci-deploy",
            "business_owner": "payments", "technical_owner": "alice@example.com",
            "purpose": "deploys the payments service", "environment": "prod",
            "scopes": ["deploy:read", "deploy:write"], "privilege_class": "routine",
            "max_ttl_secs": 900, "review_by": "2027-06-30T23:59:59Z", "approval_ref": "CHG-1234",
            "allow_server_auth": false, "dns_names": ["ci-deploy.internal.example"],
            "audiences": ["billing"], "acme_preauthorized": false, "status": "active", "ledger_index": 5
        })),
        (status = 409, description = "An integration of that name exists", body = ErrorBody),
    )
)]
pub async fn register(
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
    let body = IntegrationUpdate {
        integration: views::integration_of(&state, &spec),
        ledger_index: receipt.first_index(),
        unchanged: None,
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// One integration.
#[utoipa::path(
    get, path = "/v1/admin/integrations/{name}", tag = "integrations",
    security(("operator_mtls" = []), ("monitor_token" = [])),
    params(super::openapi::NamePath),
    responses((status = 200, description = "The integration", body = IntegrationView))
)]
pub async fn show_integration(
    State(state): State<AppState>,
    _reader: Reader,
    ApiPath(name): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let spec = Registry::open(&state.ledger)?
        .integration(&name)?
        .ok_or_else(|| ApiError::NotFound(format!("no integration named {}", echo(&name))))?;
    Ok(Json(views::integration_of(&state, &spec)))
}

/// A one-time enrollment token for a new workload of the integration, shown once.
#[utoipa::path(
    post, path = "/v1/admin/integrations/{name}/enrollments", tag = "integrations",
    security(("operator_mtls" = [])),
    params(super::openapi::NamePath),
    request_body(content = EnrollmentRequest, description = "Optional; empty means 900 seconds",
        example = json!({"ttl_secs": 600})),
    responses((status = 201, description = "Token created", body = EnrollmentToken, example = json!({
        "integration": "ci-deploy", "token": "cmt_q3JxV0Zr1yS9dO4nT2bKc8uE5wA7hL6mP0gR3sY1vXz",
        "expires_at": "2026-12-03T07:10:00Z", "ledger_index": 6
    })))
)]
pub async fn create_enrollment(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
    ApiBytes(body): ApiBytes,
) -> Result<impl IntoResponse, ApiError> {
    check_identifier("name", &name)?;
    let req: EnrollmentRequest = optional_body(&body)?;
    let ttl = ttl_within(
        req.ttl_secs,
        DEFAULT_ENROLLMENT_TTL_SECS,
        MAX_ENROLLMENT_TTL_SECS,
    )?;
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
        Json(EnrollmentToken {
            integration: name,
            token,
            expires_at: views::rfc3339(expires_at),
            ledger_index: receipt.first_index(),
        }),
    ))
}

/// An optional JSON body: empty means every default.
pub fn optional_body<T: Default + serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// A requested lifetime (`ttl_secs`), `default` when absent, refused outside 1..=`max`.
pub fn ttl_within(requested: Option<u64>, default: u64, max: u64) -> Result<u64, ApiError> {
    let ttl = requested.unwrap_or(default);
    if ttl == 0 || ttl > max {
        return Err(ApiError::Field(crate::registry::FieldError {
            field: "ttl_secs",
            message: format!("must be between 1 and {max}"),
        }));
    }
    Ok(ttl)
}
