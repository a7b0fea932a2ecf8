//! `credmint health`: asks the local listener's `/healthz`, for a container HEALTHCHECK or
//! a monitoring probe that has no curl. It connects to the listen address (127.0.0.1 when
//! listening on all interfaces) but names the first server name, so TLS is verified
//! against this appliance's CA exactly as a client would, without DNS.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::CliError;
use crate::client::ClientError;
use crate::config::Config;

fn local_target(cfg: &Config) -> SocketAddr {
    let listen = cfg.server.listen;
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Prints the health document; `Ok(true)` when healthy.
pub async fn run(cfg: &Config, timeout_secs: u64) -> Result<bool, CliError> {
    let ca = std::fs::read(cfg.ca_cert_path()).map_err(|source| CliError::Io {
        path: cfg.ca_cert_path(),
        source,
    })?;
    let name = cfg.server.names[0].clone();
    let addr = local_target(cfg);
    let tls = |e: reqwest::Error| ClientError::Tls(e.to_string());
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).map_err(tls)?])
        .resolve(&name, addr)
        .timeout(Duration::from_secs(timeout_secs))
        .build()
        .map_err(tls)?;
    let host = match name.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => name.clone(),
    };
    let url = format!("https://{host}:{}/healthz", addr.port());
    let resp = match client.get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("credmint health: {url}: {e}");
            return Ok(false);
        }
    };
    let healthy = resp.status().is_success();
    println!("{}", resp.text().await.unwrap_or_default().trim());
    Ok(healthy)
}
