//! The client side of ACME requests, for `credmint bench acme` and the tests' protocol
//! client: an ES256 account key, flattened JWS with `jwk` or `kid`, and the External
//! Account Binding's inner HS256 JWS. Signing only; the server never uses this.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use serde_json::{json, Value};

/// An ES256 account key.
#[derive(Clone)]
pub struct AccountSigner {
    key: p256::ecdsa::SigningKey,
}

impl Default for AccountSigner {
    fn default() -> Self {
        Self::generate()
    }
}

impl AccountSigner {
    pub fn generate() -> AccountSigner {
        loop {
            let mut seed = [0u8; 32];
            rand::fill(&mut seed);
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&seed) {
                return AccountSigner { key };
            }
        }
    }

    /// The public key as a JWK (RFC 7518 §6.2, members in RFC 7638 order).
    pub fn jwk(&self) -> Value {
        let point = self.key.verifying_key().to_sec1_point(false);
        let xy = &point.as_bytes()[1..];
        json!({
            "crv": "P-256", "kty": "EC",
            "x": URL_SAFE_NO_PAD.encode(&xy[..32]), "y": URL_SAFE_NO_PAD.encode(&xy[32..]),
        })
    }

    /// A flattened JWS over `payload` (None: POST-as-GET, an empty payload) with the
    /// protected `header` as given.
    pub fn sign(&self, header: &Value, payload: Option<&Value>) -> Value {
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = payload
            .map(|p| URL_SAFE_NO_PAD.encode(p.to_string()))
            .unwrap_or_default();
        let sig: p256::ecdsa::Signature =
            self.key.sign(format!("{protected}.{payload}").as_bytes());
        json!({"protected": protected, "payload": payload, "signature": URL_SAFE_NO_PAD.encode(sig.to_bytes())})
    }

    /// A request to `url` with `nonce`, by `kid` (an account URL) or, without one, by
    /// this key's `jwk`.
    pub fn request(
        &self,
        url: &str,
        nonce: &str,
        kid: Option<&str>,
        payload: Option<&Value>,
    ) -> Value {
        let mut header = json!({"alg": "ES256", "nonce": nonce, "url": url});
        match kid {
            Some(kid) => header["kid"] = json!(kid),
            None => header["jwk"] = self.jwk(),
        }
        self.sign(&header, payload)
    }
}

/// The EAB inner JWS (RFC 8555 §7.3.4, HS256 by jsonwebtoken) binding `account_jwk` to
/// `kid` for the newAccount `url`. `hmac_b64` is the key as credmint prints it.
pub fn eab_binding(
    kid: &str,
    hmac_b64: &str,
    url: &str,
    account_jwk: &Value,
) -> Result<Value, String> {
    let header = json!({"alg": "HS256", "kid": kid, "url": url});
    let protected = URL_SAFE_NO_PAD.encode(header.to_string());
    let payload = URL_SAFE_NO_PAD.encode(account_jwk.to_string());
    let key = URL_SAFE_NO_PAD
        .decode(hmac_b64)
        .map_err(|_| "the EAB HMAC key is not base64url".to_string())?;
    let sig = jsonwebtoken::crypto::sign(
        format!("{protected}.{payload}").as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(&key),
        jsonwebtoken::Algorithm::HS256,
    )
    .map_err(|e| e.to_string())?;
    Ok(json!({"protected": protected, "payload": payload, "signature": sig}))
}
