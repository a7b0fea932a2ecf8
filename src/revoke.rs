//! Revocation: one certificate, one token, or every live credential of an integration.
//! Each revocation is a ledger event carrying the actor and RFC 5280 reason; revoking
//! again is idempotent (no second event); unknown identifiers are "not found".

use crate::registry::FieldError;
use crate::sequencer::{Actor, Command, Op, Outcome, SequenceError, Sequencer};

pub use crate::sequencer::Target;

/// RFC 5280 CRLReason values credmint accepts (no certificateHold: revocation is final).
pub const REASONS: [(&str, u8); 6] = [
    ("unspecified", 0),
    ("keyCompromise", 1),
    ("affiliationChanged", 3),
    ("superseded", 4),
    ("cessationOfOperation", 5),
    ("privilegeWithdrawn", 9),
];

/// RFC 5280 `superseded`: the only revocation a renewal may get past (`sequencer::Slack`).
pub const SUPERSEDED: u8 = 4;

/// Parses a reason name (RFC 5280 spelling) or its numeric code.
pub fn parse_reason(s: &str) -> Result<u8, FieldError> {
    REASONS
        .iter()
        .find(|(name, code)| name.eq_ignore_ascii_case(s) || code.to_string() == s)
        .map(|(_, code)| *code)
        .ok_or_else(|| {
            let names: Vec<&str> = REASONS.iter().map(|(n, _)| *n).collect();
            FieldError {
                field: "reason",
                message: format!("must be one of {}", names.join(", ")),
            }
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
pub fn parse_serial(s: &str) -> Result<Vec<u8>, FieldError> {
    let cleaned: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    let bad = || FieldError {
        field: "serial",
        message: format!("invalid serial {s:?}: expected 1-20 bytes of hex"),
    };
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

/// What revoking every live credential of an integration did.
#[derive(Debug, Clone, Default)]
pub struct BulkRevocation {
    pub certificates: usize,
    pub tokens: usize,
}

/// Revokes one certificate or token, or reports the existing revocation. The sequencer
/// decides against the committed state and drops cached status answers before this
/// returns (or even if the caller has gone away).
pub async fn revoke_one(
    sequencer: &Sequencer,
    target: Target,
    reason: u8,
    actor: Actor,
) -> Result<Revocation, SequenceError> {
    let described = target.to_string();
    let receipt = sequencer
        .submit(Command::new(actor, Op::Revoke { target, reason }))
        .await?;
    let already_revoked = matches!(receipt.outcome, Outcome::AlreadyRevoked { .. });
    if !already_revoked {
        tracing::info!(credential = %described, reason = reason_name(reason), "revoked");
    }
    Ok(Revocation {
        ledger_index: receipt.first_index().unwrap_or_default(),
        already_revoked,
    })
}

/// Revokes every live (unexpired, unrevoked) certificate and token of `integration`:
/// the sequencer revokes in bounded chunks, back to back, before any other command.
pub async fn revoke_integration(
    sequencer: &Sequencer,
    integration: &str,
    reason: u8,
    actor: Actor,
) -> Result<BulkRevocation, SequenceError> {
    let op = Op::RevokeIntegration {
        integration: integration.to_string(),
        reason,
    };
    let receipt = sequencer.submit(Command::new(actor, op)).await?;
    let (certificates, tokens) = receipt.outcome.revoked_counts();
    tracing::info!(%integration, certificates, tokens, "integration credentials revoked");
    Ok(BulkRevocation {
        certificates,
        tokens,
    })
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
