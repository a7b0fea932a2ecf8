//! Accounts (RFC 8555 §7.3): creation with External Account Binding, lookup, deactivation
//! and key rollover. Each is a ledger event; an account's integration never changes.
//!
//! Contacts are accepted and not kept: credmint tells owners through the integration's
//! owners and the console, never by e-mail, and a contact list would be personal data in
//! an append-only ledger. Account objects therefore list no contact.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use credmint_ledger::event::{AcmeAccountChange, AcmeAccountChanged, AcmeAccountCreated};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::jws::{AccountKey, Jws};
use super::request::{account_of, by_account, by_key, envelope, Posted};
use super::{answer, Problem, Reply};
use crate::api::extract::{ApiPath, Operator};
use crate::api::{echo, ApiError};
use crate::app::AppState;
use crate::registry::{AcmeAccountRow, Registry};
use crate::sequencer::{Actor, Command, Op, Receipt, SequenceError};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAccount {
    #[serde(default)]
    only_return_existing: bool,
    #[serde(default)]
    external_account_binding: Option<Value>,
    #[serde(default)]
    contact: Option<Vec<String>>,
    #[serde(default)]
    terms_of_service_agreed: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
struct AccountUpdate {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    contact: Option<Vec<String>>,
}

fn registry(state: &AppState) -> Result<Registry, Problem> {
    Registry::open(&state.ledger).map_err(|e| Problem::server(e.to_string()))
}

/// The account object (§7.1.2).
fn object(state: &AppState, row: &AcmeAccountRow) -> Value {
    json!({
        "status": if row.deactivated { "deactivated" } else { "valid" },
        "contact": [],
        "orders": state.acme.url(&format!("/acct/{}/orders", row.id)),
        // credmint extension: the integration this account belongs to, for life.
        "integration": row.integration,
    })
}

pub async fn new_account(State(state): State<AppState>, p: Posted) -> Response {
    let result = create(&state, &p).await;
    answer(&state, result)
}

async fn create(state: &AppState, p: &Posted) -> Result<Reply, Problem> {
    let jws = envelope(state, p)?;
    let key = by_key(&jws)?;
    let req: NewAccount = jws.payload_json()?;
    let _ = (req.contact.as_ref(), req.terms_of_service_agreed);
    let id = key.thumbprint();
    let reg = registry(state)?;
    if let Some(existing) = reg.acme_account_by_key(&id)? {
        // §7.3.1: the key is known: answer with its account (no new binding is made).
        let row = reg
            .acme_account(&existing)?
            .ok_or_else(|| Problem::server("account index inconsistent"))?;
        if row.deactivated {
            return Err(Problem::unauthorized(
                "the account of this key is deactivated",
            ));
        }
        if row.jwk != key.canonical.as_bytes() {
            // A key rolled over away from: it must not even find its old account.
            return Err(Problem::unauthorized(
                "this key was replaced by a key change; it belongs to no account now",
            ));
        }
        return Ok(Reply::json(StatusCode::OK, &object(state, &row))
            .location(state.acme.url(&format!("/acct/{}", row.id))));
    }
    if req.only_return_existing {
        return Err(Problem::account_does_not_exist("no account has this key"));
    }
    let binding = req.external_account_binding.ok_or_else(|| {
        Problem::new(
            "externalAccountRequired",
            StatusCode::UNAUTHORIZED,
            "this server requires External Account Binding: ask an operator for `credmint acme eab INTEGRATION`",
        )
    })?;
    let (kid, eab) = check_binding(state, &reg, &jws, &key, &binding).await?;
    drop(reg);
    let account = AcmeAccountCreated {
        account: id.clone(),
        integration: eab.integration.clone(),
        eab_kid: kid,
        jwk: key.canonical.clone().into_bytes(),
    };
    let command = Command::new(
        Actor::Acme {
            account: id.clone(),
            key: id.clone(),
        },
        Op::CreateAcmeAccount(account),
    );
    state.sequencer.submit(command).await?;
    tracing::info!(integration = %eab.integration, account = %id, "ACME account created");
    let row = AcmeAccountRow {
        id: id.clone(),
        integration: eab.integration,
        jwk: Vec::new(),
        deactivated: false,
        eab_kid: String::new(),
        created_index: 0,
    };
    Ok(Reply::json(StatusCode::CREATED, &object(state, &row))
        .location(state.acme.url(&format!("/acct/{id}"))))
}

/// Checks the EAB inner JWS: HMAC by the key derived for its kid, over exactly the
/// account's key, for this URL. Returns the kid and its row. The kid must be one the
/// ledger knows, unspent and unexpired, before the HSM derives anything: a stranger's
/// made-up kid costs no HSM time (and is told the same as a wrong HMAC key).
async fn check_binding(
    state: &AppState,
    reg: &Registry,
    outer: &Jws,
    key: &AccountKey,
    binding: &Value,
) -> Result<(String, crate::registry::AcmeEabRow), Problem> {
    let fails = || {
        Problem::unauthorized(
            "the External Account Binding does not verify (wrong kid or HMAC key)",
        )
    };
    let inner = Jws::parse(binding.to_string().as_bytes())?;
    let kid = inner.eab_kid(&outer.header.url)?;
    let eab = if kid.len() > 255 {
        None
    } else {
        reg.acme_eab(&kid)?
    };
    let eab = eab.ok_or_else(fails)?;
    if eab.bound_index.is_some() {
        return Err(Problem::unauthorized(
            "this EAB key already bound an account",
        ));
    }
    if state.clock.unix() > eab.expires_at {
        return Err(Problem::unauthorized("this EAB key has expired"));
    }
    let (hsm, label, k) = (
        state.hsm.clone(),
        state.acme.config.eab_key_label.clone(),
        kid.clone(),
    );
    let secret = tokio::task::spawn_blocking(move || super::eab::derive(&hsm, &label, &k))
        .await
        .map_err(|e| Problem::server(e.to_string()))??;
    inner.verify_mac(secret.as_slice()).map_err(|_| fails())?;
    let bound: Value = inner.payload_json()?;
    let bound = AccountKey::from_jwk(&bound)?;
    if bound.canonical != key.canonical {
        return Err(Problem::unauthorized(
            "the External Account Binding signs another key than the account's",
        ));
    }
    Ok((kid, eab))
}

/// POST to an account URL: POST-as-GET reads it; `{"status":"deactivated"}` ends it.
pub async fn account(State(state): State<AppState>, Path(id): Path<String>, p: Posted) -> Response {
    let result = async {
        let req = by_account(&state, &p)?;
        if req.account.id != id {
            return Err(Problem::unauthorized("this is not the signing account's URL"));
        }
        if req.jws.is_post_as_get() {
            return Ok(Reply::json(StatusCode::OK, &object(&state, &req.account)));
        }
        let update: AccountUpdate = req.jws.payload_json()?;
        let _ = update.contact;
        match update.status.as_deref() {
            None => Ok(Reply::json(StatusCode::OK, &object(&state, &req.account))),
            Some("deactivated") => {
                let actor = req.actor();
                deactivate(&state, actor, &req.account.id).await?;
                let mut row = req.account;
                row.deactivated = true;
                tracing::info!(account = %row.id, integration = %row.integration, "ACME account deactivated");
                Ok(Reply::json(StatusCode::OK, &object(&state, &row)))
            }
            Some(other) => Err(Problem::malformed(format!(
                "an account's status can only be set to \"deactivated\", not {}",
                crate::api::echo(other)
            ))),
        }
    }
    .await;
    answer(&state, result)
}

/// Deactivates account `id` (§7.3.6) as `actor`, the account itself or an operator:
/// a ledger event, after which its orders and authorizations are forgotten.
async fn deactivate(state: &AppState, actor: Actor, id: &str) -> Result<Receipt, SequenceError> {
    let receipt = change(state, actor, id, AcmeAccountChange::Deactivated).await?;
    state.acme.orders.forget_account(id);
    Ok(receipt)
}

async fn change(
    state: &AppState,
    actor: Actor,
    account: &str,
    change: AcmeAccountChange,
) -> Result<Receipt, SequenceError> {
    let account = account.to_string();
    let command = Command::new(
        actor,
        Op::ChangeAcmeAccount(AcmeAccountChanged { account, change }),
    );
    state.sequencer.submit(command).await
}

pub fn admin_router() -> Router<AppState> {
    Router::new().route(
        "/v1/admin/acme/accounts/{id}/deactivate",
        post(deactivate_by_operator),
    )
}

/// An ACME account an operator deactivated.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountDeactivated {
    pub account: String,
    pub integration: String,
    /// The EAB key id the account was opened with.
    pub eab_kid: String,
    pub ledger_index: Option<u64>,
}

/// Deactivates an ACME account for good (a lost or compromised client): its key can no
/// longer order, revoke or roll over, its orders are dropped. Certificates it obtained
/// stay valid; revoke them separately if the key that held them is suspect.
#[utoipa::path(
    post, path = "/v1/admin/acme/accounts/{id}/deactivate", tag = "integrations",
    security(("operator_mtls" = [])),
    params(("id" = String, Path, description = "Account id, the last segment of its URL (the `acme:` actor in the ledger)")),
    responses(
        (status = 200, description = "Deactivated (a ledger event)", body = AccountDeactivated),
        (status = 404, description = "No such account"),
        (status = 409, description = "Already deactivated"),
    )
)]
pub async fn deactivate_by_operator(
    State(state): State<AppState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AccountDeactivated>, ApiError> {
    let row = Registry::open(&state.ledger)?
        .acme_account(&id)?
        .ok_or_else(|| ApiError::NotFound(format!("no ACME account {}", echo(&id))))?;
    if row.deactivated {
        return Err(ApiError::Conflict(format!(
            "ACME account {} is already deactivated",
            echo(&id)
        )));
    }
    let receipt = deactivate(&state, operator.actor(), &id).await?;
    tracing::info!(account = %id, integration = %row.integration, operator = %operator.name, "ACME account deactivated by an operator");
    Ok(Json(AccountDeactivated {
        account: row.id,
        integration: row.integration,
        eab_kid: row.eab_kid,
        ledger_index: receipt.first_index(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyChange {
    account: String,
    old_key: Value,
}

/// §7.3.5 key rollover: the outer JWS by the account's current key, the inner by the new
/// key, naming the account and the old key.
pub async fn key_change(State(state): State<AppState>, p: Posted) -> Response {
    let result = async {
        let outer = envelope(&state, &p)?;
        let row = account_of(&state, &outer)?;
        let inner = Jws::parse(&outer.payload)?;
        if inner.header.url != outer.header.url {
            return Err(Problem::malformed("the inner JWS url differs from the outer"));
        }
        if inner.header.nonce.is_some() {
            return Err(Problem::malformed("the inner JWS must not carry a nonce"));
        }
        let new_key = by_key(&inner)?;
        let req: KeyChange = inner.payload_json()?;
        if req.account != state.acme.url(&format!("/acct/{}", row.id)) {
            return Err(Problem::unauthorized("the inner JWS names another account"));
        }
        let old = AccountKey::from_jwk(&req.old_key)?;
        if old.canonical.as_bytes() != row.jwk.as_slice() {
            return Err(Problem::unauthorized("oldKey is not the account's current key"));
        }
        if let Some(holder) = registry(&state)?
            .acme_account_by_key(&new_key.thumbprint())
            ?
        {
            return Err(Problem::new(
                "malformed",
                StatusCode::CONFLICT,
                "the new key already belongs to an account",
            )
            .location(state.acme.url(&format!("/acct/{holder}"))));
        }
        let actor = Actor::Acme {
            account: row.id.clone(),
            key: credmint_ledger::event::account_id(&row.jwk),
        };
        change(
            &state,
            actor,
            &row.id,
            AcmeAccountChange::KeyChanged {
                jwk: new_key.canonical.clone().into_bytes(),
            },
        )
        .await?;
        tracing::info!(account = %row.id, integration = %row.integration, "ACME account key changed");
        Ok(Reply::json(StatusCode::OK, &object(&state, &row)))
    }
    .await;
    answer(&state, result)
}
