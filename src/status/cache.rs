//! Pre-signed status answers. OCSP responses are cached per CertID (so the hash algorithm
//! the client used is echoed) and the CRL as one DER blob. A background refresher signs
//! answers for newly revoked serials at once, re-signs cached answers at half their
//! validity, and rebuilds the CRL on change and at half its validity, so in the steady
//! state a query reads memory and costs no HSM signature.
//!
//! Requests with a nonce (or several CertIDs) cannot be served from cache: they cost one
//! HSM signature each and share a bounded signing budget; beyond it they get `tryLater`.
//! Nonce-less single requests are never refused for budget reasons once cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::answers::{JsonAnswers, Subject};
use super::crl::{build_crl, CrlEntry};
use super::ocsp::{
    build_response, error_response, parse_request, CertState, ErrorStatus, HashAlg, RequestCertId,
    SigAlg,
};
use crate::app::AppState;
use crate::config::Algorithm;
use crate::registry::Registry;

/// nextUpdate - thisUpdate of OCSP responses.
pub const OCSP_VALIDITY_SECS: u64 = 3600;
/// nextUpdate - thisUpdate of the CRL.
pub const CRL_VALIDITY_SECS: u64 = 3600;
/// Most cached OCSP answers (distinct CertIDs); beyond it the cache is cleared and refilled.
const MAX_CACHED: usize = 200_000;
/// Fresh (uncacheable) OCSP signatures allowed per second.
const SIGNING_BUDGET_PER_SEC: u32 = 200;

struct CachedOcsp {
    id: RequestCertId,
    der: Vec<u8>,
    this_update: u64,
}

/// A signed CRL.
#[derive(Clone)]
pub struct CachedCrl {
    pub der: Vec<u8>,
    pub this_update: u64,
    pub number: u64,
    /// The cache epoch its entries were read at: a revocation since (a higher epoch)
    /// makes it stale for serving.
    pub epoch: u64,
}

/// Cached answers for one serial, keyed by the DER of the CertID they answer.
type AnswersBySerial = HashMap<Vec<u8>, CachedOcsp>;

pub struct StatusCache {
    /// serial -> (CertID DER -> answer).
    ocsp: RwLock<HashMap<Vec<u8>, AnswersBySerial>>,
    /// CA generation -> its latest CRL (one CRL per CA still answering status).
    crl: RwLock<HashMap<u32, CachedCrl>>,
    crl_dirty: AtomicBool,
    /// Serials revoked since the refresher last ran: their answers are pre-signed. Each
    /// with the number of failed attempts so far (retried up to [`PRESIGN_ATTEMPTS`]).
    presign: Mutex<Vec<(Vec<u8>, u32)>>,
    /// Pre-sign and refresh signatures that failed (each failure is logged and retried).
    presign_failures: AtomicU64,
    wake: Notify,
    budget: Mutex<(u64, u32)>,
    /// Bumped by every invalidation: an answer signed from a lookup made before a
    /// revocation must not be cached after it.
    epoch: AtomicU64,
    /// Last CRL number issued per generation (CRL numbers must strictly increase), loaded
    /// from [`CRL_NUMBERS_FILE`] on first use. Held for the whole of a CRL build, so builds
    /// are serialised and the cached CRL's number never goes down.
    crl_numbers: Mutex<Option<HashMap<u32, u64>>>,
    /// Held by query-time CRL builds, so concurrent requests for a stale CRL sign once.
    crl_build: Mutex<()>,
    /// Encoded JSON status answers (`status::answers`).
    pub json: JsonAnswers,
}

#[derive(Debug, thiserror::Error)]
#[error("status cache: {0}")]
pub struct StatusError(pub String);

impl StatusCache {
    /// The issuers are the CA generations of `state.keys` (see `crate::rotation`).
    pub fn new() -> StatusCache {
        StatusCache {
            ocsp: RwLock::new(HashMap::new()),
            crl: RwLock::new(HashMap::new()),
            crl_dirty: AtomicBool::new(true),
            presign: Mutex::new(Vec::new()),
            presign_failures: AtomicU64::new(0),
            wake: Notify::new(),
            budget: Mutex::new((0, 0)),
            epoch: AtomicU64::new(0),
            crl_numbers: Mutex::new(None),
            crl_build: Mutex::new(()),
            json: JsonAnswers::default(),
        }
    }

    /// The set of CAs changed (rotation): rebuild every CRL soon.
    pub fn ca_changed(&self) {
        self.crl_dirty.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Drops cached answers for `serials`, queues their new answers for signing and
    /// schedules a new CRL.
    pub fn invalidate(&self, serials: &[Vec<u8>]) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.json
            .invalidate(serials.iter().cloned().map(Subject::Certificate));
        {
            let mut ocsp = self.ocsp.write().unwrap_or_else(|p| p.into_inner());
            for s in serials {
                ocsp.remove(s);
            }
        }
        self.presign
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(serials.iter().map(|s| (s.clone(), 0)));
        self.crl_dirty.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Drops cached JSON answers for these tokens (tokens have no OCSP or CRL).
    pub fn invalidate_tokens(&self, jtis: &[String]) {
        self.json
            .invalidate(jtis.iter().cloned().map(Subject::Token));
    }

    fn cached(&self, id: &RequestCertId, now: u64) -> Option<(Vec<u8>, u64)> {
        let ocsp = self.ocsp.read().unwrap_or_else(|p| p.into_inner());
        let c = ocsp.get(id.serial())?.get(id.der())?;
        (now < c.this_update + OCSP_VALIDITY_SECS / 2).then(|| (c.der.clone(), c.this_update))
    }

    /// True when a pre-signed (or cached) OCSP answer about `serial` is held.
    pub fn has_cached_answer(&self, serial: &[u8]) -> bool {
        self.ocsp
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(serial)
            .is_some_and(|m| !m.is_empty())
    }

    /// Pre-sign / refresh signatures that failed since start (each is logged and retried).
    pub fn presign_failures(&self) -> u64 {
        self.presign_failures.load(Ordering::Relaxed)
    }

    /// Serials still waiting for their pre-signed answers (including retries).
    pub fn presign_pending(&self) -> usize {
        self.presign.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Caches an answer unless an invalidation happened since `epoch` was read (the
    /// answer may predate a revocation; the next query signs afresh).
    fn store(&self, id: &RequestCertId, der: Vec<u8>, this_update: u64, epoch: u64) {
        let mut ocsp = self.ocsp.write().unwrap_or_else(|p| p.into_inner());
        if self.epoch() != epoch {
            return;
        }
        if ocsp.len() >= MAX_CACHED {
            ocsp.clear();
        }
        ocsp.entry(id.serial().to_vec()).or_default().insert(
            id.der().to_vec(),
            CachedOcsp {
                id: id.clone(),
                der,
                this_update,
            },
        );
    }

    /// Takes one unit of the fresh-signature budget for second `now`.
    fn spend_budget(&self, now: u64) -> bool {
        let mut b = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        if b.0 != now {
            *b = (now, 0);
        }
        if b.1 >= SIGNING_BUDGET_PER_SEC {
            return false;
        }
        b.1 += 1;
        true
    }

    /// The cached CRL of CA generation `generation`.
    pub fn crl(&self, generation: u32) -> Option<CachedCrl> {
        self.crl
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&generation)
            .cloned()
    }
}

impl Default for StatusCache {
    fn default() -> Self {
        StatusCache::new()
    }
}

fn sig_alg(key: &crate::hsm::HsmKey) -> SigAlg {
    match key.algorithm() {
        Algorithm::EcdsaP256 => SigAlg::EcdsaP256Sha256,
        Algorithm::Ed25519 => SigAlg::Ed25519,
    }
}

/// What the ledger says about `serial` for OCSP: never issued is `Unknown`, never `Good`.
fn lookup(state: &AppState, serial: &[u8]) -> Result<CertState, StatusError> {
    let registry = Registry::open(&state.ledger).map_err(|e| StatusError(e.to_string()))?;
    let row = registry
        .certificate(serial)
        .map_err(|e| StatusError(e.to_string()))?;
    Ok(match row {
        None => CertState::Unknown,
        Some(r) => match r.revoked_index {
            None => CertState::Good,
            Some(index) => {
                let revoked_at = state
                    .ledger
                    .record(index)
                    .map_err(|e| StatusError(e.to_string()))?
                    .map(|rec| rec.timestamp_ms / 1000)
                    .unwrap_or(0);
                CertState::Revoked {
                    revoked_at,
                    reason: (r.reason != 0).then_some(r.reason),
                }
            }
        },
    })
}

/// Signs one OCSP response (blocking: HSM).
fn sign_answers(
    state: &AppState,
    ids: &[RequestCertId],
    nonce: Option<&[u8]>,
    now: u64,
) -> Result<Vec<u8>, StatusError> {
    // One response has one signer: the first CA generation any CertID names. CertIDs
    // naming another generation in the same request are answered `unknown`.
    let active = state.keys.current();
    let ca = active
        .status_cas(now)
        .find(|c| ids.iter().any(|id| c.issuer.matches(id)))
        .or_else(|| active.cas.last())
        .ok_or_else(|| StatusError("no CA".into()))?;
    let mut answers = Vec::with_capacity(ids.len());
    for id in ids {
        let known = ca.issuer.matches(id) && !matches!(id.hash(), HashAlg::Unsupported(_));
        let answer = if known {
            lookup(state, id.serial())?
        } else {
            CertState::Unknown
        };
        answers.push((id.clone(), answer));
    }
    let key = ca.key.clone();
    build_response(
        &ca.issuer,
        &answers,
        nonce,
        now,
        now,
        now + OCSP_VALIDITY_SECS,
        sig_alg(&key),
        |tbs| key.sign_x509(tbs),
    )
    .map_err(|e| StatusError(e.to_string()))
}

/// Whether the ledger knows a certificate with this serial.
fn issued(state: &AppState, serial: &[u8]) -> bool {
    Registry::open(&state.ledger)
        .and_then(|r| r.certificate(serial))
        .is_ok_and(|row| row.is_some())
}

/// An OCSP response and whether HTTP caches may keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspAnswer {
    pub der: Vec<u8>,
    /// `Some` only for a successful response without a nonce: HTTP caches may keep it until
    /// `next_update` (RFC 5019 6.2). Non-successful responses (`malformedRequest`,
    /// `tryLater`, `unauthorized`, `internalError`) and nonce responses are `None`: they
    /// must not be cached.
    pub freshness: Option<Freshness>,
    /// OCSPResponseStatus name (`successful`, `tryLater`, ...), for the metrics.
    pub status: &'static str,
}

/// thisUpdate / nextUpdate (Unix seconds) of a cacheable successful response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub this_update: u64,
    pub next_update: u64,
}

impl OcspAnswer {
    /// A non-successful, unsigned response: never cacheable.
    pub fn error(status: ErrorStatus) -> OcspAnswer {
        OcspAnswer {
            der: error_response(status),
            freshness: None,
            status: status.name(),
        }
    }

    fn signed(der: Vec<u8>, this_update: u64, nonce: bool) -> OcspAnswer {
        OcspAnswer {
            der,
            freshness: (!nonce).then_some(Freshness {
                this_update,
                next_update: this_update + OCSP_VALIDITY_SECS,
            }),
            status: "successful",
        }
    }
}

/// Answers one DER OCSP request. Always returns an OCSP response (errors included).
pub async fn answer(state: &AppState, request: &[u8]) -> OcspAnswer {
    let parsed = match parse_request(request) {
        Ok(p) => p,
        Err(e) => return OcspAnswer::error(e.status()),
    };
    if parsed.cert_ids.is_empty() {
        return OcspAnswer::error(ErrorStatus::MalformedRequest);
    }
    let now = state.clock.unix();
    let active = state.keys.current();
    if !active
        .status_cas(now)
        .any(|ca| parsed.cert_ids.iter().any(|id| ca.issuer.matches(id)))
    {
        return OcspAnswer::error(ErrorStatus::Unauthorized);
    }
    // Only answers about certificates we issued are cached: their number is bounded by
    // issuance. Anything else (nonces, several CertIDs, never-issued serials an anonymous
    // client can invent at will) costs a fresh HSM signature from a bounded budget, so
    // OCSP traffic can never starve issuance of the HSM.
    let single = parsed.nonce.is_none() && parsed.cert_ids.len() == 1;
    if single {
        let cached = state.status.cached(&parsed.cert_ids[0], now);
        state.metrics.ocsp.cache(cached.is_some());
        if let Some((der, this_update)) = cached {
            return OcspAnswer::signed(der, this_update, false);
        }
    }
    // The HSM is away: nothing can be signed now (the refresher signs what is missing as
    // soon as it is back).
    if state.hsm.unavailable().is_some() {
        return OcspAnswer::error(ErrorStatus::TryLater);
    }
    let cacheable = single && issued(state, parsed.cert_ids[0].serial());
    if !cacheable && !state.status.spend_budget(now) {
        return OcspAnswer::error(ErrorStatus::TryLater);
    }
    // The same admission gate as issuance: when the HSM is saturated, say tryLater now
    // instead of queueing a signature the client will have given up on.
    let Ok(admitted) = state.admission.try_admit() else {
        return OcspAnswer::error(ErrorStatus::TryLater);
    };
    let epoch = state.status.epoch();
    let st = state.clone();
    let ids = parsed.cert_ids.clone();
    let nonce = parsed.nonce.clone();
    let signed = tokio::task::spawn_blocking(move || {
        let _admitted = admitted;
        sign_answers(&st, &ids, nonce.as_deref(), now)
    })
    .await;
    match signed {
        Ok(Ok(der)) => {
            if cacheable {
                state
                    .status
                    .store(&parsed.cert_ids[0], der.clone(), now, epoch);
            }
            OcspAnswer::signed(der, now, parsed.nonce.is_some())
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "OCSP signing failed");
            OcspAnswer::error(ErrorStatus::TryLater)
        }
        Err(_) => OcspAnswer::error(ErrorStatus::InternalError),
    }
}

/// Builds and caches a new CRL for every CA generation still answering (blocking: HSM).
pub fn rebuild_crls(state: &AppState) -> Result<(), StatusError> {
    // Clear the flag first: a revocation racing with this build sets it again.
    state.status.crl_dirty.store(false, Ordering::Release);
    let now = state.clock.unix();
    let active = state.keys.current();
    let mut live = Vec::new();
    for ca in active.status_cas(now) {
        if let Err(e) = rebuild_crl(state, ca.generation) {
            // Try again on the next pass rather than serve a CRL missing a revocation.
            state.status.crl_dirty.store(true, Ordering::Release);
            return Err(e);
        }
        live.push(ca.generation);
    }
    // Retired generations publish no more CRLs.
    state
        .status
        .crl
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|g, _| live.contains(g));
    Ok(())
}

/// Where the last CRL number issued per CA generation is persisted (in `data_dir`).
pub const CRL_NUMBERS_FILE: &str = "crl-numbers";

fn crl_numbers_path(state: &AppState) -> std::path::PathBuf {
    state.config.data_dir.join(CRL_NUMBERS_FILE)
}

/// Reads `crl-numbers` (`<generation> <last number>` per line); a missing file is empty.
fn load_crl_numbers(path: &std::path::Path) -> Result<HashMap<u32, u64>, StatusError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(StatusError(format!("{}: {e}", path.display()))),
    };
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parsed = line
            .split_once(' ')
            .and_then(|(g, v)| Some((g.parse::<u32>().ok()?, v.trim().parse::<u64>().ok()?)));
        let (g, v) = parsed.ok_or_else(|| {
            StatusError(format!(
                "{} line {}: not `<generation> <number>`",
                path.display(),
                n + 1
            ))
        })?;
        out.insert(g, v);
    }
    Ok(out)
}

/// Writes `crl-numbers` durably (temporary file, fsync, rename, fsync of the directory).
fn store_crl_numbers(
    path: &std::path::Path,
    numbers: &HashMap<u32, u64>,
) -> Result<(), StatusError> {
    use std::io::Write;
    let err = |e: std::io::Error| StatusError(format!("{}: {e}", path.display()));
    let mut entries: Vec<_> = numbers.iter().collect();
    entries.sort();
    let text: String = entries.iter().map(|(g, n)| format!("{g} {n}\n")).collect();
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
    }
    Ok(())
}

/// Builds and caches a new CRL of CA generation `generation` from the revocation
/// projection (blocking: HSM). Serials are unique across generations, so every CRL lists
/// every revoked, unexpired credmint serial.
///
/// CRL numbers strictly increase per generation (RFC 5280 5.2.3), across concurrent builds
/// and restarts: number = max(last issued + 1, Unix time of issue), where "last issued" is
/// persisted in `data_dir/crl-numbers` (fsynced) *before* the CRL is signed. Builds are
/// serialised, so a CRL with a higher number is always built from a later projection and
/// the cached CRL never goes back.
pub fn rebuild_crl(state: &AppState, generation: u32) -> Result<CachedCrl, StatusError> {
    let mut numbers = state
        .status
        .crl_numbers
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let path = crl_numbers_path(state);
    if numbers.is_none() {
        *numbers = Some(load_crl_numbers(&path)?);
    }
    let numbers = numbers.as_mut().expect("loaded above");
    // No CRL number is spent on a signature the HSM cannot make.
    if let Some(down) = state.hsm.unavailable() {
        return Err(StatusError(down.to_string()));
    }
    // Read before the registry: a revocation committed after this read bumps the epoch
    // and marks this CRL stale.
    let epoch = state.status.epoch();
    let now = state.clock.unix();
    let active = state.keys.current();
    let ca = active
        .ca_generation(generation, now)
        .ok_or_else(|| StatusError(format!("no CA generation {generation}")))?;
    let rows = Registry::open(&state.ledger)
        .and_then(|r| r.revoked_unexpired(now))
        .map_err(|e| StatusError(e.to_string()))?;
    let entries: Vec<CrlEntry> = rows
        .into_iter()
        .map(|r| CrlEntry {
            serial: r.serial,
            revoked_at: r.revoked_at,
            reason: (r.reason != 0).then_some(r.reason),
        })
        .collect();
    let last = numbers.get(&ca.generation).copied().unwrap_or(0);
    let number = (last + 1).max(now);
    let mut next = numbers.clone();
    next.insert(ca.generation, number);
    store_crl_numbers(&path, &next)?;
    *numbers = next;
    let der = build_crl(
        &ca.root.der,
        &ca.key,
        &ca.crl_url,
        &entries,
        now,
        now + CRL_VALIDITY_SECS,
        number,
    )
    .map_err(|e| StatusError(e.to_string()))?;
    let crl = CachedCrl {
        der,
        this_update: now,
        number,
        epoch,
    };
    let mut cached = state.status.crl.write().unwrap_or_else(|p| p.into_inner());
    if cached.get(&generation).is_none_or(|c| c.number < number) {
        cached.insert(generation, crl.clone());
    }
    Ok(crl)
}

/// The CRL of CA generation `generation`: the cached one unless a revocation committed
/// since it was built (then one is built now, so a durable revocation is never missing
/// from a served CRL; concurrent requests share that one build).
pub async fn current_crl(state: &AppState, generation: u32) -> Result<CachedCrl, StatusError> {
    let fresh = move |state: &AppState| {
        state
            .status
            .crl(generation)
            .filter(|c| c.epoch == state.status.epoch())
    };
    if let Some(c) = fresh(state) {
        return Ok(c);
    }
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        // Builds are serialised: whoever waited may find a fresh one built meanwhile.
        let _one_build = st
            .status
            .crl_build
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match fresh(&st) {
            Some(c) => Ok(c),
            None => rebuild_crl(&st, generation),
        }
    })
    .await
    .map_err(|e| StatusError(e.to_string()))?
}

/// How often a failed pre-signature is attempted before it is left to query time (where
/// an uncached answer is simply signed fresh).
pub const PRESIGN_ATTEMPTS: u32 = 5;
/// Delay before the refresher retries failed pre-signatures.
const RETRY_DELAY: Duration = Duration::from_secs(2);

/// Signs and caches the nonce-less answer for `id` (blocking: HSM).
fn presign_one(
    state: &AppState,
    id: &RequestCertId,
    now: u64,
    epoch: u64,
) -> Result<(), StatusError> {
    let der = sign_answers(state, std::slice::from_ref(id), None, now)?;
    state.status.store(id, der, now, epoch);
    Ok(())
}

/// One refresher pass: pre-sign answers for revoked serials, refresh stale cached answers,
/// rebuild the CRL when dirty or past half its validity. A failure for one serial never
/// stops the others: it is logged, counted and retried on a later pass. Returns whether
/// retries are pending.
fn refresh(state: &AppState) -> Result<bool, StatusError> {
    if state.hsm.unavailable().is_some() {
        // Everything queued stays queued (no attempt is spent) and the CRL stays dirty:
        // the next pass after the HSM is back signs it all.
        return Ok(true);
    }
    let now = state.clock.unix();
    let revoked: Vec<(Vec<u8>, u32)> = std::mem::take(
        &mut *state
            .status
            .presign
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    let active = state.keys.current();
    let epoch = state.status.epoch();
    let mut retry = Vec::new();
    for (serial, attempts) in revoked {
        // openssl and most clients send SHA-1 CertIDs; pre-sign that form, for every CA
        // generation still answering (the serial's issuer is one of them).
        let mut failed = None;
        for ca in active.status_cas(now) {
            let done = ca
                .issuer
                .cert_id(HashAlg::Sha1, &serial)
                .map_err(|e| StatusError(e.to_string()))
                .and_then(|id| presign_one(state, &id, now, epoch));
            if let Err(e) = done {
                failed = Some(e);
            }
        }
        if let Some(e) = failed {
            state
                .status
                .presign_failures
                .fetch_add(1, Ordering::Relaxed);
            if state.hsm.unavailable().is_some() {
                // The HSM went away: not this serial's fault, keep it for after the outage.
                retry.push((serial, attempts));
                continue;
            }
            let attempts = attempts + 1;
            if attempts < PRESIGN_ATTEMPTS {
                tracing::warn!(serial = %hex::encode(&serial), attempts, error = %e,
                    "OCSP pre-signing failed; will retry");
                retry.push((serial, attempts));
            } else {
                tracing::error!(serial = %hex::encode(&serial), attempts, error = %e,
                    "OCSP pre-signing failed; giving up, answers will be signed on request");
            }
        }
    }
    let stale: Vec<RequestCertId> = {
        let ocsp = state.status.ocsp.read().unwrap_or_else(|p| p.into_inner());
        ocsp.values()
            .flat_map(|m| m.values())
            .filter(|c| now >= c.this_update + OCSP_VALIDITY_SECS / 2)
            .map(|c| c.id.clone())
            .collect()
    };
    for id in stale {
        let epoch = state.status.epoch();
        if let Err(e) = presign_one(state, &id, now, epoch) {
            // The stale answer stays cached until it is past half-life; a query then
            // signs afresh. The next pass tries again.
            state
                .status
                .presign_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(serial = %hex::encode(id.serial()), error = %e,
                "OCSP answer refresh failed; will retry");
        }
    }
    let pending = !retry.is_empty();
    if pending {
        state
            .status
            .presign
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(retry);
    }
    let crl_old = active.status_cas(now).any(|ca| {
        state
            .status
            .crl(ca.generation)
            .is_none_or(|c| now >= c.this_update + CRL_VALIDITY_SECS / 2)
    });
    if state.status.crl_dirty.load(Ordering::Acquire) || crl_old {
        rebuild_crls(state)?;
    }
    Ok(pending)
}

/// Runs the refresher until `stop` flips. Besides its schedule it runs as soon as the HSM
/// is back after an outage: the answers and CRLs revocations made stale meanwhile are
/// signed then.
pub async fn run_refresher(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut recoveries = state.hsm.recoveries();
    loop {
        let st = state.clone();
        let retry = match tokio::task::spawn_blocking(move || refresh(&st)).await {
            Ok(Ok(pending)) => pending,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "status refresh failed");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "status refresh panicked");
                true
            }
        };
        let pause = if retry {
            RETRY_DELAY
        } else {
            Duration::from_secs(60)
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = state.status.wake.notified() => {}
            Ok(()) = recoveries.changed() => {
                tracing::info!(
                    pending = state.status.presign_pending(),
                    crl_stale = state.status.crl_dirty.load(Ordering::Acquire),
                    "HSM back: signing the status answers and CRLs it missed"
                );
            }
            _ = stop.changed() => break,
        }
    }
}
