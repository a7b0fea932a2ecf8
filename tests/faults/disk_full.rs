//! The data directory on a real, small tmpfs is filled to the last byte while the
//! appliance serves, then freed. While full, writes get a clear 503 and `/healthz` says the
//! ledger is unavailable; once space is back the ledger reopens by itself and everything
//! works again, with nothing half-written (the exported ledger verifies).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{genesis_key_of, TestAppliance};
use crate::support::registered_workload;

/// A tmpfs mounted for the test's lifetime (unmounted on drop, even after a failure).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a tmpfs to fill a real file system (needs root with CAP_SYS_ADMIN, as CI has): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the file system refuses (ENOSPC); returns the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC, got {e}");
                break;
            }
        }
    }
    // The last partial pages too.
    while f.write(&[0u8; 512]).map(|n| n > 0).unwrap_or(false) {}
    let _ = f.sync_all();
    written
}

async fn mint(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let resp = client
        .post(url)
        .json(&json!({"audience": "disk-test", "scopes": ["deploy:read"]}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn health(s: &crate::common::Served) -> (u16, Value) {
    let resp = s.anonymous().get(s.url("/healthz")).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_503_and_the_ledger_recovers_once_space_is_freed() {
    let app = TestAppliance::new("diskfull");
    let mount = Tmpfs::mount(&app.data(), "24m");
    let s = app.serve().await;
    let w = registered_workload(&s, "disk-full").await;
    let client = w.client(&s);
    let tokens = s.url("/v1/tokens");
    let (status, first) = mint(&client, &tokens).await;
    assert_eq!(status, 201, "{first}");

    // Fill the file system to the last byte, then write until the ledger hits it (redb
    // may still have free pages inside its file for the first commits).
    let filler = mount.0.join("filler");
    let filled = fill(&filler);
    let mut refused = None;
    for _ in 0..2000 {
        let (status, body) = mint(&client, &tokens).await;
        if status != 201 {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("the ledger never hit the full disk");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    let (hstatus, hbody) = health(&s).await;
    assert_eq!(hstatus, 503, "{hbody}");
    assert_eq!(hbody["ledger"], "unavailable", "{hbody}");
    // Still full: still refused, clearly, and nothing is half-written.
    assert_eq!(mint(&client, &tokens).await.0, 503);

    // Free the space: the ledger reopens by itself, without a restart, and health says so
    // before anything else is written (the sequencer probes while idle).
    std::fs::remove_file(&filler).unwrap();
    let started = Instant::now();
    loop {
        let (hstatus, hbody) = health(&s).await;
        if hstatus == 200 {
            assert_eq!(hbody["ledger"], "ok");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still unavailable after space was freed: {hbody}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let healed = started.elapsed();
    let (status, recovered) = mint(&client, &tokens).await;
    assert_eq!(status, 201, "{recovered}");
    println!(
        "disk full: filled {filled} bytes; healthy again {} ms after space was freed",
        healed.as_millis()
    );
    // Status of a token from before and after the outage.
    for body in [&first, &recovered] {
        let (code, st) = s.token_status(body["jti"].as_str().unwrap()).await;
        assert_eq!(code, 200, "{st}");
        assert_eq!(st["status"], "good", "{st}");
    }
    let key = genesis_key_of(&s.state().ledger);
    s.assert_ledger_verifies(key).await;
    s.stop().await;
    drop(mount);
}
