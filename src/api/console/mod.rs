//! The operator console: `GET /console`, one server-rendered HTML page of the inventory,
//! the week's expiries, pending dual-control requests, recent signals and health, for
//! the callers that may read the inventory (`Reader`: an operator certificate or a
//! monitoring token). It runs no script and loads nothing from
//! elsewhere: styles are inline (allowed by hash in the Content-Security-Policy), the
//! chart is inline SVG. It shows what the JSON API shows and changes nothing.

mod chart;
mod format;
mod page;
mod snapshot;

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::extract::Reader;
use super::ApiError;
use crate::app::AppState;
use snapshot::Snapshot;

pub fn router() -> Router<AppState> {
    Router::new().route("/console", get(console))
}

/// Nothing but the inline stylesheet (by hash) and the empty data: favicon may load; no
/// script, no frames, no forms, no other origin.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let style = B64.encode(Sha256::digest(page::STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{style}'; img-src data:; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
});

async fn console(State(state): State<AppState>, reader: Reader) -> Result<Response, ApiError> {
    let st = state.clone();
    let snapshot = tokio::task::spawn_blocking(move || Snapshot::read(&st))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let body = page::render(&snapshot, &state.public_url, &reader.actor_name()).into_string();
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP.as_str()),
            // Inventory and owners are not for shared caches or other sites.
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
        .into_response())
}
