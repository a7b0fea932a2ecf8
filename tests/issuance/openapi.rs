//! The OpenAPI 3.1 document at `/v1/openapi.json`, checked from outside: by the
//! independent `openapi-spec-validator` (PyPI), and against the live server: the
//! document's request examples are sent to their routes and every answer is validated
//! against the documented schema with Python `jsonschema` (both from the test venv).

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use crate::common::{
    assert_success, date_in_days, openssl_csr, require_tool, run_with_stdin, text, Served,
    TestAppliance,
};
use crate::support::{enroll, Enrolled};

async fn document(s: &Served) -> Value {
    let resp = s
        .anonymous()
        .get(s.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    resp.json().await.unwrap()
}

/// The venv's Python (beside the validator), which has `jsonschema`.
fn venv_python() -> PathBuf {
    let validator = require_tool("openapi-spec-validator");
    let python = validator.with_file_name("python");
    assert!(python.exists(), "no python beside {}", validator.display());
    python
}

#[tokio::test]
async fn openapi_document_passes_the_independent_validator() {
    let s = TestAppliance::new("openapi-valid").serve().await;
    let doc = document(&s).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = Command::new(require_tool("openapi-spec-validator"))
        .arg(file.path())
        .output()
        .unwrap();
    assert_success(&out);

    // Every documented operation is a route the server has (not the 404/405 fallbacks),
    // and the schemes the routes name are defined.
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for name in ["operator_mtls", "workload_mtls"] {
        assert_eq!(schemes[name]["type"], "mutualTLS");
    }
    assert_eq!(schemes["enrollment_token"]["scheme"], "bearer");
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let concrete = path
                .replace("{name}", "nobody")
                .replace("{index}", "999999")
                .replace("{serial}", "01")
                .replace("{jti}", "nothing")
                .replace("{role}", "token")
                .replace("{generation}", "1")
                .replace("{request}", "AA");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let resp = s
                .anonymous()
                .request(m, s.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            assert!(
                status != 405 && !body.contains("no route"),
                "{method} {path}: {status} {body}"
            );
            assert!(op["responses"]["default"].is_object() || path == "/v1/openapi.json");
        }
    }
    assert!(operations >= 36, "only {operations} operations documented");
    s.stop().await;
}

/// One live answer to check against the document.
struct Case {
    label: String,
    path: &'static str,
    method: &'static str,
    status: u16,
    body: Value,
}

struct Exercise<'a> {
    s: &'a Served,
    doc: &'a Value,
    cases: Vec<Case>,
    sent: Vec<(String, String)>,
}

impl Exercise<'_> {
    fn example(&self, path: &str, method: &str) -> Value {
        self.doc["paths"][path][method]["requestBody"]["content"]["application/json"]["example"]
            .clone()
    }

    fn param(&self, path: &str, method: &str, name: &str) -> String {
        let params = self.doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap();
        let p = params.iter().find(|p| p["name"] == name).unwrap();
        match &p["example"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// Sends `body` (default: the documented example) to `path` (`{param}`s from `with`,
    /// else their documented examples) and records the JSON answer for checking.
    async fn send(
        &mut self,
        client: &reqwest::Client,
        method: &'static str,
        path: &'static str,
        with: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut concrete = path.to_string();
        for seg in path.split('/').filter(|s| s.starts_with('{')) {
            let name = seg.trim_matches(|c| c == '{' || c == '}');
            let value = with
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
                .unwrap_or_else(|| self.param(path, method, name));
            concrete = concrete.replace(seg, &value);
        }
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = client.request(m, self.s.url(&concrete));
        let body = body.or_else(|| {
            let ex = self.example(path, method);
            (!ex.is_null()).then_some(ex)
        });
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {concrete}: {status} not JSON ({e}): {text}"));
        self.sent.push((path.to_string(), method.to_string()));
        self.cases.push(Case {
            label: format!("{method} {concrete} -> {status}"),
            path,
            method,
            status,
            body: value.clone(),
        });
        (status, value)
    }
}

/// Runs the checker: whether everything matched, and its report.
fn check_against_document(doc: &Value, cases: &[Case]) -> (bool, String) {
    let cases: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({"label": c.label, "path": c.path, "method": c.method,
                "status": c.status, "body": c.body})
        })
        .collect();
    let input = json!({ "document": doc, "cases": cases });
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/issuance/openapi_check.py"
    );
    let mut check = Command::new(venv_python());
    check.arg(script);
    let out = run_with_stdin(check, &serde_json::to_vec(&input).unwrap());
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    (out.status.success(), report)
}

#[tokio::test]
async fn documented_examples_match_the_live_server() {
    let s = TestAppliance::new("openapi-live").serve().await;
    let doc = document(&s).await;
    let mut x = Exercise {
        s: &s,
        doc: &doc,
        cases: Vec::new(),
        sent: Vec::new(),
    };
    let op = s.operator();
    let anon = s.anonymous();

    // Time-bound values are refreshed: review-by must lie ahead of today.
    let mut registration = x.example("/v1/admin/integrations", "post");
    registration["review_by"] = json!(date_in_days(300));
    let name = registration["name"].as_str().unwrap().to_string();
    let (st, _) = x
        .send(
            &op,
            "post",
            "/v1/admin/integrations",
            &[],
            Some(registration),
        )
        .await;
    assert_eq!(st, 201);
    x.send(&op, "get", "/v1/admin/integrations/{name}", &[], None)
        .await;
    x.send(&op, "get", "/v1/admin/integrations", &[], None)
        .await;
    let (st, enrollment) = x
        .send(
            &op,
            "post",
            "/v1/admin/integrations/{name}/enrollments",
            &[],
            None,
        )
        .await;
    assert_eq!(st, 201);

    // The CSR examples are placeholders: a real CSR goes in their place.
    let csr = openssl_csr("ec", "");
    let resp = enroll(&s, enrollment["token"].as_str().unwrap(), &csr, None).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.headers()["content-type"],
        "application/pem-certificate-chain"
    );
    let serial = resp.headers()["x-credmint-serial"]
        .to_str()
        .unwrap()
        .to_string();
    let workload = Enrolled {
        csr,
        chain_pem: resp.text().await.unwrap(),
    };
    let wl = workload.client(&s);
    let (st, token) = x.send(&wl, "post", "/v1/tokens", &[], None).await;
    assert_eq!(st, 201);
    let jti = token["jti"].as_str().unwrap().to_string();
    x.send(
        &anon,
        "get",
        "/v1/status/token/{jti}",
        &[("jti", &jti)],
        None,
    )
    .await;
    x.send(
        &anon,
        "get",
        "/v1/status/{serial}",
        &[("serial", &serial)],
        None,
    )
    .await;
    let renewal = json!({ "csr": workload.csr.csr_pem });
    let resp = wl
        .post(s.url("/v1/renew"))
        .json(&renewal)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let renewed = resp.headers()["x-credmint-serial"]
        .to_str()
        .unwrap()
        .to_string();

    x.send(
        &op,
        "post",
        "/v1/admin/integrations/{name}/changes",
        &[],
        None,
    )
    .await;
    // Widening needs a second operator: request, look, approve (as admin2), look again.
    let widen = json!({"scopes": ["deploy:read", "deploy:write"], "reason": "CHG-1303"});
    let (st, pending) = x
        .send(
            &op,
            "post",
            "/v1/admin/integrations/{name}/changes",
            &[],
            Some(widen),
        )
        .await;
    assert_eq!(st, 202, "{pending}");
    let index = pending["request_index"].to_string();
    let at = [("index", index.as_str())];
    x.send(&op, "get", "/v1/admin/changes/{index}", &at, None)
        .await;
    let (st, _) = x
        .send(
            &s.operator2(),
            "post",
            "/v1/admin/changes/{index}/approve",
            &at,
            None,
        )
        .await;
    assert_eq!(st, 200);
    let (_, closed) = x
        .send(&op, "get", "/v1/admin/changes/{index}", &at, None)
        .await;
    assert_eq!(closed["status"], "approved");
    let mut recertify = x.example("/v1/admin/integrations/{name}/recertify", "post");
    recertify["review_by"] = json!(date_in_days(200));
    x.send(
        &op,
        "post",
        "/v1/admin/integrations/{name}/recertify",
        &[],
        Some(recertify),
    )
    .await;
    x.send(
        &op,
        "post",
        "/v1/admin/integrations/{name}/suspend",
        &[],
        None,
    )
    .await;
    x.send(
        &op,
        "post",
        "/v1/admin/integrations/{name}/resume",
        &[],
        None,
    )
    .await;
    x.send(&op, "get", "/v1/admin/changes", &[], None).await;
    let (st, _) = x.send(&op, "post", "/v1/admin/monitors", &[], None).await;
    assert_eq!(st, 201);
    x.send(&op, "get", "/v1/admin/monitors", &[], None).await;
    let (st, _) = x
        .send(
            &op,
            "delete",
            "/v1/admin/monitors/{name}",
            &[("name", "prometheus")],
            None,
        )
        .await;
    assert_eq!(st, 200);
    x.send(&op, "get", "/v1/admin/operators/requests", &[], None)
        .await;
    x.send(
        &op,
        "post",
        "/v1/admin/tokens/{jti}/revoke",
        &[("jti", &jti)],
        None,
    )
    .await;
    x.send(&wl, "post", "/v1/revoke", &[], None).await;
    let (st, _) = x
        .send(
            &op,
            "post",
            "/v1/admin/certificates/{serial}/revoke",
            &[("serial", &renewed)],
            None,
        )
        .await;
    assert_eq!(st, 200);
    x.send(
        &op,
        "post",
        "/v1/admin/integrations/{name}/revoke-all",
        &[],
        None,
    )
    .await;
    x.send(&op, "post", "/v1/admin/keys/{role}/rotate", &[], None)
        .await;
    x.send(&anon, "get", "/healthz", &[], None).await;
    x.send(&anon, "get", "/.well-known/jwks.json", &[], None)
        .await;
    let (st, _) = x
        .send(
            &op,
            "post",
            "/v1/admin/integrations/{name}/decommission",
            &[],
            None,
        )
        .await;
    assert_eq!(st, 200);

    // Error answers have the documented error shape.
    let (st, _) = x
        .send(
            &op,
            "get",
            "/v1/admin/integrations/{name}",
            &[("name", "nobody")],
            None,
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = x
        .send(
            &op,
            "post",
            "/v1/admin/integrations/{name}/suspend",
            &[("name", &name)],
            None,
        )
        .await;
    assert_eq!(st, 409);
    let (st, _) = x.send(&anon, "post", "/v1/tokens", &[], None).await;
    assert_eq!(st, 401);

    // Every JSON request example was sent, except those that need a second party.
    let needs_other_party = [
        ("/v1/admin/operators", "post"), // a new operator's CSR
        ("/v1/admin/operators/requests/{index}/approve", "post"), // a pending request
        ("/v1/admin/changes/{index}/approve", "post"), // a pending change
        ("/v1/enroll", "post"),          // placeholder CSR
        ("/v1/renew", "post"),           // placeholder CSR
    ];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            let has_example = !x.example(path, method).is_null();
            let skipped = needs_other_party.contains(&(path.as_str(), method.as_str()));
            let sent = x.sent.iter().any(|(p, m)| p == path && m == method);
            assert!(
                !has_example || sent || skipped,
                "example of {method} {path} never sent"
            );
        }
    }
    let (ok, report) = check_against_document(&doc, &x.cases);
    assert!(
        ok,
        "answers or examples do not match the document:\n{report}"
    );
    let answers = x.cases.len();
    assert!(
        report.contains(&format!("checked {answers} live answers")),
        "{report}"
    );

    // The checker can fail: an answer without a required property, or of the wrong type.
    let mut wrong = x.cases.remove(0);
    wrong.body.as_object_mut().unwrap().remove("spiffe_id");
    wrong.body["max_ttl_secs"] = json!("900");
    let (ok, report) = check_against_document(&doc, &[wrong]);
    assert!(!ok, "a malformed answer passed: {report}");
    assert!(
        report.contains("spiffe_id") && report.contains("max_ttl_secs"),
        "{report}"
    );
    s.stop().await;
}
