//! Compact JWS (RFC 7515) with a raw signature from the caller.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// JWS algorithms credmint signs with; both have 64-byte raw signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlg {
    /// ECDSA P-256 SHA-256; the signature is r||s, 32 bytes each (RFC 7518 3.4), not DER.
    Es256,
    /// Ed25519 (RFC 8037).
    EdDsa,
}

impl JwsAlg {
    /// The JOSE `alg` value.
    pub fn name(self) -> &'static str {
        match self {
            JwsAlg::Es256 => "ES256",
            JwsAlg::EdDsa => "EdDSA",
        }
    }
}

/// Signs `claims` as a compact JWT with header `{"alg","kid","typ":"JWT"}`.
///
/// `sign` receives the JWS signing input (`b64url(header) "." b64url(payload)`) and must
/// return the raw 64-byte signature: r||s over SHA-256 of the input for ES256 (what
/// `HsmKey::sign_raw` returns), or the Ed25519 signature of the input for EdDSA.
pub fn sign_jwt<E>(
    alg: JwsAlg,
    kid: &str,
    claims: &serde_json::Value,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<String, E> {
    let header = serde_json::json!({ "alg": alg.name(), "typ": "JWT", "kid": kid });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = sign(signing_input.as_bytes())?;
    debug_assert_eq!(signature.len(), 64, "JWS signatures are raw 64 bytes");
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// Claims of a credmint workload token (a JWT-SVID when `sub` is a SPIFFE ID).
/// Times are NumericDate: integer seconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    pub iss: String,
    /// The workload identity (SPIFFE ID).
    pub sub: String,
    /// Required by JWT-SVID; always serialized as an array.
    pub aud: Vec<String>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// Granted scopes, space-separated (RFC 8693 4.2).
    pub scope: String,
    /// Deployment environment the grant is valid in (e.g. `prod`).
    pub env: String,
    /// The approval (ledger event) the grant was issued under.
    pub approval_ref: String,
}

impl TokenClaims {
    /// Claims valid from `issued_at` for `ttl`; scope, env and approval_ref start empty.
    pub fn new(
        iss: impl Into<String>,
        sub: impl Into<String>,
        aud: Vec<String>,
        issued_at: OffsetDateTime,
        ttl: Duration,
        jti: impl Into<String>,
    ) -> TokenClaims {
        let iat = issued_at.unix_timestamp();
        TokenClaims {
            iss: iss.into(),
            sub: sub.into(),
            aud,
            iat,
            nbf: iat,
            exp: (issued_at + ttl).unix_timestamp(),
            jti: jti.into(),
            scope: String::new(),
            env: String::new(),
            approval_ref: String::new(),
        }
    }

    pub fn with_scopes<S: AsRef<str>>(mut self, scopes: &[S]) -> TokenClaims {
        self.scope = scopes
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(" ");
        self
    }

    pub fn with_env(mut self, env: impl Into<String>) -> TokenClaims {
        self.env = env.into();
        self
    }

    pub fn with_approval_ref(mut self, approval_ref: impl Into<String>) -> TokenClaims {
        self.approval_ref = approval_ref.into();
        self
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("plain struct of strings and integers")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::{Signer, Verifier};

    fn b64d(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    fn claims() -> TokenClaims {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        TokenClaims::new(
            "https://credmint.example",
            "spiffe://td.example/ns/a",
            vec!["billing".into()],
            t,
            Duration::minutes(5),
            "jti-1",
        )
        .with_scopes(&["read", "write"])
        .with_env("prod")
        .with_approval_ref("ap-7")
    }

    #[test]
    fn claims_serialize_numeric_dates_as_integers() {
        let v = claims().to_value();
        assert_eq!(v["iat"], 1_700_000_000);
        assert_eq!(v["nbf"], 1_700_000_000);
        assert_eq!(v["exp"], 1_700_000_300);
        assert_eq!(v["scope"], "read write");
        assert_eq!(v["aud"], serde_json::json!(["billing"]));
        assert!(v["exp"].is_i64());
    }

    #[test]
    fn es256_token_has_raw_signature_over_the_signing_input() {
        let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let mut seen = Vec::new();
        let token = sign_jwt(JwsAlg::Es256, "kid-1", &claims().to_value(), |input| {
            seen = input.to_vec();
            let sig: p256::ecdsa::Signature = key.sign(input);
            Ok::<_, std::convert::Infallible>(sig.to_bytes().to_vec())
        })
        .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert!(!token.contains('='));
        assert_eq!(seen, format!("{}.{}", parts[0], parts[1]).as_bytes());
        let header: serde_json::Value = serde_json::from_slice(&b64d(parts[0])).unwrap();
        assert_eq!(
            header,
            serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": "kid-1"})
        );
        let payload: TokenClaims = serde_json::from_slice(&b64d(parts[1])).unwrap();
        assert_eq!(payload, claims());
        let sig = b64d(parts[2]);
        assert_eq!(sig.len(), 64);
        let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        key.verifying_key().verify(&seen, &sig).unwrap();
    }

    #[test]
    fn signer_errors_propagate() {
        let r = sign_jwt(JwsAlg::EdDsa, "k", &serde_json::json!({}), |_| {
            Err("hsm down")
        });
        assert_eq!(r, Err("hsm down"));
    }
}
