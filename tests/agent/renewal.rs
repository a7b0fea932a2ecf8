//! The agent keeps a certificate fresh: renewals on schedule, through an appliance
//! restart without a gap, through an outage longer than the lifetime (reports expiry,
//! recovers), and reacts to revocation and suspension within its poll interval.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Served, TestAppliance};
use crate::harness::{assert_files_valid, assert_log_clean, Agent, Knobs};
use crate::support::{enrollment_token, register, registration};

const WAIT: Duration = Duration::from_secs(30);

async fn registered(s: &Served, name: &str) -> String {
    let resp = register(s, &registration(name)).await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    enrollment_token(s, name).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_renews_on_schedule_and_through_an_appliance_restart_without_a_gap() {
    let (s, server) = Served::spawned("agent-restart");
    let token = registered(&s, "agent-restart").await;
    // 20 s certificates renewed at half-life: the outage below spans a renewal point and
    // leaves 7 s for a debug-build appliance to restart before the certificate expires.
    let knobs = Knobs {
        ttl_secs: 20,
        ..Knobs::default()
    };
    let agent = Agent::start(&s, &token, &knobs);

    let first = agent.serving(WAIT, None).await;
    let t0 = Instant::now();
    assert_eq!(assert_files_valid(&agent, 5), first);
    let status = agent.status();
    assert!(
        status["spiffe_id"]
            .as_str()
            .unwrap()
            .ends_with("/prod/agent-restart"),
        "{status}"
    );
    // The token was spent; the agent does not present it again.
    assert!(!agent.log().contains("enrollment token already used"));

    let second = agent.serving(WAIT, Some(&first)).await;
    let interval = t0.elapsed();
    assert_eq!(assert_files_valid(&agent, 5), second);
    // About 10 s apart (a loaded machine adds the renewal's own time).
    assert!(
        interval >= Duration::from_secs(8) && interval <= Duration::from_secs(16),
        "renewal after {interval:?}"
    );

    // The appliance goes away across the next renewal point (10 s) but for less than the
    // lifetime (20 s): the agent retries, the files stay valid all along.
    let (status, _) = server.terminate();
    assert!(status.success());
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(13) {
        assert_eq!(
            assert_files_valid(&agent, 0),
            second,
            "gap during the outage"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let during = agent.status();
    assert_eq!(during["phase"], "serving", "{during}");
    assert!(
        during["reason"].is_string(),
        "the failed renewals are reported: {during}"
    );
    let _server = s.app.spawn_serve();
    let back = Instant::now();
    let third = agent.serving(WAIT, Some(&second)).await;
    let recovery = back.elapsed();
    assert_files_valid(&agent, 3);
    assert!(agent.status()["reason"].is_null(), "{}", agent.status());
    eprintln!(
        "agent timings: first renewal after {interval:?}; renewed {recovery:?} after the appliance returned; serials {first} {second} {third}"
    );
    assert_log_clean(&agent, &token);
    let mut agent = agent;
    assert!(agent.stop().success(), "SIGTERM ends the agent cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_lifetime_is_reported_as_expiry_and_recovered_from() {
    let (s, server) = Served::spawned_with(
        "agent-outage",
        Some((
            "privileged_max_secs = 900\n",
            "privileged_max_secs = 900\nrenew_after_expiry_secs = 300\n",
        )),
    );
    let token = registered(&s, "agent-outage").await;
    let knobs = Knobs {
        ttl_secs: 6,
        ..Knobs::default()
    };
    let agent = Agent::start(&s, &token, &knobs);
    let first = agent.serving(WAIT, None).await;
    server.terminate();
    let expired = agent
        .wait(WAIT, "expiry reported", |st| st["phase"] == "expired")
        .await;
    assert_eq!(expired["serial"], first.as_str());
    assert!(expired["reason"].is_string(), "{expired}");
    let (ok, _) = crate::common::openssl(&[
        "x509",
        "-in",
        agent.out("cert.pem").to_str().unwrap(),
        "-noout",
        "-checkend",
        "0",
    ]);
    assert!(!ok, "the reported expiry is real");
    let _server = s.app.spawn_serve();
    let back = Instant::now();
    let renewed = agent.serving(WAIT, Some(&first)).await;
    eprintln!(
        "agent timings: recovered {:?} after the appliance returned from an outage past expiry",
        back.elapsed()
    );
    assert_eq!(assert_files_valid(&agent, 1), renewed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_makes_the_agent_renew_or_stop_and_suspension_stops_it_until_resumed() {
    let s = TestAppliance::new("agent-revoke").serve().await;
    let token = registered(&s, "agent-revoke").await;
    // Renewal far away (90 % of 60 s): any new certificate below comes from the poll.
    let knobs = Knobs {
        ttl_secs: 60,
        at_fraction: 0.9,
        ..Knobs::default()
    };
    let agent = Agent::start(&s, &token, &knobs);
    let first = agent.serving(WAIT, None).await;

    // Revoked as superseded: renewed within the poll interval (1 s), new key.
    let key_before = std::fs::read(agent.out("key.pem")).unwrap();
    assert_eq!(
        s.revoke_certificate(&first, "superseded").await.status(),
        200
    );
    let t = Instant::now();
    let second = agent.serving(Duration::from_secs(5), Some(&first)).await;
    eprintln!(
        "agent timings: renewed {:?} after its certificate was revoked (poll 1 s)",
        t.elapsed()
    );
    assert_ne!(
        std::fs::read(agent.out("key.pem")).unwrap(),
        key_before,
        "a fresh key"
    );
    assert_files_valid(&agent, 30);

    // Suspension: stops serving (files removed), says why; resumed: serves again.
    let suspend = |path: &'static str| {
        let s = &s;
        async move {
            let resp = s
                .operator()
                .post(s.url(&format!("/v1/admin/integrations/agent-revoke/{path}")))
                .json(&json!({"reason": "INC-9"}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
    };
    suspend("suspend").await;
    let stopped = agent
        .wait(Duration::from_secs(5), "stop on suspension", |st| {
            st["phase"] == "stopped"
        })
        .await;
    assert!(
        stopped["reason"].as_str().unwrap().contains("suspended"),
        "{stopped}"
    );
    assert!(!agent.out("cert.pem").exists() && !agent.out("key.pem").exists());
    suspend("resume").await;
    let again = agent.serving(Duration::from_secs(5), None).await;
    assert_eq!(
        again, second,
        "the same, still valid certificate is served again"
    );
    assert_files_valid(&agent, 30);

    // Revoked for key compromise: stops, and does not come back on its own...
    assert_eq!(
        s.revoke_certificate(&second, "keyCompromise")
            .await
            .status(),
        200
    );
    let stopped = agent
        .wait(Duration::from_secs(5), "stop on revocation", |st| {
            st["phase"] == "stopped"
        })
        .await;
    assert!(
        stopped["reason"]
            .as_str()
            .unwrap()
            .contains("keyCompromise"),
        "{stopped}"
    );
    assert!(!agent.out("cert.pem").exists());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(agent.status()["phase"], "stopped");
    // ...only when given a new enrollment token.
    let fresh = enrollment_token(&s, "agent-revoke").await;
    agent.give_token(&fresh);
    let third = agent.serving(Duration::from_secs(5), None).await;
    assert!(third != first && third != second);
    assert_files_valid(&agent, 30);
    assert_log_clean(&agent, &token);
    assert_log_clean(&agent, &fresh);
    s.stop().await;
}
