//! The agent's SPIFFE Workload API, checked by clients nobody here wrote: py-spiffe (and
//! through it grpcio, cryptography and PyJWT) and rust-spiffe's `WorkloadApiClient`, plus
//! raw gRPC calls for the error codes the standard fixes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use credmint::agent::workload_api::pb;
use serde_json::json;
use spiffe::{TrustDomain, WorkloadApiClient};
use tokio_stream::StreamExt;

use crate::common::{leaf_serial, Served, TestAppliance};
use crate::harness::{Agent, Knobs};
use crate::support::{enrollment_token, register, registration};

const TRUST_DOMAIN: &str = "test.credmint.local";

/// An agent serving the Workload API on `<dir>/api.sock`, 8 s certificates renewed at
/// half-life, JWT-SVIDs with scope `deploy:read`; `api` adds `[workload_api]` lines and
/// `policy` fields of the registration.
async fn agent_with_api(
    s: &Served,
    name: &str,
    api: &str,
    policy: serde_json::Value,
) -> (Agent, PathBuf) {
    let mut body = registration(name);
    for (k, v) in policy.as_object().unwrap() {
        body[k] = v.clone();
    }
    let resp = register(s, &body).await;
    assert_eq!(resp.status(), 201);
    let token = enrollment_token(s, name).await;
    let knobs = Knobs {
        ttl_secs: 8,
        extra: format!(
            "[workload_api]\nsocket = \"api.sock\"\njwt_scopes = [\"deploy:read\"]\n{api}"
        ),
        ..Knobs::default()
    };
    let agent = Agent::start(s, &token, &knobs);
    agent.serving(Duration::from_secs(30), None).await;
    let socket = agent.dir.path().join("api.sock");
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(socket.exists(), "no socket; log:\n{}", agent.log());
    (agent, socket)
}

fn endpoint(socket: &Path) -> String {
    format!("unix://{}", socket.display())
}

/// The Python in the venv deploy/lib.sh makes, with py-spiffe importable.
fn py_spiffe_python() -> PathBuf {
    let venv = std::env::var("CREDMINT_PKILINT_VENV")
        .unwrap_or_else(|_| "/opt/credmint/pkilint-venv".to_string());
    let python = Path::new(&venv).join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import spiffe"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import spiffe (py-spiffe): run deploy/lib.sh ensure_test_deps (CI does)",
        python.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_spiffe_fetches_svids_and_bundles_mints_and_validates_a_jwt_svid_and_sees_the_renewal() {
    let s = TestAppliance::new("agent-pyspiffe").serve().await;
    let (agent, socket) = agent_with_api(&s, "agent-pyspiffe", "", json!({})).await;
    let expect = format!("spiffe://{TRUST_DOMAIN}/prod/agent-pyspiffe");
    let python = py_spiffe_python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agent/pyspiffe_check.py");
    let endpoint = endpoint(&socket);
    let expected = expect.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([
                "--audience",
                "billing",
                "--rotation-timeout",
                "20",
                "--expect-spiffe-id",
                &expected,
            ])
            .env("SPIFFE_ENDPOINT_SOCKET", endpoint)
            .env("PYTHONWARNINGS", "ignore")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "py-spiffe check failed:\n{stdout}\n{}\nagent log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        agent.log()
    );
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let step = |name: &str| {
        events
            .iter()
            .find(|e| e["event"] == name)
            .unwrap_or_else(|| panic!("no {name} step in\n{stdout}"))
            .clone()
    };
    assert_eq!(step("x509_svid")["spiffe_id"], expect.as_str());
    let jwt = step("jwt_svid");
    assert_eq!(jwt["audience"], json!(["billing"]));
    assert_eq!(jwt["header"]["alg"], "ES256");
    assert_eq!(
        jwt["offline_signature_ok"], true,
        "PyJWT verified it offline"
    );
    assert_eq!(
        step("negative")["codes"]["no_security_header"],
        "INVALID_ARGUMENT"
    );
    let rotated = step("x509_rotated");
    assert_ne!(rotated["old_serial"], rotated["new_serial"]);
    // The JWT-SVID is a ledger credential like any token.
    let minted = s
        .records()
        .iter()
        .filter(|r| matches!(&r.event, credmint_ledger::Event::TokenIssued(t) if t.audience == "billing"))
        .count();
    assert!(minted >= 1, "the JWT-SVID is in the ledger");
    assert!(
        agent.log().contains("Workload API call"),
        "calls are logged with SO_PEERCRED"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_spiffe_gets_the_same_identity_a_revoked_jwt_svid_fails_validation_and_a_suspension_ends_the_stream(
) {
    let s = TestAppliance::new("agent-rsspiffe").serve().await;
    let (agent, socket) = agent_with_api(&s, "agent-rsspiffe", "", json!({})).await;
    let client = WorkloadApiClient::connect_to(&endpoint(&socket))
        .await
        .unwrap();

    let svid = client.fetch_x509_svid().await.unwrap();
    assert_eq!(
        svid.spiffe_id().to_string(),
        format!("spiffe://{TRUST_DOMAIN}/prod/agent-rsspiffe")
    );
    let served = agent.status()["serial"].as_str().unwrap().to_string();
    let leaf_pem = pem::encode(&pem::Pem::new(
        "CERTIFICATE",
        svid.leaf().as_bytes().to_vec(),
    ));
    assert_eq!(
        leaf_serial(&leaf_pem),
        served,
        "the SVID is the certificate in the files"
    );
    let td = TrustDomain::new(TRUST_DOMAIN).unwrap();
    let bundles = client.fetch_x509_bundles().await.unwrap();
    assert!(!bundles.get(&td).unwrap().authorities().is_empty());
    assert!(client.fetch_jwt_bundles().await.unwrap().get(&td).is_some());

    // JWT-SVID: minted by the appliance, validated by the agent, then revoked: invalid.
    let jwt = client.fetch_jwt_svid(["billing"], None).await.unwrap();
    let validated = client
        .validate_jwt_token("billing", jwt.token())
        .await
        .unwrap();
    assert_eq!(validated.spiffe_id(), svid.spiffe_id());
    assert!(
        client
            .validate_jwt_token("other", jwt.token())
            .await
            .is_err(),
        "wrong audience"
    );
    let payload = jwt.token().split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let jti = claims["jti"].as_str().unwrap();
    let resp = s
        .operator()
        .post(s.url(&format!("/v1/admin/tokens/{jti}/revoke")))
        .json(&json!({"reason": "keyCompromise"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let err = client
        .validate_jwt_token("billing", jwt.token())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    // Asked again: the same JWT-SVID while it is fresh (no new ledger record), a new one
    // once the old one is revoked.
    let again = client.fetch_jwt_svid(["billing"], None).await.unwrap();
    assert_ne!(
        again.token(),
        jwt.token(),
        "a revoked JWT-SVID is not handed out again"
    );
    let third = client.fetch_jwt_svid(["billing"], None).await.unwrap();
    assert_eq!(third.token(), again.token(), "a fresh one is reused");

    // The stream: the current SVID at once, the renewed one after the renewal (4 s).
    let mut stream = client.stream_x509_contexts().await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    let first_leaf = first.default_svid().unwrap().leaf().as_bytes().to_vec();
    let renewed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let ctx = stream.next().await.unwrap().unwrap();
            let leaf = ctx.default_svid().unwrap().leaf().as_bytes().to_vec();
            if leaf != first_leaf {
                return leaf;
            }
        }
    })
    .await
    .expect("no renewed SVID on the stream");
    assert_ne!(renewed, first_leaf);

    // Suspension: the stream ends with PermissionDenied ("no identity issued").
    let resp = s
        .operator()
        .post(s.url("/v1/admin/integrations/agent-rsspiffe/suspend"))
        .json(&json!({"reason": "INC-11"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Some(e.to_string()),
                None => return None,
            }
        }
    })
    .await
    .expect("the stream did not end on suspension");
    let ended = ended.expect("the stream ended without a status");
    assert!(ended.to_lowercase().contains("no identity"), "{ended}");
    assert!(client.fetch_x509_svid().await.is_err());
    s.stop().await;
}

/// A raw gRPC client on the socket (generated from the same proto), for what the SPIFFE
/// clients never do: a call without the security header.
async fn raw_client(
    socket: &Path,
) -> pb::spiffe_workload_api_client::SpiffeWorkloadApiClient<tonic::transport::Channel> {
    let socket = socket.to_owned();
    let channel = tonic::transport::Endpoint::try_from("http://localhost")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }))
        .await
        .unwrap();
    pb::spiffe_workload_api_client::SpiffeWorkloadApiClient::new(channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_security_header_is_required_and_the_bundle_carries_the_crl() {
    let s = TestAppliance::new("agent-rawgrpc").serve().await;
    let (_agent, socket) =
        agent_with_api(&s, "agent-rawgrpc", "", json!({"audiences": ["billing"]})).await;
    // The socket has the configured mode (default 0660) from the moment it has its name.
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()));
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o660
    );
    let mut raw = raw_client(&socket).await;

    let err = raw
        .fetch_x509svid(pb::X509svidRequest {})
        .await
        .expect_err("a call without workload.spiffe.io must fail");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    let err = raw
        .fetch_jwtsvid(pb::JwtsvidRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    let mut req = tonic::Request::new(pb::X509BundlesRequest {});
    req.metadata_mut()
        .insert("workload.spiffe.io", "true".parse().unwrap());
    let mut stream = raw.fetch_x509_bundles(req).await.unwrap().into_inner();
    let bundles = stream.message().await.unwrap().unwrap();
    let crl = crate::common::fetch(&s.anonymous(), &s.url("/crl")).await;
    assert_eq!(bundles.crl.len(), 1);
    assert_eq!(
        &bundles.crl[0][..],
        &crl[..],
        "the CRL field is credmint's CRL"
    );
    let key = format!("spiffe://{TRUST_DOMAIN}");
    assert!(
        bundles.bundles.contains_key(&key),
        "{:?}",
        bundles.bundles.keys()
    );

    // JWT-SVIDs obey the integration's audience policy (the appliance decides).
    let mut req = tonic::Request::new(pb::JwtsvidRequest {
        audience: vec!["payroll".into()],
        spiffe_id: String::new(),
    });
    req.metadata_mut()
        .insert("workload.spiffe.io", "true".parse().unwrap());
    let err = raw.fetch_jwtsvid(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    assert!(err.message().contains("audience"), "{err}");

    let mut req = tonic::Request::new(pb::WitsvidRequest::default());
    req.metadata_mut()
        .insert("workload.spiffe.io", "true".parse().unwrap());
    let err = raw.fetch_witsvid(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_outside_allowed_uids_gets_no_identity() {
    let s = TestAppliance::new("agent-uids").serve().await;
    // The tests run as one uid; allow only another one.
    let (agent, socket) =
        agent_with_api(&s, "agent-uids", "allowed_uids = [4242424]\n", json!({})).await;
    let client = WorkloadApiClient::connect_to(&endpoint(&socket))
        .await
        .unwrap();
    let err = client.fetch_x509_svid().await.unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("no identity"),
        "{err}"
    );
    assert!(
        agent.log().contains("allowed=false"),
        "the refused call is logged with its peer"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_rotation_reaches_the_bundle_stream_and_the_bundle_file_within_the_poll() {
    let s = TestAppliance::new("agent-carot").serve().await;
    let (agent, socket) = agent_with_api(&s, "agent-carot", "", json!({})).await;
    let client = WorkloadApiClient::connect_to(&endpoint(&socket))
        .await
        .unwrap();
    let td = TrustDomain::new(TRUST_DOMAIN).unwrap();
    let mut stream = client.stream_x509_bundles().await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.get(&td).unwrap().authorities().len(), 1);

    let resp = s
        .operator()
        .post(s.url("/v1/admin/keys/ca/rotate"))
        .json(&json!({"reason": "test rotation"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let t = std::time::Instant::now();
    let rotated = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let set = stream.next().await.unwrap().unwrap();
            let n = set.get(&td).unwrap().authorities().len();
            if n == 2 {
                return n;
            }
        }
    })
    .await
    .expect("no bundle with the new CA on the stream");
    assert_eq!(rotated, 2);
    eprintln!(
        "agent timings: new CA on the bundle stream {:?} after the rotation (poll 1 s)",
        t.elapsed()
    );
    let bundle = std::fs::read_to_string(agent.out("bundle.pem")).unwrap();
    assert_eq!(
        bundle.matches("BEGIN CERTIFICATE").count(),
        2,
        "bundle.pem has both roots"
    );
    s.stop().await;
}
