//! HTTP routes, merged in one place. `error.rs` is the only module that picks status codes.

mod admin;
mod error;
mod export;
pub mod extract;
mod governance;
mod inventory;
pub mod lifecycle;
mod ocsp;
mod operators;
mod public;
mod revocation;
mod rotation;
mod status;
pub mod views;
pub mod workload;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

use crate::app::AppState;

/// The whole router; tests can drive it without a socket.
pub fn router(state: AppState) -> Router {
    let limit = state.config.server.max_body_bytes;
    Router::new()
        .merge(public::router())
        .merge(admin::router())
        .merge(workload::router())
        .merge(revocation::router())
        .merge(rotation::router())
        .merge(status::router())
        .merge(ocsp::router())
        .merge(export::router())
        .merge(governance::router())
        .merge(inventory::router())
        .layer(axum::middleware::from_fn(inventory::peer_scope))
        .layer(DefaultBodyLimit::max(limit))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
