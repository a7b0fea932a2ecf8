//! Governance verbs: `credmint integrations list` (inventory table) and
//! `credmint integration change|changes|approve|recertify|decommission`.

use clap::Subcommand;

use super::{print_json, CliError, Conn};
use crate::client::OperatorClient;
use crate::config::Config;
use crate::wire::{ApprovalBody, ChangeBody, DecommissionBody, Inventory, RecertifyBody};

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
        /// Ledger index of the change request (see `integration changes`).
        index: u64,
        /// Ticket under which you approve.
        #[arg(long)]
        approval_ref: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Confirm the integration is still needed and move its review-by date.
    Recertify {
        /// Integration name.
        name: String,
        /// YYYY-MM-DD or RFC 3339; at most the class limit from now.
        #[arg(long)]
        review_by: String,
        /// Ticket or note recording the owner's confirmation.
        #[arg(long)]
        reference: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Revoke every live credential and retire the name for good.
    Decommission {
        /// Integration name.
        name: String,
        /// Why (recorded in the ledger).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, clap::Args)]
pub struct ChangeArgs {
    /// Integration name.
    name: String,
    #[command(flatten)]
    pub(crate) body: ChangeBody,
    /// Remove every DNS name.
    #[arg(long, conflicts_with = "dns_names")]
    no_dns: bool,
    /// Allow no audience at all (an empty list: no token can be minted).
    #[arg(long, conflicts_with_all = ["audiences", "any_audience"])]
    no_audiences: bool,
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
            let mut body = args.body.clone();
            if args.no_dns {
                body.dns_names = Some(Vec::new());
            }
            if args.no_audiences {
                body.audiences = Some(Vec::new());
            }
            let path = format!("/v1/admin/integrations/{}/changes", args.name);
            client(cfg, &args.conn)?.post(&path, &body).await?
        }
        GovernanceCommand::Changes { conn } => client(cfg, conn)?.get("/v1/admin/changes").await?,
        GovernanceCommand::Approve {
            index,
            approval_ref,
            conn,
        } => {
            let body = ApprovalBody {
                approval_ref: Some(approval_ref.clone()),
            };
            client(cfg, conn)?
                .post(&format!("/v1/admin/changes/{index}/approve"), &body)
                .await?
        }
        GovernanceCommand::Recertify {
            name,
            review_by,
            reference,
            conn,
        } => {
            let body = RecertifyBody {
                review_by: Some(review_by.clone()),
                reference: Some(reference.clone()),
            };
            client(cfg, conn)?
                .post(&format!("/v1/admin/integrations/{name}/recertify"), &body)
                .await?
        }
        GovernanceCommand::Decommission { name, reason, conn } => {
            let body = DecommissionBody {
                reason: Some(reason.clone()),
            };
            client(cfg, conn)?
                .post(
                    &format!("/v1/admin/integrations/{name}/decommission"),
                    &body,
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
    let v = client(cfg, &conn)?.get(&path).await?;
    if json {
        print_json(&v);
    } else {
        let inventory: Inventory = serde_json::from_value(v)
            .map_err(|e| CliError::Other(format!("unexpected inventory answer: {e}")))?;
        print!("{}", table(&inventory));
    }
    Ok(())
}

/// A list cell: comma-separated, `-` when empty.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(",")
    }
}

fn json_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "-".into(),
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
pub fn table(v: &Inventory) -> String {
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
    for e in &v.integrations {
        let i = &e.integration;
        let date = |t: Option<&str>| t.unwrap_or("-").chars().take(10).collect::<String>();
        rows.push(vec![
            i.name.clone(),
            json_name(&i.status),
            json_name(&i.privilege_class),
            clip(format!("{}/{}", i.business_owner, i.technical_owner), 28),
            clip(i.purpose.clone(), 28),
            clip(list(&i.scopes), 32),
            e.live_certificates.to_string(),
            e.live_tokens.to_string(),
            date(e.last_issuance.as_deref()),
            date(Some(&i.review_by)),
            list(&e.flags),
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
