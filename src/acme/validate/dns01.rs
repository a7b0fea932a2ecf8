//! dns-01 validation (RFC 8555 §8.4): the TXT records at `_acme-challenge.<domain>` must
//! include base64url(SHA-256(key authorization)).
//!
//! Lookups go to `[acme] dns_resolvers` when set (an internal authoritative server or a
//! split-horizon resolver, where a private CA's names live), else to the system's
//! resolvers (`/etc/resolv.conf`). Nothing is cached: a record the client has just
//! published must be seen, and a negative answer from a moment ago must not stick. CNAMEs
//! are followed by the resolver, so `_acme-challenge` may be delegated to another zone.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use sha2::{Digest, Sha256};

use super::{failure, Failure};

/// Most TXT values quoted back in a failure's detail.
const MAX_QUOTED: usize = 4;

/// `ip` or `ip:port` (`[v6]:port`); port 53 when absent.
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("[acme] dns_resolvers: {s:?} is not an IP address or IP:port"))
}

/// The resolver dns-01 asks: `servers`, or the system's when empty. Fails on a server
/// that is not an address, or (no servers given) an unreadable `/etc/resolv.conf`.
pub fn resolver(servers: &[String]) -> Result<TokioResolver, String> {
    let mut builder = if servers.is_empty() {
        TokioResolver::builder_tokio()
            .map_err(|e| format!("reading the system's resolver configuration: {e}"))?
    } else {
        let mut configs = Vec::new();
        for s in servers {
            let addr = parse_server(s)?;
            let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                .into_iter()
                .map(|mut c| {
                    c.port = addr.port();
                    c
                })
                .collect();
            configs.push(NameServerConfig::new(addr.ip(), true, connections));
        }
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(configs),
            TokioRuntimeProvider::default(),
        )
    };
    let o = builder.options_mut();
    o.cache_size = 0;
    o.positive_max_ttl = Some(Duration::ZERO);
    o.negative_max_ttl = Some(Duration::ZERO);
    o.use_hosts_file = ResolveHosts::Never;
    o.timeout = Duration::from_secs(5);
    o.attempts = 2;
    // A truncated UDP answer (many TXT records) is asked again over TCP.
    o.try_tcp_on_error = true;
    builder
        .build()
        .map_err(|e| format!("building the dns-01 resolver: {e}"))
}

/// What the TXT record must hold for `key_authorization`.
pub fn digest(key_authorization: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(key_authorization.as_bytes()))
}

/// Ok when `domain`'s `_acme-challenge` TXT records include the digest.
pub async fn validate(
    resolver: &TokioResolver,
    domain: &str,
    key_authorization: &str,
) -> Result<(), Failure> {
    // Fully qualified: no search domain is ever appended.
    let name = format!("_acme-challenge.{domain}.");
    let lookup = resolver.txt_lookup(name.as_str()).await.map_err(|e| {
        if e.is_no_records_found() || e.is_nx_domain() {
            failure("unauthorized", format!("no TXT record at {name}"))
        } else {
            failure("dns", format!("looking up TXT {name}: {e}"))
        }
    })?;
    let values: Vec<String> = lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(joined(&txt.txt_data)),
            _ => None,
        })
        .collect();
    matches(&name, &values, &digest(key_authorization))
}

/// One TXT record's character-strings, concatenated (a long value may be split in 255-byte
/// strings by the zone's tooling).
fn joined(strings: &[Box<[u8]>]) -> String {
    let bytes: Vec<u8> = strings.iter().flat_map(|s| s.iter().copied()).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Ok when one of `values` is `expected`; else what was there instead. Several records are
/// normal (one per pending authorization of the same name, or stale ones).
fn matches(name: &str, values: &[String], expected: &str) -> Result<(), Failure> {
    if values.iter().any(|v| v == expected) {
        return Ok(());
    }
    if values.is_empty() {
        return Err(failure("unauthorized", format!("no TXT record at {name}")));
    }
    let seen: Vec<String> = values
        .iter()
        .take(MAX_QUOTED)
        .map(|v| crate::api::echo(v))
        .collect();
    Err(failure(
        "incorrectResponse",
        format!(
            "the {} TXT record(s) at {name} ({}{}) do not hold the key authorization's digest",
            values.len(),
            seen.join(", "),
            if values.len() > MAX_QUOTED {
                ", ..."
            } else {
                ""
            }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_base64url_sha256_of_the_key_authorization() {
        // RFC 8555 §8.4's construction, checked against an independent computation:
        // printf %s tok.thumb | openssl dgst -sha256 -binary | basenc --base64url (less the =)
        assert_eq!(
            digest("tok.thumb"),
            "sYAwVrqDtVOuJZvAHurSAYPoEt5fFV_C4bdSOOW-o5Y"
        );
        assert_eq!(digest("a").len(), 43);
    }

    #[test]
    fn one_matching_record_among_several_is_enough() {
        let want = digest("t.k");
        let n = "_acme-challenge.a.example.";
        assert!(matches(n, &["stale".into(), want.clone()], &want).is_ok());
        assert_eq!(matches(n, &[], &want).unwrap_err().kind, "unauthorized");
        let e = matches(n, &vec!["x".to_string(); 6], &want).unwrap_err();
        assert_eq!(e.kind, "incorrectResponse");
        assert!(
            e.detail.contains("6 TXT") && e.detail.ends_with("digest"),
            "{e:?}"
        );
    }

    #[test]
    fn split_strings_are_one_value() {
        let parts: Vec<Box<[u8]>> = vec![b"ab".to_vec().into(), b"cd".to_vec().into()];
        assert_eq!(joined(&parts), "abcd");
    }

    #[test]
    fn servers_are_addresses_with_an_optional_port() {
        assert_eq!(parse_server("127.0.0.1").unwrap().port(), 53);
        assert_eq!(parse_server("127.0.0.1:5353").unwrap().port(), 5353);
        assert_eq!(parse_server("[::1]:54").unwrap().port(), 54);
        assert_eq!(parse_server("::1").unwrap().port(), 53);
        assert!(parse_server("ns.example").is_err());
    }
}
