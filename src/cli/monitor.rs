//! `credmint monitor grant|list|withdraw`: read-only monitoring tokens for scrapers. The
//! token goes to a file created with mode 0600 (what Prometheus' `credentials_file` reads),
//! never to stdout, so it does not end up in shell history or CI logs.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::{print_json, CliError, Conn};
use crate::client::OperatorClient;
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// Grant a read-only token to scraper NAME (scrape /metrics, read the inventory and
    /// the console; change nothing). The token is written to OUT (mode 0600), once.
    Grant {
        name: String,
        /// File the token is written to; must not exist yet.
        #[arg(long)]
        out: PathBuf,
        /// Token lifetime in days (1 to 397).
        #[arg(long, default_value_t = crate::api::monitors::DEFAULT_MONITOR_TTL_DAYS)]
        ttl_days: u64,
        #[command(flatten)]
        conn: Conn,
    },
    /// List monitoring tokens that are not withdrawn (hashes only).
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Withdraw scraper NAME's token; it stops working at once.
    Withdraw {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Creates `path` with mode 0600, refusing to replace an existing file.
fn write_secret(path: &Path, token: &str) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(token.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

pub async fn run(cfg: &Config, cmd: MonitorCommand) -> Result<(), CliError> {
    match cmd {
        MonitorCommand::Grant {
            name,
            out,
            ttl_days,
            conn,
        } => {
            // Checked before the grant, so a token is never granted and then lost.
            if out.exists() {
                return Err(CliError::Io {
                    path: out,
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "exists; choose a new file for the token",
                    ),
                });
            }
            let op = OperatorClient::new(&conn.target(cfg))?;
            let mut v = op
                .call(
                    Method::POST,
                    "/v1/admin/monitors",
                    Some(&json!({ "name": name, "ttl_days": ttl_days })),
                )
                .await?;
            let token = v["token"].as_str().unwrap_or_default().to_string();
            write_secret(&out, &token)?;
            if let Some(o) = v.as_object_mut() {
                o.remove("token");
                o.insert("token_file".into(), json!(out.display().to_string()));
            }
            print_json(&v);
        }
        MonitorCommand::List { conn } => {
            let op = OperatorClient::new(&conn.target(cfg))?;
            print_json(&op.call(Method::GET, "/v1/admin/monitors", None).await?);
        }
        MonitorCommand::Withdraw { name, conn } => {
            let op = OperatorClient::new(&conn.target(cfg))?;
            let path = format!("/v1/admin/monitors/{name}");
            print_json(&op.call(Method::DELETE, &path, None).await?);
        }
    }
    Ok(())
}
