//! Revocation: one certificate, one token, or every live credential of an integration.
//! Each revocation is a ledger event carrying the actor and RFC 5280 reason; revoking
//! again is idempotent (no second event); unknown identifiers are "not found".

use credmint_ledger::event::{Event, Revoked, TokenRevoked};
use credmint_ledger::Record;

use crate::api::ApiError;
use crate::app::AppState;
use crate::ledger_writer::{Precondition, Submission};
use crate::registry::Registry;

/// RFC 5280 CRLReason values credmint accepts (no certificateHold: revocation is final).
pub const REASONS: [(&str, u8); 6] = [
    ("unspecified", 0),
    ("keyCompromise", 1),
    ("affiliationChanged", 3),
    ("superseded", 4),
    ("cessationOfOperation", 5),
    ("privilegeWithdrawn", 9),
];

/// Parses a reason name (RFC 5280 spelling) or its numeric code.
pub fn parse_reason(s: &str) -> Result<u8, ApiError> {
    REASONS
        .iter()
        .find(|(name, code)| name.eq_ignore_ascii_case(s) || code.to_string() == s)
        .map(|(_, code)| *code)
        .ok_or_else(|| {
            let names: Vec<&str> = REASONS.iter().map(|(n, _)| *n).collect();
            ApiError::Field(crate::registry::FieldError {
                field: "reason",
                message: format!("must be one of {}", names.join(", ")),
            })
        })
}

pub fn reason_name(code: u8) -> &'static str {
    REASONS
        .iter()
        .find(|(_, c)| *c == code)
        .map(|(n, _)| *n)
        .unwrap_or("unspecified")
}

/// Parses a serial written in hex (optionally `0x`-prefixed or colon-separated).
pub fn parse_serial(s: &str) -> Result<Vec<u8>, ApiError> {
    let cleaned: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    let bad = || ApiError::BadRequest(format!("invalid serial {s:?}: expected 1-20 bytes of hex"));
    if cleaned.is_empty() || cleaned.len() > 40 {
        return Err(bad());
    }
    let padded = if cleaned.len() % 2 == 1 {
        format!("0{cleaned}")
    } else {
        cleaned
    };
    let mut bytes = hex::decode(padded).map_err(|_| bad())?;
    // DER INTEGER contents never carry redundant leading zero bytes.
    while bytes.len() > 1 && bytes[0] == 0 && bytes[1] & 0x80 == 0 {
        bytes.remove(0);
    }
    Ok(bytes)
}

/// Outcome of a revocation request.
#[derive(Debug, Clone)]
pub struct Revocation {
    /// Ledger index of the revocation event (the existing one when already revoked).
    pub ledger_index: u64,
    pub already_revoked: bool,
}

/// After a committed revocation: drop cached good answers and sign a checkpoint soon.
pub fn after_revocation(state: &AppState, serials: &[Vec<u8>]) {
    if !serials.is_empty() {
        state.status.invalidate(serials);
    }
    state.checkpoints.wake();
}

/// One credential to revoke.
pub enum Target<'a> {
    Certificate(&'a [u8]),
    Token(&'a str),
}

impl Target<'_> {
    fn describe(&self) -> String {
        match self {
            Target::Certificate(serial) => {
                format!("certificate with serial {}", hex::encode(serial))
            }
            Target::Token(jti) => format!("token with jti {jti:?}"),
        }
    }
}

/// Revokes one certificate or token, or reports the existing revocation.
pub async fn revoke_one(
    state: &AppState,
    target: Target<'_>,
    reason: u8,
    actor: String,
) -> Result<Revocation, ApiError> {
    let registry = Registry::open(state.ledger.database())?;
    let existing = match &target {
        Target::Certificate(serial) => registry.certificate(serial)?.map(|r| r.revoked_index),
        Target::Token(jti) => registry.token(jti)?.map(|r| r.revoked_index),
    };
    drop(registry);
    let already =
        existing.ok_or_else(|| ApiError::NotFound(format!("no {}", target.describe())))?;
    if let Some(index) = already {
        return Ok(Revocation {
            ledger_index: index,
            already_revoked: true,
        });
    }
    let (event, precondition) = match &target {
        Target::Certificate(serial) => (
            Event::Revoked(Revoked {
                serial: serial.to_vec(),
                reason,
            }),
            Precondition::CertificateNotRevoked(serial.to_vec()),
        ),
        Target::Token(jti) => (
            Event::TokenRevoked(TokenRevoked {
                jti: jti.to_string(),
                reason,
            }),
            Precondition::TokenNotRevoked(jti.to_string()),
        ),
    };
    let records = submit(state, actor, vec![event], vec![precondition]).await?;
    let serials: Vec<Vec<u8>> = match &target {
        Target::Certificate(serial) => vec![serial.to_vec()],
        Target::Token(_) => vec![],
    };
    after_revocation(state, &serials);
    tracing::info!(credential = %target.describe(), reason = reason_name(reason), "revoked");
    Ok(Revocation {
        ledger_index: records[0].index,
        already_revoked: false,
    })
}

/// What revoking every live credential of an integration did.
#[derive(Debug, Clone, Default)]
pub struct BulkRevocation {
    pub certificates: usize,
    pub tokens: usize,
}

/// Revocation events (with their preconditions) for every live credential of an
/// integration, for callers that append them together with other events.
#[derive(Debug, Clone, Default)]
pub struct LiveRevocations {
    pub events: Vec<Event>,
    pub preconditions: Vec<Precondition>,
    /// Serials of the certificates revoked, for the status caches.
    pub serials: Vec<Vec<u8>>,
    pub tokens: usize,
}

/// Collects revocations of every live (unexpired, unrevoked) certificate and token of
/// `integration` at `now`.
pub fn live_revocations(
    registry: &Registry,
    integration: &str,
    reason: u8,
    now: u64,
) -> Result<LiveRevocations, ApiError> {
    let mut events = Vec::new();
    let mut preconditions = Vec::new();
    let mut serials = Vec::new();
    for serial in registry.integration_serials(integration)? {
        if let Some(row) = registry.certificate(&serial)? {
            if row.revoked_index.is_none() && row.not_after >= now {
                events.push(Event::Revoked(Revoked {
                    serial: serial.clone(),
                    reason,
                }));
                preconditions.push(Precondition::CertificateNotRevoked(serial.clone()));
                serials.push(serial);
            }
        }
    }
    let mut tokens = 0;
    for jti in registry.integration_jtis(integration)? {
        if let Some(row) = registry.token(&jti)? {
            if row.revoked_index.is_none() && row.expires_at >= now {
                events.push(Event::TokenRevoked(TokenRevoked {
                    jti: jti.clone(),
                    reason,
                }));
                preconditions.push(Precondition::TokenNotRevoked(jti));
                tokens += 1;
            }
        }
    }
    Ok(LiveRevocations {
        events,
        preconditions,
        serials,
        tokens,
    })
}

/// Revokes every live (unexpired, unrevoked) certificate and token of `integration` in one
/// ledger batch: either all of them are revoked or none.
pub async fn revoke_integration(
    state: &AppState,
    integration: &str,
    reason: u8,
    actor: String,
) -> Result<BulkRevocation, ApiError> {
    let now = state.clock.unix();
    let registry = Registry::open(state.ledger.database())?;
    let LiveRevocations {
        events,
        preconditions,
        serials,
        tokens,
    } = live_revocations(&registry, integration, reason, now)?;
    drop(registry);
    if events.is_empty() {
        return Ok(BulkRevocation::default());
    }
    submit(state, actor, events, preconditions).await?;
    after_revocation(state, &serials);
    tracing::info!(%integration, certificates = serials.len(), tokens, "integration credentials revoked");
    Ok(BulkRevocation {
        certificates: serials.len(),
        tokens,
    })
}

async fn submit(
    state: &AppState,
    actor: String,
    events: Vec<Event>,
    preconditions: Vec<Precondition>,
) -> Result<Vec<Record>, ApiError> {
    Ok(state
        .writer
        .submit(Submission {
            actor,
            events,
            preconditions,
        })
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_parse_in_common_spellings() {
        assert_eq!(parse_serial("0x0A1b").unwrap(), vec![0x0a, 0x1b]);
        assert_eq!(parse_serial("0a:1b").unwrap(), vec![0x0a, 0x1b]);
        assert_eq!(parse_serial("00ff").unwrap(), vec![0x00, 0xff]);
        assert_eq!(parse_serial("000a").unwrap(), vec![0x0a]);
        assert!(parse_serial("zz").is_err());
        assert!(parse_serial("").is_err());
        assert!(parse_serial(&"a".repeat(41)).is_err());
    }

    #[test]
    fn reasons_parse_by_name_or_code() {
        assert_eq!(parse_reason("keyCompromise").unwrap(), 1);
        assert_eq!(parse_reason("9").unwrap(), 9);
        assert!(parse_reason("certificateHold").is_err());
    }
}
