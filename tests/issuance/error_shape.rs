//! Errors the edge produces itself (path decoding, body reading, routing, bearer and PEM
//! parsing) answer with the documented JSON error shape, a message saying what is really
//! wrong, and never more than 64 characters of the caller's input.

use serde_json::Value;

use crate::common::{
    assert_oversized_bodies_get_413, openssl_csr, raw_exchange, raw_tls, Served, TestAppliance,
};
use crate::support::{assert_error, enroll, enrollment_token, register, registration};

/// Status and JSON body of a raw HTTP/1.1 response; fails unless the body is the error shape.
fn json_error(resp: &str) -> (u16, Value) {
    let (head, body) = resp.split_once("\r\n\r\n").expect("a complete response");
    let status: u16 = head[9..12].parse().expect("status code");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "not JSON: {head}\n{}",
        &body[..body.len().min(300)]
    );
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{body}"
    );
    (status, body)
}

fn get(s: &Served, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    raw_exchange(s, req.as_bytes())
}

/// Sends `request` as the init operator over raw TLS and reads until the server closes.
fn operator_exchange(s: &Served, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let data = s.app.data();
    let chain = std::fs::read_to_string(data.join("operator-admin.pem")).unwrap();
    let key = std::fs::read_to_string(data.join("operator-admin-key.pem")).unwrap();
    let mut tls = raw_tls(s, Some((&chain, &key)));
    tls.write_all(request).unwrap();
    tls.flush().unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn assert_echo_capped(message: &str, repeated: char) {
    let longest = message
        .split(|c| c != repeated)
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(longest > 0 && longest <= 64, "{longest} echoed: {message}");
    assert!(message.contains('…'), "{message}");
    assert!(message.len() < 600, "{} bytes", message.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_errors_are_json_with_precise_capped_messages() {
    let s = TestAppliance::new("edge-errors").serve().await;

    // A path segment that is not UTF-8 once percent-decoded: axum's rejection was plain text.
    for (path, segment) in [
        ("/v1/status/%ff", "serial"),
        ("/v1/status/token/%ff", "jti"),
        ("/ocsp/%ff", "request"),
        ("/crl/%ff", "generation"),
    ] {
        let (status, body) = json_error(&get(&s, path));
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("bad_request")),
            "{path}"
        );
        assert_eq!(
            body["message"],
            format!("path segment `{segment}` is not valid UTF-8 once percent-decoded"),
            "{path}"
        );
    }

    // Echoed input is cut: a 60 KB serial and a 60 KB unknown route.
    let long = "b".repeat(60_000);
    let (status, body) = json_error(&get(&s, &format!("/v1/status/{long}")));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_field"))
    );
    assert_echo_capped(body["message"].as_str().unwrap(), 'b');
    let (status, body) = json_error(&get(&s, &format!("/no/such/{long}")));
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    assert_echo_capped(body["message"].as_str().unwrap(), 'b');
    let (status, body) = json_error(&get(&s, "/no/such/route"));
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some("no route \"/no/such/route\""))
    );
    let resp = raw_exchange(
        &s,
        b"PATCH /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let (status, body) = json_error(&resp);
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("method_not_allowed"))
    );

    // Oversized bodies: OCSP (length and chunked), and a route reading raw bytes after
    // operator authentication (its rejection was a plain-text 413).
    assert_oversized_bodies_get_413(&s, "/ocsp", "application/ocsp-request", true);
    assert_eq!(register(&s, &registration("svc")).await.status(), 201);
    let limit = s.state().config.server.max_body_bytes;
    let mut chunked = format!(
        "POST /v1/admin/integrations/svc/enrollments HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        limit + 1
    )
    .into_bytes();
    chunked.extend(vec![b' '; limit + 1]);
    let (status, body) = json_error(&operator_exchange(&s, &chunked));
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("too_large")),
        "{body}"
    );

    // A chunk-size line that overflows: the body cannot be read, and the message says why.
    let overflow =
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nffffffffffffffffffff\r\n";
    let req = format!("POST /ocsp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/ocsp-request\r\n{overflow}");
    let (status, body) = json_error(&raw_exchange(&s, req.as_bytes()));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("request body could not be read: "),
        "{message}"
    );
    assert!(message.contains("chunk size"), "{message}");
    let req = format!("POST /v1/admin/integrations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{overflow}");
    let (status, body) = json_error(&operator_exchange(&s, req.as_bytes()));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("chunk size"),
        "{body}"
    );

    // Bearer tokens: a 300-character token is too long, not missing, and is not echoed.
    let csr = openssl_csr("ec", "");
    let long_token = "t".repeat(300);
    let body = assert_error(enroll(&s, &long_token, &csr, None).await, 401, "too long").await;
    let message = body["message"].as_str().unwrap();
    assert!(
        !message.contains("missing") && !message.contains("ttttt"),
        "{message}"
    );
    let resp = s
        .anonymous()
        .post(s.url("/v1/enroll"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .json(&serde_json::json!({"csr": csr.csr_pem}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "malformed `Authorization` header").await;
    let resp = s
        .anonymous()
        .post(s.url("/v1/enroll"))
        .json(&serde_json::json!({"csr": csr.csr_pem}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 401, "missing `Authorization: Bearer").await;

    // A CSR followed by a second PEM block: exactly one is expected (not "bad base64").
    let token = enrollment_token(&s, "svc").await;
    let mut doubled = openssl_csr("ec", "");
    doubled.csr_pem = format!("{}{}", doubled.csr_pem, csr.csr_pem);
    let body = assert_error(
        enroll(&s, &token, &doubled, None).await,
        400,
        "exactly one PEM block",
    )
    .await;
    assert_eq!(body["error"], "invalid_csr");
    assert!(
        !body["message"].as_str().unwrap().contains("base64"),
        "{body}"
    );
    // The token was not spent by the refused request.
    assert_eq!(enroll(&s, &token, &csr, None).await.status(), 201);
    s.stop().await;
}
