//! A publication that fails is logged and retried, and never holds up issuance.

use std::time::Duration;

use crate::common::{captured_logs, metric_value, TestAppliance};
use crate::support::registered_workload;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_publication_is_logged_retried_and_never_blocks_issuance() {
    let app = TestAppliance::new("tiles-retry");
    std::fs::write(
        &app.config_path,
        std::fs::read_to_string(&app.config_path).unwrap()
            + "\n[tiles]\ndir = \"../retry-tiles\"\n",
    )
    .unwrap();
    // `tile` is a file where the publisher needs a directory: every run fails.
    let dir = app.dir.path().join("retry-tiles");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tile"), b"in the way").unwrap();
    let s = app.serve().await;
    let w = registered_workload(&s, "retry").await;
    for _ in 0..5 {
        let r = w.mint_token(&s).await;
        assert_eq!(r.status(), 201);
    }
    let size = s.state().ledger.size();
    assert!(
        s.state()
            .checkpoints
            .covered(size, Duration::from_secs(10))
            .await
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !captured_logs().contains("tiles publication failed") {
        assert!(std::time::Instant::now() < deadline, "no failure logged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!dir.join("checkpoint").exists());
    let m = s.scrape_metrics().await;
    assert!(metric_value(&m, "credmint_tiles_publish_failures_total{kind=\"io\"}") >= 1.0);
    assert_eq!(metric_value(&m, "credmint_tiles_published_records"), 0.0);
    // Cleared: the next retry (at most RETRY later) publishes everything.
    std::fs::remove_file(dir.join("tile")).unwrap();
    crate::published_within(&dir, size, credmint::tiles::RETRY + Duration::from_secs(10)).await;
    // The gauge follows right after the checkpoint file moved.
    while metric_value(
        &s.scrape_metrics().await,
        "credmint_tiles_published_records",
    ) < size as f64
    {
        assert!(
            std::time::Instant::now() < deadline,
            "gauge never reached {size}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.stop().await;
}
