//! The console page: one server-rendered HTML document. Every value from the ledger or
//! the registry goes through maud's escaping (`(expr)`); nothing is marked pre-escaped
//! except the constant stylesheet.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use super::chart;
use super::format::{age, when, when_rfc3339};
use super::snapshot::{LedgerHealth, Snapshot};
use crate::health::Health;
use crate::wire::InventoryEntry;

/// The page's stylesheet, inline (its hash is in the Content-Security-Policy).
pub const STYLE: &str = include_str!("console.css");
/// Seconds between automatic reloads (a meta refresh: the page runs no script).
pub const REFRESH_SECS: u64 = 30;

/// `viewer`: who is reading (`operator:<name>` or `monitor:<name>`), shown in the header.
pub fn render(s: &Snapshot, origin: &str, viewer: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="refresh" content=(REFRESH_SECS);
                link rel="icon" href="data:,";
                title { "credmint console" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "credmint console" }
                    p .meta {
                        (origin) " · " (when(s.now)) " · reloads every " (REFRESH_SECS) " s · read as "
                        span #viewer { (viewer) }
                    }
                }
                main {
                    (health(&s.health, &s.ledger))
                    section #expiries {
                        h2 { "Expiries, next " (s.expiries.len()) " days" }
                        (chart::expiries(&s.expiries))
                    }
                    (inventory(&s.inventory))
                    (pending(s))
                    (signals(s))
                }
            }
        }
    }
}

fn state_class(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "bad"
    }
}

fn health(h: &Health, ledger: &LedgerHealth) -> Markup {
    html! {
        section #health {
            h2 { "Health" }
            dl .cards {
                div .card {
                    dt { "HSM" }
                    dd #hsm-state class=(state_class(h.hsm.is_ok())) { (h.hsm_state()) }
                    dd .note {
                        @match h.last_probe_age {
                            Some(a) => { "probed " (age(a.as_secs())) " ago" },
                            None => { "no probe yet" },
                        }
                    }
                }
                div .card {
                    dt { "Ledger" }
                    dd #ledger-state class=(state_class(h.ledger_writable)) { (h.ledger_state()) }
                    dd .note { (ledger.size) " records" }
                }
                div .card {
                    dt { "Checkpoint" }
                    @match &ledger.checkpoint {
                        Some(cp) => {
                            dd #checkpoint-age class=(state_class(cp.size == ledger.size)) {
                                (age(cp.age_secs)) " old"
                            }
                            dd .note {
                                (cp.size) " records covered, " (ledger.size.saturating_sub(cp.size)) " not yet"
                            }
                            dd .note { "signer key " @for id in &cp.key_ids { code { (id) } " " } }
                        },
                        None => { dd class="bad" { "none signed" } },
                    }
                }
            }
        }
    }
}

/// A wire enum's name as the JSON API spells it (`routine`, `due_soon`, ...).
fn wire_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

fn inventory(rows: &[InventoryEntry]) -> Markup {
    html! {
        section #inventory {
            h2 { "Inventory (" (rows.len()) ")" }
            @if rows.is_empty() {
                p .empty { "No integrations registered." }
            } @else {
                table {
                    thead { tr {
                        th { "Integration" } th { "Owner" } th { "Class" } th { "Status" }
                        th { "Review" } th .num { "Live certs" } th .num { "Live tokens" }
                        th { "Last issuance" } th { "Flags" }
                    } }
                    tbody {
                        @for row in rows {
                            @let i = &row.integration;
                            tr .integration data-name=(i.name) {
                                td { code { (i.name) } }
                                td { (i.business_owner) br; span .note { (i.technical_owner) } }
                                td { (wire_name(&i.privilege_class)) }
                                td { (wire_name(&i.status)) }
                                td { (wire_name(&row.review_state)) br; span .note { "by " (i.review_by.get(..10).unwrap_or("")) } }
                                td .num { (row.live_certificates) }
                                td .num { (row.live_tokens) }
                                td { (row.last_issuance.as_deref().map_or_else(|| "never".into(), when_rfc3339)) }
                                td { @for flag in &row.flags {
                                    span .flag { (flag) } " "
                                } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn pending(s: &Snapshot) -> Markup {
    html! {
        section #pending {
            h2 { "Awaiting a second operator (" (s.changes.len() + s.operator_requests.len()) ")" }
            @if s.changes.is_empty() && s.operator_requests.is_empty() {
                p .empty { "Nothing pending." }
            }
            @if !s.changes.is_empty() {
                h3 { "Integration changes" }
                table {
                    thead { tr { th .num { "Request" } th { "Integration" } th { "Requested by" } th { "When" } th { "Changes" } th { "Reason" } } }
                    tbody {
                        @for (p, fields) in &s.changes {
                            tr {
                                td .num { (p.index) }
                                td { code { (p.integration) } }
                                td { (p.requester) }
                                td { (when(p.requested_at)) }
                                td { (fields.join(", ")) }
                                td { (p.reason) }
                            }
                        }
                    }
                }
            }
            @if !s.operator_requests.is_empty() {
                h3 { "New operators" }
                table {
                    thead { tr { th .num { "Request" } th { "Operator" } th { "Requested by" } th { "When" } th { "Approval ref" } } }
                    tbody {
                        @for r in &s.operator_requests {
                            tr {
                                td .num { (r.index) }
                                td { code { (r.name) } }
                                td { "operator:" (r.requester) }
                                td { (when(r.requested_at)) }
                                td { (r.approval_ref) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn signals(s: &Snapshot) -> Markup {
    html! {
        section #signals {
            h2 { "Recent signals" }
            @if s.signals.is_empty() {
                p .empty { "No signals in the last " (super::snapshot::SIGNAL_SCAN) " ledger records." }
            } @else {
                table {
                    thead { tr { th { "When" } th { "Kind" } th { "Integration" } th { "Detail" } th .num { "Ledger record" } } }
                    tbody {
                        @for sig in &s.signals {
                            tr {
                                td { (when(sig.at)) }
                                td { span .flag { (sig.kind) } }
                                td { code { (sig.integration) } }
                                td { (sig.detail) }
                                td .num { (sig.index) }
                            }
                        }
                    }
                }
            }
        }
    }
}
