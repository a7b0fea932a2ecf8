//! The client side of ACME requests, for `credmint bench acme` and the tests' protocol
//! client: an ES256 account key, flattened JWS with `jwk` or `kid`, and the External
//! Account Binding's inner HS256 JWS. Signing only; the server never uses this.
//!
//! The arithmetic is aws-lc's, not RustCrypto's p256: the load generator shares two cores
//! with the appliance it measures, and p256's constant-time signing cost it about 0.4 of
//! a core at 900 certificates/s (three signatures each), time taken from the server.

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

/// An ES256 account key.
#[derive(Clone)]
pub struct AccountSigner {
    key: Arc<EcdsaKeyPair>,
}

impl Default for AccountSigner {
    fn default() -> Self {
        Self::generate()
    }
}

impl AccountSigner {
    pub fn generate() -> AccountSigner {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .expect("aws-lc generates a P-256 key");
        AccountSigner { key: Arc::new(key) }
    }

    /// The public key as a JWK (RFC 7518 §6.2, members in RFC 7638 order).
    pub fn jwk(&self) -> Value {
        // The uncompressed SEC1 point: 0x04 || x || y.
        let xy = &self.key.public_key().as_ref()[1..];
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
        let sig = self
            .key
            .sign(
                &SystemRandom::new(),
                format!("{protected}.{payload}").as_bytes(),
            )
            .expect("aws-lc signs with a P-256 key");
        json!({"protected": protected, "payload": payload, "signature": URL_SAFE_NO_PAD.encode(sig.as_ref())})
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
