//! Orders, authorizations and challenges (RFC 8555 §7.4-§7.5), finalization and
//! certificate download.
//!
//! Authorization is the integration's policy: every identifier must be one of its
//! `dns_names` (anything else is `rejectedIdentifier`), the lifetime is capped by its TTL
//! limits, and a suspended, decommissioned or overdue integration gets `unauthorized`.
//! Whether the client must also prove control of the names is the integration's ACME
//! policy (extension 3): by default it must (http-01 or dns-01, validated for real); an integration
//! whose names the operator pre-approved (`acme_preauthorized`, an authority increase under
//! dual control) gets authorizations that are valid at once, as RFC 8555 §7.1.3 permits.
//!
//! This state is in memory and bounded (`[acme] max_orders`): an order is not a
//! credential, and a client whose order was lost to a restart starts a new one.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::problem::Subproblem;
use super::request::{by_account, AccountRequest, Posted};
use super::validate::{dns01, http01, Failure};
use super::{answer, Identifier, Problem, Reply, PROFILES};
use crate::app::AppState;
use crate::clock::rfc3339;
use crate::issuance::issue_certificate;
use crate::issue::parse_csr;
use crate::policy::{check_standing, decide_certificate, decide_ttl, CertGrant};
use crate::registry::{CredentialKind, Registry};
use crate::signals::current_peer;

/// The challenges a pending authorization offers; the client completes one (§7.5.1).
const CHALLENGES: [&str; 2] = ["http-01", "dns-01"];
/// Most identifiers one order may name.
const MAX_IDENTIFIERS: usize = 100;
/// How long a client is told to wait before polling a processing challenge again.
const POLL_SECS: u64 = 1;
/// Most orders one account may have in memory (pending, ready, processing or recent):
/// one account cannot fill the server's `max_orders` for everyone else.
pub const MAX_ORDERS_PER_ACCOUNT: usize = 300;
/// Most validations in flight at once (each holds a socket up to 10 s).
pub const MAX_VALIDATIONS: usize = 64;
/// How often expired state is swept out (at the next new order after this long).
const PURGE_SECS: u64 = 60;
/// How long a finished (valid or invalid) order and its authorizations stay readable: the
/// client reads it once more and downloads the chain right after finalizing.
const DONE_KEEP_SECS: u64 = 120;
/// Most issued chains kept for download (oldest forgotten first; ~2 KB each).
const MAX_CHAINS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Ready,
    Processing,
    Valid,
    Invalid,
    /// Authorizations only: the client gave it up (§7.5.2).
    Deactivated,
    /// Authorizations only: its lifetime passed before it was used.
    Expired,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Ready => "ready",
            Status::Processing => "processing",
            Status::Valid => "valid",
            Status::Invalid => "invalid",
            Status::Deactivated => "deactivated",
            Status::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone)]
struct Challenge {
    kind: &'static str,
    token: String,
    status: Status,
    validated: Option<u64>,
    error: Option<Problem>,
}

#[derive(Debug, Clone)]
struct Authz {
    account: String,
    identifier: Identifier,
    status: Status,
    expires: u64,
    challenges: Vec<Challenge>,
}

#[derive(Debug, Clone)]
struct Order {
    account: String,
    identifiers: Vec<Identifier>,
    authzs: Vec<String>,
    /// Pending until every authorization is valid; then ready, processing, valid.
    status: Status,
    expires: u64,
    ttl_secs: Option<u64>,
    not_after: Option<String>,
    profile: Option<String>,
    /// Hex serial of the issued certificate.
    certificate: Option<String>,
    error: Option<Problem>,
}

/// A certificate an order said it replaces (RFC 9773 §5).
#[derive(Debug, Clone)]
struct Replacement {
    order: String,
    /// The replaced certificate's notAfter: after it, the mark serves no purpose.
    until: u64,
    /// The order was finalized: the mark outlives the order.
    done: bool,
}

#[derive(Default)]
struct Inner {
    orders: HashMap<String, Order>,
    authzs: HashMap<String, Authz>,
    /// Issued chains by hex serial, with the account that ordered them, for download.
    certs: HashMap<String, (String, String, u64)>,
    /// Ids of each account's orders in progress (pending, ready, processing): the
    /// per-account bound and the orders list (§7.1.2.1) read only these.
    by_account: HashMap<String, Vec<String>>,
    /// Serials of `certs`, oldest first, for its bound.
    cert_order: std::collections::VecDeque<String>,
    /// Certificates marked as replaced, by hex serial.
    replaced: HashMap<String, Replacement>,
    /// When expired state was last swept out.
    purged_at: u64,
}

/// The server's orders, authorizations and issued chains.
pub struct Orders {
    inner: Mutex<Inner>,
    capacity: usize,
    /// Bounds validations in flight.
    validations: std::sync::Arc<tokio::sync::Semaphore>,
}

fn random_id() -> String {
    let mut raw = [0u8; 16];
    rand::fill(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

impl Orders {
    pub fn new(capacity: usize) -> Orders {
        Orders {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            validations: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_VALIDATIONS)),
        }
    }

    /// Forgets the account's orders and authorizations (it was deactivated, §7.3.6).
    pub fn forget_account(&self, account: &str) {
        let mut inner = self.lock();
        inner.orders.retain(|_, o| o.account != account);
        inner.authzs.retain(|_, a| a.account != account);
        inner.by_account.remove(account);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Forgets everything expired at `now` (kept one lifetime longer for certificates,
    /// so a slow client can still download).
    fn purge(&mut self, now: u64) {
        // An order being finalized stays: its certificate may already be in the ledger.
        self.orders
            .retain(|_, o| o.expires >= now || o.status == Status::Processing);
        self.drop_orphan_authzs(now);
        self.certs.retain(|_, c| c.2 >= now);
        let certs = &self.certs;
        self.cert_order.retain(|s| certs.contains_key(s));
        self.purge_replaced(now);
        self.purged_at = now;
    }

    /// A mark lasts while its order is alive or once it succeeded, until the replaced
    /// certificate expires (or, at capacity, [`Inner::evict_finished`] runs).
    fn purge_replaced(&mut self, now: u64) {
        let orders = &self.orders;
        self.replaced
            .retain(|_, r| r.until >= now && (r.done || orders.contains_key(&r.order)));
    }

    /// Whether `serial` is already replaced by an order that has not failed as of `now`.
    fn is_replaced(&mut self, serial: &str, now: u64) -> bool {
        let Some(r) = self.replaced.get(serial).cloned() else {
            return false;
        };
        if r.done {
            return true;
        }
        self.refresh(&r.order, now);
        self.orders
            .get(&r.order)
            .is_some_and(|o| o.status != Status::Invalid)
    }

    /// At capacity: finished orders go first, whatever their age.
    fn evict_finished(&mut self, now: u64) {
        self.orders
            .retain(|_, o| !matches!(o.status, Status::Valid | Status::Invalid));
        self.replaced.retain(|_, r| !r.done);
        self.drop_orphan_authzs(now);
    }

    /// `account`'s orders in progress.
    fn orders_of(&self, account: &str) -> impl Iterator<Item = (&String, &Order)> {
        self.by_account
            .get(account)
            .into_iter()
            .flatten()
            .filter_map(|id| self.orders.get_key_value(id))
    }

    /// Authorizations belong to one order each: they go with it (or when they expire).
    /// Also brings the per-account index in line after orders were dropped.
    fn drop_orphan_authzs(&mut self, now: u64) {
        let orders = &self.orders;
        self.by_account.retain(|_, ids| {
            ids.retain(|id| orders.contains_key(id));
            !ids.is_empty()
        });
        let live: std::collections::HashSet<&String> =
            self.orders.values().flat_map(|o| o.authzs.iter()).collect();
        let keep: std::collections::HashSet<String> = self
            .authzs
            .iter()
            .filter(|(id, a)| a.expires >= now && live.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        self.authzs.retain(|id, _| keep.contains(id));
    }

    /// Keeps an issued chain for download, within [`MAX_CHAINS`].
    fn keep_chain(&mut self, serial: String, account: String, chain: String, until: u64) {
        while self.cert_order.len() >= MAX_CHAINS {
            if let Some(old) = self.cert_order.pop_front() {
                self.certs.remove(&old);
            }
        }
        self.cert_order.push_back(serial.clone());
        self.certs.insert(serial, (account, chain, until));
    }

    /// The authorization's status as of now: one not used within its lifetime expires.
    fn authz_status(&mut self, id: &str, now: u64) -> Option<Status> {
        let a = self.authzs.get_mut(id)?;
        if now > a.expires && matches!(a.status, Status::Pending | Status::Valid) {
            a.status = Status::Expired;
        }
        Some(a.status)
    }

    /// The order's status as of now: pending turns ready once every authorization is
    /// valid, and invalid if one failed or the order expired before it was finalized.
    fn refresh(&mut self, id: &str, now: u64) {
        let Some(order) = self.orders.get(id) else {
            return;
        };
        let (status, expires, ids) = (order.status, order.expires, order.authzs.clone());
        let authz: Vec<Status> = ids
            .iter()
            .map(|a| self.authz_status(a, now).unwrap_or(Status::Invalid))
            .collect();
        let all_valid = authz.iter().all(|s| *s == Status::Valid);
        let next = match status {
            Status::Pending | Status::Ready if now > expires => Status::Invalid,
            // A deactivated, failed or expired authorization ends a ready order too.
            Status::Pending | Status::Ready
                if authz.iter().any(|s| {
                    matches!(s, Status::Invalid | Status::Deactivated | Status::Expired)
                }) =>
            {
                Status::Invalid
            }
            Status::Pending if all_valid => Status::Ready,
            s => s,
        };
        let mut finished = None;
        if let Some(order) = self.orders.get_mut(id) {
            if next == Status::Invalid && order.status != Status::Invalid {
                order.expires = order.expires.min(now + DONE_KEEP_SECS);
                finished = Some(order.account.clone());
            }
            order.status = next;
        }
        if let Some(account) = finished {
            self.finished(&account, id);
        }
    }

    /// `id` of `account` is valid or invalid now: no longer in progress.
    fn finished(&mut self, account: &str, id: &str) {
        if let Some(ids) = self.by_account.get_mut(account) {
            ids.retain(|i| i != id);
        }
    }
}

fn order_json(state: &AppState, id: &str, o: &Order) -> Value {
    let a = &state.acme;
    let mut v = json!({
        "status": o.status.name(),
        "expires": rfc3339(o.expires),
        "identifiers": o.identifiers,
        "authorizations": o.authzs.iter().map(|z| a.url(&format!("/authz/{z}"))).collect::<Vec<_>>(),
        "finalize": a.url(&format!("/order/{id}/finalize")),
    });
    if let Some(na) = &o.not_after {
        v["notAfter"] = json!(na);
    }
    if let Some(p) = &o.profile {
        v["profile"] = json!(p);
    }
    if let Some(serial) = &o.certificate {
        v["certificate"] = json!(a.url(&format!("/cert/{serial}")));
    }
    if let Some(e) = &o.error {
        v["error"] = json!(e);
    }
    v
}

fn challenge_json(state: &AppState, authz: &str, c: &Challenge) -> Value {
    let mut v = json!({
        "type": c.kind,
        "url": state.acme.url(&format!("/chall/{authz}/{}", c.kind)),
        "token": c.token,
        "status": c.status.name(),
    });
    if let Some(t) = c.validated {
        v["validated"] = json!(rfc3339(t));
    }
    if let Some(e) = &c.error {
        v["error"] = json!(e);
    }
    v
}

fn authz_json(state: &AppState, id: &str, a: &Authz) -> Value {
    json!({
        "status": a.status.name(),
        "expires": rfc3339(a.expires),
        "identifier": a.identifier,
        "challenges": a.challenges.iter().map(|c| challenge_json(state, id, c)).collect::<Vec<_>>(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrder {
    identifiers: Vec<Identifier>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
    #[serde(default)]
    profile: Option<String>,
    /// ARI (RFC 9773 §5): the certificate this order replaces, as a renewalInfo id.
    #[serde(default)]
    replaces: Option<String>,
}

fn parse_time(what: &str, s: &str) -> Result<u64, Problem> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| Problem::malformed(format!("{what} is not an RFC 3339 date")))?;
    u64::try_from(t.unix_timestamp())
        .map_err(|_| Problem::malformed(format!("{what} is before 1970")))
}

pub async fn new_order(State(state): State<AppState>, p: Posted) -> Response {
    let result = async {
        let req = by_account(&state, &p)?;
        let order: NewOrder = req.jws.payload_json()?;
        create(&state, &req, order)
    }
    .await;
    answer(&state, result)
}

fn create(state: &AppState, req: &AccountRequest, o: NewOrder) -> Result<Reply, Problem> {
    let now = state.clock.unix();
    let spec = Registry::open(&state.ledger)?
        .integration(&req.account.integration)?
        .ok_or_else(|| Problem::server("account of an unknown integration"))?;
    check_standing(&spec, now)?;
    if o.identifiers.is_empty() || o.identifiers.len() > MAX_IDENTIFIERS {
        return Err(Problem::malformed(format!(
            "an order names 1 to {MAX_IDENTIFIERS} identifiers"
        )));
    }
    let mut identifiers: Vec<Identifier> = Vec::new();
    let mut rejected = Vec::new();
    for id in &o.identifiers {
        let value = id.value.to_ascii_lowercase();
        let why = if id.kind != "dns" {
            Some(format!(
                "identifier type {} is not certified: credmint issues DNS names only",
                crate::api::echo(&id.kind)
            ))
        } else if !spec.dns_names.contains(&value) {
            Some(format!(
                "{} is not among integration {:?}'s dns_names",
                crate::api::echo(&value),
                spec.name
            ))
        } else {
            None
        };
        let normalized = Identifier {
            kind: id.kind.clone(),
            value,
        };
        match why {
            Some(detail) => rejected.push(Subproblem {
                kind: format!("{}rejectedIdentifier", super::problem::NS),
                detail,
                identifier: normalized,
            }),
            None if !identifiers.contains(&normalized) => identifiers.push(normalized),
            None => {}
        }
    }
    if !rejected.is_empty() {
        let mut p = Problem::new(
            "rejectedIdentifier",
            StatusCode::BAD_REQUEST,
            format!(
                "integration {:?} may not have {} of the identifiers ordered",
                spec.name,
                rejected.len()
            ),
        );
        p.subproblems = rejected;
        return Err(p);
    }
    if o.not_before.is_some() {
        return Err(Problem::malformed(
            "notBefore is not supported: a certificate starts when it is issued",
        ));
    }
    let ttl_secs = match &o.not_after {
        Some(na) => {
            let end = parse_time("notAfter", na)?;
            if end <= now {
                return Err(Problem::malformed("notAfter is in the past"));
            }
            Some(decide_ttl(&spec, Some(end - now), &state.config.ttl)?)
        }
        None => None,
    };
    if let Some(p) = &o.profile {
        if !PROFILES.iter().any(|(name, _)| name == p) {
            return Err(Problem::new(
                "invalidProfile",
                StatusCode::BAD_REQUEST,
                format!("unknown profile {}", crate::api::echo(p)),
            ));
        }
        if p == "server" && !spec.allow_server_auth {
            return Err(Problem::unauthorized(format!(
                "integration {:?} may not have serverAuth certificates",
                spec.name
            )));
        }
    }
    let replaces = match &o.replaces {
        Some(id) => Some(predecessor(state, req, id)?),
        None => None,
    };
    let preauthorized = spec.policy.acme_preauthorized();
    let expires = now + state.acme.config.order_lifetime_secs;
    let mut inner = state.acme.orders.lock();
    if let Some((serial, _)) = &replaces {
        if inner.is_replaced(serial, now) {
            return Err(Problem::new(
                "alreadyReplaced",
                StatusCode::CONFLICT,
                format!("certificate {serial} is already replaced by another order"),
            ));
        }
    }
    // Orders, authorizations and replacement marks all count against `max_orders`.
    let held = |inner: &Inner| {
        inner.orders.len() + inner.authzs.len() + inner.replaced.len() + identifiers.len()
    };
    if held(&inner) > state.acme.orders.capacity || now >= inner.purged_at + PURGE_SECS {
        inner.purge(now);
    }
    if held(&inner) > state.acme.orders.capacity {
        inner.evict_finished(now);
    }
    let mine = inner
        .orders_of(&req.account.id)
        .filter(|(_, o)| {
            matches!(
                o.status,
                Status::Pending | Status::Ready | Status::Processing
            )
        })
        .count();
    if held(&inner) > state.acme.orders.capacity || mine >= MAX_ORDERS_PER_ACCOUNT {
        let mut p = Problem::new(
            "rateLimited",
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many orders in progress (at most {MAX_ORDERS_PER_ACCOUNT} per account); retry later"
            ),
        );
        p.retry_after = Some(60);
        return Err(p);
    }
    let mut authzs = Vec::new();
    for identifier in &identifiers {
        let id = random_id();
        let status = if preauthorized {
            Status::Valid
        } else {
            Status::Pending
        };
        let challenges = if preauthorized {
            Vec::new()
        } else {
            CHALLENGES
                .iter()
                .map(|kind| Challenge {
                    kind,
                    token: random_id(),
                    status: Status::Pending,
                    validated: None,
                    error: None,
                })
                .collect()
        };
        inner.authzs.insert(
            id.clone(),
            Authz {
                account: req.account.id.clone(),
                identifier: identifier.clone(),
                status,
                expires,
                challenges,
            },
        );
        authzs.push(id);
    }
    let id = random_id();
    let order = Order {
        account: req.account.id.clone(),
        identifiers,
        authzs,
        status: Status::Pending,
        expires,
        ttl_secs,
        not_after: o.not_after,
        profile: o.profile,
        certificate: None,
        error: None,
    };
    inner.orders.insert(id.clone(), order);
    if let Some((serial, until)) = replaces {
        let mark = Replacement {
            order: id.clone(),
            until,
            done: false,
        };
        inner.replaced.insert(serial, mark);
    }
    inner
        .by_account
        .entry(req.account.id.clone())
        .or_default()
        .push(id.clone());
    inner.refresh(&id, now);
    let body = order_json(state, &id, &inner.orders[&id]);
    drop(inner);
    tracing::info!(account = %req.account.id, integration = %spec.name, order = %id, preauthorized, "ACME order created");
    Ok(Reply::json(StatusCode::CREATED, &body).location(state.acme.url(&format!("/order/{id}"))))
}

/// The certificate an order replaces (RFC 9773 §5), as (hex serial, notAfter): one the
/// CA issued to the account's integration and, if it was issued over ACME, to this
/// account. Sharing an identifier is implied: both sides are within the integration's
/// `dns_names`.
fn predecessor(state: &AppState, req: &AccountRequest, id: &str) -> Result<(String, u64), Problem> {
    let (_, serial) = super::renewal::parse_cert_id(id)?;
    let row = Registry::open(&state.ledger)?
        .certificate(&serial)?
        .filter(|r| r.kind == CredentialKind::Workload)
        .ok_or_else(|| Problem::malformed("replaces names no certificate of this CA"))?;
    let hex = hex::encode(&serial);
    if row.owner != req.account.integration {
        return Err(Problem::unauthorized(format!(
            "certificate {hex} belongs to another integration"
        )));
    }
    let by_acme = state
        .ledger
        .record(row.issued_index)
        .map_err(|e| Problem::server(e.to_string()))?
        .map(|rec| rec.actor)
        .filter(|actor| actor.starts_with("acme:"));
    if by_acme.is_some_and(|actor| actor != format!("acme:{}", req.account.id)) {
        return Err(Problem::unauthorized(format!(
            "certificate {hex} was ordered by another ACME account"
        )));
    }
    Ok((hex, row.not_after))
}

/// Looks up `id` for `account`: another account's order is "not found" too.
fn owned<'a, T>(
    map: &'a HashMap<String, T>,
    id: &str,
    account: &str,
    owner: impl Fn(&T) -> &str,
) -> Result<&'a T, Problem> {
    map.get(id)
        .filter(|t| owner(t) == account)
        .ok_or_else(|| Problem::not_found("no such resource for this account"))
}

pub async fn order(State(state): State<AppState>, Path(id): Path<String>, p: Posted) -> Response {
    let result = (|| {
        let req = by_account(&state, &p)?;
        let mut inner = state.acme.orders.lock();
        inner.refresh(&id, state.clock.unix());
        let o = owned(&inner.orders, &id, &req.account.id, |o| &o.account)?;
        let mut reply = Reply::json(StatusCode::OK, &order_json(&state, &id, o));
        if o.status == Status::Processing {
            reply = reply.retry_after(POLL_SECS);
        }
        Ok(reply)
    })();
    answer(&state, result)
}

/// §7.1.2.1: the URLs of the account's orders still in progress or just valid.
pub async fn orders_of(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted,
) -> Response {
    let result = (|| {
        let req = by_account(&state, &p)?;
        if req.account.id != id {
            return Err(Problem::unauthorized(
                "this is not the signing account's URL",
            ));
        }
        let inner = state.acme.orders.lock();
        let urls: Vec<String> = inner
            .orders_of(&id)
            .map(|(k, _)| state.acme.url(&format!("/order/{k}")))
            .collect();
        Ok(Reply::json(StatusCode::OK, &json!({ "orders": urls })))
    })();
    answer(&state, result)
}

pub async fn authz(State(state): State<AppState>, Path(id): Path<String>, p: Posted) -> Response {
    let result = (|| {
        let req = by_account(&state, &p)?;
        let mut inner = state.acme.orders.lock();
        owned(&inner.authzs, &id, &req.account.id, |a| &a.account)?;
        inner.authz_status(&id, state.clock.unix());
        let a = &inner.authzs[&id];
        if !req.jws.is_post_as_get() {
            // §7.5.2: the client may deactivate an authorization.
            #[derive(Deserialize)]
            struct Update {
                status: String,
            }
            let update: Update = req.jws.payload_json()?;
            if update.status != "deactivated" {
                return Err(Problem::malformed(
                    "an authorization can only be deactivated",
                ));
            }
            if let Some(a) = inner.authzs.get_mut(&id) {
                a.status = Status::Deactivated;
            }
            let a = &inner.authzs[&id];
            return Ok(Reply::json(StatusCode::OK, &authz_json(&state, &id, a)));
        }
        let mut reply = Reply::json(StatusCode::OK, &authz_json(&state, &id, a));
        if a.status == Status::Pending {
            reply = reply.retry_after(POLL_SECS);
        }
        Ok(reply)
    })();
    answer(&state, result)
}

/// §7.5.1: a client says it is ready for validation (payload `{}`); POST-as-GET reads.
pub async fn challenge(
    State(state): State<AppState>,
    Path((id, kind)): Path<(String, String)>,
    p: Posted,
) -> Response {
    let result = (|| {
        let req = by_account(&state, &p)?;
        let key_authorization_suffix =
            super::jws::AccountKey::from_canonical(&req.account.jwk)?.thumbprint();
        let mut inner = state.acme.orders.lock();
        owned(&inner.authzs, &id, &req.account.id, |a| &a.account)?;
        inner.authz_status(&id, state.clock.unix());
        let a = &inner.authzs[&id];
        let c = a
            .challenges
            .iter()
            .find(|c| c.kind == kind)
            .ok_or_else(|| Problem::not_found("no such challenge"))?
            .clone();
        let start =
            !req.jws.is_post_as_get() && c.status == Status::Pending && a.status == Status::Pending;
        let domain = a.identifier.value.clone();
        if start {
            if let Some(a) = inner.authzs.get_mut(&id) {
                for ch in a.challenges.iter_mut().filter(|ch| ch.kind == kind) {
                    ch.status = Status::Processing;
                }
            }
            let key_authorization = format!("{}.{key_authorization_suffix}", c.token);
            spawn_validation(
                &state,
                id.clone(),
                c.kind,
                domain,
                c.token.clone(),
                key_authorization,
            );
        }
        let c = inner.authzs[&id]
            .challenges
            .iter()
            .find(|c| c.kind == kind)
            .cloned()
            .unwrap_or(c);
        Ok(
            Reply::json(StatusCode::OK, &challenge_json(&state, &id, &c))
                .link(&state.acme.url(&format!("/authz/{id}")), "up"),
        )
    })();
    answer(&state, result)
}

/// Runs one validation in the background and records its outcome. It changes only this
/// in-memory authorization, never the ledger, so nothing is lost if it is cut short.
fn spawn_validation(
    state: &AppState,
    authz: String,
    kind: &'static str,
    domain: String,
    token: String,
    key_authorization: String,
) {
    let st = state.clone();
    let slots = state.acme.orders.validations.clone();
    tokio::spawn(async move {
        // At most MAX_VALIDATIONS fetches at once; the rest wait their turn (their number
        // is bounded by the authorizations `max_orders` allows).
        let Ok(_slot) = slots.acquire_owned().await else {
            return;
        };
        let outcome = match kind {
            "dns-01" => match &st.acme.dns {
                Ok(resolver) => dns01::validate(resolver, &domain, &key_authorization).await,
                Err(why) => Err(Failure {
                    kind: "dns",
                    detail: format!("this server cannot resolve names: {why}"),
                }),
            },
            _ => {
                let port = st.acme.config.http01_port;
                http01::validate(&st.acme.http, &domain, port, &token, &key_authorization).await
            }
        };
        let now = st.clock.unix();
        let mut inner = st.acme.orders.lock();
        // Deactivated, expired or forgotten meanwhile: the outcome changes nothing.
        let Some(a) = inner
            .authzs
            .get_mut(&authz)
            .filter(|a| a.status == Status::Pending && now <= a.expires)
        else {
            return;
        };
        for c in a.challenges.iter_mut().filter(|c| c.kind == kind) {
            match &outcome {
                Ok(()) => {
                    c.status = Status::Valid;
                    c.validated = Some(now);
                }
                Err(failure) => {
                    c.status = Status::Invalid;
                    c.error = Some(Problem::new(
                        failure.kind,
                        StatusCode::FORBIDDEN,
                        failure.detail.clone(),
                    ));
                }
            }
        }
        a.status = if outcome.is_ok() {
            Status::Valid
        } else {
            Status::Invalid
        };
        tracing::info!(authz = %authz, %domain, ok = outcome.is_ok(), "ACME {kind} validation");
    });
}

#[derive(Deserialize)]
struct Finalize {
    csr: String,
}

pub async fn finalize(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted,
) -> Response {
    let result = async {
        let req = by_account(&state, &p)?;
        let f: Finalize = req.jws.payload_json()?;
        // Claim the order (ready -> processing) so a concurrent finalize gets orderNotReady.
        let order = {
            let mut inner = state.acme.orders.lock();
            inner.refresh(&id, state.clock.unix());
            let o = owned(&inner.orders, &id, &req.account.id, |o| &o.account)?.clone();
            if o.status != Status::Ready {
                return Err(Problem::new(
                    "orderNotReady",
                    StatusCode::FORBIDDEN,
                    format!("the order is {}, not ready", o.status.name()),
                ));
            }
            if let Some(o) = inner.orders.get_mut(&id) {
                o.status = Status::Processing;
            }
            o
        };
        let issued = issue_for(&state, &req, &order, &f.csr).await;
        let mut inner = state.acme.orders.lock();
        let now = state.clock.unix();
        if let Ok((serial, chain)) = &issued {
            // Kept first: the certificate is durable whatever happens to the order now.
            let until = now + state.acme.config.order_lifetime_secs;
            inner.keep_chain(serial.clone(), req.account.id.clone(), chain.clone(), until);
        }
        let Some(o) = inner.orders.get_mut(&id) else {
            return Err(Problem::not_found(
                "the order was withdrawn (account deactivated)",
            ));
        };
        match issued {
            Ok((serial, _)) => {
                o.status = Status::Valid;
                o.expires = o.expires.min(now + DONE_KEEP_SECS);
                o.certificate = Some(serial);
                let body = order_json(&state, &id, o);
                if let Some(r) = inner.replaced.values_mut().find(|r| r.order == id) {
                    r.done = true;
                }
                inner.finished(&req.account.id, &id);
                Ok(Reply::json(StatusCode::OK, &body)
                    .location(state.acme.url(&format!("/order/{id}"))))
            }
            Err(p) => {
                // Nothing was issued; the client may finalize again with another CSR.
                o.status = Status::Ready;
                Err(p)
            }
        }
    }
    .await;
    answer(&state, result)
}

/// Issues the order's certificate for `csr_b64`: the same policy decision and issuance
/// path as the JSON API, by the account as actor. Returns (hex serial, PEM chain).
async fn issue_for(
    state: &AppState,
    req: &AccountRequest,
    order: &Order,
    csr_b64: &str,
) -> Result<(String, String), Problem> {
    let bad_csr = |detail: String| Problem::new("badCSR", StatusCode::BAD_REQUEST, detail);
    let der = URL_SAFE_NO_PAD
        .decode(csr_b64)
        .map_err(|_| bad_csr("csr is not base64url DER".into()))?;
    let csr = parse_csr(&der).map_err(|e| bad_csr(e.to_string()))?;
    let mut asked: Vec<String> = csr
        .dns_names
        .iter()
        .map(|d| d.to_ascii_lowercase())
        .collect();
    asked.sort();
    asked.dedup();
    let mut ordered: Vec<String> = order.identifiers.iter().map(|i| i.value.clone()).collect();
    ordered.sort();
    if asked != ordered || !csr.uris.is_empty() {
        return Err(bad_csr(
            "the CSR must ask for exactly the order's DNS names (and no URI; the SPIFFE ID is added)".into(),
        ));
    }
    let spec = Registry::open(&state.ledger)?
        .integration(&req.account.integration)?
        .ok_or_else(|| Problem::server("account of an unknown integration"))?;
    let mut grant: CertGrant = decide_certificate(
        &spec,
        &csr,
        order.ttl_secs,
        &state.config.ttl,
        &state.config.identity.trust_domain,
        state.clock.unix(),
    )?;
    grant.common_name = order.identifiers.first().map(|i| i.value.clone());
    grant.dns_names = ordered;
    match order.profile.as_deref() {
        Some("client") => grant.server_auth = false,
        Some("server") => grant.client_auth = false,
        _ => {}
    }
    let cert = issue_certificate(
        &state.issuer(),
        &grant,
        &csr,
        req.actor(),
        None,
        current_peer(),
    )
    .await?;
    tracing::info!(account = %req.account.id, integration = %grant.integration, serial = %hex::encode(&cert.serial), "ACME certificate issued");
    Ok((hex::encode(&cert.serial), cert.chain_pem))
}

/// §7.4.2: the chain, leaf first (POST-as-GET by the account that ordered it).
pub async fn certificate(
    State(state): State<AppState>,
    Path(serial): Path<String>,
    p: Posted,
) -> Response {
    let result = (|| {
        let req = by_account(&state, &p)?;
        let inner = state.acme.orders.lock();
        let (_, chain, _) = owned(&inner.certs, &serial, &req.account.id, |c| &c.0)?;
        Ok(Reply::pem_chain(chain.clone()))
    })();
    answer(&state, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(account: &str, status: Status, expires: u64) -> Order {
        Order {
            account: account.into(),
            identifiers: Vec::new(),
            authzs: Vec::new(),
            status,
            expires,
            ttl_secs: None,
            not_after: None,
            profile: None,
            certificate: None,
            error: None,
        }
    }

    #[test]
    fn finished_orders_leave_the_account_bound_and_go_first_at_capacity() {
        let mut inner = Inner::default();
        for (id, status) in [
            ("a", Status::Pending),
            ("b", Status::Valid),
            ("c", Status::Ready),
        ] {
            inner.orders.insert(id.into(), order("acct", status, 100));
            inner
                .by_account
                .entry("acct".into())
                .or_default()
                .push(id.into());
        }
        inner.finished("acct", "b");
        let mine: Vec<&String> = inner.orders_of("acct").map(|(id, _)| id).collect();
        assert_eq!(
            mine,
            ["a", "c"],
            "a valid order no longer counts as in progress"
        );
        inner.evict_finished(50);
        assert!(!inner.orders.contains_key("b") && inner.orders.len() == 2);
        // Expiry purges all but an order being finalized.
        inner
            .orders
            .insert("p".into(), order("acct", Status::Processing, 10));
        inner.purge(200);
        assert_eq!(inner.orders.keys().collect::<Vec<_>>(), ["p"]);
        assert!(
            inner.orders_of("acct").next().is_none(),
            "index follows the purge"
        );
    }

    #[test]
    fn issued_chains_are_bounded_oldest_first() {
        let mut inner = Inner::default();
        for i in 0..=MAX_CHAINS {
            inner.keep_chain(format!("{i}"), "acct".into(), "pem".into(), 100);
        }
        assert_eq!(inner.certs.len(), MAX_CHAINS);
        assert!(
            !inner.certs.contains_key("0") && inner.certs.contains_key(&MAX_CHAINS.to_string())
        );
    }
}
