//! The reload action after every delivery: a signal to the PID in a file, and a command.

use std::time::Duration;

use crate::common::TestAppliance;
use crate::harness::{Agent, Knobs};
use crate::support::{enrollment_token, register, registration};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delivery_signals_the_program_and_runs_the_command_after_the_files_are_in_place() {
    let s = TestAppliance::new("agent-reload").serve().await;
    assert_eq!(
        register(&s, &registration("agent-reload")).await.status(),
        201
    );
    let token = enrollment_token(&s, "agent-reload").await;
    let work = tempfile::tempdir().unwrap();
    let hups = work.path().join("hups");
    let ran = work.path().join("ran");
    // A "program" that notes each SIGHUP it gets.
    let mut program = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap 'echo hup >> {}' HUP; while :; do sleep 0.05; done",
            hups.display()
        ))
        .spawn()
        .unwrap();
    let pid_file = work.path().join("program.pid");
    std::fs::write(&pid_file, program.id().to_string()).unwrap();
    let knobs = Knobs {
        ttl_secs: 4,
        extra: format!(
            "[reload]\npid_file = \"{}\"\nsignal = \"HUP\"\ncommand = [\"sh\", \"-c\", \"cat cert.pem key.pem > /dev/null && echo ran >> {}\"]\n",
            pid_file.display(),
            ran.display()
        ),
        ..Knobs::default()
    };
    let agent = Agent::start(&s, &token, &knobs);
    let first = agent.serving(Duration::from_secs(30), None).await;
    agent.serving(Duration::from_secs(10), Some(&first)).await;
    // Enrollment and one renewal: two deliveries, each signalled and each with the command.
    let count = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .count()
    };
    for _ in 0..40 {
        if count(&hups) >= 2 && count(&ran) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = program.kill();
    let _ = program.wait();
    assert!(
        count(&hups) >= 2,
        "SIGHUPs seen: {}; log:\n{}",
        count(&hups),
        agent.log()
    );
    assert!(
        count(&ran) >= 2,
        "command runs: {}; log:\n{}",
        count(&ran),
        agent.log()
    );
    s.stop().await;
}
