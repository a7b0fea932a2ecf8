//! Job mode: `credmint agent run -- CMD` gives the command a valid credential, passes its
//! exit status through, and revokes the credential when it exits.

use crate::common::{openssl_ocsp, TestAppliance};
use crate::harness::{Agent, Knobs};
use crate::support::{enrollment_token, register, registration};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_gets_a_valid_certificate_its_exit_status_passes_through_and_ocsp_then_says_revoked()
{
    let s = TestAppliance::new("agent-job").serve().await;
    let resp = register(&s, &registration("agent-job")).await;
    assert_eq!(resp.status(), 201);
    let token = enrollment_token(&s, "agent-job").await;
    // 6 s certificates renewed at half-life; the job runs 5 s, so it sees a renewal.
    let knobs = Knobs {
        ttl_secs: 6,
        ..Knobs::default()
    };
    let agent = Agent::configure(&s, &token, &knobs);
    let seen = agent.dir.path().join("seen.pem");
    let last = agent.dir.path().join("last.pem");
    let script = format!(
        "openssl verify -purpose sslclient -CAfile \"$CREDMINT_BUNDLE_FILE\" \"$CREDMINT_CERT_FILE\" >&2 || exit 90; \
         test -s \"$CREDMINT_KEY_FILE\" || exit 91; \
         case \"$CREDMINT_SPIFFE_ID\" in spiffe://*/agent-job) ;; *) exit 92;; esac; \
         cp \"$CREDMINT_CERT_FILE\" {seen}; sleep 5; cp \"$CREDMINT_CERT_FILE\" {last}; exit 7",
        seen = seen.display(),
        last = last.display()
    );
    let config = agent.config.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_credmint"))
            .args(["agent", "-c"])
            .arg(&config)
            .args(["run", "--", "sh", "-c", &script])
            .env("RUST_LOG", "info")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(7),
        "the job's status passes through; log:\n{log}"
    );
    assert!(seen.exists(), "the job saw its certificate:\n{log}");
    assert!(!log.contains(&token), "token in the log");

    // After the job: revoked, as OpenSSL's OCSP client sees it; the files are gone.
    let ca = agent.dir.path().join("ca.pem");
    let (ok, answer) = openssl_ocsp(s.port(), ca.to_str().unwrap(), seen.to_str().unwrap());
    assert!(ok, "{answer}");
    assert!(answer.contains(": revoked"), "{answer}");
    assert!(answer.contains("Reason: cessationOfOperation"), "{answer}");
    // The certificate the renewal brought during the job: revoked too, and for a reason
    // that does not let it renew (not superseded).
    let first_serial = crate::common::leaf_serial(&std::fs::read_to_string(&seen).unwrap());
    let last_serial = crate::common::leaf_serial(&std::fs::read_to_string(&last).unwrap());
    assert_ne!(
        first_serial, last_serial,
        "the job saw a renewal; log:\n{log}"
    );
    let (ok, answer) = openssl_ocsp(s.port(), ca.to_str().unwrap(), last.to_str().unwrap());
    assert!(
        ok && answer.contains("Reason: cessationOfOperation"),
        "{answer}"
    );
    assert!(!agent.out("cert.pem").exists());
    assert!(
        !agent.dir.path().join("out/state/chain.pem").exists(),
        "the dead credential is forgotten"
    );
    assert!(!agent.out("key.pem").exists());

    // The token is spent: a second job with the same config fails with a clear error
    // and a refusal's exit code, without running the command.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_credmint"))
        .args(["agent", "-c"])
        .arg(&agent.config)
        .args(["run", "--", "sh", "-c", "exit 0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(31), "{err}");
    assert!(err.contains("give the agent a new one"), "{err}");
    s.stop().await;
}
