//! The one-screen human summary of an [`AuditReport`].

use std::fmt::Write as _;

use super::{AuditReport, Outcome};

/// Renders the report for a terminal: verdict first, then what was verified.
pub fn render_human(r: &AuditReport) -> String {
    let mut o = String::new();
    let verdict = match r.outcome {
        Outcome::Verified => "VERIFIED",
        Outcome::Violations => "SEMANTIC VIOLATIONS (bytes and signatures verified)",
        Outcome::Tampered => "TAMPERED",
        Outcome::Inconsistent => "INCONSISTENT WITH EARLIER CHECKPOINT",
        Outcome::Unreadable => "UNREADABLE",
    };
    let _ = writeln!(o, "{verdict} (exit {})", r.exit_code);
    if let Some(f) = &r.failure {
        let _ = writeln!(o, "  failed check: {}: {}", f.check, f.message);
    }
    let _ = writeln!(o, "origin:      {}", r.origin.as_deref().unwrap_or("-"));
    let _ = writeln!(
        o,
        "records:     {} verified ({} .. {})",
        r.records,
        r.first_record_time.as_deref().unwrap_or("-"),
        r.last_record_time.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        o,
        "checkpoints: {} verified, latest at size {}",
        r.checkpoints,
        r.latest_checkpoint_size
            .map_or("-".to_owned(), |s| s.to_string())
    );
    let _ = writeln!(o, "root:        {}", r.root);
    let _ = writeln!(o, "ledger key:  genesis {}", r.genesis_ledger_key);
    if r.ledger_key_in_force != r.genesis_ledger_key && !r.ledger_key_in_force.is_empty() {
        let _ = writeln!(o, "             in force {}", r.ledger_key_in_force);
    }
    if r.key_history.is_empty() {
        let _ = writeln!(o, "key history: no rotations");
    } else {
        let _ = writeln!(o, "key history: {} rotation(s)", r.key_history.len());
        for k in r.key_history.iter().take(5) {
            let _ = writeln!(
                o,
                "  record {} {} {}: {}.. -> {}..",
                k.index,
                k.time,
                k.role,
                &k.old_fingerprint[..16],
                &k.new_fingerprint[..16]
            );
        }
    }
    let counts: Vec<String> = r
        .event_counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(o, "events:      {}", counts.join(", "));
    if let Some(s) = &r.stats {
        let _ = writeln!(
            o,
            "integrations: {} ({} active, {} suspended, {} decommissioned); operators {}",
            s.integrations,
            s.integrations_active,
            s.integrations_suspended,
            s.integrations_decommissioned,
            s.operators
        );
        let _ = writeln!(
            o,
            "credentials: {} certificates, {} tokens, {} enrollment tokens, {} ACME accounts ({} EAB keys)",
            s.certificates, s.tokens, s.enrollments, s.acme_accounts, s.acme_eab_keys
        );
    }
    if let Some(s) = &r.since_checkpoint {
        let _ = writeln!(
            o,
            "since checkpoint at size {}: {}",
            s.size,
            if s.consistent {
                "consistent"
            } else {
                "NOT consistent"
            }
        );
        let _ = writeln!(o, "  {}", s.detail);
    }
    if r.violations_total > 0 {
        let _ = writeln!(o, "violations:  {}", r.violations_total);
        for v in r.violations.iter().take(10) {
            let _ = writeln!(o, "  {v}");
        }
        if r.violations_total > 10 {
            let _ = writeln!(
                o,
                "  ... {} more (--json lists the first {})",
                r.violations_total - 10,
                r.violations.len()
            );
        }
    } else if r.stats.is_some() && r.failure.is_none() {
        let _ = writeln!(o, "violations:  none");
    }
    let secs = r.elapsed_ms as f64 / 1000.0;
    if secs > 0.0 {
        let _ = writeln!(
            o,
            "time:        {:.2} s, {:.0} records/s, {:.1} MB/s",
            secs,
            r.records as f64 / secs,
            r.bytes as f64 / secs / 1e6
        );
    }
    o
}
