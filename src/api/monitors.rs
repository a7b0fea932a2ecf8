//! Read-only monitoring tokens (operator mTLS to manage): a scraper such as Prometheus
//! presents `Authorization: Bearer cmm_...` and may read `/metrics`, the inventory and the
//! console, and change nothing. Granting and withdrawing are ledger events (FORMAT.md
//! §3.17, §3.18); only the token's SHA-256 is stored, and the token is shown once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, post};
use axum::{Json, Router};
use credmint_ledger::event::MonitorTokenCreated;
use serde::Deserialize;
use serde_json::json;

use super::extract::{ApiJson, ApiPath, Operator};
use super::{views, ApiError};
use crate::app::AppState;
use crate::registry::{check_identifier, FieldError, MonitorRow, Registry};
use crate::sequencer::{Command, Op};

/// Prefix of monitoring tokens: tells them from enrollment tokens (`cmt_`) at a glance
/// and lets the admin routes say why such a token opens nothing there.
pub const MONITOR_TOKEN_PREFIX: &str = "cmm_";
/// Lifetime of a monitoring token when the request names none.
pub const DEFAULT_MONITOR_TTL_DAYS: u64 = 90;
/// Longest lifetime of a monitoring token: a forgotten scraper token must still die.
pub const MAX_MONITOR_TTL_DAYS: u64 = 397;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/monitors", post(grant).get(list))
        .route("/v1/admin/monitors/{name}", delete(withdraw))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantRequest {
    name: String,
    ttl_days: Option<u64>,
}

fn view(row: &MonitorRow, now: u64) -> serde_json::Value {
    json!({
        "name": row.name,
        "token_sha256": hex::encode(row.token_hash),
        "expires_at": views::rfc3339(row.expires_at),
        "live": row.live(now),
    })
}

/// `POST /v1/admin/monitors`: a new token for scraper `name`; the only time it is shown.
async fn grant(
    State(state): State<AppState>,
    operator: Operator,
    ApiJson(req): ApiJson<GrantRequest>,
) -> Result<impl IntoResponse, ApiError> {
    check_identifier("name", &req.name)?;
    let days = req.ttl_days.unwrap_or(DEFAULT_MONITOR_TTL_DAYS);
    if days == 0 || days > MAX_MONITOR_TTL_DAYS {
        return Err(ApiError::Field(FieldError {
            field: "ttl_days",
            message: format!("must be between 1 and {MAX_MONITOR_TTL_DAYS}"),
        }));
    }
    let (token, token_hash) = crate::secret::bearer_token(MONITOR_TOKEN_PREFIX);
    let expires_at = state.clock.unix() + days * 86_400;
    let receipt = state
        .sequencer
        .submit(Command::new(
            operator.actor(),
            Op::GrantMonitor(MonitorTokenCreated {
                name: req.name.clone(),
                token_hash,
                expires_at,
            }),
        ))
        .await?;
    tracing::info!(monitor = %req.name, operator = %operator.name, token_hash = %hex::encode(token_hash), "monitoring token granted");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": req.name,
            "token": token,
            "token_sha256": hex::encode(token_hash),
            "expires_at": views::rfc3339(expires_at),
            "ledger_index": receipt.first_index(),
        })),
    ))
}

/// `GET /v1/admin/monitors`: every grant not withdrawn (expired ones show `live: false`).
async fn list(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<impl IntoResponse, ApiError> {
    let now = state.clock.unix();
    let rows = Registry::open(&state.ledger)?.monitors()?;
    let items: Vec<_> = rows.iter().map(|r| view(r, now)).collect();
    Ok(Json(json!({ "monitors": items })))
}

/// `DELETE /v1/admin/monitors/{name}`: withdraws the grant; the token stops working at
/// once (every request looks the hash up in the committed projection).
async fn withdraw(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    check_identifier("name", &name)?;
    let receipt = state
        .sequencer
        .submit(Command::new(
            operator.actor(),
            Op::WithdrawMonitor { name: name.clone() },
        ))
        .await?;
    tracing::info!(monitor = %name, operator = %operator.name, "monitoring token withdrawn");
    Ok(Json(json!({
        "name": name,
        "withdrawn": true,
        "ledger_index": receipt.first_index(),
    })))
}
