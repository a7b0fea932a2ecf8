//! Witness cosignatures (C2SP tlog-witness, tlog-cosignature): after each checkpoint, the
//! appliance submits it with a consistency proof to every configured witness and keeps the
//! cosignatures they return, so relying parties and auditors can require that independent
//! witnesses saw the same history (no split view, no rollback).
//!
//! A task of its own, woken by the checkpointer's signed-size channel, like the tiles
//! publisher: issuance never waits on a witness. Each witness is tracked by the size it
//! last cosigned (0 at start: the first answer, a 409, tells the real one). A witness that
//! is down is retried every [`RETRY`]; one that says it holds a larger tree than this
//! ledger has is a fork or a rollback from its point of view, logged as an error and
//! retried only when the ledger grows past it. The newest checkpoint with the
//! cosignatures collected for it is served at `GET /v1/ledger/checkpoint/cosigned`.

pub mod submit;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use credmint_ledger::cosignature::WitnessKey;
use serde::Deserialize;
use tokio::sync::watch;

use crate::app::AppState;
use crate::checkpointer::checkpoint_size;
use submit::{add_checkpoint, SubmitError};

/// Pause before retrying witnesses that failed, when no new checkpoint comes sooner.
pub const RETRY: Duration = Duration::from_secs(10);
/// Per-request timeout (connect and answer).
const TIMEOUT: Duration = Duration::from_secs(10);

/// One `[[witness]]` of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// The witness's verifier key, `name+hex8+base64(0x04 || Ed25519 key)`.
    pub vkey: String,
    /// Its submission prefix: `add-checkpoint` is POSTed to `<url>/add-checkpoint`.
    pub url: String,
}

/// A configured witness, its key parsed.
#[derive(Debug, Clone)]
pub struct Witness {
    pub key: WitnessKey,
    pub url: String,
}

/// Parses the `[[witness]]` entries; a malformed key or URL stops start-up.
pub fn parse(configs: &[WitnessConfig]) -> Result<Vec<Witness>, String> {
    let mut out: Vec<Witness> = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let key = WitnessKey::parse(&c.vkey).map_err(|e| format!("witness[{i}].vkey: {e}"))?;
        if !(c.url.starts_with("https://") || c.url.starts_with("http://")) {
            return Err(format!("witness[{i}].url: must be an http(s) URL"));
        }
        if out.iter().any(|w| w.key.name == key.name) {
            return Err(format!("witness[{i}]: {} is listed twice", key.name));
        }
        out.push(Witness {
            key,
            url: c.url.clone(),
        });
    }
    Ok(out)
}

/// The newest checkpoint with its cosignatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The signed checkpoint followed by the cosignature lines.
    pub note: String,
    pub size: u64,
    /// Names of the witnesses that cosigned it.
    pub witnesses: Vec<String>,
}

/// Shared between the task and the read route.
pub type CosignedSlot = Arc<RwLock<Option<Cosigned>>>;

/// The cosigned checkpoint kept in `path` by an earlier run, if it still holds: signed by
/// this ledger's key in force, its root equal to the ledger's at its size, and carrying
/// cosignatures by configured witnesses (only those lines are kept). Anything else is
/// ignored with a warning: the next checkpoint is cosigned anew anyway.
pub fn load(path: &std::path::Path, state: &AppState, witnesses: &[Witness]) -> Option<Cosigned> {
    let text = std::fs::read_to_string(path).ok()?;
    let keys: Vec<WitnessKey> = witnesses.iter().map(|w| w.key.clone()).collect();
    let checked = (|| -> Result<Cosigned, String> {
        let origin = state.ledger.origin().to_string();
        let key = credmint_ledger::Signer::public_key(&state.keys.current().keys.ledger);
        let cp =
            credmint_ledger::checkpoint::open(&text, &origin, &key).map_err(|e| e.to_string())?;
        let root = state.ledger.root_at(cp.size).map_err(|e| e.to_string())?;
        if root != cp.root {
            return Err(format!(
                "its root differs from the ledger's at size {}",
                cp.size
            ));
        }
        let found =
            credmint_ledger::cosignature::verify(&text, &keys).map_err(|e| e.to_string())?;
        if found.is_empty() {
            return Err("no cosignature by a configured witness".into());
        }
        Ok(Cosigned {
            note: text.clone(),
            size: cp.size,
            witnesses: found.into_iter().map(|c| c.witness).collect(),
        })
    })();
    match checked {
        Ok(c) => Some(c),
        Err(why) => {
            tracing::warn!(path = %path.display(), %why, "kept cosigned checkpoint ignored");
            None
        }
    }
}

/// What the task knows about one witness.
#[derive(Debug, Default, Clone)]
struct Known {
    /// The size the witness last cosigned (or told us it holds).
    size: u64,
    /// Its cosignature lines for the checkpoint of `size`, if it cosigned that one.
    lines: Option<(u64, String)>,
}

/// Submits `checkpoint` (of `size`) to `w`, following one 409 to the witness's size.
async fn submit_one(
    state: &AppState,
    http: &reqwest::Client,
    w: &Witness,
    known: &mut Known,
    checkpoint: &str,
    size: u64,
) -> Result<(), SubmitError> {
    for _ in 0..2 {
        let old = known.size;
        if old > size {
            return Err(SubmitError::Conflict(old));
        }
        let proof = if old == 0 {
            Vec::new()
        } else {
            let ledger = state.ledger.clone();
            tokio::task::spawn_blocking(move || ledger.consistency_proof(old, size))
                .await
                .map_err(|e| SubmitError::Unreachable(e.to_string()))?
                .map_err(|e| SubmitError::Unreachable(format!("consistency proof: {e}")))?
        };
        match add_checkpoint(http, &w.url, &w.key, old, &proof, checkpoint).await {
            Ok(lines) => {
                known.size = size;
                known.lines = Some((size, lines));
                return Ok(());
            }
            Err(SubmitError::Conflict(theirs)) if theirs != old => known.size = theirs,
            Err(e) => return Err(e),
        }
    }
    Err(SubmitError::Conflict(known.size))
}

/// Runs until `stop` flips.
pub async fn run(
    state: AppState,
    witnesses: Vec<Witness>,
    slot: CosignedSlot,
    mut stop: watch::Receiver<bool>,
) {
    let http = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("credmint/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "witness client unavailable; no cosignatures");
            return;
        }
    };
    let mut signed = state.checkpoints.subscribe();
    let mut known: Vec<Known> = vec![Known::default(); witnesses.len()];
    loop {
        let mut pending = false;
        if let Some(note) = state.latest_checkpoint() {
            let size = checkpoint_size(&note).unwrap_or(0);
            // All witnesses at once: one that does not answer delays none of the others.
            let rounds = witnesses.iter().zip(known.iter_mut()).map(|(w, k)| {
                let (state, http, note) = (&state, &http, &note);
                async move {
                    if matches!(&k.lines, Some((s, _)) if *s == size) {
                        return true;
                    }
                    let metrics = &state.metrics.ledger;
                    match submit_one(state, http, w, k, note, size).await {
                        Ok(()) => {
                            metrics.witness_cosigned(&w.key.name, size);
                            tracing::info!(witness = %w.key.name, size, "checkpoint cosigned");
                            true
                        }
                        Err(SubmitError::Conflict(theirs)) if theirs > size => {
                            metrics.witness_failed(&w.key.name, "ahead");
                            tracing::error!(
                                witness = %w.key.name, size, theirs,
                                "witness holds a larger tree than this ledger: fork or rollback seen from outside"
                            );
                            true
                        }
                        Err(e) => {
                            metrics.witness_failed(&w.key.name, e.kind());
                            tracing::warn!(witness = %w.key.name, size, error = %e, "witness did not cosign; retrying");
                            false
                        }
                    }
                }
            });
            pending = !futures_util::future::join_all(rounds)
                .await
                .into_iter()
                .all(|ok| ok);
            let mut cosigned = Cosigned {
                note,
                size,
                witnesses: Vec::new(),
            };
            for (w, k) in witnesses.iter().zip(&known) {
                if let Some((s, lines)) = &k.lines {
                    if *s == size {
                        cosigned.note.push_str(lines);
                        cosigned.witnesses.push(w.key.name.clone());
                    }
                }
            }
            let newer = slot
                .read()
                .map(|s| s.as_ref().is_none_or(|c| c != &cosigned))
                .unwrap_or(false);
            if !cosigned.witnesses.is_empty() && newer {
                // Kept for the next start; a failed write costs only that.
                let path = state.config.cosigned_checkpoint_path();
                if let Err(e) =
                    crate::fsutil::write_atomically(&path, cosigned.note.as_bytes(), 0o644)
                {
                    tracing::warn!(path = %path.display(), error = %e, "cosigned checkpoint not kept");
                }
                if let Ok(mut s) = slot.write() {
                    *s = Some(cosigned);
                }
            }
        }
        tokio::select! {
            changed = signed.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(RETRY), if pending => {}
            _ = stop.changed() => break,
        }
    }
}
