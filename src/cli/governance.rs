//! Governance verbs: `credmint integrations list` (inventory table) and
//! `credmint integration change|changes|approve|recertify|decommission`.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::{print_json, CliError, Conn};
use crate::client::OperatorClient;
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum GovernanceCommand {
    /// Change an integration: narrowing and owner changes apply at once; any increase of
    /// authority (or a new purpose) becomes a request another operator must approve.
    Change(Box<ChangeArgs>),
    /// List change requests awaiting approval.
    Changes {
        #[command(flatten)]
        conn: Conn,
    },
    /// Approve another operator's change request (by its ledger index).
    Approve {
        index: u64,
        #[arg(long)]
        approval_ref: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Confirm the integration is still needed and move its review-by date.
    Recertify {
        name: String,
        /// YYYY-MM-DD or RFC 3339; at most the class limit from now.
        #[arg(long)]
        review_by: String,
        #[arg(long)]
        reference: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Revoke every live credential and retire the name for good.
    Decommission {
        name: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, clap::Args)]
pub struct ChangeArgs {
    name: String,
    /// Why (recorded in the ledger).
    #[arg(long)]
    reason: String,
    /// New scope list; repeat for several.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    #[arg(long)]
    max_ttl: Option<u64>,
    /// routine or privileged.
    #[arg(long)]
    class: Option<String>,
    /// New DNS name list; repeat for several.
    #[arg(long = "dns")]
    dns_names: Vec<String>,
    /// Remove every DNS name.
    #[arg(long, conflicts_with = "dns_names")]
    no_dns: bool,
    /// Allow (true) or forbid (false) serverAuth.
    #[arg(long)]
    server_auth: Option<bool>,
    #[arg(long)]
    business_owner: Option<String>,
    #[arg(long)]
    technical_owner: Option<String>,
    #[arg(long)]
    purpose: Option<String>,
    #[arg(long)]
    approval_ref: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, Subcommand)]
pub enum IntegrationsCommand {
    /// Inventory: owner, purpose, class, scopes, live credentials, last issuance,
    /// review-by, status and flags.
    List {
        /// Only integrations past review-by.
        #[arg(long)]
        overdue: bool,
        /// Only integrations without issuance for `signals.dormant_after_days`.
        #[arg(long)]
        dormant: bool,
        /// Only privileged integrations.
        #[arg(long)]
        privileged: bool,
        /// Print the JSON answer instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

fn client(cfg: &Config, conn: &Conn) -> Result<OperatorClient, CliError> {
    Ok(OperatorClient::new(&conn.target(cfg))?)
}

pub async fn run(cfg: &Config, cmd: &GovernanceCommand) -> Result<(), CliError> {
    let v = match cmd {
        GovernanceCommand::Change(args) => {
            let a = args.as_ref();
            let mut body = Map::new();
            body.insert("reason".into(), json!(a.reason));
            if !a.scopes.is_empty() {
                body.insert("scopes".into(), json!(a.scopes));
            }
            if !a.dns_names.is_empty() || a.no_dns {
                body.insert("dns_names".into(), json!(a.dns_names));
            }
            let optional = [
                ("max_ttl_secs", a.max_ttl.map(|v| json!(v))),
                ("privilege_class", a.class.as_ref().map(|v| json!(v))),
                ("allow_server_auth", a.server_auth.map(|v| json!(v))),
                (
                    "business_owner",
                    a.business_owner.as_ref().map(|v| json!(v)),
                ),
                (
                    "technical_owner",
                    a.technical_owner.as_ref().map(|v| json!(v)),
                ),
                ("purpose", a.purpose.as_ref().map(|v| json!(v))),
                ("approval_ref", a.approval_ref.as_ref().map(|v| json!(v))),
            ];
            for (k, v) in optional {
                if let Some(v) = v {
                    body.insert(k.into(), v);
                }
            }
            let path = format!("/v1/admin/integrations/{}/changes", a.name);
            client(cfg, &a.conn)?
                .call(Method::POST, &path, Some(&Value::Object(body)))
                .await?
        }
        GovernanceCommand::Changes { conn } => {
            client(cfg, conn)?
                .call(Method::GET, "/v1/admin/changes", None)
                .await?
        }
        GovernanceCommand::Approve {
            index,
            approval_ref,
            conn,
        } => {
            client(cfg, conn)?
                .call(
                    Method::POST,
                    &format!("/v1/admin/changes/{index}/approve"),
                    Some(&json!({ "approval_ref": approval_ref })),
                )
                .await?
        }
        GovernanceCommand::Recertify {
            name,
            review_by,
            reference,
            conn,
        } => {
            client(cfg, conn)?
                .call(
                    Method::POST,
                    &format!("/v1/admin/integrations/{name}/recertify"),
                    Some(&json!({ "review_by": review_by, "reference": reference })),
                )
                .await?
        }
        GovernanceCommand::Decommission { name, reason, conn } => {
            client(cfg, conn)?
                .call(
                    Method::POST,
                    &format!("/v1/admin/integrations/{name}/decommission"),
                    Some(&json!({ "reason": reason })),
                )
                .await?
        }
    };
    print_json(&v);
    Ok(())
}

pub async fn integrations(cfg: &Config, cmd: IntegrationsCommand) -> Result<(), CliError> {
    let IntegrationsCommand::List {
        overdue,
        dormant,
        privileged,
        json,
        conn,
    } = cmd;
    let filters: Vec<&str> = [
        (overdue, "overdue=true"),
        (dormant, "dormant=true"),
        (privileged, "privileged=true"),
    ]
    .into_iter()
    .filter_map(|(on, q)| on.then_some(q))
    .collect();
    let mut path = "/v1/admin/integrations".to_string();
    if !filters.is_empty() {
        path = format!("{path}?{}", filters.join("&"));
    }
    let v = client(cfg, &conn)?.call(Method::GET, &path, None).await?;
    if json {
        print_json(&v);
    } else {
        print!("{}", table(&v));
    }
    Ok(())
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(cell).collect();
            if parts.is_empty() {
                "-".into()
            } else {
                parts.join(",")
            }
        }
        other => other.to_string(),
    }
}

fn clip(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        s
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('~');
        out
    }
}

/// The inventory as an aligned text table.
pub fn table(v: &Value) -> String {
    const HEAD: [&str; 11] = [
        "NAME",
        "STATUS",
        "CLASS",
        "OWNER",
        "PURPOSE",
        "SCOPES",
        "CERTS",
        "TOKENS",
        "LAST ISSUANCE",
        "REVIEW BY",
        "FLAGS",
    ];
    let mut rows = vec![HEAD.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for i in v["integrations"].as_array().into_iter().flatten() {
        let date = |k: &str| cell(&i[k]).chars().take(10).collect::<String>();
        rows.push(vec![
            cell(&i["name"]),
            cell(&i["status"]),
            cell(&i["privilege_class"]),
            clip(
                format!(
                    "{}/{}",
                    cell(&i["business_owner"]),
                    cell(&i["technical_owner"])
                ),
                28,
            ),
            clip(cell(&i["purpose"]), 28),
            clip(cell(&i["scopes"]), 32),
            cell(&i["live_certificates"]),
            cell(&i["live_tokens"]),
            date("last_issuance"),
            date("review_by"),
            cell(&i["flags"]),
        ]);
    }
    let widths: Vec<usize> = (0..HEAD.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
