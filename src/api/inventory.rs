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
use serde_json::{json, Value};

use super::extract::Reader;
use super::{views, ApiError};
use crate::app::AppState;
use crate::governance::{review_state, ReviewState};
use crate::registry::{FieldError, Registry};

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
) -> Result<Value, ApiError> {
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
    let flags: Vec<&str> = [
        (!retired && review == ReviewState::Overdue, FLAGS[0]),
        (!retired && review == ReviewState::DueSoon, FLAGS[1]),
        (dormant, FLAGS[2]),
        (spec.privilege_class == PrivilegeClass::Privileged, FLAGS[3]),
        (spec.status == IntegrationStatus::Suspended, FLAGS[4]),
        (retired, FLAGS[5]),
        (pending_count > 0, FLAGS[6]),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let mut v = views::integration_of(state, spec);
    v["live_certificates"] = json!(live_certs);
    v["live_tokens"] = json!(live_tokens);
    v["issued_total"] = json!(activity.map_or(0, |a| a.issued));
    v["last_issuance"] = json!(activity.map(|a| views::rfc3339(a.last_issuance)));
    v["registered_at"] = json!(registered.map(views::rfc3339));
    v["review_state"] = json!(match review {
        ReviewState::Ok => "ok",
        ReviewState::DueSoon => "due_soon",
        ReviewState::Overdue => "overdue",
    });
    v["pending_changes"] = json!(pending_count);
    v["flags"] = json!(flags);
    Ok(v)
}

/// Every inventory row, unfiltered: what `GET /v1/admin/integrations` lists and the
/// console shows.
pub fn rows(state: &AppState, registry: &Registry) -> Result<Vec<Value>, ApiError> {
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

/// `GET /v1/admin/integrations`: the inventory, optionally filtered.
pub async fn list(
    State(state): State<AppState>,
    _reader: Reader,
    RawQuery(query): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let filters = parse_filters(query.as_deref())?;
    let items: Vec<Value> = rows(&state, &Registry::open(&state.ledger)?)?
        .into_iter()
        .filter(|v| {
            let has = |flag: &str| {
                v["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|x| x == flag))
            };
            filters.0.iter().all(|(flag, want)| has(flag) == *want)
        })
        .collect();
    Ok(Json(json!({ "integrations": items })))
}

/// `GET /metrics`: Prometheus text format; an operator certificate or a monitoring token
/// (the counters tell whether misuse was noticed).
async fn metrics(State(state): State<AppState>, _reader: Reader) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.signals.render_metrics(state.ledger.size()),
    )
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
