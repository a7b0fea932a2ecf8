//! ACME request authentication (RFC 8555 §6.2): the flattened JWS JSON serialization,
//! its protected header, account keys as JWKs with their RFC 7638 thumbprints, and the
//! External Account Binding's inner HS256 JWS (§7.3.4).
//!
//! Parsing is ours (it is a few fields of JSON, and the rules are ACME's, not generic JOSE:
//! exactly one of `jwk`/`kid`, no unprotected header, a `url` and `nonce` in every
//! request); the signature arithmetic is jsonwebtoken's (aws-lc), the same library the
//! appliance's tokens are tested with. Nothing here trusts a byte before the signature
//! over it has been checked, except what is needed to find the key to check it with.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

/// Why a JWS was refused; every message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("request body is not a flattened JWS: {0}")]
    Malformed(String),
    #[error("unsupported JWS algorithm {0:?} (ES256, ES384, EdDSA, RS256 and PS256 are)")]
    BadAlgorithm(String),
    #[error("the JWS signature does not verify")]
    BadSignature,
    #[error("invalid account key: {0}")]
    BadKey(String),
}

type Result<T> = std::result::Result<T, JwsError>;

/// The account-key algorithms accepted (listed in badSignatureAlgorithm problems).
pub const ALGORITHMS: [&str; 5] = ["ES256", "ES384", "EdDSA", "RS256", "PS256"];

fn malformed(what: impl Into<String>) -> JwsError {
    JwsError::Malformed(what.into())
}

/// The flattened serialization. Unknown members are refused: an unprotected `header`
/// (forbidden by §6.2) would otherwise be silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

/// The protected header members ACME uses. Others are allowed (RFC 7515 permits them)
/// but `crit` is refused because no extension is understood.
#[derive(Debug, Clone, Deserialize)]
pub struct Protected {
    pub alg: String,
    #[serde(default)]
    pub nonce: Option<String>,
    pub url: String,
    #[serde(default)]
    pub jwk: Option<Value>,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// A parsed, not yet verified request.
#[derive(Debug, Clone)]
pub struct Jws {
    pub header: Protected,
    protected_b64: String,
    payload_b64: String,
    signature: Vec<u8>,
    /// The decoded payload; empty for POST-as-GET.
    pub payload: Vec<u8>,
}

impl Jws {
    /// Parses the request body (`application/jose+json`).
    pub fn parse(body: &[u8]) -> Result<Jws> {
        let f: Flattened = serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
        let header_bytes = b64(&f.protected, "protected")?;
        let header: Protected = serde_json::from_slice(&header_bytes)
            .map_err(|e| malformed(format!("protected header: {e}")))?;
        if header.crit.is_some() {
            return Err(malformed("no critical header extension is supported"));
        }
        if header.jwk.is_some() == header.kid.is_some() {
            return Err(malformed(
                "the protected header must carry exactly one of \"jwk\" and \"kid\"",
            ));
        }
        let payload = b64(&f.payload, "payload")?;
        let signature = b64(&f.signature, "signature")?;
        Ok(Jws {
            header,
            protected_b64: f.protected,
            payload_b64: f.payload,
            signature,
            payload,
        })
    }

    /// Checks the signature with `key`; the header's `alg` must be one the key allows.
    pub fn verify(&self, key: &AccountKey) -> Result<()> {
        let alg = key.algorithm(&self.header.alg)?;
        check(&self.signing_input(), &self.signature, &key.decoding, alg)
    }

    /// Whether this is a POST-as-GET (empty payload, RFC 8555 §6.3).
    pub fn is_post_as_get(&self) -> bool {
        self.payload_b64.is_empty()
    }

    /// The payload as JSON of type `T`.
    pub fn payload_json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.payload).map_err(|e| malformed(format!("payload: {e}")))
    }

    fn signing_input(&self) -> Vec<u8> {
        let mut input = Vec::with_capacity(self.protected_b64.len() + 1 + self.payload_b64.len());
        input.extend_from_slice(self.protected_b64.as_bytes());
        input.push(b'.');
        input.extend_from_slice(self.payload_b64.as_bytes());
        input
    }

    /// The External Account Binding inner JWS (§7.3.4): HS256 (or HS384/HS512) by the EAB
    /// key, over the account's JWK, naming `kid` and the same `url` as the outer request.
    /// Returns the EAB key id after checking the structure; the MAC is checked by
    /// [`Jws::verify_mac`] once the caller has derived the key for that id.
    pub fn eab_kid(&self, outer_url: &str) -> Result<String> {
        if self.header.nonce.is_some() {
            return Err(malformed("the EAB JWS must not carry a nonce"));
        }
        if self.header.url != outer_url {
            return Err(malformed("the EAB JWS url differs from the request's"));
        }
        self.header
            .kid
            .clone()
            .ok_or_else(|| malformed("the EAB JWS must name its key with \"kid\""))
    }

    /// Checks an HMAC JWS with the raw key `secret`.
    pub fn verify_mac(&self, secret: &[u8]) -> Result<()> {
        let alg = match self.header.alg.as_str() {
            "HS256" => Algorithm::HS256,
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            other => return Err(JwsError::BadAlgorithm(other.to_string())),
        };
        check(
            &self.signing_input(),
            &self.signature,
            &DecodingKey::from_secret(secret),
            alg,
        )
    }
}

fn check(input: &[u8], signature: &[u8], key: &DecodingKey, alg: Algorithm) -> Result<()> {
    let sig = URL_SAFE_NO_PAD.encode(signature);
    match jsonwebtoken::crypto::verify(&sig, input, key, alg) {
        Ok(true) => Ok(()),
        _ => Err(JwsError::BadSignature),
    }
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| malformed(format!("{what} is not base64url without padding")))
}

/// Which JWS algorithms a key family allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    P256,
    P384,
    Ed25519,
    Rsa,
}

/// Smallest RSA modulus accepted (CA/Browser Forum and every public ACME CA: 2048 bits).
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted (bounds verification cost).
const MAX_RSA_BITS: usize = 8192;

/// An account (or certificate) public key from a JWK.
#[derive(Clone)]
pub struct AccountKey {
    family: Family,
    decoding: DecodingKey,
    /// RFC 7638 canonical JSON: what the thumbprint hashes and the ledger records.
    pub canonical: String,
}

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl AccountKey {
    /// Reads a JWK (RFC 7517) with the members RFC 7638 requires; private members
    /// (`d`, `p`, ...) are refused, since a client that sends them has leaked its key.
    pub fn from_jwk(jwk: &Value) -> Result<AccountKey> {
        let obj = jwk
            .as_object()
            .ok_or_else(|| JwsError::BadKey("the JWK is not an object".into()))?;
        if ["d", "p", "q", "dp", "dq", "qi", "k"]
            .iter()
            .any(|m| obj.contains_key(*m))
        {
            return Err(JwsError::BadKey(
                "the JWK carries private key material".into(),
            ));
        }
        let member = |name: &str| -> Result<&str> {
            obj.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| JwsError::BadKey(format!("the JWK lacks {name:?}")))
        };
        let decoded_len = |name: &str| -> Result<usize> {
            Ok(b64(member(name)?, name)
                .map_err(|_| JwsError::BadKey(format!("{name:?} is not base64url")))?
                .len())
        };
        let bad = |e: jsonwebtoken::errors::Error| JwsError::BadKey(e.to_string());
        match member("kty")? {
            "EC" => {
                let (crv, x, y) = (member("crv")?, member("x")?, member("y")?);
                let (family, len) = match crv {
                    "P-256" => (Family::P256, 32),
                    "P-384" => (Family::P384, 48),
                    other => {
                        return Err(JwsError::BadKey(format!(
                            "curve {other:?} is not supported"
                        )))
                    }
                };
                if decoded_len("x")? != len || decoded_len("y")? != len {
                    return Err(JwsError::BadKey(format!(
                        "{crv} coordinates must be {len} bytes"
                    )));
                }
                Ok(AccountKey {
                    family,
                    decoding: DecodingKey::from_ec_components(x, y).map_err(bad)?,
                    canonical: format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#),
                })
            }
            "OKP" => {
                let (crv, x) = (member("crv")?, member("x")?);
                if crv != "Ed25519" {
                    return Err(JwsError::BadKey(format!("curve {crv:?} is not supported")));
                }
                if decoded_len("x")? != 32 {
                    return Err(JwsError::BadKey("an Ed25519 key is 32 bytes".into()));
                }
                Ok(AccountKey {
                    family: Family::Ed25519,
                    decoding: DecodingKey::from_ed_components(x).map_err(bad)?,
                    canonical: format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
                })
            }
            "RSA" => {
                let (n, e) = (member("n")?, member("e")?);
                let n_bytes = b64(n, "n")?;
                if n_bytes.first() == Some(&0) {
                    return Err(JwsError::BadKey("\"n\" has a leading zero byte".into()));
                }
                let bits = n_bytes.len() * 8;
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(JwsError::BadKey(format!(
                        "RSA modulus of {bits} bits (allowed: {MIN_RSA_BITS}-{MAX_RSA_BITS})"
                    )));
                }
                if decoded_len("e")? > 8 {
                    return Err(JwsError::BadKey("RSA exponent too long".into()));
                }
                Ok(AccountKey {
                    family: Family::Rsa,
                    decoding: DecodingKey::from_rsa_components(n, e).map_err(bad)?,
                    canonical: format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
                })
            }
            other => Err(JwsError::BadKey(format!(
                "key type {other:?} is not supported"
            ))),
        }
    }

    /// Reads a key back from its canonical form (as recorded in the ledger).
    pub fn from_canonical(bytes: &[u8]) -> Result<AccountKey> {
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| JwsError::BadKey(e.to_string()))?;
        Self::from_jwk(&v)
    }

    /// RFC 7638 thumbprint, base64url: the account id of an account created with this key.
    pub fn thumbprint(&self) -> String {
        credmint_ledger::event::account_id(self.canonical.as_bytes())
    }

    fn algorithm(&self, alg: &str) -> Result<Algorithm> {
        let allowed = match (self.family, alg) {
            (Family::P256, "ES256") => Algorithm::ES256,
            (Family::P384, "ES384") => Algorithm::ES384,
            (Family::Ed25519, "EdDSA" | "Ed25519") => Algorithm::EdDSA,
            (Family::Rsa, "RS256") => Algorithm::RS256,
            (Family::Rsa, "PS256") => Algorithm::PS256,
            _ => return Err(JwsError::BadAlgorithm(alg.to_string())),
        };
        Ok(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use proptest::prelude::*;

    fn p256_key() -> (p256::ecdsa::SigningKey, Value) {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        let sk = p256::ecdsa::SigningKey::from_slice(&seed).unwrap();
        let point = sk.verifying_key().to_sec1_point(false);
        let xy = &point.as_bytes()[1..];
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&xy[..32]),
            "y": URL_SAFE_NO_PAD.encode(&xy[32..]),
        });
        (sk, jwk)
    }

    fn sign(sk: &p256::ecdsa::SigningKey, header: &Value, payload: &[u8]) -> Vec<u8> {
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let sig: p256::ecdsa::Signature = sk.sign(format!("{protected}.{payload}").as_bytes());
        serde_json::json!({
            "protected": protected, "payload": payload,
            "signature": URL_SAFE_NO_PAD.encode(sig.to_bytes()),
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1's example key and thumbprint.
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"
        });
        let key = AccountKey::from_jwk(&jwk).unwrap();
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_signed_request_verifies_and_a_changed_one_does_not() {
        let (sk, jwk) = p256_key();
        let header = serde_json::json!({"alg": "ES256", "jwk": jwk, "nonce": "n", "url": "https://x/acme/new-account"});
        let body = sign(&sk, &header, br#"{"termsOfServiceAgreed":true}"#);
        let jws = Jws::parse(&body).unwrap();
        let key = AccountKey::from_jwk(jws.header.jwk.as_ref().unwrap()).unwrap();
        jws.verify(&key).unwrap();
        // Another key does not verify it.
        let (_, other) = p256_key();
        assert_eq!(
            jws.verify(&AccountKey::from_jwk(&other).unwrap()),
            Err(JwsError::BadSignature)
        );
        // An algorithm the key does not have is refused before any arithmetic.
        let mut rs = jws.clone();
        rs.header.alg = "RS256".into();
        assert!(matches!(rs.verify(&key), Err(JwsError::BadAlgorithm(_))));
        // The canonical form round-trips to the same thumbprint.
        let back = AccountKey::from_canonical(key.canonical.as_bytes()).unwrap();
        assert_eq!(back.thumbprint(), key.thumbprint());
    }

    #[test]
    fn eddsa_account_keys_verify() {
        use ed25519_dalek::Signer as _;
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes())});
        let header = serde_json::json!({"alg": "EdDSA", "jwk": jwk, "nonce": "n", "url": "u"});
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = URL_SAFE_NO_PAD.encode("{}");
        let sig = sk.sign(format!("{protected}.{payload}").as_bytes());
        let body = serde_json::json!({"protected": protected, "payload": payload, "signature": URL_SAFE_NO_PAD.encode(sig.to_bytes())});
        let jws = Jws::parse(body.to_string().as_bytes()).unwrap();
        let key = AccountKey::from_jwk(jws.header.jwk.as_ref().unwrap()).unwrap();
        assert!(key
            .canonical
            .starts_with(r#"{"crv":"Ed25519","kty":"OKP","x":"#));
        jws.verify(&key).unwrap();
        let mut bad = jws.clone();
        bad.signature[0] ^= 1;
        assert_eq!(bad.verify(&key), Err(JwsError::BadSignature));
    }

    #[test]
    fn structure_rules() {
        let (sk, jwk) = p256_key();
        let both =
            serde_json::json!({"alg": "ES256", "jwk": jwk, "kid": "k", "nonce": "n", "url": "u"});
        assert!(Jws::parse(&sign(&sk, &both, b"")).is_err());
        let neither = serde_json::json!({"alg": "ES256", "nonce": "n", "url": "u"});
        assert!(Jws::parse(&sign(&sk, &neither, b"")).is_err());
        let crit = serde_json::json!({"alg": "ES256", "kid": "k", "nonce": "n", "url": "u", "crit": ["b64"]});
        assert!(Jws::parse(&sign(&sk, &crit, b"")).is_err());
        let unprotected = br#"{"protected":"e30","payload":"","signature":"","header":{}}"#;
        assert!(Jws::parse(unprotected).is_err());
        let private =
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"});
        assert!(AccountKey::from_jwk(&private).is_err());
        let get = serde_json::json!({"alg": "ES256", "kid": "k", "nonce": "n", "url": "u"});
        assert!(Jws::parse(&sign(&sk, &get, b"")).unwrap().is_post_as_get());
    }

    proptest! {
        /// Arbitrary bytes never panic the parser, and a flipped signature byte never
        /// verifies.
        #[test]
        fn parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Jws::parse(&body);
        }

        #[test]
        fn flipped_signature_fails(flip in 0usize..64, bit in 0u8..8) {
            let (sk, jwk) = p256_key();
            let header = serde_json::json!({"alg": "ES256", "jwk": jwk, "nonce": "n", "url": "u"});
            let jws = Jws::parse(&sign(&sk, &header, b"{}")).unwrap();
            let key = AccountKey::from_jwk(jws.header.jwk.as_ref().unwrap()).unwrap();
            let mut bad = jws.clone();
            bad.signature[flip] ^= 1 << bit;
            prop_assert_eq!(bad.verify(&key), Err(JwsError::BadSignature));
        }
    }
}
