//! JWT-SVID validation for the Workload API's ValidateJWTSVID (SPIFFE JWT-SVID §2-3):
//! compact JWS, ES256 only (credmint's token keys; JWT-SVID forbids EdDSA and HMAC), a
//! `kid` naming a key of the trust domain's JWKS, `typ` JWT or JOSE if present, `aud`
//! containing the audience asked for, `exp` not passed, `sub` a SPIFFE ID of the trust
//! domain. The revocation check is the caller's (it needs the appliance).

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Invalid {
    #[error("malformed JWT-SVID: {0}")]
    Malformed(String),
    /// The `kid` is not in the JWKS at hand (it may have rotated since: fetch again).
    #[error("JWT-SVID signed by an unknown key")]
    UnknownKey,
    #[error("JWT-SVID rejected: {0}")]
    Rejected(String),
}

pub fn validate(
    token: &str,
    audience: &str,
    jwks: &[u8],
    trust_domain: &str,
) -> Result<Map<String, Value>, Invalid> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| Invalid::Malformed(e.to_string()))?;
    if header.alg != Algorithm::ES256 {
        return Err(Invalid::Rejected(format!(
            "algorithm {:?} is not accepted (ES256 only)",
            header.alg
        )));
    }
    if let Some(typ) = header
        .typ
        .as_deref()
        .filter(|t| !matches!(*t, "JWT" | "JOSE"))
    {
        return Err(Invalid::Rejected(format!("typ {typ:?} is not JWT or JOSE")));
    }
    let kid = header
        .kid
        .ok_or_else(|| Invalid::Malformed("no kid in the header".into()))?;
    let set: JwkSet =
        serde_json::from_slice(jwks).map_err(|e| Invalid::Malformed(format!("JWKS: {e}")))?;
    let jwk = set.find(&kid).ok_or(Invalid::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| Invalid::Malformed(format!("JWK: {e}")))?;
    let mut rules = Validation::new(Algorithm::ES256);
    rules.set_audience(&[audience]);
    rules.set_required_spec_claims(&["exp", "sub", "aud"]);
    rules.leeway = 0;
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &rules)
        .map_err(|e| Invalid::Rejected(e.to_string()))?;
    let claims = data.claims;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !sub.starts_with(&format!("{trust_domain}/")) {
        return Err(Invalid::Rejected(format!(
            "sub {sub:?} is not a SPIFFE ID of {trust_domain}"
        )));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    const TD: &str = "spiffe://test.example";

    /// A P-256 key, its JWKS (kid "k1") and a signer of claims.
    fn fixture() -> (EncodingKey, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let enc = EncodingKey::from_ec_der(&key.serialize_der());
        let raw = key.public_key_raw();
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
            "use": "sig", "alg": "ES256", "kid": "k1"
        }]});
        (enc, serde_json::to_vec(&jwks).unwrap())
    }

    fn token(key: &EncodingKey, kid: Option<&str>, claims: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_string);
        encode(&header, &claims, key).unwrap()
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn accepts_a_good_svid_and_refuses_each_broken_rule() {
        let (key, jwks) = fixture();
        let good = serde_json::json!({"sub": format!("{TD}/prod/ci"), "aud": ["a"], "exp": now() + 60, "jti": "j"});
        let claims = validate(&token(&key, Some("k1"), good.clone()), "a", &jwks, TD).unwrap();
        assert_eq!(claims["jti"], "j");

        let t = token(&key, Some("k1"), good.clone());
        assert!(
            matches!(validate(&t, "b", &jwks, TD), Err(Invalid::Rejected(_))),
            "audience"
        );
        let t = token(&key, Some("k2"), good.clone());
        assert_eq!(validate(&t, "a", &jwks, TD), Err(Invalid::UnknownKey));
        let t = token(&key, None, good.clone());
        assert!(
            matches!(validate(&t, "a", &jwks, TD), Err(Invalid::Malformed(_))),
            "kid"
        );
        let mut expired = good.clone();
        expired["exp"] = (now() - 1).into();
        let t = token(&key, Some("k1"), expired);
        assert!(
            matches!(validate(&t, "a", &jwks, TD), Err(Invalid::Rejected(_))),
            "exp"
        );
        let mut foreign = good.clone();
        foreign["sub"] = "spiffe://other.example/x".into();
        let t = token(&key, Some("k1"), foreign);
        assert!(
            matches!(validate(&t, "a", &jwks, TD), Err(Invalid::Rejected(_))),
            "sub"
        );
        let (other, _) = fixture();
        let t = token(&other, Some("k1"), good);
        assert!(
            matches!(validate(&t, "a", &jwks, TD), Err(Invalid::Rejected(_))),
            "signature"
        );
        assert!(matches!(
            validate("not.a.jwt", "a", &jwks, TD),
            Err(Invalid::Malformed(_))
        ));
    }
}
