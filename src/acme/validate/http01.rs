//! http-01 validation (RFC 8555 §8.3): fetch
//! `http://<domain>:<port>/.well-known/acme-challenge/<token>` and compare the body with
//! the key authorization. The port is 80 unless a lab configured `[acme] http01_port`.
//!
//! The fetch goes only where the identifier points: redirects are followed (§8.3 says
//! SHOULD) but only to the same host, over http or https, on port 80, 443 or the
//! configured port, so a challenge server cannot turn the appliance into a client of
//! some other internal service (SSRF). At most [`MAX_BODY`] bytes are read.

use std::time::Duration;

use super::{failure, Failure};

/// Largest response body read (a key authorization is ~90 bytes).
const MAX_BODY: usize = 4096;
/// Most redirects followed.
const MAX_REDIRECTS: usize = 10;

/// The validation client: short timeouts, no proxy, redirects confined as above.
pub fn client(http01_port: u16) -> Result<reqwest::Client, reqwest::Error> {
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let first_host = attempt
            .previous()
            .first()
            .and_then(|u| u.host_str().map(str::to_owned));
        let url = attempt.url();
        let port_ok = matches!(url.port_or_known_default(), Some(p) if p == 80 || p == 443 || p == http01_port);
        let scheme_ok = matches!(url.scheme(), "http" | "https");
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if !scheme_ok || !port_ok || url.host_str().map(str::to_owned) != first_host {
            attempt.error("redirect leaves the identifier (host, scheme or port)")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .redirect(policy)
        .no_proxy()
        .build()
}

/// Ok when the domain serves the key authorization.
pub async fn validate(
    client: &reqwest::Client,
    domain: &str,
    port: u16,
    token: &str,
    key_authorization: &str,
) -> Result<(), Failure> {
    let url = format!("http://{domain}:{port}/.well-known/acme-challenge/{token}");
    let mut response = client.get(&url).send().await.map_err(|e| {
        let kind = if e.is_redirect() {
            "unauthorized"
        } else {
            "connection"
        };
        failure(kind, format!("fetching {url}: {}", cause(&e)))
    })?;
    let status = response.status();
    if !status.is_success() {
        return Err(failure(
            "unauthorized",
            format!("{url} answered HTTP {}", status.as_u16()),
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| failure("connection", format!("reading {url}: {}", cause(&e))))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err(failure(
                "incorrectResponse",
                format!("{url} answered more than {MAX_BODY} bytes"),
            ));
        }
    }
    // §8.3: the server trims whitespace around the body before comparing.
    let got = String::from_utf8_lossy(&body);
    if got.trim() != key_authorization {
        return Err(failure(
            "incorrectResponse",
            format!(
                "{url} answered {}, not the key authorization",
                crate::api::echo(got.trim())
            ),
        ));
    }
    Ok(())
}

/// The innermost error: "connection refused" rather than reqwest's wrapper text.
fn cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server on 127.0.0.1 answering every request with `response`.
    async fn serve(response: String) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 2048];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(response.as_bytes()).await;
            }
        });
        port
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn the_key_authorization_passes_and_anything_else_fails() {
        let port = serve(ok("tok.thumb\n")).await;
        let c = client(port).unwrap();
        validate(&c, "127.0.0.1", port, "tok", "tok.thumb")
            .await
            .unwrap();
        let e = validate(&c, "127.0.0.1", port, "tok", "tok.other")
            .await
            .unwrap_err();
        assert_eq!(e.kind, "incorrectResponse");
        let big = serve(ok(&"x".repeat(MAX_BODY + 1))).await;
        let e = validate(&client(big).unwrap(), "127.0.0.1", big, "t", "t.k")
            .await
            .unwrap_err();
        assert!(e.detail.contains("more than"), "{e:?}");
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = validate(&c, "127.0.0.1", closed, "t", "t.k")
            .await
            .unwrap_err();
        assert_eq!(e.kind, "connection");
    }

    /// Validates "tok" at a server on 127.0.0.1 that redirects to `location`.
    async fn through_redirect(location: String) -> Result<(), Failure> {
        let redirect =
            format!("HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n");
        let port = serve(redirect).await;
        validate(
            &client(port).unwrap(),
            "127.0.0.1",
            port,
            "tok",
            "tok.thumb",
        )
        .await
    }

    #[tokio::test]
    async fn redirects_never_leave_the_identifier() {
        // The target answers correctly, but on another host name of the same machine.
        let target = serve(ok("tok.thumb")).await;
        let e = through_redirect(format!("http://localhost:{target}/x"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, "unauthorized", "{e:?}");
        // Same host, an arbitrary port: refused too.
        let e = through_redirect(format!("http://127.0.0.1:{target}/x"))
            .await
            .unwrap_err();
        assert_eq!(e.kind, "unauthorized", "{e:?}");
    }
}
