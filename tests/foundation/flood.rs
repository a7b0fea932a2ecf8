//! Floods and faults at the HTTPS edge, loopback only and bounded: one peer (127.0.0.2)
//! holds connections in every stalled state and more than its cap, while a client on
//! 127.0.0.1 keeps getting `/healthz` answers over fresh connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{raw_tls_client, Served, TestAppliance};

const PER_PEER: usize = 24;
const GROUP: usize = 8;
const OVER_CAP: usize = 16;
const HANDSHAKE_SECS: u64 = 2;
const HEADER_SECS: u64 = 2;
const IDLE_SECS: u64 = 3;
const SLACK: Duration = Duration::from_millis(1500);

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

async fn connect_from(source: &str, server: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let tcp = socket.connect(server).await.unwrap().into_std().unwrap();
    tcp.set_nonblocking(false).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    tcp
}

/// The first half of a real ClientHello.
fn partial_client_hello(s: &Served) -> Vec<u8> {
    let mut conn = raw_tls_client(s, None);
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello.truncate(hello.len() / 2);
    hello
}

fn handshake(s: &Served, tcp: TcpStream) -> Tls {
    let mut tls = rustls::StreamOwned::new(raw_tls_client(s, None), tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("handshake");
    }
    tls
}

/// Blocks until the server closes `read`'s connection; returns when, after `since`.
fn closed_after(
    mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize>,
    since: Instant,
) -> Duration {
    let mut buf = [0u8; 4096];
    loop {
        match read(&mut buf) {
            Ok(0) => return since.elapsed(),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("connection still open after {:?}", since.elapsed())
            }
            // Reset or a TLS close without close_notify: closed all the same.
            Err(_) => return since.elapsed(),
        }
    }
}

fn assert_closed_by(group: &str, times: &[Duration], timeout: Duration) {
    for t in times {
        assert!(
            *t + Duration::from_millis(300) >= timeout && *t <= timeout + SLACK,
            "{group}: closed after {t:?}, expected {timeout:?} (+{SLACK:?}): {times:?}"
        );
    }
}

fn max(times: &[Duration]) -> Duration {
    times.iter().copied().max().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_over_cap_connections_from_one_peer_never_starve_others() {
    let app = TestAppliance::new("flood");
    app.edit_config(
        "names = [\"localhost\", \"127.0.0.1\"]",
        &format!(
            "names = [\"localhost\", \"127.0.0.1\"]\nmax_connections = 200\nmax_connections_per_ip = {PER_PEER}\ntls_handshake_timeout_secs = {HANDSHAKE_SECS}\nheader_read_timeout_secs = {HEADER_SECS}\nidle_timeout_secs = {IDLE_SECS}"
        ),
    );
    let s = Arc::new(app.serve().await);
    let server = s.running.as_ref().unwrap().addr;
    let started = Instant::now();

    // The legitimate client: a fresh connection (TCP + TLS) for every /healthz.
    let stop = Arc::new(AtomicBool::new(false));
    let legit = {
        let (stop, url) = (stop.clone(), s.url("/healthz"));
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&s.ca_pem).unwrap()])
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let resp = http.get(&url).send().await.expect("legit /healthz failed");
                assert_eq!(resp.status(), 200);
                resp.bytes().await.expect("legit /healthz body");
                latencies.push(t.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            latencies
        })
    };

    // 1. Partial ClientHellos: the TLS handshake never finishes.
    let hello = partial_client_hello(&s);
    let mut stalled_hellos = Vec::new();
    for _ in 0..GROUP {
        let mut tcp = connect_from("127.0.0.2", server).await;
        tcp.write_all(&hello).unwrap();
        stalled_hellos.push((tcp, Instant::now()));
    }
    // 2. TLS done, then half a request head.
    let mut stalled_heads = Vec::new();
    for _ in 0..GROUP {
        let tcp = connect_from("127.0.0.2", server).await;
        let s2 = s.clone();
        let mut tls = tokio::task::spawn_blocking(move || handshake(&s2, tcp))
            .await
            .unwrap();
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: local")
            .unwrap();
        tls.flush().unwrap();
        stalled_heads.push((tls, Instant::now()));
    }
    // 3. One complete request and response, then silence on a keep-alive connection.
    let mut idle = Vec::new();
    for _ in 0..GROUP {
        let tcp = connect_from("127.0.0.2", server).await;
        let s2 = s.clone();
        let (tls, at) = tokio::task::spawn_blocking(move || {
            let mut tls = handshake(&s2, tcp);
            tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            tls.flush().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !String::from_utf8_lossy(&got).contains("\"ledger_size\"") {
                let n = tls.read(&mut buf).unwrap();
                assert!(n > 0, "closed before the answer");
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got.starts_with(b"HTTP/1.1 200"));
            (tls, Instant::now())
        })
        .await
        .unwrap();
        idle.push((tls, at));
    }
    let held_at = started.elapsed();
    assert_eq!(s.running.as_ref().unwrap().edge_stats().refused_per_peer, 0);

    // 4. Over the per-peer cap: closed at once, before a byte of TLS comes back.
    let mut refused = Vec::new();
    for _ in 0..OVER_CAP {
        let mut tcp = connect_from("127.0.0.2", server).await;
        let t = Instant::now();
        let hello = hello.clone();
        refused.push(
            tokio::task::spawn_blocking(move || {
                let _ = tcp.write_all(&hello);
                let mut buf = [0u8; 64];
                let got = tcp.read(&mut buf).unwrap_or(0);
                assert_eq!(got, 0, "an over-cap connection got TLS bytes");
                t.elapsed()
            })
            .await
            .unwrap(),
        );
    }
    assert!(
        max(&refused) < Duration::from_millis(500),
        "refusals took {refused:?}"
    );
    let stats = s.running.as_ref().unwrap().edge_stats();
    assert_eq!(stats.refused_per_peer, OVER_CAP as u64, "{stats:?}");
    assert_eq!(stats.refused_global, 0, "{stats:?}");

    // 5. Every stalled connection is closed by the server within its timeout.
    let hello_closed = tokio::task::spawn_blocking(move || {
        stalled_hellos
            .into_iter()
            .map(|(mut tcp, at)| closed_after(|b| tcp.read(b), at))
            .collect::<Vec<_>>()
    });
    let head_closed = tokio::task::spawn_blocking(move || {
        stalled_heads
            .into_iter()
            .map(|(mut tls, at)| closed_after(|b| tls.read(b), at))
            .collect::<Vec<_>>()
    });
    let idle_closed = tokio::task::spawn_blocking(move || {
        idle.into_iter()
            .map(|(mut tls, at)| closed_after(|b| tls.read(b), at))
            .collect::<Vec<_>>()
    });
    let hello_closed = hello_closed.await.unwrap();
    let head_closed = head_closed.await.unwrap();
    let idle_closed = idle_closed.await.unwrap();
    assert_closed_by(
        "partial ClientHello",
        &hello_closed,
        Duration::from_secs(HANDSHAKE_SECS),
    );
    assert_closed_by(
        "partial request head",
        &head_closed,
        Duration::from_secs(HEADER_SECS),
    );
    // HTTP/1.1 keep-alive waits are bounded by the header-read timeout (the shorter here).
    assert_closed_by(
        "idle keep-alive",
        &idle_closed,
        Duration::from_secs(HEADER_SECS.min(IDLE_SECS)),
    );

    stop.store(true, Ordering::Relaxed);
    let mut latencies = legit.await.expect("the legitimate client never failed");
    latencies.sort();
    assert!(latencies.len() >= 10, "{} answers", latencies.len());
    let (p50, worst) = (latencies[latencies.len() / 2], max(&latencies));
    assert!(
        worst < Duration::from_secs(2),
        "/healthz max latency {worst:?}"
    );

    // 6. The places are given back: the peer may connect again, and nothing stays open.
    let deadline = Instant::now() + Duration::from_secs(3);
    while s.running.as_ref().unwrap().edge_stats().open > 0 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            s.running.as_ref().unwrap().edge_stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tcp = connect_from("127.0.0.2", server).await;
    let s2 = s.clone();
    tokio::task::spawn_blocking(move || drop(handshake(&s2, tcp)))
        .await
        .unwrap();
    let stats = s.running.as_ref().unwrap().edge_stats();
    assert!(stats.handshake_timeouts >= GROUP as u64, "{stats:?}");

    println!(
        "flood figures: {} connections held by 127.0.0.2 (cap {PER_PEER}) after {held_at:?}; \
         {} refused over the cap, each closed within {:?}; closed by the server after: \
         partial ClientHello max {:?} (timeout {HANDSHAKE_SECS} s), partial head max {:?} \
         (timeout {HEADER_SECS} s), idle keep-alive max {:?}; /healthz from 127.0.0.1 over \
         fresh connections: {} answers, p50 {p50:?}, max {worst:?}, 0 failures; edge {stats:?}; \
         whole test {:?}",
        3 * GROUP,
        refused.len(),
        max(&refused),
        max(&hello_closed),
        max(&head_closed),
        max(&idle_closed),
        latencies.len(),
        started.elapsed(),
    );
    Arc::into_inner(s).unwrap().stop().await;
}

/// Reads one complete `/healthz` answer (it ends with the JSON object).
fn read_healthz(tls: &mut Tls) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"}") {
        let n = tls.read(&mut buf).expect("answer");
        assert!(n > 0, "closed before the answer");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_counts_from_the_last_request_and_closes_silent_connections() {
    let app = TestAppliance::new("idle");
    app.edit_config(
        "names = [\"localhost\", \"127.0.0.1\"]",
        "names = [\"localhost\", \"127.0.0.1\"]\nidle_timeout_secs = 1\nheader_read_timeout_secs = 5",
    );
    let s = Arc::new(app.serve().await);
    let s2 = s.clone();
    let (busy_for, closed) = tokio::task::spawn_blocking(move || {
        let mut tls = crate::common::raw_tls(&s2, None);
        let started = Instant::now();
        // Requests 400 ms apart for 2 s: longer than the idle timeout, never idle that long.
        for _ in 0..5 {
            tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            tls.flush().unwrap();
            read_healthz(&mut tls);
            std::thread::sleep(Duration::from_millis(400));
        }
        let busy_for = started.elapsed();
        let silent = Instant::now() - Duration::from_millis(400);
        (busy_for, closed_after(|b| tls.read(b), silent))
    })
    .await
    .unwrap();
    assert!(busy_for >= Duration::from_secs(2), "{busy_for:?}");
    assert!(
        closed >= Duration::from_millis(700) && closed <= Duration::from_secs(1) + SLACK,
        "closed {closed:?} after its last answer (idle timeout 1 s)"
    );
    let stats = s.running.as_ref().unwrap().edge_stats();
    assert!(stats.idle_closed >= 1, "{stats:?}");
    println!("idle figures: kept open {busy_for:?} while busy; closed {closed:?} after the last answer; edge {stats:?}");
    Arc::into_inner(s).unwrap().stop().await;
}
