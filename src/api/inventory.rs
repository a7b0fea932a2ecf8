//! Inventory and signal metrics (operator mTLS): every integration with its owner, class,
//! scopes, live credentials, last issuance, review state and flags; the Prometheus
//! counters; and the layer that hands the client address to the signals.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawQuery, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use credmint_ledger::event::{IntegrationSpec, IntegrationStatus, PrivilegeClass};

use super::extract::Reader;
use super::{views, ApiError};
use crate::app::AppState;
use crate::governance::{review_state, ReviewState};
use crate::registry::{FieldError, Registry};
use crate::wire::{Inventory, InventoryEntry, ReviewStateName};

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// Flags an inventory entry can carry.
pub const FLAGS: [&str; 7] = [
    "review_overdue",
    "review_due_soon",
    "dormant",
    "privileged",
    "suspended",
    "decommissioned",
    "change_pending",
];

/// `?overdue=&dormant=&privileged=` filters, each requiring its flag present (true) or
/// absent (false).
#[derive(Debug, Default)]
struct Filters(Vec<(&'static str, bool)>);

fn parse_filters(query: Option<&str>) -> Result<Filters, ApiError> {
    let mut out = Vec::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, "true"));
        let flag = match key {
            "overdue" => "review_overdue",
            "dormant" => "dormant",
            "privileged" => "privileged",
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {key:?} (overdue, dormant, privileged)"
                )))
            }
        };
        let value = match value {
            "true" | "1" | "" => true,
            "false" | "0" => false,
            _ => {
                return Err(ApiError::Field(FieldError {
                    field: flag_field(key),
                    message: "must be true or false".into(),
                }))
            }
        };
        out.push((flag, value));
    }
    Ok(Filters(out))
}

fn flag_field(key: &str) -> &'static str {
    match key {
        "overdue" => "overdue",
        "dormant" => "dormant",
        _ => "privileged",
    }
}

/// One inventory row.
fn entry(
    state: &AppState,
    registry: &Registry,
    spec: &IntegrationSpec,
    pending: &HashMap<String, usize>,
    now: u64,
) -> Result<InventoryEntry, ApiError> {
    let gov = &state.config.governance;
    let (live_certs, live_tokens) = registry.live_credentials(&spec.name, now)?;
    let activity = registry.activity(&spec.name)?;
    let registered = registry.integration_times(&spec.name)?.map(|t| t.0);
    let last_use = activity
        .map(|a| a.last_issuance)
        .or(registered)
        .unwrap_or(now);
    let retired = spec.status == IntegrationStatus::Decommissioned;
    let review = review_state(gov, spec.review_by, now);
    let dormant =
        !retired && now.saturating_sub(last_use) > state.config.signals.dormant_after_days * 86_400;
    let pending_count = pending.get(&spec.name).copied().unwrap_or(0);
    let flags: Vec<String> = [
        (!retired && review == ReviewState::Overdue, FLAGS[0]),
        (!retired && review == ReviewState::DueSoon, FLAGS[1]),
        (dormant, FLAGS[2]),
        (spec.privilege_class == PrivilegeClass::Privileged, FLAGS[3]),
        (spec.status == IntegrationStatus::Suspended, FLAGS[4]),
        (retired, FLAGS[5]),
        (pending_count > 0, FLAGS[6]),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| name.to_string())
    .collect();
    Ok(InventoryEntry {
        integration: views::integration_of(state, spec),
        live_certificates: live_certs as u64,
        live_tokens: live_tokens as u64,
        issued_total: activity.map_or(0, |a| a.issued),
        last_issuance: activity.map(|a| views::rfc3339(a.last_issuance)),
        registered_at: registered.map(views::rfc3339),
        review_state: match review {
            ReviewState::Ok => ReviewStateName::Ok,
            ReviewState::DueSoon => ReviewStateName::DueSoon,
            ReviewState::Overdue => ReviewStateName::Overdue,
        },
        pending_changes: pending_count as u64,
        flags,
    })
}

/// Every inventory row, unfiltered: what `GET /v1/admin/integrations` lists and the
/// console shows.
pub fn rows(state: &AppState, registry: &Registry) -> Result<Vec<InventoryEntry>, ApiError> {
    let now = state.clock.unix();
    let mut pending: HashMap<String, usize> = HashMap::new();
    for p in registry.pending_changes()? {
        *pending.entry(p.integration).or_default() += 1;
    }
    registry
        .integrations()?
        .iter()
        .map(|spec| entry(state, registry, spec, &pending, now))
        .collect()
}

/// The inventory, optionally filtered: each filter keeps the integrations whose flag is
/// present (true) or absent (false).
#[utoipa::path(
    get, path = "/v1/admin/integrations", tag = "integrations",
    security(("operator_mtls" = []), ("monitor_token" = [])),
    params(
        ("overdue" = Option<bool>, Query, description = "Flag review_overdue"),
        ("dormant" = Option<bool>, Query, description = "Flag dormant (no issuance for signals.dormant_after_days)"),
        ("privileged" = Option<bool>, Query, description = "Flag privileged"),
    ),
    responses((status = 200, description = "The inventory", body = Inventory))
)]
pub async fn list(
    State(state): State<AppState>,
    _reader: Reader,
    RawQuery(query): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let filters = parse_filters(query.as_deref())?;
    let integrations = rows(&state, &Registry::open(&state.ledger)?)?
        .into_iter()
        .filter(|v| {
            let has = |flag: &str| v.flags.iter().any(|x| x == flag);
            filters.0.iter().all(|(flag, want)| has(flag) == *want)
        })
        .collect();
    Ok(Json(Inventory { integrations }))
}

/// Prometheus text format; [`Reader`] (an operator certificate or a monitoring token)
/// decides who may scrape (the counters tell whether misuse was noticed). Rendering reads
/// files and the ledger, so it runs off the async workers.
#[utoipa::path(
    get, path = "/metrics", tag = "ledger",
    security(("operator_mtls" = []), ("monitor_token" = [])),
    responses((status = 200, description = "Prometheus exposition format 0.0.4", content_type = "text/plain", body = String))
)]
pub async fn metrics(
    State(state): State<AppState>,
    _reader: Reader,
) -> Result<impl IntoResponse, ApiError> {
    let body = tokio::task::spawn_blocking(move || state.metrics.render(&state))
        .await
        .map_err(|e| ApiError::Internal(format!("metrics rendering failed: {e}")))?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body))
}

/// Layer: runs the request with its client address visible to the signals
/// (`signals::after_issuance`). Requests without connection info run unchanged.
pub async fn peer_scope(req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    crate::signals::with_peer(peer, next.run(req)).await
}
