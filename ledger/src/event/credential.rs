//! Credential events beyond certificates: tokens, token revocation and reuse signals.

use super::governance::{MAX_LIST, MAX_TEXT};
use super::{EventBody, MAX_NAME, MAX_SUBJECT};
use crate::codec::{Reader, Writer};
use crate::error::DecodeError;

/// A signed token (JWT) was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIssued {
    pub jti: String,
    pub integration: String,
    /// The `sub` claim (SPIFFE ID).
    pub subject: String,
    pub audience: String,
    pub scopes: Vec<String>,
    /// `iat`, Unix seconds.
    pub issued_at: u64,
    /// `exp`, Unix seconds.
    pub expires_at: u64,
    /// SHA-256 of the SPKI of the token signing key.
    pub key_fingerprint: [u8; 32],
}

impl EventBody for TokenIssued {
    const TAG: u16 = 9;
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.jti);
        w.str(&self.integration);
        w.str(&self.subject);
        w.str(&self.audience);
        w.str_list(&self.scopes);
        w.u64(self.issued_at);
        w.u64(self.expires_at);
        w.fixed(&self.key_fingerprint);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TokenIssued {
            jti: r.non_empty_str("token.jti", MAX_NAME)?.to_owned(),
            integration: r.non_empty_str("token.integration", MAX_NAME)?.to_owned(),
            subject: r.str("token.subject", MAX_SUBJECT)?.to_owned(),
            audience: r.str("token.audience", MAX_NAME)?.to_owned(),
            scopes: r.str_list("token.scopes", MAX_LIST, MAX_NAME)?,
            issued_at: r.u64("token.issued_at")?,
            expires_at: r.u64("token.expires_at")?,
            key_fingerprint: r.hash("token.key_fingerprint")?,
        })
    }
}

/// A token was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRevoked {
    pub jti: String,
    /// RFC 5280 CRLReason code, reused for tokens.
    pub reason: u8,
}

impl EventBody for TokenRevoked {
    const TAG: u16 = 10;
    fn encode_body(&self, w: &mut Writer) {
        w.str(&self.jti);
        w.u8(self.reason);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TokenRevoked {
            jti: r.non_empty_str("token_revoked.jti", MAX_NAME)?.to_owned(),
            reason: super::crl_reason(r, "token_revoked.reason")?,
        })
    }
}

/// What was presented again after it should have stopped working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReuseKind {
    /// A spent (or expired) enrollment token.
    EnrollmentToken,
    /// A revoked certificate (renewal or token request).
    RevokedCertificate,
    /// An expired certificate used to attempt renewal.
    ExpiredCertificate,
}

impl ReuseKind {
    pub fn to_u8(self) -> u8 {
        match self {
            ReuseKind::EnrollmentToken => 1,
            ReuseKind::RevokedCertificate => 2,
            ReuseKind::ExpiredCertificate => 3,
        }
    }
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        match v {
            1 => Ok(ReuseKind::EnrollmentToken),
            2 => Ok(ReuseKind::RevokedCertificate),
            3 => Ok(ReuseKind::ExpiredCertificate),
            _ => Err(DecodeError::Invalid {
                field: "reuse.kind",
                reason: "unknown reuse kind",
            }),
        }
    }
}

/// A credential that should no longer work was presented again (a signal, rate-limited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReuseDetected {
    pub kind: ReuseKind,
    /// Integration the credential belonged to ("" if unknown).
    pub integration: String,
    /// Serial (hex), jti, or enrollment token hash (hex): never the secret itself.
    pub credential: String,
    /// How many presentations this event stands for (rate limiting folds repeats).
    pub count: u64,
    pub detail: String,
}

impl EventBody for ReuseDetected {
    const TAG: u16 = 11;
    fn encode_body(&self, w: &mut Writer) {
        w.u8(self.kind.to_u8());
        w.str(&self.integration);
        w.str(&self.credential);
        w.u64(self.count);
        w.str(&self.detail);
    }
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ReuseDetected {
            kind: ReuseKind::from_u8(r.u8("reuse.kind")?)?,
            integration: r.str("reuse.integration", MAX_NAME)?.to_owned(),
            credential: r.non_empty_str("reuse.credential", MAX_NAME)?.to_owned(),
            count: r.u64("reuse.count")?,
            detail: r.str("reuse.detail", MAX_TEXT)?.to_owned(),
        })
    }
}
