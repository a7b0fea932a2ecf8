//! Public JWKs (RFC 7517/7518/8037) and RFC 7638 thumbprints for the token signing keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::jwt::JwsAlg;

/// Members that carry private or symmetric key material; a JWKS never publishes them.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A public key of the wrong shape for its algorithm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    #[error("{alg} public key must be {expected}, got {len} bytes")]
    BadPublicKey {
        alg: &'static str,
        expected: &'static str,
        len: usize,
    },
}

/// The required members, base64url-encoded: `(crv, kty, x, y)`.
fn members(public_raw: &[u8], alg: JwsAlg) -> Result<[Option<String>; 4], JwkError> {
    let b64 = |b: &[u8]| Some(URL_SAFE_NO_PAD.encode(b));
    match alg {
        JwsAlg::Es256 => {
            let valid = public_raw.len() == 65
                && public_raw[0] == 0x04
                && p256::PublicKey::from_sec1_bytes(public_raw).is_ok();
            if !valid {
                return Err(JwkError::BadPublicKey {
                    alg: "ES256",
                    expected: "a 65-byte uncompressed P-256 point",
                    len: public_raw.len(),
                });
            }
            // Fixed 32-byte coordinates, leading zeros kept (RFC 7518 6.2.1.2).
            Ok([
                Some("P-256".into()),
                Some("EC".into()),
                b64(&public_raw[1..33]),
                b64(&public_raw[33..65]),
            ])
        }
        JwsAlg::EdDsa => {
            if public_raw.len() != 32 {
                return Err(JwkError::BadPublicKey {
                    alg: "EdDSA",
                    expected: "a 32-byte Ed25519 key",
                    len: public_raw.len(),
                });
            }
            Ok([
                Some("Ed25519".into()),
                Some("OKP".into()),
                b64(public_raw),
                None,
            ])
        }
    }
}

/// Public JWK with `use: sig`, `alg` and `kid`. Never contains `d`.
/// `public_raw`: 65-byte uncompressed point (ES256) or 32-byte key (EdDSA).
pub fn jwk(public_raw: &[u8], alg: JwsAlg, kid: &str) -> Result<serde_json::Value, JwkError> {
    let [crv, kty, x, y] = members(public_raw, alg)?;
    let mut v = serde_json::json!({
        "kty": kty, "crv": crv, "x": x, "use": "sig", "alg": alg.name(), "kid": kid,
    });
    if let Some(y) = y {
        v["y"] = y.into();
    }
    Ok(v)
}

/// `{"keys": [...]}`. Private members are stripped from every key as a last line of
/// defence, so a caller's mistake cannot publish key material.
pub fn jwks(keys: &[serde_json::Value]) -> serde_json::Value {
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .cloned()
        .map(|mut k| {
            if let Some(obj) = k.as_object_mut() {
                for m in PRIVATE_MEMBERS {
                    obj.remove(m);
                }
            }
            k
        })
        .collect();
    serde_json::json!({ "keys": keys })
}

/// RFC 7638 thumbprint: base64url(SHA-256(required members in lexicographic order, no
/// whitespace)). Used as the `kid`, so a key's id follows from the key alone.
pub fn thumbprint_kid(public_raw: &[u8], alg: JwsAlg) -> Result<String, JwkError> {
    let [crv, kty, x, y] = members(public_raw, alg)?;
    let [crv, kty, x] = [crv, kty, x].map(Option::unwrap_or_default);
    // Values are fixed names or base64url, none needs JSON escaping.
    let canonical = match y {
        Some(y) => format!(r#"{{"crv":"{crv}","kty":"{kty}","x":"{x}","y":"{y}"}}"#),
        None => format!(r#"{{"crv":"{crv}","kty":"{kty}","x":"{x}"}}"#),
    };
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The P-256 base point G (the public key for private scalar 1).
    const P256_G: &str = concat!(
        "04",
        "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
        "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
    );

    #[test]
    fn rfc8037_a3_ed25519_thumbprint() {
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        assert_eq!(
            thumbprint_kid(&x, JwsAlg::EdDsa).unwrap(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn ec_thumbprint_uses_canonical_member_order() {
        // Expected value from Python: json.dumps(sort_keys=True, separators=(',', ':')).
        let g = hex::decode(P256_G).unwrap();
        assert_eq!(
            thumbprint_kid(&g, JwsAlg::Es256).unwrap(),
            "xx0BcA-wMohw8atYDJOe6peGModklG2wRHBlXHMvl0M"
        );
    }

    #[test]
    fn ec_jwk_has_fixed_width_coordinates_and_no_private_part() {
        let g = hex::decode(P256_G).unwrap();
        let v = jwk(&g, JwsAlg::Es256, "k1").unwrap();
        assert_eq!(v["kty"], "EC");
        assert_eq!(v["crv"], "P-256");
        assert_eq!(v["x"], "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY");
        assert_eq!(v["y"], "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU");
        assert_eq!(
            (v["use"].as_str(), v["alg"].as_str()),
            (Some("sig"), Some("ES256"))
        );
        assert!(v.get("d").is_none());
        // Find a key whose x starts with a zero byte: the coordinate must stay 32 bytes.
        let point = (1u8..=255)
            .flat_map(|a| (0u8..=255).map(move |b| [a, b]))
            .find_map(|[a, b]| {
                let mut scalar = [0u8; 32];
                scalar[30] = a;
                scalar[31] = b;
                let key = p256::ecdsa::SigningKey::from_slice(&scalar).ok()?;
                let point = key.verifying_key().to_sec1_point(false);
                (point.as_bytes()[1] == 0).then(|| point.as_bytes().to_vec())
            })
            .unwrap();
        let v = jwk(&point, JwsAlg::Es256, "k").unwrap();
        let x = URL_SAFE_NO_PAD.decode(v["x"].as_str().unwrap()).unwrap();
        assert_eq!((x.len(), x[0]), (32, 0));
    }

    #[test]
    fn okp_jwk_and_bad_shapes() {
        let v = jwk(&[9u8; 32], JwsAlg::EdDsa, "k2").unwrap();
        assert_eq!(
            (v["kty"].as_str(), v["crv"].as_str()),
            (Some("OKP"), Some("Ed25519"))
        );
        assert!(v.get("y").is_none() && v.get("d").is_none());
        assert!(jwk(&[9u8; 31], JwsAlg::EdDsa, "k").is_err());
        let g = hex::decode(P256_G).unwrap();
        assert!(jwk(&g[..33], JwsAlg::Es256, "k").is_err());
        let mut off_curve = g.clone();
        off_curve[64] ^= 1;
        assert!(jwk(&off_curve, JwsAlg::Es256, "k").is_err());
    }

    #[test]
    fn jwks_wraps_keys_and_strips_private_members() {
        let mut leaky = jwk(&[9u8; 32], JwsAlg::EdDsa, "k").unwrap();
        leaky["d"] = "secret".into();
        let set = jwks(&[leaky]);
        assert_eq!(set["keys"].as_array().unwrap().len(), 1);
        assert!(set["keys"][0].get("d").is_none());
        assert_eq!(set["keys"][0]["kid"], "k");
    }
}
