//! `credmint serve`: opens the token, keys, CA and ledger, then serves HTTPS until SIGTERM.
//!
//! Shutdown order: stop accepting, drain in-flight requests (bounded grace), stop the
//! checkpointer after it signs a final checkpoint, then drop the ledger and HSM sessions.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum_server::tls_rustls::RustlsAcceptor;
use credmint_ledger::Ledger;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::{AppEffects, AppState, CheckpointView};
use crate::ca::{ensure_server_cert, load_root, CaError};
use crate::checkpointer::{checkpoint_size, CheckpointSignal};
use crate::clock::Clock;
use crate::config::Config;
use crate::edge::{Edge, EdgeAcceptor, EdgeLimits, EdgeStats};
use crate::hsm::token::TokenDir;
use crate::hsm::Admission;
use crate::hsm::{Hsm, HsmError};
use crate::init::{prepare_environment, InitError};
use crate::metrics::Metrics;
use crate::registry::rebuild_if_stale;
use crate::sequencer::{LedgerStore, Sequencer};
use crate::signals::Signals;
use crate::status::cache::StatusCache;
use crate::tls::{server_config, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Init(#[from] InitError),
    #[error("ledger: {0}")]
    Ledger(#[from] credmint_ledger::StoreError),
    #[error(transparent)]
    KeyConfig(#[from] crate::keycheck::KeyCheckError),
    #[error("not initialised: {0} is missing; run `credmint init` first")]
    NotInitialized(String),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server task failed: {0}")]
    Task(String),
    #[error("{0}")]
    Acme(String),
}

/// Opens everything the handlers need. Blocking (PKCS#11 login, redb open, projection
/// rebuild). `port` is the bound listener's, for the default public URL; `status_port`
/// the plain status listener's, for the default status URL.
pub fn open_state(
    cfg: Config,
    port: u16,
    status_port: Option<u16>,
    clock: Clock,
) -> Result<
    (
        AppState,
        Arc<rustls::ServerConfig>,
        std::thread::JoinHandle<()>,
    ),
    ServeError,
> {
    if !cfg.ca_cert_path().exists() && cfg.ca_request_path().exists() {
        return Err(ServeError::Init(
            crate::ca::import::ImportError::Pending {
                csr: cfg.ca_request_path().display().to_string(),
            }
            .into(),
        ));
    }
    for path in [cfg.ca_cert_path(), cfg.ledger.file.clone()] {
        if !path.exists() {
            return Err(ServeError::NotInitialized(path.display().to_string()));
        }
    }
    prepare_environment(&cfg, TokenDir::MustExist)?;
    let hsm = Arc::new(Hsm::open(&cfg.hsm)?);
    // First health probe before serving; `run_health_probe` keeps it fresh.
    hsm.probe()?;
    let ledger = Arc::new(Ledger::open(&cfg.ledger.file)?);
    // The configuration must agree with the ledger's key history, and every key in force
    // must be in the token: refused here with a precise message and exit code.
    crate::keycheck::check(&cfg, &hsm, &ledger).map_err(|e| match e {
        crate::keycheck::KeyCheckError::Hsm(h) => ServeError::Hsm(h),
        other => ServeError::KeyConfig(other),
    })?;
    // The token just logged in and holds every key in force: the state worth keeping.
    crate::init::refresh_token_copy(&cfg);
    // The keys in force come from the ledger's key history (genesis + rotations).
    let public_url = cfg.public_url(port);
    let status_url = cfg.status_url(port, status_port);
    let now = u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
    let mut active = crate::rotation::load(hsm.clone(), &cfg, &ledger, &status_url, now).map_err(
        |e| match e {
            crate::rotation::RotationError::Hsm(h) => ServeError::Hsm(h),
            other => ServeError::Task(other.to_string()),
        },
    )?;
    // Intermediate CA mode: every chain handed out (leaves, server TLS, `/v1/ca.pem`)
    // continues with the issuers up to the enterprise root, as the ledger recorded them.
    let issuers = crate::rotation::offline::issuers_pem(&ledger)?;
    if active.ca_generation == 0 {
        // Before any CA rotation ca.pem must still certify the genesis CA key.
        let mut root = load_root(&cfg.ca_cert_path(), &active.keys.ca)?;
        root.pem.push_str(&issuers);
        active.cas[0].root = root.clone();
        active.ca = Arc::new(root);
    } else if !issuers.is_empty() {
        if let Some(current) = active.cas.last_mut() {
            current.root.pem.push_str(&issuers);
            active.ca = Arc::new(current.root.clone());
        }
    }
    crate::rotation::write_ca_files(&cfg, &active, now)
        .map_err(|e| ServeError::Task(e.to_string()))?;
    let ca = active.ca.clone();
    if rebuild_if_stale(&ledger).map_err(|e| ServeError::Task(e.to_string()))? {
        tracing::info!(size = ledger.size(), "projections rebuilt from the ledger");
    }
    let server = ensure_server_cert(
        &cfg.server_cert_path(),
        &cfg.server_key_path(),
        &cfg.server.names,
        cfg.identity.server_cert_validity_days,
        &ca,
        &active.keys.ca,
        OffsetDateTime::now_utc(),
    )?;
    if server.issued {
        tracing::info!(names = ?cfg.server.names, "issued a new server certificate");
    }
    let tls = server_config(&server.chain_pem, &server.key_pem, &active.roots_der(now))?;
    let checkpoint = ledger.latest_checkpoint()?;
    let status = Arc::new(StatusCache::new());
    let signals = Arc::new(Signals::default());
    let metrics = Metrics::new(hsm.metrics().clone(), signals.clone());
    let checkpoints =
        CheckpointSignal::new(checkpoint.as_deref().and_then(checkpoint_size).unwrap_or(0));
    let effects = AppEffects {
        status: status.clone(),
        checkpoints: checkpoints.clone(),
        signals: signals.clone(),
        config: cfg.signals.clone(),
        metrics: metrics.clone(),
    };
    let (sequencer, writer_thread) = Sequencer::start(
        Arc::new(LedgerStore(ledger.clone())),
        clock.clone(),
        Arc::new(effects),
        cfg.server.ledger_queue,
    );
    let checkpoint = checkpoint.and_then(|note| CheckpointView::parse(note, clock.unix()));
    let acme =
        Arc::new(crate::acme::Acme::new(cfg.acme.clone(), &public_url).map_err(ServeError::Acme)?);
    let state = AppState {
        acme,
        cosigned: Default::default(),
        public_url: public_url.into(),
        status_url: status_url.into(),
        admission: Admission::for_sessions(cfg.hsm.sessions),
        config: Arc::new(cfg),
        hsm,
        keys: crate::rotation::LiveKeys::new(active),
        ledger,
        sequencer,
        clock,
        signals,
        checkpoints,
        checkpoint: Arc::new(RwLock::new(checkpoint)),
        status,
        metrics,
    };
    Ok((state, tls, writer_thread))
}

/// A running appliance.
pub struct Running {
    pub addr: SocketAddr,
    /// The plain-HTTP status listener's address, when `server.status_listen` is set.
    pub status_addr: Option<SocketAddr>,
    pub state: AppState,
    edge: Arc<Edge>,
    handle: axum_server::Handle<SocketAddr>,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    status_server: Option<JoinHandle<std::io::Result<()>>>,
    checkpointer: JoinHandle<()>,
    /// The tiles publisher and its stop switch (flipped after the checkpointer ended).
    tiles: Option<(watch::Sender<bool>, JoinHandle<()>)>,
    /// The witness submitter, when `[[witness]]` entries exist.
    witness: Option<JoinHandle<()>>,
    refresher: JoinHandle<()>,
    renewer: JoinHandle<()>,
    prober: JoinHandle<()>,
    writer_thread: std::thread::JoinHandle<()>,
}

/// Starts serving on `listener` (tests pass 127.0.0.1:0) or on `server.listen`.
pub async fn start(
    cfg: Config,
    listener: Option<std::net::TcpListener>,
) -> Result<Running, ServeError> {
    start_with_clock(cfg, listener, Clock::default()).await
}

/// As [`start`], with a clock tests can move.
pub async fn start_with_clock(
    cfg: Config,
    listener: Option<std::net::TcpListener>,
    clock: Clock,
) -> Result<Running, ServeError> {
    let listen = cfg.server.listen;
    let mut limits = EdgeLimits::from_config(&cfg.server);
    let nofile = crate::edge::raise_descriptor_limit();
    if limits.fit_to_descriptors(nofile) {
        tracing::warn!(
            configured = cfg.server.max_connections,
            max_connections = limits.max_connections,
            open_file_limit = nofile,
            "server.max_connections lowered to fit the open-file limit"
        );
    }
    let interval = Duration::from_secs(cfg.ledger.checkpoint_interval_secs);
    let (listener, addr) = bind(listener, listen)?;
    // Bound before the state opens: its port is in the default status URL.
    let status_listener = cfg
        .server
        .status_listen
        .map(|a| bind(None, a))
        .transpose()?;
    let status_addr = status_listener.as_ref().map(|(_, a)| *a);
    let (state, tls, writer_thread) = tokio::task::spawn_blocking(move || {
        open_state(cfg, addr.port(), status_addr.map(|a| a.port()), clock)
    })
    .await
    .map_err(|e| ServeError::Task(e.to_string()))??;
    // Make sure a checkpoint covering the current ledger exists before serving it.
    crate::checkpointer::sign_if_grown(&state)
        .await
        .map_err(ServeError::Task)?;
    let handle = axum_server::Handle::new();
    let app = crate::api::router(state.clone());
    let tls = axum_server::tls_rustls::RustlsConfig::from_config(tls);
    // A CA rotation reloads the client-certificate roots through this handle.
    state.keys.set_tls(tls.clone());
    // Caps and the handshake timeout come before hyper sees the connection; hyper then
    // applies the header-read, HTTP/2 and (through the stream) idle limits.
    let edge = Edge::new(&limits);
    let acceptor = EdgeAcceptor::new(edge.clone(), RustlsAcceptor::new(tls), &limits);
    let errors = edge.clone();
    let mut server = axum_server::from_tcp(listener)
        .map_err(|source| ServeError::Listen { addr, source })?
        .acceptor(acceptor)
        .handle(handle.clone())
        .first_request_timeout(limits.header_read_timeout)
        .accept_error_handler(move |peer, e| errors.accept_error(peer.is_some(), e));
    crate::edge::configure_http(server.http_builder(), &limits);
    // A client that sends its request and closes its side at once (fire-and-forget
    // revocations, `curl` in a script that is killed) still has the request handled to
    // completion; only the answer is lost. Commits never depend on it anyway (the
    // sequencer runs every effect itself), but the request must reach the sequencer.
    server.http_builder().http1().half_close(true);
    let server =
        tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
    let status_server = status_listener
        .map(|(l, a)| serve_status(l, a, &state, &edge, &limits, &handle))
        .transpose()?;
    let (stop, stop_rx) = watch::channel(false);
    let checkpointer = tokio::spawn(crate::checkpointer::run(
        state.clone(),
        interval,
        stop_rx.clone(),
    ));
    let tiles = state.config.tiles.dir.clone().map(|dir| {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(crate::tiles::run(
            state.ledger.clone(),
            dir,
            state.metrics.ledger.clone(),
            state.checkpoints.subscribe(),
            stop_rx,
        ));
        (stop, task)
    });
    // Validated at config load; the task holds nothing durable, so shutdown aborts it.
    let witnesses = crate::witness::parse(&state.config.witnesses).unwrap_or_default();
    if !witnesses.is_empty() {
        let kept =
            crate::witness::load(&state.config.cosigned_checkpoint_path(), &state, &witnesses);
        if let (Some(kept), Ok(mut slot)) = (kept, state.cosigned.write()) {
            *slot = Some(kept);
        }
    }
    let witness = (!witnesses.is_empty()).then(|| {
        tokio::spawn(crate::witness::run(
            state.clone(),
            witnesses,
            state.cosigned.clone(),
            stop_rx.clone(),
        ))
    });
    let prober = tokio::spawn(crate::hsm::run_health_probe(
        state.hsm.clone(),
        crate::hsm::HEALTH_PROBE_INTERVAL,
        stop_rx.clone(),
    ));
    let renewer = tokio::spawn(crate::rotation::listener::run(
        state.clone(),
        crate::rotation::listener::CHECK_INTERVAL,
        stop_rx.clone(),
    ));
    let refresher = tokio::spawn(crate::status::cache::run_refresher(state.clone(), stop_rx));
    tracing::info!(
        %addr,
        status_addr = ?status_addr,
        ledger_size = state.ledger.size(),
        max_connections = limits.max_connections,
        max_connections_per_ip = limits.max_connections_per_ip,
        open_file_limit = nofile,
        "credmint serving"
    );
    Ok(Running {
        addr,
        status_addr,
        state,
        edge,
        handle,
        stop,
        server,
        status_server,
        checkpointer,
        tiles,
        witness,
        refresher,
        renewer,
        prober,
        writer_thread,
    })
}

/// `listener` (tests pass 127.0.0.1:0) or a new socket on `listen`, non-blocking.
fn bind(
    listener: Option<std::net::TcpListener>,
    listen: SocketAddr,
) -> Result<(std::net::TcpListener, SocketAddr), ServeError> {
    let listener = match listener {
        Some(l) => l,
        None => std::net::TcpListener::bind(listen).map_err(|source| ServeError::Listen {
            addr: listen,
            source,
        })?,
    };
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: listen,
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ServeError::Listen { addr, source })?;
    Ok((listener, addr))
}

/// The plain-HTTP status listener: OCSP and CRL only, under the HTTPS listener's edge
/// (one connection budget, same timeouts) and stopped by the same graceful shutdown.
fn serve_status(
    listener: std::net::TcpListener,
    addr: SocketAddr,
    state: &AppState,
    edge: &Arc<Edge>,
    limits: &EdgeLimits,
    handle: &axum_server::Handle<SocketAddr>,
) -> Result<JoinHandle<std::io::Result<()>>, ServeError> {
    let errors = edge.clone();
    let mut server = axum_server::from_tcp(listener)
        .map_err(|source| ServeError::Listen { addr, source })?
        .acceptor(EdgeAcceptor::plain(edge.clone(), limits))
        .handle(handle.clone())
        .first_request_timeout(limits.header_read_timeout)
        .accept_error_handler(move |peer, e| errors.accept_error(peer.is_some(), e));
    crate::edge::configure_http(server.http_builder(), limits);
    let app = crate::api::status_router(state.clone());
    Ok(tokio::spawn(server.serve(
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )))
}

impl Running {
    /// Connection counters of the listener (caps, handshake failures, idle closes).
    pub fn edge_stats(&self) -> EdgeStats {
        self.edge.stats()
    }

    /// Graceful stop: no new connections, in-flight requests get `grace` to finish.
    pub async fn shutdown(self, grace: Duration) -> Result<(), ServeError> {
        self.handle.graceful_shutdown(Some(grace));
        let served = self
            .server
            .await
            .map_err(|e| ServeError::Task(e.to_string()))?;
        if let Some(status) = self.status_server {
            if let Err(e) = status.await.map_err(|e| ServeError::Task(e.to_string()))? {
                tracing::error!(error = %e, "status listener failed");
            }
        }
        // Commands that handlers queued before the grace ran out still commit, with their
        // effects, before the final checkpoint.
        if let Err(e) = self.state.sequencer.flush().await {
            tracing::error!(error = %e, "sequencer flush at shutdown failed");
        }
        let _ = self.stop.send(true);
        self.checkpointer
            .await
            .map_err(|e| ServeError::Task(e.to_string()))?;
        if let Some(task) = self.witness {
            task.abort();
        }
        // The final checkpoint exists now: publish it, then stop publishing.
        if let Some((stop, task)) = self.tiles {
            let _ = stop.send(true);
            task.await.map_err(|e| ServeError::Task(e.to_string()))?;
        }
        self.refresher
            .await
            .map_err(|e| ServeError::Task(e.to_string()))?;
        self.renewer
            .await
            .map_err(|e| ServeError::Task(e.to_string()))?;
        self.prober
            .await
            .map_err(|e| ServeError::Task(e.to_string()))?;
        // The writer thread ends once the last handle is gone and its queue is drained.
        drop(self.state);
        let writer = self.writer_thread;
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .map_err(|e| ServeError::Task(e.to_string()))?
            .map_err(|_| ServeError::Task("ledger writer panicked".into()))?;
        tracing::info!("credmint stopped");
        served.map_err(|source| ServeError::Listen {
            addr: self.addr,
            source,
        })
    }
}

/// Serves until SIGTERM or SIGINT, then shuts down gracefully. The handlers are installed
/// before the listener announces itself, so a signal sent as soon as "credmint serving"
/// appears is never lost to the default action.
pub async fn run(cfg: Config) -> Result<(), ServeError> {
    let signals = shutdown_signals();
    let running = start(cfg, None).await?;
    // Only now is the appliance ready: listening, start-up checkpoint signed.
    crate::notify::ready(running.addr);
    signals.await;
    tracing::info!("shutdown signal received, draining");
    crate::notify::stopping();
    running.shutdown(Duration::from_secs(10)).await
}

fn shutdown_signals() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let streams = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        match streams {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
