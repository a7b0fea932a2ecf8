//! The ACME server (RFC 8555) at `/acme/`: the door certbot, lego, cert-manager and
//! Caddy already know, bound to credmint's owned integrations.
//!
//! Every account belongs to one integration for life, through an External Account Binding
//! key the operator created for it (`eab`); every order is decided by the integration's
//! policy (`order`), every certificate is issued through the same `issuance` path as the
//! JSON API (same extensions, same ledger-first rule), and revocation goes through the
//! same sequencer command (`revoke`). What ACME adds is only the protocol state: nonces,
//! orders, authorizations and challenges, which live in memory because RFC 8555 lets a
//! client start a new order at any time, and none of it is a credential.
//!
//! Layout: `jws` (request authentication), `nonce`, `problem` (errors), `request` (the
//! checks every POST passes), `account`, `order` (orders, authorizations, challenges,
//! finalization, certificate download), `validate` (http-01), `revoke`, `renewal` (ARI),
//! `eab` (the operator's side).

pub mod account;
pub mod client;
pub mod eab;
pub mod jws;
mod nonce;
mod order;
mod problem;
mod renewal;
mod request;
mod revoke;
mod validate;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::AppState;
use crate::config::AcmeConfig;

pub use problem::Problem;

/// Most nonces outstanding at once (each ~60 bytes).
const MAX_NONCES: usize = 200_000;

/// The ACME server's in-memory protocol state.
pub struct Acme {
    pub config: AcmeConfig,
    nonces: nonce::Nonces,
    orders: order::Orders,
    /// `<public_url>/acme`: the prefix of every URL the server hands out and checks.
    base: String,
    /// http-01 validation client (plain HTTP, bounded redirects, short timeouts).
    http: reqwest::Client,
    /// dns-01 resolver, or why there is none (no `dns_resolvers` and no readable
    /// `/etc/resolv.conf`): dns-01 challenges then fail with a `dns` problem saying so.
    dns: Result<hickory_resolver::TokioResolver, String>,
}

impl Acme {
    /// Fails if the validation HTTP client cannot be built (no TLS backend) or a
    /// configured dns-01 resolver is not an address.
    pub fn new(config: AcmeConfig, public_url: &str) -> Result<Acme, String> {
        let http = validate::http01::client(config.http01_port)
            .map_err(|e| format!("ACME validation client: {e}"))?;
        let dns = validate::dns01::resolver(&config.dns_resolvers);
        match &dns {
            Err(e) if !config.dns_resolvers.is_empty() => return Err(e.clone()),
            Err(e) => tracing::warn!(error = %e, "dns-01 validation has no resolver"),
            Ok(_) => {}
        }
        Ok(Acme {
            orders: order::Orders::new(config.max_orders),
            config,
            nonces: nonce::Nonces::new(MAX_NONCES),
            base: format!("{}/acme", public_url.trim_end_matches('/')),
            http,
            dns,
        })
    }

    /// The absolute URL of an ACME path (`/new-order`, `/acct/<id>`, ...).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn directory_url(&self) -> String {
        self.url("/directory")
    }
}

/// An identifier of an order (RFC 8555 §9.7.7): only `dns` is certified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

/// Profiles (draft-ietf-acme-profiles): the certificate shape a client may choose.
pub const PROFILES: [(&str, &str); 2] = [
    (
        "client",
        "clientAuth only, lifetime up to the integration's max TTL",
    ),
    (
        "server",
        "serverAuth only (needs allow_server_auth), lifetime up to the integration's max TTL",
    ),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/acme/directory", get(directory))
        .route("/acme/new-nonce", get(new_nonce).head(new_nonce))
        .route("/acme/new-account", post(account::new_account))
        .route("/acme/acct/{id}", post(account::account))
        .route("/acme/acct/{id}/orders", post(order::orders_of))
        .route("/acme/key-change", post(account::key_change))
        .route("/acme/new-order", post(order::new_order))
        .route("/acme/order/{id}", post(order::order))
        .route("/acme/order/{id}/finalize", post(order::finalize))
        .route("/acme/authz/{id}", post(order::authz))
        .route("/acme/chall/{id}/{kind}", post(order::challenge))
        .route("/acme/cert/{serial}", post(order::certificate))
        .route("/acme/revoke-cert", post(revoke::revoke_cert))
        .route("/acme/renewal-info/{id}", get(renewal::renewal_info))
        .merge(eab::router())
        .merge(account::admin_router())
}

/// One successful ACME answer; [`Reply::send`] adds what every answer carries.
pub struct Reply {
    status: StatusCode,
    location: Option<String>,
    links: Vec<String>,
    retry_after: Option<u64>,
    content_type: &'static str,
    body: String,
}

impl Reply {
    pub fn json(status: StatusCode, body: &serde_json::Value) -> Reply {
        Reply {
            status,
            location: None,
            links: Vec::new(),
            retry_after: None,
            content_type: "application/json",
            body: body.to_string(),
        }
    }

    pub fn pem_chain(chain: String) -> Reply {
        Reply {
            content_type: "application/pem-certificate-chain",
            body: chain,
            ..Reply::json(StatusCode::OK, &json!(null))
        }
    }

    pub fn empty(status: StatusCode) -> Reply {
        Reply {
            content_type: "",
            body: String::new(),
            ..Reply::json(status, &json!(null))
        }
    }

    pub fn location(mut self, url: String) -> Reply {
        self.location = Some(url);
        self
    }

    pub fn link(mut self, url: &str, rel: &str) -> Reply {
        self.links.push(format!("<{url}>;rel=\"{rel}\""));
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Reply {
        self.retry_after = Some(secs);
        self
    }

    fn send(self, acme: &Acme, nonce: String) -> Response {
        let mut response = if self.content_type.is_empty() {
            self.status.into_response()
        } else {
            (
                self.status,
                [(header::CONTENT_TYPE, self.content_type)],
                self.body,
            )
                .into_response()
        };
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&nonce) {
            h.insert("replay-nonce", v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(l) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            h.insert(header::LOCATION, l);
        }
        let index = format!("<{}>;rel=\"index\"", acme.directory_url());
        for link in std::iter::once(index).chain(self.links) {
            if let Ok(v) = HeaderValue::from_str(&link) {
                h.append(header::LINK, v);
            }
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Sends `result` with a fresh nonce, whichever way it went.
pub fn answer(state: &AppState, result: Result<Reply, Problem>) -> Response {
    let acme = &state.acme;
    let nonce = acme.nonces.issue(state.clock.unix());
    match result {
        Ok(reply) => reply.send(acme, nonce),
        Err(problem) => {
            tracing::info!(problem = %problem.kind, detail = %problem.detail, "ACME request refused");
            problem.into_response_with(nonce, &acme.directory_url())
        }
    }
}

/// RFC 8555 §7.1.1.
async fn directory(State(state): State<AppState>) -> Response {
    let a = &state.acme;
    let profiles: serde_json::Map<String, serde_json::Value> = PROFILES
        .iter()
        .map(|(name, what)| (name.to_string(), json!(what)))
        .collect();
    let body = json!({
        "newNonce": a.url("/new-nonce"),
        "newAccount": a.url("/new-account"),
        "newOrder": a.url("/new-order"),
        "revokeCert": a.url("/revoke-cert"),
        "keyChange": a.url("/key-change"),
        "renewalInfo": a.url("/renewal-info"),
        "meta": {
            "externalAccountRequired": true,
            "website": state.public_url.as_ref(),
            "profiles": profiles,
        }
    });
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// RFC 8555 §7.2: 200 for HEAD, 204 for GET, both with a nonce.
async fn new_nonce(State(state): State<AppState>, method: axum::http::Method) -> Response {
    let status = if method == axum::http::Method::HEAD {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    };
    answer(&state, Ok(Reply::empty(status)))
}
