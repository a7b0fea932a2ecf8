//! One `add-checkpoint` call (C2SP tlog-witness): the request body, and what the answer
//! means. Pure functions plus one HTTP round trip; the task in [`super`] decides when.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use credmint_ledger::cosignature::{self, WitnessKey};
use credmint_ledger::Hash;

/// The spec's bound on consistency proof lines.
pub const MAX_PROOF_LINES: usize = 63;
/// Longest answer read from a witness (signature lines or a size).
const MAX_ANSWER: usize = 64 * 1024;

/// Why a submission got no cosignature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("witness unreachable: {0}")]
    Unreachable(String),
    /// 409 with the size the witness holds (it differs from the `old` we sent).
    #[error("witness holds tree size {0}")]
    Conflict(u64),
    #[error("witness answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("witness answer is not a valid cosignature: {0}")]
    BadAnswer(String),
}

impl SubmitError {
    /// The `kind` label of `credmint_witness_failures_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            SubmitError::Unreachable(_) => "unreachable",
            SubmitError::Conflict(_) => "conflict",
            SubmitError::Refused { .. } => "refused",
            SubmitError::BadAnswer(_) => "bad_answer",
        }
    }
}

/// The request body: `old <size>`, the proof's hashes in base64, an empty line, the
/// signed checkpoint.
pub fn body(old: u64, proof: &[Hash], checkpoint: &str) -> String {
    let mut out = format!("old {old}\n");
    for h in proof {
        out.push_str(&B64.encode(h));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(checkpoint);
    out
}

/// The tree size in a 409 answer (`text/x.tlog.size`: decimal and a newline).
pub fn conflict_size(answer: &str) -> Option<u64> {
    let digits = answer.strip_suffix('\n').unwrap_or(answer);
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    digits.parse().ok()
}

/// The cosignature lines of `witness` in a 200 answer to `checkpoint`, verified. Lines
/// by other keys are dropped (the spec says to ignore them).
pub fn cosignatures(
    witness: &WitnessKey,
    checkpoint: &str,
    answer: &str,
) -> Result<String, SubmitError> {
    let bad = |m: String| SubmitError::BadAnswer(m);
    if !answer.ends_with('\n') || answer.lines().any(|l| !l.starts_with('\u{2014}')) {
        return Err(bad("not a sequence of note signature lines".into()));
    }
    let mine: String = answer
        .split_inclusive('\n')
        .filter(|l| {
            l.strip_prefix("\u{2014} ")
                .and_then(|r| r.split_once(' '))
                .is_some_and(|(name, _)| name == witness.name)
        })
        .collect();
    let note = format!("{checkpoint}{mine}");
    let found = cosignature::verify(&note, std::slice::from_ref(witness))
        .map_err(|e| bad(e.to_string()))?;
    if found.is_empty() {
        return Err(bad(format!("no cosignature by {}", witness.name)));
    }
    Ok(mine)
}

/// POSTs to `<url>/add-checkpoint`; the verified cosignature lines.
pub async fn add_checkpoint(
    http: &reqwest::Client,
    url: &str,
    witness: &WitnessKey,
    old: u64,
    proof: &[Hash],
    checkpoint: &str,
) -> Result<String, SubmitError> {
    let endpoint = format!("{}/add-checkpoint", url.trim_end_matches('/'));
    let response = http
        .post(&endpoint)
        .body(body(old, proof, checkpoint))
        .send()
        .await
        .map_err(|e| SubmitError::Unreachable(e.to_string()))?;
    let status = response.status().as_u16();
    // Read at most MAX_ANSWER bytes: a witness is a remote party, not a trusted one.
    let mut response = response;
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| SubmitError::Unreachable(e.to_string()))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_ANSWER {
            return Err(SubmitError::BadAnswer(format!(
                "answer longer than {MAX_ANSWER} bytes"
            )));
        }
    }
    let answer = String::from_utf8_lossy(&bytes).into_owned();
    match status {
        200 => cosignatures(witness, checkpoint, &answer),
        409 => Err(conflict_size(&answer)
            .map(SubmitError::Conflict)
            .unwrap_or_else(|| SubmitError::BadAnswer(format!("409 without a size: {answer:?}")))),
        _ => Err(SubmitError::Refused {
            status,
            body: answer.chars().take(200).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credmint_ledger::signer::DalekSigner;
    use credmint_ledger::Signer;

    const CHECKPOINT_BODY: &str =
        "example.com/log\n3\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn the_body_follows_the_spec() {
        let b = body(2, &[[0u8; 32], [0xffu8; 32]], "cp\n\n— x y\n");
        assert_eq!(
            b,
            "old 2\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n//////////////////////////////////////////8=\n\ncp\n\n— x y\n"
        );
        assert_eq!(body(0, &[], "cp\n"), "old 0\n\ncp\n");
    }

    #[test]
    fn conflict_sizes_are_strict_decimals() {
        assert_eq!(conflict_size("17\n"), Some(17));
        assert_eq!(conflict_size("0\n"), Some(0));
        for bad in ["", "\n", "017\n", "x\n", "-1\n", "1 \n"] {
            assert_eq!(conflict_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_the_witness_own_verified_lines_are_kept() {
        let log = DalekSigner::from_seed([1; 32]);
        let checkpoint =
            credmint_ledger::note::sign_note(CHECKPOINT_BODY, "example.com/log", &log).unwrap();
        let w = DalekSigner::from_seed([2; 32]);
        let key = WitnessKey::new("w.example/1", w.public_key()).unwrap();
        let other = DalekSigner::from_seed([3; 32]);
        let mine = cosignature::cosign(CHECKPOINT_BODY, &key.name, &w, 1_700_000_000).unwrap();
        let theirs =
            cosignature::cosign(CHECKPOINT_BODY, "w.example/2", &other, 1_700_000_000).unwrap();
        let got = cosignatures(&key, &checkpoint, &format!("{theirs}{mine}")).unwrap();
        assert_eq!(got, mine);
        assert!(cosignatures(&key, &checkpoint, &theirs).is_err());
        assert!(cosignatures(&key, &checkpoint, "hello\n").is_err());
        // A line by the witness's name over another checkpoint is refused.
        let forged = cosignature::cosign("example.com/log\n4\nAAAA\n", &key.name, &w, 1).unwrap();
        assert!(cosignatures(&key, &checkpoint, &forged).is_err());
    }
}
