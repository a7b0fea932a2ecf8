//! revokeCert (RFC 8555 §7.6): by the account (any account of the certificate's
//! integration) or by the certificate's own key. Either way it is the same sequencer
//! command as `POST /v1/revoke`, so the ledger, OCSP, CRL and status answers follow.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use super::jws::AccountKey;
use super::request::{account_of, by_key, envelope, Posted};
use super::{answer, Problem, Reply};
use crate::app::AppState;
use crate::registry::{CredentialKind, Registry};
use crate::sequencer::{Actor, Command, Op, Outcome, Target};

#[derive(Deserialize)]
struct RevokeCert {
    certificate: String,
    #[serde(default)]
    reason: Option<u32>,
}

/// §7.6. The reasons a subscriber may give (RFC 8555 leaves the set to the server) are
/// unspecified, keyCompromise, affiliationChanged, superseded and cessationOfOperation.
pub async fn revoke_cert(State(state): State<AppState>, p: Posted) -> Response {
    let result = async {
        let jws = envelope(&state, &p)?;
        // Who asks comes first: the signature is checked before the certificate is looked
        // at, so an unauthenticated caller learns nothing about which serials exist.
        enum Signer {
            Account(crate::registry::AcmeAccountRow),
            Key(AccountKey),
        }
        let signer = if jws.header.kid.is_some() {
            Signer::Account(account_of(&state, &jws)?)
        } else {
            Signer::Key(by_key(&jws)?)
        };
        let req: RevokeCert = jws.payload_json()?;
        let der = URL_SAFE_NO_PAD
            .decode(&req.certificate)
            .map_err(|_| Problem::malformed("certificate is not base64url DER"))?;
        let (rest, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|_| Problem::malformed("certificate is not a DER X.509 certificate"))?;
        if !rest.is_empty() {
            return Err(Problem::malformed("trailing bytes after the certificate"));
        }
        let serial = cert.tbs_certificate.raw_serial().to_vec();
        let reason = match req.reason.unwrap_or(0) {
            r @ (0 | 1 | 3 | 4 | 5) => r as u8,
            r => {
                return Err(Problem::new(
                    "badRevocationReason",
                    StatusCode::BAD_REQUEST,
                    format!("reason {r} is not one a subscriber may give (0, 1, 3, 4, 5)"),
                ))
            }
        };
        // A forged certificate with our serial and the requester's key must not revoke
        // ours: it must be exactly a certificate this CA signed.
        let row = Registry::open(&state.ledger)?
            .certificate(&serial)?
            .filter(|r| r.kind == CredentialKind::Workload && issued_by_us(&state, &cert))
            .ok_or_else(|| Problem::not_found("this CA issued no such certificate"))?;
        let actor = match signer {
            Signer::Account(account) => {
                if account.integration != row.owner {
                    return Err(Problem::unauthorized(
                        "the certificate belongs to another integration than this account's",
                    ));
                }
                let key = credmint_ledger::event::account_id(&account.jwk);
                Actor::Acme {
                    account: account.id,
                    key,
                }
            }
            Signer::Key(key) => {
                if !same_key(&key, cert.tbs_certificate.subject_pki.raw) {
                    return Err(Problem::unauthorized(
                        "the JWS key is not the certificate's key",
                    ));
                }
                Actor::AcmeKey {
                    serial: serial.clone(),
                }
            }
        };
        let receipt = state
            .sequencer
            .submit(Command::new(
                actor,
                Op::Revoke {
                    target: Target::Certificate(serial.clone()),
                    reason,
                },
            ))
            .await?;
        if let Outcome::AlreadyRevoked { .. } = receipt.outcome {
            return Err(Problem::new(
                "alreadyRevoked",
                StatusCode::BAD_REQUEST,
                "the certificate is already revoked",
            ));
        }
        tracing::info!(serial = %hex::encode(&serial), reason, "certificate revoked over ACME");
        Ok(Reply::empty(StatusCode::OK))
    }
    .await;
    answer(&state, result)
}

/// Whether the JWK is the certificate's public key: same canonical JWK as the SPKI's.
fn same_key(key: &AccountKey, spki_der: &[u8]) -> bool {
    super::renewal::spki_jwk(spki_der).is_some_and(|jwk| jwk == key.canonical)
}

/// Whether one of the CA generations still in use signed `cert`.
fn issued_by_us(state: &AppState, cert: &x509_parser::certificate::X509Certificate<'_>) -> bool {
    let active = state.keys.current();
    active.cas.iter().any(|g| {
        x509_parser::parse_x509_certificate(&g.root.der).is_ok_and(|(_, ca)| {
            cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok()
        })
    })
}
