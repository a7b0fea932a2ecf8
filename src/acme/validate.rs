//! http-01 validation (RFC 8555 §8.3): fetch
//! `http://<domain>:<port>/.well-known/acme-challenge/<token>` and compare the body with
//! the key authorization. The port is 80 unless a lab configured `[acme] http01_port`.

/// Largest response body read (a key authorization is ~90 bytes).
const MAX_BODY: usize = 4096;

/// Ok when the domain serves the key authorization; Err says what was found instead
/// (shown to the client in the challenge's error).
pub async fn http01(
    client: &reqwest::Client,
    domain: &str,
    port: u16,
    token: &str,
    key_authorization: &str,
) -> Result<(), String> {
    let url = format!("http://{domain}:{port}/.well-known/acme-challenge/{token}");
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("fetching {url}: {}", without_url(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url} answered HTTP {}", status.as_u16()));
    }
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading {url}: {}", without_url(&e)))?;
    if body.len() > MAX_BODY {
        return Err(format!("{url} answered more than {MAX_BODY} bytes"));
    }
    // §8.3: the server trims whitespace around the body before comparing.
    let got = String::from_utf8_lossy(&body);
    if got.trim() != key_authorization {
        return Err(format!(
            "{url} answered {}, not the key authorization",
            crate::api::echo(got.trim())
        ));
    }
    Ok(())
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(source) = std::error::Error::source(e) {
        s = source.to_string();
    }
    s
}
