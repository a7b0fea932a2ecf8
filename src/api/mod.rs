//! HTTP routes, merged in one place. `error.rs` is the only module that picks status codes.

mod access_log;
pub mod admin;
mod console;
mod error;
mod export;
pub mod extract;
mod governance;
mod inventory;
pub mod lifecycle;
pub mod monitors;
mod ocsp;
pub mod openapi;
mod operators;
mod public;
mod revocation;
mod rotation;
mod status;
pub mod views;
pub mod workload;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::trace::TraceLayer;

pub use error::{echo, ApiError};
pub use openapi::{json as openapi_json, ApiDoc};

use crate::app::AppState;

/// The whole router; tests can drive it without a socket.
pub fn router(state: AppState) -> Router {
    edge_layers(
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
            .merge(console::router())
            .merge(crate::acme::router()),
        state,
    )
}

/// The plain-HTTP status listener's router: the same OCSP and CRL handlers as
/// [`router`], nothing else (every other path is 404 in the JSON error shape).
pub fn status_router(state: AppState) -> Router {
    edge_layers(ocsp::router(), state)
}

/// Fallbacks, body limits, peer scope and the access log every listener shares.
fn edge_layers(routes: Router<AppState>, state: AppState) -> Router {
    let limit = state.config.server.max_body_bytes;
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(inventory::peer_scope))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            limit,
            reject_oversized,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            access_log::log,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Unknown route: the JSON error shape, like every other error.
async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route {}", error::echo(uri.path())))
}

/// Known route, wrong method: 405 with the JSON error shape (axum adds `Allow`).
async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: error::echo(method.as_str()),
        path: error::echo(uri.path()),
    }
}

/// A request announcing a body above the limit (`Content-Length`) is refused with 413
/// before any of it is read, and the connection is closed; bodies without a length are
/// cut at the limit by `DefaultBodyLimit` (also 413, same JSON body).
async fn reject_oversized(State(limit): State<usize>, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        let mut response = ApiError::TooLarge.into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    next.run(request).await
}
