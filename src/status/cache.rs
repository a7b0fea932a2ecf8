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
}

/// Cached answers for one serial, keyed by the DER of the CertID they answer.
type AnswersBySerial = HashMap<Vec<u8>, CachedOcsp>;

pub struct StatusCache {
    /// serial -> (CertID DER -> answer).
    ocsp: RwLock<HashMap<Vec<u8>, AnswersBySerial>>,
    /// CA generation -> its latest CRL (one CRL per CA still answering status).
    crl: RwLock<HashMap<u32, CachedCrl>>,
    crl_dirty: AtomicBool,
    /// Serials revoked since the refresher last ran: their answers are pre-signed.
    presign: Mutex<Vec<Vec<u8>>>,
    wake: Notify,
    budget: Mutex<(u64, u32)>,
    /// Bumped by every invalidation: an answer signed from a lookup made before a
    /// revocation must not be cached after it.
    epoch: AtomicU64,
    /// Last CRL number issued per generation (CRL numbers must strictly increase).
    crl_numbers: Mutex<HashMap<u32, u64>>,
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
            wake: Notify::new(),
            budget: Mutex::new((0, 0)),
            epoch: AtomicU64::new(0),
            crl_numbers: Mutex::new(HashMap::new()),
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
        {
            let mut ocsp = self.ocsp.write().unwrap_or_else(|p| p.into_inner());
            for s in serials {
                ocsp.remove(s);
            }
        }
        self.presign
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(serials.iter().cloned());
        self.crl_dirty.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn cached(&self, id: &RequestCertId, now: u64) -> Option<Vec<u8>> {
        let ocsp = self.ocsp.read().unwrap_or_else(|p| p.into_inner());
        let c = ocsp.get(id.serial())?.get(id.der())?;
        (now < c.this_update + OCSP_VALIDITY_SECS / 2).then(|| c.der.clone())
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
    let registry =
        Registry::open(state.ledger.database()).map_err(|e| StatusError(e.to_string()))?;
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
    Registry::open(state.ledger.database())
        .and_then(|r| r.certificate(serial))
        .is_ok_and(|row| row.is_some())
}

/// Answers one DER OCSP request. Always returns an OCSP response (errors included).
pub async fn answer(state: &AppState, request: &[u8]) -> Vec<u8> {
    let parsed = match parse_request(request) {
        Ok(p) => p,
        Err(e) => return error_response(e.status()),
    };
    if parsed.cert_ids.is_empty() {
        return error_response(ErrorStatus::MalformedRequest);
    }
    let now = state.clock.unix();
    let active = state.keys.current();
    if !active
        .status_cas(now)
        .any(|ca| parsed.cert_ids.iter().any(|id| ca.issuer.matches(id)))
    {
        return error_response(ErrorStatus::Unauthorized);
    }
    // Only answers about certificates we issued are cached: their number is bounded by
    // issuance. Anything else (nonces, several CertIDs, never-issued serials an anonymous
    // client can invent at will) costs a fresh HSM signature from a bounded budget, so
    // OCSP traffic can never starve issuance of the HSM.
    let single = parsed.nonce.is_none() && parsed.cert_ids.len() == 1;
    if single {
        if let Some(der) = state.status.cached(&parsed.cert_ids[0], now) {
            return der;
        }
    }
    let cacheable = single && issued(state, parsed.cert_ids[0].serial());
    if !cacheable && !state.status.spend_budget(now) {
        return error_response(ErrorStatus::TryLater);
    }
    let epoch = state.status.epoch();
    let st = state.clone();
    let ids = parsed.cert_ids.clone();
    let nonce = parsed.nonce.clone();
    let signed =
        tokio::task::spawn_blocking(move || sign_answers(&st, &ids, nonce.as_deref(), now)).await;
    match signed {
        Ok(Ok(der)) => {
            if cacheable {
                state
                    .status
                    .store(&parsed.cert_ids[0], der.clone(), now, epoch);
            }
            der
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "OCSP signing failed");
            error_response(ErrorStatus::TryLater)
        }
        Err(_) => error_response(ErrorStatus::InternalError),
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

/// Builds and caches a new CRL of CA generation `generation` from the revocation
/// projection (blocking: HSM). Serials are unique across generations, so every CRL lists
/// every revoked, unexpired credmint serial.
pub fn rebuild_crl(state: &AppState, generation: u32) -> Result<CachedCrl, StatusError> {
    let now = state.clock.unix();
    let active = state.keys.current();
    let ca = active
        .ca_generation(generation, now)
        .ok_or_else(|| StatusError(format!("no CA generation {generation}")))?;
    let rows = Registry::open(state.ledger.database())
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
    // Strictly increasing per generation (RFC 5280 5.2.3), also across restarts: at least
    // the current Unix time, and above the last number this process issued.
    let number = {
        let mut numbers = state
            .status
            .crl_numbers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let last = numbers.get(&ca.generation).copied().unwrap_or(0);
        let next = (last + 1).max(now);
        numbers.insert(ca.generation, next);
        next
    };
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
    };
    state
        .status
        .crl
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(generation, crl.clone());
    Ok(crl)
}

/// The CRL of CA generation `generation`, building one if none is cached yet.
pub async fn current_crl(state: &AppState, generation: u32) -> Result<CachedCrl, StatusError> {
    if let Some(c) = state.status.crl(generation) {
        return Ok(c);
    }
    let st = state.clone();
    tokio::task::spawn_blocking(move || rebuild_crl(&st, generation))
        .await
        .map_err(|e| StatusError(e.to_string()))?
}

/// One refresher pass: pre-sign answers for revoked serials, refresh stale cached answers,
/// rebuild the CRL when dirty or past half its validity.
fn refresh(state: &AppState) -> Result<(), StatusError> {
    let now = state.clock.unix();
    let revoked: Vec<Vec<u8>> = std::mem::take(
        &mut *state
            .status
            .presign
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    let active = state.keys.current();
    let epoch = state.status.epoch();
    for serial in revoked {
        // openssl and most clients send SHA-1 CertIDs; pre-sign that form, for every CA
        // generation still answering (the serial's issuer is one of them).
        for ca in active.status_cas(now) {
            let id = ca
                .issuer
                .cert_id(HashAlg::Sha1, &serial)
                .map_err(|e| StatusError(e.to_string()))?;
            let der = sign_answers(state, std::slice::from_ref(&id), None, now)?;
            state.status.store(&id, der, now, epoch);
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
        let der = sign_answers(state, std::slice::from_ref(&id), None, now)?;
        state.status.store(&id, der, now, epoch);
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
    Ok(())
}

/// Runs the refresher until `stop` flips.
pub async fn run_refresher(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        let st = state.clone();
        match tokio::task::spawn_blocking(move || refresh(&st)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "status refresh failed"),
            Err(e) => tracing::error!(error = %e, "status refresh panicked"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = state.status.wake.notified() => {}
            _ = stop.changed() => break,
        }
    }
}
