//! HTTP behaviour of the public status routes: OCSP caching headers (RFC 5019), oversized
//! bodies (413 before the body is read), and JSON bodies for unknown routes and methods.

use credmint::status::ocsp::{HashAlg, OcspIssuer};
use rustls::pki_types::{pem::PemObject, CertificateDer};
use serde_json::Value;

use crate::common::{assert_oversized_bodies_get_413, Served, TestAppliance};
use crate::support::registered_workload;

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 128 {
        out.push(n as u8);
    } else if n < 256 {
        out.extend([0x81, n as u8]);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(body);
    out
}

/// A minimal OCSPRequest for one CertID, optionally with a nonce extension.
fn ocsp_request(cert_id_der: &[u8], nonce: Option<&[u8]>) -> Vec<u8> {
    let mut tbs = tlv(0x30, &tlv(0x30, cert_id_der));
    if let Some(n) = nonce {
        let oid = [
            0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02,
        ];
        let ext = tlv(0x30, &[&oid[..], &tlv(0x04, &tlv(0x04, n))].concat());
        tbs.extend(tlv(0xa2, &tlv(0x30, &ext)));
    }
    tlv(0x30, &tlv(0x30, &tbs))
}

fn issuer(s: &Served) -> OcspIssuer {
    let der = CertificateDer::from_pem_slice(&s.ca_pem).unwrap();
    OcspIssuer::from_ca_der(der.as_ref()).unwrap()
}

fn leaf_serial(chain_pem: &str) -> Vec<u8> {
    let der = CertificateDer::from_pem_slice(chain_pem.as_bytes()).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    cert.tbs_certificate.raw_serial().to_vec()
}

fn b64url(der: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE.encode(der)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_caching_headers_only_on_successful_answers_and_only_until_next_update() {
    let s = TestAppliance::new("ocsp-cache").serve().await;
    let wl = registered_workload(&s, "cache-web").await;
    let issuer = issuer(&s);
    let serial = leaf_serial(&wl.chain_pem);
    let id = issuer.cert_id(HashAlg::Sha1, &serial).unwrap();
    let http = s.anonymous();

    // Successful, nonce-less: cacheable until nextUpdate, with validators.
    let url = s.url(&format!("/ocsp/{}", b64url(&ocsp_request(id.der(), None))));
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    let body = resp.bytes().await.unwrap();
    use der::Decode;
    let parsed = x509_ocsp::OcspResponse::from_der(&body).unwrap();
    assert_eq!(
        parsed.response_status,
        x509_ocsp::OcspResponseStatus::Successful
    );
    let cc = h["cache-control"].to_str().unwrap();
    let max_age: u64 = cc
        .split(',')
        .find_map(|p| p.trim().strip_prefix("max-age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (3500..=3600).contains(&max_age),
        "max-age = nextUpdate - now: {cc}"
    );
    assert!(
        cc.contains("public") && cc.contains("must-revalidate"),
        "{cc}"
    );
    for name in ["etag", "expires", "last-modified"] {
        assert!(h.contains_key(name), "{name} missing: {h:?}");
    }
    let expires = h["expires"].to_str().unwrap();
    assert!(
        expires.ends_with(" GMT") && expires.len() == 29,
        "{expires}"
    );
    // The same answer again (from the cache): max-age shrinks toward nextUpdate, never
    // beyond it; a matching If-None-Match is 304.
    let resp = http
        .get(&url)
        .header("if-none-match", h["etag"].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 304);

    // Non-successful answers are never cacheable.
    let no_store = |resp: &reqwest::Response, what: &str| {
        assert_eq!(
            resp.headers()["cache-control"],
            "no-store",
            "{what}: {:?}",
            resp.headers()
        );
        assert!(!resp.headers().contains_key("expires"), "{what}");
    };
    // malformedRequest (GET with bad base64, POST with bad DER).
    let resp = http.get(s.url("/ocsp/not*base64!")).send().await.unwrap();
    no_store(&resp, "malformed GET");
    assert_eq!(
        &resp.bytes().await.unwrap()[..],
        [0x30, 0x03, 0x0a, 0x01, 1]
    );
    let resp = http
        .post(s.url("/ocsp"))
        .header("content-type", "application/ocsp-request")
        .body(vec![0x30, 0x03, 0x02, 0x01])
        .send()
        .await
        .unwrap();
    no_store(&resp, "malformed POST");
    assert_eq!(
        &resp.bytes().await.unwrap()[..],
        [0x30, 0x03, 0x0a, 0x01, 1]
    );
    // unauthorized: a CertID of another issuer.
    let other_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other = OcspIssuer::from_ca_der(params.self_signed(&other_key).unwrap().der()).unwrap();
    let foreign = other.cert_id(HashAlg::Sha1, &serial).unwrap();
    let resp = http
        .post(s.url("/ocsp"))
        .header("content-type", "application/ocsp-request")
        .body(ocsp_request(foreign.der(), None))
        .send()
        .await
        .unwrap();
    no_store(&resp, "unauthorized");
    assert_eq!(
        &resp.bytes().await.unwrap()[..],
        [0x30, 0x03, 0x0a, 0x01, 6]
    );
    // A nonce answer is successful but unique to its request: not cacheable either.
    let resp = http
        .post(s.url("/ocsp"))
        .header("content-type", "application/ocsp-request")
        .body(ocsp_request(id.der(), Some(&[0x42; 16])))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    no_store(&resp, "nonce");
    // tryLater: never-issued serials share a budget of 200 fresh signatures/s.
    let mut try_later = None;
    for round in 0..20u32 {
        let mut tasks = Vec::new();
        for i in 0..64u32 {
            let http = http.clone();
            let url = s.url("/ocsp");
            let mut unknown = vec![0x7e; 16];
            unknown[..4].copy_from_slice(&round.to_be_bytes());
            unknown[4..8].copy_from_slice(&i.to_be_bytes());
            let body = ocsp_request(issuer.cert_id(HashAlg::Sha1, &unknown).unwrap().der(), None);
            tasks.push(tokio::spawn(async move {
                http.post(url)
                    .header("content-type", "application/ocsp-request")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            let resp = t.await.unwrap();
            let cc = resp.headers()["cache-control"]
                .to_str()
                .unwrap()
                .to_string();
            let body = resp.bytes().await.unwrap();
            if body[..] == [0x30, 0x03, 0x0a, 0x01, 3] {
                try_later = Some(cc);
            }
        }
        if try_later.is_some() {
            break;
        }
    }
    assert_eq!(
        try_later.as_deref(),
        Some("no-store"),
        "tryLater seen, not cacheable"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_unknown_routes_and_wrong_methods_answer_json() {
    let s = TestAppliance::new("http-json").serve().await;
    assert_oversized_bodies_get_413(&s, "/ocsp", "application/ocsp-request", true);
    assert_oversized_bodies_get_413(&s, "/v1/enroll", "application/json", false);

    let http = s.anonymous();
    let resp = http.get(s.url("/no/such/route")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    assert!(body["message"].as_str().unwrap().contains("/no/such/route"));

    let resp = http.delete(s.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert!(resp.headers()["allow"].to_str().unwrap().contains("GET"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    assert!(
        body["message"].as_str().unwrap().contains("DELETE"),
        "{body}"
    );
    let resp = http.get(s.url("/ocsp")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    s.stop().await;
}
